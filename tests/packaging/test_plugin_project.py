"""A project of its own, outside this repository, with no ``conftest.py``: the harness's
pytest plugin (registered by the ``pytest11`` entry point of the installed package) runs its
scenario folder (``--scenarios``) and its tests that use the stack fixtures, under xdist.
"""

from __future__ import annotations

import os
import sys
import tempfile
import xml.etree.ElementTree as ET
from pathlib import Path

from tests.cli.test_scenario_plugin import TINY
from tests.plugins import commands

#: the plugin test's own tiny scenario, as the project's
SCENARIO = TINY.replace("tiny-gate", "project-gate")
TESTS = """\
import json
import urllib.request
from decimal import Decimal

import pytest

from isolation_harness.chaos.pytest_plugin import FaultLeftBehind


def get(url, headers):
    with urllib.request.urlopen(urllib.request.Request(url, headers=headers), timeout=10) as r:
        return json.loads(r.read())


def test_a_funded_user_sees_its_money(harness_app_url, harness_user):
    alice = harness_user({"USDT": "25"})
    found = get(harness_app_url + "/api/wallet/balances", alice.headers)["balances"]
    assert [Decimal(b["available"]) for b in found if b["currency"] == "USDT"] == [25]


def test_a_fault_acts_in_its_block_and_is_reverted(harness_fault, toxiproxy):
    with harness_fault({"type": "link_down", "link": "pg_p2p"}) as fault:
        assert fault.type == "link_down"
        assert toxiproxy.get_proxy("pg_p2p").enabled is False
    assert toxiproxy.get_proxy("pg_p2p").enabled is True


def test_a_fault_is_reverted_when_its_block_fails(harness_fault, toxiproxy):
    with pytest.raises(ZeroDivisionError):
        with harness_fault({"type": "toxic", "link": "pg_swap", "toxic": "latency",
                            "attributes": {"latency": 100}}):
            1 / 0
    assert toxiproxy.get_proxy("pg_swap").toxics() == {}


def test_what_the_block_leaves_behind_fails_it(harness_fault, toxiproxy):
    with pytest.raises(FaultLeftBehind, match="toxic by_hand"):
        with harness_fault({"type": "link_down", "link": "pg_p2p"}):
            toxiproxy.get_proxy("pg_wallet").add_toxic(
                type="latency", name="by_hand", attributes={"latency": 1})
    toxiproxy.get_proxy("pg_wallet").destroy_toxic("by_hand")
"""


def test_a_project_runs_its_scenarios_and_stack_tests_with_xdist(tmp_path: Path) -> None:
    with tempfile.TemporaryDirectory(prefix="harness-project-") as folder:
        project = Path(folder)
        (project / "gate").mkdir()
        (project / "gate" / "project-gate.yaml").write_text(SCENARIO)
        (project / "tests").mkdir()
        (project / "tests" / "test_stack.py").write_text(TESTS)
        junit = tmp_path / "junit.xml"
        env = {k: v for k, v in os.environ.items()
               if not k.startswith(("HARNESS_", "PYTEST_", "TOXIPROXY_"))}  # fmt: skip
        env["HARNESS_APP_WORKERS"] = "1"
        result = commands.run(
            [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-n", "2",
             "--dist", "loadfile", "--scenarios", "gate", "tests", f"--junitxml={junit}",
             f"--scenario-reports={tmp_path / 'reports'}"],
            cwd=project, env=env, timeout=240,
        )  # fmt: skip
        output = result.stdout + result.stderr
        assert result.returncode == 0, output
        assert not (project / "conftest.py").exists()
    cases = {case.get("name"): case for case in ET.parse(junit).iter("testcase")}
    assert "project-gate[isolated]" in cases, sorted(cases)
    assert len(cases) == 5, sorted(cases)
    assert not [n for n, c in cases.items() if c.find("failure") is not None]
    assert (tmp_path / "reports" / "project-gate-isolated" / "journal.json").exists()
