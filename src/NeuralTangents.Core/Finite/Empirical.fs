namespace NeuralTangents

open NeuralTangents.Layers

/// <summary>Kernels of one finite network (neural_tangents' <c>empirical_nngp_fn</c> and
/// <c>empirical_ntk_fn</c> with <c>trace_axes=(-1,)</c>, <c>diagonal_axes=()</c>): the traced output axis is
/// averaged, not summed, as neural_tangents divides by its size.</summary>
[<RequireQualifiedAccess>]
module Empirical =

    /// What one leaf's parameter gradient is made of in one backward pass: its definition, the side inputs of its
    /// call, parameters, input and output cotangent. Kept factored so that layers with a structured derivative
    /// (Dense: ∂W = scale·xᵀ·ct) never form ∂θ.
    type private Factor = { Def: LayerDef; Ctx: ApplyContext; Params: Params; X: Tensor; Ct: Tensor }

    /// The forward pass(es) of one input batch: per-example outputs (batch axis of size 1, at <c>B</c>) and
    /// <c>Pull i a</c>, the factored gradient ∂f_a(x_i)/∂θ (leaves with parameters only, in tree order) of output
    /// element a (flat, per example) of example i.
    type private Recorded = { Ys: Tensor[]; B: int; Pull: int -> int -> Factor list }

    let private factorOf (d: LayerDef) (ctx: ApplyContext) (p: Params) (x: Tensor) (ct: Tensor) =
        if Params.count p = 0 then [] else [ { Def = d; Ctx = ctx; Params = p; X = x; Ct = ct } ]

    /// Whether a layer of the network can reach across examples: LayerNorm over the batch axis, Index, DotGeneral
    /// and ImageResize, which name axes by number and so may name the batch axis (neural_tangents runs the batch
    /// through the network whole, so their outputs mix examples there too).
    let private mayMixExamples =
        Definitions.exists (function LayerNorm _ | Index _ | DotGeneral _ | ImageResize _ -> true | _ -> false)

    /// Records the forward pass of a batch. Without side inputs, and without a layer that may mix examples, the
    /// examples do not interact, so each is recorded and pulled back on its own (a backward pass costs one
    /// example). Otherwise the batch is recorded whole, as neural_tangents runs it, so that dropout masks (drawn
    /// over the whole batch), patterns and batch-axis normalisations are exactly the forward call's; each pullback
    /// then costs the batch.
    let private record (ctx: ApplyContext) (layer: Layer) (p: Params) (x: Tensor) : Recorded =
        let axis = fst (Requirements.inputAxes x.Rank (Requirements.ofLayer layer))
        let a = Axes.norm x.Rank axis
        let n = x.Shape[a]
        if ctx.Rng.IsNone && ctx.Side.IsEmpty && not (mayMixExamples layer) then
            let tapes = Array.init n (fun i -> Backward.recordWith ctx layer p (Single(Axes.takeBatch a i x)))
            let ys = tapes |> Array.map (fun t -> ApplyFn.one layer t.Output)
            let b = if n = 0 then 0 else Axes.norm ys[0].Rank axis
            let pull i el =
                let e = Tensor.zeros ys[i].Shape
                e.Data[el] <- 1.0
                fst (Backward.pullback factorOf [] List.concat tapes[i] (Single e))
            { Ys = ys; B = b; Pull = pull }
        else
            let tape = Backward.recordWith ctx layer p (Single x)
            let y = ApplyFn.one layer tape.Output
            let b = Axes.norm y.Rank axis
            if y.Shape[b] <> n then
                raise (NeuralTangentsException(
                    sprintf "empirical kernels: the output has shape %s, whose batch axis %d does not hold the %d inputs" (Shape.format y.Shape) b n))
            let ys = Array.init n (fun i -> Axes.takeBatch b i y)
            // Row-major strides of the whole output, to place element el of example i.
            let strides = Array.init y.Rank (fun k -> Array.fold (*) 1 y.Shape[k + 1 ..])
            let pull i el =
                let s = ys[i].Shape
                let mutable rem = el
                let mutable flat = 0
                for k in s.Length - 1 .. -1 .. 0 do
                    let m = if k = b then i else rem % s[k]
                    rem <- rem / s[k]
                    flat <- flat + m * strides[k]
                let e = Tensor.zeros y.Shape
                e.Data[flat] <- 1.0
                fst (Backward.pullback factorOf [] List.concat tape (Single e))
            { Ys = ys; B = b; Pull = pull }

    /// Per-example outputs of an (N, C) network, checked to be (1, C) each.
    let private tapes (ctx: ApplyContext) (layer: Layer) (p: Params) (x: Tensor) =
        let r = record ctx layer p x
        r.Ys |> Array.iter (fun y ->
            if y.Rank <> 2 then
                raise (NeuralTangentsException(
                    sprintf "empirical kernels trace only the channel axis; the output has shape %A per input, end the network with Flatten and Dense to get (N, C)" y.Shape)))
        r

    /// Factored gradients of every output element of every example: grads[i][c] lists the factors of
    /// ∂f_c(x_i)/∂θ in tree order (leaves with parameters only).
    let private jacobians (r: Recorded) =
        r.Ys |> Array.mapi (fun i y -> Array.init y.Length (fun el -> r.Pull i el))

    /// ⟨∂f_a/∂θ, ∂f_b/∂θ⟩ from factored gradients: each layer's structured product, or the dot product of its
    /// formed parameter cotangents.
    let private gradDot (a: Factor list) (b: Factor list) =
        List.fold2 (fun acc (u: Factor) (v: Factor) ->
            let term =
                match u.Def.GradDot with
                | Some dot -> dot u.Params u.Ctx u.X u.Ct v.Ctx v.X v.Ct
                | None -> Params.dot (u.Def.ParamVjp u.Ctx u.Params u.X u.Ct) (v.Def.ParamVjp v.Ctx v.Params v.X v.Ct)
            acc + term) 0.0 a b

    /// <summary>The contexts of the two calls f(x1) and f(x2) of one empirical kernel (neural_tangents'
    /// <c>utils.split_kwargs</c> and <c>_read_keys</c>): the side inputs go to both; the random key goes unchanged to
    /// x1, and to x2 unchanged when x2 is absent or equal to x1 within 1e-12 (so that x1 = x2 gives one draw, as the
    /// infinite-width Dropout kernel assumes), else split (neural_tangents folds in 1).</summary>
    /// <param name="ctx">The call's key and side inputs.</param>
    /// <param name="x1">First inputs.</param>
    /// <param name="x2">Second inputs, or None for x1.</param>
    /// <returns>The contexts of f(x1) and f(x2).</returns>
    [<CompiledName("SplitContext")>]
    let splitContext (ctx: ApplyContext) (x1: Tensor) (x2: Tensor option) : ApplyContext * ApplyContext =
        // x2 counts as x1 within neural_tangents' utils.x1_is_x2 tolerance: every entry within 1e-12.
        let same (x: Tensor) = x.Shape = x1.Shape && Array.forall2 (fun (u: float) v -> abs (u - v) < 1e-12) x.Data x1.Data
        match x2, ctx.Rng with
        | Some x, Some key when not (same x) -> ctx, { ctx with Rng = Some(Rng.split 1 key) }
        | _ -> ctx, ctx

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
        let r1 = tapes ApplyContext.Empty layer ``params`` x1
        let r2 = match x2 with Some x -> tapes ApplyContext.Empty layer ``params`` x | None -> r1
        let j1 = jacobians r1
        let j2 = if x2.IsSome then jacobians r2 else j1
        nngpOf r1.Ys r2.Ys, ntkOf j1 j2

    /// <summary>The empirical NNGP and NTK of one network for calls with side inputs (neural_tangents'
    /// <c>empirical_kernel_fn(…)(x1, x2, get, params, rng=…, **kwargs)</c>): f(x1) runs with <paramref name="ctx1"/>
    /// and f(x2) with <paramref name="ctx2"/> (see <c>splitContext</c>), and every gradient replays its call's
    /// dropout masks and patterns.</summary>
    /// <param name="ctx1">Side inputs of f(x1).</param>
    /// <param name="ctx2">Side inputs of f(x2) (unused when x2 is None: f(x1) serves both).</param>
    /// <param name="layer">The network; its output must be (N, C).</param>
    /// <param name="params">Its parameters.</param>
    /// <param name="x1">First inputs.</param>
    /// <param name="x2">Second inputs, or None for x1.</param>
    /// <returns>(nngp, ntk), each (N1, N2).</returns>
    [<CompiledName("KernelsWith")>]
    let kernelsWith (ctx1: ApplyContext) (ctx2: ApplyContext) (layer: Layer) (``params``: Params) (x1: Tensor) (x2: Tensor option) : Tensor * Tensor =
        let r1 = tapes ctx1 layer ``params`` x1
        let r2 = match x2 with Some x -> tapes ctx2 layer ``params`` x | None -> r1
        let j1 = jacobians r1
        let j2 = if x2.IsSome then jacobians r2 else j1
        nngpOf r1.Ys r2.Ys, ntkOf j1 j2

    /// <summary>The empirical NNGP f(x1)·f(x2)ᵀ / C of one network (neural_tangents' <c>empirical_nngp_fn</c>).</summary>
    /// <param name="layer">The network; its output must be (N, C).</param>
    /// <param name="params">Its parameters.</param>
    /// <param name="x1">First inputs.</param>
    /// <param name="x2">Second inputs, or None for x1.</param>
    /// <returns>(N1, N2).</returns>
    [<CompiledName("Nngp")>]
    let nngp (layer: Layer) (``params``: Params) (x1: Tensor) (x2: Tensor option) : Tensor =
        let ys1 = (tapes ApplyContext.Empty layer ``params`` x1).Ys
        let ys2 = match x2 with Some x -> (tapes ApplyContext.Empty layer ``params`` x).Ys | None -> ys1
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

    // ---- empirical_kernel_fn with trace_axes and diagonal_axes -------------------------------------------------

    /// The recorded batch for any output shape, checked: each example's output has size 1 on the batch axis.
    let private tapesAnyShape (ctx: ApplyContext) (layer: Layer) (p: Params) (x: Tensor) =
        let r = record ctx layer p x
        r.Ys |> Array.iter (fun y ->
            if y.Shape[r.B] <> 1 then
                raise (NeuralTangentsException(
                    sprintf "empirical kernels: the output of one example has shape %A, expected size 1 on the batch axis %d" y.Shape r.B)))
        r

    /// What each output axis becomes in the kernel (neural_tangents' _ntk_shape): traced axes are summed over
    /// and absent, diagonal axes appear once, every other axis twice (f(x1)'s copy, then f(x2)'s).
    type private AxisRole =
        | Traced
        | Diagonal
        | Outer

    let private roles (rank: int) (traceAxes: int[]) (diagonalAxes: int[]) =
        // Named as neural_tangents names them (trace_axes, diagonal_axes), lists as JSON writes them.
        let show (axes: int[]) = "[" + System.String.Join(", ", axes) + "]"
        // The parameter (ParamName) as the API spells it; the message in neural_tangents' words.
        let canon (param: string) (name: string) (axes: int[]) =
            if isNull axes then nullArg param
            let c = axes |> Array.map (fun a ->
                let n = if a < 0 then a + rank else a
                if n < 0 || n >= rank then
                    invalidArg param (sprintf "%s: axis %d is out of range for an output of rank %d; use an axis in [-%d, %d)" name a rank rank rank)
                n)
            if (Array.distinct c).Length <> c.Length then
                invalidArg param (sprintf "%s: %s names an axis twice" name (show axes))
            c
        let t = canon "traceAxes" "trace_axes" traceAxes
        let d = canon "diagonalAxes" "diagonal_axes" diagonalAxes
        match t |> Array.tryFind (fun a -> Array.contains a d) with
        | Some a -> invalidArg "diagonalAxes" (sprintf "axis %d is in both trace_axes %s and diagonal_axes %s; an axis is either traced or diagonal" a (show traceAxes) (show diagonalAxes))
        | None -> ()
        Array.init rank (fun a -> if Array.contains a t then Traced elif Array.contains a d then Diagonal else Outer)

    /// <summary>Shape of an empirical kernel between outputs of shapes <paramref name="shape1"/> and
    /// <paramref name="shape2"/> (neural_tangents' <c>_ntk_shape</c>): per output axis in order, nothing when
    /// traced, one axis when diagonal, (d1, d2) otherwise.</summary>
    /// <param name="shape1">Shape of f(x1), batch axis included.</param>
    /// <param name="shape2">Shape of f(x2).</param>
    /// <param name="traceAxes">Output axes to trace over (neural_tangents' default (-1,)).</param>
    /// <param name="diagonalAxes">Output axes to keep only the diagonal of (default ()).</param>
    /// <returns>The kernel's shape.</returns>
    [<CompiledName("KernelShape")>]
    let kernelShape (shape1: int[]) (shape2: int[]) (traceAxes: int[]) (diagonalAxes: int[]) : int[] =
        if shape1.Length <> shape2.Length then
            invalidArg "x2" (sprintf "empirical kernel: f(x1) has shape %A and f(x2) %A; they need the same rank" shape1 shape2)
        let rs = roles shape1.Length traceAxes diagonalAxes
        rs |> Array.mapi (fun a r ->
            match r with
            | Outer -> [| shape1[a]; shape2[a] |]
            | Traced | Diagonal ->
                if shape1[a] <> shape2[a] then
                    invalidArg "x2" (sprintf "empirical kernel: output axis %d is traced or diagonal but has size %d for x1 and %d for x2" a shape1[a] shape2[a])
                if r = Diagonal then [| shape1[a] |] else [||])
        |> Array.concat

    /// K[r] = Σ over traced indices of entry(m1, m2) / (size of the traced axes), where m1 and m2 are the output
    /// multi-indices result index r and the traced indices name (neural_tangents' _dot_general then the division).
    let private contract (shape1: int[]) (shape2: int[]) (rs: AxisRole[]) (entry: int[] -> int[] -> float) =
        let outShape = kernelShape shape1 shape2 (rs |> Array.indexed |> Array.choose (fun (a, r) -> if r = Traced then Some a else None))
                                                 (rs |> Array.indexed |> Array.choose (fun (a, r) -> if r = Diagonal then Some a else None))
        let traced = rs |> Array.indexed |> Array.choose (fun (a, r) -> if r = Traced then Some a else None)
        let traceSize = traced |> Array.fold (fun acc a -> acc * shape1[a]) 1
        let entries = Memory.product (outShape |> Seq.map int64) |> Option.defaultValue System.Int64.MaxValue
        Memory.checkKernel 1L entries 1L 1
        let result = Array.zeroCreate (int entries)
        let m1 = Array.zeroCreate shape1.Length
        let m2 = Array.zeroCreate shape2.Length
        let r = Array.zeroCreate outShape.Length
        let t = Array.zeroCreate traced.Length
        for flat in 0 .. result.Length - 1 do
            // decode the result index (row-major) into the non-traced output indices
            let mutable rem = flat
            for k in outShape.Length - 1 .. -1 .. 0 do
                r[k] <- rem % outShape[k]
                rem <- rem / outShape[k]
            let mutable k = 0
            for a in 0 .. rs.Length - 1 do
                match rs[a] with
                | Outer -> m1[a] <- r[k]; m2[a] <- r[k + 1]; k <- k + 2
                | Diagonal -> m1[a] <- r[k]; m2[a] <- r[k]; k <- k + 1
                | Traced -> ()
            let mutable s = 0.0
            for tf in 0 .. traceSize - 1 do
                let mutable rem = tf
                for q in traced.Length - 1 .. -1 .. 0 do
                    t[q] <- rem % shape1[traced[q]]
                    rem <- rem / shape1[traced[q]]
                for q in 0 .. traced.Length - 1 do
                    m1[traced[q]] <- t[q]
                    m2[traced[q]] <- t[q]
                s <- s + entry m1 m2
            result[flat] <- s / float traceSize
        Tensor.create outShape result

    /// Example index and flat per-example element of an output multi-index (batch axis b, per-example shape s).
    let private locate (b: int) (s: int[]) (m: int[]) =
        let mutable flat = 0
        for a in 0 .. s.Length - 1 do
            flat <- flat * s[a] + (if a = b then 0 else m[a])
        m[b], flat

    /// <summary>The empirical NNGP and/or NTK of one finite network (neural_tangents'
    /// <c>empirical_kernel_fn(f, trace_axes, diagonal_axes)(x1, x2, get, params)</c>), for any output shape.</summary>
    /// <remarks>With outputs f(x1) of shape (N1, d…) and f(x2) of shape (N2, d…) (the batch axis is an output axis
    /// like any other), NNGP[…] = Σ_traced f(x1)[m1]·f(x2)[m2] / |traced| and NTK[…] = Σ_traced
    /// ⟨∂f(x1)[m1]/∂θ, ∂f(x2)[m2]/∂θ⟩ / |traced|, with the kernel's axes as <c>kernelShape</c> says: the defaults
    /// trace_axes = (-1,), diagonal_axes = () give (N1, N2) for (N, C) outputs; trace_axes = () gives the full
    /// (N1, N2, C, C) kernel; diagonal_axes = (0,) keeps only x1_i against x2_i. Gradients are pulled back once per
    /// output element of each example and kept factored (Dense never forms ∂W, as in <c>ntk</c>). f(x1) runs with
    /// <paramref name="ctx1"/> and f(x2) with <paramref name="ctx2"/> (neural_tangents' <c>**apply_fn_kwargs</c>,
    /// split by <c>splitContext</c>); every gradient replays its call's dropout masks and patterns.</remarks>
    /// <param name="ctx1">Side inputs (random key, e.g. "pattern") of f(x1).</param>
    /// <param name="ctx2">Side inputs of f(x2) (unused when x2 is None: f(x1) serves both).</param>
    /// <param name="layer">The network.</param>
    /// <param name="traceAxes">Output axes to trace over; neural_tangents' default is [| -1 |].</param>
    /// <param name="diagonalAxes">Output axes to take the diagonal of; default [||].</param>
    /// <param name="x1">First inputs.</param>
    /// <param name="x2">Second inputs, or None for x1.</param>
    /// <param name="get">Nngp, Ntk or Both.</param>
    /// <param name="params">The network's parameters.</param>
    /// <returns>(nngp, ntk), each Some when asked for.</returns>
    /// <exception cref="T:System.ArgumentException">when an axis is out of range, repeated, or both traced and
    /// diagonal, or when x1's and x2's outputs differ on a traced or diagonal axis.</exception>
    [<CompiledName("KernelFnWith")>]
    let kernelFnWith (ctx1: ApplyContext) (ctx2: ApplyContext) (layer: Layer) (traceAxes: int[]) (diagonalAxes: int[])
                     (x1: Tensor) (x2: Tensor option) (get: Get) (``params``: Params) : Tensor option * Tensor option =
        let p = ``params``
        let r1 = tapesAnyShape ctx1 layer p x1
        let r2 = match x2 with Some x -> tapesAnyShape ctx2 layer p x | None -> r1
        let b = r1.B
        if r1.Ys.Length = 0 || r2.Ys.Length = 0 then invalidArg "x1" "empirical kernel: x1 and x2 need at least one example"
        let s1, s2 = r1.Ys[0].Shape, r2.Ys[0].Shape
        let full (s: int[]) n = s |> Array.mapi (fun a d -> if a = b then n else d)
        let shape1, shape2 = full s1 r1.Ys.Length, full s2 r2.Ys.Length
        let rs = roles shape1.Length traceAxes diagonalAxes
        kernelShape shape1 shape2 traceAxes diagonalAxes |> ignore
        let nngp =
            if get = Ntk then None
            else
                let ys1, ys2 = r1.Ys, r2.Ys
                Some(contract shape1 shape2 rs (fun m1 m2 ->
                    let i, a = locate b s1 m1
                    let j, c = locate b s2 m2
                    ys1[i].Data[a] * ys2[j].Data[c]))
        let ntk =
            if not get.WantsNtk then None
            else
                let j1 = jacobians r1
                let j2 = if x2.IsSome then jacobians r2 else j1
                Some(contract shape1 shape2 rs (fun m1 m2 ->
                    let i, a = locate b s1 m1
                    let j, c = locate b s2 m2
                    gradDot (j1[i][a]) (j2[j][c])))
        nngp, ntk

    /// <summary>The empirical NNGP and/or NTK of one finite network (neural_tangents'
    /// <c>empirical_kernel_fn(f, trace_axes, diagonal_axes)(x1, x2, get, params)</c>) without a random key or side
    /// inputs; see <c>kernelFnWith</c>.</summary>
    /// <param name="layer">The network.</param>
    /// <param name="traceAxes">Output axes to trace over; neural_tangents' default is [| -1 |].</param>
    /// <param name="diagonalAxes">Output axes to take the diagonal of; default [||].</param>
    /// <param name="x1">First inputs.</param>
    /// <param name="x2">Second inputs, or None for x1.</param>
    /// <param name="get">Nngp, Ntk or Both.</param>
    /// <param name="params">The network's parameters.</param>
    /// <returns>(nngp, ntk), each Some when asked for.</returns>
    [<CompiledName("KernelFn")>]
    let kernelFn (layer: Layer) (traceAxes: int[]) (diagonalAxes: int[])
                 (x1: Tensor) (x2: Tensor option) (get: Get) (``params``: Params) : Tensor option * Tensor option =
        kernelFnWith ApplyContext.Empty ApplyContext.Empty layer traceAxes diagonalAxes x1 x2 get ``params``

    /// <summary>neural_tangents' <c>empirical_nngp_fn(f, trace_axes, diagonal_axes)(x1, x2, params)</c>.</summary>
    [<CompiledName("NngpFn")>]
    let nngpFn (layer: Layer) (traceAxes: int[]) (diagonalAxes: int[]) (x1: Tensor) (x2: Tensor option) (``params``: Params) : Tensor =
        (kernelFn layer traceAxes diagonalAxes x1 x2 Nngp ``params`` |> fst).Value

    /// <summary>neural_tangents' <c>empirical_ntk_fn(f, trace_axes, diagonal_axes)(x1, x2, params)</c>.</summary>
    [<CompiledName("NtkFn")>]
    let ntkFn (layer: Layer) (traceAxes: int[]) (diagonalAxes: int[]) (x1: Tensor) (x2: Tensor option) (``params``: Params) : Tensor =
        (kernelFn layer traceAxes diagonalAxes x1 x2 Ntk ``params`` |> snd).Value

    /// <summary>neural_tangents' <c>linearize(f, params)</c> for a network (see <c>Taylor.linearize</c>).</summary>
    [<CompiledName("Linearize")>]
    let linearize (layer: Layer) (params0: Params) : Params -> Tensor -> Tensor = Taylor.linearize layer params0

    /// <summary>neural_tangents' <c>taylor_expand(f, params, degree)</c> for a network, degrees 0, 1 and 2 (see
    /// <c>Taylor.taylorExpand</c>).</summary>
    [<CompiledName("TaylorExpand")>]
    let taylorExpand (layer: Layer) (params0: Params) (degree: int) : Params -> Tensor -> Tensor =
        Taylor.taylorExpand layer params0 degree
