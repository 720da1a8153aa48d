/// GlobalSelfAttention (Layers/Attention.fs): the infinite-width kernel against Monte Carlo of wide finite layers
/// for every mechanism and positional embedding, layouts, refusals and JSON.
module NeuralTangents.Tests.AttentionTests

open Expecto
open NeuralTangents
open NeuralTangents.Tests.TestUtil
open NeuralTangents.Tests.McCheck

/// 3 sequences of 4 positions with 3 channels.
let private x = Tensor.create [| 3; 4; 3 |] (normals 91 36)

let private spec (mechanism: AttentionMechanism) =
    { Stax.attentionDefaults 32 256 16 16 with
        AttentionMechanism = mechanism
        WKeyStd = 1.1
        WQueryStd = 0.9
        WValueStd = 1.2
        WOutStd = 0.8
        BStd = Some 0.2 }

/// Dense(256) per position → Relu → attention → Flatten. Each network's empirical NNGP is the mean over
/// positions and output channels of y·yᵀ, which is what Flatten's kernel is (the mean of same-position covariances).
/// The finite scores converge to the analytic weights as the hidden width (256) and n_chan_key (256) grow, and the
/// heads·n_chan_val = 256 value channels average the output; the mean then has an O(1/width) bias, allowed as 8/256
/// of the largest entry (3%), while an error in the rule (a wrong scale, a missing embedding term) moves entries by
/// 10% or more.
let private monteCarlo (name: string) (a: AttentionSpec) =
    let net = Stax.serial [ Stax.dense 256 1.4 (Some 0.1); Stax.relu; Stax.globalSelfAttentionWith a; Stax.flatten ]
    let analytic = KernelFn.compute net x None Nngp
    let samples =
        Array.Parallel.init 200 (fun i ->
            let _, p = InitFn.init (12000 + i) net x.Shape
            outerMean (ApplyFn.apply net p x))
    let allowance = 8.0 / 256.0 * (analytic.Nngp.Data |> Array.map abs |> Array.max)
    let worst = compareMean (name + " nngp") analytic.Nngp samples allowance
    note (sprintf "GlobalSelfAttention %s Monte Carlo (M = 200): worst |Δ|/SE %.2f" name worst)

[<Tests>]
let tests =
    testList "AttentionTests" [
        testCase "Monte Carlo: SOFTMAX, linear scaling, no embeddings" <| fun () ->
            monteCarlo "SOFTMAX" (spec AttentionMechanism.Softmax)

        testCase "Monte Carlo: RELU with CONCAT embeddings (n_chan_pos_emb 128) in keys and values" <| fun () ->
            monteCarlo "RELU CONCAT" { spec AttentionMechanism.Relu with PosEmbType = PositionalEmbedding.Concat; NChanPosEmb = Some 128; ValPosEmb = true; WPosEmbStd = 1.3 }

        testCase "Monte Carlo: ABS with SUM embeddings in keys only" <| fun () ->
            monteCarlo "ABS SUM" { spec AttentionMechanism.Abs with PosEmbType = PositionalEmbedding.Sum; WPosEmbStd = 0.7 }

        testCase "Monte Carlo: IDENTITY with square-root scaling (independent queries)" <| fun () ->
            monteCarlo "IDENTITY sqrt" { spec AttentionMechanism.Identity with LinearScaling = false }

        testCase "layouts: full batch agrees with diagonal batch; diagonal spatial refused" <| fun () ->
            let net = Stax.serial [ Stax.dense 8 1.4 (Some 0.1); Stax.relu; Stax.globalSelfAttentionWith (spec AttentionMechanism.Softmax) ]
            let d = KernelFn.computeWithLayout { DiagonalBatch = None; DiagonalSpatial = Some false } net x None Both
            let f = KernelFn.computeWithLayout { DiagonalBatch = Some false; DiagonalSpatial = Some false } net x None Both
            assertClose "nngp" 1e-14 d.Nngp.Data f.Nngp.Data
            assertClose "ntk" 1e-14 d.Ntk.Value.Data f.Ntk.Value.Data
            // cov1 (N, 4, 4) vs the (n, n) blocks of (N, N, 4, 4).
            assertClose "cov1" 1e-14 d.Cov1.Data (Array.init 48 (fun e -> f.Cov1.Data[((e / 16) * 3 + e / 16) * 16 + e % 16]))
            Expect.throwsT<NeuralTangentsException>
                (fun () -> KernelFn.computeWithLayout { DiagonalBatch = None; DiagonalSpatial = Some true } net x None Both |> ignore)
                "diagonal spatial"

        testCase "refused: square-root scaling with SOFTMAX (no closed form); the backward pass" <| fun () ->
            let net = Stax.serial [ Stax.dense 8 1.0 None; Stax.globalSelfAttentionWith { spec AttentionMechanism.Softmax with LinearScaling = false } ]
            let e = throwsExactly<NeuralTangentsException> (fun () -> KernelFn.compute net x None Both |> ignore)
            Expect.stringContains e.Message "closed form" "names the reason"
            let _, p = InitFn.init 1 net x.Shape
            Expect.throwsT<NeuralTangentsException> (fun () -> Backward.vjp net p x (ApplyFn.apply net p x) |> ignore) "backward"

        testCase "JSON: defaults, round trip, pos_emb_decay_fn refused" <| fun () ->
            let l = Json.decode """{"layer": "GlobalSelfAttention", "n_chan_out": 4, "n_chan_key": 5, "n_chan_val": 6, "n_heads": 2}"""
            Expect.equal l (Stax.globalSelfAttentionWith (Stax.attentionDefaults 4 5 6 2)) "defaults"
            let full = Stax.globalSelfAttentionWith { spec AttentionMechanism.Relu with PosEmbType = PositionalEmbedding.Concat; NChanPosEmb = Some 3 }
            Expect.equal (Json.decode (Json.encode full)) full "round trip"
            let e = throwsExactly<Json.JsonArchitectureException> (fun () ->
                        Json.decode """{"layer": "GlobalSelfAttention", "n_chan_out": 4, "n_chan_key": 5, "n_chan_val": 6, "n_heads": 2, "pos_emb_decay_fn": "exp"}""" |> ignore)
            Expect.stringContains e.Message "pos_emb_decay_fn" "names the argument"
    ]
