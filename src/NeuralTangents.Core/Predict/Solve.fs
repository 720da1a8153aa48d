namespace NeuralTangents

open System
open MathNet.Numerics.LinearAlgebra
open MathNet.Numerics.LinearAlgebra.Double

/// Argument checks behind <c>Predict</c>, the MathNet conversions the ODE path (<c>gradientDescent</c>) still uses,
/// and scalar functions of eigenvalues. The factorisations live in <c>PredictFactor</c> (flat buffers).
module internal PredictSolve =

    type Mat = Matrix<float>

    let fail (msg: string) = raise (NeuralTangentsException msg)

    // ---- argument checks --------------------------------------------------------------------------------

    let checkMatrix (name: string) (t: Tensor) =
        if t.Rank <> 2 then
            invalidArg name $"must be a matrix (rank 2), got shape {Show.ints t.Shape}; a network with spatial outputs must end in Flatten or a global pooling layer"
        match Array.tryFindIndex (fun v -> not (Double.IsFinite v)) t.Data with
        | Some i -> invalidArg name $"has a non-finite value ({Show.g (t.Data[i])}) at flat index {string i}"
        | None -> ()

    let checkShape (name: string) (rows: int) (cols: int) (t: Tensor) =
        checkMatrix name t
        if t.Shape[0] <> rows || t.Shape[1] <> cols then
            invalidArg name ("must have shape (" + string rows + ", " + string cols + "), got (" + (string (t.Shape[0])) + ", " + (string (t.Shape[1])) + ")")

    let checkSquare (name: string) (t: Tensor) =
        checkMatrix name t
        if t.Shape[0] <> t.Shape[1] then
            invalidArg name ("must be square, got shape (" + (string (t.Shape[0])) + ", " + (string (t.Shape[1])) + ")")

    /// Targets (N, K) against an (N, N) train–train kernel.
    let checkTargets (name: string) (n: int) (y: Tensor) =
        checkMatrix name y
        if y.Shape[0] <> n then
            invalidArg name ("must have one row per training input (" + string n + "), got " + (string (y.Shape[0])) + " rows")
        if y.Shape[1] < 1 then invalidArg name "must have at least one output column"

    let checkDiagReg (diagReg: float) =
        if not (Double.IsFinite diagReg) || diagReg < 0.0 then
            invalidArg "diagReg" $"must be finite and ≥ 0, got {Show.g diagReg}"

    let checkLearningRate (lr: float) =
        if not (Double.IsFinite lr) || lr <= 0.0 then
            invalidArg "learningRate" $"must be finite and > 0, got {Show.g lr}"

    let checkTimes (times: float[]) =
        if isNull times then nullArg "t"
        times |> Array.iteri (fun i v ->
            if not (Double.IsFinite v) || v < 0.0 then
                invalidArg "t" $"times must be finite and ≥ 0 (pass None for infinite time), got t[{string i}] = {Show.g v}")

    // ---- conversions --------------------------------------------------------------------------------------

    /// A dense (column-major) matrix from a row-major buffer, copied.
    let ofRowMajor (rows: int) (cols: int) (data: float[]) : Mat =
        let a = Array.zeroCreate (rows * cols)
        for i in 0 .. rows - 1 do
            for j in 0 .. cols - 1 do
                a[j * rows + i] <- data[i * cols + j]
        DenseMatrix.OfColumnMajor(rows, cols, a) :> Mat

    let ofTensor (t: Tensor) : Mat = ofRowMajor t.Shape[0] t.Shape[1] t.Data

    /// (A + Aᵀ)/2 as a fresh matrix: kernels are symmetric in exact arithmetic, round-off is not.
    let symmetrize (t: Tensor) : Mat =
        let n = t.Shape[0]
        let a = Pages.zeroed (n * n)
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
