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

/// <summary>One layer's spelling of an input axis: the layer's name and the axis as written (negative values
/// count from the end).</summary>
type AxisClaim = { Layer: string; Axis: int }

/// <summary>What a network needs of its input kernel (neural_tangents' <c>requires</c> metadata),
/// computed by a pure fold over the layer tree.</summary>
type Requirements =
    { /// The batch axis of the inputs as each layer that states one spells it, in tree order (empty: none does).
      /// Whether two spellings name one axis (3 and -1 do on rank-4 inputs) depends on the inputs' rank, so they
      /// are compared where inputs are seen (<c>Requirements.inputAxes</c>).
      BatchAxes: AxisClaim list
      /// The channel (feature) axis of the inputs as each layer that states one spells it, in tree order.
      ChannelAxes: AxisClaim list
      /// The network's diagonal-batch allowance, when some layer states one.
      DiagonalBatch: Diagonal option
      /// The network's diagonal-spatial allowance, when some layer states one.
      DiagonalSpatial: Diagonal option }

[<RequireQualifiedAccess>]
module Requirements =

    /// No constraint: neural_tangents' defaults (batch first, channels last) apply.
    let none = { BatchAxes = []; ChannelAxes = []; DiagonalBatch = None; DiagonalSpatial = None }

    /// One diagonal allowance of a tree (<c>pick</c> reads it off a leaf), as neural_tangents'
    /// <c>_get_input_req_attr</c> folds it: serial layers compose with <c>Diagonal.compose</c> (<c>&gt;&gt;</c>),
    /// parallel branches meet with <c>Diagonal.both</c> (<c>&amp;</c>), and layers that state nothing (Identity,
    /// FanOut, the fan-ins) are skipped. One deliberate difference: a parallel branch that states nothing (an
    /// Identity, the residual shortcut) carries the parallel's input to its output unchanged, so the parallel's
    /// output allowance is met with that of what precedes it (<c>upstream</c>; the raw inputs, whose positions are
    /// correlated, count as No). neural_tangents drops such a branch from the meet, so after a shared-weight Conv
    /// Conv → FanOut(2) → parallel [ConvLocal; Identity] → FanInSum → GlobalSumPool it picks the diagonal layout and
    /// loses the Conv's cross-position covariances that the Identity branch carries (README, differences from
    /// neural_tangents). Where every branch states something, or the input's cross-position covariances are zero
    /// (e.g. after a ConvLocal), the fold is neural_tangents'.
    let rec private diagonal (pick: LayoutRequirement -> Diagonal option) (upstream: Diagonal option) (layer: Layer) : Diagonal option =
        let join (op: Diagonal -> Diagonal -> Diagonal) (a: Diagonal option) (b: Diagonal option) =
            match a, b with
            | Some x, Some y -> Some(op x y)
            | Some _, None -> a
            | None, _ -> b
        match Definitions.node layer with
        | SerialNode ls ->
            ls |> List.fold (fun acc l -> join Diagonal.compose acc (diagonal pick (join Diagonal.compose upstream acc) l)) None
        | ParallelNode ls ->
            let branches = ls |> List.map (diagonal pick upstream)
            match List.choose id branches with
            | [] -> None // every branch passes its input on
            | first :: rest ->
                let meet = List.fold Diagonal.both first rest
                if List.contains None branches then
                    let carried = match upstream with Some u -> u.Output | None -> Tri.No
                    Some { meet with Output = min meet.Output carried }
                else Some meet
        | FanOutNode _ | MergeNode _ -> None // neural_tangents' FanOut and FanIn* state no diagonal requirement
        | LeafNode d -> pick d.Requires

    /// Folds the tree: every layer's spelling of the input's axes is gathered (<c>inputAxes</c> checks them against
    /// the inputs' rank); layers after a layout-resetting leaf (Flatten) see its output layout and add no input
    /// requirement. The diagonal allowances
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
                // A resetting leaf's own axes still describe its input (GlobalAvgPool's channel_axis); only the
                // layers after it see another layout.
                let r = d.Requires
                // Gathered last first, reversed below.
                let add (axis: int option) (claims: AxisClaim list) =
                    match axis with Some a -> { Layer = d.Name; Axis = a } :: claims | None -> claims
                { acc with BatchAxes = add r.BatchAxis acc.BatchAxes; ChannelAxes = add r.ChannelAxis acc.ChannelAxes },
                r.Resets
        let axes = go none layer |> fst
        { axes with
            BatchAxes = List.rev axes.BatchAxes
            ChannelAxes = List.rev axes.ChannelAxes
            DiagonalBatch = diagonal (fun r -> r.DiagonalBatch) None layer
            DiagonalSpatial = diagonal (fun r -> r.DiagonalSpatial) None layer }

    /// One layout flag from the network's allowance and the caller's request, as neural_tangents'
    /// <c>_fuse_requirements</c> then <c>bool(Diagonal)</c>: the request wins unless it asks for a diagonal layout
    /// that a layer cannot take (Input = No); with no request the allowance decides, and with neither the default.
    let private decide (name: string) (fallback: bool) (allowance: Diagonal option) (request: bool option) =
        match request, allowance with
        | Some true, Some a when a.Input = Tri.No ->
            raise (NeuralTangentsException(
                ("asked to compute the kernel with " + name + "=True, but the network requires " + name + "=False (a layer needs the off-diagonal entries); call it with " + name + "=False or leave " + name + " unset")))
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

    /// <summary>The (batch_axis, channel_axis) of inputs of rank <paramref name="rank"/>: each as the first layer
    /// that states it spells it (neural_tangents keeps that one; 0 and -1 when no layer states one), once every
    /// layer's spelling is checked to name the same axis of such inputs. Layers normalise their axes by the rank, so
    /// 3 and -1 (or 1 and -3) are one axis of rank-4 inputs; neural_tangents checks nothing, and a real mismatch
    /// would silently treat some other axis as the channels.</summary>
    /// <exception cref="T:NeuralTangents.NeuralTangentsException">two layers name different axes of such inputs.</exception>
    [<CompiledName("InputAxes")>]
    let inputAxes (rank: int) (req: Requirements) : int * int =
        let norm a = if a < 0 then a + rank else a
        let agreed (argument: string) (fallback: int) (claims: AxisClaim list) =
            match claims with
            | [] -> fallback
            | first :: rest ->
                rest |> List.tryFind (fun c -> norm c.Axis <> norm first.Axis) |> Option.iter (fun c ->
                    raise (NeuralTangentsException(
                        (c.Layer + ": " + argument + "=" + string c.Axis + " conflicts with " + argument + "=" + string first.Axis + " required by an earlier layer (" + first.Layer + "): on inputs of rank " + string rank + " these are axes " + (string (norm c.Axis)) + " and " + (string (norm first.Axis)) + "; use one layout for the whole network"))))
                first.Axis
        let batch = agreed "batch_axis" 0 req.BatchAxes
        batch, agreed "channel_axis" -1 req.ChannelAxes
