import Foundation
package import Logging

/// Where the catalog lives, as `--catalog` (or `RUNLOG_CATALOG`) names it: nothing or `sqlite`
/// for the embedded default under the storage root, or a `postgres://` URL for a catalog
/// several nodes share.
package enum CatalogLocation: Sendable, Equatable, CustomStringConvertible {
    /// A SQLite database file.
    case sqlite(path: String)
    /// A PostgreSQL database.
    case postgres(PostgresLocation)

    /// Reads `--catalog`: nil, empty or `sqlite` is `<storageRoot>/catalog.sqlite`; a
    /// `postgres://` or `postgresql://` URL is PostgreSQL. Anything else fails with a one-line reason.
    package init(_ text: String?, storageRoot: String) throws(CatalogLocationError) {
        guard let text, !text.isEmpty, text != "sqlite" else {
            self = .sqlite(path: storageRoot + "/catalog.sqlite")
            return
        }
        self = .postgres(try PostgresLocation(url: text))
    }

    /// What the catalog is, for logs and messages (no password).
    package var description: String {
        switch self {
        case .sqlite(let path): return path
        case .postgres(let location): return location.description
        }
    }
}

/// Why a `--catalog` value was refused.
package struct CatalogLocationError: Error, Equatable, CustomStringConvertible {
    package var description: String
}

/// A PostgreSQL database as a `postgres://user[:password]@host[:port]/db[?sslmode=...]` URL
/// names it (user and password percent-encoded, as in libpq's URIs).
package struct PostgresLocation: Sendable, Equatable, CustomStringConvertible {
    /// libpq's `sslmode` values, as far as they are told apart here.
    package enum SSLMode: String, Sendable, CaseIterable {
        /// Plain TCP.
        case disable
        /// TLS when the server offers it (no certificate check), as libpq's `allow` and `prefer`.
        case prefer
        /// TLS or nothing, without a certificate check.
        case require
        /// TLS with the certificate checked against the system's trust roots, not the host name.
        case verifyCA = "verify-ca"
        /// TLS with the certificate and the host name checked.
        case verifyFull = "verify-full"
    }

    package var host: String
    package var port: Int
    package var user: String
    package var password: String?
    package var database: String
    package var sslMode: SSLMode

    package init(host: String, port: Int = 5432, user: String, password: String? = nil, database: String, sslMode: SSLMode = .prefer) {
        self.host = host
        self.port = port
        self.user = user
        self.password = password
        self.database = database
        self.sslMode = sslMode
    }

    /// Parses a URL; the error says what is wrong with it, without repeating a password.
    package init(url text: String) throws(CatalogLocationError) {
        func refuse(_ reason: String) -> CatalogLocationError {
            CatalogLocationError(description: "--catalog must be sqlite or postgres://user[:password]@host[:port]/database[?sslmode=...]: \(reason)")
        }
        guard let components = URLComponents(string: text) else { throw refuse("it is not a URL") }
        guard let scheme = components.scheme?.lowercased(), scheme == "postgres" || scheme == "postgresql" else {
            throw refuse("the scheme is '\(components.scheme ?? "")'")
        }
        guard let host = components.host, !host.isEmpty else { throw refuse("it names no host") }
        guard let user = components.user?.removingPercentEncoding, !user.isEmpty else { throw refuse("it names no user") }
        let database = String(components.path.drop { $0 == "/" }).removingPercentEncoding ?? ""
        guard !database.isEmpty, !database.contains("/") else { throw refuse("it names no database (the path, as in /runlog)") }
        if let port = components.port, !(1...65535).contains(port) { throw refuse("port \(port) is out of range") }
        var sslMode = SSLMode.prefer
        for item in components.queryItems ?? [] {
            switch item.name {
            case "sslmode":
                switch item.value ?? "" {
                case "allow", "prefer": sslMode = .prefer
                case let value:
                    guard let mode = SSLMode(rawValue: value) else {
                        throw refuse("sslmode '\(value)' is not one of disable, allow, prefer, require, verify-ca, verify-full")
                    }
                    sslMode = mode
                }
            default:
                throw refuse("the parameter '\(item.name)' is not understood (only sslmode is)")
            }
        }
        self.init(
            host: host.hasPrefix("[") && host.hasSuffix("]") ? String(host.dropFirst().dropLast()) : host,
            port: components.port ?? 5432, user: user, password: components.password?.removingPercentEncoding, database: database, sslMode: sslMode
        )
    }

    /// The URL without its password.
    package var description: String {
        let hostPart = host.contains(":") ? "[\(host)]" : host
        return "postgres://\(user)@\(hostPart):\(port)/\(database)?sslmode=\(sslMode.rawValue)"
    }
}

extension CatalogLocation {
    /// Opens the catalog here: SQLite creates and migrates its file; PostgreSQL connects
    /// (failing with the reason when it cannot) and migrates.
    package func open(logger: Logger) async throws -> any RunCatalog {
        switch self {
        case .sqlite(let path): return try SQLiteRunCatalog(path: path)
        case .postgres(let location): return try await PostgresRunCatalog.open(location, logger: logger)
        }
    }
}
