"""Lesson 06 (Paxos Commit, ``notebooks/06_paxos_commit.ipynb``): exercises and the
lesson's helpers.

Every table is computed from runs of the engine; every checker replays the learner's
answer and judges the run it produced.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from itertools import combinations
from typing import Any

from IPython.display import Markdown

from ..engine.faults import Fault, crash
from ..errors import shown
from ..explorer.search import Exploration
from ..presets.paxos import AFTER_THE_VOTES
from ..properties.costs import PaperCosts, paper_costs
from ..simulation.run import Run
from ..simulation.scenario import Scenario
from . import Exercise, Feedback, register
from .checking import fault_plan, plural, whole_number
from .show import markdown_table

P = "paxos-commit"
PROTOCOLS = ("2pc", "3pc", P)


# --- Paxos in one page ---------------------------------------------------------------------
def majorities(acceptors: int) -> list[tuple[str, ...]]:
    """Every smallest majority of ``acceptors`` acceptors a1, a2, ..."""
    names = [f"a{i}" for i in range(1, acceptors + 1)]
    return list(combinations(names, acceptors // 2 + 1))


def intersections(acceptors: int) -> Markdown:
    """A grid: each pair of majorities and the acceptors they share."""
    groups = majorities(acceptors)
    label = ["{" + ", ".join(g) + "}" for g in groups]
    rows = [(label[i], *(", ".join(sorted(set(a) & set(b))) for b in groups))
            for i, a in enumerate(groups)]
    return markdown_table(["majority", *label], rows)


def always_intersect(acceptors: int) -> tuple[int, int]:
    """(pairs of majorities, pairs that share no acceptor) for ``acceptors`` acceptors."""
    groups = majorities(acceptors)
    pairs = list(combinations(groups, 2))
    return len(pairs), sum(1 for a, b in pairs if not set(a) & set(b))


# --- the problem, restated ---------------------------------------------------------------
def outcomes(plans: Sequence[tuple[str, Sequence[Fault]]],
             protocols: Sequence[str] = PROTOCOLS, **options: Any) -> Markdown:
    """One row per fault plan, one column per protocol: how each run ended."""
    rows = []
    for what, faults in plans:
        runs = [Scenario(p, faults=tuple(faults), options=dict(options)).run()
                for p in protocols]
        rows.append((what, *(r.outcome for r in runs)))
    return markdown_table(["fault plan", *protocols], rows)


# --- the acceptors' memory ---------------------------------------------------------------
def accepted_at(scenario: Scenario, step: int) -> dict[str, dict[str, str]]:
    """What each acceptor has forced to its log after ``step`` scheduler steps: for each
    instance, the highest ballot promised and the ballot and value last accepted."""
    run = scenario.replace(options={**scenario.options, "max_steps": max(step, 1)}).run()
    out: dict[str, dict[str, str]] = {}
    for node in run.roster.with_role("acceptor"):
        seen: dict[str, list[Any]] = {p: [None, None, None] for p in run.participants}
        for record in run.logs[node]:
            if not record.forced:
                continue
            if record.record == "PROMISED":
                for ins in record.data["instances"]:
                    seen[ins][0] = record.data["bal"]
            elif record.record == "ACCEPTED":
                for ins, value in record.data["values"].items():
                    seen[ins][1:] = [record.data["bal"], value]
        out[node] = {p: _cell(*seen[p]) for p in run.participants}
        if node in run.down:
            out[node] = {p: f"✝ {cell}" for p, cell in out[node].items()}
    return out


def _cell(promised: int | None, ballot: int | None, value: str | None) -> str:
    parts = [] if ballot is None else [f"{value} (ballot {ballot})"]
    if promised is not None and promised != ballot:
        parts.append(f"promised ballot {promised}")
    return "; ".join(parts) or "—"


def acceptors_table(scenario: Scenario, step: int) -> Markdown:
    """The acceptors' forced state after ``step`` steps, one row per acceptor, one
    column per participant's instance (✝: the acceptor is down)."""
    state = accepted_at(scenario, step)
    instances = next(iter(state.values())).keys() if state else ()
    return markdown_table(["acceptor", *(f"instance of {p}" for p in instances)],
                          [(a, *cells.values()) for a, cells in state.items()])


def takeover(run: Run) -> list[str]:
    """What happened after the leader went silent, one line per event that matters."""
    lines = []
    phases: set[tuple[str, str, int]] = set()  # a broadcast is told once
    for e in run.trace:
        m = e.message
        if e.kind == "crash":
            lines.append(f"step {e.step:>2}, {e.time:>3} ms: {e.node} crashes")
        elif e.kind == "state" and e.detail == "LEADING":
            lines.append(f"step {e.step:>2}, {e.time:>3} ms: {e.node} takes over")
        elif e.kind == "send" and m is not None and m.type in ("P1A", "P2A") and \
                m.payload.get("bal", 0) > 0 and (m.src, m.type, m.payload["bal"]) not in phases:
            phases.add((m.src, m.type, m.payload["bal"]))
            what = "phase 1 (P1A)" if m.type == "P1A" else f"phase 2 (P2A {m.payload['values']})"
            lines.append(f"step {e.step:>2}, {e.time:>3} ms: {m.src} sends {what}, "
                         f"ballot {m.payload['bal']}, to the other acceptors")
        elif e.kind == "decision" and e.node in run.participants:
            lines.append(f"step {e.step:>2}, {e.time:>3} ms: {e.node} decides {e.detail}")
    return lines


# --- the cost table ------------------------------------------------------------------------
def gray_lamport(protocol: str, n: int, f: int) -> dict[str, int]:
    """Gray & Lamport's Table 1, commit case: 'delays', 'messages', 'messages co-located',
    'writes' for ``protocol`` ('2pc', 'paxos' or 'faster') with N participants, F faults."""
    if protocol == "2pc":
        return {"delays": 4, "messages": 3 * n - 1, "messages co-located": 3 * n - 3,
                "writes": n + 1}
    if protocol == "paxos":
        return {"delays": 5, "messages": (n + 1) * (f + 3) - 4,
                "messages co-located": n * (f + 3) - 3, "writes": n + f + 1}
    return {"delays": 4, "messages": n * (2 * f + 3) - 1,
            "messages co-located": (n - 1) * (2 * f + 3), "writes": n + f + 1}


VARIANTS: dict[str, tuple[str, dict[str, Any]]] = {
    "2pc": ("2pc", {}), "paxos": (P, {}), "faster": (P, {"faster": True})}
NAMES = {"2pc": "2PC", "paxos": "Paxos Commit", "faster": "Faster Paxos Commit"}


def normal_run(protocol: str, n: int, f: int) -> Run:
    """The commit case of ``protocol`` ('2pc', 'paxos', 'faster') with N participants
    and 2F+1 acceptors."""
    name, options = VARIANTS[protocol]
    if name == P:
        options = {**options, "acceptors": 2 * f + 1}
    return Scenario(name, participants=tuple(f"p{i}" for i in range(1, n + 1)),
                    options=options).run()


def placement(run: Run, colocated: bool) -> dict[str, str]:
    """Gray & Lamport's machines: the leader always shares a machine with a1; co-located,
    the leader and a1 run on p1's machine and acceptor ai on pi's."""
    if not colocated:
        return {"a1": "coordinator"}
    machine = {"coordinator": run.participants[0]}
    machine.update({f"a{i}": p for i, p in enumerate(run.participants, 1)})
    return machine


def measured(protocol: str, n: int, f: int) -> dict[str, int]:
    """The same four figures as :func:`gray_lamport`, counted on a run."""
    run = normal_run(protocol, n, f)
    apart = _costs(run, placement(run, colocated=False))
    together = _costs(run, placement(run, colocated=True))
    return {"delays": apart.delays, "messages": apart.messages,
            "messages co-located": together.messages, "writes": apart.writes}


def _costs(run: Run, machine: dict[str, str]) -> PaperCosts:
    costs = paper_costs(run.trace, run.participants, machine)
    if costs is None:
        raise ValueError(f"{run.scenario.protocol} did not decide")  # never in the commit case
    return costs


COST_COLUMNS = ("delays", "messages", "messages co-located", "writes")


def cost_rows(ns: Iterable[int], fs: Iterable[int]) -> list[tuple[str, int, int, dict[str, int],
                                                                 dict[str, int]]]:
    """(protocol, N, F, measured, formula) for 2PC (F = 0) and both Paxos Commits, for
    every N in ``ns`` and F in ``fs`` with N >= F + 1 (co-location needs a participant's
    machine for each of the F + 1 acceptors used)."""
    ns, fs = list(ns), list(fs)
    cases = [("2pc", n, 0) for n in ns]
    cases += [(p, n, f) for p in ("paxos", "faster") for f in fs for n in ns if n >= f + 1]
    return [(p, n, f, measured(p, n, f), gray_lamport(p, n, f)) for p, n, f in cases]


def cost_table(ns: Iterable[int] = (2, 3, 4), fs: Iterable[int] = (1, 2)) -> Markdown:
    """Measured figures next to Gray & Lamport's formulas ('12 = 12' when they agree)."""
    rows = []
    for p, n, f, got, paper in cost_rows(ns, fs):
        cells = [f"{got[c]} = {paper[c]}" if got[c] == paper[c] else f"**{got[c]} ≠ {paper[c]}**"
                 for c in COST_COLUMNS]
        rows.append((NAMES[p], n, f, *cells))
    return markdown_table(["protocol", "N", "F", "message delays", "messages",
                           "messages, co-located", "stable writes"], rows)


def f0_table(n: int = 3) -> Markdown:
    """2PC against Paxos Commit with one acceptor (F = 0), the acceptor on a machine of its
    own or on the coordinator's."""
    two, paxos = normal_run("2pc", n, 0), normal_run("paxos", n, 0)
    rows = [("2PC", _costs(two, {})),
            ("Paxos Commit, F = 0, a1 on its own machine", _costs(paxos, {})),
            ("Paxos Commit, F = 0, a1 on the coordinator's machine",
             _costs(paxos, {"a1": "coordinator"}))]
    return markdown_table([f"N = {n}, commit case", "message delays", "messages",
                           "stable writes"],
                          [(what, c.delays, c.messages, c.writes) for what, c in rows])


# --- the explorer --------------------------------------------------------------------------
def explored(result: Exploration) -> str:
    """What a bounded search found, in one line without its timing (which varies)."""
    found = "; ".join(f"{f.invariant} broken after {plural(len(f.path), 'step')}"
                      for f in result.violations) or "no violation"
    bound = "complete" if result.complete else f"stopped by {result.stopped_by}"
    return f"{result.model}: {result.states:,} states, depth {result.depth} ({bound}): {found}"


def liveness(result: Exploration) -> str:
    """Whether a search found a blocking state, in one line without its timing."""
    bound = "complete" if result.complete else f"stopped by {result.stopped_by}"
    settings = ", ".join(f"{k}={v}" for k, v in result.settings.items())
    head = f"{result.model} ({settings}): {result.states:,} states ({bound})"
    if result.blocking is None:
        return f"{head}: no blocking state"
    return (f"{head}: {result.blocking_states:,} blocking states, the first after "
            f"{plural(result.blocking.depth, 'step')}")


# --- exercises -----------------------------------------------------------------------------
CRASH_EXAMPLE = "[txlib.crash('a1', at_step=0)]"


def _waits(run: Run) -> bool:
    """A live participant never decided."""
    return any(run.decisions[p] is None and p not in run.down for p in run.participants)


def _crash_plan(answer: Any) -> tuple[Fault, ...] | Feedback:
    faults = fault_plan(answer, CRASH_EXAMPLE)
    other = sorted({f.kind for f in faults if f.kind != "crash"})
    if other:
        return Feedback(False, f"use only txlib.crash faults; your plan also has "
                               f"{', '.join(other)}. A partition of a majority makes it wait "
                               "too (section 6): here, find how few crashes do.")
    return faults


@register("paxos-commit-make-it-wait")
def _make_it_wait() -> Exercise:
    def check(answer: Any) -> Feedback:
        faults = _crash_plan(answer)
        if isinstance(faults, Feedback):
            return faults
        run = Scenario(P, faults=faults).run()
        if not _waits(run):
            return Feedback(False, f"that run ended {run.outcome}: every live participant "
                                   f"decided. {_who_led(run)}")
        for i, fault in enumerate(faults):
            fewer = Scenario(P, faults=faults[:i] + faults[i + 1:]).run()
            if _waits(fewer):
                return Feedback(False, f"it waits, but not minimal: without "
                                       f"'{fault.describe()}' it still waits "
                                       f"({fewer.outcome}). Take that crash out.")
        return Feedback(True, f"{plural(len(faults), 'crash', 'crashes')}, and every live "
                              f"participant waits in doubt ({run.outcome}), while no "
                              "crash can be spared. With 3 acceptors a ballot needs 2; "
                              "two acceptors down leave one, and nobody can learn or "
                              "choose anything.")

    return Exercise(
        name="paxos-commit-make-it-wait",
        prompt="Paxos Commit, three participants, three acceptors (F = 1), seed 0. Using "
               "only txlib.crash (crashed nodes never come back), find a minimal fault "
               "plan that makes it wait: some live participant never decides, and "
               "removing any one of your crashes lets everyone decide.",
        checker=check,
        hints=(
            "Crashing the leader alone does not do it: you saw a1 take over.",
            "A ballot needs a majority of the acceptors to answer. How many must be down "
            "so that no majority is left?",
            "Crash two acceptors at step 0.",
        ),
        answer="[txlib.crash('a1', at_step=0), txlib.crash('a2', at_step=0)]: F + 1 = 2 "
               "acceptors down leave one, not a majority, so ballot 0 cannot finish and "
               "no higher ballot can either; the participants wait, holding their locks. "
               "Any two acceptors will do.",
        example=[crash("a1", at_step=0), crash("a2", at_step=0)],
        wrong=(
            ([crash("coordinator", when="coordinator receives P2B")], "committed"),
            ([crash("a1", at_step=0)], "committed"),
            ([crash("a1", at_step=0), crash("a2", at_step=0), crash("a3", at_step=0)],
             "not minimal"),
            ([crash("a1", at_step=0), crash("a2", at_step=0), crash("coordinator", at_step=0)],
             "No participant ever heard PREPARE"),
            ([crash("coordinator", when="coordinator receives P2B"),
              crash("a1", when="coordinator receives P2B")], "ended"),
        ),
    )


def _who_led(run: Run) -> str:
    """Why every live participant could decide in ``run``."""
    leaders = [e.node for e in run.trace.of_kind("state") if e.detail == "LEADING"]
    if leaders:
        return (f"{leaders[0]} took over as leader and a majority of acceptors answered "
                "it.")
    heard = {e.node for e in run.trace.of_kind("deliver")
             if e.message is not None and e.message.type == "PREPARE"}
    if not heard & set(run.participants):
        return ("No participant ever heard PREPARE (the leader was down first), so none "
                "voted, and each aborted alone when its prepare timer fired: a participant "
                "that never voted has nothing to wait for. Let them vote first.")
    return "A majority of acceptors was still there to choose every vote."


def _why_it_waits(stuck: Run, count: int) -> str:
    """Why ``count`` acceptors are not enough, from the run that waited."""
    acceptors = stuck.roster.with_role("acceptor")
    crashed = _named(sorted({e.node for e in stuck.trace.of_kind("crash")
                             if e.node in acceptors}), count)
    even = (f" (run as {count + 1} acceptors with a{count + 1} never up: the same "
            "majority)" if count % 2 == 0 else "")
    return (f"With {plural(count, 'acceptor')} a majority is {count // 2 + 1}; with "
            f"{', '.join(crashed)} and the leader down{even}, the run ended "
            f"{stuck.outcome}: {plural(count - len(crashed), 'acceptor')} left cannot form "
            "a majority, so the live participants wait.")


def _named(acceptors: Iterable[str], count: int) -> list[str]:
    """The crashed acceptors among the first ``count`` (not the stand-in for an even
    count)."""
    return [a for a in acceptors if int(a[1:]) <= count]


def survives_two(count: int) -> Run | None:
    """A run with ``count`` acceptors (an even count is run as count + 1 with the extra
    one down from the start: the same majority) where two acceptors (or all, if fewer)
    and the leader crash and some live participant waits; None if every pair survives."""
    real = count + 1 if count % 2 == 0 else count
    names = [f"a{i}" for i in range(1, real + 1)]
    spare = [crash(names[-1], at_step=0)] if real != count else []
    for pair in combinations(names[:count], min(2, count)):
        faults = (*spare, *(crash(a, at_step=0) for a in pair), AFTER_THE_VOTES)
        run = Scenario(P, faults=faults, options={"acceptors": real}).run()
        if _waits(run):
            return run
    return None


@register("paxos-commit-acceptors-for-two")
def _acceptors_for_two() -> Exercise:
    def check(answer: Any) -> Feedback:
        count = whole_number(answer, "the number of acceptors")
        if count < 1 or count > 15:
            return Feedback(False, f"pick a number of acceptors from 1 to 15, not "
                                   f"{shown(count)}.")
        stuck = survives_two(count)
        if stuck is not None:
            return Feedback(False, _why_it_waits(stuck, count))
        if count > 5:
            return Feedback(False, f"{count} acceptors survive two crashes, but fewer do: "
                                   f"2F + 1 acceptors survive F, and each extra acceptor "
                                   "costs messages and a write per transaction.")
        return Feedback(True, f"{count} acceptors: any two crash (and the leader with them) "
                              "and the other three are a majority, which every ballot "
                              "needs. 2F + 1 = 5 for F = 2.")

    return Exercise(
        name="paxos-commit-acceptors-for-two",
        prompt="How many acceptors does Paxos Commit need so that, whichever two "
               "acceptors crash, and the leader with them, every live participant "
               "still decides? Give the smallest number.",
        checker=check,
        hints=(
            "Every ballot needs a majority of all the acceptors, crashed ones included.",
            "After two crashes, the live acceptors must still be more than half of all.",
        ),
        answer="5 = 2F + 1 with F = 2: any two down leave three, a majority of five. Four "
               "is not enough: a majority of four is three, and two crashes leave two.",
        example=5,
        wrong=((3, "cannot form a majority"), (4, "a majority is 3"), (7, "fewer do")),
    )
