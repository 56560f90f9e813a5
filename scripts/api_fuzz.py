#!/usr/bin/env python3
"""Fuzz the API against its own OpenAPI document with schemathesis (coverage, fuzzing and stateful phases).

    python scripts/api_fuzz.py --url http://127.0.0.1:8000 --api-key aion_... [--max-examples 40] [--seed 1]

It fetches ``/api/schema/?format=json`` from the served instance and fails (exit 1) on any 5xx, any response
whose status, content type, headers or body the document does not describe, and any wrong answer to a method
the document does not list. The test ``aion/tests/test_it_api_fuzz.py`` runs it in CI against a served
instance on the suite's database (PostgreSQL + Redis in the first CI configuration) with a fixed seed.

Not checked: ``positive_data_acceptance`` and ``negative_data_rejection``. Part of what a body must satisfy is a
domain rule that JSON Schema does not express (the kernel guardrail policy, a revision that must exist, an
If-Match that must match); those answers are documented 4xx problems. See docs/api.md.
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

CHECKS = (
    "not_a_server_error",
    "status_code_conformance",
    "content_type_conformance",
    "response_headers_conformance",
    "response_schema_conformance",
    "unsupported_method",
    "allow_header_conformance",
)
PHASES = "coverage,fuzzing,stateful"


@dataclass
class FuzzResult:
    returncode: int
    output: str
    cases: int = 0
    failures: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return self.returncode == 0 and not self.failures


def schemathesis_binary() -> str:
    here = Path(sys.executable).with_name("schemathesis")
    return str(here) if here.exists() else (shutil.which("schemathesis") or "schemathesis")


def run(url: str, api_key: str, *, max_examples: int = 40, seed: int = 1, workers: int = 4, report_dir: Path | None = None) -> FuzzResult:
    """One schemathesis run; returns its exit code, output, the number of generated cases and the failures."""
    report_dir = report_dir or Path("var") / "api-fuzz"
    report_dir.mkdir(parents=True, exist_ok=True)
    report_dir = report_dir.resolve()
    ndjson = report_dir / "events.ndjson"
    command = [
        schemathesis_binary(),
        "run",
        f"{url}/api/schema/?format=json",
        "--url",
        url,
        "--header",
        f"x-api-key: {api_key}",
        "--phases",
        PHASES,
        "--checks",
        ",".join(CHECKS),
        "--max-examples",
        str(max_examples),
        "--seed",
        str(seed),
        "--workers",
        str(workers),
        "--no-shrink",
        "--request-timeout",
        "30",
        "--report",
        "ndjson",
        "--report-ndjson-path",
        str(ndjson),
    ]
    # cwd: schemathesis keeps its state (.schemathesis/) in the working directory; keep it with the report.
    completed = subprocess.run(command, capture_output=True, text=True, check=False, cwd=report_dir)
    output = completed.stdout + completed.stderr
    result = FuzzResult(completed.returncode, output)
    result.cases = _generated_cases(output)
    result.failures = [line.strip() for line in output.splitlines() if line.strip().startswith(("❌ ST", "🚫 ", "- ST"))]
    return result


def _generated_cases(output: str) -> int:
    for line in output.splitlines():
        words = line.split()
        if "generated," in words:
            try:
                return int(words[words.index("generated,") - 1])
            except (ValueError, IndexError):
                return 0
    return 0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--url", required=True, help="the served instance, e.g. http://127.0.0.1:8000")
    parser.add_argument("--api-key", required=True, help="a key with every role (manage.py apikey_create)")
    parser.add_argument("--max-examples", type=int, default=40, help="cases per operation and phase")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--workers", type=int, default=4)
    parser.add_argument("--report-dir", type=Path, default=None)
    args = parser.parse_args()
    result = run(args.url, args.api_key, max_examples=args.max_examples, seed=args.seed, workers=args.workers, report_dir=args.report_dir)
    print(result.output)
    print(json.dumps({"cases": result.cases, "failures": result.failures, "exit": result.returncode}))
    return 0 if result.ok else 1


if __name__ == "__main__":
    sys.exit(main())
