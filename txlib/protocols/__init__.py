"""The registered protocols, by the name ``simulate`` takes."""

from __future__ import annotations

from ..errors import bad_choice
from .base import COORDINATOR, CommitConfig, Protocol
from .choreography import SagaChoreography
from .naive import NoProtocol
from .saga import SagaOrchestration
from .tcc import TryConfirmCancel
from .three_phase import ThreePhaseCommit
from .two_phase import TwoPhaseCommit

PROTOCOLS: dict[str, Protocol] = {
    p.name: p for p in (TwoPhaseCommit(), ThreePhaseCommit(), SagaOrchestration(), NoProtocol(),
                        SagaChoreography(), TryConfirmCancel())
}


def get_protocol(name: object) -> Protocol:
    """The protocol called ``name``, or a TxlibError listing the valid names."""
    if not isinstance(name, str) or name not in PROTOCOLS:
        raise bad_choice("protocol", name, PROTOCOLS)
    return PROTOCOLS[name]


__all__ = ["COORDINATOR", "PROTOCOLS", "CommitConfig", "Protocol", "get_protocol"]
