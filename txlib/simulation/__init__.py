"""Simulating a protocol: a :class:`Scenario` (everything a run depends on) and the
:class:`Run` it gives; :class:`Saga` is a saga definition that simulates itself."""

from .run import Run, history_of_world
from .saga import Saga
from .scenario import Scenario, participant_names, simulate

__all__ = ["Run", "Saga", "Scenario", "history_of_world", "participant_names", "simulate"]
