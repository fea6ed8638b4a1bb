#!/usr/bin/env bash
# Prepares the venv with llama-cpp-python (llama.cpp built here) and the gguf package, then writes
# the tiny models and llama.cpp's reference logits for them: `scripts/tiny_models/setup.sh [ARCH ...]`.
# Only needed to regenerate the committed fixtures in Tests/Fixtures/tiny-models.
set -euo pipefail
cd "$(dirname "$0")/../.."
venv="${EMBER_BENCH_VENV:-$HOME/.cache/ember/venv}"
if ! "$venv/bin/python" -c "import llama_cpp, gguf" >/dev/null 2>&1; then
    python3 -m venv "$venv"
    CMAKE_ARGS="-DGGML_NATIVE=ON" "$venv/bin/pip" install --progress-bar off llama-cpp-python==0.3.36 gguf==0.19.0 numpy
fi
"$venv/bin/python" scripts/tiny_models/make.py "$@"
(cd Tests/Fixtures/tiny-models && sha256sum *.gguf > SHA256SUMS)
if [ $# -eq 0 ]; then
    "$venv/bin/python" scripts/tiny_models/reference.py
else
    for arch in "$@"; do
        "$venv/bin/python" scripts/tiny_models/reference.py Tests/Fixtures/tiny-models/"$arch"-*.gguf
    done
fi
