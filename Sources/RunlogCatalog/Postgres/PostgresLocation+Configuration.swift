import NIOCore
import NIOSSL
import PostgresNIO

/// The location as postgres-nio's two configurations: a single connection (start-up and
/// migrations) and the pool. Each has its own TLS type; ``tls`` decides for both.
extension PostgresLocation {
    /// TLS as `sslmode` asks: nil for none, else whether it is required and how certificates
    /// are checked.
    private var tls: (required: Bool, configuration: TLSConfiguration)? {
        var configuration = TLSConfiguration.makeClientConfiguration()
        switch sslMode {
        case .disable: return nil
        case .prefer, .require: configuration.certificateVerification = .none
        case .verifyCA: configuration.certificateVerification = .noHostnameVerification
        case .verifyFull: configuration.certificateVerification = .fullVerification
        }
        return (sslMode != .prefer, configuration)
    }

    func connectionConfiguration(connectTimeout: Duration) throws -> PostgresConnection.Configuration {
        let mode: PostgresConnection.Configuration.TLS
        switch tls {
        case nil: mode = .disable
        case let (required, configuration)?:
            let context = try NIOSSLContext(configuration: configuration)
            mode = required ? .require(context) : .prefer(context)
        }
        var configuration = PostgresConnection.Configuration(host: host, port: port, username: user, password: password, database: database, tls: mode)
        configuration.options.connectTimeout = TimeAmount(connectTimeout)
        return configuration
    }

    func clientConfiguration(connectTimeout: Duration, maximumConnections: Int) -> PostgresClient.Configuration {
        let mode: PostgresClient.Configuration.TLS
        switch tls {
        case nil: mode = .disable
        case let (required, configuration)?: mode = required ? .require(configuration) : .prefer(configuration)
        }
        var configuration = PostgresClient.Configuration(host: host, port: port, username: user, password: password, database: database, tls: mode)
        configuration.options.connectTimeout = connectTimeout
        configuration.options.maximumConnections = maximumConnections
        return configuration
    }
}
