"""The engine on a toy protocol: scheduling, network faults, crashes, logs, timers, triggers."""

from __future__ import annotations

import pytest

from txlib import ProtocolError, TxlibError
from txlib.engine.config import EngineConfig
from txlib.engine.faults import crash, delay, drop, duplicate, heal, partition, recover, slow
from txlib.engine.node import Context, Role
from txlib.engine.records import Message
from txlib.engine.statemachine import machine
from txlib.engine.world import World

SENDER = machine("sender", "IDLE", [("IDLE", "SENT", "start"), ("SENT", "DONE", "all replies")],
                 terminal=("DONE",))
ECHO = machine("echo", "READY", [("READY", "READY", "ping")])


class Sender(Role):
    """Sends ``count`` numbered PINGs to ``echo`` and counts the PONGs."""

    machine = SENDER

    def __init__(self, count: int = 3, log_lazy_first: bool = False) -> None:
        super().__init__()
        self.count = count
        self.log_lazy_first = log_lazy_first

    def on_start(self, ctx: Context) -> None:
        ctx.vars["pongs"] = []
        if self.log_lazy_first:
            ctx.log("LAZY", forced=False)
        ctx.set_state("SENT")
        for i in range(self.count):
            ctx.send("echo", "PING", n=i)
        ctx.set_timer("wake", 100)

    def on_PONG(self, ctx: Context, msg: Message) -> None:
        ctx.vars["pongs"].append(msg.payload["n"])
        if len(ctx.vars["pongs"]) == self.count:
            ctx.log("DONE", forced=True)
            ctx.set_state("DONE")
            ctx.cancel_timer("wake")

    def on_timer(self, ctx: Context, name: str) -> None:
        ctx.log("WOKE", forced=True)

    def on_recover(self, ctx: Context) -> None:
        ctx.vars.update(pongs=[], recovered_with=[r.record for r in ctx.log_records])


class Echo(Role):
    machine = ECHO

    def on_PING(self, ctx: Context, msg: Message) -> None:
        ctx.send(msg.src, "PONG", n=msg.payload["n"])


class Bad(Role):
    """Tries a transition it never declared."""

    machine = SENDER

    def on_start(self, ctx: Context) -> None:
        ctx.set_state("DONE")


def world(faults=(), seed=0, count=3, record=True, sender=None, **cfg) -> World:
    nodes = [("sender", sender or Sender(count)), ("echo", Echo())]
    return World(nodes, EngineConfig(**cfg), seed, faults, record=record)


def kinds(w: World, kind: str) -> list:
    assert w.trace is not None
    return [e for e in w.trace if e.kind == kind]


def test_undeclared_transition_raises_protocol_error():
    with pytest.raises(ProtocolError, match="undeclared transition IDLE -> DONE"):
        World([("sender", Bad())], EngineConfig(), 0).run()


def test_every_ping_answered_and_run_ends_when_nothing_is_pending():
    w = world().run()
    assert w.nodes["sender"].state == "DONE"
    assert sorted(w.nodes["sender"].vars["pongs"]) == [0, 1, 2]
    assert w.stopped_by == "nothing pending"
    assert len(kinds(w, "send")) == 6 and len(kinds(w, "deliver")) == 6
    assert not kinds(w, "timeout"), "the cancelled timer must not fire"


def test_scheduler_takes_the_earliest_event_and_time_never_goes_back():
    w = world(count=8, latency_min=1, latency_max=50).run()
    times = [e.time for e in w.trace]
    assert times == sorted(times)
    # With latencies drawn from 1..50 some pings overtake others: reordering is visible.
    order = [e.message.payload["n"] for e in kinds(w, "deliver") if e.message.type == "PING"]
    assert order != sorted(order)


def test_reorder_off_keeps_fifo_per_channel():
    w = world(count=8, latency_min=1, latency_max=50, reorder=False).run()
    order = [e.message.payload["n"] for e in kinds(w, "deliver") if e.message.type == "PING"]
    assert order == list(range(8))


def test_latency_stays_within_bounds():
    w = world(count=20, latency_min=7, latency_max=9).run()
    sent = {e.message.id: e.time for e in kinds(w, "send")}
    for e in kinds(w, "deliver"):
        assert 7 <= e.time - sent[e.message.id] <= 9


def test_same_seed_same_trace_other_seed_other_trace():
    a = world(seed=3, latency_min=1, latency_max=40).run().trace
    b = world(seed=3, latency_min=1, latency_max=40).run().trace
    c = world(seed=4, latency_min=1, latency_max=40).run().trace
    assert a == b
    assert [e.time for e in a] != [e.time for e in c]


def test_loss_probability_one_drops_everything():
    w = world(loss=1.0).run()
    assert len(kinds(w, "drop")) == 3 and not kinds(w, "deliver")
    assert all("lost by the network" in e.detail for e in kinds(w, "drop"))


def test_duplicate_probability_one_delivers_twice():
    w = world(count=1, duplicate=1.0).run()
    pings = [e for e in kinds(w, "deliver") if e.message.type == "PING"]
    assert sorted(e.message.copy for e in pings) == [0, 1]
    # The PING is copied; echo answers both copies, and each of its two PONGs is copied.
    assert len(kinds(w, "duplicate")) == 3


def test_drop_fault_matches_pattern_and_count():
    w = world(faults=[drop("PING", count=2)]).run()
    dropped = kinds(w, "drop")
    assert [e.message.payload["n"] for e in dropped] == [0, 1]
    assert "fault" in dropped[0].detail
    assert w.unfired_faults() == []


def test_duplicate_fault_copies_only_matching_messages():
    w = world(faults=[duplicate("PONG", count=None)]).run()
    pongs = [e for e in kinds(w, "deliver") if e.message.type == "PONG"]
    pings = [e for e in kinds(w, "deliver") if e.message.type == "PING"]
    assert len(pongs) == 6 and len(pings) == 3


def test_delay_fault_and_slow_node_add_exactly_their_time():
    base = world(latency_min=5, latency_max=5).run()
    delayed = world(faults=[delay(40, "PING", count=1)], latency_min=5, latency_max=5).run()
    slowed = world(faults=[slow("echo", 30)], latency_min=5, latency_max=5).run()
    assert [e.time for e in kinds(base, "deliver")][:3] == [5, 5, 5]
    first_ping = next(e for e in kinds(delayed, "deliver") if e.message.payload["n"] == 0)
    assert first_ping.time == 45
    assert [e.time for e in kinds(slowed, "deliver") if e.message.type == "PONG"] == [40] * 3


def test_partition_drops_at_send_and_in_flight_and_heal_restores():
    at_send = world(faults=[partition(["echo"])]).run()
    assert not kinds(at_send, "deliver")
    assert all("partition" in e.detail for e in kinds(at_send, "drop"))
    in_flight = world(faults=[partition(["echo"], when="sender sends PING to echo")],
                      count=1).run()
    drops = kinds(in_flight, "drop")
    assert len(drops) == 1 and "in flight" in drops[0].detail
    healed = world(faults=[partition(["echo"], at_step=0), heal(at_step=2)], count=1).run()
    assert kinds(healed, "heal") and kinds(healed, "drop")


def test_crash_wipes_volatile_state_timers_and_unforced_records():
    w = world(faults=[crash("sender", at_step=1), recover("sender", at_time=500)],
              sender=Sender(3, log_lazy_first=True)).run()
    slot = w.nodes["sender"]
    assert slot.vars["pongs"] == [], "volatile state must not survive a crash"
    assert slot.vars["recovered_with"] == [], "the lazy record was never forced: it is lost"
    assert not kinds(w, "timeout"), "timers die with the node"
    crash_event = kinds(w, "crash")[0]
    assert "1 unforced log record(s) lost" in crash_event.detail
    assert all(e.kind == "drop" for e in w.trace if e.message and e.message.type == "PONG"
               and e.kind in ("deliver", "drop"))


def test_forced_write_makes_earlier_lazy_records_durable():
    class TwoWrites(Sender):
        def on_start(self, ctx: Context) -> None:
            ctx.log("A", forced=False)
            ctx.log("B", forced=True)
            ctx.log("C", forced=False)

    w = World([("sender", TwoWrites())], EngineConfig(), 0,
              [crash("sender", at_step=1), recover("sender", at_step=2)]).run()
    assert w.nodes["sender"].vars["recovered_with"] == ["A", "B"]


def test_lose_unforced_off_keeps_lazy_records():
    w = world(faults=[crash("sender", at_step=1), recover("sender", at_step=2)],
              sender=Sender(1, log_lazy_first=True), lose_unforced=False).run()
    assert w.nodes["sender"].vars["recovered_with"] == ["LAZY"]


def test_triggered_crash_stops_the_handler_mid_broadcast():
    w = world(faults=[crash("sender", when="sender sends PING")], count=3).run()
    assert [e.node for e in kinds(w, "send")] == ["sender", "echo"], \
        "the crash lands right after the first PING; only echo's PONG follows"
    assert kinds(w, "crash")[0].step == 1


def test_at_step_fault_is_its_own_step_right_after_step_k():
    w = world(faults=[crash("echo", at_step=2)]).run()
    crash_event = kinds(w, "crash")[0]
    assert crash_event.step == 3
    assert max(e.step for e in w.trace if e.index < crash_event.index) == 2


def test_trace_records_node_states_after_each_event():
    w = world().run()
    start = w.trace[0]
    assert start.kind == "start" and start.states == {"sender": "IDLE", "echo": "READY"}
    change = kinds(w, "state")[0]
    assert change.states["sender"] == "SENT"
    crashed = world(faults=[crash("echo", at_step=1)]).run()
    assert kinds(crashed, "crash")[0].down == frozenset({"echo"})


def test_horizon_stops_a_run_that_never_ends():
    class Forever(Sender):
        def on_timer(self, ctx: Context, name: str) -> None:
            ctx.set_timer("wake", 100)

    w = World([("sender", Forever(0)), ("echo", Echo())], EngineConfig(horizon=450), 0).run()
    assert w.stopped_by == "horizon=450"
    assert len(kinds(w, "timeout")) == 4 and w.time <= 450


def test_max_steps_is_a_safety_stop():
    w = world(count=50, max_steps=10).run()
    assert w.step == 10 and w.stopped_by == "max_steps=10"


def test_unfired_faults_are_reported_with_a_reason():
    w = world(faults=[crash("echo", at_step=999), drop("NOPE"),
                      crash("echo", when="echo logs NEVER"), recover("sender", at_step=1)]).run()
    reasons = [why for _, why in w.unfired_faults()]
    assert "step 999 never came" in reasons[0]
    assert "no matching message" in reasons[1]
    assert "'echo logs NEVER' never happened" in reasons[2]
    assert "sender was not down" in reasons[3]


def test_unknown_node_in_a_fault_is_a_clear_error():
    with pytest.raises(TxlibError, match=r"unknown node 'ghost'.*'sender' or 'echo'"):
        world(faults=[crash("ghost")])


def test_recording_off_gives_the_same_final_world():
    on = world(count=5, latency_min=1, latency_max=30, duplicate=0.3, seed=9).run()
    off = world(count=5, latency_min=1, latency_max=30, duplicate=0.3, seed=9, record=False).run()
    assert off.trace is None
    assert (on.time, on.step, on.nodes["sender"].vars) == (off.time, off.step,
                                                           off.nodes["sender"].vars)


def test_execute_lets_a_caller_choose_any_pending_event():
    w = world(count=2, latency_min=1, latency_max=30, seed=1)
    w.start()
    pending = w.pending()
    assert len(pending) == 3  # two PINGs and the sender's timer
    last_ping = max(w.queue.messages())  # the later PING
    w.execute(last_ping)  # deliver it first: the explorer's freedom
    assert w.trace[-2].kind == "deliver" and w.trace[-2].message == last_ping[2]


def test_a_node_down_at_the_start_only_ever_recovers():
    w = world(faults=[crash("sender", at_step=0), recover("sender", at_step=0)]).run()
    slot = w.nodes["sender"]
    assert slot.state == "IDLE" and slot.incarnation == 1
    assert not [e for e in w.trace if e.kind == "send"], "on_start never ran"
    assert slot.vars["recovered_with"] == []


def test_turning_on_a_message_fault_is_not_a_step_but_a_crash_is():
    plain = world(count=1).run()
    armed = world(count=1, faults=[drop("NOPE", at_step=1), drop("NOPE", at_time=3)]).run()
    assert armed.step == plain.step
    crashed = world(count=1, faults=[crash("echo", at_time=3)]).run()
    assert [e.step for e in crashed.trace if e.kind == "crash"] == [2]


def test_a_node_crashed_inside_a_nested_handler_does_nothing_more():
    """p1's handler triggers the coordinator's recovery, during which p1 crashes: p1
    must not go on acting when control returns to its handler."""
    import txlib

    run = txlib.simulate("3pc", participants=1, faults=[
        txlib.crash("coordinator", when="coordinator logs START"),
        txlib.recover("coordinator", when="p1 logs ABORT"),
        txlib.crash("p1", when="coordinator sends ABORT to p1"),
    ])
    crashed_at = next(e.index for e in run.trace if e.kind == "crash" and e.node == "p1")
    later = [e for e in run.trace if e.index > crashed_at and e.node == "p1"
             and e.kind not in ("drop",)]
    assert later == [], "a down node neither logs, decides nor changes state"


def test_faults_that_change_nothing_are_reported():
    same_side = world(faults=[partition(["sender", "echo"], at_step=1)]).run()
    assert "same side" in same_side.unfired_faults()[0][1]
    assert not kinds(same_side, "partition")
    lone_heal = world(faults=[heal(at_step=1)]).run()
    assert not kinds(lone_heal, "heal")
    assert "not partitioned" in lone_heal.unfired_faults()[0][1]


def test_faults_sharing_a_trigger_all_fire_even_when_the_first_crashes_the_actor():
    import txlib

    moment = "coordinator sends PRE_COMMIT to p1"
    run = txlib.simulate("3pc", faults=[txlib.crash(n, when=moment)
                                        for n in ("coordinator", "p1", "p2", "p3")])
    assert run.unfired_faults == ()
    assert {e.node for e in run.trace.of_kind("crash")} == {"coordinator", "p1", "p2", "p3"}


def test_a_fault_applied_now_is_one_step_with_the_trace_of_a_planned_one():
    planned = world(faults=[crash("echo", at_step=1)])
    planned.start()  # step 1, then the planned crash: step 2
    now = world()
    now.start()
    assert now.apply_fault(crash("echo")) is None
    assert now.step == planned.step == 2
    steps = lambda w: [(e.step, e.kind, e.node, e.detail) for e in w.trace]  # noqa: E731
    assert steps(now) == steps(planned)
    assert now.apply_fault(crash("echo")) == "echo was already down" and now.step == 3


def test_a_partition_applied_now_and_a_message_fault_that_joins_the_plan():
    w = world()
    w.start()
    assert w.apply_fault(partition(["echo"])) is None
    assert kinds(w, "partition")[-1].detail == "partition {echo}", "no timing: it is now"
    assert w.partition == {"sender": 1, "echo": 0}
    assert w.apply_fault(heal(at_step=0)) is None and w.partition is None
    step = w.step
    assert w.apply_fault(drop("PONG", count=None)) is None
    assert w.step == step, "turning on a message fault is not a step"
    w.run()
    assert [e.detail for e in kinds(w, "drop")] == ["lost (fault: drop every PONG)"] * 3
    with pytest.raises(TxlibError, match="unknown node 'ghost'"):
        w.apply_fault(crash("ghost"))
    with pytest.raises(TxlibError, match="needs a Fault"):
        w.apply_fault("crash echo")


def test_losing_a_message_in_flight_is_one_step():
    w = world(count=2)
    w.start()
    entry = min(w.queue.messages())
    w.lose(entry)
    assert w.step == 2 and w.trace[-1].kind == "drop" and w.trace[-1].message == entry[2]
    assert len(list(w.queue.messages())) == 1
    with pytest.raises(TxlibError, match="not in flight"):
        w.lose(entry)


def test_a_watched_node_crashes_right_after_its_kth_action():
    w = world(count=3)
    watch = w.watch("sender", crash_after=2)
    w.start()
    w.unwatch()
    assert watch.did == ["sender sends PING to echo"] * 2
    assert not w.nodes["sender"].up and not w.nodes["sender"].timers
    assert len(list(w.queue.messages())) == 2, "the third PING was never sent"
    counted = world(count=3)
    seen = counted.watch("sender")
    counted.start()
    assert seen.did == ["sender sends PING to echo"] * 3 and counted.nodes["sender"].up


def test_the_collector_is_paused_for_a_block_and_restored_as_it_was():
    import gc

    from txlib.engine.collector import collector_paused

    assert gc.isenabled()
    try:
        with collector_paused():
            assert not gc.isenabled()
            with collector_paused():  # nested: the outer block turns it on again
                assert not gc.isenabled()
            assert not gc.isenabled()
            raise KeyError("out of the block by an exception")
    except KeyError:
        pass
    assert gc.isenabled()
    gc.disable()  # off before: it stays off
    try:
        with collector_paused():
            pass
        assert not gc.isenabled()
    finally:
        gc.enable()
