"""State-machine diagrams: a role's declared machine, drawn as inline SVG per frame.

The layout comes from :func:`~txlib.viz.graphviz_layout.layout` (computed once, or
shipped), so drawing a frame never runs Graphviz and the boxes never move. Each frame
shows which nodes sit in each state (badges with their names; crashed ones struck
through with a ``†``) and the transition just taken (thick, coloured, bold label with a
``▶``). Transitions that only a termination or recovery protocol takes are dashed, with a
one-line key under the diagram. Colours are Okabe–Ito; lines and text use
``currentColor`` so the picture follows JupyterLab's light and dark themes; nothing is
told by colour alone.
"""

from __future__ import annotations

import hashlib
import math
import re
from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass
from xml.sax.saxutils import escape, quoteattr

from ..engine.records import TraceEvent
from ..engine.statemachine import StateMachine
from . import graphviz_layout
from .graphviz_layout import (
    BADGE_FONT_SIZE,
    LABEL_FONT_SIZE,
    NAME_FONT_SIZE,
    Box,
    Edge,
    Layout,
    Point,
    text_width,
)
from .textsize import text_width as drawn_width

# Okabe–Ito colours.
SKY_BLUE = "#56B4E9"
BLUE = "#0072B2"
VERMILLION = "#D55E00"

FONT = "Helvetica, Arial, 'Liberation Sans', 'DejaVu Sans', sans-serif"
TITLE_HEIGHT = 22.0
DOWN_MARK = "†"
LAST_MARK = "▶ "
# A restart puts a node in the state its log justifies: not an edge of the machine.
RESTORED = "restored from log"
# Edges only a termination or recovery protocol takes are dashed, with a key underneath.
DASH = "6 4"
RECOVERY_KEY = "only after a failure (termination or recovery protocol)"
KEY_HEIGHT = 20.0
PAD_X = 8.0

Last = tuple[str, str, str | None]


def _n(v: float) -> str:
    """A coordinate, short."""
    s = f"{v:.1f}"
    return s[:-2] if s.endswith(".0") else s


def _path(e: Edge) -> str:
    p = e.points
    d = [f"M{_n(p[0][0])},{_n(p[0][1])}"]
    for i in range(1, len(p) - 2, 3):
        d.append("C" + " ".join(f"{_n(x)},{_n(y)}" for x, y in p[i:i + 3]))
    if e.tip is not None:
        d.append(f"L{_n(e.tip[0])},{_n(e.tip[1])}")
    return "".join(d)


def _label(e: Edge, last: bool) -> str:
    if e.label_pos is None or not e.label_lines:
        return ""
    x, y = e.label_pos
    lines = list(e.label_lines)
    if last:
        lines[0] = LAST_MARK + lines[0]
    step = LABEL_FONT_SIZE * 1.2
    top = y - step * (len(lines) - 1) / 2 + LABEL_FONT_SIZE * 0.35
    spans = "".join(f'<tspan x="{_n(x)}" y="{_n(top + i * step)}">{escape(line)}</tspan>'
                    for i, line in enumerate(lines))
    style = (f' font-weight="bold" fill="{VERMILLION}"' if last
             else ' fill="currentColor" fill-opacity="0.85"')
    return f'<text text-anchor="middle" font-size="{LABEL_FONT_SIZE:g}"{style}>{spans}</text>'


# The second, for a crowded state: the smallest text the pictures use (10 px), tighter.
_BADGE_STYLES = ((BADGE_FONT_SIZE, 10.0, 4.0), (10.0, 6.0, 3.0))
RANGE_DASH = "–"  # p1–p8: a run of three or more numbered names in one badge
_NUMBERED = re.compile(r"(.*?)(\d+)")


@dataclass(frozen=True)
class Badge:
    """One name badge: ``nodes`` (one node, a numbered run such as p1–p8, or, for a
    "+N" badge, the nodes it stands for), the text shown, and its width."""

    nodes: tuple[str, ...]
    text: str
    down: bool
    width: float
    more: bool = False


def _badge_width(text: str, size: float, pad: float) -> float:
    """A badge's width: its text and ``pad``, and at least 2 px each side of the text as
    Chromium draws it where Helvetica and Arial are missing (DejaVu Sans, wider)."""
    return max(text_width(text, size) + pad, drawn_width(text, size) + 4)


def _name_badge(node: str, down: bool, size: float, pad: float, room: float) -> Badge:
    """A node's badge, its name shortened with an ellipsis if even alone it would not
    fit the box (its tooltip has the whole name)."""
    mark = " " + DOWN_MARK if down else ""
    text = node
    if _badge_width(text + mark, size, pad) > room:
        while len(text) > 1 and _badge_width(text + "…" + mark, size, pad) > room:
            text = text[:-1]
        text += "…"
    return Badge((node,), text, down, _badge_width(text + mark, size, pad))


def _ranges(nodes: list[str], down: Collection[str], size: float, pad: float,
            room: float) -> list[Badge]:
    """The badges with each run of three or more consecutively numbered nodes that are up
    (p1, p2, ..., p8) in one badge, ``p1–p8``."""
    out: list[Badge] = []
    i = 0
    while i < len(nodes):
        j = i + 1
        first = _NUMBERED.fullmatch(nodes[i])
        if first is not None and nodes[i] not in down:
            while j < len(nodes) and nodes[j] not in down:
                m = _NUMBERED.fullmatch(nodes[j])
                if m is None or m.group(1) != first.group(1) or (
                        int(m.group(2)) != int(first.group(2)) + j - i):
                    break
                j += 1
        if j - i >= 3:
            text = nodes[i] + RANGE_DASH + nodes[j - 1]  # p1–p8
            last = _NUMBERED.fullmatch(nodes[j - 1])
            if last is not None and _badge_width(text, size, pad) > room:
                text = nodes[i] + RANGE_DASH + last.group(2)  # participant-1–8
            out.append(Badge(tuple(nodes[i:j]), text, False, _badge_width(text, size, pad)))
            i = j
        else:
            out.append(_name_badge(nodes[i], nodes[i] in down, size, pad, room))
            i += 1
    return out


def _row_width(row: list[Badge], gap: float) -> float:
    return sum(b.width for b in row) + gap * (len(row) - 1)


def _with_more(items: list[Badge], size: float, pad: float, gap: float,
               room: float) -> list[Badge]:
    """As many badges as fit in one row, then a "+N" badge for the rest (its tooltip, and
    the state's, name them); the first one shortened, if need be, to leave room for it."""

    def more(badges: list[Badge]) -> Badge:
        nodes = tuple(n for b in badges for n in b.nodes)
        return Badge(nodes, f"+{len(nodes)}", False, _badge_width(f"+{len(nodes)}", size, pad),
                     more=True)

    if len(items) < 2:
        return items
    for keep in range(len(items) - 1, 0, -1):
        row = [*items[:keep], more(items[keep:])]
        if _row_width(row, gap) <= room:
            return row
    rest, first = more(items[1:]), items[0]
    if len(first.nodes) == 1:  # a long name, shortened
        first = _name_badge(first.nodes[0], first.down, size, pad, room - gap - rest.width)
    return [first, rest] if _row_width([first, rest], gap) <= room else [more(items)]


def _badge_rows(box: Box, nodes: list[str], down: Collection[str],
                room_below: Callable[[], float] = lambda: math.inf,
                ) -> tuple[list[list[Badge]], float, float]:
    """The name badges of a state, in rows inside its box: one row of every name (at a
    smaller font if need be), else numbered runs as ranges (p1–p8), else more rows if
    nothing lies in the room below the box (``room_below()``: it grows), else one row
    ending in "+N"."""
    room = box.width - 12
    items: list[Badge] = []
    for size, pad, gap in _BADGE_STYLES:
        items = [_name_badge(n, n in down, size, pad, room) for n in nodes]
        if _row_width(items, gap) <= room:
            return [items], size, gap
    ranged = _ranges(nodes, down, size, pad, room)
    if _row_width(ranged, gap) <= room:
        return [ranged], size, gap
    rows: list[list[Badge]] = [[]]
    for it in items:
        row = rows[-1]
        if row and _row_width(row, gap) + gap + it.width > room:
            rows.append([])
        rows[-1].append(it)
    if _rows_grow(rows, size) + 4 <= room_below():  # (worked out only when needed)
        return rows, size, gap
    return [_with_more(ranged, size, pad, gap, room)], size, gap


def _rows_grow(rows: list[list[Badge]], size: float) -> float:
    """How much taller a box is drawn for ``rows`` of badges (only past the first)."""
    return (len(rows) - 1) * (size + 9) if len(rows) > 1 else 0.0


def _room_below(lay: Layout, box: Box) -> float:
    """How far below ``box`` the picture is empty over the box's width (no other box, no
    edge, no edge label): what a box can grow into without covering anything."""
    left, right = box.x - box.width / 2, box.x + box.width / 2
    bottom = box.y + box.height / 2
    tops = [b.y - b.height / 2 for b in lay.boxes
            if b is not box and b.x + b.width / 2 > left and b.x - b.width / 2 < right
            and b.y + b.height / 2 > bottom]
    for e in (*lay.edges, lay.entry):
        tops += [y for x, y in _curve(e) if left <= x <= right and y > bottom - 2]
        if e.label_pos is not None and e.label_lines:
            x, y = e.label_pos
            half = max(text_width(LAST_MARK + line, LABEL_FONT_SIZE)
                       for line in e.label_lines) / 2
            high = LABEL_FONT_SIZE * 1.2 * len(e.label_lines)
            if x + half > left and x - half < right and y + high / 2 > bottom:
                tops.append(y - high / 2 - 2)
    return max(0.0, min(tops, default=math.inf) - bottom)


def _curve(e: Edge) -> list[Point]:
    """Points along an edge's spline (and its arrow tip)."""
    p = e.points
    out = list(p[:1])
    for i in range(1, len(p) - 2, 3):
        (x0, y0), (x1, y1), (x2, y2), (x3, y3) = p[i - 1], p[i], p[i + 1], p[i + 2]
        for k in range(1, 9):
            t = k / 8
            u = 1 - t
            out.append((u ** 3 * x0 + 3 * u * u * t * x1 + 3 * u * t * t * x2 + t ** 3 * x3,
                        u ** 3 * y0 + 3 * u * u * t * y1 + 3 * u * t * t * y2 + t ** 3 * y3))
    if e.tip is not None:
        out.append(e.tip)
    return out


def _badges(box: Box, rows: list[list[Badge]], size: float, gap: float) -> str:
    """The rows of name badges, centred in the lower part of the box."""
    h = size + 6
    out = ['<g class="badges">']
    y = box.y + 3
    for row in rows:
        x = box.x - _row_width(row, gap) / 2
        for b in row:
            w = b.width
            if b.more:
                tip = "also here: " + ", ".join(b.nodes)
                attrs = f' class="badge more" data-nodes={quoteattr(" ".join(b.nodes))}'
            elif len(b.nodes) > 1:
                tip = ", ".join(b.nodes)
                attrs = f' class="badge range" data-nodes={quoteattr(" ".join(b.nodes))}'
            else:
                node = b.nodes[0]
                tip = f"{node} (down: crashed)" if b.down else node
                attrs = (f' class="badge{" down" if b.down else ""}"'
                         f" data-node={quoteattr(node)}")
            dash = ' stroke-dasharray="3 2"' if b.down else ""
            label = (f'<tspan text-decoration="line-through">{escape(b.text)}</tspan>'
                     f" {DOWN_MARK}" if b.down else escape(b.text))
            out.append(
                f"<g{attrs}>"
                f"<title>{escape(tip)}</title>"
                f'<rect x="{_n(x)}" y="{_n(y)}" width="{_n(w)}" height="{_n(h)}" rx="{_n(h / 2)}"'
                f' fill="currentColor" fill-opacity="{0.06 if b.down else 0.14}"'
                f' stroke="currentColor" stroke-width="1"{dash}/>'
                f'<text x="{_n(x + w / 2)}" y="{_n(y + h / 2 + size * 0.36)}"'
                f' text-anchor="middle" font-size="{size:g}" fill="currentColor">'
                f"{label}</text></g>")
            x += w + gap
        y += h + 3
    out.append("</g>")
    return "".join(out)


Plan = tuple[list[list[Badge]], float, float]  # a state's badge rows, font size, gap


def _state(machine: StateMachine, box: Box, nodes: list[str], down: Collection[str],
           plan: Plan) -> str:
    state = box.state
    rows, size, gap = plan
    grow = _rows_grow(rows, size)  # only if names overflow and the room below is free
    x, y, w, h = box.x - box.width / 2, box.y - box.height / 2, box.width, box.height + grow
    terminal = state in machine.terminal
    occupied = bool(nodes)
    inset = 4.0 if terminal else 0.0
    attrs = f" data-state={quoteattr(state)}"
    if occupied:
        attrs += f" data-nodes={quoteattr(' '.join(nodes))}"
    if terminal:
        attrs += ' data-terminal="true"'
    if state == machine.initial:
        attrs += ' data-initial="true"'
    about = machine.description(state)
    tip = state + (f": {about}" if about else "") + (" (terminal)" if terminal else "")
    if occupied:
        tip += "\nhere: " + ", ".join(n + (" (down)" if n in down else "") for n in nodes)
    parts = [f'<g class="state{" occupied" if occupied else ""}"{attrs}>'
             f"<title>{escape(tip)}</title>"]
    if terminal:
        parts.append(f'<rect x="{_n(x)}" y="{_n(y)}" width="{_n(w)}" height="{_n(h)}" rx="10"'
                     ' fill="none" stroke="currentColor" stroke-width="1.2"/>')
    fill = (f'fill="{SKY_BLUE}" fill-opacity="0.3"' if occupied
            else 'fill="currentColor" fill-opacity="0.04"')
    stroke = (f'stroke="{BLUE}" stroke-width="3"' if occupied
              else 'stroke="currentColor" stroke-width="1.2"')
    parts.append(f'<rect x="{_n(x + inset)}" y="{_n(y + inset)}" width="{_n(w - 2 * inset)}"'
                 f' height="{_n(h - 2 * inset)}" rx="{_n(8 - inset / 2)}" {fill} {stroke}/>')
    name_y = box.y - 4 if occupied else box.y + NAME_FONT_SIZE * 0.36
    parts.append(f'<text x="{_n(box.x)}" y="{_n(name_y)}" text-anchor="middle"'
                 f' font-size="{NAME_FONT_SIZE:g}" font-weight="bold" fill="currentColor">'
                 f"{escape(state)}</text>")
    if rows:
        parts.append(_badges(box, rows, size, gap))
    parts.append("</g>")
    return "".join(parts)


def _is_last(e: Edge, last: Last | None) -> bool:
    if last is None:
        return False
    source, target, trigger = last
    return e.source == source and e.target == target and trigger in (None, e.trigger)


def statechart_svg(
    machine: StateMachine,
    layout: Layout | None = None,
    *,
    occupants: Mapping[str, list[str]] | None = None,
    down: Collection[str] = (),
    last: Last | None = None,
    title: str | None = None,
    id_prefix: str | None = None,
) -> str:
    """One frame of ``machine``'s diagram as an inline ``<svg>`` string.

    ``occupants`` maps a state to the nodes in it (shown as badges), ``down`` names the
    crashed nodes, ``last`` is ``(source, target, trigger)`` of the transition just taken
    (trigger None: every edge from source to target). ``title`` is drawn above the
    diagram. Marker ids start with ``id_prefix`` (default: a hash of the frame), so
    several diagrams can share a page. Never runs Graphviz once the layout is known.
    """
    lay = layout if layout is not None else graphviz_layout.layout(machine)
    if lay.machine_hash != graphviz_layout.machine_hash(machine):
        raise ValueError(f"{machine.role}: this layout was made for another machine")
    occupants = {s: list(ns) for s, ns in (occupants or {}).items() if ns}
    unknown = set(occupants) - set(machine.states)
    if unknown:
        raise ValueError(f"{machine.role}: no state(s) {sorted(unknown)} in the machine")
    down = frozenset(down)
    if id_prefix is None:
        key = repr((lay.machine_hash, machine.role, sorted(occupants.items()), sorted(down),
                    last, title))
        id_prefix = "sc" + hashlib.sha1(key.encode()).hexdigest()[:10]
    arrow, arrow_last = f"{id_prefix}-arrow", f"{id_prefix}-arrow-last"
    top = TITLE_HEIGHT if title else 0.0
    plans: dict[str, Plan] = {
        b.state: _badge_rows(b, occupants[b.state], down,
                             lambda b=b: _room_below(lay, b))  # type: ignore[misc]
        if b.state in occupants else ([], 0.0, 0.0) for b in lay.boxes}
    bottom = max((b.y + b.height / 2 + _rows_grow(*plans[b.state][:2]) + 4
                  for b in lay.boxes), default=0.0)
    keyed = any(t.recovery for t in machine.transitions)
    key_width = text_width("dashed: " + RECOVERY_KEY, LABEL_FONT_SIZE) + PAD_X + 50
    width = max(lay.width, key_width) if keyed else lay.width
    height = max(lay.height, bottom) + top + (KEY_HEIGHT if keyed else 0.0)
    name = title or f"{machine.role} state machine"

    summary = [name + "."]
    summary += [f"{', '.join(n + (' (down)' if n in down else '') for n in ns)} in {s}."
                for s, ns in occupants.items()]
    if last is not None:
        summary.append(f"Last transition: {last[0]} to {last[1]}.")
    if keyed:
        summary.append(f"Dashed edges: {RECOVERY_KEY}.")

    out = [
        f'<svg xmlns="http://www.w3.org/2000/svg" class="txlib-statechart"'
        f' data-role={quoteattr(machine.role)} viewBox="0 0 {_n(width)} {_n(height)}"'
        f' width="{_n(width)}" height="{_n(height)}" role="img"'
        f' aria-label={quoteattr(" ".join(summary))} font-family="{FONT}"'
        ' style="max-width:100%;height:auto">',
        f"<title>{escape(name)}</title>",
        "<defs>",
        f'<marker id="{arrow}" viewBox="0 0 10 10" refX="9" refY="5" markerWidth="9"'
        ' markerHeight="9" markerUnits="userSpaceOnUse" orient="auto">'
        '<path d="M0,1 L10,5 L0,9 z" fill="currentColor"/></marker>',
        f'<marker id="{arrow_last}" viewBox="0 0 10 10" refX="9" refY="5" markerWidth="12"'
        ' markerHeight="12" markerUnits="userSpaceOnUse" orient="auto">'
        f'<path d="M0,1 L10,5 L0,9 z" fill="{VERMILLION}"/></marker>',
        "</defs>",
    ]
    if title:
        out.append(f'<text class="title" x="{_n(8)}" y="15" font-size="13" font-weight="bold"'
                   f' fill="currentColor">{escape(title)}</text>')
    out.append(f'<g transform="translate(0 {_n(top)})">' if top else "<g>")

    entry = lay.entry
    sx, sy = entry.points[0]
    entry_path = _path(Edge("", "", "", entry.points[1:], entry.tip, None, ()))
    out.append(f'<g class="entry"><circle cx="{_n(sx)}" cy="{_n(sy)}" r="3.5"'
               f' fill="currentColor"/><path d="{entry_path}"'
               f' fill="none" stroke="currentColor" stroke-width="1.2"'
               f' marker-end="url(#{arrow})"/></g>')

    edges: list[str] = []
    highlighted: list[str] = []
    for e, t in zip(lay.edges, machine.transitions, strict=True):
        hot = _is_last(e, last)
        attrs = (f" data-source={quoteattr(e.source)} data-target={quoteattr(e.target)}"
                 f" data-trigger={quoteattr(e.trigger)}"
                 + (' data-recovery="true"' if t.recovery else ""))
        stroke = (f'stroke="{VERMILLION}" stroke-width="3" marker-end="url(#{arrow_last})"'
                  if hot else
                  f'stroke="currentColor" stroke-opacity="0.75" stroke-width="1.2"'
                  f' marker-end="url(#{arrow})"') + (f' stroke-dasharray="{DASH}"'
                                                    if t.recovery else "")
        about = f"{e.source} → {e.target}: {e.trigger}" + (f" ({RECOVERY_KEY})"
                                                          if t.recovery else "")
        svg = (f'<g class="transition{" last" if hot else ""}'
               f'{" recovery" if t.recovery else ""}"{attrs}'
               f'{" data-last=" + quoteattr("true") if hot else ""}>'
               f"<title>{escape(about)}{' (last transition)' if hot else ''}</title>"
               f'<path d="{_path(e)}" fill="none" {stroke}/>{_label(e, hot)}</g>')
        (highlighted if hot else edges).append(svg)
    out.append('<g class="transitions">' + "".join(edges + highlighted) + "</g>")

    out.append('<g class="states">')
    for box in lay.boxes:
        out.append(_state(machine, box, occupants.get(box.state, []), down, plans[box.state]))
    out.append("</g>")
    if keyed:
        out.append(_recovery_key(height - top - KEY_HEIGHT / 2))
    out.append("</g></svg>")
    return "".join(out)


def _recovery_key(y: float) -> str:
    """The one-line key under a diagram that has dashed (recovery) edges."""
    return (f'<g class="key"><path d="M{_n(PAD_X)},{_n(y)} L{_n(PAD_X + 34)},{_n(y)}"'
            f' stroke="currentColor" stroke-width="1.2" stroke-dasharray="{DASH}"/>'
            f'<text x="{_n(PAD_X + 42)}" y="{_n(y + LABEL_FONT_SIZE * 0.35)}"'
            f' font-size="{LABEL_FONT_SIZE:g}" fill="currentColor">'
            f"dashed: {escape(RECOVERY_KEY)}</text></g>")


def statecharts_at(
    machines: Mapping[str, StateMachine],
    roles: Mapping[str, str],
    event: TraceEvent,
    previous: TraceEvent | None,
) -> dict[str, str]:
    """Every role's diagram (by role) as it stands right after ``event``.

    Nodes sit where ``event.states`` puts them (grouped by ``roles``: node -> role),
    crashed ones are ``event.down``. If ``event`` is a state change along a declared
    edge, that edge is highlighted in its node's role: the source is the node's state in
    ``previous`` (the event just before), the trigger is not known so every edge between
    the two states lights up. A restart's jump to a logged state is not an edge, so
    nothing is highlighted then. Typical use: ``statecharts_at(run.machines, run.roles,
    trace[i], trace[i - 1] if i else None)``.
    """
    occupants: dict[str, dict[str, list[str]]] = {role: {} for role in machines}
    for node, role in roles.items():
        state = event.states.get(node)
        if state is not None and role in occupants:
            occupants[role].setdefault(state, []).append(node)
    last_role: str | None = None
    last = None
    if event.kind == "state" and event.node is not None and previous is not None:
        moved = roles.get(event.node)
        source = previous.states.get(event.node)
        target = event.states.get(event.node)
        m = machines.get(moved) if moved is not None else None
        if (m is not None and source is not None and target is not None
                and event.detail != RESTORED and m.allows(source, target)):
            last_role, last = moved, (source, target, None)
    return {role: statechart_svg(m, occupants=occupants[role], down=event.down,
                                 last=last if role == last_role else None)
            for role, m in machines.items()}


def machine_legend() -> str:
    """A small SVG key to the diagrams' marks (one per page is enough)."""
    items = [
        f'<rect x="4" y="4" width="26" height="16" rx="5" fill="{SKY_BLUE}" fill-opacity="0.3"'
        f' stroke="{BLUE}" stroke-width="3"/>'
        '<text x="38" y="16.5">state holding nodes (names in badges)</text>',
        '<rect x="262" y="4" width="26" height="16" rx="5" fill="none" stroke="currentColor"/>'
        '<rect x="265" y="7" width="20" height="10" rx="3" fill="none" stroke="currentColor"/>'
        '<text x="296" y="16.5">terminal state</text>',
        f'<path d="M392,12 L420,12" stroke="{VERMILLION}" stroke-width="3"/>'
        f'<text x="428" y="16.5" font-weight="bold" fill="{VERMILLION}">▶ last transition</text>',
        '<rect x="540" y="4" width="40" height="16" rx="8" fill="currentColor"'
        ' fill-opacity="0.06" stroke="currentColor" stroke-dasharray="3 2"/>'
        f'<text x="560" y="16" text-anchor="middle" font-size="{BADGE_FONT_SIZE:g}">'
        f'<tspan text-decoration="line-through">p3</tspan> {DOWN_MARK}</text>'
        '<text x="588" y="16.5">crashed node</text>',
        f'<path d="M676,12 L704,12" stroke="currentColor" stroke-width="1.2"'
        f' stroke-dasharray="{DASH}"/>'
        '<text x="712" y="16.5">only after a failure</text>',
    ]
    return ('<svg xmlns="http://www.w3.org/2000/svg" class="txlib-statechart-legend"'
            ' viewBox="0 0 830 24" width="830" height="24" role="img"'
            ' aria-label="Key: filled box with badges: state holding nodes; double border:'
            ' terminal state; thick line with ▶: last transition; struck-through badge with'
            f' †: crashed node; dashed edge: {RECOVERY_KEY}."'
            f' font-family="{FONT}" font-size="11" fill="currentColor"'
            ' style="max-width:100%;height:auto"><title>Key to the state diagrams</title>'
            + "".join(items) + "</svg>")
