"""docs/runbook.md names only real things: every ``manage.py`` command is registered, every endpoint
resolves in the URLconf, and every repository file or folder it points at exists.

The runbook is read at test time (its sections are written by several issues)."""

from __future__ import annotations

import re
import uuid
from pathlib import Path

from django.conf import settings
from django.core.management import get_commands
from django.urls import Resolver404, resolve

ROOT = Path(settings.BASE_DIR)
RUNBOOK = ROOT / "docs" / "runbook.md"

COMMAND = re.compile(r"manage\.py\s+([a-z_][a-z0-9_]*)")
ENDPOINT = re.compile(r"/(?:v1|healthz|readyz|metrics|console|api|admin)\b(?:/[^\s`'\"()\[\]<>|,;]*)?")
# What may stand right before an endpoint: a base URL variable or an http(s)://host[:port].
BASE = re.compile(r"(?:\$\{?[A-Z_]+\}?|https?://[^\s/`'\"]+)$")
REPO_PATH = re.compile(r"(?<![\w./-])((?:deploy|bigdata|policies|scripts|docs|templates|static)/[\w./*{}-]*)")
PLACEHOLDER = re.compile(r"\{[^}/]+\}|<[^>/]+>|:\w+")


def runbook() -> str:
    return RUNBOOK.read_text()


def commands_named(text: str) -> set[str]:
    return set(COMMAND.findall(text))


def endpoints_named(text: str) -> set[str]:
    found = set()
    for match in ENDPOINT.finditer(text):
        before = BASE.sub("", text[max(0, match.start() - 200) : match.start()])
        if before and re.match(r"[\w./-]", before[-1]):
            continue  # part of a file path such as deploy/prometheus/... or docs/...
        found.add(match.group(0).split("?", 1)[0].rstrip(".:"))
    return found


def _candidates(path: str) -> list[str]:
    """The path with each placeholder ({id}, <id>, :id) filled by a uuid, a number and a word."""
    if not PLACEHOLDER.search(path):
        return [path]
    return [PLACEHOLDER.sub(value, path) for value in (str(uuid.uuid4()), "1", "example", uuid.uuid4().hex)]


def resolves(path: str) -> bool:
    for candidate in _candidates(path):
        for variant in (candidate, candidate.rstrip("/") + "/", candidate.rstrip("/")):
            try:
                resolve(variant or "/")
                return True
            except Resolver404:
                continue
    return False


def test_the_runbook_keeps_the_seed_sections():
    headings = set(re.findall(r"^## (.+?)\s*$", runbook(), re.MULTILINE))
    assert headings >= {
        "Bootstrapping", "Health Checks", "Incident Response", "Approvals & Guardrails", "Backups", "Key Rotation",
        "Rollback", "Webhook Operations", "Memory Operations", "Redis & Kafka Recovery", "MinIO Lifecycle",
        "ClickHouse TTL", "Secret Rotation", "Scaling", "Retention",
    }  # fmt: skip


def test_every_management_command_in_the_runbook_exists():
    named = commands_named(runbook())
    assert {"backup", "restore", "run_job", "render_clickhouse_retention", "apply_mongo_retention"} <= named
    missing = sorted(named - set(get_commands()))
    assert missing == [], f"docs/runbook.md names manage.py commands that do not exist: {missing}"


def test_every_endpoint_in_the_runbook_resolves():
    named = endpoints_named(runbook())
    assert {"/healthz", "/readyz", "/metrics"} <= named
    missing = sorted(path for path in named if not resolves(path))
    assert missing == [], f"docs/runbook.md names endpoints that do not resolve: {missing}"


def test_every_repository_path_in_the_runbook_exists():
    missing = []
    named = set()
    for line in runbook().splitlines():
        for raw in REPO_PATH.findall(line):
            # kubectl's "deploy/<name>" is a Deployment, not a folder of this repository.
            if not ("kubectl" in line and re.fullmatch(r"deploy/[a-z0-9-]+", raw)):
                named.add(raw)
    for raw in named:
        path = raw.rstrip(".:")
        if "{" in path:
            continue
        if "*" in path:
            if not list(ROOT.glob(path)):
                missing.append(path)
        elif not (ROOT / path).exists():
            missing.append(path)
    assert sorted(missing) == [], f"docs/runbook.md points at files that do not exist: {sorted(missing)}"


def test_the_extractors():
    text = "curl -X POST $AION/v1/kernel/proposals/{id}/approve -H x; `python manage.py run_job ops.purge_logs`; see deploy/k8s/."
    assert endpoints_named(text) == {"/v1/kernel/proposals/{id}/approve"}
    assert commands_named(text) == {"run_job"}
    assert REPO_PATH.findall(text) == ["deploy/k8s/."]
    assert resolves("/healthz") and not resolves("/v1/no/such/route")
