/// Dropout (Layers/Stochastic.fs): kernel rule in every layout, finite layer against Monte Carlo, JSON and errors.
module NeuralTangents.Tests.StochasticTests

open Expecto
open NeuralTangents
open NeuralTangents.Layers
open NeuralTangents.Tests.TestUtil
open NeuralTangents.Tests.McCheck

let private x = randomTensor 31 4 6

let private mlp (rate: float) (mode: DropoutMode) (readout: int) =
    Stax.serial [ Stax.dense 512 1.5 (Some 0.1); Stax.relu; Stax.dropout rate mode; Stax.dense readout 1.2 (Some 0.05) ]

[<Tests>]
let tests =
    testList "StochasticTests" [
        testCase "train mode: same-sample entries gain 1/rate, the others are unchanged (x2 = None)" <| fun () ->
            // Reference: the same network without Dropout. The Dense after it maps K to W²K + b², so the
            // readout's same-sample entries are W²·K/rate + b² and the other entries W²·K + b² (W = 1.2, b = 0.05).
            let before = KernelFn.compute (Stax.serial [ Stax.dense 512 1.5 (Some 0.1); Stax.relu ]) x None Both
            let k = KernelFn.compute (mlp 0.7 DropoutMode.Train 1) x None Both
            for i in 0 .. 3 do
                for j in 0 .. 3 do
                    let f = if i = j then 1.0 / 0.7 else 1.0
                    let e = 1.44 * f * before.Nngp.Data[i * 4 + j] + 0.0025
                    within (1e-14 * abs e) e k.Nngp.Data[i * 4 + j] (sprintf "nngp[%d,%d]" i j)
                within (1e-14 * abs k.Nngp.Data[i * 5]) k.Nngp.Data[i * 5] k.Cov1.Data[i] (sprintf "cov1[%d] = nngp[%d,%d]" i i i)
            let atDropout = KernelFn.compute (Stax.serial [ Stax.dense 512 1.5 (Some 0.1); Stax.relu; Stax.dropout 0.7 DropoutMode.Train ]) x None Nngp
            Expect.isFalse atDropout.IsGaussian "not Gaussian after Dropout"

        testCase "train mode with a different x2 leaves nngp and ntk unchanged; x2 equal to x1 counts as x1" <| fun () ->
            let x2 = randomTensor 32 3 6
            let plain = KernelFn.compute (mlp 1.0 DropoutMode.Train 1) x (Some x2) Both
            let dropped = KernelFn.compute (mlp 0.5 DropoutMode.Train 1) x (Some x2) Both
            Expect.equal dropped.Nngp.Data plain.Nngp.Data "nngp"
            Expect.equal dropped.Ntk.Value.Data plain.Ntk.Value.Data "ntk"
            Expect.isLessThan dropped.Cov2.Value.Data[0] (1.0 / 0.5 * plain.Cov2.Value.Data[0] + 1e-12) "cov2 grows"
            Expect.isGreaterThan dropped.Cov2.Value.Data[0] (1.5 * plain.Cov2.Value.Data[0]) "cov2 grows"
            // neural_tangents' x1_is_x2 compares the arrays (within 1e-12): an equal x2 gets the factor too.
            let same = KernelFn.compute (mlp 0.5 DropoutMode.Train 1) x (Some(Tensor.copy x)) Both
            let none = KernelFn.compute (mlp 0.5 DropoutMode.Train 1) x None Both
            // Not bit for bit: with x2 given, the input variances are row norms instead of the Gram diagonal, and the
            // Relu's arc-cosine turns their last-ulp difference into ~√ulp ≈ 1e-8 at θ = 0 (see FixtureTests).
            // Without the 1/rate factor the diagonal would be off by 100%.
            assertClose "nngp with x2 = copy of x1" 1e-7 none.Nngp.Data same.Nngp.Data
            assertClose "ntk with x2 = copy of x1" 1e-7 none.Ntk.Value.Data same.Ntk.Value.Data

        testCase "test mode is the identity" <| fun () ->
            let a = KernelFn.compute (Stax.serial [ Stax.dense 8 1.5 (Some 0.1); Stax.relu; Stax.dense 1 1.0 None ]) x None Both
            let withTest = Stax.serial [ Stax.dense 8 1.5 (Some 0.1); Stax.relu; Stax.dropout 0.3 DropoutMode.Test; Stax.dense 1 1.0 None ]
            let b = KernelFn.compute withTest x None Both
            Expect.equal b.Nngp.Data a.Nngp.Data "test mode nngp"
            Expect.equal b.Ntk.Value.Data a.Ntk.Value.Data "test mode ntk"

        testCase "CNN: diagonal and full spatial layouts and the full batch layout agree" <| fun () ->
            // Dropout after a Conv multiplies same-sample same-position entries; the diagonal spatial layout holds
            // exactly those pairs, so it must equal the diagonal of the full layout.
            let x4 = Tensor.create [| 2; 3; 4; 2 |] (normals 5 48)
            let net = Stax.serial [ Stax.conv 8 [ 2; 2 ] None Padding.Same 1.3 (Some 0.1); Stax.relu; Stax.dropout 0.6 DropoutMode.Train ]
            let natural (k: Kernel) = if k.IsReversed then Kernel.reverse k else k
            let full = KernelFn.computeWithLayout { DiagonalBatch = Some false; DiagonalSpatial = Some false } net x4 None Both |> natural
            let diag = KernelFn.computeWithLayout { DiagonalBatch = Some true; DiagonalSpatial = Some true } net x4 None Both |> natural
            let fullDiag = Spatial.variances false false full.Cov1
            assertClose "cov1 diagonal of the full layouts vs the diagonal layout" 1e-15 diag.Cov1.Data fullDiag
            // Off-diagonal positions of the same sample are not scaled: compare with the network without Dropout.
            let plain = KernelFn.computeWithLayout { DiagonalBatch = Some false; DiagonalSpatial = Some false }
                            (Stax.serial [ Stax.conv 8 [ 2; 2 ] None Padding.Same 1.3 (Some 0.1); Stax.relu ]) x4 None Both |> natural
            let ratio = Array.map2 (fun (a: float) b -> a / b) full.Nngp.Data plain.Nngp.Data
            let scaled = ratio |> Array.filter (fun r -> abs (r - 1.0 / 0.6) < 1e-12) |> Array.length
            let unscaled = ratio |> Array.filter (fun r -> abs (r - 1.0) < 1e-12) |> Array.length
            // nngp is (2, 2, 3, 3, 4, 4): the scaled entries are n = n' and (h, w) = (h', w'), 2·12 of 576.
            Expect.equal scaled 24 "entries scaled by 1/rate"
            Expect.equal unscaled (576 - 24) "entries unchanged"

        testCase "Monte Carlo: Dense(1024) → Relu → Dropout(0.6) → Dense; M = 400 networks and masks" <| fun () ->
            // One hidden layer: given the hidden units, E over the readout weights and the masks of f(x_a)·f(x_b) is
            // W²/n Σ_i φ_i(a) φ_i(b) E[m_ia m_ib]/r² + b², with E[m²]/r² = 1/r for a = b and 1 otherwise; the first
            // layer's pre-activations are exactly Gaussian, so the mean equals the analytic kernel (no allowance).
            // Each network contributes the 64-channel mean of its readout (iid given the hidden layer).
            let width = 1024
            let net readout =
                Stax.serial [ Stax.dense width 1.5 (Some 0.1); Stax.relu; Stax.dropout 0.6 DropoutMode.Train; Stax.dense readout 1.2 (Some 0.05) ]
            let analytic = KernelFn.compute (net 1) x None Nngp
            let samples =
                Array.Parallel.init 400 (fun i ->
                    let _, p = InitFn.init (3000 + i) (net 64) x.Shape
                    let y = ApplyFn.applyWith { ApplyContext.Empty with Rng = Some(Rng.ofSeed (9000 + i)) } (net 64) p x
                    outerMean y)
            let worst = compareMean "Dropout nngp" analytic.Nngp samples 0.0
            note (sprintf "Dropout Monte Carlo (M = 400, width %d): worst |Δ|/SE %.2f" width worst)

        testCase "keep mask: the kept fraction is rate within 5 standard errors" <| fun () ->
            let n = 200000
            for rate in [ 0.1; 0.5; 0.9 ] do
                let kept = Stochastic.keepMask (Rng.ofSeed 42) rate n |> Array.filter id |> Array.length
                let se = sqrt (rate * (1.0 - rate) / float n)
                within (5.0 * se) rate (float kept / float n) (sprintf "kept fraction at rate %g" rate)

        testCase "finite layer: train mode without a key fails naming the fix; test mode and backward" <| fun () ->
            let net = mlp 0.5 DropoutMode.Train 3
            let _, p = InitFn.init 1 net x.Shape
            let e = throwsExactly<NeuralTangentsException> (fun () -> ApplyFn.apply net p x |> ignore)
            Expect.stringContains e.Message "random key" "names the missing key"
            let y = ApplyFn.applyWith { ApplyContext.Empty with Rng = Some(Rng.ofSeed 2) } (Stax.dropout 0.5 DropoutMode.Train) Params.none x
            for i in 0 .. x.Length - 1 do
                Expect.isTrue (y.Data[i] = 0.0 || y.Data[i] = x.Data[i] / 0.5) "each entry dropped or scaled by 1/rate"
            let t = Stax.dropout 0.5 DropoutMode.Test
            Expect.equal (ApplyFn.apply t Params.none x).Data x.Data "test mode is the identity"
            let _, gx = Backward.vjp t Params.none x x
            Expect.equal gx.Data x.Data "test mode backward is the identity"

        testCase "JSON: defaults, round trip and bad arguments" <| fun () ->
            Expect.equal (Json.decode """{"layer": "Dropout", "rate": 0.7}""") (Stax.dropout 0.7 DropoutMode.Train) "mode defaults to train"
            let l = Stax.dropout 0.25 DropoutMode.Test
            Expect.equal (Json.decode (Json.encode l)) l "round trip"
            for bad, fragment in [ """{"layer": "Dropout", "rate": 0}""", "rate"
                                   """{"layer": "Dropout", "rate": 1.5}""", "rate"
                                   """{"layer": "Dropout"}""", "rate"
                                   """{"layer": "Dropout", "rate": 0.5, "mode": "eval"}""", "mode" ] do
                let e = throwsExactly<Json.JsonArchitectureException> (fun () -> Json.decode bad |> ignore)
                Expect.stringContains e.Message "Dropout" "names the layer"
                Expect.stringContains e.Message fragment "names the argument"
    ]
