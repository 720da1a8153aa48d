/// Inputs shared by the benchmark modes.
module NeuralTangents.Benchmarks.Data

open System

/// Seeded standard normals (Box–Muller), the numbers the tests' TestUtil.normals gives for a seed.
let normals (seed: int) (n: int) =
    let rng = Random(seed)
    Array.init n (fun _ ->
        let u1 = 1.0 - rng.NextDouble()
        let u2 = rng.NextDouble()
        sqrt (-2.0 * log u1) * cos (2.0 * Math.PI * u2))
