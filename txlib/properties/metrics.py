"""Run metrics, each defined once and computed from the trace alone."""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass

from ..engine.records import TraceEvent


@dataclass(frozen=True)
class Metrics:
    """What a run cost.

    - ``messages``: messages sent by nodes (a network duplicate is not a new send);
    - ``messages_by_type``: the same, per message type;
    - ``message_delays``: the longest causal chain of messages, counted in message hops,
      ending where a participant first learns the decision; the protocol's latency in
      one-way message delays (None if no participant decided);
    - ``decision_delays``: the same, ending at the first decision anywhere (for 2PC, the
      coordinator's);
    - ``forced_writes``: forced (synchronous, stable-storage) log writes in the run;
    - ``forced_writes_before_decision``: forced writes up to and including the first
      decision, the convention of Gray & Lamport's table;
    Conventions, to compare with Gray & Lamport's table: a run starts at the
    coordinator, which sits on its own node, and ACKs are counted. So 2PC's commit case
    shows 4N messages (PREPARE, YES, COMMIT, ACK per participant) and 3 message delays;
    their 3N-1 leaves out the ACKs and lets one participant start the protocol (no
    PREPARE to it), and their 4 delays add that first participant's message. Forced
    writes before the decision are N+1 in both.

    - ``blocked_time``: per participant, time from voting YES to learning the decision
      (to the end of the run if it never learned it): its in-doubt interval;
    - ``lock_time``: per participant, time its resources were locked (locks survive a
      crash of a prepared participant, as in a real database).
    """

    messages: int
    messages_by_type: dict[str, int]
    message_delays: int | None
    decision_delays: int | None
    forced_writes: int
    forced_writes_before_decision: int
    blocked_time: dict[str, int]
    lock_time: dict[str, int]


def measure(trace: Sequence[TraceEvent], participants: Sequence[str], end_time: int) -> Metrics:
    """Compute :class:`Metrics` for ``trace``."""
    by_type: Counter[str] = Counter()
    depth: dict[str, int] = {}
    forced = 0
    forced_before: int | None = None
    decision_delays: int | None = None
    learned: dict[str, int] = {}
    voted_yes: dict[str, int] = {}
    decided_at: dict[str, int] = {}
    locked_since: dict[str, int] = {}
    lock_time = dict.fromkeys(participants, 0)
    part = set(participants)
    for e in trace:
        kind, node = e.kind, e.node
        if kind == "send" and e.message is not None:
            by_type[e.message.type] += 1
        elif kind == "deliver" and e.message is not None and node is not None:
            if e.message.hops > depth.get(node, 0):
                depth[node] = e.message.hops
        elif kind == "log" and e.detail.endswith("(forced)"):
            forced += 1
        elif kind == "decision" and node is not None:
            if forced_before is None:
                forced_before = forced
                decision_delays = depth.get(node, 0)
            if node in part and node not in learned:
                learned[node] = depth.get(node, 0)
                decided_at[node] = e.time
        elif kind == "vote" and node is not None and e.detail == "yes":
            voted_yes.setdefault(node, e.time)
        elif kind == "lock" and node in part:
            locked_since.setdefault(node, e.time)
        elif kind == "unlock" and node in part and node in locked_since:
            lock_time[node] += e.time - locked_since.pop(node)
    for node, since in locked_since.items():
        lock_time[node] += end_time - since
    blocked = {
        p: (decided_at.get(p, end_time) - voted_yes[p]) if p in voted_yes else 0
        for p in participants
    }
    return Metrics(
        messages=sum(by_type.values()),
        messages_by_type=dict(sorted(by_type.items())),
        message_delays=max(learned.values()) if learned else None,
        decision_delays=decision_delays,
        forced_writes=forced,
        forced_writes_before_decision=forced if forced_before is None else forced_before,
        blocked_time=blocked,
        lock_time=lock_time,
    )
