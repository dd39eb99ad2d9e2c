// swift-tools-version: 6.2
import PackageDescription

/// Every Herald target is compiled in Swift 6 mode with warnings treated as errors: a warning is a defect.
let strictSettings: [SwiftSetting] = [
    .swiftLanguageMode(.v6),
    .treatAllWarnings(as: .error),
]

let package = Package(
    name: "herald",
    platforms: [.macOS(.v15)],
    products: [
        .library(name: "HeraldCore", targets: ["HeraldCore"]),
        .library(name: "HeraldClient", targets: ["HeraldClient"]),
        .executable(name: "herald", targets: ["herald"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-collections", from: "1.6.0"),
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.8.2"),
        .package(url: "https://github.com/LebJe/TOMLKit", from: "0.6.0"),
        .package(url: "https://github.com/apple/swift-nio", from: "2.101.3"),
        .package(url: "https://github.com/swift-server/swift-service-lifecycle", from: "2.13.0"),
        .package(url: "https://github.com/apple/swift-log", from: "1.16.2"),
        .package(url: "https://github.com/HdrHistogram/hdrhistogram-swift", from: "0.2.0"),
        // Without its default traits: Herald reads its own configuration, so swift-configuration is not built.
        .package(url: "https://github.com/hummingbird-project/hummingbird", from: "2.28.1", traits: []),
        .package(url: "https://github.com/apple/swift-nio-extras", from: "1.35.2"),
        .package(url: "https://github.com/apple/swift-metrics", from: "2.13.0"),
        // Bootstrapped only by the executable (and the tests); the libraries speak swift-metrics.
        .package(url: "https://github.com/swift-server/swift-prometheus", from: "2.4.1"),
    ],
    targets: [
        .target(
            name: "HeraldCore",
            dependencies: [
                .product(name: "DequeModule", package: "swift-collections")
            ],
            swiftSettings: strictSettings
        ),
        // CRC-32C with the CPU's instruction, chosen at run time (HeraldLog's CRC32C).
        .target(name: "CHeraldCRC32C", cSettings: [.unsafeFlags(["-Wall", "-Werror"])]),
        .target(
            name: "HeraldLog",
            dependencies: [
                "CHeraldCRC32C",
                "HeraldCore",
                .product(name: "DequeModule", package: "swift-collections"),
                .product(name: "Metrics", package: "swift-metrics"),
            ],
            swiftSettings: strictSettings
        ),
        .target(name: "HeraldProtocol", dependencies: ["HeraldCore"], swiftSettings: strictSettings),
        // fork and exec for module processes: the child side must be async-signal-safe C.
        .target(name: "CHeraldSpawn", cSettings: [.unsafeFlags(["-Wall", "-Werror"])]),
        .target(
            name: "HeraldServer",
            dependencies: [
                "CHeraldSpawn",
                "HeraldCore",
                "HeraldLog",
                "HeraldProtocol",
                .product(name: "TOMLKit", package: "TOMLKit"),
                .product(name: "DequeModule", package: "swift-collections"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "HummingbirdCore", package: "hummingbird"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
                .product(name: "NIOWebSocket", package: "swift-nio"),
                .product(name: "NIOHTTPTypes", package: "swift-nio-extras"),
                .product(name: "NIOHTTPTypesHTTP1", package: "swift-nio-extras"),
                .product(name: "Metrics", package: "swift-metrics"),
            ],
            swiftSettings: strictSettings
        ),
        // rabbitmq-c behind a small blocking API, loaded with dlopen when a bridge is configured (docs/scale-out.md).
        .target(name: "CHeraldAMQP", cSettings: [.unsafeFlags(["-Wall", "-Werror"])]),
        .target(
            name: "HeraldRabbitMQ",
            dependencies: [
                "CHeraldAMQP",
                "HeraldCore",
                "HeraldLog",
                "HeraldServer",
                .product(name: "DequeModule", package: "swift-collections"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "Metrics", package: "swift-metrics"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            ],
            swiftSettings: strictSettings
        ),
        .target(
            name: "HeraldClient",
            dependencies: [
                "HeraldCore",
                "HeraldProtocol",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
                .product(name: "NIOWebSocket", package: "swift-nio"),
                .product(name: "Logging", package: "swift-log"),
            ],
            swiftSettings: strictSettings
        ),
        .executableTarget(
            name: "herald",
            dependencies: [
                "HeraldCore",
                "HeraldLog",
                "HeraldProtocol",
                "HeraldServer",
                "HeraldClient",
                "HeraldRabbitMQ",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "Histogram", package: "hdrhistogram-swift"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "UnixSignals", package: "swift-service-lifecycle"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "Metrics", package: "swift-metrics"),
                .product(name: "Prometheus", package: "swift-prometheus"),
            ],
            swiftSettings: strictSettings,
            // jemalloc in place of glibc's malloc: about a fifth less CPU per event, since the event loops
            // free what other threads allocated (docs/benchmarks.md, "Allocator"). Debian's libjemalloc-dev.
            linkerSettings: [.linkedLibrary("jemalloc", .when(platforms: [.linux]))]
        ),
        .executableTarget(
            name: "example-swift-module",
            dependencies: ["HeraldClient", "HeraldCore"],
            path: "Examples/swift-module",
            swiftSettings: strictSettings
        ),
        .testTarget(name: "HeraldCoreTests", dependencies: ["HeraldCore"], swiftSettings: strictSettings),
        .testTarget(name: "HeraldLogTests", dependencies: ["HeraldLog"], swiftSettings: strictSettings),
        .testTarget(
            name: "HeraldServerTests",
            dependencies: [
                "HeraldServer",
                "HeraldRabbitMQ",
                "HeraldClient",
                "HeraldCore",
                "HeraldLog",
                "HeraldProtocol",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOEmbedded", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
                .product(name: "NIOWebSocket", package: "swift-nio"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "Metrics", package: "swift-metrics"),
                .product(name: "Prometheus", package: "swift-prometheus"),
            ],
            swiftSettings: strictSettings
        ),
        .testTarget(
            name: "HeraldProtocolTests",
            dependencies: ["HeraldProtocol", "HeraldCore"],
            swiftSettings: strictSettings
        ),
    ]
)
