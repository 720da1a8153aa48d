using NUnit.Framework;

namespace NeuralTangents.CSharp.Tests;

/// <summary>DualNumber, the C# type for writing an activation once with its exact derivative: derivatives against
/// closed forms, and activations written over it against the registry's (written over the F# core's dual numbers).</summary>
[TestFixture]
public class DualNumberTests
{
    private static readonly double[] Points = { -2.5, -0.7, -1e-3, 0.0, 0.4, 1.3, 3.0 };

    /// <summary>Each function's value and derivative at x against the calculus-book derivative, to 1e-14 relative (a few roundings on either side).</summary>
    [Test]
    public void Derivatives_AreTheClosedForms()
    {
        foreach (var x in Points)
        {
            var v = DualNumber.Variable(x);
            void Check(DualNumber got, double f, double df, string what)
            {
                Assert.That(got.Value, Is.EqualTo(f).Within(1e-14 * Math.Max(1.0, Math.Abs(f))), $"{what} at {x}");
                Assert.That(got.Derivative, Is.EqualTo(df).Within(1e-14 * Math.Max(1.0, Math.Abs(df))), $"{what}′ at {x}");
            }

            var t = Math.Tanh(x);
            Check(v * DualNumber.Tanh(v), x * t, t + x * (1 - t * t), "x·tanh x");
            Check(DualNumber.Exp(2.0 * v) / (1.0 + v * v), Math.Exp(2 * x) / (1 + x * x),
                Math.Exp(2 * x) * (2 * (1 + x * x) - 2 * x) / ((1 + x * x) * (1 + x * x)), "e^(2x)/(1 + x²)");
            Check(DualNumber.Sin(v) - DualNumber.Cos(3.0 * v), Math.Sin(x) - Math.Cos(3 * x), Math.Cos(x) + 3 * Math.Sin(3 * x), "sin x − cos 3x");
            Check(DualNumber.Log1p(DualNumber.Exp(v)), Math.Log(1 + Math.Exp(x)), 1 / (1 + Math.Exp(-x)), "softplus");
            Check(DualNumber.Pow(v * v + 1, 1.5), Math.Pow(x * x + 1, 1.5), 3 * x * Math.Sqrt(x * x + 1), "(x² + 1)^1.5");
            Check(DualNumber.Atan(v) + DualNumber.Sqrt(v * v + 4), Math.Atan(x) + Math.Sqrt(x * x + 4),
                1 / (1 + x * x) + x / Math.Sqrt(x * x + 4), "atan x + √(x² + 4)");
            Check(-DualNumber.Erf(v / 2), -SpecialErf(x / 2), -Math.Exp(-x * x / 4) / Math.Sqrt(Math.PI), "−erf(x/2)");
        }
    }

    [Test]
    public void Kinks_TakeTheAverageOfTheOneSidedDerivatives_AndConstantsConvert()
    {
        Assert.That(DualNumber.Max(DualNumber.Variable(0.0), 0.0), Is.EqualTo(new DualNumber(0.0, 0.5)));
        Assert.That(DualNumber.Max(DualNumber.Variable(-1.0), 0.0), Is.EqualTo(new DualNumber(0.0, 0.0)));
        Assert.That(DualNumber.Min(DualNumber.Variable(2.0), 1.0), Is.EqualTo(DualNumber.Constant(1.0)));
        Assert.That(DualNumber.Abs(DualNumber.Variable(0.0)).Derivative, Is.EqualTo(0.0));
        Assert.That(DualNumber.Abs(DualNumber.Variable(-3.0)), Is.EqualTo(new DualNumber(3.0, -1.0)));
        DualNumber c = 2.5;
        Assert.That(c, Is.EqualTo(new DualNumber(2.5, 0.0)));
        Assert.That(c != DualNumber.Variable(2.5), Is.True);
        Assert.That(new DualNumber(1.5, -2.0).ToString(), Is.EqualTo("1.5 + -2ε"));
    }

    /// <summary>φ written over DualNumber gives the same layer arithmetic as the registry's φ written over the F#
    /// core's dual numbers: the kernels of tanh and swish MLPs are equal bit for bit.</summary>
    [Test]
    public void ActivationOverDualNumbers_EqualsTheRegistrysBitForBit()
    {
        var x = new double[,] { { 1.0, -0.5, 0.3 }, { 0.2, 0.8, -1.1 } };
        Network Mlp(Network act) => Stax.Serial(Stax.Dense(64, 1.3, 0.2), act, Stax.Dense(1, 0.9, 0.1));
        var cases = new (string Name, Func<DualNumber, DualNumber> Fn)[]
        {
            ("tanh", DualNumber.Tanh),
            ("sin", DualNumber.Sin),
        };
        foreach (var (name, fn) in cases)
        {
            var registry = Mlp(Stax.ElementwiseNumerical(name, 30)).Kernel(x);
            var user = Mlp(Stax.ElementwiseNumerical("my_" + name, fn, 30)).Kernel(x);
            Assert.That(user.Nngp, Is.EqualTo(registry.Nngp), name);
            Assert.That(user.Ntk, Is.EqualTo(registry.Ntk), name);
        }

        // the builder appends the same layer
        var built = new NetworkBuilder().Dense(64, 1.3, 0.2).ElementwiseNumerical("my_tanh", DualNumber.Tanh, 30).Dense(1, 0.9, 0.1).Build();
        Assert.That(built.Kernel(x).Ntk, Is.EqualTo(Mlp(Stax.ElementwiseNumerical("tanh", 30)).Kernel(x).Ntk));

        // the finite network's backward pass uses the dual derivative: the empirical NTK of one tanh layer is
        // Σ_c (∂f_c)² with ∂f_c/∂W = φ′·x/√d, so equal layers give equal kernels
        var net1 = Stax.Serial(Stax.Dense(5), Stax.ElementwiseNumerical("tanh", 30), Stax.Dense(2));
        var net2 = Stax.Serial(Stax.Dense(5), Stax.ElementwiseNumerical("t", DualNumber.Tanh, 30), Stax.Dense(2));
        var p = net1.Init(3, 2, 3);
        Assert.That(
            FiniteWidth.EmpiricalKernel(net2, p, x).Ntk!.Values,
            Is.EqualTo(FiniteWidth.EmpiricalKernel(net1, p, x).Ntk!.Values));
    }

    // erf by its Maclaurin series (converges fast for |z| ≤ 1.5, enough for the test points / 2).
    private static double SpecialErf(double z)
    {
        double sum = 0, term = z;
        for (var n = 0; n < 60; n++)
        {
            sum += term / (2 * n + 1);
            term *= -z * z / (n + 1);
        }

        return 2 / Math.Sqrt(Math.PI) * sum;
    }
}
