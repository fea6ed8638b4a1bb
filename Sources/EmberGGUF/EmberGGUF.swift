// The EmberGGUF module. See docs/ARCHITECTURE.md.
