"""The lab widget: step through a run, inject faults at the cursor, share the scenario.

``txlib.lab("2pc", participants=3)`` or ``txlib.lab(scenario)`` shows playback
controls, the space-time diagram and the state machines at the cursor, a node table,
the outcome and invariants so far, a fault panel, presets and the scenario as JSON.
Frames are computed from the trace; the widget only moves a cursor. Errors are shown
inside the widget, and a failed action changes nothing.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from html import escape
from typing import Any
from xml.sax.saxutils import quoteattr

import ipywidgets as w

from ..engine.faults import Fault
from ..errors import TxlibError, bad_choice
from ..presets import NAMED_SCENARIOS
from ..protocols import PROTOCOLS, get_protocol
from ..simulation.run import Run
from ..simulation.scenario import Scenario, participant_names
from .charts import role_charts
from .clickable import click_bridge
from .clicks import click_targets
from .frames import NodeRow, node_rows
from .lab import FAULT_CHOICES, LabModel, preset_names
from .spacetime import spacetime_svg

SPEEDS = {"slow": 1400, "normal": 800, "fast": 350}
# The diagram's size in the lab: as wide as a notebook on a 1366 px laptop screen with
# the file browser open, and a window of rows that leaves the controls and the outcome
# in view at 768 px high.
DIAGRAM_WIDTH = 860
DIAGRAM_WINDOW = 420
TABS = ("state machines", "nodes", "inject faults", "scenario JSON")
LAB_STYLE = (
    "<style>.txlab-nodes{border-collapse:collapse;font-size:12px}"
    ".txlab-nodes th,.txlab-nodes td{text-align:left;vertical-align:top;padding:3px 10px 3px 0;"
    "border-bottom:1px solid rgba(127,127,127,.25)}"
    ".txlab-charts{display:flex;flex-wrap:wrap;gap:12px;align-items:flex-start}"
    # At their own size (text of 10 px and more), narrower only in a narrow notebook.
    ".txlab-charts>div{max-width:100%}.txlab-charts svg{max-width:100%;height:auto}"
    ".txlab-diagram svg.txst{max-width:100%;height:auto}</style>")
# Okabe–Ito hues darkened to a contrast of at least 4.5:1 on a light background.
OUTCOME_STYLE = {
    "committed": ("✓", "#00785A"),
    "completed": ("✓", "#00785A"),
    "confirmed": ("✓", "#00785A"),
    "aborted": ("✗", "#B34700"),
    "compensated": ("↶", "#B34700"),
    "cancelled": ("✗", "#B34700"),
    "blocked": ("⏸", "#8A6100"),
    "stuck": ("⏸", "#8A6100"),
    "inconsistent": ("⚠", "#9C4F80"),
}


def as_scenario(target: str | Scenario | Run, **kwargs: Any) -> Scenario:
    """Read what ``lab``/``compare`` were given: a protocol, a named scenario, a Scenario
    or a Run (keyword arguments as for ``simulate`` apply to a protocol name)."""
    if isinstance(target, Run):
        target = target.scenario
    if isinstance(target, Scenario):
        if kwargs:
            raise TxlibError(f"options {sorted(kwargs)} only apply to a protocol name")
        return target
    if isinstance(target, str) and target in NAMED_SCENARIOS and target not in PROTOCOLS:
        base = NAMED_SCENARIOS[target]
        return base.replace(**_scenario_changes(base.protocol, kwargs)) if kwargs else base
    if isinstance(target, str) and target in PROTOCOLS:
        changes = _scenario_changes(target, kwargs)
        return Scenario(target, **changes)
    raise bad_choice("protocol or scenario", target, [*PROTOCOLS, *NAMED_SCENARIOS])


SCENARIO_FIELDS = ("participants", "seed", "faults")


def _scenario_changes(protocol: str, kwargs: dict[str, Any]) -> dict[str, Any]:
    """The Scenario fields and options that ``kwargs`` set, for ``protocol``; an unknown
    name is a TxlibError suggesting the nearest field or option (``sed``: ``seed``)."""
    valid = get_protocol(protocol).config_class.option_names()
    for key in kwargs:
        if key not in SCENARIO_FIELDS and key not in valid:
            raise bad_choice("option", key, [*SCENARIO_FIELDS, *valid])
    fields = set(SCENARIO_FIELDS)
    changes: dict[str, Any] = {k: v for k, v in kwargs.items() if k in fields}
    if "participants" in changes:
        changes["participants"] = participant_names(changes["participants"])
    if isinstance(changes.get("faults"), list):  # anything else: Scenario names it
        changes["faults"] = tuple(changes["faults"])
    options = {k: v for k, v in kwargs.items() if k not in fields}
    if options:
        changes["options"] = options
    return changes


# --- HTML pieces (pure functions of the model, so they are easy to test) --------------
def outcome_html(run: Run, cursor: int) -> str:
    """The outcome (at the end) or the decisions so far, and the invariants so far."""
    finished = cursor >= run.steps
    parts = []
    if finished:
        symbol, colour = OUTCOME_STYLE.get(run.outcome, ("?", "currentColor"))
        parts.append(f'<b style="color:{colour}">{symbol} {escape(run.outcome)}</b> '
                     f"after {run.steps} steps, time {run.end_time}")
    else:
        parts.append(f"<b>step {cursor} of {run.steps}</b>: run in progress")
    broken = [v for v in run.violations if v.step <= cursor]
    if broken:
        parts.extend(f'<div style="color:#B34700">⚠ <b>{escape(v.invariant)}</b> violated: '
                     f"{escape(v.reason)}</div>" for v in broken)
    else:
        parts.append('<div style="opacity:.8">✓ every safety rule holds so far</div>')
    if finished:
        parts.extend(f'<div style="opacity:.8">? fault "{escape(f.describe())}" had no effect: '
                     f"{escape(why)}</div>" for f, why in run.unfired_faults)
    return "".join(parts)


def node_table_html(rows: Sequence[NodeRow]) -> str:
    """The node table: role, up/down, state, durable log, locks, volatile state, one
    column each, left-aligned and top-aligned so the columns line up."""
    head = ("<tr><th scope='col'>node</th><th scope='col'>role</th><th scope='col'>up</th>"
            "<th scope='col'>state</th><th scope='col'>durable log (■ forced, □ lazy, "
            "<s>struck</s>: not yet stable)</th><th scope='col'>locks</th>"
            "<th scope='col'>volatile state</th></tr>")
    body = []
    for r in rows:
        log = " ".join(
            ("■ " if line.forced else "□ ")
            + (escape(line.record) if line.durable else f"<s>{escape(line.record)}</s>")
            for line in r.log
        ) or "—"
        up = "up" if r.up else '<b style="color:#B34700">✝ down</b>'
        body.append(
            f"<tr><th scope='row'>{escape(r.name)}</th><td>{escape(r.role)}</td>"
            f"<td>{up}</td><td>{escape(r.state)}</td><td>{log}</td>"
            f"<td>{'🔒 ' + escape(r.locks) if r.locks else '—'}</td>"
            f"<td>{escape(r.volatile) or '—'}</td></tr>"
        )
    return (LAB_STYLE + '<table class="txlab-nodes">' + head + "".join(body) + "</table>")


def statecharts_html(run: Run, cursor: int, shown: str | None = None) -> str:
    """Each role's state machine with its nodes placed, and the last transition taken
    in the cursor's step highlighted. Only role ``shown``'s is visible (the first role's
    if None): at their own size, so that no text is under 10 px, two would not fit side
    by side on a laptop screen."""
    charts = role_charts(run, cursor)
    if shown not in charts:
        shown = next(iter(charts), None)
    return (LAB_STYLE + '<div class="txlab-charts">'
            + "".join(f"<div data-role={quoteattr(role)}{'' if role == shown else ' hidden'}>"
                      f"{svg}</div>" for role, svg in charts.items())
            + "</div>")


class Lab:
    """The lab widget. Display it (it is the last expression of a cell) or use ``.widget``.

    The methods mirror the buttons, so a test or a lesson can drive it from Python.
    """

    def __init__(self, scenario: Scenario | None = None, *, model: LabModel | None = None) -> None:
        if model is None:
            if scenario is None:
                raise TxlibError("give the lab a scenario")
            model = LabModel.of(scenario)
        self.model = model
        self._build()
        self._render()

    @classmethod
    def of_run(cls, run: Run) -> Lab:
        """A lab on a recorded run (real processes, an explorer finding), shown as it is."""
        return cls(model=LabModel.of_run(run))

    # --- building -------------------------------------------------------------------
    def _build(self) -> None:
        m = self.model
        self.title = w.HTML()
        # A labelled number box rather than a slider: screen readers name it, and the
        # arrow keys step it when it has the focus.
        self.slider = w.BoundedIntText(value=0, min=0, max=m.last_step, description="step",
                                       layout=w.Layout(width="150px"),
                                       style={"description_width": "36px"})
        self.play = w.ToggleButton(value=False, description="▷ play",
                                   tooltip="play the run step by step (again: pause)",
                                   layout=w.Layout(width="auto", min_width="64px"))
        self.play.observe(lambda change: self._playing(change["new"]), names="value")
        self.speed = w.Dropdown(options=list(SPEEDS), value="normal", description="speed",
                                layout=w.Layout(width="150px"),
                                style={"description_width": "42px"})
        self.start_button = self._button("⏮", "jump to the start", self.to_start)
        self.back_button = self._button("◀", "step back", self.step_back)
        self.forward_button = self._button("▶", "step forward", self.step_forward)
        self.end_button = self._button("⏭", "jump to the end", self.to_end)
        self.diagram = w.HTML(layout=w.Layout(overflow="hidden", width="auto"))
        self.diagram.add_class("txlab-diagram")
        # Click a message in flight or a node's header to inject a fault (where the
        # front end loads; None without anywidget: then the fault panel alone).
        self.clicks = click_bridge(lambda content: self._safely(lambda: self.click(content)))
        self.machines = w.HTML()
        roles = list(m.run.machines)
        self.machine_role = w.ToggleButtons(
            options=roles, value=roles[0] if roles else None,
            tooltips=[f"the {r}'s state machine" for r in roles],
            style={"button_width": "auto"})
        self.machine_role.observe(lambda _change: self._render_frame(), names="value")
        self.table = w.HTML()
        self.status = w.HTML()
        self.message = w.HTML()
        nodes = list(m.run.nodes)
        self.fault_kind = w.Dropdown(options=[(v, k) for k, v in FAULT_CHOICES.items()],
                                     value="crash", description="fault",
                                     layout=w.Layout(width="380px"))
        self.fault_node = w.Dropdown(options=nodes, value=nodes[0], description="node",
                                     layout=w.Layout(width="220px"))
        self.inject_button = self._button("inject at this step", "add the fault right "
                                          "after the current step and replay", self._inject)
        self.undo_button = self._button("undo last fault", "remove the last fault", self.undo)
        self.reset_button = self._button("reset", "back to the starting scenario", self.reset)
        self.worse_button = self._button("can it get worse?", "search for one more fault that "
                                         "blocks the run or breaks a safety rule", self.worse)
        self.preset = w.Dropdown(options=preset_names(), value=self._preset_loaded(),
                                 description="preset", layout=w.Layout(width="380px"))
        self.preset_button = self._button("load preset", "load the chosen named scenario",
                                          lambda: self.load_preset(self.preset.value))
        self.json = w.Textarea(description="scenario",
                               layout=w.Layout(width="100%", height="160px"))
        self.json_button = self._button("load JSON", "load the scenario written above",
                                        lambda: self.load_json(self.json.value))
        self.faults_list = w.HTML()
        self.slider.observe(lambda change: self._moved(change["new"]), names="value")
        controls = w.HBox([self.start_button, self.back_button, self.forward_button,
                           self.end_button, self.slider, self.play, self.speed],
                          layout=w.Layout(flex_flow="row wrap", align_items="center"))
        fault_panel = w.VBox([
            w.HBox([self.fault_kind, self.fault_node, self.inject_button],
                   layout=w.Layout(flex_flow="row wrap")),
            w.HBox([self.undo_button, self.reset_button, self.worse_button]),
            self.faults_list,
            w.HBox([self.preset, self.preset_button]),
        ])
        share = w.VBox([w.HTML("Copy this to share exactly what you see; paste one in and "
                               "load it to reproduce a run."), self.json, self.json_button])
        machines = w.VBox([self.machine_role, self.machines])
        tabs = w.Tab(children=[machines, self.table, fault_panel, share],
                      layout=w.Layout(width="auto"))
        for i, name in enumerate(TABS):
            tabs.set_title(i, name)
        self.tabs = tabs
        parts = [self.title, controls, self.status, self.diagram]
        if self.clicks is not None:
            parts.append(self.clicks)
        self.widget = w.VBox([*parts, tabs, self.message], layout=w.Layout(max_width="100%"))
        self.widget.add_class("txlab")

    def _button(self, label: str, tip: str, action: Callable[[], object]) -> w.Button:
        button = w.Button(description=label, tooltip=tip,
                          layout=w.Layout(width="auto", min_width="36px"))
        button.on_click(lambda _b: self._safely(action))
        return button

    def _safely(self, action: Callable[[], object]) -> None:
        """Run a learner's action; show a TxlibError in the widget instead of raising."""
        try:
            action()
        except TxlibError as exc:
            self._say(str(exc), error=True)

    def _say(self, text: str, error: bool = False) -> None:
        colour = "#B34700" if error else "inherit"
        prefix = "⚠ " if error else ""
        self.message.value = f'<div style="color:{colour}">{prefix}{escape(text)}</div>'

    # --- actions (the same as the buttons) --------------------------------------------
    @property
    def cursor(self) -> int:
        return self.model.cursor

    def go(self, step: int) -> None:
        """Move the cursor to ``step``."""
        if not isinstance(step, int) or isinstance(step, bool):
            raise TxlibError(f"a step is a whole number from 0 to {self.model.last_step}, "
                             f"got {step!r}")
        self.slider.value = max(0, min(step, self.model.last_step))

    def step_forward(self) -> None:
        self.go(self.model.cursor + 1)

    def step_back(self) -> None:
        self.go(self.model.cursor - 1)

    def to_start(self) -> None:
        self.go(0)

    def to_end(self) -> None:
        self.go(self.model.last_step)

    def inject(self, kind: str, node: str | None = None) -> None:
        """Inject fault ``kind`` (see FAULT_CHOICES) on ``node`` right after the cursor."""
        self._edit(lambda: self.model.inject(kind, node))

    def click(self, content: object) -> None:
        """Do what a click on the diagram asked for (the front end's message: drop,
        duplicate or delay a message in flight, crash or restart a node); a malformed
        message raises TxlibError and changes nothing."""
        self._edit(lambda: self.model.click(content), raising=True)

    def _inject(self) -> None:
        self.inject(self.fault_kind.value, self.fault_node.value)

    def undo(self) -> None:
        self._edit(self.model.undo)

    def worse(self) -> None:
        """Load the shortest-to-find run with one more fault that blocks or breaks a rule.
        While the search lasts (seconds, longer in the browser) its button is off and
        the message counts the runs tried."""
        self.worse_button.disabled = True
        self._say("searching for one more fault that makes this run worse…")
        try:
            self._edit(lambda: self.model.worse(progress=self._searching))
        finally:
            self.worse_button.disabled = False

    def _searching(self, runs: int) -> None:
        self._say(f"searching for one more fault that makes this run worse: {runs:,} "
                  f"run{'' if runs == 1 else 's'} tried so far…")

    def reset(self) -> None:
        self._edit(self.model.reset)

    def load_preset(self, name: str | None) -> None:
        self._edit(lambda: self.model.preset(name or ""))

    def load_json(self, text: str) -> None:
        self._edit(lambda: self.model.load_json(text))

    def _edit(self, change: Callable[[], str], raising: bool = False) -> None:
        try:
            note = change()
        except TxlibError as exc:
            if raising:
                raise
            self._say(str(exc), error=True)
            return
        self._sync_controls()
        self._render()
        self._say(note)

    # --- playing: a timer steps forward until the end or a pause --------------------
    def _playing(self, on: bool) -> None:
        self.play.description = "⏸ pause" if on else "▷ play"
        if on:
            if self.model.cursor >= self.model.last_step:
                self.go(0)
            self._schedule()
        elif self._timer is not None:
            self._timer.cancel()
            self._timer = None

    def _schedule(self) -> None:
        self._timer = threading.Timer(SPEEDS[self.speed.value] / 1000, self._tick)
        self._timer.daemon = True
        self._timer.start()

    def _tick(self) -> None:
        if not self.play.value:
            return
        self.step_forward()
        if self.model.cursor >= self.model.last_step:
            self.play.value = False
        else:
            self._schedule()

    _timer: threading.Timer | None = None

    # --- rendering ------------------------------------------------------------------
    def _moved(self, step: int) -> None:
        self.model.move(step)
        self._render_frame()

    def _sync_controls(self) -> None:
        m = self.model
        cursor = m.cursor
        # Lowering the slider's maximum below its value pulls the value down, which moves
        # the model there (see _moved): move the slider to the model's step first.
        if m.last_step > self.slider.max:
            self.slider.max = m.last_step
        if self.slider.value != cursor:
            self.slider.value = cursor  # triggers a frame render
        self.slider.max = m.last_step
        nodes = list(m.run.nodes)
        if list(self.fault_node.options) != nodes:
            self.fault_node.options = nodes
            self.fault_node.value = nodes[0]
        roles = list(m.run.machines)
        if list(self.machine_role.options) != roles:
            self.machine_role.options = roles
            self.machine_role.tooltips = [f"the {r}'s state machine" for r in roles]
            self.machine_role.value = roles[0] if roles else None
        self.json.value = m.scenario.to_json()
        self.preset.value = self._preset_loaded()

    def _preset_loaded(self) -> str | None:
        """The named scenario the lab started from (loaded, reset to), for the presets
        menu to show; None (a blank menu) for any other scenario."""
        original = self.model.original
        named = NAMED_SCENARIOS.get(original.name)
        return original.name if named is not None and named == original else None

    def _render(self) -> None:
        m = self.model
        s = m.scenario
        heading = escape(s.name or s.protocol.upper())
        about = escape(s.description) if s.description else ""
        self.title.value = (f"<div style='margin:2px 0'><b style='font-size:15px'>{heading}"
                            f"</b> <span style='opacity:.85'>{about}</span></div>")
        self.json.value = s.to_json()
        self.faults_list.value = _faults_html(s.faults)
        self._render_frame()

    def _render_frame(self) -> None:
        m = self.model
        run, index = m.run, m.index
        self.diagram.value = spacetime_svg(run.trace, step=m.cursor, roles=run.roles,
                                           width=DIAGRAM_WIDTH, window=DIAGRAM_WINDOW,
                                           animate=True)
        self.machines.value = statecharts_html(run, m.cursor, self.machine_role.value)
        self.table.value = node_table_html(node_rows(run.trace, index, run.roles))
        self.status.value = outcome_html(run, m.cursor)
        if self.clicks is not None:
            self.clicks.targets = click_targets(run.trace, run.nodes, m.cursor,
                                                editable=not m.recorded)

    def _repr_mimebundle_(self, **kwargs: Any) -> Any:
        return self.widget._repr_mimebundle_(**kwargs)


def _faults_html(faults: Sequence[Fault]) -> str:
    if not faults:
        return "<i>no faults: the scenario runs as designed</i>"
    items = "".join(f"<li>{escape(f.describe())}</li>" for f in faults)
    return f"<b>fault plan</b><ol style='margin:2px 0'>{items}</ol>"


def lab(target: str | Scenario | Run = "2pc", **kwargs: Any) -> Lab:
    """Open the lab on a protocol (``"2pc"``, ``"3pc"``), a named scenario, a Scenario
    or a Run. Keyword arguments are those of ``simulate`` (participants, seed, faults,
    options). A Run that its scenario does not replay (recorded by real processes or found
    by the explorer) is shown as recorded."""
    if isinstance(target, Run) and not kwargs and target.recorded:
        try:
            replay = target.scenario.run()
        except TxlibError:
            replay = None
        if replay is None or replay.trace.to_jsonl() != target.trace.to_jsonl():
            return Lab.of_run(target)
    return Lab(as_scenario(target, **kwargs))
