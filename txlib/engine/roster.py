"""Which nodes a protocol runs, in which role, and which of them must decide.

Every place that needs a protocol's nodes (scenario validation, the console, the lab's
node lists, the explorer, the diagrams, judging a run) asks the protocol's
:class:`Roster` instead of assuming "a coordinator plus participants": Paxos Commit has
acceptors, a choreographed saga a broker and services.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from functools import cached_property

from ..errors import TxlibError, bad_choice

# The most participants (a saga's services included) a run may have.
MAX_PARTICIPANTS = 64


@dataclass(frozen=True)
class NodeSpec:
    """One node: its ``name``, its ``role`` (the role name of its state machine) and
    whether it ``decides``: a node that must reach a decision before the run counts as
    finished (a commit participant). Helpers (acceptors, a broker, services) do not."""

    name: str
    role: str
    decides: bool = False


@dataclass(frozen=True)
class Roster:
    """A protocol's nodes in order (the driving node first)."""

    nodes: tuple[NodeSpec, ...]

    def __post_init__(self) -> None:
        names = [n.name for n in self.nodes]
        if not names:
            raise TxlibError("a protocol must run at least one node")
        if len(set(names)) != len(names):
            raise TxlibError(f"node names must be unique, got {names}")

    @classmethod
    def of(cls, *groups: Iterable[NodeSpec]) -> Roster:
        """A roster from groups of node specs, in order."""
        return cls(tuple(spec for group in groups for spec in group))

    @cached_property
    def names(self) -> tuple[str, ...]:
        """Every node, the driving node first (worked out once: a roster is immutable)."""
        return tuple(n.name for n in self.nodes)

    @property
    def first(self) -> str:
        """The node that drives the protocol (coordinator, orchestrator, broker)."""
        return self.nodes[0].name

    @cached_property
    def deciders(self) -> tuple[str, ...]:
        """The nodes that must decide (commit participants), worked out once."""
        return tuple(n.name for n in self.nodes if n.decides)

    @property
    def roles(self) -> dict[str, str]:
        """Each node's role, in roster order."""
        return {n.name: n.role for n in self.nodes}

    def with_role(self, role: str) -> tuple[str, ...]:
        """The nodes that play ``role``."""
        return tuple(n.name for n in self.nodes if n.role == role)

    def check(self, node: object, what: str = "node") -> str:
        """``node`` if it is one of this roster's nodes, else a TxlibError naming the
        valid ones (and the nearest, if it looks like a typo)."""
        if not isinstance(node, str) or node not in self.names:
            raise bad_choice(what, node, self.names)
        return node
