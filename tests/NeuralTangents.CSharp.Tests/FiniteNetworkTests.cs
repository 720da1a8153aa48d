using NUnit.Framework;

namespace NeuralTangents.CSharp.Tests;

/// <summary>Network.Init and Network.Apply: the finite network of an architecture from C#.</summary>
[TestFixture]
public class FiniteNetworkTests
{
    [Test]
    public void Apply_OfOneDenseLayer_IsXTimesWOverRootFanIn()
    {
        // Dense(3, W_std = 2, no bias), ntk parameterization: f(x) = W_std/√C · x·W with W (C, 3) of N(0, 1).
        var net = Stax.Dense(3, wStd: 2.0);
        double[,] x = { { 1.0, -0.5 }, { 0.25, 2.0 } };
        var p = net.Init(7, 2, 2);
        Assert.That(p.OutputShape, Is.EqualTo(new[] { 2, 3 }));
        Assert.That(p.Count, Is.EqualTo(6));
        var w = p.ToVector(); // W row-major (in, out)
        var y = net.Apply(p, x);
        for (var i = 0; i < 2; i++)
        for (var j = 0; j < 3; j++)
        {
            var expected = 2.0 / Math.Sqrt(2.0) * (x[i, 0] * w[0 * 3 + j] + x[i, 1] * w[1 * 3 + j]);
            // The core scales x before the product; a few ulp of rounding order (1e-14 relative = 1e-12 %).
            Assert.That(y[i, j], Is.EqualTo(expected).Within(1e-12).Percent);
        }
    }

    [Test]
    public void Init_SameSeedSameParameters_OtherSeedOthers()
    {
        var net = Stax.Serial(Stax.Dense(4, bStd: 0.1), Stax.Relu(), Stax.Dense(1));
        Assert.That(net.Init(3, 5, 2).ToVector(), Is.EqualTo(net.Init(3, 5, 2).ToVector()));
        Assert.That(net.Init(4, 5, 2).ToVector(), Is.Not.EqualTo(net.Init(3, 5, 2).ToVector()));
    }

    [Test]
    public void InitAndApply_RejectNullsAndMismatches()
    {
        var net = Stax.Serial(Stax.Dense(4), Stax.Relu(), Stax.Dense(1));
        Assert.Throws<ArgumentNullException>(() => net.Init(0, null!));
        var noAxes = Assert.Throws<ArgumentException>(() => net.Init(0))!;
        Assert.That(noAxes.ParamName, Is.EqualTo("inputShape"));
        Assert.That(noAxes.Message, Does.Contain("has no axes").And.Contain("[-1, 3]"));
        var p = net.Init(0, 2, 3);
        Assert.Throws<ArgumentNullException>(() => net.Apply(null!, new double[2, 3]));
        Assert.Throws<ArgumentNullException>(() => net.Apply(p, (double[,])null!));
        var e = Assert.Throws<InvalidOperationException>(() => net.Apply(p, new double[2, 5]));
        Assert.That(e!.Message, Does.Contain("channels"));
    }
}
