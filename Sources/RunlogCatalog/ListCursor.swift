import Foundation

/// The cursor of a run listing: the (created_at, id) of the last row of a page, written
/// `<created_at>~<id>`. Clients treat it as opaque; it is plain so that the OpenAPI document can
/// say exactly which cursors are accepted (``pattern``): every text of that shape is a valid
/// position in the keyset order. Every backend issues and reads the same cursors.
package struct ListCursor: Sendable, Equatable {
    package var createdAt: Int64
    package var id: String

    package init(createdAt: Int64, id: String) {
        self.createdAt = createdAt
        self.id = id
    }

    /// What a cursor looks like (ECMA and Swift regex syntax alike).
    package static let pattern = #"^[0-9]{1,18}~[A-Za-z0-9_.-]{1,128}$"#

    /// Reads a cursor; fails with ``RunCatalogError/invalidCursor`` for text of another shape.
    package init(_ text: String) throws(RunCatalogError) {
        if let tilde = text.firstIndex(of: "~") {
            let time = text[..<tilde]
            let id = text[text.index(after: tilde)...]
            guard (1...18).contains(time.utf8.count), time.utf8.allSatisfy({ $0 &- UInt8(ascii: "0") < 10 }), let createdAt = Int64(time),
                (1...128).contains(id.utf8.count), id.utf8.allSatisfy(Self.isIdentifierByte)
            else { throw .invalidCursor }
            self.init(createdAt: createdAt, id: String(id))
            return
        }
        // The URL-safe base64 of `<created_at>:<id>` that servers before 2026-12 issued.
        var base64 = text.replacingOccurrences(of: "-", with: "+").replacingOccurrences(of: "_", with: "/")
        while base64.count % 4 != 0 { base64 += "=" }
        guard let data = Data(base64Encoded: base64), let decoded = String(data: data, encoding: .utf8),
            let colon = decoded.firstIndex(of: ":")
        else { throw .invalidCursor }
        // The same position in today's shape, which checks it as strictly as a new cursor.
        try self.init("\(decoded[..<colon])~\(decoded[decoded.index(after: colon)...])")
    }

    /// The cursor's text.
    package var text: String { "\(createdAt)~\(id)" }

    private static func isIdentifierByte(_ byte: UInt8) -> Bool {
        byte &- UInt8(ascii: "a") < 26 || byte &- UInt8(ascii: "A") < 26 || byte &- UInt8(ascii: "0") < 10
            || byte == UInt8(ascii: "_") || byte == UInt8(ascii: ".") || byte == UInt8(ascii: "-")
    }

    /// The page of `limit` items out of `rows` (fetched `limit + 1` at a time) and the cursor
    /// of the next page, nil when `rows` had no more.
    package static func page(of rows: [RunRecord], limit: Int) -> RunPage {
        let items = Array(rows.prefix(limit))
        let next = rows.count > limit ? items.last.map { ListCursor(createdAt: $0.createdAt, id: $0.id).text } : nil
        return RunPage(items: items, nextCursor: next)
    }
}
