"""Django admin for the ops app (every model registered; schedules are django-celery-beat's admin)."""

from django.contrib import admin

from aion.ops.models import Backup, ExportCursor, JobRun, RequestLog, TaskLog


@admin.register(JobRun)
class JobRunAdmin(admin.ModelAdmin):
    list_display = ("job_name", "status", "trigger", "started_at", "duration_ms", "hostname")
    list_filter = ("status", "trigger", "job_name")
    search_fields = ("job_name", "log_excerpt", "traceback")
    readonly_fields = [f.name for f in JobRun._meta.fields]


@admin.register(Backup)
class BackupAdmin(admin.ModelAdmin):
    list_display = ("kind", "status", "key", "size_bytes", "duration_ms", "created_at")
    list_filter = ("kind", "status")
    readonly_fields = [f.name for f in Backup._meta.fields]


@admin.register(RequestLog)
class RequestLogAdmin(admin.ModelAdmin):
    list_display = ("created_at", "method", "path", "status", "duration_ms", "request_id")
    list_filter = ("method", "status")
    search_fields = ("path", "request_id")


@admin.register(TaskLog)
class TaskLogAdmin(admin.ModelAdmin):
    list_display = ("created_at", "task_name", "status", "duration_ms")
    list_filter = ("status", "task_name")


@admin.register(ExportCursor)
class ExportCursorAdmin(admin.ModelAdmin):
    list_display = ("name", "last_event_id", "updated_at")
