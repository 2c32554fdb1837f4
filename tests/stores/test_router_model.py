"""Model-based test of the ModeRouter: random operations checked against a plain dict.

Hypothesis drives random sequences of put / put_many / delete / clear, mode
switches, real SQLite failures (a trigger that RAISEs on every write, or the
connection closed under the store), repairs, rollbacks and restarts. After
every step, every read the router offers must agree with the model, in every
mode: no write that returned is ever lost, and a write that raised changed
nothing.
"""

from __future__ import annotations

import asyncio
import shutil
import tempfile
from pathlib import Path
from typing import Any

from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule

from garrison.edn import Keyword
from garrison.exceptions import StoreError, ValidationError
from garrison.stores import Mode
from garrison.stores._compare import same_value
from garrison.stores._protocol import MISSING
from garrison.stores._router import SQLITE_FAILURES
from tests.stores.test_router import Sides, break_sqlite_writes, heal_sqlite_writes

KEYS = ["a/1", "a/2", "b/1", "b/2", '#edn "s"', "#edn 7"]
keys = st.sampled_from(KEYS)
values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-(2**40), 2**40)
    | st.text(max_size=4)
    | st.sampled_from([Keyword("k"), 1.5]),
    lambda inner: (
        st.lists(inner, max_size=3)
        | st.dictionaries(st.sampled_from([Keyword("x"), Keyword("y/z"), "s"]), inner, max_size=2)
    ),
    max_leaves=5,
)


class RouterModel(RuleBasedStateMachine):
    """The router under test, and the dict it must always agree with."""

    def __init__(self) -> None:
        super().__init__()
        self.folder = Path(tempfile.mkdtemp(prefix="garrison-router-model-"))
        self.loop = asyncio.new_event_loop()
        # No background repair pass within a run: whether one had drained the
        # backlog would depend on timing, and so would the outcome of a switch
        # (and hypothesis' replay of a failing example). Repairs happen only
        # by the `repair` and `migrate_to_sqlite_only` rules.
        self.sides = Sides(self.folder, repair_interval=3600.0)
        self.run(self.sides.open())
        self.model: dict[str, Any] = {}
        self.mode = Mode.EDN_ONLY
        self.broken: str | None = None  # None, "triggers" or "closed"

    def run(self, coro: Any) -> Any:
        return self.loop.run_until_complete(coro)

    def teardown(self) -> None:
        try:
            self.run(self.sides.close())
            self.run(self.loop.shutdown_default_executor())
        finally:
            self.loop.close()
            shutil.rmtree(self.folder, ignore_errors=True)

    @property
    def router_fails(self) -> bool:
        """Whether the router's own operations must fail: only SQLite matters there."""
        if self.mode is not Mode.SQLITE_ONLY:
            return False
        return self.broken is not None

    def write(self, coro: Any, apply: Any) -> None:
        """Run a write; apply it to the model if it returned, check it was allowed to fail."""
        try:
            self.run(coro)
        except SQLITE_FAILURES:
            assert self.router_fails, "a write failed outside sqlite-only"
            return
        apply()

    # ------------------------------------------------------------------ writes

    @rule(key=keys, value=values)
    def put(self, key: str, value: Any) -> None:
        self.write(self.sides.router.put(key, value), lambda: self.model.__setitem__(key, value))

    @rule(items=st.lists(st.tuples(keys, values), min_size=1, max_size=4))
    def put_many(self, items: list[tuple[str, Any]]) -> None:
        self.write(self.sides.router.put_many(items), lambda: self.model.update(items))

    @rule(key=keys)
    def delete(self, key: str) -> None:
        self.write(self.sides.router.delete(key), lambda: self.model.pop(key, None))

    @rule()
    def clear(self) -> None:
        self.write(self.sides.router.clear(), self.model.clear)

    # ------------------------------------------------------------------ modes

    @rule(new_mode=st.sampled_from(list(Mode)))
    def switch(self, new_mode: Mode) -> None:
        try:
            self.run(self.sides.router.switch_mode(new_mode))
        except ValidationError:
            assert Mode.SQLITE_ONLY in (self.mode, new_mode)
            return
        except StoreError:
            assert self.broken == "closed", "a switch failed while SQLite could record it"
            return
        self.mode = new_mode

    @precondition(lambda self: self.broken is None and self.mode is not Mode.SQLITE_ONLY)
    @rule()
    def migrate_to_sqlite_only(self) -> None:
        """What an operator does: dual-write, level SQLite, validate, cut over."""
        router = self.sides.router
        if self.mode is Mode.EDN_ONLY:
            self.run(router.switch_mode(Mode.DUAL_WRITE))
        self.run(router.repair())
        self.run(router.switch_mode(Mode.SQLITE_ONLY))
        self.mode = Mode.SQLITE_ONLY

    @precondition(lambda self: self.broken is None and self.mode is Mode.SQLITE_ONLY)
    @rule(new_mode=st.sampled_from([Mode.SQLITE_FIRST, Mode.DUAL_WRITE, Mode.EDN_ONLY]))
    def roll_back(self, new_mode: Mode) -> None:
        """Leave sqlite-only the supported way: level EDN from SQLite first."""
        self.run(self.sides.router.restore_edn_from_sqlite())
        self.run(self.sides.router.switch_mode(new_mode))
        self.mode = new_mode

    @precondition(lambda self: self.broken is None)
    @rule()
    def repair(self) -> None:
        self.run(self.sides.router.repair())

    # ------------------------------------------------------------------ failures

    @precondition(lambda self: self.broken is None)
    @rule()
    def break_writes(self) -> None:
        self.run(break_sqlite_writes(self.sides.db_path))
        self.broken = "triggers"

    @precondition(lambda self: self.broken is None)
    @rule()
    def close_connection_under_the_store(self) -> None:
        self.run(self.sides.sqlite.connection.close())
        self.broken = "closed"

    @precondition(lambda self: self.broken == "triggers")
    @rule()
    def heal(self) -> None:
        self.run(heal_sqlite_writes(self.sides.db_path))
        self.broken = None

    @rule()
    def restart(self) -> None:
        self.run(self.sides.restart())
        if self.broken == "closed":
            self.broken = None  # a fresh connection
        assert self.sides.router.mode is self.mode, "the mode did not survive the restart"

    # ------------------------------------------------------------------ checks

    @invariant()
    def reads_agree_with_the_model(self) -> None:
        router = self.sides.router
        if self.mode is Mode.SQLITE_ONLY and self.broken == "closed":
            try:
                self.run(router.get("a/1"))
            except SQLITE_FAILURES:
                return
            raise AssertionError("a read in sqlite-only succeeded without a connection")
        for key in KEYS:
            got = self.run(router.get(key, MISSING))
            expected = self.model.get(key, MISSING)
            assert same_value(got, expected), (key, got, expected, self.mode)
        expected_items = sorted(self.model.items())
        scanned = self.run(router.scan())
        assert [k for k, _ in scanned] == [k for k, _ in expected_items]
        assert all(same_value(a, b) for (_, a), (_, b) in zip(scanned, expected_items, strict=True))
        assert self.run(router.keys()) == sorted(self.model)
        assert self.run(router.count()) == len(self.model)
        found = self.run(router.get_many(KEYS))
        assert found.keys() == self.model.keys()
        assert all(same_value(found[k], self.model[k]) for k in found)


RouterModel.TestCase.settings = settings(
    max_examples=40,
    stateful_step_count=30,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)
TestRouterModel = RouterModel.TestCase
