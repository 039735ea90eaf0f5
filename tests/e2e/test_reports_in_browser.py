"""The reports as people see them: a short scenario run twice against a real stack, then its
run page, the index of its runs and the two runs compared, each opened in headless
Chromium (Debian's ``chromium``, driven by Playwright's client; Playwright's own browsers
are never downloaded).

Each page must load without a console error and without a request for anything but the
file itself; hold the timeline's series and the matrix's cells the journal says it should;
say the verdict the exit code says; and leave a screenshot under the test's folder.
"""

from __future__ import annotations

import json
import shutil
import struct
import sys
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import Browser, ConsoleMessage, Page, Request, sync_playwright

from isolation_harness.chaos.errors import EXIT_LABELS, worst
from tests.cli.conftest import HARNESS
from tests.plugins import commands

ROOT = Path(__file__).resolve().parents[2]

#: P2P's database link cut under a light load; a latency limit no stack keeps, so that the
#: verdict the page must show is a failure with its exit code (1), not a pass by default
SHORT = """\
name: in-browser
description: P2P's database link cut for three seconds under a light load.
load: {users: 6, spawn_rate: 6, mix: {deposits: 2, p2p: 1, wallet: 1}}
timeline:
  - {phase: baseline, duration: 3s}
  - phase: outage
    duration: 3s
    faults: [{type: link_down, link: pg_p2p}]
  - {phase: recovery, duration: 2s}
thresholds:
  "deposits.*":
    outage: ["p99 < 1ms"]
invariants: none
"""


def chromium() -> str:
    found = shutil.which("chromium")
    assert found, (
        "Chromium is not installed: `make setup` installs it (Debian: apt-get install chromium)"
    )
    return found


@dataclass
class Opened:
    """A page as the browser loaded it, and what it asked for and complained about."""

    page: Page
    url: str
    requests: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)

    def count(self, selector: str) -> int:
        return self.page.locator(selector).count()


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    with sync_playwright() as playwright:
        # --no-sandbox: the suite runs as root here, and Chromium's sandbox refuses root
        launched = playwright.chromium.launch(executable_path=chromium(), args=["--no-sandbox"])
        try:
            yield launched
        finally:
            launched.close()


def open_page(browser: Browser, path: Path, screenshot: Path) -> Opened:
    page = browser.new_page(viewport={"width": 1280, "height": 900})
    opened = Opened(page, path.resolve().as_uri())

    def console(message: ConsoleMessage) -> None:
        if message.type == "error":
            opened.errors.append(message.text)

    def request(sent: Request) -> None:
        opened.requests.append(sent.url)

    page.on("console", console)
    page.on("pageerror", lambda error: opened.errors.append(str(error)))
    page.on("request", request)
    page.goto(opened.url, wait_until="load")
    page.screenshot(path=str(screenshot), full_page=True)
    assert screenshot.stat().st_size > 10_000, "an empty screenshot"
    assert opened.errors == [], opened.errors
    assert opened.requests == [opened.url], "the page asked for something besides itself"
    return opened


@pytest.fixture(scope="module")
def runs(stack_env_module: dict[str, str], tmp_path_factory: pytest.TempPathFactory) -> Any:
    folder = tmp_path_factory.mktemp("in-browser")
    scenario = folder / "in-browser.yaml"
    scenario.write_text(SHORT)
    reports = folder / "reports"
    ran = commands.run(
        [HARNESS, "run", str(scenario), "--reuse", "--repeat", "2", "--reports", str(reports)],
        env=stack_env_module, timeout=150,
    )  # fmt: skip
    output = ran.stdout + ran.stderr
    assert ran.returncode in EXIT_LABELS, output
    return ran.returncode, reports / "in-browser-isolated", output


def verdict_of(opened: Opened) -> tuple[int, str]:
    verdict = opened.page.locator("#verdict")
    return int(verdict.get_attribute("data-exit-code") or -1), verdict.inner_text()


def test_a_run_page_in_the_browser(browser: Browser, runs: Any, tmp_path: Path) -> None:
    code, folder, _ = runs
    for run in ("run-1", "run-2"):
        journal: dict[str, Any] = json.loads((folder / run / "journal.json").read_text())
        opened = open_page(browser, folder / run / "report.html", tmp_path / f"{run}.png")
        shown, text = verdict_of(opened)
        assert shown == journal["exit_code"]
        assert text.startswith(EXIT_LABELS[shown])
        assert f"exit code {shown}" in text
        groups = journal["series"]["groups"]
        assert {"deposits", "p2p", "wallet"} <= set(groups)
        for panel in ("throughput", "latency", "errors"):
            assert opened.count(f'#timeline [id^="series-{panel}-"]') == len(groups)
        pools = {name for entry in journal["server"] for name in entry.get("pools", {})}
        assert pools
        assert opened.count('#timeline [id^="series-pool-in-use-"]') == len(pools)
        assert opened.count('#timeline [id^="fault-"]') == len(journal["faults"]) == 1
        assert opened.count('#timeline [id^="phase-"]') == 3
        rows = journal["blast_radius"]
        columns = {group for row in rows for group in row["cells"]}
        assert len(rows) == 1
        assert opened.count("#matrix td.cell") == len(rows) * len(columns)
        assert opened.count("#matrix td.cell.target") == 1  # p2p, the fault's target
        assert opened.count("#thresholds tr") == 1 + len(journal["verdicts"]["thresholds"])
        assert opened.page.locator("#replay").inner_text() == journal["replay"]
    # the worst of the two runs is the command's exit code
    codes = [json.loads((folder / r / "journal.json").read_text())["exit_code"]
             for r in ("run-1", "run-2")]  # fmt: skip
    assert code == worst(codes)


def test_the_index_of_the_runs_in_the_browser(browser: Browser, runs: Any, tmp_path: Path) -> None:
    code, folder, _ = runs
    opened = open_page(browser, folder / "index.html", tmp_path / "index.png")
    shown, text = verdict_of(opened)
    assert shown == code
    assert text.startswith(EXIT_LABELS[code])
    assert opened.count("#scenarios tr.scenario") == 1
    passes = sum(
        json.loads((folder / r / "journal.json").read_text())["exit_code"] == 0
        for r in ("run-1", "run-2")
    )
    assert f"{passes}/2" in opened.page.locator("#scenarios tr.scenario").inner_text()
    links = opened.page.locator("#scenarios a")
    assert [links.nth(i).get_attribute("href") for i in range(links.count())] == [
        "run-1/report.html", "run-2/report.html",
    ]  # fmt: skip
    columns = opened.count("#library-matrix th") - 2  # less the corner and the row's name
    assert columns >= 3
    assert opened.count("#library-matrix td.cell") == columns


def test_two_runs_compared_in_the_browser(browser: Browser, runs: Any, tmp_path: Path) -> None:
    _, folder, _ = runs
    out = tmp_path / "compare.html"
    a, b = (folder / r / "journal.json" for r in ("run-1", "run-2"))
    compared = commands.run([HARNESS, "compare", str(a), str(b), "--out", str(out)], timeout=60)
    assert compared.returncode == 0, compared.stdout + compared.stderr
    opened = open_page(browser, out, tmp_path / "compare.png")
    journals = [json.loads(p.read_text()) for p in (a, b)]
    groups = set(journals[0]["series"]["groups"]) | set(journals[1]["series"]["groups"])
    assert opened.count('#overlay [id^="series-throughput-"]') == 2 * len(groups)
    assert opened.count('#overlay [id^="fault-"]') == 2
    cells = opened.page.locator("#runs .verdict-cell")
    assert [int(cells.nth(i).get_attribute("data-exit-code") or -1) for i in (0, 1)] == [
        j["exit_code"] for j in journals
    ]
    names = {(p, n) for j in journals for p, g in j["stats"].items() for n in g}
    assert opened.count("#deltas tr.delta") == len(names)


def test_the_readme_screenshot_is_taken_of_a_run_page(runs: Any, tmp_path: Path) -> None:
    """``make screenshot``'s second step, on a page of this module's runs."""
    _, folder, _ = runs
    out = tmp_path / "img" / "report.png"
    taken = commands.run(
        [sys.executable, str(ROOT / "scripts/screenshot.py"), str(folder / "run-1/report.html"),
         str(out), "--height", "900"],
        timeout=120,
    )  # fmt: skip
    assert taken.returncode == 0, taken.stdout + taken.stderr
    assert f"screenshot: {out}" in taken.stdout
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    width, height = struct.unpack(">II", out.read_bytes()[16:24])
    assert (width, height) == (1280, 900)
    missing = commands.run(
        [sys.executable, str(ROOT / "scripts/screenshot.py"), str(tmp_path / "none.html"),
         str(tmp_path / "x.png")], timeout=60,
    )  # fmt: skip
    assert missing.returncode == 4
    assert "no page at" in missing.stderr
