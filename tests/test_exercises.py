"""Exercises: checks never raise, hints come one at a time, every solution is accepted;
each lesson's exercises live in its own module; malformed answers are named."""

from __future__ import annotations

import re
from pathlib import Path

import nbformat
import pytest

import txlib
from txlib.course import _REGISTRY, Feedback, checking, exercise, exercises


def test_a_right_and_a_wrong_answer():
    ex = txlib.exercise("2pc-block-with-one-crash")
    right = ex.check(txlib.crash("coordinator", when="coordinator logs COMMIT"))
    wrong = ex.check(txlib.crash("p1", at_step=3))
    assert right.ok and "blocked" in right.message
    assert not wrong.ok and "aborted" in wrong.message


@pytest.mark.parametrize("answer", [None, "crash it", 42, [1, 2], txlib.crash("ghost")])
def test_malformed_answers_are_reported_not_raised(answer):
    feedback = txlib.exercise("2pc-block-with-one-crash").check(answer)
    assert isinstance(feedback, Feedback) and not feedback.ok and feedback.message


def test_hints_come_one_at_a_time_and_the_last_repeats():
    ex = txlib.exercise("2pc-block-with-one-crash")
    shown = [ex.hint().message for _ in range(len(ex.hints) + 1)]
    assert shown[0].startswith("1 of") and shown[-1] == shown[-2]
    assert "Hint" in str(ex.hint()) and "Solution" in str(ex.solution())


def test_feedback_renders_as_escaped_html():
    html = Feedback(False, "<b>x</b>")._repr_html_()
    assert "&lt;b&gt;" in html and "Not yet" in html


def test_unknown_exercise_lists_the_names():
    with pytest.raises(txlib.TxlibError, match="2pc-block-with-one-crash"):
        txlib.exercise("nope")


@pytest.mark.parametrize("name", txlib.exercises())
def test_every_exercise_is_well_formed_and_rejects_nonsense(name):
    ex = txlib.exercise(name)
    assert ex.prompt and ex.answer and ex.hints
    assert not ex.check(object()).ok
    assert ex.example is not None, "give every exercise an example answer"
    assert ex.check(ex.example).ok, "the example answer must be accepted"


@pytest.mark.parametrize("name", txlib.exercises())
def test_every_exercise_rejects_plausible_wrong_answers_and_says_why(name):
    """Each exercise lists (in ``Exercise.wrong``) at least two answers a learner could
    plausibly give; each must be rejected, with feedback that names what is wrong."""
    ex = txlib.exercise(name)
    assert len(ex.wrong) >= 2, f"{name}: list at least two plausible wrong answers"
    for answer, phrase in ex.wrong:
        verdict = ex.check(answer)
        assert not verdict.ok, f"{name} accepted the wrong answer {answer!r}"
        assert phrase.lower() in verdict.message.lower(), (
            f"{name}: feedback on {answer!r} should say {phrase!r}; it says {verdict.message!r}")


NOTEBOOKS = Path(__file__).resolve().parent.parent / "notebooks"
USED = re.compile(r"""txlib\.exercise\(\s*["']([^"']+)["']""")


def used_exercises(path: Path) -> set[str]:
    cells = nbformat.read(path, as_version=4).cells
    return {m for c in cells if c.cell_type == "code" for m in USED.findall(c.source)}


@pytest.mark.parametrize("path", sorted(NOTEBOOKS.glob("*.ipynb")), ids=lambda p: p.name)
def test_a_lesson_uses_the_exercises_its_own_module_registers(path):
    module = f"txlib.course.l{path.stem}"
    txlib.exercises()  # loads every lesson module
    used = used_exercises(path)
    assert used, "a lesson without an exercise"
    elsewhere = {name: _REGISTRY[name].__module__ for name in used
                 if _REGISTRY[name].__module__ != module}
    assert not elsewhere, f"register these in {module}: {elsewhere}"


def test_every_exercise_is_used_by_a_lesson():
    used = set().union(*(used_exercises(p) for p in NOTEBOOKS.glob("*.ipynb")))
    assert set(txlib.exercises()) <= used, sorted(set(txlib.exercises()) - used)


@pytest.mark.parametrize("read, bad, named", [
    (lambda a: checking.fault_plan(a, "[txlib.crash('p1')]"), [txlib.crash("p1"), 7], "7"),
    (lambda a: checking.fault_plan(a, "[txlib.crash('p1')]"), "crash p1", "'crash p1'"),
    (lambda a: checking.one_fault(a, "txlib.crash('p1')"),
     [txlib.crash("p1"), txlib.crash("p2")], "got 2"),
    (lambda a: checking.choice_set(a, ("after", "before"), "setting", "{'after'}"),
     {"after", "later"}, "'later'"),
    (lambda a: checking.choice_set(a, ("after", "before"), "setting", "{'after'}"), 3, "got 3"),
    (lambda a: checking.dict_of(a, ("a", "b"), "letter", "a word"), {"a": 1, "c": 2}, "'c'"),
    (lambda a: checking.whole_number(a, "the count"), True, "True"),
    (lambda a: checking.formula(a, "lambda n: n"), 12, "got 12"),
])
def test_a_malformed_answer_raises_a_txlib_error_naming_the_bad_value(read, bad, named):
    with pytest.raises(txlib.TxlibError) as caught:
        read(bad)
    assert named in str(caught.value)


def test_choice_sets_accept_one_name_and_tidy_names():
    assert checking.choice_set("after", ("after", "before"), "setting", "") == {"after"}
    assert checking.choice_set([" Before "], ("after", "before"), "setting", "",
                               checking.tidy) == {"before"}


def test_the_lamp_cannot_be_shipped_before_it_is_engraved():
    """Issue 13 item 5: shipping before engraving was accepted and praised. The exercise
    refuses it, and the saga itself cannot complete in that order."""
    from txlib.course.l07_sagas_by_orchestration import lamp_saga

    shipped_first = ["place_order", "reserve_lamp", "charge_card", "hand_to_courier",
                     "engrave_lamp"]
    verdict = txlib.exercise("saga-order-around-the-pivot").check(shipped_first)
    assert not verdict.ok and "the courier needs the engraved lamp" in verdict.message
    run = lamp_saga(shipped_first, pivot=False).simulate()
    assert run.outcome == "compensated"
    assert run.logs["courier"][-1].data["reply"]["body"]["reason"].startswith(
        "the courier needs the engraved lamp")


def test_a_split_made_of_drops_alone_is_accepted_as_the_solution_says():
    """Lesson 05 asks whether drops alone can split 3PC; its solution says yes, if they
    lose every message across the cut until the cut-off side has decided, and gives such
    a plan: the checker accepts it (and the same with every copy lost), and rejects the
    same plan without the drops of the re-sends and STATE_REQs."""
    ex = txlib.exercise("3pc-find-a-split")
    for count in (2, None):
        every = [txlib.drop("PRE_COMMIT", dst="p2"), txlib.drop("PRE_COMMIT", dst="p3"),
                 txlib.drop("DO_COMMIT", dst="p2", count=count),
                 txlib.drop("DO_COMMIT", dst="p3", count=count),
                 txlib.drop("STATE_REQ", dst="p1", count=count)]
        assert ex.check(every).ok
    assert "drop('STATE_REQ', dst='p1', count=2)" in ex.answer
    some = ex.check(every[:2])
    assert not some.ok and "every message across the cut" in some.message


def test_half_committed_says_a_held_back_message_is_late_not_lost():
    """A slowed or delayed COMMIT is not lost: it arrives after the checker's horizon, and
    the feedback says so, with the longer run that shows it arriving."""
    ex = txlib.exercise("2pc-partition-half-committed")
    for plan in ([txlib.slow("coordinator", 1000, when="coordinator sends COMMIT to p1")],
                 [txlib.delay(1000, "COMMIT", dst="p2", count=None)]):
        verdict = ex.check(plan)
        assert verdict.ok, verdict.message
        assert "loses messages for good" not in verdict.message
        assert "arrive after the run's horizon" in verdict.message
        assert re.search(r"With a horizon of \d+, it ends committed at time \d+",
                         verdict.message)
    dropped = ex.check([txlib.drop("COMMIT", dst="p2", count=None)])
    assert dropped.ok and "loses messages for good" in dropped.message
    both = ex.check([txlib.drop("COMMIT", dst="p2", count=None),
                     txlib.slow("coordinator", 100, when="coordinator sends COMMIT to p1")])
    assert both.ok and "even with a horizon of" in both.message


JUNK = [None, 10**5000, [["x"]], {"a": [1]}, 1e308, float("nan"), "", [], {},
        lambda *a: 10**5000, lambda *a: None, lambda *a: [[1]], lambda *a: "x",
        lambda *a: (10**5000, 1)]


@pytest.mark.parametrize("name", exercises())
def test_junk_answers_get_feedback_not_a_python_error(name):
    """'that answer could not be checked (...)' is the last resort for an error the
    checker did not expect: Python's own text about a 5,000-digit number, or an
    unhashable list, once reached learners that way."""
    for answer in JUNK:
        feedback = exercise(name).check(answer)
        assert "could not be checked" not in feedback.message, (name, feedback.message)


def test_log_records_are_read_as_a_learner_types_them():
    """Lesson 02 refused 'prepared' where lessons 01 and 09 tidy what a learner types."""
    from txlib.course.l02_two_phase_commit import LOG_RULES

    typed = {m: None if r is None else f" {r.lower()}" for m, r in LOG_RULES.items()}
    assert exercise("2pc-log-before-send").check(typed).ok
    typo = {**typed, "YES": "prepard"}
    feedback = exercise("2pc-log-before-send").check(typo)
    assert not feedback.ok and "'prepard' is not a 2PC log record (did you mean 'PREPARED'?)" \
        in feedback.message


def test_node_names_are_read_as_a_learner_types_them():
    assert exercise("start-first-decision").check(" Coordinator").ok
    feedback = exercise("start-first-decision").check("coordinatr")
    assert not feedback.ok and "(did you mean 'coordinator'?)" in feedback.message


def test_an_answer_that_holds_itself_is_checked_without_hanging():
    """huge_number walked a list holding itself three times 3**20 times (found by a
    reviewer): each list and dict is looked into once."""
    from txlib.course import huge_number

    loop: list = []
    loop.extend([loop] * 3)
    assert huge_number(loop) is None
    assert huge_number([loop, [2**64]]) == 2**64
    assert not exercise("start-count-messages").check(loop).ok


def test_sagas_and_protocol_answers_are_read_as_a_learner_types_them():
    """Lessons 07 and 10 refused names typed with capitals or spaces, a plan dict with
    'Reply lost' for 'reply lost', a protocol list when two qualify, and 24.0 for 24."""
    from txlib.course.l07_sagas_by_orchestration import REGISTER_ANSWER

    assert exercise("saga-order-around-the-pivot").check(
        [" Place Order", "RESERVE_LAMP", "charge_card", "engrave lamp", "hand_to_courier"]).ok
    typed = {plan.title() + " ": sorted(settings) for plan, settings in REGISTER_ANSWER.items()}
    assert exercise("saga-when-to-register").check(typed).ok
    assert exercise("3pc-message-count").check(lambda n: 24 * n / 4).ok
    assert not exercise("3pc-message-count").check(lambda n: 6.5 * n).ok
    assert exercise("choose-never-blocks").check(["3pc", "Paxos Commit"]).ok
    assert exercise("saga-inconsistent-2pc-blocks").check(" Payment cut off").ok


def test_the_lamp_feedback_is_true_of_a_jam_at_the_pivot():
    """The lamp exercise said a jammed engraver 'is retried until it works'; engrave_lamp
    is the pivot, and a business failure of the pivot compensates (nothing final yet)."""
    from txlib.course.l07_sagas_by_orchestration import LAMP_ORDER_EXAMPLE, lamp_saga

    run = lamp_saga(LAMP_ORDER_EXAMPLE, pivot=True).simulate(
        faults=[txlib.fail_step("engrave_lamp", times=1)])
    assert run.outcome == "compensated" and not run.violations
    verdict = exercise("saga-order-around-the-pivot").check(LAMP_ORDER_EXAMPLE)
    assert verdict.ok and "a jammed machine" not in verdict.message
    assert "or of it (a jam leaves the lamp blank), is compensated" in verdict.message


def test_a_refund_with_the_payments_own_numbers_passes_and_the_examples_fail():
    """A refund that gives back CUST-123's 9999 cents whatever it refunds passed all four
    plans (every plan used the example's customer and amount)."""
    from txlib.course import l07_sagas_by_orchestration as lesson

    def own_numbers_from_ctx(store, ctx):
        payment = store["payments"].get(f"PAY-{ctx['saga_id']}")
        if payment is None or payment["status"] != "COMPLETED":
            return
        payment["status"] = "REFUNDED"
        store["wallets"][ctx["customer_id"]] += ctx["amount"]
        store["merchant"] -= ctx["amount"]

    ex = exercise("saga-write-a-refund")
    assert ex.check(own_numbers_from_ctx).ok and ex.check(lesson.refund_example).ok
    verdict = ex.check(lesson.refund_the_examples_numbers)
    assert not verdict.ok and "CUST-456" in verdict.message


def test_an_exercise_of_a_lesson_that_cannot_load_here_says_so(monkeypatch):
    """In the browser build lesson 12 cannot load (txlib.real needs real processes), and
    its exercise cells said only "unknown exercise 'real-in-doubt-points'"."""
    import txlib.course as course
    why = "txlib.real runs real processes and databases, which a browser cannot"
    monkeypatch.setitem(course._UNLOADED, "l12_real_databases", why)
    for name in [n for n, build in _REGISTRY.items()
                 if build.__module__.endswith("l12_real_databases")]:
        monkeypatch.delitem(_REGISTRY, name)
    monkeypatch.setattr(course, "_load_all", lambda: None)
    with pytest.raises(txlib.TxlibError, match=r"exercise 'real-in-doubt-points' belongs to "
                       r"l12_real_databases, which cannot run here: txlib\.real runs real"):
        exercise("real-in-doubt-points")
    with pytest.raises(txlib.TxlibError, match="unknown exercise 'real-in-doubt-point'"):
        exercise("real-in-doubt-point")  # no lesson registers it: the usual answer


def test_survivors_commit_feedback_says_what_the_termination_did():
    """Lesson 04's first exercise praised every accepted crash with 'p1 ... pre-committed
    the rest and committed', also after step 7, when every PRE_COMMIT had gone out and
    nobody was left to pre-commit: the run's termination just committed."""
    ex = exercise("3pc-survivors-commit")
    late = ex.check(txlib.crash("coordinator", at_step=7))
    assert late.ok and "pre-committed the rest" not in late.message
    assert "found p1, p2 and p3 pre-committed" in late.message
    assert "committed at once" in late.message
    early = ex.check(txlib.crash("coordinator", when="coordinator sends PRE_COMMIT to p1"))
    assert early.ok and "found p1 pre-committed" in early.message
    assert "p1 led the termination protocol, pre-committed p2 and p3" in early.message


def test_the_barrier_exercise_asks_what_rule_b_really_does():
    """Lesson 09's barrier exercise asked which rules it takes 'to leave nothing frozen',
    and refused {'c'} saying the late Try would find no record without rule (b). But the
    barrier records every operation it runs (txlib's, and the lesson's own words), so (c)
    alone leaves nothing frozen; what (b) adds is a null Cancel that releases nothing.
    The question now asks for the wallet as it started, and the feedback on {'c'} shows
    the cents the null Cancel released without a barrier."""
    ex = exercise("design-barrier-against-hanging")
    assert "no cents created" in ex.prompt
    verdict = ex.check({"c"})
    assert not verdict.ok
    assert "nothing to be refused by" not in verdict.message
    assert "released 300 cents that no Try had frozen" in verdict.message
    assert ex.check({"b", "c"}).ok


def test_the_abort_cost_feedback_asks_the_way_the_prediction_is_wrong():
    """Lesson 02's abort-cost feedback asked "which messages ... does presumed abort leave
    out?" of every wrong formula, also of one that counted too few (no ABORT to the YES
    voters, no PREPARED forced): the question then pointed the wrong way."""
    ex = exercise("2pc-abort-cost")
    too_few = ex.check(lambda n: (2 * n, n - 1))
    assert not too_few.ok and "leave out" not in too_few.message
    assert "The run did more than you predicted" in too_few.message
    assert "4 messages and 1 forced write;" in too_few.message
    too_many = ex.check(lambda n: (4 * n, 2 * n + 1))
    assert not too_many.ok and "presumed abort leave out" in too_many.message
    mixed = ex.check(lambda n: (1, 1))
    assert not mixed.ok and "One count is too high and one too low" in mixed.message


def test_the_drops_feedback_says_what_the_run_made_good():
    """Lesson 05's advice on drops that did not split 3PC said "the participant that missed
    its PRE_COMMIT still got DO_COMMIT, or asked its peers ..." also when no PRE_COMMIT was
    lost (every DO_COMMIT, or every ACK, dropped), and that a split by drops must lose "the
    STATE_REQs"; dropping every PRE_COMMIT and every DO_COMMIT cuts the coordinator off
    and splits 3PC without losing one. The advice now reads the run."""
    ex = exercise("3pc-find-a-split")
    for plan in ([txlib.drop("DO_COMMIT", count=None)], [txlib.drop("ACK", count=None)]):
        verdict = ex.check(plan)
        assert not verdict.ok and "missed its PRE_COMMIT" not in verdict.message
        assert "every participant got its PRE_COMMIT" in verdict.message
        assert "and the STATE_REQs" not in verdict.message
    one = ex.check(txlib.drop("PRE_COMMIT", dst="p3"))
    assert "p3 missed its PRE_COMMIT but still got DO_COMMIT" in one.message
    asked = ex.check([txlib.drop("PRE_COMMIT", dst="p3"),
                      txlib.drop("DO_COMMIT", dst="p3", count=None)])
    assert not asked.ok and "p3 missed its PRE_COMMIT, asked (STATE_REQ) and heard" \
        in asked.message
    coordinator_alone = [txlib.drop("PRE_COMMIT", count=None),
                         txlib.drop("DO_COMMIT", count=None)]
    assert ex.check(coordinator_alone).ok
    assert "[drop('PRE_COMMIT', count=None), drop('DO_COMMIT', count=None)]" in ex.answer


def test_the_in_doubt_praise_is_true_of_2pc_with_cooperative_termination_too():
    """Lesson 12's in-doubt exercise praised the right answer with 'then only the
    coordinator can release its row', which lesson 03's cooperative termination
    contradicts at between_prepares and between_commits (tests/real checks it)."""
    from txlib.course import l12_real_databases  # noqa: F401  (registers it)

    ex = exercise("real-in-doubt-points")
    verdict = ex.check(ex.example)
    assert verdict.ok and "in plain 2PC, as here, only the coordinator" in verdict.message
    assert "cooperative termination" in verdict.message
