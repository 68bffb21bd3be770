"""Open a reproduction report in headless Chromium and save a screenshot, as a reader's browser shows it.

    python bench/report_screenshot.py runs/report/report.html --out runs/report/screenshot.png

No network: the page is a local file whose images are data: URIs; Chromium runs with a fresh profile and
its background networking off. Exits 2 with a reason when Chromium is absent.
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

CHROMIUM = "/usr/bin/chromium"


def chromium() -> str | None:
    """The Chromium binary, or None when this machine has none."""
    return CHROMIUM if Path(CHROMIUM).is_file() else shutil.which("chromium")


def screenshot(html: Path, png: Path, width: int = 1280, height: int = 2400, timeout: float = 120) -> Path:
    """Render the page `html` at width x height CSS pixels into `png`."""
    binary = chromium()
    if binary is None:
        raise FileNotFoundError("chromium not found (apt-get install chromium)")
    png = Path(png).resolve()
    with tempfile.TemporaryDirectory(prefix="report-chromium-") as profile:
        cmd = [
            binary, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
            "--disable-background-networking", "--disable-component-update", "--disable-sync",
            "--hide-scrollbars", f"--user-data-dir={profile}", f"--screenshot={png}",
            f"--window-size={width},{height}", Path(html).resolve().as_uri(),
        ]  # fmt: skip
        subprocess.run(cmd, check=True, capture_output=True, timeout=timeout)
    if not png.is_file():
        raise RuntimeError(f"chromium wrote no screenshot to {png}")
    return png


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("html", type=Path)
    p.add_argument("--out", type=Path, default=None, help="PNG (default: beside the page)")
    p.add_argument("--width", type=int, default=1280)
    p.add_argument("--height", type=int, default=2400)
    args = p.parse_args()
    if chromium() is None:
        print("chromium not found: nothing to do (apt-get install chromium)", file=sys.stderr)
        return 2
    out = args.out or args.html.with_name("screenshot.png")
    print(screenshot(args.html, out, args.width, args.height))
    return 0


if __name__ == "__main__":
    sys.exit(main())
