namespace NeuralTangents

open System
open System.Collections.Generic
open NeuralTangents.PredictSolve
open NeuralTangents.PredictFactor

/// Exact GP inference at infinite training time (neural_tangents' <c>gp_inference</c>), on flat row-major kernel
/// blocks, with the train-side factorisations cached. Every product and solve is one BLAS/LAPACK call (or its
/// managed fallback) on buffers of at most N×N (train side, one per kernel) or M×N (test side).
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

    /// Checks for cancellation and reports progress between the big steps of one predictor.
    type Monitor(control: PredictControl) =
        let clock = System.Diagnostics.Stopwatch.StartNew()
        let mutable steps = 0
        /// Throws OperationCanceledException when cancellation was requested.
        member _.Check() = control.Cancellation.ThrowIfCancellationRequested()
        /// Records a finished step, then checks for cancellation.
        member _.Done(step: string) =
            let k = System.Threading.Interlocked.Increment(&steps)
            control.Progress |> Option.iter (fun p -> p.Report { Step = step; StepsDone = k; Elapsed = clock.Elapsed })
            control.Cancellation.ThrowIfCancellationRequested()

    /// The training set: targets (N, K), the train–train blocks (fetched on first use as a row-major N×N buffer
    /// and whether the callee may overwrite it) packed with their Cholesky factors, (K + λI)⁻¹·y and eigenbases
    /// (neural_tangents' lru_caches).
    type TrainSet(n: int, y: Tensor, diagReg: float, absolute: bool, fetch: PredictGet -> float[] * bool, monitor: Monitor) =
        let gate = obj ()
        let blocks = Dictionary<PredictGet, Block>()
        let kinvyT = Dictionary<PredictGet, float[]>()
        let eigs = Dictionary<PredictGet, Spectrum>()
        /// Tridiagonal forms made ahead of their spectra by <c>ReduceTogether</c>, each taken by its <c>Eigen</c>.
        let reductions = Dictionary<PredictGet, Reduction>()

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
        /// Number of output columns K.
        member _.Outputs = y.Shape[1]
        /// N · K, the normaliser of the MSE loss 1/(2NK)·‖f − y‖² (neural_tangents' <c>y_train.size</c>).
        member _.OutputSize = y.Data.Length
        /// The packed block (Nngp or Ntk): symmetrised S, and its factor once asked for.
        member _.Block(b: PredictGet) =
            cached blocks b (fun () ->
                monitor.Check()
                let data, owned = Timings.time $"predict: {blockName b} train–train kernel" (fun () -> fetch b)
                monitor.Done $"{blockName b} train–train kernel"
                Timings.time $"predict: {blockName b} block (symmetrise, ridge)" (fun () ->
                    Block.Create($"the {blockName b} train–train kernel", data, n, owned, diagReg, absolute)))
        /// The factored block.
        member t.Factor(b: PredictGet) =
            let blk = t.Block b
            if not blk.IsFactored then
                monitor.Check()
                Timings.time $"predict: {blockName b} Cholesky (dpotrf)" blk.Factor
                monitor.Done $"Cholesky factor of the {blockName b}"
            blk
        /// Cancellation and progress of this predictor.
        member _.Monitor = monitor
        /// ((K + λI)⁻¹·y)ᵀ, (K, N).
        member t.KInvYT(b: PredictGet) =
            cached kinvyT b (fun () ->
                let blk = t.Factor b
                Timings.time $"predict: {blockName b} solve (K + λI)⁻¹·y (trsm)" (fun () ->
                    let z = transpose y.Data n t.Outputs
                    blk.SolveRows(z, t.Outputs)
                    z))
        /// Eigenbasis of the regularised block (see <c>Spectrum</c>). Only the latest basis is cached: computing
        /// one drops the other, so blocks and bases together stay within three N×N arrays (two blocks, one basis).
        /// A basis whose reflectors were overwritten since (a Cholesky factor of the same block) is recomputed.
        member t.Eigen(b: PredictGet) : Spectrum =
            lock gate (fun () ->
                match eigs.TryGetValue b with
                | true, e when not e.IsCurrent -> eigs.Remove b |> ignore
                | _ -> ())
            cached eigs b (fun () ->
                if eigs.Count > 0 then
                    eigs.Clear()
                    // The dropped basis (and the previous kind's M×N temporaries) are large-object garbage that a
                    // GC would only find after the new N×N basis is allocated: collect first so the peak stays at
                    // three N×N arrays (measured RSS, not only live data).
                    GC.Collect(2, GCCollectionMode.Forced, true)
                let blk = t.Block b
                monitor.Check()
                let reduced =
                    lock gate (fun () ->
                        match reductions.TryGetValue b with
                        | true, r ->
                            reductions.Remove b |> ignore
                            Some r
                        | _ -> None)
                let e =
                    Timings.time $"predict: {blockName b} tridiagonal reduction (dsytrd)" (fun () ->
                        spectrum $"the {blockName b} train–train kernel" blk reduced)
                monitor.Done $"eigendecomposition of the {blockName b}"
                e)

        /// Before the eigenbases of several kinds (finite times): reduces to tridiagonal form, at once and with one
        /// OpenBLAS thread each, every block of these kinds that has no current basis, so that their dsytrd (memory-
        /// bound, see <c>Tridiagonal.tryRunTogether</c>) share the cores; each <c>Eigen</c> then starts from its
        /// reduction. In place: no N×N array beyond the blocks. Does nothing for fewer than two such blocks,
        /// without native dsytrd, or where <c>tryRunTogether</c> declines (more OpenBLAS threads than blocks:
        /// each dsytrd then runs alone with all of them, in <c>Eigen</c>).
        member t.ReduceTogether(kinds: PredictGet list) =
            let pending =
                kinds
                |> List.distinct
                |> List.filter (fun b ->
                    lock gate (fun () ->
                        not (reductions.ContainsKey b)
                        && (match eigs.TryGetValue b with
                            | true, e -> not e.IsCurrent
                            | _ -> true)))
            if pending.Length >= 2 && n > 1 && Tridiagonal.available () then
                let blocks = pending |> List.map (fun b -> b, t.Block b) |> Array.ofList
                monitor.Check()
                let made = Array.zeroCreate<Reduction> blocks.Length
                let jobs = blocks |> Array.mapi (fun i (_, blk) -> fun () -> made[i] <- reduce blk)
                let names = pending |> List.map blockName |> String.concat " and "
                let ran =
                    Timings.time ("predict: " + names + " tridiagonal reductions (dsytrd, one thread each, together)") (fun () ->
                        Tridiagonal.tryRunTogether jobs)
                if ran then
                    lock gate (fun () -> blocks |> Array.iteri (fun i (b, _) -> reductions[b] <- made[i]))
                    monitor.Done("tridiagonal reductions of the " + names)

    /// What the NNGP covariance of one call leaves for the NTK covariance of the same call: W = K*·L_K⁻ᵀ (M, N) and
    /// the NNGP posterior covariance (M, M), both read-only once set.
    [<Sealed; AllowNullLiteral>]
    type NngpHalfSolve(w: float[], cov: float[]) =
        member _.W = w
        member _.Cov = cov

    /// Test-side blocks, row-major and read-only: test–train (M, N) and, for covariances, the symmetrised
    /// test–test (M, M), fetched by block kind. <c>Shared</c> carries the NNGP covariance's half solve to the NTK
    /// covariance of the same call (null until then).
    type TestBlocks =
        { M: int
          TestTrain: PredictGet -> float[]
          TestTest: (PredictGet -> float[]) option
          mutable Shared: NngpHalfSolve }

    /// Posterior of one kind at infinite time. Without a test set: the training targets, with a zero covariance
    /// when <paramref name="trainCov"/> (neural_tangents' unregularised train-set outputs N(y, 0)).
    let posterior (ts: TrainSet) (g: PredictGet) (test: TestBlocks option) (trainCov: bool) : Gaussian =
        match test with
        | None ->
            { Mean = Tensor.copy ts.Y
              Covariance = if trainCov then Some(Tensor.zeros [| ts.Size; ts.Size |]) else None }
        | Some tb ->
            let n, m, k = ts.Size, tb.M, ts.Outputs
            let b = blockOf g
            let ktd = tb.TestTrain b
            // Mean K*·(K + λI)⁻¹·y.
            let kinvyT = ts.KInvYT b
            let mean = Timings.time $"""predict: {PredictGets.name g} mean (gemm)""" (fun () -> Linalg.gemmNT 1.0 ktd m kinvyT k n)
            ts.Monitor.Done $"""{PredictGets.name g} mean"""
            let cov =
                tb.TestTest
                |> Option.map (fun ktt ->
                    let fac = ts.Factor b
                    match g with
                    | PredictGet.Nngp | PredictGet.NtkGp ->
                        // K** − K*·(K + λI)⁻¹·K*ᵀ = K** − W·Wᵀ with W = K*·L⁻ᵀ (K the NNGP, or the NTK for NtkGp,
                        // arXiv:2007.05864): one triangular solve and one product.
                        let w = Pages.copy ktd
                        Timings.time $"""predict: {PredictGets.name g} cov: K*·L⁻ᵀ (trsm)""" (fun () -> fac.HalfSolve(w, m))
                        let c = Pages.copy (ktt b)
                        Timings.time $"""predict: {PredictGets.name g} cov: K** − W·Wᵀ (syrk)""" (fun () ->
                            Linalg.rankUpdateLower -1.0 w m n c)
                        Linalg.mirrorLower c m
                        if g = PredictGet.Nngp then tb.Shared <- NngpHalfSolve(w, c)
                        Tensor.create [| m; m |] c
                    | PredictGet.Ntk ->
                        // Ensemble of networks trained to convergence (arXiv:1902.06720, eq. 16 at t = ∞):
                        // K** + Θ*·Θ⁻¹·K·Θ⁻¹·Θ*ᵀ − (Θ*·Θ⁻¹·K*ᵀ + transpose), K the NNGP, Θ the NTK (+ λI).
                        // With Tᵀ = Θ*·Θ⁻¹ (two triangular solves): K** + Tᵀ·K·T − (Tᵀ·K*ᵀ + transpose).
                        let tt = Pages.copy ktd
                        Timings.time "predict: Ntk cov: Θ*·Θ⁻¹ (two trsm)" (fun () -> fac.SolveRows(tt, m))
                        let nngp = ts.Block PredictGet.Nngp
                        let u = Pages.copy tt
                        let shared = tb.Shared
                        let c =
                            Timings.time "predict: Ntk cov: rest (trmm, syrk or products)" (fun () ->
                                if not (isNull shared) && nngp.TryTimesL(u, m) then
                                    // The NNGP posterior of this call is known: Σ_K = K** − W·Wᵀ with W = K*·L_K⁻ᵀ and
                                    // K + λ_K·I = L_K·L_Kᵀ. Completing the square in eq. 16,
                                    //   Σ = Σ_K + (Tᵀ − K*·(K + λ_K·I)⁻¹)·(K + λ_K·I)·(T − (K + λ_K·I)⁻¹·K*ᵀ) − λ_K·Tᵀ·T
                                    //     = Σ_K + (U − W)·(U − W)ᵀ − λ_K·Tᵀ·T,   U = Tᵀ·L_K,
                                    // two rank updates on a copy of Σ_K instead of the (M, N)·(N, M) product Tᵀ·K*ᵀ.
                                    System.Numerics.Tensors.TensorPrimitives.Subtract(ReadOnlySpan(u), ReadOnlySpan(shared.W), Span(u))
                                    let c = Pages.copy shared.Cov
                                    Linalg.rankUpdateLower 1.0 u m n c
                                    if nngp.Ridge <> 0.0 then Linalg.rankUpdateLower -nngp.Ridge tt m n c
                                    c
                                else
                                    let c = Pages.copy (ktt PredictGet.Nngp)
                                    if nngp.TryTimesL(u, m) then
                                        // The NNGP is already factored, K + λ_K·I = L_K·L_Kᵀ: Tᵀ·K·T = U·Uᵀ − λ_K·Tᵀ·T
                                        // with U = Tᵀ·L_K, a triangular product and two rank updates instead of two
                                        // full products.
                                        Linalg.rankUpdateLower 1.0 u m n c
                                        if nngp.Ridge <> 0.0 then Linalg.rankUpdateLower -nngp.Ridge tt m n c
                                    else
                                        let tk = nngp.TimesS(tt, m)
                                        Linalg.gemmNTInto 1.0 tk m tt m n 1.0 c
                                    let t2 = Linalg.gemmNT 1.0 tt m (tb.TestTrain PredictGet.Nngp) m n
                                    for i in 0 .. m - 1 do
                                        for j in 0 .. i do
                                            c[i * m + j] <- c[i * m + j] - t2[i * m + j] - t2[j * m + i]
                                    c)
                        Linalg.mirrorLower c m
                        Tensor.create [| m; m |] c)
            if cov.IsSome then ts.Monitor.Done $"""{PredictGets.name g} covariance"""
            { Mean = Tensor.create [| m; k |] mean; Covariance = cov }
