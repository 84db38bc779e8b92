"""What the lessons' checkers share, written once.

- reading an answer of the expected shape, or a :class:`~txlib.errors.TxlibError` that
  names the bad value (:func:`fault_plan`, :func:`one_fault`, :func:`choice_set`, :func:`tidy`,
  :func:`dict_of`, :func:`chosen_sets`, :func:`function`, :func:`formula`, :func:`whole_number`);
- running a set of fault plans and collecting what went wrong (:func:`saga_under_plans`,
  :func:`disagreements`, :func:`choices_against_runs`, :func:`wrong_predictions`);
- the words feedback uses to show a run as a counterexample (:func:`rules_broken`,
  :func:`ending`, :func:`domain_violations`, :func:`listing`, :func:`plural`, :func:`score`).
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Collection, Iterable, Iterator, Mapping, Sequence
from typing import Any, TypeVar

from ..engine.faults import Fault
from ..engine.plain import MAX_INT
from ..errors import TxlibError, bad_choice
from ..errors import shown as shown_briefly
from ..simulation.run import Run
from ..simulation.saga import Saga
from . import Checker, Feedback, huge_number

T = TypeVar("T")
M = TypeVar("M")

# A fault plan of an exercise: (what happens, in words; run options; faults).
FaultPlan = tuple[str, dict[str, Any], tuple[Fault, ...]]
CONSISTENT = ("completed", "compensated")


def shown(value: Any, limit: int = 80) -> str:
    """``repr(value)``, cut short if it is long (a huge number by its size)."""
    text = shown_briefly(value) if isinstance(value, int) else repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


# --- the shape of an answer -------------------------------------------------------------

def _items(answer: Any) -> list[Any] | None:
    """The items of a list-like answer (not a string, bytes or a dict); None otherwise."""
    if isinstance(answer, (str, bytes, Mapping)) or not isinstance(answer, Iterable):
        return None
    return list(answer)


def fault_plan(answer: Any, example: str) -> tuple[Fault, ...]:
    """``answer`` as a fault plan: one fault, or a non-empty list of faults."""
    if isinstance(answer, Fault):
        return (answer,)
    items = _items(answer)
    if items:
        bad = [f for f in items if not isinstance(f, Fault)]
        if not bad:
            return tuple(items)
        raise TxlibError(f"{shown(bad[0])} is not a fault; answer with a fault or a list of "
                         f"faults, e.g. {example}")
    raise TxlibError(f"answer with a fault or a list of faults, e.g. {example}; "
                     f"got {shown(answer)}")


def one_fault(answer: Any, example: str) -> Fault:
    """``answer`` as exactly one fault (alone, or the only item of a list)."""
    faults = fault_plan(answer, example)
    if len(faults) != 1:
        raise TxlibError(f"answer with ONE fault, e.g. {example}; got {len(faults)}")
    return faults[0]


def choice_set(value: Any, valid: Collection[str], what: str, example: str,
               normalise: Callable[[str], str] | None = None) -> set[str]:
    """``value`` as a set of ``what``s from ``valid`` (one name alone counts as a set of
    one); ``normalise`` tidies each name first (e.g. ``str.lower``)."""
    items = [value] if isinstance(value, str) else _items(value)
    if items is None:
        raise TxlibError(f"answer with a set of {what}s, e.g. {example}; got {shown(value)}")
    names = [normalise(str(item)) if normalise else item for item in items]
    for name in names:
        if name not in valid:
            raise bad_choice(what, name, valid)
    return set(names)


def tidy(name: str) -> str:
    """A name as a learner may type it, tidied: 'Semantic Lock ' -> 'semantic lock'."""
    return name.strip().lower()


def dict_of(answer: Any, keys: Collection[str], key: str, what: str) -> Mapping[str, Any]:
    """``answer`` as a dict with exactly the keys ``keys`` (the caller reads each value);
    ``key`` names a key ('plan') and ``what`` a value ('the set of settings that ...')."""
    wanted = "{" + ", ".join(f"{k!r}: ..." for k in keys) + "}"
    if not isinstance(answer, Mapping):
        raise TxlibError(f"answer with a dict from each {key} to {what}: {wanted}; "
                         f"got {shown(answer)}")
    missing = [k for k in keys if k not in answer]
    extra = [k for k in answer if k not in keys]
    if missing or extra:
        raise TxlibError(f"answer with a dict from each {key} to {what}: {wanted}"
                         + (f"; missing {', '.join(map(repr, missing))}" if missing else "")
                         + (f"; unknown key {extra[0]!r}" if extra else ""))
    return answer


def whole_number(value: Any, what: str) -> int:
    """``value`` if it is a whole number (not a bool); ``what`` names it in the error."""
    if isinstance(value, bool) or not isinstance(value, int):
        raise TxlibError(f"{what} must be a whole number, got {shown(value)}")
    return value


def function(answer: Any, wanted: str) -> Callable[..., Any]:
    """``answer`` if it is a function; ``wanted`` says which, e.g. 'refund(store, ctx)'."""
    if not callable(answer):
        raise TxlibError(f"answer with a function {wanted}; got {shown(answer)}")
    fn: Callable[..., Any] = answer

    @functools.wraps(fn)
    def checked(*args: Any, **kwargs: Any) -> Any:
        value = fn(*args, **kwargs)
        huge = huge_number(value)
        if huge is not None:  # Python cannot even print it (more than 4,300 digits)
            raise TxlibError(f"your function returned {shown(huge)}: no answer here needs a "
                             f"number beyond {MAX_INT:,}")
        return value

    return checked


def formula(answer: Any, example: str) -> Callable[[int], Any]:
    """``answer`` as a function of n, e.g. ``lambda n: 4 * n``."""
    return function(answer, f"of n, e.g. {example}")


# --- running plans and collecting what went wrong -----------------------------------------

def ends_consistent(run: Run) -> bool:
    """A saga that finished, forward or backward."""
    return run.outcome in CONSISTENT


def domain_violations(run: Run) -> list[str]:
    """Why each of the saga's own business rules that the run broke is broken."""
    return [v.reason for v in run.violations if v.invariant.startswith("domain")]


def saga_under_plans(saga: Saga, plans: Iterable[FaultPlan], yours: str,
                     also: Callable[[Run], str | None] | None = None) -> str | None:
    """Run ``saga`` (with the learner's function in it) under each plan: the first
    problem, in words, or None if every run finished and kept the saga's domain rules
    (and ``also(run)``, if given, found nothing wrong). ``yours`` names the learner's
    function, e.g. 'refund'."""
    for what, options, faults in plans:
        try:
            run = saga.simulate(faults=faults, **options)
        except TxlibError as exc:
            return f"{what}: {exc}."
        if run.outcome == "stuck":
            return (f"{what}: the saga is stuck. Your {yours} failed every time it was tried "
                    "(did it raise txlib.StepFailed?).")
        broken = domain_violations(run)
        if broken:
            return f"{what}: {'; '.join(broken)}."
        problem = also(run) if also is not None else None
        if problem:
            return f"{what}: {problem}"
    return None


def disagreements(chosen: Mapping[str, Collection[str]], options: Sequence[str],
                  run_of: Callable[[str, str], Run]) -> Iterator[tuple[str, str, Run]]:
    """For each key of ``chosen`` and each option: the runs (``run_of(key, option)``)
    where choosing the option disagrees with whether the run ends consistent."""
    for key, picked in chosen.items():
        for option in options:
            run = run_of(key, option)
            if (option in picked) != ends_consistent(run):
                yield key, option, run


def chosen_sets(answer: Any, keys: Collection[str], key: str, options: Collection[str],
                option: str, what: str, example: str) -> dict[str, set[str]]:
    """``answer`` as a dict from each of ``keys`` (each a ``key``) to a set of ``option``s
    (names tidied, and keys: 'Reply Lost ' is 'reply lost'); ``what`` says what the set
    holds, e.g. 'settings that end consistent'."""
    if isinstance(answer, Mapping):
        known = {tidy(k): k for k in keys}
        answer = {known.get(tidy(k), k) if isinstance(k, str) else k: v
                  for k, v in answer.items()}
    answer = dict_of(answer, keys, key, f"the set of {what}")
    return {k: choice_set(answer[k], options, option, example, tidy) for k in keys}


def choices_against_runs(chosen: Mapping[str, Collection[str]], options: Sequence[str],
                         run_of: Callable[[str, str], Run], noun: str,
                         missing: Callable[[str, str, Run], str],
                         wrong: Callable[[str, str, Run], str]) -> Feedback | None:
    """Feedback on the :func:`disagreements` of ``chosen`` with the runs, None if there
    are none: the score, then one counterexample, ``wrong(key, option, run)`` for an
    option chosen whose run does not end consistent if there is one, else
    ``missing(key, option, run)`` for one left out whose run does, then how many more
    entries differ; ``noun`` names the keys in the score, e.g. 'plans'."""
    found = list(disagreements(chosen, options, run_of))
    if not found:
        return None
    # One counterexample, not a wall of text: an option chosen that fails if there is
    # one (the run shows it), else one left out that works; then how many more differ.
    bad = [(key, option, run) for key, option, run in found if not ends_consistent(run)]
    key, option, run = (bad or found)[0]
    note = wrong(key, option, run) if bad else missing(key, option, run)
    more = len(found) - 1
    rest = (f" {more} more {'entry differs' if more == 1 else 'entries differ'} from the "
            "runs." if more else "")
    wrong_keys = {key for key, _, _ in found}
    return Feedback(False, score(len(chosen), len(wrong_keys), noun) + note + rest)


def wrong_predictions(fn: Callable[[int], Any], sizes: Iterable[int],
                      measure: Callable[[int], M], value: Callable[[M], T],
                      read: Callable[[Any, int], T]) -> Iterator[tuple[int, T, M]]:
    """For each size n whose prediction ``read(fn(n), n)`` is not ``value(measure(n))``:
    (n, the prediction, the measurement). Lazy: measuring can be slow."""
    for n in sizes:
        guess = read(fn(n), n)
        measured = measure(n)
        if guess != value(measured):
            yield n, guess, measured


def from_judge(judge: Callable[[Any], tuple[bool, str]]) -> Checker:
    """A checker from a function that returns (ok, what happened)."""

    def check(answer: Any) -> Feedback:
        ok, message = judge(answer)
        return Feedback(ok, message)

    return check


# --- words --------------------------------------------------------------------------------

def rules_broken(run: Run, none: str = "no rule broken") -> str:
    """The run's violations in one line, or ``none``."""
    return "; ".join(str(v) for v in run.violations) or none


def ending(run: Run, none: str = "no rule broken") -> str:
    """How a run ends, as a counterexample: 'inconsistent (atomicity: ...)'."""
    return f"{run.outcome} ({rules_broken(run, none)})"


def listing(names: Sequence[str]) -> str:
    """'a', 'a and b', 'a, b and c'."""
    return ", ".join(names[:-1]) + " and " + names[-1] if len(names) > 1 else "".join(names)


def plural(n: int, word: str, many: str | None = None) -> str:
    """'1 step', '2 steps' (``many``: the plural when it is not ``word + 's'``)."""
    return f"{n} {word if n == 1 else (many or word + 's')}"


def score(total: int, wrong: int, noun: str) -> str:
    """'2 of 3 plans right. '"""
    return f"{total - wrong} of {total} {noun} right. "
