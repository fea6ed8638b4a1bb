#!/usr/bin/env bash
# The C ABI's two foreign clients against libember.so (built by `make cabi`) with SmolLM2:
#  1. Tests/CClient/ember_client.c, compiled with the system C compiler against include/ember.h,
#     run once plain and once under AddressSanitizer (with LeakSanitizer) and UBSan (any report
#     fails the run);
#  2. Tests/PythonClient/ember_client.py (ctypes, the path a JNI shim takes), whose greedy tokens
#     must equal `ember generate --chat --temperature 0` for three prompts — as must the C client's.
set -euo pipefail
cd "$(dirname "$0")/.."

dir=.build/ember-c
cc=${CC:-cc}
model=$(.build/release/ember models path smollm2)
flags=(-std=c11 -Wall -Wextra -Werror -g -I"$dir/include" Tests/CClient/ember_client.c -L"$dir" -lember -Wl,-rpath,'$ORIGIN' -lpthread -lm)

# Written beside and renamed, so a client still running keeps its file.
"$cc" -O2 "${flags[@]}" -o "$dir/ember_client.new" && mv -f "$dir/ember_client.new" "$dir/ember_client"
"$cc" -O1 -fsanitize=address,undefined -fno-sanitize-recover=all -fno-omit-frame-pointer "${flags[@]}" -o "$dir/ember_client_sanitized.new"
mv -f "$dir/ember_client_sanitized.new" "$dir/ember_client_sanitized"

echo "== C client"
"$dir/ember_client" test "$model"

echo "== C client under AddressSanitizer, LeakSanitizer and UBSan"
log=$dir/sanitized.log
ASAN_OPTIONS=detect_leaks=1:abort_on_error=0:halt_on_error=1 LSAN_OPTIONS=suppressions=Tests/CClient/lsan.supp UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
    "$dir/ember_client_sanitized" test "$model" > "$log" 2>&1 || { cat "$log"; echo "cabi-test: the sanitized C client failed" >&2; exit 1; }
tail -n 1 "$log"
if grep -E "Sanitizer|runtime error" "$log"; then
    echo "cabi-test: the sanitizers reported the lines above" >&2
    exit 1
fi
echo "sanitizers: no errors, no leaks reported"

echo "== greedy tokens: ember generate, the C client, the Python client"
prompts=("What is the capital of France?" "Give me three tips for a long battery life on a phone." "Write a haiku about the sea.")
for prompt in "${prompts[@]}"; do
    expected=$(.build/release/ember generate --model smollm2 --chat --prompt "$prompt" --temperature 0 --max-tokens 32 --json \
        | python3 -c 'import json, sys; print(",".join(map(str, json.load(sys.stdin)["ids"])))')
    from_c=$("$dir/ember_client" greedy "$model" 32 "$prompt")
    from_python=$(python3 Tests/PythonClient/ember_client.py --library "$dir/libember.so" --model "$model" --max-tokens 32 "$prompt")
    if [ "$expected" != "$from_c" ] || [ "$expected" != "$from_python" ]; then
        printf 'cabi-test: greedy tokens differ for "%s"\n  ember generate: %s\n  C client:       %s\n  Python client:  %s\n' \
            "$prompt" "$expected" "$from_c" "$from_python" >&2
        exit 1
    fi
    printf '  equal (%s tokens): %s\n' "$(tr ',' '\n' <<< "$expected" | wc -l)" "$prompt"
done

echo "== RSS over engine open/close cycles and chat requests created and released (flat within 2 MiB)"
"$dir/ember_client" cycles "$model" 100 600
