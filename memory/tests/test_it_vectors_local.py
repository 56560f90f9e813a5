"""Embedded Qdrant (local mode) shared by several processes and threads: correct, and cheap to reuse.

A real second process (a Python subprocess with Django set up, like a Celery worker) writes to the
same folder while this process reads and writes; nothing is faked.
"""

from __future__ import annotations

import subprocess
import sys
import textwrap
import threading

from django.test import override_settings

from aion.testing.processes import ROOT, subprocess_env
from memory import vectors

CHILD = textwrap.dedent(
    """
    import os, sys
    from pathlib import Path
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "aion.settings")
    import django
    django.setup()
    from django.conf import settings
    settings.QDRANT_PATH = Path(sys.argv[1])
    from memory import vectors
    for i in range(int(sys.argv[2])):
        vectors.upsert_segments(f"child-{i % 3}", f"child-{i}", [[1.0, float(i), 0.5, 0.0]] * 2, ["a", "b"], {}, {})
    print("opens", vectors.local_opens)
    """
)


def _vector(i: int) -> list[float]:
    return [0.5, 1.0, float(i), 1.0]


def _run_child(folder, writes: int) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-c", CHILD, str(folder), str(writes)],
        cwd=ROOT,
        env=subprocess_env(),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )


def test_a_second_process_writing_at_the_same_time_loses_nothing(tmp_path):
    folder = tmp_path / "shared-qdrant"
    with override_settings(QDRANT_PATH=folder):
        vectors.reset_client()
        child = _run_child(folder, 30)
        # This process writes and reads its own collections meanwhile, like the web process searching.
        for i in range(30):
            vectors.upsert_segments(f"parent-{i % 3}", f"parent-{i}", [_vector(i)], ["p"], {}, {})
            assert vectors.count_upload_vectors(f"parent-{i % 3}", f"parent-{i}") == 1
        output, _ = child.communicate(timeout=120)
        assert child.returncode == 0, output
        assert "Traceback" not in output, output
        # The long-lived client sees every write of the other process, and every collection survived.
        for i in range(30):
            assert vectors.count_upload_vectors(f"child-{i % 3}", f"child-{i}") == 2, i
            assert vectors.count_upload_vectors(f"parent-{i % 3}", f"parent-{i}") == 1, i
        vectors.reset_client()  # a fresh load of the folder: the metadata kept all six collections
        with vectors.qdrant() as client:
            names = {c.name for c in client.get_collections().collections}
        assert names == {"child-0", "child-1", "child-2", "parent-0", "parent-1", "parent-2"}
        vectors.reset_client()


INTERACTIVE_CHILD = textwrap.dedent(
    """
    import os, sys
    from pathlib import Path
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "aion.settings")
    import django
    django.setup()
    from django.conf import settings
    settings.QDRANT_PATH = Path(sys.argv[1])
    from memory import vectors
    print("ready", flush=True)
    for line in sys.stdin:
        command, collection, upload = line.split()
        if command == "write":
            vectors.upsert_segments(collection, upload, [[1.0, 0.0, 0.5, 0.0]], ["w"], {}, {})
            print("written", flush=True)
        else:
            print(vectors.count_upload_vectors(collection, upload), vectors.local_opens, flush=True)
    """
)


def test_the_client_is_reused_until_another_process_writes(tmp_path):
    """Two live processes, each keeping its client open, see each other's writes."""
    folder = tmp_path / "reuse-qdrant"
    with override_settings(QDRANT_PATH=folder):
        vectors.reset_client()
        vectors.upsert_segments("docs", "u1", [_vector(1)], ["one"], {}, {})
        opens = vectors.local_opens
        for _ in range(5):  # reads and this process's own writes keep the loaded client
            assert len(vectors.search("docs", _vector(1), 5, {})) == 1
            vectors.upsert_segments("docs", "u1", [_vector(1)], ["one again"], {}, {})
        assert vectors.local_opens == opens
        child = subprocess.Popen(
            [sys.executable, "-c", INTERACTIVE_CHILD, str(folder)],
            cwd=ROOT,
            env=subprocess_env(),
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )

        def ask(line: str) -> str:
            assert child.stdin is not None and child.stdout is not None
            child.stdin.write(line + "\n")
            child.stdin.flush()
            return child.stdout.readline().strip()

        try:
            assert child.stdout is not None and child.stdout.readline().strip() == "ready"
            # The child opens the folder while this process keeps its client, and sees our points.
            assert ask("count docs u1") == "1 1"
            assert ask("write docs child") == "written"
            # This process reloads once (the child wrote), then sees the child's point.
            assert vectors.count_upload_vectors("docs", "child") == 1
            assert vectors.local_opens == opens + 1
            vectors.upsert_segments("docs", "u2", [_vector(2)], ["two"], {}, {})
            # The child's client, still open, reloads and sees our new point; its own write did not reload it.
            assert ask("count docs u2") == "1 2"
            assert ask("count docs child") == "1 2"
        finally:
            assert child.stdin is not None
            child.stdin.close()
            output = child.stdout.read() if child.stdout else ""
            child.wait(30)
        assert child.returncode == 0 and "Traceback" not in output, output
        vectors.reset_client()


def test_threads_share_the_client(tmp_path):
    folder = tmp_path / "threads-qdrant"
    errors: list[BaseException] = []

    def work(n: int) -> None:
        try:
            for i in range(10):
                vectors.upsert_segments("docs", f"t{n}-{i}", [_vector(i)], ["x"], {}, {})
                vectors.search("docs", _vector(i), 3, {})
        except BaseException as exc:  # reported by the assertion below
            errors.append(exc)

    with override_settings(QDRANT_PATH=folder):
        vectors.reset_client()
        threads = [threading.Thread(target=work, args=(n,)) for n in range(4)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(60)
        assert errors == []
        assert sum(vectors.count_upload_vectors("docs", f"t{n}-{i}") for n in range(4) for i in range(10)) == 40
        vectors.reset_client()


def test_without_giving_up_qdrants_lock_the_client_is_closed_after_each_operation(tmp_path, monkeypatch):
    """If qdrant-client's internals change (simulated: its lock cannot be given up), another process still gets in."""
    folder = tmp_path / "fallback-qdrant"
    monkeypatch.setattr(vectors, "_give_up_qdrant_folder_lock", lambda client: False)
    with override_settings(QDRANT_PATH=folder):
        vectors.reset_client()
        vectors.upsert_segments("docs", "u1", [_vector(1)], ["one"], {}, {})
        assert vectors._local is None
        child = _run_child(folder, 1)
        output, _ = child.communicate(timeout=120)
        assert child.returncode == 0, output
        assert vectors.count_upload_vectors("child-0", "child-0") == 2
        vectors.reset_client()
