"""Engine speed and trace memory. Prints a table; never part of the test pass/fail.

Run: ``.venv/bin/python benchmarks/engine.py`` (add ``--quick`` for a short run).

Figures:
- *events/s*: scheduler steps per second (a delivery, a timer or a fault is one step)
  in a long 2PC run where 8 in-doubt participants keep asking a crashed coordinator;
- *2PC tx/s*: whole 3-participant 2PC runs per second, no faults, setup included;
- *baseline*: the smallest possible discrete-event loop in pure Python (heapq push and
  pop plus one function call per event), run in the same process; the ratio
  engine/baseline is the figure to compare across machines;
- *trace memory*: bytes held by the trace of a 10,000-event run (tracemalloc);
- *the same 2PC as one bare function*: the floor under a simulated run (:func:`bare_2pc`:
  the same seeded latencies, messages, log records and timers, and nothing else), against
  the same SimPy model: how far any engine in pure Python could go;
- *simulate vs SimPy*: whole runs ``txlib.simulate("2pc", participants=3, seed=s)``
  per second (a new seed each run, trace on and off), against a SimPy model of the same
  shape run in the same process: a coordinator and 3 participants exchanging PREPARE,
  YES, COMMIT and ACK with seeded latencies (issue 16's targets: >= 1.5 with the trace,
  >= 3 without). SimPy is a benchmark-only dependency (``pip install txlib[bench]``);
  without it those rows say so.

Each row also shows the figure measured before issue 16's work ("before"), on the same
machine, as the baseline of record (``BEFORE`` below).
"""

from __future__ import annotations

import argparse
import gc
import heapq
import random
import sys
import time
import tracemalloc
from collections.abc import Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from pairing import take_turns  # benchmarks/pairing.py, beside this script

import txlib
from txlib.simulation.scenario import Scenario

# Measured on this machine (2 cores, Python 3.11) before issue 16's changes (commit
# e6ac338), with this script: the baseline of record (ratios; the simulate rows take
# turns with the SimPy model; other jobs shared the machine).
BEFORE: dict[str, str] = {
    "engine, recording off": "0.10",
    "engine, recording on": "0.03",
    "trace of 10,016 events": "386 B/event",
    "simulate('2pc', seed=s), recording on": "0.49",
    "simulate('2pc', seed=s), recording off": "0.68",
}


def rate(work: Callable[[], int], seconds: float) -> float:
    """Units of work per second, running ``work`` (which returns its units) repeatedly."""
    work()  # warm up
    done, start = 0, time.perf_counter()
    while (elapsed := time.perf_counter() - start) < seconds:
        done += work()
    return done / elapsed


def paired(work: Callable[[], int], base: Callable[[], int], seconds: float,
           rounds: int = 6) -> tuple[float, float, float]:
    """(work per second, base per second, their ratio), timed in turns."""
    work_rate, base_rate = take_turns(work, base, seconds, rounds)
    return work_rate, base_rate, work_rate / base_rate


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


def simpy_2pc(seed: int, participants: int = 3) -> int:
    """One 2PC transaction as a plain SimPy message model: the coordinator sends PREPARE
    to every participant, each answers YES, then COMMIT and ACK; every message takes a
    seeded latency of 5..15 ms (txlib's default bounds). Returns 1 (a transaction)."""
    import simpy

    rng = random.Random(seed)
    env = simpy.Environment()
    names = [f"p{i}" for i in range(1, participants + 1)]
    inbox = {n: simpy.Store(env) for n in ["coordinator", *names]}

    def send(dst: str, message: tuple[str, str]) -> None:
        def carry() -> Any:
            yield env.timeout(rng.randint(5, 15))
            yield inbox[dst].put(message)
        env.process(carry())

    def participant(name: str) -> Any:
        state = "INIT"
        while state != "COMMITTED":
            kind, src = yield inbox[name].get()
            if kind == "PREPARE":
                state = "PREPARED"
                send(src, ("YES", name))
            elif kind == "COMMIT":
                state = "COMMITTED"
                send(src, ("ACK", name))

    def coordinator() -> Any:
        for n in names:
            send(n, ("PREPARE", "coordinator"))
        votes = 0
        while votes < len(names):
            kind, _ = yield inbox["coordinator"].get()
            votes += kind == "YES"
        for n in names:
            send(n, ("COMMIT", "coordinator"))
        acks = 0
        while acks < len(names):
            kind, _ = yield inbox["coordinator"].get()
            acks += kind == "ACK"

    for n in names:
        env.process(participant(n))
    env.process(coordinator())
    env.run()
    return 1


def bare_2pc(seed: int, participants: int = 3) -> int:
    """The floor under ``simulate('2pc', record=False)``: the same run (the same seeded
    latencies, FIFO channels, PREPARE/YES/COMMIT/ACK, the log records and the timers
    set and cancelled) written as one plain function, with nothing txlib adds: no
    declared transitions or records, no locks or votes, no stale-timer bookkeeping, no
    judging, no Run. Returns 1 (a transaction)."""
    draw = random.Random(seed).random
    heap: list[tuple[int, int, Any]] = []
    order = 0
    now = 0
    fifo: dict[tuple[str, str], int] = {}
    names = [f"p{i}" for i in range(1, participants + 1)]
    state = dict.fromkeys(["coordinator", *names], "INIT")
    logs: dict[str, list[tuple[str, dict[str, Any]]]] = {n: [] for n in state}
    timers: dict[tuple[str, str], int] = {}
    yes: set[str] = set()
    acks: set[str] = set()

    def send(src: str, dst: str, kind: str, **payload: Any) -> None:
        nonlocal order
        at = now + 5 + int(draw() * 11)
        last = fifo.get((src, dst), 0)
        at = max(at, last)
        fifo[(src, dst)] = at
        order += 1
        heapq.heappush(heap, (at, order, (src, dst, kind, payload)))

    def set_timer(node: str, name: str, delay: int) -> None:
        nonlocal order
        order += 1
        timers[(node, name)] = order
        heapq.heappush(heap, (now + delay, order, (node, name)))

    state["coordinator"] = "WAIT"
    for p in names:
        send("coordinator", p, "PREPARE", tx="T1", amount=100)
    set_timer("coordinator", "votes", 60)
    for p in names:
        set_timer(p, "prepare", 200)
    while heap:
        at, _, due = heapq.heappop(heap)
        if len(due) == 2:  # a timer: in this workload each is cancelled before it is due
            continue
        now = at
        src, dst, kind, _ = due
        if kind == "PREPARE":
            timers.pop((dst, "prepare"), None)
            logs[dst].append(("PREPARED", {"tx": "T1"}))
            state[dst] = "PREPARED"
            send(dst, src, "YES", tx="T1")
            set_timer(dst, "decision", 60)
        elif kind == "YES":
            yes.add(src)
            if len(yes) == len(names):
                timers.pop(("coordinator", "votes"), None)
                logs["coordinator"].append(("COMMIT", {"tx": "T1"}))
                state["coordinator"] = "COMMITTED"
                for p in names:
                    send("coordinator", p, "COMMIT", tx="T1")
                set_timer("coordinator", "acks", 60)
        elif kind == "COMMIT":
            logs[dst].append(("COMMITTED", {"tx": "T1"}))
            state[dst] = "COMMITTED"
            timers.pop((dst, "decision"), None)
            send(dst, src, "ACK", tx="T1")
        elif kind == "ACK":
            acks.add(src)
            if len(acks) == len(names):
                timers.pop(("coordinator", "acks"), None)
                logs["coordinator"].append(("END", {"tx": "T1"}))
                state["coordinator"] = "ENDED"
    return 1


def seeded(record: bool) -> Callable[[], int]:
    """A whole 2PC run with the next seed each call."""
    seeds = iter(range(10**9))
    return lambda: txlib.simulate("2pc", participants=3, seed=next(seeds), record=record) and 1


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

    try:
        import simpy  # noqa: F401
    except ImportError:
        simpy_rate = None
        sim_on, sim_off = rate(seeded(True), window), rate(seeded(False), window)
        ratio_on = ratio_off = "-"
    else:  # each takes turns with the SimPy model (fair under load)
        seeds = iter(range(10**9))
        model = lambda: simpy_2pc(next(seeds))  # noqa: E731
        sim_on, simpy_on, on_ratio = paired(seeded(True), model, 2 * window)
        sim_off, simpy_off, off_ratio = paired(seeded(False), model, 2 * window)
        floor = iter(range(10**9))
        bare, simpy_bare, bare_ratio = paired(lambda: bare_2pc(next(floor)), model,
                                              2 * window)
        simpy_rate = (simpy_on + simpy_off + simpy_bare) / 3
        ratio_on, ratio_off = f"{on_ratio:.2f}", f"{off_ratio:.2f}"

    rows = [
        ("baseline heapq loop", f"{base:,.0f} events/s", "1.00"),
        ("engine, recording off", f"{off:,.0f} events/s", f"{off / base:.2f}"),
        ("engine, recording on", f"{on:,.0f} events/s", f"{on / base:.2f}"),
        ("2PC tx (3 participants), recording off", f"{tx_off:,.0f} tx/s", ""),
        ("2PC tx (3 participants), recording on", f"{tx_on:,.0f} tx/s", ""),
        (f"trace of {events:,} events", f"{held / 2**20:.1f} MB",
         f"{held / events:,.0f} B/event"),
    ]
    if simpy_rate is None:
        rows.append(("SimPy 2PC model (3 participants)", "simpy not installed", ""))
    else:
        rows.append(("SimPy 2PC model (3 participants)", f"{simpy_rate:,.0f} tx/s", "1.00"))
    rows.append(("simulate('2pc', seed=s), recording on", f"{sim_on:,.0f} tx/s", ratio_on))
    rows.append(("simulate('2pc', seed=s), recording off", f"{sim_off:,.0f} tx/s", ratio_off))
    if simpy_rate is not None:
        rows.append(("the same 2PC as one bare function (floor)", f"{bare:,.0f} tx/s",
                     f"{bare_ratio:.2f}"))
    width = max(len(r[0]) for r in rows)
    print(f"txlib engine benchmark (Python {sys.version.split()[0]}, "
          f"{steps_per_long_run:,} steps per long run)")
    print(f"{'measure':<{width}}  {'value':>22}  {'ratio':>14}  {'before':>14}")
    for name, value, ratio in rows:
        print(f"{name:<{width}}  {value:>22}  {ratio:>14}  {BEFORE.get(name, '-'):>14}")
    print("targets: >= 100,000 events/s with recording off; 10,000-event trace < 50 MB; "
          "simulate vs SimPy >= 1.5 recording on, >= 3 off")
    if simpy_rate is None:
        print("SimPy is not installed, so the simulate rows have no ratio: "
              "pip install 'txlib[bench]' (or simpy) to compare.")


if __name__ == "__main__":
    main()
