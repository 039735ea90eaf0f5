"""JUnit XML from journals: one test suite per scenario, one test case per threshold,
isolation verdict, invariant, validity check and expected failure, so that any CI that reads
JUnit can gate on a scenario. An undefined verdict (nothing to judge it on) is an error, not
a failure: like an invalid run.

A scenario run several times (``--repeat N``) is still one test suite: one outcome test case
per run, and every other test case fails if its check failed in any run, its message saying
in which. The suite's properties give the runs, passes and pass rate; each threshold's test
case carries its margin (:mod:`chaos.report.repetition`): the minimum and median over the runs.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from collections.abc import Callable, Hashable, Mapping, Sequence
from pathlib import Path
from typing import Any, TypeVar

from isolation_harness.chaos.errors import EXIT_PASS, worst
from isolation_harness.chaos.report.repetition import margin_spread

Journal = Mapping[str, Any]
K = TypeVar("K", bound=Hashable)


def _case(suite: ET.Element, classname: str, name: str, seconds: float = 0.0) -> ET.Element:
    return ET.SubElement(suite, "testcase", classname=classname, name=name, time=f"{seconds:.3f}")


def _properties(parent: ET.Element, values: Mapping[str, object]) -> None:
    props = ET.SubElement(parent, "properties")
    for key, value in values.items():
        ET.SubElement(props, "property", name=key, value=str(value))


def _seconds(data: Journal) -> float:
    return max(0.0, float(data["ended_at"]) - float(data["started_at"]))


def _fixed_cost(data: Journal) -> float:
    return float(data.get("fixed_cost_seconds") or 0.0)


def _across(
    runs: Sequence[Journal],
    items: Callable[[Journal], Sequence[Journal]],
    key: Callable[[Journal], K],
) -> dict[K, list[Journal | None]]:
    """Each item (a verdict, an invariant…) of the runs, by ``key``: one entry per run, None
    in a run that did not have it; in order of first appearance."""
    found: dict[K, list[Journal | None]] = {}
    for index, data in enumerate(runs):
        for item in items(data):
            found.setdefault(key(item), [None] * len(runs))[index] = item
    return found


def _where(
    per_run: Sequence[Journal | None], bad: Callable[[Journal], bool]
) -> list[tuple[int, Journal]]:
    """The runs (0-based) in which the item was there and ``bad``."""
    return [(i, item) for i, item in enumerate(per_run) if item is not None and bad(item)]


def _in_runs(found: Sequence[tuple[int, Journal]], total: int, what: str) -> str:
    """``breached in 2 of 5 runs (2, 4); run 2: ``, to put before the first such run's
    detail; nothing for a single run."""
    if total == 1:
        return ""
    numbers = ", ".join(str(i + 1) for i, _ in found)
    return f"{what} in {len(found)} of {total} runs ({numbers}); run {found[0][0] + 1}: "


def _number(value: float | None) -> str:
    return "-" if value is None else f"{value:.6g}"


def _threshold_key(t: Journal) -> tuple[str, str, str, str]:
    return (t.get("source", "threshold"), t["group"], t["phase"], t["expression"])


def _suite(root: ET.Element, runs: Sequence[Journal]) -> None:
    """One scenario and variant, run once or more."""
    first, total = runs[0], len(runs)
    name, variant = first["scenario"]["name"], first["variant"]
    expect_fail = first["expect"] == "fail"
    codes = [int(data["exit_code"]) for data in runs]
    code = worst(codes)
    passes = codes.count(EXIT_PASS)
    suite = ET.SubElement(
        root, "testsuite", name=f"{name} [{variant}]", timestamp=str(first["started_at"])
    )
    _properties(
        suite,
        {
            "seed": ",".join(str(data["seed"]) for data in runs),
            "variant": variant,
            "expect": first["expect"],
            "result": runs[codes.index(code)]["result"],
            "exit_code": code,
            "runs": total,
            "passes": passes,
            "pass_rate": f"{passes / total:.4g}",
            "exit_codes": ",".join(str(c) for c in codes),
            # beyond the judged phases: stack start, ramp, readiness, checks, teardown
            "fixed_cost_seconds": f"{sum(_fixed_cost(data) for data in runs):.3f}",
        },
    )
    classname = f"scenario.{name}.{variant}"
    for index, data in enumerate(runs):
        run = "" if total == 1 else f" of run {index + 1}/{total}"
        outcome = _case(suite, classname, f"outcome{run} (expect {data['expect']})",
                        _seconds(data))  # fmt: skip
        if data["exit_code"] != EXIT_PASS:
            tag = "error" if data["exit_code"] in (3, 4) else "failure"
            ET.SubElement(outcome, tag, message=f"{data['result']} (exit {data['exit_code']})")
        for error in data["verdicts"]["harness_errors"]:
            case = _case(
                suite, classname, "harness" if total == 1 else f"harness (run {index + 1})"
            )
            ET.SubElement(case, "error", message=error)

    expectations = _across(
        runs, lambda d: d["verdicts"].get("expectations", []), lambda e: str(e["name"])
    )
    expected_invariants = {
        e["invariant"] for es in expectations.values() for e in es if e and e.get("invariant")
    }
    for item, per_run in expectations.items():
        case = _case(suite, f"{classname}.expected", f"must fail: {item}")
        missed = _where(per_run, lambda e: not e["happened"])
        if missed:
            ET.SubElement(case, "failure", message=f"did not fail: "
                          f"{_in_runs(missed, total, 'held')}{missed[0][1]['detail']}")  # fmt: skip

    spread = {_threshold_key(t): t for t in margin_spread(runs)}
    for key, per_run in _across(
        runs, lambda d: d["verdicts"]["thresholds"], _threshold_key
    ).items():
        source, group, phase, expression = key
        case = _case(suite, f"{classname}.{source}", f"{group} {phase}: {expression}")
        margins = spread[key]
        _properties(
            case,
            {
                "margin_min": _number(margins["min"]),
                "margin_median": _number(margins["median"]),
                "relative_margin_min": _number(margins["relative_min"]),
                "relative_margin_median": _number(margins["relative_median"]),
                "margin_undefined": margins["undefined"],
                "breached": margins["breached"],
                "judged": margins["judged"],
            },
        )
        out = []
        breached = _where(per_run, lambda t: t.get("defined", True) and not t["passed"])
        undefined = _where(per_run, lambda t: not t.get("defined", True))
        if breached:
            reason = _in_runs(breached, total, "breached") + (
                breached[0][1]["reason"] or "threshold breached"
            )
            if expect_fail:
                out.append(f"failed (failures expected): {reason}")
            else:
                ET.SubElement(case, "failure", message=reason)
        elif undefined:
            reason = _in_runs(undefined, total, "undefined") + undefined[0][1]["reason"]
            ET.SubElement(case, "error", message=f"undefined: {reason}")
        if total > 1:
            out.append(
                f"margin over {total} runs: min {_number(margins['min'])}, median "
                f"{_number(margins['median'])}; relative to the limit: min "
                f"{_number(margins['relative_min'])}, median "
                f"{_number(margins['relative_median'])}; no margin in {margins['undefined']} "
                f"of the {margins['judged']} runs that judged it"
            )
        if out:
            ET.SubElement(case, "system-out").text = "\n".join(out)

    for item, per_run in _across(
        runs, lambda d: d["verdicts"]["invariants"], lambda i: str(i["name"])
    ).items():
        case = _case(suite, f"{classname}.invariants", item)
        violated = _where(per_run, lambda i: not i["passed"])
        if violated:
            text = _in_runs(violated, total, "violated") + "; ".join(violated[0][1]["violations"])
            if item in expected_invariants:
                ET.SubElement(case, "system-out").text = f"violated as expected: {text}"
            else:
                ET.SubElement(case, "failure", message=text[:1000])

    for item, per_run in _across(
        runs, lambda d: d["verdicts"]["validity"], lambda v: str(v["name"])
    ).items():
        case = _case(suite, f"{classname}.validity", item)
        invalid = _where(per_run, lambda v: not v["passed"])
        if invalid:
            detail = _in_runs(invalid, total, "failed") + invalid[0][1]["detail"]
            ET.SubElement(case, "error", message=f"invalid run: {detail}")

    cases = suite.findall("testcase")
    suite.set("tests", str(len(cases)))
    suite.set("failures", str(sum(1 for c in cases if c.find("failure") is not None)))
    suite.set("errors", str(sum(1 for c in cases if c.find("error") is not None)))
    suite.set("time", f"{sum(_seconds(data) for data in runs):.3f}")


def junit_tree(
    scenarios: Sequence[Sequence[Journal]], wall_seconds: float | None = None
) -> ET.ElementTree[ET.Element]:
    """One test suite per item of ``scenarios``: the journals of one scenario and variant,
    one per run (one run unless repeated); ``wall_seconds``, the command's wall time, is the
    root's ``time`` (several scenarios may have run at once)."""
    root = ET.Element("testsuites", name="harness")
    for runs in scenarios:
        _suite(root, runs)
    if wall_seconds is not None:
        root.set("time", f"{wall_seconds:.3f}")
    return ET.ElementTree(root)


def write_junit(
    scenarios: Sequence[Sequence[Journal]], path: Path, *, wall_seconds: float | None = None
) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tree = junit_tree(scenarios, wall_seconds)
    ET.indent(tree)
    tree.write(path, encoding="utf-8", xml_declaration=True)
