"""Where a real node can be killed: named protocol points and wall-clock kills.

A named point is a trigger inside the node process: right before or right after the
node writes a log record or sends a message of some type (the n-th time it does, in
the transaction). When the trigger fires, the process records a ``crash`` event and
sends itself SIGKILL, so whatever the kernel has not been handed is lost, exactly as
with ``kill -9`` from outside. A wall-clock crash is a SIGKILL sent by the runner a
given number of seconds after the transaction began, wherever the node then is.

A SIGKILL loses only the process's memory: the kernel still writes out what the process
had handed it, synced or not. A crash with ``power=True`` is a **power cut** of the
node's machine: the SIGKILL, then every write to the node's files that was never synced
is lost too (see :mod:`txlib.real.powercut`), before the node restarts.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from ..errors import TxlibError, bad_choice, shown
from ..protocols.base import COORDINATOR

MAX_SECONDS = 3600.0  # the longest wait, delay or timeout a real run accepts

# name -> (when, action, what, nth); nth 0 means "the last one" (one per participant).
COORDINATOR_POINTS: dict[str, tuple[str, str, str, int]] = {
    "between_prepares": ("after", "send", "PREPARE", 1),
    "before_decision_logged": ("before", "log", "COMMIT", 1),
    "after_decision_logged": ("after", "log", "COMMIT", 1),
    "between_commits": ("after", "send", "COMMIT", 1),
    "after_commits_sent": ("after", "send", "COMMIT", 0),
}
PARTICIPANT_POINTS: dict[str, tuple[str, str, str, int]] = {
    "before_prepare_forced": ("before", "log", "PREPARED", 1),
    "after_prepare_forced": ("after", "log", "PREPARED", 1),
    "after_vote_sent": ("after", "send", "YES", 1),
    "before_commit_forced": ("before", "log", "COMMITTED", 1),
    "after_commit_forced": ("after", "log", "COMMITTED", 1),
}

CRASH_POINTS: dict[str, tuple[str, ...]] = {
    "coordinator": tuple(COORDINATOR_POINTS),
    "participant": tuple(PARTICIPANT_POINTS),
}
"""The named crash points of each role."""

# What each point leads to once every node is back (no vote NO, no other fault): the
# coordinator presumes abort unless it had forced COMMIT; a participant that dies before
# its YES reaches the coordinator makes the vote time out.
EXPECTED_OUTCOME: dict[str, str] = {
    "between_prepares": "aborted",
    "before_decision_logged": "aborted",
    "after_decision_logged": "committed",
    "between_commits": "committed",
    "after_commits_sent": "committed",
    "before_prepare_forced": "aborted",
    "after_prepare_forced": "aborted",
    "after_vote_sent": "committed",
    "before_commit_forced": "committed",
    "after_commit_forced": "committed",
}


@dataclass(frozen=True)
class Crash:
    """Kill ``node`` with SIGKILL at named ``point``, or ``after`` seconds past the
    transaction's start. ``incarnation`` says which life of the node it applies to
    (0: the first process; 1: the first restarted one, ...). ``power``: a power cut,
    which also loses the node's unsynced writes (needs ``RealSystem(power_cuts=True)``)."""

    node: str
    point: str | None = None
    after: float | None = None
    incarnation: int = 0
    power: bool = False

    @property
    def verb(self) -> str:
        return "power cut of" if self.power else "kill -9"

    def describe(self) -> str:
        where = self.point if self.point is not None else f"{(self.after or 0) * 1000:.0f} ms in"
        life = f" (life {self.incarnation})" if self.incarnation else ""
        return f"{self.verb} {self.node} at {where}{life}"

    def trigger(self, participants: int) -> dict[str, Any]:
        """The trigger a node process arms for this named point."""
        table = COORDINATOR_POINTS if self.node == COORDINATOR else PARTICIPANT_POINTS
        when, action, what, nth = table[self.point or ""]
        return {"when": when, "action": action, "what": what,
                "nth": nth or participants, "label": self.point, "power": self.power}


def as_crashes(raw: Any, nodes: Sequence[str],
               roles: Mapping[str, str] | None = None) -> tuple[Crash, ...]:
    """Normalise ``crash=``: None, a :class:`Crash`, ``(node, point)``,
    ``(node, seconds)`` or a list of those. ``roles``: each node's role; a named point
    applies to a coordinator or a participant (the points name the records and messages
    of 2PC, which 3PC and Paxos Commit share in part: a point a protocol never reaches is
    reported unfired); any other node (an acceptor) is killed at a moment."""
    if raw is None:
        return ()
    if isinstance(raw, Crash) or (
        isinstance(raw, tuple) and len(raw) == 2 and isinstance(raw[0], str)
    ):
        raw = [raw]
    if isinstance(raw, (str, bytes)) or not isinstance(raw, Sequence):
        raise TxlibError(
            f"crash must be (node, point), (node, seconds), a Crash or a list of them; got {raw!r}"
        )
    if not any(isinstance(item, (Crash, tuple)) for item in raw) and len(raw) == 2 \
            and isinstance(raw[0], str):  # one crash, written as a list: [node, point]
        raise TxlibError(f"crash must be (node, point), (node, seconds), a Crash or a list "
                         f"of them; got {shown(raw)}: a list holds crashes, so for one "
                         f"crash write a tuple, crash=({shown(raw[0])}, {shown(raw[1])})")
    out = []
    for item in raw:
        c = item
        if isinstance(item, tuple) and len(item) == 2:
            node, where = item
            if isinstance(where, str):
                c = Crash(node, point=where)
            elif isinstance(where, (int, float)) and not isinstance(where, bool):
                c = Crash(node, after=float(where))
            else:
                raise TxlibError(f"crash {item!r}: the second item must be a point name "
                                 "or a number of seconds")
        if not isinstance(c, Crash):
            whole = "" if raw is item or any(isinstance(i, (Crash, tuple)) for i in raw) \
                else f" in {shown(raw)}"
            raise TxlibError(f"crash must be (node, point), (node, seconds) or a Crash; "
                             f"got {shown(item)}{whole}")
        if c.node not in nodes:
            raise bad_choice("node to crash", c.node, nodes)
        if (c.point is None) == (c.after is None):
            raise TxlibError(f"{c!r}: give exactly one of point and after")
        role = (roles or {}).get(c.node, "coordinator" if c.node == COORDINATOR
                                 else "participant")
        if c.point is not None and role not in CRASH_POINTS:
            raise TxlibError(f"{c.node} is a{'n' if role[0] in 'aeiou' else ''} {role}: it "
                             "has no named crash points; kill it at a moment instead, "
                             f"({c.node!r}, seconds)")
        if c.point is not None:
            valid = CRASH_POINTS[role]
            if c.point not in valid:
                raise bad_choice(f"crash point for {c.node}", c.point, valid)
        if c.after is not None and (
                isinstance(c.after, bool) or not isinstance(c.after, (int, float))
                or not 0 <= c.after <= MAX_SECONDS):  # (NaN is neither)
            raise TxlibError(f"{c!r}: after must be a number of seconds from 0 to "
                             f"{MAX_SECONDS:.0f}, got {shown(c.after)}")
        if isinstance(c.incarnation, bool) or not isinstance(c.incarnation, int) \
                or c.incarnation < 0:
            raise TxlibError(f"{c!r}: incarnation must be a whole number >= 0")
        if not isinstance(c.power, bool):
            raise TxlibError(f"{c!r}: power must be True or False")
        out.append(c)
    return tuple(out)
