"""Console pages of the memory app: uploads with live progress (htmx), the profile catalog (create/edit) and search.

Input goes through ``memory.forms``; the uploads list is ``UploadFilterSet`` as a django-tables2 table that
polls itself while an upload is receiving, assembling or processing, and stops once all are settled.
"""

from __future__ import annotations

from typing import Any

from django.contrib import messages
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import NoReverseMatch, reverse
from django.views.decorators.http import require_GET, require_POST

from aion.forms import REFUSALS, add_refusal, refusal_text
from aion.rbac import Role, role_required
from aion.tables import filtered_table
from memory import embeddings, services
from memory.choices import PROFILE_STEPS, UploadState
from memory.filtersets import UploadFilterSet
from memory.forms import EditForm, ProfileForm, SearchForm
from memory.models import MemoryProfile, Upload
from memory.tables import UploadTable

POLL_SECONDS = 2  # while an upload is moving


def index_url() -> str:
    """``memory:index``, wherever the Console mounts this app's namespace (top level or under ``console:``)."""
    for name in ("memory:index", "console:memory:index"):
        try:
            return reverse(name)
        except NoReverseMatch:
            continue
    return "/console/memory/"


def _uploads_context(request: HttpRequest) -> dict[str, Any]:
    tenant = request.principal.tenant_id  # type: ignore[attr-defined]
    listed = filtered_table(request, UploadFilterSet, Upload.objects.for_tenant(tenant), UploadTable, paginate=False)
    return {
        "table": listed.table,
        "errors": listed.errors,
        "query": listed.query,
        "state": ",".join(listed.filterset.form.cleaned_data.get("state") or []) if not listed.errors else "",
        "states": UploadState.values,
        "live": listed.table.live,
        "poll_seconds": POLL_SECONDS,
    }


def _page(request: HttpRequest, profile_form: ProfileForm | None = None, status: int = 200) -> HttpResponse:
    principal = request.principal  # type: ignore[attr-defined]
    profiles = list(MemoryProfile.objects.for_tenant(principal.tenant_id))
    search = SearchForm(request.GET if "q" in request.GET else None, profiles=profiles)
    hits: list[dict] = []
    search_error = ""
    query = ""
    if search.is_bound:
        if not search.is_valid():
            search_error = " ".join(str(e) for found in search.errors.values() for e in found)
        elif search.cleaned_data["q"]:
            query = search.cleaned_data["q"]
            try:
                hits = services.search(principal.tenant_id, search.cleaned_data["profile"], query, 10, {})
            except REFUSALS as exc:
                search_error = refusal_text(exc)
    if profile_form is None:
        edit = EditForm(request.GET)
        name = edit.cleaned_data["edit"] if edit.is_valid() else ""
        editing = next((p for p in profiles if p.name == name), None)
        profile_form = ProfileForm(editing=editing)
    return render(
        request,
        "memory/index.html",
        {
            **_uploads_context(request),
            "profiles": profiles,
            "profile_form": profile_form,
            "editing": profile_form.editing,
            "search_form": search,
            "steps": [s.value for s in PROFILE_STEPS],
            "models": embeddings.available_models(),
            "query": query,
            "hits": hits,
            "search_error": search_error,
            "can_write": Role.MEMORY_WRITER.value in principal.roles,
        },
        status=status,
    )


@require_GET
@role_required(Role.MEMORY_READER)
def index(request: HttpRequest) -> HttpResponse:
    if request.htmx:  # type: ignore[attr-defined]  # the uploads panel's own poll
        return render(request, "memory/_uploads_panel.html", _uploads_context(request))
    return _page(request)


@require_POST
@role_required(Role.MEMORY_WRITER)
def profile_save(request: HttpRequest) -> HttpResponse:
    principal = request.principal  # type: ignore[attr-defined]
    editing = None
    form = ProfileForm(request.POST)
    if form.is_valid():
        fields = dict(form.profile_fields)
        name = fields.pop("name")
        try:
            profile, created = services.save_profile(principal.tenant_id, name, fields, actor=principal)
        except REFUSALS as exc:  # e.g. a model this installation cannot load (422)
            add_refusal(form, exc)
        else:
            messages.success(request, f"Profile {profile.name} {'created' if created else 'saved'} (version {profile.version}).")
            return redirect(index_url())
    name = form.cleaned_data.get("name") if hasattr(form, "cleaned_data") else None
    editing = MemoryProfile.objects.for_tenant(principal.tenant_id).filter(name=name).first() if name else None
    form.editing = editing
    if editing is not None:
        form.fields["name"].widget.attrs["readonly"] = True
    return _page(request, form, status=400)  # the form again, as typed, with its errors
