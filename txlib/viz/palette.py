"""One colour language for every protocol's messages (lesson 00's legend).

Okabe–Ito colours, distinguishable with every common colour-vision deficiency:

- **blue**: commands and requests, and the votes and replies to them;
- **green**: commit decisions and acknowledgements;
- **vermilion**: failures (NO, ABORT, a failed step);
- **reddish purple**: compensations (undo, cancel);
- **sky blue**: questions (a participant asking what was decided).

A message's kind is read from its type and, for sagas, the step or event it names, so
a new protocol gets the language by naming its messages plainly. Colour is never the
only carrier: every arrow is labelled with its type.
"""

from __future__ import annotations

from typing import Any

BLUE, ORANGE, GREEN, VERMILION = "#0072B2", "#E69F00", "#009E73", "#D55E00"
SKY, PURPLE, YELLOW = "#56B4E9", "#CC79A7", "#F0E442"

KIND_COLOURS = {
    "command": BLUE,
    "reply": BLUE,
    "decision": GREEN,
    "failure": VERMILION,
    "compensation": PURPLE,
    "question": SKY,
}
KIND_WORDS = {
    "command": "command or request",
    "reply": "vote or reply",
    "decision": "commit decision or acknowledgement",
    "failure": "failure",
    "compensation": "compensation",
    "question": "question",
}

_DECISIONS = {"COMMIT", "DO_COMMIT", "CONFIRM", "ACK", "PUBACK", "COMMITTED", "CONFIRMED"}
_FAILURES = {"NO", "ABORT", "FAIL", "NACK", "TRY_FAILED", "UNDO_FAIL", "ABORTED", "REJECT"}
_COMPENSATIONS = {"UNDO", "UNDONE", "CANCEL", "COMPENSATE", "COMPENSATED", "CANCELLED"}
_QUESTIONS = {"DECISION_REQ", "STATE_REQ", "STATE", "QUERY", "INQUIRY"}
_REPLIES = {"YES", "OK", "TRIED", "VOTE", "DONE", "READY_ACK"}


def message_kind(type_: str, payload: dict[str, Any] | None = None) -> str:
    """``command``, ``reply``, ``decision``, ``failure``, ``compensation`` or
    ``question`` for a message of ``type_`` (and the saga step or event it carries)."""
    about = ""
    if payload:
        named = payload.get("event", payload.get("step"))
        about = named.lower() if isinstance(named, str) else ""
    upper = type_.upper()
    if upper in _FAILURES or upper.endswith(("_FAIL", "_FAILED")) or about.endswith(
            ("_failed", "compensation_failed")):
        return "failure"
    if upper in _COMPENSATIONS or "compensat" in about:
        return "compensation"
    if upper in _QUESTIONS or upper.endswith("_REQ"):
        return "question"
    if upper in _DECISIONS:
        return "decision"
    if upper in _REPLIES:
        return "reply"
    return "command"


def message_colour(type_: str, payload: dict[str, Any] | None = None) -> str:
    return KIND_COLOURS[message_kind(type_, payload)]
