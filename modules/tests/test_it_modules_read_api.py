"""GET /v1/modules, /v1/modules/{name}, /v1/modules/{name}/versions and /v1/modules/trusted-keys."""

from __future__ import annotations

from django.utils import timezone

from aion.testing.factories import OTHER_TENANT, TENANT, api_client, client_with_roles
from aion.testing.module_releases import register
from modules.choices import ProbeOutcome
from modules.health import Probe, record_probe
from modules.models import Module


def test_list_detail_and_versions(admin_client, key):
    register(key, "1.0.0")
    register(key, "1.1.0")
    register(key, "0.1.0", name="embedder", activate=False, intents=("embed.*",))
    listing = admin_client.get("/v1/modules").json()
    assert [m["name"] for m in listing["results"]] == ["embedder", "summarizer"]
    summarizer = listing["results"][1]
    assert summarizer["active"]["version"] == "1.1.0"
    assert summarizer["active"]["signature_key_id"] == "k2026"
    assert summarizer["active"]["node_selector"] == {"aion.io/pool": "cpu"}
    assert summarizer["health"]["status"] == "unknown"

    detail = admin_client.get("/v1/modules/summarizer")
    assert detail.status_code == 200
    assert detail["ETag"]
    assert [a["to_version"] for a in detail.json()["activations"]] == ["1.1.0", "1.0.0"]

    versions = admin_client.get("/v1/modules/summarizer/versions").json()["results"]
    assert [(v["version"], v["active"]) for v in versions] == [("1.1.0", True), ("1.0.0", False)]
    assert versions[0]["manifest"]["signature"]["dsse"]["signatures"]


def test_filters(admin_client, key):
    register(key, "1.0.0")
    register(key, "0.1.0", name="gpu-llm", pool="gpu", intents=("chat.*",))
    assert [m["name"] for m in admin_client.get("/v1/modules?pool=gpu").json()["results"]] == ["gpu-llm"]
    assert [m["name"] for m in admin_client.get("/v1/modules?intent=chat.*").json()["results"]] == ["gpu-llm"]
    assert admin_client.get("/v1/modules?health=bogus").status_code == 400


def test_detail_exposes_last_health_responses_and_errors(admin_client, key):
    register(key)
    module = Module.objects.get(name="summarizer")
    record_probe(
        module,
        Probe(ProbeOutcome.FAILED, 503, 12.5, "HTTP 503", '{"error": "model not loaded"}'),
        version="1.0.0",
        url="http://127.0.0.1:9/healthz",
        now=timezone.now(),
    )
    checks = admin_client.get("/v1/modules/summarizer").json()["recent_health_checks"]
    assert checks[0]["http_status"] == 503
    assert checks[0]["error"] == "HTTP 503"
    assert "model not loaded" in checks[0]["response_excerpt"]


def test_trusted_keys_report(admin_client, keys):
    key = keys.new("k2026")
    keys.new("k2025", retired="")
    register(key)
    report = admin_client.get("/v1/modules/trusted-keys").json()
    assert {k["key_id"]: k["state"] for k in report["keys"]} == {"k2025": "retired", "k2026": "active"}
    assert report["modules"][0]["verifies_now"] is True
    assert report["would_fail"] == 0


def test_negative_authorisation(key, db):
    register(key, tenant=OTHER_TENANT)
    for path in ("/v1/modules", "/v1/modules/summarizer", "/v1/modules/summarizer/versions", "/v1/modules/trusted-keys"):
        assert api_client().get(path).status_code == 401
        assert client_with_roles(["memory.reader"]).get(path).status_code == 403
    teammate = client_with_roles(["modules.admin"], TENANT)
    assert teammate.get("/v1/modules").json()["results"] == []
    assert teammate.get("/v1/modules/summarizer").status_code == 404
    assert teammate.get("/v1/modules/summarizer/versions").status_code == 404
    # The auditor of the owning tenant may read.
    assert client_with_roles(["auditor"], OTHER_TENANT).get("/v1/modules/summarizer").status_code == 200
