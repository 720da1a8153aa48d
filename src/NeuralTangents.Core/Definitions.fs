namespace NeuralTangents

open NeuralTangents.Layers

/// <summary>A layer as the interpreters see it: one of the three combinators they run themselves, a fan-in, or a
/// leaf with its definition.</summary>
type internal Node =
    | SerialNode of Layer list
    | ParallelNode of Layer list
    | FanOutNode of num: int
    | MergeNode of MergeDef
    | LeafNode of LayerDef

/// <summary>The definition of every layer, by family: the one place the interpreters look a layer up.</summary>
[<RequireQualifiedAccess>]
module Definitions =

    /// <summary>The layer as a combinator, a fan-in definition or a leaf definition.</summary>
    let internal node (layer: Layer) : Node =
        match layer with
        | Serial ls -> SerialNode ls
        | Parallel ls -> ParallelNode ls
        | FanOut n -> FanOutNode n
        | FanInSum -> MergeNode Branching.fanInSum
        | FanInProd -> MergeNode Branching.fanInProd
        | FanInConcat axis -> MergeNode(Branching.fanInConcat axis)
        | Identity -> LeafNode Linear.identity
        | Dense d -> LeafNode(Linear.dense d)
        | Flatten f -> LeafNode(Linear.flatten f)
        | Activation a -> LeafNode(Elementwise.define a)

    /// <summary>Name of a layer as neural_tangents spells it, for error messages.</summary>
    [<CompiledName("Name")>]
    let name (layer: Layer) =
        match node layer with
        | SerialNode _ -> "serial"
        | ParallelNode _ -> "parallel"
        | FanOutNode _ -> "FanOut"
        | MergeNode m -> m.Name
        | LeafNode d -> d.Name
