// The pool's own errors (a tripped circuit breaker) are not mapped to PSQLError by postgres-nio.
import _ConnectionPoolModule
import PostgresNIO

/// How a PostgreSQL failure is told to the catalog's callers.
///
/// What matters to them is whether trying again later can work: a server that is down,
/// restarting, refusing connections or not answering in time is ``RunCatalogError/unavailable(_:)``
/// (the gateway answers 503 with `Retry-After`); a full disk is
/// ``RunCatalogError/outOfSpace(_:)`` (507); anything else is a fault, passed on as it came.
enum PostgresFailure {
    /// SQLSTATE classes and codes that mean "not now": connection exceptions (08), operator
    /// intervention such as a shutdown or a server still starting (57P01–57P03), and
    /// insufficient resources other than disk (53000, 53200, 53300: too many connections).
    static func isTransient(sqlState: String) -> Bool {
        sqlState.hasPrefix("08") || ["57P01", "57P02", "57P03", "53000", "53200", "53300", "40001", "40P01"].contains(sqlState)
    }

    /// The catalog's error for `error`, or `error` itself.
    static func map(_ error: any Error) -> any Error {
        switch error {
        case let error as RunCatalogError:
            return error
        case let error as PostgresTransactionError:
            // What went wrong first decides; a failed rollback after it only ends the connection.
            guard let cause = error.beginError ?? error.closureError ?? error.commitError ?? error.rollbackError else { return error }
            return map(cause)
        case let error as PSQLError:
            if let state = error.serverInfo?[.sqlState] {
                let message = error.serverInfo?[.message] ?? ""
                if state == "53100" { return RunCatalogError.outOfSpace("PostgreSQL: \(message) (SQLSTATE \(state))") }
                if isTransient(sqlState: state) { return RunCatalogError.unavailable("PostgreSQL: \(message) (SQLSTATE \(state))") }
                return PostgresServerError(sqlState: state, message: message)
            }
            switch error.code {
            case .connectionError, .serverClosedConnection, .clientClosedConnection, .uncleanShutdown, .poolClosed, .queryCancelled,
                .failedToAddSSLHandler, .sslUnsupported:
                return RunCatalogError.unavailable("PostgreSQL: \(reason(error))")
            default:
                return PostgresServerError(sqlState: nil, message: reason(error))
            }
        case let error as ConnectionPoolError:
            return RunCatalogError.unavailable("PostgreSQL: no connection (\(error))")
        default:
            return error
        }
    }

    /// What went wrong, without the query's parameters (PSQLError's own description hides everything).
    static func reason(_ error: PSQLError) -> String {
        var text = "\(error.code)"
        if let message = error.serverInfo?[.message] { text += ": \(message)" }
        if let underlying = error.underlying { text += " (\(underlying))" }
        return text
    }
}

/// An error PostgreSQL reported that is neither transient nor a full disk: a bug or a broken
/// schema, for the server's log.
package struct PostgresServerError: Error, Equatable, CustomStringConvertible {
    package var sqlState: String?
    package var message: String

    package var description: String {
        "PostgreSQL: \(message)" + (sqlState.map { " (SQLSTATE \($0))" } ?? "")
    }
}
