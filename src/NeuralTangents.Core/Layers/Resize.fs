namespace NeuralTangents.Layers

open System
open NeuralTangents

/// ImageResize (neural_tangents' `stax.ImageResize` in `stax/linear.py`, after `jax.image.resize`): the 1D resize
/// operators of "linear" and "nearest", applied axis by axis to the inputs and to every covariance; the definition.
module Resize =

    let private fail (msg: string) = raise (NeuralTangentsException msg)

    /// The name of a method as jax spells it.
    let methodName (m: ResizeMethod) =
        match m with
        | ResizeMethod.Linear -> "linear"
        | ResizeMethod.Nearest -> "nearest"

    /// A method from its jax name (case-insensitive): linear/bilinear/trilinear/triangle or nearest; jax's
    /// lanczos3, lanczos5 and cubic have no kernel in neural_tangents and are refused here.
    let parseMethod (name: string) =
        match name.ToLowerInvariant() with
        | "linear" | "bilinear" | "trilinear" | "triangle" -> ResizeMethod.Linear
        | "nearest" -> ResizeMethod.Nearest
        | "lanczos3" | "lanczos5" | "cubic" | "bicubic" | "tricubic" ->
            invalidArg "method"
                $"ImageResize: only \"linear\" and \"nearest\" have an infinite-width kernel (neural_tangents' kernel_fn supports only those), got \"{name}\""
        | _ -> invalidArg "method" $"ImageResize: unknown method \"{name}\"; use \"linear\" or \"nearest\""

    /// Validated ImageResize arguments: every size −1 or ≥ 1.
    let imageResizeSpec (shape: int list) (m: ResizeMethod) (antialias: bool) (batchAxis: int) (channelAxis: int) =
        if List.isEmpty shape then invalidArg "shape" "ImageResize: the shape lists one size per input axis, got none"
        if shape |> List.exists (fun s -> s <> -1 && s < 1) then
            invalidArg "shape" $"ImageResize: every size must be -1 (unchanged) or ≥ 1, got {Show.intList shape}"
        if batchAxis = channelAxis then
            invalidArg "channelAxis" $"ImageResize: channel_axis must differ from batch_axis, both are {string batchAxis}"
        { Shape = shape; Method = m; Antialias = antialias; BatchAxis = batchAxis; ChannelAxis = channelAxis }

    /// numpy's float32 machine epsilon, 2⁻²³ (jax's threshold for a vanishing weight sum).
    let private float32Eps = 1.1920928955078125e-7

    /// The (out × in) operator of jax.image's "linear" resize along one axis (`compute_weight_mat` with the triangle
    /// kernel and no translation): output o samples the input at f = (o + 0.5)·in/out − 0.5 with weights
    /// max(0, 1 − |f − i|/s), s = max(in/out, 1) with antialias (widened when downsampling) or 1 without; the weights
    /// of each output are normalised to sum to 1 (0 when their sum is below 1000·float32 eps), and an output whose f
    /// lies outside [−0.5, in − 0.5] gets none.
    let linearOperator (nIn: int) (nOut: int) (antialias: bool) : float[,] =
        let scale = float nOut / float nIn
        let inv = 1.0 / scale
        let kernelScale = if antialias then max inv 1.0 else 1.0
        let w = Array2D.zeroCreate nOut nIn
        for o in 0 .. nOut - 1 do
            let f = (float o + 0.5) * inv - 0.5
            let raw = Array.init nIn (fun i -> max 0.0 (1.0 - abs (f - float i) / kernelScale))
            let total = Array.sum raw
            let inside = f >= -0.5 && f <= float nIn - 0.5
            if inside && abs total > 1000.0 * float32Eps then
                for i in 0 .. nIn - 1 do w[o, i] <- raw[i] / total
        w

    /// The (out × in) selection of jax.image's "nearest" resize: output o takes input floor((o + 0.5)·in/out),
    /// computed in float32 as jax does.
    let nearestOperator (nIn: int) (nOut: int) : float[,] =
        let w = Array2D.zeroCreate nOut nIn
        for o in 0 .. nOut - 1 do
            let pos = (float32 o + 0.5f) * float32 nIn / float32 nOut
            let i = min (nIn - 1) (int (floor pos))
            w[o, i] <- 1.0
        w

    /// The operator of a method resizing one axis from nIn to nOut entries.
    let operator (m: ResizeMethod) (antialias: bool) (nIn: int) (nOut: int) =
        match m with
        | ResizeMethod.Linear -> linearOperator nIn nOut antialias
        | ResizeMethod.Nearest -> nearestOperator nIn nOut

    /// Refuses a resized array (or kernel) of <paramref name="shape"/> before it is allocated when it exceeds one
    /// .NET array or the free memory (counted in int64: a 2×2 image resized to 256×256 has a 2³²-entry kernel).
    let private checkSize (shape: int[]) =
        Memory.checkArray $"""ImageResize: the resized array of shape ({(String.Join(", ", shape))})""" "choose a smaller 'shape'" shape

    /// Applies an (out × in) operator along one axis of a tensor.
    let applyAxis (axis: int) (op: float[,]) (t: Tensor) : Tensor =
        let nOut, nIn = Array2D.length1 op, Array2D.length2 op
        if t.Shape[axis] <> nIn then invalidArg "t" ("axis " + string axis + " has size " + (string (t.Shape[axis])) + ", the operator takes " + string nIn)
        let outer = Array.fold (*) 1 t.Shape[.. axis - 1]
        let inner = Array.fold (*) 1 t.Shape[axis + 1 ..]
        checkSize (Array.updateAt axis nOut t.Shape)
        let out = Array.zeroCreate (outer * nOut * inner)
        for a in 0 .. outer - 1 do
            for o in 0 .. nOut - 1 do
                let dst = (a * nOut + o) * inner
                for i in 0 .. nIn - 1 do
                    let w = op[o, i]
                    if w <> 0.0 then
                        let src = (a * nIn + i) * inner
                        for c in 0 .. inner - 1 do out[dst + c] <- out[dst + c] + w * t.Data[src + c]
        let shape = Array.copy t.Shape
        shape[axis] <- nOut
        Tensor.create shape out

    /// Resizes every axis of <c>t</c> to <c>target</c> (axes whose size does not change are left alone, as
    /// jax.image.resize does).
    let resizeTo (m: ResizeMethod) (antialias: bool) (target: int[]) (t: Tensor) =
        checkSize target // the answer, before any operator or intermediate is built
        let mutable r = t
        for a in 0 .. t.Rank - 1 do
            if target[a] <> r.Shape[a] then r <- applyAxis a (operator m antialias r.Shape[a] target[a]) r
        r

    /// The transpose of <c>resizeTo</c>: the cotangent pulled back axis by axis through the operators' transposes.
    let resizeBack (m: ResizeMethod) (antialias: bool) (inShape: int[]) (ct: Tensor) =
        let mutable r = ct
        for a in 0 .. inShape.Length - 1 do
            if inShape[a] <> r.Shape[a] then
                let op = operator m antialias inShape[a] r.Shape[a]
                let t = Array2D.init (Array2D.length2 op) (Array2D.length1 op) (fun i o -> op[o, i])
                r <- applyAxis a t r
        r

    /// The output shape: −1 keeps the input's size.
    let outputShape (spec: ImageResizeSpec) (shape: int[]) =
        if spec.Shape.Length <> shape.Length then
            fail ("ImageResize: shape " + Show.intList spec.Shape + " lists " + string spec.Shape.Length + " sizes but the input has rank " + string shape.Length + " (shape " + (Shape.format shape) + "); give one size per axis, -1 to keep it")
        List.toArray spec.Shape |> Array.mapi (fun i s -> if s = -1 then shape[i] else s)

    /// ImageResize on a kernel (neural_tangents' `ImageResize.kernel_fn`): a resize is linear along each axis, so each
    /// covariance is resized along every axis — both members of each spatial pair (x1's position with x1's
    /// operator, x2's with x2's) and the batch axes when the batch is resized — which is R·K·Rᵀ per pair. The kernel
    /// is first brought to its natural spatial order. The channel axis cannot be resized.
    let imageResizeKernel (spec: ImageResizeSpec) (k: Kernel) : Kernel =
        let ndim = k.Shape1.Length
        let target1, target2 = outputShape spec k.Shape1, outputShape spec k.Shape2
        let ch, b = Axes.norm ndim k.ChannelAxis, Axes.norm ndim k.BatchAxis
        if target1[ch] <> k.Shape1[ch] then
            fail ("ImageResize: resizing the channel axis " + string ch + " is not defined in the infinite-width limit; set shape[" + string ch + "] = -1")
        let k = if k.IsReversed then Kernel.reverse k else k
        let spatial = [ for a in 0 .. ndim - 1 do if a <> b && a <> ch then yield a ]
        // Target sizes of a covariance between inputs of (output) shapes s1 and s2, in its storage layout.
        let sizes (s1: int[]) (s2: int[]) (batchBoth: bool) =
            Array.concat [ [| s1[b] |]
                           (if batchBoth then [| s2[b] |] else [||])
                           [| for a in spatial do
                                yield s1[a]
                                if not k.DiagonalSpatial then yield s2[a] |] ]
        let rs (target: int[]) (t: Tensor) = resizeTo spec.Method spec.Antialias target t
        let covBoth = not k.DiagonalBatch
        { k with
            Nngp = rs (sizes target1 target2 true) k.Nngp
            Ntk = k.Ntk |> Option.map (rs (sizes target1 target2 true))
            Cov1 = rs (sizes target1 target1 covBoth) k.Cov1
            Cov2 = k.Cov2 |> Option.map (rs (sizes target2 target2 covBoth))
            Shape1 = target1
            Shape2 = target2 }

    /// ImageResize's masking (neural_tangents' <c>ImageResize.mask_fn</c>, remask_kernel=True): the visible entries
    /// are resized and every output with a non-zero visible weight is visible, so an output is masked only when all
    /// its contributions come from masked inputs (content has preference over the mask).
    let private resizeMask (spec: ImageResizeSpec) =
        Masking.propagating true (fun m _ ->
            let visible = Tensor.create m.Shape (m.Data |> Array.map (fun v -> if v <> 0.0 then 0.0 else 1.0))
            let r = resizeTo spec.Method spec.Antialias (outputShape spec m.Shape) visible
            Tensor.create r.Shape (r.Data |> Array.map (fun v -> if v <> 0.0 then 0.0 else 1.0)))

    /// ImageResize(shape, method, antialias, precision, batch_axis, channel_axis) (neural_tangents'
    /// <c>stax.ImageResize</c>). No parameters; float64 throughout whatever <c>precision</c> says.
    let imageResize (spec: ImageResizeSpec) : LayerDef =
        let shape = List.toArray spec.Shape
        let n = shape.Length
        let b, ch = ((spec.BatchAxis % n) + n) % n, ((spec.ChannelAxis % n) + n) % n
        let resizesSpatial = shape |> Array.indexed |> Array.exists (fun (i, s) -> i <> b && i <> ch && s <> -1)
        { Name = "ImageResize"
          Args =
            [ "shape", IntsArg spec.Shape
              "method", StringArg(methodName spec.Method)
              "antialias", BoolArg spec.Antialias
              "precision", NoneArg
              "batch_axis", IntArg spec.BatchAxis
              "channel_axis", IntArg spec.ChannelAxis ]
          // @requires(diagonal_batch = batch not resized, diagonal_spatial = Diagonal(input = NO when a spatial axis is
          // resized, else YES), batch_axis, channel_axis): resizing mixes positions, so it needs their covariances.
          Requires =
            { BatchAxis = Some spec.BatchAxis; ChannelAxis = Some spec.ChannelAxis; Resets = false
              DiagonalBatch = (if shape[b] = -1 then None else Some { Input = Tri.No; Output = Tri.No })
              DiagonalSpatial = Some { Input = (if resizesSpatial then Tri.No else Tri.Yes); Output = Tri.No } }
          Kernel = Masking.kernel "ImageResize" (resizeMask spec) (fun _ k -> imageResizeKernel spec k)
          Init = fun _ s -> outputShape spec s, Params.none
          Apply = fun _ _ x -> resizeTo spec.Method spec.Antialias (outputShape spec x.Shape) x
          Vjp = fun _ _ x ct -> resizeBack spec.Method spec.Antialias x.Shape ct
          ParamVjp = fun _ _ _ _ -> Params.none
          GradDot = None
          Jvp = LinearInInput
          Mask = resizeMask spec }
