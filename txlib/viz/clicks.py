"""Faults from clicks on the lab's space-time diagram, without any widget.

A learner clicks a message in flight at the cursor to drop, duplicate or delay it, or a
node's header to crash or restart it. The lab's front end sends what was clicked as a
small JSON object; :func:`read_click` checks it (anything malformed raises
:class:`~txlib.errors.TxlibError`), :func:`click_targets` tells the front end which marks
can be clicked at the cursor, and :func:`message_fault_candidates` / :func:`aimed` turn a
click on a message into a fault of the plan that hits that message and no other.

The network decides a message's fate when it is sent (:mod:`txlib.engine.network`), so a
fault on a message in flight is a message fault that turns on just before the step that
sent it, matching its type, sender and receiver once: replaying the plan, that message
is the first to match. Whether it is, is checked on the replay (:func:`aimed`).
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

from ..engine.faults import Fault, delay, drop, duplicate
from ..engine.records import Message, TraceEvent
from ..errors import TxlibError, bad_choice, shown
from .frames import last_index_of_step
from .traceindex import index_of

MESSAGE_ACTIONS = ("drop", "duplicate", "delay")
NODE_ACTIONS = ("crash", "recover")
CLICK_ACTIONS = (*MESSAGE_ACTIONS, *NODE_ACTIONS)
DELAY_BY = 100  # ms a click delays a message by (as the fault panel's "delay-to")
EARLIEST = 4  # how many steps before a message's send its fault may turn on
CLICK_KEYS = frozenset({"action", "step", "message", "node"})


@dataclass(frozen=True)
class Click:
    """What the front end says was clicked: an action on a message (its id) or a node,
    at the step the learner was looking at."""

    action: str
    step: int
    message: int | None = None
    node: str | None = None


def read_click(content: object) -> Click:
    """Check a click message from the front end, e.g. ``{"action": "drop", "step": 4,
    "message": 7}`` or ``{"action": "crash", "step": 4, "node": "p1"}``."""
    if not isinstance(content, dict):
        raise TxlibError(f"a click is a JSON object like {{'action': 'drop', 'step': 3, "
                         f"'message': 5}}, got {shown(content)}")
    for key in content:
        if key not in CLICK_KEYS:
            raise bad_choice("click field", key, sorted(CLICK_KEYS))
    action = content.get("action")
    if not isinstance(action, str) or action not in CLICK_ACTIONS:
        raise bad_choice("click action", action, CLICK_ACTIONS)
    step = content.get("step")
    if not isinstance(step, int) or isinstance(step, bool) or step < 0:
        raise TxlibError(f"a click names the step it was made at, a whole number of 0 or "
                         f"more; got {shown(step)}")
    message, node = content.get("message"), content.get("node")
    if action in MESSAGE_ACTIONS:
        if not isinstance(message, int) or isinstance(message, bool) or message < 1:
            raise TxlibError(f"'{action}' is done to a message: give its number (1 or more) "
                             f"as 'message', got {shown(message)}")
        if node is not None:
            raise TxlibError(f"'{action}' is done to a message, not to a node; got node "
                             f"{shown(node)}")
        return Click(action, step, message=message)
    if not isinstance(node, str) or not node:
        raise TxlibError(f"'{action}' is done to a node: give its name as 'node', got "
                         f"{shown(node)}")
    if message is not None:
        raise TxlibError(f"'{action}' is done to a node, not to a message; got message "
                         f"{shown(message)}")
    return Click(action, step, node=node)


# --- what can be clicked at the cursor -----------------------------------------------------
@dataclass(frozen=True)
class Flying:
    """A message in flight at the cursor, with the step that sent it."""

    message: Message
    sent_step: int


def in_flight(trace: Sequence[TraceEvent], cursor: int) -> list[Flying]:
    """The messages sent at or before step ``cursor`` and neither delivered nor lost by
    then, in the order they were sent (network duplicates included, as copy 1)."""
    index = index_of(trace)
    flying = []
    for p in index.in_flight(trace, index.last_of_step(cursor)):
        e = trace[p]
        assert e.message is not None  # a send
        flying.append(Flying(e.message, e.step))
    return flying


def message_label(m: Message) -> str:
    """How a clickable message is named to a screen reader: ``PREPARE coordinator → p1``."""
    return f"message {m.id}, {m.type} from {m.src} to {m.dst}, in flight"


def click_targets(trace: Sequence[TraceEvent], nodes: Sequence[str], cursor: int,
                  editable: bool) -> dict[str, Any]:
    """What the front end may make clickable at ``cursor`` (plain JSON): the messages in
    flight (not a network's second copy), every node with whether it is up, and whether
    the run can be edited at all (a recorded run cannot)."""
    cut = last_index_of_step(trace, cursor)
    down = trace[cut].down if cut >= 0 else frozenset()
    messages = [{"id": f.message.id, "label": message_label(f.message)}
                for f in in_flight(trace, cursor) if not f.message.copy]
    return {"step": cursor, "editable": editable, "messages": messages,
            "nodes": [{"name": n, "up": n not in down} for n in nodes]}


def node_is_up(trace: Sequence[TraceEvent], node: str, cursor: int) -> bool:
    cut = last_index_of_step(trace, cursor)
    return cut < 0 or node not in trace[cut].down


# --- a fault that hits one message ---------------------------------------------------------
def find_flying(trace: Sequence[TraceEvent], cursor: int, message: int) -> Flying:
    """The original (not a duplicate's copy) of message ``message`` in flight at
    ``cursor``, or a TxlibError saying which messages are."""
    flying = in_flight(trace, cursor)
    for f in flying:
        if f.message.id == message and not f.message.copy:
            return f
    if any(f.message.id == message for f in flying):
        raise TxlibError(f"message {message} in flight now is the network's second copy; "
                         "a fault is aimed at a message as it is sent, so click its "
                         "original (or use the fault panel)")
    ids = sorted({f.message.id for f in flying if not f.message.copy})
    now = ", ".join(str(i) for i in ids) if ids else "none"
    raise TxlibError(f"message {message} is not in flight at step {cursor} (in flight: "
                     f"{now})")


def message_fault_candidates(action: str, flying: Flying) -> Iterator[Fault]:
    """Faults that may hit ``flying``'s message alone, latest first: on once, matching its
    type, sender and receiver, turned on 1, 2, ... steps before the step that sent it."""
    m = flying.message
    for back in range(1, EARLIEST + 1):
        at = flying.sent_step - back
        if at < 0:
            return
        if action == "drop":
            yield drop(m.type, src=m.src, dst=m.dst, at_step=at)
        elif action == "duplicate":
            yield duplicate(m.type, src=m.src, dst=m.dst, at_step=at)
        elif action == "delay":
            yield delay(DELAY_BY, m.type, src=m.src, dst=m.dst, at_step=at)
        else:
            raise bad_choice("message action", action, MESSAGE_ACTIONS)


def _fate(trace: Sequence[TraceEvent], m: Message) -> TraceEvent | None:
    for e in trace:
        if e.kind in ("deliver", "drop") and e.message is not None and (
                e.message.id, e.message.copy) == (m.id, 0):
            return e
    return None


def aimed(fault: Fault, flying: Flying, before: Sequence[TraceEvent],
          after: Sequence[TraceEvent]) -> bool:
    """True if ``fault``, added to the plan of the run whose trace was ``before``, hit
    ``flying``'s message in the replay whose trace is ``after`` (and no message sent
    between the fault turning on and it)."""
    m = flying.message
    sent = next((e for e in after if e.kind == "send" and e.message is not None
                 and e.message.id == m.id), None)
    if sent is None or sent.message is None or sent.step != flying.sent_step or (
            sent.message.src, sent.message.dst, sent.message.type) != (m.src, m.dst, m.type):
        return False  # the run changed before the message was sent
    position = next(i for i, e in enumerate(after) if e is sent)
    earlier = [e for e in after[:position] if e.kind == "send" and e.message is not None
               and fault.at_step is not None and e.step > fault.at_step
               and (e.message.src, e.message.dst, e.message.type) == (m.src, m.dst, m.type)]
    if earlier:
        return False  # an earlier message would match first
    if fault.kind == "drop":
        lost = _fate(after, m)
        return lost is not None and lost.kind == "drop" and lost.detail == (
            f"lost (fault: {fault.describe()})")
    if fault.kind == "duplicate":
        def copies(trace: Sequence[TraceEvent]) -> int:
            return sum(1 for e in trace if e.kind == "duplicate" and e.message is not None
                       and e.message.id == m.id)
        return copies(after) > copies(before)
    was, now = _fate(before, m), _fate(after, m)
    return was is None or now is None or now.time > was.time
