namespace NeuralTangents.Rules

open NeuralTangents

/// Kernel rules of the linear layers, after neural_tangents' `stax/linear.py`.
module internal Linear =

    let private axisOf (shape: int[]) (axis: int) = if axis < 0 then axis + shape.Length else axis

    let private withChannels (shape: int[]) (axis: int) (c: int) =
        let s = Array.copy shape
        s[axisOf shape axis] <- c
        s

    /// Channel count after a Dense layer in the finite network: out_dim, times s[1] in the standard
    /// parameterization (the weight matrix is (s0·in, s1·out)).
    /// Checked in int64: the width must be a positive int32 like every axis of the finite network.
    let denseOutWidth (d: DenseSpec) =
        let s0, s1 = d.S
        if d.OutDim < 1 then
            raise (NeuralTangentsException(sprintf "Dense: out_dim must be a positive integer, got %d" d.OutDim))
        if s0 < 1 || s1 < 1 then
            raise (NeuralTangentsException(sprintf "Dense: s must be two positive integers, got (%d, %d)" s0 s1))
        match d.Parameterization with
        | Parameterization.Ntk -> d.OutDim
        | Parameterization.Standard ->
            let w = int64 d.OutDim * int64 s1
            if w > int64 System.Int32.MaxValue then
                raise (NeuralTangentsException(
                    sprintf "Dense: the finite width out_dim·s[1] = %d·%d = %d exceeds 2147483647; use a smaller out_dim or s[1]"
                        d.OutDim s1 w))
            int w

    /// The Dense map on (nngp, ntk) as coefficients (see <c>dense</c> for the formulas).
    let densePre (d: DenseSpec) (k: Kernel) : Simd.DensePre =
        denseOutWidth d |> ignore // validates out_dim and s
        let w2 = d.WStd * d.WStd
        let b2 = match d.BStd with Some b -> b * b | None -> 0.0
        match d.Parameterization with
        | Parameterization.Ntk -> { W2 = w2; B2 = b2; FromOut = true; CN = 0.0; CB = 0.0 }
        | Parameterization.Standard ->
            let inWidth = float k.Shape1[axisOf k.Shape1 d.ChannelAxis] / float (fst d.S)
            { W2 = w2; B2 = b2; FromOut = false; CN = inWidth; CB = (if d.BStd.IsSome then 1.0 else 0.0) }

    /// Everything a Dense layer changes except nngp/ntk (left as they were): variances, shapes and flags.
    let denseMeta (d: DenseSpec) (k: Kernel) : Kernel =
        let w2 = d.WStd * d.WStd
        let b2 = match d.BStd with Some b -> b * b | None -> 0.0
        let fc = Tensor.affine w2 b2
        let width = denseOutWidth d
        { k with
            Cov1 = fc k.Cov1
            Cov2 = k.Cov2 |> Option.map fc
            IsGaussian = true
            IsInput = false
            Shape1 = withChannels k.Shape1 d.ChannelAxis width
            Shape2 = withChannels k.Shape2 d.ChannelAxis width }

    /// Dense (arXiv:1806.07572 for "ntk", arXiv:2001.07301 for "standard"); neural_tangents' `Dense.kernel_fn`.
    /// nngp' = W_std²·nngp + b_std² in both parameterizations;
    /// ntk:      ntk' = nngp' + W_std²·ntk;
    /// standard: ntk' = (N_in/s0)·nngp + W_std²·ntk (+1 when the layer has a bias, even for b_std = 0),
    /// with N_in the finite input width. With <c>inPlace</c> the pass overwrites k's nngp/ntk buffers (allowed only
    /// when the interpreter owns them: no other kernel shares them).
    let dense (inPlace: bool) (d: DenseSpec) (k: Kernel) : Kernel =
        let pre = densePre d k
        let fresh (t: Tensor) = if inPlace then t.Data else System.GC.AllocateUninitializedArray<float> t.Length
        let nngpOut = fresh k.Nngp
        let ntkOut = k.Ntk |> Option.map fresh
        Simd.densePass pre.W2 pre.B2 pre.FromOut pre.CN pre.CB k.Nngp.Data (k.Ntk |> Option.map (fun t -> t.Data)) nngpOut ntkOut
        { denseMeta d k with
            Nngp = Tensor.create k.Nngp.Shape nngpOut
            Ntk = Option.map2 (fun (t: Tensor) o -> Tensor.create t.Shape o) k.Ntk ntkOut }

    let private meanTrailing (lead: int) (t: Tensor) =
        if t.Rank = lead then t
        else
            let outer = Array.fold (*) 1 t.Shape[.. lead - 1]
            let inner = t.Length / max 1 outer
            let r = Array.init outer (fun i ->
                let mutable s = 0.0
                for j in 0 .. inner - 1 do s <- s + t.Data[i * inner + j]
                s / float inner)
            Tensor.create t.Shape[.. lead - 1] r

    /// Finite-network shape after Flatten: batch axis kept (at batch_axis_out), everything else multiplied out.
    let flattenShape (f: FlattenSpec) (shape: int[]) =
        let b = axisOf shape f.BatchAxis
        let n = shape[b]
        let rest = (Array.fold (*) 1 shape) / max 1 n
        if f.BatchAxisOut = 0 then [| n; rest |] else [| rest; n |]

    /// Flatten: the covariance of the flattened vector is the mean over positions of the same-position
    /// covariance (neural_tangents' `Flatten.kernel_fn`); the result is no longer known to be Gaussian.
    let flatten (f: FlattenSpec) (k: Kernel) : Kernel =
        if not k.DiagonalSpatial then
            raise (NeuralTangentsException "Flatten: full spatial covariances are not supported yet")
        { k with
            Nngp = meanTrailing 2 k.Nngp
            Ntk = k.Ntk |> Option.map (meanTrailing 2)
            Cov1 = meanTrailing 1 k.Cov1
            Cov2 = k.Cov2 |> Option.map (meanTrailing 1)
            IsGaussian = false
            IsReversed = false
            BatchAxis = f.BatchAxisOut
            ChannelAxis = 1 - f.BatchAxisOut
            Shape1 = flattenShape f k.Shape1
            Shape2 = flattenShape f k.Shape2 }
