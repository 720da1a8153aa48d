namespace NeuralTangents.Finite

open System
open NeuralTangents

/// Axis helpers shared by the finite-network rules.
module internal Axes =

    /// Normalises a possibly negative axis for a tensor of the given rank.
    let norm (rank: int) (axis: int) =
        let a = if axis < 0 then axis + rank else axis
        if a < 0 || a >= rank then
            raise (NeuralTangentsException(sprintf "axis %d is out of range for a tensor of rank %d" axis rank))
        a

    /// Moves axis <c>a</c> last, runs <c>f</c> on the (rows × channels) view, moves the result's last axis back.
    let withChannelsLast (axis: int) (f: Tensor -> Tensor) (x: Tensor) =
        let a = norm x.Rank axis
        if a = x.Rank - 1 then f x
        else x |> Tensor.moveAxis a (x.Rank - 1) |> f |> Tensor.moveAxis (x.Rank - 1) a

    /// The sub-tensor of one batch element, keeping a batch axis of size 1.
    let takeBatch (axis: int) (i: int) (x: Tensor) =
        let a = norm x.Rank axis
        let front = if a = 0 then x else Tensor.moveAxis a 0 x
        let inner = front.Length / front.Shape[0]
        let shape = Array.copy front.Shape
        shape[0] <- 1
        let one = Tensor.create shape (Array.sub front.Data (i * inner) inner)
        if a = 0 then one else Tensor.moveAxis 0 a one

/// Finite Dense and Flatten, after neural_tangents' `stax/linear.py` (`Dense.apply_fn`, `Flatten.apply_fn`).
module internal Linear =

    /// (weight multiplier, bias multiplier) of the forward pass:
    /// ntk: out = W_std/√N_in · x·W + b_std · b;  standard: out = x·W/√s0 + b.
    let private scales (d: DenseSpec) (inWidth: int) =
        match d.Parameterization with
        | Parameterization.Ntk -> d.WStd / Math.Sqrt(float inWidth), defaultArg d.BStd 0.0
        | Parameterization.Standard -> 1.0 / Math.Sqrt(float (fst d.S)), 1.0

    /// Dense forward on a (rows × in) view, channels last: row r of the output is Σ_k scale·x[r,k]·W[k,:] + bScale·b.
    let private forwardRows (d: DenseSpec) (w: Tensor) (b: Tensor option) (x: Tensor) =
        let inW, outW = w.Shape[0], w.Shape[1]
        let c = x.Shape[x.Rank - 1]
        if c <> inW then
            raise (NeuralTangentsException(sprintf "Dense: the input has %d channels but W has %d rows" c inW))
        let rows = x.Length / max 1 inW
        let scale, bScale = scales d inW
        let out = Array.zeroCreate (rows * outW)
        for r in 0 .. rows - 1 do
            let o = Span(out, r * outW, outW)
            for k in 0 .. inW - 1 do
                let v = scale * x.Data[r * inW + k]
                if v <> 0.0 then System.Numerics.Tensors.TensorPrimitives.MultiplyAdd(ReadOnlySpan(w.Data, k * outW, outW), v, ReadOnlySpan(out, r * outW, outW), o)
            match b with
            | Some b -> System.Numerics.Tensors.TensorPrimitives.MultiplyAdd(ReadOnlySpan b.Data, bScale, ReadOnlySpan(out, r * outW, outW), o)
            | None -> ()
        let shape = Array.copy x.Shape
        shape[shape.Length - 1] <- outW
        Tensor.create shape out

    /// Dense forward pass on inputs with the channel axis anywhere.
    let dense (d: DenseSpec) (w: Tensor) (b: Tensor option) (x: Tensor) =
        Axes.withChannelsLast d.ChannelAxis (forwardRows d w b) x

    /// The (rows × channels) view of a tensor: its channel axis moved last.
    let channelsLast (axis: int) (t: Tensor) =
        let a = Axes.norm t.Rank axis
        if a = t.Rank - 1 then t else Tensor.moveAxis a (t.Rank - 1) t

    /// Dense's input cotangent on channels-last views: ∂x[r,k] = scale·ct[r,:]·W[k,:].
    let denseInputGrad (d: DenseSpec) (w: Tensor) (xs: Tensor) (cs: Tensor) =
        let inW, outW = w.Shape[0], w.Shape[1]
        let rows = xs.Length / max 1 inW
        let scale, _ = scales d inW
        let dx = Array.zeroCreate xs.Length
        for r in 0 .. rows - 1 do
            let cr = ReadOnlySpan(cs.Data, r * outW, outW)
            for k in 0 .. inW - 1 do
                dx[r * inW + k] <- scale * System.Numerics.Tensors.TensorPrimitives.Dot(cr, ReadOnlySpan(w.Data, k * outW, outW))
        Tensor.create xs.Shape dx

    /// Dense's parameter gradients on channels-last views:
    /// ∂W[k,:] = scale·Σ_r x[r,k]·ct[r,:],  ∂b = bScale·Σ_r ct[r,:].
    let denseParamGrads (d: DenseSpec) (w: Tensor) (b: Tensor option) (xs: Tensor) (cs: Tensor) =
        let inW, outW = w.Shape[0], w.Shape[1]
        let rows = xs.Length / max 1 inW
        let scale, bScale = scales d inW
        let dw = Array.zeroCreate (inW * outW)
        let db = Array.zeroCreate outW
        for r in 0 .. rows - 1 do
            let cr = ReadOnlySpan(cs.Data, r * outW, outW)
            for k in 0 .. inW - 1 do
                let v = scale * xs.Data[r * inW + k]
                if v <> 0.0 then
                    System.Numerics.Tensors.TensorPrimitives.MultiplyAdd(cr, v, ReadOnlySpan(dw, k * outW, outW), Span(dw, k * outW, outW))
            System.Numerics.Tensors.TensorPrimitives.Add(ReadOnlySpan db, cr, Span db)
        Tensor.create w.Shape dw, b |> Option.map (fun b -> Tensor.create b.Shape (Array.map (fun v -> bScale * v) db))

    /// Contribution of one Dense layer to ⟨∂f_a/∂θ, ∂f_b/∂θ⟩ from its channels-last inputs x and output cotangents
    /// ct of two backward passes, without forming ∂W (neural_tangents' structured derivatives):
    /// scale²·Σ_{r,r'} (x_a[r]·x_b[r'])(ct_a[r]·ct_b[r']) + bScale²·(Σ_r ct_a[r])·(Σ_r' ct_b[r']) with a bias.
    let denseGradDot (d: DenseSpec) (inW: int) (hasBias: bool) (xa: Tensor) (ca: Tensor) (xb: Tensor) (cb: Tensor) =
        let outW = ca.Shape[ca.Rank - 1]
        let ra, rb = ca.Length / outW, cb.Length / outW
        let scale, bScale = scales d inW
        let dot (u: float[]) i (v: float[]) j len =
            System.Numerics.Tensors.TensorPrimitives.Dot(ReadOnlySpan(u, i * len, len), ReadOnlySpan(v, j * len, len))
        let mutable w = 0.0
        for r in 0 .. ra - 1 do
            for r' in 0 .. rb - 1 do
                let cc = dot ca.Data r cb.Data r' outW
                if cc <> 0.0 then w <- w + dot xa.Data r xb.Data r' inW * cc
        let bias =
            if not hasBias then 0.0
            else
                let sum (c: Tensor) rows =
                    let s = Array.zeroCreate outW
                    for r in 0 .. rows - 1 do
                        System.Numerics.Tensors.TensorPrimitives.Add(ReadOnlySpan s, ReadOnlySpan(c.Data, r * outW, outW), Span s)
                    s
                System.Numerics.Tensors.TensorPrimitives.Dot(ReadOnlySpan(sum ca ra), ReadOnlySpan(sum cb rb))
        scale * scale * w + bScale * bScale * bias

    /// Flatten forward: the batch axis moved to position 0 (batch_axis_out = 0) or last (1), then reshaped to
    /// (N, rest) or (rest, N).
    let flatten (f: FlattenSpec) (x: Tensor) =
        let b = Axes.norm x.Rank f.BatchAxis
        let target = if f.BatchAxisOut = 0 then 0 else x.Rank - 1
        let moved = if b = target then x else Tensor.moveAxis b target x
        Tensor.reshape (NeuralTangents.Rules.Linear.flattenShape f x.Shape) moved

    /// Flatten backward: the cotangent reshaped to the moved input shape, then the batch axis moved back.
    let flattenBackward (f: FlattenSpec) (x: Tensor) (ct: Tensor) =
        let b = Axes.norm x.Rank f.BatchAxis
        let target = if f.BatchAxisOut = 0 then 0 else x.Rank - 1
        let movedShape =
            if b = target then x.Shape
            else
                let order = [ 0 .. x.Rank - 1 ] |> List.filter ((<>) b) |> List.toArray |> Array.insertAt target b
                order |> Array.map (fun ax -> x.Shape[ax])
        let c = Tensor.create movedShape ct.Data
        if b = target then c else Tensor.moveAxis target b c

/// Finite nonlinearities and their derivatives, after neural_tangents' `stax/elementwise.py` (`fn` of each layer).
module internal Elementwise =

    let private invSqrt2 = 1.0 / Math.Sqrt 2.0
    let private invSqrt2Pi = 1.0 / Math.Sqrt(2.0 * Math.PI)
    let private sqrt2OverPi = Math.Sqrt(2.0 / Math.PI)
    let private twoOverSqrtPi = 2.0 / Math.Sqrt Math.PI

    /// (φ, φ') of an elementwise layer; None for other layers.
    /// ABRelu's derivative at 0 is (a+b)/2, the average of the one-sided slopes, as JAX's min/max gradients give.
    /// Gelu exact: φ = x·Φ(x), φ' = Φ(x) + x·ϕ(x); approximate (jax.nn.gelu's tanh form):
    /// φ = x/2·(1 + tanh(√(2/π)(x + 0.044715x³))).
    let functions (layer: Layer) : ((float -> float) * (float -> float)) option =
        match layer with
        | ABRelu s ->
            Some((fun x -> if x < 0.0 then s.A * x else s.B * x),
                 (fun x -> if x < 0.0 then s.A elif x > 0.0 then s.B else 0.5 * (s.A + s.B)))
        | Erf s ->
            Some((fun x -> s.A * MathNet.Numerics.SpecialFunctions.Erf(s.B * x) + s.C),
                 (fun x -> let u = s.B * x in s.A * s.B * twoOverSqrtPi * Math.Exp(-u * u)))
        | Sin s ->
            Some((fun x -> s.A * Math.Sin(s.B * x + s.C)), (fun x -> s.A * s.B * Math.Cos(s.B * x + s.C)))
        | Gelu false ->
            Some((fun x -> 0.5 * x * (1.0 + MathNet.Numerics.SpecialFunctions.Erf(x * invSqrt2))),
                 (fun x ->
                     0.5 * (1.0 + MathNet.Numerics.SpecialFunctions.Erf(x * invSqrt2))
                     + x * invSqrt2Pi * Math.Exp(-0.5 * x * x)))
        | Gelu true ->
            Some((fun x -> 0.5 * x * (1.0 + Math.Tanh(sqrt2OverPi * (x + 0.044715 * x * x * x)))),
                 (fun x ->
                     let t = Math.Tanh(sqrt2OverPi * (x + 0.044715 * x * x * x))
                     0.5 * (1.0 + t) + 0.5 * x * (1.0 - t * t) * sqrt2OverPi * (1.0 + 3.0 * 0.044715 * x * x)))
        | Monomial d ->
            Some((fun x -> Math.Pow(x, float d)),
                 (fun x -> if d = 0 then 0.0 else float d * Math.Pow(x, float (d - 1))))
        | _ -> None

    /// φ applied to every entry.
    let apply (phi: float -> float) (x: Tensor) = Tensor.create x.Shape (Array.map phi x.Data)

    /// ct·φ'(x), the cotangent of the input.
    let backward (dphi: float -> float) (x: Tensor) (ct: Tensor) =
        Tensor.create x.Shape (Array.map2 (fun v c -> c * dphi v) x.Data ct.Data)

/// Finite fan-in layers, after neural_tangents' `stax/branching.py`.
module internal Branching =

    let private sameShapes (name: string) (xs: Tensor list) =
        match xs with
        | [] -> raise (NeuralTangentsException(sprintf "%s: needs at least one input branch (use FanOut before it)" name))
        | x0 :: rest ->
            for x in rest do
                if x.Shape <> x0.Shape then
                    raise (NeuralTangentsException(
                        sprintf "%s: all branches must have equal shapes, got %s" name
                            (xs |> List.map (fun x -> sprintf "%A" x.Shape) |> String.concat ", ")))

    let fanInSum (xs: Tensor list) =
        sameShapes "FanInSum" xs
        List.reduce Tensor.add xs

    let fanInProd (xs: Tensor list) =
        sameShapes "FanInProd" xs
        List.reduce Tensor.mul xs

    /// Cotangents of the factors of a product: ct·Π_{j≠i} x_j (by direct products, exact when some x_j = 0).
    let fanInProdBackward (xs: Tensor list) (ct: Tensor) =
        xs |> List.mapi (fun i _ ->
            xs |> List.indexed |> List.fold (fun acc (j, x) -> if i = j then acc else Tensor.mul acc x) ct)

    /// Shape of a concatenation along <c>axis</c>; the other axes must agree.
    let concatShape (axis: int) (shapes: int[] list) =
        match shapes with
        | [] -> raise (NeuralTangentsException "FanInConcat: needs at least one input branch (use FanOut before it)")
        | s0 :: _ ->
            let a = Axes.norm s0.Length axis
            for s in shapes do
                if s.Length <> s0.Length || Array.removeAt a s <> Array.removeAt a s0 then
                    raise (NeuralTangentsException(
                        sprintf "FanInConcat: shapes must agree off the concatenation axis %d, got %s" axis
                            (shapes |> List.map (sprintf "%A") |> String.concat ", ")))
            let r = Array.copy s0
            r[a] <- shapes |> List.sumBy (fun s -> s[a])
            r

    /// (outer, inner) block sizes around axis a: the tensor is outer × shape[a] × inner.
    let private blocks (a: int) (shape: int[]) =
        Array.fold (*) 1 shape[.. a - 1], Array.fold (*) 1 shape[a + 1 ..]

    /// Concatenation along any axis.
    let fanInConcat (axis: int) (xs: Tensor list) =
        let shape = concatShape axis (xs |> List.map (fun x -> x.Shape))
        let a = Axes.norm shape.Length axis
        let outer, inner = blocks a shape
        let total = shape[a] * inner
        let r = Array.zeroCreate (outer * total)
        let mutable off = 0
        for x in xs do
            let len = x.Shape[a] * inner
            for o in 0 .. outer - 1 do
                Array.blit x.Data (o * len) r (o * total + off) len
            off <- off + len
        Tensor.create shape r

    /// Splits a concatenation's cotangent back into the branches' shapes.
    let fanInConcatBackward (axis: int) (shapes: int[] list) (ct: Tensor) =
        let a = Axes.norm ct.Rank axis
        let outer, inner = blocks a ct.Shape
        let total = ct.Shape[a] * inner
        let mutable off = 0
        [ for s in shapes do
            let len = s[a] * inner
            let r = Array.zeroCreate (outer * len)
            for o in 0 .. outer - 1 do
                Array.blit ct.Data (o * total + off) r (o * len) len
            off <- off + len
            Tensor.create s r ]
