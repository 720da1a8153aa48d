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
            invalidArg "axes" (sprintf "must be a permutation of the %d spatial axes, got %s" nSpatial (Shape.format axes))
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
