import GatehouseJournal
import Logging

/// Log lines for what the journal does when the disk fails, and for what recovery found.
enum JournalEventLog {
    static func log(_ event: JournalEvent, to logger: Logger) {
        switch event {
        case .syncFailed(let why, let atRisk):
            var metadata: Logger.Metadata = ["error": "\(why)"]
            if let atRisk { metadata["ids_at_risk"] = "\(atRisk.lowerBound)-\(atRisk.upperBound)" }
            let risk = atRisk == nil ? "" : "; messages acknowledged since the last good flush are at risk"
            logger.error(
                "journal fdatasync failed; its file is no longer trusted and is set aside, the messages of the failed flush are answered ERR UNAVAILABLE\(risk)",
                metadata: metadata
            )
        case .setAside(let segment, let kept, let rewritten):
            var metadata: Logger.Metadata = ["kept_bytes": "\(kept)", "set_aside_as": "\(segment ?? "-")"]
            if let rewritten { metadata["ids_rewritten"] = "\(rewritten.lowerBound)-\(rewritten.upperBound)" }
            let again = rewritten == nil ? "" : "; acknowledged messages at risk were written again and flushed"
            logger.notice(
                "journal continues in a fresh file\(again)",
                metadata: metadata
            )
        case .mayBeLost(let ids, let why):
            logger.critical(
                "journal: acknowledged messages may be lost",
                metadata: ["ids": "\(ids.lowerBound)-\(ids.upperBound)", "error": "\(why)"]
            )
        case .writeFailed(let why):
            logger.error("journal write failed", metadata: ["error": "\(why)"])
        case .rotated, .reopened, .recovered:
            logger.info("journal: \(event)")
        }
    }

    static func logRecovery(_ report: JournalRecoveryReport, path: String, to logger: Logger) {
        if let reason = report.cutReason {
            logger.warning(
                "journal: cut a damaged tail",
                metadata: ["reason": "\(reason)", "bytes": "\(report.truncatedBytes)", "path": "\(path)"]
            )
        }
        if report.continuedFromState {
            logger.notice(
                "journal: the active file is empty and the state file knows later ids (rotated away?); ids continue after the reservation",
                metadata: ["last_id": "\(report.lastID)", "next_id": "\(report.nextID)", "path": "\(path)"]
            )
        }
    }
}
