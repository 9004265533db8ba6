import Atomics
import GatehouseProtocol
import GatehouseSystem

/// What one worker counts for `/metrics`, written by that worker's thread only (relaxed atomic
/// adds on its own objects: no lock, no sharing between workers) and summed at scrape.
final class WorkerStats: Sendable {
    enum AuthMethod: Int, CaseIterable {
        case token, jwt, certificate
        var label: String { ["token", "jwt", "certificate"][rawValue] }
    }
    enum AuthResult: Int, CaseIterable {
        case ok, failed, throttled
        var label: String { ["ok", "failed", "throttled"][rawValue] }
    }

    let closed: [ManagedAtomic<Int>] = CloseReason.allCases.map { _ in ManagedAtomic(0) }
    let errors: [ManagedAtomic<Int>] = ErrorCode.allCases.map { _ in ManagedAtomic(0) }
    let auth: [ManagedAtomic<Int>] = (0..<(AuthMethod.allCases.count * AuthResult.allCases.count)).map { _ in
        ManagedAtomic(0)
    }
    let resumed = ManagedAtomic(0)
    let bytesReceived = ManagedAtomic(0)
    let bytesSent = ManagedAtomic(0)
    /// Accept to greeting, seconds.
    let handshakeSeconds = FixedHistogram(bounds: [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1])
    /// A message's batch read to its ACK's journal outcome, seconds.
    let ackLatency = FixedHistogram(
        bounds: [0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1]
    )

    static let closeReasons = CloseReason.allCases
    static let errorCodes = ErrorCode.allCases

    @inline(__always)
    func count(_ counter: ManagedAtomic<Int>, _ n: Int = 1) {
        counter.wrappingIncrement(by: n, ordering: .relaxed)
    }

    func closed(_ reason: CloseReason) {
        count(closed[Self.closeReasons.firstIndex(of: reason)!])
    }

    func error(_ code: ErrorCode, _ n: Int) {
        count(errors[Self.errorCodes.firstIndex(of: code)!], n)
    }

    func auth(_ method: AuthMethod, _ result: AuthResult) {
        count(auth[method.rawValue * AuthResult.allCases.count + result.rawValue])
    }
}
