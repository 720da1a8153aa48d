using NUnit.Framework;
using static NeuralTangents.CSharp.Tests.TestUtil;

namespace NeuralTangents.CSharp.Tests;

/// <summary>Kernels on jagged (<c>double[][]</c>) and single-precision (<c>float[,]</c>) inputs, and ensemble
/// predictions from 1-D targets.</summary>
[TestFixture]
public class InputShapesTests
{
    private const double FixtureTol = 1e-8;

    private static Network MlpReluD1() =>
        Stax.Serial(Stax.Dense(512, wStd: 1.5, bStd: 0.05), Stax.Relu(), Stax.Dense(1, wStd: 1.5, bStd: 0.05));

    private static double[][] Jagged(double[,] m) =>
        Enumerable.Range(0, m.GetLength(0)).Select(i => Enumerable.Range(0, m.GetLength(1)).Select(j => m[i, j]).ToArray()).ToArray();

    [Test]
    public void Kernel_OnJaggedRows_MatchesReferenceFixture()
    {
        var f = Fixture("mlp_relu_d1_ntk");
        var k = MlpReluD1().Kernel(Jagged(Matrix(f.GetProperty("x1"))), Jagged(Matrix(f.GetProperty("x2"))));
        AssertClose("nngp", FixtureTol, Matrix(f.GetProperty("nngp")), k.Nngp);
        AssertClose("ntk", FixtureTol, Matrix(f.GetProperty("ntk")), k.Ntk!);
        AssertClose("cov1", FixtureTol, Vector(f.GetProperty("cov1")), k.Cov1);
    }

    [Test]
    public void Kernel_OnJaggedRows_RejectsRaggedAndNullRows()
    {
        var ragged = new[] { new[] { 1.0, 2.0 }, new[] { 3.0 } };
        Assert.That(() => MlpReluD1().Kernel(ragged),
            Throws.ArgumentException.With.Property("ParamName").EqualTo("x1").And.Message.Contains("x1[1] has 1"));
        Assert.That(() => MlpReluD1().Kernel(new[] { new[] { 1.0 }, null! }),
            Throws.TypeOf<ArgumentNullException>().With.Property("ParamName").EqualTo("x1"));
        // No rows: named as such, not as inputs with zero channels.
        Assert.That(() => MlpReluD1().Kernel(Array.Empty<double[]>()),
            Throws.ArgumentException.With.Property("ParamName").EqualTo("x1").And.Message.Contains("no rows (batch size 0)"));
    }

    [Test]
    public void Kernel_OnFloats_EqualsTheDoubleKernelOfTheSameValues()
    {
        // Multiples of 1/8 are exact in float and double, so both overloads see the same numbers.
        float[,] xf = { { 1.0f, -0.5f, 0.25f }, { 0.375f, 2.0f, -1.125f } };
        double[,] xd = { { 1.0, -0.5, 0.25 }, { 0.375, 2.0, -1.125 } };
        var kf = MlpReluD1().Kernel(xf);
        var kd = MlpReluD1().Kernel(xd);
        Assert.That(kf.Nngp, Is.EqualTo(kd.Nngp));
        Assert.That(kf.Ntk, Is.EqualTo(kd.Ntk));
    }

    [Test]
    public void Predict_WithOneDimensionalTargets_EqualsTheOneColumnMatrix()
    {
        var net = new NetworkBuilder().Dense(256, wStd: 1.4, bStd: 0.1).Relu().Dense(1, wStd: 1.4, bStd: 0.1).Build();
        double[,] xTrain = { { 1.0, 0.2 }, { -0.3, 0.8 }, { 0.5, -0.5 } };
        double[,] xTest = { { 0.4, 0.4 } };
        var p1 = Ensemble.Predict(net, xTrain, new[] { 1.0, -1.0, 0.5 }, xTest, computeCov: true, diagReg: 1e-3);
        var p2 = Ensemble.Predict(net, xTrain, new[,] { { 1.0 }, { -1.0 }, { 0.5 } }, xTest, computeCov: true, diagReg: 1e-3);
        Assert.That(p1.Ntk[0].Mean, Is.EqualTo(p2.Ntk[0].Mean));
        Assert.That(p1.Nngp[0].Covariance, Is.EqualTo(p2.Nngp[0].Covariance));
        Assert.That(() => Ensemble.Predict(net, xTrain, (double[])null!),
            Throws.TypeOf<ArgumentNullException>().With.Property("ParamName").EqualTo("yTrain"));
    }
}

/// <summary>Ensemble.PredictNtkGp: the NTK-GP posterior of a network.</summary>
[TestFixture]
public class NtkGpPredictionTests
{
    private static readonly Network Net = new NetworkBuilder().Dense(256, wStd: 1.4, bStd: 0.1).Relu().Dense(1, wStd: 1.4, bStd: 0.1).Build();
    private static readonly double[,] XTrain = { { 1.0, 0.2 }, { -0.3, 0.8 }, { 0.5, -0.5 }, { 0.0, 1.0 } };
    private static readonly double[,] YTrain = { { 1.0 }, { -1.0 }, { 0.5 }, { 0.2 } };
    private static readonly double[,] XTest = { { 0.4, 0.4 }, { -1.0, 0.1 } };

    [Test]
    public void NtkGpMean_EqualsTheNtkEnsembleMeanAtInfiniteTime()
    {
        // Both means are Θ*·(Θ + λI)⁻¹·y, reached through different code paths (the GP formulas vs the ensemble).
        var gp = Ensemble.PredictNtkGp(Net, XTrain, YTrain, XTest, diagReg: 1e-3);
        var ens = Ensemble.Predict(Net, XTrain, YTrain, XTest, diagReg: 1e-3);
        TestUtil.AssertClose("mean", 1e-12, ens.Ntk[0].Mean, gp.Mean);
        Assert.That(gp.Covariance, Is.Null);
    }

    [Test]
    public void NtkGpCovariance_IsTheNtkSchurComplement_AndVanishesOnTheTrainingSet()
    {
        var gp = Ensemble.PredictNtkGp(Net, XTrain, YTrain, XTest, computeCov: true);
        var k = Net.Kernel(XTest, XTrain, KernelOutputs.Ntk).Ntk!;
        var kss = Net.Kernel(XTest, null, KernelOutputs.Ntk).Ntk!;
        var expected = Predictors.NtkGpPosterior(Net.Kernel(XTrain, null, KernelOutputs.Ntk).Ntk!, YTrain, k, kss);
        TestUtil.AssertClose("covariance", 1e-12, expected.Covariance!, gp.Covariance!);
        // Without a ridge the posterior interpolates: on the training inputs (passed as xTest; a null xTest is
        // neural_tangents' N(y, 0) without any solve) the covariance is zero to round-off.
        var onTrain = Ensemble.PredictNtkGp(Net, XTrain, YTrain, XTrain, computeCov: true);
        Assert.That(onTrain.Covariance!.Cast<double>().Max(Math.Abs), Is.LessThan(1e-9));
        TestUtil.AssertClose("interpolation", 1e-9, YTrain, onTrain.Mean);
    }
}
