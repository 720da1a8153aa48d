namespace NeuralTangents

open System.Collections.Generic
open MathNet.Numerics.LinearAlgebra
open NeuralTangents.PredictSolve

/// Exact GP inference at infinite training time (neural_tangents' <c>gp_inference</c>), on kernel blocks that are
/// already matrices, with the train-side factorisations cached.
module internal PredictInference =

    /// The train–train block a kind reads: the NNGP for Nngp, the NTK for Ntk and NtkGp.
    let blockOf (g: PredictGet) =
        match g with
        | PredictGet.Nngp -> PredictGet.Nngp
        | PredictGet.Ntk | PredictGet.NtkGp -> PredictGet.Ntk

    let blockName (g: PredictGet) =
        match g with
        | PredictGet.Nngp -> "NNGP"
        | PredictGet.Ntk | PredictGet.NtkGp -> "NTK"

    /// The training set: targets, train–train blocks (fetched on first use, symmetrised by the caller) and
    /// cached Cholesky factors, K⁻¹y and eigenbases of the regularised blocks (neural_tangents' lru_caches).
    type TrainSet(n: int, y: Mat, diagReg: float, absolute: bool, fetch: PredictGet -> Mat) =
        let gate = obj ()
        let blocks = Dictionary<PredictGet, Mat>()
        let chols = Dictionary<PredictGet, CholeskyFactor>()
        let kinvy = Dictionary<PredictGet, Mat>()
        let eigs = Dictionary<PredictGet, EigenBasis>()

        let cached (d: Dictionary<PredictGet, 'T>) (key: PredictGet) (make: unit -> 'T) =
            lock gate (fun () ->
                match d.TryGetValue key with
                | true, v -> v
                | _ ->
                    let v = make ()
                    d[key] <- v
                    v)

        /// Number of training inputs N.
        member _.Size = n
        /// Targets (N, K).
        member _.Y = y
        /// N · K, the normaliser of the MSE loss 1/(2NK)·‖f − y‖² (neural_tangents' <c>y_train.size</c>).
        member _.OutputSize = y.RowCount * y.ColumnCount
        /// The unregularised, symmetrised train–train block (Nngp or Ntk).
        member _.Block(b: PredictGet) = cached blocks b (fun () -> fetch b)
        member private t.Regularized(b: PredictGet) = regularize diagReg absolute (t.Block b)
        /// Cholesky factor of the regularised block.
        member t.Cholesky(b: PredictGet) =
            cached chols b (fun () -> cholesky (sprintf "the %s train–train kernel" (blockName b)) (t.Regularized b))
        /// (K + λI)⁻¹ · rhs.
        member t.Solve(b: PredictGet, rhs: Mat) = t.Cholesky(b).Solve(rhs)
        /// (K + λI)⁻¹ · y.
        member t.KInvY(b: PredictGet) = cached kinvy b (fun () -> t.Solve(b, y))
        /// Eigenbasis of the regularised block.
        member t.Eigen(b: PredictGet) =
            cached eigs b (fun () -> eigen (sprintf "the %s train–train kernel" (blockName b)) (t.Regularized b))

    /// Test-side blocks: test–train (M, N) and, for covariances, test–test (M, M), fetched by block kind.
    type TestBlocks =
        { M: int
          TestTrain: PredictGet -> Mat
          TestTest: (PredictGet -> Mat) option }

    /// Posterior of one kind at infinite time. Without a test set: the training targets, with a zero covariance
    /// when <paramref name="trainCov"/> (neural_tangents' unregularised train-set outputs N(y, 0)).
    let posterior (ts: TrainSet) (g: PredictGet) (test: TestBlocks option) (trainCov: bool) : Gaussian =
        match test with
        | None ->
            { Mean = toTensor ts.Y
              Covariance = if trainCov then Some(Tensor.zeros [| ts.Size; ts.Size |]) else None }
        | Some tb ->
            let b = blockOf g
            let ktd = tb.TestTrain b
            let mean = ktd * ts.KInvY b
            let cov =
                tb.TestTest
                |> Option.map (fun ktt ->
                    let c =
                        match g with
                        | PredictGet.Nngp | PredictGet.NtkGp ->
                            // K** − K*·(K + λI)⁻¹·K*ᵀ with K the NNGP (Nngp) or the NTK (NtkGp, arXiv:2007.05864).
                            ktt b - mul ktd (ts.Solve(b, ktd.Transpose()))
                        | PredictGet.Ntk ->
                            // Ensemble of networks trained to convergence (arXiv:1902.06720, eq. 16 at t = ∞):
                            // K** + Θ*·Θ⁻¹·K·Θ⁻¹·Θ*ᵀ − (Θ*·Θ⁻¹·K*ᵀ + transpose), K the NNGP, Θ the NTK.
                            let nngpTd = tb.TestTrain PredictGet.Nngp
                            let term1 = ts.Solve(PredictGet.Ntk, ktd.Transpose())
                            let term2 = mul ktd (ts.Solve(PredictGet.Ntk, nngpTd.Transpose()))
                            mulTN term1 (mul (ts.Block PredictGet.Nngp) term1)
                            - term2 - term2.Transpose() + ktt PredictGet.Nngp
                    toTensor (symmetrizeInPlace c))
            { Mean = toTensor mean; Covariance = cov }
