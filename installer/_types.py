"""Small shared value types: where a setting came from, and its effective value."""

from __future__ import annotations

from installer._record import record

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Literal, NewType

    NormalizedName = NewType("NormalizedName", str)
    OriginKind = Literal[
        "default", "ambient", "site", "user", "project", "config-file", "env", "flag"
    ]
else:  # typing costs start-up time; these are only for the type checker
    NormalizedName = str
    OriginKind = str

#: Layers from lowest to highest precedence; merging walks this order.
LAYER_ORDER: tuple[OriginKind, ...] = (
    "default", "ambient", "site", "user", "project", "config-file", "env", "flag"
)


@record
class Origin:
    """Where a value came from: a layer kind plus the file and line, env var or flag."""

    kind: OriginKind
    path: str | None = None
    line: int | None = None
    name: str | None = None  # env var name or flag spelling
    section: str | None = None  # TOML table in a file ("global", "install", "tool.inst.global")

    def __str__(self) -> str:
        if self.kind == "default":
            return "default"
        if self.kind in ("ambient", "env"):
            return f"env {self.name}"
        if self.kind == "flag":
            return f"flag {self.name}"
        where = self.path or "?"
        if self.line is not None:
            where += f":{self.line}"
        return f"{where} [{self.section}]" if self.section else where


@record
class Setting:
    """An effective value, its origin, and the (value, origin) pairs it shadows, highest first."""

    key: str
    value: object
    origin: Origin
    shadowed: tuple[tuple[object, Origin], ...] = ()
