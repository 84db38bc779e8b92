"""Randomized crash testing: many transactions in a row on one running system, each
with kill -9 (or, with ``power=True``, power cuts that also lose unsynced writes) at
random protocol points or random moments, every node restarted, and every end state
checked.

>>> from txlib.real.chaos import crash_loop                      # doctest: +SKIP
>>> report = crash_loop(crashes=100, seed=1)
>>> report.fired >= 100, report.problems
(True, [])
"""

from __future__ import annotations

import contextlib
import random
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

from ..errors import TxlibError, bad_choice, shown
from .crashpoints import CRASH_POINTS, Crash
from .roles import real_protocol
from .run import RealRun
from .system import SYSTEM_ARGUMENTS, RealSystem, seconds, timing_for

# Short wall-clock timeouts: a crash loop mostly waits for them.
CHAOS_TIMEOUTS: dict[str, int] = {
    "vote_timeout": 300,
    "prepare_timeout": 400,
    "decision_timeout": 100,
    "retry_interval": 80,
    "ack_timeout": 100,
}
MAX_CRASHES = 100_000  # crashes (and transactions) one loop may ask for
# RealSystem arguments the loop sets itself: each transaction's operations, a random
# restart delay, and restarts (the loop needs every node back)
_LOOP_SETS = ("operations", "restart_delay", "restart")


def _count(what: str, value: object) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or \
            not 1 <= value <= MAX_CRASHES:
        raise TxlibError(f"{what} must be a whole number from 1 to {MAX_CRASHES:,}, got "
                         f"{shown(value)}")
    return value


def random_crashes(rng: random.Random, system: RealSystem, power: bool = False) -> list[Crash]:
    """One to three crashes: at named protocol points (sometimes in the restarted
    process's next life too) or at a random moment in the first 40 ms. ``power``: power
    cuts instead of kills, and sometimes of the whole machine (every node at once)."""
    nodes = system.nodes
    roles = system.roster.roles

    def now_life(node: str) -> int:
        return system.handles[node].incarnation

    def named(node: str, life: int) -> Crash:
        """At a named point of the node's role; a role without any (Paxos Commit's
        acceptors) at a random moment instead."""
        points = CRASH_POINTS.get(roles[node])
        if points is None:
            return Crash(node, after=rng.uniform(0.0, 0.04), incarnation=life, power=power)
        return Crash(node, point=rng.choice(points), incarnation=life, power=power)

    if power and rng.random() < 0.2:  # the whole machine
        after = rng.uniform(0.0, 0.04)
        return [Crash(n, after=after, incarnation=now_life(n), power=True) for n in nodes]

    roll = rng.random()
    if roll < 0.45:
        node = rng.choice(nodes)
        return [named(node, now_life(node))]
    if roll < 0.65:
        node = rng.choice(nodes)
        return [Crash(node, after=rng.uniform(0.0, 0.04), incarnation=now_life(node),
                      power=power)]
    if roll < 0.85:  # two nodes at once
        a, b = rng.sample(nodes, 2)
        return [named(a, now_life(a)), named(b, now_life(b))]
    node = rng.choice(nodes)  # dies, restarts, and dies again while recovering/finishing
    life = now_life(node)
    return [named(node, life), named(node, life + 1)]


@dataclass
class LoopReport:
    """What a crash loop did: transactions run, crashes that fired, outcomes, problems
    (each prefixed by its transaction), and seconds taken."""

    transactions: int = 0
    fired: int = 0
    outcomes: dict[str, int] = field(default_factory=dict)
    problems: list[str] = field(default_factory=list)
    seconds: float = 0.0
    runs: list[RealRun] = field(default_factory=list, repr=False)


def crash_loop(
    crashes: int = 100,
    *,
    backend: str | Mapping[str, str] = "sqlite",
    seed: int = 0,
    participants: int | Sequence[str] = 3,
    max_transactions: int | None = None,
    options: Mapping[str, Any] | None = None,
    check_traces: bool = True,
    amount: int = 10,
    deadline: float = 150.0,
    power: bool = False,
    **system_options: Any,
) -> LoopReport:
    """Run transactions with random crashes until ``crashes`` crashes have fired (or
    ``max_transactions`` ran, or ``deadline`` seconds passed). The payer changes from
    one transaction to the next, so nobody runs out of money.

    After each transaction settles (every node back and finished), check that money is
    conserved, nothing is in doubt, no lock is held, every node agrees and the data
    matches the outcome; at the end, check txlib's safety invariants on every
    transaction's trace (a decision lost in a power cut breaks stability: a node
    decided, then decided otherwise). ``power``: power cuts instead of kills. At least
    one transaction runs, however short the ``deadline``.
    """
    crashes = _count("crashes", crashes)
    limit = _count("max_transactions", max_transactions) if max_transactions is not None \
        else 3 * crashes + 10
    deadline = seconds("deadline", deadline)
    if not isinstance(power, bool):
        raise TxlibError(f"power must be True or False, got {shown(power)}")
    for key in system_options:
        if key in _LOOP_SETS:
            raise TxlibError(f"crash_loop sets {key} itself (each transaction's operations, "
                             "a random restart delay, and every node restarted); leave it out")
        if key not in SYSTEM_ARGUMENTS:
            raise bad_choice("argument of crash_loop", key, (
                "crashes", "backend", "seed", "participants", "max_transactions", "options",
                "check_traces", "amount", "deadline", "power",
                *(a for a in SYSTEM_ARGUMENTS if a not in (*_LOOP_SETS, "amount", "options"))))
    rng = random.Random(seed)
    report = LoopReport()
    started = time.monotonic()
    protocol = real_protocol(system_options.get("protocol", "2pc")).name
    if options is not None and not isinstance(options, Mapping):
        raise TxlibError(f"options must be a mapping of option names to values, got "
                         f"{shown(options)}")
    opts = {**timing_for(protocol, CHAOS_TIMEOUTS), **dict(options or {})}
    if power:
        system_options.setdefault("power_cuts", True)
    with RealSystem(participants, backend, options=opts, **system_options) as system:
        total = sum(system.initial_balances.values())
        count = len(system.participants)
        while report.fired < crashes and report.transactions < limit and \
                (not report.transactions or time.monotonic() - started < deadline):
            report.transactions += 1
            tx = f"T{report.transactions}"
            system.restart_delay = rng.uniform(0.0, 0.1)
            payer = system.participants[report.transactions % count]
            ops = {p: ("credit", amount) for p in system.participants}
            ops[payer] = ("debit", amount * (count - 1))
            system.begin(tx, crash=random_crashes(rng, system, power), operations=ops)
            settled = system.settle(tx, timeout=20.0)
            if settled:
                # A node restarted after a power cut may still be asking about an earlier
                # transaction (its decision record was not yet synced): let it finish, a
                # bounded wait, before judging. Work left in doubt for good is reported.
                # (if it times out, run.problems() below names what stayed in doubt)
                with contextlib.suppress(TxlibError):
                    system.wait(lambda s: not any(i["in_doubt"] or i["locked"]
                                                  for i in s.inspect().values()),
                                20.0, "every participant to resolve its in-doubt work")
            run = system.result(tx, trace=False)
            report.runs.append(run)
            report.fired += len(run.crashes)
            report.outcomes[run.outcome] = report.outcomes.get(run.outcome, 0) + 1
            problems = run.problems()
            if sum(run.balances.values()) != total:
                problems.append(f"the total is {sum(run.balances.values())}, not {total}")
            report.problems += [f"{tx}: {p}" for p in problems]
            if not settled:
                break  # the next transaction would find this one's locks
        if check_traces and system.record:
            events = system.events()
            for run in report.runs:
                trace = system.trace(run.tx, events)
                for v in replace(run, trace_or_none=trace).violations:
                    report.problems.append(f"{run.tx}: {v}")
    report.seconds = time.monotonic() - started
    return report
