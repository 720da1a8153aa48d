module NeuralTangents.Tests.SimdTests

open System
open Expecto
open NeuralTangents
open NeuralTangents.Rules
open NeuralTangents.Tests.TestUtil

/// Distance in units in the last place between two finite doubles of the same sign.
let ulps (a: float) (b: float) =
    if a = b then 0L
    else abs (BitConverter.DoubleToInt64Bits a - BitConverter.DoubleToInt64Bits b)

/// Asserts two arrays are equal element by element (exact), naming the first difference.
let assertSame (what: string) (expected: float[]) (actual: float[]) =
    Expect.equal actual.Length expected.Length (what + ": length")
    match Array.tryFindIndex (fun i -> expected[i] <> actual[i]) [| 0 .. expected.Length - 1 |] with
    | Some i -> failtestf "%s: element %d is %.17g, expected %.17g" what i actual[i] expected[i]
    | None -> ()

/// Test inputs (y ≥ 0, x any sign) for atan2: random magnitudes over many binades plus the edge cases.
let atan2Inputs () =
    let rng = Random(20240611)
    let logUniform () = Math.Pow(10.0, -300.0 + 600.0 * rng.NextDouble())
    let random =
        [| for _ in 1 .. 20000 do
             let y = if rng.Next 2 = 0 then rng.NextDouble() * 4.0 else logUniform ()
             let x = (if rng.Next 2 = 0 then -1.0 else 1.0) * (if rng.Next 2 = 0 then rng.NextDouble() * 4.0 else logUniform ())
             yield y, x |]
    // Angles near 0, π/2 and π as (sin θ, cos θ), and around the reduction boundaries t = 0.66 and t = 1.
    let angles =
        [| for e in 1 .. 16 do
             let d = Math.Pow(10.0, -float e)
             for th in [ d; Math.PI - d; Math.PI / 2.0 - d; Math.PI / 2.0 + d ] do
                 yield Math.Sin th, Math.Cos th |]
    let boundaries =
        [| for t in [ 0.66; 0.66 * (1.0 + 1e-15); 0.66 * (1.0 - 1e-15); 1.0; 1.0 - 1e-16; 1.0 + 2e-16; 1.0 / 0.66 ] do
             yield t, 1.0
             yield t, -1.0
             yield 1.0, t
             yield 1.0, -t |]
    let edges =
        [| 0.0, 1.0; 0.0, -1.0; 1.0, 0.0; 1.0, -0.0; 5e-324, 1.0; 5e-324, -1.0; 1e-310, 1.0; 1e-310, -1.0
           1.0, 5e-324; 1.0, -5e-324; 2.2250738585072014e-308, 1.0; 1e-300, 1e-300; 1e300, -1e300; 1e-200, 1e200
           1.0, 1.0; 1.0, -1.0; 3.0, 1e-17; 1e-17, -3.0 |]
    Array.concat [ random; angles; boundaries; edges ]

/// Bound for atan2 against libm: Cephes' atan has peak relative error 1.9e-16 (< 1 ulp) on its reduced range; the
/// final addition of π/2 or π (with its low part) rounds once more (≤ 0.5 ulp), and libm's atan2 is within 1 ulp.
/// So 3 ulp (≤ 6.7e-16 relative) must hold; the measured worst case is printed.
[<Literal>]
let Atan2UlpBound = 3L

/// The scalar ABRelu formula as it stood before vectorisation (Math.Atan2), the reference for the fused pass.
let referenceABRelu (a: float) (b: float) (x: float) (v1: float) (v2: float) =
    let factor = (a - b) * (a - b) / (2.0 * Math.PI)
    let half = (a * a + b * b) / 2.0
    let sq = Math.Sqrt(Math.Max(v1 * v2 - x * x, 0.0))
    let theta = if sq = 0.0 && x = 0.0 then Math.PI / 2.0 else Math.Atan2(sq, x)
    let dot = half - factor * theta
    factor * sq + dot * x, dot, factor, sq

/// Random (nngp, v1, v2) with the covariance at every angle, plus θ≈0, θ≈π, exact ±√(v1v2) and zero variances.
let kernelCase (seed: int) (n1: int) (n2: int) (s: int) =
    let rng = Random(seed)
    let var () = match rng.Next 10 with 0 -> 0.0 | 1 -> 1e-3 * rng.NextDouble() | _ -> 0.2 + 3.0 * rng.NextDouble()
    let c1 = Array.init (n1 * s) (fun _ -> var ())
    let c2 = Array.init (n2 * s) (fun _ -> var ())
    let x =
        Array.init (n1 * n2 * s) (fun idx ->
            let p = idx % s
            let i, j = idx / (n2 * s), (idx / s) % n2
            let r = Math.Sqrt(c1[i * s + p] * c2[j * s + p])
            match rng.Next 8 with
            | 0 -> r
            | 1 -> -r
            | 2 -> r * (1.0 - Math.Pow(10.0, -float (rng.Next(1, 16))))
            | 3 -> -r * (1.0 - Math.Pow(10.0, -float (rng.Next(1, 16))))
            | _ -> r * (2.0 * rng.NextDouble() - 1.0))
    let ntk = Array.init x.Length (fun _ -> rng.NextDouble() * 2.0)
    x, ntk, c1, c2

// ---------------------------------------------------------------------------------------------
// Linear algebra: native (when present) and managed paths against independent references.

let naiveGemmNT (alpha: float) (a: float[]) (m: int) (b: float[]) (n: int) (k: int) =
    Array.init (m * n) (fun idx ->
        let i, j = idx / n, idx % n
        let mutable s = 0.0
        for p in 0 .. k - 1 do s <- s + a[i * k + p] * b[j * k + p]
        alpha * s)

/// Shapes that cross every edge of the managed kernel: 4-row groups, 4-column groups, the 128-row B block,
/// the 256-wide k block and the 8-wide vector in k.
let gemmShapes =
    [ 1, 1, 1; 1, 5, 7; 6, 3, 8; 4, 4, 9; 37, 29, 133; 9, 130, 257; 64, 64, 512; 5, 131, 3 ]

/// A seeded SPD matrix X·Xᵀ/n + I (eigenvalues ≥ 1, condition number ≲ 5).
let spd (seed: int) (n: int) =
    let x = normals seed (n * n)
    let a = naiveGemmNT (1.0 / float n) x n x n n
    for i in 0 .. n - 1 do a[i * n + i] <- a[i * n + i] + 1.0
    a

let matmul (a: float[]) (m: int) (k: int) (b: float[]) (n: int) =
    Array.init (m * n) (fun idx ->
        let i, j = idx / n, idx % n
        let mutable s = 0.0
        for p in 0 .. k - 1 do s <- s + a[i * k + p] * b[p * n + j]
        s)

let transpose (a: float[]) (m: int) (n: int) = Array.init (m * n) (fun idx -> a[(idx % m) * n + idx / m])

[<Tests>]
let tests =
    testList "SimdTests" [
        testCase "vectorised atan2 is within 3 ulp of Math.Atan2 on random and edge inputs" <| fun () ->
            let inputs = atan2Inputs ()
            let ys = inputs |> Array.map fst
            let xs = inputs |> Array.map snd
            let vector = Simd.atan2PosArray ys xs
            let mutable worst = 0L
            let mutable worstRel = 0.0
            for i in 0 .. inputs.Length - 1 do
                let expected = Math.Atan2(ys[i], xs[i])
                let scalar = Simd.atan2Pos ys[i] xs[i]
                // The vector lanes perform exactly the scalar twin's operations.
                if BitConverter.DoubleToInt64Bits scalar <> BitConverter.DoubleToInt64Bits vector[i] then
                    failtestf "atan2(%g, %g): vector %.17g differs from scalar twin %.17g" ys[i] xs[i] vector[i] scalar
                let u = ulps expected scalar
                if u > worst then worst <- u
                if expected <> 0.0 then worstRel <- max worstRel (abs (scalar - expected) / expected)
                if u > Atan2UlpBound then
                    failtestf "atan2(%.17g, %.17g) = %.17g, Math.Atan2 gives %.17g (%d ulp)" ys[i] xs[i] scalar expected u
            note (sprintf "atan2 on %d inputs: worst %d ulp, worst relative error %.2e" inputs.Length worst worstRel)

        testCase "atan2 of two zeros is pi over 2, as the arc-cosine kernel takes it" <| fun () ->
            for x in [ 0.0; -0.0 ] do
                Expect.equal (Simd.atan2Pos 0.0 x) (Math.PI / 2.0) "Simd.atan2Pos 0.0 x"
                Expect.equal ((Simd.atan2PosArray (Array.create 9 0.0) (Array.create 9 x))[8]) (Math.PI / 2.0) "(Simd.atan2PosArray (Array.create 9 0.0) (Array.create 9 x))[8]"

        [ 0.0, 1.0, 7, 13, 1
          0.0, 1.0, 5, 64, 1
          -1.0, 1.0, 4, 3, 11
          0.1, 1.0, 3, 5, 3
          0.3, -2.0, 6, 9, 1 ]
        |> testRows "fused ABRelu pass agrees with the scalar formula" (fun (a: float, b: float, n1: int, n2: int, s: int) ->
            let x, ntk, c1, c2 = kernelCase (17 + n1 * n2 * s) n1 n2 s
            let outN = Array.zeroCreate x.Length
            let outT = Array.zeroCreate x.Length
            let factor = (a - b) * (a - b) / (2.0 * Math.PI)
            let half = (a * a + b * b) / 2.0
            Simd.abReluPass Simd.identity factor half n1 n2 s x (Some ntk) c1 c2 outN (Some outT)
            let eps = 2.220446049250313e-16
            for idx in 0 .. x.Length - 1 do
                let p = idx % s
                let i, j = idx / (n2 * s), (idx / s) % n2
                let eN, eDot, f, sq = referenceABRelu a b x[idx] c1[i * s + p] c2[j * s + p]
                let eT = eDot * ntk[idx]
                // The only difference is θ: |Δθ| ≤ 3 ulp(π) = 3·2⁻⁵¹ (bound above). It enters nngp' as f·|x|·Δθ and σ̇ as
                // f·Δθ; add 4 roundings of the terms of each result.
                let dTheta = 3.0 * Math.Pow(2.0, -51.0)
                let tolN = f * abs x[idx] * dTheta + 4.0 * eps * (f * sq + abs (eDot * x[idx]))
                let tolT = (f * dTheta + 4.0 * eps * abs eDot) * ntk[idx]
                if abs (outN[idx] - eN) > tolN || abs (outT[idx] - eT) > tolT then
                    failtestf "(x, v1, v2) = (%.17g, %.17g, %.17g): nngp' %.17g vs %.17g, ntk' %.17g vs %.17g"
                        x[idx] c1[i * s + p] c2[j * s + p] outN[idx] eN outT[idx] eT)

        testCase "fused ABRelu pass without NTK writes the same NNGP" <| fun () ->
            let x, ntk, c1, c2 = kernelCase 5 9 17 1
            let withNtk = Array.zeroCreate x.Length
            let without = Array.zeroCreate x.Length
            Simd.abReluPass Simd.identity 0.159 0.5 9 17 1 x (Some ntk) c1 c2 withNtk (Some(Array.zeroCreate x.Length))
            Simd.abReluPass Simd.identity 0.159 0.5 9 17 1 x None c1 c2 without None
            assertSame "nngp' without NTK" withNtk without

        testCase "fused Dense pass equals the separate affine maps" <| fun () ->
            let n = 1000 // not a multiple of 8: exercises the scalar tail
            let x = normals 3 n
            let t = normals 4 n
            let outN = Array.zeroCreate n
            let outT = Array.zeroCreate n
            // "ntk" parameterization: nngp' = 2.25·nngp + 0.0025, ntk' = 2.25·ntk + nngp'.
            Simd.densePass 2.25 0.0025 true 0.0 0.0 x (Some t) outN (Some outT)
            let eN = x |> Array.map (fun v -> v * 2.25 + 0.0025)
            assertSame "nngp'" eN outN
            assertSame "ntk' (ntk)" (Array.map2 (fun tv nv -> tv * 2.25 + nv) t eN) outT
            // "standard": ntk' = 2.25·ntk + (7·nngp + 1).
            Simd.densePass 2.25 0.0025 false 7.0 1.0 x (Some t) outN (Some outT)
            assertSame "ntk' (standard)" (Array.map2 (fun tv xv -> tv * 2.25 + (xv * 7.0 + 1.0)) t x) outT

        testCase "OpenBLAS' core type: ours when asked, the user's when set, SkylakeX on AVX-512 otherwise" <| fun () ->
            Expect.equal (Native.coreTypeToSet "Haswell" null) (Some "Haswell") "NT_OPENBLAS_CORETYPE wins"
            Expect.equal (Native.coreTypeToSet "Zen" "Haswell") (Some "Zen") "NT_OPENBLAS_CORETYPE wins over OPENBLAS_CORETYPE"
            Expect.equal (Native.coreTypeToSet null "Haswell") None "the user's OPENBLAS_CORETYPE is left alone"
            Expect.equal (Native.coreTypeToSet "" "Haswell") None "an empty NT_OPENBLAS_CORETYPE is unset"
            let avx512 = Runtime.Intrinsics.X86.Avx512BW.IsSupported && Runtime.Intrinsics.X86.Avx512DQ.IsSupported
            Expect.equal (Native.coreTypeToSet null null) (if avx512 then Some "SkylakeX" else None) "neither set"
            // In this process: with neither variable set on an AVX-512 machine, a loaded OpenBLAS must report the
            // AVX-512 kernels, not a fallback (Debian's 0.3.21 says "Prescott" on Emerald Rapids when left alone).
            let unset (v: string) = String.IsNullOrEmpty(Environment.GetEnvironmentVariable v)
            match (Native.libraries ()).CoreName with
            | Some core when avx512 && unset "OPENBLAS_CORETYPE" && unset "NT_OPENBLAS_CORETYPE" ->
                Expect.equal core "SkylakeX" "the core OpenBLAS runs"
            | core -> note (sprintf "OpenBLAS core %A (pinned by the environment or not AVX-512)" core)

        testCase "managed and native gemmNT agree with a naive product" <| fun () ->
            note (Native.describe ())
            for (m, n, k) in gemmShapes do
                let a = normals (m * 7 + k) (m * k)
                let b = normals (n * 11 + k) (n * k)
                let expected = naiveGemmNT 0.5 a m b n k
                // Summation order differs (blocked, 8 lanes): the relative error per entry is ≤ k·eps times
                // Σ|a||b| / |Σab| ~ √k for random data, so 1e-13 covers k ≤ 512 (k·eps·√k < 3e-12 worst; typical 1e-15).
                assertClose (sprintf "managed %dx%dx%d" m n k) 1e-13 expected (Linalg.gemmNTManaged 0.5 a m b n k)
                assertClose (sprintf "gemmNT %dx%dx%d" m n k) 1e-13 expected (Linalg.gemmNT 0.5 a m b n k)

        testCase "cholesky factors and solves on native and managed paths" <| fun () ->
            let n, nrhs = 67, 70
            let a = spd 9 n
            let b = normals 10 (n * nrhs)
            for name, l in [ "cholesky", Linalg.cholesky a n; "managed", Linalg.choleskyManaged a n ] do
                for i in 0 .. n - 1 do
                    for j in i + 1 .. n - 1 do
                        Expect.equal (l[i * n + j]) 0.0 (sprintf "%s: L is not lower triangular at (%d, %d)" name i j)
                // Backward stable: ‖LLᵀ − A‖ ≤ c·n·eps·‖A‖; 1e-13 ≫ 67·2.2e-16.
                assertClose (name + " L·Lᵀ = A") 1e-13 a (matmul l n n (transpose l n n) n)
                // Condition number ≲ 5: the solution's relative error is ≲ 5·n·eps.
                for solveName, x in [ "choleskySolve", Linalg.choleskySolve l n b nrhs; "managed solve", Linalg.choleskySolveManaged l n b nrhs ] do
                    assertClose (sprintf "%s/%s A·X = B" name solveName) 1e-12 b (matmul a n n x nrhs)

        testCase "cholesky rejects a matrix that is not positive definite" <| fun () ->
            let a = [| 1.0; 2.0; 2.0; 1.0 |] // eigenvalues 3 and −1
            throwsExactly<ArgumentException> (fun () -> Linalg.cholesky a 2 |> ignore) |> ignore
            throwsExactly<ArgumentException> (fun () -> Linalg.choleskyManaged a 2 |> ignore) |> ignore

        testCase "symmetricEigen decomposes on native and managed paths" <| fun () ->
            let n = 41
            let a = spd 12 n
            let wNative, vNative = Linalg.symmetricEigen a n
            let wManaged, vManaged = Linalg.symmetricEigenManaged a n
            for name, w, v in [ "symmetricEigen", wNative, vNative; "managed", wManaged, vManaged ] do
                for i in 1 .. n - 1 do
                    Expect.isGreaterThanOrEqual (w[i]) (w[i - 1]) (sprintf "%s: eigenvalues not ascending" name)
                // A·V = V·diag(w) and VᵀV = I to backward-stable accuracy (n·eps·‖A‖ with ‖A‖ ≲ 5).
                let vw = Array.init (n * n) (fun idx -> v[idx] * w[idx % n])
                assertClose (name + " A·V = V·diag(w)") 1e-12 vw (matmul a n n v n)
                let id = Array.init (n * n) (fun idx -> if idx / n = idx % n then 1.0 else 0.0)
                assertClose (name + " VᵀV = I") 1e-12 id (matmul (transpose v n n) n n v n)
            // Eigenvalues are well separated on average; both paths must agree to the same accuracy.
            assertClose "eigenvalues native vs managed" 1e-12 wManaged wNative
    ]
