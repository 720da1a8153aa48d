namespace NeuralTangents

open System
open System.Numerics.Tensors
open System.Threading.Tasks

/// Dense linear algebra used by the kernel rules (managed, vectorised, both cores).
module internal Linalg =

    /// Splits [0, n) into contiguous chunks, one task each, when the work is large enough to pay.
    let parallelRanges (n: int) (workPerItem: float) (body: int -> int -> unit) =
        let total = float n * workPerItem
        let chunks = if total < 2e5 then 1 else min n (Environment.ProcessorCount * 4)
        if chunks <= 1 then body 0 n
        else
            Parallel.For(0, chunks, fun c ->
                let lo = int (int64 n * int64 c / int64 chunks)
                let hi = int (int64 n * int64 (c + 1) / int64 chunks)
                if hi > lo then body lo hi) |> ignore

    /// C (m×n) = alpha · A (m×k) · Bᵀ (B is n×k), row-major buffers.
    let gemmNT (alpha: float) (a: float[]) (m: int) (b: float[]) (n: int) (k: int) : float[] =
        let c = Array.zeroCreate (m * n)
        // Tiles of rows of B stay in cache while a block of rows of A sweeps them.
        let tile = max 1 (min n (32768 / max 1 k))
        parallelRanges m (float n * float k) (fun lo hi ->
            let mutable j0 = 0
            while j0 < n do
                let j1 = min n (j0 + tile)
                for i in lo .. hi - 1 do
                    let ai = ReadOnlySpan(a, i * k, k)
                    for j in j0 .. j1 - 1 do
                        c[i * n + j] <- alpha * TensorPrimitives.Dot(ai, ReadOnlySpan(b, j * k, k))
                j0 <- j1)
        c

    /// Row-wise sums of squares times alpha: v[i] = alpha · Σ_k A[i,k]².
    let rowNormsSq (alpha: float) (a: float[]) (m: int) (k: int) : float[] =
        Array.init m (fun i ->
            let r = ReadOnlySpan(a, i * k, k)
            alpha * TensorPrimitives.Dot(r, r))
