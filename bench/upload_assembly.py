"""Upload assembly: peak RSS growth of ``memory.assemble_upload`` for a 200 MiB and a 1 GiB upload.

The chunks (4 MiB) are stored through the service layer (``memory.services.receive_chunk``, the
same claim, durable write and receipt as the HTTP route, without HTTP to stay fast). The assembly
then runs in a fresh child process, as a Celery worker would run it (warmed up by assembling a
one-chunk upload first: imports, database connection, broker producer), and the child reports its
RSS just before ``assemble_upload`` and its peak during it (``VmHWM``, the kernel's high-water
mark, reset to the current RSS first through ``/proc/self/clear_refs``, so start-up peaks do not
hide the assembly's). Streaming means the growth is a few blocks whatever the size: the target is
<= 16 MiB for both sizes, and the row's ratio (1 GiB growth / 200 MiB growth) shows it is constant.
Everything is written under the bench's own AION_VAR_DIR, removed at the end.

    AION_BENCH_CONFIG=embedded|pg .venv/bin/python bench/upload_assembly.py [--sizes-mib 200,1024]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))

from common import PY, ROOT, bench_env, row, setup_django

MiB = 1024 * 1024
CHUNK = 4 * MiB
LIMIT_MIB = 16

CHILD = r"""
import json, sys, time
import django
django.setup()
from memory import services
from memory.models import Upload


def status_kib(field):
    with open("/proc/self/status") as status:
        return next(int(line.split()[1]) for line in status if line.startswith(field + ":"))


upload_id, warm_up_id = sys.argv[1], sys.argv[2]
# A worker has its imports, database connection and broker producer warm: a one-chunk upload first.
assert services.assemble_upload(warm_up_id), "the warm-up assembly did not run"
# Reset the high-water mark to the current RSS (Linux clear_refs "5"), so the peak is the assembly's own.
with open("/proc/self/clear_refs", "w") as refs:
    refs.write("5")
before = status_kib("VmRSS")
started = time.perf_counter()
assert services.assemble_upload(upload_id), "assembly did not run"
seconds = time.perf_counter() - started
peak = status_kib("VmHWM")
upload = Upload.objects.get(pk=upload_id)
print(json.dumps({"before_kib": before, "peak_kib": peak, "seconds": seconds, "size": upload.size_bytes, "checksum": upload.checksum}))
"""


def store_upload(size_mib: int) -> tuple[str, str]:
    """Stores SIZE_MIB of distinct 4 MiB chunks through receive_chunk; returns (upload id, expected sha256)."""
    import hashlib

    from aion.auth.principal import system_principal
    from memory import services

    actor = system_principal("bench", "bench-upload-assembly")
    count = size_mib * MiB // CHUNK
    block = os.urandom(CHUNK)
    expected = hashlib.sha256()
    upload_id = None
    for index in range(count):
        data = index.to_bytes(8, "big") + block[8:]
        expected.update(data)
        request = services.ChunkRequest(
            chunk_index=index, data=data, upload_id=upload_id, total_chunks=count, profile="bench", content_type="application/octet-stream"
        )
        upload_id = services.receive_chunk("bench", request, actor=actor).upload.id
    return str(upload_id), expected.hexdigest()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--sizes-mib", default="200,1024")
    args = parser.parse_args()
    sizes = [int(s) for s in args.sizes_mib.split(",")]
    need = sum(sizes) * 2 * MiB + 512 * MiB  # chunks and the object coexist until the chunks are deleted
    env = bench_env(AION_LOG_LEVEL="WARNING")
    var = env["AION_VAR_DIR"]
    if shutil.disk_usage(var).free < need:
        raise SystemExit(f"not enough disk under {var}: {need // MiB} MiB needed")
    try:
        setup_django(env)
        from memory import services
        from memory.models import Upload

        services.save_profile("bench", "bench", {"pipeline": ["extract"]}, actor=None)
        growth: dict[int, float] = {}
        for size in sizes:
            started = time.perf_counter()
            upload_id, expected = store_upload(size)
            warm_up_id, _ = store_upload(4)
            stored_seconds = time.perf_counter() - started
            child = subprocess.run([PY, "-c", CHILD, upload_id, warm_up_id], cwd=ROOT, env=env, capture_output=True, text=True, timeout=600)
            if child.returncode != 0:
                raise SystemExit(f"assembly child failed: {child.stderr[-3000:]}")
            report = json.loads(child.stdout.strip().splitlines()[-1])
            if report["size"] != size * MiB or report["checksum"] != expected:
                raise SystemExit(f"the assembled object is wrong: {report}")
            growth[size] = (report["peak_kib"] - report["before_kib"]) / 1024
            print(
                f"[upload_assembly] {size} MiB: stored in {stored_seconds:.1f} s, assembled in {report['seconds']:.1f} s "
                f"({size / report['seconds']:,.0f} MiB/s), peak RSS growth {growth[size]:.1f} MiB",
                file=sys.stderr,
                flush=True,
            )
            for done in (upload_id, warm_up_id):
                services.delete_document(Upload.objects.get(pk=done), actor=None, reason="bench")  # frees the disk
        small, large = min(sizes), max(sizes)
        ratio = growth[large] / growth[small] if growth[small] > 0 else None
        sizes_text = " / ".join(f"{s} MiB: {growth[s]:.1f} MiB" for s in sizes)
        row(
            f"upload assembly, peak RSS growth ({', '.join(f'{s} MiB' for s in sizes)}; 4 MiB chunks, filesystem)",
            sizes_text,
            f"{small} MiB upload: {growth[small]:.1f} MiB",
            ratio,
            f"<= {LIMIT_MIB} MiB each, constant (ratio {large} / {small} MiB)",
        )
        over = [s for s in sizes if growth[s] > LIMIT_MIB]
        if over:
            print(f"[upload_assembly] over {LIMIT_MIB} MiB for {over} MiB", file=sys.stderr)
    finally:
        shutil.rmtree(var, ignore_errors=True)


if __name__ == "__main__":
    main()
