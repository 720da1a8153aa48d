/// `nt predict`, run in-process: answers checked against Predict.gradientDescentMseEnsemble called directly, shapes
/// of the answer, and bad requests ending in one "nt: " line.
module NeuralTangents.Tests.PredictCliTests

open System
open System.IO
open System.Text.Json.Nodes
open Expecto
open NeuralTangents
open NeuralTangents.Cli
open NeuralTangents.Tests.TestUtil

let private nt (argv: string list) (stdin: string) =
    use out = new StringWriter()
    use err = new StringWriter()
    let code = Cli.run (List.toArray argv) (new StringReader(stdin)) out err
    code, out.ToString(), err.ToString()

let rec private values (node: JsonNode) : float list =
    match node with
    | :? JsonArray as a -> a |> Seq.toList |> List.collect values
    | v -> [ v.GetValue<float>() ]

/// r[a][b] without F#'s ambiguity of indexers in argument position.
let private at (r: JsonNode) (a: string) (b: string) = r.[a].[b]

let rec private shape (node: JsonNode) : int list =
    match node with
    | :? JsonArray as a -> a.Count :: (if a.Count > 0 then shape a[0] else [])
    | _ -> []

/// The network and data of examples/predict.json, written with the F# API (not through the JSON codec).
let private net = Stax.serial [ Stax.dense 512 1.5 (Some 0.05); Stax.relu; Stax.dense 1 1.5 (Some 0.05) ]
let private xTrain = Tensor.ofJagged [| [| -1.0; 0.5 |]; [| -0.5; -0.2 |]; [| 0.0; 0.3 |]; [| 0.5; 0.9 |]; [| 1.0; -0.4 |] |]
let private yTrain = Tensor.ofJagged [| [| 0.8 |]; [| 0.1 |]; [| -0.2 |]; [| 0.4 |]; [| 1.1 |] |]
let private xTest = Tensor.ofJagged [| [| -0.75; 0.1 |]; [| 0.25; 0.6 |] |]

let private request (extra: string) =
    sprintf """{"arch": {"layer": "serial", "layers": [{"layer": "Dense", "out_dim": 512, "W_std": 1.5, "b_std": 0.05},
                {"layer": "Relu"}, {"layer": "Dense", "out_dim": 1, "W_std": 1.5, "b_std": 0.05}]},
                "x_train": [[-1.0, 0.5], [-0.5, -0.2], [0.0, 0.3], [0.5, 0.9], [1.0, -0.4]],
                "y_train": [[0.8], [0.1], [-0.2], [0.4], [1.1]], "x_test": [[-0.75, 0.1], [0.25, 0.6]]%s}""" extra

let private badRequests =
    [ request """, "learning_rate": -1 """, "learning_rate"
      request """, "t": [-1] """, "t:"
      request """, "colour": 1 """, "unknown key \"colour\""
      request """, "diag_reg": "big" """, "diag_reg"
      """{"arch": {"layer": "Dense", "out_dim": 1}, "x_train": [[1, 2], [3, 4]], "y_train": [1, 2], "x_test": [[1, 2, 3]]}""",
      "x_test: has shape (1, 3) but x_train has (2, 2)"
      """{"arch": {"layer": "Dense", "out_dim": 1}, "x_train": [[1, 2]], "y_train": [[1], [2]]}""", "y_train"
      """{"arch": {"layer": "Dense", "out_dim": 1}, "x_train": [[1, 2]]}""", "y_train"
      // Two identical training inputs make the kernel singular: at t = ∞ this needs a ridge.
      """{"arch": {"layer": "serial", "layers": [{"layer": "Dense", "out_dim": 4}, {"layer": "Relu"}, {"layer": "Dense", "out_dim": 1}]},
          "x_train": [[1, 2], [1, 2]], "y_train": [[1], [2]], "x_test": [[0, 1]]}""", "diag_reg" ]

[<Tests>]
let tests =
    testList "PredictCliTests" [
        testCase "the example request gives the ensemble predictor's numbers exactly" <| fun () ->
            let code, out, err = nt [ "predict"; Path.Combine(repoRoot, "examples", "predict.json") ] ""
            Expect.equal code 0 err
            let r = JsonNode.Parse out
            let direct = Predict.gradientDescentMseEnsemble (KernelFn.compute net) xTrain yTrain 1.0 1e-4 false None (Some xTest) Both true
            // Same computation, doubles printed in round-trip form: equal to the last bit.
            for name, kind in [ "nngp", PredictGet.Nngp; "ntk", PredictGet.Ntk ] do
                Expect.equal (values (at r name "mean")) (List.ofArray direct[kind].Mean.Data) (name + " mean")
                Expect.equal (values (at r name "cov")) (List.ofArray direct[kind].Covariance.Value.Data) (name + " cov")
            Expect.isGreaterThanOrEqual (r.["elapsed_ms"].GetValue<float>()) 0.0 "r.[\"elapsed_ms\"].GetValue<float>()"

        testCase "a list of times adds a leading time axis, a single time does not" <| fun () ->
            let _, out, err = nt [ "predict" ] (request """, "t": [0, 1, 10], "compute_cov": true, "get": "ntk" """)
            let r = JsonNode.Parse out
            Expect.equal (shape (at r "ntk" "mean")) [ 3; 2; 1 ] err
            Expect.equal (shape (at r "ntk" "cov")) [ 3; 2; 2 ] "shape (at r \"ntk\" \"cov\")"
            Expect.isNull (r.["nngp"]) "r.[\"nngp\"]"
            // t = 0 is the prior: zero mean (arXiv:1902.06720, f(0) has mean zero).
            Expect.isTrue (values (at r "ntk" "mean") |> List.take 2 |> List.forall (fun v -> v = 0.0)) "values (at r \"ntk\" \"mean\") |> List.take 2 |> List.forall (fun v -> v = 0.0)"
            let _, out1, _ = nt [ "predict" ] (request """, "t": 10, "get": "ntk" """)
            let r1 = JsonNode.Parse out1
            Expect.equal (shape (at r1 "ntk" "mean")) [ 2; 1 ] "shape (at r1 \"ntk\" \"mean\")"
            Expect.equal (values (at r1 "ntk" "mean")) (values (at r "ntk" "mean") |> List.skip 4) "values (at r1 \"ntk\" \"mean\")"

        testCase "a 1-D y_train gives 1-D means and the training set is used when x_test is absent" <| fun () ->
            let text =
                """{"arch": {"layer": "serial", "layers": [{"layer": "Dense", "out_dim": 8}, {"layer": "Erf"}, {"layer": "Dense", "out_dim": 1}]},
                    "x_train": [[1, 0], [0, 1], [1, 1]], "y_train": [1, -1, 0.5], "get": "nngp"}"""
            let code, out, err = nt [ "predict" ] text
            Expect.equal code 0 err
            let r = JsonNode.Parse out
            Expect.equal (shape (at r "nngp" "mean")) [ 3 ] "shape (at r \"nngp\" \"mean\")"
            // On the training set at t = ∞ without a ridge the posterior mean interpolates the targets.
            assertClose "train mean = y" 1e-9 [| 1.0; -1.0; 0.5 |] (values (at r "nngp" "mean") |> List.toArray)

        testCase "out writes .npy files next to the request" <| fun () ->
            let dir = Path.Combine(Path.GetTempPath(), "nt-predict-" + Guid.NewGuid().ToString("N"))
            Directory.CreateDirectory dir |> ignore
            try
                let path = Path.Combine(dir, "req.json")
                File.WriteAllText(path, request """, "compute_cov": true, "out": "res" """)
                let code, out, err = nt [ "predict"; path ] ""
                Expect.equal code 0 err
                let mean = Npy.read (Path.Combine(dir, "res.ntk.mean.npy"))
                Expect.equal mean.Shape [| 2; 1 |] "mean.Shape"
                Expect.isTrue (File.Exists(Path.Combine(dir, "res.nngp.cov.npy"))) "File.Exists(Path.Combine(dir, \"res.nngp.cov.npy\"))"
                Expect.stringContains out "res.ntk.mean.npy" "out"
            finally
                Directory.Delete(dir, true)

        badRequests
        |> testRows "a bad request fails with one line naming the problem" (fun (text: string, fragment: string) ->
            let code, out, err = nt [ "predict" ] text
            Expect.notEqual code 0 "code"
            Expect.equal out "" "out"
            Expect.stringStarts err "nt: " "err"
            Expect.equal (err.TrimEnd('\n').Split('\n').Length) 1 err
            Expect.stringContains err fragment "err"
            stringLacks err "   at " "err")

        testCase "predict --help documents the request" <| fun () ->
            let code, out, _ = nt [ "predict"; "--help" ] ""
            Expect.equal code 0 "code"
            Expect.stringContains out "x_train" "out"
            Expect.stringContains out "compute_cov" "out"
    ]
