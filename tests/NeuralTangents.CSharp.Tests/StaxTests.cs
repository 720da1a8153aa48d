using Microsoft.FSharp.Collections;
using Microsoft.FSharp.Core;
using NUnit.Framework;

namespace NeuralTangents.CSharp.Tests;

/// <summary>The façade's factories build exactly the F# layer values, and reject bad arguments by their C# names.</summary>
[TestFixture]
public class StaxTests
{
    private static FSharpList<Layer> List(params Layer[] layers) => ListModule.OfArray(layers);

    private static Layer FDense(int outDim, double wStd, double? bStd, Parameterization p, int s0, int s1, int batchAxis, int channelAxis) =>
        Layer.NewDense(new DenseSpec(
            outDim,
            wStd,
            bStd is { } b ? FSharpOption<double>.Some(b) : FSharpOption<double>.None,
            batchAxis,
            channelAxis,
            p,
            Tuple.Create(s0, s1)));

    private static Layer FABRelu(double a, double b) => Layer.NewActivation(Activation.NewABRelu(new ABReluSpec(a, b)));

    private static PoolSpec FPool(int[] window, int[] strides, Padding padding, int batchAxis, int channelAxis) =>
        new(ListModule.OfArray(window), ListModule.OfArray(strides), padding, batchAxis, channelAxis);

    /// <summary>Each façade factory next to the F# union value written out by hand (not via the F# Stax module),
    /// so a wrong argument order or default in the façade shows up.</summary>
    private static IEnumerable<TestCaseData> FacadeAndFSharp()
    {
        TestCaseData Case(string name, Func<Network> facade, Layer fsharp) => new TestCaseData(facade, fsharp).SetName("FacadeEqualsFSharp_" + name);

        yield return Case("DenseDefaults", () => Stax.Dense(4), FDense(4, 1.0, null, Parameterization.Ntk, 1, 1, 0, -1));
        yield return Case("DenseWithBias", () => Stax.Dense(512, wStd: 1.5, bStd: 0.05), FDense(512, 1.5, 0.05, Parameterization.Ntk, 1, 1, 0, -1));
        yield return Case(
            "DenseStandardAllArguments",
            () => Stax.Dense(8, 0.5, 0.0, parameterization: DenseParameterization.Standard, s0: 2, s1: 3, batchAxis: 1, channelAxis: 0),
            FDense(8, 0.5, 0.0, Parameterization.Standard, 2, 3, 1, 0));
        // Positional, in neural_tangents' order: Dense(out_dim, W_std, b_std, batch_axis, channel_axis, parameterization, s).
        yield return Case(
            "DensePositionalAsInPython",
            () => Stax.Dense(8, 0.5, 0.0, 1, 0, DenseParameterization.Standard, 2, 3),
            FDense(8, 0.5, 0.0, Parameterization.Standard, 2, 3, 1, 0));
        yield return Case("Relu", () => Stax.Relu(), FABRelu(0.0, 1.0));
        yield return Case("ReluDoStabilize", () => Stax.Relu(doStabilize: true), FABRelu(0.0, 1.0));
        yield return Case("LeakyRelu", () => Stax.LeakyRelu(0.1), FABRelu(0.1, 1.0));
        yield return Case("ABRelu", () => Stax.ABRelu(-0.5, 2.0), FABRelu(-0.5, 2.0));
        yield return Case("Abs", () => Stax.Abs(), FABRelu(-1.0, 1.0));
        yield return Case("LeakyReluDoStabilize", () => Stax.LeakyRelu(0.1, true), FABRelu(0.1, 1.0));
        yield return Case("ABReluDoStabilize", () => Stax.ABRelu(-0.5, 2.0, doStabilize: true), FABRelu(-0.5, 2.0));
        yield return Case("AbsDoStabilize", () => Stax.Abs(true), FABRelu(-1.0, 1.0));
        yield return Case("ErfDefaults", () => Stax.Erf(), Layer.NewActivation(Activation.NewErf(new ErfSpec(1.0, 1.0, 0.0))));
        yield return Case("Erf", () => Stax.Erf(2.0, 0.5, 0.1), Layer.NewActivation(Activation.NewErf(new ErfSpec(2.0, 0.5, 0.1))));
        // neural_tangents' Sigmoid_like: Erf(a = 0.5, b = 1/2.4020563531719796, c = 0.5).
        yield return Case("SigmoidLike", Stax.SigmoidLike, Layer.NewActivation(Activation.NewErf(new ErfSpec(0.5, 1.0 / 2.4020563531719796, 0.5))));
        yield return Case("SinDefaults", () => Stax.Sin(), Layer.NewActivation(Activation.NewSin(new SinSpec(1.0, 1.0, 0.0))));
        yield return Case("Sin", () => Stax.Sin(2.0, 3.0, 0.5), Layer.NewActivation(Activation.NewSin(new SinSpec(2.0, 3.0, 0.5))));
        // cos(z) = sin(z + π/2), as neural_tangents defines Cos.
        yield return Case("Cos", () => Stax.Cos(1.0, 2.0, 0.3), Layer.NewActivation(Activation.NewSin(new SinSpec(1.0, 2.0, 0.3 + Math.PI / 2))));
        yield return Case("GeluDefault", () => Stax.Gelu(), Layer.NewActivation(Activation.NewGelu(false)));
        yield return Case("GeluApproximate", () => Stax.Gelu(approximate: true), Layer.NewActivation(Activation.NewGelu(true)));
        yield return Case("Monomial", () => Stax.Monomial(3), Layer.NewActivation(Activation.NewMonomial(3)));
        yield return Case("FlattenDefaults", () => Stax.Flatten(), Layer.NewFlatten(new FlattenSpec(0, 0)));
        yield return Case("Flatten", () => Stax.Flatten(batchAxis: 2, batchAxisOut: 1), Layer.NewFlatten(new FlattenSpec(2, 1)));
        yield return Case("FanOut", () => Stax.FanOut(3), Layer.NewFanOut(3));
        yield return Case("FanInSum", Stax.FanInSum, Layer.FanInSum);
        yield return Case("FanInProd", Stax.FanInProd, Layer.FanInProd);
        yield return Case("FanInConcatDefault", () => Stax.FanInConcat(), Layer.NewFanInConcat(-1));
        yield return Case("FanInConcat", () => Stax.FanInConcat(0), Layer.NewFanInConcat(0));
        yield return Case("Identity", Stax.Identity, Layer.Identity);
        yield return Case("SerialEmpty", () => Stax.Serial(), Layer.NewSerial(List()));
        // neural_tangents' pooling defaults: strides None = ones, padding VALID, normalize_edges False, axes (0, −1).
        yield return Case("AvgPoolDefaults", () => Stax.AvgPool(new[] { 3, 2 }), Layer.NewAvgPool(FPool(new[] { 3, 2 }, new[] { 1, 1 }, Padding.Valid, 0, -1), false));
        yield return Case(
            "AvgPoolAllArguments",
            () => Stax.AvgPool(new[] { 2, 2 }, strides: new[] { 2, 1 }, padding: PaddingMode.Same, normalizeEdges: true, batchAxis: 1, channelAxis: 0),
            Layer.NewAvgPool(FPool(new[] { 2, 2 }, new[] { 2, 1 }, Padding.Same, 1, 0), true));
        yield return Case("SumPoolDefaults", () => Stax.SumPool(new[] { 2 }), Layer.NewSumPool(FPool(new[] { 2 }, new[] { 1 }, Padding.Valid, 0, -1)));
        yield return Case(
            "SumPoolCircular",
            () => Stax.SumPool(new[] { 2, 3 }, new[] { 1, 2 }, PaddingMode.Circular),
            Layer.NewSumPool(FPool(new[] { 2, 3 }, new[] { 1, 2 }, Padding.Circular, 0, -1)));
        yield return Case("GlobalAvgPool", () => Stax.GlobalAvgPool(), Layer.NewGlobalAvgPool(new GlobalPoolSpec(0, -1)));
        yield return Case("GlobalAvgPoolAxes", () => Stax.GlobalAvgPool(batchAxis: 1, channelAxis: 0), Layer.NewGlobalAvgPool(new GlobalPoolSpec(1, 0)));
        yield return Case("GlobalSumPool", () => Stax.GlobalSumPool(), Layer.NewGlobalSumPool(new GlobalPoolSpec(0, -1)));
        yield return Case(
            "Serial",
            () => Stax.Serial(Stax.Dense(2), Stax.Relu()),
            Layer.NewSerial(List(FDense(2, 1.0, null, Parameterization.Ntk, 1, 1, 0, -1), FABRelu(0.0, 1.0))));
        yield return Case(
            "Parallel",
            () => Stax.Parallel(Stax.Relu(), Stax.Identity()),
            Layer.NewParallel(List(FABRelu(0.0, 1.0), Layer.Identity)));
        yield return Case("Repeat", () => Stax.Repeat(3, Stax.Erf()), Layer.NewRepeat(Layer.NewActivation(Activation.NewErf(new ErfSpec(1.0, 1.0, 0.0))), 3));
        yield return Case("RepeatNeuralTangentsOrder", () => Stax.Repeat(Stax.Erf(), 3), Layer.NewRepeat(Layer.NewActivation(Activation.NewErf(new ErfSpec(1.0, 1.0, 0.0))), 3));
        yield return Case("RepeatZero", () => Stax.Repeat(0, Stax.Relu()), Layer.NewRepeat(FABRelu(0.0, 1.0), 0));
    }

    [TestCaseSource(nameof(FacadeAndFSharp))]
    public void FacadeEqualsFSharp(Func<Network> facade, Layer fsharp)
    {
        var net = facade();
        Assert.That(net.ToFSharp(), Is.EqualTo(fsharp));
        Assert.That(net, Is.EqualTo(Network.FromFSharp(fsharp)));
        Assert.That(net.GetHashCode(), Is.EqualTo(Network.FromFSharp(fsharp).GetHashCode()));
    }

    [Test]
    public void Equals_DistinguishesArguments()
    {
        Assert.That(Stax.Dense(4, wStd: 1.5), Is.Not.EqualTo(Stax.Dense(4, wStd: 1.25)));
        Assert.That(Stax.Dense(4, bStd: 0.0), Is.Not.EqualTo(Stax.Dense(4)), "b_std = 0 is a bias; null is none");
        Assert.That(Stax.Relu().Equals(null), Is.False);
        Assert.That(Stax.Relu().Equals((object)"Relu"), Is.False);
    }

    /// <summary>Invalid arguments, each with the C# parameter name the exception must carry.</summary>
    private static IEnumerable<TestCaseData> InvalidArguments()
    {
        TestCaseData Case(string name, Func<Network> f, string param) => new TestCaseData(f, param).SetName("InvalidArgument_" + name);

        yield return Case("DenseOutDimZero", () => Stax.Dense(0), "outDim");
        yield return Case("DenseNegativeWStd", () => Stax.Dense(4, wStd: -1.0), "wStd");
        yield return Case("DenseNaNWStd", () => Stax.Dense(4, wStd: double.NaN), "wStd");
        yield return Case("DenseNegativeBStd", () => Stax.Dense(4, bStd: -0.1), "bStd");
        yield return Case("DenseInfiniteBStd", () => Stax.Dense(4, bStd: double.PositiveInfinity), "bStd");
        yield return Case("DenseS0Zero", () => Stax.Dense(4, s0: 0), "s0");
        yield return Case("DenseS1Zero", () => Stax.Dense(4, s1: 0), "s1");
        yield return Case("DenseSameAxes", () => Stax.Dense(4, batchAxis: 1, channelAxis: 1), "channelAxis");
        yield return Case("DenseUnknownParameterization", () => Stax.Dense(4, parameterization: (DenseParameterization)7), "parameterization");
        yield return Case("LeakyReluNaN", () => Stax.LeakyRelu(double.NaN), "alpha");
        yield return Case("ABReluA", () => Stax.ABRelu(double.PositiveInfinity, 1.0), "a");
        yield return Case("ABReluB", () => Stax.ABRelu(1.0, double.NaN), "b");
        yield return Case("ErfC", () => Stax.Erf(c: double.NaN), "c");
        yield return Case("SinB", () => Stax.Sin(b: double.NegativeInfinity), "b");
        yield return Case("CosA", () => Stax.Cos(a: double.NaN), "a");
        yield return Case("MonomialSix", () => Stax.Monomial(6), "degree");
        yield return Case("MonomialNegative", () => Stax.Monomial(-1), "degree");
        yield return Case("FlattenBatchAxisOut", () => Stax.Flatten(batchAxisOut: 2), "batchAxisOut");
        yield return Case("FanOutZero", () => Stax.FanOut(0), "num");
        yield return Case("RepeatNegative", () => Stax.Repeat(-1, Stax.Relu()), "n");
        yield return Case("RepeatTooDeep", () => Stax.Repeat(Stax.Relu(), 1_000_001), "n");
        yield return Case("BuilderDense", () => new NetworkBuilder().Dense(4, wStd: -2.0).Build(), "wStd");
        yield return Case("AvgPoolEmptyWindow", () => Stax.AvgPool(Array.Empty<int>()), "windowShape");
        yield return Case("AvgPoolZeroWindow", () => Stax.AvgPool(new[] { 2, 0 }), "windowShape");
        yield return Case("SumPoolStridesLength", () => Stax.SumPool(new[] { 2, 2 }, strides: new[] { 1 }), "strides");
        yield return Case("SumPoolZeroStride", () => Stax.SumPool(new[] { 2 }, strides: new[] { 0 }), "strides");
        yield return Case("AvgPoolUnknownPadding", () => Stax.AvgPool(new[] { 2 }, padding: (PaddingMode)9), "padding");
        yield return Case("AvgPoolSameAxes", () => Stax.AvgPool(new[] { 2 }, batchAxis: 2, channelAxis: 2), "channelAxis");
        yield return Case("GlobalAvgPoolSameAxes", () => Stax.GlobalAvgPool(0, 0), "channelAxis");
        yield return Case("GlobalSumPoolSameAxes", () => Stax.GlobalSumPool(-1, -1), "channelAxis");
        yield return Case("BuilderSumPool", () => new NetworkBuilder().SumPool(new[] { -1 }).Build(), "windowShape");
    }

    [TestCaseSource(nameof(InvalidArguments))]
    public void InvalidArgument_ThrowsArgumentExceptionNamingIt(Func<Network> f, string param)
    {
        var e = Assert.Throws<ArgumentException>(() => f())!;
        Assert.That(e.ParamName, Is.EqualTo(param));
        // The core's message is kept, and the parameter is named once (not the core's name plus ours).
        var once = new ArgumentException(string.Empty, param).Message;
        Assert.That(e.Message, Does.EndWith(once));
        Assert.That(e.Message.IndexOf("(Parameter", StringComparison.Ordinal), Is.EqualTo(e.Message.LastIndexOf("(Parameter", StringComparison.Ordinal)));
        Assert.That(e.Message.Length, Is.GreaterThan(once.Length), "the core's explanation is kept");
    }

    [Test]
    public void InvalidArgument_EchoesArraysAndListsInCSharpSyntax()
    {
        // The core echoes an int array as [|0; 3|] and an int list as [0; 3]; C# callers read [0, 3] for both.
        var conv = Assert.Throws<ArgumentException>(() => Stax.Conv(3, new[] { 0, 3 }))!;
        Assert.That(conv.Message, Does.Contain("got [0, 3]"));
        Assert.That(conv.Message, Does.Not.Contain(";"));
    }

    /// <summary>Every null check of the façade, with the parameter name it must report.</summary>
    private static IEnumerable<TestCaseData> NullArguments()
    {
        TestCaseData Case(string name, TestDelegate f, string param) => new TestCaseData(f, param).SetName("NullArgument_" + name);

        var x = new double[,] { { 1.0 } };
        yield return Case("SerialArray", () => Stax.Serial(null!), "layers");
        yield return Case("SerialItem", () => Stax.Serial(Stax.Relu(), null!), "layers");
        yield return Case("ParallelArray", () => Stax.Parallel(null!), "layers");
        yield return Case("ParallelItem", () => Stax.Parallel(null!, Stax.Relu()), "layers");
        yield return Case("RepeatLayer", () => Stax.Repeat(2, null!), "layer");
        yield return Case("FromFSharp", () => Network.FromFSharp(null!), "layer");
        yield return Case("FromJson", () => Network.FromJson(null!), "json");
        yield return Case("KernelMatrixX1", () => Stax.Dense(1).Kernel((double[,])null!), "x1");
        yield return Case("KernelMatrixX1WithX2", () => Stax.Dense(1).Kernel(null!, x), "x1");
        yield return Case("KernelImagesX1", () => Stax.Flatten().Kernel((double[,,,])null!), "x1");
        yield return Case("BuilderAdd", () => new NetworkBuilder().Add(null!), "layer");
        yield return Case("BuilderParallelArray", () => new NetworkBuilder().Parallel(null!), "layers");
        yield return Case("BuilderParallelItem", () => new NetworkBuilder().Parallel(Stax.Relu(), null!), "layers");
        yield return Case("BuilderRepeat", () => new NetworkBuilder().Repeat(1, null!), "layer");
        yield return Case("AvgPoolWindow", () => Stax.AvgPool(null!), "windowShape");
        yield return Case("SumPoolWindow", () => Stax.SumPool(null!), "windowShape");
        yield return Case("BuilderAvgPoolWindow", () => new NetworkBuilder().AvgPool(null!), "windowShape");
        yield return Case("BuilderSumPoolWindow", () => new NetworkBuilder().SumPool(null!), "windowShape");
    }

    [TestCaseSource(nameof(NullArguments))]
    public void NullArgument_ThrowsArgumentNullExceptionNamingIt(TestDelegate f, string param)
    {
        var e = Assert.Throws<ArgumentNullException>(f)!;
        Assert.That(e.ParamName, Is.EqualTo(param));
    }
}
