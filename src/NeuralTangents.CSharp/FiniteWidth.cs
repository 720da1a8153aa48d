using System.Diagnostics;
using Microsoft.FSharp.Core;

namespace NeuralTangents.CSharp;

/// <summary>
/// Finite-width tools: neural_tangents' <c>empirical_kernel_fn</c>, <c>monte_carlo_kernel_fn</c>, <c>linearize</c>
/// and <c>taylor_expand</c>, for vector inputs (N, features) as <c>double[,]</c>, jagged <c>double[][]</c> rows or
/// <c>float[,]</c>, and images (N, height, width, channels) as <c>double[,,,]</c>.
/// </summary>
public static partial class FiniteWidth
{
    private static readonly Func<string?, string?> Renames = Boundary.Names(
        ("traceAxes", "traceAxes"), ("diagonalAxes", "diagonalAxes"), ("n_samples", "nSamples"),
        ("batch_size", "batchSize"), ("params", "parameters"), ("degree", "degree"), ("parallelism", "parallelism"));

    /// <summary>The empirical kernels of one finite network (neural_tangents'
    /// <c>nt.batch(empirical_kernel_fn(f, trace_axes, diagonal_axes), batch_size)(x1, x2, get, params)</c>).</summary>
    /// <remarks>The kernel's shape follows neural_tangents' <c>_ntk_shape</c>: per output axis of f(x), nothing when
    /// traced, one axis when diagonal, two (x1's, then x2's) otherwise, so (N1, N2) for (N, outputs) outputs with the
    /// defaults and e.g. (N1, N2, H, H', W, W') for an image output traced over its channels.</remarks>
    /// <param name="network">The architecture.</param>
    /// <param name="parameters">Its parameters, from <see cref="Network.Init(int, int[])"/>.</param>
    /// <param name="x1">First inputs, (N1, features).</param>
    /// <param name="x2">Second inputs, (N2, features); null means x1.</param>
    /// <param name="get">Which kernels: <see cref="KernelOutputs.Ntk"/> computes only the NTK here.</param>
    /// <param name="traceAxes">Output axes to trace over (average); null means neural_tangents' default { -1 }.</param>
    /// <param name="diagonalAxes">Output axes to keep only the diagonal of; null means none.</param>
    /// <param name="batchSize">0 (the default) for one block, or the examples per block of x1 and x2: only
    /// 2·batchSize examples' passes are held at a time. As neural_tangents, reduced to gcd(N1, N2) when larger, and
    /// it must divide N1 and N2. The numbers do not depend on it (bit for bit).</param>
    /// <param name="progress">Receives a report after every block (<see cref="KernelProgress.TilesDone"/> blocks of
    /// <see cref="KernelProgress.TilesTotal"/>) on the calling thread; null for none.</param>
    /// <param name="cancellationToken">Stops between blocks with <see cref="OperationCanceledException"/>.</param>
    /// <returns>The kernels.</returns>
    /// <exception cref="ArgumentNullException">network, parameters or x1 is null.</exception>
    /// <exception cref="ArgumentException">An axis is out of range, repeated, or both traced and diagonal; or
    /// batchSize does not divide N1 and N2, or splits examples whose axis is traced or diagonal.</exception>
    /// <exception cref="InvalidOperationException">The inputs do not fit the network, or the kernel does not fit in
    /// memory; the message says why.</exception>
    /// <exception cref="OperationCanceledException"><paramref name="cancellationToken"/> was cancelled.</exception>
    public static FiniteKernels EmpiricalKernel(
        Network network, NetworkParameters parameters, double[,] x1, double[,]? x2 = null,
        KernelOutputs get = KernelOutputs.Both, int[]? traceAxes = null, int[]? diagonalAxes = null, int batchSize = 0,
        IProgress<KernelProgress>? progress = null, CancellationToken cancellationToken = default) =>
        Empirical(network, parameters, Matrix(x1, nameof(x1)), x2 is null ? null : Matrix(x2, nameof(x2)),
            get, traceAxes, diagonalAxes, batchSize, progress, cancellationToken);

    /// <summary>The empirical kernels of one finite network between images, NHWC (N, height, width, channels)
    /// unless the network's layers state other axes.</summary>
    /// <inheritdoc cref="EmpiricalKernel(Network, NetworkParameters, double[,], double[,], KernelOutputs, int[], int[], int, IProgress{KernelProgress}, CancellationToken)"/>
    public static FiniteKernels EmpiricalKernel(
        Network network, NetworkParameters parameters, double[,,,] x1, double[,,,]? x2 = null,
        KernelOutputs get = KernelOutputs.Both, int[]? traceAxes = null, int[]? diagonalAxes = null, int batchSize = 0,
        IProgress<KernelProgress>? progress = null, CancellationToken cancellationToken = default) =>
        Empirical(network, parameters, Images(x1, nameof(x1)), x2 is null ? null : Images(x2, nameof(x2)),
            get, traceAxes, diagonalAxes, batchSize, progress, cancellationToken);

    /// <summary>The empirical kernels of one finite network between inputs given as jagged rows (one
    /// <c>double[]</c> of features per input).</summary>
    /// <inheritdoc cref="EmpiricalKernel(Network, NetworkParameters, double[,], double[,], KernelOutputs, int[], int[], int, IProgress{KernelProgress}, CancellationToken)"/>
    public static FiniteKernels EmpiricalKernel(
        Network network, NetworkParameters parameters, double[][] x1, double[][]? x2 = null,
        KernelOutputs get = KernelOutputs.Both, int[]? traceAxes = null, int[]? diagonalAxes = null, int batchSize = 0,
        IProgress<KernelProgress>? progress = null, CancellationToken cancellationToken = default) =>
        Empirical(network, parameters, Matrix(Inputs.Rows(x1, nameof(x1)), nameof(x1)),
            x2 is null ? null : Matrix(Inputs.Rows(x2, nameof(x2)), nameof(x2)),
            get, traceAxes, diagonalAxes, batchSize, progress, cancellationToken);

    /// <summary>The empirical kernels of one finite network between single-precision inputs, widened (exactly) to
    /// double.</summary>
    /// <inheritdoc cref="EmpiricalKernel(Network, NetworkParameters, double[,], double[,], KernelOutputs, int[], int[], int, IProgress{KernelProgress}, CancellationToken)"/>
    public static FiniteKernels EmpiricalKernel(
        Network network, NetworkParameters parameters, float[,] x1, float[,]? x2 = null,
        KernelOutputs get = KernelOutputs.Both, int[]? traceAxes = null, int[]? diagonalAxes = null, int batchSize = 0,
        IProgress<KernelProgress>? progress = null, CancellationToken cancellationToken = default) =>
        Empirical(network, parameters, Matrix(Inputs.Widen(x1, nameof(x1)), nameof(x1)),
            x2 is null ? null : Matrix(Inputs.Widen(x2, nameof(x2)), nameof(x2)),
            get, traceAxes, diagonalAxes, batchSize, progress, cancellationToken);

    /// <summary>The Monte Carlo estimate of the kernels: the mean of the empirical kernels of
    /// <paramref name="nSamples"/> networks drawn from <paramref name="seed"/> (neural_tangents'
    /// <c>monte_carlo_kernel_fn</c>). Samples run in parallel; the result does not depend on scheduling.</summary>
    /// <param name="network">The architecture (its widths are the finite widths).</param>
    /// <param name="x1">First inputs, (N1, features).</param>
    /// <param name="nSamples">Number of networks averaged (≥ 1).</param>
    /// <param name="seed">Seed of the random key.</param>
    /// <param name="x2">Second inputs; null means x1.</param>
    /// <param name="get">Which kernels.</param>
    /// <param name="traceAxes">As in <see cref="EmpiricalKernel(Network, NetworkParameters, double[,], double[,], KernelOutputs, int[], int[], int, IProgress{KernelProgress}, CancellationToken)"/>.</param>
    /// <param name="diagonalAxes">As in EmpiricalKernel.</param>
    /// <param name="batchSize">neural_tangents' batch_size: 0 computes each sample's kernel at once; otherwise over
    /// blocks of this many examples of x1 and x2 (reduced to gcd(N1, N2) when larger; it must divide N1 and N2), so
    /// each sample holds only 2·batchSize examples' passes. The estimate does not depend on it (bit for bit).</param>
    /// <param name="progress">Receives the number of samples done, increasing, on the calling thread.</param>
    /// <param name="cancellationToken">Stops between samples and between blocks with
    /// <see cref="OperationCanceledException"/>.</param>
    /// <returns>The estimate.</returns>
    /// <exception cref="ArgumentNullException">network or x1 is null.</exception>
    /// <exception cref="ArgumentException">nSamples is below 1, an axis is out of range, or batchSize does not
    /// divide N1 and N2.</exception>
    /// <exception cref="InvalidOperationException">The inputs do not fit the network, or the kernel does not fit in
    /// memory.</exception>
    /// <exception cref="OperationCanceledException"><paramref name="cancellationToken"/> was cancelled.</exception>
    public static FiniteKernels MonteCarloKernel(
        Network network, double[,] x1, int nSamples, int seed = 0, double[,]? x2 = null,
        KernelOutputs get = KernelOutputs.Both, int[]? traceAxes = null, int[]? diagonalAxes = null, int batchSize = 0,
        IProgress<int>? progress = null, CancellationToken cancellationToken = default) =>
        MonteCarlo(network, Matrix(x1, nameof(x1)), x2 is null ? null : Matrix(x2, nameof(x2)), new[] { nSamples },
            seed, get, traceAxes, diagonalAxes, batchSize, progress, cancellationToken)[0];

    /// <summary>Monte Carlo estimates for several sample counts from one pass over the largest (neural_tangents'
    /// <c>monte_carlo_kernel_fn</c> with a list <c>n_samples</c>): the estimate for n averages samples 0 … n − 1.</summary>
    /// <param name="network">The architecture.</param>
    /// <param name="x1">First inputs, (N1, features).</param>
    /// <param name="nSamples">Sample counts (each ≥ 1); one estimate per distinct count, in increasing order (as
    /// neural_tangents yields them).</param>
    /// <param name="seed">Seed of the random key.</param>
    /// <param name="x2">Second inputs; null means x1.</param>
    /// <param name="get">Which kernels.</param>
    /// <param name="traceAxes">As in EmpiricalKernel.</param>
    /// <param name="diagonalAxes">As in EmpiricalKernel.</param>
    /// <param name="batchSize">As in <see cref="MonteCarloKernel(Network, double[,], int, int, double[,], KernelOutputs, int[], int[], int, IProgress{int}, CancellationToken)"/>.</param>
    /// <param name="progress">Receives the number of samples done, increasing.</param>
    /// <param name="cancellationToken">Stops between samples and blocks with <see cref="OperationCanceledException"/>.</param>
    /// <returns>One estimate per count.</returns>
    /// <exception cref="ArgumentNullException">network, x1 or nSamples is null.</exception>
    /// <exception cref="ArgumentException">A count is below 1 or the list is empty, an axis is out of range, or
    /// batchSize does not divide N1 and N2.</exception>
    /// <exception cref="InvalidOperationException">The inputs do not fit the network.</exception>
    /// <exception cref="OperationCanceledException"><paramref name="cancellationToken"/> was cancelled.</exception>
    public static IReadOnlyList<FiniteKernels> MonteCarloKernel(
        Network network, double[,] x1, int[] nSamples, int seed = 0, double[,]? x2 = null,
        KernelOutputs get = KernelOutputs.Both, int[]? traceAxes = null, int[]? diagonalAxes = null, int batchSize = 0,
        IProgress<int>? progress = null, CancellationToken cancellationToken = default) =>
        MonteCarlo(network, Matrix(x1, nameof(x1)), x2 is null ? null : Matrix(x2, nameof(x2)), nSamples,
            seed, get, traceAxes, diagonalAxes, batchSize, progress, cancellationToken);

    /// <summary>The Monte Carlo estimate of the kernels between images, NHWC (N, height, width, channels).</summary>
    /// <inheritdoc cref="MonteCarloKernel(Network, double[,], int, int, double[,], KernelOutputs, int[], int[], int, IProgress{int}, CancellationToken)"/>
    public static FiniteKernels MonteCarloKernel(
        Network network, double[,,,] x1, int nSamples, int seed = 0, double[,,,]? x2 = null,
        KernelOutputs get = KernelOutputs.Both, int[]? traceAxes = null, int[]? diagonalAxes = null, int batchSize = 0,
        IProgress<int>? progress = null, CancellationToken cancellationToken = default) =>
        MonteCarlo(network, Images(x1, nameof(x1)), x2 is null ? null : Images(x2, nameof(x2)), new[] { nSamples },
            seed, get, traceAxes, diagonalAxes, batchSize, progress, cancellationToken)[0];

    /// <summary>Monte Carlo estimates for several sample counts between images, NHWC.</summary>
    /// <inheritdoc cref="MonteCarloKernel(Network, double[,], int[], int, double[,], KernelOutputs, int[], int[], int, IProgress{int}, CancellationToken)"/>
    public static IReadOnlyList<FiniteKernels> MonteCarloKernel(
        Network network, double[,,,] x1, int[] nSamples, int seed = 0, double[,,,]? x2 = null,
        KernelOutputs get = KernelOutputs.Both, int[]? traceAxes = null, int[]? diagonalAxes = null, int batchSize = 0,
        IProgress<int>? progress = null, CancellationToken cancellationToken = default) =>
        MonteCarlo(network, Images(x1, nameof(x1)), x2 is null ? null : Images(x2, nameof(x2)), nSamples,
            seed, get, traceAxes, diagonalAxes, batchSize, progress, cancellationToken);

    /// <summary>The Monte Carlo estimate of the kernels between inputs given as jagged rows.</summary>
    /// <inheritdoc cref="MonteCarloKernel(Network, double[,], int, int, double[,], KernelOutputs, int[], int[], int, IProgress{int}, CancellationToken)"/>
    public static FiniteKernels MonteCarloKernel(
        Network network, double[][] x1, int nSamples, int seed = 0, double[][]? x2 = null,
        KernelOutputs get = KernelOutputs.Both, int[]? traceAxes = null, int[]? diagonalAxes = null, int batchSize = 0,
        IProgress<int>? progress = null, CancellationToken cancellationToken = default) =>
        MonteCarloKernel(network, Inputs.Rows(x1, nameof(x1)), nSamples, seed, x2 is null ? null : Inputs.Rows(x2, nameof(x2)),
            get, traceAxes, diagonalAxes, batchSize, progress, cancellationToken);

    /// <summary>The Monte Carlo estimate of the kernels between single-precision inputs, widened (exactly) to double.</summary>
    /// <inheritdoc cref="MonteCarloKernel(Network, double[,], int, int, double[,], KernelOutputs, int[], int[], int, IProgress{int}, CancellationToken)"/>
    public static FiniteKernels MonteCarloKernel(
        Network network, float[,] x1, int nSamples, int seed = 0, float[,]? x2 = null,
        KernelOutputs get = KernelOutputs.Both, int[]? traceAxes = null, int[]? diagonalAxes = null, int batchSize = 0,
        IProgress<int>? progress = null, CancellationToken cancellationToken = default) =>
        MonteCarloKernel(network, Inputs.Widen(x1, nameof(x1)), nSamples, seed, x2 is null ? null : Inputs.Widen(x2, nameof(x2)),
            get, traceAxes, diagonalAxes, batchSize, progress, cancellationToken);

    /// <summary>Monte Carlo estimates for several sample counts between inputs given as jagged rows.</summary>
    /// <inheritdoc cref="MonteCarloKernel(Network, double[,], int[], int, double[,], KernelOutputs, int[], int[], int, IProgress{int}, CancellationToken)"/>
    public static IReadOnlyList<FiniteKernels> MonteCarloKernel(
        Network network, double[][] x1, int[] nSamples, int seed = 0, double[][]? x2 = null,
        KernelOutputs get = KernelOutputs.Both, int[]? traceAxes = null, int[]? diagonalAxes = null, int batchSize = 0,
        IProgress<int>? progress = null, CancellationToken cancellationToken = default) =>
        MonteCarloKernel(network, Inputs.Rows(x1, nameof(x1)), nSamples, seed, x2 is null ? null : Inputs.Rows(x2, nameof(x2)),
            get, traceAxes, diagonalAxes, batchSize, progress, cancellationToken);

    /// <summary>Monte Carlo estimates for several sample counts between single-precision inputs.</summary>
    /// <inheritdoc cref="MonteCarloKernel(Network, double[,], int[], int, double[,], KernelOutputs, int[], int[], int, IProgress{int}, CancellationToken)"/>
    public static IReadOnlyList<FiniteKernels> MonteCarloKernel(
        Network network, float[,] x1, int[] nSamples, int seed = 0, float[,]? x2 = null,
        KernelOutputs get = KernelOutputs.Both, int[]? traceAxes = null, int[]? diagonalAxes = null, int batchSize = 0,
        IProgress<int>? progress = null, CancellationToken cancellationToken = default) =>
        MonteCarloKernel(network, Inputs.Widen(x1, nameof(x1)), nSamples, seed, x2 is null ? null : Inputs.Widen(x2, nameof(x2)),
            get, traceAxes, diagonalAxes, batchSize, progress, cancellationToken);

    internal static Tensor Matrix(double[,] x, string paramName) => TensorModule.OfArray2D(Boundary.NotNull(x, paramName));

    internal static Tensor Images(double[,,,] x, string paramName) => TensorModule.OfArray4D(Boundary.NotNull(x, paramName));

    private static FiniteKernels Empirical(
        Network network, NetworkParameters parameters, Tensor t1, Tensor? t2, KernelOutputs get, int[]? traceAxes,
        int[]? diagonalAxes, int batchSize, IProgress<KernelProgress>? progress, CancellationToken cancellationToken)
    {
        Boundary.NotNull(network, nameof(network));
        Boundary.NotNull(parameters, nameof(parameters));
        var layer = network.ToFSharp();
        var x2 = t2 is null ? FSharpOption<Tensor>.None : FSharpOption<Tensor>.Some(t2);
        var clock = Stopwatch.StartNew();
        FSharpOption<FSharpFunc<NeuralTangents.MonteCarlo.BlockProgress, Unit>> report = progress is null
            ? FSharpOption<FSharpFunc<NeuralTangents.MonteCarlo.BlockProgress, Unit>>.None
            : FSharpOption<FSharpFunc<NeuralTangents.MonteCarlo.BlockProgress, Unit>>.Some(
                FuncConvert.FromAction<NeuralTangents.MonteCarlo.BlockProgress>(b =>
                {
                    var elapsed = clock.Elapsed;
                    TimeSpan? remaining = b.BlocksDone >= b.BlocksTotal
                        ? TimeSpan.Zero
                        : elapsed * ((double)(b.BlocksTotal - b.BlocksDone) / b.BlocksDone);
                    progress.Report(new KernelProgress(b.BlocksDone, b.BlocksTotal, elapsed, remaining));
                }));
        var r = Boundary.Call(
            () => NeuralTangents.MonteCarlo.EmpiricalKernelBatched(
                batchSize, traceAxes ?? new[] { -1 }, diagonalAxes ?? Array.Empty<int>(), cancellationToken, report,
                layer, parameters.Value, t1, x2, ToGet(get)),
            Renames);
        return new FiniteKernels(r.Item1, r.Item2);
    }

    private static IReadOnlyList<FiniteKernels> MonteCarlo(
        Network network, Tensor t1, Tensor? t2, int[] nSamples, int seed, KernelOutputs get, int[]? traceAxes,
        int[]? diagonalAxes, int batchSize, IProgress<int>? progress, CancellationToken cancellationToken)
    {
        Boundary.NotNull(network, nameof(network));
        Boundary.NotNull(nSamples, nameof(nSamples));
        var layer = network.ToFSharp();
        var x2 = t2 is null ? FSharpOption<Tensor>.None : FSharpOption<Tensor>.Some(t2);
        var defaults = NeuralTangents.MonteCarlo.Options(seed, Microsoft.FSharp.Collections.ListModule.OfArray(nSamples));
        FSharpOption<FSharpFunc<int, Unit>> report = progress is null
            ? FSharpOption<FSharpFunc<int, Unit>>.None
            : FSharpOption<FSharpFunc<int, Unit>>.Some(FuncConvert.FromAction<int>(progress.Report));
        var options = new MonteCarloOptions(
            defaults.NSamples, defaults.Key, batchSize, traceAxes ?? new[] { -1 }, diagonalAxes ?? Array.Empty<int>(),
            cancellationToken, report, defaults.Parallelism);
        var r = Boundary.Call(() => NeuralTangents.MonteCarlo.ComputeWith(options, layer, t1, x2, ToGet(get)), Renames);
        return r.Select(k => new FiniteKernels(k.Item1, k.Item2)).ToList().AsReadOnly();
    }

    private static Get ToGet(KernelOutputs get) => get switch
    {
        KernelOutputs.Nngp => Get.Nngp,
        KernelOutputs.Ntk => Get.Ntk,
        KernelOutputs.Both => Get.Both,
        _ => throw new ArgumentException($"unknown KernelOutputs value {(int)get}", nameof(get)),
    };
}
