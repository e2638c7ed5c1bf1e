package import RunlogAuth

/// Settings of the HTTP gateway.
package struct GatewayConfiguration: Sendable {
    package var host = "127.0.0.1"
    package var port = 8080
    /// The largest request body accepted (appends are streamed and cut off past it): 413.
    package var maxBodyBytes = 16 << 20
    /// The largest request head (its header fields) accepted: 431.
    package var maxHeaderBytes = 16 << 10
    /// How long a connection may wait for the next part of a request before it is closed: a
    /// whole request head (however slowly its bytes trickle in), the next piece of a body, or
    /// the next request on an idle keep-alive connection.
    package var requestTimeout: Duration = .seconds(30)
    /// A comment line on idle event streams at least this often.
    package var heartbeatInterval: Duration = .seconds(15)
    /// The `retry:` hint sent to `EventSource` clients, in milliseconds.
    package var retryMilliseconds = 2000
    /// Events per JSON page when `limit` is not given, and the most one page may hold.
    package var defaultPageSize = 100
    package var maxPageSize = 1000
    /// Verifies tokens on every `/v1` route and `/metrics`; nil leaves the API open.
    package var accessControl: TokenAuthority?
    /// Origins whose pages may call the API (CORS); `*` for any.
    package var corsOrigins: [String] = []

    package init() {}
}
