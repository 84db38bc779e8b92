"""Lamport's TLA+ models of transaction commit, as models of the explorer's search.

``TCommit.tla`` specifies the transaction-commit problem: each resource manager (RM)
goes working -> prepared -> committed, or aborts, and no two RMs ever disagree.
``TwoPhase.tla`` specifies two-phase commit with a transaction manager (TM) and a set
of messages that are never removed (so a message can be received any number of times;
losing one is the same as never receiving it). Both are in tlaplus/Examples,
``specifications/transaction_commit``; here every action of the spec is one function,
named as in the spec, with its enabling conditions and effects in the same order.

The same :func:`txlib.explorer.search.search` that explores txlib's worlds explores these,
so their distinct-state counts can be compared with TLC's: for 3 RMs (the ``.cfg`` files
of tlaplus/Examples) TLC reports 34 distinct states, 94 states generated and depth 7 for
TCommit, and 288 distinct states, 1146 generated and depth 11 for TwoPhase (its
``manifest.json``); the comment at the end of ``TwoPhase.tla`` gives 50816 reachable
states for 6 RMs. TLC's "states generated" counts every successor it computes, plus the
initial states: the search's ``transitions + initial_states``; TLC's depth counts
states on the longest shortest path: the search's ``depth + 1``.

:func:`refinement_violations` checks the spec's theorem ``TPSpec => TC!TCSpec`` on the
state graph: every TwoPhase step changes ``rmState`` as a TCommit step does, or not at
all.

>>> from txlib.explorer.tla import TwoPhase, check
>>> check(TwoPhase(3)).states
288
"""

from __future__ import annotations

from collections.abc import Hashable, Iterable
from typing import Any, NamedTuple, cast

from .search import Exploration, Model, SearchProgress, search

WORKING, PREPARED, COMMITTED, ABORTED = "working", "prepared", "committed", "aborted"
RM_STATES = (WORKING, PREPARED, COMMITTED, ABORTED)
TM_STATES = ("init", "committed", "aborted")

TLC_COUNTS: dict[tuple[str, int], dict[str, int]] = {
    # (model, RMs): what TLC reports (tlaplus/Examples manifest.json and TwoPhase.tla)
    ("TCommit", 3): {"distinct": 34, "generated": 94, "depth": 7},
    ("TwoPhase", 3): {"distinct": 288, "generated": 1146, "depth": 11},
    ("TwoPhase", 6): {"distinct": 50816},
}


def _set(rm_state: tuple[str, ...], i: int, value: str) -> tuple[str, ...]:
    """``[rmState EXCEPT ![rm] = value]``."""
    return (*rm_state[:i], value, *rm_state[i + 1:])


def consistent(rm_state: tuple[str, ...]) -> str | None:
    """TCConsistent: no RM aborted while another committed (None if it holds)."""
    if ABORTED in rm_state and COMMITTED in rm_state:
        return (f"r{rm_state.index(ABORTED) + 1} aborted while "
                f"r{rm_state.index(COMMITTED) + 1} committed")
    return None


# --- TCommit -----------------------------------------------------------------------------
class TCommit(Model[tuple[str, ...]]):
    """``TCommit.tla``: the state is ``rmState`` (one entry per RM, r1 first)."""

    invariant_names = ("TCTypeOK", "TCConsistent")

    def __init__(self, rms: int = 3) -> None:
        self.rms = rms
        self.name = f"TCommit with {rms} RMs"

    def initial(self) -> Iterable[tuple[str, ...]]:
        """TCInit: every RM is working."""
        return [(WORKING,) * self.rms]

    def successors(self, s: tuple[str, ...]) -> Iterable[tuple[Hashable, tuple[str, ...]]]:
        """TCNext == \\E rm \\in RM : Prepare(rm) \\/ Decide(rm)."""
        can_commit = all(x in (PREPARED, COMMITTED) for x in s)
        not_committed = all(x != COMMITTED for x in s)
        out: list[tuple[Hashable, tuple[str, ...]]] = []
        for i, x in enumerate(s):
            if x == WORKING:  # Prepare(rm)
                out.append((("Prepare", i), _set(s, i, PREPARED)))
            if x == PREPARED and can_commit:  # Decide(rm), first disjunct
                out.append((("Decide", i, "commit"), _set(s, i, COMMITTED)))
            if x in (WORKING, PREPARED) and not_committed:  # Decide(rm), second disjunct
                out.append((("Decide", i, "abort"), _set(s, i, ABORTED)))
        return out

    def fingerprint(self, s: tuple[str, ...]) -> Hashable:
        return s

    def violations(self, s: tuple[str, ...]) -> list[tuple[str, str]]:
        out = []
        if len(s) != self.rms or any(x not in RM_STATES for x in s):
            out.append(("TCTypeOK", f"rmState = {s}"))
        reason = consistent(s)
        if reason:
            out.append(("TCConsistent", reason))
        return out

    def describe(self, action: Hashable) -> str:
        name, i, *rest = cast(tuple[Any, ...], action)  # ("Decide", i, "commit"), ...
        return f"{name}(r{i + 1})" + (f" [{rest[0]}]" if rest else "")


# --- TwoPhase ----------------------------------------------------------------------------
class TPState(NamedTuple):
    """A TwoPhase state. ``tm_prepared`` is the set of RMs as a bit mask (bit i: r{i+1});
    ``msgs`` is the set of messages sent: ``prepared`` a bit mask of the RMs whose
    Prepared message was sent, and whether Commit and Abort were."""

    rm_state: tuple[str, ...]
    tm_state: str
    tm_prepared: int
    prepared_msgs: int
    commit_msg: bool
    abort_msg: bool


class TwoPhase(Model[TPState]):
    """``TwoPhase.tla``: RMs prepare on their own and send Prepared; the TM commits once
    it has received every Prepared, or aborts at any time before."""

    invariant_names = ("TPTypeOK", "TCConsistent")

    def __init__(self, rms: int = 3) -> None:
        self.rms = rms
        self.all = (1 << rms) - 1
        self.name = f"TwoPhase with {rms} RMs"

    def initial(self) -> Iterable[TPState]:
        """TPInit."""
        return [TPState((WORKING,) * self.rms, "init", 0, 0, False, False)]

    def successors(self, s: TPState) -> Iterable[tuple[Hashable, TPState]]:
        """TPNext == TMCommit \\/ TMAbort \\/ \\E rm : TMRcvPrepared(rm) \\/ RMPrepare(rm)
        \\/ RMChooseToAbort(rm) \\/ RMRcvCommitMsg(rm) \\/ RMRcvAbortMsg(rm)."""
        out: list[tuple[Hashable, TPState]] = []
        if s.tm_state == "init" and s.tm_prepared == self.all:  # TMCommit
            out.append((("TMCommit",), s._replace(tm_state="committed", commit_msg=True)))
        if s.tm_state == "init":  # TMAbort
            out.append((("TMAbort",), s._replace(tm_state="aborted", abort_msg=True)))
        for i in range(self.rms):
            bit = 1 << i
            if s.tm_state == "init" and s.prepared_msgs & bit:  # TMRcvPrepared(rm)
                out.append((("TMRcvPrepared", i), s._replace(tm_prepared=s.tm_prepared | bit)))
            if s.rm_state[i] == WORKING:  # RMPrepare(rm)
                out.append((("RMPrepare", i), s._replace(
                    rm_state=_set(s.rm_state, i, PREPARED),
                    prepared_msgs=s.prepared_msgs | bit)))
            if s.rm_state[i] == WORKING:  # RMChooseToAbort(rm)
                out.append((("RMChooseToAbort", i),
                            s._replace(rm_state=_set(s.rm_state, i, ABORTED))))
            if s.commit_msg:  # RMRcvCommitMsg(rm)
                out.append((("RMRcvCommitMsg", i),
                            s._replace(rm_state=_set(s.rm_state, i, COMMITTED))))
            if s.abort_msg:  # RMRcvAbortMsg(rm)
                out.append((("RMRcvAbortMsg", i),
                            s._replace(rm_state=_set(s.rm_state, i, ABORTED))))
        return out

    def fingerprint(self, s: TPState) -> Hashable:
        return s

    def violations(self, s: TPState) -> list[tuple[str, str]]:
        """TPTypeOK, and TCommit's TCConsistent on ``rmState`` (TwoPhase refines TCommit)."""
        out = []
        if not (len(s.rm_state) == self.rms and all(x in RM_STATES for x in s.rm_state)
                and s.tm_state in TM_STATES and 0 <= s.tm_prepared <= self.all
                and 0 <= s.prepared_msgs <= self.all):
            out.append(("TPTypeOK", repr(s)))
        reason = consistent(s.rm_state)
        if reason:
            out.append(("TCConsistent", reason))
        return out

    def describe(self, action: Hashable) -> str:
        name, *rest = cast(tuple[Any, ...], action)  # ("RMPrepare", i), ("TMCommit",), ...
        return f"{name}(r{rest[0] + 1})" if rest else str(name)


def check(model: Model[Any], *, progress: bool | SearchProgress | None = False,
          **limits: Any) -> Exploration:
    """Explore a TLA+ model completely (no blocking analysis: these specs state safety
    only)."""
    return search(model, stop_on_violation=False, blocking=False, progress=progress,
                  settings={"rms": getattr(model, "rms", "?")}, **limits)


def tcommit_step(before: tuple[str, ...], after: tuple[str, ...]) -> bool:
    """True if ``before -> after`` is a TCNext step of TCommit."""
    return any(t == after for _, t in TCommit(len(before)).successors(before))


def refinement_violations(rms: int = 3) -> list[str]:
    """TwoPhase steps whose change of ``rmState`` is neither a TCommit step nor a
    stutter (``TPSpec => TC!TCSpec``); empty if TwoPhase implements TCommit."""
    model = TwoPhase(rms)
    seen = set(model.initial())
    todo = list(seen)
    bad = []
    while todo:
        s = todo.pop()
        for action, t in model.successors(s):
            if t.rm_state != s.rm_state and not tcommit_step(s.rm_state, t.rm_state):
                bad.append(f"{model.describe(action)}: {s.rm_state} -> {t.rm_state}")
            if t not in seen:
                seen.add(t)
                todo.append(t)
    return bad
