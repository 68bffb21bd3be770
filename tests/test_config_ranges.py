"""Out-of-range, mistyped and mismatched config values are a one-line ConfigError naming the field, raised
when the config is loaded (before any data or file is touched), not a traceback at the first step."""

from __future__ import annotations

from pathlib import Path

import pytest

from thermodiff.config import load_toml
from thermodiff.data import DATASETS
from thermodiff.errors import ConfigError
from thermodiff.nets import NETS

BAD = [
    ("train.weight_decay=nan", r"train\.weight_decay = nan must lie in \[0, inf\)"),
    ("train.weight_decay=-0.1", r"train\.weight_decay"),
    ("train.seed=1e30", r"train\.seed = \d+ must lie in \[-2\*\*63, 2\*\*63\)"),
    ("train.seed=-9223372036854775809", r"train\.seed"),
    ("train.seed=9223372036854775808", r"train\.seed"),
    ("train.seed=2.5", r"train\.seed = '2\.5' is not a valid int"),
    ("data.seed=-9223372036854775809", r"data\.seed"),
    ("model.time_embed=0", r"model\.time_embed = 0 must lie in \[2, 65536\]"),
    ("model.time_embed=-4", r"model\.time_embed"),
    ("model.fourier=-1", r"model\.fourier = -1 must lie in \[0, 65536\]"),
    ("model.hidden=0", r"model\.hidden"),
    ("model.hidden=1e9", r"model\.hidden = 1000000000 must lie in \[1, 65536\]"),
    ("model.layers=0", r"model\.layers"),
    ("model.rbf_units=0", r"model\.rbf_units"),
    ("model.conv_channels=0", r"model\.conv_channels"),
    ("model.n_scales=0", r"model\.n_scales"),
    ("model.dense_layers=-1", r"model\.dense_layers"),
    ("model.dense_hidden=0", r"model\.dense_hidden"),
    ("model.pixel_hidden=0", r"model\.pixel_hidden"),
    ("model.n_bumps=0", r"model\.n_bumps"),
    ("model.base=0", r"model\.base"),
    ("model.num_res_blocks=-1", r"model\.num_res_blocks"),
    ("model.heads=0", r"model\.heads"),
    ("model.mults=1,0,2", r"model\.mults"),
    ("model.mults=", r"model\.mults"),
    ("model.mults=a,b", r"model\.mults"),
    ("model.attn_resolutions=x", r"model\.attn_resolutions"),
    ("diffusion.T=100000000", r"diffusion\.T = 100000000 must lie in \[2, 100000\]"),
    ("diffusion.T=1", r"diffusion\.T"),
    ("train.lr=inf", r"train\.lr = inf must lie in \(0, 100\]"),
    ("train.lr=1e300", r"train\.lr"),
    ("data.n_train=1000000000000", r"data\.n_train"),
    ("train.batch=10000000", r"train\.batch"),
    ("train.lr=0", r"train\.lr"),
    ("train.lr_final=nan", r"train\.lr_final"),
    ("train.lr_final=-1e-5", r"train\.lr_final"),
    ("train.lr_final=0.1", r"train\.lr_final = 0\.1 must be <= train\.lr"),
    ("train.warmup=-1", r"train\.warmup = -1 must lie in \[0, inf\)"),
    ("train.grad_clip=nan", r"train\.grad_clip"),
    ("model.dropout=1", r"model\.dropout = 1\.0 must lie in \[0, 1\)"),
    ("model.dropout=-0.1", r"model\.dropout"),
    ("model.dropout=nan", r"model\.dropout"),
    ("model.fourier_scale=nan", r"model\.fourier_scale"),
    ("model.fourier_scale=inf", r"model\.fourier_scale"),
    ("model.fourier_scale=0", r"model\.fourier_scale"),
    ("data.sigma=inf", r"data\.sigma"),
    ("data.name=nope", r"data\.name = 'nope' is not one of"),
    ("model.net=nope", r"model\.net = 'nope' is not one of"),
]


@pytest.mark.parametrize("override,match", BAD)
def test_bad_value_is_a_config_error(override: str, match: str) -> None:
    with pytest.raises(ConfigError, match=match):
        load_toml("swiss_roll", [override])


def test_edge_values_are_accepted() -> None:
    cfg = load_toml(
        "swiss_roll",
        ["train.seed=9223372036854775807", "train.lr_final=1e-3", "train.weight_decay=0", "train.warmup=0"]
        + ["diffusion.T=100000", "model.fourier=0", "model.dropout=0", "model.hidden=65536"],
    )
    assert cfg.train.seed == 2**63 - 1 and cfg.train.lr_final == cfg.train.lr
    assert (
        load_toml("dead_leaves", ["model.pixel_layers=0", "model.num_res_blocks=0"]).model.dense_layers == 0
    )


def test_paper_image_needs_a_pathway() -> None:
    with pytest.raises(ConfigError, match="model.conv_layers and model.dense_layers"):
        load_toml("dead_leaves", ["model.conv_layers=0"])


@pytest.mark.parametrize(
    "data", ["mnist", "binarized_mnist", "cifar10", "bark", "dead_leaves", "image_folder"]
)
@pytest.mark.parametrize("net", ["mlp", "paper_mlp", "rbf"])
def test_vector_net_on_images(net: str, data: str) -> None:
    match = (
        rf"model\.net = '{net}' takes vectors; data\.name = '{data}' gives images: use paper_image or unet"
    )
    with pytest.raises(ConfigError, match=match):
        load_toml("swiss_roll", [f"model.net={net}", f"data.name={data}"])


@pytest.mark.parametrize("data", ["swiss_roll", "heartbeat", "gaussian"])
@pytest.mark.parametrize("net", ["paper_image", "unet"])
def test_image_net_on_vectors(net: str, data: str) -> None:
    match = (
        rf"model\.net = '{net}' takes images; data\.name = '{data}' gives vectors: use mlp, paper_mlp or rbf"
    )
    with pytest.raises(ConfigError, match=match):
        load_toml("mnist", [f"model.net={net}", f"data.name={data}"])


def test_classifier_tasks_build_their_own_net() -> None:
    """A classifier ignores model.net: mnist_classifier keeps the default 'mlp' on images."""
    assert load_toml("mnist_classifier").model.net == "mlp"


def test_kind_tables_cover_every_data_set_and_net() -> None:
    from thermodiff.config import ModelConfig
    from thermodiff.nets import build_net

    # "array" alone gives what its file holds (issue 14): its kind is checked when the file is read
    assert all(s.kind in ("vectors", "images") or name == "array" for name, s in DATASETS.items())
    with pytest.raises(ConfigError, match="is not one of") as e:
        build_net(ModelConfig(net="nope"), (2,), 10, 4)
    assert set(str(e.value).split("one of ")[1].split(", ")) == set(NETS)


@pytest.mark.parametrize(
    "text,match",
    [
        ("[train]\nsteps = true\n", r"train\.steps = True is not a valid int"),
        ("[train]\nlr = false\n", r"train\.lr = False is not a valid float"),
        ("[eval]\nexact = 1\n", r"eval\.exact = 1 is not a valid bool"),
        ("[model]\nnet = true\n", r"model\.net = True is not a valid str"),
        ("[train]\nseed = 1e30\n", r"train\.seed"),
        ("[train]\nseed = 99999999999999999999999\n", r"train\.seed"),
        ("data = 5\n", r"config: \[data\] must be a table"),
        ("[[data]]\nname = 'mnist'\n", r"config: \[data\] must be a table"),
    ],
)
def test_bad_toml_file(tmp_path: Path, text: str, match: str) -> None:
    (tmp_path / "c.toml").write_text(text)
    with pytest.raises(ConfigError, match=match):
        load_toml(str(tmp_path / "c.toml"))


def test_set_into_a_section_that_is_not_a_table(tmp_path: Path) -> None:
    (tmp_path / "c.toml").write_text("data = 5\n")
    with pytest.raises(ConfigError, match=r"config: \[data\] must be a table"):
        load_toml(str(tmp_path / "c.toml"), ["data.n_train=1"])
