"""Same scenario, same bytes: across processes with different hash seeds (the real risk is
iterating a set or dict in an order that depends on the process)."""

from __future__ import annotations

import os
import subprocess
import sys

DIGEST = """
import hashlib, txlib
from txlib.viz.spacetime import spacetime_svg
h = hashlib.sha256()
for name in txlib.scenarios():
    run = txlib.scenario(name).run()
    h.update(run.trace.to_jsonl().encode())
    h.update(spacetime_svg(run.trace, window=None).encode())
    h.update(repr(run.trace.volatile).encode())  # the lab's node table: sets inside sorted
    h.update(repr((run.outcome, run.violations, run.unfired_faults)).encode())
    h.update(txlib.Scenario.from_json(run.scenario.to_json()).to_json().encode())
print(h.hexdigest())
"""


def digest(hash_seed: str) -> str:
    env = {**os.environ, "PYTHONHASHSEED": hash_seed}
    out = subprocess.run([sys.executable, "-c", DIGEST], capture_output=True, text=True,
                         env=env, timeout=300, check=True)
    return out.stdout.strip()


def test_every_named_scenario_gives_identical_bytes_under_different_hash_seeds():
    first, second = digest("1"), digest("4242")
    assert len(first) == 64 and first == second
