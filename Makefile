# Ember: `make demo` and `make test` work on a fresh Debian machine (see README.md).
SHELL := /bin/bash

# Swift may live outside PATH on a fresh machine.
ifeq ($(shell command -v swift),)
export PATH := $(PATH):/opt/swift/usr/bin
endif

EMBER = .build/release/ember
# Compiler flags of every build and test run (-target-cpu native unless EMBER_PORTABLE=1): one list,
# so `make test` tests the code `ember` runs and nothing rebuilds between them.
SWIFT_FLAGS := $(shell scripts/swift_flags.sh)
PROMPT = Give me three tips for a long battery life on a phone.

.PHONY: bootstrap demo test build bench clean policy-table rouge-table lint example fuzz cabi cabi-test test-portable

bootstrap:
	@scripts/bootstrap.sh

# Builds everything, fetches the models, then simulates two hours of phone use on a flagship
# Android profile with SmolLM2 writing every reply: prints the summary, writes the report.
demo: bootstrap
	$(EMBER) sim --profile flagship-android --scenario day-in-the-life --policy adaptive --real-tokens --report sim-report.html --timeline sim-timeline.csv --overwrite

# Every test, in release, with the real models required (a missing model fails the run), and the
# C ABI's two foreign clients.
test: bootstrap lint cabi-test
	EMBER_REQUIRE_MODELS=1 swift test -c release $(SWIFT_FLAGS)

# The same tests on the baseline build (EMBER_PORTABLE=1: no -target-cpu native, no run-time AVX-512
# C kernels), in its own build folder: the portable Swift kernels give the same results.
test-portable: bootstrap
	EMBER_PORTABLE=1 EMBER_REQUIRE_MODELS=1 swift test -c release --scratch-path .build-portable $$(EMBER_PORTABLE=1 scripts/swift_flags.sh)

# Library targets (Sources/) use only what iOS and Android offer (scripts/lint_platform.sh).
lint:
	@scripts/lint_platform.sh

build:
	swift build -c release $(SWIFT_FLAGS)

# The C ABI for device ports: libember.so exporting only the ember_ functions (a linker version
# script; the manifest takes no unsafeFlags), installed with include/ember.h in $(CABI_DIR).
CABI_DIR = .build/ember-c
cabi:
	swift build -c release $(SWIFT_FLAGS) --product EmberC -Xlinker --version-script=$(CURDIR)/scripts/ember_exports.map -Xlinker -soname=libember.so
	mkdir -p $(CABI_DIR)/include
	cp .build/release/libEmberC.so $(CABI_DIR)/libember.so.new && mv -f $(CABI_DIR)/libember.so.new $(CABI_DIR)/libember.so
	cp include/ember.h $(CABI_DIR)/include/ember.h
	scripts/check_exports.sh $(CABI_DIR)/libember.so

# The C client (plain, then under ASan/LSan/UBSan) and the Python ctypes client against libember.so.
cabi-test: bootstrap cabi
	scripts/cabi_test.sh

# Ember against llama.cpp (llama-cpp-python, built locally once) in one run, with each decode figure
# against the measured read-bandwidth roofline; IK_LLAMA_BENCH=/path/llama-bench adds ik_llama.cpp.
# Writes BENCHMARKS.md.
bench: bootstrap
	scripts/bench.sh

clean:
	rm -rf .build

# Race against adaptive on every reference scenario × profile: the table in docs/SCHEDULER.md.
policy-table: build
	$(EMBER) sim matrix

# Summaries of the notes dataset by both models and every method (abstractive, extractive, lead-40), on the
# held-out and the tuning part: ROUGE, faithfulness, loops, echo, latency, energy and battery on a flagship
# (docs/SUMMARIZATION.md).
rouge-table: build
	for split in heldout tune; do for model in smollm2 gemma3; do \
		$(EMBER) eval summarize --model $$model --split $$split --profile flagship-android || exit 1; done; done

# Examples/ChatExample, an app that depends on Ember by version: the current tree (uncommitted
# tracked changes included) becomes tag 0.0.0-ci.<commit> of a local git repository, which the
# example resolves through a file:// URL (a new tag per tree, so SwiftPM's cache never serves an
# old one), then builds and runs against SmolLM2.
EXAMPLE_REPO = $(CURDIR)/.build-example/ember.git
example:
	rm -rf $(EXAMPLE_REPO) && mkdir -p $(dir $(EXAMPLE_REPO)) && git init -q --bare $(EXAMPLE_REPO)
	commit=$$(git stash create); commit=$${commit:-$$(git rev-parse HEAD)}; version=0.0.0-ci.$${commit:0:12}; \
	git push -q $(EXAMPLE_REPO) "$$commit:refs/tags/$$version" && \
	cd Examples/ChatExample && rm -f Package.resolved && \
	export EMBER_PACKAGE_URL=file://$(EXAMPLE_REPO) EMBER_PACKAGE_VERSION=$$version && \
	swift build -c release $(SWIFT_FLAGS) && swift run -c release $(SWIFT_FLAGS) --skip-build ChatExample

# Seeded fuzzing of the CLI, outside CI (the tests run 600 cases): mutated GGUF metadata and bytes,
# containers, profiles, scenarios and command lines. Counts crashes, hangs over 10 s and memory
# peaks over 1 GiB; each finding prints the command that replays it. SEED=… EXECUTIONS=… FIRST=…
fuzz: build
	$(EMBER) fuzz --seed $(or $(SEED),1) --executions $(or $(EXECUTIONS),1000000) --first $(or $(FIRST),0)
