#!/usr/bin/env bash
# Install the Airflow DAG folder (bigdata/airflow/dags) as it was at a DAG release tag.
#
#   scripts/deploy_dags.sh --tag dags-v3 --to /opt/airflow/dags     # that release
#   scripts/deploy_dags.sh --last-stable --to /opt/airflow/dags     # the runbook's "redeploy last stable Airflow DAG tag"
#   options: --repo PATH (default: the git repository of the current directory)
#
# DAG releases are git tags named dags-v<N>. The last stable one is the tag named in bigdata/airflow/STABLE
# (first line) at HEAD when that file exists; otherwise the highest dags-v<N> that is an annotated tag
# (annotated = released as stable; a lightweight tag is a candidate).
# The folder is extracted with `git archive` (the tag's content, whatever is checked out) next to DIR and
# swapped in with two renames, so the scheduler never parses a half-copied folder. DIR/.dags-release
# records the tag and commit installed.
set -euo pipefail

DAG_PATH="bigdata/airflow/dags"
tag="" to="" repo="" last_stable=0

die() { echo "deploy_dags: $*" >&2; exit 2; }

while [ $# -gt 0 ]; do
  case "$1" in
    --tag) [ $# -ge 2 ] || die "--tag needs a tag name"; tag="$2"; shift 2 ;;
    --to) [ $# -ge 2 ] || die "--to needs a directory"; to="$2"; shift 2 ;;
    --repo) [ $# -ge 2 ] || die "--repo needs a path"; repo="$2"; shift 2 ;;
    --last-stable) last_stable=1; shift ;;
    -h|--help) sed -n '2,14p' "$0"; exit 0 ;;
    *) die "unknown argument: $1" ;;
  esac
done

[ -n "$to" ] || die "--to DIR is required"
if [ "$last_stable" = 1 ] && [ -n "$tag" ]; then die "give --tag or --last-stable, not both"; fi
if [ "$last_stable" = 0 ] && [ -z "$tag" ]; then die "give --tag NAME or --last-stable"; fi
repo="${repo:-$(git rev-parse --show-toplevel 2>/dev/null)}" || die "not inside a git repository (use --repo)"
[ -n "$repo" ] || die "not inside a git repository (use --repo)"
git() { command git -C "$repo" "$@"; }

if [ "$last_stable" = 1 ]; then
  if stable_file="$(git show "HEAD:bigdata/airflow/STABLE" 2>/dev/null)"; then
    tag="$(printf '%s\n' "$stable_file" | sed -n '1{s/[[:space:]]//g;p;}')"
    [ -n "$tag" ] || die "bigdata/airflow/STABLE is empty"
  else
    tag=""
    for candidate in $(git tag --list 'dags-v*' --sort=-v:refname); do
      if [ "$(git cat-file -t "refs/tags/$candidate")" = "tag" ]; then tag="$candidate"; break; fi
    done
    [ -n "$tag" ] || die "no stable DAG release: no annotated dags-v* tag and no bigdata/airflow/STABLE"
  fi
fi

case "$tag" in dags-v*) ;; *) die "DAG release tags are named dags-v<N>, not '$tag'" ;; esac
commit="$(git rev-parse --verify --quiet "refs/tags/$tag^{commit}")" || die "no such tag: $tag"
git cat-file -e "$commit:$DAG_PATH" 2>/dev/null || die "$tag has no $DAG_PATH folder"

target="$(cd "$(dirname "$to")" 2>/dev/null && pwd)/$(basename "$to")" || die "the parent of $to does not exist"
staging="$target.new.$$"
previous="$target.old.$$"
trap 'rm -rf "$staging" "$previous"' EXIT
mkdir -p "$staging"
strip=$(( $(printf '%s' "$DAG_PATH" | tr -cd '/' | wc -c) + 1 ))
git archive --format=tar "$commit" "$DAG_PATH" | tar -x -C "$staging" --strip-components="$strip"
printf 'tag=%s\ncommit=%s\ninstalled_at=%s\n' "$tag" "$commit" "$(date -u +%Y-%m-%dT%H:%M:%SZ)" > "$staging/.dags-release"

if [ -e "$target" ]; then mv "$target" "$previous"; fi
mv "$staging" "$target"
echo "installed $DAG_PATH at $tag ($commit) into $target"
