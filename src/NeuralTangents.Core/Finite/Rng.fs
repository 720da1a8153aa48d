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
        if index < 0 then invalidArg "index" (sprintf "must be ≥ 0, got %d" index)
        { State = mix (mix (key.State ^^^ 0xD1B54A32D192ED03UL) + uint64 (index + 1) * golden) }

    /// <summary><paramref name="n"/> independent standard normal samples drawn from <paramref name="key"/>.</summary>
    [<CompiledName("Normals")>]
    let normals (key: RngKey) (n: int) : float[] =
        if n < 0 then invalidArg "n" (sprintf "must be ≥ 0, got %d" n)
        let r = Array.zeroCreate n
        let scale = 1.0 / 9007199254740992.0 // 2^-53
        let mutable k = 0
        let mutable counter = key.State
        while k < n do
            counter <- counter + golden
            let a = mix counter
            counter <- counter + golden
            let b = mix counter
            // u1 in (0, 1] so the logarithm is finite; u2 in [0, 1).
            let u1 = float ((a >>> 11) + 1UL) * scale
            let u2 = float (b >>> 11) * scale
            let rad = Math.Sqrt(-2.0 * Math.Log u1)
            let struct (s, c) = Math.SinCos(2.0 * Math.PI * u2)
            r[k] <- rad * c
            if k + 1 < n then r[k + 1] <- rad * s
            k <- k + 2
        r
