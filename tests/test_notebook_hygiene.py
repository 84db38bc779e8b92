"""Notebook hygiene: how every lesson in notebooks/ must be committed.

nbval (pytest --nbval, configured in pyproject.toml) re-runs each notebook and compares
outputs; these tests check what nbval does not: the file is committed executed and
normalised exactly as ``scripts/execute_notebooks.py`` leaves it (kernel python3,
execution counts 1..n, no error outputs, no saved widget state, no volatile metadata),
it is not too big, and it is a lesson: learning goals first, an exercise, a lab widget
whose output nbval ignores, and a static diagram that reads on GitHub. Each lesson's
exercises and helpers live in its module ``txlib/course/lNN_words.py``: a notebook
imports its helpers and defines no long function of its own.
"""

from __future__ import annotations

import ast
import copy
import importlib.util
import re
from pathlib import Path

import nbformat
import pytest
from IPython.core.inputtransformer2 import TransformerManager

ROOT = Path(__file__).resolve().parent.parent
NOTEBOOKS = ROOT / "notebooks"
PATHS = sorted(NOTEBOOKS.glob("*.ipynb"))
MAX_BYTES = 2 * 1024 * 1024
IGNORE = "# NBVAL_IGNORE_OUTPUT"
WIDGET_CALLS = ("txlib.lab(", "txlib.compare(")
NAME = re.compile(r"^\d\d_[a-z0-9]+(?:_[a-z0-9]+)*\.ipynb$")
COURSE = ROOT / "txlib" / "course"
# Notebooks that need no lesson module, with the reason (none today: every lesson has
# exercises, and they live in its module).
NO_LESSON_MODULE: dict[str, str] = {}
LONGEST_FUNCTION = 15  # lines; a longer helper belongs in the lesson's module

_spec = importlib.util.spec_from_file_location(
    "execute_notebooks", ROOT / "scripts" / "execute_notebooks.py")
assert _spec is not None and _spec.loader is not None
execute_notebooks = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(execute_notebooks)

notebook = pytest.mark.parametrize("path", PATHS, ids=[p.name for p in PATHS])


def read(path: Path) -> nbformat.NotebookNode:
    return nbformat.read(path, as_version=4)


def code_cells(nb: nbformat.NotebookNode) -> list[nbformat.NotebookNode]:
    return [c for c in nb.cells if c.cell_type == "code"]


def calls(cell: nbformat.NotebookNode, names: tuple[str, ...]) -> bool:
    """True if the cell's code (comments aside) calls one of ``names``."""
    code = "\n".join(line.split("#", 1)[0] for line in cell.source.splitlines())
    return any(name in code for name in names)


def lesson_module(path: Path) -> Path:
    """``notebooks/06_words.ipynb`` -> ``txlib/course/l06_words.py``."""
    return COURSE / f"l{path.stem}.py"


def test_lessons_are_numbered_from_00_without_gaps():
    names = [p.name for p in PATHS]
    bad = [n for n in names if not NAME.match(n)]
    assert not bad, f"name lessons NN_words_with_underscores.ipynb: {bad}"
    numbers = [int(n[:2]) for n in names]
    assert numbers == list(range(len(numbers))), f"lesson numbers must be 00, 01, ...: {names}"


@notebook
def test_valid_nbformat_with_the_python3_kernel(path):
    nb = read(path)
    nbformat.validate(nb)
    assert nb.metadata.kernelspec.name == "python3"
    assert "widgets" not in nb.metadata, "saved widget state: run scripts/execute_notebooks.py"


@notebook
def test_committed_executed_in_order_without_errors(path):
    cells = code_cells(read(path))
    assert cells, "a lesson without code"
    assert [c.execution_count for c in cells] == list(range(1, len(cells) + 1)), (
        "execution counts must be 1..n in order: run scripts/execute_notebooks.py")
    errors = [i for i, c in enumerate(cells) for o in c.outputs if o.output_type == "error"]
    assert not errors, f"code cells {errors} have error outputs"


@notebook
def test_saved_exactly_as_the_execute_script_writes_it(path):
    text = path.read_text(encoding="utf-8")
    normalised = nbformat.writes(execute_notebooks.normalise(copy.deepcopy(read(path)))) + "\n"
    assert text == normalised, (
        "not in the committed form (widget views, volatile metadata, language version, ...): "
        "run `python3 course.py notebooks` and commit the result")


def test_the_execute_script_drops_a_search_progress_bar_and_keeps_a_lab_widget():
    """A search's progress bar shows only while the search lasts, so whether a run of
    the script meets it depends on the machine: its emptied display (or its view alone)
    is dropped, and the text around it is one output as without it. A lab widget keeps
    its placeholder text."""
    view = {execute_notebooks.WIDGET_MIME: {"model_id": "abc"}}
    outputs = [
        nbformat.v4.new_output("stream", name="stdout", text="before\n"),
        nbformat.v4.new_output("display_data", data={}),  # emptied at the search's end
        nbformat.v4.new_output("display_data", data=view),  # or, never emptied
        nbformat.v4.new_output("stream", name="stdout", text="after\n"),
        nbformat.v4.new_output("display_data", data={**view, "text/plain": "Lab(...)"}),
    ]
    cell = nbformat.v4.new_code_cell("run()", execution_count=1, outputs=outputs)
    nb = execute_notebooks.normalise(nbformat.v4.new_notebook(cells=[cell]))
    kept = nb.cells[0].outputs
    assert [o.output_type for o in kept] == ["stream", "display_data"]
    assert kept[0].text == "before\nafter\n"
    assert kept[1].data == {"text/plain": execute_notebooks.WIDGET_PLACEHOLDER}


@notebook
def test_size_is_capped(path):
    assert path.stat().st_size < MAX_BYTES


@notebook
def test_widget_cells_are_marked_to_ignore_their_output(path):
    for i, cell in enumerate(code_cells(read(path))):
        if calls(cell, WIDGET_CALLS):
            first = cell.source.splitlines()[0].strip()
            assert first == IGNORE, f"code cell {i} shows a widget: start it with {IGNORE}"


@notebook
def test_a_lesson_has_goals_an_exercise_a_lab_and_a_static_diagram(path):
    nb = read(path)
    first = nb.cells[0]
    assert first.cell_type == "markdown" and first.source.startswith("# "), (
        "start with a markdown cell: the lesson's title as a '# ' heading")
    assert re.search(r"(?i)learning goals|you will learn", first.source), (
        "the first cell states the learning goals ('What you will learn', ...)")
    assert re.search(r"(?m)^\s*(?:[-*]|\d+\.)\s", first.source), "list the goals"
    cells = code_cells(nb)
    assert any(calls(c, ("txlib.exercise(",)) for c in cells), "no txlib.exercise(...)"
    assert any(calls(c, ("txlib.lab(",)) for c in cells), "no txlib.lab(...) cell"
    assert any(calls(c, ("txlib.diagram(", "txlib.state_diagram(")) for c in cells), (
        "no static diagram (txlib.diagram or txlib.state_diagram) for GitHub readers")


@notebook
def test_every_lesson_has_a_module_named_like_it(path):
    if path.name in NO_LESSON_MODULE:
        return
    module = lesson_module(path)
    assert module.is_file(), (
        f"put this lesson's exercises and helpers in {module.relative_to(ROOT)}, or list "
        f"{path.name} in NO_LESSON_MODULE with the reason")


def test_every_lesson_module_names_a_notebook():
    stems = {p.stem for p in PATHS}
    orphans = [m.name for m in COURSE.glob("l[0-9][0-9]_*.py") if m.stem[1:] not in stems]
    assert not orphans, f"lesson modules with no notebooks/NN_words.ipynb: {orphans}"
    assert not [n for n in NO_LESSON_MODULE if n not in {p.name for p in PATHS}], (
        "NO_LESSON_MODULE lists a notebook that does not exist")


def long_definitions(source: str) -> list[tuple[str, int]]:
    """(name, lines) of each function or class in ``source`` longer than the limit."""
    tree = ast.parse(TransformerManager().transform_cell(source))
    return [(node.name, node.end_lineno - node.lineno + 1) for node in ast.walk(tree)
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef))
            and node.end_lineno is not None
            and node.end_lineno - node.lineno + 1 > LONGEST_FUNCTION]


def test_the_length_check_sees_a_long_function():
    body = "".join(f"    x{i} = {i}\n" for i in range(LONGEST_FUNCTION))
    assert long_definitions(f"def helper():\n{body}") == [("helper", LONGEST_FUNCTION + 1)]
    assert long_definitions("%matplotlib inline\ndef short():\n    return 1\n") == []


@notebook
def test_no_long_helper_is_defined_in_the_notebook(path):
    long = [(i, name, lines) for i, cell in enumerate(code_cells(read(path)))
            for name, lines in long_definitions(cell.source)]
    assert not long, (
        f"code cells define functions or classes longer than {LONGEST_FUNCTION} lines "
        f"(cell, name, lines): {long}; move them to {lesson_module(path).relative_to(ROOT)} "
        "and import them")


# --- navigation: one list of lessons (txlib/course/lessons.py) -----------------------

_nav_spec = importlib.util.spec_from_file_location(
    "navigation", ROOT / "scripts" / "navigation.py")
assert _nav_spec is not None and _nav_spec.loader is not None
navigation = importlib.util.module_from_spec(_nav_spec)
_nav_spec.loader.exec_module(navigation)

LINK = re.compile(r"\]\(([^)\s]+\.ipynb)(?:\s+\"[^\"]*\")?\)")


def test_the_list_of_lessons_names_every_notebook():
    from txlib.course.lessons import LESSONS
    assert [lesson.file for lesson in LESSONS] == [p.name for p in PATHS]
    assert [lesson.number for lesson in LESSONS] == list(range(len(LESSONS)))


@notebook
def test_navigation_matches_the_list_of_lessons(path):
    """Title, "where you are" line, previous/next links and the course map are the ones
    scripts/navigation.py writes (run it after adding or renaming a lesson)."""
    from txlib.course.lessons import LESSONS
    lesson = next(lesson for lesson in LESSONS if lesson.file == path.name)
    nb = read(path)
    expected = navigation.navigated(copy.deepcopy(nb), lesson)
    assert nbformat.writes(nb) == nbformat.writes(expected), (
        f"{path.name}: navigation out of date; run .venv/bin/python scripts/navigation.py")
    assert nb.cells[1].source.startswith("*Where you are:*")
    assert "Next:" in nb.cells[-1].source or "last lesson" in nb.cells[-1].source


@notebook
def test_every_link_to_a_lesson_points_at_a_notebook(path):
    nb = read(path)
    targets = {m.group(1) for c in nb.cells if c.cell_type == "markdown"
               for m in LINK.finditer(c.source)}
    missing = sorted(t for t in targets if not (NOTEBOOKS / t).exists())
    assert not missing, f"{path.name} links to missing notebooks: {missing}"


def test_the_readme_lists_every_lesson():
    readme = (ROOT / "README.md").read_text()
    missing = [p.stem for p in PATHS if f"| `{p.stem}` |" not in readme]
    assert not missing, f"README's lesson table lacks {missing}"


@notebook
def test_a_folded_prediction_says_so_once(path):
    """Lesson 11 said "The answer below is folded" twice above one cell: a sentence added
    after the line made scripts/navigation.py append it again. Add text before the line."""
    folded = "*The answer below is folded: run the cell to see it.*"
    for i, cell in enumerate(read(path).cells):
        if cell.cell_type == "markdown":
            assert cell.source.count(folded) <= 1, f"markdown cell {i} says it is folded twice"
