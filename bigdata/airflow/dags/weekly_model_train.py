"""weekly_model_train: the router learning loop, run weekly against the AION control plane's API.

Tasks: export_samples -> train -> promote -> reload.

- export_samples pages through ``GET /v1/router/samples?since=&until=`` (the connection's tenant) and writes
  them as JSON lines under ``AION_TRAIN_EXPORT_DIR`` (the run's archive); it fixes the window for the run.
- train calls ``POST /v1/router/policy/train {since, until}``: the control plane trains on every sample of
  that window with ``router.training`` and judges the candidate offline (the guard). Training runs in the
  product, not in this worker: the training module needs the product's policy parser and schema, and this
  DAG imports no Django settings and never touches the product's database.
- promote submits a promoted candidate with its report (``POST /v1/router/policy/revisions``); "no-change"
  ends the run here, with the comparison in the logs and in train's return value.
- reload activates the submitted revision (``POST /v1/router/policy/reload {"revision": N}``) and checks
  that ``GET /v1/router/policy`` shows it active.

Every call is safe to retry: training stores nothing, a resubmitted candidate returns the same revision,
and reloading the active revision answers "unchanged".

Connection ``aion_control`` (type http): host = the control plane's base URL (``https://aion.example.com``),
password = an API key with the ``router.admin`` role, e.g.
``airflow connections add aion_control --conn-type http --conn-host https://aion.example.com --conn-password "$KEY"``.
"""

from __future__ import annotations

import json
import logging
import os
import tempfile
import urllib.error
import urllib.parse
import urllib.request
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pendulum
from airflow.sdk import BaseHook, dag, get_current_context, task

CONNECTION_ID = "aion_control"
PAGE_SIZE = 500
HTTP_TIMEOUT_SECONDS = 120

log = logging.getLogger(__name__)


def _control_plane() -> tuple[str, str]:
    """(base URL, API key) from the aion_control connection."""
    conn = BaseHook.get_connection(CONNECTION_ID)
    host = (conn.host or "").rstrip("/")
    if not host.startswith(("http://", "https://")):
        host = f"{conn.schema or 'https'}://{host}"
    if conn.port and host.count(":") < 2:
        host = f"{host}:{conn.port}"
    if not conn.password:
        raise ValueError(f"connection {CONNECTION_ID!r} has no password (the router.admin API key)")
    return host, conn.password


def _call(method: str, path: str, body: dict[str, Any] | None = None, params: dict[str, Any] | None = None) -> dict[str, Any]:
    base, key = _control_plane()
    url = base + path + (f"?{urllib.parse.urlencode(params)}" if params else "")
    data = json.dumps(body).encode() if body is not None else None
    request = urllib.request.Request(url, data=data, method=method)  # noqa: S310 - the configured control plane
    request.add_header("x-api-key", key)
    request.add_header("Accept", "application/json")
    if data is not None:
        request.add_header("Content-Type", "application/json")
    try:
        with urllib.request.urlopen(request, timeout=HTTP_TIMEOUT_SECONDS) as response:  # noqa: S310
            return dict(json.loads(response.read() or b"{}"))
    except urllib.error.HTTPError as exc:
        problem = exc.read().decode(errors="replace")[:2000]
        raise RuntimeError(f"{method} {path} answered {exc.code}: {problem}") from exc


@dag(
    dag_id="weekly_model_train",
    schedule="@weekly",
    start_date=pendulum.datetime(2026, 1, 1, tz="UTC"),
    catchup=False,
    max_active_runs=1,
    tags=["aion", "router", "training"],
    params={"lookback_days": 7},
    default_args={"owner": "aion", "retries": 2, "retry_delay": timedelta(minutes=5)},
    doc_md=__doc__,
)
def weekly_model_train() -> None:
    @task
    def export_samples() -> dict[str, Any]:
        context = get_current_context()
        until = datetime.now(UTC)
        since = until - timedelta(days=float(context["params"]["lookback_days"]))
        window = {"since": since.isoformat(), "until": until.isoformat()}
        folder = Path(os.environ.get("AION_TRAIN_EXPORT_DIR") or Path(tempfile.gettempdir()) / "aion-weekly-model-train")
        folder.mkdir(parents=True, exist_ok=True)
        path = folder / f"samples-{until:%Y%m%dT%H%M%SZ}.jsonl"
        count, offset = 0, 0
        with path.open("w") as out:
            while True:
                page = _call("GET", "/v1/router/samples", params={**window, "limit": PAGE_SIZE, "offset": offset})
                for sample in page["results"]:
                    out.write(json.dumps(sample, sort_keys=True) + "\n")
                count += len(page["results"])
                offset += PAGE_SIZE
                if not page.get("next") or not page["results"]:
                    break
        log.info("exported %d samples of %s to %s", count, window, path)
        return {**window, "exported": count, "path": str(path)}

    @task
    def train(export: dict[str, Any]) -> dict[str, Any]:
        trained = _call("POST", "/v1/router/policy/train", {"since": export["since"], "until": export["until"]})
        report = trained["report"]
        log.info("training: %s (%s); samples %s", trained["decision"], trained["reason"], report["samples"])
        log.info("expected before/after: %s", json.dumps(report["evaluation"], sort_keys=True))
        return trained

    @task
    def promote(trained: dict[str, Any]) -> int | None:
        if trained["decision"] != "promote" or not trained.get("candidate"):
            log.info("no change: %s", trained["reason"])
            return None
        answer = _call("POST", "/v1/router/policy/revisions", {"content": trained["candidate"], "report": trained["report"]})
        number = int(answer["revision"]["revision"])
        log.info("submitted revision r%d (new: %s)", number, answer["changed"])
        return number

    @task
    def reload(number: int | None) -> int | None:
        if number is None:
            log.info("nothing to reload")
            return None
        answer = _call("POST", "/v1/router/policy/reload", {"revision": number})
        active = (_call("GET", "/v1/router/policy").get("active") or {}).get("revision")
        if active != number:
            raise RuntimeError(f"reloaded r{number} but r{active} is active")
        log.info("r%d is active (changed: %s)", number, answer["changed"])
        return number

    reload(promote(train(export_samples())))


weekly_model_train()
