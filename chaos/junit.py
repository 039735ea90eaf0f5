"""JUnit XML from journals: one test suite per scenario, one test case per threshold,
isolation verdict, invariant, validity check and expected failure, so that any CI that reads
JUnit can gate on a scenario. An undefined verdict (nothing to judge it on) is an error, not
a failure: like an invalid run."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from collections.abc import Sequence
from pathlib import Path
from typing import Any


def _case(suite: ET.Element, classname: str, name: str, seconds: float = 0.0) -> ET.Element:
    return ET.SubElement(suite, "testcase", classname=classname, name=name, time=f"{seconds:.3f}")


def junit_tree(journals: Sequence[dict[str, Any]]) -> ET.ElementTree[ET.Element]:
    root = ET.Element("testsuites", name="harness")
    for data in journals:
        name = data["scenario"]["name"]
        variant = data["variant"]
        verdicts = data["verdicts"]
        expect_fail = data["expect"] == "fail"
        seconds = max(0.0, float(data["ended_at"]) - float(data["started_at"]))
        suite = ET.SubElement(
            root, "testsuite", name=f"{name} [{variant}]", timestamp=str(data["started_at"])
        )
        props = ET.SubElement(suite, "properties")
        for key in ("seed", "variant", "expect", "result", "exit_code"):
            ET.SubElement(props, "property", name=key, value=str(data[key]))
        classname = f"scenario.{name}.{variant}"
        outcome = _case(suite, classname, f"outcome (expect {data['expect']})", seconds)
        if data["exit_code"] != 0:
            tag = "error" if data["exit_code"] in (3, 4) else "failure"
            ET.SubElement(outcome, tag, message=f"{data['result']} (exit {data['exit_code']})")
        for error in verdicts["harness_errors"]:
            case = _case(suite, classname, "harness")
            ET.SubElement(case, "error", message=error)
        expected = verdicts.get("expectations", [])
        expected_invariants = {e["invariant"] for e in expected if e.get("invariant")}
        for e in expected:
            case = _case(suite, f"{classname}.expected", f"must fail: {e['name']}")
            if not e["happened"]:
                ET.SubElement(case, "failure", message=f"did not fail: {e['detail']}")
        for t in verdicts["thresholds"]:
            source = t.get("source", "threshold")
            case = _case(suite, f"{classname}.{source}", f"{t['group']} {t['phase']}: "
                         f"{t['expression']}")  # fmt: skip
            if not t.get("defined", True):
                ET.SubElement(case, "error", message=f"undefined: {t['reason']}")
            elif not t["passed"]:
                if expect_fail:
                    ET.SubElement(
                        case, "system-out"
                    ).text = f"failed (failures expected): {t['reason']}"
                else:
                    ET.SubElement(case, "failure", message=t["reason"] or "threshold breached")
        for i in verdicts["invariants"]:
            case = _case(suite, f"{classname}.invariants", i["name"])
            if not i["passed"]:
                text = "; ".join(i["violations"])
                if i["name"] in expected_invariants:
                    ET.SubElement(case, "system-out").text = f"violated as expected: {text}"
                else:
                    ET.SubElement(case, "failure", message=text[:1000])
        for v in verdicts["validity"]:
            case = _case(suite, f"{classname}.validity", v["name"])
            if not v["passed"]:
                ET.SubElement(case, "error", message=f"invalid run: {v['detail']}")
        cases = suite.findall("testcase")
        suite.set("tests", str(len(cases)))
        suite.set("failures", str(sum(1 for c in cases if c.find("failure") is not None)))
        suite.set("errors", str(sum(1 for c in cases if c.find("error") is not None)))
        suite.set("time", f"{seconds:.3f}")
    return ET.ElementTree(root)


def write_junit(journals: Sequence[dict[str, Any]], path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tree = junit_tree(journals)
    ET.indent(tree)
    tree.write(path, encoding="utf-8", xml_declaration=True)
