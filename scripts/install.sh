#!/usr/bin/env bash
# Installs kubenetmon with the versions pinned in constraints.txt into the environment of a Python
# interpreter. It is the one install step of `make venv`, CI and the container image, so they cannot drift.
#
# Usage: scripts/install.sh PYTHON [--dev] [--editable] [--slim]
#   PYTHON      interpreter of the target environment, e.g. .venv/bin/python (a venv is best)
#   --dev       also install the dev extra (tests, linters, kubectl, kubernetes-validate)
#   --editable  install the source tree in editable mode (development checkouts)
#   --slim      remove pandas, pyarrow and numpy afterwards (the image does this): chdb-core declares
#               them, but kubenetmon never asks chDB for DataFrame or Arrow results, and they weigh
#               about 330 MiB. The embedded store works without them (tests/charts/test_image.py).
set -euo pipefail

repo_root=$(cd "$(dirname "$0")/.." && pwd)
die() {
    printf 'install: %s\n' "$*" >&2
    exit 2
}

[[ $# -ge 1 ]] || die "usage: scripts/install.sh PYTHON [--dev] [--editable] [--slim]"
python=$1
shift
extra="" editable=() slim=0
for option in "$@"; do
    case "$option" in
        --dev) extra="[dev]" ;;
        --editable) editable=(-e) ;;
        --slim) slim=1 ;;
        *) die "unknown option '$option' (expected --dev, --editable or --slim)" ;;
    esac
done
[[ -x "$python" ]] || die "'$python' is not an executable Python interpreter"

"$python" -m pip install --quiet --disable-pip-version-check --no-cache-dir \
    -c "$repo_root/constraints.txt" "${editable[@]}" "$repo_root$extra"

if [[ $slim == 1 ]]; then
    "$python" -m pip uninstall --quiet --disable-pip-version-check --yes pandas pyarrow numpy
fi

# The installed console entry point must start; this catches a broken or partial install at once.
"$python" -m kubenetmon --version
