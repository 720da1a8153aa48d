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
}
