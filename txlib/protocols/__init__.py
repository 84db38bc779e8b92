"""The registered protocols, by the name ``simulate`` takes.

Adding a protocol: write one module with a :class:`~.base.Protocol` subclass and add one
line to ``_BUILT_IN`` below (or call :func:`register` from your own code).
"""

from __future__ import annotations

from ..errors import TxlibError, bad_choice
from .base import COORDINATOR, CommitConfig, CommitProtocol, Protocol
from .choreography import SagaChoreography
from .naive import NoProtocol
from .paxos_commit import PaxosCommit
from .saga import SagaOrchestration
from .tcc import TryConfirmCancel
from .three_phase import ThreePhaseCommit
from .two_phase import TwoPhaseCommit

PROTOCOLS: dict[str, Protocol] = {}


def register(protocol: Protocol) -> Protocol:
    """Make ``protocol`` available by its name (``simulate(protocol.name)``, scenarios,
    the lab, the explorer). Registering a name again replaces the earlier protocol."""
    if not isinstance(protocol, Protocol):
        raise TxlibError(f"register needs a Protocol instance, got {protocol!r}")
    name = getattr(protocol, "name", None)
    if not isinstance(name, str) or not name or any(c.isspace() for c in name):
        raise TxlibError(f"a protocol's name must be a word without spaces, got {name!r}")
    missing = [a for a in ("title", "config_class", "machines", "outcomes")
               if not hasattr(protocol, a)]
    if missing:  # the lab, the fault grid and the explorer read them all
        raise TxlibError(f"protocol {name!r} does not set {', '.join(missing)}; a protocol "
                         "names its title, config_class, machines and outcomes (see "
                         "'Adding a protocol' in the README)")
    PROTOCOLS[name] = protocol
    return protocol


def unregister(name: str) -> None:
    """Forget the protocol called ``name`` (a TxlibError if there is none)."""
    get_protocol(name)
    del PROTOCOLS[name]


def get_protocol(name: object) -> Protocol:
    """The protocol called ``name``, or a TxlibError listing the valid names."""
    if not isinstance(name, str) or name not in PROTOCOLS:
        raise bad_choice("protocol", name, PROTOCOLS)
    return PROTOCOLS[name]


_BUILT_IN: tuple[Protocol, ...] = (
    TwoPhaseCommit(),
    ThreePhaseCommit(),
    SagaOrchestration(),
    NoProtocol(),
    SagaChoreography(),
    TryConfirmCancel(),
    PaxosCommit(),
)
for _protocol in _BUILT_IN:
    register(_protocol)


def is_built_in(name: str) -> bool:
    """True if ``name`` is one of txlib's own protocols, as registered at import (a fresh
    process, such as a real node, knows only these)."""
    return any(p is PROTOCOLS.get(name) for p in _BUILT_IN)

__all__ = ["COORDINATOR", "PROTOCOLS", "CommitConfig", "CommitProtocol", "Protocol",
           "get_protocol", "is_built_in", "register", "unregister"]
