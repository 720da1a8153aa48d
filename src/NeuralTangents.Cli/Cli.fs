/// <summary>The <c>nt</c> command line: argument parsing, dispatch to the commands, and turning every error into
/// one line on stderr. <c>run</c> is the whole program, callable in-process.</summary>
[<RequireQualifiedAccess>]
module NeuralTangents.Cli.Cli

open System
open System.IO
open Argu
open NeuralTangents

/// Arguments of <c>nt kernel</c>.
type KernelArgs =
    | [<MainCommand; Unique>] Request of ``REQUEST.json``: string

    interface IArgParserTemplate with
        member a.Usage =
            match a with
            | Request _ -> "the request file (see REQUEST below); stdin when absent or \"-\""

/// Arguments of <c>nt predict</c>.
type PredictArgs =
    | [<MainCommand; Unique>] Request of ``REQUEST.json``: string

    interface IArgParserTemplate with
        member a.Usage =
            match a with
            | Request _ -> "the request file (see REQUEST below); stdin when absent or \"-\""

/// The data sets of <c>nt demo --dataset</c>.
type DemoDataset =
    | Digits
    | Diabetes
    | All

/// Arguments of <c>nt demo</c>.
type DemoArgs =
    | [<Unique>] Dataset of DemoDataset
    | [<Unique>] Train of N: int
    | [<Unique>] Test of N: int
    | [<Unique>] Depths of ``1,2,3``: string
    | [<Unique>] Cnn_Train of N: int
    | [<Unique>] Cnn_Test of N: int
    | [<Unique>] Cnn_Depth of D: int
    | No_Cnn
    | [<Unique>] Diag_Reg of X: float
    | [<Unique>] Out of PATH: string
    | No_Plot
    | No_Finite

    interface IArgParserTemplate with
        member a.Usage =
            match a with
            | Dataset _ -> "digits, diabetes or all (default all)"
            | Train _ -> "training rows (default 1000 digits; diabetes uses at most 300)"
            | Test _ -> "digits test images (default 500; diabetes tests on the rest)"
            | Depths _ -> "comma-separated MLP depths for digits (default 1,2,3)"
            | Cnn_Train _ -> "digits training images of the CNN-GAP (default 200; its kernel costs ~4096x the MLP's per pair)"
            | Cnn_Test _ -> "digits test images of the CNN-GAP (default 100)"
            | Cnn_Depth _ -> "Conv + Relu blocks of the CNN-GAP (default 2)"
            | No_Cnn -> "leave the CNN-GAP rows out"
            | Diag_Reg _ -> "ridge relative to the mean kernel diagonal (default: digits 1e-4, diabetes 1)"
            | Out _ -> "stem of the figures: STEM-<figure>.png and .svg (default nt-demo in the current folder)"
            | No_Plot -> "do not write the figures"
            | No_Finite -> "leave out the finite-width networks trained by gradient descent"

/// The commands of <c>nt</c>. A new command is a new case here, its help in <c>commandHelp</c> and its arm in
/// <c>dispatch</c>.
[<RequireSubcommand>]
type NtArgs =
    | [<CliPrefix(CliPrefix.None); SubCommand>] Kernel of ParseResults<KernelArgs>
    | [<CliPrefix(CliPrefix.None); SubCommand>] Predict of ParseResults<PredictArgs>
    | [<CliPrefix(CliPrefix.None); SubCommand>] Demo of ParseResults<DemoArgs>
    | [<CliPrefix(CliPrefix.None); SubCommand>] Info
    | [<Unique>] Version

    interface IArgParserTemplate with
        member a.Usage =
            match a with
            | Kernel _ -> "exact infinite-width NNGP and NTK kernels of a network (nt kernel --help)"
            | Predict _ -> "predictions of infinitely wide networks: NNGP posterior, NTK-trained ensemble (nt predict --help)"
            | Demo _ -> "infinite networks on shipped real data: digits and diabetes, with a plot (nt demo --help)"
            | Info -> "version, .NET runtime, cores, SIMD, the matrix-product kernel and native BLAS/LAPACK in use"
            | Version -> "print the version"

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

let private parser = lazy (ArgumentParser.Create<NtArgs>(programName = "nt"))

let private demoOptions (d: ParseResults<DemoArgs>) : Demo.DemoCommand.Options =
    let o = Demo.DemoCommand.defaults
    let digits, diabetes =
        match d.GetResult(Dataset, All) with
        | All -> true, true
        | Digits -> true, false
        | Diabetes -> false, true
    let depths =
        match d.TryGetResult Depths with
        | None -> o.Depths
        | Some s ->
            s.Split(',', StringSplitOptions.RemoveEmptyEntries ||| StringSplitOptions.TrimEntries)
            |> Array.map (fun p ->
                match Int32.TryParse p with
                | true, v when v >= 1 && v <= 50 -> v
                | _ -> raise (CliError(sprintf "--depths: \"%s\" is not a depth between 1 and 50 (e.g. --depths 1,2,3)" p)))
            |> Array.toList
    for name, v in [ "--train", d.GetResult(Train, o.Train); "--test", d.GetResult(Test, o.Test) ] do
        if v < 1 then raise (CliError(sprintf "%s: must be ≥ 1, got %d" name v))
    let cnn =
        if d.Contains No_Cnn then None
        else
            let c = Demo.DemoCommand.cnnDefaults
            let train, test, depth = d.GetResult(Cnn_Train, c.Train), d.GetResult(Cnn_Test, c.Test), d.GetResult(Cnn_Depth, c.Depth)
            for name, v in [ "--cnn-train", train; "--cnn-test", test ] do
                if v < 1 then raise (CliError(sprintf "%s: must be ≥ 1, got %d" name v))
            if depth < 1 || depth > 10 then raise (CliError(sprintf "--cnn-depth: must be between 1 and 10, got %d" depth))
            Some { c with Train = train; Test = test; Depth = depth }
    if depths.IsEmpty then raise (CliError "--depths: give at least one depth, e.g. --depths 1,2,3")
    let reg = d.TryGetResult Diag_Reg
    match reg with
    | Some r when not (Double.IsFinite r) || r < 0.0 -> raise (CliError(sprintf "--diag-reg: must be ≥ 0, got %g" r))
    | _ -> ()
    { o with
        Digits = digits
        Diabetes = diabetes
        Train = d.GetResult(Train, o.Train)
        Test = d.GetResult(Test, o.Test)
        Depths = depths
        Cnn = cnn
        DiagReg = reg
        Finite = if d.Contains No_Finite then None else o.Finite
        Plot = if d.Contains No_Plot then None else Some(d.GetResult(Out, "nt-demo.svg")) }

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
        | Some file -> sprintf "found (%s)" file
        | None when NativeInfo.disabled () -> "not used (NT_NATIVE=0)"
        | None -> "not found (managed fallback)"
    let lines =
        [ "nt", version ()
          ".NET runtime", Runtime.InteropServices.RuntimeInformation.FrameworkDescription
          "OS", sprintf "%s (%O)" Runtime.InteropServices.RuntimeInformation.OSDescription Runtime.InteropServices.RuntimeInformation.OSArchitecture
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
           | Some file, Some core -> sprintf "found (%s, core %s)" file core
           | lib, _ -> native lib)
          "native LAPACK", native (NativeInfo.lapacke ()) ]
    for name, value in lines do
        stdout.Write(sprintf "%-16s%s\n" (name + ":") value)
    stdout.Flush()


/// A command-line mistake that Argu lets through: exit code 2 and the usage hint, as Argu's own errors.
exception private UsageError of string

/// The request file of <c>nt kernel/predict</c>: an option-like word ("--bogus") is a usage error, not a file name.
let private requestFile (command: string) (path: string option) =
    match path with
    | Some p when p.StartsWith '-' && p <> "-" ->
        raise (UsageError(sprintf "unknown option '%s' for 'nt %s' (see 'nt %s --help')" p command command))
    | p -> p

let private dispatch (cancel: Threading.CancellationToken) (args: ParseResults<NtArgs>) (stdin: TextReader) (stdout: TextWriter) (stderr: TextWriter) =
    match args.GetSubCommand() with
    | Kernel k -> Progress.using stderr (fun p -> KernelCommand.runWith cancel p (requestFile "kernel" (k.TryGetResult KernelArgs.Request)) stdin stdout)
    | Predict p -> PredictCommand.run (requestFile "predict" (p.TryGetResult PredictArgs.Request)) stdin stdout
    | Demo d -> Demo.DemoCommand.run (demoOptions d) stdout stderr
    | Info -> info stdout
    | Version ->
        stdout.Write(version () + "\n")
        stdout.Flush()

/// <summary><c>nt kernel [REQUEST.json]</c>, the one-request-per-process form, read without Argu: building Argu's
/// parser reflects over every command's argument unions, ~0.3 CPU-s at each start, more than a small kernel's
/// arithmetic (issue #9 item 7). Options, help and other commands still go through Argu.</summary>
let private plainKernel (argv: string[]) : string option option =
    match argv with
    | [| "kernel" |] -> Some None
    | [| "kernel"; path |] when not (path.StartsWith '-') -> Some(Some path)
    | _ -> None

/// <summary><c>nt predict [REQUEST.json]</c> read without Argu, for the same reason as <c>plainKernel</c>.</summary>
let private plainPredict (argv: string[]) : string option option =
    match argv with
    | [| "predict" |] -> Some None
    | [| "predict"; path |] when not (path.StartsWith '-') -> Some(Some path)
    | _ -> None

/// Drops .NET's " (Parameter 'x')" suffix, naming the parameter up front unless the message already does.
let private argumentMessage (e: ArgumentException) =
    let suffix = sprintf " (Parameter '%s')" e.ParamName
    if isNull e.ParamName then e.Message
    else
        let m = if e.Message.EndsWith suffix then e.Message.Substring(0, e.Message.Length - suffix.Length) else e.Message
        // A message in the request's own words (trace_axes for the API's traceAxes) needs no prefix either.
        let snake = String.Concat(e.ParamName |> Seq.map (fun ch -> if Char.IsUpper ch then "_" + string (Char.ToLowerInvariant ch) else string ch))
        if m.StartsWith e.ParamName || m.Contains snake then m else sprintf "%s: %s" e.ParamName m

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
        | e -> sprintf "internal error (%s): %s" (e.GetType().Name) e.Message
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
        // "nt --version" alone: Argu would first ask for a command.
        if argv = [| "--version" |] then
            stdout.Write(version () + "\n")
            stdout.Flush()
        else
            // Ctrl-C (SIGINT) asks the running computation to stop at the next tile boundary; a second Ctrl-C
            // ends the process at once.
            let cancellable (f: Threading.CancellationToken -> unit) =
                use cts = new Threading.CancellationTokenSource()
                let onCancel =
                    ConsoleCancelEventHandler(fun _ e ->
                        if not cts.IsCancellationRequested then
                            e.Cancel <- true
                            cts.Cancel())
                Console.CancelKeyPress.AddHandler onCancel
                try f cts.Token
                finally Console.CancelKeyPress.RemoveHandler onCancel
            match plainKernel argv, plainPredict argv with
            | Some request, _ ->
                cancellable (fun token -> Progress.using stderr (fun p -> KernelCommand.runWith token p request stdin stdout))
            | None, Some request -> cancellable (fun _ -> PredictCommand.run request stdin stdout)
            | None, None ->
            // nt kernel/predict take no options but help: name an unknown one ("--fast") rather than letting the
            // parser blame the request file that follows it.
            match argv with
            | [||] -> ()
            | _ when argv[0] = "kernel" || argv[0] = "predict" ->
                argv[1..] |> Array.tryFind (fun a -> a.StartsWith '-' && a <> "-" && a <> "--help" && a <> "-h")
                |> Option.iter (fun a -> raise (UsageError(sprintf "unknown option '%s' for 'nt %s' (see 'nt %s --help')" a argv[0] argv[0])))
            | _ -> ()
            let args = parser.Value.ParseCommandLine(argv, raiseOnUsage = true)
            if args.Contains Version then
                stdout.Write(version () + "\n")
                stdout.Flush()
            else cancellable (fun token -> dispatch token args stdin stdout stderr)
        0
    with
    | :? OperationCanceledException as e ->
        error (describe e)
        130
    | :? ArguParseException as e when e.ErrorCode = ErrorCode.HelpText ->
        stdout.Write(e.Message.TrimEnd())
        stdout.Write("\n\n")
        let command = argv |> Array.tryFind commandHelp.ContainsKey
        stdout.Write(match command with Some c -> commandHelp[c] | None -> mainHelp)
        stdout.Flush()
        0
    | :? ArguParseException as e ->
        let first = e.Message.Split('\n').[0].Trim()
        let first = if first.StartsWith "ERROR: " then first.Substring 7 else first
        error (sprintf "%s (see 'nt --help')" (first.TrimEnd('.')))
        2
    | UsageError msg ->
        error msg
        2
    | e ->
        error (describe e)
        1
