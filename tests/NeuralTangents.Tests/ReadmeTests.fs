/// The README's code is the code the tests compile and run: its F# block is examples/quickstart.fsx (run here with
/// dotnet fsi), its C# block is examples/csharp/QuickStart.cs (run by the C# tests).
module NeuralTangents.Tests.ReadmeTests

open System
open System.Diagnostics
open System.IO
open Expecto
open NeuralTangents.Tests.TestUtil

let private readme () = File.ReadAllText(Path.Combine(repoRoot, "README.md")).Replace("\r\n", "\n")

/// The lines strictly between two marker lines, common indentation removed.
let private between (startMarker: string) (endMarker: string) (path: string) =
    let lines = File.ReadAllLines path
    let s = Array.findIndex (fun (l: string) -> l.Trim() = startMarker) lines
    let e = Array.findIndex (fun (l: string) -> l.Trim() = endMarker) lines
    let body = lines[s + 1 .. e - 1]
    let indent = body |> Array.filter (fun l -> l.Trim() <> "") |> Array.map (fun l -> l.Length - l.TrimStart().Length) |> Array.min
    body |> Array.map (fun l -> if l.Length >= indent then l.Substring indent else l.TrimStart()) |> String.concat "\n"

let private fenced (lang: string) (code: string) = "```" + lang + "\n" + code + "\n```"

[<Tests>]
let tests =
    testList "ReadmeTests" [
        testCase "the README's F# block is the quick-start script's code" <| fun () ->
            let code = between "// README: fsharp-snippet begin" "// README: fsharp-snippet end" (Path.Combine(repoRoot, "examples", "quickstart.fsx"))
            Expect.stringContains (readme ()) (fenced "fsharp" code) "README.md"

        testCase "the README's C# block is the C# quick start's code" <| fun () ->
            let code = between "// <snippet>" "// </snippet>" (Path.Combine(repoRoot, "examples", "csharp", "QuickStart.cs"))
            Expect.stringContains (readme ()) (fenced "csharp" code) "README.md"

        testCase "the README gives the main job and the test command" <| fun () ->
            let text = readme ()
            Expect.stringContains text "dotnet run --project src/NeuralTangents.Cli -c Release -- demo" "the main job"
            Expect.stringContains text "dotnet fsi build.fsx test" "the test command"
            Expect.isTrue (File.Exists(Path.Combine(repoRoot, "examples", "mlp.json"))) "File.Exists(Path.Combine(repoRoot, \"examples\", \"mlp.json\"))"

        testCase "the quick-start script runs under dotnet fsi" <| fun () ->
            // The script #r's the Release build of the core, which this test run has just built.
            let psi = ProcessStartInfo("dotnet", "fsi examples/quickstart.fsx", WorkingDirectory = repoRoot,
                                       RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false)
            use p = Process.Start psi
            let out = p.StandardOutput.ReadToEndAsync()
            let err = p.StandardError.ReadToEndAsync()
            if not (p.WaitForExit 120000) then
                p.Kill true
                failtest "dotnet fsi examples/quickstart.fsx did not finish in 120 s"
            Expect.equal p.ExitCode 0 err.Result
            Expect.stringContains out.Result "NNGP [[" "out.Result"
            Expect.stringContains out.Result ("\"layer\":\"serial\"") "out.Result"
    ]
