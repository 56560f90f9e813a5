"""Live task status: the SSE stream (GET /v1/tasks/{id}/events) and the WebSocket /ws/tasks/{id}.

Streams are bounded: they end at a terminal state or after AION_ROUTER_SSE_MAX_SECONDS.
"""

from __future__ import annotations

import json

import pytest
from asgiref.sync import async_to_sync, sync_to_async
from channels.testing import WebsocketCommunicator
from django.test import AsyncClient

from aion.roles import Role
from aion.testing.factories import OTHER_TENANT, api_client, make_api_key
from router.models import Task


def parse(raw: bytes) -> list[tuple[str, dict]]:
    out = []
    for block in raw.decode().split("\n\n"):
        event = next((line[7:] for line in block.splitlines() if line.startswith("event: ")), None)
        data = next((line[6:] for line in block.splitlines() if line.startswith("data: ")), None)
        if event:
            out.append((event, json.loads(data)))
    return out


@pytest.mark.django_db
def test_a_finished_task_streams_its_status_then_ends():
    raw, _ = make_api_key([Role.ROUTER_ADMIN])
    task = Task.objects.create(tenant_id="acme", intent="chat", status="OK", target="local-a", route="local")
    response = api_client(raw).get(f"/v1/tasks/{task.id}/events", HTTP_ACCEPT="text/event-stream")
    assert response.status_code == 200
    assert response["Content-Type"] == "text/event-stream"
    assert response["Cache-Control"] == "no-cache"
    events = parse(b"".join(response))
    assert [e for e, _ in events] == ["status", "end"]
    assert events[0][1]["status"] == "OK" and events[0][1]["engine"]["target"] == "local-a"
    auditor, _ = make_api_key([Role.AUDITOR])  # auditors may watch a task too (read only)
    watched = api_client(auditor).get(f"/v1/tasks/{task.id}/events", HTTP_ACCEPT="text/event-stream")
    assert watched.status_code == 200 and [e for e, _ in parse(b"".join(watched))] == ["status", "end"]


@pytest.mark.django_db
def test_the_stream_has_a_maximum_duration(settings):
    settings.AION_ROUTER_SSE_MAX_SECONDS = 0.2
    settings.AION_ROUTER_SSE_POLL_SECONDS = 0.05
    raw, _ = make_api_key([Role.ROUTER_ADMIN])
    task = Task.objects.create(tenant_id="acme", intent="chat")
    response = api_client(raw).get(f"/v1/tasks/{task.id}/events")
    events = parse(b"".join(response))
    assert [e for e, _ in events] == ["status", "timeout"]
    assert events[1][1]["status"] == "PENDING"


@pytest.mark.django_db
def test_another_tenants_task_stream_is_404():
    raw, _ = make_api_key([Role.ROUTER_ADMIN], tenant=OTHER_TENANT)
    task = Task.objects.create(tenant_id="acme", intent="chat")
    response = api_client(raw).get(f"/v1/tasks/{task.id}/events", HTTP_ACCEPT="text/event-stream")
    assert response.status_code == 404


@pytest.mark.django_db(transaction=True)
def test_status_changes_arrive_as_they_happen_under_asgi(settings):
    settings.AION_ROUTER_SSE_POLL_SECONDS = 0.02
    raw, _ = make_api_key([Role.ROUTER_ADMIN])
    task = Task.objects.create(tenant_id="acme", intent="chat")

    def move(status: str) -> None:
        Task.objects.filter(pk=task.pk).update(status=status, target="local-a")

    async def scenario() -> list[bytes]:
        response = await AsyncClient().get(f"/v1/tasks/{task.id}/events", headers={"x-api-key": raw})
        assert response.status_code == 200
        stream = response.streaming_content.__aiter__()
        chunks = [await stream.__anext__(), await stream.__anext__()]  # retry hint, PENDING
        await sync_to_async(move)("RUNNING")
        chunks.append(await stream.__anext__())
        await sync_to_async(move)("OK")
        chunks.extend([chunk async for chunk in stream])
        return chunks

    events = parse(b"".join(async_to_sync(scenario)()))
    assert [(e, d.get("status")) for e, d in events] == [("status", "PENDING"), ("status", "RUNNING"), ("status", "OK"), ("end", "OK")]


def _communicator(task_id, headers):
    from aion.asgi import application

    return WebsocketCommunicator(application, f"/ws/tasks/{task_id}", headers=[(b"origin", b"http://testserver"), *headers])


@pytest.mark.django_db(transaction=True)
def test_the_websocket_sends_the_same_events_and_closes_at_the_end():
    raw, _ = make_api_key([Role.ROUTER_ADMIN])
    task = Task.objects.create(tenant_id="acme", intent="chat", status="ERROR", error_code="http_503")

    async def scenario():
        ws = _communicator(task.id, [(b"x-api-key", raw.encode())])
        connected, _ = await ws.connect()
        assert connected
        messages = [await ws.receive_json_from(timeout=5), await ws.receive_json_from(timeout=5)]
        closed = await ws.receive_output(timeout=5)
        await ws.disconnect()
        return messages, closed

    messages, closed = async_to_sync(scenario)()
    assert [m["event"] for m in messages] == ["status", "end"]
    assert messages[0]["data"]["error"]["code"] == "http_503"
    assert closed["type"] == "websocket.close"


@pytest.mark.django_db(transaction=True)
def test_the_websocket_refuses_missing_credentials_wrong_roles_and_other_tenants():
    task = Task.objects.create(tenant_id="acme", intent="chat")
    wrong_role, _ = make_api_key([Role.MEMORY_WRITER])
    outsider, _ = make_api_key([Role.ROUTER_ADMIN], tenant=OTHER_TENANT)

    async def attempt(headers):
        ws = _communicator(task.id, headers)
        connected, code = await ws.connect()
        await ws.disconnect()
        return connected, code

    assert async_to_sync(attempt)([]) == (False, 4401)
    assert async_to_sync(attempt)([(b"x-api-key", wrong_role.encode())]) == (False, 4403)
    assert async_to_sync(attempt)([(b"x-api-key", outsider.encode())]) == (False, 4404)
