"""A message normalises its keys once, when it is built; the stores below trust them."""

from __future__ import annotations

import pytest

from garrison import RefusedWriteError
from garrison.components.database import (
    Clear,
    Delete,
    DeleteMany,
    Get,
    GetMany,
    History,
    Put,
    PutMany,
    Scan,
    Subscribe,
)
from garrison.edn import Keyword
from garrison.stores._keys import StringKey


def test_every_spelling_of_a_key_becomes_its_key_text() -> None:
    for key in ("session/a", ":session/a", Keyword("session/a")):
        assert Put(key, 1).key == "session/a"
        assert Get(key).key == "session/a"
        assert Delete(key).key == "session/a"
        assert History(key).key == "session/a"
    assert PutMany(((":a/1", 1), (StringKey("s"), 2))).items == (("a/1", 1), ('#edn "s"', 2))
    assert GetMany((Keyword("a/1"), 7)).keys == ("a/1", "#edn 7")
    assert DeleteMany((":a/1",)).keys == ("a/1",)


def test_prefixes_and_pagination_keys_drop_the_keyword_colon() -> None:
    assert Scan(":session/", after=":session/b").prefix == "session/"
    assert Scan(":session/", after=":session/b").after == "session/b"
    assert Clear(":session/").prefix == "session/"
    assert Subscribe(":session/").prefix == "session/"


@pytest.mark.parametrize("key", ["", "a b", "::auto"])
def test_a_write_whose_key_has_no_edn_form_is_refused_as_it_is_built(key: str) -> None:
    with pytest.raises(RefusedWriteError) as refused:
        Put(key, 1)
    assert refused.value.key == key
    with pytest.raises(RefusedWriteError):
        PutMany((("ok/1", 1), (key, 2)))


def test_a_read_of_a_key_with_no_edn_form_is_a_plain_miss() -> None:
    # Never stored (its write is refused), so a read simply finds nothing.
    assert Get("a b").key == "a b"
