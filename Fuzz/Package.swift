// swift-tools-version: 6.2
import PackageDescription

// Coverage-guided fuzzing of what parses client bytes (libFuzzer with AddressSanitizer), in its own package
// so that the main build never sees these flags. `make fuzz` runs it; see docs/architecture.md.
let package = Package(
    name: "herald-fuzz",
    platforms: [.macOS(.v15)],
    dependencies: [
        .package(name: "herald", path: "..")
    ],
    targets: [
        .executableTarget(
            name: "FuzzEnvelope",
            dependencies: [.product(name: "HeraldCore", package: "herald")],
            swiftSettings: [.unsafeFlags(["-sanitize=fuzzer,address"])],
            // gold fails on the sanitizer runtime's debug information; lld links it.
            linkerSettings: [.unsafeFlags(["-sanitize=fuzzer,address", "-use-ld=lld"])]
        )
    ]
)
