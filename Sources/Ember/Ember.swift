// The Ember module. See docs/ARCHITECTURE.md.
