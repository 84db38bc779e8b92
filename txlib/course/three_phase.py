"""Exercises on three-phase commit (lessons 04 and 05).

Each checker replays the learner's fault plan on the default scenario (three
participants, seed 0) and judges the run the engine produced, never a guess.
"""

from __future__ import annotations

from typing import Any

from ..engine.faults import Fault, crash, partition
from ..simulation.run import Run
from ..simulation.scenario import Scenario
from . import Exercise, Feedback, register

NETWORK_KINDS = ("partition", "heal", "drop")


def _faults(answer: Any) -> tuple[Fault, ...]:
    if isinstance(answer, Fault):
        return (answer,)
    if isinstance(answer, (list, tuple)) and answer and all(isinstance(f, Fault) for f in answer):
        return tuple(answer)
    raise TypeError("answer with a fault or a list of faults, e.g. [txlib.crash('coordinator', "
                    "when='coordinator sends PRE_COMMIT to p1')]")


def _one_coordinator_crash(answer: Any) -> tuple[Fault, Feedback | None]:
    faults = _faults(answer)
    if len(faults) != 1 or faults[0].kind != "crash" or faults[0].node != "coordinator":
        return faults[0], Feedback(False, "use exactly one fault, a crash of the coordinator: "
                                          "txlib.crash('coordinator', ...)")
    return faults[0], None


def _unfired(run: Run) -> Feedback | None:
    if run.unfired_faults:
        fault, why = run.unfired_faults[0]
        return Feedback(False, f"the fault '{fault.describe()}' had no effect: {why}")
    return None


def _log(run: Run, node: str) -> list[str]:
    return [r.record for r in run.logs[node]]


def _precommitted(run: Run) -> list[str]:
    return [p for p in run.participants if "PRECOMMITTED" in _log(run, p)]


def _network_only(faults: tuple[Fault, ...]) -> Feedback | None:
    other = sorted({f.kind for f in faults if f.kind not in NETWORK_KINDS})
    if other:
        return Feedback(False, f"use only network faults ({', '.join(NETWORK_KINDS)}); your "
                               f"plan also has {', '.join(other)}. Crashes alone never split "
                               "3PC, and slow messages were lesson 04's story: this one is "
                               "about messages that cannot get through.")
    return None


# --- lesson 04 -------------------------------------------------------------------------
@register("3pc-survivors-commit")
def _survivors_commit() -> Exercise:
    def check(answer: Any) -> Feedback:
        fault, bad = _one_coordinator_crash(answer)
        if bad is not None:
            return bad
        run = Scenario("3pc", faults=(fault,)).run()
        if (bad := _unfired(run)) is not None:
            return bad
        state = run.states["coordinator"]
        if run.outcome == "committed" and run.decisions["coordinator"] is None:
            return Feedback(True, f"committed while the coordinator stayed down (it crashed in "
                                  f"{state}). The survivors compared states and found a "
                                  "pre-committed one, so everyone had voted YES: p1 led the "
                                  "termination protocol, pre-committed the rest and committed.")
        if run.outcome == "committed":
            return Feedback(False, "everyone committed, but the coordinator had already forced "
                                   "COMMIT before it crashed: the participants only followed "
                                   "its decision. Crash it earlier, so that they have to "
                                   "decide by themselves.")
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
    )


@register("3pc-abort-despite-precommit")
def _abort_despite_precommit() -> Exercise:
    def check(answer: Any) -> Feedback:
        fault, bad = _one_coordinator_crash(answer)
        if bad is not None:
            return bad
        run = Scenario("3pc", faults=(fault,)).run()
        if (bad := _unfired(run)) is not None:
            return bad
        log = _log(run, "coordinator")
        if "PRECOMMIT" not in log:
            return Feedback(False, f"the coordinator's log holds only {', '.join(log) or 'nothing'}"
                                   ": it crashed before it forced PRECOMMIT. Crash it later.")
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
    )


# --- lesson 05 -------------------------------------------------------------------------
_SPLIT_ADVICE = {
    "aborted": "the cut came before the coordinator had every YES vote, so nobody could "
               "commit. Cut the network later.",
    "committed": "by the time of your cut each side already had a pre-committed node (or the "
                 "commit got through). Cut earlier, while the PRE_COMMITs are on their way.",
    "blocked": "somebody is stuck undecided; make sure each side can still time out and "
               "decide on its own.",
}


@register("3pc-find-a-split")
def _find_a_split() -> Exercise:
    def check(answer: Any) -> Feedback:
        faults = _faults(answer)
        if (bad := _network_only(faults)) is not None:
            return bad
        run = Scenario("3pc", faults=faults).run()
        if run.outcome == "inconsistent":
            return Feedback(True, f"split! {run.violations[0]}. Each side read the other's "
                                  "silence as a crash and terminated on its own.")
        advice = _SPLIT_ADVICE.get(run.outcome, "")
        unfired = "".join(f" (Note: '{f.describe()}' had no effect: {why}.)"
                          for f, why in run.unfired_faults)
        return Feedback(False, f"that run ended {run.outcome}: {advice}{unfired}")

    return Exercise(
        name="3pc-find-a-split",
        prompt="Find a fault plan, using only partition, heal and drop faults, that makes 3PC "
               "(three participants, seed 0) end inconsistent: some node commits, another "
               "aborts.",
        checker=check,
        hints=(
            "One side must contain a pre-committed node, the other only READY ones.",
            "The PRE_COMMITs leave the coordinator one after another, p1 first, right after "
            "it forces PRECOMMIT.",
            "partition(['coordinator', 'p1'], ['p2', 'p3'], when=...) with a trigger on the "
            "first PRE_COMMIT.",
        ),
        answer="[txlib.partition(['coordinator', 'p1'], ['p2', 'p3'], when='coordinator sends "
               "PRE_COMMIT to p1')]: p1 pre-commits, the coordinator's ACK timeout reads p2 "
               "and p3 as crashed and it commits; p2 and p3, both READY, time out, elect p2 and "
               "abort. A lone participant cut off in the same way also works: "
               "partition(['p3'], when='coordinator sends PRE_COMMIT to p1').",
        example=[partition(["coordinator", "p1"], ["p2", "p3"],
                           when="coordinator sends PRE_COMMIT to p1")],
    )


_TWO_PC_WHY = {
    "blocked": "the participants cut off from the coordinator had voted YES, so they wait in "
               "doubt, holding their locks, until the network heals",
    "committed": "every participant heard COMMIT before the cut, or after it healed",
    "aborted": "the coordinator could not collect every vote, so it aborted, and every "
               "participant learned it",
}


@register("3pc-split-not-2pc")
def _split_not_2pc() -> Exercise:
    def check(answer: Any) -> Feedback:
        faults = _faults(answer)
        if (bad := _network_only(faults)) is not None:
            return bad
        three = Scenario("3pc", faults=faults).run()
        two = Scenario("2pc", faults=faults).run()
        for proto, run in (("3PC", three), ("2PC", two)):
            if run.unfired_faults:
                fault, why = run.unfired_faults[0]
                return Feedback(False, f"in {proto}, '{fault.describe()}' had no effect ({why}), "
                                       "so the two runs did not suffer the same faults. Time "
                                       "your faults with at_step, at_time or a trigger both "
                                       "protocols share (YES, ACK, ...).")
        if three.outcome != "inconsistent":
            advice = _SPLIT_ADVICE.get(three.outcome, "")
            return Feedback(False, f"3PC ended {three.outcome}: {advice}")
        if two.outcome == "inconsistent":
            return Feedback(False, "2PC split too: that should be impossible, since a 2PC "
                                   "participant that voted YES never decides alone. Please "
                                   "report this plan as a txlib bug.")
        return Feedback(True, f"3PC split ({three.violations[0]}); 2PC, under the very same "
                              f"faults, ended {two.outcome}: {_TWO_PC_WHY[two.outcome]}. 2PC "
                              "can block but never split: the real choice under a partition "
                              "is blocking or inconsistency.")

    return Exercise(
        name="3pc-split-not-2pc",
        prompt="Find one network fault plan (partition, heal, drop) in which every fault "
               "really happens in BOTH protocols, that splits 3PC. Then read what the same "
               "plan did to 2PC.",
        checker=check,
        hints=(
            "A trigger on PRE_COMMIT never fires in 2PC, which has no such message.",
            "Both protocols start the same way: the coordinator collects YES votes, p1's last.",
            "Cut {coordinator, p1} from {p2, p3} when='coordinator receives YES from p1' "
            "(or at_step=7).",
        ),
        answer="[txlib.partition(['coordinator', 'p1'], ['p2', 'p3'], when='coordinator "
               "receives YES from p1')]: the coordinator has every vote and sends PRE_COMMIT "
               "(3PC) or COMMIT (2PC); only p1's gets through. 3PC: each side terminates "
               "alone, one commits, one aborts. 2PC: p2 and p3 wait in doubt, blocked.",
        example=[partition(["coordinator", "p1"], ["p2", "p3"],
                           when="coordinator receives YES from p1")],
    )
