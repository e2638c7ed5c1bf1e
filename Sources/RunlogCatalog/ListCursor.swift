import Foundation

/// The opaque cursor of a run listing: the (created_at, id) of the last row of a page, as
/// URL-safe base64. Every backend issues and reads the same cursors.
package struct ListCursor: Sendable, Equatable {
    package var createdAt: Int64
    package var id: String

    package init(createdAt: Int64, id: String) {
        self.createdAt = createdAt
        self.id = id
    }

    /// Reads a cursor; fails with ``RunCatalogError/invalidCursor`` for text this never wrote.
    package init(_ text: String) throws(RunCatalogError) {
        var base64 = text.replacingOccurrences(of: "-", with: "+").replacingOccurrences(of: "_", with: "/")
        while base64.count % 4 != 0 { base64 += "=" }
        guard let data = Data(base64Encoded: base64), let decoded = String(data: data, encoding: .utf8),
            let colon = decoded.firstIndex(of: ":"), let createdAt = Int64(decoded[..<colon])
        else { throw .invalidCursor }
        self.init(createdAt: createdAt, id: String(decoded[decoded.index(after: colon)...]))
    }

    /// The cursor's text.
    package var text: String {
        Data("\(createdAt):\(id)".utf8).base64EncodedString()
            .replacingOccurrences(of: "+", with: "-").replacingOccurrences(of: "/", with: "_").replacingOccurrences(of: "=", with: "")
    }

    /// The page of `limit` items out of `rows` (fetched `limit + 1` at a time) and the cursor
    /// of the next page, nil when `rows` had no more.
    package static func page(of rows: [RunRecord], limit: Int) -> RunPage {
        let items = Array(rows.prefix(limit))
        let next = rows.count > limit ? items.last.map { ListCursor(createdAt: $0.createdAt, id: $0.id).text } : nil
        return RunPage(items: items, nextCursor: next)
    }
}
