namespace NeuralTangents

open System

/// <summary>How a Dense layer scales its weights (neural_tangents' <c>parameterization</c>).</summary>
[<RequireQualifiedAccess>]
type Parameterization =
    /// W ~ N(0, 1), output W_std/√N_in · W x + b_std · b (arXiv:1806.07572).
    | Ntk
    /// W ~ N(0, W_std²/N_in), output W x/√s0 + b (arXiv:2001.07301).
    | Standard

/// <summary>Arguments of <c>Dense</c>, named as neural_tangents names them.</summary>
type DenseSpec =
    { OutDim: int
      WStd: float
      /// None: the layer has no bias (neural_tangents' <c>b_std=None</c>).
      BStd: float option
      BatchAxis: int
      ChannelAxis: int
      Parameterization: Parameterization
      /// Width scalings (s[0], s[1]) of the standard parameterization.
      S: int * int }

/// <summary><c>a·min(x, 0) + b·max(x, 0)</c>; Relu, LeakyRelu and Abs are its special cases.</summary>
type ABReluSpec = { A: float; B: float }

/// <summary><c>a·erf(b·x) + c</c>.</summary>
type ErfSpec = { A: float; B: float; C: float }

/// <summary><c>a·sin(b·x + c)</c>; Cos is Sin with c + π/2.</summary>
type SinSpec = { A: float; B: float; C: float }

/// <summary><c>a·exp(b·x)</c> (neural_tangents' <c>Exp</c>).</summary>
type ExpSpec = { A: float; B: float }

/// <summary><c>a·exp(b·x²)</c> (neural_tangents' <c>Gaussian</c>).</summary>
type GaussianSpec = { A: float; B: float }

/// <summary>neural_tangents' <c>ExpNormalized(gamma, shift, do_clip)</c>, the "Gaussian normalized kernel"
/// (kernel only, no finite function).</summary>
type ExpNormalizedSpec = { Gamma: float; Shift: float; DoClip: bool }

/// <summary>neural_tangents' <c>ElementwiseNumerical(fn, deg, df)</c> with <c>fn</c> (and optionally <c>df</c>)
/// named from the registry of activations (<c>Stax.activationNames</c>), so the layer stays plain data.</summary>
type NumericalSpec =
    { /// The registry name of φ.
      Fn: string
      /// The number of Gauss–Hermite nodes per axis, ≥ 1.
      Deg: int
      /// The registry name of the function used as φ′; None: the exact derivative of <c>Fn</c> (dual numbers).
      Df: string option }

/// <summary>neural_tangents' <c>Elementwise(fn, nngp_fn, d_nngp_fn)</c> with the maps named (JSON and CLI, where
/// functions cannot travel): <c>NngpFn</c> "relu" or "erf", σ̇ from <c>DNngpFn</c>'s map or, when None, the exact
/// derivative of the NNGP map (dual numbers); <c>Fn</c> a registry name for the finite network, or None.</summary>
type ElementwiseNamedSpec = { Fn: string option; NngpFn: string; DNngpFn: string option }

/// <summary>An elementwise layer built from user functions (neural_tangents' <c>Elementwise</c> and
/// <c>ElementwiseNumerical</c> with callables). Equality is by reference: two values are equal only when they are
/// the same object, as functions cannot be compared.</summary>
[<Sealed; AllowNullLiteral>]
type CustomActivation
    internal (name: string, args: (string * string) list, fn: (float -> float) option, dfn: (float -> float) option,
              step: float -> float -> float -> struct (float * float)) =
    /// <summary>The layer's name (printing and error messages).</summary>
    member _.Name = name
    /// <summary>Descriptive arguments (e.g. the quadrature degree), for printing.</summary>
    member _.Args = args
    /// <summary>φ, or None when only the kernel is known (the finite network then raises).</summary>
    member _.Fn = fn
    /// <summary>φ′, or None when only the kernel is known.</summary>
    member _.DFn = dfn
    /// <summary>(cov12, var1, var2) ↦ (E[φ(u)φ(v)], E[φ′(u)φ′(v)]).</summary>
    member _.Step = step
    override _.ToString() = $"""{name}({(String.Join(", ", args |> List.map (fun (k, v) -> k + "=" + v)))})"""

/// <summary>How a convolution or pooling window treats the borders (neural_tangents' <c>Padding</c>).</summary>
[<RequireQualifiedAccess>]
type Padding =
    /// Zero padding, split as lax splits it (the extra entry after), so that the output has ⌈size/stride⌉ positions.
    | Same
    /// No padding: only windows that lie inside the input, ⌊(size − window)/stride⌋ + 1 positions.
    | Valid
    /// Periodic boundary conditions: SAME's pads filled by wrapping the input around.
    | Circular

    /// neural_tangents' name: "SAME", "VALID" or "CIRCULAR" (JSON's <c>padding</c>, and messages).
    member p.Name =
        match p with
        | Same -> "SAME"
        | Valid -> "VALID"
        | Circular -> "CIRCULAR"

/// <summary>Arguments of <c>AvgPool</c> and <c>SumPool</c> shared by both, named as neural_tangents names them.</summary>
type PoolSpec =
    { /// The window's size along each spatial axis, in the order the spatial axes appear in the input.
      WindowShape: int list
      /// The window's step along each spatial axis (neural_tangents' <c>strides=None</c> is all ones).
      Strides: int list
      Padding: Padding
      BatchAxis: int
      ChannelAxis: int }

/// <summary>Arguments of <c>GlobalAvgPool</c> and <c>GlobalSumPool</c>.</summary>
type GlobalPoolSpec = { BatchAxis: int; ChannelAxis: int }

/// <summary>Which convolution a <see cref="T:NeuralTangents.ConvSpec"/> describes (neural_tangents' <c>_Conv</c>
/// flags <c>transpose</c> and <c>shared_weights</c>).</summary>
[<RequireQualifiedAccess>]
type ConvKind =
    /// <c>Conv</c>: one filter shared by every position.
    | Conv
    /// <c>ConvTranspose</c>: the transpose (input-dilated) convolution, shared filter.
    | Transpose
    /// <c>ConvLocal</c>: a separate (untied) filter at every output position.
    | Local

/// <summary>Arguments of <c>Conv</c>, <c>ConvTranspose</c> and <c>ConvLocal</c>, named as neural_tangents names
/// them. Every argument is explicit (the smart constructors fill neural_tangents' defaults).</summary>
type ConvSpec =
    { Kind: ConvKind
      OutChan: int
      /// Filter sizes, one per spatial axis, in the order of the spatial letters of the filter spec (rhs).
      FilterShape: int list
      /// Strides in the same order (neural_tangents' <c>None</c> is all ones).
      Strides: int list
      Padding: Padding
      WStd: float
      /// None: the layer has no bias (neural_tangents' <c>b_std=None</c>).
      BStd: float option
      /// (lhs, rhs, out) specs of <c>lax.conv_general_dilated</c>, e.g. ("NHWC", "HWIO", "NHWC").
      DimensionNumbers: string * string * string
      Parameterization: Parameterization
      /// Width scalings (s[0], s[1]) of the standard parameterization.
      S: int * int }

/// <summary>Arguments of <c>Flatten</c>.</summary>
type FlattenSpec = { BatchAxis: int; BatchAxisOut: int }

/// <summary>Which kernel <c>Dropout</c> has (neural_tangents' <c>mode</c>).</summary>
[<RequireQualifiedAccess>]
type DropoutMode =
    /// "train": units are dropped at random; the kernel gains 1/rate on same-sample, same-position entries.
    | Train
    /// "test": the identity.
    | Test

/// <summary>Arguments of <c>Dropout</c>: <c>Rate</c> is the keep probability in (0, 1], as in neural_tangents.</summary>
type DropoutSpec = { Rate: float; Mode: DropoutMode }

/// <summary>Arguments of <c>LayerNorm</c>, named as neural_tangents names them.</summary>
type LayerNormSpec =
    { /// The axes normalised over (must include the channel axis for the kernel); may be negative.
      Axis: int list
      /// Added to the variance before the square root.
      Eps: float
      BatchAxis: int
      ChannelAxis: int }

/// <summary>Arguments of <c>DotGeneral</c>: a constant left or right operand of <c>lax.dot_general</c> (at most
/// one; neither is the identity), named as neural_tangents names them.</summary>
type DotGeneralSpec =
    { /// The constant left operand: the layer computes dot_general(lhs, inputs).
      Lhs: Tensor option
      /// The constant right operand: the layer computes dot_general(inputs, rhs).
      Rhs: Tensor option
      /// ((lhs_contracting, rhs_contracting), (lhs_batch, rhs_batch)) as lax.dot_general takes them.
      DimensionNumbers: (int list * int list) * (int list * int list)
      BatchAxis: int
      ChannelAxis: int }

/// <summary>One entry of numpy's basic indexing, as neural_tangents' <c>Index</c> takes it.</summary>
[<RequireQualifiedAccess>]
type IndexEntry =
    /// An integer (negative counts from the end): selects one entry and removes the axis.
    | At of int
    /// A slice start:stop:step with Python's semantics (None: the default of each bound; step ≠ 0).
    | Range of start: int option * stop: int option * step: int option
    /// <c>...</c> (Ellipsis): as many full slices as the other entries leave.
    | Rest

/// <summary>Arguments of <c>Index</c>.</summary>
type IndexSpec = { Idx: IndexEntry list; BatchAxis: int; ChannelAxis: int }

/// <summary>The interpolation of <c>ImageResize</c> that has a kernel (jax.image's <c>ResizeMethod</c>).</summary>
[<RequireQualifiedAccess>]
type ResizeMethod =
    /// "linear" (also "bilinear", "trilinear", "triangle"): the triangle kernel at half-pixel centres.
    | Linear
    /// "nearest": the input entry at floor((o + 0.5)·n_in/n_out).
    | Nearest

/// <summary>Arguments of <c>ImageResize</c>, named as neural_tangents names them.</summary>
type ImageResizeSpec =
    { /// The output size of every axis; −1 keeps the axis's size.
      Shape: int list
      Method: ResizeMethod
      /// Widen the linear kernel when downsampling (no effect when upsampling or for "nearest").
      Antialias: bool
      BatchAxis: int
      ChannelAxis: int }

/// <summary>How <c>Aggregate</c>'s <c>pattern</c> is given (neural_tangents' <c>AggregateImplementation</c>).</summary>
[<RequireQualifiedAccess>]
type AggregateImplementation =
    /// "DENSE": a weighted adjacency (batch, X_i1…X_iK, X_i1…X_iK) per input sample.
    | Dense
    /// "SPARSE": integer edges (batch, n_edges, K, 2) of (tail, head) positions, weight 1 each (repeats add up);
    /// an edge with a negative coordinate is padding.
    | Sparse

/// <summary>Arguments of <c>Aggregate</c> (graph networks), named as neural_tangents names them; neural_tangents'
/// <c>to_dense</c> is the identity here.</summary>
type AggregateSpec =
    { /// The aggregated (non-batch, non-channel) axes; None: every spatial axis.
      AggregateAxis: int list option
      BatchAxis: int
      ChannelAxis: int
      Implementation: AggregateImplementation
      /// The (pattern1, pattern2) of one kernel_fn call, bound by <c>KernelFn.computeWithPattern</c>; None in an
      /// architecture (then the kernel passes through, as neural_tangents' pattern=(None, None) does).
      Pattern: (Tensor * Tensor) option }

/// <summary>The nonlinearity applied to attention scores (neural_tangents' <c>AttentionMechanism</c>).</summary>
[<RequireQualifiedAccess>]
type AttentionMechanism =
    /// "SOFTMAX": softmax over the attended positions.
    | Softmax
    /// "IDENTITY": the scores themselves.
    | Identity
    /// "ABS": |score|.
    | Abs
    /// "RELU": max(score, 0).
    | Relu

/// <summary>Positional embeddings of <c>GlobalSelfAttention</c> (neural_tangents' <c>PositionalEmbedding</c>).</summary>
[<RequireQualifiedAccess>]
type PositionalEmbedding =
    /// "NONE": no positional embeddings.
    | NoEmbedding
    /// "SUM": embeddings added to the activations.
    | Sum
    /// "CONCAT": embeddings concatenated to the activations' channels.
    | Concat

/// <summary>The covariance of <c>GlobalSelfAttention</c>'s positional embeddings as a function of the distance
/// d = Σ_axes |p − q|^pos_emb_p_norm between two positions (neural_tangents' <c>pos_emb_decay_fn</c>, a Python
/// callable there; here the named functions JSON can carry).</summary>
[<RequireQualifiedAccess>]
type PosEmbDecay =
    /// neural_tangents' <c>pos_emb_decay_fn=None</c>: 1 when d = 0, else 0 (one-hot embeddings).
    | OneHot
    /// <c>lambda d: exp(-d / length_scale)</c>; JSON <c>["exp", length_scale]</c>.
    | Exponential of lengthScale: float
    /// <c>lambda d: (1 + d) ** -exponent</c>; JSON <c>["power", exponent]</c>.
    | Power of exponent: float

/// <summary>Arguments of <c>GlobalSelfAttention</c>, named as neural_tangents names them.</summary>
type AttentionSpec =
    { NChanOut: int
      NChanKey: int
      NChanVal: int
      NHeads: int
      /// True: scores scaled by 1/n_chan_key with tied key/query weights (closed-form kernel for every mechanism);
      /// false: 1/√n_chan_key, independent weights (kernel only for IDENTITY).
      LinearScaling: bool
      WKeyStd: float
      WValueStd: float
      WQueryStd: float
      WOutStd: float
      /// None: no bias.
      BStd: float option
      AttentionMechanism: AttentionMechanism
      PosEmbType: PositionalEmbedding
      /// The power p of the distance Σ_axes |p − q|^p that pos_emb_decay_fn receives (unused when it is OneHot).
      PosEmbPNorm: float
      /// Channels of the embeddings; None: as many as the inputs.
      NChanPosEmb: int option
      WPosEmbStd: float
      /// True: embeddings also enter the values.
      ValPosEmb: bool
      BatchAxis: int
      ChannelAxis: int
      /// neural_tangents' pos_emb_decay_fn (default None: OneHot).
      PosEmbDecayFn: PosEmbDecay }

/// <summary>The elementwise nonlinearities (neural_tangents' <c>stax/elementwise.py</c>), each defined once in
/// <c>NeuralTangents.Layers.Elementwise</c>.</summary>
type Activation =
    /// a·min(x, 0) + b·max(x, 0); Relu, LeakyRelu and Abs are its special cases.
    | ABRelu of ABReluSpec
    /// a·erf(b·x) + c; Sigmoid_like is a special case.
    | Erf of ErfSpec
    /// a·sin(b·x + c); Cos is Sin with c + π/2.
    | Sin of SinSpec
    /// Gaussian error linear unit, x·Φ(x) (exact; <c>approximate</c> only changes the finite network).
    | Gelu of approximate: bool
    /// x^degree, degree in 0..5.
    | Monomial of degree: int
    /// a·exp(b·x).
    | Exp of ExpSpec
    /// neural_tangents' ExpNormalized: nngp' = p·exp(γ(c/p + shift)), p = √(q1·q2) (kernel only).
    | ExpNormalized of ExpNormalizedSpec
    /// a·exp(b·x²).
    | Gaussian of GaussianSpec
    /// √2·sin(√(2γ)·x + π/4), whose NNGP is the RBF kernel exp(−γ(q1 + q2 − 2c)).
    | Rbf of gamma: float
    /// sign(x).
    | Sign
    /// exp(−x²)·sin(x).
    | Gabor
    /// The normalized probabilists' Hermite polynomial He_degree(x)/√(degree!), degree ≥ 0.
    | Hermite of degree: int
    /// (x ≥ 0)·x^degree, degree ≥ 0.
    | RectifiedMonomial of degree: int
    /// coef[0] + coef[1]·x + … + coef[n]·xⁿ.
    | Polynomial of coef: float list
    /// A registry activation by Gauss–Hermite quadrature.
    | ElementwiseNumerical of NumericalSpec
    /// neural_tangents' Elementwise with named maps (JSON's form).
    | ElementwiseNamed of ElementwiseNamedSpec
    /// An activation from user functions (not JSON-encodable; equality by reference).
    | Custom of CustomActivation

/// <summary>A layer of an infinite (or finite) network, with neural_tangents' semantics.
/// Build values with the smart constructors of the <c>Stax</c> module.</summary>
type Layer =
    /// Layers applied one after another.
    | Serial of Layer list
    /// Layers applied side by side to a list of inputs of the same length.
    | Parallel of Layer list
    /// <c>layer</c> composed <c>n</c> times with untied parameters (neural_tangents' <c>repeat(layer, n)</c>): the
    /// same network as <c>Serial</c> of n copies; the layer must keep its input shape.
    | Repeat of layer: Layer * n: int
    /// Copies its input into <c>num</c> branches.
    | FanOut of num: int
    /// Sums its branches.
    | FanInSum
    /// Multiplies its branches elementwise.
    | FanInProd
    /// Concatenates its branches along <c>axis</c>.
    | FanInConcat of axis: int
    /// The identity.
    | Identity
    | Dense of DenseSpec
    /// A convolution (Conv, ConvTranspose or ConvLocal, by <c>Kind</c>).
    | Conv of ConvSpec
    | Flatten of FlattenSpec
    /// An elementwise nonlinearity.
    | Activation of Activation
    /// Average pooling; <c>normalizeEdges</c>: divide by the window's entries inside the input (true) or by the
    /// window size even at SAME borders (false, neural_tangents' default).
    | AvgPool of pool: PoolSpec * normalizeEdges: bool
    /// Sum pooling.
    | SumPool of PoolSpec
    /// Mean over all spatial positions, which it removes.
    | GlobalAvgPool of GlobalPoolSpec
    /// Sum over all spatial positions, which it removes.
    | GlobalSumPool of GlobalPoolSpec
    /// Dropout (neural_tangents' <c>Dropout(rate, mode)</c>).
    | Dropout of DropoutSpec
    /// Layer normalisation over <c>Axis</c> (neural_tangents' <c>LayerNorm</c>).
    | LayerNorm of LayerNormSpec
    /// A constant linear map by <c>lax.dot_general</c> (neural_tangents' <c>DotGeneral</c>).
    | DotGeneral of DotGeneralSpec
    /// numpy basic indexing of the inputs (neural_tangents' <c>Index</c>).
    | Index of IndexSpec
    /// Resizing as jax.image.resize does (neural_tangents' <c>ImageResize</c>).
    | ImageResize of ImageResizeSpec
    /// Graph aggregation over a per-sample adjacency (neural_tangents' <c>Aggregate</c>).
    | Aggregate of AggregateSpec
    /// Global scaled dot-product self-attention (neural_tangents' <c>GlobalSelfAttention</c>).
    | GlobalSelfAttention of AttentionSpec
