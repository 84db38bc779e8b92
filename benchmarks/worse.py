""""Can it get worse?" on every lab preset. Prints a table; never part of the test pass/fail.

Run: ``.venv/bin/python benchmarks/worse.py`` (add ``--quick`` for the slowest presets
only).

The lab's button runs :func:`txlib.explorer.worse.search_worse` with no time limit (at
most 3,000 runs adding up to at most 600,000 steps), so this is how long a learner waits
after pressing it, per preset:
the slowest ones, and all presets together. Issue 16 asks that the slowest stay under
its budget of record (10.9 s on this machine). Each row also says how many runs the
search tried and whether it tried every candidate (``limit``: the 3,000-run limit
stopped it first; the lab then says so).
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from txlib.explorer.worse import search_worse
from txlib.presets import scenario, scenarios

# Measured on this machine (2 cores, Python 3.11) at commit 4e50877, before "can it get
# worse?" kept no runs at its last level and ran its candidates as branches: seconds.
BEFORE: dict[str, float] = {
    "paxos-commit-majority-partitioned": 7.33,
    "paxos-commit-f2-three-down": 5.93,
    "paxos-commit-partition-heals": 4.67,
    "paxos-commit-leader-crash": 3.42,
    "paxos-commit-acceptor-crash": 3.36,
    "all presets": 44.3,
}
SLOWEST = ("paxos-commit-f2-three-down", "paxos-commit-majority-partitioned",
           "paxos-commit-leader-crash", "paxos-commit-faster-leader-crash")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="the slowest presets only")
    args = parser.parse_args()
    names = SLOWEST if args.quick else scenarios()
    rows = []
    for name in names:
        start = time.perf_counter()
        search = search_worse(scenario(name), max_seconds=float("inf"))
        rows.append((time.perf_counter() - start, name, search.runs, search.complete,
                     search.found is not None))
    rows.sort(reverse=True)
    width = max(len(r[1]) for r in rows)
    print(f"can it get worse? (Python {sys.version.split()[0]}, {len(rows)} presets)")
    print(f"{'preset':<{width}}  {'seconds':>8}  {'runs':>6}  {'tried':>8}  {'found':>5}  "
          f"{'before':>7}")
    for seconds, name, runs, complete, found in rows[:8]:
        before = f"{BEFORE[name]:.2f}" if name in BEFORE else "-"
        print(f"{name:<{width}}  {seconds:8.2f}  {runs:6,}  {'all' if complete else 'limit':>8}"
              f"  {'yes' if found else 'no':>5}  {before:>7}")
    if not args.quick:
        total = sum(r[0] for r in rows)
        print(f"{'all presets':<{width}}  {total:8.1f}  {'':6}  {'':8}  {'':5}  "
              f"{BEFORE['all presets']:7.1f}")
    print("(budget: the slowest preset under 10.9 s)")


if __name__ == "__main__":
    main()
