/// The reference kernels of tests/fixtures (copied from the project's shared fixtures; format in their README):
/// every fixture whose layers exist here is checked to 1e-8 relative Frobenius error, the bar the fixtures set.
module NeuralTangents.Tests.FixtureTests

open System.IO
open System.Text.Json.Nodes
open Expecto
open NeuralTangents
open NeuralTangents.Tests.TestUtil

/// Flattens nested JSON number lists into (shape, row-major values).
let rec private flattenJson (node: JsonNode) : int list * float list =
    match node with
    | :? JsonArray as arr ->
        let parts = arr |> Seq.map flattenJson |> Seq.toList
        let inner = match parts with (s, _) :: _ -> s | [] -> []
        arr.Count :: inner, parts |> List.collect snd
    | v -> [], [ v.GetValue<float>() ]

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
    | Error msg -> Skipped(name, msg)
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
    ]
