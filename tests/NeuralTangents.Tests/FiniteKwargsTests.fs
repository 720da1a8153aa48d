/// nt kernel with "monte_carlo"/"empirical" and "kwargs": {"rng": seed, "pattern": [A1, A2]} (neural_tangents'
/// **apply_fn_kwargs): the CLI hands apply_fn the key and the patterns as the library's context calls do.
module NeuralTangents.Tests.FiniteKwargsTests

open System.IO
open System.Text.Json.Nodes
open Expecto
open NeuralTangents
open NeuralTangents.Cli
open NeuralTangents.Tests.TestUtil

let private nt (stdin: string) = ntKernelInProcess stdin
let private values (node: JsonNode) = jsonValues node

let private answer (request: string) =
    let code, out, err = nt request
    Expect.equal code 0 err
    JsonNode.Parse(out).AsObject()

let private oneLineError (fragment: string) (request: string) =
    let code, out, err = nt request
    Expect.equal code 1 err
    Expect.equal out "" "nothing on stdout"
    Expect.stringContains err fragment "message"

let private dropArch =
    """{"layer": "serial", "layers": [{"layer": "Dense", "out_dim": 32, "W_std": 1.5, "b_std": 0.05},
                                      {"layer": "Relu"}, {"layer": "Dropout", "rate": 0.7}, {"layer": "Dense", "out_dim": 2}]}"""
let private dropNet = Stax.serial [ Stax.dense 32 1.5 (Some 0.05); Stax.relu; Stax.dropout 0.7 DropoutMode.Train; Stax.dense 2 1.0 None ]
let private x = Tensor.create [| 3; 2 |] [| 1.0; 2.0; -0.5; 0.25; 3.0; -1.0 |]
let private xJson = "[[1, 2], [-0.5, 0.25], [3, -1]]"
let private keyed (seed: int) = { ApplyContext.Empty with Rng = Some(Rng.ofSeed seed) }

// Graphs: 2 samples of 3 vertices with 2 channels, DENSE adjacencies (N, V, V).
let private graphArch =
    """{"layer": "serial", "layers": [{"layer": "Dense", "out_dim": 16}, {"layer": "Relu"}, {"layer": "Aggregate"},
                                      {"layer": "Flatten"}, {"layer": "Dense", "out_dim": 2}]}"""
let private graphNet (pattern: Tensor * Tensor) =
    NeuralTangents.Layers.Aggregation.bindPattern pattern
        (Stax.serial [ Stax.dense 16 1.0 None; Stax.relu; Stax.aggregate None 0 -1 AggregateImplementation.Dense; Stax.flatten; Stax.dense 2 1.0 None ])
let private g = Tensor.create [| 2; 3; 2 |] [| 0.5; -1.0; 1.5; 0.25; -0.75; 2.0;  1.0; 0.0; -0.5; 0.5; 0.25; -1.25 |]
let private gJson = "[[[0.5, -1], [1.5, 0.25], [-0.75, 2]], [[1, 0], [-0.5, 0.5], [0.25, -1.25]]]"
let private a1 = Tensor.create [| 2; 3; 3 |] [| 0.; 1.; 0.;  1.; 0.; 1.;  0.; 1.; 0.;   0.; 0.; 1.;  0.; 0.; 1.;  1.; 1.; 0. |]
let private a1Json = "[[[0, 1, 0], [1, 0, 1], [0, 1, 0]], [[0, 0, 1], [0, 0, 1], [1, 1, 0]]]"
let private a2 = Tensor.create [| 2; 3; 3 |] [| 1.; 1.; 0.;  0.; 1.; 0.;  0.; 0.; 1.;   0.; 2.; 0.;  0.; 0.; 0.;  1.; 0.; 1. |]
let private a2Json = "[[[1, 1, 0], [0, 1, 0], [0, 0, 1]], [[0, 2, 0], [0, 0, 0], [1, 0, 1]]]"

[<Tests>]
let tests =
    testList "FiniteKwargsTests" [
        testCase "empirical with kwargs.rng: Dropout(train) gets the key, as Empirical.kernelFnWith with splitContext" <| fun () ->
            let o = answer (sprintf """{"arch": %s, "x1": %s, "empirical": {"seed": 4}, "kwargs": {"rng": 11}}""" dropArch xJson)
            let _, p = InitFn.init 4 dropNet x.Shape
            let c1, c2 = Empirical.splitContext (keyed 11) x None
            let nngp, ntk = Empirical.kernelFnWith c1 c2 dropNet [| -1 |] [||] x None Both p
            Expect.equal (values o["nngp"]) (List.ofArray nngp.Value.Data) "nngp"
            Expect.equal (values o["ntk"]) (List.ofArray ntk.Value.Data) "ntk"
            // The key is used: another key drops other units.
            let o2 = answer (sprintf """{"arch": %s, "x1": %s, "empirical": {"seed": 4}, "kwargs": {"rng": 12}}""" dropArch xJson)
            Expect.notEqual (values o2["nngp"]) (values o["nngp"]) "another key, another draw"

        testCase "monte_carlo with kwargs.rng equals MonteCarlo.computeWithContext" <| fun () ->
            let o = answer (sprintf """{"arch": %s, "x1": %s, "monte_carlo": {"n_samples": 3, "seed": 2}, "kwargs": {"rng": 5}}""" dropArch xJson)
            let ks = MonteCarlo.computeWithContext (keyed 5) (MonteCarlo.options 2 [ 3 ]) dropNet x None Both
            let nngp, ntk = List.head ks
            Expect.equal (values o["nngp"]) (List.ofArray nngp.Value.Data) "nngp"
            Expect.equal (values o["ntk"]) (List.ofArray ntk.Value.Data) "ntk"

        testCase "empirical with kwargs.pattern: f(x1) aggregates with pattern1 and f(x2) with pattern2" <| fun () ->
            let o = answer (sprintf """{"arch": %s, "x1": %s, "x2": %s, "empirical": {"seed": 1}, "kwargs": {"pattern": [%s, %s]}}""" graphArch gJson gJson a1Json a2Json)
            let net = graphNet (a1, a2)
            let _, p = InitFn.init 1 net g.Shape
            let side (a: Tensor) = { ApplyContext.Empty with Side = Map.ofList [ "pattern", a ] }
            let nngp, ntk = Empirical.kernelFnWith (side a1) (side a2) net [| -1 |] [||] g (Some g) Both p
            Expect.equal (values o["nngp"]) (List.ofArray nngp.Value.Data) "nngp"
            Expect.equal (values o["ntk"]) (List.ofArray ntk.Value.Data) "ntk"
            // The patterns matter: pattern1 twice gives another kernel.
            let o1 = answer (sprintf """{"arch": %s, "x1": %s, "x2": %s, "empirical": {"seed": 1}, "kwargs": {"pattern": [%s, %s]}}""" graphArch gJson gJson a1Json a1Json)
            Expect.notEqual (values o1["nngp"]) (values o["nngp"]) "pattern2 is used for x2"

        testCase "monte_carlo with kwargs.pattern (x2 null) equals MonteCarlo.computeWithContext" <| fun () ->
            let o = answer (sprintf """{"arch": %s, "x1": %s, "monte_carlo": {"n_samples": 2}, "kwargs": {"pattern": [%s, %s]}}""" graphArch gJson a1Json a1Json)
            let ctx = { ApplyContext.Empty with Side = Map.ofList [ "pattern", a1 ] }
            let nngp, _ = MonteCarlo.computeWithContext ctx (MonteCarlo.options 0 [ 2 ]) (graphNet (a1, a1)) g None Both |> List.head
            Expect.equal (values o["nngp"]) (List.ofArray nngp.Value.Data) "nngp"

        testCase "kwargs the finite kernels cannot take are one-line errors saying why" <| fun () ->
            oneLineError "mask_constant applies only to the infinite-width kernels" (sprintf """{"arch": %s, "x1": %s, "empirical": {}, "kwargs": {"mask_constant": 0}}""" dropArch xJson)
            oneLineError "rng (the random key of apply_fn" (sprintf """{"arch": %s, "x1": %s, "kwargs": {"rng": 3}}""" dropArch xJson)
            oneLineError "rng must be an integer seed" (sprintf """{"arch": %s, "x1": %s, "empirical": {}, "kwargs": {"rng": "a"}}""" dropArch xJson)
            oneLineError "two different patterns for x1 and x2 is not supported" (sprintf """{"arch": %s, "x1": %s, "x2": %s, "monte_carlo": {"n_samples": 2}, "kwargs": {"pattern": [%s, %s]}}""" graphArch gJson gJson a1Json a2Json)
            oneLineError "batch_size 1 with kwargs rng or pattern" (sprintf """{"arch": %s, "x1": %s, "empirical": {"batch_size": 1}, "kwargs": {"rng": 3}}""" dropArch xJson)
            oneLineError "random key" (sprintf """{"arch": %s, "x1": %s, "empirical": {}}""" dropArch xJson)
    ]
