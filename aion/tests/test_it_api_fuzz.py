"""The API against its own OpenAPI document: schemathesis (coverage, fuzzing and stateful phases) on a served instance.

In CI's first configuration the instance runs on PostgreSQL + Redis, in the second on the embedded defaults. The
seed is fixed and the cases per operation bounded, so a run is repeatable and takes about two minutes.
"""

from __future__ import annotations

import importlib.util
import sys

import pytest

from aion.roles import Role
from aion.testing.factories import TENANT, make_api_key
from aion.testing.processes import ROOT, serve, stop

MIN_CASES = 2000


def _api_fuzz():  # scripts/ is not a package: load the script the operators run
    spec = importlib.util.spec_from_file_location("api_fuzz", ROOT / "scripts" / "api_fuzz.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # its dataclasses look their module up
    spec.loader.exec_module(module)
    return module


@pytest.mark.slow
@pytest.mark.django_db(transaction=True)  # the served process shares the test database
def test_schemathesis_finds_no_server_error_and_no_response_outside_the_schema(tmp_path):
    raw_key, _ = make_api_key([role.value for role in Role], tenant=TENANT, name="api fuzz")
    # SSE streams of tasks no worker runs would wait their full window: one second is enough to check the events.
    instance = serve(tmp_path, AION_ROUTER_SSE_MAX_SECONDS="1")
    try:
        # One worker: CPython 3.11's ast module is not thread-safe (gh-106905), and schemathesis' workers are threads
        # that parse lambdas through hypothesis; with several, a run can die of "AST constructor recursion depth mismatch".
        result = _api_fuzz().run(instance.url("").rstrip("/"), raw_key, max_examples=5, seed=1, workers=1, report_dir=tmp_path / "report")
    finally:
        log = stop(instance.process)
    summary = result.output[-6000:]
    assert result.cases >= MIN_CASES, summary
    assert result.ok, f"{result.failures}\n{summary}\n--- server log ---\n{log[-3000:]}"
