/// The pooling family (Layers/Pooling.fs): AvgPool, SumPool, GlobalAvgPool and GlobalSumPool. Kernels are checked
/// against closed forms computed here by hand (a naive pooling of the inputs written independently of the library's
/// tap maps; the kernel of pooled inputs is the pooled kernel because the input kernel is x·x'ᵀ/C), against laws
/// (window 1 = identity, SumPool = |w|·AvgPool, GlobalAvgPool = mean over all pairs of positions, full layout's
/// diagonal = diagonal layout when positions are uncorrelated, symmetry and PSD), and against Monte Carlo estimates
/// of finite networks (tolerance derived from the sample standard error, as MonteCarloTests does).
module NeuralTangents.Tests.PoolingTests

open System
open System.IO
open Expecto
open NeuralTangents
open NeuralTangents.Tests.TestUtil

// ---- A naive reference pooling of NHWC / NHC tensors (batch first, channels last) ----

/// Pools a (N, spatial…, C) tensor by brute force: for every output position, every window offset is mapped to an
/// input index (lax SAME padding split with the smaller half before; CIRCULAR wraps; VALID has no padding), and the
/// entries found are summed, then divided by the window size (avg), by the number of entries inside the input
/// (avg with normalize_edges at SAME), or by nothing (sum).
let private refPool (average: bool) (normalizeEdges: bool) (padding: Padding) (window: int list) (strides: int list) (x: Tensor) =
    let n, c = x.Shape[0], x.Shape[x.Rank - 1]
    let dims = x.Shape[1 .. x.Rank - 2]
    let w, s = List.toArray window, List.toArray strides
    let outDim a =
        match padding with
        | Padding.Valid -> (dims[a] - w[a]) / s[a] + 1
        | _ -> int (ceil (float dims[a] / float s[a]))
    let padLo a =
        match padding with
        | Padding.Valid -> 0
        | _ -> max ((outDim a - 1) * s[a] + w[a] - dims[a]) 0 / 2
    let outDims = Array.init dims.Length outDim
    let nOut = Array.fold (*) 1 outDims
    let nIn = Array.fold (*) 1 dims
    let winSize = Array.fold (*) 1 w
    let unravel (sizes: int[]) (flat: int) =
        let idx = Array.zeroCreate sizes.Length
        let mutable r = flat
        for a in sizes.Length - 1 .. -1 .. 0 do
            idx[a] <- r % sizes[a]
            r <- r / sizes[a]
        idx
    let ravel (sizes: int[]) (idx: int[]) = Array.fold2 (fun acc i d -> acc * d + i) 0 idx sizes
    let out = Array.zeroCreate (n * nOut * c)
    for i in 0 .. n - 1 do
        for o in 0 .. nOut - 1 do
            let oi = unravel outDims o
            let mutable count = 0
            let acc = Array.zeroCreate c
            for t in 0 .. winSize - 1 do
                let ti = unravel w t
                let pos = Array.init dims.Length (fun a -> oi[a] * s[a] - padLo a + ti[a])
                let inside = Array.forall2 (fun p d -> p >= 0 && p < d) pos dims
                let pos =
                    if padding = Padding.Circular then Array.map2 (fun p d -> ((p % d) + d) % d) pos dims else pos
                if inside || padding = Padding.Circular then
                    count <- count + 1
                    let p = ravel dims pos
                    for ch in 0 .. c - 1 do acc[ch] <- acc[ch] + x.Data[(i * nIn + p) * c + ch]
            let div = if not average then 1.0 elif normalizeEdges && padding = Padding.Same then float count else float winSize
            for ch in 0 .. c - 1 do out[(i * nOut + o) * c + ch] <- acc[ch] / div
    Tensor.create (Array.concat [ [| n |]; outDims; [| c |] ]) out

let private full = { LayoutRequest.Auto with DiagonalSpatial = Some false }
let private diagonal = { LayoutRequest.Auto with DiagonalSpatial = Some true }

let private img (seed: int) (n: int) (dims: int list) (c: int) =
    let shape = Array.ofList (n :: dims @ [ c ])
    Tensor.create shape (normals seed (Array.fold (*) 1 shape))

let private paddings = [ Padding.Valid; Padding.Same; Padding.Circular ]

/// (window, strides) cases for 2D inputs of 5×6: odd/even windows, strides > 1, a window wider than SAME's pad.
let private cases2d = [ [ 3; 2 ], [ 1; 1 ]; [ 2; 2 ], [ 2; 1 ]; [ 3; 3 ], [ 2; 3 ]; [ 1; 4 ], [ 1; 2 ] ]

// ---- Monte Carlo (the approach of MonteCarloTests: per-entry |mean − analytic| ≤ 5·SE over M = 300 networks) ----

/// Mean and standard error per entry of M samples.
let private meanSe (samples: Tensor[]) =
    let m = float samples.Length
    let k = samples[0].Length
    let mean = Array.init k (fun e -> (samples |> Array.sumBy (fun s -> s.Data[e])) / m)
    let se = Array.init k (fun e -> sqrt ((samples |> Array.sumBy (fun s -> (s.Data[e] - mean[e]) ** 2.0)) / (m - 1.0) / m))
    mean, se

/// Z = 5 per entry: the two-sided normal tail is 5.7e-7; over the ≈ 250 distinct entries the pooling tests check
/// the union bound keeps a false failure below 2e-4 for a random choice of the (fixed) seeds. Every network here has
/// one hidden layer (Dense → φ → pooling → readout), whose empirical kernels are unbiased, so no bias allowance.
let private z = 5.0

/// The readout's first output channel only (its columns are iid), for the NTK sample.
let private firstColumn (p: Params) =
    match p with
    | Branches ps ->
        match List.last ps with
        | Leaf(w :: b) ->
            let n, c = w.Shape[0], w.Shape[1]
            let w1 = Tensor.create [| n; 1 |] (Array.init n (fun k -> w.Data[k * c]))
            let b1 = b |> List.map (fun b -> Tensor.create (b.Shape |> Array.map (fun d -> if d = c then 1 else d)) [| b.Data[0] |])
            Branches(List.take (ps.Length - 1) ps @ [ Leaf(w1 :: b1) ])
        | _ -> failwith "the network must end in Dense"
    | _ -> failwith "the network must be a serial"

let private mcWidth = 256
let private mcSamples = 300

/// Dense(256) → Relu → pool → [Flatten] → Dense(readout): M networks, NNGP from a 32-channel readout, NTK from its
/// first channel; returns the worst |z| of both kernels.
let private monteCarlo (name: string) (pool: Layer) (flatten: bool) (x: Tensor) =
    let build readout =
        Stax.serial
            [ Stax.dense mcWidth 1.4 (Some 0.3); Stax.relu; pool
              (if flatten then Stax.flatten else Stax.identity)
              Stax.dense readout 1.1 (Some 0.2) ]
    let analytic = KernelFn.compute (build 1) x None Both
    let net = build 32
    let samples =
        Array.Parallel.init mcSamples (fun i ->
            let _, p = InitFn.init (5000 + i) net x.Shape
            Empirical.nngp net p x None, Empirical.ntk (build 1) (firstColumn p) x None)
    let mutable worst = 0.0
    for what, (a: Tensor), s in [ "nngp", analytic.Nngp, Array.map fst samples; "ntk", analytic.Ntk.Value, Array.map snd samples ] do
        let mean, se = meanSe s
        let n = a.Shape[0]
        for i in 0 .. n - 1 do
            for j in i .. n - 1 do
                let e = i * n + j
                let zz = abs (mean[e] - a.Data[e]) / se[e]
                worst <- max worst zz
                if not (zz <= z) then
                    failtestf "%s %s[%d,%d]: MC mean %.6g vs analytic %.6g, |z| = %.2f > %.0f" name what i j mean[e] a.Data[e] zz z
    note (sprintf "%-40s M=%d width=%d  worst |z| %.2f" name mcSamples mcWidth worst)

/// The entries (i, j, p, p) of a full-layout (N1, N2, H, H') kernel for a 1D case and of (N1, N2, H, H', W, W').
let private fullDiagonal (t: Tensor) =
    let n1, n2 = t.Shape[0], t.Shape[1]
    let dims = [| for a in 2 .. 2 .. t.Rank - 1 -> t.Shape[a] |]
    let s = Array.fold (*) 1 dims
    let block = s * s
    [| for ij in 0 .. n1 * n2 - 1 do
         for p in 0 .. s - 1 do
             // Position p = (h, w) sits at (h, h, w, w) of the zipped block.
             let mutable r = p
             let mutable e = 0
             let mutable stride = 1
             for a in dims.Length - 1 .. -1 .. 0 do
                 let h = r % dims[a]
                 r <- r / dims[a]
                 e <- e + (h * dims[a] + h) * stride
                 stride <- stride * dims[a] * dims[a]
             yield t.Data[ij * block + e] |]

/// A zipped (N1, N2, H, H', W, W') kernel as the (N1·H·W) × (N2·H'·W') matrix of all (input, position) pairs.
let private asMatrix (t: Tensor) =
    let n1, n2 = t.Shape[0], t.Shape[1]
    let dims = [| for a in 2 .. 2 .. t.Rank - 1 -> t.Shape[a] |]
    let s = Array.fold (*) 1 dims
    let pIdx, qIdx = Spatial.pairIndices dims
    let m = Array2D.zeroCreate (n1 * s) (n2 * s)
    for i in 0 .. n1 - 1 do
        for j in 0 .. n2 - 1 do
            for e in 0 .. s * s - 1 do
                m[i * s + pIdx[e], j * s + qIdx[e]] <- t.Data[(i * n2 + j) * s * s + e]
    m

/// Runs nt with arguments and stdin text; returns (exit code, stdout, stderr).
let private nt (argv: string list) (stdin: string) =
    use out = new StringWriter()
    use err = new StringWriter()
    let code = NeuralTangents.Cli.Cli.run (List.toArray argv) (new StringReader(stdin)) out err
    code, out.ToString(), err.ToString()

[<Tests>]
let tests =
    testList "PoolingTests" [
        testList "closed forms" [
            testCase "GlobalAvgPool of the inputs: nngp[i, j] = (mean_h x_ih)·(mean_h x_jh)/C, by hand" <| fun () ->
                let x = img 11 3 [ 5 ] 4
                let k = KernelFn.compute Stax.globalAvgPool x None Both
                let mean i = Array.init 4 (fun c -> (Array.init 5 (fun h -> x.Data[(i * 5 + h) * 4 + c]) |> Array.sum) / 5.0)
                let expected = Array.init 9 (fun ij -> Array.fold2 (fun acc a b -> acc + a * b) 0.0 (mean (ij / 3)) (mean (ij % 3)) / 4.0)
                Expect.equal k.Nngp.Shape [| 3; 3 |] "shape"
                assertClose "nngp" 1e-13 expected k.Nngp.Data
                Expect.equal k.Ntk.Value.Data (Array.zeroCreate 9) "the input NTK stays 0"

            testCase "Dense → GlobalAvgPool: nngp = W²·mean_{h,h'} x_h·x'_h'/C + b² and ntk = nngp, by hand" <| fun () ->
                let x1, x2 = img 12 2 [ 4 ] 3, img 13 3 [ 4 ] 3
                let w, b = 1.3, 0.4
                let k = KernelFn.compute (Stax.serial [ Stax.dense 64 w (Some b); Stax.globalAvgPool ]) x1 (Some x2) Both
                let expected =
                    Array.init 6 (fun ij ->
                        let i, j = ij / 3, ij % 3
                        let mutable acc = 0.0
                        for h in 0 .. 3 do
                            for h' in 0 .. 3 do
                                for c in 0 .. 2 do acc <- acc + x1.Data[(i * 4 + h) * 3 + c] * x2.Data[(j * 4 + h') * 3 + c]
                        w * w * acc / 16.0 / 3.0 + b * b)
                assertClose "nngp" 1e-13 expected k.Nngp.Data
                assertClose "ntk" 1e-13 expected k.Ntk.Value.Data
                Expect.equal k.Nngp.Shape [| 2; 3 |] "shape"
                Expect.equal k.Shape1 [| 2; 64 |] "finite shape after the pool"

            testCase "GlobalSumPool = positions² × GlobalAvgPool" <| fun () ->
                let x = img 14 3 [ 3; 2 ] 2
                let net top = Stax.serial [ Stax.dense 8 1.2 (Some 0.1); Stax.erf 1.0 1.0 0.0; top ]
                let a = KernelFn.compute (net Stax.globalAvgPool) x None Both
                let s = KernelFn.compute (net Stax.globalSumPool) x None Both
                assertClose "nngp" 1e-13 (a.Nngp.Data |> Array.map ((*) 36.0)) s.Nngp.Data
                assertClose "ntk" 1e-13 (a.Ntk.Value.Data |> Array.map ((*) 36.0)) s.Ntk.Value.Data

            testRows "AvgPool/SumPool of 2D inputs = the input kernel of the naively pooled inputs (full layout, cov1, cov2)"
                (fun (average, normalizeEdges, padding, (window, strides)) ->
                    let x1, x2 = img 21 2 [ 5; 6 ] 3, img 22 3 [ 5; 6 ] 3
                    let spec = { Stax.poolDefaults window with Strides = strides; Padding = padding }
                    let layer = if average then Stax.avgPoolWith spec normalizeEdges else Stax.sumPoolWith spec
                    let k = KernelFn.compute layer x1 (Some x2) Both
                    let pool = refPool average normalizeEdges padding window strides
                    let e = KernelFn.computeWithLayout full Stax.identity (pool x1) (Some(pool x2)) Both
                    let what = sprintf "%A %A %A %A" average padding window strides
                    Expect.equal k.Nngp.Shape e.Nngp.Shape what
                    assertClose (what + " nngp") 1e-13 e.Nngp.Data k.Nngp.Data
                    assertClose (what + " cov1") 1e-13 e.Cov1.Data k.Cov1.Data
                    assertClose (what + " cov2") 1e-13 e.Cov2.Value.Data k.Cov2.Value.Data
                    Expect.equal k.Shape1 (pool x1).Shape (what + " Shape1"))
                [ for average, ne in [ true, false; true, true; false, false ] do
                    for p in paddings do
                        for c in cases2d do yield average, ne, p, c ]

            testRows "the finite AvgPool/SumPool equals the naive pooling, and its pullback is its transpose"
                (fun (average, normalizeEdges, padding, (window, strides)) ->
                    let x = img 23 2 [ 5; 6 ] 3
                    let spec = { Stax.poolDefaults window with Strides = strides; Padding = padding }
                    let layer = if average then Stax.avgPoolWith spec normalizeEdges else Stax.sumPoolWith spec
                    let _, p = InitFn.init 0 layer x.Shape
                    let y = ApplyFn.apply layer p x
                    let expected = refPool average normalizeEdges padding window strides x
                    Expect.equal y.Shape expected.Shape "shape"
                    assertClose "apply" 1e-14 expected.Data y.Data
                    // ⟨P x, c⟩ = ⟨x, Pᵀ c⟩ for a random cotangent c.
                    let ct = Tensor.create y.Shape (normals 24 y.Length)
                    let _, dx = Backward.vjp layer p x ct
                    let lhs = Array.fold2 (fun acc a b -> acc + a * b) 0.0 y.Data ct.Data
                    let rhs = Array.fold2 (fun acc a b -> acc + a * b) 0.0 x.Data dx.Data
                    within 1e-12 lhs rhs "⟨Px, c⟩ = ⟨x, Pᵀc⟩")
                [ for average, ne in [ true, false; true, true; false, false ] do
                    for p in paddings do
                        for c in cases2d do yield average, ne, p, c ]

            testCase "AvgPool with channels first (batch_axis 1, channel_axis 0) pools the same spatial axes" <| fun () ->
                let x = img 25 2 [ 5; 4 ] 3
                // (N, H, W, C) → (C, N, H, W).
                let xc = x |> Tensor.moveAxis 3 0
                let spec = { Stax.poolDefaults [ 2; 3 ] with Padding = Padding.Same }
                let k = KernelFn.compute (Stax.avgPoolWith spec false) x None Nngp
                let kc = KernelFn.compute (Stax.avgPoolWith { spec with BatchAxis = 1; ChannelAxis = 0 } false) xc None Nngp
                assertClose "nngp" 1e-14 k.Nngp.Data kc.Nngp.Data
                Expect.equal kc.Shape1 [| 3; 2; 5; 4 |] "finite shape keeps its axis order"
        ]

        testList "laws" [
            testCase "GlobalAvgPool = the mean over all pairs of positions of the full layout" <| fun () ->
                let x1, x2 = img 31 3 [ 4; 3 ] 2, img 32 2 [ 4; 3 ] 2
                let body = Stax.serial [ Stax.dense 16 1.5 (Some 0.2); Stax.relu; Stax.dense 16 1.1 (Some 0.1); Stax.gelu false ]
                let kf = KernelFn.computeWithLayout full body x1 (Some x2) Both
                let kg = KernelFn.compute (Stax.serial [ body; Stax.globalAvgPool ]) x1 (Some x2) Both
                let mean (t: Tensor) = Array.init 6 (fun ij -> (Array.sub t.Data (ij * 144) 144 |> Array.sum) / 144.0)
                assertClose "nngp" 1e-13 (mean kf.Nngp) kg.Nngp.Data
                assertClose "ntk" 1e-13 (mean kf.Ntk.Value) kg.Ntk.Value.Data

            testRows "AvgPool with window 1 and stride 1 is the identity (every padding, both layouts)" (fun (padding, request) ->
                let x = img 33 2 [ 3; 4 ] 2
                // A Dense before a pooling forces the full layout (as in neural_tangents: Diagonal() >> Diagonal(input=
                // MAYBE) has input NO), so the diagonal layout is checked on the pooling of the inputs themselves.
                let body = if request = full then Stax.serial [ Stax.dense 8 1.2 (Some 0.3); Stax.relu ] else Stax.identity
                let pool = Stax.avgPool [ 1; 1 ] None padding
                let a = KernelFn.computeWithLayout request body x None Both
                let b = KernelFn.computeWithLayout request (Stax.serial [ body; pool ]) x None Both
                assertClose "nngp" 1e-15 a.Nngp.Data b.Nngp.Data
                assertClose "ntk" 1e-15 a.Ntk.Value.Data b.Ntk.Value.Data
                assertClose "cov1" 1e-15 a.Cov1.Data b.Cov1.Data)
                [ for p in paddings do for r in [ full; diagonal ] do yield p, r ]

            testCase "VALID SumPool = |w|·AvgPool for the finite network and |w|²·AvgPool for the kernel" <| fun () ->
                let x = img 34 2 [ 5; 6 ] 2
                let avg, sum = Stax.avgPool [ 3; 2 ] (Some [ 2; 1 ]) Padding.Valid, Stax.sumPool [ 3; 2 ] (Some [ 2; 1 ]) Padding.Valid
                let body = Stax.serial [ Stax.dense 8 1.2 (Some 0.3); Stax.relu ]
                let ka = KernelFn.compute (Stax.serial [ body; avg ]) x None Both
                let ks = KernelFn.compute (Stax.serial [ body; sum ]) x None Both
                assertClose "nngp" 1e-13 (ka.Nngp.Data |> Array.map ((*) 36.0)) ks.Nngp.Data
                assertClose "ntk" 1e-13 (ka.Ntk.Value.Data |> Array.map ((*) 36.0)) ks.Ntk.Value.Data
                let ya = ApplyFn.apply avg Params.none x
                let ys = ApplyFn.apply sum Params.none x
                assertClose "apply" 1e-14 (ya.Data |> Array.map ((*) 6.0)) ys.Data

            testRows "full layout's diagonal = diagonal layout when positions are uncorrelated" (fun (layer: Layer) ->
                // Each position's channels are a block of their own, so x(p)·x'(q) = 0 for p ≠ q: the input kernel is
                // block-diagonal and the diagonal layout's rule is exact.
                let h, w, c = 4, 3, 2
                let x =
                    let s = h * w
                    Tensor.create [| 3; h; w; s * c |] (
                        let v = normals 35 (3 * s * c)
                        Array.init (3 * s * s * c) (fun e ->
                            let i, rest = e / (s * s * c), e % (s * s * c)
                            let p, ch = rest / (s * c), rest % (s * c)
                            if ch / c = p then v[(i * s + p) * c + ch % c] else 0.0))
                let kf = KernelFn.computeWithLayout full layer x None Both
                let kd = KernelFn.computeWithLayout diagonal layer x None Both
                Expect.isTrue kd.DiagonalSpatial "asked for the diagonal layout"
                let diag (t: Tensor) = if t.Rank = 2 then t.Data else fullDiagonal t
                assertClose "nngp" 1e-13 (diag kf.Nngp) kd.Nngp.Data
                assertClose "ntk" 1e-13 (diag kf.Ntk.Value) kd.Ntk.Value.Data)
                [ Stax.avgPool [ 2; 2 ] None Padding.Valid
                  Stax.avgPoolWith { Stax.poolDefaults [ 3; 2 ] with Padding = Padding.Same } true
                  Stax.avgPool [ 3; 2 ] (Some [ 2; 1 ]) Padding.Same
                  Stax.sumPool [ 2; 3 ] None Padding.Circular
                  Stax.globalAvgPool
                  Stax.globalSumPool ]

            testRows "pooled NNGP and NTK are symmetric and PSD on the (N·positions) flattening" (fun (pool: Layer) ->
                let x = img 36 3 [ 4; 4 ] 2
                let k = KernelFn.compute (Stax.serial [ Stax.dense 8 1.4 (Some 0.2); Stax.relu; pool ]) x None Both
                Expect.isFalse k.DiagonalSpatial "a network ending in a pooling keeps the full layout"
                for what, t in [ "nngp", k.Nngp; "ntk", k.Ntk.Value ] do
                    let m = asMatrix t
                    let n = Array2D.length1 m
                    let scale = m |> Seq.cast<float> |> Seq.map abs |> Seq.max
                    for i in 0 .. n - 1 do
                        for j in 0 .. n - 1 do
                            if abs (m[i, j] - m[j, i]) > 1e-13 * scale then failtestf "%s not symmetric at (%d, %d)" what i j
                    let ev = MathNet.Numerics.LinearAlgebra.Matrix<float>.Build.DenseOfArray(m).Evd().EigenValues
                    let minEv = ev |> Seq.map (fun v -> v.Real) |> Seq.min
                    Expect.isGreaterThan minEv (-1e-12 * scale) (sprintf "%s smallest eigenvalue" what))
                [ Stax.avgPool [ 2; 3 ] None Padding.Valid
                  Stax.avgPoolWith { Stax.poolDefaults [ 3; 3 ] with Padding = Padding.Same; Strides = [ 2; 1 ] } true
                  Stax.sumPool [ 2; 2 ] (Some [ 2; 2 ]) Padding.Circular ]

            testCase "the fold picks the full layout for pooling, lets a caller ask for the diagonal one on the inputs, and refuses it after a Dense" <| fun () ->
                let layout net = Requirements.layout (Requirements.ofLayer net) LayoutRequest.Auto
                let body = Stax.serial [ Stax.dense 8 1.0 None; Stax.relu ]
                Expect.equal (layout (Stax.serial [ body; Stax.avgPool [ 2 ] None Padding.Valid; Stax.flatten ])) (true, false) "AvgPool → Flatten"
                Expect.equal (layout (Stax.serial [ body; Stax.globalAvgPool; Stax.dense 1 1.0 None ])) (true, false) "GlobalAvgPool"
                Expect.equal (Requirements.layout (Requirements.ofLayer Stax.globalAvgPool) diagonal) (true, true) "diagonal on request"
                let pooled = Stax.serial [ body; Stax.sumPool [ 2 ] None Padding.Same ]
                throwsExactly<NeuralTangentsException> (fun () -> Requirements.layout (Requirements.ofLayer pooled) diagonal |> ignore) |> ignore

            testCase "after a ConvLocal a CIRCULAR window wider than its axis counts a repeated position with its full weight, in both layouts" <| fun () ->
                // ConvLocal(f = 1, VALID, W_std 1.3, b_std 0.2) on 2 pixels: y_p has variance-covariance
                // K_p = 1.69·x_a[p]·x_b[p]/C + 0.04 and distinct positions are uncorrelated. SumPool(3, CIRCULAR), lax's
                // SAME split (1 before, 1 after), wraps to taps (1, 0, 1) and (0, 1, 0): z_0 = y_0 + 2·y_1,
                // z_1 = 2·y_0 + y_1, so Cov(z_0, z_0) = K_0 + 4·K_1, Cov(z_0, z_1) = 2·K_0 + 2·K_1, Cov(z_1, z_1) =
                // 4·K_0 + K_1 (AvgPool: /9). neural_tangents' diagonal rule counts the repeated tap once per tap:
                // K_0 + 2·K_1 (README, differences from neural_tangents).
                let x = img 44 3 [ 2 ] 2
                let local = Stax.convLocal 4 [ 1 ] None Padding.Valid 1.3 (Some 0.2)
                let k (a: int) (b: int) (p: int) = 1.69 * (x.Data[(a * 2 + p) * 2] * x.Data[(b * 2 + p) * 2] + x.Data[(a * 2 + p) * 2 + 1] * x.Data[(b * 2 + p) * 2 + 1]) / 2.0 + 0.04
                for average in [ false; true ] do
                    let pool = if average then Stax.avgPool [ 3 ] None Padding.Circular else Stax.sumPool [ 3 ] None Padding.Circular
                    let scale = if average then 1.0 / 9.0 else 1.0
                    let net = Stax.serial [ local; pool ]
                    let expectedFull =
                        [| for a in 0 .. 2 do
                             for b in 0 .. 2 do
                                 let k0, k1 = k a b 0, k a b 1
                                 yield! [ k0 + 4.0 * k1; 2.0 * k0 + 2.0 * k1; 2.0 * k0 + 2.0 * k1; 4.0 * k0 + k1 ] |> List.map ((*) scale) |]
                    let f = KernelFn.computeWithLayout full net x None Both
                    assertClose (sprintf "full nngp (average %b)" average) 1e-14 expectedFull f.Nngp.Data
                    let d = KernelFn.computeWithLayout diagonal net x None Both
                    assertClose (sprintf "diagonal nngp (average %b)" average) 1e-14 (fullDiagonal f.Nngp) d.Nngp.Data
                    assertClose (sprintf "diagonal ntk (average %b)" average) 1e-14 (fullDiagonal f.Ntk.Value) d.Ntk.Value.Data
                    // Flatten picks the diagonal layout and gives the mean of the same-position entries.
                    let flat = KernelFn.compute (Stax.serial [ net; Stax.flatten ]) x None Nngp
                    let expectedFlat = Array.init 9 (fun ab -> let k0, k1 = k (ab / 3) (ab % 3) 0, k (ab / 3) (ab % 3) 1 in scale * (5.0 * k0 + 5.0 * k1) / 2.0)
                    assertClose (sprintf "Flatten (average %b)" average) 1e-14 expectedFlat flat.Nngp.Data

            testCase "windows of 2³¹ − 1 on an axis of 5: CIRCULAR folds the repeats, SAME lists only the inside (and runs at once)" <| fun () ->
                // SumPool(w, CIRCULAR) along an axis of n = 5 with stride 1: lax's SAME split puts lo = (w − 1)/2 before,
                // so output o reads positions (o − lo + j) mod n for j < w: every position q = ⌊w/n⌋ times and the
                // first r = w mod n from o − lo once more. The pooled inputs built by that count give the expected
                // kernel through the input layer (full layout, as the naive-pooling tests above).
                let w = Int32.MaxValue
                let x1, x2 = img 45 2 [ 5; 3 ] 2, img 46 3 [ 5; 3 ] 2
                let circularSum (x: Tensor) =
                    let n, q, r, lo = 5L, int64 w / 5L, int64 w % 5L, (int64 w - 1L) / 2L
                    let out = Array.zeroCreate x.Length
                    let at b h v c = x.Data[((b * 5 + h) * 3 + v) * 2 + c]
                    for b in 0 .. x.Shape[0] - 1 do
                        for o in 0 .. 4 do
                            for v in 0 .. 2 do
                                for c in 0 .. 1 do
                                    let total = Seq.sum (seq { for h in 0 .. 4 -> at b h v c })
                                    let extra = Seq.sum (seq { for k in 0L .. r - 1L -> at b (int ((((int64 o - lo + k) % n) + n) % n)) v c })
                                    out[((b * 5 + o) * 3 + v) * 2 + c] <- float q * total + extra
                    Tensor.create x.Shape out
                let pool = Stax.sumPool [ w; 1 ] None Padding.Circular
                let k = KernelFn.compute pool x1 (Some x2) Nngp
                let e = KernelFn.computeWithLayout full Stax.identity (circularSum x1) (Some(circularSum x2)) Nngp
                // Entries ~ q² = 1.8e17 times a unit kernel, summed in another order: a few ulps.
                assertClose "CIRCULAR nngp" 1e-13 e.Nngp.Data k.Nngp.Data
                // SAME with normalize_edges: every window covers the whole axis, as a window of 2n + 1 = 11 does.
                let same w = Stax.avgPoolWith { Stax.poolDefaults [ w; 1 ] with Padding = Padding.Same } true
                let huge = KernelFn.compute (same w) x1 (Some x2) Nngp
                let small = KernelFn.compute (same 11) x1 (Some x2) Nngp
                assertClose "SAME nngp" 1e-14 small.Nngp.Data huge.Nngp.Data
                // The finite layers agree with the same maps.
                let _, p = InitFn.init 0 pool x1.Shape
                assertClose "CIRCULAR apply" 1e-14 (circularSum x1).Data (ApplyFn.apply pool p x1).Data

            testCase "GlobalAvgPool's own channel_axis describes the input; layers after it see (N, C)" <| fun () ->
                // NCHW-style inputs (N, C, H): GlobalAvgPool(batch_axis 0, channel_axis 1) then a Dense on (N, C).
                let x = img 37 2 [ 3 ] 4 |> Tensor.moveAxis 2 1
                let net = Stax.serial [ Stax.globalAvgPoolWith 0 1; Stax.dense 5 1.0 None ]
                let k = KernelFn.compute net x None Nngp
                let k0 = KernelFn.compute (Stax.serial [ Stax.globalAvgPool; Stax.dense 5 1.0 None ]) (Tensor.moveAxis 1 2 x) None Nngp
                assertClose "nngp" 1e-14 k0.Nngp.Data k.Nngp.Data
                Expect.equal k.Shape1 [| 2; 5 |] "Shape1"

            testCase "errors name the layer and the fix" <| fun () ->
                let x = img 38 2 [ 3; 3 ] 2
                let msg (f: unit -> unit) = (throwsExactly<NeuralTangentsException> f).Message
                Expect.stringContains (msg (fun () -> KernelFn.compute (Stax.avgPool [ 2 ] None Padding.Valid) x None Nngp |> ignore))
                    "AvgPool: window_shape has 1 axes but the input has 2 spatial axes" "axes"
                Expect.stringContains (msg (fun () -> KernelFn.compute (Stax.sumPool [ 4; 1 ] None Padding.Valid) x None Nngp |> ignore))
                    "SumPool: a VALID window of 4 does not fit" "too wide"
                let arg (f: unit -> Layer) = (throwsExactly<ArgumentException> (f >> ignore)).ParamName
                Expect.equal (arg (fun () -> Stax.avgPool [] None Padding.Same)) "window_shape" "empty window"
                Expect.equal (arg (fun () -> Stax.avgPool [ 0 ] None Padding.Same)) "window_shape" "zero window"
                Expect.equal (arg (fun () -> Stax.sumPool [ 2; 2 ] (Some [ 1 ]) Padding.Same)) "strides" "strides length"
                Expect.equal (arg (fun () -> Stax.sumPool [ 2 ] (Some [ 0 ]) Padding.Same)) "strides" "zero stride"
                Expect.equal (arg (fun () -> Stax.globalSumPoolWith 1 1)) "channel_axis" "equal axes"
        ]

        testList "JSON" [
            testCase "the pooling layers round-trip with every argument explicit" <| fun () ->
                let net =
                    Stax.serial
                        [ Stax.avgPoolWith { Stax.poolDefaults [ 3; 2 ] with Padding = Padding.Same; Strides = [ 2; 1 ] } true
                          Stax.sumPool [ 2; 2 ] None Padding.Circular
                          Stax.globalAvgPoolWith 0 3
                          Stax.globalSumPool ]
                let text = Json.encode net
                Expect.equal (Json.decode text) net "round trip"
                Expect.stringContains text "\"layer\":\"AvgPool\",\"window_shape\":[3,2],\"strides\":[2,1],\"padding\":\"SAME\",\"normalize_edges\":true,\"batch_axis\":0,\"channel_axis\":-1" "AvgPool's arguments"
                Expect.stringContains text "\"layer\":\"SumPool\",\"window_shape\":[2,2],\"strides\":[1,1],\"padding\":\"CIRCULAR\"" "SumPool's arguments"

            testCase "neural_tangents' defaults: strides null or absent = ones, padding VALID, normalize_edges false" <| fun () ->
                let a = Json.decode """{"layer": "AvgPool", "window_shape": [3, 2], "padding": "SAME"}"""
                Expect.equal a (AvgPool({ Stax.poolDefaults [ 3; 2 ] with Padding = Padding.Same }, false)) "AvgPool"
                let s = Json.decode """{"layer": "SumPool", "window_shape": [2], "strides": null}"""
                Expect.equal s (SumPool(Stax.poolDefaults [ 2 ])) "SumPool"
                Expect.equal (Json.decode """{"layer": "GlobalAvgPool"}""") Stax.globalAvgPool "GlobalAvgPool"
                Expect.equal (Json.decode """{"layer": "GlobalSumPool"}""") Stax.globalSumPool "GlobalSumPool"

            testRows "bad pooling arguments are named" (fun (text: string, fragment: string) ->
                let e = throwsExactly<Json.JsonArchitectureException> (fun () -> Json.decode text |> ignore)
                Expect.stringContains e.Message fragment text)
                [ """{"layer": "AvgPool"}""", "AvgPool: missing required argument 'window_shape'"
                  """{"layer": "AvgPool", "window_shape": [2], "padding": "FULL"}""", "argument 'padding' must be"
                  """{"layer": "SumPool", "window_shape": [2], "normalize_edges": true}""", "SumPool: unknown argument 'normalize_edges'"
                  """{"layer": "SumPool", "window_shape": [2, 2], "strides": [1]}""", "SumPool: strides"
                  """{"layer": "AvgPool", "window_shape": [0]}""", "window_shape"
                  """{"layer": "GlobalAvgPool", "batch_axis": 1, "channel_axis": 1}""", "GlobalAvgPool: batch_axis and channel_axis are both 1" ]
        ]

        testCase "the CLI computes a pooling network from JSON as KernelFn.compute does" <| fun () ->
            let arch =
                """{"layer": "serial", "layers": [{"layer": "Dense", "out_dim": 16, "W_std": 1.5, "b_std": 0.1}, {"layer": "Relu"},
                   {"layer": "AvgPool", "window_shape": [2], "padding": "SAME"}, {"layer": "GlobalSumPool"},
                   {"layer": "Dense", "out_dim": 1}]}"""
            let x1 = "[[[1, 0], [0.5, -1], [2, 0.3]], [[0, 1], [1, 1], [-1, 0.2]]]"
            let code, out, err = nt [ "kernel" ] (sprintf """{"arch": %s, "x1": %s}""" arch x1)
            Expect.equal code 0 err
            let r = System.Text.Json.Nodes.JsonNode.Parse out
            let rec values (node: System.Text.Json.Nodes.JsonNode) : float list =
                match node with
                | :? System.Text.Json.Nodes.JsonArray as a -> a |> Seq.toList |> List.collect values
                | v -> [ v.GetValue<float>() ]
            let x = Tensor.create [| 2; 3; 2 |] [| 1.; 0.; 0.5; -1.; 2.; 0.3; 0.; 1.; 1.; 1.; -1.; 0.2 |]
            let k = KernelFn.compute (Json.decode arch) x None Both
            Expect.equal (values r["nngp"] |> List.toArray) k.Nngp.Data "nngp"
            Expect.equal (values r["ntk"] |> List.toArray) k.Ntk.Value.Data "ntk"

        testList "Monte Carlo" [
            let x1d = img 41 3 [ 5 ] 3
            let x2d = img 42 3 [ 3; 4 ] 2
            for padding in paddings do
                testCase (sprintf "AvgPool %A (1D, window 3, stride 2) → Flatten" padding) <| fun () ->
                    monteCarlo (sprintf "AvgPool %A" padding) (Stax.avgPool [ 3 ] (Some [ 2 ]) padding) true x1d
                testCase (sprintf "SumPool %A (2D, window (2, 3), strides (1, 2)) → Flatten" padding) <| fun () ->
                    monteCarlo (sprintf "SumPool %A" padding) (Stax.sumPool [ 2; 3 ] (Some [ 1; 2 ]) padding) true x2d
            testCase "AvgPool SAME normalize_edges (2D, window (3, 2)) → Flatten" <| fun () ->
                monteCarlo "AvgPool SAME normalize_edges"
                    (Stax.avgPoolWith { Stax.poolDefaults [ 3; 2 ] with Padding = Padding.Same } true) true x2d
            testCase "ConvLocal → SumPool CIRCULAR, window 3 on 2 pixels (positions repeat) → Flatten" <| fun () ->
                // Flatten picks the diagonal layout; its pooling rule must weigh a repeated position by its total weight.
                monteCarlo "ConvLocal → SumPool CIRCULAR wide"
                    (Stax.serial [ Stax.convLocal mcWidth [ 1 ] None Padding.Valid 1.2 (Some 0.1); Stax.sumPool [ 3 ] None Padding.Circular ]) true (img 45 3 [ 2 ] 3)
            testCase "GlobalAvgPool (2D)" <| fun () -> monteCarlo "GlobalAvgPool" Stax.globalAvgPool false x2d
            testCase "GlobalSumPool (1D)" <| fun () -> monteCarlo "GlobalSumPool" Stax.globalSumPool false x1d
        ]
    ]
