using NUnit.Framework;

namespace NeuralTangents.CSharp.Tests;

/// <summary>FiniteWidth: empirical and Monte Carlo kernels, linearize and taylor_expand from C#.</summary>
[TestFixture]
public class FiniteWidthTests
{
    private static readonly double[,] X1 = { { 1.0, -0.5 }, { 0.25, 2.0 }, { -1.5, 0.75 } };
    private static readonly double[,] X2 = { { 0.5, 0.5 }, { -1.0, 0.25 } };

    private sealed class Recorder : IProgress<int>
    {
        public List<int> Seen { get; } = new();

        public void Report(int value) => Seen.Add(value);
    }

    [Test]
    public void EmpiricalKernel_OfOneDenseLayer_IsTheClosedForm()
    {
        // Dense(3, W_std = 2, b_std = 0.5), ntk parameterization: f_c = 2/√2 · x·W[:, c] + 0.5·b_c, so
        // ∂f_c/∂W[l, c'] = δ_cc'·2/√2·x_l and ∂f_c/∂b_c' = δ_cc'·0.5: Θ[i, j, c, c'] = δ_cc'·(4/2·x_i·x_j + 0.25),
        // whatever the parameters; the default trace averages the diagonal over c.
        var net = Stax.Dense(3, wStd: 2.0, bStd: 0.5);
        var p = net.Init(3, 3, 2);
        var k = FiniteWidth.EmpiricalKernel(net, p, X1, X2);
        Assert.That(k.Ntk!.Shape, Is.EqualTo(new[] { 3, 2 }));
        var ntk = k.Ntk.ToMatrix();
        var f1 = net.Apply(p, X1);
        var f2 = net.Apply(p, X2);
        var nngp = k.Nngp!.ToMatrix();
        for (var i = 0; i < 3; i++)
        for (var j = 0; j < 2; j++)
        {
            var dot = X1[i, 0] * X2[j, 0] + X1[i, 1] * X2[j, 1];
            Assert.That(ntk[i, j], Is.EqualTo(2.0 * dot + 0.25).Within(1e-12).Percent);
            var ff = (f1[i, 0] * f2[j, 0] + f1[i, 1] * f2[j, 1] + f1[i, 2] * f2[j, 2]) / 3.0;
            Assert.That(nngp[i, j], Is.EqualTo(ff).Within(1e-12).Percent);
        }

        var full = FiniteWidth.EmpiricalKernel(net, p, X1, X2, KernelOutputs.Ntk, traceAxes: Array.Empty<int>());
        Assert.That(full.Nngp, Is.Null);
        Assert.That(full.Ntk!.Shape, Is.EqualTo(new[] { 3, 2, 3, 3 }));
        Assert.That(full.Ntk.Values[(((1 * 2) + 1) * 3 + 2) * 3 + 2], Is.EqualTo(ntk[1, 1]).Within(1e-12).Percent);
        Assert.That(full.Ntk.Values[(((1 * 2) + 1) * 3 + 2) * 3 + 0], Is.EqualTo(0.0));
        Assert.Throws<InvalidOperationException>(() => full.Ntk.ToMatrix());
    }

    [Test]
    public void EmpiricalKernel_RejectsBadAxes()
    {
        var net = Stax.Dense(3);
        var p = net.Init(1, 3, 2);
        var e = Assert.Throws<ArgumentException>(() => FiniteWidth.EmpiricalKernel(net, p, X1, traceAxes: new[] { 5 }));
        Assert.That(e!.ParamName, Is.EqualTo("traceAxes"));
        Assert.Throws<ArgumentNullException>(() => FiniteWidth.EmpiricalKernel(net, null!, X1));
    }

    [Test]
    public void MonteCarloKernel_ListOfCounts_EqualsSeparateRuns_AndReportsProgress()
    {
        var net = Stax.Serial(Stax.Dense(16, wStd: 1.4, bStd: 0.3), Stax.Relu(), Stax.Dense(2));
        var progress = new Recorder();
        // One estimate per distinct count, in increasing order, as neural_tangents yields them.
        var many = FiniteWidth.MonteCarloKernel(net, X1, new[] { 3, 1, 3 }, seed: 5, progress: progress);
        Assert.That(many.Count, Is.EqualTo(2));
        Assert.That(progress.Seen[^1], Is.EqualTo(3));
        Assert.That(progress.Seen, Is.Ordered);
        var three = FiniteWidth.MonteCarloKernel(net, X1, 3, seed: 5);
        var one = FiniteWidth.MonteCarloKernel(net, X1, 1, seed: 5);
        Assert.That(many[1].Ntk!.Values, Is.EqualTo(three.Ntk!.Values));
        Assert.That(many[0].Nngp!.Values, Is.EqualTo(one.Nngp!.Values));
        Assert.That(three.Ntk.Values, Is.Not.EqualTo(one.Ntk!.Values));
    }

    [Test]
    public void MonteCarloKernel_CancelledAndBadCounts()
    {
        var net = Stax.Serial(Stax.Dense(8), Stax.Relu(), Stax.Dense(1));
        using var cts = new CancellationTokenSource();
        cts.Cancel();
        Assert.Throws<OperationCanceledException>(() => FiniteWidth.MonteCarloKernel(net, X1, 4, cancellationToken: cts.Token));
        var e = Assert.Throws<ArgumentException>(() => FiniteWidth.MonteCarloKernel(net, X1, 0));
        Assert.That(e!.ParamName, Is.EqualTo("nSamples"));
    }

    [Test]
    public void Linearize_OfOneDenseLayer_IsTheLayer_AndTaylorDegreeThreeIsRefused()
    {
        // One Dense layer is linear in its parameters, so its linearization about any θ₀ is the layer itself.
        var net = Stax.Dense(2, wStd: 1.5, bStd: 0.2);
        var p0 = net.Init(1, 3, 2);
        var p = FiniteWidth.WithValues(p0, net.Init(2, 3, 2).ToVector());
        var lin = FiniteWidth.Linearize(net, p0);
        var expected = net.Apply(p, X1);
        var actual = lin.Apply(p, X1);
        for (var i = 0; i < 3; i++)
        for (var j = 0; j < 2; j++)
        {
            Assert.That(actual[i, j], Is.EqualTo(expected[i, j]).Within(1e-12).Percent);
        }

        Assert.That(FiniteWidth.TaylorExpand(net, p0, 0).Apply(p, X1), Is.EqualTo(net.Apply(p0, X1)));
        Assert.That(lin.Degree, Is.EqualTo(1));
        var e = Assert.Throws<ArgumentException>(() => FiniteWidth.TaylorExpand(net, p0, 3));
        Assert.That(e!.ParamName, Is.EqualTo("degree"));
        Assert.Throws<ArgumentException>(() => FiniteWidth.WithValues(p0, new double[1]));
    }
}
