"""Lesson 01 (why distributed transactions, ``notebooks/01_why_distributed_transactions.ipynb``):
exercises on what goes wrong with no protocol, and on ACID across nodes."""

from __future__ import annotations

from typing import Any

from ..engine.faults import vote_no
from ..protocols.bank import balances_after
from ..simulation.scenario import Scenario
from . import Exercise, Feedback, register
from .checking import dict_of, one_fault, tidy

# Lesson 01's transfer: alice pays bob 100, each account in its own service, no protocol.
TRANSFER = Scenario("naive", ("alice", "bob"), options={"prepare_timeout": 60})


@register("why-lose-money-without-a-crash")
def _lose_money() -> Exercise:
    def check(answer: Any) -> Feedback:
        fault = one_fault(answer, "[txlib.drop('DEBIT')] or txlib.vote_no('alice')")
        if fault.kind == "crash" and fault.node == "coordinator":
            return Feedback(False, "that is the crash we already saw. Find a way that needs "
                                   "no crash of the coordinator.")
        run = TRANSFER.with_faults(fault).run()
        money = balances_after(run.participants, run.scenario.options, run.logs)
        start = balances_after(run.participants, run.scenario.options, {})
        total, before = sum(money.values()), sum(start.values())
        shown = ", ".join(f"{n} {v}" for n, v in money.items())
        if total < before:
            return Feedback(True, f"{shown}: {before - total} vanished, and the run is "
                                  f"{run.outcome}. alice's commit was final before anyone "
                                  "knew whether bob's part would happen.")
        return Feedback(False, f"that run ended {run.outcome} with {shown} (total {total}): "
                               "no money lost. Something must go wrong AFTER alice commits.")

    return Exercise(
        name="why-lose-money-without-a-crash",
        prompt="Money can vanish with no crash of the coordinator. Find ONE other fault "
               "after which the naive transfer (alice pays bob 100) leaves alice debited "
               "and bob not credited.",
        checker=check,
        hints=(
            "alice commits first. What could stop bob's part from happening afterwards?",
            "A lost message, a slow one (bob only waits 60 ms for his request), a crash of "
            "bob, or bob refusing his part all happen after alice's commit.",
        ),
        answer="txlib.vote_no('bob'): bob refuses the credit, but alice's debit is already "
               "committed and the naive code has no way to take it back. "
               "txlib.drop('CREDIT') or txlib.crash('bob', at_step=1) work too.",
        example=[vote_no("bob")],
    )


PROPERTIES = ("atomicity", "consistency", "isolation", "durability")
_ACID_KEY = {"a": "isolation", "b": "consistency", "c": "durability", "d": "atomicity"}


@register("why-acid")
def _acid() -> Exercise:
    def check(answer: Any) -> Feedback:
        answer = dict_of(answer, _ACID_KEY, "observation", "a property")
        given = {k: tidy(str(v)) for k, v in answer.items()}
        unknown = sorted(v for v in given.values() if v not in PROPERTIES)
        if unknown:
            return Feedback(False, f"{', '.join(map(repr, unknown))}: use the words "
                                   f"{', '.join(PROPERTIES)}")
        wrong = sorted(k for k, v in given.items() if v != _ACID_KEY[k])
        if not wrong:
            return Feedback(True, "a locks hide the half-done transfer (isolation); b the "
                                  "business rule holds (consistency); c the log survives "
                                  "crashes (durability); d all or nothing (atomicity).")
        return Feedback(False, f"{len(_ACID_KEY) - len(wrong)} of 4 right; look again at "
                               f"{', '.join(wrong)}.")

    return Exercise(
        name="why-acid",
        prompt="Which ACID property does each observation show? "
               "(a) under 2PC, alice's grey lock bar lasts from her PREPARED until she learns "
               "the decision. "
               "(b) once a 2PC transfer has finished at both services, alice's and bob's "
               "balances add up to 1000, as they did before. "
               "(c) after bob crashes and restarts, his ■ PREPARED record is still in his "
               "log and he resumes in doubt. "
               "(d) under 2PC no fault in this lesson ends with one service committed and "
               "the other aborted. Answer with a dict, e.g. {'a': 'atomicity', ...}.",
        checker=check,
        hints=(
            "Each property is used exactly once.",
            "Isolation is about what OTHER transactions can see meanwhile; durability is "
            "about what survives a crash.",
        ),
        answer="{'a': 'isolation', 'b': 'consistency', 'c': 'durability', 'd': 'atomicity'}",
        example=dict(_ACID_KEY),
    )
