"""Runs every benchmark in both configurations and prints the performance table.

    .venv/bin/python bench/run.py                    # every bench, embedded and PG + Redis
    .venv/bin/python bench/run.py --config pg        # one configuration
    .venv/bin/python bench/run.py api_overhead       # some benches
    .venv/bin/python bench/run.py --write            # also replace the table in docs/performance.md

Each bench is a script in this folder that prints Markdown rows (``common.row``); this collects them.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
from datetime import date
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from common import HEADER, PY, connections  # noqa: E402

BENCHES = [
    "api_overhead",
    "kernel_apply",
    "webhook_delivery",
    "router_decisions",
    "router_tasks",
    "memory_ingest",
    "outbox_relay",
    "upload_assembly",
]
TABLE_START = "<!-- bench/run.py table: start -->"
TABLE_END = "<!-- bench/run.py table: end -->"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("benches", nargs="*", help=f"default: all ({', '.join(BENCHES)})")
    parser.add_argument("--config", choices=("embedded", "pg", "both"), default="both")
    parser.add_argument("--write", action="store_true", help="replace the table in docs/performance.md")
    args = parser.parse_args()
    names = args.benches or BENCHES
    configs = ["embedded", "pg"] if args.config == "both" else [args.config]
    rows: list[str] = []
    failures: list[str] = []
    for config in configs:
        for name in names:
            script = HERE / f"{name}.py"
            if not script.exists():
                failures.append(f"{name}: no such bench")
                continue
            print(f"[bench] {name} ({config})", file=sys.stderr, flush=True)
            result = subprocess.run(
                [PY, str(script)], cwd=HERE.parent, env=dict(os.environ, AION_BENCH_CONFIG=config), capture_output=True, text=True
            )
            mine = [line for line in result.stdout.splitlines() if line.startswith("| ") and not line.startswith("| Benchmark")]
            mine = [line for line in mine if not line.startswith("| ---")]
            rows += mine
            for line in mine:
                print(line, file=sys.stderr, flush=True)
            if result.returncode != 0:
                failures.append(f"{name} ({config}) exited {result.returncode}: {result.stderr.strip()[-800:]}")
    machine = f"{os.cpu_count()} cores"
    table = "\n".join(
        [f"Measured {date.today()} on {machine}, {connections()} concurrent connections unless a row says otherwise.", "", HEADER, *rows]
    )
    print(table)
    for failure in failures:
        print(f"FAILED {failure}", file=sys.stderr)
    if args.write:
        doc = HERE.parent / "docs" / "performance.md"
        text = doc.read_text()
        if TABLE_START in text and TABLE_END in text:
            head, rest = text.split(TABLE_START, 1)
            _, tail = rest.split(TABLE_END, 1)
            doc.write_text(f"{head}{TABLE_START}\n{table}\n{TABLE_END}{tail}")
        else:
            doc.write_text(f"{text.rstrip()}\n\n{TABLE_START}\n{table}\n{TABLE_END}\n")
    return 1 if failures else 0


if __name__ == "__main__":
    raise SystemExit(main())
