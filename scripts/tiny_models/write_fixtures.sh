#!/usr/bin/env bash
# Writes the tiny test models into Tests/Fixtures/tiny-models from the seeded generator (numpy and
# gguf pinned, in a venv outside the repository) and checks them against SHA256SUMS there. Quick and
# silent when the files are already in place.
set -euo pipefail
cd "$(dirname "$0")/../.."
fixtures=Tests/Fixtures/tiny-models
if (cd "$fixtures" && sha256sum --quiet --check SHA256SUMS >/dev/null 2>&1); then exit 0; fi
venv="${EMBER_TINY_VENV:-$HOME/.cache/ember/tiny-venv}"
if ! "$venv/bin/python" -c "import gguf, numpy" >/dev/null 2>&1; then
    echo "bootstrap: preparing $venv for the tiny test models (numpy, gguf)" >&2
    python3 -m venv "$venv"
    "$venv/bin/pip" install --quiet --disable-pip-version-check numpy==2.4.6 gguf==0.19.0
fi
"$venv/bin/python" scripts/tiny_models/make.py > /dev/null
if ! (cd "$fixtures" && sha256sum --quiet --check SHA256SUMS); then
    echo "bootstrap: error: the tiny models written here differ from SHA256SUMS (numpy or gguf changed?)" >&2
    exit 1
fi
