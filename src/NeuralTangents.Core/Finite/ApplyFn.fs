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

    /// <summary>Applies a layer to the activation(s) flowing into it (one tensor, or one per branch).</summary>
    /// <param name="layer">The layer or network.</param>
    /// <param name="p">Its parameters.</param>
    /// <param name="flow">Its input(s).</param>
    /// <returns>Its output(s).</returns>
    [<CompiledName("ApplyFlow")>]
    let rec applyFlow (layer: Layer) (p: Params) (flow: Flow) : Flow =
        match Definitions.node layer with
        | SerialNode layers -> List.fold2 (fun f l q -> applyFlow l q f) flow layers (children layer layers p)
        | ParallelNode layers ->
            let xs = parallelInputs layers flow
            Fanned(List.map3 (fun l q x -> applyFlow l q (Single x) |> one l) layers (children layer layers p) xs)
        | FanOutNode num -> Fanned(List.replicate num (one layer flow))
        | MergeNode m ->
            match flow with
            | Fanned xs -> Single(m.Apply xs)
            | Single _ -> KernelFn.fanInOfOne layer
        | LeafNode d -> Single(d.Apply p (one layer flow))

    /// <summary>The forward pass of a finite network.</summary>
    /// <param name="layer">The network.</param>
    /// <param name="params">Its parameters, as <c>InitFn.init</c> returns them.</param>
    /// <param name="x">A batch of inputs in the network's layout (default (N, …, C)).</param>
    /// <returns>The network's outputs.</returns>
    /// <exception cref="T:NeuralTangents.NeuralTangentsException">when the network cannot take these inputs.</exception>
    [<CompiledName("Apply")>]
    let apply (layer: Layer) (``params``: Params) (x: Tensor) : Tensor =
        match applyFlow layer ``params`` (Single x) with
        | Single y -> y
        | Fanned ys -> fail (sprintf "the network ends in %d branches; end it with FanInSum, FanInProd or FanInConcat" ys.Length)
