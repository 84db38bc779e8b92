"""Fault placement under the timed scheduler: the fault grid, and "can it get worse?".

The explorer (:mod:`txlib.explorer.worlds`) ignores time and tries every interleaving.
This module keeps the scenario's own timing and asks a narrower, very concrete
question: *what if one more fault happened here?* Every candidate is an ordinary
scenario (the original plus fault records), run by the normal seeded scheduler, so each
result replays exactly, opens in the lab and shares as JSON.

- :func:`fault_grid`: for each step of a run (rows) and each single fault (columns:
  crash each node right after that step, lose the message sent to each node in that
  step), the outcome: committed, aborted, blocked or inconsistent. ``grid.table()``
  is a rich table for the console, ``grid.html()`` a static table, ``grid.widget()``
  an ipywidgets grid where clicking a cell opens that run in the lab.
- :func:`worse`: breadth first over added faults (one, then two, ... up to ``budget``),
  the scenario with the fewest added faults whose run blocks or breaks an invariant
  (more than the scenario already does), and among those the shortest: the one that
  goes wrong at the earliest step. Candidates are the grid's faults plus crashes in the
  middle of a step (``when="X sends T to D"``, ``when="X logs R"``) and partitions
  (every split of the nodes into two groups) after each step.
"""

from __future__ import annotations

import io
import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, replace
from html import escape
from typing import Any

from ..engine.faults import Fault, crash, drop, partition
from ..engine.records import TraceEvent
from ..errors import TxlibError
from ..presets import NAMED_SCENARIOS
from ..properties.outcomes import BROKEN, SEVERITY, SYMBOLS
from ..protocols import get_protocol
from ..simulation.run import Run
from ..simulation.scenario import Scenario


def outcome_symbols(protocol: str) -> dict[str, tuple[str, str, str]]:
    """Each outcome of ``protocol``: (symbol, ASCII, colour), by the outcome's kind
    (the meaning never rests on colour alone)."""
    return {o: SYMBOLS[kind] for o, kind in get_protocol(protocol).outcomes.items()}


def severity(run: Run) -> int:
    """0: finished cleanly, 1: somebody waits (blocked, stuck), 2: a rule is broken."""
    if run.violations:
        return 2
    return SEVERITY[run.protocol.outcomes.get(run.outcome, BROKEN)]


def step_label(trace: Sequence[TraceEvent], step: int) -> str:
    """What happened in scheduler step ``step``, in a few words."""
    if step == 0:
        return "before the start"
    for e in trace:
        if e.step != step:
            continue
        if e.kind == "start":
            return "start"
        if e.kind == "deliver" and e.message is not None:
            return f"{e.node} receives {e.message.type} from {e.message.src}"
        if e.kind == "drop" and e.message is not None:
            return f"{e.message.type} to {e.message.dst} is lost"
        if e.kind == "timeout":
            return f"{e.node}: {e.detail} timeout"
        if e.kind in ("crash", "recover"):
            return f"{e.node} {'crashes' if e.kind == 'crash' else 'restarts'}"
        if e.kind in ("partition", "heal"):
            return e.detail
    return f"step {step}"


# --- the grid ----------------------------------------------------------------------------
@dataclass(frozen=True)
class Cell:
    """One fault placement: ``fault`` added to the scenario, and what came of it.

    ``note`` says what the fault hit (or why the cell is empty: ``fault`` is None).
    """

    step: int
    column: str
    fault: Fault | None
    note: str
    scenario: Scenario | None = None
    outcome: str | None = None
    violations: tuple[str, ...] = ()

    @property
    def run(self) -> Run:
        """The cell's run (replayed: each cell is an ordinary scenario)."""
        if self.scenario is None:
            raise TxlibError(f"no fault in this cell: {self.note}")
        return self.scenario.run()

    @property
    def worst(self) -> str | None:
        """The outcome, or "inconsistent" if an invariant broke."""
        if self.outcome is not None and self.violations:
            return "inconsistent"
        return self.outcome


@dataclass(frozen=True, eq=False)
class FaultGrid:
    """Step x fault -> outcome for one scenario; see the module docstring."""

    scenario: Scenario
    base: Run
    steps: tuple[int, ...]
    labels: tuple[str, ...]
    columns: tuple[str, ...]
    cells: tuple[tuple[Cell, ...], ...]  # cells[row][column]
    seconds: float

    def cell(self, step: int, column: str) -> Cell:
        """The cell for the fault ``column`` right after ``step``."""
        if step not in self.steps:
            raise TxlibError(f"no row for step {step}; steps are 0..{self.steps[-1]}")
        if column not in self.columns:
            raise TxlibError(f"no column {column!r}; columns: {', '.join(self.columns)}")
        return self.cells[self.steps.index(step)][self.columns.index(column)]

    def counts(self) -> Counter[str]:
        """How many cells ended each way (empty cells are not counted)."""
        return Counter(c.worst for row in self.cells for c in row if c.worst is not None)

    def table(self, ascii: bool = False) -> Any:
        """The grid as a rich Table (symbols and words, not colour alone)."""
        symbols = outcome_symbols(self.scenario.protocol)
        from rich.table import Table
        from rich.text import Text

        title = (f"{self.scenario.name or self.scenario.protocol}: one more fault "
                 f"(base run: {self.base.outcome})")
        table = Table(title=title, show_lines=False, pad_edge=False)
        table.add_column("step", justify="right")
        table.add_column("what happens in it", overflow="fold")
        for col in self.columns:
            table.add_column(col, justify="center")
        for step, label, row in zip(self.steps, self.labels, self.cells, strict=True):
            marks = []
            for c in row:
                worst = c.worst
                if worst is None:
                    marks.append(Text("·", style="dim"))
                else:
                    sym, asc, colour = symbols[worst]
                    marks.append(Text(asc if ascii else sym, style=f"bold {colour}"))
            table.add_row(str(step), Text(label), *marks)
        legend = "  ".join(f"{symbols[o][1 if ascii else 0]} {o}" for o in symbols)
        table.caption = legend + ("  . no such fault" if ascii else "  · no such fault")
        return table

    def __rich__(self) -> Any:
        return self.table()

    def text(self) -> str:
        """The grid as plain text (ASCII symbols)."""
        from rich.console import Console

        console = Console(width=200, record=True, color_system=None, file=_Null(),
                          force_jupyter=False, force_terminal=False)
        console.print(self.table(ascii=True))
        return console.export_text()

    def html(self) -> str:
        """A static HTML table (for pages where widgets do not run)."""
        symbols = outcome_symbols(self.scenario.protocol)
        head = "".join(f"<th>{escape(c)}</th>" for c in self.columns)
        rows = []
        for step, label, row in zip(self.steps, self.labels, self.cells, strict=True):
            tds = []
            for c in row:
                worst = c.worst
                if worst is None:
                    tds.append(f'<td title="{escape(c.note)}" style="opacity:.4">·</td>')
                else:
                    sym, _, colour = symbols[worst]
                    tip = escape(f"{c.fault.describe() if c.fault else ''}: {worst}. {c.note}")
                    tds.append(f'<td title="{tip}" style="color:{colour};text-align:center">'
                               f"{sym}</td>")
            rows.append(f"<tr><td>{step}</td><td>{escape(label)}</td>{''.join(tds)}</tr>")
        legend = " ".join(f'<span style="color:{c}">{s}</span> {escape(o)}'
                          for o, (s, _, c) in symbols.items())
        return (f'<table class="txgrid" style="font-size:12px"><tr><th>step</th>'
                f"<th>what happens in it</th>{head}</tr>{''.join(rows)}</table>"
                f"<div style='font-size:11px'>{legend} · no such fault</div>")

    def _repr_mimebundle_(self, **kwargs: Any) -> dict[str, Any]:
        return {"text/plain": self.text(), "text/html": self.html()}


class _Null(io.StringIO):
    """A file that forgets what is written to it (for rich's recording console)."""

    def write(self, text: str) -> int:
        return len(text)


def _as_scenario(target: Scenario | Run | str) -> Scenario:
    if isinstance(target, Run):
        return target.scenario
    if isinstance(target, Scenario):
        return target
    if isinstance(target, str):
        if target in NAMED_SCENARIOS:
            return NAMED_SCENARIOS[target]
        return Scenario(target)
    raise TxlibError(f"give a Scenario, a Run, a protocol or a named scenario, got {target!r}")


def _sends_by_step(trace: Sequence[TraceEvent]) -> dict[tuple[int, str], list[TraceEvent]]:
    out: dict[tuple[int, str], list[TraceEvent]] = {}
    for e in trace:
        if e.kind == "send" and e.message is not None:
            out.setdefault((e.step, e.message.dst), []).append(e)
    return out


def _lost(run: Run, src: str, dst: str, type_: str) -> TraceEvent | None:
    return next((e for e in run.trace if e.kind == "drop" and e.message is not None
                 and e.detail.startswith("lost (fault") and e.message.src == src
                 and e.message.dst == dst and e.message.type == type_), None)


def fault_grid(
    scenario: Scenario | Run | str,
    *,
    crashes: bool = True,
    drops: bool = True,
    max_steps: int | None = None,
) -> FaultGrid:
    """Try each single fault on ``scenario``: crash each node right after each step
    (row 0: before the start), and lose the message sent to each node in each step.
    Row ``k`` is scheduler step ``k`` of the base run. ``max_steps`` limits the rows
    (a blocked run can go on for many steps of retries)."""
    base_scenario = _as_scenario(scenario)
    started = time.perf_counter()
    base = base_scenario.run()
    nodes = base.nodes
    last = base.steps if max_steps is None else min(base.steps, max_steps)
    steps = tuple(range(0, last + 1))
    sends = _sends_by_step(base.trace)
    columns: list[str] = []
    if crashes:
        columns += [f"crash {n}" for n in nodes]
    if drops:
        columns += [f"drop → {n}" for n in nodes]
    rows: list[tuple[Cell, ...]] = []
    down_after = _down_after(base.trace, last + 1)
    for k in steps:
        row: list[Cell] = []
        if crashes:
            for n in nodes:
                if n in down_after[k]:
                    row.append(Cell(k, f"crash {n}", None, f"{n} is already down"))
                    continue
                f = crash(n, at_step=k)
                row.append(_cell(base_scenario, k, f"crash {n}", f,
                                 f"{n} crashes right after step {k}"))
        if drops:
            for n in nodes:
                sent = sends.get((k, n), [])
                if not sent:
                    row.append(Cell(k, f"drop → {n}", None,
                                    f"nothing is sent to {n} in step {k}"))
                    continue
                m = sent[0].message
                assert m is not None
                f = drop(m.type, src=m.src, dst=m.dst, at_step=k - 1)
                more = f" (the first of {len(sent)})" if len(sent) > 1 else ""
                cell = _cell(base_scenario, k, f"drop → {n}", f,
                             f"{m.type} from {m.src} to {n}, sent in step {k}, is lost{more}")
                row.append(cell)
        rows.append(tuple(row))
    labels = tuple(step_label(base.trace, k) for k in steps)
    return FaultGrid(base_scenario, base, steps, labels, tuple(columns), tuple(rows),
                     time.perf_counter() - started)


def _down_after(trace: Sequence[TraceEvent], last: int) -> list[frozenset[str]]:
    """Which nodes are down right after each step 0..last-1."""
    out = []
    i = 0
    down: frozenset[str] = frozenset()
    events = list(trace)
    for k in range(last):
        while i < len(events) and events[i].step <= k:
            down = events[i].down
            i += 1
        out.append(down)
    return out


def _cell(base: Scenario, k: int, column: str, fault: Fault, note: str) -> Cell:
    scenario = base.with_faults(fault)
    run = scenario.run()
    if fault.kind == "drop" and _lost(run, fault.src or "", fault.dst or "", fault.type or "") \
            is None:
        note += " (no such message was sent in this run)"
    return Cell(k, column, fault, note, scenario, run.outcome,
                tuple(v.invariant for v in run.violations))


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
        return f"{self.run.outcome}: {' and '.join(stuck)} {verb}"


def _candidates(run: Run, after: int, kinds: Sequence[str]) -> list[Fault]:
    """Single faults to add to ``run``'s scenario, happening after step ``after``."""
    nodes = run.nodes
    out: list[Fault] = []
    trace = run.trace
    down = _down_after(trace, run.steps)
    if "crash" in kinds:
        for k in range(after, run.steps):
            out.extend(crash(n, at_step=k) for n in nodes if n not in down[k])
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
                out.append(crash(e.node, when=when))
    if "drop" in kinds:
        for e in trace:
            if e.kind == "send" and e.message is not None and e.step > after:
                m = e.message
                out.append(drop(m.type, src=m.src, dst=m.dst, at_step=e.step - 1))
    if "partition" in kinds:
        from .worlds import _bipartitions

        splits = _bipartitions(nodes)
        for k in range(after, run.steps):
            out.extend(partition(*split, at_step=k) for split in splits)
    return out


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


def find_worse(
    scenario: Scenario | Run | str,
    budget: int = 1,
    *,
    kinds: Sequence[str] = ("crash", "drop", "partition"),
    max_runs: int = 3000,
    max_seconds: float = 10.0,
) -> Worse | None:
    """Search added faults, fewest first, for a run worse than ``scenario``'s; see
    :func:`worse`. Returns the details, or None if nothing within the budget."""
    base = _as_scenario(scenario)
    if not isinstance(budget, int) or isinstance(budget, bool) or budget < 1:
        raise TxlibError(f"budget must be a whole number of faults, 1 or more, got {budget!r}")
    valid = ("crash", "drop", "partition")
    for kind in kinds:
        if kind not in valid:
            raise TxlibError(f"unknown fault kind {kind!r}; valid choices: {', '.join(valid)}")
    get_protocol(base.protocol)
    started = time.perf_counter()
    base_run = base.run()
    current = severity(base_run)
    if current >= 2:
        return None  # an invariant is already broken: nothing is worse
    runs = 0
    level: list[tuple[tuple[Fault, ...], Run, int]] = [((), base_run, 0)]
    tried: set[frozenset[Fault]] = set()
    for _ in range(budget):
        best: tuple[tuple[int, int, int], Worse] | None = None
        next_level: list[tuple[tuple[Fault, ...], Run, int]] = []
        for added, run, after in level:
            for fault in _candidates(run, after, kinds):
                key = frozenset((*added, fault))
                if key in tried:
                    continue
                tried.add(key)
                if runs >= max_runs or time.perf_counter() - started > max_seconds:
                    break
                faults = (*added, fault)
                candidate = replace(base, faults=(*base.faults, *faults))
                try:
                    result = candidate.run()
                except TxlibError:
                    continue
                runs += 1
                bad = severity(result)
                if bad > current:
                    step = _bad_step(result, faults)
                    rank = (-bad, step, runs)
                    if best is None or rank < best[0]:
                        best = (rank, Worse(candidate, result, faults, bad, step, runs))
                else:
                    next_level.append((faults, result, fault.at_step or after))
        if best is not None:
            found = best[1]
            what = "; ".join(f.describe() for f in found.faults)
            described = replace(
                found.scenario,
                name=(base.name or base.protocol) + "-worse",
                description=f"Can it get worse? Yes: {what}. {found.reason}.",
            )
            return replace(found, scenario=described, runs=runs)
        level = next_level
    return None


def worse(
    scenario: Scenario | Run | str,
    budget: int = 1,
    *,
    kinds: Sequence[str] = ("crash", "drop", "partition"),
    max_runs: int = 3000,
    max_seconds: float = 10.0,
) -> Scenario | None:
    """Can it get worse? The scenario plus the fewest added faults (at most ``budget``)
    whose run blocks or breaks an invariant when ``scenario``'s run does not (or breaks
    an invariant when it only blocks), the shortest such run first: the one that goes
    wrong at the earliest step, an invariant violation before a block. None if nothing
    within the budget (``max_runs`` runs or ``max_seconds`` seconds).

    The faults are ordinary fault records (crash after a step or in the middle of one,
    lose a message, partition the network after a step), so the returned scenario
    reproduces the run exactly under the normal timed scheduler.
    """
    found = find_worse(scenario, budget, kinds=kinds, max_runs=max_runs,
                       max_seconds=max_seconds)
    return None if found is None else found.scenario
