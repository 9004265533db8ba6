// swift-tools-version:6.0
// The NIO baseline for scripts/bench-messages.sh: the same job as gatehouse-server (TLS 1.3, line
// framing, AUTH against the same tokens file, MSG journalled before ACK), written the idiomatic
// swift-nio way. A separate package: the main `swift build` never builds it.
import PackageDescription

let package = Package(
    name: "NIOBaseline",
    dependencies: [
        .package(url: "https://github.com/apple/swift-nio", from: "2.80.0"),
        .package(url: "https://github.com/apple/swift-nio-ssl", from: "2.30.0"),
        .package(url: "https://github.com/apple/swift-crypto", "3.0.0"..<"5.0.0"),
    ],
    targets: [
        .executableTarget(
            name: "nio-baseline",
            dependencies: [
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOSSL", package: "swift-nio-ssl"),
                .product(name: "Crypto", package: "swift-crypto"),
            ],
            swiftSettings: [.swiftLanguageMode(.v5)]
        ),
    ]
)
