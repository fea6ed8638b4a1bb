#!/usr/bin/env bash
# The compiler flags of every Ember build and test run, printed as `swift build` arguments.
#
# Release builds target the CPU they are built on (AVX-512 or AVX2 FMA on x86-64, NEON/dot-product
# on ARM) unless EMBER_PORTABLE=1 asks for the baseline ISA (and no run-time AVX-512 C kernels); EMBER_TARGET_CPU names another CPU
# (scripts/instructions.sh builds for haswell). Exclusivity checks are off in the hot loops' modules
# as they always were. The flags live here, not in Package.swift: a package with `unsafeFlags`
# cannot be used as a versioned dependency (Examples/ChatExample depends on Ember that way).
#
# Every `swift build` / `swift test` of the Makefile and scripts/ passes "$(scripts/swift_flags.sh)":
# SwiftPM rebuilds everything when the flags change, and `make test` must test the code `ember` runs.
set -euo pipefail
flags=(-Xswiftc -enforce-exclusivity=unchecked)
if [ "${EMBER_PORTABLE:-0}" != "1" ]; then
    flags+=(-Xswiftc -target-cpu -Xswiftc "${EMBER_TARGET_CPU:-native}")
else
    # The baseline build also leaves out the C kernels chosen at run time by CPU feature (AVX-512
    # VNNI), so that it runs and tests the portable Swift kernels on any CPU.
    flags+=(-Xcc -DEMBER_BASELINE_CPU -Xswiftc -DEMBER_BASELINE_CPU)
fi
echo "${flags[*]}"
