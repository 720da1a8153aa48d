// Build script: dotnet fsi build.fsx <target>
// Targets: build | test | pack | bench [args…] | ci
open System
open System.Diagnostics

let root = __SOURCE_DIRECTORY__

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

match target with
| "build" -> run "dotnet" "build NeuralTangents.slnx -c Release -warnaserror"
| "test" -> run "dotnet" "test NeuralTangents.slnx -c Release"
| "pack" ->
    run "dotnet" "pack src/NeuralTangents.Core -c Release -o artifacts"
    run "dotnet" "pack src/NeuralTangents.CSharp -c Release -o artifacts"
    run "dotnet" "pack src/NeuralTangents.Cli -c Release -o artifacts"
| "bench" -> run "dotnet" ("run -c Release --project bench/NeuralTangents.Benchmarks -- " + rest)
| "ci" -> run "bash" ".ci/run"
| other ->
    eprintfn "build.fsx: unknown target '%s' (build | test | pack | bench | ci)" other
    exit 2
