"""Snapshots and copy-on-write copies of a world (what the explorer keeps), and the
explorer's frontier, which keeps where a state came from instead of the state."""

from __future__ import annotations

from txlib.engine.snapshot import freeze, node_part, thaw
from txlib.engine.world import World
from txlib.explorer.worlds import Origin, WorldModel
from txlib.protocols import get_protocol
from txlib.simulation.scenario import Scenario


def midway(protocol: str = "3pc", steps: int = 4) -> World:
    proto = get_protocol(protocol)
    names = ("p1", "p2", "p3")
    config = proto.make_config(names, {})
    world = World(proto.build(proto.roster(names, {}), config), config, 7, record=True)
    world.start()
    for _ in range(steps):
        world.execute(world.pending()[0])
    return world


def test_a_thawed_snapshot_runs_on_exactly_like_a_clone_and_leaves_the_world_alone():
    world = midway()
    before = world.fingerprint()
    snapshot = freeze(world)
    a, b = thaw(snapshot), thaw(snapshot)
    reference = world.clone()
    a.run()
    reference.run()
    assert list(a.trace) == list(reference.trace) and a.volatile == reference.volatile
    assert a.fingerprint() == reference.fingerprint()
    assert world.fingerprint() == before, "running a thawed world changed the original"
    assert b.fingerprint() == before, "running one thawed world changed its sibling"
    world.run()  # the frozen world itself may go on too
    assert list(world.trace) == list(reference.trace)


def test_a_fork_copies_only_the_slots_a_step_changes():
    world = midway()
    fork = world.fork()
    entry = next(e for e in fork.queue.messages())
    fork.execute(entry)
    changed = entry[2].dst
    for name, slot in fork.nodes.items():
        assert (slot is world.nodes[name]) == (name != changed), name
    assert node_part(fork.nodes[changed]) != node_part(world.nodes[changed])
    assert world.fingerprint() != fork.fingerprint()


def test_the_frontier_keeps_origins_that_give_back_the_world_the_search_found():
    proto = get_protocol("3pc")
    scenario = Scenario("3pc", ("p1", "p2"))
    model = WorldModel(proto, scenario, proto.make_config(scenario.participants, {}),
                       max_crashes=1, max_drops=0, partitions=True, recoveries=False,
                       timeouts="synchronous")
    world = model.initial()[0]
    for _ in range(3):
        world = model.successors(world)[0][1]
    found = model.successors(world)
    assert found
    for action, child in found:
        key, broken = model.fingerprint(child), model.violations(child)
        kept = model.store(child)
        assert isinstance(kept, Origin) and kept.action == action
        again = model.restore(kept)
        assert model.fingerprint(again) == key and model.violations(again) == broken
        assert [s.state for s in again.nodes.values()] == [
            s.state for s in child.nodes.values()]
