"""Events and the changes they announce: nothing lost, nothing invented.

A service that commits a change must publish the event announcing it (else the event
is **lost**: nobody acts on it), and an event must never be published for a change
that never committed (an **invented** event: others act on a change that never
happened). The transactional outbox guarantees both; these checks show what breaks
without it.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import NamedTuple

from .violation import Violation

EVENT_INVARIANTS: tuple[str, ...] = ("lost event", "invented event")


class Committed(NamedTuple):
    """A change that committed at ``service``, announced by ``event`` (``what`` says
    what it was, in words)."""

    service: str
    event: str
    what: str


def outbox_violations(
    committed: Sequence[Committed], published: Sequence[str], *, can_lose: bool,
    publisher: Callable[[str], str], subscribers: Callable[[str], Sequence[str]],
    last_step: int = 0,
) -> list[Violation]:
    """Lost events (committed, never published; only when ``can_lose``: with an outbox
    the relay publishes them eventually) and invented events (published, never
    committed), in that order."""
    out: list[Violation] = []
    sent = set(published)
    if can_lose:
        for c in committed:
            if c.event not in sent:
                out.append(Violation("lost event", last_step, (
                    f"{c.service} committed {c.what}, but its event {c.event} never "
                    "reached the broker (a crash between the commit and the publish): "
                    "nobody acted on it, and the saga stopped there")))
    done = {c.event for c in committed}
    for event in published:
        if event in done:
            continue
        who = " and ".join(subscribers(event)) or "nobody"
        out.append(Violation("invented event", last_step, (
            f"{event} was published, but {publisher(event)} never committed it (a crash "
            f"between the publish and the commit): {who} acted on a change that never "
            "happened")))
    return out
