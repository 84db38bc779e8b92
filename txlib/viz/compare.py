"""Runs side by side: one step slider, a space-time diagram each, one summary table.

``txlib.compare(a, b)`` takes two scenarios (or runs, protocol names, named scenarios),
or more; ``txlib.compare("2pc", "3pc", "paxos-commit", faults=[...])`` replays the same
fault plan over each protocol, the comparison the seed's tables ask for.
"""

from __future__ import annotations

from collections.abc import Sequence
from html import escape
from typing import Any

import ipywidgets as w

from ..errors import TxlibError, shown
from ..simulation.run import Run
from ..simulation.scenario import Scenario
from .spacetime import spacetime_svg
from .widgets import as_scenario

MAX_RUNS = 26  # runs side by side: one letter each to tell apart runs of the same name
ROWS: tuple[tuple[str, str], ...] = (
    ("outcome", "outcome"),
    ("steps", "scheduler steps"),
    ("end_time", "simulated time at the end"),
    ("messages", "messages sent"),
    ("message_delays", "message delays until every participant knows (a saga: until its "
                       "outcome is recorded)"),
    ("forced_before", "forced log writes before the decision"),
    ("forced", "forced log writes in all"),
    ("blocked", "longest in-doubt time of a participant"),
    ("locks", "longest lock-hold time of a participant"),
    ("violations", "broken invariants"),
)


def summary(run: Run) -> dict[str, Any]:
    """The figures the comparison table shows for one run."""
    m = run.metrics
    return {
        "outcome": run.outcome,
        "steps": run.steps,
        "end_time": run.end_time,
        "messages": m.messages,
        # Sagas have no participant decisions: count to the saga's recorded outcome.
        "message_delays": m.message_delays if m.message_delays is not None
        else m.decision_delays,
        "forced_before": m.forced_writes_before_decision,
        "forced": m.forced_writes,
        "blocked": max(m.blocked_time.values(), default=0),
        "locks": max(m.lock_time.values(), default=0),
        "violations": "; ".join(str(v) for v in run.violations) or "none",
    }


def comparison_table(runs: Sequence[Run], labels: Sequence[str] | None = None) -> str:
    """An HTML table with one column per run and one row per figure."""
    labels = list(labels or [r.scenario.name or r.scenario.protocol for r in runs])
    sums = [summary(r) for r in runs]
    head = "<tr><th></th>" + "".join(f"<th>{escape(str(x))}</th>" for x in labels) + "</tr>"
    rows = "".join(
        f"<tr><td>{escape(title)}</td>"
        + "".join(f"<td>{escape(str(s[key]))}</td>" for s in sums) + "</tr>"
        for key, title in ROWS
    )
    return f'<table style="border-collapse:collapse;font-size:12px">{head}{rows}</table>'


WHOLE_EVENTS = 2_000  # a run with more events is drawn in a window around the step
LONG_WINDOW = 600  # px


class Compare:
    """The side-by-side widget; ``.runs`` holds both runs, ``.go(step)`` moves both."""

    def __init__(self, scenarios: Sequence[Scenario | Run], labels: Sequence[str]) -> None:
        # A run is shown as it is: one recorded by real processes or found by the
        # explorer is not what its scenario replays to.
        self.runs = [s if isinstance(s, Run) else s.run() for s in scenarios]
        self.labels = list(labels)
        last = max(r.steps for r in self.runs)
        self.slider = w.IntSlider(value=last, min=0, max=last, description="step",
                                  layout=w.Layout(width="520px"))
        self.play = w.Play(value=last, min=0, max=last, interval=800, description="play")
        w.jslink((self.play, "value"), (self.slider, "value"))
        self.diagrams = [w.HTML() for _ in self.runs]
        self.table = w.HTML(comparison_table(self.runs, self.labels))
        self.slider.observe(lambda change: self._render(change["new"]), names="value")
        blocks = []
        for label, diagram in zip(self.labels, self.diagrams, strict=True):
            blocks += [w.HTML(f"<h4 style='margin:6px 0 2px'>{escape(label)}</h4>"), diagram]
        self.widget = w.VBox([w.HBox([self.play, self.slider]), *blocks, self.table])
        self._render(last)

    def go(self, step: int) -> None:
        self.slider.value = max(0, min(step, self.slider.max))

    def _render(self, step: int) -> None:
        for run, diagram in zip(self.runs, self.diagrams, strict=True):
            # A long run is drawn around the step (a whole one could be megabytes).
            window = None if len(run.trace) <= WHOLE_EVENTS else LONG_WINDOW
            diagram.value = spacetime_svg(run.trace, step=min(step, run.steps),
                                          roles=run.roles, window=window, scale=2.5)

    def _repr_mimebundle_(self, **kwargs: Any) -> Any:
        return self.widget._repr_mimebundle_(**kwargs)


def compare(*targets: str | Scenario | Run, **kwargs: Any) -> Compare:
    """Show two or more runs (``targets``) one above the other with a shared step
    slider.

    Keyword arguments (participants, seed, faults, options) apply to each one that is a
    protocol name, so ``compare("2pc", "3pc", "paxos-commit", faults=[...])`` runs the
    same fault plan over the three protocols.
    """
    if len(targets) < 2:
        raise TxlibError(f"compare needs at least two runs, scenarios or protocol names, "
                         f"got {len(targets)}: e.g. txlib.compare('2pc', '3pc')")
    if len(targets) > MAX_RUNS:
        raise TxlibError(f"compare shows at most {MAX_RUNS} runs side by side, got "
                         f"{len(targets)}")
    scenarios: list[Scenario | Run] = []
    labels = []
    for i, target in enumerate(targets, 1):
        try:
            scenario = as_scenario(target, **kwargs)
        except TxlibError as exc:  # say which run: keyword arguments apply to each
            raise TxlibError(f"compare's run {i} ({shown(target)}): {exc}") from None
        # a run with its trace is compared as it is (see Compare), not replayed
        scenarios.append(target if isinstance(target, Run) and target.recorded else scenario)
        labels.append(scenario.name or scenario.protocol)
    if len(set(labels)) < len(labels):
        labels = [f"{label} ({chr(ord('A') + i)})" for i, label in enumerate(labels)]
    return Compare(scenarios, labels)
