"""The release-gate workflow (`.github/workflows/`) passes actionlint, and does what the
README says it does: the suite on every push and pull request, the whole scenario library
on a release tag with its reports kept, the virtualenv and the tool builds cached.

actionlint is built by `make setup` into `.tools/bin`, the way the Toxiproxy server is.
"""

from __future__ import annotations

import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
ACTIONLINT = ROOT / ".tools" / "bin" / "actionlint"
WORKFLOW = ROOT / ".github" / "workflows" / "release-gate.yml"


def actionlint(*files: Path) -> subprocess.CompletedProcess[str]:
    assert ACTIONLINT.exists(), "actionlint is missing: run `make setup`"
    return subprocess.run(
        [str(ACTIONLINT), "-no-color", *map(str, files)],
        cwd=ROOT, capture_output=True, text=True, timeout=60,
    )  # fmt: skip


def test_every_workflow_passes_actionlint() -> None:
    workflows = sorted((ROOT / ".github" / "workflows").glob("*.y*ml"))
    assert workflows
    done = actionlint(*workflows)
    assert done.returncode == 0, done.stdout + done.stderr


@pytest.mark.parametrize(
    ("broken", "named"),
    [
        ("runs-on: ubuntu-latest", "runs-on: [ubuntu-latest"),  # not YAML any more
        ("${{ startsWith(github.ref, 'refs/tags/') }}", "${{ startsWith(github.reff, 1) }}"),
        ("needs", None),
    ],
    ids=["syntax", "expression", "job-needs"],
)
def test_actionlint_refuses_a_broken_copy(tmp_path: Path, broken: str, named: str | None) -> None:
    """The check can fail: each copy breaks the workflow one way."""
    text = WORKFLOW.read_text()
    if named is None:  # a job waiting on a job that does not exist
        text = text.replace("  gate:\n", "  gate:\n    needs: [build]\n", 1)
    else:
        assert broken in text
        text = text.replace(broken, named, 1)
    copy = tmp_path / ".github" / "workflows" / "gate.yml"
    copy.parent.mkdir(parents=True)
    copy.write_text(text)
    done = actionlint(copy)
    assert done.returncode == 1, done.stdout + done.stderr
    assert "gate.yml" in done.stdout


def jobs() -> dict[str, Any]:
    workflow = yaml.safe_load(WORKFLOW.read_text())
    found: dict[str, Any] = workflow["jobs"]
    # PyYAML reads the key `on` as True (YAML 1.1)
    found["_on"] = workflow.get("on", workflow.get(True))
    return found


def runs(job: dict[str, Any]) -> list[str]:
    return [step["run"] for step in job["steps"] if "run" in step]


def test_push_and_pull_request_run_the_suite_and_a_tag_runs_the_gate() -> None:
    found = jobs()
    on = found["_on"]
    assert {"push", "pull_request"} <= set(on)
    assert any(tag.startswith("v") for tag in on["push"]["tags"])
    test, gate = found["test"], found["gate"]
    assert "make test" in runs(test)
    assert "make gate" in runs(gate)
    assert "!startsWith(github.ref, 'refs/tags/')" in test["if"]
    assert "startsWith(github.ref, 'refs/tags/')" in gate["if"].replace("!startsWith", "")
    for job in (test, gate):
        # the system packages as root, by the same make step a user runs
        assert "sudo make system-packages" in runs(job)
        cached = [s for s in job["steps"] if str(s.get("uses", "")).startswith("actions/cache")]
        assert cached
        assert {".venv", ".tools"} <= set(cached[0]["with"]["path"].split())
    uploads = [s for s in gate["steps"] if str(s.get("uses", "")).startswith("actions/upload")]
    assert uploads
    assert uploads[0]["if"] == "always()"
    assert "reports" in uploads[0]["with"]["path"]
