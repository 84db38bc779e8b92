"""The exhaustive explorer: every interleaving of a protocol's events, and the faults.

``txlib.explore("3pc", participants=2, partitions=True)`` starts from the protocol's
initial world and tries, in every reachable state, every enabled event: each message in
flight may be delivered next (in any order), each pending timer may fire (see below),
and each allowed fault may happen. States are deduplicated by the world's canonical
fingerprint and visited breadth first (:mod:`txlib.explorer.search`), so the first
counterexample found is a shortest one. The same :meth:`World.execute` step function
that the timed scheduler and the lab use moves every state: one world, one step
function.

What the explorer checks
    In every state the safety invariants of :mod:`txlib.properties.commit` (atomicity,
    stability, validity, exactly as the trace checks define them, kept in a small ghost
    of votes and decision changes), plus any custom ``invariants`` (functions of the
    world returning a reason or None). When the search is complete it also reports
    *blocking* states, separately: some participant is up and undecided and no
    continuation made of ordinary events (deliveries and timeouts: no fault, no
    restart) lets it decide. Each finding carries a shortest path; ``finding.run``
    replays it with recording on and returns an ordinary :class:`txlib.Run` (its trace
    opens in the console, the diagrams and the lab; for a blocking finding the replay
    goes on with ordinary events in time order, so the run shows the participant asking
    in vain). The Run's scenario holds the path's faults as fault records; if the
    timed scheduler shows the same finding with them (trying the scenario's seed and
    the next 49, i.e. other latencies), the scenario is the first seed that does and
    ``finding.reproduced`` is True.

Events and faults
    - *start* is the first step (every node's ``on_start``), as in a timed run;
    - *deliver m*: any message in flight (identical copies count as one choice; with
      ``reorder=False`` only the oldest message of each channel);
    - *timeout*: a pending timer fires (when, see below);
    - *crash X* (``max_crashes``): node X stops between two steps, losing volatile
      state, timers and unforced log records, as a crash fault does in a timed run;
      and *X crashes in the middle of a step*: right after its k-th send or log write of
      that step, for every k short of its last one (so "the coordinator crashes after
      sending COMMIT to p1 only" is covered); a crash before the step or after its last
      action is the plain crash between steps;
    - *recover X* (``recoveries=True``): a crashed node restarts from its log;
    - *drop m* (``max_drops``): the network loses a message in flight;
    - *partition* (``partitions=True``): once, the nodes split into two groups (any
      split), and later, possibly, the partition heals.
    The fault budget used is part of the state. The explorer draws nothing at random:
    network probabilities (``loss``, ``duplicate``) are refused; use ``max_drops``.

Timeouts: the semantics chosen, and why
    A timed run fires a timer at its due time. The explorer ignores time, so it must say
    when a timer may fire. With ``timeouts="synchronous"`` (the default) **a pending
    timer may fire only when no message is in flight anywhere** (the network is
    silent). This is the synchronous model every textbook 3PC assumes (bounded delays,
    timeouts longer than any exchange in progress), reduced to its logic: a timeout
    means "nobody is going to tell me anything", which is true exactly when the node it
    waits for has crashed, or a message was lost, or a partition cut it off. Any order
    among the timers that are due is explored. Under these semantics a timeout is a
    *reliable* failure detector as long as the only faults are crashes: with crashes
    only (no restarts), txlib's 3PC is safe and never blocks. A partition (or a lost
    message) makes silence lie, since a node cut off looks exactly like a dead one, and
    that is why 3PC breaks under a partition. So ``partitions=True`` keeps this rule: the
    partition itself is what makes the failure detector unreliable, and the
    counterexample shows a partition, not a premature timeout. A weaker rule, "a timer
    fires when no message *to its own node* is in flight", is not the synchronous
    model: a READY 3PC participant whose YES is still on its way to the coordinator
    would time out, terminate with its peers and abort while the coordinator goes on to
    commit, with no fault at all.

    With ``timeouts="asynchronous"`` any pending timer may fire at any moment: an
    asynchronous system, where a timeout cannot tell a slow node from a dead one. 3PC
    is then unsafe without a single fault; 2PC stays safe, since a timeout only ever
    makes it abort before a commit was possible, or ask again. Timers that fire at any
    moment can re-send faster than messages arrive, so the state space of a protocol
    that retries is infinite: unless a budget is given, the search stops at depth
    ``ASYNC_DEPTH`` (20) and says it is incomplete.

The state
    A state is the world's :meth:`~txlib.engine.world.World.fingerprint` (nodes' up
    flags, states, logs, volatile variables, timer names, locks, decisions, the
    multiset of messages in flight, the partition) plus the fault budget used and the
    ghost (first votes, and whether a commit was decided before every vote was YES).
    Time, message ids and counters are not part of it.

See :mod:`txlib.explorer.grid` for fault placement under the *timed* scheduler (the
grid, and ``worse``: can it get worse?).
"""

from __future__ import annotations

import dataclasses
import hashlib
import heapq
import marshal
from collections.abc import Callable, Hashable, Iterable, Sequence
from dataclasses import replace
from typing import Any

from ..engine.faults import (
    Fault,
    crash,
    drop,
    heal,
    partition,
    recover,
)
from ..engine.node import Context, NodeSlot
from ..engine.records import Message
from ..engine.world import DELIVER, FAULT, TIMER, World
from ..engine.world import _canonical as canonical
from ..errors import TxlibError, bad_choice
from ..protocols import PROTOCOLS, CommitConfig, Protocol, get_protocol
from ..simulation.run import Run
from ..simulation.scenario import Scenario, participant_names
from .search import Exploration, Finding, Model, Progress, search

INVARIANTS: tuple[str, ...] = ("atomicity", "stability", "validity")
TIMEOUTS: tuple[str, ...] = ("synchronous", "asynchronous")
ASYNC_DEPTH = 20  # the default depth bound of an asynchronous search (see explore)
REPRODUCE_SEEDS = 50  # seeds a counterexample's fault plan is tried with (see counterexample)
FAULT_ACTIONS = frozenset({"crash", "crash-in", "drop", "partition", "heal", "recover"})
_PAST = {"commit": "committed", "abort": "aborted"}

Invariant = Callable[[World], "str | None"]


class _Fixed:
    """The random generator of an explored world: the explorer makes every choice
    itself, so a world draws nothing (always 0.0: the minimum latency, no loss)."""

    def random(self) -> float:
        return 0.0

    def getstate(self) -> None:
        return None

    def setstate(self, state: object) -> None:
        return None


class ExploredWorld(World):
    """A world as the explorer keeps it: no trace, and a ghost for the invariants.

    ``votes`` is each participant's first vote, ``invalid`` says why a commit was
    decided before every participant voted YES (validity), ``used`` counts the faults
    spent: (crashes, drops, partitions, heals, restarts). All three are replaced, never
    changed in place, so :meth:`World.clone` may share them.
    """

    participants: tuple[str, ...]
    votes: dict[str, str]
    invalid: str | None
    used: tuple[int, int, int, int, int]

    def record(self, kind: str, node: str | None, msg: Message | None, detail: str = "") -> None:
        """Keep the ghost instead of a trace."""
        if kind == "vote" and node is not None and node not in self.votes:
            self.votes = {**self.votes, node: detail}
        elif kind == "decision" and detail == "commit" and self.invalid is None:
            votes = self.votes
            for p in self.participants:
                if votes.get(p) != "yes":
                    why = "voted NO" if votes.get(p) == "no" else "had not voted YES"
                    self.invalid = f"{node} committed but {p} {why}"
                    break
        if self.trace is not None:
            super().record(kind, node, msg, detail)


class _Watch(Context):
    """A node's context that notes its sends and log writes during one step, and can
    crash the node right after the ``crash_after``-th of them."""

    __slots__ = ("crash_after", "did")

    def __init__(self, world: World, slot: NodeSlot, crash_after: int = 0) -> None:
        super().__init__(world, slot)
        self.crash_after = crash_after
        self.did: list[str] = []  # trigger texts: "p1 sends YES to coordinator", ...

    def _done(self, what: str) -> None:
        self.did.append(what)
        if len(self.did) == self.crash_after:
            self._host._crash(-1, self.name)  # type: ignore[attr-defined]  # raises: the rest of the handler never runs

    def send(self, dst: str, type: str, **payload: Any) -> None:
        super().send(dst, type, **payload)
        self._done(f"{self.name} sends {type} to {dst}")

    def broadcast(self, dsts: Iterable[str], type: str, **payload: Any) -> None:
        for dst in dsts:
            self.send(dst, type, **payload)

    def log(self, record: str, *, forced: bool, decides: str | None = None, **data: Any) -> None:
        super().log(record, forced=forced, decides=decides, **data)
        self._done(f"{self.name} logs {record}")


def message_key(m: Message) -> tuple[Any, ...]:
    """A message without its id, times, depth or copy mark: what the explorer tells apart."""
    return (m.src, m.dst, m.type, canonical(m.payload))


def _bipartitions(nodes: Sequence[str]) -> list[tuple[tuple[str, ...], tuple[str, ...]]]:
    """Every split of ``nodes`` into two non-empty groups, the first holding nodes[0]."""
    first, rest = nodes[0], list(nodes[1:])
    out = []
    for mask in range(2 ** len(rest)):
        a = (first, *(n for i, n in enumerate(rest) if not mask >> i & 1))
        b = tuple(n for i, n in enumerate(rest) if mask >> i & 1)
        if b:
            out.append((a, b))
    return out


def _ordinal(n: int) -> str:
    return {1: "1st", 2: "2nd", 3: "3rd"}.get(n, f"{n}th")


class WorldModel(Model[ExploredWorld]):
    """A protocol's worlds as a model for :func:`txlib.explorer.search.search`."""

    def __init__(
        self,
        protocol: Protocol,
        scenario: Scenario,
        config: Any,
        *,
        max_crashes: int,
        max_drops: int,
        partitions: bool,
        recoveries: bool,
        timeouts: str,
        invariants: Sequence[str | Invariant],
    ) -> None:
        self.protocol = protocol
        self.scenario = scenario
        self.config = config
        # Blocking is about commit decisions: only commit protocols take them.
        commit = isinstance(config, CommitConfig)
        self.participants = scenario.participants if commit else ()
        self.max_crashes = max_crashes
        self.max_drops = max_drops
        self.max_partitions = 1 if partitions else 0
        self.recoveries = recoveries
        self.synchronous = timeouts == "synchronous"
        self.builtin = tuple(i for i in invariants if isinstance(i, str))
        self.custom = tuple((getattr(i, "__name__", "invariant"), i)
                            for i in invariants if not isinstance(i, str))
        self.name = f"{protocol.name} with {len(scenario.participants)} participants"
        nodes = protocol.build(scenario.roster, config)
        self.nodes = tuple(n for n, _ in nodes)
        self.splits = _bipartitions(self.nodes) if partitions else []
        self._index = {p: i for i, p in enumerate(self.participants)}

    # --- worlds -------------------------------------------------------------------
    def fresh(self, record: bool) -> World:
        """The initial world (before the start step); ``record`` gives a plain world
        with a trace, for replays."""
        nodes = self.protocol.build(self.scenario.roster, self.config)
        cls = World if record else ExploredWorld
        world = cls(nodes, self.config, self.scenario.seed, self.scenario.faults, record=record)
        world.rng = _Fixed()  # type: ignore[assignment]
        if isinstance(world, ExploredWorld):
            world.participants = self.participants
            world.votes = {}
            world.invalid = None
            world.used = (0, 0, 0, 0, 0)
        return world

    def initial(self) -> Iterable[ExploredWorld]:
        world = self.fresh(record=False)
        assert isinstance(world, ExploredWorld)
        return [world]

    # --- enabled actions ----------------------------------------------------------
    def events(self, w: World) -> list[tuple[Hashable, Any]]:
        """The ordinary events enabled in ``w``: (action, queue entry or None)."""
        if not w._started:
            return [(("start",), None)]
        out: list[tuple[Hashable, Any]] = []
        seen: set[Hashable] = set()
        in_flight = False
        fifo = not self.config.reorder
        oldest: dict[tuple[str, str], int] = {}
        if fifo:
            for entry in w.queue:
                if entry[2] == DELIVER:
                    m = entry[3]
                    ch = (m.src, m.dst)
                    if ch not in oldest or m.id < oldest[ch]:
                        oldest[ch] = m.id
        for entry in w.queue:
            kind = entry[2]
            if kind == DELIVER:
                in_flight = True
                m = entry[3]
                if fifo and oldest[(m.src, m.dst)] != m.id:
                    continue
                action = ("deliver", message_key(m))
                if action not in seen:
                    seen.add(action)
                    out.append((action, entry))
            elif kind == FAULT:
                action = ("fault", entry[3])
                if action not in seen:
                    seen.add(action)
                    out.append((action, entry))
        if in_flight and self.synchronous:
            return out
        for entry in w.queue:
            if entry[2] == TIMER:
                slot = w.nodes[entry[3]]
                timer = slot.timers.get(entry[4])
                if slot.up and timer is not None and timer[0] == entry[5]:
                    out.append((("timeout", entry[3], entry[4]), entry))
        return out

    def successors(self, w: ExploredWorld) -> list[tuple[Hashable, ExploredWorld]]:
        out: list[tuple[Hashable, ExploredWorld]] = []
        crashes, drops, parts, heals, restarts = w.used
        can_crash = crashes < self.max_crashes
        for action, entry in self.events(w):
            c = w.clone()
            watches = self._watch(c, action) if can_crash else {}
            self._event(c, action, entry)
            for node in watches:
                c.nodes[node].ctx = Context(c, c.nodes[node])
            out.append((action, c))
            for node, watch in watches.items():
                for k in range(1, len(watch.did)):
                    c2 = w.clone()
                    c2.nodes[node].ctx = _Watch(c2, c2.nodes[node], crash_after=k)
                    self._event(c2, action, entry)
                    c2.nodes[node].ctx = Context(c2, c2.nodes[node])
                    c2.used = (crashes + 1, drops, parts, heals, restarts)
                    out.append((("crash-in", action, node, k, watch.did[k - 1]), c2))
        if can_crash:
            for name, slot in w.nodes.items():
                if slot.up:
                    c = w.clone()
                    self.apply(c, ("crash", name))
                    out.append((("crash", name), c))
        if self.recoveries and restarts < crashes:
            for name, slot in w.nodes.items():
                if not slot.up:
                    c = w.clone()
                    self.apply(c, ("recover", name))
                    out.append((("recover", name), c))
        if drops < self.max_drops:
            seen: set[Hashable] = set()
            for entry in w.queue:
                if entry[2] == DELIVER:
                    action = ("drop", message_key(entry[3]))
                    if action not in seen:
                        seen.add(action)
                        c = w.clone()
                        self.apply(c, action)
                        out.append((action, c))
        if parts < self.max_partitions and w.partition is None:
            for split in self.splits:
                c = w.clone()
                self.apply(c, ("partition", split))
                out.append((("partition", split), c))
        if w.partition is not None and heals < parts:
            c = w.clone()
            self.apply(c, ("heal",))
            out.append((("heal",), c))
        return out

    def _watch(self, w: World, action: Hashable) -> dict[str, _Watch]:
        """Install counting contexts on the node(s) that act in ``action``."""
        kind = action[0]  # type: ignore[index]
        if kind == "start":
            names = [n for n, s in w.nodes.items() if s.up]
        elif kind == "deliver":
            dst = action[1][1]  # type: ignore[index]
            names = [dst] if w.nodes[dst].up else []
        elif kind == "timeout":
            names = [action[1]]  # type: ignore[index]
        else:
            names = []
        watches = {}
        for n in names:
            watch = _Watch(w, w.nodes[n])
            w.nodes[n].ctx = watch
            watches[n] = watch
        return watches

    def _event(self, w: World, action: Hashable, entry: Any) -> None:
        """Carry out an ordinary event (with the world's own step function)."""
        if action[0] == "start":  # type: ignore[index]
            w._apply_step_faults()
            w.start()
        else:
            w.execute(entry)
        if w.faults.by_step:
            w._apply_step_faults()

    def apply(self, w: World, action: Hashable) -> None:
        """Carry out ``action`` on ``w``, finding its queue entry by key (for replays)."""
        kind = action[0]  # type: ignore[index]
        explored = isinstance(w, ExploredWorld)
        if kind in ("start", "deliver", "timeout", "fault"):
            self._event(w, action, self._entry(w, action))
        elif kind == "crash-in":
            _, base, node, k, _what = action  # type: ignore[misc]
            slot = w.nodes[node]
            slot.ctx = _Watch(w, slot, crash_after=k)
            self._event(w, base, self._entry(w, base))
            slot.ctx = Context(w, slot)
            if explored:
                self._spend(w, 0)
        elif kind == "crash":
            w.step += 1
            w._crash(-1, action[1])  # type: ignore[index]
            if explored:
                self._spend(w, 0)
        elif kind == "recover":
            w.step += 1
            w._recover(-1, action[1])  # type: ignore[index]
            if explored:
                self._spend(w, 4)
        elif kind == "drop":
            entry = self._entry(w, action)
            w.queue.remove(entry)
            heapq.heapify(w.queue)
            w.step += 1
            m = entry[3]
            w.record("drop", m.dst, m, "lost by the network (explorer)")
            if explored:
                self._spend(w, 1)
        elif kind == "partition":
            groups = action[1]  # type: ignore[index]
            w.step += 1
            w.partition = {n: g for g, names in enumerate(groups) for n in names}
            w.record("partition", None, None,
                     "partition " + " | ".join("{" + ", ".join(g) + "}" for g in groups))
            if explored:
                self._spend(w, 2)
        elif kind == "heal":
            w.step += 1
            w.partition = None
            w.record("heal", None, None, "the network is whole again")
            if explored:
                self._spend(w, 3)
        else:
            raise TxlibError(f"unknown explorer action {action!r}")
        if kind not in ("start", "deliver", "timeout", "fault", "crash-in") and w.faults.by_step:
            w._apply_step_faults()

    @staticmethod
    def _spend(w: ExploredWorld, which: int) -> None:
        used = list(w.used)
        used[which] += 1
        w.used = tuple(used)  # type: ignore[assignment]

    def _entry(self, w: World, action: Hashable) -> Any:
        """The queue entry an event or a drop refers to (the earliest, if several)."""
        kind = action[0]  # type: ignore[index]
        if kind == "start":
            return None
        best = None
        for entry in w.queue:
            if kind in ("deliver", "drop"):
                ok = entry[2] == DELIVER and message_key(entry[3]) == action[1]  # type: ignore[index]
            elif kind == "timeout":
                slot = w.nodes[entry[3]] if entry[2] == TIMER else None
                ok = (slot is not None and entry[3] == action[1]  # type: ignore[index]
                      and entry[4] == action[2]  # type: ignore[index]
                      and slot.timers.get(entry[4], (None,))[0] == entry[5])
            else:
                ok = entry[2] == FAULT and entry[3] == action[1]  # type: ignore[index]
            if ok and (best is None or entry < best):
                best = entry
        if best is None:
            raise TxlibError(f"cannot replay {self.describe(action)}: it is not enabled")
        return best

    # --- the state ----------------------------------------------------------------
    def fingerprint(self, w: ExploredWorld) -> Hashable:
        """A 128-bit digest of the world's fingerprint, the budget used and the ghost.

        ``marshal`` format 0 writes a value the same way whatever objects hold it (no
        back-references, no interning marks), so equal states give equal digests.
        """
        ghost = (w.used, tuple(sorted(w.votes.items())), w.invalid is not None)
        return hashlib.blake2b(marshal.dumps((w.fingerprint(), ghost), 0),
                               digest_size=16).digest()

    def violations(self, w: ExploredWorld) -> list[tuple[str, str]]:
        out: list[tuple[str, str]] = []
        builtin = self.builtin
        if "atomicity" in builtin:
            reason = _disagreement(w)
            if reason:
                out.append(("atomicity", reason))
        if "stability" in builtin and w.instability:
            n, a, b, _ = w.instability[0]
            out.append(("stability", f"{n} {_PAST.get(a, a)}, then {_PAST.get(b, b)}"))
        if "validity" in builtin and w.invalid is not None:
            out.append(("validity", w.invalid))
        for name, check in self.custom:
            reason = check(w)
            if reason:
                out.append((name, str(reason)))
        return out

    def release(self, w: ExploredWorld) -> None:
        """Break the world's reference cycles (world -> slot -> context -> world)."""
        for slot in w.nodes.values():
            slot.ctx = None  # type: ignore[assignment]

    def is_fault(self, action: Hashable) -> bool:
        return action[0] in FAULT_ACTIONS  # type: ignore[index]

    def undecided(self, w: ExploredWorld) -> int:
        mask = 0
        for p, i in self._index.items():
            slot = w.nodes[p]
            if slot.up and slot.decision is None:
                mask |= 1 << i
        return mask

    def decided(self, w: ExploredWorld) -> int:
        mask = 0
        for p, i in self._index.items():
            if w.nodes[p].decision is not None:
                mask |= 1 << i
        return mask

    def describe(self, action: Hashable) -> str:
        kind = action[0]  # type: ignore[index]
        if kind == "init":
            return "initial state"
        if kind == "start":
            return "start: every node begins"
        if kind == "deliver":
            src, dst, type_, _ = action[1]  # type: ignore[index]
            return f"{dst} receives {type_} from {src}"
        if kind == "timeout":
            return f"{action[1]}: timer {action[2]!r} fires"  # type: ignore[index]
        if kind == "fault":
            return f"fault: {self.scenario.faults[action[1]].describe()}"  # type: ignore[index]
        if kind == "crash":
            return f"{action[1]} crashes"  # type: ignore[index]
        if kind == "crash-in":
            _, base, node, k, what = action  # type: ignore[misc]
            return (f"{self.describe(base)}; {node} crashes right after its "
                    f"{_ordinal(k)} action ({what.split(' ', 1)[1]})")
        if kind == "recover":
            return f"{action[1]} restarts"  # type: ignore[index]
        if kind == "drop":
            src, dst, type_, _ = action[1]  # type: ignore[index]
            return f"the network loses {type_} from {src} to {dst}"
        if kind == "partition":
            a, b = action[1]  # type: ignore[index]
            return f"the network splits: {{{', '.join(a)}}} | {{{', '.join(b)}}}"
        if kind == "heal":
            return "the partition heals"
        return str(action)

    # --- counterexamples ----------------------------------------------------------
    def replay(self, path: Sequence[Hashable], extend: bool = False) -> World:
        """The world after ``path``, recorded. ``extend`` goes on with ordinary events,
        earliest first, until none is enabled, the horizon or 300 more steps."""
        w = self.fresh(record=True)
        for action in path:
            self.apply(w, action)
        if extend:
            for _ in range(300):
                events = self.events(w)
                if not events:
                    break
                action, entry = min(events, key=lambda ae: (0, 0) if ae[1] is None
                                    else ae[1][:2])
                if entry is not None and entry[0] > self.config.horizon:
                    break
                self._event(w, action, entry)
        return w

    def fault_plan(self, path: Sequence[Hashable], world: World) -> tuple[Fault, ...]:
        """The path's faults as a fault plan (at the steps where they happened)."""
        faults: list[Fault] = []
        step = 0
        sent_at: dict[int, int] = {}
        trace = world.trace or []
        for e in trace:
            if e.kind == "send" and e.message is not None:
                sent_at.setdefault(e.message.id, e.step)
        w = self.fresh(record=False)
        for action in path:
            kind = action[0]  # type: ignore[index]
            if kind == "crash":
                faults.append(crash(action[1], at_step=step))  # type: ignore[index]
            elif kind == "crash-in":
                faults.append(crash(action[2], when=action[4]))  # type: ignore[index]
            elif kind == "recover":
                faults.append(recover(action[1], at_step=step))  # type: ignore[index]
            elif kind == "partition":
                faults.append(partition(*action[1], at_step=step))  # type: ignore[index]
            elif kind == "heal":
                faults.append(heal(at_step=step))
            elif kind == "drop":
                m = self._entry(w, action)[3]
                faults.append(drop(m.type, src=m.src, dst=m.dst,
                                   at_step=max(sent_at.get(m.id, 1) - 1, 0)))
            self.apply(w, action)
            step = w.step
        return tuple(faults)

    def counterexample(self, finding: Finding) -> Run:
        """Replay ``finding``'s path with recording on, as an ordinary Run.

        Its scenario carries the path's faults at the steps where they happened. If the
        timed scheduler shows the same finding with that plan (trying the scenario's
        seed and the next ones, i.e. other message latencies), the Run's scenario is
        the first that does, so running it again (as the lab does) shows it too; see
        ``finding.reproduced``.
        """
        world = self.replay(finding.path, extend=finding.kind == "blocking")
        plain = self.replay(finding.path)
        faults = self.fault_plan(finding.path, plain)
        base = replace(self.scenario, faults=(*self.scenario.faults, *faults),
                       name=self.scenario.name or f"{self.protocol.name}-explored")
        found = self.reproduction(finding, base)
        if found is None:
            note = (f" The timed scheduler does not show it with seeds {base.seed} to "
                    f"{base.seed + REPRODUCE_SEEDS - 1}: only this replay does."
                    if self._judged(finding) else "")
        else:
            note = f" The timed scheduler shows it too, with seed {found.seed}."
        scenario = replace(found or base, description=f"Found by the explorer: {finding}."
                           + note)
        steps = f"{finding.depth} step" + ("" if finding.depth == 1 else "s")
        more = ", then ordinary events in time order" if finding.kind == "blocking" else ""
        return run_of(self.protocol, scenario, world,
                      stopped_by=f"explorer counterexample: {steps}{more}")

    def _judged(self, finding: Finding) -> bool:
        """Can a timed run tell whether it shows ``finding``? Not for a protocol variant
        (its scenario runs the registered protocol) nor for a custom invariant."""
        if type(self.protocol) is not type(get_protocol(self.protocol.name)):
            return False
        return finding.kind == "blocking" or finding.invariant in INVARIANTS

    def _shows(self, scenario: Scenario, finding: Finding) -> bool:
        run = scenario.run()
        if finding.kind == "blocking":
            return run.outcome == "blocked"
        return finding.invariant in {v.invariant for v in run.violations}

    def reproduction(self, finding: Finding, base: Scenario) -> Scenario | None:
        """The first of ``base`` with its seed and the next ones whose timed run shows
        ``finding``, or None."""
        if not self._judged(finding):
            return None
        for k in range(REPRODUCE_SEEDS):
            candidate = replace(base, seed=base.seed + k)
            if self._shows(candidate, finding):
                return candidate
        return None

    def reproduces(self, finding: Finding) -> bool | None:
        """Does the counterexample's scenario, run by the timed scheduler, show the same
        violation (or block)? None when a timed run cannot tell (see ``_judged``)."""
        if not self._judged(finding):
            return None
        return self._shows(finding.run.scenario, finding)


def run_of(protocol: Protocol, scenario: Scenario, world: World, stopped_by: str) -> Run:
    """A :class:`Run` of a recorded world, as :meth:`Scenario.run` builds one."""
    return dataclasses.replace(Run.of_world(scenario, world),
                               stopped_by=stopped_by)


def _disagreement(w: World) -> str | None:
    """Why atomicity is broken (two nodes decided differently, ever), or None."""
    ever: dict[str, list[str]] = {}
    for name, slot in w.nodes.items():
        if slot.decision is not None:
            ever.setdefault(name, []).append(slot.decision)
    for n, a, b, _ in w.instability:
        ever.setdefault(n, []).extend((a, b))
    for a, values in ever.items():
        if "commit" in values:
            for b, others in ever.items():
                if b != a and "abort" in others:
                    return f"{a} committed while {b} aborted"
    return None


def _protocol_of(target: str | Protocol | Scenario) -> tuple[Protocol, Scenario | None]:
    if isinstance(target, Scenario):
        return get_protocol(target.protocol), target
    if isinstance(target, Protocol):
        if PROTOCOLS.get(target.name) is None:
            raise TxlibError(f"protocol {target.name!r} is not registered; give a Protocol "
                             f"whose name is one of {sorted(PROTOCOLS)}")
        return target, None
    return get_protocol(target), None


def explore(
    protocol: str | Protocol | Scenario = "2pc",
    *,
    participants: int | Sequence[str] | None = None,
    max_crashes: int = 1,
    max_drops: int = 0,
    partitions: bool = False,
    recoveries: bool = False,
    timeouts: str = "synchronous",
    max_depth: int | None = None,
    invariants: Sequence[str | Invariant] = INVARIANTS,
    blocking: bool = True,
    max_states: int | None = None,
    max_seconds: float | None = None,
    stop_on_violation: bool = True,
    progress: bool | Progress | None = None,
    **options: Any,
) -> Exploration:
    """Explore every interleaving of ``protocol``'s events and the allowed faults.

    ``protocol`` is a name (``"2pc"``, ``"3pc"``), a :class:`Protocol` (e.g. a variant
    with changed roles, whose ``name`` is registered) or a :class:`Scenario` (its
    participants, options and fault plan are used; ``at_time`` faults are refused).
    ``participants`` defaults to 2 for a commit protocol (keep it small: the state
    space grows fast) and to a saga's own services.
    ``max_crashes``, ``max_drops``, ``partitions`` and ``recoveries`` set the fault
    budget; ``timeouts`` is ``"synchronous"`` or ``"asynchronous"`` (see the module
    docstring). ``invariants`` are names from :data:`INVARIANTS` or functions of the
    world returning a reason (or None). ``max_states``, ``max_seconds`` and
    ``max_depth`` bound the search, which then says it is incomplete. ``progress``:
    None shows a progress bar in a terminal or a notebook if the search lasts, True
    always, False never. Other keyword arguments are protocol options, as for
    :func:`txlib.simulate`.

    Returns an :class:`~txlib.explorer.search.Exploration`: distinct states, transitions,
    depth, time, whether it was complete, each invariant's shortest violation, and the
    blocking states with a shortest path to one. The built-in invariants and blocking
    are about commit decisions: for a saga, give your own ``invariants``.
    """
    proto, base = _protocol_of(protocol)
    for name, value in (("max_crashes", max_crashes), ("max_drops", max_drops)):
        if not isinstance(value, int) or isinstance(value, bool) or value < 0:
            raise TxlibError(f"{name} must be a whole number of 0 or more, got {value!r}")
    for name, flag in (("partitions", partitions), ("recoveries", recoveries),
                       ("blocking", blocking), ("stop_on_violation", stop_on_violation)):
        if not isinstance(flag, bool):
            raise TxlibError(f"{name} must be True or False, got {flag!r}")
    if timeouts not in TIMEOUTS:
        raise bad_choice("timeouts", timeouts, TIMEOUTS)
    if isinstance(invariants, str) or not isinstance(invariants, Sequence):
        raise TxlibError(f"invariants must be a list of names or functions, got {invariants!r}")
    for inv in invariants:
        if isinstance(inv, str) and inv not in INVARIANTS:
            raise bad_choice("invariant", inv, INVARIANTS)
        if not isinstance(inv, str) and not callable(inv):
            raise TxlibError(f"an invariant is a name or a function of the world, got {inv!r}")
    if base is not None:
        if participants is not None or options:
            raise TxlibError("give participants and options in the scenario, not to explore")
        scenario = base
        for f in scenario.faults:
            if f.at_time is not None:
                raise TxlibError(f"fault '{f.describe()}' happens at a time, but the explorer "
                                 "ignores time; use at_step or when")
    else:
        if participants is None:  # two for a commit protocol; a saga's own services
            names = (participant_names(2) if issubclass(proto.config_class, CommitConfig)
                     else ())
        else:
            names = participant_names(participants)
        scenario = Scenario(proto.name, names, options=dict(options))
    config = proto.make_config(scenario.participants, scenario.options)
    if getattr(config, "loss", 0) or getattr(config, "duplicate", 0):
        raise TxlibError("the explorer makes every choice itself: set loss and duplicate to 0 "
                         "and use max_drops for lost messages")
    model = WorldModel(proto, scenario, config, max_crashes=max_crashes, max_drops=max_drops,
                       partitions=partitions, recoveries=recoveries, timeouts=timeouts,
                       invariants=tuple(invariants))
    if timeouts == "asynchronous" and max_depth is None and max_states is None and (
            max_seconds is None):
        # Timers that fire at any moment can re-send faster than messages arrive: the
        # state space of a protocol that retries is infinite, so bound the search.
        max_depth = ASYNC_DEPTH
    settings: dict[str, Any] = {"crashes": max_crashes}
    if max_drops:
        settings["drops"] = max_drops
    if partitions:
        settings["partitions"] = True
    if recoveries:
        settings["recoveries"] = True
    settings["timeouts"] = timeouts
    return search(model, max_states=max_states, max_seconds=max_seconds, max_depth=max_depth,
                  stop_on_violation=stop_on_violation, blocking=blocking, progress=progress,
                  settings=settings)
