"""Lesson 00 (start here, ``notebooks/00_start_here.ipynb``): exercises on reading a run."""

from __future__ import annotations

from typing import Any

from ..errors import choices, suggestion
from ..simulation.scenario import Scenario
from . import Exercise, Feedback, register
from .checking import whole_number


def _happy(participants: int) -> Scenario:
    return Scenario("2pc", tuple(f"p{i}" for i in range(1, participants + 1)))


@register("start-first-decision")
def _first_decision() -> Exercise:
    def check(answer: Any) -> Feedback:
        run = _happy(2).run()
        if isinstance(answer, str):
            answer = answer.strip()
            answer = {n.lower(): n for n in run.nodes}.get(answer.lower(), answer)
        if not isinstance(answer, str) or answer not in run.nodes:
            return Feedback(False, f"answer with a node's name{suggestion(answer, run.nodes)}: "
                                   f"one of {choices(run.nodes)}")
        decided = [e for e in run.trace if e.kind == "decision"]
        first = decided[0]
        if answer == first.node:
            return Feedback(True, f"{first.node} decides {first.detail} at step {first.step} "
                                  f"(time {first.time}), when the last YES arrives; the "
                                  "participants only learn it from the COMMIT messages.")
        mine = next(e for e in decided if e.node == answer)
        return Feedback(False, f"{answer} decides at step {mine.step} (time {mine.time}). "
                               "Look for the first ✓ mark going down the diagram: who could "
                               "decide before anyone else?")

    return Exercise(
        name="start-first-decision",
        prompt="In 2PC's happy path with two participants, which node decides first? "
               "Answer with its name, e.g. ex.check('p2').",
        checker=check,
        hints=(
            "A decision is a filled circle with ✓ on a lifeline; time runs downward.",
            "A participant cannot know the outcome until someone tells it.",
        ),
        answer="'coordinator': it decides commit as soon as the last YES vote arrives and "
               "forces COMMIT to its log (■ COMMIT); p1 and p2 decide only when its COMMIT "
               "message reaches them.",
        example="coordinator",
        wrong=(("p1", "first ✓ mark"), ("p2", "first ✓ mark")),
    )


@register("start-count-messages")
def _count_messages() -> Exercise:
    participants = 5

    def check(answer: Any) -> Feedback:
        answer = whole_number(answer, "your answer (e.g. ex.check(12))")
        run = _happy(participants).run()
        total = run.metrics.messages
        per = total // participants
        if answer == total:
            kinds = ", ".join(f"{n} {t}" for t, n in sorted(run.metrics.messages_by_type.items()))
            return Feedback(True, f"{total} messages: {kinds}. That is {per} per participant, "
                                  "so 2PC's happy path costs 4n messages for n participants.")
        if answer == _happy(2).run().metrics.messages:
            return Feedback(False, "that is the count for two participants; this question "
                                   f"is about {participants}.")
        if answer == 2 * participants:
            return Feedback(False, "that counts only the first phase (PREPARE and the votes). "
                                   "What does the second phase send?")
        return Feedback(False, f"not {answer}. Count the messages between the coordinator "
                               "and ONE participant in the diagram, then multiply.")

    return Exercise(
        name="start-count-messages",
        prompt=f"How many messages does 2PC's happy path send with {participants} "
               "participants? Predict it from the two-participant diagram, then check it "
               "with a number, e.g. ex.check(12).",
        checker=check,
        hints=(
            "Every arrow in the diagram is one message.",
            "Between the coordinator and each participant go PREPARE, a vote, the decision "
            "and an acknowledgement.",
        ),
        answer=f"{4 * participants}: each participant gets PREPARE and COMMIT and sends YES "
               "and ACK, 4 messages each; txlib.simulate('2pc', participants=5)"
               ".metrics.messages says the same.",
        example=4 * participants,
        wrong=((2 * participants, "only the first phase"),
               (8, "the count for two participants"),
               (3 * participants, "then multiply")),
    )
