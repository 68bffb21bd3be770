"""The package's shape (issue "One house"), read from the source itself: a change that breaks it fails.

No import cycle among the package's modules; no module imports another module's underscore name; no file
over 300 lines; each stage imports only the stages below it; code cites the paper, not files that do
not ship.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[1] / "src" / "thermodiff"
MAX_LINES = 300

# What each stage may import from the package (besides itself and errors.py): the one-way flow
# config -> data, nets -> diffusion -> model -> run -> training / sampling -> evaluation -> cli.
ALLOWED = {
    "errors": set(),
    "lists": set(),
    "progress": set(),
    "config": {"data", "nets", "diffusion"},  # the registries' names, for the allowed choices
    # data/ and nets/ import config's dataclasses for type hints only (no runtime edge back)
    "diffusion": set(),
    "nets": set(),
    "data": {"run"},  # run.checkpoint: atomic writes of data files
    "model": {"config", "diffusion", "nets", "data"},
    "run": {"config", "data", "diffusion", "nets", "model"},
    "training": {"config", "data", "diffusion", "nets", "model", "run", "sampling", "plots"},
    "sampling": {"config", "data", "diffusion", "nets", "model", "run", "plots"},
    "plots": {"config", "data", "run"},
    "evaluation": {"config", "data", "diffusion", "nets", "model", "run", "training", "sampling", "plots"},
    "reporting": {"run"},  # reads run directories as files (run.jsonl): no torch
    "cli": {
        "config",
        "data",
        "diffusion",
        "model",
        "run",
        "training",
        "sampling",
        "evaluation",
        "plots",
        "reporting",
    },
}


def _modules() -> dict[str, Path]:
    out = {}
    for path in sorted(SRC.rglob("*.py")):
        parts = path.relative_to(SRC.parent).with_suffix("").parts
        name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
        out[name] = path
    return out


MODULES = _modules()


def _imports(name: str, path: Path, hints: bool = False) -> list[tuple[str, list[str], bool]]:
    """(module imported, names taken from it, at module level) for every thermodiff import; those under
    `if TYPE_CHECKING:` (type hints only, never run) only when `hints`."""
    tree = ast.parse(path.read_text())
    top = set(map(id, tree.body))
    hinted = {
        id(inner)
        for node in tree.body
        if isinstance(node, ast.If) and isinstance(node.test, ast.Name) and node.test.id == "TYPE_CHECKING"
        for inner in ast.walk(node)
    }
    found = []
    package = name if path.name == "__init__.py" else name.rsplit(".", 1)[0]
    for node in ast.walk(tree):
        if id(node) in hinted and not hints:
            continue
        if isinstance(node, ast.ImportFrom):
            module = node.module or ""
            if node.level:
                base = package.split(".")[: len(package.split(".")) - node.level + 1]
                module = ".".join([*base, module] if module else base)
            if module.split(".")[0] == "thermodiff":
                found.append((module, [a.name for a in node.names], id(node) in top))
        elif isinstance(node, ast.Import):
            for a in node.names:
                if a.name.split(".")[0] == "thermodiff":
                    found.append((a.name, [], id(node) in top))
    return found


def _defined_in(package: str) -> dict[str, str]:
    """name -> the submodule a package's __init__ takes it from (`from package.sub import name`)."""
    if package not in MODULES or MODULES[package].name != "__init__.py":
        return {}
    return {
        n: module
        for module, names, _ in _imports(package, MODULES[package])
        if module.startswith(package + ".") and module in MODULES
        for n in names
    }


def _resolve(module: str, names: list[str]) -> list[str]:
    """The package modules an import loads: the module, or a submodule named in `from package import x`."""
    out = [module] if module in MODULES else []
    out += [f"{module}.{n}" for n in names if f"{module}.{n}" in MODULES]
    return out


def _stage(module: str) -> str:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else ""


def test_no_file_over_300_lines() -> None:
    long = {n: len(p.read_text().splitlines()) for n, p in MODULES.items()}
    assert {n: k for n, k in long.items() if k > MAX_LINES} == {}


def test_no_module_imports_an_underscore_name_of_another() -> None:
    bad = [
        f"{name} imports {module}.{n}"
        for name, path in MODULES.items()
        for module, names, _ in _imports(name, path)
        for n in names
        if n.startswith("_") and module != name
    ]
    assert bad == []


def test_no_import_cycle() -> None:
    """No two modules import each other, through any chain of imports: module level, inside functions or
    for type hints alike. A name taken from a package counts as an import of the submodule that defines
    it; a package importing its own submodules is not an edge."""
    graph: dict[str, set[str]] = {}
    for name, path in MODULES.items():
        edges = set()
        for module, names, _ in _imports(name, path, hints=True):
            defined = _defined_in(module)
            edges |= {*_resolve(module, names), *(defined[n] for n in names if n in defined)}
        graph[name] = {m for m in edges if m != name and not m.startswith(name + ".")}
    state: dict[str, int] = {}

    def visit(node: str, path: list[str]) -> None:
        state[node] = 1
        for nxt in sorted(graph[node]):
            if state.get(nxt) == 1:
                pytest.fail("import cycle: " + " -> ".join(path[path.index(nxt) :] + [nxt]))
            if nxt not in state:
                visit(nxt, [*path, nxt])
        state[node] = 2

    for name in sorted(graph):
        if name not in state:
            visit(name, [name])


def test_each_stage_imports_only_the_stages_below_it() -> None:
    bad = []
    for name, path in MODULES.items():
        stage = _stage(name)
        if stage not in ALLOWED:  # the top-level API, __main__
            continue
        for module, names, _ in _imports(name, path):
            for target in _resolve(module, names) or [module]:
                other = _stage(target)
                if (
                    other
                    and other not in (stage, "errors", "lists", "progress")
                    and other not in ALLOWED[stage]
                ):
                    bad.append(f"{name} imports {target}")
    assert bad == []


def test_the_math_imports_torch_and_itself_only() -> None:
    """diffusion/ receives the network as a callable: it never imports torch.nn modules or nets."""
    bad = []
    for name, path in MODULES.items():
        if _stage(name) != "diffusion":
            continue
        tree = ast.parse(path.read_text())
        for node in ast.walk(tree):
            mods = [node.module or ""] if isinstance(node, ast.ImportFrom) else []
            mods += [a.name for a in node.names] if isinstance(node, ast.Import) else []
            for m in mods:
                root = m.split(".")[0]
                if root not in (
                    "__future__",
                    "math",
                    "dataclasses",
                    "functools",
                    "typing",
                    "collections",
                    "torch",
                ):
                    if not m.startswith(("thermodiff.diffusion", "thermodiff.errors")):
                        bad.append(f"{name} imports {m}")
    assert bad == []


def test_code_cites_the_paper_not_files_that_do_not_ship() -> None:
    """The package and its bundled configs ship; the project's PAPER.md and DESIGN.md do not."""
    shipped = [*MODULES.values(), *sorted((SRC / "configs").glob("*.toml"))]
    bad = [p.name for p in shipped if "PAPER.md" in p.read_text() or "DESIGN.md" in p.read_text()]
    assert bad == []
