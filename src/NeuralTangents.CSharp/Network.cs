using Microsoft.FSharp.Core;

namespace NeuralTangents.CSharp;

/// <summary>
/// An immutable description of a neural network (a neural_tangents <c>nt.stax</c> layer or combination of layers)
/// from which the exact infinite-width NNGP and NTK kernels are computed. Build one with <see cref="Stax"/> or
/// <see cref="NetworkBuilder"/>. Two networks are equal when they describe the same layers with the same arguments.
/// </summary>
public sealed class Network : IEquatable<Network>
{
    private readonly Layer layer;

    private Network(Layer layer) => this.layer = layer;

    /// <summary>Wraps a layer of the F# core (interop with F# code).</summary>
    /// <param name="layer">A layer built with the F# <c>NeuralTangents.Stax</c> module.</param>
    /// <returns>A network describing the same layer.</returns>
    /// <exception cref="ArgumentNullException"><paramref name="layer"/> is null.</exception>
    public static Network FromFSharp(Layer layer) => new(Boundary.NotNull(layer, nameof(layer)));

    /// <summary>Reads a network from JSON with neural_tangents' layer and argument names, e.g.
    /// <c>{"layer":"serial","layers":[{"layer":"Dense","out_dim":512},{"layer":"Relu"}]}</c>; omitted arguments take
    /// neural_tangents' defaults.</summary>
    /// <param name="json">The JSON text.</param>
    /// <returns>The network it describes.</returns>
    /// <exception cref="ArgumentNullException"><paramref name="json"/> is null.</exception>
    /// <exception cref="FormatException">The text is not valid JSON or not a valid network; the message names the
    /// layer and argument at fault.</exception>
    public static Network FromJson(string json)
    {
        Boundary.NotNull(json, nameof(json));
        try
        {
            return new Network(Json.Decode(json));
        }
        catch (Json.JsonArchitectureException e)
        {
            throw new FormatException(e.Message, e);
        }
    }

    /// <summary>The layer of the F# core this network wraps (interop with F# code).</summary>
    /// <returns>The F# <c>NeuralTangents.Layer</c> value; it is immutable.</returns>
    public Layer ToFSharp() => layer;

    /// <summary>Writes the network as JSON with neural_tangents' layer and argument names, every argument explicit;
    /// <see cref="FromJson(string)"/> reads it back to an equal network.</summary>
    /// <returns>Compact JSON text.</returns>
    /// <exception cref="InvalidOperationException">The network holds a layer built from C# functions, which
    /// cannot travel as data (use <see cref="ToString"/> to print it).</exception>
    public string ToJson()
    {
        try
        {
            return Json.Encode(layer);
        }
        catch (Json.JsonArchitectureException e)
        {
            throw new InvalidOperationException(e.Data0, e);
        }
    }

    /// <summary>The exact infinite-width kernels between two sets of vector inputs (neural_tangents'
    /// <c>kernel_fn(x1, x2, get)</c>).</summary>
    /// <param name="x1">First inputs, shape (N1, features) unless the network's layers state other axes.</param>
    /// <param name="x2">Second inputs, shape (N2, features); null means x2 = x1.</param>
    /// <param name="get">Which kernels to compute.</param>
    /// <param name="diagonalSpatial">neural_tangents' <c>diagonal_spatial</c>: true computes only same-position
    /// covariances in the layers, false every pair of positions; null (the default) lets the network decide. Vector
    /// inputs have no positions, so only a layer that refuses a diagonal layout makes a difference here.</param>
    /// <param name="diagonalBatch">neural_tangents' <c>diagonal_batch</c>: false also computes the full output
    /// covariance of x1 (and x2) with itself, returned as <see cref="KernelResult.Cov1Full"/> /
    /// <see cref="KernelResult.Cov2Full"/>; null or true (neural_tangents' default) computes only the variances.</param>
    /// <returns>The kernels, each (N1, N2).</returns>
    /// <exception cref="ArgumentNullException"><paramref name="x1"/> is null.</exception>
    /// <exception cref="ArgumentException">An input has a non-finite value, or x1 and x2 have different numbers of
    /// features, or the inputs lack an axis a layer names.</exception>
    /// <exception cref="InvalidOperationException">The network cannot take these inputs (for example an activation
    /// not preceded by a Dense layer); the message says how to fix it.</exception>
    /// <exception cref="NotSupportedException">The network's output keeps spatial axes.</exception>
    public KernelResult Kernel(
        double[,] x1, double[,]? x2 = null, KernelOutputs get = KernelOutputs.Both, bool? diagonalSpatial = null,
        bool? diagonalBatch = null)
    {
        Boundary.NotNull(x1, nameof(x1));
        var t1 = TensorModule.OfArray2D(x1);
        var t2 = x2 is null ? null : TensorModule.OfArray2D(x2);
        return Compute(t1, t2, get, diagonalSpatial, diagonalBatch);
    }

    /// <summary>The exact infinite-width kernels between two sets of vector inputs given as jagged rows (one
    /// <c>double[]</c> per input), as <see cref="Kernel(double[,], double[,], KernelOutputs, bool?, bool?)"/>.</summary>
    /// <param name="x1">First inputs: N1 rows of equal length.</param>
    /// <param name="x2">Second inputs: N2 rows; null means x2 = x1.</param>
    /// <param name="get">Which kernels to compute.</param>
    /// <param name="diagonalSpatial">As in the <c>double[,]</c> overload.</param>
    /// <param name="diagonalBatch">As in the <c>double[,]</c> overload.</param>
    /// <returns>The kernels, each (N1, N2).</returns>
    /// <exception cref="ArgumentNullException"><paramref name="x1"/> or one of its rows is null.</exception>
    /// <exception cref="ArgumentException">The rows differ in length, or as in the <c>double[,]</c> overload.</exception>
    public KernelResult Kernel(
        double[][] x1, double[][]? x2 = null, KernelOutputs get = KernelOutputs.Both, bool? diagonalSpatial = null,
        bool? diagonalBatch = null) =>
        Kernel(Inputs.Rows(x1, nameof(x1)), x2 is null ? null : Inputs.Rows(x2, nameof(x2)), get, diagonalSpatial, diagonalBatch);

    /// <summary>The exact infinite-width kernels between two sets of single-precision vector inputs; they are widened
    /// to double (exactly) and the kernels computed in double precision.</summary>
    /// <param name="x1">First inputs, (N1, features).</param>
    /// <param name="x2">Second inputs, (N2, features); null means x2 = x1.</param>
    /// <param name="get">Which kernels to compute.</param>
    /// <param name="diagonalSpatial">As in the <c>double[,]</c> overload.</param>
    /// <param name="diagonalBatch">As in the <c>double[,]</c> overload.</param>
    /// <returns>The kernels, each (N1, N2), in double precision.</returns>
    /// <exception cref="ArgumentNullException"><paramref name="x1"/> is null.</exception>
    /// <exception cref="ArgumentException">As in the <c>double[,]</c> overload.</exception>
    public KernelResult Kernel(
        float[,] x1, float[,]? x2 = null, KernelOutputs get = KernelOutputs.Both, bool? diagonalSpatial = null,
        bool? diagonalBatch = null) =>
        Kernel(Inputs.Widen(x1, nameof(x1)), x2 is null ? null : Inputs.Widen(x2, nameof(x2)), get, diagonalSpatial, diagonalBatch);

    /// <summary>The exact infinite-width kernels between two sets of images (neural_tangents'
    /// <c>kernel_fn(x1, x2, get)</c>) for a network whose output is flat, e.g. one ending in
    /// <see cref="Stax.Flatten(int, int)"/> followed by Dense layers.</summary>
    /// <param name="x1">First images, NHWC: (N1, height, width, channels) unless the network's layers state other axes.</param>
    /// <param name="x2">Second images, NHWC with the same height, width and channels; null means x2 = x1.</param>
    /// <param name="get">Which kernels to compute.</param>
    /// <param name="diagonalSpatial">neural_tangents' <c>diagonal_spatial</c>: true computes only same-position
    /// covariances (H, W) in the layers, false every pair of positions (H, H', W, W'); null (the default) lets the
    /// network decide (diagonal when it ends in Flatten). A flat output is the same either way; false costs more.</param>
    /// <param name="diagonalBatch">neural_tangents' <c>diagonal_batch</c>: false also computes the full output
    /// covariance of x1 (and x2) with itself, returned as <see cref="KernelResult.Cov1Full"/> /
    /// <see cref="KernelResult.Cov2Full"/>; null or true (neural_tangents' default) computes only the variances.</param>
    /// <returns>The kernels, each (N1, N2).</returns>
    /// <exception cref="ArgumentNullException"><paramref name="x1"/> is null.</exception>
    /// <exception cref="ArgumentException">An input has a non-finite value, or x1 and x2 differ in a non-batch
    /// axis, or the inputs lack an axis a layer names.</exception>
    /// <exception cref="InvalidOperationException">The network cannot take these inputs; the message says how to fix it.</exception>
    /// <exception cref="NotSupportedException">The network's output keeps spatial axes (it does not flatten or pool
    /// them); such kernel arrays are only available from the F# API.</exception>
    public KernelResult Kernel(
        double[,,,] x1, double[,,,]? x2 = null, KernelOutputs get = KernelOutputs.Both, bool? diagonalSpatial = null,
        bool? diagonalBatch = null)
    {
        Boundary.NotNull(x1, nameof(x1));
        var t1 = TensorModule.OfArray4D(x1);
        var t2 = x2 is null ? null : TensorModule.OfArray4D(x2);
        return Compute(t1, t2, get, diagonalSpatial, diagonalBatch);
    }

    /// <summary>The exact infinite-width kernels between two sets of inputs, computed in tiles over blocks of
    /// inputs (neural_tangents' <c>nt.batch(kernel_fn, batch_size)(x1, x2)</c>): tiles run in parallel within the
    /// memory budget of <paramref name="tiling"/>, with x2 = x1 only the tiles on and above the diagonal are
    /// computed, and the answer equals the untiled one to round-off.</summary>
    /// <param name="x1">First inputs, (N1, features).</param>
    /// <param name="x2">Second inputs; null means x2 = x1.</param>
    /// <param name="get">Which kernels to compute.</param>
    /// <param name="tiling">Tile size and memory budget (<see cref="TilingOptions.Default"/>: from the free memory).</param>
    /// <param name="progress">Receives a report after every tile, on a worker thread; null for none.</param>
    /// <param name="cancellationToken">Stops the computation at the next tile boundary.</param>
    /// <returns>The kernels, each (N1, N2).</returns>
    /// <exception cref="ArgumentNullException"><paramref name="x1"/> or <paramref name="tiling"/> is null.</exception>
    /// <exception cref="InvalidOperationException">The network cannot take these inputs, or the answer or its smallest
    /// tile does not fit the memory budget; the message gives the numbers.</exception>
    /// <exception cref="OperationCanceledException"><paramref name="cancellationToken"/> was cancelled.</exception>
    public KernelResult Kernel(
        double[,] x1, double[,]? x2, KernelOutputs get, TilingOptions tiling, IProgress<KernelProgress>? progress = null,
        CancellationToken cancellationToken = default)
    {
        Boundary.NotNull(x1, nameof(x1));
        Boundary.NotNull(tiling, nameof(tiling));
        var t1 = TensorModule.OfArray2D(x1);
        var t2 = x2 is null ? null : TensorModule.OfArray2D(x2);
        return Compute(t1, t2, get, null, null, tiling.ToFSharp(progress, cancellationToken));
    }

    /// <summary>The exact infinite-width kernels between two sets of images, computed in tiles (see
    /// <see cref="Kernel(double[,], double[,], KernelOutputs, TilingOptions, IProgress{KernelProgress}, CancellationToken)"/>).</summary>
    /// <param name="x1">First images, NHWC.</param>
    /// <param name="x2">Second images; null means x2 = x1.</param>
    /// <param name="get">Which kernels to compute.</param>
    /// <param name="tiling">Tile size and memory budget.</param>
    /// <param name="progress">Receives a report after every tile; null for none.</param>
    /// <param name="cancellationToken">Stops the computation at the next tile boundary.</param>
    /// <returns>The kernels, each (N1, N2).</returns>
    /// <exception cref="ArgumentNullException"><paramref name="x1"/> or <paramref name="tiling"/> is null.</exception>
    /// <exception cref="InvalidOperationException">The network cannot take these inputs, or the memory budget is too
    /// small; the message says why.</exception>
    /// <exception cref="NotSupportedException">The network's output keeps spatial axes.</exception>
    /// <exception cref="OperationCanceledException"><paramref name="cancellationToken"/> was cancelled.</exception>
    public KernelResult Kernel(
        double[,,,] x1, double[,,,]? x2, KernelOutputs get, TilingOptions tiling, IProgress<KernelProgress>? progress = null,
        CancellationToken cancellationToken = default)
    {
        Boundary.NotNull(x1, nameof(x1));
        Boundary.NotNull(tiling, nameof(tiling));
        var t1 = TensorModule.OfArray4D(x1);
        var t2 = x2 is null ? null : TensorModule.OfArray4D(x2);
        return Compute(t1, t2, get, null, null, tiling.ToFSharp(progress, cancellationToken));
    }

    /// <summary>Samples the parameters of a finite network of this architecture (neural_tangents'
    /// <c>init_fn(key, input_shape)</c>, with its initialisation for both parameterizations).</summary>
    /// <param name="seed">Seed of the random key; the same seed gives the same parameters.</param>
    /// <param name="inputShape">The shape of a batch of inputs, e.g. (N, features) or (N, height, width, channels).</param>
    /// <returns>The parameters and the output shape.</returns>
    /// <exception cref="ArgumentNullException"><paramref name="inputShape"/> is null.</exception>
    /// <exception cref="ArgumentException">A dimension is not positive.</exception>
    /// <exception cref="InvalidOperationException">The shape does not fit the network; the message says why.</exception>
    public NetworkParameters Init(int seed, params int[] inputShape)
    {
        Boundary.NotNull(inputShape, nameof(inputShape));
        var r = Boundary.Call(() => InitFn.Init(seed, layer, inputShape), Boundary.Names(("inputShape", "inputShape")));
        return new NetworkParameters(r.Item2, r.Item1);
    }

    /// <summary>The outputs of the finite network with these parameters (neural_tangents' <c>apply_fn(params, x)</c>)
    /// for vector inputs.</summary>
    /// <param name="parameters">Parameters from <see cref="Init(int, int[])"/> of this network.</param>
    /// <param name="x">Inputs, (N, features).</param>
    /// <returns>The outputs, (N, outputs).</returns>
    /// <exception cref="ArgumentNullException">An argument is null.</exception>
    /// <exception cref="ArgumentException">The parameters do not belong to this network.</exception>
    /// <exception cref="InvalidOperationException">The inputs do not fit the network; the message says why.</exception>
    /// <exception cref="NotSupportedException">The network's output is not (N, outputs).</exception>
    public double[,] Apply(NetworkParameters parameters, double[,] x)
    {
        Boundary.NotNull(parameters, nameof(parameters));
        Boundary.NotNull(x, nameof(x));
        var y = Boundary.Call(
            () => ApplyFn.Apply(layer, parameters.Value, TensorModule.OfArray2D(x)),
            Boundary.Names(("params", "parameters"), ("x", "x")));
        if (y.Rank != 2)
        {
            throw new NotSupportedException(
                $"the network's output has shape [{string.Join(", ", y.Shape)}], not (N, outputs); end it with Flatten() and Dense layers");
        }

        return TensorModule.ToArray2D(y);
    }

    /// <summary>The outputs of the finite network for images, NHWC (N, height, width, channels) unless the network's
    /// layers state other axes; the network must end flat (e.g. Flatten() then Dense).</summary>
    /// <inheritdoc cref="Apply(NetworkParameters, double[,])"/>
    public double[,] Apply(NetworkParameters parameters, double[,,,] x) => ApplyTensor(parameters, FiniteWidth.Images(x, nameof(x)));

    /// <summary>The outputs of the finite network for inputs given as jagged rows (one <c>double[]</c> per input).</summary>
    /// <inheritdoc cref="Apply(NetworkParameters, double[,])"/>
    public double[,] Apply(NetworkParameters parameters, double[][] x) => Apply(parameters, Inputs.Rows(x, nameof(x)));

    /// <summary>The outputs of the finite network for single-precision inputs, widened (exactly) to double.</summary>
    /// <inheritdoc cref="Apply(NetworkParameters, double[,])"/>
    public double[,] Apply(NetworkParameters parameters, float[,] x) => Apply(parameters, Inputs.Widen(x, nameof(x)));

    private double[,] ApplyTensor(NetworkParameters parameters, Tensor x)
    {
        Boundary.NotNull(parameters, nameof(parameters));
        var y = Boundary.Call(() => ApplyFn.Apply(layer, parameters.Value, x), Boundary.Names(("params", "parameters"), ("x", "x")));
        return OutputMatrix.Of(y);
    }

    /// <summary>Whether <paramref name="other"/> describes the same layers with the same arguments.</summary>
    /// <param name="other">The network to compare with; may be null.</param>
    /// <returns>True when the two networks are structurally equal.</returns>
    public bool Equals(Network? other) => other is not null && layer.Equals(other.layer);

    /// <summary>Whether <paramref name="obj"/> is a <see cref="Network"/> describing the same layers.</summary>
    /// <param name="obj">The object to compare with; may be null.</param>
    /// <returns>True when <paramref name="obj"/> is an equal network.</returns>
    public override bool Equals(object? obj) => Equals(obj as Network);

    /// <summary>A hash code consistent with <see cref="Equals(Network)"/>.</summary>
    /// <returns>The structural hash of the layers.</returns>
    public override int GetHashCode() => layer.GetHashCode();

    /// <summary>The network as JSON, as <see cref="ToJson"/> writes it; a layer built from C# functions (which
    /// <see cref="ToJson"/> refuses) appears as <c>{"layer":"Elementwise","name":…,"fn":"(user function)"}</c>,
    /// so printing never throws.</summary>
    /// <returns>Compact JSON text.</returns>
    public override string ToString() => Json.Describe(layer);

    /// <summary>The exact infinite-width kernels between two sets of images in which some entries are masked
    /// (neural_tangents' <c>kernel_fn(x1, x2, get, mask_constant=…)</c>, e.g. padding of images of different sizes):
    /// entries equal to <paramref name="maskConstant"/> (NaN: NaN entries) are zeroed and excluded from every layer
    /// that pools or normalises over positions, and covariances of masked positions are zero. Layers that cannot take
    /// masks raise an error naming them (e.g. per-channel masks reaching a pooling layer).</summary>
    /// <param name="x1">First images, NHWC.</param>
    /// <param name="x2">Second images; null means x2 = x1.</param>
    /// <param name="get">Which kernels to compute.</param>
    /// <param name="maskConstant">The value that marks masked entries.</param>
    /// <param name="diagonalSpatial">As in <see cref="Kernel(double[,,,], double[,,,], KernelOutputs, bool?, bool?)"/>.</param>
    /// <param name="diagonalBatch">As in <see cref="Kernel(double[,,,], double[,,,], KernelOutputs, bool?, bool?)"/>.</param>
    /// <returns>The kernels, each (N1, N2).</returns>
    /// <exception cref="ArgumentNullException"><paramref name="x1"/> is null.</exception>
    /// <exception cref="ArgumentException">An unmasked input entry is not finite, or the inputs do not fit.</exception>
    /// <exception cref="InvalidOperationException">A layer cannot take masked inputs, or the network cannot take these
    /// inputs; the message names the layer and the fix.</exception>
    /// <exception cref="NotSupportedException">The network's output keeps spatial axes.</exception>
    public KernelResult Kernel(
        double[,,,] x1, double[,,,]? x2, KernelOutputs get, double maskConstant, bool? diagonalSpatial = null,
        bool? diagonalBatch = null)
    {
        Boundary.NotNull(x1, nameof(x1));
        var t1 = TensorModule.OfArray4D(x1);
        var t2 = x2 is null ? null : TensorModule.OfArray4D(x2);
        return Compute(t1, t2, get, diagonalSpatial, diagonalBatch, null, maskConstant);
    }

    /// <summary>The exact infinite-width kernels between two sets of vector inputs in which some entries are masked
    /// (neural_tangents' <c>kernel_fn(x1, x2, get, mask_constant=…)</c>), as the image overload
    /// <see cref="Kernel(double[,,,], double[,,,], KernelOutputs, double, bool?, bool?)"/>.</summary>
    /// <param name="x1">First inputs, (N1, features).</param>
    /// <param name="x2">Second inputs; null means x2 = x1.</param>
    /// <param name="get">Which kernels to compute.</param>
    /// <param name="maskConstant">The value that marks masked entries (NaN: NaN entries).</param>
    /// <param name="diagonalSpatial">As in the <c>double[,]</c> overload.</param>
    /// <param name="diagonalBatch">As in the <c>double[,]</c> overload.</param>
    /// <returns>The kernels, each (N1, N2).</returns>
    /// <exception cref="ArgumentNullException"><paramref name="x1"/> is null.</exception>
    /// <exception cref="ArgumentException">An unmasked input entry is not finite, or the inputs do not fit.</exception>
    /// <exception cref="InvalidOperationException">A layer cannot take masked inputs; the message names it.</exception>
    public KernelResult Kernel(
        double[,] x1, double[,]? x2, KernelOutputs get, double maskConstant, bool? diagonalSpatial = null,
        bool? diagonalBatch = null)
    {
        Boundary.NotNull(x1, nameof(x1));
        var t1 = TensorModule.OfArray2D(x1);
        var t2 = x2 is null ? null : TensorModule.OfArray2D(x2);
        return Compute(t1, t2, get, diagonalSpatial, diagonalBatch, null, maskConstant);
    }

    /// <summary>Masked kernels of jagged rows, as <see cref="Kernel(double[,], double[,], KernelOutputs, double, bool?, bool?)"/>.</summary>
    /// <param name="x1">First inputs: N1 rows of equal length.</param>
    /// <param name="x2">Second inputs; null means x2 = x1.</param>
    /// <param name="get">Which kernels to compute.</param>
    /// <param name="maskConstant">The value that marks masked entries (NaN: NaN entries).</param>
    /// <param name="diagonalSpatial">As in the <c>double[,]</c> overload.</param>
    /// <param name="diagonalBatch">As in the <c>double[,]</c> overload.</param>
    /// <returns>The kernels, each (N1, N2).</returns>
    /// <exception cref="ArgumentNullException"><paramref name="x1"/> or one of its rows is null.</exception>
    /// <exception cref="ArgumentException">The rows differ in length, or as in the <c>double[,]</c> overload.</exception>
    public KernelResult Kernel(
        double[][] x1, double[][]? x2, KernelOutputs get, double maskConstant, bool? diagonalSpatial = null,
        bool? diagonalBatch = null) =>
        Kernel(Inputs.Rows(x1, nameof(x1)), x2 is null ? null : Inputs.Rows(x2, nameof(x2)), get, maskConstant, diagonalSpatial, diagonalBatch);

    /// <summary>Masked kernels of single-precision inputs (widened exactly to double, as is the mask constant), as
    /// <see cref="Kernel(double[,], double[,], KernelOutputs, double, bool?, bool?)"/>.</summary>
    /// <param name="x1">First inputs, (N1, features).</param>
    /// <param name="x2">Second inputs; null means x2 = x1.</param>
    /// <param name="get">Which kernels to compute.</param>
    /// <param name="maskConstant">The value that marks masked entries (NaN: NaN entries).</param>
    /// <param name="diagonalSpatial">As in the <c>double[,]</c> overload.</param>
    /// <param name="diagonalBatch">As in the <c>double[,]</c> overload.</param>
    /// <returns>The kernels, each (N1, N2), in double precision.</returns>
    /// <exception cref="ArgumentNullException"><paramref name="x1"/> is null.</exception>
    /// <exception cref="ArgumentException">As in the <c>double[,]</c> overload.</exception>
    public KernelResult Kernel(
        float[,] x1, float[,]? x2, KernelOutputs get, float maskConstant, bool? diagonalSpatial = null,
        bool? diagonalBatch = null) =>
        Kernel(Inputs.Widen(x1, nameof(x1)), x2 is null ? null : Inputs.Widen(x2, nameof(x2)), get, (double)maskConstant, diagonalSpatial, diagonalBatch);

    /// <summary>The exact infinite-width kernels of a graph network (neural_tangents'
    /// <c>kernel_fn(x1, x2, get, pattern=(pattern1, pattern2))</c>): every <see cref="Stax.Aggregate"/> layer
    /// aggregates x1's samples with <paramref name="pattern1"/> and x2's with <paramref name="pattern2"/>.</summary>
    /// <param name="x1">First inputs, a <c>double</c> array of any rank, e.g. (N1, vertices, channels).</param>
    /// <param name="x2">Second inputs of the same rank; null means x2 = x1.</param>
    /// <param name="get">Which kernels to compute.</param>
    /// <param name="pattern1">x1's adjacency, a <c>double</c> array in the format of the Aggregate layers'
    /// implementation (DENSE: (N1, V, V) weights; SPARSE: (N1, E, 2) edge lists).</param>
    /// <param name="pattern2">x2's adjacency; null only when <paramref name="x2"/> is null (then pattern1 is used).</param>
    /// <param name="diagonalSpatial">As in the <c>double[,]</c> overload.</param>
    /// <param name="diagonalBatch">As in the <c>double[,]</c> overload.</param>
    /// <returns>The kernels, each (N1, N2).</returns>
    /// <exception cref="ArgumentNullException"><paramref name="x1"/> or <paramref name="pattern1"/> is null.</exception>
    /// <exception cref="ArgumentException">An array is not of <c>double</c>, <paramref name="pattern2"/> is missing
    /// for a given <paramref name="x2"/>, a pattern has the wrong shape, or the inputs do not fit.</exception>
    /// <exception cref="NotSupportedException">The network's output keeps spatial axes.</exception>
    public KernelResult Kernel(
        Array x1, Array? x2, KernelOutputs get, Array pattern1, Array? pattern2 = null, bool? diagonalSpatial = null,
        bool? diagonalBatch = null)
    {
        Boundary.NotNull(x1, nameof(x1));
        Boundary.NotNull(pattern1, nameof(pattern1));
        if (x2 is not null && pattern2 is null)
        {
            throw new ArgumentException(
                "pattern2 is required when x2 is given (neural_tangents' pattern=(pattern1, pattern2)); pass x2's adjacency",
                nameof(pattern2));
        }

        var t1 = Stax.TensorOf(x1, nameof(x1));
        var t2 = x2 is null ? null : Stax.TensorOf(x2, nameof(x2));
        var p1 = Stax.TensorOf(pattern1, nameof(pattern1));
        var p2 = pattern2 is null ? p1 : Stax.TensorOf(pattern2, nameof(pattern2));
        return Compute(t1, t2, get, diagonalSpatial, diagonalBatch, pattern: Tuple.Create(p1, p2));
    }

    private KernelResult Compute(
        Tensor x1, Tensor? x2, KernelOutputs get, bool? diagonalSpatial, bool? diagonalBatch, BatchOptions? tiling = null,
        double? maskConstant = null, Tuple<Tensor, Tensor>? pattern = null)
    {
        var g = ToGet(get);
        var x2Option = x2 is null ? FSharpOption<Tensor>.None : FSharpOption<Tensor>.Some(x2);
        var layout = new LayoutRequest(
            diagonalBatch is bool b ? FSharpOption<bool>.Some(b) : FSharpOption<bool>.None,
            diagonalSpatial is bool d ? FSharpOption<bool>.Some(d) : FSharpOption<bool>.None);
        // The core names the inputs x1 and x2 as we do; an input without the axis a layer names ("x" or a layer's
        // axis argument) is a fault of the inputs, reported against x1.
        var k = Boundary.Call(
            () => maskConstant is double c
                ? KernelFn.ComputeWithMask(c, layout, layer, x1, x2Option, g)
                : pattern is not null
                ? KernelFn.ComputeWithPattern(pattern.Item1, pattern.Item2, layout, layer, x1, x2Option, g)
                : tiling is null
                ? KernelFn.ComputeWithLayout(layout, layer, x1, x2Option, g)
                : Batching.ComputeWithLayout(tiling, layout, layer, x1, x2Option, g),
            Boundary.Names(("x", "x1"), ("batch_axis", "x1"), ("channel_axis", "x1")));
        if (k.Nngp.Rank != 2 || k.Cov1.Rank != (k.DiagonalBatch ? 1 : 2))
        {
            throw new NotSupportedException(
                $"the network's output keeps spatial axes (NNGP shape [{string.Join(", ", k.Nngp.Shape)}]); " +
                "end it with Flatten() and Dense layers to get (N1, N2) kernels, or use the F# API (ToFSharp()) " +
                "for the full kernel tensor");
        }

        if (!k.DiagonalBatch)
        {
            // Cov1/Cov2 are the full (N, N) covariances; the variances are their diagonals.
            static double[] Diagonal(double[,] m) => Enumerable.Range(0, m.GetLength(0)).Select(i => m[i, i]).ToArray();
            var c1 = TensorModule.ToArray2D(k.Cov1);
            var c2 = k.Cov2 is null ? null : TensorModule.ToArray2D(k.Cov2.Value);
            return new KernelResult(
                TensorModule.ToArray2D(k.Nngp),
                k.Ntk is null ? null : TensorModule.ToArray2D(k.Ntk.Value),
                Diagonal(c1),
                c2 is null ? null : Diagonal(c2),
                c1,
                c2);
        }

        return new KernelResult(
            TensorModule.ToArray2D(k.Nngp),
            k.Ntk is null ? null : TensorModule.ToArray2D(k.Ntk.Value),
            (double[])k.Cov1.Data.Clone(),
            k.Cov2 is null ? null : (double[])k.Cov2.Value.Data.Clone());
    }

    private static Get ToGet(KernelOutputs get) => get switch
    {
        KernelOutputs.Nngp => Get.Nngp,
        KernelOutputs.Ntk => Get.Ntk,
        KernelOutputs.Both => Get.Both,
        _ => throw new ArgumentException($"unknown KernelOutputs value {(int)get}", nameof(get)),
    };
}
