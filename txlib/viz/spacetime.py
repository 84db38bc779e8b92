"""The space-time (Lamport) diagram of a trace, as a self-contained SVG string.

One lifeline per node and one arrow per message, from its send to its delivery, so
reordering and concurrency show as crossing arrows. Time runs downward in rows by event
(see :mod:`txlib.viz.timeline`): each row is labelled with its simulated time on the
axis, simultaneous events at one node are stacked, and ``time="proportional"`` draws
time to scale instead (expanded where events are dense).

Marks: a cross where a message was lost, next to the side it never reached (at the wall
of a partition); a distinct dash for a network duplicate; crash and recovery on the
node's own lifeline (dashed while down); while a partition lasts each side's lanes are
tinted and a wall stands between the sides, its label in the right margin; bars where a
participant is in doubt or holds locks; durable-log writes as ticks with the record name
(filled: forced; hollow: lazy); state pills; decisions; timeouts. The current step is
highlighted, later events hidden or faded.

With a ``window`` (the lab's view, which follows the step), only the events around the
step are laid out (:func:`window_slice`), with every message that crosses the view: a
frame of a run of 100,000 steps costs what one of a short run does, and looks exactly
as it would over the whole trace. The text alternative lists the last 200 events.

No label covers another: every label is placed by :mod:`txlib.viz.placement` at the first
free spot among candidates (along its arrow, beside its mark), with a leader line when
it had to move away, and a halo in the background colour so lines under it never hurt
its reading; a long label is shortened, its full text in the tooltip. Where labels do
not fit, the crowded moment gets more rows. Every message carries a ``<title>`` tooltip
with its payload; the picture has a title and a text alternative listing the events so
far, as the console prints them.

Neutral ink is ``currentColor`` so the picture follows a light or dark theme; arrows
use one colour language for every protocol (:mod:`txlib.viz.palette`), and every meaning
is also carried by a shape, a dash pattern or a word. All user text is escaped.
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from xml.sax.saxutils import escape, quoteattr

from ..engine.records import Message, TraceEvent
from ..engine.trace import Trace
from ..errors import TxlibError
from .palette import GREEN, SKY, VERMILION, message_colour, message_kind
from .placement import Area, Box, Placer
from .textsize import ASCENT, DESCENT, text_width
from .timeline import MIN_GAP, MODES, ROW, Rows, Span, lay_out, partition_sides
from .traceindex import LONG, TraceIndex, index_of

HEAD = 46.0  # px: the node headers' band
TOP = HEAD + 16.0  # px: y of the first row
LEFT = 64.0  # px: the time axis' margin
BOTTOM = 12.0
PAD = 12.0  # px above the first row and below the last
COL = 160.0  # px per lane when no width is asked for
MIN_COL, MAX_COL = 84.0, 200.0
MARGIN_RIGHT = 12.0
SIDE_LABEL = 140.0  # px: a partition's sides, in the right margin, at most
LABEL = 10.5  # font sizes, px (never under 10)
SMALL = 10.0
# A picture without a window draws every event up to its step: about 500 bytes of SVG
# and 0.3 ms each. Past this many, a notebook cell would wait seconds and hold megabytes.
MAX_DRAWN_EVENTS = 20_000
DESC_EVENTS = 200  # the text alternative lists at most the last this many events
MSG_CHARS = 24  # a message label longer than this is shortened (tooltip: all of it)
MARK_CHARS = 22
# Decisions drawn as a green ✓ (the rest, e.g. abort, compensated, stuck: a vermilion ✗):
# a saga that completed or a TCC transaction confirmed is no abort.
DONE_WELL = ("commit", "completed", "confirm")
RETRIES = 4  # times a crowded moment is given more rows before labels may move far

STYLE = """
.txst{font-family:ui-sans-serif,system-ui,-apple-system,'Segoe UI',sans-serif;font-size:10.5px;
--txst-halo:var(--jp-layout-color0,#fff)}
@media (prefers-color-scheme:dark){.txst{--txst-halo:var(--jp-layout-color0,#111)}}
.txst text{fill:currentColor}
.txst .lbl text,.txst text.lbl{paint-order:stroke;stroke:var(--txst-halo);stroke-width:3px;
stroke-linejoin:round}
.txst .life{stroke:currentColor;stroke-width:1.5;opacity:.55}
.txst .life.downline{stroke-dasharray:2 4;opacity:.4;stroke-width:5}
.txst .head rect{fill:currentColor;fill-opacity:.07;stroke:currentColor;stroke-opacity:.4}
.txst .head text{font-weight:600;font-size:12px}
.txst .head .role{font-weight:400;font-size:10px;opacity:.8}
.txst .axis text{font-size:10px;opacity:.75}
.txst .axis line{stroke:currentColor;opacity:.12}
.txst .msg line,.txst .msg path{stroke-width:1.6;fill:none}
.txst .msg.dropped line{stroke-dasharray:5 3}
.txst .msg.dup line{stroke-dasharray:1.5 2.5;stroke-width:2.2}
.txst .cross{stroke-width:2.4;fill:none}
.txst .leader{stroke:currentColor;stroke-opacity:.45;stroke-width:1;fill:none}
.txst .tick.lazy{fill:none}
.txst .pill rect{fill:var(--txst-halo);stroke:currentColor;stroke-opacity:.7}
.txst .pill text{font-size:10px;font-weight:600;stroke:none}
.txst .bar.doubt{stroke:#E69F00}
.txst .bar.locks{fill:currentColor;fill-opacity:.18;stroke:currentColor;stroke-opacity:.35}
.txst .wall{stroke:#D55E00;stroke-width:3;stroke-dasharray:6 3}
.txst .now line{stroke:#F0E442;stroke-width:12;opacity:.45}
.txst .now text{font-weight:700}
.txst .current line,.txst .current path{stroke-width:3}
.txst .msg line.ahead{stroke-width:1.2}
.txst .lbl.current text{font-weight:700}
.txst .faded{opacity:.25}
.txst .grow line{stroke-dasharray:var(--len);stroke-dashoffset:var(--len);
animation:txst-grow .45s ease-out forwards}
.txst .appear{animation:txst-fade .45s ease-out both}
@keyframes txst-grow{to{stroke-dashoffset:0}}
@keyframes txst-fade{from{opacity:0}to{opacity:1}}
@media (prefers-reduced-motion:reduce){.txst .grow line{animation:none;stroke-dashoffset:0}
.txst .appear{animation:none}}
""".strip().replace("\n", "")


def _a(value: object) -> str:
    """An escaped, quoted XML attribute value."""
    return quoteattr(str(value))


def _t(value: object) -> str:
    """Escaped XML text."""
    return escape(str(value))


NAME = 12  # a lane header's node name, in px (bold); no smaller than NAME_MIN
NAME_MIN = 10


def _fit_name(name: str, px: float) -> tuple[str, int]:
    """A node's name and font size for a lane header ``px`` wide: the whole name at 12
    px, or at 11 or 10 px if that fits ("coordinator" over seven lanes), else cut short
    with an ellipsis at 10 px (the header's tooltip always has the whole name)."""
    for size in range(NAME, NAME_MIN - 1, -1):
        if text_width(name, size, True) <= px:
            return name, size
    return _cut(name, NAME_MIN, px, bold=True), NAME_MIN


def _cut(text: str, size: float, px: float, bold: bool = False) -> str:
    """A lane header's line (a node's name, its role) at most ``px`` pixels wide: cut
    from the end, an ellipsis in place of what was cut, down to one character and the
    ellipsis."""
    while len(text) > 2 and text_width(text, size, bold) > px:
        text = text[:-2] + "…"
    return text


def _short(text: str, limit: int) -> str:
    """``text`` cut to ``limit`` characters with an ellipsis (tooltips keep it whole)."""
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _fit(text: str, size: float, px: float, bold: bool = False) -> str:
    """``text`` shortened (with an ellipsis) to at most ``px`` pixels wide."""
    if text_width(text, size, bold) <= px:
        return text
    while len(text) > 1 and text_width(text + "…", size, bold) > px:
        text = text[:-1]
    return text + "…"


def _wrap(text: str, size: float, px: float) -> list[str]:
    """A partition's groups (``{a, b} | {c}``) in lines of at most ``px`` pixels: each
    group on a line of its own where it fits, else broken after a comma (a name longer
    than a line is shortened, the whole text in the tooltip)."""
    lines: list[str] = []
    for k, group in enumerate(text.split(" | ")):
        line = ""
        for word in (("| " if k else "") + group).split(" "):
            joined = f"{line} {word}" if line else word
            if line and line != "|" and text_width(joined, size) > px:
                lines.append(line)
                joined = word
            line = joined
        lines.append(line)
    return [_fit(part, size, px) for part in lines]


def _f(v: float) -> str:
    s = f"{v:.1f}"
    return s[:-2] if s.endswith(".0") else s


def _tooltip(msg: Message, sent: TraceEvent, end: TraceEvent | None) -> str:
    fate = "in flight"
    if end is not None:
        fate = (f"delivered at {end.time} (step {end.step})" if end.kind == "deliver"
                else f"lost at {end.time} (step {end.step}): {end.detail}")
    kind = message_kind(msg.type, msg.payload)
    return (f"message {msg.id}: {msg.describe()}\n{kind}; sent at {sent.time} "
            f"(step {sent.step}); {fate}")


def event_line(e: TraceEvent) -> str:
    """One event in words, as the console's trace lists it (payloads left out)."""
    what = ""
    if e.message is not None:
        m = e.message
        what = f"{m.src} -> {m.dst} {m.type}" + (" (duplicate)" if m.copy else "")
    if e.detail:
        what = f"{what} [{e.detail}]" if what else e.detail
    return f"step {e.step}, time {e.time}: {e.node or 'network'} {e.kind} {what}".rstrip()


@dataclass(frozen=True)
class Lanes:
    """Horizontal geometry: one lane per node."""

    nodes: tuple[str, ...]
    col: float
    left: float = LEFT

    def x(self, node: str) -> float:
        return self.left + self.col * (self.index[node] + 0.5)

    @property
    def index(self) -> dict[str, int]:
        return {n: i for i, n in enumerate(self.nodes)}

    @property
    def right(self) -> float:
        return self.left + self.col * len(self.nodes)


@dataclass
class Label:
    """A text (or a pill: text in a rounded box) to place, with its candidates."""

    text: str
    size: float
    bold: bool
    anchor: tuple[float, float]  # what it labels (a leader line goes there if moved)
    candidates: list[Box]
    cls: str  # classes of its <g>
    attrs: str = ""  # more attributes of its <g>
    tip: str = ""
    pill: bool = False
    italic: bool = False
    group: int = -1  # the row group it belongs to (for more rows when crowded)
    colour: str | None = None  # a swatch before the text
    near: int = 2  # the first candidates need no leader line
    segment: tuple[float, float, float, float] | None = None  # a message's line


@dataclass
class Picture:
    """What one rendering collects: layers of SVG and the labels still to place."""

    back: list[str] = field(default_factory=list)
    lines: list[str] = field(default_factory=list)
    marks: list[str] = field(default_factory=list)
    labels: list[Label] = field(default_factory=list)


def _text_size(label: Label) -> tuple[float, float]:
    # The current step's labels are drawn bold (see STYLE).
    w = text_width(label.text, label.size, label.bold or " current" in label.cls)
    if label.italic:
        w += label.size * 0.15
    h = (ASCENT + DESCENT) * label.size
    if label.pill:
        return w + 10, h + 4
    return w, h


def beside(x: float, y: float, w: float, h: float, prefer: str, room: float = 9.0,
           reach: int = 2, only: bool = False) -> list[Box]:
    """Candidate boxes of size ``w``x``h`` beside a mark at (x, y): on the ``prefer``
    side first, then the other (not with ``only``), then a little up or down (up to
    ``reach`` half rows)."""
    sides = [prefer] if only else [prefer, "left" if prefer == "right" else "right"]
    out = []
    shifts = [0.0] + [s * k * ROW / 2 for k in range(1, reach + 1) for s in (1, -1)]
    for dy in shifts:
        for side in sides:
            left = x + room if side == "right" else x - room - w
            top = y + dy - h / 2
            out.append(Box(left, top, left + w, top + h))
    return out


def along(x1: float, y1: float, x2: float, y2: float, w: float, h: float,
          lo: float, hi: float) -> list[Box]:
    """Candidate boxes of size ``w``x``h`` on a segment (centred on it, the halo hides the
    line) and just above or below it, nearest the middle first; only where the point is
    between ``lo`` and ``hi`` (the visible rows)."""
    out = []
    for f in (0.5, 0.38, 0.62, 0.26, 0.74, 0.15, 0.85, 0.06, 0.94):
        px, py = x1 + (x2 - x1) * f, y1 + (y2 - y1) * f
        if not lo <= py <= hi:
            continue
        for dy in (0.0, -h / 2 - 2, h / 2 + 2):
            top = py + dy - h / 2
            out.append(Box(px - w / 2, top, px + w / 2, top + h))
    return out


def _uid(*parts: object) -> str:
    return "st" + hashlib.sha1(repr(parts).encode()).hexdigest()[:8]


def spacetime_svg(
    trace: Sequence[TraceEvent],
    step: int | None = None,
    *,
    nodes: Sequence[str] | None = None,
    roles: dict[str, str] | None = None,
    future: str = "hide",
    window: int | None = None,
    scale: float = 4.0,
    width: int | None = None,
    title: str | None = None,
    time: str = "events",
    animate: bool = False,
) -> str:
    """Draw ``trace`` as a space-time diagram, as it stands after scheduler ``step``.

    ``step=None`` draws the whole run. ``future`` says what to do with events after
    ``step``: ``"hide"``, ``"fade"`` or ``"show"``. ``time`` is ``"events"`` (rows by
    event, the default) or ``"proportional"`` (``scale`` pixels per simulated
    millisecond, expanded where events are dense). ``window`` is the height in pixels of
    the part shown (it follows ``step``; None shows everything). ``width`` fits the lanes
    (and their labels) into that many pixels. ``animate`` grows the current step's
    arrows and fades its marks in (off under ``prefers-reduced-motion``).
    """
    if future not in ("hide", "fade", "show"):
        raise ValueError(f"future must be 'hide', 'fade' or 'show', got {future!r}")
    if time not in MODES:
        raise ValueError(f"time must be one of {MODES}, got {time!r}")
    names = tuple(nodes) if nodes is not None else tuple(getattr(trace, "nodes", ()))
    if not names:
        names = tuple(dict.fromkeys(n for e in trace for n in e.states))
    events = trace if isinstance(trace, (Trace, list, tuple)) else list(trace)
    index = index_of(events)
    cut = len(events) - 1 if step is None else index.last_of_step(step)
    end = len(events) if future != "hide" else cut + 1  # the events laid out
    if window is None and end > MAX_DRAWN_EVENTS:
        raise TxlibError(
            f"this picture would draw {end:,} events, and one without a window draws at "
            f"most {MAX_DRAWN_EVENTS:,} (about 500 bytes of SVG each): draw the part "
            "around a step with window=600 (pixels high; step= puts it where you want)"
            + (", or an earlier step" if future == "hide" else ""))
    first, last = (0, end) if window is None else window_slice(index, cut, end, window)
    laid = events[first:last]
    view = View(events, index, first, end)
    extra: dict[int, int] = {}
    svg = ""
    for attempt in range(RETRIES + 1):
        rows = lay_out(laid, names, mode=time, scale=scale, extra=extra)
        drawing = _Drawing(laid, rows, names, roles or {}, step, cut - first, window, width,
                           title, animate, final=attempt == RETRIES, view=view)
        svg, crowded = drawing.render()
        if not crowded:
            break
        for g in crowded:
            extra[g] = extra.get(g, 0) + 1
    return svg


def window_slice(index: TraceIndex, cut: int, end: int, window: int) -> tuple[int, int]:
    """The events to lay out for a ``window`` px high view around event ``cut``, of the
    ``end`` events a drawing shows: from the start of a time group far enough above the
    view (each group is at least one row and a gap high), to the end of one far enough
    below it (or ``end``), and every message crossing the view with both its ends. The
    view then looks exactly as it would over all ``end`` events."""
    if cut < 0 or end == 0:
        return 0, end
    groups = math.ceil(window / (ROW + MIN_GAP)) + 2
    first = index.group_start(cut)
    for _ in range(groups):
        if first == 0:
            break
        first = index.group_start(first - 1)
    last = min(end, index.group_end(cut))
    for _ in range(groups):
        if last >= end:
            break
        last = min(end, index.group_end(last))
    # A message that ends less than LONG events after its send has both ends in these
    # bounds if it crosses the view's part; a longer one is looked up.
    first = index.group_start(max(0, first - LONG))
    last = min(end, index.group_end(min(end, last + LONG) - 1))
    for sent, ended in index.long:
        if sent >= last:
            break
        if ended is None or ended >= first:
            first = min(first, index.group_start(sent))
            if ended is not None and ended < end:
                last = max(last, min(end, index.group_end(ended)))
    return first, last


@dataclass(frozen=True)
class View:
    """The trace a drawing shows part of: its ``laid`` events are ``events[first:end]``
    (or fewer: a window of them), looked up in ``index``."""

    events: Sequence[TraceEvent]
    index: TraceIndex
    first: int
    end: int  # events from here on are hidden (later than the step drawn)

    def spans(self, count: int) -> list[Span]:
        """The spans over the ``count`` laid events, by their positions there: one that
        began before them starts at a negative position; one that ends after ``end`` is
        still open; one that ends after the laid events but before ``end`` ends at its
        position past them."""
        first, last = self.first, self.first + count
        out = []
        for s in self.index.spans:
            if s.start >= last or (s.end is not None and s.end < first):
                continue
            out.append(Span(s.kind, s.node, s.start - first,
                            None if s.end is None or s.end >= self.end else s.end - first,
                            s.label))
        return out


class _Drawing:
    """One rendering of a diagram: geometry, marks, labels placed, SVG written."""

    def __init__(self, events: Sequence[TraceEvent], rows: Rows, names: tuple[str, ...],
                 roles: dict[str, str], step: int | None, cut: int, window: int | None,
                 width: int | None, title: str | None, animate: bool, final: bool,
                 view: View) -> None:
        self.events, self.rows, self.roles = events, rows, roles
        self.view = view
        self.step, self.cut, self.final, self.animate = step, cut, final, animate
        n = max(1, len(names))
        col = COL if width is None else (width - LEFT - MARGIN_RIGHT - SIDE_LABEL - 12) / n
        self.lanes = Lanes(names, max(MIN_COL, min(MAX_COL, col)))
        self.width_asked = width
        self.title = title
        now_y = rows.y[cut] if 0 <= cut < len(rows.y) else 0.0
        self.now_y = now_y
        total = rows.height
        if window is None:
            self.y0, self.y1 = -PAD, total + PAD
        elif total + 2 * PAD <= window:
            # The whole run so far fits: the same height anyway, so nothing below moves.
            self.y0, self.y1 = -PAD, window - PAD
        else:
            y0 = now_y - 0.72 * window
            self.y0 = max(-PAD, min(y0, total + PAD - window))
            self.y1 = self.y0 + window
        self.windowed = window is not None and total + 2 * PAD > window
        self.pic = Picture()

    # --- coordinates ----------------------------------------------------------------
    def sy(self, content_y: float) -> float:
        """Screen y of a content y (rows start at 0)."""
        return TOP - PAD + content_y - self.y0

    def shown(self, content_y: float) -> bool:
        return self.y0 - 1 <= content_y <= self.y1 + 1

    @property
    def body_top(self) -> float:
        return self.sy(self.y0)

    @property
    def body_bottom(self) -> float:
        return self.sy(self.y1)

    def cls(self, e: TraceEvent, position: int) -> str:
        if self.step is not None and e.step == self.step:
            return " current" + (" appear" if self.animate else "")
        if position > self.cut:
            return " faded"
        return ""

    # --- the whole picture -----------------------------------------------------------
    def render(self) -> tuple[str, set[int]]:
        lanes = self.lanes
        right_limit = None if self.width_asked is None else self.width_asked - 4.0
        area = Area(left=4.0, top=self.body_top + 1, right=right_limit,
                    bottom=self.body_bottom - 1 if self.windowed else None)
        placer = Placer(area)
        fixed: list[str] = []
        self._now(placer, fixed)
        self._axis(placer, fixed)
        span_list = self.view.spans(len(self.events))
        self._partitions(span_list, placer, fixed)
        self._bars(span_list)
        self._node_marks(placer)
        self._messages(placer)
        crowded = self._place(placer)
        if crowded and not self.final:
            return "", crowded
        right = max([lanes.right + MARGIN_RIGHT, *(b.right + 6 for b in placer.taken)])
        if self.width_asked is not None:
            right = max(right, float(self.width_asked))
        bottom = max([self.body_bottom, *(b.bottom for b in placer.taken)]) + BOTTOM
        return self._svg(right, bottom, span_list, fixed), set()

    def _svg(self, w: float, h: float, span_list: list[Span], fixed: list[str]) -> str:
        lanes, events, cut = self.lanes, self.events, self.cut
        uid = _uid(lanes.nodes, self.step, cut, len(events), self.y0, self.y1, w, h,
                   self.width_asked, *((self.view.first,) if self.view.first else ()))
        label = self.title or (f"Space-time diagram of {len(lanes.nodes)} nodes"
                               + (f" at step {self.step}" if self.step is not None else ""))
        seen = self.view.first + cut + 1  # events up to the step drawn
        listed = self.view.events[max(0, seen - DESC_EVENTS):seen]
        desc = (f"{seen} events so far" if self.step is not None else f"{seen} events") + (
            f"; the last {len(listed)}" if len(listed) < seen else "") + ":\n" + "\n".join(
            event_line(e) for e in listed)
        out = [
            f'<svg xmlns="http://www.w3.org/2000/svg" class="txst" role="img" '
            f'width="{w:.0f}" height="{h:.0f}" viewBox="0 0 {w:.0f} {h:.0f}" '
            f'aria-labelledby="{uid}-t {uid}-d"><title id="{uid}-t">{_t(label)}</title>'
            f'<desc id="{uid}-d">{_t(desc)}</desc><style>{STYLE}</style>'
            f'<defs><pattern id="{uid}-doubt" width="6" height="6" '
            'patternUnits="userSpaceOnUse" patternTransform="rotate(45)"><rect width="6" '
            'height="6" fill="#E69F00" fill-opacity=".25"/><line x1="0" y1="0" x2="0" y2="6" '
            'stroke="#E69F00" stroke-width="2.5"/></pattern>'
        ]
        for k, colour in enumerate((VERMILION, SKY)):
            out.append(
                f'<pattern id="{uid}-side{k}" width="8" height="8" patternUnits="userSpaceOnUse"'
                f' patternTransform="rotate({-45 if k == 0 else 45})"><rect width="8" '
                f'height="8" fill="{colour}" fill-opacity=".07"/><line x1="0" y1="0" x2="0" '
                f'y2="8" stroke="{colour}" stroke-opacity=".22" stroke-width="1.5"/></pattern>')
        out.append("</defs>")
        out.append(f'<clipPath id="{uid}-clip"><rect x="0" y="{_f(self.body_top - 2)}" '
                   f'width="{w:.0f}" height="{_f(self.body_bottom - self.body_top + 4)}"/>'
                   "</clipPath>")
        body = "".join(self.pic.back).replace("{uid}", uid)
        out.append(f'<g clip-path="url(#{uid}-clip)">{body}</g>')
        out.append(self._lifelines(span_list))
        out.append(f'<g clip-path="url(#{uid}-clip)">' + "".join(self.pic.lines)
                   + "".join(self.pic.marks) + "</g>")
        out.extend(fixed)
        out.extend(self._written)
        out.append("</svg>")
        return "".join(out)

    # --- fixed parts: the now line, the axis, headers, lifelines ----------------------
    def _now(self, placer: Placer, fixed: list[str]) -> None:
        if self.step is None or self.cut < 0 or not self.shown(self.now_y):
            return
        y = self.sy(self.now_y)
        text = f"step {self.step}"
        w = text_width(text, LABEL, True)
        box = placer.take(Box(4, y - 7, 4 + w, y + 7))
        fixed.append(f'<g class="now"><line x1="{_f(LEFT - 2)}" y1="{_f(y)}" '
                     f'x2="{_f(self.lanes.right)}" y2="{_f(y)}"/><text class="lbl" '
                     f'x="{_f(box.left)}" y="{_f(y + 3.8)}">{text}</text></g>')

    def _axis(self, placer: Placer, fixed: list[str]) -> None:
        parts = ['<g class="axis">']
        parts.append(f'<text x="4" y="{_f(HEAD + 2)}">time (ms)</text>')
        for g in self.rows.groups:
            if not self.shown(g.y):
                continue
            y = self.sy(g.y)
            text = str(g.time)
            w = text_width(text, SMALL)
            box = Box(LEFT - 8 - w, y - 6, LEFT - 8, y + 6)
            if not placer.free(box):
                continue
            placer.take(box)
            parts.append(f'<line x1="{_f(LEFT - 4)}" y1="{_f(y)}" x2="{_f(self.lanes.right)}" '
                         f'y2="{_f(y)}"/><text x="{_f(LEFT - 8)}" y="{_f(y + 3.5)}" '
                         f'text-anchor="end">{text}</text>')
        parts.append("</g>")
        fixed.append("".join(parts))

    def _lifelines(self, span_list: list[Span]) -> str:
        lanes = self.lanes
        parts = []
        top, bottom = HEAD, self.body_bottom
        box = min(lanes.col - 8, 150.0)
        for n in lanes.nodes:
            x = lanes.x(n)
            name, size = _fit_name(n, box - 8)
            role = _cut(_short(self.roles.get(n, ""), 22), 10, box - 8)
            parts.append(
                f'<g class="head" data-node={_a(n)}><title>{_t(n)} '
                f'({_t(self.roles.get(n, ""))})</title><rect x="{_f(x - box / 2)}" y="6" '
                f'width="{_f(box)}" height="34" rx="6"/><text x="{_f(x)}" y="21" '
                + ("" if size == NAME else f'style="font-size:{size}px" ')
                + f'text-anchor="middle">{_t(name)}</text><text class="role" x="{_f(x)}" '
                f'y="34" text-anchor="middle">{_t(role)}</text></g>')
            parts.append(f'<line class="life" x1="{_f(x)}" y1="{_f(top)}" x2="{_f(x)}" '
                         f'y2="{_f(bottom)}"/>')
        for s in span_list:
            if s.kind != "down" or s.node not in lanes.index:
                continue
            x = lanes.x(s.node)
            y1 = max(self.body_top, self.sy(self._y(s.start)))
            end = self.rows.height + 8 if s.end is None else self._y(s.end)
            y2 = min(bottom, self.sy(end))
            if y2 > y1:
                parts.append(f'<line class="life downline" data-node={_a(s.node)} '
                             f'x1="{_f(x)}" y1="{_f(y1)}" x2="{_f(x)}" y2="{_f(y2)}"/>')
        return "".join(parts)

    # --- spans: partitions, in doubt, locks -------------------------------------------
    def _span_ys(self, s: Span) -> tuple[float, float]:
        y1 = self.sy(self._y(s.start))
        y2 = self.sy(self.rows.height + 4 if s.end is None else self._y(s.end))
        return y1, y2

    def _partitions(self, span_list: list[Span], placer: Placer, fixed: list[str]) -> None:
        lanes = self.lanes
        for s in span_list:
            if s.kind != "partition":
                continue
            y1, y2 = self._span_ys(s)
            if y2 < self.body_top or y1 > self.body_bottom:
                continue
            label_y = max(y1, self.body_top + 8)
            # Drawn over the view only (the rest would be clipped).
            y1, y2 = max(y1, self.body_top - 2), min(y2, self.body_bottom + 2)
            sides = partition_sides(s.label, lanes.nodes)
            parts = [f'<g class="partition" data-step="{self._event(s.start).step}">']
            if sides is not None:
                for n in lanes.nodes:
                    k = sides[n] % 2
                    x = lanes.left + lanes.col * lanes.index[n]
                    parts.append(f'<rect class="side" data-node={_a(n)} data-side="{sides[n]}" '
                                 f'fill="url(#{{uid}}-side{k})" x="{_f(x + 1)}" y="{_f(y1)}" '
                                 f'width="{_f(lanes.col - 2)}" height="{_f(max(2.0, y2 - y1))}"/>')
                for a, b in zip(lanes.nodes, lanes.nodes[1:], strict=False):
                    if sides[a] != sides[b]:
                        x = lanes.left + lanes.col * lanes.index[b]
                        parts.append(f'<line class="wall" x1="{_f(x)}" y1="{_f(y1)}" '
                                     f'x2="{_f(x)}" y2="{_f(y2)}"/>')
            parts.append("</g>")
            self.pic.back.append("".join(parts))
            # The label in the right margin, at the partition's start (or the view's top):
            # "✂ partition", and the sides below it.
            groups = s.label.split(" after ")[0].split(" when ")[0]
            groups = groups[len("partition "):] if groups.startswith("partition ") else groups
            y = label_y
            x = lanes.right + 8
            lines = [("✂ partition", True, LABEL)] + [
                (line, False, SMALL) for line in _wrap(groups, SMALL, SIDE_LABEL)]
            for k, (text, bold, size) in enumerate(lines):
                w = text_width(text, size, bold)
                dy = k * 13.0
                cands = [Box(x, y + dy + j * ROW / 2 - 7, x + w, y + dy + j * ROW / 2 + 7)
                         for j in range(0, 16)]
                self.pic.labels.append(Label(text, size, bold, (lanes.right, y), cands,
                                             "lbl band-label", tip=s.label, near=16))

    def _bars(self, span_list: list[Span]) -> None:
        for s in span_list:
            if s.kind not in ("doubt", "locks") or s.node not in self.lanes.index:
                continue
            y1, y2 = self._span_ys(s)
            y1, y2 = max(y1, self.body_top - 2), min(y2, self.body_bottom + 2)
            if y2 <= y1:
                continue
            x = self.lanes.x(s.node)
            start_time = self._event(s.start).time
            if s.kind == "doubt":
                bx, bw, what = x - 11, 7, "in doubt"
                fill = ' fill="url(#{uid}-doubt)"'
            else:
                bx, bw, what = x + 4, 5, f"locks held: {s.label}"
                fill = ""
            until = "still open" if s.end is None else f"until {self._event(s.end).time}"
            self.pic.back.append(
                f'<rect class="bar {s.kind}"{fill} data-node={_a(s.node)} x="{_f(bx)}" '
                f'y="{_f(y1)}" width="{bw}" height="{_f(max(1.5, y2 - y1))}"><title>'
                f'{_t(s.node)} {what} from {start_time} {until}</title></rect>')

    # --- marks on lifelines ------------------------------------------------------------
    def _node_marks(self, placer: Placer) -> None:
        lanes, rows = self.lanes, self.rows
        index = lanes.index
        for p, e in enumerate(self.events):
            n = e.node
            if n is None or n not in index or e.kind not in (
                    "log", "state", "crash", "recover", "decision", "timeout", "effect"):
                continue
            cy = rows.y[p]
            if not self.shown(cy):
                continue
            x, y = lanes.x(n), self.sy(cy)
            c = self.cls(e, p)
            g = rows.group_of(p)
            attrs = f' data-node={_a(n)} data-step="{e.step}"'
            if e.kind == "log":
                record, _, how = e.detail.rpartition(" ")
                lazy = how == "(lazy)"
                self.pic.marks.append(
                    f'<g class="log{c}"{attrs}><rect class="tick{" lazy" if lazy else ""}" '
                    f'x="{_f(x - 4)}" y="{_f(y - 4)}" width="8" height="8" fill="currentColor" '
                    f'stroke="currentColor"/><title>{_t(n)} writes {_t(e.detail)} at '
                    f'{e.time}</title></g>')
                placer.take(Box(x - 4, y - 4, x + 4, y + 4))
                text = ("□ " if lazy else "■ ") + _short(record, MARK_CHARS)
                self._mark_label(text, SMALL, False, x, y, "right", f"lbl log-label{c}", attrs,
                                 f"{n} writes {e.detail} at {e.time}", g)
            elif e.kind == "state":
                state = e.states.get(n, e.detail)
                tip = f"{n} enters {state} at {e.time}" + (
                    f" ({e.detail})" if e.detail != state else "")
                self._mark_label(_short(state, MARK_CHARS), SMALL, True, x, y, "left",
                                 f"pill{c}", attrs, tip, g, pill=True)
            elif e.kind == "crash":
                self.pic.marks.append(
                    f'<g class="mark crash{c}"{attrs}><path class="crashmark" '
                    f'd="M{_f(x - 7)},{_f(y - 7)}L{_f(x + 7)},{_f(y + 7)}M{_f(x - 7)},'
                    f'{_f(y + 7)}L{_f(x + 7)},{_f(y - 7)}" stroke="{VERMILION}" '
                    f'stroke-width="3.5"/><title>{_t(n)} crashes at {e.time}: '
                    f'{_t(e.detail)}</title></g>')
                placer.take(Box(x - 8, y - 8, x + 8, y + 8))
                self._mark_label("✗ crash", LABEL, True, x, y, "right",
                                 f"lbl crash-label{c}", attrs, f"{n} crashes at {e.time}: "
                                 f"{e.detail}", g, room=11.0)
            elif e.kind == "recover":
                self.pic.marks.append(
                    f'<g class="mark recover{c}"{attrs}><circle cx="{_f(x)}" cy="{_f(y)}" '
                    f'r="6.5" fill="none" stroke="{GREEN}" stroke-width="2.5"/><title>'
                    f'{_t(n)} restarts at {e.time}: {_t(e.detail)}</title></g>')
                placer.take(Box(x - 8, y - 8, x + 8, y + 8))
                self._mark_label("↻ recover", LABEL, True, x, y, "right",
                                 f"lbl recover-label{c}", attrs,
                                 f"{n} restarts at {e.time}: {e.detail}", g, room=11.0)
            elif e.kind == "decision":
                ok = e.detail in DONE_WELL
                colour = GREEN if ok else VERMILION
                glyph = (f"M{_f(x - 3)},{_f(y)}L{_f(x - 0.8)},{_f(y + 2.6)}L{_f(x + 3.2)},"
                         f"{_f(y - 2.8)}" if ok else
                         f"M{_f(x - 2.6)},{_f(y - 2.6)}L{_f(x + 2.6)},{_f(y + 2.6)}M"
                         f"{_f(x - 2.6)},{_f(y + 2.6)}L{_f(x + 2.6)},{_f(y - 2.6)}")
                self.pic.marks.append(
                    f'<g class="mark decision{c}"{attrs} data-decision={_a(e.detail)}>'
                    f'<circle cx="{_f(x)}" cy="{_f(y)}" r="6.5" fill="{colour}"/><path '
                    f'd="{glyph}" stroke="#fff" stroke-width="1.8" fill="none"/><title>'
                    f'{_t(n)} decides {_t(e.detail)} at {e.time}</title></g>')
                placer.take(Box(x - 7, y - 7, x + 7, y + 7))
            elif e.kind == "timeout":
                self.pic.marks.append(
                    f'<g class="mark timeout{c}"{attrs}><circle cx="{_f(x)}" cy="{_f(y)}" '
                    f'r="3" fill="none" stroke="currentColor"/><title>{_t(n)}: timer '
                    f'{_t(e.detail)} fires at {e.time}</title></g>')
                placer.take(Box(x - 3, y - 3, x + 3, y + 3))
                text = "timeout " + _short(e.detail.split("|")[0], 16)
                self._mark_label(text, SMALL, False, x, y, "left", f"lbl timeout-label{c}",
                                 attrs, f"{n}: timer {e.detail} fires at {e.time}", g,
                                 italic=True)
            else:  # effect
                self._mark_label("◆ " + _short(e.detail, MARK_CHARS), SMALL, False, x, y,
                                 "right", f"lbl effect-label{c}", attrs, f"{n}: {e.detail}", g)

    def _mark_label(self, text: str, size: float, bold: bool, x: float, y: float,
                    prefer: str, cls: str, attrs: str, tip: str, group: int,
                    pill: bool = False, italic: bool = False, room: float = 9.0) -> None:
        label = Label(text, size, bold, (x, y), [], cls, attrs, tip, pill=pill,
                      italic=italic, group=group)
        w, h = _text_size(label)
        label.candidates = beside(x, y, w, h, prefer, room=room + (1.0 if pill else 0.0))
        self.pic.labels.append(label)

    # --- messages ------------------------------------------------------------------------
    def _messages(self, placer: Placer) -> None:
        lanes, rows, events = self.lanes, self.rows, self.events
        index = lanes.index
        view = self.view
        ends, first, count = view.index.ends, view.first, len(events)
        sagas = view.index.saga_ids
        sides_at = self._sides_by_position()
        for p, e in enumerate(events):
            if e.kind not in ("send", "duplicate") or e.message is None:
                continue
            m = e.message
            if m.src not in index or m.dst not in index:
                continue
            q = ends.get((m.id, m.copy))
            if q is not None:
                q -= first
                if q >= count:  # it ends after the events laid out: still in flight
                    q = None
            end = events[q] if q is not None else None
            cy1 = rows.y[p]
            cy2 = rows.y[q] if q is not None else self._in_flight_y(m, e, cy1)
            if cy2 < self.y0 or cy1 > self.y1:
                continue
            colour = message_colour(m.type, m.payload)
            x1, y1 = lanes.x(m.src), self.sy(cy1)
            xd = lanes.x(m.dst)
            y2 = self.sy(cy2)
            direction = 1.0 if xd >= x1 else -1.0
            current = end is not None and self.step is not None and end.step == self.step
            c = self.cls(end, q) if current and end is not None and q is not None \
                else self.cls(e, p)
            lost = end is not None and end.kind == "drop"
            lost_at_send = lost and end is not None and end.node == m.src
            if lost_at_send:
                # Lost as it was sent: towards the side it never reached, crossed out at
                # the partition's wall, or near the destination.
                sides = sides_at.get(q if q is not None else p)
                x2 = self._wall_x(m.src, m.dst, sides)
                if x2 is None:
                    x2 = x1 + (xd - x1) * 0.8
                x2 -= direction * 7
            elif lost:
                x2 = xd - direction * 9
            elif end is None:
                x2 = x1 + (xd - x1) * self._travelled(m, e)
            else:
                x2 = xd
            kind = ("dropped" if lost else "delivered" if end is not None else "inflight")
            if m.copy:
                kind += " dup"
            length = math.hypot(x2 - x1, y2 - y1)
            grow = " grow" if self.animate and self.step is not None and e.step == self.step \
                else ""
            body = (f'<line x1="{_f(x1)}" y1="{_f(y1)}" x2="{_f(x2)}" y2="{_f(y2)}" '
                    f'stroke="{colour}"' + (f' style="--len:{length:.0f}"' if grow else "")
                    + "/>")
            if lost:
                body += _cross(x2, y2)
            elif end is not None:
                body += _arrowhead(x1, y1, x2, y2, colour)
            else:
                # In flight: drawn as far as it has travelled by now, the rest dotted.
                body += (f'<line class="ahead" x1="{_f(x2)}" y1="{_f(y2)}" x2="{_f(xd)}" '
                         f'y2="{_f(y2 + 10)}" stroke="{colour}" stroke-opacity=".5" '
                         f'stroke-dasharray="2 3"/><circle cx="{_f(x2)}" cy="{_f(y2)}" r="3.5"'
                         f' fill="{colour}"/>')
            tip = _tooltip(m, e, end)
            self.pic.lines.append(
                f'<g class="msg {kind}{c}{grow}" data-msg="{m.id}" data-copy="{m.copy}" '
                f'data-type={_a(m.type)} data-kind="{message_kind(m.type, m.payload)}" '
                f'data-src={_a(m.src)} data-dst={_a(m.dst)} data-step="{e.step}"'
                f'{"" if end is None else f" data-end-step={_a(end.step)}"}>{body}'
                f'<title>{_t(tip)}</title></g>')
            if lost:
                placer.take(Box(x2 - 6, y2 - 6, x2 + 6, y2 + 6))
            step_name = m.payload.get("step", m.payload.get("event"))
            name = m.type + (f" {step_name}" if isinstance(step_name, str) else "") + (
                " ×2" if m.copy else "")
            if len(sagas) > 1:
                name = f"{m.payload.get('saga_id')}: {name}"
            text = _short(name, MSG_CHARS)
            if m.copy and not text.endswith("×2"):
                text = _short(name[:-3], MSG_CHARS - 3) + " ×2"
            label = Label(text, LABEL, False, ((x1 + x2) / 2, (y1 + y2) / 2), [],
                          f"lbl msg-label{c}",
                          f' data-msg="{m.id}" data-copy="{m.copy}" data-step="{e.step}"'
                          + ("" if end is None else f" data-end-step={_a(end.step)}"),
                          tip, group=rows.group_of(p), colour=colour)
            w, h = _text_size(label)
            lo, hi = max(y1, self.body_top + h), min(y2, self.body_bottom - h)
            # Short arrows: the label may also sit beside the sender, on the arrow's side
            # (on the other, it would read as a message of the lane behind it).
            label.candidates = [_ahead_of(b, x1, direction) for b in along(
                x1, y1, x2, y2, w + 8, h, lo, hi)] + beside(
                x1, y1 + 6, w + 8, h, "right" if direction > 0 else "left", reach=1,
                only=True)
            label.near = len(label.candidates)
            label.segment = (x1, y1, x2, y2)
            self.pic.labels.append(label)

    def _y(self, position: int) -> float:
        """Content y of the laid event at ``position``: one before the laid events (a
        span that began before them) lies a little above them, one after a little below."""
        if position < 0:
            return -2 * ROW
        ys = self.rows.y
        return ys[position] if position < len(ys) else self.rows.height + 2 * ROW

    def _event(self, position: int) -> TraceEvent:
        """The event at ``position`` of the laid events (or before or after them)."""
        return self.view.events[self.view.first + position]

    def _arrival(self, m: Message) -> TraceEvent | None:
        """Where a message in flight at the step drawn is later delivered or lost."""
        q = self.view.index.ends.get((m.id, m.copy))
        return None if q is None or q < self.view.end else self.view.events[q]

    def _travelled(self, m: Message, sent: TraceEvent) -> float:
        """How far (0..1) a message still in flight has gone by the current time."""
        now = self.events[self.cut].time if 0 <= self.cut < len(self.events) else sent.time
        arrival = self._arrival(m)
        if arrival is None or arrival.time <= sent.time:
            return 0.5
        return max(0.12, min(0.88, (now - sent.time) / (arrival.time - sent.time)))

    def _in_flight_y(self, m: Message, sent: TraceEvent, sent_y: float) -> float:
        """Content y of a message in flight: the current row (or just below its send)."""
        if self.view.end < len(self.view.events) or self.step is not None:
            return max(self.now_y, sent_y) + ROW * 0.7
        return self.rows.height + 6

    def _sides_by_position(self) -> dict[int, dict[str, int] | None]:
        """For each drop lost to a partition, which side each lane was on."""
        out: dict[int, dict[str, int] | None] = {}
        current: dict[str, int] | None = None
        for s in self.view.spans(0):  # a partition that began before the laid events
            if s.kind == "partition" and s.start < 0:
                current = partition_sides(s.label, self.lanes.nodes)
        for p, e in enumerate(self.events):
            if e.kind == "partition":
                current = partition_sides(e.detail, self.lanes.nodes)
            elif e.kind == "heal":
                current = None
            elif e.kind == "drop" and e.detail.startswith("partition"):
                out[p] = current
        return out

    def _wall_x(self, src: str, dst: str, sides: dict[str, int] | None) -> float | None:
        """x of the first wall a message from ``src`` towards ``dst`` meets."""
        if sides is None:
            return None
        lanes = self.lanes
        i, j = lanes.index[src], lanes.index[dst]
        step = 1 if j > i else -1
        k = i
        while k != j:
            nxt = k + step
            if sides[lanes.nodes[nxt]] != sides[src]:
                return lanes.left + lanes.col * max(k, nxt)
            k = nxt
        return None

    # --- placing the labels ---------------------------------------------------------------
    def _place(self, placer: Placer) -> set[int]:
        written: list[str] = []
        crowded: set[int] = set()
        leaders: list[str] = []
        # Marks' labels first (they have few good places), then the messages'.
        order = sorted(range(len(self.pic.labels)),
                       key=lambda i: (0 if "msg-label" not in self.pic.labels[i].cls else 1,
                                      i))
        for i in order:
            label = self.pic.labels[i]
            box = placer.first_free(label.candidates)
            if box is None:
                if not self.final and label.group >= 0:
                    crowded.add(label.group)
                    continue
                start = label.candidates[0] if label.candidates else Box(
                    label.anchor[0], label.anchor[1], label.anchor[0] + 40,
                    label.anchor[1] + 12)
                box = placer.search(start) or placer.search(start, 20.0, ROW, 40)
                if box is None:
                    box = placer.take(start)
            leader = self._leader(label, box)
            if leader:
                leaders.append(leader)
            written.append(self._label_svg(label, box))
        self._written = [f'<g class="leaders">{"".join(leaders)}</g>', *written]
        return crowded

    def _leader(self, label: Label, box: Box) -> str:
        """A thin line from what a moved label names to the label (none if it sits on
        one of its first ``label.near`` candidates)."""
        if box in label.candidates[: label.near]:
            return ""
        if label.segment is not None:
            ax, ay = _nearest_on_segment(label.segment, box.centre)
        else:
            ax, ay = label.anchor
        nx = min(max(ax, box.left), box.right)
        ny = min(max(ay, box.top), box.bottom)
        if math.hypot(nx - ax, ny - ay) < 6:
            return ""
        return (f'<line class="leader" x1="{_f(ax)}" y1="{_f(ay)}" x2="{_f(nx)}" '
                f'y2="{_f(ny)}"/>')

    def _label_svg(self, label: Label, box: Box) -> str:
        size = label.size
        tip = f"<title>{_t(label.tip)}</title>" if label.tip else ""
        weight = ' font-weight="700"' if label.bold else ""
        style = ' font-style="italic"' if label.italic else ""
        if label.pill:
            cx = (box.left + box.right) / 2
            base = box.top + 2 + ASCENT * size
            return (f'<g class="{label.cls}"{label.attrs}>{tip}<rect x="{_f(box.left)}" '
                    f'y="{_f(box.top)}" width="{_f(box.right - box.left)}" '
                    f'height="{_f(box.bottom - box.top)}" rx="7"/><text x="{_f(cx)}" '
                    f'y="{_f(base)}" text-anchor="middle" font-size="{size:g}"{weight}>'
                    f'{_t(label.text)}</text></g>')
        swatch = ""
        left = box.left
        if label.colour is not None:
            # A coloured tick before a message's label ties it to its arrow.
            mid = (box.top + box.bottom) / 2
            swatch = (f'<rect x="{_f(box.left + 1)}" y="{_f(mid - 3)}" width="5" height="6" '
                      f'rx="1" fill="{label.colour}"/>')
            left = box.left + 8
        base = box.top + ASCENT * size
        return (f'<g class="{label.cls}"{label.attrs}>{tip}{swatch}<text x="{_f(left)}" '
                f'y="{_f(base)}" font-size="{size:g}"{weight}{style}>{_t(label.text)}'
                f'</text></g>')

    _written: list[str]


def _ahead_of(box: Box, x: float, direction: float, room: float = 3.0) -> Box:
    """``box`` moved, if it must be, so that it does not reach behind the sender's
    lifeline at ``x`` (a short arrow's label centred on it would)."""
    if direction > 0 and box.left < x + room:
        return box.shifted(x + room - box.left, 0.0)
    if direction < 0 and box.right > x - room:
        return box.shifted(x - room - box.right, 0.0)
    return box


def _nearest_on_segment(seg: tuple[float, float, float, float],
                        point: tuple[float, float]) -> tuple[float, float]:
    x1, y1, x2, y2 = seg
    dx, dy = x2 - x1, y2 - y1
    length = dx * dx + dy * dy
    f = 0.5 if length == 0 else max(0.0, min(1.0, ((point[0] - x1) * dx
                                                   + (point[1] - y1) * dy) / length))
    return (x1 + dx * f, y1 + dy * f)


def _arrowhead(x1: float, y1: float, x2: float, y2: float, colour: str) -> str:
    angle = math.atan2(y2 - y1, x2 - x1)
    size = 7.0
    left = (x2 - size * math.cos(angle - 0.4), y2 - size * math.sin(angle - 0.4))
    right = (x2 - size * math.cos(angle + 0.4), y2 - size * math.sin(angle + 0.4))
    return (f'<polygon points="{x2:.1f},{y2:.1f} {left[0]:.1f},{left[1]:.1f} '
            f'{right[0]:.1f},{right[1]:.1f}" fill="{colour}"/>')


def _cross(x: float, y: float) -> str:
    r = 5
    return (f'<path class="cross" d="M{x - r:.1f},{y - r:.1f}L{x + r:.1f},{y + r:.1f}'
            f'M{x - r:.1f},{y + r:.1f}L{x + r:.1f},{y - r:.1f}" stroke="{VERMILION}"/>')

