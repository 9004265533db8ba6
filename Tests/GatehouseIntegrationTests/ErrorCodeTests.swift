import Foundation
import GatehouseClient
import TestSupport
import Testing

/// Every `ERR` code a client can provoke from its input, through the real server.
@Suite("Error replies")
struct ErrorCodeTests {
    /// Sends raw bytes and reads `count` reply lines.
    private func replies(_ conn: GatehouseConnection, _ bytes: [UInt8], count: Int) throws -> [String] {
        try conn.writeRaw(bytes)
        return try (0..<count).map { _ in try conn.readLine() }
    }

    private func code(_ line: String) -> String {
        let parts = line.split(separator: " ")
        return parts.count >= 2 && parts[0] == "ERR" ? String(parts[1]) : line
    }

    @Test func inputErrorsGetTheirCodes() throws {
        let server = try ServerProcess(arguments: ["--max-line", "64", "--error-budget", "100"])
        let conn = try server.client().connect()
        #expect(code(try conn.request("MSG before auth")) == "NOAUTH")
        #expect(code(try conn.request("AUTH alice wrong-token")) == "AUTH_FAILED")
        #expect(code(try conn.request("AUTH nobody \(server.tokens["alice"]!)")) == "AUTH_FAILED")
        #expect(code(try conn.request("AUTH alice")) == "SYNTAX")
        #expect(code(try conn.request("PING now")) == "SYNTAX")
        #expect(code(try conn.request("HELLO")) == "UNKNOWN_COMMAND")
        #expect(code(try conn.request("")) == "UNKNOWN_COMMAND")
        #expect(code(try conn.request("PING\u{7F}")) == "BAD_CHAR")
        #expect(code(try replies(conn, [0x4D, 0x53, 0x47, 0x20, 0xC0, 0x80, 0x0A], count: 1)[0]) == "BAD_UTF8")
        #expect(code(try replies(conn, [0x50, 0x49, 0x4E, 0x47, 0x00, 0x0A], count: 1)[0]) == "BAD_CHAR")
        #expect(code(try conn.request(String(repeating: "x", count: 100))) == "TOO_LONG")
        // The session goes on after TOO_LONG.
        try conn.authenticate(user: "alice", token: server.tokens["alice"]!)
        #expect(code(try conn.request("MSG")) == "EMPTY")
        #expect(code(try conn.request("MSG ")) == "EMPTY")
        #expect(try conn.request("AUTH alice \(server.tokens["alice"]!)") == "ERR SYNTAX already authenticated")
        #expect(try conn.request("MSG ok") == "ACK 1")
        conn.quit()
    }

    @Test func lineExactlyAtTheLimitIsAcceptedAndOneMoreIsNot() throws {
        let server = try ServerProcess(arguments: ["--max-line", "64"])
        let conn = try server.authenticatedConnection()
        // "MSG " + 59 bytes + LF = 64 bytes: at the limit.
        #expect(try conn.request("MSG " + String(repeating: "a", count: 59)) == "ACK 1")
        #expect(code(try conn.request("MSG " + String(repeating: "a", count: 60))) == "TOO_LONG")
        // With CRLF the CR counts: 58 + CR + LF + "MSG " = 64.
        #expect(
            try replies(conn, Array(("MSG " + String(repeating: "b", count: 58) + "\r\n").utf8), count: 1) == ["ACK 2"]
        )
        conn.quit()
        let texts = try server.journalRecords().compactMap { $0["text"] as? String }
        #expect(texts == [String(repeating: "a", count: 59), String(repeating: "b", count: 58)])
    }

    @Test func spendingTheErrorBudgetClosesWithTooManyErrors() throws {
        let server = try ServerProcess(arguments: ["--error-budget", "3"])
        let conn = try server.client().connect()
        let lines = try replies(conn, Array("nope\nnope\nnope\nPING\n".utf8), count: 3)
        #expect(lines.map(code) == ["UNKNOWN_COMMAND", "UNKNOWN_COMMAND", "TOO_MANY_ERRORS"])
        // The PING after it is never answered: the connection is closed.
        #expect(throws: ClientError.self) { try conn.readLine() }
    }

    @Test func connectionPastTheLimitGetsBusy() throws {
        let server = try ServerProcess(arguments: ["--max-connections", "1"])
        let first = try server.authenticatedConnection()
        #expect(throws: ClientError.self) { _ = try server.client().connect() }
        let client = try server.client()
        do {
            _ = try client.connect()
            Issue.record("second connection was accepted")
        } catch {
            #expect(error.kind == .server(.busy))
        }
        // The first client is unaffected.
        #expect(try first.request("MSG still here") == "ACK 1")
        first.quit()
    }

    @Test func idleClientGetsIdleTimeout() throws {
        let server = try ServerProcess(arguments: ["--idle-timeout", "1"])
        let conn = try server.authenticatedConnection()
        let started = Date()
        let line = try conn.readLine()  // blocks until the server speaks
        #expect(code(line) == "IDLE_TIMEOUT")
        #expect(Date().timeIntervalSince(started) < 10)
        #expect(throws: ClientError.self) { try conn.readLine() }
    }

    @Test func shutdownAnswersReadLinesThenSaysShuttingDown() throws {
        let server = try ServerProcess()
        let conn = try server.authenticatedConnection()
        #expect(try conn.request("MSG before shutdown") == "ACK 1")
        kill(server.pid, SIGTERM)
        let line = try conn.readLine()
        #expect(code(line) == "SHUTTING_DOWN")
        #expect(throws: ClientError.self) { try conn.readLine() }
        #expect(server.waitForExit(timeout: 15) == 0)
        #expect(try server.journalRecords().map { $0["text"] as? String } == ["before shutdown"])
    }
}
