using NUnit.Framework;

namespace NeuralTangents.CSharp.Tests;

/// <summary>Stax.Repeat(layer, n) from C#: the kernel of serial n copies, and init refusing a shape-changing layer.</summary>
[TestFixture]
public class RepeatTests
{
    [Test]
    public void Repeat_KernelEqualsSerialOfCopies()
    {
        var block = Stax.Serial(Stax.Dense(5, wStd: 1.3, bStd: 0.2), Stax.Erf());
        var x = new double[3, 5];
        var z = TestUtil.Normals(4, 15);
        for (var i = 0; i < 3; i++)
            for (var j = 0; j < 5; j++)
                x[i, j] = z[5 * i + j];
        var repeated = Stax.Repeat(block, 3).Kernel(x);
        var serial = Stax.Serial(block, block, block).Kernel(x);
        // The same operations in the same order: equal bit for bit.
        Assert.That(repeated.Nngp, Is.EqualTo(serial.Nngp));
        Assert.That(repeated.Ntk, Is.EqualTo(serial.Ntk));
    }

    [Test]
    public void Repeat_InitRefusesAShapeChangingLayer()
    {
        var e = Assert.Catch(() => Stax.Repeat(Stax.Dense(3), 2).Init(0, 2, 4));
        Assert.That(e!.Message, Does.Contain("repeat").And.Contain("keeps its input shape"));
        var p = Stax.Repeat(Stax.Dense(4), 2).Init(0, 2, 4);
        Assert.That(p.OutputShape, Is.EqualTo(new[] { 2, 4 }));
    }
}
