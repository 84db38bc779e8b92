"""A commit run's normal-case costs counted as Gray & Lamport count them.

*Consensus on Transaction Commit* (2006), Table 1, counts for N participants:

- **message delays**: the longest causal chain of messages up to the last participant
  learning the outcome; their run starts with one participant (the first) announcing
  it is ready, one message before txlib's run, which starts at the coordinator: so one
  is added;
- **messages**: messages between different *machines* (two nodes placed on one
  machine talk for free), without acknowledgements of the outcome (type ``ACK``), and
  without the message that starts the first participant's part (their first
  participant starts the protocol itself);
- **stable-storage writes**: forced log writes until every participant has decided,
  leaving out the write with which a participant records an outcome it was told.

``machine`` maps a node to the machine it runs on; a node missing from it has a
machine of its own. Computed from the trace alone; :func:`paper_costs` refuses inputs
of the wrong shape with a :class:`~txlib.errors.TxlibError`.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

from ..engine.records import TraceEvent
from ..errors import TxlibError, bad_choice, shown

ACKNOWLEDGEMENT = "ACK"


@dataclass(frozen=True)
class PaperCosts:
    """(message delays, messages, stable-storage writes) under Gray & Lamport's
    conventions (see the module docstring)."""

    delays: int
    messages: int
    writes: int


def _machine_of(machine: Mapping[str, str], node: str) -> str:
    return machine.get(node, node)


def local_free_delays(trace: Sequence[TraceEvent], participants: Sequence[str],
                      machine: Mapping[str, str]) -> int | None:
    """The longest causal chain of messages, a message within one machine counting 0,
    ending where a participant first decides (the latest such); None if none decided."""
    depth: dict[str, int] = {}
    carried: dict[int, int] = {}
    learned: dict[str, int] = {}
    for e in trace:
        node = e.node
        if node is None:
            continue
        if e.kind == "send" and e.message is not None:
            m = e.message
            hop = int(_machine_of(machine, m.src) != _machine_of(machine, m.dst))
            carried[m.id] = depth.get(node, 0) + hop
        elif e.kind == "deliver" and e.message is not None:
            depth[node] = max(depth.get(node, 0), carried.get(e.message.id, 0))
        elif e.kind == "decision" and node in participants and node not in learned:
            learned[node] = depth.get(node, 0)
    return max(learned.values()) if learned else None


def remote_messages(trace: Sequence[TraceEvent], participants: Sequence[str],
                    machine: Mapping[str, str]) -> int:
    """Messages between machines, without ACKs and without the first message to the
    first participant (the one that starts its part)."""
    first = participants[0] if participants else None
    starter = next((e.message.id for e in trace if e.kind == "send" and e.message is not None
                    and e.message.dst == first), None)
    return sum(1 for e in trace if e.kind == "send" and e.message is not None
               and e.message.type != ACKNOWLEDGEMENT and e.message.id != starter
               and _machine_of(machine, e.message.src) != _machine_of(machine, e.message.dst))


def stable_writes(trace: Sequence[TraceEvent], participants: Sequence[str]) -> int:
    """Forced writes until every participant has decided, without a participant's write
    of the outcome it learned (its forced record right before its decision)."""
    events = list(trace)
    decided = [e.index for e in events if e.kind == "decision" and e.node in participants]
    if not decided:
        return 0
    last = max(decided)
    count = 0
    for i, e in enumerate(events):
        if e.index > last or e.kind != "log" or not e.detail.endswith("(forced)"):
            continue
        after = events[i + 1] if i + 1 < len(events) else None
        records_outcome = (e.node in participants and after is not None
                           and after.kind == "decision" and after.node == e.node)
        count += not records_outcome
    return count


def _checked(trace: object, participants: object, machine: object
             ) -> tuple[list[TraceEvent], tuple[str, ...], dict[str, str]]:
    """The inputs of :func:`paper_costs`, checked: a trace (a run's ``trace``), the
    participants' names (nodes of that trace) and a mapping of node names to machines."""
    if isinstance(trace, (str, bytes, Mapping)) or not isinstance(trace, Iterable):
        raise TxlibError(f"trace must be a run's trace (run.trace), got {shown(trace)}")
    events = list(trace)
    bad = next((e for e in events if not isinstance(e, TraceEvent)), None)
    if bad is not None:
        raise TxlibError(f"trace must be a run's trace (run.trace), but it holds {shown(bad)}")
    if isinstance(participants, (str, bytes)) or not isinstance(participants, Sequence) \
            or not all(isinstance(p, str) for p in participants):
        raise TxlibError(f"participants must be a list of node names, e.g. "
                         f"run.participants, got {shown(participants)}")
    nodes = list(dict.fromkeys(e.node for e in events if e.node is not None))
    for p in participants:
        if p not in nodes:
            raise bad_choice("participant (a node of the trace)", p, nodes)
    if machine is not None and (not isinstance(machine, Mapping) or not all(
            isinstance(k, str) and isinstance(v, str) for k, v in machine.items())):
        raise TxlibError(f"machine must map node names to machine names, e.g. "
                         f"{{'a1': 'coordinator'}}, got {shown(machine)}")
    return events, tuple(participants), dict(machine or {})


def paper_costs(trace: Sequence[TraceEvent], participants: Sequence[str],
                machine: Mapping[str, str] | None = None) -> PaperCosts | None:
    """The run's costs as Gray & Lamport count them, nodes placed on machines by
    ``machine``; None if no participant decided (a saga's services never do)."""
    trace, participants, placed = _checked(trace, participants, machine)
    delays = local_free_delays(trace, participants, placed)
    if delays is None:
        return None
    return PaperCosts(delays + 1, remote_messages(trace, participants, placed),
                      stable_writes(trace, participants))
