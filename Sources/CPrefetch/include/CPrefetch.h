// A software prefetch hint for Swift, which has no prefetch intrinsic of its own.
// `__builtin_prefetch` is `prefetcht0` on x86-64 and `prfm pldl1keep` on ARM64.
#ifndef EMBER_CPREFETCH_H
#define EMBER_CPREFETCH_H

/// Asks the CPU to bring the cache line holding `address` into L1 ahead of a read. A hint: it
/// never faults and changes no result.
static inline __attribute__((always_inline)) void ember_prefetch(const void *address) {
    __builtin_prefetch(address, 0, 3);
}

#endif
