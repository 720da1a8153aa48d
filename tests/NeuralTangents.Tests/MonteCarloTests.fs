/// Monte Carlo checks of the analytic kernels: the empirical NNGP and NTK of sampled finite networks of width
/// ≥ 1024, averaged over M networks, agree with `KernelFn.compute` within a tolerance derived from the sample
/// standard error. This ties the kernel rules to the finite networks they describe (InitFn, ApplyFn, Backward).
module NeuralTangents.Tests.MonteCarloTests

open System
open Expecto
open NeuralTangents
open NeuralTangents.Tests.TestUtil

/// Entry-wise tolerance: |mean − analytic| ≤ Z·SE + allowance, SE = sample std / √M over M independent networks.
/// Z = 5: for a normal mean the two-sided tail is 5.7e-7 per entry; over the 320 distinct entries all tests check
/// (16 networks × 10 upper-triangle entries × 2 kernels) the union bound gives a false-failure probability
/// below 2e-4 for a random choice of seeds (the seeds are fixed, so a run is deterministic). With M = 400 the
/// sample means of these finite-variance estimates are close to normal (Berry–Esseen), which this relies on.
let private z = 5.0

/// Allowance for the O(1/n) bias of a finite-width mean. With one hidden layer, E[empirical kernel] equals the
/// analytic kernel exactly (the first layer's pre-activations are exactly Gaussian and the readout averages them
/// linearly), so the allowance is 0. With two hidden layers the second layer's pre-activations are Gaussian only
/// given the first layer, and E differs by c·K/n (Yaida, arXiv:1910.00019; Hanin & Nica, arXiv:1909.05989).
/// We allow c = 4 per such layer, relative to the largest kernel entry: 0.4% at n = 1024, well below the
/// 5·SE ≈ 6% (NNGP) and 2% (NTK) of the residual test, so it cannot mask an O(1) error.
let private biasAllowance (hiddenAfterFirst: int) (width: int) (scale: float) =
    4.0 * float hiddenAfterFirst / float width * scale

/// The inputs: 4 points of dimension 6.
let private x = randomTensor 2024 4 6

/// Readout width for the NNGP estimate: each network contributes the mean of 64 output channels (iid given the
/// hidden layer), which lowers the variance without changing the mean; the NTK uses one output channel.
let private nngpReadout = 64

let private denseNtk (outDim: int) (wStd: float) (bStd: float option) = Stax.dense outDim wStd bStd

type private Stats = { Mean: float[]; Se: float[]; RelStd: float }

/// Mean, standard error and the per-network relative fluctuation (RMS of std / |analytic| scale) of samples.
let private stats (samples: Tensor[]) =
    let m = float samples.Length
    let n = samples[0].Length
    let mean = Array.init n (fun k -> (samples |> Array.sumBy (fun s -> s.Data[k])) / m)
    let std = Array.init n (fun k -> sqrt ((samples |> Array.sumBy (fun s -> (s.Data[k] - mean[k]) ** 2.0)) / (m - 1.0)))
    let scale = mean |> Array.map abs |> Array.max
    { Mean = mean; Se = std |> Array.map (fun s -> s / sqrt m); RelStd = (std |> Array.max) / scale }

/// Compares MC means with the analytic kernel on the upper triangle; returns the worst |z|.
let private compare (what: string) (analytic: Tensor) (s: Stats) (allowance: float) =
    let n = analytic.Shape[0]
    let mutable worstZ = 0.0
    for i in 0 .. n - 1 do
        for j in i .. n - 1 do
            let k = i * n + j
            let d = abs (s.Mean[k] - analytic.Data[k])
            let zk = d / s.Se[k]
            worstZ <- max worstZ zk
            if not (d <= z * s.Se[k] + allowance) then
                failtestf "%s[%d,%d]: MC mean %.6g vs analytic %.6g: |Δ| = %.3g > %.0f·SE (%.3g) + allowance %.3g (z = %.1f)"
                    what i j s.Mean[k] analytic.Data[k] d z s.Se[k] allowance zk
    worstZ

/// The parameters of the same network with a 1-channel readout: column 0 of the top Dense's W and b[0].
/// The readout's columns are iid in both parameterizations, so this is an exact sample of the narrow network.
let private firstReadoutColumn (p: Params) =
    match p with
    | Branches ps ->
        match List.last ps with
        | Leaf(w :: b) ->
            let b = List.tryHead b
            let n, c = w.Shape[0], w.Shape[1]
            let w1 = Tensor.create [| n; 1 |] (Array.init n (fun k -> w.Data[k * c]))
            let b1 = b |> Option.map (fun b -> Tensor.create (b.Shape |> Array.map (fun d -> if d = c then 1 else d)) [| b.Data[0] |])
            Branches(List.take (ps.Length - 1) ps @ [ Leaf(w1 :: Option.toList b1) ])
        | _ -> failwith "the network must end in Dense"
    | _ -> failwith "the network must be a serial"

/// Samples M networks of <c>build readoutWidth</c> (seeds 1000, 1001, …) and checks both kernels: the NNGP from
/// the 64-channel readout, the NTK from its first channel.
/// <c>hiddenAfterFirst</c>: hidden layers whose input is not exactly Gaussian (for the bias allowance).
let internal check (name: string) (build: int -> Layer) (input: Tensor) (m: int) (width: int) (hiddenAfterFirst: int) =
    let sw = Diagnostics.Stopwatch.StartNew()
    let analytic = KernelFn.compute (build 1) input None Both
    let nngpNet = build nngpReadout
    let ntkNet = build 1
    let samples =
        Array.Parallel.init m (fun i ->
            let _, p = InitFn.init (1000 + i) nngpNet input.Shape
            Empirical.nngp nngpNet p input None, Empirical.ntk ntkNet (firstReadoutColumn p) input None)
    let nngps, ntks = Array.unzip samples
    let sN, sT = stats nngps, stats ntks
    let allowN = biasAllowance hiddenAfterFirst width (analytic.Nngp.Data |> Array.map abs |> Array.max)
    let allowT = biasAllowance hiddenAfterFirst width (analytic.Ntk.Value.Data |> Array.map abs |> Array.max)
    let zN = compare (name + " nngp") analytic.Nngp sN allowN
    let zT = compare (name + " ntk") analytic.Ntk.Value sT allowT
    note (
        sprintf "%-28s M=%4d width=%d  worst z: nngp %.2f, ntk %.2f  per-network relative std: nngp %.3f, ntk %.3f  (%.1f s)"
            name m width zN zT sN.RelStd sT.RelStd sw.Elapsed.TotalSeconds)

/// Dense(width) → φ → Dense(readout): one hidden layer, exact mean.
let internal oneHidden (phi: Layer) (width: int) (readout: int) =
    Stax.serial [ denseNtk width 1.4 (Some 0.3); phi; denseNtk readout 1.1 (Some 0.2) ]

let private width = 1024
let private m = 400

[<Tests>]
let tests =
    testList "MonteCarloTests" [
        testCase "Dense ntk parameterization" <| fun () ->
            check "Dense ntk (Erf)" (oneHidden (Stax.erf 1.0 1.0 0.0) width) x m width 0

        testCase "Dense standard parameterization with s = (1, 2) then (2, 1)" <| fun () ->
            // The hidden width is out_dim·s1 = 512·2 = 1024; the NTK grows with the width as (N_in/s0)·nngp.
            let build readout =
                let d (o: int) (w: float) (b: float) (s: int * int) =
                    Stax.denseWith { Stax.denseDefaults o with WStd = w; BStd = Some b; Parameterization = Parameterization.Standard; S = s }
                Stax.serial [ d 512 1.4 0.3 (1, 2); Stax.relu; d readout 1.1 0.2 (2, 1) ]
            check "Dense standard s≠(1,1)" build x m width 0

        testCase "Relu" <| fun () ->
            check "Relu" (oneHidden Stax.relu width) x m width 0

        testCase "LeakyRelu" <| fun () ->
            check "LeakyRelu(0.2)" (oneHidden (Stax.leakyRelu 0.2) width) x m width 0

        testCase "ABRelu" <| fun () ->
            check "ABRelu(-0.4, 1.3)" (oneHidden (Stax.abRelu -0.4 1.3) width) x m width 0

        testCase "Abs" <| fun () ->
            check "Abs" (oneHidden Stax.abs width) x m width 0

        testCase "Erf with a, b, c" <| fun () ->
            check "Erf(1.2, 0.8, 0.3)" (oneHidden (Stax.erf 1.2 0.8 0.3) width) x m width 0

        testCase "Sin" <| fun () ->
            check "Sin(1.1, 0.9, 0.4)" (oneHidden (Stax.sin 1.1 0.9 0.4) width) x m width 0

        testCase "Gelu" <| fun () ->
            check "Gelu" (oneHidden (Stax.gelu false) width) x m width 0

        testCase "Monomial" <| fun () ->
            check "Monomial 2" (oneHidden (Stax.monomial 2) width) x m width 0
            check "Monomial 3" (oneHidden (Stax.monomial 3) width) x m width 0

        testCase "Identity" <| fun () ->
            check "Identity" (oneHidden (Stax.serial [ Stax.relu; Stax.identity ]) width) x m width 0

        testCase "FanOut, parallel and FanInSum as a residual block" <| fun () ->
            // Dense → [Relu → Dense(width)] + identity → Relu → Dense: the second Dense sees non-Gaussian inputs.
            let build readout =
                Stax.serial
                    [ denseNtk width 1.4 (Some 0.3)
                      Stax.fanOut 2
                      Stax.parallelOf [ Stax.serial [ Stax.relu; denseNtk width 1.2 (Some 0.1) ]; Stax.identity ]
                      Stax.fanInSum
                      Stax.relu
                      denseNtk readout 1.1 (Some 0.2) ]
            check "residual (FanInSum)" build x m width 1

        testCase "FanInProd of independent branches" <| fun () ->
            let build readout =
                Stax.serial
                    [ Stax.fanOut 2
                      Stax.parallelOf
                          [ Stax.serial [ denseNtk width 1.3 (Some 0.2); Stax.relu ]
                            Stax.serial [ denseNtk width 1.0 (Some 0.5); Stax.erf 1.0 1.0 0.0 ] ]
                      Stax.fanInProd
                      denseNtk readout 1.1 (Some 0.2) ]
            check "FanInProd" build x m width 0

        testCase "FanInConcat on the channel axis with unequal widths" <| fun () ->
            let build readout =
                Stax.serial
                    [ Stax.fanOut 2
                      Stax.parallelOf
                          [ Stax.serial [ denseNtk width 1.3 (Some 0.2); Stax.relu ]
                            Stax.serial [ denseNtk (2 * width) 1.0 (Some 0.5); Stax.sin 1.0 1.0 0.3 ] ]
                      Stax.fanInConcat -1
                      denseNtk readout 1.1 (Some 0.2) ]
            check "FanInConcat (1024 + 2048)" build x m width 0

        testCase "Flatten of rank-4 NHWC inputs" <| fun () ->
            // Dense acts per position; Flatten turns (N, 2, 3, width) into (N, 6·width); the kernel is the position mean.
            let x4 = Tensor.create [| 4; 2; 3; 5 |] (normals 77 (4 * 2 * 3 * 5))
            let build readout =
                Stax.serial [ denseNtk width 1.4 (Some 0.3); Stax.relu; Stax.flatten; denseNtk readout 1.1 (Some 0.2) ]
            check "Flatten (N,H,W,C)" build x4 m width 0

        testCase "finite-width NTK fluctuation shrinks as 1 over the square root of the width" <| fun () ->
            // One hidden layer: Θ̂ = (1/n) Σ_j (iid terms), so std(Θ̂) ∝ n^(-1/2) exactly and std(256)/std(1024) = 2.
            // The relative SE of a sample std from M draws is ≈ √((κ−1)/(4M)) for kurtosis κ; for κ ≲ 5 and M = 400
            // that is ≲ 5%, so the ratio of two independent ones has relative SE ≲ 7%: 2 ± 0.4 is about 3 of those.
            let relStd (n: int) =
                let net = oneHidden Stax.relu n 1
                let ntks =
                    Array.Parallel.init 400 (fun i ->
                        let _, p = InitFn.init (7000 + i) net x.Shape
                        Empirical.ntk net p x None)
                (stats ntks).RelStd
            let s256, s1024 = relStd 256, relStd 1024
            note (
                sprintf "per-network relative NTK std: width 256: %.4f, width 1024: %.4f, ratio %.3f (1/√width law: 2)" s256 s1024 (s256 / s1024))
            within 0.4 2.0 (s256 / s1024) "s256 / s1024"
    ]
