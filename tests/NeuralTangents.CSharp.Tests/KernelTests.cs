using Microsoft.FSharp.Core;
using NUnit.Framework;
using static NeuralTangents.CSharp.Tests.TestUtil;

namespace NeuralTangents.CSharp.Tests;

/// <summary>Network.Kernel: reference values, layout conventions (x2 = null, get), images, and errors.</summary>
[TestFixture]
public class KernelTests
{
    // The fixtures' README: a float64 implementation matches them to about 1e-10; 1e-8 is the bar for tests.
    private const double FixtureTol = 1e-8;

    private static Network MlpReluD1() =>
        Stax.Serial(Stax.Dense(512, wStd: 1.5, bStd: 0.05), Stax.Relu(), Stax.Dense(1, wStd: 1.5, bStd: 0.05));

    [Test]
    public void Kernel_MatchesReferenceFixture_MlpReluD1()
    {
        var f = Fixture("mlp_relu_d1_ntk");
        var k = MlpReluD1().Kernel(Matrix(f.GetProperty("x1")), Matrix(f.GetProperty("x2")));
        AssertClose("nngp", FixtureTol, Matrix(f.GetProperty("nngp")), k.Nngp);
        AssertClose("ntk", FixtureTol, Matrix(f.GetProperty("ntk")), k.Ntk!);
        AssertClose("cov1", FixtureTol, Vector(f.GetProperty("cov1")), k.Cov1);
        AssertClose("cov2", FixtureTol, Vector(f.GetProperty("cov2")), k.Cov2!);
    }

    [Test]
    public void Kernel_MatchesReferenceFixture_MlpResnetFromBuilder()
    {
        // Two residual blocks: FanOut(2) → parallel(branch, Identity) → FanInSum, written with the builder.
        var net = new NetworkBuilder()
            .Dense(256, wStd: 1.3, bStd: 0.1)
            .FanOut(2)
            .Parallel(Stax.Serial(Stax.Relu(), Stax.Dense(256, wStd: 1.4, bStd: 0.1)), Stax.Identity())
            .FanInSum()
            .FanOut(2)
            .Parallel(Stax.Serial(Stax.Erf(), Stax.Dense(256, wStd: 1.2, bStd: 0.0)), Stax.Identity())
            .FanInSum()
            .Relu()
            .Dense(1, wStd: 1.0, bStd: 0.0)
            .Build();
        var f = Fixture("mlp_resnet");
        Assert.That(net, Is.EqualTo(Network.FromJson(f.GetProperty("arch").GetRawText())), "builder = fixture's JSON arch");
        var k = net.Kernel(Matrix(f.GetProperty("x1")), Matrix(f.GetProperty("x2")));
        AssertClose("nngp", FixtureTol, Matrix(f.GetProperty("nngp")), k.Nngp);
        AssertClose("ntk", FixtureTol, Matrix(f.GetProperty("ntk")), k.Ntk!);
    }

    [Test]
    public void Kernel_EqualsFSharpKernelFnCompute()
    {
        var x1 = RandomMatrix(11, 4, 3);
        var x2 = RandomMatrix(12, 5, 3);
        var net = MlpReluD1();
        var k = net.Kernel(x1, x2);
        var fs = KernelFn.Compute(
            net.ToFSharp(), TensorModule.OfArray2D(x1), FSharpOption<Tensor>.Some(TensorModule.OfArray2D(x2)), Get.Both);
        // Same layer, same inputs, same deterministic code path: the façade only converts arrays, so exact equality.
        Assert.That(k.Nngp, Is.EqualTo(TensorModule.ToArray2D(fs.Nngp)));
        Assert.That(k.Ntk, Is.EqualTo(TensorModule.ToArray2D(fs.Ntk.Value)));
        Assert.That(k.Cov1, Is.EqualTo(fs.Cov1.Data));
        Assert.That(k.Cov2, Is.EqualTo(fs.Cov2.Value.Data));
    }

    [Test]
    public void Kernel_X2Null_GivesSymmetricNngpAndNullCov2()
    {
        var x = RandomMatrix(21, 5, 4);
        var net = MlpReluD1();
        var k = net.Kernel(x);
        var kxx = net.Kernel(x, x);
        Assert.That(k.Cov2, Is.Null);
        Assert.That(kxx.Cov2, Is.Not.Null);
        Assert.That(k.Nngp.GetLength(0), Is.EqualTo(5));
        Assert.That(k.Nngp.GetLength(1), Is.EqualTo(5));
        // Symmetry up to round-off: entries are sums over 4 features then O(1) closed-form steps, each ~1e-16
        // relative; 1e-13 leaves two orders of magnitude of margin.
        var transposed = new double[5, 5];
        for (var i = 0; i < 5; i++)
        {
            for (var j = 0; j < 5; j++)
            {
                transposed[i, j] = k.Nngp[j, i];
            }
        }

        AssertClose("nngp vs its transpose", 1e-13, k.Nngp, transposed);
        AssertClose("kernel(x) vs kernel(x, x), nngp", 1e-13, kxx.Nngp, k.Nngp);
        AssertClose("kernel(x) vs kernel(x, x), ntk", 1e-13, kxx.Ntk!, k.Ntk!);
        // With the diagonal batch layout Cov1[i] is the variance on x[i], i.e. the NNGP diagonal.
        var diagonal = Enumerable.Range(0, 5).Select(i => k.Nngp[i, i]).ToArray();
        AssertClose("cov1 vs diag(nngp)", 1e-13, diagonal, k.Cov1);
    }

    [Test]
    public void Kernel_GetNngp_SkipsNtk_GetNtkReturnsIt()
    {
        var x = RandomMatrix(31, 3, 2);
        var net = MlpReluD1();
        var both = net.Kernel(x);
        var nngpOnly = net.Kernel(x, get: KernelOutputs.Nngp);
        var ntk = net.Kernel(x, get: KernelOutputs.Ntk);
        Assert.That(nngpOnly.Ntk, Is.Null);
        Assert.That(nngpOnly.Nngp, Is.EqualTo(both.Nngp));
        Assert.That(ntk.Ntk, Is.EqualTo(both.Ntk));
    }

    [Test]
    public void Kernel_ReturnsArraysOwnedByTheResult()
    {
        var x = RandomMatrix(41, 3, 2);
        var net = MlpReluD1();
        var k1 = net.Kernel(x);
        var before = k1.Nngp[0, 0];
        k1.Nngp[0, 0] = 1e6;
        k1.Cov1[0] = 1e6;
        var k2 = net.Kernel(x);
        Assert.That(k2.Nngp[0, 0], Is.EqualTo(before));
        Assert.That(k2.Cov1[0], Is.Not.EqualTo(1e6));
    }

    [Test]
    public void Kernel_Images_FlattenNetworkEqualsVectorNetworkOnFlattenedImages()
    {
        // Flatten's kernel is the mean over positions of the per-position covariance x·x'/C, which is the
        // covariance x·x'/(H·W·C) of the row-major flattened vectors: the same network without Flatten on flattened
        // inputs is an independent path to the same numbers (only the summation order differs, ~1e-16 relative;
        // tolerance 1e-12).
        var x1 = RandomImages(51, 3, 4, 5, 2);
        var x2 = RandomImages(52, 2, 4, 5, 2);
        var top = Stax.Serial(Stax.Dense(64, wStd: 1.5, bStd: 0.1), Stax.Relu(), Stax.Dense(1, wStd: 1.5));
        var images = Stax.Serial(Stax.Flatten(), top).Kernel(x1, x2);
        var vectors = top.Kernel(FlattenImages(x1), FlattenImages(x2));
        Assert.That(images.Nngp.GetLength(0), Is.EqualTo(3));
        Assert.That(images.Nngp.GetLength(1), Is.EqualTo(2));
        AssertClose("nngp", 1e-12, vectors.Nngp, images.Nngp);
        AssertClose("ntk", 1e-12, vectors.Ntk!, images.Ntk!);
        AssertClose("cov1", 1e-12, vectors.Cov1, images.Cov1);
        AssertClose("cov2", 1e-12, vectors.Cov2!, images.Cov2!);

        var self = Stax.Serial(Stax.Flatten(), top).Kernel(x1);
        Assert.That(self.Cov2, Is.Null);
        AssertClose("x2 = null", 1e-12, top.Kernel(FlattenImages(x1)).Nngp, self.Nngp);
    }

    [Test]
    public void Kernel_Images_DiagonalSpatialOverride_GivesTheDefaultKernelThroughEitherLayout()
    {
        // neural_tangents' diagonal_spatial: a Flatten-topped network picks the diagonal layout by itself; asking for
        // every pair of positions (false) costs more but Flatten reads only the same-position pairs, so the kernel is
        // the same up to the summation order of the input products (~1e-16; tolerance 1e-14).
        var x1 = RandomImages(55, 3, 2, 3, 2);
        var x2 = RandomImages(56, 2, 2, 3, 2);
        var net = Stax.Serial(Stax.Dense(16, wStd: 1.3, bStd: 0.1), Stax.Relu(), Stax.Flatten(), Stax.Dense(1, wStd: 1.2));
        var auto = net.Kernel(x1, x2);
        var fullLayout = net.Kernel(x1, x2, diagonalSpatial: false);
        var diagonalLayout = net.Kernel(x1, x2, diagonalSpatial: true);
        AssertClose("nngp, full", 1e-14, auto.Nngp, fullLayout.Nngp);
        AssertClose("ntk, full", 1e-14, auto.Ntk!, fullLayout.Ntk!);
        AssertClose("cov1, full", 1e-14, auto.Cov1, fullLayout.Cov1);
        AssertClose("nngp, diagonal", 0.0, auto.Nngp, diagonalLayout.Nngp);

        // A spatial output stays unavailable here whichever layout is asked for.
        var spatial = Stax.Serial(Stax.Dense(4), Stax.Relu(), Stax.Dense(1));
        Assert.Throws<NotSupportedException>(() => spatial.Kernel(x1, diagonalSpatial: true));
        Assert.Throws<NotSupportedException>(() => spatial.Kernel(x1, diagonalSpatial: false));
    }

    [Test]
    public void Kernel_DiagonalBatchFalse_GivesTheFullCovariancesOfEachInputSet()
    {
        // neural_tangents' diagonal_batch=False: cov1 is the kernel of x1 with itself, (N1, N1), and cov2 that of x2;
        // so Cov1Full must equal the NNGP of Kernel(x1) and Cov2Full that of Kernel(x2) (the same computation, up to
        // the order of the input products: 1e-14), their diagonals the variances, and the x1–x2 NNGP unchanged.
        var x1 = RandomImages(57, 3, 2, 2, 2);
        var x2 = RandomImages(58, 2, 2, 2, 2);
        var net = Stax.Serial(Stax.Dense(8, wStd: 1.4, bStd: 0.2), Stax.Relu(), Stax.Flatten(), Stax.Dense(1));
        var plain = net.Kernel(x1, x2);
        var full = net.Kernel(x1, x2, diagonalBatch: false);
        Assert.That(plain.Cov1Full, Is.Null);
        AssertClose("nngp", 1e-14, plain.Nngp, full.Nngp);
        AssertClose("cov1 = diagonal of Cov1Full", 1e-14, plain.Cov1, full.Cov1);
        AssertClose("Cov1Full = Kernel(x1).Nngp", 1e-14, net.Kernel(x1).Nngp, full.Cov1Full!);
        AssertClose("Cov2Full = Kernel(x2).Nngp", 1e-14, net.Kernel(x2).Nngp, full.Cov2Full!);
    }

    [Test]
    public void Kernel_Images_SpatialOutput_ThrowsNotSupported()
    {
        var x = RandomImages(61, 2, 3, 3, 2);
        var e = Assert.Throws<NotSupportedException>(() => Stax.Serial(Stax.Dense(4), Stax.Relu(), Stax.Dense(1)).Kernel(x))!;
        Assert.That(e.Message, Does.Contain("spatial axes").And.Contain("Flatten()"));
    }

    [Test]
    public void Kernel_NonFiniteInput_ThrowsArgumentExceptionNamingIt()
    {
        var good = RandomMatrix(71, 2, 3);
        var bad = RandomMatrix(72, 2, 3);
        bad[1, 2] = double.NaN;
        var net = MlpReluD1();
        Assert.That(Assert.Throws<ArgumentException>(() => net.Kernel(bad))!.ParamName, Is.EqualTo("x1"));
        Assert.That(Assert.Throws<ArgumentException>(() => net.Kernel(good, bad))!.ParamName, Is.EqualTo("x2"));
    }

    [Test]
    public void Kernel_FeatureCountMismatch_ThrowsArgumentExceptionNamingX2()
    {
        var e = Assert.Throws<ArgumentException>(() => MlpReluD1().Kernel(RandomMatrix(81, 2, 3), RandomMatrix(82, 2, 4)))!;
        Assert.That(e.ParamName, Is.EqualTo("x2"));
    }

    [Test]
    public void Kernel_ActivationWithoutDense_ThrowsInvalidOperationException()
    {
        var e = Assert.Throws<InvalidOperationException>(() => Stax.Relu().Kernel(RandomMatrix(91, 2, 3)))!;
        Assert.That(e.Message, Does.Contain("Dense"));
    }

    [Test]
    public void Kernel_UnknownKernelOutputs_ThrowsArgumentExceptionNamingGet()
    {
        var e = Assert.Throws<ArgumentException>(() => MlpReluD1().Kernel(RandomMatrix(92, 2, 3), get: (KernelOutputs)9))!;
        Assert.That(e.ParamName, Is.EqualTo("get"));
    }
}
