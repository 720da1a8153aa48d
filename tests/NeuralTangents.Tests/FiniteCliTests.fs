/// nt kernel with "monte_carlo" and "empirical": finite networks through the CLI give the library's numbers.
module NeuralTangents.Tests.FiniteCliTests

open System
open System.IO
open System.Text.Json.Nodes
open Expecto
open NeuralTangents
open NeuralTangents.Cli
open NeuralTangents.Tests.TestUtil

let private nt (stdin: string) = ntKernelInProcess stdin
let private values (node: JsonNode) = jsonValues node

let rec private shape (node: JsonNode) : int list =
    match node with
    | :? JsonArray as a -> a.Count :: (if a.Count = 0 then [] else shape a[0])
    | _ -> []

let private arch =
    """{"layer": "serial", "layers": [{"layer": "Dense", "out_dim": 16, "W_std": 1.5, "b_std": 0.05},
                                      {"layer": "Relu"}, {"layer": "Dense", "out_dim": 2}]}"""
let private net = Stax.serial [ Stax.dense 16 1.5 (Some 0.05); Stax.relu; Stax.dense 2 1.0 None ]
let private x = Tensor.create [| 3; 2 |] [| 1.0; 2.0; -0.5; 0.25; 3.0; -1.0 |]
let private xJson = "[[1, 2], [-0.5, 0.25], [3, -1]]"

let private answer (request: string) =
    let code, out, err = nt request
    Expect.equal code 0 err
    JsonNode.Parse(out).AsObject()

let private oneLineError (fragment: string) (request: string) =
    let code, out, err = nt request
    Expect.equal code 1 err
    Expect.equal out "" "nothing on stdout"
    Expect.stringStarts err "nt: " "one line"
    Expect.stringContains err fragment "message"

[<Tests>]
let tests =
    testList "FiniteCliTests" [
        testCase "monte_carlo with one count equals MonteCarlo.kernelFn" <| fun () ->
            let o = answer (sprintf """{"arch": %s, "x1": %s, "monte_carlo": {"n_samples": 5, "seed": 3}}""" arch xJson)
            let nngp, ntk = MonteCarlo.kernelFn net 3 5 x None Both
            Expect.equal (values o["nngp"]) (List.ofArray nngp.Value.Data) "nngp"
            Expect.equal (values o["ntk"]) (List.ofArray ntk.Value.Data) "ntk"
            Expect.equal (shape o["ntk"]) [ 3; 3 ] "shape"
            Expect.isNull o["cov1"] "no cov1 for finite kernels"

        testCase "monte_carlo with a list of counts: a leading axis, one estimate per count" <| fun () ->
            let o = answer (sprintf """{"arch": %s, "x1": %s, "get": "ntk", "monte_carlo": {"n_samples": [2, 4], "seed": 1}}""" arch xJson)
            Expect.equal (shape o["ntk"]) [ 2; 3; 3 ] "shape"
            Expect.isNull o["nngp"] "get ntk"
            let per = MonteCarlo.computeWith (MonteCarlo.options 1 [ 2; 4 ]) net x None Ntk
            Expect.equal (values o["ntk"]) (per |> List.collect (fun (_, t) -> List.ofArray t.Value.Data)) "ntk per count"

        testCase "empirical: the network drawn from the seed, with trace_axes" <| fun () ->
            let o = answer (sprintf """{"arch": %s, "x1": %s, "empirical": {"seed": 7, "trace_axes": []}}""" arch xJson)
            let _, p = InitFn.init 7 net x.Shape
            let nngp, ntk = Empirical.kernelFn net [||] [||] x None Both p
            Expect.equal (shape o["ntk"]) [ 3; 3; 2; 2 ] "full kernel shape"
            Expect.equal (values o["ntk"]) (List.ofArray ntk.Value.Data) "ntk"
            Expect.equal (values o["nngp"]) (List.ofArray nngp.Value.Data) "nngp"

        testCase "empirical: a bare axis is a list of one (neural_tangents' Axes = int | Sequence[int])" <| fun () ->
            let ask (axes: string) = answer (sprintf """{"arch": %s, "x1": %s, "empirical": {"seed": 7, "trace_axes": %s, "diagonal_axes": %s}}""" arch xJson axes (if axes = "-1" then "0" else "[0]"))
            let bare, listed = ask "-1", ask "[-1]"
            let _, p = InitFn.init 7 net x.Shape
            let _, ntk = Empirical.kernelFn net [| -1 |] [| 0 |] x None Ntk p
            Expect.equal (values bare["ntk"]) (List.ofArray ntk.Value.Data) "ntk"
            Expect.equal (values bare["ntk"]) (values listed["ntk"]) "bare = listed"

        testCase "monte_carlo with out: the answer names .npy files holding the inline answer's numbers" <| fun () ->
            let dir = Directory.CreateTempSubdirectory("nt-finite-out").FullName
            try
                let req (extra: string) = sprintf """{"arch": %s, "x1": %s, "monte_carlo": {"n_samples": [1, 3], "seed": 4}%s}""" arch xJson extra
                let inline' = answer (req "")
                let prefix = Path.Combine(dir, "mc")
                let o = answer (req (sprintf ", \"out\": %s" (JsonValue.Create(prefix).ToJsonString())))
                for name in [ "nngp"; "ntk" ] do
                    let path = o[name].GetValue<string>()
                    Expect.equal path (prefix + "." + name + ".npy") "the file is named in the answer"
                    let t = Npy.read path
                    Expect.equal (List.ofArray t.Shape) (shape inline'[name]) (name + " shape")
                    Expect.equal (List.ofArray t.Data) (values inline'[name]) (name + ": the inline numbers, bit for bit")
                Expect.isTrue (o["elapsed_ms"].GetValue<float>() >= 0.0) "elapsed_ms"
                // A directory where a file should go: one line, nothing on stdout, the other file not replaced.
                Directory.CreateDirectory(Path.Combine(dir, "bad.ntk.npy")) |> ignore
                oneLineError "is a directory" (req (sprintf ", \"out\": %s" (JsonValue.Create(Path.Combine(dir, "bad")).ToJsonString())))
                Expect.isFalse (File.Exists(Path.Combine(dir, "bad.nngp.npy"))) "no file written when one cannot be"
            finally
                Directory.Delete(dir, true)

        testCase "bad finite requests are one-line errors naming the key" <| fun () ->
            oneLineError "n_samples must be ≥ 1, got 0" (sprintf """{"arch": %s, "x1": %s, "monte_carlo": {"n_samples": [3, 0]}}""" arch xJson)
            oneLineError "monte_carlo: unknown key \"samples\"" (sprintf """{"arch": %s, "x1": %s, "monte_carlo": {"samples": 3}}""" arch xJson)
            oneLineError "give one of them, not both" (sprintf """{"arch": %s, "x1": %s, "monte_carlo": {"n_samples": 3}, "empirical": {}}""" arch xJson)
            oneLineError "remove \"kwargs\"" (sprintf """{"arch": %s, "x1": %s, "empirical": {}, "kwargs": {"diagonal_batch": false}}""" arch xJson)
            oneLineError "n_samples must be an integer of at most 2147483647 in magnitude, got 1e12" (sprintf """{"arch": %s, "x1": %s, "monte_carlo": {"n_samples": 1e12}}""" arch xJson)
            oneLineError "seed must be an integer of at most 2147483647 in magnitude" (sprintf """{"arch": %s, "x1": %s, "empirical": {"seed": 1180591620717411303424}}""" arch xJson)
            oneLineError "seed must be an integer, got 1.5" (sprintf """{"arch": %s, "x1": %s, "empirical": {"seed": 1.5}}""" arch xJson)
            oneLineError "remove them (monte_carlo takes its own" (sprintf """{"arch": %s, "x1": %s, "monte_carlo": {"n_samples": 2}, "memory_gb": 1}""" arch xJson)
            oneLineError "trace_axes: axis 3 is out of range" (sprintf """{"arch": %s, "x1": %s, "empirical": {"trace_axes": [3]}}""" arch xJson)
            oneLineError "axis 1 is in both trace_axes [-1] and diagonal_axes [-1]" (sprintf """{"arch": %s, "x1": %s, "monte_carlo": {"n_samples": 2, "trace_axes": [-1], "diagonal_axes": [-1]}}""" arch xJson)
            oneLineError "\"kwargs\": {\"rng\": 0}" (sprintf """{"arch": {"layer": "serial", "layers": [{"layer": "Dense", "out_dim": 4}, {"layer": "Dropout", "rate": 0.5, "mode": "train"}]}, "x1": %s, "empirical": {"seed": 0}}""" xJson)
    ]
