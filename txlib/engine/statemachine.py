"""Declared state machines: the single source of truth for a role's states.

A role declares its states and the transitions between them, each labelled by the
trigger that takes it. The engine refuses any transition that is not declared, and the
state diagrams are drawn from the same declaration, so a picture cannot disagree with
the code.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from ..errors import ProtocolError


@dataclass(frozen=True)
class Transition:
    """One declared edge: ``source -> target`` taken on ``trigger``.

    ``recovery`` marks an edge that only a termination or recovery protocol takes (after
    a crash, a timeout on a silent node or a partition), never a failure-free run; the
    diagrams draw it dashed. Rules about the protocol's normal path (such as Skeen's
    rules for non-blocking commit) are read off the other edges.
    """

    source: str
    target: str
    trigger: str
    recovery: bool = False


@dataclass(frozen=True)
class StateMachine:
    """The declared states and transitions of one role.

    ``terminal`` states are where the role has nothing left to do. A crashed node
    comes back through ``recover``: it may be restored to any declared state that its
    durable log justifies, which is not an edge of the machine.
    """

    role: str
    initial: str
    transitions: tuple[Transition, ...]
    terminal: frozenset[str] = frozenset()
    descriptions: tuple[tuple[str, str], ...] = ()
    _edges: frozenset[tuple[str, str]] = field(init=False, repr=False, compare=False)
    _states: tuple[str, ...] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        states: list[str] = [self.initial]
        for t in self.transitions:
            for s in (t.source, t.target):
                if s not in states:
                    states.append(s)
        object.__setattr__(self, "_states", tuple(states))
        object.__setattr__(
            self, "_edges", frozenset((t.source, t.target) for t in self.transitions)
        )
        unknown = self.terminal - set(states)
        if unknown:
            raise ProtocolError(f"{self.role}: terminal states {sorted(unknown)} not declared")

    @property
    def states(self) -> tuple[str, ...]:
        """Every declared state, initial first, then in order of first mention."""
        return self._states

    @property
    def normal(self) -> tuple[Transition, ...]:
        """The transitions of the failure-free protocol (those not marked ``recovery``)."""
        return tuple(t for t in self.transitions if not t.recovery)

    def allows(self, source: str, target: str) -> bool:
        """True if ``source -> target`` is a declared transition."""
        return (source, target) in self._edges

    def check(self, node: str, source: str, target: str) -> None:
        """Raise ProtocolError unless ``source -> target`` is declared."""
        if (source, target) not in self._edges:
            raise ProtocolError(
                f"{node} ({self.role}) tried the undeclared transition {source} -> {target}"
            )

    def check_state(self, node: str, state: str) -> None:
        """Raise ProtocolError unless ``state`` is declared."""
        if state not in self._states:
            raise ProtocolError(f"{node} ({self.role}) has no state {state!r}")

    def description(self, state: str) -> str:
        """A one-line description of ``state`` for learners ('' if none)."""
        return dict(self.descriptions).get(state, "")


def recovery(source: str, target: str, trigger: str) -> Transition:
    """An edge that only a termination or recovery protocol takes (see :class:`Transition`);
    list it among :func:`machine`'s ``edges`` where it belongs."""
    return Transition(source, target, trigger, recovery=True)


def machine(
    role: str,
    initial: str,
    edges: Sequence[tuple[str, str, str] | Transition],
    terminal: tuple[str, ...] = (),
    describe: dict[str, str] | None = None,
) -> StateMachine:
    """Declare a state machine from ``(source, target, trigger)`` triples (normal edges)
    and :func:`recovery` edges, in the order they are to be laid out."""
    return StateMachine(
        role=role,
        initial=initial,
        transitions=tuple(e if isinstance(e, Transition) else Transition(*e) for e in edges),
        terminal=frozenset(terminal),
        descriptions=tuple(sorted((describe or {}).items())),
    )
