namespace NeuralTangents

open System
open System.Numerics.Tensors
open MathNet.Numerics.LinearAlgebra

/// Shape helpers shared by error messages.
module internal Shape =
    /// Python-style shape text, e.g. (3, 5).
    let format (shape: int[]) =
        match shape with
        | [| d |] -> $"({string d},)"
        | _ -> "(" + System.String.Join(", ", shape) + ")"

/// <summary>An n-dimensional float64 array: a shape and one contiguous row-major buffer.</summary>
/// <remarks>A tensor held by a <c>Kernel</c> is never mutated after the kernel is built.</remarks>
type Tensor =
    { Shape: int[]
      Data: float[] }

    /// <summary>Number of axes.</summary>
    member t.Rank = t.Shape.Length

    /// <summary>Number of elements.</summary>
    member t.Length = t.Data.Length

    override t.ToString() =
        $"Tensor {Shape.format t.Shape}"

/// <summary>Construction, conversion and vectorised elementwise maths on <see cref="T:NeuralTangents.Tensor"/>.</summary>
[<RequireQualifiedAccess>]
module Tensor =

    let private sizeOf (shape: int[]) =
        let n =
            shape |> Array.fold (fun (acc: int64) d ->
                if d < 0 then invalidArg "shape" $"dimensions must be ≥ 0, got {Shape.format shape}"
                acc * int64 d) 1L
        if n > int64 System.Array.MaxLength then
            invalidArg "shape" ("a tensor of shape " + (Shape.format shape) + " has " + string n + " elements, more than one buffer can hold (" + string System.Array.MaxLength + ")")
        int n

    /// <summary>Wraps a buffer (not copied) with a shape; the sizes must agree.</summary>
    [<CompiledName("Create")>]
    let create (shape: int[]) (data: float[]) =
        let n = sizeOf shape
        if n <> data.Length then
            invalidArg "data" ("a tensor of shape " + (Shape.format shape) + " needs " + string n + " values, got " + string data.Length)
        { Shape = Array.copy shape; Data = data }

    /// <summary>A tensor of zeros.</summary>
    [<CompiledName("Zeros")>]
    let zeros (shape: int[]) = { Shape = Array.copy shape; Data = Pages.zeroed (sizeOf shape) }

    /// <summary>A tensor with every entry equal to <paramref name="value"/>.</summary>
    [<CompiledName("Full")>]
    let full (shape: int[]) (value: float) = { Shape = Array.copy shape; Data = Array.create (sizeOf shape) value }

    /// <summary>Same buffer, new shape of the same size.</summary>
    [<CompiledName("Reshape")>]
    let reshape (shape: int[]) (t: Tensor) = create shape t.Data

    /// <summary>A deep copy.</summary>
    [<CompiledName("Copy")>]
    let copy (t: Tensor) = { Shape = Array.copy t.Shape; Data = Pages.copy t.Data }

    /// <summary>From a rectangular 2-D array.</summary>
    [<CompiledName("OfArray2D")>]
    let ofArray2D (a: float[,]) =
        let r, c = Array2D.length1 a, Array2D.length2 a
        let data = Array.zeroCreate (r * c)
        for i in 0 .. r - 1 do
            for j in 0 .. c - 1 do
                data[i * c + j] <- a[i, j]
        { Shape = [| r; c |]; Data = data }

    /// <summary>To a rectangular 2-D array; the tensor must have rank 2.</summary>
    [<CompiledName("ToArray2D")>]
    let toArray2D (t: Tensor) =
        if t.Rank <> 2 then invalidArg "t" $"toArray2D needs a rank-2 tensor, got shape {Shape.format t.Shape}"
        let c = t.Shape[1]
        Array2D.init t.Shape[0] c (fun i j -> t.Data[i * c + j])

    /// <summary>From a jagged array whose rows all have the same length.</summary>
    [<CompiledName("OfJagged")>]
    let ofJagged (rows: float[][]) =
        if isNull rows then nullArg "rows"
        let c = if rows.Length = 0 then 0 else rows[0].Length
        rows |> Array.iteri (fun i r ->
            if isNull r || r.Length <> c then
                invalidArg "rows" ("row " + string i + " has " + (string (if isNull r then 0 else r.Length)) + " values, row 0 has " + string c + ": rows must be equally long"))
        { Shape = [| rows.Length; c |]; Data = Array.concat rows }

    /// <summary>To a jagged array; the tensor must have rank 2.</summary>
    [<CompiledName("ToJagged")>]
    let toJagged (t: Tensor) =
        if t.Rank <> 2 then invalidArg "t" $"toJagged needs a rank-2 tensor, got shape {Shape.format t.Shape}"
        Array.init t.Shape[0] (fun i -> Array.sub t.Data (i * t.Shape[1]) t.Shape[1])

    /// <summary>From a 4-D array, e.g. NHWC images.</summary>
    [<CompiledName("OfArray4D")>]
    let ofArray4D (a: float[,,,]) =
        let n0, n1, n2, n3 = Array4D.length1 a, Array4D.length2 a, Array4D.length3 a, Array4D.length4 a
        let data = Array.zeroCreate (n0 * n1 * n2 * n3)
        let mutable k = 0
        for i in 0 .. n0 - 1 do
            for j in 0 .. n1 - 1 do
                for l in 0 .. n2 - 1 do
                    for m in 0 .. n3 - 1 do
                        data[k] <- a[i, j, l, m]
                        k <- k + 1
        { Shape = [| n0; n1; n2; n3 |]; Data = data }

    /// <summary>To a 4-D array; the tensor must have rank 4.</summary>
    [<CompiledName("ToArray4D")>]
    let toArray4D (t: Tensor) =
        if t.Rank <> 4 then invalidArg "t" $"toArray4D needs a rank-4 tensor, got shape {Shape.format t.Shape}"
        let s = t.Shape
        Array4D.init s[0] s[1] s[2] s[3] (fun i j l m -> t.Data[((i * s[1] + j) * s[2] + l) * s[3] + m])

    /// <summary>From a MathNet dense matrix.</summary>
    [<CompiledName("OfMatrix")>]
    let ofMatrix (m: Matrix<float>) = ofArray2D (m.ToArray())

    /// <summary>To a MathNet dense matrix; the tensor must have rank 2.</summary>
    [<CompiledName("ToMatrix")>]
    let toMatrix (t: Tensor) =
        if t.Rank <> 2 then invalidArg "t" $"toMatrix needs a rank-2 tensor, got shape {Shape.format t.Shape}"
        // MathNet stores column-major: build from the row-major buffer.
        Matrix<float>.Build.Dense(t.Shape[0], t.Shape[1], fun i j -> t.Data[i * t.Shape[1] + j])

    let private sameShape (name: string) (a: Tensor) (b: Tensor) =
        if a.Shape <> b.Shape then
            invalidArg name $"shapes differ: {Shape.format a.Shape} and {Shape.format b.Shape}"

    /// <summary>Elementwise sum (vectorised).</summary>
    [<CompiledName("Add")>]
    let add (a: Tensor) (b: Tensor) =
        sameShape "b" a b
        let r = Array.zeroCreate a.Length
        TensorPrimitives.Add(ReadOnlySpan a.Data, ReadOnlySpan b.Data, Span r)
        { Shape = a.Shape; Data = r }

    /// <summary>Elementwise product (vectorised).</summary>
    [<CompiledName("Multiply")>]
    let mul (a: Tensor) (b: Tensor) =
        sameShape "b" a b
        let r = Array.zeroCreate a.Length
        TensorPrimitives.Multiply(ReadOnlySpan a.Data, ReadOnlySpan b.Data, Span r)
        { Shape = a.Shape; Data = r }

    /// <summary><c>c·a</c> (vectorised).</summary>
    [<CompiledName("Scale")>]
    let scale (c: float) (a: Tensor) =
        let r = Array.zeroCreate a.Length
        TensorPrimitives.Multiply(ReadOnlySpan a.Data, c, Span r)
        { Shape = a.Shape; Data = r }

    /// <summary><c>c·a + d</c> elementwise (vectorised).</summary>
    [<CompiledName("Affine")>]
    let affine (c: float) (d: float) (a: Tensor) =
        let r = Array.zeroCreate a.Length
        TensorPrimitives.Multiply(ReadOnlySpan a.Data, c, Span r)
        if d <> 0.0 then TensorPrimitives.Add(ReadOnlySpan r, d, Span r)
        { Shape = a.Shape; Data = r }

    /// <summary><c>c·a + b</c> elementwise (vectorised).</summary>
    [<CompiledName("ScaleAdd")>]
    let scaleAdd (c: float) (a: Tensor) (b: Tensor) =
        sameShape "b" a b
        let r = Array.zeroCreate a.Length
        TensorPrimitives.MultiplyAdd(ReadOnlySpan a.Data, c, ReadOnlySpan b.Data, Span r)
        { Shape = a.Shape; Data = r }

    /// <summary>Adds a constant to every element (vectorised).</summary>
    [<CompiledName("AddScalar")>]
    let addScalar (d: float) (a: Tensor) =
        let r = Array.zeroCreate a.Length
        TensorPrimitives.Add(ReadOnlySpan a.Data, d, Span r)
        { Shape = a.Shape; Data = r }

    /// <summary>Swaps the two leading axes (the batch axes of a kernel), keeping trailing axes in place.</summary>
    [<CompiledName("SwapLeadingAxes")>]
    let swapLeadingAxes (t: Tensor) =
        if t.Rank < 2 then invalidArg "t" $"needs rank ≥ 2, got shape {Shape.format t.Shape}"
        let n1, n2 = t.Shape[0], t.Shape[1]
        let inner = t.Length / max 1 (n1 * n2)
        let r = Array.zeroCreate t.Length
        for i in 0 .. n1 - 1 do
            for j in 0 .. n2 - 1 do
                Array.blit t.Data ((i * n2 + j) * inner) r ((j * n1 + i) * inner) inner
        let shape = Array.copy t.Shape
        shape[0] <- n2
        shape[1] <- n1
        { Shape = shape; Data = r }

    /// <summary>Moves axis <paramref name="src"/> to position <paramref name="dst"/> (numpy's moveaxis).</summary>
    [<CompiledName("MoveAxis")>]
    let moveAxis (src: int) (dst: int) (t: Tensor) =
        let rank = t.Rank
        let norm a =
            let a' = if a < 0 then a + rank else a
            if a' < 0 || a' >= rank then invalidArg "axis" $"axis {string a} is out of range for shape {Shape.format t.Shape}"
            a'
        let src, dst = norm src, norm dst
        if src = dst then t
        else
            let order = [ 0 .. rank - 1 ] |> List.filter ((<>) src) |> List.toArray
            let perm = Array.insertAt dst src order // perm[newAxis] = oldAxis
            let newShape = perm |> Array.map (fun a -> t.Shape[a])
            let oldStrides = Array.zeroCreate rank
            let mutable s = 1
            for a in rank - 1 .. -1 .. 0 do
                oldStrides[a] <- s
                s <- s * t.Shape[a]
            let strides = perm |> Array.map (fun a -> oldStrides[a])
            let r = Array.zeroCreate t.Length
            let idx = Array.zeroCreate rank
            for k in 0 .. t.Length - 1 do
                let mutable off = 0
                for a in 0 .. rank - 1 do
                    off <- off + idx[a] * strides[a]
                r[k] <- t.Data[off]
                let mutable a = rank - 1
                let mutable carry = true
                while carry && a >= 0 do
                    idx[a] <- idx[a] + 1
                    if idx[a] < newShape[a] then carry <- false
                    else
                        idx[a] <- 0
                        a <- a - 1
            { Shape = newShape; Data = r }

    /// <summary>Permutes the axes (numpy's <c>transpose(x, axes)</c>): axis <c>a</c> of the result is axis
    /// <c>axes[a]</c> of <paramref name="t"/>.</summary>
    /// <exception cref="T:System.ArgumentException"><paramref name="axes"/> is not a permutation of the axes.</exception>
    [<CompiledName("Permute")>]
    let permute (axes: int[]) (t: Tensor) =
        let rank = t.Rank
        if axes.Length <> rank || (Array.sort axes) <> Array.init rank id then
            invalidArg "axes" $"must be a permutation of 0..{string (rank - 1)}, got {Shape.format axes}"
        if axes = Array.init rank id then copy t
        else
            let oldStrides = Array.zeroCreate rank
            let mutable s = 1
            for a in rank - 1 .. -1 .. 0 do
                oldStrides[a] <- s
                s <- s * t.Shape[a]
            let newShape = axes |> Array.map (fun a -> t.Shape[a])
            let strides = axes |> Array.map (fun a -> oldStrides[a])
            let r = Array.zeroCreate t.Length
            let idx = Array.zeroCreate rank
            let mutable off = 0
            for k in 0 .. t.Length - 1 do
                r[k] <- t.Data[off]
                // Odometer over the result's index, keeping the source offset in step.
                let mutable a = rank - 1
                let mutable carry = true
                while carry && a >= 0 do
                    idx[a] <- idx[a] + 1
                    off <- off + strides[a]
                    if idx[a] < newShape[a] then carry <- false
                    else
                        off <- off - idx[a] * strides[a]
                        idx[a] <- 0
                        a <- a - 1
            { Shape = newShape; Data = r }

    /// <summary>True when every element is finite.</summary>
    [<CompiledName("IsFinite")>]
    let isFinite (t: Tensor) =
        // The largest magnitude is NaN or ∞ exactly when some element is (one vectorised pass).
        t.Data.Length = 0 || Double.IsFinite(TensorPrimitives.MaxMagnitude(ReadOnlySpan t.Data))

    /// <summary>Product of two tensors summed over shared labels (numpy's two-operand <c>einsum</c> with integer
    /// subscripts): <c>out[lOut] = Σ a[la] · b[lb]</c>, the sum running over every label of <paramref name="la"/> or
    /// <paramref name="lb"/> that <paramref name="lOut"/> lacks. A label may repeat within an operand (its diagonal is
    /// taken); axes that share a label must have the same size.</summary>
    /// <param name="a">First operand.</param>
    /// <param name="la">One label per axis of <paramref name="a"/>.</param>
    /// <param name="b">Second operand.</param>
    /// <param name="lb">One label per axis of <paramref name="b"/>.</param>
    /// <param name="lOut">Labels of the result's axes, distinct, each one found in <paramref name="la"/> or
    /// <paramref name="lb"/>.</param>
    /// <returns>A fresh tensor; its axis <c>i</c> has the size of label <c>lOut[i]</c>.</returns>
    /// <exception cref="T:System.ArgumentException">a label list does not fit its operand, a label is given two sizes, or
    /// an output label is repeated or found in neither operand.</exception>
    [<CompiledName("Contract")>]
    let contract (a: Tensor) (la: int[]) (b: Tensor) (lb: int[]) (lOut: int[]) : Tensor =
        if la.Length <> a.Rank then invalidArg "la" ("needs " + string a.Rank + " labels for shape " + (Shape.format a.Shape) + ", got " + string la.Length)
        if lb.Length <> b.Rank then invalidArg "lb" ("needs " + string b.Rank + " labels for shape " + (Shape.format b.Shape) + ", got " + string lb.Length)
        if (Array.distinct lOut).Length <> lOut.Length then invalidArg "lOut" $"labels must be distinct, got {Show.ints lOut}"
        let size = System.Collections.Generic.Dictionary<int, int>()
        let record (name: string) (labels: int[]) (shape: int[]) =
            for i in 0 .. labels.Length - 1 do
                match size.TryGetValue labels[i] with
                | true, d when d <> shape[i] ->
                    invalidArg name ("label " + (string (labels[i])) + " has size " + (string (shape[i])) + " here but " + string d + " elsewhere")
                | _ -> size[labels[i]] <- shape[i]
        record "la" la a.Shape
        record "lb" lb b.Shape
        for l in lOut do
            if not (size.ContainsKey l) then invalidArg "lOut" $"label {string l} is in neither operand"
        // Every label once: the output's first (so the result is written in order), then the summed ones.
        let summed = Array.append la lb |> Array.distinct |> Array.filter (fun l -> not (Array.contains l lOut))
        let labels = Array.append lOut summed
        let dims = labels |> Array.map (fun l -> size[l])
        // Stride of each label in an operand: the sum of the strides of its axes carrying that label.
        let strides (labelsOf: int[]) (shape: int[]) =
            let axisStride = Array.zeroCreate shape.Length
            let mutable s = 1
            for ax in shape.Length - 1 .. -1 .. 0 do
                axisStride[ax] <- s
                s <- s * shape[ax]
            labels |> Array.map (fun l ->
                let mutable acc = 0
                for ax in 0 .. labelsOf.Length - 1 do
                    if labelsOf[ax] = l then acc <- acc + axisStride[ax]
                acc)
        let sa, sb = strides la a.Shape, strides lb b.Shape
        let nOut, nSum = lOut.Length, summed.Length
        let outShape = Array.sub dims 0 nOut
        let r = zeros outShape
        let inner = Array.fold (*) 1 (Array.sub dims nOut nSum)
        if r.Length > 0 && inner > 0 then
            let idx = Array.zeroCreate labels.Length
            // Odometer over the labels lo .. hi-1, moving both offsets in step.
            // off[0], off[1]: the current offsets into a and b.
            let off = [| 0; 0 |]
            let step (lo: int) (hi: int) =
                let mutable ax = hi - 1
                let mutable carry = true
                while carry && ax >= lo do
                    idx[ax] <- idx[ax] + 1
                    off[0] <- off[0] + sa[ax]
                    off[1] <- off[1] + sb[ax]
                    if idx[ax] < dims[ax] then carry <- false
                    else
                        off[0] <- off[0] - idx[ax] * sa[ax]
                        off[1] <- off[1] - idx[ax] * sb[ax]
                        idx[ax] <- 0
                        ax <- ax - 1
            for o in 0 .. r.Length - 1 do
                let mutable acc = 0.0
                for _ in 1 .. inner do
                    acc <- acc + a.Data[off[0]] * b.Data[off[1]]
                    step nOut labels.Length
                r.Data[o] <- acc
                step 0 nOut
        r
