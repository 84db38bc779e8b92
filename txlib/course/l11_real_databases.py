"""Lesson 11 (real databases, real crashes): exercises checked against real runs.

Both checkers run :mod:`txlib.real` (real processes, SQLite participants, kill -9), not
the simulator. What they measure does not depend on timing, so the verdicts are the same
on every machine; each measurement runs once per Python process and is then reused.

- ``real-in-doubt-points``: after which of the coordinator's named crash points, with the
  coordinator kept down, is some participant left in doubt (prepared, its row held)?
  The checker crashes a real coordinator at every point and looks into the databases;
- ``real-fsyncs-per-commit``: how many fsyncs does each committed transfer cost a running
  system with N participants? The checker counts the fsyncs real nodes ask for.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from functools import cache
from typing import Any

from ..errors import TxlibError, choices
from ..real import CRASH_POINTS, RealSystem, run_transfer
from . import Exercise, Feedback, register

# Wall-clock 2PC timeouts (ms) of these runs: the vote timeout far above a PREPARE round on
# a loaded machine, the others short (as in tests/real).
TIMEOUTS: dict[str, int] = {
    "vote_timeout": 1000,
    "prepare_timeout": 1000,
    "decision_timeout": 150,
    "retry_interval": 100,
    "ack_timeout": 150,
}
QUIET = 0.5  # seconds without any state change before a kept-down run counts as settled
LIMIT = 20.0  # seconds a single measurement may take before it is reported as failed
TERMINAL = ("COMMITTED", "ABORTED")
COORDINATOR_POINTS = CRASH_POINTS["coordinator"]


# --- exercise: which crash points leave someone in doubt? --------------------------------

def states(system: RealSystem, tx: str) -> dict[str, str | None]:
    return {p: system.state(p, tx) for p in system.participants}


def coordinator_kept_down(point: str, participants: int = 3) -> dict[str, tuple[str, bool]]:
    """Kill -9 the coordinator at ``point`` and do not restart it. Once every participant
    has stopped moving (each is PREPARED or finished, and nothing changed for ``QUIET``
    seconds), each participant's ``(state, row held)``, the row read from its database."""
    if point not in COORDINATOR_POINTS:
        raise TxlibError(f"{point!r} is not a crash point of the coordinator; valid "
                         f"choices: {choices(COORDINATOR_POINTS)}")
    with RealSystem(participants, options=TIMEOUTS, restart=False) as system:
        system.begin("T1", crash=("coordinator", point))
        deadline = time.monotonic() + LIMIT

        def stopped(s: RealSystem) -> bool:
            return "coordinator" in s.down and all(
                v in ("PREPARED", *TERMINAL) for v in states(s, "T1").values())

        while True:
            system.wait(stopped, max(0.1, deadline - time.monotonic()),
                        f"the participants to stop moving after a crash at {point}")
            seen = states(system, "T1")
            quiet_until = time.monotonic() + QUIET
            while time.monotonic() < quiet_until and states(system, "T1") == seen:
                system.pump(quiet_until - time.monotonic())
            if states(system, "T1") == seen and stopped(system):
                break
            if time.monotonic() > deadline:
                raise TxlibError(f"the participants kept changing state after a crash at "
                                 f"{point}: {system.describe()}")
        held = system.inspect()
        return {p: (str(seen[p]), bool(held[p]["locked"])) for p in system.participants}


@cache
def in_doubt_by_point() -> dict[str, dict[str, tuple[str, bool]]]:
    """:func:`coordinator_kept_down` at every crash point of the coordinator (run once)."""
    return {point: coordinator_kept_down(point) for point in COORDINATOR_POINTS}


def _doubtful(observed: dict[str, tuple[str, bool]]) -> list[str]:
    return [p for p, (state, held) in observed.items() if state == "PREPARED" and held]


def _describe(point: str, observed: dict[str, tuple[str, bool]]) -> str:
    by_state: dict[str, list[str]] = {}
    for p, (state, held) in observed.items():
        label = "in doubt (PREPARED, row held)" if state == "PREPARED" and held else state
        by_state.setdefault(label, []).append(p)
    return f"{point}: " + "; ".join(f"{', '.join(ps)} {label}" for label, ps in by_state.items())


def _points(answer: Any) -> set[str]:
    if isinstance(answer, str):
        answer = [answer]
    if not isinstance(answer, Iterable) or isinstance(answer, (bytes, dict)):
        raise TxlibError("answer with a set of crash point names, e.g. "
                         "{'after_decision_logged'} or set()")
    names = list(answer)
    for n in names:
        if n in CRASH_POINTS["participant"]:
            raise TxlibError(f"{n!r} is a participant's crash point; this question is about "
                             f"the coordinator's: {choices(COORDINATOR_POINTS)}")
        if n not in COORDINATOR_POINTS:
            raise TxlibError(f"{n!r} is not a crash point of the coordinator; valid choices: "
                             f"{choices(COORDINATOR_POINTS)}")
    return set(names)


@register("real-in-doubt-points")
def _in_doubt_points() -> Exercise:
    def check(answer: Any) -> Feedback:
        chosen = _points(answer)
        observed = in_doubt_by_point()
        right = {point for point, seen in observed.items() if _doubtful(seen)}
        notes = []
        for point in COORDINATOR_POINTS:
            if point in right and point not in chosen:
                notes.append(f"you left out {_describe(point, observed[point])}")
            elif point in chosen and point not in right:
                notes.append(f"nobody waits after {_describe(point, observed[point])}")
        if notes:
            return Feedback(False, "In the real runs, with the coordinator kept down: "
                            + "; and ".join(f"[{note}]" for note in notes)
                            + ". Who had voted YES, and who had heard the decision?")
        lines = [_describe(point, observed[point]) for point in COORDINATOR_POINTS]
        return Feedback(True, (
            f"{', '.join(p for p in COORDINATOR_POINTS if p in right)}. In the real runs, "
            "with the coordinator kept down: " + "; ".join(f"[{line}]" for line in lines) + ". A "
            "participant waits exactly when it has voted YES and has not heard the "
            "decision: then only the coordinator can release its row."))

    return Exercise(
        name="real-in-doubt-points",
        prompt="Crash the real coordinator (kill -9) at each of its named points and keep it "
               "down. After which points is at least one participant left in doubt, "
               "PREPARED with its row held, for as long as the coordinator stays down? "
               "Answer with a set of point names from txlib.real.CRASH_POINTS['coordinator']. "
               "The checker crashes a real coordinator at every point and reads the "
               "participants' databases.",
        checker=check,
        hints=(
            "A participant is in doubt from the moment it votes YES until it hears COMMIT "
            "or ABORT. At each point, who has voted, and who has been told?",
            "The coordinator sends PREPARE to p1, then p2, then p3, and later COMMIT in the "
            "same order. A crash between two sends splits the participants.",
            "between_prepares: p1 got PREPARE and voted YES. Can it abort on its own? What "
            "do p2 and p3, which never got PREPARE, do?",
        ),
        answer="{'between_prepares', 'before_decision_logged', 'after_decision_logged', "
               "'between_commits'}. between_prepares: p1 voted YES and waits, while p2 and p3 "
               "never got PREPARE and abort on their prepare timer. before_decision_logged "
               "and after_decision_logged: every participant voted YES and nobody was told "
               "(whether the decision reached the disk makes no difference to them). "
               "between_commits: p1 committed, p2 and p3 wait. Only after_commits_sent "
               "leaves nobody waiting: every COMMIT was handed to the kernel before the "
               "kill, and the kernel delivers it.",
        example={"between_prepares", "before_decision_logged", "after_decision_logged",
                 "between_commits"},
    )


# --- exercise: fsyncs per committed transfer ---------------------------------------------

FSYNC_SIZES = (2, 3, 4)


def fsyncs_of_transfers(participants: int, transfers: int) -> dict[str, int]:
    """Each node's fsyncs, as the nodes count them, over ``transfers`` committed transfers
    on one fresh system (one after the other)."""
    if transfers == 1:
        run = run_transfer(participants)
        if run.outcome != "committed" or run.problems():
            raise TxlibError(f"the measuring run did not commit cleanly: {run.summary()}")
        return dict(run.fsyncs)
    with RealSystem(participants) as system:
        for i in range(1, transfers + 1):
            system.begin(f"T{i}")
            if not system.settle(f"T{i}", LIMIT):
                raise TxlibError(f"T{i} did not finish: {system.describe()}")
        system.stop_nodes()
        run = system.result(f"T{transfers}", trace=False)
        if run.outcome != "committed" or run.problems():
            raise TxlibError(f"the measuring run did not commit cleanly: {run.summary()}")
        return dict(run.fsyncs)


@cache
def measured_fsyncs(participants: int) -> tuple[dict[str, int], dict[str, int]]:
    """``(first, each_later)``: each node's fsyncs for the first committed transfer of a
    fresh system, and for each transfer after it (two transfers minus one)."""
    first = fsyncs_of_transfers(participants, 1)
    two = fsyncs_of_transfers(participants, 2)
    return first, {n: two[n] - first[n] for n in two}


def _by_node(counts: dict[str, int]) -> str:
    return ", ".join(f"{n} {c}" for n, c in counts.items())


@register("real-fsyncs-per-commit")
def _fsyncs_per_commit() -> Exercise:
    def check(answer: Any) -> Feedback:
        if not callable(answer):
            return Feedback(False, "answer with a function of n (the number of participants) "
                                   "that returns a whole number, e.g. lambda n: 3 * n")
        fn: Callable[[int], Any] = answer
        for n in FSYNC_SIZES:
            predicted = fn(n)
            if not isinstance(predicted, int) or isinstance(predicted, bool):
                return Feedback(False, f"for n={n} your function returned {predicted!r}; "
                                       "return a whole number of fsyncs")
            first, later = measured_fsyncs(n)
            total = sum(later.values())
            if predicted == total:
                continue
            if predicted == sum(first.values()):
                return Feedback(False, (
                    f"for N={n} you predicted {predicted}, which is what the FIRST transfer "
                    f"of a fresh system asks for ({_by_node(first)}). Every later transfer "
                    f"asks for {total}. What does the coordinator fsync only once, when it "
                    "creates its log file?"))
            return Feedback(False, (
                f"for N={n} you predicted {predicted}; each transfer on a running system "
                f"asks for {total} fsyncs. Which records does 2PC force, on which node? "
                "(One forced record is one fsync.)"))
        n = FSYNC_SIZES[-1]
        first, later = measured_fsyncs(n)
        return Feedback(True, (
            f"your formula matches the real nodes for N = {FSYNC_SIZES[0]} to {n}. For "
            f"N={n}, each transfer: {_by_node(later)}: PREPARED and COMMITTED at each "
            "participant (one SQLite commit with synchronous=FULL each, one fsync of its "
            "write-ahead log) and the coordinator's COMMIT; END is lazy and reaches the disk "
            f"with the next COMMIT. The first transfer of a fresh system asks for "
            f"{sum(first.values())}: the coordinator also fsyncs its folder once, when it "
            "creates its log file, so that the file itself survives a crash."))

    return Exercise(
        name="real-fsyncs-per-commit",
        prompt="A running real system with N SQLite participants commits one transfer after "
               "another. How many fsyncs does each committed transfer cost, counting every "
               "node? Answer with a function of n; the checker counts the fsyncs that real "
               "nodes ask for, for N = 2 to 4.",
        checker=check,
        hints=(
            "One forced log record is one fsync. Which records does 2PC force (lesson 02)?",
            "A lazy record costs no fsync of its own: it reaches the disk with the next "
            "forced write.",
            "Per participant: PREPARED and COMMITTED. At the coordinator: COMMIT.",
        ),
        answer="lambda n: 2 * n + 1: each participant forces PREPARED and COMMITTED (one "
               "fsync each: SQLite commits the row change and the log record together and "
               "fsyncs its write-ahead log), the coordinator forces COMMIT, and END is lazy. "
               "These are lesson 02's 2N+1 forced writes, now real fsyncs. The first transfer "
               "of a fresh system costs one more: the coordinator fsyncs the folder of the "
               "log file it has just created.",
        example=lambda n: 2 * n + 1,
    )
