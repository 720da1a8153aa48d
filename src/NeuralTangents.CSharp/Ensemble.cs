using Microsoft.FSharp.Collections;
using Microsoft.FSharp.Core;

namespace NeuralTangents.CSharp;

/// <summary>Predictions of the infinite ensemble of infinitely wide networks, per training time: the NNGP one
/// (only the readout trained, equivalently the Bayesian posterior at t = ∞) and the NTK one (all layers trained by
/// gradient descent on MSE).</summary>
public sealed class EnsemblePrediction
{
    internal EnsemblePrediction(double[]? times, PosteriorGaussian[] nngp, PosteriorGaussian[] ntk)
    {
        Times = times;
        Nngp = nngp;
        Ntk = ntk;
    }

    /// <summary>The training times asked for, or null for t = ∞ (then each array has one element).</summary>
    public double[]? Times { get; }

    /// <summary>NNGP prediction at each time: mean (M, K) and, when asked for, covariance (M, M).</summary>
    public PosteriorGaussian[] Nngp { get; }

    /// <summary>NTK prediction at each time: mean (M, K) and, when asked for, covariance (M, M).</summary>
    public PosteriorGaussian[] Ntk { get; }
}

/// <summary>neural_tangents' <c>gradient_descent_mse_ensemble</c> for a network built with <see cref="Stax"/> or
/// <see cref="NetworkBuilder"/>: its kernels are computed on the inputs, then the predictions in closed form. Inputs
/// are <c>double[,]</c> (N, features) here; the same methods take jagged rows, <c>float[,]</c> and NHWC images
/// (<c>double[,,,]</c>), as <see cref="Network.Kernel(double[,], double[,], KernelOutputs, bool?, bool?)"/> does.</summary>
public static partial class Ensemble
{
    /// <summary>Predicts test outputs of the infinite ensemble trained on 1-D targets (one output per input): as
    /// the (N, K) overload with K = 1, so every mean is (M, 1).</summary>
    /// <param name="network">The network.</param>
    /// <param name="xTrain">Training inputs (N, features).</param>
    /// <param name="yTrain">Training targets, one per input (N).</param>
    /// <param name="xTest">Test inputs (M, features), or null for the training set's own outputs (see the (N, K)
    /// overload: not the same as passing xTrain when diagReg &gt; 0).</param>
    /// <param name="times">Training times, or null for t = ∞ alone.</param>
    /// <param name="computeCov">True to add the (M, M) covariances.</param>
    /// <param name="learningRate">Learning rate &gt; 0.</param>
    /// <param name="diagReg">Ridge on the train–train kernel, relative to its mean diagonal unless
    /// <paramref name="diagRegAbsoluteScale"/>.</param>
    /// <param name="diagRegAbsoluteScale">True for an absolute ridge.</param>
    /// <param name="cancellationToken">Stops the prediction at the next step boundary or kernel tile.</param>
    /// <param name="progress">Receives one report per finished step, or null.</param>
    /// <param name="tiling">Tile size and memory budget of the kernel computations, or null for
    /// <see cref="TilingOptions.Default"/>.</param>
    /// <returns>NNGP and NTK predictions, one per time.</returns>
    /// <exception cref="ArgumentNullException">when network, xTrain or yTrain is null.</exception>
    /// <exception cref="ArgumentException">as the (N, K) overload.</exception>
    /// <exception cref="InvalidOperationException">as the (N, K) overload.</exception>
    public static EnsemblePrediction Predict(
        Network network, double[,] xTrain, double[] yTrain, double[,]? xTest = null, double[]? times = null,
        bool computeCov = false, double learningRate = 1.0, double diagReg = 0.0, bool diagRegAbsoluteScale = false,
        CancellationToken cancellationToken = default, IProgress<PredictionProgress>? progress = null,
        TilingOptions? tiling = null) =>
        Predict(network, xTrain, Inputs.Column(yTrain, nameof(yTrain)), xTest, times, computeCov, learningRate, diagReg,
            diagRegAbsoluteScale, cancellationToken, progress, tiling);

    /// <summary>Predicts test outputs of the infinite ensemble trained on (xTrain, yTrain).</summary>
    /// <param name="network">The network.</param>
    /// <param name="xTrain">Training inputs (N, features).</param>
    /// <param name="yTrain">Training targets (N, K).</param>
    /// <param name="xTest">Test inputs (M, features), or null for neural_tangents' <c>x_test=None</c>: the training
    /// set's own outputs under gradient flow, mean (I − e^{−η·K̃·t})·y with K̃ the train–train kernel (NNGP or NTK)
    /// plus the ridge. At t = ∞ that is y with zero covariance whatever <paramref name="diagReg"/> (no kernel is
    /// solved; the network and xTrain are still checked, on one training input). Passing xTrain itself instead gives
    /// the regularised posterior on the training inputs, K·(K + λI)⁻¹·y at t = ∞, which differs from y when
    /// diagReg &gt; 0.</param>
    /// <param name="times">Training times (≥ 0, in steps; <see cref="double.PositiveInfinity"/> for t = ∞ among them),
    /// or null for t = ∞ alone (then each array of the result has one element).</param>
    /// <param name="computeCov">True to add the (M, M) covariances.</param>
    /// <param name="learningRate">Learning rate &gt; 0 (absolute time is learningRate · t).</param>
    /// <param name="diagReg">Ridge on the train–train kernel, relative to its mean diagonal unless
    /// <paramref name="diagRegAbsoluteScale"/>.</param>
    /// <param name="diagRegAbsoluteScale">True for an absolute ridge.</param>
    /// <param name="cancellationToken">Stops the prediction at the next step boundary (after a kernel tile, a
    /// factorisation or a solve) with an <see cref="OperationCanceledException"/>.</param>
    /// <param name="progress">Receives one report per finished step, or null.</param>
    /// <param name="tiling">Tile size and memory budget of the kernel computations (neural_tangents'
    /// <c>nt.batch</c>), or null for <see cref="TilingOptions.Default"/>: the free memory less a margin.</param>
    /// <returns>NNGP and NTK predictions, one per time.</returns>
    /// <exception cref="ArgumentNullException">when network, xTrain or yTrain is null.</exception>
    /// <exception cref="ArgumentException">on mismatched shapes (xTest differing from xTrain off the batch axis:
    /// parameter <c>xTest</c>), non-finite inputs, a non-positive learning rate, negative or NaN times, or a network
    /// whose kernel is not one (N1, N2) matrix (parameter <c>network</c>).</exception>
    /// <exception cref="InvalidOperationException">when the network cannot take the inputs, the train–train kernel
    /// is not positive (semi-)definite (the message suggests diagReg), or a kernel does not fit the memory budget of
    /// <paramref name="tiling"/>.</exception>
    public static EnsemblePrediction Predict(
        Network network, double[,] xTrain, double[,] yTrain, double[,]? xTest = null, double[]? times = null,
        bool computeCov = false, double learningRate = 1.0, double diagReg = 0.0, bool diagRegAbsoluteScale = false,
        CancellationToken cancellationToken = default, IProgress<PredictionProgress>? progress = null,
        TilingOptions? tiling = null) =>
        PredictTensors(network, Matrix(xTrain, nameof(xTrain)), Matrix(yTrain, nameof(yTrain)),
            xTest is null ? null : TensorModule.OfArray2D(xTest), times, computeCov, learningRate, diagReg,
            diagRegAbsoluteScale, cancellationToken, progress, tiling);

    /// <summary>The NTK-GP prediction (arXiv:2007.05864, neural_tangents' <c>gp_inference(..., get='ntkgp')</c>):
    /// the Bayesian posterior with the network's NTK as the prior covariance. Its mean is the NTK ensemble's mean at
    /// t = ∞ (<see cref="Predict(Network, double[,], double[,], double[,], double[], bool, double, double, bool, CancellationToken, IProgress{PredictionProgress}, TilingOptions)"/>);
    /// its covariance Θ** − Θ*·Θ⁻¹·Θ*ᵀ is that of an ensemble whose initial outputs follow the NTK.</summary>
    /// <param name="network">The network.</param>
    /// <param name="xTrain">Training inputs (N, features).</param>
    /// <param name="yTrain">Training targets (N, K).</param>
    /// <param name="xTest">Test inputs (M, features), or null for neural_tangents' <c>k_test_train=None</c> (as
    /// <see cref="Predict(Network, double[,], double[,], double[,], double[], bool, double, double, bool, CancellationToken, IProgress{PredictionProgress}, TilingOptions)"/>
    /// with a null xTest at t = ∞): the unregularised posterior on the training set, mean y and zero (N, N)
    /// covariance, whatever <paramref name="diagReg"/>; no kernel is solved, but the network and xTrain are checked
    /// on one training input. Pass xTrain itself for the regularised posterior Θ·(Θ + λI)⁻¹·y on the training
    /// inputs.</param>
    /// <param name="computeCov">True to add the (M, M) covariance.</param>
    /// <param name="diagReg">Ridge on the train–train NTK, relative to its mean diagonal unless
    /// <paramref name="diagRegAbsoluteScale"/>.</param>
    /// <param name="diagRegAbsoluteScale">True for an absolute ridge.</param>
    /// <param name="cancellationToken">Stops the prediction at the next step boundary (after a kernel tile, the
    /// factorisation or a solve) with an <see cref="OperationCanceledException"/>.</param>
    /// <param name="progress">Receives one report per finished step (the test–train and test–test kernels, the
    /// train–train NTK, its Cholesky factor, the mean, the covariance), or null.</param>
    /// <param name="tiling">Tile size and memory budget of the kernel computations, or null for
    /// <see cref="TilingOptions.Default"/>.</param>
    /// <returns>Mean (M, K) and, when asked for, covariance (M, M).</returns>
    /// <exception cref="ArgumentNullException">when network, xTrain or yTrain is null.</exception>
    /// <exception cref="ArgumentException">on mismatched shapes (xTest differing from xTrain off the batch axis:
    /// parameter <c>xTest</c>), non-finite inputs or a negative ridge.</exception>
    /// <exception cref="InvalidOperationException">when the network cannot take the inputs, the train–train NTK is
    /// not positive definite (the message suggests diagReg), or a kernel does not fit the memory budget of
    /// <paramref name="tiling"/>.</exception>
    public static PosteriorGaussian PredictNtkGp(
        Network network, double[,] xTrain, double[,] yTrain, double[,]? xTest = null, bool computeCov = false,
        double diagReg = 0.0, bool diagRegAbsoluteScale = false, CancellationToken cancellationToken = default,
        IProgress<PredictionProgress>? progress = null, TilingOptions? tiling = null) =>
        PredictNtkGpTensors(network, Matrix(xTrain, nameof(xTrain)), Matrix(yTrain, nameof(yTrain)),
            xTest is null ? null : TensorModule.OfArray2D(xTest), computeCov, diagReg, diagRegAbsoluteScale,
            cancellationToken, progress, tiling);

    /// <summary>The NTK-GP prediction for 1-D targets (one output per input): as the (N, K) overload with K = 1, so
    /// the mean is (M, 1).</summary>
    /// <param name="network">The network.</param>
    /// <param name="xTrain">Training inputs (N, features).</param>
    /// <param name="yTrain">Training targets, one per input (N).</param>
    /// <param name="xTest">Test inputs (M, features), or null for the training set's own outputs (mean y, zero
    /// covariance, whatever diagReg; not the same as passing xTrain, see the (N, K) overload).</param>
    /// <param name="computeCov">True to add the (M, M) covariance.</param>
    /// <param name="diagReg">Ridge on the train–train NTK, relative to its mean diagonal unless
    /// <paramref name="diagRegAbsoluteScale"/>.</param>
    /// <param name="diagRegAbsoluteScale">True for an absolute ridge.</param>
    /// <param name="cancellationToken">Stops the prediction at the next step boundary or kernel tile.</param>
    /// <param name="progress">Receives one report per finished step, or null.</param>
    /// <param name="tiling">Tile size and memory budget of the kernel computations, or null for
    /// <see cref="TilingOptions.Default"/>.</param>
    /// <returns>Mean (M, 1) and, when asked for, covariance (M, M).</returns>
    /// <exception cref="ArgumentNullException">when network, xTrain or yTrain is null.</exception>
    /// <exception cref="ArgumentException">as the (N, K) overload.</exception>
    /// <exception cref="InvalidOperationException">as the (N, K) overload.</exception>
    public static PosteriorGaussian PredictNtkGp(
        Network network, double[,] xTrain, double[] yTrain, double[,]? xTest = null, bool computeCov = false,
        double diagReg = 0.0, bool diagRegAbsoluteScale = false, CancellationToken cancellationToken = default,
        IProgress<PredictionProgress>? progress = null, TilingOptions? tiling = null) =>
        PredictNtkGp(network, xTrain, Inputs.Column(yTrain, nameof(yTrain)), xTest, computeCov, diagReg,
            diagRegAbsoluteScale, cancellationToken, progress, tiling);

    private static Tensor Matrix(double[,] a, string paramName) => TensorModule.OfArray2D(Boundary.NotNull(a, paramName));

    /// <summary>The ensemble prediction on inputs of any rank the network takes (batch axis as the network states).</summary>
    private static EnsemblePrediction PredictTensors(
        Network network, Tensor xTrain, Tensor yTrain, Tensor? xTest, double[]? times, bool computeCov,
        double learningRate, double diagReg, bool diagRegAbsoluteScale, CancellationToken cancellationToken,
        IProgress<PredictionProgress>? progress, TilingOptions? tiling)
    {
        Boundary.NotNull(network, nameof(network));
        var ts = times is null ? null : Boundary.Times(times, nameof(times));
        var layer = network.ToFSharp();
        var control = Control(cancellationToken, progress);
        var kernels = new PredictionKernels((tiling ?? TilingOptions.Default).ToFSharp(null, cancellationToken), layer, xTrain);
        return Boundary.Call(
            () =>
            {
                if (xTest is not null)
                {
                    kernels.CheckTest(xTest);
                }

                // The network's own kernels, computed in tiles within the memory budget (as `nt predict` does); the
                // train kernel is factored in place (two N×N arrays).
                var predict = NeuralTangents.Predict.GradientDescentMseEnsembleOfFreshKernels(
                    control, kernels.Function, xTrain, yTrain, learningRate, diagReg, diagRegAbsoluteScale);
                if (xTest is null && (ts is null || ts.All(double.IsPositiveInfinity)))
                {
                    // The train set at t = ∞ is y: no kernel is needed, but the network must still take the inputs.
                    kernels.CheckOnOneTrainingInput();
                }

                var testOpt = xTest is null ? FSharpOption<Tensor>.None : FSharpOption<Tensor>.Some(xTest);
                FSharpMap<PredictGet, Gaussian> At(FSharpOption<double[]> t) =>
                    FSharpFunc<FSharpOption<double[]>, FSharpOption<Tensor>>.InvokeFast(predict, t, testOpt, Get.Both, computeCov);

                if (ts is null)
                {
                    var r = At(FSharpOption<double[]>.None);
                    return new EnsemblePrediction(null, Split(r[PredictGet.Nngp], false), Split(r[PredictGet.Ntk], false));
                }

                // The core takes finite times; +∞ entries are the t = ∞ prediction, each computed once.
                var finite = ts.Where(double.IsFinite).ToArray();
                var atFinite = finite.Length > 0 ? At(FSharpOption<double[]>.Some(finite)) : null;
                var atInfinity = finite.Length < ts.Length ? At(FSharpOption<double[]>.None) : null;
                PosteriorGaussian[] Assemble(PredictGet kind)
                {
                    var fromFinite = atFinite is null ? Array.Empty<PosteriorGaussian>() : Split(atFinite[kind], true);
                    var result = new PosteriorGaussian[ts.Length];
                    for (int i = 0, f = 0; i < ts.Length; i++)
                    {
                        result[i] = double.IsFinite(ts[i]) ? fromFinite[f++] : Split(atInfinity![kind], false)[0];
                    }

                    return result;
                }

                return new EnsemblePrediction((double[])ts.Clone(), Assemble(PredictGet.Nngp), Assemble(PredictGet.Ntk));
            },
            Boundary.Names(
                ("kernelFn", nameof(network)), ("kernelFn(xTrain, None)", nameof(network)),
                ("kernelFn(xTest, xTrain)", nameof(network)), ("kernelFn(xTest, None)", nameof(network)),
                ("x", nameof(xTrain)), ("batch_axis", nameof(xTrain)), ("channel_axis", nameof(xTrain)),
                ("batch_size", nameof(tiling)), ("memory_gb", nameof(tiling)), ("t", nameof(times))));
    }

    /// <summary>The NTK-GP prediction on inputs of any rank the network takes.</summary>
    private static PosteriorGaussian PredictNtkGpTensors(
        Network network, Tensor xTrain, Tensor yTrain, Tensor? xTest, bool computeCov, double diagReg,
        bool diagRegAbsoluteScale, CancellationToken cancellationToken, IProgress<PredictionProgress>? progress,
        TilingOptions? tiling)
    {
        Boundary.NotNull(network, nameof(network));
        var layer = network.ToFSharp();
        var control = Control(cancellationToken, progress);
        var kernels = new PredictionKernels((tiling ?? TilingOptions.Default).ToFSharp(null, cancellationToken), layer, xTrain);
        return Boundary.Call(
            () =>
            {
                if (xTest is not null)
                {
                    kernels.CheckTest(xTest);
                }

                // Built even without test inputs: it checks the ridge and the targets' shape.
                var predict = NeuralTangents.Predict.NtkGpOfFreshKernels(
                    control, kernels.Function, xTrain, yTrain, diagReg, diagRegAbsoluteScale);
                if (xTest is null)
                {
                    // neural_tangents' train-set posterior N(y, 0): no kernel is needed, but the network must take xTrain.
                    kernels.CheckOnOneTrainingInput();
                    var n = yTrain.Shape[0];
                    return new PosteriorGaussian(TensorModule.ToArray2D(yTrain), computeCov ? new double[n, n] : null);
                }

                var g = FSharpFunc<Tensor, bool>.InvokeFast(predict, xTest, computeCov);
                return new PosteriorGaussian(TensorModule.ToArray2D(g.Mean),
                    FSharpOption<Tensor>.get_IsSome(g.Covariance) ? TensorModule.ToArray2D(g.Covariance.Value) : null);
            },
            Boundary.Names(
                ("kernel(xTrain, None)", nameof(network)), ("kernel(xTest, xTrain)", nameof(network)),
                ("kernel(xTest, None)", nameof(network)), ("x", nameof(xTrain)), ("batch_axis", nameof(xTrain)),
                ("channel_axis", nameof(xTrain)), ("batch_size", nameof(tiling)), ("memory_gb", nameof(tiling))));
    }

    private static PredictControl Control(CancellationToken cancellationToken, IProgress<PredictionProgress>? progress) =>
        new(cancellationToken,
            progress is null
                ? FSharpOption<IProgress<PredictProgress>>.None
                : FSharpOption<IProgress<PredictProgress>>.Some(new ProgressAdapter(progress)));

    private static PosteriorGaussian[] Split(Gaussian g, bool timeAxis)
    {
        if (!timeAxis)
        {
            return new[]
            {
                new PosteriorGaussian(TensorModule.ToArray2D(g.Mean),
                    FSharpOption<Tensor>.get_IsSome(g.Covariance) ? TensorModule.ToArray2D(g.Covariance.Value) : null),
            };
        }

        int count = g.Mean.Shape[0];
        var result = new PosteriorGaussian[count];
        for (int s = 0; s < count; s++)
        {
            result[s] = new PosteriorGaussian(Slice(g.Mean, s),
                FSharpOption<Tensor>.get_IsSome(g.Covariance) ? Slice(g.Covariance.Value, s) : null);
        }

        return result;
    }

    private static double[,] Slice(Tensor t, int s)
    {
        int rows = t.Shape[1], cols = t.Shape[2];
        var m = new double[rows, cols];
        for (int i = 0; i < rows; i++)
        {
            for (int j = 0; j < cols; j++)
            {
                m[i, j] = t.Data[((s * rows) + i) * cols + j];
            }
        }

        return m;
    }

    private sealed class ProgressAdapter : IProgress<PredictProgress>
    {
        private readonly IProgress<PredictionProgress> inner;

        internal ProgressAdapter(IProgress<PredictionProgress> inner) => this.inner = inner;

        public void Report(PredictProgress value) =>
            inner.Report(new PredictionProgress(value.Step, value.StepsDone, value.Elapsed));
    }
}

/// <summary>One finished step of a prediction (a kernel, a factorisation, a solve).</summary>
/// <param name="Step">What finished, e.g. "Cholesky factor of the NTK".</param>
/// <param name="StepsDone">Steps finished so far.</param>
/// <param name="Elapsed">Time since the prediction started.</param>
public sealed record PredictionProgress(string Step, int StepsDone, TimeSpan Elapsed);
