/// Examples for the linear rules (Rules/Linear.fs): the standard parameterization's N_in on non-default layouts, and
/// widths that do not fit an int.
module NeuralTangents.Tests.LinearTests

open Expecto
open NeuralTangents
open NeuralTangents.Tests.TestUtil

/// Three inputs of C = 4 features stored (C, N) = (4, 3): column n is input n.
let private xCN =
    Tensor.create [| 4; 3 |] [| 1.0; 0.5; -1.0
                                2.0; 0.0; 0.5
                                0.0; -1.5; 1.0
                                -1.0; 1.0; 2.0 |]

/// G[i, j] = x_i·x_j / C over the channel axis 0 of the (C, N) storage.
let private gram (i: int) (j: int) = (Seq.init 4 (fun c -> xCN.Data[c * 3 + i] * xCN.Data[c * 3 + j]) |> Seq.sum) / 4.0

let private entries (f: int -> int -> float) = Array.init 9 (fun idx -> f (idx / 3) (idx % 3))

let private standardCN (outDim: int) (wStd: float) (bStd: float) (s: int * int) =
    Stax.denseWith
        { Stax.denseDefaults outDim with
            WStd = wStd; BStd = Some bStd; BatchAxis = 1; ChannelAxis = 0
            Parameterization = Parameterization.Standard; S = s }

[<Tests>]
let tests =
    testList "LinearTests" [
        testCase "standard parameterization reads N_in from channel_axis, not from the last axis" <| fun () ->
            // Inputs (C, N) = (4, 3) with batch_axis = 1, channel_axis = 0, so N_in = C = 4 (the last axis holds the
            // batch, 3). Standard Dense (arXiv:2001.07301; neural_tangents Dense): nngp' = W²·nngp + b²,
            // ntk' = (N_in/s0)·nngp + W²·ntk (+1 with a bias). Input: nngp = G, ntk = 0.
            //   Dense(7, W = 1.2, b = 0.3, s = (1, 2)):  nngp1 = 1.44·G + 0.09,  ntk1 = (4/1)·G + 1; finite width 14.
            //   Monomial(1) (the identity: σ̇ = 1) keeps both.
            //   Dense(1, W = 0.9, b = 0.2, s = (2, 1)):  nngp2 = 0.81·nngp1 + 0.04,  ntk2 = (14/2)·nngp1 + 0.81·ntk1 + 1.
            let net = Serial [ standardCN 7 1.2 0.3 (1, 2); Stax.monomial 1; standardCN 1 0.9 0.2 (2, 1) ]
            let k = KernelFn.compute net xCN None Both
            let nngp1 i j = 1.44 * gram i j + 0.09
            let ntk1 i j = 4.0 * gram i j + 1.0
            assertClose "nngp" 1e-14 (entries (fun i j -> 0.81 * nngp1 i j + 0.04)) k.Nngp.Data
            assertClose "ntk" 1e-14 (entries (fun i j -> 7.0 * nngp1 i j + 0.81 * ntk1 i j + 1.0)) k.Ntk.Value.Data
            // One layer alone, entry (0, 0) by hand: G₀₀ = (1 + 4 + 0 + 1)/4 = 1.5, ntk = 4·1.5 + 1 = 7.
            let one = KernelFn.compute (standardCN 7 1.2 0.3 (1, 2)) xCN None Both
            Expect.floatClose Accuracy.veryHigh one.Ntk.Value.Data[0] 7.0 "one standard layer, ntk (0, 0)"
            Expect.equal k.Nngp.Shape [| 3; 3 |] "(N, N) with N = 3"

        testCase "Dense(out_dim = 10⁹, standard, s = (1, 3)) is refused: the width out_dim·s[1] overflows an int" <| fun () ->
            let d = Stax.denseWith { Stax.denseDefaults 1_000_000_000 with Parameterization = Parameterization.Standard; S = (1, 3) }
            let e = throwsExactly<NeuralTangentsException> (fun () ->
                KernelFn.compute d (randomTensor 1 2 3) None Both |> ignore)
            Expect.stringContains e.Message "out_dim·s[1]" "names out_dim·s[1]"
            Expect.stringContains e.Message "3000000000" "states the width"
            // The same out_dim in the ntk parameterization (width out_dim) and s[1] = 2 (width 2·10⁹) fit.
            for spec in [ { Stax.denseDefaults 1_000_000_000 with Parameterization = Parameterization.Ntk; S = (1, 3) }
                          { Stax.denseDefaults 1_000_000_000 with Parameterization = Parameterization.Standard; S = (1, 2) } ] do
                KernelFn.compute (Stax.denseWith spec) (randomTensor 1 2 3) None Both |> ignore
    ]
