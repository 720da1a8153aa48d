namespace NeuralTangents


open NeuralTangents.PredictSolve
open NeuralTangents.PredictFactor
open NeuralTangents.PredictInference

/// Closed-form gradient flow on the MSE loss 1/(2NK)·‖f − y‖² in function space, at finite times through the
/// eigenbasis of the regularised train–train kernel (neural_tangents' <c>gradient_descent_mse</c> and the
/// finite-time branch of <c>gradient_descent_mse_ensemble</c>; arXiv:1806.07572, arXiv:1902.06720).
/// Flat row-major buffers throughout; the eigenbasis V (column j the eigenvector of λ_j) is used through
/// <c>Spectrum</c>'s B·V and P·Vᵀ, kept as dsytrd's reflectors and the tridiagonal's eigenvectors (never formed
/// unless the N×N train covariance asks for it).
module internal PredictMse =

    /// Scaled time s = η·t / (N·K) of each requested time.
    let private scaledTimes (ts: TrainSet) (learningRate: float) (times: float[]) =
        times |> Array.map (fun t -> learningRate * t / float ts.OutputSize)

    /// Equally shaped buffers stacked along a new leading (time) axis.
    let private stack (parts: float[][]) (shape: int[]) =
        let size = Array.fold (*) 1 shape
        let data = Array.zeroCreate (parts.Length * size)
        parts |> Array.iteri (fun i p -> Array.blit p 0 data (i * size) size)
        Tensor.create (Array.append [| parts.Length |] shape) data

    /// diag(w)·A: row i of a fresh copy of A (rows×cols) scaled by w[i].
    let private scaleRows (a: float[]) (rows: int) (cols: int) (w: float[]) =
        let c = Array.zeroCreate (rows * cols)
        for i in 0 .. rows - 1 do
            System.Numerics.Tensors.TensorPrimitives.Multiply(System.ReadOnlySpan(a, i * cols, cols), w[i], System.Span(c, i * cols, cols))
        c

    let private add (a: float[]) (b: float[]) = Array.map2 (+) a b

    /// Ensemble mean (and covariance) of one kind (Nngp or Ntk) at finite times, with a leading time axis.
    let ensembleAtTimes (ts: TrainSet) (g: PredictGet) (learningRate: float) (times: float[])
                        (test: TestBlocks option) (computeCov: bool) : Gaussian =
        let eig = ts.Eigen g
        let n, k = ts.Size, ts.Outputs
        // K*·V (M, N) first: its K*·Q overlaps with the tridiagonal eigenvectors still being computed.
        let kv =
            test |> Option.map (fun tb ->
                let ktd = Timings.time $"""predict: {PredictGets.name g} test–train kernel""" (fun () -> tb.TestTrain g)
                Timings.time $"""predict: {PredictGets.name g} K*·V (dormtr ‖ dstemr, gemm)""" (fun () -> eig.TimesV(ktd, tb.M)))
        let ev = eig.Values
        let zT = eig.TimesV(transpose ts.Y.Data n k, k) // (Vᵀ·y)ᵀ = yᵀ·V, (K, N)
        let ss = scaledTimes ts learningRate times
        let negPhi s = ev |> Array.map (fun l -> -(expm1OverLambda l s))
        match test with
        | None ->
            // Train set: f(t) = (I − e^{−Θ s})·y = V·diag(−expm1(−λs))·Vᵀ·y.
            let means =
                ss |> Array.map (fun s ->
                    let w = ev |> Array.map (fun l -> -(expm1 (-l * s)))
                    transpose (eig.TimesVT(scaleColumns zT k n w, k)) k n)
            let covs =
                if not computeCov then None
                else
                    let r = eig.Rows // R = Vᵀ: the N×N covariances need V itself
                    let mats =
                        ss |> Array.map (fun s ->
                            match g with
                            | PredictGet.Nngp ->
                                // V·diag(λ e^{−2λs})·Vᵀ
                                let w = ev |> Array.map (fun l -> l * exp (-2.0 * l * s))
                                Linalg.gemm true false n n n r (scaleRows r n n w)
                            | _ ->
                                // e^{−Θs}·K·e^{−Θs}, K the NNGP
                                let e = Linalg.gemm true false n n n r (scaleRows r n n (ev |> Array.map (fun l -> exp (-l * s))))
                                let ek = (ts.Block PredictGet.Nngp).TimesS(e, n)
                                Linalg.gemm false false n n n ek e
                            |> fun c -> (symmetrizeInPlace c n; c))
                    Some(stack mats [| n; n |])
            { Mean = stack means [| n; k |]; Covariance = covs }
        | Some tb ->
            let m = tb.M
            let a = kv.Value
            let means = ss |> Array.map (fun s -> Linalg.gemmNT 1.0 (scaleColumns a m n (negPhi s)) m zT k n)
            let covs =
                match tb.TestTest with
                | Some ktt when computeCov ->
                    let kttN = ktt PredictGet.Nngp
                    let mats =
                        match g with
                        | PredictGet.Nngp ->
                            // K** − K*·V·diag(w)·Vᵀ·K*ᵀ with w = −expm1(−2λs)/λ ≥ 0: one rank update by
                            // A·diag(√w), A = K*·V (half the flops of the general product).
                            ss |> Array.map (fun s ->
                                Timings.time "predict: Nngp cov (syrk)" (fun () ->
                                    let c = Pages.copy kttN
                                    Linalg.rankUpdateLower -1.0 (scaleColumns a m n (negPhi (2.0 * s) |> Array.map sqrt)) m n c
                                    Linalg.mirrorLower c m
                                    c))
                        | _ ->
                            // arXiv:1902.06720 eq. 16 with U = V·diag(w)·Vᵀ = Θ⁻¹(I − e^{−Θs}), w = −expm1(−λs)/λ:
                            // K** + Q·K·Qᵀ − (Q·K*ᵀ + transpose) with Q = Θ*·U = (K*·V)·diag(w)·Vᵀ (M, N), K* the
                            // NNGP test–train block: Q·K*ᵀ is one (M, N)·(N, M) product, no K*·V of the NNGP.
                            let kN = tb.TestTrain PredictGet.Nngp
                            ss |> Array.map (fun s ->
                                Timings.time "predict: Ntk cov (Q = A·diag(w)·Vᵀ, Q·K, products)" (fun () ->
                                    let q = eig.TimesVT(scaleColumns a m n (negPhi s), m)
                                    let qk = (ts.Block PredictGet.Nngp).TimesS(q, m)
                                    let c = Pages.copy kttN
                                    Linalg.gemmNTInto 1.0 qk m q m n 1.0 c
                                    let t2 = Linalg.gemmNT 1.0 q m kN m n
                                    for i in 0 .. m - 1 do
                                        for j in 0 .. m - 1 do
                                            c[i * m + j] <- c[i * m + j] - t2[i * m + j] - t2[j * m + i]
                                    c))
                    Some(stack (mats |> Array.map (fun c -> symmetrizeInPlace c m; c)) [| m; m |])
                | _ -> None
            { Mean = stack means [| m; k |]; Covariance = covs }

    /// One linearised network from given initial outputs: (train, test) outputs at infinite time,
    /// f* = f*₀ + Θ*·(Θ + λI)⁻¹·(y − f₀).
    let singleAtInfinity (ts: TrainSet) (fxTrain0: Tensor) (test: (Tensor * Tensor) option) : Outputs =
        let n, k = ts.Size, ts.Outputs
        { Train = Tensor.copy ts.Y
          Test =
            test |> Option.map (fun (ktd, fxTest0) ->
                let rT = transpose (Array.map2 (-) ts.Y.Data fxTrain0.Data) n k
                (ts.Factor PredictGet.Ntk).SolveRows(rT, k)
                let m = ktd.Shape[0]
                Tensor.create [| m; k |] (add fxTest0.Data (Linalg.gemmNT 1.0 ktd.Data m rT k n))) }

    /// One linearised network at finite times: f(t) = f₀ + expm1(−Θs)·(f₀ − y) on the train set and
    /// f*(t) = f*₀ + Θ*·Θ⁻¹·expm1(−Θs)·(f₀ − y) on the test set, with a leading time axis.
    let singleAtTimes (ts: TrainSet) (learningRate: float) (times: float[]) (fxTrain0: Tensor) (test: (Tensor * Tensor) option) : Outputs =
        let eig = ts.Eigen PredictGet.Ntk
        let ev = eig.Values
        let n, k = ts.Size, ts.Outputs
        let zT = eig.TimesV(transpose (Array.map2 (-) fxTrain0.Data ts.Y.Data) n k, k) // (Vᵀ(f₀ − y))ᵀ
        let ss = scaledTimes ts learningRate times
        let train =
            ss |> Array.map (fun s ->
                let w = ev |> Array.map (fun l -> expm1 (-l * s))
                add fxTrain0.Data (transpose (eig.TimesVT(scaleColumns zT k n w, k)) k n))
        let testOut =
            test |> Option.map (fun (ktd, fxTest0) ->
                let m = ktd.Shape[0]
                let a = eig.TimesV(ktd.Data, m)
                let outs =
                    ss |> Array.map (fun s ->
                        let w = ev |> Array.map (fun l -> expm1OverLambda l s)
                        add fxTest0.Data (Linalg.gemmNT 1.0 (scaleColumns a m n w) m zT k n))
                stack outs [| m; k |])
        { Train = stack train [| n; k |]; Test = testOut }
