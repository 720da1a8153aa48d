using System.Collections.Immutable;

namespace NeuralTangents.CSharp;

/// <summary>
/// An immutable fluent builder of a network in series: every method returns a new builder with one more layer and
/// leaves this one unchanged, so a builder can be shared and extended in several ways.
/// <code>
/// var net = new NetworkBuilder().Dense(512, wStd: 1.5, bStd: 0.05).Relu().Dense(1).Build();
/// </code>
/// The layer methods take the same arguments as the <see cref="Stax"/> methods of the same name.
/// </summary>
public sealed class NetworkBuilder
{
    private readonly ImmutableList<Network> layers;

    /// <summary>An empty builder; <see cref="Build"/> on it gives the identity network.</summary>
    public NetworkBuilder()
        : this(ImmutableList<Network>.Empty)
    {
    }

    private NetworkBuilder(ImmutableList<Network> layers) => this.layers = layers;

    /// <summary>The number of layers added so far.</summary>
    public int Count => layers.Count;

    /// <summary>Appends a network (any layer or combination of layers).</summary>
    /// <param name="layer">The network to append.</param>
    /// <returns>A new builder ending in <paramref name="layer"/>.</returns>
    /// <exception cref="ArgumentNullException"><paramref name="layer"/> is null.</exception>
    public NetworkBuilder Add(Network layer) => new(layers.Add(Boundary.NotNull(layer, nameof(layer))));

    /// <summary>The layers added so far in series (<see cref="Stax.Serial(Network[])"/>).</summary>
    /// <returns>The network.</returns>
    public Network Build() => Stax.Serial([.. layers]);

    /// <summary>Appends <see cref="Stax.Dense"/>.</summary>
    /// <param name="outDim">Output width of the finite network (<c>out_dim</c>), at least 1.</param>
    /// <param name="wStd">Weight standard deviation (<c>W_std</c>), finite and ≥ 0.</param>
    /// <param name="bStd">Bias standard deviation (<c>b_std</c>), finite and ≥ 0; null means no bias.</param>
    /// <param name="batchAxis">The batch axis of the inputs (<c>batch_axis</c>).</param>
    /// <param name="channelAxis">The feature axis of the inputs (<c>channel_axis</c>).</param>
    /// <param name="parameterization">"ntk" (the default) or "standard".</param>
    /// <param name="s0">First width scaling <c>s[0]</c> of the standard parameterization, at least 1.</param>
    /// <param name="s1">Second width scaling <c>s[1]</c> of the standard parameterization, at least 1.</param>
    /// <returns>A new builder ending in the Dense layer.</returns>
    /// <exception cref="ArgumentException">An argument is out of range; the exception names it.</exception>
    public NetworkBuilder Dense(
        int outDim,
        double wStd = 1.0,
        double? bStd = null,
        int batchAxis = 0,
        int channelAxis = -1,
        DenseParameterization parameterization = DenseParameterization.Ntk,
        int s0 = 1,
        int s1 = 1) =>
        Add(Stax.Dense(outDim, wStd, bStd, batchAxis, channelAxis, parameterization, s0, s1));

    /// <summary>Appends <see cref="Stax.Relu"/>.</summary>
    /// <param name="doStabilize">neural_tangents' <c>do_stabilize</c>; accepted and changes nothing (its rescaling
    /// before the arc-cosine formula is scale-equivariant, and this rule clamps the correlation itself).</param>
    /// <returns>A new builder ending in Relu.</returns>
    public NetworkBuilder Relu(bool doStabilize = false) => Add(Stax.Relu(doStabilize));

    /// <summary>Appends <see cref="Stax.LeakyRelu(double, bool)"/>.</summary>
    /// <param name="alpha">The slope for negative inputs, finite.</param>
    /// <param name="doStabilize">neural_tangents' <c>do_stabilize</c>; accepted and changes nothing (its rescaling
    /// before the arc-cosine formula is scale-equivariant, and this rule clamps the correlation itself).</param>
    /// <returns>A new builder ending in LeakyRelu.</returns>
    /// <exception cref="ArgumentException"><paramref name="alpha"/> is not finite.</exception>
    public NetworkBuilder LeakyRelu(double alpha, bool doStabilize = false) => Add(Stax.LeakyRelu(alpha, doStabilize));

    /// <summary>Appends <see cref="Stax.ABRelu(double, double, bool)"/>.</summary>
    /// <param name="a">The slope for negative inputs, finite.</param>
    /// <param name="b">The slope for positive inputs, finite.</param>
    /// <param name="doStabilize">neural_tangents' <c>do_stabilize</c>; accepted and changes nothing (its rescaling
    /// before the arc-cosine formula is scale-equivariant, and this rule clamps the correlation itself).</param>
    /// <returns>A new builder ending in ABRelu.</returns>
    /// <exception cref="ArgumentException"><paramref name="a"/> or <paramref name="b"/> is not finite.</exception>
    public NetworkBuilder ABRelu(double a, double b, bool doStabilize = false) => Add(Stax.ABRelu(a, b, doStabilize));

    /// <summary>Appends <see cref="Stax.Abs"/>.</summary>
    /// <param name="doStabilize">neural_tangents' <c>do_stabilize</c>; accepted and changes nothing (its rescaling
    /// before the arc-cosine formula is scale-equivariant, and this rule clamps the correlation itself).</param>
    /// <returns>A new builder ending in Abs.</returns>
    public NetworkBuilder Abs(bool doStabilize = false) => Add(Stax.Abs(doStabilize));

    /// <summary>Appends <see cref="Stax.Erf(double, double, double)"/>: a·erf(b·x) + c.</summary>
    /// <param name="a">Output scale, finite.</param>
    /// <param name="b">Input scale, finite.</param>
    /// <param name="c">Output shift, finite.</param>
    /// <returns>A new builder ending in Erf.</returns>
    /// <exception cref="ArgumentException">An argument is not finite; the exception names it.</exception>
    public NetworkBuilder Erf(double a = 1.0, double b = 1.0, double c = 0.0) => Add(Stax.Erf(a, b, c));

    /// <summary>Appends <see cref="Stax.SigmoidLike"/>.</summary>
    /// <returns>A new builder ending in Sigmoid_like.</returns>
    public NetworkBuilder SigmoidLike() => Add(Stax.SigmoidLike());

    /// <summary>Appends <see cref="Stax.Sin(double, double, double)"/>: a·sin(b·x + c).</summary>
    /// <param name="a">Output scale, finite.</param>
    /// <param name="b">Input scale, finite.</param>
    /// <param name="c">Phase, finite.</param>
    /// <returns>A new builder ending in Sin.</returns>
    /// <exception cref="ArgumentException">An argument is not finite; the exception names it.</exception>
    public NetworkBuilder Sin(double a = 1.0, double b = 1.0, double c = 0.0) => Add(Stax.Sin(a, b, c));

    /// <summary>Appends <see cref="Stax.Cos(double, double, double)"/>: a·cos(b·x + c).</summary>
    /// <param name="a">Output scale, finite.</param>
    /// <param name="b">Input scale, finite.</param>
    /// <param name="c">Phase, finite.</param>
    /// <returns>A new builder ending in Cos.</returns>
    /// <exception cref="ArgumentException">An argument is not finite; the exception names it.</exception>
    public NetworkBuilder Cos(double a = 1.0, double b = 1.0, double c = 0.0) => Add(Stax.Cos(a, b, c));

    /// <summary>Appends <see cref="Stax.Gelu(bool)"/>.</summary>
    /// <param name="approximate">Whether the finite network uses the tanh approximation.</param>
    /// <returns>A new builder ending in Gelu.</returns>
    public NetworkBuilder Gelu(bool approximate = false) => Add(Stax.Gelu(approximate));

    /// <summary>Appends <see cref="Stax.Monomial(int)"/>: x^degree.</summary>
    /// <param name="degree">The power, 0 to 5.</param>
    /// <returns>A new builder ending in Monomial.</returns>
    /// <exception cref="ArgumentException"><paramref name="degree"/> is outside 0..5.</exception>
    public NetworkBuilder Monomial(int degree) => Add(Stax.Monomial(degree));

    /// <summary>Appends <see cref="Stax.Exp(double, double)"/>: a·exp(b·x).</summary>
    /// <param name="a">Output scale, finite.</param>
    /// <param name="b">Input scale, finite.</param>
    /// <returns>A new builder ending in Exp.</returns>
    public NetworkBuilder Exp(double a = 1.0, double b = 1.0) => Add(Stax.Exp(a, b));

    /// <summary>Appends <see cref="Stax.Gaussian(double, double)"/>: a·exp(b·x²).</summary>
    /// <param name="a">Output scale, finite.</param>
    /// <param name="b">Exponent scale, finite.</param>
    /// <returns>A new builder ending in Gaussian.</returns>
    public NetworkBuilder Gaussian(double a = 1.0, double b = -1.0) => Add(Stax.Gaussian(a, b));

    /// <summary>Appends <see cref="Stax.ExpNormalized(double, double, bool)"/>.</summary>
    /// <param name="gamma">Exponent scale, finite.</param>
    /// <param name="shift">Shift, finite.</param>
    /// <param name="doClip">Clip the normalized covariance to [−1, 1].</param>
    /// <returns>A new builder ending in ExpNormalized.</returns>
    public NetworkBuilder ExpNormalized(double gamma = 1.0, double shift = -1.0, bool doClip = false) =>
        Add(Stax.ExpNormalized(gamma, shift, doClip));

    /// <summary>Appends <see cref="Stax.Rbf(double)"/>.</summary>
    /// <param name="gamma">Finite and ≥ 0.</param>
    /// <returns>A new builder ending in Rbf.</returns>
    public NetworkBuilder Rbf(double gamma = 1.0) => Add(Stax.Rbf(gamma));

    /// <summary>Appends <see cref="Stax.Sign"/>.</summary>
    /// <returns>A new builder ending in Sign.</returns>
    public NetworkBuilder Sign() => Add(Stax.Sign());

    /// <summary>Appends <see cref="Stax.Gabor"/>.</summary>
    /// <returns>A new builder ending in Gabor.</returns>
    public NetworkBuilder Gabor() => Add(Stax.Gabor());

    /// <summary>Appends <see cref="Stax.Hermite(int)"/>.</summary>
    /// <param name="degree">0 to 170.</param>
    /// <returns>A new builder ending in Hermite.</returns>
    public NetworkBuilder Hermite(int degree) => Add(Stax.Hermite(degree));

    /// <summary>Appends <see cref="Stax.RectifiedMonomial(int)"/>.</summary>
    /// <param name="degree">0 to 170.</param>
    /// <returns>A new builder ending in RectifiedMonomial.</returns>
    public NetworkBuilder RectifiedMonomial(int degree) => Add(Stax.RectifiedMonomial(degree));

    /// <summary>Appends <see cref="Stax.Polynomial(double[])"/>.</summary>
    /// <param name="coef">Coefficients, lowest degree first.</param>
    /// <returns>A new builder ending in Polynomial.</returns>
    public NetworkBuilder Polynomial(params double[] coef) => Add(Stax.Polynomial(coef));

    /// <summary>Appends <see cref="Stax.ElementwiseNumerical(string, int, string?)"/>.</summary>
    /// <param name="fn">A name from <see cref="Stax.ActivationNames"/>.</param>
    /// <param name="deg">Nodes per axis, 1 to 150.</param>
    /// <param name="df">A name used as φ′, or null for the exact derivative.</param>
    /// <returns>A new builder ending in ElementwiseNumerical.</returns>
    public NetworkBuilder ElementwiseNumerical(string fn, int deg, string? df = null) => Add(Stax.ElementwiseNumerical(fn, deg, df));

    /// <summary>Appends <see cref="Stax.ElementwiseNumerical(string, Func{DualNumber, DualNumber}, int)"/>: a user
    /// activation written over <see cref="DualNumber"/>s (φ′ exact).</summary>
    /// <param name="name">The layer's name, for printing and errors.</param>
    /// <param name="fn">φ over dual numbers.</param>
    /// <param name="deg">Nodes per axis, 1 to 150.</param>
    /// <returns>A new builder ending in that activation.</returns>
    public NetworkBuilder ElementwiseNumerical(string name, Func<DualNumber, DualNumber> fn, int deg) =>
        Add(Stax.ElementwiseNumerical(name, fn, deg));

    /// <summary>Appends <see cref="Stax.Named(string)"/>: a registry activation with 25 nodes per axis.</summary>
    /// <param name="fn">A name from <see cref="Stax.ActivationNames"/>.</param>
    /// <returns>A new builder ending in that activation.</returns>
    public NetworkBuilder Named(string fn) => Add(Stax.Named(fn));

    /// <summary>Appends <see cref="Stax.Conv"/>.</summary>
    /// <param name="outChan">Output channels of the finite network (<c>out_chan</c>), at least 1.</param>
    /// <param name="filterShape">Filter sizes, one per spatial axis (<c>filter_shape</c>), each at least 1.</param>
    /// <param name="strides">Strides, one per spatial axis; null (the default) means all ones.</param>
    /// <param name="padding">Valid (the default), Same or Circular.</param>
    /// <param name="wStd">Weight standard deviation (<c>W_std</c>), finite and ≥ 0.</param>
    /// <param name="bStd">Bias standard deviation (<c>b_std</c>), finite and ≥ 0; null (the default) means no bias.</param>
    /// <param name="dimensionNumbers">(lhs, rhs, out) specs of <c>lax.conv_general_dilated</c>, e.g.
    /// <c>["NCHW", "HWIO", "NHWC"]</c>; null (the default) means channels last.</param>
    /// <param name="parameterization">"ntk" (the default) or "standard", as for Dense with N_in = channels × filter size.</param>
    /// <param name="s0">First width scaling <c>s[0]</c> of the standard parameterization, at least 1.</param>
    /// <param name="s1">Second width scaling <c>s[1]</c> of the standard parameterization, at least 1.</param>
    /// <returns>A new builder ending in the Conv layer.</returns>
    /// <exception cref="ArgumentNullException"><paramref name="filterShape"/> is null.</exception>
    /// <exception cref="ArgumentException">An argument is out of range; the exception names it.</exception>
    public NetworkBuilder Conv(
        int outChan,
        int[] filterShape,
        int[]? strides = null,
        PaddingMode padding = PaddingMode.Valid,
        double wStd = 1.0,
        double? bStd = null,
        string[]? dimensionNumbers = null,
        DenseParameterization parameterization = DenseParameterization.Ntk,
        int s0 = 1,
        int s1 = 1) =>
        Add(Stax.Conv(outChan, filterShape, strides, padding, wStd, bStd, dimensionNumbers, parameterization, s0, s1));

    /// <summary>Appends <see cref="Stax.ConvTranspose"/>.</summary>
    /// <param name="outChan">Output channels of the finite network (<c>out_chan</c>), at least 1.</param>
    /// <param name="filterShape">Filter sizes, one per spatial axis (<c>filter_shape</c>), each at least 1.</param>
    /// <param name="strides">Strides, one per spatial axis; null (the default) means all ones.</param>
    /// <param name="padding">Valid (the default), Same or Circular.</param>
    /// <param name="wStd">Weight standard deviation (<c>W_std</c>), finite and ≥ 0.</param>
    /// <param name="bStd">Bias standard deviation (<c>b_std</c>), finite and ≥ 0; null (the default) means no bias.</param>
    /// <param name="dimensionNumbers">(lhs, rhs, out) specs of <c>lax.conv_general_dilated</c>, e.g.
    /// <c>["NCHW", "HWIO", "NHWC"]</c>; null (the default) means channels last.</param>
    /// <param name="parameterization">"ntk" (the default) or "standard", as for Dense with N_in = channels × filter size.</param>
    /// <param name="s0">First width scaling <c>s[0]</c> of the standard parameterization, at least 1.</param>
    /// <param name="s1">Second width scaling <c>s[1]</c> of the standard parameterization, at least 1.</param>
    /// <returns>A new builder ending in the ConvTranspose layer.</returns>
    /// <exception cref="ArgumentNullException"><paramref name="filterShape"/> is null.</exception>
    /// <exception cref="ArgumentException">An argument is out of range; the exception names it.</exception>
    public NetworkBuilder ConvTranspose(
        int outChan,
        int[] filterShape,
        int[]? strides = null,
        PaddingMode padding = PaddingMode.Valid,
        double wStd = 1.0,
        double? bStd = null,
        string[]? dimensionNumbers = null,
        DenseParameterization parameterization = DenseParameterization.Ntk,
        int s0 = 1,
        int s1 = 1) =>
        Add(Stax.ConvTranspose(outChan, filterShape, strides, padding, wStd, bStd, dimensionNumbers, parameterization, s0, s1));

    /// <summary>Appends <see cref="Stax.ConvLocal"/>.</summary>
    /// <param name="outChan">Output channels of the finite network (<c>out_chan</c>), at least 1.</param>
    /// <param name="filterShape">Filter sizes, one per spatial axis (<c>filter_shape</c>), each at least 1.</param>
    /// <param name="strides">Strides, one per spatial axis; null (the default) means all ones.</param>
    /// <param name="padding">Valid (the default), Same or Circular.</param>
    /// <param name="wStd">Weight standard deviation (<c>W_std</c>), finite and ≥ 0.</param>
    /// <param name="bStd">Bias standard deviation (<c>b_std</c>), finite and ≥ 0; null (the default) means no bias.</param>
    /// <param name="dimensionNumbers">(lhs, rhs, out) specs of <c>lax.conv_general_dilated</c>, e.g.
    /// <c>["NCHW", "HWIO", "NHWC"]</c>; null (the default) means channels last.</param>
    /// <param name="parameterization">"ntk" (the default) or "standard", as for Dense with N_in = channels × filter size.</param>
    /// <param name="s0">First width scaling <c>s[0]</c> of the standard parameterization, at least 1.</param>
    /// <param name="s1">Second width scaling <c>s[1]</c> of the standard parameterization, at least 1.</param>
    /// <returns>A new builder ending in the ConvLocal layer.</returns>
    /// <exception cref="ArgumentNullException"><paramref name="filterShape"/> is null.</exception>
    /// <exception cref="ArgumentException">An argument is out of range; the exception names it.</exception>
    public NetworkBuilder ConvLocal(
        int outChan,
        int[] filterShape,
        int[]? strides = null,
        PaddingMode padding = PaddingMode.Valid,
        double wStd = 1.0,
        double? bStd = null,
        string[]? dimensionNumbers = null,
        DenseParameterization parameterization = DenseParameterization.Ntk,
        int s0 = 1,
        int s1 = 1) =>
        Add(Stax.ConvLocal(outChan, filterShape, strides, padding, wStd, bStd, dimensionNumbers, parameterization, s0, s1));

    /// <summary>Appends <see cref="Stax.Flatten(int, int)"/>.</summary>
    /// <param name="batchAxis">The batch axis of the input.</param>
    /// <param name="batchAxisOut">The batch axis of the output, 0 or 1.</param>
    /// <returns>A new builder ending in Flatten.</returns>
    /// <exception cref="ArgumentException"><paramref name="batchAxisOut"/> is neither 0 nor 1.</exception>
    public NetworkBuilder Flatten(int batchAxis = 0, int batchAxisOut = 0) => Add(Stax.Flatten(batchAxis, batchAxisOut));

    /// <summary>Appends <see cref="Stax.AvgPool"/>: average pooling.</summary>
    /// <param name="windowShape">The window's size along each spatial axis, each at least 1.</param>
    /// <param name="strides">The window's step along each spatial axis; null means all ones.</param>
    /// <param name="padding">VALID (the default), SAME or CIRCULAR.</param>
    /// <param name="normalizeEdges">True: SAME border windows are divided by their entries inside the input.</param>
    /// <param name="batchAxis">The batch axis of the input.</param>
    /// <param name="channelAxis">The channel axis of the input.</param>
    /// <returns>A new builder ending in AvgPool.</returns>
    /// <exception cref="ArgumentNullException"><paramref name="windowShape"/> is null.</exception>
    /// <exception cref="ArgumentException">An argument is out of range; the exception names it.</exception>
    public NetworkBuilder AvgPool(
        int[] windowShape,
        int[]? strides = null,
        PaddingMode padding = PaddingMode.Valid,
        bool normalizeEdges = false,
        int batchAxis = 0,
        int channelAxis = -1) =>
        Add(Stax.AvgPool(windowShape, strides, padding, normalizeEdges, batchAxis, channelAxis));

    /// <summary>Appends <see cref="Stax.SumPool"/>: sum pooling.</summary>
    /// <param name="windowShape">The window's size along each spatial axis, each at least 1.</param>
    /// <param name="strides">The window's step along each spatial axis; null means all ones.</param>
    /// <param name="padding">VALID (the default), SAME or CIRCULAR.</param>
    /// <param name="batchAxis">The batch axis of the input.</param>
    /// <param name="channelAxis">The channel axis of the input.</param>
    /// <returns>A new builder ending in SumPool.</returns>
    /// <exception cref="ArgumentNullException"><paramref name="windowShape"/> is null.</exception>
    /// <exception cref="ArgumentException">An argument is out of range; the exception names it.</exception>
    public NetworkBuilder SumPool(
        int[] windowShape,
        int[]? strides = null,
        PaddingMode padding = PaddingMode.Valid,
        int batchAxis = 0,
        int channelAxis = -1) =>
        Add(Stax.SumPool(windowShape, strides, padding, batchAxis, channelAxis));

    /// <summary>Appends <see cref="Stax.GlobalAvgPool"/>: the mean over all spatial positions.</summary>
    /// <param name="batchAxis">The batch axis of the input.</param>
    /// <param name="channelAxis">The channel axis of the input.</param>
    /// <returns>A new builder ending in GlobalAvgPool.</returns>
    /// <exception cref="ArgumentException">The two axes are equal.</exception>
    public NetworkBuilder GlobalAvgPool(int batchAxis = 0, int channelAxis = -1) => Add(Stax.GlobalAvgPool(batchAxis, channelAxis));

    /// <summary>Appends <see cref="Stax.GlobalSumPool"/>: the sum over all spatial positions.</summary>
    /// <param name="batchAxis">The batch axis of the input.</param>
    /// <param name="channelAxis">The channel axis of the input.</param>
    /// <returns>A new builder ending in GlobalSumPool.</returns>
    /// <exception cref="ArgumentException">The two axes are equal.</exception>
    public NetworkBuilder GlobalSumPool(int batchAxis = 0, int channelAxis = -1) => Add(Stax.GlobalSumPool(batchAxis, channelAxis));

    /// <summary>Appends <see cref="Stax.Dropout"/>.</summary>
    /// <param name="rate">The keep probability, in (0, 1].</param>
    /// <param name="mode">Train (the default) or Test.</param>
    /// <returns>A new builder ending in Dropout.</returns>
    /// <exception cref="ArgumentException">As <see cref="Stax.Dropout"/>.</exception>
    public NetworkBuilder Dropout(double rate, DropoutPhase mode = DropoutPhase.Train) => Add(Stax.Dropout(rate, mode));

    /// <summary>Appends <see cref="Stax.LayerNorm"/>.</summary>
    /// <param name="axis">The axes to normalise over; null is the last axis.</param>
    /// <param name="eps">Added to the variance.</param>
    /// <param name="batchAxis">The batch axis of the inputs.</param>
    /// <param name="channelAxis">The channel axis of the inputs.</param>
    /// <returns>A new builder ending in LayerNorm.</returns>
    /// <exception cref="ArgumentException">As <see cref="Stax.LayerNorm"/>.</exception>
    public NetworkBuilder LayerNorm(int[]? axis = null, double eps = 1e-12, int batchAxis = 0, int channelAxis = -1) =>
        Add(Stax.LayerNorm(axis, eps, batchAxis, channelAxis));

    /// <summary>Appends <see cref="Stax.DotGeneral(Array, Array, int[], int[], int[], int[], int, int)"/>.</summary>
    /// <param name="lhs">The constant left operand, or null.</param>
    /// <param name="rhs">The constant right operand, or null.</param>
    /// <param name="lhsContracting">The left operand's contracted axes.</param>
    /// <param name="rhsContracting">The right operand's contracted axes.</param>
    /// <param name="lhsBatch">The left operand's batch axes.</param>
    /// <param name="rhsBatch">The right operand's batch axes.</param>
    /// <param name="batchAxis">The inputs' batch axis.</param>
    /// <param name="channelAxis">The inputs' channel axis.</param>
    /// <returns>A new builder ending in DotGeneral.</returns>
    /// <exception cref="ArgumentException">As <see cref="Stax.DotGeneral(Array, Array, int[], int[], int[], int[], int, int)"/>.</exception>
    public NetworkBuilder DotGeneral(
        Array? lhs = null,
        Array? rhs = null,
        int[]? lhsContracting = null,
        int[]? rhsContracting = null,
        int[]? lhsBatch = null,
        int[]? rhsBatch = null,
        int batchAxis = 0,
        int channelAxis = -1) =>
        Add(Stax.DotGeneral(lhs, rhs, lhsContracting, rhsContracting, lhsBatch, rhsBatch, batchAxis, channelAxis));

    /// <summary>Appends <see cref="Stax.Index(IndexPart[])"/>.</summary>
    /// <param name="idx">One part per indexed axis.</param>
    /// <returns>A new builder ending in Index.</returns>
    /// <exception cref="ArgumentNullException"><paramref name="idx"/> or a part is null.</exception>
    /// <exception cref="ArgumentException">As <see cref="Stax.Index(IndexPart[])"/>.</exception>
    public NetworkBuilder Index(params IndexPart[] idx) => Add(Stax.Index(idx));

    /// <summary>Appends <see cref="Stax.ImageResize"/>.</summary>
    /// <param name="shape">The output size of every axis, −1 to keep it.</param>
    /// <param name="method">Linear or Nearest.</param>
    /// <param name="antialias">Widen the linear kernel when downsampling.</param>
    /// <param name="batchAxis">The inputs' batch axis.</param>
    /// <param name="channelAxis">The inputs' channel axis.</param>
    /// <returns>A new builder ending in ImageResize.</returns>
    /// <exception cref="ArgumentNullException"><paramref name="shape"/> is null.</exception>
    /// <exception cref="ArgumentException">As <see cref="Stax.ImageResize"/>.</exception>
    public NetworkBuilder ImageResize(int[] shape, ResizeInterpolation method, bool antialias = true, int batchAxis = 0, int channelAxis = -1) =>
        Add(Stax.ImageResize(shape, method, antialias, batchAxis, channelAxis));

    /// <summary>Appends <see cref="Stax.FanOut(int)"/>.</summary>
    /// <param name="num">The number of branches, at least 1.</param>
    /// <returns>A new builder ending in FanOut.</returns>
    /// <exception cref="ArgumentException"><paramref name="num"/> is less than 1.</exception>
    public NetworkBuilder FanOut(int num) => Add(Stax.FanOut(num));

    /// <summary>Appends <see cref="Stax.Parallel(Network[])"/>.</summary>
    /// <param name="layers">One layer per branch.</param>
    /// <returns>A new builder ending in the parallel combination.</returns>
    /// <exception cref="ArgumentNullException"><paramref name="layers"/> or one of its items is null.</exception>
    public NetworkBuilder Parallel(params Network[] layers) => Add(Stax.Parallel(layers));

    /// <summary>Appends <see cref="Stax.FanInSum"/>.</summary>
    /// <returns>A new builder ending in FanInSum.</returns>
    public NetworkBuilder FanInSum() => Add(Stax.FanInSum());

    /// <summary>Appends <see cref="Stax.FanInProd"/>.</summary>
    /// <returns>A new builder ending in FanInProd.</returns>
    public NetworkBuilder FanInProd() => Add(Stax.FanInProd());

    /// <summary>Appends <see cref="Stax.FanInConcat(int)"/>.</summary>
    /// <param name="axis">The axis to concatenate along.</param>
    /// <returns>A new builder ending in FanInConcat.</returns>
    public NetworkBuilder FanInConcat(int axis = -1) => Add(Stax.FanInConcat(axis));

    /// <summary>Appends <see cref="Stax.Identity"/>.</summary>
    /// <returns>A new builder ending in Identity.</returns>
    public NetworkBuilder Identity() => Add(Stax.Identity());

    /// <summary>Appends <see cref="Stax.Repeat(int, Network)"/>: <paramref name="n"/> copies of a layer in series.</summary>
    /// <param name="n">The number of copies, at least 0.</param>
    /// <param name="layer">The layer to repeat.</param>
    /// <returns>A new builder ending in the repeated layer.</returns>
    /// <exception cref="ArgumentNullException"><paramref name="layer"/> is null.</exception>
    /// <exception cref="ArgumentException"><paramref name="n"/> is negative.</exception>
    public NetworkBuilder Repeat(int n, Network layer) => Add(Stax.Repeat(n, layer));

    /// <summary>Appends <see cref="Stax.Repeat(Network, int)"/> (neural_tangents' argument order): the layer composed
    /// <paramref name="n"/> times with untied parameters.</summary>
    /// <param name="layer">The layer to repeat; it must keep its input shape.</param>
    /// <param name="n">The number of copies, 0 (the identity) to 1,000,000.</param>
    /// <returns>A new builder ending in the repeated layer.</returns>
    /// <exception cref="ArgumentNullException"><paramref name="layer"/> is null.</exception>
    /// <exception cref="ArgumentException"><paramref name="n"/> is out of range.</exception>
    public NetworkBuilder Repeat(Network layer, int n) => Add(Stax.Repeat(layer, n));
}
