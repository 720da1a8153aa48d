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
        | Fanned xs -> Definitions.branchesIntoOne layer xs.Length

    let internal many (flow: Flow) =
        match flow with
        | Fanned xs -> xs
        | Single x -> [ x ]

    let internal wrongParams (layer: Layer) =
        invalidArg "params" $"{Definitions.name layer}: the parameters do not match the layer tree (use the tree InitFn.init returns)"

    /// The children's parameters of a combinator, checked against the number of children.
    let internal children (layer: Layer) (layers: Layer list) (p: Params) =
        match p with
        | Branches ps when ps.Length = layers.Length -> ps
        | _ -> wrongParams layer

    let internal parallelInputs (layers: Layer list) (flow: Flow) =
        let xs = many flow
        if xs.Length <> layers.Length then
            fail ("parallel: has " + string layers.Length + " branches but receives " + string xs.Length + " inputs; use FanOut(" + string layers.Length + ") before it")
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
            | Single _ -> Definitions.oneIntoFanIn layer
        | LeafNode d -> Single(d.Apply ctx p (one layer flow))

    /// <summary>Applies a layer to the activation(s) flowing into it, without a random key or side inputs.</summary>
    [<CompiledName("ApplyFlow")>]
    let applyFlow (layer: Layer) (p: Params) (flow: Flow) : Flow = applyFlowWith ApplyContext.Empty layer p flow

    /// <summary>Refuses a forward pass whose largest layer (its input and output, for the whole batch) does not fit
    /// <paramref name="budget"/> bytes (None: the free memory), before anything is computed. The parameters are the
    /// caller's and already in memory, so they are not counted.</summary>
    let internal checkApply (budget: int64 option) (layer: Layer) (x: Tensor) =
        if not (Array.contains 0 x.Shape) then
            let f = InitFn.footprint layer x.Shape
            Memory.checkTotal budget $"apply_fn on inputs of shape {Shape.format x.Shape}"
                [ "the largest layer's input and output", f.LargestStep ]
                "apply the network to fewer inputs at a time (split the batch) or use smaller widths"

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
        checkApply None layer x
        match applyFlowWith ctx layer ``params`` (Single x) with
        | Single y -> y
        | Fanned ys -> fail $"the network ends in {string ys.Length} branches; end it with FanInSum, FanInProd or FanInConcat"

    /// <summary>The forward pass of a finite network.</summary>
    /// <param name="layer">The network.</param>
    /// <param name="params">Its parameters, as <c>InitFn.init</c> returns them.</param>
    /// <param name="x">A batch of inputs in the network's layout (default (N, …, C)).</param>
    /// <returns>The network's outputs.</returns>
    /// <exception cref="T:NeuralTangents.NeuralTangentsException">when the network cannot take these inputs.</exception>
    [<CompiledName("Apply")>]
    let apply (layer: Layer) (``params``: Params) (x: Tensor) : Tensor = applyWith ApplyContext.Empty layer ``params`` x

/// <summary>Activations and their masks flowing through a finite network with <c>mask_constant</c>: one (tensor,
/// mask) pair, or one per branch; a mask of None masks nothing.</summary>
type MaskedFlow =
    | MaskedSingle of Tensor * Tensor option
    | MaskedFanned of (Tensor * Tensor option) list

/// <summary>The forward pass with masked inputs (neural_tangents' <c>apply_fn(params, inputs,
/// mask_constant=…)</c>, <c>supports_masking</c>'s <c>apply_fn_with_masking</c>): every layer zeroes its input's
/// masked entries, reads the mask where it pools or normalises (GlobalAvgPool averages over unmasked positions), and
/// hands its output the mask its <c>mask_fn</c> gives.</summary>
[<RequireQualifiedAccess>]
module MaskedApplyFn =

    let private fail (msg: string) = raise (NeuralTangentsException msg)

    let private one (layer: Layer) (flow: MaskedFlow) =
        match flow with
        | MaskedSingle(x, m) -> x, m
        | MaskedFanned xs -> Definitions.branchesIntoOne layer xs.Length

    let private children (layer: Layer) (layers: Layer list) (p: Params) =
        match p with
        | Branches ps when ps.Length = layers.Length -> ps
        | _ -> ApplyFn.wrongParams layer

    let private child (i: int) (ctx: ApplyContext) = { ctx with Rng = ctx.Rng |> Option.map (Rng.split i) }

    let private zeroed (x: Tensor, m: Tensor option) = match m with Some m -> Masking.zero m x | None -> x

    /// <summary>Applies a layer to the masked activation(s) flowing into it.</summary>
    [<CompiledName("ApplyFlowWith")>]
    let rec applyFlowWith (ctx: ApplyContext) (layer: Layer) (p: Params) (flow: MaskedFlow) : MaskedFlow =
        match Definitions.node layer with
        | SerialNode layers ->
            List.zip layers (children layer layers p)
            |> List.indexed
            |> List.fold (fun f (i, (l, q)) -> applyFlowWith (child i ctx) l q f) flow
        | ParallelNode layers ->
            let xs = match flow with MaskedFanned xs -> xs | MaskedSingle(x, m) -> [ x, m ]
            if xs.Length <> layers.Length then
                fail ("parallel: has " + string layers.Length + " branches but receives " + string xs.Length + " inputs; use FanOut(" + string layers.Length + ") before it")
            MaskedFanned(List.mapi2 (fun i (l, q) x -> applyFlowWith (child i ctx) l q (MaskedSingle x) |> one l)
                             (List.zip layers (children layer layers p)) xs)
        | FanOutNode num -> MaskedFanned(List.replicate num (one layer flow))
        | MergeNode m ->
            match flow with
            | MaskedFanned xs ->
                let masks = xs |> List.map snd
                let out = m.Apply (xs |> List.map zeroed)
                MaskedSingle(out, if masks |> List.forall Option.isNone then None else m.MaskMerge masks (xs |> List.map (fun (x, _) -> x.Shape)))
            | MaskedSingle _ -> Definitions.oneIntoFanIn layer
        | LeafNode d ->
            match one layer flow with
            | x, None -> MaskedSingle(d.Apply ctx p x, None)
            | x, Some mask ->
                match d.Mask.Unsupported with
                | Some reason -> fail reason
                | None ->
                    let y = d.Apply { ctx with Side = ctx.Side.Add(Masking.SideKey, mask) } p (Masking.zero mask x)
                    MaskedSingle(y, Some(d.Mask.Propagate mask x.Shape))

    /// <summary>The forward pass of a finite network on inputs with masked entries (neural_tangents'
    /// <c>apply_fn(params, x, mask_constant=c, rng=…, **kwargs)</c>, which returns a <c>MaskedArray</c>).</summary>
    /// <param name="ctx">Random key and named side inputs.</param>
    /// <param name="maskConstant">Entries of x equal to it (NaN: entries that are NaN) are masked.</param>
    /// <param name="layer">The network.</param>
    /// <param name="params">Its parameters, as <c>InitFn.init</c> returns them.</param>
    /// <param name="x">A batch of inputs in the network's layout.</param>
    /// <returns>The outputs (masked entries are not zeroed; see <c>unmask</c>) and their mask (1 = masked), of a
    /// shape that broadcasts to the outputs'.</returns>
    /// <exception cref="T:NeuralTangents.NeuralTangentsException">a layer cannot take masked inputs, or as <c>ApplyFn.apply</c>.</exception>
    [<CompiledName("ApplyWith")>]
    let applyWith (ctx: ApplyContext) (maskConstant: float) (layer: Layer) (``params``: Params) (x: Tensor) : Tensor * Tensor option =
        match applyFlowWith ctx layer ``params`` (MaskedSingle(x, Some(Masking.ofInputs maskConstant x))) with
        | MaskedSingle(y, m) -> y, m
        | MaskedFanned ys -> fail $"the network ends in {string ys.Length} branches; end it with FanInSum, FanInProd or FanInConcat"

    /// <summary>neural_tangents' <c>unmask_fn</c>: the outputs with their masked entries set to zero.</summary>
    [<CompiledName("Unmask")>]
    let unmask (y: Tensor, m: Tensor option) : Tensor = match m with Some m -> Masking.zero m y | None -> y
