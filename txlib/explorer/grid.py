"""Fault placement under the timed scheduler: the fault grid ("can it get worse?" is
:mod:`txlib.explorer.worse`, which uses the same candidates).

The explorer (:mod:`txlib.explorer.worlds`) ignores time and tries every interleaving.
This module keeps the scenario's own timing and asks a narrower, very concrete
question: *what if one more fault happened here?* Every candidate is an ordinary
scenario (the original plus fault records), run by the normal seeded scheduler, so each
result replays exactly, opens in the lab and shares as JSON.

- :func:`fault_grid`: for each step of a run (rows) and each single fault (columns:
  crash each node right after that step, lose the message sent to each node in that
  step), the outcome in the protocol's own words. ``grid.table()`` is a rich table for
  the console, ``grid.html()`` a static table; :func:`txlib.fault_grid` adds
  ``grid.widget()``, an ipywidgets grid where clicking a cell opens that run in the lab.
- :func:`txlib.explorer.worse.worse`: breadth first over added faults (one, then two,
  ... up to ``budget``),
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
from dataclasses import dataclass
from html import escape
from typing import Any

from ..engine.faults import Fault, crash, drop
from ..engine.records import TraceEvent
from ..errors import TxlibError, bad_choice, shown
from ..presets import NAMED_SCENARIOS
from ..properties.outcomes import BROKEN, SEVERITY, SYMBOLS
from ..protocols import PROTOCOLS, get_protocol
from ..simulation.branches import branch_runs
from ..simulation.run import Run
from ..simulation.scenario import Scenario

# A grid's budget: at most this many cells (rows x columns, one run per fault), and runs
# adding up to at most this many steps. Both are counts, so a grid is refused the same
# way on every machine; the largest preset grid (paxos-commit-f2-three-down) has 2,682
# cells and runs of about 240,000 steps in all, which take a few seconds.
MAX_GRID_CELLS = 4_000
MAX_GRID_STEPS = 500_000


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
        pad = "padding:2px 6px"  # cells apart, so that headers do not run together
        head = "".join(f'<th style="{pad}">{escape(c)}</th>' for c in self.columns)
        rows = []
        for step, label, row in zip(self.steps, self.labels, self.cells, strict=True):
            tds = []
            for c in row:
                worst = c.worst
                if worst is None:
                    tds.append(f'<td title="{escape(c.note)}" '
                               f'style="{pad};opacity:.4;text-align:center">·</td>')
                else:
                    sym, _, colour = symbols[worst]
                    tip = escape(f"{c.fault.describe() if c.fault else ''}: {worst}. {c.note}")
                    tds.append(f'<td title="{tip}" style="{pad};color:{colour};'
                               f'text-align:center">{sym}</td>')
            rows.append(f'<tr><td style="{pad}">{step}</td><td style="{pad}">{escape(label)}'
                        f"</td>{''.join(tds)}</tr>")
        legend = " ".join(f'<span style="color:{c}">{s}</span> {escape(o)}'
                          for o, (s, _, c) in symbols.items())
        body = "".join(rows)
        return (f'<table class="txgrid" style="font-size:12px"><tr><th style="{pad}">step</th>'
                f'<th style="{pad}">what happens in it</th>{head}</tr>{body}</table>'
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
        if target not in PROTOCOLS:
            raise bad_choice("protocol or named scenario", target,
                             [*PROTOCOLS, *NAMED_SCENARIOS])
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
    (a blocked run can go on for many steps of retries).

    A grid of more than ``MAX_GRID_CELLS`` cells, or whose runs add up to more than
    ``MAX_GRID_STEPS`` steps, is refused with a TxlibError saying how to narrow it."""
    for name, flag in (("crashes", crashes), ("drops", drops)):
        if not isinstance(flag, bool):
            raise TxlibError(f"{name} must be True or False, got {shown(flag)}")
    if not (crashes or drops):
        raise TxlibError("a fault grid needs crashes=True, drops=True or both")
    if max_steps is not None and (not isinstance(max_steps, int) or isinstance(max_steps, bool)
                                  or max_steps < 0):
        raise TxlibError(f"max_steps must be a whole number of steps, 0 or more (or None), "
                         f"got {shown(max_steps)}")
    base_scenario = _as_scenario(scenario)
    started = time.perf_counter()
    base = base_scenario.run()
    if isinstance(scenario, Run) and scenario.recorded and (
            base.trace.to_jsonl() != scenario.trace.to_jsonl()):
        # a run recorded by real processes or found by the explorer: its scenario replays
        # to another run, and a grid of that one would read as a grid of this one
        raise TxlibError(
            "this run was recorded (by real processes or the explorer), and its scenario "
            "does not replay it: the replay is another run. A fault grid replays a "
            "scenario with one more fault, so it cannot grid this run; grid the replay "
            "with txlib.fault_grid(run.scenario), or open this run in txlib.lab(run)")
    nodes = base.nodes
    last = base.steps if max_steps is None else min(base.steps, max_steps)
    steps = tuple(range(0, last + 1))
    sends = _sends_by_step(base.trace)
    columns: list[str] = []
    if crashes:
        columns += [f"crash {n}" for n in nodes]
    if drops:
        columns += [f"drop → {n}" for n in nodes]
    # Each cell is (step, column, fault or None, note); the faults' runs come after. A
    # grid too big to make is planned only one row past what fits (to say what does).
    fits = MAX_GRID_CELLS // len(columns)
    planned: list[list[tuple[int, str, Fault | None, str]]] = []
    down_after = _down_after(base.trace, min(last, fits) + 1)
    for k in steps[:fits + 1]:
        row: list[tuple[int, str, Fault | None, str]] = []
        if crashes:
            for n in nodes:
                if n in down_after[k]:
                    row.append((k, f"crash {n}", None, f"{n} is already down"))
                    continue
                row.append((k, f"crash {n}", crash(n, at_step=k),
                            f"{n} crashes right after step {k}"))
        if drops:
            for n in nodes:
                sent = sends.get((k, n), [])
                if not sent:
                    row.append((k, f"drop → {n}", None, f"nothing is sent to {n} in step {k}"))
                    continue
                m = sent[0].message
                assert m is not None
                more = f" (the first of {len(sent)})" if len(sent) > 1 else ""
                row.append((k, f"drop → {n}", drop(m.type, src=m.src, dst=m.dst, at_step=k - 1),
                            f"{m.type} from {m.src} to {n}, sent in step {k}, is lost{more}"))
        planned.append(row)
    _check_size(base, len(steps), len(columns), planned, crashes and drops)
    cells = _cells(base_scenario, base, planned)
    labels = tuple(step_label(base.trace, k) for k in steps)
    return FaultGrid(base_scenario, base, steps, labels, tuple(columns), cells,
                     time.perf_counter() - started)


def _check_size(base: Run, rows: int, columns: int,
                planned: list[list[tuple[int, str, Fault | None, str]]], both: bool) -> None:
    """A TxlibError, before any fault's run, if a grid of ``rows`` x ``columns`` has
    more than ``MAX_GRID_CELLS`` cells or its runs would add up to more than
    ``MAX_GRID_STEPS`` steps (each run about as long as the base run), saying how to
    narrow it. ``planned``: its first rows, at least one more than fit."""
    runs = [sum(fault is not None for _, _, fault, _ in row) for row in planned]
    guess = sum(runs) * base.steps
    if rows * columns > MAX_GRID_CELLS:
        size = (f"{rows * columns:,} cells, one run each; the limit is "
                f"{MAX_GRID_CELLS:,} cells")
    elif guess > MAX_GRID_STEPS:
        size = (f"{sum(runs):,} runs with a fault, each about as long as the scenario's own "
                f"run of {base.steps:,} steps: about {guess:,} steps in all; the limit is "
                f"{MAX_GRID_STEPS:,}")
    else:
        return
    # The most rows that fit on both counts, with room to spare for runs that a fault
    # makes longer than the scenario's own.
    fit = total = 0
    for made in runs:
        total += made
        if (fit + 1) * columns > MAX_GRID_CELLS or total * base.steps > MAX_GRID_STEPS // 2:
            break
        fit += 1
    ways = [f"max_steps={fit - 1} (the first {fit} rows)"] if fit else []
    if both:
        ways.append("crashes=False or drops=False (half the columns)")
    ways.append(f"a scenario with fewer nodes (this one has {len(base.nodes)})")
    if base.stopped_by.startswith(("horizon=", "max_steps=")):
        ways.append(f"a shorter run (this one goes on until its option {base.stopped_by}: "
                    "a smaller horizon or max_steps)")
    raise TxlibError(f"a fault grid of {rows:,} rows (steps 0 to {rows - 1:,}) x {columns} "
                     f"columns is too big: {size}. Narrow it: {', '.join(ways[:-1])} or "
                     f"{ways[-1]}")


def _too_many_steps(done: int, runs: int, longest: int, base: Run, rows: int) -> TxlibError:
    """The error for a grid whose runs add up to more than ``MAX_GRID_STEPS`` steps."""
    half = max(1, rows // 2)
    return TxlibError(
        f"this fault grid's runs add up to more than {MAX_GRID_STEPS:,} steps after "
        f"{done:,} of its {runs:,} runs: a fault makes some runs much longer than the "
        f"scenario's own ({longest:,} steps, not {base.steps:,}; a run goes on until its "
        f"option horizon or max_steps). Narrow it: shorter runs (a smaller option horizon "
        f"or max_steps for the scenario) or fewer rows (max_steps={half - 1} keeps {half} "
        f"of the {rows:,})")


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


def _cells(base: Scenario, base_run: Run,
           planned: list[list[tuple[int, str, Fault | None, str]]],
           ) -> tuple[tuple[Cell, ...], ...]:
    """The grid's cells: each fault's run judged (:func:`branch_runs`, sharing the base
    run's steps before the fault; judged only, so without volatile states: a cell's
    :attr:`Cell.run` replays it in full), each run let go once its cell is made."""
    faulty = [(k, column, fault, note) for row in planned for k, column, fault, note in row
              if fault is not None]
    scenarios = [base.with_faults(fault) for _, _, fault, _ in faulty]
    made: dict[tuple[int, str], Cell] = {}
    steps = longest = 0
    runs = branch_runs(base, scenarios)
    try:
        for i, run in runs:
            if isinstance(run, TxlibError):
                raise run
            steps += run.steps
            longest = max(longest, run.steps)
            if steps > MAX_GRID_STEPS:
                raise _too_many_steps(len(made) + 1, len(faulty), longest, base_run,
                                      len(planned))
            k, column, fault, note = faulty[i]
            assert fault is not None
            if fault.kind == "drop" and _lost(run, fault.src or "", fault.dst or "",
                                              fault.type or "") is None:
                note += " (no such message was sent in this run)"
            made[(k, column)] = Cell(k, column, fault, note, scenarios[i], run.outcome,
                                     tuple(v.invariant for v in run.violations))
    finally:
        # A generator: end it now (it pauses the cycle collector and holds the base
        # run's world), not when an error's traceback is let go.
        close = getattr(runs, "close", None)
        if close is not None:
            close()
    return tuple(tuple(made[(k, column)] if fault is not None else Cell(k, column, None, note)
                       for k, column, fault, note in row) for row in planned)
