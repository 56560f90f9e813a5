"""Live updates: the Console WebSocket /ws/kernel/proposals (group per tenant) through the real ASGI app."""

from __future__ import annotations

import pytest
from asgiref.sync import async_to_sync, sync_to_async
from channels.testing import WebsocketCommunicator
from django.conf import settings
from django.test import Client

from aion.roles import Role
from aion.testing.factories import OTHER_TENANT, make_user
from aion.testing.kernel_proposals import act, persona, submit

pytestmark = pytest.mark.django_db(transaction=True)


def session_cookie(username: str, roles: list[str], tenant: str = "acme") -> bytes:
    user = make_user(username, roles, tenant=tenant)
    client = Client()
    client.force_login(user)
    return f"{settings.SESSION_COOKIE_NAME}={client.cookies[settings.SESSION_COOKIE_NAME].value}".encode()


def communicator(cookie: bytes | None) -> WebsocketCommunicator:
    from aion.asgi import application

    headers = [(b"origin", b"http://testserver"), (b"host", b"testserver")]
    if cookie:
        headers.append((b"cookie", cookie))
    return WebsocketCommunicator(application, "/ws/kernel/proposals", headers=headers)


def test_open_pages_hear_about_their_tenants_changes_only():
    proposer, admin = persona([Role.KERNEL_PROPOSER]), persona([Role.KERNEL_ADMIN], name="admin")
    outsider = persona([Role.KERNEL_PROPOSER], tenant=OTHER_TENANT, name="outsider")
    ours = session_cookie("watcher", [Role.AUDITOR])
    theirs = session_cookie("other-watcher", [Role.KERNEL_ADMIN], tenant=OTHER_TENANT)

    async def scenario():
        mine, other = communicator(ours), communicator(theirs)
        assert (await mine.connect())[0] and (await other.connect())[0]
        proposal = await sync_to_async(submit)(proposer)
        first = await mine.receive_json_from(timeout=5)
        await sync_to_async(act)(admin, proposal["id"], "approve")
        following = [await mine.receive_json_from(timeout=5) for _ in range(2)]
        await sync_to_async(submit)(outsider)
        foreign = await other.receive_json_from(timeout=5)
        silent = await mine.receive_nothing(timeout=0.3)
        await mine.disconnect()
        await other.disconnect()
        return proposal, first, following, foreign, silent

    proposal, first, following, foreign, silent = async_to_sync(scenario)()
    assert first == {"id": proposal["id"], "state": "pending", "version": 1, "action": "submit"}
    assert [m["state"] for m in following] == ["approved", "applied"]
    assert foreign["state"] == "pending" and foreign["id"] != proposal["id"]
    assert silent  # nothing of the other tenant reached our page


def test_the_socket_refuses_anonymous_and_roleless_users():
    roleless = session_cookie("nobody", [Role.MEMORY_READER])

    async def attempt(cookie):
        ws = communicator(cookie)
        connected, code = await ws.connect()
        await ws.disconnect()
        return connected, code

    assert async_to_sync(attempt)(None) == (False, 4401)
    assert async_to_sync(attempt)(roleless) == (False, 4403)


@pytest.mark.slow
def test_a_served_process_pushes_changes_made_over_http_to_open_pages(tmp_path):
    """The deployed process (the Dockerfile's command) with the in-memory channel layer: an HTTP submit, which runs
    on a pool thread outside the server's event loop, still reaches a WebSocket held open on that loop."""
    import json

    from websockets.sync.client import connect

    from aion.testing.processes import serve, stop

    proposer = persona([Role.KERNEL_PROPOSER])
    cookie = session_cookie("served-watcher", [Role.AUDITOR]).decode()
    instance = serve(tmp_path, REDIS_URL="")  # no Redis: Channels' in-memory layer, the embedded default
    try:
        origin = instance.url("").rstrip("/")
        with connect(f"ws://127.0.0.1:{instance.port}/ws/kernel/proposals", additional_headers={"Cookie": cookie, "Origin": origin}) as ws:
            import httpx

            body = {
                "scope": "sysctl",
                "changes": [{"key": "vm.swappiness", "from": None, "to": 10}],
                "justification": "live",
                "risk_score": 0.1,
            }
            response = httpx.post(instance.url("/v1/kernel/proposals"), json=body, headers={"x-api-key": proposer.raw_key}, timeout=30)
            assert response.status_code == 201, response.text
            message = json.loads(ws.recv(timeout=10))
        assert message["id"] == response.json()["id"] and message["state"] == "pending"
    finally:
        stop(instance.process)
