/// `nt predict`, run in-process: answers checked against Predict.gradientDescentMseEnsemble called directly, shapes
/// of the answer, and bad requests ending in one "nt: " line.
module NeuralTangents.Tests.PredictCliTests

open System
open System.IO
open System.Text.Json.Nodes
open NUnit.Framework
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

let private isEq (expected: 'a) = Is.EqualTo(box expected)

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

[<Test>]
let ``the example request gives the ensemble predictor's numbers exactly`` () =
    let code, out, err = nt [ "predict"; Path.Combine(repoRoot, "examples", "predict.json") ] ""
    Assert.That(code, Is.EqualTo 0, err)
    let r = JsonNode.Parse out
    let direct = Predict.gradientDescentMseEnsemble (KernelFn.compute net) xTrain yTrain 1.0 1e-4 false None (Some xTest) Both true
    // Same computation, doubles printed in round-trip form: equal to the last bit.
    for name, kind in [ "nngp", PredictGet.Nngp; "ntk", PredictGet.Ntk ] do
        Assert.That(values (at r name "mean"), isEq(List.ofArray direct[kind].Mean.Data), name + " mean")
        Assert.That(values (at r name "cov"), isEq(List.ofArray direct[kind].Covariance.Value.Data), name + " cov")
    Assert.That(r.["elapsed_ms"].GetValue<float>(), Is.GreaterThanOrEqualTo 0.0)

[<Test>]
let ``a list of times adds a leading time axis, a single time does not`` () =
    let _, out, err = nt [ "predict" ] (request """, "t": [0, 1, 10], "compute_cov": true, "get": "ntk" """)
    let r = JsonNode.Parse out
    Assert.That(shape (at r "ntk" "mean"), isEq [ 3; 2; 1 ], err)
    Assert.That(shape (at r "ntk" "cov"), isEq [ 3; 2; 2 ])
    Assert.That(r.["nngp"], Is.Null)
    // t = 0 is the prior: zero mean (arXiv:1902.06720, f(0) has mean zero).
    Assert.That(values (at r "ntk" "mean") |> List.take 2 |> List.forall (fun v -> v = 0.0), Is.True)
    let _, out1, _ = nt [ "predict" ] (request """, "t": 10, "get": "ntk" """)
    let r1 = JsonNode.Parse out1
    Assert.That(shape (at r1 "ntk" "mean"), isEq [ 2; 1 ])
    Assert.That(values (at r1 "ntk" "mean"), isEq(values (at r "ntk" "mean") |> List.skip 4))

[<Test>]
let ``a 1-D y_train gives 1-D means and the training set is used when x_test is absent`` () =
    let text =
        """{"arch": {"layer": "serial", "layers": [{"layer": "Dense", "out_dim": 8}, {"layer": "Erf"}, {"layer": "Dense", "out_dim": 1}]},
            "x_train": [[1, 0], [0, 1], [1, 1]], "y_train": [1, -1, 0.5], "get": "nngp"}"""
    let code, out, err = nt [ "predict" ] text
    Assert.That(code, Is.EqualTo 0, err)
    let r = JsonNode.Parse out
    Assert.That(shape (at r "nngp" "mean"), isEq [ 3 ])
    // On the training set at t = ∞ without a ridge the posterior mean interpolates the targets.
    assertClose "train mean = y" 1e-9 [| 1.0; -1.0; 0.5 |] (values (at r "nngp" "mean") |> List.toArray)

[<Test>]
let ``out writes .npy files next to the request`` () =
    let dir = Path.Combine(Path.GetTempPath(), "nt-predict-" + Guid.NewGuid().ToString("N"))
    Directory.CreateDirectory dir |> ignore
    try
        let path = Path.Combine(dir, "req.json")
        File.WriteAllText(path, request """, "compute_cov": true, "out": "res" """)
        let code, out, err = nt [ "predict"; path ] ""
        Assert.That(code, Is.EqualTo 0, err)
        let mean = Npy.read (Path.Combine(dir, "res.ntk.mean.npy"))
        Assert.That(mean.Shape, isEq [| 2; 1 |])
        Assert.That(File.Exists(Path.Combine(dir, "res.nngp.cov.npy")), Is.True)
        Assert.That(out, Does.Contain "res.ntk.mean.npy")
    finally
        Directory.Delete(dir, true)

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
    |> List.map (fun (text, fragment) -> TestCaseData(text, fragment))

[<TestCaseSource(nameof badRequests)>]
let ``a bad request fails with one line naming the problem`` (text: string, fragment: string) =
    let code, out, err = nt [ "predict" ] text
    Assert.That(code, Is.Not.EqualTo 0)
    Assert.That(out, Is.Empty)
    Assert.That(err, Does.StartWith "nt: ")
    Assert.That(err.TrimEnd('\n').Split('\n').Length, Is.EqualTo 1, err)
    Assert.That(err, Does.Contain fragment)
    Assert.That(err, Does.Not.Contain "   at ")

[<Test>]
let ``predict --help documents the request`` () =
    let code, out, _ = nt [ "predict"; "--help" ] ""
    Assert.That(code, Is.EqualTo 0)
    Assert.That(out, Does.Contain "x_train")
    Assert.That(out, Does.Contain "compute_cov")
