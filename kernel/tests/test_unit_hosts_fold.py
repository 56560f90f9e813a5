"""kernel.hosts.fold and observed_form: the document effective for a pool, and how a desired value is observed."""

from __future__ import annotations

from kernel.hosts import fold, observed_form


def rows(*revisions: tuple[dict, str]) -> list[dict]:
    out = []
    for number, (document, target) in enumerate(revisions, start=1):
        out.append({"id": number, "number": number, "document": document, "parent_id": number - 1 or None, "proposal__target": target})
    return out


def test_all_hosts_revisions_apply_to_every_pool_and_a_pools_only_to_it():
    history = rows(({"a": 1}, ""), ({"a": 1, "b": 2}, "gpu"), ({"a": 3, "b": 2}, ""))
    assert fold(history, "gpu") == (3, {"a": 3, "b": 2})
    assert fold(history, "cpu") == (3, {"a": 3})
    assert fold(history, "") == (3, {"a": 3})


def test_the_effective_revision_is_the_newest_that_touched_the_pool():
    history = rows(({"a": 1}, ""), ({"a": 1, "b": 2}, "gpu"))
    assert fold(history, "cpu") == (1, {"a": 1})
    assert fold(history, "gpu") == (2, {"a": 1, "b": 2})


def test_a_rollback_of_a_pools_revision_reverts_only_that_pool():
    # 2 sets b for gpu, 3 is its rollback (same target): gpu loses b; cpu never had it.
    history = rows(({"a": 1}, ""), ({"a": 1, "b": 2}, "gpu"), ({"a": 1}, "gpu"))
    assert fold(history, "gpu") == (3, {"a": 1})
    assert fold(history, "cpu") == (1, {"a": 1})


def test_a_removed_key_leaves_the_pools_document():
    history = rows(({"a": 1, "b": 2}, ""), ({"a": 1}, ""))
    assert fold(history, "gpu") == (2, {"a": 1})


def test_no_revision_is_revision_zero():
    assert fold([], "gpu") == (0, {})


def test_values_are_observed_as_strings():
    assert observed_form(True) == "1" and observed_form(False) == "0"
    assert observed_form(1500) == "1500" and observed_form(2.0) == "2" and observed_form(0.5) == "0.5"
    assert observed_form("load") == "load" and observed_form(None) is None
