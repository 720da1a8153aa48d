// Build script: dotnet fsi build.fsx <target>
// Targets: build | test [expecto options…] | notebooks | aot | pack [--release] | bench [args…] | ci
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

/// The failed cases of Expecto's NUnit-style summary: name and the first lines of the failure message.
let expectoFailures (path: string) =
    let doc = XmlDocument()
    doc.Load path
    [ for c in doc.SelectNodes "//test-case" |> Seq.cast<XmlElement> do
        if c.GetAttribute "executed" = "True" && c.GetAttribute "success" <> "True" then
            // Expecto 11 writes <failure>message<![CDATA[…]]></failure>: the text follows a bare word "message".
            let f = c.SelectSingleNode "failure"
            let m = if isNull f then null else f.SelectSingleNode "message"
            let text = if not (isNull m) then m.InnerText elif isNull f then "" else f.InnerText
            let text = if text.StartsWith "message" then text.Substring 7 else text
            yield c.GetAttribute "name", text ]

/// The failed tests of a TRX file: name and message.
let trxFailures (path: string) =
    let doc = XmlDocument()
    doc.Load path
    [ for r in doc.GetElementsByTagName "UnitTestResult" |> Seq.cast<XmlElement> do
        if r.GetAttribute "outcome" <> "Passed" then
            let m = r.GetElementsByTagName "Message"
            yield r.GetAttribute "testName", (if m.Count = 0 then "" else m[0].InnerText) ]

/// Prints failed tests as "FAILED name: message" (message cut to a few lines), so that the end of a log says which.
let printFailures (suite: string) (failures: (string * string) list) =
    for name, message in failures do
        let lines = message.Split('\n') |> Array.map (fun l -> l.TrimEnd()) |> Array.filter (fun l -> l <> "")
        let text = String.Join(" | ", Array.truncate 6 lines)
        let text = if text.Length > 800 then text.Substring(0, 800) + " …" else text
        printfn "build.fsx: FAILED (%s) %s: %s" suite name text

/// (passed, failed) of a TRX file's counters (error, timeout and aborted count as failed).
let trxCounts (path: string) =
    let doc = XmlDocument()
    doc.Load path
    let c = doc.GetElementsByTagName("Counters")[0] :?> XmlElement
    let n (name: string) = match c.GetAttribute name with "" -> 0 | v -> int v
    n "passed", n "failed" + n "error" + n "timeout" + n "aborted"

/// Runs each F# notebook of examples/notebooks headlessly with the dotnet-repl tool pinned in .config/dotnet-tools.json,
/// from the notebook's folder (its relative paths are the ones an editor uses), writing the executed notebook under
/// TestResults/notebooks. One test per notebook: it passes when dotnet-repl exits with 0 within the time limit and no
/// cell of the executed notebook holds an error output. Returns (passed, failed).
let notebooks (results: string) =
    let dir = Path.Combine(root, "examples", "notebooks")
    let files = if Directory.Exists dir then Directory.GetFiles(dir, "*.ipynb") |> Array.sort else [||]
    let outDir = Path.Combine(results, "notebooks")
    Directory.CreateDirectory outDir |> ignore
    // The Core for the notebook kernel, into examples/notebooks/lib (see the NotebookBuild note in Directory.Packages.props).
    let coreBuilt () =
        runCode "dotnet" [ "build"; "src/NeuralTangents.Core"; "-c"; "Release"; "-p:NotebookBuild=true"
                           "-p:BaseIntermediateOutputPath=" + Path.Combine(dir, "obj") + "/"
                           "-p:OutputPath=" + Path.Combine(dir, "lib") + "/" ] = 0
    if files.Length = 0 then
        printfn "build.fsx: notebooks: none found in %s" dir
        0, 1
    elif not (coreBuilt ()) then
        printfn "build.fsx: notebooks: the notebook build of the Core failed, so none of the %d notebooks ran" files.Length
        0, files.Length
    elif runCode "dotnet" [ "tool"; "restore" ] <> 0 then
        printfn "build.fsx: notebooks: 'dotnet tool restore' failed, so none of the %d notebooks ran" files.Length
        0, files.Length
    else
        let limit = TimeSpan.FromMinutes 10.0
        let one (file: string) =
            let name = Path.GetFileName file
            let executed = Path.Combine(outDir, name)
            printfn "> dotnet repl --run %s --exit-after-run --output-path %s" name executed
            let psi = ProcessStartInfo("dotnet", WorkingDirectory = dir, UseShellExecute = false)
            for a in [ "repl"; "--run"; file; "--exit-after-run"; "--output-format"; "ipynb"; "--output-path"; executed ] do
                psi.ArgumentList.Add a
            let sw = Stopwatch.StartNew()
            use p = Process.Start psi
            let finished = p.WaitForExit(int limit.TotalMilliseconds)
            if not finished then p.Kill true
            // Error outputs of the executed notebook: dotnet-repl goes on after a failing cell.
            let errors =
                if not (File.Exists executed) then [ "no executed notebook was written" ]
                else
                    use doc = Text.Json.JsonDocument.Parse(File.ReadAllText executed)
                    [ for cell in doc.RootElement.GetProperty("cells").EnumerateArray() do
                        match cell.TryGetProperty "outputs" with
                        | true, outputs ->
                            for o in outputs.EnumerateArray() do
                                if o.GetProperty("output_type").GetString() = "error" then
                                    let text (key: string) = match o.TryGetProperty key with | true, v -> v.GetString() | _ -> ""
                                    yield sprintf "%s: %s" (text "ename") (text "evalue")
                        | _ -> () ]
            let code = if finished then p.ExitCode else -1
            let ok = finished && code = 0 && errors.IsEmpty
            if ok then printfn "build.fsx: notebook %s passed (%.0f s)" name sw.Elapsed.TotalSeconds
            else
                let why = if finished then sprintf "exit code %d" code else sprintf "still running after %O, killed" limit
                printfn "build.fsx: notebook %s FAILED (%s, %.0f s)" name why sw.Elapsed.TotalSeconds
                for e in errors do printfn "    %s" e
            ok
        let passed = files |> Array.map one |> Array.filter id |> Array.length
        passed, files.Length - passed

/// Runs a program with the given arguments and stdin text, in the repository root; (exit code, stdout, stderr).
let capture (exe: string) (args: string list) (stdin: string) =
    let psi = ProcessStartInfo(exe, WorkingDirectory = root, UseShellExecute = false, RedirectStandardInput = true,
                               RedirectStandardOutput = true, RedirectStandardError = true)
    for a in args do psi.ArgumentList.Add a
    use p = Process.Start psi
    let out = p.StandardOutput.ReadToEndAsync()
    let err = p.StandardError.ReadToEndAsync()
    p.StandardInput.Write stdin
    p.StandardInput.Close()
    p.WaitForExit()
    p.ExitCode, out.Result, err.Result

/// The Native AOT build of nt (README "Small requests"): publishes it, then runs it and the JIT build on the same
/// command lines and requests (help, kernels of an MLP and a CNN, predict, the finite-width tools, files with "out",
/// errors, the demo with its figures). One test per case: the exit codes, stdout and stderr must be the same, but for
/// the "elapsed_ms" line and, for the demo, its times. AOT compilation needs clang and zlib1g-dev; without them the
/// publish fails and counts as one failed test, with the fix printed. Linux x64 only. Returns (passed, failed).
let aot (results: string) =
    if not (OperatingSystem.IsLinux()) || Runtime.InteropServices.RuntimeInformation.OSArchitecture <> Runtime.InteropServices.Architecture.X64 then
        printfn "build.fsx: aot: not run, the Native AOT build is checked on Linux x64 only"
        0, 0
    else
    let dir = Path.Combine(results, "aot")
    let publish = runCode "dotnet" [ "publish"; "src/NeuralTangents.Cli"; "-c"; "Release"; "-r"; "linux-x64"; "-p:PublishAot=true"; "-o"; Path.Combine(dir, "nt") ]
    if publish <> 0 then
        printfn "build.fsx: aot: FAILED: the Native AOT publish failed (it needs clang and zlib1g-dev: apt-get install clang zlib1g-dev)"
        0, 1
    else
    let native = Path.Combine(dir, "nt", "nt")
    let jit = Path.Combine(root, "src", "NeuralTangents.Cli", "bin", "Release", "net10.0", "nt.dll")
    let work (name: string) = Path.Combine(dir, name)
    let mlp = """{"layer": "serial", "layers": [{"layer": "Dense", "out_dim": 64, "W_std": 1.5, "b_std": 0.05}, {"layer": "Relu"}, {"layer": "Dense", "out_dim": 1}]}"""
    let cnn = """{"layer": "serial", "layers": [{"layer": "Conv", "out_chan": 8, "filter_shape": [3, 3], "padding": "SAME"}, {"layer": "Relu"}, {"layer": "Conv", "out_chan": 8, "filter_shape": [2, 2], "strides": [2, 2], "padding": "VALID"}, {"layer": "Erf"}, {"layer": "GlobalAvgPool"}, {"layer": "Dense", "out_dim": 1}]}"""
    let images = """[[[[1], [0.5], [-1], [2]], [[0], [1], [1], [-0.5]], [[2], [-1], [0], [1]], [[0.5], [0.5], [1], [0]]], [[[0], [1], [2], [1]], [[-1], [0], [1], [0]], [[1], [1], [-2], [0]], [[0], [2], [1], [1]]]]"""
    let x = "[[1, 2, 3], [4, 5, 6], [0.5, -1, 2]]"
    let cases =
        [ "help", [ "--help" ], ""
          "kernel help", [ "kernel"; "-h" ], ""
          "predict help", [ "predict"; "--help" ], ""
          "demo help", [ "demo"; "--help" ], ""
          "version", [ "--version" ], ""
          "kernel examples/mlp.json", [ "kernel"; "examples/mlp.json" ], ""
          "predict examples/predict.json", [ "predict"; "examples/predict.json" ], ""
          "kernel of a CNN-GAP (full spatial layout, stdin)", [ "kernel" ], sprintf """{"arch": %s, "x1": %s}""" cnn images
          "kernel of a CNN with Flatten (diagonal layout)", [ "kernel" ], sprintf """{"arch": {"layer": "serial", "layers": [%s, {"layer": "Flatten"}]}, "x1": %s}""" (cnn.Replace("{\"layer\": \"GlobalAvgPool\"}, ", "")) images
          "kernel with out", [ "kernel" ], sprintf """{"arch": %s, "x1": %s, "out": "%s", "overwrite": true}""" mlp x (work "k")
          "monte_carlo", [ "kernel" ], sprintf """{"arch": %s, "x1": %s, "monte_carlo": {"n_samples": [2, 4], "seed": 3}}""" mlp x
          "empirical", [ "kernel" ], sprintf """{"arch": %s, "x1": %s, "empirical": {"seed": 1}}""" mlp x
          "predict at finite t", [ "predict" ], sprintf """{"arch": %s, "x_train": %s, "y_train": [1, -1, 0.5], "x_test": [[0, 1, 2]], "t": [0.5, 2], "get": ["nngp", "ntk"], "compute_cov": true}""" mlp x
          "error: bad out_dim", [ "kernel" ], """{"arch": {"layer": "Dense", "out_dim": -3}, "x1": [[1, 2]]}"""
          "error: Conv on vectors", [ "kernel" ], """{"arch": {"layer": "Conv", "out_chan": 3, "filter_shape": [3, 3]}, "x1": [[1, 2]]}"""
          "error: unknown layer", [ "kernel" ], """{"arch": {"layer": "Frob"}, "x1": [[1, 2]]}"""
          "error: shapes", [ "kernel" ], """{"arch": {"layer": "Dense", "out_dim": 1}, "x1": [[1, 2]], "x2": [[1, 2, 3]]}"""
          "error: not JSON", [ "kernel" ], "{"
          "error: y_train", [ "predict" ], sprintf """{"arch": %s, "x_train": %s, "y_train": [1, 2]}""" mlp x
          "error: unknown command", [ "frob" ], ""
          "error: demo option", [ "demo"; "--train"; "x" ], ""
          "demo", [ "demo"; "--dataset"; "diabetes"; "--train"; "40"; "--no-finite"; "--out"; work "demo" ], "" ]
    // Lines that hold times differ from run to run: "elapsed_ms", and the demo's seconds.
    let stable (name: string) (text: string) =
        text.Split('\n')
        |> Array.filter (fun l -> not (l.Contains "\"elapsed_ms\"" || (name = "demo" && Text.RegularExpressions.Regex.IsMatch(l, "[0-9] s\\b"))))
    let cut (text: string) = if text.Length > 300 then text.Substring(0, 300) + "…" else text
    let one (name: string, args: string list, stdin: string) =
        let c1, o1, e1 = capture native args stdin
        let c2, o2, e2 = capture "dotnet" (jit :: args) stdin
        let problems =
            [ if c1 <> c2 then sprintf "exit code %d, JIT build %d" c1 c2
              if stable name o1 <> stable name o2 then sprintf "stdout differs: native %A, JIT %A" (cut o1) (cut o2)
              if stable name e1 <> stable name e2 then sprintf "stderr differs: native %A, JIT %A" (cut e1) (cut e2)
              if name = "demo" then
                  for f in [ "diabetes-training"; "diabetes-posterior" ] do
                      if not (File.Exists(work ("demo-" + f + ".png"))) then sprintf "no figure %s" f ]
        match problems with
        | [] -> true
        | _ ->
            printfn "build.fsx: FAILED (Native AOT) %s: %s" name (String.Join("; ", problems))
            false
    let passed = cases |> List.filter one |> List.length
    printfn "build.fsx: aot: %d of %d cases gave the JIT build's answers" passed cases.Length
    passed, cases.Length - passed

/// Builds the solution, runs the F# suite (Expecto, extra arguments passed through), the C# suite (NUnit) and the
/// notebooks (one test each), and ends with one line "N passed, N failed"; exits non-zero when anything failed or a
/// suite ran no test.
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
    let nbPassed, nbFailed = notebooks results
    printfn "build.fsx: notebooks: %d of %d passed" nbPassed (nbPassed + nbFailed)
    let aotPassed, aotFailed = aot results
    let passed, failed = fsPassed + csPassed + nbPassed + aotPassed, fsFailed + csFailed + nbFailed + aotFailed
    // The failures again at the end, where a truncated log still shows them.
    let tryList (file: string) (read: string -> (string * string) list) =
        if File.Exists file then (try read file with e -> [ ("(unreadable result file)", e.Message) ]) else []
    printFailures "F#" (tryList fsSummary expectoFailures)
    printFailures "C#" (tryList csTrx trxFailures)
    printfn "%d passed, %d failed" passed failed
    exit (if failed = 0 then 0 else 1)

match target with
| "build" -> run "dotnet" "build NeuralTangents.slnx -c Release -warnaserror"
| "test" -> test (List.ofArray args[1..])
| "aot" ->
    // The Native AOT check alone (see aot), after a build of the JIT nt it is compared with.
    run "dotnet" "build src/NeuralTangents.Cli -c Release"
    let passed, failed = aot (Path.Combine(root, "TestResults"))
    printfn "%d passed, %d failed" passed failed
    exit (if failed = 0 then 0 else 1)
| "notebooks" ->
    // Builds the notebooks' Core into examples/notebooks/lib and runs every notebook (executed copies in TestResults).
    let passed, failed = notebooks (Path.Combine(root, "TestResults"))
    printfn "%d passed, %d failed" passed failed
    exit (if failed = 0 then 0 else 1)
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
    eprintfn "build.fsx: unknown target '%s' (build | test | notebooks | aot | pack | bench | ci)" other
    exit 2
