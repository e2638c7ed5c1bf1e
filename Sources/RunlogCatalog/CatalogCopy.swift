/// What ``RunCatalog/copyRuns(to:pageSize:)`` did.
package struct CatalogCopyReport: Sendable, Equatable {
    /// Rows read from the source.
    package var rowsRead = 0
    /// Rows the destination did not have.
    package var rowsCreated = 0
    /// Rows the destination had in another state, now as in the source.
    package var rowsReplaced = 0
    /// Rows the destination already had exactly.
    package var rowsUnchanged = 0
}

extension RunCatalog {
    /// Copies every row to `destination`, a page at a time in (workspace, id) order: rows it
    /// lacks are created, rows that differ are made as here. Running it again changes nothing
    /// more; rows only the destination has stay.
    package func copyRuns(to destination: any RunCatalog, pageSize: Int = 500) async throws -> CatalogCopyReport {
        var report = CatalogCopyReport()
        var last: (workspace: String, id: String)?
        while true {
            let page = try await allRuns(after: last, size: pageSize)
            guard let end = page.last else { return report }
            for row in page {
                report.rowsRead += 1
                do {
                    try await destination.create(row)
                    report.rowsCreated += 1
                } catch RunCatalogError.runExists {
                    guard try await destination.run(workspace: row.workspaceID, id: row.id) != row else {
                        report.rowsUnchanged += 1
                        continue
                    }
                    try await destination.update(workspace: row.workspaceID, id: row.id) { $0 = row }
                    report.rowsReplaced += 1
                }
            }
            last = (end.workspaceID, end.id)
        }
    }
}
