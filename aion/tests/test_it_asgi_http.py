"""The ASGI entry point's HTTP path: Django's WSGI handler on a bounded thread pool, SSE streams on the ASGI handler.

Driven through the real ``aion.asgi.application`` object with httpx's ASGI transport (no server process).
"""

from __future__ import annotations

import httpx
import pytest
from asgiref.sync import async_to_sync

from aion.roles import Role
from aion.testing.factories import make_api_key

pytestmark = pytest.mark.django_db(transaction=True)  # the pool threads use their own connections


def _get(path: str, **headers: str) -> httpx.Response:
    from aion.asgi import application

    async def call() -> httpx.Response:
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=application), base_url="http://testserver") as client:
            return await client.get(path, headers=headers)

    return async_to_sync(call)()


def test_api_requests_run_on_the_wsgi_thread_pool(settings):
    from a2wsgi import WSGIMiddleware
    from django.core.handlers.wsgi import WSGIHandler

    from aion import asgi

    # HTTP goes to Django's WSGI handler behind a2wsgi's bounded pool of AION_WEB_THREADS threads.
    assert isinstance(asgi.django_wsgi_app, WSGIMiddleware) and isinstance(asgi.django_wsgi_app.app, WSGIHandler)
    assert asgi.django_wsgi_app.executor._max_workers == settings.AION_WEB_THREADS
    raw, _ = make_api_key([Role.AUDITOR])
    response = _get("/v1/whoami", **{"x-api-key": raw})
    assert response.status_code == 200 and response.json()["roles"] == ["auditor"]
    assert response.headers["x-request-id"]


def test_errors_keep_their_problem_shape_through_the_pool():
    response = _get("/v1/no-such-route")
    assert response.status_code == 404 and response.headers["content-type"].startswith("application/problem+json")


def test_task_event_streams_stay_on_the_asgi_handler(recwarn):
    from aion import asgi
    from router.models import Task

    raw, _ = make_api_key([Role.ROUTER_ADMIN])
    task = Task.objects.create(tenant_id="acme", intent="chat", status="OK")
    path = f"/v1/tasks/{task.id}/events"
    assert asgi.ASYNC_HTTP_PATHS.match(path)
    assert not asgi.ASYNC_HTTP_PATHS.match("/v1/tasks") and not asgi.ASYNC_HTTP_PATHS.match(f"/v1/tasks/{task.id}")
    response = _get(path, **{"x-api-key": raw})
    assert response.status_code == 200 and response.headers["content-type"].startswith("text/event-stream")
    assert "event: end" in response.text
    # Under the WSGI handler Django would drain the async iterator on a pool thread, and say so.
    assert not [w for w in recwarn if "consume asynchronous iterators" in str(w.message)]
