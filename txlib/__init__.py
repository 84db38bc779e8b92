"""txlib: a small, exact simulator of distributed-transaction protocols, for teaching.

>>> import txlib
>>> run = txlib.simulate("2pc", participants=2)
>>> run.outcome
'committed'
"""

from .engine.faults import (
    Fault,
    Trigger,
    crash,
    delay,
    drop,
    duplicate,
    heal,
    partition,
    recover,
    slow,
    vote_no,
)
from .errors import ProtocolError, TxlibError
from .run import Run
from .scenario import Scenario, simulate
from .scenarios import scenario, scenarios

__version__ = "0.1.0"

__all__ = [
    "Fault",
    "ProtocolError",
    "Run",
    "Scenario",
    "Trigger",
    "TxlibError",
    "crash",
    "delay",
    "drop",
    "duplicate",
    "heal",
    "partition",
    "recover",
    "scenario",
    "scenarios",
    "simulate",
    "slow",
    "vote_no",
]
