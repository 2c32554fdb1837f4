"""garrison: an asyncio actor-based component runtime.

An application declares components; a lifecycle supervisor starts them in
dependency order as actors that exchange messages, restarts them by policy,
reports their health, and stops them in reverse order.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from garrison.exceptions import (
    ActorError,
    ActorStoppedError,
    AskTimeoutError,
    ChangesLostError,
    ConfigError,
    DeadlockError,
    EdnDepthError,
    EdnEncodeError,
    EdnError,
    EdnSyntaxError,
    EscalationError,
    FlushError,
    GarrisonError,
    LifecycleError,
    MailboxFullError,
    QueryError,
    RefusedWriteError,
    SchemaError,
    SchemaVersionError,
    ShutdownError,
    StartupError,
    StoreError,
    StoreLoadError,
    UnknownMessageError,
    ValidationError,
    VersionConflictError,
)

if TYPE_CHECKING:
    from garrison.config import GarrisonConfig, load_config
    from garrison.runtime import (
        Actor,
        ActorRef,
        ActorStatistics,
        Component,
        ComponentState,
        Envelope,
        Runtime,
        handler,
        open_actor,
        open_runtime,
    )

__version__ = "0.1.0.dev0"

__all__ = [
    "__version__",
    # runtime
    "Actor",
    "ActorRef",
    "ActorStatistics",
    "Component",
    "ComponentState",
    "Envelope",
    "GarrisonConfig",
    "Runtime",
    "handler",
    "load_config",
    "open_actor",
    "open_runtime",
    # errors
    "ActorError",
    "ActorStoppedError",
    "AskTimeoutError",
    "ChangesLostError",
    "ConfigError",
    "DeadlockError",
    "EdnDepthError",
    "EdnEncodeError",
    "EdnError",
    "EdnSyntaxError",
    "EscalationError",
    "FlushError",
    "GarrisonError",
    "LifecycleError",
    "MailboxFullError",
    "QueryError",
    "RefusedWriteError",
    "SchemaError",
    "SchemaVersionError",
    "ShutdownError",
    "StartupError",
    "StoreError",
    "StoreLoadError",
    "UnknownMessageError",
    "ValidationError",
    "VersionConflictError",
]

# The runtime and config names load on first use: ``garrison probe`` and
# ``garrison --help`` import ``garrison.cli`` (and so this package) but need
# neither, and importing the runtime costs several times the interpreter's start.
_LAZY = {
    "GarrisonConfig": "garrison.config",
    "load_config": "garrison.config",
    **dict.fromkeys(
        (
            "Actor",
            "ActorRef",
            "ActorStatistics",
            "Component",
            "ComponentState",
            "Envelope",
            "Runtime",
            "handler",
            "open_actor",
            "open_runtime",
        ),
        "garrison.runtime",
    ),
}


def __getattr__(name: str) -> object:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'garrison' has no attribute {name!r}")
    import importlib  # noqa: PLC0415 - only on first use of a lazy name

    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value
