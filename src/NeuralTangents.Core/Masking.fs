namespace NeuralTangents

/// <summary>How one layer treats masked inputs (neural_tangents' <c>supports_masking(remask_kernel)</c> and the
/// layer's <c>mask_fn</c>). A mask is a tensor of the activations' rank holding 1 where the entry is masked and 0
/// where it is visible; each axis has the activations' size or 1 (broadcast), as neural_tangents' boolean masks.</summary>
type MaskRule =
    { /// neural_tangents' <c>mask_fn(mask, input_shape)</c>: the output's mask from the input's mask and the input
      /// shape. The identity for layers that keep positions (activations, Dropout, LayerNorm).
      Propagate: Tensor -> int[] -> Tensor
      /// neural_tangents' <c>remask_kernel</c>: after the rule, zero every covariance between two entries of which
      /// one is masked (layers that do not map a zero input to a zero output: Dense's bias, Erf's shift…).
      Remask: bool
      /// Some reason when this layer cannot take masked inputs here; the kernel and apply interpreters refuse then.
      Unsupported: string option }

/// <summary>Masking (neural_tangents' <c>mask_constant</c>, <c>MaskedArray</c>, <c>Kernel.mask</c> and
/// <c>_get_mask_prods</c>): entries of the inputs equal to the mask constant are zeroed and excluded from every
/// layer that pools or normalises over positions; every covariance that involves a masked entry is zero.</summary>
[<RequireQualifiedAccess>]
module Masking =

    let private fail (msg: string) = raise (NeuralTangentsException msg)

    /// <summary>The name under which the apply interpreter hands a layer its input's mask (<c>ApplyContext.Side</c>),
    /// neural_tangents' <c>apply_fn(…, mask=…)</c> keyword.</summary>
    [<Literal>]
    let SideKey = "mask"

    let private norm (rank: int) (a: int) = if a < 0 then a + rank else a

    /// <summary>A layer whose mask passes through unchanged (neural_tangents' default <c>mask_fn</c>).</summary>
    let identity (remask: bool) : MaskRule = { Propagate = (fun m _ -> m); Remask = remask; Unsupported = None }

    /// <summary>A layer with its own <c>mask_fn</c>.</summary>
    let propagating (remask: bool) (f: Tensor -> int[] -> Tensor) : MaskRule = { Propagate = f; Remask = remask; Unsupported = None }

    /// <summary>A layer that cannot take masks; <paramref name="reason"/> names the layer and the fix.</summary>
    let unsupported (reason: string) : MaskRule = { Propagate = (fun m _ -> m); Remask = false; Unsupported = Some reason }

    /// <summary>The mask of inputs <paramref name="x"/>: 1 where x equals <paramref name="maskConstant"/> (where x is
    /// NaN for a NaN constant, as neural_tangents' <c>_get_masked_array</c>), element by element.</summary>
    let ofInputs (maskConstant: float) (x: Tensor) : Tensor =
        let isMasked = if System.Double.IsNaN maskConstant then System.Double.IsNaN else (fun v -> v = maskConstant)
        Tensor.create (Array.copy x.Shape) (x.Data |> Array.map (fun v -> if isMasked v then 1.0 else 0.0))

    /// Strides of a row-major shape.
    let private rowStrides (shape: int[]) =
        let s = Array.zeroCreate shape.Length
        let mutable acc = 1
        for a in shape.Length - 1 .. -1 .. 0 do
            s[a] <- acc
            acc <- acc * shape[a]
        s

    /// <summary>The mask broadcast to <paramref name="shape"/> (numpy's <c>broadcast_to</c>: each axis of the mask
    /// has the shape's size or 1).</summary>
    let broadcastTo (shape: int[]) (m: Tensor) : Tensor =
        if m.Shape = shape then m
        else
            if m.Rank <> shape.Length || Array.exists2 (fun a b -> a <> b && a <> 1) m.Shape shape then
                fail $"a mask of shape {Shape.format m.Shape} does not broadcast to the activations' shape {Shape.format shape}"
            let ms = rowStrides m.Shape
            let src = Array.init shape.Length (fun a -> if m.Shape[a] = 1 then 0 else ms[a])
            let os = rowStrides shape
            let total = Array.fold (*) 1 shape
            Tensor.create (Array.copy shape)
                (Array.init total (fun e ->
                    let mutable off = 0
                    for a in 0 .. shape.Length - 1 do
                        off <- off + ((e / os[a]) % shape[a]) * src[a]
                    m.Data[off]))

    /// <summary>x with its masked entries set to zero (neural_tangents' <c>utils.mask</c>).</summary>
    let zero (m: Tensor) (x: Tensor) : Tensor =
        let b = broadcastTo x.Shape m
        Tensor.create (Array.copy x.Shape) (Array.map2 (fun v f -> if f <> 0.0 then 0.0 else v) x.Data b.Data)

    /// <summary>Reduces the mask along <paramref name="axes"/> with "all" (an output entry is masked only when every
    /// entry it reduces is), keeping each reduced axis with size 1 (numpy's <c>all(…, keepdims=True)</c>).</summary>
    let allKeep (axes: int list) (m: Tensor) : Tensor =
        let axes = axes |> List.map (norm m.Rank) |> Set.ofList
        let outShape = m.Shape |> Array.mapi (fun a d -> if axes.Contains a then 1 else d)
        let os = rowStrides outShape
        let ms = rowStrides m.Shape
        let out = Array.create (Array.fold (*) 1 outShape) 1.0
        for e in 0 .. m.Length - 1 do
            if m.Data[e] = 0.0 then
                let mutable o = 0
                for a in 0 .. m.Rank - 1 do
                    if not (axes.Contains a) then o <- o + ((e / ms[a]) % m.Shape[a]) * os[a]
                out[o] <- 0.0
        Tensor.create outShape out

    /// <summary>neural_tangents' <c>jnp.all(mask, axis=channel_axis, keepdims=True)</c>: a position is masked when
    /// all its channels are (Dense, Conv and attention apply one map per position).</summary>
    let collapseChannel (channelAxis: int) (m: Tensor) = allKeep [ channelAxis ] m

    /// <summary>neural_tangents' <c>_check_is_implemented</c>: pooling layers need the same mask on every channel.</summary>
    let checkChannelShared (name: string) (channelAxis: int) (m: Tensor) =
        if m.Shape[norm m.Rank channelAxis] <> 1 then
            fail $"{name}: different channel-wise masks as inputs to pooling layers are not supported (mask shape {Shape.format m.Shape}); put a Dense or Conv layer before it, which collapses the mask over channels"

    /// <summary>The mask as flags per (input, position), positions in the kernel's spatial order (row-major over the
    /// spatial axes, reversed when the kernel is), from a mask whose channel axis has size 1 (neural_tangents'
    /// <c>_get_mask_prods.reshape</c>).</summary>
    let private perPosition (k: Kernel) (shape: int[]) (m: Tensor) : bool[] =
        let rank = shape.Length
        let b, c = norm rank k.BatchAxis, norm rank k.ChannelAxis
        if m.Shape[c] <> 1 then
            fail $"different channel-wise masks are not supported for infinite-width layers (mask shape {Shape.format m.Shape}); put a Dense or Conv layer first, which collapses the mask over channels (neural_tangents raises the same)"
        let target = Array.copy shape
        target[c] <- 1
        let full = broadcastTo target m
        // (N, spatial…, 1) then drop the channel.
        let moved = full |> Tensor.moveAxis c (rank - 1)
        let moved = moved |> Tensor.moveAxis (if b > c then b - 1 else b) 0
        let spatial = moved.Shape[1 .. rank - 2]
        let moved =
            if k.IsReversed && spatial.Length > 1 then
                Tensor.permute (Array.concat [ [| 0 |]; Array.init spatial.Length (fun a -> spatial.Length - a); [| rank - 1 |] ]) moved
            else moved
        moved.Data |> Array.map (fun v -> v <> 0.0)

    /// <summary>The mask of activations of <paramref name="shape"/> as flags per (input, position), positions in the
    /// kernel's spatial order (see <c>products</c>); the mask's channel axis must have size 1.</summary>
    let positions (k: Kernel) (shape: int[]) (m: Tensor) : bool[] = perPosition k shape m

    /// For every entry of a covariance tensor (batchNdim leading batch axes, then the spatial layout): whether its
    /// first entry (input i, position p) is masked in fa or its second (input j, position q) in fb.
    let private pairMasked (diagonalSpatial: bool) (batchNdim: int) (shape: int[]) (fa: bool[]) (fb: bool[]) : bool[] =
        let dims = Spatial.sizes diagonalSpatial batchNdim shape
        let s = Array.fold (*) 1 dims
        let n1 = shape[0]
        let n2 = if batchNdim = 2 then shape[1] else 1
        let p, q = if diagonalSpatial then Array.init s id, Array.init s id else Spatial.pairIndices dims
        let block = p.Length
        let out = Array.zeroCreate (n1 * n2 * block)
        for i in 0 .. n1 - 1 do
            for j in 0 .. n2 - 1 do
                let j' = if batchNdim = 2 then j else i
                let off = (i * n2 + j) * block
                for e in 0 .. block - 1 do
                    out[off + e] <- fa[i * s + p[e]] || fb[j' * s + q[e]]
        out

    /// <summary>neural_tangents' <c>_get_mask_prods</c>: for cov1, nngp and cov2 (in this kernel's layout), whether
    /// each entry involves a masked entry. None where neither side has a mask.</summary>
    let products (k: Kernel) (m1: Tensor option) (m2: Tensor option) : bool[] option * bool[] option * bool[] option =
        let f1 = m1 |> Option.map (perPosition k k.Shape1)
        // neural_tangents' outer_prod(x, None) takes y = x: with x2 = x1 (mask2 None) x2's mask is x1's.
        let f2 = match m2 with Some m -> Some(perPosition k k.Shape2 m) | None -> f1
        let visible (shape: int[]) (batchNdim: int) =
            let dims = Spatial.sizes k.DiagonalSpatial batchNdim shape
            Array.create (shape[0] * Array.fold (*) 1 dims) false
        let covNdim = if k.DiagonalBatch then 1 else 2
        let prod (a: bool[] option) (b: bool[] option) (shape: int[]) (batchNdim: int) =
            match a, b with
            | None, None -> None
            | _ ->
                let fa = a |> Option.defaultWith (fun () -> visible shape batchNdim)
                let fb = b |> Option.defaultWith (fun () ->
                    let s2 = Array.copy shape
                    if batchNdim = 2 then s2[0] <- shape[1]
                    visible s2 batchNdim)
                Some(pairMasked k.DiagonalSpatial batchNdim shape fa fb)
        let m11 = prod f1 f1 k.Cov1.Shape covNdim
        let m22 = match k.Cov2 with Some c2 -> prod f2 f2 c2.Shape covNdim | None -> m11
        let m12 = prod f1 f2 k.Nngp.Shape 2
        m11, m12, m22

    let private zeroWhere (flags: bool[] option) (t: Tensor) =
        match flags with
        | None -> t
        | Some f -> Tensor.create (Array.copy t.Shape) (Array.map2 (fun v z -> if z then 0.0 else v) t.Data f)

    /// <summary>neural_tangents' <c>Kernel.mask(mask1, mask2)</c>: zeroes every covariance between two entries of
    /// which one is masked, and records the masks.</summary>
    let remask (m1: Tensor option) (m2: Tensor option) (k: Kernel) : Kernel =
        let m11, m12, m22 = products k m1 m2
        { k with
            Cov1 = zeroWhere m11 k.Cov1
            Cov2 = k.Cov2 |> Option.map (zeroWhere m22)
            Nngp = zeroWhere m12 k.Nngp
            Ntk = k.Ntk |> Option.map (zeroWhere m12)
            Mask1 = m1
            Mask2 = m2 }

    /// <summary>The kernel rule of a layer with its masking (neural_tangents' <c>kernel_fn_with_masking</c>): without
    /// masks the rule itself; with masks the output masks are the layer's <c>mask_fn</c> of the input masks, the rule
    /// runs on the kernel that still carries the input masks, and (for <c>Remask</c> layers) the covariances of masked
    /// entries are zeroed afterwards.</summary>
    let kernel (name: string) (rule: MaskRule) (f: bool -> Kernel -> Kernel) : bool -> Kernel -> Kernel =
        fun inPlace k ->
            match k.Mask1, k.Mask2 with
            | None, None -> f inPlace k
            | m1, m2 ->
                match rule.Unsupported with
                | Some reason -> fail reason
                | None ->
                    let o1 = m1 |> Option.map (fun m -> rule.Propagate m k.Shape1)
                    let o2 = m2 |> Option.map (fun m -> rule.Propagate m k.Shape2)
                    let out = f false k
                    if rule.Remask then remask o1 o2 out else { out with Mask1 = o1; Mask2 = o2 }

    /// <summary>neural_tangents' <c>_sum_masks</c> (FanInSum, FanInProd): an entry of the sum is masked only when it
    /// is masked in every branch (a branch without a mask masks nothing).</summary>
    let sum (masks: Tensor option list) : Tensor option =
        masks |> List.reduce (fun a b ->
            match a, b with
            | None, m | m, None -> m
            | Some x, Some y ->
                let shape = Array.map2 max x.Shape y.Shape
                let x, y = broadcastTo shape x, broadcastTo shape y
                Some(Tensor.create shape (Array.map2 (fun u v -> if u <> 0.0 && v <> 0.0 then 1.0 else 0.0) x.Data y.Data)))

    /// <summary>neural_tangents' <c>_concat_masks</c> (FanInConcat): each branch's mask broadcast along the
    /// concatenation axis to its branch's size (and along the other axes to the largest mask), a branch without a mask
    /// masking nothing, then concatenated along the axis.</summary>
    let concat (axis: int) (masks: Tensor option list) (shapes: int[] list) : Tensor option =
        if masks |> List.forall Option.isNone then None
        else
            let rank = (List.head shapes).Length
            let a = norm rank axis
            let present = masks |> List.choose id
            let maxShape = present |> List.map (fun m -> m.Shape) |> List.reduce (Array.map2 max)
            let parts =
                List.map2 (fun (m: Tensor option) (shape: int[]) ->
                    let target = Array.copy maxShape
                    target[a] <- shape[a]
                    match m with
                    | Some m -> broadcastTo target m
                    | None -> Tensor.zeros target) masks shapes
            // Row-major concatenation along a: blocks of (size along a × inner) per outer index.
            let outer = Array.fold (*) 1 maxShape[.. a - 1]
            let inner = Array.fold (*) 1 maxShape[a + 1 ..]
            let total = parts |> List.sumBy (fun p -> p.Shape[a])
            let out = Array.zeroCreate (outer * total * inner)
            let mutable offset = 0
            for p in parts do
                let len = p.Shape[a] * inner
                for o in 0 .. outer - 1 do
                    Array.blit p.Data (o * len) out (o * total * inner + offset) len
                offset <- offset + len
            let shape = Array.copy maxShape
            shape[a] <- total
            Some(Tensor.create shape out)

    /// <summary>The kernel rule of a fan-in with its masking: the rule on the branches' kernels, then the output
    /// masks from the branches' masks (<c>MergeDef.MaskMerge</c>); fan-ins never remask.</summary>
    let merged (mergeMasks: Tensor option list -> int[] list -> Tensor option) (f: Kernel list -> Kernel) : Kernel list -> Kernel =
        fun ks ->
            let out = f ks
            if ks |> List.forall (fun k -> k.Mask1.IsNone && k.Mask2.IsNone) then out
            else
                { out with
                    Mask1 = mergeMasks (ks |> List.map (fun k -> k.Mask1)) (ks |> List.map (fun k -> k.Shape1))
                    Mask2 = mergeMasks (ks |> List.map (fun k -> k.Mask2)) (ks |> List.map (fun k -> k.Shape2)) }

    /// <summary>neural_tangents' <c>_pool_mask</c>: the mask of a windowed layer (Conv, ConvLocal, AvgPool, SumPool)
    /// with window <paramref name="window"/> and strides <paramref name="strides"/> per axis (1 on the batch and channel
    /// axes), SAME (<paramref name="same"/>) or VALID padding: where the output has another shape than the input, output
    /// position o takes the mask of the input position at the centre of its window, −pad_lo + (w − 1)/2 + o·s.</summary>
    let pool (window: int[]) (strides: int[]) (same: bool) (m: Tensor) : Tensor =
        let rank = m.Rank
        let outShape, starts =
            Array.init rank (fun a ->
                let n, w, s = m.Shape[a], window[a], strides[a]
                if same then
                    let o = (n + s - 1) / s
                    o, -(max ((o - 1) * s + w - n) 0 / 2) + (w - 1) / 2
                else (n - w) / s + 1, (w - 1) / 2)
            |> Array.unzip
        if outShape = m.Shape then m
        else
            if Array.exists (fun o -> o < 1) outShape then
                fail $"a mask of shape {Shape.format m.Shape} leaves no output positions for window {Shape.format window}"
            let ms = rowStrides m.Shape
            let os = rowStrides outShape
            let total = Array.fold (*) 1 outShape
            Tensor.create outShape
                (Array.init total (fun e ->
                    let mutable off = 0
                    for a in 0 .. rank - 1 do
                        off <- off + (starts[a] + ((e / os[a]) % outShape[a]) * strides[a]) * ms[a]
                    m.Data[off]))
