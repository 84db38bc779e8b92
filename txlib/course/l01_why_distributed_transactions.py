"""Lesson 01 (why distributed transactions, ``notebooks/01_why_distributed_transactions.ipynb``):
exercises on what goes wrong with no protocol, and on ACID across nodes, and the
lesson's auditor (:func:`audit`): what a reader that takes no locks sees at each step.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from ..engine.faults import crash, drop, vote_no
from ..errors import TxlibError, shown
from ..protocols import PROTOCOLS, CommitProtocol
from ..protocols.bank import apply, balances_after
from ..simulation.run import Run
from ..simulation.scenario import Scenario
from . import Exercise, Feedback, register
from .checking import dict_of, one_fault, tidy

# Lesson 01's transfer: alice pays bob 100, each account in its own service, no protocol.
TRANSFER = Scenario("naive", ("alice", "bob"), options={"prepare_timeout": 60})
# The same transfer under 2PC.
TWO_PC = Scenario("2pc", ("alice", "bob"), options={"horizon": 300})


@dataclass(frozen=True)
class Audit:
    """What an auditor that reads every account's committed balance, taking no locks,
    sees right after one step of a run."""

    step: int
    time: int
    balances: dict[str, int]

    @property
    def total(self) -> int:
        return sum(self.balances.values())


def _commits(run: Run) -> dict[str, tuple[int, tuple[str, int]]]:
    """participant -> (the step of its COMMITTED record, the operation it applied), for
    every COMMITTED record still in its durable log."""
    out: dict[str, tuple[int, tuple[str, int]]] = {}
    for p in run.participants:
        kept = [r for r in run.logs.get(p, ()) if r.record == "COMMITTED"]
        step = next((e.step for e in run.trace if e.kind == "log" and e.node == p
                     and e.detail.startswith("COMMITTED")), None)
        if kept and step is not None:
            out[p] = (step, (kept[0].data["op"], kept[0].data["amount"]))
    return out


def _transfer_run(run: object) -> Run:
    """``run`` if the auditor can read it: a recorded run of a commit protocol, whose
    participants hold bank accounts; else a TxlibError naming what it can read."""
    if not isinstance(run, Run):
        raise TxlibError(f"the auditor reads a run (txlib.simulate(...) or "
                         f"scenario.run()), got {shown(run)}")
    if not isinstance(run.protocol, CommitProtocol):
        valid = ", ".join(repr(n) for n, p in PROTOCOLS.items()
                          if isinstance(p, CommitProtocol))
        raise TxlibError(f"the auditor reads bank accounts, which a "
                         f"{run.scenario.protocol!r} run does not have (its services keep "
                         f"their own stores); it reads runs of a commit protocol: {valid}")
    if not run.recorded:
        raise TxlibError("the auditor reads the run's trace step by step, and this run was "
                         "made with record=False")
    return run


def audit(run: Run) -> list[Audit]:
    """After every step of ``run``, each account's committed balance as an auditor that
    takes no locks reads it (a snapshot read, or a plain SELECT): an account changes at
    the step its service writes its COMMITTED record. ``run`` is a recorded run of a
    commit protocol (2PC, 3PC, Paxos Commit, no protocol); any other is refused."""
    run = _transfer_run(run)
    start = balances_after(run.participants, run.scenario.options, {})
    commits = _commits(run)
    rows = []
    for step in sorted({e.step for e in run.trace}):
        seen = {p: apply(start[p], commits[p][1]) if p in commits and commits[p][0] <= step
                else start[p] for p in run.participants}
        time = max(e.time for e in run.trace if e.step == step)
        rows.append(Audit(step, time, seen))
    return rows


def half_transfers(run: Run) -> list[Audit]:
    """The steps after which the auditor's total differs from the total before the run:
    it sees part of the transfer and not the rest."""
    rows = audit(run)
    before = sum(balances_after(run.participants, run.scenario.options, {}).values())
    return [row for row in rows if row.total != before]


@register("why-lose-money-without-a-crash")
def _lose_money() -> Exercise:
    def check(answer: Any) -> Feedback:
        fault = one_fault(answer, "[txlib.drop('DEBIT')] or txlib.vote_no('alice')")
        if fault.kind == "crash" and fault.node == "coordinator":
            return Feedback(False, "a crash of the coordinator is the fault we already saw. "
                                   "Find a way that needs no crash of the coordinator.")
        run = TRANSFER.with_faults(fault).run()
        money = balances_after(run.participants, run.scenario.options, run.logs)
        start = balances_after(run.participants, run.scenario.options, {})
        total, before = sum(money.values()), sum(start.values())
        shown = ", ".join(f"{n} {v}" for n, v in money.items())
        if total < before:
            return Feedback(True, f"{shown}: {before - total} vanished, and the run is "
                                  f"{run.outcome}. alice's commit was final before anyone "
                                  "knew whether bob's part would happen.")
        changed = [n for n in money if money[n] != start[n]]
        why = ("nobody's balance changed. Something must go wrong AFTER alice commits."
               if not changed else
               "both parts went through (what went wrong came too late to matter). "
               "Something must stop bob's part after alice commits.")
        return Feedback(False, f"that run ended {run.outcome} with {shown} (total {total}), "
                               f"so no money was lost: {why}")

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
        wrong=((vote_no("alice"), "no money was lost: nobody's balance changed"),
               (drop("DONE", src="bob"), "both parts went through"),
               (crash("coordinator", when="coordinator sends DEBIT to alice"),
                "the fault we already saw"),
               # after the transfer: it loses nothing, so it is not "the crash we saw"
               (crash("coordinator", at_time=1000), "a crash of the coordinator is")),
    )


PROPERTIES = ("atomicity", "consistency", "isolation", "durability")
NONE = "none"
_ACID_KEY = {"a": NONE, "b": "consistency", "c": "durability", "d": "atomicity"}
_ABOUT = {
    "atomicity": "all or nothing across the services: no run ends with one service "
                 "committed and the other aborted",
    "consistency": "the business rule, a total of 1000, holds once the transfer is done",
    "durability": "a forced record survives the crash",
}


def _half_seen() -> str:
    """The auditor's counterexample in the 2PC happy run, in words."""
    row = half_transfers(TWO_PC.run())[0]
    sums = " + ".join(f"{p} {v}" for p, v in row.balances.items())
    return f"at step {row.step} (time {row.time}) it saw {sums} = {row.total}"


def _why_not(letter: str, given: str) -> str:
    """Why ``given`` is the wrong word for observation ``letter``: a short reason."""
    right = _ACID_KEY[letter]
    if letter == "a":
        return (f"a: alice's grey lock bar does not hide the half-done transfer from an "
                f"auditor that takes no locks: {_half_seen()}, while the bar still ran. "
                "Locks make only readers that lock wait, so the bar by itself guarantees "
                "nothing across the services.")
    if right == NONE:
        return f"{letter}: this observation shows no guarantee of 2PC's."
    return f"{letter} is about {right}, not {given}: {_ABOUT[right]}."


@register("why-acid")
def _acid() -> Exercise:
    def check(answer: Any) -> Feedback:
        answer = dict_of(answer, _ACID_KEY, "observation", "a property")
        given = {k: tidy(str(v)) for k, v in answer.items()}
        words = (*PROPERTIES, NONE)
        unknown = sorted(v for v in given.values() if v not in words)
        if unknown:
            return Feedback(False, f"{', '.join(map(repr, unknown))}: use the words "
                                   f"{', '.join(words)}")
        wrong = sorted(k for k, v in given.items() if v != _ACID_KEY[k])
        if not wrong:
            return Feedback(True, "b the business rule holds (consistency); c the log "
                                  "survives crashes (durability); d all or nothing "
                                  "(atomicity). a shows no isolation: an auditor that takes "
                                  f"no locks is not stopped by the lock bar, and {_half_seen()}.")
        others = f" Look again at {', '.join(wrong[1:])} too." if len(wrong) > 1 else ""
        return Feedback(False, f"{len(_ACID_KEY) - len(wrong)} of 4 right. "
                               f"{_why_not(wrong[0], given[wrong[0]])}{others}")

    return Exercise(
        name="why-acid",
        prompt="Which ACID guarantee of 2PC does each observation show? "
               "(a) under 2PC, alice's grey lock bar lasts from her PREPARED until she learns "
               "the decision. "
               "(b) once a 2PC transfer has finished at both services, alice's and bob's "
               "balances add up to 1000, as they did before. "
               "(c) after bob crashes and restarts, his ■ PREPARED record is still in his "
               "log and he resumes in doubt. "
               "(d) under 2PC no fault in this lesson ends with one service committed and "
               "the other aborted. Atomicity, consistency and durability are each shown "
               f"once; one observation shows no guarantee of 2PC's: answer '{NONE}' for it. "
               "Answer with a dict, e.g. {'a': 'atomicity', ...}.",
        checker=check,
        hints=(
            "Durability is about what survives a crash; atomicity about all or nothing.",
            "What did the auditor that reads both balances without locks see in the 2PC "
            "happy run, while alice's lock bar still ran?",
        ),
        answer="{'a': 'none', 'b': 'consistency', 'c': 'durability', 'd': 'atomicity'}. "
               "The lock bar makes readers that lock wait, but a reader that takes no locks "
               "(a snapshot read, a plain SELECT) sees bob's commit before alice's: 2PC "
               "gives atomicity, not isolation.",
        example=dict(_ACID_KEY),
        wrong=(
            ({"a": "isolation", "b": "consistency", "c": "durability", "d": "atomicity"},
             "1100"),
            ({"a": "none", "b": "consistency", "c": "atomicity", "d": "durability"},
             "c is about durability"),
            ({"a": "atomicity", "b": "consistency", "c": "durability", "d": "none"},
             "only readers that lock wait"),
        ),
    )
