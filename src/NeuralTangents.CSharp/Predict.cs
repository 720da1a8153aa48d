using Microsoft.FSharp.Collections;
using Microsoft.FSharp.Core;

namespace NeuralTangents.CSharp;

/// <summary>A Gaussian over test outputs: mean (M, K) and, when asked for, covariance (M, M) shared by the K
/// output columns.</summary>
public sealed class PosteriorGaussian
{
    internal PosteriorGaussian(double[,] mean, double[,]? covariance)
    {
        Mean = mean;
        Covariance = covariance;
    }

    /// <summary>Mean outputs, (M, K).</summary>
    public double[,] Mean { get; }

    /// <summary>Covariance over test inputs, (M, M); null when no test–test kernel was given.</summary>
    public double[,]? Covariance { get; }
}

/// <summary>Outputs of a linearised network along gradient descent: one (rows, K) matrix per requested time.</summary>
public sealed class OutputTrajectory
{
    internal OutputTrajectory(double[][,] train, double[][,] test)
    {
        Train = train;
        Test = test;
    }

    /// <summary>Training-set outputs, one (N, K) matrix per time.</summary>
    public double[][,] Train { get; }

    /// <summary>Test-set outputs, one (M, K) matrix per time.</summary>
    public double[][,] Test { get; }
}

/// <summary>
/// Predictions of infinitely wide networks from precomputed kernels (neural_tangents' <c>nt.predict</c>):
/// NNGP, NTK-ensemble and NTKGP posteriors, closed-form MSE gradient descent, and the largest stable learning
/// rate. Kernels are (N1, N2) arrays; targets y are (N, K). Relative <c>diagReg</c> is scaled by the mean
/// diagonal of the train–train kernel unless <c>diagRegAbsoluteScale</c>.
/// </summary>
public static class Predictors
{
    private static Tensor T(double[,] a, string name) =>
        a is null ? throw new ArgumentNullException(name) : TensorModule.OfArray2D(a);

    private static FSharpOption<Tensor> Opt(double[,]? a) =>
        a is null ? FSharpOption<Tensor>.None : FSharpOption<Tensor>.Some(TensorModule.OfArray2D(a));

    private static double[,]? Arr(FSharpOption<Tensor> t) =>
        FSharpOption<Tensor>.get_IsSome(t) ? TensorModule.ToArray2D(t.Value) : null;

    private static double[][,] Slices(Tensor t)
    {
        int times = t.Shape[0], rows = t.Shape[1], cols = t.Shape[2];
        var result = new double[times][,];
        for (int s = 0; s < times; s++)
        {
            var m = new double[rows, cols];
            for (int i = 0; i < rows; i++)
                for (int j = 0; j < cols; j++)
                    m[i, j] = t.Data[(s * rows + i) * cols + j];
            result[s] = m;
        }
        return result;
    }

    private static PosteriorGaussian Posterior(
        Func<KernelMatrices> trainTrain, double[,] yTrain, Func<KernelMatrices> testTrain, Func<KernelMatrices?> testTest,
        PredictGet kind, double diagReg, bool diagRegAbsoluteScale, Func<string?, string?> names) =>
        Boundary.Call(
            () =>
            {
                var predict = Predict.GpInference(trainTrain(), T(yTrain, nameof(yTrain)), diagReg,
                    diagRegAbsoluteScale, ListModule.OfSeq(new[] { kind }));
                var tt = testTest();
                var testTestOpt = tt is null ? FSharpOption<KernelMatrices>.None : FSharpOption<KernelMatrices>.Some(tt);
                var result = FSharpFunc<FSharpOption<KernelMatrices>, FSharpOption<KernelMatrices>>.InvokeFast(
                    predict, FSharpOption<KernelMatrices>.Some(testTrain()), testTestOpt)[kind];
                return new PosteriorGaussian(TensorModule.ToArray2D(result.Mean), Arr(result.Covariance));
            },
            names);

    /// <summary>NNGP posterior (exact Bayesian inference in the infinite network):
    /// mean K*·(K + λI)⁻¹·y, covariance K** − K*·(K + λI)⁻¹·K*ᵀ.</summary>
    /// <param name="nngpTrainTrain">NNGP train–train (N, N).</param>
    /// <param name="yTrain">Targets (N, K).</param>
    /// <param name="nngpTestTrain">NNGP test–train (M, N).</param>
    /// <param name="nngpTestTest">NNGP test–test (M, M), or null for the mean only.</param>
    /// <param name="diagReg">Ridge λ (relative unless <paramref name="diagRegAbsoluteScale"/>).</param>
    /// <param name="diagRegAbsoluteScale">True for an absolute ridge.</param>
    /// <exception cref="ArgumentNullException">when a required array is null.</exception>
    /// <exception cref="ArgumentException">on mismatched shapes or a negative ridge.</exception>
    /// <exception cref="InvalidOperationException">when the train–train kernel is not positive definite.</exception>
    public static PosteriorGaussian NngpPosterior(
        double[,] nngpTrainTrain, double[,] yTrain, double[,] nngpTestTrain, double[,]? nngpTestTest = null,
        double diagReg = 0.0, bool diagRegAbsoluteScale = false)
    {
        var train = KernelMatricesModule.OfNngp(T(nngpTrainTrain, nameof(nngpTrainTrain)));
        var testTrain = KernelMatricesModule.OfNngp(T(nngpTestTrain, nameof(nngpTestTrain)));
        return Posterior(() => train, yTrain, () => testTrain,
            () => nngpTestTest is null ? null : KernelMatricesModule.OfNngp(TensorModule.OfArray2D(nngpTestTest)),
            PredictGet.Nngp, diagReg, diagRegAbsoluteScale,
            Boundary.Names(("kTrainTrain", nameof(nngpTrainTrain)), ("kTestTrain", nameof(nngpTestTrain)),
                ("kTestTest", nameof(nngpTestTest))));
    }

    /// <summary>NTKGP posterior (arXiv:2007.05864): the NNGP formulas with the NTK as the prior covariance.</summary>
    /// <param name="ntkTrainTrain">NTK train–train (N, N).</param>
    /// <param name="yTrain">Targets (N, K).</param>
    /// <param name="ntkTestTrain">NTK test–train (M, N).</param>
    /// <param name="ntkTestTest">NTK test–test (M, M), or null for the mean only.</param>
    /// <param name="diagReg">Ridge λ (relative unless <paramref name="diagRegAbsoluteScale"/>).</param>
    /// <param name="diagRegAbsoluteScale">True for an absolute ridge.</param>
    /// <exception cref="ArgumentNullException">when a required array is null.</exception>
    public static PosteriorGaussian NtkGpPosterior(
        double[,] ntkTrainTrain, double[,] yTrain, double[,] ntkTestTrain, double[,]? ntkTestTest = null,
        double diagReg = 0.0, bool diagRegAbsoluteScale = false)
    {
        var train = KernelMatricesModule.OfNtk(T(ntkTrainTrain, nameof(ntkTrainTrain)));
        var testTrain = KernelMatricesModule.OfNtk(T(ntkTestTrain, nameof(ntkTestTrain)));
        return Posterior(() => train, yTrain, () => testTrain,
            () => ntkTestTest is null ? null : KernelMatricesModule.OfNtk(TensorModule.OfArray2D(ntkTestTest)),
            PredictGet.NtkGp, diagReg, diagRegAbsoluteScale,
            Boundary.Names(("kTrainTrain", nameof(ntkTrainTrain)), ("kTestTrain", nameof(ntkTestTrain)),
                ("kTestTest", nameof(ntkTestTest))));
    }

    /// <summary>The infinite ensemble of infinitely wide networks trained on MSE to convergence
    /// (arXiv:1902.06720): mean Θ*·Θ⁻¹·y, covariance K** + Θ*·Θ⁻¹·K·Θ⁻¹·Θ*ᵀ − (Θ*·Θ⁻¹·K*ᵀ + transpose),
    /// with K the NNGP and Θ the NTK (Θ regularised by λ).</summary>
    /// <param name="nngpTrainTrain">NNGP train–train (N, N).</param>
    /// <param name="ntkTrainTrain">NTK train–train (N, N).</param>
    /// <param name="yTrain">Targets (N, K).</param>
    /// <param name="nngpTestTrain">NNGP test–train (M, N).</param>
    /// <param name="ntkTestTrain">NTK test–train (M, N).</param>
    /// <param name="nngpTestTest">NNGP test–test (M, M), or null for the mean only.</param>
    /// <param name="diagReg">Ridge λ (relative unless <paramref name="diagRegAbsoluteScale"/>).</param>
    /// <param name="diagRegAbsoluteScale">True for an absolute ridge.</param>
    /// <exception cref="ArgumentNullException">when a required array is null.</exception>
    public static PosteriorGaussian NtkEnsemblePosterior(
        double[,] nngpTrainTrain, double[,] ntkTrainTrain, double[,] yTrain,
        double[,] nngpTestTrain, double[,] ntkTestTrain, double[,]? nngpTestTest = null,
        double diagReg = 0.0, bool diagRegAbsoluteScale = false)
    {
        var train = KernelMatricesModule.OfBoth(T(nngpTrainTrain, nameof(nngpTrainTrain)), T(ntkTrainTrain, nameof(ntkTrainTrain)));
        var testTrain = KernelMatricesModule.OfBoth(T(nngpTestTrain, nameof(nngpTestTrain)), T(ntkTestTrain, nameof(ntkTestTrain)));
        // Both blocks travel under one core name; the NNGP one is named, as it is checked first.
        return Posterior(() => train, yTrain, () => testTrain,
            () => nngpTestTest is null ? null : KernelMatricesModule.OfNngp(TensorModule.OfArray2D(nngpTestTest)),
            PredictGet.Ntk, diagReg, diagRegAbsoluteScale,
            Boundary.Names(("kTrainTrain", nameof(nngpTrainTrain)), ("kTestTrain", nameof(nngpTestTrain)),
                ("kTestTest", nameof(nngpTestTest))));
    }

    /// <summary>Outputs of one linearised network trained by gradient flow on MSE, in closed form
    /// (neural_tangents' <c>gradient_descent_mse</c>), at each of <paramref name="times"/> (steps).</summary>
    /// <param name="kTrainTrain">Train–train NTK (N, N).</param>
    /// <param name="yTrain">Targets (N, K).</param>
    /// <param name="kTestTrain">Test–train NTK (M, N).</param>
    /// <param name="times">Times ≥ 0, in steps (absolute time = learning rate · t); <see cref="double.PositiveInfinity"/>
    /// for t = ∞ (train outputs y, test outputs by a solve).</param>
    /// <param name="fxTrain0">Initial train outputs (N, K), or null for zeros.</param>
    /// <param name="fxTest0">Initial test outputs (M, K), or null for zeros.</param>
    /// <param name="learningRate">Learning rate &gt; 0.</param>
    /// <param name="diagReg">Ridge (relative unless <paramref name="diagRegAbsoluteScale"/>).</param>
    /// <param name="diagRegAbsoluteScale">True for an absolute ridge.</param>
    /// <exception cref="ArgumentNullException">when a required array is null.</exception>
    public static OutputTrajectory GradientDescentMse(
        double[,] kTrainTrain, double[,] yTrain, double[,] kTestTrain, double[] times,
        double[,]? fxTrain0 = null, double[,]? fxTest0 = null, double learningRate = 1.0,
        double diagReg = 0.0, bool diagRegAbsoluteScale = false)
    {
        ArgumentNullException.ThrowIfNull(times);
        var ts = Boundary.Times(times, nameof(times));
        var kdd = T(kTrainTrain, nameof(kTrainTrain));
        var y = T(yTrain, nameof(yTrain));
        var ktd = T(kTestTrain, nameof(kTestTrain));
        return Boundary.Call(
            () =>
            {
                var predict = Predict.GradientDescentMse(kdd, y, learningRate, diagReg, diagRegAbsoluteScale);
                Outputs At(FSharpOption<double[]> t) =>
                    FSharpFunc<FSharpOption<double[]>, FSharpOption<Tensor>>.InvokeFast(
                        predict, t, Opt(fxTrain0), Opt(fxTest0), FSharpOption<Tensor>.Some(ktd));

                // The core takes finite times; +∞ entries are the t = ∞ outputs, computed once.
                var finite = ts.Where(double.IsFinite).ToArray();
                var atFinite = finite.Length > 0 ? At(FSharpOption<double[]>.Some(finite)) : null;
                var atInfinity = finite.Length < ts.Length ? At(FSharpOption<double[]>.None) : null;
                var finiteTrain = atFinite is null ? Array.Empty<double[,]>() : Slices(atFinite.Train);
                var finiteTest = atFinite is null ? Array.Empty<double[,]>() : Slices(atFinite.Test.Value);
                var train = new double[ts.Length][,];
                var test = new double[ts.Length][,];
                for (int i = 0, f = 0; i < ts.Length; i++)
                {
                    if (double.IsFinite(ts[i]))
                    {
                        train[i] = finiteTrain[f];
                        test[i] = finiteTest[f++];
                    }
                    else
                    {
                        train[i] = TensorModule.ToArray2D(atInfinity!.Train);
                        test[i] = TensorModule.ToArray2D(atInfinity.Test.Value);
                    }
                }

                return new OutputTrajectory(train, test);
            },
            Boundary.Names(("t", nameof(times))));
    }

    /// <summary>The largest learning rate for which gradient descent (with momentum) on MSE converges for the
    /// linearised network: 2·(1 + momentum)·size / (λ_max + eps) (neural_tangents' <c>max_learning_rate</c>).</summary>
    /// <param name="ntkTrainTrain">NTK train–train (N, N).</param>
    /// <param name="yTrainSize">Total output size N·K, or null for N.</param>
    /// <param name="momentum">Momentum ≥ 0.</param>
    /// <param name="eps">Guard against a zero divisor.</param>
    /// <exception cref="ArgumentNullException">when <paramref name="ntkTrainTrain"/> is null.</exception>
    public static double MaxLearningRate(double[,] ntkTrainTrain, int? yTrainSize = null, double momentum = 0.0, double eps = 1e-12)
    {
        var k = T(ntkTrainTrain, nameof(ntkTrainTrain));
        return Boundary.Call(
            () => Predict.MaxLearningRate(k,
                yTrainSize.HasValue ? FSharpOption<int>.Some(yTrainSize.Value) : FSharpOption<int>.None, momentum, eps),
            Boundary.Names());
    }
}
