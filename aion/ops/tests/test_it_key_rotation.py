"""Key rotation end to end, with the commands the runbook documents, and zero failed requests during
the overlap: API keys, JWT signing keys, inbound hook secrets and Cosign keys.

API keys and JWTs: a client thread calls the real HTTP server (pytest-django's live_server) without
pause while the operator rotates; every one of its requests must succeed, before, during and after
the switch; only after the grace (time moved with a patched ``timezone.now``) or the retirement does
the old credential stop working. Hook secrets: signed approval webhooks with the old and the new
secret both pass during the grace. Cosign: the module keeps verifying and routing at every step of
add key, re-sign, re-verify, retire.
"""

from __future__ import annotations

import io
import json
import threading
import time
import uuid
from datetime import timedelta

import httpx
import pytest
import yaml
from django.core.management import call_command
from django.utils import timezone

from aion.testing.factories import TENANT

pytestmark = pytest.mark.django_db(transaction=True)


def run(*args: str) -> str:
    out = io.StringIO()
    call_command(*args, stdout=out, stderr=io.StringIO())
    return out.getvalue()


def last_line(output: str) -> str:
    return output.strip().splitlines()[-1].strip()


@pytest.fixture()
def unlimited(settings):
    """The client loops as fast as it can: lift the rate limits and use a private key prefix."""
    settings.AION_RATE_LIMITS = {name: "1000000/60" for name in settings.AION_RATE_LIMITS}
    settings.AION_RATE_LIMIT_KEY_PREFIX = f"test:ops-rotation:{uuid.uuid4().hex[:8]}:rl"
    return settings


class Traffic:
    """A client that keeps calling /v1/whoami with whatever credential ``headers()`` gives now."""

    def __init__(self, base_url: str, headers):
        self.base_url = base_url
        self.headers = headers
        self.results: list[tuple[str, int]] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, daemon=True)

    def _loop(self) -> None:
        from django.db import connection

        with httpx.Client(base_url=self.base_url, timeout=10) as client:
            while not self._stop.is_set():
                label, headers = self.headers()
                self.results.append((label, client.get("/v1/whoami", headers=headers).status_code))
        connection.close()

    def __enter__(self) -> Traffic:
        self._thread.start()
        self.wait_for(3)
        return self

    def wait_for(self, more: int) -> None:
        target = len(self.results) + more
        deadline = time.monotonic() + 30
        while len(self.results) < target and time.monotonic() < deadline:
            time.sleep(0.01)
        assert len(self.results) >= target, f"the traffic thread made {len(self.results)} of {target} requests in 30 s"

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(30)


def test_api_key_rotation_has_zero_failed_requests_during_the_grace(live_server, unlimited, monkeypatch):
    created = run("apikey_create", "--name", "svc-router", "--tenant", TENANT, "--roles", "auditor")
    old_key = last_line(created)
    prefix = created.split("Created API key ", 1)[1].split()[0]
    current = {"label": "old", "key": old_key}

    with Traffic(live_server.url, lambda: (current["label"], {"x-api-key": current["key"]})) as traffic:
        new_key = last_line(run("apikey_rotate", prefix, "--grace-hours", "1"))
        traffic.wait_for(5)  # the client still sends the old key during the grace
        current.update(label="new", key=new_key)  # ...then picks up the new one
        traffic.wait_for(5)
    assert {label for label, _ in traffic.results} == {"old", "new"}
    assert [r for r in traffic.results if r[1] != 200] == []

    later = timezone.now() + timedelta(hours=1, minutes=5)
    monkeypatch.setattr(timezone, "now", lambda: later)
    with httpx.Client(base_url=live_server.url) as client:
        assert client.get("/v1/whoami", headers={"x-api-key": old_key}).status_code == 401
        assert client.get("/v1/whoami", headers={"x-api-key": new_key}).status_code == 200


def test_jwt_rotation_publish_switch_retire_has_zero_failed_requests(live_server, unlimited, tmp_path):
    unlimited.AION_JWKS_PATH = str(tmp_path / "jwks.json")
    old_kid = last_line(run("jwt_generate_key"))
    old_token = last_line(run("jwt_mint", "--sub", "svc-router", "--tenant", TENANT, "--roles", "auditor"))
    current = {"label": "old", "token": old_token}

    with Traffic(live_server.url, lambda: (current["label"], {"Authorization": f"Bearer {current['token']}"})) as traffic:
        new_kid = last_line(run("jwt_generate_key", "--publish-only"))  # 1. publish the new kid
        traffic.wait_for(5)
        run("jwt_activate", new_kid)  # 2. switch signing
        new_token = last_line(run("jwt_mint", "--sub", "svc-router", "--tenant", TENANT, "--roles", "auditor"))
        traffic.wait_for(5)  # old tokens are still accepted
        current.update(label="new", token=new_token)
        traffic.wait_for(5)
    assert {label for label, _ in traffic.results} == {"old", "new"}
    assert [r for r in traffic.results if r[1] != 200] == []
    header = json.loads(__import__("base64").urlsafe_b64decode(new_token.split(".")[0] + "=="))
    assert header["kid"] == new_kid != old_kid

    run("jwt_retire", old_kid)  # 3. retire the old kid
    with httpx.Client(base_url=live_server.url) as client:
        assert client.get("/v1/whoami", headers={"Authorization": f"Bearer {old_token}"}).status_code == 401
        assert client.get("/v1/whoami", headers={"Authorization": f"Bearer {new_token}"}).status_code == 200
        jwks = client.get("/.well-known/jwks.json")
    published = {k["kid"] for k in jwks.json()["keys"]}
    assert new_kid in published and old_kid not in published


def test_hook_secret_rotation_accepts_old_and_new_secrets_during_the_grace(client, unlimited, monkeypatch):
    from aion.auth.principal import system_principal
    from hooks import signing
    from kernel.services import submit_proposal

    unlimited.AION_HOOK_SOURCES = ""
    unlimited.AION_HOOKS_IDEMPOTENCY_PREFIX = f"test:ops-rotation:{uuid.uuid4().hex[:8]}:inbound:"
    unlimited.AION_IDEMPOTENCY_REDIS_URL = ""
    proposer = system_principal(TENANT, name="proposer", roles=frozenset({"kernel.proposer"}))

    values = iter(range(10, 60))
    applied: dict[str, int | None] = {"current": None}  # what the approved proposals set vm.swappiness to

    def approve(secret: str) -> int:
        change = [{"key": "vm.swappiness", "from": applied["current"], "to": next(values)}]
        proposal = submit_proposal(proposer, scope="sysctl", changes=change, justification="tune it", risk_score=0.1)
        body = json.dumps({"proposal_id": str(proposal.pk), "decision": "approve", "approver": "alice", "comment": "ok"}).encode()
        headers = {
            "HTTP_X_OMERTA_SIGNATURE": signing.sign(body, [secret], timestamp=timezone.now().timestamp()),
            "HTTP_X_TENANT_ID": TENANT,
            "HTTP_X_OMERTA_DELIVERY": f"dlv-{uuid.uuid4()}",
        }
        status = client.generic("POST", "/v1/hooks/approval", body, content_type="application/json", **headers).status_code
        if status == 200:
            applied["current"] = change[0]["to"]
        return status

    old = last_line(run("hook_source_add", "--tenant", TENANT, "--name", "chatops", "--scopes", "kernel.approve,kernel.reject"))
    assert [approve(old) for _ in range(2)] == [200, 200]
    new = last_line(run("hook_source_rotate", "--tenant", TENANT, "--name", "chatops", "--grace-hours", "1"))
    # The overlap: some senders still sign with the old secret, some already with the new one.
    assert [approve(s) for s in (old, new, old, new)] == [200, 200, 200, 200]

    later = timezone.now() + timedelta(hours=1, minutes=5)
    monkeypatch.setattr(timezone, "now", lambda: later)
    from hooks.sources import clear_cache

    clear_cache()
    assert approve(new) == 200
    assert approve(old) == 401


def test_cosign_rotation_add_resign_reverify_retire_keeps_every_module_verifying(keys, tmp_path):
    from aion.testing.module_releases import build_manifest, register
    from modules.selectors import active_module_targets

    def serving() -> list[tuple[str, str]]:
        """What the router can send traffic to, and the re-verification of every active module."""
        assert "0 failing" in run("modules_reverify", "--tenant", TENANT)
        return [(t.name, t.version) for t in active_module_targets(TENANT)]

    old = keys.new("cosign-2026-05")
    register(old, name="summarizer", version="1.0.0")
    assert serving() == [("summarizer", "1.0.0")]
    new = keys.new("cosign-2026-11")  # 1. add the new public key next to the old one
    assert serving() == [("summarizer", "1.0.0")]
    manifest = tmp_path / "summarizer.yaml"  # 2. re-sign the image and register the re-signed manifest
    manifest.write_text(yaml.safe_dump(build_manifest(new, name="summarizer", version="1.0.1")))
    assert "activated" in run("modules_register", str(manifest), "--activate", "--tenant", TENANT)
    assert serving() == [("summarizer", "1.0.1")]
    keys.retire("cosign-2026-05")  # 3. retire the old key
    assert serving() == [("summarizer", "1.0.1")]
    report = json.loads(run("modules_keys", "--tenant", TENANT, "--json"))
    states = {k["key_id"]: (k["state"], k["modules_verified_now"]) for k in report["keys"]}
    assert states["cosign-2026-11"][1] == 1 and states["cosign-2026-05"][1] == 0
    assert report["would_fail"] == 0


@pytest.fixture()
def keys(tmp_path, settings):
    from aion.testing.module_releases import KeyRingFixture

    return KeyRingFixture(tmp_path, settings)
