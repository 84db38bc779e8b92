"""The space-time diagram's structure: one mark per thing that happened, nothing more."""

from __future__ import annotations

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
    assert all("⧉" in "".join(g.itertext()) for g in dups)


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
    bands = groups(parse(spacetime_svg(split.trace, window=None)), "partition")
    assert len(bands) == 1 and "{coordinator, p1}" in "".join(bands[0].itertext())


def test_hostile_names_are_escaped():
    hostile = "<script>alert(1)</script>&\"'"
    run = txlib.simulate("2pc", participants=[hostile, "b"])
    svg = spacetime_svg(run.trace, window=None)
    assert "<script>" not in svg
    root = parse(svg)
    assert hostile in "".join(root.itertext())


def test_the_view_follows_the_step_in_a_long_run():
    run = txlib.scenario("2pc-coordinator-crash-blocks").run()
    late = parse(spacetime_svg(run.trace, step=run.steps - 2, window=150))
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
