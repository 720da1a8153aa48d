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
    "get"           "nngp", "ntk" or a list of them (default both)
    "t"             training time: null (default) for t = infinity, a number, or a
                    list of numbers (the answer then has a leading time axis)
    "diag_reg"      ridge added to the train-train kernel, relative to its mean
                    diagonal (default 0); "diag_reg_absolute_scale": true makes it absolute
    "learning_rate" gradient-descent step size (default 1)
    "compute_cov"   true to add the (M, M) predictive covariance (default false)
    "out"           optional PREFIX: write PREFIX.nngp.mean.npy, PREFIX.nngp.cov.npy, …

    nngp = exact Bayesian posterior of the infinite network (equivalently, training
    only its readout layer); ntk = infinite ensemble of infinitely wide networks
    trained by gradient descent on MSE, marginalised over initialisation.

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

/// <summary>Runs <c>nt predict</c>: reads the request, predicts and writes the JSON response.</summary>
let run (requestPath: string option) (stdin: TextReader) (stdout: TextWriter) : unit =
    let text, baseDir = RequestIo.read requestPath stdin
    let req = PredictRequest.parse baseDir text
    let sw = Stopwatch.StartNew()
    let predict =
        Predict.gradientDescentMseEnsemble (KernelFn.compute req.Arch) req.XTrain req.YTrain req.LearningRate
            req.DiagReg req.DiagRegAbsoluteScale
    let result = predict req.Times req.XTest req.Get req.ComputeCov
    let ms = sw.Elapsed.TotalMilliseconds
    let kinds =
        [ if req.Get <> Ntk then "nngp", result[PredictGet.Nngp]
          if req.Get.WantsNtk then "ntk", result[PredictGet.Ntk] ]
    for name, g in kinds do
        if not (Tensor.isFinite g.Mean) || (g.Covariance |> Option.exists (Tensor.isFinite >> not)) then
            fail "%s: the prediction is not finite; add a positive diag_reg (e.g. 1e-6) or rescale the inputs" name
    let out = new StringWriter()
    out.NewLine <- "\n"
    out.Write("{\n")
    for name, g in kinds do
        out.Write(sprintf "  \"%s\": {\n    \"mean\": " name)
        let items = [ yield "mean", shapeMean req g.Mean; match g.Covariance with Some c -> yield "cov", shapeCov req c | None -> () ]
        items |> List.iteri (fun i (what, t) ->
            if i > 0 then out.Write(sprintf ",\n    \"%s\": " what)
            match req.Out with
            | None -> JsonArrays.writeTensor out 4 t
            | Some prefix ->
                let path = sprintf "%s.%s.%s.npy" prefix name what
                RequestIo.writeNpy path t
                out.Write(JsonArrays.quote path))
        out.Write("\n  },\n")
    out.Write("  \"elapsed_ms\": ")
    out.Write(JsonArrays.formatNumber (Math.Round(ms, 3)))
    out.Write("\n}\n")
    stdout.Write(out.ToString())
    stdout.Flush()
