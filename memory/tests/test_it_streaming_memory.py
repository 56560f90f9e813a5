"""Assembling a 200 MiB upload streams: peak RSS growth stays far below the file size.

The chunks are written through the storage layer (not HTTP, to stay fast); the assembly runs in
a fresh subprocess so its ``ru_maxrss`` measures only this work, not the test runner's history.
"""

from __future__ import annotations

import hashlib
import json
import subprocess
import sys
import uuid
from dataclasses import dataclass

from django.core.files.storage import FileSystemStorage

from aion.testing.processes import ROOT, subprocess_env
from memory.storage import LocalBackend

MiB = 1024 * 1024
CHUNK = 4 * MiB
CHUNKS = 50  # 200 MiB

CHILD = r"""
import json, resource, sys
import django
django.setup()
from dataclasses import dataclass
from django.core.files.storage import FileSystemStorage
from memory.storage import ChunkRef, LocalBackend

@dataclass
class Target:
    id: str
    object_key: str
    multipart_upload_id: str = ""
    content_type: str = ""

spec = json.loads(sys.argv[1])
backend = LocalBackend(FileSystemStorage(location=spec["location"]))
chunks = [ChunkRef(i, spec["chunk"], key, "") for i, key in enumerate(spec["keys"])]
baseline = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
result = backend.assemble(Target(spec["id"], spec["object_key"]), chunks)
peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
print(json.dumps({"baseline_kib": baseline, "peak_kib": peak, "checksum": result.checksum, "size": result.size}))
"""


@dataclass
class Target:
    id: str
    object_key: str
    multipart_upload_id: str = ""
    content_type: str = ""


def test_assembling_200_mib_keeps_peak_rss_growth_well_under_the_file_size(tmp_path):
    backend = LocalBackend(FileSystemStorage(location=str(tmp_path / "bucket")))
    target = Target(str(uuid.uuid4()), "documents/acme/big/blob.bin")
    block = bytes(range(256)) * (CHUNK // 256)
    expected = hashlib.sha256()
    keys = []
    for index in range(CHUNKS):
        data = index.to_bytes(4, "big") + block[4:]  # every chunk differs, so order matters to the checksum
        expected.update(data)
        keys.append(backend.write_chunk(target, index, data)[0])

    spec = {"location": str(tmp_path / "bucket"), "id": target.id, "object_key": target.object_key, "keys": keys, "chunk": CHUNK}
    completed = subprocess.run(
        [sys.executable, "-c", CHILD, json.dumps(spec)], cwd=ROOT, env=subprocess_env(), capture_output=True, text=True, timeout=120
    )
    assert completed.returncode == 0, completed.stderr[-3000:]
    report = json.loads(completed.stdout.strip().splitlines()[-1])
    assert report["size"] == CHUNK * CHUNKS
    assert report["checksum"] == expected.hexdigest()
    growth_mib = (report["peak_kib"] - report["baseline_kib"]) / 1024
    assert growth_mib < 24, f"assembly grew peak RSS by {growth_mib:.1f} MiB for a 200 MiB file"
    assert (tmp_path / "bucket" / target.object_key).stat().st_size == CHUNK * CHUNKS
