namespace NeuralTangents

open System
open NeuralTangents.Layers

/// <summary>neural_tangents' <c>nt.stax</c> as it reads in Python: static members with named, optional arguments and
/// neural_tangents' names and defaults, e.g. <c>Stax.Dense(512, W_std = 1.5, b_std = 0.05)</c>, <c>Stax.Relu()</c>,
/// <c>Stax.Conv(64, (3, 3), padding = Padding.Same)</c>, <c>Stax.Serial(...)</c>.</summary>
/// <remarks>This type sits next to the curried module <c>Stax</c> (compiled <c>StaxModule</c>), as the
/// <c>list</c> type sits next to the <c>List</c> module: F# looks a name up in both, so <c>Stax.dense 512 1.5 None</c>
/// (for pipelines and partial application) and <c>Stax.Dense(512, W_std = 1.5)</c> both resolve. Every member
/// builds the same <c>Layer</c> value as the curried function and validates through it. Shapes are given either
/// as a pair (2-D, the common case) or as a list (any rank).</remarks>
[<AbstractClass; Sealed>]
type Stax =

    static member private ParamOf(name: string, value: string) =
        match value.ToLowerInvariant() with
        | "ntk" -> Parameterization.Ntk
        | "standard" -> Parameterization.Standard
        | _ -> invalidArg "parameterization" $"{name}: must be \"ntk\" or \"standard\", got \"{value}\""

    // ---- combinators -------------------------------------------------------------------------------------------

    /// <summary>Layers applied in sequence (<c>stax.serial(*layers)</c>).</summary>
    static member Serial([<ParamArray>] layers: Layer[]) = Stax.serial (List.ofArray layers)

    /// <summary>Layers applied to parallel inputs (<c>stax.parallel(*layers)</c>).</summary>
    static member Parallel([<ParamArray>] layers: Layer[]) = Stax.parallelOf (List.ofArray layers)

    /// <summary>The layer composed <paramref name="n"/> times with untied parameters (<c>stax.repeat(layer, n)</c>).</summary>
    static member Repeat(layer: Layer, n: int) = Stax.repeat n layer

    /// <summary>Copies the input into <paramref name="num"/> branches (<c>stax.FanOut(num)</c>).</summary>
    static member FanOut(num: int) = Stax.fanOut num

    /// <summary>Sums branches (<c>stax.FanInSum()</c>).</summary>
    static member FanInSum() = Stax.fanInSum

    /// <summary>Multiplies branches elementwise (<c>stax.FanInProd()</c>).</summary>
    static member FanInProd() = Stax.fanInProd

    /// <summary>Concatenates branches along <c>axis</c> (<c>stax.FanInConcat(axis=-1)</c>).</summary>
    static member FanInConcat(?axis: int) = Stax.fanInConcat (defaultArg axis -1)

    /// <summary>The identity (<c>stax.Identity()</c>).</summary>
    static member Identity() = Stax.identity

    /// <summary>neural_tangents' <c>(init_fn, apply_fn, kernel_fn)</c> triple of a network (see
    /// <c>Stax.functions</c>); <c>init_fn</c> accepts −1 for the batch axis.</summary>
    static member Functions(layer: Layer) = Stax.functions layer

    // ---- linear --------------------------------------------------------------------------------------------------

    /// <summary><c>stax.Dense(out_dim, W_std=1., b_std=None, batch_axis=0, channel_axis=-1, parameterization='ntk',
    /// s=(1, 1))</c>.</summary>
    static member Dense(out_dim: int, ?W_std: float, ?b_std: float, ?batch_axis: int, ?channel_axis: int,
                        ?parameterization: string, ?s: int * int) =
        let d = Stax.denseDefaults out_dim
        Stax.denseWith
            { d with
                WStd = defaultArg W_std d.WStd
                BStd = b_std
                BatchAxis = defaultArg batch_axis d.BatchAxis
                ChannelAxis = defaultArg channel_axis d.ChannelAxis
                Parameterization = (match parameterization with Some p -> Stax.ParamOf("Dense", p) | None -> d.Parameterization)
                S = defaultArg s d.S }

    static member private ConvOf(kind: ConvKind, out_chan: int, filter_shape: int list, strides: int list option,
                                 padding: Padding option, W_std: float option, b_std: float option,
                                 dimension_numbers: (string * string * string) option, parameterization: string option,
                                 s: (int * int) option) =
        let d = Stax.convDefaults out_chan filter_shape
        let name = Convolution.kindName kind
        Stax.convWith
            { d with
                Kind = kind
                Strides = defaultArg strides d.Strides
                Padding = defaultArg padding d.Padding
                WStd = defaultArg W_std d.WStd
                BStd = b_std
                DimensionNumbers = defaultArg dimension_numbers d.DimensionNumbers
                Parameterization = (match parameterization with Some p -> Stax.ParamOf(name, p) | None -> d.Parameterization)
                S = defaultArg s d.S }

    static member private Pair((a, b): int * int) = [ a; b ]

    /// <summary><c>stax.Conv(out_chan, filter_shape, strides=None, padding='VALID', W_std=1., b_std=None,
    /// dimension_numbers=None, parameterization='ntk', s=(1, 1))</c> with a filter of any rank.</summary>
    static member Conv(out_chan: int, filter_shape: int list, ?strides: int list, ?padding: Padding, ?W_std: float,
                       ?b_std: float, ?dimension_numbers: string * string * string, ?parameterization: string, ?s: int * int) =
        Stax.ConvOf(ConvKind.Conv, out_chan, filter_shape, strides, padding, W_std, b_std, dimension_numbers, parameterization, s)

    /// <summary><c>stax.Conv</c> with a 2-D filter, e.g. <c>Stax.Conv(64, (3, 3), padding = Padding.Same)</c>.</summary>
    static member Conv(out_chan: int, filter_shape: int * int, ?strides: int * int, ?padding: Padding, ?W_std: float,
                       ?b_std: float, ?dimension_numbers: string * string * string, ?parameterization: string, ?s: int * int) =
        Stax.ConvOf(ConvKind.Conv, out_chan, Stax.Pair filter_shape, Option.map Stax.Pair strides, padding, W_std, b_std,
                    dimension_numbers, parameterization, s)

    /// <summary><c>stax.ConvTranspose</c>, arguments as <c>Conv</c>.</summary>
    static member ConvTranspose(out_chan: int, filter_shape: int list, ?strides: int list, ?padding: Padding, ?W_std: float,
                                ?b_std: float, ?dimension_numbers: string * string * string, ?parameterization: string, ?s: int * int) =
        Stax.ConvOf(ConvKind.Transpose, out_chan, filter_shape, strides, padding, W_std, b_std, dimension_numbers, parameterization, s)

    /// <summary><c>stax.ConvTranspose</c> with a 2-D filter.</summary>
    static member ConvTranspose(out_chan: int, filter_shape: int * int, ?strides: int * int, ?padding: Padding, ?W_std: float,
                                ?b_std: float, ?dimension_numbers: string * string * string, ?parameterization: string, ?s: int * int) =
        Stax.ConvOf(ConvKind.Transpose, out_chan, Stax.Pair filter_shape, Option.map Stax.Pair strides, padding, W_std, b_std,
                    dimension_numbers, parameterization, s)

    /// <summary><c>stax.ConvLocal</c>, arguments as <c>Conv</c>.</summary>
    static member ConvLocal(out_chan: int, filter_shape: int list, ?strides: int list, ?padding: Padding, ?W_std: float,
                            ?b_std: float, ?dimension_numbers: string * string * string, ?parameterization: string, ?s: int * int) =
        Stax.ConvOf(ConvKind.Local, out_chan, filter_shape, strides, padding, W_std, b_std, dimension_numbers, parameterization, s)

    /// <summary><c>stax.ConvLocal</c> with a 2-D filter.</summary>
    static member ConvLocal(out_chan: int, filter_shape: int * int, ?strides: int * int, ?padding: Padding, ?W_std: float,
                            ?b_std: float, ?dimension_numbers: string * string * string, ?parameterization: string, ?s: int * int) =
        Stax.ConvOf(ConvKind.Local, out_chan, Stax.Pair filter_shape, Option.map Stax.Pair strides, padding, W_std, b_std,
                    dimension_numbers, parameterization, s)

    /// <summary><c>stax.Flatten(batch_axis=0, batch_axis_out=0)</c>.</summary>
    static member Flatten(?batch_axis: int, ?batch_axis_out: int) =
        Stax.flattenWith (defaultArg batch_axis 0) (defaultArg batch_axis_out 0)

    // ---- pooling -------------------------------------------------------------------------------------------------

    static member private PoolOf(window_shape: int list, strides: int list option, padding: Padding option,
                                 batch_axis: int option, channel_axis: int option) : PoolSpec =
        let d = Stax.poolDefaults window_shape
        { d with
            Strides = defaultArg strides d.Strides
            Padding = defaultArg padding d.Padding
            BatchAxis = defaultArg batch_axis d.BatchAxis
            ChannelAxis = defaultArg channel_axis d.ChannelAxis }

    /// <summary><c>stax.AvgPool(window_shape, strides=None, padding='VALID', normalize_edges=False, batch_axis=0,
    /// channel_axis=-1)</c>.</summary>
    static member AvgPool(window_shape: int list, ?strides: int list, ?padding: Padding, ?normalize_edges: bool,
                          ?batch_axis: int, ?channel_axis: int) =
        Stax.avgPoolWith (Stax.PoolOf(window_shape, strides, padding, batch_axis, channel_axis)) (defaultArg normalize_edges false)

    /// <summary><c>stax.AvgPool</c> with a 2-D window, e.g. <c>Stax.AvgPool((2, 2))</c>.</summary>
    static member AvgPool(window_shape: int * int, ?strides: int * int, ?padding: Padding, ?normalize_edges: bool,
                          ?batch_axis: int, ?channel_axis: int) =
        Stax.avgPoolWith
            (Stax.PoolOf(Stax.Pair window_shape, Option.map Stax.Pair strides, padding, batch_axis, channel_axis))
            (defaultArg normalize_edges false)

    /// <summary><c>stax.SumPool(window_shape, strides=None, padding='VALID', batch_axis=0, channel_axis=-1)</c>.</summary>
    static member SumPool(window_shape: int list, ?strides: int list, ?padding: Padding, ?batch_axis: int, ?channel_axis: int) =
        Stax.sumPoolWith (Stax.PoolOf(window_shape, strides, padding, batch_axis, channel_axis))

    /// <summary><c>stax.SumPool</c> with a 2-D window.</summary>
    static member SumPool(window_shape: int * int, ?strides: int * int, ?padding: Padding, ?batch_axis: int, ?channel_axis: int) =
        Stax.sumPoolWith (Stax.PoolOf(Stax.Pair window_shape, Option.map Stax.Pair strides, padding, batch_axis, channel_axis))

    /// <summary><c>stax.GlobalAvgPool(batch_axis=0, channel_axis=-1)</c>.</summary>
    static member GlobalAvgPool(?batch_axis: int, ?channel_axis: int) =
        Stax.globalAvgPoolWith (defaultArg batch_axis 0) (defaultArg channel_axis -1)

    /// <summary><c>stax.GlobalSumPool(batch_axis=0, channel_axis=-1)</c>.</summary>
    static member GlobalSumPool(?batch_axis: int, ?channel_axis: int) =
        Stax.globalSumPoolWith (defaultArg batch_axis 0) (defaultArg channel_axis -1)

    // ---- other layers ----------------------------------------------------------------------------------------------

    /// <summary><c>stax.Dropout(rate, mode='train')</c>; rate is the keep probability.</summary>
    static member Dropout(rate: float, ?mode: DropoutMode) = Stax.dropout rate (defaultArg mode DropoutMode.Train)

    /// <summary><c>stax.LayerNorm(axis=-1, eps=1e-12, batch_axis=0, channel_axis=-1)</c>.</summary>
    static member LayerNorm(?axis: int list, ?eps: float, ?batch_axis: int, ?channel_axis: int) =
        Stax.layerNorm (defaultArg axis [ -1 ]) (defaultArg eps 1e-12) (defaultArg batch_axis 0) (defaultArg channel_axis -1)

    /// <summary><c>stax.DotGeneral(lhs=None, rhs=None, dimension_numbers=(((), ()), ((), ())), batch_axis=0,
    /// channel_axis=-1)</c> (float64; <c>precision</c> does not apply).</summary>
    static member DotGeneral(?lhs: Tensor, ?rhs: Tensor, ?dimension_numbers: (int list * int list) * (int list * int list),
                             ?batch_axis: int, ?channel_axis: int) =
        Stax.dotGeneral lhs rhs (defaultArg dimension_numbers (([], []), ([], []))) (defaultArg batch_axis 0)
            (defaultArg channel_axis -1)

    /// <summary><c>stax.Index(idx, batch_axis=0, channel_axis=-1)</c>.</summary>
    static member Index(idx: IndexEntry list, ?batch_axis: int, ?channel_axis: int) =
        Stax.index idx (defaultArg batch_axis 0) (defaultArg channel_axis -1)

    /// <summary><c>stax.ImageResize(shape, method, antialias=True, batch_axis=0, channel_axis=-1)</c>.</summary>
    static member ImageResize(shape: int list, ``method``: ResizeMethod, ?antialias: bool, ?batch_axis: int, ?channel_axis: int) =
        Stax.imageResize shape ``method`` (defaultArg antialias true) (defaultArg batch_axis 0) (defaultArg channel_axis -1)

    /// <summary><c>stax.Aggregate(aggregate_axis=None, batch_axis=0, channel_axis=-1, implementation='DENSE')</c>
    /// (identity <c>to_dense</c>).</summary>
    static member Aggregate(?aggregate_axis: int list, ?batch_axis: int, ?channel_axis: int,
                            ?implementation: AggregateImplementation) =
        Stax.aggregate aggregate_axis (defaultArg batch_axis 0) (defaultArg channel_axis -1)
            (defaultArg implementation AggregateImplementation.Dense)

    /// <summary><c>stax.GlobalSelfAttention(n_chan_out, n_chan_key, n_chan_val, n_heads, linear_scaling=True,
    /// W_key_std=1., W_value_std=1., W_query_std=1., W_out_std=1., b_std=None, attention_mechanism='SOFTMAX',
    /// pos_emb_type='NONE', pos_emb_p_norm=2, pos_emb_decay_fn=None, n_chan_pos_emb=None, W_pos_emb_std=1.,
    /// val_pos_emb=False, batch_axis=0, channel_axis=-1)</c>, in that order; <c>pos_emb_decay_fn</c> (a Python
    /// callable there, default None = one-hot) is one of the named decays <c>PosEmbDecay.Exponential l</c>
    /// (exp(−d/l)) or <c>PosEmbDecay.Power a</c> ((1 + d)^−a).</summary>
    static member GlobalSelfAttention(n_chan_out: int, n_chan_key: int, n_chan_val: int, n_heads: int,
                                      ?linear_scaling: bool, ?W_key_std: float, ?W_value_std: float, ?W_query_std: float,
                                      ?W_out_std: float, ?b_std: float, ?attention_mechanism: AttentionMechanism,
                                      ?pos_emb_type: PositionalEmbedding, ?pos_emb_p_norm: float,
                                      ?pos_emb_decay_fn: PosEmbDecay, ?n_chan_pos_emb: int, ?W_pos_emb_std: float,
                                      ?val_pos_emb: bool, ?batch_axis: int, ?channel_axis: int) =
        let d = Stax.attentionDefaults n_chan_out n_chan_key n_chan_val n_heads
        Stax.globalSelfAttentionWith
            { d with
                LinearScaling = defaultArg linear_scaling d.LinearScaling
                WKeyStd = defaultArg W_key_std d.WKeyStd
                WValueStd = defaultArg W_value_std d.WValueStd
                WQueryStd = defaultArg W_query_std d.WQueryStd
                WOutStd = defaultArg W_out_std d.WOutStd
                BStd = b_std
                AttentionMechanism = defaultArg attention_mechanism d.AttentionMechanism
                PosEmbType = defaultArg pos_emb_type d.PosEmbType
                PosEmbPNorm = defaultArg pos_emb_p_norm d.PosEmbPNorm
                NChanPosEmb = n_chan_pos_emb
                WPosEmbStd = defaultArg W_pos_emb_std d.WPosEmbStd
                ValPosEmb = defaultArg val_pos_emb d.ValPosEmb
                BatchAxis = defaultArg batch_axis d.BatchAxis
                ChannelAxis = defaultArg channel_axis d.ChannelAxis
                PosEmbDecayFn = defaultArg pos_emb_decay_fn d.PosEmbDecayFn }

    // ---- activations ---------------------------------------------------------------------------------------------

    // do_stabilize (default False) is accepted by the ReLU family and changes nothing: neural_tangents rescales the
    // covariances by their largest entry before the arc-cosine formula, which is scale-equivariant, and our rule
    // clamps the correlation itself, so the numbers are the same either way.

    /// <summary><c>stax.Relu(do_stabilize=False)</c>.</summary>
    static member Relu(?do_stabilize: bool) = ignore do_stabilize; Stax.relu

    /// <summary><c>stax.ABRelu(a, b, do_stabilize=False)</c>: a·min(x, 0) + b·max(x, 0).</summary>
    static member ABRelu(a: float, b: float, ?do_stabilize: bool) = ignore do_stabilize; Stax.abRelu a b

    /// <summary><c>stax.LeakyRelu(alpha, do_stabilize=False)</c>.</summary>
    static member LeakyRelu(alpha: float, ?do_stabilize: bool) = ignore do_stabilize; Stax.leakyRelu alpha

    /// <summary><c>stax.Abs(do_stabilize=False)</c>.</summary>
    static member Abs(?do_stabilize: bool) = ignore do_stabilize; Stax.abs

    /// <summary><c>stax.Erf(a=1., b=1., c=0.)</c>: a·erf(b·x) + c.</summary>
    static member Erf(?a: float, ?b: float, ?c: float) = Stax.erf (defaultArg a 1.0) (defaultArg b 1.0) (defaultArg c 0.0)

    /// <summary><c>stax.Sigmoid_like()</c>.</summary>
    static member Sigmoid_like() = Stax.sigmoidLike

    /// <summary><c>stax.Sin(a=1., b=1., c=0.)</c>: a·sin(b·x + c).</summary>
    static member Sin(?a: float, ?b: float, ?c: float) = Stax.sin (defaultArg a 1.0) (defaultArg b 1.0) (defaultArg c 0.0)

    /// <summary><c>stax.Cos(a=1., b=1., c=0.)</c>: a·cos(b·x + c).</summary>
    static member Cos(?a: float, ?b: float, ?c: float) = Stax.cos (defaultArg a 1.0) (defaultArg b 1.0) (defaultArg c 0.0)

    /// <summary><c>stax.Gelu(approximate=False)</c>.</summary>
    static member Gelu(?approximate: bool) = Stax.gelu (defaultArg approximate false)

    /// <summary><c>stax.Monomial(degree)</c>.</summary>
    static member Monomial(degree: int) = Stax.monomial degree

    /// <summary><c>stax.RectifiedMonomial(degree)</c>.</summary>
    static member RectifiedMonomial(degree: int) = Stax.rectifiedMonomial degree

    /// <summary><c>stax.Hermite(degree)</c>.</summary>
    static member Hermite(degree: int) = Stax.hermite degree

    /// <summary><c>stax.Polynomial(coef)</c>: coef[0] + coef[1]·x + ….</summary>
    static member Polynomial(coef: float list) = Stax.polynomial coef

    /// <summary><c>stax.Exp(a=1., b=1.)</c>: a·exp(b·x).</summary>
    static member Exp(?a: float, ?b: float) = Stax.exp (defaultArg a 1.0) (defaultArg b 1.0)

    /// <summary><c>stax.Gaussian(a=1., b=-1.)</c>: a·exp(b·x²).</summary>
    static member Gaussian(?a: float, ?b: float) = Stax.gaussian (defaultArg a 1.0) (defaultArg b -1.0)

    /// <summary><c>stax.ExpNormalized(gamma=1., shift=-1., do_clip=False)</c> (kernel only).</summary>
    static member ExpNormalized(?gamma: float, ?shift: float, ?do_clip: bool) =
        Stax.expNormalized (defaultArg gamma 1.0) (defaultArg shift -1.0) (defaultArg do_clip false)

    /// <summary><c>stax.Rbf(gamma=1.)</c>.</summary>
    static member Rbf(?gamma: float) = Stax.rbf (defaultArg gamma 1.0)

    /// <summary><c>stax.Sign()</c>.</summary>
    static member Sign() = Stax.sign

    /// <summary><c>stax.Gabor()</c>.</summary>
    static member Gabor() = Stax.gabor

    /// <summary><c>stax.ElementwiseNumerical(fn, deg, df=None)</c> with <c>fn</c>/<c>df</c> named from
    /// <c>Stax.activationNames</c>.</summary>
    static member ElementwiseNumerical(fn: string, deg: int, ?df: string) = Stax.elementwiseNumerical fn deg df

    /// <summary><c>stax.ElementwiseNumerical(fn, deg, df)</c> with user functions φ and φ′.</summary>
    static member ElementwiseNumerical(name: string, fn: float -> float, df: float -> float, deg: int) =
        Stax.elementwiseNumericalWith name fn df deg

    /// <summary><c>stax.Elementwise(fn=None, nngp_fn, d_nngp_fn)</c>: the NNGP map (c, q1, q2) ↦ E[φ(u)φ(v)] and
    /// E[φ′(u)φ′(v)]; φ and φ′ optional (the finite network raises without them).</summary>
    static member Elementwise(name: string, nngp_fn: float -> float -> float -> float, d_nngp_fn: float -> float -> float -> float,
                              ?fn: float -> float, ?df: float -> float) =
        Stax.elementwise name fn df nngp_fn d_nngp_fn
