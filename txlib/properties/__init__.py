"""Judging a run: one module per family of properties, each over plain values.

- :mod:`.commit`: atomic commitment (atomicity, stability, validity; the outcome);
- :mod:`.saga`: sagas (idempotency, semantic atomicity, domain rules; the outcome);
- :mod:`.events`: events and the changes they announce (lost and invented events);
- :mod:`.tcc`: try-confirm-cancel (conservation, null compensation, hanging, ...);
- :mod:`.metrics`: what a run cost (messages, delays, forced writes, blocked time).

A :class:`History` is what they judge: simulated runs, the explorer's states and runs
over real processes all build one, so every check is written once.
"""

from .commit import INVARIANTS, OUTCOMES, check_all, commit_outcome, disagreement
from .history import History, Verdict
from .metrics import Metrics, measure
from .violation import Violation, past

__all__ = ["INVARIANTS", "OUTCOMES", "History", "Metrics", "Verdict", "Violation", "check_all",
           "commit_outcome", "disagreement", "measure", "past"]
