/// The covariance layouts (neural_tangents' diagonal_batch / diagonal_spatial): the Diagonal algebra and the
/// requirement fold that picks a layout, every layer in both spatial layouts and in the full batch layout, the
/// kernel_fn overrides (F#, CLI "kwargs"), the Kernel operations (reverse, transpose, swapInputs), input axes
/// spelled from either end, and Monte Carlo of finite networks on (N, H, C) and (N, H, W, C) inputs against the full
/// layout.
module NeuralTangents.Tests.LayoutTests

open System
open System.IO
open System.Text.Json.Nodes
open Expecto
open MathNet.Numerics.LinearAlgebra
open NeuralTangents
open NeuralTangents.Cli
open NeuralTangents.Tests.TestUtil

let private full = { LayoutRequest.Auto with DiagonalSpatial = Some false }
let private diagonal = { LayoutRequest.Auto with DiagonalSpatial = Some true }

let private images (seed: int) (shape: int[]) = Tensor.create shape (normals seed (Array.fold (*) 1 shape))

/// Networks that keep their spatial axes, over every layer that has a kernel rule.
let private spatialNets : (string * Layer) list =
    let d n w b = Stax.dense n w b
    [ "Dense Relu Dense", Stax.serial [ d 8 1.4 (Some 0.3); Stax.relu; d 4 1.1 (Some 0.2) ]
      "Dense Erf Dense Gelu Dense",
      Stax.serial [ d 8 1.3 (Some 0.1); Stax.erf 1.0 1.0 0.0; d 8 1.2 None; Stax.gelu false; d 1 1.0 (Some 0.1) ]
      "LeakyRelu Sin Monomial", Stax.serial [ d 8 1.2 (Some 0.2); Stax.leakyRelu 0.1; d 8 1.0 None; Stax.sin 1.0 1.0 0.3
                                              d 8 0.9 (Some 0.1); Stax.monomial 2; d 2 1.0 None ]
      "standard parameterization",
      Stax.serial [ Dense { Stax.denseDefaults 8 with WStd = 1.3; BStd = Some 0.1; Parameterization = Parameterization.Standard }
                    Stax.relu
                    Dense { Stax.denseDefaults 3 with Parameterization = Parameterization.Standard } ]
      "FanInSum, FanInProd, FanInConcat",
      Stax.serial [ d 8 1.2 (Some 0.1)
                    Stax.fanOut 3
                    Stax.parallelOf [ Stax.serial [ Stax.relu; d 8 1.0 None ]; Stax.serial [ Stax.erf 1.0 1.0 0.0; d 8 1.1 (Some 0.1) ]; d 8 0.9 None ]
                    Stax.fanInSum
                    Stax.fanOut 2
                    Stax.parallelOf [ Stax.serial [ Stax.relu; d 8 1.0 None ]; d 8 1.0 (Some 0.2) ]
                    Stax.fanInProd
                    Stax.fanOut 2
                    Stax.parallelOf [ Stax.serial [ d 8 1.0 None; Stax.relu ]; Stax.serial [ d 16 1.0 None; Stax.gelu false ] ]
                    Stax.fanInConcat -1
                    d 2 1.0 None ] ]

/// The same-position entries of a full-spatial covariance with `lead` batch axes: (lead…, H, H', W, W') → (lead…, H, W).
let private diagonalOf (lead: int) (t: Tensor) =
    let dims = Array.init ((t.Rank - lead) / 2) (fun a -> t.Shape[lead + 2 * a])
    let s = Array.fold (*) 1 dims
    let outer = Array.fold (*) 1 t.Shape[.. lead - 1]
    let diag = Spatial.diagonalIndices dims
    Tensor.create (Array.append t.Shape[.. lead - 1] dims)
        (Array.init (outer * s) (fun idx -> t.Data[(idx / s) * s * s + diag[idx % s]]))

/// max |a − b| / max |b|.
let private maxRelDiff (a: Tensor) (b: Tensor) =
    Expect.equal a.Shape b.Shape "shapes"
    let scale = b.Data |> Array.map abs |> Array.max
    (Array.map2 (fun x y -> abs (x - y)) a.Data b.Data |> Array.max) / scale

/// Checks max |Δ| / max |value| ≤ tol; returns it.
let private agree (what: string) (tol: float) (a: Tensor) (b: Tensor) =
    let e = maxRelDiff a b
    if not (e <= tol) then failtestf "%s: max |Δ| / max |value| = %.3e > %.0e" what e tol
    e

// ---- input axes spelled from either end (3 ≡ -1 and 1 ≡ -3 on rank-4 inputs) ----

let private nhwc = ("NHWC", "HWIO", "NHWC")
let private nchw = ("NCHW", "OIHW", "NCHW")

/// Conv(8, (3, 3), SAME) in the given layout, Relu, GlobalAvgPool(batch_axis, channel_axis), Dense(1): the audit's
/// networks. The Conv states batch_axis 0 and channel_axis -1 (NHWC) or -3 (NCHW).
let private convPool (dims: string * string * string) (batchAxis: int) (channelAxis: int) =
    Stax.serial [ Stax.convWith { Stax.convDefaults 8 [ 3; 3 ] with Padding = Padding.Same; WStd = 1.3; BStd = Some 0.1; DimensionNumbers = dims }
                  Stax.relu
                  Stax.globalAvgPoolWith batchAxis channelAxis
                  Stax.dense 1 1.0 None ]

/// (what, inputs, network in the canonical spelling, the same network spelled otherwise).
let private sameAxes : (string * Tensor * Layer * Layer) list =
    let hw, chw = images 40 [| 4; 5; 5; 2 |], images 41 [| 4; 2; 5; 5 |]
    let dense2d batchAxis channelAxis =
        Stax.serial [ Stax.dense 8 1.2 (Some 0.1); Stax.relu; Dense { Stax.denseDefaults 1 with BatchAxis = batchAxis; ChannelAxis = channelAxis } ]
    [ "NHWC, GlobalAvgPool channel_axis 3", hw, convPool nhwc 0 -1, convPool nhwc 0 3
      "NCHW, GlobalAvgPool channel_axis 1", chw, convPool nchw 0 -3, convPool nchw 0 1
      "NHWC, GlobalAvgPool batch_axis -4", hw, convPool nhwc 0 -1, convPool nhwc -4 -1
      "NCHW, GlobalAvgPool batch_axis -4 and channel_axis 1", chw, convPool nchw 0 -3, convPool nchw -4 1
      "2-D, last Dense batch_axis -2 and channel_axis 1", randomTensor 42 5 3, dense2d 0 -1, dense2d -2 1 ]

// ---- Monte Carlo of finite networks (as MonteCarloTests: fixed seeds, tolerance from the sample SE) ----

/// Entry-wise |mean − analytic| ≤ Z·SE, SE = sample std / √M over M independent networks. One hidden layer, so the
/// finite-width mean equals the analytic kernel exactly (the hidden pre-activations are exactly jointly Gaussian over
/// inputs and positions — one W serves every position — and the readout averages them linearly): no bias allowance.
/// Z = 5: two-sided normal tail 5.7e-7 per entry; these tests check < 1,000 entries, so by the union bound a false
/// failure has probability < 6e-4 for a random choice of seeds (the seeds are fixed; a run is deterministic).
let private z = 5.0

let private mcCompare (what: string) (analytic: Tensor) (samples: Tensor[]) =
    let m = float samples.Length
    let mutable worst = 0.0
    for k in 0 .. analytic.Length - 1 do
        let mean = (samples |> Array.sumBy (fun s -> s.Data[k])) / m
        let sd = sqrt ((samples |> Array.sumBy (fun s -> (s.Data[k] - mean) ** 2.0)) / (m - 1.0))
        let se = sd / sqrt m
        let d = abs (mean - analytic.Data[k])
        worst <- max worst (d / se)
        if not (d <= z * se) then
            failtestf "%s[flat %d]: MC mean %.6g vs analytic %.6g: |Δ| = %.3g > %.0f·SE (%.3g)" what k mean analytic.Data[k] d z se
    worst

/// The empirical full-spatial NNGP of one finite network with output (N, spatial…, C):
/// nngp[i, j, h, h', …] = Σ_c f_i(h, c)·f_j(h', c) / C, in neural_tangents' zipped order.
let private empiricalFullNngp (y: Tensor) =
    let n, c = y.Shape[0], y.Shape[y.Rank - 1]
    let dims = y.Shape[1 .. y.Rank - 2]
    let s = Array.fold (*) 1 dims
    let pIdx, qIdx = Spatial.pairIndices dims
    let e = pIdx.Length
    let out = Array.zeroCreate (n * n * e)
    for i in 0 .. n - 1 do
        for j in 0 .. n - 1 do
            for k in 0 .. e - 1 do
                let a = (i * s + pIdx[k]) * c
                let b = (j * s + qIdx[k]) * c
                let mutable acc = 0.0
                for ch in 0 .. c - 1 do acc <- acc + y.Data[a + ch] * y.Data[b + ch]
                out[(i * n + j) * e + k] <- acc / float c
    Tensor.create (Array.concat [ [| n; n |]; dims |> Array.collect (fun d -> [| d; d |]) ]) out

/// NNGP of a network whose output keeps spatial axes: M finite networks (readout of 64 channels, iid given the
/// hidden layer, to lower the variance) against the default (full) layout.
let private mcSpatialNngp (name: string) (build: int -> Layer) (x: Tensor) (m: int) =
    let analytic = KernelFn.compute (build 1) x None Nngp
    Expect.isFalse analytic.DiagonalSpatial "a spatial output is computed in the full layout"
    let net = build 64
    let samples =
        Array.Parallel.init m (fun i ->
            let _, p = InitFn.init (3000 + i) net x.Shape
            empiricalFullNngp (ApplyFn.apply net p x))
    let zN = mcCompare (name + " nngp") analytic.Nngp samples
    note (sprintf "%-40s M=%d  nngp %s  worst |z| %.2f" name m (Shape.format analytic.Nngp.Shape) zN)

let private width = 1024

[<Tests>]
let tests =
    testList "LayoutTests" [
        // ---- The Diagonal algebra (neural_tangents' stax.requirements.Diagonal) ----

        testCase "Diagonal: compose is associative, both is commutative, associative and idempotent" <| fun () ->
            let tris = [ Tri.No; Tri.Maybe; Tri.Yes ]
            let all = [ for i in tris do for o in tris -> { Input = i; Output = o } ]
            for a in all do
                Expect.equal (Diagonal.both a a) a "idempotent"
                for b in all do
                    Expect.equal (Diagonal.both a b) (Diagonal.both b a) "commutative"
                    for c in all do
                        Expect.equal (Diagonal.compose (Diagonal.compose a b) c) (Diagonal.compose a (Diagonal.compose b c)) (sprintf "compose %A %A %A" a b c)
                        Expect.equal (Diagonal.both (Diagonal.both a b) c) (Diagonal.both a (Diagonal.both b c)) "both associative"

        testCase "Diagonal: neural_tangents' cases" <| fun () ->
            // Worked through requirements.py by hand: Dense >> Flatten may be diagonal; Dense >> Relu must be full;
            // a layer needing full input (input NO) after one that keeps full outputs forces full input.
            let flatten = { Input = Tri.Yes; Output = Tri.Yes }
            Expect.isTrue (Diagonal.isDiagonal (Diagonal.compose Diagonal.defaults flatten)) "Dense >> Flatten"
            Expect.isFalse (Diagonal.isDiagonal (Diagonal.compose Diagonal.defaults Diagonal.defaults)) "Dense >> Relu"
            Expect.equal (Diagonal.compose flatten { Input = Tri.No; Output = Tri.No }) flatten "after Flatten nothing matters"
            Expect.equal (Diagonal.compose Diagonal.defaults { Input = Tri.Maybe; Output = Tri.Yes }) { Input = Tri.No; Output = Tri.Yes } "full output into MAYBE"
            Expect.equal (Diagonal.compose { Input = Tri.Yes; Output = Tri.Maybe } { Input = Tri.Maybe; Output = Tri.No }) { Input = Tri.Yes; Output = Tri.No } "MAYBE output into MAYBE input"
            Expect.equal (Diagonal.both flatten Diagonal.defaults) Diagonal.defaults "parallel takes the smaller"

        // ---- The requirement fold ----

        testCase "the fold picks diagonal spatial exactly for Flatten-topped networks, as neural_tangents does" <| fun () ->
            let layout net = Requirements.layout (Requirements.ofLayer net) LayoutRequest.Auto
            for name, net in spatialNets do
                Expect.equal (layout net) (true, false) (name + ": spatial output → full spatial")
                Expect.equal (layout (Stax.serial [ net; Stax.flatten; Stax.dense 1 1.0 None ])) (true, true) (name + " + Flatten → diagonal")
            Expect.equal (layout (Stax.serial [ Stax.flatten; Stax.dense 4 1.0 None; Stax.relu ])) (true, true) "Flatten first"
            Expect.equal (layout Stax.identity) (true, false) "no requirement: neural_tangents' defaults"
            Expect.equal (layout (Stax.serial [ Stax.fanOut 2; Stax.parallelOf [ Stax.flatten; Stax.serial [ Stax.dense 4 1.0 None; Stax.flatten ] ]; Stax.fanInSum ])) (true, true) "Flatten in every branch"
            Expect.equal (layout (Stax.serial [ Stax.fanOut 2; Stax.parallelOf [ Stax.flatten; Stax.dense 4 1.0 None ]; Stax.fanInSum ])) (true, false) "one branch keeps positions"

        testCase "an Identity branch carries its input's layout into the parallel's output (where neural_tangents skips it)" <| fun () ->
            // neural_tangents' values worked through requirements.py by hand (Conv: (Yes, No), ConvLocal: (Yes, Maybe),
            // GlobalSumPool: (Maybe, Yes), Identity/FanOut/FanInSum skipped). Ours differ only where the Identity branch
            // carries cross-position covariances (a shared Conv's output, the raw inputs) to a layer that needs them.
            let layout net = snd (Requirements.layout (Requirements.ofLayer net) LayoutRequest.Auto)
            let conv = Stax.conv 2 [ 2 ] None Padding.Same 1.0 None
            let local = Stax.convLocal 2 [ 2 ] None Padding.Same 1.0 None
            let block branches top = Stax.serial [ Stax.fanOut 2; Stax.parallelOf branches; Stax.fanInSum; top ]
            for name, net, ours, nt in
                [ "Conv → [ConvLocal; Identity] → GlobalSumPool", Stax.serial [ conv; block [ local; Stax.identity ] Stax.globalSumPool ], false, true
                  "inputs → [ConvLocal; Identity] → GlobalSumPool", block [ local; Stax.identity ] Stax.globalSumPool, false, true
                  "ConvLocal → [ConvLocal; Identity] → GlobalSumPool", Stax.serial [ local; block [ local; Stax.identity ] Stax.globalSumPool ], true, true
                  "Conv → [ConvLocal; ConvLocal] → GlobalSumPool", Stax.serial [ conv; block [ local; local ] Stax.globalSumPool ], true, true
                  "Conv → [ConvLocal; Identity] → Flatten", Stax.serial [ conv; block [ local; Stax.identity ] Stax.flatten ], true, true
                  "Conv → [Identity; Identity] → Flatten", Stax.serial [ conv; block [ Stax.identity; Stax.identity ] Stax.flatten ], true, true
                  "Conv → [Relu; Identity] → GlobalSumPool", Stax.serial [ conv; block [ Stax.relu; Stax.identity ] Stax.globalSumPool ], false, false ] do
                Expect.equal (layout net) ours (name + ": diagonal_spatial")
                if ours <> nt then note (sprintf "layout differs from neural_tangents' (%b) by design: %s" nt name)

        testCase "the fold agrees with the layout neural_tangents recorded for every decodable fixture" <| fun () ->
            // tests/fixtures/*.json meta.input_diagonal_spatial is neural_tangents' own choice for that network.
            let mutable n = 0
            for path in Directory.GetFiles(Path.Combine(repoRoot, "tests", "fixtures"), "*.json") do
                let root = JsonNode.Parse(File.ReadAllText path)
                match (try Some(Json.decodeLayer root["arch"]) with Json.JsonArchitectureException _ -> None) with
                | Some net ->
                    let expected = (root["meta"]["input_diagonal_spatial"]).GetValue<bool>()
                    Expect.equal (snd (Requirements.layout (Requirements.ofLayer net) LayoutRequest.Auto)) expected (Path.GetFileName path)
                    n <- n + 1
                | None -> ()
            Expect.isGreaterThan n 0 "some fixtures decode"

        testCase "a diagonal request that a layer cannot take is refused with the fix" <| fun () ->
            // No layer here needs full input yet (Conv will); the fold's verdict is checked on a stated requirement.
            let req = { Requirements.none with DiagonalSpatial = Some { Input = Tri.No; Output = Tri.No } }
            let e = throwsExactly<NeuralTangentsException> (fun () -> Requirements.layout req diagonal |> ignore)
            Expect.stringContains e.Message "diagonal_spatial=False" "names the fix"
            Expect.equal (Requirements.layout req full) (true, false) "full is allowed"
            Expect.equal (Requirements.layout req LayoutRequest.Auto) (true, false) "the default follows the requirement"

        // ---- Layers in both layouts ----

        testCase "full-layout results on their diagonal equal the diagonal layout, for every layer, (N,H,C) and (N,H,W,C)" <| fun () ->
            let mutable worst = 0.0
            for shape1, shape2 in [ [| 3; 4; 3 |], [| 2; 4; 3 |]; [| 3; 2; 3; 2 |], [| 2; 2; 3; 2 |] ] do
                let x1, x2 = images 11 shape1, images 12 shape2
                for name, net in spatialNets do
                    for x2o in [ None; Some x2 ] do
                        let what = sprintf "%s %s x2=%b" name (Shape.format shape1) x2o.IsSome
                        let f = KernelFn.computeWithLayout full net x1 x2o Both
                        let d = KernelFn.computeWithLayout diagonal net x1 x2o Both
                        Expect.isFalse f.DiagonalSpatial what
                        Expect.isTrue d.DiagonalSpatial what
                        let spatial = shape1[1 .. shape1.Length - 2]
                        Expect.equal f.Nngp.Shape (Array.concat [ [| shape1[0]; (defaultArg x2o x1).Shape[0] |]; spatial |> Array.collect (fun h -> [| h; h |]) ]) (what + " full shape")
                        worst <- List.max [ worst
                                            agree (what + " nngp") 1e-14 (diagonalOf 2 f.Nngp) d.Nngp
                                            agree (what + " ntk") 1e-14 (diagonalOf 2 f.Ntk.Value) d.Ntk.Value
                                            agree (what + " cov1") 1e-14 (diagonalOf 1 f.Cov1) d.Cov1 ]
                        match f.Cov2, d.Cov2 with
                        | Some a, Some b -> worst <- max worst (agree (what + " cov2") 1e-14 (diagonalOf 1 a) b)
                        | None, None -> ()
                        | _ -> failtest "cov2 presence differs"
            note (sprintf "full vs diagonal layout: worst max|Δ|/max|value| on the diagonal %.2e (bound 1e-14)" worst)

        testCase "fused and in-place execution gives the reference numbers bit for bit in the full layout" <| fun () ->
            let x1, x2 = images 13 [| 3; 3; 2 |], images 14 [| 2; 3; 2 |]
            for name, net in spatialNets do
                let input = KernelFn.inputKernelWithLayout full net x1 (Some x2) Both
                let run exec = match KernelFn.applyFlowWith exec net (One input) with One k -> k | Many _ -> failtest "branches"
                let a, b = run Execution.Fast, run Execution.Reference
                Expect.equal a.Nngp.Data b.Nngp.Data (name + " nngp")
                Expect.equal a.Ntk.Value.Data b.Ntk.Value.Data (name + " ntk")
                Expect.equal a.Cov1.Data b.Cov1.Data (name + " cov1")

        testCase "Flatten of the full layout equals Flatten of the diagonal layout" <| fun () ->
            let x1, x2 = images 15 [| 3; 2; 3; 2 |], images 16 [| 4; 2; 3; 2 |]
            for name, net in spatialNets do
                let top = Stax.serial [ net; Stax.flatten; Stax.dense 3 1.2 (Some 0.1); Stax.relu; Stax.dense 1 1.0 None ]
                let f = KernelFn.computeWithLayout full top x1 (Some x2) Both
                let d = KernelFn.compute top x1 (Some x2) Both
                Expect.isTrue (d.Nngp.Rank = 2 && f.Nngp.Rank = 2) name
                let e =
                    List.max [ agree (name + " flat nngp") 1e-14 f.Nngp d.Nngp
                               agree (name + " flat ntk") 1e-14 f.Ntk.Value d.Ntk.Value
                               agree (name + " flat cov2") 1e-14 f.Cov2.Value d.Cov2.Value ]
                note (sprintf "Flatten full vs diagonal, %-32s max|Δ|/max|value| %.2e" name e)

        testCase "kernel(x2, x1) is swapInputs of kernel(x1, x2) in the full layout" <| fun () ->
            let x1, x2 = images 17 [| 3; 2; 3; 2 |], images 18 [| 2; 2; 3; 2 |]
            for name, net in spatialNets do
                let a = KernelFn.compute net x1 (Some x2) Both |> Kernel.swapInputs
                let b = KernelFn.compute net x2 (Some x1) Both
                for what, u, v in [ "nngp", a.Nngp, b.Nngp; "ntk", a.Ntk.Value, b.Ntk.Value; "cov1", a.Cov1, b.Cov1; "cov2", a.Cov2.Value, b.Cov2.Value ] do
                    agree (name + " " + what) 1e-14 u v |> ignore
                Expect.equal a.Shape1 b.Shape1 "shape1"

        testCase "the (N·H·W, N·H·W) matrix of a full-layout kernel is symmetric and PSD" <| fun () ->
            let x = images 19 [| 3; 2; 2; 2 |]
            for name, net in spatialNets do
                let k = KernelFn.compute net x None Both
                for what, t in [ "nngp", k.Nngp; "ntk", k.Ntk.Value ] do
                    // (N, N, H, H', W, W') → (N, H, W, N, H', W').
                    let m = Tensor.permute [| 0; 2; 4; 1; 3; 5 |] t
                    let size = 3 * 2 * 2
                    let a = Matrix<float>.Build.Dense(size, size, fun r c -> m.Data[r * size + c])
                    let scale = a.Enumerate() |> Seq.map abs |> Seq.max
                    let asym = (a - a.Transpose()).Enumerate() |> Seq.map abs |> Seq.max
                    Expect.isLessThanOrEqual (asym / scale) 1e-14 (sprintf "%s %s symmetric" name what)
                    let minEig = (0.5 * (a + a.Transpose())).Evd(Symmetricity.Symmetric).EigenValues |> Seq.map (fun e -> e.Real) |> Seq.min
                    Expect.isGreaterThanOrEqual (minEig / scale) -1e-12 (sprintf "%s %s PSD (min eigenvalue %g)" name what minEig)

        testCase "diagonal_batch=false: cov1 is the (N1, N1, …) kernel of x1 with itself and nngp is unchanged" <| fun () ->
            let x1, x2 = images 20 [| 3; 3; 2 |], images 21 [| 2; 3; 2 |]
            for spatial in [ Some true; Some false ] do
                for name, net in spatialNets do
                    let req = { DiagonalBatch = Some false; DiagonalSpatial = spatial }
                    let k = KernelFn.computeWithLayout req net x1 (Some x2) Both
                    let d = KernelFn.computeWithLayout { req with DiagonalBatch = None } net x1 (Some x2) Both
                    let self1 = KernelFn.computeWithLayout { req with DiagonalBatch = None } net x1 None Nngp
                    let self2 = KernelFn.computeWithLayout { req with DiagonalBatch = None } net x2 None Nngp
                    Expect.isFalse k.DiagonalBatch name
                    for what, u, v in [ "nngp", k.Nngp, d.Nngp; "ntk", k.Ntk.Value, d.Ntk.Value
                                        "cov1 = nngp(x1, x1)", k.Cov1, self1.Nngp; "cov2 = nngp(x2, x2)", k.Cov2.Value, self2.Nngp ] do
                        agree (name + " " + what) 1e-14 u v |> ignore
                    let flat = Stax.serial [ net; Stax.flatten; Stax.dense 1 1.0 None ]
                    let kf = KernelFn.computeWithLayout req flat x1 None Both
                    Expect.equal kf.Cov1.Shape [| 3; 3 |] (name + " flattened full-batch cov1")
                    agree (name + " flattened cov1 = nngp") 1e-14 kf.Cov1 kf.Nngp |> ignore

        // ---- Kernel operations ----

        testCase "Kernel.reverse reverses the spatial pairs and twice is the identity; transpose permutes them" <| fun () ->
            let k = KernelFn.compute (Stax.dense 2 1.0 None) (images 22 [| 2; 2; 3; 1 |]) None Both
            Expect.equal k.Nngp.Shape [| 2; 2; 2; 2; 3; 3 |] "full layout"
            let r = Kernel.reverse k
            Expect.equal r.Nngp.Shape [| 2; 2; 3; 3; 2; 2 |] "reversed shape"
            Expect.isTrue r.IsReversed "flag"
            Expect.equal (Kernel.reverse r).Nngp.Data k.Nngp.Data "twice"
            Expect.equal (Kernel.transpose (Some [| 1; 0 |]) k).Nngp.Data r.Nngp.Data "transpose (1, 0) of two axes = reverse"
            Expect.equal (Kernel.transpose None k).Nngp.Data k.Nngp.Data "transpose None"
            // nngp[i, j, h, h', w, w'] read back through the permutation.
            Expect.equal r.Nngp.Data[((((1 * 2 + 0) * 3 + 2) * 3 + 1) * 2 + 1) * 2 + 0] k.Nngp.Data[((((1 * 2 + 0) * 2 + 1) * 2 + 0) * 3 + 2) * 3 + 1] "entry"
            Expect.equal (Kernel.swapInputs (Kernel.swapInputs k)).Nngp.Data k.Nngp.Data "swap twice"

        testCase "FanIn branches with different spatial order are brought to one order" <| fun () ->
            let k = KernelFn.compute (Stax.dense 2 1.0 (Some 0.1)) (images 23 [| 2; 2; 3; 1 |]) None Both
            let sum = KernelFn.applyFlow Stax.fanInSum (Many [ k; Kernel.reverse k; k ])
            match sum with
            | One s ->
                Expect.isFalse s.IsReversed "the majority is not reversed"
                agree "sum" 1e-15 s.Nngp (Tensor.scale 3.0 k.Nngp) |> ignore
            | Many _ -> failtest "one kernel"

        // ---- Overrides through the CLI ----

        testCase "nt kernel \"kwargs\" gives computeWithLayout's numbers and rejects bad values" <| fun () ->
            let arch = """{"layer": "serial", "layers": [{"layer": "Dense", "out_dim": 8, "W_std": 1.5, "b_std": 0.1}, {"layer": "Relu"}, {"layer": "Dense", "out_dim": 1}]}"""
            let x1 = "[[[1, 0], [0.5, 2]], [[-1, 1], [0.3, 0.2]]]"
            let run (kwargs: string) =
                use out = new StringWriter()
                use err = new StringWriter()
                let req = sprintf """{"arch": %s, "x1": %s, "kwargs": %s}""" arch x1 kwargs
                let code = Cli.run [| "kernel" |] (new StringReader(req)) out err
                code, out.ToString(), err.ToString()
            let x = Tensor.create [| 2; 2; 2 |] [| 1.; 0.; 0.5; 2.; -1.; 1.; 0.3; 0.2 |]
            let net = Json.decode arch
            let rec values (node: JsonNode) : float list =
                match node with
                | :? JsonArray as a -> a |> Seq.toList |> List.collect values
                | v -> [ v.GetValue<float>() ]
            for kwargs, request in
                [ """{"diagonal_spatial": false}""", full
                  """{"diagonal_spatial": true, "diagonal_batch": true}""", { diagonal with DiagonalBatch = Some true }
                  """{"diagonal_batch": false}""", { LayoutRequest.Auto with DiagonalBatch = Some false }
                  """{"diagonal_spatial": null}""", LayoutRequest.Auto ] do
                let code, out, err = run kwargs
                Expect.equal code 0 err
                let r = JsonNode.Parse out
                let k = KernelFn.computeWithLayout request net x None Both
                Expect.equal (values r["nngp"] |> List.toArray) k.Nngp.Data kwargs
                Expect.equal (values r["cov1"] |> List.toArray) k.Cov1.Data kwargs
            let _, fullOut, _ = run """{"diagonal_spatial": false}"""
            let parsed = JsonNode.Parse(fullOut)
            let nngp = parsed["nngp"]
            let row = nngp.[0].[0] :?> JsonArray
            Expect.equal row.Count 2 "(N1, N2, H, H')"
            for kwargs, fragment in [ """{"diagonal_spatial": "no"}""", "diagonal_spatial must be true, false or null"
                                      """{"diagonal": true}""", "unknown key \"diagonal\""
                                      "[1]", "kwargs: must be an object" ] do
                let code, out, err = run kwargs
                Expect.notEqual code 0 kwargs
                Expect.equal out "" "nothing on stdout"
                Expect.stringStarts err "nt: " err
                Expect.stringContains err fragment err

        // ---- input axes spelled from either end ----

        testCase "Requirements.inputAxes: spellings agree modulo the rank; the first layer's spelling is kept" <| fun () ->
            let req = Requirements.ofLayer (convPool nhwc 0 3)
            // 3 and -1 are axis 3 of rank-4 inputs; the Conv (first) spells the axes (0, -1), as neural_tangents keeps.
            Expect.equal (Requirements.inputAxes 4 req) (0, -1) "rank 4"
            // On rank-5 inputs -1 is axis 4, so the same network names two axes.
            let e = throwsExactly<NeuralTangentsException> (fun () -> Requirements.inputAxes 5 req |> ignore)
            Expect.equal e.Message
                "GlobalAvgPool: channel_axis=3 conflicts with channel_axis=-1 required by an earlier layer (Conv): on inputs of rank 5 these are axes 3 and 4; use one layout for the whole network"
                "message"

        testList "kernel_fn: an axis spelled from the other end gives the canonical spelling's kernels bit for bit" [
          for what, x, canonical, other in sameAxes -> testCase what <| fun () ->
            // The layers normalise their axes by the rank and the input kernel keeps the first layer's spelling, so
            // every operation is the same: equal bits, not a tolerance.
            let same (label: string) (a: Kernel) (b: Kernel) =
                Expect.equal b.Nngp.Data a.Nngp.Data (sprintf "%s, %s: nngp" what label)
                Expect.equal (b.Ntk |> Option.map (fun t -> t.Data)) (a.Ntk |> Option.map (fun t -> t.Data)) (sprintf "%s, %s: ntk" what label)
            let x2 = Tensor.create x.Shape (Array.map (fun v -> 0.5 * v + 0.1) x.Data)
            same "compute" (KernelFn.compute canonical x (Some x2) Both) (KernelFn.compute other x (Some x2) Both)
            same "full layout" (KernelFn.computeWithLayout full canonical x None Both) (KernelFn.computeWithLayout full other x None Both)
            let tiles = { BatchOptions.Default with BatchSize = Some 2 }
            same "batched" (Batching.compute tiles canonical x (Some x2) Both) (Batching.compute tiles other x (Some x2) Both)
            same "mask_constant" (KernelFn.computeWithMask 1e9 LayoutRequest.Auto canonical x None Both)
                                 (KernelFn.computeWithMask 1e9 LayoutRequest.Auto other x None Both) ]

        testList "finite networks: an axis spelled from the other end gives the canonical spelling's numbers bit for bit" [
          for what, x, canonical, other in sameAxes -> testCase what <| fun () ->
            let _, p = InitFn.init 9 canonical x.Shape
            Expect.equal (snd (InitFn.init 9 other x.Shape)) p (what + ": init")
            Expect.equal (ApplyFn.apply other p x).Data (ApplyFn.apply canonical p x).Data (what + ": apply")
            let data (a: Tensor option, b: Tensor option) = a.Value.Data, b.Value.Data
            Expect.equal (data (Empirical.kernelFn other [| -1 |] [||] x None Both p)) (data (Empirical.kernelFn canonical [| -1 |] [||] x None Both p)) (what + ": empirical")
            Expect.equal (data (MonteCarlo.kernelFn other 3 2 x None Both)) (data (MonteCarlo.kernelFn canonical 3 2 x None Both)) (what + ": Monte Carlo") ]

        testCase "nt kernel: NCHW with channel_axis 1 gives the numbers of channel_axis -3 (analytic, empirical, Monte Carlo)" <| fun () ->
            let arch (channelAxis: int) =
                sprintf """{"layer": "serial", "layers": [{"layer": "Conv", "out_chan": 4, "filter_shape": [2, 2], "padding": "SAME", "dimension_numbers": ["NCHW", "OIHW", "NCHW"]}, {"layer": "Relu"}, {"layer": "GlobalAvgPool", "channel_axis": %d}, {"layer": "Dense", "out_dim": 1}]}""" channelAxis
            let x1 = "[[[[1, 0.5], [-1, 2]], [[0.3, -0.7], [1.5, 0.2]]], [[[0, 1], [2, -0.5]], [[-1, 0.4], [0.6, 1.1]]]]"
            for extra in [ ""; """, "empirical": {"seed": 4}"""; """, "monte_carlo": {"n_samples": 2, "seed": 4}""" ] do
                let answer channelAxis =
                    let code, out, err = ntKernelInProcess (sprintf """{"arch": %s, "x1": %s%s}""" (arch channelAxis) x1 extra)
                    Expect.equal code 0 err
                    let o = JsonNode.Parse(out)
                    jsonValues o["nngp"], jsonValues o["ntk"]
                Expect.equal (answer 1) (answer -3) ("channel_axis 1 and -3" + extra)

        testCase "a real conflict is refused with both spellings, both layers and the rank, by every kernel path" <| fun () ->
            // channel_axis 1 after an NHWC Conv (-1, axis 3) and 3 after an NCHW Conv (-3, axis 1).
            for dims, channelAxis, shape, conv, axes in
                [ nhwc, 1, [| 2; 4; 4; 2 |], -1, "axes 1 and 3"; nchw, 3, [| 2; 2; 4; 4 |], -3, "axes 3 and 1" ] do
                let net = convPool dims 0 channelAxis
                let x = images 43 shape
                let expected =
                    sprintf "GlobalAvgPool: channel_axis=%d conflicts with channel_axis=%d required by an earlier layer (Conv): on inputs of rank 4 these are %s; use one layout for the whole network"
                        channelAxis conv axes
                let refused (what: string) (f: unit -> unit) =
                    Expect.equal (throwsExactly<NeuralTangentsException> f).Message expected what
                let _, p = InitFn.init 1 net x.Shape
                refused "compute" (fun () -> KernelFn.compute net x None Both |> ignore)
                refused "batched" (fun () -> Batching.compute BatchOptions.Default net x None Both |> ignore)
                refused "mask_constant" (fun () -> KernelFn.computeWithMask 1e9 LayoutRequest.Auto net x None Both |> ignore)
                refused "empirical" (fun () -> Empirical.kernelFn net [| -1 |] [||] x None Both p |> ignore)
                refused "Monte Carlo" (fun () -> MonteCarlo.kernelFn net 1 1 x None Both |> ignore)

        // ---- Monte Carlo of finite networks ----

        testCase "Monte Carlo: (N, H, C) through Dense, Relu, Dense; full-layout NNGP" <| fun () ->
            let build readout = Stax.serial [ Stax.dense width 1.4 (Some 0.3); Stax.relu; Stax.dense readout 1.1 (Some 0.2) ]
            mcSpatialNngp "(N,H,C) Dense Relu Dense" build (images 30 [| 3; 3; 4 |]) 400

        testCase "Monte Carlo: (N, H, W, C) through Dense, Erf, Dense; full-layout NNGP" <| fun () ->
            let build readout = Stax.serial [ Stax.dense width 1.3 (Some 0.2); Stax.erf 1.0 1.0 0.0; Stax.dense readout 1.2 (Some 0.1) ]
            mcSpatialNngp "(N,H,W,C) Dense Erf Dense" build (images 31 [| 2; 2; 2; 3 |]) 400

        testCase "Monte Carlo: (N, H, W, C) through Dense, Gelu, Flatten, Dense computed in the full layout; NNGP and NTK" <| fun () ->
            // The flat output lets Empirical give both kernels; the analytic side is forced through the full layout.
            let x = images 32 [| 3; 2; 2; 2 |]
            let build readout = Stax.serial [ Stax.dense 512 1.4 (Some 0.3); Stax.gelu false; Stax.flatten; Stax.dense readout 1.1 (Some 0.2) ]
            let analytic = KernelFn.computeWithLayout full (build 1) x None Both
            let m = 300
            let samples =
                Array.Parallel.init m (fun i ->
                    let _, p = InitFn.init (5000 + i) (build 1) x.Shape
                    Empirical.kernels (build 1) p x None)
            let zN = mcCompare "flatten nngp" analytic.Nngp (Array.map fst samples)
            let zT = mcCompare "flatten ntk" analytic.Ntk.Value (Array.map snd samples)
            note (sprintf "%-40s M=%d  worst |z|: nngp %.2f, ntk %.2f" "(N,H,W,C) Dense Gelu Flatten Dense (full)" m zN zT)
    ]
