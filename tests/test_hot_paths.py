"""The engine's short cuts behave exactly as the general paths they stand for.

- A message goes straight to its ``on_<TYPE>`` handler (``Role.dispatch``) unless the
  role overrides ``on_message``, which then receives every message itself.
- A send in a plain network (no random loss, delay or duplicate, no partition or message
  fault) skips ``Network.transmit``.
- A Run and a History are made without their dataclass ``__init__``; so is the scenario
  ``simulate()`` makes when one like it (but for its seed) passed its checks before.
- The network's generator is seeded through the C generator's own ``seed``.
- A world nobody observes, without faults or watches, runs *leanly*: its scheduler loop,
  start and the nodes' actions skip their checks, and its states change in place.
"""

from __future__ import annotations

import dataclasses
import gc
import random
from typing import ClassVar

import pytest

import txlib
from txlib import ProtocolError, TxlibError
from txlib.engine.config import EngineConfig
from txlib.engine.network import seeded
from txlib.engine.node import Context, Role
from txlib.engine.records import Message
from txlib.engine.simcontext import WorldContext
from txlib.engine.statemachine import machine
from txlib.engine.volatile import volatile_text
from txlib.engine.world import World
from txlib.presets import NAMED_SCENARIOS
from txlib.properties import History
from txlib.protocols import PROTOCOLS
from txlib.protocols import two_phase as two
from txlib.simulation.run import history_of_world

SCENARIOS = [
    txlib.Scenario("2pc", seed=3),
    txlib.Scenario("2pc", seed=4, options={"loss": 0.2, "duplicate": 0.3, "delay": 0.2}),
    txlib.Scenario("2pc", seed=5, options={"reorder": False, "cooperative": True},
                   faults=(txlib.crash("coordinator", when="coordinator logs COMMIT"),
                           txlib.recover("coordinator", at_time=300))),
    txlib.Scenario("2pc", seed=6, faults=(txlib.drop(type="YES", src="p2"),
                                          txlib.partition(["p1"], at_time=40),
                                          txlib.heal(at_time=200))),
]

DELIVERED: list[str] = []


class CountingCoordinator(two.Coordinator):
    """Overrides on_message: it must still receive every message."""

    def on_message(self, ctx: Context, msg: Message) -> None:
        DELIVERED.append(f"{ctx.name} {msg.type}")
        super().on_message(ctx, msg)


class CountingParticipant(two.Participant):
    def on_message(self, ctx: Context, msg: Message) -> None:
        DELIVERED.append(f"{ctx.name} {msg.type}")
        super().on_message(ctx, msg)


class Counting2PC(two.TwoPhaseCommit):
    coordinator_class = CountingCoordinator
    participant_class = CountingParticipant


def test_dispatch_is_the_handler_table_unless_on_message_is_overridden():
    assert two.Participant.dispatch is two.Participant._handlers
    assert set(two.Participant.dispatch or ()) >= {"PREPARE", "COMMIT", "ABORT"}
    assert CountingParticipant.dispatch is None
    assert CountingCoordinator.dispatch is None


@pytest.mark.parametrize("scenario", SCENARIOS, ids=range(len(SCENARIOS)))
def test_an_overriding_on_message_gets_every_message_and_the_same_trace(scenario):
    DELIVERED.clear()
    plain = scenario.run()
    counted = scenario.run(variant=Counting2PC())
    assert counted.trace.to_jsonl() == plain.trace.to_jsonl()
    assert counted.trace.volatile == plain.trace.volatile
    delivered = [f"{e.node} {e.message.type}" for e in plain.trace if e.kind == "deliver"]
    assert delivered and delivered == DELIVERED


PING = machine("pinger", "IDLE", [("IDLE", "SENT", "start")])


class Pinger(Role):
    machine = PING

    def on_start(self, ctx: Context) -> None:
        ctx.set_state("SENT")
        ctx.send("other", "PING")


class Deaf(Role):
    """Handles no message type at all."""

    machine = machine("deaf", "IDLE", [("IDLE", "IDLE", "nothing")])


class DeafOverriding(Deaf):
    def on_message(self, ctx: Context, msg: Message) -> None:
        super().on_message(ctx, msg)


@pytest.mark.parametrize("record", [True, False])  # a lean run, if not recorded
@pytest.mark.parametrize("deaf", [Deaf, DeafOverriding])
def test_a_message_without_handler_is_the_same_protocol_error_either_way(deaf, record):
    world = World([("pinger", Pinger()), ("other", deaf())], EngineConfig(), 0, record=record)
    with pytest.raises(ProtocolError, match=r"^other \(deaf\) has no handler for PING$"):
        world.run()
    assert world.lean is False


@pytest.mark.parametrize("name", sorted(NAMED_SCENARIOS))
@pytest.mark.parametrize("flag", ["plain_network", "plain_record"])
def test_the_short_cuts_give_the_trace_the_general_paths_give(name, flag):
    """plain_network: a send skips Network.transmit; plain_record: an event goes into
    the trace without a call to World.record."""
    scenario = NAMED_SCENARIOS[name]
    short = scenario.world()
    long = scenario.world()
    if flag == "plain_network":  # a copy of the config that says otherwise
        long.config = dataclasses.replace(long.config)
        long.config.__dict__["plain_network"] = False  # what its cached_property gives
        assert long.config.plain_network is False
    else:
        assert short.plain_record is True
        long.plain_record = False  # the general path, every time
    short.run()
    long.run()
    assert short.trace == long.trace
    assert texts(short.volatile) == texts(long.volatile)
    assert short.rng.getstate() == long.rng.getstate()


def texts(kept: list) -> list:
    return [(at, node, volatile_text(v)) for at, node, v in kept]


class Observing(World):
    """Observes every event through its own record(), as the explorer's worlds do."""

    def record(self, kind: str, node: str | None, msg: Message | None, detail: str = "") -> None:
        self.seen.append((kind, node, detail))
        super().record(kind, node, msg, detail)


@pytest.mark.parametrize("record", [True, False])
def test_a_subclass_that_records_sees_every_event(record):
    scenario = txlib.Scenario("2pc", seed=7, faults=(txlib.crash("p2", at_time=30),))
    plain = scenario.world()
    plain.run()
    assert plain.trace is not None
    setup = scenario._setup_of(scenario.protocol_entry)
    observing = Observing(setup.nodes(), setup.config, scenario.seed, scenario.faults,
                          record=record)
    observing.seen = []
    observing.run()
    assert observing.seen == [(e.kind, e.node, e.detail) for e in plain.trace]
    assert observing.trace == (plain.trace if record else None)


def test_a_copied_node_acts_through_a_world_context_on_its_own_world():
    world = txlib.Scenario("2pc", seed=2).world()
    world.start()
    copy = world.clone()
    for w in (world, copy):
        for slot in w.nodes.values():
            assert type(slot.ctx) is WorldContext
            assert slot.ctx._world is w
    world.run()
    copy.run()
    assert world.trace == copy.trace


def test_a_run_and_its_history_hold_every_field_of_their_dataclasses():
    run = txlib.simulate("2pc", seed=1, faults=[txlib.crash("p1", at_time=10)])
    assert set(vars(run)) == {f.name for f in dataclasses.fields(run)}
    again = dataclasses.replace(run)
    assert vars(again) == vars(run)
    world = txlib.Scenario("2pc", seed=1).world().run()
    history = history_of_world(world, txlib.Scenario("2pc").roster, world.config)
    assert set(vars(history)) == {f.name for f in dataclasses.fields(History)}
    assert history == History(**vars(history))


@pytest.mark.parametrize("name", sorted(NAMED_SCENARIOS))
def test_run_gives_the_trace_of_executing_the_earliest_event_each_step(name):
    """World.run delivers in place; World.execute goes through World._deliver."""
    scenario = NAMED_SCENARIOS[name]
    ran = scenario.world().run()
    stepped = scenario.world()
    stepped.start()
    cfg = stepped.config
    while stepped.step < cfg.max_steps:
        pending = stepped.pending()
        if not pending or pending[0][0] > cfg.horizon:
            break
        stepped.execute(pending[0])
        assert stepped.stale == sum(stepped.is_stale(e) for e in stepped.queue)
    assert stepped.trace == ran.trace
    assert ran.stale == sum(ran.is_stale(e) for e in ran.queue)
    assert (ran.stopped_by, ran.time, ran.step) == (stepped_stop(stepped), stepped.time,
                                                    stepped.step)
    assert texts(stepped.volatile) == texts(ran.volatile)


@pytest.mark.parametrize("name", sorted(NAMED_SCENARIOS))
def test_taking_turns_gives_the_run(name):
    """World.turn is one turn of run()'s loop, by the general path (what branch runs
    are taken with): turn after turn, the same trace, volatile states and end."""
    scenario = NAMED_SCENARIOS[name]
    ran = scenario.world().run()
    turned = scenario.world()
    with pytest.raises(txlib.TxlibError, match="has not started"):
        turned.turn()
    turned.start()
    while turned.turn():
        pass
    assert not turned.turn(), "stopped, it stays stopped"
    assert turned.trace == ran.trace and texts(turned.volatile) == texts(ran.volatile)
    assert (turned.stopped_by, turned.time, turned.step, turned.stale) == (
        ran.stopped_by, ran.time, ran.step, ran.stale)


def stepped_stop(world: World) -> str:
    """Why World.run would stop now (for a world stepped by hand to the same point)."""
    cfg = world.config
    if world.step >= cfg.max_steps:
        return f"max_steps={cfg.max_steps}"
    if any(e[0] > cfg.horizon for e in world.queue):
        return f"horizon={cfg.horizon}"
    return "nothing pending"


def test_the_scheduler_stops_at_the_horizon_even_when_only_a_cancelled_timer_is_left():
    """Timers that never fire do nothing, but one due after the horizon still stops the
    run there, as it did when the scheduler took each one out of the queue."""
    world = txlib.Scenario("2pc", options={"prepare_timeout": 900, "horizon": 300}).world()
    world.run()
    assert world.stopped_by == "horizon=300"
    assert world.pending() == []
    world = txlib.Scenario("2pc", options={"prepare_timeout": 900}).world()
    world.run()
    assert world.stopped_by == "nothing pending"


@pytest.mark.parametrize("enabled", [True, False])
def test_a_recorded_run_leaves_the_cycle_collector_as_it_found_it(enabled):
    """World.run pauses Python's cycle collector while it records, and only then."""
    was = gc.isenabled()
    try:
        (gc.enable if enabled else gc.disable)()
        txlib.simulate("2pc", seed=1)
        assert gc.isenabled() is enabled
        world = World([("pinger", Pinger()), ("other", Deaf())], EngineConfig(), 0)
        with pytest.raises(ProtocolError):
            world.run()  # a handler raised in the middle of the run
        assert gc.isenabled() is enabled
    finally:
        (gc.enable if was else gc.disable)()


@pytest.mark.parametrize("seed", [0, 1, 7, 2**31, 2**32 - 1, 2**32, 2**32 + 1, 10**9, 2**64 + 3,
                                  -5, True, 2.5, "seed", b"seed"])
def test_a_seeded_generator_is_the_one_random_random_makes(seed):
    """seeded() calls the C generator's seed directly for an int, and gives anything
    else to random.Random."""
    made, plain = seeded(seed), random.Random(seed)
    assert type(made) is random.Random
    assert vars(made) == vars(plain)
    assert made.getstate() == plain.getstate()
    assert [made.random() for _ in range(5)] == [plain.random() for _ in range(5)]
    assert [made.gauss(0, 1) for _ in range(3)] == [plain.gauss(0, 1) for _ in range(3)]


_OPS = {"p1": ["debit", 5], "p2": ["credit", 5], "p3": ["credit", 0]}


@pytest.mark.parametrize(("given", "fields"), [
    ({}, {}),
    ({"participants": ["a", "b"]}, {"participants": ("a", "b")}),
    ({"faults": [txlib.crash("p1", at_time=12), txlib.drop("YES")]},
     {"faults": (txlib.crash("p1", at_time=12), txlib.drop("YES"))}),
    ({"loss": 0.2, "operations": _OPS}, {"options": {"loss": 0.2, "operations": _OPS}}),
])
def test_simulate_makes_the_scenario_the_dataclass_makes(given, fields):
    """simulate() makes a scenario that passed its checks before (but for its seed)
    without the dataclass's __init__: it holds the same fields, in the same order."""
    for seed in (3, 4, 3):  # the first one is checked; the others reuse its checks
        ran = txlib.simulate("2pc", seed=seed, record=False, **given)
        made = txlib.Scenario("2pc", seed=seed, **fields)
        assert list(vars(ran.scenario)) == list(vars(made))
        assert vars(ran.scenario) == vars(made)
        assert ran.scenario.options is not made.options
        assert ran.scenario.run(record=False).logs == ran.logs
    with pytest.raises(TxlibError, match=r"^seed must be a whole number, got 'x'$"):
        txlib.simulate("2pc", seed="x", **given)


LEAN = [txlib.Scenario(name, seed=seed, options=options)
        for name in sorted(PROTOCOLS)
        for seed in (1, 2)
        for options in ({}, {"loss": 0.2, "duplicate": 0.3, "delay": 0.2},
                        {"reorder": False, "latency_min": 7, "latency_max": 7})]


def ends(world: World) -> tuple:
    """Everything a finished world holds that its steps decide."""
    return (world.rng.getstate(), world.time, world.step, world.msg_seq, world.stopped_by,
            world.stale, world.queue.seq, sorted(world.queue.heap), world.states, world.down,
            world.instability, world.fingerprint(),
            [(n, s.state, s.log, s.durable, s.vars, s.timers, s.locks, s.decision, s.hops,
              s.up) for n, s in world.nodes.items()])


@pytest.mark.parametrize("scenario", LEAN, ids=range(len(LEAN)))
def test_a_lean_run_ends_where_the_general_steps_end(scenario):
    """A world that nobody observes, without faults or watches, runs leanly: the
    scheduler, start and the nodes' actions skip their checks and set_state changes the
    states in place. It ends exactly where the general paths end."""
    lean = scenario.world(record=False)
    general = scenario.world(record=False)
    general.lean_runs = False
    states = lean.states
    assert lean._may_be_lean() and not general._may_be_lean()
    lean.run()
    general.run()
    assert ends(lean) == ends(general)
    assert states == scenario.world(record=False).states  # the states it began with
    assert not lean.lean  # only while it runs


class LeanSpy(Pinger):
    """Notes whether its world runs leanly, when it starts and when it hears a PING."""

    seen: ClassVar[list[bool]] = []

    def on_start(self, ctx: Context) -> None:
        LeanSpy.seen.append(ctx._world.lean)  # type: ignore[attr-defined]
        super().on_start(ctx)

    def on_PING(self, ctx: Context, msg: Message) -> None:
        LeanSpy.seen.append(ctx._world.lean)  # type: ignore[attr-defined]


@pytest.mark.parametrize(("record", "faults", "lean"), [
    (False, (), True), (True, (), False), (False, (txlib.crash("other", at_time=99),), False)])
def test_a_world_runs_leanly_only_unobserved_and_without_faults(record, faults, lean):
    LeanSpy.seen = []
    world = World([("pinger", LeanSpy()), ("other", LeanSpy())], EngineConfig(), 0, faults,
                  record=record)
    world.run()
    assert LeanSpy.seen == [lean] * 4  # each starts and hears a PING
    assert world.lean is False


@pytest.mark.parametrize("faults", [
    (txlib.crash("p2"),),
    (txlib.partition(["p1"]), txlib.heal(at_step=0)),
    (txlib.crash("coordinator"), txlib.recover("coordinator", at_step=0)),
])
def test_a_lean_run_after_faults_applied_by_hand_ends_where_the_general_steps_end(faults):
    """A crash, recovery, partition or heal applied by hand joins no fault plan: a world
    that is whole again may still run leanly, with its node down or recovered."""
    scenario = txlib.Scenario("2pc", seed=5)
    lean = scenario.world(record=False)
    general = scenario.world(record=False)
    general.lean_runs = False
    for world in (lean, general):
        world.start()
        for fault in faults:
            world.apply_fault(fault)
    assert lean._may_be_lean()
    lean.run()
    general.run()
    assert ends(lean) == ends(general)
