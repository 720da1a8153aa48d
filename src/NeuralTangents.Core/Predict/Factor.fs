namespace NeuralTangents

open System
open System.Numerics.Tensors
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
        "pass a positive diag_reg (e.g. 1e-6 relative to the mean diagonal) to regularise it, or check for duplicated training inputs"

    /// <summary>A symmetric train–train block S (N×N) with its ridge and, after <c>Factor</c>, the Cholesky
    /// factor of S + ridge·I, in one buffer (see the module remarks). Thread-safe: one lock guards the buffer.</summary>
    [<Sealed>]
    type Block private (what: string, n: int, data: float[], diag: float[], ridge: float) =
        let gate = obj ()
        let mutable factored = false
        /// Whether the lower triangle still holds S (false once it holds L or an eigensolver's scratch).
        let mutable lowerIsS = true
        let mutable failure: string option = None

        /// From a square row-major buffer: owned buffers are transformed in place (the caller gives them up),
        /// others are copied once. The ridge is diagReg, or diagReg · trace(S)/N unless absolute
        /// (neural_tangents' _add_diagonal_regularizer).
        static member Create(what: string, source: float[], n: int, owned: bool, diagReg: float, absolute: bool) =
            let data = if owned then source else Array.copy source
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
                    if not lowerIsS then
                        // An eigendecomposition used the lower triangle as scratch: restore S from the upper one.
                        for i in 1 .. n - 1 do
                            for j in 0 .. i - 1 do
                                data[i * n + j] <- data[j * n + i]
                    lowerIsS <- false
                    let mutable maxDiag = 0.0
                    for i in 0 .. n - 1 do
                        data[i * n + i] <- diag[i] + ridge
                        maxDiag <- max maxDiag (abs data[i * n + i])
                    let info = Linalg.choleskyLowerInPlace data n
                    let msg =
                        if info > 0 then
                            Some(sprintf "%s is not positive definite (Cholesky failed at the leading minor of order %d); %s" what info advice)
                        else
                            let floor = float n * 2.220446049250313e-16 * maxDiag
                            seq { 0 .. n - 1 }
                            |> Seq.tryFind (fun i -> let p = data[i * n + i] in not (Double.IsFinite p) || p * p <= floor)
                            |> Option.map (fun i ->
                                let p = data[i * n + i]
                                sprintf "%s is singular to working precision (pivot %d is %g against a largest diagonal of %g); %s"
                                    what i (p * p) maxDiag advice)
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
            lock gate (fun () -> factored && Native.tryTrmmRightLower data n b m)

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
                if not lowerIsS then
                    for i in 1 .. n - 1 do
                        for j in 0 .. i - 1 do
                            data[i * n + j] <- data[j * n + i]
                for i in 0 .. n - 1 do data[i * n + i] <- diag[i] + ridge
                lowerIsS <- false
                factored <- false
                Linalg.symmetricEigenRowsInto data n z)

        /// A fresh full copy of S + shift·I (both triangles).
        member _.Shifted(shift: float) : float[] =
            lock gate (fun () ->
                let a = Array.zeroCreate (n * n)
                for i in 0 .. n - 1 do
                    a[i * n + i] <- diag[i] + shift
                    for j in i + 1 .. n - 1 do
                        a[i * n + j] <- data[i * n + j]
                        a[j * n + i] <- data[i * n + j]
                a)

    /// Eigenvalues (ascending) and orthonormal eigenvectors of a symmetric PSD N×N matrix; row j of Rows is the
    /// eigenvector of Values[j].
    type Eigen = { Values: float[]; Rows: float[] }

    /// Eigendecomposition of S + ridge·I (dsyevr on the block's own lower triangle when loaded, MathNet otherwise)
    /// into one fresh N×N buffer, the only N×N array it allocates.
    /// Eigenvalues within N·10ε·max|λ| of zero (round-off) are set to 0; a more negative one means the block is
    /// not PSD and raises NeuralTangentsException.
    let eigen (what: string) (b: Block) : Eigen =
        let n = b.Size
        let a = Array.zeroCreate (n * n)
        let values = b.EigenRowsInto a
        let maxAbs = if n = 0 then 0.0 else values |> Array.map abs |> Array.max
        let tol = 10.0 * float n * 2.220446049250313e-16 * maxAbs
        let minV = if n = 0 then 0.0 else Array.min values
        if not (Array.forall Double.IsFinite values) then
            fail (sprintf "%s has non-finite eigenvalues; check the kernel for overflow" what)
        if minV < -tol then
            fail (sprintf "%s is not positive semi-definite (smallest eigenvalue %g, largest %g); %s" what minV maxAbs advice)
        { Values = values |> Array.map (fun v -> if v < tol then 0.0 else v); Rows = a }
