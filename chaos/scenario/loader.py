"""Read scenario files, and say exactly where one is wrong: ``file:line: field: problem``.

The YAML is composed into its node tree (PyYAML, safe loader) before it is turned into
Python values, so that every problem pydantic finds can be traced back to a line: its
error path (``timeline[1].faults[0].link``) is followed through the nodes down to the key
that holds the value. A field that is missing is reported at the line of the mapping that
should hold it. Duplicate keys, which PyYAML would silently collapse to the last one, are
problems too.

    scenario = load_scenario("scenarios/deposits_survive_p2p_outage.yaml")
    problems = validate_files(paths)          # every problem of every file, [] if none

*Why one module of this length:* one job, a file's problems with their lines: the walk
from an error's path to its YAML node and the wording of each kind of problem change
together.
"""

from __future__ import annotations

import json
import types
import typing
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, get_args, get_origin

import yaml
from pydantic import BaseModel, ValidationError
from pydantic_core import ErrorDetails

from isolation_harness.chaos.errors import ConfigError
from isolation_harness.chaos.faults import KINDS, Fault
from isolation_harness.chaos.scenario.counterparts import counterpart_problems
from isolation_harness.chaos.scenario.model import NO_THRESHOLDS_HINT, Scenario

__all__ = ["Problem", "ScenarioFileError", "load_scenario", "validate_files"]

Loc = tuple[str | int, ...]

_MERGE_TAG = "tag:yaml.org,2002:merge"


@dataclass(frozen=True)
class Problem:
    """One problem of a scenario file: where it is (1-based line, field path) and what."""

    file: str
    line: int | None
    field: str
    message: str

    def __str__(self) -> str:
        where = self.file if self.line is None else f"{self.file}:{self.line}"
        return (
            f"{where}: {self.field}: {self.message}" if self.field else f"{where}: {self.message}"
        )


class ScenarioFileError(ConfigError):
    """A scenario file cannot be used; ``problems`` lists everything wrong with it.

    The message is the first problem, e.g.
    ``scenarios/x.yaml:14: timeline[1].faults[0].link: unknown link 'pg_p2q' (known: …)``.
    """

    def __init__(self, problems: Sequence[Problem]) -> None:
        self.problems = tuple(problems)
        more = len(self.problems) - 1
        first = str(self.problems[0])
        if more:
            plural = "s" if more > 1 else ""
            super().__init__(
                f"{first} (and {more} more problem{plural})",
                f"`harness validate {self.problems[0].file}` lists them all",
            )
        else:
            super().__init__(first)


def load_scenario(path: str | Path) -> Scenario:
    """The scenario in the YAML file at ``path``; :class:`ScenarioFileError` if it has any
    problem (a :class:`~chaos.errors.ConfigError`)."""
    scenario, problems = _read(path)
    if problems or scenario is None:
        raise ScenarioFileError(problems)
    return scenario


def validate_files(paths: Iterable[str | Path]) -> list[Problem]:
    """Every problem of every file, in file and line order; empty when all are valid."""
    problems: list[Problem] = []
    for path in paths:
        problems.extend(_read(path)[1])
    return problems


# -- reading ---------------------------------------------------------------------------------


def _read(path: str | Path) -> tuple[Scenario | None, list[Problem]]:
    file = str(path)
    try:
        text = Path(path).read_text(encoding="utf-8")
    except UnicodeDecodeError as error:
        reason = f"not UTF-8 text (byte {error.object[error.start]:#04x} at offset {error.start})"
        return None, [Problem(file, None, "", f"cannot read the file: {reason}")]
    except OSError as error:
        return None, [Problem(file, None, "", f"cannot read the file: {error.strerror or error}")]

    try:
        loader = yaml.SafeLoader(text)
    except yaml.reader.ReaderError as error:  # a control character: refused before parsing
        line = text.count("\n", 0, error.position) + 1
        return None, [
            Problem(file, line, "", f"invalid YAML: {error.reason} ({error.character:#x})")
        ]
    try:
        root = loader.get_single_node()
        data = loader.construct_document(root) if root is not None else None
    except yaml.MarkedYAMLError as error:
        return None, [_syntax_problem(file, error)]
    except yaml.YAMLError as error:
        return None, [Problem(file, None, "", f"invalid YAML: {error}")]
    finally:
        loader.dispose()

    if root is None:
        return None, [
            Problem(file, None, "", "the file is empty: a scenario needs name, load and timeline")
        ]
    if not isinstance(root, yaml.MappingNode) or not isinstance(data, dict):
        return None, [
            Problem(
                file,
                root.start_mark.line + 1,
                "",
                "the top level must be a mapping of scenario fields "
                f"(name, load, timeline, …), not {_kind_of(data)}",
            )
        ]

    problems = _duplicate_keys(file, root)
    scenario: Scenario | None = None
    try:
        scenario = Scenario.model_validate(data)
    except ValidationError as error:
        details = error.errors()
        problems.extend(
            _validation_problem(file, root, detail)
            for detail in details
            if not _said_by_an_item(detail, details) and not _other_form(detail, details)
        )
    if scenario is not None and scenario.legacy is not None:
        problems.extend(_counterpart_problems(file, root, scenario))
    problems.sort(key=lambda p: p.line or 0)
    return scenario, problems


def _counterpart_problems(file: str, root: yaml.Node, scenario: Scenario) -> list[Problem]:
    """The scenario's legacy counterpart (``legacy.counterpart``, relative to ``file``) must
    exist, be valid and fit to stand for the claim (:mod:`chaos.scenario.counterparts`)."""
    assert scenario.legacy is not None
    if scenario.legacy.counterpart is None:
        return []
    loc: Loc = ("legacy", "counterpart")
    line = _line_of(root, loc)
    path = Path(file).parent / scenario.legacy.counterpart
    if not path.is_file():
        return [Problem(file, line, _field_path(loc), f"no such scenario file: {path}")]
    counterpart, problems = _read(path)
    if problems or counterpart is None:
        return [
            Problem(file, line, _field_path(loc), f"the counterpart is not valid: {problems[0]}")
        ]
    return [Problem(file, line, _field_path(loc), problem)
            for problem in counterpart_problems(counterpart)]  # fmt: skip


def _syntax_problem(file: str, error: yaml.MarkedYAMLError) -> Problem:
    mark = error.problem_mark or error.context_mark
    problem, context = error.problem or "", error.context or ""
    if problem.startswith("but "):  # "expected a single document …, but found another one"
        problem, context = f"{context}, {problem}", ""
    what = problem or context or str(error)
    if context and error.context_mark is not None:
        what += f" ({context}, line {error.context_mark.line + 1})"
    if mark is None:
        return Problem(file, None, "", f"invalid YAML: {what}")
    return Problem(file, mark.line + 1, "", f"invalid YAML at column {mark.column + 1}: {what}")


def _duplicate_keys(file: str, root: yaml.Node) -> list[Problem]:
    problems: list[Problem] = []
    seen: set[int] = set()

    def walk(node: yaml.Node, loc: Loc) -> None:
        if id(node) in seen:  # an alias: already walked (and may be recursive)
            return
        seen.add(id(node))
        if isinstance(node, yaml.MappingNode):
            first_line: dict[tuple[str, str], int] = {}
            for key, value in node.value:
                if not isinstance(key, yaml.ScalarNode) or key.tag == _MERGE_TAG:
                    continue
                line = key.start_mark.line + 1
                ident = (key.tag, key.value)
                if ident in first_line:
                    problems.append(
                        Problem(
                            file,
                            line,
                            _field_path((*loc, key.value)),
                            f"duplicate key {key.value!r} (first at line {first_line[ident]}); "
                            "YAML would silently keep only the last one",
                        )
                    )
                else:
                    first_line[ident] = line
                walk(value, (*loc, key.value))
        elif isinstance(node, yaml.SequenceNode):
            for index, item in enumerate(node.value):
                walk(item, (*loc, index))

    walk(root, ())
    return problems


# -- validation errors -----------------------------------------------------------------------


def _validation_problem(file: str, root: yaml.Node, detail: ErrorDetails) -> Problem:
    raw: Loc = tuple(detail["loc"])
    ctx = detail.get("ctx") or {}
    cause = ctx.get("error")
    extra: Loc = getattr(cause, "loc", ())
    loc = _without_tags((*raw, *extra))
    return Problem(file, _line_of(root, loc), _field_path(loc), _message(detail, raw, root))


def _said_by_an_item(detail: ErrorDetails, details: Sequence[ErrorDetails]) -> bool:
    """Whether ``detail`` is a list found too short only because an item of it was refused
    (pydantic reports both; the item's problem is the one to fix)."""
    if detail["type"] != "too_short":
        return False
    loc = tuple(detail["loc"])
    return any(
        len(other["loc"]) > len(loc) and other["loc"][: len(loc)] == loc for other in details
    )


#: how pydantic names the two forms of ``expect`` in an error's path
_EXPECT_FORMS = ("literal['pass']", "Expectation")


def _other_form(detail: ErrorDetails, details: Sequence[ErrorDetails]) -> bool:
    """Whether ``detail`` only says that ``expect`` is not ``pass``, when the mapping form
    has its own, more precise problem (pydantic reports both forms of a union)."""
    loc = tuple(detail["loc"])
    return loc[:2] == ("expect", _EXPECT_FORMS[0]) and any(
        tuple(other["loc"][:2]) == ("expect", _EXPECT_FORMS[1]) for other in details
    )


def _without_tags(loc: Loc) -> Loc:
    """``loc`` without the tag pydantic adds after ``expect`` (which of its forms)."""
    return tuple(
        part
        for index, part in enumerate(loc)
        if not (index == 1 and loc[0] == "expect" and part in _EXPECT_FORMS)
    )


def _line_of(root: yaml.Node, loc: Loc) -> int:
    """The 1-based line of the key (or sequence item) at ``loc``, or of its nearest parent
    that exists in the file."""
    node = root
    line = root.start_mark.line
    for part in loc:
        step = None if part == "[key]" else _step(node, part)
        if step is None:
            break
        node, line = step
    return line + 1


def _field_path(loc: Loc) -> str:
    """``timeline[1].faults[0].link``; keys that are not identifiers are quoted:
    ``thresholds["deposits.*"].fault[0]``."""
    path = ""
    for part in loc:
        if part == "[key]":
            continue
        if isinstance(part, int):
            path += f"[{part}]"
        elif part.isidentifier():
            path += f".{part}" if path else part
        else:
            path += f"[{json.dumps(part)}]"
    return path


def _message(detail: ErrorDetails, raw: Loc, root: yaml.Node) -> str:
    kind = detail["type"]
    ctx = detail.get("ctx") or {}
    value = detail.get("input")
    if kind == "missing":
        return NO_THRESHOLDS_HINT if raw == ("thresholds",) else "required field is missing"
    if kind == "extra_forbidden":
        allowed = _fields_of(raw[:-1], root)
        return f"unknown field (allowed: {', '.join(allowed)})" if allowed else "unknown field"
    if kind in ("value_error", "assertion_error") and "error" in ctx:
        return str(ctx["error"])
    if kind == "too_short":
        least = ctx.get("min_length", 1)
        return f"needs at least {least} item{'s' if least != 1 else ''}"
    if kind in ("tuple_type", "list_type"):
        return f"must be a list, not {_kind_of(value)}"
    if kind in ("dict_type", "model_type", "model_attributes_type"):
        return f"must be a mapping, not {_kind_of(value)}"
    message = detail["msg"]
    if message.startswith("Input should be "):
        message = "must be " + message.removeprefix("Input should be ")
    return f"{message}, not {_kind_of(value)}"


def _kind_of(value: object) -> str:
    if isinstance(value, Mapping):
        return "a mapping"
    if isinstance(value, list | tuple):
        return "a list"
    if value is None:
        return "empty (null)"
    return repr(value)


def _fields_of(loc: Loc, root: yaml.Node) -> list[str]:
    """The field names of the model at ``loc`` (a raw pydantic path), if it is a model; a
    fault's are those of the kind its ``type`` in the file names."""
    annotation: Any = Scenario
    for index, part in enumerate(loc):
        annotation = _unwrap(annotation)
        if annotation is Fault:
            annotation = _fault_kind(root, loc[:index])
        origin = get_origin(annotation)
        if isinstance(annotation, type) and issubclass(annotation, BaseModel):
            field = annotation.model_fields.get(str(part))
            if field is None:
                return []
            annotation = field.annotation
        elif origin in (tuple, list) and isinstance(part, int):
            annotation = get_args(annotation)[0]
        elif origin in (dict, Mapping):
            annotation = get_args(annotation)[1]
        else:
            return []
    annotation = _unwrap(annotation)
    if annotation is Fault:
        annotation = _fault_kind(root, loc)
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return list(annotation.model_fields)
    return []


def _fault_kind(root: yaml.Node, loc: Loc) -> type[Fault] | None:
    """The fault kind the entry at ``loc`` names with its ``type``, if it names one."""
    node: yaml.Node = root
    for part in (*loc, "type"):
        step = _step(node, part)
        if step is None:
            return None
        node = step[0]
    return KINDS.get(node.value) if isinstance(node, yaml.ScalarNode) else None


def _step(node: yaml.Node, part: str | int) -> tuple[yaml.Node, int] | None:
    """The child of ``node`` at ``part`` and the 0-based line that names it (a key's line,
    a sequence item's own), or None. YAML keeps the last of duplicate keys."""
    if isinstance(node, yaml.MappingNode):
        matches = [
            (key, value)
            for key, value in node.value
            if isinstance(key, yaml.ScalarNode) and key.value == str(part)
        ]
        if not matches:
            return None
        key, value = matches[-1]
        return value, key.start_mark.line
    if (
        isinstance(node, yaml.SequenceNode)
        and isinstance(part, int)
        and 0 <= part < len(node.value)
    ):
        item = node.value[part]
        return item, item.start_mark.line
    return None


def _unwrap(annotation: Any) -> Any:
    """``X`` from ``Annotated[X, …]`` and from ``X | None``."""
    while True:
        if get_origin(annotation) is typing.Annotated:
            annotation = get_args(annotation)[0]
            continue
        if get_origin(annotation) in (typing.Union, types.UnionType):
            members = [a for a in get_args(annotation) if a is not type(None)]
            if len(members) == 1:
                annotation = members[0]
                continue
        return annotation
