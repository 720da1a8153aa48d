/// DotGeneral (Layers/Contraction.fs), Index (Layers/Indexing.fs) and ImageResize (Layers/Resize.fs): the constant
/// linear maps on the inputs' axes. Kernel rules against closed forms and Monte Carlo of finite networks, finite
/// forward/backward passes, neural_tangents' index and resize conventions, JSON and errors.
module NeuralTangents.Tests.IndexingTests

open Expecto
open NeuralTangents
open NeuralTangents.Layers
open NeuralTangents.Tests.TestUtil
open NeuralTangents.Tests.McCheck

let private r (a: int option) (b: int option) (c: int option) = IndexEntry.Range(a, b, c)

/// ⟨u, v⟩ of two tensors of one shape.
let private dot (u: Tensor) (v: Tensor) = Array.fold2 (fun acc a b -> acc + a * b) 0.0 u.Data v.Data

/// The adjoint law of a linear layer's backward pass: ⟨f(x), y⟩ = ⟨x, f*(y)⟩ for random x and y.
let private adjoint (name: string) (layer: Layer) (shape: int[]) =
    let n = Array.fold (*) 1 shape
    let x = Tensor.create shape (normals 101 n)
    let fx = ApplyFn.apply layer Params.none x
    let y = Tensor.create fx.Shape (normals 102 fx.Length)
    let _, back = Backward.vjp layer Params.none x y
    within (1e-13 * abs (dot fx y)) (dot fx y) (dot x back) (name + ": ⟨f(x), y⟩ = ⟨x, f*(y)⟩")

/// Monte Carlo of a network with one hidden layer (the first one, exactly Gaussian) followed by constant linear maps
/// and a readout: the mean of the empirical kernels equals the analytic one exactly, so no allowance.
let private monteCarlo (name: string) (net: Layer) (x: Tensor) =
    let analytic = KernelFn.compute net x None Both
    let samples =
        Array.Parallel.init 300 (fun i ->
            let _, p = InitFn.init (8000 + i) net x.Shape
            Empirical.nngp net p x None, Empirical.ntk net p x None)
    let zn = compareMean (name + " nngp") analytic.Nngp (Array.map fst samples) 0.0
    let zt = compareMean (name + " ntk") analytic.Ntk.Value (Array.map snd samples) 0.0
    note (sprintf "%s Monte Carlo (M = 300): worst |Δ|/SE nngp %.2f, ntk %.2f" name zn zt)

let private x3 = Tensor.create [| 3; 5; 2 |] (normals 61 30)

[<Tests>]
let tests =
    testList "IndexingTests" [
        testList "DotGeneral" [
            testCase "finite forward: rhs vector contracts the spatial axis, out[n, c] = Σ_h x[n, h, c]·rhs[h]" <| fun () ->
                let rhs = Tensor.create [| 5 |] [| 0.5; -1.0; 0.8; 0.3; 1.2 |]
                let l = Stax.dotGeneral None (Some rhs) (([ 1 ], [ 0 ]), ([], [])) 0 -1
                let y = ApplyFn.apply l Params.none x3
                Expect.equal y.Shape [| 3; 2 |] "output shape"
                for n in 0 .. 2 do
                    for c in 0 .. 1 do
                        let e = Seq.sum (seq { for h in 0 .. 4 -> x3.Data[(n * 5 + h) * 2 + c] * rhs.Data[h] })
                        within 1e-14 e y.Data[n * 2 + c] (sprintf "out[%d,%d]" n c)
                adjoint "DotGeneral rhs" l x3.Shape
                let lhs = Tensor.create [| 4; 5 |] (normals 3 20)
                adjoint "DotGeneral lhs" (Stax.dotGeneral (Some lhs) None (([ 1 ], [ 1 ]), ([], [])) 0 -1) x3.Shape

            testCase "a scalar multiplies every covariance and the NTK by its square" <| fun () ->
                let x = randomTensor 5 4 6
                let dense = Stax.dense 8 1.3 (Some 0.2)
                let a = KernelFn.compute dense x None Both
                let b = KernelFn.compute (Stax.serial [ dense; Stax.dotGeneral None (Some(Tensor.create [||] [| -2.0 |])) (([], []), ([], [])) 0 -1 ]) x None Both
                assertClose "nngp" 1e-15 (a.Nngp.Data |> Array.map ((*) 4.0)) b.Nngp.Data
                assertClose "ntk" 1e-15 (a.Ntk.Value.Data |> Array.map ((*) 4.0)) b.Ntk.Value.Data
                assertClose "cov1" 1e-15 (a.Cov1.Data |> Array.map ((*) 4.0)) b.Cov1.Data

            testCase "contracting a spatial axis needs the full spatial layout (requirement and refusal)" <| fun () ->
                let rhs = Tensor.create [| 5 |] [| 1.0; 2.0; 3.0; 4.0; 5.0 |]
                let net = Stax.serial [ Stax.conv 4 [ 2 ] None Padding.Same 1.0 None; Stax.dotGeneral None (Some rhs) (([ 1 ], [ 0 ]), ([], [])) 0 -1 ]
                let req = Requirements.ofLayer net
                Expect.equal req.DiagonalSpatial.Value.Input Tri.No "input must be full"
                Expect.throwsT<NeuralTangentsException>
                    (fun () -> KernelFn.computeWithLayout { DiagonalBatch = None; DiagonalSpatial = Some true } net x3 None Both |> ignore)
                    "diagonal spatial refused"

            testCase "Monte Carlo: Conv(512) → Relu → DotGeneral(rhs vector over H) → Dense" <| fun () ->
                let rhs = Tensor.create [| 5 |] [| 0.5; -1.0; 0.8; 0.3; 1.2 |]
                let net = Stax.serial [ Stax.conv 512 [ 2 ] None Padding.Same 1.3 (Some 0.1); Stax.relu
                                        Stax.dotGeneral None (Some rhs) (([ 1 ], [ 0 ]), ([], [])) 0 -1; Stax.dense 1 1.2 (Some 0.1) ]
                monteCarlo "DotGeneral" net x3

            testCase "JSON: nested-list constant, dimension_numbers, round trip, errors" <| fun () ->
                let l = Json.decode """{"layer": "DotGeneral", "lhs": [[1, 2], [3, 4.5]], "dimension_numbers": [[[1], [1]], [[], []]]}"""
                let expected = Stax.dotGeneral (Some(Tensor.create [| 2; 2 |] [| 1.0; 2.0; 3.0; 4.5 |])) None (([ 1 ], [ 1 ]), ([], [])) 0 -1
                Expect.equal l expected "decoded"
                Expect.equal (Json.decode (Json.encode l)) l "round trip"
                let s = Json.decode """{"layer": "DotGeneral", "rhs": 2.0, "precision": "HIGHEST"}"""
                Expect.equal (Json.decode (Json.encode s)) s "scalar round trip"
                for bad, fragment in [ """{"layer": "DotGeneral", "lhs": 1, "rhs": 2}""", "at most one"
                                       """{"layer": "DotGeneral", "rhs": [[1, 2], [3]]}""", "rectangular"
                                       """{"layer": "DotGeneral", "rhs": [1], "dimension_numbers": [[1], [0]]}""", "dimension_numbers" ] do
                    let e = throwsExactly<Json.JsonArchitectureException> (fun () -> Json.decode bad |> ignore)
                    Expect.stringContains e.Message fragment "message"
                // The argument is named once, by its JSON name (not also as the F# parameter dimensionNumbers).
                for bad, text in [ """{"layer": "DotGeneral", "rhs": 1.0, "dimension_numbers": [[[5], [0]], [[], []]]}""",
                                   "DotGeneral: dimension_numbers: axis 0 is out of range for rhs of rank 0"
                                   """{"layer": "DotGeneral", "rhs": 1.0, "batch_axis": 1, "channel_axis": 1}""",
                                   "DotGeneral: channel_axis must differ from batch_axis, both are 1" ] do
                    let e = throwsExactly<Json.JsonArchitectureException> (fun () -> Json.decode bad |> ignore)
                    Expect.equal e.Data0 text "message"
        ]

        testList "Index" [
            testCase "slices follow Python's slice.indices (table from CPython)" <| fun () ->
                // Expected lists printed by CPython 3: list(range(n))[slice(a, b, c)].
                let table =
                    [ 5, r None None None, [ 0; 1; 2; 3; 4 ]
                      5, r (Some 1) None None, [ 1; 2; 3; 4 ]
                      5, r None None (Some -1), [ 4; 3; 2; 1; 0 ]
                      5, r (Some -2) None None, [ 3; 4 ]
                      5, r None (Some -1) None, [ 0; 1; 2; 3 ]
                      5, r (Some 4) (Some 0) (Some -2), [ 4; 2 ]
                      5, r (Some 10) None (Some -1), [ 4; 3; 2; 1; 0 ]
                      5, r (Some -10) None None, [ 0; 1; 2; 3; 4 ]
                      5, r None None (Some -2), [ 4; 2; 0 ]
                      5, r (Some 3) (Some 1) None, []
                      5, r (Some -1) (Some -6) (Some -1), [ 4; 3; 2; 1; 0 ]
                      4, r (Some 1) None (Some 2), [ 1; 3 ] ]
                for n, e, expected in table do
                    let got, removed = Indexing.resolve n e
                    Expect.equal (List.ofArray got) expected (sprintf "%A on %d" e n)
                    Expect.isFalse removed "a slice keeps its axis"
                Expect.equal (Indexing.resolve 5 (IndexEntry.At -2)) ([| 3 |], true) "negative integer"
                Expect.throwsT<NeuralTangentsException> (fun () -> Indexing.resolve 5 (IndexEntry.At 5) |> ignore) "out of bounds"

            testCase "kernel: the sub-array of every covariance, batch slice on both batch axes, integer removes the axis" <| fun () ->
                let x = Tensor.create [| 3; 4; 3; 2 |] (normals 71 72)
                let x2 = Tensor.create [| 4; 4; 3; 2 |] (normals 72 96)
                let conv = Stax.conv 8 [ 2; 2 ] None Padding.Same 1.3 (Some 0.1)
                let full = { DiagonalBatch = None; DiagonalSpatial = Some false }
                let natural (k: Kernel) = if k.IsReversed then Kernel.reverse k else k
                let before = KernelFn.computeWithLayout full conv x (Some x2) Both |> natural
                let idx = [ r None (Some 2) None; r None None (Some -2); IndexEntry.At -1 ]
                let k = KernelFn.computeWithLayout full (Stax.serial [ conv; Stax.index idx 0 -1 ]) x (Some x2) Both |> natural
                // nngp before: (3, 4, H=4, H'=4, W=3, W'=3). Batch 0..1 on both, H ↦ [3; 1] on both copies, W ↦ 2 removed.
                Expect.equal k.Nngp.Shape [| 2; 2; 2; 2 |] "nngp shape"
                let hs = [| 3; 1 |]
                for a in 0 .. 1 do
                    for b in 0 .. 1 do
                        for i in 0 .. 1 do
                            for j in 0 .. 1 do
                                let src = ((((a * 4 + b) * 4 + hs[i]) * 4 + hs[j]) * 3 + 2) * 3 + 2
                                Expect.equal k.Nngp.Data[((a * 2 + b) * 2 + i) * 2 + j] before.Nngp.Data[src] "nngp entry"
                Expect.equal k.Shape1 [| 2; 2; 8 |] "Shape1"
                Expect.equal k.ChannelAxis 2 "channel axis after removing W"

            testCase "refused: an integer on the batch axis, indexing the channel axis" <| fun () ->
                let net i = Stax.serial [ Stax.conv 4 [ 2 ] None Padding.Same 1.0 None; Stax.index i 0 -1 ]
                let e = throwsExactly<NeuralTangentsException> (fun () -> KernelFn.compute (net [ IndexEntry.At 0 ]) x3 None Both |> ignore)
                Expect.stringContains e.Message "batch axis" "batch integer"
                let e = throwsExactly<NeuralTangentsException> (fun () -> KernelFn.compute (net [ IndexEntry.Rest; r None (Some 1) None ]) x3 None Both |> ignore)
                Expect.stringContains e.Message "channel axis" "channel slice"
                Expect.throwsT<System.ArgumentException> (fun () -> Stax.index [ IndexEntry.Rest; IndexEntry.Rest ] 0 -1 |> ignore) "two ellipses"
                Expect.throwsT<System.ArgumentException> (fun () -> Stax.index [ r None None (Some 0) ] 0 -1 |> ignore) "zero step"

            testCase "finite layer: x[idx] with an ellipsis; backward is the adjoint" <| fun () ->
                let l = Stax.index [ IndexEntry.Rest; r None None (Some -1); IndexEntry.At 1 ] 0 -1
                let y = ApplyFn.apply l Params.none x3
                Expect.equal y.Shape [| 3; 5 |] "shape"
                for n in 0 .. 2 do
                    for h in 0 .. 4 do
                        Expect.equal y.Data[n * 5 + h] x3.Data[(n * 5 + (4 - h)) * 2 + 1] "entry"
                adjoint "Index" (Stax.index [ r None None (Some 2); r (Some -4) None (Some -1) ] 0 -1) x3.Shape

            testCase "Monte Carlo: Conv(512) → Relu → Index[:, 1:, ::-2] → Flatten → Dense" <| fun () ->
                let x = Tensor.create [| 3; 3; 4; 2 |] (normals 73 72)
                let net = Stax.serial [ Stax.conv 512 [ 2; 2 ] None Padding.Same 1.3 (Some 0.1); Stax.relu
                                        Stax.index [ r None None None; r (Some 1) None None; r None None (Some -2) ] 0 -1
                                        Stax.flatten; Stax.dense 1 1.2 (Some 0.1) ]
                monteCarlo "Index" net x

            testCase "JSON: the fixture's encoding and a round trip" <| fun () ->
                let l = Json.decode """{"layer": "Index", "idx": [":", [1, null, null], [null, null, -1], "...", 2]}"""
                Expect.equal l (Stax.index [ r None None None; r (Some 1) None None; r None None (Some -1); IndexEntry.Rest; IndexEntry.At 2 ] 0 -1) "decoded"
                Expect.equal (Json.decode (Json.encode l)) l "round trip"
                let e = throwsExactly<Json.JsonArchitectureException> (fun () -> Json.decode """{"layer": "Index", "idx": ["::"]}""" |> ignore)
                Expect.stringContains e.Message "idx" "names the argument"
        ]

        testList "ImageResize" [
            testCase "a resized kernel beyond one array is refused before it is built (256×256 from 2×2: 2³² entries)" <| fun () ->
                // The full-layout kernel of one 256×256 image has (256·256)² = 2³² entries (0 in int32 arithmetic; an
                // index error after 1.6 s before the check), 300×300 8.1e9 (negative in int32).
                let x = Tensor.create [| 1; 2; 2; 1 |] [| 1.0; 2.0; 3.0; 4.0 |]
                for side, entries in [ 256, "4294967296"; 300, "8100000000" ] do
                    let net = Stax.imageResize [ -1; side; side; -1 ] ResizeMethod.Linear true 0 -1
                    let e = throwsExactly<NeuralTangentsException> (fun () -> KernelFn.compute net x None Both |> ignore)
                    Expect.stringContains e.Message "ImageResize" "names the layer"
                    Expect.stringContains e.Message entries "names the entries"
                    Expect.stringContains e.Message "'shape'" "names the argument to change"
            testCase "linear operators by hand: upsampling 3 → 5, downsampling 4 → 2 with and without antialias" <| fun () ->
                // f = (o + 0.5)·in/out − 0.5; weights max(0, 1 − |f − i|/s) normalised; s = max(in/out, 1) with antialias.
                let check (what: string) (expected: float[,]) (actual: float[,]) =
                    for o in 0 .. Array2D.length1 expected - 1 do
                        for i in 0 .. Array2D.length2 expected - 1 do
                            within 1e-15 expected[o, i] actual[o, i] (sprintf "%s[%d,%d]" what o i)
                check "3→5" (array2D [ [ 1.0; 0.0; 0.0 ]; [ 0.6; 0.4; 0.0 ]; [ 0.0; 1.0; 0.0 ]; [ 0.0; 0.4; 0.6 ]; [ 0.0; 0.0; 1.0 ] ])
                    (Resize.linearOperator 3 5 true)
                check "4→2 antialias" (array2D [ [ 3.0 / 7.0; 3.0 / 7.0; 1.0 / 7.0; 0.0 ]; [ 0.0; 1.0 / 7.0; 3.0 / 7.0; 3.0 / 7.0 ] ])
                    (Resize.linearOperator 4 2 true)
                check "4→2 plain" (array2D [ [ 0.5; 0.5; 0.0; 0.0 ]; [ 0.0; 0.0; 0.5; 0.5 ] ]) (Resize.linearOperator 4 2 false)

            testCase "nearest: floor((o + 0.5)·in/out)" <| fun () ->
                let pick (op: float[,]) = [ for o in 0 .. Array2D.length1 op - 1 -> [ 0 .. Array2D.length2 op - 1 ] |> List.find (fun i -> op[o, i] = 1.0) ]
                Expect.equal (pick (Resize.nearestOperator 3 5)) [ 0; 0; 1; 2; 2 ] "3→5"
                Expect.equal (pick (Resize.nearestOperator 5 2)) [ 1; 3 ] "5→2"

            testCase "kernel of each resized pair is R·K·Rᵀ; diagonal spatial refused" <| fun () ->
                let dense = Stax.dense 8 1.3 (Some 0.1)
                let full = { DiagonalBatch = None; DiagonalSpatial = Some false }
                let before = KernelFn.computeWithLayout full dense x3 None Both
                let k = KernelFn.computeWithLayout full (Stax.serial [ dense; Stax.imageResize [ -1; 3; -1 ] ResizeMethod.Linear true 0 -1 ]) x3 None Both
                let rop = Resize.linearOperator 5 3 true
                // nngp (3, 3, 5, 5) → (3, 3, 3, 3).
                for a in 0 .. 2 do
                    for b in 0 .. 2 do
                        for p in 0 .. 2 do
                            for q in 0 .. 2 do
                                let e = Seq.sum (seq { for h in 0 .. 4 do for h' in 0 .. 4 -> rop[p, h] * rop[q, h'] * before.Nngp.Data[((a * 3 + b) * 5 + h) * 5 + h'] })
                                within 1e-14 e k.Nngp.Data[((a * 3 + b) * 3 + p) * 3 + q] "nngp entry"
                Expect.throwsT<NeuralTangentsException>
                    (fun () -> KernelFn.computeWithLayout { DiagonalBatch = None; DiagonalSpatial = Some true } (Stax.serial [ dense; Stax.imageResize [ -1; 3; -1 ] ResizeMethod.Linear true 0 -1 ]) x3 None Both |> ignore)
                    "diagonal spatial refused"
                let e = throwsExactly<NeuralTangentsException> (fun () -> KernelFn.compute (Stax.serial [ dense; Stax.imageResize [ -1; -1; 4 ] ResizeMethod.Linear true 0 -1 ]) x3 None Both |> ignore)
                Expect.stringContains e.Message "channel axis" "channel resize refused"

            testCase "backward is the adjoint of the forward pass" <| fun () ->
                adjoint "linear up" (Stax.imageResize [ -1; 7; -1 ] ResizeMethod.Linear true 0 -1) x3.Shape
                adjoint "linear down" (Stax.imageResize [ 2; 3; -1 ] ResizeMethod.Linear true 0 -1) x3.Shape
                adjoint "nearest" (Stax.imageResize [ -1; 3; -1 ] ResizeMethod.Nearest true 0 -1) x3.Shape

            testCase "Monte Carlo: per-position Dense(512) → Relu → ImageResize linear 5 → 7 and nearest 5 → 3 → Flatten → Dense" <| fun () ->
                for m, size in [ ResizeMethod.Linear, 7; ResizeMethod.Nearest, 3 ] do
                    let net = Stax.serial [ Stax.dense 512 1.3 (Some 0.1); Stax.relu; Stax.imageResize [ -1; size; -1 ] m true 0 -1
                                            Stax.flatten; Stax.dense 1 1.2 (Some 0.1) ]
                    monteCarlo (sprintf "ImageResize %A" m) net x3

            testCase "JSON: method names, round trip, refused methods" <| fun () ->
                let l = Json.decode """{"layer": "ImageResize", "shape": [-1, 5, 4, -1], "method": "bilinear"}"""
                Expect.equal l (Stax.imageResize [ -1; 5; 4; -1 ] ResizeMethod.Linear true 0 -1) "bilinear is linear"
                Expect.equal (Json.decode (Json.encode l)) l "round trip"
                let e = throwsExactly<Json.JsonArchitectureException> (fun () -> Json.decode """{"layer": "ImageResize", "shape": [-1, 5, -1], "method": "lanczos3"}""" |> ignore)
                Expect.stringContains e.Message "linear" "says what is supported"
        ]
    ]
