#!/usr/bin/env bash
# `make bench`: builds Ember, prepares llama.cpp through llama-cpp-python in a venv outside the
# repository (compiled here once, several minutes), then runs scripts/bench.py.
# IK_LLAMA_BENCH=/path/to/llama-bench adds ik_llama.cpp's llama-bench (built outside the repository).
set -euo pipefail
cd "$(dirname "$0")/.."
venv="${EMBER_BENCH_VENV:-$HOME/.cache/ember/venv}"
if ! "$venv/bin/python" -c "import llama_cpp" >/dev/null 2>&1; then
    echo "bench: building llama.cpp through llama-cpp-python into $venv (several minutes)" >&2
    python3 -m venv "$venv"
    CMAKE_ARGS="-DGGML_NATIVE=ON" "$venv/bin/pip" install --progress-bar on llama-cpp-python
fi
if [ -n "${IK_LLAMA_BENCH:-}" ] && [ ! -x "$IK_LLAMA_BENCH" ]; then
    echo "bench: IK_LLAMA_BENCH=$IK_LLAMA_BENCH is not an executable file" >&2
    exit 1
fi
# libember.so and the C client, for the C ABI's decode figure.
make --no-print-directory cabi >/dev/null
cc -O2 -std=c11 -I.build/ember-c/include Tests/CClient/ember_client.c -L.build/ember-c -lember -Wl,-rpath,'$ORIGIN' -lpthread -lm \
    -o .build/ember-c/ember_client.new && mv -f .build/ember-c/ember_client.new .build/ember-c/ember_client
"$venv/bin/python" scripts/bench.py "$venv/bin/python"
