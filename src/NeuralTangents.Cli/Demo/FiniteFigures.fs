/// <summary>The figures of the finite-versus-infinite experiment (FiniteVsInfinite): one test patient's prediction
/// along training time against the NTK ensemble's μ ± 2σ, and the distances to the infinite network vs width.</summary>
module NeuralTangents.Cli.Demo.FiniteFigures

open NeuralTangents.Cli.Demo

/// The test patient the trajectory figure follows: the one whose prediction moves most in units of σ (the clearest).
let patient (r: FiniteVsInfinite.Result) =
    let last = r.Times.Length - 1
    [| 0 .. r.YTest.Length - 1 |] |> Array.maxBy (fun j -> abs (r.Mu[last][j] - r.Mu[0][j]) / r.Sigma[last][j])

/// One test patient's prediction (target units) vs training time t ≥ 1 on a log axis: the NTK ensemble's μ ± 2σ,
/// every seed of the narrowest and the widest network, and the widest networks' linearizations (dashed).
let trajectory (r: FiniteVsInfinite.Result) =
    let j = patient r
    let s = r.TargetStd
    let idx = [| 0 .. r.Times.Length - 1 |] |> Array.filter (fun i -> r.Times[i] >= 1)
    let xs = idx |> Array.map (fun i -> log10 (float r.Times[i]))
    let p = Plots.figure $"Finite vs infinite width: test patient {string j} during training" "gradient-descent step t (log scale)" "predicted progression − training mean"
    Plots.logX p
    let mu = idx |> Array.map (fun i -> s * r.Mu[i][j])
    let sd = idx |> Array.map (fun i -> 2.0 * s * r.Sigma[i][j])
    Plots.band p "NTK ensemble μ ± 2σ" Plots.palette[0] xs (Array.map2 (-) mu sd) (Array.map2 (+) mu sd) |> ignore
    Plots.line p "NTK ensemble μ" Plots.palette[0] false false xs mu |> ignore
    let narrow, wide = List.head r.Runs, List.last r.Runs
    let seeds (run: FiniteVsInfinite.WidthRun) (traj: FiniteVsInfinite.Trajectory[]) label hex dashed =
        traj |> Array.iteri (fun k t ->
            let l = Plots.line p (if k = 0 then label else "") hex dashed false xs (idx |> Array.map (fun i -> s * t[i][j]))
            l.LineWidth <- 1.5f)
    seeds narrow narrow.Finite $"finite, width {string narrow.Width}" Plots.palette[3] false
    seeds wide wide.Finite $"finite, width {string wide.Width}" Plots.palette[1] false
    seeds wide wide.Linearized $"linearized, width {string wide.Width}" Plots.palette[6] true
    Plots.level p "true value" "#444444" (s * r.YTest[j]) |> ignore
    Plots.note p $"{string r.Options.Seeds} seeds per width; lr {NeuralTangents.Show.digits 3 r.LearningRate}; σ: NTK ensemble (compute_cov)" |> ignore
    Plots.legend p ScottPlot.Alignment.LowerRight
    p

/// Distances to the infinite network (units of σ) vs width on log–log axes, with the n^-1/2 rate through the
/// narrowest width's twin distance.
let distances (r: FiniteVsInfinite.Result) =
    let p = Plots.figure "Finite vs infinite width: distance to the NTK prediction" "hidden width n (log scale)" "RMS distance / σ (log scale)"
    Plots.logX p
    Plots.logY p
    let xs = r.Summaries |> List.map (fun s -> log10 (float s.Width)) |> List.toArray
    let ys (pick: FiniteVsInfinite.Summary -> float) = r.Summaries |> List.map (fun s -> log10 (max 1e-12 (pick s))) |> List.toArray
    Plots.line p "finite − its NTK twin" Plots.palette[1] false true xs (ys (fun s -> s.TwinDistance)) |> ignore
    Plots.line p "finite − linearized" Plots.palette[6] false true xs (ys (fun s -> s.LinearizedDistance)) |> ignore
    Plots.line p "|seed mean − μ|" Plots.palette[0] false true xs (ys (fun s -> s.MeanDistance)) |> ignore
    let first = List.head r.Summaries
    Plots.line p "n^-1/2" "#999999" true false xs (xs |> Array.map (fun x -> log10 first.TwinDistance - 0.5 * (x - log10 (float first.Width)))) |> ignore
    Plots.level p $"1/√seeds (noise of the mean of {string r.Options.Seeds})" Plots.palette[0] (log10 (1.0 / sqrt (float r.Options.Seeds))) |> ignore
    Plots.legend p ScottPlot.Alignment.LowerLeft
    p
