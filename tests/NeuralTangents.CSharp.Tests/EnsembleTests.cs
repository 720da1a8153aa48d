using NUnit.Framework;

namespace NeuralTangents.CSharp.Tests;

/// <summary>Ensemble.Predict (kernels from the network, then nt.predict): against posteriors solved by hand for a
/// one-layer network whose kernels are closed forms (independent of the core), and for consistency against the
/// posterior formulas applied to kernels the test computes itself with Network.Kernel.</summary>
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
        Assert.That(() => Ensemble.Predict(Net, (double[,])null!, YTrain), Throws.TypeOf<ArgumentNullException>().With.Property("ParamName").EqualTo("xTrain"));
        Assert.That(() => Ensemble.Predict(Net, XTrain, (double[,])null!), Throws.TypeOf<ArgumentNullException>().With.Property("ParamName").EqualTo("yTrain"));
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

    // ---- Independent expected values: a one-layer network, whose kernels are closed forms in the inputs, and the
    // 2×2 algebra done here by hand (explicit inverse, closed-form exponential of a symmetric 2×2 matrix). ----

    // Dense(1, W_std = 1.5, b_std = 0.5) on C = 2 features: NNGP K(x, x′) = 1.5²·x·x′/2 + 0.5² in both
    // parameterizations. NTK: equal to K in the ntk parameterization (the input NTK is 0); (C/s0)·x·x′/C + 1 = x·x′ + 1
    // in the standard one (arXiv:2001.07301: the bias adds 1).
    private static readonly double[,] LinTrain = { { 1.0, 0.0 }, { 0.0, 2.0 } };
    private static readonly double[,] LinY = { { 1.0 }, { -2.0 } };
    private static readonly double[,] LinTest = { { 1.0, 1.0 }, { -1.0, 0.5 } };

    private static double LinNngp(double dot) => 2.25 * dot / 2.0 + 0.25;

    private static double[,] Gram(double[,] a, double[,] b, Func<double, double> f)
    {
        var g = new double[a.GetLength(0), b.GetLength(0)];
        for (var i = 0; i < a.GetLength(0); i++)
        {
            for (var j = 0; j < b.GetLength(0); j++)
            {
                g[i, j] = f(a[i, 0] * b[j, 0] + a[i, 1] * b[j, 1]);
            }
        }

        return g;
    }

    private static double[,] Mul(double[,] a, double[,] b)
    {
        var c = new double[a.GetLength(0), b.GetLength(1)];
        for (var i = 0; i < a.GetLength(0); i++)
        {
            for (var j = 0; j < b.GetLength(1); j++)
            {
                for (var k = 0; k < a.GetLength(1); k++)
                {
                    c[i, j] += a[i, k] * b[k, j];
                }
            }
        }

        return c;
    }

    private static double[,] Transpose(double[,] a)
    {
        var t = new double[a.GetLength(1), a.GetLength(0)];
        for (var i = 0; i < a.GetLength(0); i++)
        {
            for (var j = 0; j < a.GetLength(1); j++)
            {
                t[j, i] = a[i, j];
            }
        }

        return t;
    }

    private static double[,] Combine(double[,] a, double sa, double[,] b, double sb)
    {
        var c = new double[a.GetLength(0), a.GetLength(1)];
        for (var i = 0; i < a.GetLength(0); i++)
        {
            for (var j = 0; j < a.GetLength(1); j++)
            {
                c[i, j] = sa * a[i, j] + sb * b[i, j];
            }
        }

        return c;
    }

    /// <summary>[[a, b], [c, d]]⁻¹ = [[d, −b], [−c, a]] / (ad − bc).</summary>
    private static double[,] Inverse2(double[,] m)
    {
        var det = m[0, 0] * m[1, 1] - m[0, 1] * m[1, 0];
        return new[,] { { m[1, 1] / det, -m[0, 1] / det }, { -m[1, 0] / det, m[0, 0] / det } };
    }

    /// <summary>e^{−sA} for a symmetric 2×2 A with eigenvalues λ1 ≠ λ2 (Sylvester):
    /// (e^{−sλ1}·(A − λ2·I) − e^{−sλ2}·(A − λ1·I)) / (λ1 − λ2).</summary>
    private static double[,] ExpNeg2(double[,] a, double s)
    {
        var mid = (a[0, 0] + a[1, 1]) / 2.0;
        var rad = Math.Sqrt((a[0, 0] - a[1, 1]) * (a[0, 0] - a[1, 1]) / 4.0 + a[0, 1] * a[0, 1]);
        double l1 = mid + rad, l2 = mid - rad;
        var id = new[,] { { 1.0, 0.0 }, { 0.0, 1.0 } };
        return Combine(Combine(a, 1.0, id, -l2), Math.Exp(-s * l1) / (l1 - l2), Combine(a, 1.0, id, -l1), -Math.Exp(-s * l2) / (l1 - l2));
    }

    [Test]
    public void Predict_OneDenseLayer_EqualsTheHandSolvedTwoPointPosterior()
    {
        var net = new NetworkBuilder().Dense(1, wStd: 1.5, bStd: 0.5).Build();
        var k = Gram(LinTrain, LinTrain, LinNngp); // [[1.375, 0.25], [0.25, 4.75]], det 6.46875
        Assert.That(k[0, 0], Is.EqualTo(1.375));
        Assert.That(k[0, 1], Is.EqualTo(0.25));
        Assert.That(k[1, 1], Is.EqualTo(4.75));
        var kTestTrain = Gram(LinTest, LinTrain, LinNngp);
        var kTestTest = Gram(LinTest, LinTest, LinNngp);
        var gain = Mul(kTestTrain, Inverse2(k));
        var mean = Mul(gain, LinY);
        var cov = Combine(kTestTest, 1.0, Mul(gain, Transpose(kTestTrain)), -1.0);
        // Test point (1, 1): K* = [1.375, 2.5]; K⁻¹y = [4.75 + 0.5, −0.25 − 2.75]/6.46875 = [5.25, −3]/6.46875,
        // mean = (1.375·5.25 − 2.5·3)/6.46875 = −0.28125/6.46875.
        Assert.That(mean[0, 0], Is.EqualTo(-0.28125 / 6.46875).Within(1e-15));
        var p = Ensemble.Predict(net, LinTrain, LinY, LinTest, computeCov: true);
        TestUtil.AssertClose("nngp mean", 1e-13, mean, p.Nngp[0].Mean);
        TestUtil.AssertClose("nngp cov", 1e-13, cov, p.Nngp[0].Covariance!);
        // ntk parameterization: Θ = K, so the trained ensemble's posterior is the NNGP one.
        TestUtil.AssertClose("ntk mean", 1e-13, mean, p.Ntk[0].Mean);
        TestUtil.AssertClose("ntk cov", 1e-13, cov, p.Ntk[0].Covariance!);
    }

    [Test]
    public void Predict_StandardDense_NtkEnsembleEqualsTheHandSolvedFormula()
    {
        // Standard parameterization: same NNGP, Θ(x, x′) = x·x′ + 1. Trained ensemble at t = ∞ (arXiv:1902.06720):
        // mean Θ*·Θ⁻¹·y, covariance K** + Θ*Θ⁻¹·K·Θ⁻¹Θ*ᵀ − Θ*Θ⁻¹·K*ᵀ − (Θ*Θ⁻¹·K*ᵀ)ᵀ.
        var net = new NetworkBuilder().Dense(1, wStd: 1.5, bStd: 0.5, parameterization: DenseParameterization.Standard).Build();
        var k = Gram(LinTrain, LinTrain, LinNngp);
        var kTestTrain = Gram(LinTest, LinTrain, LinNngp);
        var kTestTest = Gram(LinTest, LinTest, LinNngp);
        var theta = Gram(LinTrain, LinTrain, d => d + 1.0); // [[2, 1], [1, 5]]
        var thetaTestTrain = Gram(LinTest, LinTrain, d => d + 1.0);
        var gain = Mul(thetaTestTrain, Inverse2(theta));
        var mean = Mul(gain, LinY);
        var cross = Mul(gain, Transpose(kTestTrain));
        var cov = Combine(Combine(kTestTest, 1.0, Mul(Mul(gain, k), Transpose(gain)), 1.0), 1.0,
            Combine(cross, 1.0, Transpose(cross), 1.0), -1.0);
        // Test point (1, 1): Θ* = [2, 3]; Θ⁻¹y = [5 + 2, −1 − 4]/9 = [7, −5]/9; mean = (14 − 15)/9 = −1/9.
        Assert.That(mean[0, 0], Is.EqualTo(-1.0 / 9.0).Within(1e-15));
        var p = Ensemble.Predict(net, LinTrain, LinY, LinTest, computeCov: true);
        TestUtil.AssertClose("ntk mean", 1e-13, mean, p.Ntk[0].Mean);
        TestUtil.AssertClose("ntk cov", 1e-13, cov, p.Ntk[0].Covariance!);
        var nngpGain = Mul(kTestTrain, Inverse2(k));
        TestUtil.AssertClose("nngp mean", 1e-13, Mul(nngpGain, LinY), p.Nngp[0].Mean);
    }

    [Test]
    public void Predict_AtFiniteTime_MeansEqualTheClosedFormWithA2x2Exponential()
    {
        // Gradient flow on MSE from a zero-mean ensemble: mean(t) = A*·A⁻¹·(I − e^{−ηt·A/(N·K)})·y with A = Θ for
        // the NTK ensemble and A = K for the NNGP one (arXiv:1902.06720 eq. 16), N = 2 points, K = 1 output, η = 0.5.
        var net = new NetworkBuilder().Dense(1, wStd: 1.5, bStd: 0.5, parameterization: DenseParameterization.Standard).Build();
        var k = Gram(LinTrain, LinTrain, LinNngp);
        var kTestTrain = Gram(LinTest, LinTrain, LinNngp);
        var theta = Gram(LinTrain, LinTrain, d => d + 1.0);
        var thetaTestTrain = Gram(LinTest, LinTrain, d => d + 1.0);
        const double eta = 0.5, t = 3.0;
        var s = eta * t / 2.0;
        var id = new[,] { { 1.0, 0.0 }, { 0.0, 1.0 } };
        double[,] MeanAt(double[,] a, double[,] aTestTrain) =>
            Mul(Mul(Mul(aTestTrain, Inverse2(a)), Combine(id, 1.0, ExpNeg2(a, s), -1.0)), LinY);
        var p = Ensemble.Predict(net, LinTrain, LinY, LinTest, times: new[] { 0.0, t }, learningRate: eta);
        TestUtil.AssertClose("ntk mean at t", 1e-12, MeanAt(theta, thetaTestTrain), p.Ntk[1].Mean);
        TestUtil.AssertClose("nngp mean at t", 1e-12, MeanAt(k, kTestTrain), p.Nngp[1].Mean);
        Assert.That(p.Ntk[0].Mean[0, 0], Is.EqualTo(0.0), "t = 0: the untrained ensemble's mean");
    }
}
