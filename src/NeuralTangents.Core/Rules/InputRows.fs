namespace NeuralTangents.Rules

#nowarn "9" // pointer stores into the caller's pinned band rows

open System
open System.Runtime.Intrinsics
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
          Q: int[]
          /// X1 and X2 channel-major, (N, C, S): a channel's values at consecutive positions are consecutive.
          X1T: float[]
          X2T: float[]
          /// Entries come in lines of this many (the last spatial axis): along a line Q (and the slot written) goes
          /// up by one, and P stays (full layout) or goes up by one too (diagonal: PConst false).
          Line: int
          PConst: bool }

    /// Row (h, h′) of the covariance of input i of a with input j of b (a, b: X1 or X2) into dst[0 .. P.Length):
    /// dst[e] = (Σ_c a[i, h, P[e], c]·b[j, h′, Q[e], c])·(1/C), channels in ascending order. Products commute
    /// exactly, so the (i, i) block of an input with itself is exactly symmetric under (h, h′, w, w′) ↦ (h′, h, w′, w),
    /// and every reader of an (i, i) row (a pair, a variance, a covariance) gets the same bits.
    /// Entry e written to dst[at[e]] (null: dst[e]). Along each line, four entries at a time from the channel-major
    /// copies: the same products and sums per entry, in the same order (a·b per channel, added in channel order,
    /// then the scale), so the same bits as one entry at a time.
    let private rowWith (rows: Rows) (a: float[]) (i: int) (b: float[]) (j: int) (h: int) (h': int) (at: int[]) (dst: nativeptr<float>) =
        let c = rows.C
        let p, q = rows.P, rows.Q
        let inline scalar (e: int) =
            let pa = (i * rows.S + h * rows.Rest + p[e]) * c
            let pb = (j * rows.S + h' * rows.Rest + q[e]) * c
            let mutable acc = a[pa] * b[pb]
            for ch in 1 .. c - 1 do acc <- acc + a[pa + ch] * b[pb + ch]
            NativePtr.set dst (if isNull at then e else at[e]) (acc * rows.Inv)
        let line = rows.Line
        if not Vector256.IsHardwareAccelerated || line < 4 then
            for e in 0 .. p.Length - 1 do scalar e
        else
            let aT = if obj.ReferenceEquals(a, rows.X1) then rows.X1T else rows.X2T
            let bT = if obj.ReferenceEquals(b, rows.X1) then rows.X1T else rows.X2T
            use pa = fixed aT
            use pb = fixed bT
            let inv = Vector256.Create rows.Inv
            let s = rows.S
            let mutable e0 = 0
            while e0 < p.Length do
                // Channel ch of a at the line's first position (P), of b at Q; the line's slots are consecutive.
                let a0 = (i * c * s) + h * rows.Rest + p[e0]
                let b0 = (j * c * s) + h' * rows.Rest + q[e0]
                let d = NativePtr.add dst (if isNull at then e0 else at[e0])
                let mutable k = 0
                while k + 4 <= line do
                    let av (ch: int) =
                        if rows.PConst then Vector256.Create(NativePtr.get pa (a0 + ch * s))
                        else Vector256.Load(NativePtr.add pa (a0 + ch * s + k))
                    let bv (ch: int) = Vector256.Load(NativePtr.add pb (b0 + ch * s + k))
                    let mutable acc = av 0 * bv 0
                    for ch in 1 .. c - 1 do acc <- acc + av ch * bv ch
                    (acc * inv).Store(NativePtr.add d k)
                    k <- k + 4
                for e in e0 + k .. e0 + line - 1 do scalar e
                e0 <- e0 + line

    let row (rows: Rows) (a: float[]) (i: int) (b: float[]) (j: int) (h: int) (h': int) (dst: nativeptr<float>) =
        rowWith rows a i b j h h' null dst

    /// <c>row</c> with entry e written to dst[at[e]] (the framed rows of <c>ConvStackPlan.framed</c>; consecutive
    /// along each line).
    let rowAt (rows: Rows) (a: float[]) (i: int) (b: float[]) (j: int) (h: int) (h': int) (at: int[]) (dst: nativeptr<float>) =
        rowWith rows a i b j h h' at dst

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
        // Channel-major copies: (n, s, c) → (n, c, s).
        let channelMajor (x: float[]) =
            let n = x.Length / (s * c)
            let t = Pages.uninitialized x.Length
            for i in 0 .. n - 1 do
                for pos in 0 .. s - 1 do
                    for ch in 0 .. c - 1 do
                        t[(i * c + ch) * s + pos] <- x[(i * s + pos) * c + ch]
            t
        let x1T = channelMajor x1.Data
        let rows =
            { X1 = x1.Data; X2 = (match x2 with Some t -> t.Data | None -> x1.Data); C = c; Inv = 1.0 / float c
              S = s; Rest = (if diagonalSpatial then s else s / spatial[0]); P = p; Q = q
              X1T = x1T; X2T = (match x2 with Some t -> channelMajor t.Data | None -> x1T)
              Line = (if diagonalSpatial || spatial.Length > 1 then spatial[spatial.Length - 1] else 1); PConst = not diagonalSpatial }
        let k =
            Input.assemble get true true diagonalSpatial batchAxis channelAxis x1raw x2raw (shapeOnly [| n1; n2 |])
                (if get.WantsNtk then Some(shapeOnly [| n1; n2 |]) else None) (shapeOnly [| n1 |])
                (x2 |> Option.map (fun _ -> shapeOnly [| n2 |]))
        Some(k, rows)
