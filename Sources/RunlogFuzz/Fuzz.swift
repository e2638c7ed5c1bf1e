import Foundation
import RunlogFuzzing

// Built by `scripts/fuzz` with `-sanitize=fuzzer -D FUZZING`: the entry point hands over to
// libFuzzer's driver (SwiftPM links an executable's `main` to this module's entry point, so
// libFuzzer's own `main` is not used), which calls `fuzzOneInput` with each input for the
// target named by RUNLOG_FUZZ_TARGET (batch, query, recovery).
#if FUZZING
nonisolated(unsafe) private let target: FuzzTarget = {
    let name = ProcessInfo.processInfo.environment["RUNLOG_FUZZ_TARGET"] ?? ""
    guard let target = FuzzTarget(rawValue: name) else {
        fatalError("set RUNLOG_FUZZ_TARGET to one of \(FuzzTarget.allCases.map(\.rawValue))")
    }
    return target
}()

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzOneInput(_ data: UnsafePointer<UInt8>?, _ size: Int) -> CInt {
    target.run(data.map { Array(UnsafeBufferPointer(start: $0, count: size)) } ?? [])
    return 0
}

@_silgen_name("LLVMFuzzerRunDriver")
private func runDriver(
    _ argc: UnsafeMutablePointer<CInt>,
    _ argv: UnsafeMutablePointer<UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>>,
    _ callback: @convention(c) (UnsafePointer<UInt8>?, Int) -> CInt
) -> CInt

@main
enum Fuzz {
    static func main() {
        var argc = CommandLine.argc
        var argv = CommandLine.unsafeArgv
        exit(runDriver(&argc, &argv, fuzzOneInput))
    }
}
#else
@main
enum FuzzUsage {
    static func main() {
        print("runlog-fuzz runs under libFuzzer: build and run it with scripts/fuzz")
    }
}
#endif
