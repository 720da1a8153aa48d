/// <summary><c>nt predict</c>: predictions of infinitely wide networks (NNGP posterior, NTK-trained ensemble) from a
/// JSON request, through neural_tangents' <c>gradient_descent_mse_ensemble</c>.</summary>
[<RequireQualifiedAccess>]
module NeuralTangents.Cli.PredictCommand

open System
open System.Diagnostics
open System.IO
open NeuralTangents
open NeuralTangents.Cli.CliErrors

/// <summary>The request format, shown after the option list of <c>nt predict --help</c>.</summary>
let helpText =
    """REQUEST (a JSON object, from REQUEST.json or from stdin when it is absent or "-"):

    "arch"          the network, as for 'nt kernel' (neural_tangents' nt.stax names)
    "x_train"       training inputs (N, features): nested list or .npy path
    "y_train"       training targets (N, K) or (N,)
    "x_test"        test inputs (M, features); null/absent predicts on the training set
    "get"           "nngp", "ntk", "ntkgp" or a list of them (default ["nngp", "ntk"])
    "t"             training time: null (default) for t = infinity, a number, or a
                    list of numbers (the answer then has a leading time axis);
                    inside a list write infinity as Infinity (Python's json) or "inf"
    "diag_reg"      ridge added to the train-train kernel, relative to its mean
                    diagonal (default 0); "diag_reg_absolute_scale": true makes it absolute
    "learning_rate" gradient-descent step size (default 1)
    "compute_cov"   true to add the (M, M) predictive covariance (default false)
    "out"           optional PREFIX: write PREFIX.nngp.mean.npy, PREFIX.nngp.cov.npy, …
                    (all files or none; the folder is created when missing); a file
                    already at one of these names is refused before any work
    "overwrite"     true to let the answer files replace existing ones (default false)
    "memory_gb"     memory budget of the kernel computations in GB (default: free
                    memory less a margin), as for 'nt kernel'
    "batch_size"    inputs per kernel tile, as for 'nt kernel' (default: from memory_gb)

    nngp = exact Bayesian posterior of the infinite network (equivalently, training
    only its readout layer); ntk = infinite ensemble of infinitely wide networks
    trained by gradient descent on MSE, marginalised over initialisation;
    ntkgp = the GP posterior with the NTK as prior covariance (arXiv:2007.05864,
    neural_tangents' gp_inference), for t = infinity only.

RESPONSE (JSON on stdout):

    {"nngp": {"mean": [[...]], "cov": [[...]]}, "ntk": {...}, "elapsed_ms": 1.2}

    mean (M, K) (or (M,) for a 1-D y_train), cov (M, M) when compute_cov;
    with a list of times, (T, M, K) and (T, M, M). elapsed_ms times the kernels
    and the solves, not the parsing.

EXAMPLE (a 2-input ReLU network, 5 training points, 2 test points):

    $ nt predict examples/predict.json
    {
      "nngp": {
        "mean": [[0.5383495003702182], [0.07635236838333245]],
        "cov": [[0.008431400631157215, -6.288522813453767E-05], ...]
      },
      "ntk": {"mean": [[0.4552086924114839], [0.08647776129498838]], ...},
      "elapsed_ms": 75.3
    }
"""

/// Shapes the answer as the request did: no time axis for a single number t, no output axis for a 1-D y.
let private shapeMean (req: PredictRequest) (mean: Tensor) =
    let m = if req.Times.IsSome && not req.TimeAxis then Tensor.reshape mean.Shape[1..] mean else mean
    if req.TargetsAreVector then Tensor.reshape m.Shape[.. m.Rank - 2] m else m

let private shapeCov (req: PredictRequest) (cov: Tensor) =
    if req.Times.IsSome && not req.TimeAxis then Tensor.reshape cov.Shape[1..] cov else cov

/// The response key of a prediction.
let private keyOf (kind: PredictGet) =
    match kind with
    | PredictGet.Nngp -> "nngp"
    | PredictGet.Ntk -> "ntk"
    | PredictGet.NtkGp -> "ntkgp"

/// The file of one array of the answer with "out": PREFIX.nngp.mean.npy, PREFIX.ntk.cov.npy, …
let private outPath (prefix: string) (key: string) (what: string) = (prefix + "." + key + "." + what + ".npy")

/// Tensors of equal shape stacked along a new leading axis.
let private stack (parts: Tensor list) =
    let shape = (List.head parts).Shape
    Tensor.create (Array.append [| parts.Length |] shape) (parts |> Seq.collect (fun t -> t.Data) |> Seq.toArray)

/// The i-th slice along the leading axis.
let private slice (i: int) (t: Tensor) =
    let size = t.Data.Length / t.Shape[0]
    Tensor.create t.Shape[1..] (Array.sub t.Data (i * size) size)

/// KernelFn.compute for one network, each (x1, x2) pair computed once (NNGP and NTK together when any prediction
/// needs the NTK), so that the ensemble and NTKGP predictions share their kernels.
let private cachedKernelFn (tiling: BatchOptions) (arch: Layer) (needNtk: bool) : Tensor -> Tensor option -> Get -> Kernel =
    let cache = ResizeArray<Tensor * Tensor option * Kernel>()
    let same (a: Tensor option) (b: Tensor option) =
        match a, b with
        | None, None -> true
        | Some a, Some b -> obj.ReferenceEquals(a, b)
        | _ -> false
    fun x1 x2 get ->
        lock cache (fun () ->
            match cache |> Seq.tryFind (fun (a, b, _) -> obj.ReferenceEquals(a, x1) && same b x2) with
            | Some(_, _, k) -> k
            | None ->
                let k = Batching.compute tiling arch x1 x2 (if needNtk then Both else get)
                cache.Add((x1, x2, k))
                k)

/// <summary>Checks the network on one training input before any prediction: a network that cannot take x_train,
/// or whose kernel is not one (N1, N2) matrix, is an error even where the answer would not need a kernel (at
/// t = ∞ on the training set the prediction is y_train itself).</summary>
let private checkNetwork (req: PredictRequest) (needNtk: bool) =
    let rowSize = req.XTrain.Data.Length / req.XTrain.Shape[0]
    let one = Tensor.create (Array.append [| 1 |] req.XTrain.Shape[1..]) (Array.sub req.XTrain.Data 0 rowSize)
    let k = KernelFn.compute req.Arch one None (if needNtk then Both else Nngp)
    if k.Nngp.Shape <> [| 1; 1 |] then
        fail $"arch: the kernel of one x_train input has shape {RequestIo.showShape k.Nngp.Shape}, not (1, 1); nt predict needs a network with one flat output per input (end one with spatial outputs in Flatten)"

/// NT_TIMINGS=1: each phase of the command writes its wall and process CPU time to stderr; the library adds the
/// prediction's own steps (kernels, factorisations, solves, products) as "predict: …".
let private phase (name: string) (f: unit -> 'T) : 'T = RequestIo.phase "nt predict" name f

/// The advice of the kernel's memory refusals (Batching, Memory) that fits nt kernel, and predict's own.
let private kernelAdviceTiles = ", or \"out\" to write the answer to files tile by tile"
let private kernelAdviceBlocks = "compute the kernel in blocks of rows of x1 and x2 and assemble them"
let private predictWhole =
    "nt predict holds each kernel whole (train–train N×N, test–train M×N, and test–test M×M with compute_cov), so send x_test in several requests or leave compute_cov off"

/// <summary>Runs <c>nt predict</c>: reads the request, predicts and writes the JSON response. Every array is
/// checked finite before anything is written; with "out" the files are written all or nothing.</summary>
let run (requestPath: string option) (stdin: TextReader) (stdout: TextWriter) : unit =
    let text, baseDir = phase "read request" (fun () -> RequestIo.read requestPath stdin)
    let req = phase "parse request (arch, inputs)" (fun () -> PredictRequest.parse baseDir text)
    RequestIo.prepareOut req.Out
    // The answer files this request writes must not exist yet, unless "overwrite": refused before any kernel.
    req.Out |> Option.iter (fun prefix ->
        RequestIo.refuseExisting req.Overwrite
            [ for k in req.Kinds do
                  outPath prefix (keyOf k) "mean"
                  if req.ComputeCov then outPath prefix (keyOf k) "cov" ])
    let sw = Stopwatch.StartNew()
    // Ctrl-C stops at the next step boundary (after a kernel, a factorisation or a solve); nothing is written.
    use cancel = new System.Threading.CancellationTokenSource()
    let lastStep = ref "none"
    let onCancel = ConsoleCancelEventHandler(fun _ e -> e.Cancel <- true; cancel.Cancel())
    Console.CancelKeyPress.AddHandler onCancel
    use _restore = { new IDisposable with member _.Dispose() = Console.CancelKeyPress.RemoveHandler onCancel }
    let control =
        { Cancellation = cancel.Token
          Progress = Some { new IProgress<PredictProgress> with member _.Report p = lastStep.Value <- p.Step } }
    let needNtk = req.Kinds |> List.exists (fun k -> k <> PredictGet.Nngp)
    phase "check network on one input" (fun () -> checkNetwork req needNtk)
    let kernelFn = cachedKernelFn req.Tiling req.Arch needNtk
    // Without NTKGP nothing else needs the train kernel, so the ensemble computes it itself, in tiles, and factors
    // it in place (two N×N arrays); with NTKGP both share the cached kernels. Ctrl-C also stops the tiles.
    let ensemble =
        lazy
            (if List.contains PredictGet.NtkGp req.Kinds then
                 Predict.gradientDescentMseEnsemble kernelFn req.XTrain req.YTrain req.LearningRate req.DiagReg
                     req.DiagRegAbsoluteScale
             else
                 Predict.gradientDescentMseEnsembleOfTiledNetwork control req.Tiling req.Arch req.XTrain req.YTrain
                     req.LearningRate req.DiagReg req.DiagRegAbsoluteScale)
    let ensembleGet =
        match List.contains PredictGet.Nngp req.Kinds, List.contains PredictGet.Ntk req.Kinds with
        | true, true -> Some Both
        | true, false -> Some Nngp
        | false, true -> Some Ntk
        | false, false -> None
    // The NTKGP posterior (arXiv:2007.05864): GP inference with the NTK as prior covariance, at t = ∞ only.
    let ntkGp () =
        let ntk (k: Kernel) = KernelMatrices.ofNtk k.Ntk.Value
        let train = ntk (kernelFn req.XTrain None Both)
        let gp = Predict.gpInference train req.YTrain req.DiagReg req.DiagRegAbsoluteScale [ PredictGet.NtkGp ]
        let testTrain = req.XTest |> Option.map (fun x -> ntk (kernelFn x (Some req.XTrain) Both))
        let testTest =
            if not req.ComputeCov then None
            else Some(match req.XTest with Some x -> ntk (kernelFn x None Both) | None -> train)
        (gp testTrain testTest)[PredictGet.NtkGp]
    // The predictions at t = ∞ (no time axis) and at the finite times (leading time axis), each computed once.
    let atInfinity =
        lazy
            (let e = match ensembleGet with Some g -> ensemble.Value None req.XTest g req.ComputeCov | None -> Map.empty
             if List.contains PredictGet.NtkGp req.Kinds then e.Add(PredictGet.NtkGp, ntkGp ()) else e)
    let finiteTimes = req.Times |> Option.map (Array.filter Double.IsFinite) |> Option.defaultValue [||]
    let atFinite =
        lazy
            (match ensembleGet with
             | Some g when finiteTimes.Length > 0 -> ensemble.Value (Some finiteTimes) req.XTest g req.ComputeCov
             | _ -> Map.empty)
    let predictionOf (kind: PredictGet) : Gaussian =
        match req.Times with
        | None -> atInfinity.Value[kind]
        | Some ts ->
            // One slice per requested time, in the request's order: finite times from the time-axis answer,
            // infinite ones from the t = ∞ answer.
            let mutable f = 0
            let parts =
                ts |> Array.toList |> List.map (fun t ->
                    if Double.IsFinite t then
                        let g = atFinite.Value[kind]
                        f <- f + 1
                        slice (f - 1) g.Mean, g.Covariance |> Option.map (slice (f - 1))
                    else
                        let g = atInfinity.Value[kind]
                        g.Mean, g.Covariance)
            { Mean = stack (List.map fst parts)
              Covariance = if req.ComputeCov then Some(stack (parts |> List.map (snd >> Option.get))) else None }
    let predictions =
        try phase "predictions (kernels, linear algebra)" (fun () -> req.Kinds |> List.map (fun k -> keyOf k, predictionOf k))
        with
        | NeuralTangentsException msg when msg.Contains kernelAdviceTiles || msg.Contains kernelAdviceBlocks ->
            // The kernel's own advice speaks of nt kernel's files and blocks of x1 and x2; predict holds each kernel whole.
            raise (NeuralTangentsException(msg.Replace(kernelAdviceTiles, ", or use fewer rows: " + predictWhole).Replace(kernelAdviceBlocks, "use fewer rows: " + predictWhole)))
        | :? OperationCanceledException as e ->
            // Re-raised as a cancellation: the CLI exits 130 for it, as nt kernel does.
            let after = if lastStep.Value = "none" then "before the first step ended" else $"after the step '{lastStep.Value}'"
            raise (OperationCanceledException($"cancelled (Ctrl-C) {after}; nothing was written", e))
    let ms = sw.Elapsed.TotalMilliseconds
    let arrays =
        [ for name, g in predictions do
              yield name, "mean", shapeMean req g.Mean
              match g.Covariance with
              | Some c -> yield name, "cov", shapeCov req c
              | None -> () ]
    // The means are linear in y_train, and a solve magnifies it by at most the condition number, which a sensible
    // diag_reg keeps below 1/ε ≈ 4.5e15: targets within a factor 1/ε of the largest double are then the cause of a
    // non-finite mean, and diag_reg or the inputs are not.
    let yLargest = System.Numerics.Tensors.TensorPrimitives.MaxMagnitude(ReadOnlySpan req.YTrain.Data)
    let targetsTooLarge = yLargest > Double.MaxValue * Math.Pow(2.0, -52.0)
    phase "finiteness check" (fun () ->
        for name, what, t in arrays do
            let advice =
                if what = "mean" && targetsTooLarge then
                    ("y_train's entries reach " + Show.g yLargest + ", too close to the largest double (1.8e308) for the solve (the means are linear in y_train); divide y_train by a scale such as " + Show.g yLargest + " and multiply the means by it")
                else "add a positive diag_reg (e.g. 1e-6) or rescale the inputs"
            RequestIo.checkFinite $"{name}.{what}" advice t)
    // Inline arrays (no "out") go straight to stdout once checked: nothing but the output can fail after this. With
    // "out" the answer waits in memory until the .npy files are written, so a failed write prints nothing.
    let buffered = if req.Out.IsSome then Some(new StringWriter()) else None
    let out : TextWriter = match buffered with Some b -> b :> TextWriter | None -> stdout
    out.Write("{\n")
    let files = ResizeArray()
    for name, _ in predictions do
        out.Write $"  \"{name}\": {{\n"
        let mine = arrays |> List.filter (fun (n, _, _) -> n = name)
        mine |> List.iteri (fun i (_, what, t) ->
            out.Write $"""{(if i > 0 then ",\n" else "")}    "{what}": """
            match req.Out with
            | None -> JsonArrays.writeTensor out 4 t
            | Some prefix ->
                let path = outPath prefix name what
                files.Add((path, t))
                out.Write(JsonArrays.quote path))
        out.Write("\n  },\n")
    out.Write("  \"elapsed_ms\": ")
    out.Write(JsonArrays.formatNumber (Math.Round(ms, 3)))
    out.Write("\n}\n")
    phase "write .npy files" (fun () -> RequestIo.writeAll req.Overwrite (List.ofSeq files))
    // The builder's chunks as they are: no copy of the whole answer into one string.
    phase "write stdout" (fun () ->
        buffered |> Option.iter (fun b -> for chunk in b.GetStringBuilder().GetChunks() do stdout.Write chunk.Span)
        stdout.Flush())
