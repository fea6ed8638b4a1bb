// The EmberTokenizers module. See docs/ARCHITECTURE.md.
