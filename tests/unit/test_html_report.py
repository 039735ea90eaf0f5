"""The HTML pages (chaos/report/html.py), read as a browser's DOM would be: what they show
for a correct run, for a broken build, for a suite, two runs and a load run, and that they
need nothing outside themselves. The pages in a real browser: tests/e2e/."""

from __future__ import annotations

import re
from collections import Counter
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import pytest

from isolation_harness.chaos.report.html import (
    Entry,
    compare_page,
    index_page,
    load_page,
    run_page,
    write_run_report,
)
from isolation_harness.chaos.report.load_report import result_json
from isolation_harness.load.runner import LoadPlan, LoadResult
from isolation_harness.load.series import time_series
from tests.unit.journal_data import STORY, deposits_hit, full_journal
from tests.unit.judge_data import correct_run, healthy


class Page(HTMLParser):
    """Every element's tag and attributes, and the text inside each element with an id."""

    def __init__(self, text: str) -> None:
        super().__init__()
        self.elements: list[tuple[str, dict[str, str]]] = []
        self.texts: dict[str, str] = {}
        self._open: list[str | None] = []
        self.feed(text)

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        found = {k: v or "" for k, v in attrs}
        self.elements.append((tag, found))
        if tag not in ("br", "meta", "link", "img", "input", "hr", "path", "use", "rect"):
            self._open.append(found.get("id"))

    def handle_endtag(self, tag: str) -> None:
        if self._open and tag not in ("br", "meta"):
            self._open.pop()

    def handle_data(self, data: str) -> None:
        for element_id in self._open:
            if element_id:
                self.texts[element_id] = self.texts.get(element_id, "") + data

    def ids(self, prefix: str) -> list[str]:
        return [a["id"] for _, a in self.elements if a.get("id", "").startswith(prefix)]

    def cells(self, table_class: str = "cell") -> list[dict[str, str]]:
        return [a for t, a in self.elements
                if t == "td" and table_class in a.get("class", "").split()]  # fmt: skip

    def one(self, element_id: str) -> dict[str, str]:
        (found,) = [a for _, a in self.elements if a.get("id") == element_id]
        return found


def classes(cell: dict[str, str]) -> set[str]:
    return set(cell["class"].split())


@pytest.fixture(scope="module")
def correct() -> dict[str, Any]:
    return full_journal(correct_run(STORY))


@pytest.fixture(scope="module")
def broken() -> dict[str, Any]:
    return deposits_hit()


def test_a_correct_run_shows_its_verdict_timeline_and_matrix(correct: dict[str, Any]) -> None:
    page = Page(run_page(correct))
    verdict = page.one("verdict")
    assert correct["exit_code"] == 0
    assert verdict["data-exit-code"] == "0"
    assert "pass" in verdict["class"]
    assert page.texts["verdict"].strip().startswith("PASS")
    groups = sorted(correct["series"]["groups"])
    assert groups == ["deposits", "p2p", "swap", "wallet"]
    for panel in ("throughput", "latency", "errors"):
        assert page.ids(f"series-{panel}-") == [f"series-{panel}-{g}" for g in groups]
    assert len(page.ids("series-p50-")) == len(groups)
    # the server's samples: in use and waiting per pool, connections per application
    assert len(page.ids("series-pool-in-use-")) == 3
    assert len(page.ids("series-pool-waiting-")) == 3
    assert page.ids("series-connections-") == [
        "series-connections-deposits",
        "series-connections-p2p",
    ]
    assert page.ids("fault-") == ["fault-0"]  # the outage's band
    assert page.ids("phase-") == ["phase-0", "phase-1", "phase-2"]
    cells = page.cells()
    assert len(cells) == 1 * len(groups)  # one faulted phase x every group
    by_group = {c["data-group"]: classes(c) for c in cells}
    assert "target" in by_group["p2p"]
    assert not any("hit" in c for c in by_group.values())


def test_a_broken_build_fails_on_the_page_and_its_hit_cell_stands_out(
    broken: dict[str, Any],
) -> None:
    page = Page(run_page(broken))
    verdict = page.one("verdict")
    assert broken["exit_code"] != 0
    assert verdict["data-exit-code"] == str(broken["exit_code"])
    assert "fail" in verdict["class"]
    assert page.texts["verdict"].strip().startswith("FAIL")
    for reason in broken["reasons"][:8]:
        assert reason in page.texts["verdict"]
    hit = [c for c in page.cells() if "hit" in classes(c)]
    assert [c["data-group"] for c in hit] == ["deposits"]
    assert "named p2p" in re.sub(r"\s+", " ", run_page(broken))


def test_thresholds_invariants_and_validity_each_get_a_row(correct: dict[str, Any]) -> None:
    text = run_page({**correct, "replay": "harness run --replay reports/x/journal.json"})
    page = Page(text)
    rows = [a for t, a in page.elements if t == "tr"]
    verdicts = correct["verdicts"]
    assert len(rows) >= len(verdicts["thresholds"]) + len(verdicts["invariants"])
    assert page.texts["replay"] == "harness run --replay reports/x/journal.json"
    assert str(correct["seed"]) in text


def test_a_breached_threshold_shows_its_negative_margin() -> None:
    from tests.unit.journal_data import slow_deposits

    data = slow_deposits()
    (breach,) = [t for t in data["verdicts"]["thresholds"] if not t["passed"]]
    text = run_page(data)
    assert "BREACHED" in text
    assert f"{breach['margin']:+.4g}" in text  # -500 ms


def test_a_page_needs_nothing_outside_itself(broken: dict[str, Any]) -> None:
    text = run_page(broken)
    assert "<script" not in text
    assert not re.search(r"""(src|href)\s*=\s*["']?(https?:)?//""", text)
    assert not re.search(r"url\(\s*['\"]?(?!#)", text), "only the page's own #ids"
    assert "@import" not in text
    assert "Content-Security-Policy" in text  # and a browser would refuse it anyway


def test_a_journal_without_series_still_renders(correct: dict[str, Any]) -> None:
    old = {k: v for k, v in correct.items() if k != "series"}
    page = Page(run_page(old))
    assert page.ids("series-throughput-") == []
    assert page.ids("series-pool-in-use-")  # the server's samples are drawn
    assert "records no requests over time" in run_page(old)


def test_a_run_report_lands_beside_its_journal(tmp_path: Path, correct: dict[str, Any]) -> None:
    journal = tmp_path / "scenario-isolated" / "journal.json"
    journal.parent.mkdir()
    journal.write_text("{}")
    assert write_run_report(journal, correct) == journal.parent / "report.html"
    assert (journal.parent / "report.html").read_text().startswith("<!doctype html>")


def test_the_suite_index_shows_pass_rates_and_the_library_matrix(
    tmp_path: Path, correct: dict[str, Any], broken: dict[str, Any]
) -> None:
    good = Entry([correct, correct], [tmp_path / "good" / f"run-{n}" / "journal.json"
                                      for n in (1, 2)])  # fmt: skip
    bad = Entry([{**broken, "scenario": {**broken["scenario"], "name": "broken"}}],
                [tmp_path / "broken-isolated" / "journal.json"])  # fmt: skip
    page = Page(index_page([good, bad], tmp_path))
    assert page.one("verdict")["data-exit-code"] == str(broken["exit_code"])
    rows = [a for t, a in page.elements if t == "tr" and "scenario" in a.get("class", "")]
    assert [r["data-exit-code"] for r in rows] == ["0", str(broken["exit_code"])]
    text = index_page([good, bad], tmp_path)
    assert ">2/2<" in text
    assert ">0/1<" in text
    assert 'href="good/run-1/report.html"' in text
    assert 'href="broken-isolated/report.html"' in text
    # the closest threshold with room to measure: not an "error_rate == 0" that held (0)
    assert text.count("<code>p99 &lt; 1s</code>") == 2
    assert "<code>error_rate == 0</code>" not in text
    cells = page.cells()
    groups = sorted(correct["series"]["groups"])
    assert len(cells) == 2 * len(groups)
    hits = [c["data-group"] for c in cells if "hit" in classes(c)]
    assert hits == ["deposits"]  # in the broken scenario's row only


def test_compare_overlays_both_runs_and_lists_the_deltas(
    correct: dict[str, Any], broken: dict[str, Any]
) -> None:
    text = compare_page(correct, broken, ("before", "after"))
    page = Page(text)
    groups = sorted(correct["series"]["groups"])
    throughput = page.ids("series-throughput-")
    assert sorted(throughput) == sorted([f"series-throughput-{g}-{r}" for g in groups
                                         for r in ("a", "b")])  # fmt: skip
    assert page.ids("fault-") == ["fault-0", "fault-1"]
    exits = [a["data-exit-code"] for t, a in page.elements if "verdict-cell" in a.get("class", "")]
    assert exits == ["0", str(broken["exit_code"])]
    deltas = [a for t, a in page.elements if t == "tr" and a.get("class") == "delta"]
    names = Counter((p, n) for p, g in correct["stats"].items() for n in g)
    assert len(deltas) == len(names | Counter((p, n) for p, g in broken["stats"].items()
                                              for n in g))  # fmt: skip
    # deposits.create's error rate went from 0 to 100 % in the outage
    assert "+100.0%" in text


def test_a_load_run_page_has_its_timeline_and_percentiles() -> None:
    samples = healthy(100.0, 110.0)
    plan = LoadPlan(host="http://127.0.0.1:1", users=5, spawn_rate=5, duration=10,
                    mix={"deposits": 1}, admin_token="x")  # fmt: skip
    result = LoadResult(plan, samples, [], 100.0, 110.0, False, [])
    page = Page(load_page(result_json(result), time_series(samples, 100.0)))
    groups = ["deposits", "swap", "wallet"]
    assert page.ids("series-throughput-") == [f"series-throughput-{g}" for g in groups]
    assert page.ids("series-pool-") == []  # a load run samples no server
    rows = [a for t, a in page.elements if t == "tr"]
    assert len(rows) == 1 + len(result.stats())  # the header, each request name and "all"
