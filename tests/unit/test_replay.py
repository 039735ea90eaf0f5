"""A recorded run read back from its journal, to be run again (``harness run --replay``)."""

from __future__ import annotations

import io
import json
from pathlib import Path

import pytest
from rich.console import Console

from isolation_harness.chaos.cli.replay import read_recorded_run
from isolation_harness.chaos.errors import EXIT_HARNESS_ERROR, ConfigError
from isolation_harness.chaos.report.journal import JOURNAL_VERSION, write_journal
from isolation_harness.chaos.report.summary import print_summary
from isolation_harness.chaos.run.record import RunRecord
from isolation_harness.chaos.scenario.loader import load_scenario
from isolation_harness.chaos.scenario.model import Scenario

ROOT = Path(__file__).resolve().parents[2]
DATA = ROOT / "tests" / "data" / "scenarios"
SCENARIO_FILES = [
    *sorted((ROOT / "scenarios").rglob("*.yaml")),
    DATA / "good_full.yaml",
    DATA / "minimal.yaml",  # thresholds: none
]


@pytest.mark.parametrize("path", SCENARIO_FILES, ids=lambda path: path.stem)
def test_a_recorded_scenario_reads_back_as_it_ran(path: Path) -> None:
    scenario = load_scenario(path)
    assert Scenario.from_record(json.loads(scenario.model_dump_json())) == scenario


@pytest.fixture
def scenario_file(tmp_path: Path) -> Path:
    path = tmp_path / "scenario.yaml"
    # recorded against the legacy design, where a fault on pg_p2p is refused: the shared link
    path.write_text(
        (DATA / "good_full.yaml").read_text().replace("link: pg_p2p", "link: pg_shared")
    )
    return path


def recorded(scenario_file: Path, folder: Path, variant: str = "legacy") -> Path:
    """The journal of a run of ``scenario_file`` against ``variant``, seeded with 1234."""
    scenario = load_scenario(scenario_file).with_variant(variant)
    target = folder / "reports" / "journal.json"
    write_journal(RunRecord(scenario, scenario_file, 1234), target)
    return target


def test_a_journal_replays_its_scenario_seed_and_variant(
    scenario_file: Path, tmp_path: Path
) -> None:
    journal = recorded(scenario_file, tmp_path)
    run = read_recorded_run(journal)
    assert run.scenario == load_scenario(scenario_file).with_variant("legacy")
    assert (run.seed, run.scenario.variant, run.source) == (1234, "legacy", scenario_file)
    # Run against another variant than the file's: the file did not change for that.
    assert run.source_note() is None


def test_a_journal_names_the_command_that_replays_it(scenario_file: Path, tmp_path: Path) -> None:
    journal = recorded(scenario_file, tmp_path)
    data = json.loads(journal.read_text())
    assert data["replay"] == f"harness run --replay {journal}"
    printed = io.StringIO()
    print_summary(data, Console(file=printed, width=200))
    assert f"replay: harness run --replay {journal}\n" in printed.getvalue()


def test_a_changed_scenario_file_is_noted_and_the_recorded_one_replayed(
    scenario_file: Path, tmp_path: Path
) -> None:
    journal = recorded(scenario_file, tmp_path)
    before = load_scenario(scenario_file)
    scenario_file.write_text(scenario_file.read_text().replace("users: 60", "users: 61"))
    assert load_scenario(scenario_file).load.users == 61 != before.load.users
    run = read_recorded_run(journal)
    assert run.scenario.load.users == before.load.users
    assert run.source_note() == (
        f"note: {scenario_file} changed since the run; replaying the scenario as {journal} "
        "recorded it"
    )
    scenario_file.write_text("not: [a scenario")  # broken by now: changed too
    assert run.source_note() is not None
    scenario_file.unlink()  # gone: nothing to compare with
    assert read_recorded_run(journal).source_note() is None


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ("{not json", "is not a harness journal"),
        ("[1, 2]", "is not a harness journal"),
        ('{"result": "PASS"}', "is not a harness journal"),
        ('{"journal_version": 99}', "unknown journal_version 99 (this harness reads"),
        ('{"journal_version": 2, "seed": 1, "variant": "isolated"}', "records no scenario"),
        (
            '{"journal_version": 2, "seed": 1, "variant": "isolated", "scenario": {"name": "x"}}',
            "the scenario it records is not valid here: load: Field required",
        ),
    ],
    ids=["not-json", "not-an-object", "no-version", "unknown-version", "no-scenario", "invalid"],
)
def test_what_is_not_a_journal_of_this_harness_is_a_config_error_naming_it(
    tmp_path: Path, text: str, problem: str
) -> None:
    assert JOURNAL_VERSION == 2  # the version the cases above write
    path = tmp_path / "journal.json"
    path.write_text(text)
    with pytest.raises(ConfigError) as raised:
        read_recorded_run(path)
    assert str(raised.value).startswith(str(path))
    assert problem in str(raised.value)
    assert raised.value.exit_code == EXIT_HARNESS_ERROR


def test_a_missing_journal_is_a_config_error_naming_it(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"cannot read .*nowhere\.json"):
        read_recorded_run(tmp_path / "nowhere.json")
