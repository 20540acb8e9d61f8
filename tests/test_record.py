"""installer._record: the dataclass stand-in used on the start-up path."""

from __future__ import annotations

import pytest

from installer._record import field, record, replace


@record
class Point:
    x: int
    y: int = 0
    tags: list[str] = field(default_factory=list)


@record(frozen=False)
class Box:
    size: int


def test_init_defaults_and_fresh_factories() -> None:
    a, b = Point(1), Point(1, 2)
    assert (a.x, a.y, b.y) == (1, 0, 2)
    assert a.tags == [] and a.tags is not Point(3).tags


def test_frozen_equality_hash_repr_replace() -> None:
    p = Point(1, 2)
    with pytest.raises(AttributeError):
        p.x = 5  # type: ignore[misc]
    assert p == Point(x=1, y=2) and p != Point(1, 3)
    assert hash(Point(1, 2, ["a"]).x) == hash(1)
    assert repr(p) == "Point(x=1, y=2, tags=[])"
    assert replace(p, y=9) == Point(1, 9)


def test_mutable_record_and_errors() -> None:
    box = Box(1)
    box.size = 2
    assert box.size == 2
    with pytest.raises(TypeError):
        Point()  # type: ignore[call-arg]
    with pytest.raises(TypeError):
        Point(1, x=2)  # type: ignore[misc]
