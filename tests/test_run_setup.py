"""What makes many short runs cheap without changing them: scenarios that differ only in
seed share one set-up, a recorded world keeps volatile states as copies written out when
read, and a finished run's world is released (freed without the cycle collector)."""

from __future__ import annotations

import gc
import weakref

import pytest

import txlib
from txlib.engine.trace import Trace
from txlib.engine.volatile import summary
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
