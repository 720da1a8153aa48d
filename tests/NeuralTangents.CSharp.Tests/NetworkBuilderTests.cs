using NUnit.Framework;
using static NeuralTangents.CSharp.Tests.TestUtil;

namespace NeuralTangents.CSharp.Tests;

/// <summary>NetworkBuilder builds the same network as Stax.Serial, and is immutable.</summary>
[TestFixture]
public class NetworkBuilderTests
{
    /// <summary>Every builder method once, in a pipeline that has a finite kernel.</summary>
    private static Network WithBuilder() =>
        new NetworkBuilder()
            .Dense(16, wStd: 1.2, bStd: 0.1).Relu()
            .Dense(16).LeakyRelu(0.2)
            .Dense(16).ABRelu(-0.3, 0.8)
            .Dense(16).Abs()
            .Dense(16).Erf(0.9, 1.1, 0.1)
            .Dense(16).SigmoidLike()
            .Dense(16).Sin(1.0, 0.7, 0.2)
            .Dense(16).Cos(b: 0.5)
            .Dense(16).Gelu()
            .Dense(16).Monomial(2)
            .Dense(16, parameterization: DenseParameterization.Standard, s0: 2)
            .FanOut(2).Parallel(Stax.Serial(Stax.Relu(), Stax.Dense(16)), Stax.Identity()).FanInSum()
            .Dense(16).FanOut(2).Parallel(Stax.Dense(8), Stax.Dense(8)).FanInProd()
            .Dense(16).FanOut(2).Parallel(Stax.Dense(8), Stax.Dense(4)).FanInConcat()
            .Identity()
            .Repeat(2, Stax.Serial(Stax.Dense(16), Stax.Relu()))
            .Flatten()
            .Add(Stax.Dense(1, wStd: 1.5, bStd: 0.05))
            .Build();

    private static Network WithSerial() =>
        Stax.Serial(
            Stax.Dense(16, wStd: 1.2, bStd: 0.1), Stax.Relu(),
            Stax.Dense(16), Stax.LeakyRelu(0.2),
            Stax.Dense(16), Stax.ABRelu(-0.3, 0.8),
            Stax.Dense(16), Stax.Abs(),
            Stax.Dense(16), Stax.Erf(0.9, 1.1, 0.1),
            Stax.Dense(16), Stax.SigmoidLike(),
            Stax.Dense(16), Stax.Sin(1.0, 0.7, 0.2),
            Stax.Dense(16), Stax.Cos(b: 0.5),
            Stax.Dense(16), Stax.Gelu(),
            Stax.Dense(16), Stax.Monomial(2),
            Stax.Dense(16, parameterization: DenseParameterization.Standard, s0: 2),
            Stax.FanOut(2), Stax.Parallel(Stax.Serial(Stax.Relu(), Stax.Dense(16)), Stax.Identity()), Stax.FanInSum(),
            Stax.Dense(16), Stax.FanOut(2), Stax.Parallel(Stax.Dense(8), Stax.Dense(8)), Stax.FanInProd(),
            Stax.Dense(16), Stax.FanOut(2), Stax.Parallel(Stax.Dense(8), Stax.Dense(4)), Stax.FanInConcat(),
            Stax.Identity(),
            Stax.Repeat(2, Stax.Serial(Stax.Dense(16), Stax.Relu())),
            Stax.Flatten(),
            Stax.Dense(1, wStd: 1.5, bStd: 0.05));

    [Test]
    public void Build_EqualsSerialOfTheSameLayers()
    {
        Assert.That(WithBuilder(), Is.EqualTo(WithSerial()));
        Assert.That(WithBuilder().ToFSharp(), Is.EqualTo(WithSerial().ToFSharp()));
    }

    [Test]
    public void Build_AndSerial_GiveIdenticalKernels()
    {
        var x1 = RandomMatrix(1, 4, 3);
        var x2 = RandomMatrix(2, 3, 3);
        var a = WithBuilder().Kernel(x1, x2);
        var b = WithSerial().Kernel(x1, x2);
        // Equal layer values run through the same deterministic code: the numbers are identical, not just close.
        Assert.That(a.Nngp, Is.EqualTo(b.Nngp));
        Assert.That(a.Ntk, Is.EqualTo(b.Ntk));
        Assert.That(a.Cov1, Is.EqualTo(b.Cov1));
        Assert.That(a.Cov2, Is.EqualTo(b.Cov2));
        Assert.That(a.Nngp.Cast<double>().All(double.IsFinite), Is.True);
        Assert.That(a.Nngp.Cast<double>().Any(v => v != 0.0), Is.True, "a kernel of zeros would make the comparison vacuous");
    }

    /// <summary>The pooling methods: builder = Stax.Serial, and the images' kernel through GlobalAvgPool is the mean
    /// over all pairs of positions of the full-layout covariance (a closed form computed here: the input kernel is
    /// x·x'ᵀ/C, so GlobalAvgPool of it is (mean_p x_p)·(mean_q x'_q)/C).</summary>
    [Test]
    public void Pooling_BuilderEqualsSerial_AndGlobalAvgPoolOfImagesIsTheMeanOverPairs()
    {
        var built = new NetworkBuilder()
            .Dense(8).Relu()
            .AvgPool(new[] { 2, 2 }, padding: PaddingMode.Same)
            .SumPool(new[] { 2, 1 }, strides: new[] { 1, 1 }, padding: PaddingMode.Circular)
            .GlobalSumPool()
            .Build();
        var serial = Stax.Serial(
            Stax.Dense(8), Stax.Relu(),
            Stax.AvgPool(new[] { 2, 2 }, padding: PaddingMode.Same),
            Stax.SumPool(new[] { 2, 1 }, padding: PaddingMode.Circular),
            Stax.GlobalSumPool());
        Assert.That(built, Is.EqualTo(serial));

        var x = new double[2, 3, 2, 2];
        var rng = new Random(5);
        for (var i = 0; i < 2; i++)
            for (var h = 0; h < 3; h++)
                for (var w = 0; w < 2; w++)
                    for (var c = 0; c < 2; c++)
                        x[i, h, w, c] = rng.NextDouble() - 0.5;
        var k = new NetworkBuilder().GlobalAvgPool().Build().Kernel(x);
        var mean = new double[2, 2];
        for (var i = 0; i < 2; i++)
            for (var h = 0; h < 3; h++)
                for (var w = 0; w < 2; w++)
                    for (var c = 0; c < 2; c++)
                        mean[i, c] += x[i, h, w, c] / 6.0;
        for (var i = 0; i < 2; i++)
        {
            for (var j = 0; j < 2; j++)
            {
                var expected = (mean[i, 0] * mean[j, 0] + mean[i, 1] * mean[j, 1]) / 2.0;
                Assert.That(k.Nngp[i, j], Is.EqualTo(expected).Within(1e-15));
            }
        }

        Assert.That(serial.Kernel(x).Nngp, Is.EqualTo(built.Kernel(x).Nngp));
    }

    [Test]
    public void Builder_IsImmutable()
    {
        var start = new NetworkBuilder().Dense(4);
        var withRelu = start.Relu();
        var withErf = start.Erf();
        Assert.That(start.Count, Is.EqualTo(1));
        Assert.That(withRelu.Count, Is.EqualTo(2));
        Assert.That(start.Build(), Is.EqualTo(Stax.Serial(Stax.Dense(4))));
        Assert.That(withRelu.Build(), Is.EqualTo(Stax.Serial(Stax.Dense(4), Stax.Relu())));
        Assert.That(withErf.Build(), Is.EqualTo(Stax.Serial(Stax.Dense(4), Stax.Erf())));
    }

    [Test]
    public void EmptyBuilder_IsTheIdentity_InputKernel()
    {
        // neural_tangents' input kernel: nngp = x1·x2ᵀ / C, NTK = 0 (no parameters).
        var x1 = RandomMatrix(3, 3, 4);
        var x2 = RandomMatrix(4, 2, 4);
        var k = new NetworkBuilder().Build().Kernel(x1, x2);
        var expected = new double[3, 2];
        for (var i = 0; i < 3; i++)
        {
            for (var j = 0; j < 2; j++)
            {
                for (var c = 0; c < 4; c++)
                {
                    expected[i, j] += x1[i, c] * x2[j, c] / 4.0;
                }
            }
        }

        // Sums of 4 products: round-off ~1e-16 relative; 1e-14 leaves margin.
        AssertClose("nngp", 1e-14, expected, k.Nngp);
        Assert.That(k.Ntk!.Cast<double>().All(v => v == 0.0), Is.True);
    }
}
