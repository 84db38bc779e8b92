"""Execute the course notebooks in place and normalise them, so they are committed executed.

    python scripts/execute_notebooks.py                    # every notebooks/*.ipynb
    python scripts/execute_notebooks.py notebooks/01_*.ipynb

Each notebook runs top to bottom in a fresh kernel of the Python running this script
(the project's ``.venv``; ``python3 course.py notebooks`` does exactly that), in the
notebook's folder (``notebooks/``, as under nbval) and with a fixed timeout per cell.
Then the file is normalised so that running this twice gives byte-identical files:

- kernelspec ``python3``; ``language_info`` without the Python version; no other
  notebook metadata (so no saved widget state, ``metadata.widgets``);
- execution counts 1..n (a fresh kernel gives them; an empty code cell is an error);
- no volatile cell metadata (``execution`` timings, ``ExecuteTime``, ``collapsed``...);
- displays with nothing to show dropped (a search's progress bar, shown only while a
  search lasts, empties its display at the end);
- consecutive stream outputs of one stream merged (how a kernel chunks them varies);
- a widget's output keeps only a fixed text: its view points at a model with a random
  id that is not saved, so it would render as "model not found" and change every run.

A cell that raises stops the script with the error (exit code 1): lessons have no
error outputs. Nothing here is specific to a lesson.
"""

from __future__ import annotations

import argparse
import hashlib
import sys
import time
from pathlib import Path

import ipykernel.kernelspec
import nbformat
from jupyter_client.kernelspec import KernelSpecManager
from jupyter_client.manager import KernelManager
from nbclient import NotebookClient
from nbclient.exceptions import CellExecutionError

ROOT = Path(__file__).resolve().parent.parent
NOTEBOOKS = ROOT / "notebooks"
CELL_TIMEOUT = 120  # seconds per cell; a lesson cell takes well under one
KERNEL_NAME = "python3"
KERNELSPEC = {"display_name": "Python 3 (ipykernel)", "language": "python", "name": KERNEL_NAME}
# language_info as a Python kernel reports it, minus "version" (it differs per machine).
LANGUAGE_INFO = {
    "codemirror_mode": {"name": "ipython", "version": 3},
    "file_extension": ".py",
    "mimetype": "text/x-python",
    "name": "python",
    "nbconvert_exporter": "python",
    "pygments_lexer": "ipython3",
}
VOLATILE_CELL_METADATA = ("execution", "ExecuteTime", "collapsed", "scrolled")
WIDGET_MIME = "application/vnd.jupyter.widget-view+json"
WIDGET_PLACEHOLDER = ("[interactive widget: run this cell in JupyterLab to use it; "
                      "widgets do not run on GitHub or nbviewer]")


class CurrentEnvKernels(KernelSpecManager):
    """Every kernel name maps to ipykernel in the Python running this script, so a
    ``python3`` kernelspec elsewhere on the machine (another Python) is never used."""

    def get_kernel_spec(self, kernel_name: str):  # type: ignore[no-untyped-def]
        return self.kernel_spec_class(resource_dir=ipykernel.kernelspec.RESOURCES,
                                      **ipykernel.kernelspec.get_kernel_dict())


def execute(nb: nbformat.NotebookNode, cwd: Path) -> None:
    """Run every cell of ``nb`` in a fresh kernel, in ``cwd``; raise on a cell error."""
    km = KernelManager(kernel_name=KERNEL_NAME, kernel_spec_manager=CurrentEnvKernels())
    client = NotebookClient(
        nb, km=km, timeout=CELL_TIMEOUT, kernel_name=KERNEL_NAME, allow_errors=False,
        record_timing=False, store_widget_state=False,
        extra_arguments=["--IPKernelApp.log_level=ERROR"],  # no transport chatter
        resources={"metadata": {"path": str(cwd)}},
    )
    client.execute()


def _merge_streams(outputs: list[nbformat.NotebookNode]) -> list[nbformat.NotebookNode]:
    merged: list[nbformat.NotebookNode] = []
    for out in outputs:
        last = merged[-1] if merged else None
        if (out.output_type == "stream" and last is not None
                and last.output_type == "stream" and last.name == out.name):
            last.text += out.text
        else:
            merged.append(out)
    return merged


def _shows_something(out: nbformat.NotebookNode) -> bool:
    """False for a display with nothing to show once its kernel is gone: no data, or a
    widget's view alone with no text to stand in for it (an explorer search's progress
    bar, which empties its display when the search ends)."""
    return out.output_type != "display_data" or bool(set(out.data) - {WIDGET_MIME})


def _without_widget_view(out: nbformat.NotebookNode) -> nbformat.NotebookNode:
    if out.output_type in ("display_data", "execute_result") and WIDGET_MIME in out.data:
        out.data = nbformat.from_dict({"text/plain": WIDGET_PLACEHOLDER})
        out.metadata = nbformat.from_dict({})
    return out


def normalise(nb: nbformat.NotebookNode) -> nbformat.NotebookNode:
    """Make an executed notebook's bytes depend only on its sources and their outputs."""
    nb.metadata = nbformat.from_dict({"kernelspec": KERNELSPEC, "language_info": LANGUAGE_INFO})
    nb.nbformat, nb.nbformat_minor = 4, 5
    count = 0
    for index, cell in enumerate(nb.cells):
        if "id" not in cell:  # stable, unique ids (nbformat would make random ones)
            digest = hashlib.sha1(f"{index}:{cell.source}".encode()).hexdigest()[:8]
            cell.id = f"cell-{index}-{digest}"
        for key in VOLATILE_CELL_METADATA:
            cell.metadata.pop(key, None)
        if cell.cell_type != "code":
            cell.pop("outputs", None)
            cell.pop("execution_count", None)
            continue
        count += 1
        if cell.execution_count != count:
            raise ValueError(f"code cell {count} has execution count {cell.execution_count}, "
                             f"not {count}: is it unexecuted, or empty (remove empty cells)?")
        shown = [o for o in cell.outputs if _shows_something(o)]
        cell.outputs = [_without_widget_view(o) for o in _merge_streams(shown)]
        for out in cell.outputs:
            if out.output_type == "execute_result":
                out.execution_count = count
    nbformat.validate(nb)
    return nb


def run_one(path: Path) -> float:
    """Execute and normalise the notebook at ``path`` in place; return seconds taken."""
    start = time.monotonic()
    nb = nbformat.read(path, as_version=4)
    for cell in nb.cells:
        if cell.cell_type == "code":
            cell.outputs, cell.execution_count = [], None
    execute(nb, path.resolve().parent)
    text = nbformat.writes(normalise(nb)) + "\n"
    path.write_text(text, encoding="utf-8")
    return time.monotonic() - start


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("paths", nargs="*", type=Path,
                        help="notebooks to execute (default: every notebooks/*.ipynb)")
    args = parser.parse_args(argv)
    paths = args.paths or sorted(NOTEBOOKS.glob("*.ipynb"))
    if not paths:
        print("execute_notebooks: no notebooks found", file=sys.stderr)
        return 1
    for path in paths:
        print(f"executing {path} ...", end=" ", flush=True)
        try:
            seconds = run_one(path)
        except CellExecutionError as exc:
            print(f"FAILED\n{exc}", file=sys.stderr)
            return 1
        print(f"done in {seconds:.1f} s, {path.stat().st_size / 1024:.0f} KiB", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
