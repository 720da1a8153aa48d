namespace NeuralTangents

open NeuralTangents.Rules

/// <summary>The <c>kernel_fn</c> interpreter: the exact infinite-width NNGP and NTK of a network
/// (neural_tangents' <c>kernel_fn(x1, x2, get)</c>). The network is compiled into a <c>KernelPlan</c> (every leaf's
/// rule from its definition, combinators as register bookkeeping), fused, and run.</summary>
[<RequireQualifiedAccess>]
module KernelFn =

    let private fail (msg: string) = raise (NeuralTangentsException msg)

    /// Name of a layer as neural_tangents spells it, for error messages.
    let layerName (layer: Layer) = Definitions.name layer

    /// <summary>Applies a layer to the kernel(s) flowing into it with the given execution; the caller's arrays are
    /// never modified.</summary>
    [<CompiledName("ApplyFlowWith")>]
    let applyFlowWith (exec: Execution) (layer: Layer) (flow: KernelFlow) : KernelFlow =
        let p = KernelPlan.compileFor (match flow with One _ -> None | Many ks -> Some ks.Length) layer
        // The caller's kernels are not the plan's to overwrite.
        KernelPlan.run exec (if exec.Fuse then KernelPlan.fuse p else p) flow false

    /// <summary>Applies a layer to the kernel(s) flowing into it; the caller's arrays are never modified.</summary>
    [<CompiledName("ApplyFlow")>]
    let applyFlow (layer: Layer) (flow: KernelFlow) : KernelFlow = applyFlowWith Execution.Fast layer flow

    /// The network's one output kernel, refused when it overflowed: a non-finite kernel is never returned. The
    /// message names the inputs at fault, counted from <paramref name="off1"/> / <paramref name="off2"/> (a tile's
    /// first rows) in the arrays named <paramref name="name1"/> / <paramref name="name2"/>.
    let private singleAt (name1: string, off1: int) (name2: string, off2: int) (flow: KernelFlow) =
        match flow with
        | One k ->
            // The variances too: a large-norm row can overflow in cov1 while its covariances with x2 stay finite.
            let arrays = [ "nngp", Some k.Nngp; "ntk", k.Ntk; "cov1", Some k.Cov1; "cov2", k.Cov2 ]
            match arrays |> List.tryPick (fun (name, t) -> t |> Option.filter (Tensor.isFinite >> not) |> Option.map (fun t -> name, t)) with
            | Some(name, t) ->
                let i = Array.findIndex (System.Double.IsFinite >> not) t.Data
                let v = t.Data[i]
                let shown = if System.Double.IsNaN v then "NaN" elif v > 0.0 then "+inf" else "-inf"
                // (N1, N2, …) for nngp and ntk and a full-batch cov; (N, …) for a diagonal-batch cov.
                let pairShaped = (name = "nngp" || name = "ntk" || not k.DiagonalBatch) && t.Rank >= 2
                let lead = if pairShaped then 2 else 1
                let rest = t.Shape[lead..] |> Array.fold (*) 1
                let first, second =
                    match name with
                    | "cov1" -> (name1, off1), (name1, off1)
                    | "cov2" -> (name2, off2), (name2, off2)
                    | _ -> (name1, off1), (name2, off2)
                let where =
                    if pairShaped then
                        let cols = t.Shape[1]
                        ("between input " + (string (snd first + i / (cols * rest))) + " of " + (fst first) + " and input " + (string (snd second + (i / rest) % cols)) + " of " + (fst second))
                    else $"for input {string (snd first + i / rest)} of {fst first}"
                let inputs = match name with "cov1" -> name1 | "cov2" -> name2 | _ -> "the inputs"
                // The largest variance at the output (every cov entry is at most it in magnitude, Cauchy–Schwarz).
                let largestVariance =
                    [ Some k.Cov1; k.Cov2 ] |> List.choose id |> List.filter (fun t -> t.Data.Length > 0)
                    |> List.map (fun t -> System.Numerics.Tensors.TensorPrimitives.MaxMagnitude(System.ReadOnlySpan t.Data))
                    |> List.fold max 0.0
                if System.Double.IsNaN v && largestVariance < 1e-150 then
                    // Every variance below 1e-150: products of two (√(q1·q2) in the arc-cosine and similar steps)
                    // leave the range of doubles, and the cosines are 0/0. Larger inputs or W_std are the fix, not
                    // smaller ones.
                    fail ("the kernel underflowed: " + name + " has NaN " + where + " because the variances shrank below 1e-150 (the largest at the output is " + Show.g largestVariance + "), where their products leave the range of doubles; variances that shrink layer after layer (W_std below √2 before a Relu halves them at every layer) reach 0 in a deep network: use W_std = √2 before each Relu (He's scaling), a bias (b_std > 0) or fewer layers")
                elif System.Double.IsNaN v then
                    // NaN: an overflow met another (∞ − ∞, ∞·0) or an operation was undefined (0/0).
                    fail ("the kernel became non-finite: " + name + " has NaN " + where + "; either it overflowed (the inputs or W_std are too large for this depth: rescale " + inputs + ") or it underflowed to 0/0 (variances that shrink layer after layer, e.g. W_std below √2 before a Relu, reach 0 in a deep network), or an operation is undefined (0/0, e.g. a normalisation with eps 0 of a constant input)")
                else
                    fail ("the kernel overflowed to a non-finite value: " + name + " has " + shown + " " + where + "; the inputs or W_std are too large for this depth (rescale " + inputs + ")")
            | None -> k
        | Many ks -> fail $"the network ends in {string ks.Length} branches; end it with FanInSum, FanInProd or FanInConcat"

    /// <c>singleAt</c> for a whole batch; the second inputs are x1's own when the kernel has no x2 (no cov2).
    let private single (flow: KernelFlow) =
        let hasX2 = match flow with One k -> k.Cov2.IsSome | Many _ -> true
        singleAt ("x1", 0) ((if hasX2 then "x2" else "x1"), 0) flow

    /// <summary>Applies a network to a kernel (to chain kernel functions, as neural_tangents allows).
    /// The given kernel is not modified.</summary>
    [<CompiledName("ApplyKernel")>]
    let applyKernel (layer: Layer) (k: Kernel) : Kernel = applyFlow layer (One k) |> single

    /// Refuses an input with a NaN or infinite entry, naming the input and the entry's flat index.
    let internal checkFinite (name: string) (x: Tensor) =
        if not (Tensor.isFinite x) then
            let i = Array.findIndex (fun v -> not (System.Double.IsFinite v)) x.Data
            invalidArg name (name + " has a non-finite value (" + Show.g x.Data[i] + ") at flat index " + string i)

    /// The input kernel; <paramref name="ntkArray"/> false leaves its zero NTK out (<c>Input.kernelWith</c>).
    let private inputKernelFor (ntkArray: bool) (request: LayoutRequest) (layer: Layer) (x1: Tensor) (x2: Tensor option) (get: Get) : Kernel =
        checkFinite "x1" x1
        x2 |> Option.iter (checkFinite "x2")
        let req = Requirements.ofLayer layer
        let diagonalBatch, diagonalSpatial = Requirements.layout req request
        let batchAxis, channelAxis = Requirements.inputAxes x1.Rank req
        Input.kernelWith ntkArray get diagonalBatch diagonalSpatial batchAxis channelAxis x1 x2

    /// <summary>The input kernel of x1 (and x2) in the layout the network requires, or the one
    /// <paramref name="request"/> asks for (see <see cref="T:NeuralTangents.LayoutRequest"/>).</summary>
    /// <exception cref="T:NeuralTangents.NeuralTangentsException">the request asks for a diagonal layout a layer
    /// cannot take.</exception>
    [<CompiledName("InputKernelWithLayout")>]
    let inputKernelWithLayout (request: LayoutRequest) (layer: Layer) (x1: Tensor) (x2: Tensor option) (get: Get) : Kernel =
        inputKernelFor true request layer x1 x2 get

    /// The input kernel and the plan run on it: when the plan starts with the fused MLP executor, the input's NTK
    /// (+0.0 everywhere) is never allocated (<c>KernelPlan.runZeroNtk</c>; the same bits).
    /// When the plan starts with the fused Conv executor (diagonal batch), the input kernel is never stored: its rows
    /// are computed as the executor reads them (<c>KernelPlan.runOnRows</c>; S² or S entries per pair saved).
    let private runOnInput (exec: Execution) (plan: KernelPlan) (request: LayoutRequest) (layer: Layer) (x1: Tensor) (x2: Tensor option) (get: Get) =
        let zeroNtk = get.WantsNtk && KernelPlan.takesZeroNtk plan
        let rows =
            if not (KernelPlan.takesInputRows plan) then None
            else
                let req = Requirements.ofLayer layer
                match Requirements.layout req request with
                | true, diagonalSpatial ->
                    checkFinite "x1" x1
                    x2 |> Option.iter (checkFinite "x2")
                    let batchAxis, channelAxis = Requirements.inputAxes x1.Rank req
                    InputRows.ofInputs get diagonalSpatial batchAxis channelAxis x1 x2
                | _ -> None
        match rows with
        | Some(input, r) -> KernelPlan.runOnRows exec plan input r (fun () -> inputKernelFor true request layer x1 x2 get)
        | None ->
            let input = Timings.time "input kernel" (fun () -> inputKernelFor (not zeroNtk) request layer x1 x2 get)
            if zeroNtk then KernelPlan.runZeroNtk exec plan input else KernelPlan.run exec plan (One input) true

    /// <summary>The input kernel of x1 (and x2) in the layout the network requires.</summary>
    [<CompiledName("InputKernel")>]
    let inputKernel (layer: Layer) (x1: Tensor) (x2: Tensor option) (get: Get) : Kernel =
        inputKernelWithLayout LayoutRequest.Auto layer x1 x2 get

    let private run' (exec: Execution) (request: LayoutRequest) (layer: Layer) (x1: Tensor) (x2: Tensor option) (get: Get) =
        let p = KernelPlan.compile layer
        let p = if exec.Fuse then KernelPlan.fuse p else p
        // The input kernel is allocated here (a Gram matrix and variances, never x1/x2's buffers), so the plan owns it.
        let out = runOnInput exec p request layer x1 x2 get
        Timings.time "finiteness check" (fun () -> single out)

    /// <summary><c>compute</c> with an explicit <see cref="T:NeuralTangents.Execution"/> (the reference execution
    /// allocates every intermediate and fuses nothing; same numbers).</summary>
    [<CompiledName("ComputeWith")>]
    let computeWith (exec: Execution) (layer: Layer) (x1: Tensor) (x2: Tensor option) (get: Get) : Kernel =
        run' exec LayoutRequest.Auto layer x1 x2 get

    /// <summary><c>compute</c> in a requested covariance layout (neural_tangents' <c>kernel_fn(x1, x2, get,
    /// diagonal_batch=…, diagonal_spatial=…)</c>).</summary>
    /// <param name="request">The layout to compute in; <c>LayoutRequest.Auto</c> is <c>compute</c>. With
    /// <c>DiagonalSpatial = Some false</c> an output with spatial axes is (N1, N2, H, H', W, W', …) — neural_tangents'
    /// order, stored reversed — (N1, N2, …, W, W', H, H') — when the result's <c>IsReversed</c> is set, as neural_tangents
    /// leaves it after an odd number of shared convolutions with two or more spatial axes — and with
    /// <c>DiagonalBatch = Some false</c> Cov1/Cov2 are the full (N, N, …) covariances.</param>
    /// <param name="layer">The network.</param>
    /// <param name="x1">First inputs.</param>
    /// <param name="x2">Second inputs, or None for x2 = x1.</param>
    /// <param name="get">Nngp, Ntk or Both.</param>
    /// <returns>The output kernel, its <c>DiagonalBatch</c>/<c>DiagonalSpatial</c> naming the layout.</returns>
    /// <exception cref="T:NeuralTangents.NeuralTangentsException">when the network cannot take these inputs, or the
    /// request asks for a diagonal layout a layer cannot take; the message says why.</exception>
    [<CompiledName("ComputeWithLayout")>]
    let computeWithLayout (request: LayoutRequest) (layer: Layer) (x1: Tensor) (x2: Tensor option) (get: Get) : Kernel =
        run' Execution.Fast request layer x1 x2 get

    /// <summary>The exact infinite-width kernels of <paramref name="layer"/> between x1 and x2
    /// (x2 = None means x2 = x1; then <c>Cov2</c> is None, as in neural_tangents), in the layout neural_tangents'
    /// <c>kernel_fn(x1, x2)</c> picks: diagonal batch; diagonal spatial only when every layer allows it and the
    /// output does not need the pairs of positions (a Flatten on top), else full — so a network that keeps spatial
    /// axes returns (N1, N2, H, H', W, W', …), or those pairs in reverse order when <c>IsReversed</c> is set (see
    /// <c>computeWithLayout</c>).</summary>
    /// <param name="layer">The network.</param>
    /// <param name="x1">First inputs, batch axis and channel axis as the network's layers state (default: (N1, …, C)).</param>
    /// <param name="x2">Second inputs, or None.</param>
    /// <param name="get">Nngp, Ntk or Both; the NTK is skipped when only the NNGP is asked for.</param>
    /// <returns>The output kernel; <c>Nngp</c> and <c>Ntk</c> have shape (N1, N2) for a network with a flat output.</returns>
    /// <exception cref="T:NeuralTangents.NeuralTangentsException">when the network cannot take these inputs; the message says why.</exception>
    [<CompiledName("Compute")>]
    let compute (layer: Layer) (x1: Tensor) (x2: Tensor option) (get: Get) : Kernel =
        computeWith Execution.Fast layer x1 x2 get

    /// The network's plan, compiled (and fused, for the fast execution) once, to run on many inputs (tiles).
    let internal compilePlan (exec: Execution) (layer: Layer) =
        let p = KernelPlan.compile layer
        if exec.Fuse then KernelPlan.fuse p else p

    /// <c>computeWithLayout</c> with a plan compiled by <c>compilePlan</c> for the same execution and layer.
    let internal runPlan (exec: Execution) (plan: KernelPlan) (request: LayoutRequest) (layer: Layer) (x1: Tensor) (x2: Tensor option) (get: Get) : Kernel =
        let out = runOnInput exec plan request layer x1 x2 get
        Timings.time "finiteness check" (fun () -> single out)

    /// <c>runPlan</c> on a tile whose inputs start at row <paramref name="row"/> of x1 and <paramref name="col"/> of
    /// x2 (of x1 when <paramref name="hasX2"/> is false): an overflow is reported at the whole batch's indices.
    let internal runPlanAt (exec: Execution) (plan: KernelPlan) (request: LayoutRequest) (layer: Layer) (row: int) (col: int) (hasX2: bool)
                           (x1: Tensor) (x2: Tensor option) (get: Get) : Kernel =
        let out = runOnInput exec plan request layer x1 x2 get
        Timings.time "finiteness check" (fun () -> singleAt ("x1", row) ((if hasX2 then "x2" else "x1"), (if x2.IsSome then col else row)) out)

    /// <c>runPlan</c> on inputs masked by <c>mask_constant</c> (the input kernel of <c>computeWithMask</c>).
    let internal runPlanMasked (exec: Execution) (plan: KernelPlan) (maskConstant: float) (request: LayoutRequest) (layer: Layer) (x1: Tensor) (x2: Tensor option) (get: Get) : Kernel =
        let visible (x: Tensor) = Masking.zero (Masking.ofInputs maskConstant x) x
        checkFinite "x1" (visible x1)
        x2 |> Option.iter (visible >> checkFinite "x2")
        let req = Requirements.ofLayer layer
        let diagonalBatch, diagonalSpatial = Requirements.layout req request
        let batchAxis, channelAxis = Requirements.inputAxes x1.Rank req
        let k0 = Input.kernelMasked (Some maskConstant) get diagonalBatch diagonalSpatial batchAxis channelAxis x1 x2
        KernelPlan.run exec plan (One k0) true |> single

    /// <summary><c>compute</c> with the <c>pattern</c> side input of graph networks (neural_tangents'
    /// <c>kernel_fn(x1, x2, get, pattern=(pattern1, pattern2))</c>): every <c>Aggregate</c> layer aggregates x1's
    /// samples with pattern1 and x2's with pattern2 (with x2 = None pass pattern1 twice).</summary>
    /// <param name="pattern">(pattern1, pattern2): the adjacencies of x1's and x2's samples, in the format of each
    /// Aggregate's implementation.</param>
    /// <param name="request">The layout to compute in (<c>LayoutRequest.Auto</c>: the network's).</param>
    /// <param name="layer">The network.</param>
    /// <param name="x1">First inputs.</param>
    /// <param name="x2">Second inputs, or None.</param>
    /// <param name="get">Nngp, Ntk or Both.</param>
    /// <returns>The output kernel.</returns>
    /// <exception cref="T:NeuralTangents.NeuralTangentsException">a pattern of the wrong shape, or as <c>compute</c>.</exception>
    [<CompiledName("ComputeWithPattern")>]
    let computeWithPattern (pattern: Tensor * Tensor) (request: LayoutRequest) (layer: Layer) (x1: Tensor) (x2: Tensor option) (get: Get) : Kernel =
        computeWithLayout request (NeuralTangents.Layers.Aggregation.bindPattern pattern layer) x1 x2 get

    /// <summary><c>computeWithLayout</c> on inputs with masked entries (neural_tangents' <c>kernel_fn(x1, x2, get,
    /// mask_constant=c)</c>): entries equal to <paramref name="maskConstant"/> (NaN: NaN entries) are zeroed and masked;
    /// every layer propagates the masks (its <c>mask_fn</c>), pooling and normalising layers exclude masked positions,
    /// and covariances of masked entries are zero after the layers neural_tangents remasks. A layer that cannot take
    /// masks raises an error naming it. The result carries the output masks (<c>Mask1</c>, <c>Mask2</c>).</summary>
    /// <param name="maskConstant">The value that marks masked entries (e.g. padding of variable-length inputs).</param>
    /// <param name="request">The layout to compute in (<c>LayoutRequest.Auto</c>: the network's).</param>
    /// <param name="layer">The network.</param>
    /// <param name="x1">First inputs.</param>
    /// <param name="x2">Second inputs, or None for x2 = x1.</param>
    /// <param name="get">Nngp, Ntk or Both.</param>
    /// <returns>The output kernel.</returns>
    /// <exception cref="T:NeuralTangents.NeuralTangentsException">a layer cannot take masked inputs, or as <c>compute</c>.</exception>
    [<CompiledName("ComputeWithMask")>]
    let computeWithMask (maskConstant: float) (request: LayoutRequest) (layer: Layer) (x1: Tensor) (x2: Tensor option) (get: Get) : Kernel =
        runPlanMasked Execution.Fast (compilePlan Execution.Fast layer) maskConstant request layer x1 x2 get
