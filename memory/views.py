"""Console pages of the memory app: uploads with progress, the profile catalog (create/edit) and search."""

from __future__ import annotations

from django.contrib import messages
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import NoReverseMatch, reverse
from django.views.decorators.http import require_GET, require_POST

from aion.errors import DomainError
from aion.rbac import Role, role_required
from memory import embeddings, services
from memory.api.serializers import ProfileSerializer, upload_progress
from memory.choices import PROFILE_STEPS, UploadState
from memory.models import MemoryProfile, Upload

PAGE_SIZE = 100


def index_url() -> str:
    """``memory:index``, wherever the Console mounts this app's namespace (top level or under ``console:``)."""
    for name in ("memory:index", "console:memory:index"):
        try:
            return reverse(name)
        except NoReverseMatch:
            continue
    return "/console/memory/"


@require_GET
@role_required(Role.MEMORY_READER)
def index(request: HttpRequest) -> HttpResponse:
    principal = request.principal  # type: ignore[attr-defined]
    tenant = principal.tenant_id
    uploads = Upload.objects.filter(tenant_id=tenant).select_related("profile").order_by("-created_at")
    state = request.GET.get("state", "")
    if state in UploadState.values:
        uploads = uploads.filter(state=state)
    profiles = list(MemoryProfile.objects.filter(tenant_id=tenant))
    editing = next((p for p in profiles if p.name == request.GET.get("edit")), None)
    hits: list[dict] = []
    search_error = ""
    query = request.GET.get("q", "").strip()
    search_profile = request.GET.get("profile", "")
    if query and search_profile:
        try:
            hits = services.search(tenant, search_profile, query[:8000], 10, {})
        except DomainError as exc:
            search_error = exc.detail
    return render(
        request,
        "memory/index.html",
        {
            "uploads": [upload_progress(u) for u in uploads[:PAGE_SIZE]],
            "states": UploadState.values,
            "state": state,
            "profiles": profiles,
            "editing": editing,
            "steps": [s.value for s in PROFILE_STEPS],
            "models": embeddings.available_models(),
            "query": query,
            "search_profile": search_profile,
            "hits": hits,
            "search_error": search_error,
            "can_write": Role.MEMORY_WRITER.value in principal.roles,
        },
    )


@require_POST
@role_required(Role.MEMORY_WRITER)
def profile_save(request: HttpRequest) -> HttpResponse:
    principal = request.principal  # type: ignore[attr-defined]
    data = {
        "name": request.POST.get("name", "").strip(),
        "embedding_model": request.POST.get("embedding_model", "").strip() or embeddings.HASH_MODEL,
        "chunk_size": request.POST.get("chunk_size") or 1000,
        "chunk_overlap": request.POST.get("chunk_overlap") or None,
        "pipeline": request.POST.getlist("pipeline") or None,
        "retention_days": request.POST.get("retention_days") or None,
        "description": request.POST.get("description", ""),
    }
    if data["pipeline"] is None:
        data.pop("pipeline")
    serializer = ProfileSerializer(data=data)
    if not serializer.is_valid():
        for field, errors in serializer.errors.items():
            messages.error(request, f"{field}: {' '.join(str(e) for e in errors)}")
        return redirect(index_url())
    fields = dict(serializer.validated_data)
    name = fields.pop("name")
    try:
        profile, created = services.save_profile(principal.tenant_id, name, fields, actor=principal)
    except DomainError as exc:  # e.g. a model this installation cannot load
        messages.error(request, exc.detail)
        return redirect(index_url())
    messages.success(request, f"Profile {profile.name} {'created' if created else 'saved'} (version {profile.version}).")
    return redirect(index_url())
