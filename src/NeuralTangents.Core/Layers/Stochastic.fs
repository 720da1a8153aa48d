namespace NeuralTangents.Layers

open System
open NeuralTangents

/// Dropout (neural_tangents' `stax.Dropout` in `stax/linear.py`, after `jax.example_libraries.stax.Dropout`): its
/// kernel rule, its finite forward and backward passes and its definition. `rate` is the keep probability.
module Stochastic =

    /// The name of a mode as neural_tangents spells it.
    let modeName (m: DropoutMode) =
        match m with
        | DropoutMode.Train -> "train"
        | DropoutMode.Test -> "test"

    /// Validated Dropout arguments: 0 &lt; rate ≤ 1 (neural_tangents' check).
    let dropoutSpec (rate: float) (mode: DropoutMode) : DropoutSpec =
        if not (rate > 0.0 && rate <= 1.0) then
            invalidArg "rate" $"Dropout: rate (the keep probability) must be in (0, 1], got {Show.g rate}"
        { Rate = rate; Mode = mode }

    /// Multiplies the entries of a covariance that pair a sample with itself at the same position by
    /// <c>factor</c> (neural_tangents' `_diag_mul`). <c>batchNdim</c> = 1: (N, spatial…), every sample is paired
    /// with itself; 2: (N, N', spatial…), the entries n = n' — left unchanged when N ≠ N', as neural_tangents does.
    /// Spatially, every entry of the diagonal layout or the (p, p) pairs of the full layout.
    let diagMul (factor: float) (batchNdim: int) (diagonalSpatial: bool) (t: Tensor) : Tensor =
        if batchNdim = 2 && t.Shape[0] <> t.Shape[1] then t
        else
            let n = t.Shape[0]
            let dims = Spatial.sizes diagonalSpatial batchNdim t.Shape
            let s = Array.fold (*) 1 dims
            let block = if diagonalSpatial then s else s * s
            let diag = if diagonalSpatial then Array.init s id else Spatial.diagonalIndices dims
            let out = Array.copy t.Data
            for i in 0 .. n - 1 do
                let start = (if batchNdim = 1 then i else i * n + i) * block
                for p in diag do out[start + p] <- factor * out[start + p]
            Tensor.create t.Shape out

    /// Dropout's kernel in "train" mode (neural_tangents' `kernel_fn_train`). A unit kept with probability r and
    /// scaled by 1/r has E[m m'] / r² = 1/r for the same draw (same sample, same position, same unit) and 1 for
    /// independent draws, so every same-sample same-position covariance gains 1/r: always in cov1/cov2, and in
    /// nngp/ntk only when x2 is x1 (otherwise the two batches hold different samples). The output is no longer
    /// Gaussian. neural_tangents' check against the input layer is dead code there (its input kernel is never marked
    /// as input), so Dropout on the inputs is allowed here too; the rule above holds for any input.
    let dropoutKernel (d: DropoutSpec) (k: Kernel) : Kernel =
        match d.Mode with
        | DropoutMode.Test -> k
        | DropoutMode.Train ->
            let f = 1.0 / d.Rate
            let covNdim = if k.DiagonalBatch then 1 else 2
            let pair (t: Tensor) = if k.X1IsX2 then diagMul f 2 k.DiagonalSpatial t else t
            { k with
                Cov1 = diagMul f covNdim k.DiagonalSpatial k.Cov1
                Cov2 = k.Cov2 |> Option.map (diagMul f covNdim k.DiagonalSpatial)
                Nngp = pair k.Nngp
                Ntk = k.Ntk |> Option.map pair
                IsGaussian = false
                IsInput = false }

    /// The keep mask of one call: entry i is kept with probability <c>rate</c>. Uniforms come from pairs of the
    /// key's normals: z1² + z2² is χ² with 2 degrees of freedom, i.e. exponential with mean 2, so
    /// exp(−(z1² + z2²)/2) is uniform on (0, 1).
    let keepMask (key: RngKey) (rate: float) (n: int) : bool[] =
        let z = Rng.normals key (2 * n)
        Array.init n (fun i -> Math.Exp(-0.5 * (z[2 * i] * z[2 * i] + z[2 * i + 1] * z[2 * i + 1])) < rate)

    /// Dropout's forward pass (jax.example_libraries' `Dropout.apply_fn`): "train" keeps each entry with
    /// probability rate and divides it by rate, from the call's random key; "test" is the identity.
    let dropoutForward (d: DropoutSpec) (ctx: ApplyContext) (x: Tensor) : Tensor =
        match d.Mode with
        | DropoutMode.Test -> x
        | DropoutMode.Train ->
            match ctx.Rng with
            | None ->
                raise (NeuralTangentsException
                    "Dropout: apply_fn in mode 'train' needs a random key (rng) to draw the dropout mask; pass one (nt: \"kwargs\": {\"rng\": 0}; F#: ApplyFn.applyWith { Rng = Some key; ... }) or use mode 'test'")
            | Some key ->
                let keep = keepMask key d.Rate x.Length
                Tensor.create x.Shape (Array.init x.Length (fun i -> if keep[i] then x.Data[i] / d.Rate else 0.0))

    /// Dropout's input cotangent: "train" mode is the diagonal map x ↦ m∘x/rate with the mask m of the forward
    /// call, redrawn from the same key (the backward pass receives the forward call's context), so ct ↦ m∘ct/rate.
    let dropoutBackward (d: DropoutSpec) (ctx: ApplyContext) (ct: Tensor) : Tensor = dropoutForward d ctx ct

    /// Dropout(rate, mode) (neural_tangents' <c>stax.Dropout</c>). No parameters. Its backward pass and tangents
    /// replay the forward call's mask from the same key.
    let dropout (d: DropoutSpec) : LayerDef =
        { Name = "Dropout"
          Args = [ "rate", FloatArg d.Rate; "mode", StringArg(modeName d.Mode) ]
          // @requires(use_dropout=True) in train mode only affects neural_tangents' batching; no layout requirement.
          Requires = { BatchAxis = None; ChannelAxis = None; Resets = false; DiagonalBatch = None; DiagonalSpatial = None }
          Kernel = Masking.kernel "Dropout" (Masking.identity false) (fun _ k -> dropoutKernel d k)
          Init = fun _ shape -> shape, Params.none
          Apply = fun ctx _ x -> dropoutForward d ctx x
          Vjp = fun ctx _ _ ct -> dropoutBackward d ctx ct
          ParamVjp = fun _ _ _ _ -> Params.none
          GradDot = None
          Jvp = LinearInInput
          Mask = Masking.identity false }
