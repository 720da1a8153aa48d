namespace NeuralTangents.Layers

open NeuralTangents

/// The fan-in layers, after neural_tangents' `stax/branching.py`: kernel rules, finite forward and backward
/// passes, and (at the end) each layer's definition.
module internal Branching =


    /// Checks that the branches share one covariance layout and brings their spatial axes into one order
    /// (neural_tangents' `_preprocess_kernels_for_fan_in`): when most branches are reversed the others are reversed
    /// too, otherwise the reversed ones are restored. Returns the branches and the first of them.
    let private checkLayouts (name: string) (ks: Kernel list) =
        match ks with
        | [] -> raise (NeuralTangentsException $"{name}: needs at least one input branch (use FanOut before it)")
        | k0 :: rest ->
            // Axes compare normalised: on rank-2 activations channel_axis −1 and 1 are the same axis.
            let norm (k: Kernel) (a: int) = if a < 0 then a + k.Shape1.Length else a
            // diagonal_spatial means nothing without spatial axes (Flatten's output says false, a Dense on flat inputs
            // keeps the input's flag): compare it only when the activations have spatial axes.
            let spatial (k: Kernel) = if k.Shape1.Length > 2 then Some k.DiagonalSpatial else None
            let layout (k: Kernel) = k.DiagonalBatch, spatial k, norm k k.BatchAxis, norm k k.ChannelAxis
            for k in rest do
                if layout k <> layout k0 then
                    raise (NeuralTangentsException(
                        $"{name}: all branches must have the same covariance layout (batch_axis, channel_axis, diagonal_batch, diagonal_spatial)"))
            let reversed = ks |> List.filter (fun k -> k.IsReversed) |> List.length
            let target = 2 * reversed > ks.Length
            let ks = ks |> List.map (fun k -> if k.IsReversed <> target then Kernel.reverse k else k)
            ks, List.head ks

    let private checkShapes (name: string) (ks: Kernel list) =
        let k0 = List.head ks
        for k in ks do
            if k.Shape1 <> k0.Shape1 || k.Shape2 <> k0.Shape2 then
                raise (NeuralTangentsException(
                    $"""{name}: all branches must have equal shapes, got {(ks |> List.map (fun k -> Shape.format k.Shape1) |> String.concat ", ")}"""))

    let private reduceOpt (f: Tensor -> Tensor -> Tensor) (ts: Tensor option list) =
        if ts |> List.exists Option.isNone then None else Some(ts |> List.map Option.get |> List.reduce f)

    /// FanInSum: covariances and NTKs add; defined only when every branch is a mean-zero Gaussian
    /// (sums of dependent non-Gaussian branches have no closed form in neural_tangents either).
    let fanInSumKernel (ks: Kernel list) : Kernel =
        let ks, k0 = checkLayouts "FanInSum" ks
        checkShapes "FanInSum" ks
        let gaussian = ks |> List.forall (fun k -> k.IsGaussian)
        if not gaussian && ks.Length <> 1 then
            raise (NeuralTangentsException(
                "FanInSum: every branch must end in an affine layer (Dense, Identity of a Dense output, …) so it is a mean-zero Gaussian; add a Dense layer at the end of each branch"))
        { k0 with
            Nngp = ks |> List.map (fun k -> k.Nngp) |> List.reduce Tensor.add
            Ntk = ks |> List.map (fun k -> k.Ntk) |> reduceOpt Tensor.add
            Cov1 = ks |> List.map (fun k -> k.Cov1) |> List.reduce Tensor.add
            Cov2 = ks |> List.map (fun k -> k.Cov2) |> reduceOpt Tensor.add
            IsGaussian = gaussian
            Mask1 = None
            Mask2 = None }

    /// FanInProd: the covariance of a product of independent branches is the product of their covariances;
    /// the NTK follows the product rule, Θ = Σ_i Θ_i Π_{j≠i} K_j.
    let fanInProdKernel (ks: Kernel list) : Kernel =
        let ks, k0 = checkLayouts "FanInProd" ks
        checkShapes "FanInProd" ks
        let nngp = ks |> List.map (fun k -> k.Nngp) |> List.reduce Tensor.mul
        let ntk =
            if ks |> List.exists (fun k -> k.Ntk.IsNone) then None
            else
                // Running (Π K, Σ Θ_i Π_{j≠i} K_j) over the branches.
                let _, t =
                    ks.Tail |> List.fold (fun (kp: Tensor, tp: Tensor) k ->
                        let tn = Tensor.add (Tensor.mul tp k.Nngp) (Tensor.mul kp k.Ntk.Value)
                        Tensor.mul kp k.Nngp, tn) (k0.Nngp, k0.Ntk.Value)
                Some t
        { k0 with
            Nngp = nngp
            Ntk = ntk
            Cov1 = ks |> List.map (fun k -> k.Cov1) |> List.reduce Tensor.mul
            Cov2 = ks |> List.map (fun k -> k.Cov2) |> reduceOpt Tensor.mul
            IsGaussian = (ks.Length = 1 && k0.IsGaussian)
            Mask1 = None
            Mask2 = None }

    // ---------------------------------------------------------------------------------------------
    // Finite networks.


    let private sameTensorShapes (name: string) (xs: Tensor list) =
        match xs with
        | [] -> raise (NeuralTangentsException $"{name}: needs at least one input branch (use FanOut before it)")
        | x0 :: rest ->
            for x in rest do
                if x.Shape <> x0.Shape then
                    raise (NeuralTangentsException(
                        $"""{name}: all branches must have equal shapes, got {(xs |> List.map (fun x -> (Show.ints x.Shape)) |> String.concat ", ")}"""))

    let fanInSumForward (xs: Tensor list) =
        sameTensorShapes "FanInSum" xs
        List.reduce Tensor.add xs

    let fanInProdForward (xs: Tensor list) =
        sameTensorShapes "FanInProd" xs
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
                        "FanInConcat: shapes must agree off the concatenation axis " + string axis + ", got " + (shapes |> List.map Show.ints |> String.concat ", ")))
            let r = Array.copy s0
            r[a] <- shapes |> List.sumBy (fun s -> s[a])
            r

    /// (outer, inner) block sizes around axis a: the tensor is outer × shape[a] × inner.
    let private blocks (a: int) (shape: int[]) =
        Array.fold (*) 1 shape[.. a - 1], Array.fold (*) 1 shape[a + 1 ..]

    /// Concatenation along any axis.
    let fanInConcatForward (axis: int) (xs: Tensor list) =
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

    /// neural_tangents' `_concat_kernels` for one covariance array, concatenated along kernel axis <c>kAxis</c>
    /// (0 for the batch, i + 1 for spatial axis i): a plain concatenation where that axis appears once in the
    /// array, otherwise a block-diagonal one (zero covariance between positions of different branches, as
    /// neural_tangents defines it).
    let private concatCovariances (kAxis: int) (diagonalBatch: bool) (diagonalSpatial: bool) (ts: Tensor list) =
        if (kAxis = 0 && diagonalBatch) || (kAxis <> 0 && diagonalSpatial) then
            fanInConcatForward (kAxis + (if diagonalBatch then 0 else 1)) ts
        else
            let padAxis = max 0 (2 * kAxis - (if diagonalBatch then 1 else 0))
            let total = ts |> List.sumBy (fun t -> t.Shape[padAxis])
            let zeros (t: Tensor) (n: int) =
                let shape = Array.copy t.Shape
                shape[padAxis] <- n
                Tensor.zeros shape
            let rows =
                ts |> List.mapi (fun i t ->
                    let before = ts |> List.take i |> List.sumBy (fun u -> u.Shape[padAxis])
                    let after = total - before - t.Shape[padAxis]
                    fanInConcatForward padAxis [ if before > 0 then zeros t before
                                                 t
                                                 if after > 0 then zeros t after ])
            fanInConcatForward (padAxis + 1) rows

    /// FanInConcat (neural_tangents' `FanInConcat.kernel_fn`). Along the channel axis: the width-weighted mean of
    /// the branch covariances (a plain mean when all widths agree). Along the batch or a spatial axis (every branch
    /// must be a mean-zero Gaussian): the covariances concatenated along that axis, block-diagonal where the axis
    /// appears twice (see <c>concatCovariances</c>).
    let fanInConcatKernel (axis: int) (ks: Kernel list) : Kernel =
        let ks, k0 = checkLayouts "FanInConcat" ks
        let rank = k0.Shape1.Length
        let norm a = if a < 0 then a + rank else a
        let ax = norm axis
        if ax < 0 || ax >= rank then
            raise (NeuralTangentsException $"FanInConcat: axis={string axis} is out of range for activations of rank {string rank}")
        let drop (s: int[]) = Array.removeAt ax s
        for k in ks do
            if drop k.Shape1 <> drop k0.Shape1 || drop k.Shape2 <> drop k0.Shape2 then
                raise (NeuralTangentsException(
                    $"""FanInConcat: shapes must agree off the concatenation axis, got {(ks |> List.map (fun k -> Shape.format k.Shape1) |> String.concat ", ")}"""))
        let concatShape (f: Kernel -> int[]) =
            let s = Array.copy (f k0)
            s[ax] <- ks |> List.sumBy (fun k -> (f k)[ax])
            s
        let channel, batch = norm k0.ChannelAxis, norm k0.BatchAxis
        let allOf (f: Kernel -> Tensor option) =
            if ks |> List.exists (fun k -> (f k).IsNone) then None else Some(ks |> List.map (f >> Option.get))
        // How the covariances (onCov for cov1/cov2, onNngp for nngp/ntk) combine, and whether the result is Gaussian.
        let onCov, onNngp, gaussian =
            if ax = channel then
                let widths = ks |> List.map (fun k -> float k.Shape1[ax])
                let weights =
                    if widths |> List.forall ((=) widths.Head) then widths |> List.map (fun _ -> 1.0) else widths
                let total = List.sum weights
                let mean (ts: Tensor list) =
                    List.zip weights ts
                    |> List.map (fun (w, t) -> Tensor.scale (w / total) t)
                    |> List.reduce Tensor.add
                mean, mean, false
            else
                if not (ks |> List.forall (fun k -> k.IsGaussian)) then
                    raise (NeuralTangentsException(
                        $"FanInConcat: concatenation along axis {string axis} (not the channel axis) needs every branch to be a mean-zero Gaussian; end each branch with an affine layer (Dense, Conv)"))
                let spatial = [ 0 .. rank - 1 ] |> List.filter (fun i -> i <> channel && i <> batch)
                // The kernel's spatial axes are stored in reverse order when it is reversed.
                let kAxis =
                    if ax = batch then 0
                    else
                        let i = List.findIndex ((=) ax) spatial
                        (if k0.IsReversed then spatial.Length - 1 - i else i) + 1
                concatCovariances kAxis k0.DiagonalBatch k0.DiagonalSpatial, concatCovariances kAxis false k0.DiagonalSpatial, true
        { k0 with
            Nngp = onNngp (ks |> List.map (fun k -> k.Nngp))
            Ntk = allOf (fun k -> k.Ntk) |> Option.map onNngp
            Cov1 = onCov (ks |> List.map (fun k -> k.Cov1))
            Cov2 = allOf (fun k -> k.Cov2) |> Option.map onCov
            IsGaussian = gaussian
            Shape1 = concatShape (fun k -> k.Shape1)
            Shape2 = concatShape (fun k -> k.Shape2)
            Mask1 = None
            Mask2 = None }

    // ---------------------------------------------------------------------------------------------
    // The definitions of the fan-in layers (FanOut, parallel and serial are the interpreters' own).

    /// Branch shapes of a sum or product must agree.
    let private sameShapes (name: string) (ss: int[] list) =
        match ss with
        | [] -> raise (NeuralTangentsException $"{name}: needs at least one input branch (use FanOut before it)")
        | s0 :: rest ->
            if rest |> List.exists (fun s -> s <> s0) then
                raise (NeuralTangentsException(
                    $"""{name}: all branches must have equal shapes, got {(ss |> List.map Shape.format |> String.concat ", ")}"""))
            s0

    /// FanInSum (neural_tangents' <c>stax.FanInSum</c>).
    let fanInSum : MergeDef =
        { Name = "FanInSum"
          Args = []
          Kernel = Masking.merged (fun ms _ -> Masking.sum ms) fanInSumKernel
          Shape = sameShapes "FanInSum"
          Apply = fanInSumForward
          Vjp = fun xs ct -> xs |> List.map (fun _ -> ct)
          Jvp = fun _ dxs -> fanInSumForward dxs
          MaskMerge = fun ms _ -> Masking.sum ms }

    /// FanInProd (neural_tangents' <c>stax.FanInProd</c>).
    let fanInProd : MergeDef =
        { Name = "FanInProd"
          Args = []
          Kernel = Masking.merged (fun ms _ -> Masking.sum ms) fanInProdKernel
          Shape = sameShapes "FanInProd"
          Apply = fanInProdForward
          Vjp = fanInProdBackward
          // Product rule: Σ_i dx_i·Π_{j≠i} x_j.
          Jvp = fun xs dxs -> List.init xs.Length (fun i -> fanInProdForward (List.mapi (fun j x -> if j = i then dxs[i] else x) xs)) |> List.reduce Tensor.add
          MaskMerge = fun ms _ -> Masking.sum ms }

    /// FanInConcat(axis) (neural_tangents' <c>stax.FanInConcat</c>).
    let fanInConcat (axis: int) : MergeDef =
        { Name = "FanInConcat"
          Args = [ "axis", IntArg axis ]
          Kernel = Masking.merged (Masking.concat axis) (fanInConcatKernel axis)
          Shape = concatShape axis
          Apply = fanInConcatForward axis
          Vjp = fun xs ct -> fanInConcatBackward axis (xs |> List.map (fun x -> x.Shape)) ct
          Jvp = fun _ dxs -> fanInConcatForward axis dxs
          MaskMerge = Masking.concat axis }
