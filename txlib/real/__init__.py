"""Real databases, real crashes: txlib's commit protocols over real processes and storage.

The roles of a registered commit protocol (2PC by default; ``protocol="3pc"`` or
``"paxos-commit"``, see :mod:`txlib.real.roles`) run unchanged, each node of its roster in
its own OS process, talking JSON lines over TCP (host:port), with wall-clock timers, and
each run is judged by the protocol's own ``judge``. The coordinator's log (and each
Paxos Commit acceptor's) is a file it fsyncs; each participant's account and
protocol log live in its own database: an SQLite file (the default, no server) or a
PostgreSQL database, where voting YES is ``PREPARE TRANSACTION``. Nodes can be killed
with SIGKILL at named protocol points or at any moment, and restart from their durable
state. A run records an ordinary txlib trace, so the space-time diagram and the console
draw it unchanged.

>>> import txlib.real
>>> run = txlib.real.run_transfer(3, crash=("coordinator", "after_decision_logged"))
... # doctest: +SKIP
>>> run.outcome, run.balances, run.problems()                       # doctest: +SKIP
('committed', {'p1': 800, 'p2': 600, 'p3': 600}, [])
"""

import sys

from ..errors import TxlibError

if sys.platform == "emscripten":  # Pyodide, e.g. the course's JupyterLite site
    raise TxlibError("txlib.real runs real processes and databases, which a browser cannot: "
                     "run lesson 12 on your computer (python3 course.py lab)")

from .crashpoints import CRASH_POINTS, EXPECTED_OUTCOME, Crash
from .postgres import PostgresServer
from .roles import real_protocols
from .run import RealRun
from .system import REAL_TIMEOUTS, RealSystem, run_transfer

__all__ = [
    "CRASH_POINTS",
    "EXPECTED_OUTCOME",
    "REAL_TIMEOUTS",
    "Crash",
    "PostgresServer",
    "RealRun",
    "RealSystem",
    "real_protocols",
    "run_transfer",
]
