"""The router's fixed vocabularies: task states, routes, strategies, privacy levels and priorities."""

from __future__ import annotations

from django.db import models


class TaskStatus(models.TextChoices):
    PENDING = "PENDING"
    RUNNING = "RUNNING"
    OK = "OK"
    ERROR = "ERROR"
    TIMEOUT = "TIMEOUT"
    CANCELED = "CANCELED"


TERMINAL_STATUSES = frozenset({TaskStatus.OK, TaskStatus.ERROR, TaskStatus.TIMEOUT, TaskStatus.CANCELED})


class Route(models.TextChoices):
    LOCAL = "local"
    API = "api"
    HYBRID = "hybrid"


class PreferredEngine(models.TextChoices):
    AUTO = "auto"
    LOCAL = "local"
    API = "api"
    HYBRID = "hybrid"


class Strategy(models.TextChoices):
    PRIORITY = "priority"
    WEIGHTED = "weighted"
    LATENCY = "latency"
    COST = "cost"
    LEAST_BUSY = "least-busy"


class Privacy(models.TextChoices):
    LOCAL_ONLY = "local-only"
    ALLOW_API = "allow-api"
    HYBRID = "hybrid"


class Priority(models.TextChoices):
    LOW = "low"
    NORMAL = "normal"
    HIGH = "high"


class TargetKind(models.TextChoices):
    MODULE = "module"
    PROVIDER = "provider"


class Outcome(models.TextChoices):
    OK = "ok"
    ERROR = "error"
    TIMEOUT = "timeout"


class RevisionSource(models.TextChoices):
    RELOAD = "reload"
    ROLLBACK = "rollback"
    BOOTSTRAP = "bootstrap"
    TRAINING = "training"  # submitted by a training run (manage.py router_train, the weekly_model_train DAG)
