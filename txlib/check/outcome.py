"""The outcome of a commit-protocol run, from the final decisions and who is up."""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence

OUTCOMES: tuple[str, ...] = ("committed", "aborted", "blocked", "inconsistent")


def outcome(
    decisions: Mapping[str, str | None], participants: Sequence[str], down: Collection[str]
) -> str:
    """Classify a finished run.

    - ``inconsistent``: two nodes decided differently (atomicity is broken);
    - ``blocked``: some participant that is up has not decided (it is stuck in doubt),
      or nobody has decided anything;
    - ``committed`` / ``aborted``: every live participant decided, all the same way.
      A participant that is down may still be undecided: it learns on recovery.
    """
    values = {d for d in decisions.values() if d is not None}
    if len(values) > 1:
        return "inconsistent"
    if not values or any(decisions.get(p) is None and p not in down for p in participants):
        return "blocked"
    return "committed" if "commit" in values else "aborted"
