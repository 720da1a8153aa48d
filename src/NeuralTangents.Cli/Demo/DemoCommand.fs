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

/// <summary>The convolutional rows of the digits table: sizes and depth of the CNN-GAP.</summary>
type CnnOptions =
    { /// Training images (the first rows of the digits shuffle; fewer than the MLP's, the full-layout kernel is costly).
      Train: int
      /// Test images (the next rows of the same shuffle).
      Test: int
      /// Conv + Relu blocks before the GlobalAvgPool.
      Depth: int
      /// Images of x1 per kernel call: memory grows with Block × (images of x2) × 4096.
      Block: int }

/// <summary>What the demo runs.</summary>
type Options =
    { Digits: bool
      Diabetes: bool
      /// Training rows (digits; diabetes uses min(Train, 300)).
      Train: int
      /// Test rows (digits; diabetes tests on every row it does not train on).
      Test: int
      Depths: int list
      /// The CNN-GAP rows of the digits table, or None to leave them out.
      Cnn: CnnOptions option
      /// Ridge relative to the mean kernel diagonal; None takes each data set's default (digits 1e-4: labels are
      /// exact; diabetes 1: an observation noise as large as the prior signal, matching its R² ≈ 0.5).
      DiagReg: float option
      /// SVG path, or None for no plot.
      Plot: string option }

/// <summary>Shown after the option list of <c>nt demo --help</c>.</summary>
let helpText =
    """nt demo runs, offline, on data sets shipped with the tool (data/README.md):

    digits    UCI optical digits (8x8 images as 64-vectors scaled to [0, 1]), one-hot
              targets; NNGP and NTK test accuracy for each depth and for Relu and Erf;
              then a CNN-GAP on the same digits as 8x8x1 images, on fewer images
              (--cnn-train, --cnn-test): its kernel holds every pair of pixel positions
    diabetes  Efron et al. (2004), standardised; test RMSE and predictive spread of the
              NNGP posterior and of the NTK ensemble, and the NTK ensemble along
              training time t

It prints a results table on stdout (a progress display goes to stderr on a
terminal) and writes an SVG plot: digits accuracy vs depth; the NTK ensemble's
diabetes test RMSE and posterior σ vs training time t; and the NNGP posterior
mean ± 2σ against the truth on test patients. The whole run takes about a
minute on 2 cores, most of it the CNN (--no-cnn leaves it out).

EXAMPLES:

    $ nt demo
    $ nt demo --dataset digits --depths 1,2,3,4,5 --train 1200 --test 500
    $ nt demo --dataset digits --cnn-train 100 --cnn-test 100 --cnn-depth 1
    $ nt demo --dataset diabetes --out diabetes.svg
"""

let digitsDiagReg = 1e-4
let diabetesDiagReg = 1.0

/// CNN sizes chosen so the CNN part takes ≲ 60 s on 2 cores (measured 36–38 s, README "The demo"); block 4 keeps
/// the peak resident memory at ~1.45 GB (measured at depth 1, 100 train / 50 test: block 2 0.33 GB, 8 0.83 GB, 32 2.4 GB).
let cnnDefaults : CnnOptions = { Train = 200; Test = 100; Depth = 2; Block = 4 }

let defaults =
    { Digits = true
      Diabetes = true
      Train = 1000
      Test = 500
      Depths = [ 1; 2; 3 ]
      Cnn = Some cnnDefaults
      DiagReg = None
      Plot = Some "nt-demo.svg" }

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

/// <summary>The CNN-GAP's test accuracies on the digits images.</summary>
type CnnRow = { Depth: int; Train: int; Test: int; NngpAccuracy: float; NtkAccuracy: float; Seconds: float }

type Results =
    { Digits: DigitsRow list
      Cnn: CnnRow option
      Diabetes: DiabetesResult option
      Plot: string option
      Seconds: float }

/// The demo network: depth × (Dense(512, W_std=1.5, b_std=0.05), activation), then a Dense readout.
let network (activation: Layer) (depth: int) (outputs: int) =
    Stax.serial
        [ for _ in 1 .. depth do
            yield Stax.dense 512 1.5 (Some 0.05)
            yield activation
          yield Stax.dense outputs 1.5 (Some 0.05) ]

/// The demo's CNN-GAP: depth × (Conv(256, (3, 3), SAME, W_std=1.5, b_std=0.05), Relu), GlobalAvgPool, then a Dense
/// readout with the MLP's W_std and b_std (out_chan does not enter the infinite-width kernel).
let cnnNetwork (depth: int) (outputs: int) =
    Stax.serial
        [ for _ in 1 .. depth do
            yield Stax.conv 256 [ 3; 3 ] None Padding.Same 1.5 (Some 0.05)
            yield Stax.relu
          yield Stax.globalAvgPool
          yield Stax.dense outputs 1.5 (Some 0.05) ]

/// Digits rows of 64 pixels as NHWC images (N, 8, 8, 1) (row-major pixels: the reshape is the identity on the data).
let asImages (x: Tensor) = Tensor.reshape [| x.Shape[0]; 8; 8; 1 |] x

/// Rows [s, e) of a tensor along its leading (batch) axis.
let private rowsOf (s: int) (e: int) (x: Tensor) =
    let per = x.Length / x.Shape[0]
    Tensor.create (Array.append [| e - s |] x.Shape[1..]) x.Data[s * per .. e * per - 1]

/// <summary>NNGP and NTK (N1, N2) of a network ending in a global pooling, computed <paramref name="block"/> rows of
/// x1 at a time against x2 and assembled, so only block × N2 full spatial kernels are alive at once. With x2 = None
/// the kernel is symmetric: each block of rows is taken against itself and the rows after it only, and the rest is
/// mirrored (about half the work).</summary>
/// <param name="progress">Told the rows done so far and N1, after each block.</param>
let blockedKernels (progress: int -> int -> unit) (block: int) (net: Layer) (x1: Tensor) (x2: Tensor option) =
    if block < 1 then invalidArg "block" (sprintf "must be ≥ 1, got %d" block)
    let n1 = x1.Shape[0]
    let n2 = match x2 with Some x -> x.Shape[0] | None -> n1
    let nngp = Array.zeroCreate<float> (n1 * n2)
    let ntk = Array.zeroCreate<float> (n1 * n2)
    for s in 0 .. block .. n1 - 1 do
        let e = min n1 (s + block)
        // Columns c0 .. n2 − 1: all of x2, or (symmetric) this block and the rows after it.
        let c0, other = match x2 with Some x -> 0, x | None -> s, rowsOf s n1 x1
        let k = KernelFn.compute net (rowsOf s e x1) (Some other) Both
        let width = n2 - c0
        if k.Nngp.Shape <> [| e - s; width |] then
            failwithf "the network must end in a global pooling and a Dense readout of width 1 per output; got a kernel of shape %A" k.Nngp.Shape
        let kn, kt = k.Nngp.Data, k.Ntk.Value.Data
        for i in s .. e - 1 do
            Array.blit kn ((i - s) * width) nngp (i * n2 + c0) width
            Array.blit kt ((i - s) * width) ntk (i * n2 + c0) width
            if x2.IsNone then
                for j in e .. n2 - 1 do
                    nngp[j * n2 + i] <- nngp[i * n2 + j]
                    ntk[j * n2 + i] <- ntk[i * n2 + j]
        progress e n1
    Tensor.create [| n1; n2 |] nngp, Tensor.create [| n1; n2 |] ntk

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

let private cnnDigits (progress: string -> unit) (o: Options) (c: CnnOptions) =
    let split = Datasets.digits c.Train c.Test
    let sw = Stopwatch.StartNew()
    let net = cnnNetwork c.Depth 10
    let xTrain, xTest = asImages split.XTrain, asImages split.XTest
    let tell what n (done': int) (all: int) =
        progress (sprintf "digits: CNN-GAP depth %d — %s kernel, %d of %d images (%d × 4096 position pairs each)" c.Depth what done' all n)
    let trainNngp, trainNtk = blockedKernels (tell "train × train" c.Train) c.Block net xTrain None
    let testNngp, testNtk = blockedKernels (tell "test × train" c.Train) c.Block net xTest (Some xTrain)
    let reg = defaultArg o.DiagReg digitsDiagReg
    let predict = Predict.gpInference (KernelMatrices.ofBoth trainNngp trainNtk) split.YTrain reg false [ PredictGet.Nngp; PredictGet.Ntk ]
    let r = predict (Some(KernelMatrices.ofBoth testNngp testNtk)) None
    let labels = split.TestLabels.Value
    { CnnRow.Depth = c.Depth
      Train = c.Train
      Test = c.Test
      NngpAccuracy = accuracy labels r[PredictGet.Nngp].Mean
      NtkAccuracy = accuracy labels r[PredictGet.Ntk].Mean
      Seconds = sw.Elapsed.TotalSeconds }

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
let private cnnPalette = [| "#9467bd"; "#8c564b" |]

let private line label colour stroke markers points : Svg.Series =
    { Label = label; Colour = colour; Stroke = stroke; Markers = markers; Shape = Svg.Dot; Points = points; Band = None }

let private plot (path: string) (o: Options) (rows: DigitsRow list) (cnn: CnnRow option) (diab: (DiabetesResult * (Datasets.Split * Gaussian)) option) =
    let panels =
        [ if not rows.IsEmpty || cnn.IsSome then
            yield
                { Svg.Title = "Digits: test accuracy of infinite networks"
                  Svg.XLabel = "depth (Dense or Conv + activation blocks)"
                  Svg.YLabel = "test accuracy (%)"
                  Svg.LogX = false
                  Svg.Series =
                    [ if not rows.IsEmpty then
                        for i, (act, kind) in List.indexed [ "Relu", "NNGP"; "Relu", "NTK"; "Erf", "NNGP"; "Erf", "NTK" ] do
                            yield
                                rows |> List.filter (fun r -> r.Activation = act)
                                |> List.map (fun r -> float r.Depth, 100.0 * (if kind = "NNGP" then r.NngpAccuracy else r.NtkAccuracy))
                                |> List.toArray
                                |> line (sprintf "%s %s" kind act) palette[i] (if kind = "NTK" then Svg.Dashed else Svg.Solid) true
                      // The CNN-GAP: squares at its one depth, no line (it has its own sizes).
                      match cnn with
                      | Some c ->
                          for kind, colour, acc in [ "NNGP", cnnPalette[0], c.NngpAccuracy; "NTK", cnnPalette[1], c.NtkAccuracy ] do
                              yield { line (sprintf "%s CNN-GAP" kind) colour Svg.NoLine true [| float c.Depth, 100.0 * acc |] with Shape = Svg.Square }
                      | None -> () ]
                  // The axis spans only what the data do: say how much one test image is worth.
                  Svg.Notes =
                    [ if not rows.IsEmpty then
                        yield sprintf "MLP: %d train, %d test;" o.Train o.Test
                        yield sprintf "1 test image = %.2g%%" (100.0 / float o.Test)
                      match cnn with
                      | Some c -> yield sprintf "CNN: %d train, %d test" c.Train c.Test
                      | None -> ()
                      yield sprintf "t = ∞, diag_reg %g" (defaultArg o.DiagReg digitsDiagReg) ] }
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
    let cnn = if o.Digits then o.Cnn |> Option.map (cnnDigits progress o) else None
    let diab = if o.Diabetes then Some(diabetes progress o) else None
    let plotPath = o.Plot |> Option.map (fun p -> progress "writing the plot"; plot p o rows cnn diab)
    { Digits = rows; Cnn = cnn; Diabetes = diab |> Option.map fst; Plot = plotPath; Seconds = sw.Elapsed.TotalSeconds }

/// <summary>The results as a table.</summary>
let report (o: Options) (r: Results) (w: TextWriter) =
    w.WriteLine "NeuralTangents demo: exact infinite-width networks on real data (kernels + closed-form inference, no training loop)"
    w.WriteLine "Network: depth x [Dense(512, W_std=1.5, b_std=0.05), activation], Dense readout; NNGP = Bayesian posterior,"
    w.WriteLine "NTK = infinite ensemble trained by gradient descent on MSE to t = infinity."
    match r.Cnn with
    | Some c ->
        w.WriteLine(sprintf "CNN-GAP: %d x [Conv(256, (3, 3), SAME, W_std=1.5, b_std=0.05), Relu], GlobalAvgPool, Dense readout." c.Depth)
    | None -> ()
    if not r.Digits.IsEmpty || r.Cnn.IsSome then
        w.WriteLine ""
        w.WriteLine(sprintf "Digits (UCI optical digits, 8x8 pixels): %d train / %d test images, 10 classes, diag_reg %g" o.Train o.Test (defaultArg o.DiagReg digitsDiagReg))
        w.WriteLine "  activation  depth  NNGP accuracy  NTK accuracy  time (s)"
        for d in r.Digits do
            w.WriteLine(sprintf "  %-10s  %5d  %12.1f%%  %11.1f%%  %8.2f" d.Activation d.Depth (100.0 * d.NngpAccuracy) (100.0 * d.NtkAccuracy) d.Seconds)
        match r.Cnn with
        | Some c ->
            w.WriteLine(sprintf "  CNN-GAP on %d train / %d test images (full spatial kernel: 4096 position pairs per image pair)" c.Train c.Test)
            w.WriteLine(sprintf "  %-10s  %5d  %12.1f%%  %11.1f%%  %8.2f" "CNN Relu" c.Depth (100.0 * c.NngpAccuracy) (100.0 * c.NtkAccuracy) c.Seconds)
        | None -> ()
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
