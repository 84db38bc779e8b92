"""Write each lesson's navigation from ``txlib/course/lessons.py``, and fold predictions.

For every notebook in ``notebooks/``: the title line of its first cell
(``# Lesson NN · Title``), a "where you are" cell right after it, a previous/next cell at
the end, and in lesson 00 the course map. And every "**Predict**" question keeps its
answer folded: the code cell right after it opens with its output hidden
(``metadata.jupyter.outputs_hidden``, which JupyterLab honours until the cell runs) and
the question ends with a line saying so. Markdown and metadata only, so nbval's
comparison of outputs is untouched. Run it after adding, renaming or retitling a lesson:

    .venv/bin/python scripts/navigation.py   # the course's Python: it needs nbformat
"""

from __future__ import annotations

import itertools
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


FOLDED = "*The answer below is folded: run the cell to see it.*"
PREDICT = "**Predict"


def fold_predictions(cells: list[nbformat.NotebookNode]) -> None:
    """Hide the output of each code cell that answers a "Predict" question."""
    for question, answer in itertools.pairwise(cells):
        if (question.cell_type != "markdown" or PREDICT not in question.source
                or answer.cell_type != "code"):
            continue
        if not question.source.rstrip().endswith(FOLDED):
            question.source = question.source.rstrip() + "\n\n" + FOLDED
        answer.metadata.setdefault("jupyter", {})["outputs_hidden"] = True


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
    fold_predictions(cells)
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
