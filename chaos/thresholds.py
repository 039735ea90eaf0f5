"""Thresholds: a small k6-like language to say what clients must see in one phase.

A threshold compares one statistic of a request group in a phase with a constant, or with
the same kind of statistic in an earlier phase::

    threshold  := metric op rhs
    rhs        := quantity | reference
    reference  := [number "*"] phase "." metric [("+" | "-") quantity]
    quantity   := number [unit]
    op         := "<" | "<=" | ">" | ">=" | "==" | "!="
    metric     := count | failures | rps | error_rate | p50 | p90 | p95 | p99 | max | mean
                | unstructured_5xx
    unit       := "ms" | "s"   (latencies; a bare number is milliseconds)
                | "%"          (error_rate; a bare number is a fraction, 5% == 0.05)
    phase      := identifier   ([A-Za-z_][A-Za-z0-9_]*)

Examples: ``p99 < 250ms``, ``error_rate == 0``, ``error_rate < 5%``,
``p99 < 1.5 * baseline.p99``, ``p95 <= baseline.p95 + 100ms``, ``rps > 0.8 * baseline.rps``.

Latencies are compared in milliseconds. Both sides of a comparison must be the same kind of
quantity (a latency with a latency, a rate with a rate…): ``p99 < baseline.error_rate`` is
refused when parsed. Expressions are parsed by hand into the dataclasses below, never
evaluated as Python.

A measured value that is NaN (no samples in the phase) never passes.
"""

from __future__ import annotations

import math
import operator
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Literal, get_args

from chaos.errors import ConfigError

__all__ = [
    "METRICS",
    "Metric",
    "Op",
    "Quantity",
    "Reference",
    "Threshold",
    "ThresholdSyntaxError",
    "Verdict",
    "evaluate",
    "parse_threshold",
]

Metric = Literal[
    "count", "failures", "rps", "error_rate", "p50", "p90", "p95", "p99", "max", "mean",
    "unstructured_5xx",
]  # fmt: skip
Op = Literal["<", "<=", ">", ">=", "==", "!="]

METRICS: tuple[Metric, ...] = get_args(Metric)
OPS: tuple[Op, ...] = get_args(Op)

Kind = Literal["latency", "rate", "throughput", "count"]

_KIND: Mapping[Metric, Kind] = {
    "count": "count",
    "failures": "count",
    "unstructured_5xx": "count",
    "rps": "throughput",
    "error_rate": "rate",
    "p50": "latency",
    "p90": "latency",
    "p95": "latency",
    "p99": "latency",
    "max": "latency",
    "mean": "latency",
}

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
    metric: Metric
    factor: float = 1.0
    offset: float = 0.0


@dataclass(frozen=True)
class Threshold:
    """One parsed threshold; ``text`` is the expression as written."""

    metric: Metric
    op: Op
    rhs: Quantity | Reference
    text: str

    def __str__(self) -> str:
        return self.text

    @property
    def kind(self) -> Kind:
        return _KIND[self.metric]


@dataclass(frozen=True)
class Verdict:
    """The outcome of one threshold: what was measured, what was expected, and why.

    ``expected`` is None when it could not be computed (the referenced phase has no value).
    ``text`` is one line for humans, starting with the expression.
    """

    passed: bool
    measured: float
    expected: float | None
    text: str


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
_SYMBOLS = ("*", "+", "-", ".")


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

    def metric(self, what: str) -> Metric:
        token = self.token
        if token.kind != "name":
            raise self.fail(f"expected {what}, found {self.describe(token)}")
        if token.text not in METRICS:
            raise self.fail(f"unknown metric {token.text!r} (known: {', '.join(METRICS)})")
        self.advance()
        return _metric(token.text)

    def parse(self) -> Threshold:
        if self.token.kind == "end":
            raise self.fail("empty threshold: write e.g. 'p99 < 250ms'")
        metric = self.metric("a metric")
        token = self.token
        if token.kind != "op":
            raise self.fail(
                f"expected a comparison ({' '.join(OPS)}) after {metric!r}, "
                f"found {self.describe(token)}"
            )
        op = _op(self.advance().text)
        rhs = self.rhs(_KIND[metric], metric)
        rest = self.token
        if rest.kind != "end":
            hint = ""
            if rest.text == "*" and isinstance(rhs, Reference):
                hint = ": write the factor first, e.g. '1.5 * baseline.p99'"
            elif rest.text in _UNITS and self.tokens[self.index - 1].kind == "number":
                hint = ": write the unit right after the number, e.g. '250ms'"
            raise self.fail(f"unexpected {self.describe(rest)}{hint}")
        return Threshold(metric, op, rhs, self.text)

    def rhs(self, kind: Kind, metric: Metric) -> Quantity | Reference:
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

    def reference(self, kind: Kind, metric: Metric, factor: float) -> Reference:
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
        if _KIND[referenced] != kind:
            raise self.fail(
                f"{metric!r} is a {kind} and cannot be compared with "
                f"{phase}.{referenced}, a {_KIND[referenced]}",
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

    def quantity(self, token: _Token, kind: Kind, metric: Metric) -> float:
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


def _metric(name: str) -> Metric:
    for metric in METRICS:
        if metric == name:
            return metric
    raise AssertionError(name)  # pragma: no cover - callers check membership first


def _op(text: str) -> Op:
    for op in OPS:
        if op == text:
            return op
    raise AssertionError(text)  # pragma: no cover - the tokenizer only yields these


def parse_threshold(text: str) -> Threshold:
    """Parse one threshold expression; :class:`ThresholdSyntaxError` says where it is wrong."""
    return _Parser(text).parse()


# -- evaluation ------------------------------------------------------------------------------


def evaluate(
    expr: Threshold | str,
    current: Mapping[str, float],
    phases: Mapping[str, Mapping[str, float]],
) -> Verdict:
    """Judge ``expr`` against the statistics of the group in this phase (``current``) and
    in every phase so far (``phases``, by phase name). A missing or NaN value never passes."""
    threshold = parse_threshold(expr) if isinstance(expr, str) else expr
    text = threshold.text
    kind = threshold.kind
    if threshold.metric not in current:
        return Verdict(False, math.nan, None, f"{text}: {threshold.metric} was not measured")
    measured = float(current[threshold.metric])
    expected: float | None
    rhs = threshold.rhs
    if isinstance(rhs, Quantity):
        expected = rhs.value
        basis = ""
    else:
        reference = f"{rhs.phase}.{rhs.metric}"
        stats = phases.get(rhs.phase)
        base = math.nan if stats is None else stats.get(rhs.metric, math.nan)
        if stats is None:
            expected, why = None, f"no statistics for phase {rhs.phase!r}"
        elif math.isnan(base):
            expected, why = None, f"{reference} has no value (no samples in {rhs.phase!r})"
        else:
            expected, why = rhs.factor * base + rhs.offset, ""
        if expected is None:
            shown = "no value" if math.isnan(measured) else _show(measured, kind)
            return Verdict(
                False, measured, None, f"{text}: measured {shown}, but {why}: cannot pass"
            )
        basis = f" ({reference} = {_show(base, kind)})"
    if math.isnan(measured):
        return Verdict(
            False,
            measured,
            expected,
            f"{text}: no value measured (no samples in this phase): cannot pass",
        )
    passed = _COMPARE[threshold.op](measured, expected)
    return Verdict(
        passed,
        measured,
        expected,
        f"{text}: measured {_show(measured, kind)}, "
        f"expected {threshold.op} {_show(expected, kind)}{basis}",
    )


def _show(value: float, kind: Kind) -> str:
    if kind == "latency":
        return f"{value:.4g}ms"
    if kind == "rate":
        return f"{value * 100:.4g}%"
    if kind == "throughput":
        return f"{value:.4g}/s"
    return f"{value:.0f}" if math.isfinite(value) and value == int(value) else f"{value:.4g}"
