using Microsoft.FSharp.Collections;
using Microsoft.FSharp.Core;
using NUnit.Framework;

namespace NeuralTangents.CSharp.Tests;

/// <summary>The façade's convolutions build exactly the F# layer values, reject bad arguments by their C# names,
/// and compute kernels on images.</summary>
[TestFixture]
public class ConvTests
{
    private static Layer FConv(ConvKind kind, int outChan, int[] filter, int[] strides, Padding padding, double wStd, double? bStd, Tuple<string, string, string> dims, Parameterization p, int s0, int s1) =>
        Layer.NewConv(new ConvSpec(
            kind,
            outChan,
            ListModule.OfArray(filter),
            ListModule.OfArray(strides),
            padding,
            wStd,
            bStd is { } b ? FSharpOption<double>.Some(b) : FSharpOption<double>.None,
            dims,
            p,
            Tuple.Create(s0, s1)));

    private static readonly Tuple<string, string, string> Nhwc2 = Tuple.Create("NABC", "ABIO", "NABC");

    [Test]
    public void Conv_DefaultsEqualFSharpValueWrittenOut() =>
        Assert.That(
            Stax.Conv(64, [3, 3]).ToFSharp(),
            Is.EqualTo(FConv(ConvKind.Conv, 64, [3, 3], [1, 1], Padding.Valid, 1.0, null, Nhwc2, Parameterization.Ntk, 1, 1)));

    [Test]
    public void Conv_AllArgumentsEqualFSharpValueWrittenOut() =>
        Assert.That(
            Stax.Conv(8, [3, 2], strides: [2, 1], padding: PaddingMode.Circular, wStd: 1.5, bStd: 0.1,
                parameterization: DenseParameterization.Standard, s0: 2, s1: 3, dimensionNumbers: ["NCHW", "HWIO", "NHWC"]).ToFSharp(),
            Is.EqualTo(FConv(ConvKind.Conv, 8, [3, 2], [2, 1], Padding.Circular, 1.5, 0.1, Tuple.Create("NCHW", "HWIO", "NHWC"), Parameterization.Standard, 2, 3)));

    /// <summary>Positional arguments in neural_tangents' order: Conv(out_chan, filter_shape, strides, padding, W_std,
    /// b_std, dimension_numbers, parameterization, s).</summary>
    [Test]
    public void Conv_PositionalAsInPython() =>
        Assert.That(
            Stax.Conv(8, [3, 2], [2, 1], PaddingMode.Circular, 1.5, 0.1, ["NCHW", "HWIO", "NHWC"], DenseParameterization.Standard, 2, 3).ToFSharp(),
            Is.EqualTo(FConv(ConvKind.Conv, 8, [3, 2], [2, 1], Padding.Circular, 1.5, 0.1, Tuple.Create("NCHW", "HWIO", "NHWC"), Parameterization.Standard, 2, 3)));

    [Test]
    public void ConvTransposeAndConvLocal_EqualFSharpValues()
    {
        Assert.That(
            Stax.ConvTranspose(4, [3], strides: [2], padding: PaddingMode.Same).ToFSharp(),
            Is.EqualTo(FConv(ConvKind.Transpose, 4, [3], [2], Padding.Same, 1.0, null, Tuple.Create("NAC", "AIO", "NAC"), Parameterization.Ntk, 1, 1)));
        Assert.That(
            Stax.ConvLocal(4, [3], bStd: 0.0).ToFSharp(),
            Is.EqualTo(FConv(ConvKind.Local, 4, [3], [1], Padding.Valid, 1.0, 0.0, Tuple.Create("NAC", "AIO", "NAC"), Parameterization.Ntk, 1, 1)));
    }

    [Test]
    public void Builder_EqualsStax()
    {
        var built = new NetworkBuilder().Conv(8, [3, 3], padding: PaddingMode.Same).Relu().ConvLocal(4, [2, 2]).ConvTranspose(2, [2, 2], strides: [2, 2]).Flatten().Build();
        var serial = Stax.Serial(
            Stax.Conv(8, [3, 3], padding: PaddingMode.Same), Stax.Relu(), Stax.ConvLocal(4, [2, 2]),
            Stax.ConvTranspose(2, [2, 2], strides: [2, 2]), Stax.Flatten());
        Assert.That(built.ToFSharp(), Is.EqualTo(serial.ToFSharp()));
    }

    [Test]
    public void NullFilterShape_ThrowsArgumentNullException()
    {
        var e = Assert.Throws<ArgumentNullException>(() => Stax.Conv(8, null!))!;
        Assert.That(e.ParamName, Is.EqualTo("filterShape"));
        Assert.Throws<ArgumentNullException>(() => new NetworkBuilder().ConvLocal(8, null!));
    }

    [TestCase("outChan")]
    [TestCase("strides")]
    [TestCase("padding")]
    [TestCase("wStd")]
    [TestCase("dimensionNumbers")]
    public void BadArgument_ThrowsArgumentExceptionNamingIt(string param)
    {
        TestDelegate f = param switch
        {
            "outChan" => () => Stax.Conv(0, [3]),
            "strides" => () => Stax.Conv(2, [3], strides: [1, 1]),
            "padding" => () => Stax.ConvTranspose(2, [3], padding: (PaddingMode)99),
            "wStd" => () => Stax.Conv(2, [3], wStd: -1.0),
            _ => () => Stax.Conv(2, [3], dimensionNumbers: ["NHC", "HIO", "NXC"]),
        };
        var e = Assert.Throws<ArgumentException>(f)!;
        Assert.That(e.ParamName, Is.EqualTo(param));
    }

    private static double[,,,] Images(int n, int a, int b, int c, int seed)
    {
        var r = new Random(seed);
        var x = new double[n, a, b, c];
        for (var i = 0; i < n; i++)
            for (var j = 0; j < a; j++)
                for (var k = 0; k < b; k++)
                    for (var l = 0; l < c; l++)
                        x[i, j, k, l] = r.NextDouble() * 2.0 - 1.0;
        return x;
    }

    private static Network PooledConv(string[]? dimensionNumbers, int channelAxis) =>
        Stax.Serial(
            Stax.Conv(8, [3, 3], padding: PaddingMode.Same, dimensionNumbers: dimensionNumbers), Stax.Relu(),
            Stax.GlobalAvgPool(channelAxis: channelAxis), Stax.Dense(1));

    [Test]
    public void ChannelAxisCountedFromTheStart_GivesTheKernelOfTheSpellingFromTheEnd()
    {
        // The audit's repro: on rank-4 images channelAxis 3 is axis -1 (NHWC) and 1 is -3 (NCHW). The layers
        // normalise their axes by the rank, so the kernels are equal bit for bit.
        var nhwc = Images(4, 5, 5, 2, 1);
        var nchw = Images(4, 2, 5, 5, 2);
        string[] nchwDims = ["NCHW", "OIHW", "NCHW"];
        foreach (var (x, dims, canonical, other) in new[] { (nhwc, (string[]?)null, -1, 3), (nchw, nchwDims, -3, 1) })
        {
            var expected = PooledConv(dims, canonical).Kernel(x);
            var actual = PooledConv(dims, other).Kernel(x);
            Assert.That(actual.Nngp, Is.EqualTo(expected.Nngp), $"nngp, channelAxis {other}");
            Assert.That(actual.Ntk, Is.EqualTo(expected.Ntk), $"ntk, channelAxis {other}");
        }
    }

    [Test]
    public void ChannelAxisNamingAnotherAxis_IsRefusedWithBothSpellingsAndTheRank()
    {
        // After an NHWC Conv (channel axis -1, i.e. 3), channelAxis 1 names a spatial axis.
        var e = Assert.Throws<InvalidOperationException>(() => PooledConv(null, 1).Kernel(Images(2, 4, 4, 2, 3)))!;
        Assert.That(e.Message, Is.EqualTo(
            "GlobalAvgPool: channel_axis=1 conflicts with channel_axis=-1 required by an earlier layer (Conv): on inputs of rank 4 these are axes 1 and 3; use one layout for the whole network"));
    }
}
