"""Label placement with collision avoidance: the first free spot among a label's candidates.

A :class:`Placer` remembers the boxes already taken (labels, and marks that text must
not cover) in a coarse grid, so testing a candidate looks only at its neighbours. A label
offers candidate boxes in order of preference; it takes the first that overlaps nothing
already placed and lies inside the allowed area. When none is free,
:meth:`Placer.search` walks outward from the preferred spot (the caller then draws a
leader line back to the anchor).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

CELL = 48.0  # px: side of a grid cell of the index
GAP = 1.5  # px kept free around every box


@dataclass(frozen=True)
class Box:
    left: float
    top: float
    right: float
    bottom: float

    def shifted(self, dx: float, dy: float) -> Box:
        return Box(self.left + dx, self.top + dy, self.right + dx, self.bottom + dy)

    def overlaps(self, other: Box, gap: float = GAP) -> bool:
        return (self.left < other.right + gap and other.left < self.right + gap
                and self.top < other.bottom + gap and other.top < self.bottom + gap)

    @property
    def centre(self) -> tuple[float, float]:
        return ((self.left + self.right) / 2, (self.top + self.bottom) / 2)


@dataclass(frozen=True)
class Area:
    """Where labels may go (``bottom`` None: no limit downward)."""

    left: float
    top: float
    right: float | None = None
    bottom: float | None = None

    def holds(self, box: Box) -> bool:
        return (box.left >= self.left and box.top >= self.top
                and (self.right is None or box.right <= self.right)
                and (self.bottom is None or box.bottom <= self.bottom))


class Placer:
    """The boxes taken so far, and the search for a free one."""

    def __init__(self, area: Area) -> None:
        self.area = area
        self.cells: dict[tuple[int, int], list[Box]] = {}
        self.taken: list[Box] = []

    def _keys(self, box: Box) -> Iterable[tuple[int, int]]:
        x0, x1 = int((box.left - GAP) // CELL), int((box.right + GAP) // CELL)
        y0, y1 = int((box.top - GAP) // CELL), int((box.bottom + GAP) // CELL)
        for i in range(x0, x1 + 1):
            for j in range(y0, y1 + 1):
                yield (i, j)

    def free(self, box: Box) -> bool:
        if not self.area.holds(box):
            return False
        cells = self.cells
        for key in self._keys(box):
            for other in cells.get(key, ()):
                if box.overlaps(other):
                    return False
        return True

    def take(self, box: Box) -> Box:
        self.taken.append(box)
        for key in self._keys(box):
            self.cells.setdefault(key, []).append(box)
        return box

    def first_free(self, candidates: Sequence[Box]) -> Box | None:
        """The first free candidate, taken; None if every one is occupied."""
        for box in candidates:
            if self.free(box):
                return self.take(box)
        return None

    def search(self, box: Box, step_x: float = 12.0, step_y: float = 9.0,
               reach: int = 14) -> Box | None:
        """The free spot nearest ``box`` (ring by ring), taken; None within ``reach``."""
        for ring in range(1, reach + 1):
            spots = []
            for i in range(-ring, ring + 1):
                for j in range(-ring, ring + 1):
                    if max(abs(i), abs(j)) == ring:
                        spots.append((abs(i) * step_x + abs(j) * step_y * 1.6, i, j))
            spots.sort()
            for _cost, i, j in spots:
                moved = box.shifted(i * step_x, j * step_y)
                if self.free(moved):
                    return self.take(moved)
        return None
