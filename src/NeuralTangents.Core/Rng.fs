namespace NeuralTangents

open System

/// <summary>A key of the splittable random generator: a 64-bit state from which child keys and
/// samples are derived by hashing, never by advancing shared state.</summary>
/// <remarks>Each layer draws from the key of its path in the layer tree (root → child index → …), so a
/// network's parameters do not depend on the order in which layers are initialised. The numbers differ from
/// JAX's PRNG: only the distributions match neural_tangents.</remarks>
[<Struct>]
type RngKey = { State: uint64 }

/// <summary>Counter-based normal sampler over <see cref="T:NeuralTangents.RngKey"/> (SplitMix64 hashing,
/// Steele, Lea and Flood, OOPSLA 2014; Box–Muller transform).</summary>
[<RequireQualifiedAccess>]
module Rng =

    let private golden = 0x9E3779B97F4A7C15UL

    /// SplitMix64's finaliser: a bijective 64-bit mixer with full avalanche.
    let inline private mix (z0: uint64) =
        let z = (z0 ^^^ (z0 >>> 30)) * 0xBF58476D1CE4E5B9UL
        let z = (z ^^^ (z >>> 27)) * 0x94D049BB133111EBUL
        z ^^^ (z >>> 31)

    /// <summary>The root key of a seed.</summary>
    [<CompiledName("OfSeed")>]
    let ofSeed (seed: int) = { State = mix (uint64 (int64 seed) + golden) }

    /// <summary>The key of child <paramref name="index"/> (a layer's position in its parent, or a parameter's
    /// slot in its layer). Distinct indices give statistically independent keys.</summary>
    [<CompiledName("Split")>]
    let split (index: int) (key: RngKey) =
        if index < 0 then invalidArg "index" $"must be ≥ 0, got {string index}"
        { State = mix (mix (key.State ^^^ 0xD1B54A32D192ED03UL) + uint64 (index + 1) * golden) }

    /// <summary><paramref name="n"/> independent standard normal samples drawn from <paramref name="key"/>.</summary>
    /// <remarks>Marsaglia's polar method (Marsaglia and Bray, SIAM Review 6, 1964) on the key's counter stream:
    /// pairs (u, v) uniform on the square are kept when 0 &lt; s = u² + v² &lt; 1 (probability π/4), giving
    /// u·√(−2 ln s / s) and v·√(−2 ln s / s). Deterministic for a key on every platform.</remarks>
    [<CompiledName("Normals")>]
    let normals (key: RngKey) (n: int) : float[] =
        if n < 0 then invalidArg "n" $"must be ≥ 0, got {string n}"
        let r = Array.zeroCreate n
        let scale = 1.0 / 4503599627370496.0 // 2^-52: (z >>> 11)·2^-52 − 1 is uniform on [−1, 1)
        let mutable counter = key.State
        let mutable k = 0
        while k < n do
            counter <- counter + golden
            let u = float (mix counter >>> 11) * scale - 1.0
            counter <- counter + golden
            let v = float (mix counter >>> 11) * scale - 1.0
            let s = u * u + v * v
            if s < 1.0 && s > 0.0 then
                let f = Math.Sqrt(-2.0 * Math.Log s / s)
                r[k] <- u * f
                if k + 1 < n then r[k + 1] <- v * f
                k <- k + 2
        r
