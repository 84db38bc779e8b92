"""Kernel-side rendering speed of the lab. Prints a table; never part of the test pass/fail.

Run: ``.venv/bin/python benchmarks/viz.py`` (``--quick`` for fewer repetitions).

- *frame*: one lab frame for a 100-event, 5-node trace: the space-time SVG, every
  role's state diagram and the node table, at every step of the run in turn;
- *injection*: inject a crash at the cursor through the lab model and widget, replay the
  scenario and re-render the frame;
- *baseline*: ``json.dumps`` of the same trace's events (a cheap, fixed amount of
  Python work over the same data), so ratios can be compared across machines.
- the same two for a 300-event trace (2PC with 5 participants, a coordinator crash and
  the participants asking for the decision until it recovers).
- a frame of a long run: 2PC whose coordinator is down for 1,500 s while the
  participants keep asking (100,020 steps, 150,069 events), at 25 steps spread over it.
  Before the lab's frames read only the part of the trace they show, these took
  545 to 3,931 ms each (the diagram laid out every event up to the step).
Targets: frame p95 < 30 ms, injection p95 < 200 ms.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import txlib
from txlib.viz.widgets import Lab


def sample(action: Callable[[], object], repeat: int) -> list[float]:
    """Wall-clock milliseconds of ``repeat`` calls of ``action``."""
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        action()
        times.append((time.perf_counter() - start) * 1000)
    return times


def p95(values: list[float]) -> float:
    return sorted(values)[int(0.95 * (len(values) - 1))]


def hundred_event_scenario() -> txlib.Scenario:
    """A 5-node (coordinator + 4 participants) 2PC run of about 100 events: the
    coordinator crashes while sending COMMIT and recovers at time 150."""
    scenario = txlib.Scenario("2pc", participants=("p1", "p2", "p3", "p4"), faults=(
        txlib.crash("coordinator", when="coordinator sends COMMIT to p1"),
        txlib.recover("coordinator", at_time=150),
    ))
    assert 90 <= len(scenario.run().trace) <= 110, len(scenario.run().trace)
    return scenario


def three_hundred_event_scenario() -> txlib.Scenario:
    """A 6-node 2PC run of about 320 events: the coordinator crashes before COMMIT and
    recovers late, while the participants keep asking what was decided."""
    scenario = txlib.Scenario("2pc", participants=("p1", "p2", "p3", "p4", "p5"), faults=(
        txlib.crash("coordinator", when="coordinator sends COMMIT to p1"),
        txlib.recover("coordinator", at_time=1100),
    ), options={"horizon": 3000})
    assert 300 <= len(scenario.run().trace) <= 360, len(scenario.run().trace)
    return scenario


def long_scenario() -> txlib.Scenario:
    """2PC with 3 participants whose coordinator crashes while sending COMMIT and is
    down for 1,500 s: 100,020 steps of participants asking for the decision."""
    return txlib.Scenario("2pc", participants=("p1", "p2", "p3"), faults=(
        txlib.crash("coordinator", when="coordinator sends COMMIT to p1"),
        txlib.recover("coordinator", at_time=1_500_000)),
        options={"horizon": 1_501_000, "max_steps": 200_000})


def long_frames(rounds: int) -> tuple[int, list[float]]:
    """Frame times of a lab on :func:`long_scenario` at 25 steps spread over the run
    (the first frame, which indexes the trace, is left out as the lab opens with it)."""
    lab = Lab(long_scenario())
    last = lab.model.run.steps

    def frame_at(step: int) -> None:
        lab.model.move(step)
        lab._render_frame()

    steps = [last * k // 24 for k in range(25)]
    return len(lab.model.run.trace), [t for _ in range(rounds) for s in steps
                                      for t in sample(lambda s=s: frame_at(s), 1)]


def measure(scenario: txlib.Scenario, rounds: int) -> tuple[Lab, list[float], list[float]]:
    """Frame times at every step and injection times, for a lab on ``scenario``."""
    lab = Lab(scenario)
    steps = list(range(lab.model.run.steps + 1))

    def frame_at(step: int) -> None:
        lab.model.move(step)
        lab._render_frame()

    frames = [t for _ in range(rounds) for s in steps for t in sample(lambda s=s: frame_at(s), 1)]

    def inject() -> None:
        lab.go(6)
        lab.inject("crash", "coordinator")
        lab.undo()

    injections = [t / 2 for t in sample(inject, rounds * 5)]  # inject + undo: two replays
    return lab, frames, injections


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args()
    rounds = 3 if args.quick else 20

    lab, frames, injections = measure(hundred_event_scenario(), rounds)
    run = lab.model.run
    big, big_frames, big_injections = measure(three_hundred_event_scenario(),
                                              max(1, rounds // 4))
    long_events, long = long_frames(max(1, rounds // 4))
    events = [e.to_dict() for e in run.trace]
    baseline = sample(lambda: json.dumps(events), rounds * (run.steps + 1))

    rows = [
        ("baseline: json.dumps of the trace", statistics.median(baseline), p95(baseline)),
        ("lab frame (space-time + state diagrams + table)",
         statistics.median(frames), p95(frames)),
        ("inject a fault, replay, re-render", statistics.median(injections), p95(injections)),
        (f"lab frame, {len(big.model.run.trace)}-event trace",
         statistics.median(big_frames), p95(big_frames)),
        (f"inject, {len(big.model.run.trace)}-event trace",
         statistics.median(big_injections), p95(big_injections)),
        (f"lab frame, {long_events:,}-event trace", statistics.median(long), p95(long)),
    ]
    print(f"txlib viz benchmark: {len(run.trace)} events, {len(run.nodes)} nodes, "
          f"{run.steps} steps (Python {sys.version.split()[0]})")
    width = max(len(r[0]) for r in rows)
    print(f"{'measure':<{width}}  {'median ms':>10}  {'p95 ms':>8}  {'median/baseline':>16}")
    base = statistics.median(baseline)
    for name, median, high in rows:
        print(f"{name:<{width}}  {median:>10.2f}  {high:>8.2f}  {median / base:>16.1f}")
    print("targets: frame p95 < 30 ms; injection p95 < 200 ms")


if __name__ == "__main__":
    main()
