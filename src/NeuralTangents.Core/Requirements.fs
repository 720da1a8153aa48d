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

    /// Requirements of a single layer on its input.
    let private ofLeaf (layer: Layer) =
        match layer with
        | Dense d -> "Dense", { BatchAxis = Some d.BatchAxis; ChannelAxis = Some d.ChannelAxis }
        | Flatten f -> "Flatten", { BatchAxis = Some f.BatchAxis; ChannelAxis = None }
        | _ -> "", none

    /// Folds the tree: the input-side layout is fixed by the first layers that state one; layers after a
    /// Flatten see its output layout and add no input requirement.
    [<CompiledName("OfLayer")>]
    let ofLayer (layer: Layer) : Requirements =
        // Returns (requirements, passedFlatten).
        let rec go (acc: Requirements) (layer: Layer) : Requirements * bool =
            match layer with
            | Serial ls ->
                ls |> List.fold (fun (acc, stop) l ->
                    if stop then acc, true else go acc l) (acc, false)
            | Parallel ls ->
                ls |> List.fold (fun (acc, stop) l ->
                    let a, s = go acc l
                    a, stop || s) (acc, false)
            | Flatten _ ->
                let name, r = ofLeaf layer
                { acc with BatchAxis = merge name "batch_axis" acc.BatchAxis r.BatchAxis }, true
            | _ ->
                let name, r = ofLeaf layer
                { BatchAxis = merge name "batch_axis" acc.BatchAxis r.BatchAxis
                  ChannelAxis = merge name "channel_axis" acc.ChannelAxis r.ChannelAxis }, false
        go none layer |> fst
