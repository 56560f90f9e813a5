"""Console forms of the router app: the revisions to compare, and the revision to roll back to."""

from __future__ import annotations

from typing import Any

from django import forms


class CompareForm(forms.Form):
    """``?a=&b=``: the diff between two revisions (empty: the active one and the one before)."""

    a = forms.IntegerField(min_value=0, required=False)
    b = forms.IntegerField(min_value=1, required=False)


class RollbackForm(forms.Form):
    """The revision to re-activate: one the menu offers (not the active one, nor a copy of its content)."""

    revision = forms.TypedChoiceField(coerce=int, choices=[], error_messages={"required": "Choose a revision to roll back to."})

    def __init__(self, *args: Any, choices: list[dict[str, Any]], **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        field: Any = self.fields["revision"]
        field.choices = [(str(c["number"]), c["label"]) for c in choices if not c["disabled"]]
        field.error_messages["invalid_choice"] = "That revision cannot be rolled back to: it is the active content."
