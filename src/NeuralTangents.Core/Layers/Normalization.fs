namespace NeuralTangents.Layers

open System
open NeuralTangents

/// LayerNorm (neural_tangents' `stax.LayerNorm` in `stax/linear.py`): its kernel rule, finite forward and backward
/// passes and its definition.
module Normalization =

    let private fail (msg: string) = raise (NeuralTangentsException msg)

    /// Validated LayerNorm arguments (neural_tangents' defaults: axis = (−1,), eps = 1e-12, batch_axis = 0,
    /// channel_axis = −1).
    let layerNormSpec (axis: int list) (eps: float) (batchAxis: int) (channelAxis: int) : LayerNormSpec =
        if List.isEmpty axis then invalidArg "axis" "LayerNorm: needs at least one axis to normalise over, got none"
        if not (Double.IsFinite eps) || eps < 0.0 then
            invalidArg "eps" $"LayerNorm: must be finite and ≥ 0, got {Show.g eps}"
        if batchAxis = channelAxis then
            invalidArg "channelAxis" $"LayerNorm: channel_axis must differ from batch_axis, both are {string batchAxis}"
        { Axis = axis; Eps = eps; BatchAxis = batchAxis; ChannelAxis = channelAxis }

    /// The normalised axes of a rank-<c>ndim</c> input, non-negative and distinct.
    let private axesOf (l: LayerNormSpec) (ndim: int) =
        l.Axis |> List.map (fun a ->
            if a < -ndim || a >= ndim then
                fail ("LayerNorm: axis " + string a + " is out of range for inputs of rank " + string ndim + "; give axes in -" + string ndim + ".." + (string (ndim - 1)))
            (a + ndim) % ndim) |> List.distinct

    /// For every entry of a row-major tensor of <c>shape</c>: the index of its group, the entries that share every
    /// coordinate outside <c>axes</c>; and the number of groups.
    let private groups (shape: int[]) (axes: int list) : int[] * int =
        let total = Array.fold (*) 1 shape
        let keep = [| for a in 0 .. shape.Length - 1 do if not (List.contains a axes) then yield a |]
        let nGroups = keep |> Array.fold (fun acc a -> acc * shape[a]) 1
        let g = Array.zeroCreate total
        let coord = Array.zeroCreate shape.Length
        for e in 0 .. total - 1 do
            let mutable r = e
            for a in shape.Length - 1 .. -1 .. 0 do
                coord[a] <- r % shape[a]
                r <- r / shape[a]
            let mutable id = 0
            for a in keep do id <- id * shape[a] + coord[a]
            g[e] <- id
        g, nGroups

    /// Replaces every entry by the mean of its group (neural_tangents' `mean_and_var(..., keepdims=True)`).
    let private groupMean (g: int[]) (nGroups: int) (v: float[]) =
        let sum = Array.zeroCreate nGroups
        let count = Array.zeroCreate nGroups
        for e in 0 .. v.Length - 1 do
            sum[g[e]] <- sum[g[e]] + v[e]
            count[g[e]] <- count[g[e]] + 1
        Array.init v.Length (fun e -> sum[g[e]] / float count[g[e]])

    /// neural_tangents' masked `mean_and_var`: the sum over each group of all its entries (masked ones included)
    /// divided by the number of its unmasked entries, at least 1.
    let private groupMeanMasked (g: int[]) (nGroups: int) (masked: bool[]) (v: float[]) =
        let sum = Array.zeroCreate nGroups
        let count = Array.zeroCreate nGroups
        for e in 0 .. v.Length - 1 do
            sum[g[e]] <- sum[g[e]] + v[e]
            if not masked[e] then count[g[e]] <- count[g[e]] + 1
        Array.init v.Length (fun e -> sum[g[e]] / float (max 1 count[g[e]]))

    /// LayerNorm on a kernel (neural_tangents' `LayerNorm.kernel_fn`). With Gaussian pre-activations and the channel
    /// axis among the normalised ones, the finite layer divides by √(eps + v̄) where v̄ is the mean variance over
    /// the other normalised axes (spatial positions, the batch); as the width grows the empirical mean and variance
    /// over channels converge to 0 and to that variance. So every covariance entry between (x, p) and (x', p') is
    /// divided by √((eps + v̄₁(x, p))·(eps + v̄₂(x', p'))), v = the same-sample same-position variance of cov1/cov2.
    let layerNormKernel (l: LayerNormSpec) (k: Kernel) : Kernel =
        if not k.IsGaussian then
            fail "LayerNorm: its kernel is only implemented for Gaussian inputs (neural_tangents' NotImplementedError); put an affine layer (Dense, Conv) right before it"
        let ndim = k.Shape1.Length
        let ch = Axes.norm ndim l.ChannelAxis
        let b = Axes.norm ndim l.BatchAxis
        let axes = axesOf l ndim
        if not (List.contains ch axes) then
            fail ("LayerNorm: normalising over the channel axis (" + string ch + ") is necessary for the kernel to converge to an asymptotic limit; got axis=" + Show.intList axes + "; add " + string ch + " to axis")
        let spatialAxes = [ for a in 0 .. ndim - 1 do if a <> ch && a <> b then yield a ]
        let order = if k.IsReversed then List.rev spatialAxes else spatialAxes
        // Axes of the (N, spatial…) variance array to average over: 0 for the batch, 1 + the kernel's spatial index.
        let varAxes =
            axes |> List.filter ((<>) ch) |> List.map (fun a -> if a = b then 0 else 1 + List.findIndex ((=) a) order)
        let covNdim = if k.DiagonalBatch then 1 else 2
        let dims = Spatial.sizes k.DiagonalSpatial covNdim k.Cov1.Shape
        let s = Array.fold (*) 1 dims
        // With masks (neural_tangents' prepare_mask: one mask for all channels) the means skip masked positions.
        let flags (m: Tensor option) (shape: int[]) =
            m |> Option.map (fun m ->
                if m.Shape[Axes.norm m.Rank l.ChannelAxis] <> 1 then
                    fail $"LayerNorm: different per-channel masks are not implemented in the infinite limit (mask shape {Shape.format m.Shape}, as in neural_tangents); put a Dense or Conv layer before it"
                Masking.positions k shape m)
        let normVar (masked: bool[] option) (cov: Tensor) =
            let v = Spatial.variances k.DiagonalBatch k.DiagonalSpatial cov |> Array.map (fun x -> x + l.Eps)
            let n = v.Length / max 1 s
            let g, nGroups = groups (Array.append [| n |] dims) varAxes
            match masked with
            | Some f -> groupMeanMasked g nGroups f v
            | None -> groupMean g nGroups v
        let v1 = normVar (flags k.Mask1 k.Shape1) k.Cov1
        let v2 = match k.Cov2 with Some c -> normVar (flags k.Mask2 k.Shape2) c | None -> v1
        let p, q = if k.DiagonalSpatial then Array.init s id, Array.init s id else Spatial.pairIndices dims
        let block = p.Length
        // Divides entry (i, j, e) of an (A, B, block) array by √(va[i, p[e]]·vb[j, q[e]]).
        let divide (va: float[]) (vb: float[]) (rows: int) (cols: int) (t: Tensor) =
            let out = Array.zeroCreate t.Length
            for i in 0 .. rows - 1 do
                for j in 0 .. cols - 1 do
                    let start = (i * cols + j) * block
                    for e in 0 .. block - 1 do
                        out[start + e] <- t.Data[start + e] / Math.Sqrt(va[i * s + p[e]] * vb[j * s + q[e]])
            Tensor.create t.Shape out
        let pairOf (va: float[]) (vb: float[]) (t: Tensor) = divide va vb t.Shape[0] t.Shape[1] t
        // The full batch layout pairs every two samples of one input; the diagonal one holds (n, n) only.
        let covOf (v: float[]) (t: Tensor) =
            if not k.DiagonalBatch then pairOf v v t
            else
                let out = Array.zeroCreate t.Length
                for i in 0 .. t.Shape[0] - 1 do
                    for e in 0 .. block - 1 do
                        out[i * block + e] <- t.Data[i * block + e] / Math.Sqrt(v[i * s + p[e]] * v[i * s + q[e]])
                Tensor.create t.Shape out
        { k with
            Nngp = pairOf v1 v2 k.Nngp
            Ntk = k.Ntk |> Option.map (pairOf v1 v2)
            Cov1 = covOf v1 k.Cov1
            Cov2 = k.Cov2 |> Option.map (covOf v2) }

    /// (group of each entry, group count, mean, 1/√(eps + var)) of an input over the normalised axes.
    let private moments (l: LayerNormSpec) (x: Tensor) =
        let axes = axesOf l x.Rank
        let g, nGroups = groups x.Shape axes
        let mean = groupMean g nGroups x.Data
        let var = groupMean g nGroups (Array.init x.Length (fun e -> (x.Data[e] - mean[e]) ** 2.0))
        g, nGroups, mean, var |> Array.map (fun v -> 1.0 / Math.Sqrt(l.Eps + v))

    /// LayerNorm's forward pass: (x − mean)/√(eps + var) over the normalised axes (population variance). With a mask
    /// (neural_tangents' mean_and_var(mask=…)) the mean and the variance divide their sums over the whole group —
    /// masked entries (zero) included — by the number of unmasked entries (at least 1).
    let layerNormForwardMasked (l: LayerNormSpec) (mask: Tensor option) (x: Tensor) : Tensor =
        match mask with
        | None ->
            let _, _, mean, inv = moments l x
            Tensor.create x.Shape (Array.init x.Length (fun e -> (x.Data[e] - mean[e]) * inv[e]))
        | Some m ->
            let masked = (Masking.broadcastTo x.Shape m).Data |> Array.map (fun v -> v <> 0.0)
            let g, nGroups = groups x.Shape (axesOf l x.Rank)
            let mean = groupMeanMasked g nGroups masked x.Data
            let var = groupMeanMasked g nGroups masked (Array.init x.Length (fun e -> (x.Data[e] - mean[e]) ** 2.0))
            Tensor.create x.Shape (Array.init x.Length (fun e -> (x.Data[e] - mean[e]) / Math.Sqrt(l.Eps + var[e])))

    /// LayerNorm's forward pass without a mask.
    let layerNormForward (l: LayerNormSpec) (x: Tensor) : Tensor = layerNormForwardMasked l None x

    /// LayerNorm's input cotangent: with y = (x − μ)/σ over a group of M entries,
    /// ∂x = (g − mean(g) − y·mean(g·y)) / σ (differentiating μ and σ² = eps + mean((x − μ)²)).
    let layerNormBackward (l: LayerNormSpec) (x: Tensor) (ct: Tensor) : Tensor =
        let g, nGroups, mean, inv = moments l x
        let y = Array.init x.Length (fun e -> (x.Data[e] - mean[e]) * inv[e])
        let gMean = groupMean g nGroups ct.Data
        let gyMean = groupMean g nGroups (Array.init x.Length (fun e -> ct.Data[e] * y[e]))
        Tensor.create x.Shape (Array.init x.Length (fun e -> (ct.Data[e] - gMean[e] - y[e] * gyMean[e]) * inv[e]))

    /// LayerNorm(axis, eps, batch_axis, channel_axis) (neural_tangents' <c>stax.LayerNorm</c>). No parameters.
    let layerNorm (l: LayerNormSpec) : LayerDef =
        { Name = "LayerNorm"
          Args =
            [ "axis", IntsArg l.Axis
              "eps", FloatArg l.Eps
              "batch_axis", IntArg l.BatchAxis
              "channel_axis", IntArg l.ChannelAxis ]
          // @requires(batch_axis, channel_axis): the rule reads only same-position variances, any layout.
          Requires =
            { BatchAxis = Some l.BatchAxis; ChannelAxis = Some l.ChannelAxis; Resets = false
              DiagonalBatch = None; DiagonalSpatial = None }
          // supports_masking(remask_kernel=False), no mask_fn: the mask passes through.
          Kernel = Masking.kernel "LayerNorm" (Masking.identity false) (fun _ k -> layerNormKernel l k)
          Init = fun _ shape -> shape, Params.none
          Apply = fun ctx _ x -> layerNormForwardMasked l (ctx.Side.TryFind Masking.SideKey) x
          Vjp = fun _ _ x ct -> layerNormBackward l x ct
          ParamVjp = fun _ _ _ _ -> Params.none
          GradDot = None
          // The Jacobian (P − y·yᵀ/M)/σ per group (P the centring projector) is symmetric, so J·dx = Jᵀ·dx.
          Jvp = Tangent(fun _ _ _ x dx -> layerNormBackward l x dx)
          Mask = Masking.identity false }
