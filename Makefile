# Ember: `make demo` and `make test` work on a fresh Debian machine (see README.md).
SHELL := /bin/bash

# Swift may live outside PATH on a fresh machine.
ifeq ($(shell command -v swift),)
export PATH := $(PATH):/opt/swift/usr/bin
endif

EMBER = .build/release/ember
PROMPT = Give me three tips for a long battery life on a phone.

.PHONY: bootstrap demo test build bench clean policy-table rouge-table fuzz

bootstrap:
	@scripts/bootstrap.sh

# Builds everything, fetches the models, then simulates two hours of phone use on a flagship
# Android profile with SmolLM2 writing every reply: prints the summary, writes the report.
demo: bootstrap
	$(EMBER) sim --profile flagship-android --scenario day-in-the-life --policy adaptive --real-tokens --report sim-report.html --timeline sim-timeline.csv --overwrite

# Every test, in release, with the real models required (a missing model fails the run).
test: bootstrap
	EMBER_REQUIRE_MODELS=1 swift test -c release

build:
	swift build -c release

# Ember against llama.cpp (llama-cpp-python, built locally once) in one run; writes BENCHMARKS.md.
bench: bootstrap
	scripts/bench.sh

clean:
	rm -rf .build

# Race against adaptive on every reference scenario × profile: the table in docs/SCHEDULER.md.
policy-table: build
	$(EMBER) sim matrix

# Summaries of the notes dataset by both models: ROUGE, latency, energy and battery on a flagship (docs/SUMMARIZATION.md).
rouge-table: build
	for model in smollm2 gemma3; do $(EMBER) eval summarize --model $$model --profile flagship-android; done

# Seeded fuzzing of the CLI, outside CI (the tests run 600 cases): mutated GGUF metadata and bytes,
# containers, profiles, scenarios and command lines. Counts crashes, hangs over 10 s and memory
# peaks over 1 GiB; each finding prints the command that replays it. SEED=… EXECUTIONS=… FIRST=…
fuzz: build
	$(EMBER) fuzz --seed $(or $(SEED),1) --executions $(or $(EXECUTIONS),1000000) --first $(or $(FIRST),0)
