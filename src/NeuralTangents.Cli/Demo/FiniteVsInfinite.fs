/// <summary>Finite versus infinite width on real data, the experiment of Lee et al. (2019), "Wide neural networks of
/// any depth evolve as linear models under gradient descent" (arXiv:1902.06720): finite networks of growing width,
/// from neural_tangents' initialisation and NTK parameterization, trained by full-batch gradient descent on MSE,
/// against the infinite NTK ensemble (<c>gradient_descent_mse_ensemble</c> with <c>compute_cov</c>) at the same
/// times, and against their own linearization.</summary>
[<RequireQualifiedAccess>]
module NeuralTangents.Cli.Demo.FiniteVsInfinite

open System
open System.Diagnostics
open MathNet.Numerics.LinearAlgebra
open NeuralTangents

/// <summary>What the experiment runs.</summary>
type Options =
    { /// Training patients (the first rows of the diabetes shuffle).
      Train: int
      /// Test patients (the next rows of the same shuffle).
      Test: int
      /// Hidden widths n of the finite networks.
      Widths: int list
      /// Independent initialisations (seeds 1..Seeds) per width.
      Seeds: int
      /// Gradient-descent steps; predictions are recorded at 0, 1, 2, 5, 10, 20, 50, … ≤ Steps.
      Steps: int
      /// Learning rate as a fraction of neural_tangents' max_learning_rate 2·N·K/λ_max(Θ) of the analytic NTK.
      LrFraction: float }

/// Sizes chosen to fit the demo's budget: ~25 s of CPU, about half that in wall time on 2 cores, three quarters of it
/// the width 4096 (README "The demo"; 4 seeds × 1000 steps at N = 64 took 122 s of CPU). The step η = 0.1·max_learning_rate moves the stiffest mode by a = ηλ_max/(NK) = 0.2
/// per step: the finite networks, their linearizations and their twins all take the same discrete steps, and the
/// continuous-time ensemble they are compared with differs from discrete steps by at most
/// max_k |e^{−ak} − (1 − a)^k| ≈ a/(2e) ≈ 4% of a mode's initial residual (the stiffest; less for the others).
let defaults =
    { Train = 48
      Test = 100
      Widths = [ 64; 256; 1024; 4096 ]
      Seeds = 4
      Steps = 300
      LrFraction = 0.1 }

/// The network: Dense(n, W_std=1.5, b_std=0.05) → Erf → Dense(1, W_std=1.5, b_std=0.05) (NTK parameterization).
let network (width: int) =
    Stax.serial [ Stax.dense width 1.5 (Some 0.05); Stax.erf 1.0 1.0 0.0; Stax.dense 1 1.5 (Some 0.05) ]

/// Record times: 0 and 1, 2, 5 × 10^k up to steps, then steps itself.
let times (steps: int) =
    [| yield 0
       for e in 0 .. 9 do
           for m in [ 1; 2; 5 ] do
               let t = m * pown 10 e
               if t < steps then yield t
       if steps > 0 then yield steps |]
    |> Array.distinct

/// <summary>Test predictions (T, M) of one trained model: one row per record time.</summary>
type Trajectory = float[][]

/// <summary>One width's networks: each seed's finite network, its linearization and its infinite-width twin.</summary>
type WidthRun =
    { Width: int
      /// Finite networks trained by gradient descent, per seed.
      Finite: Trajectory[]
      /// The linearized networks f(θ₀) + J(θ₀)·(θ − θ₀) trained by the same steps, per seed.
      Linearized: Trajectory[]
      /// Each seed's infinite-width twin: the same initial outputs f₀ evolved by the analytic NTK.
      Twin: Trajectory[]
      Seconds: float }

/// <summary>A width's distances to the infinite-width predictions, each the root mean square over test points and
/// record times (and seeds) of a difference divided by the NTK ensemble's σ(x, t) at that point and time.</summary>
type Summary =
    { Width: int
      /// |mean over seeds − μ| / σ: at infinite width only the seeds' sampling noise, of expected square 1/S.
      MeanDistance: float
      /// The seeds' standard deviation / σ: 1 at infinite width, up to sampling noise.
      Spread: float
      /// |f − twin| / σ: the finite network against the infinite network started from the same outputs; O(n^-1/2).
      TwinDistance: float
      /// |f − f_lin| / σ: the finite network against its own linearization; O(n^-1/2) by Lee et al.'s Theorem 2.1,
      /// measured here to fall about as 1/n.
      LinearizedDistance: float
      /// Test RMSE at the last time, target units, averaged over seeds.
      FinalRmse: float }

/// <summary>Everything the experiment measured.</summary>
type Result =
    { Options: Options
      Times: int[]
      LearningRate: float
      /// λ_max of the analytic NTK on the training set.
      LambdaMax: float
      TargetStd: float
      /// The infinite NTK ensemble's mean μ and standard deviation σ at the test points, (T, M).
      Mu: float[][]
      Sigma: float[][]
      /// Test targets (standardised).
      YTest: float[]
      Runs: WidthRun list
      Summaries: Summary list
      /// Expected test RMSE of one member of the infinite ensemble at the last time: √(mean((μ − y)² + σ²)).
      EnsembleRmse: float
      Seconds: float }

/// Rows [0, n) of the shuffled diabetes data as train and rows [n, n + m) as test (Datasets.diabetes standardises
/// with the training rows' statistics).
let split (o: Options) =
    let s = Datasets.diabetes o.Train
    if o.Test < 1 || o.Test > s.XTest.Shape[0] then
        invalidArg "Test" ("diabetes has " + (string (s.XTest.Shape[0] + o.Train)) + " rows after " + string o.Train + " training rows: test must be between 1 and " + (string (s.XTest.Shape[0])) + ", got " + string o.Test)
    let d = s.XTest.Shape[1]
    { s with
        XTest = Tensor.create [| o.Test; d |] s.XTest.Data[.. o.Test * d - 1]
        YTest = Tensor.create [| o.Test; 1 |] s.YTest.Data[.. o.Test - 1] }

/// <summary>Gradient descent on a model that is linear in its parameters, written in function space: with
/// Δθ = −η/(NK)·Jᵀ(f − y), the outputs move by Δf = −η/(NK)·Θ(f − y) exactly, where Θ = J·Jᵀ (train × train) and
/// Θ* = J*·Jᵀ (test × train). With the empirical NTK of θ₀ this is the linearized network; with the analytic NTK it
/// is the infinitely wide network (arXiv:1902.06720, eq. 7–9, in discrete time).</summary>
/// <returns>Test outputs at each record time.</returns>
let linearSteps (thetaTrain: Matrix<float>) (thetaTest: Matrix<float>) (eta: float) (yTrain: float[])
                (f0Train: float[]) (f0Test: float[]) (record: int[]) : Trajectory =
    let n = yTrain.Length
    let c = eta / float n // K = 1 output
    let mutable r = Vector<float>.Build.DenseOfArray(Array.map2 (-) f0Train yTrain)
    let mutable ft = Vector<float>.Build.DenseOfArray(Array.copy f0Test)
    let last = Array.max record
    let out = ResizeArray()
    for k in 0 .. last do
        if Array.contains k record then out.Add(ft.ToArray())
        if k < last then
            ft <- ft - c * (thetaTest * r)
            r <- r - c * (thetaTrain * r)
    out.ToArray()

let private single (f: Flow) =
    match f with
    | Single y -> y
    | Fanned _ -> invalidOp "the demo network has one output"

/// <summary>One finite network trained by full-batch gradient descent on ½·mean((f − y)²): θ ← θ − η·Jᵀ(f − y)/N,
/// the gradient from one recorded forward pass and one backward pass (Backward.record, Backward.backwardFlow).</summary>
/// <returns>Test outputs at each record time, and the initial parameters.</returns>
let train (net: Layer) (seed: int) (xTrain: Tensor) (yTrain: Tensor) (xTest: Tensor) (eta: float) (record: int[]) =
    let _, p0 = InitFn.init seed net xTrain.Shape
    let n = xTrain.Shape[0]
    let theta = Params.toVector p0 // updated in place
    let last = Array.max record
    let out = ResizeArray()
    for k in 0 .. last do
        let p = Params.ofVector p0 theta
        if Array.contains k record then out.Add((ApplyFn.apply net p xTest).Data)
        if k < last then
            let tape = Backward.record net p (Single xTrain)
            let f = single tape.Output
            let ct = Tensor.create f.Shape (Array.map2 (fun a b -> (a - b) / float n) f.Data yTrain.Data)
            let g, _ = Backward.backwardFlow tape (Single ct)
            let gv = Params.toVector g
            System.Numerics.Tensors.TensorPrimitives.MultiplyAdd(ReadOnlySpan gv, -eta, ReadOnlySpan theta, Span theta)
    out.ToArray(), p0

let private rms (xs: float seq) = sqrt (Seq.average (Seq.map (fun v -> v * v) xs))

/// <summary>Runs the experiment; <paramref name="progress"/> is told what is being computed.</summary>
let compute (progress: string -> unit) (o: Options) : Result =
    // Width 65536 already holds ~0.8M parameters per network and N × 65536 activations per step.
    if o.Widths.IsEmpty || o.Widths |> List.exists (fun w -> w < 1 || w > 65536) then
        invalidArg "Widths" $"give widths between 1 and 65536, got {Show.intList o.Widths}"
    if o.Seeds < 2 then invalidArg "Seeds" $"must be ≥ 2 (a spread needs two networks), got {string o.Seeds}"
    if o.Steps < 1 then invalidArg "Steps" $"must be ≥ 1, got {string o.Steps}"
    if not (o.LrFraction > 0.0 && o.LrFraction < 1.0) then
        invalidArg "LrFraction" $"must be in (0, 1) (a fraction of max_learning_rate), got {Show.g o.LrFraction}"
    let sw = Stopwatch.StartNew()
    let s = split o
    let n, m = o.Train, o.Test
    let record = times o.Steps
    progress ("finite vs infinite: NTK ensemble on " + string n + " + " + string m + " patients")
    // The analytic kernels do not depend on the width.
    let analytic = network 1
    let kTrain = KernelFn.compute analytic s.XTrain None Both
    let kTest = KernelFn.compute analytic s.XTest (Some s.XTrain) Both
    let thetaTrain = Tensor.toMatrix kTrain.Ntk.Value
    let thetaTest = Tensor.toMatrix kTest.Ntk.Value
    let lambdaMax = thetaTrain.Evd(Symmetricity.Symmetric).EigenValues |> Seq.map (fun c -> c.Real) |> Seq.max
    let eta = o.LrFraction * Predict.maxLearningRate kTrain.Ntk.Value None 0.0 1e-12
    let ensemble = Predict.gradientDescentMseEnsemble (KernelFn.compute analytic) s.XTrain s.YTrain eta 0.0 false
    let g = (ensemble (Some(Array.map float record)) (Some s.XTest) Ntk true)[PredictGet.Ntk]
    let mu = Array.init record.Length (fun i -> g.Mean.Data[i * m .. (i + 1) * m - 1])
    let cov = g.Covariance.Value.Data
    let sigma = Array.init record.Length (fun i -> Array.init m (fun j -> sqrt (max 0.0 cov[i * m * m + j * m + j])))
    let yTrain, yTest = s.YTrain.Data, s.YTest.Data
    let runs =
        [ for w in o.Widths do
            progress ("finite vs infinite: width " + string w + ", " + string o.Seeds + " seeds × " + string o.Steps + " gradient steps")
            let t0 = Stopwatch.StartNew()
            let net = network w
            let perSeed =
                Array.init o.Seeds (fun i -> i + 1)
                |> Array.Parallel.map (fun seed ->
                    let finite, p0 = train net seed s.XTrain s.YTrain s.XTest eta record
                    let f0Train = (ApplyFn.apply net p0 s.XTrain).Data
                    let f0Test = finite[0]
                    let empTrain = Tensor.toMatrix (Empirical.ntk net p0 s.XTrain None)
                    let empTest = Tensor.toMatrix (Empirical.ntk net p0 s.XTest (Some s.XTrain))
                    finite,
                    linearSteps empTrain empTest eta yTrain f0Train f0Test record,
                    linearSteps thetaTrain thetaTest eta yTrain f0Train f0Test record)
            yield { Width = w
                    Finite = perSeed |> Array.map (fun (f, _, _) -> f)
                    Linearized = perSeed |> Array.map (fun (_, l, _) -> l)
                    Twin = perSeed |> Array.map (fun (_, _, t) -> t)
                    Seconds = t0.Elapsed.TotalSeconds } ]
    let ts = record.Length
    let pts = [ for i in 0 .. ts - 1 do for j in 0 .. m - 1 -> i, j ]
    let summaries =
        [ for r in runs ->
            let sd = float o.Seeds
            let meanOf i j = r.Finite |> Array.averageBy (fun f -> f[i][j])
            let distance (other: Trajectory[]) =
                let gap si i j =
                    let a: float = r.Finite.[si].[i].[j]
                    let b: float = other.[si].[i].[j]
                    (a - b) / sigma[i][j]
                rms [ for si in 0 .. o.Seeds - 1 do for i, j in pts -> gap si i j ]
            { Width = r.Width
              MeanDistance = rms [ for i, j in pts -> (meanOf i j - mu[i][j]) / sigma[i][j] ]
              Spread =
                rms [ for i, j in pts ->
                        let a = meanOf i j
                        sqrt ((r.Finite |> Array.sumBy (fun f -> (f[i][j] - a) ** 2.0)) / (sd - 1.0)) / sigma[i][j] ]
              TwinDistance = distance r.Twin
              LinearizedDistance = distance r.Linearized
              FinalRmse =
                r.Finite |> Array.averageBy (fun f -> s.TargetScale * rms (Array.map2 (-) f[ts - 1] yTest))
            } ]
    let last = ts - 1
    { Options = o
      Times = record
      LearningRate = eta
      LambdaMax = lambdaMax
      TargetStd = s.TargetScale
      Mu = mu
      Sigma = sigma
      YTest = yTest
      Runs = runs
      Summaries = summaries
      EnsembleRmse =
        s.TargetScale * sqrt (Array.average (Array.init m (fun j -> (mu.[last].[j] - yTest.[j]) ** 2.0 + sigma.[last].[j] ** 2.0)))
      Seconds = sw.Elapsed.TotalSeconds }

/// <summary>The results as a compact table.</summary>
let report (r: Result) (w: IO.TextWriter) =
    let o = r.Options
    w.WriteLine("Finite vs infinite width (Lee et al. 2019, arXiv:1902.06720): diabetes, " + string o.Train + " train / " + string o.Test + " test patients")
    w.WriteLine $"Network: Dense(n, W_std=1.5, b_std=0.05), Erf, Dense(1, W_std=1.5, b_std=0.05); full-batch gradient descent on MSE,"
    w.WriteLine("lr " + Show.digits 4 r.LearningRate + " = " + Show.g o.LrFraction + " x max_learning_rate (lambda_max of the NTK " + Show.digits 4 r.LambdaMax + "), " + string o.Steps + " steps, " + string o.Seeds + " seeds per width.")
    w.WriteLine "Distances to the infinite NTK ensemble (gradient_descent_mse_ensemble, compute_cov) in units of its sigma(x, t),"
    w.WriteLine("root mean square over " + string o.Test + " test points and " + string r.Times.Length + " times t = 0 .. " + string o.Steps + ":")
    w.WriteLine "   width  |mean - mu|  seed spread  to NTK twin  to linearized  test RMSE(t_end)  time (s)"
    for s, run in List.zip r.Summaries r.Runs do
        w.WriteLine("  " + (string s.Width).PadLeft(6) + "  " + (Show.decimals 3 s.MeanDistance).PadLeft(10) + "  " + (Show.decimals 3 s.Spread).PadLeft(11) + "  " + (Show.decimals 4 s.TwinDistance).PadLeft(11) + "  " + (Show.decimals 4 s.LinearizedDistance).PadLeft(13) + "  " + (Show.decimals 2 s.FinalRmse).PadLeft(16) + "  " + (Show.decimals 2 run.Seconds).PadLeft(8))
    w.WriteLine("  " + ("inf").PadLeft(6) + "  " + (Show.decimals 3 (1.0 / sqrt (float o.Seeds))).PadLeft(10) + "  " + (Show.decimals 3 1.0).PadLeft(11) + "  " + (Show.decimals 4 0.0).PadLeft(11) + "  " + (Show.decimals 4 0.0).PadLeft(13) + "  " + (Show.decimals 2 r.EnsembleRmse).PadLeft(16))
    w.WriteLine "  (inf row: what an infinitely wide network gives; |mean - mu| is then the seeds' noise, 1/sqrt(seeds);"
    w.WriteLine "   NTK twin: the infinite network started from the same outputs; both distances are O(1/sqrt(n)), Lee et al."
    w.WriteLine "   Theorem 2.1; the linearization's gap falls about as 1/n here)"
