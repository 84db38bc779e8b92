"""Lesson 04 (three-phase commit, ``notebooks/04_three_phase_commit.ipynb``): exercises
and the lesson's helpers.

Each checker replays the learner's fault plan on the default scenario (three
participants, seed 0) and judges the run the engine produced, never a guess.
"""

from __future__ import annotations

from typing import Any

from ..engine.faults import Fault, crash, drop, recover
from ..simulation.run import Run
from ..simulation.scenario import Scenario
from . import Exercise, Feedback, register
from .checking import fault_plan, listing
from .show import markdown_table
from .show import steps as steps  # re-exported for the notebook

table = markdown_table

CRASH_EXAMPLE = "[txlib.crash('coordinator', when='coordinator sends PRE_COMMIT to p1')]"


def crashed_in(run: Run, node: str = "coordinator") -> str | None:
    """The state `node` was in when it crashed (None if it never crashed)."""
    for event in run.trace:
        if event.kind == "crash" and event.node == node:
            return event.states[node]
    return None


def all_decided_at(run: Run) -> int | None:
    """Simulated time of the last participant's decision (None if one never decided)."""
    times = {e.node: e.time for e in run.trace if e.kind == "decision" and e.node != "coordinator"}
    return max(times.values()) if len(times) == len(run.participants) else None


# p1's PRE_COMMIT is lost; p2 and p3 pre-commit, acknowledge and crash at once, and are
# back at 60 ms; the coordinator, missing p1's ACK, commits and dies as it logs COMMIT.
FORGETFUL = (
    drop("PRE_COMMIT", dst="p1"),
    crash("p2", when="p2 sends ACK"), crash("p3", when="p3 sends ACK"),
    recover("p2", at_time=60), recover("p3", at_time=60),
    crash("coordinator", when="coordinator logs COMMIT"),
)


def forgetful_row(label: str, run: Run) -> tuple[str, str, str, str, str]:
    """What lesson 04's lazy-PRECOMMITTED comparison shows of one run: the outcome, what
    p2 and p3 found in their logs on restart, p1's decision and the broken invariants."""
    restarts = {e.node: e.time for e in run.trace.of_kind("recover") if e.node is not None}
    kept = {p: len([r for r in run.logs[p] if r.time <= t]) for p, t in restarts.items()}
    found = ", ".join(f"{p}: {' + '.join(r.record for r in run.logs[p][:kept[p]])}"
                      for p in ("p2", "p3"))
    problems = "; ".join(str(v) for v in run.violations) or "none"
    return label, run.outcome, found, run.decisions["p1"] or "undecided", problems


def _one_coordinator_crash(answer: Any) -> tuple[Fault, Feedback | None]:
    faults = fault_plan(answer, CRASH_EXAMPLE)
    if len(faults) != 1 or faults[0].kind != "crash" or faults[0].node != "coordinator":
        return faults[0], Feedback(False, "use exactly one fault, a crash of the coordinator: "
                                          "txlib.crash('coordinator', ...)")
    return faults[0], None


def _crash_run(answer: Any) -> Run | Feedback:
    """3PC with the learner's crash of the coordinator, or why that answer cannot do."""
    fault, bad = _one_coordinator_crash(answer)
    if bad is not None:
        return bad
    run = Scenario("3pc", faults=(fault,)).run()
    if run.unfired_faults:
        fault, why = run.unfired_faults[0]
        return Feedback(False, f"the fault '{fault.describe()}' had no effect: {why}")
    return run


def _compared_states(run: Run) -> bool:
    """True if the survivors ran the termination protocol (someone asked for states)."""
    return any(e.message is not None and e.message.type == "STATE_REQ"
               for e in run.trace.of_kind("send"))


def _log(run: Run, node: str) -> list[str]:
    return [r.record for r in run.logs[node]]


def _precommitted(run: Run) -> list[str]:
    """The participants that pre-committed before any of them timed out on the
    coordinator (so before the termination protocol could pre-commit the rest)."""
    done: list[str] = []
    for e in run.trace:
        if e.kind == "timeout" and e.node != "coordinator" and e.detail == "coordinator":
            break
        if e.kind == "log" and e.detail.startswith("PRECOMMITTED") and e.node is not None:
            done.append(e.node)
    return [p for p in run.participants if p in done]


def _termination(run: Run) -> str:
    """How the survivors of ``run`` committed without the coordinator, from the run: who
    was pre-committed when they compared states, and what the leader still had to do."""
    done = _precommitted(run)
    ready = [p for p in run.participants if p not in done]
    leader = next((e.node for e in run.trace.of_kind("send")
                   if e.message is not None and e.node in run.participants
                   and e.message.type in ("PRE_COMMIT", "DO_COMMIT")), "the leader")
    found = (f"The survivors compared states and found {listing(done)} pre-committed, so "
             "everyone had voted YES: ")
    if ready:
        return found + (f"{leader} led the termination protocol, pre-committed "
                        f"{listing(ready)} and committed.")
    return found + (f"every participant was pre-committed already, so {leader}, leading the "
                    "termination protocol, committed at once.")


# --- exercises --------------------------------------------------------------------------
@register("3pc-survivors-commit")
def _survivors_commit() -> Exercise:
    def check(answer: Any) -> Feedback:
        run = _crash_run(answer)
        if isinstance(run, Feedback):
            return run
        state = run.states["coordinator"]
        if run.outcome == "committed" and run.decisions["coordinator"] is None:
            return Feedback(True, f"committed while the coordinator stayed down (it crashed in "
                                  f"{state}). {_termination(run)}")
        if run.outcome == "committed":
            return Feedback(False, "everyone committed, but the coordinator had already forced "
                                   "COMMIT before it crashed: the participants only followed "
                                   "its decision. Crash it earlier, so that they have to "
                                   "decide by themselves.")
        if run.outcome == "aborted" and not _compared_states(run):
            return Feedback(False, "the survivors aborted, each alone: the coordinator crashed "
                                   "before any of them voted, so each aborted when its timer "
                                   "fired, with nothing to compare. Crash it later, once a "
                                   "PRE_COMMIT has gone out.")
        if run.outcome == "aborted":
            return Feedback(False, "the survivors aborted: when they compared states none of "
                                   "them was pre-committed (no PRE_COMMIT had reached anyone), "
                                   "and 'all uncertain' means abort. Crash it later, once a "
                                   "PRE_COMMIT has gone out.")
        return Feedback(False, f"that run ended {run.outcome}; look at run.summary().")

    return Exercise(
        name="3pc-survivors-commit",
        prompt="Place ONE crash of the coordinator (it never comes back) so that the three "
               "participants commit on their own, without any decision from the coordinator.",
        checker=check,
        hints=(
            "The survivors commit only if one of them is pre-committed.",
            "So the crash must come after the coordinator has started sending PRE_COMMIT, "
            "but before it has forced its COMMIT record.",
            "Try when='coordinator sends PRE_COMMIT to p1'.",
        ),
        answer="txlib.crash('coordinator', when='coordinator sends PRE_COMMIT to p1'): p1 "
               "receives PRE_COMMIT and pre-commits; p2 and p3 time out while READY; the "
               "termination protocol (p1 leads) sees a pre-committed participant, so every "
               "vote was YES and nobody can have aborted: it pre-commits p2 and p3, then "
               "commits. (Crashing after step 7, when all PRE_COMMITs are on their way, "
               "works too.)",
        example=[crash("coordinator", when="coordinator sends PRE_COMMIT to p1")],
        wrong=(
            (crash("coordinator", at_step=4), "Crash it later"),
            (crash("coordinator"), "the survivors aborted, each alone"),
            (crash("coordinator", when="coordinator logs COMMIT"), "already forced COMMIT"),
            (crash("p1", when="p1 sends ACK"), "a crash of the coordinator"),
        ),
    )


@register("3pc-abort-despite-precommit")
def _abort_despite_precommit() -> Exercise:
    def check(answer: Any) -> Feedback:
        run = _crash_run(answer)
        if isinstance(run, Feedback):
            return run
        log = _log(run, "coordinator")
        if "PRECOMMIT" not in log:
            holds = f"holds only {', '.join(log)}" if log else "is empty"
            return Feedback(False, f"the coordinator's log {holds}: it crashed before it "
                                   "forced PRECOMMIT. Crash it later.")
        if run.outcome == "aborted":
            return Feedback(True, "aborted, although the coordinator's log says PRECOMMIT: it "
                                  "crashed after forcing the record and before any PRE_COMMIT "
                                  "left, so every survivor was READY and the decision rule "
                                  "chose abort. That is safe: a coordinator that is down "
                                  "cannot commit. What decides is what the survivors know, "
                                  "not what the coordinator wrote; on restart it finds "
                                  "PRECOMMIT and must ask them.")
        who = ", ".join(_precommitted(run)) or "somebody"
        return Feedback(False, f"that run ended {run.outcome}: {who} had pre-committed before "
                               "the termination protocol ran. Crash the coordinator earlier: "
                               "after it forces PRECOMMIT, before its first PRE_COMMIT is sent.")

    return Exercise(
        name="3pc-abort-despite-precommit",
        prompt="Place ONE crash of the coordinator so that its durable log holds PRECOMMIT "
               "(it knew everyone voted YES), and yet the participants abort.",
        checker=check,
        hints=(
            "The survivors abort when none of them is pre-committed.",
            "So no PRE_COMMIT may leave the coordinator, yet PRECOMMIT must be in its log.",
            "A trigger can fire on a log write: when='coordinator logs PRECOMMIT'.",
        ),
        answer="txlib.crash('coordinator', when='coordinator logs PRECOMMIT'): the record is "
               "forced, then the coordinator dies before sending anything. Every participant "
               "is READY, so the termination protocol aborts; the coordinator can no longer "
               "commit, so abort is safe.",
        example=[crash("coordinator", when="coordinator logs PRECOMMIT")],
        wrong=(
            (crash("coordinator", at_step=7), "Crash the coordinator earlier"),
            (crash("coordinator", when="coordinator sends PRE_COMMIT to p1"),
             "p1 had pre-committed"),
            (crash("coordinator", at_step=4), "before it forced PRECOMMIT"),
            (crash("coordinator"), "the coordinator's log is empty"),
        ),
    )
