namespace NeuralTangents

/// <summary>Index arithmetic of the two spatial layouts of a covariance tensor (neural_tangents'
/// <c>diagonal_spatial</c>), after <c>utils.zip_axes</c> / <c>diagonal_between</c> / <c>reverse_zipped</c>.
/// A covariance has <c>batchNdim</c> leading batch axes (2 for nngp/ntk, 1 or 2 for cov1/cov2 by
/// <c>diagonal_batch</c>), then either the diagonal layout (H, W, …) — one entry per position — or the full layout
/// (H, H', W, W', …) — one entry per pair of positions, the two copies of each spatial axis adjacent ("zipped").
/// A position p is a flat row-major index into (H, W, …); S is the number of positions.</summary>
module internal Spatial =

    /// The spatial sizes (H, W, …) of a covariance of the given shape.
    let sizes (diagonalSpatial: bool) (batchNdim: int) (shape: int[]) =
        let rest = shape[batchNdim..]
        if diagonalSpatial then rest
        else
            if rest.Length % 2 <> 0 then
                invalidArg "shape" $"a full-spatial covariance needs pairs of spatial axes after {string batchNdim} batch axes, got {Shape.format shape}"
            Array.init (rest.Length / 2) (fun a -> rest[2 * a])

    /// For every entry e of the zipped block (D1, D1, D2, D2, …): its first position p[e] and second position q[e].
    let pairIndices (dims: int[]) : int[] * int[] =
        let size = dims |> Array.fold (fun acc d -> acc * d * d) 1
        let p = Array.zeroCreate size
        let q = Array.zeroCreate size
        for e in 0 .. size - 1 do
            // Peel the zipped axes off from the last: (…, d_k, d_k') with d_k' fastest.
            let mutable r = e
            let mutable pp = 0
            let mutable qq = 0
            let mutable stride = 1
            for a in dims.Length - 1 .. -1 .. 0 do
                let h' = r % dims[a]
                r <- r / dims[a]
                let h = r % dims[a]
                r <- r / dims[a]
                pp <- pp + h * stride
                qq <- qq + h' * stride
                stride <- stride * dims[a]
            p[e] <- pp
            q[e] <- qq
        p, q

    /// For every position p: the entry of the zipped block (D1, D1, D2, D2, …) holding the pair (p, p).
    let diagonalIndices (dims: int[]) : int[] =
        let s = Array.fold (*) 1 dims
        Array.init s (fun p ->
            let mutable r = p
            let mutable e = 0
            let mutable stride = 1
            for a in dims.Length - 1 .. -1 .. 0 do
                let h = r % dims[a]
                r <- r / dims[a]
                e <- e + (h * dims[a] + h) * stride
                stride <- stride * dims[a] * dims[a]
            e)

    /// The variances of a cov1/cov2 tensor at the same position and the same input — neural_tangents'
    /// <c>get_diagonal</c> — as an (N, S) row-major array: cov[i, (i,) p, (p,) …].
    let variances (diagonalBatch: bool) (diagonalSpatial: bool) (cov: Tensor) : float[] =
        let batchNdim = if diagonalBatch then 1 else 2
        let dims = sizes diagonalSpatial batchNdim cov.Shape
        let n = cov.Shape[0]
        if diagonalBatch && diagonalSpatial then cov.Data
        else
            let s = Array.fold (*) 1 dims
            let block = if diagonalSpatial then s else s * s
            let diag = if diagonalSpatial then Array.init s id else diagonalIndices dims
            let v = Array.zeroCreate (n * s)
            for i in 0 .. n - 1 do
                let start = (if diagonalBatch then i else i * n + i) * block
                for p in 0 .. s - 1 do
                    v[i * s + p] <- cov.Data[start + diag[p]]
            v

    /// The mean over the positions of the same-position entries, per leading (batch) index: the leading
    /// <c>lead</c> axes are kept. The full layout sums its diagonal pairs (p, p) in the order of p, as the diagonal
    /// layout sums its entries, so both layouts give the same number for the same values.
    let meanDiagonal (diagonalSpatial: bool) (lead: int) (t: Tensor) : Tensor =
        if t.Rank = lead then t
        else
            let dims = sizes diagonalSpatial lead t.Shape
            let s = Array.fold (*) 1 dims
            let diag = if diagonalSpatial then Array.init s id else diagonalIndices dims
            let outer = Array.fold (*) 1 t.Shape[.. lead - 1]
            let block = t.Length / max 1 outer
            let r = Array.init outer (fun b ->
                let mutable acc = 0.0
                for p in 0 .. s - 1 do acc <- acc + t.Data[b * block + diag[p]]
                acc / float s)
            Tensor.create t.Shape[.. lead - 1] r

    /// The axis order that reverses the spatial axes of a covariance (pairs kept together in the full layout):
    /// (N, [N,] H, H', W, W') → (N, [N,] W, W', H, H'); neural_tangents' <c>reverse_zipped</c>.
    let reverseAxes (diagonalSpatial: bool) (batchNdim: int) (rank: int) : int[] =
        let lead = Array.init batchNdim id
        if diagonalSpatial then Array.append lead [| for a in rank - 1 .. -1 .. batchNdim -> a |]
        else Array.append lead [| for a in rank - 2 .. -2 .. batchNdim do yield a; yield a + 1 |]

    /// The axis order that permutes the spatial axes by <c>axes</c> (axis a of the result is spatial axis axes[a]),
    /// moving each pair together in the full layout; neural_tangents' <c>Kernel.transpose</c>.
    let permuteAxes (diagonalSpatial: bool) (batchNdim: int) (axes: int[]) : int[] =
        let lead = Array.init batchNdim id
        if diagonalSpatial then Array.append lead (axes |> Array.map (fun a -> batchNdim + a))
        else Array.append lead (axes |> Array.collect (fun a -> [| batchNdim + 2 * a; batchNdim + 2 * a + 1 |]))

    /// The axis order that swaps the roles of x1 and x2 in an (N1, N2, spatial…) covariance: the batch axes swap,
    /// and in the full layout so do the two copies of each spatial axis, (N1, N2, H, H') → (N2, N1, H', H).
    let swapAxes (diagonalSpatial: bool) (rank: int) : int[] =
        if diagonalSpatial then Array.append [| 1; 0 |] [| 2 .. rank - 1 |]
        else Array.append [| 1; 0 |] [| for a in 2 .. 2 .. rank - 1 do yield a + 1; yield a |]
