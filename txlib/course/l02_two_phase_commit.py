"""Lesson 02 (two-phase commit, ``notebooks/02_two_phase_commit.ipynb``): exercises, the
lesson's table helper, and a deliberately broken 2PC to experiment with.

:func:`broken_run` runs 2PC with one or more of its rules switched off, on the same
engine, so a lesson (or a checker) can show what a rule is for: the counterexample is a
real run, not a story. The exercises:

- ``2pc-abort-cost``: predict the messages and forced log writes of an aborted 2PC
  transaction with N participants, as a function of N;
- ``2pc-log-before-send``: say which log record must be forced before each message is
  sent; every wrong choice is answered with a run that shows why.

:func:`with_execution` runs 2PC behind an execution phase, so that participants lock at
their first write, as real ones do, and :func:`lock_spans` measures what the lock covers.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from ..engine.faults import crash, recover, vote_no
from ..engine.node import Context
from ..engine.records import Message
from ..errors import TxlibError, choices, suggestion
from ..protocols import two_phase as two
from ..protocols.base import COORDINATOR
from ..protocols.variants import lazy_2pc
from ..simulation.run import Run
from ..simulation.scenario import Scenario, simulate
from . import Exercise, Feedback, register
from .checking import dict_of, function, plural, whole_number, wrong_predictions
from .show import show_table

table = show_table


def broken_run(scenario: Scenario, *, lazy: Iterable[str] = (),
               impatient: Iterable[str] = ()) -> Run:
    """Run a 2PC ``scenario`` with some of 2PC's rules switched off, on the same engine.

    ``lazy``: log records written lazily although 2PC forces them (``"PREPARED"`` at the
    participants, ``"COMMIT"`` at the coordinator, ``"COMMITTED"`` at the participants);
    a crash then loses them. ``impatient``: participants that abort on their own when
    they have voted YES and their decision timer fires, instead of waiting.

    The run's ``scenario`` is the *correct* protocol's scenario: replaying it (or opening
    it in the lab) runs real 2PC, not this broken variant. Diagrams, the console view,
    ``run.violations`` and ``run.metrics`` all work on the returned run.
    """
    if not isinstance(scenario, Scenario) or scenario.protocol != "2pc":
        raise TxlibError(f"broken_run needs a 2PC Scenario, got {scenario!r}")
    lazy_set = frozenset(_names(lazy, "lazy"))
    impatient_set = frozenset(_names(impatient, "impatient"))
    for p in sorted(impatient_set):
        if p not in scenario.participants:
            raise TxlibError(f"impatient: {p!r} is not a participant; "
                             f"valid choices: {choices(scenario.participants)}")
    return scenario.run(variant=lazy_2pc(lazy_set, impatient_set))


class _ExecutingCoordinator(two.Coordinator):
    """Stands in for the application too: it first sends each participant its write
    (``EXECUTE``), and starts 2PC once every participant has done it (``DONE``)."""

    def on_start(self, ctx: Context) -> None:
        ctx.vars["done"] = set()
        for p in self.participants:
            kind, amount = self.operations[p]
            ctx.send(p, "EXECUTE", tx=self.config.tx, op=kind, amount=amount)

    def on_DONE(self, ctx: Context, msg: Message) -> None:
        done = ctx.vars.setdefault("done", set())
        done.add(msg.src)
        if ctx.state == "INIT" and len(done) == len(self.participants):
            super().on_start(ctx)  # now 2PC: PREPARE to all


class _ExecutingParticipant(two.Participant):
    """Locks its account at its first write, during execution, as a database does."""

    def on_EXECUTE(self, ctx: Context, msg: Message) -> None:
        if ctx.state == "INIT":
            ctx.lock("balance")
            ctx.send(msg.src, "DONE", tx=self.config.tx)


class _Executing2PC(two.TwoPhaseCommit):
    coordinator_class = _ExecutingCoordinator
    participant_class = _ExecutingParticipant


def with_execution(scenario: Scenario) -> Run:
    """Run a 2PC ``scenario`` behind an execution phase: each participant gets its write
    (``EXECUTE``), locks its account and answers ``DONE``; 2PC starts when all are done.
    txlib's plain 2PC locks at ``PREPARE`` instead. (Replaying the run's scenario runs
    plain 2PC, as with :func:`broken_run`.)"""
    if not isinstance(scenario, Scenario) or scenario.protocol != "2pc":
        raise TxlibError(f"with_execution needs a 2PC Scenario, got {scenario!r}")
    return scenario.run(variant=_Executing2PC())


def lock_spans(run: Run) -> list[tuple[str, int, int, int, str]]:
    """Per participant that locked: (name, locked at, unlocked at (the run's end if it
    never did), ms, the forced writes on its path meanwhile: its own and the
    coordinator's)."""
    rows = []
    for p in run.participants:
        locked = next((e.time for e in run.trace if e.kind == "lock" and e.node == p), None)
        if locked is None:
            continue
        freed = next((e.time for e in run.trace if e.kind == "unlock" and e.node == p),
                     run.end_time)
        forced = [f"{e.detail.split()[0]} ({e.node})" for e in run.trace
                  if e.kind == "log" and e.detail.endswith("(forced)")
                  and e.node in (p, COORDINATOR) and locked <= e.time <= freed]
        rows.append((p, locked, freed, freed - locked, ", ".join(forced)))
    return rows


def _names(value: Iterable[str], what: str) -> list[str]:
    if isinstance(value, str):
        return [value]
    try:
        names = list(value)
    except TypeError:
        raise TxlibError(f"{what} must be a list of names, got {value!r}") from None
    if not all(isinstance(n, str) for n in names):
        raise TxlibError(f"{what} must be a list of names, got {value!r}")
    return names


# --- shared helpers for the checkers ------------------------------------------------------

def _breakdown(counts: Mapping[str, int]) -> str:
    return ", ".join(f"{t} {n}" for t, n in sorted(counts.items())) or "none"


def _forced_records(run: Run) -> str:
    """Which forced records the run wrote, e.g. 'PREPARED ×2 (p1, p2)'."""
    where: dict[str, list[str]] = {}
    for node, records in run.logs.items():
        for r in records:
            if r.forced:
                where.setdefault(r.record, []).append(node)
    if not where:
        return "nothing forced"
    return "; ".join(f"{rec} ×{len(nodes)} ({', '.join(nodes)})" for rec, nodes in where.items())


def _pair(value: Any, n: int) -> tuple[int, int]:
    if isinstance(value, Mapping):
        value = (value.get("messages"), value.get("forced_writes"))
    if not isinstance(value, (tuple, list)) or len(value) != 2:
        raise TxlibError(f"for n={n} your function returned {value!r}; return a pair of whole "
                         "numbers (messages, forced_writes)")
    return (whole_number(value[0], f"for n={n}, the number of messages"),
            whole_number(value[1], f"for n={n}, the number of forced writes"))


def _cost(run: Run) -> tuple[int, int]:
    return run.metrics.messages, run.metrics.forced_writes


# --- exercise: the cost of an abort ----------------------------------------------------

ABORT_COST_SIZES = tuple(range(1, 9))


def abort_cost_run(n: int) -> Run:
    """The run the ``2pc-abort-cost`` checker measures: n participants, the last votes NO."""
    return simulate("2pc", participants=n, faults=[vote_no(f"p{n}")])


@register("2pc-abort-cost")
def _abort_cost() -> Exercise:
    def check(answer: Any) -> Feedback:
        fn = function(answer, "of n that returns the pair (messages, forced_writes), e.g. "
                              "lambda n: (n, n)")
        wrong = next(wrong_predictions(fn, ABORT_COST_SIZES, abort_cost_run, _cost, _pair), None)
        if wrong is not None:
            n, predicted, run = wrong
            measured = _cost(run)
            over = any(p > m for p, m in zip(predicted, measured, strict=True))
            under = any(p < m for p, m in zip(predicted, measured, strict=True))
            if over and not under:
                ask = "Which messages and which forced records does presumed abort leave out?"
            elif under and not over:
                ask = ("The run did more than you predicted: which participants had voted YES "
                       "before the NO arrived, what did each of them force, and who must be "
                       "told ABORT?")
            else:
                ask = ("One count is too high and one too low: count again, message type by "
                       "message type and forced record by forced record, as the run did.")
            return Feedback(False, (
                f"for N={n} you predicted {plural(predicted[0], 'message')} and "
                f"{plural(predicted[1], 'forced write')}; the run sent "
                f"{run.metrics.messages} ({_breakdown(run.metrics.messages_by_type)}) and "
                f"forced {run.metrics.forced_writes} ({_forced_records(run)}). {ask}"))
        return Feedback(True, (
            f"your formula matches every run for N = {ABORT_COST_SIZES[0]} to "
            f"{ABORT_COST_SIZES[-1]}: N PREPARE, N-1 YES, 1 NO and N-1 ABORT (the NO voter "
            "already knows), so 3N-1 messages and no ACK; the N-1 YES voters force PREPARED, "
            "and nobody forces anything else: the coordinator writes ABORT lazily."))

    return Exercise(
        name="2pc-abort-cost",
        prompt="With N participants of which the last votes NO, how many messages does 2PC "
               "send and how many forced log writes does it make? Answer with a function "
               "of n returning (messages, forced_writes); it is checked against runs for "
               "N = 1 to 8.",
        checker=check,
        hints=(
            "Count per participant: who receives PREPARE, who answers YES or NO, who must "
            "be told ABORT.",
            "Presumed abort: a missing decision record means abort, so nobody forces ABORT "
            "and nobody acknowledges it.",
            "Only a participant that votes YES forces a record (PREPARED) in an abort.",
        ),
        answer="lambda n: (3 * n - 1, n - 1). Messages: N PREPARE, N-1 YES, 1 NO, and ABORT "
               "to the N-1 YES voters (the NO voter aborted when it voted), no ACK. Forced "
               "writes: the N-1 YES voters force PREPARED; the coordinator's ABORT and the "
               "participants' ABORT records are lazy, because under presumed abort losing "
               "them changes nothing.",
        example=lambda n: (3 * n - 1, n - 1),
        wrong=(
            (lambda n: (4 * n, 2 * n + 1), "presumed abort leave out"),
            (lambda n: (3 * n, n - 1), "the run sent 2"),
            (lambda n: (3 * n - 1, n), "forced 0"),
            (lambda n: (2 * n, n - 1), "the run did more than you predicted"),
            (lambda n: (3 * n - 1, 0), "what did each of them force"),
        ),
    )


# --- exercise: log before you send ------------------------------------------------------

LOG_RULE_MESSAGES = ("YES", "NO", "COMMIT", "ABORT")
LOG_RULE_RECORDS = ("PREPARED", "COMMIT", "COMMITTED", "ABORT", "END")
LOG_RULES = {"YES": "PREPARED", "NO": None, "COMMIT": "COMMIT", "ABORT": None}
SENDER = {"YES": "a participant", "NO": "a participant", "COMMIT": "the coordinator",
          "ABORT": "the coordinator"}


def lazy_prepared_run() -> Run:
    """p2 votes YES without forcing PREPARED, crashes, and restarts at time 200."""
    return broken_run(Scenario("2pc", faults=(crash("p2", when="p2 sends YES"),
                                              recover("p2", at_time=200)),
                               options={"horizon": 400}), lazy=["PREPARED"])


def lazy_commit_run() -> Run:
    """The coordinator sends COMMIT without forcing it first, crashes after telling p1,
    and restarts at time 300."""
    return broken_run(Scenario("2pc", faults=(crash("coordinator",
                                                    when="coordinator sends COMMIT to p1"),
                                              recover("coordinator", at_time=300)),
                               options={"horizon": 500}), lazy=["COMMIT"])


def lost_no_run() -> Run:
    """p2 votes NO (its ABORT record is lazy), crashes right after, restarts at time 100."""
    return Scenario("2pc", faults=(vote_no("p2"), crash("p2", when="p2 sends NO"),
                                   recover("p2", at_time=100))).run()


def lost_abort_run() -> Run:
    """p2 votes NO; the coordinator writes ABORT lazily, tells p1, crashes (losing the
    record) and restarts at time 200."""
    return Scenario("2pc", faults=(vote_no("p2"),
                                   crash("coordinator", when="coordinator sends ABORT to p1"),
                                   recover("coordinator", at_time=200))).run()


def _why_needed(message: str) -> str:
    """Two sentences and the counterexample: why ``message`` needs its record forced."""
    run = lazy_prepared_run() if message == "YES" else lazy_commit_run()
    first = run.violations[0] if run.violations else "no violation"
    if message == "YES":
        story = ("With PREPARED lazy, p2 voted YES, crashed, restarted with an empty log and "
                 "aborted, while the coordinator counted its YES and committed")
    else:
        story = ("With COMMIT lazy, the coordinator told p1 to commit, crashed, restarted with "
                 "no decision and presumed abort")
    return (f"{message} needs {LOG_RULES[message]} forced first. {story}: the run ends "
            f"{run.outcome} ({first}).")


def _why_not_needed(message: str) -> str:
    """Two sentences and the counterexample: why forcing before ``message`` buys nothing."""
    if message == "NO":
        run = lost_no_run()
        story = ("Here p2 voted NO, crashed and lost its lazy ABORT record; on restart it "
                 "aborted again")
    else:
        run = lost_abort_run()
        story = ("Here the coordinator sent ABORT, crashed and lost its lazy ABORT record; on "
                 "restart it presumed abort, the same answer")
    return (f"{message} needs nothing forced: under presumed abort a missing record means "
            f"abort. {story}, and the run still ends {run.outcome} with "
            f"{len(run.violations)} violations.")


@register("2pc-log-before-send")
def _log_before_send() -> Exercise:
    def check(answer: Any) -> Feedback:
        given = dict_of(answer, LOG_RULE_MESSAGES, "message type",
                        "the record that must be forced before it is sent (or None)")
        # a record as a learner may type it: 'prepared ' is PREPARED
        answer = {m: v.strip().upper() if isinstance(v, str) else v for m, v in given.items()}
        for m in LOG_RULE_MESSAGES:
            value = answer[m]
            if value is not None and value not in LOG_RULE_RECORDS:
                raise TxlibError(f"for {m}, {given[m]!r} is not a 2PC log record"
                                 f"{suggestion(value, LOG_RULE_RECORDS)}; use None or one of "
                                 f"{list(LOG_RULE_RECORDS)}")
        problems = []
        for m in LOG_RULE_MESSAGES:
            given, needed = answer[m], LOG_RULES[m]
            if given == needed:
                continue
            if needed is None:
                problems.append(_why_not_needed(m))
            elif given is None:
                problems.append(_why_needed(m))
            else:
                problems.append(f"{m} is sent by {SENDER[m]}, which has no {given} record at "
                                "that moment. Which record turns that message into a "
                                "promise the sender can keep after a crash?")
        if problems:
            wrong = [m for m in LOG_RULE_MESSAGES if answer[m] != LOG_RULES[m]]
            right = len(LOG_RULE_MESSAGES) - len(wrong)
            rest = f" Look again at {', '.join(wrong[1:])} too." if len(wrong) > 1 else ""
            return Feedback(False, f"{right} of {len(LOG_RULE_MESSAGES)} right. "
                            f"{problems[0]}{rest}")
        return Feedback(True, "a YES vote is a promise to commit if told to, so PREPARED "
                              "must be stable before it leaves; COMMIT is a decision others "
                              "act on, so the coordinator forces it before telling anyone. "
                              "NO and ABORT need nothing forced: under presumed abort, "
                              "no record means abort.")

    return Exercise(
        name="2pc-log-before-send",
        prompt="For each message YES, NO, COMMIT and ABORT: which log record must its sender "
               "have forced to stable storage before sending it? Answer with a dict such as "
               "{'YES': 'PREPARED', 'NO': None, ...} (None: nothing needs forcing).",
        checker=check,
        hints=(
            "Ask of each message: if the sender crashed right after sending it and lost "
            "every lazy record, could it break a promise the message made?",
            "A participant that restarts and finds nothing in its log aborts; a coordinator "
            "that restarts and finds no decision presumes abort.",
            "Two messages are promises that a crash must not take back: the YES vote and "
            "the COMMIT decision.",
        ),
        answer="{'YES': 'PREPARED', 'NO': None, 'COMMIT': 'COMMIT', 'ABORT': None}. A YES "
               "is a promise to commit if told to, kept across a crash only if PREPARED is "
               "stable first; COMMIT must be forced by the coordinator before any participant "
               "hears it, or a crash could make it presume abort after someone committed. "
               "NO and ABORT need nothing: under presumed abort an empty log means abort. "
               "(In R*, a participant also forces COMMITTED before its ACK, because the ACK "
               "lets the coordinator forget the transaction; txlib's coordinator never "
               "forgets, so it cannot show that case.)",
        example={"YES": "PREPARED", "NO": None, "COMMIT": "COMMIT", "ABORT": None},
        wrong=(
            ({"YES": "PREPARED", "NO": "ABORT", "COMMIT": None, "ABORT": "ABORT"},
             "NO needs nothing forced"),
            ({"YES": None, "NO": None, "COMMIT": "COMMIT", "ABORT": None},
             "YES needs PREPARED forced first"),
            ({"YES": "PREPARED", "NO": None, "COMMIT": None, "ABORT": None},
             "ends inconsistent"),
            ({"YES": "PREPARED", "NO": None, "COMMIT": "COMMITTED", "ABORT": None},
             "has no COMMITTED record"),
        ),
    )
