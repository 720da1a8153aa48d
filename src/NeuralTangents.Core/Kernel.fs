namespace NeuralTangents

/// <summary>The one exception type for kernel-level violations (a layout or input a layer cannot take);
/// its message says how to fix the network or the call.</summary>
exception NeuralTangentsException of string with
    override e.Message = e.Data0

/// <summary>
/// The covariances that flow through an infinite network, field for field neural_tangents' <c>Kernel</c>.
/// Layout (diagonal_batch = true, as neural_tangents' <c>kernel_fn</c> default):
/// <c>Nngp</c>, <c>Ntk</c>: (N1, N2, spatial…); <c>Cov1</c>: (N1, spatial…); <c>Cov2</c>: (N2, spatial…),
/// where "spatial…" is (H, W, …) when <c>DiagonalSpatial</c> and (H, H', W, W', …) otherwise.
/// Update with <c>{ k with … }</c> (neural_tangents' <c>replace</c>); the arrays inside are never mutated.
/// </summary>
type Kernel =
    { /// NNGP covariance between x1 and x2.
      Nngp: Tensor
      /// NTK between x1 and x2; None when only the NNGP is computed.
      Ntk: Tensor option
      /// Variances of x1 (diagonal of the x1–x1 covariance).
      Cov1: Tensor
      /// Variances of x2; None when x2 is x1.
      Cov2: Tensor option
      X1IsX2: bool
      /// True when the pre-activations are a mean-zero Gaussian (after an affine layer).
      IsGaussian: bool
      IsReversed: bool
      /// True while no layer has been applied yet.
      IsInput: bool
      DiagonalBatch: bool
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
