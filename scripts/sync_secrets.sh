#!/usr/bin/env bash
# Turn the SOPS-encrypted secrets under policies/secrets/ into Kubernetes Secrets.
#
#   scripts/sync_secrets.sh                      # decrypt every policies/secrets/*.enc.yaml with sops, apply
#   scripts/sync_secrets.sh --dry-run            # print the Secret manifests, apply nothing
#   scripts/sync_secrets.sh --decrypted FILE...  # FILEs are already decrypted (e.g. `sops -d x.enc.yaml`)
#   scripts/sync_secrets.sh --namespace aion-staging policies/secrets/aion-secrets.enc.yaml
#
# Each file holds `secret: <name>`, optionally `namespace: <ns>`, and `stringData: {KEY: value}`
# (only stringData is encrypted; see docs/operations.md for the .sops.yaml recipe). Every key
# becomes one data entry of the Secret, built with
#   kubectl create secret generic ... --dry-run=client -o yaml | kubectl apply -f -
# Values go through files in a private temporary folder (removed on exit), never the command line.
set -euo pipefail

dry_run=0
decrypted=0
namespace=""
files=()
while [[ $# -gt 0 ]]; do
  case "$1" in
    --dry-run) dry_run=1 ;;
    --decrypted) decrypted=1 ;;
    --namespace) namespace="$2"; shift ;;
    -h|--help) sed -n '2,16p' "$0"; exit 0 ;;
    -*) echo "unknown option: $1" >&2; exit 2 ;;
    *) files+=("$1") ;;
  esac
  shift
done

root="$(cd "$(dirname "$0")/.." && pwd)"
if [[ ${#files[@]} -eq 0 ]]; then
  shopt -s nullglob
  files=("$root"/policies/secrets/*.enc.yaml)
fi
[[ ${#files[@]} -gt 0 ]] || { echo "no secret files found" >&2; exit 1; }
command -v kubectl >/dev/null || { echo "kubectl is required" >&2; exit 1; }
if [[ $decrypted -eq 0 ]]; then
  command -v "${SOPS:-sops}" >/dev/null || { echo "sops is required (or pass --decrypted)" >&2; exit 1; }
fi

work="$(mktemp -d "${TMPDIR:-/tmp}/aion-secrets.XXXXXX")"
chmod 700 "$work"
trap 'rm -rf "$work"' EXIT

for file in "${files[@]}"; do
  plain="$work/plain.yaml"
  if [[ $decrypted -eq 1 ]]; then
    cp "$file" "$plain"
  else
    "${SOPS:-sops}" --decrypt "$file" > "$plain"
  fi
  values="$work/values"
  rm -rf "$values" && mkdir -m 700 "$values"
  # Writes one file per key and prints "<secret name> <namespace>".
  read -r name file_namespace < <("${PYTHON:-python3}" - "$plain" "$values" <<'PY'
import pathlib, re, sys
import yaml
doc = yaml.safe_load(pathlib.Path(sys.argv[1]).read_text()) or {}
if "sops" in doc:
    sys.exit(f"{sys.argv[1]} is still encrypted: decrypt it with sops first")
name, data = doc.get("secret"), doc.get("stringData") or {}
if not name or not isinstance(data, dict) or not data:
    sys.exit("each secrets file needs 'secret: <name>' and a non-empty 'stringData' map")
for key, value in data.items():
    if not re.fullmatch(r"[-._a-zA-Z0-9]+", str(key)):
        sys.exit(f"invalid Secret key {key!r}")
    (pathlib.Path(sys.argv[2]) / str(key)).write_text("" if value is None else str(value))
print(name, doc.get("namespace") or "aion")
PY
)
  ns="${namespace:-$file_namespace}"
  args=(create secret generic "$name" --namespace "$ns" --dry-run=client -o yaml)
  for value_file in "$values"/*; do
    args+=("--from-file=$(basename "$value_file")=$value_file")
  done
  if [[ $dry_run -eq 1 ]]; then
    echo "---"
    kubectl "${args[@]}"
  else
    kubectl "${args[@]}" | kubectl apply -f -
  fi
done
