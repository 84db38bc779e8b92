"""Clicks on the lab's space-time diagram: what the front end may click at a step, and
the fault each click adds (bad clicks are in tests/test_bad_inputs.py)."""

from __future__ import annotations

from typing import Any

import pytest

import txlib
from txlib import TxlibError
from txlib.viz.clickable import FRONT_END, click_bridge
from txlib.viz.clicks import click_targets, in_flight
from txlib.viz.lab import LabModel
from txlib.viz.widgets import Lab


def model(name: str = "seed-transfer", step: int = 0) -> LabModel:
    m = LabModel.of(txlib.scenario(name))
    m.move(step)
    return m


def flying(m: LabModel) -> dict[int, tuple[str, str, str]]:
    return {f.message.id: (f.message.type, f.message.src, f.message.dst)
            for f in in_flight(m.run.trace, m.cursor)}


def test_in_flight_lists_what_is_sent_and_not_yet_delivered() -> None:
    m = model(step=1)
    assert flying(m) == {1: ("PREPARE", "coordinator", "AccountA"),
                         2: ("PREPARE", "coordinator", "AccountB")}
    m.move(3)
    assert sorted(flying(m)) == [3, 4]
    m.move(m.last_step)
    assert flying(m) == {}


def test_targets_name_the_messages_in_flight_and_the_nodes_up_or_down() -> None:
    m = model("2pc-coordinator-crash-blocks")
    down_at = next(s for s in range(m.last_step + 1)
                   if "coordinator" in m.run.trace[-1].down
                   and not all(n["up"] for n in click_targets(m.run.trace, m.run.nodes, s,
                                                              True)["nodes"]))
    targets = click_targets(m.run.trace, m.run.nodes, down_at, editable=True)
    assert targets["step"] == down_at and targets["editable"] is True
    assert {n["name"]: n["up"] for n in targets["nodes"]}["coordinator"] is False
    assert all(set(t) == {"id", "label"} for t in targets["messages"])
    m = model(step=1)
    labels = [t["label"] for t in click_targets(m.run.trace, m.run.nodes, 1, True)["messages"]]
    assert labels == ["message 1, PREPARE from coordinator to AccountA, in flight",
                      "message 2, PREPARE from coordinator to AccountB, in flight"]


def test_dropping_a_prepare_in_flight_aborts_and_only_that_message_is_lost() -> None:
    m = model(step=1)
    assert m.run.outcome == "committed"
    note = m.click({"action": "drop", "step": 1, "message": 1})
    assert note.startswith("added: drop 1x PREPARE from coordinator to AccountA after step 0")
    assert "message 1" in note and m.cursor == 1
    assert m.run.outcome == "aborted"
    lost = [e.message.id for e in m.run.trace if e.kind == "drop" and e.message is not None]
    assert lost == [1]
    assert not m.run.unfired_faults


def test_a_decision_lost_while_the_coordinator_is_down_leaves_a_participant_in_doubt() -> None:
    # The coordinator crashes right after sending its decision: a participant whose
    # COMMIT is lost in flight cannot learn the outcome until the coordinator is back.
    m = LabModel.of(txlib.Scenario("2pc", participants=2, faults=(
        txlib.crash("coordinator", when="coordinator sends COMMIT to p2"),)))
    commit_to_p1 = next(e for e in m.run.trace if e.kind == "send" and e.message is not None
                        and e.message.type == "COMMIT" and e.message.dst == "p1")
    assert commit_to_p1.message is not None
    m.move(commit_to_p1.step)
    assert m.run.outcome == "committed" and m.run.decisions["p1"] == "commit"
    m.click({"action": "drop", "step": m.cursor, "message": commit_to_p1.message.id})
    assert m.run.decisions["p1"] is None  # in doubt, holding its locks
    assert m.run.outcome == "blocked"


def test_duplicate_and_delay_hit_the_clicked_message() -> None:
    m = model(step=6)
    m.click({"action": "duplicate", "step": 6, "message": 5})
    copies = [e for e in m.run.trace if e.kind == "deliver" and e.message is not None
              and e.message.id == 5]
    assert sorted(e.message.copy for e in copies if e.message is not None) == [0, 1]
    m.undo()
    arrival = next(e.time for e in m.run.trace if e.kind == "deliver"
                   and e.message is not None and e.message.id == 5)
    m.click({"action": "delay", "step": 6, "message": 5})
    later = next(e.time for e in m.run.trace if e.kind == "deliver"
                 and e.message is not None and e.message.id == 5)
    assert later >= arrival + 100
    assert [f.kind for f in m.scenario.faults] == ["delay"]


def test_a_message_sent_by_a_restart_is_hit_by_a_fault_turned_on_earlier() -> None:
    m = model("2pc-coordinator-crash-blocks")
    down = next(s for s in range(m.last_step + 1)
                if not click_targets(m.run.trace, m.run.nodes, s, True)["nodes"][0]["up"])
    m.move(down)
    m.click({"action": "recover", "step": down, "node": "coordinator"})
    sent = [e for e in m.run.trace if e.kind == "send" and e.message is not None
            and e.message.type == "COMMIT" and e.step == down + 1]
    assert len(sent) == 3  # the restarted coordinator resends its decision to all
    target = sent[-1].message
    assert target is not None
    m.move(down + 1)
    note = m.click({"action": "drop", "step": down + 1, "message": target.id})
    assert f"message {target.id}" in note
    lost = [e.message.id for e in m.run.trace if e.kind == "drop" and e.message is not None]
    assert lost == [target.id]


def test_node_clicks_crash_and_restart() -> None:
    m = model(step=3)
    m.click({"action": "crash", "step": 3, "node": "coordinator"})
    assert m.run.outcome == "blocked"
    m.move(4)
    m.click({"action": "recover", "step": 4, "node": "coordinator"})
    assert [f.describe() for f in m.scenario.faults] == [
        "crash coordinator after step 3", "recover coordinator after step 4"]
    assert m.run.outcome in ("committed", "aborted")
    with pytest.raises(TxlibError, match="already down"):
        m.move(4)
        m.undo()
        m.click({"action": "crash", "step": 4, "node": "coordinator"})


def test_a_bad_click_changes_nothing() -> None:
    m = model(step=1)
    before = (m.scenario, m.run, m.cursor)
    with pytest.raises(TxlibError):
        m.click({"action": "drop", "step": 1, "message": 42})
    assert (m.scenario, m.run, m.cursor) == before


# --- the widget -------------------------------------------------------------------------
def test_the_lab_keeps_its_front_end_told_what_can_be_clicked() -> None:
    lab = txlib.lab("seed-transfer")
    assert lab.clicks is not None and lab.clicks in lab.widget.children
    assert lab.clicks.targets["messages"] == []
    lab.go(1)
    assert [t["id"] for t in lab.clicks.targets["messages"]] == [1, 2]
    assert "export default" in FRONT_END.read_text() and "txlab-diagram" in lab.clicks._esm


def test_a_message_from_the_front_end_injects_and_a_bad_one_is_shown_not_raised() -> None:
    lab = txlib.lab("seed-transfer")
    lab.go(1)
    lab.clicks._handle_custom_msg({"action": "drop", "step": 1, "message": 1}, [])
    assert "added: drop 1x PREPARE" in lab.message.value
    lab.to_end()
    assert "aborted" in lab.status.value
    lab.clicks._handle_custom_msg({"action": "explode"}, [])
    assert "⚠" in lab.message.value and "explode" in lab.message.value
    with pytest.raises(TxlibError, match="explode"):
        lab.click({"action": "explode"})


def test_a_recorded_run_offers_no_click() -> None:
    run = txlib.scenario("2pc-happy").run()
    lab = Lab.of_run(run)
    assert lab.clicks is not None and lab.clicks.targets["editable"] is False


def test_without_anywidget_the_lab_has_only_its_panel(monkeypatch: pytest.MonkeyPatch) -> None:
    import txlib.viz.clickable as clickable
    import txlib.viz.widgets as widgets

    monkeypatch.setattr(widgets, "click_bridge", lambda _on_click: None)
    lab = txlib.lab("seed-transfer")
    assert lab.clicks is None
    assert any("inject at this step" in getattr(b, "description", "")
               for b in _walk(lab.widget))
    assert clickable.click_bridge(lambda _c: None) is not None  # the real one, untouched


def _walk(widget: Any) -> list[Any]:
    out = [widget]
    for child in getattr(widget, "children", ()):
        out += _walk(child)
    return out


def test_click_bridge_is_none_without_anywidget(monkeypatch: pytest.MonkeyPatch) -> None:
    import builtins

    import txlib.viz.clickable as clickable

    real_import = builtins.__import__

    def no_anywidget(name: str, *args: Any, **kwargs: Any) -> Any:
        if name == "anywidget":
            raise ImportError(name)
        return real_import(name, *args, **kwargs)

    clickable._bridge_class.cache_clear()
    monkeypatch.setattr(builtins, "__import__", no_anywidget)
    try:
        assert click_bridge(lambda _c: None) is None
    finally:
        monkeypatch.undo()
        clickable._bridge_class.cache_clear()
    assert click_bridge(lambda _c: None) is not None
