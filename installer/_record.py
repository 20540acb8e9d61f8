"""Records (frozen by default) without importing :mod:`dataclasses`.

``dataclasses`` pulls in ``inspect`` (and ``ast``, ``dis``): about 7 ms, plus ~0.3 ms per class
to build its methods, paid by every ``inst`` run. Issue 7 wants ``inst config get`` under 2x
``python -c pass`` and a no-op install under 2x that + 50 ms, so the modules on those paths
declare their value objects with :func:`record`, which generates the same ``__init__``,
``__repr__``, ``__eq__`` and ``__hash__`` as ``@dataclass`` (one small ``exec`` per class, so
instances are as cheap to make as dataclass instances). mypy sees it as a dataclass through
PEP 681 ``dataclass_transform``.
"""

from __future__ import annotations

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable
    from typing import Any, TypeVar, overload

    from typing_extensions import dataclass_transform

    T = TypeVar("T")
else:
    def dataclass_transform(**_kw):
        return lambda f: f


class _Missing:
    __slots__ = ()

    def __repr__(self) -> str:
        return "MISSING"


MISSING: Any = _Missing()


class _Field:
    __slots__ = ("default", "factory", "repr")

    def __init__(self, default: object, factory: object, repr: bool) -> None:
        self.default, self.factory, self.repr = default, factory, repr


if TYPE_CHECKING:
    @overload
    def field(*, default: T, repr: bool = True) -> T: ...

    @overload
    def field(*, default_factory: Callable[[], T], repr: bool = True) -> T: ...


def field(*, default: Any = MISSING, default_factory: Any = MISSING,
          repr: bool = True) -> Any:
    """A field with a *default* or a *default_factory* (made fresh for each instance), or one
    left out of ``repr`` (like :func:`dataclasses.field`)."""
    return _Field(default, default_factory, repr)


def _specs(cls: type) -> dict[str, _Field]:
    """Every field of *cls*, base classes' first, as the class body declared it."""
    specs: dict[str, _Field] = dict(getattr(cls, "__record_fields__", {}))
    for name, annotation in cls.__dict__.get("__annotations__", {}).items():  # noqa: RUF063
        if str(annotation).startswith(("ClassVar", "typing.ClassVar")):
            continue
        value = cls.__dict__.get(name, MISSING)
        specs.pop(name, None)  # a redeclared field moves to the end, as in dataclasses
        specs[name] = value if isinstance(value, _Field) else _Field(value, MISSING, True)
    return specs


@dataclass_transform(frozen_default=True, field_specifiers=(field,))
def record(cls: type[T] | None = None, *, frozen: bool = True, eq: bool = True) -> Any:
    """Give *cls* ``__init__``, ``__repr__``, ``__eq__`` (unless ``eq=False``) and, when
    frozen, ``__hash__`` and a ``__setattr__`` that refuses."""

    def wrap(klass: type[T]) -> type[T]:
        _build(klass, frozen, eq)
        return klass

    return wrap if cls is None else wrap(cls)


def _init_source(specs: dict[str, _Field], frozen: bool) -> tuple[str, dict[str, object]]:
    params, body = ["self"], []
    env: dict[str, object] = {"_MISSING": MISSING, "_set": object.__setattr__}
    for name, spec in specs.items():
        if spec.factory is not MISSING:
            env[f"_f_{name}"] = spec.factory
            params.append(f"{name}=_MISSING")
            body.append(f"    if {name} is _MISSING: {name} = _f_{name}()")
        elif spec.default is not MISSING:
            env[f"_d_{name}"] = spec.default
            params.append(f"{name}=_d_{name}")
        else:
            params.append(name)
        body.append(f"    _set(self, {name!r}, {name})" if frozen else f"    self.{name} = {name}")
    source = f"def __init__({', '.join(params)}):\n" + ("\n".join(body) or "    pass")
    return source, env


def _build(klass: type, frozen: bool, eq: bool) -> None:
    specs = _specs(klass)
    for name, spec in specs.items():
        if name in klass.__dict__ and isinstance(klass.__dict__[name], _Field):
            if spec.default is MISSING:
                delattr(klass, name)
            else:
                setattr(klass, name, spec.default)
    names = tuple(specs)
    source, env = _init_source(specs, frozen)
    own = tuple(f"self.{n}" for n in names)
    other = tuple(f"other.{n}" for n in names)
    shown = " + ', ' + ".join(f"'{n}=' + repr(self.{n})" for n in names if specs[n].repr)
    source += (f"\ndef __repr__(self):\n    return self.__class__.__qualname__ + '(' + "
               f"{shown or repr('')} + ')'\n"
               f"def __eq__(self, other):\n    if other.__class__ is not self.__class__:\n"
               f"        return NotImplemented\n    return ({', '.join(own)},) == "
               f"({', '.join(other)},)\n"
               f"def __hash__(self):\n    return hash(({', '.join(own)},))\n")
    exec(source, env)
    klass.__record_fields__ = specs  # type: ignore[attr-defined]
    klass.__init__ = env["__init__"]  # type: ignore[misc]
    klass.__repr__ = env["__repr__"]  # type: ignore[assignment,method-assign]
    if eq:
        klass.__eq__ = env["__eq__"]  # type: ignore[assignment,method-assign]
        klass.__hash__ = env["__hash__"] if frozen else None  # type: ignore[assignment]
    if frozen:
        def __setattr__(self: Any, name: str, value: object) -> None:
            raise AttributeError(f"{klass.__name__} is frozen; use a new instance")

        def __delattr__(self: Any, name: str) -> None:
            raise AttributeError(f"{klass.__name__} is frozen; use a new instance")

        klass.__setattr__ = __setattr__  # type: ignore[method-assign,assignment]
        klass.__delattr__ = __delattr__  # type: ignore[method-assign,assignment]


def replace(obj: T, **changes: object) -> T:
    """A copy of the record *obj* with *changes* applied (like dataclasses.replace)."""
    values = {n: getattr(obj, n) for n in type(obj).__record_fields__}  # type: ignore[attr-defined]
    values.update(changes)
    return type(obj)(**values)
