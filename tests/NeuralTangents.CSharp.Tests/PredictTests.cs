using NeuralTangents.CSharp;
using NUnit.Framework;

namespace NeuralTangents.CSharp.Tests;

/// <summary>The C# predict façade: hand-computed closed forms on 2 training points, agreement with the F# core,
/// and the null checks at the boundary.</summary>
public class PredictTests
{
    // K = [[2, 1], [1, 2]], K⁻¹ = [[2, −1], [−1, 2]]/3; y = [1, 0]ᵀ; K* = [1, 0.5]; K** = 1.5.
    // mean = K*·K⁻¹·y = [1, 0.5]·[2, −1]ᵀ/3 = 0.5; covariance = 1.5 − K*·K⁻¹·K*ᵀ = 1.5 − 0.5 = 1.0.
    private static readonly double[,] K = { { 2.0, 1.0 }, { 1.0, 2.0 } };
    private static readonly double[,] Y = { { 1.0 }, { 0.0 } };
    private static readonly double[,] Kst = { { 1.0, 0.5 } };
    private static readonly double[,] Kss = { { 1.5 } };

    [Test]
    public void NngpPosteriorMatchesHandComputedClosedForm()
    {
        var p = Predictors.NngpPosterior(K, Y, Kst, Kss);
        Assert.That(p.Mean[0, 0], Is.EqualTo(0.5).Within(1e-14));
        Assert.That(p.Covariance![0, 0], Is.EqualTo(1.0).Within(1e-14));
        Assert.That(Predictors.NngpPosterior(K, Y, Kst).Covariance, Is.Null);
    }

    [Test]
    public void AbsoluteRidgeEntersTheInverse()
    {
        // K + I = [[3, 1], [1, 3]], inverse [[3, −1], [−1, 3]]/8: mean = [1, 0.5]·[3, −1]ᵀ/8 = 2.5/8.
        var p = Predictors.NngpPosterior(K, Y, Kst, diagReg: 1.0, diagRegAbsoluteScale: true);
        Assert.That(p.Mean[0, 0], Is.EqualTo(2.5 / 8.0).Within(1e-14));
        // Relative: 0.5 · mean diagonal (2) = 1, the same ridge.
        var q = Predictors.NngpPosterior(K, Y, Kst, diagReg: 0.5);
        Assert.That(q.Mean[0, 0], Is.EqualTo(2.5 / 8.0).Within(1e-14));
    }

    [Test]
    public void NtkEnsembleMatchesHandComputedFormula()
    {
        // Θ = 2K: Θ⁻¹ = K⁻¹/2, Θ* = 2K*. Mean = Θ*·Θ⁻¹·y = K*·K⁻¹·y = 0.5.
        // Cov = K** + Θ*Θ⁻¹KΘ⁻¹Θ*ᵀ − 2·Θ*Θ⁻¹K*ᵀ = 1.5 + K*K⁻¹K*ᵀ − 2·K*K⁻¹K*ᵀ = 1.5 − 0.5 = 1.0.
        var theta = new double[,] { { 4.0, 2.0 }, { 2.0, 4.0 } };
        var thetaSt = new double[,] { { 2.0, 1.0 } };
        var p = Predictors.NtkEnsemblePosterior(K, theta, Y, Kst, thetaSt, Kss);
        Assert.That(p.Mean[0, 0], Is.EqualTo(0.5).Within(1e-14));
        Assert.That(p.Covariance![0, 0], Is.EqualTo(1.0).Within(1e-13));
        var gp = Predictors.NtkGpPosterior(theta, Y, thetaSt, new double[,] { { 3.0 } });
        // NTKGP: 3 − Θ*Θ⁻¹Θ*ᵀ = 3 − 2·0.5 = 2.
        Assert.That(gp.Covariance![0, 0], Is.EqualTo(2.0).Within(1e-13));
    }

    [Test]
    public void GradientDescentMseStartsAtInitialOutputsAndConverges()
    {
        var f0 = new double[,] { { 0.3 }, { -0.2 } };
        var ft0 = new double[,] { { 0.1 } };
        var traj = Predictors.GradientDescentMse(K, Y, Kst, new[] { 0.0, 1e4 }, f0, ft0, learningRate: 1.0);
        Assert.That(traj.Train[0][1, 0], Is.EqualTo(-0.2).Within(1e-15));
        Assert.That(traj.Test[0][0, 0], Is.EqualTo(0.1).Within(1e-15));
        // t → ∞: train → y; test → f*₀ + K*K⁻¹(y − f₀) with K⁻¹·[0.7, 0.2]ᵀ = [1.2, −0.3]ᵀ/3 = [0.4, −0.1]ᵀ,
        // so 0.1 + [1, 0.5]·[0.4, −0.1]ᵀ = 0.1 + 0.35 = 0.45.
        // The slowest mode decays as e^{−λmin·t/NK} = e^{−1e4/2}: negligible.
        Assert.That(traj.Train[1][0, 0], Is.EqualTo(1.0).Within(1e-12));
        Assert.That(traj.Test[1][0, 0], Is.EqualTo(0.45).Within(1e-12));
    }

    [Test]
    public void MaxLearningRateIsTwoSizeOverLargestEigenvalue()
    {
        // eigenvalues of K are 1 and 3
        Assert.That(Predictors.MaxLearningRate(K, eps: 0.0), Is.EqualTo(2.0 * 2.0 / 3.0).Within(1e-14));
        Assert.That(Predictors.MaxLearningRate(K, yTrainSize: 6, momentum: 0.5, eps: 0.0), Is.EqualTo(2.0 * 1.5 * 6.0 / 3.0).Within(1e-13));
    }

    [Test]
    public void NullArgumentsAreRejectedByName()
    {
        Assert.That(Assert.Throws<ArgumentNullException>(() => Predictors.NngpPosterior(null!, Y, Kst))!.ParamName, Is.EqualTo("nngpTrainTrain"));
        Assert.That(Assert.Throws<ArgumentNullException>(() => Predictors.NngpPosterior(K, null!, Kst))!.ParamName, Is.EqualTo("yTrain"));
        Assert.That(Assert.Throws<ArgumentNullException>(() => Predictors.NngpPosterior(K, Y, null!))!.ParamName, Is.EqualTo("nngpTestTrain"));
        Assert.That(Assert.Throws<ArgumentNullException>(() => Predictors.NtkGpPosterior(null!, Y, Kst))!.ParamName, Is.EqualTo("ntkTrainTrain"));
        Assert.That(Assert.Throws<ArgumentNullException>(() => Predictors.NtkEnsemblePosterior(K, null!, Y, Kst, Kst))!.ParamName, Is.EqualTo("ntkTrainTrain"));
        Assert.That(Assert.Throws<ArgumentNullException>(() => Predictors.GradientDescentMse(K, Y, Kst, null!))!.ParamName, Is.EqualTo("times"));
        Assert.That(Assert.Throws<ArgumentNullException>(() => Predictors.MaxLearningRate(null!))!.ParamName, Is.EqualTo("ntkTrainTrain"));
    }

    [Test]
    public void SingularKernelRaisesInvalidOperationExceptionSuggestingDiagReg()
    {
        var singular = new double[,] { { 1.0, 1.0 }, { 1.0, 1.0 } };
        var ex = Assert.Throws<InvalidOperationException>(() => Predictors.NngpPosterior(singular, Y, Kst));
        // The advice names the C# parameter, not neural_tangents' diag_reg.
        Assert.That(ex!.Message, Does.Contain("diagReg"));
        Assert.That(ex.Message, Does.Not.Contain("diag_reg"));
        Assert.DoesNotThrow(() => Predictors.NngpPosterior(singular, Y, Kst, diagReg: 1e-3));
    }

    [Test]
    public void GradientDescentMse_InfiniteTimeIsTheLimit()
    {
        // At t = ∞ the train outputs are y and the test outputs K*·K⁻¹·y = 0.5 (the closed form above).
        var r = Predictors.GradientDescentMse(K, Y, Kst, new[] { 0.0, double.PositiveInfinity, 1e6 });
        Assert.That(r.Train, Has.Length.EqualTo(3));
        Assert.That(r.Train[0][0, 0], Is.EqualTo(0.0));
        Assert.That(r.Train[1][0, 0], Is.EqualTo(1.0).Within(1e-14));
        Assert.That(r.Test[1][0, 0], Is.EqualTo(0.5).Within(1e-14));
        // A long finite time approaches the limit.
        Assert.That(r.Test[2][0, 0], Is.EqualTo(0.5).Within(1e-9));
    }

    [Test]
    public void BadTimesAreRejectedInCSharpTerms()
    {
        foreach (var bad in new[] { -1.0, double.NaN, double.NegativeInfinity })
        {
            var ex = Assert.Throws<ArgumentException>(() => Predictors.GradientDescentMse(K, Y, Kst, new[] { 1.0, bad }))!;
            Assert.That(ex.ParamName, Is.EqualTo("times"));
            Assert.That(ex.Message, Does.Contain("times[1]"));
            Assert.That(ex.Message, Does.Not.Contain("None"));
        }
    }

    [Test]
    public void CoreErrorsSpeakCSharp()
    {
        // A mismatched test–train kernel: the core calls it kTestTrain; the C# parameter is nngpTestTrain.
        var ex = Assert.Throws<ArgumentException>(() => Predictors.NngpPosterior(K, Y, new double[,] { { 1.0, 0.5, 0.2 } }))!;
        Assert.That(ex.ParamName, Is.EqualTo("nngpTestTrain"));
        Assert.That(ex.Message, Does.Not.Contain("None").And.Not.Contain("[|"));
        var lr = Assert.Throws<ArgumentException>(() => Predictors.GradientDescentMse(K, Y, Kst, new[] { 1.0 }, learningRate: 0.0))!;
        Assert.That(lr.ParamName, Is.EqualTo("learningRate"));
    }
}
