"""Django admin for the memory app: every model, read-mostly (state changes go through services)."""

from django.contrib import admin

from memory.models import MemoryProfile, Upload, UploadChunk


@admin.register(MemoryProfile)
class MemoryProfileAdmin(admin.ModelAdmin):
    list_display = ("tenant_id", "name", "version", "embedding_model", "chunk_size", "retention_days", "updated_at")
    list_filter = ("embedding_model",)
    search_fields = ("tenant_id", "name")


@admin.register(Upload)
class UploadAdmin(admin.ModelAdmin):
    list_display = ("id", "tenant_id", "profile", "state", "received_chunks", "total_chunks", "size_bytes", "created_at")
    list_filter = ("state",)
    search_fields = ("id", "tenant_id", "filename", "checksum")
    readonly_fields = [f.name for f in Upload._meta.fields]


@admin.register(UploadChunk)
class UploadChunkAdmin(admin.ModelAdmin):
    list_display = ("upload", "index", "size", "sha256", "stored", "received_at")
    readonly_fields = ("upload", "index", "size", "sha256", "stored", "storage_key", "part_etag", "received_at")
