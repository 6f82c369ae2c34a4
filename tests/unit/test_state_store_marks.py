"""`kubestep local down` says the state is saved only when a save happened after it asked the
runtime to stop: two saves in one second (the last periodic one, then the final one) must tell
apart, which `savedAt` (whole seconds) cannot."""

from __future__ import annotations

from kubestep_local.state import StateStore


def test_every_save_changes_the_mark_even_within_one_second(tmp_path) -> None:
    store = StateStore(tmp_path)
    assert store.save_mark() is None
    store.save(b"periodic", ["prod"])
    first = store.save_mark()
    store.save(b"final", ["prod"])
    second = store.save_mark()
    assert first is not None and second is not None and second != first
    assert store.summary()["savedAt"][:19] == store.summary()["savedAt"][:19]  # the same format


def test_a_failed_save_changes_the_mark_and_names_the_error(tmp_path) -> None:
    store = StateStore(tmp_path)
    store.save(b"periodic", ["prod"])
    before = store.save_mark()
    store.record_failure("disk full", ["prod"])
    assert store.save_mark() != before and store.summary()["lastError"]["error"] == "disk full"
