using NUnit.Framework;

namespace NeuralTangents.CSharp.Tests;

/// <summary>Ensemble.Predict's cancellation token and progress reports (issue #9 item 5): a cancelled token stops
/// the prediction with OperationCanceledException, progress names the big steps in order, and asking for
/// either changes no number.</summary>
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
}
