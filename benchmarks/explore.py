"""Explorer speed. Prints a table; never part of the test pass/fail.

Run: ``.venv/bin/python benchmarks/explore.py`` (add ``--quick`` for a short run).

Figures (each search is repeated for a time window and the rates averaged):
- *baseline*: the smallest breadth-first search in pure Python (a deque, a set of
  visited states, states as plain tuples) over Lamport's TwoPhase spec with 5 RMs (and
  3 RMs, the old baseline), run in the same process; the ratio explorer/baseline (5
  RMs) is the figure to compare across machines (issue 16's target: >= 0.15);
- *TwoPhase, 3 and 6 RMs*: the same spec through the explorer's generic search
  (fingerprints, parent pointers, invariants, counters);
- *2PC / 3PC, 3 participants, 1 crash*: txlib's own protocols in the engine's worlds
  (a delivery, timeout, crash or restart met before, and every partition, heal and
  lost message, is predicted from what it changes, without taking the step, its
  digest worked out from its parent's; a state with no fault left but crashes and
  restarts is expanded from its schedule, without a world, those predicted too; any
  other transition thaws its parent's snapshot, copying on write only the nodes the
  step changes, runs the step function and
  fingerprints the result: see :mod:`txlib.explorer.memo` and
  :mod:`txlib.explorer.schedule`);
- *world step floor*: clone + execute + fingerprint of one 3PC event with the public
  ``World.clone`` and ``World.fingerprint`` (what a transition cost before steps were
  remembered; the explorer's own steps are cheaper);
- *memory*: bytes per visited state (tracemalloc's peak during the search, over its
  distinct states) of ``explore("3pc", participants=3, max_crashes=1, partitions=True)``
  (target: <= 400), and the peak resident memory of a separate process running 3PC with
  3 participants, 2 crashes, recoveries and partitions to its state budget (target:
  within 1 GB; skipped with ``--quick``).

Each row also shows the figure measured before issue 16's work ("before"), on the same
machine, as the baseline of record (``BEFORE`` below).
"""

from __future__ import annotations

import argparse
import gc
import subprocess
import sys
import time
import tracemalloc
from collections import deque
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from pairing import take_turns  # benchmarks/pairing.py, beside this script

from txlib.engine.world import World
from txlib.explorer.tla import TwoPhase, check
from txlib.explorer.worlds import explore
from txlib.protocols import get_protocol


def rate(work: Callable[[], tuple[int, int]], seconds: float) -> tuple[float, float, int, int]:
    """(states/s, transitions/s, states, transitions) running ``work`` repeatedly; it
    returns (states, transitions) of one search."""
    states, transitions = work()  # warm up, and the sizes
    done_s = done_t = 0
    start = time.perf_counter()
    while (elapsed := time.perf_counter() - start) < seconds:
        s, t = work()
        done_s += s
        done_t += t
    return done_s / elapsed, done_t / elapsed, states, transitions


def paired(work: Callable[[], tuple[int, int]], base: Callable[[], tuple[int, int]],
           seconds: float, rounds: int = 6) -> tuple[float, float, int, int]:
    """(ratio of states/s to the baseline's, states/s, states, transitions), timed in
    turns with the baseline."""
    states, transitions = work()
    rate_, base_rate = take_turns(lambda: work()[0], lambda: base()[0], seconds, rounds)
    return rate_ / base_rate, rate_, states, transitions


def baseline_twophase(rms: int) -> tuple[int, int]:
    """A bare BFS over TwoPhase: states (rmState, tmState, tmPrepared, msgs) as tuples."""
    everyone = frozenset(range(rms))
    init = (("working",) * rms, "init", frozenset(), frozenset())
    seen = {init}
    todo = deque([init])
    transitions = 0
    while todo:
        rm_state, tm, prepared, msgs = todo.popleft()
        nexts = []
        if tm == "init" and prepared == everyone:
            nexts.append((rm_state, "committed", prepared, msgs | {"commit"}))
        if tm == "init":
            nexts.append((rm_state, "aborted", prepared, msgs | {"abort"}))
        for i in range(rms):
            if tm == "init" and ("prepared", i) in msgs:
                nexts.append((rm_state, tm, prepared | {i}, msgs))
            if rm_state[i] == "working":
                nexts.append(((*rm_state[:i], "prepared", *rm_state[i + 1:]), tm, prepared,
                              msgs | {("prepared", i)}))
                nexts.append(((*rm_state[:i], "aborted", *rm_state[i + 1:]), tm, prepared,
                              msgs))
            if "commit" in msgs:
                nexts.append(((*rm_state[:i], "committed", *rm_state[i + 1:]), tm, prepared,
                              msgs))
            if "abort" in msgs:
                nexts.append(((*rm_state[:i], "aborted", *rm_state[i + 1:]), tm, prepared,
                              msgs))
        for t in nexts:
            transitions += 1
            if t not in seen:
                seen.add(t)
                todo.append(t)
    return len(seen), transitions


def step_floor() -> tuple[int, int]:
    """Clone, execute and fingerprint each pending event of a mid-run 3PC world."""
    proto = get_protocol("3pc")
    names = ("p1", "p2", "p3")
    config = proto.make_config(names, {})
    world = World(proto.build(proto.roster(names, {}), config), config, 0, record=False)
    world.start()
    for _ in range(4):
        world.execute(world.pending()[0])
    n = 0
    for _ in range(50):
        for entry in world.pending():
            c = world.clone()
            c.execute(entry)
            c.fingerprint()
            n += 1
    return n, n


def search_rate(run: Callable[[], object]) -> Callable[[], tuple[int, int]]:
    def work() -> tuple[int, int]:
        result = run()
        return result.states, result.transitions  # type: ignore[attr-defined]
    return work


# Measured on this machine (2 cores, Python 3.11) before issue 16's changes (commit
# e6ac338), with this script: the baseline of record. Ratios of states/s to the 5-RM bare
# BFS, each search taking turns with it (other jobs shared the machine).
BEFORE: dict[str, str] = {
    "TwoPhase, 3 RMs": "0.644",
    "TwoPhase, 6 RMs": "0.238",
    "2PC, 3 participants, 1 crash": "0.068",
    "3PC, 3 participants, 1 crash": "0.050",
    "3PC, 4 participants, 1 crash": "0.029",
    "world step floor: clone+execute+fingerprint": "0.082",
    "3PC, 3 participants, 1 crash, partitions: bytes per visited state": "1,601 B",
    "3PC, 3 participants, 2 crashes, recoveries, partitions":
        "738 MB peak RSS, 200,000 states in 39.1 s (stopped by its state budget)",
}

BIG_SEARCH = ("import resource, sys, time; sys.path.insert(0, {root!r}); "
              "from txlib.explorer.worlds import explore; t = time.perf_counter(); "
              "r = explore('3pc', participants=3, max_crashes=2, recoveries=True, "
              "partitions=True, progress=False); "
              "print(r.states, r.stopped_by.replace(' ', '_'), time.perf_counter() - t, "
              "resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)")


def bytes_per_state() -> tuple[int, float, float]:
    """(states, bytes per visited state, seconds) of the 3PC search with a partition:
    tracemalloc's peak during the search over its distinct states."""
    gc.collect()
    tracemalloc.start()
    base = tracemalloc.get_traced_memory()[0]
    start = time.perf_counter()
    result = explore("3pc", participants=3, max_crashes=1, partitions=True, progress=False)
    seconds = time.perf_counter() - start
    peak = tracemalloc.get_traced_memory()[1] - base
    tracemalloc.stop()
    return result.states, peak / result.states, seconds


def big_search() -> tuple[int, str, float, float]:
    """(states, stopped by, seconds, peak resident MB) of 3PC with 3 participants, 2
    crashes, recoveries and partitions, in a process of its own."""
    root = str(Path(__file__).resolve().parent.parent)
    out = subprocess.run([sys.executable, "-c", BIG_SEARCH.format(root=root)],
                         capture_output=True, text=True, check=True).stdout.split()
    return int(out[0]), out[1].replace("_", " "), float(out[2]), int(out[3]) / 1024


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="shorter timing windows")
    args = parser.parse_args()
    window = 0.5 if args.quick else 3.0

    rows: list[tuple[str, str, str, str]] = []
    base, _, bs, bt = rate(lambda: baseline_twophase(5), window)
    assert bs == 8832, bs
    rows.append(("baseline: bare BFS, TwoPhase 5 RMs", f"{bs:,} / {bt:,}",
                 f"{base:,.0f}", "1.00"))
    base3, _, bs3, bt3 = rate(lambda: baseline_twophase(3), window)
    assert bs3 == 288, bs3
    rows.append(("bare BFS, TwoPhase 3 RMs (the old baseline)", f"{bs3:,} / {bt3:,}",
                 f"{base3:,.0f}", f"{base3 / base:.3f}"))
    cases: list[tuple[str, Callable[[], object]]] = [
        ("TwoPhase, 3 RMs", lambda: check(TwoPhase(3))),
        ("TwoPhase, 6 RMs", lambda: check(TwoPhase(6))),
        ("2PC, 3 participants, 1 crash",
         lambda: explore("2pc", participants=3, max_crashes=1, progress=False)),
        ("3PC, 3 participants, 1 crash",
         lambda: explore("3pc", participants=3, max_crashes=1, progress=False)),
        ("3PC, 4 participants, 1 crash",
         lambda: explore("3pc", participants=4, max_crashes=1, progress=False)),
    ]
    # Each search takes turns with the baseline (the ratio is then fair under load).
    for name, run in cases:
        ratio, per_s, states, transitions = paired(search_rate(run),
                                                   lambda: baseline_twophase(5), 2 * window)
        rows.append((name, f"{states:,} / {transitions:,}", f"{per_s:,.0f}",
                     f"{ratio:.3f}"))
    ratio, floor, _, _ = paired(step_floor, lambda: baseline_twophase(5), 2 * window)
    rows.append(("world step floor: clone+execute+fingerprint", "-", f"{floor:,.0f}",
                 f"{ratio:.3f}"))
    states, per_state, seconds = bytes_per_state()
    memory = [("3PC, 3 participants, 1 crash, partitions: bytes per visited state",
               f"{per_state:,.0f} B ({states:,} states, {seconds:.1f} s under tracemalloc)")]
    if not args.quick:
        big, stopped, big_s, mb = big_search()
        memory.append(("3PC, 3 participants, 2 crashes, recoveries, partitions",
                       f"{mb:,.0f} MB peak RSS, {big:,} states in {big_s:.1f} s "
                       f"(stopped by {stopped})"))

    width = max(len(r[0]) for r in rows)
    print(f"txlib explorer benchmark (Python {sys.version.split()[0]}, "
          f"window {window:g} s per row)")
    print(f"{'search':<{width}}  {'states / transitions':>22}  {'states/s':>10}  "
          f"{'vs baseline':>11}  {'before':>8}")
    for name, size, per_s, ratio in rows:
        print(f"{name:<{width}}  {size:>22}  {per_s:>10}  {ratio:>11}  "
              f"{BEFORE.get(name, '-'):>8}")
    print("(the floor row counts transitions/s; target for txlib's worlds: >= 0.15 of the "
          "5-RM baseline)")
    for name, value in memory:
        print(f"{name}: {value}; before: {BEFORE.get(name, '-')}")
    print("(targets: <= 400 B per visited state; the big search within 1 GB)")


if __name__ == "__main__":
    main()
