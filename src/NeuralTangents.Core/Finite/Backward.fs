namespace NeuralTangents


/// <summary>A recorded forward pass: each layer with its parameters, the side inputs of its call (its own random
/// key), input and output, and the tapes of its children (for serial and parallel). Recorded once, it serves any
/// number of backward passes, each replaying the forward's randomness and patterns.</summary>
type Tape =
    { Layer: Layer
      Params: Params
      /// The side inputs this layer's call received (the key already split along its tree path).
      Context: ApplyContext
      Input: Flow
      Output: Flow
      Children: Tape list }

/// <summary>Reverse-mode differentiation of finite networks (the vector–Jacobian product JAX's <c>vjp</c> gives
/// neural_tangents' <c>apply_fn</c>): one recursive match over the layer union.</summary>
[<RequireQualifiedAccess>]
module Backward =

    let private fail (msg: string) = raise (NeuralTangentsException msg)

    /// <summary>Runs the forward pass with the side inputs of the call and records what the backward pass needs.
    /// Child i of a serial or parallel gets the key split at i, as in <c>ApplyFn.applyFlowWith</c>, so the tape's
    /// output is the forward call's.</summary>
    /// <param name="ctx">The call's random key and named side inputs.</param>
    /// <param name="layer">The network.</param>
    /// <param name="params">Its parameters.</param>
    /// <param name="input">Its input(s).</param>
    /// <returns>The tape; its <c>Output</c> is the network's output.</returns>
    [<CompiledName("RecordWith")>]
    let rec recordWith (ctx: ApplyContext) (layer: Layer) (``params``: Params) (input: Flow) : Tape =
        let p = ``params``
        let child (i: int) = { ctx with Rng = ctx.Rng |> Option.map (Rng.split i) }
        match Definitions.node layer with
        | SerialNode layers ->
            let tapes =
                List.zip layers (ApplyFn.children layer layers p)
                |> List.indexed
                |> List.fold (fun (f, acc) (i, (l, q)) ->
                    let t = recordWith (child i) l q f
                    t.Output, t :: acc) (input, [])
                |> snd
                |> List.rev
            let output = match List.tryLast tapes with Some t -> t.Output | None -> input
            { Layer = layer; Params = p; Context = ctx; Input = input; Output = output; Children = tapes }
        | ParallelNode layers ->
            let xs = ApplyFn.parallelInputs layers input
            let tapes =
                List.zip3 layers (ApplyFn.children layer layers p) xs
                |> List.mapi (fun i (l, q, x) -> recordWith (child i) l q (Single x))
            let output = Fanned(tapes |> List.map (fun t -> ApplyFn.one t.Layer t.Output))
            { Layer = layer; Params = p; Context = ctx; Input = input; Output = output; Children = tapes }
        | FanOutNode _ | MergeNode _ | LeafNode _ ->
            { Layer = layer; Params = p; Context = ctx; Input = input; Output = ApplyFn.applyFlowWith ctx layer p input; Children = [] }

    /// <summary>Runs the forward pass (no random key, no side inputs) and records what the backward pass needs.</summary>
    /// <param name="layer">The network.</param>
    /// <param name="params">Its parameters.</param>
    /// <param name="input">Its input(s).</param>
    /// <returns>The tape; its <c>Output</c> is the network's output.</returns>
    [<CompiledName("Record")>]
    let record (layer: Layer) (``params``: Params) (input: Flow) : Tape = recordWith ApplyContext.Empty layer ``params`` input

    /// Pulls a cotangent back through a recorded pass. What a leaf contributes to the gradient tree is left to
    /// <c>leaf</c> (its definition, the side inputs of its call, parameters, input and output cotangent);
    /// <c>none</c> is the contribution of a layer without parameters and <c>branches</c> builds the tree of a serial
    /// or parallel.
    let rec internal pullback
            (leaf: LayerDef -> ApplyContext -> Params -> Tensor -> Tensor -> 'g)
            (none: 'g) (branches: 'g list -> 'g) (tape: Tape) (ct: Flow) : 'g * Flow =
        let layer = tape.Layer
        let c () = ApplyFn.one layer ct
        match Definitions.node layer with
        | SerialNode _ ->
            let grads, ctIn =
                List.foldBack (fun t (gs, g) ->
                    let gp, g' = pullback leaf none branches t g
                    gp :: gs, g') tape.Children ([], ct)
            branches grads, ctIn
        | ParallelNode _ ->
            let cts = ApplyFn.many ct
            let outs = List.map2 (fun t g -> pullback leaf none branches t (Single g)) tape.Children cts
            branches (List.map fst outs), Fanned(outs |> List.map (fun (_, g) -> ApplyFn.one layer g))
        | FanOutNode _ -> none, Single(List.reduce Tensor.add (ApplyFn.many ct))
        | MergeNode m -> none, Fanned(m.Vjp (ApplyFn.many tape.Input) (c ()))
        | LeafNode d ->
            let x = ApplyFn.one layer tape.Input
            leaf d tape.Context tape.Params x (c ()), Single(d.Vjp tape.Context tape.Params x (c ()))

    /// <summary>Pulls a cotangent of the output back through a recorded pass.</summary>
    /// <param name="tape">A recorded forward pass.</param>
    /// <param name="ct">The cotangent of its output.</param>
    /// <returns>The gradient of ⟨ct, f⟩ with respect to every parameter (a tree shaped like the parameters) and
    /// the cotangent of the input.</returns>
    [<CompiledName("BackwardFlow")>]
    let backwardFlow (tape: Tape) (ct: Flow) : Params * Flow =
        pullback (fun d ctx p x c -> d.ParamVjp ctx p x c) Params.none Branches tape ct

    /// <summary>The vector–Jacobian product of a network at <paramref name="x"/> for a call with side inputs
    /// (neural_tangents' <c>vjp(lambda p, x: apply_fn(p, x, rng=…, **kwargs), …)</c>): the backward pass replays the
    /// forward's dropout masks and patterns.</summary>
    /// <param name="ctx">The call's random key and named side inputs.</param>
    /// <param name="layer">The network.</param>
    /// <param name="params">Its parameters.</param>
    /// <param name="x">The inputs.</param>
    /// <param name="ct">The cotangent of the output (same shape as the output).</param>
    /// <returns>∂⟨ct, f(x)⟩/∂θ for every parameter θ (shaped like <paramref name="params"/>) and ∂⟨ct, f(x)⟩/∂x.</returns>
    /// <exception cref="T:NeuralTangents.NeuralTangentsException">when the network cannot take these inputs.</exception>
    [<CompiledName("VjpWith")>]
    let vjpWith (ctx: ApplyContext) (layer: Layer) (``params``: Params) (x: Tensor) (ct: Tensor) : Params * Tensor =
        let tape = recordWith ctx layer ``params`` (Single x)
        let y = ApplyFn.one layer tape.Output
        if y.Shape <> ct.Shape then
            invalidArg "ct" $"the cotangent must have the output's shape {Show.ints y.Shape}, got {Show.ints ct.Shape}"
        let g, gx = backwardFlow tape (Single ct)
        g, ApplyFn.one layer gx

    /// <summary>The vector–Jacobian product of a network at <paramref name="x"/> (no random key, no side inputs).</summary>
    /// <param name="layer">The network.</param>
    /// <param name="params">Its parameters.</param>
    /// <param name="x">The inputs.</param>
    /// <param name="ct">The cotangent of the output (same shape as the output).</param>
    /// <returns>∂⟨ct, f(x)⟩/∂θ for every parameter θ (shaped like <paramref name="params"/>) and ∂⟨ct, f(x)⟩/∂x.</returns>
    /// <exception cref="T:NeuralTangents.NeuralTangentsException">when the network cannot take these inputs.</exception>
    [<CompiledName("Vjp")>]
    let vjp (layer: Layer) (``params``: Params) (x: Tensor) (ct: Tensor) : Params * Tensor =
        vjpWith ApplyContext.Empty layer ``params`` x ct
