"""The space-time diagram's structure: one mark per thing that happened, nothing more."""

from __future__ import annotations

import itertools
import xml.etree.ElementTree as ET

import pytest

import txlib
from txlib.viz.spacetime import spacetime_svg

NS = {"s": "http://www.w3.org/2000/svg"}


def parse(svg: str) -> ET.Element:
    return ET.fromstring(svg)


def groups(root: ET.Element, *classes: str) -> list[ET.Element]:
    """Elements whose class list contains all of ``classes``."""
    return [el for el in root.iter()
            if set(classes) <= set((el.get("class") or "").split())]


def count(run: txlib.Run, kind: str) -> int:
    return len(run.trace.of_kind(kind))


@pytest.mark.parametrize("name", ["2pc-happy", "2pc-participant-crash-prepared",
                                  "2pc-lost-vote", "3pc-partition-split"])
def test_one_arrow_per_delivery_and_one_cross_per_drop(name):
    run = txlib.scenario(name).run()
    root = parse(spacetime_svg(run.trace, window=None))
    assert len(groups(root, "msg", "delivered")) == count(run, "deliver")
    assert len(groups(root, "msg", "dropped")) == count(run, "drop")
    assert len(groups(root, "cross")) == count(run, "drop")
    assert len(groups(root, "mark", "crash")) == count(run, "crash")
    assert len(groups(root, "mark", "recover")) == count(run, "recover")
    assert len(groups(root, "mark", "decision")) == count(run, "decision")
    assert len(groups(root, "log")) == count(run, "log")


def test_every_message_has_a_tooltip_with_its_payload():
    run = txlib.scenario("seed-transfer").run()
    root = parse(spacetime_svg(run.trace, window=None))
    prepare = next(g for g in groups(root, "msg") if g.get("data-type") == "PREPARE")
    tip = prepare.find("s:title", NS).text
    assert "coordinator -> AccountA PREPARE" in tip and "tx='TX-001'" in tip


def test_duplicates_are_marked_distinctly():
    run = txlib.simulate("2pc", faults=[txlib.duplicate("COMMIT", count=None)])
    root = parse(spacetime_svg(run.trace, window=None))
    dups = groups(root, "msg", "dup")
    assert len(dups) == count(run, "duplicate") == 3
    labels = [g for g in groups(root, "msg-label") if g.get("data-copy") == "1"]
    assert len(labels) == 3 and all("×2" in "".join(g.itertext()) for g in labels)


def test_current_step_is_highlighted_and_the_future_hidden():
    run = txlib.simulate("2pc")
    step = 5
    root = parse(spacetime_svg(run.trace, step=step))
    current = groups(root, "current")
    assert current and all(step in (int(g.get("data-step")), int(g.get("data-end-step", -1)))
                           for g in current)
    steps = [int(el.get(a)) for el in root.iter() for a in ("data-step", "data-end-step")
             if el.get(a)]
    assert max(steps) == step, "nothing after the current step is drawn"
    assert any("step 5" in (t.text or "") for t in root.iter(f"{{{NS['s']}}}text"))


def test_fading_keeps_later_events_but_dims_them():
    run = txlib.simulate("2pc")
    root = parse(spacetime_svg(run.trace, step=3, future="fade"))
    faded = groups(root, "faded")
    assert faded and all(int(g.get("data-step")) > 3 for g in faded)
    assert len(groups(root, "msg")) == count(run, "send")


def test_in_doubt_and_lock_bars_partition_bands():
    blocked = txlib.scenario("2pc-coordinator-crash-blocks").run()
    root = parse(spacetime_svg(blocked.trace, window=None))
    assert {b.get("data-node") for b in groups(root, "bar", "doubt")} == {"p1", "p2", "p3"}
    assert {b.get("data-node") for b in groups(root, "bar", "locks")} == {"p1", "p2", "p3"}
    split = txlib.scenario("3pc-partition-split").run()
    root = parse(spacetime_svg(split.trace, window=None))
    assert len(groups(root, "partition")) == 1
    assert "{coordinator, p1}" in "".join("".join(g.itertext())
                                          for g in groups(root, "band-label"))


def test_hostile_names_are_escaped():
    hostile = "<script>alert(1)</script>&\"'"
    run = txlib.simulate("2pc", participants=[hostile, "b"])
    svg = spacetime_svg(run.trace, window=None)
    assert "<script>" not in svg
    root = parse(svg)
    assert hostile in "".join(root.itertext())


def test_the_view_follows_the_step_in_a_long_run():
    run = txlib.scenario("2pc-coordinator-crash-blocks").run()
    late = parse(spacetime_svg(run.trace, step=run.steps - 2, window=300))
    ticks = [int(t.text) for g in groups(late, "axis") for t in g if t.text and t.text.isdigit()]
    assert min(ticks) > 500, "a late step shows late times, not the start of the run"


def test_same_frame_same_bytes_and_distinct_ids_for_distinct_frames():
    run = txlib.simulate("3pc")
    a = spacetime_svg(run.trace, step=4)
    assert a == spacetime_svg(run.trace, step=4)
    b = spacetime_svg(run.trace, step=5)
    ids_a = {el.get("id") for el in parse(a).iter() if el.get("id")}
    ids_b = {el.get("id") for el in parse(b).iter() if el.get("id")}
    assert ids_a and not ids_a & ids_b


def test_bad_future_is_refused():
    run = txlib.simulate("2pc")
    with pytest.raises(ValueError, match="'later'"):
        spacetime_svg(run.trace, step=2, future="later")


def y_of(el: ET.Element) -> float:
    shape = next(c for c in el.iter() if c.tag.endswith(("rect", "circle", "path")))
    if shape.get("cy"):
        return float(shape.get("cy"))
    if shape.get("y"):
        return float(shape.get("y")) + float(shape.get("height", 0)) / 2
    return float(shape.get("d").split(",")[1].split("L")[0]) + 7


def test_rows_by_event_stack_simultaneous_events_at_one_node():
    run = txlib.scenario("3pc-partition-split").run()
    root = parse(spacetime_svg(run.trace, window=None))
    sends = [g for g in groups(root, "msg") if g.get("data-step") == "1"]
    starts = [float(g.find("s:line", NS).get("y1")) for g in sends]
    assert len(starts) == 3 and len(set(starts)) == 3, "three sends at time 0, three rows"
    assert min(b - a for a, b in itertools.pairwise(sorted(starts))) >= 17


def test_proportional_time_stays_available_and_expands_dense_moments():
    run = txlib.scenario("2pc-happy").run()
    root = parse(spacetime_svg(run.trace, window=None, time="proportional", scale=10))
    ticks = {t.text: float(t.get("y")) for g in groups(root, "axis") for t in g
             if t.text and t.text.isdigit()}
    times = sorted(int(t) for t in ticks)
    gaps = [(ticks[str(b)] - ticks[str(a)]) / (b - a) for a, b in itertools.pairwise(times)]
    assert min(gaps) >= 10 - 0.01, "never less than scale pixels per millisecond"
    with pytest.raises(ValueError, match="'minutes'"):
        spacetime_svg(run.trace, time="minutes")


def test_a_partition_tints_each_side_and_crosses_sit_at_its_wall():
    run = txlib.scenario("3pc-partition-split").run()
    root = parse(spacetime_svg(run.trace, window=None))
    sides = {r.get("data-node"): r.get("data-side") for r in groups(root, "side")}
    assert sides == {"coordinator": "0", "p1": "0", "p2": "1", "p3": "1"}
    walls = groups(root, "wall")
    assert walls and {w.get("x1") for w in walls} == {walls[0].get("x1")}
    wall_x = float(walls[0].get("x1"))
    lost = [g for g in groups(root, "msg", "dropped") if g.get("data-src") == "coordinator"]
    assert lost
    for g in lost:
        line = g.find("s:line", NS)
        end = float(line.get("x2"))
        assert wall_x - 10 <= end < wall_x, "crossed out on the sender's side of the wall"


def test_one_colour_language_across_protocols():
    from txlib.viz.palette import BLUE, GREEN, PURPLE, SKY, VERMILION, message_colour

    assert message_colour("PREPARE") == message_colour("DO", {"step": "x"}) == BLUE
    assert message_colour("YES") == message_colour("OK", {"step": "x"}) == BLUE
    assert message_colour("COMMIT") == message_colour("DO_COMMIT") == GREEN
    assert message_colour("NO") == message_colour("ABORT") == VERMILION
    assert message_colour("FAIL", {"step": "pay"}) == message_colour("TRY_FAILED") == VERMILION
    assert message_colour("UNDO", {"step": "pay"}) == message_colour("CANCEL") == PURPLE
    assert message_colour("EVENT", {"event": "pay_compensated"}) == PURPLE
    assert message_colour("DECISION_REQ") == message_colour("STATE_REQ") == SKY
    run = txlib.scenario("saga-payment-declined").run()
    root = parse(spacetime_svg(run.trace, window=None))
    kinds = {g.get("data-type"): g.get("data-kind") for g in groups(root, "msg")}
    assert kinds["FAIL"] == "failure" and kinds["UNDO"] == "compensation"


def test_a_window_keeps_one_height_and_its_labels_inside():
    run = txlib.scenario("2pc-coordinator-crash-blocks").run()
    heights = {parse(spacetime_svg(run.trace, step=s, window=300, width=700)).get("height")
               for s in (1, 3, run.steps // 2, run.steps)}
    assert len(heights) == 1
    widths = {parse(spacetime_svg(run.trace, step=s, window=300, width=700)).get("width")
              for s in (1, run.steps)}
    assert widths == {"700"}


def test_a_diagram_has_a_title_and_a_text_alternative():
    run = txlib.simulate("2pc")
    root = parse(spacetime_svg(run.trace, step=3))
    title, desc = root.find("s:title", NS), root.find("s:desc", NS)
    assert root.get("aria-labelledby") == f"{title.get('id')} {desc.get('id')}"
    lines = desc.text.splitlines()
    shown = [e for e in run.trace if e.step <= 3]
    assert len(lines) == len(shown) + 1 and lines[1].startswith("step 1, time 0:")


def test_the_current_steps_arrows_grow_when_animated():
    run = txlib.simulate("2pc")
    root = parse(spacetime_svg(run.trace, step=2, animate=True))
    grown = groups(root, "msg", "grow")
    assert grown and all(g.get("data-step") == "2" for g in grown)
    assert not groups(parse(spacetime_svg(run.trace, step=2)), "grow")


def test_a_partitions_label_in_the_margin_is_whole() -> None:
    run = txlib.scenario("3pc-partition-split").run()
    for step in (None, 8, 20):
        root = parse(spacetime_svg(run.trace, step=step, roles=run.roles, width=860,
                                   window=None if step is None else 420))
        texts = [t.text for g in groups(root, "band-label") for t in g.iter(f"{{{NS['s']}}}text")]
        assert texts == ["✂ partition", "{coordinator, p1}", "| {p2, p3}"], texts


def test_wrapped_partition_groups_keep_every_name() -> None:
    from txlib.viz.spacetime import SIDE_LABEL, SMALL, _wrap
    from txlib.viz.textsize import text_width

    text = "{orchestrator, orders} | {inventory, payment, shipping, warehouse}"
    lines = _wrap(text, SMALL, SIDE_LABEL)
    assert " ".join(lines) == text and len(lines) >= 3
    assert all(text_width(line, SMALL) <= SIDE_LABEL for line in lines)


SAGAS = ["saga-happy", "saga-payment-declined", "choreo-happy",
         "choreo-duplicate-charged-twice", "2pc-happy", "3pc-partition-split"]


@pytest.mark.parametrize("name", SAGAS)
def test_no_message_label_reaches_behind_its_senders_lifeline(name: str) -> None:
    """In the lab's frames (860 px wide, a 420 px window), a message's label sits on its
    arrow's side of the sender's lifeline (a label behind it would read as the lane
    behind's, and a saga's first lane has the time axis behind it)."""
    from txlib.viz.spacetime import LABEL
    from txlib.viz.textsize import text_width

    run = txlib.scenario(name).run()
    for step in range(run.steps + 1):
        root = parse(spacetime_svg(run.trace, step=step, roles=run.roles, width=860,
                                   window=420, animate=True))
        lines = {}
        for g in groups(root, "msg"):
            line = g.find("s:line", NS)
            lines[(g.get("data-msg"), g.get("data-copy"))] = (
                float(line.get("x1")), float(line.get("x2")))
        for label in groups(root, "msg-label"):
            x1, x2 = lines[(label.get("data-msg"), label.get("data-copy"))]
            swatch = label.find("s:rect", NS)
            text = label.find("s:text", NS)
            left = float(swatch.get("x")) - 1
            right = float(text.get("x")) + text_width(
                text.text or "", LABEL, "current" in label.get("class", ""))
            where = f"{name} step {step}: {text.text!r}"
            # (A label moved away with a leader line may touch the lifeline: 4 px.)
            if x2 > x1:
                assert left >= x1 - 4, f"{where} starts {x1 - left:.0f} px behind"
            elif x2 < x1:
                assert right <= x1 + 4, f"{where} ends {right - x1:.0f} px behind"


def _header_names(svg: str) -> list[tuple[str, str]]:
    """(name, font-size style or '') of each lane header."""
    root = ET.fromstring(svg)
    out = []
    for g in root.iter("{http://www.w3.org/2000/svg}g"):
        if g.get("class") == "head":
            text = next(t for t in g if t.tag.endswith("text") and t.get("class") != "role")
            out.append((text.text or "", text.get("style") or ""))
    return out


def test_a_long_node_name_shrinks_before_it_is_cut_short() -> None:
    """Seven lanes in the lab's width: "coordinator" stays whole at a smaller size (not
    "coordina…"); a name too long even at 10 px is cut, and its tooltip keeps it."""
    from txlib.viz.widgets import DIAGRAM_WIDTH

    run = txlib.simulate("paxos-commit", participants=3, seed=1)
    heads = _header_names(spacetime_svg(run.trace, roles=run.roles, width=DIAGRAM_WIDTH))
    assert len(heads) == 7
    assert heads[0][0] == "coordinator"
    assert heads[0][1] in ("font-size:11px", "font-size:10px")
    assert all(style == "" for name, style in heads[1:])  # short names keep 12 px
    wide = _header_names(spacetime_svg(run.trace, roles=run.roles, width=2 * DIAGRAM_WIDTH))
    assert wide[0] == ("coordinator", "")
    long = "a-very-long-node-name-indeed"
    trace = txlib.simulate("2pc", participants=[long, "p2"], seed=1).trace
    svg = spacetime_svg(trace, width=DIAGRAM_WIDTH)
    name = next(n for n, _ in _header_names(svg) if n.startswith("a-very"))
    assert name.endswith("…") and name != long and f"<title>{long} (" in svg



def test_a_headers_name_and_role_are_cut_short_alike() -> None:
    """Eight lanes in the lab's width: a long name (at 10 px, bold) and a long role (at
    10 px) are cut the same way, from the end with an ellipsis, to the longest such text
    that fits the header; the tooltip keeps both whole."""
    from txlib.viz.textsize import text_width
    from txlib.viz.widgets import DIAGRAM_WIDTH

    long, role_long = "a-very-long-node-name-indeed", "W" * 30
    run = txlib.simulate("2pc", participants=[long, *(f"p{i}" for i in range(2, 8))], seed=1)
    svg = spacetime_svg(run.trace, roles={**run.roles, long: role_long}, width=DIAGRAM_WIDTH)
    head = next(g for g in ET.fromstring(svg).iter("{http://www.w3.org/2000/svg}g")
                if g.get("class") == "head" and g.get("data-node") == long)
    room = float(next(e for e in head if e.tag.endswith("rect")).get("width", 0)) - 8
    name, role = (t.text or "" for t in head if t.tag.endswith("text"))
    assert (name, role) == ("a-very-lo…", "WWWWW…")
    for shown, whole, bold in ((name, long, True), (role, role_long, False)):
        kept = len(shown) - 1
        assert text_width(shown, 10, bold) <= room < text_width(whole[:kept + 1] + "…", 10, bold)
    assert f"<title>{long} ({role_long})</title>" in svg


@pytest.mark.parametrize(("target", "decision", "good"), [
    ("saga", "completed", True), ("saga-payment-declined", "compensated", False),
    ("tcc", "confirm", True), ("2pc", "commit", True), ("2pc-vote-no", "abort", False)])
def test_a_decision_is_drawn_as_what_it_is(target, decision, good):
    """A completed saga (or a confirmed TCC transaction) is drawn with the ✓ of a commit,
    in green, not with the vermilion ✗ of an abort (lesson 00: ✓ commit, ✗ abort)."""
    run = (txlib.scenario(target) if target in txlib.scenarios() else
           txlib.Scenario(target)).run()
    root = parse(spacetime_svg(run.trace, window=None))
    marks = [g for g in groups(root, "mark", "decision")
             if g.get("data-decision") == decision]
    assert marks, f"no {decision} decision in {target}"
    for g in marks:
        fill = g.find("s:circle", NS).get("fill")
        assert fill == ("#009E73" if good else "#D55E00"), (decision, fill)
