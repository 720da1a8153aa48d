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

    /// The forward pass(es) of one input batch as blocks of the whole output f(x) (of shape <c>Shape</c>): with
    /// <c>B = Some b</c>, one block per example (size 1 on axis b of f(x), the axis that holds the examples); with
    /// <c>B = None</c>, one block, f(x) itself. <c>Pull k a</c> is the factored gradient ∂y_a/∂θ (leaves with
    /// parameters only, in tree order) of element a (flat, row-major) of block k.
    type private Recorded = { Ys: Tensor[]; Shape: int[]; B: int option; Pull: int -> int -> Factor list }

    let private factorOf (d: LayerDef) (ctx: ApplyContext) (p: Params) (x: Tensor) (ct: Tensor) =
        if Params.count p = 0 then [] else [ { Def = d; Ctx = ctx; Params = p; X = x; Ct = ct } ]

    /// Whether a layer of the network can reach across examples: LayerNorm over the batch axis, Index, DotGeneral
    /// and ImageResize, which name axes by number and so may name the batch axis (neural_tangents runs the batch
    /// through the network whole, so their outputs mix examples there too).
    let private mayMixExamples =
        Definitions.exists (function LayerNorm _ | Index _ | DotGeneral _ | ImageResize _ -> true | _ -> false)

    /// x's batch axis a with every example repeated: (…, n, …) → (…, 2n, …).
    let private twice (a: int) (x: Tensor) =
        let front = if a = 0 then x else Tensor.moveAxis a 0 x
        let shape = Array.copy front.Shape
        shape[0] <- 2 * shape[0]
        let doubled = Tensor.create shape (Array.append front.Data front.Data)
        if a = 0 then doubled else Tensor.moveAxis 0 a doubled

    /// <summary>The axis of f(x) that holds the examples: the one whose size follows the batch size, found by
    /// running f on x's first example and on two copies of it (neural_tangents' <c>init_fn</c> reads the output's
    /// batch axis the same way from <c>input_shape</c> (-1, …)). It is not the input's batch axis in general:
    /// Flatten(batch_axis_out=1) or a convolution's output spec move it.</summary>
    /// <exception cref="T:NeuralTangents.NeuralTangentsException">no single output axis follows the batch size
    /// (an Index that picks one example).</exception>
    let internal outputBatchAxis (ctx: ApplyContext) (layer: Layer) (p: Params) (x: Tensor) : int =
        let a = Axes.norm x.Rank (fst (Requirements.inputAxes x.Rank (Requirements.ofLayer layer)))
        let one = Axes.takeBatch a 0 x
        let y1 = ApplyFn.applyWith ctx layer p one
        let y2 = ApplyFn.applyWith ctx layer p (twice a one)
        let follows = [ if y1.Rank = y2.Rank then for k in 0 .. y1.Rank - 1 do if y1.Shape[k] = 1 && y2.Shape[k] = 2 then k ]
        match follows with
        | [ k ] when y1.Rank = y2.Rank && Array.forall2 (fun u v -> u = v) (Array.removeAt k y1.Shape) (Array.removeAt k y2.Shape) -> k
        | _ ->
            raise (NeuralTangentsException(
                ("empirical kernels: the output has shape " + (Shape.format y1.Shape) + " for one example and " + (Shape.format y2.Shape) + " for two, so no single output axis holds the examples; end the network with a layer that keeps the batch axis")))

    /// Records the forward pass of a batch. Without side inputs, and without a layer that may mix examples, the
    /// examples do not interact, so each is recorded and pulled back on its own (a backward pass costs one
    /// example) and placed along the output's own batch axis (<c>outputBatchAxis</c>). Otherwise the batch is
    /// recorded whole, as neural_tangents runs it, so that dropout masks (drawn over the whole batch), patterns and
    /// batch-axis normalisations are exactly the forward call's; each pullback then costs the batch, and the output
    /// is one block whatever its layout (neural_tangents' kernels read only the output's shape).
    let private record (ctx: ApplyContext) (layer: Layer) (p: Params) (x: Tensor) : Recorded =
        let axis = fst (Requirements.inputAxes x.Rank (Requirements.ofLayer layer))
        let a = Axes.norm x.Rank axis
        let n = x.Shape[a]
        let pullOf (tape: Tape) (shape: int[]) (el: int) =
            let e = Tensor.zeros shape
            e.Data[el] <- 1.0
            fst (Backward.pullback factorOf [] List.concat tape (Single e))
        if ctx.Rng.IsNone && ctx.Side.IsEmpty && not (mayMixExamples layer) then
            if n = 0 then { Ys = [||]; Shape = [||]; B = None; Pull = fun _ _ -> [] }
            else
                let tapes = Array.init n (fun i -> Backward.recordWith ctx layer p (Single(Axes.takeBatch a i x)))
                let ys = tapes |> Array.map (fun t -> ApplyFn.one layer t.Output)
                let b = outputBatchAxis ctx layer p x
                { Ys = ys; Shape = Array.updateAt b n ys[0].Shape; B = Some b; Pull = fun i el -> pullOf tapes[i] ys[i].Shape el }
        else
            let tape = Backward.recordWith ctx layer p (Single x)
            let y = ApplyFn.one layer tape.Output
            { Ys = [| y |]; Shape = y.Shape; B = None; Pull = fun _ el -> pullOf tape y.Shape el }

    /// <summary>The working set of one empirical kernel computation, in float64 values per part, counted before
    /// anything is recorded (<c>InitFn.footprint</c>): the recorded forward passes of x1 and x2 (every leaf's output,
    /// kept for the backward passes), the factored Jacobians of the NTK (per output element, the cotangents at the
    /// outputs of the layers with parameters: of one example when examples are recorded alone, of the whole batch
    /// when recorded whole; neural_tangents' Jacobian block is outputs × parameters, which the factored form
    /// avoids) and <paramref name="kernels"/> kernels of <paramref name="entries"/> entries (called with the output
    /// shapes of x1 and x2). The parameters are the caller's, already in memory, and not counted.</summary>
    let internal requirement (ctx: ApplyContext) (layer: Layer) (shape1: int[]) (shape2: int[] option) (wantsNtk: bool)
                             (kernels: int) (entries: int[] -> int[] -> int64) : (string * int64) list =
        let whole = not (ctx.Rng.IsNone && ctx.Side.IsEmpty && not (mayMixExamples layer))
        let a = Axes.norm shape1.Length (fst (Requirements.inputAxes shape1.Length (Requirements.ofLayer layer)))
        let part (shape: int[]) =
            let f = InitFn.footprint layer shape
            let n = int64 (max 1 shape[a])
            let outputs = defaultArg (Memory.product (f.Output |> Seq.map int64)) System.Int64.MaxValue
            let perBlock = if whole then f.GradientOutputs else (f.GradientOutputs + n - 1L) / n
            f.Output, f.Activations, (if wantsNtk then Memory.mulSat outputs perBlock else 0L)
        let o1, a1, g1 = part shape1
        let o2, a2, g2 = match shape2 with Some s -> part s | None -> o1, 0L, 0L
        [ "recorded activations", Memory.addSat a1 a2
          "factored Jacobians", Memory.addSat g1 g2
          "kernels", Memory.mulSat (int64 kernels) (entries o1 o2) ]

    /// <summary>Refuses an empirical kernel computation whose whole working set (<c>requirement</c>) does not fit
    /// <paramref name="budget"/> bytes (None: the free memory), before anything is recorded.</summary>
    let internal checkKernels (budget: int64 option) (ctx: ApplyContext) (layer: Layer) (x1: Tensor) (x2: Tensor option)
                              (wantsNtk: bool) (kernels: int) (entries: int[] -> int[] -> int64) =
        let empty (x: Tensor) = Array.contains 0 x.Shape
        if not (empty x1 || Option.exists empty x2) then
            let n (x: Tensor) = x.Shape[Axes.norm x.Rank (fst (Requirements.inputAxes x.Rank (Requirements.ofLayer layer)))]
            Memory.checkTotal budget
                ("the empirical kernels of N1 = " + (string (n x1)) + " by N2 = " + (string (n (defaultArg x2 x1))) + " inputs")
                (requirement ctx layer x1.Shape (x2 |> Option.map (fun x -> x.Shape)) wantsNtk kernels entries)
                "use fewer inputs at a time (batch_size), smaller widths, or trace more output axes"

    /// (N1, N2) kernel entries for outputs whose batch axis is first.
    let private gramEntries (o1: int[]) (o2: int[]) =
        let first (o: int[]) = if o.Length = 0 then 1L else int64 o[0]
        Memory.mulSat (first o1) (first o2)

    /// Per-example outputs of an (N, C) network and the factored gradient of element c of example i. A whole-batch
    /// recording is split along the output's batch axis, found by <c>outputBatchAxis</c> unless side inputs (a
    /// pattern of the batch's shape) forbid running one example; then it is taken to be axis 0.
    let private tapes (ctx: ApplyContext) (layer: Layer) (p: Params) (x: Tensor) : Tensor[] * (int -> int -> Factor list) =
        let r = record ctx layer p x
        if r.Shape.Length <> 2 && r.Ys.Length > 0 then
            raise (NeuralTangentsException(
                $"empirical kernels trace only the channel axis; the output has shape {Shape.format r.Shape}, end the network with Flatten and Dense to get (N, C), or use Empirical.kernelFn with trace_axes and diagonal_axes"))
        let b =
            match r.B with
            | Some b -> b
            | None when r.Ys.Length = 0 || not ctx.Side.IsEmpty -> 0
            | None -> outputBatchAxis ctx layer p x
        if b <> 0 then
            raise (NeuralTangentsException(
                ("empirical kernels: the output has shape " + (Shape.format r.Shape) + " with the examples on axis " + string b + ", but Empirical.kernels, nngp and ntk need (N, C); use Empirical.kernelFn, whose trace_axes and diagonal_axes name any layout (trace_axes [0] averages over the channels here)")))
        match r.B with
        | Some _ -> r.Ys, r.Pull
        | None when r.Ys.Length = 0 -> [||], r.Pull
        | None ->
            let y = r.Ys[0]
            let n = x.Shape[Axes.norm x.Rank (fst (Requirements.inputAxes x.Rank (Requirements.ofLayer layer)))]
            if y.Shape[0] <> n then
                raise (NeuralTangentsException(
                    ("empirical kernels: the output has shape " + (Shape.format y.Shape) + ", whose batch axis 0 does not hold the " + string n + " inputs; use Empirical.kernelFn")))
            let c = y.Shape[1]
            Array.init n (fun i -> Axes.takeBatch 0 i y), (fun i el -> r.Pull 0 (i * c + el))

    /// Factored gradients of every output element of every example: grads[i][c] lists the factors of
    /// ∂f_c(x_i)/∂θ in tree order (leaves with parameters only).
    let private jacobians (ys: Tensor[]) (pull: int -> int -> Factor list) =
        ys |> Array.mapi (fun i y -> Array.init y.Length (fun el -> pull i el))

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
        checkKernels None ApplyContext.Empty layer x1 x2 true 2 gramEntries
        let ys1, pull1 = tapes ApplyContext.Empty layer ``params`` x1
        let ys2, pull2 = match x2 with Some x -> tapes ApplyContext.Empty layer ``params`` x | None -> ys1, pull1
        let j1 = jacobians ys1 pull1
        let j2 = if x2.IsSome then jacobians ys2 pull2 else j1
        nngpOf ys1 ys2, ntkOf j1 j2

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
        checkKernels None ctx1 layer x1 x2 true 2 gramEntries
        let ys1, pull1 = tapes ctx1 layer ``params`` x1
        let ys2, pull2 = match x2 with Some x -> tapes ctx2 layer ``params`` x | None -> ys1, pull1
        let j1 = jacobians ys1 pull1
        let j2 = if x2.IsSome then jacobians ys2 pull2 else j1
        nngpOf ys1 ys2, ntkOf j1 j2

    /// <summary>The empirical NNGP f(x1)·f(x2)ᵀ / C of one network (neural_tangents' <c>empirical_nngp_fn</c>).</summary>
    /// <param name="layer">The network; its output must be (N, C).</param>
    /// <param name="params">Its parameters.</param>
    /// <param name="x1">First inputs.</param>
    /// <param name="x2">Second inputs, or None for x1.</param>
    /// <returns>(N1, N2).</returns>
    [<CompiledName("Nngp")>]
    let nngp (layer: Layer) (``params``: Params) (x1: Tensor) (x2: Tensor option) : Tensor =
        checkKernels None ApplyContext.Empty layer x1 x2 false 1 gramEntries
        let ys1 = fst (tapes ApplyContext.Empty layer ``params`` x1)
        let ys2 = match x2 with Some x -> fst (tapes ApplyContext.Empty layer ``params`` x) | None -> ys1
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
                    invalidArg param ((name + ": axis " + string a + " is out of range for an output of rank " + string rank + "; use an axis in [-" + string rank + ", " + string rank + ")"))
                n)
            // neural_tangents' canonicalize_axis takes the set: an axis named twice (1 and -1 of rank 2) is one axis.
            Array.distinct c
        let t = canon "traceAxes" "trace_axes" traceAxes
        let d = canon "diagonalAxes" "diagonal_axes" diagonalAxes
        match t |> Array.tryFind (fun a -> Array.contains a d) with
        | Some a -> invalidArg "diagonalAxes" ("axis " + string a + " is in both trace_axes " + (show traceAxes) + " and diagonal_axes " + (show diagonalAxes) + "; an axis is either traced or diagonal")
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
            invalidArg "x2" ("empirical kernel: f(x1) has shape " + Show.ints shape1 + " and f(x2) " + Show.ints shape2 + "; they need the same rank")
        let rs = roles shape1.Length traceAxes diagonalAxes
        rs |> Array.mapi (fun a r ->
            match r with
            | Outer -> [| shape1[a]; shape2[a] |]
            | Traced | Diagonal ->
                if shape1[a] <> shape2[a] then
                    invalidArg "x2" ("empirical kernel: output axis " + string a + " is traced or diagonal but has size " + (string (shape1[a])) + " for x1 and " + (string (shape2[a])) + " for x2")
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

    /// Block and flat element within it of a multi-index m of the whole output: (example m[b], m with m[b] = 0) when
    /// each example is a block along axis b, else (0, m).
    let private locate (r: Recorded) (m: int[]) =
        let s = r.Ys[0].Shape
        let mutable flat = 0
        match r.B with
        | Some b ->
            for a in 0 .. s.Length - 1 do
                flat <- flat * s[a] + (if a = b then 0 else m[a])
            m[b], flat
        | None ->
            for a in 0 .. s.Length - 1 do
                flat <- flat * s[a] + m[a]
            0, flat

    /// <summary>The empirical NNGP and/or NTK of one finite network (neural_tangents'
    /// <c>empirical_kernel_fn(f, trace_axes, diagonal_axes)(x1, x2, get, params)</c>), for any output shape.</summary>
    /// <remarks>With outputs f(x1) of shape (N1, d…) and f(x2) of shape (N2, d…) (the batch axis is an output axis
    /// like any other, wherever the network puts it: after Flatten(batch_axis_out=1) f(x) is (C, N) and trace_axes = ()
    /// gives (C, C, N1, N2)), NNGP[…] = Σ_traced f(x1)[m1]·f(x2)[m2] / |traced| and NTK[…] = Σ_traced
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
        let entries o1 o2 =
            defaultArg (Memory.product (kernelShape o1 o2 traceAxes diagonalAxes |> Seq.map int64)) System.Int64.MaxValue
        checkKernels None ctx1 layer x1 x2 get.WantsNtk (if get = Both then 2 else 1) entries
        let r1 = record ctx1 layer p x1
        let r2 = match x2 with Some x -> record ctx2 layer p x | None -> r1
        if r1.Ys.Length = 0 || r2.Ys.Length = 0 then invalidArg "x1" "empirical kernel: x1 and x2 need at least one example"
        let shape1, shape2 = r1.Shape, r2.Shape
        let rs = roles shape1.Length traceAxes diagonalAxes
        kernelShape shape1 shape2 traceAxes diagonalAxes |> ignore
        let nngp =
            if get = Ntk then None
            else
                let ys1, ys2 = r1.Ys, r2.Ys
                Some(contract shape1 shape2 rs (fun m1 m2 ->
                    let i, a = locate r1 m1
                    let j, c = locate r2 m2
                    ys1[i].Data[a] * ys2[j].Data[c]))
        let ntk =
            if not get.WantsNtk then None
            else
                let j1 = jacobians r1.Ys r1.Pull
                let j2 = if x2.IsSome then jacobians r2.Ys r2.Pull else j1
                Some(contract shape1 shape2 rs (fun m1 m2 ->
                    let i, a = locate r1 m1
                    let j, c = locate r2 m2
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
