"""Hypothesis strategies the property tests share."""

from __future__ import annotations

from collections.abc import Sequence

from hypothesis import strategies as st


@st.composite
def fault_timing(draw: st.DrawFn, nodes: Sequence[str], log_records: Sequence[str],
                 message_types: Sequence[str], max_step: int, max_time: int) -> dict:
    """When a fault fires: after a step, at a time, or when a trigger fires (a node logs
    one of ``log_records``, or sends or receives one of ``message_types``)."""
    how = draw(st.sampled_from(["at_step", "at_time", "when"]))
    if how == "at_step":
        return {"at_step": draw(st.integers(0, max_step))}
    if how == "at_time":
        return {"at_time": draw(st.integers(0, max_time))}
    node = draw(st.sampled_from(nodes))
    if draw(st.booleans()):
        return {"when": f"{node} logs {draw(st.sampled_from(log_records))}"}
    action = draw(st.sampled_from(["sends", "receives"]))
    return {"when": f"{node} {action} {draw(st.sampled_from(message_types))}"}
