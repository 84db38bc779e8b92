"""txlib's packages import only downward, along the layering the README states.

Every import counts, including imports inside functions (a lazy import that dodges a
cycle is still the cycle); imports under ``if TYPE_CHECKING:`` do not, since they never
run. Packages on the same layer (``explorer`` and ``real``) may not import each other.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

TXLIB = Path(__file__).resolve().parent.parent / "txlib"

# Bottom to top. A unit is a subpackage of txlib or a top-level module of it.
LAYERS: tuple[tuple[str, ...], ...] = (
    ("errors",),
    ("engine",),
    ("properties",),
    ("sagas",),
    ("protocols",),
    ("simulation",),
    ("presets",),
    ("explorer", "real"),
    ("viz",),
    ("course",),
    ("cli",),
    ("__init__", "__main__"),
)
RANK = {unit: i for i, layer in enumerate(LAYERS) for unit in layer}


def unit_of(module: str) -> str:
    """``txlib.viz.lab`` -> ``viz``; ``txlib`` -> ``__init__``."""
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else "__init__"


def module_of(path: Path) -> tuple[str, bool]:
    rel = path.relative_to(TXLIB.parent).with_suffix("").parts
    if rel[-1] == "__init__":
        return ".".join(rel[:-1]), True
    return ".".join(rel), False


def type_checking_nodes(tree: ast.AST) -> set[int]:
    skip: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            skip.update(id(n) for stmt in node.body for n in ast.walk(stmt))
    return skip


def imports(path: Path) -> list[tuple[str, int]]:
    """Every txlib module ``path`` imports (at any depth), with its line."""
    module, is_package = module_of(path)
    package = module if is_package else module.rsplit(".", 1)[0]
    tree = ast.parse(path.read_text(), str(path))
    skip = type_checking_nodes(tree)
    found: list[tuple[str, int]] = []
    for node in ast.walk(tree):
        if id(node) in skip:
            continue
        if isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[: len(base) - (node.level - 1)]
                target = ".".join([*base, *([node.module] if node.module else [])])
            else:
                target = node.module or ""
            if node.module is None:  # from . import a, b: each name may be a module
                found += [(f"{target}.{a.name}", node.lineno) for a in node.names]
            else:
                found.append((target, node.lineno))
        elif isinstance(node, ast.Import):
            found += [(a.name, node.lineno) for a in node.names]
    return [(t, line) for t, line in found if t == "txlib" or t.startswith("txlib.")]


def all_sources() -> list[Path]:
    return sorted(TXLIB.rglob("*.py"))


def test_every_unit_has_a_layer() -> None:
    units = {unit_of(module_of(p)[0]) for p in all_sources()}
    assert units <= set(RANK), f"give these a layer in LAYERS: {sorted(units - set(RANK))}"


@pytest.mark.parametrize("path", all_sources(), ids=lambda p: str(p.relative_to(TXLIB)))
def test_imports_go_down(path: Path) -> None:
    me = unit_of(module_of(path)[0])
    wrong = []
    for target, line in imports(path):
        other = unit_of(target)
        if other == me:
            continue
        if RANK[other] >= RANK[me]:
            wrong.append(f"line {line}: {me} imports {target} ({other} is not below {me})")
    assert not wrong, "\n".join(wrong)


def test_the_checker_sees_lazy_imports(tmp_path: Path) -> None:
    """A function-level import is found; one under TYPE_CHECKING is not."""
    src = TXLIB / "engine" / "_probe_for_layering_test.py"
    src.write_text(
        "from typing import TYPE_CHECKING\n"
        "if TYPE_CHECKING:\n    from ..viz import lab\n"
        "def f():\n    from ..protocols import PROTOCOLS\n    return PROTOCOLS\n"
    )
    try:
        assert imports(src) == [("txlib.protocols", 5)]
    finally:
        src.unlink()


def _protocol_names() -> set[str]:
    from txlib.protocols import PROTOCOLS

    return set(PROTOCOLS)


# Where a protocol's name may appear in a comparison: its own module (and the registry),
# the named scenarios, and the lessons, which are about particular protocols.
NAMES_ALLOWED = ("protocols", "presets", "course")


def protocol_name_branches(source: str) -> list[str]:
    """Comparisons against a registered protocol's name in ``source``."""
    names = _protocol_names()
    found = []
    for node in ast.walk(ast.parse(source)):
        constants: list[ast.AST] = []
        if isinstance(node, ast.Compare):
            constants = [node.left, *node.comparators]
            for c in node.comparators:
                if isinstance(c, (ast.Tuple, ast.List, ast.Set)):
                    constants += c.elts
        elif (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)
              and node.func.attr in ("startswith", "endswith")):
            constants = list(node.args)
        for c in constants:
            if not (isinstance(c, ast.Constant) and isinstance(c.value, str)):
                continue
            prefix = isinstance(node, ast.Call) and any(n.startswith(c.value) for n in names)
            if c.value in names or prefix:
                found.append(f"line {node.lineno}: {ast.unparse(node)}")
    return found


@pytest.mark.parametrize("path", all_sources(), ids=lambda p: str(p.relative_to(TXLIB)))
def test_no_code_branches_on_a_protocol_name(path: Path) -> None:
    """``if scenario.protocol == "2pc"`` (or ``in (...)``, ``.startswith("saga")``) outside
    a protocol's own module means a new protocol would need edits there: ask the protocol
    (its roster, its methods) instead."""
    if unit_of(module_of(path)[0]) in NAMES_ALLOWED:
        return
    found = protocol_name_branches(path.read_text())
    assert not found, "\n".join(found)


def test_the_name_check_sees_branches() -> None:
    src = ('if run.protocol in ("2pc", "3pc"): pass\n'
           'if p.startswith("saga"): pass\n'
           'lab(target="2pc")\n')
    assert [f.split(":")[0] for f in protocol_name_branches(src)] == ["line 1", "line 1", "line 2"]
