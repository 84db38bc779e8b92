"""What several lessons show in a notebook, written once: tables of values computed from
runs, the events of a few steps, a saga's stores before and after some runs.

A notebook imports these from its own lesson module (``txlib.course.lNN_words``), which
re-exports the ones the lesson uses.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping, Sequence
from typing import Any

from IPython.display import Markdown, display

from ..properties.saga import final_stores
from ..sagas.definition import SagaDefinition
from ..simulation.run import Run


def markdown_table(header: Sequence[Any], rows: Iterable[Sequence[Any]]) -> Markdown:
    """Rows of values (computed from runs) under a header, as a Markdown table."""
    lines = ["| " + " | ".join(str(h) for h in header) + " |", "|" + " --- |" * len(header)]
    lines += ["| " + " | ".join(str(cell) for cell in row) + " |" for row in rows]
    return Markdown("\n".join(lines))


def show_table(header: Sequence[Any], rows: Iterable[Sequence[Any]]) -> None:
    """Show rows (tuples) under a header as a small table."""
    display(markdown_table(header, rows))


def steps(run: Run, first: int, last: int) -> None:
    """Print the events of steps first..last of a run, one per line."""
    for e in run.trace:
        if first <= e.step <= last:
            what = e.message.describe() if e.message else e.detail
            print(f"{e.step:>4} {e.time:>5} ms  {e.node or '-':<12} {e.kind:<9} {what}")


def headline(run: Run, title: str | None = None) -> None:
    """One line: the run's title (its scenario's name, else its protocol), the outcome, the
    end time, the messages; then any broken rule."""
    sent = ", ".join(f"{n} {t}" for t, n in run.metrics.messages_by_type.items())
    title = title or run.scenario.name or run.scenario.protocol
    print(f"{title}: {run.outcome.upper()} at time {run.end_time}; {run.metrics.messages} "
          f"messages ({sent})")
    for v in run.violations:
        print("  ✗", v)


def leaves(value: Any, path: str = "") -> Iterator[tuple[str, Any]]:
    """(path, value) for each leaf of a store; a record with a status shows its status."""
    if isinstance(value, dict) and "status" in value:
        yield path, value["status"]
    elif isinstance(value, dict) and value:
        for key, inner in value.items():
            yield from leaves(inner, f"{path} › {key}" if path else key)
    else:
        yield path, "—" if value == {} else value


def stores(runs: Mapping[str, Run], saga: SagaDefinition) -> None:
    """Each service's store before and after each run (a dict label -> run) of ``saga``."""
    columns = {"before": saga.services}
    columns.update({label: final_stores(saga, run.logs) for label, run in runs.items()})
    rows = []
    for service in saga.services:
        values: dict[str, dict[str, Any]] = {}
        for label, all_stores in columns.items():
            for path, value in leaves(all_stores[service]):
                values.setdefault(path, {})[label] = value
        for path, by_label in values.items():
            cells = [by_label.get(label, "—") for label in columns]
            if any(cell != "—" for cell in cells):
                rows.append((service, path, *cells))
    show_table(["service", "data", *columns], rows)
