/// The `nt` command line, run in-process through Cli.run: answers checked against KernelFn.compute called directly,
/// and every class of bad input checked to end in one "nt: " line and a non-zero exit code.
module NeuralTangents.Tests.CliTests

open System
open System.IO
open System.Globalization
open System.Text.Json
open System.Text.Json.Nodes
open Expecto
open NeuralTangents
open NeuralTangents.Cli
open NeuralTangents.Tests.TestUtil

let private stringContains (fragment: string, text: string) = Expect.stringContains text fragment "the text"

/// Runs nt with arguments and stdin text; returns (exit code, stdout, stderr).
let private nt (argv: string list) (stdin: string) =
    use out = new StringWriter()
    use err = new StringWriter()
    let code = Cli.run (List.toArray argv) (new StringReader(stdin)) out err
    code, out.ToString(), err.ToString()

/// A fresh temporary folder, deleted by the caller.
let private tempDir () =
    let d = Path.Combine(Path.GetTempPath(), "nt-cli-" + Guid.NewGuid().ToString("N"))
    Directory.CreateDirectory d |> ignore
    d

/// Flattens a nested JSON list to its numbers, row-major.
let rec private values (node: JsonNode) : float list =
    match node with
    | :? JsonArray as a -> a |> Seq.toList |> List.collect values
    | v -> [ v.GetValue<float>() ]

let private bits (xs: float seq) = xs |> Seq.map BitConverter.DoubleToInt64Bits |> Seq.toArray

let private mlpArch =
    """{"layer": "serial", "layers": [{"layer": "Dense", "out_dim": 512, "W_std": 1.5, "b_std": 0.05},
                                      {"layer": "Relu"}, {"layer": "Dense", "out_dim": 1}]}"""

/// The same network built with the F# API, not through the JSON codec.
let private mlp = Stax.serial [ Stax.dense 512 1.5 (Some 0.05); Stax.relu; Stax.dense 1 1.0 None ]

// ---- Bad input: exit code ≠ 0, exactly one line on stderr starting "nt: ", no stack trace, nothing on stdout ----

let private assertOneLineError (expectedCode: int) (fragment: string) (code: int, out: string, err: string) =
    Expect.equal code expectedCode err
    Expect.equal out "" "nothing on stdout"
    let lines = err.Split('\n', StringSplitOptions.RemoveEmptyEntries)
    Expect.equal lines.Length 1 err
    Expect.stringStarts (lines[0]) "nt: " "lines[0]"
    stringLacks err "   at " "err"
    stringContains(fragment, err)

let private x1ok = "[[1, 2, 3], [4, 5, 6]]"

[<Tests>]
let tests =
    testList "CliTests" [
        // The CLI computes with KernelFn.compute and prints doubles in round-trip form ("R"), so its numbers must equal a
        // direct call bit for bit: any difference is a bug in parsing inputs or printing outputs, not round-off.

        testCase "the example request gives KernelFn.compute's numbers exactly" <| fun () ->
            let code, out, err = nt [ "kernel"; Path.Combine(repoRoot, "examples", "mlp.json") ] ""
            Expect.equal code 0 err
            Expect.equal err "" "err"
            let r = JsonNode.Parse out
            let x1 = Tensor.ofJagged [| [| 0.1; 0.2; 0.3 |]; [| -0.5; 0.4; 1.0 |]; [| 1.0; 0.0; -1.0 |]; [| 0.3; -0.7; 0.2 |] |]
            let k = KernelFn.compute mlp x1 None Both
            Expect.equal (bits (values r["nngp"])) (bits k.Nngp.Data) "bits (values r[\"nngp\"])"
            Expect.equal (bits (values r["ntk"])) (bits k.Ntk.Value.Data) "bits (values r[\"ntk\"])"
            Expect.equal (bits (values r["cov1"])) (bits k.Cov1.Data) "bits (values r[\"cov1\"])"
            Expect.isTrue ((r :?> JsonObject).ContainsKey "cov2" && isNull r["cov2"]) "cov2 is null without x2"
            Expect.equal ((r["nngp"] :?> JsonArray).Count) 4 "(r[\"nngp\"] :?> JsonArray).Count"
            Expect.isGreaterThanOrEqual (r["elapsed_ms"].GetValue<float>()) 0.0 "r[\"elapsed_ms\"].GetValue<float>()"

        testCase "x2 given inline gives (N1, N2) kernels and cov2" <| fun () ->
            let req = sprintf """{"arch": %s, "x1": [[1, 2], [3, 4], [5, 6]], "x2": [[0.5, -1]]}""" mlpArch
            let code, out, err = nt [ "kernel" ] req
            Expect.equal code 0 err
            let r = JsonNode.Parse out
            let k = KernelFn.compute mlp (Tensor.ofJagged [| [| 1.; 2. |]; [| 3.; 4. |]; [| 5.; 6. |] |]) (Some(Tensor.ofJagged [| [| 0.5; -1. |] |])) Both
            Expect.equal ((r["nngp"] :?> JsonArray).Count) 3 "(r[\"nngp\"] :?> JsonArray).Count"
            Expect.equal ((r["nngp"][0] :?> JsonArray).Count) 1 "(r[\"nngp\"][0] :?> JsonArray).Count"
            Expect.equal (bits (values r["nngp"])) (bits k.Nngp.Data) "bits (values r[\"nngp\"])"
            Expect.equal (bits (values r["cov2"])) (bits k.Cov2.Value.Data) "bits (values r[\"cov2\"])"

        testCase "get nngp leaves the ntk out, get ntk leaves the nngp out" <| fun () ->
            let ask (get: string) =
                let code, out, err = nt [ "kernel"; "-" ] (sprintf """{"arch": %s, "x1": [[1, 0], [0, 1]], "get": %s}""" mlpArch get)
                Expect.equal code 0 err
                JsonNode.Parse(out) :?> JsonObject
            let onlyNngp = ask "\"nngp\""
            Expect.isTrue (onlyNngp.ContainsKey "nngp" && not (onlyNngp.ContainsKey "ntk")) "onlyNngp.ContainsKey \"nngp\" && not (onlyNngp.ContainsKey \"ntk\")"
            let listNngp = ask "[\"nngp\"]"
            Expect.isTrue (listNngp.ContainsKey "nngp" && not (listNngp.ContainsKey "ntk")) "listNngp.ContainsKey \"nngp\" && not (listNngp.ContainsKey \"ntk\")"
            let onlyNtk = ask "[\"ntk\"]"
            Expect.isTrue (onlyNtk.ContainsKey "ntk" && not (onlyNtk.ContainsKey "nngp")) "onlyNtk.ContainsKey \"ntk\" && not (onlyNtk.ContainsKey \"nngp\")"
            let both = ask "[\"ntk\", \"nngp\"]"
            Expect.isTrue (both.ContainsKey "ntk" && both.ContainsKey "nngp") "both.ContainsKey \"ntk\" && both.ContainsKey \"nngp\""

        testCase "an odd number of 2-D Convs answers the spatial pairs reversed and says \"is_reversed\": true, inline and with out" <| fun () ->
            // x1: 2 images of 5×7 with 2 channels. One SAME Conv and no top keeps the spatial axes in the full layout,
            // stored (N1, N2, W, W', H, H') = (2, 2, 7, 7, 5, 5) as neural_tangents returns them; two Convs un-reverse.
            let x = randomTensor 3 2 70 |> fun t -> Tensor.create [| 2; 5; 7; 2 |] t.Data
            let nested = JsonSerializer.Serialize(Array.init 2 (fun b -> Array.init 5 (fun h -> Array.init 7 (fun w -> Array.init 2 (fun c -> x.Data[((b * 5 + h) * 7 + w) * 2 + c])))))
            let conv = """{"layer": "Conv", "out_chan": 3, "filter_shape": [3, 3], "padding": "SAME"}"""
            let dir = tempDir ()
            try
                for convs, reversed in [ 1, true; 2, false ] do
                    let arch = sprintf """{"layer": "serial", "layers": [%s]}""" (String.Join(", ", List.replicate convs conv))
                    let net = Stax.serial (List.replicate convs (Stax.conv 3 [ 3; 3 ] None Padding.Same 1.0 None))
                    let k = KernelFn.compute net x None Nngp
                    Expect.equal k.IsReversed reversed "the library's flag"
                    Expect.equal k.Nngp.Shape (if reversed then [| 2; 2; 7; 7; 5; 5 |] else [| 2; 2; 5; 5; 7; 7 |]) "stored order"
                    let inline' = sprintf """{"arch": %s, "x1": %s, "get": "nngp"}""" arch nested
                    let code, out, err = nt [ "kernel" ] inline'
                    Expect.equal code 0 err
                    let r = JsonNode.Parse(out) :?> JsonObject
                    Expect.equal (bits (values r["nngp"])) (bits k.Nngp.Data) "inline numbers"
                    let rows = r["nngp"] :?> JsonArray
                    let third = ((rows.[0] :?> JsonArray).[0] :?> JsonArray).Count
                    Expect.equal third (Array.item 2 k.Nngp.Shape) "inline third axis"
                    Expect.equal (r.ContainsKey "is_reversed") reversed "inline key"
                    if reversed then Expect.isTrue (r["is_reversed"].GetValue<bool>()) "inline value"
                    let prefix = Path.Combine(dir, sprintf "k%d" convs)
                    let code, out, err = nt [ "kernel" ] (sprintf """{"arch": %s, "x1": %s, "get": "nngp", "out": %s}""" arch nested (JsonSerializer.Serialize prefix))
                    Expect.equal code 0 err
                    let r = JsonNode.Parse(out) :?> JsonObject
                    Expect.equal (Npy.read (r["nngp"].GetValue<string>()) |> fun t -> t.Shape) k.Nngp.Shape "file shape"
                    Expect.equal (r.ContainsKey "is_reversed") reversed "out key"
            finally
                Directory.Delete(dir, true)

        testCase "npy inputs and outputs round trip through a request file's folder" <| fun () ->
            let dir = tempDir ()
            try
                let x1 = randomTensor 1 5 3
                let x2 = randomTensor 2 4 3
                Npy.write (Path.Combine(dir, "x1.npy")) x1
                Npy.write (Path.Combine(dir, "x2.npy")) x2
                let reqPath = Path.Combine(dir, "req.json")
                File.WriteAllText(reqPath, sprintf """{"arch": %s, "x1": "x1.npy", "x2": "x2.npy", "out": "k"}""" mlpArch)
                // Run from elsewhere: relative paths must resolve against the request's folder, not the current one.
                let code, out, err = nt [ "kernel"; reqPath ] ""
                Expect.equal code 0 err
                let r = JsonNode.Parse out
                let k = KernelFn.compute mlp x1 (Some x2) Both
                for name, expected in [ "nngp", k.Nngp; "ntk", k.Ntk.Value; "cov1", k.Cov1; "cov2", k.Cov2.Value ] do
                    let path = r[name].GetValue<string>()
                    Expect.equal path (Path.Combine(dir, "k." + name + ".npy")) "path"
                    let back = Npy.read path
                    Expect.equal back.Shape expected.Shape name
                    Expect.equal (bits back.Data) (bits expected.Data) name
                Expect.isGreaterThanOrEqual (r["elapsed_ms"].GetValue<float>()) 0.0 "r[\"elapsed_ms\"].GetValue<float>()"
            finally
                Directory.Delete(dir, true)

        [ "not json", "not valid JSON"
          "[1, 2]", "must be a JSON object"
          """{"x1": [[1]]}""", "missing required key \"arch\""
          """{"arch": {"layer": "Relu"}}""", "missing required key \"x1\""
          """{"arch": {"layer": "Dense", "out_dim": 1}, "x1": [[1]], "color": 3}""", "unknown key \"color\""
          """{"arch": {"layer": "Densee"}, "x1": [[1]]}""", "unknown layer 'Densee'"
          """{"arch": {"layer": "Dense", "out_dim": 1, "w_std": 2}, "x1": [[1]]}""", "unknown argument 'w_std'"
          """{"arch": {"layer": "Dense", "out_dim": 1, "W_std": -1}, "x1": [[1]]}""", "W_std"
          """{"arch": {"layer": "Dense", "out_dim": 1}, "x1": [[1, 2, 3], [4, 5]]}""", "x1: row 1 has 2 values, row 0 has 3"
          """{"arch": {"layer": "Dense", "out_dim": 1}, "x1": [[[1], [2]], [[3], [4, 5]]]}""", "x1: entry [1, 1] has 2 values, entry [0, 0] has 1"
          """{"arch": {"layer": "Dense", "out_dim": 1}, "x1": [[1, 2], 3]}""", "x1: row 1 should be a list of 2 values"
          """{"arch": {"layer": "Dense", "out_dim": 1}, "x1": [[1, "a"]]}""", "entry [0, 1] should be a number"
          """{"arch": {"layer": "Dense", "out_dim": 1}, "x1": [[1, 1e400]]}""", "not a finite float64"
          """{"arch": {"layer": "Dense", "out_dim": 1}, "x1": []}""", "empty"
          """{"arch": {"layer": "Dense", "out_dim": 1}, "x1": [[1, 2]], "x2": [[1, 2, 3]]}""", "x1 and x2 must agree"
          """{"arch": {"layer": "Dense", "out_dim": 1}, "x1": [1, 2]}""", "x1: inputs need a batch axis first"
          "", "the request is empty"
          """{"arch": {"layer": "Relu"}, "x1": [[1, 2]]}""", "Gaussian"
          """{"arch": {"layer": "Dense", "out_dim": 1}, "x1": [[1]], "get": "cov"}""", "unknown quantity \"cov\""
          """{"arch": {"layer": "Dense", "out_dim": 1}, "x1": [[1]], "get": []}""", "get: the list is empty"
          """{"arch": {"layer": "Dense", "out_dim": 1}, "x1": [[1]], "out": 5}""", "out: must be"
          """{"arch": {"layer": "Dense", "out_dim": 1}, "x1": "no-such-file.npy"}""", "no such .npy file"
          """{"arch": {"layer": "Dense", "out_dim": 1}, "x1": [[1]], "x1": [[2]]}""", "Duplicate property 'x1'"
          """{"arch": {"layer": "Dense", "layer": "Relu", "out_dim": 1}, "x1": [[1]]}""", "Duplicate property 'layer'"
          """{"arch": {"layer": "Dense", "out_dim": 1, "batch_axis": -1}, "x1": [[1]]}""", "arch: Dense: batch_axis and channel_axis are both -1; give them different axes" ]
        |> testRows "a bad request fails with one line" (fun (request: string, fragment: string) ->
            nt [ "kernel" ] request |> assertOneLineError 1 fragment)

        testCase "a missing request file fails with one line" <| fun () ->
            nt [ "kernel"; "/no/such/request.json" ] "" |> assertOneLineError 1 "no such request file: /no/such/request.json"

        testCase "a NaN in a .npy input fails with one line" <| fun () ->
            let dir = tempDir ()
            try
                Npy.write (Path.Combine(dir, "x.npy")) (Tensor.create [| 2; 2 |] [| 1.0; nan; 0.0; 1.0 |])
                File.WriteAllText(Path.Combine(dir, "r.json"), sprintf """{"arch": %s, "x1": "x.npy"}""" mlpArch)
                nt [ "kernel"; Path.Combine(dir, "r.json") ] "" |> assertOneLineError 1 "x1 has a non-finite value"
            finally
                Directory.Delete(dir, true)

        testCase "a file that is not .npy fails with one line naming it" <| fun () ->
            let dir = tempDir ()
            try
                File.WriteAllText(Path.Combine(dir, "x.npy"), "1,2,3\n4,5,6\n")
                File.WriteAllText(Path.Combine(dir, "r.json"), sprintf """{"arch": %s, "x1": "x.npy"}""" mlpArch)
                nt [ "kernel"; Path.Combine(dir, "r.json") ] "" |> assertOneLineError 1 (Path.Combine(dir, "x.npy") + ": not a .npy file")
            finally
                Directory.Delete(dir, true)

        testCase "an output prefix whose folder cannot be made fails with one line" <| fun () ->
            let dir = tempDir ()
            try
                // A file stands where the folder would be (a missing folder is created, see below).
                File.WriteAllText(Path.Combine(dir, "r.json"), sprintf """{"arch": %s, "x1": %s, "out": "r.json/k"}""" mlpArch x1ok)
                nt [ "kernel"; Path.Combine(dir, "r.json") ] "" |> assertOneLineError 1 "out: cannot write in the folder"
            finally
                Directory.Delete(dir, true)

        [ "frob", "unknown command 'frob': use kernel, predict, demo or info"
          "", "no command given"
          "kernel a.json b.json", "'nt kernel' takes one request file, got a second: 'b.json'"
          "info now", "'nt info' takes no arguments"
          "--version extra", "'nt --version' takes no arguments, got 'extra'"
          "--frob", "unknown option '--frob'"
          "demo --train", "option '--train' must be followed by <N>"
          "demo --train x", "--train: 'x' is not an integer"
          "demo --no-cnn --no-cnn", "option '--no-cnn' is given more than once"
          "demo --diag-reg abc", "--diag-reg: 'abc' is not a number"
          "demo extra", "unexpected argument 'extra' for 'nt demo'"
          "demo --frob", "unknown option '--frob' for 'nt demo'"
          "predict --bogus", "unknown option '--bogus' for 'nt predict'"
          "kernel --bogus", "unknown option '--bogus' for 'nt kernel'"
          // An unknown option before a request file is named, not the file after it.
          "kernel --fast examples/mlp.json", "unknown option '--fast' for 'nt kernel'"
          "predict --bogus examples/predict.json", "unknown option '--bogus' for 'nt predict'" ]
        |> testRows "a bad command line fails with one line and exit code 2" (fun (args: string, fragment: string) ->
            let argv = args.Split(' ', StringSplitOptions.RemoveEmptyEntries) |> List.ofArray
            nt argv "" |> assertOneLineError 2 fragment)

        // ---- Help ----

        testCase "nt --help lists the kernel command with an example" <| fun () ->
            let code, out, err = nt [ "--help" ] ""
            Expect.equal code 0 "code"
            Expect.equal err "" "err"
            stringContains("kernel", out)
            stringContains("EXAMPLE", out)

        testCase "nt demo --help and nt info --help describe their commands; -h is --help" <| fun () ->
            for args, keys in [ [ "demo"; "--help" ], [ "--dataset <digits|diabetes|all>"; "--cnn-depth <D>"; "--no-finite"; "--diag-reg <X>" ]
                                [ "info"; "-h" ], [ "USAGE: nt info"; "native BLAS/LAPACK" ]
                                [ "-h" ], [ "COMMANDS:"; "predict [<REQUEST.json>]"; "EXAMPLE" ] ] do
                let code, out, err = nt args ""
                Expect.equal code 0 (String.Join(" ", args))
                Expect.equal err "" "err"
                for key in keys do stringContains(key, out)

        testCase "demo options are read as given, each value into its own field" <| fun () ->
            let args = "demo --dataset Diabetes --train 7 --test 8 --depths 3,1 --cnn-train 9 --cnn-test 10 --cnn-depth 2 --no-cnn --diag-reg 1.5e-3 --out a/b --no-plot --no-finite"
            match CommandLine.parse (args.Split ' ') with
            | CommandLine.Demo d ->
                Expect.equal d { Dataset = Some CommandLine.Diabetes; Train = Some 7; Test = Some 8; Depths = Some "3,1"; CnnTrain = Some 9
                                 CnnTest = Some 10; CnnDepth = Some 2; NoCnn = true; DiagReg = Some 1.5e-3; Out = Some "a/b"
                                 NoPlot = true; NoFinite = true } "options"
            | other -> failwithf "expected demo, got %A" other
            match CommandLine.parse [| "demo" |] with
            | CommandLine.Demo d -> Expect.equal d.Dataset None "no option given"
            | other -> failwithf "expected demo, got %A" other
            Expect.equal (CommandLine.parse [| "kernel"; "-" |]) (CommandLine.Kernel(Some "-")) "stdin spelled -"
            Expect.equal (CommandLine.parse [| "predict" |]) (CommandLine.Predict None) "stdin"
            Expect.equal (CommandLine.parse [| "predict"; "r.json"; "--help" |]) (CommandLine.Help "predict") "help wins"

        testCase "nt kernel --help explains the request format" <| fun () ->
            let code, out, err = nt [ "kernel"; "--help" ] ""
            Expect.equal code 0 "code"
            Expect.equal err "" "err"
            for key in [ "\"arch\""; "\"x1\""; "\"x2\""; "\"get\""; "\"out\""; ".npy"; "EXAMPLE"; "elapsed_ms" ] do
                stringContains(key, out)

        // ---- JSON numbers ----

        testPropertyWithConfig (fsCheck 500) "printed doubles parse back to the same bits" <| fun (x: float) ->
            not (Double.IsFinite x)
            || BitConverter.DoubleToInt64Bits(Double.Parse(JsonArrays.formatNumber x, CultureInfo.InvariantCulture)) = BitConverter.DoubleToInt64Bits x

        testCase "ShortestDouble: ToString(\"R\")'s text wherever that reads back, and always a text that reads back" <| fun () ->
            // The independent reference is .NET's own shortest round-trip formatting; where .NET's text does not read
            // back as the same double (2^-25, checked against Python's repr), the text must be the one that does.
            let buffer = Array.zeroCreate<char> 32
            let mutable fastPath, differing = 0, 0
            let check (x: float) =
                let mine = String(buffer, 0, ShortestDouble.format x (Span buffer))
                let bits (s: string) = BitConverter.DoubleToInt64Bits(Double.Parse(s, CultureInfo.InvariantCulture))
                let theirs = x.ToString("R", CultureInfo.InvariantCulture)
                if (ShortestDouble.digits (abs x)).IsSome then fastPath <- fastPath + 1
                Expect.equal (bits mine) (BitConverter.DoubleToInt64Bits x) (sprintf "%s reads back as %s" mine (x.ToString "E17"))
                if bits theirs = BitConverter.DoubleToInt64Bits x then Expect.equal mine theirs (sprintf "text of %s" (x.ToString "E17"))
                elif mine <> theirs then differing <- differing + 1
            let rnd = Random 11
            for _ in 1 .. 100000 do
                // Exponents around the exact range (2^-51 .. 2^56) and beyond it, both signs.
                let field = 1023 - 70 + rnd.Next 150
                let x = BitConverter.Int64BitsToDouble((int64 field <<< 52) ||| rnd.NextInt64(0L, 1L <<< 52))
                check x
                check -x
                check (rnd.NextDouble() * 10.0)
            for p in -1074 .. 1023 do
                let v = Math.Pow(2.0, float p)
                for x in [ v; Math.BitIncrement v; Math.BitDecrement v ] do check x
            for p in -323 .. 308 do
                let v = Double.Parse(sprintf "1e%d" p, CultureInfo.InvariantCulture)
                for x in [ v; Math.BitIncrement v; Math.BitDecrement v ] do check x
            for x in [ 0.0; -0.0; 0.1; 0.3; 1.0 / 3.0; 2.675; 9.5; 1e15; 1e16; 1e17; 9007199254740993.0; 123456789012345680.0
                       1e-4; 1e-5; 1.5e-5; 0.00012345; Double.Epsilon; Double.MaxValue; 2.2250738585072014e-308 ] do check x
            for i in 1 .. 20000 do
                check (float i)
                check (float i / 1000.0)
                check (float i * 0.1)
            Expect.isGreaterThan fastPath 300000 "most doubles take the integer path"
            // The digit count at its boundaries: integers d (exponent 0, fixed notation below 10^17) next to powers of
            // ten and of two, against .NET's integer text.
            for d in [ for k in 0 .. 16 do for o in [ -1L; 0L; 1L ] -> pown 10L k + o ] @ [ for b in 1 .. 56 do for o in [ -1L; 0L; 1L ] -> (1L <<< b) + o ] do
                if d >= 1L && d < pown 10L 17 then
                    Expect.equal (String(buffer, 0, ShortestDouble.layout false (uint64 d) 0 (Span buffer))) (string d) (sprintf "layout of %d" d)
            Expect.equal (String(buffer, 0, ShortestDouble.format (Math.Pow(2.0, -25.0)) (Span buffer))) "2.9802322387695312E-08" "2^-25"
            Expect.isLessThan differing 10 "texts differing from .NET's where .NET's does not read back"

        testCase "tensors of rank 0 to 3 print as nested lists of their shape" <| fun () ->
            for shape in [ [||]; [| 3 |]; [| 2; 3 |]; [| 2; 1; 3 |] ] do
                let t = Tensor.create shape (Array.init (Array.fold (*) 1 shape) (fun i -> float i + 0.5))
                use w = new StringWriter()
                JsonArrays.writeTensor w 0 t
                let node = JsonNode.Parse(w.ToString())
                let back = JsonArrays.toTensor "t" node
                Expect.equal back.Shape shape "back.Shape"
                Expect.equal back.Data t.Data "back.Data"

        testCase "tensor text is the per-number ToString(\"R\") text, byte for byte (buffered writer, issue #9 item 7)" <| fun () ->
            // Reference layout written out by hand: innermost lists on one line, ", " between numbers,
            // ",\n" + indent between lists; numbers from ToString("R"), the formatting before the buffered writer.
            let r (x: float) = x.ToString("R", CultureInfo.InvariantCulture)
            let rnd = Random 7
            let special = [| 0.0; -0.0; 1.0; -1.5; Double.Epsilon; -Double.Epsilon; Double.MaxValue; Double.MinValue
                             2.2250738585072014e-308; 0.1; 1e21; 1e-7; 123456789012345680.0; 5e-324; 0.30000000000000004 |]
            let value i =
                if i < special.Length then special[i]
                else BitConverter.Int64BitsToDouble(rnd.NextInt64()) |> fun x -> if Double.IsFinite x then x else float i
            let rows, cols = 40, 3000 // 120000 numbers: many buffer flushes
            let t = Tensor.create [| rows; cols |] (Array.init (rows * cols) value)
            let expected =
                let lines = [ for i in 0 .. rows - 1 -> "    [" + String.Join(", ", [| for j in 0 .. cols - 1 -> r t.Data[i * cols + j] |]) + "]" ]
                "[\n" + String.Join(",\n", lines) + "\n  ]"
            use w = new StringWriter()
            JsonArrays.writeTensor w 2 t
            Expect.equal (w.ToString()) expected "same text as ToString(\"R\")"
            use w3 = new StringWriter()
            JsonArrays.writeTensor w3 0 (Tensor.create [| 2; 1; 2 |] [| 0.5; -0.0; 1e300; 3.0 |])
            Expect.equal (w3.ToString()) "[\n  [\n    [0.5, -0]\n  ],\n  [\n    [1E+300, 3]\n  ]\n]" "rank 3 layout"
            use w0 = new StringWriter()
            JsonArrays.writeTensor w0 0 (Tensor.create [||] [| 0.1 |])
            Expect.equal (w0.ToString()) "0.1" "rank 0"

        testCase "large tensors formatted on every core give the one-core text, byte for byte, and its error" <| fun () ->
            // Above 131072 numbers the rows go to the cores in blocks of 65536 numbers, a wave of one block per core:
            // 41 rows of 3700 (17 rows per block, 3 blocks, so two waves on two cores), and a rank-3 tensor.
            let rnd = Random 11
            let value _ = BitConverter.Int64BitsToDouble(rnd.NextInt64()) |> fun x -> if Double.IsFinite x then x else 0.25
            for shape in [ [| 41; 3700 |]; [| 7; 150; 200 |]; [| 140000; 1 |] ] do
                let t = Tensor.create shape (Array.init (Array.fold (*) 1 shape) value)
                let text onCores indent =
                    use w = new StringWriter()
                    JsonArrays.writeTensorWith onCores w indent t
                    w.ToString()
                for indent in [ 0; 4 ] do
                    Expect.equal (text true indent) (text false indent) (sprintf "shape %A, indent %d" shape indent)
            let bad = Array.init (41 * 3700) value
            bad[30 * 3700 + 5] <- nan
            let error onCores =
                use w = new StringWriter()
                (throwsExactly<CliError> (fun () -> JsonArrays.writeTensorWith onCores w 2 (Tensor.create [| 41; 3700 |] bad))).Message
            Expect.equal (error true) (error false) "the same error"
            stringContains ("non-finite", error true)

        // ---- Issue #6, CLI items: each of these failed before its fix ----

        testCase "(4) a non-finite kernel is an error naming the array, and no answer file is written" <| fun () ->
            let dir = tempDir ()
            try
                // Inside the accepted input scale (|x| ≤ 1e70): Monomial 3 makes x1's variance 15·q³ = 1.5e361 = +inf
                // (q = 1e120) while its covariance with x2 (9·q1·q2·c + 6·c³ = 15) stays finite.
                let req = """{"arch": {"layer": "serial", "layers": [{"layer": "Dense", "out_dim": 1}, {"layer": "Monomial", "degree": 3}]}, "x1": [[1e60, 1e60]], "x2": [[1e-60, 1e-60]]"""
                nt [ "kernel" ] (req + "}")
                |> assertOneLineError 1 "cov1 has +inf for input 0 of x1; the inputs or W_std are too large for this depth (rescale x1)"
                File.WriteAllText(Path.Combine(dir, "r.json"), req + """, "out": "k"}""")
                nt [ "kernel"; Path.Combine(dir, "r.json") ] "" |> assertOneLineError 1 "cov1 has +inf for input 0 of x1"
                Expect.isEmpty (Directory.GetFiles dir |> Array.filter (fun f -> Path.GetFileName(f).StartsWith "k.")) "no answer file"
            finally
                Directory.Delete(dir, true)

        testCase "(9) \"out\" creates a missing folder and leaves only the answer files there" <| fun () ->
            let dir = tempDir ()
            try
                File.WriteAllText(Path.Combine(dir, "r.json"), sprintf """{"arch": %s, "x1": %s, "out": "missing/deeper/k"}""" mlpArch x1ok)
                let code, _, err = nt [ "kernel"; Path.Combine(dir, "r.json") ] ""
                Expect.equal code 0 err
                let folder = Path.Combine(dir, "missing", "deeper")
                let names = Directory.GetFiles folder |> Array.map Path.GetFileName |> Array.sort
                Expect.equal names [| "k.cov1.npy"; "k.nngp.npy"; "k.ntk.npy" |] "the answer files and no temporary"
                let k = KernelFn.compute mlp (Tensor.ofJagged [| [| 1.; 2.; 3. |]; [| 4.; 5.; 6. |] |]) None Both
                Expect.equal (bits (Npy.read (Path.Combine(folder, "k.nngp.npy"))).Data) (bits k.Nngp.Data) "nngp file"
            finally
                Directory.Delete(dir, true)

        testCase "(9) when one answer file cannot be written, none is changed and no temporary is left" <| fun () ->
            let dir = tempDir ()
            try
                // An earlier answer, and a folder where the NTK file would go.
                File.WriteAllText(Path.Combine(dir, "k.nngp.npy"), "old")
                Directory.CreateDirectory(Path.Combine(dir, "k.ntk.npy")) |> ignore
                File.WriteAllText(Path.Combine(dir, "r.json"), sprintf """{"arch": %s, "x1": %s, "out": "k"}""" mlpArch x1ok)
                nt [ "kernel"; Path.Combine(dir, "r.json") ] "" |> assertOneLineError 1 "k.ntk.npy"
                Expect.equal (File.ReadAllText(Path.Combine(dir, "k.nngp.npy"))) "old" "the earlier answer is kept"
                let names = Directory.GetFileSystemEntries dir |> Array.map Path.GetFileName |> Array.sort
                Expect.equal names [| "k.nngp.npy"; "k.ntk.npy"; "r.json" |] "nothing new in the folder"
            finally
                Directory.Delete(dir, true)

        testCase "(13) an existing file at an answer's name is refused before any work and kept; \"overwrite\": true replaces it" <| fun () ->
            let dir = tempDir ()
            try
                let req = Path.Combine(dir, "r.json")
                let ntk = Path.Combine(dir, "k.ntk.npy")
                let notes = Text.Encoding.UTF8.GetBytes "my notes, not an npy\n"
                File.WriteAllBytes(ntk, notes)
                File.WriteAllText(req, sprintf """{"arch": %s, "x1": %s, "out": "k"}""" mlpArch x1ok)
                nt [ "kernel"; req ] "" |> assertOneLineError 1 (ntk + " already exists and would be replaced")
                Expect.equal (File.ReadAllBytes ntk) notes "left byte for byte"
                Expect.equal (Directory.GetFileSystemEntries dir |> Array.map Path.GetFileName |> Array.sort) [| "k.ntk.npy"; "r.json" |] "no ledger, partial or answer file"
                // The finished answer of a different request (other inputs) is refused and kept.
                File.Delete ntk
                File.WriteAllText(req, sprintf """{"arch": %s, "x1": [[1, 0, 1]], "out": "k"}""" mlpArch)
                let code, _, err = nt [ "kernel"; req ] ""
                Expect.equal code 0 err
                let earlier = [ for q in [ "nngp"; "ntk"; "cov1" ] -> File.ReadAllBytes(Path.Combine(dir, sprintf "k.%s.npy" q)) ]
                File.WriteAllText(req, sprintf """{"arch": %s, "x1": %s, "batch_size": 1, "out": "k"}""" mlpArch x1ok)
                nt [ "kernel"; req ] "" |> assertOneLineError 1 "Delete or move it, choose another \"out\", or add \"overwrite\": true"
                Expect.equal [ for q in [ "nngp"; "ntk"; "cov1" ] -> File.ReadAllBytes(Path.Combine(dir, sprintf "k.%s.npy" q)) ] earlier "intact"
                // The finite-width kernels write through the same guard.
                File.WriteAllText(req, sprintf """{"arch": %s, "x1": %s, "empirical": {"seed": 1}, "get": "ntk", "out": "k"}""" mlpArch x1ok)
                nt [ "kernel"; req ] "" |> assertOneLineError 1 (ntk + " already exists")
                Expect.equal (File.ReadAllBytes ntk) earlier[1] "intact"
                // "overwrite": true replaces the answer with this request's.
                File.WriteAllText(req, sprintf """{"arch": %s, "x1": %s, "batch_size": 1, "out": "k", "overwrite": true}""" mlpArch x1ok)
                let code, _, err = nt [ "kernel"; req ] ""
                Expect.equal code 0 err
                let k = KernelFn.compute mlp (Tensor.ofJagged [| [| 1.; 2.; 3. |]; [| 4.; 5.; 6. |] |]) None Both
                assertClose "replaced nngp" 1e-14 k.Nngp.Data (Npy.read (Path.Combine(dir, "k.nngp.npy"))).Data
                Expect.equal (Directory.GetFileSystemEntries dir |> Array.map Path.GetFileName |> Array.sort)
                    [| "k.cov1.npy"; "k.nngp.npy"; "k.ntk.npy"; "r.json" |] "no ledger or partial file left"
                File.WriteAllText(req, sprintf """{"arch": %s, "x1": %s, "empirical": {"seed": 1}, "get": "ntk", "out": "k", "overwrite": true}""" mlpArch x1ok)
                let code, _, err = nt [ "kernel"; req ] ""
                Expect.equal code 0 err
                Expect.notEqual (File.ReadAllBytes ntk) earlier[1] "the empirical NTK replaced it"
            finally
                Directory.Delete(dir, true)

        testCase "(13) \"overwrite\" must be true or false and is a known key" <| fun () ->
            nt [ "kernel" ] (sprintf """{"arch": %s, "x1": %s, "out": "k", "overwrite": 1}""" mlpArch x1ok)
            |> assertOneLineError 1 "overwrite: must be true or false, got 1"
            nt [ "kernel" ] (sprintf """{"arch": %s, "x1": %s, "overwrit": true}""" mlpArch x1ok)
            |> assertOneLineError 1 "(known: arch, x1, x2, get, kwargs, out, overwrite,"

        testCase "(10) echoed values are cut to about 80 characters and control characters are escaped" <| fun () ->
            let huge = String('x', 1_000_000)
            let code, out, err = nt [ "kernel" ] (sprintf """{"arch": {"layer": "%s"}, "x1": [[1]]}""" huge)
            (code, out, err) |> assertOneLineError 1 "unknown layer 'xxxx"
            Expect.isLessThan err.Length 300 "a short line"
            let bigList = String.Join(",", Array.create 100_000 "1")
            let code, out, err = nt [ "kernel" ] (sprintf """{"arch": {"layer": "Dense", "out_dim": [%s]}, "x1": [[1]]}""" bigList)
            (code, out, err) |> assertOneLineError 1 "out_dim"
            Expect.isLessThan err.Length 300 "a short line"
            let code, out, err = nt [ "kernel" ] """{"arch": {"layer": "\u001b[31mred\u0007"}, "x1": [[1]]}"""
            (code, out, err) |> assertOneLineError 1 "\\u001b[31mred\\u0007"
            Expect.isFalse (err |> Seq.exists (fun c -> Char.IsControl c && c <> '\n')) "no raw control character"

        testCase "(10) an unpaired surrogate, a folder as x1, and a BOM on stdin" <| fun () ->
            nt [ "kernel" ] """{"arch": {"layer": "\ud800"}, "x1": [[1]]}""" |> assertOneLineError 1 "unpaired UTF-16 surrogate"
            let dir = tempDir ()
            try
                File.WriteAllText(Path.Combine(dir, "r.json"), sprintf """{"arch": %s, "x1": "."}""" mlpArch)
                nt [ "kernel"; Path.Combine(dir, "r.json") ] "" |> assertOneLineError 1 "is a directory"
            finally
                Directory.Delete(dir, true)
            let code, _, err = nt [ "kernel" ] ("\uFEFF" + sprintf """{"arch": %s, "x1": %s}""" mlpArch x1ok)
            Expect.equal code 0 err

        testCase "(8) a pipe given as an input is refused at once instead of waiting for a writer" <| fun () ->
            if OperatingSystem.IsWindows() then skiptest "mkfifo is POSIX"
            let dir = tempDir ()
            try
                let fifo = Path.Combine(dir, "x.npy")
                use p = Diagnostics.Process.Start("mkfifo", fifo)
                p.WaitForExit()
                File.WriteAllText(Path.Combine(dir, "r.json"), sprintf """{"arch": %s, "x1": "x.npy"}""" mlpArch)
                let run = Threading.Tasks.Task.Run(fun () -> nt [ "kernel"; Path.Combine(dir, "r.json") ] "")
                if not (run.Wait(TimeSpan.FromSeconds 20.0)) then failtest "nt kernel blocked opening the pipe"
                run.Result |> assertOneLineError 1 "not a regular file"
            finally
                Directory.Delete(dir, true)

        testCase "(6) .npy inputs with an empty axis are refused up front, naming the key and the shape" <| fun () ->
            let dir = tempDir ()
            try
                let save name (shape: int[]) = Npy.write (Path.Combine(dir, name)) (Tensor.create shape [||])
                save "e03.npy" [| 0; 3 |]
                save "e203.npy" [| 2; 0; 3 |]
                for file, shape in [ "e03.npy", "(0, 3)"; "e203.npy", "(2, 0, 3)" ] do
                    File.WriteAllText(Path.Combine(dir, "r.json"), sprintf """{"arch": %s, "x1": "%s"}""" mlpArch file)
                    nt [ "kernel"; Path.Combine(dir, "r.json") ] "" |> assertOneLineError 1 (sprintf "x1: has an empty axis (shape %s)" shape)
            finally
                Directory.Delete(dir, true)

        testCase "(12) nt --version prints the version of Directory.Build.props; nt info the runtime, SIMD and BLAS" <| fun () ->
            let props = File.ReadAllText(Path.Combine(repoRoot, "Directory.Build.props"))
            let prefix = Text.RegularExpressions.Regex.Match(props, "<VersionPrefix>([^<]+)</VersionPrefix>").Groups[1].Value
            Expect.isNotEmpty prefix "Directory.Build.props has a VersionPrefix"
            let code, out, err = nt [ "--version" ] ""
            Expect.equal code 0 err
            Expect.stringStarts out prefix "nt --version"
            let code, out, err = nt [ "info" ] ""
            Expect.equal code 0 err
            for field in [ "nt:"; ".NET runtime:"; "cores:"; "SIMD Vector512:"; "SIMD Vector256:"; "matrix product:"; "native BLAS:"; "native LAPACK:" ] do
                Expect.stringContains out field "nt info"

        testCase "(12) the README names the packages and installs the tool by its package id" <| fun () ->
            let fsproj = File.ReadAllText(Path.Combine(repoRoot, "src", "NeuralTangents.Cli", "NeuralTangents.Cli.fsproj"))
            let toolId = Text.RegularExpressions.Regex.Match(fsproj, "<PackageId>([^<]+)</PackageId>").Groups[1].Value
            let readme = File.ReadAllText(Path.Combine(repoRoot, "README.md"))
            for id in [ "NeuralTangents.Core"; "NeuralTangents.CSharp"; toolId ] do
                Expect.stringContains readme (sprintf "`%s`" id) "README names the package"
            Expect.stringContains readme (sprintf "dotnet tool install --global --add-source artifacts %s --prerelease" toolId) "README"
            Expect.stringContains readme "nt --version" "README"
        testCase "memory_gb and batch_size: tiled answers equal the untiled ones; bad values fail with one line" <| fun () ->
            let x1 = "[[1, 2, 3], [4, 5, 6], [0.5, -1, 2], [2, 0, -1], [-3, 1, 1]]"
            let code, out, err = nt [ "kernel" ] (sprintf """{"arch": %s, "x1": %s, "batch_size": 2}""" mlpArch x1)
            Expect.equal code 0 err
            let o = JsonNode.Parse out
            let k = KernelFn.compute mlp (JsonArrays.toTensor "x1" (JsonNode.Parse x1)) None Both
            assertClose "nngp" 1e-14 k.Nngp.Data (values o["nngp"] |> List.toArray)
            assertClose "ntk" 1e-14 k.Ntk.Value.Data (values o["ntk"] |> List.toArray)
            Expect.equal (values o["cov1"] |> List.toArray) k.Cov1.Data "cov1 (from the diagonal tiles: same per-input rows)"
            let code, _, err = nt [ "kernel" ] (sprintf """{"arch": %s, "x1": %s, "memory_gb": 4, "batch_size": 1}""" mlpArch x1)
            Expect.equal code 0 err
            nt [ "kernel" ] (sprintf """{"arch": %s, "x1": %s, "batch_size": 0}""" mlpArch x1) |> assertOneLineError 1 "batch_size: must be a whole number of inputs per tile from 1 to 2147483647"
            nt [ "kernel" ] (sprintf """{"arch": %s, "x1": %s, "batch_size": 2.5}""" mlpArch x1) |> assertOneLineError 1 "batch_size: must be a whole number of inputs per tile from 1 to 2147483647"
            nt [ "kernel" ] (sprintf """{"arch": %s, "x1": %s, "memory_gb": -1}""" mlpArch x1) |> assertOneLineError 1 "memory_gb: must be a positive number"
            nt [ "kernel" ] (sprintf """{"arch": %s, "x1": %s, "memory_gb": "4"}""" mlpArch x1) |> assertOneLineError 1 "memory_gb: must be a positive number"
            nt [ "kernel" ] (sprintf """{"arch": %s, "x1": %s, "memory_gb": 1e30}""" mlpArch x1) |> assertOneLineError 1 "memory_gb: must be a positive number of gigabytes (10^9 bytes) up to 10^9"
            // 100 bytes cannot hold even one tile: refused up front, with the numbers.
            nt [ "kernel" ] (sprintf """{"arch": %s, "x1": %s, "memory_gb": 1e-7}""" mlpArch x1) |> assertOneLineError 1 "the kernel of N1 = 5 by N2 = 5 inputs cannot be computed within 100 bytes: for the inputs alone one pair"

        testCase "\"out\" in tiles: files equal the inline answer and no ledger or partial file is left" <| fun () ->
            let dir = tempDir ()
            try
                let x1 = "[[1, 2, 3], [4, 5, 6], [0.5, -1, 2], [2, 0, -1], [-3, 1, 1]]"
                let x2 = "[[1, 0, 3], [4, -5, 6], [0.5, 1, 2]]"
                File.WriteAllText(Path.Combine(dir, "r.json"), sprintf """{"arch": %s, "x1": %s, "x2": %s, "batch_size": 2, "out": "k"}""" mlpArch x1 x2)
                let code, out, err = nt [ "kernel"; Path.Combine(dir, "r.json") ] ""
                Expect.equal code 0 err
                Expect.stringContains out "k.cov2.npy" "paths in the response"
                let names = Directory.GetFiles dir |> Array.map Path.GetFileName |> Array.sort
                Expect.equal names [| "k.cov1.npy"; "k.cov2.npy"; "k.nngp.npy"; "k.ntk.npy"; "r.json" |] "only the answer files"
                let k = KernelFn.compute mlp (JsonArrays.toTensor "x1" (JsonNode.Parse x1)) (Some(JsonArrays.toTensor "x2" (JsonNode.Parse x2))) Both
                for name, t in [ "nngp", k.Nngp; "ntk", k.Ntk.Value; "cov1", k.Cov1; "cov2", k.Cov2.Value ] do
                    let f = Npy.read (Path.Combine(dir, sprintf "k.%s.npy" name))
                    Expect.equal f.Shape t.Shape name
                    assertClose name 1e-14 t.Data f.Data
            finally
                Directory.Delete(dir, true)
        testCase "the progress line shows the bar, tiles, percentage, elapsed and time left; quiet when stderr is not a terminal" <| fun () ->
            let p = { TilesDone = 3; TilesTotal = 12; Elapsed = TimeSpan.FromSeconds 75.0; Remaining = Some(TimeSpan.FromSeconds 225.0) }
            Expect.equal (Progress.line p) "[#######-----------------------] 3/12 tiles  25%  1:15 elapsed, ~3:45 left" "line"
            Expect.equal (Progress.line { p with TilesDone = 0; Remaining = None }) "[------------------------------] 0/12 tiles   0%  1:15 elapsed" "before the first tile"
            // In-process runs write to a StringWriter, not the console: no bar, only the answer.
            let code, _, err = nt [ "kernel" ] (sprintf """{"arch": %s, "x1": %s, "batch_size": 1}""" mlpArch x1ok)
            Expect.equal (code, err) (0, "") "nothing on stderr"
        testCase "nt predict takes memory_gb and batch_size for its kernels: the same answer to round-off" <| fun () ->
            let request = File.ReadAllText(Path.Combine(repoRoot, "examples", "predict.json")).TrimEnd().TrimEnd('}')
            let code, plain, err = nt [ "predict" ] (request + "}")
            Expect.equal code 0 err
            let code, tiled, err = nt [ "predict" ] (request + """, "batch_size": 2, "memory_gb": 2}""")
            Expect.equal code 0 err
            let rec walk (node: JsonNode) : float list =
                match node with
                | :? JsonObject as o -> [ for kv in o do if kv.Key <> "elapsed_ms" then yield! walk kv.Value ]
                | :? JsonArray as a -> a |> Seq.toList |> List.collect walk
                | v -> [ v.GetValue<float>() ]
            let numbers (text: string) = walk (JsonNode.Parse text) |> List.toArray
            Expect.isGreaterThan (numbers plain).Length 8 "means and covariances compared"
            assertClose "predictions" 1e-12 (numbers plain) (numbers tiled)
            nt [ "predict" ] (request + """, "batch_size": -3}""") |> assertOneLineError 1 "batch_size: must be a whole number of inputs per tile from 1 to 2147483647"
    ]
