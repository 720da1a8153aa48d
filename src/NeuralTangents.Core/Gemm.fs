namespace NeuralTangents

#nowarn "9" // pointer loads and stores in the micro-kernel and packing (buffers pinned by the callers)

open System
open System.Buffers
open System.Runtime.Intrinsics
open System.Runtime.Intrinsics.X86
open System.Threading.Tasks
open Microsoft.FSharp.NativeInterop

/// Packed AVX-512 matrix product C ← C + α·op(A)·op(B) on row-major buffers, in the layered loops of Goto and van de
/// Geijn ("Anatomy of high-performance matrix multiplication", ACM TOMS 34(3), 2008) as restructured by BLIS (Van Zee
/// and van de Geijn, ACM TOMS 41(3), 2015): a KC×NC slab of op(B) is packed into 24-column panels shared by all
/// threads, each thread packs an MC×KC block of op(A) into 8-row panels and runs an 8×24 register-blocked
/// micro-kernel over them. Edge tiles are zero-padded in the packed panels, so the micro-kernel has one shape.
/// With <c>lowerOnly</c> only entries with row ≥ column are written (a symmetric rank-k update of a lower
/// triangle); tiles wholly above the diagonal are skipped.
module internal Gemm =

    [<Literal>]
    let private MR = 8

    [<Literal>]
    let private NR = 24

    /// Depth of a packed slab: an 8×KC panel of A (16 KB) and a KC×24 panel of B (48 KB) stream through L1/L2.
    [<Literal>]
    let private KC = 256

    /// Rows of A per packed block: 96×256 doubles (192 KB) stay in the per-core L2.
    [<Literal>]
    let private MC = 96

    /// Columns of B per packed slab (256×2400 doubles, 4.7 MB, shared through L3).
    [<Literal>]
    let private NC = 2400

    /// True where the micro-kernel's instructions exist (AVX-512 Foundation with 512-bit vectors accelerated).
    let available = Avx512F.IsSupported && Vector512.IsHardwareAccelerated

    /// C[0..7, 0..23] (row stride ldc) += Σ_p a_p ⊗ b_p over kc packed steps: a_p the 8 values pa[8p..8p+7], b_p the
    /// 24 values pb[24p..24p+23]. Twenty-four 512-bit accumulators (8 rows × 3 vectors) stay in registers; each step
    /// loads three vectors of B and broadcasts eight scalars of A for 24 fused multiply-adds. Written out, not looped
    /// (generated; 24 named locals), so that the JIT keeps every accumulator in a register.
    let private microKernel (kc: int) (pa: nativeptr<float>) (pb: nativeptr<float>) (c: nativeptr<float>) (ldc: int) =
        let mutable c00 = Vector512<float>.Zero
        let mutable c01 = Vector512<float>.Zero
        let mutable c02 = Vector512<float>.Zero
        let mutable c10 = Vector512<float>.Zero
        let mutable c11 = Vector512<float>.Zero
        let mutable c12 = Vector512<float>.Zero
        let mutable c20 = Vector512<float>.Zero
        let mutable c21 = Vector512<float>.Zero
        let mutable c22 = Vector512<float>.Zero
        let mutable c30 = Vector512<float>.Zero
        let mutable c31 = Vector512<float>.Zero
        let mutable c32 = Vector512<float>.Zero
        let mutable c40 = Vector512<float>.Zero
        let mutable c41 = Vector512<float>.Zero
        let mutable c42 = Vector512<float>.Zero
        let mutable c50 = Vector512<float>.Zero
        let mutable c51 = Vector512<float>.Zero
        let mutable c52 = Vector512<float>.Zero
        let mutable c60 = Vector512<float>.Zero
        let mutable c61 = Vector512<float>.Zero
        let mutable c62 = Vector512<float>.Zero
        let mutable c70 = Vector512<float>.Zero
        let mutable c71 = Vector512<float>.Zero
        let mutable c72 = Vector512<float>.Zero
        // Fetch the C tile (8 rows × 24 doubles, up to 4 lines a row) now; it is needed after the kc steps.
        for r in 0 .. 7 do
            let row = NativePtr.add c (r * ldc)
            Sse.Prefetch0(NativePtr.toVoidPtr row)
            Sse.Prefetch0(NativePtr.toVoidPtr (NativePtr.add row 8))
            Sse.Prefetch0(NativePtr.toVoidPtr (NativePtr.add row 16))
            Sse.Prefetch0(NativePtr.toVoidPtr (NativePtr.add row 23))
        let mutable pa = pa
        let mutable pb = pb
        for _ in 1 .. kc do
            let b0 = Vector512.Load pb
            let b1 = Vector512.Load(NativePtr.add pb 8)
            let b2 = Vector512.Load(NativePtr.add pb 16)
            let a0 = Vector512.Create(NativePtr.read pa)
            c00 <- Avx512F.FusedMultiplyAdd(a0, b0, c00)
            c01 <- Avx512F.FusedMultiplyAdd(a0, b1, c01)
            c02 <- Avx512F.FusedMultiplyAdd(a0, b2, c02)
            let a1 = Vector512.Create(NativePtr.read (NativePtr.add pa 1))
            c10 <- Avx512F.FusedMultiplyAdd(a1, b0, c10)
            c11 <- Avx512F.FusedMultiplyAdd(a1, b1, c11)
            c12 <- Avx512F.FusedMultiplyAdd(a1, b2, c12)
            let a2 = Vector512.Create(NativePtr.read (NativePtr.add pa 2))
            c20 <- Avx512F.FusedMultiplyAdd(a2, b0, c20)
            c21 <- Avx512F.FusedMultiplyAdd(a2, b1, c21)
            c22 <- Avx512F.FusedMultiplyAdd(a2, b2, c22)
            let a3 = Vector512.Create(NativePtr.read (NativePtr.add pa 3))
            c30 <- Avx512F.FusedMultiplyAdd(a3, b0, c30)
            c31 <- Avx512F.FusedMultiplyAdd(a3, b1, c31)
            c32 <- Avx512F.FusedMultiplyAdd(a3, b2, c32)
            let a4 = Vector512.Create(NativePtr.read (NativePtr.add pa 4))
            c40 <- Avx512F.FusedMultiplyAdd(a4, b0, c40)
            c41 <- Avx512F.FusedMultiplyAdd(a4, b1, c41)
            c42 <- Avx512F.FusedMultiplyAdd(a4, b2, c42)
            let a5 = Vector512.Create(NativePtr.read (NativePtr.add pa 5))
            c50 <- Avx512F.FusedMultiplyAdd(a5, b0, c50)
            c51 <- Avx512F.FusedMultiplyAdd(a5, b1, c51)
            c52 <- Avx512F.FusedMultiplyAdd(a5, b2, c52)
            let a6 = Vector512.Create(NativePtr.read (NativePtr.add pa 6))
            c60 <- Avx512F.FusedMultiplyAdd(a6, b0, c60)
            c61 <- Avx512F.FusedMultiplyAdd(a6, b1, c61)
            c62 <- Avx512F.FusedMultiplyAdd(a6, b2, c62)
            let a7 = Vector512.Create(NativePtr.read (NativePtr.add pa 7))
            c70 <- Avx512F.FusedMultiplyAdd(a7, b0, c70)
            c71 <- Avx512F.FusedMultiplyAdd(a7, b1, c71)
            c72 <- Avx512F.FusedMultiplyAdd(a7, b2, c72)
            pa <- NativePtr.add pa 8
            pb <- NativePtr.add pb 24
        let row = c
        Vector512.Store(Vector512.Load row + c00, row)
        Vector512.Store(Vector512.Load (NativePtr.add row 8) + c01, (NativePtr.add row 8))
        Vector512.Store(Vector512.Load (NativePtr.add row 16) + c02, (NativePtr.add row 16))
        let row = NativePtr.add c (1 * ldc)
        Vector512.Store(Vector512.Load row + c10, row)
        Vector512.Store(Vector512.Load (NativePtr.add row 8) + c11, (NativePtr.add row 8))
        Vector512.Store(Vector512.Load (NativePtr.add row 16) + c12, (NativePtr.add row 16))
        let row = NativePtr.add c (2 * ldc)
        Vector512.Store(Vector512.Load row + c20, row)
        Vector512.Store(Vector512.Load (NativePtr.add row 8) + c21, (NativePtr.add row 8))
        Vector512.Store(Vector512.Load (NativePtr.add row 16) + c22, (NativePtr.add row 16))
        let row = NativePtr.add c (3 * ldc)
        Vector512.Store(Vector512.Load row + c30, row)
        Vector512.Store(Vector512.Load (NativePtr.add row 8) + c31, (NativePtr.add row 8))
        Vector512.Store(Vector512.Load (NativePtr.add row 16) + c32, (NativePtr.add row 16))
        let row = NativePtr.add c (4 * ldc)
        Vector512.Store(Vector512.Load row + c40, row)
        Vector512.Store(Vector512.Load (NativePtr.add row 8) + c41, (NativePtr.add row 8))
        Vector512.Store(Vector512.Load (NativePtr.add row 16) + c42, (NativePtr.add row 16))
        let row = NativePtr.add c (5 * ldc)
        Vector512.Store(Vector512.Load row + c50, row)
        Vector512.Store(Vector512.Load (NativePtr.add row 8) + c51, (NativePtr.add row 8))
        Vector512.Store(Vector512.Load (NativePtr.add row 16) + c52, (NativePtr.add row 16))
        let row = NativePtr.add c (6 * ldc)
        Vector512.Store(Vector512.Load row + c60, row)
        Vector512.Store(Vector512.Load (NativePtr.add row 8) + c61, (NativePtr.add row 8))
        Vector512.Store(Vector512.Load (NativePtr.add row 16) + c62, (NativePtr.add row 16))
        let row = NativePtr.add c (7 * ldc)
        Vector512.Store(Vector512.Load row + c70, row)
        Vector512.Store(Vector512.Load (NativePtr.add row 8) + c71, (NativePtr.add row 8))
        Vector512.Store(Vector512.Load (NativePtr.add row 16) + c72, (NativePtr.add row 16))

    /// Packs rows [i0, i0+mc) and depths [p0, p0+kc) of α·op(A) into 8-row panels: panel q holds, for each depth p,
    /// the 8 values α·op(A)[i0+8q+r, p0+p] at dst[(q·kc + p)·8 + r]; rows past m are zero.
    let private packA (alpha: float) (transA: bool) (a: nativeptr<float>) (lda: int) (m: int) (i0: int) (mc: int)
                      (p0: int) (kc: int) (dst: nativeptr<float>) =
        let panels = (mc + MR - 1) / MR
        for q in 0 .. panels - 1 do
            let panel = NativePtr.add dst (q * kc * MR)
            for r in 0 .. MR - 1 do
                let i = i0 + q * MR + r
                if i < m && i < i0 + mc then
                    if transA then
                        // op(A)[i, p] = a[p·lda + i]
                        let col = NativePtr.add a (p0 * lda + i)
                        for p in 0 .. kc - 1 do
                            NativePtr.set panel (p * MR + r) (alpha * NativePtr.get col (p * lda))
                    else
                        let row = NativePtr.add a (i * lda + p0)
                        for p in 0 .. kc - 1 do
                            NativePtr.set panel (p * MR + r) (alpha * NativePtr.get row p)
                else
                    for p in 0 .. kc - 1 do
                        NativePtr.set panel (p * MR + r) 0.0

    /// Packs 24-column panels [q0, q1) of depths [p0, p0+kc) and columns [j0, j0+nc) of op(B): panel q holds, for
    /// each depth p, op(B)[p0+p, j0+24q+c] at dst[(q·kc + p)·24 + c]; columns past n are zero.
    let private packB (transB: bool) (b: nativeptr<float>) (ldb: int) (n: int) (j0: int) (nc: int) (p0: int) (kc: int)
                      (q0: int) (q1: int) (dst: nativeptr<float>) =
        for q in q0 .. q1 - 1 do
            let panel = NativePtr.add dst (q * kc * NR)
            let jq = j0 + q * NR
            let width = max 0 (min NR (min n (j0 + nc) - jq))
            if transB then
                // op(B)[p, j] = b[j·ldb + p]: each column of the panel is a contiguous run of b.
                for c in 0 .. NR - 1 do
                    if c < width then
                        let col = NativePtr.add b ((jq + c) * ldb + p0)
                        for p in 0 .. kc - 1 do
                            NativePtr.set panel (p * NR + c) (NativePtr.get col p)
                    else
                        for p in 0 .. kc - 1 do
                            NativePtr.set panel (p * NR + c) 0.0
            elif width = NR then
                for p in 0 .. kc - 1 do
                    let src = NativePtr.add b ((p0 + p) * ldb + jq)
                    let d = NativePtr.add panel (p * NR)
                    Vector512.Store(Vector512.Load src, d)
                    Vector512.Store(Vector512.Load(NativePtr.add src 8), NativePtr.add d 8)
                    Vector512.Store(Vector512.Load(NativePtr.add src 16), NativePtr.add d 16)
            else
                for p in 0 .. kc - 1 do
                    let src = NativePtr.add b ((p0 + p) * ldb + jq)
                    for c in 0 .. NR - 1 do
                        NativePtr.set panel (p * NR + c) (if c < width then NativePtr.get src c else 0.0)

    /// The tiles of one packed block: rows [i0, i0+mc) × columns [j0, j0+nc) of C, from packed A (pa) and B (pb).
    let private macroKernel (kc: int) (pa: nativeptr<float>) (pb: nativeptr<float>) (c: nativeptr<float>) (ldc: int)
                            (m: int) (n: int) (i0: int) (mc: int) (j0: int) (nc: int) (lowerOnly: bool) =
        let tile = NativePtr.stackalloc<float> (MR * NR)
        let rowPanels = (mc + MR - 1) / MR
        let colPanels = (nc + NR - 1) / NR
        let iEnd = min m (i0 + mc)
        let jEnd = min n (j0 + nc)
        for q in 0 .. colPanels - 1 do
            let jq = j0 + q * NR
            // Lower only: the panel's first column past the block's last row leaves nothing to write.
            if not lowerOnly || jq <= iEnd - 1 then
                let bp = NativePtr.add pb (q * kc * NR)
                for s in 0 .. rowPanels - 1 do
                    let is = i0 + s * MR
                    // Lower only: a tile whose last row is above its first column is wholly in the upper triangle.
                    if not lowerOnly || is + MR - 1 >= jq then
                        let ap = NativePtr.add pa (s * kc * MR)
                        let full = is + MR <= iEnd && jq + NR <= jEnd && (not lowerOnly || is >= jq + NR - 1)
                        if full then microKernel kc ap bp (NativePtr.add c (is * ldc + jq)) ldc
                        else
                            for t in 0 .. MR * NR - 1 do NativePtr.set tile t 0.0
                            microKernel kc ap bp tile NR
                            for r in 0 .. min MR (iEnd - is) - 1 do
                                let i = is + r
                                let cols = min NR (jEnd - jq)
                                let cols = if lowerOnly then min cols (i - jq + 1) else cols
                                let row = NativePtr.add c (i * ldc + jq)
                                for cc in 0 .. cols - 1 do
                                    NativePtr.set row cc (NativePtr.get row cc + NativePtr.get tile (r * NR + cc))

    /// The first 64-byte boundary at or after p (within 8 doubles): packed panels start on a cache line, so no
    /// 512-bit load of the micro-kernel splits across two lines (unaligned, each would cost two L1 accesses).
    let private aligned (p: nativeptr<float>) : nativeint = (NativePtr.toNativeInt p + 63n) &&& ~~~63n

    /// <summary>C (m×n, row stride ldc) ← C + α·op(A)·op(B), op(A) m×k and op(B) k×n; op transposes when the flag is
    /// set (A stored m×k with row stride lda, or k×m when transposed; B stored k×n with row stride ldb, or n×k). With
    /// lowerOnly (m = n) only entries with row ≥ column are read or written. The pointers must stay pinned for the
    /// call; requires <c>available</c>.</summary>
    let multiplyAdd (alpha: float) (transA: bool) (a: nativeint) (lda: int) (transB: bool) (b: nativeint) (ldb: int)
                    (m: int) (n: int) (k: int) (c: nativeint) (ldc: int) (lowerOnly: bool) =
        if not available then invalidOp "Gemm.multiplyAdd needs AVX-512"
        if m > 0 && n > 0 && k > 0 && alpha <> 0.0 then
            let pa0 = NativePtr.ofNativeInt<float> a
            let pb0 = NativePtr.ofNativeInt<float> b
            let pc0 = NativePtr.ofNativeInt<float> c
            let threads = Environment.ProcessorCount
            let work = float m * float n * float k
            let useThreads = threads > 1 && work >= 2e6
            // Row blocks of at most MC rows (a multiple of 8), as many per thread on every thread.
            let mc =
                if not useThreads then MC
                else
                    let blocks = threads * ((m + threads * MC - 1) / (threads * MC))
                    ((m + blocks - 1) / blocks + MR - 1) / MR * MR
            let ncMax = min NC n
            let kcMax = min KC k
            let bPanelsMax = (ncMax + NR - 1) / NR
            // Pooled: a fresh 5 MB buffer per call would cost more in first-touch page faults than its packing.
            let packedB = ArrayPool<float>.Shared.Rent(bPanelsMax * NR * kcMax + 8)
            use pbBuf = fixed packedB
            let pbAddr = aligned pbBuf
            let aLen = ((mc + MR - 1) / MR) * MR * kcMax + 8
            try
                let mutable j0 = 0
                while j0 < n do
                    let nc = min NC (n - j0)
                    let bPanels = (nc + NR - 1) / NR
                    let mutable p0 = 0
                    while p0 < k do
                        let kc = min KC (k - p0)
                        // Lower only: rows above j0 write nothing in this column slab.
                        let firstRow = if lowerOnly then j0 / mc * mc else 0
                        let blocks = (m - firstRow + mc - 1) / mc
                        if blocks > 0 then
                            let jj0, pp0 = j0, p0
                            if useThreads && bPanels >= 2 * threads then
                                Parallelism.forRange 0 threads (fun t ->
                                    let q0 = bPanels * t / threads
                                    let q1 = bPanels * (t + 1) / threads
                                    packB transB pb0 ldb n jj0 nc pp0 kc q0 q1 (NativePtr.ofNativeInt pbAddr))
                            else packB transB pb0 ldb n j0 nc p0 kc 0 bPanels (NativePtr.ofNativeInt pbAddr)
                            let block (bi: int) (packedA: float[]) =
                                use paPinned = fixed packedA
                                let paBuf = NativePtr.ofNativeInt<float> (aligned paPinned)
                                let i0 = firstRow + bi * mc
                                let rows = min mc (m - i0)
                                packA alpha transA pa0 lda m i0 rows pp0 kc paBuf
                                macroKernel kc paBuf (NativePtr.ofNativeInt pbAddr) pc0 ldc m n i0 rows jj0 nc lowerOnly
                            if useThreads && blocks > 1 then
                                Parallel.For(0, blocks, Parallelism.options,
                                             (fun () -> ArrayPool<float>.Shared.Rent aLen),
                                             (fun bi _ (buf: float[]) -> block bi buf; buf),
                                             (fun buf -> ArrayPool<float>.Shared.Return buf)) |> ignore
                            else
                                let buf = ArrayPool<float>.Shared.Rent aLen
                                try for bi in 0 .. blocks - 1 do block bi buf
                                finally ArrayPool<float>.Shared.Return buf
                        p0 <- p0 + kc
                    j0 <- j0 + nc
            finally ArrayPool<float>.Shared.Return packedB

    /// <summary>Array form of <c>multiplyAdd</c> with element offsets: A at a[aOff], B at b[bOff], C at c[cOff].
    /// The caller checks that the addressed ranges lie inside the arrays.</summary>
    let multiplyAddArrays (alpha: float) (transA: bool) (a: float[]) (aOff: int) (lda: int) (transB: bool) (b: float[])
                          (bOff: int) (ldb: int) (m: int) (n: int) (k: int) (c: float[]) (cOff: int) (ldc: int)
                          (lowerOnly: bool) =
        if m > 0 && n > 0 && k > 0 then
            use pa = fixed a
            use pb = fixed b
            use pc = fixed c
            multiplyAdd alpha transA (NativePtr.toNativeInt (NativePtr.add pa aOff)) lda transB
                        (NativePtr.toNativeInt (NativePtr.add pb bOff)) ldb m n k
                        (NativePtr.toNativeInt (NativePtr.add pc cOff)) ldc lowerOnly

/// <summary>Which product the dense linear algebra runs on (<c>Linalg</c>): ours where AVX-512 exists and BLAS does
/// not run AVX-512 kernels itself. Measured at N = 4000 (`bench --linalg`): on Zen 5 with OpenBLAS pinned to its
/// Haswell kernels ours is 1.4–1.6× faster (152 against 93 GFLOP/s); on Emerald Rapids with OpenBLAS' SkylakeX
/// kernels OpenBLAS is 1.2–1.6× faster (118 against 95 GFLOP/s; Cholesky 71 against 44). <c>NT_PRODUCT=own</c>
/// or <c>blas</c> overrides the choice (own needs AVX-512; blas needs a loaded BLAS).</summary>
module internal ProductChoice =

    /// The override from NT_PRODUCT, lower-cased; None when unset or empty.
    let private requested () =
        match Environment.GetEnvironmentVariable "NT_PRODUCT" with
        | null | "" -> None
        | v -> Some(v.Trim().ToLowerInvariant())

    let private choice =
        lazy
            (Gemm.available
             && (match requested () with
                 | Some "own" -> true
                 | Some "blas" -> (Native.libraries ()).Gemm.IsNone
                 | _ -> not (Native.avx512Kernels ())))

    /// True when large products, rank updates and the blocked Cholesky and triangular routines use our packed
    /// AVX-512 product.
    let own () = choice.Force()

/// <summary>Which matrix-product kernel large dense products use, for diagnostics such as <c>nt info</c>.</summary>
[<RequireQualifiedAccess>]
module MatrixProductInfo =

    /// <summary>True when large products, rank updates and the O(N³) part of Cholesky factorisations and triangular
    /// solves run in the library's own packed AVX-512 product (AVX-512 hardware, and a BLAS without AVX-512
    /// kernels or none; <c>NT_PRODUCT=own|blas</c> overrides); false when they go to BLAS or the managed
    /// kernels.</summary>
    [<CompiledName("PackedAvx512")>]
    let packedAvx512 () = ProductChoice.own ()
