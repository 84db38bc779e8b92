"""The search's table of visited states: fingerprint -> state id, in as few bytes as it
can.

A model whose fingerprints are arbitrary hashable values (Lamport's TLA+ models: the
state itself) gets a plain dict. A model whose fingerprints are 128-bit digests (txlib's
worlds: :meth:`txlib.explorer.worlds.WorldModel.fingerprint`) gets a
:class:`DigestTable` once the search has met more than :data:`SMALL` states
(:func:`compact`): open addressing over three flat arrays, the digest's two 64-bit
halves and the state id, 20 bytes a slot, where a dict of Python ints holds a 48-byte
int key, a 32-byte int value and a 24-byte entry plus its index for each state. Until
then it is a dict too: a few hundred kilobytes at most, and its lookups run in C, where
the table's are a Python method (about a twentieth of a small search's time).
"""

from __future__ import annotations

from array import array
from collections.abc import Hashable
from typing import Protocol

_LOW = (1 << 64) - 1
_EMPTY = -1
SMALL = 1 << 12  # digests kept in a dict up to this many states (see compact)


class StateTable(Protocol):
    """What the search needs of its table."""

    def setdefault(self, key: Hashable, sid: int, /) -> int:
        """The id of ``key``'s state if it is in the table; else adds it as ``sid`` and
        returns ``sid``."""
        ...

    def __len__(self) -> int: ...


class DigestTable:
    """A set of 128-bit digests (ints in ``[0, 2**128)``), each with a state id.

    Linear probing, indexed by the digest's low bits (a digest is uniformly random, so
    they need no further mixing), grown to twice its size when three quarters full:
    27 to 53 bytes a state (a probe is a few array reads, cheap beside a step).
    """

    __slots__ = ("_hi", "_ids", "_lo", "_mask", "_size")

    def __init__(self, capacity: int = 1 << 12) -> None:
        if capacity & (capacity - 1) or capacity < 2:
            raise ValueError(f"capacity must be a power of two, got {capacity}")
        self._mask = capacity - 1
        self._size = 0
        self._lo = array("Q", bytes(8 * capacity))
        self._hi = array("Q", bytes(8 * capacity))
        self._ids = array("i", [_EMPTY]) * capacity

    def __len__(self) -> int:
        return self._size

    def setdefault(self, key: Hashable, sid: int, /) -> int:
        digest: int = key  # type: ignore[assignment]  # the model promises 128-bit ints
        lo = digest & _LOW
        hi = digest >> 64
        mask, ids, los, his = self._mask, self._ids, self._lo, self._hi
        i = lo & mask
        while True:
            found = ids[i]
            if found == _EMPTY:
                break
            if los[i] == lo and his[i] == hi:
                return found
            i = (i + 1) & mask
        ids[i] = sid
        los[i] = lo
        his[i] = hi
        self._size += 1
        if 4 * self._size > 3 * mask:
            self._grow()
        return sid

    @classmethod
    def of(cls, table: dict[int, int]) -> DigestTable:
        """A table holding the digests and ids of ``table``."""
        capacity = 1 << 12
        while 3 * capacity < 4 * (len(table) + 1):
            capacity *= 2
        new = cls(capacity)
        for digest, sid in table.items():
            new.setdefault(digest, sid)
        return new

    def _grow(self) -> None:
        """Twice the slots; every entry placed again."""
        old = zip(self._lo, self._hi, self._ids, strict=True)
        capacity = 2 * (self._mask + 1)
        self._mask = mask = capacity - 1
        los = self._lo = array("Q", bytes(8 * capacity))
        his = self._hi = array("Q", bytes(8 * capacity))
        ids = self._ids = array("i", [_EMPTY]) * capacity
        for lo, hi, sid in old:
            if sid == _EMPTY:
                continue
            i = lo & mask
            while ids[i] != _EMPTY:
                i = (i + 1) & mask
            ids[i] = sid
            los[i] = lo
            his[i] = hi


def state_table() -> StateTable:
    """The table a search starts with: a dict, for any model (:func:`compact` moves
    128-bit digests into a :class:`DigestTable` once there are many)."""
    return {}


def compact(table: StateTable, digests: bool) -> StateTable:
    """``table``, or, if the model's fingerprints are 128-bit ``digests`` and the dict
    holds more than :data:`SMALL` of them, a :class:`DigestTable` with the same
    contents (the search calls this from time to time)."""
    if digests and isinstance(table, dict) and len(table) > SMALL:
        return DigestTable.of(table)
    return table
