"""What makes many short runs cheap without changing them: scenarios that differ only in
seed share one set-up, a recorded world keeps volatile states as copies written out when
read, and a finished run's world is released (freed without the cycle collector)."""

from __future__ import annotations

import gc
import weakref

import pytest

import txlib
from txlib.engine import trace as trace_module
from txlib.engine.trace import Trace
from txlib.engine.volatile import summary, volatile_text
from txlib.protocols import get_protocol
from txlib.simulation.scenario import Scenario


def test_scenarios_that_differ_only_in_seed_share_their_setup_and_roles():
    a = Scenario("2pc", seed=1)
    b = Scenario("2pc", seed=2, options={})
    assert a._setup_of(a.protocol_entry) is b._setup_of(b.protocol_entry)
    roles_a = [s.role for s in a.world().nodes.values()]
    roles_b = [s.role for s in b.world().nodes.values()]
    assert all(x is y for x, y in zip(roles_a, roles_b, strict=True))
    other = Scenario("2pc", seed=1, options={"vote_timeout": 61})
    assert other._setup_of(other.protocol_entry).config.vote_timeout == 61
    assert a._setup_of(a.protocol_entry).config.vote_timeout == 60


def test_a_protocol_that_does_not_share_its_setup_builds_fresh_roles_per_world():
    saga = Scenario("saga", seed=1)
    assert not get_protocol("saga").shared_setup
    first = [s.role for s in saga.world().nodes.values()]
    second = [s.role for s in saga.world().nodes.values()]
    assert all(x is not y for x, y in zip(first, second, strict=True))


def test_a_scenario_with_the_same_values_is_still_checked_for_its_own_seed():
    Scenario("2pc", seed=1)
    with pytest.raises(txlib.TxlibError, match="seed must be"):
        Scenario("2pc", seed=-1)
    with pytest.raises(txlib.TxlibError, match="unknown node"):
        Scenario("2pc", seed=1, faults=(txlib.crash("p9"),))


def test_volatile_states_read_later_are_those_right_after_each_handler():
    world = Scenario("2pc", seed=3).world()
    world.start()
    early = len(world.trace or []) - 1
    coordinator = world.nodes["coordinator"]
    then = summary(coordinator.vars, coordinator.timers)
    assert "timer votes" in then
    world.run()  # the coordinator's sets and timers change in place from here on
    trace = Trace(world.trace or [], list(world.nodes), world.volatile)
    assert trace.volatile_at(early)["coordinator"] == then
    assert trace.volatile_at(len(trace) - 1)["coordinator"] == summary(
        coordinator.vars, coordinator.timers)


def _kept_states() -> tuple[list, list[str], list]:
    """A run's events, nodes and kept volatile states (with a crash: some kept as ""),
    and after its last event two states of one node (the later one counts) and one of
    a node the trace does not list."""
    world = Scenario("2pc", seed=3, faults=(txlib.crash("coordinator", at_step=4),
                                            txlib.recover("coordinator", at_step=8))).world()
    world.run()
    events = list(world.trace or [])
    last = len(events) - 1
    kept = [*world.volatile,
            (last, "coordinator", ({"acks": {"p2", "p1"}}, ())),
            (last, "coordinator", ({}, (("acks", (99, 300)),))),
            (last, "observer", ({"seen": [1, 2]}, ()))]
    assert any(isinstance(v, str) for _, _, v in kept)
    assert len({at for at, _, _ in kept}) < len(kept)  # several states after one event
    return events, list(world.nodes), kept


@pytest.mark.parametrize("first", ["volatile", "volatile_at"])
def test_volatile_and_volatile_at_read_one_store_in_either_order(first):
    """Trace.volatile and Trace.volatile_at once kept a cache each; they read one store
    now, and give what volatile_text gives for each kept state, whichever comes first."""
    events, nodes, kept = _kept_states()
    texts = tuple((at, node, volatile_text(v)) for at, node, v in kept)

    def reference_at(index: int) -> dict[str, str]:
        out = dict.fromkeys(nodes, "")
        for at, node, text in texts:
            if at <= index:
                out[node] = text
        return out

    trace = Trace(events, nodes, kept)
    for read in ([first, "volatile", "volatile_at"] if first == "volatile"
                 else [first, "volatile_at", "volatile"]):
        if read == "volatile":
            assert trace.volatile == texts
        else:
            for i in range(len(events)):
                assert trace.volatile_at(i) == reference_at(i), i
    assert trace.volatile_at(len(events) - 1)["coordinator"] == "timer acks at 300"
    assert trace.volatile_at(len(events) - 1)["observer"] == "seen=[1, 2]"


@pytest.mark.parametrize("first", ["volatile", "volatile_at"])
def test_each_kept_volatile_state_is_written_out_at_most_once(first, monkeypatch):
    """Reading both volatile and volatile_at wrote the states volatile_at had shown out
    a second time (each had its own cache)."""
    events, nodes, kept = _kept_states()
    written: list = []

    def counted(state):
        written.append(state)
        return volatile_text(state)

    monkeypatch.setattr(trace_module, "volatile_text", counted)
    trace = Trace(events, nodes, kept)
    reads = ["volatile", "volatile_at"] if first == "volatile" else ["volatile_at", "volatile"]
    for read in reads * 2:
        if read == "volatile":
            trace.volatile  # noqa: B018
        else:
            for i in range(len(events)):
                trace.volatile_at(i)
    states = [v for _, _, v in kept if not isinstance(v, str)]
    written = [v for v in written if not isinstance(v, str)]  # "" is written out as is
    assert len(written) == len({id(v) for v in written}), "a state written out twice"
    assert sorted(map(id, written)) == sorted(map(id, states))


def test_a_released_world_is_freed_at_once_and_still_runs_on_the_same():
    reference = Scenario("3pc", seed=4).world().run()
    world = Scenario("3pc", seed=4).world()
    world.start()
    world.release()
    world.run()  # copies each slot, with a new context, before changing it
    assert list(world.trace or []) == list(reference.trace or [])
    assert world.volatile == reference.volatile
    world.release()
    gone = weakref.ref(world)
    gc.disable()
    try:
        del world
        assert gone() is None, "a released world must not wait for the cycle collector"
    finally:
        gc.enable()
