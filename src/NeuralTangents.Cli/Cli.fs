/// <summary>The <c>nt</c> command line: argument parsing, dispatch to the commands, and turning every error into
/// one line on stderr. <c>run</c> is the whole program, callable in-process.</summary>
[<RequireQualifiedAccess>]
module NeuralTangents.Cli.Cli

open System
open System.IO
open NeuralTangents

/// Shown after the command list of <c>nt --help</c>.
let private mainHelp =
    """nt computes the exact infinite-width NNGP and NTK kernels of neural networks and
the predictions of infinitely wide networks, matching Google's neural_tangents
(nt.stax layer names, arguments and numbers).
Each command reads a JSON request; 'nt <command> --help' describes its format.

EXAMPLE:

    $ echo '{"arch": {"layer": "serial", "layers": [
               {"layer": "Dense", "out_dim": 512, "W_std": 1.5, "b_std": 0.05},
               {"layer": "Relu"}, {"layer": "Dense", "out_dim": 1}]},
             "x1": [[0.1, 0.2, 0.3], [-0.5, 0.4, 1.0]]}' | nt kernel
"""

/// Extra help per command, keyed by its command-line name.
let private commandHelp =
    Map [ "kernel", KernelCommand.helpText
          "predict", PredictCommand.helpText
          "demo", Demo.DemoCommand.helpText ]

let private demoOptions (d: CommandLine.DemoArgs) : Demo.DemoCommand.Options =
    let o = Demo.DemoCommand.defaults
    let digits, diabetes =
        match defaultArg d.Dataset CommandLine.All with
        | CommandLine.All -> true, true
        | CommandLine.Digits -> true, false
        | CommandLine.Diabetes -> false, true
    let depths =
        match d.Depths with
        | None -> o.Depths
        | Some s ->
            s.Split(',', StringSplitOptions.RemoveEmptyEntries ||| StringSplitOptions.TrimEntries)
            |> Array.map (fun p ->
                match Int32.TryParse p with
                | true, v when v >= 1 && v <= 50 -> v
                | _ -> raise (CliError $"--depths: \"{p}\" is not a depth between 1 and 50 (e.g. --depths 1,2,3)"))
            |> Array.toList
    let train, test = defaultArg d.Train o.Train, defaultArg d.Test o.Test
    for name, v in [ "--train", train; "--test", test ] do
        if v < 1 then raise (CliError $"{name}: must be ≥ 1, got {string v}")
    let cnn =
        if d.NoCnn then None
        else
            let c = Demo.DemoCommand.cnnDefaults
            let train, test, depth = defaultArg d.CnnTrain c.Train, defaultArg d.CnnTest c.Test, defaultArg d.CnnDepth c.Depth
            for name, v in [ "--cnn-train", train; "--cnn-test", test ] do
                if v < 1 then raise (CliError $"{name}: must be ≥ 1, got {string v}")
            if depth < 1 || depth > 10 then raise (CliError $"--cnn-depth: must be between 1 and 10, got {string depth}")
            Some { c with Train = train; Test = test; Depth = depth }
    if depths.IsEmpty then raise (CliError "--depths: give at least one depth, e.g. --depths 1,2,3")
    let reg = d.DiagReg
    match reg with
    | Some r when not (Double.IsFinite r) || r < 0.0 -> raise (CliError $"--diag-reg: must be ≥ 0, got {Show.g r}")
    | _ -> ()
    { o with
        Digits = digits
        Diabetes = diabetes
        Train = train
        Test = test
        Depths = depths
        Cnn = cnn
        DiagReg = reg
        Finite = if d.NoFinite then None else o.Finite
        Plot = if d.NoPlot then None else Some(defaultArg d.Out "nt-demo.svg") }

/// The informational version of nt (e.g. "0.2.0-dev.20250101120000+3f2a1c9").
let version () =
    let asm = Reflection.Assembly.GetExecutingAssembly()
    match Reflection.CustomAttributeExtensions.GetCustomAttribute<Reflection.AssemblyInformationalVersionAttribute> asm with
    | null -> string (asm.GetName().Version)
    | a -> a.InformationalVersion

/// <c>nt info</c>: what this installation runs on, for bug reports and to see whether native code is used.
let private info (stdout: TextWriter) =
    let yesNo b = if b then "yes" else "no"
    let native (lib: string option) =
        match lib with
        | Some file -> $"found ({file})"
        | None when NativeInfo.disabled () -> "not used (NT_NATIVE=0)"
        | None -> "not found (managed fallback)"
    let lines =
        [ "nt", version ()
          ".NET runtime", Runtime.InteropServices.RuntimeInformation.FrameworkDescription
          "OS", $"{Runtime.InteropServices.RuntimeInformation.OSDescription} ({string Runtime.InteropServices.RuntimeInformation.OSArchitecture})"
          "cores", string Environment.ProcessorCount
          "SIMD Vector512", yesNo Runtime.Intrinsics.Vector512.IsHardwareAccelerated
          "SIMD Vector256", yesNo Runtime.Intrinsics.Vector256.IsHardwareAccelerated
          "SIMD Vector128", yesNo Runtime.Intrinsics.Vector128.IsHardwareAccelerated
          "matrix product",
          (if MatrixProductInfo.packedAvx512 () then "packed AVX-512 (own)"
           elif (NativeInfo.blas ()).IsSome then "native BLAS"
           else "managed")
          "native BLAS",
          (match NativeInfo.blas (), NativeInfo.blasCore () with
           | Some file, Some core -> ("found (" + file + ", core " + core + ")")
           | lib, _ -> native lib)
          "native LAPACK", native (NativeInfo.lapacke ()) ]
    for name, value in lines do
        stdout.Write((name + ":").PadRight(16) + value + "\n")
    stdout.Flush()


/// Drops .NET's " (Parameter 'x')" suffix, naming the parameter up front unless the message already does.
let private argumentMessage (e: ArgumentException) =
    let suffix = $" (Parameter '{e.ParamName}')"
    if isNull e.ParamName then e.Message
    else
        let m = if e.Message.EndsWith suffix then e.Message.Substring(0, e.Message.Length - suffix.Length) else e.Message
        // A message in the request's own words (trace_axes for the API's traceAxes) needs no prefix either.
        let snake = String.Concat(e.ParamName |> Seq.map (fun ch -> if Char.IsUpper ch then "_" + string (Char.ToLowerInvariant ch) else string ch))
        if m.StartsWith e.ParamName || m.Contains snake then m else $"{e.ParamName}: {m}"

/// The longest error line, in characters.
let private maxMessage = 1000

/// <summary>The one-line description of an error, as printed after "nt: ".</summary>
let rec describe (e: exn) : string =
    let line =
        match e with
        | CliError msg -> msg
        | NeuralTangentsException msg -> msg
        | Json.JsonArchitectureException msg -> "arch: " + msg
        | :? AggregateException as a when a.InnerExceptions.Count = 1 -> describe a.InnerException
        | :? ArgumentException as a -> argumentMessage a
        | :? InvalidDataException
        | :? IOException
        | :? UnauthorizedAccessException -> e.Message
        | :? OutOfMemoryException ->
            "out of memory: the computation needed more than this machine has free; use fewer or smaller inputs or a smaller \"memory_gb\" for kernels, and narrower layers or fewer samples for the finite-width tools (empirical, monte_carlo)"
        | :? OperationCanceledException -> e.Message
        | e -> $"internal error ({(e.GetType().Name)}): {e.Message}"
    // One line, whatever the message holds: no line breaks, no control characters, and a bounded length (values
    // echoed in messages are cut where they are echoed; this is the backstop).
    let line = String.Join(" ", line.Split([| '\r'; '\n' |], StringSplitOptions.RemoveEmptyEntries)).Trim()
    let line = CliErrors.escapeControls line
    if line.Length > maxMessage then line.Substring(0, maxMessage) + "…" else line

/// <summary>Runs <c>nt</c> with the given arguments and streams.</summary>
/// <param name="argv">The command-line arguments, without the program name.</param>
/// <param name="stdin">Where a request comes from when no file is named.</param>
/// <param name="stdout">Where the answer (or help) goes.</param>
/// <param name="stderr">Where an error goes, as one line starting with "nt: ".</param>
/// <returns>0 on success, 1 when the request or its computation fails, 2 for a command-line error, 130 when
/// interrupted (Ctrl-C).</returns>
let run (argv: string[]) (stdin: TextReader) (stdout: TextWriter) (stderr: TextWriter) : int =
    let error (msg: string) =
        stderr.WriteLine("nt: " + msg)
        stderr.Flush()
    try
        match CommandLine.parse argv with
        | CommandLine.Help command ->
            stdout.Write(CommandLine.usage[command])
            stdout.Write("\n\n")
            stdout.Write(match commandHelp.TryFind command with Some text -> text | None when command = "" -> mainHelp | None -> "")
            stdout.Flush()
        | CommandLine.Version ->
            stdout.Write(version () + "\n")
            stdout.Flush()
        | CommandLine.Info -> info stdout
        | command ->
            // Ctrl-C (SIGINT) asks the running computation to stop at the next tile boundary; a second Ctrl-C
            // ends the process at once.
            use cts = new Threading.CancellationTokenSource()
            let onCancel =
                ConsoleCancelEventHandler(fun _ e ->
                    if not cts.IsCancellationRequested then
                        e.Cancel <- true
                        cts.Cancel())
            Console.CancelKeyPress.AddHandler onCancel
            try
                match command with
                | CommandLine.Kernel request -> Progress.using stderr (fun p -> KernelCommand.runWith cts.Token p request stdin stdout)
                | CommandLine.Predict request -> PredictCommand.run request stdin stdout
                | CommandLine.Demo d -> Demo.DemoCommand.run (demoOptions d) stdout stderr
                | _ -> ()
            finally
                Console.CancelKeyPress.RemoveHandler onCancel
        0
    with
    | :? OperationCanceledException as e ->
        error (describe e)
        130
    | CommandLine.UsageError msg ->
        error msg
        2
    | e ->
        error (describe e)
        1
