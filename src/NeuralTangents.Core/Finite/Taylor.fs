namespace NeuralTangents


/// <summary>Taylor expansions of a finite network in its parameters (neural_tangents' <c>linearize</c> and
/// <c>taylor_expand</c>), built on forward-mode Jacobian–vector products (<c>Jvp</c>): J·v costs about two forward
/// passes and the Jacobian is never materialised.</summary>
[<RequireQualifiedAccess>]
module Taylor =

    /// <summary>Output and Jacobian–vector product of a network in its parameters, for a call with side inputs:
    /// (f(θ, x), ∂f(θ, x)/∂θ · v) in one forward-mode pass (JAX's <c>jvp</c> on <c>apply_fn</c> with x fixed).</summary>
    /// <param name="ctx">The call's random key and named side inputs.</param>
    /// <param name="layer">The network.</param>
    /// <param name="params">θ, where the derivative is taken.</param>
    /// <param name="tangent">v, a tree shaped like θ.</param>
    /// <param name="x">The inputs.</param>
    /// <returns>f(θ, x) and J·v, both of the output's shape.</returns>
    [<CompiledName("JvpWith")>]
    let jvpWith (ctx: ApplyContext) (layer: Layer) (``params``: Params) (tangent: Params) (x: Tensor) : Tensor * Tensor =
        if Params.count tangent <> Params.count ``params`` then
            invalidArg "tangent" ("jvp: the tangent has " + (string (Params.count tangent)) + " values but the parameters " + (string (Params.count ``params``)) + "; use a tree shaped like the parameters")
        Jvp.jvpWith ctx layer ``params`` tangent x (Tensor.zeros x.Shape)

    /// <summary>Output and Jacobian–vector product of a network in its parameters: (f(θ, x), ∂f(θ, x)/∂θ · v)
    /// (no random key, no side inputs).</summary>
    /// <param name="layer">The network.</param>
    /// <param name="params">θ, where the derivative is taken.</param>
    /// <param name="tangent">v, a tree shaped like θ.</param>
    /// <param name="x">The inputs.</param>
    /// <returns>f(θ, x) and J·v, both of the output's shape.</returns>
    [<CompiledName("Jvp")>]
    let jvp (layer: Layer) (``params``: Params) (tangent: Params) (x: Tensor) : Tensor * Tensor =
        jvpWith ApplyContext.Empty layer ``params`` tangent x

    /// Whether two parameter trees have the same branches and tensors of the same shapes (neural_tangents'
    /// tree_map over both fails otherwise).
    let rec private sameStructure (a: Params) (b: Params) =
        match a, b with
        | Leaf xs, Leaf ys -> xs.Length = ys.Length && List.forall2 (fun (x: Tensor) (y: Tensor) -> x.Shape = y.Shape) xs ys
        | Branches xs, Branches ys -> xs.Length = ys.Length && List.forall2 sameStructure xs ys
        | _ -> false

    /// p − p0 as a tree, checked to have p0's structure.
    let private delta (p0: Params) (p: Params) =
        if Params.count p <> Params.count p0 || not (sameStructure p p0) then
            invalidArg "params" ("the parameters (" + (string (Params.count p)) + " values) do not have the structure of the expansion point's (" + (string (Params.count p0)) + " values): other branches or tensor shapes; use a tree from the same network")
        let d = Array.map2 (-) (Params.toVector p) (Params.toVector p0)
        Params.ofVector p0 d

    /// p0 + t·v
    let private along (p0: Params) (v: Params) (t: float) =
        Params.ofVector p0 (Array.map2 (fun a b -> a + t * b) (Params.toVector p0) (Params.toVector v))

    /// <summary>The first-order Taylor expansion of a network about <paramref name="params0"/> (neural_tangents'
    /// <c>linearize(f, params)</c>), called with side inputs as neural_tangents' <c>f_lin(p, x, **kwargs)</c>:
    /// f_lin(θ, x) = f(θ₀, x) + J(θ₀, x)·(θ − θ₀), with an exact forward-mode JVP under the call's context.</summary>
    /// <param name="layer">The network.</param>
    /// <param name="params0">θ₀, the expansion point.</param>
    /// <returns>f_lin(ctx, θ, x).</returns>
    [<CompiledName("LinearizeWith")>]
    let linearizeWith (layer: Layer) (params0: Params) : ApplyContext -> Params -> Tensor -> Tensor =
        fun ctx p x ->
            let y0, jv = jvpWith ctx layer params0 (delta params0 p) x
            Tensor.add y0 jv

    /// <summary>The first-order Taylor expansion of a network about <paramref name="params0"/> (neural_tangents'
    /// <c>linearize(f, params)</c>): f_lin(θ, x) = f(θ₀, x) + J(θ₀, x)·(θ − θ₀), with an exact JVP.</summary>
    /// <param name="layer">The network.</param>
    /// <param name="params0">θ₀, the expansion point.</param>
    /// <returns>f_lin(θ, x).</returns>
    [<CompiledName("Linearize")>]
    let linearize (layer: Layer) (params0: Params) : Params -> Tensor -> Tensor =
        fun p x -> linearizeWith layer params0 ApplyContext.Empty p x

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
    /// <returns>f_taylor(ctx, θ, x), called with the side inputs as neural_tangents' <c>f_tayl(p, x, **kwargs)</c>.</returns>
    /// <exception cref="T:System.ArgumentException">when degree is not 0, 1 or 2.</exception>
    [<CompiledName("TaylorExpandWith")>]
    let taylorExpandWith (layer: Layer) (params0: Params) (degree: int) : ApplyContext -> Params -> Tensor -> Tensor =
        match degree with
        | 0 -> fun ctx _ x -> ApplyFn.applyWith ctx layer params0 x
        | 1 -> linearizeWith layer params0
        | 2 ->
            fun ctx p x ->
                let d = delta params0 p
                let y0, jv = jvpWith ctx layer params0 d x
                let g t = snd (jvpWith ctx layer (along params0 d t) d x)
                let gp, gm, gp2, gm2 = g h, g -h, g (2.0 * h), g (-2.0 * h)
                let second =
                    Array.init y0.Length (fun k ->
                        (8.0 * (gp.Data[k] - gm.Data[k]) - (gp2.Data[k] - gm2.Data[k])) / (12.0 * h))
                Tensor.create y0.Shape (Array.init y0.Length (fun k -> y0.Data[k] + jv.Data[k] + 0.5 * second[k]))
        | _ ->
            invalidArg "degree" $"taylor_expand: degree {string degree} is not supported; use 0, 1 (linearize) or 2"

    /// <summary>The Taylor expansion of a network about <paramref name="params0"/> to order
    /// <paramref name="degree"/> (neural_tangents' <c>taylor_expand(f, params, degree)</c>), for degrees 0, 1 and 2,
    /// without a random key or side inputs (see <c>taylorExpandWith</c>).</summary>
    /// <param name="layer">The network.</param>
    /// <param name="params0">θ₀, the expansion point.</param>
    /// <param name="degree">0, 1 or 2.</param>
    /// <returns>f_taylor(θ, x).</returns>
    /// <exception cref="T:System.ArgumentException">when degree is not 0, 1 or 2.</exception>
    [<CompiledName("TaylorExpand")>]
    let taylorExpand (layer: Layer) (params0: Params) (degree: int) : Params -> Tensor -> Tensor =
        let f = taylorExpandWith layer params0 degree
        fun p x -> f ApplyContext.Empty p x
