// swift-tools-version: 6.1
import PackageDescription
import class Foundation.ProcessInfo

// Release builds target the CPU they are built on (AVX-512 or AVX2 FMA on x86-64,
// NEON/dot-product on ARM) unless EMBER_PORTABLE=1 asks for the baseline ISA.
// See docs/ARCHITECTURE.md, "Build flags".
let environment = ProcessInfo.processInfo.environment
let portable = environment["EMBER_PORTABLE"] == "1"
let targetCPU = environment["EMBER_TARGET_CPU"] ?? "native"
let computeFlags: [SwiftSetting] = portable
    ? [.unsafeFlags(["-enforce-exclusivity=unchecked"])]
    : [.unsafeFlags(["-target-cpu", targetCPU, "-enforce-exclusivity=unchecked"])]

let package = Package(
    name: "Ember",
    platforms: [.macOS(.v14), .iOS(.v17)],
    products: [
        .library(name: "Ember", targets: ["Ember"]),
        .library(name: "EmberLM", targets: ["EmberLM"]),
        .library(name: "EmberGGUF", targets: ["EmberGGUF"]),
        .executable(name: "ember", targets: ["EmberCommand"]),
        .executable(name: "ember-decode-steps", targets: ["EmberDecodeSteps"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.6.0"),
    ],
    targets: [
        // Vocabulary shared by every module: tensor element types, byte counts.
        .target(name: "EmberCore"),
        // GGUF reader (memory-mapped, validated) and writer.
        .target(name: "EmberGGUF", dependencies: ["EmberCore"]),
        // Quantized block formats, SIMD kernels beside scalar references, the thread pool.
        // A software prefetch hint (C, since Swift has no prefetch intrinsic).
        .target(name: "CPrefetch"),
        .target(name: "EmberKernels", dependencies: ["EmberCore", "CPrefetch"], swiftSettings: computeFlags),
        // Tokenizers: byte-level BPE and SentencePiece-style, streaming detokenizer.
        .target(name: "EmberTokenizers", dependencies: ["EmberCore", "EmberGGUF"]),
        // Chat templates, architectures, KV cache, sampler, generator.
        .target(name: "EmberLM", dependencies: ["EmberCore", "EmberGGUF", "EmberKernels", "EmberTokenizers"], swiftSettings: computeFlags),
        // The phone: profiles, thermal RC network, battery, governor, CPU roofline.
        .target(name: "EmberDevice", dependencies: ["EmberCore"]),
        // Requests, priorities, deadlines and the policies that pace them (race, adaptive).
        .target(name: "EmberScheduler", dependencies: ["EmberCore", "EmberLM"]),
        // Scenarios on a virtual clock: requests, policies, timeline, summary, report.
        .target(name: "EmberSimulation", dependencies: ["EmberCore", "EmberDevice", "EmberScheduler", "EmberGGUF", "EmberLM", "EmberTokenizers"]),
        // The facade an app embeds: model catalog, generation wired to budgets.
        .target(name: "Ember", dependencies: ["EmberCore", "EmberGGUF", "EmberLM", "EmberScheduler"]),
        // libzstd, the system library (apt libzstd-dev).
        .systemLibrary(name: "CZstd", path: "Sources/CZstd", pkgConfig: "libzstd", providers: [.apt(["libzstd-dev"])]),
        // The compressed, seekable, checksummed model container (docs/FORMAT.md).
        .target(name: "EmberStorage", dependencies: ["EmberCore", "EmberGGUF", "EmberKernels", "CZstd"], swiftSettings: computeFlags),
        // SQLite from the system (Debian: libsqlite3-dev), a leaf C target.
        .systemLibrary(name: "CSQLite", path: "Sources/CSQLite", pkgConfig: "sqlite3", providers: [.apt(["libsqlite3-dev"])]),
        // The offline notes store: SQLite, FTS5 search, summaries, versions, Markdown export.
        .target(name: "EmberNotes", dependencies: ["CSQLite", "EmberCore"]),
        // Summary evaluation: ROUGE scores and the notes dataset reader.
        .target(name: "EmberEvaluation", dependencies: ["EmberNotes"]),
        // The `ember` command-line program.
        .executableTarget(
            name: "EmberCommand",
            dependencies: ["Ember", "EmberLM", "EmberGGUF", "EmberKernels", "EmberTokenizers", "EmberDevice", "EmberScheduler", "EmberSimulation", "EmberStorage", "EmberNotes", "EmberEvaluation", .product(name: "ArgumentParser", package: "swift-argument-parser")],
            path: "Simulator/Command"),

        // Decode steps for instruction counts under valgrind (scripts/instructions.sh).
        .executableTarget(name: "EmberDecodeSteps", dependencies: ["EmberLM"], path: "Simulator/DecodeSteps"),

        .testTarget(name: "EmberGGUFTests", dependencies: ["EmberGGUF", "EmberCore"]),
        .testTarget(name: "EmberTokenizersTests", dependencies: ["EmberTokenizers", "EmberGGUF"]),
        .testTarget(name: "EmberKernelsTests", dependencies: ["EmberKernels", "EmberCore"], swiftSettings: computeFlags),
        .testTarget(name: "EmberCommandTests", dependencies: ["EmberCommand", "EmberNotes"]),
        .testTarget(name: "EmberLMTests", dependencies: ["EmberLM", "EmberGGUF", "EmberKernels", "Ember"]),
        .testTarget(name: "EmberTests", dependencies: ["Ember"]),
        .testTarget(name: "EmberDeviceTests", dependencies: ["EmberDevice"]),
        .testTarget(name: "EmberSimulationTests", dependencies: ["EmberSimulation", "EmberDevice", "EmberScheduler", "EmberCore", "EmberLM"]),
        .testTarget(name: "EmberSchedulerTests", dependencies: ["EmberScheduler", "EmberCore", "EmberLM"]),
        .testTarget(name: "EmberStorageTests", dependencies: ["EmberStorage", "EmberGGUF", "EmberCore", "EmberLM"], swiftSettings: computeFlags),
        .testTarget(name: "EmberNotesTests", dependencies: ["EmberNotes"]),
        .testTarget(name: "EmberEvaluationTests", dependencies: ["EmberEvaluation", "EmberNotes"]),
    ],
    swiftLanguageModes: [.v6]
)
