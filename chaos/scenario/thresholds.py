"""Thresholds: a small k6-like language to say what clients must see in one window.

A threshold compares one statistic of a request group in a phase (or a window of a phase,
see :mod:`chaos.judge.windows`) with a constant, with the same kind of statistic in an
earlier phase, or, for ``codes``, with a set of error codes::

    threshold  := metric op rhs | "codes" "in" "(" [name ("," name)*] ")"
    rhs        := quantity | reference
    reference  := [number "*"] phase "." metric [("+" | "-") quantity]
    quantity   := number [unit]
    op         := "<" | "<=" | ">" | ">=" | "==" | "!="
    metric     := name | name "(" name ")"      (the metrics of :mod:`chaos.metrics`)
    unit       := "ms" | "s"   (latencies; a bare number is milliseconds)
                | "%"          (rates; a bare number is a fraction, 5% == 0.05)

Metrics (registered in :mod:`chaos.metrics`; client side, from every sample of the group in
the window):

- latencies (ms): ``p50 p90 p95 p99 max mean``;
- rates: ``error_rate`` (failures / requests), ``share_naming(<service>)`` (the share of
  failures whose error body names that service);
- throughput: ``rps``;
- counts: ``count``, ``failures``, ``status_<NNN>`` (answers with that HTTP status, e.g.
  ``status_503``), ``timeouts`` (the client gave up), ``connection_errors`` (refused,
  reset), ``unstructured_5xx`` (5xx answers whose body is not the app's error shape
  exactly), ``naming(<service>)`` (failures naming that service), ``code(<code>)``
  (failures with that error code), ``foreign_failures`` (failures naming a service other
  than the group's own or a target of the window's faults), ``in_flight_max`` (most
  requests of the group in flight at once);
- server side, for the pools of the group's services: ``pool_in_use_max``,
  ``pool_waiting_max``, ``acquire_timeouts`` (acquires that gave up);
- a set: ``codes``, the error codes of the group's failures, with ``in``:
  ``codes in (pool_timeout, database_unavailable)``.

Both sides of a comparison must be the same kind of quantity (a latency with a latency…):
``p99 < baseline.error_rate`` is refused when parsed. Expressions are parsed by hand into
the dataclasses below, never evaluated as Python.

**Silence never passes.** Every metric, counts included, is undefined on a group and
window without samples (the server metrics: without server samples). A threshold on an
undefined value is *undefined*: neither a pass nor a breach; the run is invalid.

*Why one module of this length:* it is one grammar, its parser and what its expressions
mean (the value compared, the margin to the limit) side by side, so that a new metric or
operator is added in one place.
"""

from __future__ import annotations

import math
import operator
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Literal, get_args

from isolation_harness.chaos.errors import ConfigError
from isolation_harness.chaos.metrics import Kind, Measured, kind_of, takes_argument, written

__all__ = [
    "CodeSet",
    "Op",
    "Quantity",
    "Reference",
    "Threshold",
    "ThresholdSyntaxError",
    "Verdict",
    "evaluate",
    "margin_of",
    "parse_threshold",
    "relative_margin_of",
]

Op = Literal["<", "<=", ">", ">=", "==", "!="]
OPS: tuple[Op, ...] = get_args(Op)

#: unit -> (kind it applies to, factor to the kind's base unit: milliseconds or a fraction)
_UNITS: Mapping[str, tuple[Kind, float]] = {
    "ms": ("latency", 1.0),
    "s": ("latency", 1000.0),
    "%": ("rate", 0.01),
}

_COMPARE: Mapping[Op, Callable[[float, float], bool]] = {
    "<": operator.lt,
    "<=": operator.le,
    ">": operator.gt,
    ">=": operator.ge,
    "==": operator.eq,
    "!=": operator.ne,
}


class ThresholdSyntaxError(ConfigError, ValueError):
    """A threshold expression that cannot be parsed; ``position`` is the 0-based offset.

    Also a :class:`ValueError`, so that a pydantic validator that parses thresholds turns
    it into an ordinary validation error.
    """

    def __init__(self, text: str, position: int, reason: str) -> None:
        self.text = text
        self.position = position
        self.reason = reason
        super().__init__(f"threshold {text!r}, column {position + 1}: {reason}")


# -- AST -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Quantity:
    """A constant, in the base unit of its kind (milliseconds for latencies, a fraction
    for rates)."""

    value: float


@dataclass(frozen=True)
class Reference:
    """``factor * phase.metric + offset``: a statistic of the same group in another phase."""

    phase: str
    metric: str
    factor: float = 1.0
    offset: float = 0.0


@dataclass(frozen=True)
class CodeSet:
    """The error codes ``codes in (...)`` allows."""

    codes: frozenset[str]


@dataclass(frozen=True)
class Threshold:
    """One parsed threshold; ``text`` is the expression as written."""

    metric: str
    op: Op | Literal["in"]
    rhs: Quantity | Reference | CodeSet
    text: str

    def __str__(self) -> str:
        return self.text

    @property
    def kind(self) -> Kind:
        return kind_of(self.metric)


@dataclass(frozen=True)
class Verdict:
    """The outcome of one threshold: what was measured, what was expected, and why.

    ``defined`` is False when the threshold could not be judged: the measured value or the
    value it refers to does not exist (no samples). Such a verdict is not ``passed``, and it
    is not a breach either: it makes the run invalid. ``expected`` is None when it could not
    be computed. ``text`` is one line for humans, starting with the expression.
    """

    passed: bool
    measured: float
    expected: float | None
    text: str
    defined: bool = True


# -- tokenizer -------------------------------------------------------------------------------

TokenKind = Literal["number", "name", "op", "symbol", "end"]


@dataclass(frozen=True)
class _Token:
    kind: TokenKind
    text: str
    position: int
    value: float = 0.0
    #: the unit written right after a number ("" if none)
    unit: str = ""
    unit_position: int = 0


_NUMBER = re.compile(r"\d+(?:\.\d+)?|\.\d+")
_UNIT = re.compile(r"[A-Za-z_%][A-Za-z0-9_%]*")
_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_OPERATORS = ("<=", ">=", "==", "!=", "<", ">")
_SYMBOLS = ("*", "+", "-", ".", "(", ")", ",")


def _tokenize(text: str) -> list[_Token]:
    tokens: list[_Token] = []
    i = 0
    while i < len(text):
        char = text[i]
        if char.isspace():
            i += 1
            continue
        number = _NUMBER.match(text, i)
        if number is not None:
            end = number.end()
            unit = _UNIT.match(text, end)
            unit_text = unit.group() if unit is not None else ""
            tokens.append(
                _Token(
                    "number",
                    text[i : end + len(unit_text)],
                    i,
                    value=float(number.group()),
                    unit=unit_text,
                    unit_position=end,
                )
            )
            i = end + len(unit_text)
            continue
        name = _NAME.match(text, i)
        if name is not None:
            tokens.append(_Token("name", name.group(), i))
            i = name.end()
            continue
        op = next((o for o in _OPERATORS if text.startswith(o, i)), None)
        if op is not None:
            tokens.append(_Token("op", op, i))
            i += len(op)
            continue
        if char in _SYMBOLS:
            tokens.append(_Token("symbol", char, i))
            i += 1
            continue
        if char == "=":
            raise ThresholdSyntaxError(text, i, "'=' is not an operator (use '==')")
        raise ThresholdSyntaxError(text, i, f"unexpected character {char!r}")
    tokens.append(_Token("end", "", len(text)))
    return tokens


# -- parser ----------------------------------------------------------------------------------


class _Parser:
    def __init__(self, text: str) -> None:
        self.text = text
        self.tokens = _tokenize(text)
        self.index = 0

    @property
    def token(self) -> _Token:
        return self.tokens[self.index]

    def advance(self) -> _Token:
        token = self.token
        self.index += 1
        return token

    def fail(self, reason: str, position: int | None = None) -> ThresholdSyntaxError:
        return ThresholdSyntaxError(
            self.text, self.token.position if position is None else position, reason
        )

    def describe(self, token: _Token) -> str:
        return "the end" if token.kind == "end" else repr(token.text)

    def metric(self, what: str) -> str:
        token = self.token
        if token.kind != "name":
            raise self.fail(f"expected {what}, found {self.describe(token)}")
        name = token.text
        if takes_argument(name):
            self.advance()
            if self.token.text != "(":
                raise self.fail(f"{name!r} takes an argument: write e.g. {name}(p2p)")
            self.advance()
            argument = self.token
            if argument.kind != "name":
                raise self.fail(f"expected a name inside {name}(...), found "
                                f"{self.describe(argument)}")  # fmt: skip
            self.advance()
            if self.token.text != ")":
                raise self.fail(f"expected ')' after {name}({argument.text}")
            self.advance()
            return f"{name}({argument.text})"
        try:
            kind_of(name)
        except KeyError:
            known = ", ".join(written())
            raise self.fail(f"unknown metric {name!r} (known: {known})") from None
        self.advance()
        return name

    def parse(self) -> Threshold:
        if self.token.kind == "end":
            raise self.fail("empty threshold: write e.g. 'p99 < 250ms'")
        metric = self.metric("a metric")
        token = self.token
        if kind_of(metric) == "set":
            return self.code_set(metric)
        if token.kind != "op":
            raise self.fail(
                f"expected a comparison ({' '.join(OPS)}) after {metric!r}, "
                f"found {self.describe(token)}"
            )
        op = _op(self.advance().text)
        rhs = self.rhs(kind_of(metric), metric)
        rest = self.token
        if rest.kind != "end":
            hint = ""
            if rest.text == "*" and isinstance(rhs, Reference):
                hint = ": write the factor first, e.g. '1.5 * baseline.p99'"
            elif rest.text in _UNITS and self.tokens[self.index - 1].kind == "number":
                hint = ": write the unit right after the number, e.g. '250ms'"
            raise self.fail(f"unexpected {self.describe(rest)}{hint}")
        return Threshold(metric, op, rhs, self.text)

    def code_set(self, metric: str) -> Threshold:
        """``codes in (a, b)``: the set of error codes the group's failures may have."""
        if self.token.text != "in":
            raise self.fail(f"{metric!r} is a set: write e.g. '{metric} in (pool_timeout)'")
        self.advance()
        if self.token.text != "(":
            raise self.fail(f"expected '(' after 'in', found {self.describe(self.token)}")
        self.advance()
        codes: set[str] = set()
        while self.token.text != ")":
            if self.token.kind != "name":
                raise self.fail(f"expected an error code, found {self.describe(self.token)}")
            codes.add(self.advance().text)
            if self.token.text == ",":
                self.advance()
            elif self.token.text != ")":
                raise self.fail(f"expected ',' or ')', found {self.describe(self.token)}")
        self.advance()
        if self.token.kind != "end":
            raise self.fail(f"unexpected {self.describe(self.token)}")
        return Threshold(metric, "in", CodeSet(frozenset(codes)), self.text)

    def rhs(self, kind: Kind, metric: str) -> Quantity | Reference:
        token = self.token
        if token.kind == "number":
            self.advance()
            if self.token.text == "*":
                if token.unit:
                    raise self.fail("a factor takes no unit", token.unit_position)
                self.advance()
                return self.reference(kind, metric, token.value)
            return Quantity(self.quantity(token, kind, metric))
        if token.kind == "name":
            return self.reference(kind, metric, 1.0)
        raise self.fail(
            f"expected a number or phase.metric after the comparison, found {self.describe(token)}"
        )

    def reference(self, kind: Kind, metric: str, factor: float) -> Reference:
        token = self.token
        if token.kind != "name":
            raise self.fail(f"expected phase.metric, found {self.describe(token)}")
        phase = self.advance().text
        if self.token.text != ".":
            raise self.fail(
                f"expected '.' and a metric after phase {phase!r} (e.g. {phase}.p99), "
                f"found {self.describe(self.token)}"
            )
        self.advance()
        metric_position = self.token.position
        referenced = self.metric("a metric after the '.'")
        if kind_of(referenced) != kind:
            raise self.fail(
                f"{metric!r} is a {kind} and cannot be compared with "
                f"{phase}.{referenced}, a {kind_of(referenced)}",
                metric_position,
            )
        offset = 0.0
        if self.token.text in ("+", "-"):
            symbol = self.advance().text
            number = self.token
            if number.kind != "number":
                raise self.fail(
                    f"expected a number after {symbol!r}, found {self.describe(number)}"
                )
            sign = -1.0 if symbol == "-" else 1.0
            self.advance()
            offset = sign * self.quantity(number, kind, metric)
        return Reference(phase, referenced, factor, offset)

    def quantity(self, token: _Token, kind: Kind, metric: str) -> float:
        """The number of ``token`` in the base unit of ``kind``."""
        if not token.unit:
            return token.value
        unit = _UNITS.get(token.unit)
        if unit is None:
            raise self.fail(f"unknown unit {token.unit!r} (use ms, s or %)", token.unit_position)
        unit_kind, scale = unit
        if unit_kind != kind:
            raise self.fail(
                f"unit {token.unit!r} does not apply to {metric!r} (a {kind})",
                token.unit_position,
            )
        return token.value * scale


def _op(text: str) -> Op:
    for op in OPS:
        if op == text:
            return op
    raise AssertionError(text)  # pragma: no cover - the tokenizer only yields these


def parse_threshold(text: str) -> Threshold:
    """Parse one threshold expression; :class:`ThresholdSyntaxError` says where it is wrong."""
    return _Parser(text).parse()


# -- evaluation ------------------------------------------------------------------------------


#: a measured value: a number, or for ``codes`` the set of codes seen


def evaluate(
    expr: Threshold | str,
    current: Mapping[str, Measured],
    phases: Mapping[str, Mapping[str, Measured]],
) -> Verdict:
    """Judge ``expr`` against the statistics of the group in this window (``current``) and
    in the phases it may refer to (``phases``, by phase name).

    A value that is missing or NaN is undefined (no samples): so is the verdict, which is
    then neither passed nor a breach.
    """
    threshold = parse_threshold(expr) if isinstance(expr, str) else expr
    text = threshold.text
    kind = threshold.kind
    value = current.get(threshold.metric)
    rhs = threshold.rhs
    if isinstance(rhs, CodeSet):
        if not isinstance(value, frozenset):
            return _undefined(f"{text}: no samples, so no codes were measured", None)
        extra = sorted(value - rhs.codes)
        seen = ", ".join(sorted(value)) or "none"
        if extra:
            return Verdict(False, math.nan, None, f"{text}: codes seen: {seen}; not allowed: "
                                                  f"{', '.join(extra)}")  # fmt: skip
        return Verdict(True, math.nan, None, f"{text}: codes seen: {seen}")
    measured = math.nan if not isinstance(value, int | float) else float(value)
    expected: float | None
    if isinstance(rhs, Quantity):
        expected = rhs.value
        basis = ""
    else:
        reference = f"{rhs.phase}.{rhs.metric}"
        stats = phases.get(rhs.phase)
        base = stats.get(rhs.metric) if stats is not None else None
        if not isinstance(base, int | float) or math.isnan(base):
            why = f"{reference} has no value (no samples in {rhs.phase!r})"
            return _undefined(f"{text}: {why}: cannot be judged", measured)
        expected = rhs.factor * float(base) + rhs.offset
        basis = f" ({reference} = {_show(float(base), kind)})"
    if math.isnan(measured):
        return _undefined(
            f"{text}: {threshold.metric} has no value (no samples here): cannot be judged",
            None,
            expected,
        )
    passed = _COMPARE[threshold.op](measured, expected)  # type: ignore[index]
    return Verdict(
        passed,
        measured,
        expected,
        f"{text}: measured {_show(measured, kind)}, "
        f"expected {threshold.op} {_show(expected, kind)}{basis}",
    )


def margin_of(op: Op, measured: float, limit: float) -> float:
    """How far ``measured`` is from breaching ``measured op limit``, in the metric's unit.

    Positive when the threshold holds with room to spare, negative by as much as it was
    breached. 0 is on the limit: a pass for ``<=``, ``>=`` and ``==``, a breach for ``<``,
    ``>`` and ``!=``. An equality has no room to spare: its margin is 0 when it holds and
    minus the distance to the limit when it does not; ``!=`` has the distance when it holds.
    """
    if op in ("<", "<="):
        return limit - measured
    if op in (">", ">="):
        return measured - limit
    distance = abs(measured - limit)
    # 0.0 - 0.0, not -0.0: a margin of "minus zero" would read like a breach
    return 0.0 - distance if op == "==" else distance


def relative_margin_of(margin: float, limit: float) -> float | None:
    """The margin as a fraction of the limit (0.25: a quarter of the limit to spare); None
    for a limit of 0, which has no scale."""
    return margin / abs(limit) if limit != 0 else None


def _undefined(text: str, measured: float | None, expected: float | None = None) -> Verdict:
    return Verdict(False, math.nan if measured is None else measured, expected, text, defined=False)


def _show(value: float, kind: Kind) -> str:
    if kind == "latency":
        return f"{value:.4g}ms"
    if kind == "rate":
        return f"{value * 100:.4g}%"
    if kind == "throughput":
        return f"{value:.4g}/s"
    return f"{value:.0f}" if math.isfinite(value) and value == int(value) else f"{value:.4g}"
