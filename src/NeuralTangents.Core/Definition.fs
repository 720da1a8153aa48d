namespace NeuralTangents

/// <summary>neural_tangents' three-valued <c>Bool</c> of the diagonal requirements: No &lt; Maybe &lt; Yes.</summary>
[<RequireQualifiedAccess>]
type Tri =
    | No
    | Maybe
    | Yes

/// <summary>Whether a layer (or a network) lets a covariance store only its diagonal along the batch or spatial
/// axes — neural_tangents' <c>Diagonal(input, output)</c>. <c>Input</c>: Yes — the layer's input may be
/// diagonal-only; Maybe — only if its off-diagonal entries are zero; No — it must be full. <c>Output</c>: Yes — every
/// output from here on may be diagonal-only (e.g. after Flatten only same-position covariances matter); Maybe — this
/// layer's may, later ones may not; No — the outputs must be full (the caller may want the off-diagonal entries).
/// Serial composition is <c>Diagonal.compose</c> (neural_tangents' <c>&gt;&gt;</c>), parallel is <c>Diagonal.both</c>
/// (<c>&amp;</c>).</summary>
type Diagonal =
    { Input: Tri
      Output: Tri }

/// <summary>The algebra of <see cref="T:NeuralTangents.Diagonal"/> requirements (neural_tangents'
/// <c>stax.requirements.Diagonal</c>).</summary>
[<RequireQualifiedAccess>]
module Diagonal =

    /// <summary><c>Diagonal()</c>: the input may be diagonal, the outputs must not be (Dense, the activations).</summary>
    [<CompiledName("Default")>]
    let defaults = { Input = Tri.Yes; Output = Tri.No }

    /// <summary>The requirement of <c>first</c> then <c>second</c> (neural_tangents' <c>first &gt;&gt; second</c>),
    /// associative: once an output may be diagonal for good (Yes), later layers no longer matter; a layer that may
    /// only produce diagonal outputs (Output ≥ Maybe) feeding one that accepts them keeps its own input allowance; a
    /// full output (No) feeding a layer that does not insist on diagonal input forces a full input; otherwise the
    /// stricter input allowance wins.</summary>
    [<CompiledName("Compose")>]
    let compose (first: Diagonal) (second: Diagonal) =
        if first.Output = Tri.Yes then first
        else
            let input =
                if first.Output > Tri.No && second.Input > Tri.No then first.Input
                elif first.Output = Tri.No && second.Input < Tri.Yes then Tri.No
                else min first.Input second.Input
            { Input = input; Output = second.Output }

    /// <summary>The requirement of two parallel branches (neural_tangents' <c>&amp;</c>): the smaller allowance on
    /// each side; commutative, associative and idempotent.</summary>
    [<CompiledName("Both")>]
    let both (a: Diagonal) (b: Diagonal) = { Input = min a.Input b.Input; Output = min a.Output b.Output }

    /// <summary>The layout the requirement asks for (neural_tangents' <c>bool(Diagonal)</c>): diagonal exactly when
    /// the input may be diagonal (Yes) and the outputs need not be full (Output &gt; No).</summary>
    [<CompiledName("IsDiagonal")>]
    let isDiagonal (d: Diagonal) = d.Input = Tri.Yes && d.Output > Tri.No

/// <summary>What a leaf layer fixes about its input's layout (neural_tangents' <c>@requires(batch_axis=…,
/// channel_axis=…, diagonal_batch=…, diagonal_spatial=…)</c>), read by the requirements fold.</summary>
type LayoutRequirement =
    { /// The input's batch axis, when the layer states one.
      BatchAxis: int option
      /// The input's channel (feature) axis, when the layer states one.
      ChannelAxis: int option
      /// True when layers after this one see a layout of its own making (Flatten), so they add no input requirement.
      Resets: bool
      /// The layer's allowance for a diagonal batch covariance, when it states one.
      DiagonalBatch: Diagonal option
      /// The layer's allowance for a diagonal spatial covariance, when it states one.
      DiagonalSpatial: Diagonal option }

/// <summary>The side inputs of <c>apply_fn</c> beyond parameters and inputs (neural_tangents' <c>**kwargs</c>):
/// the random key of stochastic layers (Dropout) and the per-input side data some layers read (Aggregate's
/// <c>pattern</c>, masks). Each layer receives the key of its own path in the layer tree.</summary>
type ApplyContext =
    { /// Random key (neural_tangents' <c>rng</c>); None when the call gives none.
      Rng: RngKey option
      /// Named side inputs, e.g. "pattern"; empty when none are given.
      Side: Map<string, Tensor> }

    /// No key and no side inputs.
    static member Empty = { Rng = None; Side = Map.empty }

/// <summary>The value of one layer argument as neural_tangents writes it (JSON and printing).</summary>
type ArgValue =
    | IntArg of int
    | FloatArg of float
    /// A number or Python's None.
    | OptFloatArg of float option
    | BoolArg of bool
    | StringArg of string
    | IntsArg of int list
    | StringsArg of string list
    /// A list of numbers (Polynomial's coef).
    | FloatsArg of float list
    /// A (possibly nested) list of argument values, e.g. dimension_numbers or a constant array as nested lists.
    | ListArg of ArgValue list
    /// Python's None where the argument is not a number (a slice bound, DotGeneral's absent lhs).
    | NoneArg

/// <summary>How a leaf layer pushes tangents forward (the Jacobian–vector product JAX's <c>jvp</c> gives its
/// <c>apply_fn</c>): d f(θ, x)[dθ, dx] = ∂f/∂θ·dθ + ∂f/∂x·dx.</summary>
type TangentRule =
    /// The layer has no parameters and, for the side inputs of one call (random key, pattern), is linear in its
    /// input, so the output tangent is the forward pass applied to the input tangent (Flatten, pooling, Dropout's
    /// fixed mask, Aggregate's fixed pattern, DotGeneral with a constant …).
    | LinearInInput
    /// The output tangent from the call's side inputs, the parameters θ, their tangent dθ (a tree shaped like θ),
    /// the input x and its tangent dx.
    | Tangent of (ApplyContext -> Params -> Params -> Tensor -> Tensor -> Tensor)

/// <summary>Everything one leaf layer is, defined once in the module of its family (named after neural_tangents'
/// <c>stax</c> files): neural_tangents' <c>(init_fn, apply_fn, kernel_fn)</c> plus its requirements and the
/// pieces the backward pass and the empirical NTK need. The interpreters (<c>KernelFn</c>, <c>InitFn</c>,
/// <c>ApplyFn</c>, <c>Backward</c>, <c>Empirical</c>) dispatch the combinators and hand every leaf to its
/// definition.</summary>
type LayerDef =
    { /// neural_tangents' name of the layer (as JSON and error messages spell it).
      Name: string
      /// Its arguments, every one explicit, with neural_tangents' names, in its order.
      Args: (string * ArgValue) list
      Requires: LayoutRequirement
      /// The kernel rule. With <c>true</c> the rule may overwrite the input kernel's nngp/ntk arrays (the
      /// interpreter passes it only for arrays it allocated itself and shares with nobody).
      Kernel: bool -> Kernel -> Kernel
      /// Output shape and sampled parameters for an input shape, from the layer's own key.
      Init: RngKey -> int[] -> int[] * Params
      /// The forward pass, with the side inputs of this layer's call.
      Apply: ApplyContext -> Params -> Tensor -> Tensor
      /// The input cotangent from the forward call's side inputs (the same key and pattern, so the same mask),
      /// the parameters, the input and the output cotangent.
      Vjp: ApplyContext -> Params -> Tensor -> Tensor -> Tensor
      /// The parameter cotangents (a tree shaped like the parameters) from the same four.
      ParamVjp: ApplyContext -> Params -> Tensor -> Tensor -> Params
      /// ⟨∂f_a/∂θ, ∂f_b/∂θ⟩ over this layer's parameters from two (side inputs, input, output cotangent) triples
      /// without forming ∂θ (neural_tangents' structured derivatives); None: the empirical NTK forms ∂θ with
      /// <c>ParamVjp</c>.
      GradDot: (Params -> ApplyContext -> Tensor -> Tensor -> ApplyContext -> Tensor -> Tensor -> float) option
      /// The forward-mode derivative (see <c>TangentRule</c>).
      Jvp: TangentRule
      /// How masked inputs flow through the layer (neural_tangents' <c>supports_masking</c> and <c>mask_fn</c>);
      /// the kernel rule above already applies it (<c>Masking.kernel</c>), the apply interpreter reads it.
      Mask: MaskRule }

/// <summary>What a fan-in layer is (it merges a list of branches): its kernel rule, shape rule, forward pass and
/// pullback.</summary>
type MergeDef =
    { Name: string
      Args: (string * ArgValue) list
      Kernel: Kernel list -> Kernel
      Shape: int[] list -> int[]
      Apply: Tensor list -> Tensor
      Vjp: Tensor list -> Tensor -> Tensor list
      /// The output tangent from the branches' inputs and their tangents.
      Jvp: Tensor list -> Tensor list -> Tensor
      /// neural_tangents' fan-in <c>mask_fn</c>: the output mask from the branches' masks and shapes.
      MaskMerge: Tensor option list -> int[] list -> Tensor option }

/// <summary>Reads one layer's arguments from its JSON object, names as neural_tangents spells them: a missing
/// optional argument takes the default given; a missing required one or a bad value raises an error that names the
/// layer and the argument.</summary>
type IArgs =
    abstract Number: name: string * dflt: float -> float
    abstract RequiredNumber: name: string -> float
    abstract Int: name: string * dflt: int * lo: int * hi: int -> int
    abstract RequiredInt: name: string * lo: int * hi: int -> int
    abstract Bool: name: string * dflt: bool -> bool
    /// A string, or None for a JSON null or an omitted argument.
    abstract OptString: name: string -> string option
    /// A required list of finite numbers.
    abstract RequiredNumbers: name: string -> float list

/// <summary>How the JSON codec reads one activation: its neural_tangents name, the arguments it accepts, and the
/// (validated) activation they give.</summary>
type ActivationReader =
    { Name: string
      Accepts: string list
      Read: IArgs -> Activation }
