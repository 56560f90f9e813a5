"""Console tables of the memory app: uploads with their progress (rows are ``upload_progress`` documents)."""

from __future__ import annotations

from typing import Any

import django_tables2 as tables

from aion.tables import ConsoleTable
from memory.api.serializers import upload_progress
from memory.choices import UploadState

MAX_ROWS = 100  # the newest uploads; the API's status endpoint pages through all of them
LIVE_STATES = (UploadState.RECEIVING, UploadState.ASSEMBLING, UploadState.PROCESSING)


class UploadTable(ConsoleTable):
    upload_id = tables.TemplateColumn(template_code='<code>{{ value }}</code><br><span class="muted">{{ record.filename }}</span>',
                                      verbose_name="Upload", orderable=False)  # fmt: skip
    profile = tables.TemplateColumn(template_code='{{ value }} <span class="muted">v{{ record.profile_version }}</span>')
    state = tables.TemplateColumn(template_name="memory/_upload_state.html")
    percent_complete = tables.TemplateColumn(template_name="memory/_upload_progress.html", verbose_name="Progress")
    missing = tables.Column(verbose_name="Missing chunks", default="—", orderable=False)
    size_bytes = tables.TemplateColumn(
        template_name="memory/_upload_size.html", verbose_name="Size / checksum", default="—", orderable=False
    )
    vector_count = tables.Column(verbose_name="Vectors", default="—", orderable=False)
    expires_at = tables.TemplateColumn(template_code="{{ value|slice:':19' }}", verbose_name="Expires")
    created_at = tables.Column(visible=False)

    class Meta(ConsoleTable.Meta):
        attrs = {"class": "listing", "id": "uploads"}
        row_attrs = {"data-upload": lambda record: record["upload_id"], "data-state": lambda record: record["state"]}
        order_by = ("-created_at",)
        empty_text = "No uploads yet."

    def __init__(self, data: Any, **kwargs: Any) -> None:
        rows = [upload_progress(upload) for upload in data.select_related("profile").order_by("-created_at")[:MAX_ROWS]]
        super().__init__(rows, **kwargs)
        self.live = any(row["state"] in LIVE_STATES for row in rows)  # the panel polls while any upload is moving
