"""Lesson 09 (designing sagas, ``notebooks/09_designing_sagas.ipynb``): the lesson's
helpers, and exercises checked by running sagas and TCC on the engine.

The helpers show runs in the notebook: :func:`notes` (a node's effects),
:func:`inventory_log` (the inventory's local transactions), :func:`stock_runs` and
:func:`tcc_runs` (one row per run), and :func:`checklist` (the design rules, each with a
run that breaks it and one that keeps it).

The exercises:

- ``design-survive-a-duplicate``: write the compensation of the stock-move saga's
  ``move_stock`` step. The checker runs it with a service that does not deduplicate
  commands, under a duplicated compensation, two concurrent sales, and a compensation
  registered before a call that never arrived, and checks the stores against the saga's
  domain rules;
- ``design-pick-the-countermeasure``: for three interleavings of two stock-move sagas,
  which countermeasures (alone) make the run consistent. Every entry is answered with
  the run that shows it;
- ``design-barrier-against-hanging``: which of the TCC barrier's rules it takes to
  prevent the hanging of ``tcc-hanging``. The checker reads, from the run with the
  barrier, which rule acted at which step, and from the run without it, what went wrong.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

from ..engine.faults import drop, duplicate
from ..engine.records import LogRecord
from ..errors import TxlibError
from ..presets import scenario
from ..properties.saga import final_stores
from ..protocols import tcc
from ..sagas import get_saga, isolation
from ..sagas.definition import Context, Store
from ..simulation.run import Run
from ..simulation.saga import Saga
from ..simulation.scenario import simulate
from . import Exercise, Feedback, register
from .checking import (
    FaultPlan,
    choice_set,
    choices_against_runs,
    chosen_sets,
    from_judge,
    function,
    rules_broken,
    saga_under_plans,
    tidy,
)
from .l07_sagas_by_orchestration import log_and_continue
from .show import show_table

ITEM = isolation.ITEM
table = show_table


# --- showing runs ------------------------------------------------------------------------

def problems(run: Run) -> str:
    """The broken rules of a run, in one cell."""
    return rules_broken(run, "none")


def notes(run: Run, node: str) -> None:
    """What a node did, as the trace notes it (the ◆ labels of the diagrams, in full)."""
    for e in run.trace.of_kind("effect"):
        if e.node == node:
            print(f"time {e.time:>3} (step {e.step}): {node}: {e.detail}")


def moves(store: Store) -> str:
    """The moves on record in an inventory store, e.g. 'A: -2, B: -3'."""
    return ", ".join(f"{sid}: {qty:+d}" for sid, qty in sorted(store["moves"].items())) or "—"


def local_transactions(run: Run, node: str) -> list[tuple[int, LogRecord]]:
    """(step, record) for each local transaction of a node, in order."""
    steps = [e.step for e in run.trace
             if e.kind == "log" and e.node == node and e.detail.startswith("LOCAL_TX")]
    return list(zip(steps, [r for r in run.logs[node] if r.record == "LOCAL_TX"], strict=True))


def inventory_log(run: Run, until: int | None = None) -> None:
    """The inventory's local transactions up to a step: which saga, what, the store after."""
    rows = []
    for step, record in local_transactions(run, "inventory"):
        if until is not None and step > until:
            break
        d, after = record.data, record.data["store"]
        pending = ", ".join(f"{item} by {sid}" for item, sid in after["pending"].items())
        rows.append((step, record.time, d["saga_id"], f"{d['kind']} {d['step']}",
                     after["stock"][ITEM], moves(after), pending or "—"))
    table(["step", "time", "saga", "local transaction", f"stock of {ITEM}",
           "moves on record", "PENDING"], rows)


def stock_runs(runs: Iterable[Run]) -> None:
    """One row per stock-move run: its outcome, final stock, moves, bills, broken rules."""
    rows = []
    for run in runs:
        final = final_stores(get_saga(run.scenario.options["saga"]), run.logs)
        bills = ", ".join(f"{sid}: {bill['status']}"
                          for sid, bill in sorted(final["payment"]["bills"].items()))
        rows.append((run.scenario.name, run.outcome, final["inventory"]["stock"][ITEM],
                     moves(final["inventory"]), bills or "—", problems(run)))
    table(["scenario", "outcome", f"stock of {ITEM}", "moves on record", "bills",
           "broken rules"], rows)


def tcc_runs(runs: Iterable[Run]) -> None:
    """One row per TCC run: what the payment participant holds at the end, in cents."""
    rows = []
    for run in runs:
        options = run.scenario.options
        pay = tcc.final_stores(options, run.participants, run.logs)["payment"]
        barrier = pay.get("barrier")
        rows.append((run.scenario.name, "on" if options.get("barrier", True) else "off",
                     run.outcome, options.get("available", {}).get("payment", 500),
                     pay["available"], sum(pay["frozen"].values()), pay["used"],
                     "—" if barrier is None else barrier or "{}",
                     "; ".join(v.invariant for v in run.violations) or "none"))
    table(["scenario", "barrier", "outcome", "started with", "available", "frozen", "used",
           "barrier table", "broken rules"], rows)


# --- the checklist (section 8) ------------------------------------------------------------

# (rule, a run or scenario that breaks it (None: none here), one that keeps it, where:
# "09 §2" is this lesson's section 2, "07"/"08" the orchestration/choreography lessons).
# "the final-bill run" is the run of section 6, passed to :func:`checklist`.
CHECKLIST: tuple[tuple[str, str | None, str, str], ...] = (
    ("Expect every command twice: deduplicate by key inside the local transaction, and "
     "make compensations idempotent on their own",
     "compensation-not-idempotent", "compensation-idempotent", "09 §2, 08 §5"),
    ("Undo your own change (take the move back); never write back a value read earlier",
     "isolation-lost-update", "isolation-lost-update-commutative", "09 §3"),
    ("Keep others away from unfinished work with a semantic lock (PENDING), and release "
     "it on every ending", "isolation-dirty-read", "isolation-dirty-read-semantic-lock",
     "09 §5, 07 §3"),
    ("Run the step that may fail before the steps whose effects others can see",
     "isolation-dirty-read", "isolation-dirty-read-reordered", "09 §5"),
    ("After the pivot, only steps that cannot fail for good", "the final-bill run",
     "saga-pivot-forward-recovery", "09 §6, 07 §7"),
    ("A compensation must do nothing when its action never ran (null compensation)",
     "tcc-null-compensation", "tcc-null-compensation-barrier", "09 §7, 07 §10"),
    ("An action that arrives after its compensation must be refused (no hanging)",
     "tcc-hanging", "tcc-hanging-barrier", "09 §7, 07 §10"),
    ("When a call's outcome is unknown, register its compensation before the call",
     "saga-reply-lost-compensate-after", "saga-reply-lost-compensate-before", "07 §10"),
    ("Retry a failing compensation a few times, then stop and hand over to an operator",
     "refund-logged-and-skipped", "saga-stuck", "07 §8"),
    ("Log before you send, and resume from the log after a crash",
     None, "saga-orchestrator-crash", "07 §9"),
)


def _checked(run: Run | str | None, final_bill: Run) -> str:
    """A scenario (or run) and how it ended."""
    if run is None:
        return "—"
    if run == "the final-bill run":
        run = final_bill
    elif run == "refund-logged-and-skipped":
        run = log_and_continue()
    elif isinstance(run, str):
        run = scenario(run).run()
    return f"`{run.scenario.name or run.scenario.options['saga']}`: {run.outcome}"


def checklist(final_bill: Run) -> None:
    """Every rule of the checklist, with the runs that break and keep it, run again."""
    table(["rule", "broken in", "kept in", "lesson"],
          [(rule, _checked(bad, final_bill), _checked(good, final_bill), where)
           for rule, bad, good, where in CHECKLIST])


# --- exercise: a compensation that survives a duplicate ----------------------------------

DECLINED_SALE = {"qty": -2, "payment": "declined"}
DUPLICATE_PLANS: tuple[FaultPlan, ...] = (
    ("a sale of 2 is declined and its compensation arrives twice",
     {"context": DECLINED_SALE, "idempotent": False},
     (duplicate("UNDO", dst="inventory"),)),
    ("two sales run at once (A sells 2, then B sells 3; A is declined) and A's "
     "compensation arrives twice", {"instances": isolation.LOST_UPDATE, "idempotent": False},
     (duplicate("UNDO", dst="inventory"),)),
    ("every stock request is lost and the compensation was registered before the call, "
     "so it runs for a move that never happened",
     {"register_compensation": "before", "idempotent": False},
     (drop("DO", dst="inventory", count=3),)),
)


def unmove_once(store: Store, ctx: Context) -> None:
    """A correct compensation: take this saga's move back, if it is still on record."""
    qty = store["moves"].pop(ctx["saga_id"], None)
    if qty is None:
        return  # never moved, or taken back already
    store["stock"][ctx["item"]] -= qty


def subtract_the_qty(store: Store, ctx: Context) -> None:
    """A plausible wrong answer: take the move back by the input's quantity, whether or
    not it is still on record (so a second copy takes it back again)."""
    store["stock"][ctx["item"]] -= ctx["qty"]
    store["moves"].pop(ctx["saga_id"], None)


def flag_in_ctx(store: Store, ctx: Context) -> None:
    """A plausible wrong answer: remember in ``ctx`` that the compensation ran. ``ctx`` is
    the command's input, which a second copy of the command does not share (and which a
    step may not change)."""
    if ctx.get("undone"):
        return
    ctx["undone"] = True  # type: ignore[index]  # refused: ctx is read-only
    store["stock"][ctx["item"]] -= ctx["qty"]
    store["moves"].pop(ctx["saga_id"], None)


def undo_saga(compensation: Callable[[Store, Context], None],
              name: str = "design-your-compensation") -> Saga:
    """The stock-move saga (move the stock, then settle the bill) with ``compensation``
    as the compensation of ``move_stock``."""
    saga = Saga(name, services=isolation.STORES, context=isolation.CONTEXT,
                invariants=isolation.INVARIANTS,
                description="The stock-move saga with your compensation of move_stock.")
    saga.step("move_stock", service="inventory", action=isolation.move_stock,
              compensation=compensation)
    saga.step("settle", service="payment", action=isolation.settle,
              compensation=isolation.refund)
    return saga


def judge_compensation(compensation: Any) -> tuple[bool, str]:
    """Run the stock-move saga with ``compensation`` under every plan; (ok, what happened)."""
    undo = function(compensation, "undo(store, ctx), like the compensations in this lesson")
    problem = saga_under_plans(undo_saga(undo), DUPLICATE_PLANS, "compensation")
    if problem:
        return False, problem
    return True, ("kept every domain rule in all three runs: your compensation takes back "
                  "exactly this saga's move (so B's sale survives A's undo), does nothing "
                  "the second time, and does nothing when the move never happened.")


@register("design-survive-a-duplicate")
def _survive_a_duplicate() -> Exercise:
    return Exercise(
        name="design-survive-a-duplicate",
        prompt="Write the compensation of the stock-move saga's move_stock step: a function "
               "undo(store, ctx). store is the inventory's store ({'stock': {item: n}, "
               "'moves': {saga_id: qty}, 'pending': {}}); move_stock added ctx['qty'] to "
               "store['stock'][ctx['item']] and recorded store['moves'][ctx['saga_id']] = "
               "qty. The checker runs the saga three times on an inventory that does not "
               "deduplicate commands: " + "; ".join(w for w, _, _ in DUPLICATE_PLANS)
               + ". After each run it checks the saga's domain rules.",
        checker=from_judge(judge_compensation),
        hints=(
            "The service will not protect you: your function itself must notice that it "
            "has already run. What in the store says whether this saga's move is still "
            "in effect?",
            "store['moves'] records each saga's move. Take the move back only if it is "
            "there, and remove it when you do. Take it back by subtracting it, never by "
            "writing back a stock you read earlier.",
        ),
        answer="Pop this saga's move from store['moves'] (store['moves'].pop(ctx['saga_id'], "
               "None)). If there was none, return: the move never happened, or it was taken "
               "back already. Otherwise subtract it from the stock "
               "(unmove_once in txlib/course/l09_designing_sagas.py). The record and the "
               "stock change in one local transaction, so the second copy finds no record "
               "and changes nothing; subtracting commutes with B's sale, so B's units stay "
               "sold.",
        example=unmove_once,
        wrong=((subtract_the_qty, "arrives twice"),
               (flag_in_ctx, "changed its ctx: a step's ctx is read-only input"),
               (isolation.restore_stock, "two sales run at once"),
               (isolation.unmove_stock, "the count is off")),
    )


# --- exercise: pick the countermeasure ----------------------------------------------------

COUNTERMEASURES = ("commutative", "semantic lock", "reordered")
# name -> (compensation of the saga as written, the two instances, what happens)
SITUATIONS: dict[str, tuple[str, list[dict[str, Any]], str]] = {
    "lost update": ("restore", isolation.LOST_UPDATE,
                    "A sells 2, B sells 3, A's payment is declined; the compensation "
                    "writes back the stock it read"),
    "dirty read": ("commutative", isolation.DIRTY_READ,
                   "A restocks 5, B sells 12, A's supplier bill is declined; the "
                   "compensation takes the 5 back"),
    "dirty read, restore": ("restore", isolation.DIRTY_READ,
                            "A restocks 5, B sells 12, A's supplier bill is declined; the "
                            "compensation writes back the stock it read"),
}
# The answer the engine gives: the example answer, which tests/test_exercises.py runs
# through the checker (so every entry is checked against its run).
COUNTERMEASURE_ANSWER = {"lost update": {"commutative", "semantic lock", "reordered"},
                         "dirty read": {"semantic lock", "reordered"},
                         "dirty read, restore": {"semantic lock", "reordered"}}


def countermeasure_saga(situation: str, countermeasure: str | None) -> str:
    """The name of the stock-move saga of ``situation`` with ``countermeasure`` applied
    (None: as written)."""
    compensation, _, _ = SITUATIONS[situation]
    commutative = compensation == "commutative" or countermeasure == "commutative"
    return ("stock" + ("-commutative" if commutative else "")
            + ("-locked" if countermeasure == "semantic lock" else "")
            + ("-reordered" if countermeasure == "reordered" else ""))


def countermeasure_run(situation: str, countermeasure: str | None) -> Run:
    """The run of ``situation`` with ``countermeasure`` (None: the anomaly itself)."""
    return simulate("saga", saga=countermeasure_saga(situation, countermeasure),
                    instances=SITUATIONS[situation][1])


def _stock(run: Run) -> int:
    saga = run.scenario.options["saga"]
    return int(final_stores(get_saga(saga), run.logs)["inventory"]["stock"][isolation.ITEM])


def _reasons(run: Run) -> str:
    return "; ".join(v.reason for v in run.violations) or "it never finishes"


@register("design-pick-the-countermeasure")
def _pick_the_countermeasure() -> Exercise:
    def check(answer: Any) -> Feedback:
        chosen = chosen_sets(answer, SITUATIONS, "situation", COUNTERMEASURES,
                             "countermeasure", "countermeasures that fix it",
                             "{'semantic lock'}, or set() if none works")
        said = choices_against_runs(
            chosen, COUNTERMEASURES, countermeasure_run, "situations",
            lambda situation, cm, run: f"{situation!r}: {cm!r} is missing; with it the run "
                                       f"ends {run.outcome}, stock {_stock(run)}, and breaks "
                                       "no rule.",
            lambda situation, cm, run: f"{situation!r}: {cm!r} does not fix it; that run "
                                       f"ends {run.outcome} ({_reasons(run)}).")
        if said is not None:
            return said
        return Feedback(True, "a commutative compensation cures the lost update (it takes "
                              "back A's own change and leaves B's alone) but not a dirty "
                              "read: B still acted on units that were never final. The "
                              "semantic lock and the reordering fix all three, because they "
                              "stop anyone from seeing A's change before it is final: the "
                              "lock refuses B while A is PENDING, and the reordered saga "
                              "fails before it changes anything.")

    rows = "; ".join(f"{name!r}: {what}" for name, (_, _, what) in SITUATIONS.items())
    return Exercise(
        name="design-pick-the-countermeasure",
        prompt="Two stock-move sagas, A and B, run at once over one item with 10 in stock. "
               "Situations: " + rows + ". For each, which countermeasures, applied alone, "
               "make the run consistent? Countermeasures: 'commutative' (the compensation "
               "takes the move back instead of writing back a value), 'semantic lock' (the "
               "item stays PENDING until the saga ends), 'reordered' (settle the bill, the "
               "step that may fail, first). Answer with a dict from situation to a set, "
               "e.g. {'lost update': {'commutative'}, ...}.",
        checker=check,
        hints=(
            "Ask of each countermeasure: does B still get to see A's change before A "
            "knows whether it will stand? If so, B may act on it.",
            "A commutative compensation changes how A undoes, not what B sees. The lock and "
            "the reordering change what B sees.",
        ),
        answer="{'lost update': {'commutative', 'semantic lock', 'reordered'}, 'dirty read': "
               "{'semantic lock', 'reordered'}, 'dirty read, restore': {'semantic lock', "
               "'reordered'}}. Taking the move back instead of writing back an old value "
               "fixes the lost update only. In the dirty read B sold units that A then took "
               "back, and in the third situation, with a restore, B's sale also vanishes "
               "from the count (the stock looks fine at 10, but 10 plus the moves on record "
               "makes -2). "
               "Only the countermeasures that keep B away from A's unfinished change, the "
               "lock and the reordering, fix those.",
        example={s: set(cms) for s, cms in COUNTERMEASURE_ANSWER.items()},
        wrong=(({s: {"commutative"} for s in SITUATIONS},
                "'dirty read': 'commutative' does not fix it"),
               ({s: set(COUNTERMEASURES) for s in SITUATIONS}, "'commutative' does not fix it"),
               ({"lost update": {"commutative"}, "dirty read": {"semantic lock", "reordered"},
                 "dirty read, restore": {"semantic lock", "reordered"}},
                "'lost update': 'semantic lock' is missing")),
    )


# --- exercise: which barrier rule prevents hanging ---------------------------------------

BARRIER_RULES = {
    "a": "an operation already recorded for the transaction is answered without running "
         "again",
    "b": "a Cancel that finds no Try recorded records itself anyway, and releases nothing",
    "c": "a Try that finds a Cancel recorded is refused",
}
HANGING = "tcc-hanging"


def barrier_actions(run: Run) -> dict[str, list[tuple[int, str]]]:
    """For a TCC run with the barrier: the steps at which each rule acted, and where.

    ``"a"``: a command whose operation the barrier already held was answered without
    running; ``"b"``: a Cancel with no Try recorded was recorded as a null compensation;
    ``"c"``: a Try found a Cancel recorded and was refused.
    """
    found: dict[str, list[tuple[int, str]]] = {rule: [] for rule in BARRIER_RULES}
    for node in run.participants:
        txs = local_transactions(run, node)
        for step, r in txs:
            if r.data["op"] == "cancel" and r.data["null"]:
                found["b"].append((step, node))
        for e in run.trace:
            if e.kind != "deliver" or e.node != node or e.message is None:
                continue
            op = e.message.type.lower()
            if op not in ("try", "confirm", "cancel"):
                continue
            before = [r for s, r in txs if s < e.step]
            done = before[-1].data["store"]["barrier"].get(e.message.payload["tx"], []) \
                if before else []
            ran = any(s == e.step for s, _ in txs)
            if ran:
                continue
            if op in done:
                found["a"].append((e.step, node))
            elif op == "try" and "cancel" in done:
                found["c"].append((e.step, node))
    return found


def _letter(name: str) -> str:
    return tidy(name).strip("()")


def _letters(answer: Any) -> set[str]:
    letters = choice_set(answer, BARRIER_RULES, "rule letter", "{'a'} or {'a', 'b'}", _letter)
    if not letters:
        raise TxlibError("choose at least one rule: the barrier does prevent the hanging")
    return letters


def _at(places: list[tuple[int, str]]) -> str:
    return ", ".join(f"step {s} at {n}" for s, n in places)


@register("design-barrier-against-hanging")
def _barrier_against_hanging() -> Exercise:
    def check(answer: Any) -> Feedback:
        chosen = _letters(answer)
        bare = scenario(HANGING).run()
        fenced = scenario(HANGING + "-barrier").run()
        hanging = [v for v in bare.violations if v.invariant == "no hanging reservation"]
        null = [v for v in bare.violations if v.invariant == "no null compensation"]
        acted = barrier_actions(fenced)
        needed = {"b", "c"}
        notes = []
        if "c" not in chosen:
            notes.append(f"Rule (c) is the one that turned the late Try away ({_at(acted['c'])}"
                         "): without a barrier that same Try "
                         + (f"left a hanging reservation: {hanging[0].reason}" if hanging
                            else "froze the amount for good") + ".")
        if "b" not in chosen:
            notes.append(f"Rule (b) is the one that kept the first Cancel harmless. It arrived "
                         f"before any Try ({_at(acted['b'])}) and found none; without a "
                         "barrier that same Cancel "
                         + (f"did harm: {null[0].reason}" if null
                            else "released what no Try had frozen")
                         + ". Rule (c) turns the late Try away; it does nothing about a "
                         "Cancel that comes first.")
        if "a" in chosen:
            notes.append("Rule (a) never acted in this run: no command arrived twice "
                         "(it stops duplicates, not late arrivals).")
        if chosen != needed:  # one note at a time: the first thing to reconsider
            n = len(notes) - 1
            more = f" ({n} more rule{'s' if n > 1 else ''} to reconsider.)" if n else ""
            return Feedback(False, notes[0] + more)
        return Feedback(True, f"the Cancel reached payment first ({_at(acted['b'])}) and "
                              "found no Try: rule (b) released nothing and recorded the "
                              f"Cancel. The Try came later ({_at(acted['c'])}), found that "
                              "record and was refused: rule (c). Together they are one idea: "
                              "a Cancel leaves a mark that a Try can never get past. Rule (a), "
                              "against duplicates, did not act.")

    rules = "; ".join(f"({k}) {v}" for k, v in BARRIER_RULES.items())
    return Exercise(
        name="design-barrier-against-hanging",
        prompt=f"The sub-transaction barrier has three rules: {rules}. In {HANGING} the Try "
               "to payment arrives after the Cancel. Which rules does it take, with the "
               "barrier on, for payment to end as it started: nothing frozen, and no "
               "cents created? Answer with a set of letters.",
        checker=check,
        hints=(
            "Follow payment's messages in order in the barrier run: what arrives first, "
            "and what does the barrier write down when it arrives?",
            "Without a barrier, tcc-hanging goes wrong twice: the Cancel releases cents "
            "that no Try froze, and the late Try freezes cents for good. Which rule stops "
            "each?",
        ),
        answer="{'b', 'c'}. The Cancel arrives first and finds no Try: rule (b) releases "
               "nothing but records the Cancel. The late Try finds that record and is "
               "refused: rule (c). Without (b) that Cancel would release 300 cents that no "
               "Try froze (a null compensation); without (c) the late Try would freeze 300 "
               "cents for good (hanging). Rule (a) deduplicates repeated operations and plays no "
               "part here. DTM's barrier does both with one insert: a Cancel inserts the "
               "Try's row itself, so the late Try's insert finds it and does nothing.",
        example={"b", "c"},
        wrong=(({"c"}, "released 300 cents that no Try had frozen"),
               ({"a", "c"}, "Rule (b) is the one that kept the first Cancel harmless"),
               ({"a", "b", "c"}, "rule (a) never acted"),
               ({"a"}, "turned the late Try away")),
    )
