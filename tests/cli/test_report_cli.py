"""`harness report JOURNAL…` renders runs' pages again, `harness compare A B` two runs side by
side; bad input names the file and writes nothing."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from isolation_harness.chaos.cli import commands as cli
from isolation_harness.chaos.errors import EXIT_HARNESS_ERROR
from tests.unit.journal_data import STORY, deposits_hit, full_journal
from tests.unit.judge_data import correct_run

pytestmark = pytest.mark.light


def journals(tmp_path: Path) -> tuple[Path, Path]:
    """A correct run and a broken build's, where a suite puts them."""
    written = []
    for name, data in (("good", full_journal(correct_run(STORY))), ("broken", deposits_hit())):
        path = tmp_path / "reports" / f"{name}-isolated" / "journal.json"
        path.parent.mkdir(parents=True)
        data: dict[str, Any] = {**data, "scenario": {**data["scenario"], "name": name}}
        path.write_text(json.dumps(data))
        written.append(path)
    return written[0], written[1]


def harness(*args: str) -> int:
    with pytest.raises(SystemExit) as exited:
        cli.main(list(args))
    return int(exited.value.code or 0)


def test_report_renders_every_journal_of_a_folder_and_its_index(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    good, broken = journals(tmp_path)
    folder = tmp_path / "reports"
    assert harness("report", str(folder), "--index", str(folder)) == 0
    out = capsys.readouterr().out
    for journal in (good, broken):
        page = journal.parent / "report.html"
        assert f"report: {page}" in out
        assert 'id="verdict"' in page.read_text()
    index = (folder / "index.html").read_text()
    assert f"index: {folder / 'index.html'}" in out
    assert 'href="good-isolated/report.html"' in index
    assert 'href="broken-isolated/report.html"' in index


def test_compare_writes_both_runs_side_by_side(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    good, broken = journals(tmp_path)
    out = tmp_path / "cmp" / "compare.html"
    code = harness("compare", str(good), str(broken), "--out", str(out),
                   "--label-a", "shared pool off", "--label-b", "shared pool on")  # fmt: skip
    assert code == 0
    assert f"compare: {out}" in capsys.readouterr().out
    page = out.read_text()
    assert "Compare: shared pool off vs shared pool on" in page
    assert 'id="series-throughput-deposits-a"' in page
    assert 'id="series-throughput-deposits-b"' in page


@pytest.mark.parametrize("command", ["report", "compare"])
def test_what_is_not_a_journal_is_named_and_nothing_is_written(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], command: str
) -> None:
    good, _ = journals(tmp_path)
    junk = tmp_path / "junit.xml"
    junk.write_text("<testsuites/>")
    args = [str(good), str(junk)] + (
        ["--out", str(tmp_path / "c.html")] if command == "compare" else []
    )
    assert harness(command, *args) == EXIT_HARNESS_ERROR
    err = capsys.readouterr().err
    assert f"harness: error: {junk} is not a harness journal — pass the journal.json" in err
    assert not (good.parent / "report.html").exists()
    assert not (tmp_path / "c.html").exists()


def test_a_folder_without_journals_is_named(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert harness("report", str(tmp_path)) == EXIT_HARNESS_ERROR
    assert f"no journal.json under {tmp_path}" in capsys.readouterr().err
