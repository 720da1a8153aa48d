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
    { Stax.attentionDefaults 256 256 64 4 with
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
/// 10% or more. Cost is targeted where the variance is: the bias depends on the widths (hidden 256, n_chan_key 256 per
/// head), not on the number of heads, so 4 heads of n_chan_key 256 (a quarter of the key draws of 16 heads) keep it;
/// n_chan_out = 256 output channels (given the value heads, each is an independent Gaussian, so the mean of y·yᵀ over
/// c of them has relative variance 2/c: 2/256 instead of 2/32) cut that part of the per-sample variance, which is
/// what lets M drop from 200 to 120 (the tolerance is Z·SE from the samples themselves, so a larger variance would
/// widen it, not hide a failure; the notes print the worst |Δ|/SE).
let private monteCarlo (name: string) (a: AttentionSpec) =
    let net = Stax.serial [ Stax.dense 256 1.4 (Some 0.1); Stax.relu; Stax.globalSelfAttentionWith a; Stax.flatten ]
    let analytic = KernelFn.compute net x None Nngp
    let samples =
        Array.Parallel.init 120 (fun i ->
            let _, p = InitFn.init (12000 + i) net x.Shape
            outerMean (ApplyFn.apply net p x))
    let allowance = 8.0 / 256.0 * (analytic.Nngp.Data |> Array.map abs |> Array.max)
    let worst = compareMean (name + " nngp") analytic.Nngp samples allowance
    note (sprintf "GlobalSelfAttention %s Monte Carlo (M = 120): worst |Δ|/SE %.2f" name worst)

/// The decay function must move the analytic kernel by more than the Monte Carlo allowance (8/256 of the largest
/// entry) several times over, so that a rule ignoring it (one-hot embeddings) would fail the comparison.
let private decayMatters (name: string) (a: AttentionSpec) =
    let net (d: PosEmbDecay) = Stax.serial [ Stax.dense 256 1.4 (Some 0.1); Stax.relu; Stax.globalSelfAttentionWith { a with PosEmbDecayFn = d }; Stax.flatten ]
    let k = (KernelFn.compute (net a.PosEmbDecayFn) x None Nngp).Nngp.Data
    let k0 = (KernelFn.compute (net PosEmbDecay.OneHot) x None Nngp).Nngp.Data
    let gap = Array.map2 (fun u v -> abs (u - v)) k k0 |> Array.max
    let allowance = 8.0 / 256.0 * (k |> Array.map abs |> Array.max)
    note (sprintf "GlobalSelfAttention %s: the decay moves the kernel by %.3g, %.1f× the Monte Carlo allowance" name gap (gap / allowance))
    if not (gap > 3.0 * allowance) then failtestf "%s: the decay moves the kernel by only %.3g (allowance %.3g)" name gap allowance

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

        testCase "linear scaling SOFTMAX with CONCAT embeddings in values: the closed form written out on (S × S) blocks" <| fun () ->
            // 1-D inputs after Dense(16) → Relu: covariances (N, N', H, H'), no reversal. With kw = 16/(16 + 8) and
            // pw = 1.3²·8/(16 + 8): Ṽ = kw·K + pw·I; G_n = softmax_q(0.99·Ṽ1[n]); nngp' = 0.96²·G_a·Ṽ12·G_bᵀ + 0.04,
            // ntk' = 0.96²·G_a·Θ̃·G_bᵀ + 0.04 + 2·(nngp' − 0.04), with W_Q W_K = 0.99, W_O W_V = 0.96, b = 0.2.
            let a = { spec AttentionMechanism.Softmax with PosEmbType = PositionalEmbedding.Concat; NChanPosEmb = Some 8; ValPosEmb = true; WPosEmbStd = 1.3 }
            let hidden = Stax.serial [ Stax.dense 16 1.4 (Some 0.1); Stax.relu ]
            let x2 = Tensor.create [| 2; 4; 3 |] (normals 92 24)
            let full = { DiagonalBatch = None; DiagonalSpatial = Some false }
            let before = KernelFn.computeWithLayout full hidden x (Some x2) Both
            let k = KernelFn.computeWithLayout full (Stax.serial [ hidden; Stax.globalSelfAttentionWith a ]) x (Some x2) Both
            let kw, pw = 16.0 / 24.0, 1.69 * 8.0 / 24.0
            let mixAt (t: float[]) (blk: int) (p: int) (q: int) = kw * t[blk * 16 + p * 4 + q] + (if p = q then pw else 0.0)
            let softmaxRows (c: float[]) (n: int) =
                Array.init n (fun i ->
                    Array.init 4 (fun p ->
                        let z = Array.init 4 (fun q -> exp (0.99 * mixAt c i p q))
                        z |> Array.map (fun v -> v / Array.sum z)))
            let g1, g2 = softmaxRows before.Cov1.Data 3, softmaxRows before.Cov2.Value.Data 2
            let ov2 = 0.96 * 0.96
            for i in 0 .. 2 do
                for j in 0 .. 1 do
                    for p in 0 .. 3 do
                        for p' in 0 .. 3 do
                            let w (t: float[]) =
                                Seq.sum (seq { for q in 0 .. 3 do
                                                 for q' in 0 .. 3 -> g1.[i].[p].[q] * mixAt t (i * 2 + j) q q' * g2.[j].[p'].[q'] })
                            let nngp = ov2 * w before.Nngp.Data + 0.04
                            let ntk = ov2 * w before.Ntk.Value.Data + 0.04 + 2.0 * (nngp - 0.04)
                            let e = ((i * 2 + j) * 4 + p) * 4 + p'
                            within (1e-13 * abs nngp) nngp k.Nngp.Data[e] (sprintf "nngp[%d,%d,%d,%d]" i j p p')
                            within (1e-13 * abs ntk) ntk k.Ntk.Value.Data[e] (sprintf "ntk[%d,%d,%d,%d]" i j p p')

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

        testCase "refused: square-root scaling with SOFTMAX (no closed form)" <| fun () ->
            let net = Stax.serial [ Stax.dense 8 1.0 None; Stax.globalSelfAttentionWith { spec AttentionMechanism.Softmax with LinearScaling = false } ]
            let e = throwsExactly<NeuralTangentsException> (fun () -> KernelFn.compute net x None Both |> ignore)
            Expect.stringContains e.Message "closed form" "names the reason"

        testCase "backward pass matches central differences (input and every parameter), four configurations" <| fun () ->
            // Small layers so that every entry can be perturbed: the derivative of ⟨ct, f⟩ against (f(θ + h) − f(θ − h))/2h
            // with h = 1e-6, whose truncation error O(h²) and rounding error O(ε/h) are both below 1e-8 here.
            let small = { Stax.attentionDefaults 3 4 2 2 with WKeyStd = 1.1; WQueryStd = 0.9; WValueStd = 1.2; WOutStd = 0.8; BStd = Some 0.2 }
            let configs =
                [ "SOFTMAX sqrt", { small with LinearScaling = false }
                  "RELU CONCAT val", { small with AttentionMechanism = AttentionMechanism.Relu; PosEmbType = PositionalEmbedding.Concat; NChanPosEmb = Some 2; ValPosEmb = true; WPosEmbStd = 1.3 }
                  "ABS SUM", { small with AttentionMechanism = AttentionMechanism.Abs; PosEmbType = PositionalEmbedding.Sum; WPosEmbStd = 0.7 }
                  "SOFTMAX CONCAT keys", { small with PosEmbType = PositionalEmbedding.Concat; NChanPosEmb = Some 3 } ]
            for name, a in configs do
                let l = Stax.globalSelfAttentionWith a
                let xs = Tensor.create [| 2; 4; 3 |] (normals 93 24)
                let _, p = InitFn.init 7 l xs.Shape
                let y = ApplyFn.apply l p xs
                let ct = Tensor.create y.Shape (normals 94 y.Length)
                let f (p: Params) (t: Tensor) = Array.fold2 (fun acc u v -> acc + u * v) 0.0 (ApplyFn.apply l p t).Data ct.Data
                let g, gx = Backward.vjp l p xs ct
                let h = 1e-6
                for i in 0 .. xs.Length - 1 do
                    let shifted (d: float) = let v = Array.copy xs.Data in v[i] <- v[i] + d; Tensor.create xs.Shape v
                    within 1e-7 ((f p (shifted h) - f p (shifted -h)) / (2.0 * h)) gx.Data[i] (sprintf "%s ∂x[%d]" name i)
                match p, g with
                | Leaf ps, Leaf gs ->
                    Expect.equal gs.Length ps.Length (name + ": one gradient per parameter")
                    ps |> List.iteri (fun k (t: Tensor) ->
                        for i in 0 .. t.Length - 1 do
                            let shifted (d: float) =
                                Leaf(ps |> List.mapi (fun k' (u: Tensor) ->
                                    if k' <> k then u else let v = Array.copy u.Data in v[i] <- v[i] + d; Tensor.create u.Shape v))
                            within 1e-7 ((f (shifted h) xs - f (shifted -h) xs) / (2.0 * h)) gs[k].Data[i] (sprintf "%s ∂θ%d[%d]" name k i))
                | _ -> failtest "parameters are a leaf"

        testCase "Monte Carlo NTK: Dense(256) → Relu → SOFTMAX attention → Flatten → Dense(1), M = 150" <| fun () ->
            // The empirical NTK (every weight of every layer, through the attention's backward pass) against the
            // analytic NTK; the same O(1/width) allowance as the NNGP checks (8/256 of the largest entry). Two heads of
            // n_chan_key 128 and n_chan_val 128 (256 value channels, 128 before) and n_chan_out 32: the width-driven bias
            // is unchanged while the key parameters and their gradients are a quarter of those of 8 heads.
            let a = { spec AttentionMechanism.Softmax with NChanKey = 128; NHeads = 2; NChanVal = 128; NChanOut = 32 }
            let net = Stax.serial [ Stax.dense 256 1.4 (Some 0.1); Stax.relu; Stax.globalSelfAttentionWith a; Stax.flatten; Stax.dense 1 1.1 (Some 0.1) ]
            let analytic = KernelFn.compute net x None Both
            let samples =
                Array.Parallel.init 150 (fun i ->
                    let _, p = InitFn.init (15000 + i) net x.Shape
                    Empirical.ntk net p x None)
            let allowance = 8.0 / 256.0 * (analytic.Ntk.Value.Data |> Array.map abs |> Array.max)
            let worst = compareMean "attention ntk" analytic.Ntk.Value samples allowance
            note (sprintf "GlobalSelfAttention SOFTMAX NTK Monte Carlo (M = 150): worst |Δ|/SE %.2f" worst)

        testCase "JSON: defaults, round trip, pos_emb_decay_fn refused" <| fun () ->
            let l = Json.decode """{"layer": "GlobalSelfAttention", "n_chan_out": 4, "n_chan_key": 5, "n_chan_val": 6, "n_heads": 2}"""
            Expect.equal l (Stax.globalSelfAttentionWith (Stax.attentionDefaults 4 5 6 2)) "defaults"
            let full = Stax.globalSelfAttentionWith { spec AttentionMechanism.Relu with PosEmbType = PositionalEmbedding.Concat; NChanPosEmb = Some 3 }
            Expect.equal (Json.decode (Json.encode full)) full "round trip"
            let e = throwsExactly<Json.JsonArchitectureException> (fun () ->
                        Json.decode """{"layer": "GlobalSelfAttention", "n_chan_out": 4, "n_chan_key": 5, "n_chan_val": 6, "n_heads": 2, "pos_emb_decay_fn": "exp"}""" |> ignore)
            Expect.stringContains e.Message "pos_emb_decay_fn" "names the argument"

        testCase "pos_emb_decay_fn: the covariance of the distances, by hand on a 2 × 3 grid" <| fun () ->
            // positions row-major: p = 3·i + j; d = |Δi|^p_norm + |Δj|^p_norm (neural_tangents' _pos_emb_pdist).
            let r = NeuralTangents.Layers.Attention.posEmbCovariance (PosEmbDecay.Exponential 2.0) 1.5 [| 2; 3 |]
            let expected = Array.init 36 (fun e ->
                let p, q = e / 6, e % 6
                let d = float (abs (p / 3 - q / 3)) ** 1.5 + float (abs (p % 3 - q % 3)) ** 1.5
                exp (-d / 2.0))
            assertClose "exp" 1e-15 expected r
            let rp = NeuralTangents.Layers.Attention.posEmbCovariance (PosEmbDecay.Power 0.5) 2.0 [| 2; 3 |]
            within 1e-15 ((1.0 + 1.0 + 4.0) ** -0.5) rp[0 * 6 + 5] "power at (0,0)-(1,2)"
            let one = NeuralTangents.Layers.Attention.posEmbCovariance PosEmbDecay.OneHot 2.0 [| 2; 3 |]
            Expect.equal one (Array.init 36 (fun e -> if e / 6 = e % 6 then 1.0 else 0.0)) "None: the identity"

        testCase "Monte Carlo: SOFTMAX with SUM embeddings of covariance exp(-|p - q| / 3)" <| fun () ->
            let a =
                { spec AttentionMechanism.Softmax with
                    PosEmbType = PositionalEmbedding.Sum; WPosEmbStd = 1.6; PosEmbPNorm = 1.0; PosEmbDecayFn = PosEmbDecay.Exponential 3.0 }
            decayMatters "SOFTMAX SUM exp decay" a
            monteCarlo "SOFTMAX SUM exp decay" a

        testCase "Monte Carlo: RELU with CONCAT embeddings in keys and values, covariance (1 + |p - q|²)^-1" <| fun () ->
            let a =
                { spec AttentionMechanism.Relu with
                    PosEmbType = PositionalEmbedding.Concat; NChanPosEmb = Some 128; ValPosEmb = true; WPosEmbStd = 1.3
                    PosEmbPNorm = 2.0; PosEmbDecayFn = PosEmbDecay.Power 1.0 }
            decayMatters "RELU CONCAT power decay" a
            monteCarlo "RELU CONCAT power decay" a

        testCase "pos_emb_decay_fn in JSON: [\"exp\", l] and [\"power\", a] round-trip; other values are refused" <| fun () ->
            for decay in [ PosEmbDecay.Exponential 1.5; PosEmbDecay.Power 2.0 ] do
                let l = Stax.globalSelfAttentionWith { spec AttentionMechanism.Softmax with PosEmbType = PositionalEmbedding.Sum; PosEmbDecayFn = decay }
                Expect.equal (Json.decode (Json.encode l)) l "round trip"
            let l = Json.decode """{"layer": "GlobalSelfAttention", "n_chan_out": 4, "n_chan_key": 5, "n_chan_val": 6, "n_heads": 2, "pos_emb_decay_fn": ["exp", 3]}"""
            match l with
            | GlobalSelfAttention a -> Expect.equal a.PosEmbDecayFn (PosEmbDecay.Exponential 3.0) "read"
            | other -> failtestf "decoded %A" other
            for bad in [ "[\"exp\", -1]"; "[\"gauss\", 1]"; "[\"power\"]" ] do
                let e = throwsExactly<Json.JsonArchitectureException> (fun () ->
                            Json.decode ("""{"layer": "GlobalSelfAttention", "n_chan_out": 4, "n_chan_key": 5, "n_chan_val": 6, "n_heads": 2, "pos_emb_decay_fn": """ + bad + "}") |> ignore)
                Expect.stringContains e.Message "pos_emb_decay_fn" ("names the argument: " + bad)
            throwsExactly<System.ArgumentException> (fun () ->
                Stax.globalSelfAttentionWith { spec AttentionMechanism.Softmax with PosEmbDecayFn = PosEmbDecay.Power 0.0 } |> ignore) |> ignore
    ]
