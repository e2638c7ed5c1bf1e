import RunlogCatalog
package import RunlogStorage

/// Why a run operation was refused, in terms the gateway maps to HTTP statuses.
package enum RunError: Error, Sendable, Equatable, CustomStringConvertible {
    case notFound(RunKey)
    case exists(RunKey)
    /// The run is terminal; nothing more may be appended.
    case closed(RunKey, lastSequence: Int64)
    /// A lifecycle event's payload is unacceptable (its 1-based line, the reason).
    case invalidEvent(EventRejection)
    /// A list cursor this service did not issue.
    case invalidCursor
    case storage(StorageError)
    case catalog(String)
    /// The catalog, or the health probe, could not write for want of space (the reason, for
    /// the server's log). The store's own writes say ``StorageError/outOfSpace(_:)``.
    case outOfSpace(String)
    /// The catalog's database cannot be reached or did not answer in time (the reason, for the
    /// server's log); the same request can work later.
    case catalogUnavailable(String)

    package var description: String {
        switch self {
        case .notFound(let key): return "run \(key) does not exist"
        case .exists(let key): return "run \(key) already exists"
        case .closed(let key, let last): return "run \(key) is completed (last sequence \(last)); no more events may be appended"
        case .invalidEvent(let rejection): return rejection.description
        case .invalidCursor: return RunCatalogError.invalidCursor.description
        case .storage(let error): return error.description
        case .catalog(let reason): return "catalog: \(reason)"
        case .outOfSpace(let reason): return "no space left: \(reason)"
        case .catalogUnavailable(let reason): return "the catalog is unavailable: \(reason)"
        }
    }

    init(_ error: any Error) {
        switch error {
        case let error as RunError: self = error
        case let error as StorageError: self = .storage(error)
        case RunCatalogError.outOfSpace(let reason): self = .outOfSpace(reason)
        case RunCatalogError.unavailable(let reason): self = .catalogUnavailable(reason)
        default: self = .catalog("\(error)")
        }
    }
}
