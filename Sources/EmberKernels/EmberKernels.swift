// The EmberKernels module. See docs/ARCHITECTURE.md.
