"""Can it get worse? The fewest added faults that make a run block or break a rule.

Under the *timed* scheduler: each candidate fault (a crash, a lost message or a
partition after any step) is added to the scenario and the run replayed; the first
budget of faults whose run blocks or breaks an invariant is returned. The lab's
"can it get worse?" button uses :func:`find_worse`.
"""

from __future__ import annotations

import itertools
import math
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, replace

from ..engine.collector import collector_paused
from ..engine.faults import Fault, crash, drop, partition
from ..errors import TxlibError, bad_choice, choices, shown
from ..protocols import get_protocol
from ..simulation.branches import branch_runs
from ..simulation.run import Run
from ..simulation.scenario import Scenario
from .grid import _as_scenario, _down_after, severity

# The most steps the runs of one search may add up to (each run counted at its own
# length). A budget in steps, not seconds, gives the same answer on any machine, and it
# stops a search whose runs are long (a large horizon, many participants) after a few
# seconds instead of many minutes. The largest search of a preset
# (paxos-commit-f2-three-down, 3,000 runs) adds up to about 570,000 steps.
MAX_TOTAL_STEPS = 600_000
# A search's progress callback (the lab's message) is told the runs tried so far, at
# most once in this many seconds.
Progress = Callable[[int], None]
PROGRESS_EVERY = 0.25


# --- can it get worse? --------------------------------------------------------------------
@dataclass(frozen=True, eq=False)
class Worse:
    """What :func:`find_worse` found: the scenario with the added ``faults``, its run,
    how bad it is (1 blocked, 2 an invariant broken), the step where it goes wrong
    (put the lab's cursor there) and how many runs the search tried."""

    scenario: Scenario
    run: Run
    faults: tuple[Fault, ...]
    severity: int
    step: int
    runs: int

    @property
    def reason(self) -> str:
        if self.run.violations:
            return str(self.run.violations[0])
        stuck = [p for p in self.run.participants
                 if self.run.decisions.get(p) is None and p not in self.run.down]
        verb = "never decides" if len(stuck) == 1 else "never decide"
        return f"{self.run.outcome}: {_named(stuck)} {verb}"


def _named(names: Sequence[str], shown: int = 4) -> str:
    """``names`` in a sentence: "p1", "p1 and p2", "p1, p2 and p3", and past ``shown``
    of them "p1, p2, p3 and 61 others" (a lab message stays one line)."""
    if len(names) > shown:
        return f"{', '.join(names[:shown - 1])} and {len(names) - shown + 1} others"
    if len(names) < 2:
        return "".join(names)
    return f"{', '.join(names[:-1])} and {names[-1]}"


def _candidates(run: Run, after: int, kinds: Sequence[str]) -> Iterator[Fault]:
    """Single faults to add to ``run``'s scenario, happening after step ``after``, one
    at a time (a search that stops at its run limit makes only those it tries)."""
    nodes = run.nodes
    trace = run.trace
    down = _down_after(trace, run.steps)
    if "crash" in kinds:
        for k in range(after, run.steps):
            yield from (crash(n, at_step=k) for n in nodes if n not in down[k])
        seen: set[str] = set()
        for e in trace:
            if e.step <= after or e.node is None or e.node in e.down:
                continue
            if e.kind == "send" and e.message is not None:
                when = f"{e.node} sends {e.message.type} to {e.message.dst}"
            elif e.kind == "log":
                when = f"{e.node} logs {e.detail.split(' ')[0]}"
            else:
                continue
            if when not in seen:
                seen.add(when)
                yield crash(e.node, when=when)
    if "drop" in kinds:
        for e in trace:
            if e.kind == "send" and e.message is not None and e.step > after:
                m = e.message
                yield drop(m.type, src=m.src, dst=m.dst, at_step=e.step - 1)
    if "partition" in kinds:
        from .worlds import _bipartitions

        splits = _bipartitions(nodes)
        for k in range(after, run.steps):
            yield from (partition(*split, at_step=k) for split in splits)


def _bad_step(run: Run, added: Sequence[Fault]) -> int:
    """The step where ``run`` goes wrong: its first violation, else the step where the
    last of the added faults took effect."""
    if run.violations:
        return run.violations[0].step
    steps = [0]
    for f in added:
        for e in run.trace:
            if (f.kind == "crash" and e.kind == "crash" and e.node == f.node) or (
                f.kind == "partition" and e.kind == "partition") or (
                f.kind == "drop" and e.kind == "drop" and e.detail.startswith("lost (fault")
                and e.message is not None and e.message.type == f.type
                and e.message.dst == f.dst):
                steps.append(e.step)
                break
    return max(steps)


@dataclass(frozen=True, eq=False)
class WorseSearch:
    """What :func:`search_worse` did: the worse run it found (None: none among the runs
    it tried), how many runs it tried, and whether it tried every candidate of the
    levels it searched (False: ``max_runs``, ``max_total_steps`` or ``max_seconds``
    stopped it first, so a worse run may still exist among the candidates it never
    tried). ``steps``: what the runs it made add up to; ``stopped_by``: the limit that
    stopped it ("max_runs", "max_total_steps" or "max_seconds"; None if complete)."""

    found: Worse | None
    runs: int
    complete: bool
    steps: int = 0
    stopped_by: str | None = None


def find_worse(
    scenario: Scenario | Run | str,
    budget: int = 1,
    *,
    kinds: Sequence[str] = ("crash", "drop", "partition"),
    max_runs: int = 3000,
    max_seconds: float = math.inf,
    max_total_steps: int = MAX_TOTAL_STEPS,
) -> Worse | None:
    """Search added faults, fewest first, for a run worse than ``scenario``'s; see
    :func:`worse`. Returns the details, or None if nothing within the budget."""
    return search_worse(scenario, budget, kinds=kinds, max_runs=max_runs,
                        max_seconds=max_seconds, max_total_steps=max_total_steps).found


def search_worse(
    scenario: Scenario | Run | str,
    budget: int = 1,
    *,
    kinds: Sequence[str] = ("crash", "drop", "partition"),
    max_runs: int = 3000,
    max_seconds: float = math.inf,
    max_total_steps: int = MAX_TOTAL_STEPS,
    progress: Progress | None = None,
) -> WorseSearch:
    """:func:`find_worse`, saying also how far the search went (see
    :class:`WorseSearch`). ``progress``, if given, is called with the number of runs
    tried so far every quarter of a second or so while the search lasts (the lab shows
    it); it changes nothing the search finds."""
    if progress is not None and not callable(progress):
        raise TxlibError(f"progress must be a function of the runs tried, got "
                         f"{shown(progress)}")
    base = _as_scenario(scenario)
    if not isinstance(budget, int) or isinstance(budget, bool) or budget < 1:
        raise TxlibError(f"budget must be a whole number of faults, 1 or more, got {budget!r}")
    valid = ("crash", "drop", "partition")
    if isinstance(kinds, str) or not isinstance(kinds, (list, tuple, set, frozenset)):
        raise TxlibError(f"kinds must be a list of fault kinds ({choices(valid)}), "
                         f"got {shown(kinds)}")
    for kind in kinds:
        if kind not in valid:
            raise bad_choice("fault kind", kind, valid)
    if not kinds:  # no fault to try: 'nothing can get worse' would be no answer at all
        raise TxlibError(f"kinds names no fault kind to try; valid choices: {choices(valid)}")
    if not isinstance(max_runs, int) or isinstance(max_runs, bool) or max_runs < 1:
        raise TxlibError(f"max_runs must be a whole number of runs, 1 or more, got "
                         f"{shown(max_runs)}")
    if (not isinstance(max_total_steps, int) or isinstance(max_total_steps, bool)
            or max_total_steps < 1):
        raise TxlibError(f"max_total_steps must be a whole number of steps, 1 or more, got "
                         f"{shown(max_total_steps)}")
    if isinstance(max_seconds, bool) or not isinstance(max_seconds, (int, float)) or not (
            max_seconds > 0):
        raise TxlibError(f"max_seconds must be a positive number of seconds (inf: no limit), "
                         f"got {shown(max_seconds)}")
    get_protocol(base.protocol)
    started = time.perf_counter()
    base_run = base.run(volatile=False)  # judged only: see the found run's replay below
    current = severity(base_run)
    if current >= 2:
        return WorseSearch(None, 0, True)  # an invariant is already broken: nothing is worse
    # A candidate's run is freed when the next one starts (no reference cycles), so the
    # collector waits until the search ends instead of going through each run's trace.
    with collector_paused():
        search = _search(base, base_run, current, budget, kinds,
                         _Limits(max_runs, max_total_steps, started + max_seconds,
                                 progress=progress, told=started))
    found = search.found
    if found is None:
        return search
    what = "; ".join(f.describe() for f in found.faults)
    described = replace(
        found.scenario,
        name=(base.name or base.protocol) + "-worse",
        description=f"Can it get worse? Yes: {what}. {found.reason}.",
    )
    # The run found, again with every node's volatile state, to show in full.
    found = replace(found, scenario=described, run=described.run(), runs=search.runs)
    return replace(search, found=found)


Added = tuple[Fault, ...]  # the faults a candidate adds to the scenario's own


@dataclass
class _Limits:
    """A search's limits, the steps its runs have added up to and the runs tried so far
    (those that raised not counted), and whom to tell how far it is (``progress``, at
    most every :data:`PROGRESS_EVERY` seconds)."""

    max_runs: int
    max_total_steps: int
    deadline: float
    steps: int = 0
    runs: int = 0
    progress: Progress | None = None
    told: float = 0.0

    def counted(self, run: Run) -> None:
        """Count ``run``, just made, and tell ``progress`` if it is time."""
        self.steps += run.steps
        self.runs += 1
        if self.progress is not None:
            now = time.perf_counter()
            if now - self.told >= PROGRESS_EVERY:
                self.told = now
                self.progress(self.runs)

    def reached(self, runs: int) -> str | None:
        """The limit reached after ``runs`` runs (None: the search may go on)."""
        if runs >= self.max_runs:
            return "max_runs"
        if self.steps >= self.max_total_steps:
            return "max_total_steps"
        if time.perf_counter() > self.deadline:
            return "max_seconds"
        return None


def _search(base: Scenario, base_run: Run, current: int, budget: int,
            kinds: Sequence[str], limits: _Limits) -> WorseSearch:
    """:func:`search_worse`'s search, level by level (one more added fault each): the
    worst, earliest run found at the first level that has one.

    The candidates that add one fault to the same run are run in batches
    (:func:`branch_runs`: sharing the steps before each fault), then looked at in
    their order, as if run one after another: the same runs are tried, counted and
    ranked, and the answer is the same. Every run made counts towards
    ``max_total_steps`` (at its own length), in the order :func:`branch_runs` makes
    them, so where that budget stops a search does not depend on the machine."""
    runs = 0
    stopped: str | None = None
    level: list[tuple[Added, Run, int]] = [((), base_run, 0)]
    tried: set[frozenset[Fault]] = set()
    for depth in range(1, budget + 1):
        # The runs a level keeps are where the next level's candidates come from; the
        # last level keeps none (thousands of traces that would only slow the collector).
        keep = depth < budget
        best: tuple[tuple[int, int, int], Worse] | None = None
        next_level: list[tuple[Added, Run, int]] = []
        for added, run, after in level:
            parent = replace(base, faults=(*base.faults, *added))
            todo = _candidates(run, after, kinds)
            held: list[Fault] = []  # the next candidate, when a batch was full
            while True:
                room = limits.max_runs - runs if limits.reached(runs) is None else 0
                batch, held = _batch(itertools.chain(held, todo), added, tried, room)
                children = [replace(base, faults=(*base.faults, *faults)) for faults in batch]
                judged = _judged(parent, children, current, keep, limits)
                for faults, child, outcome in zip(batch, children, judged, strict=False):
                    if outcome is None:  # a run that raised: not counted
                        continue
                    runs += 1
                    bad, result = outcome
                    if bad > current:
                        assert result is not None
                        step = _bad_step(result, faults)
                        rank = (-bad, step, runs)
                        if best is None or rank < best[0]:
                            best = (rank, Worse(child, result, faults, bad, step, runs))
                    elif keep:
                        assert result is not None
                        next_level.append((faults, result, faults[-1].at_step or after))
                if len(judged) < len(batch):  # the steps or the deadline ran out
                    stopped = stopped or limits.reached(runs) or "max_seconds"
                    break
                if not held:  # every candidate of this run is tried
                    break
                # Candidates are left: go on only if some runs of the batch raised
                # (they do not count), as one run after another would.
                reached = limits.reached(runs)
                if reached is not None:
                    stopped = stopped or reached
                    break
        if best is not None:
            return WorseSearch(best[1], runs, stopped is None, limits.steps, stopped)
        level = next_level
    return WorseSearch(None, runs, stopped is None, limits.steps, stopped)


def _batch(todo: Iterator[Fault], added: Added, tried: set[frozenset[Fault]],
           room: int) -> tuple[list[Added], list[Fault]]:
    """Up to ``room`` candidates from ``todo`` not tried before (each: ``added`` plus
    one fault), now tried; and the next such fault if ``todo`` has more ([] if not)."""
    batch: list[Added] = []
    for fault in todo:
        key = frozenset((*added, fault))
        if key in tried:
            continue
        if len(batch) >= room:
            return batch, [fault]
        tried.add(key)
        batch.append((*added, fault))
    return batch, []


def _judged(parent: Scenario, children: list[Scenario], current: int,
            keep: bool, limits: _Limits) -> list[tuple[int, Run | None] | None]:
    """For each of ``children`` in order, until the deadline or until the runs made
    reach ``limits.max_total_steps`` (each counted in ``limits.steps``): its severity
    and its run (kept only if it is worse than ``current``, or if ``keep``), or None if
    its run raised."""
    done: dict[int, tuple[int, Run | None] | None] = {}
    made = branch_runs(parent, children, limits.deadline)
    try:
        for i, result in made:
            if isinstance(result, TxlibError):
                done[i] = None
                continue
            limits.counted(result)
            bad = severity(result)
            done[i] = (bad, result if bad > current or keep else None)
            if limits.steps >= limits.max_total_steps:
                break
    finally:
        close = getattr(made, "close", None)  # a generator: release the parent's world now
        if close is not None:
            close()
    out = []
    for i in range(len(children)):
        if i not in done:
            break
        out.append(done[i])
    return out


def worse(
    scenario: Scenario | Run | str,
    budget: int = 1,
    *,
    kinds: Sequence[str] = ("crash", "drop", "partition"),
    max_runs: int = 3000,
    max_seconds: float = math.inf,
    max_total_steps: int = MAX_TOTAL_STEPS,
) -> Scenario | None:
    """Can it get worse? The scenario plus the fewest added faults (at most ``budget``)
    whose run blocks or breaks an invariant when ``scenario``'s run does not (or breaks
    an invariant when it only blocks), the shortest such run first: the one that goes
    wrong at the earliest step, an invariant violation before a block. None if nothing
    within the budget (``max_runs`` runs, runs adding up to ``max_total_steps`` steps,
    or ``max_seconds`` seconds: none by default, so that the answer is the same on
    every machine, as the lab's).

    The faults are ordinary fault records (crash after a step or in the middle of one,
    lose a message, partition the network after a step), so the returned scenario
    reproduces the run exactly under the normal timed scheduler.
    """
    found = find_worse(scenario, budget, kinds=kinds, max_runs=max_runs,
                       max_seconds=max_seconds, max_total_steps=max_total_steps)
    return None if found is None else found.scenario
