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


@record(frozen=True, eq=False)
class Ident:
    name: str


@record
class Base:
    a: int
    b: dict[str, int] = field(default_factory=dict)


@record
class Child(Base):
    c: str = "c"
    secret: bytes = field(default=b"", repr=False)


def test_eq_false_keeps_identity() -> None:
    one, two = Ident("x"), Ident("x")
    assert one != two and one == one
    assert len({one, two}) == 2


def test_subclass_fields_defaults_and_repr() -> None:
    child = Child(1, {"k": 1}, "z", b"hidden")
    assert (child.a, child.b, child.c, child.secret) == (1, {"k": 1}, "z", b"hidden")
    assert repr(child) == "Child(a=1, b={'k': 1}, c='z')"
    assert Child(1).b == {} and Child(1).b is not Child(1).b
    assert replace(child, c="y") == Child(1, {"k": 1}, "y", b"hidden")
    assert child != Base(1, {"k": 1})  # another class is never equal
    with pytest.raises(AttributeError):
        del child.a  # type: ignore[misc]


def test_same_hash_as_a_dataclass() -> None:
    from dataclasses import dataclass

    @dataclass(frozen=True)
    class Twin:
        x: int
        y: int = 0

    @record
    class Pair:
        x: int
        y: int = 0

    assert hash(Pair(3, 4)) == hash(Twin(3, 4)) == hash((3, 4))
    assert hash(Pair(3, 4)) != hash(Pair(4, 3))
    assert {Pair(1): "a"}[Pair(1, 0)] == "a"
