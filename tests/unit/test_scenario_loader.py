from pathlib import Path

import pytest

from isolation_harness.chaos import invariants
from isolation_harness.chaos.errors import EXIT_HARNESS_ERROR, ConfigError
from isolation_harness.chaos.faults import DbRestart, LinkDown, ProviderFault, ServiceFault, Toxic
from isolation_harness.chaos.scenario.loader import (
    Problem,
    ScenarioFileError,
    load_scenario,
    validate_files,
)
from isolation_harness.chaos.scenario.model import Scenario
from isolation_harness.chaos.scenario.thresholds import Reference

DATA = Path(__file__).resolve().parent.parent / "data" / "scenarios"


# -- a good file -----------------------------------------------------------------------------


@pytest.fixture
def full() -> Scenario:
    return load_scenario(DATA / "good_full.yaml")


def test_full_scenario_loads(full: Scenario) -> None:
    assert full.name == "deposits-survive-p2p-outage"
    assert full.variant == "isolated"
    assert full.seed == 42
    assert full.expect == "pass"
    assert full.load.users == 60
    assert full.load.spawn_rate == 30.0
    assert full.load.mix == {"deposits": 6, "p2p": 2, "wallet": 2}
    assert full.load.workers == 0
    assert full.phase_names == ("baseline", "fault", "recovery")
    assert [phase.duration for phase in full.timeline] == [10.0, 15.0, 90.0]
    assert full.invariants == invariants.names()


def test_every_fault_type_and_its_target(full: Scenario) -> None:
    fault = full.phase("fault")
    assert fault.recycle == ("p2p",)
    found = [(f.type, f.target_service) for f in fault.faults]
    assert found == [
        ("link_down", "p2p"),
        ("toxic", "p2p"),
        ("service", "swap"),
        ("service", "wallet"),
        ("db_restart", None),
        ("db_crash", None),
        ("db_stop", None),
        ("provider", "deposits"),
        ("provider", "swap"),
    ]
    toxic = fault.faults[1]
    assert isinstance(toxic, Toxic)
    assert (toxic.toxic, toxic.stream, toxic.toxicity) == ("latency", "downstream", 1.0)
    assert toxic.attributes == {"latency": 500, "jitter": 50}
    slow = fault.faults[3]
    assert isinstance(slow, ServiceFault)
    assert (slow.mode, slow.slow_ms) == ("slow", 200)
    restart = fault.faults[4]
    assert isinstance(restart, DbRestart)
    assert restart.mode == "immediate"
    provider = fault.faults[7]
    assert isinstance(provider, ProviderFault)
    assert (provider.target, provider.mode, provider.status) == ("payments", "error", 503)


@pytest.mark.parametrize(
    ("link", "target"),
    [
        ("pg_deposits", "deposits"),
        ("pg_wallet", "wallet"),
        ("pg_swap", "swap"),
        ("pg_shared", None),
        ("payments", "deposits"),
        ("prices", "swap"),
    ],
)
def test_link_fault_targets(link: str, target: str | None) -> None:
    assert LinkDown(type="link_down", link=link).target_service == target


def test_thresholds_are_parsed(full: Scenario) -> None:
    assert list(full.thresholds) == ["deposits.*", "p2p.*"]
    relative = full.thresholds["deposits.*"]["fault"][0]
    assert relative.rhs == Reference("baseline", "p99", 1.5, 0.0)
    assert [(glob, str(t)) for glob, t in full.thresholds_in("fault")] == [
        ("deposits.*", "p99 < 1.5 * baseline.p99"),
        ("deposits.*", "error_rate == 0"),
        ("deposits.*", "unstructured_5xx == 0"),
        ("p2p.*", "error_rate > 0.5"),
    ]
    assert full.thresholds_in("nowhere") == []


def test_timeline_queries(full: Scenario) -> None:
    assert full.total_duration == 115.0
    assert full.phase_start("baseline") == 0.0
    assert full.phase_start("recovery") == 25.0
    assert full.phase("recovery").name == "recovery"
    with pytest.raises(KeyError, match="baseline, fault, recovery"):
        full.phase("nope")
    with pytest.raises(KeyError, match="nope"):
        full.phase_start("nope")


def test_with_variant(full: Scenario) -> None:
    plain = full.model_copy(update={"timeline": tuple(
        p.model_copy(update={"faults": ()}) for p in full.timeline)})  # fmt: skip
    legacy = plain.with_variant("legacy")
    assert legacy.variant == "legacy"
    assert plain.variant == "isolated"
    assert legacy.timeline == plain.timeline
    with pytest.raises(ConfigError, match="unknown variant 'old'"):
        full.with_variant("old")
    # pg_p2p carries nothing in the legacy design: its faults are refused, not moved
    with pytest.raises(ConfigError, match=r"timeline\.1\.faults\.0: link pg_p2p carries no "
                       "traffic in the legacy design") as refused:  # fmt: skip
        full.with_variant("legacy")
    assert "type: service" in refused.value.fix


def test_scenario_is_frozen(full: Scenario) -> None:
    with pytest.raises(ValueError, match="frozen"):
        full.name = "other"


def test_round_trips_through_json(full: Scenario) -> None:
    assert Scenario.model_validate(full.model_dump(mode="json")) == full


def test_defaults_and_mix_as_text() -> None:
    minimal = load_scenario(DATA / "minimal.yaml")
    assert minimal.load.mix == {"deposits": 2, "wallet": 1}
    assert minimal.variant == "isolated"
    assert minimal.seed is None
    assert minimal.expect == "pass"
    assert minimal.thresholds == {}  # thresholds: none
    assert minimal.invariants is None
    # left out: every invariant the mix (deposits, wallet) exercises; escrow needs p2p
    assert minimal.checked_invariants == tuple(
        i for i in invariants.names() if i != "escrow_consistent"
    )
    assert minimal.timeline[0].faults == ()
    assert minimal.timeline[0].duration == 2.0


# -- malformed files -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "line", "field", "fragment"),
    [
        ("missing_field.yaml", 2, "load.users", "required field is missing"),
        ("unknown_fault_type.yaml", 11, "timeline[1].faults[1].type",
         "unknown fault type 'link_cut' (known: link_down, toxic,"),
        ("fault_without_type.yaml", 7, "timeline[0].faults[0].type", "required field is missing"),
        ("bad_threshold.yaml", 10, 'thresholds["deposits.*"].baseline[1]',
         "threshold 'p99 <<= 250ms', column 6: expected a number or phase.metric"),
        ("threshold_unit_mismatch.yaml", 8, 'thresholds["deposits.*"].baseline[0]',
         "unit 'ms' does not apply to 'error_rate'"),
        ("negative_duration.yaml", 5, "timeline[0].duration", "duration '-5s' must be positive"),
        ("unknown_service.yaml", 9, "timeline[1].faults[0].service",
         "unknown service 'billing' (known: deposits, wallet, p2p, swap, express, admin, "
         "background)"),
        ("unknown_link.yaml", 10, "timeline[1].faults[0].link", "unknown link 'pg_p2q' (known: "),
        ("unknown_toxic_type.yaml", 7, "timeline[0].faults[0].toxic",
         "unknown toxic type 'latencyy'"),
        ("unknown_toxic_attribute.yaml", 12, "timeline[0].faults[0].attributes.jiter",
         "unknown attribute 'jiter' of toxic type 'latency' (known: jitter, latency)"),
        ("unknown_fault_field.yaml", 9, "timeline[0].faults[0].for",
         "unknown field (allowed: type, link)"),
        ("slow_without_slow_ms.yaml", 7, "timeline[0].faults[0].slow_ms",
         "mode 'slow' needs slow_ms"),
        ("stale_payments.yaml", 7, "timeline[0].faults[0].mode",
         "mode 'stale' is offered by the prices provider only"),
        ("undefined_phase_threshold.yaml", 11, 'thresholds["p2p.*"].recovry',
         "phase 'recovry' is not in the timeline (phases: baseline, recovery)"),
        ("later_phase_reference.yaml", 12, 'thresholds["deposits.*"].fault[0]',
         "refers to phase 'recovery', which comes after 'fault'"),
        ("duplicate_phase.yaml", 8, "timeline[2].phase", "phase 'baseline' is defined twice"),
        ("duplicate_key.yaml", 5, "load.users", "duplicate key 'users' (first at line 3)"),
        ("unknown_top_level_key.yaml", 6, "expected",
         "unknown field (allowed: name, description, variant, seed, load, timeline,"),
        ("unknown_user_kind.yaml", 7, "load.mix.lenders", "unknown user kind 'lenders'"),
    ],
)  # fmt: skip
def test_malformed_file_names_file_line_and_field(
    name: str, line: int, field: str, fragment: str
) -> None:
    path = DATA / name
    with pytest.raises(ScenarioFileError) as caught:
        load_scenario(path)
    message = str(caught.value)
    assert message.startswith(f"{path}:{line}: {field}: ")
    assert fragment in message
    assert caught.value.problems == (Problem(str(path), line, field, message.split(": ", 2)[2]),)


@pytest.mark.parametrize(
    ("name", "line", "fragment"),
    [
        ("yaml_syntax.yaml", 6, "invalid YAML at column 4: expected <block end>"),
        ("two_documents.yaml", 2, "invalid YAML at column 1: expected a single document"),
        ("top_level_list.yaml", 1, "the top level must be a mapping"),
    ],
)
def test_file_level_problem_names_file_and_line(name: str, line: int, fragment: str) -> None:
    path = DATA / name
    with pytest.raises(ScenarioFileError) as caught:
        load_scenario(path)
    assert str(caught.value).startswith(f"{path}:{line}: {fragment}")


@pytest.mark.parametrize("name", ["empty.yaml", "comments_only.yaml"])
def test_empty_file(name: str) -> None:
    path = DATA / name
    with pytest.raises(ConfigError) as caught:
        load_scenario(path)
    assert (
        str(caught.value) == f"{path}: the file is empty: a scenario needs name, load and timeline"
    )


def test_missing_and_unreadable_files(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"nowhere\.yaml: cannot read the file: No such file"):
        load_scenario(tmp_path / "nowhere.yaml")
    with pytest.raises(ConfigError, match="cannot read the file: Is a directory"):
        load_scenario(tmp_path)
    latin = tmp_path / "latin.yaml"
    latin.write_bytes(b"name: caf\xe9\n")
    with pytest.raises(ConfigError, match=r"latin\.yaml: cannot read the file: not UTF-8 text"):
        load_scenario(latin)
    control = tmp_path / "control.yaml"
    control.write_text("name: x\ndescription: \x07\n")
    with pytest.raises(ConfigError, match=r"control\.yaml:2: invalid YAML"):
        load_scenario(control)


def test_every_problem_is_listed_in_line_order() -> None:
    path = DATA / "several_problems.yaml"
    problems = validate_files([path])
    assert [(p.line, p.field) for p in problems] == [(1, "name"), (2, "load.users"), (6, "variant")]
    assert problems[1].message == "must be greater than or equal to 1, not 0"
    assert problems[2].message == "must be 'isolated' or 'legacy', not 'legacyy'"
    with pytest.raises(ScenarioFileError) as caught:
        load_scenario(path)
    error = caught.value
    assert str(error).startswith(f"{path}:1: name: ")
    assert "(and 2 more problems)" in str(error)
    assert f"harness validate {path}" in str(error)
    assert error.exit_code == EXIT_HARNESS_ERROR


def test_a_refused_phase_is_not_also_reported_as_an_empty_timeline() -> None:
    problems = validate_files([DATA / "negative_duration.yaml"])
    assert [p.field for p in problems] == ["timeline[0].duration"]


def test_validate_files_covers_every_file() -> None:
    assert validate_files([DATA / "good_full.yaml", DATA / "minimal.yaml"]) == []
    problems = validate_files(
        [DATA / "unknown_link.yaml", DATA / "good_full.yaml", DATA / "empty.yaml"]
    )
    assert [Path(p.file).name for p in problems] == ["unknown_link.yaml", "empty.yaml"]


def test_duplicate_keys_anywhere(tmp_path: Path) -> None:
    path = tmp_path / "dup.yaml"
    path.write_text(
        "name: dup\n"
        "load: {users: 1, spawn_rate: 1, mix: {deposits: 1}}\n"
        "timeline:\n"
        "  - phase: fault\n"
        "    duration: 1s\n"
        "    faults:\n"
        "      - {type: link_down, link: pg_p2p, link: pg_wallet}\n"
        "name: dup-again\n"
        "thresholds: none\n"
    )
    problems = validate_files([path])
    assert [(p.line, p.field) for p in problems] == [
        (7, "timeline[0].faults[0].link"),
        (8, "name"),
    ]


@pytest.mark.parametrize(
    ("yaml_text", "line", "field", "fragment"),
    [
        ("timeline: []", 3, "timeline", "needs at least 1 item"),
        ("timeline: {phase: a}", 3, "timeline", "must be a list, not a mapping"),
        ("timeline: [{phase: 1st, duration: 1}]", 3, "timeline[0].phase", "must be an identifier"),
        ("timeline: [{phase: a, duration: soon}]", 3, "timeline[0].duration",
         "malformed duration 'soon'"),
        ("timeline: [{phase: a, duration: 0}]", 3, "timeline[0].duration", "must be a positive"),
        ("timeline: [{phase: a, duration: 1, recycle: [p2p, p2p]}]", 3, "timeline[0].recycle[1]",
         "service 'p2p' given twice"),
        ("timeline: [{phase: a, duration: 1, recycle: [billing]}]", 3, "timeline[0].recycle[0]",
         "unknown service 'billing'"),
        ("timeline: [{phase: a, duration: 1, faults: [{type: toxic, link: pg_p2p, "
         "toxic: latency, toxicity: 2}]}]", 3, "timeline[0].faults[0].toxicity",
         "less than or equal to 1"),
        ("timeline: [{phase: a, duration: 1, faults: [{type: toxic, link: pg_p2p, "
         "toxic: latency, stream: sideways}]}]", 3, "timeline[0].faults[0].stream",
         "must be 'upstream' or 'downstream'"),
        ("timeline: [{phase: a, duration: 1, faults: [{type: service, service: p2p, "
         "mode: raise, slow_ms: 10}]}]", 3, "timeline[0].faults[0].slow_ms",
         "slow_ms applies to mode 'slow' only"),
        ("timeline: [{phase: a, duration: 1, faults: [{type: provider, target: prices, "
         "mode: slow}]}]", 3, "timeline[0].faults[0].delay_ms", "mode 'slow' needs delay_ms"),
        ("timeline: [{phase: a, duration: 1, faults: [{type: provider, target: prices, "
         "mode: slow, delay_ms: 10, status: 500}]}]", 3, "timeline[0].faults[0].status",
         "status applies to mode 'error' only"),
        ("timeline: [{phase: a, duration: 1, faults: [{type: db_restart, mode: smart}]}]", 3,
         "timeline[0].faults[0].mode", "must be 'fast' or 'immediate'"),
        ("timeline: [{phase: a, duration: 1, faults: [link_down]}]", 3,
         "timeline[0].faults[0]", "must be a mapping, not 'link_down'"),
        ("timeline: [{phase: a, duration: 1}]\ninvariants: [ledger_balanced, ledger_balanced]",
         4, "invariants[1]", "invariant 'ledger_balanced' given twice"),
        ("timeline: [{phase: a, duration: 1}]\ninvariants: [money_is_safe]", 4,
         "invariants[0]", "unknown invariant 'money_is_safe': one of no_operation_lost, "),
        ("timeline: [{phase: a, duration: 1}]\n"
         "invariants: [no_operation_lost, acknowledged_deposits_exist]", 4, "invariants[1]",
         "invariant 'no_operation_lost' given twice"),
        ("timeline: [{phase: a, duration: 1}]\napp: {admin_token: xxxxxxxxxxxxxxxxxx}", 4,
         "app.admin_token", "not an app setting a scenario may change"),
        ("timeline: [{phase: a, duration: 1}]\napp: {deposit_expiry_seconds: 0}", 4,
         "app.deposit_expiry_seconds", "greater than 0"),
        ("timeline: [{phase: a, duration: 1}]\nexpect: maybe", 4, "expect",
         "must be 'pass' or {fail: [...]}, not 'maybe'"),
        ("timeline: [{phase: a, duration: 1}]\nseed: '42'", 4, "seed",
         "must be a valid integer, not '42'"),
        ("timeline: [{phase: a, duration: 1}]\nthresholds: {'d.*': {a: p99 < 1s}}", 4,
         'thresholds["d.*"].a', "must be a list, not 'p99 < 1s'"),
        ("timeline: [{phase: a, duration: 1}]\nthresholds: {'d.*': {a: [3]}}", 4,
         'thresholds["d.*"].a[0]', "a threshold is a string"),
        ("timeline: [{phase: a, duration: 1}]\nthresholds: {'deposits.*': {a: ['p99 < b.p99']}}", 4,
         'thresholds["deposits.*"].a[0]', "refers to phase 'b', which is not in the timeline"),
    ],
)  # fmt: skip
def test_more_malformed_values(
    tmp_path: Path, yaml_text: str, line: int, field: str, fragment: str
) -> None:
    path = tmp_path / "scenario.yaml"
    path.write_text(
        f"name: s\nload: {{users: 1, spawn_rate: 1, mix: {{deposits: 1}}}}\n{yaml_text}\n"
        + ("" if "thresholds" in yaml_text else "thresholds: none\n")
    )
    problems = validate_files([path])
    assert len(problems) == 1, problems
    assert (problems[0].file, problems[0].line, problems[0].field) == (str(path), line, field)
    assert fragment in problems[0].message


@pytest.mark.parametrize(
    ("load", "field", "fragment"),
    [
        ("{spawn_rate: 1, mix: {deposits: 1}}", "load.users", "required field is missing"),
        ("{users: true, spawn_rate: 1, mix: {deposits: 1}}", "load.users", "valid integer"),
        ("{users: 1, spawn_rate: 0, mix: {deposits: 1}}", "load.spawn_rate", "greater than 0"),
        ("{users: 1, spawn_rate: 1, mix: {}}", "load.mix", "the mix names no user kind"),
        ("{users: 1, spawn_rate: 1, mix: {deposits: 0}}", "load.mix.deposits", "greater than"),
        ("{users: 1, spawn_rate: 1, mix: 'deposits=x'}", "load.mix", "must be a whole number"),
        ("{users: 1, spawn_rate: 1, mix: {deposits: 1}, workers: -1}", "load.workers",
         "greater than or equal to 0"),
    ],
)  # fmt: skip
def test_malformed_load(tmp_path: Path, load: str, field: str, fragment: str) -> None:
    path = tmp_path / "scenario.yaml"
    path.write_text(
        f"name: s\nload: {load}\ntimeline: [{{phase: a, duration: 1}}]\nthresholds: none\n"
    )
    problems = validate_files([path])
    assert [(p.line, p.field) for p in problems] == [(2, field)]
    assert fragment in problems[0].message


# -- what makes a verdict rest on nothing is refused when the file is read -------------------

CUT = (
    "timeline:\n"
    "  - {phase: baseline, duration: 5s}\n"
    "  - phase: outage\n"
    "    duration: 5s\n"
    "    faults: [{type: link_down, link: pg_p2p}]\n"
)


@pytest.mark.parametrize(
    ("body", "line", "field", "fragment"),
    [
        # silence: a glob no user of the mix can match
        ("thresholds: {'swap.*': {outage: ['error_rate == 0']}}", 8, 'thresholds["swap.*"]',
         "'swap.*' matches no request the mix's users make"),
        ("thresholds: {'deposit.*': {outage: ['error_rate == 0']}}", 8,
         'thresholds["deposit.*"]', "matches no request"),
        # no thresholds, or no invariants, unless said explicitly
        ("", 1, "thresholds", "write 'thresholds: none' to say so explicitly"),
        ("thresholds: {}", 8, "thresholds", "no threshold given: write 'thresholds: none'"),
        ("thresholds: none\ninvariants: []", 9, "invariants", "write 'invariants: none'"),
        ("thresholds: none\ninvariants: [escrow_consistent]", 9, "invariants[0]",
         "escrow_consistent would check nothing: only p2p users"),
        # windows
        ("thresholds: {'deposits.*': {'baseline@restored': ['error_rate == 0']}}", 8,
         'thresholds["deposits.*"]["baseline@restored"]', "phase 'baseline' has no fault"),
        ("thresholds: {'deposits.*': {'outage@later': ['error_rate == 0']}}", 8,
         'thresholds["deposits.*"]["outage@later"]', "unknown window @later"),
        ("thresholds: {'deposits.*': {'outage@faulted+2s': ['error_rate == 0']}}", 8,
         'thresholds["deposits.*"]["outage@faulted+2s"]', "only @restored takes an offset"),
        # expect: fail names what must fail, and it must exist
        ("thresholds: none\nexpect: fail", 9, "expect", "'expect: fail' must name what must fail"),
        ("thresholds: {'deposits.*': {outage: ['error_rate == 0']}}\n"
         "expect: {fail: [{threshold: 'p99 < 1s', group: 'deposits.*', phase: outage}]}", 9,
         "expect.fail[0].threshold", "no threshold 'p99 < 1s' for 'deposits.*' in 'outage'"),
        ("thresholds: none\nexpect: {fail: [{isolation: p2p, phase: baseline}]}", 9,
         "expect.fail[0].phase", "isolation is not judged in 'baseline'"),
        ("thresholds: none\ninvariants: [ledger_balanced]\n"
         "expect: {fail: [{invariant: no_negative_balance}]}", 10,
         "expect.fail[0].invariant", "invariant 'no_negative_balance' is not checked"),
        ("thresholds: none\nexpect: {fail: [{invariant: ledger_balanced, phase: outage}]}", 9,
         "expect.fail[0].phase", "an invariant is judged on the whole run"),
        ("thresholds: none\nexpect: {fail: []}", 9, "expect.fail", "needs at least 1 item"),
    ],
)  # fmt: skip
def test_verdicts_that_would_rest_on_nothing_are_refused(
    tmp_path: Path, body: str, line: int, field: str, fragment: str
) -> None:
    path = tmp_path / "scenario.yaml"
    path.write_text(
        f"name: s\nload: {{users: 1, spawn_rate: 1, mix: {{deposits: 1}}}}\n{CUT}{body}\n"
    )
    problems = validate_files([path])
    assert [(p.line, p.field) for p in problems] == [(line, field)], problems
    assert fragment in problems[0].message


def test_explicit_nothing_and_named_failures_load(tmp_path: Path) -> None:
    path = tmp_path / "scenario.yaml"
    path.write_text(
        "name: s\nload: {users: 1, spawn_rate: 1, mix: {deposits: 1, p2p: 1}}\n"
        + CUT
        + "thresholds: {'deposits.*': {outage: ['error_rate == 0'], "
        "'outage@restored+2s': ['p99 < 1s']}}\n"
        "invariants: none\n"
        "isolation: {fail_fast: 3s, dependencies: {swap: [wallet]}}\n"
        "expect: {fail: [{threshold: 'error_rate == 0', group: 'deposits.*', phase: outage},\n"
        "                {isolation: p2p, phase: outage}]}\n"
    )
    scenario = load_scenario(path)
    assert scenario.checked_invariants == ()
    assert scenario.isolation.fail_fast == 3.0
    assert scenario.isolation.dependencies == {"swap": ("wallet",)}
    assert [e.name for e in scenario.expected_failures] == [
        "threshold deposits.* / outage: error_rate == 0",
        "isolation of p2p in outage",
    ]


@pytest.mark.parametrize(
    ("value", "expected"),
    [("0s", (0.0, 0.0)), ("[0s, 300ms]", (0.0, 0.3)), ("[0.05, 0.3]", (0.05, 0.3)),
     ("2s", (2.0, 2.0))],
)  # fmt: skip
def test_think_time(tmp_path: Path, value: str, expected: tuple[float, float]) -> None:
    path = tmp_path / "scenario.yaml"
    path.write_text(
        f"name: s\nload: {{users: 1, spawn_rate: 1, mix: {{deposits: 1}}, think_time: {value}}}\n"
        "timeline: [{phase: a, duration: 1}]\nthresholds: none\n"
    )
    assert load_scenario(path).load.think_time == expected


@pytest.mark.parametrize(
    ("value", "fragment"),
    [("[1s, 0s]", "min 1s is above max 0s"), ("[0s, 1s, 2s]", "one duration or [min, max]"),
     ("-1s", "must be positive")],
)  # fmt: skip
def test_malformed_think_time(tmp_path: Path, value: str, fragment: str) -> None:
    path = tmp_path / "scenario.yaml"
    path.write_text(
        f"name: s\nload: {{users: 1, spawn_rate: 1, mix: {{deposits: 1}}, think_time: {value}}}\n"
        "timeline: [{phase: a, duration: 1}]\nthresholds: none\n"
    )
    problems = validate_files([path])
    assert [(p.line, p.field) for p in problems] == [(2, "load.think_time")], problems
    assert fragment in problems[0].message


@pytest.mark.parametrize(
    ("value", "fragment"),
    [("0s", "must be positive"), ("-3s", "must be positive"), ("11m", "less than or equal to 600")],
)  # fmt: skip
def test_malformed_ready_within(tmp_path: Path, value: str, fragment: str) -> None:
    path = tmp_path / "scenario.yaml"
    path.write_text(
        "name: s\nload: {users: 1, spawn_rate: 1, mix: {deposits: 1}}\n"
        f"timeline: [{{phase: a, duration: 1}}]\nthresholds: none\nready_within: {value}\n"
    )
    problems = validate_files([path])
    assert [(p.line, p.field) for p in problems] == [(5, "ready_within")], problems
    assert fragment in problems[0].message
    path.write_text(path.read_text().replace(f"ready_within: {value}", "ready_within: 4s"))
    assert load_scenario(path).ready_within == 4.0
