namespace NeuralTangents

open System


/// <summary>The parameters of a finite network, shaped like its layer tree (neural_tangents' params pytree).</summary>
type Params =
    /// A leaf layer's parameters in neural_tangents' order — Dense: [W (in, out)] or [W; b] with b of shape
    /// (1, …, out, …, 1), out on the channel axis; empty for layers without parameters.
    | Leaf of Tensor list
    /// The parameters of the children of a serial or parallel combinator, in order.
    | Branches of Params list

/// <summary>Operations on parameter trees (also used for their gradients, which have the same shape).</summary>
[<RequireQualifiedAccess>]
module Params =

    /// <summary>The parameters of a layer that has none.</summary>
    [<CompiledName("None")>]
    let none = Leaf []

    /// <summary>Number of scalar parameters.</summary>
    [<CompiledName("Count")>]
    let rec count (p: Params) =
        match p with
        | Leaf ts -> ts |> List.sumBy (fun t -> t.Length)
        | Branches ps -> ps |> List.sumBy count

    let private mismatch () =
        invalidArg "b" "the two parameter trees have different structures"

    /// <summary>Σ over every parameter of a·b (the Euclidean inner product of two trees of equal structure).</summary>
    [<CompiledName("Dot")>]
    let rec dot (a: Params) (b: Params) : float =
        match a, b with
        | Leaf xs, Leaf ys when xs.Length = ys.Length ->
            List.fold2 (fun acc (x: Tensor) (y: Tensor) ->
                if x.Length <> y.Length then mismatch ()
                acc + System.Numerics.Tensors.TensorPrimitives.Dot(ReadOnlySpan x.Data, ReadOnlySpan y.Data)) 0.0 xs ys
        | Branches xs, Branches ys when xs.Length = ys.Length -> List.fold2 (fun acc x y -> acc + dot x y) 0.0 xs ys
        | _ -> mismatch ()

    /// <summary>All parameters in one vector, depth-first, each leaf's tensors in order (W before b).</summary>
    [<CompiledName("ToVector")>]
    let toVector (p: Params) : float[] =
        let r = Array.zeroCreate (count p)
        let mutable off = 0
        let rec go p =
            match p with
            | Leaf ts ->
                for t in ts do
                    Array.blit t.Data 0 r off t.Length
                    off <- off + t.Length
            | Branches ps -> List.iter go ps
        go p
        r

    /// <summary>A tree shaped like <paramref name="template"/> holding the values of <paramref name="v"/>
    /// (the inverse of <c>toVector</c>).</summary>
    [<CompiledName("OfVector")>]
    let ofVector (template: Params) (v: float[]) : Params =
        if v.Length <> count template then
            invalidArg "v" ("the template has " + (string (count template)) + " parameters, got " + string v.Length + " values")
        let mutable off = 0
        let take (t: Tensor) =
            let r = Tensor.create t.Shape (Array.sub v off t.Length)
            off <- off + t.Length
            r
        let rec go p =
            match p with
            | Leaf ts -> Leaf(List.map take ts)
            | Branches ps -> Branches(List.map go ps)
        go template
