"""aion.enqueue: by task name, after the transaction commits; a failure to send never reaches the caller."""

from __future__ import annotations

import logging

import pytest

from aion.celery import app
from aion.enqueue import current_queue, enqueue, resolve


@pytest.fixture()
def eager():
    previous = (app.conf.task_always_eager, app.conf.task_eager_propagates)
    app.conf.task_always_eager, app.conf.task_eager_propagates = True, True
    yield
    app.conf.task_always_eager, app.conf.task_eager_propagates = previous


def test_a_name_resolves_to_the_registered_task_even_before_its_module_was_imported():
    assert resolve("router.execute_task").name == "router.execute_task"
    with pytest.raises(LookupError):
        resolve("nope.no_such_task")


@pytest.mark.django_db
def test_it_sends_only_once_the_transaction_commits(eager, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        enqueue("router.execute_task", "00000000-0000-0000-0000-000000000000")
    assert len(callbacks) == 1  # nothing ran inside the transaction
    callbacks[0]()  # eager: runs the real task, which finds no such row
    assert current_queue() is None  # outside a worker


@pytest.mark.django_db
def test_a_send_that_fails_is_logged_not_raised():
    records: list[logging.LogRecord] = []
    handler = logging.Handler()
    handler.emit = records.append  # type: ignore[method-assign]
    logger = logging.getLogger("aion.enqueue")
    logger.addHandler(handler)
    try:
        enqueue("nope.no_such_task", 1, on_commit=False)
    finally:
        logger.removeHandler(handler)
    assert [r.getMessage() for r in records] == ["could not enqueue nope.no_such_task; the sweep will send it"]
