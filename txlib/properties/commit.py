"""Atomic commitment: its safety invariants over a whole trace, and a run's outcome.

- **atomicity** (agreement): no two nodes ever decide differently;
- **stability**: once a node has decided, its decision never changes;
- **validity**: a node decides commit only if every participant has voted YES.

Each violation carries the step where it first became true and a plain-language reason.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence

from ..engine.records import TraceEvent
from .violation import Violation
from .violation import past as _past

INVARIANTS: tuple[str, ...] = ("atomicity", "stability", "validity")
OUTCOMES: tuple[str, ...] = ("committed", "aborted", "blocked", "inconsistent")


def disagreement(ever: Mapping[str, Collection[str]]) -> tuple[str, str] | None:
    """``(a, b)`` where node ``a`` committed while node ``b`` aborted, or None.

    ``ever`` maps each node to every decision it has taken so far. This is atomicity as
    a property of a state: the trace check below and the explorer's states both use it.
    """
    for a, values in ever.items():
        if "commit" in values:
            for b, others in ever.items():
                if b != a and "abort" in others:
                    return a, b
    return None


def atomicity(trace: Sequence[TraceEvent]) -> list[Violation]:
    """The first decision that disagrees with an earlier one, if any."""
    first: dict[str, tuple[str, int]] = {}
    for e in trace:
        if e.kind != "decision" or e.node is None:
            continue
        ever = {n: (v,) for n, (v, _) in first.items() if n != e.node}
        ever[e.node] = (e.detail,)
        pair = disagreement(ever)
        if pair is not None:
            other = pair[1] if pair[0] == e.node else pair[0]
            value, step = first[other]
            return [Violation(
                "atomicity", e.step,
                f"{e.node} {_past(e.detail)} at step {e.step} "
                f"while {other} {_past(value)} at step {step}",
            )]
        first.setdefault(e.node, (e.detail, e.step))
    return []


def stability(trace: Sequence[TraceEvent]) -> list[Violation]:
    """Every node whose decision changed, at the step it changed."""
    seen: dict[str, tuple[str, int]] = {}
    out: list[Violation] = []
    for e in trace:
        if e.kind != "decision" or e.node is None:
            continue
        before = seen.get(e.node)
        if before is None:
            seen[e.node] = (e.detail, e.step)
        elif before[0] != e.detail:
            out.append(Violation(
                "stability", e.step,
                f"{e.node} {_past(before[0])} at step {before[1]}, "
                f"then {_past(e.detail)} at step {e.step}",
            ))
            seen[e.node] = (e.detail, e.step)
    return out


def validity(trace: Sequence[TraceEvent], participants: Sequence[str]) -> list[Violation]:
    """A commit decision taken before every participant voted YES."""
    votes: dict[str, str] = {}
    for e in trace:
        if e.kind == "vote" and e.node is not None:
            votes.setdefault(e.node, e.detail)
        elif e.kind == "decision" and e.detail == "commit":
            missing = [p for p in participants if votes.get(p) != "yes"]
            if missing:
                p = missing[0]
                why = "voted NO" if votes.get(p) == "no" else "had not voted YES"
                return [Violation(
                    "validity", e.step,
                    f"{e.node} committed at step {e.step} but {p} {why}",
                )]
    return []


def check_all(trace: Sequence[TraceEvent], participants: Sequence[str]) -> list[Violation]:
    """Every violation in ``trace``, ordered by step."""
    found = [*atomicity(trace), *stability(trace), *validity(trace, participants)]
    return sorted(found, key=lambda v: (v.step, INVARIANTS.index(v.invariant)))


def commit_outcome(
    decisions: Mapping[str, str | None], participants: Sequence[str], down: Collection[str]
) -> str:
    """Classify a finished commit-protocol run.

    - ``inconsistent``: two nodes decided differently (atomicity is broken);
    - ``blocked``: some participant that is up has not decided (it is stuck in doubt),
      or nobody has decided anything;
    - ``committed`` / ``aborted``: every live participant decided, all the same way.
      A participant that is down may still be undecided: it learns on recovery.
    """
    values = set(decisions.values())
    values.discard(None)
    if len(values) > 1:
        return "inconsistent"
    if not values:
        return "blocked"
    for p in participants:
        if decisions.get(p) is None and p not in down:
            return "blocked"
    return "committed" if "commit" in values else "aborted"
