// swift-tools-version:6.0
// The libFuzzer targets for GatehouseProtocol and GatehouseJWT, kept out of the main package so
// that its `swift build` never sees them. Sources/GatehouseProtocol and Sources/GatehouseJWT are
// symlinks to the real modules, so the fuzzers exercise exactly the code the server runs. Build
// and run with scripts/fuzz.sh (--jwt for JWTFuzzer).
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
        // The JOSE code behind `AUTH <user> <jwt>` and the JWKS loader (a symlink to the real
        // module too); its signature check is faked, so inputs reach the claim checks.
        .target(name: "GatehouseJWT", dependencies: ["GatehouseProtocol"], path: "Sources/GatehouseJWT"),
        .executableTarget(
            name: "JWTFuzzer",
            dependencies: ["GatehouseJWT", "GatehouseProtocol"],
            swiftSettings: [.unsafeFlags(["-parse-as-library"])]
        ),
    ]
)
