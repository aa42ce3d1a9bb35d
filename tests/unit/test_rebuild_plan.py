"""How a rebuild splits the partitions of dossier.events between its worker processes."""

from __future__ import annotations

from ops.rebuild import split
from ops.rebuild_worker import Span


def test_partitions_are_split_into_groups_of_about_the_same_size():
    spans = [Span(p, 0, n) for p, n in enumerate([900, 100, 500, 500, 0, 300])]
    groups = split(spans, 2)
    assert sorted(sum(s.records for s in g) for g in groups) == [1100, 1200]
    assert sorted(s.partition for g in groups for s in g) == list(range(6))
    assert len(split(spans, 10)) == 6 and len(split(spans[:1], 3)) == 1
