/// Masking (Masking.fs, neural_tangents' mask_constant): hand-computed kernels, Monte Carlo of finite networks with
/// the same masks, kernel laws on masked inputs, and the layers that refuse masks.
module NeuralTangents.Tests.MaskingTests

open System
open Expecto
open NeuralTangents
open NeuralTangents.Tests.TestUtil
open NeuralTangents.Tests.McCheck

/// The padding value of the tests' variable-length sequences.
let private pad = -7.0

/// (N, L, C) sequences with random entries; sample i keeps its first lengths[i] positions, the rest are all `pad`
/// (neural_tangents' use: padding of variable-length sequences).
let private sequences (seed: int) (lengths: int list) (l: int) (c: int) =
    let n = lengths.Length
    let v = normals seed (n * l * c)
    let lengths = List.toArray lengths
    Tensor.create [| n; l; c |] (Array.init (n * l * c) (fun e -> if (e / c) % l >= lengths[e / (l * c)] then pad else v[e]))

/// x[i, h, :] as an array.
let private row (x: Tensor) (i: int) (h: int) =
    let l, c = x.Shape[1], x.Shape[2]
    Array.sub x.Data ((i * l + h) * c) c

let private isPad (x: Tensor) (i: int) (h: int) = row x i h |> Array.forall ((=) pad)

let private dot (a: float[]) (b: float[]) = Array.fold2 (fun s u v -> s + u * v) 0.0 a b

let private full = { DiagonalBatch = Some true; DiagonalSpatial = Some false }

/// Symmetric and PSD: eigenvalues of the symmetric part ≥ −1e-12·max|eig|.
let private assertPsd (what: string) (k: Tensor) =
    let n = k.Shape[0]
    for i in 0 .. n - 1 do
        for j in 0 .. n - 1 do
            within (1e-14 * (abs k.Data[i * n + j] + 1e-300)) k.Data[i * n + j] k.Data[j * n + i] (sprintf "%s symmetric [%d,%d]" what i j)
    let eig = (Tensor.toMatrix k).Evd(MathNet.Numerics.LinearAlgebra.Symmetricity.Symmetric).EigenValues |> Seq.map (fun z -> z.Real) |> Seq.toArray
    let top = eig |> Array.map abs |> Array.max
    Expect.isGreaterThanOrEqual (Array.min eig) (-1e-12 * top) (sprintf "%s PSD (eigenvalues %A)" what eig)

[<Tests>]
let tests =
    testList "MaskingTests" [
        testCase "Dense: covariances of masked positions are zero, the others W²·x·x'/C + b²; mask collapsed over channels" <| fun () ->
            // Dense (ntk parameterization) on inputs: nngp(h, h') = W²·x_h·x'_h'/C + b², and the NTK equals it (the
            // input NTK is 0); neural_tangents remasks after Dense, so any pair with a padded position is 0.
            let x = sequences 3 [ 4; 2; 3 ] 4 3
            let w, b = 1.3, 0.2
            let k = KernelFn.computeWithMask pad full (Stax.dense 7 w (Some b)) x None Both
            Expect.equal k.Nngp.Shape [| 3; 3; 4; 4 |] "full layout"
            for i in 0 .. 2 do
                for j in 0 .. 2 do
                    for h in 0 .. 3 do
                        for h' in 0 .. 3 do
                            let e = ((i * 3 + j) * 4 + h) * 4 + h'
                            let expected =
                                if isPad x i h || isPad x j h' then 0.0 else w * w * dot (row x i h) (row x j h') / 3.0 + b * b
                            within (1e-14 * (abs expected + 1e-300)) expected k.Nngp.Data[e] (sprintf "nngp[%d,%d,%d,%d]" i j h h')
                            within (1e-14 * (abs expected + 1e-300)) expected k.Ntk.Value.Data[e] (sprintf "ntk[%d,%d,%d,%d]" i j h h')
            let m = k.Mask1.Value
            Expect.equal m.Shape [| 3; 4; 1 |] "mask after Dense: channel axis collapsed"
            Expect.equal m.Data [| 0.; 0.; 0.; 0.; 0.; 0.; 1.; 1.; 0.; 0.; 0.; 1. |] "masked = padded positions"

        testCase "GlobalAvgPool averages over unmasked positions only: W²·x̄·x̄'/C + b²" <| fun () ->
            // After Dense every unmasked pair is W²·x_h·x'_h'/C + b²; the mean over the u·u' unmasked pairs is
            // W²·x̄·x̄'/C + b² with x̄ the mean of the unmasked positions' vectors (neural_tangents' mean_and_var(mask)).
            let x = sequences 5 [ 5; 1; 3 ] 5 2
            let w, b = 0.9, 0.3
            let net = Stax.serial [ Stax.dense 4 w (Some b); Stax.globalAvgPool ]
            let k = KernelFn.computeWithMask pad LayoutRequest.Auto net x None Nngp
            let mean i =
                let visible = [ for h in 0 .. 4 do if not (isPad x i h) then yield row x i h ]
                Array.init 2 (fun a -> (visible |> List.sumBy (fun r -> r[a])) / float visible.Length)
            for i in 0 .. 2 do
                for j in 0 .. 2 do
                    let expected = w * w * dot (mean i) (mean j) / 2.0 + b * b
                    within (1e-14 * expected) expected k.Nngp.Data[i * 3 + j] (sprintf "nngp[%d,%d]" i j)
            // Without masking the padded positions count: the kernel differs.
            let plain = KernelFn.compute net x None Nngp
            Expect.isGreaterThan (abs (plain.Nngp.Data[1 * 3 + 1] - k.Nngp.Data[1 * 3 + 1])) 1e-3 "the mask changes the pooled kernel"

        testCase "GlobalAvgPool in the diagonal layout: neural_tangents' masked mean then ÷S (hand-computed)" <| fun () ->
            // Diagonal spatial layout: nngp[i, j, h] = W²·x_ih·x_jh/C + b² where neither position is masked, 0 else;
            // _GlobalPool divides the sum by the number of unmasked h (mean_and_var(mask)) and then by S (size_at).
            let x = sequences 71 [ 4; 2; 3 ] 4 2
            let w, b = 1.1, 0.3
            // ConvLocal with a 1-wide filter: untied per-position Dense, so positions are uncorrelated and the
            // diagonal layout is exact (and allowed).
            let net = Stax.serial [ Stax.convLocal 4 [ 1 ] None Padding.Valid w (Some b); Stax.globalAvgPool ]
            let k = KernelFn.computeWithMask pad { DiagonalBatch = Some true; DiagonalSpatial = Some true } net x None Nngp
            for i in 0 .. 2 do
                for j in 0 .. 2 do
                    let visible = [ for h in 0 .. 3 do if not (isPad x i h || isPad x j h) then yield h ]
                    let sum = visible |> List.sumBy (fun h -> w * w * dot (row x i h) (row x j h) / 2.0 + b * b)
                    let expected = sum / float (max 1 visible.Length) / 4.0
                    within (1e-14 * expected) expected k.Nngp.Data[i * 3 + j] (sprintf "nngp[%d,%d]" i j)

        testCase "Conv VALID: the output mask is the window centre's (_pool_mask) and the kernel W²·mean_t x·x'/C + b² elsewhere" <| fun () ->
            // 1-D Conv, filter 3, VALID, on L = 6: output o reads inputs o..o+2 and takes input o+1's mask. NNGP
            // (ntk parameterization): W²·(1/3)Σ_t x_{o+t}·x'_{o'+t}/C + b² (padded inputs are zero), 0 where o or o' is masked.
            let x = sequences 7 [ 6; 3; 4 ] 6 2
            let w, b = 1.1, 0.4
            let net = Stax.conv 5 [ 3 ] None Padding.Valid w (Some b)
            let k = KernelFn.computeWithMask pad full net x None Nngp
            let zeroed i h = if isPad x i h then [| 0.0; 0.0 |] else row x i h
            let outMasked i o = isPad x i (o + 1)
            Expect.equal k.Nngp.Shape [| 3; 3; 4; 4 |] "VALID output length 4"
            for i in 0 .. 2 do
                for j in 0 .. 2 do
                    for o in 0 .. 3 do
                        for o' in 0 .. 3 do
                            let expected =
                                if outMasked i o || outMasked j o' then 0.0
                                else w * w * (List.sumBy (fun t -> dot (zeroed i (o + t)) (zeroed j (o' + t))) [ 0; 1; 2 ]) / 3.0 / 2.0 + b * b
                            within (1e-14 * (abs expected + 1e-300)) expected k.Nngp.Data[((i * 3 + j) * 4 + o) * 4 + o'] (sprintf "nngp[%d,%d,%d,%d]" i j o o')
            Expect.equal k.Mask1.Value.Data [| 0.; 0.; 0.; 0.; 0.; 0.; 1.; 1.; 0.; 0.; 0.; 1. |] "mask of input positions 1..4"

        testCase "FanInSum of two masked Dense branches: the kernels add, a position is masked where all branches are" <| fun () ->
            let x = sequences 9 [ 3; 2 ] 3 2
            let net = Stax.serial [ Stax.fanOut 2; Stax.parallelOf [ Stax.dense 3 1.2 (Some 0.1); Stax.dense 3 0.7 (Some 0.5) ]; Stax.fanInSum ]
            let k = KernelFn.computeWithMask pad full net x None Nngp
            for i in 0 .. 1 do
                for j in 0 .. 1 do
                    for h in 0 .. 2 do
                        for h' in 0 .. 2 do
                            let expected =
                                if isPad x i h || isPad x j h' then 0.0
                                else (1.2 * 1.2 + 0.7 * 0.7) * dot (row x i h) (row x j h') / 2.0 + 0.1 * 0.1 + 0.5 * 0.5
                            within (1e-14 * (abs expected + 1e-300)) expected k.Nngp.Data[((i * 2 + j) * 3 + h) * 3 + h'] (sprintf "nngp[%d,%d,%d,%d]" i j h h')
            Expect.equal k.Mask1.Value.Data [| 0.; 0.; 0.; 0.; 0.; 1. |] "AND of the branches' masks"

        testCase "Masking.sum and Masking.concat follow neural_tangents' _sum_masks and _concat_masks" <| fun () ->
            let a = Tensor.create [| 1; 3; 1 |] [| 1.; 1.; 0. |]
            let b = Tensor.create [| 1; 3; 1 |] [| 1.; 0.; 0. |]
            Expect.equal (Masking.sum [ Some a; Some b ]).Value.Data [| 1.; 0.; 0. |] "AND"
            Expect.equal (Masking.sum [ Some a; None ]).Value.Data a.Data "a branch without a mask is ignored"
            // Concatenating channels (2 + 1): each mask broadcast along the axis to its branch's channel count.
            let c = Masking.concat -1 [ Some a; None ] [ [| 1; 3; 2 |]; [| 1; 3; 1 |] ]
            Expect.equal c.Value.Shape [| 1; 3; 3 |] "concatenated shape"
            Expect.equal c.Value.Data [| 1.; 1.; 0.; 1.; 1.; 0.; 0.; 0.; 0. |] "None → visible"

        testCase "a mask constant that matches nothing gives the unmasked kernel (≤ 1e-15)" <| fun () ->
            let x = sequences 11 [ 4; 4; 4 ] 4 3
            let net = Stax.serial [ Stax.conv 4 [ 2 ] None Padding.Same 1.2 (Some 0.1); Stax.relu; Stax.dense 3 1.0 (Some 0.2); Stax.globalAvgPool ]
            let masked = KernelFn.computeWithMask 12345.0 LayoutRequest.Auto net x None Both
            let plain = KernelFn.compute net x None Both
            assertClose "nngp" 1e-15 plain.Nngp.Data masked.Nngp.Data
            assertClose "ntk" 1e-15 plain.Ntk.Value.Data masked.Ntk.Value.Data

        testCase "laws on 20 random masked inputs: symmetric PSD NNGP/NTK, kernel(x2, x1) = kernel(x1, x2)ᵀ, x2 = x1 equals x2 = None" <| fun () ->
            let net = Stax.serial [ Stax.dense 8 1.4 (Some 0.3); Stax.relu; Stax.conv 4 [ 2 ] None Padding.Same 1.1 (Some 0.1); Stax.erf 1.0 1.0 0.0; Stax.dense 3 1.0 (Some 0.2); Stax.globalAvgPool ]
            let rng = Random(77)
            for case in 0 .. 19 do
                let lengths = List.init 4 (fun _ -> rng.Next(1, 6))
                let x1 = sequences (100 + case) lengths 5 3
                let x2 = sequences (200 + case) (List.init 3 (fun _ -> rng.Next(1, 6))) 5 3
                let k = KernelFn.computeWithMask pad LayoutRequest.Auto net x1 None Both
                assertPsd (sprintf "case %d nngp" case) k.Nngp
                assertPsd (sprintf "case %d ntk" case) k.Ntk.Value
                let same = KernelFn.computeWithMask pad LayoutRequest.Auto net x1 (Some(Tensor.copy x1)) Both
                assertClose "x2 = x1 vs None" 1e-14 k.Nngp.Data same.Nngp.Data
                let k12 = KernelFn.computeWithMask pad LayoutRequest.Auto net x1 (Some x2) Both
                let k21 = KernelFn.computeWithMask pad LayoutRequest.Auto net x2 (Some x1) Both
                assertClose "transpose" 1e-14 (Tensor.swapLeadingAxes k12.Nngp).Data k21.Nngp.Data

        testCase "Monte Carlo: Dense(512) → Relu → Dense → GlobalAvgPool on padded sequences; M = 300 networks" <| fun () ->
            // Finite network with the same masks (MaskedApplyFn): each layer zeroes masked entries, GlobalAvgPool
            // averages over unmasked positions. Given the hidden layer, E over the readout weights of f(a)·f(b) is the
            // kernel of the readout on the empirical hidden covariance; E over the first layer of that covariance is
            // the exact ReLU kernel (its pre-activations are exactly Gaussian), so the mean over networks equals the
            // analytic kernel with no finite-width allowance; entries are compared within 5·SE (McCheck).
            let x = sequences 21 [ 5; 2; 4 ] 5 3
            let net readout = Stax.serial [ Stax.dense 512 1.5 (Some 0.1); Stax.relu; Stax.dense readout 1.2 (Some 0.05); Stax.globalAvgPool ]
            let analytic = KernelFn.computeWithMask pad LayoutRequest.Auto (net 1) x None Nngp
            let samples =
                Array.Parallel.init 300 (fun s ->
                    let _, p = InitFn.init (5000 + s) (net 64) x.Shape
                    let y, m = MaskedApplyFn.applyWith ApplyContext.Empty pad (net 64) p x
                    Expect.isTrue (m.Value.Data |> Array.forall ((=) 0.0)) "no sample is fully masked"
                    outerMean y)
            let worst = compareMean "masked GlobalAvgPool nngp" analytic.Nngp samples 0.0
            note (sprintf "Masking Monte Carlo (M = 300, width 512): worst |Δ|/SE %.2f" worst)

        testCase "finite network: padded positions do not change the output of a GlobalAvgPool network" <| fun () ->
            // The masked mean over positions makes the output of a sequence independent of its padding length.
            let net = Stax.serial [ Stax.dense 6 1.5 (Some 0.1); Stax.relu; Stax.dense 2 1.2 (Some 0.05); Stax.globalAvgPool ]
            let short = sequences 23 [ 2 ] 2 3
            let long = Tensor.create [| 1; 4; 3 |] (Array.append short.Data (Array.create 6 pad))
            let _, p = InitFn.init 1 net long.Shape
            let y1, _ = MaskedApplyFn.applyWith ApplyContext.Empty pad net p short
            let y2, _ = MaskedApplyFn.applyWith ApplyContext.Empty pad net p long
            assertClose "outputs" 1e-15 y1.Data y2.Data

        testCase "tiles: Batching.computeWithMask masks each tile's rows and equals the untiled kernel (≤ 1e-14)" <| fun () ->
            let x1 = sequences 31 [ 4; 1; 3; 2; 4 ] 4 2
            let x2 = sequences 32 [ 2; 4; 3 ] 4 2
            let net = Stax.serial [ Stax.dense 6 1.2 (Some 0.2); Stax.relu; Stax.dense 2 1.0 (Some 0.1); Stax.globalAvgPool ]
            for x2 in [ None; Some x2 ] do
                let whole = KernelFn.computeWithMask pad LayoutRequest.Auto net x1 x2 Both
                let tiled = Batching.computeWithMask { BatchOptions.Default with BatchSize = Some 2 } pad LayoutRequest.Auto net x1 x2 Both
                assertClose "nngp" 1e-14 whole.Nngp.Data tiled.Nngp.Data
                assertClose "ntk" 1e-14 whole.Ntk.Value.Data tiled.Ntk.Value.Data
                assertClose "cov1" 1e-14 whole.Cov1.Data tiled.Cov1.Data

        testCase "CLI: kwargs.mask_constant gives KernelFn.computeWithMask's kernel; bad values fail with one line" <| fun () ->
            let x1 = sequences 33 [ 3; 1; 2 ] 3 2
            let num (v: float) = v.ToString("R", Globalization.CultureInfo.InvariantCulture)
            let l, c = x1.Shape[1], x1.Shape[2]
            let rows =
                let sample i = "[" + String.Join(", ", [ for h in 0 .. l - 1 -> "[" + String.Join(", ", [ for a in 0 .. c - 1 -> num x1.Data[(i * l + h) * c + a] ]) + "]" ]) + "]"
                "[" + String.Join(", ", [ for i in 0 .. x1.Shape[0] - 1 -> sample i ]) + "]"
            let arch = """{"layer": "serial", "layers": [{"layer": "Dense", "out_dim": 4, "W_std": 1.3, "b_std": 0.2}, {"layer": "Relu"}, {"layer": "Dense", "out_dim": 1}, {"layer": "GlobalAvgPool"}]}"""
            let run (kwargs: string) =
                let out, err = new IO.StringWriter(), new IO.StringWriter()
                let code = NeuralTangents.Cli.Cli.run [| "kernel" |] (new IO.StringReader(sprintf """{"arch": %s, "x1": %s, "kwargs": %s}""" arch rows kwargs)) out err
                code, out.ToString(), err.ToString()
            let values (n: Text.Json.Nodes.JsonNode) = n.AsArray() |> Seq.collect (fun r -> r.AsArray() |> Seq.map (fun v -> v.GetValue<float>())) |> Seq.toArray
            let code, out, err = run (sprintf """{"mask_constant": %s}""" (num pad))
            Expect.equal code 0 err
            let o = Text.Json.Nodes.JsonNode.Parse out
            let net = Json.decode arch
            let k = KernelFn.computeWithMask pad LayoutRequest.Auto net x1 None Both
            assertClose "nngp" 1e-14 k.Nngp.Data (values o["nngp"])
            assertClose "ntk" 1e-14 k.Ntk.Value.Data (values o["ntk"])
            let code, _, err = run """{"mask_constant": "nope"}"""
            Expect.equal code 1 "bad mask_constant exits 1"
            Expect.stringContains err "mask_constant must be a number" "names the key"
            // NaN as the JSON string "nan": nothing is NaN here, so the kernel is the unmasked one.
            let code, out, err = run """{"mask_constant": "nan"}"""
            Expect.equal code 0 err
            let o = Text.Json.Nodes.JsonNode.Parse out
            assertClose "nan constant" 1e-14 (KernelFn.compute net x1 None Nngp).Nngp.Data (values o["nngp"])

        testCase "GlobalSelfAttention ignores masked keys: padded sequences give the kernel of the unpadded ones (≤ 1e-13)" <| fun () ->
            // neural_tangents masks attention keys (scores −1e20 before the softmax, 0 otherwise) and drops the
            // embedding term of masked positions; after a masked GlobalAvgPool a padded batch must therefore have
            // exactly the kernel of the same batch without its padding — an expectation independent of the code.
            let short = sequences 41 [ 3; 3 ] 3 2
            let padded = Tensor.create [| 2; 5; 2 |] (Array.init 20 (fun e -> let i, h, c = e / 10, (e / 2) % 5, e % 2 in if h < 3 then short.Data[(i * 3 + h) * 2 + c] else pad))
            for mech in [ AttentionMechanism.Softmax; AttentionMechanism.Identity; AttentionMechanism.Relu ] do
                for emb in [ PositionalEmbedding.NoEmbedding; PositionalEmbedding.Sum ] do
                    let att = { Stax.attentionDefaults 4 4 4 2 with AttentionMechanism = mech; PosEmbType = emb; BStd = Some 0.2; WPosEmbStd = 0.7 }
                    let net = Stax.serial [ Stax.dense 8 1.3 (Some 0.1); Stax.globalSelfAttentionWith att; Stax.relu; Stax.dense 2 1.0 (Some 0.1); Stax.globalAvgPool ]
                    for layout in [ full; { DiagonalBatch = Some false; DiagonalSpatial = Some false } ] do
                        let plain = KernelFn.computeWithLayout layout net short None Both
                        let masked = KernelFn.computeWithMask pad layout net padded None Both
                        assertClose (sprintf "%A %A nngp" mech emb) 1e-13 plain.Nngp.Data masked.Nngp.Data
                        assertClose (sprintf "%A %A ntk" mech emb) 1e-13 plain.Ntk.Value.Data masked.Ntk.Value.Data
                        assertClose (sprintf "%A %A cov1" mech emb) 1e-13 plain.Cov1.Data masked.Cov1.Data
            // Square-root scaling (IDENTITY): only the embeddings are masked.
            let att = { Stax.attentionDefaults 4 4 4 2 with AttentionMechanism = AttentionMechanism.Identity; LinearScaling = false; PosEmbType = PositionalEmbedding.Sum }
            let net = Stax.serial [ Stax.dense 8 1.3 (Some 0.1); Stax.globalSelfAttentionWith att; Stax.globalAvgPool ]
            let k = KernelFn.computeWithMask pad full net padded None Both
            assertPsd "sqrt-scaling nngp" k.Nngp

        testCase "finite GlobalSelfAttention ignores masked keys: padded outputs equal the unpadded ones (≤ 1e-13)" <| fun () ->
            let short = sequences 43 [ 3; 3 ] 3 2
            let padded = Tensor.create [| 2; 5; 2 |] (Array.init 20 (fun e -> let i, h, c = e / 10, (e / 2) % 5, e % 2 in if h < 3 then short.Data[(i * 3 + h) * 2 + c] else pad))
            for mech in [ AttentionMechanism.Softmax; AttentionMechanism.Identity; AttentionMechanism.Abs ] do
                let att = { Stax.attentionDefaults 4 4 4 2 with AttentionMechanism = mech; BStd = Some 0.2 }
                let net = Stax.serial [ Stax.dense 8 1.3 (Some 0.1); Stax.globalSelfAttentionWith att; Stax.relu; Stax.globalAvgPool ]
                let _, p = InitFn.init 3 net short.Shape
                let y1 = ApplyFn.apply net p short
                let y2, m = MaskedApplyFn.applyWith ApplyContext.Empty pad net p padded
                assertClose (sprintf "%A outputs" mech) 1e-13 y1.Data y2.Data
                Expect.equal m.Value.Data [| 0.; 0. |] "pooled outputs unmasked"

        testCase "ImageResize: an output is masked only when all its contributions are (neural_tangents' inverted resize)" <| fun () ->
            // Linear antialiased 4 → 2: output 0 reads inputs 0–2 (weights ¾, ¾, ¼), output 1 inputs 1–3; with inputs
            // 1–3 masked, output 0 still sees input 0 and stays visible, output 1 is masked.
            let x = Tensor.create [| 1; 4; 2 |] [| 0.5; -1.0; pad; pad; pad; pad; pad; pad |]
            let net = Stax.serial [ Stax.dense 3 1.0 (Some 0.1); Stax.imageResize [ -1; 2; -1 ] ResizeMethod.Linear true 0 -1 ]
            let k = KernelFn.computeWithMask pad full net x None Nngp
            Expect.equal k.Mask1.Value.Data [| 0.; 1. |] "resized mask"
            Expect.isGreaterThan k.Nngp.Data[0] 0.0 "visible pair"
            Expect.equal k.Nngp.Data[1 .. 3] [| 0.; 0.; 0. |] "pairs with the masked output are zero (remask)"

        testCase "LayerNorm over positions and channels: masked means (hand-computed finite layer; kernel of padded ≈ unpadded)" <| fun () ->
            // Finite (neural_tangents' mean_and_var(mask)): x = [[1, 3], [pad, pad], [5, −1]] zeroed; 4 unmasked
            // entries: mean = 8/4 = 2, var = (1 + 1 + 4 + 4 + 9 + 9)/4 = 7 (the zeroed entries count in the sum).
            let x = Tensor.create [| 1; 3; 2 |] [| 1.0; 3.0; pad; pad; 5.0; -1.0 |]
            let ln = Stax.layerNorm [ 1; 2 ] 1e-12 0 -1
            let y, _ = MaskedApplyFn.applyWith ApplyContext.Empty pad ln Params.none x
            let sd = sqrt (7.0 + 1e-12)
            assertClose "outputs" 1e-15 ([| 1.0; 3.0; 0.0; 0.0; 5.0; -1.0 |] |> Array.map (fun v -> (v - 2.0) / sd)) y.Data
            // Kernel: the mean variance skips masked positions, so a padded batch has the kernel of the unpadded one up
            // to eps·(masked)/(unmasked) ≈ 1e-12 relative (neural_tangents sums eps at masked positions too).
            let short = sequences 51 [ 3; 3 ] 3 2
            let padded = Tensor.create [| 2; 5; 2 |] (Array.init 20 (fun e -> let i, h, c = e / 10, (e / 2) % 5, e % 2 in if h < 3 then short.Data[(i * 3 + h) * 2 + c] else pad))
            let net = Stax.serial [ Stax.dense 6 1.3 (Some 0.1); Stax.layerNorm [ 1; 2 ] 1e-12 0 -1; Stax.dense 2 1.0 (Some 0.1); Stax.globalAvgPool ]
            let plain = KernelFn.computeWithLayout full net short None Both
            let masked = KernelFn.computeWithMask pad full net padded None Both
            assertClose "nngp" 1e-10 plain.Nngp.Data masked.Nngp.Data
            assertClose "ntk" 1e-10 plain.Ntk.Value.Data masked.Ntk.Value.Data

        testCase "Monte Carlo: strided Conv → Relu → VALID Conv → GlobalAvgPool, and Conv → Relu → Flatten → Dense, on padded sequences; M = 300" <| fun () ->
            // The finite networks carry the masks layer by layer (mask_fn: window centres under strides, Flatten's
            // reshape) and zero masked inputs; the first layer's pre-activations are exactly Gaussian, so the mean
            // of the readout's outer products over networks equals the analytic kernel (no allowance), within 5·SE.
            let x = sequences 61 [ 7; 3; 5 ] 7 2
            let pooled readout =
                Stax.serial [ Stax.conv 256 [ 3 ] (Some [ 2 ]) Padding.Same 1.5 (Some 0.1); Stax.relu
                              Stax.conv readout [ 2 ] None Padding.Valid 1.2 (Some 0.05); Stax.globalAvgPool ]
            let flat readout =
                Stax.serial [ Stax.conv 256 [ 3 ] None Padding.Same 1.5 (Some 0.1); Stax.relu; Stax.flatten; Stax.dense readout 1.2 (Some 0.05) ]
            for name, net in [ "pooled", pooled; "flattened", flat ] do
                let analytic = KernelFn.computeWithMask pad LayoutRequest.Auto (net 1) x None Nngp
                let samples =
                    Array.Parallel.init 300 (fun s ->
                        let _, p = InitFn.init (7000 + s) (net 64) x.Shape
                        let y, _ = MaskedApplyFn.applyWith ApplyContext.Empty pad (net 64) p x
                        outerMean y)
                let worst = compareMean (name + " nngp") analytic.Nngp samples 0.0
                note (sprintf "Masking Monte Carlo, %s conv network (M = 300, width 256): worst |Δ|/SE %.2f" name worst)
            // The strided mask: length 7, SAME stride 2 → 4 outputs at centres 0, 2, 4, 6 (pad_lo = 1, (3 − 1)/2 = 1),
            // then VALID filter 2 → 3 outputs at centres 0, 1, 2 of those.
            let k = KernelFn.computeWithMask pad LayoutRequest.Auto (Stax.serial [ Stax.conv 3 [ 3 ] (Some [ 2 ]) Padding.Same 1.0 (Some 0.1); Stax.relu; Stax.conv 2 [ 2 ] None Padding.Valid 1.0 None ]) x None Nngp
            Expect.equal k.Mask1.Value.Data [| 0.; 0.; 0.;  0.; 0.; 1.;  0.; 0.; 0. |] "masks after the two convolutions"

        testCase "Index and FanInConcat carry the mask: mask[idx]; branches' masks concatenated along the axis" <| fun () ->
            // Index [:, 1:, :] keeps positions 1..3; FanInConcat(1) of two Dense branches stacks the positions twice.
            let x = sequences 81 [ 4; 2 ] 4 2
            let all = IndexEntry.Range(None, None, None)
            let indexed = KernelFn.computeWithMask pad full (Stax.serial [ Stax.dense 3 1.0 (Some 0.1); Stax.index [ all; IndexEntry.Range(Some 1, None, None); all ] 0 -1 ]) x None Nngp
            Expect.equal indexed.Mask1.Value.Data [| 0.; 0.; 0.;  0.; 1.; 1. |] "mask of positions 1..3"
            Expect.equal indexed.Nngp.Shape [| 2; 2; 3; 3 |] "indexed kernel"
            let concat =
                KernelFn.computeWithMask pad full
                    (Stax.serial [ Stax.fanOut 2; Stax.parallelOf [ Stax.dense 3 1.0 (Some 0.1); Stax.dense 3 0.5 (Some 0.2) ]; Stax.fanInConcat 1 ]) x None Nngp
            Expect.equal concat.Mask1.Value.Data [| 0.; 0.; 0.; 0.; 0.; 0.; 0.; 0.;  0.; 0.; 1.; 1.; 0.; 0.; 1.; 1. |] "two copies of each sample's mask"
            // Covariances between a masked and any position are zero in both copies (each branch remasked).
            Expect.equal concat.Nngp.Data[((1 * 2 + 1) * 8 + 2) * 8 + 0] 0.0 "masked position 2 of sample 1"

        testCase "layers that cannot take masks say so, naming the layer" <| fun () ->
            let x = sequences 25 [ 3; 2 ] 3 4
            let refuses (name: string) (net: Layer) =
                let e = throwsExactly<NeuralTangentsException> (fun () -> KernelFn.computeWithMask pad LayoutRequest.Auto net x None Nngp |> ignore)
                Expect.stringContains e.Message name (sprintf "%s names the layer" name)
            // neural_tangents' own limit: per-channel input masks reach a layer that needs one mask per position.
            refuses "channel-wise masks" (Stax.avgPool [ 2 ] None Padding.Same)
            refuses "GlobalAvgPool" Stax.globalAvgPool

        testCase "ConvTranspose: an output is masked when ANY input feeding it is (boolean conv_transpose); kernel = zero-filled inputs' elsewhere" <| fun () ->
            // 1-D, filter 3, stride 2, VALID on L = 3: 7 outputs, input j feeds outputs 2j, 2j+1, 2j+2 (all-ones
            // filter, so the flip does not matter). Sample 0 masks input 1 → outputs 2, 3, 4 (2 and 4 are also fed by
            // visible inputs: "any", not "all"); sample 1 masks input 2 → outputs 4, 5, 6.
            let v = normals 91 12
            let x = Tensor.create [| 2; 3; 2 |] (Array.init 12 (fun e -> if e / 2 = 1 || e / 2 = 5 then pad else v[e]))
            let zeroed = Tensor.create [| 2; 3; 2 |] (x.Data |> Array.map (fun u -> if u = pad then 0.0 else u))
            let net = Stax.convTranspose 3 [ 3 ] (Some [ 2 ]) Padding.Valid 1.3 (Some 0.2)
            let k = KernelFn.computeWithMask pad full net x None Both
            Expect.equal k.Mask1.Value.Shape [| 2; 7; 1 |] "mask shape"
            let m = [| 0.; 0.; 1.; 1.; 1.; 0.; 0.;  0.; 0.; 0.; 0.; 1.; 1.; 1. |]
            Expect.equal k.Mask1.Value.Data m "output masks (hand-derived)"
            // Masked inputs enter the rule as zeros, so where neither output is masked the kernel is the unmasked
            // kernel of the zero-filled inputs (the transpose rule itself is checked against the fixtures); zero elsewhere.
            let plain = KernelFn.computeWithMask Double.NaN full net zeroed None Both
            for name, got, want in [ "nngp", k.Nngp, plain.Nngp; "ntk", k.Ntk.Value, plain.Ntk.Value ] do
                for i in 0 .. 1 do
                    for j in 0 .. 1 do
                        for o in 0 .. 6 do
                            for o' in 0 .. 6 do
                                let e = ((i * 2 + j) * 7 + o) * 7 + o'
                                let expected = if m[i * 7 + o] = 1.0 || m[j * 7 + o'] = 1.0 then 0.0 else want.Data[e]
                                within (1e-15 * (abs expected + 1e-300)) expected got.Data[e] (sprintf "%s[%d,%d,%d,%d]" name i j o o')
            // CIRCULAR builds its mask as SAME (init padding): SAME keeps d·s = 6 outputs.
            let kc = KernelFn.computeWithMask pad full (Stax.convTranspose 3 [ 3 ] (Some [ 2 ]) Padding.Circular 1.3 None) x None Nngp
            Expect.equal kc.Mask1.Value.Shape [| 2; 6; 1 |] "CIRCULAR mask shape (as SAME)"
            // The finite layer: the same mask, and visible outputs equal the layer on the zero-filled inputs.
            let _, p = InitFn.init 3 net x.Shape
            let y, ym = MaskedApplyFn.applyWith ApplyContext.Empty pad net p x
            Expect.equal ym.Value.Data m "finite output masks"
            let y0 = ApplyFn.apply net p zeroed
            for e in 0 .. y.Length - 1 do
                if m[e / (7 * 3) * 7 + (e / 3) % 7] = 0.0 then within 1e-15 y0.Data[e] y.Data[e] (sprintf "y[%d]" e)

        testCase "Monte Carlo: Conv → Relu → ConvTranspose(3, stride 2) → GlobalAvgPool on padded sequences; M = 300" <| fun () ->
            // As the conv Monte Carlo above: exact Gaussian first layer, linear readout, no allowance, within 5·SE.
            let x = sequences 67 [ 5; 2; 4 ] 5 2
            let net readout =
                Stax.serial [ Stax.conv 256 [ 3 ] None Padding.Same 1.5 (Some 0.1); Stax.relu
                              Stax.convTranspose readout [ 3 ] (Some [ 2 ]) Padding.Valid 1.2 (Some 0.05); Stax.globalAvgPool ]
            let analytic = KernelFn.computeWithMask pad LayoutRequest.Auto (net 1) x None Nngp
            let samples =
                Array.Parallel.init 300 (fun s ->
                    let _, p = InitFn.init (9000 + s) (net 64) x.Shape
                    let y, _ = MaskedApplyFn.applyWith ApplyContext.Empty pad (net 64) p x
                    outerMean y)
            let worst = compareMean "masked ConvTranspose nngp" analytic.Nngp samples 0.0
            note (sprintf "Masking Monte Carlo, ConvTranspose network (M = 300, width 256): worst |Δ|/SE %.2f" worst)

        testCase "DotGeneral: output masked when every input with a nonzero coefficient is (~dot(~mask)); no remask" <| fun () ->
            // x of shape (N=2, C=2, L=3), channel_axis 1; rhs B (3×3) contracts L: out[n, c, m] = Σ_l x[n, c, l]·B[l, m].
            // Column 0 reads l = 0, 1; column 1 reads nothing; column 2 reads l = 2.
            let b = Tensor.create [| 3; 3 |] [| 1.; 0.; 0.;  -1.5; 0.; 0.;  0.; 0.; 2. |]
            let net = Stax.dotGeneral None (Some b) (([ 2 ], [ 0 ]), ([], [])) 0 1
            let v = normals 93 12
            // Sample 0 masks l = 1 (both channels); sample 1 masks l = 0 and 1.
            let maskedAt n l = (n = 0 && l = 1) || (n = 1 && l <= 1)
            let x = Tensor.create [| 2; 2; 3 |] (Array.init 12 (fun e -> if maskedAt (e / 6) (e % 3) then pad else v[e]))
            let k = KernelFn.computeWithMask pad full net x None Nngp
            // The mask keeps its channel axis (mask_fn broadcasts to the input shape but the mask's channel size).
            Expect.equal k.Mask1.Value.Shape [| 2; 2; 3 |] "mask shape"
            Expect.equal k.Mask1.Value.Data [| 0.; 1.; 0.;  0.; 1.; 0.;  1.; 1.; 0.;  1.; 1.; 0. |] "output masks (hand-derived)"
            // Hand-computed NNGP: the input kernel x·x'/C on zero-filled inputs, then B on both sides.
            let xz n c l = if maskedAt n l then 0.0 else v[(n * 2 + c) * 3 + l]
            let out n c m = List.sumBy (fun l -> xz n c l * b.Data[l * 3 + m]) [ 0; 1; 2 ]
            for i in 0 .. 1 do
                for j in 0 .. 1 do
                    for m in 0 .. 2 do
                        for m' in 0 .. 2 do
                            let expected = (out i 0 m * out j 0 m' + out i 1 m * out j 1 m') / 2.0
                            within (1e-14 * (abs expected + 1e-300)) expected k.Nngp.Data[((i * 2 + j) * 3 + m) * 3 + m'] (sprintf "nngp[%d,%d,%d,%d]" i j m m')
    ]
