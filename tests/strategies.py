"""Hypothesis strategies the property tests share."""

from __future__ import annotations

import functools
from collections.abc import Mapping, Sequence

from hypothesis import strategies as st

from txlib.protocols import get_protocol


@functools.cache
def roles_of(protocol: str, participants: tuple[str, ...],
             options: tuple[tuple[str, object], ...] = ()
             ) -> dict[str, tuple[list[str], list[str]]]:
    """Each node's own log records and the message types it receives: what a trigger on
    that node may name (txlib refuses one that could never fire)."""
    proto = get_protocol(protocol)
    roster = proto.roster(participants, dict(options))
    config = proto.make_config(participants, dict(options))
    return {name: (sorted(role.record_types or ()), sorted(role.message_types()))
            for name, role in proto.build(roster, config)}


@st.composite
def fault_timing(draw: st.DrawFn, nodes: Sequence[str], log_records: Sequence[str],
                 message_types: Sequence[str], max_step: int, max_time: int,
                 roles: Mapping[str, tuple[list[str], list[str]]] | None = None) -> dict:
    """When a fault fires: after a step, at a time, or when a trigger fires (a node logs
    one of ``log_records``, or sends or receives one of ``message_types``; with
    ``roles`` (see :func:`roles_of`), only a record or type of that node's own)."""
    how = draw(st.sampled_from(["at_step", "at_time", "when"]))
    if how == "at_step":
        return {"at_step": draw(st.integers(0, max_step))}
    if how == "at_time":
        return {"at_time": draw(st.integers(0, max_time))}
    node = draw(st.sampled_from(nodes))
    records, received = (roles or {}).get(node, (list(log_records), list(message_types)))
    if records and draw(st.booleans()):
        return {"when": f"{node} logs {draw(st.sampled_from(records))}"}
    action = draw(st.sampled_from(["sends", "receives"]))
    types = received if action == "receives" else message_types
    return {"when": f"{node} {action} {draw(st.sampled_from(list(types)))}"}
