namespace NeuralTangents.Layers

open System
open System.Numerics.Tensors
open NeuralTangents

/// The convolutions of neural_tangents' `stax/linear.py` (`Conv`, `ConvTranspose`, `ConvLocal`, all built by its
/// `_Conv`): their kernel rules in both spatial layouts, finite forward and backward passes, and (at the end) the
/// definition of each.
///
/// One spatial axis of size D with filter size f and stride s is described by an <c>AxisPlan</c>: the output size O
/// and, for each output index o and filter tap t, the input index the window reads (−1 for a padded zero). Every
/// kernel rule and the finite network read the same table, so the borders agree by construction:
/// - VALID: i = o·s + t, O = ⌊(D − f)/s⌋ + 1;
/// - SAME (lax's <c>padtype_to_pads</c>): O = ⌈D/s⌉, total padding P = max((O − 1)·s + f − D, 0), low side ⌊P/2⌋,
///   i = o·s + t − ⌊P/2⌋, zero outside [0, D);
/// - CIRCULAR: SAME's O and offset, i taken modulo D (neural_tangents' <c>_same_pad_for_filter_shape</c> with
///   numpy's periodic "wrap" padding, then VALID);
/// - transpose (lax's <c>conv_transpose</c>, no kernel flip): the input dilated by s, padded (a, b) by
///   <c>_conv_transpose_padding</c>, then a VALID window: i = (o + t − a)/s when that is an integer in [0, D);
///   CIRCULAR: the VALID transpose folded back onto SAME's D·s outputs (see <c>axisPlan</c>).
module internal Convolution =

    /// neural_tangents' name of a convolution kind.
    let kindName (kind: ConvKind) =
        match kind with
        | ConvKind.Conv -> "Conv"
        | ConvKind.Transpose -> "ConvTranspose"
        | ConvKind.Local -> "ConvLocal"

    let private fail (c: ConvSpec) (message: string) =
        raise (NeuralTangentsException(kindName c.Kind + ": " + message))

    /// neural_tangents' default dimension numbers for n spatial axes, channels last (<c>_get_dimension_numbers(n,
    /// False)</c>): the spatial letters are the alphabet without N, C, I and O, e.g. ("NABC", "ABIO", "NABC") in 2-D.
    let defaultDimensionNumbers (n: int) =
        let letters = "ABDEFGHJKLMPQRSTUVWXYZ"
        let sp = letters.Substring(0, min n letters.Length)
        "N" + sp + "C", sp + "IO", "N" + sp + "C"

    /// The axis order that turns a tensor laid out by <c>from</c> into one laid out by <c>to</c> (for
    /// <c>Tensor.permute</c>: axis j of the result is axis from.IndexOf(to[j])).
    let private perm (from: string) (into: string) = into.ToCharArray() |> Array.map (fun c -> from.IndexOf c)

    /// What the dimension numbers fix, computed once per layer.
    type Layout =
        { Lhs: string
          Rhs: string
          Out: string
          /// The input's spatial letters in input order: the order of the kernel's spatial axes.
          InputSpatial: string
          /// Filter sizes and strides per input spatial axis (neural_tangents' filter_shape_kernel / strides_kernel).
          FilterIn: int[]
          StridesIn: int[]
          /// Canonical layouts of the finite network: input and output "N…C", filter "…IO", spatial axes in input order.
          CanonX: string
          CanonW: string }

    /// The layout of a spec, validated: three specs of n + 2 distinct letters naming the same spatial axes.
    let layout (c: ConvSpec) =
        let lhs, rhs, out = c.DimensionNumbers
        let n = c.FilterShape.Length
        let spatialOf (spec: string) (a: char) (b: char) = String(spec.ToCharArray() |> Array.filter (fun ch -> ch <> a && ch <> b))
        let ok (spec: string) (a: char) (b: char) =
            spec.Length = n + 2 && spec.IndexOf a >= 0 && spec.IndexOf b >= 0 && (spec |> Seq.distinct |> Seq.length) = spec.Length
        if not (ok lhs 'N' 'C' && ok rhs 'I' 'O' && ok out 'N' 'C') then
            fail c ("dimension_numbers (" + lhs + ", " + rhs + ", " + out + ") must be an input spec with N and C, a filter spec with I and O and an output spec with N and C, each of " + (string (n + 2)) + " distinct letters (" + string n + " spatial axes, as filter_shape has)")
        let inSp, filterSp, outSp = spatialOf lhs 'N' 'C', spatialOf rhs 'I' 'O', spatialOf out 'N' 'C'
        if Array.sort (inSp.ToCharArray()) <> Array.sort (filterSp.ToCharArray()) || Array.sort (inSp.ToCharArray()) <> Array.sort (outSp.ToCharArray()) then
            fail c ("dimension_numbers (" + lhs + ", " + rhs + ", " + out + ") must name the same spatial axes in all three specs")
        let fs = List.toArray c.FilterShape
        let ss = List.toArray c.Strides
        let toInput = inSp.ToCharArray() |> Array.map (fun ch -> filterSp.IndexOf ch)
        { Lhs = lhs; Rhs = rhs; Out = out; InputSpatial = inSp
          FilterIn = toInput |> Array.map (fun p -> fs[p])
          StridesIn = toInput |> Array.map (fun p -> ss[p])
          CanonX = "N" + inSp + "C"
          CanonW = inSp + "IO" }

    /// One spatial axis of a convolution (see the module summary).
    type AxisPlan =
        { D: int
          O: int
          F: int
          /// Taps[o·F + t]: the input index read by output o at tap t, −1 for a padded zero.
          Taps: int[] }

    /// At most this many taps (output positions × filter size) on one axis: the tap table is an int array, and its
    /// index arithmetic stays far inside int32 below it. Any real axis is far smaller.
    let private maxTaps = 1L <<< 28

    /// The widest SAME or CIRCULAR filter accepted, as a multiple of its axis size.
    let private maxFilterPerAxis = 64L

    /// The plan of one axis of size d, filter f, stride s. Output sizes are computed in int64 and refused, naming
    /// the stride, when the taps would not fit (a transpose's output grows with its stride).
    let axisPlan (c: ConvSpec) (d: int) (f: int) (s: int) : AxisPlan =
        let make (o: int64) (tap: int -> int -> int) =
            if o < 1L then
                fail c ("filter size " + string f + " with stride " + string s + " and " + c.Padding.Name + " padding leaves no output positions on an axis of size " + string d + "; use SAME or CIRCULAR padding or a smaller filter")
            if o * int64 f > maxTaps then
                fail c ("filter size " + string f + " with stride " + string s + " and " + c.Padding.Name + " padding gives " + string o + " output positions on an axis of size " + string d + ", more than can be held (" + string maxTaps + " taps at most); use a smaller stride or filter")
            let o = int o
            { D = d; O = o; F = f; Taps = Array.init (o * f) (fun k -> tap (k / f) (k % f)) }
        let dL, fL, sL = int64 d, int64 f, int64 s
        match c.Kind, c.Padding with
        | ConvKind.Transpose, Padding.Circular ->
            // A VALID transpose (a = f − 1, X = d·s + max(f − s, 0) positions), then neural_tangents'
            // _same_pad_for_filter_shape_transpose to SAME's O = d·s: a reduce-window of w = ⌈X/O⌉ // 2·2 + 1 taps
            // dilated by O with SAME padding (taps k·O, |k| ≤ (w − 1)/2), cropped by ⌊(X − O)/2⌋ on the low side, so
            // out[o] = Σ_k valid[o + ⌊(X − O)/2⌋ + k·O]. Two k reaching an input at one tap t would read inputs d apart,
            // so each tap reads at most one input and the table form holds.
            let a = f - 1
            let oL = dL * sL
            // X ≤ O + f and O·f ≤ 2²⁸ once make accepts O, so the index arithmetic below fits int32.
            let x = int (min (oL + fL) (dL * sL + max (fL - sL) 0L))
            let o = int (min oL maxTaps)
            let half = if o = 0 then 0 else (x + o - 1) / o / 2
            let crop = (x - o) / 2
            make oL (fun oi t ->
                let mutable found = -1
                for k in -half .. half do
                    let p = oi + crop + k * o
                    let j = p + t - a
                    if p >= 0 && p < x && j >= 0 && j % s = 0 && j / s < d then
                        if found >= 0 then fail c ("internal: two inputs at one tap of the CIRCULAR transpose (d=" + string d + " f=" + string f + " s=" + string s + ")")
                        found <- j / s
                found)
        | ConvKind.Transpose, p ->
            // jax's _conv_transpose_padding(k, s, padding).
            let padLen, padA =
                match p with
                | Padding.Same -> fL + sL - 2L, (if s > f - 1 then f - 1 else int ((fL + sL - 1L) / 2L))
                | _ -> fL + sL - 2L + max (fL - sL) 0L, f - 1
            let o = (dL - 1L) * sL + 1L + padLen - fL + 1L
            make o (fun oi t ->
                let j = oi + t - padA
                if j >= 0 && j % s = 0 && j / s < d then j / s else -1)
        | _, Padding.Valid -> make (if d >= f then (dL - fL) / sL + 1L else 0L) (fun oi t -> int (int64 oi * sL + int64 t))
        | _, p ->
            // Every rule walks all f taps of every output, so a filter far wider than its axis costs time in f while
            // adding only padding zeros (SAME) or repeats of the axis (CIRCULAR); such filters are refused.
            if fL > maxFilterPerAxis * dL then
                fail c ("filter size " + string f + " on a spatial axis of size " + string d + ": with " + p.Name + " padding a filter more than " + string maxFilterPerAxis + " times its axis reads only padding zeros or the axis again, at a cost that grows with the filter; use a filter of at most " + (string (maxFilterPerAxis * dL)) + " on this axis")
            let oL = (dL + sL - 1L) / sL
            let lo = int (max ((oL - 1L) * sL + fL - dL) 0L / 2L)
            if p = Padding.Same then
                make oL (fun oi t -> let i = int64 oi * sL + int64 t - int64 lo in if i >= 0L && i < dL then int i else -1)
            else
                make oL (fun oi t -> int (((int64 oi * sL + int64 t - int64 lo) % dL + dL) % dL))

    // ---------------------------------------------------------------------------------------------
    // Kernel rules.

    /// One axis of the diagonal-layout rule on a buffer viewed as (outer, D, post):
    /// out[b, o, :] = (1/f)·Σ_t in[b, i(o, t), :] over the taps inside the input (neural_tangents'
    /// <c>_conv_kernel_diagonal_spatial</c>: a window sum normalised by the full filter size, also at borders).
    let private diagPass (src: float[]) (outer: int) (post: int) (p: AxisPlan) =
        let dst = Array.zeroCreate (outer * p.O * post)
        let inv = 1.0 / float p.F
        Linalg.parallelRanges (outer * p.O) (float (p.F * post)) (fun lo hi ->
            for r in lo .. hi - 1 do
                let b, o = r / p.O, r % p.O
                let d = Span(dst, r * post, post)
                for t in 0 .. p.F - 1 do
                    let i = p.Taps[o * p.F + t]
                    if i >= 0 then
                        if post = 1 then dst[r] <- dst[r] + src[b * p.D + i]
                        else TensorPrimitives.Add(ReadOnlySpan(dst, r * post, post), ReadOnlySpan(src, (b * p.D + i) * post, post), d)
                TensorPrimitives.Multiply(ReadOnlySpan(dst, r * post, post), inv, d))
        dst

    /// One axis pair of the full-layout rule on a buffer viewed as (outer, D, D', post): a stencil whose filter
    /// offset t is shared by both copies of the axis,
    /// out[b, o, o', :] = (1/f)·Σ_t in[b, i(o, t), i(o', t), :] over taps where both reads are inside
    /// (neural_tangents' <c>_conv_kernel_full_spatial_shared</c>: a conv of the (H, H') plane with the diagonal
    /// filter diag(1/f), strides (s, s)). The inner loop runs over the contiguous trailing axes.
    let private fullPass (src: float[]) (outer: int) (post: int) (p: AxisPlan) =
        let o2 = p.O * p.O
        let dst = Array.zeroCreate (outer * o2 * post)
        let inv = 1.0 / float p.F
        Linalg.parallelRanges (outer * p.O) (float (p.O * p.F * post)) (fun lo hi ->
            for r in lo .. hi - 1 do
                let b, o = r / p.O, r % p.O
                let rowStart = r * p.O * post // (b, o, 0, 0)
                for t in 0 .. p.F - 1 do
                    let i = p.Taps[o * p.F + t]
                    if i >= 0 then
                        let srcRow = (b * p.D + i) * p.D
                        if post = 1 then
                            for o' in 0 .. p.O - 1 do
                                let j = p.Taps[o' * p.F + t]
                                if j >= 0 then dst[rowStart + o'] <- dst[rowStart + o'] + src[srcRow + j]
                        else
                            for o' in 0 .. p.O - 1 do
                                let j = p.Taps[o' * p.F + t]
                                if j >= 0 then
                                    let at = rowStart + o' * post
                                    TensorPrimitives.Add(ReadOnlySpan(dst, at, post), ReadOnlySpan(src, (srcRow + j) * post, post), Span(dst, at, post))
                let row = Span(dst, rowStart, p.O * post)
                TensorPrimitives.Multiply(ReadOnlySpan(dst, rowStart, p.O * post), inv, row))
        dst

    let private lead (batchNdim: int) (t: Tensor) = Array.fold (*) 1 t.Shape[.. batchNdim - 1]

    /// The diagonal-layout rule on a (batch…, D1, D2, …) covariance, one axis at a time.
    let convDiagonal (plans: AxisPlan[]) (batchNdim: int) (t: Tensor) =
        let mutable data = t.Data
        for a in 0 .. plans.Length - 1 do
            let outer = lead batchNdim t * (plans[.. a - 1] |> Array.fold (fun acc p -> acc * p.O) 1)
            let post = plans[a + 1 ..] |> Array.fold (fun acc p -> acc * p.D) 1
            data <- diagPass data outer post plans[a]
        Tensor.create (Array.append t.Shape[.. batchNdim - 1] (plans |> Array.map (fun p -> p.O))) data

    /// The full-layout rule on a (batch…, D1, D1', D2, D2', …) covariance, one axis pair at a time, written in the
    /// stored order of the input's axes (neural_tangents reverses that order; see <c>kernelRule</c>).
    let convFull (plans: AxisPlan[]) (batchNdim: int) (t: Tensor) =
        let mutable data = t.Data
        for a in 0 .. plans.Length - 1 do
            let outer = lead batchNdim t * (plans[.. a - 1] |> Array.fold (fun acc p -> acc * p.O * p.O) 1)
            let post = plans[a + 1 ..] |> Array.fold (fun acc p -> acc * p.D * p.D) 1
            data <- fullPass data outer post plans[a]
        Tensor.create (Array.append t.Shape[.. batchNdim - 1] (plans |> Array.collect (fun p -> [| p.O; p.O |]))) data

    /// The full-layout rule of the untied (local) convolution (neural_tangents'
    /// <c>_conv_kernel_full_spatial_unshared</c>): different weights at different positions are independent, so
    /// pairs of distinct output positions get covariance 0; same-position pairs get the diagonal rule of the input's
    /// same-position entries.
    let convLocalFull (plans: AxisPlan[]) (batchNdim: int) (t: Tensor) =
        let inDims = plans |> Array.map (fun p -> p.D)
        let outDims = plans |> Array.map (fun p -> p.O)
        let n = lead batchNdim t
        let sIn = Array.fold (*) 1 inDims
        let inDiag = Spatial.diagonalIndices inDims
        let diag = Array.zeroCreate (n * sIn)
        for b in 0 .. n - 1 do
            for q in 0 .. sIn - 1 do diag[b * sIn + q] <- t.Data[b * sIn * sIn + inDiag[q]]
        let d = convDiagonal plans batchNdim (Tensor.create (Array.append t.Shape[.. batchNdim - 1] inDims) diag)
        let sOut = Array.fold (*) 1 outDims
        let outDiag = Spatial.diagonalIndices outDims
        let out = Array.zeroCreate (n * sOut * sOut)
        for b in 0 .. n - 1 do
            for q in 0 .. sOut - 1 do out[b * sOut * sOut + outDiag[q]] <- d.Data[b * sOut + q]
        Tensor.create (Array.append t.Shape[.. batchNdim - 1] (outDims |> Array.collect (fun o -> [| o; o |]))) out

    /// Channel count of the finite network after the layer: out_chan, times s[1] for Conv and ConvTranspose in the
    /// standard parameterization (neural_tangents' <c>out_chan_arg</c>; ConvLocal's init uses out_chan itself).
    let outWidth (c: ConvSpec) =
        match c.Parameterization, c.Kind with
        | Parameterization.Standard, (ConvKind.Conv | ConvKind.Transpose) ->
            let w = int64 c.OutChan * int64 (snd c.S)
            if w > int64 Int32.MaxValue then fail c $"the finite width out_chan·s[1] = {string w} exceeds 2147483647"
            int w
        | _ -> c.OutChan

    /// The finite network's output shape (laid out by the output spec) for an input shape (laid out by the input spec).
    let outShape (c: ConvSpec) (shape: int[]) =
        let l = layout c
        if shape.Length <> l.Lhs.Length then
            fail c ("inputs of rank " + string shape.Length + " do not fit dimension_numbers " + l.Lhs + " (rank " + string l.Lhs.Length + ")")
        let canon = Array.zeroCreate l.CanonX.Length
        canon[0] <- shape[l.Lhs.IndexOf 'N']
        for a in 0 .. l.InputSpatial.Length - 1 do
            let d = shape[l.Lhs.IndexOf l.InputSpatial[a]]
            canon[a + 1] <- (axisPlan c d l.FilterIn[a] l.StridesIn[a]).O
        canon[canon.Length - 1] <- outWidth c
        l.Out.ToCharArray() |> Array.map (fun ch -> canon[l.CanonX.IndexOf ch])

    /// The fan-in N_in of the standard parameterization: input channels times the filter size (neural_tangents'
    /// <c>get_fan_in</c>).
    let fanIn (c: ConvSpec) (inShape: int[]) =
        let lhs, _, _ = c.DimensionNumbers
        float inShape[lhs.IndexOf 'C'] * float (List.fold (*) 1 c.FilterShape)

    /// Conv, ConvTranspose and ConvLocal (neural_tangents' <c>_Conv.kernel_fn</c>; arXiv:1810.05148 for CNN-GPs,
    /// arXiv:1904.11955 for the CNN-NTK). With C(·) the layer's linear map on covariances (a window mean of the input
    /// covariance; see <c>convDiagonal</c>, <c>convFull</c>, <c>convLocalFull</c>):
    /// nngp' = W_std²·C(nngp) + b_std² in both parameterizations; ntk: ntk' = nngp' + W_std²·C(ntk);
    /// standard: ntk' = (N_in/s0)·C(nngp) + W_std²·C(ntk) (+1 with a bias), N_in = channels × filter size.
    /// In the full layout a shared-weight convolution flips <c>IsReversed</c> (neural_tangents stores its output
    /// pairs in reverse order, and reads filter and strides reversed when the input is reversed); the local one adds
    /// the bias only to same-position pairs. Finally the spatial axes follow the output spec (neural_tangents'
    /// <c>k.transpose(in_to_out_permutation)</c>).
    /// The axis plans of the layer on a kernel, in the kernel's stored axis order. A reversed input stores its
    /// spatial pairs in reverse order: filter and strides are read reversed. neural_tangents does so for shared
    /// convolutions only; ConvLocal after a shared 2-D conv would then filter the wrong axes, so here every
    /// convolution does (the diagonal layout and the mathematics agree; tested).
    let private plansOn (c: ConvSpec) (k: Kernel) =
        let l = layout c
        let filt, strides =
            if not k.DiagonalSpatial && k.IsReversed then Array.rev l.FilterIn, Array.rev l.StridesIn else l.FilterIn, l.StridesIn
        let dims = Spatial.sizes k.DiagonalSpatial 2 k.Nngp.Shape
        if dims.Length <> filt.Length then
            fail c ("the kernel has " + string dims.Length + " spatial axes but filter_shape has " + string filt.Length + "; give inputs of shape (N, spatial…, C) with one spatial axis per filter axis")
        Array.init dims.Length (fun a -> axisPlan c dims[a] filt[a] strides[a])

    /// Entries of the output covariance per input pair (position pairs in the full layout), in int64.
    let private entriesPerPair (diagonalSpatial: bool) (plans: AxisPlan[]) =
        plans |> Array.fold (fun acc p -> acc * int64 p.O * (if diagonalSpatial then 1L else int64 p.O)) 1L

    /// <summary>The entries per input pair of the layer's output NNGP on kernel k, from shapes alone (no
    /// arithmetic on the covariances): what a memory plan needs to know before running the layer.</summary>
    let outputEntriesPerPair (c: ConvSpec) (k: Kernel) : int64 = entriesPerPair k.DiagonalSpatial (plansOn c k)

    let kernelRule (c: ConvSpec) (k: Kernel) : Kernel =
        let l = layout c
        let shared = c.Kind <> ConvKind.Local
        let fullShared = shared && not k.DiagonalSpatial
        let plans = plansOn c k
        // Counted in int64: a transpose with a large stride multiplies every axis by it, past what one array holds.
        let perPair = entriesPerPair k.DiagonalSpatial plans
        let conv (batchNdim: int) (t: Tensor) =
            let lead = int64 (lead batchNdim t)
            if lead * perPair > int64 Array.MaxLength || perPair > int64 Array.MaxLength then
                fail c ("its output spatial shape " + (Shape.format (plans |> Array.map (fun p -> p.O))) + " makes " + string perPair + " covariance entries per pair of inputs" + (if k.DiagonalSpatial then "" else " (every pair of positions)") + " (" + string lead + " input pairs), more than one array can hold (" + string Array.MaxLength + "); use smaller strides, or fewer inputs per batch")
            if k.DiagonalSpatial then convDiagonal plans batchNdim t
            elif not shared then convLocalFull plans batchNdim t
            else
                let r = convFull plans batchNdim t
                if plans.Length > 1 then Tensor.permute (Spatial.reverseAxes false batchNdim r.Rank) r else r
        let outDims =
            let o = plans |> Array.map (fun p -> p.O)
            if fullShared then Array.rev o else o
        // scale·t + shift, the shift on every entry or (local, full layout) on same-position pairs only.
        let affine (scale: float) (shift: float) (batchNdim: int) (t: Tensor) =
            let r = Array.map (fun v -> scale * v) t.Data
            if shift <> 0.0 then
                if k.DiagonalSpatial || shared then
                    for i in 0 .. r.Length - 1 do r[i] <- r[i] + shift
                else
                    let s = Array.fold (*) 1 outDims
                    let diag = Spatial.diagonalIndices outDims
                    for b in 0 .. lead batchNdim t - 1 do
                        for q in 0 .. s - 1 do
                            let at = b * s * s + diag[q]
                            r[at] <- r[at] + shift
            Tensor.create t.Shape r
        let w2 = c.WStd * c.WStd
        let b2 = match c.BStd with Some b -> b * b | None -> 0.0
        let covNdim = if k.DiagonalBatch then 1 else 2
        let cov (t: Tensor) = affine w2 b2 covNdim (conv covNdim t)
        let nngpU = conv 2 k.Nngp
        let nngp = affine w2 b2 2 nngpU
        let ntk =
            k.Ntk |> Option.map (fun ntk ->
                let ntkU = conv 2 ntk
                match c.Parameterization with
                | Parameterization.Ntk -> Tensor.add (Tensor.scale w2 ntkU) nngp
                | Parameterization.Standard ->
                    let coeff = fanIn c k.Shape1 / float (fst c.S)
                    let t = Tensor.add (Tensor.scale coeff nngpU) (Tensor.scale w2 ntkU)
                    if c.BStd.IsSome then affine 1.0 1.0 2 t else t)
        let res =
            { k with
                Nngp = nngp
                Ntk = ntk
                Cov1 = cov k.Cov1
                Cov2 = k.Cov2 |> Option.map cov
                IsGaussian = true
                IsReversed = (if fullShared then not k.IsReversed else k.IsReversed)
                IsInput = false
                BatchAxis = l.Out.IndexOf 'N'
                ChannelAxis = l.Out.IndexOf 'C'
                Shape1 = outShape c k.Shape1
                Shape2 = outShape c k.Shape2 }
        let outSpatial = String(l.Out.ToCharArray() |> Array.filter (fun ch -> ch <> 'N' && ch <> 'C'))
        let inToOut = l.InputSpatial.ToCharArray() |> Array.map (fun ch -> outSpatial.IndexOf ch)
        if inToOut = Array.init inToOut.Length id then res else Kernel.transpose (Some inToOut) res

    // ---------------------------------------------------------------------------------------------
    // Finite networks (`_Conv.apply_fn` and its pullbacks), on canonical layouts: x (N, S_in, C) with the spatial
    // positions S flattened row-major in input order, W (F, C, Co) for shared filters (F filter taps) or
    // (S_out, C·F, Co) for ConvLocal (the input-channel index slowest in its I axis, as lax's
    // conv_general_dilated_local orders its patches), output (N, S_out, Co).

    /// Everything the finite passes need for one input shape.
    type private Finite =
        { L: Layout
          Plans: AxisPlan[]
          N: int
          C: int
          Co: int
          SIn: int
          SOut: int
          FSize: int
          /// Table[o·F + t]: the flat input position read by output o at tap t, −1 for a padded zero.
          Table: int[]
          CanonOut: int[] }

    let private finite (c: ConvSpec) (inShape: int[]) (co: int) =
        let l = layout c
        if inShape.Length <> l.Lhs.Length then
            fail c ("inputs of rank " + string inShape.Length + " do not fit dimension_numbers " + l.Lhs + " (rank " + string l.Lhs.Length + ")")
        let dims = l.InputSpatial.ToCharArray() |> Array.map (fun ch -> inShape[l.Lhs.IndexOf ch])
        let plans = Array.init dims.Length (fun a -> axisPlan c dims[a] l.FilterIn[a] l.StridesIn[a])
        let outDims = plans |> Array.map (fun p -> p.O)
        let sIn, sOut = Array.fold (*) 1 dims, Array.fold (*) 1 outDims
        let fSize = plans |> Array.fold (fun acc p -> acc * p.F) 1
        let table = Array.zeroCreate (sOut * fSize)
        for o in 0 .. sOut - 1 do
            for t in 0 .. fSize - 1 do
                let mutable ro, rt, src, stride = o, t, 0, 1
                for a in plans.Length - 1 .. -1 .. 0 do
                    let p = plans[a]
                    let i = p.Taps[(ro % p.O) * p.F + rt % p.F]
                    src <- if src < 0 || i < 0 then -1 else src + i * stride
                    ro <- ro / p.O
                    rt <- rt / p.F
                    stride <- stride * p.D
                table[o * fSize + t] <- src
        { L = l; Plans = plans; N = inShape[l.Lhs.IndexOf 'N']; C = inShape[l.Lhs.IndexOf 'C']; Co = co
          SIn = sIn; SOut = sOut; FSize = fSize; Table = table
          CanonOut = Array.concat [ [| inShape[l.Lhs.IndexOf 'N'] |]; outDims; [| co |] ] }

    /// (weight multiplier, bias multiplier) of the forward pass: ntk: W_std/√N_in and b_std; standard: 1/√s0 and 1.
    let private scales (c: ConvSpec) (fanIn: float) =
        match c.Parameterization with
        | Parameterization.Ntk -> c.WStd / Math.Sqrt fanIn, defaultArg c.BStd 0.0
        | Parameterization.Standard -> 1.0 / Math.Sqrt(float (fst c.S)), 1.0

    let private wParams (c: ConvSpec) (p: Params) =
        match p with
        | Leaf [ w ] -> w, None
        | Leaf [ w; b ] -> w, Some b
        | _ -> invalidArg "params" $"{kindName c.Kind}: the parameters do not match the layer tree (use the tree InitFn.init returns)"

    /// Index of W's (tap t, channel ch) row for output position o in the canonical weight buffer.
    let inline private wRow (local: bool) (f: Finite) (o: int) (t: int) (ch: int) =
        if local then (o * f.C + ch) * f.FSize + t else t * f.C + ch

    let private forward (c: ConvSpec) (p: Params) (x: Tensor) =
        let w, b = wParams c p
        let l = layout c
        let co = w.Shape[l.Rhs.IndexOf 'O']
        let f = finite c x.Shape co
        let local = c.Kind = ConvKind.Local
        let xs = Tensor.permute (perm l.Lhs l.CanonX) x
        let ws = Tensor.permute (perm l.Rhs l.CanonW) w
        let scale, bScale = scales c (fanIn c x.Shape)
        let out = Array.zeroCreate (f.N * f.SOut * co)
        Linalg.parallelRanges (f.N * f.SOut) (float (f.FSize * f.C * co)) (fun lo hi ->
            for r in lo .. hi - 1 do
                let n, o = r / f.SOut, r % f.SOut
                let dst = Span(out, r * co, co)
                for t in 0 .. f.FSize - 1 do
                    let src = f.Table[o * f.FSize + t]
                    if src >= 0 then
                        for ch in 0 .. f.C - 1 do
                            let v = scale * xs.Data[(n * f.SIn + src) * f.C + ch]
                            if v <> 0.0 then
                                TensorPrimitives.MultiplyAdd(ReadOnlySpan(ws.Data, wRow local f o t ch * co, co), v, ReadOnlySpan(out, r * co, co), dst))
        let canonOut = Tensor.create f.CanonOut out
        let res = Tensor.permute (perm l.CanonX l.Out) canonOut
        match b with
        | None -> res
        | Some b ->
            // The bias is laid out by the output spec (batch axis of size 1): broadcast it over the batch.
            let bc = Tensor.permute (perm l.Out l.CanonX) b
            let per = bc.Length
            let o = Array.zeroCreate (f.N * f.SOut * co)
            for n in 0 .. f.N - 1 do
                for i in 0 .. f.SOut * co - 1 do
                    o[n * f.SOut * co + i] <- out[n * f.SOut * co + i] + bScale * bc.Data[if per = co then i % co else i]
            Tensor.permute (perm l.CanonX l.Out) (Tensor.create f.CanonOut o)

    /// The input cotangent: ∂x[n, i(o,t), ch] += scale·Σ_co ct[n, o, co]·W[t, ch, co].
    let private inputGrad (c: ConvSpec) (p: Params) (x: Tensor) (ct: Tensor) =
        let w, _ = wParams c p
        let l = layout c
        let co = w.Shape[l.Rhs.IndexOf 'O']
        let f = finite c x.Shape co
        let local = c.Kind = ConvKind.Local
        let ws = Tensor.permute (perm l.Rhs l.CanonW) w
        let cs = Tensor.permute (perm l.Out l.CanonX) ct
        let scale, _ = scales c (fanIn c x.Shape)
        let dx = Array.zeroCreate (f.N * f.SIn * f.C)
        // Parallel over the batch: each input row is written by its own batch entry only.
        Linalg.parallelRanges f.N (float (f.SOut * f.FSize * f.C * co)) (fun lo hi ->
            for n in lo .. hi - 1 do
                for o in 0 .. f.SOut - 1 do
                    let cr = ReadOnlySpan(cs.Data, (n * f.SOut + o) * co, co)
                    for t in 0 .. f.FSize - 1 do
                        let src = f.Table[o * f.FSize + t]
                        if src >= 0 then
                            for ch in 0 .. f.C - 1 do
                                let at = (n * f.SIn + src) * f.C + ch
                                dx[at] <- dx[at] + scale * TensorPrimitives.Dot(cr, ReadOnlySpan(ws.Data, wRow local f o t ch * co, co)))
        Tensor.permute (perm l.CanonX l.Lhs) (Tensor.create [| yield f.N; yield! f.Plans |> Array.map (fun p -> p.D); yield f.C |] dx)

    /// The parameter cotangents: ∂W[t, ch, :] += scale·x[n, i(o,t), ch]·ct[n, o, :]; ∂b = bScale·Σ ct over the
    /// positions the bias is shared by.
    let private paramGrads (c: ConvSpec) (p: Params) (x: Tensor) (ct: Tensor) =
        let w, b = wParams c p
        let l = layout c
        let co = w.Shape[l.Rhs.IndexOf 'O']
        let f = finite c x.Shape co
        let local = c.Kind = ConvKind.Local
        let xs = Tensor.permute (perm l.Lhs l.CanonX) x
        let cs = Tensor.permute (perm l.Out l.CanonX) ct
        let scale, bScale = scales c (fanIn c x.Shape)
        let ws = Tensor.permute (perm l.Rhs l.CanonW) w
        let dw = Array.zeroCreate ws.Length
        for n in 0 .. f.N - 1 do
            for o in 0 .. f.SOut - 1 do
                let cr = ReadOnlySpan(cs.Data, (n * f.SOut + o) * co, co)
                for t in 0 .. f.FSize - 1 do
                    let src = f.Table[o * f.FSize + t]
                    if src >= 0 then
                        for ch in 0 .. f.C - 1 do
                            let v = scale * xs.Data[(n * f.SIn + src) * f.C + ch]
                            if v <> 0.0 then
                                let at = wRow local f o t ch * co
                                TensorPrimitives.MultiplyAdd(cr, v, ReadOnlySpan(dw, at, co), Span(dw, at, co))
        let dW = Tensor.permute (perm l.CanonW l.Rhs) (Tensor.create ws.Shape dw)
        let db =
            b |> Option.map (fun b ->
                let bc = Tensor.permute (perm l.Out l.CanonX) b
                let per = bc.Length
                let acc = Array.zeroCreate per
                for n in 0 .. f.N - 1 do
                    for i in 0 .. f.SOut * co - 1 do
                        let k = if per = co then i % co else i
                        acc[k] <- acc[k] + bScale * cs.Data[n * f.SOut * co + i]
                Tensor.permute (perm l.CanonX l.Out) (Tensor.create bc.Shape acc))
        Leaf(dW :: Option.toList db)

    /// Output shape and parameters (neural_tangents' init: ostax.GeneralConv / GeneralConvTranspose, and
    /// ConvLocal's own): W laid out by the filter spec — filter_shape with I = input channels and O = the output
    /// width for Conv/ConvTranspose (e.g. HWIO), output spatial sizes with I = channels × filter size and O =
    /// out_chan for ConvLocal — of N(0, 1) samples from split 0 of the key; b of N(0, 1) from split 1, laid out by
    /// the output spec with size-1 axes except C (and, for ConvLocal, the spatial axes). The standard
    /// parameterization scales W by W_std/√(N_in/s0) and b by b_std.
    let private init (c: ConvSpec) (key: RngKey) (shape: int[]) =
        let l = layout c
        let out = outShape c shape
        let inC = shape[l.Lhs.IndexOf 'C']
        let fSize = List.fold (*) 1 c.FilterShape
        let filterSp = String(l.Rhs.ToCharArray() |> Array.filter (fun ch -> ch <> 'I' && ch <> 'O'))
        let wShape =
            l.Rhs.ToCharArray() |> Array.map (fun ch ->
                match ch, c.Kind with
                | 'O', _ -> out[l.Out.IndexOf 'C']
                | 'I', ConvKind.Local -> inC * fSize
                | 'I', _ -> inC
                | s, ConvKind.Local -> out[l.Out.IndexOf s]
                | s, _ -> List.item (filterSp.IndexOf s) c.FilterShape)
        let bShape =
            l.Out.ToCharArray() |> Array.mapi (fun i ch ->
                match ch, c.Kind with
                | 'N', _ -> 1
                | 'C', _ -> out[i]
                | _, ConvKind.Local -> out[i]
                | _ -> 1)
        let wScale, bScale =
            match c.Parameterization with
            | Parameterization.Ntk -> 1.0, 1.0
            | Parameterization.Standard -> c.WStd / Math.Sqrt(fanIn c shape / float (fst c.S)), defaultArg c.BStd 0.0
        let name = match c.Kind with ConvKind.Conv -> "Conv" | ConvKind.Transpose -> "ConvTranspose" | ConvKind.Local -> "ConvLocal"
        let w = Memory.parameter name "filter" wShape (fun n -> Rng.normals (Rng.split 0 key) n |> Array.map (fun v -> wScale * v))
        let b =
            c.BStd |> Option.map (fun _ ->
                Memory.parameter name "bias" bShape (fun n -> Rng.normals (Rng.split 1 key) n |> Array.map (fun v -> bScale * v)))
        out, Leaf(w :: Option.toList b)

    /// Masking of Conv and ConvLocal (neural_tangents' <c>_Conv.mask_fn</c>, remask_kernel=True): the mask collapsed
    /// over channels (one map per position), then <c>_pool_mask</c> with the filter and strides (CIRCULAR as SAME, the
    /// init padding), then permuted as neural_tangents permutes it to the output spec.
    /// ConvTranspose: neural_tangents takes <c>lax.conv_transpose</c> of the boolean mask with an all-True 1→1 filter
    /// (init padding, CIRCULAR as SAME). On booleans XLA's products are AND and its sums OR, so an output position is
    /// masked as soon as ANY input position that feeds it is masked (not "all", as for Conv), and one fed by no input
    /// is visible. Here: the real transpose convolution of the 0/1 mask with positive weights, masked where it is > 0
    /// (a sum of non-negative terms is positive exactly when one term is).
    let private convMask (c: ConvSpec) : MaskRule =
        // one mask per position (channels collapsed), broadcast to the input's shape with a unit channel axis
        let collapsed (m: Tensor) (shape: int[]) =
            let l = layout c
            let cAxis = l.Lhs.IndexOf 'C'
            let target = Array.copy shape
            target[cAxis] <- 1
            l, Masking.broadcastTo target (Masking.collapseChannel cAxis m)
        match c.Kind with
        | ConvKind.Transpose ->
            Masking.propagating true (fun m shape ->
                let l, m = collapsed m shape
                let ones =
                    { c with
                        OutChan = 1; BStd = None; WStd = 1.0; Parameterization = Parameterization.Ntk; S = (1, 1)
                        Padding = (if c.Padding = Padding.Circular then Padding.Same else c.Padding) }
                let filterSp = String(l.Rhs.ToCharArray() |> Array.filter (fun ch -> ch <> 'I' && ch <> 'O'))
                let wShape =
                    l.Rhs.ToCharArray() |> Array.map (fun ch ->
                        match ch with
                        | 'I' | 'O' -> 1
                        | s -> List.item (filterSp.IndexOf s) c.FilterShape)
                let w = Tensor.create wShape (Array.create (Array.fold (*) 1 wShape) 1.0)
                let fed = forward ones (Leaf [ w ]) m
                Tensor.create (Array.copy fed.Shape) (fed.Data |> Array.map (fun v -> if v > 0.0 then 1.0 else 0.0)))
        | ConvKind.Conv | ConvKind.Local ->
            Masking.propagating true (fun m shape ->
                let l, m = collapsed m shape
                let perAxis (values: int[]) =
                    l.Lhs.ToCharArray() |> Array.map (fun ch -> match l.InputSpatial.IndexOf ch with -1 -> 1 | a -> values[a])
                let pooled = Masking.pool (perAxis l.FilterIn) (perAxis l.StridesIn) (c.Padding <> Padding.Valid) m
                // jnp.transpose(mask, (out_spec.index(c) for c in lhs_spec)).
                Tensor.permute (l.Lhs.ToCharArray() |> Array.map (fun ch -> l.Out.IndexOf ch)) pooled)

    /// The definition of Conv, ConvTranspose or ConvLocal (neural_tangents' <c>stax.Conv</c>,
    /// <c>stax.ConvTranspose</c>, <c>stax.ConvLocal</c>).
    let define (c: ConvSpec) : LayerDef =
        let lhs, rhs, out = c.DimensionNumbers
        { Name = kindName c.Kind
          Args =
            [ "out_chan", IntArg c.OutChan
              "filter_shape", IntsArg c.FilterShape
              "strides", IntsArg c.Strides
              "padding", StringArg c.Padding.Name
              "W_std", FloatArg c.WStd
              "b_std", OptFloatArg c.BStd
              "dimension_numbers", StringsArg [ lhs; rhs; out ]
              "parameterization", StringArg(match c.Parameterization with Parameterization.Ntk -> "ntk" | Parameterization.Standard -> "standard")
              "s", IntsArg [ fst c.S; snd c.S ] ]
          // @requires(batch_axis=lhs_spec.index('N'), channel_axis=lhs_spec.index('C'),
          //           diagonal_spatial=Diagonal(output=NO if shared_weights else MAYBE)): the rules work on the
          // diagonal layout, and untied weights keep distinct positions uncorrelated.
          Requires =
            // The channel axis is stated from the end (−1 for channels last), as Dense states it, so that a Dense
            // and a channels-last Conv in one network ask for the same input layout.
            { BatchAxis = Some(lhs.IndexOf 'N'); ChannelAxis = Some(lhs.IndexOf 'C' - lhs.Length); Resets = false
              DiagonalBatch = None
              DiagonalSpatial =
                Some { Input = Tri.Yes; Output = (if c.Kind = ConvKind.Local then Tri.Maybe else Tri.No) } }
          Kernel = Masking.kernel (kindName c.Kind) (convMask c) (fun _ k -> kernelRule c k)
          Init = init c
          Apply = fun _ p x -> forward c p x
          Vjp = fun _ -> inputGrad c
          ParamVjp = fun _ -> paramGrads c
          GradDot = None
          // Bilinear in (W, x) plus the bias: the tangent is the layer on dx without bias plus the layer of (dW, db) on x.
          Jvp =
            Tangent(fun _ p dp x dx ->
                let noBias = match p with Leaf [ w; b ] -> Leaf [ w; Tensor.zeros b.Shape ] | q -> q
                Tensor.add (forward c noBias dx) (forward c dp x))
          Mask = convMask c }
