import GatehouseAuth
import GatehouseJournal
import GatehouseSystem
import GatehouseTLS

extension Server {
    /// Everything that would keep `config` from serving, one line per problem, without starting:
    /// the certificate chain and key (loaded as the server loads them: the key private, matching
    /// the certificate), certificates expired or not yet in their client CA bundle, the CRL, the
    /// tokens file and client map (private, well-formed), the journal's folder (writable), and
    /// the address (free to bind). Empty when all is well.
    ///
    /// > Warning: blocking file I/O and a bind; for `gatehouse-server check-config`.
    public static func check(_ config: ServerConfiguration, now: Int? = nil) -> [String] {
        let now = now ?? Int(WallClock.seconds())
        var problems: [String] = []
        do {
            let tls = try makeTLSContext(config)
            if let notAfter = tls.certificateNotAfter, notAfter <= now {
                problems.append("certificate \(config.tls.certificateChainFile) expired \(days(now - notAfter)) ago")
            }
        } catch {
            problems.append(error.message)
        }
        if let ca = config.tls.clientCAFile {
            let expired = TLSContext.certificatesNotAfter(inPEMFile: ca).filter { $0 <= now }
            if !expired.isEmpty {
                problems.append("client CA bundle \(ca) holds \(expired.count) expired certificate(s)")
            }
        }
        do { _ = try TokenFile.load(config.tokensFile, allowGroupRead: config.allowGroupReadableSecrets) } catch {
            problems.append(error.message)
        }
        if let map = config.clientMapFile {
            do { _ = try ClientIdentityMap.load(map, allowGroupRead: config.allowGroupReadableSecrets) } catch {
                problems.append(error.message)
            }
        }
        if let problem = journalProblem(config.journalFile) { problems.append(problem) }
        if config.port != 0 {
            do {
                for address in try SocketAddress.resolve(host: config.host, port: config.port).prefix(1) {
                    let fd = try Socket.listen(on: address, reusePort: false)
                    fd.close()
                }
            } catch {
                problems.append("cannot listen on \(config.host) port \(config.port): \(error)")
            }
        }
        return problems
    }

    /// Why the journal at `path` could not be written, or nil: an existing file must be
    /// readable and writable, else the nearest existing folder above it must be writable.
    static func journalProblem(_ path: String) -> String? {
        if let file = FileIO.status(ofPath: path) {
            guard file.isRegularFile else { return "journal \(path) is not a regular file" }
            return FileIO.isReadableAndWritable(path) ? nil : "journal \(path) is not readable and writable"
        }
        // The nearest existing folder above; "/x" has "/" above it ("" would name no folder).
        func parent(_ p: String) -> String {
            guard let slash = p.lastIndex(of: "/") else { return "." }
            return slash == p.startIndex ? "/" : String(p[..<slash])
        }
        var folder = parent(path)
        var status = FileIO.status(ofPath: folder)
        while status == nil && folder != "/" && folder != "." {
            folder = parent(folder)
            status = FileIO.status(ofPath: folder)
        }
        guard status?.isDirectory == true else { return "journal folder \(folder) is not a folder" }
        // Try it for real: access(2) says yes to root everywhere, even where nothing can be made.
        let probe = (folder == "/" ? "" : folder) + "/.gatehouse-check-\(Process.id)"
        do { _ = try FileIO.createNew(probe, mode: 0o600) } catch {
            return "journal folder \(folder) is not writable: \(error.reason)"
        }
        FileIO.remove(probe)
        return nil
    }

    private static func days(_ seconds: Int) -> String {
        seconds < 86_400 ? "less than a day" : "\(seconds / 86_400) days"
    }
}
