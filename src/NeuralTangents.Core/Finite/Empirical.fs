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

    // ---- empirical_kernel_fn with trace_axes and diagonal_axes -------------------------------------------------

    /// Per-example forward tapes for any output shape, and the output's batch axis (the network's batch axis on
    /// the output's rank; each example's output must have size 1 there).
    let private tapesAnyShape (layer: Layer) (p: Params) (x: Tensor) =
        let axis = defaultArg (Requirements.ofLayer layer).BatchAxis 0
        let a = Axes.norm x.Rank axis
        let recorded =
            Array.init x.Shape[a] (fun i ->
                let t = Backward.record layer p (Single(Axes.takeBatch a i x))
                t, ApplyFn.one layer t.Output)
        let b = if recorded.Length = 0 then 0 else Axes.norm (snd recorded[0]).Rank axis
        recorded |> Array.iter (fun (_, y) ->
            if y.Shape[b] <> 1 then
                raise (NeuralTangentsException(
                    sprintf "empirical kernels: the output of one example has shape %A, expected size 1 on the batch axis %d" y.Shape b)))
        recorded, b

    /// What each output axis becomes in the kernel (neural_tangents' _ntk_shape): traced axes are summed over
    /// and absent, diagonal axes appear once, every other axis twice (f(x1)'s copy, then f(x2)'s).
    type private AxisRole =
        | Traced
        | Diagonal
        | Outer

    let private roles (rank: int) (traceAxes: int[]) (diagonalAxes: int[]) =
        let canon (name: string) (axes: int[]) =
            if isNull axes then nullArg name
            let c = axes |> Array.map (fun a ->
                let n = if a < 0 then a + rank else a
                if n < 0 || n >= rank then
                    invalidArg name (sprintf "empirical kernel: axis %d is out of range for an output of rank %d; use an axis in [-%d, %d)" a rank rank rank)
                n)
            if (Array.distinct c).Length <> c.Length then
                invalidArg name (sprintf "empirical kernel: %s %A names an axis twice" name axes)
            c
        let t = canon "traceAxes" traceAxes
        let d = canon "diagonalAxes" diagonalAxes
        match t |> Array.tryFind (fun a -> Array.contains a d) with
        | Some a -> invalidArg "diagonalAxes" (sprintf "empirical kernel: axis %d is in both trace_axes %A and diagonal_axes %A; an axis is either traced or diagonal" a traceAxes diagonalAxes)
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
    /// output element of each example and kept factored (Dense never forms ∂W, as in <c>ntk</c>).</remarks>
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
    [<CompiledName("KernelFn")>]
    let kernelFn (layer: Layer) (traceAxes: int[]) (diagonalAxes: int[])
                 (x1: Tensor) (x2: Tensor option) (get: Get) (``params``: Params) : Tensor option * Tensor option =
        let p = ``params``
        let r1, b = tapesAnyShape layer p x1
        let r2 = match x2 with Some x -> fst (tapesAnyShape layer p x) | None -> r1
        if r1.Length = 0 || r2.Length = 0 then invalidArg "x1" "empirical kernel: x1 and x2 need at least one example"
        let s1, s2 = (snd r1[0]).Shape, (snd r2[0]).Shape
        let full (s: int[]) n = s |> Array.mapi (fun a d -> if a = b then n else d)
        let shape1, shape2 = full s1 r1.Length, full s2 r2.Length
        let rs = roles shape1.Length traceAxes diagonalAxes
        kernelShape shape1 shape2 traceAxes diagonalAxes |> ignore
        let nngp =
            if get = Ntk then None
            else
                let ys1, ys2 = Array.map snd r1, Array.map snd r2
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
