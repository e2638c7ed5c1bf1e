import Hummingbird
import NIOCore
import RunlogStorage

/// The connection a response goes out on, as the streaming code sees it. Code outside this
/// folder reaches a connection only through this type and ``LiveConnection``: what lies below
/// (NIO's channel, its pipeline, the handlers in it, the copy of Hummingbird's request loop)
/// stays here. See README.md beside this file.
struct ResponseConnection: Sendable {
    private let channel: any Channel

    init(channel: any Channel) {
        self.channel = channel
    }

    /// Watches `signal` for the stream on this connection: it is stopped when the client goes
    /// (at once, if it has gone already) or the server is shutting down. The returned
    /// connection parks the stream when it has caught up.
    func attach(watching signal: StreamSignal) async throws -> LiveConnection {
        let channel = self.channel
        return try await channel.eventLoop.submit {
            let sender = try channel.pipeline.syncOperations.handler(type: LiveSender.self)
            sender.watch(signal)
            return LiveConnection(sender: NIOLoopBound(sender, eventLoop: channel.eventLoop))
        }.get()
    }

    /// Takes the connection over from the task serving it, so that the response outlives that
    /// task (the task ends; the caller ends the response and closes the connection, with the
    /// handover). Nil when it cannot: already taken, or served without handovers.
    func takeOver() -> ConnectionHandover? {
        guard let handover = ConnectionHandover.current, handover.take() else { return nil }
        return handover
    }

    /// Sends `files` whole through `writer` with `sendfile`, in order, as the response's next
    /// body parts (see ``FileRegionSender``); they are closed once sent.
    func sendFiles(_ files: [PlainLogFile], through writer: inout any ResponseBodyWriter) async throws {
        let channel = self.channel
        let offers = files.filter { $0.length > 0 }.map { (FileRegionSender.nextID(), $0) }
        // Offered before their tickets are written: both reach the event loop in this order.
        try await channel.eventLoop.submit {
            let sender = try channel.pipeline.syncOperations.handler(type: FileRegionSender.self)
            for (id, file) in offers { sender.offer(file, id: id) }
        }.get()
        for (id, _) in offers { try await writer.write(FileRegionSender.ticket(id)) }
    }
}

/// A live stream's connection once attached: where the stream parks when caught up, and from
/// where it is handed back.
struct LiveConnection: Sendable {
    fileprivate let sender: NIOLoopBound<LiveSender>

    /// Parks the stream at `subscription`'s position on its run's feed, which then writes new
    /// events from the event loop until `signal` rings; false if the feed has passed that
    /// position or the client has gone.
    func park(
        _ subscription: LiveSubscription, in feeds: LiveFeeds, key: LiveFeed.Key, signal: StreamSignal, heartbeat: Int64, endsAt: Int64
    ) async throws -> Bool {
        let sender = self.sender
        return try await sender.eventLoop.submit {
            sender.value.park(subscription, in: feeds, key: key, signal: signal, heartbeat: heartbeat, endsAt: endsAt)
        }.get()
    }

    /// Takes the stream off its feed, saying where the feed left it; nil if it was not parked.
    func unpark() async throws -> LiveSender.Handoff? {
        let sender = self.sender
        return try await sender.eventLoop.submit { sender.value.unpark() }.get()
    }
}
