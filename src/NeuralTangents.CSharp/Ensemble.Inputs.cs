namespace NeuralTangents.CSharp;

// The prediction methods for the other input types Network.Kernel takes: jagged rows, single precision and images.
// Each converts its inputs (checking them, naming the argument) and runs the double[,] methods' computation; targets
// and results are double, as there.
public static partial class Ensemble
{
    /// <summary>Predicts outputs of the infinite ensemble on jagged rows (one <c>double[]</c> of features per input,
    /// all of one length).</summary>
    /// <param name="network">The network.</param>
    /// <param name="xTrain">Training inputs: N rows of equal length.</param>
    /// <param name="yTrain">Training targets (N, K).</param>
    /// <param name="xTest">Test inputs: M rows of xTrain's length, or null for the training
    /// set's own outputs (y at t = ∞ whatever diagReg; not the same as passing xTrain, see the <c>double[,]</c>
    /// overload).</param>
    /// <param name="times">Training times (≥ 0, in steps; <see cref="double.PositiveInfinity"/> for t = ∞), or null
    /// for t = ∞ alone.</param>
    /// <param name="computeCov">True to add the (M, M) covariances.</param>
    /// <param name="learningRate">Learning rate &gt; 0 (absolute time is learningRate · t).</param>
    /// <param name="diagReg">Ridge on the train–train kernel, relative to its mean diagonal unless
    /// <paramref name="diagRegAbsoluteScale"/>.</param>
    /// <param name="diagRegAbsoluteScale">True for an absolute ridge.</param>
    /// <param name="cancellationToken">Stops the prediction at the next step boundary or kernel tile.</param>
    /// <param name="progress">Receives one report per finished step, or null.</param>
    /// <param name="tiling">Tile size and memory budget of the kernel computations, or null for
    /// <see cref="TilingOptions.Default"/>.</param>
    /// <returns>NNGP and NTK predictions, one per time.</returns>
    /// <exception cref="ArgumentNullException">when network, xTrain or one of its rows or yTrain is null.</exception>
    /// <exception cref="ArgumentException">as the <c>double[,]</c> overload, and for rows of different lengths.</exception>
    /// <exception cref="InvalidOperationException">as the <c>double[,]</c> overload.</exception>
    public static EnsemblePrediction Predict(
        Network network, double[][] xTrain, double[,] yTrain, double[][]? xTest = null, double[]? times = null,
        bool computeCov = false, double learningRate = 1.0, double diagReg = 0.0, bool diagRegAbsoluteScale = false,
        CancellationToken cancellationToken = default, IProgress<PredictionProgress>? progress = null,
        TilingOptions? tiling = null) =>
        PredictTensors(network, Rows(xTrain, nameof(xTrain)), Matrix(yTrain, nameof(yTrain)),
            xTest is null ? null : Rows(xTest, nameof(xTest)), times, computeCov, learningRate, diagReg,
            diagRegAbsoluteScale, cancellationToken, progress, tiling);

    /// <summary>Predicts outputs of the infinite ensemble on jagged rows (one <c>double[]</c> of features per input,
    /// all of one length).</summary>
    /// <param name="network">The network.</param>
    /// <param name="xTrain">Training inputs: N rows of equal length.</param>
    /// <param name="yTrain">Training targets, one per input (N); every mean is (M, 1).</param>
    /// <param name="xTest">Test inputs: M rows of xTrain's length, or null for the training
    /// set's own outputs (y at t = ∞ whatever diagReg; not the same as passing xTrain, see the <c>double[,]</c>
    /// overload).</param>
    /// <param name="times">Training times (≥ 0, in steps; <see cref="double.PositiveInfinity"/> for t = ∞), or null
    /// for t = ∞ alone.</param>
    /// <param name="computeCov">True to add the (M, M) covariances.</param>
    /// <param name="learningRate">Learning rate &gt; 0 (absolute time is learningRate · t).</param>
    /// <param name="diagReg">Ridge on the train–train kernel, relative to its mean diagonal unless
    /// <paramref name="diagRegAbsoluteScale"/>.</param>
    /// <param name="diagRegAbsoluteScale">True for an absolute ridge.</param>
    /// <param name="cancellationToken">Stops the prediction at the next step boundary or kernel tile.</param>
    /// <param name="progress">Receives one report per finished step, or null.</param>
    /// <param name="tiling">Tile size and memory budget of the kernel computations, or null for
    /// <see cref="TilingOptions.Default"/>.</param>
    /// <returns>NNGP and NTK predictions, one per time.</returns>
    /// <exception cref="ArgumentNullException">when network, xTrain or one of its rows or yTrain is null.</exception>
    /// <exception cref="ArgumentException">as the <c>double[,]</c> overload, and for rows of different lengths.</exception>
    /// <exception cref="InvalidOperationException">as the <c>double[,]</c> overload.</exception>
    public static EnsemblePrediction Predict(
        Network network, double[][] xTrain, double[] yTrain, double[][]? xTest = null, double[]? times = null,
        bool computeCov = false, double learningRate = 1.0, double diagReg = 0.0, bool diagRegAbsoluteScale = false,
        CancellationToken cancellationToken = default, IProgress<PredictionProgress>? progress = null,
        TilingOptions? tiling = null) =>
        PredictTensors(network, Rows(xTrain, nameof(xTrain)), Column(yTrain, nameof(yTrain)),
            xTest is null ? null : Rows(xTest, nameof(xTest)), times, computeCov, learningRate, diagReg,
            diagRegAbsoluteScale, cancellationToken, progress, tiling);

    /// <summary>The NTK-GP prediction on jagged rows (one <c>double[]</c> of features per input,
    /// all of one length).</summary>
    /// <param name="network">The network.</param>
    /// <param name="xTrain">Training inputs: N rows of equal length.</param>
    /// <param name="yTrain">Training targets (N, K).</param>
    /// <param name="xTest">Test inputs: M rows of xTrain's length, or null for the training
    /// set's own outputs (mean y, zero covariance, whatever diagReg; not the same as passing xTrain, see the <c>double[,]</c>
    /// overload).</param>
    /// <param name="computeCov">True to add the (M, M) covariance.</param>
    /// <param name="diagReg">Ridge on the train–train NTK, relative to its mean diagonal unless
    /// <paramref name="diagRegAbsoluteScale"/>.</param>
    /// <param name="diagRegAbsoluteScale">True for an absolute ridge.</param>
    /// <param name="cancellationToken">Stops the prediction at the next step boundary or kernel tile.</param>
    /// <param name="progress">Receives one report per finished step, or null.</param>
    /// <param name="tiling">Tile size and memory budget of the kernel computations, or null for
    /// <see cref="TilingOptions.Default"/>.</param>
    /// <returns>Mean (M, K) and, when asked for, covariance (M, M).</returns>
    /// <exception cref="ArgumentNullException">when network, xTrain or one of its rows or yTrain is null.</exception>
    /// <exception cref="ArgumentException">as the <c>double[,]</c> overload, and for rows of different lengths.</exception>
    /// <exception cref="InvalidOperationException">as the <c>double[,]</c> overload.</exception>
    public static PosteriorGaussian PredictNtkGp(
        Network network, double[][] xTrain, double[,] yTrain, double[][]? xTest = null, bool computeCov = false,
        double diagReg = 0.0, bool diagRegAbsoluteScale = false, CancellationToken cancellationToken = default,
        IProgress<PredictionProgress>? progress = null, TilingOptions? tiling = null) =>
        PredictNtkGpTensors(network, Rows(xTrain, nameof(xTrain)), Matrix(yTrain, nameof(yTrain)),
            xTest is null ? null : Rows(xTest, nameof(xTest)), computeCov, diagReg, diagRegAbsoluteScale,
            cancellationToken, progress, tiling);

    /// <summary>The NTK-GP prediction on jagged rows (one <c>double[]</c> of features per input,
    /// all of one length).</summary>
    /// <param name="network">The network.</param>
    /// <param name="xTrain">Training inputs: N rows of equal length.</param>
    /// <param name="yTrain">Training targets, one per input (N); every mean is (M, 1).</param>
    /// <param name="xTest">Test inputs: M rows of xTrain's length, or null for the training
    /// set's own outputs (mean y, zero covariance, whatever diagReg; not the same as passing xTrain, see the <c>double[,]</c>
    /// overload).</param>
    /// <param name="computeCov">True to add the (M, M) covariance.</param>
    /// <param name="diagReg">Ridge on the train–train NTK, relative to its mean diagonal unless
    /// <paramref name="diagRegAbsoluteScale"/>.</param>
    /// <param name="diagRegAbsoluteScale">True for an absolute ridge.</param>
    /// <param name="cancellationToken">Stops the prediction at the next step boundary or kernel tile.</param>
    /// <param name="progress">Receives one report per finished step, or null.</param>
    /// <param name="tiling">Tile size and memory budget of the kernel computations, or null for
    /// <see cref="TilingOptions.Default"/>.</param>
    /// <returns>Mean (M, K) and, when asked for, covariance (M, M).</returns>
    /// <exception cref="ArgumentNullException">when network, xTrain or one of its rows or yTrain is null.</exception>
    /// <exception cref="ArgumentException">as the <c>double[,]</c> overload, and for rows of different lengths.</exception>
    /// <exception cref="InvalidOperationException">as the <c>double[,]</c> overload.</exception>
    public static PosteriorGaussian PredictNtkGp(
        Network network, double[][] xTrain, double[] yTrain, double[][]? xTest = null, bool computeCov = false,
        double diagReg = 0.0, bool diagRegAbsoluteScale = false, CancellationToken cancellationToken = default,
        IProgress<PredictionProgress>? progress = null, TilingOptions? tiling = null) =>
        PredictNtkGpTensors(network, Rows(xTrain, nameof(xTrain)), Column(yTrain, nameof(yTrain)),
            xTest is null ? null : Rows(xTest, nameof(xTest)), computeCov, diagReg, diagRegAbsoluteScale,
            cancellationToken, progress, tiling);

    /// <summary>Predicts outputs of the infinite ensemble on single-precision inputs, widened exactly to double (the
    /// predictions are computed and returned in double precision).</summary>
    /// <param name="network">The network.</param>
    /// <param name="xTrain">Training inputs (N, features).</param>
    /// <param name="yTrain">Training targets (N, K).</param>
    /// <param name="xTest">Test inputs (M, features), or null for the training set's own
    /// outputs (y at t = ∞ whatever diagReg; not the same as passing xTrain, see the <c>double[,]</c>
    /// overload).</param>
    /// <param name="times">Training times (≥ 0, in steps; <see cref="double.PositiveInfinity"/> for t = ∞), or null
    /// for t = ∞ alone.</param>
    /// <param name="computeCov">True to add the (M, M) covariances.</param>
    /// <param name="learningRate">Learning rate &gt; 0 (absolute time is learningRate · t).</param>
    /// <param name="diagReg">Ridge on the train–train kernel, relative to its mean diagonal unless
    /// <paramref name="diagRegAbsoluteScale"/>.</param>
    /// <param name="diagRegAbsoluteScale">True for an absolute ridge.</param>
    /// <param name="cancellationToken">Stops the prediction at the next step boundary or kernel tile.</param>
    /// <param name="progress">Receives one report per finished step, or null.</param>
    /// <param name="tiling">Tile size and memory budget of the kernel computations, or null for
    /// <see cref="TilingOptions.Default"/>.</param>
    /// <returns>NNGP and NTK predictions, one per time.</returns>
    /// <exception cref="ArgumentNullException">when network, xTrain or yTrain is null.</exception>
    /// <exception cref="ArgumentException">as the <c>double[,]</c> overload, and for non-finite inputs.</exception>
    /// <exception cref="InvalidOperationException">as the <c>double[,]</c> overload.</exception>
    public static EnsemblePrediction Predict(
        Network network, float[,] xTrain, double[,] yTrain, float[,]? xTest = null, double[]? times = null,
        bool computeCov = false, double learningRate = 1.0, double diagReg = 0.0, bool diagRegAbsoluteScale = false,
        CancellationToken cancellationToken = default, IProgress<PredictionProgress>? progress = null,
        TilingOptions? tiling = null) =>
        PredictTensors(network, Widened(xTrain, nameof(xTrain)), Matrix(yTrain, nameof(yTrain)),
            xTest is null ? null : Widened(xTest, nameof(xTest)), times, computeCov, learningRate, diagReg,
            diagRegAbsoluteScale, cancellationToken, progress, tiling);

    /// <summary>Predicts outputs of the infinite ensemble on single-precision inputs, widened exactly to double (the
    /// predictions are computed and returned in double precision).</summary>
    /// <param name="network">The network.</param>
    /// <param name="xTrain">Training inputs (N, features).</param>
    /// <param name="yTrain">Training targets, one per input (N); every mean is (M, 1).</param>
    /// <param name="xTest">Test inputs (M, features), or null for the training set's own
    /// outputs (y at t = ∞ whatever diagReg; not the same as passing xTrain, see the <c>double[,]</c>
    /// overload).</param>
    /// <param name="times">Training times (≥ 0, in steps; <see cref="double.PositiveInfinity"/> for t = ∞), or null
    /// for t = ∞ alone.</param>
    /// <param name="computeCov">True to add the (M, M) covariances.</param>
    /// <param name="learningRate">Learning rate &gt; 0 (absolute time is learningRate · t).</param>
    /// <param name="diagReg">Ridge on the train–train kernel, relative to its mean diagonal unless
    /// <paramref name="diagRegAbsoluteScale"/>.</param>
    /// <param name="diagRegAbsoluteScale">True for an absolute ridge.</param>
    /// <param name="cancellationToken">Stops the prediction at the next step boundary or kernel tile.</param>
    /// <param name="progress">Receives one report per finished step, or null.</param>
    /// <param name="tiling">Tile size and memory budget of the kernel computations, or null for
    /// <see cref="TilingOptions.Default"/>.</param>
    /// <returns>NNGP and NTK predictions, one per time.</returns>
    /// <exception cref="ArgumentNullException">when network, xTrain or yTrain is null.</exception>
    /// <exception cref="ArgumentException">as the <c>double[,]</c> overload, and for non-finite inputs.</exception>
    /// <exception cref="InvalidOperationException">as the <c>double[,]</c> overload.</exception>
    public static EnsemblePrediction Predict(
        Network network, float[,] xTrain, double[] yTrain, float[,]? xTest = null, double[]? times = null,
        bool computeCov = false, double learningRate = 1.0, double diagReg = 0.0, bool diagRegAbsoluteScale = false,
        CancellationToken cancellationToken = default, IProgress<PredictionProgress>? progress = null,
        TilingOptions? tiling = null) =>
        PredictTensors(network, Widened(xTrain, nameof(xTrain)), Column(yTrain, nameof(yTrain)),
            xTest is null ? null : Widened(xTest, nameof(xTest)), times, computeCov, learningRate, diagReg,
            diagRegAbsoluteScale, cancellationToken, progress, tiling);

    /// <summary>The NTK-GP prediction on single-precision inputs, widened exactly to double (the
    /// predictions are computed and returned in double precision).</summary>
    /// <param name="network">The network.</param>
    /// <param name="xTrain">Training inputs (N, features).</param>
    /// <param name="yTrain">Training targets (N, K).</param>
    /// <param name="xTest">Test inputs (M, features), or null for the training set's own
    /// outputs (mean y, zero covariance, whatever diagReg; not the same as passing xTrain, see the <c>double[,]</c>
    /// overload).</param>
    /// <param name="computeCov">True to add the (M, M) covariance.</param>
    /// <param name="diagReg">Ridge on the train–train NTK, relative to its mean diagonal unless
    /// <paramref name="diagRegAbsoluteScale"/>.</param>
    /// <param name="diagRegAbsoluteScale">True for an absolute ridge.</param>
    /// <param name="cancellationToken">Stops the prediction at the next step boundary or kernel tile.</param>
    /// <param name="progress">Receives one report per finished step, or null.</param>
    /// <param name="tiling">Tile size and memory budget of the kernel computations, or null for
    /// <see cref="TilingOptions.Default"/>.</param>
    /// <returns>Mean (M, K) and, when asked for, covariance (M, M).</returns>
    /// <exception cref="ArgumentNullException">when network, xTrain or yTrain is null.</exception>
    /// <exception cref="ArgumentException">as the <c>double[,]</c> overload, and for non-finite inputs.</exception>
    /// <exception cref="InvalidOperationException">as the <c>double[,]</c> overload.</exception>
    public static PosteriorGaussian PredictNtkGp(
        Network network, float[,] xTrain, double[,] yTrain, float[,]? xTest = null, bool computeCov = false,
        double diagReg = 0.0, bool diagRegAbsoluteScale = false, CancellationToken cancellationToken = default,
        IProgress<PredictionProgress>? progress = null, TilingOptions? tiling = null) =>
        PredictNtkGpTensors(network, Widened(xTrain, nameof(xTrain)), Matrix(yTrain, nameof(yTrain)),
            xTest is null ? null : Widened(xTest, nameof(xTest)), computeCov, diagReg, diagRegAbsoluteScale,
            cancellationToken, progress, tiling);

    /// <summary>The NTK-GP prediction on single-precision inputs, widened exactly to double (the
    /// predictions are computed and returned in double precision).</summary>
    /// <param name="network">The network.</param>
    /// <param name="xTrain">Training inputs (N, features).</param>
    /// <param name="yTrain">Training targets, one per input (N); every mean is (M, 1).</param>
    /// <param name="xTest">Test inputs (M, features), or null for the training set's own
    /// outputs (mean y, zero covariance, whatever diagReg; not the same as passing xTrain, see the <c>double[,]</c>
    /// overload).</param>
    /// <param name="computeCov">True to add the (M, M) covariance.</param>
    /// <param name="diagReg">Ridge on the train–train NTK, relative to its mean diagonal unless
    /// <paramref name="diagRegAbsoluteScale"/>.</param>
    /// <param name="diagRegAbsoluteScale">True for an absolute ridge.</param>
    /// <param name="cancellationToken">Stops the prediction at the next step boundary or kernel tile.</param>
    /// <param name="progress">Receives one report per finished step, or null.</param>
    /// <param name="tiling">Tile size and memory budget of the kernel computations, or null for
    /// <see cref="TilingOptions.Default"/>.</param>
    /// <returns>Mean (M, K) and, when asked for, covariance (M, M).</returns>
    /// <exception cref="ArgumentNullException">when network, xTrain or yTrain is null.</exception>
    /// <exception cref="ArgumentException">as the <c>double[,]</c> overload, and for non-finite inputs.</exception>
    /// <exception cref="InvalidOperationException">as the <c>double[,]</c> overload.</exception>
    public static PosteriorGaussian PredictNtkGp(
        Network network, float[,] xTrain, double[] yTrain, float[,]? xTest = null, bool computeCov = false,
        double diagReg = 0.0, bool diagRegAbsoluteScale = false, CancellationToken cancellationToken = default,
        IProgress<PredictionProgress>? progress = null, TilingOptions? tiling = null) =>
        PredictNtkGpTensors(network, Widened(xTrain, nameof(xTrain)), Column(yTrain, nameof(yTrain)),
            xTest is null ? null : Widened(xTest, nameof(xTest)), computeCov, diagReg, diagRegAbsoluteScale,
            cancellationToken, progress, tiling);

    /// <summary>Predicts outputs of the infinite ensemble on images, NHWC unless the network's layers state other
    /// axes, for a network whose output is flat (e.g. a CNN ending in Flatten or a global pooling layer, then Dense).</summary>
    /// <param name="network">The network.</param>
    /// <param name="xTrain">Training images (N, height, width, channels).</param>
    /// <param name="yTrain">Training targets (N, K).</param>
    /// <param name="xTest">Test images (M, height, width, channels) of xTrain's size and channels, or
    /// null for the training set's own outputs (y at t = ∞ whatever diagReg; not the same as passing xTrain, see
    /// the <c>double[,]</c> overload).</param>
    /// <param name="times">Training times (≥ 0, in steps; <see cref="double.PositiveInfinity"/> for t = ∞), or null
    /// for t = ∞ alone.</param>
    /// <param name="computeCov">True to add the (M, M) covariances.</param>
    /// <param name="learningRate">Learning rate &gt; 0 (absolute time is learningRate · t).</param>
    /// <param name="diagReg">Ridge on the train–train kernel, relative to its mean diagonal unless
    /// <paramref name="diagRegAbsoluteScale"/>.</param>
    /// <param name="diagRegAbsoluteScale">True for an absolute ridge.</param>
    /// <param name="cancellationToken">Stops the prediction at the next step boundary or kernel tile.</param>
    /// <param name="progress">Receives one report per finished step, or null.</param>
    /// <param name="tiling">Tile size and memory budget of the kernel computations, or null for
    /// <see cref="TilingOptions.Default"/>.</param>
    /// <returns>NNGP and NTK predictions, one per time.</returns>
    /// <exception cref="ArgumentNullException">when network, xTrain or yTrain is null.</exception>
    /// <exception cref="ArgumentException">as the <c>double[,]</c> overload, and for images whose size or channels differ (parameter <c>xTest</c>).</exception>
    /// <exception cref="InvalidOperationException">as the <c>double[,]</c> overload.</exception>
    public static EnsemblePrediction Predict(
        Network network, double[,,,] xTrain, double[,] yTrain, double[,,,]? xTest = null, double[]? times = null,
        bool computeCov = false, double learningRate = 1.0, double diagReg = 0.0, bool diagRegAbsoluteScale = false,
        CancellationToken cancellationToken = default, IProgress<PredictionProgress>? progress = null,
        TilingOptions? tiling = null) =>
        PredictTensors(network, FiniteWidth.Images(xTrain, nameof(xTrain)), Matrix(yTrain, nameof(yTrain)),
            xTest is null ? null : FiniteWidth.Images(xTest, nameof(xTest)), times, computeCov, learningRate, diagReg,
            diagRegAbsoluteScale, cancellationToken, progress, tiling);

    /// <summary>Predicts outputs of the infinite ensemble on images, NHWC unless the network's layers state other
    /// axes, for a network whose output is flat (e.g. a CNN ending in Flatten or a global pooling layer, then Dense).</summary>
    /// <param name="network">The network.</param>
    /// <param name="xTrain">Training images (N, height, width, channels).</param>
    /// <param name="yTrain">Training targets, one per input (N); every mean is (M, 1).</param>
    /// <param name="xTest">Test images (M, height, width, channels) of xTrain's size and channels, or
    /// null for the training set's own outputs (y at t = ∞ whatever diagReg; not the same as passing xTrain, see
    /// the <c>double[,]</c> overload).</param>
    /// <param name="times">Training times (≥ 0, in steps; <see cref="double.PositiveInfinity"/> for t = ∞), or null
    /// for t = ∞ alone.</param>
    /// <param name="computeCov">True to add the (M, M) covariances.</param>
    /// <param name="learningRate">Learning rate &gt; 0 (absolute time is learningRate · t).</param>
    /// <param name="diagReg">Ridge on the train–train kernel, relative to its mean diagonal unless
    /// <paramref name="diagRegAbsoluteScale"/>.</param>
    /// <param name="diagRegAbsoluteScale">True for an absolute ridge.</param>
    /// <param name="cancellationToken">Stops the prediction at the next step boundary or kernel tile.</param>
    /// <param name="progress">Receives one report per finished step, or null.</param>
    /// <param name="tiling">Tile size and memory budget of the kernel computations, or null for
    /// <see cref="TilingOptions.Default"/>.</param>
    /// <returns>NNGP and NTK predictions, one per time.</returns>
    /// <exception cref="ArgumentNullException">when network, xTrain or yTrain is null.</exception>
    /// <exception cref="ArgumentException">as the <c>double[,]</c> overload, and for images whose size or channels differ (parameter <c>xTest</c>).</exception>
    /// <exception cref="InvalidOperationException">as the <c>double[,]</c> overload.</exception>
    public static EnsemblePrediction Predict(
        Network network, double[,,,] xTrain, double[] yTrain, double[,,,]? xTest = null, double[]? times = null,
        bool computeCov = false, double learningRate = 1.0, double diagReg = 0.0, bool diagRegAbsoluteScale = false,
        CancellationToken cancellationToken = default, IProgress<PredictionProgress>? progress = null,
        TilingOptions? tiling = null) =>
        PredictTensors(network, FiniteWidth.Images(xTrain, nameof(xTrain)), Column(yTrain, nameof(yTrain)),
            xTest is null ? null : FiniteWidth.Images(xTest, nameof(xTest)), times, computeCov, learningRate, diagReg,
            diagRegAbsoluteScale, cancellationToken, progress, tiling);

    /// <summary>The NTK-GP prediction on images, NHWC unless the network's layers state other
    /// axes, for a network whose output is flat (e.g. a CNN ending in Flatten or a global pooling layer, then Dense).</summary>
    /// <param name="network">The network.</param>
    /// <param name="xTrain">Training images (N, height, width, channels).</param>
    /// <param name="yTrain">Training targets (N, K).</param>
    /// <param name="xTest">Test images (M, height, width, channels) of xTrain's size and channels, or
    /// null for the training set's own outputs (mean y, zero covariance, whatever diagReg; not the same as passing xTrain, see
    /// the <c>double[,]</c> overload).</param>
    /// <param name="computeCov">True to add the (M, M) covariance.</param>
    /// <param name="diagReg">Ridge on the train–train NTK, relative to its mean diagonal unless
    /// <paramref name="diagRegAbsoluteScale"/>.</param>
    /// <param name="diagRegAbsoluteScale">True for an absolute ridge.</param>
    /// <param name="cancellationToken">Stops the prediction at the next step boundary or kernel tile.</param>
    /// <param name="progress">Receives one report per finished step, or null.</param>
    /// <param name="tiling">Tile size and memory budget of the kernel computations, or null for
    /// <see cref="TilingOptions.Default"/>.</param>
    /// <returns>Mean (M, K) and, when asked for, covariance (M, M).</returns>
    /// <exception cref="ArgumentNullException">when network, xTrain or yTrain is null.</exception>
    /// <exception cref="ArgumentException">as the <c>double[,]</c> overload, and for images whose size or channels differ (parameter <c>xTest</c>).</exception>
    /// <exception cref="InvalidOperationException">as the <c>double[,]</c> overload.</exception>
    public static PosteriorGaussian PredictNtkGp(
        Network network, double[,,,] xTrain, double[,] yTrain, double[,,,]? xTest = null, bool computeCov = false,
        double diagReg = 0.0, bool diagRegAbsoluteScale = false, CancellationToken cancellationToken = default,
        IProgress<PredictionProgress>? progress = null, TilingOptions? tiling = null) =>
        PredictNtkGpTensors(network, FiniteWidth.Images(xTrain, nameof(xTrain)), Matrix(yTrain, nameof(yTrain)),
            xTest is null ? null : FiniteWidth.Images(xTest, nameof(xTest)), computeCov, diagReg, diagRegAbsoluteScale,
            cancellationToken, progress, tiling);

    /// <summary>The NTK-GP prediction on images, NHWC unless the network's layers state other
    /// axes, for a network whose output is flat (e.g. a CNN ending in Flatten or a global pooling layer, then Dense).</summary>
    /// <param name="network">The network.</param>
    /// <param name="xTrain">Training images (N, height, width, channels).</param>
    /// <param name="yTrain">Training targets, one per input (N); every mean is (M, 1).</param>
    /// <param name="xTest">Test images (M, height, width, channels) of xTrain's size and channels, or
    /// null for the training set's own outputs (mean y, zero covariance, whatever diagReg; not the same as passing xTrain, see
    /// the <c>double[,]</c> overload).</param>
    /// <param name="computeCov">True to add the (M, M) covariance.</param>
    /// <param name="diagReg">Ridge on the train–train NTK, relative to its mean diagonal unless
    /// <paramref name="diagRegAbsoluteScale"/>.</param>
    /// <param name="diagRegAbsoluteScale">True for an absolute ridge.</param>
    /// <param name="cancellationToken">Stops the prediction at the next step boundary or kernel tile.</param>
    /// <param name="progress">Receives one report per finished step, or null.</param>
    /// <param name="tiling">Tile size and memory budget of the kernel computations, or null for
    /// <see cref="TilingOptions.Default"/>.</param>
    /// <returns>Mean (M, K) and, when asked for, covariance (M, M).</returns>
    /// <exception cref="ArgumentNullException">when network, xTrain or yTrain is null.</exception>
    /// <exception cref="ArgumentException">as the <c>double[,]</c> overload, and for images whose size or channels differ (parameter <c>xTest</c>).</exception>
    /// <exception cref="InvalidOperationException">as the <c>double[,]</c> overload.</exception>
    public static PosteriorGaussian PredictNtkGp(
        Network network, double[,,,] xTrain, double[] yTrain, double[,,,]? xTest = null, bool computeCov = false,
        double diagReg = 0.0, bool diagRegAbsoluteScale = false, CancellationToken cancellationToken = default,
        IProgress<PredictionProgress>? progress = null, TilingOptions? tiling = null) =>
        PredictNtkGpTensors(network, FiniteWidth.Images(xTrain, nameof(xTrain)), Column(yTrain, nameof(yTrain)),
            xTest is null ? null : FiniteWidth.Images(xTest, nameof(xTest)), computeCov, diagReg, diagRegAbsoluteScale,
            cancellationToken, progress, tiling);

    private static Tensor Rows(double[][] x, string paramName) => TensorModule.OfArray2D(Inputs.Rows(x, paramName));

    private static Tensor Widened(float[,] x, string paramName) => TensorModule.OfArray2D(Inputs.Widen(x, paramName));

    private static Tensor Column(double[] y, string paramName) => TensorModule.OfArray2D(Inputs.Column(y, paramName));
}
