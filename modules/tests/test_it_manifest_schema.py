"""Manifest validation: every schema rule and cross-field rule is reported with its dotted path."""

from __future__ import annotations

import copy
import json

import pytest

from aion.models import SecurityIncident
from aion.testing.module_releases import build_manifest
from modules import manifest as manifests
from modules.models import Module


def valid(key=None):
    manifest = build_manifest(None)
    manifest["signature"] = {
        "dsse": {"payloadType": "application/vnd.in-toto+json", "payload": "e30=", "signatures": [{"sig": "MEUCIQ=="}]}
    }
    return manifest


def without(field):
    def change(m):
        del m[field]

    return change


def setting(path, value):
    def change(m):
        target = m
        parts = path.split(".")
        for part in parts[:-1]:
            target = target[part]
        target[parts[-1]] = value

    return change


CASES = [
    ("name required", without("name"), "name"),
    ("version required", without("version"), "version"),
    ("image required", without("image"), "image"),
    ("pool required", without("pool"), "pool"),
    ("endpoint required", without("endpoint"), "endpoint"),
    ("intents required", without("intents"), "intents"),
    ("name not a slug", setting("name", "Summ_arizer"), "name"),
    ("name too long", setting("name", "a" * 64), "name"),
    ("name reserved", setting("name", "trusted-keys"), "name"),
    ("version not semver", setting("version", "1.0"), "version"),
    ("version leading zero", setting("version", "01.0.0"), "version"),
    ("image without digest", setting("image", "registry.example.com/aion/summarizer:1.0.0"), "image"),
    ("image short digest", setting("image", "registry.example.com/aion/summarizer@sha256:abc"), "image"),
    ("image not a string", setting("image", 7), "image"),
    ("runtime empty", setting("runtime", ""), "runtime"),
    ("cpu quantity", setting("resources.cpu", "lots"), "resources.cpu"),
    ("memory quantity", setting("resources.memory", "512 megs"), "resources.memory"),
    ("gpu negative", setting("resources.gpu", -1), "resources.gpu"),
    ("gpu not integer", setting("resources.gpu", 1.5), "resources.gpu"),
    ("unknown resource", setting("resources.tpu", 1), "resources.tpu"),
    ("pool unknown", setting("pool", "tpu"), "pool"),
    ("node selector value", setting("node_selector", {"aion.io/pool": 3}), "node_selector.aion.io/pool"),
    ("node selector key", setting("node_selector", {"bad key!": "x"}), "node_selector"),
    ("intents empty", setting("intents", []), "intents"),
    ("intent format", setting("intents", ["Summarize Text"]), "intents.0"),
    ("intents duplicate", setting("intents", ["a", "a"]), "intents"),
    ("endpoint not a URL", setting("endpoint", "ftp://host/x"), "endpoint"),
    ("health path relative", setting("health_path", "healthz"), "health_path"),
    ("network permission", setting("permissions.network", "internet"), "permissions.network"),
    ("filesystem permission", setting("permissions.filesystem", "everything"), "permissions.filesystem"),
    ("secrets permission", setting("permissions.secrets", ["ok", "bad path!"]), "permissions.secrets.1"),
    ("unknown permission", setting("permissions.root", True), "permissions.root"),
    ("signature not an object", setting("signature", "MEUCIQ=="), "signature"),
    ("signature without envelope", setting("signature", {"key_id": "k2026"}), "signature.dsse"),
    ("signature unknown field", setting("signature", {"dsse": "{}", "cert": "y"}), "signature.cert"),
    ("unknown top-level field", setting("owner", "me"), "owner"),
]


@pytest.mark.parametrize(("label", "change", "path"), CASES, ids=[c[0] for c in CASES])
def test_each_schema_violation_is_reported_at_its_path(label, change, path):
    manifest = valid()
    assert manifests.validate(manifest) == {}
    change(manifest)
    errors = manifests.validate(manifest)
    assert path in errors, f"{label}: {errors}"


CROSS_FIELD = [
    ("cpu pool requests a GPU", {"pool": "cpu", "resources": {"gpu": 2}}, "resources.gpu"),
    ("gpu pool without a GPU", {"pool": "gpu", "resources": {"cpu": "1"}, "node_selector": {"aion.io/pool": "gpu"}}, "resources.gpu"),
    ("selector names another pool", {"pool": "cpu", "node_selector": {"aion.io/pool": "gpu"}}, "node_selector.aion.io/pool"),
]


@pytest.mark.parametrize(("label", "fields", "path"), CROSS_FIELD, ids=[c[0] for c in CROSS_FIELD])
def test_cross_field_rules(label, fields, path):
    manifest = valid()
    manifest.update(fields)
    assert path in manifests.validate(manifest)


def test_several_violations_are_all_reported():
    manifest = valid()
    manifest["version"] = "one"
    manifest["resources"]["cpu"] = "many"
    del manifest["endpoint"]
    assert {"version", "resources.cpu", "endpoint"} <= set(manifests.validate(manifest))


def test_a_non_mapping_and_bad_yaml_are_reported():
    assert manifests.validate(["x"]) == {"manifest": ["The manifest must be a mapping (a YAML or JSON object)."]}
    with pytest.raises(manifests.ManifestInvalid) as caught:
        manifests.parse_yaml("name: [unclosed")
    assert "manifest" in caught.value.errors


def test_defaults_and_image_parsing():
    manifest = valid()
    del manifest["health_path"]
    del manifest["node_selector"]
    assert manifests.health_path(manifest) == "/healthz"
    assert manifests.node_selector(manifest) == {"aion.io/pool": "cpu"}
    ref = manifests.parse_image("registry.example.com:5000/aion/x:1.2@sha256:" + "a" * 64)
    assert (ref.repository, ref.tag, ref.digest) == ("registry.example.com:5000/aion/x", "1.2", "sha256:" + "a" * 64)


def test_same_content_as_yaml_or_json_has_one_identity():
    manifest = valid()
    shuffled = json.loads(json.dumps(dict(reversed(list(copy.deepcopy(manifest).items())))))
    assert manifests.canonical_sha256(manifest) == manifests.canonical_sha256(shuffled)


@pytest.mark.django_db
def test_the_api_answers_422_with_dotted_manifest_paths_and_stores_nothing(admin_client, key):
    manifest = build_manifest(key)
    manifest["resources"]["gpu"] = 2
    manifest["version"] = "v1"
    response = admin_client.post("/v1/modules", {"manifest": manifest}, format="json")
    assert response.status_code == 422
    problem = response.json()
    assert problem["type"].endswith("invalid-manifest")
    assert "manifest.version" in problem["errors"]
    assert Module.objects.count() == 0
    assert SecurityIncident.objects.count() == 0  # a schema error is not a security incident


def test_yaml_aliases_are_refused_and_huge_values_are_quoted_briefly():
    bomb = "a: &a [x, x]\nb: &b [*a, *a]\nname: *b\n"
    with pytest.raises(manifests.ManifestInvalid, match="aliases"):
        manifests.parse_yaml(bomb)
    manifest = valid()
    manifest["runtime"] = ["x" * 5000]
    [message] = manifests.validate(manifest)["runtime"]
    assert len(message) <= 300


@pytest.mark.django_db
def test_an_alias_bomb_posted_as_yaml_is_a_400(admin_client):
    body = "a: &a [x, x, x, x, x, x, x, x]\n" + "".join(f"l{i}: &l{i} [*{'a' if i == 0 else f'l{i - 1}'}] \n" for i in range(30))
    response = admin_client.post("/v1/modules", data=body, content_type="application/yaml")
    assert response.status_code == 400
