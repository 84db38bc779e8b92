"""Lesson 05 (3PC under partitions, ``notebooks/05_3pc_under_partitions.ipynb``):
exercises and the lesson's helpers.

Each checker replays the learner's fault plan on the default scenario (three
participants, seed 0) and judges the run the engine produced, never a guess.
"""

from __future__ import annotations

from typing import Any

from ..engine.faults import Fault, crash, drop, heal, partition
from ..errors import TxlibError
from ..protocols.base import COORDINATOR
from ..simulation.run import Run
from ..simulation.scenario import Scenario
from . import Exercise, Feedback, register
from .checking import fault_plan
from .show import markdown_table
from .show import steps as steps  # re-exported for the notebook

table = markdown_table

NETWORK_KINDS = ("partition", "heal", "drop")
PLAN_EXAMPLE = "[txlib.partition(['p3'], when='coordinator sends PRE_COMMIT to p1')]"
FIRST_PRE_COMMIT = "coordinator sends PRE_COMMIT to p1"
SIDES = (["coordinator", "p1"], ["p2", "p3"])  # the two sides of the lesson's partition


def _network_plan(answer: Any) -> tuple[Fault, ...] | Feedback:
    """The learner's fault plan, or why it is not a plan of network faults only."""
    faults = fault_plan(answer, PLAN_EXAMPLE)
    other = sorted({f.kind for f in faults if f.kind not in NETWORK_KINDS})
    if other:
        return Feedback(False, f"use only network faults ({', '.join(NETWORK_KINDS)}); your "
                               f"plan also has {', '.join(other)}. Crashes alone do not split "
                               "3PC, and slow messages were lesson 04's story: this one is "
                               "about messages that cannot get through.")
    return faults


_SPLIT_ADVICE = {
    "aborted": "the cut came before the coordinator had every YES vote, so nobody could "
               "commit. Cut the network later.",
    "committed": "by the time of your cut each side already had a pre-committed node (or the "
                 "commit got through). Cut earlier, while the PRE_COMMITs are on their way.",
    "blocked": "somebody is stuck undecided; make sure each side can still time out and "
               "decide on its own.",
}


_DROPS_ABORTED = ("the lost messages came before the coordinator had every YES vote, so it "
                  "aborted on its vote timeout. Start dropping later.")
_DROPS_SPLIT = ("To split, one side must hear nothing at all from the other for a whole "
                "timeout: a partition does that, e.g. " + PLAN_EXAMPLE + "; drops do it only "
                "if they lose every message across the cut until the cut-off side has "
                "decided: the PRE_COMMITs, the DO_COMMIT and its re-sends, and any question "
                "(STATE_REQ) to a node that knows more.")


def made_good(run: Run) -> str:
    """How a 3PC run that committed made good what its drops lost, read from the run: who
    missed a PRE_COMMIT and how it learned anyway, or that nobody missed one."""
    missed = [p for p in run.participants
              if not any(e.kind == "deliver" and e.node == p and e.message is not None
                         and e.message.type == "PRE_COMMIT" and e.message.src == COORDINATOR
                         for e in run.trace)]
    if not missed:
        return ("every participant got its PRE_COMMIT, and once every participant is "
                "pre-committed nobody can abort: the DO_COMMIT, or the termination protocol "
                "(someone is pre-committed: commit), takes each of them to commit, whatever "
                "else is lost.")
    ways = []
    for p in missed:
        got = [e.message for e in run.trace if e.kind == "deliver" and e.node == p
               and e.message is not None]
        if any(m.type == "DO_COMMIT" for m in got):
            ways.append(f"{p} missed its PRE_COMMIT but still got DO_COMMIT")
            continue
        knew = next((m for m in got if m.type == "STATE" and m.payload.get("state") in
                     ("PRECOMMIT", "PRECOMMITTED", "COMMITTED", "ENDED")), None)
        if knew is not None:
            ways.append(f"{p} missed its PRE_COMMIT, asked (STATE_REQ) and heard "
                        f"{knew.payload['state']} from {knew.src}")
        elif any(m.type == "PRE_COMMIT" for m in got):
            ways.append(f"{p} missed the coordinator's PRE_COMMIT but got one from the "
                        "participant leading the termination protocol")
        else:
            ways.append(f"{p} missed its PRE_COMMIT and still learned the outcome")
    return "a lost message is made good by the next one: " + "; ".join(ways) + "."


_EARLY_HEAL = ("your heal came too soon: the next DO_COMMIT (or a peer's STATE) got through "
               "before the cut-off side decided, and without the heal this plan splits. Heal "
               "later, or not at all.")


def split_advice(faults: tuple[Fault, ...], run: Run) -> str:
    """Why a plan of network faults did not split 3PC (its ``run``), found by reading the
    run and running its variants."""
    kinds, outcome = {f.kind for f in faults}, run.outcome
    if outcome == "committed" and "heal" in kinds:
        unhealed = tuple(f for f in faults if f.kind != "heal")
        if Scenario("3pc", faults=unhealed).run().outcome == "inconsistent":
            return _EARLY_HEAL
    if "partition" not in kinds and outcome == "aborted":
        return _DROPS_ABORTED
    if "partition" not in kinds and outcome == "committed":
        return f"{made_good(run)} {_DROPS_SPLIT}"
    return _SPLIT_ADVICE.get(outcome, "")


@register("3pc-find-a-split")
def _find_a_split() -> Exercise:
    def check(answer: Any) -> Feedback:
        faults = _network_plan(answer)
        if isinstance(faults, Feedback):
            return faults
        run = Scenario("3pc", faults=faults).run()
        if run.outcome == "inconsistent":
            return Feedback(True, f"split! {run.violations[0]}. Each side read the other's "
                                  "silence as a crash and decided on its own.")
        advice = split_advice(faults, run)
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
               "partition(['p3'], when='coordinator sends PRE_COMMIT to p1'). Drops alone "
               "split it too, but only by losing every message across the cut until the "
               "cut-off side has decided, a partition spelled out message by message: "
               "[drop('PRE_COMMIT', dst='p2'), drop('PRE_COMMIT', dst='p3'), "
               "drop('DO_COMMIT', dst='p2', count=2), drop('DO_COMMIT', dst='p3', count=2), "
               "drop('STATE_REQ', dst='p1', count=2)] (count=None, every copy, works too). "
               "Cutting the coordinator off alone takes only two: [drop('PRE_COMMIT', "
               "count=None), drop('DO_COMMIT', count=None)]; the participants, all READY, "
               "ask only one another.",
        example=[partition(["coordinator", "p1"], ["p2", "p3"],
                           when="coordinator sends PRE_COMMIT to p1")],
        wrong=(
            (partition(*SIDES, at_step=3), "Cut the network later"),
            (partition(*SIDES, at_step=9), "Cut earlier"),
            (drop("PRE_COMMIT", dst="p3"), "hear nothing at all"),
            (drop("DO_COMMIT", count=None), "every participant got its PRE_COMMIT"),
            ([drop("PRE_COMMIT", dst="p2"), drop("PRE_COMMIT", dst="p3")], "a partition does that"),
            ([partition(*SIDES, when=FIRST_PRE_COMMIT), heal(at_time=100)], "heal came too soon"),
            (crash("coordinator", when=FIRST_PRE_COMMIT), "only network faults"),
        ),
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
        faults = _network_plan(answer)
        if isinstance(faults, Feedback):
            return faults
        three = Scenario("3pc", faults=faults).run()
        try:
            two = Scenario("2pc", faults=faults).run()
        except TxlibError as exc:  # e.g. a trigger on a message 2PC does not have
            return Feedback(False, f"in 2PC, {exc}. So the two runs cannot suffer the same "
                                   "faults: time your faults with at_step, at_time or a "
                                   "trigger both protocols share (YES, ACK, ...).")
        for proto, run in (("3PC", three), ("2PC", two)):
            if run.unfired_faults:
                fault, why = run.unfired_faults[0]
                return Feedback(False, f"in {proto}, '{fault.describe()}' had no effect ({why}), "
                                       "so the two runs did not suffer the same faults. Time "
                                       "your faults with at_step, at_time or a trigger both "
                                       "protocols share (YES, ACK, ...).")
        if three.outcome != "inconsistent":
            advice = split_advice(faults, three)
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
        wrong=(
            (partition(*SIDES, when=FIRST_PRE_COMMIT), "which 2pc never sends"),
            (partition(*SIDES, at_step=3), "3PC ended aborted"),
            (partition(*SIDES, at_step=9), "Cut earlier"),
            ([partition(*SIDES, at_step=7), heal(at_time=100)], "heal came too soon"),
        ),
    )
