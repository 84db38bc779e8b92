"""Faults, triggers and scenarios as data: they survive JSON and replay identically."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from strategies import roles_of

import txlib
from txlib import Fault, Scenario, Trigger

# --- Fault.to_dict / Fault.from_dict ------------------------------------------------------

TRIGGERS = [
    "coordinator logs COMMIT",
    "coordinator sends COMMIT to p2",
    "p1 receives PREPARE from coordinator",
    "any sends YES",
    "p3 sends NO",
    "p2 receives COMMIT",
    "any logs PREPARED",
]

TIMINGS: dict[str, dict[str, Any]] = {
    "none": {},
    "step-0": {"at_step": 0},
    "step-7": {"at_step": 7},
    "time-0": {"at_time": 0},
    "time-120": {"at_time": 120},
    **{f"when:{t}": {"when": t} for t in TRIGGERS},
    "when:Trigger": {"when": Trigger("p2", "receives", "PREPARE", "coordinator")},
}

TIMED: dict[str, Callable[..., Fault]] = {
    "crash": lambda **t: txlib.crash("p1", **t),
    "recover": lambda **t: txlib.recover("coordinator", **t),
    "drop": lambda **t: txlib.drop("COMMIT", src="coordinator", dst="p2", **t),
    "drop-every": lambda **t: txlib.drop(count=None, **t),
    "duplicate": lambda **t: txlib.duplicate("PREPARE", count=3, **t),
    "delay": lambda **t: txlib.delay(40, "YES", src="p1", **t),
    "delay-by-1": lambda **t: txlib.delay(1, dst="p3", count=None, **t),
    "partition": lambda **t: txlib.partition(["coordinator", "p1"], ["p2"], **t),
    "heal": lambda **t: txlib.heal(**t),
}
NEEDS_TIME = {"recover", "heal"}

CASES = [
    pytest.param(make, timing, id=f"{kind}-{label}")
    for kind, make in TIMED.items()
    for label, timing in TIMINGS.items()
    if timing or kind not in NEEDS_TIME
]


def json_round_trip(fault: Fault) -> Fault:
    """The fault after to_dict, real JSON text, and from_dict."""
    return Fault.from_dict(json.loads(json.dumps(fault.to_dict())))


@pytest.mark.parametrize(("make", "timing"), CASES)
def test_timed_fault_round_trips(make: Callable[..., Fault], timing: dict[str, Any]) -> None:
    """Every constructor with every kind of timing comes back equal from its dict."""
    fault = make(**timing)
    assert Fault.from_dict(fault.to_dict()) == fault
    assert json_round_trip(fault) == fault


@pytest.mark.parametrize(
    "fault", [txlib.vote_no("p2"), txlib.slow("p1", 25), txlib.slow("coordinator", 1)],
    ids=["vote_no", "slow", "slow-by-0"],
)
def test_node_mark_round_trips(fault: Fault) -> None:
    """vote_no and slow take no timing; they round-trip too."""
    assert json_round_trip(fault) == fault


def test_to_dict_keeps_count_none_and_omits_defaults() -> None:
    """``count=None`` (every match) is kept, since it differs from the default of 1."""
    assert txlib.drop(count=None).to_dict() == {"kind": "drop", "count": None}
    assert txlib.drop().to_dict() == {"kind": "drop"}
    assert Fault.from_dict({"kind": "drop"}) == txlib.drop()


def test_untimed_crash_from_json_means_down_from_the_start() -> None:
    """Hand-written JSON crash/partition with no timing behaves as crash()/partition() does.

    The constructors document "with no timing the node is down from the start"; a JSON
    fault with no timing must not silently never happen.
    """
    built = Scenario("2pc", faults=(txlib.crash("p2"), txlib.partition(["p3"])))
    loaded = Scenario.from_json(
        '{"protocol": "2pc", "faults": [{"kind": "crash", "node": "p2"},'
        ' {"kind": "partition", "groups": [["p3"]]}]}'
    )
    run = loaded.run()
    assert run.unfired_faults == ()
    assert "p2" in run.down
    assert run.trace.to_jsonl() == built.run().trace.to_jsonl()


# --- Trigger ------------------------------------------------------------------------------


@pytest.mark.parametrize("text", TRIGGERS)
def test_trigger_str_parse_round_trip(text: str) -> None:
    """A parsed trigger prints as written and parses back equal."""
    trigger = Trigger.parse(text)
    assert str(trigger) == text
    assert Trigger.parse(str(trigger)) == trigger


def test_trigger_parse_reads_its_parts() -> None:
    """Each part of the trigger lands in its field; extra whitespace is ignored."""
    assert Trigger.parse("  coordinator   sends COMMIT  to p2 ") == Trigger(
        node="coordinator", action="sends", what="COMMIT", peer="p2"
    )
    assert Trigger.parse("any logs PREPARED") == Trigger("any", "logs", "PREPARED")
    assert Trigger.parse("p1 receives PREPARE").peer is None


WORD = st.text(
    alphabet=st.characters(codec="ascii", categories=("L", "N", "P")), min_size=1, max_size=8
)


@given(
    node=WORD, action=st.sampled_from(["logs", "sends", "receives"]), what=WORD,
    peer=st.one_of(st.none(), WORD),
)
@settings(max_examples=100, deadline=None)
def test_trigger_round_trip_property(node: str, action: str, what: str, peer: str | None) -> None:
    """Any trigger made of words prints to a string that parses back equal."""
    trigger = Trigger(node, action, what, None if action == "logs" else peer)
    assert Trigger.parse(str(trigger)) == trigger


# --- Fault.describe -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("fault", "node", "timing"),
    [
        (txlib.crash("coordinator", when="coordinator logs COMMIT"), "coordinator",
         "when coordinator logs COMMIT"),
        (txlib.crash("p2", when="coordinator sends COMMIT to p1"), "p2",
         "when coordinator sends COMMIT to p1"),
        (txlib.crash("p3", when=Trigger("any", "receives", "PREPARE")), "p3",
         "when any receives PREPARE"),
        (txlib.crash("p1", 4), "p1", "after step 4"),
        (txlib.recover("p1", at_time=300), "p1", "at time 300"),
    ],
    ids=["logs", "sends-to", "any-receives", "at_step", "at_time"],
)
def test_describe_names_node_and_timing(fault: Fault, node: str, timing: str) -> None:
    """The description says which node and when, in words a learner can read."""
    text = fault.describe()
    assert text.startswith(f"{fault.kind} {node} ")
    assert text.endswith(timing)


def test_describe_crash_on_trigger_exactly() -> None:
    """The documented example reads exactly as the docstring shows."""
    fault = txlib.crash("coordinator", when="coordinator logs COMMIT")
    assert fault.describe() == "crash coordinator when coordinator logs COMMIT"


# --- Scenario JSON ------------------------------------------------------------------------

NAMED = txlib.scenarios()


def test_there_are_named_scenarios_of_every_protocol_family() -> None:
    """The parametrized tests below cover 2PC, 3PC and saga scenarios."""
    assert txlib.scenarios("2pc") and txlib.scenarios("3pc") and txlib.scenarios("saga")
    assert set(NAMED) == set(txlib.scenarios())


@pytest.mark.parametrize("name", NAMED)
def test_named_scenario_round_trips_and_replays(name: str) -> None:
    """from_json(to_json()) gives an equal scenario whose run has the identical trace."""
    original = txlib.scenario(name)
    loaded = Scenario.from_json(original.to_json())
    assert loaded == original
    assert loaded.name == name
    expected = original.run().trace.to_jsonl()
    assert expected
    assert loaded.run().trace.to_jsonl() == expected
    assert Scenario.from_json(original.to_json(indent=None)) == original


@pytest.mark.parametrize("name", NAMED)
def test_to_json_is_canonical(name: str) -> None:
    """Keys are sorted at every level, and the same scenario always gives the same text."""
    s = txlib.scenario(name)
    text = s.to_json()
    assert text == s.to_json()
    assert text == json.dumps(json.loads(text), indent=2, sort_keys=True)
    assert Scenario.from_json(text).to_json() == text
    compact = s.to_json(indent=None)
    assert compact == json.dumps(json.loads(text), sort_keys=True)


def test_to_json_ignores_the_order_options_were_given_in() -> None:
    """Equal scenarios built with options in a different order write the same JSON."""
    options = {"tx": "T9", "loss": 0.1, "balances": {"p2": 10, "p1": 900}, "cooperative": True}
    reordered = {k: options[k] for k in reversed(options)}
    reordered["balances"] = {"p1": 900, "p2": 10}
    a = Scenario("2pc", seed=3, options=options)
    b = Scenario("2pc", seed=3, options=reordered)
    assert a == b
    assert a.to_json() == b.to_json()


@pytest.mark.parametrize(
    "options",
    [
        {"balances": {"p1": 150}, "cooperative": True, "loss": 0.25},
        {"tx": "TX-9", "latency_min": 3, "latency_max": 30, "horizon": 2000},
        {"operations": {"p1": ["debit", 200], "p2": ["credit", 100], "p3": ["credit", 100]}},
        {"operations": {"p1": ("debit", 200), "p2": ("credit", 100), "p3": ("credit", 100)}},
    ],
    ids=["network", "timing", "operations-lists", "operations-tuples"],
)
def test_scenario_options_round_trip(options: dict[str, Any]) -> None:
    """Options survive JSON, including operations written as documented, (kind, amount)."""
    s = Scenario("2pc", seed=5, options=options, faults=(txlib.drop("YES", src="p2"),))
    loaded = Scenario.from_json(s.to_json())
    assert loaded == s
    assert loaded.run().trace.to_jsonl() == s.run().trace.to_jsonl()


# --- property: random fault plans ---------------------------------------------------------

MESSAGE_TYPES = {
    "2pc": ["PREPARE", "YES", "NO", "COMMIT", "ABORT", "ACK", "DECISION_REQ"],
    "3pc": ["CAN_COMMIT", "YES", "NO", "PRE_COMMIT", "ACK", "DO_COMMIT", "ABORT", "STATE_REQ",
            "STATE", "DECISION_REQ"],
}
LOG_RECORDS = {
    "2pc": ["PREPARED", "COMMIT", "COMMITTED", "ABORT"],
    "3pc": ["START", "READY", "PRECOMMIT", "PRECOMMITTED", "COMMIT", "COMMITTED"],
}


@st.composite
def triggers(draw: st.DrawFn, protocol: str, nodes: list[str]) -> str | Trigger:
    """A trigger in any of the forms, as a string or as a Trigger: one txlib accepts
    (a node's own records, a type the receiving node handles)."""
    own = roles_of(protocol, tuple(n for n in nodes if n != "coordinator"))
    node = draw(st.sampled_from([*nodes, "any"]))
    action = draw(st.sampled_from(["logs", "sends", "receives"]))
    if action == "logs":
        records = own[node][0] if node in own else LOG_RECORDS[protocol]
        trigger = Trigger(node, action, draw(st.sampled_from(records)))
    else:
        peer = draw(st.one_of(st.none(), st.sampled_from(nodes)))
        receiver = node if action == "receives" else peer
        types = own[receiver][1] if receiver in own else MESSAGE_TYPES[protocol]
        trigger = Trigger(node, action, draw(st.sampled_from(types)), peer)
    return trigger if draw(st.booleans()) else str(trigger)


@st.composite
def timings(draw: st.DrawFn, protocol: str, nodes: list[str], required: bool) -> dict:
    """No timing (unless required), a step, a time, or a trigger."""
    kinds = ["at_step", "at_time", "when"] + ([] if required else ["none"])
    kind = draw(st.sampled_from(kinds))
    if kind == "at_step":
        return {"at_step": draw(st.integers(0, 40))}
    if kind == "at_time":
        return {"at_time": draw(st.integers(0, 500))}
    if kind == "when":
        return {"when": draw(triggers(protocol, nodes))}
    return {}


@st.composite
def faults(draw: st.DrawFn, protocol: str, participants: list[str]) -> Fault:
    """One fault, of any kind, built with its public constructor."""
    nodes = ["coordinator", *participants]
    node = st.sampled_from(nodes)
    kind = draw(st.sampled_from(["crash", "recover", "drop", "duplicate", "delay", "partition",
                                 "heal", "vote_no", "slow"]))
    if kind in ("crash", "recover"):
        maker = txlib.crash if kind == "crash" else txlib.recover
        return maker(draw(node), **draw(timings(protocol, nodes, kind == "recover")))
    if kind in ("drop", "duplicate", "delay"):
        pattern = {
            "type": draw(st.sampled_from([None, *MESSAGE_TYPES[protocol]])),
            "src": draw(st.one_of(st.none(), node)),
            "dst": draw(st.one_of(st.none(), node)),
            "count": draw(st.sampled_from([None, 1, 2, 3])),
            **draw(timings(protocol, nodes, False)),
        }
        if kind == "delay":
            return txlib.delay(draw(st.integers(1, 200)), **pattern)
        return (txlib.drop if kind == "drop" else txlib.duplicate)(**pattern)
    if kind == "partition":
        side = draw(st.lists(st.sampled_from([None, 0, 1, 2]), min_size=len(nodes),
                             max_size=len(nodes)))
        groups = [[n for n, g in zip(nodes, side, strict=True) if g == i] for i in range(3)]
        groups = [g for g in groups if g] or [[draw(node)]]
        return txlib.partition(*groups, **draw(timings(protocol, nodes, False)))
    if kind == "heal":
        return txlib.heal(**draw(timings(protocol, nodes, True)))
    if kind == "vote_no":
        return txlib.vote_no(draw(st.sampled_from(participants)))
    return txlib.slow(draw(node), draw(st.integers(1, 100)))


@st.composite
def scenarios_with_faults(draw: st.DrawFn) -> Scenario:
    """A 2PC or 3PC scenario with a random plan of up to six faults."""
    protocol = draw(st.sampled_from(["2pc", "3pc"]))
    participants = [f"p{i}" for i in range(1, draw(st.integers(1, 4)) + 1)]
    plan = draw(st.lists(faults(protocol, participants), max_size=6))
    options = {"cooperative": True} if protocol == "2pc" and draw(st.booleans()) else {}
    return Scenario(protocol, tuple(participants), seed=draw(st.integers(0, 2**32)),
                    faults=tuple(plan), options=options)


@given(scenarios_with_faults())
@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
def test_random_fault_plan_round_trips(scenario: Scenario) -> None:
    """Any plan built from the constructors survives JSON and replays byte-identically."""
    text = scenario.to_json()
    loaded = Scenario.from_json(text)
    assert loaded == scenario
    assert loaded.faults == scenario.faults
    assert loaded.to_json() == text
    assert loaded.run().trace.to_jsonl() == scenario.run().trace.to_jsonl()
