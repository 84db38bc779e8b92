"""Exercises on two-phase commit (an example of the pattern each lesson follows)."""

from __future__ import annotations

from typing import Any

from ..engine.faults import Fault, crash
from ..simulation.scenario import Scenario
from . import Exercise, Feedback, register


def _faults(answer: Any) -> tuple[Fault, ...]:
    if isinstance(answer, Fault):
        return (answer,)
    if isinstance(answer, (list, tuple)) and all(isinstance(f, Fault) for f in answer):
        return tuple(answer)
    raise TypeError("answer with a fault or a list of faults, e.g. [txlib.crash('p1', ...)]")


@register("2pc-block-with-one-crash")
def _block_with_one_crash() -> Exercise:
    def check(answer: Any) -> Feedback:
        faults = _faults(answer)
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
    )
