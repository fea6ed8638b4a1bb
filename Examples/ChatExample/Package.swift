// swift-tools-version: 6.1
import PackageDescription
import class Foundation.ProcessInfo

// An app's view of Ember: a versioned dependency, as any package would use it. `make example` makes a
// local git repository of the current tree, tags it 0.0.0-ci.<commit> and points these at it.
let environment = ProcessInfo.processInfo.environment
let emberURL = environment["EMBER_PACKAGE_URL"] ?? "https://github.com/ember-llm/ember.git"
let emberVersion = Version(environment["EMBER_PACKAGE_VERSION"] ?? "0.0.0-ci") ?? "0.0.0-ci"

let package = Package(
    name: "ChatExample",
    platforms: [.macOS(.v14), .iOS(.v17)],
    dependencies: [
        .package(url: emberURL, exact: emberVersion),
    ],
    targets: [
        .executableTarget(name: "ChatExample", dependencies: [.product(name: "Ember", package: "ember")]),
    ],
    swiftLanguageModes: [.v6]
)
