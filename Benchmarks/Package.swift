// swift-tools-version: 6.2
import PackageDescription

// Benchmarks live in their own package, as swift-nio's do, so that the main package's `swift build` and
// `swift test` never compile them and they are always built in release mode (`make bench`).
let package = Package(
    name: "herald-benchmarks",
    platforms: [.macOS(.v15)],
    dependencies: [
        .package(name: "herald", path: "..")
    ],
    targets: [
        .executableTarget(
            name: "InProcessBenchmark",
            dependencies: [.product(name: "HeraldCore", package: "herald")],
            swiftSettings: [.swiftLanguageMode(.v6), .treatAllWarnings(as: .error)]
        )
    ]
)
