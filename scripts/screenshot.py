"""A picture of a report page, as the README shows one: the page opened in Chromium (Debian's
``chromium``, through Playwright's client), its top part (the verdict, the timeline, the
blast-radius matrix) written as a PNG.

    .venv/bin/python scripts/screenshot.py REPORT.html OUT.png [--height PIXELS]
"""

from __future__ import annotations

import argparse
import shutil
import sys
from collections.abc import Sequence
from pathlib import Path

from playwright.sync_api import sync_playwright

WIDTH = 1280


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("page", type=Path, help="the report.html to photograph")
    parser.add_argument("out", type=Path, help="the PNG to write")
    parser.add_argument("--height", type=int, default=1700, help="pixels from the top")
    args = parser.parse_args(argv)
    browser = shutil.which("chromium")
    if browser is None:
        print("screenshot: chromium is not installed: `make setup` installs it "
              "(Debian: apt-get install chromium)", file=sys.stderr)  # fmt: skip
        return 4
    if not args.page.is_file():
        print(f"screenshot: no page at {args.page}: run the scenario first", file=sys.stderr)
        return 4
    args.out.parent.mkdir(parents=True, exist_ok=True)
    with sync_playwright() as playwright:
        # --no-sandbox: Chromium's sandbox refuses to run as root
        launched = playwright.chromium.launch(executable_path=browser, args=["--no-sandbox"])
        try:
            page = launched.new_page(viewport={"width": WIDTH, "height": args.height})
            page.goto(args.page.resolve().as_uri(), wait_until="load")
            page.screenshot(path=str(args.out))
        finally:
            launched.close()
    print(f"screenshot: {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
