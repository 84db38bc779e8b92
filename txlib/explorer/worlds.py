"""The exhaustive explorer: every interleaving of a protocol's events, and the faults.

``txlib.explore("3pc", participants=2, partitions=True)`` starts from the protocol's
initial world and tries, in every reachable state, every enabled event: each message in
flight may be delivered next (in any order), each pending timer may fire (see below),
and each allowed fault may happen. States are deduplicated by the world's canonical
fingerprint and visited breadth first (:mod:`txlib.explorer.search`), so the first
counterexample found is a shortest one. The world's own public steps move every state
(:meth:`World.start`, :meth:`World.execute`, :meth:`World.apply_fault`,
:meth:`World.lose`), the same the timed scheduler takes: one world, one step function.
The actions are typed (:mod:`txlib.explorer.actions`).

What the explorer checks
    In every state the explored protocol's own invariants (:mod:`txlib.explorer.judging`):
    for a commit protocol atomicity, stability and validity as
    :mod:`txlib.properties.commit` defines them (kept in a small ghost of votes and
    decision changes); for any other protocol every invariant it checks on a run (a
    saga's semantic atomicity and domain rules, TCC's conservation and the rest), on
    the state's history. Plus any custom ``invariants`` (functions of the world
    returning a reason or None). When the search is complete and the protocol has nodes
    that must decide (its roster's deciders), it also reports *blocking* states,
    separately: some decider is up and undecided and no continuation made of ordinary
    events (deliveries and timeouts: no fault, no restart) lets it decide. Each finding
    carries a shortest path; ``finding.run``
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
      state, timers and unforced log records, as a crash fault does in a timed run.
      ``max_crashes`` is a number of crashes of any nodes, or a mapping from roles to
      how many nodes of that role may be down at once (``{"coordinator": 1,
      "acceptor": 1}``: the leader and one acceptor of three, "at most F acceptors
      down"; a role not named never crashes);
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

Blocking is liveness
    Within the explored graph (finite when the search is complete), "no blocking
    state" says: from every reachable state, every live participant can still decide
    by ordinary events alone (no further fault, no restart: a crashed leader never
    returns). In a finite graph that is the liveness property "every continuation
    without further faults leads every live participant to decide", for every
    continuation that does not starve an event forever (strong fairness: an event
    enabled again and again is eventually taken). The analysis is the same for every
    protocol whose roster has deciders; it finds 2PC's blocking when the coordinator
    crashes, and none for Paxos Commit with the coordinator and one acceptor of three
    down (one participant), nor with any one crash (two participants)
    (``benchmarks/explore_paxos_commit.py`` gives the budgets and figures).

Infinite state spaces
    A protocol whose leaders retry with ever higher ballots (Paxos Commit) has
    infinitely many states once a crash or a partition makes a leader take over. The
    explorer does not cut such runs silently; the protocol bounds them itself with an
    ordinary option (Paxos Commit's ``max_ballots``: how many ballots above 0 each node
    may start). The protocol names the bounds to explore with
    (:attr:`~txlib.protocols.base.Protocol.explore_options`); :func:`explore` uses them
    unless given other values, and the result's settings show them, since what is
    proved is proved for the bounded protocol.

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
    Time, message ids and counters are not part of it. Faults timed ``at_time`` are
    refused: the explorer ignores time.

How states are kept (issue 16)
    A state waiting to be expanded is kept as where it came from: its parent's
    snapshot (:func:`txlib.engine.snapshot.freeze`, shared by its siblings, whose node
    slots are shared copy-on-write with every other snapshot), the action and the queue
    entry it took. Expanding it thaws the parent and takes that same step again, which
    gives the very world the search found (so the states, their order and every path
    are what they would be if the worlds themselves were kept). Each successor is a
    world thawed from the parent's snapshot, so a step copies only the node slots it
    changes; the fingerprint looks again only at those nodes (each node's part is
    interned and remembered in its slot).

    Node transitions are remembered too: when a message is delivered to a node, or
    one of its timers fires, the node's part after the step is a function of its part
    before and the message (or the timer's name), as the fingerprint already assumes
    (it leaves out time and message ids, so a handler's effect may not depend on
    them). So the explorer numbers each (node part, message) pair it has seen and
    gives the node its part's number without looking at it again. Not with a fault
    plan (a handler may ask it about faults). ``tests/test_explore.py`` checks, for
    every protocol, that the remembered number is the one the node's part has.

See :mod:`txlib.explorer.grid` for fault placement under the *timed* scheduler (the
grid, and ``worse``: can it get worse?).
"""

from __future__ import annotations

import marshal
import weakref
from collections.abc import Callable, Hashable, Mapping, Sequence
from dataclasses import replace
from hashlib import blake2b
from typing import Any

from ..engine.node import NodeSlot
from ..engine.records import Message
from ..engine.roster import Roster
from ..engine.scheduler import FaultDue, MessageEntry, PendingEvent, TimerDue
from ..engine.snapshot import Frozen, freeze, node_part, pending_part, progress_part, thaw
from ..engine.world import World
from ..errors import TxlibError, bad_choice
from ..protocols import PROTOCOLS, CommitProtocol, Protocol, get_protocol
from ..simulation.run import Run
from ..simulation.scenario import Scenario, participant_names
from . import counterexamples
from .actions import (
    ACTIONS,
    FAULT_TYPES,
    Action,
    Crash,
    CrashDuring,
    Deliver,
    Drop,
    Event,
    FaultAction,
    Heal,
    MessageKey,
    Partition,
    Recover,
    Spent,
    Start,
    Timeout,
    message_key,
)
from .judging import ExploredWorld, Fixed, StateInvariants, invariants_of
from .search import Exploration, Finding, Model, SearchProgress, search

TIMEOUTS: tuple[str, ...] = ("synchronous", "asynchronous")
ASYNC_DEPTH = 20  # the default depth bound of an asynchronous search (see explore)
START = Start()
_SPENT_INDEX = {name: i for i, name in enumerate(Spent._fields)}
_new_spent = tuple.__new__  # a NamedTuple without its (slower) constructor
_ENTRIES_KEPT = 1024  # how many queue entries' message numbers the model remembers
HEAL = Heal()

Invariant = Callable[[World], "str | None"]


class Origin:
    """Where a state came from: its parent's snapshot, the action and the queue entry
    it took (what the search keeps of a state while it waits)."""

    __slots__ = ("action", "entry", "parent")

    def __init__(self, parent: Frozen, action: Action, entry: PendingEvent | None) -> None:
        self.parent = parent
        self.action = action
        self.entry = entry


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


class WorldModel(Model[ExploredWorld]):
    """A protocol's worlds as a model for :func:`txlib.explorer.search.search`.

    Fingerprints are 128-bit digests (:meth:`fingerprint`), kept in a compact table.

    ``invariants`` lists the checks: names of a commit protocol's invariants (None: all
    of them; any other protocol is always checked against all of its own) and
    functions of the world returning a reason or None.
    """

    digests = True
    check_local = False  # tests: compute every node's number and compare it with the memo

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
        invariants: Sequence[str | Invariant] | None = None,
        max_down: Mapping[str, int] | None = None,
    ) -> None:
        for f in scenario.faults:
            if f.at_time is not None:
                raise TxlibError(f"fault '{f.describe()}' happens at a time, but the explorer "
                                 "ignores time; use at_step or when")
        self.protocol = protocol
        self.scenario = scenario
        self.config = config
        self.roster = scenario.roster
        self.participants = self.roster.deciders  # whose decisions blocking is about
        self.max_crashes = max_crashes
        # role -> most nodes of that role down at once (None: any node may crash)
        self.max_down = None if max_down is None else dict(max_down)
        self._role = self.roster.roles
        self.max_drops = max_drops
        self.max_partitions = 1 if partitions else 0
        self.recoveries = recoveries
        self.synchronous = timeouts == "synchronous"
        names = None if invariants is None else [i for i in invariants if isinstance(i, str)]
        self.custom = tuple((getattr(i, "__name__", "invariant"), i)
                            for i in invariants or () if not isinstance(i, str))
        self.name = f"{protocol.name} with {len(scenario.participants)} participants"
        self.nodes = self.roster.names
        self.splits = _bipartitions(self.nodes) if partitions else []
        self._index = {p: i for i, p in enumerate(self.participants)}
        self._parts: dict[bytes, int] = {}  # node parts of fingerprints, interned
        # node transitions: (node's number, message number or timer name) -> its number after
        self._local: dict[tuple[int, Any], int] = {}
        # messages in flight, interned: key -> number; and, for the queue entries met
        # lately, id(entry) -> (entry, key, number) (holding the entry keeps its id its own)
        self._message_ids: dict[bytes, int] = {}
        self._entries: dict[int, tuple[PendingEvent, MessageKey, int]] = {}
        # where each world successors() made came from, while the world lives
        self._origins: weakref.WeakKeyDictionary[World, tuple[Any, ...]] = (
            weakref.WeakKeyDictionary())
        self.builtin: StateInvariants = invariants_of(protocol, self.roster, config, names,
                                                      self._explored())

    # --- worlds -------------------------------------------------------------------
    def fresh(self, record: bool) -> World:
        """The initial world (before the start step); ``record`` gives a plain world
        with a trace (and no budget), for replays."""
        if not record:
            return self._explored()
        world = World(self.protocol.build(self.roster, self.config), self.config,
                      self.scenario.seed, self.scenario.faults, record=True)
        world.rng = Fixed()
        return world

    def _explored(self) -> ExploredWorld:
        return ExploredWorld(self.protocol.build(self.roster, self.config), self.config,
                             self.scenario.seed, self.scenario.faults, self.participants)

    def initial(self) -> list[ExploredWorld]:
        return [self._explored()]

    # --- enabled actions ----------------------------------------------------------
    def events(self, w: World) -> list[tuple[Event, PendingEvent | None]]:
        """The ordinary events enabled in ``w``, each with its queue entry (None for the
        start). No timed fault is ever pending: the explorer refuses them."""
        if not w.started:
            return [(START, None)]
        out: list[tuple[Event, PendingEvent | None]] = []
        seen: set[MessageKey] = set()
        in_flight = False
        fifo = not self.config.reorder
        oldest: dict[tuple[str, str], int] = {}
        if fifo:
            for _, _, m in w.queue.messages():
                ch = (m.src, m.dst)
                if ch not in oldest or m.id < oldest[ch]:
                    oldest[ch] = m.id
        for entry in w.queue:
            due = entry[2]
            if type(due) is Message:
                in_flight = True
                if fifo and oldest[(due.src, due.dst)] != due.id:
                    continue
                key = self._message(entry)[1]
                if key not in seen:  # identical copies in flight are one choice
                    seen.add(key)
                    out.append((Deliver(key), entry))
        if in_flight and self.synchronous:
            return out
        for entry in w.queue:
            timer = entry[2]
            if type(timer) is TimerDue and not w.is_stale(entry):
                out.append((Timeout(timer.node, timer.name), entry))
        return out

    def successors(self, w: ExploredWorld) -> list[tuple[Action, ExploredWorld]]:
        """Each enabled action with the world it leads to. Each such world remembers
        where it came from (``w``'s snapshot, the action and its queue entry), so the
        search can keep that instead of the world (see :meth:`store`)."""
        out: list[tuple[Action, ExploredWorld]] = []
        if len(self._entries) > _ENTRIES_KEPT:
            self._entries.clear()
        used = w.used
        can_crash = used.crashes < self.max_crashes
        parent = freeze(w)
        origins = self._origins
        local = self._local if not w.faults.faults else None
        for event, entry in self.events(w):
            c: ExploredWorld = thaw(parent)  # type: ignore[assignment]
            watches = self._watch(c, event, self.may_crash) if can_crash else []
            self.take(c, event, entry)
            if watches:
                c.unwatch()
            if local is not None and entry is not None:
                self._remember(local, w, c, event, entry)
            out.append((event, c))
            origins[c] = (parent, event, entry)
            for node, did in watches:
                for k in range(1, len(did)):
                    c2: ExploredWorld = thaw(parent)  # type: ignore[assignment]
                    crash = CrashDuring(event, node, k, did[k - 1])
                    self._crash_during(c2, crash, entry)
                    out.append((crash, c2))
                    origins[c2] = (parent, crash, entry)
        faults: list[FaultAction] = []
        if can_crash:
            faults += [Crash(name) for name, slot in w.nodes.items()
                       if slot.up and self.may_crash(w, name)]
        if self.recoveries and used.restarts < used.crashes:
            faults += [Recover(name) for name, slot in w.nodes.items() if not slot.up]
        if used.drops < self.max_drops:
            faults += dict.fromkeys(Drop(message_key(m)) for _, _, m in w.queue.messages())
        if used.partitions < self.max_partitions and w.partition is None:
            faults += [Partition(split) for split in self.splits]
        if w.partition is not None and used.heals < used.partitions:
            faults.append(HEAL)
        for fault in faults:
            c = thaw(parent)  # type: ignore[assignment]
            self.apply(c, fault)
            out.append((fault, c))
            origins[c] = (parent, fault, None)
        return out

    def may_crash(self, w: World, node: str) -> bool:
        """Whether the per-role bound (``max_down``) lets up node ``node`` crash now:
        fewer nodes of its role than the bound are down (always, without a bound)."""
        if self.max_down is None:
            return True
        role = self._role[node]
        down = sum(1 for n, slot in w.nodes.items() if not slot.up and self._role[n] == role)
        return down < self.max_down.get(role, 0)

    def _crash_during(self, w: ExploredWorld, crash: CrashDuring,
                      entry: PendingEvent | None) -> None:
        w.watch(crash.node, crash_after=crash.after)
        self.take(w, crash.event, entry)
        w.unwatch()
        used = w.used
        w.used = used._replace(crashes=used.crashes + 1)

    @staticmethod
    def _watch(w: World, event: Event,
               may_crash: Callable[[World, str], bool]) -> list[tuple[str, list[str]]]:
        """Watch the node(s) that act in ``event`` and may crash: (node, what it does)."""
        if isinstance(event, Start):
            names = [n for n, s in w.nodes.items() if s.up]
        elif isinstance(event, Deliver):
            names = [event.message.dst] if w.nodes[event.message.dst].up else []
        else:
            names = [event.node]
        return [(n, w.watch(n).did) for n in names if may_crash(w, n)]

    @staticmethod
    def take(w: World, event: Event, entry: PendingEvent | None) -> None:
        """Carry out an ordinary event (with the world's own step function)."""
        if entry is None:
            w.start()
        else:
            w.execute(entry)

    def apply(self, w: World, action: Action) -> None:
        """Carry out ``action`` on ``w``, finding its queue entry by key (for replays)."""
        if isinstance(action, (Start, Deliver, Timeout)):
            self.take(w, action, self._entry(w, action))
            return
        if isinstance(action, CrashDuring):
            w.watch(action.node, crash_after=action.after)
            self.take(w, action.event, self._entry(w, action.event))
            w.unwatch()
        elif isinstance(action, Drop):
            w.lose(self.in_flight(w, action))
        else:
            w.apply_fault(action.as_fault())
        if isinstance(w, ExploredWorld):
            used = list(w.used)
            used[_SPENT_INDEX[action.spends]] += 1
            w.used = _new_spent(Spent, used)

    def _entry(self, w: World, event: Event) -> PendingEvent | None:
        """The queue entry of ``event`` (the earliest, if several match)."""
        if isinstance(event, Start):
            return None
        if isinstance(event, Deliver):
            return self.in_flight(w, event)
        timer = TimerDue(event.node, event.timer)
        found = [e for e in w.queue if e[2] == timer and not w.is_stale(e)]
        if not found:
            raise TxlibError(f"cannot replay {event.describe()}: it is not enabled")
        return min(found)

    @staticmethod
    def in_flight(w: World, action: Deliver | Drop) -> MessageEntry:
        """The entry of the message ``action`` names (the earliest, if several match)."""
        found = [e for e in w.queue.messages() if message_key(e[2]) == action.message]
        if not found:
            raise TxlibError(f"cannot replay {action.describe()}: it is not enabled")
        return min(found)

    def _remember(self, local: dict[tuple[int, Any], int], w: World, c: World,
                  event: Event, entry: PendingEvent) -> None:
        """Give the node that acted in ``event`` (taken from ``w`` to ``c``) its number,
        from the node transitions met before, or remember this one."""
        node = event.message.dst if type(event) is Deliver else event.node  # type: ignore[union-attr]
        slot = c.nodes[node]
        before = w.nodes[node]
        if slot is before or slot.memo is not None:
            return  # the node did not act (down, or cut off): nothing to learn
        key = (self._node_id(before),
               self._message(entry)[2] if type(event) is Deliver else event.timer)  # type: ignore[union-attr]
        after = local.get(key)
        if after is None:
            local[key] = self._node_id(slot)
        elif self.check_local and self._node_id(slot) != after:
            raise AssertionError(f"{event.describe()} took {node} from the same state to "
                                 "two different ones")
        else:
            slot.memo = after

    def _node_id(self, slot: NodeSlot) -> int:
        """The number node ``slot``'s part of the fingerprint is interned as."""
        n = slot.memo
        if n is None:
            key = marshal.dumps(node_part(slot), 0)
            parts = self._parts
            n = parts.get(key)
            if n is None:
                n = parts[key] = len(parts)
            slot.memo = n
        return n  # type: ignore[no-any-return]

    # --- the state ----------------------------------------------------------------
    def _message(self, entry: PendingEvent) -> tuple[PendingEvent, MessageKey, int]:
        """(entry, key, number) of the message of queue ``entry``: its key and the
        number the key is interned as, remembered for the entries met lately."""
        known = self._entries.get(id(entry))
        if known is not None and known[0] is entry:
            return known
        key = message_key(entry[2])  # type: ignore[arg-type]  # a message entry
        ids = self._message_ids
        text = marshal.dumps(tuple(key), 0)  # 1, 1.0 and True are told apart
        n = ids.get(text)
        if n is None:
            n = ids[text] = len(ids)
        known = self._entries[id(entry)] = (entry, key, n)
        return known

    def fingerprint(self, w: ExploredWorld) -> int:
        """A 128-bit digest of the world's fingerprint, the budget used and the ghost
        (as an int: smaller than bytes).

        Each node's part of the fingerprint (:func:`~txlib.engine.snapshot.node_part`)
        is interned: its ``marshal`` bytes get a number, kept in the node's slot
        (``memo``) until the node changes, so only the nodes a step changed are looked
        at again. The messages in flight are interned the same way (by their keys,
        :func:`~txlib.explorer.actions.message_key`), remembered for the queue entries
        met lately; with ``reorder`` (the default) they are a multiset, the sorted list
        of their numbers. The digest is of the node and message numbers and the rest of
        the fingerprint.
        ``marshal`` format 0 writes a value the same way whatever objects hold it (no
        back-references, no interning marks), and its encoding of a tuple is its
        elements' encodings one after the other, so two states get equal digests
        exactly when their fingerprints and ghosts are equal, as if the whole were
        digested (but for a collision of 128-bit digests).
        """
        parts = self._parts
        ids = []
        for slot in w.nodes.values():
            n = slot.memo
            if n is None:
                key = marshal.dumps(node_part(slot), 0)
                n = parts.get(key)
                if n is None:
                    n = parts[key] = len(parts)
                slot.memo = n
            ids.append(n)
        if self.config.reorder:  # a multiset: the sorted numbers of the keys
            message = self._message
            messages: Any = []
            timed: list[int] = []
            for entry in w.queue.heap:
                due = entry[2]
                if type(due) is Message:
                    messages.append(message(entry)[2])
                elif type(due) is FaultDue:
                    timed.append(due.fault)
            messages.sort()
        else:  # each channel in sending order
            messages, timed = pending_part(w)
        groups = w.network.groups
        rest = (w.started, ids, messages, None if groups is None else w.network.sides(),
                progress_part(w, timed) if w.faults.faults else (),
                tuple((n, a, b) for n, a, b, _ in w.instability) if w.instability else (),
                w.ghost())
        return int.from_bytes(blake2b(marshal.dumps(rest, 0), digest_size=16).digest(), "big")

    def store(self, w: ExploredWorld) -> Frozen | Origin:
        """What the search keeps of a state while it waits: where it came from (its
        parent's snapshot, shared with its siblings, and the step from there), or its
        own snapshot."""
        origin = self._origins.pop(w, None)
        if origin is None:
            return freeze(w)
        self.release(w)
        return Origin(*origin)

    def restore(self, stored: Frozen | Origin) -> ExploredWorld:
        """The state back: thawed from its snapshot, or its parent's snapshot thawed
        and the same step taken again (the same queue entry: the same world)."""
        if not isinstance(stored, Origin):
            return thaw(stored)  # type: ignore[return-value]  # snapshots of explored worlds
        w: ExploredWorld = thaw(stored.parent)  # type: ignore[assignment]
        action, entry = stored.action, stored.entry
        if type(action) is CrashDuring:
            self._crash_during(w, action, entry)
        elif type(action) in FAULT_TYPES:
            self.apply(w, action)
        else:
            self.take(w, action, entry)  # type: ignore[arg-type]
        return w

    def violations(self, w: ExploredWorld) -> list[tuple[str, str]]:
        out = self.builtin(w)
        for name, check in self.custom:
            try:
                reason = check(w)
            except Exception as exc:  # the learner's own function: say which, plainly
                raise TxlibError(f"the invariant {name} raised {type(exc).__name__}: {exc}"
                                 ) from exc
            if reason:
                out.append((name, str(reason)))
        return out

    def release(self, w: ExploredWorld) -> None:
        """Break the world's reference cycles (world -> slot -> context -> world)."""
        for slot in w.nodes.values():
            slot.ctx = None  # type: ignore[assignment]  # the world is never used again

    def is_fault(self, action: Hashable) -> bool:
        return type(action) in FAULT_TYPES

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
        return action.describe() if isinstance(action, ACTIONS) else str(action)

    # --- counterexamples (see txlib.explorer.counterexamples) ------------------------
    def replay(self, path: Sequence[Action], extend: bool = False) -> World:
        """The world after ``path``, recorded (see :func:`counterexamples.replay`)."""
        return counterexamples.replay(self, path, extend)

    def counterexample(self, finding: Finding) -> Run:
        return counterexamples.counterexample(self, finding)

    def reproduces(self, finding: Finding) -> bool | None:
        return counterexamples.reproduces(self, finding)


def _protocol_of(target: str | Protocol | Scenario) -> tuple[Protocol, Scenario | None]:
    if isinstance(target, Scenario):
        return get_protocol(target.protocol), target
    if isinstance(target, Protocol):
        if PROTOCOLS.get(target.name) is None:
            raise TxlibError(f"protocol {target.name!r} is not registered; give a Protocol "
                             f"whose name is one of {sorted(PROTOCOLS)}")
        return target, None
    return get_protocol(target), None


def crash_budget(max_crashes: int | Mapping[str, int],
                 roster: Roster) -> tuple[int, dict[str, int] | None]:
    """``max_crashes`` as (total crashes, per-role bound on nodes down at once or None).

    A whole number bounds the crashes of any nodes. A mapping from roles to whole
    numbers, e.g. ``{"coordinator": 1, "acceptor": 1}``, lets at most that many nodes of
    each role be down at once (a role not named never crashes), and at most their sum
    crash in all: "the leader and at most F acceptors fail".
    """
    if not isinstance(max_crashes, Mapping):
        return max_crashes, None
    roles = tuple(dict.fromkeys(roster.roles.values()))
    for role, n in max_crashes.items():
        if role not in roles:
            raise bad_choice("role in max_crashes", role, roles)
        if not isinstance(n, int) or isinstance(n, bool) or n < 0:
            raise TxlibError(f"max_crashes[{role!r}] must be a whole number of 0 or more, "
                             f"got {n!r}")
    return sum(max_crashes.values()), dict(max_crashes)


# A search stops (reported incomplete, never silently) after this many distinct states
# unless given another budget: about 150 MB and 15 to 60 s (benchmarks/explore.py),
# where a learner still waits.
DEFAULT_MAX_STATES = 200_000
MAX_PARTICIPANTS = 8

def explore(
    protocol: str | Protocol | Scenario = "2pc",
    *,
    participants: int | Sequence[str] | None = None,
    max_crashes: int | Mapping[str, int] = 1,
    max_drops: int = 0,
    partitions: bool = False,
    recoveries: bool = False,
    timeouts: str = "synchronous",
    max_depth: int | None = None,
    invariants: Sequence[str | Invariant] | None = None,
    blocking: bool = True,
    max_states: int | None = None,
    max_seconds: float | None = None,
    stop_on_violation: bool = True,
    progress: bool | SearchProgress | None = None,
    **options: Any,
) -> Exploration:
    """Explore every interleaving of ``protocol``'s events and the allowed faults.

    ``protocol`` is a name (``"2pc"``, ``"saga"``, ``"tcc"``, ...), a :class:`Protocol`
    (e.g. a variant with changed roles, whose ``name`` is registered) or a
    :class:`Scenario` (its participants, options and fault plan are used; ``at_time``
    faults are refused). ``participants`` defaults to 2 for a commit protocol (keep it
    small: the state space grows fast) and to the protocol's own otherwise (a saga's
    services). ``max_crashes``, ``max_drops``, ``partitions`` and ``recoveries`` set the
    fault budget (``max_crashes`` may map roles to how many of their nodes may be down
    at once, e.g. ``{"coordinator": 1, "acceptor": 1}``, see :func:`crash_budget`);
    ``timeouts`` is ``"synchronous"`` or ``"asynchronous"`` (see the
    module docstring). ``invariants`` (None: the protocol's own) lists names of a commit
    protocol's invariants (:data:`txlib.properties.INVARIANTS`) and functions of the
    world returning a reason (or None); any other protocol is always checked against
    all of its own invariants, plus the functions given. ``max_states``, ``max_seconds``
    and ``max_depth`` bound the search, which then says it is incomplete; ``max_states``
    defaults to :data:`DEFAULT_MAX_STATES`. ``progress``: None shows a progress bar in a
    terminal or a notebook if the search lasts, True always, False never. Other keyword
    arguments are protocol
    options, as for :func:`txlib.simulate`; the protocol's
    :attr:`~txlib.protocols.base.Protocol.explore_options` (the bounds that make its
    state space finite) apply unless given here or in the scenario.

    Returns an :class:`~txlib.explorer.search.Exploration`: distinct states, transitions,
    depth, time, whether it was complete, each invariant's shortest violation, and (for
    a protocol whose roster has nodes that must decide) the blocking states with a
    shortest path to one. A protocol whose invariants need a trace cannot be explored:
    a TxlibError says so.
    """
    proto, base = _protocol_of(protocol)
    if max_states is None:
        max_states = DEFAULT_MAX_STATES
    for name, value in (("max_crashes", max_crashes), ("max_drops", max_drops)):
        if isinstance(value, Mapping) and name == "max_crashes":
            continue  # checked against the roster's roles below
        if not isinstance(value, int) or isinstance(value, bool) or value < 0:
            raise TxlibError(f"{name} must be a whole number of 0 or more, got {value!r}")
    for name, flag in (("partitions", partitions), ("recoveries", recoveries),
                       ("blocking", blocking), ("stop_on_violation", stop_on_violation)):
        if not isinstance(flag, bool):
            raise TxlibError(f"{name} must be True or False, got {flag!r}")
    if timeouts not in TIMEOUTS:
        raise bad_choice("timeouts", timeouts, TIMEOUTS)
    if invariants is not None and (isinstance(invariants, str)
                                   or not isinstance(invariants, Sequence)):
        raise TxlibError(f"invariants must be a list of names or functions, got {invariants!r}")
    for inv in invariants or ():
        if not isinstance(inv, str) and not callable(inv):
            raise TxlibError(f"an invariant is a name or a function of the world, got {inv!r}")
    if base is not None:
        if participants is not None or options:
            raise TxlibError("give participants and options in the scenario, not to explore")
        bounds = {k: v for k, v in proto.explore_options.items() if k not in base.options}
        scenario = replace(base, options={**base.options, **bounds}) if bounds else base
    else:
        if participants is None:  # two for a commit protocol; the protocol's own otherwise
            names = participant_names(2) if isinstance(proto, CommitProtocol) else ()
        else:
            names = participant_names(participants)
            if len(names) > MAX_PARTICIPANTS:
                raise TxlibError(f"the explorer takes at most {MAX_PARTICIPANTS} participants "
                                 f"(states grow exponentially with them), got {len(names)}")
        scenario = Scenario(proto.name, names, options={**proto.explore_options, **options})
    config = proto.make_config(scenario.participants, scenario.options)
    if getattr(config, "loss", 0) or getattr(config, "duplicate", 0):
        raise TxlibError("the explorer makes every choice itself: set loss and duplicate to 0 "
                         "and use max_drops for lost messages")
    total, max_down = crash_budget(max_crashes, scenario.roster)
    model = WorldModel(proto, scenario, config, max_crashes=total, max_drops=max_drops,
                       partitions=partitions, recoveries=recoveries, timeouts=timeouts,
                       invariants=None if invariants is None else tuple(invariants),
                       max_down=max_down)
    if timeouts == "asynchronous" and max_depth is None and max_states is None and (
            max_seconds is None):
        # Timers that fire at any moment can re-send faster than messages arrive: the
        # state space of a protocol that retries is infinite, so bound the search.
        max_depth = ASYNC_DEPTH
    settings: dict[str, Any] = {"crashes": max_crashes if max_down is None else max_down}
    if max_drops:
        settings["drops"] = max_drops
    if partitions:
        settings["partitions"] = True
    if recoveries:
        settings["recoveries"] = True
    settings["timeouts"] = timeouts
    for option in proto.explore_options:  # the bounds the claim is about
        settings[option] = scenario.options[option]
    return search(model, max_states=max_states, max_seconds=max_seconds, max_depth=max_depth,
                  stop_on_violation=stop_on_violation, blocking=blocking, progress=progress,
                  settings=settings)
