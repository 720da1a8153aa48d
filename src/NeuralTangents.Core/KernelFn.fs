namespace NeuralTangents

open System.Collections.Generic
open NeuralTangents.Rules
open NeuralTangents.Layers

/// <summary>What flows between layers: one kernel, or one per branch after <c>FanOut</c>.</summary>
type KernelFlow =
    | One of Kernel
    | Many of Kernel list

/// <summary>How <c>kernel_fn</c> executes a network. Both give the same numbers bit for bit; the reference
/// execution exists to check the fast one.</summary>
type Execution =
    { /// Rules overwrite arrays that the interpreter itself allocated during this call instead of allocating.
      InPlace: bool
      /// Dense → ABRelu pairs run as one fused pass over memory.
      Fuse: bool }

    /// In-place passes and fusion on (the default).
    static member Fast = { InPlace = true; Fuse = true }
    /// Every rule allocates its output; no fusion.
    static member Reference = { InPlace = false; Fuse = false }

/// <summary>The <c>kernel_fn</c> interpreter: the exact infinite-width NNGP and NTK of a network
/// (neural_tangents' <c>kernel_fn(x1, x2, get)</c>). It runs the combinators and hands every other layer to its definition (<c>Definitions</c>).</summary>
[<RequireQualifiedAccess>]
module KernelFn =

    let private fail (msg: string) = raise (NeuralTangentsException msg)

    /// Name of a layer as neural_tangents spells it, for error messages.
    let layerName (layer: Layer) = Definitions.name layer

    let private one (layer: Layer) (flow: KernelFlow) =
        match flow with
        | One k -> k
        | Many ks ->
            fail (sprintf "%s: takes one input but receives %d branches; merge them first with FanInSum, FanInProd or FanInConcat"
                    (layerName layer) ks.Length)

    let private many (flow: KernelFlow) =
        match flow with
        | Many ks -> ks
        | One k -> [ k ]

    /// The arrays a flow holds (nngp, ntk, cov1, cov2 of every kernel).
    let private arraysOf (flow: KernelFlow) : float[] seq =
        let ofKernel (k: Kernel) =
            seq {
                yield k.Nngp.Data
                match k.Ntk with Some t -> yield t.Data | None -> ()
                yield k.Cov1.Data
                match k.Cov2 with Some t -> yield t.Data | None -> () }
        match flow with
        | One k -> ofKernel k
        | Many ks -> Seq.collect ofKernel ks

    /// One kernel_fn call's execution: which arrays the interpreter itself allocated (and so may overwrite), by
    /// reference identity. An array enters when a rule returns it and it was not among the rule's inputs (a rule
    /// sees nothing but its input kernel, so such an array is fresh); it leaves when FanOut hands it to several
    /// branches. The caller's kernel is never in the set, so its arrays are never written.
    type private Run(exec: Execution) =
        let owned = HashSet<obj>(ReferenceEqualityComparer.Instance)

        member _.Exec = exec

        member _.Own(arrays: float[] seq) = for a in arrays do owned.Add(box a) |> ignore

        member _.Disown(arrays: float[] seq) = for a in arrays do owned.Remove(box a) |> ignore

        /// True when the rule may overwrite k's nngp/ntk: in-place execution is on, both arrays were allocated by
        /// this run, and no other field of k is the same array.
        member _.Writable(k: Kernel) =
            let arrays = arraysOf (One k) |> Seq.toArray
            exec.InPlace
            && arrays |> Array.forall (fun a -> owned.Contains(box a))
            && arrays |> Array.mapi (fun i a -> arrays[i + 1 ..] |> Array.forall (fun b -> not (obj.ReferenceEquals(a, b))))
                      |> Array.forall id

        /// Records the arrays of a rule's output that were not among its inputs as owned.
        member r.Adopt (input: KernelFlow) (output: KernelFlow) =
            let seen = HashSet<obj>(ReferenceEqualityComparer.Instance)
            for a in arraysOf input do seen.Add(box a) |> ignore
            r.Own(arraysOf output |> Seq.filter (fun a -> not (seen.Contains(box a))))
            output

    /// A fan-in (FanInSum/Prod/Concat) given one input instead of a list of branches: neural_tangents takes a
    /// list there, so this is an error, not the identity.
    let internal fanInOfOne (layer: Layer) : 'a =
        fail (sprintf "%s: merges a list of branches but receives a single input; split it first, e.g. serial [FanOut(2), parallel [...]], then %s"
                (layerName layer) (layerName layer))

    let private fanIn (layer: Layer) (flow: KernelFlow) =
        match flow with
        | Many ks -> ks
        | One _ -> fanInOfOne layer

    /// A layer that needs the off-diagonal entries (its allowance's Input is No) cannot take a kernel that dropped
    /// them (neural_tangents' `requires` check).
    let private checkLayout (d: LayerDef) (k: Kernel) =
        let refuses (flag: bool) (allowance: Diagonal option) =
            flag && (allowance |> Option.exists (fun a -> a.Input = Tri.No))
        for name, flag, allowance in
            [ "diagonal_batch", k.DiagonalBatch, d.Requires.DiagonalBatch
              "diagonal_spatial", k.DiagonalSpatial, d.Requires.DiagonalSpatial ] do
            if refuses flag allowance then
                fail (sprintf "%s: requires %s=False, but the input kernel has %s=True and so lacks the off-diagonal entries; recompute the input kernel with %s=False"
                        d.Name name name name)

    /// Applies a layer to the kernel(s) flowing into it: the combinators here, every other layer by its definition.
    let rec private run (r: Run) (layer: Layer) (flow: KernelFlow) : KernelFlow =
        match Definitions.node layer with
        | SerialNode layers ->
            // Dense → ABRelu pairs (every layer of a ReLU MLP) run as one fused pass over memory.
            let rec go (ls: Layer list) (f: KernelFlow) =
                match ls, f with
                | Dense d :: Activation(ABRelu spec) :: rest, One k when r.Exec.Fuse ->
                    let k' = Elementwise.denseAbRelu (r.Writable k) d spec k
                    go rest (r.Adopt f (One { k' with IsGaussian = false }))
                | l :: rest, _ -> go rest (run r l f)
                | [], _ -> f
            go layers flow
        | ParallelNode layers ->
            let ks = many flow
            if layers.IsEmpty then fail "parallel: needs at least one branch, got parallel []"
            if ks.Length <> layers.Length then
                fail (sprintf "parallel: has %d branches but receives %d inputs; use FanOut(%d) before it"
                        layers.Length ks.Length layers.Length)
            Many(List.map2 (fun l k -> run r l (One k) |> one l) layers ks)
        | FanOutNode num ->
            // The branches share the input's arrays, so none of them may overwrite them.
            r.Disown(arraysOf flow)
            Many(List.replicate num (one layer flow))
        | MergeNode m -> r.Adopt flow (One(m.Kernel (fanIn layer flow)))
        | LeafNode d ->
            let k = one layer flow
            checkLayout d k
            r.Adopt flow (One(d.Kernel (r.Writable k) k))

    /// <summary>Applies a layer to the kernel(s) flowing into it with the given execution; the caller's arrays are
    /// never modified.</summary>
    [<CompiledName("ApplyFlowWith")>]
    let applyFlowWith (exec: Execution) (layer: Layer) (flow: KernelFlow) : KernelFlow = run (Run exec) layer flow

    /// <summary>Applies a layer to the kernel(s) flowing into it; the caller's arrays are never modified.</summary>
    [<CompiledName("ApplyFlow")>]
    let applyFlow (layer: Layer) (flow: KernelFlow) : KernelFlow = applyFlowWith Execution.Fast layer flow

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

    /// <summary>The input kernel of x1 (and x2) in the layout the network requires, or the one
    /// <paramref name="request"/> asks for (see <see cref="T:NeuralTangents.LayoutRequest"/>).</summary>
    /// <exception cref="T:NeuralTangents.NeuralTangentsException">the request asks for a diagonal layout a layer
    /// cannot take.</exception>
    [<CompiledName("InputKernelWithLayout")>]
    let inputKernelWithLayout (request: LayoutRequest) (layer: Layer) (x1: Tensor) (x2: Tensor option) (get: Get) : Kernel =
        checkFinite "x1" x1
        x2 |> Option.iter (checkFinite "x2")
        let req = Requirements.ofLayer layer
        let diagonalBatch, diagonalSpatial = Requirements.layout req request
        Input.kernel get diagonalBatch diagonalSpatial (defaultArg req.BatchAxis 0) (defaultArg req.ChannelAxis -1) x1 x2

    /// <summary>The input kernel of x1 (and x2) in the layout the network requires.</summary>
    [<CompiledName("InputKernel")>]
    let inputKernel (layer: Layer) (x1: Tensor) (x2: Tensor option) (get: Get) : Kernel =
        inputKernelWithLayout LayoutRequest.Auto layer x1 x2 get

    let private run' (exec: Execution) (request: LayoutRequest) (layer: Layer) (x1: Tensor) (x2: Tensor option) (get: Get) =
        let input = inputKernelWithLayout request layer x1 x2 get
        let r = Run exec
        // The input kernel was allocated here (never the caller's x1/x2 buffers), so this run owns its arrays.
        r.Own(arraysOf (One input) |> Seq.filter (fun a -> not (obj.ReferenceEquals(a, x1.Data)) && not (x2 |> Option.exists (fun x -> obj.ReferenceEquals(a, x.Data)))))
        let k = run r layer (One input) |> single
        if not (Tensor.isFinite k.Nngp) || (k.Ntk |> Option.exists (Tensor.isFinite >> not)) then
            fail "the kernel overflowed to a non-finite value; the inputs or W_std are too large for this depth (rescale the inputs)"
        k

    /// <summary><c>compute</c> with an explicit <see cref="T:NeuralTangents.Execution"/> (the reference execution
    /// allocates every intermediate and fuses nothing; same numbers).</summary>
    [<CompiledName("ComputeWith")>]
    let computeWith (exec: Execution) (layer: Layer) (x1: Tensor) (x2: Tensor option) (get: Get) : Kernel =
        run' exec LayoutRequest.Auto layer x1 x2 get

    /// <summary><c>compute</c> in a requested covariance layout (neural_tangents' <c>kernel_fn(x1, x2, get,
    /// diagonal_batch=…, diagonal_spatial=…)</c>).</summary>
    /// <param name="request">The layout to compute in; <c>LayoutRequest.Auto</c> is <c>compute</c>. With
    /// <c>DiagonalSpatial = Some false</c> an output with spatial axes is (N1, N2, H, H', W, W', …) — neural_tangents'
    /// order, reversed when the result's <c>IsReversed</c> is set (no layer here sets it) — and with
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
    /// axes returns (N1, N2, H, H', W, W', …).</summary>
    /// <param name="layer">The network.</param>
    /// <param name="x1">First inputs, batch axis and channel axis as the network's layers state (default: (N1, …, C)).</param>
    /// <param name="x2">Second inputs, or None.</param>
    /// <param name="get">Nngp, Ntk or Both; the NTK is skipped when only the NNGP is asked for.</param>
    /// <returns>The output kernel; <c>Nngp</c> and <c>Ntk</c> have shape (N1, N2) for a network with a flat output.</returns>
    /// <exception cref="T:NeuralTangents.NeuralTangentsException">when the network cannot take these inputs; the message says why.</exception>
    [<CompiledName("Compute")>]
    let compute (layer: Layer) (x1: Tensor) (x2: Tensor option) (get: Get) : Kernel =
        computeWith Execution.Fast layer x1 x2 get
