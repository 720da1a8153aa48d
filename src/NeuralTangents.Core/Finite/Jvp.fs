namespace NeuralTangents

/// <summary>Forward-mode differentiation of finite networks (the Jacobian–vector product JAX's <c>jvp</c> gives
/// neural_tangents' <c>apply_fn</c>): one pass that carries each activation together with its tangent, every leaf
/// pushing the tangent through its <c>TangentRule</c>. Cost: about two forward passes, whatever the number of
/// outputs or parameters; nothing is stored for a later pass.</summary>
[<RequireQualifiedAccess>]
module Jvp =

    let private fail (msg: string) = raise (NeuralTangentsException msg)

    /// Checks that a tangent tree has the parameters' structure and shapes.
    let rec private checkTangent (p: Params) (dp: Params) =
        match p, dp with
        | Leaf ts, Leaf dts when ts.Length = dts.Length ->
            List.iter2 (fun (t: Tensor) (d: Tensor) ->
                if t.Shape <> d.Shape then
                    invalidArg "tangent" ("jvp: a parameter of shape " + (Shape.format t.Shape) + " has a tangent of shape " + (Shape.format d.Shape) + "; use a tree shaped like the parameters")) ts dts
        | Branches ps, Branches dps when ps.Length = dps.Length -> List.iter2 checkTangent ps dps
        | _ -> invalidArg "tangent" "jvp: the parameter tangent is not shaped like the parameters; use a tree shaped like the tree InitFn.init returns"

    /// The output and its tangent for activations and tangents flowing into a layer (after a check of dθ).
    let rec private push (ctx: ApplyContext) (layer: Layer) (p: Params) (dp: Params) (flow: Flow) (tangent: Flow) : Flow * Flow =
        // Child i gets the key split at i, as in ApplyFn.applyFlowWith, so the primal output is the forward call's.
        let child (i: int) = { ctx with Rng = ctx.Rng |> Option.map (Rng.split i) }
        match Definitions.node layer with
        | SerialNode layers ->
            List.zip3 layers (ApplyFn.children layer layers p) (ApplyFn.children layer layers dp)
            |> List.indexed
            |> List.fold (fun (f, t) (i, (l, q, dq)) -> push (child i) l q dq f t) (flow, tangent)
        | ParallelNode layers ->
            let xs = ApplyFn.parallelInputs layers flow
            let dxs = ApplyFn.many tangent
            let outs =
                List.zip3 layers (ApplyFn.children layer layers p) (ApplyFn.children layer layers dp)
                |> List.mapi (fun i (l, q, dq) ->
                    let y, dy = push (child i) l q dq (Single xs[i]) (Single dxs[i])
                    ApplyFn.one l y, ApplyFn.one l dy)
            Fanned(List.map fst outs), Fanned(List.map snd outs)
        | FanOutNode num -> Fanned(List.replicate num (ApplyFn.one layer flow)), Fanned(List.replicate num (ApplyFn.one layer tangent))
        | MergeNode m ->
            match flow, tangent with
            | Fanned xs, Fanned dxs -> Single(m.Apply xs), Single(m.Jvp xs dxs)
            | _ -> Definitions.oneIntoFanIn layer
        | LeafNode d ->
            let x, dx = ApplyFn.one layer flow, ApplyFn.one layer tangent
            let dy =
                match d.Jvp with
                | LinearInInput -> d.Apply ctx p dx
                | Tangent rule -> rule ctx p dp x dx
            Single(d.Apply ctx p x), Single dy

    /// <summary>The Jacobian–vector product of a network for a call with side inputs: (f(θ, x), ∂f/∂θ·dθ + ∂f/∂x·dx)
    /// in one forward pass (neural_tangents' <c>jvp(lambda p, x: apply_fn(p, x, rng=…, **kwargs), (θ, x), (dθ,
    /// dx))</c>); dropout masks and patterns are those of the forward call with this context.</summary>
    /// <param name="ctx">The call's random key and named side inputs.</param>
    /// <param name="layer">The network.</param>
    /// <param name="params">θ.</param>
    /// <param name="paramsTangent">dθ, a tree shaped like θ.</param>
    /// <param name="x">The inputs.</param>
    /// <param name="xTangent">dx, of x's shape.</param>
    /// <returns>f(θ, x) and its tangent, both of the output's shape.</returns>
    /// <exception cref="T:System.ArgumentException">when dθ is not shaped like θ or dx not like x.</exception>
    /// <exception cref="T:NeuralTangents.NeuralTangentsException">when the network cannot take these inputs.</exception>
    [<CompiledName("JvpWith")>]
    let jvpWith (ctx: ApplyContext) (layer: Layer) (``params``: Params) (paramsTangent: Params) (x: Tensor) (xTangent: Tensor) : Tensor * Tensor =
        checkTangent ``params`` paramsTangent
        if x.Shape <> xTangent.Shape then
            invalidArg "xTangent" ("jvp: the input has shape " + (Shape.format x.Shape) + " but its tangent " + (Shape.format xTangent.Shape) + "; give a tangent of the input's shape")
        match push ctx layer ``params`` paramsTangent (Single x) (Single xTangent) with
        | Single y, Single dy -> y, dy
        | ys, _ -> fail $"the network ends in {string ((ApplyFn.many ys).Length)} branches; end it with FanInSum, FanInProd or FanInConcat"

    /// <summary>The Jacobian–vector product of a network (no random key, no side inputs).</summary>
    /// <param name="layer">The network.</param>
    /// <param name="params">θ.</param>
    /// <param name="paramsTangent">dθ, a tree shaped like θ.</param>
    /// <param name="x">The inputs.</param>
    /// <param name="xTangent">dx, of x's shape.</param>
    /// <returns>f(θ, x) and ∂f/∂θ·dθ + ∂f/∂x·dx.</returns>
    [<CompiledName("Jvp")>]
    let jvp (layer: Layer) (``params``: Params) (paramsTangent: Params) (x: Tensor) (xTangent: Tensor) : Tensor * Tensor =
        jvpWith ApplyContext.Empty layer ``params`` paramsTangent x xTangent
