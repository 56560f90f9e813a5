"""Choices of the memory app: upload states, pipeline steps and the embedding models it registers."""

from __future__ import annotations

from django.db import models


class UploadState(models.TextChoices):
    RECEIVING = "receiving"
    ASSEMBLING = "assembling"
    PROCESSING = "processing"
    COMPLETE = "complete"
    FAILED = "failed"
    ABORTED = "aborted"


# Uploads that still hold chunk bytes or a multipart upload (what the 72 h abort job looks at).
ACTIVE_STATES = (UploadState.RECEIVING, UploadState.ASSEMBLING)


class PipelineStep(models.TextChoices):
    ASSEMBLE = "assemble"  # not a profile step: the chunks -> one object, before the pipeline
    EXTRACT = "extract"
    CHUNK = "chunk"
    EMBED = "embed"
    STORE = "store"


# The steps a profile may list, in the only order that makes sense (each needs the one before).
PROFILE_STEPS = (PipelineStep.EXTRACT, PipelineStep.CHUNK, PipelineStep.EMBED, PipelineStep.STORE)
DEFAULT_PIPELINE = [step.value for step in PROFILE_STEPS]
