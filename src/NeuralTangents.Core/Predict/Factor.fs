namespace NeuralTangents

open System
open System.Numerics.Tensors
open System.Threading.Tasks
open NeuralTangents.PredictSolve

/// <summary>Flat row-major linear algebra of prediction: a symmetric train–train block and its Cholesky factor
/// packed into ONE N×N buffer, triangular solves against it, and the helpers on flat M×N buffers. No MathNet, no
/// conversions: with native BLAS/LAPACK every step is one call on the caller's buffer.</summary>
/// <remarks>The packing: the strictly upper triangle holds the symmetrised, unregularised block S; the lower
/// triangle (with diagonal) holds L with L·Lᵀ = S + ridge·I once factored (LAPACK's dpotrf touches one triangle
/// only); S's diagonal is kept in a vector. So S (for the NTK ensemble's covariance and for eigenbases) and L
/// cost one N×N array together, not three (block, regularised copy, factor).</remarks>
module internal PredictFactor =

    /// (A + Aᵀ)/2 into both triangles of a square row-major buffer, in place, in 64×64 tile pairs.
    let symmetrizeInPlace (a: float[]) (n: int) =
        let tile = 64
        let tiles = (n + tile - 1) / tile
        Linalg.parallelRanges tiles (float (tile * n)) (fun lo hi ->
            for bi in lo .. hi - 1 do
                for bj in bi .. tiles - 1 do
                    for i in bi * tile .. min n ((bi + 1) * tile) - 1 do
                        for j in max (i + 1) (bj * tile) .. min n ((bj + 1) * tile) - 1 do
                            let m = 0.5 * (a[i * n + j] + a[j * n + i])
                            a[i * n + j] <- m
                            a[j * n + i] <- m)

    /// A fresh rows×cols → cols×rows transpose.
    let transpose (a: float[]) (rows: int) (cols: int) : float[] =
        let t = Array.zeroCreate (rows * cols)
        for i in 0 .. rows - 1 do
            for j in 0 .. cols - 1 do
                t[j * rows + i] <- a[i * cols + j]
        t

    /// A·diag(w): column j of a fresh copy of A (rows×cols) scaled by w[j].
    let scaleColumns (a: float[]) (rows: int) (cols: int) (w: float[]) : float[] =
        let c = Array.zeroCreate (rows * cols)
        for i in 0 .. rows - 1 do
            TensorPrimitives.Multiply(ReadOnlySpan(a, i * cols, cols), ReadOnlySpan(w), Span(c, i * cols, cols))
        c

    let private advice =
        "pass a positive diag_reg (e.g. 1e-6, relative to the mean diagonal; for a kernel whose diagonal is zero set diag_reg_absolute_scale) to regularise it, or check for duplicated training inputs"

    /// <summary>A symmetric train–train block S (N×N) with its ridge and, after <c>Factor</c>, the Cholesky
    /// factor of S + ridge·I, in one buffer (see the module remarks). Thread-safe: one lock guards the buffer.</summary>
    [<Sealed>]
    type Block private (what: string, n: int, data: float[], diag: float[], ridge: float) =
        let gate = obj ()
        let mutable factored = false
        /// Whether the lower triangle still holds S (false once it holds L or an eigensolver's scratch).
        let mutable lowerIsS = true
        /// Bumped whenever the lower triangle is rewritten; dsytrd's reflectors there are valid for one version.
        let mutable version = 0
        let mutable holdsReflectors = false
        let mutable failure: string option = None

        /// S + ridge·I into the lower triangle and diagonal (S restored from the upper triangle when needed), for
        /// a routine that overwrites them; whatever the lower triangle held before is gone.
        let regularisedLower () =
            if not lowerIsS then
                for i in 1 .. n - 1 do
                    for j in 0 .. i - 1 do
                        data[i * n + j] <- data[j * n + i]
            for i in 0 .. n - 1 do data[i * n + i] <- diag[i] + ridge
            lowerIsS <- false
            factored <- false
            holdsReflectors <- false
            version <- version + 1

        /// From a square row-major buffer: owned buffers are transformed in place (the caller gives them up),
        /// others are copied once. The ridge is diagReg, or diagReg · trace(S)/N unless absolute
        /// (neural_tangents' _add_diagonal_regularizer).
        static member Create(what: string, source: float[], n: int, owned: bool, diagReg: float, absolute: bool) =
            let data = if owned then source else Pages.copy source
            symmetrizeInPlace data n
            let diag = Array.init n (fun i -> data[i * n + i])
            let ridge = if absolute then diagReg else (if n = 0 then 0.0 else diagReg * Array.sum diag / float n)
            Block(what, n, data, diag, ridge)

        member _.Size = n
        member _.Ridge = ridge
        /// S[i, j] (unregularised).
        member _.At(i: int, j: int) =
            if i = j then diag[i] elif i < j then data[i * n + j] else data[j * n + i]

        /// Factors S + ridge·I in place, once; a block that is not positive definite, or singular to working
        /// precision (a pivot² ≤ N·ε·max diagonal), raises NeuralTangentsException, now and on every later call.
        member _.Factor() =
            lock gate (fun () ->
                match failure with
                | Some msg -> fail msg
                | None when factored -> ()
                | None ->
                    // An eigendecomposition may have used the lower triangle as scratch: S is restored from the upper one.
                    regularisedLower ()
                    let mutable maxDiag = 0.0
                    for i in 0 .. n - 1 do
                        maxDiag <- max maxDiag (abs data[i * n + i])
                    let info = Linalg.choleskyLowerInPlace data n
                    let msg =
                        if info > 0 then
                            Some((what + " is not positive definite (Cholesky failed at the leading minor of order " + string info + "); " + advice))
                        else
                            let floor = float n * 2.220446049250313e-16 * maxDiag
                            seq { 0 .. n - 1 }
                            |> Seq.tryFind (fun i -> let p = data[i * n + i] in not (Double.IsFinite p) || p * p <= floor)
                            |> Option.map (fun i ->
                                let p = data[i * n + i]
                                (what + " is singular to working precision (pivot " + string i + " is " + (Show.g (p * p)) + " against a largest diagonal of " + Show.g maxDiag + "); " + advice))
                    match msg with
                    | Some m ->
                        failure <- Some m // the lower triangle is now garbage; S (upper + diag) is intact
                        fail m
                    | None -> factored <- true)

        /// Rows of b (m×N) ← L⁻¹·row (B·L⁻ᵀ), factoring first if needed.
        member t.HalfSolve(b: float[], m: int) =
            lock gate (fun () ->
                t.Factor() // re-entrant lock: no eigendecomposition can scratch the factor in between
                Linalg.trsmRightLowerTrans data n b m)

        /// Rows of b (m×N) ← (S + ridge·I)⁻¹·row, in place.
        member t.SolveRows(b: float[], m: int) =
            lock gate (fun () ->
                t.Factor()
                Linalg.trsmRightLowerTrans data n b m
                Linalg.trsmRightLower data n b m)

        /// True once factored successfully.
        member _.IsFactored = lock gate (fun () -> factored)

        /// B ← B·L in place (B m×N) when the block is factored and native trmm is loaded; false otherwise.
        member _.TryTimesL(b: float[], m: int) : bool =
            lock gate (fun () -> factored && Linalg.tryTrmmRightLower data n b m)

        /// B·S for B (m×N), a fresh m×N buffer. Native dsymm reads the diagonal of the buffer, so S's diagonal is
        /// put there for the call and L's put back.
        member _.TimesS(b: float[], m: int) : float[] =
            lock gate (fun () ->
                let saved = Array.init n (fun i -> data[i * n + i])
                for i in 0 .. n - 1 do data[i * n + i] <- diag[i]
                let native =
                    try Linalg.symmRightUpperNative data n b m
                    finally for i in 0 .. n - 1 do data[i * n + i] <- saved[i]
                match native with
                | Some c -> c
                | None -> Linalg.symmRightUpperManaged data diag n b m)

        /// Eigenvalues (ascending) of S + ridge·I, with row j of z (N×N) the eigenvector of value j, using this
        /// block's lower triangle as the eigensolver's input and scratch (dsyevr: no copy of S, O(N) workspace).
        /// S (upper triangle and diagonal vector) survives; a Cholesky factor held in the lower triangle does not,
        /// so the block is refactored (from S) if a factor is asked for later.
        member _.EigenRowsInto(z: float[]) : float[] =
            lock gate (fun () ->
                regularisedLower ()
                Linalg.symmetricEigenRowsInto data n z)

        /// Reduces S + ridge·I to tridiagonal T = Qᵀ·(S + ridge·I)·Q (diagonal d, off-diagonal e) with dsytrd on
        /// this block's lower triangle, which then holds Q's reflectors (tau alongside) until the next rewrite; S
        /// survives as for <c>EigenRowsInto</c>. Returns the version that <c>ApplyQ</c> checks.
        member _.Tridiagonalize(d: float[], e: float[], tau: float[]) : int =
            lock gate (fun () ->
                regularisedLower ()
                match Tridiagonal.trySytrdLowerRows data n d e tau with
                | Some 0 ->
                    holdsReflectors <- true
                    version
                | Some info -> raise (ArithmeticException $"LAPACKE_dsytrd failed (info = {string info})")
                | None -> invalidOp "LAPACKE_dsytrd is not loaded")

        /// True while the reflectors of <c>Tridiagonalize</c>'s version v are still in the lower triangle.
        member _.HoldsReflectors(v: int) = lock gate (fun () -> holdsReflectors && version = v)

        /// Rows of b (m×N) ← row·Q, or row·Qᵀ when transposeQ, with Q of <c>Tridiagonalize</c>'s version v.
        member _.ApplyQ(v: int, tau: float[], b: float[], m: int, transposeQ: bool) =
            lock gate (fun () ->
                if not (holdsReflectors && version = v) then
                    invalidOp $"{what}: its tridiagonal reduction was overwritten (internal error)"
                match Tridiagonal.tryOrmtrRowsBlocked data n tau b m transposeQ with
                | Some 0 -> ()
                | Some info -> raise (ArithmeticException $"LAPACKE_dormtr failed (info = {string info})")
                | None -> invalidOp "LAPACKE_dormtr is not loaded")

        /// A fresh full copy of S + shift·I (both triangles).
        member _.Shifted(shift: float) : float[] =
            lock gate (fun () ->
                let a = Pages.zeroed (n * n)
                for i in 0 .. n - 1 do
                    a[i * n + i] <- diag[i] + shift
                    for j in i + 1 .. n - 1 do
                        a[i * n + j] <- data[i * n + j]
                        a[j * n + i] <- data[i * n + j]
                a)

    /// Eigenvalues (ascending) and orthonormal eigenvectors of a symmetric PSD N×N matrix; row j of Rows is the
    /// eigenvector of Values[j].
    type Eigen = { Values: float[]; Rows: float[] }

    /// Eigenvalues checked finite: those within N·10ε·max|λ| of zero (round-off) are set to 0; a more negative one
    /// means the block is not PSD and raises NeuralTangentsException.
    let private checkedValues (what: string) (values: float[]) : float[] =
        let n = values.Length
        let maxAbs = if n = 0 then 0.0 else values |> Array.map abs |> Array.max
        let tol = 10.0 * float n * 2.220446049250313e-16 * maxAbs
        let minV = if n = 0 then 0.0 else Array.min values
        if not (Array.forall Double.IsFinite values) then
            fail $"{what} has non-finite eigenvalues; check the kernel for overflow"
        if minV < -tol then
            fail ((what + " is not positive semi-definite (smallest eigenvalue " + Show.g minV + ", largest " + Show.g maxAbs + "); " + advice))
        values |> Array.map (fun v -> if v < tol then 0.0 else v)

    /// Eigendecomposition of S + ridge·I (dsyevr on the block's own lower triangle when loaded, MathNet otherwise)
    /// into one fresh N×N buffer, the only N×N array it allocates; eigenvalues checked as <c>checkedValues</c>.
    let eigen (what: string) (b: Block) : Eigen =
        let a = Array.zeroCreate (b.Size * b.Size)
        { Values = checkedValues what (b.EigenRowsInto a); Rows = a }

    /// A block's tridiagonal form T = Qᵀ·(S + ridge·I)·Q: diagonal D, off-diagonal E (its last entry scratch), the
    /// reflectors' Tau, and the block version whose lower triangle holds the reflectors.
    type Reduction = { D: float[]; E: float[]; Tau: float[]; Version: int }

    /// dsytrd on the block (see <c>Block.Tridiagonalize</c>), with whatever number of OpenBLAS threads is set.
    let reduce (b: Block) : Reduction =
        let n = b.Size
        let d, e, tau = Array.zeroCreate n, Array.zeroCreate n, Array.zeroCreate n
        let version = b.Tridiagonalize(d, e, tau)
        { D = d; E = e; Tau = tau; Version = version }

    /// <summary>Eigenvalues of S + ridge·I (ascending, checked as <c>eigen</c>) and its eigenvectors V, kept as
    /// V = Q·Z: Q the block's tridiagonal reflectors (dsytrd), Z the tridiagonal's eigenvectors (dstemr, MRRR), in
    /// one N×N buffer. dsyevr computes the same and then forms V = Q·Z (2N³ flops); a prediction only needs
    /// B·V and P·Vᵀ for M-row blocks, 2·M·N² each through Q's reflectors. V is formed, in place of Z, only when
    /// <c>Rows</c> is asked for. Without native dsytrd/dstemr/dormtr (or when MRRR fails) the buffer holds Vᵀ from
    /// the start (<c>eigen</c>'s route).</summary>
    [<Sealed>]
    type Spectrum private (what: string, z: float[], n: int, block: Block, tau: float[], version: int,
                           pending: Task<float[] option>, eager: float[]) =
        let gate = obj ()
        /// Whether z holds R = Vᵀ (row j the eigenvector of value j) rather than Z.
        let mutable formed = isNull tau
        /// Checked eigenvalues, null until the tridiagonal's eigenpairs are in.
        let mutable values = eager

        /// Waits for MRRR; when it did not deliver every pair, dsyevr (with its own fallback, dstebz + dstein)
        /// recomputes the basis from S into z, which then holds R.
        let ready () =
            if isNull values then
                match pending.GetAwaiter().GetResult() with
                | Some w -> values <- checkedValues what w
                | None ->
                    values <- checkedValues what (block.EigenRowsInto z)
                    formed <- true
            values

        /// Starts the spectrum of a block's S + ridge·I: dsytrd now, on this thread, unless <c>reduced</c> is the
        /// block's current reduction; MRRR (dstemr, serial in LAPACK) on a pool thread, so that the first B·Q
        /// (blocked dormtr, one OpenBLAS thread fewer meanwhile) overlaps with it. One fresh N×N buffer, as
        /// <c>eigen</c>. Without native dsytrd/dstemr/dormtr: <c>eigen</c>'s route.
        static member Of(what: string, b: Block, reduced: Reduction option) : Spectrum =
            let n = b.Size
            let z = Pages.zeroed (n * n)
            if n = 0 || not (Tridiagonal.available ()) then
                Spectrum(what, z, n, b, null, 0, null, checkedValues what (b.EigenRowsInto z))
            else
                let { D = d; E = e; Tau = tau; Version = version } =
                    match reduced with
                    | Some r when b.HoldsReflectors r.Version -> r
                    | _ -> reduce b
                let w = Array.zeroCreate n
                let pending = Task.Run(fun () -> match Tridiagonal.tryStemrRows d e n w z with Some 0 -> Some w | _ -> None)
                Spectrum(what, z, n, b, tau, version, pending, null)

        /// Eigenvalues, ascending, round-off negatives set to 0.
        member _.Values = lock gate ready

        /// False once the block's lower triangle was reused (a Cholesky factor, another decomposition) while
        /// this spectrum still needs its reflectors: compute a new one.
        member _.IsCurrent = lock gate (fun () -> formed || block.HoldsReflectors version)

        /// B·V for B (m×N), fresh; B is not modified.
        member _.TimesV(b: float[], m: int) : float[] =
            lock gate (fun () ->
                if formed then Linalg.gemmNT 1.0 b m z n n
                else
                    let c = Pages.copy b
                    // B·Q while MRRR (one core) may still run: with one OpenBLAS thread fewer, so that the two do
                    // not contend for a core (two cores: two threads took 2.1–2.4 s beside MRRR's 2.1 s, one
                    // 1.0–1.4 s; N = 4000, M = 1000, Zen 3).
                    if pending.IsCompleted then block.ApplyQ(version, tau, c, m, false)
                    else Tridiagonal.withBlasThreadsLess 1 (fun () -> block.ApplyQ(version, tau, c, m, false))
                    ready () |> ignore
                    // (B·Q)·Z, row j of z being column j of Z; B·Rᵀ when MRRR failed and z holds R.
                    Linalg.gemmNT 1.0 (if formed then b else c) m z n n)

        /// P·Vᵀ for P (m×N), fresh.
        member _.TimesVT(p: float[], m: int) : float[] =
            lock gate (fun () ->
                ready () |> ignore
                let c = Linalg.gemm false false m n n p z // P·Zᵀ (or P·Vᵀ once formed)
                if not formed then block.ApplyQ(version, tau, c, m, true) // ·Qᵀ
                c)

        /// R = Vᵀ (N×N, row j the eigenvector of value j), formed in place of Z on first use.
        member _.Rows : float[] =
            lock gate (fun () ->
                ready () |> ignore
                if not formed then
                    block.ApplyQ(version, tau, z, n, true) // Zᵀ·Qᵀ = (Q·Z)ᵀ, as dsyevr's dormtr
                    formed <- true
                z)

    /// The spectrum of a block's S + ridge·I through its tridiagonal form (see <c>Spectrum</c>).
    let spectrum (what: string) (b: Block) (reduced: Reduction option) : Spectrum = Spectrum.Of(what, b, reduced)
