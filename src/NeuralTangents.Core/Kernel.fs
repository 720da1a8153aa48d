namespace NeuralTangents

/// <summary>The one exception type for kernel-level violations (a layout or input a layer cannot take);
/// its message says how to fix the network or the call.</summary>
exception NeuralTangentsException of string with
    override e.Message = e.Data0

/// <summary>
/// The covariances that flow through an infinite network, field for field neural_tangents' <c>Kernel</c>.
/// Layouts (neural_tangents' <c>diagonal_batch</c> and <c>diagonal_spatial</c>):
/// <c>Nngp</c>, <c>Ntk</c>: (N1, N2, spatial…); <c>Cov1</c>: (N1, spatial…) when <c>DiagonalBatch</c>, else the
/// full batch covariance (N1, N1, spatial…); <c>Cov2</c> likewise with N2. "spatial…" is (H, W, …) — one entry per
/// position — when <c>DiagonalSpatial</c>, and (H, H', W, W', …) — one entry per pair of positions, the two copies of
/// each axis adjacent — otherwise. With <c>IsReversed</c> the spatial axes (pairs) are stored in reverse order
/// (…, W, W', H, H'), as neural_tangents returns them; <c>Kernel.reverse</c> restores the order.
/// Update with <c>{ k with … }</c> (neural_tangents' <c>replace</c>); the arrays inside are never mutated.
/// </summary>
type Kernel =
    { /// NNGP covariance between x1 and x2.
      Nngp: Tensor
      /// NTK between x1 and x2; None when only the NNGP is computed.
      Ntk: Tensor option
      /// Covariance of x1 with itself: per input (diagonal batch) or between every two inputs of x1.
      Cov1: Tensor
      /// The same for x2; None when x2 is x1.
      Cov2: Tensor option
      X1IsX2: bool
      /// True when the pre-activations are a mean-zero Gaussian (after an affine layer).
      IsGaussian: bool
      /// True when the spatial axes are stored in reverse order (only layers that flip them set it).
      IsReversed: bool
      /// True while no layer has been applied yet.
      IsInput: bool
      /// True when Cov1/Cov2 hold only each input's own covariance (N, spatial…), false for (N, N, spatial…).
      DiagonalBatch: bool
      /// True when only same-position covariances are held (H, W, …), false for every pair (H, H', W, W', …).
      DiagonalSpatial: bool
      /// Shape of the finite-width network's activations for x1 (finite channel count included).
      Shape1: int[]
      Shape2: int[]
      BatchAxis: int
      ChannelAxis: int
      Mask1: Tensor option
      Mask2: Tensor option }

/// <summary>The quantities a caller can ask <c>kernel_fn</c> for.</summary>
type Get =
    | Nngp
    | Ntk
    | Both

    member g.WantsNtk = (g <> Nngp)

/// <summary>Operations on <see cref="T:NeuralTangents.Kernel"/> values.</summary>
[<RequireQualifiedAccess>]
module Kernel =

    /// <summary>Scales the output by <c>a</c>: every covariance and the NTK by a² (neural_tangents' <c>a * k</c>).</summary>
    [<CompiledName("ScaleOutput")>]
    let scaleOutput (a: float) (k: Kernel) =
        let v = a * a
        { k with
            Nngp = Tensor.scale v k.Nngp
            Ntk = k.Ntk |> Option.map (Tensor.scale v)
            Cov1 = Tensor.scale v k.Cov1
            Cov2 = k.Cov2 |> Option.map (Tensor.scale v) }

    /// <summary>Shifts the output by the constant <c>c</c>: c² added to every covariance, the NTK unchanged
    /// (neural_tangents' <c>k + c</c>).</summary>
    [<CompiledName("ShiftOutput")>]
    let shiftOutput (c: float) (k: Kernel) =
        let v = c * c
        { k with
            Nngp = Tensor.addScalar v k.Nngp
            Cov1 = Tensor.addScalar v k.Cov1
            Cov2 = k.Cov2 |> Option.map (Tensor.addScalar v) }

    /// <summary>Number of inputs in x1 and x2.</summary>
    [<CompiledName("BatchSizes")>]
    let batchSizes (k: Kernel) = k.Nngp.Shape[0], k.Nngp.Shape[1]

    /// <summary>Channel count of the finite network at this point (for x1).</summary>
    [<CompiledName("Width")>]
    let width (k: Kernel) =
        let a = if k.ChannelAxis < 0 then k.ChannelAxis + k.Shape1.Length else k.ChannelAxis
        k.Shape1[a]

    /// True when the kernel is in the layout of the fast per-position passes: diagonal batch, and diagonal spatial
    /// or no spatial axes at all (both layouts coincide then).
    let internal isDiagonalLayout (k: Kernel) = k.DiagonalBatch && (k.DiagonalSpatial || k.Nngp.Rank = 2)

    let private covNdim (k: Kernel) = if k.DiagonalBatch then 1 else 2

    /// <summary>Reverses the order of the spatial axes in every covariance (neural_tangents' <c>Kernel.reverse</c>):
    /// (N1, N2, H, H', W, W') becomes (N1, N2, W, W', H, H') and <c>IsReversed</c> flips. neural_tangents calls it only
    /// on full-spatial kernels; on a diagonal-spatial kernel it reverses (H, W) to (W, H) alike.</summary>
    [<CompiledName("Reverse")>]
    let reverse (k: Kernel) =
        let perm (batchNdim: int) (t: Tensor) = Tensor.permute (Spatial.reverseAxes k.DiagonalSpatial batchNdim t.Rank) t
        { k with
            Nngp = perm 2 k.Nngp
            Ntk = k.Ntk |> Option.map (perm 2)
            Cov1 = perm (covNdim k) k.Cov1
            Cov2 = k.Cov2 |> Option.map (perm (covNdim k))
            IsReversed = not k.IsReversed }

    /// <summary>Permutes the spatial axes of every covariance (neural_tangents' <c>Kernel.transpose(axes)</c>):
    /// spatial axis a of the result is spatial axis <c>axes[a]</c> of <paramref name="k"/> (each pair moves together
    /// in the full layout); the batch axes stay leading. None keeps the order (0, 1, …), as in neural_tangents.
    /// To swap the roles of x1 and x2 use <c>swapInputs</c>.</summary>
    /// <exception cref="T:System.ArgumentException"><paramref name="axes"/> is not a permutation of the spatial axes.</exception>
    [<CompiledName("Transpose")>]
    let transpose (axes: int[] option) (k: Kernel) =
        let nSpatial = (Spatial.sizes k.DiagonalSpatial 2 k.Nngp.Shape).Length
        let axes = defaultArg axes (Array.init nSpatial id)
        if Array.sort axes <> Array.init nSpatial id then
            invalidArg "axes" $"must be a permutation of the {string nSpatial} spatial axes, got {Shape.format axes}"
        let perm (batchNdim: int) (t: Tensor) = Tensor.permute (Spatial.permuteAxes k.DiagonalSpatial batchNdim axes) t
        { k with
            Nngp = perm 2 k.Nngp
            Ntk = k.Ntk |> Option.map (perm 2)
            Cov1 = perm (covNdim k) k.Cov1
            Cov2 = k.Cov2 |> Option.map (perm (covNdim k)) }

    /// <summary>The kernel of (x2, x1) from the kernel of (x1, x2): nngp and ntk transposed — (N1, N2, H, H') becomes
    /// (N2, N1, H', H) — cov1 and cov2, shapes and masks exchanged. When x2 is x1 (<c>Cov2</c> None) the covariances
    /// stay as they are. (neural_tangents has no such method; its <c>transpose</c> permutes spatial axes.)</summary>
    [<CompiledName("SwapInputs")>]
    let swapInputs (k: Kernel) =
        let swap (t: Tensor) = Tensor.permute (Spatial.swapAxes k.DiagonalSpatial t.Rank) t
        match k.Cov2 with
        | None -> { k with Nngp = swap k.Nngp; Ntk = k.Ntk |> Option.map swap }
        | Some cov2 ->
            { k with
                Nngp = swap k.Nngp
                Ntk = k.Ntk |> Option.map swap
                Cov1 = cov2
                Cov2 = Some k.Cov1
                Shape1 = k.Shape2
                Shape2 = k.Shape1
                Mask1 = k.Mask2
                Mask2 = k.Mask1 }

    /// <summary>The kernel of <c>dot_general(x, other)</c> — or of <c>dot_general(other, x)</c> when
    /// <paramref name="isLhs"/> — from the kernel of x (neural_tangents' <c>Kernel.dot_general</c>, the kernel rule of
    /// its <c>stax.DotGeneral</c>; Novak et al. 2020, arXiv:1912.02803). The map is linear on every axis but the
    /// channel axis, so with out1 = other1·x1 and out2 = other2·x2 each covariance is
    /// <c>K_out[p, p'] = Σ_{q, q'} other1[p, q] · other2[p', q'] · K[q, q']</c>: q and q' run over the contracted
    /// positions of x1 and x2, a batch dimension of dot_general pairs one position of x with one slice of other, and an
    /// axis of other that is neither contracted nor batched becomes a new spatial axis (a pair of axes in the full
    /// layout). Nngp and Ntk take (other1, other2), Cov1 (other1, other1), Cov2 (other2, other2). The result keeps the
    /// kernel's layout with its spatial axes in the order of the output's axes, the batch axes leading as always;
    /// Shape1/Shape2, BatchAxis and ChannelAxis (non-negative) describe the output of dot_general.</summary>
    /// <param name="other1">The constant factor applied to x1; None together with <paramref name="other2"/> None
    /// returns <paramref name="k"/> unchanged.</param>
    /// <param name="other2">The constant factor applied to x2 (the same tensor as other1 in a DotGeneral layer), of
    /// the same rank as other1. When x2 is x1 (<c>Cov2</c> None) and other2 differs from other1, Cov2 is computed.</param>
    /// <param name="isLhs">True when the constant is the left operand, <c>dot_general(other, x)</c>; false for
    /// <c>dot_general(x, other)</c>.</param>
    /// <param name="dimensionNumbers"><c>((lhs_contracting, rhs_contracting), (lhs_batch, rhs_batch))</c> as
    /// <c>jax.lax.dot_general</c> takes them; axes may be negative.</param>
    /// <param name="k">The kernel of the inputs x1, x2. A reversed kernel (<c>IsReversed</c>) is un-reversed first; the
    /// result is never reversed.</param>
    /// <returns>The kernel of the outputs.</returns>
    /// <exception cref="T:System.ArgumentException">malformed dimension numbers, an axis out of range, or a factor whose
    /// sizes do not match the inputs.</exception>
    /// <exception cref="T:NeuralTangents.NeuralTangentsException">the channel axis is contracted or batched (its size is
    /// infinite), the batch axis is contracted (the result would have no batch axes), a spatial axis is contracted in
    /// the diagonal spatial layout (its off-diagonal covariances are needed), only one of other1/other2 is given, or the
    /// kernel carries masks.</exception>
    [<CompiledName("DotGeneral")>]
    let dotGeneral (other1: Tensor option) (other2: Tensor option) (isLhs: bool)
                   (dimensionNumbers: (int list * int list) * (int list * int list)) (k: Kernel) : Kernel =
        let fail (msg: string) = raise (NeuralTangentsException msg)
        match other1, other2 with
        | None, None -> k
        | Some _, None
        | None, Some _ ->
            fail "dot_general: give both other1 and other2 (a DotGeneral layer passes its constant twice) or neither; a factor on one side only is not supported"
        | Some o1, Some o2 ->
        if o1.Rank <> o2.Rank then
            invalidArg "other2" $"must have the rank of other1 ({string o1.Rank}), got shape {Shape.format o2.Shape}"
        if k.Mask1.IsSome || k.Mask2.IsSome then
            fail "dot_general: kernels with masks are not supported; compute the kernel without masks"
        let k = if k.IsReversed then reverse k else k
        let nIn, nOther = k.Shape1.Length, o1.Rank
        let (lhsC, rhsC), (lhsB, rhsB) = dimensionNumbers
        let (otherC, inputC), (otherB, inputB) =
            if isLhs then (lhsC, rhsC), (lhsB, rhsB) else (rhsC, lhsC), (rhsB, lhsB)
        let norm (what: string) (n: int) (axes: int list) =
            axes |> List.map (fun a ->
                if a < -n || a >= n then
                    invalidArg "dimensionNumbers" ((what + " axis " + string a + " is out of range for rank " + string n))
                (a + n) % n) |> Array.ofList
        let inputC, inputB = norm "input" nIn inputC, norm "input" nIn inputB
        let otherC, otherB = norm "other" nOther otherC, norm "other" nOther otherB
        if inputC.Length <> otherC.Length || inputB.Length <> otherB.Length then
            invalidArg "dimensionNumbers" "lhs and rhs must list as many contracting dimensions, and as many batch dimensions, as each other"
        let inputDims, otherDims = Array.append inputB inputC, Array.append otherB otherC
        if (Array.distinct inputDims).Length <> inputDims.Length || (Array.distinct otherDims).Length <> otherDims.Length then
            invalidArg "dimensionNumbers" "an axis is listed twice among an operand's contracting and batch dimensions"
        let axisOf (a: int) = if a < 0 then a + nIn else a
        let bAx, ch = axisOf k.BatchAxis, axisOf k.ChannelAxis
        if Array.contains ch inputDims then
            fail $"dot_general: batch or contracting dimension {string ch} is the channel axis, whose size is infinite in the kernel; contract or batch other axes"
        if Array.contains bAx inputC then
            fail $"dot_general: contracting over the batch axis ({string bAx}) is not supported: the result would have no batch axes; contract other axes"
        if k.DiagonalSpatial && inputC.Length > 0 then
            fail "dot_general: contracting a spatial axis needs the covariances between positions; compute the kernel with diagonal_spatial=False (DiagonalSpatial = Some false)"
        for p in 0 .. inputDims.Length - 1 do
            let i, j = inputDims[p], otherDims[p]
            if o1.Shape[j] <> k.Shape1[i] then
                invalidArg "other1" ("axis " + string j + " has size " + (string (o1.Shape[j])) + " but is paired with input axis " + string i + " of size " + (string (k.Shape1[i])) + " (x1 shape " + (Shape.format k.Shape1) + ")")
            if o2.Shape[j] <> k.Shape2[i] then
                invalidArg "other2" ("axis " + string j + " has size " + (string (o2.Shape[j])) + " but is paired with input axis " + string i + " of size " + (string (k.Shape2[i])) + " (x2 shape " + (Shape.format k.Shape2) + ")")
        let otherFree = Array.init nOther id |> Array.filter (fun j -> not (Array.contains j otherDims))
        let inputFree = Array.init nIn id |> Array.filter (fun i -> not (Array.contains i inputDims))
        if k.DiagonalSpatial && otherFree |> Array.exists (fun j -> o1.Shape[j] <> o2.Shape[j]) then
            invalidArg "other2" $"in the diagonal spatial layout other1 and other2 must agree on their free axes, got shapes {Shape.format o1.Shape} and {Shape.format o2.Shape}"
        // Where each output axis comes from: (true, input axis) or (false, axis of other), in dot_general's order —
        // batch dimensions, then the lhs's free axes, then the rhs's.
        let origins =
            Array.concat [ inputB |> Array.map (fun i -> true, i)
                           (if isLhs then otherFree |> Array.map (fun j -> false, j) else inputFree |> Array.map (fun i -> true, i))
                           (if isLhs then inputFree |> Array.map (fun i -> true, i) else otherFree |> Array.map (fun j -> false, j)) ]
        let outShape (o: Tensor) (inShape: int[]) = origins |> Array.map (fun (isIn, a) -> if isIn then inShape[a] else o.Shape[a])
        // Einsum labels. A covariance with bn batch axes holds axis 0 (and 1) for the batch, then each spatial axis once
        // (diagonal) or as the adjacent pair (position in x1, position in x2); a label is that axis's index. A free axis
        // j of other gets base + j on the left and base + nOther + j on the right (the same label when diagonal).
        let spatialIndex (i: int) = Seq.length (seq { for a in 0 .. i - 1 do if a <> bAx && a <> ch then yield a })
        let diag = k.DiagonalSpatial
        let leftOf (bn: int) (i: int) = if i = bAx then 0 else bn + (if diag then spatialIndex i else 2 * spatialIndex i)
        let rightOf (bn: int) (i: int) = if i = bAx then bn - 1 else bn + (if diag then spatialIndex i else 2 * spatialIndex i + 1)
        let labelBase = 2 * nIn + 2
        let freeLeft (j: int) = labelBase + j
        let freeRight (j: int) = if diag then freeLeft j else labelBase + nOther + j
        let otherLabels (isLeft: bool) (bn: int) =
            Array.init nOther (fun j ->
                match Array.tryFindIndex ((=) j) otherDims with
                | Some p -> if isLeft then leftOf bn inputDims[p] else rightOf bn inputDims[p]
                | None -> if isLeft then freeLeft j else freeRight j)
        let outLabels (bn: int) =
            Array.append
                (Array.init bn id)
                (origins |> Array.collect (fun (isIn, a) ->
                    if isIn && (a = bAx || a = ch) then [||]
                    elif isIn then (if diag then [| leftOf bn a |] else [| leftOf bn a; rightOf bn a |])
                    elif diag then [| freeLeft a |]
                    else [| freeLeft a; freeRight a |]))
        let nSpatial = nIn - 2
        let apply (bn: int) (left: Tensor) (right: Tensor) (mat: Tensor) =
            let expected = bn + (if diag then nSpatial else 2 * nSpatial)
            if mat.Rank <> expected then
                fail ("dot_general: a covariance of shape " + (Shape.format mat.Shape) + " does not fit inputs of shape " + (Shape.format k.Shape1) + " in this layout")
            let lLeft, lMat, lRight, lOut = otherLabels true bn, Array.init mat.Rank id, otherLabels false bn, outLabels bn
            // Left factor first, keeping only the labels the right factor or the result still needs.
            let lMid =
                Array.append lLeft lMat |> Array.distinct
                |> Array.filter (fun l -> Array.contains l lRight || Array.contains l lOut)
            let mid = Tensor.contract left lLeft mat lMat lMid
            Tensor.contract mid lMid right lRight lOut
        let covBn = covNdim k
        let sameFactor = (o1 = o2)
        let newAxis (a: int) = Array.findIndex ((=) (true, a)) origins
        { k with
            Nngp = apply 2 o1 o2 k.Nngp
            Ntk = k.Ntk |> Option.map (apply 2 o1 o2)
            Cov1 = apply covBn o1 o1 k.Cov1
            Cov2 =
                match k.Cov2 with
                | Some c2 -> Some(apply covBn o2 o2 c2)
                | None when sameFactor -> None
                | None -> Some(apply covBn o2 o2 k.Cov1)
            X1IsX2 = k.X1IsX2 && sameFactor
            IsReversed = false
            Shape1 = outShape o1 k.Shape1
            Shape2 = outShape o2 k.Shape2
            BatchAxis = newAxis bAx
            ChannelAxis = newAxis ch }
