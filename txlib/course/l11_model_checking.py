"""Lesson 11 (model checking, ``notebooks/11_model_checking.ipynb``): protocol variants to
explore, the lesson's helpers, and exercises checked by the explorer itself.

The variants are ordinary :class:`~txlib.protocols.base.Protocol` objects whose ``name``
is a registered protocol, so :func:`txlib.explore` accepts them and moves their worlds
with the same step function as every other run:

- :class:`PreFix3PC`: txlib's 3PC as it was before the explorer found a bug in it. A
  participant that restarts in READY asks everyone for their state, and took the live
  coordinator's answer PRECOMMIT for "undecided"; with every participant READY it led
  the termination protocol to ABORT while the coordinator went on to COMMIT.
- :class:`Impatient2PC`: 2PC whose participants abort on their own when their decision
  timer fires after they voted YES (a heuristic decision).

:func:`show` prints what a search found (its size and its findings, no timings).
:func:`timed_run` runs a variant under the normal timed scheduler (a seeded run, as
``Scenario.run`` does for a registered protocol), and :func:`world_model` gives the
explorer's model of a protocol, to look at the choices it makes one state at a time.

The exercises:

- ``mc-2pc-blocking-budget``: the smallest fault budget under which 2PC (two
  participants) has a blocking state;
- ``mc-3pc-lost-messages``: the fewest lost messages for which the explorer breaks 3PC
  (two participants, no crash);
- ``mc-tcommit-states``: the number of distinct states of Lamport's TCommit with 2 RMs.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from ..errors import TxlibError
from ..explorer.search import Exploration
from ..explorer.tla import RM_STATES, TCommit, check
from ..explorer.worlds import WorldModel, explore
from ..protocols import Protocol, get_protocol
from ..simulation.run import Run
from ..simulation.scenario import Scenario, participant_names
from . import Exercise, Feedback, register
from .checking import plural, whole_number
from .show import markdown_table
from .show import steps as steps  # re-exported for the notebook

table = markdown_table


def show(result: Exploration, title: str | None = None) -> None:
    """What a search found: its size and its findings (no timings: they vary by machine)."""
    done = "complete" if result.complete else f"stopped by {result.stopped_by}"
    settings = ", ".join(f"{k}={v}" for k, v in result.settings.items())
    print(f"{title or result.model} ({settings})")
    print(f"  {result.states:,} distinct states, {result.transitions:,} transitions, "
          f"depth {result.depth}; search {done}")
    for finding in result.violations:
        print(f"  VIOLATION {finding}")
    if not result.violations:
        print("  no invariant violated" + ("" if result.complete else " so far"))
    if result.blocking_states is None:
        print("  blocking: not analysed (the search is incomplete)")
    elif result.blocking is None:
        print("  no blocking state")
    else:
        print(f"  BLOCKING in {result.blocking_states:,} states; the shortest way in takes "
              f"{plural(result.blocking.depth, 'step')}")


def timed_run(protocol: Protocol, scenario: Scenario) -> Run:
    """Run ``scenario`` with ``protocol`` (a variant of ``scenario.protocol``) under the
    normal timed scheduler (see :meth:`Scenario.run`)."""
    if not isinstance(protocol, Protocol) or protocol.name != scenario.protocol:
        raise TxlibError(f"give a variant of {scenario.protocol!r} for this scenario, "
                         f"got {protocol!r}")
    return scenario.run(variant=protocol)


def world_model(protocol: str | Protocol = "2pc", participants: int | Sequence[str] = 2,
                *, max_crashes: int = 0, max_drops: int = 0, partitions: bool = False,
                recoveries: bool = False, timeouts: str = "synchronous") -> WorldModel:
    """The explorer's model of a commit protocol: ``initial()`` gives the first world,
    ``successors(world)`` every (action, next world) the explorer tries from it, and
    ``describe(action)`` the action in words."""
    proto = get_protocol(protocol) if isinstance(protocol, str) else protocol
    scenario = Scenario(proto.name, participant_names(participants))
    config = proto.make_config(scenario.participants, scenario.options)
    return WorldModel(proto, scenario, config, max_crashes=max_crashes, max_drops=max_drops,
                      partitions=partitions, recoveries=recoveries, timeouts=timeouts)


# --- exercise: the smallest budget that blocks 2PC ------------------------------------------

BUDGET_KEYS = ("max_crashes", "max_drops", "partitions")
BUDGET_LIMIT = 2  # at most this many crashes or drops: the checks stay quick


def _budget(answer: Any) -> dict[str, Any]:
    if not isinstance(answer, dict):
        raise TxlibError("answer with a dict of explore() arguments, e.g. {'max_drops': 1}")
    unknown = sorted(str(k) for k in answer if k not in BUDGET_KEYS)
    if unknown:
        raise TxlibError(f"unknown budget {', '.join(unknown)}; use "
                         f"{', '.join(BUDGET_KEYS)}")
    budget = {"max_crashes": 0, "max_drops": 0, "partitions": False, **answer}
    for key in ("max_crashes", "max_drops"):
        value = budget[key]
        if not isinstance(value, int) or isinstance(value, bool) or not (
                0 <= value <= BUDGET_LIMIT):
            raise TxlibError(f"{key} must be a whole number from 0 to {BUDGET_LIMIT} here, "
                             f"got {value!r}")
    if not isinstance(budget["partitions"], bool):
        raise TxlibError(f"partitions must be True or False, got {budget['partitions']!r}")
    return budget


def _size(budget: dict[str, Any]) -> int:
    return int(budget["max_crashes"]) + int(budget["max_drops"]) + int(budget["partitions"])


def _words(budget: dict[str, Any]) -> str:
    parts = []
    for key, one, many in (("max_crashes", "crash", "crashes"),
                           ("max_drops", "lost message", "lost messages")):
        n = budget[key]
        if n:
            parts.append(plural(n, one, many))
    if budget["partitions"]:
        parts.append("a partition")
    return " and ".join(parts) or "no fault at all"


def explore_2pc(budget: dict[str, Any]) -> Exploration:
    """What the ``mc-2pc-blocking-budget`` checker explores: 2PC, two participants."""
    return explore("2pc", participants=2, progress=False, **budget)


def _smaller(budget: dict[str, Any]) -> list[dict[str, Any]]:
    out = []
    for key in ("max_crashes", "max_drops"):
        if budget[key]:
            out.append({**budget, key: budget[key] - 1})
    if budget["partitions"]:
        out.append({**budget, "partitions": False})
    return out


def _smallest_blocking(budget: dict[str, Any]) -> dict[str, Any]:
    """A budget under which 2PC blocks, from ``budget`` (one that blocks) down: one
    fault less at a time while a smaller one still blocks."""
    while True:
        smaller = next((b for b in _smaller(budget) if explore_2pc(b).blocking is not None),
                       None)
        if smaller is None:
            return budget
        budget = smaller


@register("mc-2pc-blocking-budget")
def _blocking_budget() -> Exercise:
    def check(answer: Any) -> Feedback:
        budget = _budget(answer)
        result = explore_2pc(budget)
        head = (f"with {_words(budget)}: {result.states:,} states, "
                f"{result.transitions:,} transitions, search "
                f"{'complete' if result.complete else 'incomplete'}")
        if result.violations:
            return Feedback(False, f"{head}, and a violation: {result.violations[0]}. That "
                                   "should not happen in 2PC; please report it.")
        if result.blocking is None:
            if _size(budget) == 0:
                why = "without faults every run finishes, so nobody can be stuck."
            elif not budget["max_crashes"] and not budget["partitions"]:
                why = ("a lost message is only a delay here: the coordinator and the "
                       "participants re-send on their timers until a copy gets through, "
                       "and the budget of losses runs out first.")
            else:
                why = "no state blocks."
            return Feedback(False, f"{head}, and no blocking state: {why}")
        smallest = _smallest_blocking(budget)
        if smallest != budget:
            verb = "blocks" if _size(smallest) == 1 else "block"
            return Feedback(False, f"{head}: {result.blocking_states:,} blocking states. "
                                   f"But {_words(smallest)} already {verb} 2PC: make the "
                                   "budget smaller.")
        other = ("A partition alone blocks it too." if budget["max_crashes"]
                 else "One crash alone blocks it too.")
        return Feedback(True, f"{head}; {result.blocking_states:,} of them are blocking, and "
                              "no smaller budget has any. The shortest way in "
                              f"({plural(result.blocking.depth, 'step')}): "
                              f"{'; '.join(result.blocking.labels)}. {other}")

    return Exercise(
        name="mc-2pc-blocking-budget",
        prompt="Give the smallest fault budget under which the explorer finds a blocking "
               "state in 2PC with two participants, as a dict of explore() arguments: "
               "'max_crashes' (0-2), 'max_drops' (0-2), 'partitions' (True or False). "
               "Smallest means: no budget with one fault fewer blocks.",
        checker=check,
        hints=(
            "Blocking needs a participant that has voted YES and can never hear the "
            "decision. Which faults keep a message from ever arriving?",
            "A lost message is re-sent on a timer; a budget of losses runs out.",
            "Only a node that stays down, or a network that stays split, keeps the answer "
            "away for good.",
        ),
        answer="{'max_crashes': 1}: one coordinator crash, with nothing re-sending for it, "
               "leaves a participant that voted YES without a decision (the explorer's "
               "shortest case crashes it in the middle of sending PREPARE). "
               "{'partitions': True} works too. Lost messages alone never block 2PC: "
               "every message that matters is re-sent.",
        example={"max_crashes": 1},
        wrong=(({"max_drops": 1}, "a lost message is only a delay"),
               ({"max_drops": 2}, "no blocking state"),
               ({"max_crashes": 1, "partitions": True}, "make the budget smaller"),
               ({"max_drops": 2, "partitions": True}, "But a partition already blocks")),
    )


# --- exercise: how many lost messages break 3PC? --------------------------------------------

DROP_LIMIT = 3


def explore_3pc_drops(n: int) -> Exploration:
    """What the ``mc-3pc-lost-messages`` checker explores: 3PC, two participants, no
    crash, ``n`` lost messages, synchronous timeouts."""
    return explore("3pc", participants=2, max_crashes=0, max_drops=n, progress=False)


@register("mc-3pc-lost-messages")
def _lost_messages() -> Exercise:
    def check(answer: Any) -> Feedback:
        answer = whole_number(answer, "the number of lost messages")
        if answer < 0:
            return Feedback(False, f"a number of lost messages is 0 or more, not {answer}")
        if answer > DROP_LIMIT:  # (a budget: each search takes longer than the last)
            return Feedback(False, f"fewer than {answer} already break 3PC: this checker "
                                   f"explores 0 to {DROP_LIMIT} lost messages; find the "
                                   "smallest number among those.")
        result = explore_3pc_drops(answer)
        found = result.violation("atomicity")
        if found is None:
            lost = "no lost message" if answer == 0 else _lost(answer)
            why = ("without faults every timeout tells the truth." if answer == 0 else
                   "each loss is repaired by a re-sent message, or a peer's answer tells "
                   "the participant that times out what it needs to know.")
            return Feedback(False, f"with {lost} the search is complete: {result.states:,} "
                                   f"states, and none breaks atomicity: {why}")
        if answer > 0 and explore_3pc_drops(answer - 1).violation("atomicity") is not None:
            return Feedback(False, f"{answer} lost messages do break 3PC, but so do "
                                   f"{answer - 1}: find the smallest number.")
        lost = "; ".join(label for label in found.labels
                         if label.startswith("the network loses"))
        return Feedback(True, f"{_lost(answer)}: the explorer needs {found.depth} steps: "
                              f"{lost}; and so {found.reason}. With one lost message "
                              "fewer, every reachable state is safe.")

    return Exercise(
        name="mc-3pc-lost-messages",
        prompt="3PC with two participants, no crash, synchronous timeouts: what is the "
               "smallest number of lost messages (explore's max_drops) for which the "
               "explorer finds an atomicity violation?",
        checker=check,
        hints=(
            "Run explore('3pc', participants=2, max_crashes=0, max_drops=n) for n = 0, "
            "1, 2, ... and read the summary.",
            "With one loss, a READY participant that times out still asks its peer, and "
            "the peer's answer (PRECOMMITTED) makes it commit. What if that question is "
            "lost too?",
        ),
        answer="2: the PRE_COMMIT to p2 is lost, p2 times out in READY and asks p1, and "
               "that STATE_REQ is lost too; hearing from nobody, p2 aborts alone, while the "
               "coordinator's ACK timer reads p2's silence as a crash and commits. One "
               "loss is never enough: p1's answer would tell p2 that everyone voted YES.",
        example=2,
        wrong=((1, "none breaks atomicity"), (3, "find the smallest number"),
               (4, "fewer than 4 already break 3PC"), (-1, "0 or more")),
    )


# --- exercise: TCommit's states ---------------------------------------------------------------

def reachable_tcommit(rms: int) -> list[tuple[str, ...]]:
    """Every reachable rmState of TCommit with ``rms`` RMs, in breadth-first order."""
    model = TCommit(rms)
    seen = list(model.initial())
    i = 0
    while i < len(seen):
        for _, t in model.successors(seen[i]):
            if t not in seen:
                seen.append(t)
        i += 1
    return seen


@register("mc-tcommit-states")
def _tcommit_states() -> Exercise:
    def check(answer: Any) -> Feedback:
        answer = whole_number(answer, "the number of states")
        result = check_tcommit(2)
        reachable = set(reachable_tcommit(2))
        pairs = [(a, b) for a in RM_STATES for b in RM_STATES]
        missing = [p for p in pairs if p not in reachable]
        if answer == result.states:
            return Feedback(True, f"{answer}: the search over TCommit with 2 RMs finds "
                                  f"{result.states} distinct states, {result.transitions} "
                                  f"transitions, depth {result.depth}. Of the "
                                  f"{len(pairs)} pairs of RM states, the unreachable ones "
                                  f"are {_pairs(missing)}: a commit needs every RM "
                                  "prepared, and after a commit nobody aborts.")
        if answer == len(pairs):
            return Feedback(False, f"{answer} = 4 × 4 counts every pair of RM states, but "
                                   "not every pair is reachable. Can one RM be committed "
                                   "while the other is still working?")
        more = "more" if answer < result.states else "fewer"
        return Feedback(False, f"not {answer}: there are {more}. List the pairs "
                               "(r1, r2) of states and strike those the spec's actions can "
                               "never reach.")

    return Exercise(
        name="mc-tcommit-states",
        prompt="Lamport's TCommit with 2 RMs: each RM is working, prepared, committed or "
               "aborted. How many distinct states can the spec reach from (working, "
               "working)? Count by hand first; the checker runs the model.",
        checker=check,
        hints=(
            "Start from the 16 pairs of RM states and strike the unreachable ones.",
            "Decide(rm) commits only when every RM is prepared or committed, and aborts "
            "only when no RM has committed.",
            "So a committed RM never sits beside a working or an aborted one.",
        ),
        answer="12: of the 16 pairs, (committed, working), (working, committed), "
               "(committed, aborted) and (aborted, committed) are unreachable. "
               "check(TCommit(2)).states confirms it.",
        example=12,
        wrong=((16, "counts every pair"), (10, "there are more"), (14, "there are fewer")),
    )


def check_tcommit(rms: int) -> Exploration:
    """TCommit with ``rms`` RMs, searched completely."""
    return check(TCommit(rms))


def _lost(n: int) -> str:
    return plural(n, "lost message")


def _pairs(pairs: Sequence[tuple[str, ...]]) -> str:
    return ", ".join("(" + ", ".join(p) + ")" for p in pairs)
