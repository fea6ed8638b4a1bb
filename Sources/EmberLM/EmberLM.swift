// The EmberLM module. See docs/ARCHITECTURE.md.
