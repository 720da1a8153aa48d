using NUnit.Framework;
using static NeuralTangents.CSharp.Tests.TestUtil;

namespace NeuralTangents.CSharp.Tests;

/// <summary>Network.ToJson / FromJson: neural_tangents' names, round trips and errors.</summary>
[TestFixture]
public class JsonTests
{
    private static IEnumerable<TestCaseData> Networks()
    {
        yield return new TestCaseData(Stax.Serial(Stax.Dense(512, wStd: 1.5, bStd: 0.05), Stax.Relu(), Stax.Dense(1))).SetName("RoundTrip_Mlp");
        yield return new TestCaseData(Stax.Dense(8, 0.5, 0.0, 1, 0, DenseParameterization.Standard, 2, 3)).SetName("RoundTrip_DenseAllArguments");
        yield return new TestCaseData(
            Stax.Serial(
                Stax.FanOut(3),
                Stax.Parallel(Stax.LeakyRelu(0.1), Stax.ABRelu(-0.5, 2.0), Stax.Abs()),
                Stax.FanInConcat(0))).SetName("RoundTrip_Branches");
        yield return new TestCaseData(
            Stax.Serial(
                Stax.Erf(2.0, 0.5, 0.1), Stax.SigmoidLike(), Stax.Sin(2.0, 3.0, 0.5), Stax.Cos(), Stax.Gelu(true),
                Stax.Monomial(4), Stax.Flatten(2, 1), Stax.FanInSum(), Stax.FanInProd(), Stax.Identity(),
                Stax.Repeat(2, Stax.Relu()))).SetName("RoundTrip_EveryOtherLayer");
    }

    [TestCaseSource(nameof(Networks))]
    public void RoundTrip(Network net)
    {
        var back = Network.FromJson(net.ToJson());
        Assert.That(back, Is.EqualTo(net));
        Assert.That(back.ToFSharp(), Is.EqualTo(net.ToFSharp()));
    }

    [Test]
    public void ToJson_UsesNeuralTangentsNames()
    {
        // Written by hand from neural_tangents' nt.stax argument names and defaults.
        const string expected =
            "{\"layer\":\"serial\",\"layers\":[" +
            "{\"layer\":\"Dense\",\"out_dim\":2,\"W_std\":1.5,\"b_std\":null,\"batch_axis\":0,\"channel_axis\":-1," +
            "\"parameterization\":\"ntk\",\"s\":[1,1]}," +
            "{\"layer\":\"Relu\"}]}";
        var net = Stax.Serial(Stax.Dense(2, wStd: 1.5), Stax.Relu());
        Assert.That(net.ToJson(), Is.EqualTo(expected));
        Assert.That(net.ToString(), Is.EqualTo(expected));
    }

    [Test]
    public void ToString_PrintsLayersFromCSharpFunctions_WhichToJsonRefusesClearly()
    {
        var mish = Stax.ElementwiseNumerical("mish", x => x * DualNumber.Tanh(DualNumber.Log1p(DualNumber.Exp(x))), deg: 25);
        var net = Stax.Serial(Stax.Dense(2), mish);
        var text = net.ToString();
        Assert.That(text, Does.StartWith("{\"layer\":\"serial\",\"layers\":[{\"layer\":\"Dense\""));
        Assert.That(text, Does.Contain("{\"layer\":\"Elementwise\",\"name\":\"mish\",\"fn\":\"(user function)\""));
        Assert.That($"{net}", Is.EqualTo(text), "string interpolation");
        var e = Assert.Throws<InvalidOperationException>(() => net.ToJson());
        Assert.That(e!.Message, Does.Contain("cannot be written as JSON"));
    }

    [Test]
    public void FromJson_OmittedArgumentsTakeNeuralTangentsDefaults()
    {
        Assert.That(Network.FromJson("{\"layer\":\"Dense\",\"out_dim\":3}"), Is.EqualTo(Stax.Dense(3)));
        Assert.That(Network.FromJson("{\"layer\":\"Erf\"}"), Is.EqualTo(Stax.Erf()));
    }

    [Test]
    public void FromJson_FixtureArchitecture_EqualsStaxBuilt()
    {
        var arch = Fixture("mlp_relu_d1_ntk").GetProperty("arch").GetRawText();
        var expected = Stax.Serial(Stax.Dense(512, wStd: 1.5, bStd: 0.05), Stax.Relu(), Stax.Dense(1, wStd: 1.5, bStd: 0.05));
        Assert.That(Network.FromJson(arch), Is.EqualTo(expected));
    }

    [TestCase("{\"layer\":\"Dense\",\"out_dim\":0}", "Dense", TestName = "FromJson_InvalidArgument_ThrowsFormatException")]
    [TestCase("{\"layer\":\"Dense\",\"outdim\":4}", "outdim", TestName = "FromJson_UnknownArgument_ThrowsFormatException")]
    [TestCase("{\"layer\":\"Softplus\"}", "Softplus", TestName = "FromJson_UnknownLayer_ThrowsFormatException")]
    [TestCase("{\"layer\":", "not valid JSON", TestName = "FromJson_MalformedText_ThrowsFormatException")]
    public void FromJson_Invalid_ThrowsFormatExceptionSayingWhy(string json, string mentioned)
    {
        var e = Assert.Throws<FormatException>(() => Network.FromJson(json))!;
        Assert.That(e.Message, Does.Contain(mentioned));
        Assert.That(e.InnerException, Is.Not.Null);
    }
}
