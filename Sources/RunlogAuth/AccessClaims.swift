import Foundation
import JWTKit

/// The claims of a Runlog token (JWT, HS256): the workspaces it covers, its scopes (space
/// separated, as OAuth writes them), optionally one run, and its expiry.
struct AccessClaims: JWTPayload, Equatable {
    var iss: IssuerClaim
    var sub: SubjectClaim?
    var iat: IssuedAtClaim
    var exp: ExpirationClaim
    /// Workspace ids.
    var ws: [String]
    var scope: String
    /// A run id, for a token good for that one run only.
    var run: String?

    func verify(using algorithm: some JWTAlgorithm) async throws {
        // Expiry is checked by ``TokenAuthority`` against its injected clock.
    }
}
