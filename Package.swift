// swift-tools-version:6.0
import PackageDescription

let strict: [SwiftSetting] = [.enableUpcomingFeature("InternalImportsByDefault")]
// The per-message path (framing, validation, journal records, replies) makes about a dozen
// dynamic exclusivity checks per message, a fifth of its instructions (callgrind). The compiler
// still proves exclusivity statically; release builds of these modules skip the runtime check.
let hotPath: [SwiftSetting] =
    strict + [.unsafeFlags(["-enforce-exclusivity=unchecked"], .when(configuration: .release))]

let package = Package(
    name: "gatehouse",
    platforms: [.macOS(.v15)],
    products: [
        .executable(name: "gatehouse-server", targets: ["gatehouse-server"]),
        .executable(name: "gatehouse", targets: ["gatehouse"]),
        .library(name: "GatehouseServer", targets: ["GatehouseServer"]),
        .library(name: "GatehouseClient", targets: ["GatehouseClient"]),
        // For Benchmarks/Micro (ordo-one/benchmark), a package of its own.
        .library(name: "GatehouseAuth", targets: ["GatehouseAuth"]),
        .library(name: "GatehouseProtocol", targets: ["GatehouseProtocol"]),
        .library(name: "GatehouseJournal", targets: ["GatehouseJournal"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.5.0"),
        .package(url: "https://github.com/apple/swift-log", from: "1.6.0"),
        .package(url: "https://github.com/HdrHistogram/hdrhistogram-swift", from: "0.1.0"),
        .package(url: "https://github.com/apple/swift-configuration", from: "1.4.0"),
        .package(url: "https://github.com/apple/swift-system", from: "1.5.0"),
        .package(url: "https://github.com/swift-server/swift-prometheus", from: "2.4.1"),
        .package(url: "https://github.com/apple/swift-atomics", from: "1.2.0"),
        // `Deque`: the one FIFO of the server's reply queue, the clients' in-flight lists and the bench.
        .package(url: "https://github.com/apple/swift-collections", from: "1.1.0"),
    ],
    targets: [
        // The system OpenSSL 3 (Debian: libssl-dev), found through pkg-config.
        .systemLibrary(
            name: "COpenSSL",
            pkgConfig: "openssl",
            providers: [.apt(["libssl-dev"])]
        ),
        // libpq (Debian: libpq-dev), for the PostgreSQL store; only GatehousePostgres imports it.
        .systemLibrary(
            name: "CLibPQ",
            pkgConfig: "libpq",
            providers: [.apt(["libpq-dev"])]
        ),
        // epoll, eventfd, accept4 and friends: the Linux calls Glibc does not export cleanly.
        .target(name: "CGatehouseLinux"),
        // GatehouseSystem for the one monotonic clock (the ticket-key schedule).
        .target(name: "GatehouseTLS", dependencies: ["COpenSSL", "GatehouseSystem"], swiftSettings: strict),
        .target(name: "GatehouseProtocol", swiftSettings: hotPath),
        // JOSE (JWS, JWK, JWT claims) without cryptography or I/O: pure, fuzzed (Fuzz/, JWTFuzzer).
        .target(name: "GatehouseJWT", dependencies: ["GatehouseProtocol"], swiftSettings: strict),
        .target(
            name: "GatehouseAuth",
            dependencies: ["GatehouseTLS", "GatehouseSystem", "GatehouseProtocol", "GatehouseJWT"],
            swiftSettings: strict
        ),
        // OwnedFD, threads and every system call, behind one small wrapper layer.
        .target(
            name: "GatehouseSystem",
            dependencies: ["CGatehouseLinux", .product(name: "Atomics", package: "swift-atomics")],
            swiftSettings: strict
        ),
        // GatehouseTLS for SHA-256 only (the journal's chained digests): one module owns OpenSSL.
        .target(name: "GatehouseJournal", dependencies: ["GatehouseSystem", "GatehouseTLS"], swiftSettings: hotPath),
        // The PostgreSQL store: one thread owning one libpq connection, behind `MessageStore`.
        .target(
            name: "GatehousePostgres",
            dependencies: ["CLibPQ", "GatehouseJournal", "GatehouseSystem"],
            swiftSettings: strict
        ),
        .target(
            name: "GatehouseServer",
            dependencies: [
                "GatehouseSystem", "GatehouseTLS", "GatehouseProtocol", "GatehouseAuth", "GatehouseJWT",
                "GatehouseJournal", "GatehousePostgres", .product(name: "Logging", package: "swift-log"),
                .product(name: "Prometheus", package: "swift-prometheus"),
                .product(name: "DequeModule", package: "swift-collections"),
            ],
            swiftSettings: hotPath
        ),
        .target(
            name: "GatehouseClient",
            dependencies: [
                "GatehouseTLS", "GatehouseSystem", "GatehouseProtocol",
                .product(name: "DequeModule", package: "swift-collections"),
            ],
            swiftSettings: strict
        ),
        .executableTarget(
            name: "gatehouse-server",
            dependencies: [
                "GatehouseServer", "GatehouseAuth", "GatehouseTLS", "GatehouseSystem", "GatehouseJournal",
                "GatehouseJWT", "GatehouseProtocol", "GatehousePostgres",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "Configuration", package: "swift-configuration"),
                .product(name: "SystemPackage", package: "swift-system"),
            ],
            swiftSettings: strict
        ),
        .executableTarget(
            name: "gatehouse",
            dependencies: [
                "GatehouseClient", "GatehouseTLS", "GatehouseSystem", "GatehouseProtocol", "GatehouseJWT",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "Histogram", package: "hdrhistogram-swift"),
                .product(name: "DequeModule", package: "swift-collections"),
            ],
            swiftSettings: strict
        ),
        .target(
            name: "TestSupport",
            dependencies: ["GatehouseClient"],
            path: "Tests/TestSupport",
            swiftSettings: strict
        ),
        .testTarget(name: "GatehouseProtocolTests", dependencies: ["GatehouseProtocol", "TestSupport"]),
        .testTarget(name: "GatehouseTLSTests", dependencies: ["GatehouseTLS", "TestSupport"]),
        .testTarget(
            name: "GatehouseAuthTests",
            dependencies: ["GatehouseAuth", "GatehouseJWT", "GatehouseSystem", "TestSupport"]
        ),
        .testTarget(name: "GatehouseJWTTests", dependencies: ["GatehouseJWT"]),
        .testTarget(name: "GatehouseSystemTests", dependencies: ["GatehouseSystem", "TestSupport"]),
        .testTarget(name: "GatehouseJournalTests", dependencies: ["GatehouseJournal", "TestSupport"]),
        // The connection state machine, driven event by event with a fake clock.
        .testTarget(name: "GatehouseServerTests", dependencies: ["GatehouseServer", "GatehouseProtocol"]),
        .testTarget(
            name: "GatehousePostgresTests",
            dependencies: ["GatehousePostgres", "GatehouseJournal", "TestSupport"]
        ),
        .testTarget(
            name: "GatehouseIntegrationTests",
            dependencies: ["GatehouseClient", "GatehouseSystem", "GatehouseTLS", "TestSupport"]
        ),
        .testTarget(name: "GatehouseCLITests", dependencies: ["GatehouseClient", "TestSupport"]),
    ]
)
