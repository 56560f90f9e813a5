"""Management commands: kernel_policy_check and kernel_rollback."""

from __future__ import annotations

import pytest
from django.core.management import CommandError, call_command

from aion.testing.kernel_proposals import SHIPPED_POLICY, act, submit
from kernel.models import ConfigRevision, Proposal

pytestmark = pytest.mark.django_db


def test_policy_check_accepts_the_shipped_policy_and_lists_every_error(tmp_path, capsys):
    call_command("kernel_policy_check", str(SHIPPED_POLICY))
    assert "valid" in capsys.readouterr().out
    broken = tmp_path / "broken.yaml"
    broken.write_text("max_ttl_seconds: 0\napproval_bands: []\nscopes: {}\n")
    with pytest.raises(CommandError) as error:
        call_command("kernel_policy_check", str(broken))
    assert "max_ttl_seconds" in str(error.value) and "approval_bands" in str(error.value) and "scopes" in str(error.value)


def test_rollback_from_the_shell(proposer, admin):
    proposal = submit(proposer)
    act(admin, proposal["id"], "approve")
    with pytest.raises(CommandError):
        call_command("kernel_rollback", proposal["id"], tenant="globex", reason="wrong tenant")
    call_command("kernel_rollback", proposal["id"], tenant="acme", reason="web is down, undo")
    stored = Proposal.objects.get(pk=proposal["id"])
    assert stored.state == "rolled_back" and stored.decided_by == "system:cli"
    assert ConfigRevision.objects.get(number=2).document == {}
