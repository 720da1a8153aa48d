using Microsoft.FSharp.Collections;
using Microsoft.FSharp.Core;

namespace NeuralTangents.CSharp;

/// <summary>The keyword arguments a finite network's apply_fn receives (neural_tangents' <c>**apply_fn_kwargs</c> of
/// <c>empirical_kernel_fn</c> and <c>monte_carlo_kernel_fn</c>): a random key for Dropout in mode 'train' and the
/// <c>pattern</c> of Aggregate layers.</summary>
/// <param name="RngSeed">Seed of the random key (neural_tangents' <c>rng</c>); null for none (then Dropout(train)
/// layers raise an error).</param>
/// <param name="Pattern1">x1's adjacency for Aggregate layers (a <c>double</c> array in the layers' format), or null.</param>
/// <param name="Pattern2">x2's adjacency; null means <paramref name="Pattern1"/>.</param>
public sealed record ApplyArguments(int? RngSeed = null, Array? Pattern1 = null, Array? Pattern2 = null);

/// <content>Empirical and Monte Carlo kernels with apply_fn keyword arguments.</content>
public static partial class FiniteWidth
{
    /// <summary>The empirical kernels of one finite network whose apply_fn takes keyword arguments: a random key
    /// (Dropout in mode 'train') and/or Aggregate's pattern (neural_tangents'
    /// <c>empirical_kernel_fn(f)(x1, x2, get, params, rng=…, pattern=(p1, p2))</c>). f(x1) runs with the key and
    /// pattern1, f(x2) with pattern2 and the key itself when x2 is null or equal to x1, else a split of it.</summary>
    /// <param name="network">The architecture.</param>
    /// <param name="parameters">Its parameters, from <see cref="Network.Init(int, int[])"/>.</param>
    /// <param name="x1">First inputs, a <c>double</c> array of any rank (batch axis first unless the layers say
    /// otherwise).</param>
    /// <param name="x2">Second inputs of the same rank; null means x1.</param>
    /// <param name="arguments">The key and patterns.</param>
    /// <param name="get">Which kernels.</param>
    /// <param name="traceAxes">Output axes to trace over; null means { -1 }.</param>
    /// <param name="diagonalAxes">Output axes to keep only the diagonal of; null means none.</param>
    /// <returns>The kernels.</returns>
    /// <exception cref="ArgumentNullException">network, parameters, x1 or arguments is null.</exception>
    /// <exception cref="ArgumentException">An array is not of <c>double</c>, or an axis is out of range.</exception>
    /// <exception cref="InvalidOperationException">The inputs or patterns do not fit the network; the message says why.</exception>
    public static FiniteKernels EmpiricalKernel(
        Network network, NetworkParameters parameters, Array x1, Array? x2, ApplyArguments arguments,
        KernelOutputs get = KernelOutputs.Both, int[]? traceAxes = null, int[]? diagonalAxes = null)
    {
        Boundary.NotNull(network, nameof(network));
        Boundary.NotNull(parameters, nameof(parameters));
        Boundary.NotNull(x1, nameof(x1));
        Boundary.NotNull(arguments, nameof(arguments));
        var t1 = Stax.TensorOf(x1, nameof(x1));
        var t2 = x2 is null ? FSharpOption<Tensor>.None : FSharpOption<Tensor>.Some(Stax.TensorOf(x2, nameof(x2)));
        var (p1, p2) = Patterns(arguments);
        var split = NeuralTangents.Empirical.SplitContext(KeyOnly(arguments), t1, t2);
        var c1 = WithPattern(split.Item1, p1);
        var c2 = WithPattern(split.Item2, p2);
        var layer = network.ToFSharp();
        var r = Boundary.Call(
            () => NeuralTangents.Empirical.KernelFnWith(
                c1, c2, layer, traceAxes ?? new[] { -1 }, diagonalAxes ?? Array.Empty<int>(), t1, t2, ToGet(get),
                parameters.Value),
            Renames);
        return new FiniteKernels(r.Item1, r.Item2);
    }

    /// <summary>The Monte Carlo estimate of the kernels of networks whose apply_fn takes keyword arguments
    /// (neural_tangents' <c>monte_carlo_kernel_fn(…)(x1, x2, get, rng=…, pattern=…)</c>): sample s applies the
    /// network with the key split at s (a fresh dropout draw per network) and the pattern.</summary>
    /// <param name="network">The architecture (its widths are the finite widths).</param>
    /// <param name="x1">First inputs, a <c>double</c> array of any rank.</param>
    /// <param name="nSamples">Number of networks averaged (≥ 1).</param>
    /// <param name="arguments">The key and pattern. One pattern serves both calls here: with x2 given, Pattern2
    /// must be null or equal Pattern1.</param>
    /// <param name="seed">Seed of the parameters' random key.</param>
    /// <param name="x2">Second inputs; null means x1.</param>
    /// <param name="get">Which kernels.</param>
    /// <param name="traceAxes">Output axes to trace over; null means { -1 }.</param>
    /// <param name="diagonalAxes">Output axes to keep only the diagonal of; null means none.</param>
    /// <returns>The estimate.</returns>
    /// <exception cref="ArgumentNullException">network, x1 or arguments is null.</exception>
    /// <exception cref="ArgumentException">nSamples is below 1, an array is not of <c>double</c>, an axis is out of
    /// range, or two different patterns are given.</exception>
    /// <exception cref="InvalidOperationException">The inputs or pattern do not fit the network.</exception>
    public static FiniteKernels MonteCarloKernel(
        Network network, Array x1, int nSamples, ApplyArguments arguments, int seed = 0, Array? x2 = null,
        KernelOutputs get = KernelOutputs.Both, int[]? traceAxes = null, int[]? diagonalAxes = null)
    {
        Boundary.NotNull(network, nameof(network));
        Boundary.NotNull(x1, nameof(x1));
        Boundary.NotNull(arguments, nameof(arguments));
        var t1 = Stax.TensorOf(x1, nameof(x1));
        var t2 = x2 is null ? FSharpOption<Tensor>.None : FSharpOption<Tensor>.Some(Stax.TensorOf(x2, nameof(x2)));
        var (p1, p2) = Patterns(arguments);
        if (p1 is not null && p2 is not null && !ReferenceEquals(p1, p2)
            && !(p1.Shape.SequenceEqual(p2.Shape) && p1.Data.SequenceEqual(p2.Data)))
        {
            throw new ArgumentException(
                "two different patterns for x1 and x2 are not supported by the Monte Carlo kernel (one pattern serves both calls); use EmpiricalKernel, or leave Pattern2 null",
                nameof(arguments));
        }

        var ctx = WithPattern(KeyOnly(arguments), p1);
        var layer = network.ToFSharp();
        var defaults = NeuralTangents.MonteCarlo.Options(seed, ListModule.OfArray(new[] { nSamples }));
        var options = new MonteCarloOptions(
            defaults.NSamples, defaults.Key, 0, traceAxes ?? new[] { -1 }, diagonalAxes ?? Array.Empty<int>(),
            CancellationToken.None, FSharpOption<FSharpFunc<int, Unit>>.None, defaults.Parallelism);
        var r = Boundary.Call(
            () => NeuralTangents.MonteCarlo.ComputeWithContext(ctx, options, layer, t1, t2, ToGet(get)), Renames);
        return new FiniteKernels(r.Head.Item1, r.Head.Item2);
    }

    private static (Tensor? P1, Tensor? P2) Patterns(ApplyArguments a)
    {
        if (a.Pattern1 is null)
        {
            return a.Pattern2 is null
                ? (null, null)
                : throw new ArgumentException("Pattern2 is given without Pattern1; give x1's pattern too", nameof(a));
        }

        var p1 = Stax.TensorOf(a.Pattern1, "Pattern1");
        return (p1, a.Pattern2 is null ? p1 : Stax.TensorOf(a.Pattern2, "Pattern2"));
    }

    private static ApplyContext KeyOnly(ApplyArguments a) =>
        new(
            a.RngSeed is int s ? FSharpOption<RngKey>.Some(Rng.OfSeed(s)) : FSharpOption<RngKey>.None,
            MapModule.Empty<string, Tensor>());

    private static ApplyContext WithPattern(ApplyContext ctx, Tensor? pattern) =>
        pattern is null ? ctx : new ApplyContext(ctx.Rng, ctx.Side.Add("pattern", pattern));
}
