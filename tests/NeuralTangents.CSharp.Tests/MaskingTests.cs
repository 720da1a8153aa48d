using Microsoft.FSharp.Core;
using NUnit.Framework;

namespace NeuralTangents.CSharp.Tests;

/// <summary>Masked inputs through the façade (<c>Network.Kernel(..., maskConstant)</c>): the F# core's numbers, the
/// null check, and the refusal of a layer that cannot take masks.</summary>
[TestFixture]
public class MaskingTests
{
    private const double Pad = -3.0;

    /// <summary>Random 3×4×4×2 images whose last rows are padding (image 1: two rows, image 2: one row).</summary>
    private static double[,,,] PaddedImages()
    {
        var x = TestUtil.RandomImages(17, 3, 4, 4, 2);
        for (var b = 0; b < 4; b++)
        {
            for (var c = 0; c < 2; c++)
            {
                x[1, 2, b, c] = Pad;
                x[1, 3, b, c] = Pad;
                x[2, 3, b, c] = Pad;
            }
        }

        return x;
    }

    private static Network Net() =>
        Stax.Serial(Stax.Conv(6, [2, 2], padding: PaddingMode.Same, wStd: 1.3, bStd: 0.1), Stax.Relu(), Stax.Dense(3, 1.1, 0.2), Stax.GlobalAvgPool());

    [Test]
    public void Kernel_WithMaskConstant_EqualsFSharpComputeWithMask()
    {
        var x = PaddedImages();
        var r = Net().Kernel(x, null, KernelOutputs.Both, Pad);
        var k = KernelFn.ComputeWithMask(Pad, LayoutRequest.Auto, Net().ToFSharp(), TensorModule.OfArray4D(x), FSharpOption<Tensor>.None, Get.Both);
        Assert.That(r.Nngp, Is.EqualTo(TensorModule.ToArray2D(k.Nngp)));
        Assert.That(r.Ntk, Is.EqualTo(TensorModule.ToArray2D(k.Ntk.Value)));
        // The mask matters: without it the padded rows count in the average.
        var plain = Net().Kernel(x);
        Assert.That(Math.Abs(plain.Nngp[1, 1] - r.Nngp[1, 1]), Is.GreaterThan(1e-6));
    }

    [Test]
    public void Kernel_WithMaskConstant_NullX1Throws() =>
        Assert.That(
            () => Net().Kernel((double[,,,])null!, null, KernelOutputs.Both, Pad),
            Throws.TypeOf<ArgumentNullException>().With.Property("ParamName").EqualTo("x1"));

    [Test]
    public void Kernel_WithMaskConstant_LayerWithoutMaskSupportNamesIt() =>
        Assert.That(
            () => Stax.Serial(Stax.AvgPool([2, 2], padding: PaddingMode.Same), Stax.Flatten())
                .Kernel(PaddedImages(), null, KernelOutputs.Nngp, Pad),
            Throws.TypeOf<InvalidOperationException>().With.Message.Contains("AvgPool"));
}
