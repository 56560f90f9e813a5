"""Console forms of the memory app: a profile (create or edit) and a search.

The profile's rules (bounds, model, pipeline order, overlap < size) are the API's ``ProfileSerializer``,
run by ``clean()`` so the Console, the API and the commands share one set; the save itself is
``memory.services.save_profile``, whose refusals the view puts on this form.
"""

from __future__ import annotations

from typing import Any

from django import forms

from memory import embeddings
from memory.api.serializers import ProfileSerializer
from memory.choices import PROFILE_STEPS
from memory.models import MemoryProfile

MAX_QUERY = 8000


class ProfileForm(forms.Form):
    name = forms.SlugField(max_length=64)
    embedding_model = forms.CharField(max_length=200, required=False, initial=embeddings.HASH_MODEL,
                                      widget=forms.TextInput(attrs={"list": "models"}))  # fmt: skip
    chunk_size = forms.IntegerField(label="Chunk size (characters, 128–65536)", initial=1000, required=False)
    chunk_overlap = forms.IntegerField(label="Chunk overlap (empty = chunk size / 8)", required=False)
    pipeline = forms.MultipleChoiceField(choices=[(s.value, s.value) for s in PROFILE_STEPS], required=False,
                                         widget=forms.CheckboxSelectMultiple, initial=[s.value for s in PROFILE_STEPS])  # fmt: skip
    retention_days = forms.IntegerField(label="Retention (days, empty = forever)", required=False)
    description = forms.CharField(required=False, widget=forms.Textarea(attrs={"rows": 2}))

    def __init__(self, *args: Any, editing: MemoryProfile | None = None, **kwargs: Any) -> None:
        if editing is not None and "initial" not in kwargs:
            kwargs["initial"] = {
                "name": editing.name,
                "embedding_model": editing.embedding_model,
                "chunk_size": editing.chunk_size,
                "chunk_overlap": editing.chunk_overlap,
                "pipeline": list(editing.pipeline),
                "retention_days": editing.retention_days,
                "description": editing.description,
            }
        super().__init__(*args, **kwargs)
        self.editing = editing
        if editing is not None:
            self.fields["name"].widget.attrs["readonly"] = True

    def clean(self) -> dict[str, Any]:
        cleaned = super().clean() or {}
        if self.errors:
            return cleaned
        data = {key: value for key, value in cleaned.items() if value not in (None, "", [])}
        data.setdefault("description", "")
        serializer = ProfileSerializer(data=data)
        if not serializer.is_valid():
            for field, found in serializer.errors.items():
                name = field if field in self.fields else None
                for message in found if isinstance(found, list) else [found]:
                    self.add_error(name, str(message))
            return cleaned
        self.profile_fields = dict(serializer.validated_data)
        return cleaned


class SearchForm(forms.Form):
    profile = forms.ChoiceField(choices=[])
    q = forms.CharField(label="Query", max_length=MAX_QUERY, required=False, strip=True,
                        widget=forms.TextInput(attrs={"type": "search", "placeholder": "What are you looking for?"}))  # fmt: skip

    def __init__(self, *args: Any, profiles: list[MemoryProfile], **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        field: Any = self.fields["profile"]
        field.choices = [(p.name, p.name) for p in profiles]


class EditForm(forms.Form):
    """``?edit=NAME``: the profile the page's form edits (an unknown or bad name: a new profile)."""

    edit = forms.SlugField(max_length=64, required=False)
