"""Lamport's PaxosCommit.tla as an explorer model: TLC's counts, an independent
transcription of the spec, its refinement of TCommit, and a broken variant caught."""

from __future__ import annotations

import time
from itertools import combinations

import pytest

from txlib.explorer.tla_paxos import (
    TLC_PAXOS_COUNTS,
    PaxosCommitSpec,
    PCState,
    check_paxos,
)


def rec(**fields):
    """A TLA+ record, as a hashable set of (field, value) pairs."""
    return frozenset(fields.items())


def pc_next(rms, accs, ballots):
    """PCNext, written again straight from PaxosCommit.tla, messages as records and the
    state as ``(rmState, aState, msgs)``: one successor for each witness of each
    ``\\E``, and each ``\\A`` over a finite set enumerated as the conjunction of its
    instances (what TLC counts as generated)."""
    majorities = [frozenset(c) for c in combinations(accs, len(accs) // 2 + 1)]

    def successors(s):
        rm_state, a_state, msgs = s
        rm_of, a_of = dict(rm_state), dict(a_state)

        def with_rm(rm, value):
            return tuple(sorted({**rm_of, rm: value}.items()))

        def with_a(ins, ac, value):
            return tuple(sorted({**a_of, (ins, ac): value}.items()))

        for rm in rms:
            if rm_of[rm] == "working":  # RMPrepare(rm)
                yield (with_rm(rm, "prepared"), a_state, msgs | {
                    rec(type="phase2a", ins=rm, bal=0, val="prepared")})
            if rm_of[rm] == "working":  # RMChooseToAbort(rm)
                yield (with_rm(rm, "aborted"), a_state, msgs | {
                    rec(type="phase2a", ins=rm, bal=0, val="aborted")})
            if rec(type="Commit") in msgs:  # RMRcvCommitMsg(rm)
                yield (with_rm(rm, "committed"), a_state, msgs)
            if rec(type="Abort") in msgs:  # RMRcvAbortMsg(rm)
                yield (with_rm(rm, "aborted"), a_state, msgs)
        for bal in [b for b in ballots if b != 0]:
            for rm in rms:
                # Phase1a(bal, rm)
                yield (rm_state, a_state, msgs | {rec(type="phase1a", ins=rm, bal=bal)})
                # Phase2a(bal, rm)
                if any(dict(m)["type"] == "phase2a" and dict(m)["bal"] == bal
                       and dict(m)["ins"] == rm for m in msgs):
                    continue
                for ms in majorities:
                    mset = [dict(m) for m in msgs if dict(m)["type"] == "phase1b"
                            and dict(m)["ins"] == rm and dict(m)["mbal"] == bal
                            and dict(m)["acc"] in ms]
                    maxbal = max((m["bal"] for m in mset), default=-1)
                    val = "aborted" if maxbal == -1 else next(
                        m["val"] for m in mset if m["bal"] == maxbal)
                    witnesses = 1
                    for ac in ms:
                        witnesses *= len([m for m in mset if m["acc"] == ac])
                    for _ in range(witnesses):
                        yield (rm_state, a_state,
                               msgs | {rec(type="phase2a", ins=rm, bal=bal, val=val)})

        def decided(rm, v):  # the witnesses (b, MS) of Decided(rm, v)
            return [(b, ms) for b in ballots for ms in majorities
                    if all(rec(type="phase2b", ins=rm, bal=b, val=v, acc=ac) in msgs
                           for ac in ms)]
        commits = 1
        for rm in rms:
            commits *= len(decided(rm, "prepared"))
        for _ in range(commits):  # Decide, Commit disjunct
            yield (rm_state, a_state, msgs | {rec(type="Commit")})
        for rm in rms:  # Decide, Abort disjunct
            for _ in decided(rm, "aborted"):
                yield (rm_state, a_state, msgs | {rec(type="Abort")})
        for ac in accs:
            for m in map(dict, msgs):
                if m["type"] == "phase1a":  # Phase1b(acc)
                    mbal, bal, val = a_of[(m["ins"], ac)]
                    if mbal < m["bal"]:
                        yield (rm_state, with_a(m["ins"], ac, (m["bal"], bal, val)), msgs | {
                            rec(type="phase1b", ins=m["ins"], mbal=m["bal"], bal=bal,
                                val=val, acc=ac)})
                if m["type"] == "phase2a" and a_of[(m["ins"], ac)][0] <= m["bal"]:
                    yield (rm_state,  # Phase2b(acc)
                           with_a(m["ins"], ac, (m["bal"], m["bal"], m["val"])),
                           msgs | {rec(type="phase2b", ins=m["ins"], bal=m["bal"],
                                       val=m["val"], acc=ac)})
    return successors


def brute_force(rm_count, acc_count, ballots):
    """(distinct states, states generated, depth) by plain breadth-first search."""
    rms = [f"r{i}" for i in range(1, rm_count + 1)]
    accs = [f"a{i}" for i in range(1, acc_count + 1)]
    init = (tuple((r, "working") for r in rms),
            tuple(sorted(((r, a), (0, -1, "none")) for r in rms for a in accs)),
            frozenset())
    step = pc_next(rms, accs, ballots)
    seen, level, generated, depth = {init}, [init], 1, 1
    while level:
        following = []
        for s in level:
            for t in step(s):
                generated += 1
                if t not in seen:
                    seen.add(t)
                    following.append(t)
        depth += bool(following)
        level = following
    return len(seen), generated, depth


@pytest.mark.parametrize(("rms", "acceptors", "ballots"), [
    (1, 1, (0, 1)), (1, 3, (0, 1)), (2, 1, (0, 1)), (1, 1, (0, 1, 2))])
def test_counts_match_an_independent_transcription_of_the_spec(rms, acceptors, ballots):
    result, model = check_paxos(rms, acceptors, ballots)
    assert result.complete and result.violations == () and model.bad_steps == []
    assert (result.states, result.transitions + result.initial_states, result.depth + 1) == (
        brute_force(rms, acceptors, ballots))


def test_states_encode_and_decode_both_ways():
    model = PaxosCommitSpec()
    s = PCState(("prepared", "aborted"),
                (((1, 0, "prepared"), (0, -1, "none"), (1, 1, "aborted")),
                 ((0, 0, "aborted"), (1, -1, "none"), (0, -1, "none"))),
                frozenset({("phase1a", 0, 1), ("phase2b", 2, 0, 1, "aborted"), ("Abort",)}))
    assert model.decode(model.encode(s)) == s
    [init] = model.initial()
    assert model.decode(init).msgs == frozenset() and init == model.encode(model.decode(init))


def test_a_leader_that_ignores_phase_1_breaks_consistency_and_refinement():
    class Reckless(PaxosCommitSpec):
        """Phase2a proposes "aborted" whatever the acceptors reported."""

        def leader_actions(self, s):
            return [(a, t._replace(msgs=frozenset(
                        m if m[0] != "phase2a" or m[2] == 0 else (*m[:3], "aborted")
                        for m in t.msgs)))
                    for a, t in super().leader_actions(s)]

    from txlib.explorer.search import search
    two = search(Reckless(2, 1, (0, 1)), stop_on_violation=False, blocking=False,
                 progress=False)
    bad = two.violation("TCConsistent")
    assert bad is not None and "committed" in bad.reason
    assert any(label.startswith("Phase2a(1, ") for label in bad.labels)
    one = Reckless(1, 3, (0, 1), refinement=True)
    search(one, blocking=False, progress=False)
    assert "RMRcvAbortMsg(r1): ('committed',) -> ('aborted',)" in one.bad_steps


@pytest.mark.slow
def test_tlc_counts_of_paxoscommit_cfg_and_its_refinement_of_tcommit():
    """PaxosCommit.cfg: TLC reports 1,321,761 distinct states, 16,959,159 generated,
    depth 28 (tlaplus/Examples manifest.json). About 20 s of CPU."""
    start = time.process_time()
    result, model = check_paxos(2, 3, (0, 1))
    tlc = TLC_PAXOS_COUNTS[(2, 3, (0, 1))]
    assert result.complete and result.violations == ()
    assert result.states == tlc["distinct"]
    assert result.transitions + result.initial_states == tlc["generated"]
    assert result.depth + 1 == tlc["depth"]
    assert model.bad_steps == [], "PCSpec => TC!TCSpec"
    print(f"PaxosCommit.cfg explored in {time.process_time() - start:.1f} s of CPU")
