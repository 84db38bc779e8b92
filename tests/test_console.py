"""The console view: trace table and summary panel, rendered to text with rich."""

from __future__ import annotations

import io
import re

import pytest
from rich.console import Console

import txlib
from txlib.engine.records import EVENT_KINDS
from txlib.viz import console as view
from txlib.viz.console import KIND_MARKS, OUTCOME_MARKS, show, summary_panel, trace_table


def render(*renderables: object, width: int = 120, **kwargs: object) -> str:
    """Print to a recording console and return the plain text."""
    console = Console(record=True, width=width, force_terminal=False, file=io.StringIO(),
                      **kwargs)  # type: ignore[arg-type]
    for r in renderables:
        console.print(r)
    return console.export_text()


class AsciiFile(io.StringIO):
    """A file whose encoding cannot hold Unicode symbols."""

    @property
    def encoding(self) -> str:  # type: ignore[override]
        return "ascii"


@pytest.fixture(scope="module")
def every_kind() -> txlib.Run:
    """A run with every event kind, forced and lazy log writes and one unfired fault."""
    return txlib.simulate("2pc", faults=[
        txlib.duplicate("PREPARE"),
        txlib.partition(["p3"], at_step=1),
        txlib.heal(at_time=100),
        txlib.crash("coordinator", when="coordinator logs ABORT"),
        txlib.recover("coordinator", at_time=300),
        txlib.heal(at_time=5000),
    ])


@pytest.fixture(scope="module")
def split() -> txlib.Run:
    return txlib.scenario("3pc-partition-split").run()


SAGA_ONLY = {"effect"}  # a service's local transaction: only sagas have them


def test_the_fixture_run_has_every_event_kind(every_kind):
    assert {e.kind for e in every_kind.trace} == set(EVENT_KINDS) - SAGA_ONLY
    assert {e.kind for e in txlib.simulate("saga").trace} >= SAGA_ONLY
    assert set(KIND_MARKS) == set(EVENT_KINDS)


def test_every_event_kind_appears_with_its_symbol(every_kind):
    text = render(trace_table(every_kind)) + render(trace_table(txlib.simulate("saga")))
    for kind in EVENT_KINDS:
        assert f"{KIND_MARKS[kind].symbol} {kind}" in text, kind


def test_each_row_shows_the_symbol_of_its_own_event(every_kind):
    lines = [ln for ln in render(trace_table(every_kind)).splitlines()
             if re.match(r"^\s*\d+\s+\d+\s", ln)]
    assert len(lines) == len(every_kind.trace)
    for line, event in zip(lines, every_kind.trace, strict=True):
        mark = KIND_MARKS[event.kind].symbol
        assert re.search(rf"\s{re.escape(mark)} {event.kind}\b", line), (line, event)
        assert line.split()[:2] == [str(event.step), str(event.time)]


def test_symbols_are_distinct_and_single_width():
    from rich.cells import cell_len

    symbols = [m.symbol for m in KIND_MARKS.values()]
    assert len(set(symbols)) == len(symbols)
    assert all(cell_len(s) == 1 for s in symbols)
    asciis = [m.ascii for m in KIND_MARKS.values()]
    assert len(set(asciis)) == len(asciis) and all(a.isascii() for a in asciis)


def test_forced_and_lazy_log_writes_are_told_apart(every_kind):
    text = render(trace_table(every_kind))
    assert "✎ log       PREPARED (forced)" in text
    assert "✎ log       ABORT (lazy)" in text


def test_messages_and_details_are_described(split):
    text = render(trace_table(split))
    assert "coordinator -> p1 CAN_COMMIT {amount=200, op='debit', tx='T1'}" in text
    assert "(partition: the network cannot reach p2)" in text


def test_limit_shows_the_first_rows_and_says_how_many_are_hidden(split):
    text = render(trace_table(split, limit=3))
    rows = [ln for ln in text.splitlines() if re.match(r"^\s*\d+\s+\d+\s", ln)]
    assert len(rows) == 3
    assert f"... {len(split.trace) - 3} more event(s) not shown" in text
    assert "more event" not in render(trace_table(split, limit=len(split.trace)))


def test_ascii_fallback_when_the_console_cannot_encode_unicode(every_kind):
    file = AsciiFile()
    console = Console(file=file, width=120, force_terminal=False)
    show(every_kind, console=console)
    text = file.getvalue()
    assert text.isascii()
    for kind in set(EVENT_KINDS) - SAGA_ONLY:
        assert f"{KIND_MARKS[kind].ascii} {kind}" in text, kind
    assert f"{OUTCOME_MARKS['aborted'].ascii} ABORTED" in text


def test_summary_of_a_broken_run_shows_outcome_decisions_and_the_reason(split):
    text = render(summary_panel(split))
    assert "≠ INCONSISTENT" in text
    assert "atomicity is broken" in text
    decisions = {m[0]: m[1] for m in re.findall(r"│ (\S+)\s+(?:coordinator|participant)\s+"
                                                 r"(commit|abort|undecided)\b", text)}
    assert decisions == split.decisions == {
        "coordinator": "commit", "p1": "commit", "p2": "abort", "p3": "abort"}
    (violation,) = split.violations
    assert f"atomicity (step {violation.step}): {violation.reason}" in text
    assert split.scenario.description[:60] in text


@pytest.mark.parametrize(("name", "words"), [
    ("2pc-happy", "✓ COMMITTED"),
    ("2pc-vote-no", "✗ ABORTED"),
    ("2pc-coordinator-crash-blocks", "⊘ BLOCKED"),
])
def test_every_outcome_has_words_and_a_symbol(name, words):
    run = txlib.scenario(name).run()
    text = render(summary_panel(run))
    assert words in text
    assert "none: every safety invariant holds" in text


def test_summary_marks_down_nodes_and_undecided_ones():
    run = txlib.scenario("2pc-coordinator-crash-blocks").run()
    text = render(summary_panel(run))
    (coordinator,) = [ln for ln in text.splitlines() if "│ coordinator " in ln]
    assert "↯ down" in coordinator
    (p1,) = [ln for ln in text.splitlines() if "│ p1 " in ln and "participant" in ln]
    assert "undecided" in p1 and "down" not in p1


def test_summary_shows_the_metrics(split):
    m = split.metrics
    text = render(summary_panel(split))
    assert f"messages: {m.messages} (" in text
    assert f"{m.messages_by_type['PRE_COMMIT']} PRE_COMMIT" in text
    assert f"message delays: {m.message_delays} until" in text
    assert (f"forced log writes: {m.forced_writes_before_decision} before the decision, "
            f"{m.forced_writes} in total") in text
    for p in split.participants:
        row = re.search(rf"│ {p}\s+(\d+)\s+(\d+)\s", text)
        assert row is not None, p
        assert (int(row[1]), int(row[2])) == (m.blocked_time[p], m.lock_time[p])


def test_unfired_faults_are_listed_with_why(every_kind):
    text = render(summary_panel(every_kind))
    assert "faults that did not happen" in text
    (fault, why) = every_kind.unfired_faults[0]
    assert f"? {fault.describe()}: {why}" in text


def test_no_unfired_section_when_every_fault_fired(split):
    assert not split.unfired_faults
    assert "did not happen" not in render(summary_panel(split))


def test_hostile_names_and_payloads_are_shown_literally():
    scenario = txlib.Scenario(
        "2pc", ("[bold]x", "<b>"), options={"tx": "[red]T[/red] :smile:"},
        name="[i]named", description="[b]described</b>",
        faults=(txlib.heal(at_time=9999),),
    )
    run = scenario.run()
    console = Console(record=True, width=120, force_terminal=False, file=io.StringIO())
    show(run, console=console)
    text = console.export_text(clear=False)
    html = console.export_html()
    for literal in ("[bold]x", "<b>", "[red]T[/red] :smile:", "[i]named", "[b]described</b>"):
        assert literal in text, literal
    body = html.split("<body>", 1)[1]
    assert "&lt;b&gt;" in body and "<b>" not in body and "[bold]x" in body


def test_rows_are_coloured_on_a_colour_terminal(split):
    file = io.StringIO()
    console = Console(file=file, width=120, force_terminal=True, color_system="standard")
    console.print(trace_table(split, limit=40))
    out = file.getvalue()
    drop_line = next(ln for ln in out.splitlines() if "✗ drop" in ln)
    assert "\x1b[1;31m" in drop_line  # bold red


def test_rendering_is_deterministic(split):
    again = txlib.scenario("3pc-partition-split").run()
    assert render(trace_table(split), summary_panel(split)) == render(
        trace_table(again), summary_panel(again))


def test_show_prints_table_and_summary_to_stdout(capsys):
    show(txlib.scenario("2pc-happy").run(), limit=2)
    out = capsys.readouterr().out
    assert "trace of 2pc-happy (2pc)" in out
    assert "more event(s) not shown" in out
    assert "summary of 2pc-happy (2pc)" in out and "COMMITTED" in out


def test_narrow_consoles_still_render(split):
    text = render(trace_table(split, limit=5), summary_panel(split), width=60)
    assert "INCONSISTENT" in text
    assert max(len(ln) for ln in text.splitlines()) <= 60


def test_txlib_console_is_this_module():
    if not hasattr(txlib, "console"):
        pytest.skip("txlib/__init__.py does not import txlib.viz.console yet")
    assert txlib.console is view
    assert txlib.console.show is show


def test_show_prints_the_first_rows_of_a_long_run_unless_told_to_print_every_one():
    """show() printed every row: 9.5 s for a 10,000-event run, and more in a notebook."""
    from txlib.viz.console import DEFAULT_ROWS
    run = txlib.Scenario("2pc", faults=(
        txlib.crash("coordinator", when="coordinator sends COMMIT to p1"),
        txlib.recover("coordinator", at_time=3_000)), options={"horizon": 4_000}).run()
    assert len(run.trace) > DEFAULT_ROWS
    file = io.StringIO()
    show(run, console=Console(file=file, width=120, force_terminal=False))
    text = file.getvalue()
    rows = [ln for ln in text.splitlines() if re.match(r"^\s*\d+\s+\d+\s", ln)]
    assert len(rows) == DEFAULT_ROWS
    assert f"... {len(run.trace) - DEFAULT_ROWS} more event(s) not shown" in text
    assert "(show(run, limit=N) shows more rows; limit=None every one)" in text
    assert "COMMITTED" in text or "committed" in text.lower()  # the summary follows
    file = io.StringIO()
    show(run, console=Console(file=file, width=120, force_terminal=False), limit=None)
    every = [ln for ln in file.getvalue().splitlines() if re.match(r"^\s*\d+\s+\d+\s", ln)]
    assert len(every) == len(run.trace) and "more event" not in file.getvalue()
