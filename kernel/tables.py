"""Console tables of the kernel app (django-tables2): the proposals list and a scope's revisions.

Sorting and paging are django-tables2's (``?sort=``, ``?page=``); the rows come from the API's FilterSet
(``kernel.filtersets``), so a filter means the same on both. Cells render through small templates in
``templates/kernel/cells/`` so the markup (links, badges, countdowns) stays in templates.
"""

from __future__ import annotations

from typing import Any

import django_tables2 as tables

from kernel.models import ConfigRevision, Proposal

PAGE_SIZE = 50
TEMPLATE = "kernel/_table.html"


class ProposalTable(tables.Table):
    id = tables.TemplateColumn(template_name="kernel/cells/proposal_id.html", verbose_name="Proposal", orderable=False)
    scope = tables.TemplateColumn(template_name="kernel/cells/scope.html", verbose_name="Scope")
    changes = tables.TemplateColumn(template_name="kernel/cells/changes.html", verbose_name="Changes", orderable=False)
    proposer = tables.Column(verbose_name="Proposer")
    risk_score = tables.TemplateColumn("{{ record.risk_score|floatformat:2 }}", verbose_name="Risk")
    approvals = tables.TemplateColumn(
        "{{ record.approval_count }}/{{ record.required_approvals }}", verbose_name="Approvals", order_by=("approval_count",)
    )
    state = tables.TemplateColumn('<span class="badge {{ record.state }}">{{ record.get_state_display }}</span>', verbose_name="State")
    created_at = tables.TemplateColumn(
        "<span title=\"{{ record.created_at|date:'c' }}\">{{ record.created_at|timesince }} ago</span>", verbose_name="Created"
    )
    expires_at = tables.TemplateColumn(template_name="kernel/cells/expires.html", verbose_name="Expires")

    class Meta:
        model = Proposal
        fields = ("id", "scope", "changes", "proposer", "risk_score", "approvals", "state", "created_at", "expires_at")
        template_name = TEMPLATE
        order_by = ("-created_at",)
        attrs = {"id": "proposals"}
        row_attrs = {"data-id": lambda record: str(record.pk), "data-state": lambda record: record.state}
        empty_text = "No proposals match."


class RevisionTable(tables.Table):
    number = tables.Column(verbose_name="#")
    kind = tables.Column(verbose_name="Kind")
    proposal = tables.TemplateColumn(template_name="kernel/cells/revision_proposal.html", verbose_name="Proposal", orderable=False)
    author = tables.Column(verbose_name="Author")
    created_at = tables.TemplateColumn(
        "<span title=\"{{ record.created_at|date:'c' }}\">{{ record.created_at|timesince }} ago</span>", verbose_name="When"
    )
    sha256 = tables.TemplateColumn("<code>{{ record.sha256|slice:':12' }}</code>", verbose_name="sha256", orderable=False)
    actions = tables.TemplateColumn(
        template_name="kernel/cells/revision_actions.html", verbose_name="Actions", orderable=False, empty_values=()
    )

    class Meta:
        model = ConfigRevision
        fields = ("number", "kind", "proposal", "author", "created_at", "sha256", "actions")
        template_name = TEMPLATE
        order_by = ("-number",)
        attrs = {"id": "revisions"}
        row_attrs = {"data-revision": lambda record: str(record.number)}
        empty_text = "No revisions yet."

    def __init__(self, *args: Any, head: ConfigRevision | None = None, can_rollback: bool = False, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        # Only the head revision, when an apply, can be rolled back (a later one must be rolled back first).
        self.rollback_number = head.number if head is not None and head.kind == "apply" and can_rollback else None
