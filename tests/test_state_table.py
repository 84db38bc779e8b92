"""The search's compact table of visited states behaves as a dict of digests."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from txlib.explorer.table import SMALL, DigestTable, compact, state_table

digests = st.integers(min_value=0, max_value=2**128 - 1)


@given(st.lists(st.one_of(digests, st.sampled_from([0, 1, 2**64, 2**64 + 1, 2**128 - 1])),
                max_size=300))
def test_digest_table_agrees_with_a_dict(keys: list[int]) -> None:
    table, reference = DigestTable(capacity=4), {}
    for i, key in enumerate(keys):
        assert table.setdefault(key, i) == reference.setdefault(key, i)
    assert len(table) == len(reference)
    for key, sid in reference.items():  # every id survives the table's growth
        assert table.setdefault(key, -5) == sid


def test_digests_differing_only_in_their_high_half_are_two_states() -> None:
    table = DigestTable(capacity=8)
    low = 12345
    assert table.setdefault(low, 0) == 0
    assert table.setdefault(low | 1 << 64, 1) == 1  # same slot index, other high half
    assert table.setdefault(low | 1 << 127, 2) == 2
    assert table.setdefault(low | 1 << 64, 9) == 1
    assert len(table) == 3


def test_a_search_starts_with_a_dict() -> None:
    assert isinstance(state_table(), dict)


def test_digests_move_into_a_digest_table_once_there_are_many() -> None:
    small = {d * 2**100 + d: d for d in range(SMALL)}
    assert compact(small, True) is small
    many = {**small, 2**128 - 1: SMALL}
    table = compact(many, True)
    assert isinstance(table, DigestTable) and len(table) == len(many)
    for key, sid in many.items():
        assert table.setdefault(key, -5) == sid
    assert table.setdefault(7, len(many)) == len(many)  # and it goes on
    assert compact(table, True) is table
    assert compact(many, False) is many  # other fingerprints stay in a dict
