using Microsoft.FSharp.Core;

namespace NeuralTangents.CSharp;

/// <summary>One kernel of a finite network: its values in row-major order and its shape (neural_tangents'
/// <c>_ntk_shape</c>: per output axis nothing when traced, one axis when diagonal, two axes otherwise).</summary>
/// <remarks>The array is this object's own; the object never changes it.</remarks>
public sealed class FiniteKernel
{
    internal FiniteKernel(Tensor t)
    {
        Shape = Array.AsReadOnly((int[])t.Shape.Clone());
        Values = (double[])t.Data.Clone();
    }

    /// <summary>The kernel's shape, e.g. (N1, N2) with the default trace over the last output axis.</summary>
    public IReadOnlyList<int> Shape { get; }

    /// <summary>The values, row-major.</summary>
    public double[] Values { get; }

    /// <summary>The kernel as a matrix, when it has two axes (the default (N1, N2)).</summary>
    /// <returns>A new (Shape[0], Shape[1]) array.</returns>
    /// <exception cref="InvalidOperationException">The kernel does not have two axes.</exception>
    public double[,] ToMatrix()
    {
        if (Shape.Count != 2)
        {
            throw new InvalidOperationException(
                $"the kernel has shape [{string.Join(", ", Shape)}], not two axes; read Values and Shape instead");
        }

        var r = new double[Shape[0], Shape[1]];
        Buffer.BlockCopy(Values, 0, r, 0, Values.Length * sizeof(double));
        return r;
    }
}

/// <summary>The NNGP and NTK of a finite network, or their Monte Carlo estimates; each null when not asked for.</summary>
public sealed class FiniteKernels
{
    internal FiniteKernels(FSharpOption<Tensor>? nngp, FSharpOption<Tensor>? ntk)
    {
        Nngp = nngp is null ? null : new FiniteKernel(nngp.Value);
        Ntk = ntk is null ? null : new FiniteKernel(ntk.Value);
    }

    /// <summary>f(x1)·f(x2)ᵀ averaged over the traced axes; null when only the NTK was asked for.</summary>
    public FiniteKernel? Nngp { get; }

    /// <summary>Σ_θ ∂f(x1)/∂θ·∂f(x2)/∂θ averaged over the traced axes; null when only the NNGP was asked for.</summary>
    public FiniteKernel? Ntk { get; }
}

/// <summary>A function of new parameters and inputs, such as a linearized network: f(θ, x) → outputs (N, outputs).</summary>
/// <param name="parameters">Parameters of the network, e.g. from <see cref="FiniteWidth.WithValues"/>.</param>
/// <param name="x">Inputs, (N, features).</param>
/// <returns>Outputs, (N, outputs).</returns>
public delegate double[,] ParameterFunction(NetworkParameters parameters, double[,] x);

/// <summary>
/// Finite-width tools (neural_tangents' <c>empirical_kernel_fn</c>, <c>monte_carlo_kernel_fn</c>, <c>linearize</c>
/// and <c>taylor_expand</c>) for vector inputs (N, features).
/// </summary>
public static class FiniteWidth
{
    private static readonly Func<string?, string?> Renames = Boundary.Names(
        ("traceAxes", "traceAxes"), ("diagonalAxes", "diagonalAxes"), ("n_samples", "nSamples"),
        ("batch_size", "batchSize"), ("params", "parameters"), ("degree", "degree"));

    /// <summary>The empirical kernels of one finite network (neural_tangents'
    /// <c>empirical_kernel_fn(f, trace_axes, diagonal_axes)(x1, x2, get, params)</c>).</summary>
    /// <param name="network">The architecture.</param>
    /// <param name="parameters">Its parameters, from <see cref="Network.Init(int, int[])"/>.</param>
    /// <param name="x1">First inputs, (N1, features).</param>
    /// <param name="x2">Second inputs, (N2, features); null means x1.</param>
    /// <param name="get">Which kernels: <see cref="KernelOutputs.Ntk"/> computes only the NTK here.</param>
    /// <param name="traceAxes">Output axes to trace over (average); null means neural_tangents' default { -1 }.</param>
    /// <param name="diagonalAxes">Output axes to keep only the diagonal of; null means none.</param>
    /// <returns>The kernels, of shape (N1, N2) with the defaults.</returns>
    /// <exception cref="ArgumentNullException">network, parameters or x1 is null.</exception>
    /// <exception cref="ArgumentException">An axis is out of range, repeated, or both traced and diagonal.</exception>
    public static FiniteKernels EmpiricalKernel(
        Network network, NetworkParameters parameters, double[,] x1, double[,]? x2 = null,
        KernelOutputs get = KernelOutputs.Both, int[]? traceAxes = null, int[]? diagonalAxes = null)
    {
        Boundary.NotNull(network, nameof(network));
        Boundary.NotNull(parameters, nameof(parameters));
        Boundary.NotNull(x1, nameof(x1));
        var layer = network.ToFSharp();
        var t1 = TensorModule.OfArray2D(x1);
        var t2 = x2 is null ? FSharpOption<Tensor>.None : FSharpOption<Tensor>.Some(TensorModule.OfArray2D(x2));
        var r = Boundary.Call(
            () => Empirical.KernelFn(layer, traceAxes ?? new[] { -1 }, diagonalAxes ?? Array.Empty<int>(), t1, t2, ToGet(get), parameters.Value),
            Renames);
        return new FiniteKernels(r.Item1, r.Item2);
    }

    /// <summary>The Monte Carlo estimate of the kernels: the mean of the empirical kernels of
    /// <paramref name="nSamples"/> networks drawn from <paramref name="seed"/> (neural_tangents'
    /// <c>monte_carlo_kernel_fn</c>). Samples run in parallel; the result does not depend on scheduling.</summary>
    /// <param name="network">The architecture (its widths are the finite widths).</param>
    /// <param name="x1">First inputs, (N1, features).</param>
    /// <param name="nSamples">Number of networks averaged (≥ 1).</param>
    /// <param name="seed">Seed of the random key.</param>
    /// <param name="x2">Second inputs; null means x1.</param>
    /// <param name="get">Which kernels.</param>
    /// <param name="traceAxes">As in <see cref="EmpiricalKernel"/>.</param>
    /// <param name="diagonalAxes">As in <see cref="EmpiricalKernel"/>.</param>
    /// <param name="batchSize">neural_tangents' batch_size: 0, or a divisor of N1 and N2 (the numbers do not depend on it).</param>
    /// <param name="progress">Receives the number of samples done, increasing.</param>
    /// <param name="cancellationToken">Stops between samples with <see cref="OperationCanceledException"/>.</param>
    /// <returns>The estimate.</returns>
    public static FiniteKernels MonteCarloKernel(
        Network network, double[,] x1, int nSamples, int seed = 0, double[,]? x2 = null,
        KernelOutputs get = KernelOutputs.Both, int[]? traceAxes = null, int[]? diagonalAxes = null, int batchSize = 0,
        IProgress<int>? progress = null, CancellationToken cancellationToken = default) =>
        MonteCarloKernel(network, x1, new[] { nSamples }, seed, x2, get, traceAxes, diagonalAxes, batchSize, progress, cancellationToken)[0];

    /// <summary>Monte Carlo estimates for several sample counts from one pass over the largest (neural_tangents'
    /// <c>monte_carlo_kernel_fn</c> with a list <c>n_samples</c>): the estimate for n averages samples 0 … n − 1.</summary>
    /// <param name="network">The architecture.</param>
    /// <param name="x1">First inputs, (N1, features).</param>
    /// <param name="nSamples">Sample counts (each ≥ 1); one estimate per count, in this order.</param>
    /// <param name="seed">Seed of the random key.</param>
    /// <param name="x2">Second inputs; null means x1.</param>
    /// <param name="get">Which kernels.</param>
    /// <param name="traceAxes">As in <see cref="EmpiricalKernel"/>.</param>
    /// <param name="diagonalAxes">As in <see cref="EmpiricalKernel"/>.</param>
    /// <param name="batchSize">neural_tangents' batch_size: 0, or a divisor of N1 and N2.</param>
    /// <param name="progress">Receives the number of samples done, increasing.</param>
    /// <param name="cancellationToken">Stops between samples with <see cref="OperationCanceledException"/>.</param>
    /// <returns>One estimate per count.</returns>
    public static IReadOnlyList<FiniteKernels> MonteCarloKernel(
        Network network, double[,] x1, int[] nSamples, int seed = 0, double[,]? x2 = null,
        KernelOutputs get = KernelOutputs.Both, int[]? traceAxes = null, int[]? diagonalAxes = null, int batchSize = 0,
        IProgress<int>? progress = null, CancellationToken cancellationToken = default)
    {
        Boundary.NotNull(network, nameof(network));
        Boundary.NotNull(x1, nameof(x1));
        Boundary.NotNull(nSamples, nameof(nSamples));
        var layer = network.ToFSharp();
        var t1 = TensorModule.OfArray2D(x1);
        var t2 = x2 is null ? FSharpOption<Tensor>.None : FSharpOption<Tensor>.Some(TensorModule.OfArray2D(x2));
        var defaults = MonteCarlo.Options(seed, Microsoft.FSharp.Collections.ListModule.OfArray(nSamples));
        FSharpOption<FSharpFunc<int, Unit>> report = progress is null
            ? FSharpOption<FSharpFunc<int, Unit>>.None
            : FSharpOption<FSharpFunc<int, Unit>>.Some(FuncConvert.FromAction<int>(progress.Report));
        var options = new MonteCarloOptions(
            defaults.NSamples, defaults.Key, batchSize, traceAxes ?? new[] { -1 }, diagonalAxes ?? Array.Empty<int>(),
            cancellationToken, report, defaults.Parallelism);
        var r = Boundary.Call(() => MonteCarlo.ComputeWith(options, layer, t1, t2, ToGet(get)), Renames);
        return r.Select(k => new FiniteKernels(k.Item1, k.Item2)).ToList().AsReadOnly();
    }

    /// <summary>The network linearized about <paramref name="parameters0"/> (neural_tangents' <c>linearize</c>):
    /// f_lin(θ, x) = f(θ₀, x) + J(θ₀, x)·(θ − θ₀), computed with exact Jacobian–vector products (the Jacobian is
    /// never formed).</summary>
    /// <param name="network">The architecture.</param>
    /// <param name="parameters0">θ₀.</param>
    /// <returns>f_lin.</returns>
    public static ParameterFunction Linearize(Network network, NetworkParameters parameters0) =>
        TaylorExpand(network, parameters0, 1);

    /// <summary>The Taylor expansion of the network about <paramref name="parameters0"/> (neural_tangents'
    /// <c>taylor_expand</c>) of degree 0, 1 (<see cref="Linearize"/>) or 2 (the second-order term from exact JVPs by
    /// a fourth-order difference, about 1e-12 relative; not exact).</summary>
    /// <param name="network">The architecture.</param>
    /// <param name="parameters0">θ₀.</param>
    /// <param name="degree">0, 1 or 2.</param>
    /// <returns>The expansion as a function of new parameters and inputs.</returns>
    /// <exception cref="ArgumentException">degree is not 0, 1 or 2.</exception>
    public static ParameterFunction TaylorExpand(Network network, NetworkParameters parameters0, int degree)
    {
        Boundary.NotNull(network, nameof(network));
        Boundary.NotNull(parameters0, nameof(parameters0));
        var layer = network.ToFSharp();
        var f = Boundary.Call(() => Taylor.TaylorExpand(layer, parameters0.Value, degree), Renames);
        return (parameters, x) =>
        {
            Boundary.NotNull(parameters, nameof(parameters));
            Boundary.NotNull(x, nameof(x));
            var y = Boundary.Call(() => f.Invoke(parameters.Value).Invoke(TensorModule.OfArray2D(x)), Renames);
            if (y.Rank != 2)
            {
                throw new NotSupportedException(
                    $"the network's output has shape [{string.Join(", ", y.Shape)}], not (N, outputs); end it with Flatten() and Dense layers");
            }

            return TensorModule.ToArray2D(y);
        };
    }

    /// <summary>Parameters shaped like <paramref name="template"/> holding <paramref name="values"/> (in the order of
    /// <see cref="NetworkParameters.ToVector"/>), e.g. θ₀ + Δ for a linearized network.</summary>
    /// <param name="template">Parameters of the same network.</param>
    /// <param name="values">One value per parameter.</param>
    /// <returns>New parameters.</returns>
    /// <exception cref="ArgumentException">values has the wrong length.</exception>
    public static NetworkParameters WithValues(NetworkParameters template, double[] values)
    {
        Boundary.NotNull(template, nameof(template));
        Boundary.NotNull(values, nameof(values));
        var p = Boundary.Call(() => ParamsModule.OfVector(template.Value, (double[])values.Clone()), Boundary.Names(("v", "values")));
        return new NetworkParameters(p, template.OutputShape.ToArray());
    }

    private static Get ToGet(KernelOutputs get) => get switch
    {
        KernelOutputs.Nngp => Get.Nngp,
        KernelOutputs.Ntk => Get.Ntk,
        KernelOutputs.Both => Get.Both,
        _ => throw new ArgumentException($"unknown KernelOutputs value {(int)get}", nameof(get)),
    };
}
