namespace NeuralTangents

open System
open NeuralTangents.Layers

/// <summary>Smart constructors for layers, with neural_tangents' names, arguments and defaults
/// (<c>nt.stax</c>). Each validates its arguments.</summary>
[<RequireQualifiedAccess>]
[<CompilationRepresentation(CompilationRepresentationFlags.ModuleSuffix)>]
module Stax =

    let private finiteNonNeg (name: string) (v: float) =
        if not (Double.IsFinite v) || v < 0.0 then invalidArg name $"must be finite and ≥ 0, got {Show.g v}"

    let private finite (name: string) (v: float) =
        if not (Double.IsFinite v) then invalidArg name $"must be finite, got {Show.g v}"

    /// <summary>Layers applied in sequence (neural_tangents' <c>serial</c>).</summary>
    [<CompiledName("Serial")>]
    let serial (layers: Layer list) = Serial layers

    /// <summary>Layers applied to parallel inputs (neural_tangents' <c>parallel</c>), at least one.</summary>
    [<CompiledName("Parallel")>]
    let parallelOf (layers: Layer list) =
        if List.isEmpty layers then invalidArg "layers" "parallel: needs at least one branch, got none"
        Parallel layers

    /// <summary>The most branches <c>fanOut</c> makes: each branch holds its own copy of the kernel, so a larger
    /// count only exhausts memory.</summary>
    [<Literal>]
    let maxFanOut = 1024

    /// <summary>Copies its input into <paramref name="num"/> branches (1..<c>maxFanOut</c>).</summary>
    [<CompiledName("FanOut")>]
    let fanOut (num: int) =
        if num < 1 || num > maxFanOut then invalidArg "num" $"FanOut: must be in 1..{string maxFanOut}, got {string num}"
        FanOut num

    /// <summary>Sums branches.</summary>
    [<CompiledName("FanInSum")>]
    let fanInSum = FanInSum

    /// <summary>Multiplies branches elementwise.</summary>
    [<CompiledName("FanInProd")>]
    let fanInProd = FanInProd

    /// <summary>Concatenates branches along <paramref name="axis"/> (neural_tangents' default −1).</summary>
    [<CompiledName("FanInConcat")>]
    let fanInConcat (axis: int) = FanInConcat axis

    /// <summary>The identity layer.</summary>
    [<CompiledName("Identity")>]
    let identity = Identity

    /// <summary>Dense arguments with neural_tangents' defaults: W_std = 1, no bias, batch_axis = 0,
    /// channel_axis = −1, "ntk" parameterization, s = (1, 1).</summary>
    [<CompiledName("DenseDefaults")>]
    let denseDefaults (outDim: int) : DenseSpec =
        { OutDim = outDim
          WStd = 1.0
          BStd = None
          BatchAxis = 0
          ChannelAxis = -1
          Parameterization = Parameterization.Ntk
          S = (1, 1) }

    /// <summary>A Dense layer from a full argument record (see <c>denseDefaults</c>).</summary>
    [<CompiledName("DenseWith")>]
    let denseWith (spec: DenseSpec) =
        if spec.OutDim < 1 then invalidArg "out_dim" $"Dense: must be ≥ 1, got {string spec.OutDim}"
        finiteNonNeg "W_std" spec.WStd
        spec.BStd |> Option.iter (finiteNonNeg "b_std")
        let s0, s1 = spec.S
        if s0 < 1 || s1 < 1 then invalidArg "s" ("Dense: both width scalings must be ≥ 1, got (" + string s0 + ", " + string s1 + ")")
        if spec.BatchAxis = spec.ChannelAxis then
            invalidArg "channel_axis" $"Dense: batch_axis and channel_axis are both {string spec.BatchAxis}; give them different axes (e.g. batch_axis 0, channel_axis -1)"
        Dense spec

    /// <summary>Dense(out_dim, W_std, b_std) in the "ntk" parameterization; <c>bStd = None</c> means no bias.</summary>
    [<CompiledName("Dense")>]
    let dense (outDim: int) (wStd: float) (bStd: float option) =
        denseWith { denseDefaults outDim with WStd = wStd; BStd = bStd }

    /// <summary>Conv arguments with neural_tangents' defaults for a filter of <paramref name="filterShape"/>: strides
    /// all 1, VALID padding, W_std = 1, no bias, channels-last dimension numbers (<c>_get_dimension_numbers(n,
    /// False)</c>, e.g. ("NABC", "ABIO", "NABC") in 2-D), the "ntk" parameterization, s = (1, 1).</summary>
    [<CompiledName("ConvDefaults")>]
    let convDefaults (outChan: int) (filterShape: int list) : ConvSpec =
        { Kind = ConvKind.Conv
          OutChan = outChan
          FilterShape = filterShape
          Strides = List.replicate filterShape.Length 1
          Padding = Padding.Valid
          WStd = 1.0
          BStd = None
          DimensionNumbers = NeuralTangents.Layers.Convolution.defaultDimensionNumbers filterShape.Length
          Parameterization = Parameterization.Ntk
          S = (1, 1) }

    /// <summary>A convolution (Conv, ConvTranspose or ConvLocal by <c>Kind</c>) from a full argument record (see
    /// <c>convDefaults</c>).</summary>
    /// <exception cref="T:System.ArgumentException">an argument is out of range; the exception names it.</exception>
    [<CompiledName("ConvWith")>]
    let convWith (spec: ConvSpec) =
        let name = NeuralTangents.Layers.Convolution.kindName spec.Kind
        if spec.OutChan < 1 then invalidArg "out_chan" $"{name}: must be ≥ 1, got {string spec.OutChan}"
        if spec.FilterShape.IsEmpty || spec.FilterShape |> List.exists (fun f -> f < 1) then
            invalidArg "filter_shape" $"{name}: must be one or more positive sizes, got {Show.intList spec.FilterShape}"
        if spec.Strides.Length <> spec.FilterShape.Length || spec.Strides |> List.exists (fun s -> s < 1) then
            invalidArg "strides" ((name + ": must be " + string spec.FilterShape.Length + " positive integers (one per filter axis), got " + Show.intList spec.Strides))
        finiteNonNeg "W_std" spec.WStd
        spec.BStd |> Option.iter (finiteNonNeg "b_std")
        let s0, s1 = spec.S
        if s0 < 1 || s1 < 1 then invalidArg "s" ((name + ": both width scalings must be ≥ 1, got (" + string s0 + ", " + string s1 + ")"))
        try NeuralTangents.Layers.Convolution.layout spec |> ignore
        with NeuralTangentsException m -> invalidArg "dimension_numbers" m
        Conv spec

    /// <summary>Conv(out_chan, filter_shape, strides, padding, W_std, b_std) with channels-last dimension numbers and
    /// the "ntk" parameterization; <c>strides = None</c> means all ones, <c>bStd = None</c> no bias.</summary>
    [<CompiledName("Conv")>]
    let conv (outChan: int) (filterShape: int list) (strides: int list option) (padding: Padding) (wStd: float) (bStd: float option) =
        let d = convDefaults outChan filterShape
        convWith { d with Strides = defaultArg strides d.Strides; Padding = padding; WStd = wStd; BStd = bStd }

    /// <summary>ConvTranspose (the transpose convolution), arguments as <c>conv</c>.</summary>
    [<CompiledName("ConvTranspose")>]
    let convTranspose (outChan: int) (filterShape: int list) (strides: int list option) (padding: Padding) (wStd: float) (bStd: float option) =
        let d = convDefaults outChan filterShape
        convWith { d with Kind = ConvKind.Transpose; Strides = defaultArg strides d.Strides; Padding = padding; WStd = wStd; BStd = bStd }

    /// <summary>ConvLocal (a locally connected layer: untied filters per position), arguments as <c>conv</c>.</summary>
    [<CompiledName("ConvLocal")>]
    let convLocal (outChan: int) (filterShape: int list) (strides: int list option) (padding: Padding) (wStd: float) (bStd: float option) =
        let d = convDefaults outChan filterShape
        convWith { d with Kind = ConvKind.Local; Strides = defaultArg strides d.Strides; Padding = padding; WStd = wStd; BStd = bStd }

    /// <summary>a·min(x, 0) + b·max(x, 0).</summary>
    [<CompiledName("ABRelu")>]
    let abRelu (a: float) (b: float) = Activation(Elementwise.abRelu a b)

    /// <summary>max(x, 0) = ABRelu(0, 1).</summary>
    [<CompiledName("Relu")>]
    let relu = Activation(ABRelu { A = 0.0; B = 1.0 })

    /// <summary>ABRelu(alpha, 1).</summary>
    [<CompiledName("LeakyRelu")>]
    let leakyRelu (alpha: float) = Activation(Elementwise.leakyRelu alpha)

    /// <summary>|x| = ABRelu(−1, 1).</summary>
    [<CompiledName("Abs")>]
    let abs = Activation(ABRelu { A = -1.0; B = 1.0 })

    /// <summary>a·erf(b·x) + c (neural_tangents' defaults a = 1, b = 1, c = 0).</summary>
    [<CompiledName("Erf")>]
    let erf (a: float) (b: float) (c: float) = Activation(Elementwise.erf a b c)

    /// <summary>0.5·erf(x / 2.4020563531719796) + 0.5, neural_tangents' sigmoid stand-in.</summary>
    [<CompiledName("SigmoidLike")>]
    let sigmoidLike = Activation Elementwise.sigmoidLike

    /// <summary>a·sin(b·x + c).</summary>
    [<CompiledName("Sin")>]
    let sin (a: float) (b: float) (c: float) = Activation(Elementwise.sin a b c)

    /// <summary>a·cos(b·x + c) = Sin(a, b, c + π/2).</summary>
    [<CompiledName("Cos")>]
    let cos (a: float) (b: float) (c: float) = Activation(Elementwise.cos a b c)

    /// <summary>Gelu; <c>approximate</c> only changes the finite network's apply_fn.</summary>
    [<CompiledName("Gelu")>]
    let gelu (approximate: bool) = Activation(Gelu approximate)

    /// <summary>x^degree for degree in 0..5.</summary>
    [<CompiledName("Monomial")>]
    let monomial (degree: int) = Activation(Elementwise.monomial degree)

    /// <summary>a·exp(b·x) (neural_tangents' <c>Exp(a=1, b=1)</c>).</summary>
    [<CompiledName("Exp")>]
    let exp (a: float) (b: float) = Activation(Elementwise.exp a b)

    /// <summary>a·exp(b·x²) (neural_tangents' <c>Gaussian(a=1, b=-1)</c>).</summary>
    [<CompiledName("Gaussian")>]
    let gaussian (a: float) (b: float) = Activation(Elementwise.gaussian a b)

    /// <summary>neural_tangents' <c>ExpNormalized(gamma=1, shift=-1, do_clip=False)</c>, the Gaussian normalized
    /// kernel of arXiv:2003.02237 (kernel only: the finite network raises).</summary>
    [<CompiledName("ExpNormalized")>]
    let expNormalized (gamma: float) (shift: float) (doClip: bool) = Activation(Elementwise.expNormalized gamma shift doClip)

    /// <summary>√2·sin(√(2γ)·x + π/4), whose NNGP is the RBF kernel exp(−γ‖x − x′‖²/d) (neural_tangents'
    /// <c>Rbf(gamma=1)</c>).</summary>
    [<CompiledName("Rbf")>]
    let rbf (gamma: float) = Activation(Elementwise.rbf gamma)

    /// <summary>sign(x) (neural_tangents' <c>Sign</c>), with exact covariances (see the README).</summary>
    [<CompiledName("Sign")>]
    let sign = Activation Sign

    /// <summary>exp(−x²)·sin(x) (neural_tangents' <c>Gabor</c>).</summary>
    [<CompiledName("Gabor")>]
    let gabor = Activation Gabor

    /// <summary>He_degree(x)/√(degree!) (neural_tangents' <c>Hermite</c>); the kernel assumes unit-variance inputs.</summary>
    [<CompiledName("Hermite")>]
    let hermite (degree: int) = Activation(Elementwise.hermite degree)

    /// <summary>(x ≥ 0)·x^degree (neural_tangents' <c>RectifiedMonomial</c>), exact also at θ = 0.</summary>
    [<CompiledName("RectifiedMonomial")>]
    let rectifiedMonomial (degree: int) = Activation(Elementwise.rectifiedMonomial degree)

    /// <summary>coef[0] + coef[1]·x + … + coef[n]·xⁿ (neural_tangents' <c>Polynomial</c>).</summary>
    [<CompiledName("Polynomial")>]
    let polynomial (coef: float list) = Activation(Elementwise.polynomial coef)

    /// <summary>The names of the registry of activations that <c>elementwiseNumerical</c> and JSON accept: tanh,
    /// sech2, sigmoid, softplus, swish, silu, elu, selu, mish, relu6, hard_tanh, relu, sin, cos, exp, erf, gelu.</summary>
    [<CompiledName("ActivationNames")>]
    let activationNames = ElementwiseQuadrature.names

    /// <summary>neural_tangents' <c>ElementwiseNumerical(fn, deg, df)</c> with <c>fn</c> (and optional <c>df</c>)
    /// named from <c>activationNames</c>: the kernel by deg×deg Gauss–Hermite quadrature, φ′ the exact derivative
    /// of fn (dual numbers) unless df names one. Plain data: it prints, compares and travels as JSON.</summary>
    [<CompiledName("ElementwiseNumerical")>]
    let elementwiseNumerical (fn: string) (deg: int) (df: string option) = Activation(Elementwise.elementwiseNumerical fn deg df)

    /// <summary>A registry activation by name (e.g. "tanh", "swish", "mish") as a ready layer: ElementwiseNumerical
    /// with 25 nodes per axis (neural_tangents' suggested start for smooth functions).</summary>
    [<CompiledName("Named")>]
    let named (fn: string) = Activation(Elementwise.elementwiseNumerical fn 25 None)

    /// <summary>ElementwiseNumerical from a user function written over dual numbers (φ′ by forward-mode
    /// differentiation, exact to round-off), deg Gauss–Hermite nodes per axis.</summary>
    [<CompiledName("ElementwiseNumericalDual")>]
    let elementwiseNumericalDual (name: string) (fn: Dual -> Dual) (deg: int) =
        if obj.ReferenceEquals(fn, null) then invalidArg "fn" "ElementwiseNumerical: fn is null"
        if deg < 1 || deg > ElementwiseQuadrature.maxDeg then
            invalidArg "deg" $"ElementwiseNumerical: must be in 1..{string ElementwiseQuadrature.maxDeg}, got {string deg}"
        let phi (x: float) = (fn (Dual(x, 0.0))).Value
        let dphi (x: float) = (fn (Dual(x, 1.0))).Derivative
        Activation(Elementwise.custom name (Some phi) (Some dphi) [ "deg", string deg ] (ElementwiseQuadrature.quadratureStep deg phi dphi))

    /// <summary>ElementwiseNumerical from a user function and its derivative (neural_tangents' <c>df</c>).</summary>
    [<CompiledName("ElementwiseNumerical")>]
    let elementwiseNumericalWith (name: string) (fn: float -> float) (df: float -> float) (deg: int) =
        if obj.ReferenceEquals(fn, null) then invalidArg "fn" "ElementwiseNumerical: fn is null"
        if obj.ReferenceEquals(df, null) then invalidArg "df" "ElementwiseNumerical: df is null"
        if deg < 1 || deg > ElementwiseQuadrature.maxDeg then
            invalidArg "deg" $"ElementwiseNumerical: must be in 1..{string ElementwiseQuadrature.maxDeg}, got {string deg}"
        Activation(Elementwise.custom name (Some fn) (Some df) [ "deg", string deg ] (ElementwiseQuadrature.quadratureStep deg fn df))

    /// <summary>neural_tangents' <c>Elementwise(fn, nngp_fn, d_nngp_fn)</c>: φ (and φ′ for the finite network's
    /// backward pass; both optional), the NNGP map (c, q1, q2) ↦ E[φ(u)φ(v)] and its derivative in c,
    /// E[φ′(u)φ′(v)].</summary>
    [<CompiledName("Elementwise")>]
    let elementwise (name: string) (fn: (float -> float) option) (dfn: (float -> float) option)
                    (nngpFn: float -> float -> float -> float) (dNngpFn: float -> float -> float -> float) =
        if obj.ReferenceEquals(nngpFn, null) then invalidArg "nngpFn" "Elementwise: nngp_fn is null"
        if obj.ReferenceEquals(dNngpFn, null) then invalidArg "dNngpFn" "Elementwise: d_nngp_fn is null"
        Activation(Elementwise.custom name fn dfn [] (fun c q1 q2 -> struct (nngpFn c q1 q2, dNngpFn c q1 q2)))

    /// <summary>neural_tangents' <c>Elementwise(fn, nngp_fn)</c> without <c>d_nngp_fn</c>: the NNGP map is written
    /// over dual numbers in the covariance and E[φ′(u)φ′(v)] = ∂nngp/∂c (Price's theorem) is its ε part — exact
    /// to the round-off of the map's operations, where neural_tangents uses JAX autodiff.</summary>
    [<CompiledName("ElementwiseDual")>]
    let elementwiseDual (name: string) (fn: (float -> float) option) (dfn: (float -> float) option)
                        (nngpFn: Dual -> float -> float -> Dual) =
        if obj.ReferenceEquals(nngpFn, null) then invalidArg "nngpFn" "Elementwise: nngp_fn is null"
        Activation(Elementwise.custom name fn dfn [] (ElementwiseQuadrature.dualStep nngpFn))

    /// <summary>Flattens all non-batch axes (neural_tangents' defaults batch_axis = 0, batch_axis_out = 0).</summary>
    [<CompiledName("Flatten")>]
    let flatten = Flatten { BatchAxis = 0; BatchAxisOut = 0 }

    /// <summary>Flatten with explicit batch axes.</summary>
    [<CompiledName("FlattenWith")>]
    let flattenWith (batchAxis: int) (batchAxisOut: int) =
        if batchAxisOut <> 0 && batchAxisOut <> 1 then
            invalidArg "batch_axis_out" $"Flatten: must be 0 or 1, got {string batchAxisOut}"
        Flatten { BatchAxis = batchAxis; BatchAxisOut = batchAxisOut }

    /// <summary>AvgPool/SumPool arguments with neural_tangents' defaults: strides all ones (<c>strides=None</c>),
    /// VALID padding, batch_axis = 0, channel_axis = −1.</summary>
    [<CompiledName("PoolDefaults")>]
    let poolDefaults (windowShape: int list) : PoolSpec =
        { WindowShape = windowShape
          Strides = List.replicate windowShape.Length 1
          Padding = Padding.Valid
          BatchAxis = 0
          ChannelAxis = -1 }

    let private checkPool (name: string) (p: PoolSpec) =
        if p.WindowShape.IsEmpty then invalidArg "window_shape" $"{name}: needs one size per spatial axis, got none"
        match p.WindowShape |> List.tryFind (fun w -> w < 1) with
        | Some w -> invalidArg "window_shape" $"{name}: every size must be ≥ 1, got {string w}"
        | None -> ()
        if p.Strides.Length <> p.WindowShape.Length then
            invalidArg "strides" ((name + ": needs one stride per window axis (" + string p.WindowShape.Length + "), got " + string p.Strides.Length))
        match p.Strides |> List.tryFind (fun s -> s < 1) with
        | Some s -> invalidArg "strides" $"{name}: every stride must be ≥ 1, got {string s}"
        | None -> ()
        if p.BatchAxis = p.ChannelAxis then
            invalidArg "channel_axis" $"{name}: batch_axis and channel_axis are both {string p.BatchAxis}; give them different axes (e.g. batch_axis 0, channel_axis -1)"

    /// <summary>Average pooling from a full argument record (see <c>poolDefaults</c>); <paramref name="normalizeEdges"/>
    /// true divides a SAME border window by its entries inside the input, false (neural_tangents' default) by the
    /// window size.</summary>
    /// <exception cref="T:System.ArgumentException">an empty window, a size or stride below 1, strides of another
    /// length than the window, or batch_axis = channel_axis.</exception>
    [<CompiledName("AvgPoolWith")>]
    let avgPoolWith (spec: PoolSpec) (normalizeEdges: bool) =
        checkPool "AvgPool" spec
        AvgPool(spec, normalizeEdges)

    /// <summary>AvgPool(window_shape, strides, padding) (neural_tangents' <c>stax.AvgPool</c>; strides None = all
    /// ones; normalize_edges = false).</summary>
    [<CompiledName("AvgPool")>]
    let avgPool (windowShape: int list) (strides: int list option) (padding: Padding) =
        let d = poolDefaults windowShape
        avgPoolWith { d with Strides = defaultArg strides d.Strides; Padding = padding } false

    /// <summary>Sum pooling from a full argument record (see <c>poolDefaults</c>).</summary>
    /// <exception cref="T:System.ArgumentException">as <c>avgPoolWith</c>.</exception>
    [<CompiledName("SumPoolWith")>]
    let sumPoolWith (spec: PoolSpec) =
        checkPool "SumPool" spec
        SumPool spec

    /// <summary>SumPool(window_shape, strides, padding) (neural_tangents' <c>stax.SumPool</c>; strides None = all
    /// ones).</summary>
    [<CompiledName("SumPool")>]
    let sumPool (windowShape: int list) (strides: int list option) (padding: Padding) =
        let d = poolDefaults windowShape
        sumPoolWith { d with Strides = defaultArg strides d.Strides; Padding = padding }

    let private globalSpec (name: string) (batchAxis: int) (channelAxis: int) : GlobalPoolSpec =
        if batchAxis = channelAxis then
            invalidArg "channel_axis" $"{name}: batch_axis and channel_axis are both {string batchAxis}; give them different axes (e.g. batch_axis 0, channel_axis -1)"
        { BatchAxis = batchAxis; ChannelAxis = channelAxis }

    /// <summary>Mean over all spatial positions (neural_tangents' <c>stax.GlobalAvgPool()</c>: batch_axis = 0,
    /// channel_axis = −1).</summary>
    [<CompiledName("GlobalAvgPool")>]
    let globalAvgPool = GlobalAvgPool { BatchAxis = 0; ChannelAxis = -1 }

    /// <summary>GlobalAvgPool with explicit axes.</summary>
    /// <exception cref="T:System.ArgumentException">batch_axis = channel_axis.</exception>
    [<CompiledName("GlobalAvgPoolWith")>]
    let globalAvgPoolWith (batchAxis: int) (channelAxis: int) = GlobalAvgPool(globalSpec "GlobalAvgPool" batchAxis channelAxis)

    /// <summary>Sum over all spatial positions (neural_tangents' <c>stax.GlobalSumPool()</c>: batch_axis = 0,
    /// channel_axis = −1).</summary>
    [<CompiledName("GlobalSumPool")>]
    let globalSumPool = GlobalSumPool { BatchAxis = 0; ChannelAxis = -1 }

    /// <summary>GlobalSumPool with explicit axes.</summary>
    /// <exception cref="T:System.ArgumentException">batch_axis = channel_axis.</exception>
    [<CompiledName("GlobalSumPoolWith")>]
    let globalSumPoolWith (batchAxis: int) (channelAxis: int) = GlobalSumPool(globalSpec "GlobalSumPool" batchAxis channelAxis)

    /// <summary>Dropout (neural_tangents' <c>stax.Dropout(rate, mode)</c>); <paramref name="rate"/> is the keep
    /// probability. In train mode the finite layer draws its mask from <c>apply</c>'s random key.</summary>
    /// <exception cref="T:System.ArgumentException">rate outside (0, 1].</exception>
    [<CompiledName("Dropout")>]
    let dropout (rate: float) (mode: DropoutMode) = Dropout(Stochastic.dropoutSpec rate mode)

    /// <summary>Layer normalisation (neural_tangents' <c>stax.LayerNorm(axis, eps, batch_axis, channel_axis)</c>;
    /// its defaults are <c>layerNorm [-1] 1e-12 0 -1</c>).</summary>
    /// <exception cref="T:System.ArgumentException">no axis, eps not finite or negative, or equal batch and channel
    /// axes.</exception>
    [<CompiledName("LayerNorm")>]
    let layerNorm (axis: int list) (eps: float) (batchAxis: int) (channelAxis: int) =
        LayerNorm(Normalization.layerNormSpec axis eps batchAxis channelAxis)

    /// <summary>A constant linear map by <c>lax.dot_general</c> (neural_tangents' <c>stax.DotGeneral(lhs, rhs,
    /// dimension_numbers, precision, batch_axis, channel_axis)</c>): dot_general(lhs, inputs) or dot_general(inputs,
    /// rhs); neither constant gives the identity. Computations are float64 (neural_tangents' <c>precision</c> does not
    /// apply).</summary>
    /// <param name="lhs">The constant left operand, or None.</param>
    /// <param name="rhs">The constant right operand, or None (at most one of the two).</param>
    /// <param name="dimensionNumbers">((lhs_contracting, rhs_contracting), (lhs_batch, rhs_batch)); neural_tangents'
    /// default is (([], []), ([], [])).</param>
    /// <param name="batchAxis">The inputs' batch axis (default 0).</param>
    /// <param name="channelAxis">The inputs' channel axis (default −1); it cannot be contracted or batched.</param>
    /// <exception cref="T:System.ArgumentException">both constants, mismatched dimension numbers, an axis out of range
    /// for the constant, or a constant that is not finite.</exception>
    [<CompiledName("DotGeneral")>]
    let dotGeneral (lhs: Tensor option) (rhs: Tensor option) (dimensionNumbers: (int list * int list) * (int list * int list))
                   (batchAxis: int) (channelAxis: int) =
        DotGeneral(Contraction.dotGeneralSpec lhs rhs dimensionNumbers batchAxis channelAxis)

    /// <summary>numpy basic indexing of the inputs (neural_tangents' <c>stax.Index(idx, batch_axis, channel_axis)</c>):
    /// integers (which remove their axis), slices with Python's semantics (negative bounds and steps) and
    /// <c>...</c>. The kernel cannot index the channel axis (use <c>:</c>) or take an integer on the batch axis.</summary>
    /// <exception cref="T:System.ArgumentException">two ellipses, a zero step, or equal batch and channel axes.</exception>
    [<CompiledName("Index")>]
    let index (idx: IndexEntry list) (batchAxis: int) (channelAxis: int) = Layer.Index(Indexing.indexSpec idx batchAxis channelAxis)

    /// <summary>Resizing as <c>jax.image.resize</c> does (neural_tangents' <c>stax.ImageResize(shape, method,
    /// antialias, precision, batch_axis, channel_axis)</c>; defaults antialias = true, batch_axis = 0,
    /// channel_axis = −1). <paramref name="shape"/> gives every axis's output size, −1 to keep it. Float64
    /// throughout.</summary>
    /// <exception cref="T:System.ArgumentException">an empty shape, a size other than −1 or ≥ 1, or equal axes.</exception>
    [<CompiledName("ImageResize")>]
    let imageResize (shape: int list) (method: ResizeMethod) (antialias: bool) (batchAxis: int) (channelAxis: int) =
        ImageResize(Resize.imageResizeSpec shape method antialias batchAxis channelAxis)

    /// <summary>Graph aggregation (neural_tangents' <c>stax.Aggregate(aggregate_axis, batch_axis, channel_axis,
    /// to_dense, implementation)</c>, with the identity <c>to_dense</c>): each vertex becomes the weighted sum of its
    /// predecessors under the call's <c>pattern</c> — <c>ApplyContext.Side["pattern"]</c> for the finite network,
    /// <c>KernelFn.computeWithPattern</c> for the kernel. Defaults: <c>aggregate None 0 -1
    /// AggregateImplementation.Dense</c>.</summary>
    /// <exception cref="T:System.ArgumentException">an empty axis list or equal batch and channel axes.</exception>
    [<CompiledName("Aggregate")>]
    let aggregate (aggregateAxis: int list option) (batchAxis: int) (channelAxis: int) (implementation: AggregateImplementation) =
        Aggregate(Aggregation.aggregateSpec aggregateAxis batchAxis channelAxis implementation)

    /// <summary>GlobalSelfAttention arguments with neural_tangents' defaults: linear_scaling = true, every W std 1,
    /// no bias, SOFTMAX, no positional embeddings (p-norm 2, n_chan_pos_emb None, W_pos_emb_std 1, val_pos_emb
    /// false), batch_axis 0, channel_axis −1.</summary>
    [<CompiledName("AttentionDefaults")>]
    let attentionDefaults (nChanOut: int) (nChanKey: int) (nChanVal: int) (nHeads: int) : AttentionSpec =
        { NChanOut = nChanOut; NChanKey = nChanKey; NChanVal = nChanVal; NHeads = nHeads; LinearScaling = true
          WKeyStd = 1.0; WValueStd = 1.0; WQueryStd = 1.0; WOutStd = 1.0; BStd = None
          AttentionMechanism = AttentionMechanism.Softmax; PosEmbType = PositionalEmbedding.NoEmbedding; PosEmbPNorm = 2.0
          NChanPosEmb = None; WPosEmbStd = 1.0; ValPosEmb = false; BatchAxis = 0; ChannelAxis = -1
          PosEmbDecayFn = PosEmbDecay.OneHot }

    /// <summary>Global self-attention (neural_tangents' <c>stax.GlobalSelfAttention</c>; infinite-width kernel of
    /// arXiv:2006.10540) from validated arguments; start from <c>attentionDefaults</c>. Positional embeddings are
    /// one-hot (neural_tangents' <c>pos_emb_decay_fn=None</c>) unless <c>PosEmbDecayFn</c> says otherwise.</summary>
    /// <exception cref="T:System.ArgumentException">a size below 1, a negative or non-finite std, or equal axes.</exception>
    [<CompiledName("GlobalSelfAttentionWith")>]
    let globalSelfAttentionWith (spec: AttentionSpec) = GlobalSelfAttention(Attention.attentionSpec spec)

    /// <summary>Largest depth <c>repeat</c> accepts (each interpreter walks the n copies as a serial chain).</summary>
    [<Literal>]
    let maxRepeat = 1_000_000

    /// <summary>neural_tangents' <c>repeat(layer, n)</c>: the layer composed <paramref name="n"/> times with untied
    /// parameters, the same network as <c>serial</c> of n copies (n = 0 is the identity). <c>init</c> refuses a layer
    /// that changes its input shape, as neural_tangents does.</summary>
    /// <exception cref="T:System.ArgumentException">n outside 0..<c>maxRepeat</c>.</exception>
    [<CompiledName("Repeat")>]
    let repeat (n: int) (layer: Layer) =
        if n < 0 || n > maxRepeat then
            invalidArg "n" $"repeat: n (the number of copies) must be in 0..{string maxRepeat}, got {string n}"
        Repeat(layer, n)

    /// <summary>neural_tangents' <c>(init_fn, apply_fn, kernel_fn)</c> of a network, as <c>stax.serial</c> returns
    /// them: <c>let initFn, applyFn, kernelFn = Stax.functions net</c>.</summary>
    /// <param name="layer">The network.</param>
    /// <returns><c>initFn key inputShape</c> (output shape and parameters, <c>InitFn.initWithKey</c>),
    /// <c>applyFn params x ctx</c> (<c>ApplyFn.applyWith</c>) and <c>kernelFn x1 x2 get</c> (<c>KernelFn.compute</c>).</returns>
    [<CompiledName("Functions")>]
    let functions (layer: Layer) =
        (fun (key: RngKey) (inputShape: int[]) -> InitFn.initWithKey key layer inputShape),
        (fun (p: Params) (x: Tensor) (ctx: ApplyContext) -> ApplyFn.applyWith ctx layer p x),
        (fun (x1: Tensor) (x2: Tensor option) (get: Get) -> KernelFn.compute layer x1 x2 get)
