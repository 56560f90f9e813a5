"""Logs are JSON lines carrying the request id; secrets in extra fields are not special-cased here but never logged."""

import io
import json
import logging

import pytest

from aion.logging import JsonFormatter, RequestIdFilter


@pytest.mark.django_db
def test_request_log_lines_are_json_with_the_request_id(client):
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(JsonFormatter())
    handler.addFilter(RequestIdFilter())
    logger = logging.getLogger("aion.request")
    logger.addHandler(handler)
    try:
        client.get("/v1/whoami", HTTP_X_REQUEST_ID="req-log-1")
    finally:
        logger.removeHandler(handler)
    lines = [json.loads(line) for line in stream.getvalue().splitlines()]
    assert lines, "no request log line written"
    entry = lines[-1]
    assert entry["request_id"] == "req-log-1"
    assert entry["status"] == 401 and entry["route"] == "whoami" and entry["level"] == "INFO"
    assert "ts" in entry and "duration_ms" in entry


def test_formatter_includes_exceptions_as_text():
    record = logging.LogRecord("x", logging.ERROR, __file__, 1, "boom %s", ("now",), None)
    try:
        raise ValueError("bad")
    except ValueError:
        import sys

        record.exc_info = sys.exc_info()
    entry = json.loads(JsonFormatter().format(record))
    assert entry["message"] == "boom now" and "ValueError: bad" in entry["exc"]
