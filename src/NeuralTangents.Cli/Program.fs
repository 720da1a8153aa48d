module NeuralTangents.Cli.Program

open System
open System.IO
open System.Threading.Tasks
open NeuralTangents

/// NT_TIMINGS=1: the time from process start (dotnet host, runtime, assembly loading) to a point of nt, on stderr.
let private mark (what: string) =
    if Environment.GetEnvironmentVariable "NT_TIMINGS" = "1" then
        let p = Diagnostics.Process.GetCurrentProcess()
        let wall, cpu = (DateTime.Now - p.StartTime).TotalMilliseconds, p.TotalProcessorTime.TotalMilliseconds
        Console.Error.WriteLine(String.Format("nt timings: {0,-44} wall {1,8:F2} ms  cpu {2,8:F2} ms", what, wall, cpu))

/// <summary>Start-up work that every <c>nt kernel</c> request needs before its first kernel, started on a pool
/// thread while the main thread parses the command line and reads the request (issue #9 item 7): loading the
/// native BLAS (OpenBLAS starts its own threads), starting the thread pool's workers, and compiling (JIT) the
/// kernel's heavy path — input Gram matrix, plan, and the fused MLP executor (Rules.DenseStack: its Dense → ReLU
/// and trailing Dense steps) — on a small network. On two cores this takes the main thread's idle neighbour; nothing
/// computed is kept, and a failure is left to the request's own computation to report. Its 40 inputs make one tile
/// of the executor, so its run stays on one core: two warm-up workers took the cores from the request's Gram
/// product (median elapsed_ms of 20 interleaved runs each: 70 and 88 ms against 81 and 93 with 72 inputs). It runs
/// the untiled kernel, not the tiled one: the request's parsing ends ~100 ms after start-up, before a warm-up that
/// also compiled the tiling's one-pair probe had finished, and the request then waited for it; with the probe's
/// rules compiled by the request itself while the warm-up compiles the executor, elapsed_ms 115 and 126 ms against
/// 157 and 152, the whole process 534 and 589 ms against 578 and 630 (medians of two sets of 16 interleaved runs,
/// Zen 3).</summary>
let private warmUp () =
    Task.Run(fun () ->
        try
            mark "warm-up starts"
            let x = Tensor.create [| 40; 3 |] [| for i in 0 .. 119 -> float (i % 7) - 3.0 + 0.01 * float i |]
            let net = Stax.serial [ Stax.dense 8 1.0 (Some 0.1); Stax.relu; Stax.dense 1 1.0 None ]
            KernelFn.compute net x None Both |> ignore
            Parallel.For(0, Environment.ProcessorCount, fun _ -> ()) |> ignore
            mark "warm-up ends"
        with _ -> ())
    |> ignore

/// <summary>The answer's writer: a failure to write stdout (closed, a full disk behind a redirection, a broken
/// pipe) becomes one clear error naming stdout instead of the bare system message.</summary>
type private StdoutWriter(inner: TextWriter) =
    inherit TextWriter()
    let failed (e: exn) =
        NeuralTangents.Cli.CliError $"cannot write the answer to stdout ({e.Message}); check where stdout goes (a closed stream, a full disk) or give \"out\" to write files"
    override _.Encoding = inner.Encoding
    override _.Write(c: char) =
        try inner.Write c with :? IOException | :? UnauthorizedAccessException as e -> raise (failed e)
    override _.Write(buffer: char[], index: int, count: int) =
        try inner.Write(buffer, index, count) with :? IOException | :? UnauthorizedAccessException as e -> raise (failed e)
    override _.Write(s: string) =
        try inner.Write s with :? IOException | :? UnauthorizedAccessException as e -> raise (failed e)
    override _.Write(span: ReadOnlySpan<char>) =
        try inner.Write span with :? IOException | :? UnauthorizedAccessException as e -> raise (failed e)
    override _.Flush() =
        try inner.Flush() with :? IOException | :? UnauthorizedAccessException as e -> raise (failed e)

[<EntryPoint>]
let main argv =
    mark "process start to main"
    let request = argv.Length > 0 && (argv[0] = "kernel" || argv[0] = "predict")
    if request then warmUp ()
    // At an interactive terminal, a missing request file is an error rather than a silent wait for typed JSON.
    let stdin = if Console.IsInputRedirected then Console.In else IO.TextReader.Null
    // A request's answer (up to tens of MB of JSON) goes through a 64 kB buffer flushed at the end, instead of the
    // console writer's small buffer and flush per write. Other commands keep the console's line-by-line output.
    let stdout =
        if request then
            let w = new StdoutWriter(new StreamWriter(Console.OpenStandardOutput(), Text.UTF8Encoding(false), 1 <<< 16))
            Console.SetOut w
            Console.Out
        else Console.Out
    let code =
        let c = Cli.run argv stdin stdout Console.Error
        // What is still buffered goes out here; a failure now is reported as Cli.run reports its own.
        try
            stdout.Flush()
            c
        with NeuralTangents.Cli.CliError msg ->
            Console.Error.WriteLine("nt: " + msg)
            if c = 0 then 1 else c
    mark "main returns (since process start)"
    code
