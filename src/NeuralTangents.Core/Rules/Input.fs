namespace NeuralTangents.Rules

open System
open System.Numerics.Tensors
open NeuralTangents

/// The kernel of the inputs themselves (neural_tangents' `_inputs_to_kernel`):
/// nngp(x1, x2) = x1·x2ᵀ / C over the channel axis, per spatial position (diagonal spatial layout) or per pair of
/// positions (full layout, neural_tangents' `_cov` with `diagonal_spatial=False`); cov1/cov2 the same for x1 with
/// itself, per input (diagonal batch) or between inputs; the input NTK is zero.
module internal Input =

    let private normAxis (rank: int) (name: string) (a: int) =
        let a' = if a < 0 then a + rank else a
        if a' < 0 || a' >= rank then
            invalidArg name ((name + "=" + string a + " is out of range for inputs of rank " + string rank))
        a'

    /// Moves the batch axis first and the channel axis last: (N, spatial…, C).
    let canonical (batchAxis: int) (channelAxis: int) (x: Tensor) =
        if x.Rank < 2 then
            invalidArg "x" $"inputs need a batch axis and a channel axis (rank ≥ 2), got shape {Shape.format x.Shape}"
        let b = normAxis x.Rank "batch_axis" batchAxis
        let c = normAxis x.Rank "channel_axis" channelAxis
        if b = c then invalidArg "channel_axis" $"batch_axis and channel_axis are both axis {string b}"
        if b = 0 && c = x.Rank - 1 then x
        else
            // Move the channel axis last first, then the batch axis (its index shifts if it was after c).
            let x1 = Tensor.moveAxis c (x.Rank - 1) x
            let b' = if b > c then b - 1 else b
            Tensor.moveAxis b' 0 x1

    /// The covariance x_i(p)·y_j(q)/C of every row i of x (n rows) with every row j of y (m rows), both canonical
    /// (·, S positions, C) buffers: (n, m, S) with p = q in the diagonal spatial layout (one (n×C)·(m×C)ᵀ product per
    /// position), (n, m, zipped pairs) in the full layout (one (n·S×C)·(m·S×C)ᵀ product).
    let private pairCov (diagonalSpatial: bool) (spatial: int[]) (c: int) (x: float[]) (n: int) (y: float[]) (m: int) =
        let inv = 1.0 / float c
        let s = Array.fold (*) 1 spatial
        if diagonalSpatial then
            let slice (t: float[]) (rows: int) (p: int) =
                Array.init (rows * c) (fun idx -> let i, ch = idx / c, idx % c in t[(i * s + p) * c + ch])
            let out = Array.zeroCreate (n * m * s)
            for p in 0 .. s - 1 do
                let g = Linalg.gemmNT inv (slice x n p) n (slice y m p) m c
                for ij in 0 .. n * m - 1 do out[ij * s + p] <- g[ij]
            out
        else
            let pIdx, qIdx = Spatial.pairIndices spatial
            let e = pIdx.Length
            let g = Linalg.gemmNT inv x (n * s) y (m * s) c
            let out = Array.zeroCreate (n * m * e)
            for i in 0 .. n - 1 do
                for j in 0 .. m - 1 do
                    let row = (i * m + j) * e
                    for k in 0 .. e - 1 do
                        out[row + k] <- g[(i * s + pIdx[k]) * (m * s) + j * s + qIdx[k]]
            out

    /// cov[i, h, h', …] = x_i(p)·x_i(q)/C for each row of x on its own (diagonal batch, full spatial layout).
    let private selfCovFull (spatial: int[]) (c: int) (x: float[]) (n: int) =
        let inv = 1.0 / float c
        let s = Array.fold (*) 1 spatial
        let pIdx, qIdx = Spatial.pairIndices spatial
        let e = pIdx.Length
        let out = Array.zeroCreate (n * e)
        for i in 0 .. n - 1 do
            let xi = Array.sub x (i * s * c) (s * c)
            let g = Linalg.gemmNT inv xi s xi s c
            for k in 0 .. e - 1 do out[i * e + k] <- g[pIdx[k] * s + qIdx[k]]
        out

    /// The input kernel in a layout other than diagonal batch with diagonal spatial (or no spatial axes).
    let private general (get: Get) (diagonalBatch: bool) (diagonalSpatial: bool) (x1: Tensor) (x2: Tensor option) =
        let n1 = x1.Shape[0]
        let x2v = defaultArg x2 x1
        let n2 = x2v.Shape[0]
        let c = x1.Shape[x1.Rank - 1]
        let spatial = x1.Shape[1 .. x1.Rank - 2]
        let s = Array.fold (*) 1 spatial
        // S² entries per pair in the full layout, counted in int64: 256×256 positions make 2³² (0 in int32).
        let block64 = if diagonalSpatial then int64 s else int64 s * int64 s
        // nngp and ntk, the product that builds them, and one fresh pair while a rule that cannot work in place runs.
        Memory.checkKernel (int64 n1) (int64 n2) block64 (if get.WantsNtk then 5 else 3)
        if not diagonalBatch then
            Memory.checkKernel (int64 (max n1 n2)) (int64 (max n1 n2)) block64 2
        let block = int block64 // fits: the checks bound N1·N2·block by one array's length
        let spatialPart = if diagonalSpatial then spatial else spatial |> Array.collect (fun d -> [| d; d |])
        let nngp = pairCov diagonalSpatial spatial c x1.Data n1 x2v.Data n2
        let cov (x: Tensor) (n: int) =
            if diagonalBatch then selfCovFull spatial c x.Data n
            else pairCov diagonalSpatial spatial c x.Data n x.Data n
        let cov1 =
            match x2 with
            | Some _ -> cov x1 n1
            // x2 = x1: the variances are the nngp's own diagonal entries, bit for bit (see `kernel`).
            | None when diagonalBatch -> Array.init (n1 * block) (fun idx -> let i, k = idx / block, idx % block in nngp[(i * n1 + i) * block + k])
            | None -> Array.copy nngp
        let covShape (n: int) = Array.concat [ [| n |]; (if diagonalBatch then [||] else [| n |]); spatialPart ]
        let nngpT = Tensor.create (Array.append [| n1; n2 |] spatialPart) nngp
        nngpT,
        Tensor.create (covShape n1) cov1,
        x2 |> Option.map (fun x -> Tensor.create (covShape n2) (cov x n2))

    /// Inputs (per input and position) whose largest entry in magnitude lies outside [1e-70, 1e70] — all-zero ones
    /// aside — are refused. Every rule normalises a covariance c by √(q1·q2) of two variances, and q1·q2 of variances
    /// below ~1e-154 underflows (measured: a ReLU NNGP entry of the wrong sign at 1e-150, the NTK off by 100 %) and
    /// above ~1e154 overflows (NaN, or a wrong finite LayerNorm output). With the entries' largest magnitude m in
    /// [1e-70, 1e70], a variance lies in [m²/C, m²] and products of two stay far inside the float64 range for any
    /// realistic channel count C.
    let private checkScale (name: string) (x: Tensor) =
        let c = x.Shape[x.Rank - 1]
        let rows = x.Length / c
        for r in 0 .. rows - 1 do
            let m = abs (TensorPrimitives.MaxMagnitude(ReadOnlySpan(x.Data, r * c, c)))
            if m > 0.0 && (m < 1e-70 || m > 1e70) then
                invalidArg name
                    ((name + " holds an input whose entries are at most " + Show.g m + " in magnitude (not all zero), outside [1e-70, 1e70]: the kernel multiplies two variances (about the square of that), which " + (if m < 1e-70 then "underflows" else "overflows") + " in float64; rescale the inputs (e.g. by " + (Show.g (1.0 / m)) + ")"))

    /// The inputs in canonical (N, spatial…, C) order, checked: x2 agrees with x1 in all but the batch axis, at
    /// least one channel and one row each, and every input's scale (see <c>checkScale</c>).
    let canonicalPair (batchAxis: int) (channelAxis: int) (x1raw: Tensor) (x2raw: Tensor option) : Tensor * Tensor option =
        let x1 = canonical batchAxis channelAxis x1raw
        let x2 = x2raw |> Option.map (canonical batchAxis channelAxis)
        match x2 with
        | Some x2 when x2.Shape[1..] <> x1.Shape[1..] ->
            invalidArg "x2" $"x1 and x2 must agree in all but the batch axis, got shapes {Shape.format x1raw.Shape} and {Shape.format x2raw.Value.Shape}"
        | _ -> ()
        if x1.Shape[x1.Rank - 1] = 0 then invalidArg "x1" $"inputs have zero channels, shape {Shape.format x1raw.Shape}"
        let n1, n2 = x1.Shape[0], (defaultArg x2 x1).Shape[0]
        if n1 = 0 || n2 = 0 then
            invalidArg (if n1 = 0 then "x1" else "x2")
                $"inputs have no rows (batch size 0), shapes {Shape.format (if n1 = 0 then x1raw.Shape else x2raw.Value.Shape)}"
        checkScale "x1" x1
        x2 |> Option.iter (checkScale "x2")
        x1, x2

    /// The input kernel record around its arrays (metadata as neural_tangents' <c>_inputs_to_kernel</c> sets it).
    let assemble (get: Get) (ntkArray: bool) (diagonalBatch: bool) (diagonalSpatial: bool) (batchAxis: int) (channelAxis: int)
                 (x1raw: Tensor) (x2raw: Tensor option) (nngpT: Tensor) (ntkT: Tensor option) (cov1T: Tensor) (cov2T: Tensor option) : Kernel =
        { Nngp = nngpT
          Ntk = if get.WantsNtk && ntkArray then ntkT else None
          Cov1 = cov1T
          Cov2 = cov2T
          // neural_tangents' utils.x1_is_x2: x2 absent, or of x1's shape with every entry within 1e-12 (read by Dropout).
          X1IsX2 =
            match x2raw with
            | None -> true
            | Some b -> b.Shape = x1raw.Shape && Array.forall2 (fun (u: float) v -> abs (u - v) < 1e-12) x1raw.Data b.Data
          IsGaussian = false
          IsReversed = false
          IsInput = true
          DiagonalBatch = diagonalBatch
          DiagonalSpatial = diagonalSpatial
          Shape1 = Array.copy x1raw.Shape
          Shape2 = Array.copy (defaultArg x2raw x1raw).Shape
          BatchAxis = batchAxis
          ChannelAxis = channelAxis
          Mask1 = None
          Mask2 = None }

    /// <summary>Rows of x2 equal to a row of x1, or to its negation, get that row's variance as their covariance
    /// (±), exactly as a point with itself does when x2 is x1. The product computes the covariance in another
    /// order than the variances, so a duplicate's correlation would come out 1 − a few ulp, and √(1 − ρ) in the
    /// arc-cosine rules turns that into ~1e-8 relative in the NTK (measured against 50-digit references). Only
    /// pairs whose computed |correlation| is within 1e-12 of 1 are compared entry by entry.</summary>
    let private snapDuplicates (a: float[]) (n1: int) (b: float[]) (n2: int) (c: int) (g: float[]) (v1: float[]) (v2: float[]) =
        // Rows of g on both cores (a pass over N1·N2 entries, a few percent of the product that made them).
        Linalg.parallelRanges n1 (float n2) (fun lo hi ->
            for i in lo .. hi - 1 do
                for j in 0 .. n2 - 1 do
                    let gij = g[i * n2 + j]
                    let q1, q2 = v1[i], v2[j]
                    if q1 > 0.0 && q2 > 0.0 && gij * gij >= (1.0 - 1e-12) * q1 * q2 then
                        let mutable same, opposite, k = true, true, 0
                        while (same || opposite) && k < c do
                            let u, v = a[i * c + k], b[j * c + k]
                            if u <> v then same <- false
                            if u <> -v then opposite <- false
                            k <- k + 1
                        // A row equal to its negation is zero, excluded by q1 > 0. The variances are computed by
                        // one routine in one order, so equal rows have equal ones.
                        if same then g[i * n2 + j] <- q1
                        elif opposite then g[i * n2 + j] <- -q1)

    /// Whether <c>kernelWith false</c> leaves this input kernel's Gram matrix upper-only (strictly lower triangle
    /// +0.0): x2 = x1, a diagonal layout, one position per pair.
    let isUpperOnly (k: Kernel) =
        k.Cov2.IsNone && Kernel.isDiagonalLayout k && k.Nngp.Length = k.Nngp.Shape[0] * k.Nngp.Shape[1]

    /// Builds the input kernel from (batch_axis, channel_axis)-ordered inputs in the requested layout.
    /// <paramref name="ntkArray"/> false: for the fused MLP executor as the kernel's only reader
    /// (<c>DenseStack.tryRunWith true true</c>): when get wants the NTK, leave it out (Ntk = None; it is +0.0
    /// everywhere), and where <c>isUpperOnly</c> leave the Gram matrix's strictly lower triangle +0.0 (the executor
    /// reads the upper one; <c>Linalg.mirrorUpper</c> completes it, bit for bit the stored kernel). Memory is
    /// still checked with the NTK.
    let kernelWith (ntkArray: bool) (get: Get) (diagonalBatch: bool) (diagonalSpatial: bool) (batchAxis: int) (channelAxis: int)
                   (x1raw: Tensor) (x2raw: Tensor option) : Kernel =
        let x1, x2 = canonicalPair batchAxis channelAxis x1raw x2raw
        let n1 = x1.Shape[0]
        let c = x1.Shape[x1.Rank - 1]
        let spatial = x1.Shape[1 .. x1.Rank - 2]
        let s = Array.fold (*) 1 spatial
        let inv = 1.0 / float c
        let x2v = defaultArg x2 x1
        let n2 = x2v.Shape[0]
        let nngpT, cov1T, cov2T =
            if not (diagonalBatch && (diagonalSpatial || spatial.Length = 0)) then general get diagonalBatch diagonalSpatial x1 x2
            else
                // nngp and ntk, plus one fresh pair while the first rule that cannot work in place runs.
                Memory.checkKernel (int64 n1) (int64 n2) (int64 s) (if get.WantsNtk then 4 else 2)
                // One (N1×C)·(N2×C)ᵀ product per spatial position s.
                let slice (x: Tensor) (n: int) (p: int) =
                    if s = 1 then x.Data
                    else Array.init (n * c) (fun idx -> let i, ch = idx / c, idx % c in x.Data[(i * s + p) * c + ch])
                let mutable nngp = if s = 1 then [||] else Array.zeroCreate (n1 * n2 * s)
                let cov1 = Array.zeroCreate (n1 * s)
                let cov2 = Array.zeroCreate (n2 * s)
                // Positions in blocks of up to 8 (at most a quarter of S, so the blocks' Gram matrices stay within a
                // quarter of the output): each (i, j) then gets 8 adjacent entries (one cache line) per pass instead
                // of one entry per pass with stride S.
                let block = if s = 1 then 1 else min 8 (max 1 (s / 4))
                for p0 in 0 .. block .. s - 1 do
                    let pb = min block (s - p0)
                    let gs = Array.zeroCreate<float[]> pb
                    for k in 0 .. pb - 1 do
                        let p = p0 + k
                        let a = slice x1 n1 p
                        let b = if x2.IsSome then slice x2v n2 p else a
                        // x2 = x1: the Gram matrix by a symmetric rank-k update, half the flops and exactly symmetric.
                        let g =
                            if x2.IsSome then Linalg.gemmNT inv a n1 b n2 c
                            // For the fused MLP executor (no NTK array): it reads the upper triangle only.
                            elif s = 1 && not ntkArray then Linalg.gramUpper inv a n1 c
                            else Linalg.gram inv a n1 c
                        if s = 1 then nngp <- g
                        gs[k] <- g
                        // With x2 = x1 the variances are the Gram matrix's own diagonal, bit for bit, so that every rule sees a
                        // correlation of exactly 1 between a point and itself (θ = 0 in the arc-cosine kernels) instead of
                        // 1 ± a few ulp, which the angle's √ would amplify to ~1e-8 (issue: NTK diagonal of deep ReLU nets).
                        let v1 = if x2.IsSome then Linalg.rowNormsSq inv a n1 c else Array.init n1 (fun i -> g[i * n1 + i])
                        let v2 = if x2.IsSome then Linalg.rowNormsSq inv b n2 c else v1
                        if x2.IsSome then snapDuplicates a n1 b n2 c g v1 v2
                        for i in 0 .. n1 - 1 do cov1[i * s + p] <- v1[i]
                        for i in 0 .. n2 - 1 do cov2[i * s + p] <- v2[i]
                    if s > 1 then
                        for i in 0 .. n1 * n2 - 1 do
                            let row = i * s + p0
                            for k in 0 .. pb - 1 do nngp[row + k] <- gs[k][i]
                let nngpT = Tensor.create (Array.append [| n1; n2 |] spatial) nngp
                nngpT,
                Tensor.create (Array.append [| n1 |] spatial) cov1,
                x2 |> Option.map (fun _ -> Tensor.create (Array.append [| n2 |] spatial) cov2)
        let ntkT = if get.WantsNtk && ntkArray then Some(Tensor.zeros nngpT.Shape) else None
        assemble get ntkArray diagonalBatch diagonalSpatial batchAxis channelAxis x1raw x2raw nngpT ntkT cov1T cov2T

    /// Builds the input kernel from (batch_axis, channel_axis)-ordered inputs in the requested layout.
    let kernel (get: Get) (diagonalBatch: bool) (diagonalSpatial: bool) (batchAxis: int) (channelAxis: int)
               (x1raw: Tensor) (x2raw: Tensor option) : Kernel =
        kernelWith true get diagonalBatch diagonalSpatial batchAxis channelAxis x1raw x2raw

    /// <summary>The input kernel with neural_tangents' <c>mask_constant</c> (<c>_inputs_to_kernel</c> with
    /// <c>_get_masked_array</c>): entries of x1 (x2) equal to the constant (NaN for NaN) are masked — zeroed before the
    /// covariances are taken — and their element-wise masks, of the inputs' shape, are recorded as Mask1 (Mask2; None
    /// when x2 is x1, as neural_tangents keeps it). Without a constant this is <c>kernel</c>.</summary>
    let kernelMasked (maskConstant: float option) (get: Get) (diagonalBatch: bool) (diagonalSpatial: bool) (batchAxis: int)
                     (channelAxis: int) (x1raw: Tensor) (x2raw: Tensor option) : Kernel =
        match maskConstant with
        | None -> kernel get diagonalBatch diagonalSpatial batchAxis channelAxis x1raw x2raw
        | Some c ->
            let m1 = Masking.ofInputs c x1raw
            let m2 = x2raw |> Option.map (Masking.ofInputs c)
            let x1 = Masking.zero m1 x1raw
            let x2 = (x2raw, m2) ||> Option.map2 (fun x m -> Masking.zero m x)
            { kernel get diagonalBatch diagonalSpatial batchAxis channelAxis x1 x2 with Mask1 = Some m1; Mask2 = m2 }
