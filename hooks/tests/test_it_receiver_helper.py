"""docs/webhooks.md is executable: the Python verification helper and the curl + openssl recipe."""

from __future__ import annotations

import os
import shutil
import subprocess
import time

import pytest

from aion.testing.hook_requests import ACME_SECRET, submit_proposal
from aion.testing.services import service_missing
from hooks import signing
from hooks.tests.helpers import doc_block, documented_verify_signature


def test_the_documented_helper_agrees_with_the_signer():
    verify = documented_verify_signature()
    body = b'{"a": 1}'
    now = time.time()
    header = signing.sign(body, ["new", "old"], timestamp=now)
    assert verify(header, body, "new") and verify(header, body, "old")
    assert not verify(header, body, "other")
    assert not verify(header, b'{"a": 2}', "new")
    assert not verify(header, body, "new", now=now + 301)
    assert not verify(header, body, "new", now=now - 301)
    assert verify(header, body, "new", tolerance=600, now=now + 301)
    assert not verify("garbage", body, "new") and not verify("t=abc,v1=00", body, "new")


def test_the_signer_and_verifier_reject_what_they_should():
    body = b"{}"
    header = signing.sign(body, ["s"], timestamp=1_000_000)
    assert signing.verify(header, body, ["x", "s"], now=1_000_000) == 1
    for bad, reason in [
        ("v1=00", "malformed_signature"),
        ("t=1000000", "malformed_signature"),
        ("t=-5,v1=00", "malformed_signature"),
    ]:
        with pytest.raises(signing.SignatureError) as caught:
            signing.verify(bad, body, ["s"], now=1_000_000)
        assert caught.value.reason == reason
    with pytest.raises(signing.SignatureError) as caught:
        signing.verify(header, body, ["s"], now=1_000_000 + 301)
    assert caught.value.reason == "stale_timestamp"
    with pytest.raises(signing.SignatureError) as caught:
        signing.verify(header, body + b" ", ["s"], now=1_000_000)
    assert caught.value.reason == "bad_signature"


@pytest.mark.django_db(transaction=True)
def test_the_curl_and_openssl_recipe_approves_a_proposal(live_server):
    for tool in ("openssl", "curl"):
        if shutil.which(tool) is None:
            service_missing(tool, "the documented recipe runs it")  # fails under CI=true
    proposal = submit_proposal()
    recipe = doc_block("sign-recipe", "bash")
    lines = [line for line in recipe.splitlines() if not line.startswith(("SECRET=", "BODY="))]
    body = f'{{"proposal_id":"{proposal.pk}","decision":"approve","approver":"alice","comment":"lgtm"}}'
    env = {**os.environ, "SECRET": ACME_SECRET, "BODY": body, "AION": live_server.url}
    result = subprocess.run(["bash", "-euo", "pipefail", "-c", "\n".join(lines)], env=env, capture_output=True, text=True, timeout=30)
    assert result.returncode == 0, result.stderr
    assert '"state":"applied"' in result.stdout.replace(" ", ""), result.stdout
    proposal.refresh_from_db()
    assert proposal.state == "applied"
