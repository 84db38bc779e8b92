"""Engine settings shared by every protocol: the network model, crashes, and when a run stops."""

from __future__ import annotations

from dataclasses import dataclass, fields
from functools import cached_property
from typing import Any, ClassVar, TypeVar

from ..errors import TxlibError, bad_choice, shown

C = TypeVar("C", bound="EngineConfig")
# Budgets for numbers a learner types: a time or count above MAX_NUMBER, or more than
# MAX_STEPS scheduler steps, is refused with a clear message instead of running for hours.
MAX_NUMBER = 10**9
MAX_STEPS = 1_000_000
# How the name of a protocol's own timing option ends (vote_timeout, retry_interval, ...).
TIMING_SUFFIXES = ("_timeout", "_interval", "_gap")


@dataclass(frozen=True)
class EngineConfig:
    """Settings of the simulated world. Times are in simulated milliseconds.

    By default latency is bounded (``latency_min``..``latency_max``) and nothing is lost,
    duplicated or delayed beyond the bound, so a timeout longer than a round trip is a
    reliable failure detector. Each kind of network misbehaviour can be switched on:

    - ``loss``: probability that a message is lost;
    - ``duplicate``: probability that a message is delivered twice;
    - ``delay``: probability that a message is held ``delay_by`` beyond the bound;
    - ``reorder``: if False, messages between two nodes arrive in the order sent.

    ``lose_unforced``: a crash loses log records that were written lazily and not yet
    forced. ``horizon``: the run stops at this time even if events are pending (in-doubt
    nodes keep asking forever). ``max_steps``: a safety stop.
    """

    latency_min: int = 5
    latency_max: int = 15
    loss: float = 0.0
    duplicate: float = 0.0
    delay: float = 0.0
    delay_by: int = 100
    reorder: bool = True
    lose_unforced: bool = True
    horizon: int = 1000
    max_steps: int = 100_000

    # Whole-number options that must be at least 1 (the others: at least 0). Subclasses
    # add theirs; every whole-number option is at most MAX_NUMBER (MAX_STEPS for max_steps).
    AT_LEAST_ONE: ClassVar[frozenset[str]] = frozenset({"latency_min", "max_steps"})

    def __post_init__(self) -> None:
        for name, kind, low, high in _checks(type(self)):
            value = getattr(self, name)
            if kind == "bool" and not isinstance(value, bool):
                raise TxlibError(f"option {name} must be True or False, got {shown(value)}")
            if kind == "int" and (not isinstance(value, int) or isinstance(value, bool)):
                raise TxlibError(f"option {name} must be a whole number, got {shown(value)}")
            if kind == "float":
                if isinstance(value, bool) or not isinstance(value, (int, float)):
                    raise TxlibError(f"option {name} must be a probability, "
                                     f"got {shown(value)}")
                if not 0.0 <= value <= 1.0:
                    raise TxlibError(f"option {name} must be between 0 and 1, "
                                     f"got {shown(value)}")
            if kind == "int":
                if value < low:
                    raise TxlibError(f"option {name} must be at least {low}, "
                                     f"got {shown(value)}")
                if value > high:
                    raise TxlibError(f"option {name} must be at most {high:,}, "
                                     f"got {shown(value)}")
        if self.latency_max < self.latency_min:
            raise TxlibError(
                f"option latency_max ({self.latency_max}) must be at least "
                f"latency_min ({self.latency_min})"
            )

    @cached_property
    def plain_network(self) -> bool:
        """True if the network never loses, duplicates or delays a message at random
        (then a send with no partition or message fault about takes a short cut)."""
        return not (self.loss or self.duplicate or self.delay)

    @cached_property
    def latencies(self) -> tuple[int, int]:
        """(the least latency, how many latencies there are), for a send's draw."""
        return self.latency_min, self.latency_max - self.latency_min + 1

    @classmethod
    def option_names(cls) -> tuple[str, ...]:
        names = _NAMES.get(cls)
        if names is None:
            names = _NAMES[cls] = tuple(name for name, _, _, _ in _checks(cls))
        return names

    @classmethod
    def from_options(cls: type[C], options: dict[str, Any]) -> C:
        """Build a config from keyword options, naming any unknown option."""
        valid = cls.option_names()
        for key in options:
            if key not in valid:
                raise bad_choice("option", key, valid)
        config = cls(**options)
        if "delay_by" in options and not config.delay:  # it sizes the random delays only
            raise TxlibError("option delay_by changes nothing unless delay (the chance "
                             "that a message is held back) is above 0; to hold messages "
                             "back on purpose, use the fault txlib.delay(...)")
        return config



# Per config class: (name, type, lowest, highest) of each option, worked out once.
_CHECKS: dict[type, tuple[tuple[str, Any, int, int], ...]] = {}
_NAMES: dict[type, tuple[str, ...]] = {}


def _checks(cls: type[EngineConfig]) -> tuple[tuple[str, Any, int, int], ...]:
    checks = _CHECKS.get(cls)
    if checks is None:
        at_least_one = frozenset().union(
            *(getattr(k, "AT_LEAST_ONE", frozenset()) for k in cls.__mro__))
        checks = _CHECKS[cls] = tuple(
            (f.name, f.type, 1 if f.name in at_least_one else 0,
             MAX_STEPS if f.name == "max_steps" else MAX_NUMBER)
            for f in fields(cls))
    return checks
