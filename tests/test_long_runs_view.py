"""A long run in the lab: each frame reads only the part of the trace it shows.

The space-time diagram lays out a window of events around the cursor (the view then
looks exactly as over the whole trace), and the node table, the messages in flight and
the state charts look their answers up in the trace's index instead of reading the
trace from its start. Each is checked here against a reading of the whole trace.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

import pytest

import txlib
from txlib.engine.records import TraceEvent
from txlib.engine.trace import Trace
from txlib.viz import spacetime
from txlib.viz.clicks import in_flight
from txlib.viz.frames import node_rows
from txlib.viz.traceindex import LONG, index_of

WINDOW = 420  # px, as the lab draws


def _long_runs() -> list[txlib.Run]:
    down_long = txlib.Scenario("2pc", participants=("p1", "p2", "p3"), faults=(
        txlib.crash("coordinator", when="coordinator sends COMMIT to p1"),
        txlib.recover("coordinator", at_time=30_000)), options={"horizon": 31_000})
    # Partitions, crashes, loss, duplicates, and messages that take many rows to arrive.
    rough = txlib.Scenario("2pc", participants=4, faults=(
        txlib.crash("coordinator", when="coordinator logs COMMIT"),
        txlib.partition(["p1", "p2"], at_time=500), txlib.heal(at_time=1500),
        txlib.delay(400, "DECISION_REQ", src="p2", count=None),
        txlib.delay(2500, "DECISION_REQ", src="p3", count=2),
        txlib.slow("p3", 150, at_time=600),
        txlib.duplicate("DECISION_REQ", count=20),
        txlib.drop("DECISION_REQ", src="p1", count=30),
        txlib.crash("p4", at_time=2000), txlib.recover("p4", at_time=2600),
        txlib.recover("coordinator", at_time=4000)), options={"horizon": 6000})
    sagas = txlib.Scenario("saga", options={"instances": [
        {"saga_id": f"s{i}", "start": 7 * i} for i in range(12)]},
        faults=(txlib.fail_step("process_payment"),))
    return [s.run() for s in (down_long, rough, sagas)]


@pytest.fixture(scope="module")
def long_runs() -> list[txlib.Run]:
    return _long_runs()


_UID = re.compile(r"st[0-9a-f]{8}")
_DESC = re.compile(r"<desc[^>]*>.*?</desc>", re.S)
_NUMBER = re.compile(r"-?\d+(?:\.\d+)?")


def _same_picture(a: str, b: str) -> bool:
    """The same SVG but for its ids, its text alternative and rounding (a window's
    coordinates are summed from another origin: 150.6 may come out as 150.7)."""
    a, b = _DESC.sub("", _UID.sub("ID", a)), _DESC.sub("", _UID.sub("ID", b))
    if _NUMBER.sub("#", a) != _NUMBER.sub("#", b):
        return False
    return all(abs(float(x) - float(y)) <= 0.15
               for x, y in zip(_NUMBER.findall(a), _NUMBER.findall(b), strict=True))


def _steps(run: txlib.Run, count: int = 7) -> list[int]:
    last = run.trace.last_step
    return sorted({0, 1, last, *(last * k // count for k in range(1, count))})


def test_a_window_of_a_long_trace_is_drawn_as_the_whole_trace_draws_it(
        long_runs: list[txlib.Run], monkeypatch: pytest.MonkeyPatch) -> None:
    sliced = 0
    for run in long_runs:
        trace = run.trace
        index = index_of(trace)
        for step in _steps(run):
            for future in ("hide", "fade"):
                for time in ("events", "proportional"):
                    options = dict(step=step, roles=run.roles, width=860, window=WINDOW,
                                   future=future, time=time)
                    windowed = spacetime.spacetime_svg(trace, **options)  # type: ignore[arg-type]
                    cut = index.last_of_step(step)
                    end = cut + 1 if future == "hide" else len(trace)
                    sliced += spacetime.window_slice(index, cut, end, WINDOW) != (0, end)
                    with monkeypatch.context() as whole:
                        whole.setattr(spacetime, "window_slice", lambda i, c, e, w: (0, e))
                        drawn = spacetime.spacetime_svg(trace, **options)  # type: ignore[arg-type]
                    assert _same_picture(windowed, drawn), (run.scenario.protocol, step,
                                                            future, time)
    assert sliced >= 40  # most of these views leave events out


def test_a_window_lays_out_a_part_that_does_not_grow_with_the_run() -> None:
    long = txlib.Scenario("2pc", participants=("p1", "p2", "p3"), faults=(
        txlib.crash("coordinator", when="coordinator sends COMMIT to p1"),
        txlib.recover("coordinator", at_time=200_000)),
        options={"horizon": 201_000, "max_steps": 50_000}).run()
    index = index_of(long.trace)
    assert len(long.trace) > 15_000
    for cut in (len(long.trace) // 3, len(long.trace) // 2, len(long.trace) - 1):
        first, last = spacetime.window_slice(index, cut, cut + 1, WINDOW)
        assert last == cut + 1 and first > 0 and last - first < 2 * LONG + 200


def test_a_message_delayed_across_the_view_is_laid_out_whole() -> None:
    """A message that takes longer than LONG events to arrive is looked up: the window
    reaches back to its send, so its arrow crosses the view."""
    run = txlib.Scenario("2pc", participants=("p1", "p2", "p3"), faults=(
        txlib.crash("coordinator", when="coordinator sends COMMIT to p1"),
        txlib.recover("coordinator", at_time=20_000),
        txlib.delay(15_000, "ACK", src="p1")), options={"horizon": 40_000}).run()
    index = index_of(run.trace)
    assert index.long  # the delayed ACK
    sent, ended = next((s, e) for s, e in index.long if run.trace[s].message.type == "ACK")
    assert ended is not None and ended - sent > LONG
    first, last = spacetime.window_slice(index, ended, ended + 1, WINDOW)
    assert first <= sent and last == ended + 1


def test_the_text_alternative_counts_every_event_and_lists_the_last(
        long_runs: list[txlib.Run]) -> None:
    run = long_runs[0]
    step = run.trace.last_step // 2
    cut = index_of(run.trace).last_of_step(step)
    svg = spacetime.spacetime_svg(run.trace, step=step, window=WINDOW)
    desc = re.search(r"<desc[^>]*>(.*?)</desc>", svg, re.S)
    assert desc is not None
    lines = desc.group(1).split("\n")
    assert lines[0] == f"{cut + 1} events so far; the last {spacetime.DESC_EVENTS}:"
    assert lines[1:] == [spacetime.event_line(e).replace("->", "-&gt;")
                         for e in run.trace[cut + 1 - spacetime.DESC_EVENTS: cut + 1]]


# --- the node table and the messages in flight, against a reading from the start -----------
def _flying_from_the_start(trace: Sequence[TraceEvent], upto: int) -> list[tuple[int, int]]:
    flying: dict[tuple[int, int], None] = {}
    for e in trace[: upto + 1]:
        m = e.message
        if m is not None and e.kind in ("send", "duplicate"):
            flying[(m.id, m.copy)] = None
        elif m is not None and e.kind in ("deliver", "drop"):
            flying.pop((m.id, m.copy), None)
    return list(flying)


def _table_from_the_start(trace: Trace, upto: int) -> dict[str, tuple[object, ...]]:
    logs: dict[str, list[tuple[str, bool, bool]]] = {}
    locks: dict[str, str] = {}
    decisions: dict[str, str] = {}
    volatile: dict[str, str] = {}
    for e in trace[: upto + 1]:
        if e.node is None:
            continue
        if e.kind == "log":
            record, _, how = e.detail.rpartition(" ")
            forced = how == "(forced)"
            lines = logs.setdefault(e.node, [])
            if forced:
                lines[:] = [(r, f, True) for r, f, _ in lines]
            lines.append((record, forced, forced))
        elif e.kind == "crash" and "unforced log record" in e.detail:
            logs[e.node] = [line for line in logs.get(e.node, []) if line[2]]
        elif e.kind == "lock":
            locks[e.node] = e.detail
        elif e.kind == "unlock":
            locks[e.node] = ""
        elif e.kind == "decision":
            decisions[e.node] = e.detail
    for at, node, text in trace.volatile:
        if at <= upto:
            volatile[node] = text
    down = trace[upto].down
    return {n: (tuple(logs.get(n, ())), locks.get(n, ""), decisions.get(n),
                "" if n in down else volatile.get(n, "")) for n in trace.nodes}


def test_the_node_table_and_the_messages_in_flight_match_a_reading_from_the_start(
        long_runs: list[txlib.Run]) -> None:
    for run in long_runs:
        trace = run.trace
        for step in _steps(run, 40):
            upto = index_of(trace).last_of_step(step)
            flying = [(f.message.id, f.message.copy) for f in in_flight(trace, step)]
            assert flying == _flying_from_the_start(trace, upto)
            rows = {r.name: (tuple((line.record, line.forced, line.durable) for line in r.log),
                             r.locks, r.decision, r.volatile)
                    for r in node_rows(trace, upto, run.roles)}
            assert rows == _table_from_the_start(trace, upto)


def test_a_whole_picture_of_a_very_long_run_is_refused_and_a_window_of_it_drawn() -> None:
    """txlib.diagram of a 30,055-event run wrote 15 MB of SVG in 9 s into the notebook."""
    run = txlib.Scenario("2pc", participants=("p1", "p2", "p3"), faults=(
        txlib.crash("coordinator", when="coordinator sends COMMIT to p1"),
        txlib.recover("coordinator", at_time=300_000)),
        options={"horizon": 301_000, "max_steps": 50_000}).run()
    assert len(run.trace) > spacetime.MAX_DRAWN_EVENTS
    with pytest.raises(txlib.TxlibError, match=r"would draw 30,\d{3} events.*at most "
                       r"20,000.*window=600"):
        txlib.diagram(run)
    early = index_of(run.trace).steps[spacetime.MAX_DRAWN_EVENTS - 1000]
    assert txlib.diagram(run, step=early).svg.startswith("<svg")  # fewer events so far
    part = txlib.diagram(run, step=run.steps // 2, window=600).svg
    assert part.startswith("<svg") and len(part) < 200_000


def test_an_unlock_that_says_something_leaves_no_locks_in_the_node_table() -> None:
    """A real run's merged trace unlocks with a note ('no lock survived the crash'): the
    table showed that note as the locks held."""
    def event(index: int, kind: str, detail: str) -> TraceEvent:
        return TraceEvent(index, index, index, kind, "p1", None, detail,
                          {"p1": "PREPARED"}, frozenset())
    trace = Trace([event(0, "lock", "acct"), event(1, "crash", "killed"),
                   event(2, "recover", "restarted"),
                   event(3, "unlock", "no lock survived the crash")], ["p1"])
    locks = [node_rows(trace, upto, {"p1": "participant"})[0].locks for upto in range(4)]
    assert locks == ["acct", "acct", "acct", ""]
