"""Assembly streams on both backends: peak RSS growth stays under 16 MiB, far below the upload's size.

The chunks are written through the storage layer (not HTTP, to stay fast); the assembly runs in a
fresh subprocess that resets its RSS high-water mark (``/proc/self/clear_refs``) right before
``assemble``, so ``VmHWM`` measures only this work, not imports or the test runner's history.
A memory bound, not a timing test. S3 runs against moto's server (in this test process, so the
bytes it keeps are not counted in the child), with every kind of part: direct parts, joined runs
of small buffered chunks (spooled) and server-side copies of large buffered ones.
"""

from __future__ import annotations

import hashlib
import json
import subprocess
import sys
import uuid
from dataclasses import dataclass

import pytest
from django.core.files.storage import FileSystemStorage

from aion.testing.processes import ROOT, subprocess_env
from memory.storage import S3_MIN_PART_BYTES, ChunkRef, LocalBackend, S3Backend

MiB = 1024 * 1024
LIMIT_MIB = 16

CHILD = r"""
import json, sys
import django
django.setup()
from dataclasses import dataclass
from django.core.files.storage import FileSystemStorage
from memory.storage import ChunkRef, LocalBackend, S3Backend

@dataclass
class Target:
    id: str
    object_key: str
    multipart_upload_id: str = ""
    content_type: str = ""


def status_kib(field):
    with open("/proc/self/status") as status:
        return next(int(line.split()[1]) for line in status if line.startswith(field + ":"))


spec = json.loads(sys.argv[1])
if spec["backend"] == "s3":
    from storages.backends.s3 import S3Storage
    backend = S3Backend(S3Storage(**spec["options"]))
    backend.client.head_bucket(Bucket=backend.bucket)  # connection set-up is not assembly
else:
    backend = LocalBackend(FileSystemStorage(location=spec["location"]))
chunks = [ChunkRef(**chunk) for chunk in spec["chunks"]]
target = Target(spec["id"], spec["object_key"], spec["multipart_upload_id"])
with open("/proc/self/clear_refs", "w") as refs:
    refs.write("5")  # the high-water mark starts again at the current RSS
before = status_kib("VmRSS")
result = backend.assemble(target, chunks)
peak = status_kib("VmHWM")
print(json.dumps({"before_kib": before, "peak_kib": peak, "checksum": result.checksum, "size": result.size}))
"""


@dataclass
class Target:
    id: str
    object_key: str
    multipart_upload_id: str = ""
    content_type: str = ""


def _chunk_bytes(index: int, size: int, block: bytes) -> bytes:
    """Every chunk differs (its first bytes), so order matters to the checksum."""
    return (index.to_bytes(8, "big") + block)[:size]


def _assemble_in_child(spec: dict) -> dict:
    completed = subprocess.run(
        [sys.executable, "-c", CHILD, json.dumps(spec)], cwd=ROOT, env=subprocess_env(), capture_output=True, text=True, timeout=300
    )
    assert completed.returncode == 0, completed.stderr[-3000:]
    return json.loads(completed.stdout.strip().splitlines()[-1])


def _growth_mib(report: dict) -> float:
    return (report["peak_kib"] - report["before_kib"]) / 1024


def test_assembling_200_mib_on_the_filesystem_grows_peak_rss_by_under_16_mib(tmp_path):
    backend = LocalBackend(FileSystemStorage(location=str(tmp_path / "bucket")))
    target = Target(str(uuid.uuid4()), "documents/acme/big/blob.bin")
    block = bytes(range(256)) * (4 * MiB // 256)
    expected = hashlib.sha256()
    chunks = []
    for index in range(50):  # 200 MiB in 4 MiB chunks
        data = _chunk_bytes(index, 4 * MiB, block)
        expected.update(data)
        key, _ = backend.write_chunk(target, index, data)
        chunks.append({"index": index, "size": len(data), "storage_key": key, "part_etag": ""})

    spec = {"backend": "filesystem", "location": str(tmp_path / "bucket"), "id": target.id, "object_key": target.object_key}
    report = _assemble_in_child(spec | {"multipart_upload_id": "", "chunks": chunks})
    assert report["size"] == 200 * MiB
    assert report["checksum"] == expected.hexdigest()
    assert _growth_mib(report) < LIMIT_MIB, f"assembly grew peak RSS by {_growth_mib(report):.1f} MiB for a 200 MiB file"
    assert (tmp_path / "bucket" / target.object_key).stat().st_size == 200 * MiB


@pytest.mark.django_db
def test_assembling_64_mib_on_s3_grows_peak_rss_by_under_16_mib(s3_memory):
    from django.conf import settings
    from django.core.files.storage import storages

    client, bucket = s3_memory
    backend = S3Backend(storages["memory"])
    target = Target(str(uuid.uuid4()), "documents/acme/big/blob.bin")
    target.multipart_upload_id = backend.begin(target)
    # Two direct parts (6 MiB, in order), then buffered chunks: 4 MiB ones joined in pairs, 6 MiB ones
    # copied inside S3, and a short last chunk: 12 + 32 + 18 + 2 = 64 MiB.
    sizes = [6 * MiB] * 2 + [4 * MiB] * 8 + [6 * MiB] * 3 + [2 * MiB]
    assert sum(sizes) == 64 * MiB
    block = bytes(range(256)) * (6 * MiB // 256)
    expected = hashlib.sha256()
    chunks = []
    for index, size in enumerate(sizes):
        data = _chunk_bytes(index, size, block)
        expected.update(data)
        key, etag = backend.write_chunk(target, index, data, may_be_part=index < 2)
        chunks.append({"index": index, "size": size, "storage_key": key, "part_etag": etag})
    plan = [kind for kind, _ in S3Backend.plan_parts([_ref(c) for c in chunks])]
    assert set(plan) == {"direct", "join", "copy"}, plan
    assert all(size >= S3_MIN_PART_BYTES for size in sizes[:2])

    spec = {"backend": "s3", "options": dict(settings.STORAGES["memory"]["OPTIONS"]), "id": target.id, "object_key": target.object_key}
    report = _assemble_in_child(spec | {"multipart_upload_id": target.multipart_upload_id, "chunks": chunks})
    assert report["size"] == 64 * MiB
    assert report["checksum"] == expected.hexdigest()
    assert _growth_mib(report) < LIMIT_MIB, f"assembly grew peak RSS by {_growth_mib(report):.1f} MiB for a 64 MiB object"
    assert client.head_object(Bucket=bucket, Key=target.object_key)["ContentLength"] == 64 * MiB


def _ref(chunk: dict) -> ChunkRef:
    return ChunkRef(**chunk)
