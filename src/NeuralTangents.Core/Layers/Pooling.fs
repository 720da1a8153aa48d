namespace NeuralTangents.Layers

open System
open System.Numerics.Tensors
open NeuralTangents

/// The pooling layers of neural_tangents' `stax/linear.py` — AvgPool, SumPool (`_Pool`, `_pool_kernel`) and
/// GlobalAvgPool, GlobalSumPool (`_GlobalPool`) — their kernel rules, finite forward and backward passes, and (at the
/// end) each layer's definition. Pooling is linear and separable: along each spatial axis an output position is a
/// weighted sum of input positions (its "taps"), so the finite layer applies one small linear map per axis, its
/// pullback applies the transposed maps, and a covariance is pooled by applying the map on both sides of every pair.
module internal Pooling =

    /// The linear map of a pooling window along one spatial axis: output position o is Σ_t Weights[o][t]·x[Taps[o][t]].
    /// A circular window wider than the axis may list one input position twice; the taps are kept as listed.
    type AxisMap =
        { InSize: int
          OutSize: int
          Taps: int[][]
          Weights: float[][] }

    let private fail (msg: string) = raise (NeuralTangentsException msg)

    /// The map of one axis of size n for a window w with stride s (neural_tangents' `_Pool` apply_fn and
    /// `_pool_kernel`): VALID keeps windows inside the axis; SAME pads with zeros as lax does; CIRCULAR fills SAME's
    /// pads by wrapping around. Weights: 1 for sum pooling; for average pooling 1/w, or with <c>normalizeEdges</c>
    /// and SAME 1/(number of taps inside the axis) — so a zero-padded border is averaged over its real entries.
    /// A window is listed in O(min(w, n)): SAME lists only its taps inside the axis, and a CIRCULAR window wider than
    /// the axis lists each position once with its multiplicity folded into the weight (the same linear map, so a
    /// window of 2³¹ − 1 costs what one of n does). Positions are computed in int64 (SAME's padding of such a
    /// window overflows int32).
    let axisMap (name: string) (average: bool) (padding: Padding) (normalizeEdges: bool) (n: int) (w: int) (s: int) =
        let nL, wL, sL = int64 n, int64 w, int64 s
        let outSize, lo =
            match padding with
            | Padding.Valid ->
                if n < w then
                    fail ((name + ": a VALID window of " + string w + " does not fit in a spatial axis of size " + string n + "; use a smaller window or padding SAME"))
                (n - w) / s + 1, 0L
            | Padding.Same | Padding.Circular ->
                // lax's SAME padding: ⌈n/s⌉ outputs and max((out − 1)·s + w − n, 0) padded entries, the smaller half
                // before (`lax.padtype_to_pads`).
                let out = (nL + sL - 1L) / sL
                int out, max ((out - 1L) * sL + wL - nL) 0L / 2L
        let wrap (i: int64) = int (((i % nL) + nL) % nL)
        // Per output: the input positions and how many window entries read each.
        let listed =
            Array.init outSize (fun o ->
                let start = int64 o * sL - lo
                match padding with
                | Padding.Circular when wL > nL ->
                    // Every position is read ⌊w/n⌋ times, and the first w mod n from the window's start once more.
                    let full, rest = wL / nL, wL % nL
                    Array.init n (fun k -> wrap (start + int64 k)), Array.init n (fun k -> float (full + (if int64 k < rest then 1L else 0L)))
                | Padding.Circular -> Array.init w (fun j -> wrap (start + int64 j)), Array.create w 1.0
                | _ ->
                    let first, last = max start 0L, min (start + wL) nL
                    let len = int (max (last - first) 0L)
                    Array.init len (fun k -> int first + k), Array.create len 1.0)
        let taps = Array.map fst listed
        let weights =
            listed |> Array.map (fun (t, m) ->
                let v =
                    if not average then 1.0
                    elif normalizeEdges && padding = Padding.Same then 1.0 / float t.Length
                    else 1.0 / float w
                Array.map (fun c -> c * v) m)
        { InSize = n; OutSize = outSize; Taps = taps; Weights = weights }

    /// The map of a diagonal-spatial covariance, whose distinct positions are uncorrelated: output o is
    /// Σ_h c_h² K[h] with c_h = Σ_{t: tap_t = h} w_t the total weight of input position h in the window, since
    /// Var(Σ_h c_h x_h) = Σ_h c_h² Var(x_h). Taps are first merged by position. neural_tangents' diagonal rule (a
    /// reduce-window normalised twice, `_pool_kernel` then `_normalize`) is Σ_t w_t² K[tap_t]: the same when no
    /// position repeats, but a CIRCULAR window wider than its axis lists a position m > 1 times and there it gives
    /// m·w² instead of the exact (m·w)² (README, differences from neural_tangents).
    let squared (m: AxisMap) =
        let merged =
            Array.map2 (fun (taps: int[]) (ws: float[]) ->
                let order = taps |> Array.distinct
                let total = order |> Array.map (fun h -> Array.fold2 (fun acc t w -> if t = h then acc + w else acc) 0.0 taps ws)
                order, total |> Array.map (fun c -> c * c)) m.Taps m.Weights
        { m with Taps = Array.map fst merged; Weights = Array.map snd merged }

    /// Applies <c>m</c> along <c>axis</c> of a row-major buffer of shape <c>shape</c>: viewing it as
    /// (outer, InSize, inner), out[a, o, b] = Σ_t w_t·x[a, tap_t, b]. Rows of <c>inner</c> entries are combined with
    /// vector multiply-adds; the outer blocks are split across cores when the work pays for it.
    let contract (m: AxisMap) (axis: int) (shape: int[]) (x: float[]) : int[] * float[] =
        let outer = Array.fold (*) 1 shape[.. axis - 1]
        let inner = Array.fold (*) 1 shape[axis + 1 ..]
        let taps = m.Taps |> Array.sumBy Array.length
        let out = Array.zeroCreate (outer * m.OutSize * inner)
        Linalg.parallelRanges outer (float (taps * inner)) (fun lo hi ->
            for a in lo .. hi - 1 do
                let src = a * m.InSize * inner
                let dst = a * m.OutSize * inner
                if inner = 1 then
                    for o in 0 .. m.OutSize - 1 do
                        let t, w = m.Taps[o], m.Weights[o]
                        let mutable acc = 0.0
                        for j in 0 .. t.Length - 1 do acc <- acc + w[j] * x[src + t[j]]
                        out[dst + o] <- acc
                else
                    for o in 0 .. m.OutSize - 1 do
                        let t, w = m.Taps[o], m.Weights[o]
                        let row = Span(out, dst + o * inner, inner)
                        for j in 0 .. t.Length - 1 do
                            TensorPrimitives.MultiplyAdd(ReadOnlySpan(x, src + t[j] * inner, inner), w[j], ReadOnlySpan(out, dst + o * inner, inner), row))
        let s = Array.copy shape
        s[axis] <- m.OutSize
        s, out

    /// The transpose of <c>contract</c> (the pullback of the pooling along one axis): x̄[a, tap_t, b] += w_t·ȳ[a, o, b].
    let contractTranspose (m: AxisMap) (axis: int) (shape: int[]) (ct: float[]) : int[] * float[] =
        let outer = Array.fold (*) 1 shape[.. axis - 1]
        let inner = Array.fold (*) 1 shape[axis + 1 ..]
        let taps = m.Taps |> Array.sumBy Array.length
        let out = Array.zeroCreate (outer * m.InSize * inner)
        Linalg.parallelRanges outer (float (taps * inner)) (fun lo hi ->
            for a in lo .. hi - 1 do
                let src = a * m.OutSize * inner
                let dst = a * m.InSize * inner
                for o in 0 .. m.OutSize - 1 do
                    let t, w = m.Taps[o], m.Weights[o]
                    for j in 0 .. t.Length - 1 do
                        let row = Span(out, dst + t[j] * inner, inner)
                        TensorPrimitives.MultiplyAdd(ReadOnlySpan(ct, src + o * inner, inner), w[j], ReadOnlySpan(out, dst + t[j] * inner, inner), row))
        let s = Array.copy shape
        s[axis] <- m.InSize
        s, out

    // ---------------------------------------------------------------------------------------------
    // AvgPool / SumPool.

    /// The spatial axes of a finite tensor of rank <c>rank</c>: every axis but the batch and channel axes, in order.
    let private spatialAxes (name: string) (batchAxis: int) (channelAxis: int) (rank: int) =
        let b, c = Axes.norm rank batchAxis, Axes.norm rank channelAxis
        if b = c then fail ((name + ": batch_axis and channel_axis are both axis " + string b + " of a rank-" + string rank + " input"))
        [| for a in 0 .. rank - 1 do if a <> b && a <> c then yield a |]

    let private checkSpatial (name: string) (windowAxes: int) (spatial: int) =
        if windowAxes <> spatial then
            fail ((name + ": window_shape has " + string windowAxes + " axes but the input has " + string spatial + " spatial axes; give one window size per spatial axis"))

    /// The map of each spatial axis of a finite tensor of the given shape.
    let private finiteMaps (name: string) (average: bool) (p: PoolSpec) (normalizeEdges: bool) (shape: int[]) =
        let axes = spatialAxes name p.BatchAxis p.ChannelAxis shape.Length
        checkSpatial name p.WindowShape.Length axes.Length
        let w, s = List.toArray p.WindowShape, List.toArray p.Strides
        axes |> Array.mapi (fun i a -> a, axisMap name average p.Padding normalizeEdges shape[a] w[i] s[i])

    /// Output shape of the finite layer.
    let poolShape (name: string) (average: bool) (p: PoolSpec) (normalizeEdges: bool) (shape: int[]) =
        let out = Array.copy shape
        for a, m in finiteMaps name average p normalizeEdges shape do out[a] <- m.OutSize
        out

    /// The finite layer: each spatial axis pooled in turn (jax's `reduce_window` with lax's padding; neural_tangents'
    /// `_Pool` apply_fn).
    let poolForward (name: string) (average: bool) (p: PoolSpec) (normalizeEdges: bool) (x: Tensor) =
        let mutable shape, data = x.Shape, x.Data
        for a, m in finiteMaps name average p normalizeEdges x.Shape do
            let s, d = contract m a shape data
            shape <- s
            data <- d
        Tensor.create shape data

    /// Its pullback: the transposed map of each spatial axis.
    let poolBackward (name: string) (average: bool) (p: PoolSpec) (normalizeEdges: bool) (x: Tensor) (ct: Tensor) =
        let mutable shape, data = ct.Shape, ct.Data
        for a, m in finiteMaps name average p normalizeEdges x.Shape do
            let s, d = contractTranspose m a shape data
            shape <- s
            data <- d
        Tensor.create shape data

    /// AvgPool / SumPool on a kernel (neural_tangents' `_Pool.kernel_fn` and `_pool_kernel`). With P_a the map of
    /// spatial axis a, the full layout becomes K'[o, o', …] = Σ_{h, h'} P_a[o, h]·P_a[o', h']·K[h, h', …] on every
    /// pair of axes (the covariance of the pooled activations, pooling being linear), the NTK alike; the diagonal
    /// layout, valid when different positions are uncorrelated, becomes K'[o] = Σ_h c_h²·K[h] (<c>squared</c>). cov1/cov2 are pooled
    /// with their own batch axes. With <c>IsReversed</c> the stored spatial axes are in reverse order and take the
    /// window and strides reversed; the flag is kept.
    let poolKernel (name: string) (average: bool) (p: PoolSpec) (normalizeEdges: bool) (k: Kernel) : Kernel =
        let dims = Spatial.sizes k.DiagonalSpatial 2 k.Nngp.Shape
        checkSpatial name p.WindowShape.Length dims.Length
        let ns = dims.Length
        let w, s = List.toArray p.WindowShape, List.toArray p.Strides
        // Stored spatial axis a is input spatial axis order[a].
        let order a = if k.IsReversed then ns - 1 - a else a
        let maps = Array.init ns (fun a -> axisMap name average p.Padding normalizeEdges dims[a] w[order a] s[order a])
        let pool (batchNdim: int) (t: Tensor) =
            let mutable shape, data = t.Shape, t.Data
            for a in 0 .. ns - 1 do
                if k.DiagonalSpatial then
                    let sh, d = contract (squared maps[a]) (batchNdim + a) shape data
                    shape <- sh
                    data <- d
                else
                    for side in 0 .. 1 do
                        let sh, d = contract maps[a] (batchNdim + 2 * a + side) shape data
                        shape <- sh
                        data <- d
            Tensor.create shape data
        let covNdim = if k.DiagonalBatch then 1 else 2
        { k with
            Nngp = pool 2 k.Nngp
            Ntk = k.Ntk |> Option.map (pool 2)
            Cov1 = pool covNdim k.Cov1
            Cov2 = k.Cov2 |> Option.map (pool covNdim)
            Shape1 = poolShape name average p normalizeEdges k.Shape1
            Shape2 = poolShape name average p normalizeEdges k.Shape2 }

    // ---------------------------------------------------------------------------------------------
    // GlobalAvgPool / GlobalSumPool.

    /// (batch axis, channel axis) of a finite input and whether the batch axis comes first in the output.
    let private globalAxes (name: string) (g: GlobalPoolSpec) (rank: int) =
        let b, c = Axes.norm rank g.BatchAxis, Axes.norm rank g.ChannelAxis
        if b = c then fail ((name + ": batch_axis and channel_axis are both axis " + string b + " of a rank-" + string rank + " input"))
        b, c, b < c

    /// Output shape: the batch and channel axes, in their input order.
    let globalShape (name: string) (g: GlobalPoolSpec) (shape: int[]) =
        let b, c, batchFirst = globalAxes name g shape.Length
        if batchFirst then [| shape[b]; shape[c] |] else [| shape[c]; shape[b] |]

    /// For each entry of a finite input of the given shape, the entry of the pooled output it adds to.
    let private globalTargets (name: string) (g: GlobalPoolSpec) (shape: int[]) =
        let b, c, batchFirst = globalAxes name g shape.Length
        let stride (a: int) = Array.fold (*) 1 shape[a + 1 ..]
        let sb, sc = stride b, stride c
        let nb, nc = shape[b], shape[c]
        let total = Array.fold (*) 1 shape
        Array.init total (fun e ->
            let i, j = (e / sb) % nb, (e / sc) % nc
            if batchFirst then i * nc + j else j * nb + i)

    /// The finite layer (neural_tangents' `_GlobalPool` apply_fn): the sum, or mean, over every spatial position.
    let globalForward (name: string) (average: bool) (g: GlobalPoolSpec) (x: Tensor) =
        let outShape = globalShape name g x.Shape
        let targets = globalTargets name g x.Shape
        let out = Array.zeroCreate (Array.fold (*) 1 outShape)
        for e in 0 .. x.Length - 1 do out[targets[e]] <- out[targets[e]] + x.Data[e]
        if average then
            let scale = float out.Length / float (max 1 x.Length)
            for i in 0 .. out.Length - 1 do out[i] <- out[i] * scale
        Tensor.create outShape out

    /// The finite layer with a mask (neural_tangents' apply_fn with <c>mask</c>): the mean divides each output's sum
    /// by the number of its unmasked positions (at least 1); the sum and the unmasked call are <c>globalForward</c>.
    let globalForwardMasked (name: string) (average: bool) (g: GlobalPoolSpec) (mask: Tensor option) (x: Tensor) =
        match mask with
        | Some m when average ->
            let outShape = globalShape name g x.Shape
            let targets = globalTargets name g x.Shape
            let m = Masking.broadcastTo x.Shape m
            let out = Array.zeroCreate (Array.fold (*) 1 outShape)
            let visible = Array.zeroCreate out.Length
            for e in 0 .. x.Length - 1 do
                out[targets[e]] <- out[targets[e]] + x.Data[e]
                if m.Data[e] = 0.0 then visible[targets[e]] <- visible[targets[e]] + 1
            Tensor.create outShape (Array.map2 (fun s (v: int) -> s / float (max 1 v)) out visible)
        | _ -> globalForward name average g x

    /// Its pullback: every position receives the output cotangent (divided by the number of positions for the mean).
    let globalBackward (name: string) (average: bool) (g: GlobalPoolSpec) (x: Tensor) (ct: Tensor) =
        let targets = globalTargets name g x.Shape
        let scale = if average then float ct.Length / float (max 1 x.Length) else 1.0
        Tensor.create x.Shape (Array.init x.Length (fun e -> scale * ct.Data[targets[e]]))

    /// GlobalAvgPool / GlobalSumPool on a kernel (neural_tangents' `_GlobalPool.kernel_fn`). With S positions the
    /// pooled output is Σ_h x_h (sum) or Σ_h x_h / S (mean), so its covariance is the sum of the full layout over
    /// every pair (h, h') — divided by S² for the mean; in the diagonal layout, valid when different positions are
    /// uncorrelated, the sum of the S same-position entries, divided by S² for the mean. The spatial axes are gone:
    /// batch and channel become axes 0 and 1 in their input order, and the order of the spatial axes no longer
    /// matters (<c>IsReversed</c> = false).
    let globalKernel (name: string) (average: bool) (g: GlobalPoolSpec) (k: Kernel) : Kernel =
        let dims = Spatial.sizes k.DiagonalSpatial 2 k.Nngp.Shape
        let positions = float (Array.fold (*) 1 dims)
        let scale = if average then 1.0 / (positions * positions) else 1.0
        // With masks (neural_tangents' mean_and_var(mask=…)): the mean divides each block's sum by its number of
        // unmasked entries (at least 1) instead — u1·u2 pairs in the full layout — and, in the diagonal layout, by S.
        let m11, m12, m22 =
            if k.Mask1.IsNone && k.Mask2.IsNone then None, None, None else Masking.products k k.Mask1 k.Mask2
        let reduce (batchNdim: int) (masked: bool[] option) (t: Tensor) =
            let lead = t.Shape[.. batchNdim - 1]
            let outer = Array.fold (*) 1 lead
            let block = t.Length / max 1 outer
            let sum i = TensorPrimitives.Sum(ReadOnlySpan(t.Data, i * block, block))
            match masked with
            | Some f when average ->
                let perPosition = if k.DiagonalSpatial then 1.0 / positions else 1.0
                Tensor.create lead (Array.init outer (fun i ->
                    let mutable visible = 0
                    for e in i * block .. (i + 1) * block - 1 do if not f[e] then visible <- visible + 1
                    perPosition * sum i / float (max 1 visible)))
            | _ -> Tensor.create lead (Array.init outer (fun i -> scale * sum i))
        let covNdim = if k.DiagonalBatch then 1 else 2
        let _, _, batchFirst = globalAxes name g k.Shape1.Length
        { k with
            Nngp = reduce 2 m12 k.Nngp
            Ntk = k.Ntk |> Option.map (reduce 2 m12)
            Cov1 = reduce covNdim m11 k.Cov1
            Cov2 = k.Cov2 |> Option.map (reduce covNdim m22)
            IsReversed = false
            BatchAxis = (if batchFirst then 0 else 1)
            ChannelAxis = (if batchFirst then 1 else 0)
            Shape1 = globalShape name g k.Shape1
            Shape2 = globalShape name g k.Shape2 }

    // ---------------------------------------------------------------------------------------------
    // The definitions.

    /// AvgPool/SumPool masking (neural_tangents' <c>_Pool.mask_fn</c>, remask_kernel=True): one mask for all
    /// channels, strided through by <c>_pool_mask</c> (CIRCULAR has SAME's output positions).
    let private windowMask (name: string) (p: PoolSpec) =
        Masking.propagating true (fun m shape ->
            let b, c = Axes.norm shape.Length p.BatchAxis, Axes.norm shape.Length p.ChannelAxis
            Masking.checkChannelShared name c m
            let target = Array.copy shape
            target[c] <- 1
            let m = Masking.broadcastTo target m
            let spatial = [| 0 .. shape.Length - 1 |] |> Array.filter (fun a -> a <> b && a <> c)
            let perAxis (values: int list) =
                let v = List.toArray values
                Array.init shape.Length (fun a -> match Array.tryFindIndex ((=) a) spatial with Some i -> v[i] | None -> 1)
            Masking.pool (perAxis p.WindowShape) (perAxis p.Strides) (p.Padding <> Padding.Valid) m)

    /// GlobalAvgPool/GlobalSumPool masking (<c>_GlobalPool.mask_fn</c>, remask_kernel=False): one mask for all
    /// channels; the output is masked where every position is (jnp.all over the spatial axes).
    let private globalMask (name: string) (g: GlobalPoolSpec) =
        Masking.propagating false (fun m shape ->
            let b, c, _ = globalAxes name g shape.Length
            Masking.checkChannelShared name c m
            let spatial = [ 0 .. shape.Length - 1 ] |> List.filter (fun a -> a <> b && a <> c)
            let reduced = Masking.allKeep spatial m
            Tensor.reshape [| for a in 0 .. shape.Length - 1 do if a = b || a = c then yield reduced.Shape[a] |] reduced)

    let private window (name: string) (average: bool) (p: PoolSpec) (normalizeEdges: bool) (args: (string * ArgValue) list) : LayerDef =
        { Name = name
          Args = args
          // @requires(batch_axis, channel_axis, diagonal_spatial=Diagonal(input=MAYBE)): the diagonal layout is exact
          // only when different positions are uncorrelated, so the full one is chosen unless the caller asks.
          Requires =
            { BatchAxis = Some p.BatchAxis; ChannelAxis = Some p.ChannelAxis; Resets = false
              DiagonalBatch = None; DiagonalSpatial = Some { Input = Tri.Maybe; Output = Tri.No } }
          Kernel = Masking.kernel name (windowMask name p) (fun _ k -> poolKernel name average p normalizeEdges k)
          Init = fun _ shape -> poolShape name average p normalizeEdges shape, Params.none
          Apply = fun _ _ x -> poolForward name average p normalizeEdges x
          Vjp = fun _ _ x ct -> poolBackward name average p normalizeEdges x ct
          ParamVjp = fun _ _ _ _ -> Params.none
          GradDot = None
          Jvp = LinearInInput
          Mask = windowMask name p }

    let private poolArgs (p: PoolSpec) =
        [ "window_shape", IntsArg p.WindowShape
          "strides", IntsArg p.Strides
          "padding", StringArg p.Padding.Name ]

    /// AvgPool(window_shape, strides, padding, normalize_edges, batch_axis, channel_axis) (neural_tangents'
    /// <c>stax.AvgPool</c>).
    let avgPool (p: PoolSpec) (normalizeEdges: bool) : LayerDef =
        window "AvgPool" true p normalizeEdges
            (poolArgs p @ [ "normalize_edges", BoolArg normalizeEdges; "batch_axis", IntArg p.BatchAxis; "channel_axis", IntArg p.ChannelAxis ])

    /// SumPool(window_shape, strides, padding, batch_axis, channel_axis) (neural_tangents' <c>stax.SumPool</c>).
    let sumPool (p: PoolSpec) : LayerDef =
        window "SumPool" false p false (poolArgs p @ [ "batch_axis", IntArg p.BatchAxis; "channel_axis", IntArg p.ChannelAxis ])

    let private globalPool (name: string) (average: bool) (g: GlobalPoolSpec) : LayerDef =
        { Name = name
          Args = [ "batch_axis", IntArg g.BatchAxis; "channel_axis", IntArg g.ChannelAxis ]
          // @requires(batch_axis, channel_axis, diagonal_spatial=Diagonal(input=MAYBE, output=YES)); the output has a
          // layout of its own making (batch and channel only), so later layers add no input requirement.
          Requires =
            { BatchAxis = Some g.BatchAxis; ChannelAxis = Some g.ChannelAxis; Resets = true
              DiagonalBatch = None; DiagonalSpatial = Some { Input = Tri.Maybe; Output = Tri.Yes } }
          Kernel = Masking.kernel name (globalMask name g) (fun _ k -> globalKernel name average g k)
          Init = fun _ shape -> globalShape name g shape, Params.none
          Apply = fun ctx _ x -> globalForwardMasked name average g (ctx.Side.TryFind Masking.SideKey) x
          Vjp = fun _ _ x ct -> globalBackward name average g x ct
          ParamVjp = fun _ _ _ _ -> Params.none
          GradDot = None
          Jvp = LinearInInput
          Mask = globalMask name g }

    /// GlobalAvgPool(batch_axis, channel_axis) (neural_tangents' <c>stax.GlobalAvgPool</c>).
    let globalAvgPool (g: GlobalPoolSpec) = globalPool "GlobalAvgPool" true g

    /// GlobalSumPool(batch_axis, channel_axis) (neural_tangents' <c>stax.GlobalSumPool</c>).
    let globalSumPool (g: GlobalPoolSpec) = globalPool "GlobalSumPool" false g
