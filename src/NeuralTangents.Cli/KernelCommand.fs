/// <summary><c>nt kernel</c>: the exact infinite-width NNGP and NTK of a network, from a JSON request.</summary>
[<RequireQualifiedAccess>]
module NeuralTangents.Cli.KernelCommand

open System
open System.Diagnostics
open System.IO
open NeuralTangents
open NeuralTangents.Cli.CliErrors

/// <summary>The request format, shown after the option list of <c>nt kernel --help</c>.</summary>
let helpText =
    """REQUEST (a JSON object, from REQUEST.json or from stdin when it is absent or "-"):

    "arch"  the network, with neural_tangents' nt.stax layer names and arguments
            (omitted arguments take neural_tangents' defaults)
    "x1"    inputs, batch axis first, e.g. (N1, features): a nested list of numbers,
            or the path of a .npy file (float64 or float32, C order)
    "x2"    second inputs in the same forms, or null/absent for x2 = x1
    "get"   "nngp", "ntk" or a list of them (default ["nngp", "ntk"])
    "kwargs" optional kernel_fn keyword arguments: {"diagonal_spatial": false} for
            every pair of positions (N1, N2, H, H', W, W', ...), true for same
            positions only (N1, N2, H, W, ...); {"diagonal_batch": false} for
            (N, N, ...) cov1/cov2 (default: the layout neural_tangents picks)
    "out"   optional PREFIX: write PREFIX.nngp.npy, PREFIX.ntk.npy, PREFIX.cov1.npy
            and PREFIX.cov2.npy instead of answering with nested lists
    "monte_carlo" optional: finite networks of the architecture's widths instead
            of the infinite limit (neural_tangents' monte_carlo_kernel_fn):
            {"n_samples": 100 or [10, 100, 1000], "seed": 0, "batch_size": 0,
             "trace_axes": [-1], "diagonal_axes": []}; the answer has only nngp
            and ntk, the mean over n_samples networks; with a list of counts
            each array gains a leading axis, one estimate per count
    "empirical" optional: one finite network drawn from {"seed": 0} (also
            "trace_axes", "diagonal_axes"), neural_tangents' empirical_kernel_fn

    Relative paths resolve against the request file's folder (for stdin: the
    current folder).

RESPONSE (JSON on stdout):

    {"nngp": [[...]], "ntk": [[...]], "cov1": [...], "cov2": [...] or null,
     "elapsed_ms": 1.23}

    nngp, ntk: (N1, N2) for a network with a flat output; cov1, cov2: the
    variances of x1 and x2 (cov2 is null when x2 is absent); a quantity not
    asked for in "get" is left out; elapsed_ms times the kernel computation
    only. With "out", the same keys give the paths of the files written.

EXAMPLE:

    $ cat mlp.json
    {"arch": {"layer": "serial", "layers": [
                {"layer": "Dense", "out_dim": 512, "W_std": 1.5, "b_std": 0.05},
                {"layer": "Relu"},
                {"layer": "Dense", "out_dim": 1}]},
     "x1": [[0.1, 0.2, 0.3], [-0.5, 0.4, 1.0]],
     "get": "nngp"}
    $ nt kernel mlp.json
    {
      "nngp": [
        [0.053750000000000006, 0.1317827072833715],
        [0.1317827072833715, 0.53]
      ],
      "cov1": [0.053750000000000006, 0.53],
      "cov2": null,
      "elapsed_ms": 0.412
    }
"""

/// The quantities of a kernel that the response holds, in order; None marks a null (cov2 without x2).
let private quantities (get: Get) (k: Kernel) : (string * Tensor option) list =
    [ if get <> Ntk then "nngp", Some k.Nngp
      if get.WantsNtk then "ntk", k.Ntk
      "cov1", Some k.Cov1
      "cov2", k.Cov2 ]

let private writeElapsed (w: TextWriter) (ms: float) =
    w.Write("  \"elapsed_ms\": ")
    w.Write(JsonArrays.formatNumber (Math.Round(ms, 3)))
    w.Write("\n}\n")

/// What to rescale when a quantity is not finite.
let private inputsOf (name: string) (hasX2: bool) =
    match name with
    | "cov1" -> "x1"
    | "cov2" -> "x2"
    | _ -> if hasX2 then "x1 and x2" else "x1"

/// <summary>Runs <c>nt kernel</c>: reads the request (file, or stdin when None or "-"), computes the kernels and
/// writes the JSON response to <paramref name="stdout"/>. Every quantity is checked finite before anything is
/// written; with "out" the files are written all or nothing.</summary>
/// <exception cref="T:NeuralTangents.Cli.CliError">and the library's exceptions, for the caller to report.</exception>
let run (requestPath: string option) (stdin: TextReader) (stdout: TextWriter) : unit =
    let text, baseDir = RequestIo.read requestPath stdin
    let req = KernelRequest.parse baseDir text
    match FiniteKernel.modeOf text with
    | Some mode -> FiniteKernel.run req mode stdout
    | None ->
    RequestIo.prepareOut req.Out
    let sw = Stopwatch.StartNew()
    let k = KernelFn.computeWithLayout req.Layout req.Arch req.X1 req.X2 req.Get
    let ms = sw.Elapsed.TotalMilliseconds
    let items = quantities req.Get k
    for name, t in items do
        t |> Option.iter (RequestIo.checkFinite name (sprintf "the inputs are too large for this network; rescale %s" (inputsOf name req.X2.IsSome)))
    // Build the whole answer before writing, so an error leaves no half-written output.
    let out = new StringWriter()
    out.NewLine <- "\n"
    out.Write("{\n")
    let files = ResizeArray()
    for name, t in items do
        out.Write(sprintf "  \"%s\": " name)
        match t, req.Out with
        | Some t, None -> JsonArrays.writeTensor out 2 t
        | Some t, Some prefix ->
            let path = sprintf "%s.%s.npy" prefix name
            files.Add((path, t))
            out.Write(JsonArrays.quote path)
        | None, _ -> out.Write "null"
        out.Write(",\n")
    writeElapsed out ms
    RequestIo.writeAll (List.ofSeq files)
    stdout.Write(out.ToString())
    stdout.Flush()
