namespace NeuralTangents.Layers

open NeuralTangents

/// Index (neural_tangents' `stax.Index` in `stax/linear.py`, kernel rule `Kernel.__getitem__`): numpy basic indexing
/// with integers, slices and `...`; the finite forward and backward passes and the definition.
module Indexing =

    let private fail (msg: string) = raise (NeuralTangentsException msg)

    /// The full slice `:`.
    let all = IndexEntry.Range(None, None, None)

    let private show (e: IndexEntry) =
        let o = function Some (v: int) -> string v | None -> ""
        match e with
        | IndexEntry.At i -> string i
        | IndexEntry.Range(a, b, None) -> $"{o a}:{o b}"
        | IndexEntry.Range(a, b, c) -> ((o a) + ":" + (o b) + ":" + (o c))
        | IndexEntry.Rest -> "..."

    /// The index as numpy writes it, e.g. "[:, 1:, ::-1]".
    let format (idx: IndexEntry list) = "[" + System.String.Join(", ", idx |> List.map show) + "]"

    /// Validated Index arguments: at most one `...`, no slice step of 0.
    let indexSpec (idx: IndexEntry list) (batchAxis: int) (channelAxis: int) : IndexSpec =
        if (idx |> List.filter ((=) IndexEntry.Rest)).Length > 1 then
            invalidArg "idx" $"Index: an index can only have a single ellipsis ('...'), got {format idx}"
        if idx |> List.exists (function IndexEntry.Range(_, _, Some 0) -> true | _ -> false) then
            invalidArg "idx" $"Index: slice step cannot be zero, got {format idx}"
        if batchAxis = channelAxis then
            invalidArg "channelAxis" $"Index: channel_axis must differ from batch_axis, both are {string batchAxis}"
        { Idx = idx; BatchAxis = batchAxis; ChannelAxis = channelAxis }

    /// One entry per axis of a rank-<c>ndim</c> array (neural_tangents' `canonicalize_idx`): `...` expands to full
    /// slices, missing trailing entries are full slices.
    let canonical (idx: IndexEntry list) (ndim: int) : IndexEntry[] =
        let n = (idx |> List.filter ((<>) IndexEntry.Rest)).Length
        if n > ndim then
            fail ("Index: too many indices for an array of rank " + string ndim + ": " + string n + " given in " + (format idx))
        let expanded =
            if List.contains IndexEntry.Rest idx then
                idx |> List.collect (fun e -> if e = IndexEntry.Rest then List.replicate (ndim - n) all else [ e ])
            else idx @ List.replicate (ndim - n) all
        List.toArray expanded

    /// The positions an entry selects along an axis of size <c>n</c> (Python's `slice.indices` for slices), and
    /// whether it removes the axis (an integer).
    let resolve (n: int) (e: IndexEntry) : int[] * bool =
        match e with
        | IndexEntry.At i ->
            let j = if i < 0 then i + n else i
            if j < 0 || j >= n then fail $"Index: index {string i} is out of bounds for an axis of size {string n}"
            [| j |], true
        | IndexEntry.Range(start, stop, step) ->
            let step = defaultArg step 1
            let lower, upper = if step > 0 then 0, n else -1, n - 1
            let bound (v: int option) (dflt: int) =
                match v with
                | None -> dflt
                | Some v when v < 0 -> max (v + n) lower
                | Some v -> min v upper
            let a = bound start (if step > 0 then lower else upper)
            let b = bound stop (if step > 0 then upper else lower)
            [| a .. step .. (if step > 0 then b - 1 else b + 1) |], false
        | IndexEntry.Rest -> fail "Index: '...' must be expanded before resolving"

    /// The sub-array of <c>t</c> taken by one resolved selection per axis (removed axes dropped).
    let take (sels: (int[] * bool)[]) (t: Tensor) : Tensor =
        let rank = t.Rank
        let strides = Array.create rank 1
        for a in rank - 2 .. -1 .. 0 do strides[a] <- strides[a + 1] * t.Shape[a + 1]
        let lens = sels |> Array.map (fun (ix, _) -> ix.Length)
        let total = Array.fold (*) 1 lens
        let out = Array.zeroCreate total
        for e in 0 .. total - 1 do
            let mutable r = e
            let mutable src = 0
            for a in rank - 1 .. -1 .. 0 do
                let k = r % lens[a]
                r <- r / lens[a]
                src <- src + (fst sels[a])[k] * strides[a]
            out[e] <- t.Data[src]
        let shape = [| for a in 0 .. rank - 1 do if not (snd sels[a]) then yield lens[a] |]
        Tensor.create shape out

    /// The transpose of <c>take</c>: <c>ct</c> scattered into zeros of <c>shape</c> (slices select distinct positions).
    let scatter (sels: (int[] * bool)[]) (shape: int[]) (ct: Tensor) : Tensor =
        let rank = shape.Length
        let strides = Array.create rank 1
        for a in rank - 2 .. -1 .. 0 do strides[a] <- strides[a + 1] * shape[a + 1]
        let lens = sels |> Array.map (fun (ix, _) -> ix.Length)
        let out = Array.zeroCreate (Array.fold (*) 1 shape)
        for e in 0 .. ct.Length - 1 do
            let mutable r = e
            let mutable dst = 0
            for a in rank - 1 .. -1 .. 0 do
                let k = r % lens[a]
                r <- r / lens[a]
                dst <- dst + (fst sels[a])[k] * strides[a]
            out[dst] <- out[dst] + ct.Data[e]
        Tensor.create shape out

    /// The selections of an index on an array of this shape.
    let private selections (idx: IndexEntry list) (shape: int[]) =
        Array.map2 resolve shape (canonical idx shape.Length)

    /// The shape of x[idx] (neural_tangents' `slice_shape`).
    let sliceShape (idx: IndexEntry list) (shape: int[]) =
        let sels = selections idx shape
        [| for a in 0 .. shape.Length - 1 do if not (snd sels[a]) then yield (fst sels[a]).Length |]

    /// Index on a kernel (neural_tangents' `Kernel.__getitem__`): the batch entry indexes both batch axes of
    /// nngp/ntk (and cov1/cov2's one or two), each spatial entry its axis — both copies of a pair in the full layout,
    /// in the kernel's (possibly reversed) order. The channel axis must be `:` (its size is infinite) and the batch
    /// axis cannot take an integer (the kernel always keeps a batch axis).
    let indexKernel (spec: IndexSpec) (k: Kernel) : Kernel =
        let ndim = k.Shape1.Length
        let idx = canonical spec.Idx ndim
        let ch, b = Axes.norm ndim k.ChannelAxis, Axes.norm ndim k.BatchAxis
        if idx[ch] <> all then
            fail $"Index: indexing the (infinite) channel axis {string ch} is not supported; use ':' there, got {format spec.Idx}"
        match idx[b] with
        | IndexEntry.At _ ->
            fail $"Index: the batch axis {string b} cannot be indexed with an integer, which would remove it; the kernel always has a batch axis, so use a slice such as i:i+1, got {format spec.Idx}"
        | _ -> ()
        let spatial = [| for a in 0 .. ndim - 1 do if a <> b && a <> ch then yield idx[a] |]
        let spatial = if k.IsReversed then Array.rev spatial else spatial
        let spatial = if k.DiagonalSpatial then spatial else spatial |> Array.collect (fun e -> [| e; e |])
        let apply (batchEntries: int) (t: Tensor) =
            let entries = Array.append (Array.create batchEntries idx[b]) spatial
            take (Array.map2 resolve t.Shape entries) t
        let covN = if k.DiagonalBatch then 1 else 2
        let removedBefore (axis: int) = idx |> Array.take axis |> Array.filter (function IndexEntry.At _ -> true | _ -> false) |> Array.length
        { k with
            Nngp = apply 2 k.Nngp
            Ntk = k.Ntk |> Option.map (apply 2)
            Cov1 = apply covN k.Cov1
            Cov2 = k.Cov2 |> Option.map (apply covN)
            BatchAxis = b - removedBefore b
            ChannelAxis = ch - removedBefore ch
            Shape1 = sliceShape spec.Idx k.Shape1
            Shape2 = sliceShape spec.Idx k.Shape2 }

    /// The entry as its JSON argument: an int, ":" , "..." or [start, stop, step] with nulls.
    let private entryArg (e: IndexEntry) =
        let o = function Some (v: int) -> IntArg v | None -> NoneArg
        match e with
        | IndexEntry.At i -> IntArg i
        | IndexEntry.Range(None, None, None) -> StringArg ":"
        | IndexEntry.Range(a, b, c) -> ListArg [ o a; o b; o c ]
        | IndexEntry.Rest -> StringArg "..."

    /// Index's mask (neural_tangents' <c>mask_fn = mask[idx]</c>).
    let private indexMask (spec: IndexSpec) =
        Masking.propagating false (fun m _ -> take (selections spec.Idx m.Shape) m)

    /// Index(idx, batch_axis, channel_axis) (neural_tangents' <c>stax.Index</c>). No parameters.
    let index (spec: IndexSpec) : LayerDef =
        { Name = "Index"
          Args = [ "idx", ListArg(spec.Idx |> List.map entryArg); "batch_axis", IntArg spec.BatchAxis; "channel_axis", IntArg spec.ChannelAxis ]
          // @requires(batch_axis, channel_axis): selecting entries works in every layout.
          Requires =
            { BatchAxis = Some spec.BatchAxis; ChannelAxis = Some spec.ChannelAxis; Resets = false
              DiagonalBatch = None; DiagonalSpatial = None }
          // supports_masking(remask_kernel=False) with mask_fn = mask[idx]: the mask is indexed as the activations.
          Kernel = Masking.kernel "Index" (indexMask spec) (fun _ k -> indexKernel spec k)
          Init = fun _ shape -> sliceShape spec.Idx shape, Params.none
          Apply = fun _ _ x -> take (selections spec.Idx x.Shape) x
          Vjp = fun _ _ x ct -> scatter (selections spec.Idx x.Shape) x.Shape ct
          ParamVjp = fun _ _ _ _ -> Params.none
          GradDot = None
          Jvp = LinearInInput
          Mask = indexMask spec }
