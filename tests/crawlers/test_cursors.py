"""crawlers.cursors: atomic, pending until committed, corrupt files survived."""

from __future__ import annotations

import json

from crawlers.cursors import CursorStore


def test_pending_is_invisible_until_committed(tmp_path):
    store = CursorStore(tmp_path)
    assert store.load("src") == {}
    pending = store.save_pending("src", {"queries": {"k": {"since": "2024-01-02T10:00:00+00:00"}}})
    assert store.load("src") == {}
    assert store.commit("src", pending) is True
    assert store.load("src")["queries"]["k"]["since"] == "2024-01-02T10:00:00+00:00"
    assert not pending.exists()
    assert store.commit("src", pending) is False


def test_corrupt_cursor_is_moved_aside_and_treated_as_absent(tmp_path):
    store = CursorStore(tmp_path)
    store.path("src").write_text('{"version": 1, "queries": {')
    assert store.load("src") == {}
    assert store.path("src").with_suffix(".corrupt").exists()
    store.path("src").write_text(json.dumps({"version": 99}))
    assert store.load("src") == {}


def test_writes_leave_no_temporary_files_and_names_stay_inside(tmp_path):
    store = CursorStore(tmp_path)
    store.save("../escape", {"queries": {}})
    assert [p.name for p in tmp_path.iterdir()] == ["_escape.cursor.json"]
