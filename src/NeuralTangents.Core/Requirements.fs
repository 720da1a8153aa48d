namespace NeuralTangents

/// <summary>The covariance layout a caller asks <c>kernel_fn</c> for (neural_tangents' <c>diagonal_batch</c> and
/// <c>diagonal_spatial</c> keyword arguments); None leaves the choice to the network's requirements.</summary>
type LayoutRequest =
    { /// Some false: Cov1/Cov2 hold the full (N, N, …) batch covariance in every layer; None: diagonal (the default).
      DiagonalBatch: bool option
      /// Some true: only same-position covariances (H, W, …); Some false: every pair of positions (H, H', W, W', …);
      /// None: whatever the network needs (diagonal only when every layer allows it and the output does not need the
      /// pairs).
      DiagonalSpatial: bool option }

    /// No override: the layout the network requires (neural_tangents' default <c>kernel_fn(x1, x2)</c>).
    static member Auto = { DiagonalBatch = None; DiagonalSpatial = None }

/// <summary>What a network needs of its input kernel (neural_tangents' <c>requires</c> metadata),
/// computed by a pure fold over the layer tree.</summary>
type Requirements =
    { /// Batch axis of the inputs, when a layer states one.
      BatchAxis: int option
      /// Channel (feature) axis of the inputs, when a layer states one.
      ChannelAxis: int option
      /// The network's diagonal-batch allowance, when some layer states one.
      DiagonalBatch: Diagonal option
      /// The network's diagonal-spatial allowance, when some layer states one.
      DiagonalSpatial: Diagonal option }

[<RequireQualifiedAccess>]
module Requirements =

    /// No constraint: neural_tangents' defaults (batch first, channels last) apply.
    let none = { BatchAxis = None; ChannelAxis = None; DiagonalBatch = None; DiagonalSpatial = None }

    let private merge (name: string) (what: string) (a: int option) (b: int option) =
        match a, b with
        | Some x, Some y when x <> y ->
            raise (NeuralTangentsException(
                sprintf "%s: %s=%d conflicts with %s=%d required by an earlier layer; use one layout for the whole network"
                    name what y what x))
        | Some _, _ -> a
        | None, _ -> b

    /// The diagonal allowances (batch, spatial) of a tree: serial layers compose with <c>Diagonal.compose</c>,
    /// parallel branches meet with <c>Diagonal.both</c>, and layers that state nothing are skipped — as
    /// neural_tangents' <c>_get_input_req_attr</c> folds <c>&gt;&gt;</c> and <c>&amp;</c>.
    let rec private diagonals (layer: Layer) : Diagonal option * Diagonal option =
        let fold (op: Diagonal -> Diagonal -> Diagonal) (ls: Layer list) =
            let join (a: Diagonal option) (b: Diagonal option) =
                match a, b with
                | Some x, Some y -> Some(op x y)
                | Some _, None -> a
                | None, _ -> b
            ls |> List.map diagonals |> List.fold (fun (b, s) (b', s') -> join b b', join s s') (None, None)
        match Definitions.node layer with
        | SerialNode ls -> fold Diagonal.compose ls
        | ParallelNode ls -> fold Diagonal.both ls
        | FanOutNode _ | MergeNode _ -> None, None // neural_tangents' FanOut and FanIn* state no diagonal requirement
        | LeafNode d -> d.Requires.DiagonalBatch, d.Requires.DiagonalSpatial

    /// Folds the tree: the input-side layout is fixed by the first layers that state one; layers after a
    /// layout-resetting leaf (Flatten) see its output layout and add no input requirement. The diagonal allowances
    /// fold over the whole tree (see <c>Diagonal</c>).
    [<CompiledName("OfLayer")>]
    let ofLayer (layer: Layer) : Requirements =
        // Returns (requirements, passed a resetting leaf).
        let rec go (acc: Requirements) (layer: Layer) : Requirements * bool =
            match Definitions.node layer with
            | SerialNode ls ->
                ls |> List.fold (fun (acc, stop) l ->
                    if stop then acc, true else go acc l) (acc, false)
            | ParallelNode ls ->
                ls |> List.fold (fun (acc, stop) l ->
                    let a, s = go acc l
                    a, stop || s) (acc, false)
            | FanOutNode _ | MergeNode _ -> acc, false
            | LeafNode d ->
                let r = d.Requires
                { acc with
                    BatchAxis = merge d.Name "batch_axis" acc.BatchAxis r.BatchAxis
                    // A resetting leaf's own axes still describe its input (GlobalAvgPool's channel_axis); only the
                    // layers after it see another layout.
                    ChannelAxis = merge d.Name "channel_axis" acc.ChannelAxis r.ChannelAxis },
                r.Resets
        let axes = go none layer |> fst
        let batch, spatial = diagonals layer
        { axes with DiagonalBatch = batch; DiagonalSpatial = spatial }

    /// One layout flag from the network's allowance and the caller's request, as neural_tangents'
    /// <c>_fuse_requirements</c> then <c>bool(Diagonal)</c>: the request wins unless it asks for a diagonal layout
    /// that a layer cannot take (Input = No); with no request the allowance decides, and with neither the default.
    let private decide (name: string) (fallback: bool) (allowance: Diagonal option) (request: bool option) =
        match request, allowance with
        | Some true, Some a when a.Input = Tri.No ->
            raise (NeuralTangentsException(
                sprintf "asked to compute the kernel with %s=True, but the network requires %s=False (a layer needs the off-diagonal entries); call it with %s=False or leave %s unset"
                    name name name name))
        | Some r, _ -> r
        | None, Some a -> Diagonal.isDiagonal a
        | None, None -> fallback

    /// <summary>The (diagonal_batch, diagonal_spatial) layout of the input kernel: the network's requirements fused
    /// with the caller's request; neural_tangents' defaults (diagonal_batch = true, diagonal_spatial = false) fill
    /// what neither states.</summary>
    /// <exception cref="T:NeuralTangents.NeuralTangentsException">the request asks for a diagonal layout a layer
    /// cannot take.</exception>
    [<CompiledName("Layout")>]
    let layout (req: Requirements) (request: LayoutRequest) : bool * bool =
        decide "diagonal_batch" true req.DiagonalBatch request.DiagonalBatch,
        decide "diagonal_spatial" false req.DiagonalSpatial request.DiagonalSpatial
