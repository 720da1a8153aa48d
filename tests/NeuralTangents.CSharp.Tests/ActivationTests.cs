using Microsoft.FSharp.Collections;
using Microsoft.FSharp.Core;
using NUnit.Framework;

namespace NeuralTangents.CSharp.Tests;

/// <summary>The activations of issue #10 from C#: façade values equal the F# union values written by hand, the
/// null checks of the boundary, and custom activations (Func and DualNumber) giving the closed-form kernels.</summary>
[TestFixture]
public class ActivationTests
{
    private static Layer Act(Activation a) => Layer.NewActivation(a);

    private static IEnumerable<TestCaseData> FacadeAndFSharp()
    {
        TestCaseData Case(string name, Func<Network> facade, Layer fsharp) => new TestCaseData(facade, fsharp).SetName("ActivationFacade_" + name);

        yield return Case("ExpDefaults", () => Stax.Exp(), Act(Activation.NewExp(new ExpSpec(1.0, 1.0))));
        yield return Case("Exp", () => Stax.Exp(0.5, -2.0), Act(Activation.NewExp(new ExpSpec(0.5, -2.0))));
        yield return Case("GaussianDefaults", () => Stax.Gaussian(), Act(Activation.NewGaussian(new GaussianSpec(1.0, -1.0))));
        yield return Case("ExpNormalizedDefaults", () => Stax.ExpNormalized(), Act(Activation.NewExpNormalized(new ExpNormalizedSpec(1.0, -1.0, false))));
        yield return Case("ExpNormalized", () => Stax.ExpNormalized(2.0, 0.5, true), Act(Activation.NewExpNormalized(new ExpNormalizedSpec(2.0, 0.5, true))));
        yield return Case("RbfDefault", () => Stax.Rbf(), Act(Activation.NewRbf(1.0)));
        yield return Case("Sign", Stax.Sign, Act(Activation.Sign));
        yield return Case("Gabor", Stax.Gabor, Act(Activation.Gabor));
        yield return Case("Hermite", () => Stax.Hermite(4), Act(Activation.NewHermite(4)));
        yield return Case("RectifiedMonomial", () => Stax.RectifiedMonomial(3), Act(Activation.NewRectifiedMonomial(3)));
        yield return Case("Polynomial", () => Stax.Polynomial(0.5, -1.0, 2.0), Act(Activation.NewPolynomial(ListModule.OfArray(new[] { 0.5, -1.0, 2.0 }))));
        yield return Case(
            "ElementwiseNumerical",
            () => Stax.ElementwiseNumerical("tanh", 25),
            Act(Activation.NewElementwiseNumerical(new NumericalSpec("tanh", 25, FSharpOption<string>.None))));
        yield return Case(
            "ElementwiseNumericalDf",
            () => Stax.ElementwiseNumerical("tanh", 10, "sech2"),
            Act(Activation.NewElementwiseNumerical(new NumericalSpec("tanh", 10, FSharpOption<string>.Some("sech2")))));
        yield return Case("Named", () => Stax.Named("mish"), Act(Activation.NewElementwiseNumerical(new NumericalSpec("mish", 25, FSharpOption<string>.None))));
        yield return Case("BuilderSign", () => new NetworkBuilder().Sign().Build(), Layer.NewSerial(ListModule.OfArray(new[] { Act(Activation.Sign) })));
    }

    [TestCaseSource(nameof(FacadeAndFSharp))]
    public void FacadeEqualsFSharp(Func<Network> facade, Layer fsharp) => Assert.That(facade().ToFSharp(), Is.EqualTo(fsharp));

    [Test]
    public void NullArgumentsAreRejectedByName()
    {
        Assert.That(Assert.Throws<ArgumentNullException>(() => Stax.Polynomial(null!))!.ParamName, Is.EqualTo("coef"));
        Assert.That(Assert.Throws<ArgumentNullException>(() => Stax.ElementwiseNumerical(null!, 5))!.ParamName, Is.EqualTo("fn"));
        Assert.That(Assert.Throws<ArgumentNullException>(() => Stax.Named(null!))!.ParamName, Is.EqualTo("fn"));
        Assert.That(Assert.Throws<ArgumentNullException>(() => Stax.ElementwiseNumerical("f", (Func<double, double>)null!, x => 1.0, 5))!.ParamName, Is.EqualTo("fn"));
        Assert.That(Assert.Throws<ArgumentNullException>(() => Stax.ElementwiseNumerical("f", x => x, null!, 5))!.ParamName, Is.EqualTo("df"));
        Assert.That(Assert.Throws<ArgumentNullException>(() => Stax.ElementwiseNumerical(null!, (Func<DualNumber, DualNumber>)(x => x), 5))!.ParamName, Is.EqualTo("name"));
        Assert.That(Assert.Throws<ArgumentNullException>(() => Stax.ElementwiseNumerical("f", (Func<DualNumber, DualNumber>)null!, 5))!.ParamName, Is.EqualTo("fn"));
        Assert.That(Assert.Throws<ArgumentNullException>(() => Stax.Elementwise("e", null!, (c, a, b) => 0.0))!.ParamName, Is.EqualTo("nngpFn"));
        Assert.That(Assert.Throws<ArgumentNullException>(() => Stax.Elementwise("e", (Func<double, double, double, double>)((c, a, b) => 0.0), null!))!.ParamName, Is.EqualTo("dNngpFn"));
        Assert.That(Assert.Throws<ArgumentNullException>(() => Stax.Elementwise(null!, (Func<DualNumber, double, double, DualNumber>)((c, a, b) => c)))!.ParamName, Is.EqualTo("name"));
        Assert.That(Assert.Throws<ArgumentNullException>(() => Stax.Elementwise("e", (Func<DualNumber, double, double, DualNumber>)null!))!.ParamName, Is.EqualTo("nngpFn"));
    }

    [Test]
    public void BadArgumentsNameTheCSharpParameter()
    {
        Assert.That(Assert.Throws<ArgumentException>(() => Stax.Rbf(-1.0))!.ParamName, Is.EqualTo("gamma"));
        Assert.That(Assert.Throws<ArgumentException>(() => Stax.Hermite(-1))!.ParamName, Is.EqualTo("degree"));
        Assert.That(Assert.Throws<ArgumentException>(() => Stax.ElementwiseNumerical("tanh", 0))!.ParamName, Is.EqualTo("deg"));
        Assert.That(Assert.Throws<ArgumentException>(() => Stax.Named("tanhh"))!.Message, Does.Contain("tanhh"));
    }

    /// <summary>Elementwise with the erf NNGP map written over DualNumbers (σ̇ as its ε part) and with an explicit
    /// derivative both give Erf's closed-form kernel (Williams 1997) to round-off.</summary>
    [Test]
    public void CustomElementwiseMatchesErf()
    {
        var x = new double[,] { { 1.0, -0.5, 0.3 }, { 0.2, 0.8, -1.1 }, { -0.7, 0.1, 0.4 } };
        Network Mlp(Network act) => Stax.Serial(Stax.Dense(64, 1.3, 0.2), act, Stax.Dense(1, 0.9, 0.1));
        var exact = Mlp(Stax.Erf()).Kernel(x);
        var dual = Mlp(Stax.Elementwise(
            "erf", (DualNumber c, double q1, double q2) => 2.0 / Math.PI * DualNumber.Asin(2.0 * c / Math.Sqrt((1 + 2 * q1) * (1 + 2 * q2))))).Kernel(x);
        var explicitD = Mlp(Stax.Elementwise(
            "erf",
            (c, q1, q2) => 2.0 / Math.PI * Math.Asin(2.0 * c / Math.Sqrt((1 + 2 * q1) * (1 + 2 * q2))),
            (c, q1, q2) => 4.0 / Math.PI / Math.Sqrt((1 + 2 * q1) * (1 + 2 * q2) - 4 * c * c))).Kernel(x);
        foreach (var k in new[] { dual, explicitD })
        {
            for (var i = 0; i < 3; i++)
            {
                for (var j = 0; j < 3; j++)
                {
                    Assert.That(k.Nngp[i, j], Is.EqualTo(exact.Nngp[i, j]).Within(1e-14 * Math.Abs(exact.Nngp[i, j])));
                    Assert.That(k.Ntk![i, j], Is.EqualTo(exact.Ntk![i, j]).Within(1e-14 * Math.Abs(exact.Ntk[i, j])));
                }
            }
        }
    }

    [Test]
    public void RegistryNamesAreListed() =>
        Assert.That(Stax.ActivationNames, Is.SupersetOf(new[] { "tanh", "sigmoid", "softplus", "swish", "silu", "elu", "selu", "mish", "relu6", "hard_tanh", "sin", "cos", "exp" }));
}
