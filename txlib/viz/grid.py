"""The fault grid as a widget: click a cell to open its run in the lab.

:func:`txlib.explorer.grid.fault_grid` computes the grid; :func:`fault_grid` here (the
one ``txlib.fault_grid`` is) returns it with a widget view.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import fields
from html import escape
from typing import Any

from ..errors import TxlibError, bad_choice, shown
from ..explorer import grid as computed
from ..explorer.grid import Cell, FaultGrid, outcome_symbols
from ..simulation import Run, Scenario
from .widgets import Lab


class InteractiveFaultGrid(FaultGrid):
    """A :class:`FaultGrid` that shows itself as a clickable widget in a notebook."""

    def widget(self, on_select: Callable[[Cell], object] | None = None) -> Any:
        """An ipywidgets grid; clicking a cell calls ``on_select(cell)``, by default
        opening that cell's run in the lab below the grid."""
        if on_select is not None and not callable(on_select):  # else each click fails
            raise TxlibError(f"on_select must be a function of the clicked cell (or None to "
                             f"open its run in the lab), got {shown(on_select)}")
        symbols = outcome_symbols(self.scenario.protocol)
        import ipywidgets as w

        below = w.VBox()
        message = w.HTML()

        def open_in_lab(cell: Cell) -> None:
            assert cell.scenario is not None
            lab = Lab(cell.scenario)
            lab.go(cell.step + 1)
            below.children = (lab.widget,)

        chosen = on_select or open_in_lab

        def clicked(cell: Cell) -> Callable[[Any], None]:
            def handler(_button: Any) -> None:
                try:
                    chosen(cell)
                    message.value = escape(f"{cell.fault.describe() if cell.fault else ''}: "
                                           f"{cell.worst}")
                except TxlibError as exc:
                    message.value = f'<span style="color:#D55E00">⚠ {escape(str(exc))}</span>'
            return handler

        items: list[Any] = [w.HTML("<b>step</b>"), w.HTML("<b>what happens in it</b>")]
        items += [w.HTML(f"<b>{escape(c)}</b>") for c in self.columns]
        for step, label, row in zip(self.steps, self.labels, self.cells, strict=True):
            items += [w.HTML(str(step)), w.HTML(escape(label))]
            for c in row:
                worst = c.worst
                if worst is None:
                    items.append(w.HTML('<span style="opacity:.4">·</span>',
                                        layout=w.Layout(justify_content="center")))
                    continue
                sym, _, colour = symbols[worst]
                b = w.Button(description=sym, tooltip=f"{c.fault.describe() if c.fault else ''}"
                             f": {worst}. {c.note}", layout=w.Layout(width="36px"))
                b.style.button_color = colour
                b.on_click(clicked(c))
                items.append(b)
        columns = "70px minmax(160px, max-content) " + " ".join(["auto"] * len(self.columns))
        grid = w.GridBox(items, layout=w.Layout(grid_template_columns=columns,
                                                 grid_gap="2px 6px", align_items="center"))
        legend = w.HTML(" ".join(f'<span style="color:{c}">{s}</span> {escape(o)}'
                                 for o, (s, _, c) in symbols.items())
                        + " · no such fault. Click a cell to open its run in the lab.")
        return w.VBox([w.HTML(f"<b>{escape(self.scenario.name or self.scenario.protocol)}"
                              f"</b>: one more fault, base run {escape(self.base.outcome)}"),
                       grid, legend, message, below])

    def _repr_mimebundle_(self, **kwargs: Any) -> dict[str, Any]:
        bundle = super()._repr_mimebundle_(**kwargs)
        bundle.update(self.widget()._repr_mimebundle_(**kwargs))
        bundle["text/html"] = self.html()
        return bundle


GRID_OPTIONS = ("crashes", "drops", "max_steps")


def fault_grid(scenario: Scenario | Run | str, **options: Any) -> InteractiveFaultGrid:
    """Step x fault -> outcome (see :func:`txlib.explorer.grid.fault_grid`), as a widget.
    ``options``: ``crashes``, ``drops`` and ``max_steps``, as there."""
    for key in options:
        if key not in GRID_OPTIONS:
            raise bad_choice("fault_grid option", key, GRID_OPTIONS)
    grid = computed.fault_grid(scenario, **options)
    return InteractiveFaultGrid(**{f.name: getattr(grid, f.name) for f in fields(grid)})
