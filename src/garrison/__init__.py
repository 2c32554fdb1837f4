"""garrison: an asyncio actor-based component runtime.

An application declares components; a lifecycle supervisor starts them in
dependency order as actors that exchange messages, restarts them by policy,
reports their health, and stops them in reverse order.
"""

from __future__ import annotations

from garrison.config import GarrisonConfig, load_config
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
    RefusedWriteError,
    SchemaVersionError,
    ShutdownError,
    StartupError,
    StoreError,
    StoreLoadError,
    UnknownMessageError,
    ValidationError,
)
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
    "RefusedWriteError",
    "SchemaVersionError",
    "ShutdownError",
    "StartupError",
    "StoreError",
    "StoreLoadError",
    "UnknownMessageError",
    "ValidationError",
]
