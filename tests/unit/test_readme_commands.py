"""Every command the README shows is run by a named test: a command added to the README
without one fails here, and so does a test named here that no longer exists.

``make demo`` and ``make gate`` are what their recipes run (checked with ``make -n``): the
headline scenario, and ``harness suite`` with two jobs, each run by the tests named.
"""

from __future__ import annotations

import ast
import re
import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]

#: a README command (its line, comment left out) -> the tests that run it
EXERCISED: dict[str, tuple[str, ...]] = {
    "make demo": (
        "tests/chaos/test_scenarios.py::test_isolated_design_passes",
        "tests/unit/test_readme_commands.py::test_make_demo_and_gate_run_what_the_readme_says",
    ),
    "make test": (
        "tests/packaging/test_setup.py::test_with_everything_present_the_step_is_silent",
    ),
    "sudo make system-packages": (
        "tests/packaging/test_setup.py::test_without_wrk_setup_installs_it_as_root_or_names_the_command",
        "tests/packaging/test_setup.py::test_a_user_who_is_not_root_is_told_the_command_once",
    ),
    "make gate": (
        "tests/cli/test_suite_cli.py::test_two_jobs_run_both_scenarios_at_once_and_exit_with_the_worst",
        "tests/unit/test_readme_commands.py::test_make_demo_and_gate_run_what_the_readme_says",
    ),
    "harness up": ("tests/cli/test_stack_cli.py::test_up_status_down_lifecycle",),
    "harness status": (
        "tests/cli/test_stack_cli.py::test_up_status_down_lifecycle",
        "tests/cli/test_stack_cli.py::test_status_reports_a_cut_link",
    ),
    "harness down": ("tests/cli/test_stack_cli.py::test_up_status_down_lifecycle",),
    "harness run scenarios/deposits-survive-p2p-outage.yaml [--variant legacy] [--seed N] "
    "[--junit F] [--journal F]": (
        "tests/cli/test_run_cli.py::test_a_run_replays_from_its_journal_with_its_scenario_seed_and_variant",
        "tests/cli/test_environment_cli.py::test_every_stack_command_runs_with_every_variable_of_the_readme_set",
    ),
    "harness run --replay reports/deposits-survive-p2p-outage-isolated/journal.json": (
        "tests/cli/test_run_cli.py::test_a_run_replays_from_its_journal_with_its_scenario_seed_and_variant",
    ),
    "harness suite scenarios/": (
        "tests/cli/test_suite_cli.py::test_the_longest_start_first_and_the_reports_keep_the_files_order",
    ),
    "harness suite scenarios/ --jobs 2": (
        "tests/cli/test_suite_cli.py::test_two_jobs_run_both_scenarios_at_once_and_exit_with_the_worst",
    ),
    "harness run FILE --repeat 10": (
        "tests/cli/test_repeat_cli.py::test_repeat_against_the_stack_prints_pass_rate_and_margins_into_json_and_junit",
        "tests/cli/test_repeat_cli.py::test_suite_repeat_runs_each_scenario_n_times_with_one_repeat_json",
    ),
    "harness validate scenarios/*.yaml": (
        "tests/cli/test_environment_cli.py::test_every_stack_command_runs_with_every_variable_of_the_readme_set",
        "tests/cli/test_run_cli.py::test_malformed_scenario_is_exit_4_with_file_line_and_field",
    ),
    "pytest scenarios/": (
        "tests/cli/test_scenario_plugin.py::test_every_scenario_file_is_collected_with_its_marker",
        "tests/cli/test_scenario_plugin.py::test_a_scenario_runs_as_a_test_and_a_breach_fails_it",
    ),
    "chaos run docs/ctk/experiment.json": (
        "tests/chaos/test_ctk.py::test_the_example_holds_its_steady_state_and_rolls_back",
    ),
    "harness load --users 120 --spawn-rate 60 --duration 30s --mix deposits=6,p2p=2,swap=2 "
    "[--workers N] [--json F] [--csv PREFIX] [--report F]": (
        "tests/cli/test_load_cli.py::test_a_load_run_prints_its_table_and_writes_json_and_csv",
    ),
    "harness report reports/": (
        "tests/cli/test_report_cli.py::test_report_renders_every_journal_of_a_folder_and_its_index",
    ),
    "harness report reports/ --index reports/": (
        "tests/cli/test_report_cli.py::test_report_renders_every_journal_of_a_folder_and_its_index",
    ),
    "harness compare A/journal.json B/journal.json --out reports/compare.html": (
        "tests/cli/test_report_cli.py::test_compare_writes_both_runs_side_by_side",
        "tests/e2e/test_reports_in_browser.py::test_two_runs_compared_in_the_browser",
    ),
    "make screenshot": (
        "tests/e2e/test_reports_in_browser.py::test_the_readme_screenshot_is_taken_of_a_run_page",
        "tests/unit/test_readme_commands.py::test_make_demo_and_gate_run_what_the_readme_says",
    ),
    "locust -f load/locustfile.py": (
        "tests/load/test_users.py::test_the_locustfile_serves_locusts_web_ui",
        "tests/load/test_users.py::test_every_kind_of_user_against_the_app",
    ),
    "locust -f load/locustfile.py --master": (
        "tests/load/test_runner.py::test_two_workers_give_the_union_of_their_samples",
    ),
    "HARNESS_ADMIN_TOKEN=<token> locust -f load/locustfile.py --worker --master-host "
    "<this machine>": (
        "tests/load/test_runner.py::test_two_workers_give_the_union_of_their_samples",
        "tests/cli/test_environment_cli.py::test_every_stack_command_runs_with_every_variable_of_the_readme_set",
    ),
    ".venv/bin/python bench/deposit_throughput.py": (
        "tests/bench/test_benches.py::test_deposit_throughput_prints_three_rates_and_their_ratios",
    ),
    ".venv/bin/python bench/loadgen_efficiency.py": (
        "tests/bench/test_benches.py::test_loadgen_efficiency_prints_wrk_and_the_runner_with_one_and_two_workers",
    ),
    ".venv/bin/python bench/samples_memory.py": (
        "tests/bench/test_benches.py::test_samples_memory_prints_bytes_per_sample_in_memory_and_on_disk",
    ),
    ".venv/bin/python bench/stability.py [--alone 20] [--beside 10] [FILE ...]": (
        "tests/unit/test_stability_suite.py::test_the_suite_beside_is_stopped_by_sigint_when_the_bench_ignores_it",
    ),
}


def readme_commands() -> set[str]:
    """The lines of the README's ``sh`` blocks, each without its comment."""
    text = (ROOT / "README.md").read_text()
    found = set()
    for block in re.findall(r"^```sh\n(.*?)^```", text, flags=re.M | re.S):
        for line in block.splitlines():
            command = re.sub(r"\s+", " ", line.split("  #")[0].split(" # ")[0]).strip()
            if command:
                found.add(command)
    return found


def test_every_readme_command_has_the_tests_that_run_it() -> None:
    commands = readme_commands()
    assert not commands - set(EXERCISED), "README commands no test is named for"
    assert not set(EXERCISED) - commands, "named here, gone from the README"


def test_every_test_named_exists() -> None:
    missing = []
    for nodeid in {t for tests in EXERCISED.values() for t in tests}:
        path, _, name = nodeid.partition("::")
        tree = ast.parse((ROOT / path).read_text())
        defined = {
            node.name
            for node in tree.body
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef)
        }
        if name not in defined:
            missing.append(nodeid)
    assert not missing, missing


def test_make_demo_and_gate_run_what_the_readme_says() -> None:
    def recipe(target: str) -> str:
        return subprocess.run(
            ["make", "-n", "-C", str(ROOT), target, "VENV=.venv"],
            capture_output=True, text=True, timeout=30, check=True,
        ).stdout  # fmt: skip

    assert "harness run scenarios/deposits-survive-p2p-outage.yaml" in recipe("demo")
    assert "harness suite scenarios --jobs 2" in recipe("gate")
    screenshot = recipe("screenshot")
    assert "harness run scenarios/deposits-survive-p2p-outage.yaml" in screenshot
    assert (
        "scripts/screenshot.py reports/deposits-survive-p2p-outage-isolated/report.html "
        "docs/img/report.png" in screenshot
    )
