"""The lab's clickable diagram: a small anywidget whose front end (``clickable.js``)
makes the messages in flight and the node headers of the lab's space-time diagram
clickable, and sends what was chosen back to the kernel.

It sits in the lab's box, under the diagram, and shows only a one-line hint. The kernel
keeps ``targets`` (what may be clicked at the cursor, :func:`txlib.viz.clicks.click_targets`)
up to date; the front end answers with messages that :meth:`txlib.viz.lab.LabModel.click`
checks and applies. Where the front end cannot load (no anywidget, or a page without
its JupyterLab extension) the diagram stays a picture and the fault panel stays the way
to inject faults: :func:`click_bridge` returns None when anywidget is not installed.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from pathlib import Path
from typing import Any

FRONT_END = Path(__file__).with_name("clickable.js")


@functools.cache
def _bridge_class() -> type[Any] | None:
    """The widget class, made once; None where anywidget is not installed."""
    try:
        import anywidget
        import traitlets
    except ImportError:
        return None

    class ClickBridge(anywidget.AnyWidget):
        """Makes the lab's diagram clickable (see the module's docstring)."""

        _esm = FRONT_END.read_text(encoding="utf-8")
        targets = traitlets.Dict().tag(sync=True)

    return ClickBridge


def click_bridge(on_click: Callable[[object], None]) -> Any | None:
    """The bridge widget, calling ``on_click(content)`` with each message its front end
    sends; None where anywidget is not installed (the lab then has only its panel)."""
    made = _bridge_class()
    if made is None:
        return None
    bridge = made()
    bridge.on_msg(lambda _widget, content, _buffers: on_click(content))
    return bridge
