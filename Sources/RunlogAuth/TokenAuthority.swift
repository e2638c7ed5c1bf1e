package import Foundation
import JWTKit

/// Issues and verifies Runlog tokens with the server's key (HS256).
///
/// Verification accepts only HS256 signed with this key, unexpired by the injected clock:
/// `alg: none`, other algorithms, forged signatures and malformed tokens are all refused
/// alike, without saying which check failed beyond what a client can act on.
package struct TokenAuthority: Sendable {
    /// Why a token was refused.
    package enum Failure: Error, Sendable, Equatable, CustomStringConvertible {
        case malformed
        case badSignature
        case expired

        package var description: String {
            switch self {
            case .malformed: return "the token is not a Runlog token"
            case .badSignature: return "the token's signature does not verify"
            case .expired: return "the token has expired"
            }
        }
    }

    /// A key shorter than this is refused: HS256 needs at least 256 bits.
    package static let minimumKeyBytes = 32

    private let keys: JWTKeyCollection
    private let clock: @Sendable () -> Date

    package init(key: [UInt8], clock: @escaping @Sendable () -> Date = { Date() }) async throws(KeyError) {
        guard key.count >= Self.minimumKeyBytes else { throw KeyError(bytes: key.count) }
        keys = JWTKeyCollection()
        await keys.add(hmac: HMACKey(from: key), digestAlgorithm: .sha256)
        self.clock = clock
    }

    package struct KeyError: Error, Sendable, CustomStringConvertible {
        package var bytes: Int
        package var description: String {
            "the auth key is \(bytes) bytes; it needs at least \(TokenAuthority.minimumKeyBytes) (e.g. `head -c 32 /dev/urandom | base64`)"
        }
    }

    /// A token for `workspaces` with `scopes` (and only `run`, when given), valid for `ttl`.
    package func issue(workspaces: [String], scopes: [AccessScope], run: String? = nil, subject: String? = nil, ttl: Duration) async throws -> String {
        let now = clock()
        let seconds = Double(ttl.components.seconds) + Double(ttl.components.attoseconds) / 1e18
        let claims = AccessClaims(
            iss: "runlog", sub: subject.map { SubjectClaim(value: $0) }, iat: IssuedAtClaim(value: now),
            exp: ExpirationClaim(value: now.addingTimeInterval(seconds)), ws: workspaces,
            scope: scopes.map(\.rawValue).joined(separator: " "), run: run
        )
        return try await keys.sign(claims)
    }

    /// The grant of a valid token.
    package func verify(_ token: String) async throws(Failure) -> AccessGrant {
        // Only HS256: never let the token choose its algorithm (`alg: none` included).
        let parts = token.split(separator: ".", omittingEmptySubsequences: false)
        guard parts.count == 3, let header = Self.decodeSegment(parts[0]),
            let object = try? JSONSerialization.jsonObject(with: header) as? [String: Any],
            object["alg"] as? String == "HS256"
        else { throw .malformed }
        let claims: AccessClaims
        do {
            claims = try await keys.verify(token, as: AccessClaims.self)
        } catch let error as JWTError where error.errorType == .signatureVerificationFailed {
            throw .badSignature
        } catch {
            throw .malformed
        }
        guard clock() < claims.exp.value else { throw .expired }
        var scopes = Set<AccessScope>()
        for name in claims.scope.split(separator: " ") {
            // Unknown scopes (a newer issuer) grant nothing here.
            if let scope = AccessScope(rawValue: String(name)) { scopes.insert(scope) }
        }
        return AccessGrant(
            workspaces: Set(claims.ws), scopes: scopes, run: claims.run,
            expiresAt: Int64((claims.exp.value.timeIntervalSince1970 * 1000).rounded(.down)), subject: claims.sub?.value
        )
    }

    static func decodeSegment(_ segment: Substring) -> Data? {
        var base64 = segment.replacingOccurrences(of: "-", with: "+").replacingOccurrences(of: "_", with: "/")
        while base64.count % 4 != 0 { base64 += "=" }
        return Data(base64Encoded: base64)
    }
}
