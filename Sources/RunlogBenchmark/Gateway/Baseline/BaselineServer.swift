import ArgumentParser
import Hummingbird
import NIOCore

/// `runlog-bench baseline-server`: a server that answers the gateway benchmark's requests and
/// stores nothing, so that the benchmark can say, in the same run, how much of a figure is
/// runlog's own and how much the framework's, the kernel's and the load generator's.
///
/// - `hummingbird`: the append route in Hummingbird with an empty handler (the body read,
///   a small JSON answer): the ceiling for single appends on this stack and these cores.
/// - `nio`: the same appends, and SSE readers that get each appended body as a frame, on
///   bare SwiftNIO: a simpler fan-out than runlog's, without a framework or storage, to tell
///   runlog's share of a fan-out latency from the readers', the kernel's and the cores'.
struct BaselineServer: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "baseline-server",
        abstract: "A server that stores nothing, for the gateway benchmark's baselines.",
        shouldDisplay: false
    )

    enum Kind: String, ExpressibleByArgument, CaseIterable {
        case hummingbird, nio
    }

    @Option(help: "hummingbird or nio.")
    var kind: Kind

    @Option(help: "The loopback port to listen on.")
    var port: Int

    func run() async throws {
        switch kind {
        case .hummingbird: try await Self.runHummingbird(port: port)
        case .nio: try await BareFanOutServer(port: port).run()
        }
    }

    static let appendedAnswer = #"{"appended":1}"#

    static func runHummingbird(port: Int) async throws {
        let router = Router()
        router.post("/v1/workspaces/:ws/runs") { _, _ in
            Response(status: .created, headers: [.contentType: "application/json"], body: .init(byteBuffer: ByteBuffer(string: "{}")))
        }
        router.post("/v1/workspaces/:ws/runs/:run/events") { request, _ in
            _ = try await request.body.collect(upTo: 64 << 20)
            return Response(status: .ok, headers: [.contentType: "application/json"], body: .init(byteBuffer: ByteBuffer(string: appendedAnswer)))
        }
        let application = Application(router: router, configuration: .init(address: .hostname("127.0.0.1", port: port), serverName: "baseline"))
        try await application.runService()
    }
}
