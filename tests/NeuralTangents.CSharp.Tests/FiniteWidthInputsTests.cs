using NUnit.Framework;

namespace NeuralTangents.CSharp.Tests;

/// <summary>FiniteWidth on every input form (images NHWC, jagged rows, float), its batch size (bit-for-bit equal
/// answers, progress per block, cancellation between blocks) and its errors in .NET terms.</summary>
[TestFixture]
public class FiniteWidthInputsTests
{
    // 3 images of 2 × 2 pixels × 2 channels, and 2 more: d = 8 features once flattened (row-major, NHWC).
    private static readonly double[,,,] Img1 = Images(3, 1);
    private static readonly double[,,,] Img2 = Images(2, 2);

    private static double[,,,] Images(int n, int seed)
    {
        var r = new Random(seed);
        var x = new double[n, 2, 2, 2];
        for (var i = 0; i < n; i++)
        for (var h = 0; h < 2; h++)
        for (var w = 0; w < 2; w++)
        for (var c = 0; c < 2; c++)
        {
            x[i, h, w, c] = r.NextDouble() * 2 - 1;
        }

        return x;
    }

    private static double Dot(double[,,,] a, int i, double[,,,] b, int j)
    {
        var s = 0.0;
        for (var h = 0; h < 2; h++)
        for (var w = 0; w < 2; w++)
        for (var c = 0; c < 2; c++)
        {
            s += a[i, h, w, c] * b[j, h, w, c];
        }

        return s;
    }

    private sealed class Recorder<T> : IProgress<T>
    {
        public Action<T>? OnReport { get; init; }

        public List<T> Seen { get; } = new();

        public void Report(T value)
        {
            Seen.Add(value);
            OnReport?.Invoke(value);
        }
    }

    /// <summary>Flatten → Dense(3, W_std = 2, b_std = 0.5) on images: ∂f_c/∂W[l, c'] = δ_cc'·2/√8·x_l and
    /// ∂f_c/∂b_c' = δ_cc'·0.5, so Θ[i, j] = 4/8·x_i·x_j + 0.25 (the default trace over the outputs), whatever θ.</summary>
    [Test]
    public void EmpiricalKernel_OnImages_IsTheClosedForm_AndBatchingChangesNoBit()
    {
        var net = Stax.Serial(Stax.Flatten(), Stax.Dense(3, wStd: 2.0, bStd: 0.5));
        var p = net.Init(7, 3, 2, 2, 2);
        var k = FiniteWidth.EmpiricalKernel(net, p, Img1, Img2);
        var ntk = k.Ntk!.ToMatrix();
        for (var i = 0; i < 3; i++)
        for (var j = 0; j < 2; j++)
        {
            Assert.That(ntk[i, j], Is.EqualTo(0.5 * Dot(Img1, i, Img2, j) + 0.25).Within(1e-12).Percent);
        }

        var blocks = new Recorder<KernelProgress>();
        var batched = FiniteWidth.EmpiricalKernel(net, p, Img1, Img2, batchSize: 1, progress: blocks);
        Assert.That(batched.Ntk!.Values, Is.EqualTo(k.Ntk.Values));
        Assert.That(batched.Nngp!.Values, Is.EqualTo(k.Nngp!.Values));
        Assert.That(blocks.Seen.Select(b => (b.TilesDone, b.TilesTotal)), Is.EqualTo(Enumerable.Range(1, 6).Select(d => (d, 6))));
        Assert.That(blocks.Seen[^1].Remaining, Is.EqualTo(TimeSpan.Zero));
    }

    [Test]
    public void EmpiricalKernel_CancelledBetweenBlocks_AndBadBatchSize()
    {
        var net = Stax.Serial(Stax.Flatten(), Stax.Dense(2));
        var p = net.Init(1, 3, 2, 2, 2);
        using var cts = new CancellationTokenSource();
        var progress = new Recorder<KernelProgress> { OnReport = _ => cts.Cancel() };
        Assert.Throws<OperationCanceledException>(() =>
            FiniteWidth.EmpiricalKernel(net, p, Img1, batchSize: 1, progress: progress, cancellationToken: cts.Token));
        Assert.That(progress.Seen.Count, Is.EqualTo(1), "no block after the cancellation");
        var e = Assert.Throws<ArgumentException>(() => FiniteWidth.EmpiricalKernel(net, p, Img1, Img2, batchSize: -2));
        Assert.That(e!.ParamName, Is.EqualTo("batchSize"));
        e = Assert.Throws<ArgumentException>(() => FiniteWidth.EmpiricalKernel(net, p, Img1, batchSize: 2));
        Assert.That(e!.ParamName, Is.EqualTo("batchSize"));
        Assert.That(e.Message, Does.Contain("batchSize 2 must divide the batch sizes N1 = 3 and N2 = 3"));
        e = Assert.Throws<ArgumentException>(() => FiniteWidth.EmpiricalKernel(net, p, Img1, batchSize: 1, diagonalAxes: new[] { 0 }));
        Assert.That(e!.ParamName, Is.EqualTo("batchSize"));
        Assert.That(e.Message, Does.Contain("use batchSize 0"));
    }

    [Test]
    public void MonteCarloKernel_OnImages_BatchedEqualsUnbatched_AndErrorsAreTheCallers()
    {
        var net = Stax.Serial(Stax.Conv(3, new[] { 2, 2 }, padding: PaddingMode.Same), Stax.Relu(), Stax.Flatten(), Stax.Dense(2));
        var whole = FiniteWidth.MonteCarloKernel(net, Img1, new[] { 1, 3 }, seed: 4, x2: Img2);
        var batched = FiniteWidth.MonteCarloKernel(net, Img1, new[] { 1, 3 }, seed: 4, x2: Img2, batchSize: 1);
        for (var n = 0; n < 2; n++)
        {
            Assert.That(batched[n].Nngp!.Values, Is.EqualTo(whole[n].Nngp!.Values));
            Assert.That(batched[n].Ntk!.Values, Is.EqualTo(whole[n].Ntk!.Values));
            Assert.That(whole[n].Ntk!.Shape, Is.EqualTo(new[] { 3, 2 }));
        }

        // an error inside a sample reaches the caller as itself (not an AggregateException), named in C#
        var e = Assert.Throws<ArgumentException>(() => FiniteWidth.MonteCarloKernel(net, Img1, 2, traceAxes: new[] { 4 }));
        Assert.That(e!.ParamName, Is.EqualTo("traceAxes"));
        // N1 = N2 = 3: batch_size 2 is kept (gcd 3) and does not divide 3; with x2 (N2 = 2, gcd 1) it would be reduced to 1
        e = Assert.Throws<ArgumentException>(() => FiniteWidth.MonteCarloKernel(net, Img1, 2, batchSize: 2));
        Assert.That(e!.ParamName, Is.EqualTo("batchSize"));
        Assert.Throws<ArgumentNullException>(() => FiniteWidth.MonteCarloKernel(net, (double[,,,])null!, 2));
    }

    /// <summary>Jagged rows and floats are the same inputs as the matrix: equal answers, bit for bit.</summary>
    [Test]
    public void JaggedAndFloatInputs_EqualTheMatrix()
    {
        double[,] x = { { 0.5, -1.0 }, { 0.25, 0.75 }, { -0.5, 0.125 } };
        double[][] rows = { new[] { 0.5, -1.0 }, new[] { 0.25, 0.75 }, new[] { -0.5, 0.125 } };
        float[,] xf = { { 0.5f, -1.0f }, { 0.25f, 0.75f }, { -0.5f, 0.125f } };
        var net = Stax.Serial(Stax.Dense(8), Stax.Erf(), Stax.Dense(2));
        var p = net.Init(3, 3, 2);
        var k = FiniteWidth.EmpiricalKernel(net, p, x);
        Assert.That(FiniteWidth.EmpiricalKernel(net, p, rows).Ntk!.Values, Is.EqualTo(k.Ntk!.Values));
        Assert.That(FiniteWidth.EmpiricalKernel(net, p, xf).Nngp!.Values, Is.EqualTo(k.Nngp!.Values));
        var mc = FiniteWidth.MonteCarloKernel(net, x, 2, seed: 9);
        Assert.That(FiniteWidth.MonteCarloKernel(net, rows, 2, seed: 9).Ntk!.Values, Is.EqualTo(mc.Ntk!.Values));
        Assert.That(FiniteWidth.MonteCarloKernel(net, xf, new[] { 2 }, seed: 9)[0].Ntk!.Values, Is.EqualTo(mc.Ntk.Values));
        Assert.That(net.Apply(p, rows), Is.EqualTo(net.Apply(p, x)));
        Assert.That(net.Apply(p, xf), Is.EqualTo(net.Apply(p, x)));
        var lin = FiniteWidth.Linearize(net, p);
        Assert.That(lin.Apply(p, rows), Is.EqualTo(lin.Apply(p, x)));
        Assert.That(lin.Apply(p, xf), Is.EqualTo(lin.Apply(p, x)));
        var bad = Assert.Throws<ArgumentException>(() => FiniteWidth.EmpiricalKernel(net, p, new[] { new[] { 1.0, 2.0 }, new[] { 1.0 } }));
        Assert.That(bad!.ParamName, Is.EqualTo("x1"));
    }

    /// <summary>Apply and linearize on images: Flatten → Dense is the Dense layer on the row-major flattened images
    /// (NHWC), and, being linear in θ, its own linearization.</summary>
    [Test]
    public void ApplyAndLinearize_OnImages()
    {
        var flat = Stax.Dense(3, wStd: 1.5, bStd: 0.2);
        var net = Stax.Serial(Stax.Flatten(), Stax.Dense(3, wStd: 1.5, bStd: 0.2));
        var pFlat = flat.Init(2, 3, 8);
        var p = FiniteWidth.WithValues(net.Init(5, 3, 2, 2, 2), pFlat.ToVector());
        var rows = new double[3, 8];
        for (var i = 0; i < 3; i++)
        for (var l = 0; l < 8; l++)
        {
            rows[i, l] = Img1[i, l / 4, l / 2 % 2, l % 2];
        }

        var y = net.Apply(p, Img1);
        Assert.That(y, Is.EqualTo(flat.Apply(pFlat, rows)));
        var p0 = net.Init(11, 3, 2, 2, 2);
        var lin = FiniteWidth.Linearize(net, p0).Apply(p, Img1);
        for (var i = 0; i < 3; i++)
        for (var c = 0; c < 3; c++)
        {
            Assert.That(lin[i, c], Is.EqualTo(y[i, c]).Within(1e-12 * (1 + Math.Abs(y[i, c]))));
        }

        var conv = Stax.Conv(2, new[] { 2, 2 }, padding: PaddingMode.Same);
        var pc = conv.Init(1, 3, 2, 2, 2);
        Assert.Throws<NotSupportedException>(() => conv.Apply(pc, Img1));
    }
}
