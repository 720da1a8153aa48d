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
      request """, "out": "res", "overwrite": "yes" """, "overwrite: must be true or false, got \"yes\""
      request """, "overwrites": true """, "out, overwrite"
      // Targets at the edge of float64: the means overflow, and y_train is the cause named (not diag_reg).
      (request "").Replace("[[0.8], [0.1], [-0.2], [0.4], [1.1]]", "[[1e308], [1e308], [-1e308], [1e308], [1e308]]"),
      "nngp.mean has a non-finite value (nan) at index [0, 0]: y_train's entries reach 1e+308"
      """{"arch": {"layer": "Dense", "out_dim": 1}, "x_train": [[1, 2], [3, 4]], "y_train": [1, 2], "x_test": [[1, 2, 3]]}""",
      "x_test: has shape (1, 3) but x_train has (2, 2)"
      """{"arch": {"layer": "Dense", "out_dim": 1}, "x_train": [[1, 2]], "y_train": [[1], [2]]}""", "y_train"
      """{"arch": {"layer": "Dense", "out_dim": 1}, "x_train": [[1, 2]]}""", "y_train"
      // Two identical training inputs make the kernel singular: at t = ∞ this needs a ridge.
      """{"arch": {"layer": "serial", "layers": [{"layer": "Dense", "out_dim": 4}, {"layer": "Relu"}, {"layer": "Dense", "out_dim": 1}]},
          "x_train": [[1, 2], [1, 2]], "y_train": [[1], [2]], "x_test": [[0, 1]]}""", "diag_reg" ]

/// Bad input ends in one "nt: " line holding the fragment, a non-zero exit code and nothing on stdout.
let private assertOneLineError (fragment: string) (code: int, out: string, err: string) =
    Expect.equal code 1 err
    Expect.equal out "" "nothing on stdout"
    Expect.equal (err.Split('\n', StringSplitOptions.RemoveEmptyEntries).Length) 1 err
    Expect.stringStarts err "nt: " "err"
    Expect.stringContains err fragment "err"

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

        testCase "out: an existing answer file is refused before any work and kept; \"overwrite\": true replaces it" <| fun () ->
            let dir = Path.Combine(Path.GetTempPath(), "nt-predict-" + Guid.NewGuid().ToString("N"))
            Directory.CreateDirectory dir |> ignore
            try
                let path = Path.Combine(dir, "req.json")
                let cov = Path.Combine(dir, "res.nngp.cov.npy")
                File.WriteAllText(cov, "my notes, not an npy")
                File.WriteAllText(path, request """, "compute_cov": true, "out": "res" """)
                nt [ "predict"; path ] "" |> assertOneLineError "res.nngp.cov.npy already exists and would be replaced"
                Expect.equal (File.ReadAllText cov) "my notes, not an npy" "kept byte for byte"
                Expect.equal (Directory.GetFiles dir |> Array.map Path.GetFileName |> Array.sort) [| "req.json"; "res.nngp.cov.npy" |] "nothing written"
                // The finished answer of another request (no covariance, a ridge) is refused the same way and kept.
                File.Delete cov
                File.WriteAllText(path, request """, "diag_reg": 0.1, "out": "res" """)
                let code, _, err = nt [ "predict"; path ] ""
                Expect.equal code 0 err
                let earlier = File.ReadAllBytes(Path.Combine(dir, "res.ntk.mean.npy"))
                File.WriteAllText(path, request """, "compute_cov": true, "out": "res" """)
                nt [ "predict"; path ] "" |> assertOneLineError "\"overwrite\": true"
                Expect.equal (File.ReadAllBytes(Path.Combine(dir, "res.ntk.mean.npy"))) earlier "the earlier answer is intact"
                Expect.isFalse (File.Exists cov) "no file of the refused request"
                File.WriteAllText(path, request """, "compute_cov": true, "out": "res", "overwrite": true """)
                let code, _, err = nt [ "predict"; path ] ""
                Expect.equal code 0 err
                // The replaced mean is the one without a ridge: that of the same request without "out".
                let code, out, err = nt [ "predict" ] (request """, "compute_cov": true """)
                Expect.equal code 0 err
                let inline' = values (at (JsonNode.Parse out) "ntk" "mean") |> List.toArray
                Expect.equal (Npy.read (Path.Combine(dir, "res.ntk.mean.npy"))).Data inline' "replaced by this request's answer"
                Expect.notEqual (File.ReadAllBytes(Path.Combine(dir, "res.ntk.mean.npy"))) earlier "which differs from the earlier one"
                Expect.isTrue (File.Exists cov) "and the covariance written"
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

        // ---- Issue #6, nt predict items: each of these failed before its fix ----

        testCase "(6) the network is checked even where the answer is y_train (x_test and t null)" <| fun () ->
            let ask (arch: string) (x: string) =
                nt [ "predict" ] (sprintf """{"arch": %s, "x_train": %s, "y_train": [1, 2]}""" arch x)
            let dense = """{"layer": "Dense", "out_dim": 1}"""
            ask (sprintf """{"layer": "serial", "layers": [{"layer": "Relu"}, %s]}""" dense) "[[1, 2], [3, 4]]"
            |> assertOneLineError "Relu"
            ask """{"layer": "FanOut", "num": 2}""" "[[1, 2], [3, 4]]" |> assertOneLineError "2 branches"
            // A spatial output is computed in neural_tangents' full layout (N1, N2, H, H').
            ask dense "[[[1, 2]], [[3, 4]]]" |> assertOneLineError "shape (1, 1, 1, 1)"

        testCase "(6) null inside a list of times is an error that names the fix" <| fun () ->
            nt [ "predict" ] (request """, "t": [null, 1e9] """)
            |> assertOneLineError "t: entry 0 is null; inside a list use Infinity or \"inf\""

        testCase "(6) empty training and test sets are refused up front" <| fun () ->
            let dir = Path.Combine(Path.GetTempPath(), "nt-predict-" + Guid.NewGuid().ToString("N"))
            Directory.CreateDirectory dir |> ignore
            try
                Npy.write (Path.Combine(dir, "x0.npy")) (Tensor.create [| 0; 2 |] [||])
                Npy.write (Path.Combine(dir, "y0.npy")) (Tensor.create [| 0 |] [||])
                let run (body: string) =
                    File.WriteAllText(Path.Combine(dir, "r.json"), body)
                    nt [ "predict"; Path.Combine(dir, "r.json") ] ""
                run """{"arch": {"layer": "Dense", "out_dim": 1}, "x_train": "x0.npy", "y_train": "y0.npy"}"""
                |> assertOneLineError "x_train: has an empty axis (shape (0, 2))"
                run """{"arch": {"layer": "Dense", "out_dim": 1}, "x_train": [[1, 2]], "y_train": [1], "x_test": "x0.npy"}"""
                |> assertOneLineError "x_test: has an empty axis (shape (0, 2))"
            finally
                Directory.Delete(dir, true)

        testCase "(13) Infinity (Python's json) and \"inf\" in a list of times are t = infinity" <| fun () ->
            let code, out, err = nt [ "predict" ] (request """, "t": [Infinity, "inf", "Infinity", 0], "diag_reg": 1e-4 """)
            Expect.equal code 0 err
            let code0, out0, err0 = nt [ "predict" ] (request """, "diag_reg": 1e-4 """)
            Expect.equal code0 0 err0
            let r, r0 = JsonNode.Parse out, JsonNode.Parse out0
            Expect.equal (shape (at r "ntk" "mean")) [ 4; 2; 1 ] "a time axis of 4"
            for name in [ "nngp"; "ntk" ] do
                let atInf = values (at r0 name "mean")
                for i in 0 .. 2 do
                    Expect.equal (values (at r name "mean").[i]) atInf (sprintf "%s mean at t[%d] = ∞" name i)
            Expect.equal (values (at r "ntk" "mean").[3]) [ 0.0; 0.0 ] "t = 0: the untrained ensemble"
            nt [ "predict" ] (request """, "t": ["-inf"] """) |> assertOneLineError "≥ 0"

        testCase "(14) get \"ntkgp\" answers neural_tangents' NTKGP posterior, for t = infinity only" <| fun () ->
            let code, out, err = nt [ "predict" ] (request """, "get": ["ntkgp", "nngp"], "compute_cov": true, "diag_reg": 1e-4 """)
            Expect.equal code 0 err
            let r = JsonNode.Parse out
            Expect.isNotNull r["nngp"] "nngp"
            let ntk (x1: Tensor) (x2: Tensor option) = KernelMatrices.ofNtk (KernelFn.compute net x1 x2 Both).Ntk.Value
            let gp = Predict.gpInference (ntk xTrain None) yTrain 1e-4 false [ PredictGet.NtkGp ]
            let g = (gp (Some(ntk xTest (Some xTrain))) (Some(ntk xTest None)))[PredictGet.NtkGp]
            Expect.equal (values (at r "ntkgp" "mean")) (List.ofArray g.Mean.Data) "ntkgp mean"
            Expect.equal (values (at r "ntkgp" "cov")) (List.ofArray g.Covariance.Value.Data) "ntkgp cov"
            nt [ "predict" ] (request """, "get": "ntkgp", "t": 1 """) |> assertOneLineError "t = infinity"
            let _, help, _ = nt [ "predict"; "--help" ] ""
            Expect.stringContains help "ntkgp" "nt predict --help"
    ]
