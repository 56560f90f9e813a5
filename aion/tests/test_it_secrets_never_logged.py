"""Secrets never reach the logs, the audit log or the outbox: a whole key/token/webhook-secret flow, then grep everything."""

from __future__ import annotations

import json
import logging

import pytest
from django.core.management import call_command
from django.test import override_settings

from aion import audit
from aion.auth.principal import system_principal
from aion.models import AuditRecord, OutboxEvent, SecurityIncident
from aion.testing.factories import TENANT, api_client

pytestmark = pytest.mark.django_db


def test_secrets_do_not_appear_in_logs_audit_or_events(tmp_path, capsys, caplog, gateway_isolation):
    caplog.set_level(logging.DEBUG)
    with override_settings(AION_JWKS_PATH=str(tmp_path / "jwks.json"), AION_JWT_PRIVATE_KEY_DIR=str(tmp_path / "keys")):
        call_command("apikey_create", "--name", "grep-me", "--tenant", TENANT, "--roles", "auditor")
        raw_key = capsys.readouterr().out.strip().splitlines()[-1]
        call_command("apikey_rotate", raw_key[:13])  # aion_<8 hex> is the visible prefix
        rotated_key = capsys.readouterr().out.strip().splitlines()[-1]
        call_command("jwt_generate_key")
        kid = capsys.readouterr().out.strip().splitlines()[-1]
        call_command("jwt_mint", "--sub", "svc", "--tenant", TENANT, "--roles", "auditor")
        token = capsys.readouterr().out.strip()
        private_pem = (tmp_path / "keys" / f"jwt-{kid}.pem").read_text()

        # Use them, including failed attempts that get logged as problems.
        api_client(raw_key).get("/v1/audit")
        api_client(rotated_key).get("/v1/audit")
        api_client(HTTP_AUTHORIZATION=f"Bearer {token}").get("/v1/audit")
        api_client(raw_key + "x").get("/v1/audit")
        api_client(HTTP_AUTHORIZATION=f"Bearer {token}x").get("/v1/audit")
        # An app auditing a change whose payload carries secrets.
        hook_secret = "whsec_" + "s" * 40
        audit.record(
            "hook.endpoint.created",
            "webhook",
            1,
            actor=system_principal(TENANT),
            tenant_id=TENANT,
            after={"url": "https://example.test/hook", "secret": hook_secret, "headers": {"Authorization": f"Bearer {token}"}},
            metadata={"api_key": raw_key},
        )

    captured = capsys.readouterr()
    haystacks = {
        "stdout+stderr": captured.out + captured.err,
        "log records": "\n".join(f"{r.getMessage()} {json.dumps(vars(r), default=str)}" for r in caplog.records),
        "audit": json.dumps(list(AuditRecord.objects.values()), default=str),
        "outbox": json.dumps(list(OutboxEvent.objects.values()), default=str),
        "incidents": json.dumps(list(SecurityIncident.objects.values()), default=str),
    }
    secret_part_of_key = raw_key[14:]
    needles = {
        "api key": raw_key,
        "api key secret part": secret_part_of_key,
        "rotated key": rotated_key,
        "jwt": token,
        "jwt signature": token.rsplit(".", 1)[1],
        "private key": private_pem.splitlines()[1],
        "hook secret": hook_secret,
    }
    assert AuditRecord.objects.filter(action="apikey.rotated").exists()
    for where, text in haystacks.items():
        for what, needle in needles.items():
            assert needle not in text, f"{what} leaked into {where}"
