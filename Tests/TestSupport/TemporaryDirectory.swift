public import Foundation

/// A fresh folder under the system's temporary directory, removed by `remove()`.
public final class TemporaryDirectory: @unchecked Sendable {
    public let path: String

    public init(prefix: String = "gatehouse-test") throws {
        var template = Array((NSTemporaryDirectory() + "/\(prefix).XXXXXX").utf8CString)
        guard let made = template.withUnsafeMutableBufferPointer({ mkdtemp($0.baseAddress!) }) else {
            throw TestSupportError("mkdtemp failed")
        }
        path = String(cString: made)
    }

    public func file(_ name: String) -> String { path + "/" + name }

    public func remove() {
        try? FileManager.default.removeItem(atPath: path)
    }

    deinit { remove() }
}

public struct TestSupportError: Error, CustomStringConvertible {
    public var description: String
    public init(_ description: String) { self.description = description }
}

/// Paths inside the repository, found from this file's location.
public enum Repository {
    public static let root: String = {
        var url = URL(fileURLWithPath: #filePath)
        for _ in 0..<3 { url.deleteLastPathComponent() }  // Tests/TestSupport/File.swift -> root
        return url.path
    }()

    public static var genCerts: String { root + "/scripts/gen-certs.sh" }

    /// The folder holding the built products (`gatehouse-server`, `gatehouse`), next to the test bundle.
    public static let productsDirectory: String = {
        let candidates = [
            URL(fileURLWithPath: CommandLine.arguments[0]).deletingLastPathComponent(),
            Bundle.main.bundleURL.deletingLastPathComponent(),
            Bundle.main.bundleURL,
        ]
        for url in candidates
        where FileManager.default.isExecutableFile(atPath: url.appendingPathComponent("gatehouse-server").path) {
            return url.path
        }
        return root + "/.build/debug"
    }()

    public static var serverBinary: String { productsDirectory + "/gatehouse-server" }
    public static var clientBinary: String { productsDirectory + "/gatehouse" }
}
