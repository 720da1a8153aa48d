namespace NeuralTangents

open NeuralTangents.Rules

/// <summary>What flows between layers: one kernel, or one per branch after <c>FanOut</c>.</summary>
type KernelFlow =
    | One of Kernel
    | Many of Kernel list

/// <summary>The <c>kernel_fn</c> interpreter: the exact infinite-width NNGP and NTK of a network
/// (neural_tangents' <c>kernel_fn(x1, x2, get)</c>). It only dispatches; the maths lives in <c>Rules</c>.</summary>
[<RequireQualifiedAccess>]
module KernelFn =

    let private fail (msg: string) = raise (NeuralTangentsException msg)

    /// Name of a layer as neural_tangents spells it, for error messages.
    let layerName (layer: Layer) =
        match layer with
        | Serial _ -> "serial"
        | Parallel _ -> "parallel"
        | FanOut _ -> "FanOut"
        | FanInSum -> "FanInSum"
        | FanInProd -> "FanInProd"
        | FanInConcat _ -> "FanInConcat"
        | Identity -> "Identity"
        | Dense _ -> "Dense"
        | ABRelu { A = 0.0; B = 1.0 } -> "Relu"
        | ABRelu { A = -1.0; B = 1.0 } -> "Abs"
        | ABRelu { B = 1.0 } -> "LeakyRelu"
        | ABRelu _ -> "ABRelu"
        | Erf _ -> "Erf"
        | Sin _ -> "Sin"
        | Gelu _ -> "Gelu"
        | Monomial _ -> "Monomial"
        | Flatten _ -> "Flatten"

    let private one (layer: Layer) (flow: KernelFlow) =
        match flow with
        | One k -> k
        | Many ks ->
            fail (sprintf "%s: takes one input but receives %d branches; merge them first with FanInSum, FanInProd or FanInConcat"
                    (layerName layer) ks.Length)

    let private many (layer: Layer) (flow: KernelFlow) =
        match flow with
        | Many ks -> ks
        | One k -> [ k ]

    let private gaussian (layer: Layer) (k: Kernel) =
        if not k.IsGaussian then
            fail (sprintf "%s: the input to an activation must be Gaussian, i.e. a Dense (affine) layer is required before it"
                    (layerName layer))
        k

    let private activation (layer: Layer) (rule: Kernel -> Kernel) (flow: KernelFlow) =
        let k = one layer flow |> gaussian layer |> rule
        One { k with IsGaussian = false }

    /// Applies a layer to the kernel(s) flowing into it. <c>owned</c> says whether the flowing arrays belong to the
    /// interpreter alone (fresh from a rule: not the caller's, not shared between FanOut branches); then Dense and
    /// ABRelu overwrite them instead of allocating, which keeps a deep MLP at two big buffers. Returns the new flow
    /// and whether it is owned.
    let rec private run (layer: Layer) (flow: KernelFlow) (owned: bool) : KernelFlow * bool =
        match layer with
        | Serial layers ->
            // Dense → ABRelu pairs (every layer of a ReLU MLP) run as one fused pass over memory.
            let rec go (ls: Layer list) (f: KernelFlow, o: bool) =
                match ls, f with
                | Dense d :: ABRelu spec :: rest, One k ->
                    let k' = Elementwise.denseAbRelu o d spec k
                    go rest (One { k' with IsGaussian = false }, true)
                | l :: rest, _ -> go rest (run l f o)
                | [], _ -> f, o
            go layers (flow, owned)
        | Parallel layers ->
            let ks = many layer flow
            if ks.Length <> layers.Length then
                fail (sprintf "parallel: has %d branches but receives %d inputs; use FanOut(%d) before it"
                        layers.Length ks.Length layers.Length)
            // Branch inputs may share arrays (FanOut), and an Identity branch passes them on: not owned.
            Many(List.map2 (fun l k -> run l (One k) false |> fst |> one l) layers ks), false
        | FanOut num -> Many(List.replicate num (one layer flow)), false
        | FanInSum -> One(Branching.fanInSum (many layer flow)), true
        | FanInProd -> One(Branching.fanInProd (many layer flow)), true
        | FanInConcat axis -> One(Branching.fanInConcat axis (many layer flow)), true
        | Identity -> flow, owned
        | Dense d -> One(Linear.dense owned d (one layer flow)), true
        | Flatten f -> One(Linear.flatten f (one layer flow)), true
        | ABRelu spec -> activation layer (Elementwise.abRelu owned spec) flow, true
        | Erf spec -> activation layer (Elementwise.erf spec) flow, true
        | Sin spec -> activation layer (Elementwise.sin spec) flow, true
        | Gelu _ -> activation layer Elementwise.gelu flow, true
        | Monomial d -> activation layer (Elementwise.monomial d) flow, true

    /// Applies a layer to the kernel(s) flowing into it; the caller's arrays are never modified.
    let applyFlow (layer: Layer) (flow: KernelFlow) : KernelFlow = run layer flow false |> fst

    let private single (flow: KernelFlow) =
        match flow with
        | One k -> k
        | Many ks -> fail (sprintf "the network ends in %d branches; end it with FanInSum, FanInProd or FanInConcat" ks.Length)

    /// <summary>Applies a network to a kernel (to chain kernel functions, as neural_tangents allows).
    /// The given kernel is not modified.</summary>
    [<CompiledName("ApplyKernel")>]
    let applyKernel (layer: Layer) (k: Kernel) : Kernel = applyFlow layer (One k) |> single

    let private checkFinite (name: string) (x: Tensor) =
        if not (Tensor.isFinite x) then
            let i = Array.findIndex (fun v -> not (System.Double.IsFinite v)) x.Data
            invalidArg name (sprintf "%s has a non-finite value (%g) at flat index %d" name x.Data[i] i)

    /// <summary>The input kernel of x1 (and x2) in the layout the network requires.</summary>
    [<CompiledName("InputKernel")>]
    let inputKernel (layer: Layer) (x1: Tensor) (x2: Tensor option) (get: Get) : Kernel =
        checkFinite "x1" x1
        x2 |> Option.iter (checkFinite "x2")
        let req = Requirements.ofLayer layer
        Input.kernel get (defaultArg req.BatchAxis 0) (defaultArg req.ChannelAxis -1) x1 x2

    /// <summary>The exact infinite-width kernels of <paramref name="layer"/> between x1 and x2
    /// (x2 = None means x2 = x1; then <c>Cov2</c> is None, as in neural_tangents).</summary>
    /// <param name="layer">The network.</param>
    /// <param name="x1">First inputs, batch axis and channel axis as the network's layers state (default: (N1, …, C)).</param>
    /// <param name="x2">Second inputs, or None.</param>
    /// <param name="get">Nngp, Ntk or Both; the NTK is skipped when only the NNGP is asked for.</param>
    /// <returns>The output kernel; <c>Nngp</c> and <c>Ntk</c> have shape (N1, N2) for a network with a flat output.</returns>
    /// <exception cref="T:NeuralTangents.NeuralTangentsException">when the network cannot take these inputs; the message says why.</exception>
    [<CompiledName("Compute")>]
    let compute (layer: Layer) (x1: Tensor) (x2: Tensor option) (get: Get) : Kernel =
        // The input kernel is fresh, so the interpreter owns its arrays from the start.
        let k = run layer (One(inputKernel layer x1 x2 get)) true |> fst |> single
        if not (Tensor.isFinite k.Nngp) || (k.Ntk |> Option.exists (Tensor.isFinite >> not)) then
            fail "the kernel overflowed to a non-finite value; the inputs or W_std are too large for this depth (rescale the inputs)"
        k
