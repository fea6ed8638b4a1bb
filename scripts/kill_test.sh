#!/usr/bin/env bash
# The notes kill test at full strength: `ember notes stress-writer` is killed with SIGKILL at 1,000
# random moments (CI runs 100 of them as part of `swift test`). After every kill the database must
# pass PRAGMA integrity_check and the FTS5 index check, and hold every acknowledged write exactly.
#
# Usage: scripts/kill_test.sh [RUNS] [SEED]     (defaults: 1000, 20250314)
#        CONFIGURATION=release scripts/kill_test.sh   (default: debug, the quicker build)
set -euo pipefail

cd "$(dirname "$0")/.."
if ! command -v swift >/dev/null 2>&1; then
    export PATH="$PATH:/opt/swift/usr/bin"
fi

runs="${1:-1000}"
seed="${2:-20250314}"
report="$(mktemp)"
trap 'rm -f "$report"' EXIT

EMBER_KILL_TEST_RUNS="$runs" EMBER_KILL_TEST_SEED="$seed" EMBER_KILL_TEST_REPORT="$report" \
    swift test -c "${CONFIGURATION:-debug}" --filter NotesKillTests
cat "$report"
