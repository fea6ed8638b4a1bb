#!/usr/bin/env bash
# Prepares a fresh Debian machine for Ember: system libraries, the Swift toolchain on PATH,
# a release build of `ember`, and the two catalog models. Safe to run again: it prints
# nothing but the build's own summary when everything is already in place.
set -euo pipefail

cd "$(dirname "$0")/.."

say() { printf 'bootstrap: %s\n' "$*" >&2; }
fail() { printf 'bootstrap: error: %s\n' "$*" >&2; exit 1; }

if [ "$(id -u)" -eq 0 ]; then
    SUDO=()
elif command -v sudo >/dev/null 2>&1; then
    SUDO=(sudo)
else
    fail "not running as root and sudo is not installed; install the packages by hand or run as root"
fi

# 1. Debian packages: install only what dpkg says is missing; update the lists only then.
packages=(libsqlite3-dev libopenblas-dev libzstd-dev pkg-config)
if ! command -v python3 >/dev/null 2>&1; then
    packages+=(python3 python3-pip)
elif ! python3 -m pip --version >/dev/null 2>&1; then
    packages+=(python3-pip)
fi
if ! python3 -m venv --help >/dev/null 2>&1 || ! python3 -c "import ensurepip" >/dev/null 2>&1; then
    packages+=(python3-venv)
fi
missing=()
for package in "${packages[@]}"; do
    if ! dpkg-query -W -f='${Status}' "$package" 2>/dev/null | grep -q "install ok installed"; then
        missing+=("$package")
    fi
done
if [ "${#missing[@]}" -gt 0 ]; then
    say "installing ${missing[*]}"
    "${SUDO[@]}" apt-get update -qq
    DEBIAN_FRONTEND=noninteractive "${SUDO[@]}" apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

# 2. Swift on PATH.
if ! command -v swift >/dev/null 2>&1; then
    for candidate in /opt/swift/usr/bin /usr/share/swift/usr/bin; do
        if [ -x "$candidate/swift" ]; then
            export PATH="$PATH:$candidate"
            break
        fi
    done
fi
command -v swift >/dev/null 2>&1 || fail "swift is not on PATH and not in /opt/swift/usr/bin; install Swift 6 from swift.org"

# 3. A release build of `ember` (scripts/swift_flags.sh: -target-cpu native unless EMBER_PORTABLE=1).
swift build -c release $(scripts/swift_flags.sh) --product ember -q

# 4. The catalog models, fetched and verified (instant when already cached).
"$(swift build -c release $(scripts/swift_flags.sh) --show-bin-path)/ember" models fetch all --quiet

# 5. The tiny random-weight test models (Tests/Fixtures/tiny-models), written by the seeded
#    generator with pinned packages and checked against the committed SHA-256 sums; llama.cpp's
#    reference logits for them are committed, the weights are not.
scripts/tiny_models/write_fixtures.sh
