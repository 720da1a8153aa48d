/// <summary>The command line of <c>nt</c>, read by hand: four commands, one request file or a dozen demo options.
/// A reflection-built parser cost ~0.3 CPU-s at each start, more than a small kernel's arithmetic (issue #9 item 7),
/// and cannot run in a Native AOT build.</summary>
[<RequireQualifiedAccess>]
module NeuralTangents.Cli.CommandLine

open System
open System.Globalization

/// The data sets of <c>nt demo --dataset</c>.
type DemoDataset =
    | Digits
    | Diabetes
    | All

/// <c>nt demo</c>'s options as given; None where the option is absent.
type DemoArgs =
    { Dataset: DemoDataset option
      Train: int option
      Test: int option
      Depths: string option
      CnnTrain: int option
      CnnTest: int option
      CnnDepth: int option
      NoCnn: bool
      DiagReg: float option
      Out: string option
      NoPlot: bool
      NoFinite: bool }

/// What the command line asks for.
type Command =
    /// <c>nt kernel [REQUEST.json]</c>: the request file, or stdin when None or "-".
    | Kernel of request: string option
    /// <c>nt predict [REQUEST.json]</c>.
    | Predict of request: string option
    | Demo of DemoArgs
    | Info
    | Version
    /// <c>--help</c>: the help of the command named ("" for nt itself).
    | Help of command: string

/// A command-line mistake: exit code 2, the message as one line.
exception UsageError of string with
    override e.Message = e.Data0

/// Usage and option lines of each command's help, keyed by its name ("" for nt itself).
let usage =
    Map [ "",
          """USAGE: nt [--help] [--version] <command> [<options>]

COMMANDS:

    kernel [<REQUEST.json>]
                          exact infinite-width NNGP and NTK kernels of a
                          network (nt kernel --help)
    predict [<REQUEST.json>]
                          predictions of infinitely wide networks: NNGP
                          posterior, NTK-trained ensemble (nt predict --help)
    demo <options>        infinite networks on shipped real data: digits and
                          diabetes, with a plot (nt demo --help)
    info                  version, .NET runtime, cores, SIMD, the
                          matrix-product kernel and native BLAS/LAPACK in use

OPTIONS:

    --version             print the version
    --help, -h            display this help."""
          "kernel",
          """USAGE: nt kernel [--help] [<REQUEST.json>]

    <REQUEST.json>        the request file (see REQUEST below); stdin when
                          absent or "-"
    --help, -h            display this help."""
          "predict",
          """USAGE: nt predict [--help] [<REQUEST.json>]

    <REQUEST.json>        the request file (see REQUEST below); stdin when
                          absent or "-"
    --help, -h            display this help."""
          "demo",
          """USAGE: nt demo [--help] [--dataset <digits|diabetes|all>] [--train <N>]
               [--test <N>] [--depths <1,2,3>] [--cnn-train <N>]
               [--cnn-test <N>] [--cnn-depth <D>] [--no-cnn] [--diag-reg <X>]
               [--out <PATH>] [--no-plot] [--no-finite]

OPTIONS:

    --dataset <digits|diabetes|all>
                          digits, diabetes or all (default all)
    --train <N>           training rows (default 1000 digits; diabetes uses at
                          most 300)
    --test <N>            digits test images (default 500; diabetes tests on
                          the rest)
    --depths <1,2,3>      comma-separated MLP depths for digits (default 1,2,3)
    --cnn-train <N>       digits training images of the CNN-GAP (default 200;
                          its kernel costs ~4096x the MLP's per pair)
    --cnn-test <N>        digits test images of the CNN-GAP (default 100)
    --cnn-depth <D>       Conv + Relu blocks of the CNN-GAP (default 2)
    --no-cnn              leave the CNN-GAP rows out
    --diag-reg <X>        ridge relative to the mean kernel diagonal (default:
                          digits 1e-4, diabetes 1)
    --out <PATH>          stem of the figures: STEM-<figure>.png and .svg
                          (default nt-demo in the current folder)
    --no-plot             do not write the figures
    --no-finite           leave out the finite-width networks trained by
                          gradient descent
    --help, -h            display this help."""
          "info",
          """USAGE: nt info [--help]

Prints the version, the .NET runtime, the cores, the SIMD widths, the
matrix-product kernel and the native BLAS/LAPACK libraries in use.""" ]

let private isHelp (a: string) = a = "--help" || a = "-h"

let private isOption (a: string) = a.StartsWith '-' && a <> "-"

let private commands = "kernel, predict, demo or info"

/// <c>nt kernel/predict</c>: at most one request file, no options but help.
let private requestCommand (name: string) (rest: string[]) =
    match rest |> Array.tryFind isOption |> Option.filter (isHelp >> not) with
    | Some a -> raise (UsageError("unknown option '" + a + "' for 'nt " + name + "' (see 'nt " + name + " --help')"))
    | None ->
        if rest |> Array.exists isHelp then Help name
        else
            match rest with
            | [||] -> if name = "kernel" then Kernel None else Predict None
            | [| file |] -> if name = "kernel" then Kernel(Some file) else Predict(Some file)
            | _ ->
                raise (UsageError("'nt " + name + "' takes one request file, got a second: '" + rest[1] + "' (see 'nt " + name + " --help')"))

let private noDemoArgs =
    { Dataset = None; Train = None; Test = None; Depths = None; CnnTrain = None; CnnTest = None; CnnDepth = None
      NoCnn = false; DiagReg = None; Out = None; NoPlot = false; NoFinite = false }

/// <c>nt demo</c>'s options, each at most once; the values' ranges are checked by the demo.
let private demo (rest: string[]) =
    let fail (message: string) = raise (UsageError(message + " (see 'nt demo --help')"))
    let mutable d = noDemoArgs
    let seen = Collections.Generic.HashSet<string>()
    let mutable i = 0
    while i < rest.Length do
        let a = rest[i]
        if isHelp a then i <- rest.Length
        else
            if not (isOption a) then fail ("unexpected argument '" + a + "' for 'nt demo'")
            if not (seen.Add a) then fail ("option '" + a + "' is given more than once")
            // The option's value: the next word, which must not be another option.
            let value (what: string) =
                if i + 1 >= rest.Length || rest[i + 1].StartsWith "--" then fail ("option '" + a + "' must be followed by " + what)
                i <- i + 1
                rest[i]
            let integer () =
                let s = value "<N>"
                match Int32.TryParse(s, NumberStyles.Integer, CultureInfo.InvariantCulture) with
                | true, v -> Some v
                | _ -> fail (a + ": '" + s + "' is not an integer")
            match a with
            | "--dataset" ->
                let s = value "<digits|diabetes|all>"
                let set =
                    match s.ToLowerInvariant() with
                    | "digits" -> Digits
                    | "diabetes" -> Diabetes
                    | "all" -> All
                    | _ -> fail ("--dataset: '" + s + "' is not one of digits, diabetes, all")
                d <- { d with Dataset = Some set }
            | "--train" -> d <- { d with Train = integer () }
            | "--test" -> d <- { d with Test = integer () }
            | "--depths" -> d <- { d with Depths = Some(value "<1,2,3>") }
            | "--cnn-train" -> d <- { d with CnnTrain = integer () }
            | "--cnn-test" -> d <- { d with CnnTest = integer () }
            | "--cnn-depth" -> d <- { d with CnnDepth = integer () }
            | "--no-cnn" -> d <- { d with NoCnn = true }
            | "--diag-reg" ->
                let s = value "<X>"
                match Double.TryParse(s, NumberStyles.Float, CultureInfo.InvariantCulture) with
                | true, v -> d <- { d with DiagReg = Some v }
                | _ -> fail ("--diag-reg: '" + s + "' is not a number")
            | "--out" -> d <- { d with Out = Some(value "<PATH>") }
            | "--no-plot" -> d <- { d with NoPlot = true }
            | "--no-finite" -> d <- { d with NoFinite = true }
            | _ -> fail ("unknown option '" + a + "' for 'nt demo'")
            i <- i + 1
    if rest |> Array.exists isHelp then Help "demo" else Demo d

/// <summary>Reads the command line (without the program name).</summary>
/// <exception cref="T:NeuralTangents.Cli.CommandLine.UsageError">the line asks for nothing nt knows.</exception>
let parse (argv: string[]) : Command =
    match argv with
    | [||] -> raise (UsageError("no command given: use " + commands + " (see 'nt --help')"))
    | _ when isHelp argv[0] -> Help ""
    | [| "--version" |] -> Version
    | _ ->
        let rest = argv[1..]
        match argv[0] with
        | "kernel"
        | "predict" -> requestCommand argv[0] rest
        | "demo" -> demo rest
        | "info" ->
            match rest with
            | [||] -> Info
            | _ when Array.exists isHelp rest -> Help "info"
            | _ -> raise (UsageError("'nt info' takes no arguments, got '" + rest[0] + "'"))
        | "--version" -> raise (UsageError("'nt --version' takes no arguments, got '" + rest[0] + "'"))
        | a when isOption a -> raise (UsageError("unknown option '" + a + "' (see 'nt --help')"))
        | a -> raise (UsageError("unknown command '" + a + "': use " + commands + " (see 'nt --help')"))
