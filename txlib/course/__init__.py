"""Exercises with feedback: ``ex = txlib.exercise("name")``, then ``ex.check(answer)``,
``ex.hint()`` and ``ex.solution()``.

A check never raises: a wrong or malformed answer gets a :class:`Feedback` that says
what is wrong, shown in the notebook (and as plain text elsewhere).

Each lesson ``notebooks/NN_words.ipynb`` has one module ``txlib/course/lNN_words.py``
that registers its exercises and holds the helpers its notebook imports. What several
lessons share is written once: ``checking.py`` (reading answers, running fault plans,
wording feedback) and ``show.py`` (tables and other notebook displays).
"""

from __future__ import annotations

import importlib
import importlib.util
import pkgutil
import re
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from html import escape
from itertools import islice
from typing import Any

from ..engine.plain import MAX_INT
from ..errors import TxlibError, bad_choice, shown


@dataclass(frozen=True)
class Feedback:
    """The verdict on one answer (``ok``) and a message in plain words. ``tone`` is
    ``"verdict"`` for a check, ``"hint"`` or ``"solution"`` otherwise."""

    ok: bool
    message: str
    tone: str = "verdict"

    def _mark(self) -> str:
        if self.tone == "hint":
            return "Hint"
        if self.tone == "solution":
            return "Solution"
        return "✓ Correct." if self.ok else "✗ Not yet."

    def __str__(self) -> str:
        return f"{self._mark()} {self.message}"

    def __repr__(self) -> str:
        return str(self)

    def __bool__(self) -> bool:
        return self.ok

    def _repr_html_(self) -> str:
        colour = {"hint": "#0072B2", "solution": "#0072B2"}.get(
            self.tone, "#009E73" if self.ok else "#D55E00")
        return (f'<div style="border-left:4px solid {colour};padding:4px 8px;'
                f'white-space:pre-wrap">'
                f'<b style="color:{colour}">{escape(self._mark())}</b> '
                f"{escape(self.message)}</div>")


Checker = Callable[[Any], Feedback]


@dataclass
class Exercise:
    """One exercise: a prompt, a checker, hints revealed one at a time, a solution."""

    name: str
    prompt: str
    checker: Checker
    hints: tuple[str, ...]
    answer: str
    example: Any = None  # a correct answer as a value; tests check it is accepted
    # Plausible wrong answers, each with a phrase its feedback must contain: tests check
    # that every one is rejected and told why (at least two per exercise).
    wrong: tuple[tuple[Any, str], ...] = ()
    _hints_shown: int = field(default=0, repr=False)

    def check(self, answer: Any) -> Feedback:
        """Judge ``answer``; never raises (a bad answer is reported, not thrown)."""
        huge = huge_number(answer)
        if huge is not None:
            return Feedback(False, f"that answer holds {shown(huge)}: no answer here needs a "
                                   f"number beyond {MAX_INT:,}")
        try:
            return self.checker(answer)
        except TxlibError as exc:
            return Feedback(False, f"txlib could not use that answer: {exc}")
        except Exception as exc:  # a learner's answer must never crash the lesson
            return Feedback(False, f"that answer could not be checked ({type(exc).__name__}: "
                                   f"{exc})")

    def hint(self) -> Feedback:
        """The next hint (the last one repeats)."""
        if not self.hints:
            return Feedback(False, "none for this one: try an experiment!", "hint")
        text = self.hints[min(self._hints_shown, len(self.hints) - 1)]
        self._hints_shown += 1
        return Feedback(False, f"{min(self._hints_shown, len(self.hints))} of "
                               f"{len(self.hints)}: {text}", "hint")

    def solution(self) -> Feedback:
        """One correct answer, explained."""
        return Feedback(True, self.answer, "solution")

    def _repr_html_(self) -> str:
        return (f"<div><b>Exercise {escape(self.name)}</b>: {escape(self.prompt)}<br>"
                "<small>Answer with <code>.check(...)</code>; stuck? "
                "<code>.hint()</code>, then <code>.solution()</code>.</small></div>")

    def __repr__(self) -> str:
        return f"Exercise {self.name}: {self.prompt}"


_REGISTRY: dict[str, Callable[[], Exercise]] = {}


def register(name: str) -> Callable[[Callable[[], Exercise]], Callable[[], Exercise]]:
    """Decorator for a function that builds a fresh Exercise called ``name``."""

    def add(build: Callable[[], Exercise]) -> Callable[[], Exercise]:
        if name in _REGISTRY:
            raise ValueError(f"exercise {name!r} registered twice")
        _REGISTRY[name] = build
        return build

    return add


LESSON_MODULE = re.compile(r"^l\d\d_\w+$")
REGISTERED = re.compile(r'^@register\("([^"]+)"\)', re.M)
# lesson module -> why it cannot load here (in a browser, the lessons needing txlib.real)
_UNLOADED: dict[str, str] = {}


def _load_all() -> None:
    """Import every lesson module, so that its exercises are registered; in a browser,
    skip the lessons that need txlib.real (it refuses to load there)."""
    for module in pkgutil.iter_modules(__path__):
        if LESSON_MODULE.match(module.name):
            try:
                importlib.import_module(f"{__name__}.{module.name}")
            except TxlibError as exc:
                if sys.platform != "emscripten":
                    raise
                _UNLOADED[module.name] = str(exc)


def _lesson_of(name: str) -> tuple[str, str] | None:
    """The lesson that could not load here whose source registers exercise ``name``,
    and why it could not (None if there is none)."""
    for module, why in _UNLOADED.items():
        spec = importlib.util.find_spec(f"{__name__}.{module}")
        origin = spec.origin if spec is not None else None
        if origin is None:
            continue
        with open(origin, encoding="utf-8") as source:
            if name in REGISTERED.findall(source.read()):
                return module, why
    return None


def exercise(name: str) -> Exercise:
    """A fresh copy of exercise ``name`` (hints start from the first)."""
    _load_all()
    if not isinstance(name, str) or name not in _REGISTRY:
        unloaded = _lesson_of(name) if isinstance(name, str) else None
        if unloaded is not None:
            raise TxlibError(f"exercise {name!r} belongs to {unloaded[0]}, which cannot run "
                             f"here: {unloaded[1]}")
        raise bad_choice("exercise", name, sorted(_REGISTRY))
    return _REGISTRY[name]()


def exercises() -> list[str]:
    """Names of every exercise."""
    _load_all()
    return sorted(_REGISTRY)


def huge_number(value: Any) -> int | None:
    """The first whole number beyond :data:`MAX_INT` in ``value`` (looking into lists,
    tuples, sets and dicts, each once, at most 10,000 values in all), or None."""
    todo, seen, looked = [value], set(), 0
    while todo and looked < 10_000:
        item = todo.pop()
        looked += 1
        if isinstance(item, int) and not isinstance(item, bool):
            if abs(item) > MAX_INT:
                return item
        elif isinstance(item, (dict, list, tuple, set, frozenset)) and id(item) not in seen:
            seen.add(id(item))  # a list that holds itself is looked into once
            todo.extend(islice((*item.keys(), *item.values()) if isinstance(item, dict)
                               else item, 10_000))
    return None
