using NUnit.Framework;

namespace NeuralTangents.CSharp.Tests;

/// <summary>Ensemble.Predict's and Ensemble.PredictNtkGp's cancellation token, progress reports and kernel tiling
/// (issue #9 item 5): a cancelled token stops the prediction with OperationCanceledException, progress names the big
/// steps in order, asking for either changes no number, the kernels are computed in tiles within the memory budget
/// (any tile size gives the same predictions to round-off; a budget too small for one tile is refused).
/// Tolerance of the tiling comparisons: the tiles' kernel entries are the untiled ones up to differently blocked
/// dot products (a few ε), and the solves of these well-conditioned 4×4 kernels (diagReg 1e-3) amplify that by
/// κ ≲ 1e4, so 1e-10 relative is ample and still far below any real difference.</summary>
[TestFixture]
public class EnsembleControlTests
{
    private static readonly Network Net = new NetworkBuilder().Dense(64, wStd: 1.4, bStd: 0.1).Relu().Dense(1, wStd: 1.4, bStd: 0.1).Build();
    private static readonly double[,] XTrain = { { 1.0, 0.2 }, { -0.3, 0.8 }, { 0.5, -0.5 }, { 0.0, 1.0 } };
    private static readonly double[,] YTrain = { { 1.0 }, { -1.0 }, { 0.5 }, { 0.2 } };
    private static readonly double[,] XTest = { { 0.4, 0.4 }, { -1.0, 0.1 } };

    /// <summary>Reports collected synchronously (System.Progress would post them to the thread pool).</summary>
    private sealed class Recorder : IProgress<PredictionProgress>
    {
        public List<PredictionProgress> Seen { get; } = new();

        public Action<PredictionProgress>? OnReport { get; init; }

        public void Report(PredictionProgress value)
        {
            Seen.Add(value);
            OnReport?.Invoke(value);
        }
    }

    [Test]
    public void Predict_WithACancelledToken_ThrowsOperationCanceled()
    {
        using var cts = new CancellationTokenSource();
        cts.Cancel();
        Assert.Throws<OperationCanceledException>(() =>
            Ensemble.Predict(Net, XTrain, YTrain, XTest, computeCov: true, diagReg: 1e-3, cancellationToken: cts.Token));
    }

    [Test]
    public void Predict_CancelledFromAProgressReport_StopsAtTheNextStep()
    {
        using var cts = new CancellationTokenSource();
        var recorder = new Recorder { OnReport = p => { if (p.StepsDone == 2) cts.Cancel(); } };
        Assert.Throws<OperationCanceledException>(() =>
            Ensemble.Predict(Net, XTrain, YTrain, XTest, computeCov: true, diagReg: 1e-3,
                cancellationToken: cts.Token, progress: recorder));
        Assert.That(recorder.Seen, Has.Count.EqualTo(2));
    }

    [Test]
    public void Predict_ReportsEveryBigStepInOrder_AndTheSameNumbers()
    {
        var recorder = new Recorder();
        var withProgress = Ensemble.Predict(Net, XTrain, YTrain, XTest, computeCov: true, diagReg: 1e-3, progress: recorder);
        var plain = Ensemble.Predict(Net, XTrain, YTrain, XTest, computeCov: true, diagReg: 1e-3);
        var steps = recorder.Seen.Select(p => p.Step).ToList();
        Assert.That(recorder.Seen.Select(p => p.StepsDone), Is.EqualTo(Enumerable.Range(1, steps.Count)));
        Assert.That(steps, Does.Contain("Cholesky factor of the NNGP"));
        Assert.That(steps, Does.Contain("Cholesky factor of the NTK"));
        Assert.That(steps, Does.Contain("test–train kernel"));
        Assert.That(steps.IndexOf("NNGP train–train kernel"), Is.LessThan(steps.IndexOf("Cholesky factor of the NNGP")));
        Assert.That(steps[^1], Is.EqualTo("Ntk covariance"));
        Assert.That(recorder.Seen.Zip(recorder.Seen.Skip(1)).All(p => p.First.Elapsed <= p.Second.Elapsed), Is.True);
        Assert.That(withProgress.Ntk[0].Covariance, Is.EqualTo(plain.Ntk[0].Covariance));
        Assert.That(withProgress.Nngp[0].Mean, Is.EqualTo(plain.Nngp[0].Mean));
    }

    [Test]
    public void Predict_InTilesOfOneInput_EqualsTheDefaultTiling()
    {
        var tiled = Ensemble.Predict(Net, XTrain, YTrain, XTest, computeCov: true, diagReg: 1e-3,
            tiling: TilingOptions.Default.WithBatchSize(1));
        var plain = Ensemble.Predict(Net, XTrain, YTrain, XTest, computeCov: true, diagReg: 1e-3);
        TestUtil.AssertClose("nngp mean", 1e-10, plain.Nngp[0].Mean, tiled.Nngp[0].Mean);
        TestUtil.AssertClose("nngp cov", 1e-10, plain.Nngp[0].Covariance!, tiled.Nngp[0].Covariance!);
        TestUtil.AssertClose("ntk mean", 1e-10, plain.Ntk[0].Mean, tiled.Ntk[0].Mean);
        TestUtil.AssertClose("ntk cov", 1e-10, plain.Ntk[0].Covariance!, tiled.Ntk[0].Covariance!);
    }

    [Test]
    public void Predict_WithABudgetTooSmallForOneTile_IsRefusedWithTheNumbers()
    {
        var ex = Assert.Throws<InvalidOperationException>(() =>
            Ensemble.Predict(Net, XTrain, YTrain, XTest, diagReg: 1e-3, tiling: TilingOptions.Default.WithMemoryGb(1e-9)))!;
        Assert.That(ex.Message, Does.Contain("cannot be computed within"));
        Assert.That(ex.Message, Does.Contain("TilingOptions.WithMemoryGb"));
    }

    [Test]
    public void PredictNtkGp_WithACancelledToken_ThrowsOperationCanceled()
    {
        using var cts = new CancellationTokenSource();
        cts.Cancel();
        Assert.Throws<OperationCanceledException>(() =>
            Ensemble.PredictNtkGp(Net, XTrain, YTrain, XTest, computeCov: true, diagReg: 1e-3, cancellationToken: cts.Token));
    }

    [Test]
    public void PredictNtkGp_CancelledFromAProgressReport_StopsAtTheNextStep()
    {
        using var cts = new CancellationTokenSource();
        var recorder = new Recorder { OnReport = p => { if (p.StepsDone == 1) cts.Cancel(); } };
        Assert.Throws<OperationCanceledException>(() =>
            Ensemble.PredictNtkGp(Net, XTrain, YTrain, XTest, computeCov: true, diagReg: 1e-3,
                cancellationToken: cts.Token, progress: recorder));
        Assert.That(recorder.Seen.Select(p => p.Step), Is.EqualTo(new[] { "test–train kernel" }));
    }

    [Test]
    public void PredictNtkGp_ReportsEveryBigStepInOrder_AndTheSameNumbers()
    {
        var recorder = new Recorder();
        var withProgress = Ensemble.PredictNtkGp(Net, XTrain, YTrain, XTest, computeCov: true, diagReg: 1e-3, progress: recorder);
        var plain = Ensemble.PredictNtkGp(Net, XTrain, YTrain, XTest, computeCov: true, diagReg: 1e-3);
        Assert.That(recorder.Seen.Select(p => p.Step), Is.EqualTo(new[]
        {
            "test–train kernel", "test–test kernel", "NTK train–train kernel", "Cholesky factor of the NTK", "NtkGp mean",
            "NtkGp covariance",
        }));
        Assert.That(recorder.Seen.Select(p => p.StepsDone), Is.EqualTo(Enumerable.Range(1, 6)));
        Assert.That(withProgress.Mean, Is.EqualTo(plain.Mean));
        Assert.That(withProgress.Covariance, Is.EqualTo(plain.Covariance));
    }

    [Test]
    public void PredictNtkGp_InTilesOfOneInput_EqualsTheDefaultTiling_AndTheSchurComplement()
    {
        var tiled = Ensemble.PredictNtkGp(Net, XTrain, YTrain, XTest, computeCov: true, diagReg: 1e-3,
            tiling: TilingOptions.Default.WithBatchSize(1));
        var plain = Ensemble.PredictNtkGp(Net, XTrain, YTrain, XTest, computeCov: true, diagReg: 1e-3);
        TestUtil.AssertClose("mean", 1e-10, plain.Mean, tiled.Mean);
        TestUtil.AssertClose("cov", 1e-10, plain.Covariance!, tiled.Covariance!);
        // Against the posterior of untiled kernels (Predictors, whose solves are independent of the tiled path).
        var k = Net.Kernel(XTest, XTrain, KernelOutputs.Ntk).Ntk!;
        var kss = Net.Kernel(XTest, null, KernelOutputs.Ntk).Ntk!;
        var expected = Predictors.NtkGpPosterior(Net.Kernel(XTrain, null, KernelOutputs.Ntk).Ntk!, YTrain, k, kss, diagReg: 1e-3);
        TestUtil.AssertClose("mean vs untiled", 1e-10, expected.Mean, tiled.Mean);
        TestUtil.AssertClose("cov vs untiled", 1e-10, expected.Covariance!, tiled.Covariance!);
    }

    [Test]
    public void PredictNtkGp_WithABudgetTooSmallForOneTile_IsRefused()
    {
        var ex = Assert.Throws<InvalidOperationException>(() =>
            Ensemble.PredictNtkGp(Net, XTrain, YTrain, XTest, tiling: TilingOptions.Default.WithMemoryGb(1e-9)))!;
        Assert.That(ex.Message, Does.Contain("cannot be computed within"));
    }
}
