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
            and PREFIX.cov2.npy instead of answering with nested lists; they are
            filled tile by tile (never whole in memory) and the finished tiles
            are recorded in PREFIX.nt-tiles, so that the same command run again
            after an interruption (Ctrl-C, kill, crash) resumes where it stopped;
            a file already at one of these names is refused before any work
    "overwrite" optional: true to let the answer files replace existing ones
            at the "out" prefix (default false)
    "memory_gb"  optional memory budget in GB (default: free memory less a
            margin); the tile size follows from it, and a request whose
            smallest tile cannot fit is refused with the numbers
    "batch_size" optional inputs per tile, as neural_tangents' nt.batch
            (default: the largest that fits "memory_gb"); N need not be a
            multiple of it
    "monte_carlo" optional: finite networks of the architecture's widths instead
            of the infinite limit (neural_tangents' monte_carlo_kernel_fn):
            {"n_samples": 100 or [10, 100, 1000], "seed": 0, "batch_size": 0,
             "trace_axes": [-1], "diagonal_axes": []}; the answer has only nngp
            and ntk, the mean over n_samples networks; with a list of counts
            each array gains a leading axis, one estimate per count
    "empirical" optional: one finite network drawn from {"seed": 0} (also
            "trace_axes", "diagonal_axes"), neural_tangents' empirical_kernel_fn

    A progress bar with the time left is drawn on stderr when it is a terminal.

    Relative paths resolve against the request file's folder (for stdin: the
    current folder).

RESPONSE (JSON on stdout):

    {"nngp": [[...]], "ntk": [[...]], "cov1": [...], "cov2": [...] or null,
     "elapsed_ms": 1.23}

    nngp, ntk: (N1, N2) for a network with a flat output; cov1, cov2: the
    variances of x1 and x2 (cov2 is null when x2 is absent); a quantity not
    asked for in "get" is left out; elapsed_ms times the kernel computation
    only. With "out", the same keys give the paths of the files written, and
    elapsed_ms includes writing them (tile by tile, as they are computed).
    After an odd number of Conv layers with two or more spatial axes, an
    output that keeps its spatial axes holds their pairs in reverse order,
    (N1, N2, W, W', H, H'), as neural_tangents returns it (is_reversed); the
    answer then says "is_reversed": true.

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

/// The answer's last keys: "is_reversed" only when the spatial pairs are stored in reverse order, then elapsed_ms.
let private writeElapsed (w: TextWriter) (isReversed: bool) (ms: float) =
    if isReversed then w.Write("  \"is_reversed\": true,\n")
    w.Write("  \"elapsed_ms\": ")
    w.Write(JsonArrays.formatNumber (Math.Round(ms, 3)))
    w.Write("\n}\n")

/// What to rescale when a quantity is not finite.
let private inputsOf (name: string) (hasX2: bool) =
    match name with
    | "cov1" -> "x1"
    | "cov2" -> "x2"
    | _ -> if hasX2 then "x1 and x2" else "x1"

/// Forwards reports to an optional reporter and remembers the last one (for the message of an interruption).
type private Tracker(inner: IProgress<TileProgress> option) =
    member val Last: TileProgress option = None with get, set
    interface IProgress<TileProgress> with
        member t.Report p =
            lock t (fun () -> if t.Last |> Option.forall (fun l -> l.TilesDone <= p.TilesDone) then t.Last <- Some p)
            inner |> Option.iter (fun i -> i.Report p)

/// NT_TIMINGS=1: each phase of the command writes its wall and process CPU time to stderr (the library adds its
/// own steps), the profile of small requests (issue #9 item 7).
let private phase (name: string) (f: unit -> 'T) : 'T = RequestIo.phase "nt kernel" name f

/// <summary>Runs <c>nt kernel</c>: reads the request (file, or stdin when None or "-"), computes the kernels in
/// tiles (see <c>Batching</c>) and writes the JSON response to <paramref name="stdout"/>. Every quantity is checked
/// finite before anything is written. With "out" the arrays are filled tile by tile in .npy files, resumable
/// after an interruption, and renamed into place together at the end; <paramref name="cancel"/> stops at a tile
/// boundary with an <c>OperationCanceledException</c> whose message says how to resume.</summary>
/// <exception cref="T:NeuralTangents.Cli.CliError">and the library's exceptions, for the caller to report.</exception>
let runWith (cancel: Threading.CancellationToken) (progress: IProgress<TileProgress> option) (requestPath: string option) (stdin: TextReader) (stdout: TextWriter) : unit =
    let text, baseDir = phase "read request" (fun () -> RequestIo.read requestPath stdin)
    let req = phase "parse request (arch, inputs)" (fun () -> KernelRequest.parse baseDir text)
    match FiniteKernel.modeOf text with
    | Some mode -> FiniteKernel.run cancel req mode stdout
    | None ->
    RequestIo.prepareOut req.Out
    let tracker = Tracker progress
    let options = { req.Tiling with Progress = Some(tracker :> IProgress<TileProgress>); Cancellation = cancel }
    let interrupted (e: OperationCanceledException) =
        let counts =
            match tracker.Last with
            | Some p -> (" after " + string p.TilesDone + " of " + string p.TilesTotal + " tiles")
            | None -> ""
        let how =
            match req.Out with
            | Some prefix ->
                $"the finished tiles are recorded in {TiledFiles.ledgerPath prefix}; run the same command again to resume"
            | None -> "nothing was written; give \"out\" to make a long computation resumable"
        raise (OperationCanceledException($"interrupted{counts}: {how}", e, cancel))
    let sw = Stopwatch.StartNew()
    let out = new StringWriter()
    out.NewLine <- "\n"
    out.Write("{\n")
    match req.Out with
    | Some prefix ->
        let names =
            [ if req.Get <> Ntk then "nngp"
              if req.Get.WantsNtk then "ntk"
              "cov1"
              if req.X2.IsSome then "cov2" ]
        if req.MaskConstant.IsSome then
            raise (CliError "kwargs: mask_constant with \"out\" (arrays written to files) is not supported; answer inline (remove \"out\")")
        let result =
            try phase "kernel to files" (fun () -> TiledFiles.compute options req.Layout req.Arch req.X1 req.X2 req.Get names req.Overwrite prefix)
            with :? OperationCanceledException as e -> interrupted e
        let ms = sw.Elapsed.TotalMilliseconds
        for name in [ (if req.Get <> Ntk then Some "nngp" else None); (if req.Get.WantsNtk then Some "ntk" else None); Some "cov1"; Some "cov2" ] |> List.choose id do
            out.Write("  \"" + name + "\": ")
            match result.Files |> List.tryFind (fun (n, _) -> n = name) with
            | Some(_, path) -> out.Write(JsonArrays.quote path)
            | None -> out.Write "null"
            out.Write(",\n")
        writeElapsed out result.IsReversed ms
    | None ->
        let k =
            try
                phase "kernel" (fun () ->
                    match req.MaskConstant with
                    | Some c -> Batching.computeWithMask options c req.Layout req.Arch req.X1 req.X2 req.Get
                    | None -> Batching.computeWithLayout options req.Layout req.Arch req.X1 req.X2 req.Get)
            with :? OperationCanceledException as e -> interrupted e
        let ms = sw.Elapsed.TotalMilliseconds
        let items = quantities req.Get k
        phase "finiteness check" (fun () ->
            for name, t in items do
                t |> Option.iter (RequestIo.checkFinite name ("the inputs are too large for this network; rescale " + inputsOf name req.X2.IsSome)))
        // Nothing can fail from here on but the output itself: the arrays go straight to stdout (its 64 kB buffer)
        // instead of through an in-memory answer of ~20 chars per number (80 MB of fresh pages at N = 1024).
        phase "format JSON response" (fun () ->
            for chunk in out.GetStringBuilder().GetChunks() do stdout.Write chunk.Span
            out.GetStringBuilder().Clear() |> ignore
            for name, t in items do
                stdout.Write("  \"" + name + "\": ")
                match t with
                | Some t -> JsonArrays.writeTensor stdout 2 t
                | None -> stdout.Write "null"
                stdout.Write(",\n")
            writeElapsed stdout k.IsReversed ms)
    phase "write stdout" (fun () ->
        // The builder's chunks as they are (the "out" answer; an inline answer has already gone out above): no copy
        // of the whole answer into one string.
        for chunk in out.GetStringBuilder().GetChunks() do stdout.Write chunk.Span
        stdout.Flush())

/// <summary>Runs <c>nt kernel</c> without cancellation or progress (see <c>runWith</c>).</summary>
let run (requestPath: string option) (stdin: TextReader) (stdout: TextWriter) : unit =
    runWith Threading.CancellationToken.None None requestPath stdin stdout
