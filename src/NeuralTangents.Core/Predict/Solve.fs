namespace NeuralTangents

open System
open MathNet.Numerics.LinearAlgebra
open MathNet.Numerics.LinearAlgebra.Double

/// Argument checks and dense linear algebra behind <c>Predict</c>: symmetrisation, the diagonal regulariser,
/// Cholesky solves and symmetric eigendecompositions (MathNet, managed). Everything numeric that <c>Predict</c>
/// needs from a factorisation goes through this module, so that a native LAPACK path can replace it alone.
module internal PredictSolve =

    type Mat = Matrix<float>

    let fail (msg: string) = raise (NeuralTangentsException msg)

    // ---- argument checks --------------------------------------------------------------------------------

    let checkMatrix (name: string) (t: Tensor) =
        if t.Rank <> 2 then
            invalidArg name (sprintf "must be a matrix (rank 2), got shape %A; a network with spatial outputs must end in Flatten or a global pooling layer" t.Shape)
        match Array.tryFindIndex (fun v -> not (Double.IsFinite v)) t.Data with
        | Some i -> invalidArg name (sprintf "has a non-finite value (%g) at flat index %d" t.Data[i] i)
        | None -> ()

    let checkShape (name: string) (rows: int) (cols: int) (t: Tensor) =
        checkMatrix name t
        if t.Shape[0] <> rows || t.Shape[1] <> cols then
            invalidArg name (sprintf "must have shape (%d, %d), got (%d, %d)" rows cols t.Shape[0] t.Shape[1])

    let checkSquare (name: string) (t: Tensor) =
        checkMatrix name t
        if t.Shape[0] <> t.Shape[1] then
            invalidArg name (sprintf "must be square, got shape (%d, %d)" t.Shape[0] t.Shape[1])

    /// Targets (N, K) against an (N, N) train–train kernel.
    let checkTargets (name: string) (n: int) (y: Tensor) =
        checkMatrix name y
        if y.Shape[0] <> n then
            invalidArg name (sprintf "must have one row per training input (%d), got %d rows" n y.Shape[0])
        if y.Shape[1] < 1 then invalidArg name "must have at least one output column"

    let checkDiagReg (diagReg: float) =
        if not (Double.IsFinite diagReg) || diagReg < 0.0 then
            invalidArg "diagReg" (sprintf "must be finite and ≥ 0, got %g" diagReg)

    let checkLearningRate (lr: float) =
        if not (Double.IsFinite lr) || lr <= 0.0 then
            invalidArg "learningRate" (sprintf "must be finite and > 0, got %g" lr)

    let checkTimes (times: float[]) =
        if isNull times then nullArg "t"
        times |> Array.iteri (fun i v ->
            if not (Double.IsFinite v) || v < 0.0 then
                invalidArg "t" (sprintf "times must be finite and ≥ 0 (pass None for infinite time), got t[%d] = %g" i v))

    // ---- conversions --------------------------------------------------------------------------------------

    /// A dense (column-major) matrix from a row-major buffer, copied.
    let ofRowMajor (rows: int) (cols: int) (data: float[]) : Mat =
        let a = Array.zeroCreate (rows * cols)
        for i in 0 .. rows - 1 do
            for j in 0 .. cols - 1 do
                a[j * rows + i] <- data[i * cols + j]
        DenseMatrix.OfColumnMajor(rows, cols, a) :> Mat

    let ofTensor (t: Tensor) : Mat = ofRowMajor t.Shape[0] t.Shape[1] t.Data

    let toTensor (m: Mat) : Tensor = Tensor.create [| m.RowCount; m.ColumnCount |] (m.ToRowMajorArray())

    /// Stacks equally shaped matrices along a new leading (time) axis.
    let stack (ms: Mat[]) (rows: int) (cols: int) : Tensor =
        let data = Array.zeroCreate (ms.Length * rows * cols)
        ms |> Array.iteri (fun k m -> Array.blit (m.ToRowMajorArray()) 0 data (k * rows * cols) (rows * cols))
        Tensor.create [| ms.Length; rows; cols |] data

    /// A·B through <c>Linalg.gemmNT</c>: native dgemm when loaded, else the blocked Vector512 kernel (~30 GFLOP/s on
    /// two cores, against ~6 for MathNet's managed product); small products stay with MathNet.
    let mul (a: Mat) (b: Mat) : Mat =
        let m, k, n = a.RowCount, a.ColumnCount, b.ColumnCount
        if k <> b.RowCount then invalidArg "b" (sprintf "inner dimensions differ: (%d, %d)·(%d, %d)" m k b.RowCount n)
        if float m * float n * float k < 1e6 then a * b
        else
            // B's column-major values are Bᵀ row-major, the layout gemmNT takes for its second operand.
            ofRowMajor m n (Linalg.gemmNT 1.0 (a.ToRowMajorArray()) m (b.ToColumnMajorArray()) n k)

    /// Aᵀ·B.
    let mulTN (a: Mat) (b: Mat) : Mat = mul (a.Transpose()) b

    /// A·Bᵀ.
    let mulNT (a: Mat) (b: Mat) : Mat = mul a (b.Transpose())

    /// (A + Aᵀ)/2 as a fresh matrix: kernels are symmetric in exact arithmetic, round-off is not.
    let symmetrize (t: Tensor) : Mat =
        let n = t.Shape[0]
        let a = Array.zeroCreate (n * n)
        let d = t.Data
        // 64×64 tiles keep both the row-wise and the column-wise reads in cache.
        let tile = 64
        Linalg.parallelRanges ((n + tile - 1) / tile) (float (tile * n)) (fun lo hi ->
            for bi in lo .. hi - 1 do
                for bj in 0 .. (n - 1) / tile do
                    for i in bi * tile .. min n ((bi + 1) * tile) - 1 do
                        for j in bj * tile .. min n ((bj + 1) * tile) - 1 do
                            a[i * n + j] <- 0.5 * (d[i * n + j] + d[j * n + i]))
        DenseMatrix.OfColumnMajor(n, n, a) :> Mat // symmetric: row- and column-major agree

    /// Scales column j of a copy of A by w[j] (A · diag(w)).
    let scaleColumns (a: Mat) (w: float[]) : Mat =
        let c = DenseMatrix.OfMatrix a
        let v = c.Values // column-major
        let r = a.RowCount
        for j in 0 .. a.ColumnCount - 1 do
            let s = Span<float>(v, j * r, r)
            for i in 0 .. r - 1 do
                s[i] <- s[i] * w[j]
        c :> Mat

    /// (A + Aᵀ)/2 in place.
    let symmetrizeInPlace (a: Mat) =
        for i in 0 .. a.RowCount - 1 do
            for j in i + 1 .. a.ColumnCount - 1 do
                let m = 0.5 * (a.At(i, j) + a.At(j, i))
                a.At(i, j, m)
                a.At(j, i, m)
        a

    // ---- regulariser ----------------------------------------------------------------------------------------

    /// The absolute ridge added to the diagonal: diagReg itself, or diagReg times the mean of the diagonal
    /// (neural_tangents' <c>_add_diagonal_regularizer</c>: diag_reg · trace(A) / N unless diag_reg_absolute_scale).
    let ridge (diagReg: float) (absolute: bool) (a: Mat) =
        if absolute then diagReg else diagReg * a.Trace() / float a.RowCount

    /// A + ridge · I as a fresh matrix.
    let regularize (diagReg: float) (absolute: bool) (a: Mat) : Mat =
        let r = ridge diagReg absolute a
        let b = a.Clone()
        if r <> 0.0 then
            for i in 0 .. b.RowCount - 1 do
                b.At(i, i, b.At(i, i) + r)
        b

    let private advice =
        "pass a positive diag_reg (e.g. 1e-6 relative to the mean diagonal) to regularise it, or check for duplicated training inputs"

    // ---- Cholesky ---------------------------------------------------------------------------------------------

    /// A Cholesky factorisation A = L·Lᵀ that solves A·X = B: LAPACK's dpotrf/dpotrs when OpenBLAS/LAPACKE are
    /// loaded (Linalg, probed at run time), MathNet's managed factorisation otherwise.
    [<Sealed>]
    type CholeskyFactor private (n: int, native: float[] option, managed: Factorization.Cholesky<float> option) =
        /// The i-th diagonal entry of L.
        member _.Pivot(i: int) =
            match native, managed with
            | Some l, _ -> l[i * n + i]
            | _, Some ch -> ch.Factor.At(i, i)
            | _ -> nan

        /// X = A⁻¹·B.
        member _.Solve(rhs: Mat) : Mat =
            match native, managed with
            | Some l, _ -> ofRowMajor n rhs.ColumnCount (Linalg.choleskySolve l n (rhs.ToRowMajorArray()) rhs.ColumnCount)
            | _, Some ch -> ch.Solve rhs
            | _ -> invalidOp "empty factorisation"

        static member Of(a: Mat) : CholeskyFactor =
            let n = a.RowCount
            if (Native.libraries ()).Potrf.IsSome && (Native.libraries ()).Potrs.IsSome then
                // a is symmetric: its column-major values are its row-major values (Linalg.cholesky copies them).
                let values = match a with :? DenseMatrix as dm -> dm.Values | _ -> a.ToColumnMajorArray()
                CholeskyFactor(n, Some(Linalg.cholesky values n), None)
            else CholeskyFactor(n, None, Some(a.Cholesky()))

    /// Cholesky factor of a symmetric positive definite matrix; a matrix that is not positive definite, or is
    /// singular to working precision (a pivot² ≤ N·ε·max diagonal), raises NeuralTangentsException.
    let cholesky (what: string) (a: Mat) : CholeskyFactor =
        let n = a.RowCount
        let ch =
            try CholeskyFactor.Of a
            with :? ArgumentException ->
                fail (sprintf "%s is not positive definite (Cholesky failed); %s" what advice)
        let mutable maxDiag = 0.0
        for i in 0 .. n - 1 do maxDiag <- max maxDiag (abs (a.At(i, i)))
        let floor = float n * 2.220446049250313e-16 * maxDiag
        for i in 0 .. n - 1 do
            let p = ch.Pivot i
            if not (Double.IsFinite p) || p * p <= floor then
                fail (sprintf "%s is singular to working precision (pivot %d is %g against a largest diagonal of %g); %s"
                        what i (p * p) maxDiag advice)
        ch

    // ---- eigendecomposition -------------------------------------------------------------------------------

    /// Eigenvalues (ascending) and orthonormal eigenvectors (columns) of a symmetric positive semi-definite matrix.
    type EigenBasis = { Values: float[]; Vectors: Mat }

    /// Eigendecomposition of a symmetric PSD matrix (LAPACK's dsyevd when loaded, MathNet otherwise). Eigenvalues
    /// within N·10ε·max|λ| of zero (round-off) are set to 0; a more negative one means the matrix is not PSD and
    /// raises NeuralTangentsException.
    let eigen (what: string) (a: Mat) : EigenBasis =
        let n = a.RowCount
        let values, vectors =
            if (Native.libraries ()).Syevd.IsSome then
                let w, v = Linalg.symmetricEigen (a.ToRowMajorArray()) n
                w, ofRowMajor n n v
            else
                let evd = a.Evd(Symmetricity.Symmetric)
                evd.EigenValues.ToArray() |> Array.map (fun c -> c.Real), evd.EigenVectors
        let maxAbs = if n = 0 then 0.0 else values |> Array.map abs |> Array.max
        let tol = 10.0 * float n * 2.220446049250313e-16 * maxAbs
        let minV = if n = 0 then 0.0 else Array.min values
        if not (Array.forall Double.IsFinite values) then
            fail (sprintf "%s has non-finite eigenvalues; check the kernel for overflow" what)
        if minV < -tol then
            fail (sprintf "%s is not positive semi-definite (smallest eigenvalue %g, largest %g); %s" what minV maxAbs advice)
        let clamped = values |> Array.map (fun v -> if v < tol then 0.0 else v)
        { Values = clamped; Vectors = vectors }

    // ---- scalar functions of eigenvalues --------------------------------------------------------------------

    /// exp(x) − 1 to full relative precision near 0 (Kahan's trick; .NET has no expm1).
    let expm1 (x: float) =
        if abs x >= 0.5 then exp x - 1.0
        else
            let u = exp x
            if u = 1.0 then x
            else
                let um1 = u - 1.0
                if um1 = -1.0 then -1.0 else um1 * x / log u

    /// expm1(−λ·s) / λ, and its limit −s at λ = 0 (the flow along a zero-eigenvalue direction).
    let expm1OverLambda (lambda: float) (s: float) =
        if lambda = 0.0 then -s else expm1 (-lambda * s) / lambda
