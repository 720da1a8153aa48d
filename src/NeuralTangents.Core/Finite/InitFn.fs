namespace NeuralTangents

open System

/// <summary>Shapes flowing through a finite network at initialisation: one, or one per branch after <c>FanOut</c>.</summary>
type ShapeFlow =
    | OneShape of int[]
    | ManyShapes of int[] list

/// <summary>The <c>init_fn</c> interpreter: samples the parameters of a finite network and infers its output
/// shape (neural_tangents' <c>init_fn(rng, input_shape)</c>). The layer at tree path p draws from
/// <c>Rng.split</c> along p, so parameters do not depend on evaluation order.</summary>
[<RequireQualifiedAccess>]
module InitFn =

    let private fail (msg: string) = raise (NeuralTangentsException msg)

    let private one (layer: Layer) (flow: ShapeFlow) =
        match flow with
        | OneShape s -> s
        | ManyShapes ss -> Definitions.branchesIntoOne layer ss.Length

    let private many (flow: ShapeFlow) =
        match flow with
        | ManyShapes ss -> ss
        | OneShape s -> [ s ]

    /// Propagates shapes through a layer, sampling its parameters from <paramref name="key"/>: the combinators here,
    /// every other layer by its definition.
    let rec private initFlow (key: RngKey) (layer: Layer) (flow: ShapeFlow) : ShapeFlow * Params =
        match layer with
        | Repeat(inner, _) ->
            // neural_tangents' repeat runs the layer's init_fn once and refuses a changed shape, whatever n (even 0).
            // A count-only pass does not count this trial (its parameters are dropped).
            let sz = Memory.currentSizing ()
            let saved = if isNull sz then None else Some(sz.Parameters, sz.Activations, sz.LargestStep, sz.GradientOutputs)
            let out, _ = initFlow (Rng.split 0 key) inner flow
            saved |> Option.iter (fun (p, a, l, g) ->
                sz.Parameters <- p; sz.Activations <- a; sz.LargestStep <- l; sz.GradientOutputs <- g)
            if out <> flow then
                let show f = match f with OneShape s -> (Show.ints s) | ManyShapes ss -> "[" + String.Join("; ", ss |> List.map Show.ints) + "]"
                fail ("repeat: the repeated layer " + (Definitions.name inner) + " maps shape " + (show flow) + " to " + (show out) + ", but repeat needs a layer that keeps its input shape; use serial of n copies instead")
            initSerial key layer flow
        | _ -> initSerial key layer flow

    and private initSerial (key: RngKey) (layer: Layer) (flow: ShapeFlow) : ShapeFlow * Params =
        match Definitions.node layer with
        | SerialNode layers ->
            let f, ps =
                layers |> List.indexed |> List.fold (fun (f, acc) (i, l) ->
                    let f', p = initFlow (Rng.split i key) l f
                    f', p :: acc) (flow, [])
            f, Branches(List.rev ps)
        | ParallelNode layers ->
            let ss = many flow
            if ss.Length <> layers.Length then
                fail ("parallel: has " + string layers.Length + " branches but receives " + string ss.Length + " inputs; use FanOut(" + string layers.Length + ") before it")
            let outs =
                List.zip layers ss |> List.mapi (fun i (l, s) ->
                    let f, p = initFlow (Rng.split i key) l (OneShape s)
                    one l f, p)
            ManyShapes(List.map fst outs), Branches(List.map snd outs)
        | FanOutNode num -> ManyShapes(List.replicate num (one layer flow)), Params.none
        | MergeNode m ->
            match flow with
            | ManyShapes ss -> OneShape(m.Shape ss), Params.none
            | OneShape _ -> Definitions.oneIntoFanIn layer
        | LeafNode d ->
            let input = one layer flow
            let sz = Memory.currentSizing ()
            let before = if isNull sz then 0L else sz.Parameters
            let s, p = d.Init key input
            if not (isNull sz) then
                let size (shape: int[]) = defaultArg (Memory.product (shape |> Seq.map int64)) Int64.MaxValue
                let o = size s
                sz.Activations <- Memory.addSat sz.Activations o
                sz.LargestStep <- max sz.LargestStep (Memory.addSat (size input) o)
                if sz.Parameters > before then sz.GradientOutputs <- Memory.addSat sz.GradientOutputs o
            OneShape s, p

    /// <summary>What a finite network holds for a batch of inputs of <paramref name="inputShape"/>, counted in
    /// float64 values by a count-only pass of its init (no parameter is drawn): its parameters, every leaf's output
    /// (Σ: a recorded forward pass; the largest input + output of one leaf: a plain forward pass), the outputs of the
    /// leaves with parameters (a factored gradient's cotangents) and the network's output shape.</summary>
    type internal Footprint =
        { Parameters: int64
          Activations: int64
          LargestStep: int64
          GradientOutputs: int64
          Output: int[] }

    /// <summary>The footprint of a network for inputs of a concrete shape (see <c>Footprint</c>).</summary>
    let internal footprint (layer: Layer) (inputShape: int[]) : Footprint =
        let flow, s = Memory.counting (fun () -> initFlow (Rng.ofSeed 0) layer (OneShape inputShape) |> fst)
        let out =
            match flow with
            | OneShape o -> o
            | ManyShapes ss -> fail $"the network ends in {string ss.Length} branches; end it with FanInSum, FanInProd or FanInConcat"
        { Parameters = s.Parameters; Activations = s.Activations; LargestStep = s.LargestStep
          GradientOutputs = s.GradientOutputs; Output = out }

    /// <summary>Refuses to draw the parameters of a network whose layers fit one by one but not together: their
    /// count over all layers against <paramref name="budget"/> bytes (None: the free memory).</summary>
    let internal checkInit (budget: int64 option) (layer: Layer) (inputShape: int[]) =
        let f = footprint layer inputShape
        Memory.checkTotal budget "init_fn: the parameters of all layers"
            [ $"{string f.Parameters} parameters", f.Parameters ]
            "use smaller widths or fewer layers"

    /// <summary>Samples the parameters of a finite network from a random key and infers its output shape
    /// (neural_tangents' <c>init_fn(rng, input_shape)</c>).</summary>
    /// <param name="key">The root key; the layer at tree path p draws from the key split along p.</param>
    /// <param name="layer">The network.</param>
    /// <param name="inputShape">Shape of a batch of inputs in the network's layout (default (N, …, C)); one entry
    /// may be −1 (the batch axis, neural_tangents' <c>(-1, …)</c>), and then the output's batch axis is −1 too.</param>
    /// <returns>The output shape and the parameter tree.</returns>
    /// <exception cref="T:NeuralTangents.NeuralTangentsException">when the shapes do not fit the network.</exception>
    [<CompiledName("InitWithKey")>]
    let initWithKey (key: RngKey) (layer: Layer) (inputShape: int[]) : int[] * Params =
        if isNull inputShape then nullArg "inputShape"
        if inputShape.Length = 0 then
            invalidArg "inputShape" "has no axes; give the input's shape with its batch axis, e.g. [|-1; 3|] for vectors of 3"
        if inputShape |> Array.exists (fun d -> d < 1 && d <> -1) then
            invalidArg "inputShape" $"dimensions must be ≥ 1 (or −1 for the batch axis), got {Show.ints inputShape}"
        if (inputShape |> Array.filter (fun d -> d = -1)).Length > 1 then
            invalidArg "inputShape" $"at most one dimension may be −1 (the batch axis), got {Show.ints inputShape}"
        let run (shape: int[]) =
            checkInit None layer shape
            match initFlow key layer (OneShape shape) with
            | OneShape s, p -> s, p
            | ManyShapes ss, _ ->
                fail $"the network ends in {string ss.Length} branches; end it with FanInSum, FanInProd or FanInConcat"
        match Array.tryFindIndex (fun d -> d = -1) inputShape with
        | None -> run inputShape
        | Some axis ->
            // neural_tangents' input_shape (-1, …): parameters do not depend on the batch size, so the network is
            // initialised at batch sizes 1 and 2 (same key, same parameters) and the output axes that follow the
            // batch size are reported as −1.
            let at (n: int) = Array.updateAt axis n inputShape
            let s1, p = run (at 1)
            let s2, _ = run (at 2)
            if s1.Length <> s2.Length then fail ("the output rank depends on the batch size (" + Show.ints s1 + " vs " + Show.ints s2 + ")")
            Array.map2 (fun a b -> if a = b then a else -1) s1 s2, p

    /// <summary>Samples the parameters of a finite network and infers its output shape.</summary>
    /// <param name="seed">Seed of the root <see cref="T:NeuralTangents.RngKey"/>.</param>
    /// <param name="layer">The network.</param>
    /// <param name="inputShape">Shape of a batch of inputs in the network's layout (default (N, …, C)).</param>
    /// <returns>The output shape and the parameter tree.</returns>
    /// <exception cref="T:NeuralTangents.NeuralTangentsException">when the shapes do not fit the network.</exception>
    [<CompiledName("Init")>]
    let init (seed: int) (layer: Layer) (inputShape: int[]) : int[] * Params = initWithKey (Rng.ofSeed seed) layer inputShape
