import GatehouseSystem
import TestSupport
import Testing

#if canImport(Glibc)
import Glibc
#endif

/// The syscall layer's three rules, seen through its public wrappers: EAGAIN is a result, any
/// other failure is a `SystemError` naming the call, and descriptors have one owner. Plus the
/// file and clock helpers that let the modules above it do without Glibc.
@Suite("Syscall layer")
struct SyscallLayerTests {
    /// A peer's address as logs and per-address limits see it: host alone, and host with port
    /// (IPv6 in brackets, an IPv4-mapped IPv6 address as plain IPv4), both ways of building it.
    @Test(arguments: [
        ("127.0.0.1", 9, "127.0.0.1", "127.0.0.1:9"), ("::1", 443, "::1", "[::1]:443"),
        ("::ffff:192.0.2.7", 65535, "192.0.2.7", "192.0.2.7:65535"),
        ("2001:db8::1", 1, "2001:db8::1", "[2001:db8::1]:1"),
    ])
    func addressesFormatAsHostAndAsHostWithPort(
        _ literal: String,
        _ port: Int,
        _ host: String,
        _ text: String
    )
        throws
    {
        let address = try #require(try SocketAddress.resolve(host: literal, port: port).first)
        #expect(address.host == host)
        #expect(address.description == text)
        #expect(SocketAddress.describe(host: address.host, port: address.port) == text)
    }

    @Test func eagainIsAResultNotAnError() throws {
        let wake = try EventFD.create()  // non-blocking, counter 0: a read would block
        var buffer = [UInt8](repeating: 0, count: 8)
        #expect(try FileIO.readAvailable(wake.raw, into: &buffer) == .wouldBlock)
        EventFD.signal(wake.raw)
        #expect(try FileIO.readAvailable(wake.raw, into: &buffer) == .done(8))
        #expect(buffer.first == 1)
    }

    @Test func otherFailuresNameTheCallAndKeepErrno() {
        var buffer = [UInt8](repeating: 0, count: 8)
        let error = #expect(throws: SystemError.self) { try FileIO.readAvailable(-1, into: &buffer) }
        #expect(error?.call == "read")
        #expect(error?.errno == EBADF)
        #expect(error?.reason == "Bad file descriptor")
        #expect(error?.description == "read: Bad file descriptor")
    }

    @Test func openNamesThePathAndStatusComesFromTheDescriptor() throws {
        let dir = try TemporaryDirectory(prefix: "gatehouse-system")
        defer { dir.remove() }
        let missing = dir.file("absent")
        let error = #expect(throws: SystemError.self) { _ = try FileIO.openForReading(missing) }
        #expect(error?.call == "open(\(missing))")
        #expect(error?.errno == ENOENT)
        #expect(FileIO.isMissing(missing))

        let path = dir.file("data")
        do {
            let file = try FileIO.create(path, mode: 0o640)
            try FileIO.writeAll(file.raw, Array("hello".utf8))
        }
        #expect(!FileIO.isMissing(path))
        let (bytes, status) = try FileIO.readFile(path)
        #expect(bytes == Array("hello".utf8))
        #expect(status.isRegularFile)
        #expect(status.size == 5)
        #expect(status.owner == GatehouseSystem.Process.effectiveUserID)
        #expect(status.permissions & 0o700 == 0o600)  // the umask may take group bits, never these
        #expect(throws: SystemError.self) { try FileIO.readFile(path, limit: 4) }
        #expect(Set(FileIO.directoryEntries(dir.path)).isSuperset(of: ["data", ".", ".."]))
    }

    @Test func aDanglingSymlinkIsNotMissing() throws {
        let dir = try TemporaryDirectory(prefix: "gatehouse-system")
        defer { dir.remove() }
        let link = dir.file("link")
        #expect(symlink(dir.file("nowhere"), link) == 0)
        #expect(!FileIO.isMissing(link))
        #expect(!FileIO.exists(link))  // access(2) follows the link
    }

    @Test func makeDirectoryAcceptsAnExistingFolder() throws {
        let dir = try TemporaryDirectory(prefix: "gatehouse-system")
        defer { dir.remove() }
        try FileIO.makeDirectory(dir.file("sub"))
        try FileIO.makeDirectory(dir.file("sub"))
        let error = #expect(throws: SystemError.self) { try FileIO.makeDirectory(dir.file("no/such/parent")) }
        #expect(error?.errno == ENOENT)
    }

    static let calendar: [(Int64, WallClock.UTC)] = [
        (0, WallClock.UTC(year: 1970, month: 1, day: 1, hour: 0, minute: 0, second: 0)),
        (1_795_639_787, WallClock.UTC(year: 2026, month: 11, day: 25, hour: 20, minute: 49, second: 47)),
        (951_782_400, WallClock.UTC(year: 2000, month: 2, day: 29, hour: 0, minute: 0, second: 0)),
    ]

    @Test(arguments: calendar)
    func wallClockCalendarRoundTrips(_ seconds: Int64, _ utc: WallClock.UTC) {
        #expect(WallClock.utc(seconds) == utc)
        #expect(WallClock.seconds(of: utc) == seconds)
    }

    @Test func theMonotonicClockNeverGoesBackAndSleepWaits() {
        let start = GatehouseSystem.Process.monotonicNanoseconds()
        GatehouseSystem.Process.sleep(seconds: 0.02)
        let end = GatehouseSystem.Process.monotonicNanoseconds()
        #expect(end - start >= 20_000_000)
        #expect(GatehouseSystem.Process.monotonicMilliseconds() >= end / 1_000_000)
    }

    @Test func ipAddressesParseAsTheKernelDoes() {
        #expect(IPAddress.v4("192.0.2.7") == [192, 0, 2, 7])
        #expect(IPAddress.v4("192.0.2") == nil)
        #expect(IPAddress.v6("::1") == [UInt8](repeating: 0, count: 15) + [1])
        #expect(IPAddress.v6("::ffff:192.0.2.7")?.suffix(6) == [0xFF, 0xFF, 192, 0, 2, 7])
        #expect(IPAddress.v6("192.0.2.7") == nil)
    }

    @Test func rawModeLeavesANonTerminalAlone() throws {
        let file = try FileIO.openReadOnly("/dev/null")
        #expect(!TerminalMode.isTerminal(file.raw))
        #expect(TerminalMode.enterRaw(file.raw) == nil)  // nothing saved, nothing changed
    }

    @Test func readableAndWritableAndInvalidArgument() throws {
        let folder = try TemporaryDirectory()
        let path = folder.file("f")
        #expect(!FileIO.isReadableAndWritable(path))  // missing
        _ = try FileIO.createNew(path, mode: 0o600)
        #expect(FileIO.isReadableAndWritable(path))
        #expect(SystemError.invalidArgument("resolve(x)") == SystemError("resolve(x)", errno: EINVAL))
    }
}
