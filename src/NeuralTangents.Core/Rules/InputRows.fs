namespace NeuralTangents.Rules

#nowarn "9" // pointer stores into the caller's pinned band rows

open Microsoft.FSharp.NativeInterop
open NeuralTangents

/// The input kernel (diagonal batch) produced row by row where it is read instead of stored: in the full spatial
/// layout nngp[i, j, h, h′, w, w′, …] = Σ_c x1[i, h, w, …, c]·x2[j, h′, w′, …, c] / C (neural_tangents'
/// <c>_inputs_to_kernel</c>, full spatial covariance), in the diagonal one nngp[i, j, h, w, …] = Σ_c x1·x2 / C at
/// the same position. Stored, it holds S² (S) entries per pair of inputs — 8 MB per pair for 32×32 images in the
/// full layout, 80 GB for 100 images — while the fused Conv executor reads it once, one row of one pair at a time.
/// Its NTK is +0.0 everywhere; its variances (cov1, cov2) are the rows of an input with itself.
module internal InputRows =

    /// Canonical (N, S, C) inputs and the entries of one row: in the full layout the zipped pairs of the axes after
    /// the first, in the diagonal layout every position (one row, Rest = S, P = Q = identity).
    type Rows =
        { X1: float[]
          /// x2's buffer, or X1 itself when x2 is x1.
          X2: float[]
          C: int
          Inv: float
          /// Positions per input (S) and per index of the first spatial axis (Rest = S / first size).
          S: int
          Rest: int
          /// Zipped pair e of the remaining axes, (w, w′, d, d′, …) with the last primed axis fastest → its two
          /// positions within a row of the first axis.
          P: int[]
          Q: int[] }

    /// Row (h, h′) of the covariance of input i of a with input j of b (a, b: X1 or X2) into dst[0 .. P.Length):
    /// dst[e] = (Σ_c a[i, h, P[e], c]·b[j, h′, Q[e], c])·(1/C), channels in ascending order. Products commute
    /// exactly, so the (i, i) block of an input with itself is exactly symmetric under (h, h′, w, w′) ↦ (h′, h, w′, w),
    /// and every reader of an (i, i) row (a pair, a variance, a covariance) gets the same bits.
    let inline private rowWith (rows: Rows) (a: float[]) (i: int) (b: float[]) (j: int) (h: int) (h': int) ([<InlineIfLambda>] slot: int -> int) (dst: nativeptr<float>) =
        let c = rows.C
        let baseA = (i * rows.S + h * rows.Rest) * c
        let baseB = (j * rows.S + h' * rows.Rest) * c
        let p, q = rows.P, rows.Q
        for e in 0 .. p.Length - 1 do
            let pa = baseA + p[e] * c
            let pb = baseB + q[e] * c
            let mutable acc = a[pa] * b[pb]
            for ch in 1 .. c - 1 do acc <- acc + a[pa + ch] * b[pb + ch]
            NativePtr.set dst (slot e) (acc * rows.Inv)

    let row (rows: Rows) (a: float[]) (i: int) (b: float[]) (j: int) (h: int) (h': int) (dst: nativeptr<float>) =
        rowWith rows a i b j h h' id dst

    /// <c>row</c> with entry e written to dst[at[e]] (the framed rows of <c>ConvStackPlan.framed</c>).
    let rowAt (rows: Rows) (a: float[]) (i: int) (b: float[]) (j: int) (h: int) (h': int) (at: int[]) (dst: nativeptr<float>) =
        rowWith rows a i b j h h' (fun e -> at[e]) dst

    /// For inputs with at least one spatial axis: the input kernel's record in the diagonal batch layout (full or
    /// diagonal spatial) with no arrays behind it (every Data is empty: only shapes and metadata, exactly as
    /// <c>Input.kernelWith</c> sets them) and the rows that stand for its arrays. Inputs are checked as there.
    let ofInputs (get: Get) (diagonalSpatial: bool) (batchAxis: int) (channelAxis: int) (x1raw: Tensor) (x2raw: Tensor option) : (Kernel * Rows) option =
        let x1, x2 = Input.canonicalPair batchAxis channelAxis x1raw x2raw
        let spatial = x1.Shape[1 .. x1.Rank - 2]
        if spatial.Length = 0 then None
        else
        let n1, n2 = x1.Shape[0], (defaultArg x2 x1).Shape[0]
        let c = x1.Shape[x1.Rank - 1]
        let s = Array.fold (*) 1 spatial
        let pairs = if diagonalSpatial then spatial else spatial |> Array.collect (fun d -> [| d; d |])
        // Empty placeholders (each its own array, as the plan tracks arrays by identity): a stray read fails loudly.
        let shapeOnly (lead: int[]) = { Shape = Array.append lead pairs; Data = Array.zeroCreate 0 }
        let p, q = if diagonalSpatial then Array.init s id, Array.init s id else Spatial.pairIndices spatial[1..]
        let rows =
            { X1 = x1.Data; X2 = (match x2 with Some t -> t.Data | None -> x1.Data); C = c; Inv = 1.0 / float c
              S = s; Rest = (if diagonalSpatial then s else s / spatial[0]); P = p; Q = q }
        let k =
            Input.assemble get true true diagonalSpatial batchAxis channelAxis x1raw x2raw (shapeOnly [| n1; n2 |])
                (if get.WantsNtk then Some(shapeOnly [| n1; n2 |]) else None) (shapeOnly [| n1 |])
                (x2 |> Option.map (fun _ -> shapeOnly [| n2 |]))
        Some(k, rows)
