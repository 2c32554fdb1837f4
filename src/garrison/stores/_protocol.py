"""The interface every key-value store in garrison offers.

:class:`EdnFileStore`, :class:`SqliteStore` and the :class:`ModeRouter` in
front of them all implement :class:`KeyValueStore`, so the database component
and the migrator talk to any of them the same way.

Keys are *key texts* (see :mod:`garrison.stores._keys`): ``"presence/s-1"``
stands for the keyword ``:presence/s-1``. Values are any EDN value or plain
Python value (see :mod:`garrison.edn._types` for the mapping).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Final, Protocol, TypeVar, runtime_checkable

if TYPE_CHECKING:
    from collections.abc import Iterable, Sequence

__all__ = ["MISSING", "KeyValueStore", "Missing"]

T = TypeVar("T")


class Missing:
    """The type of :data:`MISSING`, the "no such key" marker (``None`` is a value: nil)."""

    __slots__ = ()
    _instance: Missing | None = None

    def __new__(cls) -> Missing:
        if cls._instance is None:
            cls._instance = super().__new__(cls)
        return cls._instance

    def __repr__(self) -> str:
        return "MISSING"

    def __bool__(self) -> bool:
        return False

    def __reduce__(self) -> str:
        return "MISSING"


#: Passed as ``default`` to tell an absent key from a key whose value is ``None``.
MISSING: Final = Missing()


@runtime_checkable
class KeyValueStore(Protocol):
    """What every store offers. All methods are coroutines; none blocks the loop."""

    async def get(self, key: str, default: Any = None) -> Any:
        """The value of ``key``, or ``default`` when there is none."""
        ...

    async def get_many(self, keys: Sequence[str]) -> dict[str, Any]:
        """The values of those ``keys`` that exist (absent keys are left out)."""
        ...

    async def put(self, key: str, value: Any) -> None:
        """Set ``key`` to ``value``."""
        ...

    async def put_many(self, items: Iterable[tuple[str, Any]]) -> None:
        """Set many keys at once; all or nothing where the store is transactional."""
        ...

    async def delete(self, key: str) -> bool:
        """Remove ``key``; ``True`` if it existed."""
        ...

    async def delete_many(self, keys: Iterable[str]) -> int:
        """Remove many keys; the number that existed."""
        ...

    async def scan(
        self, prefix: str = "", *, after: str | None = None, limit: int | None = None
    ) -> list[tuple[str, Any]]:
        """Entries whose key text starts with ``prefix``, in key order.

        ``after`` (exclusive) and ``limit`` paginate: pass the last key of one
        page as ``after`` to get the next. A namespace scan is ``prefix="ns/"``.
        """
        ...

    async def keys(self, prefix: str = "") -> list[str]:
        """All key texts starting with ``prefix``, in key order."""
        ...

    async def count(self, prefix: str = "") -> int:
        """How many keys start with ``prefix``."""
        ...

    async def clear(self, prefix: str = "") -> int:
        """Remove every entry whose key text starts with ``prefix``; return how many."""
        ...

    async def aclose(self) -> None:
        """Flush and release resources. Idempotent."""
        ...
