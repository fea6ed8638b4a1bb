// swift-tools-version: 6.1
import PackageDescription
import class Foundation.ProcessInfo

// An app's view of Ember: a versioned dependency, as any package would use it. `make example` makes a
// local git repository of the current tree tagged 0.0.0-ci and points EMBER_PACKAGE_URL at it.
let emberURL = ProcessInfo.processInfo.environment["EMBER_PACKAGE_URL"] ?? "https://github.com/ember-llm/ember.git"

let package = Package(
    name: "ChatExample",
    platforms: [.macOS(.v14), .iOS(.v17)],
    dependencies: [
        .package(url: emberURL, exact: "0.0.0-ci"),
    ],
    targets: [
        .executableTarget(name: "ChatExample", dependencies: [.product(name: "Ember", package: "ember")]),
    ],
    swiftLanguageModes: [.v6]
)
