using NUnit.Framework;
using static NeuralTangents.CSharp.Tests.TestUtil;

namespace NeuralTangents.CSharp.Tests;

/// <summary>Network.Kernel with TilingOptions: equal to the untiled kernel, progress reports, cancellation, nulls.</summary>
[TestFixture]
public class TilingTests
{
    private static Network Mlp() =>
        Stax.Serial(Stax.Dense(512, wStd: 1.5, bStd: 0.05), Stax.Relu(), Stax.Dense(1, wStd: 1.5, bStd: 0.05));

    private static double[,] Inputs(int seed, int n, int d)
    {
        var rng = new Random(seed);
        var x = new double[n, d];
        for (var i = 0; i < n; i++)
            for (var j = 0; j < d; j++)
                x[i, j] = rng.NextDouble() * 2 - 1;
        return x;
    }

    /// <summary>Reports collected synchronously (System.Progress would post them later).</summary>
    private sealed class Collect(Action<KernelProgress>? onReport = null) : IProgress<KernelProgress>
    {
        public List<KernelProgress> Items { get; } = new();

        public void Report(KernelProgress value)
        {
            lock (Items) Items.Add(value);
            onReport?.Invoke(value);
        }
    }

    [Test]
    public void TiledKernel_EqualsUntiled_WithProgressPerTile()
    {
        var x1 = Inputs(1, 7, 4);
        var x2 = Inputs(2, 5, 4);
        var untiled = Mlp().Kernel(x1, x2);
        var reports = new Collect();
        var tiled = Mlp().Kernel(x1, x2, KernelOutputs.Both, TilingOptions.Default.WithBatchSize(3), reports);
        AssertClose("nngp", 1e-14, untiled.Nngp, tiled.Nngp);
        AssertClose("ntk", 1e-14, untiled.Ntk!, tiled.Ntk!);
        AssertClose("cov1", 1e-14, untiled.Cov1, tiled.Cov1);
        AssertClose("cov2", 1e-14, untiled.Cov2!, tiled.Cov2!);
        // 3 blocks of x1 by 2 of x2: 6 tiles, a report before the first and one after each.
        Assert.That(reports.Items.Select(r => r.TilesDone).OrderBy(d => d), Is.EqualTo(Enumerable.Range(0, 7)));
        Assert.That(reports.Items.All(r => r.TilesTotal == 6), Is.True);
    }

    [Test]
    public void TiledKernel_Cancelled_ThrowsOperationCanceled()
    {
        using var cts = new CancellationTokenSource();
        var reports = new Collect(r => { if (r.TilesDone >= 1) cts.Cancel(); });
        Assert.Throws<OperationCanceledException>(() =>
            Mlp().Kernel(Inputs(3, 9, 4), null, KernelOutputs.Both, TilingOptions.Default.WithBatchSize(2), reports, cts.Token));
        Assert.That(reports.Items.Max(r => r.TilesDone), Is.LessThan(15), "stopped before the last of the 15 tiles");
    }

    [Test]
    public void TiledKernel_TooSmallBudget_IsRefusedWithTheNumbers()
    {
        var e = Assert.Throws<InvalidOperationException>(() =>
            Mlp().Kernel(Inputs(4, 50, 4), null, KernelOutputs.Both, TilingOptions.Default.WithMemoryGb(1e-8)));
        Assert.That(e!.Message, Does.Contain("N1 = 50 by N2 = 50 inputs").And.Contain("cannot be computed within"));
        // The fix in C# terms, not the command line's "memory_gb".
        Assert.That(e.Message, Does.Contain("TilingOptions.WithMemoryGb").And.Not.Contain("memory_gb"));
    }

    [Test]
    public void TilingOptions_RejectBadValues_AndNulls()
    {
        Assert.Throws<ArgumentOutOfRangeException>(() => TilingOptions.Default.WithBatchSize(0));
        Assert.Throws<ArgumentOutOfRangeException>(() => TilingOptions.Default.WithMemoryGb(double.NaN));
        Assert.That(Assert.Throws<ArgumentOutOfRangeException>(() => TilingOptions.Default.WithMemoryGb(2e9))!.Message, Does.Contain("at most 1e9"));
        Assert.Throws<ArgumentNullException>(() => Mlp().Kernel((double[,])null!, null, KernelOutputs.Both, TilingOptions.Default));
        Assert.Throws<ArgumentNullException>(() => Mlp().Kernel(Inputs(5, 2, 2), null, KernelOutputs.Both, (TilingOptions)null!));
    }
}
