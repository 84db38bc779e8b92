"""The live state of a fault plan during one run: what is armed, active, used, or fired."""

from __future__ import annotations

from collections import defaultdict

from .faults import ANY_NODE, MESSAGE_FAULTS, NODE_MARKS, STEP_MARKS, Fault, Trigger
from .records import Message


class FaultPlanState:
    """Tracks each fault of a plan: when it is due, whether it fired or had an effect."""

    def __init__(self, faults: tuple[Fault, ...]) -> None:
        self.faults = faults
        self.fired = [False] * len(faults)
        self.used = [0] * len(faults)
        self.no_effect: dict[int, str] = {}
        self.remaining = [f.count for f in faults]
        self.by_step: dict[int, list[int]] = defaultdict(list)
        self.waiting: list[tuple[int, Trigger]] = []
        self.active_messages: list[int] = []
        self.marks: dict[tuple[str, str], int] = {}
        self.step_failures: list[int] = []
        self.at_time: list[int] = []
        for i in range(len(faults)):
            self._arm(i)

    def _arm(self, index: int) -> None:
        """Make fault ``index`` wait for its moment, as the plan has it from the start
        (an untimed message fault or mark is on at once)."""
        f = self.faults[index]
        if f.at_step is not None:
            self.by_step[f.at_step].append(index)
        elif f.at_time is not None:
            self.at_time.append(index)
        elif f.when is not None:
            self.waiting.append((index, f.when))
        elif f.kind in MESSAGE_FAULTS or f.kind in NODE_MARKS or f.kind in STEP_MARKS:
            self.activate(index)

    def copy(self) -> FaultPlanState:
        """An independent copy of this plan's progress (the faults themselves are
        shared)."""
        new = object.__new__(FaultPlanState)
        new.__dict__.update(self.__dict__)
        new.fired = self.fired.copy()
        new.used = self.used.copy()
        new.no_effect = self.no_effect.copy()
        new.remaining = self.remaining.copy()
        new.by_step = defaultdict(list, {k: v.copy() for k, v in self.by_step.items()})
        new.waiting = self.waiting.copy()
        new.active_messages = self.active_messages.copy()
        new.marks = self.marks.copy()
        new.step_failures = self.step_failures.copy()
        new.at_time = self.at_time.copy()
        return new

    def plus(self, fault: Fault) -> FaultPlanState:
        """A copy of this plan's progress with ``fault`` added at the end of the plan,
        armed as if it had been there from the start: what the plan with ``fault``
        would hold now, if ``fault`` could not have fired yet (the caller knows)."""
        new = self.copy()
        new.add(fault)
        new._arm(len(new.faults) - 1)
        return new

    def add(self, fault: Fault) -> int:
        """Add ``fault`` to the plan during the run (the world applies it at once,
        whatever its timing says); returns its index."""
        self.faults = (*self.faults, fault)
        self.fired.append(False)
        self.used.append(0)
        self.remaining.append(fault.count)
        return len(self.faults) - 1

    def activate(self, index: int) -> None:
        """Turn on a message fault or node mark (one-shots are applied by the world)."""
        f = self.faults[index]
        self.fired[index] = True
        if f.kind in MESSAGE_FAULTS:
            self.active_messages.append(index)
        elif f.kind in NODE_MARKS:
            assert f.node is not None
            self.marks[(f.node, f.kind)] = index
        elif f.kind in STEP_MARKS:
            self.step_failures.append(index)

    def has_mark(self, node: str, kind: str) -> bool:
        index = self.marks.get((node, kind))
        if index is None:
            return False
        self.used[index] += 1
        return True

    def mark_value(self, node: str, kind: str) -> int:
        index = self.marks.get((node, kind))
        if index is None:
            return 0
        self.used[index] += 1
        return self.faults[index].by or 0

    def step_fails(self, step: str, compensation: bool) -> bool:
        """True if an active fail_step fault makes this attempt of ``step`` (or of its
        compensation) fail; a transient one is used up."""
        for index in self.step_failures:
            f = self.faults[index]
            if f.step != step or f.compensation != compensation:
                continue
            left = self.remaining[index]
            if left is not None and left <= 0:
                continue
            self.used[index] += 1
            if left is not None:
                self.remaining[index] = left - 1
            return True
        return False

    def match(self, kind: str, msg: Message) -> Fault | None:
        """The first active ``kind`` fault matching ``msg``, consuming one of its count."""
        for index in self.active_messages:
            f = self.faults[index]
            if f.kind != kind:
                continue
            if (f.type is not None and f.type != msg.type) or (
                f.src is not None and f.src != msg.src) or (
                f.dst is not None and f.dst != msg.dst):
                continue
            self.used[index] += 1
            left = self.remaining[index]
            if left is not None:
                self.remaining[index] = left - 1
                if left == 1:
                    self.active_messages.remove(index)
            return f
        return None

    def triggered(self, action: str, node: str, what: str, peer: str | None) -> list[int]:
        """Faults whose trigger matches this action; they are removed from waiting."""
        hits: list[int] = []
        for entry in self.waiting:
            index, t = entry
            if t.action == action and t.what == what and t.node in (node, ANY_NODE) and (
                t.peer in (None, ANY_NODE) or t.peer == peer
            ):
                hits.append(index)
        if hits:
            self.waiting = [e for e in self.waiting if e[0] not in hits]
        return hits

    def unfired(self, last_step: int, end_time: int, stopped_by: str) -> list[tuple[Fault, str]]:
        """Faults that never happened or had no effect, each with the reason."""
        out: list[tuple[Fault, str]] = []
        if not self.faults:
            return out
        end = f"the run ended at step {last_step}, time {end_time} ({stopped_by})"
        for i, f in enumerate(self.faults):
            if i in self.no_effect:
                out.append((f, self.no_effect[i]))
            elif not self.fired[i]:
                if f.at_step is not None and f.at_step <= last_step:  # the limit came first
                    out.append((f, f"the run stopped at its step limit before it: {end}"))
                elif f.at_step is not None:
                    out.append((f, f"step {f.at_step} never came: {end}"))
                elif f.at_time is not None:
                    out.append((f, f"time {f.at_time} never came: {end}"))
                else:
                    out.append((f, f"'{f.when}' never happened: {end}"))
            elif f.kind in MESSAGE_FAULTS and self.used[i] == 0:
                out.append((f, "no matching message was sent while it was active"))
            elif f.kind == "vote_no" and self.used[i] == 0:
                out.append((f, f"{f.node} was not asked to vote while marked to vote NO"))
            elif f.kind == "slow" and self.used[i] == 0:
                out.append((f, f"{f.node} sent no message"))
            elif f.kind == "fail_step" and self.used[i] == 0:
                what = "compensation of " if f.compensation else ""
                out.append((f, f"the {what}step {f.step} never ran while it was active"))
        return out


# The plan of every world without faults. It never changes (World.apply_fault replaces
# it with a plan of its own before adding a fault), so those worlds share it.
NO_FAULTS = FaultPlanState(())
