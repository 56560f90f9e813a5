"""Object storage lifecycle: a document MinIO accepts, MinIO's own 72 h multipart clean-up, the S3
variant with ``AbortIncompleteMultipartUpload``, and the store-level abort counter the Grafana
"Object Storage" panel plots.

The MinIO document is read the way ``mc ilm import`` sends it: the S3 JSON lifecycle shape becomes
the S3 XML, parsed by the ``minio`` SDK's ``LifecycleConfig``, then held to the MinIO server's rule
validation (internal/bucket/lifecycle: a rule needs an Expiration, Transition or Noncurrent action;
``AbortIncompleteMultipartUpload`` has no field there, so MinIO drops it). No MinIO server runs here;
the S3 variant and the beat job run against a real S3-compatible server (moto).
"""

from __future__ import annotations

import json
import os
import re
import shlex
from datetime import timedelta
from pathlib import Path
from typing import Any
from xml.etree import ElementTree as ET

import pytest
import yaml
from django.conf import settings
from django.utils import timezone
from minio.lifecycleconfig import LifecycleConfig

from aion.ops.tests.test_it_deploy import metric_names
from memory.models import Upload
from memory.tasks import abort_stale_uploads

ROOT = Path(settings.BASE_DIR)
MINIO_DOCUMENT = ROOT / "deploy" / "minio" / "lifecycle.json"
S3_DOCUMENT = ROOT / "deploy" / "minio" / "lifecycle.s3.json"
S3_NS = "http://s3.amazonaws.com/doc/2006-03-01/"
RULE_KEYS = {
    "ID", "Status", "Filter", "Prefix", "Expiration", "Transition", "NoncurrentVersionExpiration",
    "NoncurrentVersionTransition", "AbortIncompleteMultipartUpload",
}  # fmt: skip
COUNTER = "aion_storage_multipart_aborted_total"


def _load(path: Path) -> dict[str, Any]:
    return json.loads(path.read_text())  # type: ignore[no-any-return]


def _to_xml(document: dict[str, Any]) -> bytes:
    """The JSON shape as S3 XML: the same element names, a list as repeated elements (``Tags`` -> ``Tag``)."""
    root = ET.Element("LifecycleConfiguration", {"xmlns": S3_NS})

    def add(parent: ET.Element, name: str, value: Any) -> None:
        if isinstance(value, list):
            for item in value:
                add(parent, "Tag" if name == "Tags" else name, item)
            return
        child = ET.SubElement(parent, name)
        if isinstance(value, dict):
            for key, inner in value.items():
                add(child, key, inner)
        else:
            child.text = str(value).lower() if isinstance(value, bool) else str(value)

    for rule in document["Rules"]:
        add(root, "Rule", rule)
    return ET.tostring(root)


def _minio_config(document: dict[str, Any]) -> LifecycleConfig:
    return LifecycleConfig.fromxml(ET.fromstring(_to_xml(document)))  # noqa: S314 - XML built here from a repository file


def minio_refusals(document: dict[str, Any]) -> list[str]:
    """Why MinIO would refuse (or silently drop part of) DOCUMENT; [] when it accepts it as written."""
    try:
        config = _minio_config(document)
    except ValueError as exc:  # the SDK's own model checks (status, filter, at least one action)
        return [f"minio SDK: {exc}"]
    errors = [f"{rule.get('ID')}: unknown element {key}" for rule in document["Rules"] for key in set(rule) - RULE_KEYS]
    if not 1 <= len(config.rules) <= 1000:
        errors.append("a lifecycle configuration holds 1 to 1000 rules")
    ids = [rule.rule_id for rule in config.rules]
    errors += [f"{rule_id}: duplicate rule ID" for rule_id in sorted({i for i in ids if i and ids.count(i) > 1})]
    for rule in config.rules:
        name = rule.rule_id or "(no ID)"
        if rule.status not in ("Enabled", "Disabled"):  # the SDK's Rule skips BaseRule's status check
            errors.append(f"{name}: Status must be Enabled or Disabled")
        if len(rule.rule_id or "") > 255:
            errors.append(f"{name}: ID length is limited to 255 characters")
        if rule.abort_incomplete_multipart_upload is not None:
            errors.append(f"{name}: AbortIncompleteMultipartUpload is not implemented by MinIO")
        if not (rule.expiration or rule.transition or rule.noncurrent_version_expiration or rule.noncurrent_version_transition):
            errors.append(f"{name}: no Expiration, Transition or Noncurrent action (MalformedXML)")
        if rule.rule_filter is None:
            errors.append(f"{name}: neither Prefix nor Filter (MalformedXML)")
        if rule.expiration is not None:
            days, date = rule.expiration.days, rule.expiration.date
            if (days is None) == (date is None) and rule.expiration.expired_object_delete_marker is None:
                errors.append(f"{name}: Expiration needs exactly one of Days or Date")
            if days is not None and days <= 0:
                errors.append(f"{name}: Expiration Days must be a positive integer")
        noncurrent = rule.noncurrent_version_expiration
        if noncurrent is not None and not (noncurrent.noncurrent_days or 0) > 0:
            errors.append(f"{name}: NoncurrentDays must be a positive integer")
    return errors


def _minio_setup_commands() -> list[str]:
    entrypoint = yaml.safe_load((ROOT / "compose.yaml").read_text())["services"]["minio-setup"]["entrypoint"]
    shell, flag, script = shlex.split(entrypoint)
    assert (shell, flag) == ("sh", "-c")
    return [" ".join(part.split()) for part in script.split("&&")]


def _hours(duration: str) -> float:
    match = re.fullmatch(r"(\d+)([hm])", duration)
    assert match, f"unexpected duration {duration!r}"
    return int(match.group(1)) / (60 if match.group(2) == "m" else 1)


# --- the documents ---------------------------------------------------------------------------------


def test_the_minio_document_is_what_minio_accepts_with_memory_retention_as_an_expiration_rule():
    document = _load(MINIO_DOCUMENT)
    assert minio_refusals(document) == []
    rules = {rule.rule_id: rule for rule in _minio_config(document).rules}
    assert set(rules) == {"memory-retention", "memory-stale-chunks"}
    retention = rules["memory-retention"]
    assert retention.status == "Enabled" and retention.rule_filter is not None and retention.rule_filter.prefix == "documents/"
    assert retention.expiration is not None and retention.expiration.days == 365
    chunks = rules["memory-stale-chunks"]
    assert chunks.rule_filter is not None and chunks.rule_filter.prefix == "chunks/"
    assert chunks.expiration is not None and chunks.expiration.days == 4


ABORT_ONLY = {"ID": "abort", "Status": "Enabled", "Filter": {"Prefix": ""}, "AbortIncompleteMultipartUpload": {"DaysAfterInitiation": 3}}
EXPIRE = {"ID": "expire", "Status": "Enabled", "Filter": {"Prefix": "documents/"}, "Expiration": {"Days": 365}}


@pytest.mark.parametrize(
    ("rules", "refusal"),
    [
        pytest.param([EXPIRE, ABORT_ONLY], "abort: no Expiration, Transition or Noncurrent action", id="abort-rule-of-its-own"),
        pytest.param(
            [{**EXPIRE, "AbortIncompleteMultipartUpload": {"DaysAfterInitiation": 3}}], "not implemented by MinIO", id="abort-beside-expiry"
        ),
        pytest.param([{**EXPIRE, "Expiration": {"Days": 0}}], "Days must be a positive integer", id="zero-days"),
        pytest.param([EXPIRE, EXPIRE], "duplicate rule ID", id="duplicate-id"),
        pytest.param([{**EXPIRE, "Expiraton": {"Days": 3}}], "unknown element Expiraton", id="misspelt-action"),
        pytest.param(
            [{"ID": "none", "Status": "Enabled", "Filter": {"Prefix": "x/"}}], "minio SDK: at least one of action", id="no-action"
        ),
        pytest.param([{**EXPIRE, "Status": "On"}], "Status must be Enabled or Disabled", id="bad-status"),
    ],
)
def test_the_minio_validation_refuses_what_the_minio_server_refuses(rules, refusal):
    assert any(refusal in error for error in minio_refusals({"Rules": rules})), minio_refusals({"Rules": rules})


def _apply_to_moto(s3_server, document: dict[str, Any]) -> dict[str, dict[str, Any]]:
    client = s3_server.client()
    bucket = f"lifecycle-{os.urandom(4).hex()}"
    s3_server.create_bucket(bucket)
    client.put_bucket_lifecycle_configuration(Bucket=bucket, LifecycleConfiguration=document)
    return {rule["ID"]: rule for rule in client.get_bucket_lifecycle_configuration(Bucket=bucket)["Rules"]}


def test_the_s3_variant_applies_to_an_s3_server_and_keeps_the_3_day_multipart_abort(s3_server):
    s3, minio = _load(S3_DOCUMENT), _load(MINIO_DOCUMENT)
    rules = _apply_to_moto(s3_server, s3)
    assert rules["memory-abort-incomplete-multipart"]["AbortIncompleteMultipartUpload"] == {"DaysAfterInitiation": 3}
    assert rules["memory-abort-incomplete-multipart"]["Status"] == "Enabled"
    assert rules["memory-retention"]["Expiration"] == {"Days": 365} and rules["memory-retention"]["Status"] == "Enabled"
    # The variant is the MinIO document plus the abort rule, so the two cannot drift apart.
    expiring = [rule for rule in s3["Rules"] if "AbortIncompleteMultipartUpload" not in rule]
    assert expiring == minio["Rules"]
    assert {error.split(": ")[0] for error in minio_refusals(s3)} == {"memory-abort-incomplete-multipart"}  # hence two documents
    # The MinIO document is a valid S3 document too (boto3 sends what `mc ilm import` sends).
    assert set(_apply_to_moto(s3_server, minio)) == {"memory-retention", "memory-stale-chunks"}


# --- MinIO's stale-upload setting in compose and the runbook ---------------------------------------


def test_compose_minio_setup_sets_the_72_hour_stale_upload_expiry_and_imports_the_minio_document():
    commands = _minio_setup_commands()
    assert commands[0].startswith("until mc alias set minio http://minio:9000 ")
    expiry = [c for c in commands if c.startswith("mc admin config set minio api stale_uploads_expiry=")]
    assert len(expiry) == 1, commands
    hours = _hours(expiry[0].rsplit("=", 1)[1])
    assert hours == 72 == _load(S3_DOCUMENT)["Rules"][-1]["AbortIncompleteMultipartUpload"]["DaysAfterInitiation"] * 24
    assert hours >= settings.AION_MEMORY_UPLOAD_TTL_HOURS  # the store never drops an upload the API still accepts
    assert "mc ilm import minio/memory < /deploy/minio/lifecycle.json" in commands
    volumes = yaml.safe_load((ROOT / "compose.yaml").read_text())["services"]["minio-setup"]["volumes"]
    assert "./deploy/minio:/deploy/minio:ro" in volumes


def test_the_runbook_applies_the_minio_document_and_the_stale_upload_expiry_and_names_the_s3_variant():
    runbook = (ROOT / "docs" / "runbook.md").read_text()
    assert "mc ilm import minio/memory < deploy/minio/lifecycle.json" in runbook
    assert "mc admin config set minio api stale_uploads_expiry=72h" in runbook
    assert "deploy/minio/lifecycle.s3.json" in runbook
    assert "`memory-retention`" in runbook
    listed = re.search(r"^mc ilm ls minio/memory\s+#\s*(.+)$", runbook, re.MULTILINE)
    assert listed, "the runbook no longer says what `mc ilm ls minio/memory` shows"
    assert {name.strip() for name in listed.group(1).split(",")} == {rule["ID"] for rule in _load(MINIO_DOCUMENT)["Rules"]}


# --- the store-level abort counter -----------------------------------------------------------------


def _counter(client) -> float:
    body = client.get("/metrics").content.decode()
    match = re.search(rf"^{COUNTER} ([0-9.e+-]+)$", body, re.MULTILINE)
    assert match, f"{COUNTER} missing from /metrics"
    return float(match.group(1))


def _make_stale(*upload_ids: str) -> None:
    Upload.objects.filter(pk__in=upload_ids).update(expires_at=timezone.now() - timedelta(minutes=1))


@pytest.mark.django_db
def test_the_beat_job_counts_each_multipart_upload_it_aborts_at_the_store(client, personas, ingest, s3_memory):
    s3, bucket = s3_memory
    stale = ingest(personas.writer, data=b"one", chunk_index=0, total_chunks=2).json()["upload_id"]
    expired = ingest(personas.writer, data=b"two", chunk_index=0, total_chunks=2).json()["upload_id"]
    fresh = ingest(personas.writer, data=b"three", chunk_index=0, total_chunks=2).json()["upload_id"]
    gone = Upload.objects.get(pk=expired)
    # The store got there first (as MinIO's stale_uploads_expiry does): the job has nothing to abort there.
    s3.abort_multipart_upload(Bucket=bucket, Key=gone.object_key, UploadId=gone.multipart_upload_id)
    _make_stale(stale, expired)
    before = _counter(client)

    assert abort_stale_uploads() == 2  # the beat job itself (memory.tasks), against the S3 server

    assert _counter(client) - before == 1
    open_uploads = s3.list_multipart_uploads(Bucket=bucket).get("Uploads", [])
    assert [u["UploadId"] for u in open_uploads] == [Upload.objects.get(pk=fresh).multipart_upload_id]
    assert set(Upload.objects.filter(state="aborted").values_list("id", flat=True)) == {gone.id, Upload.objects.get(pk=stale).id}
    assert abort_stale_uploads() == 0 and _counter(client) - before == 1  # a second sweep aborts nothing


@pytest.mark.django_db
def test_an_upload_without_a_multipart_upload_is_aborted_but_not_counted(client, personas, ingest):
    """The default filesystem backend: an app-level abort, no AbortMultipartUpload."""
    upload_id = ingest(personas.writer, data=b"one", chunk_index=0, total_chunks=2).json()["upload_id"]
    _make_stale(upload_id)
    before = _counter(client)
    assert abort_stale_uploads() == 1
    assert Upload.objects.get(pk=upload_id).state == "aborted"
    assert _counter(client) == before


def test_the_object_storage_multipart_panel_plots_store_level_aborts():
    board = _load(ROOT / "deploy" / "grafana" / "object-storage.json")
    panels = [p for p in board["panels"] if "Multipart" in p["title"]]
    assert len(panels) == 1
    queried = set().union(*(metric_names(t["expr"]) for t in panels[0]["targets"]))
    assert queried == {COUNTER}
