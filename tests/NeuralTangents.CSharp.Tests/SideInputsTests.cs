using Microsoft.FSharp.Collections;
using Microsoft.FSharp.Core;
using NUnit.Framework;

namespace NeuralTangents.CSharp.Tests;

/// <summary>The façade's side inputs: mask_constant on vector inputs, Aggregate's pattern, apply_fn's key and pattern
/// in the finite tools, and GlobalSelfAttention's arguments (pos_emb_decay_fn): each equals the F# core's call.</summary>
[TestFixture]
public class SideInputsTests
{
    private const double Pad = -3.0;

    private static readonly double[,] X = { { 0.5, Pad, 1.0 }, { -1.0, 0.25, Pad }, { 2.0, 0.5, -0.5 } };

    private static readonly double[,,] G =
    {
        { { 0.5, -1.0 }, { 1.5, 0.25 }, { -0.75, 2.0 } },
        { { 1.0, 0.0 }, { -0.5, 0.5 }, { 0.25, -1.25 } },
    };

    private static readonly double[,,] A1 =
    {
        { { 0, 1, 0 }, { 1, 0, 1 }, { 0, 1, 0 } },
        { { 0, 0, 1 }, { 0, 0, 1 }, { 1, 1, 0 } },
    };

    private static readonly double[,,] A2 =
    {
        { { 1, 1, 0 }, { 0, 1, 0 }, { 0, 0, 1 } },
        { { 0, 2, 0 }, { 0, 0, 0 }, { 1, 0, 1 } },
    };

    private static Tensor T(Array a)
    {
        var shape = Enumerable.Range(0, a.Rank).Select(a.GetLength).ToArray();
        return TensorModule.Create(shape, a.Cast<double>().ToArray());
    }

    private static Network GraphNet() =>
        Stax.Serial(Stax.Dense(16), Stax.Relu(), Stax.Aggregate(), Stax.Flatten(), Stax.Dense(2));

    private static Network DropNet() =>
        Stax.Serial(Stax.Dense(32, 1.5, 0.05), Stax.Relu(), Stax.Dropout(0.7), Stax.Dense(2));

    [Test]
    public void Kernel_VectorsWithMaskConstant_EqualsFSharpAndJaggedAndFloatAgree()
    {
        // A 1-D sequence layout is not needed: Dense collapses the mask per sample; the masked entries are zeroed.
        var net = Stax.Serial(Stax.Dense(4, 1.2, 0.1), Stax.Erf(), Stax.Dense(1));
        var r = net.Kernel(X, null, KernelOutputs.Both, Pad);
        var k = KernelFn.ComputeWithMask(Pad, LayoutRequest.Auto, net.ToFSharp(), TensorModule.OfArray2D(X), FSharpOption<Tensor>.None, Get.Both);
        Assert.That(r.Nngp, Is.EqualTo(TensorModule.ToArray2D(k.Nngp)));
        Assert.That(r.Ntk, Is.EqualTo(TensorModule.ToArray2D(k.Ntk.Value)));
        Assert.That(Math.Abs(net.Kernel(X).Nngp[0, 0] - r.Nngp[0, 0]), Is.GreaterThan(1e-6), "the mask matters");
        double[][] rows = { new[] { 0.5, Pad, 1.0 }, new[] { -1.0, 0.25, Pad }, new[] { 2.0, 0.5, -0.5 } };
        Assert.That(net.Kernel(rows, null, KernelOutputs.Both, Pad).Nngp, Is.EqualTo(r.Nngp));
        float[,] xf = { { 0.5f, (float)Pad, 1.0f }, { -1.0f, 0.25f, (float)Pad }, { 2.0f, 0.5f, -0.5f } };
        Assert.That(net.Kernel(xf, null, KernelOutputs.Both, (float)Pad).Ntk, Is.EqualTo(r.Ntk));
    }

    [Test]
    public void Kernel_WithPattern_EqualsFSharpComputeWithPattern()
    {
        var r = GraphNet().Kernel(G, G, KernelOutputs.Both, A1, A2);
        var k = KernelFn.ComputeWithPattern(
            T(A1), T(A2), LayoutRequest.Auto, GraphNet().ToFSharp(), T(G), FSharpOption<Tensor>.Some(T(G)), Get.Both);
        Assert.That(r.Nngp, Is.EqualTo(TensorModule.ToArray2D(k.Nngp)));
        Assert.That(r.Ntk, Is.EqualTo(TensorModule.ToArray2D(k.Ntk.Value)));
        // x2 = null uses pattern1 for both.
        var self = GraphNet().Kernel(G, null, KernelOutputs.Nngp, A1);
        var k11 = KernelFn.ComputeWithPattern(
            T(A1), T(A1), LayoutRequest.Auto, GraphNet().ToFSharp(), T(G), FSharpOption<Tensor>.None, Get.Nngp);
        Assert.That(self.Nngp, Is.EqualTo(TensorModule.ToArray2D(k11.Nngp)));
        Assert.That(
            () => GraphNet().Kernel(G, G, KernelOutputs.Nngp, A1),
            Throws.TypeOf<ArgumentException>().With.Property("ParamName").EqualTo("pattern2"));
    }

    [Test]
    public void FiniteTools_WithKeyAndPattern_EqualTheFSharpContextCalls()
    {
        var x = T(X).Data.Select(v => v == Pad ? 0.3 : v).ToArray();
        var xa = new double[3, 3];
        Buffer.BlockCopy(x, 0, xa, 0, x.Length * sizeof(double));
        var net = DropNet();
        var p = net.Init(4, 3, 3);
        var ctx = new ApplyContext(FSharpOption<RngKey>.Some(Rng.OfSeed(11)), MapModule.Empty<string, Tensor>());
        var split = Empirical.SplitContext(ctx, TensorModule.OfArray2D(xa), FSharpOption<Tensor>.None);
        var want = Empirical.KernelFnWith(
            split.Item1, split.Item2, net.ToFSharp(), new[] { -1 }, Array.Empty<int>(), TensorModule.OfArray2D(xa),
            FSharpOption<Tensor>.None, Get.Both, p.ToFSharp());
        var got = FiniteWidth.EmpiricalKernel(net, p, xa, null, new ApplyArguments(RngSeed: 11));
        Assert.That(got.Ntk!.Values, Is.EqualTo(want.Item2.Value.Data));
        Assert.That(got.Nngp!.Values, Is.EqualTo(want.Item1.Value.Data));
        // Without a key, Dropout in mode 'train' says what it needs.
        Assert.That(
            () => FiniteWidth.EmpiricalKernel(net, p, xa, null, new ApplyArguments()),
            Throws.InstanceOf<Exception>().With.Message.Contains("random key"));
        var mc = FiniteWidth.MonteCarloKernel(net, xa, 3, new ApplyArguments(RngSeed: 5), seed: 2);
        var mcWant = NeuralTangents.MonteCarlo.ComputeWithContext(
            new ApplyContext(FSharpOption<RngKey>.Some(Rng.OfSeed(5)), MapModule.Empty<string, Tensor>()),
            NeuralTangents.MonteCarlo.Options(2, ListModule.OfArray(new[] { 3 })), net.ToFSharp(), TensorModule.OfArray2D(xa),
            FSharpOption<Tensor>.None, Get.Both).Head;
        Assert.That(mc.Nngp!.Values, Is.EqualTo(mcWant.Item1.Value.Data));

        // The pattern: f(x1) aggregates with pattern1, f(x2) with pattern2.
        var g = GraphNet();
        var gp = g.Init(1, 2, 3, 2);
        var withPattern = (Tensor a) => new ApplyContext(
            FSharpOption<RngKey>.None, MapModule.OfSeq(new[] { Tuple.Create("pattern", a) }));
        var gWant = Empirical.KernelFnWith(
            withPattern(T(A1)), withPattern(T(A2)), g.ToFSharp(), new[] { -1 }, Array.Empty<int>(), T(G),
            FSharpOption<Tensor>.Some(T(G)), Get.Both, gp.ToFSharp());
        var gGot = FiniteWidth.EmpiricalKernel(g, gp, G, G, new ApplyArguments(Pattern1: A1, Pattern2: A2));
        Assert.That(gGot.Ntk!.Values, Is.EqualTo(gWant.Item2.Value.Data));
        Assert.That(
            () => FiniteWidth.MonteCarloKernel(g, G, 2, new ApplyArguments(Pattern1: A1, Pattern2: A2), x2: G),
            Throws.TypeOf<ArgumentException>().With.Message.Contains("two different patterns"));
    }

    [Test]
    public void GlobalSelfAttention_BuildsTheFSharpSpec_WithDecay()
    {
        var built = Stax.GlobalSelfAttention(
            8, 4, 6, 2, linearScaling: false, wKeyStd: 1.1, bStd: 0.2, attentionMechanism: AttentionKind.Identity,
            posEmbType: PositionalEmbeddingKind.Sum, posEmbPNorm: 1.0, posEmbDecayFn: PositionalDecay.Power(1.5),
            nChanPosEmb: 3, valPosEmb: true);
        var d = StaxModule.AttentionDefaults(8, 4, 6, 2);
        var spec = new AttentionSpec(
            8, 4, 6, 2, false, 1.1, d.WValueStd, d.WQueryStd, d.WOutStd, FSharpOption<double>.Some(0.2),
            AttentionMechanism.Identity, PositionalEmbedding.Sum, 1.0, FSharpOption<int>.Some(3), d.WPosEmbStd, true,
            d.BatchAxis, d.ChannelAxis, PosEmbDecay.NewPower(1.5));
        Assert.That(built.ToFSharp(), Is.EqualTo(StaxModule.GlobalSelfAttentionWith(spec)));
        Assert.That(
            Stax.GlobalSelfAttention(8, 4, 6, 2, posEmbType: PositionalEmbeddingKind.Concat, posEmbDecayFn: PositionalDecay.Exponential(2.0)).ToJson(),
            Does.Contain("\"exp\""));
        Assert.That(Stax.GlobalSelfAttention(8, 4, 6, 2).ToFSharp(), Is.EqualTo(StaxModule.GlobalSelfAttentionWith(d)));
        Assert.That(
            () => Stax.GlobalSelfAttention(8, 4, 6, 2, posEmbType: PositionalEmbeddingKind.Sum, posEmbDecayFn: PositionalDecay.Exponential(-1.0)),
            Throws.InstanceOf<ArgumentException>().With.Message.Contains("decay"));
    }
}
