"""The JSON journal of a run: config, seed, versions, timeline, per-phase statistics, verdicts.

Reports (JUnit, console) are rendered from this journal, never from live state.
"""

from __future__ import annotations

import json
import shlex
from pathlib import Path
from typing import Any

from isolation_harness.chaos.errors import ConfigError
from isolation_harness.chaos.run.record import RunRecord

JOURNAL_VERSION = 2
#: what to pass instead of something that is not a journal
A_JOURNAL = "pass the journal.json a run wrote (reports/<scenario>-<variant>/journal.json)"


def journal(record: RunRecord) -> dict[str, Any]:
    scenario = record.scenario
    outcome = record.outcome
    return {
        "journal_version": JOURNAL_VERSION,
        "scenario": json.loads(scenario.model_dump_json()),
        "source": str(record.source) if record.source else None,
        "variant": scenario.variant,
        "seed": record.seed,
        "versions": record.versions,
        "started_at": record.started_at,
        "ended_at": record.ended_at,
        # What the run cost: its wall time, the part of it beyond the judged phases, and
        # each step's seconds (runner.STEPS)
        "wall_seconds": record.wall_seconds,
        "fixed_cost_seconds": record.fixed_cost,
        "step_seconds": record.steps,
        "interrupted": record.interrupted,
        # Each phase with the CPU and event-loop figures it was judged on (judge/saturation.py)
        "timeline": [
            {**p.as_dict(), "machine": outcome.analysis.get("machine", {}).get(p.name)}
            for p in record.phases
        ],
        "limits": None if record.limits is None else vars(record.limits),
        "load": {
            "samples": record.samples,
            "operations": record.operations,
            "saturated": record.saturated,
        },
        # the requests over time per group, for the report's timeline (load/series.py)
        "series": record.series,
        "stats": record.stats,
        "server": record.server,
        "recovered_after_s": record.recovered_after,
        "residue": record.residue,
        "blast_radius": outcome.analysis.get("blast_radius", []),
        "faults": outcome.analysis.get("faults", []),
        "verdicts": {
            "thresholds": [t.as_dict() for t in outcome.thresholds],
            "invariants": [i.as_dict() for i in outcome.invariants],
            "validity": [v.as_dict() for v in outcome.validity],
            "expectations": [e.as_dict() for e in outcome.expectations],
            "harness_errors": outcome.harness_errors,
        },
        "expect": "pass" if scenario.expect == "pass" else "fail",
        "result": outcome.label(),
        "exit_code": outcome.exit_code(),
        "reasons": outcome.reasons(),
    }


def read_journal(path: Path) -> dict[str, Any]:
    """The journal at ``path``; :class:`ConfigError` naming the file if it cannot be read or
    is not a journal of this harness."""
    try:
        text = path.read_text()
    except OSError as exc:
        raise ConfigError(f"cannot read {path}: {exc.strerror or exc}", A_JOURNAL) from None
    try:
        data = json.loads(text)
    except ValueError:
        data = None
    if not isinstance(data, dict) or "journal_version" not in data:
        raise ConfigError(f"{path} is not a harness journal", A_JOURNAL)
    return data


def write_journal(record: RunRecord, path: Path) -> dict[str, Any]:
    # The command that runs it again: its scenario as recorded, its seed and variant.
    data = {**journal(record), "replay": f"harness run --replay {shlex.quote(str(path))}"}
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(data, indent=2, default=str))
    return data
