/// Entry point of the Expecto test suite: `dotnet run --project tests/NeuralTangents.Tests -c Release -- [options]`
/// (or `dotnet fsi build.fsx test [options]`, which runs the C# suite too). Useful options: `--filter-test-case
/// <substring>`, `--list-tests`, `--sequenced`, `--summary`, `--help`.
///
/// Replaying a failed FsCheck property: Expecto prints the failing case with its seed, e.g.
///     Original seed: (9170899275898262194UL, 3370204604390934103UL)
///     Focus on error:
///         etestPropertyWithConfig (17226995082681578089UL, 13681450164827647455UL, Some 56) "name"
/// Either change that property's `testPropertyWithConfig cfg "name"` to the printed
/// `etestPropertyWithConfig (seed, gamma, Some size) cfg "name"` (replays the shrunk case and focuses the run on it),
/// or replay the whole run from the original seed with `{ cfg with replay = Some(seed, gamma, None) }`.
module NeuralTangents.Tests.Program

open Expecto

[<EntryPoint>]
let main argv = Tests.runTestsInAssemblyWithCLIArgs [] argv
