"""Bad inputs to the engine, the explorer and the command line, each refused with a
``txlib.TxlibError`` that names the bad value and the valid choices (never a deep
traceback, a hang or a silently wrong answer). One group per defect an attack found;
every test failed before its fix."""

from __future__ import annotations

import inspect
from collections.abc import Callable, Hashable, Iterable
from typing import Any

import pytest

import txlib
from txlib import TxlibError
from txlib.cli import main
from txlib.engine.config import MAX_NUMBER
from txlib.engine.faults import Fault
from txlib.engine.node import Role, declared_records
from txlib.engine.records import EVENT_KINDS
from txlib.engine.trace import Trace
from txlib.explorer.search import Model, search
from txlib.explorer.worlds import ASYNC_DEPTH, EXPLORE_KEYWORDS, explore
from txlib.presets import NAMED_SCENARIOS
from txlib.protocols import PROTOCOLS, get_protocol, register, two_phase, unregister

HUGE = 10**5000  # more digits than Python prints


def refused(call: Callable[[], Any], *fragments: str) -> str:
    """The message of the TxlibError ``call()`` raises; it must hold every fragment."""
    with pytest.raises(TxlibError) as info:
        call()
    message = str(info.value)
    for fragment in fragments:
        assert fragment in message, (fragment, message)
    return message


# --- 1. the explorer's participant limit, for a Scenario too ------------------------------
@pytest.mark.parametrize("count", [9, 64])
def test_a_scenario_with_too_many_participants_is_refused_as_a_count_is(count: int) -> None:
    by_count = refused(lambda: explore("2pc", participants=count, progress=False))
    by_scenario = refused(lambda: explore(txlib.Scenario("2pc", count), progress=False))
    assert by_scenario == by_count
    assert f"at most 8 participants (states grow exponentially with them), got {count}" \
        in by_scenario


class _Undecided(Model[int]):
    """One state, no move: every participant is up and undecided, for ever."""

    def __init__(self, participants: int) -> None:
        self.participants = tuple(f"p{i}" for i in range(participants))

    def initial(self) -> Iterable[int]:
        return [0]

    def successors(self, state: int) -> Iterable[tuple[Hashable, int]]:
        return []

    def fingerprint(self, state: int) -> Hashable:
        return state

    def undecided(self, state: int) -> int:
        return (1 << len(self.participants)) - 1


@pytest.mark.parametrize("participants", [8, 64, 65])
def test_the_search_keeps_a_mask_of_every_participant(participants: int) -> None:
    """The top participant's bit (bit 63 of 64) overflowed a signed 64-bit array."""
    result = search(_Undecided(participants), progress=False)
    assert result.blocking_states == 1 and result.blocking is not None
    assert f"p{participants - 1} are up and undecided" in result.blocking.reason


# --- 2. fault times and counts are bounded -------------------------------------------------
FAULTS_WITH_A_NUMBER: list[tuple[str, Callable[[int], Fault], str]] = [
    ("crash at_step", lambda n: txlib.crash("p1", at_step=n), "at_step"),
    ("crash at_time", lambda n: txlib.crash("p1", at_time=n), "at_time"),
    ("recover at_step", lambda n: txlib.recover("p1", at_step=n), "at_step"),
    ("recover at_time", lambda n: txlib.recover("p1", at_time=n), "at_time"),
    ("drop count", lambda n: txlib.drop("COMMIT", count=n), "count"),
    ("drop at_step", lambda n: txlib.drop("COMMIT", at_step=n), "at_step"),
    ("duplicate count", lambda n: txlib.duplicate("COMMIT", count=n), "count"),
    ("delay by", lambda n: txlib.delay(n, "COMMIT"), "by"),
    ("delay count", lambda n: txlib.delay(5, "COMMIT", count=n), "count"),
    ("delay at_time", lambda n: txlib.delay(5, "COMMIT", at_time=n), "at_time"),
    ("partition at_step", lambda n: txlib.partition(["p1"], at_step=n), "at_step"),
    ("heal at_time", lambda n: txlib.heal(at_time=n), "at_time"),
    ("vote_no at_step", lambda n: txlib.vote_no("p1", at_step=n), "at_step"),
    ("slow by", lambda n: txlib.slow("p1", n), "by"),
    ("slow at_time", lambda n: txlib.slow("p1", 5, at_time=n), "at_time"),
    ("fail_step times", lambda n: txlib.fail_step("pay", times=n), "times"),
    ("fail_step at_step", lambda n: txlib.fail_step("pay", at_step=n), "at_step"),
]


@pytest.mark.parametrize(("label", "make", "field"), FAULTS_WITH_A_NUMBER,
                         ids=[c[0] for c in FAULTS_WITH_A_NUMBER])
@pytest.mark.parametrize("value", [MAX_NUMBER + 1, HUGE], ids=["max+1", "huge"])
def test_fault_times_and_counts_are_at_most_max_number(
        label: str, make: Callable[[int], Fault], field: str, value: int) -> None:
    shown = txlib.errors.shown(value)
    refused(lambda: make(value), f"{field} must be at most 1,000,000,000, got {shown}")


@pytest.mark.parametrize(("label", "make", "field"), FAULTS_WITH_A_NUMBER,
                         ids=[c[0] for c in FAULTS_WITH_A_NUMBER])
def test_the_bound_itself_is_a_valid_fault_that_describes_itself(
        label: str, make: Callable[[int], Fault], field: str) -> None:
    fault = make(MAX_NUMBER)
    assert "1000000000" in fault.describe() + repr(fault)
    assert Fault.from_dict(fault.to_dict()) == fault


def test_a_huge_step_is_refused_before_the_run_and_in_saved_faults() -> None:
    refused(lambda: txlib.simulate("2pc", faults=[txlib.crash("p1", at_step=HUGE)]),
            "at_step must be at most 1,000,000,000, got a number of about 5,001 digits")
    refused(lambda: Fault.from_dict({"kind": "drop", "count": 10**20}),
            "count must be at most 1,000,000,000")
    text = txlib.Scenario("2pc", faults=(txlib.crash("p1", at_step=5),)).to_json()
    refused(lambda: txlib.Scenario.from_json(text.replace('"at_step": 5',
                                                          '"at_step": ' + "9" * 4000)),
            "at_step must be at most 1,000,000,000, got a number of about 4,")


# --- 3. custom invariants keep their contract; violation() names only invariants ----------
def always_true(world: Any) -> Any:
    return True


@pytest.mark.parametrize("returned", [True, False, 5, 0, ["broken"], b"x"],
                         ids=repr)
def test_an_invariant_that_returns_anything_but_a_reason_or_none_is_refused(
        returned: Any) -> None:
    def mine(world: Any) -> Any:
        return returned

    refused(lambda: explore("2pc", invariants=[mine], max_crashes=0, progress=False),
            f"the invariant mine returned {returned!r}", "reason (a string)", "None")


def test_an_invariant_returning_true_is_named_not_counted_as_a_violation() -> None:
    refused(lambda: explore("2pc", invariants=[always_true], progress=False),
            "invariant always_true returned True")


@pytest.mark.parametrize("holds", [None, ""], ids=repr)
def test_none_and_the_empty_string_mean_the_invariant_holds(holds: str | None) -> None:
    result = explore("2pc", invariants=[lambda w: holds], max_crashes=0, progress=False)
    assert result.ok and result.violations == ()


def test_violation_refuses_a_name_that_is_not_an_invariant_of_the_search() -> None:
    clean = explore("2pc", max_crashes=0, progress=False)
    assert clean.violation("atomicity") is None, "checked, and never broken"
    refused(lambda: clean.violation("atomicty"), "'atomicty'", "(did you mean 'atomicity'?)",
            "'atomicity', 'stability' or 'validity'")
    refused(lambda: clean.violation(None),  # type: ignore[arg-type]
            "got None", "'atomicity', 'stability' or 'validity'")
    refused(lambda: clean.violation(["atomicity"]),  # type: ignore[arg-type]
            "got ['atomicity']")
    only = explore("2pc", max_crashes=0, invariants=["atomicity", always_none],
                   progress=False)
    assert only.violation("always_none") is None
    refused(lambda: only.violation("validity"), "'validity' is not an invariant this search "
            "checked; valid choices: 'atomicity' or 'always_none'")


def always_none(world: Any) -> None:
    return None


def test_violation_still_finds_what_was_broken() -> None:
    result = explore("2pc", invariants=["atomicity", lambda w: "x" if w.started else None],
                     max_crashes=0, progress=False)
    assert result.violation("<lambda>") is not None


# --- 4. option names are strings ------------------------------------------------------------
@pytest.mark.parametrize("options", [{("horizon",): 5}, {1: 2, "a": 3}, {None: 5},
                                     {"horizon": 5, 2.5: 1}], ids=repr)
def test_a_scenario_option_that_is_not_a_string_is_named(options: dict[Any, Any]) -> None:
    bad = next(k for k in options if not isinstance(k, str))
    refused(lambda: txlib.Scenario("2pc", options=options),
            f"option names must be strings, got {bad!r}", "'horizon'", "'max_steps'")


def test_a_replaced_scenario_checks_its_option_names_too() -> None:
    refused(lambda: txlib.Scenario("2pc").replace(options={None: 1}),
            "option names must be strings, got None")


# --- 5. participant names without control characters ---------------------------------------
@pytest.mark.parametrize("name", ["p\x00", "p\x1b[31m", "p\x07", "p\x7f", "p\u202e",
                                  "p\ud800"], ids=repr)
def test_a_participant_name_with_a_control_character_is_refused(name: str) -> None:
    message = refused(lambda: txlib.simulate("2pc", participants=[name, "q"]),
                      "participant names must be words without spaces or control "
                      f"characters, got {name!r}")
    assert name not in message, "the message shows it escaped"
    refused(lambda: txlib.Scenario("2pc", (name,)), repr(name))


def test_the_command_line_refuses_a_control_character_in_names(
        capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["run", "2pc", "--names", "a\x1b[2J,b"]) == 2
    out, err = capsys.readouterr()
    assert out == "" and "\x1b" not in err
    assert err.startswith("txlib: error: participant names must be words without spaces or "
                          "control characters, got 'a\\x1b[2J'")


def test_names_the_lessons_use_are_still_valid() -> None:
    for names in (["AccountA", "AccountB"], ["alice", "bob", "carol"], ["payment"],
                  ["[bold]x", "<b>"], ["p-1", "p.2", "ünïcødé", "口座"]):
        assert txlib.Scenario("2pc", tuple(names)).participants == tuple(names)


# --- 6. asynchronous timeouts stop at depth 20 unless a budget is given ---------------------
def test_an_asynchronous_search_without_a_budget_stops_at_its_depth() -> None:
    result = explore("2pc", participants=1, max_crashes=0, timeouts="asynchronous",
                     progress=False)
    assert ASYNC_DEPTH == 20
    assert (result.stopped_by, result.depth, result.complete) == ("max_depth=20", 20, False)


def test_an_asynchronous_search_with_a_budget_has_no_depth_bound() -> None:
    result = explore("2pc", participants=1, max_crashes=0, timeouts="asynchronous",
                     max_states=1600, progress=False)
    assert result.stopped_by == "max_states=1600" and result.depth > 20


# --- 7. log records in triggers are checked -------------------------------------------------
@pytest.mark.parametrize(("protocol", "trigger", "fragment"), [
    ("2pc", "coordinator logs COMIT", "(did you mean 'COMMIT'?), which 2pc never writes"),
    ("2pc", "p1 logs prepared", "(did you mean 'PREPARED'?), which 2pc never writes"),
    ("3pc", "coordinator logs PRECOMIT", "(did you mean 'PRECOMMIT'?)"),
    ("naive", "any logs COMMIT", "which naive never writes; valid choices: 'ABORT' or "
                                 "'COMMITTED'"),
])
def test_a_trigger_naming_a_log_record_the_protocol_never_writes_is_refused(
        protocol: str, trigger: str, fragment: str) -> None:
    fault = txlib.crash("coordinator", when=trigger)
    refused(lambda: txlib.simulate(protocol, faults=[fault]), "names log record", fragment)


def test_the_command_line_refuses_a_misspelt_record(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["run", "2pc", "--fault", "crash:coordinator@when=coordinator logs COMIT"]) == 2
    assert "(did you mean 'COMMIT'?)" in capsys.readouterr().err


def listed(scenario: txlib.Scenario) -> frozenset[str] | None:
    """The records ``scenario``'s protocol lists (None: it cannot)."""
    proto = get_protocol(scenario.protocol)
    config = proto.make_config(scenario.participants, scenario.options)
    return declared_records(role for _, role in proto.build(scenario.roster, config))


def test_every_record_a_run_writes_is_listed() -> None:
    """No false refusal: every record of every named scenario's run is among those its
    protocol lists, and a trigger on it is accepted. (The engine also refuses a write
    a role does not declare, so a run could not write one.)"""
    checked = set()
    plain = [(protocol, txlib.Scenario(protocol)) for protocol in PROTOCOLS]
    for name, scenario in [*NAMED_SCENARIOS.items(), *plain]:
        records = listed(scenario)
        assert records is not None, name  # every built-in role declares its records
        checked.add(scenario.protocol)
        for node, written in scenario.run().logs.items():
            for r in written:
                assert r.record in records, (name, node, r.record)
                scenario.with_faults(txlib.crash(node, when=f"{node} logs {r.record}"))
    assert set(PROTOCOLS) <= checked


def _audit(ctx: Any) -> None:
    """A learner's helper, outside the role's class, that writes a record."""
    ctx.log("AUDIT", forced=False)


class _AuditedParticipant(two_phase.Participant):
    """A learner's role: it writes a record the 2PC participant does not declare."""

    def on_PREPARE(self, ctx: Any, msg: Any) -> None:
        _audit(ctx)
        super().on_PREPARE(ctx, msg)


class _DeclaredAuditParticipant(_AuditedParticipant):
    record_types = two_phase.Participant.record_types | {"AUDIT"}


def _audited(participant: type[Role]) -> Any:
    class Audited(type(get_protocol("2pc"))):  # type: ignore[misc]
        name = "audited-2pc"
        participant_class = participant
    return Audited()


def test_a_role_writing_a_record_it_does_not_declare_is_a_protocol_error() -> None:
    register(_audited(_AuditedParticipant))
    try:
        with pytest.raises(txlib.ProtocolError, match=r"p[12] \(participant\) wrote log record "
                                                      r"'AUDIT', which its role does not "
                                                      r"declare; declared: 'ABORT', "
                                                      r"'COMMITTED' or 'PREPARED' \(add it"):
            txlib.simulate("audited-2pc", participants=2, record=False)
    finally:
        unregister("audited-2pc")


def test_a_record_a_role_declares_can_trigger_a_fault() -> None:
    proto = _audited(_DeclaredAuditParticipant)
    config = proto.make_config(("p1", "p2"), {})
    assert "AUDIT" in declared_records(
        role for _, role in proto.build(proto.roster(("p1", "p2"), {}), config))
    register(proto)
    try:
        run = txlib.simulate("audited-2pc", participants=2,
                             faults=[txlib.crash("p1", when="p1 logs AUDIT")])
        assert run.down == frozenset({"p1"})
        refused(lambda: txlib.simulate("audited-2pc", participants=2,
                                       faults=[txlib.crash("p1", when="p1 logs AUDT")]),
                "names log record", "(did you mean 'AUDIT'?)")
    finally:
        unregister("audited-2pc")


def test_a_role_that_does_not_declare_its_records_is_not_checked() -> None:
    class Plain(_AuditedParticipant):
        record_types = None

    proto = _audited(Plain)
    config = proto.make_config(("p1", "p2"), {})
    assert declared_records(role for _, role in proto.build(proto.roster(("p1", "p2"), {}),
                                                             config)) is None
    register(proto)
    try:
        run = txlib.simulate("audited-2pc", participants=2,
                             faults=[txlib.crash("p1", when="p1 logs AUDIT")])
        assert run.down == frozenset({"p1"})
    finally:
        unregister("audited-2pc")


@pytest.mark.parametrize(("protocol", "trigger", "fragment"), [
    ("paxos-commit", "coordinator logs COMIT", "(did you mean 'COMMIT'?), which paxos-commit "
                                               "never writes"),
    ("tcc", "coordinator logs CONFIRMED", "(did you mean 'CONFIRM'?), which tcc never writes"),
    ("saga-choreography", "any logs LOCALTX", "(did you mean 'LOCAL_TX'?)"),
])
def test_triggers_are_checked_for_protocols_that_name_records_at_run_time(
        protocol: str, trigger: str, fragment: str) -> None:
    """Paxos Commit, TCC and choreography compute some record names (ctx.log(record)),
    so reading the names off their code could not list them: a misspelt trigger was
    accepted and never fired."""
    node = "broker" if protocol == "saga-choreography" else "coordinator"
    fault = txlib.crash(node, when=trigger)
    refused(lambda: txlib.simulate(protocol, faults=[fault]), "names log record", fragment)
    assert listed(txlib.Scenario(protocol)) is not None


# --- 8. explore's own keywords get "did you mean" -------------------------------------------
@pytest.mark.parametrize(("keyword", "meant"), [("max_state", "max_states"),
                                               ("partition", "partitions"),
                                               ("recovery", "recoveries"),
                                               ("max_crash", "max_crashes"),
                                               ("horizn", "horizon")])
def test_a_misspelt_keyword_of_explore_is_suggested(keyword: str, meant: str) -> None:
    refused(lambda: explore("2pc", progress=False, **{keyword: 5}),
            f"unknown keyword or option {keyword!r} (did you mean {meant!r}?)",
            "'max_states'", "'horizon'")


def test_a_misspelt_keyword_with_a_scenario_is_suggested_too() -> None:
    refused(lambda: explore(txlib.Scenario("2pc"), max_state=5, progress=False),
            "(did you mean 'max_states'?)")


def test_explore_keywords_are_explores_own() -> None:
    params = inspect.signature(explore).parameters
    assert set(EXPLORE_KEYWORDS) == {p for p, v in params.items()
                                     if v.kind is inspect.Parameter.KEYWORD_ONLY}


# --- 9. the command line's --option value, and its max_steps message -----------------------
@pytest.mark.parametrize(("value", "fragment"), [
    ("9" * 5000, "bad option 'horizon': its value is a number too long to read"),
    ("[" * 100_000, "bad option 'horizon': its value is nested too deeply"),
])
def test_an_unreadable_option_value_prints_one_line_and_exits_2(
        capsys: pytest.CaptureFixture[str], value: str, fragment: str) -> None:
    assert main(["run", "2pc", "--option", f"horizon={value}"]) == 2
    out, err = capsys.readouterr()
    assert out == "" and err.count("\n") == 1 and "Traceback" not in err
    assert err.startswith(f"txlib: error: {fragment}")


def test_the_command_lines_max_steps_message_says_what_it_can_do(
        capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["run", "2pc", "--option", "max_steps=500000"]) == 2
    err = capsys.readouterr().err
    assert "record=False" not in err
    assert "give --option max_steps=N with N at most 200,000" in err


# --- 10. the trace's lookups ----------------------------------------------------------------
@pytest.fixture(scope="module")
def trace() -> Trace:
    return txlib.simulate("2pc").trace


@pytest.mark.parametrize("index", ["a", 1.0, None], ids=repr)
def test_a_trace_index_that_is_not_a_whole_number_is_named(trace: Any, index: Any) -> None:
    refused(lambda: trace[index], f"a trace index must be a whole number or a slice, "
            f"got {index!r}")


@pytest.mark.parametrize("past", [lambda n: n, lambda n: -n - 1, lambda n: 10**100],
                         ids=["n", "-n-1", "googol"])
def test_a_trace_index_out_of_range_says_the_valid_range(
        trace: Any, past: Callable[[int], int]) -> None:
    n = len(trace)
    with pytest.raises(IndexError):  # as for any sequence
        trace[past(n)]
    refused(lambda: trace[past(n)], "is out of range: this trace has "
            f"{n} events; valid: 0 to {n - 1} (or -{n} to -1 from the end)")


def test_a_trace_still_indexes_slices_and_searches_like_a_sequence(trace: Any) -> None:
    assert trace[-1] is trace[len(trace) - 1] and list(trace[2:4]) == [trace[2], trace[3]]
    assert trace.index(trace[3]) == 3 and trace[3] in trace
    refused(lambda: trace["a":], "a slice of a trace takes whole numbers")


def test_volatile_at_and_at_step_take_whole_numbers_in_range(trace: Any) -> None:
    refused(lambda: trace.volatile_at("1"), "an event index must be a whole number, got '1'")
    n = len(trace)
    refused(lambda: trace.volatile_at(n), f"an event index of {n} is out of range",
            f"0 to {n - 1}")
    refused(lambda: trace.volatile_at(-1), "an event index of -1 is out of range")
    assert trace.volatile_at(n - 1) == trace.volatile_at(n - 1)
    refused(lambda: trace.at_step("1"), "a step must be a whole number, got '1'")
    last = trace.last_step
    refused(lambda: trace.at_step(last + 1), f"step {last + 1} is out of range",
            f"0 to {last}")
    assert trace.at_step(last) and all(e.step == last for e in trace.at_step(last))


def test_of_kind_suggests_an_event_kind(trace: Any) -> None:
    refused(lambda: trace.of_kind("sendd"), "unknown event kind 'sendd' (did you mean 'send'?)",
            *(repr(k) for k in EVENT_KINDS))
    assert trace.of_kind("send") and trace.of_kind("send", "crash") == trace.of_kind("send")


# --- 9. a fault plan has a budget, and step-timed faults stop at max_steps -----------------
def test_a_plan_of_too_many_faults_is_refused_before_any_run() -> None:
    """[crash, recover] * 400_000 ran 10.7 s and held 985 MB; an endless iterator of
    faults never returned."""
    import itertools

    from txlib.engine.faults import MAX_FAULTS

    many = [txlib.crash("p1"), txlib.recover("p1", at_step=0)] * (MAX_FAULTS // 2 + 1)
    for faults in (many, itertools.repeat(txlib.crash("p1"))):
        refused(lambda faults=faults: txlib.simulate("2pc", faults=faults),
                f"a scenario plans at most {MAX_FAULTS:,} faults, got more")
    refused(lambda: txlib.Scenario("2pc").with_faults(*many), "at most 1,000 faults")
    assert txlib.simulate("2pc", faults=many[:MAX_FAULTS], record=False).steps > 0


def test_faults_due_by_step_stop_at_the_step_limit() -> None:
    """Faults due after each step were applied past max_steps: max_steps=10 ran 1,001
    steps."""
    faults = [f for i in range(400) for f in (txlib.crash("p1", at_step=2 * i),
                                              txlib.recover("p1", at_step=2 * i + 1))]
    run = txlib.simulate("2pc", max_steps=10, faults=faults)
    # the faults used up the steps before the start, which still comes (one step more)
    assert run.stopped_by == "max_steps=10" and run.steps == 11
    assert len(run.unfired_faults) > 700
    assert all("never came" in why or "stopped at its step limit before it" in why
               for _, why in run.unfired_faults)
    same_step = [txlib.crash("p1", at_step=5), txlib.recover("p1", at_step=5)] * 400
    run = txlib.simulate("2pc", max_steps=10, faults=same_step)  # ran to step 805
    assert run.steps == 10 and len(run.unfired_faults) >= len(same_step) - 10
    crashes = [txlib.crash(n, at_step=9) for n in ("p1", "p2", "p3")]
    run = txlib.simulate("2pc", max_steps=10, faults=crashes)
    assert run.steps == 10 and run.down == {"p1"}
    assert [why.split(":")[0] for _, why in run.unfired_faults] == [
        "the run stopped at its step limit before it"] * 2


# --- 10. the explorer refuses what only changes time ------------------------------------
@pytest.mark.parametrize(("call", "fragment"), [
    (lambda: explore("2pc", delay=1.0), "set loss, duplicate and delay to 0"),
    (lambda: explore("2pc", horizon=1, latency_min=500, latency_max=500),
     "the explorer ignores time, so option horizon, latency_max, latency_min would change "
     "nothing"),
    (lambda: explore("2pc", max_steps=3), "option max_steps would change nothing"),
    (lambda: explore("2pc", vote_timeout=1), "option vote_timeout would change nothing"),
    (lambda: explore("paxos-commit", takeover_gap=5), "option takeover_gap would change"),
    (lambda: explore(txlib.Scenario("2pc", faults=(txlib.delay(500, "PREPARE"),))),
     "only changes when messages arrive"),
    (lambda: explore(txlib.Scenario("2pc", faults=(txlib.slow("p1", 500),))),
     "fault 'slow p1 by 500' only changes when messages arrive"),
])
def test_the_explorer_refuses_what_only_changes_time(call: Callable[[], Any],
                                                     fragment: str) -> None:
    """These were accepted and changed nothing (138 states, as without them), while their
    twins (loss, at_time faults) were refused."""
    refused(call, fragment)


def test_a_scenario_keeps_its_own_timing_for_its_timed_runs_when_explored() -> None:
    scenario = txlib.scenario("choreo-invented-event")
    assert scenario.options["horizon"] == 500
    assert explore(scenario, progress=False).states > 0


# --- 11. a trigger on a node whose role never does what it names ----------------------
@pytest.mark.parametrize(("trigger", "fragment"), [
    ("coordinator logs PREPARED", "'PREPARED', which coordinator (coordinator) never writes; "
                                  "valid choices: 'ABORT', 'COMMIT' or 'END'"),
    ("p1 receives YES", "'YES', which p1 (participant) never receives"),
    ("coordinator sends YES to p1", "'YES', which p1 (participant) never receives"),
    ("p1 logs PREPARD", "'PREPARD' (did you mean 'PREPARED'?), which 2pc never writes"),
])
def test_a_trigger_that_its_node_could_never_meet_is_refused(trigger: str,
                                                             fragment: str) -> None:
    """Records and types were checked against the whole protocol, so a trigger on a node
    that never writes that record (or receives that type) was accepted and never fired
    (found by a newcomer adding a protocol)."""
    refused(lambda: txlib.simulate("2pc", faults=[txlib.crash("p2", when=trigger)]),
            fragment)


def test_triggers_any_node_could_meet_are_accepted() -> None:
    for trigger in ("any logs PREPARED", "p1 logs PREPARED", "coordinator receives YES",
                    "coordinator sends COMMIT to p1", "p1 sends YES"):
        run = txlib.simulate("2pc", faults=[txlib.crash("p2", when=trigger)])
        assert "p2" in run.down, trigger


# --- 12. options a protocol never reads ---------------------------------------------------
@pytest.mark.parametrize(("protocol", "options", "fragment"), [
    ("3pc", {"cooperative": True}, "option cooperative changes nothing in 3pc"),
    ("3pc", {"decision_timeout": 5}, "option decision_timeout changes nothing in 3pc"),
    ("naive", {"retry_interval": 5}, "option retry_interval changes nothing in naive"),
    ("naive", {"ack_timeout": 5}, "option ack_timeout changes nothing in naive"),
    ("paxos-commit", {"ack_timeout": 5}, "option ack_timeout changes nothing in paxos-commit"),
    ("paxos-commit", {"cooperative": True}, "option cooperative changes nothing"),
    ("2pc", {"delay_by": 900}, "option delay_by changes nothing unless delay"),
])
def test_an_option_the_protocol_never_reads_is_refused(protocol: str, options: dict[str, Any],
                                                       fragment: str) -> None:
    """Each was accepted and the run was byte-identical to the default one (found by an
    attacker)."""
    refused(lambda: txlib.simulate(protocol, **options), fragment)


def test_the_same_options_where_they_are_read_are_accepted() -> None:
    plain = txlib.simulate("2pc", faults=[txlib.crash("coordinator",
                                                      when="coordinator sends COMMIT to p1")])
    helped = txlib.simulate("2pc", cooperative=True,
                            faults=[txlib.crash("coordinator",
                                                when="coordinator sends COMMIT to p1")])
    assert (plain.outcome, helped.outcome) == ("blocked", "committed")
    assert txlib.simulate("2pc", delay=0.5, delay_by=900).end_time > (
        txlib.simulate("2pc", delay=0.5).end_time)


# --- 13. the fast check of plain values agrees with the one that names the bad part ------
def _nested(depth: int, leaf: Any) -> Any:
    value = leaf
    for i in range(depth):
        value = [value] if i % 2 else {"k": value}
    return value


@pytest.mark.parametrize("value", [
    None, True, "s", 1, -(2**63 - 1), 2**63, 1.5, float("nan"), float("inf"), [1, (2, 3)],
    {"a": {"b": [None]}}, {1: "x"}, {"a": {1, 2}}, [object()], _nested(32, 1),
    _nested(33, 1), _nested(32, []), _nested(33, {}), _nested(31, [2**64]),
])
def test_is_plain_agrees_with_check_plain(value: Any) -> None:
    from txlib.engine.plain import check_plain, is_plain

    try:
        check_plain(value, "v", depth=1)  # depth 1: the detailed walk, without the fast path
        named = True
    except TxlibError:
        named = False
    assert is_plain(value, 1) == named
    try:
        check_plain(value, "v")
        checked = True
    except TxlibError:
        checked = False
    assert is_plain(value) == checked


def test_plain_copy_is_a_deep_copy_with_plain_containers() -> None:
    import copy

    from txlib.engine.plain import plain_copy
    from txlib.sagas.frozen import frozen

    value = {"a": [1, {"b": (2, [3])}], "c": "x", "d": None, "e": 1.5}
    copied = plain_copy(frozen(value))
    assert copied == copy.deepcopy(value) and type(copied) is dict
    assert type(copied["a"]) is list and type(copied["a"][1]) is dict
    copied["a"][1]["b"][1].append(4)
    assert value["a"][1]["b"][1] == [3]
