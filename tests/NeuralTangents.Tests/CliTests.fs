/// The `nt` command line, run in-process through Cli.run: answers checked against KernelFn.compute called directly,
/// and every class of bad input checked to end in one "nt: " line and a non-zero exit code.
module NeuralTangents.Tests.CliTests

open System
open System.IO
open System.Globalization
open System.Text.Json.Nodes
open NUnit.Framework
open FsCheck.NUnit
open NeuralTangents
open NeuralTangents.Cli
open NeuralTangents.Tests.TestUtil

/// Equality with NUnit's messages (arrays compared element by element).
let private isEq (expected: 'a) = Is.EqualTo(box expected)

let private stringContains (fragment: string, text: string) = Assert.That(text, Does.Contain fragment)

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

// The CLI computes with KernelFn.compute and prints doubles in round-trip form ("R"), so its numbers must equal a
// direct call bit for bit: any difference is a bug in parsing inputs or printing outputs, not round-off.

[<Test>]
let ``the example request gives KernelFn.compute's numbers exactly`` () =
    let code, out, err = nt [ "kernel"; Path.Combine(repoRoot, "examples", "mlp.json") ] ""
    Assert.That(code, isEq 0, err)
    Assert.That(err, Is.Empty)
    let r = JsonNode.Parse out
    let x1 = Tensor.ofJagged [| [| 0.1; 0.2; 0.3 |]; [| -0.5; 0.4; 1.0 |]; [| 1.0; 0.0; -1.0 |]; [| 0.3; -0.7; 0.2 |] |]
    let k = KernelFn.compute mlp x1 None Both
    Assert.That(bits (values r["nngp"]), isEq(bits k.Nngp.Data))
    Assert.That(bits (values r["ntk"]), isEq(bits k.Ntk.Value.Data))
    Assert.That(bits (values r["cov1"]), isEq(bits k.Cov1.Data))
    Assert.That((r :?> JsonObject).ContainsKey "cov2" && isNull r["cov2"], "cov2 is null without x2")
    Assert.That((r["nngp"] :?> JsonArray).Count, isEq 4)
    Assert.That(r["elapsed_ms"].GetValue<float>(), Is.GreaterThanOrEqualTo 0.0)

[<Test>]
let ``x2 given inline gives (N1, N2) kernels and cov2`` () =
    let req = sprintf """{"arch": %s, "x1": [[1, 2], [3, 4], [5, 6]], "x2": [[0.5, -1]]}""" mlpArch
    let code, out, err = nt [ "kernel" ] req
    Assert.That(code, isEq 0, err)
    let r = JsonNode.Parse out
    let k = KernelFn.compute mlp (Tensor.ofJagged [| [| 1.; 2. |]; [| 3.; 4. |]; [| 5.; 6. |] |]) (Some(Tensor.ofJagged [| [| 0.5; -1. |] |])) Both
    Assert.That((r["nngp"] :?> JsonArray).Count, isEq 3)
    Assert.That((r["nngp"][0] :?> JsonArray).Count, isEq 1)
    Assert.That(bits (values r["nngp"]), isEq(bits k.Nngp.Data))
    Assert.That(bits (values r["cov2"]), isEq(bits k.Cov2.Value.Data))

[<Test>]
let ``get nngp leaves the ntk out, get ntk leaves the nngp out`` () =
    let ask (get: string) =
        let code, out, err = nt [ "kernel"; "-" ] (sprintf """{"arch": %s, "x1": [[1, 0], [0, 1]], "get": %s}""" mlpArch get)
        Assert.That(code, isEq 0, err)
        JsonNode.Parse(out) :?> JsonObject
    let onlyNngp = ask "\"nngp\""
    Assert.That(onlyNngp.ContainsKey "nngp" && not (onlyNngp.ContainsKey "ntk"))
    let listNngp = ask "[\"nngp\"]"
    Assert.That(listNngp.ContainsKey "nngp" && not (listNngp.ContainsKey "ntk"))
    let onlyNtk = ask "[\"ntk\"]"
    Assert.That(onlyNtk.ContainsKey "ntk" && not (onlyNtk.ContainsKey "nngp"))
    let both = ask "[\"ntk\", \"nngp\"]"
    Assert.That(both.ContainsKey "ntk" && both.ContainsKey "nngp")

[<Test>]
let ``npy inputs and outputs round trip through a request file's folder`` () =
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
        Assert.That(code, isEq 0, err)
        let r = JsonNode.Parse out
        let k = KernelFn.compute mlp x1 (Some x2) Both
        for name, expected in [ "nngp", k.Nngp; "ntk", k.Ntk.Value; "cov1", k.Cov1; "cov2", k.Cov2.Value ] do
            let path = r[name].GetValue<string>()
            Assert.That(path, isEq(Path.Combine(dir, "k." + name + ".npy")))
            let back = Npy.read path
            Assert.That(back.Shape, isEq expected.Shape, name)
            Assert.That(bits back.Data, isEq(bits expected.Data), name)
        Assert.That(r["elapsed_ms"].GetValue<float>(), Is.GreaterThanOrEqualTo 0.0)
    finally
        Directory.Delete(dir, true)

// ---- Bad input: exit code ≠ 0, exactly one line on stderr starting "nt: ", no stack trace, nothing on stdout ----

let private assertOneLineError (expectedCode: int) (fragment: string) (code: int, out: string, err: string) =
    Assert.That(code, isEq expectedCode, err)
    Assert.That(out, Is.Empty, "nothing on stdout")
    let lines = err.Split('\n', StringSplitOptions.RemoveEmptyEntries)
    Assert.That(lines.Length, isEq 1, err)
    Assert.That(lines[0], Does.StartWith "nt: ")
    Assert.That(err, Does.Not.Contain "   at ")
    stringContains(fragment, err)

let private x1ok = "[[1, 2, 3], [4, 5, 6]]"

[<TestCase("not json", "not valid JSON")>]
[<TestCase("[1, 2]", "must be a JSON object")>]
[<TestCase("""{"x1": [[1]]}""", "missing required key \"arch\"")>]
[<TestCase("""{"arch": {"layer": "Relu"}}""", "missing required key \"x1\"")>]
[<TestCase("""{"arch": {"layer": "Dense", "out_dim": 1}, "x1": [[1]], "color": 3}""", "unknown key \"color\"")>]
[<TestCase("""{"arch": {"layer": "Densee"}, "x1": [[1]]}""", "unknown layer 'Densee'")>]
[<TestCase("""{"arch": {"layer": "Dense", "out_dim": 1, "w_std": 2}, "x1": [[1]]}""", "unknown argument 'w_std'")>]
[<TestCase("""{"arch": {"layer": "Dense", "out_dim": 1, "W_std": -1}, "x1": [[1]]}""", "W_std")>]
[<TestCase("""{"arch": {"layer": "Dense", "out_dim": 1}, "x1": [[1, 2, 3], [4, 5]]}""", "x1: row 1 has 2 values, row 0 has 3")>]
[<TestCase("""{"arch": {"layer": "Dense", "out_dim": 1}, "x1": [[[1], [2]], [[3], [4, 5]]]}""", "x1: entry [1, 1] has 2 values, entry [0, 0] has 1")>]
[<TestCase("""{"arch": {"layer": "Dense", "out_dim": 1}, "x1": [[1, 2], 3]}""", "x1: row 1 should be a list of 2 values")>]
[<TestCase("""{"arch": {"layer": "Dense", "out_dim": 1}, "x1": [[1, "a"]]}""", "entry [0, 1] should be a number")>]
[<TestCase("""{"arch": {"layer": "Dense", "out_dim": 1}, "x1": [[1, 1e400]]}""", "not a finite float64")>]
[<TestCase("""{"arch": {"layer": "Dense", "out_dim": 1}, "x1": []}""", "empty")>]
[<TestCase("""{"arch": {"layer": "Dense", "out_dim": 1}, "x1": [[1, 2]], "x2": [[1, 2, 3]]}""", "x1 and x2 must agree")>]
[<TestCase("""{"arch": {"layer": "Dense", "out_dim": 1}, "x1": [1, 2]}""", "x1: inputs need a batch axis first")>]
[<TestCase("", "the request is empty")>]
[<TestCase("""{"arch": {"layer": "Relu"}, "x1": [[1, 2]]}""", "Gaussian")>]
[<TestCase("""{"arch": {"layer": "Dense", "out_dim": 1}, "x1": [[1]], "get": "cov"}""", "unknown quantity \"cov\"")>]
[<TestCase("""{"arch": {"layer": "Dense", "out_dim": 1}, "x1": [[1]], "get": []}""", "get: the list is empty")>]
[<TestCase("""{"arch": {"layer": "Dense", "out_dim": 1}, "x1": [[1]], "out": 5}""", "out: must be")>]
[<TestCase("""{"arch": {"layer": "Dense", "out_dim": 1}, "x1": "no-such-file.npy"}""", "no such .npy file")>]
let ``a bad request fails with one line`` (request: string, fragment: string) =
    nt [ "kernel" ] request |> assertOneLineError 1 fragment

[<Test>]
let ``a missing request file fails with one line`` () =
    nt [ "kernel"; "/no/such/request.json" ] "" |> assertOneLineError 1 "no such request file: /no/such/request.json"

[<Test>]
let ``a NaN in a .npy input fails with one line`` () =
    let dir = tempDir ()
    try
        Npy.write (Path.Combine(dir, "x.npy")) (Tensor.create [| 2; 2 |] [| 1.0; nan; 0.0; 1.0 |])
        File.WriteAllText(Path.Combine(dir, "r.json"), sprintf """{"arch": %s, "x1": "x.npy"}""" mlpArch)
        nt [ "kernel"; Path.Combine(dir, "r.json") ] "" |> assertOneLineError 1 "x1 has a non-finite value"
    finally
        Directory.Delete(dir, true)

[<Test>]
let ``a file that is not .npy fails with one line naming it`` () =
    let dir = tempDir ()
    try
        File.WriteAllText(Path.Combine(dir, "x.npy"), "1,2,3\n4,5,6\n")
        File.WriteAllText(Path.Combine(dir, "r.json"), sprintf """{"arch": %s, "x1": "x.npy"}""" mlpArch)
        nt [ "kernel"; Path.Combine(dir, "r.json") ] "" |> assertOneLineError 1 (Path.Combine(dir, "x.npy") + ": not a .npy file")
    finally
        Directory.Delete(dir, true)

[<Test>]
let ``an output prefix in a missing folder fails with one line`` () =
    let dir = tempDir ()
    try
        File.WriteAllText(Path.Combine(dir, "r.json"), sprintf """{"arch": %s, "x1": %s, "out": "missing/k"}""" mlpArch x1ok)
        nt [ "kernel"; Path.Combine(dir, "r.json") ] "" |> assertOneLineError 1 "cannot write"
    finally
        Directory.Delete(dir, true)

[<TestCase("frob", "unrecognized argument: 'frob'")>]
[<TestCase("", "no valid subcommand")>]
[<TestCase("kernel a.json b.json", "unrecognized argument")>]
let ``a bad command line fails with one line and exit code 2`` (args: string, fragment: string) =
    let argv = args.Split(' ', StringSplitOptions.RemoveEmptyEntries) |> List.ofArray
    nt argv "" |> assertOneLineError 2 fragment

// ---- Help ----

[<Test>]
let ``nt --help lists the kernel command with an example`` () =
    let code, out, err = nt [ "--help" ] ""
    Assert.That(code, isEq 0)
    Assert.That(err, Is.Empty)
    stringContains("kernel", out)
    stringContains("EXAMPLE", out)

[<Test>]
let ``nt kernel --help explains the request format`` () =
    let code, out, err = nt [ "kernel"; "--help" ] ""
    Assert.That(code, isEq 0)
    Assert.That(err, Is.Empty)
    for key in [ "\"arch\""; "\"x1\""; "\"x2\""; "\"get\""; "\"out\""; ".npy"; "EXAMPLE"; "elapsed_ms" ] do
        stringContains(key, out)

// ---- JSON numbers ----

[<Property(MaxTest = 500)>]
let ``printed doubles parse back to the same bits`` (x: float) =
    not (Double.IsFinite x)
    || BitConverter.DoubleToInt64Bits(Double.Parse(JsonArrays.formatNumber x, CultureInfo.InvariantCulture)) = BitConverter.DoubleToInt64Bits x

[<Test>]
let ``tensors of rank 0 to 3 print as nested lists of their shape`` () =
    for shape in [ [||]; [| 3 |]; [| 2; 3 |]; [| 2; 1; 3 |] ] do
        let t = Tensor.create shape (Array.init (Array.fold (*) 1 shape) (fun i -> float i + 0.5))
        use w = new StringWriter()
        JsonArrays.writeTensor w 0 t
        let node = JsonNode.Parse(w.ToString())
        let back = JsonArrays.toTensor "t" node
        Assert.That(back.Shape, isEq shape)
        Assert.That(back.Data, isEq t.Data)
