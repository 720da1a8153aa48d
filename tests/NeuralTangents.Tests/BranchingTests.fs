/// Examples for the branching rules (Rules/Branching.fs): FanInConcat's width weights and the width it reports to the
/// next layer, and fan-ins given a single input.
module NeuralTangents.Tests.BranchingTests

open Expecto
open NeuralTangents
open NeuralTangents.Tests.TestUtil

/// Three inputs of C = 2 features with small entries, so the input kernel x·x′/2 is exact.
let private x = Tensor.create [| 3; 2 |] [| 1.0; 1.0; 2.0; 0.0; 0.0; -2.0 |]

/// The input kernel x_i·x_j / C, written out.
let private inputKernel (i: int) (j: int) = (x.Data[2 * i] * x.Data[2 * j] + x.Data[2 * i + 1] * x.Data[2 * j + 1]) / 2.0

/// Every (i, j) entry of a 3×3 kernel from its closed form.
let private entries (f: int -> int -> float) = Array.init 9 (fun idx -> f (idx / 3) (idx % 3))

let private denseSpec (outDim: int) (wStd: float) (bStd: float) (p: Parameterization) (s: int * int) =
    Stax.denseWith { Stax.denseDefaults outDim with WStd = wStd; BStd = Some bStd; Parameterization = p; S = s }

[<Tests>]
let tests =
    testList "BranchingTests" [
        testCase "FanInConcat of widths 3 and 5 is the width-weighted mean (3·K_a + 5·K_b)/8" <| fun () ->
            // Branch a: Dense(3, W = 1, b = 0.5): K_a = x·x′/2 + 0.25; branch b: Dense(5, W = 2, b = 1): K_b = 4·x·x′/2 + 1.
            // Concatenating 3 and 5 channels, a new unit's pre-activation sums over 8 channels of which 3 come from a,
            // so its covariance is (3·K_a + 5·K_b)/8 (neural_tangents' FanInConcat on the channel axis). In the ntk
            // parameterization each branch's NTK equals its NNGP (input NTK 0), so the same mean holds for the NTK.
            let net = Serial [ FanOut 2
                               Parallel [ Stax.dense 3 1.0 (Some 0.5); Stax.dense 5 2.0 (Some 1.0) ]
                               FanInConcat -1 ]
            let k = KernelFn.compute net x None Both
            let expected = entries (fun i j -> (3.0 * (inputKernel i j + 0.25) + 5.0 * (4.0 * inputKernel i j + 1.0)) / 8.0)
            // One entry by hand: x₀·x₀/2 = 1, K_a = 1.25, K_b = 5, (3·1.25 + 5·5)/8 = 3.59375.
            Expect.floatClose Accuracy.veryHigh expected[0] 3.59375 "the closed form itself, entry (0, 0)"
            assertClose "nngp" 1e-14 expected k.Nngp.Data
            assertClose "ntk" 1e-14 expected k.Ntk.Value.Data
            Expect.equal k.Shape1 [| 3; 8 |] "the concatenation has 3 + 5 channels"

        testCase "a standard-parameterization Dense after FanInConcat reads N_in as the sum of branch widths" <| fun () ->
            // Branches Dense(3) and Dense(5), standard with s = (1, 2): finite widths 3·2 = 6 and 5·2 = 10, so the
            // concatenation has N_in = 16 = 8·s1 channels. Branch NTKs (standard, arXiv:2001.07301): the input width is
            // C = 2, so Θ_a = Θ_b = (C/s0)·x·x′/C + 1 = x·x′ + 1 (a bias term +1 even for b_std = 0.5's variance).
            // The concatenation's weights are 6/16 = 3/8 and 10/16 = 5/8 (proportional to the widths, as before).
            // Readout Dense(1, W = 1.5, b = 0.1, standard, s = (1, 1)):
            //   nngp = 2.25·K_cat + 0.01,  ntk = (16/1)·K_cat + 2.25·Θ_cat + 1.
            let std = Parameterization.Standard
            let net = Serial [ FanOut 2
                               Parallel [ denseSpec 3 1.0 0.5 std (1, 2); denseSpec 5 2.0 1.0 std (1, 2) ]
                               FanInConcat -1
                               denseSpec 1 1.5 0.1 std (1, 1) ]
            let k = KernelFn.compute net x None Both
            let kCat i j = (3.0 * (inputKernel i j + 0.25) + 5.0 * (4.0 * inputKernel i j + 1.0)) / 8.0
            let thetaCat i j = 2.0 * inputKernel i j + 1.0 // (3·Θ + 5·Θ)/8 with Θ_a = Θ_b = x·x′ + 1
            assertClose "nngp" 1e-14 (entries (fun i j -> 2.25 * kCat i j + 0.01)) k.Nngp.Data
            assertClose "ntk" 1e-14 (entries (fun i j -> 16.0 * kCat i j + 2.25 * thetaCat i j + 1.0)) k.Ntk.Value.Data
            // Entry (0, 0) by hand: K_cat = 3.59375, Θ_cat = 3, ntk = 57.5 + 6.75 + 1 = 65.25.
            Expect.floatClose Accuracy.veryHigh k.Ntk.Value.Data[0] 65.25 "ntk entry (0, 0)"

        testCase "the ntk-parameterization readout after FanInConcat does not depend on the widths" <| fun () ->
            // Same concatenation in the ntk parameterization (widths 3 and 5): readout ntk = nngp' + W²·Θ_cat with
            // nngp' = 2.25·K_cat + 0.01 and Θ_cat = K_cat here, i.e. 4.5·K_cat + 0.01: no N_in term, no width enters.
            let net = Serial [ FanOut 2
                               Parallel [ Stax.dense 3 1.0 (Some 0.5); Stax.dense 5 2.0 (Some 1.0) ]
                               FanInConcat -1
                               Stax.dense 1 1.5 (Some 0.1) ]
            let k = KernelFn.compute net x None Both
            let kCat i j = (3.0 * (inputKernel i j + 0.25) + 5.0 * (4.0 * inputKernel i j + 1.0)) / 8.0
            assertClose "ntk" 1e-14 (entries (fun i j -> 4.5 * kCat i j + 0.01)) k.Ntk.Value.Data

        testList "a fan-in given a single input (no FanOut) says to split first" [
            for name, merge in [ "FanInSum", FanInSum; "FanInProd", FanInProd; "FanInConcat", FanInConcat -1 ] ->
                testCase name <| fun () ->
                    let e = throwsExactly<NeuralTangentsException> (fun () ->
                        KernelFn.compute (Serial [ Stax.dense 4 1.0 None; merge ]) x None Both |> ignore)
                    Expect.stringContains e.Message name "names the layer"
                    Expect.stringContains e.Message "single input" "says what is wrong"
                    Expect.stringContains e.Message "FanOut" "says to split with FanOut"
                    Expect.stringContains e.Message "parallel" "and parallel"
        ]

        testCase "branches whose channel axis is written -1 and 1 on rank-2 kernels have the same layout" <| fun () ->
            // Identity keeps Dense's channel_axis −1; Flatten's output states channel axis 1: the same axis of an
            // (N, C) activation, so the product is defined (K·K with K the Dense's NNGP, here x·x′/C · 1 + 0).
            let net = Serial [ Stax.dense 3 1.0 None; FanOut 2; Parallel [ Identity; Stax.flatten ]; FanInProd ]
            let k = KernelFn.compute net x None Nngp
            assertClose "nngp" 1e-14 (entries (fun i j -> inputKernel i j * inputKernel i j)) k.Nngp.Data

        testList "FanInConcat along a spatial axis concatenates positions (block-diagonal across branches)" [
            // Two 1-D images of W = 3 positions and C = 2 channels with small binary entries (exact kernels):
            // K_pq = x_p·x′_q / 2. Branch a: Dense(W_std = 1, no bias) gives K; branch b: Dense(W_std = 2, b_std = 0.5)
            // gives 4K + 0.25. Concatenated along the positions (axis 1) they make 6 positions.
            let img = Tensor.create [| 2; 3; 2 |] [| 1.0; 0.0; 1.0; 1.0; 0.0; -1.0; 2.0; 1.0; -1.0; 0.0; 1.0; 1.0 |]
            let k (i: int) (j: int) (p: int) (q: int) =
                (img.Data[(i * 3 + p) * 2] * img.Data[(j * 3 + q) * 2] + img.Data[(i * 3 + p) * 2 + 1] * img.Data[(j * 3 + q) * 2 + 1]) / 2.0
            let branches = [ FanOut 2; Parallel [ Stax.dense 4 1.0 None; Stax.dense 4 2.0 (Some 0.5) ]; FanInConcat 1 ]
            let at4 (f: int -> int -> float) = Array.init 4 (fun idx -> f (idx / 2) (idx % 2))
            testCase "diagonal layout (Flatten on top): the mean over the 6 positions" <| fun () ->
                // Flatten averages same-position covariances: (Σ_p K_pp + Σ_p (4K_pp + 0.25)) / 6; NTK = NNGP here
                // (ntk parameterization, one layer: Θ = K′).
                let r = KernelFn.compute (Serial(branches @ [ Stax.flatten ])) img None Both
                let expected = at4 (fun i j -> (5.0 * (List.sumBy (fun p -> k i j p p) [ 0 .. 2 ]) + 0.75) / 6.0)
                assertClose "nngp" 1e-15 expected r.Nngp.Data
                assertClose "ntk" 1e-15 expected r.Ntk.Value.Data
            testCase "full layout (GlobalAvgPool on top): zero covariance between the branches' positions" <| fun () ->
                // The mean over all 36 position pairs of the block-diagonal covariance:
                // (Σ_pq K_pq + Σ_pq (4K_pq + 0.25)) / 36, the 18 cross-branch pairs contributing 0 (neural_tangents).
                let r = KernelFn.compute (Serial(branches @ [ Stax.globalAvgPool ])) img None Both
                let total i j = List.sum [ for p in 0 .. 2 do for q in 0 .. 2 -> k i j p q ]
                assertClose "nngp" 1e-15 (at4 (fun i j -> (5.0 * total i j + 2.25) / 36.0)) r.Nngp.Data
            testCase "non-Gaussian branches are refused with the fix" <| fun () ->
                let net = Serial [ FanOut 2; Parallel [ Serial [ Stax.dense 4 1.0 None; Stax.relu ]; Stax.dense 4 1.0 None ]; FanInConcat 1; Stax.flatten ]
                let e = throwsExactly<NeuralTangentsException> (fun () -> KernelFn.compute net img None Both |> ignore)
                Expect.stringContains e.Message "mean-zero Gaussian" "says why"
        ]
    ]
