namespace NeuralTangents

/// <summary>What a network needs of its input kernel (neural_tangents' <c>requires</c> metadata),
/// computed by a pure fold over the layer tree.</summary>
type Requirements =
    { /// Batch axis of the inputs, when a layer states one.
      BatchAxis: int option
      /// Channel (feature) axis of the inputs, when a layer states one.
      ChannelAxis: int option }

[<RequireQualifiedAccess>]
module Requirements =

    /// No constraint: neural_tangents' defaults (batch first, channels last) apply.
    let none = { BatchAxis = None; ChannelAxis = None }

    let private merge (name: string) (what: string) (a: int option) (b: int option) =
        match a, b with
        | Some x, Some y when x <> y ->
            raise (NeuralTangentsException(
                sprintf "%s: %s=%d conflicts with %s=%d required by an earlier layer; use one layout for the whole network"
                    name what y what x))
        | Some _, _ -> a
        | None, _ -> b

    /// Folds the tree: the input-side layout is fixed by the first layers that state one; layers after a
    /// layout-resetting leaf (Flatten) see its output layout and add no input requirement.
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
                { BatchAxis = merge d.Name "batch_axis" acc.BatchAxis r.BatchAxis
                  ChannelAxis = if r.Resets then acc.ChannelAxis else merge d.Name "channel_axis" acc.ChannelAxis r.ChannelAxis },
                r.Resets
        go none layer |> fst
