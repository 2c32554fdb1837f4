"""The built-in ``database`` component: one actor owning the SQLite connection and the EDN file.

* :class:`DatabaseComponent` and its settings :class:`DatabaseConfig`
  (``[components.database]``);
* :class:`Store` (``rt.get(Store)``): the typed facade application code uses;
* the messages it handles, for sending them directly with ``ask``;
* :data:`MISSING`, the ``default`` that tells an absent key from a ``None`` value;
* the change feed's :class:`ChangeEvent`, :class:`Watch` and
  :class:`Subscription`, and :class:`DatabaseStatistics`;
* bulk loads and stored-text reads (the migrator's way in):
  :class:`DatabaseLink`, :class:`LoadRows` and :func:`open_sqlite_owner`;
* the operator commands' messages: :class:`WriteEdnFirst`, :class:`CountHistory`,
  :class:`LevelledEdn`, :class:`LastSeq`, :class:`RevertPlan`.
"""

from __future__ import annotations

from garrison.components.database._actor import DatabaseComponent
from garrison.components.database._attribute_feed import AttributeWatch
from garrison.components.database._bulk import (
    DatabaseLink,
    LoadResult,
    LoadRows,
    open_sqlite_owner,
)
from garrison.components.database._config import DatabaseConfig
from garrison.components.database._facade import Store, Watch
from garrison.components.database._feed import ChangeEvent, Subscription
from garrison.components.database._live import COALESCE_INTERVAL, LiveQuery
from garrison.components.database._lock import DatabaseLock
from garrison.components.database._messages import (
    Backup,
    Changes,
    Clear,
    Count,
    Delete,
    DeleteMany,
    Events,
    Find,
    Flush,
    Get,
    GetAsOf,
    GetMany,
    GetStatistics,
    History,
    Put,
    PutIfVersion,
    PutMany,
    Query,
    Restore,
    Revert,
    Scan,
    SetMode,
    Subscribe,
    WatchAttributes,
)
from garrison.components.database._operator import (
    CheckSchema,
    CountHistory,
    LastSeq,
    LevelledEdn,
    ReindexKinds,
    RevertPlan,
    WriteEdnFirst,
)
from garrison.components.database._statistics import DatabaseStatistics
from garrison.stores import MISSING

__all__ = [
    "AttributeWatch",
    "DatabaseLock",
    "MISSING",
    "ChangeEvent",
    "DatabaseComponent",
    "DatabaseLink",
    "LoadResult",
    "LoadRows",
    "open_sqlite_owner",
    "DatabaseConfig",
    "DatabaseStatistics",
    "COALESCE_INTERVAL",
    "LiveQuery",
    "Store",
    "Subscription",
    "Watch",
    # messages
    "Backup",
    "Changes",
    "Clear",
    "Count",
    "Delete",
    "DeleteMany",
    "Events",
    "Query",
    "Find",
    "Flush",
    "Get",
    "GetAsOf",
    "GetMany",
    "GetStatistics",
    "History",
    "Put",
    "PutIfVersion",
    "PutMany",
    "Restore",
    "Revert",
    "Scan",
    "SetMode",
    "Subscribe",
    "WatchAttributes",
    # the operator commands' messages
    "CountHistory",
    "LastSeq",
    "LevelledEdn",
    "ReindexKinds",
    "CheckSchema",
    "RevertPlan",
    "WriteEdnFirst",
]
