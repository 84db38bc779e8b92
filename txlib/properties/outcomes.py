"""The four kinds of outcome every protocol's outcomes fall into.

Each protocol names its own outcomes (2PC: committed, aborted, blocked, inconsistent;
a saga: completed, compensated, stuck, inconsistent; ...) and says which kind each is,
so tools that compare runs across protocols (the fault grid, "can it get worse?") need
no protocol's vocabulary.
"""

from __future__ import annotations

DONE = "done"  # the transaction took effect everywhere
UNDONE = "undone"  # it took effect nowhere (rolled back or compensated)
WAITING = "waiting"  # somebody cannot finish: blocked in doubt, or a stuck saga
BROKEN = "broken"  # a safety rule is broken

KINDS: tuple[str, ...] = (DONE, UNDONE, WAITING, BROKEN)
SEVERITY: dict[str, int] = {DONE: 0, UNDONE: 0, WAITING: 1, BROKEN: 2}
# How each kind is drawn: (symbol, ASCII fallback, colour); never colour alone.
SYMBOLS: dict[str, tuple[str, str, str]] = {
    DONE: ("✓", "+", "#009E73"),
    UNDONE: ("✗", "x", "#E69F00"),
    WAITING: ("⏸", "=", "#56B4E9"),
    BROKEN: ("⚠", "!", "#D55E00"),
}
COMMIT_OUTCOMES: dict[str, str] = {"committed": DONE, "aborted": UNDONE, "blocked": WAITING,
                                   "inconsistent": BROKEN}
