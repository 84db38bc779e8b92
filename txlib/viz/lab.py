"""The lab's logic without any widget: a scenario, its run, a cursor, and edits.

:class:`LabModel` holds what a learner is looking at and changes it through a few
operations (move the cursor, inject a fault at the cursor, undo, reset, load a preset or
JSON). Every operation either succeeds or leaves the model exactly as it was and returns
a message, so nothing the learner did is lost. The widget in :mod:`txlib.viz.widgets` is
a thin view over this model.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

from ..engine.faults import (
    Fault,
    crash,
    delay,
    drop,
    duplicate,
    fail_step,
    heal,
    partition,
    recover,
    slow,
    vote_no,
)
from ..errors import TxlibError, bad_choice, choices, shown
from ..presets import NAMED_SCENARIOS, scenario
from ..simulation.run import Run
from ..simulation.scenario import Scenario
from .clicks import aimed, find_flying, message_fault_candidates, node_is_up, read_click
from .frames import last_index_of_step

# The faults a learner can inject at the cursor, with what each needs.
FAULT_CHOICES: dict[str, str] = {
    "crash": "crash a node now",
    "recover": "restart a crashed node now",
    "drop-to": "lose the next message sent to a node",
    "drop-from": "lose the next message sent by a node",
    "duplicate-to": "deliver the next message to a node twice",
    "delay-to": "hold the next message to a node 100 ms longer",
    "partition": "cut a node off from the others now",
    "heal": "end the partition now",
    "vote-no": "make a participant vote NO from now on",
    "slow": "make a node's messages 50 ms slower from now on",
    "fail-step": "saga: make the chosen service's step fail from now on",
    "fail-compensation": "saga: make the chosen service's compensation fail from now on",
}


def make_fault(kind: str, node: str | None, step: int) -> Fault:
    """The fault record for a learner's choice ``kind`` on ``node`` right after ``step``."""
    makers: dict[str, Callable[[], Fault]] = {
        "crash": lambda: crash(_need(node, kind), at_step=step),
        "recover": lambda: recover(_need(node, kind), at_step=step),
        "drop-to": lambda: drop(dst=_need(node, kind), at_step=step),
        "drop-from": lambda: drop(src=_need(node, kind), at_step=step),
        "duplicate-to": lambda: duplicate(dst=_need(node, kind), at_step=step),
        "delay-to": lambda: delay(100, dst=_need(node, kind), at_step=step),
        "partition": lambda: partition([_need(node, kind)], at_step=step),
        "heal": lambda: heal(at_step=step),
        "vote-no": lambda: vote_no(_need(node, kind), at_step=step),
        "slow": lambda: slow(_need(node, kind), 50, at_step=step),
    }
    if not isinstance(kind, str) or kind not in makers:  # a list or dict is not hashable
        raise bad_choice("fault", kind, FAULT_CHOICES)
    return makers[kind]()


def _need(node: str | None, kind: str) -> str:
    if not node:
        raise TxlibError(f"choose a node for '{kind}'")
    return node


@dataclass
class LabModel:
    """A scenario, its run and a cursor (a scheduler step, 0 = before anything)."""

    scenario: Scenario
    original: Scenario
    run: Run
    cursor: int = 0
    recorded: bool = False  # a run recorded elsewhere (real processes, the explorer)

    @classmethod
    def of(cls, scenario: Scenario) -> LabModel:
        return cls(scenario=scenario, original=scenario, run=scenario.run())

    @classmethod
    def of_run(cls, run: Run) -> LabModel:
        """Show a recorded run as it is. Its scenario does not replay it (it came from real
        processes or the explorer), so faults cannot be injected into it."""
        return cls(scenario=run.scenario, original=run.scenario, run=run, recorded=True)

    def _editable(self) -> None:
        if self.recorded:
            raise TxlibError("this run was recorded (by real processes or the explorer), so "
                             "it cannot be replayed with a new fault; open its scenario in a "
                             "new lab to experiment: txlib.lab(run.scenario)")

    # --- the cursor ---------------------------------------------------------------
    @property
    def last_step(self) -> int:
        return self.run.steps

    @property
    def index(self) -> int:
        """Index of the last trace event at or before the cursor (-1: none yet)."""
        return last_index_of_step(self.run.trace, self.cursor)

    def move(self, step: int) -> None:
        """Put the cursor on ``step``, kept within the run."""
        if not isinstance(step, int) or isinstance(step, bool):
            raise TxlibError(f"a step is a whole number from 0 to {self.last_step}, got {step!r}")
        self.cursor = max(0, min(step, self.last_step))

    # --- edits: each returns a message for the learner -------------------------------
    def inject(self, kind: str, node: str | None = None) -> str:
        """Add one fault right after the cursor's step and replay; the cursor stays."""
        self._editable()
        if not isinstance(kind, str) or kind not in FAULT_CHOICES:
            raise bad_choice("fault", kind, FAULT_CHOICES)
        if kind in ("fail-step", "fail-compensation"):
            fault = self._step_fault(node, compensation=kind == "fail-compensation")
        else:
            fault = make_fault(kind, node, self.cursor)
        deciders = self.scenario.roster.deciders
        if fault.kind == "vote_no" and not deciders:  # a saga: no one votes
            raise TxlibError(f"no node votes in {self.scenario.protocol}, so 'vote-no' "
                             "applies to none; make a step fail with 'fail-step' instead")
        if fault.kind == "vote_no" and node not in deciders:
            raise TxlibError(f"only a participant votes, and {node!r} is not one; choose one "
                             f"of {choices(deciders)} for 'vote-no'")
        self._replace(self.scenario.with_faults(fault))
        note = f"added: {fault.describe()}"
        for f, why in self.run.unfired_faults:
            if f == fault:
                note += f". It had no effect: {why}"
        return note

    def click(self, content: object) -> str:
        """Apply what the learner clicked on the diagram (the front end's message, see
        :func:`txlib.viz.clicks.read_click`): drop, duplicate or delay a message in
        flight at the cursor, or crash or restart a node right after the cursor."""
        self._editable()
        click = read_click(content)
        if click.step != self.cursor:
            raise TxlibError(f"that click was made at step {shown(click.step)}, but the lab "
                             f"is at step {self.cursor} now; click again")
        if click.node is not None:
            names = self.scenario.roster.names
            if click.node not in names:
                raise bad_choice("node", click.node, names)
            up = node_is_up(self.run.trace, click.node, self.cursor)
            if click.action == "crash" and not up:
                raise TxlibError(f"{click.node} is already down at step {self.cursor}; "
                                 "restart it instead")
            if click.action == "recover" and up:
                raise TxlibError(f"{click.node} is up at step {self.cursor}; crash it first")
            return self.inject(click.action, click.node)
        assert click.message is not None  # read_click gives a message or a node
        return self._aim_at_message(click.action, click.message)

    def _aim_at_message(self, action: str, message: int) -> str:
        before = self.run.trace
        flying = find_flying(before, self.cursor, message)
        for fault in message_fault_candidates(action, flying):
            candidate = self.scenario.with_faults(fault)
            run = candidate.run()
            if aimed(fault, flying, before, run.trace):
                self._replace(candidate, run=run)
                m = flying.message
                return (f"added: {fault.describe()}: it hits message {m.id}, in flight at "
                        f"step {self.cursor} (the network decides a message's fate as it "
                        f"is sent, at step {flying.sent_step})")
        raise TxlibError(f"no fault of the plan can hit message {message} alone (other "
                         f"messages like it were sent just before it); use the fault panel")

    def _step_fault(self, node: str | None, compensation: bool) -> Fault:
        """``fail_step`` for the step that service ``node`` runs in this saga."""
        scenario = self.scenario
        runs_steps = [n for n in scenario.roster.names if scenario.steps_at(n)]
        if not runs_steps:
            raise TxlibError("failing a step applies to sagas; choose a saga preset first")
        steps = scenario.steps_at(node or "")
        if not steps:
            raise TxlibError(f"{node!r} runs no step of this saga; choose one of "
                             f"{choices(runs_steps)}")
        return fail_step(steps[0], compensation=compensation, at_step=self.cursor)

    def undo(self) -> str:
        """Remove the most recently added fault."""
        self._editable()
        if not self.scenario.faults:
            return "no fault to undo"
        removed = self.scenario.faults[-1]
        self._replace(self.scenario.replace(faults=self.scenario.faults[:-1]))
        return f"removed: {removed.describe()}"

    def reset(self) -> str:
        """Back to the scenario the lab started with, cursor at the start. A recorded
        run (real processes, an explorer finding) goes back to that recording: its
        scenario may not replay it."""
        if self.recorded:
            self.cursor = 0
            return "reset (the recorded run is unchanged)"
        self._replace(self.original)
        self.cursor = 0
        return "reset"

    def preset(self, name: str) -> str:
        """Load a named scenario."""
        chosen = scenario(name)
        self._replace(chosen, original=True)
        self.cursor = 0
        return f"loaded {name}: {chosen.description}"

    def load_json(self, text: str) -> str:
        """Load a scenario from JSON (malformed input raises and changes nothing)."""
        loaded = Scenario.from_json(text)
        self._replace(loaded, original=True)
        self.cursor = 0
        return "loaded the scenario from JSON"

    def worse(self, budget: int = 1, progress: Callable[[int], None] | None = None) -> str:
        """Search for up to ``budget`` more faults that make this run block or break an
        invariant; load the first such run (fewest faults) with the cursor where it
        goes wrong. ``progress`` is told the runs tried so far while the search lasts
        (see :func:`~txlib.explorer.worse.search_worse`)."""
        # local: the search is only needed here
        from ..explorer.grid import severity
        from ..explorer.worse import MAX_TOTAL_STEPS, search_worse

        self._editable()
        now = severity(self.run)
        if now == 2:  # nothing is worse than a broken rule: the search tries nothing
            broken = self.run.violations[0] if self.run.violations else None
            what = (f"breaks {broken.invariant} at step {broken.step}" if broken is not None
                    else f"ends {self.run.outcome}")
            return f"this run already {what}: nothing is worse"

        # No time limit: the answer must not depend on how fast the machine is. Its
        # runs, and the steps they add up to, are limited instead.
        search = search_worse(self.scenario, budget=budget, max_seconds=math.inf,
                              max_total_steps=MAX_TOTAL_STEPS, progress=progress)
        found = search.found
        up_to = "one added fault" if budget == 1 else f"up to {budget} added faults"
        # a run that blocks already is searched for a broken rule only
        worse = "breaks a safety rule" if now == 1 else "blocks or breaks a safety rule"
        already = f"this run already ends {self.run.outcome}, and " if now == 1 else ""
        if found is None and search.complete:
            return (f"{already}no run with {up_to} (a crash, a lost message or a partition "
                    f"after any step) {worse}")
        if found is None:
            return (f"{already}none of the {search.runs:,} runs tried with {up_to} {worse}, "
                    f"but {self._stops(search.stopped_by, search.runs)}"
                    f"{self._advice(search.stopped_by)}: some placements were never tried")
        self._replace(found.scenario)
        self.move(found.step)
        stops = ("the search stops there" if search.stopped_by == "max_runs"
                 else self._stops(search.stopped_by, search.runs))
        earliest = "" if search.complete else (
            f" (the earliest of the {search.runs:,} runs tried; {stops}, and some "
            "placements were never tried)")
        return f"worse, with {found.faults[-1].describe()}: {found.reason}{earliest}"

    @staticmethod
    def _stops(stopped_by: str | None, runs: int) -> str:
        """Where "can it get worse?" stopped, in words."""
        from ..explorer.worse import MAX_TOTAL_STEPS

        if stopped_by == "max_total_steps":
            return f"the search stops once the runs it tries add up to {MAX_TOTAL_STEPS:,} steps"
        if stopped_by == "max_seconds":
            return "the search stops at its time limit"
        return f"the search stops at {runs:,} runs"

    def _advice(self, stopped_by: str | None) -> str:
        """How to let the search try more, when its step budget stopped it."""
        if stopped_by != "max_total_steps":
            return ""
        return (f" (this run alone has {self.run.steps:,} steps; a shorter run, with a "
                "smaller horizon or fewer participants, leaves room for more runs)")

    def _replace(self, new: Scenario, original: bool = False, run: Run | None = None) -> None:
        if run is None:
            run = new.run()  # may raise: then nothing below happens
        self.scenario, self.run, self.recorded = new, run, False
        if original:
            self.original = new
        self.move(self.cursor)


def preset_names() -> list[str]:
    """Every named scenario, for the presets menu."""
    return list(NAMED_SCENARIOS)
