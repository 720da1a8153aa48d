/// Aggregate (Layers/Aggregation.fs): the kernel A1ᵀ·K·A2 per pair of samples, SPARSE = DENSE, the finite layer,
/// Monte Carlo of a finite graph network, JSON and the CLI's kwargs.pattern.
module NeuralTangents.Tests.AggregationTests

open System.IO
open Expecto
open NeuralTangents
open NeuralTangents.Layers
open NeuralTangents.Tests.TestUtil
open NeuralTangents.Tests.McCheck

/// Graphs of 5 vertices, 3 channels: x1 of 4 samples, x2 of 3.
let private x1 = Tensor.create [| 4; 5; 3 |] (normals 81 60)
let private x2 = Tensor.create [| 3; 5; 3 |] (normals 82 45)

/// A random 0/1 adjacency (n, 5, 5) with a few weights of 2.
let private adjacency (seed: int) (n: int) =
    let r = System.Random(seed)
    Tensor.create [| n; 5; 5 |] (Array.init (n * 25) (fun _ -> match r.Next 5 with 0 | 1 -> 1.0 | 2 -> 2.0 | _ -> 0.0))

let private a1, a2 = adjacency 1 4, adjacency 2 3

let private full = { DiagonalBatch = None; DiagonalSpatial = Some false }

[<Tests>]
let tests =
    testList "AggregationTests" [
        testCase "kernel after Dense: K'[n1, n2] = A1[n1]ᵀ·K[n1, n2]·A2[n2], cov1 with A1 on both sides" <| fun () ->
            let dense = Stax.dense 8 1.3 (Some 0.1)
            let before = KernelFn.computeWithLayout full dense x1 (Some x2) Both
            let k = KernelFn.computeWithPattern (a1, a2) full (Stax.serial [ dense; Stax.aggregate None 0 -1 AggregateImplementation.Dense ]) x1 (Some x2) Both
            for n1 in 0 .. 3 do
                for n2 in 0 .. 2 do
                    for j in 0 .. 4 do
                        for j' in 0 .. 4 do
                            let e = Seq.sum (seq { for i in 0 .. 4 do
                                                     for i' in 0 .. 4 ->
                                                         a1.Data[(n1 * 5 + i) * 5 + j] * a2.Data[(n2 * 5 + i') * 5 + j']
                                                         * before.Nngp.Data[((n1 * 3 + n2) * 5 + i) * 5 + i'] })
                            within (1e-13 * (abs e + 1.0)) e k.Nngp.Data[((n1 * 3 + n2) * 5 + j) * 5 + j'] "nngp entry"
            for n in 0 .. 3 do
                for j in 0 .. 4 do
                    let e = Seq.sum (seq { for i in 0 .. 4 do
                                             for i' in 0 .. 4 ->
                                                 a1.Data[(n * 5 + i) * 5 + j] * a1.Data[(n * 5 + i') * 5 + j]
                                                 * before.Cov1.Data[(n * 5 + i) * 5 + i'] })
                    within (1e-13 * (abs e + 1.0)) e k.Cov1.Data[(n * 5 + j) * 5 + j] "cov1 diagonal entry"

        testCase "without a pattern the kernel and the finite layer pass through (neural_tangents' pattern=None)" <| fun () ->
            let net = Stax.serial [ Stax.dense 8 1.3 (Some 0.1); Stax.aggregate None 0 -1 AggregateImplementation.Dense ]
            let a = KernelFn.computeWithLayout full (Stax.dense 8 1.3 (Some 0.1)) x1 None Both
            let b = KernelFn.computeWithLayout full net x1 None Both
            Expect.equal b.Nngp.Data a.Nngp.Data "nngp unchanged"
            let l = Stax.aggregate None 0 -1 AggregateImplementation.Dense
            Expect.equal (ApplyFn.apply l Params.none x1).Data x1.Data "identity without pattern"

        testCase "SPARSE edge lists give the kernel of their dense adjacency (counts as weights, negative heads dropped)" <| fun () ->
            // Edges (tail, head) per sample; the dense adjacency is built here by counting.
            let edges = [| [ 0, 1; 1, 2; 1, 2; 4, 0; 3, 3; 2, -1 ]; [ 2, 4; 4, 2; 0, 0; 1, 3; 3, 1; 0, 4 ]; [ 1, 1; 2, 3; 3, 4; 4, 0; 0, 2; 2, 2 ]; [ 3, 0; 0, 3; 4, 4; 1, 0; 2, 1; 1, 4 ] |]
            let sparse = Tensor.create [| 4; 6; 1; 2 |] [| for es in edges do for t, h in es do yield float t; yield float h |]
            let dense = Array.zeroCreate (4 * 25)
            edges |> Array.iteri (fun n es -> for t, h in es do if h >= 0 then dense[(n * 5 + t) * 5 + h] <- dense[(n * 5 + t) * 5 + h] + 1.0)
            let denseT = Tensor.create [| 4; 5; 5 |] dense
            let net impl = Stax.serial [ Stax.dense 8 1.3 (Some 0.1); Stax.relu; Stax.aggregate (Some [ 1 ]) 0 -1 impl; Stax.dense 4 1.1 None ]
            let ks = KernelFn.computeWithPattern (sparse, sparse) full (net AggregateImplementation.Sparse) x1 None Both
            let kd = KernelFn.computeWithPattern (denseT, denseT) full (net AggregateImplementation.Dense) x1 None Both
            assertClose "nngp" 1e-15 kd.Nngp.Data ks.Nngp.Data
            assertClose "ntk" 1e-15 kd.Ntk.Value.Data ks.Ntk.Value.Data
            // The (batch, n_edges, 2) form of K = 1.
            let sparse3 = Tensor.create [| 4; 6; 2 |] sparse.Data
            let k3 = KernelFn.computeWithPattern (sparse3, sparse3) full (net AggregateImplementation.Sparse) x1 None Both
            assertClose "nngp (batch, n_edges, 2)" 1e-15 kd.Nngp.Data k3.Nngp.Data

        testCase "finite layer: out[n, j, c] = Σ_i x[n, i, c]·A[n, i, j]" <| fun () ->
            let l = Stax.aggregate None 0 -1 AggregateImplementation.Dense
            let y = ApplyFn.applyWith { ApplyContext.Empty with Side = Map.ofList [ "pattern", a1 ] } l Params.none x1
            for n in 0 .. 3 do
                for j in 0 .. 4 do
                    for c in 0 .. 2 do
                        let e = Seq.sum (seq { for i in 0 .. 4 -> x1.Data[(n * 5 + i) * 3 + c] * a1.Data[(n * 5 + i) * 5 + j] })
                        within 1e-14 e y.Data[(n * 5 + j) * 3 + c] "entry"

        testCase "refused: the diagonal spatial layout, a pattern of the wrong shape" <| fun () ->
            let net = Stax.serial [ Stax.dense 8 1.3 (Some 0.1); Stax.aggregate None 0 -1 AggregateImplementation.Dense ]
            Expect.throwsT<NeuralTangentsException>
                (fun () -> KernelFn.computeWithPattern (a1, a2) { DiagonalBatch = None; DiagonalSpatial = Some true } net x1 (Some x2) Both |> ignore)
                "diagonal spatial"
            let e = throwsExactly<NeuralTangentsException> (fun () -> KernelFn.computeWithPattern (a2, a1) full net x1 (Some x2) Both |> ignore)
            Expect.stringContains e.Message "pattern" "wrong batch size"

        testCase "Monte Carlo NNGP: Dense(512) → Relu → Aggregate → Flatten → Dense(64), M = 300" <| fun () ->
            // One hidden layer, then linear maps: the mean of the empirical NNGP equals the analytic one (no allowance).
            // The finite network reads the pattern from apply's side inputs; each network averages 64 readouts.
            let net readout = Stax.serial [ Stax.dense 512 1.3 (Some 0.1); Stax.relu; Stax.aggregate None 0 -1 AggregateImplementation.Dense
                                            Stax.flatten; Stax.dense readout 1.2 (Some 0.1) ]
            let analytic = KernelFn.computeWithPattern (a1, a1) LayoutRequest.Auto (net 1) x1 None Nngp
            let ctx = { ApplyContext.Empty with Side = Map.ofList [ "pattern", a1 ] }
            let samples =
                Array.Parallel.init 300 (fun i ->
                    let _, p = InitFn.init (5000 + i) (net 64) x1.Shape
                    outerMean (ApplyFn.applyWith ctx (net 64) p x1))
            let worst = compareMean "Aggregate nngp" analytic.Nngp samples 0.0
            note (sprintf "Aggregate Monte Carlo (M = 300, width 512): worst |Δ|/SE nngp %.2f" worst)

        testCase "JSON: defaults, int axis, round trip; the CLI binds kwargs.pattern" <| fun () ->
            Expect.equal (Json.decode """{"layer": "Aggregate"}""") (Stax.aggregate None 0 -1 AggregateImplementation.Dense) "defaults"
            Expect.equal (Json.decode """{"layer": "Aggregate", "aggregate_axis": 1, "implementation": "SPARSE"}""")
                (Stax.aggregate (Some [ 1 ]) 0 -1 AggregateImplementation.Sparse) "int axis, SPARSE"
            let l = Stax.aggregate (Some [ 1; 2 ]) 0 -1 AggregateImplementation.Sparse
            Expect.equal (Json.decode (Json.encode l)) l "round trip"
            let req =
                """{"arch": {"layer": "serial", "layers": [{"layer": "Dense", "out_dim": 4}, {"layer": "Aggregate"}]},
                    "x1": [[[1.0], [2.0]]], "kwargs": {"pattern": [[[[0, 1], [1, 0]]], [[[0, 1], [1, 0]]]]}}"""
            let r = NeuralTangents.Cli.KernelRequest.parse (Path.GetTempPath()) req
            match r.Arch with
            | Serial [ _; Aggregate a ] -> Expect.isSome a.Pattern "pattern bound"
            | other -> failtestf "unexpected architecture %A" other
    ]
