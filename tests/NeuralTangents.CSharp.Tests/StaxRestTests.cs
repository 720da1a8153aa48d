using Microsoft.FSharp.Collections;
using Microsoft.FSharp.Core;
using NUnit.Framework;

namespace NeuralTangents.CSharp.Tests;

/// <summary>The façade's Dropout, LayerNorm, DotGeneral, Index, ImageResize and Aggregate build the F# layer values
/// written out by hand, and reject bad arguments by their C# names.</summary>
[TestFixture]
public class StaxRestTests
{
    private static FSharpOption<int> Some(int v) => FSharpOption<int>.Some(v);

    private static FSharpOption<int> None => FSharpOption<int>.None;

    [Test]
    public void DropoutAndLayerNormMatchTheFSharpValues()
    {
        Assert.That(Stax.Dropout(0.7).ToFSharp(), Is.EqualTo(Layer.NewDropout(new DropoutSpec(0.7, DropoutMode.Train))));
        Assert.That(Stax.Dropout(0.5, DropoutPhase.Test).ToFSharp(), Is.EqualTo(Layer.NewDropout(new DropoutSpec(0.5, DropoutMode.Test))));
        Assert.That(
            Stax.LayerNorm().ToFSharp(),
            Is.EqualTo(Layer.NewLayerNorm(new LayerNormSpec(ListModule.OfArray(new[] { -1 }), 1e-12, 0, -1))));
        Assert.That(
            Stax.LayerNorm(new[] { 1, 2 }, 0.5, 0, -1).ToFSharp(),
            Is.EqualTo(Layer.NewLayerNorm(new LayerNormSpec(ListModule.OfArray(new[] { 1, 2 }), 0.5, 0, -1))));
    }

    [Test]
    public void DotGeneralReadsArraysOfAnyRankRowMajor()
    {
        var lhs = new double[,] { { 1.0, 2.0 }, { 3.0, 4.5 } };
        var empty = ListModule.Empty<int>();
        var expected = Layer.NewDotGeneral(new DotGeneralSpec(
            FSharpOption<Tensor>.Some(TensorModule.Create(new[] { 2, 2 }, new[] { 1.0, 2.0, 3.0, 4.5 })),
            FSharpOption<Tensor>.None,
            Tuple.Create(Tuple.Create(ListModule.OfArray(new[] { 1 }), ListModule.OfArray(new[] { 1 })), Tuple.Create(empty, empty)),
            0,
            -1));
        Assert.That(Stax.DotGeneral(lhs: lhs, lhsContracting: new[] { 1 }, rhsContracting: new[] { 1 }).ToFSharp(), Is.EqualTo(expected));
        var scalar = Layer.NewDotGeneral(new DotGeneralSpec(
            FSharpOption<Tensor>.None,
            FSharpOption<Tensor>.Some(TensorModule.Create(Array.Empty<int>(), new[] { 2.0 })),
            Tuple.Create(Tuple.Create(empty, empty), Tuple.Create(empty, empty)),
            0,
            -1));
        Assert.That(Stax.DotGeneral(2.0).ToFSharp(), Is.EqualTo(scalar));
    }

    [Test]
    public void IndexResizeAndAggregateMatchTheFSharpValues()
    {
        var idx = ListModule.OfArray(new[]
        {
            IndexEntry.NewRange(None, None, None),
            IndexEntry.NewRange(Some(1), None, None),
            IndexEntry.NewRange(None, None, Some(-1)),
            IndexEntry.Rest,
            IndexEntry.NewAt(2),
        });
        Assert.That(
            Stax.Index(IndexPart.All, IndexPart.Slice(1, null), IndexPart.Slice(null, null, -1), IndexPart.Ellipsis, IndexPart.At(2)).ToFSharp(),
            Is.EqualTo(Layer.NewIndex(new IndexSpec(idx, 0, -1))));
        Assert.That(
            Stax.ImageResize(new[] { -1, 5, 4, -1 }, ResizeInterpolation.Linear).ToFSharp(),
            Is.EqualTo(Layer.NewImageResize(new ImageResizeSpec(ListModule.OfArray(new[] { -1, 5, 4, -1 }), ResizeMethod.Linear, true, 0, -1))));
        Assert.That(
            Stax.Aggregate(new[] { 1 }, sparse: true).ToFSharp(),
            Is.EqualTo(Layer.NewAggregate(new AggregateSpec(
                FSharpOption<FSharpList<int>>.Some(ListModule.OfArray(new[] { 1 })), 0, -1, AggregateImplementation.Sparse,
                FSharpOption<Tuple<Tensor, Tensor>>.None))));
    }

    [Test]
    public void BadArgumentsNameTheCSharpParameter()
    {
        Assert.That(Assert.Throws<ArgumentException>(() => Stax.Dropout(0.0))!.ParamName, Is.EqualTo("rate"));
        Assert.That(Assert.Throws<ArgumentException>(() => Stax.LayerNorm(batchAxis: 1, channelAxis: 1))!.ParamName, Is.EqualTo("channelAxis"));
        Assert.That(Assert.Throws<ArgumentException>(() => Stax.DotGeneral(lhs: new[] { 1.0 }, rhs: new[] { 1.0 }))!.ParamName, Is.EqualTo("rhs"));
        Assert.That(Assert.Throws<ArgumentException>(() => Stax.DotGeneral(lhs: new[] { 1, 2 }))!.ParamName, Is.EqualTo("lhs"));
        Assert.Throws<ArgumentNullException>(() => Stax.Index(null!));
        Assert.Throws<ArgumentNullException>(() => Stax.Index(IndexPart.All, null!));
        Assert.Throws<ArgumentNullException>(() => Stax.ImageResize(null!, ResizeInterpolation.Nearest));
        Assert.Throws<ArgumentException>(() => Stax.ImageResize(new[] { -1, 3, -1 }, (ResizeInterpolation)7));
    }
}
