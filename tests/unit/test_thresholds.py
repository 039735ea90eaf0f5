import math

import pytest

from isolation_harness.chaos import metrics
from isolation_harness.chaos.errors import ConfigError
from isolation_harness.chaos.scenario.thresholds import (
    CodeSet,
    Op,
    Quantity,
    Reference,
    Threshold,
    ThresholdSyntaxError,
    Verdict,
    evaluate,
    margin_of,
    parse_threshold,
    relative_margin_of,
)

NAN = math.nan


@pytest.mark.parametrize(
    ("text", "metric", "op", "rhs"),
    [
        ("p99 < 250ms", "p99", "<", Quantity(250.0)),
        ("p99 < 250", "p99", "<", Quantity(250.0)),
        ("p95 <= 1.5s", "p95", "<=", Quantity(1500.0)),
        ("mean > .5s", "mean", ">", Quantity(500.0)),
        ("max >= 2s", "max", ">=", Quantity(2000.0)),
        ("p90 != 0", "p90", "!=", Quantity(0.0)),
        ("error_rate == 0", "error_rate", "==", Quantity(0.0)),
        ("error_rate < 5%", "error_rate", "<", Quantity(0.05)),
        ("error_rate > 0.5", "error_rate", ">", Quantity(0.5)),
        ("unstructured_5xx == 0", "unstructured_5xx", "==", Quantity(0.0)),
        ("count >= 100", "count", ">=", Quantity(100.0)),
        ("failures<3", "failures", "<", Quantity(3.0)),
        ("rps > 20", "rps", ">", Quantity(20.0)),
        ("p99 < 1.5 * baseline.p99", "p99", "<", Reference("baseline", "p99", 1.5, 0.0)),
        ("p99 < baseline.p99 + 100ms", "p99", "<", Reference("baseline", "p99", 1.0, 100.0)),
        ("p99 < baseline.mean - 0.1s", "p99", "<", Reference("baseline", "mean", 1.0, -100.0)),
        ("p99 < 2*warm_up.p50+1s", "p99", "<", Reference("warm_up", "p50", 2.0, 1000.0)),
        ("rps >= 0.8 * baseline.rps", "rps", ">=", Reference("baseline", "rps", 0.8, 0.0)),
        ("error_rate <= baseline.error_rate + 1%", "error_rate", "<=",
         Reference("baseline", "error_rate", 1.0, 0.01)),
        ("failures <= 0.1 * baseline.count", "failures", "<=",
         Reference("baseline", "count", 0.1, 0.0)),
        # a phase may be named like a metric: the position tells them apart
        ("p99 < p99.p99", "p99", "<", Reference("p99", "p99")),
    ],
)  # fmt: skip
def test_parse(text: str, metric: str, op: str, rhs: Quantity | Reference) -> None:
    threshold = parse_threshold(text)
    assert (threshold.metric, threshold.op) == (metric, op)
    parsed = threshold.rhs
    assert type(parsed) is type(rhs)
    if isinstance(parsed, Quantity) and isinstance(rhs, Quantity):
        assert parsed.value == pytest.approx(rhs.value)
    elif isinstance(parsed, Reference) and isinstance(rhs, Reference):
        assert (parsed.phase, parsed.metric) == (rhs.phase, rhs.metric)
        assert (parsed.factor, parsed.offset) == pytest.approx((rhs.factor, rhs.offset))
    assert threshold.text == str(threshold) == text


def test_every_metric_parses() -> None:
    for metric, kind in metrics.plain().items():
        if kind == "set":
            assert parse_threshold(f"{metric} in (a)").metric == metric
        else:
            assert parse_threshold(f"{metric} >= 0").metric == metric


@pytest.mark.parametrize(
    ("text", "metric", "kind"),
    [
        ("status_503 > 0", "status_503", "count"),
        ("status_500 == 0", "status_500", "count"),
        ("timeouts == 0", "timeouts", "count"),
        ("connection_errors == 0", "connection_errors", "count"),
        ("naming(p2p) > 0", "naming(p2p)", "count"),
        ("share_naming(p2p) >= 99%", "share_naming(p2p)", "rate"),
        ("code(pool_timeout) == 0", "code(pool_timeout)", "count"),
        ("foreign_failures == 0", "foreign_failures", "count"),
        ("in_flight_max >= 100", "in_flight_max", "count"),
        ("pool_waiting_max >= 1", "pool_waiting_max", "count"),
        ("acquire_timeouts == 0", "acquire_timeouts", "count"),
        ("share_naming(p2p) > baseline.share_naming(p2p)", "share_naming(p2p)", "rate"),
    ],
)
def test_parse_identity_and_pressure_metrics(text: str, metric: str, kind: str) -> None:
    threshold = parse_threshold(text)
    assert (threshold.metric, threshold.kind) == (metric, kind)


def test_codes_is_a_set() -> None:
    threshold = parse_threshold("codes in (pool_timeout, timeout)")
    assert threshold.rhs == CodeSet(frozenset({"pool_timeout", "timeout"}))
    assert parse_threshold("codes in ()").rhs == CodeSet(frozenset())
    allowed = evaluate(threshold, {"codes": frozenset({"timeout"})}, {})
    assert allowed.passed
    assert allowed.defined
    other = evaluate(threshold, {"codes": frozenset({"timeout", "internal_error"})}, {})
    assert not other.passed
    assert other.defined
    assert "not allowed: internal_error" in other.text
    silent = evaluate(threshold, {}, {})
    assert not silent.passed
    assert not silent.defined


@pytest.mark.parametrize(
    ("text", "position", "fragment"),
    [
        ("", 0, "empty threshold"),
        ("   ", 3, "empty threshold"),
        ("p98 < 3", 0, "unknown metric 'p98'"),
        ("250ms > p99", 0, "expected a metric"),
        ("p99 250ms", 4, "expected a comparison"),
        ("p99 = 250ms", 4, "'=' is not an operator (use '==')"),
        ("p99 <<= 250ms", 5, "expected a number or phase.metric"),
        ("p99 <", 5, "found the end"),
        ("p99 < 250mss", 9, "unknown unit 'mss'"),
        ("p99 < 250 ms", 10, "write the unit right after the number"),
        ("error_rate < 5ms", 14, "unit 'ms' does not apply to 'error_rate'"),
        ("p99 < 5%", 7, "unit '%' does not apply to 'p99'"),
        ("count < 5s", 9, "unit 's' does not apply to 'count'"),
        ("p99 < 2s * baseline.p99", 7, "a factor takes no unit"),
        ("p99 < baseline.p99 * 2", 19, "write the factor first"),
        ("p99 < baseline", 14, "expected '.' and a metric after phase 'baseline'"),
        ("p99 < baseline.", 15, "expected a metric after the '.'"),
        ("p99 < baseline.p98", 15, "unknown metric 'p98'"),
        ("p99 < baseline.error_rate", 15, "'p99' is a latency and cannot be compared"),
        ("p99 < baseline.p99 +", 20, "expected a number after '+'"),
        ("p99 < baseline.p99 + 5%", 22, "unit '%' does not apply to 'p99'"),
        ("p99 < 250ms and p95 < 100ms", 12, "unexpected 'and'"),
        ("p99 < 1.5.", 9, "unexpected '.'"),
        ("p99 < __import__('os')", 17, "unexpected character"),
        ("p99 < 1s; drop", 8, "unexpected character ';'"),
        ("status_600 > 0", 0, "unknown metric 'status_600'"),
        ("naming > 0", 7, "'naming' takes an argument"),
        ("naming(p2p > 0", 11, "expected ')'"),
        ("codes == 0", 6, "'codes' is a set"),
        ("codes in (a b)", 12, "expected ',' or ')'"),
        ("share_naming(p2p) < 5ms", 21, "unit 'ms' does not apply"),
        ("p99 < 1e3", 7, "unknown unit 'e3'"),
        ("p99 < -1", 6, "expected a number or phase.metric"),
    ],
)
def test_syntax_error_says_where(text: str, position: int, fragment: str) -> None:
    with pytest.raises(ThresholdSyntaxError) as caught:
        parse_threshold(text)
    error = caught.value
    assert error.position == position
    assert fragment in error.reason
    assert str(error) == f"threshold {text!r}, column {position + 1}: {error.reason}"


def test_syntax_error_is_a_config_error_and_a_value_error() -> None:
    with pytest.raises(ConfigError):
        parse_threshold("p99 <")
    with pytest.raises(ValueError, match="column 6"):
        parse_threshold("p99 <")


BASELINE = {"p99": 200.0, "p95": 150.0, "error_rate": 0.01, "rps": 50.0, "count": 500.0}


@pytest.mark.parametrize(
    ("text", "current", "passed", "expected"),
    [
        ("p99 < 250ms", {"p99": 249.9}, True, 250.0),
        ("p99 < 250ms", {"p99": 250.0}, False, 250.0),
        ("p99 <= 250ms", {"p99": 250.0}, True, 250.0),
        ("p99 < 1.5s", {"p99": 1499.0}, True, 1500.0),
        ("p99 < 1.5s", {"p99": 1501.0}, False, 1500.0),
        ("error_rate == 0", {"error_rate": 0.0}, True, 0.0),
        ("error_rate == 0", {"error_rate": 0.001}, False, 0.0),
        ("error_rate < 5%", {"error_rate": 0.049}, True, 0.05),
        ("error_rate < 5%", {"error_rate": 0.05}, False, 0.05),
        ("error_rate > 0.5", {"error_rate": 0.9}, True, 0.5),
        ("error_rate != 0", {"error_rate": 0.0}, False, 0.0),
        ("unstructured_5xx == 0", {"unstructured_5xx": 2.0}, False, 0.0),
        ("count >= 100", {"count": 100.0}, True, 100.0),
        ("p99 < 1.5 * baseline.p99", {"p99": 299.0}, True, 300.0),
        ("p99 < 1.5 * baseline.p99", {"p99": 301.0}, False, 300.0),
        ("p95 <= baseline.p95 + 100ms", {"p95": 250.0}, True, 250.0),
        ("p95 <= baseline.p95 - 0.1s", {"p95": 50.0}, True, 50.0),
        ("rps >= 0.8 * baseline.rps", {"rps": 39.0}, False, 40.0),
        ("error_rate <= baseline.error_rate + 1%", {"error_rate": 0.02}, True, 0.02),
        ("failures <= 0.1 * baseline.count", {"failures": 51.0}, False, 50.0),
    ],
)
def test_evaluate(text: str, current: dict[str, float], passed: bool, expected: float) -> None:
    verdict = evaluate(text, current, {"baseline": BASELINE})
    assert verdict.passed is passed
    assert verdict.expected == pytest.approx(expected)
    assert verdict.measured == current[parse_threshold(text).metric]
    assert verdict.text.startswith(f"{text}: measured ")


def test_verdict_text_shows_units_and_the_baseline() -> None:
    verdict = evaluate("p99 < 1.5 * baseline.p99", {"p99": 312.5}, {"baseline": BASELINE})
    assert verdict == Verdict(
        False,
        312.5,
        300.0,
        "p99 < 1.5 * baseline.p99: measured 312.5ms, expected < 300ms (baseline.p99 = 200ms)",
    )
    rate = evaluate("error_rate < 5%", {"error_rate": 0.125}, {})
    assert rate.text == "error_rate < 5%: measured 12.5%, expected < 5%"


def test_evaluate_accepts_a_parsed_threshold() -> None:
    threshold = parse_threshold("p99 < 250ms")
    assert isinstance(threshold, Threshold)
    assert evaluate(threshold, {"p99": 10.0}, {}).passed


@pytest.mark.parametrize(
    "text", ["p99 < 250ms", "p99 > 0", "p99 != 0", "p99 == 0", "p99 < 1.5 * baseline.p99"]
)
def test_nan_measured_is_undefined_never_a_pass(text: str) -> None:
    verdict = evaluate(text, {"p99": NAN}, {"baseline": BASELINE})
    assert (verdict.passed, verdict.defined) == (False, False)
    assert math.isnan(verdict.measured)
    assert "no samples" in verdict.text
    assert "cannot be judged" in verdict.text


def test_missing_metric_is_undefined() -> None:
    verdict = evaluate("count > 0", {}, {})
    assert (verdict.passed, verdict.defined) == (False, False)
    assert "count has no value" in verdict.text


def test_reference_without_value_is_undefined() -> None:
    no_samples = evaluate("p99 < 2 * baseline.p99", {"p99": 10.0}, {"baseline": {"p99": NAN}})
    assert (no_samples.passed, no_samples.defined) == (False, False)
    assert no_samples.expected is None
    assert "baseline.p99 has no value (no samples in 'baseline')" in no_samples.text

    no_phase = evaluate("p99 < 2 * baseline.p99", {"p99": 10.0}, {})
    assert (no_phase.passed, no_phase.defined) == (False, False)


def test_evaluate_refuses_a_bad_expression() -> None:
    with pytest.raises(ThresholdSyntaxError):
        evaluate("p99 <", {"p99": 1.0}, {})


# -- margins -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("op", "measured", "limit", "margin"),
    [
        # p99 < 250: 50 ms to spare; 30 ms over
        ("<", 200.0, 250.0, 50.0),
        ("<", 280.0, 250.0, -30.0),
        ("<", 250.0, 250.0, 0.0),  # on the limit: breached, with nothing to spare
        ("<=", 250.0, 250.0, 0.0),  # on the limit: holds, with nothing to spare
        ("<=", 260.0, 250.0, -10.0),
        # in_flight_max >= 100: 20 above; 10 short
        (">=", 120.0, 100.0, 20.0),
        (">=", 90.0, 100.0, -10.0),
        (">", 0.9, 0.5, 0.4),
        (">", 0.25, 0.5, -0.25),
        # error_rate == 0: no room when it holds, minus the distance when it does not
        ("==", 0.0, 0.0, 0.0),
        ("==", 0.02, 0.0, -0.02),
        ("==", 3.0, 5.0, -2.0),
        # p90 != 0: the distance when it holds, 0 when breached
        ("!=", 12.0, 0.0, 12.0),
        ("!=", 0.0, 0.0, 0.0),
    ],
)  # fmt: skip
def test_margin_per_operator(op: Op, measured: float, limit: float, margin: float) -> None:
    assert margin_of(op, measured, limit) == pytest.approx(margin)


def test_a_held_equality_has_a_margin_of_zero_not_minus_zero() -> None:
    assert math.copysign(1.0, margin_of("==", 0.0, 0.0)) == 1.0


@pytest.mark.parametrize(
    ("text", "current"),
    [
        ("p99 < 250ms", {"p99": 249.9}),
        ("p99 < 250ms", {"p99": 300.0}),
        ("p99 <= 250ms", {"p99": 100.0}),
        ("error_rate == 0", {"error_rate": 0.001}),
        ("error_rate < 5%", {"error_rate": 0.2}),
        ("error_rate > 0.5", {"error_rate": 0.9}),
        ("error_rate > 0.5", {"error_rate": 0.1}),
        ("error_rate != 0", {"error_rate": 0.3}),
        ("count >= 100", {"count": 101.0}),
        ("count >= 100", {"count": 99.0}),
        ("p99 < 1.5 * baseline.p99", {"p99": 301.0}),
        ("rps >= 0.8 * baseline.rps", {"rps": 39.0}),
    ],
)
def test_a_positive_margin_is_a_pass_and_a_negative_one_a_breach(
    text: str, current: dict[str, float]
) -> None:
    verdict = evaluate(text, current, {"baseline": BASELINE})
    assert verdict.expected is not None
    op = parse_threshold(text).op
    assert op != "in"
    margin = margin_of(op, verdict.measured, verdict.expected)
    assert margin != 0
    assert (margin > 0) is verdict.passed


def test_relative_margin_is_a_fraction_of_the_limit_and_none_for_a_zero_limit() -> None:
    assert relative_margin_of(50.0, 250.0) == pytest.approx(0.2)
    assert relative_margin_of(-30.0, 250.0) == pytest.approx(-0.12)
    assert relative_margin_of(-5.0, -10.0) == pytest.approx(-0.5)  # scaled by |limit|
    assert relative_margin_of(-0.02, 0.0) is None
