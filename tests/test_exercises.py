"""Exercises: checks never raise, hints come one at a time, every solution is accepted."""

from __future__ import annotations

import pytest

import txlib
from txlib.course import Feedback


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
