"""Console forms' shared parts: a service's refusal shown on the form that asked for it.

Services raise ``aion.errors`` kinds (``detail`` and field ``errors``); a Console view catches
``REFUSALS`` around the service call and gives the error to ``add_refusal``, which puts each field
error on its field and the detail on the form, so the page re-renders with what was typed.
"""

from __future__ import annotations

from typing import Any

from django import forms

from aion.errors import DomainError
from aion.problems import Problem

# Problem only until every app's services raise aion.errors (issue 19 §3); then this is DomainError alone.
REFUSALS: tuple[type[Exception], ...] = (DomainError, Problem)


def refusal_text(exc: Exception) -> str:
    """The refusal as one line: the detail, then each field's messages."""
    detail = str(getattr(exc, "detail", exc))
    errors = getattr(exc, "errors", None) or {}
    fields = "; ".join(f"{field}: {', '.join(str(m) for m in found)}" for field, found in errors.items())
    return f"{detail} {fields}".strip()


def add_refusal(form: forms.BaseForm, exc: Exception, field_map: dict[str, str] | None = None) -> None:
    """Puts the service's field errors on FORM's fields (``field_map`` renames service paths) and its detail on the form."""
    errors: dict[str, Any] = getattr(exc, "errors", None) or {}
    unplaced: list[str] = []
    for path, found in errors.items():
        name = (field_map or {}).get(path, str(path).split(".", 1)[0])
        if name in form.fields:
            for message in found:
                form.add_error(name, str(message))
        else:
            unplaced.extend(f"{path}: {message}" for message in found)
    detail = str(getattr(exc, "detail", exc))
    form.add_error(None, " ".join([detail, *unplaced]).strip())
