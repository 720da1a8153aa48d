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
        // neural_tangents' repeat is serial of n copies with untied parameters (its lax.scan only compiles faster);
        // the kernel is exact either way, including Conv's is_reversed flips its docstring warns about.
        | Repeat(l, n) -> SerialNode(List.replicate n l)
        | FanOut n -> FanOutNode n
        | FanInSum -> MergeNode Branching.fanInSum
        | FanInProd -> MergeNode Branching.fanInProd
        | FanInConcat axis -> MergeNode(Branching.fanInConcat axis)
        | Identity -> LeafNode Linear.identity
        | Dense d -> LeafNode(Linear.dense d)
        | Conv c -> LeafNode(Convolution.define c)
        | Flatten f -> LeafNode(Linear.flatten f)
        | Activation a -> LeafNode(Elementwise.define a)
        | AvgPool(p, normalizeEdges) -> LeafNode(Pooling.avgPool p normalizeEdges)
        | SumPool p -> LeafNode(Pooling.sumPool p)
        | GlobalAvgPool g -> LeafNode(Pooling.globalAvgPool g)
        | GlobalSumPool g -> LeafNode(Pooling.globalSumPool g)
        | Dropout d -> LeafNode(Stochastic.dropout d)
        | LayerNorm l -> LeafNode(Normalization.layerNorm l)
        | DotGeneral d -> LeafNode(Contraction.dotGeneral d)
        | Index i -> LeafNode(Indexing.index i)
        | ImageResize r -> LeafNode(Resize.imageResize r)
        | Aggregate a -> LeafNode(Aggregation.aggregate a)
        | GlobalSelfAttention a -> LeafNode(Attention.globalSelfAttention a)

    /// Whether the layer, or a layer inside its serial, parallel or repeat, satisfies pred.
    let rec internal exists (pred: Layer -> bool) (layer: Layer) =
        pred layer
        || (match layer with
            | Repeat(inner, _) -> exists pred inner
            | Serial ls | Parallel ls -> List.exists (exists pred) ls
            | _ -> false)

    /// <summary>Name of a layer as neural_tangents spells it, for error messages.</summary>
    [<CompiledName("Name")>]
    let name (layer: Layer) =
        match layer, node layer with
        | Repeat _, _ -> "repeat"
        | _, SerialNode _ -> "serial"
        | _, ParallelNode _ -> "parallel"
        | _, FanOutNode _ -> "FanOut"
        | _, MergeNode m -> m.Name
        | _, LeafNode d -> d.Name

    /// <summary>The error of a one-input layer given several branches.</summary>
    let internal branchesIntoOne (layer: Layer) (branches: int) : 'a =
        raise (NeuralTangentsException(
            $"{name layer}: takes one input but receives {string branches} branches; merge them first with FanInSum, FanInProd or FanInConcat"))

    /// <summary>The error of a fan-in (FanInSum/Prod/Concat) given one input instead of a list of branches:
    /// neural_tangents takes a list there, so this is an error, not the identity.</summary>
    let internal oneIntoFanIn (layer: Layer) : 'a =
        raise (NeuralTangentsException(
            $"{name layer}: merges a list of branches but receives a single input; split it first, e.g. serial [FanOut(2), parallel [...]], then {name layer}"))
