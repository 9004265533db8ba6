// swift-tools-version:6.0
// The libFuzzer target for GatehouseProtocol, kept out of the main package so that its
// `swift build` never sees it. Sources/GatehouseProtocol is a symlink to the real module, so
// the fuzzer exercises exactly the code the server runs. Build and run with scripts/fuzz.sh.
import PackageDescription

let package = Package(
    name: "GatehouseFuzz",
    targets: [
        .target(name: "GatehouseProtocol", path: "Sources/GatehouseProtocol"),
        // libFuzzer supplies main(): the target is compiled as a library (-parse-as-library)
        // and exports LLVMFuzzerTestOneInput.
        .executableTarget(
            name: "ProtocolFuzzer",
            dependencies: ["GatehouseProtocol"],
            swiftSettings: [.unsafeFlags(["-parse-as-library"])]
        ),
    ]
)
