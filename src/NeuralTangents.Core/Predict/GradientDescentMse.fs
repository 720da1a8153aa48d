namespace NeuralTangents

open MathNet.Numerics.LinearAlgebra
open NeuralTangents.PredictSolve
open NeuralTangents.PredictInference

/// Closed-form gradient flow on the MSE loss 1/(2NK)·‖f − y‖² in function space, at finite times through the
/// eigenbasis of the regularised train–train kernel (neural_tangents' <c>gradient_descent_mse</c> and the
/// finite-time branch of <c>gradient_descent_mse_ensemble</c>; arXiv:1806.07572, arXiv:1902.06720).
module internal PredictMse =

    /// Scaled time s = η·t / (N·K) of each requested time.
    let private scaledTimes (ts: TrainSet) (learningRate: float) (times: float[]) =
        times |> Array.map (fun t -> learningRate * t / float ts.OutputSize)

    /// Ensemble mean (and covariance) of one kind (Nngp or Ntk) at finite times, with a leading time axis.
    let ensembleAtTimes (ts: TrainSet) (g: PredictGet) (learningRate: float) (times: float[])
                        (test: TestBlocks option) (computeCov: bool) : Gaussian =
        let eig = ts.Eigen g
        let v, ev = eig.Vectors, eig.Values
        let z = v.TransposeThisAndMultiply ts.Y // Vᵀ·y
        let ss = scaledTimes ts learningRate times
        let k = ts.Y.ColumnCount
        let negPhi s = ev |> Array.map (fun l -> -(expm1OverLambda l s))
        match test with
        | None ->
            // Train set: f(t) = (I − e^{−Θ s})·y.
            let means = ss |> Array.map (fun s -> scaleColumns v (ev |> Array.map (fun l -> -(expm1 (-l * s)))) * z)
            let covs =
                if not computeCov then None
                else
                    let n = ts.Size
                    let mats =
                        ss |> Array.map (fun s ->
                            match g with
                            | PredictGet.Nngp ->
                                // V·diag(λ e^{−2λs})·Vᵀ
                                let w = ev |> Array.map (fun l -> l * exp (-2.0 * l * s))
                                mulNT (scaleColumns v w) v
                            | _ ->
                                // e^{−Θs}·K·e^{−Θs}, K the NNGP
                                let e = mulNT (scaleColumns v (ev |> Array.map (fun l -> exp (-l * s)))) v
                                mul (mul e (ts.Block PredictGet.Nngp)) e
                            |> symmetrizeInPlace)
                    Some(stack mats n n)
            { Mean = stack means ts.Size k; Covariance = covs }
        | Some tb ->
            let a = mul (tb.TestTrain g) v // K*·V (M, N)
            let means = ss |> Array.map (fun s -> scaleColumns a (negPhi s) * z)
            let covs =
                match tb.TestTest with
                | Some ktt when computeCov ->
                    let kttN = ktt PredictGet.Nngp
                    let mats =
                        match g with
                        | PredictGet.Nngp ->
                            // K** − K*·V·diag(−expm1(−2λs)/λ)·Vᵀ·K*ᵀ
                            ss |> Array.map (fun s -> kttN - mulNT (scaleColumns a (negPhi (2.0 * s))) a)
                        | _ ->
                            // arXiv:1902.06720 eq. 16 with U = V·diag(w)·Vᵀ = Θ⁻¹(I − e^{−Θs}), w = −expm1(−λs)/λ:
                            // K** + Θ*·U·K·U·Θ*ᵀ − (Θ*·U·K*ᵀ + transpose).
                            let b = mul (tb.TestTrain PredictGet.Nngp) v // K*·V
                            let c = mulTN v (mul (ts.Block PredictGet.Nngp) v) // Vᵀ·K·V
                            ss |> Array.map (fun s ->
                                let aw = scaleColumns a (negPhi s)
                                let t2 = mulNT aw b
                                mulNT (mul aw c) aw - t2 - t2.Transpose() + kttN)
                    Some(stack (mats |> Array.map symmetrizeInPlace) tb.M tb.M)
                | _ -> None
            { Mean = stack means tb.M k; Covariance = covs }

    /// One linearised network from given initial outputs: (train, test) outputs at infinite time.
    let singleAtInfinity (ts: TrainSet) (fxTrain0: Mat) (test: (Mat * Mat) option) : Outputs =
        let b = PredictGet.Ntk
        { Train = toTensor ts.Y
          Test = test |> Option.map (fun (ktd, fxTest0) -> toTensor (fxTest0 + ktd * ts.Solve(b, ts.Y - fxTrain0))) }

    /// One linearised network at finite times: f(t) = f₀ + expm1(−Θs)·(f₀ − y) on the train set and
    /// f*(t) = f*₀ + Θ*·Θ⁻¹·expm1(−Θs)·(f₀ − y) on the test set, with a leading time axis.
    let singleAtTimes (ts: TrainSet) (learningRate: float) (times: float[]) (fxTrain0: Mat) (test: (Mat * Mat) option) : Outputs =
        let eig = ts.Eigen PredictGet.Ntk
        let v, ev = eig.Vectors, eig.Values
        let z = v.TransposeThisAndMultiply(fxTrain0 - ts.Y)
        let ss = scaledTimes ts learningRate times
        let k = ts.Y.ColumnCount
        let train =
            ss |> Array.map (fun s -> fxTrain0 + scaleColumns v (ev |> Array.map (fun l -> expm1 (-l * s))) * z)
        let testOut =
            test |> Option.map (fun (ktd, fxTest0) ->
                let a = mul ktd v
                let outs = ss |> Array.map (fun s -> fxTest0 + scaleColumns a (ev |> Array.map (fun l -> expm1OverLambda l s)) * z)
                stack outs ktd.RowCount k)
        { Train = stack train ts.Size k; Test = testOut }
