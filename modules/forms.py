"""Console forms of the modules app: a rollback (target version, required reason)."""

from __future__ import annotations

from typing import Any

from django import forms

from modules.models import Module

MAX_REASON = 500


class RollbackForm(forms.Form):
    """The target is one of the module's versions other than the active one; empty = the previous active version."""

    version = forms.ChoiceField(choices=[], required=False)
    reason = forms.CharField(max_length=MAX_REASON, strip=True, error_messages={"required": "A reason is required to roll back."})

    def __init__(self, *args: Any, module: Module, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        versions = module.versions.exclude(pk=module.active_version_id or 0).values_list("version", flat=True)
        field: Any = self.fields["version"]
        field.choices = [("", "previous active version"), *((v, v) for v in versions)]
