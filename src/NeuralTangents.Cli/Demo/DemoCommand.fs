/// <summary><c>nt demo</c>: infinitely wide networks on the shipped real data — digits classification and diabetes
/// regression with the exact NNGP posterior and the NTK-trained infinite ensemble — as a results table and a plot.</summary>
[<RequireQualifiedAccess>]
module NeuralTangents.Cli.Demo.DemoCommand

open System
open System.Diagnostics
open System.IO
open MathNet.Numerics.LinearAlgebra
open Spectre.Console
open NeuralTangents
open NeuralTangents.Cli.CliErrors

/// <summary>What the demo runs.</summary>
type Options =
    { Digits: bool
      Diabetes: bool
      /// Training rows (digits; diabetes uses min(Train, 300)).
      Train: int
      /// Test rows (digits; diabetes tests on every row it does not train on).
      Test: int
      Depths: int list
      /// Ridge relative to the mean kernel diagonal; None takes each data set's default (digits 1e-4: labels are
      /// exact; diabetes 1: an observation noise as large as the prior signal, matching its R² ≈ 0.5).
      DiagReg: float option
      /// SVG path, or None for no plot.
      Plot: string option }

/// <summary>Shown after the option list of <c>nt demo --help</c>.</summary>
let helpText =
    """nt demo runs, offline, on data sets shipped with the tool (data/README.md):

    digits    UCI optical digits (8x8 images as 64-vectors scaled to [0, 1]), one-hot
              targets; NNGP and NTK test accuracy for each depth and for Relu and Erf
    diabetes  Efron et al. (2004), standardised; test RMSE and predictive spread of the
              NNGP posterior and of the NTK ensemble, and the NTK ensemble along
              training time t

It prints a results table on stdout (a progress display goes to stderr on a
terminal) and writes an SVG plot: digits accuracy vs depth; the NTK ensemble's
diabetes test RMSE and posterior σ vs training time t; and the NNGP posterior
mean ± 2σ against the truth on test patients.

EXAMPLES:

    $ nt demo
    $ nt demo --dataset digits --depths 1,2,3,4,5 --train 1200 --test 500
    $ nt demo --dataset diabetes --out diabetes.svg
"""

let digitsDiagReg = 1e-4
let diabetesDiagReg = 1.0

let defaults =
    { Digits = true; Diabetes = true; Train = 1000; Test = 500; Depths = [ 1; 2; 3 ]; DiagReg = None; Plot = Some "nt-demo.svg" }

/// <summary>One digits configuration's test accuracies.</summary>
type DigitsRow = { Activation: string; Depth: int; NngpAccuracy: float; NtkAccuracy: float; Seconds: float }

/// <summary>Diabetes results, in the target's original units.</summary>
type DiabetesResult =
    { Train: int
      Test: int
      TargetStd: float
      /// RMSE of predicting the training mean.
      BaselineRmse: float
      NngpRmse: float
      NtkRmse: float
      /// Mean posterior standard deviation of f at the test points, √(mean diag cov) (no observation noise).
      NngpStd: float
      NtkStd: float
      /// NTK ensemble test RMSE along training time t.
      Trajectory: (float * float)[]
      /// NTK ensemble mean posterior standard deviation of f along training time t (the prior's at t = 0).
      StdTrajectory: (float * float)[] }

type Results = { Digits: DigitsRow list; Diabetes: DiabetesResult option; Plot: string option; Seconds: float }

/// The demo network: depth × (Dense(512, W_std=1.5, b_std=0.05), activation), then a Dense readout.
let network (activation: Layer) (depth: int) (outputs: int) =
    Stax.serial
        [ for _ in 1 .. depth do
            yield Stax.dense 512 1.5 (Some 0.05)
            yield activation
          yield Stax.dense outputs 1.5 (Some 0.05) ]

let private argmaxRows (t: Tensor) =
    let k = t.Shape[1]
    Array.init t.Shape[0] (fun i ->
        let mutable best = 0
        for j in 1 .. k - 1 do
            if t.Data[i * k + j] > t.Data[i * k + best] then best <- j
        best)

let private accuracy (labels: int[]) (mean: Tensor) =
    let p = argmaxRows mean
    float (Array.fold2 (fun acc a b -> if a = b then acc + 1 else acc) 0 p labels) / float labels.Length

let private rmse (scale: float) (expected: Tensor) (mean: Tensor) =
    scale * sqrt (Array.fold2 (fun acc a b -> acc + (a - b) * (a - b)) 0.0 expected.Data mean.Data / float expected.Length)

let private meanDiag (c: Tensor) =
    let m = c.Shape[c.Rank - 1]
    let off = c.Length - m * m // the last (M, M) block
    (Seq.init m (fun i -> c.Data[off + i * m + i]) |> Seq.sum) / float m

let private digits (progress: string -> unit) (o: Options) =
    let split = Datasets.digits o.Train o.Test
    let labels = split.TestLabels.Value
    [ for name, act in [ "Relu", Stax.relu; "Erf", Stax.erf 1.0 1.0 0.0 ] do
        for depth in o.Depths do
            progress (sprintf "digits: %s, depth %d — kernels of %d + %d images" name depth o.Train o.Test)
            let sw = Stopwatch.StartNew()
            let net = network act depth 10
            let kTrain = KernelFn.compute net split.XTrain None Both
            let kTest = KernelFn.compute net split.XTest (Some split.XTrain) Both
            let reg = defaultArg o.DiagReg digitsDiagReg
            let predict = Predict.gpInference (KernelMatrices.ofKernel kTrain) split.YTrain reg false [ PredictGet.Nngp; PredictGet.Ntk ]
            let r = predict (Some(KernelMatrices.ofKernel kTest)) None
            yield { Activation = name
                    Depth = depth
                    NngpAccuracy = accuracy labels r[PredictGet.Nngp].Mean
                    NtkAccuracy = accuracy labels r[PredictGet.Ntk].Mean
                    Seconds = sw.Elapsed.TotalSeconds } ]

/// Log-spaced times covering the NTK ensemble's whole trajectory: from before the fastest mode moves to after the
/// slowest converges (the modes relax as e^{−c·λ·t} with c = η/(N·K), see Predict.gradientDescentMseEnsemble).
let private timeGrid (ntkTrain: Tensor) (n: int) (k: int) =
    let evals = (Tensor.toMatrix ntkTrain).Evd(Symmetricity.Symmetric).EigenValues |> Seq.map (fun c -> c.Real) |> Seq.toArray
    let lmax = Array.max evals
    let lmin = max (lmax * 1e-8) (Array.min evals)
    let c = 1.0 / float (n * k)
    let lo, hi = log10 (0.01 / (c * lmax)), log10 (10.0 / (c * lmin))
    Array.init 30 (fun i -> 10.0 ** (lo + (hi - lo) * float i / 29.0))

let private diabetes (progress: string -> unit) (o: Options) =
    let split = Datasets.diabetes (min o.Train 300)
    let scale = split.TargetScale
    progress (sprintf "diabetes: kernels of %d + %d patients" split.XTrain.Shape[0] split.XTest.Shape[0])
    let net = network Stax.relu 2 1
    let kTrain = KernelFn.compute net split.XTrain None Both
    let kTest = KernelFn.compute net split.XTest (Some split.XTrain) Both
    let kTT = KernelFn.compute net split.XTest None Both
    let reg = defaultArg o.DiagReg diabetesDiagReg
    let predict = Predict.gpInference (KernelMatrices.ofKernel kTrain) split.YTrain reg false [ PredictGet.Nngp; PredictGet.Ntk ]
    let r = predict (Some(KernelMatrices.ofKernel kTest)) (Some(KernelMatrices.ofKernel kTT))
    progress "diabetes: NTK ensemble along training time"
    let times = timeGrid kTrain.Ntk.Value split.XTrain.Shape[0] 1
    let ensemble = Predict.gradientDescentMseEnsemble (KernelFn.compute net) split.XTrain split.YTrain 1.0 reg false
    let along = ensemble (Some times) (Some split.XTest) Ntk true
    let traj = along[PredictGet.Ntk].Mean
    let covs = along[PredictGet.Ntk].Covariance.Value
    let m = split.XTest.Shape[0]
    let trajectory =
        times |> Array.mapi (fun i t -> t, rmse scale split.YTest (Tensor.create [| m; 1 |] traj.Data[i * m .. (i + 1) * m - 1]))
    let stdTrajectory =
        times |> Array.mapi (fun i t -> t, scale * sqrt (meanDiag (Tensor.create [| m; m |] covs.Data[i * m * m .. (i + 1) * m * m - 1])))
    let g = r[PredictGet.Nngp]
    let h = r[PredictGet.Ntk]
    let result =
        { Train = split.XTrain.Shape[0]
          Test = m
          TargetStd = scale
          BaselineRmse = rmse scale split.YTest (Tensor.zeros split.YTest.Shape)
          NngpRmse = rmse scale split.YTest g.Mean
          NtkRmse = rmse scale split.YTest h.Mean
          NngpStd = scale * sqrt (meanDiag g.Covariance.Value)
          NtkStd = scale * sqrt (meanDiag h.Covariance.Value)
          Trajectory = trajectory
          StdTrajectory = stdTrajectory }
    result, (split, g)

let private palette = [| "#1f77b4"; "#d62728"; "#2ca02c"; "#ff7f0e" |]

let private line label colour stroke markers points : Svg.Series =
    { Label = label; Colour = colour; Stroke = stroke; Markers = markers; Points = points; Band = None }

let private plot (path: string) (o: Options) (rows: DigitsRow list) (diab: (DiabetesResult * (Datasets.Split * Gaussian)) option) =
    let panels =
        [ if not rows.IsEmpty then
            yield
                { Svg.Title = "Digits: test accuracy of infinite networks"
                  Svg.XLabel = "depth (Dense + activation blocks)"
                  Svg.YLabel = "test accuracy (%)"
                  Svg.LogX = false
                  Svg.Series =
                    [ for i, (act, kind) in List.indexed [ "Relu", "NNGP"; "Relu", "NTK"; "Erf", "NNGP"; "Erf", "NTK" ] ->
                        rows |> List.filter (fun r -> r.Activation = act)
                        |> List.map (fun r -> float r.Depth, 100.0 * (if kind = "NNGP" then r.NngpAccuracy else r.NtkAccuracy))
                        |> List.toArray
                        |> line (sprintf "%s %s" kind act) palette[i] (if kind = "NTK" then Svg.Dashed else Svg.Solid) true ]
                  // The axis spans only what the data do: say how much one test image is worth.
                  Svg.Notes =
                    [ sprintf "%d train, %d test;" o.Train o.Test
                      sprintf "1 test image = %.2g%%" (100.0 / float o.Test)
                      sprintf "t = ∞, diag_reg %g" (defaultArg o.DiagReg digitsDiagReg) ] }
          match diab with
          | Some(d, (split, g)) ->
              let t0, t1 = fst d.Trajectory[0], fst d.Trajectory[d.Trajectory.Length - 1]
              yield
                  { Svg.Title = "Diabetes: NTK ensemble during training"
                    Svg.XLabel = "training time t (log scale)"
                    Svg.LogX = true
                    Svg.YLabel = "test RMSE, posterior σ of f"
                    Svg.Series =
                      [ line "NTK ens. RMSE" palette[1] Svg.Solid true d.Trajectory
                        line "NTK ens. σ of f" palette[3] Svg.Solid true d.StdTrajectory
                        line "NTK RMSE, t = ∞" palette[1] Svg.Dashed false [| t0, d.NtkRmse; t1, d.NtkRmse |]
                        line "NNGP RMSE" palette[0] Svg.Dashed false [| t0, d.NngpRmse; t1, d.NngpRmse |]
                        line "predict the mean" "#777777" Svg.Dashed false [| t0, d.BaselineRmse; t1, d.BaselineRmse |] ]
                    Svg.Notes =
                      [ sprintf "%d train, %d test;" d.Train d.Test
                        "σ: posterior std of f"
                        "(mean over test points,"
                        "no noise; prior at t = 0)" ] }
              // Test patients sorted by predicted progression: NNGP mean ± 2σ against the truth.
              let m = split.YTest.Length
              let s = d.TargetStd
              let cov = g.Covariance.Value
              let order = Array.init m id |> Array.sortBy (fun i -> g.Mean.Data[i])
              let mean = order |> Array.mapi (fun r i -> float r, s * g.Mean.Data[i])
              let band = order |> Array.map (fun i -> let sd = 2.0 * s * sqrt (max 0.0 cov.Data[i * m + i]) in s * g.Mean.Data[i] - sd, s * g.Mean.Data[i] + sd)
              let truth = order |> Array.mapi (fun r i -> float r, s * split.YTest.Data[i])
              let inside = Array.map2 (fun (_, y) (lo, hi) -> if y >= lo && y <= hi then 1.0 else 0.0) truth band |> Array.average
              yield
                  { Svg.Title = "Diabetes: NNGP posterior on test patients"
                    Svg.XLabel = "test patients, sorted by predicted mean"
                    Svg.YLabel = "progression − training mean"
                    Svg.LogX = false
                    Svg.Series =
                      [ { line "mean ± 2σ" palette[0] Svg.Solid false mean with Band = Some band }
                        line "true value" "#444444" Svg.NoLine true truth ]
                    Svg.Notes =
                      [ sprintf "%.0f%% of true values" (100.0 * inside)
                        "inside the ±2σ band" ] }
          | None -> () ]
    let svg = Svg.render 560.0 380.0 panels
    try File.WriteAllText(path, svg)
    with
    | :? IOException as e -> fail "cannot write the plot %s: %s" path e.Message
    | :? UnauthorizedAccessException as e -> fail "cannot write the plot %s: %s" path e.Message
    Path.GetFullPath path

/// <summary>Runs the demo; <paramref name="progress"/> is told what is being computed.</summary>
let compute (progress: string -> unit) (o: Options) : Results =
    let sw = Stopwatch.StartNew()
    // Fail before the kernels rather than after them when the plot cannot be written.
    match o.Plot with
    | Some p ->
        let dir = Path.GetDirectoryName(Path.GetFullPath p)
        if not (Directory.Exists dir) then fail "cannot write the plot %s: the folder %s does not exist" p dir
    | None -> ()
    let rows = if o.Digits then digits progress o else []
    let diab = if o.Diabetes then Some(diabetes progress o) else None
    let plotPath = o.Plot |> Option.map (fun p -> progress "writing the plot"; plot p o rows diab)
    { Digits = rows; Diabetes = diab |> Option.map fst; Plot = plotPath; Seconds = sw.Elapsed.TotalSeconds }

/// <summary>The results as a table.</summary>
let report (o: Options) (r: Results) (w: TextWriter) =
    w.WriteLine "NeuralTangents demo: exact infinite-width networks on real data (kernels + closed-form inference, no training loop)"
    w.WriteLine "Network: depth x [Dense(512, W_std=1.5, b_std=0.05), activation], Dense readout; NNGP = Bayesian posterior,"
    w.WriteLine "NTK = infinite ensemble trained by gradient descent on MSE to t = infinity."
    if not r.Digits.IsEmpty then
        w.WriteLine ""
        w.WriteLine(sprintf "Digits (UCI optical digits, 8x8 pixels): %d train / %d test images, 10 classes, diag_reg %g" o.Train o.Test (defaultArg o.DiagReg digitsDiagReg))
        w.WriteLine "  activation  depth  NNGP accuracy  NTK accuracy  time (s)"
        for d in r.Digits do
            w.WriteLine(sprintf "  %-10s  %5d  %12.1f%%  %11.1f%%  %8.2f" d.Activation d.Depth (100.0 * d.NngpAccuracy) (100.0 * d.NtkAccuracy) d.Seconds)
    match r.Diabetes with
    | Some d ->
        w.WriteLine ""
        w.WriteLine(sprintf "Diabetes (Efron et al. 2004): %d train / %d test patients, Relu depth 2, diag_reg %g, target std %.1f" d.Train d.Test (defaultArg o.DiagReg diabetesDiagReg) d.TargetStd)
        w.WriteLine "  model                test RMSE  mean predictive std"
        w.WriteLine(sprintf "  %-19s  %9.2f  %19s" "predict the mean" d.BaselineRmse "-")
        w.WriteLine(sprintf "  %-19s  %9.2f  %19.2f" "NNGP posterior" d.NngpRmse d.NngpStd)
        w.WriteLine(sprintf "  %-19s  %9.2f  %19.2f" "NTK ensemble, t=inf" d.NtkRmse d.NtkStd)
        let tBest, best = d.Trajectory |> Array.minBy snd
        w.WriteLine(sprintf "  %-19s  %9.2f  %19s" (sprintf "NTK best t = %.3g" tBest) best "-")
        w.WriteLine "  (predictive std: of the network output f at the test points, without observation noise)"
    | None -> ()
    w.WriteLine ""
    match r.Plot with
    | Some p -> w.WriteLine(sprintf "Plot written to %s" p)
    | None -> ()
    w.WriteLine(sprintf "Total time %.1f s" r.Seconds)

/// <summary>Runs the demo with a progress display on stderr when it is a terminal, then prints the table.</summary>
let run (o: Options) (stdout: TextWriter) (stderr: TextWriter) =
    let interactive = obj.ReferenceEquals(stderr, Console.Error) && not Console.IsErrorRedirected
    let results =
        if interactive then
            let console = AnsiConsole.Create(AnsiConsoleSettings(Out = AnsiConsoleOutput(Console.Error)))
            console.Status().Spinner(Spinner.Known.Dots).Start("starting", fun ctx ->
                compute (fun msg -> ctx.Status <- Markup.Escape msg) o)
        else compute ignore o
    report o results stdout
    stdout.Flush()
