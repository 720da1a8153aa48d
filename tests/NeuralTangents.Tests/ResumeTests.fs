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

/// POSIX kill(2): a signal sent at once (starting a `kill` process takes milliseconds, in which a fast machine may
/// finish the whole computation).
[<System.Runtime.InteropServices.DllImport("libc", SetLastError = true)>]
extern int private kill(int pid, int signal)

let private sigint = 2

/// Waits (polling every millisecond, at most 20 s) until the process has exited or the file exists.
let private waitFor (p: Process) (path: string) =
    let sw = Stopwatch.StartNew()
    while not p.HasExited && not (File.Exists path) && sw.ElapsedMilliseconds < 20000L do
        Threading.Thread.Sleep 1

[<Tests>]
let tests =
    testList "ResumeTests" [
        testCase "nt kernel killed with SIGKILL at random moments, then run again, ends with the bytes of an uninterrupted run" <| fun () ->
            Expect.isTrue (File.Exists ntDll) (sprintf "the CLI is built at %s" ntDll)
            let dir = Path.Combine(Path.GetTempPath(), "nt-resume-" + Guid.NewGuid().ToString("N"))
            Directory.CreateDirectory dir |> ignore
            try
                // The uninterrupted run, timed: from the start and from the ledger's appearance (the computation) to
                // the exit, so that the kills below land inside those spans on a machine of any speed.
                let sw = Stopwatch.StartNew()
                let whole = writeRequest dir "whole.json" "whole"
                use p = start whole
                let out = p.StandardOutput.ReadToEndAsync()
                let err = p.StandardError.ReadToEndAsync()
                waitFor p (Path.Combine(dir, "whole.nt-tiles"))
                let ledgerAt = sw.ElapsedMilliseconds
                p.WaitForExit()
                out.Result |> ignore
                let total = int sw.ElapsedMilliseconds
                let computing = max 1 (total - int ledgerAt)
                note (sprintf "ResumeTests: an uninterrupted run took %d ms, %d ms of them with the ledger present" total computing)
                Expect.equal p.ExitCode 0 err.Result
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
                        waitFor p ledger
                        Threading.Thread.Sleep(rng.Next computing)
                    else Threading.Thread.Sleep(rng.Next(max 1 total))
                    if not p.HasExited then
                        p.Kill() // SIGKILL on Unix
                        p.WaitForExit()
                        if File.Exists ledger then kills <- kills + 1
                        // Killed after the run had finished (answer in place, ledger gone): a later run would be
                        // refused for replacing that answer, so start over, as after an exit 0.
                        else for f in files dir "killed" do File.Delete f
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
                let mutable late = 0
                let outcomes = Collections.Generic.List<string>() // exit code and stderr of each attempt that missed
                while interrupted.IsNone && attempt < 10 do
                    attempt <- attempt + 1
                    use p = start request
                    let err = p.StandardError.ReadToEndAsync()
                    let out = p.StandardOutput.ReadToEndAsync()
                    // Wait for the ledger: the computation is under way; the signal goes at once.
                    waitFor p (Path.Combine(dir, "k.nt-tiles"))
                    if not p.HasExited then kill (p.Id, sigint) |> ignore
                    p.WaitForExit()
                    out.Result |> ignore
                    let err = err.Result
                    // Exit 130 without a message: the signal landed after the command had finished and its handler
                    // was gone (the runtime's default ends the process); like exit 0, it came too late: try again.
                    if p.ExitCode = 130 && err <> "" then interrupted <- Some err
                    else
                        if p.ExitCode = 130 then late <- late + 1
                        outcomes.Add(sprintf "exit %d, stderr %A" p.ExitCode err)
                        for f in files dir "k" do File.Delete f
                note (sprintf "ResumeTests: SIGINT landed in attempt %d (%d after the command had finished)" attempt late)
                match interrupted with
                | None -> failtestf "no SIGINT landed during the computation in 10 attempts: %s" (String.Join("; ", outcomes))
                | Some err ->
                    Expect.stringStarts err "nt: interrupted" "one line"
                    Expect.stringContains err "run the same command again to resume" "says how to resume"
                let code, _, err = runToEnd request
                Expect.equal code 0 err
                let k = KernelFn.compute (Stax.serial [ Stax.dense 512 1.5 (Some 0.05); Stax.relu; Stax.dense 512 1.5 None; Stax.erf 1.0 1.0 0.0; Stax.dense 1 1.0 None ]) (randomTensor 31 160 6) None Both
                assertClose "resumed nngp" 1e-14 k.Nngp.Data (Npy.read (Path.Combine(dir, "k.nngp.npy"))).Data
            finally
                Directory.Delete(dir, true)
        testCase "an answer that cannot reach stdout (/dev/full) is one error line naming stdout, exit code 1" <| fun () ->
            // The real process with stdout on /dev/full (ENOSPC on every write): before, the bare system message.
            if File.Exists "/dev/full" then
                let dir = Path.Combine(Path.GetTempPath(), "nt-stdout-" + Guid.NewGuid().ToString("N"))
                Directory.CreateDirectory dir |> ignore
                try
                    let request = Path.Combine(dir, "r.json")
                    File.WriteAllText(request, """{"arch": {"layer": "Dense", "out_dim": 1}, "x1": [[1.0, 2.0], [3.0, 4.0]]}""")
                    let psi = ProcessStartInfo("bash", sprintf "-c \"exec dotnet '%s' kernel '%s' > /dev/full\"" ntDll request)
                    psi.RedirectStandardError <- true
                    psi.UseShellExecute <- false
                    use p = Process.Start psi
                    let err = p.StandardError.ReadToEnd()
                    p.WaitForExit()
                    Expect.equal p.ExitCode 1 err
                    Expect.stringStarts err "nt: cannot write the answer to stdout (" "names stdout"
                    Expect.equal (err.TrimEnd().Split('\n').Length) 1 "one line"
                finally
                    Directory.Delete(dir, true)
            else skiptest "no /dev/full on this system"

    ]
