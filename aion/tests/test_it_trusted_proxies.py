"""X-Forwarded-For is believed only from AION_TRUSTED_PROXIES, in one place (aion/clientip.py).

The first test serves the Dockerfile's own web command (a real uvicorn process on loopback): uvicorn must not
rewrite the peer from the header, so varying X-Forwarded-For with bad API keys still hits the per-IP 429.
The others drive the in-process stack through the Django test client, which sets REMOTE_ADDR per request.
"""

from __future__ import annotations

import json
import logging
import urllib.error
import urllib.request
from pathlib import Path

import pytest
import yaml
from django.test import Client, override_settings

from aion.clientip import client_ip, parse_networks, resolve
from aion.models import SecurityIncident
from aion.testing.processes import ROOT, django_setup_in_subprocess, dockerfile_web_command, serve, stop

LOW = {"default": "600/60", "write": "120/60", "ingest": "600/60", "hooks": "600/60", "hook_failures": "100/60", "auth_failures": "3/60"}
PROXY = "10.1.2.3"  # the ingress controller, in the trusted network
TRUSTED = "10.0.0.0/8, 2001:db8:ffff::/48"


@pytest.fixture()
def low_auth_limit(gateway_isolation):
    with override_settings(AION_RATE_LIMITS=LOW, ROOT_URLCONF="aion.tests.gateway_urls"):
        yield


def _bad_key(client: Client, remote: str, forwarded: str | None = None) -> int:
    extra = {"HTTP_X_FORWARDED_FOR": forwarded} if forwarded is not None else {}
    return client.get("/v1/whoami", HTTP_X_API_KEY="aion_not-a-real-key", REMOTE_ADDR=remote, **extra).status_code


def _get(url: str, headers: dict[str, str]) -> int:
    request = urllib.request.Request(url, headers=headers)
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return int(response.status)
    except urllib.error.HTTPError as exc:
        return int(exc.code)


@pytest.mark.django_db(transaction=True)  # the served process reads the test database
def test_the_served_web_process_ignores_forwarded_for_from_its_loopback_peer(tmp_path: Path, gateway_isolation: str):
    web = serve(tmp_path, AION_RATE_LIMIT_AUTH_FAILURES="20/60", AION_RATE_LIMIT_KEY_PREFIX=f"{gateway_isolation}:rl")
    try:
        statuses = [_get(web.url("/v1/whoami"), {"x-api-key": f"aion_bad-{n}", "X-Forwarded-For": f"203.0.113.{n}"}) for n in range(25)]
    finally:
        log = stop(web.process)
    assert statuses[:20] == [401] * 20, log + web.log()[-2000:]
    assert set(statuses[20:]) == {429}, statuses


def test_the_shipped_web_commands_do_not_let_uvicorn_rewrite_the_peer():
    docker = dockerfile_web_command()
    web = yaml.safe_load_all((ROOT / "deploy/k8s/web.yaml").read_text())
    deployment = next(doc for doc in web if doc and doc["kind"] == "Deployment")
    k8s = deployment["spec"]["template"]["spec"]["containers"][0]["args"]
    for command in (docker, k8s):
        assert "--proxy-headers" not in command and "--no-proxy-headers" in command, command
    config = yaml.safe_load((ROOT / "deploy/k8s/configmap.yaml").read_text())["data"]
    assert "AION_TRUSTED_PROXIES" in config
    parse_networks(config["AION_TRUSTED_PROXIES"])  # a valid (possibly empty) list


@pytest.mark.django_db
def test_an_untrusted_peer_cannot_escape_the_limit_by_varying_forwarded_for(low_auth_limit):
    client = Client()
    statuses = [_bad_key(client, "203.0.113.50", f"198.51.100.{n}") for n in range(5)]
    assert statuses == [401, 401, 401, 429, 429]


@pytest.mark.django_db
def test_an_untrusted_peer_inside_a_private_range_is_not_a_proxy_either(low_auth_limit):
    with override_settings(AION_TRUSTED_PROXIES="10.9.0.0/16"):
        statuses = [_bad_key(Client(), PROXY, f"198.51.100.{n}") for n in range(4)]
    assert statuses == [401, 401, 401, 429]


@pytest.mark.django_db
def test_a_trusted_proxy_forwards_the_client_address(low_auth_limit):
    with override_settings(AION_TRUSTED_PROXIES=TRUSTED):
        client = Client()
        # Each forwarded client has its own bucket behind the one proxy...
        assert [_bad_key(client, PROXY, "198.51.100.7") for _ in range(4)] == [401, 401, 401, 429]
        assert _bad_key(client, PROXY, "198.51.100.8") == 401
        # ...and the proxy's own address (no header) is a bucket of its own too.
        assert _bad_key(client, PROXY) == 401


@pytest.mark.django_db
def test_spoofed_entries_left_of_the_first_untrusted_hop_are_ignored(low_auth_limit):
    with override_settings(AION_TRUSTED_PROXIES=TRUSTED):
        client = Client()
        # The client wrote the left part; our proxies (10.x) appended the real client, 198.51.100.9.
        chains = [f"6.6.6.{n}, 7.7.7.{n}, 198.51.100.9, 10.0.0.5" for n in range(4)]
        assert [_bad_key(client, PROXY, chain) for chain in chains] == [401, 401, 401, 429]


@pytest.mark.django_db
def test_incidents_and_request_logs_carry_the_same_client_address(caplog, settings):
    settings.AION_TRUSTED_PROXIES = TRUSTED
    body = b'{"proposal_id": "x", "decision": "approve", "approver": "a"}'
    with caplog.at_level(logging.INFO, logger="aion.request"):
        response = Client().generic(
            "POST", "/v1/hooks/approval", body, content_type="application/json",
            HTTP_X_OMERTA_SIGNATURE="t=1,v1=00", HTTP_X_TENANT_ID="acme", HTTP_X_OMERTA_DELIVERY="d-1",
            REMOTE_ADDR=PROXY, HTTP_X_FORWARDED_FOR="6.6.6.6, 198.51.100.33",
        )  # fmt: skip
    assert response.status_code == 401
    assert SecurityIncident.objects.get().source_ip == "198.51.100.33"
    lines = [r for r in caplog.records if r.name == "aion.request" and getattr(r, "route", "") != "metrics"]
    assert lines and lines[-1].client_ip == "198.51.100.33"


@pytest.mark.parametrize(
    ("remote", "forwarded", "expected"),
    [
        ("203.0.113.5", "198.51.100.1", "203.0.113.5"),  # untrusted peer: the header is ignored
        (PROXY, None, PROXY),  # a trusted peer without the header is the client itself
        (PROXY, "198.51.100.1", "198.51.100.1"),
        (PROXY, "198.51.100.1, 10.0.0.9, 10.0.0.8", "198.51.100.1"),  # every trusted hop skipped
        (PROXY, "1.1.1.1, 198.51.100.1, 10.0.0.9", "198.51.100.1"),  # left of the first untrusted hop: ignored
        (PROXY, "10.0.0.9, 10.0.0.8", "10.0.0.9"),  # all hops trusted: the farthest one
        (PROXY, "not-an-ip, 10.0.0.9", "10.0.0.9"),  # garbage stops the walk at the last believable hop
        (PROXY, "198.51.100.1:4711", "198.51.100.1"),
        ("2001:db8:ffff::1", "[2001:db8::7]:443", "2001:db8::7"),
        ("::ffff:10.1.2.3", "198.51.100.1", "198.51.100.1"),  # an IPv4-mapped peer is its IPv4 address
        ("", "198.51.100.1", "unknown"),
    ],
)
def test_resolve_walks_the_chain_right_to_left(remote, forwarded, expected):
    assert resolve(remote, forwarded, parse_networks(TRUSTED)) == expected


def test_nothing_is_trusted_by_default(settings, rf):
    assert settings.AION_TRUSTED_PROXIES == ""
    request = rf.get("/", REMOTE_ADDR="127.0.0.1", HTTP_X_FORWARDED_FOR="198.51.100.1")
    assert client_ip(request) == "127.0.0.1"


@pytest.mark.parametrize(("name", "value"), [("AION_TRUSTED_PROXIES", "10.0.0.0/8,not-a-cidr"), ("AION_TRUSTED_PROXY_HOPS", "1")])
def test_a_bad_proxy_setting_stops_start_up_naming_the_variable(name, value, tmp_path):
    result = django_setup_in_subprocess({"AION_VAR_DIR": str(tmp_path), name: value})
    assert result.returncode != 0
    last = result.stderr.strip().splitlines()[-1]
    assert "ImproperlyConfigured" in last and name in last, result.stderr


def test_no_product_code_reads_the_peer_or_forwarded_header_outside_clientip():
    """Every reader of REMOTE_ADDR / X-Forwarded-For goes through aion.clientip (grep of the product's code)."""
    offenders = []
    for folder in ("aion", "kernel", "hooks", "memory", "router", "modules", "console"):
        for path in (ROOT / folder).rglob("*.py"):
            if "tests" in path.parts or "testing" in path.parts or path.name == "clientip.py":
                continue
            text = path.read_text()
            if "REMOTE_ADDR" in text or "X_FORWARDED_FOR" in text or "X-Forwarded-For" in text:
                offenders.append(str(path.relative_to(ROOT)))
    assert offenders == [], json.dumps(offenders)
