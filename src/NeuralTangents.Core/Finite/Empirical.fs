namespace NeuralTangents

open NeuralTangents.Layers

/// <summary>Kernels of one finite network (neural_tangents' <c>empirical_nngp_fn</c> and
/// <c>empirical_ntk_fn</c> with <c>trace_axes=(-1,)</c>, <c>diagonal_axes=()</c>): the traced output axis is
/// averaged, not summed, as neural_tangents divides by its size.</summary>
[<RequireQualifiedAccess>]
module Empirical =

    /// Per-example forward tapes of a batch, sliced along the network's input batch axis.
    let private tapes (layer: Layer) (p: Params) (x: Tensor) =
        let axis = defaultArg (Requirements.ofLayer layer).BatchAxis 0
        let a = Axes.norm x.Rank axis
        Array.init x.Shape[a] (fun i ->
            let t = Backward.record layer p (Single(Axes.takeBatch a i x))
            let y = ApplyFn.one layer t.Output
            if y.Rank <> 2 then
                raise (NeuralTangentsException(
                    sprintf "empirical kernels trace only the channel axis; the output has shape %A per input, end the network with Flatten and Dense to get (N, C)" y.Shape))
            t, y)

    /// What one leaf's parameter gradient is made of in one backward pass: its definition, parameters, input and
    /// output cotangent. Kept factored so that layers with a structured derivative (Dense: ∂W = scale·xᵀ·ct) never
    /// form ∂θ.
    type private Factor = { Def: LayerDef; Params: Params; X: Tensor; Ct: Tensor }

    /// Factored gradients of every output channel of every example: grads[i][c] lists the factors of
    /// ∂f_c(x_i)/∂θ in tree order (leaves with parameters only).
    let private jacobians (recorded: (Tape * Tensor)[]) =
        let leaf (d: LayerDef) (p: Params) (x: Tensor) (ct: Tensor) =
            if Params.count p = 0 then [] else [ { Def = d; Params = p; X = x; Ct = ct } ]
        recorded |> Array.map (fun (t, y) ->
            Array.init y.Length (fun ch ->
                let e = Tensor.zeros y.Shape
                e.Data[ch] <- 1.0
                fst (Backward.pullback leaf [] List.concat t (Single e))))

    /// ⟨∂f_a/∂θ, ∂f_b/∂θ⟩ from factored gradients: each layer's structured product, or the dot product of its
    /// formed parameter cotangents.
    let private gradDot (a: Factor list) (b: Factor list) =
        List.fold2 (fun acc (u: Factor) (v: Factor) ->
            let term =
                match u.Def.GradDot with
                | Some dot -> dot u.Params u.X u.Ct v.X v.Ct
                | None -> Params.dot (u.Def.ParamVjp u.Params u.X u.Ct) (v.Def.ParamVjp v.Params v.X v.Ct)
            acc + term) 0.0 a b

    let private nngpOf (ys1: Tensor[]) (ys2: Tensor[]) =
        let c = ys1[0].Length
        let r = Array2D.init ys1.Length ys2.Length (fun i j ->
            System.Numerics.Tensors.TensorPrimitives.Dot(System.ReadOnlySpan(ys1[i].Data), System.ReadOnlySpan(ys2[j].Data)) / float c)
        Tensor.ofArray2D r

    /// Θ[i, j] = Σ_c ⟨∂f_c(x1_i)/∂θ, ∂f_c(x2_j)/∂θ⟩ / C; when x2 is x1 only i ≤ j is computed and mirrored.
    let private ntkOf (j1: Factor list[][]) (j2: Factor list[][]) =
        let c = if j1.Length = 0 then 1 else j1[0].Length
        let same = obj.ReferenceEquals(j1, j2)
        let entry i j =
            let mutable s = 0.0
            for ch in 0 .. c - 1 do s <- s + gradDot (j1[i][ch]) (j2[j][ch])
            s / float c
        let r = Array2D.zeroCreate j1.Length j2.Length
        for i in 0 .. j1.Length - 1 do
            for j in (if same then i else 0) .. j2.Length - 1 do
                r[i, j] <- entry i j
                if same then r[j, i] <- r[i, j]
        Tensor.ofArray2D r

    /// <summary>The empirical NNGP and NTK of one network, sharing one forward pass per input.</summary>
    /// <param name="layer">The network; its output must be (N, C).</param>
    /// <param name="params">Its parameters.</param>
    /// <param name="x1">First inputs.</param>
    /// <param name="x2">Second inputs, or None for x1.</param>
    /// <returns>(nngp, ntk), each (N1, N2): f(x1)·f(x2)ᵀ/C and Σ_θ ∂f(x1)/∂θ·∂f(x2)/∂θ / C.</returns>
    [<CompiledName("Kernels")>]
    let kernels (layer: Layer) (``params``: Params) (x1: Tensor) (x2: Tensor option) : Tensor * Tensor =
        let r1 = tapes layer ``params`` x1
        let r2 = match x2 with Some x -> tapes layer ``params`` x | None -> r1
        let j1 = jacobians r1
        let j2 = if x2.IsSome then jacobians r2 else j1
        nngpOf (Array.map snd r1) (Array.map snd r2), ntkOf j1 j2

    /// <summary>The empirical NNGP f(x1)·f(x2)ᵀ / C of one network (neural_tangents' <c>empirical_nngp_fn</c>).</summary>
    /// <param name="layer">The network; its output must be (N, C).</param>
    /// <param name="params">Its parameters.</param>
    /// <param name="x1">First inputs.</param>
    /// <param name="x2">Second inputs, or None for x1.</param>
    /// <returns>(N1, N2).</returns>
    [<CompiledName("Nngp")>]
    let nngp (layer: Layer) (``params``: Params) (x1: Tensor) (x2: Tensor option) : Tensor =
        let ys1 = tapes layer ``params`` x1 |> Array.map snd
        let ys2 = match x2 with Some x -> tapes layer ``params`` x |> Array.map snd | None -> ys1
        nngpOf ys1 ys2

    /// <summary>The empirical NTK Σ_θ ∂f(x1)/∂θ · ∂f(x2)/∂θ of one network, averaged over the output channels
    /// (neural_tangents' <c>empirical_ntk_fn</c> with <c>trace_axes=(-1,)</c>).</summary>
    /// <param name="layer">The network; its output must be (N, C).</param>
    /// <param name="params">Its parameters.</param>
    /// <param name="x1">First inputs.</param>
    /// <param name="x2">Second inputs, or None for x1.</param>
    /// <returns>(N1, N2).</returns>
    [<CompiledName("Ntk")>]
    let ntk (layer: Layer) (``params``: Params) (x1: Tensor) (x2: Tensor option) : Tensor =
        kernels layer ``params`` x1 x2 |> snd
