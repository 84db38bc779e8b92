"""Write each lesson's navigation from ``txlib/course/lessons.py``.

For every notebook in ``notebooks/``: the title line of its first cell
(``# Lesson NN · Title``), a "where you are" cell right after it, a previous/next cell at
the end, and in lesson 00 the course map. Markdown only, so nbval's comparison of outputs
is untouched. Run it after adding, renaming or retitling a lesson:

    python3 scripts/navigation.py
"""

from __future__ import annotations

import sys
from pathlib import Path

import nbformat

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from txlib.course.lessons import LESSONS, Lesson, course_map, previous_and_next, where_you_are  # noqa: E402

WHERE = "where-you-are"
NAVIGATION = "lesson-navigation"
MAP = "course-map"


def markdown(cell_id: str, text: str) -> nbformat.NotebookNode:
    cell = nbformat.v4.new_markdown_cell(text)
    cell["id"] = cell_id
    return cell


def title_line(lesson: Lesson) -> str:
    return f"# Lesson {lesson.number:02d} · {lesson.title}"


def navigated(nb: nbformat.NotebookNode, lesson: Lesson) -> nbformat.NotebookNode:
    """The notebook with its title, map line, course map and links as the list says."""
    cells = [c for c in nb.cells if c.get("id") not in (WHERE, NAVIGATION)]
    first = cells[0]
    lines = first.source.split("\n")
    lines[0] = title_line(lesson)
    first.source = "\n".join(lines)
    for cell in cells:
        if cell.cell_type == "markdown" and cell.source.startswith("## The map of the course"):
            cell.source = course_map()
    if lesson.number == 0 and not any(c.get("id") == MAP for c in cells):
        for cell in cells:
            if cell.source.startswith("## The map of the course"):
                cell["id"] = MAP
    cells.insert(1, markdown(WHERE, where_you_are(lesson)))
    cells.append(markdown(NAVIGATION, previous_and_next(lesson)))
    nb.cells = cells
    return nb


def main() -> int:
    for lesson in LESSONS:
        path = ROOT / "notebooks" / lesson.file
        if not path.exists():
            print(f"missing: {path.name}", file=sys.stderr)
            continue
        nb = nbformat.read(path, as_version=4)
        before = nbformat.writes(nb)
        after = nbformat.writes(navigated(nb, lesson))
        if after != before:
            path.write_text(after + "\n")
            print(f"updated {path.name}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
