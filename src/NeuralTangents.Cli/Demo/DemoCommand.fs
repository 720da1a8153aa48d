/// <summary><c>nt demo</c>: infinitely wide networks on the shipped real data — digits classification and diabetes
/// regression with the exact NNGP posterior and the NTK-trained infinite ensemble — and finite networks trained by
/// gradient descent converging to that ensemble as they widen, as a results table and figures.</summary>
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
      /// Finite networks of growing width trained by gradient descent against the infinite NTK ensemble, or None.
      Finite: FiniteVsInfinite.Options option
      /// Where the figures go: {stem}-{figure}.png and .svg (an .svg or .png extension is dropped), or None.
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
              training time t; then finite networks Dense(n) -> Erf -> Dense(1) of
              widths 64 ... 4096 trained by full-batch gradient descent, 4 seeds
              each, against the infinite NTK ensemble's mean and sigma at the same
              times and against their own linearization (Lee et al. 2019,
              arXiv:1902.06720)

It prints a results table on stdout (a progress display goes to stderr on a
terminal) and writes figures as PNG and SVG (ScottPlot): digits accuracy vs
depth and an NTK heatmap; the NTK ensemble's diabetes test RMSE and posterior
sigma vs training time t; the NNGP posterior mean +- 2 sigma against the truth;
a test patient's prediction along training for finite widths against the NTK
ensemble's band; the distances to the infinite network vs width. The whole run
takes about a minute on 2 cores, most of it the CNN (--no-cnn leaves it out)
and the finite networks (--no-finite).

EXAMPLES:

    $ nt demo
    $ nt demo --dataset digits --depths 1,2,3,4,5 --train 1200 --test 500
    $ nt demo --dataset digits --cnn-train 100 --cnn-test 100 --cnn-depth 1
    $ nt demo --dataset diabetes --no-finite --out plots/diabetes
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
      Finite = Some FiniteVsInfinite.defaults
      Plot = Some "nt-demo" }

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
      Finite: FiniteVsInfinite.Result option
      /// Full paths of the figures written (PNG and SVG of each).
      Plots: string list
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
    if block < 1 then invalidArg "block" $"must be ≥ 1, got {string block}"
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
            failwith $"the network must end in a global pooling and a Dense readout of width 1 per output; got a kernel of shape {Show.ints k.Nngp.Shape}"
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
            progress ("digits: " + name + ", depth " + string depth + " — kernels of " + string o.Train + " + " + string o.Test + " images")
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
        progress ("digits: CNN-GAP depth " + string c.Depth + " — " + what + " kernel, " + string done' + " of " + string all + " images (" + string n + " × 4096 position pairs each)")
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
    progress ("diabetes: kernels of " + (string (split.XTrain.Shape[0])) + " + " + (string (split.XTest.Shape[0])) + " patients")
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

/// The NTK of the first training images (at most 200), sorted by label: the block structure of the classes.
let private ntkHeatmap (o: Options) =
    let split = Datasets.digits (min o.Train 200) 1
    let labels = Array.init split.XTrain.Shape[0] (fun i -> Array.findIndex (fun v -> v > 0.5) split.YTrain.Data[i * 10 .. i * 10 + 9])
    let order = Array.init labels.Length id |> Array.sortBy (fun i -> labels[i], i)
    let x = Tensor.create split.XTrain.Shape (order |> Array.collect (fun i -> split.XTrain.Data[i * 64 .. i * 64 + 63]))
    let depth = List.head o.Depths
    let k = (KernelFn.compute (network Stax.relu depth 10) x None Get.Ntk).Ntk.Value
    let n = order.Length
    let p = Plots.figure ("Digits: NTK of Relu depth " + string depth + ", " + string n + " training images sorted by label") "image (sorted by label 0..9)" "image (sorted by label 0..9)"
    Plots.heatmap p (Array2D.init n n (fun i j -> k.Data[i * n + j])) |> ignore
    p

let private digitsFigure (o: Options) (rows: DigitsRow list) (cnn: CnnRow option) =
    let p = Plots.figure "Digits: test accuracy of infinite networks" "depth (Dense or Conv + activation blocks)" "test accuracy (%)"
    if not rows.IsEmpty then
        for i, (act, kind) in List.indexed [ "Relu", "NNGP"; "Relu", "NTK"; "Erf", "NNGP"; "Erf", "NTK" ] do
            let r = rows |> List.filter (fun r -> r.Activation = act) |> List.toArray
            let ys = r |> Array.map (fun r -> 100.0 * (if kind = "NNGP" then r.NngpAccuracy else r.NtkAccuracy))
            Plots.line p $"{kind} {act}" Plots.palette[i] (kind = "NTK") true (r |> Array.map (fun r -> float r.Depth)) ys |> ignore
    match cnn with
    | Some c ->
        for k, (kind, acc) in List.indexed [ "NNGP", c.NngpAccuracy; "NTK", c.NtkAccuracy ] do
            Plots.points p $"{kind} CNN-GAP" Plots.palette[4 + k] ScottPlot.MarkerShape.FilledSquare 10.0f [| float c.Depth |] [| 100.0 * acc |] |> ignore
    | None -> ()
    p.Axes.Bottom.TickGenerator <- ScottPlot.TickGenerators.NumericAutomatic(IntegerTicksOnly = true)
    // The axis spans only what the data do: say how much one test image is worth.
    let notes =
        [ if not rows.IsEmpty then yield ("MLP: " + string o.Train + " train, " + string o.Test + " test; 1 test image = " + (Show.digits 2 (100.0 / float o.Test)) + "%")
          match cnn with
          | Some c -> yield ("CNN: " + string c.Train + " train, " + string c.Test + " test")
          | None -> ()
          yield $"t = ∞, diag_reg {Show.g (defaultArg o.DiagReg digitsDiagReg)}" ]
    Plots.note p (String.Join("\n", notes)) |> ignore
    Plots.legend p ScottPlot.Alignment.LowerRight
    p

let private diabetesFigures (d: DiabetesResult) (split: Datasets.Split) (g: Gaussian) =
    let training =
        let p = Plots.figure "Diabetes: NTK ensemble during training" "training time t (log scale)" "test RMSE, posterior σ of f"
        Plots.logX p
        let xs = d.Trajectory |> Array.map (fst >> log10)
        Plots.line p "NTK ens. RMSE" Plots.palette[1] false true xs (Array.map snd d.Trajectory) |> ignore
        Plots.line p "NTK ens. σ of f" Plots.palette[3] false true xs (Array.map snd d.StdTrajectory) |> ignore
        Plots.level p "NTK RMSE, t = ∞" Plots.palette[1] d.NtkRmse |> ignore
        Plots.level p "NNGP RMSE" Plots.palette[0] d.NngpRmse |> ignore
        Plots.level p "predict the mean" "#777777" d.BaselineRmse |> ignore
        Plots.note p $"{string d.Train} train, {string d.Test} test; σ: posterior std of f\n(mean over test points, no noise; prior at t = 0)" |> ignore
        Plots.legend p ScottPlot.Alignment.UpperRight
        p
    // Test patients sorted by predicted progression: NNGP mean ± 2σ against the truth.
    let posterior =
        let m = split.YTest.Length
        let s = d.TargetStd
        let cov = g.Covariance.Value
        let order = Array.init m id |> Array.sortBy (fun i -> g.Mean.Data[i])
        let xs = Array.init m float
        let mean = order |> Array.map (fun i -> s * g.Mean.Data[i])
        let sd = order |> Array.map (fun i -> 2.0 * s * sqrt (max 0.0 cov.Data[i * m + i]))
        let lo, hi = Array.map2 (-) mean sd, Array.map2 (+) mean sd
        let truth = order |> Array.map (fun i -> s * split.YTest.Data[i])
        let inside = Array.map3 (fun y l h -> if y >= l && y <= h then 1.0 else 0.0) truth lo hi |> Array.average
        let p = Plots.figure "Diabetes: NNGP posterior on test patients" "test patients, sorted by predicted mean" "progression − training mean"
        Plots.band p "mean ± 2σ" Plots.palette[0] xs lo hi |> ignore
        Plots.line p "NNGP posterior mean" Plots.palette[0] false false xs mean |> ignore
        Plots.points p "true value" "#444444" ScottPlot.MarkerShape.FilledCircle 5.0f xs truth |> ignore
        Plots.note p $"{Show.decimals 0 (100.0 * inside)}%% of true values inside the ±2σ band" |> ignore
        Plots.legend p ScottPlot.Alignment.UpperLeft
        p
    training, posterior

/// Writes every figure as PNG and SVG and returns their paths.
let private plot (out: string) (o: Options) (rows: DigitsRow list) (cnn: CnnRow option)
                 (diab: (DiabetesResult * (Datasets.Split * Gaussian)) option) (finite: FiniteVsInfinite.Result option) =
    let stem = Plots.stemOf out
    [ if not rows.IsEmpty || cnn.IsSome then
        yield! Plots.save stem "digits-accuracy" (digitsFigure o rows cnn)
      if not rows.IsEmpty then yield! Plots.save stem "digits-ntk-heatmap" (ntkHeatmap o)
      match diab with
      | Some(d, (split, g)) ->
          let training, posterior = diabetesFigures d split g
          yield! Plots.save stem "diabetes-training" training
          yield! Plots.save stem "diabetes-posterior" posterior
      | None -> ()
      match finite with
      | Some f ->
          yield! Plots.save stem "finite-vs-infinite" (FiniteFigures.trajectory f)
          yield! Plots.save stem "finite-distance" (FiniteFigures.distances f)
      | None -> () ]

/// <summary>Runs the demo; <paramref name="progress"/> is told what is being computed.</summary>
let compute (progress: string -> unit) (o: Options) : Results =
    let sw = Stopwatch.StartNew()
    // Fail before the kernels rather than after them when the plot cannot be written.
    match o.Plot with
    | Some p ->
        let dir = Path.GetDirectoryName(Path.GetFullPath p)
        if not (Directory.Exists dir) then fail ("cannot write the plot " + p + ": the folder " + dir + " does not exist")
    | None -> ()
    let rows = if o.Digits then digits progress o else []
    let cnn = if o.Digits then o.Cnn |> Option.map (cnnDigits progress o) else None
    let diab = if o.Diabetes then Some(diabetes progress o) else None
    // The finite networks train on diabetes: they run with that data set.
    let finite = if o.Diabetes then o.Finite |> Option.map (FiniteVsInfinite.compute progress) else None
    let plots =
        match o.Plot with
        | Some p ->
            progress "writing the figures"
            plot p o rows cnn diab finite
        | None -> []
    { Digits = rows; Cnn = cnn; Diabetes = diab |> Option.map fst; Finite = finite; Plots = plots; Seconds = sw.Elapsed.TotalSeconds }

/// <summary>The results as a table.</summary>
let report (o: Options) (r: Results) (w: TextWriter) =
    w.WriteLine "NeuralTangents demo: exact infinite-width networks on real data (kernels + closed-form inference, no training loop)"
    w.WriteLine "Network: depth x [Dense(512, W_std=1.5, b_std=0.05), activation], Dense readout; NNGP = Bayesian posterior,"
    w.WriteLine "NTK = infinite ensemble trained by gradient descent on MSE to t = infinity."
    match r.Cnn with
    | Some c ->
        w.WriteLine $"CNN-GAP: {string c.Depth} x [Conv(256, (3, 3), SAME, W_std=1.5, b_std=0.05), Relu], GlobalAvgPool, Dense readout."
    | None -> ()
    if not r.Digits.IsEmpty || r.Cnn.IsSome then
        w.WriteLine ""
        w.WriteLine("Digits (UCI optical digits, 8x8 pixels): " + string o.Train + " train / " + string o.Test + " test images, 10 classes, diag_reg " + (Show.g (defaultArg o.DiagReg digitsDiagReg)))
        w.WriteLine "  activation  depth  NNGP accuracy  NTK accuracy  time (s)"
        for d in r.Digits do
            w.WriteLine("  " + d.Activation.PadRight(10) + "  " + (string d.Depth).PadLeft(5) + "  " + (Show.decimals 1 (100.0 * d.NngpAccuracy)).PadLeft(12) + "%  " + (Show.decimals 1 (100.0 * d.NtkAccuracy)).PadLeft(11) + "%  " + (Show.decimals 2 d.Seconds).PadLeft(8))
        match r.Cnn with
        | Some c ->
            w.WriteLine("  CNN-GAP on " + string c.Train + " train / " + string c.Test + " test images (full spatial kernel: 4096 position pairs per image pair)")
            w.WriteLine("  " + ("CNN Relu").PadRight(10) + "  " + (string c.Depth).PadLeft(5) + "  " + (Show.decimals 1 (100.0 * c.NngpAccuracy)).PadLeft(12) + "%  " + (Show.decimals 1 (100.0 * c.NtkAccuracy)).PadLeft(11) + "%  " + (Show.decimals 2 c.Seconds).PadLeft(8))
        | None -> ()
    match r.Diabetes with
    | Some d ->
        w.WriteLine ""
        w.WriteLine("Diabetes (Efron et al. 2004): " + string d.Train + " train / " + string d.Test + " test patients, Relu depth 2, diag_reg " + (Show.g (defaultArg o.DiagReg diabetesDiagReg)) + ", target std " + Show.decimals 1 d.TargetStd)
        w.WriteLine "  model                test RMSE  mean predictive std"
        w.WriteLine("  " + ("predict the mean").PadRight(19) + "  " + (Show.decimals 2 d.BaselineRmse).PadLeft(9) + "  " + ("-").PadLeft(19))
        w.WriteLine("  " + ("NNGP posterior").PadRight(19) + "  " + (Show.decimals 2 d.NngpRmse).PadLeft(9) + "  " + (Show.decimals 2 d.NngpStd).PadLeft(19))
        w.WriteLine("  " + ("NTK ensemble, t=inf").PadRight(19) + "  " + (Show.decimals 2 d.NtkRmse).PadLeft(9) + "  " + (Show.decimals 2 d.NtkStd).PadLeft(19))
        let tBest, best = d.Trajectory |> Array.minBy snd
        w.WriteLine("  " + ($"NTK best t = {Show.digits 3 tBest}".PadRight(19)) + "  " + (Show.decimals 2 best).PadLeft(9) + "  " + ("-").PadLeft(19))
        w.WriteLine "  (predictive std: of the network output f at the test points, without observation noise)"
    | None -> ()
    match r.Finite with
    | Some f ->
        w.WriteLine ""
        FiniteVsInfinite.report f w
    | None -> ()
    w.WriteLine ""
    if not r.Plots.IsEmpty then
        w.WriteLine "Figures written (PNG and SVG):"
        for p in r.Plots do
            if p.EndsWith ".png" then w.WriteLine $"  {p} (.svg)"
    w.WriteLine $"Total time {Show.decimals 1 r.Seconds} s"

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
