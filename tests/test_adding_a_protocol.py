"""A new protocol is one module and one registry line: nothing else changes.

The protocol below is written entirely inside this test, as a newcomer would write
their own module. "Witnessed commit" is 2PC with a helper node, a *witness* ``w1``: the
coordinator forces its decision at the witness before announcing it (so a participant
could learn it there). The witness never decides anything itself; the roster says so.
Registered from the test, it runs through simulate, scenarios with a crash of the
helper node, the console, the lab model, both diagrams and the explorer.
"""

from __future__ import annotations

import io
from collections.abc import Iterator, Sequence
from typing import Any

import pytest
from rich.console import Console

import txlib
from txlib.engine.node import Context, Role
from txlib.engine.records import Message
from txlib.engine.roster import NodeSpec, Roster
from txlib.engine.statemachine import machine
from txlib.protocols import PROTOCOLS, register, unregister
from txlib.protocols.base import COORDINATOR, CommitProtocol
from txlib.protocols.two_phase import Coordinator, Participant
from txlib.viz import console
from txlib.viz.lab import LabModel

WITNESS = "w1"

COORDINATOR_MACHINE = machine(
    "coordinator", "INIT",
    [("INIT", "WAIT", "start: send PREPARE to all"),
     ("WAIT", "WITNESSING", "all voted YES: ask the witness to record COMMIT"),
     ("WAIT", "ABORTED", "a NO vote or vote timeout: send ABORT"),
     ("WITNESSING", "COMMITTED", "the witness recorded it: force COMMIT, send COMMIT"),
     ("WITNESSING", "ABORTED", "the witness is silent: send ABORT"),
     ("COMMITTED", "ENDED", "every ACK in: write END"),
     ("INIT", "ABORTED", "recovery finds no decision: presume abort")],
    terminal=("ENDED", "ABORTED"),
)
WITNESS_MACHINE = machine(
    "witness", "IDLE",
    [("IDLE", "RECORDED", "RECORD: force the decision, ACK it")],
    terminal=("RECORDED",),
)


class WitnessedCoordinator(Coordinator):
    """2PC's coordinator, with one more round trip to the witness before COMMIT."""

    machine = COORDINATOR_MACHINE

    def on_YES(self, ctx: Context, msg: Message) -> None:
        if ctx.state != "WAIT":
            return
        yes = ctx.vars.setdefault("yes", set())
        yes.add(msg.src)
        if len(yes) == len(self.participants):
            ctx.cancel_timer("votes")
            ctx.set_state("WITNESSING")
            ctx.send(WITNESS, "RECORD", tx=self.config.tx)
            ctx.set_timer("witness", self.config.vote_timeout)

    def on_WITNESSED(self, ctx: Context, msg: Message) -> None:
        if ctx.state != "WITNESSING":
            return
        ctx.cancel_timer("witness")
        ctx.log("COMMIT", forced=True, decides="commit", tx=self.config.tx,
                participants=list(self.participants))
        ctx.set_state("COMMITTED")
        ctx.vars["acks"] = set()
        ctx.broadcast(self.participants, "COMMIT", tx=self.config.tx)
        ctx.set_timer("acks", self.config.ack_timeout)

    def on_timer(self, ctx: Context, name: str) -> None:
        if name == "witness" and ctx.state == "WITNESSING":
            ctx.log("ABORT", forced=False, decides="abort", tx=self.config.tx)
            ctx.set_state("ABORTED")
            ctx.broadcast(self.participants, "ABORT", tx=self.config.tx)
        else:
            super().on_timer(ctx, name)


class Witness(Role):
    """Records the coordinator's decision durably and acknowledges it."""

    machine = WITNESS_MACHINE

    def on_RECORD(self, ctx: Context, msg: Message) -> None:
        if ctx.state == "IDLE":
            ctx.log("WITNESSED", forced=True, tx=msg.payload["tx"])
            ctx.set_state("RECORDED")
        ctx.send(msg.src, "WITNESSED", tx=msg.payload["tx"])

    def on_recover(self, ctx: Context) -> None:
        if any(r.record == "WITNESSED" for r in ctx.log_records):
            ctx.restore_state("RECORDED")


class WitnessedCommit(CommitProtocol):
    """The whole protocol's registry entry: its nodes, its roles, its machines."""

    name = "witnessed"
    title = "2PC with a witness"
    machines = (COORDINATOR_MACHINE, Participant.machine, WITNESS_MACHINE)
    coordinator_class = WitnessedCoordinator
    participant_class = Participant

    def roster(self, participants: Sequence[str], options: dict[str, Any]) -> Roster:
        return Roster.of(super().roster(participants, options).nodes,
                         [NodeSpec(WITNESS, "witness")])

    def build(self, roster: Roster, config: Any) -> list[tuple[str, Role]]:
        return [*super().build(roster, config), (WITNESS, Witness())]


@pytest.fixture(autouse=True)
def registered() -> Iterator[None]:
    register(WitnessedCommit())
    try:
        yield
    finally:
        unregister("witnessed")
    assert "witnessed" not in PROTOCOLS


def test_it_runs_through_simulate_with_its_helper_node():
    run = txlib.simulate("witnessed", participants=2)
    assert run.outcome == "committed"
    assert run.nodes == (COORDINATOR, "p1", "p2", WITNESS)
    assert run.roles[WITNESS] == "witness" and run.decisions[WITNESS] is None
    sent = [(e.message.type, e.message.dst) for e in run.trace.of_kind("send") if e.message]
    assert sent.index(("RECORD", WITNESS)) < sent.index(("COMMIT", "p1"))
    assert run.violations == ()


def test_a_crash_of_the_helper_node_is_accepted_and_judged():
    crashed = txlib.simulate("witnessed", participants=2, faults=[txlib.crash(WITNESS)])
    assert crashed.outcome == "aborted", "the coordinator gives up on a silent witness"
    assert WITNESS in crashed.down and crashed.violations == ()
    with pytest.raises(txlib.TxlibError, match=r"unknown node 'w2'.*'w1'"):
        txlib.simulate("witnessed", faults=[txlib.crash("w2")])
    with pytest.raises(txlib.TxlibError, match="vote_no applies to a participant"):
        txlib.simulate("witnessed", faults=[txlib.vote_no(WITNESS)])


def test_scenarios_round_trip_and_the_console_names_every_node():
    scenario = txlib.Scenario("witnessed", ("p1",), faults=(txlib.crash(WITNESS, at_step=3),))
    again = txlib.Scenario.from_json(scenario.to_json())
    assert again.run().trace.to_jsonl() == scenario.run().trace.to_jsonl()
    out = io.StringIO()
    console.show(scenario.run(), console=Console(file=out, width=120, color_system=None))
    text = out.getvalue()
    assert WITNESS in text and "witness" in text


def test_the_lab_model_steps_and_injects_a_crash_on_the_helper():
    model = LabModel.of(txlib.Scenario("witnessed", ("p1", "p2")))
    assert model.run.outcome == "committed"
    model.move(4)
    model.inject("crash", WITNESS)
    assert model.run.outcome == "aborted"
    assert model.undo().startswith("removed") and model.run.outcome == "committed"


def test_both_diagrams_draw_the_helper_node():
    run = txlib.simulate("witnessed", participants=2)
    svg = txlib.diagram(run).svg
    assert f'data-node="{WITNESS}"' in svg
    assert "witness" in txlib.state_diagram("witnessed", role="witness").svg


def test_the_explorer_checks_it_with_its_helper_node():
    result = txlib.explore("witnessed", participants=2, max_crashes=1, progress=False)
    assert result.complete and result.violations == ()
    assert result.blocking is not None, "a coordinator crash after COMMIT still blocks"
    assert WITNESS in result.blocking.run.nodes
    no_crash = txlib.explore("witnessed", participants=2, max_crashes=0, progress=False)
    assert no_crash.complete and no_crash.blocking is None
    assert result.states > no_crash.states


def test_a_protocol_missing_what_the_tools_read_is_refused_at_registration():
    """A plain Protocol without outcomes registered, then broke the fault grid and 'can it
    get worse?' with an AttributeError (found by a newcomer adding a protocol)."""
    from txlib.protocols.base import Protocol

    class Bare(Protocol):
        name = "bare"
        title = "a bare protocol"

    with pytest.raises(txlib.TxlibError, match="protocol 'bare' does not set config_class, "
                                               "machines, outcomes"):
        register(Bare())
    assert "bare" not in PROTOCOLS


def test_real_runs_refuse_a_protocol_registered_in_this_session():
    """Real nodes are fresh processes: a protocol registered here is unknown there, and
    a real run waited 30 s for nodes that never listened."""
    from txlib.real.roles import real_protocol, real_protocols

    assert "witnessed" not in real_protocols()
    with pytest.raises(txlib.TxlibError, match="'witnessed' was registered in this Python "
                                               "session, but real nodes are fresh processes"):
        real_protocol("witnessed")
    assert real_protocol("2pc").name == "2pc"
