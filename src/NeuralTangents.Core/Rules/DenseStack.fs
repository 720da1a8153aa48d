namespace NeuralTangents.Rules

#nowarn "9" // pointer loads/stores over pinned arrays

open System
open System.Threading.Tasks
open Microsoft.FSharp.NativeInterop
open NeuralTangents
open NeuralTangents.Layers

/// The fused executor of a run of Dense and ABRelu-family layers (an MLP; the plan rewrite <c>FusedDenseStackOp</c>):
/// the layers' own rules (<c>Linear.denseKernel</c>, <c>Elementwise.abReluKernel</c>), the same operations on every
/// entry and so the same bits, executed tile by tile so that the working set stays in cache instead of streaming the
/// (N1, N2, S) arrays through memory once per layer.
///
/// Why it can: Dense and ABRelu map every entry (i, j, p) of nngp/ntk on its own, given the variances of input i and
/// input j at position p (arXiv:1711.00165 eq. 5 with the arc-cosine kernel of Cho and Saul 2009; arXiv:1806.07572
/// for the NTK). Those variances follow their own chain — cov ↦ W_std²·cov + b_std², then the activation of
/// (v, v, v) — which costs O(N·S) per layer and is computed first, per layer, by the operations the rules apply to
/// cov1/cov2 (so a pair of identical inputs, x = v1 = v2, keeps √(v1·v2 − x²) = 0 and θ = 0 exactly at every
/// layer, as in the rules), with r = 1/√v per input. Then each tile of (i, j) pairs (~4096 entries, L2-sized) goes
/// through every layer before the next tile, both cores taking tiles: a Dense followed by an activation is one
/// division-free arc-cosine step with the Dense map in front (<c>SimdNorm.abReluAffineRun</c>), a Dense with no
/// activation after it the rule's own multiply-then-add (<c>Simd.denseRun</c>). When x2 is x1 only tiles I ≤ J
/// are computed and (J, I) is their transpose, after checking that the input's (J, I) tile is exactly the
/// transpose of (I, J) (otherwise (J, I) is computed too): with v1 = v2 every operation is symmetric in (i, j).
/// Kernels this executor does not cover (masks, full batch covariances, the full spatial layout, an activation on
/// a non-Gaussian kernel) make <c>tryRun</c> return None, and the caller runs the layers' own rules.
module internal DenseStack =

    /// One step: an affine map (a Dense layer's, or the identity) then, optionally, an ABRelu with its
    /// (factor, half) = ((a − b)²/(2π), (a² + b²)/2) and the per-input tables v (the variances after the affine map,
    /// (N, S)) and r = 1/√v (0 where v = 0) of x1 and x2.
    type Step =
        { Pre: Simd.DensePre voption
          Relu: (float * float) option
          V1: float[]
          R1: float[]
          V2: float[]
          R2: float[] }

    let private inverseSqrt = SimdNorm.inverseSqrt

    /// The steps of a run of layers on kernel k with the kernel the rules would return minus nngp/ntk (covariances,
    /// shapes and flags), or None when the executor does not cover the layers. Layer errors (a Dense with out_dim 0)
    /// are raised as the rules raise them: by the same functions.
    let plan (layers: Layer list) (k: Kernel) : (Step[] * Kernel) option =
        let steps = ResizeArray<Step>()
        let mutable meta = k
        let mutable pending : Simd.DensePre option = None
        let mutable covered = true
        let affineOnly (pre: Simd.DensePre) =
            steps.Add { Pre = ValueSome pre; Relu = None; V1 = null; R1 = null; V2 = null; R2 = null }
        for layer in layers do
            if covered then
                match layer with
                | Dense d ->
                    pending |> Option.iter affineOnly
                    // The Dense rule's coefficients and its covariances, shapes and flags (Linear.denseKernel).
                    pending <- Some(Linear.densePre d meta)
                    meta <- Linear.denseMeta d meta
                | Activation(ABRelu spec) when meta.IsGaussian ->
                    let a, b = spec.A, spec.B
                    let factor = (a - b) * (a - b) / (2.0 * Math.PI)
                    let half = (a * a + b * b) / 2.0
                    let v1 = meta.Cov1.Data
                    let v2 = match meta.Cov2 with Some c -> c.Data | None -> v1
                    let r1 = inverseSqrt v1
                    steps.Add
                        { Pre = (match pending with Some p -> ValueSome p | None -> ValueNone); Relu = Some(factor, half)
                          V1 = v1; R1 = r1; V2 = v2; R2 = (if obj.ReferenceEquals(v1, v2) then r1 else inverseSqrt v2) }
                    pending <- None
                    // The ABRelu rule's covariances: its scalar step on (v, v, v) (Elementwise.abReluWith).
                    let covMap (c: Tensor) =
                        Tensor.create c.Shape (c.Data |> Array.map (fun v -> let struct (r, _) = Simd.abReluScalar factor half v v v in r))
                    meta <- { meta with Cov1 = covMap meta.Cov1; Cov2 = meta.Cov2 |> Option.map covMap; IsGaussian = false }
                | _ -> covered <- false // a non-Gaussian input to an activation: its rule refuses it, with its message
        pending |> Option.iter affineOnly
        if covered && steps.Count > 0 then Some(steps.ToArray(), meta) else None

    /// The Dense map alone on one run of len entries (nngp x, ntk t → n, d; may alias), with the rule's operations
    /// (multiply, then add, as Simd.densePass), so every vector width gives the rule's bits.
    let inline private affineRun (pre: Simd.DensePre) (px: nativeptr<float>) (pt: nativeptr<float>) (pn: nativeptr<float>)
                                 (pd: nativeptr<float>) (withNtk: bool) (len: int) =
        Simd.denseRun pre.W2 pre.B2 pre.FromOut pre.CN pre.CB px pt pn pd withNtk len

    /// Every step over the pairs (i, j), i ∈ [i0, i1), j ∈ [j0, j1) of (N1, N2, S) arrays: the first step reads
    /// src and writes dst (they may be the same arrays), the others update dst in place (each run reads an entry
    /// before writing it). <paramref name="zeroT"/>: srcT is not an (N1, N2, S) array but a run of zeros at least
    /// as long as any run of the tile, read from its start by every run of the first step (the input kernel's NTK).
    let private runTile (steps: Step[]) (withNtk: bool) (zeroT: bool) (n2: int) (s: int)
                        (srcN: nativeptr<float>) (srcT: nativeptr<float>) (dstN: nativeptr<float>) (dstT: nativeptr<float>)
                        (i0: int) (i1: int) (j0: int) (j1: int) =
        for st in 0 .. steps.Length - 1 do
            let step = steps[st]
            let inN = if st = 0 then srcN else dstN
            let inT0, fixedT = (if st = 0 then srcT, zeroT else dstT, false)
            let inline inT (o: int) = if fixedT then inT0 else NativePtr.add inT0 o
            match step.Relu with
            | None ->
                for i in i0 .. i1 - 1 do
                    let o = (i * n2 + j0) * s
                    affineRun step.Pre.Value (NativePtr.add inN o) (inT o) (NativePtr.add dstN o) (NativePtr.add dstT o)
                        withNtk ((j1 - j0) * s)
            | Some(factor, half) ->
                use p1 = fixed step.V1
                use q1 = fixed step.R1
                use p2 = fixed step.V2
                use q2 = fixed step.R2
                for i in i0 .. i1 - 1 do
                    if s = 1 then
                        // One run per row: input i's variance broadcast, j's contiguous.
                        let o = i * n2 + j0
                        SimdNorm.abReluAffineRun step.Pre factor half (NativePtr.add inN o) (inT o)
                            (NativePtr.add p1 i) (NativePtr.add q1 i) true (NativePtr.add p2 j0) (NativePtr.add q2 j0)
                            (NativePtr.add dstN o) (NativePtr.add dstT o) withNtk (j1 - j0)
                    else
                        for j in j0 .. j1 - 1 do
                            let o = (i * n2 + j) * s
                            SimdNorm.abReluAffineRun step.Pre factor half (NativePtr.add inN o) (inT o)
                                (NativePtr.add p1 (i * s)) (NativePtr.add q1 (i * s)) false (NativePtr.add p2 (j * s)) (NativePtr.add q2 (j * s))
                                (NativePtr.add dstN o) (NativePtr.add dstT o) withNtk s

    /// Whether the (J, I) tile of a is exactly the transpose (over the pairs, positions kept) of its (I, J) tile.
    let private mirrored (a: nativeptr<float>) (n2: int) (s: int) (i0: int) (i1: int) (j0: int) (j1: int) =
        let mutable ok = true
        let mutable i = i0
        while ok && i < i1 do
            let mutable j = j0
            while ok && j < j1 do
                let ij, ji = (i * n2 + j) * s, (j * n2 + i) * s
                for p in 0 .. s - 1 do
                    if NativePtr.get a (ij + p) <> NativePtr.get a (ji + p) then ok <- false
                j <- j + 1
            i <- i + 1
        ok

    /// Fills the strictly lower part of the diagonal tile [i0, i1)² of a from its upper part.
    let private mirrorWithin (a: nativeptr<float>) (n2: int) (s: int) (i0: int) (i1: int) =
        for i in i0 .. i1 - 1 do
            for j in i0 .. i - 1 do
                let ij, ji = (i * n2 + j) * s, (j * n2 + i) * s
                for p in 0 .. s - 1 do NativePtr.set a (ij + p) (NativePtr.get a (ji + p))

    /// Writes the (J, I) tile of a as the transpose of its (I, J) tile.
    let private mirror (a: nativeptr<float>) (n2: int) (s: int) (i0: int) (i1: int) (j0: int) (j1: int) =
        for j in j0 .. j1 - 1 do
            for i in i0 .. i1 - 1 do
                let ij, ji = (i * n2 + j) * s, (j * n2 + i) * s
                for p in 0 .. s - 1 do NativePtr.set a (ji + p) (NativePtr.get a (ij + p))

    /// Tile (I, J) = rows [i0, i1) × columns [j0, j1); when symmetric and I < J also tile (J, I): as the transpose
    /// of (I, J) when the input's (J, I) is exactly the transpose of its (I, J) (checked first: in place, computing
    /// (I, J) overwrites its own input), else computed on its own. <paramref name="upperOnly"/>: the input nngp is
    /// symmetric by construction but only its upper triangle is filled: (J, I) is never read, and a diagonal tile's
    /// lower part is filled from its upper part first (that part of the input is this tile's own scratch).
    let private runTilePair (steps: Step[]) (withNtk: bool) (zeroT: bool) (upperOnly: bool) (symmetric: bool) (n2: int) (s: int)
                            (srcN: float[]) (srcT: float[]) (dstN: float[]) (dstT: float[])
                            (i0: int) (i1: int) (j0: int) (j1: int) =
        use pxN = fixed srcN
        use pxT = fixed srcT
        use pyN = fixed dstN
        use pyT = fixed dstT
        if symmetric && i0 <> j0 then
            // A zero NTK is its own transpose.
            let transposed = (upperOnly && zeroT) || (mirrored pxN n2 s i0 i1 j0 j1 && (not withNtk || zeroT || mirrored pxT n2 s i0 i1 j0 j1))
            runTile steps withNtk zeroT n2 s pxN pxT pyN pyT i0 i1 j0 j1
            if transposed then
                mirror pyN n2 s i0 i1 j0 j1
                if withNtk then mirror pyT n2 s i0 i1 j0 j1
            else runTile steps withNtk zeroT n2 s pxN pxT pyN pyT j0 j1 i0 i1
        else
            if upperOnly then mirrorWithin pxN n2 s i0 i1
            runTile steps withNtk zeroT n2 s pxN pxT pyN pyT i0 i1 j0 j1

    /// Entries of a tile (per array): 4096 float64, 32 KB, so nngp and ntk of a tile stay in L2 between layers.
    [<Literal>]
    let private TileEntries = 4096

    /// Runs the steps of <c>plan</c> over k's nngp/ntk; with <paramref name="inPlace"/> k's arrays are overwritten.
    /// <paramref name="zeroNtk"/>: k has no NTK array but its NTK is +0.0 everywhere (the input kernel's: no
    /// parameters before the first layer); the first step reads its NTK from a small run of zeros instead, and the
    /// output NTK is a fresh array (never read before it is written). <paramref name="upperOnly"/> (with zeroNtk,
    /// x2 = x1): k's nngp holds its upper triangle only (<c>Input.isUpperOnly</c>); its strictly lower triangle is
    /// scratch, partly overwritten.
    let private execute (steps: Step[]) (inPlace: bool) (zeroNtk: bool) (upperOnly: bool) (k: Kernel) : float[] * float[] option =
        let n1, n2 = k.Nngp.Shape[0], k.Nngp.Shape[1]
        let s = k.Nngp.Length / (n1 * n2)
        let withNtk = k.Ntk.IsSome || zeroNtk
        if not inPlace then Memory.checkKernel (int64 n1) (int64 n2) (int64 s) (if withNtk then 2 else 1)
        elif zeroNtk then Memory.checkKernel (int64 n1) (int64 n2) (int64 s) 1
        let fresh (t: Tensor) = if inPlace then t.Data else Pages.uninitialized t.Length
        let outN = fresh k.Nngp
        let outT = if zeroNtk then Some(Pages.uninitialized k.Nngp.Length) else k.Ntk |> Option.map fresh
        // x2 = x1 (one variance table, a square kernel): tiles I ≤ J only.
        let symmetric = k.Cov2.IsNone && n1 = n2
        if upperOnly && not (symmetric && zeroNtk) then invalidArg "k" "DenseStack: an upper-only input is an input kernel of x2 = x1 without an NTK array"
        // Square tiles of b × b pairs when symmetric; otherwise rows of up to TileEntries / S pairs, and as many rows.
        let b = max 1 (int (Math.Sqrt(float TileEntries / float s)))
        let cols = if symmetric then b else min n2 (max 1 (TileEntries / s))
        let rows = if symmetric then b else max 1 (TileEntries / (cols * s))
        let tilesI, tilesJ = (n1 + rows - 1) / rows, (n2 + cols - 1) / cols
        let tiles =
            [| for ti in 0 .. tilesI - 1 do
                 for tj in (if symmetric then ti else 0) .. tilesJ - 1 -> struct (ti, tj) |]
        let srcN = k.Nngp.Data
        // The zero NTK: one run of zeros as long as the longest run of a tile (cols·S entries: a row of a tile, or
        // of its transpose when symmetric, where cols = rows). Every operation then reads the same +0.0 it would
        // read from an all-zero (N1, N2, S) array, so the results are that array's bit for bit.
        let srcT = if zeroNtk then Array.zeroCreate (cols * s) else match k.Ntk with Some t -> t.Data | None -> srcN
        let dstT = defaultArg outT outN
        let body (t: int) =
            let struct (ti, tj) = tiles[t]
            runTilePair steps withNtk zeroNtk upperOnly symmetric n2 s srcN srcT outN dstT
                (ti * rows) (min n1 ((ti + 1) * rows)) (tj * cols) (min n2 ((tj + 1) * cols))
        if tiles.Length = 1 then body 0
        else Parallelism.forRange 0 tiles.Length body
        outN, outT

    /// Runs the layers on k with the fused executor, or returns None when it does not cover them (the caller then
    /// runs the layers' own rules). <paramref name="inPlace"/>: k's nngp/ntk may be overwritten (the plan owns them).
    /// <paramref name="zeroNtk"/>: k.Ntk is None and stands for an NTK of +0.0 everywhere (the input kernel's), which
    /// the result's NTK continues; the result is then the one of k with an all-zero NTK array, bit for bit.
    /// <paramref name="upperOnly"/> (with zeroNtk): k's nngp holds only its upper triangle (<c>Input.isUpperOnly</c>);
    /// the result is the one of the symmetric matrix, bit for bit.
    let tryRunWith (zeroNtk: bool) (upperOnly: bool) (layers: Layer list) (inPlace: bool) (k: Kernel) : Kernel option =
        if zeroNtk && k.Ntk.IsSome then invalidArg "k" "DenseStack.tryRunWith: zeroNtk is for a kernel without an NTK array"
        let n1, n2 = k.Nngp.Shape[0], k.Nngp.Shape[1]
        if not (Kernel.isDiagonalLayout k) || k.Mask1.IsSome || k.Mask2.IsSome || n1 = 0 || n2 = 0 || k.Nngp.Length = 0 then None
        else
        match plan layers k with
        | None -> None
        | Some(steps, meta) ->
            let nngp, ntk = execute steps inPlace zeroNtk upperOnly k
            Some
                { meta with
                    Nngp = Tensor.create k.Nngp.Shape nngp
                    Ntk = ntk |> Option.map (Tensor.create k.Nngp.Shape) }

    /// <c>tryRunWith</c> on k's own NTK (or none).
    let tryRun (layers: Layer list) (inPlace: bool) (k: Kernel) : Kernel option = tryRunWith false false layers inPlace k
