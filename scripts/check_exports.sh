#!/usr/bin/env bash
# Fails unless the shared library $1 exports exactly the functions include/ember.h declares.
set -euo pipefail
cd "$(dirname "$0")/.."
library=$1
exported=$(readelf --dyn-syms -W "$library" | awk '$5 == "GLOBAL" && $7 != "UND" { sub(/@.*/, "", $8); print $8 }' | sort)
declared=$(grep -oE '\bember_[a-z_]+\(' include/ember.h | tr -d '(' | sort -u)
if [ "$exported" != "$declared" ]; then
    echo "check_exports: $library exports other symbols than include/ember.h declares:" >&2
    diff <(echo "$declared") <(echo "$exported") >&2 || true
    exit 1
fi
echo "check_exports: $library exports the $(wc -l <<< "$exported") functions of include/ember.h and nothing else"
