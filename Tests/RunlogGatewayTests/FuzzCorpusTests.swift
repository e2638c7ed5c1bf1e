import Foundation
import RunlogFuzzing
import Testing

/// Every input in `Fuzz/corpus` (the fuzzers' seeds) and `Fuzz/regressions` (what fuzzing once
/// found) goes through its fuzz target on every test run: a target traps when a property fails.
@Suite struct FuzzCorpusTests {
    static let fuzzDirectory = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
        .appendingPathComponent("Fuzz").path

    @Test(arguments: FuzzTarget.allCases)
    func everyCorpusAndRegressionInputPassesItsTarget(target: FuzzTarget) throws {
        var inputs = 0
        for kind in ["corpus", "regressions"] {
            let directory = Self.fuzzDirectory + "/\(kind)/\(target.rawValue)"
            for name in (try? FileManager.default.contentsOfDirectory(atPath: directory)) ?? [] {
                let bytes = try #require(FileManager.default.contents(atPath: directory + "/" + name), "\(name)")
                target.run(Array(bytes))
                inputs += 1
            }
        }
        #expect(inputs >= 4, "the \(target.rawValue) seed corpus is missing")
    }
}
