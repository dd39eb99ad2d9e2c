// libFuzzer target: arbitrary bytes into the envelope parser, the payload validator and the pattern parser.
// Parsing must fail cleanly or give an envelope whose own JSON parses back to an equal envelope.
import HeraldCore

#if canImport(Glibc)
    import Glibc
#endif

// SwiftPM renames an executable's `main`, so libFuzzer's own `main` cannot be used; its driver can.
@_silgen_name("LLVMFuzzerRunDriver")
func runDriver(
    _ argc: UnsafeMutablePointer<CInt>,
    _ argv: UnsafeMutablePointer<UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>>,
    _ callback: @convention(c) (UnsafePointer<UInt8>?, Int) -> CInt
) -> CInt

func fuzz(_ data: UnsafePointer<UInt8>?, _ size: Int) -> CInt {
    let bytes = data.map { Array(UnsafeBufferPointer(start: $0, count: size)) } ?? []
    if let envelope = try? EventEnvelope(json: bytes) {
        let again = try! EventEnvelope(json: envelope.json, form: .delivered)
        precondition(again == envelope)
        for eventType in ["block.new", "notification", "node.startup_completed", "chain.data"] {
            _ = try? EventCatalog.validatePayload(envelope.payload, eventType: eventType)
        }
    }
    if let payload = try? RawJSON(validating: bytes) {
        _ = try? EventCatalog.validatePayload(payload, eventType: "maintenance.completed")
    }
    _ = try? TopicPattern(String(decoding: bytes, as: UTF8.self))
    return 0
}

@main
struct FuzzEnvelope {
    static func main() {
        var argc = CommandLine.argc
        var argv = CommandLine.unsafeArgv
        exit(runDriver(&argc, &argv, { fuzz($0, $1) }))
    }
}
