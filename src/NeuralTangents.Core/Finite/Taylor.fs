namespace NeuralTangents

open NeuralTangents.Layers

/// <summary>Taylor expansions of a finite network in its parameters (neural_tangents' <c>linearize</c> and
/// <c>taylor_expand</c>), built on Jacobian–vector products. The Jacobian is never materialised.</summary>
/// <remarks>There is no forward mode here: J·v is computed exactly with the reverse pass, one vector–Jacobian
/// product per output element k, (J·v)_k = ⟨∂f_k/∂θ, v⟩, each row dotted with v as soon as it is pulled back
/// (memory O(#parameters), time O(#outputs) backward passes of one example each). The second-order term uses exact JVPs at four
/// nearby points (see <c>taylorExpand</c>).</remarks>
[<RequireQualifiedAccess>]
module Taylor =

    /// <summary>Output and Jacobian–vector product of a network: (f(θ, x), ∂f(θ, x)/∂θ · v), computed exactly
    /// with one backward pass per output element of each example (JAX's <c>jvp</c> on <c>apply_fn</c>).</summary>
    /// <param name="layer">The network.</param>
    /// <param name="params">θ, where the derivative is taken.</param>
    /// <param name="tangent">v, a tree shaped like θ.</param>
    /// <param name="x">The inputs.</param>
    /// <returns>f(θ, x) and J·v, both of the output's shape.</returns>
    [<CompiledName("Jvp")>]
    let jvp (layer: Layer) (``params``: Params) (tangent: Params) (x: Tensor) : Tensor * Tensor =
        if Params.count tangent <> Params.count ``params`` then
            invalidArg "tangent" (sprintf "jvp: the tangent has %d values but the parameters %d; use a tree shaped like the parameters"
                                    (Params.count tangent) (Params.count ``params``))
        let y = ApplyFn.apply layer ``params`` x
        // Examples do not interact, so each is recorded and pulled back on its own: a backward pass then costs one
        // example, not the batch. The per-example J·v are stacked back along the output's batch axis.
        let axis = defaultArg (Requirements.ofLayer layer).BatchAxis 0
        let a = Axes.norm x.Rank axis
        let b = Axes.norm y.Rank axis
        let perExample =
            Array.init x.Shape[a] (fun i ->
                let tape = Backward.record layer ``params`` (Single(Axes.takeBatch a i x))
                let yi = ApplyFn.one layer tape.Output
                let e = Tensor.zeros yi.Shape
                let out = Array.zeroCreate yi.Length
                for k in 0 .. yi.Length - 1 do
                    e.Data[k] <- 1.0
                    let g, _ = Backward.backwardFlow tape (Single e)
                    e.Data[k] <- 0.0
                    out[k] <- Params.dot g tangent
                Tensor.create yi.Shape out |> Tensor.moveAxis b 0)
        let stacked = Tensor.create (Array.append [| perExample.Length |] perExample[0].Shape[1..]) (Array.collect (fun (t: Tensor) -> t.Data) perExample)
        let jv = Tensor.moveAxis 0 b stacked
        if jv.Shape <> y.Shape then
            raise (NeuralTangentsException(sprintf "jvp: the per-example outputs stack to %A but the batch output is %A" jv.Shape y.Shape))
        y, jv

    /// p − p0 as a tree, checked to have p0's structure.
    let private delta (p0: Params) (p: Params) =
        if Params.count p <> Params.count p0 then
            invalidArg "params" (sprintf "the parameters have %d values, the expansion point %d; use a tree from the same network"
                                    (Params.count p) (Params.count p0))
        let d = Array.map2 (-) (Params.toVector p) (Params.toVector p0)
        Params.ofVector p0 d

    /// p0 + t·v
    let private along (p0: Params) (v: Params) (t: float) =
        Params.ofVector p0 (Array.map2 (fun a b -> a + t * b) (Params.toVector p0) (Params.toVector v))

    /// <summary>The first-order Taylor expansion of a network about <paramref name="params0"/> (neural_tangents'
    /// <c>linearize(f, params)</c>): f_lin(θ, x) = f(θ₀, x) + J(θ₀, x)·(θ − θ₀), with an exact JVP.</summary>
    /// <param name="layer">The network.</param>
    /// <param name="params0">θ₀, the expansion point.</param>
    /// <returns>f_lin(θ, x).</returns>
    [<CompiledName("Linearize")>]
    let linearize (layer: Layer) (params0: Params) : Params -> Tensor -> Tensor =
        fun p x ->
            let y0, jv = jvp layer params0 (delta params0 p) x
            Tensor.add y0 jv

    /// Step in t for the second directional derivative: 2⁻¹⁰ (exact in binary).
    let private h = 1.0 / 1024.0

    /// <summary>The Taylor expansion of a network about <paramref name="params0"/> to order
    /// <paramref name="degree"/> (neural_tangents' <c>taylor_expand(f, params, degree)</c>), for degrees 0, 1 and 2.</summary>
    /// <remarks>With Δ = θ − θ₀ and g(t) = J(θ₀ + tΔ)·Δ: degree 0 is f(θ₀, x); degree 1 adds g(0) (exactly
    /// <c>linearize</c>); degree 2 adds ½·g′(0) = ½·Δᵀ∇²f Δ, with g′(0) from exact JVPs by the fourth-order central
    /// difference [8(g(h) − g(−h)) − (g(2h) − g(−2h))] / 12h, h = 2⁻¹⁰: truncation O(h⁴·g⁽⁵⁾) and rounding
    /// O(ε_mach·|g|/h), about 1e-12 relative to the second-order term for smooth activations (not exact: there is
    /// no forward mode of second order). Across a kink of ReLU-like activations within h·Δ the term is not a
    /// derivative. Degree 3 and more are not supported.</remarks>
    /// <param name="layer">The network.</param>
    /// <param name="params0">θ₀, the expansion point.</param>
    /// <param name="degree">0, 1 or 2.</param>
    /// <returns>f_taylor(θ, x).</returns>
    /// <exception cref="T:System.ArgumentException">when degree is not 0, 1 or 2.</exception>
    [<CompiledName("TaylorExpand")>]
    let taylorExpand (layer: Layer) (params0: Params) (degree: int) : Params -> Tensor -> Tensor =
        match degree with
        | 0 -> fun _ x -> ApplyFn.apply layer params0 x
        | 1 -> linearize layer params0
        | 2 ->
            fun p x ->
                let d = delta params0 p
                let y0, jv = jvp layer params0 d x
                let g t = snd (jvp layer (along params0 d t) d x)
                let gp, gm, gp2, gm2 = g h, g -h, g (2.0 * h), g (-2.0 * h)
                let second =
                    Array.init y0.Length (fun k ->
                        (8.0 * (gp.Data[k] - gm.Data[k]) - (gp2.Data[k] - gm2.Data[k])) / (12.0 * h))
                Tensor.create y0.Shape (Array.init y0.Length (fun k -> y0.Data[k] + jv.Data[k] + 0.5 * second[k]))
        | _ ->
            invalidArg "degree" (sprintf "taylor_expand: degree %d is not supported; use 0, 1 (linearize) or 2" degree)
