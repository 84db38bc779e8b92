"""The console view of a run: a coloured trace table and a summary panel, via rich.

Every event kind has a colour *and* a symbol (and its name), so nothing relies on colour
alone. The symbols fall back to plain ASCII when the console cannot encode Unicode.
User-provided strings (node names, payloads, descriptions) are always wrapped in
:class:`rich.text.Text`, so markup such as ``[bold]`` in a node name is shown literally.

>>> from txlib.viz.console import show
>>> show(txlib.simulate("2pc"))  # doctest: +SKIP
"""

from __future__ import annotations

import sys
from collections.abc import Iterable, Sequence
from typing import NamedTuple

from rich import box
from rich.console import Console, ConsoleOptions, Group, RenderableType, RenderResult
from rich.measure import Measurement
from rich.panel import Panel
from rich.table import Table
from rich.text import Text

from ..engine.records import TraceEvent
from ..engine.trace import check_limit
from ..errors import TxlibError, shown
from ..simulation.run import Run


class Mark(NamedTuple):
    """How one kind of thing is drawn: a Unicode symbol, its ASCII fallback and a style."""

    symbol: str
    ascii: str
    style: str


# Symbols are single-width characters outside the emoji set, so columns line up in
# common terminals; the ASCII forms are used when the console's encoding is not UTF-8.
KIND_MARKS: dict[str, Mark] = {
    "start": Mark("▸", ">>", "bold"),
    "send": Mark("→", "->", "cyan"),
    "deliver": Mark("✓", "ok", "green"),
    "drop": Mark("✗", "xx", "bold red"),
    "duplicate": Mark("⧉", "x2", "magenta"),
    "timeout": Mark("⧗", "T!", "yellow"),
    "crash": Mark("↯", "!!", "bold white on red"),
    "recover": Mark("↻", "^^", "bold green"),
    "partition": Mark("‖", "||", "bold magenta"),
    "heal": Mark("⇄", "<>", "bold cyan"),
    "log": Mark("✎", "lg", "blue"),
    "state": Mark("●", "st", ""),
    "vote": Mark("☐", "vt", "bright_yellow"),
    "decision": Mark("★", "**", "bold"),
    "lock": Mark("■", "L+", "dim"),
    "unlock": Mark("□", "L-", "dim"),
    "effect": Mark("◆", "fx", "bold cyan"),
}
_UNKNOWN = Mark("·", ".", "")

OUTCOME_MARKS: dict[str, Mark] = {
    "committed": Mark("✓", "[ok]", "bold green"),
    "completed": Mark("✓", "[ok]", "bold green"),
    "confirmed": Mark("✓", "[ok]", "bold green"),
    "aborted": Mark("✗", "[x]", "bold yellow"),
    "compensated": Mark("↶", "[<-]", "bold yellow"),
    "cancelled": Mark("✗", "[x]", "bold yellow"),
    "blocked": Mark("⊘", "[..]", "bold magenta"),
    "stuck": Mark("⊘", "[..]", "bold magenta"),
    "inconsistent": Mark("≠", "[!=]", "bold white on red"),
}
OUTCOME_WORDS: dict[str, str] = {
    "committed": "every live participant committed",
    "aborted": "every live participant aborted",
    "blocked": "some participant is stuck in doubt: it cannot decide, and holds its locks",
    "completed": "every step of the saga took effect",
    "compensated": "the steps that took effect were compensated",
    "stuck": "the saga did not finish: a compensation failed for good, or it was cut off; "
             "an operator must look",
    "confirmed": "every participant confirmed its reservation",
    "cancelled": "every reservation was cancelled",
    "inconsistent": "a safety rule is broken (see below)",
}
_DECISION_STYLES = {"commit": "green", "abort": "yellow"}


class Marked:
    """``body`` preceded by a symbol chosen when rendering (Unicode or ASCII)."""

    def __init__(self, mark: Mark, body: Text, *, style: str | None = None) -> None:
        self.mark = mark
        self.body = body
        self.style = mark.style if style is None else style

    def text(self, ascii_only: bool) -> Text:
        out = Text(self.mark.ascii if ascii_only else self.mark.symbol, style=self.style)
        out.append(" ")
        out.append_text(self.body)
        return out

    def __rich_console__(self, console: Console, options: ConsoleOptions) -> RenderResult:
        yield self.text(options.ascii_only)

    def __rich_measure__(self, console: Console, options: ConsoleOptions) -> Measurement:
        return Measurement.get(console, options, self.text(options.ascii_only))


# --- the trace table -------------------------------------------------------------------
def event_mark(event: TraceEvent) -> tuple[Mark, str]:
    """The mark of ``event`` and the style of its row (forced log writes are bold)."""
    mark = KIND_MARKS.get(event.kind, _UNKNOWN)
    style = mark.style
    if event.kind == "log":
        style = "bold blue" if event.detail.endswith("(forced)") else "dim blue"
    elif event.kind == "decision":
        style = "bold " + _DECISION_STYLES.get(event.detail, "")
    return mark, style.strip()


def event_text(event: TraceEvent) -> Text:
    """What happened, in words (without the symbol): kind, message and detail."""
    text = Text(f"{event.kind:<9} ")
    if event.message is not None:
        text.append(event.message.describe())
        if event.detail:
            text.append(f"  ({event.detail})", style="italic")
    elif event.detail:
        text.append(event.detail)
    return text


def event_table(
    run: Run, events: Iterable[TraceEvent], *, header: bool = True, more: int = 0
) -> Table:
    """A table of ``events`` of ``run``; column widths depend on the run only, so the
    tables of successive events line up (the CLI's ``--step`` prints them one by one)."""
    node_width = max(len(n) for n in (*run.trace.nodes, "node"))
    table = Table(
        box=box.SIMPLE_HEAD, show_header=header, show_edge=False, pad_edge=False,
        header_style="bold", expand=False,
    )
    table.add_column("step", justify="right", width=max(4, len(str(run.steps))), no_wrap=True)
    table.add_column("time", justify="right", width=max(4, len(str(run.end_time))),
                     no_wrap=True)
    table.add_column("node", width=node_width, no_wrap=True)
    table.add_column("what", overflow="fold")
    for e in events:
        mark, style = event_mark(e)
        table.add_row(
            Text(str(e.step)), Text(str(e.time)), Text(e.node or "-"),
            Marked(mark, event_text(e), style=style), style=style or None,
        )
    if more:
        table.add_row(Text(""), Text(""), Text(""),
                      Text(f"... {more} more event(s) not shown", style="italic"))
    return table


# How many trace rows a table shows unless told (a 10,000-event run took 9 s to print).
DEFAULT_ROWS = 200


def trace_table(run: Run, *, limit: int | None = None) -> Table:
    """The step-by-step trace of ``run`` (the first ``limit`` events if given)."""
    events: Sequence[TraceEvent] = run.trace
    shown = events if limit is None else events[:max(0, limit)]
    table = event_table(run, shown, more=len(events) - len(shown))
    table.title = Text(f"trace of {_title(run)}", style="bold")
    return table


# --- the summary panel -----------------------------------------------------------------
def _title(run: Run) -> str:
    s = run.scenario
    return f"{s.name} ({s.protocol})" if s.name else s.protocol


def outcome_text(run: Run) -> Marked:
    """The outcome in words, with colour and symbol."""
    mark = OUTCOME_MARKS.get(run.outcome, _UNKNOWN)
    body = Text(run.outcome.upper(), style=mark.style)
    words = OUTCOME_WORDS.get(run.outcome, "")
    if run.outcome == "inconsistent" and any(v.invariant == "atomicity" for v in run.violations):
        words = "nodes decided differently: atomicity is broken"
    body.append(f": {words}", style="")
    return Marked(mark, body)


def decisions_table(run: Run) -> Table:
    """One row per node: role, decision, final state, and whether it is down."""
    table = Table(box=box.SIMPLE_HEAD, show_edge=False, pad_edge=False, header_style="bold")
    for name in ("node", "role", "decision", "state", "status"):
        table.add_column(name, no_wrap=True)
    for node in run.nodes:
        decision = run.decisions.get(node)
        down = node in run.down
        # In a saga only the orchestrator (or broker) decides; services just serve.
        undecided = "undecided" if node in _deciders(run) else "—"
        table.add_row(
            Text(node),
            Text(run.roles.get(node, "")),
            Text(decision or undecided,
                 style=_DECISION_STYLES.get(decision or "", "bold magenta" if
                                            undecided == "undecided" else "dim")),
            Text(run.states.get(node, "")),
            Marked(KIND_MARKS["crash"], Text("down"), style="bold red") if down
            else Text("up"),
        )
    return table


def _deciders(run: Run) -> set[str]:
    """Nodes expected to reach a decision: the driving node and those the protocol's
    roster says must decide (a commit protocol's participants; not a saga's services)."""
    roster = run.roster
    return {roster.first, *roster.deciders}


def metrics_group(run: Run) -> Group:
    """Messages by type, message delays, forced writes, blocked and lock time."""
    m = run.metrics
    by_type = ", ".join(f"{n} {t}" for t, n in m.messages_by_type.items()) or "none"
    lines = Text()
    lines.append("messages: ", style="bold")
    lines.append(f"{m.messages} ({by_type})\n")
    lines.append("message delays: ", style="bold")
    if m.message_delays is None:
        lines.append(f"{m.decision_delays} until the decision\n" if m.decision_delays
                     else "none: nothing was decided\n")
    else:
        lines.append(f"{m.message_delays} until the last deciding participant knew "
                     f"({m.decision_delays} until the first decision)\n")
    lines.append("forced log writes: ", style="bold")
    lines.append(f"{m.forced_writes_before_decision} before the decision, "
                 f"{m.forced_writes} in total")
    per = Table(box=box.SIMPLE_HEAD, show_edge=False, pad_edge=False, header_style="bold")
    per.add_column("participant", no_wrap=True)
    per.add_column("blocked (in doubt)", justify="right")
    per.add_column("locks held", justify="right")
    for p in run.participants:
        per.add_row(Text(p), Text(str(m.blocked_time.get(p, 0))),
                    Text(str(m.lock_time.get(p, 0))))
    if not any(m.blocked_time.values()) and not any(m.lock_time.values()):
        return Group(lines)  # nobody was ever in doubt or held locks (e.g. a saga)
    return Group(lines, per)


def violations_group(run: Run) -> Group:
    """Each broken invariant with its step and plain-language reason, or 'none'."""
    if not run.violations:
        return Group(Marked(OUTCOME_MARKS["committed"], Text("none: every safety invariant "
                                                             "holds"), style="green"))
    return Group(*(
        Marked(OUTCOME_MARKS["inconsistent"],
               Text.assemble((f"{v.invariant}", "bold"), f" (step {v.step}): {v.reason}"),
               style="bold red")
        for v in run.violations
    ))


def unfired_group(run: Run) -> Group:
    """Faults of the plan that never happened or had no effect, with why."""
    return Group(*(
        Marked(Mark("?", "?", "yellow"),
               Text.assemble((f.describe(), "bold"), f": {why}"))
        for f, why in run.unfired_faults
    ))


def _heading(title: str) -> Text:
    return Text(f"\n{title}", style="bold underline")


def summary_panel(run: Run) -> Panel:
    """Outcome, decisions, metrics, violations and unfired faults of ``run``."""
    s = run.scenario
    parts: list[RenderableType] = []
    if s.description:
        parts.append(Text(s.description, style="italic"))
    parts.append(outcome_text(run))
    parts.append(Text(f"{run.steps} steps, time {run.end_time}, stopped: {run.stopped_by}; "
                      f"seed {s.seed}", style="dim"))
    if s.faults:
        parts.append(Text("faults: " + "; ".join(f.describe() for f in s.faults), style="dim"))
    parts += [_heading("decisions"), decisions_table(run)]
    parts += [_heading("metrics"), metrics_group(run)]
    parts += [_heading("safety"), violations_group(run)]
    if run.unfired_faults:
        parts += [_heading("faults that did not happen"), unfired_group(run)]
    return Panel(
        Group(*parts),
        title=Text(f"summary of {_title(run)}", style="bold"),
        title_align="left",
        border_style=OUTCOME_MARKS.get(run.outcome, _UNKNOWN).style.replace("white on ", ""),
        expand=False,
    )


def show(run: Run, *, console: Console | None = None,
         limit: int | None = DEFAULT_ROWS) -> None:
    """Print the trace table (its first ``limit`` events; None: every one) and the
    summary panel of ``run``.

    In Jupyter, rich's Console detects the notebook and displays HTML.
    """
    if not isinstance(run, Run):
        raise TxlibError(f"show needs a Run (e.g. txlib.simulate('2pc')), got {shown(run)}")
    check_limit(limit)
    if console is not None and not isinstance(console, Console):
        raise TxlibError(f"show's console must be a rich Console (rich.console.Console(...)) "
                         f"or None for the notebook or terminal, got {shown(console)}")
    if console is None:  # rich does not see that Pyodide's kernel (JupyterLite) is Jupyter
        in_browser = sys.platform == "emscripten" and "pyodide_kernel" in sys.modules
        console = Console(highlight=False, force_jupyter=True if in_browser else None)
    console.print(trace_table(run, limit=limit))
    if limit == DEFAULT_ROWS and len(run.trace) > limit:  # cut by the default: say so
        console.print(Text("(show(run, limit=N) shows more rows; limit=None every one)",
                           style="italic"))
    console.print(summary_panel(run))
