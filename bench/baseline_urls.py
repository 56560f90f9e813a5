"""Bare views for the baselines: no middleware, no authentication, no serializer."""

from __future__ import annotations

from django.db import connection, transaction
from django.http import HttpRequest, JsonResponse
from django.urls import path
from django.views.decorators.csrf import csrf_exempt

_table_ready = False


def bare(request: HttpRequest) -> JsonResponse:
    return JsonResponse({"status": "ok"})


@csrf_exempt
def bare_insert(request: HttpRequest) -> JsonResponse:
    global _table_ready
    with connection.cursor() as cursor:
        if not _table_ready:
            key = "BIGSERIAL PRIMARY KEY" if connection.vendor == "postgresql" else "INTEGER PRIMARY KEY AUTOINCREMENT"
            cursor.execute(f"CREATE TABLE IF NOT EXISTS bench_baseline_insert (id {key}, body TEXT NOT NULL)")
            _table_ready = True
        with transaction.atomic():
            cursor.execute("INSERT INTO bench_baseline_insert (body) VALUES (%s)", [request.body.decode(errors="replace")[:200]])
    return JsonResponse({"status": "ok"}, status=201)


urlpatterns = [path("bare", bare), path("bare-insert", bare_insert)]
