using Microsoft.FSharp.Collections;
using Microsoft.FSharp.Core;

namespace NeuralTangents.CSharp;

/// <summary>
/// Factory methods for networks, with the names, arguments and defaults of neural_tangents' <c>nt.stax</c>
/// (arguments in C# casing: <c>W_std</c> is <c>wStd</c>). Every method validates its arguments and returns a new
/// immutable <see cref="Network"/>.
/// </summary>
public static class Stax
{
    /// <summary>Layers applied one after another (neural_tangents' <c>serial</c>).</summary>
    /// <param name="layers">The layers in order; none gives the identity.</param>
    /// <returns>The composed network.</returns>
    /// <exception cref="ArgumentNullException"><paramref name="layers"/> or one of its items is null.</exception>
    public static Network Serial(params Network[] layers) =>
        Wrap(StaxModule.Serial(ToList(layers, nameof(layers))));

    /// <summary>Layers applied side by side, the i-th to the i-th input branch (neural_tangents' <c>parallel</c>);
    /// usually preceded by <see cref="FanOut(int)"/>.</summary>
    /// <param name="layers">One layer per branch.</param>
    /// <returns>The parallel combination.</returns>
    /// <exception cref="ArgumentNullException"><paramref name="layers"/> or one of its items is null.</exception>
    public static Network Parallel(params Network[] layers) =>
        Wrap(StaxModule.Parallel(ToList(layers, nameof(layers))));

    /// <summary>Copies its input into <paramref name="num"/> branches (neural_tangents' <c>FanOut</c>).</summary>
    /// <param name="num">The number of branches, at least 1.</param>
    /// <returns>The FanOut layer.</returns>
    /// <exception cref="ArgumentException"><paramref name="num"/> is less than 1.</exception>
    public static Network FanOut(int num) =>
        Wrap(Boundary.Call(() => StaxModule.FanOut(num), Boundary.Names()));

    /// <summary>Sums its input branches (neural_tangents' <c>FanInSum</c>).</summary>
    /// <returns>The FanInSum layer.</returns>
    public static Network FanInSum() => Wrap(StaxModule.FanInSum);

    /// <summary>Multiplies its input branches elementwise (neural_tangents' <c>FanInProd</c>).</summary>
    /// <returns>The FanInProd layer.</returns>
    public static Network FanInProd() => Wrap(StaxModule.FanInProd);

    /// <summary>Concatenates its input branches along an axis (neural_tangents' <c>FanInConcat</c>).</summary>
    /// <param name="axis">The axis to concatenate along; −1 (the default) is the channel axis of flat outputs.</param>
    /// <returns>The FanInConcat layer.</returns>
    public static Network FanInConcat(int axis = -1) => Wrap(StaxModule.FanInConcat(axis));

    /// <summary>The identity layer (neural_tangents' <c>Identity</c>).</summary>
    /// <returns>The Identity layer.</returns>
    public static Network Identity() => Wrap(StaxModule.Identity);

    /// <summary>A fully connected layer (neural_tangents' <c>Dense</c>).</summary>
    /// <param name="outDim">Output width of the finite network (<c>out_dim</c>), at least 1.</param>
    /// <param name="wStd">Weight standard deviation (<c>W_std</c>), finite and ≥ 0.</param>
    /// <param name="bStd">Bias standard deviation (<c>b_std</c>), finite and ≥ 0; null (the default) means no bias.</param>
    /// <param name="batchAxis">The batch axis of the inputs (<c>batch_axis</c>).</param>
    /// <param name="channelAxis">The feature axis of the inputs (<c>channel_axis</c>), different from the batch axis.</param>
    /// <param name="parameterization">"ntk" (the default) or "standard".</param>
    /// <param name="s0">First width scaling <c>s[0]</c> of the standard parameterization, at least 1.</param>
    /// <param name="s1">Second width scaling <c>s[1]</c> of the standard parameterization, at least 1.</param>
    /// <returns>The Dense layer.</returns>
    /// <exception cref="ArgumentException">An argument is out of range; the exception names it.</exception>
    public static Network Dense(
        int outDim,
        double wStd = 1.0,
        double? bStd = null,
        int batchAxis = 0,
        int channelAxis = -1,
        DenseParameterization parameterization = DenseParameterization.Ntk,
        int s0 = 1,
        int s1 = 1)
    {
        var p = parameterization switch
        {
            DenseParameterization.Ntk => Parameterization.Ntk,
            DenseParameterization.Standard => Parameterization.Standard,
            _ => throw new ArgumentException(
                $"unknown DenseParameterization value {(int)parameterization}", nameof(parameterization)),
        };
        var spec = new DenseSpec(
            outDim,
            wStd,
            bStd is { } b ? FSharpOption<double>.Some(b) : FSharpOption<double>.None,
            batchAxis,
            channelAxis,
            p,
            Tuple.Create(s0, s1));
        return Wrap(Boundary.Call(
            () => StaxModule.DenseWith(spec),
            Boundary.Names(
                ("out_dim", nameof(outDim)),
                ("W_std", nameof(wStd)),
                ("b_std", nameof(bStd)),
                ("s", s0 < 1 ? nameof(s0) : nameof(s1)),
                ("batch_axis", nameof(batchAxis)),
                ("channel_axis", nameof(channelAxis)))));
    }

    /// <summary>max(x, 0) (neural_tangents' <c>Relu</c>, i.e. ABRelu(0, 1)).</summary>
    /// <param name="doStabilize">neural_tangents' <c>do_stabilize</c>; accepted and changes nothing (its rescaling
    /// before the arc-cosine formula is scale-equivariant, and this rule clamps the correlation itself).</param>
    /// <returns>The Relu layer.</returns>
    public static Network Relu(bool doStabilize = false) => Wrap(StaxModule.Relu);

    /// <summary>alpha·min(x, 0) + max(x, 0) (neural_tangents' <c>LeakyRelu</c>).</summary>
    /// <param name="alpha">The slope for negative inputs, finite.</param>
    /// <param name="doStabilize">neural_tangents' <c>do_stabilize</c>; accepted and changes nothing (its rescaling
    /// before the arc-cosine formula is scale-equivariant, and this rule clamps the correlation itself).</param>
    /// <returns>The LeakyRelu layer.</returns>
    /// <exception cref="ArgumentException"><paramref name="alpha"/> is not finite.</exception>
    public static Network LeakyRelu(double alpha, bool doStabilize = false) =>
        Wrap(Boundary.Call(() => StaxModule.LeakyRelu(alpha), Boundary.Names(("a", nameof(alpha)))));

    /// <summary>a·min(x, 0) + b·max(x, 0) (neural_tangents' <c>ABRelu</c>).</summary>
    /// <param name="a">The slope for negative inputs, finite.</param>
    /// <param name="b">The slope for positive inputs, finite.</param>
    /// <param name="doStabilize">neural_tangents' <c>do_stabilize</c>; accepted and changes nothing (its rescaling
    /// before the arc-cosine formula is scale-equivariant, and this rule clamps the correlation itself).</param>
    /// <returns>The ABRelu layer.</returns>
    /// <exception cref="ArgumentException"><paramref name="a"/> or <paramref name="b"/> is not finite.</exception>
    public static Network ABRelu(double a, double b, bool doStabilize = false) =>
        Wrap(Boundary.Call(() => StaxModule.ABRelu(a, b), Boundary.Names()));

    /// <summary>|x| (neural_tangents' <c>Abs</c>, i.e. ABRelu(−1, 1)).</summary>
    /// <param name="doStabilize">neural_tangents' <c>do_stabilize</c>; accepted and changes nothing (its rescaling
    /// before the arc-cosine formula is scale-equivariant, and this rule clamps the correlation itself).</param>
    /// <returns>The Abs layer.</returns>
    public static Network Abs(bool doStabilize = false) => Wrap(StaxModule.Abs);

    /// <summary>a·erf(b·x) + c (neural_tangents' <c>Erf</c>).</summary>
    /// <param name="a">Output scale, finite.</param>
    /// <param name="b">Input scale, finite.</param>
    /// <param name="c">Output shift, finite.</param>
    /// <returns>The Erf layer.</returns>
    /// <exception cref="ArgumentException">An argument is not finite; the exception names it.</exception>
    public static Network Erf(double a = 1.0, double b = 1.0, double c = 0.0) =>
        Wrap(Boundary.Call(() => StaxModule.Erf(a, b, c), Boundary.Names()));

    /// <summary>0.5·erf(x / 2.4020563531719796) + 0.5, neural_tangents' <c>Sigmoid_like</c> stand-in for the
    /// logistic sigmoid.</summary>
    /// <returns>The Sigmoid_like layer.</returns>
    public static Network SigmoidLike() => Wrap(StaxModule.SigmoidLike);

    /// <summary>a·sin(b·x + c) (neural_tangents' <c>Sin</c>).</summary>
    /// <param name="a">Output scale, finite.</param>
    /// <param name="b">Input scale, finite.</param>
    /// <param name="c">Phase, finite.</param>
    /// <returns>The Sin layer.</returns>
    /// <exception cref="ArgumentException">An argument is not finite; the exception names it.</exception>
    public static Network Sin(double a = 1.0, double b = 1.0, double c = 0.0) =>
        Wrap(Boundary.Call(() => StaxModule.Sin(a, b, c), Boundary.Names()));

    /// <summary>a·cos(b·x + c) (neural_tangents' <c>Cos</c>, i.e. Sin with phase c + π/2).</summary>
    /// <param name="a">Output scale, finite.</param>
    /// <param name="b">Input scale, finite.</param>
    /// <param name="c">Phase, finite.</param>
    /// <returns>The Cos layer.</returns>
    /// <exception cref="ArgumentException">An argument is not finite; the exception names it.</exception>
    public static Network Cos(double a = 1.0, double b = 1.0, double c = 0.0) =>
        Wrap(Boundary.Call(() => StaxModule.Cos(a, b, c), Boundary.Names()));

    /// <summary>The Gaussian error linear unit x·Φ(x) (neural_tangents' <c>Gelu</c>).</summary>
    /// <param name="approximate">Whether the finite network uses the tanh approximation; the infinite-width kernel
    /// is the exact one either way, as in neural_tangents.</param>
    /// <returns>The Gelu layer.</returns>
    public static Network Gelu(bool approximate = false) => Wrap(StaxModule.Gelu(approximate));

    /// <summary>x^degree (neural_tangents' <c>Monomial</c>).</summary>
    /// <param name="degree">The power, 0 to 5.</param>
    /// <returns>The Monomial layer.</returns>
    /// <exception cref="ArgumentException"><paramref name="degree"/> is outside 0..5.</exception>
    public static Network Monomial(int degree) =>
        Wrap(Boundary.Call(() => StaxModule.Monomial(degree), Boundary.Names()));

    /// <summary>a·exp(b·x) (neural_tangents' <c>Exp</c>).</summary>
    /// <param name="a">Output scale, finite.</param>
    /// <param name="b">Input scale, finite.</param>
    /// <returns>The Exp layer.</returns>
    /// <exception cref="ArgumentException">An argument is not finite; the exception names it.</exception>
    public static Network Exp(double a = 1.0, double b = 1.0) =>
        Wrap(Boundary.Call(() => StaxModule.Exp(a, b), Boundary.Names()));

    /// <summary>a·exp(b·x²) (neural_tangents' <c>Gaussian</c>).</summary>
    /// <param name="a">Output scale, finite.</param>
    /// <param name="b">Exponent scale, finite (the kernel is finite for b ≤ 0).</param>
    /// <returns>The Gaussian layer.</returns>
    /// <exception cref="ArgumentException">An argument is not finite; the exception names it.</exception>
    public static Network Gaussian(double a = 1.0, double b = -1.0) =>
        Wrap(Boundary.Call(() => StaxModule.Gaussian(a, b), Boundary.Names()));

    /// <summary>neural_tangents' <c>ExpNormalized</c>, the Gaussian normalized kernel (arXiv:2003.02237); kernel
    /// only: the finite network raises.</summary>
    /// <param name="gamma">Exponent scale, finite.</param>
    /// <param name="shift">Shift of the normalized covariance, finite.</param>
    /// <param name="doClip">Clip the normalized covariance to [−1, 1].</param>
    /// <returns>The ExpNormalized layer.</returns>
    /// <exception cref="ArgumentException">An argument is not finite; the exception names it.</exception>
    public static Network ExpNormalized(double gamma = 1.0, double shift = -1.0, bool doClip = false) =>
        Wrap(Boundary.Call(() => StaxModule.ExpNormalized(gamma, shift, doClip), Boundary.Names(("do_clip", nameof(doClip)))));

    /// <summary>√2·sin(√(2γ)·x + π/4), whose NNGP is the RBF kernel (neural_tangents' <c>Rbf</c>).</summary>
    /// <param name="gamma">1/(2ℓ²) for length scale ℓ, finite and ≥ 0.</param>
    /// <returns>The Rbf layer.</returns>
    /// <exception cref="ArgumentException"><paramref name="gamma"/> is negative or not finite.</exception>
    public static Network Rbf(double gamma = 1.0) =>
        Wrap(Boundary.Call(() => StaxModule.Rbf(gamma), Boundary.Names()));

    /// <summary>sign(x) (neural_tangents' <c>Sign</c>), with exact covariances between inputs.</summary>
    /// <returns>The Sign layer.</returns>
    public static Network Sign() => Wrap(StaxModule.Sign);

    /// <summary>exp(−x²)·sin(x) (neural_tangents' <c>Gabor</c>).</summary>
    /// <returns>The Gabor layer.</returns>
    public static Network Gabor() => Wrap(StaxModule.Gabor);

    /// <summary>The normalized Hermite polynomial He_degree(x)/√(degree!) (neural_tangents' <c>Hermite</c>); its
    /// kernel is exact for unit-variance pre-activations.</summary>
    /// <param name="degree">0 to 170.</param>
    /// <returns>The Hermite layer.</returns>
    /// <exception cref="ArgumentException"><paramref name="degree"/> is out of range.</exception>
    public static Network Hermite(int degree) =>
        Wrap(Boundary.Call(() => StaxModule.Hermite(degree), Boundary.Names()));

    /// <summary>(x ≥ 0)·x^degree (neural_tangents' <c>RectifiedMonomial</c>), exact also at θ = 0.</summary>
    /// <param name="degree">0 to 170.</param>
    /// <returns>The RectifiedMonomial layer.</returns>
    /// <exception cref="ArgumentException"><paramref name="degree"/> is out of range.</exception>
    public static Network RectifiedMonomial(int degree) =>
        Wrap(Boundary.Call(() => StaxModule.RectifiedMonomial(degree), Boundary.Names()));

    /// <summary>coef[0] + coef[1]·x + … + coef[n]·xⁿ (neural_tangents' <c>Polynomial</c>).</summary>
    /// <param name="coef">The coefficients, lowest degree first, each finite.</param>
    /// <returns>The Polynomial layer.</returns>
    /// <exception cref="ArgumentNullException"><paramref name="coef"/> is null.</exception>
    /// <exception cref="ArgumentException">A coefficient is not finite.</exception>
    public static Network Polynomial(params double[] coef)
    {
        var list = ListModule.OfArray(Boundary.NotNull(coef, nameof(coef)));
        return Wrap(Boundary.Call(() => StaxModule.Polynomial(list), Boundary.Names()));
    }

    /// <summary>The names <see cref="ElementwiseNumerical(string, int, string?)"/> and <see cref="Named"/> accept:
    /// tanh, sech2, sigmoid, softplus, swish, silu, elu, selu, mish, relu6, hard_tanh, relu, sin, cos, exp, erf, gelu.</summary>
    public static IReadOnlyList<string> ActivationNames => [.. StaxModule.ActivationNames];

    /// <summary>neural_tangents' <c>ElementwiseNumerical(fn, deg, df)</c> with a registry activation: the kernel by
    /// deg×deg Gauss–Hermite quadrature; φ′ the exact derivative of <paramref name="fn"/> (dual numbers) unless
    /// <paramref name="df"/> names one. Plain data: it travels as JSON.</summary>
    /// <param name="fn">A name from <see cref="ActivationNames"/>.</param>
    /// <param name="deg">Nodes per axis, 1 to 150.</param>
    /// <param name="df">A name used as φ′, or null for the exact derivative.</param>
    /// <returns>The ElementwiseNumerical layer.</returns>
    /// <exception cref="ArgumentNullException"><paramref name="fn"/> is null.</exception>
    /// <exception cref="ArgumentException">An unknown name or a degree out of range.</exception>
    public static Network ElementwiseNumerical(string fn, int deg, string? df = null)
    {
        Boundary.NotNull(fn, nameof(fn));
        var dfOpt = df is null ? FSharpOption<string>.None : FSharpOption<string>.Some(df);
        return Wrap(Boundary.Call(() => StaxModule.ElementwiseNumerical(fn, deg, dfOpt), Boundary.Names()));
    }

    /// <summary>A registry activation by name (e.g. "tanh", "swish", "mish") as a ready layer:
    /// <see cref="ElementwiseNumerical(string, int, string?)"/> with 25 nodes per axis.</summary>
    /// <param name="fn">A name from <see cref="ActivationNames"/>.</param>
    /// <returns>The layer.</returns>
    /// <exception cref="ArgumentNullException"><paramref name="fn"/> is null.</exception>
    /// <exception cref="ArgumentException">An unknown name.</exception>
    public static Network Named(string fn)
    {
        Boundary.NotNull(fn, nameof(fn));
        return Wrap(Boundary.Call(() => StaxModule.Named(fn), Boundary.Names()));
    }

    /// <summary>ElementwiseNumerical from a user function and its derivative (neural_tangents' <c>fn</c>,
    /// <c>df</c>). Not JSON-encodable.</summary>
    /// <param name="name">The layer's name, for printing and errors.</param>
    /// <param name="fn">φ.</param>
    /// <param name="df">φ′.</param>
    /// <param name="deg">Nodes per axis, 1 to 150.</param>
    /// <returns>The layer.</returns>
    /// <exception cref="ArgumentNullException">An argument is null.</exception>
    /// <exception cref="ArgumentException"><paramref name="deg"/> is out of range.</exception>
    public static Network ElementwiseNumerical(string name, Func<double, double> fn, Func<double, double> df, int deg)
    {
        Boundary.NotNull(name, nameof(name));
        var f = FuncConvert.FromFunc(Boundary.NotNull(fn, nameof(fn)));
        var d = FuncConvert.FromFunc(Boundary.NotNull(df, nameof(df)));
        return Wrap(Boundary.Call(() => StaxModule.ElementwiseNumerical(name, f, d, deg), Boundary.Names()));
    }

    /// <summary>ElementwiseNumerical from a user function written once over <see cref="DualNumber"/>s: φ′ by
    /// forward-mode differentiation, exact to round-off (neural_tangents' <c>ElementwiseNumerical(fn, deg)</c>, whose
    /// φ′ is JAX's <c>grad(fn)</c>). Not JSON-encodable.</summary>
    /// <example><c>Stax.ElementwiseNumerical("mish", x =&gt; x * DualNumber.Tanh(DualNumber.Log1p(DualNumber.Exp(x))), 25)</c></example>
    /// <param name="name">The layer's name, for printing and errors.</param>
    /// <param name="fn">φ over dual numbers (operators, constants as doubles, and <see cref="DualNumber.Tanh"/>,
    /// <see cref="DualNumber.Exp"/>, …).</param>
    /// <param name="deg">Nodes per axis, 1 to 150.</param>
    /// <returns>The layer.</returns>
    /// <exception cref="ArgumentNullException">An argument is null.</exception>
    /// <exception cref="ArgumentException"><paramref name="deg"/> is out of range.</exception>
    public static Network ElementwiseNumerical(string name, Func<DualNumber, DualNumber> fn, int deg)
    {
        Boundary.NotNull(name, nameof(name));
        Boundary.NotNull(fn, nameof(fn));
        var f = FuncConvert.FromFunc<Dual, Dual>(x => fn(DualNumber.Of(x)).ToCore());
        return Wrap(Boundary.Call(() => StaxModule.ElementwiseNumericalDual(name, f, deg), Boundary.Names()));
    }

    /// <summary>neural_tangents' <c>Elementwise(fn, nngp_fn, d_nngp_fn)</c>: the NNGP map
    /// (c, q1, q2) ↦ E[φ(u)φ(v)] and its derivative in c, E[φ′(u)φ′(v)]. Not JSON-encodable.</summary>
    /// <param name="name">The layer's name, for printing and errors.</param>
    /// <param name="nngpFn">(cov12, var1, var2) ↦ E[φ(u)φ(v)].</param>
    /// <param name="dNngpFn">(cov12, var1, var2) ↦ E[φ′(u)φ′(v)].</param>
    /// <param name="fn">φ for the finite network, or null (the finite network then raises).</param>
    /// <param name="df">φ′ for the finite network's backward pass, or null.</param>
    /// <returns>The layer.</returns>
    /// <exception cref="ArgumentNullException"><paramref name="name"/>, <paramref name="nngpFn"/> or
    /// <paramref name="dNngpFn"/> is null.</exception>
    public static Network Elementwise(
        string name,
        Func<double, double, double, double> nngpFn,
        Func<double, double, double, double> dNngpFn,
        Func<double, double>? fn = null,
        Func<double, double>? df = null)
    {
        Boundary.NotNull(name, nameof(name));
        var n = FuncConvert.FromFunc(Boundary.NotNull(nngpFn, nameof(nngpFn)));
        var d = FuncConvert.FromFunc(Boundary.NotNull(dNngpFn, nameof(dNngpFn)));
        return Wrap(Boundary.Call(() => StaxModule.Elementwise(name, Opt(fn), Opt(df), n, d), Boundary.Names()));
    }

    /// <summary>neural_tangents' <c>Elementwise(fn, nngp_fn)</c> without <c>d_nngp_fn</c>: the NNGP map is written
    /// over <see cref="DualNumber"/>s in the covariance, and E[φ′(u)φ′(v)] = ∂nngp/∂c is its derivative part
    /// (neural_tangents takes it by autodiff too). Not JSON-encodable.</summary>
    /// <param name="name">The layer's name, for printing and errors.</param>
    /// <param name="nngpFn">(cov12 as a dual number, var1, var2) ↦ E[φ(u)φ(v)].</param>
    /// <param name="fn">φ for the finite network, or null.</param>
    /// <param name="df">φ′ for the finite network's backward pass, or null.</param>
    /// <returns>The layer.</returns>
    /// <exception cref="ArgumentNullException"><paramref name="name"/> or <paramref name="nngpFn"/> is null.</exception>
    public static Network Elementwise(
        string name,
        Func<DualNumber, double, double, DualNumber> nngpFn,
        Func<double, double>? fn = null,
        Func<double, double>? df = null)
    {
        Boundary.NotNull(name, nameof(name));
        Boundary.NotNull(nngpFn, nameof(nngpFn));
        var n = FuncConvert.FromFunc<Dual, double, double, Dual>((c, q1, q2) => nngpFn(DualNumber.Of(c), q1, q2).ToCore());
        return Wrap(Boundary.Call(() => StaxModule.ElementwiseDual(name, Opt(fn), Opt(df), n), Boundary.Names()));
    }

    private static FSharpOption<FSharpFunc<double, double>> Opt(Func<double, double>? f) =>
        f is null ? FSharpOption<FSharpFunc<double, double>>.None : FSharpOption<FSharpFunc<double, double>>.Some(FuncConvert.FromFunc(f));

    /// <summary>A convolution with one filter shared by all positions (neural_tangents' <c>Conv</c>).</summary>
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
    /// <returns>The Conv layer.</returns>
    /// <exception cref="ArgumentNullException"><paramref name="filterShape"/> is null.</exception>
    /// <exception cref="ArgumentException">An argument is out of range; the exception names it.</exception>
    public static Network Conv(
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
        ConvOf(ConvKind.Conv, outChan, filterShape, strides, padding, wStd, bStd, parameterization, s0, s1, dimensionNumbers);

    /// <summary>The transpose convolution (neural_tangents' <c>ConvTranspose</c>).</summary>
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
    /// <returns>The ConvTranspose layer.</returns>
    /// <exception cref="ArgumentNullException"><paramref name="filterShape"/> is null.</exception>
    /// <exception cref="ArgumentException">An argument is out of range; the exception names it.</exception>
    public static Network ConvTranspose(
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
        ConvOf(ConvKind.Transpose, outChan, filterShape, strides, padding, wStd, bStd, parameterization, s0, s1, dimensionNumbers);

    /// <summary>A locally connected layer: a separate filter at every output position (neural_tangents'
    /// <c>ConvLocal</c>).</summary>
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
    /// <returns>The ConvLocal layer.</returns>
    /// <exception cref="ArgumentNullException"><paramref name="filterShape"/> is null.</exception>
    /// <exception cref="ArgumentException">An argument is out of range; the exception names it.</exception>
    public static Network ConvLocal(
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
        ConvOf(ConvKind.Local, outChan, filterShape, strides, padding, wStd, bStd, parameterization, s0, s1, dimensionNumbers);

    private static Network ConvOf(
        ConvKind kind,
        int outChan,
        int[] filterShape,
        int[]? strides,
        PaddingMode padding,
        double wStd,
        double? bStd,
        DenseParameterization parameterization,
        int s0,
        int s1,
        string[]? dimensionNumbers)
    {
        Boundary.NotNull(filterShape, nameof(filterShape));
        var p = parameterization switch
        {
            DenseParameterization.Ntk => Parameterization.Ntk,
            DenseParameterization.Standard => Parameterization.Standard,
            _ => throw new ArgumentException(
                $"unknown DenseParameterization value {(int)parameterization}", nameof(parameterization)),
        };
        var pad = padding switch
        {
            PaddingMode.Valid => Padding.Valid,
            PaddingMode.Same => Padding.Same,
            PaddingMode.Circular => Padding.Circular,
            _ => throw new ArgumentException($"unknown PaddingMode value {(int)padding}", nameof(padding)),
        };
        Tuple<string, string, string>? dims = null;
        if (dimensionNumbers is not null)
        {
            var d = Boundary.NoNulls(dimensionNumbers, nameof(dimensionNumbers));
            if (d.Length != 3)
            {
                throw new ArgumentException(
                    $"must be three specs (lhs, rhs, out), got {d.Length}", nameof(dimensionNumbers));
            }

            dims = Tuple.Create(d[0], d[1], d[2]);
        }

        return Wrap(Boundary.Call(
            () =>
            {
                var defaults = StaxModule.ConvDefaults(outChan, ListModule.OfArray(filterShape));
                var spec = new ConvSpec(
                    kind,
                    outChan,
                    ListModule.OfArray(filterShape),
                    strides is null ? defaults.Strides : ListModule.OfArray(strides),
                    pad,
                    wStd,
                    bStd is { } b ? FSharpOption<double>.Some(b) : FSharpOption<double>.None,
                    dims ?? defaults.DimensionNumbers,
                    p,
                    Tuple.Create(s0, s1));
                return StaxModule.ConvWith(spec);
            },
            Boundary.Names(
                ("out_chan", nameof(outChan)),
                ("filter_shape", nameof(filterShape)),
                ("strides", nameof(strides)),
                ("padding", nameof(padding)),
                ("W_std", nameof(wStd)),
                ("b_std", nameof(bStd)),
                ("s", s0 < 1 ? nameof(s0) : nameof(s1)),
                ("dimension_numbers", nameof(dimensionNumbers)))));
    }

    /// <summary>Flattens all non-batch axes into one (neural_tangents' <c>Flatten</c>).</summary>
    /// <param name="batchAxis">The batch axis of the input (<c>batch_axis</c>).</param>
    /// <param name="batchAxisOut">The batch axis of the output, 0 or 1 (<c>batch_axis_out</c>).</param>
    /// <returns>The Flatten layer.</returns>
    /// <exception cref="ArgumentException"><paramref name="batchAxisOut"/> is neither 0 nor 1.</exception>
    public static Network Flatten(int batchAxis = 0, int batchAxisOut = 0) =>
        Wrap(Boundary.Call(
            () => StaxModule.FlattenWith(batchAxis, batchAxisOut),
            Boundary.Names(("batch_axis", nameof(batchAxis)), ("batch_axis_out", nameof(batchAxisOut)))));

    /// <summary>Average pooling (neural_tangents' <c>AvgPool</c>).</summary>
    /// <param name="windowShape">The window's size along each spatial axis (<c>window_shape</c>), each at least 1.</param>
    /// <param name="strides">The window's step along each spatial axis; null (the default) means all ones.</param>
    /// <param name="padding">VALID (the default), SAME or CIRCULAR.</param>
    /// <param name="normalizeEdges">True: a SAME border window is divided by its entries inside the input; false
    /// (the default): by the window size.</param>
    /// <param name="batchAxis">The batch axis of the input (<c>batch_axis</c>).</param>
    /// <param name="channelAxis">The channel axis of the input (<c>channel_axis</c>).</param>
    /// <returns>The AvgPool layer.</returns>
    /// <exception cref="ArgumentNullException"><paramref name="windowShape"/> is null.</exception>
    /// <exception cref="ArgumentException">An empty window, a size or stride below 1, strides of another length than
    /// the window, an unknown padding, or equal axes; the exception names the argument.</exception>
    public static Network AvgPool(
        int[] windowShape,
        int[]? strides = null,
        PaddingMode padding = PaddingMode.Valid,
        bool normalizeEdges = false,
        int batchAxis = 0,
        int channelAxis = -1)
    {
        var spec = PoolSpecOf(windowShape, strides, padding, batchAxis, channelAxis);
        return Wrap(Boundary.Call(() => StaxModule.AvgPoolWith(spec, normalizeEdges), PoolNames()));
    }

    /// <summary>Sum pooling (neural_tangents' <c>SumPool</c>).</summary>
    /// <param name="windowShape">The window's size along each spatial axis (<c>window_shape</c>), each at least 1.</param>
    /// <param name="strides">The window's step along each spatial axis; null (the default) means all ones.</param>
    /// <param name="padding">VALID (the default), SAME or CIRCULAR.</param>
    /// <param name="batchAxis">The batch axis of the input (<c>batch_axis</c>).</param>
    /// <param name="channelAxis">The channel axis of the input (<c>channel_axis</c>).</param>
    /// <returns>The SumPool layer.</returns>
    /// <exception cref="ArgumentNullException"><paramref name="windowShape"/> is null.</exception>
    /// <exception cref="ArgumentException">As <see cref="AvgPool"/>.</exception>
    public static Network SumPool(
        int[] windowShape,
        int[]? strides = null,
        PaddingMode padding = PaddingMode.Valid,
        int batchAxis = 0,
        int channelAxis = -1)
    {
        var spec = PoolSpecOf(windowShape, strides, padding, batchAxis, channelAxis);
        return Wrap(Boundary.Call(() => StaxModule.SumPoolWith(spec), PoolNames()));
    }

    /// <summary>The mean over all spatial positions, which it removes (neural_tangents' <c>GlobalAvgPool</c>).</summary>
    /// <param name="batchAxis">The batch axis of the input (<c>batch_axis</c>).</param>
    /// <param name="channelAxis">The channel axis of the input (<c>channel_axis</c>), different from the batch axis.</param>
    /// <returns>The GlobalAvgPool layer.</returns>
    /// <exception cref="ArgumentException">The two axes are equal.</exception>
    public static Network GlobalAvgPool(int batchAxis = 0, int channelAxis = -1) =>
        Wrap(Boundary.Call(() => StaxModule.GlobalAvgPoolWith(batchAxis, channelAxis), PoolNames()));

    /// <summary>The sum over all spatial positions, which it removes (neural_tangents' <c>GlobalSumPool</c>).</summary>
    /// <param name="batchAxis">The batch axis of the input (<c>batch_axis</c>).</param>
    /// <param name="channelAxis">The channel axis of the input (<c>channel_axis</c>), different from the batch axis.</param>
    /// <returns>The GlobalSumPool layer.</returns>
    /// <exception cref="ArgumentException">The two axes are equal.</exception>
    public static Network GlobalSumPool(int batchAxis = 0, int channelAxis = -1) =>
        Wrap(Boundary.Call(() => StaxModule.GlobalSumPoolWith(batchAxis, channelAxis), PoolNames()));

    /// <summary>Dropout (neural_tangents' <c>Dropout(rate, mode)</c>): in training each unit is kept with probability
    /// <paramref name="rate"/> and divided by it; the kernel multiplies same-sample, same-position covariances by
    /// 1/rate.</summary>
    /// <param name="rate">The keep probability, in (0, 1] (neural_tangents' convention).</param>
    /// <param name="mode"><see cref="DropoutPhase.Train"/> (the default) or <see cref="DropoutPhase.Test"/> (the identity).</param>
    /// <returns>The Dropout layer.</returns>
    /// <exception cref="ArgumentException"><paramref name="rate"/> is outside (0, 1], or <paramref name="mode"/> is not
    /// a defined value.</exception>
    public static Network Dropout(double rate, DropoutPhase mode = DropoutPhase.Train)
    {
        var m = mode switch
        {
            DropoutPhase.Train => DropoutMode.Train,
            DropoutPhase.Test => DropoutMode.Test,
            _ => throw new ArgumentException($"unknown DropoutPhase value {(int)mode}", nameof(mode)),
        };
        return Wrap(Boundary.Call(() => StaxModule.Dropout(rate, m), Boundary.Names()));
    }

    /// <summary>Layer normalisation (neural_tangents' <c>LayerNorm</c>): (x − mean)/√(eps + var) over
    /// <paramref name="axis"/>.</summary>
    /// <param name="axis">The axes to normalise over; null (the default) is the last axis only. The kernel needs the
    /// channel axis among them.</param>
    /// <param name="eps">Added to the variance (<c>eps</c>), finite and ≥ 0.</param>
    /// <param name="batchAxis">The batch axis of the inputs (<c>batch_axis</c>).</param>
    /// <param name="channelAxis">The channel axis of the inputs (<c>channel_axis</c>), different from the batch axis.</param>
    /// <returns>The LayerNorm layer.</returns>
    /// <exception cref="ArgumentException"><paramref name="axis"/> is empty, <paramref name="eps"/> is negative or not
    /// finite, or the two axes are equal.</exception>
    public static Network LayerNorm(int[]? axis = null, double eps = 1e-12, int batchAxis = 0, int channelAxis = -1)
    {
        var axes = ListModule.OfArray(axis is null ? new[] { -1 } : (int[])axis.Clone());
        return Wrap(Boundary.Call(
            () => StaxModule.LayerNorm(axes, eps, batchAxis, channelAxis),
            Boundary.Names(("batch_axis", "batchAxis"), ("channel_axis", "channelAxis"))));
    }

    /// <summary>A constant linear map by <c>lax.dot_general</c> (neural_tangents' <c>DotGeneral</c>):
    /// dot_general(lhs, inputs) or dot_general(inputs, rhs); with neither constant it is the identity.</summary>
    /// <param name="lhs">The constant left operand, a <c>double</c> array of any rank (<c>double[]</c>,
    /// <c>double[,]</c>, …), or null.</param>
    /// <param name="rhs">The constant right operand, likewise, or null (at most one of the two).</param>
    /// <param name="lhsContracting">The left operand's contracted axes (null: none).</param>
    /// <param name="rhsContracting">The right operand's contracted axes, paired in order with <paramref name="lhsContracting"/>.</param>
    /// <param name="lhsBatch">The left operand's batch axes (null: none).</param>
    /// <param name="rhsBatch">The right operand's batch axes, paired in order with <paramref name="lhsBatch"/>.</param>
    /// <param name="batchAxis">The inputs' batch axis (<c>batch_axis</c>).</param>
    /// <param name="channelAxis">The inputs' channel axis (<c>channel_axis</c>); it cannot be contracted or batched.</param>
    /// <returns>The DotGeneral layer.</returns>
    /// <exception cref="ArgumentException">Both constants, a constant that is not an array of <c>double</c>,
    /// mismatched dimension numbers, or an axis out of range for the constant.</exception>
    public static Network DotGeneral(
        Array? lhs = null,
        Array? rhs = null,
        int[]? lhsContracting = null,
        int[]? rhsContracting = null,
        int[]? lhsBatch = null,
        int[]? rhsBatch = null,
        int batchAxis = 0,
        int channelAxis = -1)
    {
        var l = lhs is null ? FSharpOption<Tensor>.None : FSharpOption<Tensor>.Some(TensorOf(lhs, nameof(lhs)));
        var r = rhs is null ? FSharpOption<Tensor>.None : FSharpOption<Tensor>.Some(TensorOf(rhs, nameof(rhs)));
        return DotGeneralOf(l, r, lhsContracting, rhsContracting, lhsBatch, rhsBatch, batchAxis, channelAxis);
    }

    /// <summary>DotGeneral with a scalar constant: every input entry multiplied by <paramref name="rhs"/>
    /// (neural_tangents' <c>DotGeneral(rhs=c)</c>); the kernel is multiplied by c².</summary>
    /// <param name="rhs">The scalar, finite.</param>
    /// <param name="batchAxis">The inputs' batch axis (<c>batch_axis</c>).</param>
    /// <param name="channelAxis">The inputs' channel axis (<c>channel_axis</c>).</param>
    /// <returns>The DotGeneral layer.</returns>
    /// <exception cref="ArgumentException"><paramref name="rhs"/> is not finite, or the axes are equal.</exception>
    public static Network DotGeneral(double rhs, int batchAxis = 0, int channelAxis = -1) =>
        DotGeneralOf(
            FSharpOption<Tensor>.None,
            FSharpOption<Tensor>.Some(TensorModule.Create(Array.Empty<int>(), new[] { rhs })),
            null, null, null, null, batchAxis, channelAxis);

    /// <summary>numpy basic indexing of the inputs (neural_tangents' <c>Index</c>, e.g. <c>x[:, 1:, ::-1]</c> is
    /// <c>Index(IndexPart.All, IndexPart.Slice(1, null), IndexPart.Slice(null, null, -1))</c>).</summary>
    /// <param name="idx">One part per indexed axis; missing trailing parts are full slices.</param>
    /// <returns>The Index layer.</returns>
    /// <exception cref="ArgumentNullException"><paramref name="idx"/> or one of its parts is null.</exception>
    /// <exception cref="ArgumentException">Two ellipses or a zero step.</exception>
    public static Network Index(params IndexPart[] idx) => Index(idx, 0, -1);

    /// <summary>Index with explicit axes.</summary>
    /// <param name="idx">One part per indexed axis.</param>
    /// <param name="batchAxis">The inputs' batch axis (<c>batch_axis</c>); the kernel cannot take an integer there.</param>
    /// <param name="channelAxis">The inputs' channel axis (<c>channel_axis</c>); the kernel needs the full slice there.</param>
    /// <returns>The Index layer.</returns>
    /// <exception cref="ArgumentNullException"><paramref name="idx"/> or one of its parts is null.</exception>
    /// <exception cref="ArgumentException">Two ellipses, a zero step, or equal axes.</exception>
    public static Network Index(IndexPart[] idx, int batchAxis, int channelAxis)
    {
        var parts = ListModule.OfArray(Array.ConvertAll(Boundary.NoNulls(idx, nameof(idx)), p => p.Entry));
        return Wrap(Boundary.Call(
            () => StaxModule.Index(parts, batchAxis, channelAxis),
            Boundary.Names(("batch_axis", "batchAxis"), ("channel_axis", "channelAxis"))));
    }

    /// <summary>Resizing as <c>jax.image.resize</c> does (neural_tangents' <c>ImageResize</c>).</summary>
    /// <param name="shape">The output size of every input axis, −1 to keep it (batch and channel usually −1).</param>
    /// <param name="method">Linear (the triangle kernel) or Nearest.</param>
    /// <param name="antialias">Widen the linear kernel when downsampling (<c>antialias</c>, default true).</param>
    /// <param name="batchAxis">The inputs' batch axis (<c>batch_axis</c>).</param>
    /// <param name="channelAxis">The inputs' channel axis (<c>channel_axis</c>), which the kernel cannot resize.</param>
    /// <returns>The ImageResize layer.</returns>
    /// <exception cref="ArgumentNullException"><paramref name="shape"/> is null.</exception>
    /// <exception cref="ArgumentException">An empty shape, a size other than −1 or ≥ 1, an undefined method, or equal
    /// axes.</exception>
    public static Network ImageResize(
        int[] shape,
        ResizeInterpolation method,
        bool antialias = true,
        int batchAxis = 0,
        int channelAxis = -1)
    {
        Boundary.NotNull(shape, nameof(shape));
        var m = method switch
        {
            ResizeInterpolation.Linear => ResizeMethod.Linear,
            ResizeInterpolation.Nearest => ResizeMethod.Nearest,
            _ => throw new ArgumentException($"unknown ResizeInterpolation value {(int)method}", nameof(method)),
        };
        var sizes = ListModule.OfArray((int[])shape.Clone());
        return Wrap(Boundary.Call(
            () => StaxModule.ImageResize(sizes, m, antialias, batchAxis, channelAxis),
            Boundary.Names(("batch_axis", "batchAxis"), ("channel_axis", "channelAxis"))));
    }

    private static Network DotGeneralOf(
        FSharpOption<Tensor> lhs,
        FSharpOption<Tensor> rhs,
        int[]? lhsContracting,
        int[]? rhsContracting,
        int[]? lhsBatch,
        int[]? rhsBatch,
        int batchAxis,
        int channelAxis)
    {
        static FSharpList<int> Axes(int[]? a) => ListModule.OfArray(a is null ? Array.Empty<int>() : (int[])a.Clone());
        var contracting = Tuple.Create(Axes(lhsContracting), Axes(rhsContracting));
        var batch = Tuple.Create(Axes(lhsBatch), Axes(rhsBatch));
        return Wrap(Boundary.Call(
            () => StaxModule.DotGeneral(lhs, rhs, contracting, batch, batchAxis, channelAxis),
            Boundary.Names(("dimensionNumbers", "lhsContracting"), ("batch_axis", "batchAxis"), ("channel_axis", "channelAxis"))));
    }

    // A double array of any rank as a tensor, entries in row-major order (as foreach visits them).
    internal static Tensor TensorOf(Array a, string paramName)
    {
        if (a.GetType().GetElementType() != typeof(double))
        {
            throw new ArgumentException($"must be an array of double (double[], double[,], …), got {a.GetType().Name}", paramName);
        }

        var shape = new int[a.Rank];
        for (var d = 0; d < a.Rank; d++)
        {
            shape[d] = a.GetLength(d);
        }

        var data = new double[a.Length];
        var i = 0;
        foreach (double v in a)
        {
            data[i++] = v;
        }

        return TensorModule.Create(shape, data);
    }

    /// <summary>Graph aggregation (neural_tangents' <c>Aggregate</c>, identity <c>to_dense</c>): each vertex becomes the
    /// weighted sum of its predecessors under the call's <c>pattern</c> side input.</summary>
    /// <param name="aggregateAxis">The aggregated spatial axes; null (the default) aggregates every spatial axis.</param>
    /// <param name="batchAxis">The inputs' batch axis (<c>batch_axis</c>).</param>
    /// <param name="channelAxis">The inputs' channel axis (<c>channel_axis</c>).</param>
    /// <param name="sparse">False (the default): "DENSE" adjacency patterns; true: "SPARSE" edge lists.</param>
    /// <returns>The Aggregate layer.</returns>
    /// <exception cref="ArgumentException">An empty axis list or equal axes.</exception>
    public static Network Aggregate(int[]? aggregateAxis = null, int batchAxis = 0, int channelAxis = -1, bool sparse = false)
    {
        var axes = aggregateAxis is null
            ? FSharpOption<FSharpList<int>>.None
            : FSharpOption<FSharpList<int>>.Some(ListModule.OfArray((int[])aggregateAxis.Clone()));
        var impl = sparse ? AggregateImplementation.Sparse : AggregateImplementation.Dense;
        return Wrap(Boundary.Call(
            () => StaxModule.Aggregate(axes, batchAxis, channelAxis, impl),
            Boundary.Names(("batch_axis", "batchAxis"), ("channel_axis", "channelAxis"))));
    }

    /// <summary><paramref name="n"/> copies of a layer in series (neural_tangents' <c>repeat</c>).</summary>
    /// <param name="n">The number of copies, at least 0 (0 gives the identity).</param>
    /// <param name="layer">The layer to repeat.</param>
    /// <returns>The repeated network.</returns>
    /// <exception cref="ArgumentNullException"><paramref name="layer"/> is null.</exception>
    /// <exception cref="ArgumentException"><paramref name="n"/> is negative or above 1,000,000.</exception>
    public static Network Repeat(int n, Network layer)
    {
        Boundary.NotNull(layer, nameof(layer));
        return Wrap(Boundary.Call(() => StaxModule.Repeat(n, layer.ToFSharp()), Boundary.Names()));
    }

    /// <summary>The layer composed <paramref name="n"/> times with untied parameters, in neural_tangents' argument
    /// order (<c>repeat(layer, n)</c>); the same network as <see cref="Repeat(int, Network)"/>. Initialising it
    /// refuses a layer that changes its input shape, as neural_tangents does.</summary>
    /// <param name="layer">The layer to repeat; it must keep its input shape.</param>
    /// <param name="n">The number of copies, 0 (the identity) to 1,000,000.</param>
    /// <returns>The repeated network.</returns>
    /// <exception cref="ArgumentNullException"><paramref name="layer"/> is null.</exception>
    /// <exception cref="ArgumentException"><paramref name="n"/> is out of range.</exception>
    public static Network Repeat(Network layer, int n) => Repeat(n, layer);

    /// <summary>Global self-attention (neural_tangents' <c>GlobalSelfAttention</c>; infinite-width kernel of
    /// arXiv:2006.10540), with neural_tangents' argument names and defaults.</summary>
    /// <param name="nChanOut">Output channels (<c>n_chan_out</c>).</param>
    /// <param name="nChanKey">Key/query channels (<c>n_chan_key</c>).</param>
    /// <param name="nChanVal">Value channels (<c>n_chan_val</c>).</param>
    /// <param name="nHeads">Heads (<c>n_heads</c>).</param>
    /// <param name="linearScaling">True (the default): scores scaled by 1/n_chan_key (<c>linear_scaling</c>).</param>
    /// <param name="wKeyStd">Std of the key weights (<c>W_key_std</c>).</param>
    /// <param name="wValueStd">Std of the value weights (<c>W_value_std</c>).</param>
    /// <param name="wQueryStd">Std of the query weights (<c>W_query_std</c>).</param>
    /// <param name="wOutStd">Std of the output weights (<c>W_out_std</c>).</param>
    /// <param name="bStd">Std of the bias; null (the default): no bias (<c>b_std</c>).</param>
    /// <param name="attentionMechanism"><c>attention_mechanism</c>: Softmax (the default), Identity, Abs or Relu.</param>
    /// <param name="posEmbType"><c>pos_emb_type</c>: None (the default), Sum or Concat.</param>
    /// <param name="posEmbPNorm">The p of the distance Σ|p − q|^p given to the decay (<c>pos_emb_p_norm</c>).</param>
    /// <param name="posEmbDecayFn"><c>pos_emb_decay_fn</c>: null (the default) for one-hot embeddings, or
    /// <see cref="PositionalDecay.Exponential"/> / <see cref="PositionalDecay.Power"/>.</param>
    /// <param name="nChanPosEmb">Embedding channels; null: as many as the inputs (<c>n_chan_pos_emb</c>).</param>
    /// <param name="wPosEmbStd">Std of the embeddings (<c>W_pos_emb_std</c>).</param>
    /// <param name="valPosEmb">Whether embeddings also enter the values (<c>val_pos_emb</c>).</param>
    /// <param name="batchAxis">The inputs' batch axis (<c>batch_axis</c>).</param>
    /// <param name="channelAxis">The inputs' channel axis (<c>channel_axis</c>).</param>
    /// <returns>The GlobalSelfAttention layer.</returns>
    /// <exception cref="ArgumentException">A size below 1, a negative or non-finite std, a decay parameter that is
    /// not finite and positive, equal axes, or an undefined enum value.</exception>
    public static Network GlobalSelfAttention(
        int nChanOut, int nChanKey, int nChanVal, int nHeads, bool linearScaling = true, double wKeyStd = 1.0,
        double wValueStd = 1.0, double wQueryStd = 1.0, double wOutStd = 1.0, double? bStd = null,
        AttentionKind attentionMechanism = AttentionKind.Softmax, PositionalEmbeddingKind posEmbType = PositionalEmbeddingKind.None,
        double posEmbPNorm = 2.0, PositionalDecay? posEmbDecayFn = null, int? nChanPosEmb = null, double wPosEmbStd = 1.0,
        bool valPosEmb = false, int batchAxis = 0, int channelAxis = -1)
    {
        var mechanism = attentionMechanism switch
        {
            AttentionKind.Softmax => AttentionMechanism.Softmax,
            AttentionKind.Identity => AttentionMechanism.Identity,
            AttentionKind.Abs => AttentionMechanism.Abs,
            AttentionKind.Relu => AttentionMechanism.Relu,
            _ => throw new ArgumentException($"unknown AttentionKind value {(int)attentionMechanism}", nameof(attentionMechanism)),
        };
        var embedding = posEmbType switch
        {
            PositionalEmbeddingKind.None => PositionalEmbedding.NoEmbedding,
            PositionalEmbeddingKind.Sum => PositionalEmbedding.Sum,
            PositionalEmbeddingKind.Concat => PositionalEmbedding.Concat,
            _ => throw new ArgumentException($"unknown PositionalEmbeddingKind value {(int)posEmbType}", nameof(posEmbType)),
        };
        var spec = new AttentionSpec(
            nChanOut, nChanKey, nChanVal, nHeads, linearScaling, wKeyStd, wValueStd, wQueryStd, wOutStd,
            bStd is double b ? FSharpOption<double>.Some(b) : FSharpOption<double>.None,
            mechanism, embedding, posEmbPNorm,
            nChanPosEmb is int c ? FSharpOption<int>.Some(c) : FSharpOption<int>.None,
            wPosEmbStd, valPosEmb, batchAxis, channelAxis, posEmbDecayFn?.Decay ?? PosEmbDecay.OneHot);
        return Wrap(Boundary.Call(
            () => StaxModule.GlobalSelfAttentionWith(spec),
            Boundary.Names(("batch_axis", "batchAxis"), ("channel_axis", "channelAxis"))));
    }

    private static Network Wrap(Layer layer) => Network.FromFSharp(layer);

    private static PoolSpec PoolSpecOf(int[]? windowShape, int[]? strides, PaddingMode padding, int batchAxis, int channelAxis)
    {
        Boundary.NotNull(windowShape, nameof(windowShape));
        var p = padding switch
        {
            PaddingMode.Valid => Padding.Valid,
            PaddingMode.Same => Padding.Same,
            PaddingMode.Circular => Padding.Circular,
            _ => throw new ArgumentException($"unknown PaddingMode value {(int)padding}", nameof(padding)),
        };
        var window = ListModule.OfArray((int[])windowShape!.Clone());
        var steps = strides is null ? StaxModule.PoolDefaults(window).Strides : ListModule.OfArray((int[])strides.Clone());
        return new PoolSpec(window, steps, p, batchAxis, channelAxis);
    }

    private static Func<string?, string?> PoolNames() =>
        Boundary.Names(
            ("window_shape", "windowShape"),
            ("batch_axis", "batchAxis"),
            ("channel_axis", "channelAxis"));

    private static FSharpList<Layer> ToList(Network[]? layers, string paramName) =>
        ListModule.OfArray(Array.ConvertAll(Boundary.NoNulls(layers, paramName), l => l.ToFSharp()));
}

/// <summary>The mode of <see cref="Stax.Dropout"/> (neural_tangents' <c>mode</c> "train" or "test").</summary>
public enum DropoutPhase
{
    /// <summary>"train": units are dropped at random (the default).</summary>
    Train,

    /// <summary>"test": the identity.</summary>
    Test,
}

/// <summary><see cref="Stax.GlobalSelfAttention"/>'s <c>attention_mechanism</c>.</summary>
public enum AttentionKind
{
    /// <summary>"SOFTMAX": softmax over the attended positions (the default).</summary>
    Softmax,

    /// <summary>"IDENTITY": the scores themselves.</summary>
    Identity,

    /// <summary>"ABS": |score|.</summary>
    Abs,

    /// <summary>"RELU": max(score, 0).</summary>
    Relu,
}

/// <summary><see cref="Stax.GlobalSelfAttention"/>'s <c>pos_emb_type</c>.</summary>
public enum PositionalEmbeddingKind
{
    /// <summary>"NONE": no positional embeddings (the default).</summary>
    None,

    /// <summary>"SUM": embeddings added to the activations.</summary>
    Sum,

    /// <summary>"CONCAT": embeddings concatenated to the channels.</summary>
    Concat,
}

/// <summary><see cref="Stax.GlobalSelfAttention"/>'s <c>pos_emb_decay_fn</c>, the covariance of positional
/// embeddings as a function of the distance d (a Python callable in neural_tangents; here the named functions JSON
/// carries, <c>["exp", l]</c> and <c>["power", a]</c>). Null means one-hot (neural_tangents' None).</summary>
public sealed class PositionalDecay
{
    private PositionalDecay(PosEmbDecay decay) => Decay = decay;

    internal PosEmbDecay Decay { get; }

    /// <summary>exp(−d / <paramref name="lengthScale"/>).</summary>
    /// <param name="lengthScale">The length scale, finite and &gt; 0 (checked by the layer).</param>
    /// <returns>The decay.</returns>
    public static PositionalDecay Exponential(double lengthScale) => new(PosEmbDecay.NewExponential(lengthScale));

    /// <summary>(1 + d)^−<paramref name="exponent"/>.</summary>
    /// <param name="exponent">The exponent, finite and &gt; 0 (checked by the layer).</param>
    /// <returns>The decay.</returns>
    public static PositionalDecay Power(double exponent) => new(PosEmbDecay.NewPower(exponent));
}

/// <summary>The interpolation of <see cref="Stax.ImageResize"/> (jax.image's "linear" or "nearest").</summary>
public enum ResizeInterpolation
{
    /// <summary>"linear": the triangle kernel at half-pixel centres (bilinear, trilinear, …).</summary>
    Linear,

    /// <summary>"nearest": the input entry at floor((o + 0.5)·n_in/n_out).</summary>
    Nearest,
}

/// <summary>One part of a numpy index for <see cref="Stax.Index(IndexPart[])"/>: an integer (which removes its
/// axis), a slice <c>start:stop:step</c> with Python's semantics, the full slice <c>:</c> or the ellipsis <c>...</c>.</summary>
public sealed class IndexPart
{
    private IndexPart(IndexEntry entry) => Entry = entry;

    /// <summary>The full slice <c>:</c>.</summary>
    public static IndexPart All { get; } = new(IndexEntry.NewRange(FSharpOption<int>.None, FSharpOption<int>.None, FSharpOption<int>.None));

    /// <summary>The ellipsis <c>...</c>: as many full slices as the other parts leave.</summary>
    public static IndexPart Ellipsis { get; } = new(IndexEntry.Rest);

    internal IndexEntry Entry { get; }

    /// <summary>An integer index (negative counts from the end); it removes its axis.</summary>
    /// <param name="i">The index.</param>
    /// <returns>The part.</returns>
    public static IndexPart At(int i) => new(IndexEntry.NewAt(i));

    /// <summary>The slice <c>start:stop:step</c>; null bounds take Python's defaults.</summary>
    /// <param name="start">First index, or null.</param>
    /// <param name="stop">End (exclusive), or null.</param>
    /// <param name="step">Step (not 0), or null for 1.</param>
    /// <returns>The part.</returns>
    public static IndexPart Slice(int? start, int? stop, int? step = null)
    {
        static FSharpOption<int> O(int? v) => v.HasValue ? FSharpOption<int>.Some(v.Value) : FSharpOption<int>.None;
        return new(IndexEntry.NewRange(O(start), O(stop), O(step)));
    }
}
