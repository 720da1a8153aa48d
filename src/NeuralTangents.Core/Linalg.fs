namespace NeuralTangents

#nowarn "9" // pointer loads in the managed GEMM micro-kernel (arrays pinned with `fixed`)

open System
open System.Numerics.Tensors
open System.Runtime.Intrinsics
open System.Threading.Tasks
open MathNet.Numerics.LinearAlgebra
open Microsoft.FSharp.NativeInterop

/// Dense linear algebra used by the kernel rules and by prediction: native BLAS/LAPACK when
/// <see cref="T:NeuralTangents.Native"/> finds it, otherwise managed code (vectorised, both cores, or MathNet).
/// All matrices are row-major flat arrays.
module internal Linalg =

    /// Splits [0, n) into contiguous chunks, one task each, when the work is large enough to pay.
    let parallelRanges (n: int) (workPerItem: float) (body: int -> int -> unit) =
        let total = float n * workPerItem
        let chunks = if total < 2e5 then 1 else min n (Environment.ProcessorCount * 4)
        if chunks <= 1 then body 0 n
        else
            Parallelism.forRange 0 chunks (fun c ->
                let lo = int (int64 n * int64 c / int64 chunks)
                let hi = int (int64 n * int64 (c + 1) / int64 chunks)
                if hi > lo then body lo hi)

    // ---------------------------------------------------------------------------------------------
    // Managed GEMM, C = A·Bᵀ: both operands are read along rows (contiguous in k), so the micro-kernel
    // computes a 4×4 block of C as 16 dot products held in 16 Vector512 accumulators (8 loads per
    // 16 FMAs), with k blocked to keep the 4+4 rows in L1 and a block of B rows in L2.

    [<Literal>]
    let private KBlock = 256

    [<Literal>]
    let private NBlock = 128

    /// C[i0..i0+3, j0..j0+3] += A[i0.., p0..p1) · B[j0.., p0..p1)ᵀ.
    let private kernel4x4 (pa: nativeptr<float>) (pb: nativeptr<float>) (pc: nativeptr<float>)
                          (k: int) (n: int) (i0: int) (j0: int) (p0: int) (p1: int) =
        let a0 = NativePtr.add pa (i0 * k)
        let a1 = NativePtr.add a0 k
        let a2 = NativePtr.add a1 k
        let a3 = NativePtr.add a2 k
        let b0 = NativePtr.add pb (j0 * k)
        let b1 = NativePtr.add b0 k
        let b2 = NativePtr.add b1 k
        let b3 = NativePtr.add b2 k
        let mutable c00 = Vector512<float>.Zero
        let mutable c01 = Vector512<float>.Zero
        let mutable c02 = Vector512<float>.Zero
        let mutable c03 = Vector512<float>.Zero
        let mutable c10 = Vector512<float>.Zero
        let mutable c11 = Vector512<float>.Zero
        let mutable c12 = Vector512<float>.Zero
        let mutable c13 = Vector512<float>.Zero
        let mutable c20 = Vector512<float>.Zero
        let mutable c21 = Vector512<float>.Zero
        let mutable c22 = Vector512<float>.Zero
        let mutable c23 = Vector512<float>.Zero
        let mutable c30 = Vector512<float>.Zero
        let mutable c31 = Vector512<float>.Zero
        let mutable c32 = Vector512<float>.Zero
        let mutable c33 = Vector512<float>.Zero
        let mutable p = p0
        while p + 8 <= p1 do
            let x0 = Vector512.Load(NativePtr.add a0 p)
            let x1 = Vector512.Load(NativePtr.add a1 p)
            let x2 = Vector512.Load(NativePtr.add a2 p)
            let x3 = Vector512.Load(NativePtr.add a3 p)
            let y0 = Vector512.Load(NativePtr.add b0 p)
            let y1 = Vector512.Load(NativePtr.add b1 p)
            let y2 = Vector512.Load(NativePtr.add b2 p)
            let y3 = Vector512.Load(NativePtr.add b3 p)
            c00 <- Vector512.FusedMultiplyAdd(x0, y0, c00)
            c01 <- Vector512.FusedMultiplyAdd(x0, y1, c01)
            c02 <- Vector512.FusedMultiplyAdd(x0, y2, c02)
            c03 <- Vector512.FusedMultiplyAdd(x0, y3, c03)
            c10 <- Vector512.FusedMultiplyAdd(x1, y0, c10)
            c11 <- Vector512.FusedMultiplyAdd(x1, y1, c11)
            c12 <- Vector512.FusedMultiplyAdd(x1, y2, c12)
            c13 <- Vector512.FusedMultiplyAdd(x1, y3, c13)
            c20 <- Vector512.FusedMultiplyAdd(x2, y0, c20)
            c21 <- Vector512.FusedMultiplyAdd(x2, y1, c21)
            c22 <- Vector512.FusedMultiplyAdd(x2, y2, c22)
            c23 <- Vector512.FusedMultiplyAdd(x2, y3, c23)
            c30 <- Vector512.FusedMultiplyAdd(x3, y0, c30)
            c31 <- Vector512.FusedMultiplyAdd(x3, y1, c31)
            c32 <- Vector512.FusedMultiplyAdd(x3, y2, c32)
            c33 <- Vector512.FusedMultiplyAdd(x3, y3, c33)
            p <- p + 8
        let pEnd = p
        // k tail (fewer than 8 left in this block): plain scalar sums.
        let tail (ar: nativeptr<float>) (br: nativeptr<float>) =
            let mutable s = 0.0
            for q in pEnd .. p1 - 1 do
                s <- s + NativePtr.get ar q * NativePtr.get br q
            s
        let inline store (r: int) (c: int) (acc: Vector512<float>) (ar: nativeptr<float>) (br: nativeptr<float>) =
            let idx = (i0 + r) * n + j0 + c
            NativePtr.set pc idx (NativePtr.get pc idx + Vector512.Sum acc + (if pEnd < p1 then tail ar br else 0.0))
        store 0 0 c00 a0 b0; store 0 1 c01 a0 b1; store 0 2 c02 a0 b2; store 0 3 c03 a0 b3
        store 1 0 c10 a1 b0; store 1 1 c11 a1 b1; store 1 2 c12 a1 b2; store 1 3 c13 a1 b3
        store 2 0 c20 a2 b0; store 2 1 c21 a2 b1; store 2 2 c22 a2 b2; store 2 3 c23 a2 b3
        store 3 0 c30 a3 b0; store 3 1 c31 a3 b1; store 3 2 c32 a3 b2; store 3 3 c33 a3 b3

    let private checkSize (name: string) (arr: float[]) (len: int) =
        if isNull arr then nullArg name
        if arr.Length < len then
            invalidArg name $"needs at least {string len} elements, has {string arr.Length}"

    /// True when a product of this size goes to the packed AVX-512 kernel (Gemm.fs) rather than BLAS or the
    /// 4×4 kernel below: on AVX-512 machines it outruns OpenBLAS' Haswell kernels (see the README's benchmarks).
    /// Below 48 rows or columns the packing (m·k + n·k copies, tiles padded to 8×24) outweighs the product: the
    /// means K*·(K + λI)⁻¹·y with 10 outputs took 15–25 ms there against a few with BLAS.
    let private packedFor (m: int) (n: int) (k: int) =
        ProductChoice.own () && min m n >= 48 && float m * float n * float k >= 1e6

    /// Managed blocked C += A·Bᵀ over rows [lo, hi) of C (c zero on entry for a plain product).
    let private gemmRowsManaged (a: float[]) (b: float[]) (c: float[]) (n: int) (k: int) (lo: int) (hi: int) =
        use pa = fixed a
        use pb = fixed b
        use pc = fixed c
        let hi4 = lo + (hi - lo) / 4 * 4
        let n4 = n / 4 * 4
        let mutable p0 = 0
        while p0 < k do
            let p1 = min k (p0 + KBlock)
            let mutable jb = 0
            while jb < n do
                let je = min n (jb + NBlock)
                let je4 = if je = n then n4 else je // NBlock is a multiple of 4
                let mutable i = lo
                while i < hi4 do
                    let mutable j = jb
                    while j < je4 do
                        kernel4x4 pa pb pc k n i j p0 p1
                        j <- j + 4
                    i <- i + 4
                // Edges: the last (n mod 4) columns and the last ((hi − lo) mod 4) rows, one dot product each.
                for i in lo .. hi - 1 do
                    let jStart = if i < hi4 then je4 else jb
                    for j in jStart .. je - 1 do
                        c[i * n + j] <- c[i * n + j] + TensorPrimitives.Dot(ReadOnlySpan(a, i * k + p0, p1 - p0),
                                                                            ReadOnlySpan(b, j * k + p0, p1 - p0))
                jb <- je
            p0 <- p1

    /// Managed C = alpha · A·Bᵀ into a zeroed c.
    let private gemmInto (alpha: float) (a: float[]) (m: int) (b: float[]) (n: int) (k: int) (c: float[]) =
        if m > 0 && n > 0 && k > 0 then
            if Vector512.IsHardwareAccelerated then
                // Chunks of whole 4-row groups so only the last chunk has an edge.
                let groups = (m + 3) / 4
                parallelRanges groups (4.0 * float n * float k) (fun g0 g1 ->
                    gemmRowsManaged a b c n k (g0 * 4) (min m (g1 * 4)))
            else
                let tile = max 1 (min n (32768 / k))
                parallelRanges m (float n * float k) (fun lo hi ->
                    let mutable j0 = 0
                    while j0 < n do
                        let j1 = min n (j0 + tile)
                        for i in lo .. hi - 1 do
                            let ai = ReadOnlySpan(a, i * k, k)
                            for j in j0 .. j1 - 1 do
                                c[i * n + j] <- TensorPrimitives.Dot(ai, ReadOnlySpan(b, j * k, k))
                        j0 <- j1)
            if alpha <> 1.0 then TensorPrimitives.Multiply(ReadOnlySpan c, alpha, Span c)

    /// C (m×n) = alpha · A (m×k) · Bᵀ (B is n×k), row-major buffers: the packed AVX-512 product when large, else
    /// native dgemm when available.
    let gemmNT (alpha: float) (a: float[]) (m: int) (b: float[]) (n: int) (k: int) : float[] =
        checkSize "a" a (m * k)
        checkSize "b" b (n * k)
        let c = Pages.zeroed (m * n)
        if packedFor m n k then Gemm.multiplyAddArrays alpha false a 0 k true b 0 k m n k c 0 n false
        elif not (Native.tryGemmNT alpha a m b n k c) then gemmInto alpha a m b n k c
        c

    /// Managed C = alpha · A·Bᵀ, never native (for tests and benchmarks that compare with native BLAS).
    let gemmNTManaged (alpha: float) (a: float[]) (m: int) (b: float[]) (n: int) (k: int) : float[] =
        checkSize "a" a (m * k)
        checkSize "b" b (n * k)
        let c = Pages.zeroed (m * n)
        gemmInto alpha a m b n k c
        c

    /// Row-wise sums of squares times alpha: v[i] = alpha · Σ_k A[i,k]².
    let rowNormsSq (alpha: float) (a: float[]) (m: int) (k: int) : float[] =
        // In one fixed order (four lanes of four, then the tail), whatever the row's place in memory: equal rows
        // get equal bits, which Input's duplicate rows rely on.
        Array.init m (fun i ->
            let r = ReadOnlySpan(a, i * k, k)
            let mutable acc = Vector256<float>.Zero
            let mutable j = 0
            while j + 4 <= k do
                let v = Vector256.Create<float>(r.Slice(j, 4))
                acc <- Vector256.FusedMultiplyAdd(v, v, acc)
                j <- j + 4
            let mutable sum = (acc.GetElement 0 + acc.GetElement 1) + (acc.GetElement 2 + acc.GetElement 3)
            while j < k do
                sum <- Math.FusedMultiplyAdd(r[j], r[j], sum)
                j <- j + 1
            alpha * sum)

    // ---------------------------------------------------------------------------------------------
    // Factorisations for prediction: LAPACKE when loaded, MathNet's managed provider otherwise.

    let private notPd (detail: string) =
        invalidArg "a" $"the matrix is not positive definite ({detail}); add a diagonal regulariser"

    /// Managed lower Cholesky factor (MathNet).
    let choleskyManaged (a: float[]) (n: int) : float[] =
        checkSize "a" a (n * n)
        let m = Matrix<float>.Build.DenseOfRowMajor(n, n, Array.sub a 0 (n * n))
        let f =
            try m.Cholesky().Factor
            with :? ArgumentException -> notPd "MathNet Cholesky failed"
        f.ToRowMajorArray()

    /// <summary>Lower Cholesky factor L (row-major, zero above the diagonal) of a symmetric positive definite
    /// n×n matrix, A = L·Lᵀ; only the lower triangle of A is read by LAPACK (MathNet reads all of it).</summary>
    /// <exception cref="T:System.ArgumentException">when A is not positive definite.</exception>
    let cholesky (a: float[]) (n: int) : float[] =
        checkSize "a" a (n * n)
        let l = Array.sub a 0 (n * n)
        match Native.tryPotrf l n with
        | Some 0 ->
            for i in 0 .. n - 1 do
                Array.fill l (i * n + i + 1) (n - i - 1) 0.0
            l
        | Some info when info > 0 -> notPd $"the leading minor of order {string info} is not positive"
        | Some info -> invalidArg "a" $"LAPACKE_dpotrf rejected argument {string (-info)}"
        | None -> choleskyManaged a n

    /// Managed solve of L·Lᵀ·X = B by forward and back substitution, B row-major n×nrhs.
    let choleskySolveManaged (l: float[]) (n: int) (b: float[]) (nrhs: int) : float[] =
        checkSize "l" l (n * n)
        checkSize "b" b (n * nrhs)
        let x = Array.sub b 0 (n * nrhs)
        // Columns of X are independent: split them across cores when there are many.
        let solveCols (c0: int) (c1: int) =
            let w = c1 - c0
            // L·Y = B: row i of Y = (B_i − Σ_{q<i} L_iq·Y_q) / L_ii.
            for i in 0 .. n - 1 do
                let xi = Span(x, i * nrhs + c0, w)
                for q in 0 .. i - 1 do
                    let liq = l[i * n + q]
                    if liq <> 0.0 then
                        TensorPrimitives.MultiplyAdd(ReadOnlySpan(x, q * nrhs + c0, w), -liq, ReadOnlySpan(x, i * nrhs + c0, w), xi)
                TensorPrimitives.Divide(ReadOnlySpan(x, i * nrhs + c0, w), l[i * n + i], xi)
            // Lᵀ·X = Y: row i of X = (Y_i − Σ_{q>i} L_qi·X_q) / L_ii.
            for i in n - 1 .. -1 .. 0 do
                let xi = Span(x, i * nrhs + c0, w)
                for q in i + 1 .. n - 1 do
                    let lqi = l[q * n + i]
                    if lqi <> 0.0 then
                        TensorPrimitives.MultiplyAdd(ReadOnlySpan(x, q * nrhs + c0, w), -lqi, ReadOnlySpan(x, i * nrhs + c0, w), xi)
                TensorPrimitives.Divide(ReadOnlySpan(x, i * nrhs + c0, w), l[i * n + i], xi)
        let blocks = if nrhs >= 64 && float n * float n * float nrhs > 1e6 then Environment.ProcessorCount else 1
        if blocks <= 1 then solveCols 0 nrhs
        else
            Parallelism.forRange 0 blocks (fun t ->
                let c0 = nrhs * t / blocks
                let c1 = nrhs * (t + 1) / blocks
                if c1 > c0 then solveCols c0 c1)
        x

    /// <summary>Solves A·X = B for X given the lower Cholesky factor L of A (from <c>cholesky</c>);
    /// B and X are row-major n×nrhs.</summary>
    let choleskySolve (l: float[]) (n: int) (b: float[]) (nrhs: int) : float[] =
        checkSize "l" l (n * n)
        checkSize "b" b (n * nrhs)
        let x = Array.sub b 0 (n * nrhs)
        match Native.tryPotrs l n x nrhs with
        | Some 0 -> x
        | Some info -> invalidArg "l" $"LAPACKE_dpotrs failed with info = {string info}"
        | None -> choleskySolveManaged l n b nrhs

    /// Managed symmetric eigendecomposition (MathNet), eigenvalues ascending.
    let symmetricEigenManaged (a: float[]) (n: int) : float[] * float[] =
        checkSize "a" a (n * n)
        let m = Matrix<float>.Build.DenseOfRowMajor(n, n, Array.sub a 0 (n * n))
        let evd = m.Evd(Symmetricity.Symmetric)
        let w = evd.EigenValues.Real().ToArray()
        let order = Array.init n id |> Array.sortBy (fun i -> w[i])
        let v = evd.EigenVectors
        let vs = Pages.zeroed (n * n)
        for i in 0 .. n - 1 do
            for c in 0 .. n - 1 do
                vs[i * n + c] <- v[i, order[c]]
        Array.map (fun i -> w[i]) order, vs

    /// <summary>Eigendecomposition A = V·diag(w)·Vᵀ of a symmetric n×n matrix (lower triangle read by LAPACK):
    /// eigenvalues w ascending, eigenvectors the columns of V (row-major: V[i, j] is component i of vector j).</summary>
    let symmetricEigen (a: float[]) (n: int) : float[] * float[] =
        checkSize "a" a (n * n)
        let v = Array.sub a 0 (n * n)
        let w = Array.zeroCreate n
        match Native.trySyevd v n w with
        | Some 0 -> w, v
        | Some info -> raise (ArithmeticException $"LAPACKE_dsyevd did not converge (info = {string info})")
        | None -> symmetricEigenManaged a n

    // ---------------------------------------------------------------------------------------------
    // In-place triangular kernels for prediction (row-major, no hidden copies): native BLAS/LAPACK when loaded,
    // managed blocked loops otherwise. A factor L lives in the lower triangle (with diagonal) of an n×n buffer;
    // the strictly upper triangle belongs to the caller and is never read or written by the factor routines.

    /// Rows of the right-hand side handled together by the managed triangular solves: one row of L, loaded once,
    /// serves this many right-hand sides (16 rows of 32 KB stay in L2 for n = 4000).
    [<Literal>]
    let private SolveRows = 16

    /// Managed in-place Cholesky of the row-major lower triangle (left-looking, in blocks of 64 rows: the columns
    /// left of a block depend only on finished rows, so its rows run in parallel; the 64×64 triangle is sequential).
    /// Returns LAPACK's info: 0, or j > 0 when the leading minor of order j is not positive definite.
    let choleskyLowerInPlaceManaged (a: float[]) (n: int) : int =
        checkSize "a" a (n * n)
        let block = 64
        let mutable info = 0
        let mutable i0 = 0
        while info = 0 && i0 < n do
            let i1 = min n (i0 + block)
            if i0 > 0 then
                parallelRanges (i1 - i0) (float i0 * float i0) (fun lo hi ->
                    for i in i0 + lo .. i0 + hi - 1 do
                        let ri = i * n
                        for j in 0 .. i0 - 1 do
                            let s = a[ri + j] - TensorPrimitives.Dot(ReadOnlySpan(a, ri, j), ReadOnlySpan(a, j * n, j))
                            a[ri + j] <- s / a[j * n + j])
            let mutable i = i0
            while info = 0 && i < i1 do
                let ri = i * n
                for j in i0 .. i - 1 do
                    let s = a[ri + j] - TensorPrimitives.Dot(ReadOnlySpan(a, ri, j), ReadOnlySpan(a, j * n, j))
                    a[ri + j] <- s / a[j * n + j]
                let d = a[ri + i] - TensorPrimitives.Dot(ReadOnlySpan(a, ri, i), ReadOnlySpan(a, ri, i))
                // A non-positive (or NaN) pivot: the leading minor of order i + 1 is not positive definite.
                if not (d > 0.0) then info <- i + 1 else a[ri + i] <- sqrt d
                i <- i + 1
            i0 <- i1
        info

    // ---------------------------------------------------------------------------------------------
    // Blocked Cholesky and triangular routines whose O(n³) part runs in the packed AVX-512 product (Gemm.fs); the
    // O(n²·nb) diagonal-block work stays in LAPACK/BLAS (dpotrf, dtrsm, dtrmm on 256- or 512-wide blocks, row strides).
    // Used when both are present and the matrix is large; otherwise the native or managed routine runs whole.

    /// Width of the Cholesky's diagonal blocks: one packed depth slab of the product.
    [<Literal>]
    let private BlockWidth = 256

    /// Width of the triangular routines' diagonal blocks: wider blocks give the product wider, fewer calls, and BLAS'
    /// share (M·N·width flops) stays small (N = 4000, M = 1000: 256 wide 81–103 GFLOP/s, 512 wide 107–125).
    [<Literal>]
    let private SolveWidth = 512

    /// True when the blocked routines apply to an n×n triangle.
    let private blockedFor (n: int) = n >= 2 * BlockWidth && ProductChoice.own () && Native.blockedReady ()

    /// True when the blocked triangular routines apply to m right-hand sides: with fewer rows than a block the
    /// product's packing of L (n²/2 values) costs more than BLAS' whole solve (e.g. (K + λI)⁻¹·y for 10 outputs).
    let private blockedRowsFor (n: int) (m: int) = m >= BlockWidth && blockedFor n

    /// B (m×n at b, row stride ldb) ← B·L⁻ᵀ for the n×n lower triangle at l (row stride ldl), left-looking by block
    /// columns: B₁ −= B₀·L₁₀ᵀ (the solved columns to the left, in the product), then B₁ ← B₁·L₁₁⁻ᵀ (BLAS).
    let private trsmRightLowerTransAt (l: nativeint) (ldl: int) (n: int) (b: nativeint) (ldb: int) (m: int) =
        let lAt i j = l + nativeint (8L * (int64 i * int64 ldl + int64 j))
        let bAt i j = b + nativeint (8L * (int64 i * int64 ldb + int64 j))
        let mutable j0 = 0
        while j0 < n do
            let j1 = min n (j0 + SolveWidth)
            if j0 > 0 then Gemm.multiplyAdd -1.0 false (bAt 0 0) ldb true (lAt j0 0) ldl m (j1 - j0) j0 (bAt 0 j0) ldb false
            Native.trsmRightLowerAt true (lAt j0 j0) ldl (j1 - j0) (bAt 0 j0) ldb m
            j0 <- j1

    /// Recursive Cholesky (Gustavson, "Recursive leads to automatic variable blocking for dense linear-algebra
    /// algorithms", IBM J. Res. Dev. 41(6), 1997) of the row-major lower triangle: with A split at n₁ ≈ n/2,
    /// L₁₁ = chol(A₁₁), L₂₁ = A₂₁·L₁₁⁻ᵀ, lower(A₂₂) −= L₂₁·L₂₁ᵀ, then L₂₂ = chol(A₂₂); dpotrf below 2·256. The
    /// updates are few and deep (k = n₁), where the packed product runs fastest. Writes the lower triangle only.
    /// LAPACK's info.
    let internal choleskyLowerBlocked (a: float[]) (n: int) : int =
        use pa = fixed a
        let at i j = NativePtr.toNativeInt (NativePtr.add pa (i * n + j))
        let rec chol (i0: int) (size: int) : int =
            if size < 2 * BlockWidth then
                let r = Native.potrfLowerAt (at i0 i0) size n
                if r < 0 then invalidArg "a" $"LAPACKE_dpotrf rejected argument {string (-r)}"
                elif r > 0 then i0 + r
                else 0
            else
                let n1 = (size / 2 + BlockWidth / 2) / BlockWidth * BlockWidth
                match chol i0 n1 with
                | 0 ->
                    let i1 = i0 + n1
                    let rest = size - n1
                    trsmRightLowerTransAt (at i0 i0) n n1 (at i1 i0) n rest
                    Gemm.multiplyAdd -1.0 false (at i1 i0) n true (at i1 i0) n rest rest n1 (at i1 i1) n true
                    chol i1 rest
                | info -> info
        chol 0 n

    /// Runs f with l (n×n) and b (m×n) pinned, given the addresses of their entries (i, j).
    let private withPinned (l: float[]) (b: float[]) (n: int) (f: (int -> int -> nativeint) -> (int -> int -> nativeint) -> unit) =
        use pl = fixed l
        use pb = fixed b
        f (fun i j -> NativePtr.toNativeInt (NativePtr.add pl (i * n + j)))
          (fun i j -> NativePtr.toNativeInt (NativePtr.add pb (i * n + j)))

    /// B (m×n) ← B·L⁻ᵀ, in 512-wide block columns (<c>trsmRightLowerTransAt</c>).
    let internal trsmRightLowerTransBlocked (l: float[]) (n: int) (b: float[]) (m: int) =
        withPinned l b n (fun lAt bAt -> trsmRightLowerTransAt (lAt 0 0) n n (bAt 0 0) n m)

    /// B (m×n) ← B·L⁻¹, by block columns from the right: B₁ −= B₂·L₂₁ (solved columns to the right), then B₁·L₁₁⁻¹.
    let internal trsmRightLowerBlocked (l: float[]) (n: int) (b: float[]) (m: int) =
        withPinned l b n (fun lAt bAt ->
            let mutable j1 = n
            while j1 > 0 do
                let j0 = max 0 (j1 - SolveWidth)
                if j1 < n then Gemm.multiplyAdd -1.0 false (bAt 0 j1) n false (lAt j1 j0) n m (j1 - j0) (n - j1) (bAt 0 j0) n false
                Native.trsmRightLowerAt false (lAt j0 j0) n (j1 - j0) (bAt 0 j0) n m
                j1 <- j0)

    /// B (m×n) ← B·L in place, left to right by block columns: B₁ ← B₁·L₁₁ + B₂·L₂₁ reads only columns not yet
    /// rewritten.
    let internal trmmRightLowerBlocked (l: float[]) (n: int) (b: float[]) (m: int) =
        withPinned l b n (fun lAt bAt ->
            let mutable j0 = 0
            while j0 < n do
                let j1 = min n (j0 + SolveWidth)
                Native.trmmRightLowerAt (lAt j0 j0) n (j1 - j0) (bAt 0 j0) n m
                if j1 < n then Gemm.multiplyAdd 1.0 false (bAt 0 j1) n false (lAt j1 j0) n m (j1 - j0) (n - j1) (bAt 0 j0) n false
                j0 <- j1)

    /// <summary>In-place Cholesky factor L (A = L·Lᵀ) of the symmetric matrix in the row-major lower triangle of
    /// a; the strictly upper triangle is left as it was. LAPACK's info: 0 on success, j &gt; 0 when the leading
    /// minor of order j is not positive definite.</summary>
    let choleskyLowerInPlace (a: float[]) (n: int) : int =
        checkSize "a" a (n * n)
        if blockedFor n then choleskyLowerBlocked a n
        else
            match Native.tryPotrfLowerInPlace a n with
            | Some info when info >= 0 -> info
            | Some info -> invalidArg "a" $"LAPACKE_dpotrf rejected argument {string (-info)}"
            | None -> choleskyLowerInPlaceManaged a n

    /// Managed B ← B·L⁻ᵀ (row r of B becomes L⁻¹·b_r, forward substitution), SolveRows rows at a time.
    let trsmRightLowerTransManaged (l: float[]) (n: int) (b: float[]) (m: int) =
        checkSize "l" l (n * n)
        checkSize "b" b (m * n)
        let groups = (m + SolveRows - 1) / SolveRows
        parallelRanges groups (float SolveRows * float n * float n) (fun g0 g1 ->
            for g in g0 .. g1 - 1 do
                let r0 = g * SolveRows
                let r1 = min m (r0 + SolveRows)
                for j in 0 .. n - 1 do
                    let lj = ReadOnlySpan(l, j * n, j)
                    let ljj = l[j * n + j]
                    for r in r0 .. r1 - 1 do
                        let br = r * n
                        b[br + j] <- (b[br + j] - TensorPrimitives.Dot(lj, ReadOnlySpan(b, br, j))) / ljj)

    /// Managed B ← B·L⁻¹ (row r of B becomes L⁻ᵀ·b_r, back substitution by rows of L), SolveRows rows at a time.
    let trsmRightLowerManaged (l: float[]) (n: int) (b: float[]) (m: int) =
        checkSize "l" l (n * n)
        checkSize "b" b (m * n)
        let groups = (m + SolveRows - 1) / SolveRows
        parallelRanges groups (float SolveRows * float n * float n) (fun g0 g1 ->
            for g in g0 .. g1 - 1 do
                let r0 = g * SolveRows
                let r1 = min m (r0 + SolveRows)
                for j in n - 1 .. -1 .. 0 do
                    let lj = ReadOnlySpan(l, j * n, j)
                    let ljj = l[j * n + j]
                    for r in r0 .. r1 - 1 do
                        let br = r * n
                        let x = b[br + j] / ljj
                        b[br + j] <- x
                        if x <> 0.0 then
                            let head = Span(b, br, j)
                            TensorPrimitives.MultiplyAdd(lj, -x, ReadOnlySpan(b, br, j), head))

    /// <summary>B (m×n) ← B·L⁻ᵀ in place, L the lower triangle of l (n×n): each row b_r becomes L⁻¹·b_r.</summary>
    let trsmRightLowerTrans (l: float[]) (n: int) (b: float[]) (m: int) =
        checkSize "l" l (n * n)
        checkSize "b" b (m * n)
        if blockedRowsFor n m then trsmRightLowerTransBlocked l n b m
        elif not (Native.tryTrsmRightLowerTrans l n b m) then trsmRightLowerTransManaged l n b m

    /// <summary>B (m×n) ← B·L⁻¹ in place, L the lower triangle of l (n×n): each row b_r becomes L⁻ᵀ·b_r.</summary>
    let trsmRightLower (l: float[]) (n: int) (b: float[]) (m: int) =
        checkSize "l" l (n * n)
        checkSize "b" b (m * n)
        if blockedRowsFor n m then trsmRightLowerBlocked l n b m
        elif not (Native.tryTrsmRightLower l n b m) then trsmRightLowerManaged l n b m

    /// <summary>B (m×n) ← B·L in place, L the lower triangle of l (n×n); false when no BLAS is loaded (no managed
    /// path: callers have one that avoids the product).</summary>
    let tryTrmmRightLower (l: float[]) (n: int) (b: float[]) (m: int) : bool =
        checkSize "l" l (n * n)
        checkSize "b" b (m * n)
        if blockedRowsFor n m then
            trmmRightLowerBlocked l n b m
            true
        else Native.tryTrmmRightLower l n b m

    /// Managed C = B·S (B m×n, S symmetric from the upper triangle of s with the diagonal d): with U the strictly
    /// upper part, row r of B·S is Σ_i b_ri·(d_i e_i + U_i,· + U_·,i), i.e. an axpy and a dot per row i of U.
    let symmRightUpperManaged (s: float[]) (d: float[]) (n: int) (b: float[]) (m: int) : float[] =
        checkSize "s" s (n * n)
        checkSize "b" b (m * n)
        let c = Pages.zeroed (m * n)
        let groups = (m + SolveRows - 1) / SolveRows
        parallelRanges groups (2.0 * float SolveRows * float n * float n) (fun g0 g1 ->
            for g in g0 .. g1 - 1 do
                let r0 = g * SolveRows
                let r1 = min m (r0 + SolveRows)
                for i in 0 .. n - 1 do
                    let len = n - i - 1
                    let ui = ReadOnlySpan(s, i * n + i + 1, len)
                    for r in r0 .. r1 - 1 do
                        let bri = b[r * n + i]
                        let tail = Span(c, r * n + i + 1, len)
                        if bri <> 0.0 then TensorPrimitives.MultiplyAdd(ui, bri, ReadOnlySpan(c, r * n + i + 1, len), tail)
                        c[r * n + i] <- c[r * n + i] + bri * d[i] + TensorPrimitives.Dot(ui, ReadOnlySpan(b, r * n + i + 1, len)))
        c

    /// <summary>C = B·S for B (m×n) and the symmetric S held in the strictly upper triangle of s plus the diagonal
    /// d (the lower triangle and diagonal of s are not read). Native dsymm when loaded: it reads s's diagonal, so
    /// the caller must hold d there during the call (see <c>PredictFactor</c>).</summary>
    let symmRightUpperNative (s: float[]) (n: int) (b: float[]) (m: int) : float[] option =
        let c = Pages.zeroed (m * n)
        if Native.trySymmRightUpper s n b m c then Some c else None

    /// <summary>C ← alpha · A (m×k) · Bᵀ (B n×k) + beta · C in place, row-major: the packed AVX-512 product when
    /// large, else native dgemm when available.</summary>
    let gemmNTInto (alpha: float) (a: float[]) (m: int) (b: float[]) (n: int) (k: int) (beta: float) (c: float[]) =
        checkSize "a" a (m * k)
        checkSize "b" b (n * k)
        checkSize "c" c (m * n)
        if packedFor m n k then
            // beta = 0 discards C (NaN included), as BLAS does.
            if beta = 0.0 then Array.Clear(c, 0, m * n)
            elif beta <> 1.0 then TensorPrimitives.Multiply(ReadOnlySpan(c, 0, m * n), beta, Span(c, 0, m * n))
            Gemm.multiplyAddArrays alpha false a 0 k true b 0 k m n k c 0 n false
        elif not (Native.tryGemmNTInto alpha a m b n k beta c) then
            let p = gemmNTManaged alpha a m b n k
            if beta = 0.0 then Array.blit p 0 c 0 (m * n)
            else
                TensorPrimitives.Multiply(ReadOnlySpan(c, 0, m * n), beta, Span(c, 0, m * n))
                TensorPrimitives.Add(ReadOnlySpan(c, 0, m * n), ReadOnlySpan p, Span(c, 0, m * n))

    /// <summary>Eigenvalues (ascending) of the symmetric matrix in the row-major lower triangle of a, whose rows
    /// become the matching unit eigenvectors (row j for value j), in place: dsyevd when loaded, MathNet otherwise.</summary>
    let symmetricEigenRowsInPlace (a: float[]) (n: int) : float[] =
        checkSize "a" a (n * n)
        let w = Array.zeroCreate n
        match Native.trySyevdRows a n w with
        | Some 0 -> w
        | Some info -> raise (ArithmeticException $"LAPACKE_dsyevd did not converge (info = {string info})")
        | None ->
            // Managed: MathNet reads the whole matrix, so mirror the lower triangle first.
            for i in 0 .. n - 1 do
                for j in i + 1 .. n - 1 do
                    a[i * n + j] <- a[j * n + i]
            let values, cols = symmetricEigenManaged a n
            for i in 0 .. n - 1 do
                for j in 0 .. n - 1 do
                    a[j * n + i] <- cols[i * n + j]
            Array.blit values 0 w 0 n
            w

    /// <summary>Eigenvalues (ascending) of the symmetric matrix in the row-major lower triangle (with diagonal) of
    /// a, with the matching unit eigenvectors written as the rows of z (n×n): dsyevr when loaded (O(n) workspace;
    /// a's lower triangle and diagonal are destroyed, its strictly upper triangle untouched), MathNet otherwise (a
    /// untouched). Holds two n×n arrays, not dsyevd's three (a and its 2n² workspace) plus a copy.</summary>
    let symmetricEigenRowsInto (a: float[]) (n: int) (z: float[]) : float[] =
        checkSize "a" a (n * n)
        checkSize "z" z (n * n)
        let w = Array.zeroCreate n
        match Native.trySyevrRows a n w z with
        | Some 0 -> w
        | Some info -> raise (ArithmeticException $"LAPACKE_dsyevr failed (info = {string info})")
        | None ->
            for i in 0 .. n - 1 do
                for j in 0 .. i do
                    z[i * n + j] <- a[i * n + j]
                    z[j * n + i] <- a[i * n + j]
            let values, cols = symmetricEigenManaged z n
            for i in 0 .. n - 1 do
                for j in 0 .. n - 1 do
                    z[j * n + i] <- cols[i * n + j]
            Array.blit values 0 w 0 n
            w

    /// <summary>C (m×n) = op(A)·op(B), fresh, row-major; op transposes when the flag is set (A stored m×k, or k×m
    /// when transposed; B stored k×n, or n×k when transposed). The packed AVX-512 product when large, else native
    /// dgemm when available; the managed path lays the operands out for the A·Bᵀ kernel.</summary>
    let gemm (transA: bool) (transB: bool) (m: int) (n: int) (k: int) (a: float[]) (b: float[]) : float[] =
        checkSize "a" a (m * k)
        checkSize "b" b (k * n)
        let c = Pages.zeroed (m * n)
        if packedFor m n k then
            Gemm.multiplyAddArrays 1.0 transA a 0 (if transA then m else k) transB b 0 (if transB then k else n) m n k c 0 n false
        elif not (Native.tryGemmInto transA transB m n k 1.0 a b 0.0 c) && m > 0 && n > 0 && k > 0 then
            let tr (x: float[]) rows cols =
                let t = Array.zeroCreate (rows * cols)
                for i in 0 .. rows - 1 do
                    for j in 0 .. cols - 1 do
                        t[j * rows + i] <- x[i * cols + j]
                t
            let a' = if transA then tr a k m else a // m×k
            let b' = if transB then b else tr b k n // n×k
            gemmInto 1.0 a' m b' n k c
        c

    /// <summary>The upper triangle (with diagonal, j ≥ i) of G = alpha · A·Aᵀ (n×n) for A (n×k), fresh: native dsyrk
    /// (half the flops of a general product); the strictly lower triangle is left +0.0. Without BLAS the managed A·Bᵀ
    /// kernel fills the whole matrix, and its lower triangle is overwritten by the upper one, so both routes
    /// return a triangle that <c>mirrorUpper</c> makes exactly symmetric.</summary>
    let gramUpper (alpha: float) (a: float[]) (n: int) (k: int) : float[] =
        checkSize "a" a (n * k)
        Timings.time "native library load" (fun () -> Native.libraries () |> ignore)
        Timings.time "Gram product (syrk, upper triangle)" (fun () ->
            let c = Pages.zeroed (n * n)
            if Native.trySyrkTriangle true alpha a n k 0.0 c then c
            else gemmNT alpha a n a n k)

    /// <summary>Copies the upper triangle of a square row-major buffer onto its lower triangle, in 64×64 tile pairs
    /// (both reads stay in cache), on every core.</summary>
    let mirrorUpper (c: float[]) (n: int) =
        checkSize "c" c (n * n)
        let tile = 64
        let tiles = (n + tile - 1) / tile
        Timings.time "Gram mirror" (fun () ->
        parallelRanges tiles (float (tile * n)) (fun lo hi ->
            for bi in lo .. hi - 1 do
                for bj in bi .. tiles - 1 do
                    for i in bi * tile .. min n ((bi + 1) * tile) - 1 do
                        for j in max (i + 1) (bj * tile) .. min n ((bj + 1) * tile) - 1 do
                            c[j * n + i] <- c[i * n + j]))

    /// <summary>G = alpha · A·Aᵀ (n×n) for A (n×k), fresh and exactly symmetric: its upper triangle
    /// (<c>gramUpper</c>) mirrored onto the lower one.</summary>
    let gram (alpha: float) (a: float[]) (n: int) (k: int) : float[] =
        let c = gramUpper alpha a n k
        mirrorUpper c n
        c

    /// <summary>The lower triangle (with diagonal) of the symmetric C (n×n) ← C + alpha · A·Aᵀ, A n×k: the packed
    /// AVX-512 product on the lower triangle or native dsyrk (half a product's flops), or else the managed A·Bᵀ
    /// kernel, which also updates the upper triangle. Callers that need the full matrix mirror the lower triangle
    /// afterwards (<c>mirrorLower</c>).</summary>
    let rankUpdateLower (alpha: float) (a: float[]) (n: int) (k: int) (c: float[]) =
        checkSize "a" a (n * k)
        checkSize "c" c (n * n)
        if packedFor n n k then Gemm.multiplyAddArrays alpha false a 0 k true a 0 k n n k c 0 n true
        elif not (Native.trySyrkLower alpha a n k 1.0 c) then gemmNTInto alpha a n a n k 1.0 c

    /// <summary>Copies the lower triangle of a square row-major buffer onto its upper triangle.</summary>
    let mirrorLower (c: float[]) (n: int) =
        for i in 0 .. n - 1 do
            for j in i + 1 .. n - 1 do
                c[i * n + j] <- c[j * n + i]
