#!/usr/bin/env bash
# `make bench`: builds Ember, prepares llama.cpp through llama-cpp-python in a venv outside the
# repository (compiled here once, several minutes), then runs scripts/bench.py.
set -euo pipefail
cd "$(dirname "$0")/.."
venv="${EMBER_BENCH_VENV:-$HOME/.cache/ember/venv}"
if ! "$venv/bin/python" -c "import llama_cpp" >/dev/null 2>&1; then
    echo "bench: building llama.cpp through llama-cpp-python into $venv (several minutes)" >&2
    python3 -m venv "$venv"
    CMAKE_ARGS="-DGGML_NATIVE=ON" "$venv/bin/pip" install --progress-bar on llama-cpp-python
fi
"$venv/bin/python" scripts/bench.py "$venv/bin/python"
