"""Lamport's ``PaxosCommit.tla`` as a model of the explorer's search.

The spec (tlaplus/Examples, ``specifications/transaction_commit``) has three
variables: ``rmState`` (working / prepared / committed / aborted per RM), ``aState``
(per instance and acceptor: the highest ballot promised ``mbal``, and the ballot
``bal`` and value ``val`` last accepted) and ``msgs``, the set of every message ever
sent. Its actions are RMPrepare, RMChooseToAbort, RMRcvCommitMsg, RMRcvAbortMsg
(resource managers), Phase1a, Phase2a and Decide (any leader), Phase1b and Phase2b
(acceptors). Each is one block below, on a readable :class:`PCState`, with its
enabling conditions and effects in the spec's order.

With ``PaxosCommit.cfg`` (RMs r1, r2; acceptors a1, a2, a3; majorities the three
pairs; ballots {0, 1}) TLC reports 1,321,761 distinct states, 16,959,159 states
generated and depth 28. TLC's "generated" counts one successor for every way the
quantifiers of an action can be satisfied: it enumerates each ``\\E`` and expands each
``\\A`` over a finite set into the conjunction of its instances, enumerated the same
way. So ``Decide``'s commit disjunct ``\\A rm : Decided(rm, "prepared")``, with
``Decided`` an ``\\E b, MS``, gives the product over the RMs of the number of (ballot,
majority) pairs that decided each; ``Phase1b(acc)`` one successor per phase 1a
message it can answer; ``Phase2a(bal, rm)`` one per majority (times, for each acceptor
of it, its number of phase 1b messages for that ballot). Each is one transition of the
search: TLC's "generated" is ``transitions + initial_states`` and TLC's depth is
``depth + 1``.

For speed a state is one int (two bits per RM, a small code per acceptor and instance,
one bit per possible message), and each group of actions (the RMs', the leaders', the
decision, each acceptor's) reads only a few of those bits: its successors are computed
once for each value of its bits, on the decoded state, and then applied to every state
with those bits by one ``|``. That explores the 1.3 million states of the ``.cfg`` in
well under a minute.

:func:`check_paxos` also checks the theorem ``PCSpec => TC!TCSpec`` on every generated
transition: each step changes ``rmState`` as a TCommit step does, or not at all.
"""

from __future__ import annotations

from collections.abc import Callable, Hashable, Iterable, Sequence
from itertools import combinations
from typing import Any, NamedTuple, cast

from ..errors import TxlibError
from .search import Exploration, Model, SearchProgress, search
from .tla import ABORTED, COMMITTED, PREPARED, RM_STATES, WORKING, TCommit, consistent

VALUES = ("prepared", "aborted", "none")  # an acceptor's val ("none": nothing accepted)
Msg = tuple[Any, ...]  # ("phase1a", ins, bal), ("phase1b", ins, mbal, bal, val, acc), ...
Triple = tuple[int, int, str]  # an acceptor's (mbal, bal, val) in one instance
Step = tuple[Hashable, "PCState"]

TLC_PAXOS_COUNTS: dict[tuple[int, int, tuple[int, ...]], dict[str, int]] = {
    # (RMs, acceptors, ballots): what TLC reports for PaxosCommit.cfg (manifest.json)
    (2, 3, (0, 1)): {"distinct": 1_321_761, "generated": 16_959_159, "depth": 28},
}


class PCState(NamedTuple):
    """A PaxosCommit state: ``rm_state[rm]``, ``a_state[ins][acc]`` and ``msgs``, with
    RMs and acceptors numbered from 0 (r1 is 0)."""

    rm_state: tuple[str, ...]
    a_state: tuple[tuple[Triple, ...], ...]
    msgs: frozenset[Msg]


class PaxosCommitSpec(Model[int]):
    """``PaxosCommit.tla`` with ``rms`` RMs, ``acceptors`` acceptors, the given ballots
    (0 included) and, as majorities, every set of ``acceptors // 2 + 1`` acceptors (the
    ``.cfg``'s three pairs for three acceptors). States are ints; :meth:`decode` and
    :meth:`encode` convert to and from :class:`PCState`.

    With ``refinement=True`` every generated transition is also checked against
    TCommit; steps that are not TCommit steps collect in :attr:`bad_steps`.
    """

    # PCTypeOK holds by construction (see violations)
    invariant_names = ("PCTypeOK", "TCConsistent")

    def __init__(self, rms: int = 2, acceptors: int = 3, ballots: Sequence[int] = (0, 1),
                 refinement: bool = False) -> None:
        if 0 not in ballots or any(b < 0 for b in ballots):
            raise TxlibError(f"ballots must be numbers >= 0 including 0, got {ballots!r}")
        self.rms, self.acceptors = rms, acceptors
        self.ballots = tuple(sorted(set(ballots)))
        self.majorities = tuple(combinations(range(acceptors), acceptors // 2 + 1))
        self.name = (f"PaxosCommit with {rms} RMs, {acceptors} acceptors, ballots "
                     f"{set(self.ballots)}")
        self.refinement = refinement
        self.bad_steps: list[str] = []
        self._consistent: set[int] = set()  # RM bits known to satisfy TCConsistent
        self._encoding()
        self._groups()
        # TCommit's steps on rmState, as (before, after) RM bits
        tc = TCommit(rms)
        self.tc_steps = {(self._rm_bits(before), self._rm_bits(after))
                         for before in _all_rm_states(rms)
                         for _, after in tc.successors(before)}

    # --- the spec's actions, on a readable state -------------------------------------------
    def rm_actions(self, s: PCState) -> list[Step]:
        """\\E rm : RMPrepare(rm) \\/ RMChooseToAbort(rm) \\/ RMRcvCommitMsg(rm)
        \\/ RMRcvAbortMsg(rm)."""
        out: list[Step] = []
        for rm in range(self.rms):
            if s.rm_state[rm] == WORKING:  # RMPrepare, RMChooseToAbort
                for name, state, val in (("RMPrepare", PREPARED, "prepared"),
                                         ("RMChooseToAbort", ABORTED, "aborted")):
                    out.append(((name, rm), s._replace(
                        rm_state=_set(s.rm_state, rm, state),
                        msgs=s.msgs | {("phase2a", rm, 0, val)})))
            if ("Commit",) in s.msgs:  # RMRcvCommitMsg
                out.append((("RMRcvCommitMsg", rm),
                            s._replace(rm_state=_set(s.rm_state, rm, COMMITTED))))
            if ("Abort",) in s.msgs:  # RMRcvAbortMsg
                out.append((("RMRcvAbortMsg", rm),
                            s._replace(rm_state=_set(s.rm_state, rm, ABORTED))))
        return out

    def leader_actions(self, s: PCState) -> list[Step]:
        """\\E bal \\in Ballot \\ {0}, rm : Phase1a(bal, rm) \\/ Phase2a(bal, rm)."""
        out: list[Step] = []
        for bal in self.ballots[1:]:
            for rm in range(self.rms):
                # Phase1a(bal, rm)
                out.append((("Phase1a", bal, rm), s._replace(msgs=s.msgs | {
                    ("phase1a", rm, bal)})))
                # Phase2a(bal, rm)
                if any(m[0] == "phase2a" and m[2] == bal and m[1] == rm for m in s.msgs):
                    continue
                for n, ms in enumerate(self.majorities):  # \E MS \in Majority
                    mset = [m for m in s.msgs if m[0] == "phase1b" and m[1] == rm
                            and m[2] == bal and m[5] in ms]
                    maxbal = max((m[3] for m in mset), default=-1)
                    val = "aborted" if maxbal == -1 else next(
                        m[4] for m in sorted(mset) if m[3] == maxbal)
                    ways = 1  # \A ac \in MS : \E m \in mset : m.acc = ac
                    for ac in ms:
                        ways *= sum(1 for m in mset if m[5] == ac)
                    nxt = s._replace(msgs=s.msgs | {("phase2a", rm, bal, val)})
                    out += [(("Phase2a", bal, rm, n), nxt)] * ways
        return out

    def decide(self, s: PCState) -> list[Step]:
        """Decide: Commit if every instance decided "prepared", Abort if one decided
        "aborted", once per witness."""
        def decided(rm: int, v: str) -> int:  # witnesses of \E b \in Ballot, MS \in Majority
            return sum(1 for b in self.ballots for ms in self.majorities
                       if all(("phase2b", ac, rm, b, v) in s.msgs for ac in ms))
        commits = 1
        for rm in range(self.rms):  # \A rm \in RM : Decided(rm, "prepared")
            commits *= decided(rm, "prepared")
        aborts = sum(decided(rm, "aborted") for rm in range(self.rms))  # \E rm
        out: list[Step] = [(("Decide", "commit"), s._replace(msgs=s.msgs | {("Commit",)}))]
        out *= commits
        out += [(("Decide", "abort"), s._replace(msgs=s.msgs | {("Abort",)}))] * aborts
        return out

    def acceptor_actions(self, acc: int) -> Callable[[PCState], list[Step]]:
        """Phase1b(acc) \\/ Phase2b(acc): one successor per message it can answer."""
        def actions(s: PCState) -> list[Step]:
            out: list[Step] = []
            for m in sorted(s.msgs):
                if m[0] == "phase1a":  # Phase1b(acc)
                    _, ins, bal = m
                    mbal, abal, aval = s.a_state[ins][acc]
                    if mbal < bal:
                        out.append((("Phase1b", acc, ins, bal), PCState(
                            s.rm_state, _set_a(s.a_state, ins, acc, (bal, abal, aval)),
                            s.msgs | {("phase1b", ins, bal, abal, aval, acc)})))
                elif m[0] == "phase2a":  # Phase2b(acc)
                    _, ins, bal, val = m
                    if s.a_state[ins][acc][0] <= bal:
                        out.append((("Phase2b", acc, ins, bal, val), PCState(
                            s.rm_state, _set_a(s.a_state, ins, acc, (bal, bal, val)),
                            s.msgs | {("phase2b", acc, ins, bal, val)})))
            return out
        return actions

    # --- the encoding ---------------------------------------------------------------------
    def _encoding(self) -> None:
        """Bit positions: 2 bits per RM, a code per (instance, acceptor), a bit per message."""
        rms, acc, ballots = self.rms, self.acceptors, self.ballots
        bals = (-1, *ballots)
        self.triples: list[Triple] = [(m, b, v) for m in ballots for b in bals for v in VALUES]
        self.code = {t: i for i, t in enumerate(self.triples)}
        self.width = max(1, (len(self.triples) - 1).bit_length())
        self.field = (1 << self.width) - 1
        higher = ballots[1:]
        universe: list[Msg] = []
        universe += [("phase1a", i, b) for i in range(rms) for b in higher]
        universe += [("phase1b", i, m, b, v, a) for i in range(rms) for m in higher
                     for b in bals for v in VALUES for a in range(acc)]
        universe += [("phase2a", i, b, v) for i in range(rms) for b in ballots
                     for v in VALUES[:2]]
        universe += [("phase2b", a, i, b, v) for a in range(acc) for i in range(rms)
                     for b in ballots for v in VALUES[:2]]
        universe += [("Commit",), ("Abort",)]
        self.messages = universe
        base = 2 * rms + rms * acc * self.width
        self.bit = {m: 1 << (base + n) for n, m in enumerate(universe)}
        self.rm_mask = (1 << (2 * rms)) - 1

    def _shift(self, ins: int, acc: int) -> int:
        return 2 * self.rms + (ins * self.acceptors + acc) * self.width

    def _mask(self, kinds: Iterable[str]) -> int:
        return sum(b for m, b in self.bit.items() if m[0] in kinds)

    def encode(self, s: PCState) -> int:
        """The int of state ``s``."""
        out = sum(RM_STATES.index(x) << (2 * i) for i, x in enumerate(s.rm_state))
        for ins, row in enumerate(s.a_state):
            for acc, triple in enumerate(row):
                out |= self.code[triple] << self._shift(ins, acc)
        return out | sum(self.bit[m] for m in s.msgs)

    def decode(self, s: int) -> PCState:
        """The readable state of int ``s``."""
        return PCState(
            tuple(RM_STATES[(s >> (2 * i)) & 3] for i in range(self.rms)),
            tuple(tuple(self.triples[(s >> self._shift(i, a)) & self.field]
                        for a in range(self.acceptors)) for i in range(self.rms)),
            frozenset(m for m, b in self.bit.items() if s & b))

    def _groups(self) -> None:
        """Each group of actions with the bits of the state it reads (its key)."""
        fields = [sum(self.field << self._shift(i, a) for i in range(self.rms))
                  for a in range(self.acceptors)]
        asks = self._mask(("phase1a", "phase2a"))
        groups: list[tuple[int, Callable[[PCState], list[Step]]]] = [
            (self.rm_mask | self._mask(("Commit", "Abort")), self.rm_actions),
            (self._mask(("phase1b", "phase2a")), self.leader_actions),
            (self._mask(("phase2b",)), self.decide),
            *((fields[a] | asks, self.acceptor_actions(a)) for a in range(self.acceptors)),
        ]
        # (bits read, bits kept, cache: key -> ((action, key's successor), ...), actions)
        self.groups: list[tuple[int, int, dict[int, tuple[tuple[Hashable, int], ...]],
                                Callable[[PCState], list[Step]]]] = [
            (mask, ~mask, {}, actions) for mask, actions in groups]

    def _steps(self, key: int, actions: Callable[[PCState], list[Step]]
               ) -> tuple[tuple[Hashable, int], ...]:
        """The successors of the state ``key`` (only the group's bits set) by ``actions``.
        Every action writes only its group's bits or adds messages, so the successor of
        a whole state ``s`` is ``(s & ~mask) | successor of (s & mask)``."""
        return tuple((action, self.encode(t)) for action, t in actions(self.decode(key)))

    # --- the model ------------------------------------------------------------------------
    def initial(self) -> Iterable[int]:
        """PCInit: every RM working, every acceptor (mbal 0, bal -1, val none), no message."""
        fresh = (0, -1, "none")
        return [self.encode(PCState((WORKING,) * self.rms,
                                    ((fresh,) * self.acceptors,) * self.rms, frozenset()))]

    def successors(self, s: int) -> list[tuple[Hashable, int]]:
        """PCNext: one (action, state) pair per successor TLC generates."""
        out: list[tuple[Hashable, int]] = []
        for mask, keep, cache, actions in self.groups:
            key = s & mask
            steps = cache.get(key)
            if steps is None:
                steps = cache[key] = self._steps(key, actions)
            if steps:
                rest = s & keep
                out += [(action, rest | t) for action, t in steps]
        if self.refinement:
            self._check_refinement(s, out)
        return out

    def _check_refinement(self, s: int, out: list[tuple[Hashable, int]]) -> None:
        mask, before = self.rm_mask, s & self.rm_mask
        for action, t in out:
            after = t & mask
            if after != before and (before, after) not in self.tc_steps:
                self.bad_steps.append(f"{self.describe(action)}: "
                                      f"{self.decode(s).rm_state} -> {self.decode(t).rm_state}")

    @staticmethod
    def _rm_bits(rm_state: Sequence[str]) -> int:
        return sum(RM_STATES.index(x) << (2 * i) for i, x in enumerate(rm_state))

    def fingerprint(self, s: int) -> Hashable:
        return s

    def violations(self, s: int) -> list[tuple[str, str]]:
        """TCommit's TCConsistent on ``rmState`` (PCTypeOK holds by construction: each
        field can only hold the type's values)."""
        rm = s & self.rm_mask
        if rm in self._consistent:
            return []
        reason = consistent(tuple(RM_STATES[(rm >> (2 * i)) & 3] for i in range(self.rms)))
        if reason is None:
            self._consistent.add(rm)
            return []
        return [("TCConsistent", reason)]

    def describe(self, action: Hashable) -> str:
        name, *args = cast("tuple[Any, ...]", action)
        if name in ("RMPrepare", "RMChooseToAbort", "RMRcvCommitMsg", "RMRcvAbortMsg"):
            return f"{name}(r{args[0] + 1})"
        if name == "Phase1a":
            return f"Phase1a({args[0]}, r{args[1] + 1})"
        if name == "Phase2a":
            ms = ", ".join(f"a{a + 1}" for a in self.majorities[args[2]])
            return f"Phase2a({args[0]}, r{args[1] + 1}) with {{{ms}}}"
        if name == "Decide":
            return f"Decide [{args[0]}]"
        if name == "Phase1b":
            return f"Phase1b(a{args[0] + 1}) answering phase1a(r{args[1] + 1}, {args[2]})"
        return (f"Phase2b(a{args[0] + 1}) accepting phase2a(r{args[1] + 1}, {args[2]}, "
                f"{args[3]})")


def _set(values: tuple[str, ...], i: int, value: str) -> tuple[str, ...]:
    return (*values[:i], value, *values[i + 1:])


def _set_a(a_state: tuple[tuple[Triple, ...], ...], ins: int, acc: int,
           triple: Triple) -> tuple[tuple[Triple, ...], ...]:
    row = (*a_state[ins][:acc], triple, *a_state[ins][acc + 1:])
    return (*a_state[:ins], row, *a_state[ins + 1:])


def _all_rm_states(rms: int) -> list[tuple[str, ...]]:
    out: list[tuple[str, ...]] = [()]
    for _ in range(rms):
        out = [(*s, x) for s in out for x in RM_STATES]
    return out


def check_paxos(rms: int = 2, acceptors: int = 3, ballots: Sequence[int] = (0, 1), *,
                progress: bool | SearchProgress | None = False,
                **limits: Any) -> tuple[Exploration, PaxosCommitSpec]:
    """Explore ``PaxosCommit.tla`` completely, checking on the way that it refines
    TCommit; the search's result and the model (whose ``bad_steps`` lists every step
    that is not a TCommit step)."""
    model = PaxosCommitSpec(rms, acceptors, ballots, refinement=True)
    result = search(model, stop_on_violation=False, blocking=False, progress=progress,
                    settings={"rms": rms, "acceptors": acceptors, "ballots": list(ballots)},
                    **limits)
    return result, model
