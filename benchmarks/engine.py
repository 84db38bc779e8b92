"""Engine speed and trace memory. Prints a table; never part of the test pass/fail.

Run: ``.venv/bin/python benchmarks/engine.py`` (add ``--quick`` for a short run).

Figures:
- *events/s*: scheduler steps per second (a delivery, a timer or a fault is one step)
  in a long 2PC run where 8 in-doubt participants keep asking a crashed coordinator;
- *2PC tx/s*: whole 3-participant 2PC runs per second, no faults, setup included;
- *baseline*: the smallest possible discrete-event loop in pure Python (heapq push and
  pop plus one function call per event), run in the same process; the ratio
  engine/baseline is the figure to compare across machines;
- *trace memory*: bytes held by the trace of a 10,000-event run (tracemalloc).
"""

from __future__ import annotations

import argparse
import gc
import heapq
import sys
import time
import tracemalloc
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import txlib
from txlib.simulation.scenario import Scenario


def rate(work: Callable[[], int], seconds: float) -> float:
    """Units of work per second, running ``work`` (which returns its units) repeatedly."""
    work()  # warm up
    done, start = 0, time.perf_counter()
    while (elapsed := time.perf_counter() - start) < seconds:
        done += work()
    return done / elapsed


def baseline_loop(events: int) -> int:
    """The floor: a heap of timed events, each popped and handed to a function."""
    queue: list[tuple[int, int, int]] = []
    sink: list[int] = []

    def handle(event: tuple[int, int, int]) -> None:
        sink.append(event[2])
        if len(sink) < events:
            heapq.heappush(queue, (event[0] + 7, len(sink), event[2]))

    heapq.heappush(queue, (0, 0, 0))
    while queue:
        handle(heapq.heappop(queue))
    return events


def long_run(record: bool) -> txlib.Run:
    return txlib.simulate(
        "2pc", participants=8, record=record, horizon=200_000,
        faults=[txlib.crash("coordinator", when="coordinator logs COMMIT")],
    )


def trace_bytes(horizon: int) -> tuple[int, int]:
    """(events, bytes) of the trace of a blocked 2PC run up to ``horizon``."""
    gc.collect()
    tracemalloc.start()
    before = tracemalloc.get_traced_memory()[0]
    run = txlib.simulate(
        "2pc", participants=3, horizon=horizon,
        faults=[txlib.crash("coordinator", when="coordinator logs COMMIT")],
    )
    gc.collect()
    held = tracemalloc.get_traced_memory()[0] - before
    tracemalloc.stop()
    return len(run.trace), held


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="shorter timing windows")
    args = parser.parse_args()
    window = 0.5 if args.quick else 3.0

    steps_per_long_run = long_run(False).steps
    base = rate(lambda: baseline_loop(steps_per_long_run), window)
    on = rate(lambda: long_run(True).steps, window)
    off = rate(lambda: long_run(False).steps, window)
    happy = Scenario("2pc")
    tx_on = rate(lambda: happy.run(record=True) and 1, window)
    tx_off = rate(lambda: happy.run(record=False) and 1, window)
    target_events = 10_000
    horizon = 1000
    events, held = trace_bytes(horizon)
    while events < target_events:  # grow the run until its trace has 10,000 events
        horizon = horizon * target_events // max(events, 1) + 100
        events, held = trace_bytes(horizon)

    rows = [
        ("baseline heapq loop", f"{base:,.0f} events/s", "1.00"),
        ("engine, recording off", f"{off:,.0f} events/s", f"{off / base:.2f}"),
        ("engine, recording on", f"{on:,.0f} events/s", f"{on / base:.2f}"),
        ("2PC tx (3 participants), recording off", f"{tx_off:,.0f} tx/s", ""),
        ("2PC tx (3 participants), recording on", f"{tx_on:,.0f} tx/s", ""),
        (f"trace of {events:,} events", f"{held / 2**20:.1f} MB",
         f"{held / events:,.0f} B/event"),
    ]
    width = max(len(r[0]) for r in rows)
    print(f"txlib engine benchmark (Python {sys.version.split()[0]}, "
          f"{steps_per_long_run:,} steps per long run)")
    print(f"{'measure':<{width}}  {'value':>22}  {'ratio':>14}")
    for name, value, ratio in rows:
        print(f"{name:<{width}}  {value:>22}  {ratio:>14}")
    print("targets: >= 100,000 events/s with recording off; 10,000-event trace < 50 MB")


if __name__ == "__main__":
    main()
