using NUnit.Framework;

namespace NeuralTangents.CSharp.Tests;

/// <summary>Ensemble.Predict (kernels from the network, then nt.predict) against the posterior formulas applied to
/// kernels the test computes itself with Network.Kernel.</summary>
[TestFixture]
public class EnsembleTests
{
    private static readonly Network Net = new NetworkBuilder().Dense(256, wStd: 1.4, bStd: 0.1).Relu().Dense(1, wStd: 1.4, bStd: 0.1).Build();
    private static readonly double[,] XTrain = { { 1.0, 0.2 }, { -0.3, 0.8 }, { 0.5, -0.5 }, { 0.0, 1.0 } };
    private static readonly double[,] YTrain = { { 1.0 }, { -1.0 }, { 0.5 }, { 0.2 } };
    private static readonly double[,] XTest = { { 0.4, 0.4 }, { -1.0, 0.1 } };

    [Test]
    public void Predict_AtInfiniteTime_EqualsThePosteriorsOfTheNetworksKernels()
    {
        var p = Ensemble.Predict(Net, XTrain, YTrain, XTest, computeCov: true, diagReg: 1e-3);
        var train = Net.Kernel(XTrain);
        var testTrain = Net.Kernel(XTest, XTrain);
        var testTest = Net.Kernel(XTest);
        var nngp = Predictors.NngpPosterior(train.Nngp, YTrain, testTrain.Nngp, testTest.Nngp, diagReg: 1e-3);
        var ntk = Predictors.NtkEnsemblePosterior(train.Nngp, train.Ntk!, YTrain, testTrain.Nngp, testTrain.Ntk!,
            testTest.Nngp, diagReg: 1e-3);
        Assert.That(p.Times, Is.Null);
        Assert.That(p.Nngp, Has.Length.EqualTo(1));
        // Same kernels, same solves: equal up to round-off in the order of operations.
        TestUtil.AssertClose("nngp mean", 1e-12, nngp.Mean, p.Nngp[0].Mean);
        TestUtil.AssertClose("nngp cov", 1e-12, nngp.Covariance!, p.Nngp[0].Covariance!);
        TestUtil.AssertClose("ntk mean", 1e-12, ntk.Mean, p.Ntk[0].Mean);
        TestUtil.AssertClose("ntk cov", 1e-12, ntk.Covariance!, p.Ntk[0].Covariance!);
    }

    [Test]
    public void Predict_AtTimes_StartsAtThePriorAndGivesOneResultPerTime()
    {
        var p = Ensemble.Predict(Net, XTrain, YTrain, XTest, times: new[] { 0.0, 5.0, 50.0 });
        Assert.That(p.Ntk, Has.Length.EqualTo(3));
        Assert.That(p.Times, Is.EqualTo(new[] { 0.0, 5.0, 50.0 }));
        // t = 0: the untrained ensemble has mean zero.
        Assert.That(p.Ntk[0].Mean[0, 0], Is.EqualTo(0.0));
        Assert.That(p.Ntk[2].Mean[0, 0], Is.Not.EqualTo(0.0));
        Assert.That(p.Ntk[0].Covariance, Is.Null);
    }

    [Test]
    public void Predict_ChecksItsArguments()
    {
        Assert.That(() => Ensemble.Predict(null!, XTrain, YTrain), Throws.TypeOf<ArgumentNullException>().With.Property("ParamName").EqualTo("network"));
        Assert.That(() => Ensemble.Predict(Net, null!, YTrain), Throws.TypeOf<ArgumentNullException>().With.Property("ParamName").EqualTo("xTrain"));
        Assert.That(() => Ensemble.Predict(Net, XTrain, null!), Throws.TypeOf<ArgumentNullException>().With.Property("ParamName").EqualTo("yTrain"));
        Assert.That(() => Ensemble.Predict(Net, XTrain, YTrain, learningRate: -1.0), Throws.InstanceOf<ArgumentException>());
    }

    [Test]
    public void Predict_PositiveInfinityAmongTimesIsTheInfiniteTimePrediction()
    {
        var atInfinity = Ensemble.Predict(Net, XTrain, YTrain, XTest, computeCov: true, diagReg: 1e-3);
        var p = Ensemble.Predict(Net, XTrain, YTrain, XTest, times: new[] { 5.0, double.PositiveInfinity, 0.0 },
            computeCov: true, diagReg: 1e-3);
        Assert.That(p.Times, Is.EqualTo(new[] { 5.0, double.PositiveInfinity, 0.0 }));
        Assert.That(p.Ntk, Has.Length.EqualTo(3));
        TestUtil.AssertClose("ntk mean at ∞", 1e-12, atInfinity.Ntk[0].Mean, p.Ntk[1].Mean);
        TestUtil.AssertClose("ntk cov at ∞", 1e-12, atInfinity.Ntk[0].Covariance!, p.Ntk[1].Covariance!);
        TestUtil.AssertClose("nngp mean at ∞", 1e-12, atInfinity.Nngp[0].Mean, p.Nngp[1].Mean);
        // The finite times keep their places: t = 0 is the untrained ensemble (mean zero).
        Assert.That(p.Ntk[2].Mean[0, 0], Is.EqualTo(0.0));
        var finite = Ensemble.Predict(Net, XTrain, YTrain, XTest, times: new[] { 5.0 }, computeCov: true, diagReg: 1e-3);
        TestUtil.AssertClose("ntk mean at 5", 1e-12, finite.Ntk[0].Mean, p.Ntk[0].Mean);
    }

    [Test]
    public void Predict_BadTimesAndRatesAreReportedInCSharpTerms()
    {
        var ex = Assert.Throws<ArgumentException>(() => Ensemble.Predict(Net, XTrain, YTrain, times: new[] { -1.0 }))!;
        Assert.That(ex.ParamName, Is.EqualTo("times"));
        Assert.That(ex.Message, Does.Not.Contain("None"));
        var lr = Assert.Throws<ArgumentException>(() => Ensemble.Predict(Net, XTrain, YTrain, learningRate: double.NaN))!;
        Assert.That(lr.ParamName, Is.EqualTo("learningRate"));
    }
}
