#!/usr/bin/env python3
"""Print the image of every module in modules.yml, one ``repo[:tag]@sha256:<digest>`` a line, for ``cosign verify``.

Used by .github/workflows/verify-cosign.yml (stdlib + PyYAML only, no Django). It reads the catalog the
way ``modules/catalog.py`` does: each manifest path is relative to the catalog, and the manifest file's
sha256 must equal the catalog's (so the images verified are those of the manifests that will be imported).

Exit status: 0 with the list; 1 on any problem (unreadable catalog or manifest, checksum mismatch, an image
not pinned by digest); 2 when the catalog lists no modules, unless --allow-empty (nothing to deploy).
"""

from __future__ import annotations

import argparse
import hashlib
import re
import sys
from pathlib import Path
from typing import Any

import yaml

# The manifest schema's digest rule (docs/module-manifest.schema.json, "image"): cosign verifies what is pinned.
PINNED = re.compile(r"^[^@\s]+@sha256:[a-f0-9]{64}$")
EMPTY = 2


class CatalogProblem(Exception):
    pass


def _load(path: Path) -> Any:
    try:
        return yaml.safe_load(path.read_bytes())
    except OSError as exc:
        raise CatalogProblem(f"{path}: cannot read: {exc.strerror}") from exc
    except yaml.YAMLError as exc:
        raise CatalogProblem(f"{path}: not valid YAML: {exc}") from exc


def module_images(catalog: Path) -> list[str]:
    """The pinned image of every catalog entry, in catalog order, duplicates dropped; CatalogProblem lists every fault."""
    document = _load(catalog) or {}
    if not isinstance(document, dict) or not isinstance(document.get("modules") or [], list):
        raise CatalogProblem(f"{catalog}: expected a mapping with a 'modules' list")
    problems: list[str] = []
    images: list[str] = []
    for index, item in enumerate(document.get("modules") or []):
        if not isinstance(item, dict) or not all(
            isinstance(item.get(k), str) and item[k] for k in ("name", "version", "manifest", "sha256")
        ):
            problems.append(f"modules.{index}: needs string name, version, manifest and sha256")
            continue
        path = Path(item["manifest"])
        path = path if path.is_absolute() else catalog.parent / path
        try:
            data = path.read_bytes()
        except OSError as exc:
            problems.append(f"{item['name']}: cannot read {path}: {exc.strerror}")
            continue
        actual = "sha256:" + hashlib.sha256(data).hexdigest()
        if actual != item["sha256"]:
            problems.append(f"{item['name']}: checksum mismatch for {path}: catalog says {item['sha256']}, file is {actual}")
            continue
        try:
            manifest = yaml.safe_load(data)
        except yaml.YAMLError as exc:
            problems.append(f"{item['name']}: {path} is not valid YAML: {exc}")
            continue
        image = manifest.get("image") if isinstance(manifest, dict) else None
        if not isinstance(image, str) or not PINNED.match(image):
            problems.append(f"{item['name']}: {path}: image {image!r} is not pinned by @sha256: digest")
            continue
        if image not in images:
            images.append(image)
    if problems:
        raise CatalogProblem("\n".join(problems))
    return images


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("catalog", type=Path, help="modules.yml")
    parser.add_argument("--allow-empty", action="store_true", help="an empty catalog is fine: there is nothing to deploy")
    args = parser.parse_args(argv)
    try:
        images = module_images(args.catalog)
    except CatalogProblem as exc:
        print(exc, file=sys.stderr)
        return 1
    if not images and not args.allow_empty:
        print(f"{args.catalog} lists no modules: refusing to pass the deploy gate vacuously (say nothing_to_deploy if so)", file=sys.stderr)
        return EMPTY
    for image in images:
        print(image)
    return 0


if __name__ == "__main__":
    sys.exit(main())
