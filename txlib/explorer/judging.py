"""What the explorer checks in every state: the explored protocol's own invariants.

A commit protocol's invariants (atomicity, stability, validity, see
:mod:`txlib.properties.commit`) are defined over a run's trace, which explored states
do not keep. :class:`ExploredWorld` keeps a small ghost instead (each participant's first
vote, and why a commit was decided before every vote was YES), and
:class:`CommitInvariants` checks the same properties on the state: atomicity with
:func:`~txlib.properties.commit.disagreement` over every decision ever taken,
stability over the decision changes, validity from the ghost.

Any other protocol judges a state as it judges a finished run, whenever no message is
in flight: :meth:`~txlib.protocols.base.Protocol.violations` of the state's
:class:`~txlib.properties.History`, without events (:class:`ProtocolInvariants`). A
protocol that can judge only with a trace cannot be explored: :func:`invariants_of`
says so with a :class:`~txlib.TxlibError`.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from typing import Any

from ..engine.config import EngineConfig
from ..engine.faults import Fault
from ..engine.node import Role
from ..engine.records import Message
from ..engine.roster import Roster
from ..engine.world import World
from ..errors import TxlibError, bad_choice, choices
from ..properties import INVARIANTS, disagreement, past
from ..protocols import CommitProtocol, Protocol
from ..simulation.run import history_of_world
from .actions import Spent


class Fixed:
    """The random generator of an explored world: the explorer makes every choice
    itself, so a world draws nothing (always 0.0: the minimum latency, no loss)."""

    def random(self) -> float:
        return 0.0

    def getstate(self) -> None:
        return None

    def setstate(self, state: object) -> None:
        return None


GhostEvent = tuple[str, "str | None", str]  # (kind, node, detail) of a vote or decision


def next_ghost(votes: dict[str, str], invalid: str | None, deciders: tuple[str, ...],
               event: GhostEvent) -> tuple[dict[str, str], str | None]:
    """The ghost (first votes, why a commit was invalid) after a vote or a decision:
    a node's first vote is kept; a commit decided while some decider had not voted
    YES breaks validity (the first such reason is kept). New values, never changed
    in place."""
    kind, node, detail = event
    if kind == "vote" and node is not None and node not in votes:
        return {**votes, node: detail}, invalid
    if kind == "decision" and detail == "commit" and invalid is None:
        for p in deciders:
            if votes.get(p) != "yes":
                why = "voted NO" if votes.get(p) == "no" else "had not voted YES"
                return votes, f"{node} committed but {p} {why}"
    return votes, invalid


def ghost_value(used: Spent, votes: dict[str, str], invalid: str | None) -> tuple[Any, ...]:
    """The budget used and the ghost as a canonical value (part of a state's digest)."""
    return (tuple(used), tuple(sorted(votes.items())), invalid is not None)


class ExploredWorld(World):
    """A world as the explorer keeps it: no trace, nothing random, and a ghost.

    ``votes`` is each decider's first vote, ``invalid`` says why a commit was decided
    before every decider voted YES (validity), ``used`` is the fault budget spent. All
    three are replaced, never changed in place, so :meth:`World.clone` may share them.
    """

    def __init__(self, nodes: Sequence[tuple[str, Role]], config: EngineConfig, seed: int,
                 faults: Sequence[Fault], deciders: tuple[str, ...]) -> None:
        super().__init__(nodes, config, seed, faults, record=False)
        self.rng = Fixed()
        self.deciders = deciders
        self.votes: dict[str, str] = {}
        self.invalid: str | None = None
        self.used = Spent()
        # while the explorer learns a step (see txlib.explorer.worlds): the ghost's
        # events, (kind, node, detail), in order
        self.ghost_events: list[GhostEvent] | None = None

    def record(self, kind: str, node: str | None, msg: Message | None, detail: str = "") -> None:
        """Keep the ghost instead of a trace."""
        if kind == "vote" or kind == "decision":
            if self.ghost_events is not None:
                self.ghost_events.append((kind, node, detail))
            self.votes, self.invalid = next_ghost(self.votes, self.invalid, self.deciders,
                                                  (kind, node, detail))

    def ghost(self) -> tuple[Any, ...]:
        """The ghost and the budget, as a canonical value for the state's fingerprint."""
        return ghost_value(self.used, self.votes, self.invalid)


Broken = list[tuple[str, str]]  # (invariant, reason) pairs


class CommitInvariants:
    """Atomicity, stability and validity (or those of them ``names`` lists) of a state."""

    def __init__(self, names: Sequence[str]) -> None:
        self.names = tuple(names)

    def __call__(self, w: ExploredWorld) -> Broken:
        return self.judge(((name, slot.decision) for name, slot in w.nodes.items()),
                          [(n, a, b) for n, a, b, _ in w.instability], w.invalid)

    def judge(self, decisions: Iterable[tuple[str, str | None]],
              changes: Sequence[tuple[str, str, str]], invalid: str | None) -> Broken:
        """The invariants broken by a state whose nodes hold ``decisions`` (name,
        decision or None, in the roster's order), whose decision changes were
        ``changes`` (node, from, to) and whose ghost's validity reason is ``invalid``."""
        out: Broken = []
        names = self.names
        if "atomicity" in names:
            ever: dict[str, list[str]] = {}
            for name, decision in decisions:
                if decision is not None:
                    ever.setdefault(name, []).append(decision)
            for n, a, b in changes:
                ever.setdefault(n, []).extend((a, b))
            pair = disagreement(ever)
            if pair is not None:
                out.append(("atomicity", f"{pair[0]} {past('commit')} while {pair[1]} "
                                         f"{past('abort')}"))
        if "stability" in names and changes:
            n, a, b = changes[0]
            out.append(("stability", f"{n} {past(a)}, then {past(b)}"))
        if "validity" in names and invalid is not None:
            out.append(("validity", invalid))
        return out


class ProtocolInvariants:
    """Every invariant ``protocol`` checks on a run, checked on the state's history
    whenever no message is in flight.

    A protocol judges finished runs, and some of its checks only make sense at the end
    of one (a choreographed saga's "lost event": a service committed a change and its
    event never reached the broker, which is briefly true of every event on its way).
    A state with nothing in flight is one where a run could be judged: every message
    sent has arrived or is lost, as at the end of a timed run. Under synchronous
    timeouts a timer fires only in such a state, so every run keeps reaching one.
    """

    def __init__(self, protocol: Protocol, roster: Roster, config: Any) -> None:
        self.protocol = protocol
        self.roster = roster
        self.config = config
        names = protocol.invariant_names(config)
        self.names = None if names is None else frozenset(names)

    def __call__(self, w: ExploredWorld) -> Broken:
        broken = self.unchecked(w)
        for name, _ in broken:
            if self.names is not None and name not in self.names:  # it would pass for a typo
                raise TxlibError(f"{self.protocol.name} reported invariant {name!r}, which "
                                 f"its invariant_names() does not list: "
                                 f"{choices(sorted(self.names))}")
        return broken

    def unchecked(self, w: ExploredWorld) -> Broken:
        """What the protocol says is broken in ``w``, its names not checked."""
        if next(w.queue.messages(), None) is not None:
            return []
        history = history_of_world(w, self.roster, self.config)
        return [(v.invariant, v.reason) for v in self.protocol.violations(history)]


StateInvariants = Callable[[ExploredWorld], Broken]


def invariants_of(protocol: Protocol, roster: Roster, config: Any,
                  names: Sequence[str] | None, initial: ExploredWorld) -> StateInvariants:
    """The built-in checks of ``protocol``'s states: a commit protocol's ``names`` (all
    of :data:`~txlib.properties.INVARIANTS` for None), or every invariant of any other
    protocol, tried on the ``initial`` state first (a TxlibError says why a protocol
    cannot be explored)."""
    if isinstance(protocol, CommitProtocol):
        for name in names or ():
            if name not in INVARIANTS:
                raise bad_choice("invariant", name, INVARIANTS)
        return CommitInvariants(INVARIANTS if names is None else names)
    if names:
        raise TxlibError(
            f"{protocol.name} is checked against all of its own invariants; name none "
            f"(got {list(names)}), and give any extra ones as functions of the world")
    check = ProtocolInvariants(protocol, roster, config)
    try:
        check.unchecked(initial)
    except Exception as exc:  # its violations(history) need what an explored state lacks
        # a TxlibError or a TypeError (None is not iterable) mostly means it read a trace
        why = ("; an explored state keeps no trace (history.events is None)"
               if isinstance(exc, (TxlibError, TypeError)) else "")
        raise TxlibError(f"the explorer cannot check {protocol.name}: its violations() "
                         f"failed on the initial state ({type(exc).__name__}: {exc}){why}"
                         ) from None
    return check
