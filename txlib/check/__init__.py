"""Invariants, metrics and outcomes, each defined once and computed from a trace."""

from .invariants import Violation, check_all
from .metrics import Metrics, measure
from .outcome import OUTCOMES, outcome

__all__ = ["OUTCOMES", "Metrics", "Violation", "check_all", "measure", "outcome"]
