"""Lesson 10 (choosing a protocol, ``notebooks/10_choosing_a_protocol.ipynb``): one piece
of work, four protocols, the same faults.

2PC and 3PC run with four participants named after the order saga's services, so that
one fault plan names the same nodes in every protocol; the sagas run the order saga
(by orchestration and by choreography) over those four services. The lesson and the
checkers below share the plans defined here, and every verdict comes from runs. The
lesson's own helpers: :func:`table` (an HTML table), :func:`known_at`, :func:`delays`
and :func:`longest`.

- ``3pc-message-count``: a function of n that predicts how many messages 3PC's happy
  path sends with n participants (txlib's convention); checked against runs for
  n = 1..8;
- ``choose-never-blocks``: the protocol that is never left unfinished by a single crash
  of its coordinator (which never comes back) and never loses atomicity when the only
  failures are crashes. The checker crashes the coordinator at every step, and every
  node at every step and right after every log record, with and without recovery;
- ``saga-inconsistent-2pc-blocks``: the lesson's fault plan under which the
  orchestrated saga ends inconsistent while 2PC only blocks.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from html import escape
from typing import Any

from IPython.display import HTML

from ..engine.faults import Fault, crash, fail_step, heal, partition, recover, vote_no
from ..errors import TxlibError, bad_choice
from ..simulation.run import Run
from ..simulation.scenario import Scenario, participant_names
from . import Exercise, Feedback, register
from .checking import formula, whole_number, wrong_predictions

SERVICES = ("orders", "inventory", "payment", "shipping")
PROTOCOLS = ("2pc", "3pc", "saga", "saga-choreography")
LABELS = {"2pc": "2PC", "3pc": "3PC", "saga": "Saga (orchestration)",
          "saga-choreography": "Saga (choreography)"}
# The node that drives each protocol: the one whose crash the plans inject.
DRIVER = {"2pc": "coordinator", "3pc": "coordinator", "saga": "orchestrator",
          "saga-choreography": "broker"}
# The forced record with which a participant makes its part durable.
WORK_RECORD = {"2pc": "PREPARED", "3pc": "READY", "saga": "LOCAL_TX",
               "saga-choreography": "LOCAL_TX"}
HORIZON = 1000  # every run of the lesson stops at 1000 ms of simulated time
CRASH_AT, RECOVER_AT, CUT_AT, HEAL_AT = 20, 300, 20, 300

PLANS: dict[str, str] = {
    "no fault": "the happy path",
    "coordinator crash": f"the coordinator (orchestrator, broker) crashes at {CRASH_AT} ms "
                         "and never comes back",
    "coordinator crash, back at 300": f"the same crash; it restarts at {RECOVER_AT} ms",
    "payment fails": "payment cannot do its part: it votes NO (2PC, 3PC), its step fails "
                     "(sagas)",
    "partition": f"from {CUT_AT} ms the network cuts {{coordinator, orders, inventory}} off "
                 "from {payment, shipping}, for good",
    "partition, healed at 300": f"the same cut, healed at {HEAL_AT} ms",
    "payment cut off": "the network cuts payment off from everyone right after it forces "
                       "its part to its log (PREPARED, READY, LOCAL_TX), for good",
    "payment cut off, healed at 300": f"the same cut, healed at {HEAL_AT} ms",
}


def _protocol(protocol: Any) -> str:
    if not isinstance(protocol, str) or protocol not in PROTOCOLS:
        raise bad_choice("protocol", protocol, PROTOCOLS)
    return protocol


def plan(name: str, protocol: str) -> tuple[Fault, ...]:
    """The faults of plan ``name`` (a key of :data:`PLANS`) for ``protocol``."""
    if not isinstance(name, str) or name not in PLANS:
        raise bad_choice("fault plan", name, PLANS)
    protocol = _protocol(protocol)
    driver = DRIVER[protocol]
    healed = (heal(at_time=HEAL_AT),) if name.endswith("healed at 300") else ()
    if name == "no fault":
        return ()
    if name.startswith("coordinator crash"):
        back = (recover(driver, at_time=RECOVER_AT),) if name.endswith("back at 300") else ()
        return (crash(driver, at_time=CRASH_AT), *back)
    if name == "payment fails":
        commit = protocol in ("2pc", "3pc")
        return (vote_no("payment") if commit else fail_step("process_payment"),)
    if name.startswith("partition"):
        return (partition([driver, "orders", "inventory"], ["payment", "shipping"],
                          at_time=CUT_AT), *healed)
    return (partition(["payment"], when=f"payment logs {WORK_RECORD[protocol]}"), *healed)


def scenario(protocol: str, faults: tuple[Fault, ...] | list[Fault] = (),
             **options: Any) -> Scenario:
    """``protocol`` on the lesson's work: 2PC and 3PC with the four services as
    participants, the sagas with the order saga; runs stop at :data:`HORIZON`."""
    protocol = _protocol(protocol)
    participants = SERVICES if protocol in ("2pc", "3pc") else ()
    return Scenario(protocol, participants, faults=tuple(faults),
                    options={"horizon": HORIZON, **options})


def simulate(protocol: str, faults: tuple[Fault, ...] | list[Fault] = (),
             **options: Any) -> Run:
    """Run :func:`scenario`."""
    return scenario(protocol, faults, **options).run()


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


def _unfinished(run: Run) -> bool:
    return run.outcome in ("blocked", "stuck")


# --- showing runs --------------------------------------------------------------------------
CELL = "border:1px solid #999;padding:3px 6px;text-align:left;vertical-align:top"
COMMIT_PROTOCOLS = ("2pc", "3pc")


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
        return Feedback(False, f"for n = {n} you predict {guess}, the run sent "
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
    )


# --- exercise: the protocol that never blocks on a coordinator crash ----------------------
_ALIASES = {"orchestration": "saga", "saga (orchestration)": "saga",
            "choreography": "saga-choreography", "saga (choreography)": "saga-choreography"}


def _chosen_protocol(answer: Any) -> str:
    if not isinstance(answer, str):
        raise TxlibError(f"answer with a protocol's name: one of {', '.join(PROTOCOLS)}")
    name = answer.strip().lower()
    return _protocol(_ALIASES.get(name, name))


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


@register("choose-never-blocks")
def _never_blocks() -> Exercise:
    def check(answer: Any) -> Feedback:
        protocol = _chosen_protocol(answer)
        label = LABELS[protocol]
        unfinished, tried, first = _first(coordinator_crashes(protocol), protocol, _unfinished)
        broken, crashes, split = _first(single_crashes(protocol), protocol,
                                        lambda r: r.outcome == "inconsistent")
        notes = []
        if first is not None:
            notes.append(f"{label} is left unfinished by {unfinished} of the {tried} moments "
                         f"at which its {DRIVER[protocol]} can crash for good; e.g. "
                         f"'{_faults_text(first)}' ends {first.outcome}.")
        if split is not None:
            notes.append(f"And {broken} of {crashes} single-crash plans break atomicity: "
                         f"'{_faults_text(split)}' ends inconsistent ({split.violations[0]}).")
        if notes:
            return Feedback(False, " ".join(notes))
        return Feedback(True, f"{label}: none of the {tried} moments at which the coordinator "
                              f"can crash for good leaves it blocked (the participants run the "
                              f"termination protocol), and none of {crashes} single-crash "
                              "plans, of any node, with or without a restart, breaks "
                              "atomicity. Only when a timeout lies (a slow link, a "
                              "partition) does 3PC split, as lessons 04 and 05 showed.")

    return Exercise(
        name="choose-never-blocks",
        prompt="Which protocol, among '2pc', '3pc', 'saga' and 'saga-choreography', is never "
               "left unfinished (blocked, or a saga stuck) by a crash of its coordinator, "
               "orchestrator or broker that never comes back, and never loses atomicity "
               "(ends inconsistent) when the only failures are crashes? Answer with its name.",
        checker=check,
        hints=(
            "Look at the lesson's single-point-of-failure table (section 3.3): whose "
            "transaction finishes with its coordinator gone for good?",
            "A saga's services hold no locks, but does the saga finish without its "
            "orchestrator, or its broker?",
            "Only one protocol lets the participants decide among themselves.",
        ),
        answer="'3pc': its participants time out, elect a new coordinator among themselves "
               "and decide (commit if one of them is pre-committed, else abort), so a dead "
               "coordinator never blocks them; with crashes only, the timeouts tell the "
               "truth and it never splits. 2PC blocks; a saga without its orchestrator or "
               "broker is stuck, and a service crash right after its local commit leaves the "
               "orchestrated saga inconsistent.",
        example="3pc",
    )


# --- exercise: inconsistent saga, blocked 2PC -----------------------------------------------
_WHY_SAGA = {
    "completed": "it completed",
    "compensated": "it compensated every step it knew had applied, and that was all of them",
    "stuck": "it stopped, unfinished, with nothing wrong in the stores yet",
}


def _in_doubt(run: Run) -> int:
    return max(run.metrics.blocked_time.values(), default=0)


@register("saga-inconsistent-2pc-blocks")
def _saga_inconsistent() -> Exercise:
    def check(answer: Any) -> Feedback:
        if not isinstance(answer, str) or answer not in PLANS:
            raise bad_choice("fault plan", answer, PLANS)
        two, saga = run_plan(answer, "2pc"), run_plan(answer, "saga")
        waited = _in_doubt(two)
        blocks = two.outcome == "blocked" or waited >= RECOVER_AT - CUT_AT
        if saga.outcome == "inconsistent" and blocks and two.outcome != "inconsistent":
            rest = (f" until the run stops at {HORIZON} ms" if two.outcome == "blocked"
                    else f" until the heal, and then 2PC ends {two.outcome}")
            return Feedback(True, f"under '{answer}' the saga ends inconsistent "
                                  f"({saga.violations[0]}), while 2PC only blocks: a "
                                  f"participant waits in doubt, holding its locks, for {waited} "
                                  f"ms{rest}. Payment committed its part, and nobody heard. "
                                  "The saga's orchestrator read the silence as a failure, gave "
                                  "up, and compensated only the steps it knew had applied; a "
                                  "2PC participant that voted YES never decides alone.")
        parts = [f"under '{answer}' 2PC ends {two.outcome}"
                 + (f" (a participant in doubt for {waited} ms)" if waited else "")]
        if saga.outcome == "inconsistent":
            parts.append("and the saga inconsistent: but 2PC did more than block")
        else:
            parts.append(f"and the saga {saga.outcome}: "
                         f"{_WHY_SAGA.get(saga.outcome, saga.outcome)}")
        return Feedback(False, " ".join(parts) + ".")

    return Exercise(
        name="saga-inconsistent-2pc-blocks",
        prompt="Which of the lesson's fault plans (a key of PLANS) makes the orchestrated saga "
               "end inconsistent, while 2PC, under the same plan, only blocks (a participant "
               "waits in doubt; nothing is inconsistent)? Answer with the plan's name.",
        checker=check,
        hints=(
            "A saga ends inconsistent when it compensates without knowing everything that "
            "applied.",
            "Which plan lets a participant apply its part while nobody hears about it?",
            "A remote call has three outcomes: ok, failed, unknown.",
        ),
        answer="'payment cut off' (or the same plan healed at 300): payment forces its part "
               "and is cut off before its answer leaves. The orchestrator's call times out "
               "three times, it gives up and compensates the order and the reservation, but "
               "the customer stays charged for a cancelled order. 2PC's coordinator misses "
               "payment's YES and aborts, and payment, PREPARED, waits in doubt with its "
               "locks until the network heals: blocked, never inconsistent.",
        example="payment cut off",
    )
