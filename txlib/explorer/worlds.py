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
    returning a reason string when broken, None when they hold). When the search is
    complete and the protocol has nodes that must decide (its roster's deciders), it
    also reports *blocking* states, separately: some decider is up and undecided and
    no continuation made of ordinary events (deliveries and timeouts: no fault, no
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
    that retries is infinite: unless a budget is given (``max_depth``, ``max_states`` or
    ``max_seconds``), the search stops at depth ``ASYNC_DEPTH`` (20), or at
    ``DEFAULT_MAX_STATES`` states if it meets them first, and says it is incomplete.

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

    Steps are remembered too (:meth:`WorldModel.expand`). When a message is delivered
    to a node, or one of its timers fires, what the step does is a function of the
    node's part of the fingerprint before it, the message (or the timer's name),
    whether the node's first vote is already in the ghost, and the partition, as the
    fingerprint itself assumes (it leaves out time and message ids, so a handler's
    effect may not depend on them). The first time the explorer meets such a step it
    takes it and notes its *effect*: the node's part after it, the messages it sent,
    its votes and decisions, its decision changes and the sends and log writes a
    crash could cut. Every later time, the successor's digest is worked out from the
    parent's and the effect, without taking the step (a :class:`Predicted`
    successor); a message to a node that is down or cut off is simply lost. A
    successor already seen costs no step at all. A new one is judged from its parts
    (a commit protocol's own invariants need only the nodes' decisions, the decision
    changes and the ghost) and kept as its origin; its step is taken when it is
    expanded. A protocol judged on its history, or a search with invariants of your
    own, takes the step of each new state at once. Not with a fault plan or FIFO
    channels, where a step depends on more than its node and message. Faults are
    predicted the same way: a crash between steps changes only its node's part (down,
    volatile state and timers lost, unforced log records too if so configured), a
    function of the part before it; a partition or a heal only the network's sides (a
    message is cut off when it arrives); a lost message only the messages in flight;
    and a restart is remembered as a step is, from the node's part (its durable log)
    and the partition, since ``on_recover`` reads nothing else. A crash in the middle
    of a step is taken from a state that has its world, and remembered as a step is
    (under the step and the action it comes after) for states that have none.

    A state with no fault left to make but crashes and restarts (the rest of the budget
    spent, the network whole; every fault, if a per-role bound on nodes down is
    searched) is kept and expanded without its world, as its *schedule*
    (:mod:`txlib.explorer.schedule`): the queue's entries in the heap's storage order
    with message numbers, the live timers' tokens, the time, the node parts and the
    ghost. Its successors come in the order its world would give them. A step met
    for the first time there is learned without the state's world
    (:meth:`Memo.learn_at`): in a world thawed from the nearest snapshot, the acting
    node's slot a copy of one met with the same part, the message one met with the
    same key, at the schedule's time; so are a crash in the middle of a step and a
    restart (:meth:`Memo.learn_fault_at`), and a crash between steps is learned by
    crashing a copy of the node. Its world is
    rebuilt (from that snapshot, taking the same steps again) only when asked for: to
    show a state, or by the tests' check.

    Every search checks the assumption the remembered steps rest on as it goes: one
    use of a remembered effect in every 97, and the first use of each from a state
    that has its world, is taken again, and a step that does something else from the
    same state stops the search with a TxlibError saying so (a handler that reads the
    time would). With ``WorldModel.check_local`` (the tests) every remembered step and
    every predicted fault is taken as well and compared, digests and judgements too,
    every schedule with its rebuilt world, and every step learned without a world
    with the same step taken in it: ``tests/test_explore.py`` runs it over every
    protocol, with crashes, restarts and a partition.

See :mod:`txlib.explorer.grid` for fault placement under the *timed* scheduler (the
grid, and ``worse``: can it get worse?).
"""

from __future__ import annotations

import functools
import weakref
from collections.abc import Callable, Hashable, Mapping, Sequence
from dataclasses import replace
from typing import Any

from ..engine.config import TIMING_SUFFIXES
from ..engine.records import Message
from ..engine.roster import Roster
from ..engine.scheduler import FaultDue, MessageEntry, PendingEvent, TimerDue
from ..engine.snapshot import Frozen, copy_slot, freeze, pending_part, progress_part, thaw
from ..engine.world import World
from ..errors import TxlibError, bad_choice, choices, shown, suggestion
from ..protocols import PROTOCOLS, CommitProtocol, Protocol, get_protocol
from ..sagas.definition import SagaDefinition
from ..simulation.run import Run
from ..simulation.saga import Saga
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
    Partition,
    Recover,
    Spent,
    Start,
    Timeout,
    message_key,
    one_more_crash,
    spent_on,
)
from .judging import (
    CommitInvariants,
    ExploredWorld,
    Fixed,
    StateInvariants,
    invariants_of,
)
from .memo import Base, Effect, EffectKey, Memo, Parent, Predicted
from .schedule import Schedule, advance, entry_of, schedule_of, steps_of
from .search import Exploration, Finding, Model, SearchProgress, search

TIMEOUTS: tuple[str, ...] = ("synchronous", "asynchronous")
ASYNC_DEPTH = 20  # the default depth bound of an asynchronous search (see explore)
START = Start()
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


_RESTART = ("restart",)  # a restart's step in a remembered effect's key (not a timer)
_DURING = "during"  # a crash in the middle of a step, in a remembered effect's key
# A schedule's world rebuilt, and its snapshot (check_local)
Taken = tuple[ExploredWorld, Frozen]


@functools.cache
def _sides(groups: tuple[tuple[str, ...], ...]) -> tuple[tuple[str, ...], ...]:
    """What :meth:`Network.sides` gives for a network split into ``groups`` (every
    node in one of them)."""
    return tuple(sorted(tuple(sorted(g)) for g in groups))


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


class WorldModel(Model[ExploredWorld | Schedule]):
    """A protocol's worlds as a model for :func:`txlib.explorer.search.search`.

    Fingerprints are 128-bit digests (:meth:`fingerprint`), kept in a compact table.

    ``invariants`` lists the checks: names of a commit protocol's invariants (None: all
    of them; any other protocol is always checked against all of its own) and
    functions of the world returning a reason or None.
    """

    digests = True
    # tests: take every remembered or predicted step as well, rebuild every schedule's
    # world, and compare (see the module docstring)
    check_local = False

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
            if f.kind in TIMING_FAULTS:
                raise TxlibError(f"fault '{f.describe()}' only changes when messages arrive, "
                                 "but the explorer ignores time and tries every order of "
                                 "delivery already: leave it out")
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
        n = len(scenario.participants)
        self.name = f"{protocol.name} with {n} participant{'' if n == 1 else 's'}"
        self.nodes = self.roster.names
        self.splits = _bipartitions(self.nodes) if partitions else []
        self._index = {p: i for i, p in enumerate(self.participants)}
        # interned node parts and messages, and the effects of the steps met so far
        self.memo = Memo(self.nodes, self.participants)
        self._delivers: dict[int, Deliver] = {}  # message number -> its Deliver action
        self._numbers: dict[int, int] = {}  # id of one of those actions -> the number
        self._timeouts: dict[TimerDue, Timeout] = {}
        # where each world successors() made came from, while the world lives
        self._origins: weakref.WeakKeyDictionary[World, tuple[Any, ...]] = (
            weakref.WeakKeyDictionary())
        first = self._explored()
        self.builtin: StateInvariants = invariants_of(protocol, self.roster, config, names,
                                                      first)
        self.release(first)  # tried only
        # the invariants checked, by name (see Exploration.violation): those of a
        # commit protocol asked for, or all of any other protocol's, and the functions
        builtin = (self.builtin.names if isinstance(self.builtin, CommitInvariants)
                   else protocol.invariant_names(config))
        if builtin is not None:  # else the protocol does not list them
            self.invariant_names = (*builtin, *(n for n, _ in self.custom))
        # a commit protocol's own invariants judge a state from its nodes' decisions,
        # its decision changes and its ghost: a predicted state needs no world for that
        self._commit = self.builtin if isinstance(self.builtin, CommitInvariants) else None
        self._judged_by_parts = self._commit is not None and not self.custom
        # whether a state with no fault left to make is expanded from its schedule,
        # without its world (see txlib.explorer.schedule): steps are remembered (no
        # fault plan, reordering channels) and states judged by their parts
        self._schedules = (self._judged_by_parts and config.reorder
                           and not scenario.faults)
        # whether a state that may still crash or restart a node is kept as its schedule
        # too: its crashes and restarts are predicted from what they did before, as
        # steps are. Not with a per-role bound on nodes down.
        self._crash_schedules = self._schedules and max_down is None

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
        return [(event, entry) for event, entry, _ in self._events(w)[0]]

    def _events(self, w: World) -> tuple[list[tuple[Event, PendingEvent | None, Any]],
                                         list[int]]:
        """:meth:`events`, each with its message's number or its timer's name, and the
        numbers of every message in flight (in storage order)."""
        if not w.started:
            return [(START, None, None)], []
        out: list[tuple[Event, PendingEvent | None, Any]] = []
        numbers: list[int] = []
        seen: set[int] = set()
        fifo = not self.config.reorder
        oldest: dict[tuple[str, str], int] = {}
        if fifo:
            for _, _, m in w.queue.messages():
                ch = (m.src, m.dst)
                if ch not in oldest or m.id < oldest[ch]:
                    oldest[ch] = m.id
        message, delivers = self.memo.message, self._delivers
        timers = []
        for entry in w.queue.heap:
            due = entry[2]
            if type(due) is Message:
                _, key, n = message(entry)
                numbers.append(n)
                if fifo and oldest[(due.src, due.dst)] != due.id:
                    continue
                if n not in seen:  # identical copies in flight are one choice
                    seen.add(n)
                    deliver = delivers.get(n)
                    if deliver is None:
                        deliver = delivers[n] = Deliver(key)
                        self._numbers[id(deliver)] = n
                    out.append((deliver, entry, n))
            elif type(due) is TimerDue:
                timers.append(entry)
        if numbers and self.synchronous:
            return out, numbers
        timeouts = self._timeouts
        for entry in timers:
            timer: TimerDue = entry[2]  # type: ignore[assignment]
            if not w.is_stale(entry):
                timeout = timeouts.get(timer)
                if timeout is None:
                    timeout = timeouts[timer] = Timeout(timer.node, timer.name)
                out.append((timeout, entry, timer.name))
        return out, numbers

    def successors(self, w: ExploredWorld | Schedule) -> list[tuple[Action, ExploredWorld]]:
        """Each enabled action with the world it leads to. Each such world remembers
        where it came from (``w``'s snapshot, the action and its queue entry), so the
        search can keep that instead of the world (see :meth:`store`)."""
        return [(action, self._world(c)) for action, c in self.expand(w)]

    def expand(self, w: ExploredWorld | Schedule,
               ) -> list[tuple[Action, ExploredWorld | Predicted]]:
        """:meth:`successors` as the search takes them: a delivery or a timeout whose
        effect on its node the explorer has met before (the same node part, the same
        message or timer, the same first-vote status) is not taken; its successor's
        digest is worked out from the parent's and the effect (a :class:`Predicted`),
        and the step is taken only if the state is new (:meth:`materialize`). Under a
        partition the effects are remembered per partition (what it cuts off is lost);
        a message to a node that is down or cut off is lost, and nothing else changes.
        Not with a fault plan or FIFO channels (``reorder=False``), where a step
        depends on more than its node and message. ``w`` is frozen (its snapshot is
        the parent of the successors) only once a successor needs it."""
        if isinstance(w, Schedule):
            return self._expand_schedule(w)
        out: list[tuple[Action, ExploredWorld | Predicted]] = []
        used = w.used
        can_crash = used.crashes < self.max_crashes
        parent = Parent(w)
        origins = self._origins
        plain = not w.faults.faults
        shortcut = plain and self.config.reorder
        network = w.network
        memo = self.memo
        sides = memo.sides(w)
        events, numbers = self._events(w)
        base: Base | None = None
        nodes, votes, remembered, node_id = w.nodes, w.votes, memo.effects.get, memo.node_id
        expected: int | None = None  # check_local: the digest predicted for the next step
        for event, entry, number in events:
            if shortcut and entry is not None:
                if type(event) is Deliver:
                    node = event.message.dst
                    cut = sides is not None and network.cut(event.message.src, node)
                else:
                    node, cut = event.node, False  # type: ignore[union-attr]
                before = nodes[node]
                if before.up and not cut:
                    key = (before.memo if before.memo is not None else node_id(before),
                           number, node in votes, sides)
                    effect = remembered(key)
                    taken = None
                    if effect is None or self.check_local or memo.due_check(key):
                        taken, learned = memo.learn(parent.frozen(), w, event, entry, node)
                        if effect is None:
                            memo.effects[key] = effect = learned
                        elif learned != effect:
                            raise self._not_remembered(event, node)
                        elif self.check_local:  # then the prediction, checked, goes on
                            if base is None:
                                base = memo.base(w, numbers)
                            self._check(w, base, node, event, entry, number, effect, taken)
                            taken = None
                    if taken is not None:
                        out.append((event, taken))
                        origins[taken] = (parent.frozen(), event, entry)
                    else:
                        if base is None:
                            base = memo.base(w, numbers)
                        out.append((event, memo.predict(w, base, parent, event, entry, node,
                                                        number, effect)))
                    if can_crash and len(effect.did) > 1 and self.may_crash(w, node):
                        self._crashes_during(out, parent.frozen(), event, entry, node,
                                             effect.did)
                    continue
                if type(event) is Deliver:
                    # to a node that is down or cut off: lost; nothing else changes
                    if base is None:
                        base = memo.base(w, numbers)
                    lost = memo.lost(w, base, parent, event, entry, number)
                    if not self.check_local:
                        out.append((event, lost))
                        continue
                    expected = lost.digest  # checked below, against the step taken
            c: ExploredWorld = thaw(parent.frozen())  # type: ignore[assignment]
            watches = self._watch(c, event, self.may_crash) if can_crash else []
            self.take(c, event, entry)
            if watches:
                c.unwatch()
            if expected is not None:
                if self.fingerprint(c) != expected:
                    raise AssertionError(f"{event.describe()}: a message to a node that is "
                                         "down or cut off changed more than the messages "
                                         "in flight")
                expected = None
            out.append((event, c))
            origins[c] = (parent.frozen(), event, entry)
            for node, did in watches:
                self._crashes_during(out, parent.frozen(), event, entry, node, did)
        faults: list[FaultAction] = []
        if can_crash:
            faults += [Crash(name) for name, slot in w.nodes.items()
                       if slot.up and self.may_crash(w, name)]
        if self.recoveries and used.restarts < used.crashes:
            faults += [Recover(name) for name, slot in w.nodes.items() if not slot.up]
        droppable: dict[Drop, int] = {}  # each message a drop may lose: its number
        if used.drops < self.max_drops:
            for in_flight in w.queue.messages():
                _, key_of_lost, n = memo.message(in_flight)
                droppable.setdefault(Drop(key_of_lost), n)
            faults += droppable
        if used.partitions < self.max_partitions and w.partition is None:
            faults += [Partition(split) for split in self.splits]
        if w.partition is not None and used.heals < used.partitions:
            faults.append(HEAL)
        for fault in faults:
            if self._schedules and w.started:  # predicted, not taken (but the first time)
                if base is None:
                    base = memo.base(w, numbers)
                predicted: ExploredWorld | Predicted | None
                if type(fault) is Crash:
                    predicted = self._crash_predicted(w, parent, base, fault)
                elif type(fault) is Recover:
                    predicted = self._recovery_predicted(w, parent, base, fault)
                else:
                    assert isinstance(fault, (Partition, Heal, Drop))  # the faults left
                    predicted = self._network_predicted(
                        w, parent, base, fault,
                        droppable[fault] if isinstance(fault, Drop) else None)
                if predicted is not None:
                    out.append((fault, predicted))
                    continue
            c = thaw(parent.frozen())  # type: ignore[assignment]
            self.apply(c, fault)
            out.append((fault, c))
            origins[c] = (parent.frozen(), fault, None)
        return out

    def _crash_predicted(self, w: ExploredWorld, parent: Parent, base: Base,
                         crash: Crash) -> Predicted | None:
        """The successor where ``crash`` happens, worked out without taking it: a
        crash between steps changes only its node's part (down, volatile state and
        timers lost, and unforced log records if the configuration says so), which is
        a function of the part before it, and the budget used. None the first time a
        part crashes (the crash is then taken, and what it gives remembered)."""
        memo = self.memo
        slot = w.nodes[crash.node]
        part = slot.memo if slot.memo is not None else memo.node_id(slot)
        after = memo.crashed.get(part)
        if after is not None and not self.check_local:
            return memo.crash(w, base, parent, crash, after)
        c: ExploredWorld = thaw(parent.frozen())  # type: ignore[assignment]
        self.apply(c, crash)
        taken = memo.node_id(c.nodes[crash.node])
        if after is None:
            memo.crashed[part] = taken
            c.release()  # taken only to learn the part (the successor is taken again)
            return None
        predicted = memo.crash(w, base, parent, crash, after)  # check_local: compare
        self._compare(crash, predicted, c, taken == after)
        return predicted

    def _network_predicted(self, w: ExploredWorld, parent: Parent, base: Base,
                           fault: Partition | Heal | Drop, lost: int | None) -> Predicted:
        """The successor where the network splits, heals or loses message number
        ``lost``, worked out without taking the step: only the partition, the messages
        in flight and the budget used change. With ``check_local`` the step is also
        taken and compared."""
        sides = (base[5] if isinstance(fault, Drop) else None if isinstance(fault, Heal)
                 else _sides(fault.groups))
        predicted = self.memo.network_fault(w, base, parent, fault,
                                            spent_on(w.used, fault.spends), sides, lost)
        if self.check_local:
            c: ExploredWorld = thaw(parent.frozen())  # type: ignore[assignment]
            self.apply(c, fault)
            self._compare(fault, predicted, c)
        return predicted

    def _recovery_predicted(self, w: ExploredWorld, parent: Parent, base: Base,
                            fault: Recover) -> ExploredWorld | Predicted:
        """The successor where ``fault``'s node restarts: worked out from what a restart
        did before from the same part of the node (its durable log; down, it has
        nothing else) and the same partition, as a step is (see :meth:`expand`); taken
        the first time, and when sampled for checking (then compared)."""
        memo = self.memo
        node = fault.node
        slot = w.nodes[node]
        key = (slot.memo if slot.memo is not None else memo.node_id(slot), _RESTART,
               node in w.votes, base[5])
        effect = memo.effects.get(key)
        used = spent_on(w.used, fault.spends)
        if effect is not None and not self.check_local and not memo.due_check(key):
            return memo.predict(w, base, parent, fault, None, node, _RESTART, effect, used)
        c, learned = memo.learn_fault(parent.frozen(), w, lambda c: self.apply(c, fault),
                                      node)
        if effect is None:
            memo.effects[key] = learned
        elif learned != effect:
            raise self._not_remembered(fault, node)
        if self.check_local and effect is not None:
            predicted = memo.predict(w, base, parent, fault, None, node, _RESTART, effect,
                                     used)
            self._compare(fault, predicted, c)
            return predicted
        self._origins[c] = (parent.frozen(), fault, None)
        return c

    def _compare(self, fault: FaultAction, predicted: Predicted,
                 taken: ExploredWorld, same_part: bool = True) -> None:
        """Tests (``check_local``): ``fault`` predicted gives the digest and the
        judgement of ``fault`` taken (and the part the crash gave, ``same_part``)."""
        if not same_part or self.fingerprint(taken) != predicted.digest or (
                (self.violations(predicted), self.undecided(predicted),
                 self.decided(predicted))
                != (self.violations(taken), self.undecided(taken), self.decided(taken))):
            raise AssertionError(f"{fault.describe()} was predicted wrongly")
        taken.release()  # taken only to compare

    def fault_free(self, used: Spent) -> bool:
        """Whether a state that has used ``used`` of the budget may make no fault any
        more (and its network is whole): its successors are deliveries and timeouts
        only. (A crash may still be out of reach for a bound of ``max_down``; such a
        state is simply expanded with its world.)"""
        return (used.crashes >= self.max_crashes and used.drops >= self.max_drops
                and used.partitions >= self.max_partitions and used.heals >= used.partitions
                and not (self.recoveries and used.restarts < used.crashes))

    def schedulable(self, used: Spent) -> bool:
        """Whether a state that has used ``used`` of the budget is kept as its schedule
        (see :meth:`store`): it may make no fault any more, or (``_crash_schedules``) no
        fault but crashes and restarts, and its network is whole."""
        if self.fault_free(used):
            return True
        return (self._crash_schedules and used.drops >= self.max_drops
                and used.partitions >= self.max_partitions and used.heals >= used.partitions)

    def _expand_schedule(self, s: Schedule) -> list[tuple[Action, ExploredWorld | Predicted]]:
        """:meth:`expand` for a state kept as its :class:`Schedule` (no fault left to
        make but crashes and restarts): the same successors in the same order, each
        predicted from its remembered effect. A step (or a fault) not met before,
        or sampled for checking, is learned without the state's world
        (:meth:`Memo.learn_at`); with ``check_local`` it is also taken in the world,
        rebuilt, and everything compared."""
        out: list[tuple[Action, ExploredWorld | Predicted]] = []
        memo = self.memo
        remembered, facts, position = memo.effects.get, memo.facts, memo.position
        taken: Taken | None = None
        if self.check_local:  # its world rebuilt, compared, and its successors' anchor
            w = self._rebuild(s)
            self._check_schedule(s, w)
            frozen = freeze(w)
            s.anchor, s.steps = frozen, None
            taken = (w, frozen)
        base: Base = (s.ids, s.digest, s.rest, s.changes, s.ghost, None)
        votes = s.votes
        can_crash = s.used.crashes < self.max_crashes
        for event, entry, number, node in self._scheduled(s):
            part = s.ids[position[node]]
            if not facts[part][0]:  # to a node that is down: lost
                out.append((event, memo.lost(s, base, s, event, entry, number)))
                continue
            voted = node in votes
            key = (part, number, voted, None)
            if taken is not None:  # the step taken in the rebuilt world, and compared
                effect = remembered(key)
                w, frozen = taken
                real = entry_of(w, entry[1])
                c, learned = memo.learn(frozen, w, event, real, node)
                if memo.learn_at(s.anchor, s, entry, number, node) != learned:
                    raise AssertionError(f"{event.describe()} did something else without "
                                         "its world")
                if effect is None:
                    memo.effects[key] = effect = learned
                elif learned != effect:
                    raise self._not_remembered(event, node)
                self._check(w, base, node, event, real, number, effect, c)
            else:  # _remembered, written out on this hot path (no closure per step)
                effect = remembered(key)
                if effect is None or memo.due_check(key, False):
                    learned = memo.learn_at(s.anchor, s, entry, number, node)
                    if effect is None:
                        memo.effects[key] = effect = learned
                    elif learned != effect:
                        raise self._not_remembered(event, node)
            out.append((event, memo.predict(s, base, s, event, entry, node, number,
                                            effect)))
            if can_crash and len(effect.did) > 1:
                for k in range(1, len(effect.did)):
                    during = CrashDuring(event, node, k, effect.did[k - 1])
                    out.append((during, self._crash_during_scheduled(
                        s, base, during, entry, number, (part, (_DURING, number, k), voted,
                                                         None), taken)))
        if can_crash:
            for node in self.nodes:
                part = s.ids[position[node]]
                if facts[part][0]:
                    crash = Crash(node)
                    out.append((crash, self._crash_scheduled(s, base, crash, part, taken)))
        if self.recoveries and s.used.restarts < s.used.crashes:
            for node in self.nodes:
                part = s.ids[position[node]]
                if not facts[part][0]:
                    restart = Recover(node)
                    out.append((restart, self._restart_scheduled(s, base, restart, part,
                                                                 taken)))
        return out

    def _remembered(self, key: EffectKey, learn: Callable[[], Effect],
                    step: Event | Recover, node: str, again: bool = False) -> Effect:
        """For a state kept as its schedule: the effect remembered under ``key``, learned
        without the state's world (``learn``) the first time, and again, and compared,
        when ``again`` or sampled (:meth:`Memo.due_check`); ``step`` at ``node`` doing
        something else the second time is a TxlibError (see :meth:`_not_remembered`)."""
        memo = self.memo
        effect = memo.effects.get(key)
        if effect is None or again or memo.due_check(key, False):
            learned = learn()
            if effect is None:
                memo.effects[key] = effect = learned
            elif learned != effect:
                raise self._not_remembered(step, node)
        return effect

    def _crash_during_scheduled(self, s: Schedule, base: Base, crash: CrashDuring,
                                entry: Any, number: int | str, key: EffectKey,
                                taken: Taken | None) -> Predicted:
        """The successor of schedule ``s`` where ``crash`` happens (its event's entry
        ``entry``, message number or timer name ``number``), worked out from what the
        same crash did before from the same part of the node (remembered under
        ``key``), or learned without the state's world. ``taken``: the state's world
        rebuilt and frozen (``check_local``): the crash is also taken there and
        compared."""
        memo, node = self.memo, crash.node
        effect = self._remembered(key, lambda: memo.learn_at(
            s.anchor, s, entry, number, node, crash.after), crash.event, node, taken is not None)
        predicted = memo.predict(s, base, s, crash, entry, node, number, effect,
                                 one_more_crash(s.used))
        if taken is not None:
            c: ExploredWorld = thaw(taken[1])  # type: ignore[assignment]
            self._crash_during(c, crash, entry_of(c, entry[1]))
            self._compare(crash, predicted, c)
        return predicted

    def _restart_scheduled(self, s: Schedule, base: Base, restart: Recover, part: int,
                           taken: Taken | None) -> Predicted:
        """The successor of schedule ``s`` where ``restart``'s node, whose part is
        ``part``, restarts: from what a restart did before from the same part (see
        :meth:`_recovery_predicted`), or learned without the state's world
        (:meth:`Memo.learn_fault_at`). ``taken``: as for :meth:`_crash_during_scheduled`."""
        memo, node = self.memo, restart.node
        effect = self._remembered(
            (part, _RESTART, node in s.votes, None),
            lambda: memo.learn_fault_at(s.anchor, s, lambda c: self.apply(c, restart), node),
            restart, node, taken is not None)
        predicted = memo.predict(s, base, s, restart, None, node, _RESTART, effect,
                                 spent_on(s.used, restart.spends))
        if taken is not None:
            c: ExploredWorld = thaw(taken[1])  # type: ignore[assignment]
            self.apply(c, restart)
            self._compare(restart, predicted, c)
        return predicted

    def _crash_scheduled(self, s: Schedule, base: Base, crash: Crash, part: int,
                         taken: Taken | None) -> Predicted:
        """The successor of schedule ``s`` where ``crash`` happens to a node whose part
        is ``part``: the part a crash gave it before (see :meth:`_crash_predicted`), or
        learned by crashing a copy of the node. ``taken`` (``check_local``): as for
        :meth:`_crash_during_scheduled`."""
        memo = self.memo
        after = memo.crashed.get(part)
        if after is None:
            c: ExploredWorld = thaw(s.anchor)  # type: ignore[assignment]
            c.nodes[crash.node] = copy_slot(memo.samples[part], c)
            self.apply(c, crash)
            after = memo.crashed[part] = memo.node_id(c.nodes[crash.node])
            c.release()
        predicted = memo.crash(s, base, s, crash, after)
        if taken is not None:
            c = thaw(taken[1])  # type: ignore[assignment]
            self.apply(c, crash)
            self._compare(crash, predicted, c, memo.node_id(c.nodes[crash.node]) == after)
        return predicted

    def _scheduled(self, s: Schedule) -> list[tuple[Event, Any, Any, str]]:
        """The events enabled in schedule ``s``, as :meth:`_events` lists them for its
        world: (event, the schedule's entry, message number or timer name, node)."""
        out: list[tuple[Event, Any, Any, str]] = []
        seen: set[int] = set()
        delivers, keys = self._delivers, self.memo.keys
        timers = []
        for entry in s.heap:
            tag = entry[2]
            if type(tag) is int:
                if tag not in seen:  # identical copies in flight are one choice
                    seen.add(tag)
                    deliver = delivers.get(tag)
                    if deliver is None:
                        deliver = delivers[tag] = Deliver(keys[tag])
                        self._numbers[id(deliver)] = tag
                    out.append((deliver, entry, tag, deliver.message.dst))
            else:
                timers.append(entry)
        if out and self.synchronous:  # a message is in flight
            return out
        live, timeouts = s.timers, self._timeouts
        for entry in timers:
            timer: TimerDue = entry[2]  # type: ignore[assignment]
            if live.get(timer) == entry[1]:
                timeout = timeouts.get(timer)
                if timeout is None:
                    timeout = timeouts[timer] = Timeout(timer.node, timer.name)
                out.append((timeout, entry, timer.name, timer.node))
        return out

    def _rebuild(self, s: Schedule) -> ExploredWorld:
        """The world of schedule ``s``: its anchor thawed, and the same steps taken
        again."""
        w: ExploredWorld = thaw(s.anchor)  # type: ignore[assignment]
        for order in steps_of(s.steps):
            if isinstance(order, (Crash, Recover)):
                self.apply(w, order)
            elif isinstance(order, tuple):  # an entry, with a crash in the middle of it
                self._crash_during(w, order[1], entry_of(w, order[0]))
            else:
                self._settled(w, entry_of(w, order))
        return w

    def _check_schedule(self, s: Schedule, w: ExploredWorld) -> None:
        """Tests (``check_local``): schedule ``s`` is what its world ``w`` holds."""
        expected = schedule_of(w, self.memo, s.anchor, self.fingerprint(w))
        differs = s.same(expected) or ("digest" if s.digest != expected.digest else None)
        events = [(event, number) for event, _, number, _ in self._scheduled(s)]
        if differs is None and events != [(e, n) for e, _, n in self._events(w)[0]]:
            differs = "the events enabled"
        if differs is not None:
            raise AssertionError(f"a state's schedule differs from its world in {differs}")

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
        w.used = one_more_crash(used)

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
            w.used = spent_on(w.used, action.spends)

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

    def _crashes_during(self, out: list[tuple[Action, ExploredWorld | Predicted]],
                        parent: Frozen, event: Event, entry: PendingEvent | None,
                        node: str, did: Sequence[str]) -> None:
        """The successors where ``node`` crashes in the middle of ``event``: right after
        its k-th send or log write (``did``), for every k short of its last one."""
        for k in range(1, len(did)):
            c: ExploredWorld = thaw(parent)  # type: ignore[assignment]
            crash = CrashDuring(event, node, k, did[k - 1])
            self._crash_during(c, crash, entry)
            out.append((crash, c))
            self._origins[c] = (parent, crash, entry)

    def _not_remembered(self, event: Event | Recover, node: str) -> TxlibError:
        """The error when a step taken again from the same state of its node did
        something else (see :meth:`expand`)."""
        return TxlibError(
            f"{event.describe()} from the same state of {node} led to two different "
            f"states. The explorer assumes that what a node does on a message or a timeout "
            f"depends only on its own state and that message, as its states leave out time "
            f"and message ids; does a handler of {self.protocol.name!r} read the time "
            f"(ctx.now), a message's id or its send time?")

    def _check(self, w: ExploredWorld, base: Base, node: str, event: Event,
               entry: PendingEvent, number: int | str, effect: Effect,
               c: ExploredWorld) -> None:
        """Tests (``check_local``): the digest predicted from the remembered effect is
        the taken step's, and so is the judgement."""
        stand_in = self.memo.predict(w, base, Parent(w), event, entry, node, number, effect)
        if stand_in.digest != self.fingerprint(c):
            raise AssertionError(f"{event.describe()} from the same state of {node} led "
                                 "to two different states")
        if self._judged_by_parts and (
                (self.violations(stand_in), self.undecided(stand_in), self.decided(stand_in))
                != (self.violations(c), self.undecided(c), self.decided(c))):
            raise AssertionError(f"the state after {event.describe()} is judged "
                                 "differently from its parts and from its world")

    def materialize(self, candidate: ExploredWorld | Predicted) -> ExploredWorld | Predicted:
        """A new state as the search judges and keeps it: when it can be judged without
        its world (a commit protocol's own invariants only, see :meth:`violations`),
        a :class:`Predicted` stand-in itself (kept as its origin); otherwise its
        world."""
        if self._judged_by_parts:
            return candidate
        return self._world(candidate)

    def _world(self, candidate: ExploredWorld | Predicted) -> ExploredWorld:
        """The world a :class:`Predicted` successor stands for: its step taken."""
        if type(candidate) is not Predicted:
            return candidate
        parent, entry = candidate.parent, candidate.entry
        if isinstance(parent, Schedule):
            rebuilt = self._rebuild(parent)
            frozen = freeze(rebuilt)
            if entry is not None:  # a crash or a restart between steps takes none
                entry = entry_of(rebuilt, entry[1])
        else:
            frozen = parent.frozen()
        c: ExploredWorld = thaw(frozen)  # type: ignore[assignment]
        event = candidate.event
        if isinstance(event, (Crash, Drop, Partition, Heal, Recover)):
            self.apply(c, event)
        elif isinstance(event, CrashDuring):
            self._crash_during(c, event, entry)
        else:
            self.take(c, event, entry)
        self._origins[c] = (frozen, event, entry)
        return c

    # --- the state ----------------------------------------------------------------
    def fingerprint(self, w: ExploredWorld | Predicted | Schedule) -> int:
        """A 128-bit digest of the world's fingerprint, the budget used and the ghost
        (as an int: smaller than bytes).

        Each node's part of the fingerprint (:func:`~txlib.engine.snapshot.node_part`)
        is interned: its ``marshal`` bytes get a number, kept in the node's slot
        (``memo``) until the node changes, so only the nodes a step changed are looked
        at again. The messages in flight are interned the same way (by their keys,
        :func:`~txlib.explorer.actions.message_key`), remembered for the queue entries
        met lately. Each number has a 128-bit hash, and so has the rest of the
        fingerprint (whether it started, the partition, the fault plan's progress,
        the decision changes, the ghost; and with ``reorder=False`` the messages in
        each channel's order). The digest is their sum (:meth:`Memo.digest`): with
        ``reorder`` (the default) the messages in flight are a multiset, each copy
        counted. ``marshal`` format 0 writes a value the same way whatever objects hold
        it (no back-references, no interning marks), so two states get equal digests
        exactly when their fingerprints and ghosts are equal (but for a collision of
        128-bit digests, about 2**-128 for two states).
        """
        if type(w) is Predicted or isinstance(w, Schedule):
            return w.digest
        memo = self.memo
        node_id = memo.node_id
        ids = [slot.memo if slot.memo is not None else node_id(slot)
               for slot in w.nodes.values()]
        channels: Any = None
        numbers: list[int] = []
        if self.config.reorder:  # a multiset: the numbers of the keys
            message = memo.message
            timed: list[int] = []
            for entry in w.queue.heap:
                due = entry[2]
                if type(due) is Message:
                    numbers.append(message(entry)[2])
                elif type(due) is FaultDue:
                    timed.append(due.fault)
        else:  # each channel in sending order
            channels, timed = pending_part(w)
        groups = w.network.groups
        rest = memo.rest(w.started, None if groups is None else memo.sides(w),
                         progress_part(w, timed) if w.faults.faults else (),
                         tuple((n, a, b) for n, a, b, _ in w.instability), w.ghost(), channels)
        return memo.digest(ids, numbers, rest)

    def store(self, w: ExploredWorld | Predicted | Schedule) -> Frozen | Origin | Predicted:
        """What the search keeps of a state while it waits: where it came from (its
        parent's snapshot, shared with its siblings, and the step from there), or its
        own snapshot."""
        if type(w) is Predicted:
            parent = w.parent
            if isinstance(parent, Schedule):
                return w  # restored from its parent's schedule
            if isinstance(w.event, (Drop, Partition, Heal, Recover)):  # taken again
                return Origin(parent.frozen(), w.event, w.entry)
            used = parent.world.used
            if type(w.event) is Crash:
                used = one_more_crash(used)
            if self._schedules and self.schedulable(used) and parent.world.started:
                if parent.schedule is None:  # once for every successor kept so
                    world = parent.world
                    parent.schedule = schedule_of(world, self.memo, parent.frozen(),
                                                  self.fingerprint(world))
                entry = w.entry
                if entry is not None and type(entry[2]) is Message:  # as the schedule has it
                    w.entry = (entry[0], entry[1], self.memo.message(entry)[2])
                w.parent = parent.schedule
                return w
            return Origin(parent.frozen(), w.event, w.entry)
        if isinstance(w, Schedule):
            return freeze(self._rebuild(w))
        origin = self._origins.pop(w, None)
        if origin is None:
            return freeze(w)
        self.release(w)
        return Origin(*origin)

    def restore(self, stored: Frozen | Origin | Predicted) -> ExploredWorld | Schedule:
        """The state back: thawed from its snapshot, or its parent's snapshot thawed
        and the same step taken again (the same queue entry: the same world), or, for a
        state with no fault left to make but crashes and restarts, its schedule (see
        :meth:`store`)."""
        if type(stored) is Predicted:
            return advance(stored, self.participants)
        if not isinstance(stored, Origin):
            return thaw(stored)  # type: ignore[return-value]  # snapshots of explored worlds
        self.memo.trim()  # before the step: the messages it sends are remembered
        w: ExploredWorld = thaw(stored.parent)  # type: ignore[assignment]
        action, entry = stored.action, stored.entry
        if type(action) is CrashDuring:
            self._crash_during(w, action, entry)
        elif type(action) in FAULT_TYPES:
            self.apply(w, action)
        elif entry is None:
            self.take(w, action, entry)  # type: ignore[arg-type]
        else:
            self._settled(w, entry, self._numbers.get(id(action)))  # Delivers are kept
        return w

    def _settled(self, w: ExploredWorld, entry: PendingEvent,
                 number: int | None = None) -> None:
        """Take the delivery or timeout of queue ``entry`` (``number``: its message's
        number, if known), giving the acting node its part number from the effect
        remembered for it, if any (see :meth:`expand`)."""
        due = entry[2]
        node = due.dst if type(due) is Message else due.node  # type: ignore[union-attr]
        before = w.nodes[node]
        memo = self.memo
        key = None
        if before.up and not w.faults.faults and self.config.reorder:
            step: int | str = (due.name if type(due) is TimerDue
                               else number if number is not None else memo.message(entry)[2])
            key = (memo.node_id(before), step, node in w.votes, memo.sides(w))
        seq = w.queue.seq
        w.execute(entry)
        effect = memo.effects.get(key) if key is not None else None
        if effect is not None:
            slot = w.nodes[node]
            if slot.memo is None:
                slot.memo = effect.after
            if effect.order and not self.check_local:
                memo.sent(w, seq, effect)

    def violations(self, w: ExploredWorld | Predicted | Schedule) -> list[tuple[str, str]]:
        if not isinstance(w, ExploredWorld):  # judged by its parts (when _judged_by_parts)
            if type(w) is Predicted and w.quiet:
                return []
            facts = self.memo.facts
            return self._commit.judge(  # type: ignore[union-attr]
                zip(self.nodes, (facts[n][1] for n in w.ids), strict=True), w.changes,
                w.invalid)
        out = self.builtin(w)
        for name, check in self.custom:
            try:
                reason = check(w)
            except Exception as exc:  # the learner's own function: say which, plainly
                raise TxlibError(f"the invariant {name} raised {type(exc).__name__}: {exc}"
                                 ) from exc
            if reason is None or reason == "":
                continue  # it holds
            if not isinstance(reason, str):
                raise TxlibError(
                    f"the invariant {name} returned {shown(reason)}: an invariant returns a "
                    "reason (a string) when the state breaks it, and None when it holds "
                    "(not True or False)")
            out.append((name, reason))
        return out

    def release(self, w: ExploredWorld | Predicted | Schedule) -> None:
        """Break the world's reference cycles (world -> slot -> context -> world)."""
        if type(w) is Predicted or isinstance(w, Schedule):
            return
        for slot in w.nodes.values():
            slot.ctx = None  # type: ignore[assignment]  # the world is never used again

    def is_fault(self, action: Hashable) -> bool:
        return type(action) in FAULT_TYPES

    def undecided(self, w: ExploredWorld | Predicted | Schedule) -> int:
        mask = 0
        if not isinstance(w, ExploredWorld):
            facts, ids, at = self.memo.facts, w.ids, self.memo.position
            for p, i in self._index.items():
                up, decision = facts[ids[at[p]]]
                if up and decision is None:
                    mask |= 1 << i
            return mask
        for p, i in self._index.items():
            slot = w.nodes[p]
            if slot.up and slot.decision is None:
                mask |= 1 << i
        return mask

    def decided(self, w: ExploredWorld | Predicted | Schedule) -> int:
        mask = 0
        if not isinstance(w, ExploredWorld):
            facts, ids, at = self.memo.facts, w.ids, self.memo.position
            for p, i in self._index.items():
                if facts[ids[at[p]]][1] is not None:
                    mask |= 1 << i
            return mask
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


def _protocol_of(target: str | Protocol | Scenario | Run | SagaDefinition,
                 ) -> tuple[Protocol, Scenario | None]:
    if isinstance(target, Run):  # as the lab takes a run: its scenario
        target = target.scenario
    elif isinstance(target, Saga):  # a saga of your own: its scenario
        target = target.scenario()
    elif isinstance(target, SagaDefinition):
        raise TxlibError(f"explore takes a protocol or a scenario, not a saga definition; "
                         f"explore('saga', saga={target.name!r}) explores saga {target.name}")
    if isinstance(target, Scenario):
        return get_protocol(target.protocol), target
    if isinstance(target, Protocol):
        if PROTOCOLS.get(target.name) is None:
            raise TxlibError(f"protocol {target.name!r} is not registered; give a Protocol "
                             f"whose name is one of {sorted(PROTOCOLS)}")
        return target, None
    return get_protocol(target), None


def default_participants(proto: Protocol) -> tuple[str, ...]:
    """Whom a search takes when none are named: two participants for a commit protocol
    (the state space grows fast with them), the protocol's own otherwise (a saga's
    services: no names)."""
    return participant_names(2) if isinstance(proto, CommitProtocol) else ()


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
# unless given another budget: about 150 MB and 10 to 15 s on this project's 2-core
# machine (3PC, Paxos Commit and 2PC with crashes, restarts or partitions; measured with
# benchmarks/explore.py's big search), where a learner still waits.
DEFAULT_MAX_STATES = 200_000
MAX_PARTICIPANTS = 8


def _check_participant_count(names: Sequence[str]) -> None:
    """A TxlibError if the explorer is asked for more than :data:`MAX_PARTICIPANTS`
    participants, given by count, by name or in a scenario."""
    if len(names) > MAX_PARTICIPANTS:
        raise TxlibError(f"the explorer takes at most {MAX_PARTICIPANTS} participants "
                         f"(states grow exponentially with them), got {len(names)}")


# explore's own keyword arguments (an unknown keyword is suggested among them and the
# protocol's options)
# Options of timed runs only (with every protocol's own timeouts, see TIMING_SUFFIXES):
# given to explore, they would change nothing (a scenario's own are kept for its timed
# runs, and ignored here).
TIMED_OPTIONS = frozenset({"latency_min", "latency_max", "delay_by", "horizon", "max_steps"})
# Faults that only change when messages arrive: the explorer tries every order anyway.
TIMING_FAULTS = frozenset({"delay", "slow"})
EXPLORE_KEYWORDS: tuple[str, ...] = (
    "participants", "max_crashes", "max_drops", "partitions", "recoveries", "timeouts",
    "max_depth", "invariants", "blocking", "max_states", "max_seconds", "stop_on_violation",
    "progress",
)


def _check_keywords(proto: Protocol, options: Mapping[str, Any]) -> None:
    """A TxlibError for a keyword that is neither one of explore's nor an option of
    ``proto``, suggesting the nearest of both (``max_state``: ``max_states``)."""
    valid = proto.config_class.option_names()
    for key in options:
        if key not in valid:
            raise TxlibError(
                f"unknown keyword or option {shown(key)}"
                f"{suggestion(key, [*EXPLORE_KEYWORDS, *valid])}; explore takes "
                f"{choices(EXPLORE_KEYWORDS)}, and {proto.name}'s options: {choices(valid)}")


def explore(
    protocol: str | Protocol | Scenario | Run | SagaDefinition = "2pc",
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
    (e.g. a variant with changed roles, whose ``name`` is registered), a
    :class:`Scenario` (its participants, options and fault plan are used; ``at_time``
    faults are refused), a :class:`~txlib.Run` (its scenario) or a saga of your own
    (:class:`~txlib.Saga`: its scenario). ``participants`` defaults to 2 for a commit
    protocol (keep it small: the state space grows fast) and to the protocol's own
    otherwise (a saga's services). ``max_crashes``, ``max_drops``, ``partitions`` and
    ``recoveries`` set the fault budget (``max_crashes`` may map roles to how many of
    their nodes may be down at once, e.g. ``{"coordinator": 1, "acceptor": 1}``, see
    :func:`crash_budget`); ``timeouts`` is ``"synchronous"`` or ``"asynchronous"`` (see
    the module docstring). ``invariants`` (None: the protocol's own) lists names of a
    commit protocol's invariants (:data:`txlib.properties.INVARIANTS`) and functions of
    the world returning a reason (a string) when the state breaks them and None (or
    ``""``) when it holds (anything else, True or False too, is a TxlibError); any other
    protocol is always checked against all of its own invariants, plus the functions
    given. ``max_states``, ``max_seconds`` and ``max_depth`` bound the search, which
    then says it is incomplete; ``max_states`` defaults to :data:`DEFAULT_MAX_STATES`,
    and with ``timeouts="asynchronous"`` and none of the three given, ``max_depth``
    defaults to :data:`ASYNC_DEPTH` (20). A search also stops, incomplete, before the
    machine runs out of memory (:mod:`txlib.engine.memory`). ``progress``: None shows a
    progress bar in a terminal or a notebook if the search lasts, True always, False
    never. Other keyword arguments are protocol options, as for :func:`txlib.simulate`
    (a keyword that is neither is a TxlibError suggesting the nearest of both); the
    protocol's :attr:`~txlib.protocols.base.Protocol.explore_options` (the bounds that
    make its state space finite) apply unless given here or in the scenario.

    Returns an :class:`~txlib.explorer.search.Exploration`: distinct states, transitions,
    depth, time, whether it was complete, each invariant's shortest violation, and (for
    a protocol whose roster has nodes that must decide) the blocking states with a
    shortest path to one. A protocol whose invariants need a trace cannot be explored:
    a TxlibError says so.
    """
    proto, base = _protocol_of(protocol)
    _check_keywords(proto, options)
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
        _check_participant_count(base.participants)
        bounds = {k: v for k, v in proto.explore_options.items() if k not in base.options}
        scenario = replace(base, options={**base.options, **bounds}) if bounds else base
    else:
        if participants is None:
            names = default_participants(proto)
        else:
            names = participant_names(participants)
            _check_participant_count(names)
        scenario = Scenario(proto.name, names, options={**proto.explore_options, **options})
    timed = sorted(k for k in options if k in TIMED_OPTIONS or k.endswith(TIMING_SUFFIXES))
    if timed:
        raise TxlibError(f"the explorer ignores time, so option {', '.join(timed)} would "
                         "change nothing: leave it out (timing is for timed runs: simulate and "
                         "the lab)")
    config = scenario.config_of(proto)
    if getattr(config, "loss", 0) or getattr(config, "duplicate", 0) or getattr(
            config, "delay", 0):
        raise TxlibError("the explorer makes every choice itself: set loss, duplicate and "
                         "delay to 0 (it tries every order of delivery, and max_drops loses "
                         "messages)")
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
    if max_states is None:
        max_states = DEFAULT_MAX_STATES
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
