#!/usr/bin/env bash
# Release the deck: build it from a clean checkout, check it, refuse unless the build reports no changes (the lock
# file committed in step with the cards), write the release notes and a SHA-256 checksum, publish a GitHub release.
#
#   scripts/release.sh [--dry-run] [--tag vX.Y.Z]
#
# --dry-run: every step but publishing (run it before pushing a tag). The release workflow
# (.github/workflows/release.yml) runs the script on a pushed v* tag once the tests have passed; publishing uses the
# GitHub CLI (gh, with GH_TOKEN). PYTHON picks the interpreter (default: .venv/bin/python, else python3), which must
# have this project installed (pip install -e .).
#
# Making a release:
#   1. set the version in pyproject.toml and reinstall (pip install -e .): the deck shows the installed version;
#   2. build (python build.py) and commit cards/cards.lock.json with the cards;
#   3. python build.py changes --changelog (the new CHANGELOG.md section, since the last tag); commit CHANGELOG.md;
#   4. scripts/release.sh --dry-run; then git tag vX.Y.Z && git push origin vX.Y.Z.
set -euo pipefail
cd "$(dirname "$0")/.."

usage="usage: scripts/release.sh [--dry-run] [--tag vX.Y.Z]"
dry_run=0
tag=""
while [ $# -gt 0 ]; do
  case "$1" in
    --dry-run) dry_run=1 ;;
    --tag) [ $# -ge 2 ] || { echo "Error: --tag needs a value ($usage)" >&2; exit 2; }; tag="$2"; shift ;;
    --tag=*) tag="${1#--tag=}" ;;
    -h | --help) echo "$usage"; exit 0 ;;
    *) echo "Error: unknown argument '$1' ($usage)" >&2; exit 2 ;;
  esac
  shift
done

fail() {
  echo "Error: $*" >&2
  exit 1
}
step() { echo "==> $*"; }

if [ -z "${PYTHON:-}" ]; then
  if [ -x .venv/bin/python ]; then PYTHON=.venv/bin/python; else PYTHON=python3; fi
fi

# --- what is being released ------------------------------------------------------------------------------------------
git rev-parse --git-dir >/dev/null 2>&1 || fail "$(pwd) is not a git checkout"
version=$("$PYTHON" -c 'import tomllib; print(tomllib.load(open("pyproject.toml", "rb"))["project"]["version"])') \
  || fail "cannot read the version from pyproject.toml with $PYTHON"
installed=$("$PYTHON" -c 'from importlib.metadata import version; print(version("ankideck"))' 2>/dev/null) \
  || fail "the ankideck project is not installed for $PYTHON (pip install -e .)"
[ "$installed" = "$version" ] \
  || fail "pyproject.toml says $version but $PYTHON has $installed installed (the deck shows that): pip install -e ."
if [ -z "$tag" ] && [ "${GITHUB_REF_TYPE:-}" = tag ]; then tag="${GITHUB_REF_NAME:-}"; fi
if [ -z "$tag" ]; then tag=$(git describe --tags --exact-match --match 'v*' HEAD 2>/dev/null || true); fi
if [ -z "$tag" ]; then
  [ "$dry_run" = 1 ] || fail "HEAD has no v* tag: tag the release commit (git tag v$version) or pass --tag"
  tag="v$version"
  echo "note: HEAD has no v* tag; dry run as $tag"
fi
[ "$tag" = "v$version" ] || fail "tag $tag does not match the version in pyproject.toml ($version)"
if [ "$dry_run" = 0 ]; then
  [ "$(git rev-parse -q --verify "$tag^{commit}" || true)" = "$(git rev-parse HEAD)" ] \
    || fail "tag $tag does not name the checked-out commit"
fi
[ -z "$(git status --porcelain)" ] \
  || fail "the checkout has uncommitted changes (git status): a release is built from committed sources only"
grep -Eq "^## ${version//./\\.}( |$)" CHANGELOG.md 2>/dev/null \
  || fail "CHANGELOG.md has no section for $version: run '$PYTHON build.py changes --changelog' and commit it"
out=$("$PYTHON" -c 'from ankideck.config import load_config; c = load_config(); print(c.rel(c.out))')
lock=$("$PYTHON" -c 'from ankideck.config import load_config; c = load_config(); print(c.rel(c.lock_path))')
url=$("$PYTHON" -c 'from ankideck.changelog import repository_url; print(repository_url() or "")')
if [ -n "${GITHUB_REPOSITORY:-}" ] && [ "$url" != "https://github.com/$GITHUB_REPOSITORY" ]; then
  echo "::warning::pyproject.toml [project.urls] Repository is '$url', not https://github.com/$GITHUB_REPOSITORY:" \
    "the deck's changelog and correction links point there"
fi
# The deck's description shows the date of the tagged commit, the same on every rebuild of it.
SOURCE_DATE_EPOCH=$(git log -1 --format=%ct HEAD)
export SOURCE_DATE_EPOCH
step "releasing $tag (ankideck $version, commit $(git rev-parse --short HEAD))"

# --- build and check ------------------------------------------------------------------------------------------------
step "build"
log=$(mktemp)
trap 'rm -f "$log"' EXIT
PYTHONUNBUFFERED=1 "$PYTHON" build.py build 2>&1 | tee "$log"
summary=$(tail -n 1 "$log")  # "Built OUT: N notes, N cards, N media; CHANGES; N s"
case "$summary" in
  Built*"; no changes; "*) ;;
  *)
    fail "the build reports changes ($(sed -E 's/^.*; ([^;]*); [^;]*$/\1/' <<<"$summary")): $lock is not" \
      "committed in step with the cards. Build, commit $lock with the cards, and tag that commit."
    ;;
esac
[ -z "$(git status --porcelain -- "$lock")" ] \
  || fail "the build rewrote $lock: it is not committed in step with the cards. Commit it and tag that commit."
step "check"
"$PYTHON" build.py check

# --- release notes and checksum -------------------------------------------------------------------------------------
step "release notes and checksum"
apkg=$(basename "$out")
dist=$(dirname "$out")
notes="$dist/release-notes.md"
previous=$(git describe --tags --abbrev=0 --match 'v*' HEAD^ 2>/dev/null || true)
if [ -n "$previous" ]; then
  "$PYTHON" build.py changes --since "$previous" --out "$notes"
else
  "$PYTHON" build.py changes --initial --out "$notes"
fi
(cd "$dist" && sha256sum "$apkg" >"$apkg.sha256")
sha=$(cut -d ' ' -f 1 "$dist/$apkg.sha256")
{
  echo
  echo "Download \`$apkg\` below and import it into Anki (desktop: File → Import; AnkiDroid: Import; AnkiMobile:" \
    "open it with Anki). A re-import updates exactly the changed cards and keeps your review history."
  echo
  echo "SHA-256 of \`$apkg\`: \`$sha\`"
} >>"$notes"
echo "Wrote $notes, $dist/$apkg.sha256 ($sha)"

# --- publish --------------------------------------------------------------------------------------------------------
publish=(gh release create "$tag" "$out" "$out.sha256" --title "$tag" --notes-file "$notes" --verify-tag)
if [ "$dry_run" = 1 ]; then
  step "dry run: published nothing; a release would run: ${publish[*]}"
  exit 0
fi
command -v gh >/dev/null || fail "the GitHub CLI (gh) is not installed: it publishes the release"
step "publish"
"${publish[@]}"
