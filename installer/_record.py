"""Frozen records without importing :mod:`dataclasses`.

``dataclasses`` pulls in ``inspect`` (and ``ast``, ``dis``): about 7 ms, a third of what
``inst config get`` may cost in total (issue 7: under 2x ``python -c pass``). The modules on
that path (options, _types, config, context, output) declare their value objects with
:func:`record` instead; mypy sees it as a dataclass through PEP 681 ``dataclass_transform``.
Everything off that path uses real dataclasses.
"""

from __future__ import annotations

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable
    from typing import Any, TypeVar

    from typing_extensions import dataclass_transform

    T = TypeVar("T")
else:
    def dataclass_transform(**_kw):
        return lambda f: f


class _Factory:
    __slots__ = ("make",)

    def __init__(self, make: Callable[[], object]) -> None:
        self.make = make


def field(*, default_factory: Callable[[], T]) -> T:
    """A field whose default is made fresh for each instance (like dataclasses.field)."""
    return _Factory(default_factory)  # type: ignore[return-value]


def _fields(cls: type) -> tuple[list[str], dict[str, object]]:
    names: list[str] = []
    defaults: dict[str, object] = {}
    for klass in reversed(cls.__mro__):
        for name, annotation in klass.__dict__.get("__annotations__", {}).items():  # noqa: RUF063
            if str(annotation).startswith("ClassVar"):
                continue
            if name not in names:
                names.append(name)
            if name in klass.__dict__:
                defaults[name] = klass.__dict__[name]
    return names, defaults


@dataclass_transform(frozen_default=True, field_specifiers=(field,))
def record(cls: type[T] | None = None, *, frozen: bool = True) -> Any:
    """Give *cls* ``__init__``, ``__repr__``, ``__eq__`` (and ``__hash__`` when frozen)."""

    def wrap(klass: type[T]) -> type[T]:
        _build(klass, frozen)
        return klass

    return wrap if cls is None else wrap(cls)


def _build(klass: type, frozen: bool) -> None:
    names, defaults = _fields(klass)
    for name, value in defaults.items():
        if isinstance(value, _Factory) and name in klass.__dict__:
            delattr(klass, name)

    def __init__(self: Any, *args: Any, **kwargs: Any) -> None:
        if len(args) > len(names):
            raise TypeError(f"{klass.__name__}() takes {len(names)} arguments")
        values = dict(zip(names[: len(args)], args, strict=True))
        for key, value in kwargs.items():
            if key not in names or key in values:
                raise TypeError(f"{klass.__name__}() got an unexpected or repeated {key!r}")
            values[key] = value
        for name in names:
            if name not in values:
                if name not in defaults:
                    raise TypeError(f"{klass.__name__}() missing argument {name!r}")
                default = defaults[name]
                values[name] = default.make() if isinstance(default, _Factory) else default
            object.__setattr__(self, name, values[name])

    def __repr__(self: Any) -> str:
        inner = ", ".join(f"{n}={getattr(self, n)!r}" for n in names)
        return f"{klass.__name__}({inner})"

    def __eq__(self: Any, other: object) -> bool:
        if other.__class__ is not self.__class__:
            return NotImplemented
        return all(getattr(self, n) == getattr(other, n) for n in names)

    klass.__init__ = __init__  # type: ignore[misc]
    klass.__repr__ = __repr__  # type: ignore[method-assign,assignment]
    klass.__eq__ = __eq__  # type: ignore[method-assign,assignment]
    if frozen:
        def __setattr__(self: Any, name: str, value: object) -> None:
            raise AttributeError(f"{klass.__name__} is frozen; use a new instance")

        def __hash__(self: Any) -> int:
            return hash(tuple(getattr(self, n) for n in names))

        klass.__setattr__ = __setattr__  # type: ignore[method-assign,assignment]
        klass.__hash__ = __hash__  # type: ignore[method-assign,assignment]
    else:
        klass.__hash__ = None  # type: ignore[assignment]


def replace(obj: T, **changes: object) -> T:
    """A copy of the record *obj* with *changes* applied (like dataclasses.replace)."""
    names, _ = _fields(type(obj))
    values = {n: getattr(obj, n) for n in names}
    values.update(changes)
    return type(obj)(**values)
