"""One broken safety property, and how a decision is said in the past tense."""

from __future__ import annotations

from dataclasses import dataclass

PAST: dict[str, str] = {"commit": "committed", "abort": "aborted"}


def past(decision: str) -> str:
    """``"commit"`` -> ``"committed"`` (other decisions are kept as they are)."""
    return PAST.get(decision, decision)


@dataclass(frozen=True)
class Violation:
    """One broken invariant: which, where (step), and why in words."""

    invariant: str
    step: int
    reason: str

    def __str__(self) -> str:
        return f"{self.invariant} violated: {self.reason}"
