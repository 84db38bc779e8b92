"""Defining a saga: named steps, each a local transaction at one service, with its
compensation, retry policy, and where the point of no return (the pivot) lies.

>>> saga = txlib.Saga("transfer", services={"bank": {"balance": 100}, "shop": {"orders": []}})
>>> saga.step("pay", service="bank", action=pay, compensation=refund)
>>> saga.step("order", service="shop", action=place, compensation=cancel)
>>> run = saga.simulate(faults=[txlib.fail_step("order")])

An action is an ordinary function ``action(store, ctx)``: ``store`` is the service's
local data (a dict it may change), ``ctx`` the saga's context (read-only input plus
what earlier steps returned). It returns a dict of context updates (or None), or raises
:class:`StepFailed` for a business failure, in which case its changes are rolled back.
A compensation ``compensation(store, ctx)`` semantically undoes the action.
"""

from __future__ import annotations

import copy
import re
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from ..engine.config import MAX_NUMBER
from ..engine.plain import check_plain
from ..engine.roster import MAX_PARTICIPANTS
from ..errors import TxlibError, bad_choice, choices, shown, suggestion
from .frozen import Refused, frozen

Store = dict[str, Any]
Context = Mapping[str, Any]
Action = Callable[[Store, Context], "Mapping[str, Any] | None"]
Compensation = Callable[[Store, Context], None]
Invariant = Callable[[Mapping[str, Store], Context], "str | None"]
InputCheck = Callable[[Context, str], None]

RESERVED_NODE_NAMES = ("orchestrator", "broker", "coordinator", "any")
_WORD = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]*")


def is_word(value: object) -> bool:
    """A name that reads the same in JSON, traces and diagrams: letters, digits, ``_``,
    ``-`` and ``.``, starting with a letter or digit (no spaces, no control characters)."""
    return isinstance(value, str) and _WORD.fullmatch(value) is not None


class StepFailed(Exception):
    """Raised by an action (or compensation) for a business failure, e.g. payment declined."""


class _DefaultAttempts(int):
    """The default number of attempts: an int equal to it in every way (so every reader
    of ``Retry().attempts`` sees 3), whose type alone says that no attempts were given
    (the pivot refuses attempts given, even 3; it takes the default)."""

    __slots__ = ()


_DEFAULT_ATTEMPTS = _DefaultAttempts(3)


def _attempts_given(retry: Retry) -> bool:
    """Whether ``retry`` was given a number of attempts (not None, not left out)."""
    return retry.attempts is not None and not isinstance(retry.attempts, _DefaultAttempts)


@dataclass(frozen=True)
class Retry:
    """How often to try a call before giving up, and how long to wait between tries.

    ``attempts=None`` retries forever (the pivot and the steps after it: they cannot be
    undone, so a call to them is made again until it is answered). Left out, attempts
    is 3: the same as ``attempts=3`` everywhere but on the pivot or a step after it,
    which refuses attempts given.
    """

    attempts: int | None = _DEFAULT_ATTEMPTS
    backoff: int = 40

    def __post_init__(self) -> None:
        if self.attempts is not None and (
            not isinstance(self.attempts, int) or isinstance(self.attempts, bool)
            or self.attempts < 1
        ):
            raise TxlibError(f"retry attempts must be 1 or more (or None), got {self.attempts!r}")
        if not isinstance(self.backoff, int) or isinstance(self.backoff, bool) or self.backoff < 1:
            raise TxlibError(f"retry backoff must be a time of 1 or more, got {self.backoff!r}")
        for what, value, other in (("attempts", self.attempts, " (None retries forever)"),
                                   ("backoff", self.backoff, "")):
            if value is not None and value > MAX_NUMBER:  # as every other number a run takes
                raise TxlibError(f"retry {what} must be at most {MAX_NUMBER:,}{other}, "
                                 f"got {shown(value)}")


_READ_ONLY_CONTEXT = ("a step's ctx is read-only input: an action returns a dict of the "
                      "context updates it makes (a compensation makes none)")


@dataclass(frozen=True)
class Step:
    """One step: a local transaction at ``service`` and how to undo it."""

    name: str
    service: str
    action: Action
    compensation: Compensation | None
    retry: Retry
    compensation_retry: Retry
    pivot: bool = False
    after_pivot: bool = False

    def apply(self, store: Store, ctx: Context) -> dict[str, Any]:
        """Run the action on ``store`` (changed in place) and return its context updates.

        :class:`StepFailed` (a business failure) passes through; anything else the
        action raises is a bug in the saga's own code, reported as a TxlibError naming
        the step. What it returns and leaves in the store must be plain JSON values."""
        updates = self._run("action", self.action, store, ctx) or {}
        if not isinstance(updates, Mapping):
            raise TxlibError(f"the action of step {self.name} must return a dict of context "
                             f"updates or None, got {shown(updates)}")
        check_plain(dict(updates), f"what the action of step {self.name} returned")
        check_plain(store, f"the store of {self.service} after step {self.name}")
        return dict(updates)

    def undo(self, store: Store, ctx: Context) -> None:
        """Run the compensation on ``store`` (changed in place); errors as :meth:`apply`."""
        if self.compensation is None:
            raise TxlibError(f"step {self.name} has no compensation")
        self._run("compensation", self.compensation, store, ctx)
        check_plain(store, f"the store of {self.service} after compensating {self.name}")

    def _run(self, what: str, fn: Callable[[Store, Context], Any], store: Store,
             ctx: Context) -> Any:
        try:
            return fn(store, frozen(dict(ctx), _READ_ONLY_CONTEXT))
        except StepFailed:
            raise
        except Refused as exc:
            raise TxlibError(f"the {what} of step {self.name} changed its ctx: {exc}") from None
        except Exception as exc:  # a bug in the saga's own code: say where, plainly
            raise TxlibError(
                f"the {what} of step {self.name} raised {type(exc).__name__}: {exc} "
                "(raise txlib.StepFailed for a business failure)"
            ) from exc


@dataclass
class SagaDefinition:
    """A saga definition. Add steps with :meth:`step`; :class:`txlib.Saga` adds
    ``simulate`` and ``scenario``.

    ``services`` maps each service to its initial local store; ``context`` is the saga's
    input; ``invariants`` are domain rules checked on the final stores, each returning a
    plain-language reason when broken (or None). A saga is found by its name: the name of
    a built-in saga is refused, and redefining a saga of your own replaces it for what
    names it later (a scenario already made from the earlier one still runs that one).
    """

    name: str
    services: Mapping[str, Store]
    context: Mapping[str, Any] = field(default_factory=dict)
    invariants: Sequence[tuple[str, Invariant]] = ()
    description: str = ""
    steps: list[Step] = field(default_factory=list, init=False)
    built_in: bool = field(default=False, init=False, repr=False, compare=False)
    input_check: InputCheck | None = field(default=None, init=False, repr=False,
                                           compare=False)

    def __setattr__(self, name: str, value: Any) -> None:
        if self.__dict__.get("built_in") and _defining is None:  # see built_ins()
            raise TxlibError(f"saga {self.name} is built in: its {name} cannot change; "
                             "define a saga of your own (txlib.Saga(...)) with a copy of "
                             "it instead")
        super().__setattr__(name, value)

    def __post_init__(self) -> None:
        if not is_word(self.name):
            raise TxlibError(f"a saga needs a one-word name (letters, digits, - or _), "
                             f"got {shown(self.name)}")
        refuse_built_in_name(self.name)
        if not isinstance(self.services, Mapping) or not self.services:
            raise TxlibError(f"a saga needs services: a dict of service -> store, "
                             f"got {shown(self.services)}")
        if len(self.services) > MAX_PARTICIPANTS:
            raise TxlibError(f"a saga has at most {MAX_PARTICIPANTS} services (a run's "
                             f"participants), got {len(self.services):,}")
        for service, store in self.services.items():
            if not is_word(service):
                raise TxlibError(f"service names must be one word, got {shown(service)}")
            if service in RESERVED_NODE_NAMES:
                raise TxlibError(f"service name {service!r} is reserved; "
                                 f"reserved: {RESERVED_NODE_NAMES}")
            if not isinstance(store, Mapping):
                raise TxlibError(f"the store of {service} must be a dict, got {shown(store)}")
            check_plain(dict(store), f"the store of {service}")
        if not isinstance(self.context, Mapping):
            raise TxlibError(f"a saga's context must be a dict, got {shown(self.context)}")
        check_plain(dict(self.context), "the saga's context")
        if isinstance(self.invariants, (str, bytes)) or not isinstance(self.invariants,
                                                                       Sequence):
            raise TxlibError(f"invariants must be a list of (name, check) pairs, "
                             f"got {shown(self.invariants)}")
        for rule in self.invariants:
            if not (isinstance(rule, tuple) and len(rule) == 2 and isinstance(rule[0], str)
                    and callable(rule[1])):
                raise TxlibError(f"each invariant must be a (name, check) pair, check being "
                                 f"a function of (stores, context); got {shown(rule)}")
        if not isinstance(self.description, str):
            raise TxlibError(f"description must be a string, got {shown(self.description)}")
        self.services = {s: copy.deepcopy(dict(v)) for s, v in self.services.items()}
        self.context = copy.deepcopy(dict(self.context))
        register(self)

    # --- building ---------------------------------------------------------------------
    def step(
        self,
        name: str,
        *,
        service: str,
        action: Action,
        compensation: Compensation | None = None,
        retry: Retry | None = None,
        compensation_retry: Retry | None = None,
        pivot: bool = False,
    ) -> SagaDefinition:
        """Add a step (returns the saga, so calls can be chained).

        Every step before the pivot needs a compensation; the pivot and the steps after it
        are never compensated. A call to any of them that goes unanswered is made again
        until it is answered (its outcome is unknown, and nothing can undo it), so their
        ``retry`` takes no number of attempts, only a backoff. A business failure of a step
        after the pivot is retried until it succeeds (forward recovery); one of the pivot
        itself sends the saga back, as a failure before it does.
        """
        if self.built_in:
            raise TxlibError(f"saga {self.name} is built in: its steps cannot change. Define "
                             "your own saga with another name (txlib.Saga(...)) instead")
        if not is_word(name):
            raise TxlibError(f"step names must be one word, got {shown(name)}")
        if any(s.name == name for s in self.steps):
            raise TxlibError(f"saga {self.name} already has a step {name!r}; "
                             "step names must be unique")
        if service not in self.services:
            raise bad_choice(f"service for step {name}", service, self.services)
        if not callable(action):
            raise TxlibError(f"the action of step {name} must be a function, got {action!r}")
        for what, value in (("retry", retry), ("compensation_retry", compensation_retry)):
            if value is not None and not isinstance(value, Retry):
                raise TxlibError(f"{what} of step {name} must be txlib.Retry(attempts=..., "
                                 f"backoff=...) or None, got {shown(value)}")
        if not isinstance(pivot, bool):
            raise TxlibError(f"pivot must be True or False, got {shown(pivot)}")
        if compensation is not None and not callable(compensation):
            raise TxlibError(f"the compensation of step {name} must be a function or None, "
                             f"got {compensation!r}")
        after = any(s.pivot or s.after_pivot for s in self.steps)
        if pivot and after:
            pivot_step = next(s.name for s in self.steps if s.pivot)
            raise TxlibError(f"saga {self.name} already has a pivot ({pivot_step}); "
                             "a saga has at most one")
        if (pivot or after) and compensation is not None:
            raise TxlibError(
                f"step {name} is {'the pivot' if pivot else 'after the pivot'}, so it is never "
                "compensated: leave out its compensation (it is retried until it succeeds)"
            )
        if not (pivot or after) and compensation is None:
            raise TxlibError(f"step {name} comes before any pivot, so it needs a compensation")
        if (pivot or after) and retry is not None and _attempts_given(retry):
            raise TxlibError(
                f"step {name} is {'the pivot' if pivot else 'after the pivot'}: a call to it "
                f"is made again until it is answered, so retry attempts={retry.attempts} "
                "would mean nothing; give only a backoff (txlib.Retry(attempts=None, "
                "backoff=...)) or leave retry out")
        forever = Retry(attempts=None, backoff=(retry or Retry()).backoff)
        self.steps.append(Step(
            name=name, service=service, action=action, compensation=compensation,
            retry=forever if pivot or after else (retry or Retry()),
            compensation_retry=compensation_retry or Retry(),
            pivot=pivot, after_pivot=after,
        ))
        return self

    # --- using ------------------------------------------------------------------------
    def find(self, name: str) -> Step:
        for s in self.steps:
            if s.name == name:
                return s
        raise bad_choice(f"step of saga {self.name}", name, [s.name for s in self.steps])

    @property
    def step_names(self) -> tuple[str, ...]:
        return tuple(s.name for s in self.steps)

    def check_input(self, context: Context, where: str = "the context") -> None:
        """Refuse input this saga cannot take, if it knows its input (the built-in sagas
        have an ``input_check``): a key its context does not have (a typo, silently
        ignored otherwise) or a value ``input_check`` refuses. A saga you define may read
        any key, so it takes any input."""
        if self.input_check is None:
            return
        for key in context:
            if key not in self.context:
                raise TxlibError(
                    f"unknown key {shown(key)} in {where} of saga {self.name}"
                    f"{suggestion(key, self.context)}; valid choices: {choices(self.context)}")
        self.input_check(context, where)


def whole_number(value: object, what: str, low: int = 0) -> int:
    """``value`` if it is a whole number from ``low`` to MAX_NUMBER, else a TxlibError."""
    if isinstance(value, bool) or not isinstance(value, int) or not (
        low <= value <= MAX_NUMBER
    ):
        raise TxlibError(f"{what} must be a whole number from {low:,} to {MAX_NUMBER:,}, "
                         f"got {shown(value)}")
    return value


# Sagas by name (scenarios refer to sagas by name, in JSON). The built-in ones are fixed;
# the ones defined in this session may be redefined, and never touch another name.
_BUILT_IN: dict[str, SagaDefinition] = {}
_DEFINITIONS: dict[str, SagaDefinition] = {}
_defining: list[SagaDefinition] | None = None  # inside built_ins(): the sagas defined
_resolving: dict[str, SagaDefinition] = {}  # inside resolving(): name -> the saga it means


@contextmanager
def built_ins() -> Iterator[None]:
    """The sagas defined in this block are built in (for txlib's own modules): their
    names are reserved, and their steps, stores and context are read-only once the block
    ends (see :mod:`.frozen`)."""
    global _defining
    outer, _defining = _defining, []
    try:
        yield
        for saga in _defining:
            saga.built_in = True
            saga.services = frozen(dict(saga.services))
            saga.context = frozen(dict(saga.context))
            saga.steps = frozen(saga.steps)
            saga.invariants = tuple(saga.invariants)
            _BUILT_IN[saga.name] = saga
    finally:
        _defining = outer


@contextmanager
def resolving(saga: SagaDefinition | None) -> Iterator[None]:
    """In this block, ``saga``'s name means ``saga``, whichever saga of that name is
    registered (None: nothing changes). A scenario made from a saga is checked and set
    up in such a block, so it runs that saga even after another one takes its name."""
    if saga is None:
        yield
        return
    outer = _resolving.get(saga.name)
    _resolving[saga.name] = saga
    try:
        yield
    finally:
        if outer is None:
            del _resolving[saga.name]
        else:
            _resolving[saga.name] = outer


def load_built_ins() -> dict[str, SagaDefinition]:
    """The built-in sagas by name (defining them on first use)."""
    from . import ecommerce, isolation  # noqa: F401  (they define the built-in sagas)

    return _BUILT_IN


def refuse_built_in_name(name: str) -> None:
    """A TxlibError if ``name`` is a built-in saga's (outside :func:`built_ins`)."""
    if _defining is None and name in load_built_ins():
        raise TxlibError(
            f"{name!r} is the name of a built-in saga: choose another name for yours "
            f"(built-in sagas: {choices(sorted(_BUILT_IN))})")


def register(saga: SagaDefinition) -> None:
    """Make ``saga`` findable by name. Defining a saga with the name of an earlier one
    of your own replaces it; a built-in saga's name is refused."""
    if _defining is not None:
        _defining.append(saga)
        return
    refuse_built_in_name(saga.name)
    _DEFINITIONS[saga.name] = saga


def get_saga(name: object) -> SagaDefinition:
    """The saga definition called ``name`` (built-in ones are always available; see
    :func:`resolving`)."""
    if isinstance(name, str) and name in _resolving:
        return _resolving[name]
    built_in = load_built_ins()
    if isinstance(name, str) and name in built_in:
        return built_in[name]
    if isinstance(name, str) and name in _DEFINITIONS:
        return _DEFINITIONS[name]
    names = sorted({*built_in, *_DEFINITIONS})
    raise TxlibError(
        f"unknown saga {shown(name)}{suggestion(name, names)}; valid choices: "
        f"{choices(names)}. A saga you defined yourself must be defined "
        "(txlib.Saga(...)) in this Python session before a scenario can use it."
    )
