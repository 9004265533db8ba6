#if canImport(Glibc)
import Glibc
#endif

/// The terminal settings of a descriptor (termios), for the shell's line editor: raw mode in,
/// the saved settings back out.
public enum TerminalMode {
    /// Settings saved by `enterRaw`, to hand back to `restore`.
    public struct Saved: Sendable {
        fileprivate let settings: termios
    }

    /// Whether `fd` is a terminal (`isatty`).
    public static func isTerminal(_ fd: Int32) -> Bool { isatty(fd) == 1 }

    /// Raw mode: no echo, no line buffering, no signals from keys (Ctrl-C is the caller's),
    /// output processing kept so that "\n" still moves to the next line's start. Returns the
    /// settings to restore, or nil when `fd` is not a terminal (nothing was changed).
    public static func enterRaw(_ fd: Int32) -> Saved? {
        var t = termios()
        guard tcgetattr(fd, &t) == 0 else { return nil }
        let saved = Saved(settings: t)
        t.c_lflag &= ~tcflag_t(ECHO | ICANON | ISIG | IEXTEN)
        t.c_iflag &= ~tcflag_t(IXON | ICRNL | BRKINT | INPCK | ISTRIP)
        withUnsafeMutableBytes(of: &t.c_cc) { cc in
            cc[Int(VMIN)] = 1
            cc[Int(VTIME)] = 0
        }
        tcsetattr(fd, TCSAFLUSH, &t)
        return saved
    }

    /// Puts back what `enterRaw` saved.
    public static func restore(_ fd: Int32, _ saved: Saved) {
        var original = saved.settings
        tcsetattr(fd, TCSAFLUSH, &original)
    }
}
