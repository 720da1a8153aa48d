using Microsoft.FSharp.Core;

namespace NeuralTangents.CSharp;

/// <summary>How a kernel is computed in tiles over blocks of inputs (neural_tangents' <c>nt.batch(kernel_fn,
/// batch_size)</c>) within a memory budget. Immutable; <see cref="WithBatchSize"/> and <see cref="WithMemoryGb"/>
/// return new options.</summary>
public sealed class TilingOptions
{
    private TilingOptions(int? batchSize, double? memoryGb)
    {
        BatchSize = batchSize;
        MemoryGb = memoryGb;
    }

    /// <summary>The tile size from the free memory (less a margin), one tile per core at a time.</summary>
    public static TilingOptions Default { get; } = new(null, null);

    /// <summary>Inputs per block of x1 and of x2 (neural_tangents' <c>batch_size</c>); null: the largest that
    /// fits <see cref="MemoryGb"/>. N need not be a multiple of it.</summary>
    public int? BatchSize { get; }

    /// <summary>The memory budget in gigabytes (10⁹ bytes); null: the free memory less a margin.</summary>
    public double? MemoryGb { get; }

    /// <summary>These options with a fixed tile size.</summary>
    /// <param name="batchSize">Inputs per block, at least 1.</param>
    /// <returns>New options.</returns>
    /// <exception cref="ArgumentOutOfRangeException"><paramref name="batchSize"/> is below 1.</exception>
    public TilingOptions WithBatchSize(int batchSize) =>
        batchSize >= 1
            ? new(batchSize, MemoryGb)
            : throw new ArgumentOutOfRangeException(nameof(batchSize), batchSize, "must be a positive number of inputs per block");

    /// <summary>These options with a memory budget.</summary>
    /// <param name="memoryGb">Gigabytes (10⁹ bytes), finite, positive and at most 10⁹.</param>
    /// <returns>New options.</returns>
    /// <exception cref="ArgumentOutOfRangeException"><paramref name="memoryGb"/> is not finite and positive, or above 10⁹.</exception>
    public TilingOptions WithMemoryGb(double memoryGb) =>
        double.IsFinite(memoryGb) && memoryGb > 0 && memoryGb <= 1e9
            ? new(BatchSize, memoryGb)
            : throw new ArgumentOutOfRangeException(nameof(memoryGb), memoryGb, "must be a positive, finite number of gigabytes, at most 1e9");

    internal BatchOptions ToFSharp(IProgress<KernelProgress>? progress, CancellationToken cancellationToken) =>
        new(
            BatchSize is int b ? FSharpOption<int>.Some(b) : FSharpOption<int>.None,
            MemoryGb is double g ? FSharpOption<long>.Some((long)(g * 1e9)) : FSharpOption<long>.None,
            FSharpOption<int>.None,
            progress is null
                ? FSharpOption<IProgress<TileProgress>>.None
                : FSharpOption<IProgress<TileProgress>>.Some(new ProgressAdapter(progress)),
            cancellationToken);

    private sealed class ProgressAdapter(IProgress<KernelProgress> inner) : IProgress<TileProgress>
    {
        public void Report(TileProgress value) =>
            inner.Report(new KernelProgress(
                value.TilesDone, value.TilesTotal, value.Elapsed, value.Remaining?.Value));
    }
}

/// <summary>Progress of a tiled kernel computation, reported after every tile (on a worker thread).</summary>
/// <param name="TilesDone">Tiles finished.</param>
/// <param name="TilesTotal">Tiles in the whole computation.</param>
/// <param name="Elapsed">Time since the computation started.</param>
/// <param name="Remaining">Estimated time left; null before the first tile ends.</param>
public sealed record KernelProgress(int TilesDone, int TilesTotal, TimeSpan Elapsed, TimeSpan? Remaining);
