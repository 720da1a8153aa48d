namespace NeuralTangents.Rules

open NeuralTangents

/// Kernel rules that merge branches, after neural_tangents' `stax/branching.py`.
module internal Branching =

    let private checkLayouts (name: string) (ks: Kernel list) =
        match ks with
        | [] -> raise (NeuralTangentsException(sprintf "%s: needs at least one input branch (use FanOut before it)" name))
        | k0 :: rest ->
            for k in rest do
                if k.DiagonalSpatial <> k0.DiagonalSpatial || k.BatchAxis <> k0.BatchAxis || k.ChannelAxis <> k0.ChannelAxis then
                    raise (NeuralTangentsException(
                        sprintf "%s: all branches must have the same covariance layout (batch_axis, channel_axis, diagonal_spatial)" name))
            k0

    let private checkShapes (name: string) (ks: Kernel list) =
        let k0 = List.head ks
        for k in ks do
            if k.Shape1 <> k0.Shape1 || k.Shape2 <> k0.Shape2 then
                raise (NeuralTangentsException(
                    sprintf "%s: all branches must have equal shapes, got %s" name
                        (ks |> List.map (fun k -> Shape.format k.Shape1) |> String.concat ", ")))

    let private reduceOpt (f: Tensor -> Tensor -> Tensor) (ts: Tensor option list) =
        if ts |> List.exists Option.isNone then None else Some(ts |> List.map Option.get |> List.reduce f)

    /// FanInSum: covariances and NTKs add; defined only when every branch is a mean-zero Gaussian
    /// (sums of dependent non-Gaussian branches have no closed form in neural_tangents either).
    let fanInSum (ks: Kernel list) : Kernel =
        let k0 = checkLayouts "FanInSum" ks
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
    let fanInProd (ks: Kernel list) : Kernel =
        let k0 = checkLayouts "FanInProd" ks
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

    /// FanInConcat along the channel axis: the covariance of the concatenation is the width-weighted mean of
    /// the branch covariances (a plain mean when all widths agree). Other axes are planned with convolutions.
    let fanInConcat (axis: int) (ks: Kernel list) : Kernel =
        let k0 = checkLayouts "FanInConcat" ks
        let rank = k0.Shape1.Length
        let norm a = if a < 0 then a + rank else a
        let ax = norm axis
        if ax < 0 || ax >= rank then
            raise (NeuralTangentsException(sprintf "FanInConcat: axis=%d is out of range for activations of rank %d" axis rank))
        if ax <> norm k0.ChannelAxis then
            raise (NeuralTangentsException(
                sprintf "FanInConcat: axis=%d is not the channel axis (%d); concatenation along batch or spatial axes is not supported yet" axis k0.ChannelAxis))
        let drop (s: int[]) = Array.removeAt ax s
        for k in ks do
            if drop k.Shape1 <> drop k0.Shape1 || drop k.Shape2 <> drop k0.Shape2 then
                raise (NeuralTangentsException(
                    sprintf "FanInConcat: shapes must agree off the concatenation axis, got %s"
                        (ks |> List.map (fun k -> Shape.format k.Shape1) |> String.concat ", ")))
        let widths = ks |> List.map (fun k -> float k.Shape1[ax])
        let weights =
            if widths |> List.forall ((=) widths.Head) then widths |> List.map (fun _ -> 1.0) else widths
        let total = List.sum weights
        let mean (ts: Tensor list) =
            List.zip weights ts
            |> List.map (fun (w, t) -> Tensor.scale (w / total) t)
            |> List.reduce Tensor.add
        let meanOpt (ts: Tensor option list) =
            if ts |> List.exists Option.isNone then None else Some(mean (ts |> List.map Option.get))
        let concatShape (f: Kernel -> int[]) =
            let s = Array.copy (f k0)
            s[ax] <- ks |> List.sumBy (fun k -> (f k)[ax])
            s
        { k0 with
            Nngp = mean (ks |> List.map (fun k -> k.Nngp))
            Ntk = meanOpt (ks |> List.map (fun k -> k.Ntk))
            Cov1 = mean (ks |> List.map (fun k -> k.Cov1))
            Cov2 = meanOpt (ks |> List.map (fun k -> k.Cov2))
            IsGaussian = false
            Shape1 = concatShape (fun k -> k.Shape1)
            Shape2 = concatShape (fun k -> k.Shape2)
            Mask1 = None
            Mask2 = None }
