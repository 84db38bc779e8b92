"""Breadth-first exhaustive search over any model: the engine under the explorer.

A :class:`Model` says what its initial states are, which actions are enabled in a state
and where each leads, how to fingerprint a state, and which invariants a state breaks.
:func:`search` visits every reachable state once (deduplicated by fingerprint), level by
level, so the first violation it meets is one with the fewest steps. It counts what TLC
counts: *distinct states*, *transitions* (every successor generated, including those
already seen and self-loops; TLC's "states generated" is this plus the initial states)
and *depth* (the most steps any distinct state needs; TLC's "depth" counts states, one
more).

When the search is complete and the model names participants, a second pass finds the
*blocking* states: a participant that is up and undecided there can never decide, in
any continuation made only of ordinary events (no fault, no restart). That is the
textbook meaning of "blocked": only a recovery could help it.

The txlib worlds (:mod:`txlib.explorer.worlds`) and Lamport's TLA+ models
(:mod:`txlib.explorer.tla`) are both models of this one search.

Memory: per distinct state the search keeps its fingerprint (in a table of digests
for txlib's worlds once there are thousands, :mod:`txlib.explorer.table`; a dict for
other models), its parent, depth and action (arrays of machine integers and a list of
shared action objects), and for the blocking analysis two small masks and the ordinary
edges. A state waiting in the frontier is kept as whatever :meth:`Model.store` gives
(txlib's worlds: where it came from, see :mod:`txlib.explorer.worlds`), and
:meth:`Model.restore` gives it back when it is expanded.
"""

from __future__ import annotations

import io
import math
import sys
import time
from abc import ABC, abstractmethod
from array import array
from collections import deque
from collections.abc import Hashable, Iterable, MutableSequence, Sequence
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any, Generic, TypeVar

from ..engine.collector import collector_paused
from ..engine.memory import Ceiling
from ..errors import TxlibError, choices, shown, suggestion
from .table import compact, state_table

S = TypeVar("S")

# How often (in expanded states) the search looks at the clock and the progress display,
# and at its memory (see txlib.engine.memory: its budget is worked out at the first
# look, so that a short search does not pay for reading it).
_CHECK_EVERY = 128
_MEMORY_EVERY = 1024
WIDGET_VIEW = "application/vnd.jupyter.widget-view+json"  # a widget's view in an output


class Model(ABC, Generic[S]):
    """A transition system the search can explore.

    Actions are hashable values a model can replay (tuples for the TLA+ models, small
    frozen dataclasses for txlib's worlds); ``describe`` turns one into words.
    ``participants`` names the processes whose decisions the blocking analysis follows
    (leave it empty for models without that notion).
    """

    name: str = "model"
    participants: tuple[str, ...] = ()
    # The names of every invariant :meth:`violations` checks, or None if the model cannot
    # list them (then :meth:`Exploration.violation` cannot tell a misspelt name).
    invariant_names: tuple[str, ...] | None = None
    # True if every fingerprint is an int in [0, 2**128): a digest the search can keep in
    # a compact table (:class:`txlib.explorer.table.DigestTable`) rather than a dict.
    digests: bool = False

    @abstractmethod
    def initial(self) -> Iterable[S]:
        """The initial states."""

    @abstractmethod
    def successors(self, state: S) -> Iterable[tuple[Hashable, S]]:
        """Each enabled action with the state it leads to (one pair per successor)."""

    @abstractmethod
    def fingerprint(self, state: S) -> Hashable:
        """A compact value equal for two states exactly when they are the same state."""

    def violations(self, state: S) -> list[tuple[str, str]]:
        """The invariants ``state`` breaks, as ``(invariant, reason)`` pairs."""
        return []

    def is_fault(self, action: Hashable) -> bool:
        """True for an action that is a fault (the blocking analysis leaves them out)."""
        return False

    def undecided(self, state: S) -> int:
        """Bit ``i`` set: participant ``i`` is up and has not decided."""
        return 0

    def decided(self, state: S) -> int:
        """Bit ``i`` set: participant ``i`` has decided."""
        return 0

    def expand(self, state: S) -> Iterable[tuple[Hashable, Any]]:
        """The successors as the search takes them: those of :meth:`successors`, but a
        model may give, in place of a state, a stand-in that :meth:`fingerprint` and
        :meth:`release` accept and :meth:`materialize` turns into the state (which the
        search asks for a new state only)."""
        return self.successors(state)

    def materialize(self, candidate: Any) -> Any:
        """What the search hands :meth:`violations`, :meth:`undecided`, :meth:`decided`
        and :meth:`store` for a new state from :meth:`expand`: the state a stand-in
        stands for, or the stand-in itself if the model can judge and keep it as it
        is (the state itself, when it is one)."""
        return candidate

    def store(self, state: S) -> Any:
        """What the search keeps of ``state`` until it expands it (the state itself by
        default; a compact snapshot for txlib's worlds). The search no longer uses the
        state after storing it."""
        return state

    def restore(self, stored: Any) -> S:
        """The state back from what :meth:`store` gave."""
        return stored  # type: ignore[no-any-return]

    def release(self, state: S) -> None:
        """The search no longer needs ``state`` (a duplicate, a violating or an expanded
        state): a model whose states hold reference cycles can break them here, so the
        memory comes back at once rather than at the next garbage collection."""

    def describe(self, action: Hashable) -> str:
        """An action in words."""
        return str(action)

    def counterexample(self, finding: Finding) -> Any:
        """Something to show for ``finding`` (a txlib Run for worlds); None if nothing."""
        return None

    def reproduces(self, finding: Finding) -> bool | None:
        """Whether ``finding`` also shows outside the search (None: cannot tell)."""
        return None


@dataclass(frozen=True, eq=False)
class Finding:
    """A broken invariant or a blocking state, with a shortest path that reaches it.

    ``path`` holds the actions from the initial state, ``labels`` the same in words.
    ``run`` replays the path (for txlib worlds: an ordinary :class:`txlib.Run` with a
    recorded trace, for the lab, the console and the diagrams).
    """

    kind: str  # "violation" or "blocking"
    invariant: str  # the invariant's name, or "blocking"
    reason: str
    path: tuple[Hashable, ...]
    labels: tuple[str, ...]
    model: Model[Any] = field(repr=False)

    @property
    def depth(self) -> int:
        """Steps from the initial state."""
        return len(self.path)

    @cached_property
    def run(self) -> Any:
        """The replayed counterexample (a :class:`txlib.Run` for txlib worlds)."""
        return self.model.counterexample(self)

    @property
    def trace(self) -> Any:
        """The counterexample's trace."""
        return self.run.trace

    def text(self) -> str:
        """The finding and its path, one step a line."""
        head = str(self)
        return "\n".join([head, *(f"{i:>4}. {lab}" for i, lab in enumerate(self.labels, 1))])

    @cached_property
    def reproduced(self) -> bool | None:
        """For a txlib finding: does its run's scenario, run by the timed scheduler,
        show the same finding? (None if the model cannot tell.)"""
        return self.model.reproduces(self)

    def __str__(self) -> str:
        return f"{self.invariant}: {self.reason} ({_after(self.depth)})"


@dataclass(frozen=True, eq=False)
class Exploration:
    """What a search found, and how big the state space was.

    ``complete`` is False if a budget (``max_states``, ``max_seconds``, the memory the
    machine has: see :mod:`txlib.engine.memory`), the depth bound or the first
    violation stopped the search: ``stopped_by`` says which. Then the
    state counts are lower bounds and blocking is not analysed (``blocking_states`` is
    None).
    """

    model: str
    states: int
    transitions: int
    depth: int
    seconds: float
    complete: bool
    stopped_by: str
    violations: tuple[Finding, ...]
    violating_states: int
    blocking: Finding | None
    blocking_states: int | None
    initial_states: int = 1
    blocking_checked: bool = True
    settings: dict[str, Any] = field(default_factory=dict)
    # the names of the invariants checked, if the model could list them
    invariants: tuple[str, ...] | None = None

    @property
    def ok(self) -> bool:
        """True if the search was complete and found no violation and no blocking."""
        return self.complete and not self.violations and not self.blocking_states

    @property
    def findings(self) -> tuple[Finding, ...]:
        """Every violation, then the blocking finding (if any)."""
        return self.violations + ((self.blocking,) if self.blocking is not None else ())

    @property
    def states_per_second(self) -> float:
        return self.states / self.seconds if self.seconds > 0 else float("inf")

    def violation(self, invariant: str) -> Finding | None:
        """The shortest violation of ``invariant`` found, or None if the search found
        none. A name that is not an invariant of this search is a TxlibError (when the
        model can list its invariants), not None: None would read as "never broken"."""
        names = list(dict.fromkeys((*(self.invariants or ()),
                                    *(f.invariant for f in self.violations))))
        valid = f"; valid choices: {choices(names)}" if names else ""
        if not isinstance(invariant, str):
            raise TxlibError(f"violation() takes the name of an invariant, got "
                             f"{shown(invariant)}{valid}")
        found = next((f for f in self.violations if f.invariant == invariant), None)
        if found is None and self.invariants is not None and invariant not in self.invariants:
            raise TxlibError(f"{shown(invariant)} is not an invariant this search checked"
                             f"{suggestion(invariant, names)}{valid}")
        return found

    def summary(self) -> str:
        """A few lines: settings, state space, verdict and each finding."""
        settings = ", ".join(f"{k}={v}" for k, v in self.settings.items())
        lines = [f"{self.model}" + (f" ({settings})" if settings else "")]
        done = "complete" if self.complete else f"INCOMPLETE, stopped by {self.stopped_by}"
        lines.append(
            f"{self.states:,} distinct states, {self.transitions:,} transitions, depth "
            f"{self.depth}, {self.seconds:.2f} s ({self.states_per_second:,.0f} states/s); "
            f"search {done}"
        )
        if not self.violations:
            lines.append("no invariant violated" + ("" if self.complete else " so far"))
        for f in self.violations:
            lines.append(f"VIOLATION {f}")
        if not self.blocking_checked:
            pass
        elif self.blocking_states is None:
            lines.append("blocking: not analysed (the search is incomplete)")
        elif self.blocking is None:
            lines.append("no blocking state: every live participant can always decide")
        else:
            lines.append(f"BLOCKING in {self.blocking_states:,} states; shortest: "
                         f"{self.blocking.reason} ({_after(self.blocking.depth)})")
        return "\n".join(lines)

    def __str__(self) -> str:
        return self.summary()

    def _repr_pretty_(self, p: Any, cycle: bool) -> None:
        p.text(self.summary())


# --- progress --------------------------------------------------------------------------
class SearchProgress:
    """Receives the search's counters from time to time; the base class shows nothing."""

    def update(self, states: int, transitions: int, frontier: int, depth: int,
               elapsed: float) -> None:
        """Called about every ``_CHECK_EVERY`` expanded states."""

    def close(self) -> None:
        """Called once when the search stops."""


class RichProgress(SearchProgress):
    """A rich progress bar, in a terminal or a notebook: distinct states, states per
    second, the frontier (states found but not yet expanded) and the depth. It appears
    only once a search has run for ``delay`` seconds, and disappears when it ends.

    In a terminal rich draws it live. In a notebook (JupyterLab, or the course's
    JupyterLite site) rich renders it to HTML in an ``ipywidgets.HTML``, displayed as
    the widget's view alone (no text fallback) and emptied at the end, so the cell's
    saved outputs keep nothing of it: no ``HTML(value='')`` on GitHub, no "model not
    found" when the notebook is opened again, and nothing for nbval to compare (rich's
    own live display would leave an empty output behind).
    """

    def __init__(self, title: str, max_states: int | None, max_seconds: float | None,
                 delay: float = 0.5) -> None:
        self.title = title
        self.max_states = max_states
        self.max_seconds = max_seconds
        self.delay = delay
        self._bar: Any = None
        self._task: Any = None
        self._html: Any = None  # the notebook's widget
        self._handle: Any = None  # its display, emptied at the end
        self._shown = 0.0

    def _open(self) -> None:
        from rich.progress import BarColumn, TextColumn
        from rich.progress import Progress as RichBar

        jupyter = in_notebook()
        self._bar = RichBar(
            TextColumn("[bold]{task.description}"),
            BarColumn(bar_width=16),
            TextColumn("{task.fields[states]:,} states · {task.fields[rate]:,.0f}/s · "
                       "frontier {task.fields[frontier]:,} · depth {task.fields[depth]}"
                       "{task.fields[memory]}"),
            TextColumn("[yellow]{task.fields[clock]}"),  # since the search began
            transient=True,
            auto_refresh=not jupyter,
        )
        self._task = self._bar.add_task(self.title, total=None, states=0, rate=0.0,
                                        frontier=0, depth=0, memory="", clock="")
        if jupyter:
            from IPython.display import display
            from ipywidgets import HTML

            self._html = HTML()
            view = {kind: value for kind, value in self._html._repr_mimebundle_().items()
                    if kind == WIDGET_VIEW}
            self._handle = display(view, raw=True, display_id=True)

    def _render_html(self) -> str:
        from rich.console import Console

        console = Console(record=True, file=io.StringIO(), width=110, force_jupyter=False,
                          force_terminal=True)
        console.print(self._bar.get_renderable())
        return console.export_html(inline_styles=True, code_format=(
            '<pre style="font-family:ui-monospace,monospace;margin:0">{code}</pre>'))

    def update(self, states: int, transitions: int, frontier: int, depth: int,
               elapsed: float) -> None:
        if self._bar is None:
            if elapsed < self.delay:
                return
            self._open()
        # The bar fills towards whichever budget is closer (it pulses with no budget).
        done: float | None = None
        if self.max_states:
            done = states / self.max_states
        if self.max_seconds:
            done = max(done or 0.0, elapsed / self.max_seconds)
        self._bar.update(self._task, total=None if done is None else 1.0,
                         completed=min(done or 0.0, 1.0), states=states,
                         rate=states / elapsed if elapsed else 0.0, frontier=frontier,
                         depth=depth, memory=_memory(), clock=_clock(elapsed))
        if self._html is not None:
            if elapsed - self._shown >= 0.2:
                self._shown = elapsed
                self._html.value = self._render_html()
        elif not self._bar.live.is_started:
            self._bar.start()

    def close(self) -> None:
        if self._html is not None:
            if self._handle is not None:  # the output is left with nothing to show
                self._handle.update({}, raw=True)
            self._html.close()
            self._html = self._handle = None
        if self._bar is not None:
            if self._bar.live.is_started:
                self._bar.stop()
            self._bar = None


def _clock(seconds: float) -> str:
    """``0:01:05``: hours, minutes and seconds (the bar appears only after its delay, so
    rich's own elapsed time, counted from then, would run behind the search's)."""
    whole = int(seconds)
    return f"{whole // 3600}:{whole // 60 % 60:02d}:{whole % 60:02d}"


def _memory() -> str:
    """`` · 412 MB`` (the process's peak resident memory), where the platform says."""
    try:
        import resource
    except ImportError:  # Windows
        return ""
    if not hasattr(resource, "getrusage"):  # Pyodide's module lacks it (the browser build)
        return ""
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    megabytes = peak / 1024 if sys.platform != "darwin" else peak / 2**20
    return f" · {megabytes:,.0f} MB"


def in_notebook() -> bool:
    """True in a notebook's kernel: JupyterLab's (as rich sees it) or the Pyodide kernel
    of the course's JupyterLite site, which rich does not recognise."""
    from rich.console import Console

    if Console().is_jupyter:
        return True
    shell = sys.modules.get("IPython")
    return (sys.platform == "emscripten" and shell is not None
            and getattr(shell, "get_ipython", lambda: None)() is not None)


def interactive() -> bool:
    """True in a terminal or a notebook (where a progress display makes sense)."""
    from rich.console import Console

    return in_notebook() or bool(Console().is_terminal)


def make_progress(progress: bool | SearchProgress | None, title: str, max_states: int | None,
                  max_seconds: float | None) -> SearchProgress:
    """The display to use: ``True`` always a rich bar, ``False`` none, ``None`` a rich
    bar when interactive (shown only if the search lasts), or a :class:`SearchProgress`."""
    if isinstance(progress, SearchProgress):
        return progress
    if progress is None:
        progress = interactive()
    if progress:
        return RichProgress(title, max_states, max_seconds, delay=0.5)
    return SearchProgress()


# --- the search ------------------------------------------------------------------------
def search(
    model: Model[Any],
    *,
    max_states: int | None = None,
    max_seconds: float | None = None,
    max_depth: int | None = None,
    stop_on_violation: bool = True,
    blocking: bool = True,
    progress: bool | SearchProgress | None = None,
    settings: dict[str, Any] | None = None,
) -> Exploration:
    """Explore ``model`` breadth first; see the module docstring for what is counted.

    Budgets stop the search cleanly and mark the result incomplete. With
    ``stop_on_violation`` (as TLC does) the search ends at the first violating state,
    which is a shortest one; otherwise it records the first (shortest) violation of each
    invariant and goes on, without expanding violating states.
    """
    for name, value in (("max_states", max_states), ("max_depth", max_depth)):
        if value is not None and (not isinstance(value, int) or isinstance(value, bool)
                                  or value < 0):
            raise TxlibError(f"{name} must be a whole number of 0 or more, got {value!r}")
    if max_seconds is not None and (isinstance(max_seconds, bool)
                                    or not isinstance(max_seconds, (int, float))
                                    or not 0 < max_seconds < math.inf):
        raise TxlibError(f"max_seconds must be a positive, finite number, got {max_seconds!r}")
    if not (progress is None or isinstance(progress, (bool, SearchProgress))):
        raise TxlibError(f"progress must be True, False or None, got {progress!r}")
    display = make_progress(progress, model.name, max_states, max_seconds)
    track = bool(blocking and model.participants)
    fingerprint, expand, violations_of = model.fingerprint, model.expand, model.violations
    materialize = model.materialize
    is_fault, release, store, restore = model.is_fault, model.release, model.store, model.restore

    # Per state: its fingerprint (a key of ``seen``), its parent, depth and the action
    # from the parent; the undecided and decided masks and the ordinary (non-fault)
    # edges if blocking is analysed. Arrays of machine integers, a few bytes a state.
    seen = state_table()
    parent = array("i")
    depth_of = array("i")
    via: list[Hashable] = []
    actions: dict[Hashable, Hashable] = {}  # one object per distinct action, shared
    # one bit a participant: a byte for up to 8, an unsigned 64-bit word for up to 64,
    # and Python ints beyond (the explorer takes at most 8; a model may name more)
    n = len(model.participants)
    undecided: MutableSequence[int] = array("B") if n <= 8 else array("Q") if n <= 64 else []
    decided: MutableSequence[int] = array("B") if n <= 8 else array("Q") if n <= 64 else []
    edge_src = array("i")
    edge_dst = array("i")
    first_violation: dict[str, tuple[int, str]] = {}
    violating: set[int] = set()
    frontier: deque[int] = deque()  # the ids of states found and not yet expanded
    waiting: deque[Any] = deque()  # what model.store kept of each
    transitions = 0
    max_seen_depth = 0
    stopped_by = ""
    truncated = False

    def add(state: Any, from_id: int, action: Hashable, depth: int) -> tuple[int, bool]:
        """Register a state; returns (id, is_new)."""
        sid = len(via)
        found = seen.setdefault(fingerprint(state), sid)
        if found != sid:
            release(state)
            return found, False
        state = materialize(state)
        parent.append(from_id)
        depth_of.append(depth)
        via.append(actions.setdefault(action, action))
        if track:
            undecided.append(model.undecided(state))
            decided.append(model.decided(state))
        broken = violations_of(state)
        if broken:
            violating.add(sid)
            for invariant, reason in broken:
                first_violation.setdefault(invariant, (sid, reason))
            release(state)
        else:
            frontier.append(sid)
            waiting.append(store(state))
        return sid, True

    start = time.perf_counter()
    initial = 0
    try:
        with collector_paused():  # released states free themselves (see collector)
            for i, state in enumerate(model.initial()):
                initial += 1
                add(state, -1, ("init", i), 0)
            if violating and stop_on_violation:
                stopped_by = "a violation"
            expanded = 0
            memory = Ceiling()  # stop before the machine runs out (see txlib.engine.memory)
            while frontier and not stopped_by:
                if expanded % _CHECK_EVERY == 0:
                    seen = compact(seen, model.digests)  # a dict while the search is small
                    elapsed = time.perf_counter() - start
                    display.update(len(via), transitions, len(frontier), max_seen_depth, elapsed)
                    if max_seconds is not None and elapsed >= max_seconds:
                        stopped_by = f"max_seconds={max_seconds}"
                        break
                    if expanded and expanded % _MEMORY_EVERY == 0:  # never a shorter search
                        held = memory.exceeded()  # the first time, its budget worked out
                        if held is not None:
                            stopped_by = (f"memory={held / 2**20:,.0f} MB (grown by more than "
                                          f"3/4 of what was free at its "
                                          f"{_MEMORY_EVERY:,}th state)")
                            break
                if max_states is not None and len(via) >= max_states:
                    stopped_by = f"max_states={max_states}"
                    break
                sid = frontier.popleft()
                state = restore(waiting.popleft())
                d = depth_of[sid]
                if max_depth is not None and d >= max_depth:
                    if not truncated:  # is there anything past the depth limit?
                        for _action, nxt in expand(state):
                            truncated = True
                            release(nxt)
                    release(state)
                    continue
                expanded += 1
                successors = iter(expand(state))
                for action, nxt in successors:
                    if max_states is not None and len(via) >= max_states:
                        stopped_by = f"max_states={max_states}"  # exactly at the budget
                        release(nxt)
                        break
                    transitions += 1
                    nid, new = add(nxt, sid, action, d + 1)
                    if new:
                        if d + 1 > max_seen_depth:
                            max_seen_depth = d + 1
                        if nid in violating and stop_on_violation:
                            stopped_by = "a violation"
                            break
                    if track and not is_fault(action):
                        edge_src.append(sid)
                        edge_dst.append(nid)
                if stopped_by:  # the successors after the one the search stopped at
                    for _action, nxt in successors:
                        release(nxt)
                release(state)
    finally:
        display.close()
    seconds = time.perf_counter() - start
    if not stopped_by and truncated:
        stopped_by = f"max_depth={max_depth}"
    complete = not stopped_by

    def path_to(sid: int) -> tuple[Hashable, ...]:
        out = []
        while parent[sid] >= 0:
            out.append(via[sid])
            sid = parent[sid]
        return tuple(reversed(out))

    def finding(kind: str, invariant: str, reason: str, sid: int) -> Finding:
        path = path_to(sid)
        return Finding(kind, invariant, reason, path,
                       tuple(model.describe(a) for a in path), model)

    found = tuple(
        finding("violation", inv, reason, sid)
        for inv, (sid, reason) in sorted(first_violation.items(), key=lambda kv: kv[1][0])
    )
    block: Finding | None = None
    blocking_states: int | None = None
    if track and complete:
        blocked_masks = _blocking(len(via), undecided, decided, edge_src, edge_dst,
                                  len(model.participants), violating)
        blocking_states = sum(1 for m in blocked_masks if m)
        first = next((i for i, m in enumerate(blocked_masks) if m), None)
        if first is not None:
            names = [p for b, p in enumerate(model.participants) if blocked_masks[first] >> b & 1]
            who = names[0] if len(names) == 1 else ", ".join(names[:-1]) + " and " + names[-1]
            reason = (f"{who} {'is' if len(names) == 1 else 'are'} up and undecided, and can "
                      "never decide unless a crashed node restarts or the network heals")
            block = finding("blocking", "blocking", reason, first)
    return Exploration(
        model=model.name, states=len(via), transitions=transitions, depth=max_seen_depth,
        seconds=seconds, complete=complete, stopped_by=stopped_by or "nothing left to explore",
        violations=found, violating_states=len(violating), blocking=block,
        blocking_states=blocking_states, initial_states=initial, blocking_checked=track,
        settings=dict(settings or {}), invariants=model.invariant_names,
    )


def _after(steps: int) -> str:
    return f"after {steps} step" + ("" if steps == 1 else "s")


def _blocking(
    n: int, undecided: Sequence[int], decided: Sequence[int], src: Sequence[int],
    dst: Sequence[int], participants: int, violating: set[int],
) -> list[int]:
    """Per state, the participants (a bit mask) that are up, undecided and cannot reach a
    state where they have decided along ordinary (non-fault) transitions.

    Backward reachability over the event edges, for every participant at once (each
    state's mask of participants that can still decide grows until it holds). Violating
    states were not expanded, so they count as able to decide (no false blocking
    claims).
    """
    # predecessors in compressed form: preds[start[v]:start[v + 1]] are v's predecessors
    counts = [0] * (n + 1)
    for v in dst:
        counts[v + 1] += 1
    for i in range(n):
        counts[i + 1] += counts[i]
    fill = counts[:-1].copy()
    preds = array("q", bytes(8 * len(dst)))
    for u, v in zip(src, dst, strict=True):
        preds[fill[v]] = u
        fill[v] += 1
    # can[s]: the participants (a bit mask) that decide in some state reachable from s,
    # for every participant at once: a state's mask grows until no successor adds to it
    everyone = (1 << participants) - 1
    can = [everyone if s in violating else decided[s] for s in range(n)]
    todo = [s for s in range(n) if can[s]]
    while todo:
        v = todo.pop()
        reach = can[v]
        for i in range(counts[v], counts[v + 1]):
            u = preds[i]
            if reach & ~can[u]:
                can[u] |= reach
                todo.append(u)
    return [undecided[s] & ~can[s] for s in range(n)]
