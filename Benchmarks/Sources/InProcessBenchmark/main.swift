import HeraldCore
import Synchronization

#if canImport(Glibc)
    import Glibc
#endif

// In-process fan-out: one publisher, N subscribers, each subscription with a 100-event drop-newest buffer,
// against AsyncStream(bufferingPolicy: .bufferingNewest(100)) doing the same work. The clock starts before
// the first publish and stops when every subscriber has seen the end marker; "delivered" counts events that
// reached a subscriber's loop, drops excluded.

struct Options {
    var events = 5_000_000
    var fanOutEvents = 200_000
    var subscribers = 100
    var payloadSize = 256
    var rounds = 5
    var json = false
    /// For profiling: skip the AsyncStream baseline.
    var heraldOnly = false

    init(arguments: [String]) {
        var iterator = arguments.dropFirst().makeIterator()
        while let argument = iterator.next() {
            switch argument {
            case "--events": events = Int(iterator.next() ?? "") ?? events
            case "--fan-out-events": fanOutEvents = Int(iterator.next() ?? "") ?? fanOutEvents
            case "--subscribers": subscribers = Int(iterator.next() ?? "") ?? subscribers
            case "--payload-size": payloadSize = Int(iterator.next() ?? "") ?? payloadSize
            case "--rounds": rounds = Int(iterator.next() ?? "") ?? rounds
            case "--json": json = true
            case "--herald-only": heraldOnly = true
            default:
                print(
                    "usage: InProcessBenchmark [--events N] [--fan-out-events N] [--subscribers N] [--payload-size B] [--rounds R] [--json] [--herald-only]"
                )
                exit(2)
            }
        }
    }
}

func monotonicSeconds() -> Double {
    var spec = timespec()
    clock_gettime(CLOCK_MONOTONIC, &spec)
    return Double(spec.tv_sec) + Double(spec.tv_nsec) / 1e9
}

/// A ring of distinct envelopes with `payloadSize`-byte payloads, built before timing starts.
func makeEnvelopes(count: Int, payloadSize: Int) -> [EventEnvelope] {
    (0..<count).map { index in
        let filler = String(repeating: "x", count: max(0, payloadSize - 32))
        let payload = try! RawJSON(validating: "{\"n\":\(index),\"data\":\"\(filler)\"}")
        return try! EventEnvelope(eventType: "bench.event", chainID: 138, payload: payload)
    }
}

let endMarker = try! EventEnvelope(eventType: "bench.end", chainID: 138)

struct Result {
    var published: Int
    var delivered: Int
    var seconds: Double
    var eventsPerSecond: Double { Double(delivered) / seconds }
}

/// Herald's EventBus: `subscribers` subscriptions on `bench.#`.
func runHerald(events: Int, subscribers: Int, envelopes: [EventEnvelope]) async -> Result {
    let bus = EventBus()
    let subscriptions = (0..<subscribers).map { index in
        try! bus.subscribe(["bench.#"], subscriber: "s\(index)", buffer: 100, overflow: .dropNewest)
    }
    let start = monotonicSeconds()
    let delivered = await withTaskGroup(of: Int.self) { group in
        for subscription in subscriptions {
            group.addTask {
                var count = 0
                for await envelope in subscription {
                    if envelope.eventType == "bench.end" { break }
                    count += 1
                }
                return count
            }
        }
        group.addTask {
            envelopes.withUnsafeBufferPointer { ring in
                for index in 0..<events { bus.publish(ring[index % ring.count]) }
            }
            // The end marker must not be dropped: retry until every subscription has queued it.
            var pending = subscribers
            while pending > 0 {
                pending -= bus.publish(endMarker).delivered
                if pending > 0 { await Task.yield() }
            }
            return 0
        }
        return await group.reduce(0, +)
    }
    return Result(published: events, delivered: delivered, seconds: monotonicSeconds() - start)
}

/// The baseline: one AsyncStream per subscriber, `.bufferingNewest(100)`, the publisher yielding to each.
func runAsyncStream(events: Int, subscribers: Int, envelopes: [EventEnvelope]) async -> Result {
    let streams = (0..<subscribers).map { _ in
        AsyncStream<EventEnvelope>.makeStream(bufferingPolicy: .bufferingNewest(100))
    }
    let start = monotonicSeconds()
    let delivered = await withTaskGroup(of: Int.self) { group in
        for (stream, _) in streams {
            group.addTask {
                var count = 0
                for await envelope in stream {
                    if envelope.eventType == "bench.end" { break }
                    count += 1
                }
                return count
            }
        }
        group.addTask {
            let ring = envelopes.count
            for index in 0..<events {
                let envelope = envelopes[index % ring]
                for (_, continuation) in streams { continuation.yield(envelope) }
            }
            for (_, continuation) in streams { continuation.yield(endMarker) }
            return 0
        }
        return await group.reduce(0, +)
    }
    for (_, continuation) in streams { continuation.finish() }
    return Result(published: events, delivered: delivered, seconds: monotonicSeconds() - start)
}

func format(_ value: Double) -> String {
    value >= 1e6
        ? String(Int((value / 1e4).rounded())).paddedMillions
        : String(Int(value.rounded()))
}

extension String {
    /// "1234" (hundredths of millions) as "12.34 M".
    var paddedMillions: String {
        let digits = Array(self)
        let whole = digits.count > 2 ? String(digits[..<(digits.count - 2)]) : "0"
        let fraction = String(digits.suffix(2))
        return "\(whole).\(fraction.count == 1 ? "0" + fraction : fraction) M"
    }
}

let options = Options(arguments: CommandLine.arguments)
let envelopes = makeEnvelopes(count: 4096, payloadSize: options.payloadSize)

struct Scenario {
    let name: String
    let events: Int
    let subscribers: Int
}

let scenarios = [
    Scenario(name: "1->1", events: options.events, subscribers: 1),
    Scenario(name: "1->\(options.subscribers)", events: options.fanOutEvents, subscribers: options.subscribers),
]

func median(_ values: [Double]) -> Double {
    let sorted = values.sorted()
    return sorted.count % 2 == 1
        ? sorted[sorted.count / 2] : (sorted[sorted.count / 2 - 1] + sorted[sorted.count / 2]) / 2
}

var lines: [String] = []
for scenario in scenarios {
    var herald: [Result] = []
    var stream: [Result] = []
    // Rounds alternate the two so that machine noise falls on both alike.
    for _ in 0..<options.rounds {
        herald.append(await runHerald(events: scenario.events, subscribers: scenario.subscribers, envelopes: envelopes))
        if !options.heraldOnly {
            stream.append(
                await runAsyncStream(events: scenario.events, subscribers: scenario.subscribers, envelopes: envelopes)
            )
        }
    }
    let heraldRates = herald.map(\.eventsPerSecond)
    let streamRates = stream.isEmpty ? heraldRates : stream.map(\.eventsPerSecond)
    let published = scenario.events * scenario.subscribers
    let heraldDropped = Int(median(herald.map { Double(published - $0.delivered) }))
    let streamDropped = stream.isEmpty ? 0 : Int(median(stream.map { Double(published - $0.delivered) }))
    let ratio = Double(Int(median(heraldRates) / median(streamRates) * 10)) / 10
    if options.json {
        lines.append(
            "{\"scenario\":\"\(scenario.name)\",\"payload_bytes\":\(options.payloadSize),\"published\":\(scenario.events),"
                + "\"rounds\":\(options.rounds),\"herald_median_per_s\":\(Int(median(heraldRates))),"
                + "\"herald_best_per_s\":\(Int(heraldRates.max()!)),\"herald_median_dropped\":\(heraldDropped),"
                + "\"asyncstream_median_per_s\":\(Int(median(streamRates))),"
                + "\"asyncstream_best_per_s\":\(Int(streamRates.max()!)),"
                + "\"asyncstream_median_dropped\":\(streamDropped),\"median_ratio\":\(ratio)}"
        )
    } else {
        lines.append(
            "\(scenario.name): Herald median \(format(median(heraldRates))), best \(format(heraldRates.max()!)) deliveries/s "
                + "(median \(heraldDropped) dropped) | AsyncStream median \(format(median(streamRates))), "
                + "best \(format(streamRates.max()!)) (median \(streamDropped) dropped) | ratio of medians \(ratio)x"
        )
    }
}
if !options.json {
    print(
        "in-process, \(options.payloadSize)-byte payloads, buffer 100 drop-newest, \(options.rounds) rounds "
            + "(\(options.events) events 1->1, \(options.fanOutEvents) events 1->\(options.subscribers))"
    )
}
for line in lines { print(line) }
