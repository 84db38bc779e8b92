"""The explorer on the engine's Paxos Commit: the budgets run and what they showed.

Run: ``.venv/bin/python benchmarks/explore_paxos_commit.py`` (``--quick``: the small
ones only; ``--long``: also the three largest searches with partitions, the table's
6,000,000 and 14.3 M rows, measured at 12 to 15 minutes and 4 to 5 GB each). Never part
of the test pass/fail. Every run uses ``max_ballots=1`` (the protocol's
``explore_options``): each node starts at most one ballot above 0, so the coordinator
may run one recovery ballot and each acceptor one takeover. What a run proves holds for
every run of Paxos Commit in which no node starts more than one ballot above 0 (safety),
and for the protocol so bounded (blocking).

Measured (synchronous timeouts, reordering network, no drops, no restarts; "blocking:
none" = from every reachable state every live participant can still decide with no
further fault; CPU seconds on one core of a loaded 2-core machine, wall time higher):

P = participants, A = acceptors; "down" = which nodes may crash (at once);
states = distinct states; CPU = seconds.

==  ==  ============================  =====  ========  =====  ==========================
P   A   down (or partitions)          depth  states    CPU    result
==  ==  ============================  =====  ========  =====  ==========================
1   1   any 1                         13     99        0.1    safe; blocks (a1, F=0)
1   3   coordinator, max_ballots=0    18     160       0.1    safe; blocks (no takeover)
1   3   coordinator                   27     4,252     ~5     safe, no blocking
1   3   any 1                         27     11,334    ~12    safe, no blocking
1   3   coordinator + 1 acceptor      37     48,256    ~25    safe, no blocking
2   3   1 acceptor                    33     8,548     ~4     safe, no blocking
2   3   coordinator                   34     60,158    ~50    safe, no blocking
2   3   1 participant                 34     266,452   ~240   safe, no blocking
2   3   any 1                         34     335,082   159    safe, no blocking
2   3   none, partitions              24     6,000,000 917 w  no violation (incomplete:
                                                               every path of <= 23 steps)
2   3   any 1, partitions             19     6,000,000 701 w  no violation (incomplete:
                                                               every path of <= 18 steps)
1   3   none, partitions              50     961,191   30 w   no violation (complete)
1   3   none, partitions, FIFO        50     284,543   51     no violation (complete)
1   3   any 1, partitions             58     14.3 M    706 w  no violation (complete:
                                                               14,269,697 states, 4.2 GB)
==  ==  ============================  =====  ========  =====  ==========================

("w" = wall seconds. The two incomplete rows: ~8,500 and ~6,500 states/s, about 5 GB
each, after issue 16's compact snapshots. The two complete searches with partitions were
measured again once the explorer remembered steps (:mod:`txlib.explorer.memo`): 292 s
became 58 s, and 2,815 s about 1,230 s; and again once states with no fault left were
expanded from their schedules (:mod:`txlib.explorer.schedule`): 30 s and 706 s (peak
4.2 GB, from 3.6). The other rows are older figures.)
With a partition (any split of the nodes, healing or not) the state space is far
larger: every split at every moment, each side evolving on its own. Those searches did
not finish within the budgets above; they found no violation in the states they
reached (incomplete: a lower bound on safety, not a proof). Blocking is expected there
(a side without a majority of acceptors waits until the partition heals).

How big the partition searches are (issue 14's last check, measured in this session):
with one participant and partitions alone the search is complete at 961,191 states and
depth 50 (284,543 with FIFO channels, ``reorder=False``); its levels grow to about
50,000 states by depth 21 and stay there until depth 38. With one crash as well it is
complete at 14,269,697 states and depth 58 (about 12 minutes, 4.2 GB): the crash multiplies
it by 15. With two participants the levels still grow about 1.4x a step at depth 23
(4.2 million states found, 1.4 million waiting).
Projected from those shapes, two participants, three acceptors, one crash and
partitions is some hundreds of millions of states: many hours of CPU and over 100 GB
at this explorer's 20,000-30,000 states a second and a few hundred bytes a state,
beyond this machine. What it would take: a reduction that keeps every interleaving that
matters (partial-order reduction is hard here: with a reordering network any node may
still be sent a message that races with one in flight, and a crash or a partition
depends on every step it can cut) or a faster explorer.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from txlib.explorer.worlds import explore

QUICK: list[dict[str, Any]] = [
    {"participants": 1, "acceptors": 1, "max_crashes": 1},
    {"participants": 1, "acceptors": 3, "max_crashes": {"coordinator": 1}, "max_ballots": 0},
    {"participants": 1, "acceptors": 3, "max_crashes": {"coordinator": 1}},
    {"participants": 2, "acceptors": 3, "max_crashes": {"acceptor": 1}},
]
FULL: list[dict[str, Any]] = [
    *QUICK,
    {"participants": 1, "acceptors": 3, "max_crashes": 1},
    {"participants": 1, "acceptors": 3, "max_crashes": {"coordinator": 1, "acceptor": 1}},
    {"participants": 2, "acceptors": 3, "max_crashes": {"coordinator": 1}},
    {"participants": 2, "acceptors": 3, "max_crashes": 1, "max_states": 1_000_000},
    {"participants": 2, "acceptors": 3, "max_crashes": 0, "partitions": True,
     "max_states": 100_000},
    {"participants": 1, "acceptors": 3, "max_crashes": 0, "partitions": True,
     "reorder": False, "max_states": 1_000_000},
    {"participants": 1, "acceptors": 3, "max_crashes": 0, "partitions": True,
     "max_states": 2_000_000},
]
LONG: list[dict[str, Any]] = [
    *FULL,
    {"participants": 2, "acceptors": 3, "max_crashes": 0, "partitions": True,
     "max_states": 6_000_000},
    {"participants": 2, "acceptors": 3, "max_crashes": 1, "partitions": True,
     "max_states": 6_000_000},
    {"participants": 1, "acceptors": 3, "max_crashes": 1, "partitions": True,
     "max_states": 20_000_000},
]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    which = parser.add_mutually_exclusive_group()
    which.add_argument("--quick", action="store_true", help="the small searches only")
    which.add_argument("--long", action="store_true",
                       help="also the multi-million-state searches with partitions")
    args = parser.parse_args()
    for budget in QUICK if args.quick else LONG if args.long else FULL:
        cpu = time.process_time()
        result = explore("paxos-commit", progress=False, **budget)
        cpu = time.process_time() - cpu
        print(f"{budget}\n  CPU {cpu:.1f} s\n  " + result.summary().replace("\n", "\n  "))


if __name__ == "__main__":
    main()
