"""Lesson 10 (choosing a protocol, ``notebooks/10_choosing_a_protocol.ipynb``): one piece
of work, five protocols, the same faults.

2PC, 3PC and Paxos Commit run with four participants named after the order saga's
services, so that one fault plan names the same nodes in every protocol (Paxos Commit's
acceptors ``a1``..``a3`` are extra nodes, placed with the coordinator); the sagas run the
order saga (by orchestration and by choreography) over those four services. The
orchestrated saga's column is the design lesson 09 recommends (compensations registered
*before* each call); ``"saga-after"`` is the same saga with the bug of registering them
after success, shown as a named row. The lesson and the checkers below share the plans
defined here, and every verdict comes from runs. The lesson's own helpers: :func:`table`
(an HTML table), :func:`known_at`, :func:`delays`, :func:`longest`, :func:`cut` (the
partition sweep's plan) and :func:`half_transfer` (what lesson 01's auditor sees).

- ``3pc-message-count``: a function of n that predicts how many messages 3PC's happy
  path sends with n participants (txlib's convention); checked against runs for
  n = 1..8;
- ``choose-never-blocks``: a protocol that is never left unfinished by a single crash
  of its coordinator (which never comes back) and never loses atomicity when the only
  failures are crashes. The checker crashes the coordinator at every step, and every
  node at every step and right after every log record, with and without recovery; every
  protocol that passes is accepted (3PC and Paxos Commit do), and the feedback says what
  a partition does to it;
- ``saga-inconsistent-2pc-blocks``: the lesson's fault plan under which the saga with
  the 'after' bug ends inconsistent while 2PC only blocks: a participant waits in doubt
  for as long as the fault lasts (:func:`only_blocks`), and 2PC may finish after a heal.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from html import escape
from typing import Any

from IPython.display import HTML

from ..engine.faults import Fault, crash, fail_step, heal, partition, recover, vote_no
from ..errors import TxlibError, bad_choice, shown
from ..protocols.bank import balances_after
from ..simulation.run import Run
from ..simulation.scenario import Scenario, participant_names
from . import Exercise, Feedback, register
from .checking import formula, whole_number, wrong_predictions
from .l01_why_distributed_transactions import half_transfers

SERVICES = ("orders", "inventory", "payment", "shipping")
COMMIT_PROTOCOLS = ("2pc", "3pc", "paxos-commit")
# The lesson's columns, and the named bug row: each is a protocol and its options.
SETUPS: dict[str, tuple[str, dict[str, Any]]] = {
    "2pc": ("2pc", {}),
    "3pc": ("3pc", {}),
    "paxos-commit": ("paxos-commit", {}),
    "saga": ("saga", {"register_compensation": "before"}),
    "saga-choreography": ("saga-choreography", {}),
    "saga-after": ("saga", {"register_compensation": "after"}),
}
PROTOCOLS = ("2pc", "3pc", "paxos-commit", "saga", "saga-choreography")
BUG = "saga-after"
LABELS = {"2pc": "2PC", "3pc": "3PC", "paxos-commit": "Paxos Commit",
          "saga": "Saga (orchestration)", "saga-choreography": "Saga (choreography)",
          "saga-after": "Saga, 'after' (the bug)"}
# The node that drives each protocol: the one whose crash the plans inject.
DRIVER = {"2pc": "coordinator", "3pc": "coordinator", "paxos-commit": "coordinator",
          "saga": "orchestrator", "saga-choreography": "broker", "saga-after": "orchestrator"}
# The forced record with which a participant makes its part durable.
WORK_RECORD = {"2pc": "PREPARED", "3pc": "READY", "paxos-commit": "PREPARED",
               "saga": "LOCAL_TX", "saga-choreography": "LOCAL_TX", "saga-after": "LOCAL_TX"}
HORIZON = 1000  # every run of the lesson stops at 1000 ms of simulated time
CRASH_AT, RECOVER_AT, CUT_AT, HEAL_AT = 20, 300, 20, 300

PLANS: dict[str, str] = {
    "no fault": "the happy path",
    "coordinator crash": f"the coordinator (orchestrator, broker) crashes at {CRASH_AT} ms "
                         "and never comes back",
    "coordinator crash, back at 300": f"the same crash; it restarts at {RECOVER_AT} ms",
    "payment fails": "payment cannot do its part: it votes NO (2PC, 3PC, Paxos Commit), its "
                     "step fails (sagas)",
    "partition": f"from {CUT_AT} ms the network cuts {{coordinator, orders, inventory}} off "
                 "from {payment, shipping}, for good (Paxos Commit's acceptors are on the "
                 "coordinator's side)",
    "partition, healed at 300": f"the same cut, healed at {HEAL_AT} ms",
    "payment cut off": "the network cuts payment off from everyone right after it forces "
                       "its part to its log (PREPARED, READY, LOCAL_TX), for good",
    "payment cut off, healed at 300": f"the same cut, healed at {HEAL_AT} ms",
}


def _protocol(protocol: Any) -> str:
    if not isinstance(protocol, str) or protocol not in SETUPS:
        raise bad_choice("protocol", protocol, SETUPS)
    return protocol


def scenario(protocol: str, faults: tuple[Fault, ...] | list[Fault] = (),
             **options: Any) -> Scenario:
    """``protocol`` (a key of :data:`SETUPS`) on the lesson's work: the commit protocols
    with the four services as participants, the sagas with the order saga; runs stop at
    :data:`HORIZON`."""
    name, preset = SETUPS[_protocol(protocol)]
    participants = SERVICES if name in COMMIT_PROTOCOLS else ()
    return Scenario(name, participants, faults=tuple(faults),
                    options={"horizon": HORIZON, **preset, **options})


def simulate(protocol: str, faults: tuple[Fault, ...] | list[Fault] = (),
             **options: Any) -> Run:
    """Run :func:`scenario`."""
    return scenario(protocol, faults, **options).run()


def coordinating_side(protocol: str) -> list[str]:
    """The coordinator's side of the lesson's partition: the driving node, the protocol's
    other helper nodes (Paxos Commit's acceptors), orders and inventory."""
    names = scenario(protocol).roster.names
    helpers = [n for n in names if n not in SERVICES and n != DRIVER[protocol]]
    return [DRIVER[protocol], *helpers, "orders", "inventory"]


def cut(protocol: str, at: int, healed: bool) -> tuple[Fault, ...]:
    """The lesson's partition at ``at`` ms ({payment, shipping} cut off from the
    coordinator's side), healed at :data:`HEAL_AT` if ``healed``."""
    faults = (partition(coordinating_side(protocol), ["payment", "shipping"], at_time=at),)
    return (*faults, heal(at_time=HEAL_AT)) if healed else faults


def plan(name: str, protocol: str) -> tuple[Fault, ...]:
    """The faults of plan ``name`` (a key of :data:`PLANS`) for ``protocol``."""
    if not isinstance(name, str) or name not in PLANS:
        raise bad_choice("fault plan", name, PLANS)
    protocol = _protocol(protocol)
    driver = DRIVER[protocol]
    healed = name.endswith("healed at 300")
    if name == "no fault":
        return ()
    if name.startswith("coordinator crash"):
        back = (recover(driver, at_time=RECOVER_AT),) if name.endswith("back at 300") else ()
        return (crash(driver, at_time=CRASH_AT), *back)
    if name == "payment fails":
        commit = SETUPS[protocol][0] in COMMIT_PROTOCOLS
        return (vote_no("payment") if commit else fail_step("process_payment"),)
    if name.startswith("partition"):
        return cut(protocol, CUT_AT, healed)
    lost = (partition(["payment"], when=f"payment logs {WORK_RECORD[protocol]}"),)
    return (*lost, heal(at_time=HEAL_AT)) if healed else lost


def run_plan(name: str, protocol: str, **options: Any) -> Run:
    """Run plan ``name`` on ``protocol``."""
    return simulate(protocol, plan(name, protocol), **options)


def coordinator_crashes(protocol: str) -> Iterator[tuple[Fault, ...]]:
    """The coordinator (orchestrator, broker) crashes right after step k, for every step
    k of the fault-free run, and never comes back."""
    steps = simulate(protocol).steps
    for k in range(steps + 1):
        yield (crash(DRIVER[protocol], at_step=k),)


def single_crashes(protocol: str) -> Iterator[tuple[Fault, ...]]:
    """Every node crashes, once, right after every step of the fault-free run and right
    after each kind of record it forces; each plan with and without a restart at 300."""
    happy = simulate(protocol)
    for node in happy.nodes:
        moments = [crash(node, at_step=k) for k in range(happy.steps + 1)]
        records = dict.fromkeys(r.record for r in happy.logs[node])
        moments += [crash(node, when=f"{node} logs {record}") for record in records]
        for fault in moments:
            yield (fault,)
            yield (fault, recover(node, at_time=RECOVER_AT))


def outcomes(protocol: str, plans: Iterable[tuple[Fault, ...]]) -> list[str]:
    """The outcome of ``protocol`` under each plan (runs without a trace, for speed)."""
    return [scenario(protocol, faults).run(record=False).outcome for faults in plans]


def half_transfer(run: Run) -> tuple[int, int, int, int] | None:
    """What lesson 01's auditor (a reader that takes no locks) sees in a commit run: the
    first and last ms at which the committed balances do not add up, the total it reads
    furthest from the true one, and the true total; None if it never sees that."""
    seen = half_transfers(run)
    if not seen:
        return None
    before = sum(balances_after(run.participants, run.scenario.options, {}).values())
    worst = max(seen, key=lambda row: abs(row.total - before)).total
    return seen[0].time, seen[-1].time, worst, before


def _unfinished(run: Run) -> bool:
    return run.outcome in ("blocked", "stuck")


# --- showing runs --------------------------------------------------------------------------
CELL = "border:1px solid #999;padding:3px 6px;text-align:left;vertical-align:top"


def _row(values: Iterable[Any], tag: str) -> str:
    return "<tr>" + "".join(
        f"<{tag} style='{CELL}'>{escape(str(v)).replace(chr(10), '<br>')}</{tag}>"
        for v in values) + "</tr>"


def table(header: Sequence[Any], rows: Iterable[Sequence[Any]]) -> HTML:
    """An HTML table of values computed from runs; a newline in a value starts a new line."""
    body = _row(header, "th") + "".join(_row(row, "td") for row in rows)
    return HTML(f"<table style='border-collapse:collapse;font-size:13px'>{body}</table>")


def known_at(run: Run) -> int | None:
    """When the outcome was known: the last participant's decision in 2PC and 3PC, the
    orchestrator's or broker's in a saga. None if the run ended unfinished."""
    if run.outcome in ("blocked", "stuck"):
        return None
    deciders = run.participants if run.scenario.protocol in COMMIT_PROTOCOLS else run.nodes[:1]
    return max(e.time for e in run.trace if e.kind == "decision" and e.node in deciders)


def delays(run: Run) -> int | None:
    """Message delays on the longest causal chain to the outcome (conventions in the
    lesson)."""
    m = run.metrics
    return m.message_delays if run.scenario.protocol in COMMIT_PROTOCOLS else m.decision_delays


def longest(per_node: Mapping[str, int]) -> int:
    """The largest of a metric's per-participant values (0 if none)."""
    return max(per_node.values(), default=0)


# --- exercise: predict 3PC's message count ------------------------------------------------
def _three_pc(n: int) -> Run:
    return Scenario("3pc", participant_names(n)).run()


def _messages(run: Run) -> int:
    return run.metrics.messages


def _count(value: Any, n: int) -> int:
    """What the learner's function predicts for n: a whole number; 24.0 (from a division,
    say) counts as 24."""
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return whole_number(value, f"for n = {n}, what your function returned")


@register("3pc-message-count")
def _three_pc_count() -> Exercise:
    sizes = range(1, 9)

    def check(answer: Any) -> Feedback:
        fn = formula(answer, "ex.check(lambda n: 2 * n + 1)")
        wrong = list(wrong_predictions(fn, sizes, _three_pc, _messages, _count))
        if not wrong:
            return Feedback(True, f"right for n = 1 to {sizes[-1]}. Per participant: CAN_COMMIT "
                                  "and YES, PRE_COMMIT and ACK, DO_COMMIT and ACK: three round "
                                  "trips, where 2PC needs two (4n messages).")
        n, guess, run = wrong[0]
        kinds = ", ".join(f"{c} {t}" for t, c in run.metrics.messages_by_type.items())
        return Feedback(False, f"for n = {n} you predict {shown(guess)}, the run sent "
                               f"{run.metrics.messages} ({kinds}); wrong for "
                               f"{len(wrong)} of the {len(sizes)} sizes tried.")

    return Exercise(
        name="3pc-message-count",
        prompt="Predict how many messages 3PC's happy path sends with n participants, as "
               "txlib counts them (every message, ACKs included; the coordinator on its own "
               "node). Answer with a function of n, e.g. ex.check(lambda n: 4 * n).",
        checker=check,
        hints=(
            "Count the messages between the coordinator and ONE participant, phase by phase.",
            "CanCommit, PreCommit and DoCommit are each a round trip: a request and an answer.",
            "Three round trips per participant, nothing between participants.",
        ),
        answer="lambda n: 6 * n: per participant CAN_COMMIT and YES, PRE_COMMIT and ACK, "
               "DO_COMMIT and ACK. 2PC sends 4n (PREPARE, YES, COMMIT, ACK); 3PC pays one "
               "more round trip, two more message delays and a forced PRECOMMITTED record at "
               "every participant for not blocking when the coordinator crashes.",
        example=lambda n: 6 * n,
        wrong=((lambda n: 4 * n, "the run sent 6"),  # 2PC's count
               (lambda n: 3 * n, "the run sent 6"),  # one message per phase
               (lambda n: 5 * n, "the run sent 6")),  # no ACK after DO_COMMIT
    )


# --- exercise: the protocol that never blocks on a coordinator crash ----------------------
_ALIASES = {"orchestration": "saga", "saga (orchestration)": "saga",
            "choreography": "saga-choreography", "saga (choreography)": "saga-choreography",
            "paxos": "paxos-commit", "paxos commit": "paxos-commit"}
# The protocols that the runs show pass the exercise (tests check both, and only them).
NEVER_BLOCKED = ("3pc", "paxos-commit")
MOMENTS = range(0, 100, 5)  # the partition sweep's cut times (ms)


def _chosen_protocol(answer: Any) -> str:
    if not isinstance(answer, str):
        raise TxlibError(f"answer with a protocol's name: one of {', '.join(PROTOCOLS)}")
    name = answer.strip().lower()
    return _protocol(_ALIASES.get(name, name))


def _chosen_protocols(answer: Any) -> list[str]:
    """One protocol's name, or several (a list or a set): each must pass."""
    if isinstance(answer, (list, tuple, set, frozenset)) and answer:
        names = {_chosen_protocol(a) for a in answer}
        return [p for p in SETUPS if p in names]  # in the lesson's order, whatever the set's
    return [_chosen_protocol(answer)]


def _first(plans: Iterator[tuple[Fault, ...]], protocol: str,
           bad: Callable[[Run], bool]) -> tuple[int, int, Run | None]:
    """How many plans give a bad run, out of how many, and the first such run."""
    count, total, first = 0, 0, None
    for faults in plans:
        total += 1
        if bad(scenario(protocol, faults).run(record=False)):
            count += 1
            if first is None:
                first = simulate(protocol, faults)
    return count, total, first


def _faults_text(run: Run) -> str:
    return " and ".join(f.describe() for f in run.scenario.faults)


def under_cuts(protocol: str) -> tuple[int, int]:
    """Of the partition sweep's moments (never healed): how many runs end inconsistent,
    and how many unfinished."""
    ends = outcomes(protocol, (cut(protocol, t, False) for t in MOMENTS))
    return ends.count("inconsistent"), sum(e in ("blocked", "stuck") for e in ends)


def _partition_note(protocol: str) -> str:
    split, waits = under_cuts(protocol)
    other = next(p for p in NEVER_BLOCKED if p != protocol)
    o_split, o_waits = under_cuts(other)
    return (f"Under the partitions of section 5 (never healed) {LABELS[protocol]} splits in "
            f"{split} of the {len(MOMENTS)} cut moments and waits in {waits}; "
            f"{LABELS[other]} passes this test too, and splits in {o_split} (waits in "
            f"{o_waits}). Only Paxos Commit never guesses: it decides by a majority of "
            "acceptors or waits.")


@register("choose-never-blocks")
def _never_blocks() -> Exercise:
    def check(answer: Any) -> Feedback:
        chosen = _chosen_protocols(answer)
        verdicts = [check_one(p) for p in chosen]
        failed = [v for v in verdicts if not v.ok]
        if failed or len(verdicts) == 1:
            return (failed or verdicts)[0]
        return Feedback(True, "each of " + " and ".join(LABELS[p] for p in chosen)
                              + " passes. " + " ".join(v.message for v in verdicts))

    def check_one(protocol: str) -> Feedback:
        label = LABELS[protocol]
        unfinished, tried, first = _first(coordinator_crashes(protocol), protocol, _unfinished)
        broken, crashes, split = _first(single_crashes(protocol), protocol,
                                        lambda r: r.outcome == "inconsistent")
        notes = []
        if first is not None:
            notes.append(f"{label} is left unfinished by {unfinished} of the {tried} moments "
                         f"at which its {DRIVER[protocol]} can crash for good: "
                         f"'{_faults_text(first)}' ends {first.outcome}.")
        if split is not None:
            notes.append(f"And {broken} of {crashes} single-crash plans break atomicity: "
                         f"'{_faults_text(split)}' ends inconsistent.")
        if notes:
            return Feedback(False, " ".join(notes))
        return Feedback(True, f"{label}: none of the {tried} moments at which the coordinator "
                              f"can crash for good leaves it unfinished, and none of {crashes} "
                              "single-crash plans, of any node, with or without a restart, "
                              "breaks atomicity. " + _partition_note(protocol))

    return Exercise(
        name="choose-never-blocks",
        prompt="Which protocol, among '2pc', '3pc', 'paxos-commit', 'saga' and "
               "'saga-choreography', is never left unfinished (blocked, or a saga stuck) by a "
               "crash of its coordinator, orchestrator or broker that never comes back, and "
               "never loses atomicity (ends inconsistent) when the only failures are crashes? "
               "Answer with its name; if more than one qualifies, any of them (or a list of "
               "them).",
        checker=check,
        hints=(
            "Look at the lesson's single-point-of-failure table (section 3.3): whose "
            "transaction finishes with its coordinator gone for good?",
            "A saga's services hold no locks, but does the saga finish without its "
            "orchestrator, or its broker?",
            "Two protocols let other nodes finish without the coordinator: one by a "
            "termination protocol among the participants, one by a majority of acceptors.",
        ),
        answer="'3pc' or 'paxos-commit'. 3PC's participants time out, elect a new "
               "coordinator among themselves and decide; with crashes only the timeouts "
               "tell the truth, so it never splits. Paxos Commit's acceptors hold every vote, "
               "and one of them takes over with a higher ballot. The difference shows under "
               "a partition: 3PC decides on a guess and can split, Paxos Commit waits. 2PC "
               "blocks; a saga without its orchestrator or broker is stuck.",
        example="paxos-commit",
        wrong=(("2pc", "blocked"), ("saga", "stuck"), ("saga-choreography", "stuck"),
               (["3pc", "2pc"], "2PC is left unfinished")),
    )


# --- exercise: inconsistent saga, blocked 2PC -----------------------------------------------
_WHY_SAGA = {
    "completed": "it completed",
    "compensated": "it compensated every step it knew had applied, and that was all of them",
    "stuck": "it stopped, unfinished, with nothing wrong in the stores yet",
}


# What the recommended saga (compensations registered before the call) did about
# payment's charge, by its outcome.
_REFUND = {
    "stuck": "still trying to refund payment while the cut lasts, never inconsistent",
    "compensated": "payment refunded once the network healed, never inconsistent",
}


def _in_doubt(run: Run) -> int:
    return max(run.metrics.blocked_time.values(), default=0)


def fault_span(run: Run) -> tuple[str, int, int | None]:
    """What the run's first fault did ('cut' or 'outage'), when it struck, and when it
    was repaired (a heal or a restart; None if never)."""
    struck = next(e for e in run.trace if e.kind in ("partition", "crash"))
    repaired = next((e.time for e in run.trace if e.kind in ("heal", "recover")), None)
    return ("cut" if struck.kind == "partition" else "outage"), struck.time, repaired


def in_doubt_spans(run: Run) -> dict[str, tuple[int, int | None]]:
    """Per participant that voted YES: when it voted and when it learned the outcome
    (None if it never did), the span the metrics' ``blocked_time`` counts."""
    voted: dict[str, int] = {}
    learned: dict[str, int] = {}
    for e in run.trace:
        if e.node in run.participants:
            if e.kind == "vote" and e.detail == "yes":
                voted.setdefault(e.node, e.time)
            elif e.kind == "decision":
                learned.setdefault(e.node, e.time)
    return {p: (since, learned.get(p)) for p, since in voted.items()}


def only_blocks(run: Run) -> str | None:
    """How a 2PC run only blocked, in words, or None if it did not: nothing ended
    inconsistent, and a participant waited in doubt, holding its locks, for as long as
    the fault lasted (still in doubt when the run ends, if it was never repaired)."""
    if run.outcome == "inconsistent" or not any(
            e.kind in ("partition", "crash") for e in run.trace):
        return None
    what, struck, repaired = fault_span(run)
    spans = in_doubt_spans(run)
    waiting = [n for n, (since, until) in spans.items() if until is None and since <= struck]
    if waiting:
        who = waiting[0]
        return (f"{who} waits in doubt, holding its locks, from its vote at {spans[who][0]} "
                f"ms, and is still in doubt when the run ends at {run.end_time} ms: 2PC ends "
                f"{run.outcome}")
    through = [n for n, (since, until) in spans.items()
               if repaired is not None and until is not None and since <= struck <= repaired
               <= until]
    if not through:
        return None
    who = through[0]
    since, until = spans[who]
    return (f"{who} waits in doubt, holding its locks, from its vote at {since} ms to "
            f"{until} ms, through the whole {what} ({struck} to {repaired} ms); only then "
            f"does it learn the outcome, and 2PC ends {run.outcome}")


@register("saga-inconsistent-2pc-blocks")
def _saga_inconsistent() -> Exercise:
    def check(answer: Any) -> Feedback:
        if isinstance(answer, str) and " ".join(answer.lower().split()) in PLANS:
            answer = " ".join(answer.lower().split())  # 'Payment  cut off ' as typed
        if not isinstance(answer, str) or answer not in PLANS:
            raise bad_choice("fault plan", answer, PLANS)
        two, bug = run_plan(answer, "2pc"), run_plan(answer, BUG)
        waited = _in_doubt(two)
        blocked = only_blocks(two)
        if bug.outcome == "inconsistent" and blocked is not None:
            good = run_plan(answer, "saga")
            return Feedback(True, f"under '{answer}' the saga with the bug ends inconsistent "
                                  f"({bug.violations[0]}), while 2PC only blocks: {blocked}. "
                                  "Payment committed its part and nobody heard; the "
                                  "orchestrator gave up and compensated only the steps it knew "
                                  "had applied. Registered before the call, the compensation "
                                  f"runs anyway: that saga ends {good.outcome}, "
                                  f"{_REFUND.get(good.outcome, 'never inconsistent')}.")
        parts = [f"under '{answer}' 2PC ends {two.outcome}"
                 + (f" (a participant in doubt for {waited} ms)" if waited else "")]
        if bug.outcome == "inconsistent":
            parts.append("and the saga inconsistent: but 2PC did more than block")
        else:
            parts.append(f"and the saga with the bug {bug.outcome}: "
                         f"{_WHY_SAGA.get(bug.outcome, bug.outcome)}")
        return Feedback(False, " ".join(parts) + ".")

    return Exercise(
        name="saga-inconsistent-2pc-blocks",
        prompt="Which of the lesson's fault plans (a key of PLANS) makes the orchestrated saga "
               "with the bug (register_compensation='after', the row 'saga-after') end "
               "inconsistent, while 2PC, under the same plan, only blocks: a participant "
               "waits in doubt, holding its locks, for as long as the fault lasts, and "
               "nothing is inconsistent (once the fault is repaired, 2PC may still finish)? "
               "Answer with the plan's name.",
        checker=check,
        hints=(
            "A saga ends inconsistent when it compensates without knowing everything that "
            "applied.",
            "Which plan lets a participant apply its part while nobody hears about it?",
            "A remote call has three outcomes: ok, failed, unknown.",
        ),
        answer="'payment cut off' (or the same plan healed at 300): payment forces its part "
               "and is cut off before its answer leaves. The buggy orchestrator's call times "
               "out, it gives up and compensates the order and the reservation, and the "
               "customer stays charged for a cancelled order. 2PC's payment, PREPARED, waits "
               "in doubt with its locks for as long as the cut lasts: for good without the "
               "heal (2PC ends blocked); with it, until the heal, and then it learns the "
               "coordinator's abort (2PC ends aborted). Never inconsistent. The recommended "
               "saga registers payment's refund before the "
               "call, so it keeps trying to refund: stuck while the cut lasts, compensated "
               "after the heal.",
        example="payment cut off",
        wrong=(("partition", "compensated every step it knew"),
               ("payment fails", "2pc ends aborted"),
               ("coordinator crash", "stuck")),
    )
