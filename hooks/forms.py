"""Console forms of the hooks app: a new endpoint, a new hook source, recovering failed deliveries.

The forms parse what was typed; the rules (allowed destinations, event type syntax, unique source
names) are the services', shared with the API: the view shows a service's refusal on the form.
"""

from __future__ import annotations

from typing import Any

from django import forms

from hooks.choices import HookScope
from hooks.models import WebhookEndpoint

MAX_URL = 2000


class EndpointForm(forms.Form):
    url = forms.CharField(label="URL", max_length=MAX_URL, strip=True,
                          widget=forms.URLInput(attrs={"placeholder": "https://receiver.example.com/aion"}))  # fmt: skip
    event_types = forms.CharField(label="Event types (comma-separated, wildcards allowed)", initial="kernel.proposal.*", max_length=4000)
    description = forms.CharField(max_length=500, required=False, strip=True)

    def clean_event_types(self) -> list[str]:
        return [t.strip() for t in self.cleaned_data["event_types"].split(",") if t.strip()]


class HookSourceForm(forms.Form):
    name = forms.SlugField(max_length=100, error_messages={"invalid": "The name must be a slug (letters, digits, - and _)."})
    service_identity = forms.CharField(
        max_length=200, required=False, strip=True, widget=forms.TextInput(attrs={"placeholder": "hook:name"})
    )
    scopes = forms.MultipleChoiceField(choices=HookScope.choices, widget=forms.CheckboxSelectMultiple,
                                       error_messages={"required": "Choose at least one scope."})  # fmt: skip


class RecoverForm(forms.Form):
    since = forms.DateTimeField(
        label="Recover failed deliveries since (UTC)",
        input_formats=["%Y-%m-%dT%H:%M", "%Y-%m-%dT%H:%M:%S", "%Y-%m-%d %H:%M", "%Y-%m-%d"],
        widget=forms.DateTimeInput(attrs={"type": "datetime-local"}, format="%Y-%m-%dT%H:%M"),
        error_messages={"invalid": "Give the time to recover from, e.g. 2026-01-01T00:00."},
    )
    endpoint = forms.ModelChoiceField(queryset=WebhookEndpoint.objects.none(), required=False, empty_label="every endpoint")

    def __init__(self, *args: Any, tenant_id: str, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        field: Any = self.fields["endpoint"]
        field.queryset = WebhookEndpoint.objects.filter(tenant_id=tenant_id).order_by("pk")  # another tenant's id is "not a choice"
