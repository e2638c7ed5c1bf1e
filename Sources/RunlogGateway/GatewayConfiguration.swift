import RunlogAuth

/// Settings of the HTTP gateway.
public struct GatewayConfiguration: Sendable {
    public var host = "127.0.0.1"
    public var port = 8080
    /// The largest request body accepted (appends are streamed and cut off past it): 413.
    public var maxBodyBytes = 16 << 20
    /// A comment line on idle event streams at least this often.
    public var heartbeatInterval: Duration = .seconds(15)
    /// The `retry:` hint sent to `EventSource` clients, in milliseconds.
    public var retryMilliseconds = 2000
    /// Events per JSON page when `limit` is not given, and the most one page may hold.
    public var defaultPageSize = 100
    public var maxPageSize = 1000
    /// Verifies tokens on every `/v1` route and `/metrics`; nil leaves the API open.
    public var accessControl: TokenAuthority?
    /// Origins whose pages may call the API (CORS); `*` for any.
    public var corsOrigins: [String] = []

    public init() {}
}
