// swift-tools-version:6.2
// AeroDB: a correctness-first primary–replica replicated key-value database.
// Module layering (no cycles) is drawn in docs/architecture.md; keep both in step.
import PackageDescription

/// Settings shared by every Swift target of the project: Swift 6 language mode,
/// strict concurrency, and no unchecked optimisation anywhere.
let strictSettings: [SwiftSetting] = [
    .swiftLanguageMode(.v6),
    .enableUpcomingFeature("ExistentialAny"),
]

let package = Package(
    name: "aerodb",
    platforms: [.macOS(.v14)],
    products: [
        .executable(name: "aerodb", targets: ["aerodb"]),
        .executable(name: "aerodb-policy", targets: ["aerodb-policy"]),
        .executable(name: "aerodb-bench", targets: ["aerodb-bench"]),
        .executable(name: "aerodb-policy-worker", targets: ["aerodb-policy-worker"]),
        .library(name: "AeroCore", targets: ["AeroCore"]),
        .library(name: "AeroPolicy", targets: ["AeroPolicy"]),
        .library(name: "AeroPromotion", targets: ["AeroPromotion"]),
        .library(name: "AeroStorage", targets: ["AeroStorage"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.8.2"),
        .package(url: "https://github.com/apple/swift-crypto", "3.12.3"..<"5.0.0"),
        .package(url: "https://github.com/apple/swift-log", from: "1.16.2"),
        .package(url: "https://github.com/apple/swift-nio", from: "2.101.2"),
        .package(url: "https://github.com/hummingbird-project/hummingbird", from: "2.28.1"),
        .package(url: "https://github.com/apple/swift-metrics", from: "2.13.0"),
        .package(url: "https://github.com/swift-server/swift-prometheus", from: "2.4.1"),
        .package(url: "https://github.com/apple/swift-nio-ssl", from: "2.37.6"),
        .package(url: "https://github.com/apple/swift-certificates", from: "1.21.1"),
        .package(url: "https://github.com/apple/swift-asn1", from: "1.7.4"),
    ],
    targets: [
        // Lua 5.4 from Debian's liblua5.4-dev.
        .systemLibrary(
            name: "CLua",
            pkgConfig: "lua5.4",
            providers: [.apt(["liblua5.4-dev"])]
        ),
        // Static inline wrappers for the Lua API's macros, the capped allocator and the
        // budget hook. Everything that may raise a Lua error lives on the C side.
        .target(name: "CLuaShim", dependencies: ["CLua"]),
        // SQLite from Debian's libsqlite3-dev: the named peer in the storage benchmark only.
        .systemLibrary(name: "CSQLite", pkgConfig: "sqlite3", providers: [.apt(["libsqlite3-dev"])]),

        // Layer 0: shared value types (LSN, Epoch, NodeID, JSON, facts, epoch history, CRC32C, rule ids).
        .target(
            name: "AeroCore",
            dependencies: [.product(name: "Crypto", package: "swift-crypto")],
            swiftSettings: strictSettings
        ),
        // Layer 1: the sandboxed Lua policy host.
        .target(name: "AeroPolicy", dependencies: ["AeroCore", "CLuaShim"], swiftSettings: strictSettings),
        // Layer 1: credentials: roles, tokens, the cluster CA and member certificates, TLS contexts.
        .target(
            name: "AeroSecurity",
            dependencies: [
                "AeroCore",
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "NIOSSL", package: "swift-nio-ssl"),
                .product(name: "X509", package: "swift-certificates"),
                .product(name: "SwiftASN1", package: "swift-asn1"),
            ],
            swiftSettings: strictSettings
        ),
        // Layer 1: the storage engine (WAL, MVCC, recovery, checkpoints, authority file).
        .target(name: "AeroStorage", dependencies: ["AeroCore"], swiftSettings: strictSettings),
        // Layer 2: promotion decisions (native rules + policies) and the failover state machine.
        .target(name: "AeroPromotion", dependencies: ["AeroCore", "AeroPolicy"], swiftSettings: strictSettings),
        // Layer 2: the peer wire protocol and the replication session state machines.
        .target(
            name: "AeroReplication",
            dependencies: [
                "AeroCore", "AeroStorage",  // the drivers ship and append the WAL; the session machines import no storage
                "AeroSecurity",  // mutual TLS between members
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOSSL", package: "swift-nio-ssl"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOConcurrencyHelpers", package: "swift-nio"),
            ],
            swiftSettings: strictSettings
        ),
        // Layer 3: the node: configuration, HTTP API, event journal, metrics.
        .target(
            name: "AeroServer",
            dependencies: [
                "AeroCore", "AeroReplication", "AeroStorage", "AeroPromotion", "AeroPolicy", "AeroSecurity",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOSSL", package: "swift-nio-ssl"),
                .product(name: "HummingbirdTLS", package: "hummingbird"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOConcurrencyHelpers", package: "swift-nio"),
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "Metrics", package: "swift-metrics"),
                .product(name: "Prometheus", package: "swift-prometheus"),
            ],
            swiftSettings: strictSettings
        ),

        .executableTarget(
            name: "aerodb",
            dependencies: [
                "AeroCore", "AeroStorage", "AeroServer", "AeroSecurity",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "Logging", package: "swift-log"),
            ],
            swiftSettings: strictSettings
        ),
        .executableTarget(
            name: "aerodb-policy",
            dependencies: [
                "AeroCore", "AeroPolicy", "AeroPromotion",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
            ],
            swiftSettings: strictSettings
        ),
        // The supervised process that evaluates policies for the node and aerodb-policy, killed
        // at a policy's deadline (docs/sandbox.md, "Process isolation"). Installed beside them
        // (found in the running executable's directory); `swift build` builds every product.
        .executableTarget(name: "aerodb-policy-worker", dependencies: ["AeroPolicy"], swiftSettings: strictSettings),
        .executableTarget(
            name: "aerodb-bench",
            dependencies: [
                "AeroCore", "AeroStorage", "AeroPolicy", "AeroPromotion", "CSQLite",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
            ],
            swiftSettings: strictSettings
        ),

        // Shared by the test targets: bounded waits that reap child processes, seeded randomness,
        // the simulated file system behind AeroStorage's StorageIO seam.
        .target(name: "AeroTestSupport", dependencies: ["AeroCore", "AeroStorage"], path: "Tests/AeroTestSupport", swiftSettings: strictSettings),
        .testTarget(name: "AeroCoreTests", dependencies: ["AeroCore", "AeroTestSupport"], swiftSettings: strictSettings),
        .testTarget(name: "AeroPolicyTests", dependencies: ["AeroPolicy", "AeroCore", "CLuaShim", "AeroTestSupport", "aerodb-policy-worker"], swiftSettings: strictSettings),
        .testTarget(name: "AeroPromotionTests", dependencies: ["AeroPromotion", "AeroPolicy", "AeroCore", "AeroTestSupport", "aerodb-policy-worker"], swiftSettings: strictSettings),
        .testTarget(name: "AeroSecurityTests", dependencies: ["AeroSecurity", "AeroCore", "AeroTestSupport", .product(name: "NIOSSL", package: "swift-nio-ssl")], swiftSettings: strictSettings),
        .testTarget(name: "AeroStorageTests", dependencies: ["AeroStorage", "AeroCore", "aerodb", "AeroTestSupport"], swiftSettings: strictSettings),
        .testTarget(
            name: "AeroReplicationTests",
            dependencies: [
                "AeroReplication", "AeroCore", "AeroStorage", "AeroTestSupport",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOEmbedded", package: "swift-nio"),
                .product(name: "NIOConcurrencyHelpers", package: "swift-nio"),
            ],
            swiftSettings: strictSettings
        ),
        .testTarget(
            name: "AeroServerTests",
            dependencies: [
                "AeroServer", "AeroReplication", "AeroStorage", "AeroPromotion", "AeroCore", "aerodb", "AeroTestSupport", "aerodb-policy-worker",
                .product(name: "Logging", package: "swift-log"),
            ],
            swiftSettings: strictSettings
        ),
        // Runs the built executables as real processes.
        .testTarget(name: "CLITests", dependencies: ["aerodb", "aerodb-policy", "aerodb-policy-worker", "AeroCore", "AeroTestSupport"], swiftSettings: strictSettings),
        // Tidy checks over the repository's own text (docs against code, file sizes, imports
        // against the drawn layering, the registry of rule ids): they read files, run nothing.
        .testTarget(name: "TidyTests", dependencies: ["AeroCore", "AeroTestSupport"], swiftSettings: strictSettings),
    ]
)
