/// `nt kernel` with "out" as a real child process (the built CLI), killed with SIGKILL at random moments and run
/// again: the final files must be byte for byte those of an uninterrupted run; SIGINT stops it cleanly.
module NeuralTangents.Tests.ResumeTests

open System
open System.Diagnostics
open System.IO
open Expecto
open NeuralTangents
open NeuralTangents.Tests.TestUtil

/// The CLI built beside this repository's sources (dotnet build builds it before the tests).
let private ntDll =
    let config = if AppContext.BaseDirectory.Contains "/Debug/" then "Debug" else "Release"
    Path.Combine(repoRoot, "src", "NeuralTangents.Cli", "bin", config, "net10.0", "nt.dll")

let private start (request: string) =
    let psi = ProcessStartInfo("dotnet", sprintf "\"%s\" kernel \"%s\"" ntDll request)
    psi.RedirectStandardOutput <- true
    psi.RedirectStandardError <- true
    psi.UseShellExecute <- false
    Process.Start psi

/// Runs to the end; returns (exit code, stdout, stderr).
let private runToEnd (request: string) =
    use p = start request
    let out = p.StandardOutput.ReadToEndAsync()
    let err = p.StandardError.ReadToEndAsync()
    p.WaitForExit()
    p.ExitCode, out.Result, err.Result

/// A request of 160 inputs in tiles of 8: 20·21/2 = 210 tiles, each flushed to disk and recorded.
let private writeRequest (dir: string) (name: string) (prefix: string) =
    let x = randomTensor 31 160 6
    let xPath = Path.Combine(dir, "x.npy")
    if not (File.Exists xPath) then Npy.write xPath x
    let path = Path.Combine(dir, name)
    File.WriteAllText(path, sprintf """{"arch": {"layer": "serial", "layers": [{"layer": "Dense", "out_dim": 512, "W_std": 1.5, "b_std": 0.05},
        {"layer": "Relu"}, {"layer": "Dense", "out_dim": 512, "W_std": 1.5}, {"layer": "Erf"}, {"layer": "Dense", "out_dim": 1}]},
        "x1": "x.npy", "batch_size": 8, "out": "%s"}""" prefix)
    path

let private files (dir: string) (prefix: string) =
    [ for q in [ "nngp"; "ntk"; "cov1" ] -> Path.Combine(dir, sprintf "%s.%s.npy" prefix q) ]

[<Tests>]
let tests =
    testList "ResumeTests" [
        testCase "nt kernel killed with SIGKILL at random moments, then run again, ends with the bytes of an uninterrupted run" <| fun () ->
            Expect.isTrue (File.Exists ntDll) (sprintf "the CLI is built at %s" ntDll)
            let dir = Path.Combine(Path.GetTempPath(), "nt-resume-" + Guid.NewGuid().ToString("N"))
            Directory.CreateDirectory dir |> ignore
            try
                let sw = Stopwatch.StartNew()
                let code, _, err = runToEnd (writeRequest dir "whole.json" "whole")
                note (sprintf "ResumeTests: an uninterrupted run took %d ms" sw.ElapsedMilliseconds)
                Expect.equal code 0 err
                let request = writeRequest dir "killed.json" "killed"
                let ledger = Path.Combine(dir, "killed.nt-tiles")
                let rng = Random 2024
                let mutable kills = 0
                let mutable attempts = 0
                // Kill at a random moment, five times while the ledger shows a computation under way.
                while kills < 5 && attempts < 40 do
                    attempts <- attempts + 1
                    use p = start request
                    // Every other attempt waits for the ledger (the tiles under way) and kills a random moment later;
                    // the others kill at a random moment from the start (perhaps before any tile).
                    if attempts % 2 = 0 then
                        let sw = Stopwatch.StartNew()
                        while not p.HasExited && not (File.Exists ledger) && sw.ElapsedMilliseconds < 20000L do
                            Threading.Thread.Sleep 5
                        Threading.Thread.Sleep(rng.Next 300)
                    else Threading.Thread.Sleep(rng.Next 1500)
                    if not p.HasExited then
                        p.Kill() // SIGKILL on Unix
                        p.WaitForExit()
                        if File.Exists ledger then kills <- kills + 1
                    elif p.ExitCode = 0 then
                        // It finished before the kill: start over so that the next kill lands mid-way.
                        for f in files dir "killed" do File.Delete f
                note (sprintf "ResumeTests: %d kills in %d attempts" kills attempts)
                Expect.isGreaterThanOrEqual kills 1 "at least one kill landed during the computation"
                let code, _, err = runToEnd request
                Expect.equal code 0 err
                Expect.isFalse (File.Exists ledger) "ledger removed once complete"
                for a, b in List.zip (files dir "whole") (files dir "killed") do
                    Expect.equal (File.ReadAllBytes b) (File.ReadAllBytes a) (sprintf "%s equals %s byte for byte" b a)
            finally
                Directory.Delete(dir, true)

        testCase "SIGINT stops nt kernel at a tile boundary (exit 130) and says how to resume; the same command resumes" <| fun () ->
            let dir = Path.Combine(Path.GetTempPath(), "nt-sigint-" + Guid.NewGuid().ToString("N"))
            Directory.CreateDirectory dir |> ignore
            try
                let request = writeRequest dir "r.json" "k"
                let mutable interrupted = None
                let mutable attempt = 0
                while interrupted.IsNone && attempt < 10 do
                    attempt <- attempt + 1
                    use p = start request
                    let err = p.StandardError.ReadToEndAsync()
                    let out = p.StandardOutput.ReadToEndAsync()
                    // Wait for the ledger: the computation is under way.
                    let sw = Stopwatch.StartNew()
                    while not p.HasExited && not (File.Exists(Path.Combine(dir, "k.nt-tiles"))) && sw.ElapsedMilliseconds < 20000L do
                        Threading.Thread.Sleep 20
                    if not p.HasExited then
                        use kill = Process.Start("kill", sprintf "-INT %d" p.Id)
                        kill.WaitForExit()
                    p.WaitForExit()
                    out.Result |> ignore
                    if p.ExitCode = 130 then interrupted <- Some err.Result
                    else for f in files dir "k" do File.Delete f
                match interrupted with
                | None -> failtest "no SIGINT landed during the computation in 10 attempts"
                | Some err ->
                    Expect.stringStarts err "nt: interrupted" "one line"
                    Expect.stringContains err "run the same command again to resume" "says how to resume"
                let code, _, err = runToEnd request
                Expect.equal code 0 err
                let k = KernelFn.compute (Stax.serial [ Stax.dense 512 1.5 (Some 0.05); Stax.relu; Stax.dense 512 1.5 None; Stax.erf 1.0 1.0 0.0; Stax.dense 1 1.0 None ]) (randomTensor 31 160 6) None Both
                assertClose "resumed nngp" 1e-14 k.Nngp.Data (Npy.read (Path.Combine(dir, "k.nngp.npy"))).Data
            finally
                Directory.Delete(dir, true)
    ]
