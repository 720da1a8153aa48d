namespace NeuralTangents.Layers

open System
open NeuralTangents
open NeuralTangents.Rules

/// The linear family, after neural_tangents' `stax/linear.py`: Dense, Flatten and Identity — their kernel rules,
/// finite forward and backward passes, and (at the end) each layer's definition.
module internal Linear =


    let private axisOf (shape: int[]) (axis: int) = if axis < 0 then axis + shape.Length else axis

    let private withChannels (shape: int[]) (axis: int) (c: int) =
        let s = Array.copy shape
        s[axisOf shape axis] <- c
        s

    /// Channel count after a Dense layer in the finite network: out_dim, times s[1] in the standard
    /// parameterization (the weight matrix is (s0·in, s1·out)).
    /// Checked in int64: the width must be a positive int32 like every axis of the finite network.
    let denseOutWidth (d: DenseSpec) =
        let s0, s1 = d.S
        if d.OutDim < 1 then
            raise (NeuralTangentsException $"Dense: out_dim must be a positive integer, got {string d.OutDim}")
        if s0 < 1 || s1 < 1 then
            raise (NeuralTangentsException("Dense: s must be two positive integers, got (" + string s0 + ", " + string s1 + ")"))
        match d.Parameterization with
        | Parameterization.Ntk -> d.OutDim
        | Parameterization.Standard ->
            let w = int64 d.OutDim * int64 s1
            if w > int64 System.Int32.MaxValue then
                raise (NeuralTangentsException(
                    ("Dense: the finite width out_dim·s[1] = " + string d.OutDim + "·" + string s1 + " = " + string w + " exceeds 2147483647; use a smaller out_dim or s[1]")))
            int w

    /// The Dense map on (nngp, ntk) as coefficients (see <c>dense</c> for the formulas).
    let densePre (d: DenseSpec) (k: Kernel) : Simd.DensePre =
        denseOutWidth d |> ignore // validates out_dim and s
        let w2 = d.WStd * d.WStd
        let b2 = match d.BStd with Some b -> b * b | None -> 0.0
        match d.Parameterization with
        | Parameterization.Ntk -> { W2 = w2; B2 = b2; FromOut = true; CN = 0.0; CB = 0.0 }
        | Parameterization.Standard ->
            let inWidth = float k.Shape1[axisOf k.Shape1 d.ChannelAxis] / float (fst d.S)
            { W2 = w2; B2 = b2; FromOut = false; CN = inWidth; CB = (if d.BStd.IsSome then 1.0 else 0.0) }

    /// Everything a Dense layer changes except nngp/ntk (left as they were): variances, shapes and flags.
    let denseMeta (d: DenseSpec) (k: Kernel) : Kernel =
        let w2 = d.WStd * d.WStd
        let b2 = match d.BStd with Some b -> b * b | None -> 0.0
        let fc = Tensor.affine w2 b2
        let width = denseOutWidth d
        { k with
            Cov1 = fc k.Cov1
            Cov2 = k.Cov2 |> Option.map fc
            IsGaussian = true
            IsInput = false
            Shape1 = withChannels k.Shape1 d.ChannelAxis width
            Shape2 = withChannels k.Shape2 d.ChannelAxis width }

    /// Dense (arXiv:1806.07572 for "ntk", arXiv:2001.07301 for "standard"); neural_tangents' `Dense.kernel_fn`.
    /// nngp' = W_std²·nngp + b_std² in both parameterizations;
    /// ntk:      ntk' = nngp' + W_std²·ntk;
    /// standard: ntk' = (N_in/s0)·nngp + W_std²·ntk (+1 when the layer has a bias, even for b_std = 0),
    /// with N_in the finite input width. With <c>inPlace</c> the pass overwrites k's nngp/ntk buffers (allowed only
    /// when the interpreter owns them: no other kernel shares them).
    let denseKernel (inPlace: bool) (d: DenseSpec) (k: Kernel) : Kernel =
        let pre = densePre d k
        let fresh (t: Tensor) = if inPlace then t.Data else Pages.uninitialized t.Length
        let nngpOut = fresh k.Nngp
        let ntkOut = k.Ntk |> Option.map fresh
        Simd.densePass pre.W2 pre.B2 pre.FromOut pre.CN pre.CB k.Nngp.Data (k.Ntk |> Option.map (fun t -> t.Data)) nngpOut ntkOut
        { denseMeta d k with
            Nngp = Tensor.create k.Nngp.Shape nngpOut
            Ntk = Option.map2 (fun (t: Tensor) o -> Tensor.create t.Shape o) k.Ntk ntkOut }

    /// Finite-network shape after Flatten: batch axis kept (at batch_axis_out), everything else multiplied out.
    let flattenShape (f: FlattenSpec) (shape: int[]) =
        let b = axisOf shape f.BatchAxis
        let n = shape[b]
        let rest = (Array.fold (*) 1 shape) / max 1 n
        if f.BatchAxisOut = 0 then [| n; rest |] else [| rest; n |]

    /// Flatten: the covariance of the flattened vector is the mean over positions of the same-position
    /// covariance (neural_tangents' `Flatten.kernel_fn`): the mean of the diagonal layout's entries, or of the full
    /// layout's diagonal pairs (h = h', its trace over each pair of axes divided by the axis size); the result is no
    /// longer known to be Gaussian and has no spatial axes, so, as in neural_tangents, it is not marked diagonal.
    let flattenKernel (f: FlattenSpec) (k: Kernel) : Kernel =
        let covNdim = if k.DiagonalBatch then 1 else 2
        let mean (lead: int) (t: Tensor) = Spatial.meanDiagonal k.DiagonalSpatial lead t
        { k with
            Nngp = mean 2 k.Nngp
            Ntk = k.Ntk |> Option.map (mean 2)
            Cov1 = mean covNdim k.Cov1
            Cov2 = k.Cov2 |> Option.map (mean covNdim)
            DiagonalSpatial = false
            IsGaussian = false
            IsReversed = false
            BatchAxis = f.BatchAxisOut
            ChannelAxis = 1 - f.BatchAxisOut
            Shape1 = flattenShape f k.Shape1
            Shape2 = flattenShape f k.Shape2 }

    // ---------------------------------------------------------------------------------------------
    // Finite networks (`Dense.apply_fn`, `Flatten.apply_fn`).


    /// (weight multiplier, bias multiplier) of the forward pass:
    /// ntk: out = W_std/√N_in · x·W + b_std · b;  standard: out = x·W/√s0 + b.
    let private scales (d: DenseSpec) (inWidth: int) =
        match d.Parameterization with
        | Parameterization.Ntk -> d.WStd / Math.Sqrt(float inWidth), defaultArg d.BStd 0.0
        | Parameterization.Standard -> 1.0 / Math.Sqrt(float (fst d.S)), 1.0

    /// Dense forward on a (rows × in) view, channels last: row r of the output is Σ_k scale·x[r,k]·W[k,:] + bScale·b.
    let private forwardRows (d: DenseSpec) (w: Tensor) (b: Tensor option) (x: Tensor) =
        let inW, outW = w.Shape[0], w.Shape[1]
        let c = x.Shape[x.Rank - 1]
        if c <> inW then
            raise (NeuralTangentsException("Dense: the input has " + string c + " channels but W has " + string inW + " rows"))
        // Parameters of another layer (another out_dim) would give an output of the wrong width without this.
        if outW <> denseOutWidth d then
            raise (NeuralTangentsException(
                ("Dense: W has " + string outW + " columns but this layer's width is " + (string (denseOutWidth d)) + " (out_dim " + string d.OutDim + "); the parameters come from another network, use the ones init_fn drew for this one")))
        match b with
        | Some b when b.Length <> outW ->
            raise (NeuralTangentsException("Dense: b has " + string b.Length + " entries but W has " + string outW + " columns; the parameters come from another network"))
        | _ -> ()
        let rows = x.Length / max 1 inW
        let scale, bScale = scales d inW
        let out = Array.zeroCreate (rows * outW)
        for r in 0 .. rows - 1 do
            let o = Span(out, r * outW, outW)
            for k in 0 .. inW - 1 do
                let v = scale * x.Data[r * inW + k]
                if v <> 0.0 then System.Numerics.Tensors.TensorPrimitives.MultiplyAdd(ReadOnlySpan(w.Data, k * outW, outW), v, ReadOnlySpan(out, r * outW, outW), o)
            match b with
            | Some b -> System.Numerics.Tensors.TensorPrimitives.MultiplyAdd(ReadOnlySpan b.Data, bScale, ReadOnlySpan(out, r * outW, outW), o)
            | None -> ()
        let shape = Array.copy x.Shape
        shape[shape.Length - 1] <- outW
        Tensor.create shape out

    /// Dense forward pass on inputs with the channel axis anywhere.
    let denseForward (d: DenseSpec) (w: Tensor) (b: Tensor option) (x: Tensor) =
        Axes.withChannelsLast d.ChannelAxis (forwardRows d w b) x

    /// The (rows × channels) view of a tensor: its channel axis moved last.
    let channelsLast (axis: int) (t: Tensor) =
        let a = Axes.norm t.Rank axis
        if a = t.Rank - 1 then t else Tensor.moveAxis a (t.Rank - 1) t

    /// Dense's input cotangent on channels-last views: ∂x[r,k] = scale·ct[r,:]·W[k,:].
    let denseInputGrad (d: DenseSpec) (w: Tensor) (xs: Tensor) (cs: Tensor) =
        let inW, outW = w.Shape[0], w.Shape[1]
        let rows = xs.Length / max 1 inW
        let scale, _ = scales d inW
        let dx = Array.zeroCreate xs.Length
        for r in 0 .. rows - 1 do
            let cr = ReadOnlySpan(cs.Data, r * outW, outW)
            for k in 0 .. inW - 1 do
                dx[r * inW + k] <- scale * System.Numerics.Tensors.TensorPrimitives.Dot(cr, ReadOnlySpan(w.Data, k * outW, outW))
        Tensor.create xs.Shape dx

    /// Dense's parameter gradients on channels-last views:
    /// ∂W[k,:] = scale·Σ_r x[r,k]·ct[r,:],  ∂b = bScale·Σ_r ct[r,:].
    let denseParamGrads (d: DenseSpec) (w: Tensor) (b: Tensor option) (xs: Tensor) (cs: Tensor) =
        let inW, outW = w.Shape[0], w.Shape[1]
        let rows = xs.Length / max 1 inW
        let scale, bScale = scales d inW
        let dw = Array.zeroCreate (inW * outW)
        let db = Array.zeroCreate outW
        for r in 0 .. rows - 1 do
            let cr = ReadOnlySpan(cs.Data, r * outW, outW)
            for k in 0 .. inW - 1 do
                let v = scale * xs.Data[r * inW + k]
                if v <> 0.0 then
                    System.Numerics.Tensors.TensorPrimitives.MultiplyAdd(cr, v, ReadOnlySpan(dw, k * outW, outW), Span(dw, k * outW, outW))
            System.Numerics.Tensors.TensorPrimitives.Add(ReadOnlySpan db, cr, Span db)
        Tensor.create w.Shape dw, b |> Option.map (fun b -> Tensor.create b.Shape (Array.map (fun v -> bScale * v) db))

    /// Contribution of one Dense layer to ⟨∂f_a/∂θ, ∂f_b/∂θ⟩ from its channels-last inputs x and output cotangents
    /// ct of two backward passes, without forming ∂W (neural_tangents' structured derivatives):
    /// scale²·Σ_{r,r'} (x_a[r]·x_b[r'])(ct_a[r]·ct_b[r']) + bScale²·(Σ_r ct_a[r])·(Σ_r' ct_b[r']) with a bias.
    let denseGradDot (d: DenseSpec) (inW: int) (hasBias: bool) (xa: Tensor) (ca: Tensor) (xb: Tensor) (cb: Tensor) =
        let outW = ca.Shape[ca.Rank - 1]
        let ra, rb = ca.Length / outW, cb.Length / outW
        let scale, bScale = scales d inW
        let dot (u: float[]) i (v: float[]) j len =
            System.Numerics.Tensors.TensorPrimitives.Dot(ReadOnlySpan(u, i * len, len), ReadOnlySpan(v, j * len, len))
        let mutable w = 0.0
        for r in 0 .. ra - 1 do
            for r' in 0 .. rb - 1 do
                let cc = dot ca.Data r cb.Data r' outW
                if cc <> 0.0 then w <- w + dot xa.Data r xb.Data r' inW * cc
        let bias =
            if not hasBias then 0.0
            else
                let sum (c: Tensor) rows =
                    let s = Array.zeroCreate outW
                    for r in 0 .. rows - 1 do
                        System.Numerics.Tensors.TensorPrimitives.Add(ReadOnlySpan s, ReadOnlySpan(c.Data, r * outW, outW), Span s)
                    s
                System.Numerics.Tensors.TensorPrimitives.Dot(ReadOnlySpan(sum ca ra), ReadOnlySpan(sum cb rb))
        scale * scale * w + bScale * bScale * bias

    /// Flatten forward: the batch axis moved to position 0 (batch_axis_out = 0) or last (1), then reshaped to
    /// (N, rest) or (rest, N).
    let flattenForward (f: FlattenSpec) (x: Tensor) =
        let b = Axes.norm x.Rank f.BatchAxis
        let target = if f.BatchAxisOut = 0 then 0 else x.Rank - 1
        let moved = if b = target then x else Tensor.moveAxis b target x
        Tensor.reshape (flattenShape f x.Shape) moved

    /// Flatten backward: the cotangent reshaped to the moved input shape, then the batch axis moved back.
    let flattenBackward (f: FlattenSpec) (x: Tensor) (ct: Tensor) =
        let b = Axes.norm x.Rank f.BatchAxis
        let target = if f.BatchAxisOut = 0 then 0 else x.Rank - 1
        let movedShape =
            if b = target then x.Shape
            else
                let order = [ 0 .. x.Rank - 1 ] |> List.filter ((<>) b) |> List.toArray |> Array.insertAt target b
                order |> Array.map (fun ax -> x.Shape[ax])
        let c = Tensor.create movedShape ct.Data
        if b = target then c else Tensor.moveAxis target b c

    // ---------------------------------------------------------------------------------------------
    // The definitions: everything each layer is, in one place.

    let private wrongParams (name: string) =
        invalidArg "params" $"{name}: the parameters do not match the layer tree (use the tree InitFn.init returns)"

    /// Dense's (W, b) from its parameter leaf.
    let private denseParams (p: Params) =
        match p with
        | Leaf [ w ] -> w, None
        | Leaf [ w; b ] -> w, Some b
        | _ -> wrongParams "Dense"

    /// Dense's masking (neural_tangents' <c>Dense.mask_fn</c>, remask_kernel=True): one affine map per position, so a
    /// position is masked when all its channels are; its bias makes masked outputs non-zero, hence the remask.
    let private denseMask (d: DenseSpec) = Masking.propagating true (fun m _ -> Masking.collapseChannel d.ChannelAxis m)

    /// Flatten's masking (<c>Flatten.mask_fn</c>, remask_kernel=False): the mask broadcast to the input and flattened
    /// as the activations are.
    let private flattenMask (f: FlattenSpec) =
        Masking.propagating false (fun m shape -> flattenForward f (Masking.broadcastTo shape m))

    /// Dense(out_dim, W_std, b_std, batch_axis, channel_axis, parameterization, s) (neural_tangents'
    /// <c>stax.Dense</c>). Init: W (in, out·s1) of N(0, 1) samples from the key's split 0, b of N(0, 1) from split 1;
    /// the standard parameterization scales W by W_std/√(in/s0) and b by b_std.
    let dense (d: DenseSpec) : LayerDef =
        { Name = "Dense"
          Args =
            [ "out_dim", IntArg d.OutDim
              "W_std", FloatArg d.WStd
              "b_std", OptFloatArg d.BStd
              "batch_axis", IntArg d.BatchAxis
              "channel_axis", IntArg d.ChannelAxis
              "parameterization", StringArg(match d.Parameterization with Parameterization.Ntk -> "ntk" | Parameterization.Standard -> "standard")
              "s", IntsArg [ fst d.S; snd d.S ] ]
          // @requires(batch_axis, channel_axis, diagonal_spatial=Diagonal()): affine on every entry, any layout.
          Requires =
            { BatchAxis = Some d.BatchAxis; ChannelAxis = Some d.ChannelAxis; Resets = false
              DiagonalBatch = None; DiagonalSpatial = Some Diagonal.defaults }
          Kernel = Masking.kernel "Dense" (denseMask d) (fun inPlace k -> denseKernel inPlace d k)
          Init =
            fun key shape ->
                let a = Axes.norm shape.Length d.ChannelAxis
                let inW = shape[a]
                let outW = denseOutWidth d
                let wScale, bScale =
                    match d.Parameterization with
                    | Parameterization.Ntk -> 1.0, 1.0
                    | Parameterization.Standard -> d.WStd / Math.Sqrt(float inW / float (fst d.S)), defaultArg d.BStd 0.0
                let w =
                    Memory.parameter "Dense" "weight matrix" [| inW; outW |] (fun n ->
                        let w = Rng.normals (Rng.split 0 key) n
                        if wScale <> 1.0 then for i in 0 .. w.Length - 1 do w[i] <- wScale * w[i]
                        w)
                let b =
                    d.BStd |> Option.map (fun _ ->
                        let bShape = Array.create shape.Length 1
                        bShape[a] <- outW
                        Memory.parameter "Dense" "bias" bShape (fun n -> Rng.normals (Rng.split 1 key) n |> Array.map (fun x -> bScale * x)))
                let outShape = Array.copy shape
                outShape[a] <- outW
                outShape, Leaf(w :: Option.toList b)
          Apply = fun _ p x -> let w, b = denseParams p in denseForward d w b x
          Vjp =
            fun _ p x ct ->
                let w, _ = denseParams p
                let dx = denseInputGrad d w (channelsLast d.ChannelAxis x) (channelsLast d.ChannelAxis ct)
                let a = Axes.norm x.Rank d.ChannelAxis
                if a = x.Rank - 1 then dx else Tensor.moveAxis (x.Rank - 1) a dx
          ParamVjp =
            fun _ p x ct ->
                let w, b = denseParams p
                let dw, db = denseParamGrads d w b (channelsLast d.ChannelAxis x) (channelsLast d.ChannelAxis ct)
                Leaf(dw :: Option.toList db)
          GradDot =
            Some(fun p _ xa ca _ xb cb ->
                let w, b = denseParams p
                let last = channelsLast d.ChannelAxis
                denseGradDot d w.Shape[0] b.IsSome (last xa) (last ca) (last xb) (last cb))
          // Affine in (W, b) and bilinear in (W, x): d(scale·xW + bScale·b) = scale·(dx·W + x·dW) + bScale·db.
          Jvp =
            Tangent(fun _ p dp x dx ->
                let w, _ = denseParams p
                let dw, db = denseParams dp
                Tensor.add (denseForward d w None dx) (denseForward d dw db x))
          Mask = denseMask d }

    /// Flatten(batch_axis, batch_axis_out) (neural_tangents' <c>stax.Flatten</c>).
    let flatten (f: FlattenSpec) : LayerDef =
        { Name = "Flatten"
          Args = [ "batch_axis", IntArg f.BatchAxis; "batch_axis_out", IntArg f.BatchAxisOut ]
          // @requires(batch_axis, channel_axis=None, diagonal_spatial=Diagonal(output=YES)): only same-position
          // covariances reach the flattened output, so everything before may be diagonal.
          Requires =
            { BatchAxis = Some f.BatchAxis; ChannelAxis = None; Resets = true
              DiagonalBatch = None; DiagonalSpatial = Some { Input = Tri.Yes; Output = Tri.Yes } }
          Kernel = Masking.kernel "Flatten" (flattenMask f) (fun _ k -> flattenKernel f k)
          Init = fun _ shape -> flattenShape f shape, Params.none
          Apply = fun _ _ x -> flattenForward f x
          Vjp = fun _ _ x ct -> flattenBackward f x ct
          ParamVjp = fun _ _ _ _ -> Params.none
          GradDot = None
          Jvp = LinearInInput
          Mask = flattenMask f }

    /// Identity (neural_tangents' <c>stax.Identity</c>): everything passes through unchanged.
    let identity : LayerDef =
        { Name = "Identity"
          Args = []
          // neural_tangents' Identity states no requirement.
          Requires = { BatchAxis = None; ChannelAxis = None; Resets = false; DiagonalBatch = None; DiagonalSpatial = None }
          Kernel = fun _ k -> k
          Init = fun _ shape -> shape, Params.none
          Apply = fun _ _ x -> x
          Vjp = fun _ _ _ ct -> ct
          ParamVjp = fun _ _ _ _ -> Params.none
          GradDot = None
          Jvp = LinearInInput
          Mask = Masking.identity false }
