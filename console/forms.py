"""Forms of the Console shell's pages: the incident acknowledgement, the list filters (FilterSets shared with the API)."""

from __future__ import annotations

from typing import Any

import django_filters
from django import forms

from aion import incidents
from aion.api.filtersets import SecurityIncidentFilterSet
from aion.errors import DomainError
from aion.models import IncidentState
from aion.ops.choices import JobRunStatus, JobTrigger
from aion.ops.models import JobRun


class AcknowledgeForm(forms.Form):
    """Acknowledge one incident: the note's rule is the service's (``aion.incidents.clean_note``), shared with the API."""

    note = forms.CharField(max_length=incidents.MAX_NOTE, strip=True, widget=forms.TextInput(attrs={"placeholder": "Why (required)"}))
    filters = forms.CharField(required=False, widget=forms.HiddenInput)  # the list's query string, to go back to it

    def clean_note(self) -> str:
        try:
            return incidents.clean_note(self.cleaned_data.get("note"))
        except (incidents.InvalidNote, DomainError) as exc:
            raise forms.ValidationError(str(exc)) from exc


class IncidentFilterSet(SecurityIncidentFilterSet):
    """The API's incident filters, with the Console's empty state choice read as "all" (the page defaults to open)."""

    state = django_filters.ChoiceFilter(field_name="state", choices=IncidentState.choices, empty_label="all")


def _job_choices() -> list[tuple[str, str]]:
    from aion.jobs import discover

    return [(name, name) for name in sorted(discover())]


FREQUENT_JOBS = ("aion.relay_outbox",)  # every few seconds: hidden from the run list unless asked for, shown as a summary


class JobRunFilterSet(django_filters.FilterSet):
    """The Jobs page's run filters: job, status, trigger; ``frequent`` also lists the every-few-seconds jobs' runs."""

    job = django_filters.ChoiceFilter(field_name="job_name", label="Job", choices=_job_choices, empty_label="every job")
    status = django_filters.ChoiceFilter(choices=JobRunStatus.choices, empty_label="any")
    trigger = django_filters.ChoiceFilter(choices=JobTrigger.choices, empty_label="any")
    frequent = django_filters.BooleanFilter(method="filter_frequent", label="Include frequent jobs", widget=forms.CheckboxInput)

    class Meta:
        model = JobRun
        fields = ["job", "status", "trigger", "frequent"]

    def filter_queryset(self, queryset: Any) -> Any:
        queryset = super().filter_queryset(queryset)
        data = self.form.cleaned_data
        if not data.get("frequent") and not data.get("job"):
            queryset = queryset.exclude(job_name__in=FREQUENT_JOBS)
        return queryset

    def filter_frequent(self, queryset: Any, name: str, value: Any) -> Any:
        return queryset  # read by filter_queryset: it decides whether the frequent jobs are hidden


class AwaitedRunForm(forms.Form):
    """The runs panel's own poll after Run-now: which job's run it waits for, requested when."""

    awaiting = forms.ChoiceField(choices=_job_choices, required=False)
    after = forms.DateTimeField(required=False)
