"""Uploads held for a reload (dashboard.state.uploads): tokens, browser binding, expiry."""

from __future__ import annotations

import hashlib

from dashboard.state import uploads
from dashboard.state.uploads import GRACE_SECONDS, MAX_AGE_SECONDS, MAX_ENTRIES, UploadStore


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_a_token_is_unguessable_and_found_only_by_its_browser():
    clock, alive = Clock(), {"s1"}
    store = UploadStore(alive=alive.__contains__, clock=clock)
    table = object()
    token = store.put(table, {"name": "f.csv"}, "browser-a", "s1")
    assert len(token) == 43 and token != store.put(table, {}, "browser-a", "s1")
    assert store.get(token, "browser-a", "s2").data is table  # a reload: a new session
    assert store.get(token, "browser-b", "s3") is None  # another browser with the link
    assert store.get(token, "", "s3") is None  # no cookie: nothing
    assert store.get("x" * 43, "browser-a", "s1") is None


def test_an_entry_goes_when_its_sessions_are_gone_and_the_grace_has_passed():
    clock, alive = Clock(), {"s1"}
    store = UploadStore(alive=alive.__contains__, clock=clock)
    token = store.put("table", {}, "b", "s1")
    clock.now += 10 * GRACE_SECONDS
    assert store.get(token, "b", "s1") is not None  # its session is still held
    alive.clear()  # the tab was closed and Streamlit dropped the session
    clock.now += GRACE_SECONDS / 2
    assert store.get(token, "b", "s2") is not None  # a reload within the grace finds it
    alive.add("s2")
    clock.now += 10 * GRACE_SECONDS
    assert store.get(token, "b", "s2") is not None  # the reloaded session keeps it
    alive.clear()
    clock.now += GRACE_SECONDS + 1
    assert store.get(token, "b", "s2") is None and len(store) == 0


def test_entries_have_a_maximum_age_and_count():
    clock = Clock()
    store = UploadStore(alive=lambda _s: True, clock=clock)
    first = store.put("t", {}, "b", "s")
    clock.now += MAX_AGE_SECONDS + 1
    assert store.get(first, "b", "s") is None
    tokens = [store.put(i, {}, "b", "s") for i in range(MAX_ENTRIES + 5)]
    assert len(store) == MAX_ENTRIES
    assert (
        store.get(tokens[0], "b", "s") is None
        and store.get(tokens[-1], "b", "s").data == MAX_ENTRIES + 4
    )


def test_browser_id_unmasks_the_xsrf_token():
    token = bytes(range(16))
    ids = set()
    for mask in (b"\x00\x00\x00\x00", b"\x12\x34\x56\x78"):
        masked = bytes(b ^ mask[i % 4] for i, b in enumerate(token))
        ids.add(uploads.browser_id(f"2|{mask.hex()}|{masked.hex()}|1700000000"))
    assert ids == {hashlib.sha256(token).hexdigest()}  # a reload masks it anew: same id
    for bad in ("", "1|zz", "2|xyz|00|1", "2|0011|aabb|1", "2|00112233||1"):
        assert uploads.browser_id(bad) == ""
