module NeuralTangents.Tests.TestUtil

open System
open System.IO
open NUnit.Framework
open NeuralTangents

/// Relative Frobenius error ‖actual − expected‖ / ‖expected‖ (neural_tangents' `assert_close_matrices` rule);
/// falls back to the absolute norm when the reference is zero.
let relErr (expected: float[]) (actual: float[]) =
    if expected.Length <> actual.Length then
        failwithf "length mismatch: expected %d values, got %d" expected.Length actual.Length
    let mutable d = 0.0
    let mutable n = 0.0
    for i in 0 .. expected.Length - 1 do
        d <- d + (actual[i] - expected[i]) ** 2.0
        n <- n + expected[i] ** 2.0
    if n = 0.0 then sqrt d else sqrt (d / n)

/// Asserts relative Frobenius closeness with a message naming what was compared.
let assertClose (what: string) (tol: float) (expected: float[]) (actual: float[]) =
    let e = relErr expected actual
    if not (e <= tol) then
        failwithf "%s: relative Frobenius error %.3e exceeds %.1e" what e tol

/// The repository root (the folder holding NeuralTangents.slnx), found from the test assembly's location.
let repoRoot =
    let rec up (d: DirectoryInfo) =
        if isNull d then failwith "cannot find the repository root (NeuralTangents.slnx) above the test assembly"
        elif File.Exists(Path.Combine(d.FullName, "NeuralTangents.slnx")) then d.FullName
        else up d.Parent
    up (DirectoryInfo(AppContext.BaseDirectory))

/// Deterministic standard normal samples (Box–Muller over System.Random with a seed).
let normals (seed: int) (n: int) =
    let rng = Random(seed)
    Array.init n (fun _ ->
        let u1 = 1.0 - rng.NextDouble()
        let u2 = rng.NextDouble()
        sqrt (-2.0 * log u1) * cos (2.0 * Math.PI * u2))

/// A (rows × cols) tensor of seeded standard normals.
let randomTensor (seed: int) (rows: int) (cols: int) = Tensor.create [| rows; cols |] (normals seed (rows * cols))
