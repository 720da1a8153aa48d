namespace NeuralTangents.Layers

open NeuralTangents

/// Aggregate (neural_tangents' `stax.Aggregate` in `stax/linear.py`; graph networks, Du et al. 2019,
/// arXiv:1905.13192): every vertex replaced by the weighted sum of its predecessors under a per-sample adjacency
/// `pattern`. The kernel rule, the finite forward and backward passes, the binding of a call's patterns, and the
/// definition. "SPARSE" edge lists are turned into the dense adjacency they stand for (edge counts as weights), so
/// both implementations give the same numbers.
module Aggregation =

    let private fail (msg: string) = raise (NeuralTangentsException msg)

    /// The implementation's name as neural_tangents spells it.
    let implementationName (i: AggregateImplementation) =
        match i with
        | AggregateImplementation.Dense -> "DENSE"
        | AggregateImplementation.Sparse -> "SPARSE"

    /// Validated Aggregate arguments (neural_tangents' defaults: aggregate_axis = None, batch_axis = 0,
    /// channel_axis = −1, implementation = "DENSE").
    let aggregateSpec (aggregateAxis: int list option) (batchAxis: int) (channelAxis: int) (impl: AggregateImplementation) =
        if batchAxis = channelAxis then
            invalidArg "channelAxis" $"Aggregate: channel_axis must differ from batch_axis, both are {string batchAxis}"
        match aggregateAxis with
        | Some [] -> invalidArg "aggregateAxis" "Aggregate: aggregate_axis lists no axis; give None for every spatial axis"
        | _ -> ()
        { AggregateAxis = aggregateAxis; BatchAxis = batchAxis; ChannelAxis = channelAxis; Implementation = impl; Pattern = None }

    /// (aggregated axes sorted, batch axis, channel axis) of a rank-<c>ndim</c> input (neural_tangents'
    /// `get_agg_axes`).
    let aggAxes (a: AggregateSpec) (ndim: int) =
        let b, ch = Axes.norm ndim a.BatchAxis, Axes.norm ndim a.ChannelAxis
        let axes =
            match a.AggregateAxis with
            | None -> [| for i in 0 .. ndim - 1 do if i <> b && i <> ch then yield i |]
            | Some xs -> xs |> List.map (Axes.norm ndim) |> List.distinct |> List.sort |> List.toArray
        if axes |> Array.exists (fun x -> x = b || x = ch) then
            fail ("Aggregate: aggregate_axis " + (match a.AggregateAxis with Some axes -> "Some " + Show.intList axes | None -> "None") + " includes the batch axis " + string b + " or the channel axis " + string ch + "; aggregate over spatial axes only")
        axes, b, ch

    /// The dense adjacency (n, X_agg…, X_agg…) of a pattern for a batch of <c>n</c> samples whose aggregated axes
    /// have sizes <c>aggShape</c>. "DENSE" patterns are checked and returned. "SPARSE" patterns (n, E, K, 2) — or
    /// (n, E, 2) when K = 1 — of integer (tail, head) coordinates add 1 to A[n, tail, head] per edge. As in
    /// neural_tangents (`jnp.ravel_multi_index(..., 'wrap')`, then `segment_sum`), coordinates past the end wrap
    /// around, an edge whose head has a negative coordinate is dropped, and a tail with a negative coordinate reads
    /// the last vertex (numpy's index −1).
    let denseAdjacency (a: AggregateSpec) (n: int) (aggShape: int[]) (pattern: Tensor) : Tensor =
        let k = aggShape.Length
        let v = Array.fold (*) 1 aggShape
        match a.Implementation with
        | AggregateImplementation.Dense ->
            let expected = Array.concat [ [| n |]; aggShape; aggShape ]
            if pattern.Shape <> expected then
                fail $"Aggregate: a DENSE pattern must have shape (batch, aggregated sizes, aggregated sizes) = {Shape.format expected}, got {Shape.format pattern.Shape}"
            pattern
        | AggregateImplementation.Sparse ->
            let p = pattern
            let ok = (p.Rank = 4 && p.Shape[2] = k && p.Shape[3] = 2) || (k = 1 && p.Rank = 3 && p.Shape[2] = 2)
            if not ok || p.Shape[0] <> n then
                fail ("Aggregate: a SPARSE pattern must have shape (batch=" + string n + ", n_edges, " + string k + ", 2)" + (if k = 1 then " or (batch, n_edges, 2)" else "") + ", got " + (Shape.format p.Shape))
            let edges = p.Shape[1]
            let out = Array.zeroCreate (n * v * v)
            for s in 0 .. n - 1 do
                for e in 0 .. edges - 1 do
                    // Flat vertex of the tail (end = 0) or head (end = 1); None when a coordinate is negative.
                    let vertex (endpoint: int) =
                        let mutable flat = 0
                        let mutable negative = false
                        for c in 0 .. k - 1 do
                            let x = p.Data[((s * edges + e) * k + c) * 2 + endpoint]
                            if x <> System.Math.Round x then
                                fail $"Aggregate: SPARSE pattern entries must be integers, got {Show.g x}"
                            let xi = int x
                            if xi < 0 then negative <- true
                            flat <- flat * aggShape[c] + (((xi % aggShape[c]) + aggShape[c]) % aggShape[c])
                        if negative then None else Some flat
                    match vertex 1 with
                    | None -> ()
                    | Some head ->
                        let tail = defaultArg (vertex 0) (v - 1)
                        out[(s * v + tail) * v + head] <- out[(s * v + tail) * v + head] + 1.0
            Tensor.create (Array.concat [ [| n |]; aggShape; aggShape ]) out

    /// Labels for einsums over an input of rank ndim: input axis i is label i; the heads of the adjacency (the
    /// output positions of aggregated axis q) are 1000 + q (and 2000 + q for the second copy in a covariance).
    let private headLabel (copy: int) (q: int) = 1000 * (copy + 1) + q

    /// The dense adjacency of an input shaped like x and the contraction labels: x's axes, A's (batch, i…, j…) and
    /// the output's, where the aggregated axes i are relabelled j.
    let private contraction (a: AggregateSpec) (x: Tensor) (pattern: Tensor) =
        let agg, b, _ = aggAxes a x.Rank
        let adj = denseAdjacency a x.Shape[b] (agg |> Array.map (fun ax -> x.Shape[ax])) pattern
        let lx = Array.init x.Rank id
        let lA = Array.concat [ [| b |]; agg; agg |> Array.mapi (fun q _ -> headLabel 0 q) ]
        let lOut = lx |> Array.map (fun l -> match Array.tryFindIndex ((=) l) agg with Some q -> headLabel 0 q | None -> l)
        adj, lx, lA, lOut

    /// The forward pass: out[n, …, j, …, c] = Σ_i x[n, …, i, …, c]·A[n, i, j] over the aggregated positions, the
    /// axes kept in place; without a "pattern" side input the layer is the identity (as neural_tangents).
    let forward (a: AggregateSpec) (ctx: ApplyContext) (x: Tensor) : Tensor =
        match ctx.Side.TryFind "pattern" with
        | None -> x
        | Some pattern ->
            let adj, lx, lA, lOut = contraction a x pattern
            Tensor.contract x lx adj lA lOut

    /// The input cotangent of <c>forward</c> (the same pattern): ct_x[n, …, i, …, c] = Σ_j A[n, i, j]·ct[n, …, j,
    /// …, c], the transposed contraction; without a pattern the identity.
    let backward (a: AggregateSpec) (ctx: ApplyContext) (x: Tensor) (ct: Tensor) : Tensor =
        match ctx.Side.TryFind "pattern" with
        | None -> ct
        | Some pattern ->
            let adj, lx, lA, lOut = contraction a x pattern
            Tensor.contract ct lOut adj lA lx

    /// Aggregate on a kernel (neural_tangents' DENSE `kernel_fn`): the map is linear on the aggregated axes, so with
    /// A1 for x1 and A2 for x2, K'[n1, n2, j, j'] = Σ_{i, i'} A1[n1, i, j]·K[n1, n2, i, i']·A2[n2, i', j'] — A1ᵀ·K·A2
    /// per pair of samples — on every covariance (cov1 with A1 on both sides, cov2 with A2), other axes untouched.
    /// Needs the full spatial layout; the result is in natural order. No pattern bound: the kernel passes through.
    let aggregateKernel (a: AggregateSpec) (k: Kernel) : Kernel =
        match a.Pattern with
        | None -> k
        | Some(p1, p2) ->
            if k.DiagonalSpatial then
                fail "Aggregate: needs the covariances between positions; compute the kernel with diagonal_spatial=False"
            let k = if k.IsReversed then Kernel.reverse k else k
            let ndim = k.Shape1.Length
            let agg, b, ch = aggAxes a ndim
            let spatial = [| for i in 0 .. ndim - 1 do if i <> b && i <> ch then yield i |]
            let aggSp = agg |> Array.map (fun ax -> Array.findIndex ((=) ax) spatial)
            let sizesOf (shape: int[]) = agg |> Array.map (fun ax -> shape[ax])
            if sizesOf k.Shape1 <> sizesOf k.Shape2 then
                fail $"Aggregate: x1 and x2 must agree on the aggregated axes, got shapes {Shape.format k.Shape1} and {Shape.format k.Shape2}"
            let a1 = denseAdjacency a k.Shape1[b] (sizesOf k.Shape1) p1
            let a2 = denseAdjacency a k.Shape2[b] (sizesOf k.Shape2) p2
            // A covariance with bn batch axes: label 0 (and 1) for the batch, then bn + 2s / bn + 2s + 1 for the two
            // copies of spatial axis s.
            let apply (bn: int) (left: Tensor) (right: Tensor) (t: Tensor) =
                let lt = Array.init t.Rank id
                let first q = bn + 2 * aggSp[q]
                let second q = bn + 2 * aggSp[q] + 1
                let k' = aggSp.Length
                let lLeft = Array.concat [ [| 0 |]; Array.init k' first; Array.init k' (headLabel 0) ]
                let lRight = Array.concat [ [| bn - 1 |]; Array.init k' second; Array.init k' (headLabel 1) ]
                let replace (copyOf: int -> int) (copy: int) (labels: int[]) =
                    labels |> Array.map (fun l -> match Array.tryFindIndex (fun q -> copyOf q = l) [| 0 .. k' - 1 |] with
                                                  | Some q -> headLabel copy q
                                                  | None -> l)
                let lMid = replace first 0 lt
                let lOut = replace second 1 lMid
                let mid = Tensor.contract left lLeft t lt lMid
                Tensor.contract mid lMid right lRight lOut
            let covN = if k.DiagonalBatch then 1 else 2
            { k with
                Nngp = apply 2 a1 a2 k.Nngp
                Ntk = k.Ntk |> Option.map (apply 2 a1 a2)
                Cov1 = apply covN a1 a1 k.Cov1
                Cov2 = k.Cov2 |> Option.map (apply covN a2 a2)
                BatchAxis = b
                ChannelAxis = ch }

    /// Binds the (pattern1, pattern2) of one kernel_fn call into every Aggregate layer of a network (neural_tangents
    /// threads the <c>pattern</c> keyword through every layer's kernel_fn).
    let rec bindPattern (pattern: Tensor * Tensor) (layer: Layer) : Layer =
        match layer with
        | Serial ls -> Serial(ls |> List.map (bindPattern pattern))
        | Parallel ls -> Parallel(ls |> List.map (bindPattern pattern))
        | Repeat(l, n) -> Repeat(bindPattern pattern l, n)
        | Aggregate a -> Aggregate { a with Pattern = Some pattern }
        | other -> other

    /// Aggregate(aggregate_axis, batch_axis, channel_axis, to_dense = identity, implementation) (neural_tangents'
    /// <c>stax.Aggregate</c>). No parameters. The backward pass and tangents use the forward call's pattern.
    let aggregate (a: AggregateSpec) : LayerDef =
        { Name = "Aggregate"
          Args =
            [ "aggregate_axis", (match a.AggregateAxis with Some xs -> IntsArg xs | None -> NoneArg)
              "batch_axis", IntArg a.BatchAxis
              "channel_axis", IntArg a.ChannelAxis
              "implementation", StringArg(implementationName a.Implementation) ]
          // @requires(batch_axis, channel_axis, diagonal_spatial=Diagonal(input=NO, output=NO)).
          Requires =
            { BatchAxis = Some a.BatchAxis; ChannelAxis = Some a.ChannelAxis; Resets = false
              DiagonalBatch = None; DiagonalSpatial = Some { Input = Tri.No; Output = Tri.No } }
          // supports_masking(remask_kernel=True), the mask passes through (neural_tangents' Aggregate has no mask_fn).
          Kernel = Masking.kernel "Aggregate" (Masking.identity true) (fun _ k -> aggregateKernel a k)
          Init = fun _ shape -> Array.copy shape, Params.none
          Apply = fun ctx _ x -> forward a ctx x
          Vjp = fun ctx _ x ct -> backward a ctx x ct
          ParamVjp = fun _ _ _ _ -> Params.none
          GradDot = None
          Jvp = LinearInInput
          Mask = Masking.identity true }
