"""Property tests: the protocols' safety under random fault plans, and determinism."""

from __future__ import annotations

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from strategies import fault_timing, roles_of

import txlib

MESSAGE_TYPES = {
    "2pc": ["PREPARE", "YES", "NO", "COMMIT", "ABORT", "ACK", "DECISION_REQ"],
    "3pc": ["CAN_COMMIT", "YES", "PRE_COMMIT", "ACK", "DO_COMMIT", "ABORT", "STATE_REQ",
            "STATE", "DECISION_REQ"],
}
LOG_RECORDS = {
    "2pc": ["PREPARED", "COMMIT", "COMMITTED", "ABORT"],
    "3pc": ["START", "READY", "PRECOMMIT", "PRECOMMITTED", "COMMIT", "COMMITTED"],
}
SETTINGS = settings(max_examples=300, deadline=None,
                    suppress_health_check=[HealthCheck.too_slow])


def timing(protocol: str, nodes: list[str]) -> st.SearchStrategy[dict]:
    """One of: after a step, at a time, or when a trigger fires."""
    return fault_timing(nodes, LOG_RECORDS[protocol], MESSAGE_TYPES[protocol], 40, 600,
                        roles_of(protocol, tuple(n for n in nodes if n != "coordinator")))


@st.composite
def crash_faults(draw, protocol: str, nodes: list[str]) -> list:
    faults = []
    for _ in range(draw(st.integers(0, 4))):
        node = draw(st.sampled_from(nodes))
        maker = draw(st.sampled_from([txlib.crash, txlib.recover]))
        faults.append(maker(node, **draw(timing(protocol, nodes))))
    return faults


@st.composite
def any_faults(draw, protocol: str, nodes: list[str], participants: list[str]) -> list:
    faults = draw(crash_faults(protocol, nodes))
    types = [None, *MESSAGE_TYPES[protocol]]
    for _ in range(draw(st.integers(0, 4))):
        kind = draw(st.sampled_from(["drop", "duplicate", "delay", "partition", "heal",
                                     "vote_no", "slow"]))
        pattern = {
            "src": draw(st.sampled_from([None, *nodes])),
            "dst": draw(st.sampled_from([None, *nodes])),
            "count": draw(st.sampled_from([1, 2, None])),
        }
        if kind == "drop":
            faults.append(txlib.drop(draw(st.sampled_from(types)), **pattern))
        elif kind == "duplicate":
            faults.append(txlib.duplicate(draw(st.sampled_from(types)), **pattern))
        elif kind == "delay":
            faults.append(txlib.delay(draw(st.integers(1, 300)), draw(st.sampled_from(types)),
                                      **pattern))
        elif kind == "partition":
            group = draw(st.lists(st.sampled_from(nodes), min_size=1, unique=True))
            faults.append(txlib.partition(group, **draw(timing(protocol, nodes))))
        elif kind == "heal":
            faults.append(txlib.heal(**draw(timing(protocol, nodes))))
        elif kind == "vote_no":
            faults.append(txlib.vote_no(draw(st.sampled_from(participants))))
        else:
            faults.append(txlib.slow(draw(st.sampled_from(nodes)), draw(st.integers(1, 200))))
    return faults


@st.composite
def scenarios(draw, protocol: str, crash_only: bool) -> txlib.Scenario:
    n = draw(st.integers(1, 4))
    participants = [f"p{i}" for i in range(1, n + 1)]
    nodes = ["coordinator", *participants]
    options: dict = {"lose_unforced": draw(st.booleans())}
    if crash_only:
        faults = draw(crash_faults(protocol, nodes))
    else:
        faults = draw(any_faults(protocol, nodes, participants))
        options.update(
            loss=draw(st.sampled_from([0.0, 0.1, 0.3])),
            duplicate=draw(st.sampled_from([0.0, 0.2])),
            delay=draw(st.sampled_from([0.0, 0.2])),
            reorder=draw(st.booleans()),
        )
        if protocol == "2pc":  # 3PC's participants always cooperate
            options["cooperative"] = draw(st.booleans())
    return txlib.Scenario(protocol, participants, seed=draw(st.integers(0, 2**32)),
                          faults=tuple(faults), options=options)


@SETTINGS
@given(scenarios("2pc", crash_only=False))
def test_2pc_is_safe_whatever_the_faults(scenario):
    run = scenario.run()
    assert run.violations == (), run.summary()
    assert run.outcome != "inconsistent"


@SETTINGS
@given(scenarios("3pc", crash_only=True))
def test_3pc_is_safe_under_crashes(scenario):
    run = scenario.run()
    assert run.violations == (), run.summary()


@SETTINGS
@given(scenarios("3pc", crash_only=False))
def test_3pc_never_crashes_the_engine_whatever_the_faults(scenario):
    """Partitions and loss may split 3PC, but the simulator must report it, not fail."""
    run = scenario.run()
    assert (run.outcome == "inconsistent") == any(
        v.invariant == "atomicity" for v in run.violations)


@SETTINGS
@given(st.sampled_from(["2pc", "3pc"]).flatmap(lambda p: scenarios(p, crash_only=False)))
def test_same_scenario_same_trace(scenario):
    first = scenario.run().trace.to_jsonl()
    again = txlib.Scenario.from_json(scenario.to_json()).run().trace.to_jsonl()
    assert first == again


@settings(max_examples=60, deadline=None)
@given(st.sampled_from(["2pc", "3pc"]).flatmap(lambda p: scenarios(p, crash_only=False)))
def test_recording_off_reaches_the_same_end(scenario):
    on, off = scenario.run(), scenario.run(record=False)
    assert (on.outcome, on.decisions, on.steps, on.end_time) == (
        off.outcome, off.decisions, off.steps, off.end_time)
