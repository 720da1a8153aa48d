// Build script: dotnet fsi build.fsx <target>
// Targets: build | test [expecto options…] | pack [--release] | bench [args…] | ci
open System
open System.Diagnostics
open System.IO
open System.Xml

let root = __SOURCE_DIRECTORY__

/// Runs a command in the repository root and returns its exit code.
let runCode (cmd: string) (args: string list) =
    printfn "> %s %s" cmd (String.Join(" ", args))
    let psi = ProcessStartInfo(cmd, WorkingDirectory = root, UseShellExecute = false)
    for a in args do psi.ArgumentList.Add a
    use p = Process.Start psi
    p.WaitForExit()
    p.ExitCode

let run (cmd: string) (args: string) =
    printfn "> %s %s" cmd args
    let psi = ProcessStartInfo(cmd, args, WorkingDirectory = root, UseShellExecute = false)
    use p = Process.Start psi
    p.WaitForExit()
    if p.ExitCode <> 0 then
        eprintfn "build.fsx: '%s %s' failed with exit code %d" cmd args p.ExitCode
        exit p.ExitCode

let args = fsi.CommandLineArgs |> Array.skip 1
let target = if args.Length = 0 then "build" else args[0]
let rest = if args.Length > 1 then String.Join(" ", args[1..]) else ""

/// (passed, failed) of Expecto's NUnit-style summary: each executed test case succeeded or not (errors are failures).
let expectoCounts (path: string) =
    let doc = XmlDocument()
    doc.Load path
    let cases = doc.SelectNodes "//test-case" |> Seq.cast<XmlElement> |> Seq.toList
    let executed = cases |> List.filter (fun c -> c.GetAttribute "executed" = "True")
    let passed = executed |> List.filter (fun c -> c.GetAttribute "success" = "True") |> List.length
    passed, executed.Length - passed

/// (passed, failed) of a TRX file's counters (error, timeout and aborted count as failed).
let trxCounts (path: string) =
    let doc = XmlDocument()
    doc.Load path
    let c = doc.GetElementsByTagName("Counters")[0] :?> XmlElement
    let n (name: string) = match c.GetAttribute name with "" -> 0 | v -> int v
    n "passed", n "failed" + n "error" + n "timeout" + n "aborted"

/// Builds the solution, runs the F# suite (Expecto, extra arguments passed through) and the C# suite (NUnit), and
/// ends with one line "N passed, N failed"; exits non-zero when anything failed or a suite ran no test.
let test (expectoArgs: string list) =
    let results = Path.Combine(root, "TestResults")
    if Directory.Exists results then Directory.Delete(results, true)
    Directory.CreateDirectory results |> ignore
    if runCode "dotnet" [ "build"; "NeuralTangents.slnx"; "-c"; "Release" ] <> 0 then
        printfn "0 passed, 1 failed"
        exit 1
    let fsSummary = Path.Combine(results, "fsharp-expecto.xml")
    let colours = if Console.IsOutputRedirected then [ "--colours"; "0" ] else []
    let fsCode =
        runCode "dotnet" ([ "run"; "--project"; "tests/NeuralTangents.Tests"; "-c"; "Release"; "--no-build"; "--"
                            "--no-spinner"; "--nunit-summary"; fsSummary ] @ colours @ expectoArgs)
    let csTrx = Path.Combine(results, "csharp.trx")
    let csCode =
        runCode "dotnet" [ "test"; "tests/NeuralTangents.CSharp.Tests"; "-c"; "Release"; "--no-build"
                           "--logger"; "trx;LogFileName=csharp.trx"; "--results-directory"; results ]
    // A suite's counts; a non-zero exit without a recorded failure, a missing result file or no test run is a failure.
    let suite (name: string) (code: int) (file: string) (read: string -> int * int) =
        let passed, failed = if File.Exists file then read file else 0, 0
        let failed = if (code <> 0 && failed = 0) || passed + failed = 0 then failed + 1 else failed
        printfn "build.fsx: %s suite: %d of %d tests passed (exit code %d)" name passed (passed + failed) code
        passed, failed
    let fsPassed, fsFailed = suite "F# (Expecto)" fsCode fsSummary expectoCounts
    let csPassed, csFailed = suite "C# (NUnit)" csCode csTrx trxCounts
    let passed, failed = fsPassed + csPassed, fsFailed + csFailed
    printfn "%d passed, %d failed" passed failed
    exit (if failed = 0 then 0 else 1)

match target with
| "build" -> run "dotnet" "build NeuralTangents.slnx -c Release -warnaserror"
| "test" -> test (List.ofArray args[1..])
| "pack" ->
    // The version is Directory.Build.props' VersionPrefix; a local pack adds a prerelease suffix with the time, so
    // each pack is a new version (NuGet's cache would serve an earlier package of the same version).
    let release = args |> Array.contains "--release"
    let suffix = if release then "" else sprintf " -p:VersionSuffix=dev.%s" (DateTime.UtcNow.ToString "yyyyMMddHHmmss")
    for project in [ "NeuralTangents.Core"; "NeuralTangents.CSharp"; "NeuralTangents.Cli" ] do
        run "dotnet" (sprintf "pack src/%s -c Release -o artifacts%s" project suffix)
| "bench" -> run "dotnet" ("run -c Release --project bench/NeuralTangents.Benchmarks -- " + rest)
| "ci" -> run "bash" ".ci/run"
| other ->
    eprintfn "build.fsx: unknown target '%s' (build | test | pack | bench | ci)" other
    exit 2
