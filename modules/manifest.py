"""Module manifests: parse (YAML or JSON), validate against docs/module-manifest.schema.json, normalise.

Every violation is reported with its dotted path (``resources.gpu``,
``signature.payload``), schema errors and the cross-field rules alike.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

import yaml
from django.conf import settings
from jsonschema import Draft202012Validator
from jsonschema.exceptions import ValidationError, best_match

POOL_LABEL = "aion.io/pool"  # the node-selector key that names the pool
DEFAULT_HEALTH_PATH = "/healthz"


class ManifestInvalid(Exception):
    """The manifest breaks the schema or a cross-field rule; ``errors`` maps dotted paths to messages."""

    def __init__(self, errors: dict[str, list[str]]) -> None:
        super().__init__("; ".join(f"{path}: {', '.join(msgs)}" for path, msgs in errors.items()))
        self.errors = errors


@lru_cache(maxsize=1)
def schema() -> dict[str, Any]:
    path = settings.BASE_DIR / "docs" / "module-manifest.schema.json"
    return dict(json.loads(path.read_text()))


@lru_cache(maxsize=1)
def _validator() -> Draft202012Validator:
    return Draft202012Validator(schema())


class _NoAliasLoader(yaml.SafeLoader):
    """SafeLoader without anchors/aliases: an alias bomb would expand exponentially in validation and hashing."""

    def compose_node(self, parent: Any, index: Any) -> Any:
        if self.check_event(yaml.AliasEvent):
            event = self.peek_event()
            raise yaml.composer.ComposerError(None, None, "YAML aliases are not allowed in manifests", event.start_mark)
        return super().compose_node(parent, index)


def parse_yaml(text: str | bytes) -> Any:
    """YAML (a JSON document is YAML too) to Python; ManifestInvalid on a syntax error."""
    try:
        return yaml.load(text, Loader=_NoAliasLoader)  # noqa: S506 - a SafeLoader subclass
    except yaml.YAMLError as exc:
        raise ManifestInvalid({"manifest": [f"not valid YAML: {str(exc)[:200]}"]}) from exc
    except RecursionError as exc:
        raise ManifestInvalid({"manifest": ["the YAML document is nested too deeply"]}) from exc


def _path(parts: Any) -> str:
    return ".".join(str(part) for part in parts)


def _describe(error: ValidationError) -> list[tuple[str, str]]:
    """(path, message) pairs for one schema error, pointing at the offending field itself."""
    base = list(error.absolute_path)
    if error.validator == "required":
        missing = [name for name in error.validator_value if isinstance(error.instance, dict) and name not in error.instance]
        return [(_path([*base, name]), "This field is required.") for name in missing]
    if error.validator == "additionalProperties" and isinstance(error.instance, dict):
        allowed = set((error.schema.get("properties") or {}).keys())
        extra = [name for name in error.instance if name not in allowed]
        return [(_path([*base, name]), "Unknown field.") for name in extra]
    if error.validator == "oneOf" and error.context:
        return _describe(best_match(error.context))
    if error.validator == "pattern":
        return [(_path(base) or "manifest", f"{error.instance!r} does not have the expected format.")]
    if error.validator == "not" and base == ["name"]:
        return [("name", f"{error.instance!r} is reserved.")]
    return [(_path(base) or "manifest", error.message)]


def validate(manifest: Any) -> dict[str, list[str]]:
    """All violations of MANIFEST, keyed by dotted path (empty when valid)."""
    if not isinstance(manifest, dict):
        return {"manifest": ["The manifest must be a mapping (a YAML or JSON object)."]}
    if manifest.get("signature", 0) in (None, "", {}):
        # An empty signature is a missing one: refused by verification (with an incident), not by the schema.
        manifest = {key: value for key, value in manifest.items() if key != "signature"}
    errors: dict[str, list[str]] = {}
    for error in _validator().iter_errors(manifest):
        for path, message in _describe(error):
            # Messages quote the offending value; keep them short whatever was sent.
            errors.setdefault(path[:200], []).append(message if len(message) <= 300 else message[:297] + "...")
    if errors:
        return errors
    # Cross-field rules the schema cannot say clearly.
    pool = manifest["pool"]
    gpus = (manifest.get("resources") or {}).get("gpu", 0)
    if pool == "cpu" and gpus > 0:
        errors.setdefault("resources.gpu", []).append("A cpu-pool module cannot request GPUs.")
    if pool == "gpu" and gpus < 1:
        errors.setdefault("resources.gpu", []).append("A gpu-pool module must request at least one GPU.")
    selector = manifest.get("node_selector") or {}
    if POOL_LABEL in selector and selector[POOL_LABEL] != pool:
        errors.setdefault(f"node_selector.{POOL_LABEL}", []).append(f"Must be {pool!r}, the module's pool.")
    return errors


def check(manifest: Any) -> dict[str, Any]:
    """MANIFEST itself when valid; ManifestInvalid otherwise."""
    errors = validate(manifest)
    if errors:
        raise ManifestInvalid(errors)
    return dict(manifest)


def canonical_json(document: Any) -> bytes:
    """JSON with sorted keys, no whitespace, UTF-8 (not ASCII-escaped); for manifests (no floats) this equals RFC 8785 (JCS)."""
    return json.dumps(document, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False).encode()


def canonical_sha256(manifest: dict[str, Any]) -> str:
    """The identity of a manifest's content (signature included), the same whether it arrived as YAML or JSON."""
    return hashlib.sha256(canonical_json(manifest)).hexdigest()


SIGNATURE_FIELD = "signature"  # the only top-level field a manifest signature does not cover


def signed_content(manifest: dict[str, Any]) -> dict[str, Any]:
    """What a manifest signature covers: every field except ``signature`` itself, as written (defaults not filled in)."""
    return {key: value for key, value in manifest.items() if key != SIGNATURE_FIELD}


def signed_sha256(manifest: dict[str, Any]) -> str:
    """The hex sha256 of the canonical JSON of ``signed_content`` (the in-toto predicate's ``manifest_sha256``)."""
    return hashlib.sha256(canonical_json(signed_content(manifest))).hexdigest()


@dataclass(frozen=True)
class ImageRef:
    repository: str  # registry/repo without tag or digest (cosign's docker-reference)
    tag: str
    digest: str  # sha256:<hex>


def parse_image(image: str) -> ImageRef:
    name, _, digest = image.partition("@")
    last = name.rsplit("/", 1)[-1]
    tag = ""
    if ":" in last:
        tag = last.split(":", 1)[1]
        name = name[: -(len(tag) + 1)]
    return ImageRef(repository=name, tag=tag, digest=digest)


def node_selector(manifest: dict[str, Any]) -> dict[str, str]:
    selector = dict(manifest.get("node_selector") or {})
    selector.setdefault(POOL_LABEL, manifest["pool"])
    return selector


def health_path(manifest: dict[str, Any]) -> str:
    return str(manifest.get("health_path") or DEFAULT_HEALTH_PATH)
