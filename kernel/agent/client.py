"""The control plane as the agent sees it: three HTTP calls, authenticated with the host credential (``X-API-Key``)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

import httpx

from kernel.agent import VERSION

# 404 is retried on purpose: a control plane being rolled out may not serve the report route yet.
RETRYABLE_STATUSES = frozenset({404, 408, 425, 429, 500, 502, 503, 504})


class ControlPlaneError(Exception):
    """A call did not succeed: STATUS is the HTTP status (None for a connection error or an unreadable body)."""

    def __init__(self, message: str, status: int | None = None, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.retry_after = retry_after

    @property
    def retryable(self) -> bool:
        return self.status is None or self.status in RETRYABLE_STATUSES


@dataclass(frozen=True)
class Desired:
    """One fetch of a scope: ``body`` is None when the control plane answered 304 (the ETag still holds)."""

    status: int
    etag: str | None
    body: dict[str, Any] | None


class ControlPlane:
    def __init__(self, url: str, api_key: str, *, timeout: float = 10.0, transport: httpx.BaseTransport | None = None) -> None:
        headers = {"X-API-Key": api_key, "Accept": "application/json", "User-Agent": f"aion-node-agent/{VERSION}"}
        self.http = httpx.Client(base_url=url.rstrip("/"), headers=headers, timeout=timeout, transport=transport)

    def close(self) -> None:
        self.http.close()

    def _call(self, method: str, path: str, **options: Any) -> httpx.Response:
        try:
            return self.http.request(method, path, **options)
        except httpx.HTTPError as exc:
            raise ControlPlaneError(f"{method} {path}: {type(exc).__name__}: {exc}") from exc

    @staticmethod
    def _failure(response: httpx.Response) -> ControlPlaneError:
        try:
            detail = response.json().get("detail") or response.json().get("title")
        except (ValueError, AttributeError):
            detail = response.text[:200]
        retry_after = response.headers.get("Retry-After", "")
        return ControlPlaneError(
            f"{response.request.method} {response.request.url.path}: {response.status_code} {detail or ''}".strip(),
            status=response.status_code,
            retry_after=float(retry_after) if retry_after.isdigit() else None,
        )

    @staticmethod
    def _json_object(response: httpx.Response) -> dict[str, Any]:
        try:
            body = response.json()
        except ValueError as exc:
            raise ControlPlaneError(f"{response.request.url.path}: the body is not JSON") from exc
        if not isinstance(body, dict):
            raise ControlPlaneError(f"{response.request.url.path}: the body is not a JSON object")
        return body

    def desired(self, scope: str, etag: str | None, *, host: str, pool: str) -> Desired:
        """``GET /v1/kernel/config/{scope}`` (conditional on ETAG): the document effective for this host."""
        headers = {"If-None-Match": etag} if etag else {}
        response = self._call("GET", f"/v1/kernel/config/{scope}", params={"host": host, "pool": pool}, headers=headers)
        if response.status_code == 304:
            return Desired(304, response.headers.get("ETag") or etag, None)
        if response.status_code != 200:
            raise self._failure(response)
        return Desired(200, response.headers.get("ETag"), self._json_object(response))

    def policy(self) -> dict[str, Any]:
        """``GET /v1/kernel/policy``: the guardrail policy in force (its ``policy`` object)."""
        response = self._call("GET", "/v1/kernel/policy")
        if response.status_code != 200:
            raise self._failure(response)
        policy = self._json_object(response).get("policy")
        if not isinstance(policy, dict):
            raise ControlPlaneError("/v1/kernel/policy: the control plane has no valid policy loaded")
        return policy

    def report(self, host: str, payload: dict[str, Any]) -> int:
        """``POST /v1/kernel/hosts/{host}/report``: the status of an accepted (2xx) report, else ControlPlaneError."""
        response = self._call("POST", f"/v1/kernel/hosts/{quote(host, safe='')}/report", json=payload)
        if not 200 <= response.status_code < 300:
            raise self._failure(response)
        return response.status_code
