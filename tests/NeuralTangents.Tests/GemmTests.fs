/// The packed AVX-512 product (Gemm.fs) against a plain triple loop written here. Tolerance, per entry: two
/// summation orders of the same k products differ by at most 2·k·ε·Σ_p |a_ip|·|b_pj| (Higham, "Accuracy and
/// Stability of Numerical Algorithms", §3.1), so each entry is checked against that bound, not a global constant.
/// Shapes cross every blocking edge: 8-row and 24-column tiles, 96-row blocks, 256-deep slabs, 2400-column slabs.
module NeuralTangents.Tests.GemmTests

open Expecto
open NeuralTangents
open NeuralTangents.Tests.TestUtil

let private eps = 2.0 ** -52.0

/// C ← C + α·op(A)·op(B) on the given layout, by the definition, with the matching bound Σ|α·a·b| per entry.
let private reference alpha transA (a: float[]) aOff lda transB (b: float[]) bOff ldb m n k (c: float[]) cOff ldc =
    let bound = Array.zeroCreate (m * n)
    for i in 0 .. m - 1 do
        for j in 0 .. n - 1 do
            let mutable s = 0.0
            let mutable abs = 0.0
            for p in 0 .. k - 1 do
                let x = if transA then a[aOff + p * lda + i] else a[aOff + i * lda + p]
                let y = if transB then b[bOff + j * ldb + p] else b[bOff + p * ldb + j]
                s <- s + x * y
                abs <- abs + System.Math.Abs(x * y)
            c[cOff + i * ldc + j] <- c[cOff + i * ldc + j] + alpha * s
            bound[i * n + j] <- System.Math.Abs alpha * abs
    bound

let private check (seed: int) alpha transA transB m n k lowerOnly =
    // Leading dimensions wider than the operands and non-zero offsets, so strides are exercised too.
    let lda, aRows = (if transA then m + 3, k else k + 5, m)
    let ldb, bRows = (if transB then k + 2, n else n + 7, k)
    let ldc = n + 4
    let aOff, bOff, cOff = 3, 5, 2
    let a = normals seed (aOff + aRows * lda)
    let b = normals (seed + 1) (bOff + bRows * ldb)
    let c0 = normals (seed + 2) (cOff + m * ldc)
    let got = Array.copy c0
    Gemm.multiplyAddArrays alpha transA a aOff lda transB b bOff ldb m n k got cOff ldc lowerOnly
    let expected = Array.copy c0
    let bound = reference alpha transA a aOff lda transB b bOff ldb m n k expected cOff ldc
    for idx in 0 .. got.Length - 1 do
        let inside = idx >= cOff && (idx - cOff) / ldc < m && (idx - cOff) % ldc < n
        let i, j = (idx - cOff) / ldc, (idx - cOff) % ldc
        if inside && (not lowerOnly || i >= j) then
            let tol = 2.0 * float k * eps * bound[i * n + j] + eps * abs expected[idx]
            if abs (got[idx] - expected[idx]) > tol then
                failtestf "m=%d n=%d k=%d tA=%b tB=%b lower=%b: C[%d,%d] = %.17g, expected %.17g (bound %.3g)"
                    m n k transA transB lowerOnly i j got[idx] expected[idx] tol
        elif got[idx] <> c0[idx] then
            failtestf "m=%d n=%d k=%d lower=%b wrote outside its entries at flat index %d" m n k lowerOnly idx

[<Tests>]
let tests =
    testList "GemmTests" [
        testCase "packed product equals the definition on every layout and across every blocking edge" <| fun () ->
            if not Gemm.available then skiptest "no AVX-512 here: Linalg never calls Gemm on this machine"
            let mutable seed = 10
            for m, n, k in [ 1, 1, 1; 7, 23, 5; 8, 24, 256; 9, 25, 257; 97, 49, 300; 200, 130, 513; 13, 2410, 3; 2003, 50, 9 ] do
                for transA in [ false; true ] do
                    for transB in [ false; true ] do
                        check seed -0.75 transA transB m n k false
                        seed <- seed + 3

        testCase "lower-only update writes exactly the lower triangle (with diagonal)" <| fun () ->
            if not Gemm.available then skiptest "no AVX-512 here: Linalg never calls Gemm on this machine"
            let mutable seed = 100
            for n, k in [ 1, 4; 9, 17; 31, 40; 97, 260; 250, 64 ] do
                for transB in [ false; true ] do
                    check seed 1.0 false transB n n k true
                    seed <- seed + 3
    ]
