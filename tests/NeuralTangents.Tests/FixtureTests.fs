/// The reference kernels of tests/fixtures (copied from the project's shared fixtures; format in their README):
/// every fixture whose layers exist here is checked to 1e-8 relative Frobenius error, the bar the fixtures set.
module NeuralTangents.Tests.FixtureTests

open System.IO
open System.Text.Json.Nodes
open Expecto
open NeuralTangents
open NeuralTangents.Tests.TestUtil

let private tensorOf (node: JsonNode) =
    let shape, values = flattenJson node
    Tensor.create (List.toArray shape) (List.toArray values)

type private Outcome =
    | Checked of name: string * worst: float
    | Skipped of name: string * reason: string

let private fixtureDir = Path.Combine(repoRoot, "tests", "fixtures")

let private runFixture (path: string) : Outcome =
    let name = Path.GetFileNameWithoutExtension path
    let root = JsonNode.Parse(File.ReadAllText path)
    match (try Ok(Json.decodeLayer root["arch"]) with Json.JsonArchitectureException msg -> Error msg) with
    | Error msg ->
        // Fixtures of layers still to come (the decoder's message names the layer and says so).
        Skipped(name, msg)
    | Ok layer ->
        let x1 = tensorOf root["x1"]
        let x2 = match root["x2"] with null -> None | n -> Some(tensorOf n)
        let k = KernelFn.compute layer x1 x2 Both
        let errs =
            [ "nngp", relErr (snd (flattenJson root["nngp"]) |> List.toArray) k.Nngp.Data
              "ntk", relErr (snd (flattenJson root["ntk"]) |> List.toArray) k.Ntk.Value.Data
              "cov1", relErr (snd (flattenJson root["cov1"]) |> List.toArray) k.Cov1.Data ]
            @ (match root["cov2"], k.Cov2 with
               | null, None -> []
               | null, Some _ -> [ "cov2", infinity ] // cov2 must be absent when x2 is absent
               | n, Some c -> [ "cov2", relErr (snd (flattenJson n) |> List.toArray) c.Data ]
               | _, None -> [ "cov2", infinity ])
        for what, e in errs do
            if not (e <= 1e-8) then failtestf "%s: %s relative Frobenius error %.3e > 1e-8" name what e
        Checked(name, errs |> List.map snd |> List.max)

[<Tests>]
let tests =
    testList "FixtureTests" [
        testCase "every implemented reference fixture matches to 1e-8 and unimplemented ones are listed" <| fun () ->
            let files = Directory.GetFiles(fixtureDir, "*.json") |> Array.sort
            Expect.isGreaterThan files.Length 0 ("no fixtures found in " + fixtureDir)
            let outcomes = files |> Array.map runFixture
            let checkedOnes = outcomes |> Array.choose (function Checked(n, e) -> Some(n, e) | _ -> None)
            for n, e in checkedOnes do
                note (sprintf "checked %-32s worst relative error %.2e" n e)
            for o in outcomes do
                match o with
                | Skipped(n, why) -> note (sprintf "skipped %-32s %s" n why)
                | _ -> ()
            let worst = checkedOnes |> Array.map snd |> Array.max
            note (sprintf "worst relative error over %d fixtures: %.2e" checkedOnes.Length worst)
            // Every MLP fixture uses only implemented layers; a skip there would be a regression.
            for n, _ in outcomes |> Array.choose (function Skipped(n, w) -> Some(n, w) | _ -> None) do
                if n.StartsWith "mlp_" then failtestf "MLP fixture %s was skipped" n
            // Every convolutional fixture (Conv, ConvTranspose, ConvLocal, the pools) must be checked, not skipped.
            for n, why in outcomes |> Array.choose (function Skipped(n, w) -> Some(n, w) | _ -> None) do
                if n.StartsWith "cnn" || n.StartsWith "conv" then failtestf "convolutional fixture %s was skipped: %s" n why

        testCase "act_gabor_poly_numerical (Gabor, Polynomial, ElementwiseNumerical tanh deg 25) is checked, not skipped, to 1e-8" <| fun () ->
            // Closed forms (Gabor, Polynomial) and neural_tangents' Gauss–Hermite rule with the same nodes, so the
            // only differences are round-off: measured worst relative Frobenius error 1.3e-15 over nngp, ntk, cov1, cov2.
            match runFixture (Path.Combine(fixtureDir, "act_gabor_poly_numerical.json")) with
            | Checked(_, worst) ->
                note (sprintf "act_gabor_poly_numerical worst relative error %.2e" worst)
                Expect.isLessThanOrEqual worst 1e-8 "worst relative Frobenius error"
            | Skipped(_, why) -> failtestf "act_gabor_poly_numerical was skipped: %s" why

        testCase "mlp_monomials (Monomial degrees 0..5 side by side) is checked, not skipped, to 1e-10" <| fun () ->
            // The replaced fixture (identical to the shared one): six FanOut branches, one per degree, concatenated,
            // then Monomial(2) on top, so a wrong Gaussian moment of any degree moves the output kernel. The fixtures'
            // README puts a float64 implementation at about 1e-10; measured 4e-15.
            let path = Path.Combine(fixtureDir, "mlp_monomials.json")
            let rec degrees (l: Layer) =
                match l with
                | Serial ls | Parallel ls -> ls |> List.collect degrees
                | Activation(Monomial d) -> [ d ]
                | _ -> []
            let root = JsonNode.Parse(File.ReadAllText path)
            let arch = Json.decodeLayer root["arch"]
            Expect.equal (degrees arch |> List.distinct |> List.sort) [ 0 .. 5 ] "degrees in the fixture"
            match runFixture path with
            | Checked(_, worst) -> Expect.isLessThanOrEqual worst 1e-10 "worst relative Frobenius error"
            | Skipped(_, why) -> failtestf "mlp_monomials was skipped: %s" why

        // tests/fixtures/highprec/arccos_deep.json: deep Dense → ABRelu networks (Relu, LeakyRelu(0.1), ABRelu(−0.5,
        // 1.25), Abs; depth 10 and 30) with kernel_fn(x1, None) from arccos_deep.py in 50-digit mpmath arithmetic — the
        // recursion Dense: K' = W²K + b², Θ' = K' + W²Θ; ABRelu: the arc-cosine kernel with θ = arccos(K12/√(K11K22))
        // and θ = 0 exactly on the diagonal — rounded to float64. A float64 evaluation carries a few ulps of rounding
        // per layer, which the layers do not amplify away from θ = 0; at θ = 0 the core sees a correlation of exactly
        // 1 because cov1 is the Gram diagonal bit for bit. Measured ≤ 4.5e-15 relative per entry (NTK at depth 30),
        // so the bound is 1e-13 per entry. Before that fix the NTK diagonal was 2e-8 off at depth 10: one ulp of
        // correlation error becomes θ ≈ √(2·ulp) ≈ 2e-8 in the arc-cosine.
        testCase "deep arc-cosine networks match the 50-digit reference to 1e-13 relative per entry" <| fun () ->
            let root = JsonNode.Parse(File.ReadAllText(Path.Combine(fixtureDir, "highprec", "arccos_deep.json")))
            let cases = root["cases"].AsArray()
            Expect.equal cases.Count 5 "cases in arccos_deep.json"
            let mutable worst = 0.0
            for case in cases do
                let name = case["name"].GetValue<string>()
                let k = KernelFn.compute (Json.decodeLayer case["arch"]) (tensorOf case["x1"]) None Both
                for what, expected, actual in [ "nngp", tensorOf case["nngp"], k.Nngp; "ntk", tensorOf case["ntk"], k.Ntk.Value ] do
                    Expect.equal actual.Shape expected.Shape (sprintf "%s %s shape" name what)
                    for i in 0 .. expected.Length - 1 do
                        let e = abs (actual.Data[i] - expected.Data[i]) / abs expected.Data[i]
                        worst <- max worst e
                        if not (e <= 1e-13) then
                            failtestf "%s %s[%d]: %.17g vs reference %.17g (relative error %.2e > 1e-13)"
                                name what i actual.Data[i] expected.Data[i] e
            note (sprintf "arccos_deep: worst relative error per entry %.2e" worst)
    ]
