"""The module host's Idempotency-Key cache (``modules.host.replay``): first answer replayed, memory bounded."""

from __future__ import annotations

import pytest

from aion import errors
from modules.host.replay import MAX_STORED_BYTES, ReplayCache


def test_a_finished_key_replays_its_first_answer_and_another_body_is_a_conflict():
    cache = ReplayCache(max_entries=10)
    entry, run = cache.claim("k", b"body", wait_seconds=1)
    assert run
    cache.finish("k", entry, 200, b"first")
    again, run_again = cache.claim("k", b"body", wait_seconds=1)
    assert not run_again and (again.status, again.body) == (200, b"first")
    with pytest.raises(errors.Conflict):
        cache.claim("k", b"other body", wait_seconds=1)


def test_server_errors_and_oversized_answers_are_not_kept_so_the_retry_runs():
    cache = ReplayCache(max_entries=10)
    entry, _ = cache.claim("k", b"b", wait_seconds=1)
    cache.finish("k", entry, 503, b"down")
    assert cache.claim("k", b"b", wait_seconds=1)[1] is True
    big, _ = cache.claim("big", b"b", wait_seconds=1)
    cache.finish("big", big, 200, b"x" * (MAX_STORED_BYTES + 1))
    assert cache.claim("big", b"b", wait_seconds=1)[1] is True


def test_memory_is_bounded_least_recently_used_first_out_and_entries_expire():
    cache = ReplayCache(max_entries=3)
    for n in range(10):
        entry, _ = cache.claim(f"k{n}", b"b", wait_seconds=1)
        cache.finish(f"k{n}", entry, 200, b"ok")
    assert len(cache) == 3
    assert cache.claim("k0", b"b", wait_seconds=1)[1] is True  # evicted long ago: runs again
    expiring = ReplayCache(max_entries=3, ttl_seconds=0)
    entry, _ = expiring.claim("k", b"b", wait_seconds=1)
    expiring.finish("k", entry, 200, b"ok")
    assert expiring.claim("k", b"b", wait_seconds=1)[1] is True


def test_a_key_still_running_is_a_conflict_after_the_wait_and_overlong_keys_are_refused():
    cache = ReplayCache()
    cache.claim("busy", b"b", wait_seconds=1)
    with pytest.raises(errors.Conflict):
        cache.claim("busy", b"b", wait_seconds=0.05)
    with pytest.raises(errors.InvalidInput):
        cache.claim("x" * 300, b"b", wait_seconds=1)
