"""The worker folds each input record once, in offset order, and never skips one (streams.state.OffsetGuard)."""

from streams.state import OffsetGuard


def test_in_order_records_pass_and_redelivered_ones_are_known():
    guard = OffsetGuard()
    guard.reset({0: 9})  # the table holds the effects of offsets up to 9
    assert guard.gaps([(0, 8), (0, 9), (0, 10), (0, 11)]) == []
    assert [guard.admit(0, o) for o in (8, 9, 10, 11, 11)] == [False, False, True, True, False]


def test_gaps_name_the_missing_offsets_per_partition():
    guard = OffsetGuard()
    guard.reset({0: 9, 1: 4, 2: None})
    # partition 0 misses 11 and 13..14; partition 1 is whole; partition 2 has no stored offset yet
    assert guard.gaps([(0, 10), (0, 12), (1, 5), (2, 40), (0, 15), (0, 14), (1, 6)]) == [(0, 11, 12), (0, 13, 15)]
    assert guard.expected == {0: 10, 1: 5}  # finding gaps moves nothing


def test_a_batch_that_starts_past_the_stored_offset_is_a_gap():
    guard = OffsetGuard()
    guard.reset({3: 1074})  # what the previous owner stored; its commit went further
    assert guard.gaps([(3, 1080), (3, 1081)]) == [(3, 1075, 1080)]
