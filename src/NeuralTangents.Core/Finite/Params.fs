namespace NeuralTangents

open System

/// <summary>The parameters of a finite network, shaped like its layer tree (neural_tangents' params pytree).</summary>
type Params =
    /// A layer without parameters (activations, fan-in/out, Identity, Flatten).
    | NoParams
    /// A Dense layer: W of shape (in, out) and the bias (absent when b_std is None) of shape
    /// (1, …, out, …, 1), out on the channel axis, as neural_tangents stores them.
    | DenseParams of W: Tensor * b: Tensor option
    /// The parameters of the children of a serial or parallel combinator, in order.
    | Branches of Params list

/// <summary>Operations on parameter trees (also used for their gradients, which have the same shape).</summary>
[<RequireQualifiedAccess>]
module Params =

    /// <summary>Number of scalar parameters.</summary>
    [<CompiledName("Count")>]
    let rec count (p: Params) =
        match p with
        | NoParams -> 0
        | DenseParams(w, b) -> w.Length + (match b with Some b -> b.Length | None -> 0)
        | Branches ps -> ps |> List.sumBy count

    let private mismatch () =
        invalidArg "b" "the two parameter trees have different structures"

    /// <summary>Σ over every parameter of a·b (the Euclidean inner product of two trees of equal structure).</summary>
    [<CompiledName("Dot")>]
    let rec dot (a: Params) (b: Params) : float =
        match a, b with
        | NoParams, NoParams -> 0.0
        | DenseParams(w1, b1), DenseParams(w2, b2) ->
            if w1.Length <> w2.Length then mismatch ()
            let dw = System.Numerics.Tensors.TensorPrimitives.Dot(ReadOnlySpan w1.Data, ReadOnlySpan w2.Data)
            match b1, b2 with
            | Some x, Some y when x.Length = y.Length -> dw + System.Numerics.Tensors.TensorPrimitives.Dot(ReadOnlySpan x.Data, ReadOnlySpan y.Data)
            | None, None -> dw
            | _ -> mismatch ()
        | Branches xs, Branches ys when xs.Length = ys.Length -> List.fold2 (fun acc x y -> acc + dot x y) 0.0 xs ys
        | _ -> mismatch ()

    /// <summary>All parameters in one vector, depth-first, W before b.</summary>
    [<CompiledName("ToVector")>]
    let toVector (p: Params) : float[] =
        let r = Array.zeroCreate (count p)
        let mutable off = 0
        let put (t: Tensor) =
            Array.blit t.Data 0 r off t.Length
            off <- off + t.Length
        let rec go p =
            match p with
            | NoParams -> ()
            | DenseParams(w, b) ->
                put w
                Option.iter put b
            | Branches ps -> List.iter go ps
        go p
        r

    /// <summary>A tree shaped like <paramref name="template"/> holding the values of <paramref name="v"/>
    /// (the inverse of <c>toVector</c>).</summary>
    [<CompiledName("OfVector")>]
    let ofVector (template: Params) (v: float[]) : Params =
        if v.Length <> count template then
            invalidArg "v" (sprintf "the template has %d parameters, got %d values" (count template) v.Length)
        let mutable off = 0
        let take (t: Tensor) =
            let r = Tensor.create t.Shape (Array.sub v off t.Length)
            off <- off + t.Length
            r
        let rec go p =
            match p with
            | NoParams -> NoParams
            | DenseParams(w, b) ->
                let w' = take w
                DenseParams(w', Option.map take b)
            | Branches ps -> Branches(List.map go ps)
        go template
