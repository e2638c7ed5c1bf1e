/// The human form of a report: what `runlog retention` prints without `--json`.
extension RetentionReport {
    package var text: String {
        let mode = dryRun ? " (dry run: nothing was changed)" : ""
        var lines = [
            "retention as of \(asOf)\(mode): compress after \(Self.duration(compressAfterSeconds)), "
                + "delete after \(Self.duration(deleteAfterSeconds))\(deleteRows ? " with rows" : "")",
            "",
        ]
        let after = { (totals: Totals) in dryRun ? "-" : Self.bytes(totals.bytesAfter) }
        var rows: [[String]] = [["", "runs", "segments", "before", "after"]]
        rows.append([dryRun ? "would compress" : "compressed", "\(compressed.runs)", "\(compressed.segments)", Self.bytes(compressed.bytesBefore), after(compressed)])
        rows.append([
            dryRun ? "would compress (live runs)" : "compressed (live runs)", "\(compressedClosedSegments.runs)",
            "\(compressedClosedSegments.segments)", Self.bytes(compressedClosedSegments.bytesBefore), after(compressedClosedSegments),
        ])
        rows.append([dryRun ? "would delete logs" : "deleted logs", "\(deletedLogs.runs)", "-", Self.bytes(deletedLogs.bytesBefore), dryRun ? "-" : "0 B"])
        rows.append([dryRun ? "would delete rows" : "deleted rows", "\(deletedRows)", "-", "-", "-"])
        rows.append(["errors", "\(errors.count)", "", "", ""])
        let widths = (0..<5).map { column in rows.map { $0[column].count }.max() ?? 0 }
        for row in rows {
            let cells = row.enumerated().map { column, cell in
                let padding = String(repeating: " ", count: widths[column] - cell.count)
                return column == 0 ? cell + padding : padding + cell
            }
            var line = cells.joined(separator: "  ")
            while line.hasSuffix(" ") { line.removeLast() }
            lines.append(line)
        }
        if trashBytesFreed > 0 { lines.append("finished deleting \(Self.bytes(trashBytesFreed)) an interrupted pass left behind") }
        if interrupted { lines.append("stopped early (shutdown); the next pass carries on") }
        for failure in errors {
            lines.append("error: \(failure.action.rawValue) \(failure.workspaceID)/\(failure.runID): \(failure.message)")
        }
        lines.append("took \(Self.seconds(durationSeconds))")
        return lines.joined(separator: "\n") + "\n"
    }

    /// `1.5 GiB`, `12.0 MiB`, `512 B`.
    static func bytes(_ count: Int64) -> String {
        let units = ["KiB", "MiB", "GiB", "TiB"]
        guard count >= 1024 else { return "\(count) B" }
        var value = Double(count) / 1024
        var unit = 0
        while value >= 1024, unit < units.count - 1 {
            value /= 1024
            unit += 1
        }
        return "\((value * 10).rounded() / 10) \(units[unit])"
    }

    /// `7d`, `12h`, `90m`, `45s`: the largest unit that divides it.
    static func duration(_ seconds: Int64) -> String {
        for (unit, size) in [("d", Int64(86_400)), ("h", 3600), ("m", 60)] where seconds >= size && seconds % size == 0 {
            return "\(seconds / size)\(unit)"
        }
        return "\(seconds)s"
    }

    static func seconds(_ value: Double) -> String {
        "\((value * 1000).rounded() / 1000) s"
    }
}
