"""manage.py modules_predicate MANIFEST [--attach ENVELOPE]: the two local steps around ``cosign attest-blob``.

Without ``--attach``: print the in-toto predicate to sign (the manifest's canonical sha256) on stdout and
the exact ``cosign attest-blob`` command on stderr. With ``--attach``: print the manifest carrying the
envelope cosign wrote in ``signature.dsse``. docs/modules.md, "Signing a manifest".
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import yaml
from django.core.management.base import BaseCommand, CommandError, CommandParser

from modules import manifest as manifests
from modules import signing


class Command(BaseCommand):
    help = (
        "Print the predicate (manifest sha256) to sign with `cosign attest-blob`, "
        "or with --attach ENVELOPE the manifest carrying that envelope in signature.dsse."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("manifest", help="the manifest (YAML or JSON); an existing signature is ignored")
        parser.add_argument("--attach", metavar="ENVELOPE", help="the file `cosign attest-blob --output-signature` wrote")
        parser.add_argument("--key-id", default="", help="with --attach: the trusted key id hint (signature.key_id)")

    def handle(self, *args: Any, **options: Any) -> None:
        path = Path(options["manifest"])
        try:
            document = manifests.parse_yaml(path.read_bytes())
        except OSError as exc:
            raise CommandError(f"cannot read {path}: {exc.strerror}") from exc
        except manifests.ManifestInvalid as exc:
            raise CommandError(str(exc)) from exc
        if not isinstance(document, dict):
            raise CommandError(f"{path} is not a mapping")
        unsigned = manifests.signed_content(document)
        errors = manifests.validate(unsigned)
        if errors:
            raise CommandError("the manifest is invalid: " + "; ".join(f"{p}: {', '.join(m)}" for p, m in errors.items()))
        if options["attach"]:
            self._attach(path, unsigned, Path(options["attach"]), options["key_id"])
            return
        statement = signing.statement_for(unsigned)
        subject = statement["subject"][0]
        self.stdout.write(json.dumps(statement["predicate"], indent=2))
        self.stderr.write(
            "Sign it (cosign 2.x, key-pair mode, offline) with:\n"
            f"  cosign attest-blob --key cosign.key --tlog-upload=false --type {signing.PREDICATE_TYPE} \\\n"
            f"    --predicate predicate.json --hash {subject['digest']['sha256']} --output-signature envelope.json \\\n"
            f"    {subject['name'].rsplit('/', 1)[-1]}\n"
            f"then: python manage.py modules_predicate {path} --attach envelope.json --key-id <id> > signed{path.suffix or '.yaml'}\n"
        )

    def _attach(self, path: Path, unsigned: dict[str, Any], envelope_path: Path, key_id: str) -> None:
        try:
            envelope = envelope_path.read_text()
        except (OSError, UnicodeDecodeError) as exc:
            raise CommandError(f"cannot read {envelope_path}: {exc}") from exc
        try:
            signed = signing.attach_envelope(unsigned, envelope, key_id=key_id)
        except signing.SignatureRejected as exc:
            raise CommandError(f"{envelope_path}: {exc.detail}") from exc
        if path.suffix == ".json":
            self.stdout.write(json.dumps(signed, indent=2, ensure_ascii=False))
        else:
            self.stdout.write(yaml.safe_dump(signed, sort_keys=False, allow_unicode=True).rstrip("\n"))
