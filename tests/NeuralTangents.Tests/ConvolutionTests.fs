/// Conv, ConvTranspose and ConvLocal (Layers/Convolution.fs): the reference fixtures whose top needs global pooling
/// (with that top written out by hand), Monte Carlo estimates from finite CNNs, closed forms at the borders, channel-
/// first dimension numbers, layout laws and the JSON round trip.
module NeuralTangents.Tests.ConvolutionTests

open System
open System.IO
open System.Text.Json.Nodes
open Expecto
open NeuralTangents
open NeuralTangents.Cli
open NeuralTangents.Tests.TestUtil

let private tensorOf (seed: int) (shape: int[]) = Tensor.create shape (normals seed (Array.fold (*) 1 shape))

let private jsonTensor (node: JsonNode) = let s, v = flattenJson node in Tensor.create (List.toArray s) (List.toArray v)

let private full = { DiagonalBatch = None; DiagonalSpatial = Some false }
let private diagonal = { DiagonalBatch = None; DiagonalSpatial = Some true }

/// The same-position entries (p, p) of a full-layout tensor with `lead` leading axes, in the order of p.
let private diagonalOf (lead: int) (t: Tensor) =
    let dims = [| for a in lead .. 2 .. t.Rank - 1 -> t.Shape[a] |]
    let s = Array.fold (*) 1 dims
    let outer = Array.fold (*) 1 t.Shape[.. lead - 1]
    let idx = Spatial.diagonalIndices dims
    Array.init (outer * s) (fun k -> t.Data[(k / s) * s * s + idx[k % s]])

/// The NNGP of one conv layer on raw 1-D inputs (N, D, C), straight from its definition: the finite layer's output
/// z(o) = W_std/√(C·f)·Σ_{t,c} W[t,c]·x̃[o·s + t, c] + b_std·b over the explicitly padded input x̃ (zeros or wrap),
/// so E[z_a(o) z_b(o')] = W_std²/(C·f)·Σ_{t,c} x̃_a[o·s+t, c]·x̃_b[o'·s+t, c] + b_std². Full layout (N1, N2, O, O).
let private bruteConv1d (f: int) (s: int) (padding: Padding) (wStd: float) (bStd: float) (x: Tensor) =
    let n, d, c = x.Shape[0], x.Shape[1], x.Shape[2]
    let o, lo =
        match padding with
        | Padding.Valid -> (d - f) / s + 1, 0
        | _ ->
            let o = (d + s - 1) / s
            o, max 0 ((o - 1) * s + f - d) / 2
    let padded (i: int) (p: int) (ch: int) =
        let q = p - lo
        match padding with
        | Padding.Circular -> x.Data[(i * d + ((q % d) + d) % d) * c + ch]
        | _ -> if q >= 0 && q < d then x.Data[(i * d + q) * c + ch] else 0.0
    Tensor.create [| n; n; o; o |] [|
        for a in 0 .. n - 1 do
            for b in 0 .. n - 1 do
                for u in 0 .. o - 1 do
                    for v in 0 .. o - 1 do
                        let mutable acc = 0.0
                        for t in 0 .. f - 1 do
                            for ch in 0 .. c - 1 do acc <- acc + padded a (u * s + t) ch * padded b (v * s + t) ch
                        yield wStd * wStd * acc / float (c * f) + bStd * bStd |]

/// The same from the definition on raw inputs (N, D1, …, Dk, C) for Conv or (local = true) ConvLocal, in the full
/// layout (N1, N2, O1, O1', …, Ok, Ok') in input axis order: per axis the explicitly padded index (lax's SAME split,
/// wrapped for CIRCULAR), E[z_a(o) z_b(o')] = W_std²/(C·F)·Σ_{t,c} x̃_a[o·s + t, c]·x̃_b[o'·s + t, c] + b_std² with
/// o·s + t taken per axis. ConvLocal's weights and biases differ between positions, so its distinct output positions
/// are uncorrelated (entries 0).
let private bruteConvNd (local: bool) (fs: int[]) (ss: int[]) (padding: Padding) (wStd: float) (bStd: float) (x: Tensor) =
    let n, c, k = x.Shape[0], x.Shape[x.Rank - 1], x.Rank - 2
    let dims = x.Shape[1 .. k]
    let outs, los =
        Array.init k (fun a ->
            match padding with
            | Padding.Valid -> (dims[a] - fs[a]) / ss[a] + 1, 0
            | _ -> let o = (dims[a] + ss[a] - 1) / ss[a] in o, max 0 ((o - 1) * ss[a] + fs[a] - dims[a]) / 2)
        |> Array.unzip
    // Row-major multi-index of flat index r over sizes.
    let unflat (sizes: int[]) (r: int) =
        let idx = Array.zeroCreate sizes.Length
        let mutable r = r
        for a in sizes.Length - 1 .. -1 .. 0 do
            idx[a] <- r % sizes[a]
            r <- r / sizes[a]
        idx
    let value (i: int) (o: int[]) (t: int[]) (ch: int) =
        let mutable flat = 0
        let mutable inside = true
        for a in 0 .. k - 1 do
            let q = o[a] * ss[a] + t[a] - los[a]
            let q = if padding = Padding.Circular then ((q % dims[a]) + dims[a]) % dims[a] else q
            if q < 0 || q >= dims[a] then inside <- false
            flat <- flat * dims[a] + q
        if inside then x.Data[(i * Array.fold (*) 1 dims + flat) * c + ch] else 0.0
    let fSize = Array.fold (*) 1 fs
    let zipped = outs |> Array.collect (fun o -> [| o; o |])
    Tensor.create (Array.append [| n; n |] zipped) [|
        for a in 0 .. n - 1 do
            for b in 0 .. n - 1 do
                for e in 0 .. Array.fold (*) 1 zipped - 1 do
                    let idx = unflat zipped e
                    let o, o' = Array.init k (fun ax -> idx[2 * ax]), Array.init k (fun ax -> idx[2 * ax + 1])
                    if local && o <> o' then yield 0.0
                    else
                        let mutable acc = 0.0
                        for tf in 0 .. fSize - 1 do
                            let t = unflat fs tf
                            for ch in 0 .. c - 1 do acc <- acc + value a o t ch * value b o' t ch
                        yield wStd * wStd * acc / float (c * fSize) + bStd * bStd |]

// ---------------------------------------------------------------------------------------------
// Monte Carlo of finite CNNs.

/// Tolerance rule as in MonteCarloTests: |mean − analytic| ≤ 5·SE per entry, SE = sample std/√M over M independent
/// networks. Each network here has one hidden conv layer whose pre-activations are exactly Gaussian, then Flatten and
/// a Dense readout, so E[empirical NNGP] and E[empirical NTK] equal the analytic kernels exactly (the readout is
/// linear in the hidden features, and the hidden-layer gradient term averages to W_out²·E[φ'φ']·C(K_in) with no
/// finite-width bias) and no bias allowance is needed. A normal mean exceeds 5 SE with probability 5.7e-7; over the
/// ≈ 200 entries these tests check the union bound gives < 2e-4 for a random choice of the fixed seeds.
let private z = 5.0

let private mcCheck (name: string) (build: int -> Layer) (x: Tensor) (m: int) =
    let sw = Diagnostics.Stopwatch.StartNew()
    let analytic = KernelFn.compute (build 1) x None Both
    let net = build 1
    let samples =
        Array.Parallel.init m (fun i ->
            let _, p = InitFn.init (5000 + i) net x.Shape
            Empirical.kernels net p x None)
    let mutable worst = 0.0
    let n = x.Shape[0]
    for what, pick, exact in [ "nngp", fst, analytic.Nngp; "ntk", snd, analytic.Ntk.Value ] do
        let vals = samples |> Array.map pick
        for i in 0 .. n - 1 do
            for j in i .. n - 1 do
                let k = i * n + j
                let xs = vals |> Array.map (fun (t: Tensor) -> t.Data[k])
                let mean = Array.average xs
                let se = sqrt ((xs |> Array.sumBy (fun v -> (v - mean) ** 2.0)) / float (m - 1)) / sqrt (float m)
                let zk = abs (mean - exact.Data[k]) / se
                worst <- max worst zk
                if not (zk <= z) then
                    failtestf "%s %s[%d,%d]: MC mean %.6g vs analytic %.6g (|z| = %.2f > %.0f)" name what i j mean exact.Data[k] zk z
    note (sprintf "%-36s M=%d worst |z| %.2f (%.1f s)" name m worst sw.Elapsed.TotalSeconds)

let private mcWidth = 256

/// hidden conv(width 256) → Relu → Flatten → Dense(readout).
let private cnn (hidden: int -> Layer) (readout: int) =
    Stax.serial [ hidden mcWidth; Stax.relu; Stax.flatten; Stax.dense readout 1.1 (Some 0.2) ]
let private mcM = 300
let private x1d = tensorOf 31 [| 3; 6; 2 |]
let private x2d = tensorOf 32 [| 3; 4; 4; 2 |]

let private fixtureDir = Path.Combine(repoRoot, "tests", "fixtures")

[<Tests>]
let tests =
    testList "ConvolutionTests" [
        testCase "output sizes in int64: a huge stride is refused naming the layer, or is exact where it fits" <| fun () ->
            let x = tensorOf 41 [| 2; 3; 3; 2 |]
            // ConvTranspose stride 100000: 300000 positions per axis, 9e10 entries per pair (an int32 overflow before).
            let huge = Stax.serial [ Stax.convTranspose 2 [ 2; 2 ] (Some [ 100000; 100000 ]) Padding.Valid 1.0 None; Stax.flatten ]
            let e = throwsExactly<NeuralTangentsException> (fun () -> KernelFn.compute huge x None Both |> ignore)
            Expect.stringContains e.Message "ConvTranspose: its output spatial shape (300000, 300000)" e.Message
            // SAME with stride 2³¹ − 1 on an axis of 3: one output position reading position 0, as any stride ≥ 3
            // ((d + s − 1)/s overflowed int32 and reported no positions).
            let same (s: int) = Stax.serial [ Stax.conv 2 [ 1; 1 ] (Some [ s; s ]) Padding.Same 1.0 None; Stax.flatten ]
            let k = KernelFn.compute (same Int32.MaxValue) x None Both
            let k3 = KernelFn.compute (same 3) x None Both
            Expect.equal k.Nngp.Data k3.Nngp.Data "nngp as with stride 3"
            Expect.equal k.Ntk.Value.Data k3.Ntk.Value.Data "ntk as with stride 3"

        testCase "a SAME or CIRCULAR filter more than 64 times its axis is refused naming the axis; 64 times runs" <| fun () ->
            // Axis of 3: filter 193 (> 64·3) is refused for both paddings, before any work; 192 is accepted and its
            // CIRCULAR kernel is the one of a 1×1 filter over the positions' mean pattern, checked only for finiteness
            // and symmetry here (the rules themselves are checked against the fixtures and the naive tests).
            let x = tensorOf 43 [| 2; 3; 3; 2 |]
            let net (p: Padding) (f: int) = Stax.serial [ Stax.conv 2 [ f; 1 ] None p 1.0 None; Stax.relu; Stax.globalAvgPool ]
            for p, name in [ Padding.Same, "SAME"; Padding.Circular, "CIRCULAR" ] do
                let e = throwsExactly<NeuralTangentsException> (fun () -> KernelFn.compute (net p 193) x None Both |> ignore)
                Expect.stringContains e.Message (sprintf "Conv: filter size 193 on a spatial axis of size 3: with %s padding" name) e.Message
                Expect.stringContains e.Message "use a filter of at most 192 on this axis" e.Message
                let k = KernelFn.compute (net p 192) x None Both
                Expect.isTrue (k.Ntk.Value.Data |> Array.forall Double.IsFinite) "finite"
                within 1e-14 k.Nngp.Data[1] k.Nngp.Data[2] "symmetric"

        testCase "a tiled kernel refuses a layer whose one pair exceeds the budget before computing it" <| fun () ->
            // ConvTranspose stride 20 on 3×3 images: 60×60 positions, 60⁴ ≈ 1.3e7 entries per pair in the full layout
            // (~100 MB per array); a 50 MB budget is refused from the shapes, naming the layer.
            let x = tensorOf 42 [| 2; 3; 3; 2 |]
            let net = Stax.serial [ Stax.convTranspose 2 [ 3; 3 ] (Some [ 20; 20 ]) Padding.Same 1.0 None; Stax.relu; Stax.globalAvgPool ]
            let options = { BatchOptions.Default with MemoryBytes = Some(50L <<< 20) }
            let e = throwsExactly<NeuralTangentsException> (fun () -> Batching.compute options net x None Both |> ignore)
            Expect.stringContains e.Message "after ConvTranspose one pair of inputs holds 12960000 entries per array" e.Message
            Expect.stringContains e.Message "give a larger \"memory_gb\"" e.Message

        // Fixtures whose top is GlobalAvgPool → Dense(1, W_std=1, b_std=0): GlobalAvgPool's kernel is the mean over
        // all pairs of positions of the full-layout covariance (fixtures README), and that Dense maps
        // (nngp, ntk) ↦ (nngp, nngp + ntk). Writing the top out by hand checks the conv layers below it (2-D with
        // is_reversed, ConvTranspose) until pooling lands; FixtureTests then checks them end to end.
        testCase "fixtures with a global-average-pool top match to 1e-8 below the pooling" <| fun () ->
            let mutable worst = 0.0
            for file in [ "cnn1d_same_gap"; "cnn2d_same_gap"; "convt1d_same_valid_strided" ] do
                let root = JsonNode.Parse(File.ReadAllText(Path.Combine(fixtureDir, file + ".json")))
                let layers = (root["arch"]["layers"]).AsArray() |> Seq.toList
                Expect.equal ((layers[layers.Length - 2]["layer"]).GetValue<string>()) "GlobalAvgPool" "the top"
                let body = Serial(layers |> List.take (layers.Length - 2) |> List.map (fun n -> Json.decodeLayer n))
                let x1 = jsonTensor root["x1"]
                let x2 = match root["x2"] with null -> None | n -> Some(jsonTensor n)
                let k = KernelFn.computeWithLayout full body x1 x2 Both
                let gap (lead: int) (t: Tensor) =
                    let outer = Array.fold (*) 1 t.Shape[.. lead - 1]
                    let blk = t.Length / outer
                    Array.init outer (fun b -> Array.average t.Data[b * blk .. (b + 1) * blk - 1])
                let nngp = gap 2 k.Nngp
                for what, expected, actual in
                    [ "nngp", root["nngp"], nngp
                      "ntk", root["ntk"], Array.map2 (+) nngp (gap 2 k.Ntk.Value)
                      "cov1", root["cov1"], gap 1 k.Cov1 ] do
                    let e = relErr (jsonTensor expected).Data actual
                    worst <- max worst e
                    if not (e <= 1e-8) then failtestf "%s %s: relative Frobenius error %.3e > 1e-8" file what e
            note (sprintf "conv fixtures below a GlobalAvgPool top: worst relative error %.2e" worst)

        testCase "cnn1d_spatial_output keeps neural_tangents' (N1, N2, L, L') layout and is_reversed" <| fun () ->
            let root = JsonNode.Parse(File.ReadAllText(Path.Combine(fixtureDir, "cnn1d_spatial_output.json")))
            let k = KernelFn.compute (Json.decodeLayer root["arch"]) (jsonTensor root["x1"]) (Some(jsonTensor root["x2"])) Both
            Expect.equal k.Nngp.Shape (jsonTensor root["nngp"]).Shape "shape"
            Expect.equal k.IsReversed ((root["meta"]["is_reversed"]).GetValue<bool>()) "is_reversed"

        testCase "a 2-D conv in the full layout flips IsReversed and stores the pairs reversed" <| fun () ->
            // A 2-D input of unequal sides (3 × 5): neural_tangents' output is (N1, N2, W, W', H, H').
            let x = tensorOf 5 [| 2; 3; 5; 2 |]
            let conv = Stax.conv 4 [ 3; 1 ] None Padding.Same 1.0 None
            let k = KernelFn.computeWithLayout full conv x None Both
            Expect.isTrue k.IsReversed "one 2-D conv flips is_reversed"
            Expect.equal k.Nngp.Shape [| 2; 2; 5; 5; 3; 3 |] "(N1, N2, W, W', H, H')"
            let k2 = KernelFn.computeWithLayout full (Stax.serial [ conv; Stax.relu; conv ]) x None Both
            Expect.isFalse k2.IsReversed "two flips"
            Expect.equal k2.Nngp.Shape [| 2; 2; 3; 3; 5; 5 |] "back in input order"

        testCase "Monte Carlo: Conv 1-D SAME" <| fun () ->
            mcCheck "Conv 1-D SAME f=3" (cnn (fun w -> Stax.conv w [ 3 ] None Padding.Same 1.4 (Some 0.3))) x1d mcM

        testCase "Monte Carlo: Conv 1-D VALID stride 2" <| fun () ->
            mcCheck "Conv 1-D VALID f=3 s=2" (cnn (fun w -> Stax.conv w [ 3 ] (Some [ 2 ]) Padding.Valid 1.3 (Some 0.2))) x1d mcM

        testCase "Monte Carlo: Conv 1-D CIRCULAR" <| fun () ->
            mcCheck "Conv 1-D CIRCULAR f=4" (cnn (fun w -> Stax.conv w [ 4 ] None Padding.Circular 1.2 (Some 0.1))) x1d mcM

        testCase "Monte Carlo: Conv 2-D SAME standard parameterization" <| fun () ->
            let build w =
                Stax.convWith
                    { Stax.convDefaults w [ 3; 3 ] with
                        Padding = Padding.Same; WStd = 1.5; BStd = Some 0.2
                        Parameterization = Parameterization.Standard; S = (2, 1) }
            mcCheck "Conv 2-D SAME 3x3 standard s=(2,1)" (cnn build) x2d mcM

        testCase "Monte Carlo: ConvTranspose 1-D SAME stride 2" <| fun () ->
            mcCheck "ConvTranspose 1-D SAME f=3 s=2" (cnn (fun w -> Stax.convTranspose w [ 3 ] (Some [ 2 ]) Padding.Same 1.4 (Some 0.1))) x1d mcM

        testCase "Monte Carlo: ConvTranspose 1-D VALID stride 2" <| fun () ->
            mcCheck "ConvTranspose 1-D VALID f=3 s=2" (cnn (fun w -> Stax.convTranspose w [ 3 ] (Some [ 2 ]) Padding.Valid 1.2 (Some 0.3))) x1d mcM

        testCase "Monte Carlo: ConvTranspose 1-D CIRCULAR stride 2, filter wider than the stride" <| fun () ->
            mcCheck "ConvTranspose 1-D CIRCULAR f=5 s=2" (cnn (fun w -> Stax.convTranspose w [ 5 ] (Some [ 2 ]) Padding.Circular 1.3 (Some 0.2))) x1d mcM

        testCase "Monte Carlo: ConvTranspose 2-D CIRCULAR, filter wider than the output" <| fun () ->
            // 2 × 2 inputs, filter (5, 2), strides (1, 2): 2 × 4 outputs, the first axis folding a VALID length of 6.
            let x = tensorOf 33 [| 3; 2; 2; 2 |]
            mcCheck "ConvTranspose 2-D CIRCULAR (5,2) s=(1,2)" (cnn (fun w -> Stax.convTranspose w [ 5; 2 ] (Some [ 1; 2 ]) Padding.Circular 1.1 (Some 0.1))) x mcM

        testCase "ConvTranspose VALID, SAME and CIRCULAR: apply and NNGP match numpy's rendering of neural_tangents' definition" <| fun () ->
            // tests/fixtures/numpy/conv_transpose.json, written by conv_transpose.py beside it (numpy only): lax's
            // conv_transpose written out (dilation, _conv_transpose_padding, no kernel flip), for CIRCULAR a VALID one
            // folded back by _same_pad_for_filter_shape_transpose, and the finite layer's exact NNGP from its unit-filter
            // responses; 1-D to 3-D, 1-pixel inputs, strides larger than the filter, filters wider than the output.
            // Both sides are float64 sums of a few terms: 1e-13.
            let root = JsonNode.Parse(File.ReadAllText(Path.Combine(fixtureDir, "numpy", "conv_transpose.json")))
            let cases = root["cases"].AsArray()
            Expect.equal cases.Count 27 "cases in conv_transpose.json"
            for c in cases do
                let name = c["name"].GetValue<string>()
                let ints (key: string) = c[key].AsArray() |> Seq.map (fun v -> v.GetValue<int>()) |> Seq.toList
                let wStd, bStd = c["W_std"].GetValue<float>(), c["b_std"].GetValue<float>()
                let padding =
                    match c["padding"].GetValue<string>() with
                    | "VALID" -> Padding.Valid
                    | "SAME" -> Padding.Same
                    | _ -> Padding.Circular
                let x, w = jsonTensor c["x"], jsonTensor c["W"]
                let layer bias = Stax.convTranspose (c["out_chan"].GetValue<int>()) (ints "filter_shape") (Some(ints "strides")) padding wStd bias
                let expected = jsonTensor c["apply"]
                let shape, _ = InitFn.init 0 (layer None) x.Shape
                Expect.equal shape expected.Shape (name + ": init's output shape")
                let y = ApplyFn.apply (layer None) (Leaf [ w ]) x
                Expect.equal y.Shape expected.Shape (name + ": apply's shape")
                assertClose (name + " apply") 1e-13 expected.Data y.Data
                let nngp = jsonTensor c["nngp_full"]
                let kf = KernelFn.computeWithLayout full (layer (Some bStd)) x None Both
                let kf = if kf.IsReversed then Kernel.reverse kf else kf
                Expect.equal kf.Nngp.Shape nngp.Shape (name + ": full layout shape")
                assertClose (name + " full nngp") 1e-13 nngp.Data kf.Nngp.Data
                let kd = KernelFn.computeWithLayout diagonal (layer (Some bStd)) x None Both
                assertClose (name + " diagonal nngp") 1e-13 (diagonalOf 2 nngp) kd.Nngp.Data

        testCase "Monte Carlo: ConvLocal 1-D SAME" <| fun () ->
            mcCheck "ConvLocal 1-D SAME f=3" (cnn (fun w -> Stax.convLocal w [ 3 ] None Padding.Same 1.4 (Some 0.3))) x1d mcM

        testCase "Monte Carlo: ConvLocal 1-D VALID stride 2" <| fun () ->
            mcCheck "ConvLocal 1-D VALID f=2 s=2" (cnn (fun w -> Stax.convLocal w [ 2 ] (Some [ 2 ]) Padding.Valid 1.2 (Some 0.2))) x1d mcM

        testCase "Monte Carlo: ConvLocal 2-D CIRCULAR" <| fun () ->
            mcCheck "ConvLocal 2-D CIRCULAR (3,2)" (cnn (fun w -> Stax.convLocal w [ 3; 2 ] None Padding.Circular 1.1 (Some 0.1))) (tensorOf 35 [| 3; 2; 3; 2 |]) mcM

        testCase "closed forms at the borders: odd sizes, strides that do not divide, 1-pixel inputs, filters larger than the input" <| fun () ->
            let cases =
                [ 7, 2, 3, Padding.Valid
                  7, 3, 2, Padding.Same
                  7, 4, 3, Padding.Circular
                  5, 3, 4, Padding.Same
                  1, 3, 1, Padding.Same
                  1, 3, 1, Padding.Circular
                  2, 5, 1, Padding.Same
                  3, 5, 2, Padding.Circular ]
            for d, f, s, padding in cases do
                let x = tensorOf (100 + d * 10 + f) [| 3; d; 2 |]
                let layer = Stax.conv 8 [ f ] (Some [ s ]) padding 1.3 (Some 0.4)
                let expected = bruteConv1d f s padding 1.3 0.4 x
                let k = KernelFn.computeWithLayout full layer x None Both
                let what = sprintf "D=%d f=%d s=%d %A" d f s padding
                Expect.equal k.Nngp.Shape expected.Shape (what + " shape")
                assertClose (what + " full nngp") 1e-13 expected.Data k.Nngp.Data
                let kd = KernelFn.computeWithLayout diagonal layer x None Both
                assertClose (what + " diagonal nngp") 1e-13 (diagonalOf 2 expected) kd.Nngp.Data
            // 1 pixel, filter 3: SAME sees the pixel at one of 3 taps, CIRCULAR at all 3 (the sum is normalised by 3).
            let x = tensorOf 9 [| 2; 1; 3 |]
            let k0 = (x.Data[0] * x.Data[0] + x.Data[1] * x.Data[1] + x.Data[2] * x.Data[2]) / 3.0
            let same = KernelFn.compute (Stax.conv 4 [ 3 ] None Padding.Same 2.0 (Some 0.5)) x None Nngp
            within 1e-14 (4.0 * k0 / 3.0 + 0.25) same.Nngp.Data[0] "1 pixel SAME: W²·K/3 + b²"
            let circ = KernelFn.compute (Stax.conv 4 [ 3 ] None Padding.Circular 2.0 (Some 0.5)) x None Nngp
            within 1e-14 (4.0 * k0 + 0.25) circ.Nngp.Data[0] "1 pixel CIRCULAR: W²·K + b²"

        testCase "2-D and 3-D closed forms of Conv and ConvLocal: 1-pixel images, odd sizes, strides that do not divide, filters larger than the input" <| fun () ->
            let cases =
                [ [| 1; 1 |], [| 3; 3 |], [| 1; 1 |], Padding.Same
                  [| 1; 1 |], [| 3; 2 |], [| 2; 1 |], Padding.Circular
                  [| 3; 5 |], [| 2; 4 |], [| 2; 3 |], Padding.Same
                  [| 2; 3 |], [| 5; 4 |], [| 1; 2 |], Padding.Circular
                  [| 3; 2 |], [| 4; 5 |], [| 2; 2 |], Padding.Same
                  [| 5; 4 |], [| 3; 2 |], [| 3; 3 |], Padding.Valid
                  [| 3; 1; 2 |], [| 2; 1; 3 |], [| 2; 1; 1 |], Padding.Same
                  [| 2; 3; 2 |], [| 3; 2; 2 |], [| 1; 2; 1 |], Padding.Circular
                  [| 3; 3; 2 |], [| 2; 2; 1 |], [| 1; 2; 2 |], Padding.Valid
                  [| 1; 1; 1 |], [| 2; 3; 2 |], [| 1; 1; 1 |], Padding.Circular ]
            for dims, f, s, padding in cases do
                for local in [ false; true ] do
                    let x = tensorOf (200 + Array.sum dims * 10 + Array.sum f) (Array.concat [ [| 3 |]; dims; [| 2 |] ])
                    let spec =
                        { Stax.convDefaults 8 (List.ofArray f) with
                            Kind = (if local then ConvKind.Local else ConvKind.Conv)
                            Strides = List.ofArray s; Padding = padding; WStd = 1.3; BStd = Some 0.4 }
                    let layer = Stax.convWith spec
                    let expected = bruteConvNd local f s padding 1.3 0.4 x
                    let what = sprintf "%s %A f=%A s=%A %A" (if local then "ConvLocal" else "Conv") dims f s padding
                    let k = KernelFn.computeWithLayout full layer x None Both
                    let k = if k.IsReversed then Kernel.reverse k else k
                    Expect.equal k.Nngp.Shape expected.Shape (what + " shape")
                    assertClose (what + " full nngp") 1e-13 expected.Data k.Nngp.Data
                    let kd = KernelFn.computeWithLayout diagonal layer x None Both
                    assertClose (what + " diagonal nngp") 1e-13 (diagonalOf 2 expected) kd.Nngp.Data

        testCase "Monte Carlo: Conv 3-D SAME" <| fun () ->
            mcCheck "Conv 3-D SAME (2,2,2)" (cnn (fun w -> Stax.conv w [ 2; 2; 2 ] None Padding.Same 1.3 (Some 0.2))) (tensorOf 34 [| 3; 2; 3; 2; 2 |]) mcM

        testCase "VALID with a filter larger than the input is an error that names the fix" <| fun () ->
            let e = throwsExactly<NeuralTangentsException> (fun () ->
                KernelFn.compute (Stax.conv 4 [ 5 ] None Padding.Valid 1.0 None) (tensorOf 1 [| 2; 3; 2 |]) None Nngp |> ignore)
            Expect.stringContains e.Message "SAME or CIRCULAR" "message"

        testCase "channel-first dimension numbers: NCHW result equals NHWC result on transposed input" <| fun () ->
            let x = tensorOf 41 [| 3; 4; 5; 2 |]
            let xNchw = Tensor.permute [| 0; 3; 1; 2 |] x
            for kind, padding in [ ConvKind.Conv, Padding.Same; ConvKind.Local, Padding.Circular; ConvKind.Transpose, Padding.Circular; ConvKind.Transpose, Padding.Valid ] do
                let what = sprintf "%A %A" kind padding
                let spec = { Stax.convDefaults 6 [ 3; 2 ] with Kind = kind; Padding = padding; Strides = [ 2; 1 ]; WStd = 1.3; BStd = Some 0.2 }
                let nhwc = Stax.convWith { spec with DimensionNumbers = ("NHWC", "HWIO", "NHWC") }
                let nchw = Stax.convWith { spec with DimensionNumbers = ("NCHW", "HWIO", "NCHW") }
                let top = [ Stax.relu; Stax.flatten; Stax.dense 1 1.0 (Some 0.1) ]
                for request in [ full; diagonal ] do
                    let a = KernelFn.computeWithLayout request (Stax.serial (nhwc :: top)) x None Both
                    let b = KernelFn.computeWithLayout request (Stax.serial (nchw :: top)) xNchw None Both
                    assertClose (what + " nngp") 1e-14 a.Nngp.Data b.Nngp.Data
                    assertClose (what + " ntk") 1e-14 a.Ntk.Value.Data b.Ntk.Value.Data
                // The finite networks with the same weights agree too (the filter spec is HWIO in both; the bias is laid
                // out by the output spec, (1, H, W, C) → (1, C, H, W)).
                let _, p = InitFn.init 3 nhwc x.Shape
                let pNchw = match p with Leaf [ w; b ] -> Leaf [ w; Tensor.permute [| 0; 3; 1; 2 |] b ] | _ -> failwith "W and b"
                let ya = ApplyFn.apply nhwc p x
                let yb = ApplyFn.apply nchw pNchw xNchw
                assertClose (what + " apply") 1e-14 ya.Data (Tensor.permute [| 0; 2; 3; 1 |] yb).Data

        testCase "dimension numbers that order the filter's or the output's spatial axes differently from the input's" <| fun () ->
            // neural_tangents reads filter_shape and strides in the filter spec's order (input_to_filter_permutation) and
            // lays the output out by the output spec (k.transpose(in_to_out_permutation)): ("NHWC", "WHIO", "NWHC") with
            // filter (f_w, f_h) is ("NHWC", "HWIO", "NHWC") with (f_h, f_w) and the output's H and W swapped.
            let x = tensorOf 42 [| 3; 4; 5; 2 |]
            for kind, padding in [ ConvKind.Conv, Padding.Same; ConvKind.Local, Padding.Circular; ConvKind.Transpose, Padding.Circular ] do
                let what = sprintf "%A %A" kind padding
                let spec = { Stax.convDefaults 6 [ 3; 2 ] with Kind = kind; Padding = padding; Strides = [ 2; 1 ]; WStd = 1.3; BStd = Some 0.2 }
                let plain = Stax.convWith { spec with DimensionNumbers = ("NHWC", "HWIO", "NHWC") }
                let swapped = Stax.convWith { spec with FilterShape = [ 2; 3 ]; Strides = [ 1; 2 ]; DimensionNumbers = ("NHWC", "WHIO", "NWHC") }
                let swapOut = Tensor.permute [| 0; 2; 1; 3 |]
                let full' (k: Kernel) = if k.IsReversed then Kernel.reverse k else k
                for request in [ full; diagonal ] do
                    let a = full' (KernelFn.computeWithLayout request plain x None Both)
                    let b = full' (KernelFn.computeWithLayout request swapped x None Both)
                    // b's spatial axes are (W, H): in the full layout (N, N, W, W', H, H'), in the diagonal one (N, N, W, H).
                    let back (t: Tensor) = if request = full then Tensor.permute [| 0; 1; 4; 5; 2; 3 |] t else Tensor.permute [| 0; 1; 3; 2 |] t
                    assertClose (what + " nngp") 1e-14 a.Nngp.Data (back b.Nngp).Data
                    assertClose (what + " ntk") 1e-14 a.Ntk.Value.Data (back b.Ntk.Value).Data
                // The finite shared-filter layers with the same weights (filter axes swapped; the bias laid out by the
                // output spec). Not ConvLocal: how lax orders the filter taps inside its I axis under a permuted filter
                // spec is not checked here.
                if kind <> ConvKind.Local then
                    let _, p = InitFn.init 5 plain x.Shape
                    let pSwapped =
                        match p with
                        | Leaf [ w; b ] -> Leaf [ Tensor.permute [| 1; 0; 2; 3 |] w; swapOut b ]
                        | _ -> failwith "W and b"
                    let ya = ApplyFn.apply plain p x
                    let yb = ApplyFn.apply swapped pSwapped x
                    assertClose (what + " apply") 1e-14 ya.Data (swapOut yb).Data

        testCase "full layout's diagonal equals the diagonal layout; Flatten of either is the same" <| fun () ->
            let nets =
                [ "Conv 2-D", Stax.serial [ Stax.conv 8 [ 3; 2 ] (Some [ 1; 2 ]) Padding.Same 1.4 (Some 0.2); Stax.relu; Stax.conv 8 [ 2; 2 ] None Padding.Circular 1.2 (Some 0.1) ]
                  "ConvLocal 2-D", Stax.serial [ Stax.convLocal 8 [ 3; 3 ] None Padding.Same 1.4 (Some 0.2); Stax.erf 1.0 1.0 0.0 ]
                  "ConvTranspose 1-D", Stax.serial [ Stax.convTranspose 8 [ 3 ] (Some [ 2 ]) Padding.Valid 1.4 (Some 0.2); Stax.relu ] ]
            for name, net in nets do
                let x = if name.Contains "2-D" then tensorOf 51 [| 3; 5; 4; 2 |] else tensorOf 52 [| 3; 5; 2 |]
                let kf = KernelFn.computeWithLayout full net x None Both
                let kf = if kf.IsReversed then Kernel.reverse kf else kf
                let kd = KernelFn.computeWithLayout diagonal net x None Both
                assertClose (name + " nngp") 1e-14 (diagonalOf 2 kf.Nngp) kd.Nngp.Data
                assertClose (name + " ntk") 1e-14 (diagonalOf 2 kf.Ntk.Value) kd.Ntk.Value.Data
                assertClose (name + " cov1") 1e-14 (diagonalOf 1 kf.Cov1) kd.Cov1.Data
                let flat = Stax.serial [ net; Stax.flatten ]
                let ff = KernelFn.computeWithLayout full flat x None Both
                let fd = KernelFn.computeWithLayout diagonal flat x None Both
                assertClose (name + " Flatten nngp") 1e-14 ff.Nngp.Data fd.Nngp.Data
                assertClose (name + " Flatten ntk") 1e-14 ff.Ntk.Value.Data fd.Ntk.Value.Data

        testCase "a Flatten top picks the diagonal layout, a spatial output the full one" <| fun () ->
            let x = tensorOf 53 [| 2; 4; 4; 2 |]
            let conv = Stax.conv 8 [ 3; 3 ] None Padding.Same 1.0 None
            Expect.isTrue (KernelFn.inputKernel (Stax.serial [ conv; Stax.relu; Stax.flatten ]) x None Both).DiagonalSpatial "Flatten top"
            Expect.isFalse (KernelFn.inputKernel (Stax.serial [ conv; Stax.relu ]) x None Both).DiagonalSpatial "spatial output"
            Expect.isTrue (KernelFn.inputKernel (Stax.serial [ Stax.convLocal 8 [ 3; 3 ] None Padding.Same 1.0 None; Stax.flatten ]) x None Both).DiagonalSpatial "ConvLocal"

        testCase "NNGP is independent of out_chan, s and the parameterization; the standard NTK is (N_in/s0)·C(K) (+1)" <| fun () ->
            let x = tensorOf 61 [| 3; 5; 3 |]
            let spec = { Stax.convDefaults 4 [ 3 ] with Padding = Padding.Same; WStd = 1.3; BStd = Some 0.2 }
            let reference = KernelFn.compute (Stax.convWith spec) x None Both
            for outChan, s, p in [ 64, (1, 1), Parameterization.Ntk; 7, (2, 3), Parameterization.Standard; 512, (1, 5), Parameterization.Standard ] do
                let k = KernelFn.compute (Stax.convWith { spec with OutChan = outChan; S = s; Parameterization = p }) x None Both
                assertClose (sprintf "nngp out_chan=%d s=%A %A" outChan s p) 1e-15 reference.Nngp.Data k.Nngp.Data
                if p = Parameterization.Standard then
                    // The input NTK is 0, so ntk' = (C·f/s0)·C(nngp) + 1 with C(nngp) = (nngp' − b²)/W².
                    let fanIn = 3.0 * 3.0 / float (fst s)
                    let expected = reference.Nngp.Data |> Array.map (fun v -> fanIn * (v - 0.04) / 1.69 + 1.0)
                    assertClose (sprintf "standard ntk s=%A" s) 1e-14 expected k.Ntk.Value.Data
            // ntk parameterization with an input NTK of 0: ntk' = nngp'.
            assertClose "ntk parameterization" 1e-15 reference.Nngp.Data reference.Ntk.Value.Data

        testCase "nt kernel on 4-d (NHWC) and 5-d (NDHWC) .npy inputs gives KernelFn.compute's numbers" <| fun () ->
            let dir = Path.Combine(Path.GetTempPath(), "nt-conv-" + Guid.NewGuid().ToString("N"))
            Directory.CreateDirectory dir |> ignore
            try
                for name, x1, x2, arch in
                    [ "2-D", tensorOf 71 [| 2; 4; 3; 2 |], tensorOf 72 [| 3; 4; 3; 2 |],
                      """{"layer": "serial", "layers": [{"layer": "Conv", "out_chan": 8, "filter_shape": [3, 2], "padding": "SAME", "b_std": 0.1},
                         {"layer": "Relu"}, {"layer": "GlobalAvgPool"}, {"layer": "Dense", "out_dim": 1}]}"""
                      "3-D", tensorOf 73 [| 2; 3; 2; 3; 2 |], tensorOf 74 [| 2; 3; 2; 3; 2 |],
                      """{"layer": "serial", "layers": [{"layer": "ConvTranspose", "out_chan": 8, "filter_shape": [2, 2, 3], "strides": [1, 2, 1], "padding": "CIRCULAR"},
                         {"layer": "Erf"}, {"layer": "Conv", "out_chan": 4, "filter_shape": [2, 1, 2], "padding": "VALID"}, {"layer": "Flatten"}, {"layer": "Dense", "out_dim": 1}]}""" ] do
                    Npy.write (Path.Combine(dir, "x1.npy")) x1
                    Npy.write (Path.Combine(dir, "x2.npy")) x2
                    let req = Path.Combine(dir, "req.json")
                    // One prefix per case: an answer file already there would be refused rather than replaced.
                    File.WriteAllText(req, sprintf """{"arch": %s, "x1": "x1.npy", "x2": "x2.npy", "out": "k%s"}""" arch name)
                    use out = new StringWriter()
                    use err = new StringWriter()
                    let code = Cli.run [| "kernel"; req |] (new StringReader("")) out err
                    Expect.equal code 0 (err.ToString())
                    let k = KernelFn.compute (Json.decode arch) x1 (Some x2) Both
                    for what, expected in [ "nngp", k.Nngp; "ntk", k.Ntk.Value ] do
                        let back = Npy.read (Path.Combine(dir, "k" + name + "." + what + ".npy"))
                        Expect.equal back.Shape expected.Shape (name + " " + what)
                        Expect.equal back.Data expected.Data (name + " " + what)
            finally
                Directory.Delete(dir, true)

        testCase "JSON round trip of every conv kind, and neural_tangents' JSON with nulls and defaults" <| fun () ->
            let layers =
                [ Stax.conv 16 [ 3; 3 ] (Some [ 2; 1 ]) Padding.Same 1.5 (Some 0.1)
                  Stax.convTranspose 8 [ 2 ] (Some [ 3 ]) Padding.Valid 1.2 None
                  Stax.convTranspose 3 [ 4; 2 ] (Some [ 2; 1 ]) Padding.Circular 1.1 (Some 0.3)
                  Stax.convLocal 4 [ 2; 2; 2 ] None Padding.Circular 1.0 (Some 0.0)
                  Stax.convWith
                      { Stax.convDefaults 5 [ 3; 2 ] with
                          DimensionNumbers = ("NCHW", "OIHW", "NHWC"); Parameterization = Parameterization.Standard; S = (2, 3) } ]
            for l in layers do
                Expect.equal (Json.decode (Json.encode l)) l (Json.encode l)
            let fromNt =
                Json.decode """{"layer":"Conv","out_chan":32,"filter_shape":[3,3],"strides":null,"padding":"SAME","W_std":1.3,"b_std":null,"dimension_numbers":null}"""
            Expect.equal fromNt (Stax.conv 32 [ 3; 3 ] None Padding.Same 1.3 None) "defaults"
            let enc = Json.encode (Stax.conv 2 [ 3 ] None Padding.Valid 1.0 None)
            Expect.stringContains enc "\"dimension_numbers\":[\"NAC\",\"AIO\",\"NAC\"]" "explicit dimension numbers"
            Expect.equal (Json.decode """{"layer":"ConvTranspose","out_chan":2,"filter_shape":[3],"padding":"CIRCULAR"}""")
                (Stax.convTranspose 2 [ 3 ] None Padding.Circular 1.0 None) "ConvTranspose CIRCULAR decodes"
            for bad, fragment in
                [ """{"layer":"Conv","out_chan":2}""", "filter_shape"
                  """{"layer":"Conv","out_chan":2,"filter_shape":[3],"padding":"same"}""", "padding"
                  """{"layer":"Conv","out_chan":2,"filter_shape":[3],"strides":[1,1]}""", "strides"
                  """{"layer":"Conv","out_chan":2,"filter_shape":[3],"dimension_numbers":["NHC","HIO","NXC"]}""", "dimension_numbers" ] do
                let e = throwsExactly<Json.JsonArchitectureException> (fun () -> Json.decode bad |> ignore)
                Expect.stringContains e.Message fragment bad
    ]
