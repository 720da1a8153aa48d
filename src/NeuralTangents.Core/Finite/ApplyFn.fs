namespace NeuralTangents


/// <summary>Activations flowing through a finite network: one tensor, or one per branch after <c>FanOut</c>.</summary>
type Flow =
    | Single of Tensor
    | Fanned of Tensor list

/// <summary>The <c>apply_fn</c> interpreter: the forward pass of a finite network (neural_tangents'
/// <c>apply_fn(params, inputs)</c>). It runs the combinators and hands every other layer to its definition (<c>Definitions</c>).</summary>
[<RequireQualifiedAccess>]
module ApplyFn =

    let private fail (msg: string) = raise (NeuralTangentsException msg)

    let internal one (layer: Layer) (flow: Flow) =
        match flow with
        | Single x -> x
        | Fanned xs ->
            fail (sprintf "%s: takes one input but receives %d branches; merge them first with FanInSum, FanInProd or FanInConcat"
                    (Definitions.name layer) xs.Length)

    let internal many (flow: Flow) =
        match flow with
        | Fanned xs -> xs
        | Single x -> [ x ]

    let internal wrongParams (layer: Layer) =
        invalidArg "params" (sprintf "%s: the parameters do not match the layer tree (use the tree InitFn.init returns)"
                                (Definitions.name layer))

    /// The children's parameters of a combinator, checked against the number of children.
    let internal children (layer: Layer) (layers: Layer list) (p: Params) =
        match p with
        | Branches ps when ps.Length = layers.Length -> ps
        | _ -> wrongParams layer

    let internal parallelInputs (layers: Layer list) (flow: Flow) =
        let xs = many flow
        if xs.Length <> layers.Length then
            fail (sprintf "parallel: has %d branches but receives %d inputs; use FanOut(%d) before it"
                    layers.Length xs.Length layers.Length)
        xs

    /// The context of child <c>i</c>: its random key is split off along the tree path, as init_fn's keys are.
    let private child (i: int) (ctx: ApplyContext) = { ctx with Rng = ctx.Rng |> Option.map (Rng.split i) }

    /// <summary>Applies a layer to the activation(s) flowing into it (one tensor, or one per branch), with the
    /// side inputs of the call (random key, named side inputs).</summary>
    /// <param name="ctx">The call's side inputs; the layer at tree path p gets the key split along p.</param>
    /// <param name="layer">The layer or network.</param>
    /// <param name="p">Its parameters.</param>
    /// <param name="flow">Its input(s).</param>
    /// <returns>Its output(s).</returns>
    [<CompiledName("ApplyFlowWith")>]
    let rec applyFlowWith (ctx: ApplyContext) (layer: Layer) (p: Params) (flow: Flow) : Flow =
        match Definitions.node layer with
        | SerialNode layers ->
            List.zip layers (children layer layers p)
            |> List.indexed
            |> List.fold (fun f (i, (l, q)) -> applyFlowWith (child i ctx) l q f) flow
        | ParallelNode layers ->
            let xs = parallelInputs layers flow
            Fanned(List.mapi2 (fun i (l, q) x -> applyFlowWith (child i ctx) l q (Single x) |> one l)
                       (List.zip layers (children layer layers p)) xs)
        | FanOutNode num -> Fanned(List.replicate num (one layer flow))
        | MergeNode m ->
            match flow with
            | Fanned xs -> Single(m.Apply xs)
            | Single _ -> KernelFn.fanInOfOne layer
        | LeafNode d -> Single(d.Apply ctx p (one layer flow))

    /// <summary>Applies a layer to the activation(s) flowing into it, without a random key or side inputs.</summary>
    [<CompiledName("ApplyFlow")>]
    let applyFlow (layer: Layer) (p: Params) (flow: Flow) : Flow = applyFlowWith ApplyContext.Empty layer p flow

    /// <summary>The forward pass of a finite network with the side inputs of the call (neural_tangents'
    /// <c>apply_fn(params, inputs, rng=…, **kwargs)</c>).</summary>
    /// <param name="ctx">Random key and named side inputs.</param>
    /// <param name="layer">The network.</param>
    /// <param name="params">Its parameters, as <c>InitFn.init</c> returns them.</param>
    /// <param name="x">A batch of inputs in the network's layout (default (N, …, C)).</param>
    /// <returns>The network's outputs.</returns>
    /// <exception cref="T:NeuralTangents.NeuralTangentsException">when the network cannot take these inputs.</exception>
    [<CompiledName("ApplyWith")>]
    let applyWith (ctx: ApplyContext) (layer: Layer) (``params``: Params) (x: Tensor) : Tensor =
        match applyFlowWith ctx layer ``params`` (Single x) with
        | Single y -> y
        | Fanned ys -> fail (sprintf "the network ends in %d branches; end it with FanInSum, FanInProd or FanInConcat" ys.Length)

    /// <summary>The forward pass of a finite network.</summary>
    /// <param name="layer">The network.</param>
    /// <param name="params">Its parameters, as <c>InitFn.init</c> returns them.</param>
    /// <param name="x">A batch of inputs in the network's layout (default (N, …, C)).</param>
    /// <returns>The network's outputs.</returns>
    /// <exception cref="T:NeuralTangents.NeuralTangentsException">when the network cannot take these inputs.</exception>
    [<CompiledName("Apply")>]
    let apply (layer: Layer) (``params``: Params) (x: Tensor) : Tensor = applyWith ApplyContext.Empty layer ``params`` x
