/// Finite networks: init_fn shapes and parameter statistics, apply_fn closed forms and layouts, and the backward
/// pass checked against central finite differences for every layer of the union.
module NeuralTangents.Tests.FiniteTests

open System
open Expecto
open NeuralTangents
open NeuralTangents.Tests.TestUtil

let private denseNtk (outDim: int) (wStd: float) (bStd: float option) = Stax.dense outDim wStd bStd

let private denseStd (outDim: int) (wStd: float) (bStd: float option) (s: int * int) =
    Stax.denseWith { Stax.denseDefaults outDim with WStd = wStd; BStd = bStd; Parameterization = Parameterization.Standard; S = s }

let private tensorOf (seed: int) (shape: int[]) = Tensor.create shape (normals seed (Array.fold (*) 1 shape))

/// Exact equality of two arrays, with both printed on failure.
let private assertSame (what: string) (expected: 'T[]) (actual: 'T[]) =
    if expected <> actual then failtestf "%s: expected %A, got %A" what expected actual

/// One small network per layer of the union (and per variant: Dense's parameterizations, layouts and bias,
/// the ABRelu family, Gelu's two forms, fan-in on every axis), with the shape of its inputs.
let private zoo : (string * Layer * int[]) list =
    let d = denseNtk 5 1.3 (Some 0.4)
    [ "Dense ntk, bias", Stax.serial [ d; denseNtk 3 0.9 (Some 0.2) ], [| 3; 4 |]
      "Dense ntk, no bias", Stax.serial [ denseNtk 5 1.1 None; denseNtk 2 0.7 None ], [| 3; 4 |]
      "Dense standard s=(1,2),(2,1)", Stax.serial [ denseStd 3 1.2 (Some 0.3) (1, 2); denseStd 2 0.8 (Some 0.5) (2, 1) ], [| 3; 4 |]
      "Dense channel_axis=0 batch_axis=1",
        Stax.denseWith { Stax.denseDefaults 5 with WStd = 1.4; BStd = Some 0.3; BatchAxis = 1; ChannelAxis = 0 }, [| 4; 3 |]
      "Relu", Stax.serial [ d; Stax.relu; denseNtk 2 1.0 None ], [| 3; 4 |]
      "LeakyRelu", Stax.serial [ d; Stax.leakyRelu 0.1; denseNtk 2 1.0 None ], [| 3; 4 |]
      "ABRelu", Stax.serial [ d; Stax.abRelu -0.4 1.3; denseNtk 2 1.0 None ], [| 3; 4 |]
      "Abs", Stax.serial [ d; Stax.abs; denseNtk 2 1.0 None ], [| 3; 4 |]
      "Erf", Stax.serial [ d; Stax.erf 1.2 0.8 0.3; denseNtk 2 1.0 None ], [| 3; 4 |]
      "Sin", Stax.serial [ d; Stax.sin 1.1 0.9 0.4; denseNtk 2 1.0 None ], [| 3; 4 |]
      "Gelu exact", Stax.serial [ d; Stax.gelu false; denseNtk 2 1.0 None ], [| 3; 4 |]
      "Gelu tanh", Stax.serial [ d; Stax.gelu true; denseNtk 2 1.0 None ], [| 3; 4 |]
      "Monomial 0", Stax.serial [ d; Stax.monomial 0; denseNtk 2 1.0 (Some 0.5) ], [| 3; 4 |]
      "Monomial 3", Stax.serial [ d; Stax.monomial 3; denseNtk 2 1.0 None ], [| 3; 4 |]
      "Identity", Stax.serial [ d; Stax.identity; denseNtk 2 1.0 None ], [| 3; 4 |]
      "FanOut, parallel, FanInSum",
        Stax.serial [ d; Stax.fanOut 2; Stax.parallelOf [ Stax.serial [ Stax.relu; denseNtk 5 1.0 None ]; Stax.identity ]
                      Stax.fanInSum; denseNtk 2 1.0 None ], [| 3; 4 |]
      "FanInProd",
        Stax.serial [ Stax.fanOut 3; Stax.parallelOf [ d; Stax.serial [ d; Stax.erf 1.0 1.0 0.0 ]; Stax.identity ]
                      Stax.fanInProd; denseNtk 2 1.0 None ], [| 3; 5 |]
      "FanInConcat channels", Stax.serial [ Stax.fanOut 2; Stax.parallelOf [ d; denseNtk 3 1.0 None ]; Stax.fanInConcat -1; Stax.relu ], [| 3; 4 |]
      "FanInConcat batch axis", Stax.serial [ Stax.fanOut 2; Stax.parallelOf [ d; d ]; Stax.fanInConcat 0; Stax.sin 1.0 1.0 0.0 ], [| 3; 4 |]
      "FanInConcat spatial axis", Stax.serial [ Stax.fanOut 2; Stax.parallelOf [ d; Stax.identity ]; Stax.fanInConcat 1 ], [| 2; 4; 5 |]
      "Flatten rank 4", Stax.serial [ d; Stax.relu; Stax.flatten; denseNtk 2 1.0 (Some 0.1) ], [| 2; 3; 2; 4 |]
      "Flatten batch_axis_out=1", Stax.serial [ d; Stax.gelu false; Stax.flattenWith 0 1 ], [| 2; 3; 4 |]
      "Conv 1-D SAME, stride 2, bias", Stax.serial [ Stax.conv 3 [ 3 ] (Some [ 2 ]) Padding.Same 1.3 (Some 0.2); Stax.relu; Stax.flatten ], [| 2; 5; 2 |]
      "Conv 1-D CIRCULAR, filter > input", Stax.conv 2 [ 4 ] None Padding.Circular 1.1 (Some 0.3), [| 2; 3; 2 |]
      "Conv 2-D VALID, standard s=(2,3)",
        Stax.convWith { Stax.convDefaults 2 [ 2; 2 ] with WStd = 1.2; BStd = Some 0.1; Parameterization = Parameterization.Standard; S = (2, 3) },
        [| 2; 3; 4; 2 |]
      "Conv 2-D NCHW in, NHWC out",
        Stax.convWith { Stax.convDefaults 3 [ 2; 3 ] with Padding = Padding.Same; BStd = Some 0.4; DimensionNumbers = ("NCHW", "HWIO", "NHWC") },
        [| 2; 2; 3; 4 |]
      "ConvTranspose 1-D SAME stride 2", Stax.convTranspose 3 [ 3 ] (Some [ 2 ]) Padding.Same 1.2 (Some 0.3), [| 2; 3; 2 |]
      "ConvTranspose 1-D VALID stride 3", Stax.convTranspose 2 [ 2 ] (Some [ 3 ]) Padding.Valid 0.9 None, [| 2; 3; 2 |]
      "ConvLocal 1-D SAME", Stax.convLocal 3 [ 3 ] None Padding.Same 1.4 (Some 0.2), [| 2; 4; 2 |]
      "ConvLocal 2-D CIRCULAR stride 2", Stax.convLocal 2 [ 2; 3 ] (Some [ 2; 1 ]) Padding.Circular 1.0 (Some 0.5), [| 2; 3; 3; 2 |] ]

/// Central difference of ⟨ct, f⟩ along every coordinate of v (parameters or input), step h.
let private centralDiff (loss: float[] -> float) (v: float[]) (h: float) =
    Array.init v.Length (fun i ->
        let vp = Array.copy v
        let vm = Array.copy v
        vp[i] <- v[i] + h
        vm[i] <- v[i] - h
        (loss vp - loss vm) / (2.0 * h))

[<Tests>]
let tests =
    testList "FiniteTests" [
        testCase "init_fn and apply_fn agree on the output shape for every layer" <| fun () ->
            for name, layer, shape in zoo do
                let outShape, p = InitFn.init 7 layer shape
                let y = ApplyFn.apply layer p (tensorOf 1 shape)
                assertSame name outShape y.Shape
                Expect.isTrue (Tensor.isFinite y) name

        testCase "output shapes follow neural_tangents' conventions" <| fun () ->
            let shapeOf layer shape = fst (InitFn.init 0 layer shape)
            // ntk: the channel axis becomes out_dim; standard: out_dim·s1.
            assertSame "Dense ntk" ([| 3; 7 |]) (shapeOf (denseNtk 7 1.0 None) [| 3; 4 |])
            assertSame "Dense standard, s1 = 3" ([| 3; 21 |]) (shapeOf (denseStd 7 1.0 None (1, 3)) [| 3; 4 |])
            assertSame "Dense, channel_axis = 0" ([| 7; 3 |]) (shapeOf (Stax.denseWith { Stax.denseDefaults 7 with ChannelAxis = 0; BatchAxis = 1 }) [| 4; 3 |])
            assertSame "Flatten" ([| 2; 60 |]) (shapeOf Stax.flatten [| 2; 3; 4; 5 |])
            assertSame "Flatten, batch_axis_out = 1" ([| 12; 2 |]) (shapeOf (Stax.flattenWith 0 1) [| 2; 3; 4 |])
            assertSame "FanInConcat of widths 3 and 5" [| 2; 8 |]
                (shapeOf (Stax.serial [ Stax.fanOut 2; Stax.parallelOf [ denseNtk 3 1.0 None; denseNtk 5 1.0 None ]; Stax.fanInConcat -1 ]) [| 2; 4 |])
            // Dense's bias has neural_tangents' shape: 1 everywhere but out_dim on the channel axis.
            match InitFn.init 0 (denseNtk 7 1.0 (Some 1.0)) [| 3; 2; 4 |] with
            | _, Leaf [ w; b ] ->
                assertSame "W shape" [| 4; 7 |] w.Shape
                assertSame "b shape" [| 1; 1; 7 |] b.Shape
            | _, p -> failtestf "unexpected params %A" p

        testCase "Dense apply matches its closed form in both parameterizations" <| fun () ->
            let x = tensorOf 3 [| 3; 4 |]
            let check (layer: Layer) (weightScale: float) (biasScale: float) =
                match InitFn.init 11 layer x.Shape with
                | _, (Leaf [ w; b ] as p) ->
                    let y = ApplyFn.apply layer p x
                    let outW = w.Shape[1]
                    for i in 0 .. 2 do
                        for j in 0 .. outW - 1 do
                            let mutable s = 0.0
                            for k in 0 .. 3 do s <- s + x.Data[i * 4 + k] * w.Data[k * outW + j]
                            let expected = weightScale * s + biasScale * b.Data[j]
                            within (1e-13 * (1.0 + abs expected)) expected (y.Data[i * outW + j]) "y.Data[i * outW + j]"
                | _, p -> failtestf "unexpected params %A" p
            // ntk: W_std/√N_in · x·W + b_std·b.
            check (denseNtk 5 1.7 (Some 0.3)) (1.7 / sqrt 4.0) 0.3
            // standard: x·W/√s0 + b.
            check (denseStd 2 1.7 (Some 0.3) (2, 3)) (1.0 / sqrt 2.0) 1.0

        testCase "standard parameterization samples W with variance W_std² s0 / N_in and b with b_std²" <| fun () ->
            let wStd, bStd, s0, inW = 1.5, 0.7, 2, 512
            match InitFn.init 5 (denseStd 256 wStd (Some bStd) (s0, 2)) [| 1; inW |] with
            | _, Leaf [ w; b ] ->
                let n = float w.Length
                let var = (w.Data |> Array.sumBy (fun v -> v * v)) / n
                let expected = wStd * wStd / (float inW / float s0)
                // The sample variance of n normals has relative standard error √(2/n) (0.2% here); 5 of them.
                within (5.0 * sqrt (2.0 / n)) 1.0 (var / expected) "var / expected"
                let bVar = (b.Data |> Array.sumBy (fun v -> v * v)) / float b.Length
                within (5.0 * sqrt (2.0 / float b.Length)) 1.0 (bVar / (bStd * bStd)) "bVar / (bStd * bStd)"
            | _, p -> failtestf "unexpected params %A" p

        testCase "the sampler gives standard normals and independent streams for different keys" <| fun () ->
            let n = 200_000
            let root = Rng.ofSeed 42
            let a = Rng.normals (Rng.split 0 root) n
            let b = Rng.normals (Rng.split 1 root) n
            let mean = Array.average a
            let var = (a |> Array.sumBy (fun v -> (v - mean) ** 2.0)) / float (n - 1)
            let fourth = (a |> Array.sumBy (fun v -> v ** 4.0)) / float n
            let corr = (Array.map2 (*) a b |> Array.sum) / float n
            // 5-sigma bounds: SE(mean) = 1/√n, SE(var) = √(2/n), SE(E[x⁴]) = √(96/n), SE(corr) = 1/√n.
            within (5.0 / sqrt (float n)) 0.0 mean "mean"
            within (5.0 * sqrt (2.0 / float n)) 1.0 var "var"
            within (5.0 * sqrt (96.0 / float n)) 3.0 fourth "fourth"
            within (5.0 / sqrt (float n)) 0.0 corr "corr"
            assertSame "the same key gives the same samples" a[0..9] (Rng.normals (Rng.split 0 root) 10)

        testCase "parameters depend on the layer's path, not on what precedes it" <| fun () ->
            // The second Dense of both networks sits at path [1]; the first layers differ in width and kind.
            let second = denseNtk 3 1.0 (Some 1.0)
            let _, p1 = InitFn.init 9 (Stax.serial [ denseNtk 4 1.0 None; second ]) [| 2; 5 |]
            let _, p2 = InitFn.init 9 (Stax.serial [ Stax.relu; second ]) [| 2; 4 |]
            match p1, p2 with
            | Branches [ _; Leaf [ w1; b1 ] ], Branches [ Leaf []; Leaf [ w2; b2 ] ] ->
                assertSame "W at path [1]" w1.Data w2.Data
                assertSame "b at path [1]" b1.Data b2.Data
            | _ -> failtest "unexpected parameter trees"
            let _, p3 = InitFn.init 10 (Stax.serial [ denseNtk 4 1.0 None; second ]) [| 2; 5 |]
            Expect.isTrue (Params.toVector p3 <> Params.toVector p1) "another seed gives other parameters"

        testCase "Dense with channel_axis 0 is the transpose of the default layout" <| fun () ->
            let spec = { Stax.denseDefaults 6 with WStd = 1.3; BStd = Some 0.2 }
            let x = tensorOf 2 [| 3; 4 |]
            let _, p = InitFn.init 4 (Stax.denseWith spec) x.Shape
            let y = ApplyFn.apply (Stax.denseWith spec) p x
            let layerT = Stax.denseWith { spec with BatchAxis = 1; ChannelAxis = 0 }
            let pT = match p with Leaf [ w; b ] -> Leaf [ w; Tensor.reshape [| 6; 1 |] b ] | q -> q
            let yT = ApplyFn.apply layerT pT (Tensor.moveAxis 0 1 x)
            assertSame "transposed output shape" [| 6; 3 |] yT.Shape
            assertClose "transposed Dense" 1e-15 (Tensor.moveAxis 0 1 yT).Data y.Data

        testCase "Gelu's tanh form stays within 1e-3 of the exact form" <| fun () ->
            // Hendrycks & Gimpel (arXiv:1606.08415): the tanh approximation's largest error is about 2e-4.
            let x = Tensor.create [| 1; 801 |] (Array.init 801 (fun i -> -8.0 + 0.02 * float i))
            let exact = ApplyFn.apply (Stax.gelu false) Params.none x
            let approx = ApplyFn.apply (Stax.gelu true) Params.none x
            let worst = Array.map2 (fun a b -> abs (a - b)) exact.Data approx.Data |> Array.max
            Expect.isLessThan worst 1e-3 "worst"
            Expect.isGreaterThan worst 0.0 "the two forms must differ"

        testCase "backward pass matches central finite differences for every layer" <| fun () ->
            // Central differences with step h have truncation error h²/6·|f'''| and round-off ≈ ε·|L|/h.
            // With h = 1e-5 (near the optimum ε^(1/3)) both are ≲ 1e-10 relative for these O(1) networks, so a
            // relative Frobenius error of 1e-6 leaves four orders of margin for larger third derivatives while still
            // catching any wrong factor, sign or missing term. Kinks (ABRelu at 0) are hit with probability ~1e-5.
            let h = 1e-5
            let tol = 1e-6
            let mutable worst = 0.0
            for name, layer, shape in zoo do
                let x = tensorOf 21 shape
                let outShape, p = InitFn.init 3 layer shape
                let ct = tensorOf 22 outShape
                let loss (theta: Params) (xv: Tensor) =
                    let y = ApplyFn.apply layer theta xv
                    Array.fold2 (fun acc a b -> acc + a * b) 0.0 y.Data ct.Data
                let g, gx = Backward.vjp layer p x ct
                let theta = Params.toVector p
                let gNum = centralDiff (fun v -> loss (Params.ofVector p v) x) theta h
                let gxNum = centralDiff (fun v -> loss p (Tensor.create x.Shape v)) x.Data h
                let eP = if theta.Length = 0 then 0.0 else relErr gNum (Params.toVector g)
                let eX = relErr gxNum gx.Data
                assertSame name x.Shape gx.Shape
                if not (eP <= tol && eX <= tol) then
                    failtestf "%s: parameter gradient error %.2e, input gradient error %.2e (tolerance %.0e)" name eP eX tol
                worst <- max worst (max eP eX)
            note (sprintf "worst relative gradient error over %d networks: %.2e" zoo.Length worst)

        testCase "empirical NTK of a Dense layer is W_std² x1·x2/N_in + b_std² whatever the weights" <| fun () ->
            // f = W_std/√N·x·W + b_std·b, so ∂f_c/∂W[k,c] = W_std/√N·x_k and ∂f_c/∂b_c = b_std (arXiv:1806.07572).
            let x1 = tensorOf 1 [| 3; 4 |]
            let x2 = tensorOf 2 [| 2; 4 |]
            let layer = denseNtk 5 1.6 (Some 0.7)
            let _, p = InitFn.init 8 layer x1.Shape
            let theta = Empirical.ntk layer p x1 (Some x2)
            let expected =
                Array.init 6 (fun idx ->
                    let i, j = idx / 2, idx % 2
                    let dot = Array.init 4 (fun k -> x1.Data[i * 4 + k] * x2.Data[j * 4 + k]) |> Array.sum
                    1.6 * 1.6 * dot / 4.0 + 0.7 * 0.7)
            assertSame "NTK shape" [| 3; 2 |] theta.Shape
            assertClose "Dense NTK" 1e-14 expected theta.Data

        testCase "empirical kernels are symmetric and agree with and without x2" <| fun () ->
            let layer = Stax.serial [ denseNtk 8 1.2 (Some 0.3); Stax.erf 1.0 1.0 0.2; denseNtk 3 1.0 (Some 0.1) ]
            let x = tensorOf 5 [| 4; 3 |]
            let _, p = InitFn.init 2 layer x.Shape
            let nngp, ntk = Empirical.kernels layer p x None
            let nngp2, ntk2 = Empirical.kernels layer p x (Some x)
            assertClose "ntk(x, x) vs ntk(x, None)" 1e-15 ntk.Data ntk2.Data
            assertClose "nngp(x, x) vs nngp(x, None)" 1e-15 nngp.Data nngp2.Data
            assertClose "ntk symmetry" 1e-15 ntk.Data (Tensor.swapLeadingAxes ntk).Data
            // The NNGP is f·fᵀ/C of the outputs of apply_fn.
            let y = ApplyFn.apply layer p x
            let expected = Array.init 16 (fun idx -> (Array.init 3 (fun c -> y.Data[(idx / 4) * 3 + c] * y.Data[(idx % 4) * 3 + c]) |> Array.sum) / 3.0)
            assertClose "nngp = f fᵀ / C" 1e-14 expected nngp.Data

        testCase "mismatched parameters and shapes are rejected with a message" <| fun () ->
            let layer = Stax.serial [ denseNtk 3 1.0 None; Stax.relu ]
            let x = tensorOf 1 [| 2; 4 |]
            throwsExactly<ArgumentException> (fun () -> ApplyFn.apply layer Params.none x |> ignore) |> ignore
            let _, p = InitFn.init 0 layer x.Shape
            throwsExactly<NeuralTangentsException> (fun () -> ApplyFn.apply layer p (tensorOf 1 [| 2; 5 |]) |> ignore) |> ignore
            let sumOfUnequal = Stax.serial [ Stax.fanOut 2; Stax.parallelOf [ denseNtk 3 1.0 None; denseNtk 4 1.0 None ]; Stax.fanInSum ]
            throwsExactly<NeuralTangentsException> (fun () -> InitFn.init 0 sumOfUnequal x.Shape |> ignore) |> ignore
            throwsExactly<NeuralTangentsException> (fun () -> InitFn.init 0 (Stax.fanOut 2) x.Shape |> ignore) |> ignore
            let spatial = Stax.denseWith (Stax.denseDefaults 2)
            let _, ps = InitFn.init 0 spatial [| 2; 3; 4 |]
            throwsExactly<NeuralTangentsException> (fun () -> Empirical.ntk spatial ps (tensorOf 1 [| 2; 3; 4 |]) None |> ignore) |> ignore

        testCase "factored empirical NTK equals the inner product of full parameter gradients" <| fun () ->
            // Empirical.ntk never forms ∂W; here the reference is Σ_c ⟨∂f_c(x1_i)/∂θ, ∂f_c(x2_j)/∂θ⟩ / C from the
            // gradient trees of Backward.vjp (themselves checked against finite differences above). Both are sums of
            // the same O(1) products in a different order, so they agree to round-off (1e-12 relative).
            let mutable worst = 0.0
            let mutable compared = 0
            for name, layer, shape in zoo do
                let outShape, p = InitFn.init 13 layer shape
                // Networks whose output rows are the input examples (not the batch-axis concatenation).
                if outShape.Length = 2 && outShape[0] = shape[0] && (Requirements.ofLayer layer).BatchAxes |> List.tryHead |> Option.forall (fun c -> c.Axis = 0) then
                    let x1 = tensorOf 31 shape
                    let x2 = tensorOf 32 shape
                    let c = outShape[1]
                    let grads (x: Tensor) =
                        Array.init shape[0] (fun i ->
                            Array.init c (fun ch ->
                                let ct = Tensor.zeros outShape
                                ct.Data[i * c + ch] <- 1.0
                                fst (Backward.vjp layer p x ct)))
                    let g1, g2 = grads x1, grads x2
                    let expected =
                        Array.init (shape[0] * shape[0]) (fun idx ->
                            let i, j = idx / shape[0], idx % shape[0]
                            (Array.init c (fun ch -> Params.dot (g1[i][ch]) (g2[j][ch])) |> Array.sum) / float c)
                    let actual = Empirical.ntk layer p x1 (Some x2)
                    let e = relErr expected actual.Data
                    if not (e <= 1e-12) then failtestf "%s: factored NTK differs from the gradient inner product by %.2e" name e
                    worst <- max worst e
                    compared <- compared + 1
            Expect.isGreaterThanOrEqual compared 15 "most of the zoo has (N, C) outputs"
            note (sprintf "worst relative difference, factored vs full-gradient NTK over %d networks: %.2e" compared worst)
    ]
