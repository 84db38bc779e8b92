"""The space-time (Lamport) diagram of a trace, as a self-contained SVG string.

One lifeline per node, simulated time downward and to scale, an arrow per message from
its send to its delivery (so reordering and concurrency show as crossing arrows), a
cross where a message is lost, a distinct dash for a network duplicate, crash and
recovery marks, shaded partition bands, bars where a participant is in doubt or holds
locks, durable-log writes as ticks with the record name (filled: forced; hollow: lazy),
state labels on the lifelines, and the current step highlighted with later events
hidden or faded. Every message carries a ``<title>`` tooltip with its payload.

Neutral ink is ``currentColor`` so the picture follows a light or dark theme; the
colours are the Okabe-Ito palette, and every meaning is also carried by a shape, a dash
pattern or a word. All user text is escaped.
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from xml.sax.saxutils import escape, quoteattr

from ..engine.records import Message, TraceEvent
from .frames import Interval, intervals, last_index_of_step

# Okabe-Ito: distinguishable with every common colour-vision deficiency.
BLUE, ORANGE, GREEN, VERMILION = "#0072B2", "#E69F00", "#009E73", "#D55E00"
SKY, PURPLE, YELLOW = "#56B4E9", "#CC79A7", "#F0E442"

MESSAGE_COLOURS = {
    "COMMIT": GREEN, "DO_COMMIT": GREEN, "ACK": GREEN,
    "ABORT": VERMILION, "NO": VERMILION,
    "PRE_COMMIT": PURPLE,
    "DECISION_REQ": SKY, "STATE_REQ": SKY, "STATE": SKY,
}
DEFAULT_MESSAGE_COLOUR = BLUE

Visible = Callable[[int], bool]  # is this simulated time inside the view?
Styler = Callable[[TraceEvent], str]  # extra CSS class for an event (current, faded)

STYLE = """
.txst{font-family:ui-sans-serif,system-ui,-apple-system,'Segoe UI',sans-serif;font-size:11px}
.txst text{fill:currentColor}
.txst .life{stroke:currentColor;stroke-width:1.5;opacity:.55}
.txst .life.downline{stroke-dasharray:2 4;opacity:.35}
.txst .head rect{fill:currentColor;fill-opacity:.07;stroke:currentColor;stroke-opacity:.4}
.txst .head text{font-weight:600;font-size:12px}
.txst .head .role{font-weight:400;font-size:10px;opacity:.7}
.txst .axis text{font-size:9px;opacity:.6}
.txst .axis line{stroke:currentColor;opacity:.15}
.txst .msg line{stroke-width:1.6}
.txst .msg text{font-size:10px}
.txst .msg.dropped line{stroke-dasharray:5 3}
.txst .msg.dup line{stroke-dasharray:1.5 2.5;stroke-width:2.2}
.txst .cross{stroke-width:2.2}
.txst .tick.lazy{fill:none}
.txst .logtext{font-size:9.5px}
.txst .pill rect{fill:currentColor;fill-opacity:.1;stroke:currentColor;stroke-opacity:.6}
.txst .pill text{font-size:9.5px;font-weight:600}
.txst .bar.doubt{stroke:#E69F00}
.txst .bar.locks{fill:currentColor;fill-opacity:.18;stroke:currentColor;stroke-opacity:.35}
.txst .band{stroke:#D55E00;stroke-opacity:.5}
.txst .band-label{font-size:10px;font-weight:600}
.txst .mark text{font-size:10px;font-weight:700}
.txst .mark.timeout text{font-size:9px;font-weight:400;opacity:.8}
.txst .now line{stroke:#F0E442;stroke-width:10;opacity:.35}
.txst .now text{font-size:10px;font-weight:700}
.txst .current{filter:drop-shadow(0 0 2px #F0E442)}
.txst .current line{stroke-width:3}
.txst .faded{opacity:.22}
""".strip()


@dataclass(frozen=True)
class View:
    """Geometry of one rendering: columns, time window and scale."""

    nodes: tuple[str, ...]
    t0: int
    t1: int
    scale: float
    col: float
    left: float = 56.0
    top: float = 58.0
    bottom: float = 24.0

    def x(self, node: str) -> float:
        return self.left + self.col * (self.nodes.index(node) + 0.5)

    def y(self, t: float) -> float:
        return self.top + (t - self.t0) * self.scale

    @property
    def width(self) -> float:
        # Room on the right for the last lifeline's log and effect labels.
        return self.left + self.col * len(self.nodes) + 96

    @property
    def height(self) -> float:
        return self.y(self.t1) + self.bottom


def _a(value: object) -> str:
    """An escaped, quoted XML attribute value."""
    return quoteattr(str(value))


def _t(value: object) -> str:
    """Escaped XML text."""
    return escape(str(value))


def _short(text: str, limit: int) -> str:
    """``text`` cut to ``limit`` characters with an ellipsis (tooltips keep it whole)."""
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _arrowhead(x1: float, y1: float, x2: float, y2: float, colour: str) -> str:
    angle = math.atan2(y2 - y1, x2 - x1)
    size = 7.0
    left = (x2 - size * math.cos(angle - 0.4), y2 - size * math.sin(angle - 0.4))
    right = (x2 - size * math.cos(angle + 0.4), y2 - size * math.sin(angle + 0.4))
    return (f'<polygon points="{x2:.1f},{y2:.1f} {left[0]:.1f},{left[1]:.1f} '
            f'{right[0]:.1f},{right[1]:.1f}" fill="{colour}"/>')


def _cross(x: float, y: float, colour: str) -> str:
    r = 5
    return (f'<path class="cross" d="M{x - r:.1f},{y - r:.1f}L{x + r:.1f},{y + r:.1f}'
            f'M{x - r:.1f},{y + r:.1f}L{x + r:.1f},{y - r:.1f}" stroke="{colour}"/>')


def _tooltip(msg: Message, sent: TraceEvent, end: TraceEvent | None) -> str:
    fate = "in flight"
    if end is not None:
        fate = (f"delivered at {end.time} (step {end.step})" if end.kind == "deliver"
                else f"lost at {end.time} (step {end.step}): {end.detail}")
    return f"message {msg.id}: {msg.describe()}\nsent at {sent.time} (step {sent.step}); {fate}"


def _choose_view(trace: Sequence[TraceEvent], nodes: tuple[str, ...], now: int, end: int,
                 window: int | None, scale: float, width: int | None) -> View:
    col = 150.0 if width is None else max(70.0, (width - 70) / max(1, len(nodes)))
    col = min(col, 190.0)
    last = max(end, 1)
    if window is None or last <= window:
        return View(nodes, 0, last + 4, scale, col)
    # Follow the current moment: most of the window behind it, some ahead.
    t0 = max(0, min(now - int(window * 0.75), last - window))
    return View(nodes, t0, t0 + window, scale, col)


def spacetime_svg(
    trace: Sequence[TraceEvent],
    step: int | None = None,
    *,
    nodes: Sequence[str] | None = None,
    roles: dict[str, str] | None = None,
    future: str = "hide",
    window: int | None = 150,
    scale: float = 4.0,
    width: int | None = None,
    title: str | None = None,
) -> str:
    """Draw ``trace`` as a space-time diagram, as it stands after scheduler ``step``.

    ``step=None`` draws the whole run. ``future`` says what to do with events after
    ``step``: ``"hide"``, ``"fade"`` or ``"show"``. ``window`` is the span of simulated
    time shown (the view follows ``step``; None shows everything), ``scale`` is pixels
    per simulated millisecond.
    """
    if future not in ("hide", "fade", "show"):
        raise ValueError(f"future must be 'hide', 'fade' or 'show', got {future!r}")
    names = tuple(nodes) if nodes is not None else tuple(getattr(trace, "nodes", ()))
    if not names:
        names = tuple(dict.fromkeys(n for e in trace for n in e.states))
    roles = roles or {}
    events = list(trace)
    cut = len(events) - 1 if step is None else last_index_of_step(events, step)
    now = events[cut].time if cut >= 0 else 0
    drawn = events if future != "hide" else events[: cut + 1]
    end_time = drawn[-1].time if drawn else 0
    view = _choose_view(events, names, now, end_time, window, scale, width)
    lo, hi = view.t0, view.t1

    def visible(t: int) -> bool:
        return lo - 1 <= t <= hi + 1

    def cls(e: TraceEvent) -> str:
        if step is not None and e.step == step:
            return " current"
        if e.index > cut:
            return " faded"
        return ""

    out: list[str] = []
    w, h = view.width, view.height
    # Ids must be unique on a page that shows several diagrams, yet the same frame must
    # always give the same bytes: derive them from what this picture shows.
    uid = "st" + hashlib.sha1(
        repr((names, step, cut, len(events), view.t0, view.t1, w, future)).encode()
    ).hexdigest()[:8]
    label = title or f"Space-time diagram of {len(names)} nodes" + (
        f" at step {step}" if step is not None else "")
    out.append(
        f'<svg xmlns="http://www.w3.org/2000/svg" class="txst" role="img" '
        f'width="{w:.0f}" height="{h:.0f}" viewBox="0 0 {w:.0f} {h:.0f}" '
        f'aria-label={_a(label)}><title>{_t(label)}</title><style>{STYLE}</style>'
        f'<defs><pattern id="{uid}-doubt" width="6" height="6" patternUnits="userSpaceOnUse" '
        'patternTransform="rotate(45)"><rect width="6" height="6" fill="#E69F00" '
        'fill-opacity=".25"/><line x1="0" y1="0" x2="0" y2="6" stroke="#E69F00" '
        'stroke-width="2.5"/></pattern>'
        f'<pattern id="{uid}-cut" width="8" height="8" '
        'patternUnits="userSpaceOnUse" patternTransform="rotate(-45)"><rect width="8" '
        'height="8" fill="#D55E00" fill-opacity=".04"/><line x1="0" y1="0" x2="0" y2="8" '
        'stroke="#D55E00" stroke-opacity=".16" stroke-width="1.5"/></pattern></defs>'
    )
    # The clip starts just below the node headers, so a mark at time 0 keeps its label.
    out.append(f'<clipPath id="{uid}-clip"><rect x="0" y="{view.top - 16:.1f}" width="{w:.0f}" '
               f'height="{view.y(hi) - view.top + 22:.1f}"/></clipPath>')
    out.append(_axis(view))
    spans = intervals(drawn if future == "hide" else events[: cut + 1])
    out.append(f'<g clip-path="url(#{uid}-clip)">')
    out.extend(_bands(spans, view, now, uid))
    out.extend(_bars(spans, view, now, uid))
    out.append("</g>")
    out.append(_lifelines(view, roles, spans, now))
    out.append(f'<g clip-path="url(#{uid}-clip)">')
    out.extend(_node_marks(drawn, view, visible, cls))
    out.extend(_messages(drawn, view, visible, cls))
    if step is not None and cut >= 0 and visible(now):
        y = view.y(now)
        out.append(f'<g class="now"><line x1="{view.left - 4}" y1="{y:.1f}" x2="{w - 8:.0f}" '
                   f'y2="{y:.1f}"/><text x="4" y="{y + 3.5:.1f}">step {step}</text></g>')
    out.append("</g></svg>")
    return "".join(out)


def _axis(view: View) -> str:
    span = view.t1 - view.t0
    every = next(s for s in (5, 10, 20, 25, 50, 100, 200, 250, 500, 1000, 2000, 5000)
                 if span / s <= 14)
    parts = ['<g class="axis">']
    first = (view.t0 + every - 1) // every * every
    for t in range(first, view.t1 + 1, every):
        y = view.y(t)
        parts.append(f'<line x1="{view.left}" y1="{y:.1f}" x2="{view.width - 8:.0f}" '
                     f'y2="{y:.1f}"/><text x="{view.left - 6}" y="{y + 3:.1f}" '
                     f'text-anchor="end">{t}</text>')
    parts.append(f'<text x="4" y="{view.top - 8}">time (ms)</text></g>')
    return "".join(parts)


def _lifelines(view: View, roles: dict[str, str], spans: list[Interval], now: int) -> str:
    parts = []
    downs: dict[str, list[Interval]] = {}
    for s in spans:
        if s.kind == "down" and s.node is not None:
            downs.setdefault(s.node, []).append(s)
    for n in view.nodes:
        x = view.x(n)
        box = min(view.col - 10, 130)
        parts.append(
            f'<g class="head" data-node={_a(n)}><rect x="{x - box / 2:.1f}" y="8" '
            f'width="{box:.1f}" height="34" rx="6"/><text x="{x:.1f}" y="23" '
            f'text-anchor="middle">{_t(n)}</text><text class="role" x="{x:.1f}" y="36" '
            f'text-anchor="middle">{_t(roles.get(n, ""))}</text></g>'
        )
        top, bottom = view.top - 12, view.y(view.t1)
        parts.append(f'<line class="life" x1="{x:.1f}" y1="{top:.1f}" x2="{x:.1f}" '
                     f'y2="{bottom:.1f}"/>')
        for d in downs.get(n, []):
            y1 = max(top, view.y(d.start))
            y2 = min(bottom, view.y(now if d.end is None else d.end))
            if y2 > y1:
                parts.append(f'<line class="life downline" x1="{x:.1f}" y1="{y1:.1f}" '
                             f'x2="{x:.1f}" y2="{y2:.1f}" stroke-width="6"/>')
    return "".join(parts)


def _bands(spans: list[Interval], view: View, now: int, uid: str) -> list[str]:
    parts = []
    for s in spans:
        if s.kind != "partition":
            continue
        y1, y2 = view.y(s.start), view.y(now if s.end is None else s.end)
        parts.append(
            f'<g class="partition"><rect class="band" fill="url(#{uid}-cut)" '
            f'x="{view.left:.1f}" y="{y1:.1f}" '
            f'width="{view.width - view.left - 8:.1f}" height="{max(2.0, y2 - y1):.1f}"/>'
            f'<text class="band-label" x="{view.left + 4:.1f}" '
            f'y="{max(y1, view.top) + 11:.1f}">'
            f'✂ {_t(s.label)}</text></g>'
        )
    return parts


def _bars(spans: list[Interval], view: View, now: int, uid: str) -> list[str]:
    parts = []
    for s in spans:
        if s.kind not in ("doubt", "locks") or s.node is None:
            continue
        x = view.x(s.node)
        y1, y2 = view.y(s.start), view.y(now if s.end is None else s.end)
        if s.kind == "doubt":
            bx, bw, what = x - 11, 7, "in doubt"
        else:
            bx, bw, what = x + 4, 5, f"locks held: {s.label}"
        until = "still open" if s.end is None else f"until {s.end}"
        fill = f' fill="url(#{uid}-doubt)"' if s.kind == "doubt" else ""
        parts.append(
            f'<rect class="bar {s.kind}"{fill} data-node={_a(s.node)} x="{bx:.1f}" y="{y1:.1f}" '
            f'width="{bw}" height="{max(1.5, y2 - y1):.1f}"><title>{_t(s.node)} {what} '
            f'from {s.start} {until}</title></rect>'
        )
    return parts


def _node_marks(
    events: list[TraceEvent], view: View, visible: Visible, cls: Styler
) -> list[str]:
    """Log ticks, state pills, crash and recovery marks, decisions and timeouts."""
    parts = []
    stack: dict[tuple[str, int, str], int] = {}  # labels already at (node, time, side)

    def slot(node: str, t: int, side: str) -> int:
        k = stack.get((node, t, side), 0)
        stack[(node, t, side)] = k + 1
        return k

    for e in events:
        n = e.node
        if n is None or n not in view.nodes or not visible(e.time):
            continue
        x, y = view.x(n), view.y(e.time)
        c = cls(e)
        if e.kind == "log":
            record, _, how = e.detail.rpartition(" ")
            lazy = how == "(lazy)"
            dy = slot(n, e.time, "right") * 11
            parts.append(
                f'<g class="log{c}" data-step="{e.step}"><rect class="tick'
                f'{" lazy" if lazy else ""}" x="{x - 4:.1f}" y="{y - 4:.1f}" width="8" '
                f'height="8" fill="currentColor" stroke="currentColor"/><text class="logtext" '
                f'x="{x + 12:.1f}" y="{y + 3.5 + dy:.1f}">{"□" if lazy else "■"} {_t(record)}'
                f'</text><title>{_t(n)} writes {_t(e.detail)} at {e.time}</title></g>'
            )
        elif e.kind == "state":
            state = e.states.get(n, e.detail)
            dy = slot(n, e.time, "left") * 14
            wpx = 8 + 6.2 * len(state)
            parts.append(
                f'<g class="pill{c}" data-step="{e.step}"><rect x="{x - 14 - wpx:.1f}" '
                f'y="{y - 6 + dy:.1f}" width="{wpx:.1f}" height="13" rx="6"/><text '
                f'x="{x - 14 - wpx / 2:.1f}" y="{y + 3.5 + dy:.1f}" text-anchor="middle">'
                f'{_t(state)}</text><title>{_t(n)} enters {_t(state)} at {e.time}'
                f'{(" (" + _t(e.detail) + ")") if e.detail != state else ""}</title></g>'
            )
        elif e.kind in ("crash", "recover", "decision", "timeout"):
            parts.append(_mark(e, x, y, c))
        elif e.kind == "effect":
            dy = slot(n, e.time, "right") * 11
            parts.append(
                f'<g class="mark effect{c}" data-node={_a(n)} data-step="{e.step}"><text '
                f'x="{x + 12:.1f}" y="{y + 3.5 + dy:.1f}" font-size="9.5">◆ '
                f'{_t(_short(e.detail, 26))}</text><title>{_t(n)}: {_t(e.detail)}</title></g>'
            )
    return parts


def _mark(e: TraceEvent, x: float, y: float, c: str) -> str:
    if e.kind == "crash":
        body = (f'<path class="crashmark" d="M{x - 8:.1f},{y - 8:.1f}L{x + 8:.1f},{y + 8:.1f}'
                f'M{x - 8:.1f},{y + 8:.1f}L{x + 8:.1f},{y - 8:.1f}" stroke="{VERMILION}" '
                f'stroke-width="3.5"/><text x="{x + 11:.1f}" y="{y - 4:.1f}" '
                f'fill="{VERMILION}">crash</text>')
        tip = f"{e.node} crashes at {e.time}: {e.detail}"
    elif e.kind == "recover":
        body = (f'<circle cx="{x:.1f}" cy="{y:.1f}" r="7" fill="none" stroke="{GREEN}" '
                f'stroke-width="2.5"/><text x="{x + 11:.1f}" y="{y - 4:.1f}">↻ recover</text>')
        tip = f"{e.node} restarts at {e.time}: {e.detail}"
    elif e.kind == "decision":
        ok = e.detail == "commit"
        colour, symbol = (GREEN, "✓") if ok else (VERMILION, "✗")
        body = (f'<circle cx="{x:.1f}" cy="{y:.1f}" r="6" fill="{colour}"/><text '
                f'x="{x:.1f}" y="{y + 3.5:.1f}" text-anchor="middle" font-size="9" '
                f'fill="#fff" style="fill:#fff">{symbol}</text>')
        tip = f"{e.node} decides {e.detail} at {e.time}"
    else:
        body = (f'<circle cx="{x:.1f}" cy="{y:.1f}" r="3" fill="none" stroke="currentColor"/>'
                f'<text x="{x - 8:.1f}" y="{y + 3.5:.1f}" text-anchor="end" '
                f'font-style="italic">timeout {_t(_short(e.detail.split("|")[0], 16))}</text>')
        tip = f"{e.node}: timer {e.detail} fires at {e.time}"
    return (f'<g class="mark {e.kind}{c}" data-node={_a(e.node)} data-step="{e.step}">'
            f'{body}<title>{_t(tip)}</title></g>')


def _messages(
    events: list[TraceEvent], view: View, visible: Visible, cls: Styler
) -> list[str]:
    """One arrow per sent message (and per network copy), ending where it ended."""
    ends: dict[tuple[int, int], TraceEvent] = {}
    for e in events:
        if e.kind in ("deliver", "drop") and e.message is not None:
            key = (e.message.id, e.message.copy)
            if e.kind == "deliver" or key not in ends:
                ends.setdefault(key, e)
    parts = []
    # Several saga instances in one run: say which one each arrow belongs to.
    sagas = {e.message.payload.get("saga_id") for e in events
             if e.kind == "send" and e.message is not None} - {None}
    for e in events:
        if e.kind not in ("send", "duplicate") or e.message is None:
            continue
        m = e.message
        end = ends.get((m.id, m.copy))
        t_end = end.time if end is not None else view.t1
        if not (visible(e.time) or visible(t_end) or (e.time < view.t0 and t_end > view.t1)):
            continue
        colour = MESSAGE_COLOURS.get(m.type, DEFAULT_MESSAGE_COLOUR)
        x1, y1 = view.x(m.src), view.y(e.time)
        x2 = view.x(m.dst)
        c = cls(end if end is not None and cls(end) == " current" else e)
        if end is not None and end.kind == "drop" and end.time == e.time:
            # Lost as it was sent: a short stub towards the destination, then a cross.
            x2s, y2s = x1 + (x2 - x1) * 0.3, y1 + 9
            kind, body = "dropped", (
                f'<line x1="{x1:.1f}" y1="{y1:.1f}" x2="{x2s:.1f}" y2="{y2s:.1f}" '
                f'stroke="{colour}"/>' + _cross(x2s, y2s, VERMILION))
            lx, ly = x2s, y2s
        else:
            y2 = view.y(t_end)
            if end is not None and end.kind == "drop":
                kind = "dropped"
                body = (f'<line x1="{x1:.1f}" y1="{y1:.1f}" x2="{x2:.1f}" y2="{y2:.1f}" '
                        f'stroke="{colour}"/>' + _cross(x2, y2, VERMILION))
            else:
                kind = "delivered" if end is not None else "inflight"
                body = (f'<line x1="{x1:.1f}" y1="{y1:.1f}" x2="{x2:.1f}" y2="{y2:.1f}" '
                        f'stroke="{colour}"/>')
                if end is not None:
                    body += _arrowhead(x1, y1, x2, y2, colour)
            lx, ly = (x1 + x2) / 2, (y1 + y2) / 2
        if m.copy:
            kind += " dup"
        step_name = m.payload.get("step", m.payload.get("event"))
        name = m.type + (f" {step_name}" if isinstance(step_name, str) else "") + (
            " ⧉" if m.copy else "")
        if len(sagas) > 1:
            name = f"{m.payload.get('saga_id')}: {name}"
        anchor = "start" if x2 >= x1 else "end"
        offset = 4 if x2 >= x1 else -4
        parts.append(
            f'<g class="msg {kind}{c}" data-msg="{m.id}" data-copy="{m.copy}" '
            f'data-type={_a(m.type)} data-step="{e.step}"'
            f'{"" if end is None else f" data-end-step={_a(end.step)}"}>{body}'
            f'<text x="{lx + offset:.1f}" '
            f'y="{ly - 3:.1f}" text-anchor="{anchor}" fill="{colour}" style="fill:{colour}">'
            f'{_t(name)}</text><title>{_t(_tooltip(m, e, end))}</title></g>'
        )
    return parts
