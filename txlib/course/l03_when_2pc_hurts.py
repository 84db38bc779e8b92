"""Lesson 03 (when 2PC hurts, ``notebooks/03_when_2pc_hurts.ipynb``): exercises on
blocking, timeouts and cooperative termination, and the lesson's helpers.

- ``2pc-block-with-one-crash``: one crash that leaves 2PC blocked;
- ``2pc-who-may-abort``: after a coordinator crash, which participants may abort on a
  timeout? A wrong choice is answered with a run this participant cannot tell apart from
  the puzzle, in which aborting breaks atomicity;
- ``2pc-cooperative-rescue``: one fault after which plain 2PC blocks but cooperative
  termination lets every participant finish;
- ``2pc-partition-half-committed``: network faults (no crash) after which one participant
  has committed and another is still in doubt, and the proof that this is blocking, not
  inconsistency: heal the network and everyone commits.
"""

from __future__ import annotations

import functools
from typing import Any

from ..engine.faults import Fault, crash, drop, heal, partition
from ..engine.records import TraceEvent
from ..errors import TxlibError
from ..simulation.run import Run
from ..simulation.scenario import Scenario
from . import Exercise, Feedback, register
from .checking import choice_set, fault_plan, one_fault, plural
from .l02_two_phase_commit import broken_run
from .show import show_table

table = show_table


def in_doubt(run: Run) -> str:
    """Each participant's in-doubt time, e.g. 'p1 277, p2 278'."""
    return ", ".join(f"{p} {ms}" for p, ms in run.metrics.blocked_time.items())


# --- exercise: block 2PC with one crash ---------------------------------------------------

@register("2pc-block-with-one-crash")
def _block_with_one_crash() -> Exercise:
    def check(answer: Any) -> Feedback:
        faults = fault_plan(answer, "[txlib.crash('p1', ...)]")
        if len(faults) != 1 or faults[0].kind != "crash":
            return Feedback(False, "use exactly one fault, and make it a crash")
        run = Scenario("2pc", faults=faults).run()
        if run.outcome == "blocked":
            who = [p for p in run.participants if run.decisions[p] is None]
            return Feedback(True, f"blocked: {', '.join(who)} voted YES and cannot decide "
                                  f"while {faults[0].node} is down.")
        return Feedback(False, f"that run ended {run.outcome}. Which node's crash leaves "
                               "participants that voted YES without an answer?")

    return Exercise(
        name="2pc-block-with-one-crash",
        prompt="Find ONE crash that leaves 2PC blocked (three participants, default seed).",
        checker=check,
        hints=(
            "A participant may abort on its own only before it votes.",
            "Which node is the only one that knows every vote?",
            "Crash the coordinator after the votes are in: when='coordinator logs COMMIT'.",
        ),
        answer="txlib.crash('coordinator', when='coordinator logs COMMIT'): every participant "
               "has voted YES and waits, holding its locks, for a decision only the crashed "
               "coordinator knows.",
        example=[crash("coordinator", when="coordinator logs COMMIT")],
        wrong=(
            (crash("p1", at_step=3), "ended aborted"),
            (crash("p2", when="p2 sends YES"), "ended committed"),
            (crash("coordinator", when="coordinator logs END"), "ended committed"),
            ([crash("coordinator"), crash("p1")], "exactly one fault"),
        ),
    )


# --- exercise: who may abort on a timeout? ----------------------------------------------

WHO_MAY_ABORT_TIME = 50


def who_may_abort_scenario() -> Scenario:
    """The puzzle: the coordinator crashes right after sending PREPARE to p2 (p3 never
    gets one) and stays down."""
    return Scenario("2pc", faults=(crash("coordinator", when="coordinator sends PREPARE to p2"),),
                    options={"horizon": 400})


def committed_twin_scenario() -> Scenario:
    """Every participant votes YES; the coordinator forces COMMIT and crashes before
    telling anyone."""
    return Scenario("2pc", faults=(crash("coordinator", when="coordinator logs COMMIT"),),
                    options={"horizon": 400})


def states_at(run: Run, time: int) -> dict[str, str]:
    """Each node's state after the last event at or before simulated ``time``."""
    last: TraceEvent = run.trace[0]
    for e in run.trace:
        if e.time > time:
            break
        last = e
    return dict(last.states)


_SEEN = {
    "deliver": lambda e: f"received {e.message.type}",
    "send": lambda e: f"sent {e.message.type}",
    "log": lambda e: f"logged {e.detail}",
    "vote": lambda e: f"voted {e.detail}",
    "timeout": lambda e: f"its {e.detail} timer fired",
    "decision": lambda e: f"decided {e.detail}",
}


def view(run: Run, node: str) -> list[str]:
    """What ``node`` itself observed, up to its first decision timeout (times left out:
    a node cannot tell 13 ms from 14 ms of latency)."""
    seen = []
    for e in run.trace:
        if e.node != node or e.kind not in _SEEN:
            continue
        if e.kind in ("send", "deliver") and e.message is None:
            continue
        seen.append(_SEEN[e.kind](e))
        if e.kind == "timeout" and e.detail == "decision":
            break
    return seen


@register("2pc-who-may-abort")
def _who_may_abort() -> Exercise:
    def check(answer: Any) -> Feedback:
        puzzle = who_may_abort_scenario().run()
        chosen = choice_set(answer, puzzle.participants, "participant", "{'p1'} or set()")
        states = states_at(puzzle, WHO_MAY_ABORT_TIME)
        safe = {p for p in puzzle.participants if states[p] == "INIT"}
        notes = []
        unsafe = sorted(chosen - safe)
        if unsafe:
            first = unsafe[0]
            twin = broken_run(committed_twin_scenario(), impatient=[first])
            same = all(view(puzzle, p) == view(twin, p) for p in unsafe)
            who = " and ".join(unsafe)
            notes.append(
                f"{who} cannot: {'it' if len(unsafe) == 1 else 'each'} voted YES. "
                f"What {first} saw ({'; '.join(view(puzzle, first))}) "
                f"{'is exactly' if same else 'is close to'} what it sees in a run where the "
                "coordinator received every YES and forced COMMIT before crashing; there, a "
                f"{first} that aborts on its timer ends {twin.outcome} ("
                + "; ".join(str(v) for v in twin.violations) + ").")
        for p in sorted(safe - chosen):
            later = puzzle.decisions[p]
            notes.append(
                f"{p} can: it has not voted, so the coordinator cannot have decided COMMIT "
                f"(that needs {p}'s YES). 2PC lets it abort alone, and it does: its prepare "
                f"timer fires and it decides {later}.")
        if notes:
            return Feedback(False, " ".join(notes))
        return Feedback(True, f"only {', '.join(sorted(safe))}: a participant may abort on its "
                              "own only before it votes. Once it has voted YES it has given "
                              "the decision away and must wait, in doubt, holding its locks.")

    return Exercise(
        name="2pc-who-may-abort",
        prompt="The coordinator crashes right after sending PREPARE to p1 and p2 (p3 never "
               f"gets one) and stays down. At time {WHO_MAY_ABORT_TIME}, which participants "
               "can safely abort on a timeout, without waiting for the coordinator? Answer "
               "with a set of names, e.g. {'p1', 'p3'}, or set().",
        checker=check,
        hints=(
            "Look at each participant's state at that moment: who has voted, and how?",
            "Could the coordinator have decided COMMIT before it crashed, as far as p1 can "
            "tell? What does p1 actually know?",
            "A YES vote hands the decision to the coordinator; a participant that has not "
            "voted still holds a veto.",
        ),
        answer="{'p3'}. p1 and p2 voted YES: from where they stand, the coordinator may have "
               "collected every YES and forced COMMIT just before it crashed, so aborting "
               "could break atomicity. p3 has not voted, so no one can have committed; it "
               "may abort, and 2PC does exactly that when its prepare timer fires.",
        example={"p3"},
        wrong=(
            ({"p1", "p2", "p3"}, "voted YES"),
            (set(), "p3 can"),
            ({"p1", "p3"}, "p1 cannot"),
        ),
    )


# --- exercise: a fault that cooperative termination repairs -----------------------------

RESCUE_HORIZON = 600
_LESSON_EXAMPLE = crash("coordinator", when="coordinator sends COMMIT to p1")


def rescue_runs(fault: Fault) -> tuple[Run, Run]:
    """The same single fault against plain 2PC and 2PC with cooperative termination."""
    plain = Scenario("2pc", faults=(fault,), options={"horizon": RESCUE_HORIZON}).run()
    coop = Scenario("2pc", faults=(fault,),
                    options={"horizon": RESCUE_HORIZON, "cooperative": True}).run()
    return plain, coop


@functools.cache
def _example_runs() -> tuple[Run, Run]:
    return rescue_runs(_LESSON_EXAMPLE)


def same_runs(runs: tuple[Run, Run], others: tuple[Run, Run]) -> bool:
    """True if each run's trace is the other's, event for event."""
    return all(a.trace.to_jsonl() == b.trace.to_jsonl()
               for a, b in zip(runs, others, strict=True))


def _undecided(run: Run) -> list[str]:
    return [p for p in run.participants if run.decisions[p] is None and p not in run.down]


def _answers(run: Run) -> str:
    """Which participants answered a peer's DECISION_REQ, and with what."""
    told: dict[tuple[str, str], list[str]] = {}
    for e in run.trace.of_kind("send"):
        m = e.message
        if (m is not None and m.type in ("COMMIT", "ABORT") and m.src in run.participants
                and m.dst in run.participants):
            told.setdefault((m.src, m.type), []).append(m.dst)
    return "; ".join(f"{src} answered {t} to {', '.join(dsts)}"
                     for (src, t), dsts in told.items()) or "no peer answered"


@register("2pc-cooperative-rescue")
def _cooperative_rescue() -> Exercise:
    def check(answer: Any) -> Feedback:
        fault = one_fault(answer, "txlib.crash('coordinator', at_step=2)")
        plain, coop = rescue_runs(fault)
        if same_runs((plain, coop), _example_runs()):  # however the fault is spelt
            return Feedback(False, "that is the lesson's own example (2pc-cooperative-"
                                   "termination): both runs go exactly as there. Find a "
                                   "different fault.")
        if plain.outcome != "blocked":
            return Feedback(False, f"plain 2PC already ends {plain.outcome} after "
                                   f"'{fault.describe()}': there is nothing to rescue. "
                                   "Look for a fault that blocks it first.")
        if coop.outcome == "blocked":
            stuck = _undecided(coop)
            return Feedback(False, (
                f"plain 2PC blocks, but so does cooperative termination: {', '.join(stuck)} "
                "ask their peers and nobody can answer, because every peer that is up is in "
                "doubt too, or cannot be reached. Peers can help only if one of them knows "
                "the outcome or has not voted yet."))
        if coop.outcome == "inconsistent":
            return Feedback(False, "that run broke atomicity, which cooperative termination "
                                   "must never do: please report it as a txlib bug.")
        return Feedback(True, (
            f"plain 2PC blocks ({', '.join(_undecided(plain))} still in doubt when the run "
            f"stops at time {plain.end_time}); with cooperative termination it ends "
            f"{coop.outcome} at time {coop.end_time}: {_answers(coop)}."))

    return Exercise(
        name="2pc-cooperative-rescue",
        prompt="Find ONE fault after which plain 2PC blocks, but 2PC with cooperative "
               "termination (cooperative=True) lets every participant finish. The lesson's "
               "own example (crash the coordinator when it sends COMMIT to p1) does not "
               "count.",
        checker=check,
        hints=(
            "Cooperative termination helps only if some peer knows the outcome, or never "
            "voted and can still veto.",
            "Crash the coordinator at a moment when the participants are in different "
            "states: look at the order in which it sends PREPARE or COMMIT.",
            "Try crash('coordinator', when='coordinator sends PREPARE to p2'): what does p3 "
            "know?",
        ),
        answer="txlib.crash('coordinator', when='coordinator sends PREPARE to p2'): p1 and p2 "
               "vote YES and wait in doubt, but p3 never got PREPARE. When they ask it, p3 has "
               "not voted, so it aborts and answers ABORT, and everyone aborts. Another answer "
               "is txlib.crash('coordinator', when='coordinator sends COMMIT to p2'): p1 and "
               "p2 committed and tell p3.",
        example=crash("coordinator", when="coordinator sends PREPARE to p2"),
        wrong=(
            (crash("coordinator", when="coordinator logs COMMIT"), "nobody can answer"),
            (_LESSON_EXAMPLE, "the lesson's own example"),
            (crash("coordinator", when="coordinator sends COMMIT"), "the lesson's own example"),
            (crash("p1", at_step=3), "nothing to rescue"),
        ),
    )


# --- exercise: half committed, and still consistent ------------------------------------

NETWORK_FAULTS = ("partition", "heal", "drop", "duplicate", "delay", "slow")
LATE_FAULTS = ("delay", "slow")  # they hold messages back; they lose none
HALF_HORIZON = 600
HEAL_AT = 700
LONGEST_HORIZON = 20_000  # how long the checker waits, at most, for held-back messages


def _network_plan(answer: Any) -> tuple[Fault, ...]:
    faults = fault_plan(answer, "[txlib.partition(['p3'], at_step=2)]")
    if len(faults) > 3:
        raise TxlibError(f"use one to three faults, got {plural(len(faults), 'fault')}")
    for f in faults:
        if f.kind not in NETWORK_FAULTS:
            raise TxlibError(f"only network faults here ({', '.join(NETWORK_FAULTS)}); "
                             f"'{f.describe()}' is not one")
    return tuple(faults)


def _after_the_heal(faults: tuple[Fault, ...], mended: tuple[Fault, ...], healed: Run,
                    ends: str) -> str:
    """What the healed run shows. A delay or a slow node holds messages back and loses
    none: if the healed run is still blocked, it runs again for longer, to say whether
    the held-back messages were only late."""
    if healed.outcome == "committed":
        return f"{ends} committed: in doubt was never a different decision, only a late one."
    late = [f for f in faults if f.kind in LATE_FAULTS]
    if not late:
        return (f"{ends} {healed.outcome}: your plan loses messages for good, which no "
                "protocol can overcome, but nobody decided differently either.")
    horizon = healed.scenario.options["horizon"]
    longer = min(LONGEST_HORIZON, horizon + 3 * sum(f.by or 0 for f in late))
    later = Scenario("2pc", faults=(*faults, *mended), options={"horizon": longer}).run()
    if later.outcome == "committed":
        return (f"{ends} {healed.outcome} when it stops at time {horizon}: your plan holds "
                "messages back (delay, slow), and they arrive after the run's horizon. With a "
                f"horizon of {longer}, it ends committed at time {later.end_time}: the "
                "messages were late, not lost, and in doubt was never a different decision, "
                "only a late one.")
    return (f"{ends} {later.outcome}, even with a horizon of {longer}: your plan loses "
            "messages for good or holds them back longer than that, which no protocol can "
            "overcome, but nobody decided differently either.")


@register("2pc-partition-half-committed")
def _partition_half_committed() -> Exercise:
    def check(answer: Any) -> Feedback:
        plan = _network_plan(answer)
        # The checker heals the network itself, in its second run: a heal in the plan is
        # kept for that run and left out of the first.
        heals = tuple(f for f in plan if f.kind == "heal")
        faults = tuple(f for f in plan if f.kind != "heal")
        if not faults:
            return Feedback(False, "a heal alone changes nothing: the network is whole "
                                   "already. Cut it first, with txlib.partition(...).")
        run = Scenario("2pc", faults=faults, options={"horizon": HALF_HORIZON}).run()
        committed = [p for p in run.participants if run.decisions[p] == "commit"]
        stuck = _undecided(run)
        if run.outcome == "committed":
            return Feedback(False, (
                "that run ends committed: everyone learned the decision. A message lost "
                "or held back once is re-sent (the coordinator repeats COMMIT, an in-doubt "
                "participant keeps asking), so the fault must last."))
        if run.outcome == "aborted":
            return Feedback(False, (
                "that run ends aborted: your faults kept a vote from the coordinator before "
                "it had decided, so it decided ABORT (no participant has committed, and "
                "nobody is left in doubt). Let every vote through: the network must split "
                "after the coordinator has decided COMMIT and sent it to one participant."))
        if run.outcome == "inconsistent":
            return Feedback(False, "that run broke atomicity, which 2PC must never do: "
                                   "please report it as a txlib bug.")
        if not committed:
            return Feedback(False, (
                f"blocked, with {', '.join(stuck)} in doubt, but nobody has committed yet. "
                "Let the coordinator's COMMIT reach one participant before the network "
                "splits."))
        mended = heals or (heal(at_time=HEAL_AT),)
        healed = Scenario("2pc", faults=(*faults, *mended),
                          options={"horizon": HEAL_AT + 300}).run()
        how = "With your heal" if heals else f"With txlib.heal(at_time={HEAL_AT}) added"
        after = _after_the_heal(faults, mended, healed, f"{how}, the same run ends")
        return Feedback(True, (
            f"at time {run.end_time} {', '.join(committed)} committed while "
            f"{', '.join(stuck)} {'is' if len(stuck) == 1 else 'are'} still in doubt, "
            "holding locks. That is blocking, "
            f"not inconsistency: {len(run.violations)} violations, and no participant "
            f"decided abort. {after}"))

    return Exercise(
        name="2pc-partition-half-committed",
        prompt="Using network faults only (partition, heal, drop, duplicate, delay, slow; "
               "no crash), make a 2PC run in which some participant has committed while "
               "another is still in doubt when the run stops. Is atomicity broken? The "
               "checker runs your plan without any heal, then again with the network healed "
               "(by your heal, if the plan has one).",
        checker=check,
        hints=(
            "The coordinator sends COMMIT to p1, then p2, then p3. What if the network "
            "split between two of those sends?",
            "A trigger such as when='coordinator sends COMMIT to p1' fires right after that "
            "send.",
            "Try [txlib.partition(['coordinator', 'p1'], when='coordinator sends COMMIT to "
            "p1')].",
        ),
        answer="[txlib.partition(['coordinator', 'p1'], when='coordinator sends COMMIT to "
               "p1')]: p1 commits, p2 and p3 are cut off in doubt. They are blocked, not "
               "inconsistent: they have not decided anything, and once the network heals "
               "they learn COMMIT too.",
        example=[partition(["coordinator", "p1"], when="coordinator sends COMMIT to p1")],
        wrong=(
            ([partition(["coordinator"], when="coordinator logs COMMIT")],
             "nobody has committed yet"),
            ([drop("COMMIT", dst="p2")], "re-sent"),
            ([partition(["coordinator", "p1"], when="coordinator sends PREPARE to p1")],
             "ends aborted: your faults kept a vote from the coordinator"),
            ([partition(["p3"])], "ends aborted"),
            ([drop("PREPARE", dst="p3", count=None)], "ends aborted"),
            ([heal(at_time=300)], "a heal alone"),
        ),
    )
