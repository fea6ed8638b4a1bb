#!/usr/bin/env bash
# Instructions of one decode step, counted by valgrind's callgrind: a stable figure beside the
# noisy times of `make bench` (which runs this and puts the counts in BENCHMARKS.md).
#
# valgrind 3.19 decodes AVX2 but not AVX-512, and crashes on the Swift concurrency runtime, so this
# builds the small synchronous `ember-decode-steps` for Haswell (AVX2 + FMA) into .build-valgrind
# and counts only inside `InferenceSession.evaluate` (--toggle-collect): loading is left out. Two
# runs, 8 and 16 steps after the first token; the count of one step is the difference / 8.
#
# Usage: scripts/instructions.sh MODEL.gguf...   prints one line per model: "<path> <instructions>"
set -euo pipefail
cd "$(dirname "$0")/.."
if ! command -v valgrind >/dev/null 2>&1; then
    echo "instructions: installing valgrind (apt-get)" >&2
    SUDO=(); [ "$(id -u)" -eq 0 ] || SUDO=(sudo)
    DEBIAN_FRONTEND=noninteractive "${SUDO[@]}" apt-get install -y -qq --no-install-recommends valgrind >/dev/null
fi
EMBER_TARGET_CPU=haswell swift build -c release $(EMBER_TARGET_CPU=haswell scripts/swift_flags.sh) --scratch-path .build-valgrind --product ember-decode-steps >&2
binary=.build-valgrind/release/ember-decode-steps
count() {  # model steps → instructions collected inside evaluate
    local out; out=$(mktemp)
    valgrind --tool=callgrind --toggle-collect='*InferenceSessionC8evaluate*' --callgrind-out-file="$out" \
        "$binary" "$1" "$2" >/dev/null 2>"$out.log"
    local collected; collected=$(sed -n 's/.*Collected : \([0-9]*\).*/\1/p' "$out.log")
    rm -f "$out" "$out.log"
    [ -n "$collected" ] || { echo "instructions: callgrind failed on $1" >&2; exit 1; }
    echo "$collected"
}
for model in "$@"; do
    short=$(count "$model" 8)
    long=$(count "$model" 16)
    echo "$model $(( (long - short) / 8 ))"
done
