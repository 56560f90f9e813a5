"""API keys: hashed storage, expired/revoked/unknown keys, env keys with overlap and reload, rotation with grace, commands."""

from __future__ import annotations

from datetime import timedelta
from unittest import mock

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.utils import timezone

from aion.auth import keys
from aion.auth.keys import hash_key
from aion.models import ApiKey, AuditRecord
from aion.roles import Role
from aion.testing.factories import OTHER_TENANT, TENANT, api_client, make_api_key

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def no_env_keys():
    keys.reload_env_keys("")
    yield
    keys.reload_env_keys("")


def whoami(raw, **headers):
    return api_client(raw, **headers).get("/v1/whoami")


def test_only_the_hash_is_stored_and_the_key_works():
    raw, key = make_api_key([Role.AUDITOR])
    assert key.key_hash == hash_key(raw) and raw not in str(ApiKey.objects.values().get())
    answer = whoami(raw)
    assert answer.status_code == 200
    assert answer.json()["subject"] == f"key:{key.prefix}"
    key.refresh_from_db()
    assert key.last_used_at is not None


def test_expired_revoked_and_unknown_keys_get_401():
    now = timezone.now()
    expired, _ = make_api_key([Role.AUDITOR], expires_at=now - timedelta(seconds=1))
    revoked, _ = make_api_key([Role.AUDITOR], revoked_at=now - timedelta(seconds=1))
    for raw in (expired, revoked, "aion_deadbeef_" + "x" * 43, ""):
        response = whoami(raw)
        assert response.status_code == 401, raw
        assert response["Content-Type"].startswith("application/problem+json")
        assert "WWW-Authenticate" in response


def test_env_keys_overlap_and_reload(tmp_path, monkeypatch):
    old, new = "old-key-0123456789abcdef", "new-key-0123456789abcdef"
    keys.reload_env_keys(f"{old}:auditor:{TENANT},{new}:auditor|kernel.admin:{TENANT}")
    assert whoami(old).status_code == 200
    assert sorted(whoami(new).json()["roles"]) == ["auditor", "kernel.admin"]
    # A mounted secret file changes; SIGHUP (reload_env_keys) picks it up without a restart.
    secret_file = tmp_path / "keys"
    secret_file.write_text(f"{new}:auditor|kernel.admin:{TENANT}")
    monkeypatch.delenv("AION_GATEWAY_API_KEYS", raising=False)
    monkeypatch.setenv("AION_GATEWAY_API_KEYS_FILE", str(secret_file))
    keys.reload_env_keys()
    assert whoami(old).status_code == 401
    assert whoami(new).status_code == 200
    # The env key's name never contains its secret.
    assert new[:8] not in whoami(new).json()["subject"]


def test_env_key_spec_errors_name_the_entry():
    from django.core.exceptions import ImproperlyConfigured

    with pytest.raises(ImproperlyConfigured, match="#2"):
        keys.parse_env_keys("good-key-0123456789:auditor,broken", "default")
    with pytest.raises(ImproperlyConfigured, match="unknown roles"):
        keys.parse_env_keys("good-key-0123456789:wizard", "default")
    with pytest.raises(ImproperlyConfigured, match="16"):
        keys.parse_env_keys("short:auditor", "default")


def test_rotation_keeps_the_old_key_for_the_grace_period(capsys):
    call_command("apikey_create", "--name", "ci", "--tenant", TENANT, "--roles", "auditor,kernel.proposer")
    old_raw = capsys.readouterr().out.strip().splitlines()[-1]
    old = ApiKey.objects.get(key_hash=hash_key(old_raw))
    call_command("apikey_rotate", old.prefix, "--grace-hours", "2")
    new_raw = capsys.readouterr().out.strip().splitlines()[-1]
    assert whoami(old_raw).status_code == 200 and whoami(new_raw).status_code == 200
    old.refresh_from_db()
    assert old.replaced_by.key_hash == hash_key(new_raw)
    later = timezone.now() + timedelta(hours=2, minutes=1)
    with mock.patch("django.utils.timezone.now", return_value=later):
        assert whoami(old_raw).status_code == 401
        assert whoami(new_raw).status_code == 200
    actions = list(AuditRecord.objects.filter(resource_type="api_key").values_list("action", flat=True))
    assert sorted(actions) == ["apikey.created", "apikey.created", "apikey.rotated"]


def test_revoke_and_list_commands(capsys):
    raw, key = make_api_key([Role.AUDITOR], name="to-revoke")
    call_command("apikey_revoke", key.prefix)
    assert whoami(raw).status_code == 401
    call_command("apikey_list", "--all")
    listing = capsys.readouterr().out
    assert key.prefix in listing and "revoked" in listing and raw not in listing
    with pytest.raises(CommandError):
        call_command("apikey_revoke", "aion_nothere")
    with pytest.raises(CommandError):
        call_command("apikey_create", "--name", "x", "--tenant", TENANT, "--roles", "wizard")
    with pytest.raises(CommandError):
        call_command("apikey_rotate", key.prefix)  # a revoked key cannot be rotated


def test_key_tenant_comes_from_the_credential_and_the_header_cannot_change_it():
    raw, _ = make_api_key([Role.AUDITOR], tenant=TENANT)
    assert whoami(raw, HTTP_X_TENANT_ID=TENANT).json()["tenant_id"] == TENANT
    mismatch = whoami(raw, HTTP_X_TENANT_ID=OTHER_TENANT)
    assert mismatch.status_code == 403
    assert mismatch.json()["type"] == "urn:aion:problem:tenant-mismatch"


def test_repeated_bad_keys_from_one_ip_are_throttled(gateway_isolation):
    from django.test import override_settings

    with override_settings(AION_RATE_LIMITS={"default": "100/60", "write": "100/60", "auth_failures": "3/60"}):
        statuses = [whoami("aion_deadbeef_" + "y" * 43).status_code for _ in range(4)]
    assert statuses == [401, 401, 401, 429]


def test_a_bad_key_with_an_idempotency_key_counts_once(gateway_isolation):
    from django.test import override_settings

    with override_settings(AION_RATE_LIMITS={"default": "100/60", "write": "100/60", "auth_failures": "2/60"}):
        client = api_client("aion_deadbeef_" + "z" * 43)
        statuses = [client.post("/v1/audit", {}, format="json", HTTP_IDEMPOTENCY_KEY=f"k{n}").status_code for n in range(3)]
    assert statuses == [401, 401, 429]


def _whoami_over_http(base: str, raw: str) -> int:
    import urllib.error
    import urllib.request

    request = urllib.request.Request(base + "/v1/whoami", headers={"x-api-key": raw})
    try:
        with urllib.request.urlopen(request, timeout=3) as response:
            return int(response.status)
    except urllib.error.HTTPError as exc:
        return int(exc.code)


@pytest.mark.slow
@pytest.mark.django_db(transaction=True)  # the server process shares the test database; hold no lock on it
def test_sighup_reloads_the_env_keys_of_a_running_server(tmp_path):
    """The production web process (``uvicorn aion.asgi:application``, as in deploy/k8s/web.yaml) reads a mounted
    key file; the file changes and ``kill -HUP`` makes the running process use it, with no restart."""
    import signal
    import subprocess
    import sys
    import time

    from aion.testing.processes import ROOT, stop, subprocess_env
    from aion.testing.services import free_port
    from aion.testing.waits import wait_until

    old, new = "sighup-old-key-0123456789abcdef", "sighup-new-key-0123456789abcdef"
    key_file = tmp_path / "api-keys"
    key_file.write_text(f"{old}:auditor:{TENANT}")
    port = free_port()
    env = subprocess_env(AION_GATEWAY_API_KEYS_FILE=str(key_file))  # this run's test database: unknown keys are looked up
    for name in ("REDIS_URL", "CELERY_BROKER_URL", "AION_GATEWAY_API_KEYS", "VAULT_ADDR"):
        env.pop(name, None)  # the in-process limiter: nothing written to the shared Redis
    command = [sys.executable, "-m", "uvicorn", "aion.asgi:application", "--host", "127.0.0.1", "--port", str(port), "--no-access-log"]
    log_path = tmp_path / "web.log"
    with open(log_path, "wb") as log:  # a file, so the test can watch for the process's log lines while it runs
        process = subprocess.Popen(command, cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        status = 0
        while time.monotonic() < deadline and process.poll() is None:
            try:
                status = _whoami_over_http(base, old)
                break
            except OSError:
                time.sleep(0.2)
        assert status == 200, (stop(process), log_path.read_text(errors="replace")[-2000:])
        assert _whoami_over_http(base, new) == 401

        # Rotation: the Secret now lists both keys (the overlap), then only the new one.
        key_file.write_text(f"{old}:auditor:{TENANT},{new}:auditor:{TENANT}")
        assert _whoami_over_http(base, new) == 401  # nothing re-reads the file by itself
        process.send_signal(signal.SIGHUP)
        deadline = time.monotonic() + 10
        while _whoami_over_http(base, new) != 200 and time.monotonic() < deadline:
            time.sleep(0.1)
        assert _whoami_over_http(base, new) == 200
        assert _whoami_over_http(base, old) == 200

        key_file.write_text(f"{new}:auditor:{TENANT}")
        process.send_signal(signal.SIGHUP)
        deadline = time.monotonic() + 10
        while _whoami_over_http(base, old) != 401 and time.monotonic() < deadline:
            time.sleep(0.1)
        assert _whoami_over_http(base, old) == 401
        assert _whoami_over_http(base, new) == 200

        # A broken value is refused and logged; the process keeps its current keys.
        key_file.write_text("not a key spec")
        process.send_signal(signal.SIGHUP)
        wait_until(lambda: "API key reload failed" in log_path.read_text(errors="replace"), timeout=10, what="the refused reload")
        assert _whoami_over_http(base, new) == 200
        assert process.poll() is None
    finally:
        stop(process)
    output = log_path.read_text(errors="replace")
    assert new not in output and old not in output  # secrets never reach the logs
