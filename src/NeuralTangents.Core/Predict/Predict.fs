namespace NeuralTangents

open System
open System.Collections.Generic
open MathNet.Numerics.LinearAlgebra
open NeuralTangents.PredictSolve
open NeuralTangents.PredictInference

/// <summary>
/// Predictions of infinitely wide networks from their kernels, after neural_tangents' <c>nt.predict</c>:
/// GP inference, closed-form gradient flow on MSE (one linearised network, or the infinite ensemble), gradient
/// descent on any loss by an ODE solver, and the largest stable learning rate.
/// Targets y are (N, K) matrices; kernels are (N1, N2) matrices shared by the K output columns
/// (neural_tangents' default <c>trace_axes=(-1,)</c>). Times are in steps: absolute time = learning rate · t.
/// Factorisations of the train–train kernel are computed on first use and cached by the returned predictor.
/// </summary>
[<RequireQualifiedAccess>]
module Predict =

    /// Memoises a function of a block kind for the duration of one prediction call.
    let private memo (f: PredictGet -> 'T) =
        let d = Dictionary<PredictGet, 'T>()
        fun b ->
            match d.TryGetValue b with
            | true, v -> v
            | _ ->
                let v = f b
                d[b] <- v
                v

    /// A symmetrised copy of a square (M, M) block.
    let private symmetricCopy (t: Tensor) =
        let c = Pages.copy t.Data
        PredictFactor.symmetrizeInPlace c t.Shape[0]
        c

    let private pick (name: string) (what: string) (km: KernelMatrices) (b: PredictGet) =
        let block = if b = PredictGet.Nngp then km.NngpMatrix else km.NtkMatrix
        match block with
        | Some t -> t
        | None ->
            let field = if b = PredictGet.Nngp then "NngpMatrix" else "NtkMatrix"
            invalidArg name ((what + " needs the " + (blockName b) + " block (" + field + "), which is None"))

    let private firstBlock (name: string) (km: KernelMatrices) =
        match km.NngpMatrix, km.NtkMatrix with
        | Some t, _
        | None, Some t -> checkMatrix name t; t
        | None, None -> invalidArg name "holds neither an NNGP nor an NTK block"

    let private kindsOfGet (get: Get) =
        match get with
        | Get.Nngp -> [ PredictGet.Nngp ]
        | Get.Ntk -> [ PredictGet.Ntk ]
        | Get.Both -> [ PredictGet.Nngp; PredictGet.Ntk ]

    /// <summary>
    /// Posterior of NNGP / NTK / NTKGP inference at infinite time (neural_tangents' <c>gp_inference</c>).
    /// Nngp: mean K*·(K + λI)⁻¹·y, covariance K** − K*·(K + λI)⁻¹·K*ᵀ (K the NNGP).
    /// Ntk: the infinite ensemble trained to convergence (arXiv:1902.06720): mean Θ*·(Θ + λI)⁻¹·y, covariance
    /// K** + Θ*·Θ⁻¹·K·Θ⁻¹·Θ*ᵀ − (Θ*·Θ⁻¹·K*ᵀ + transpose); it needs both the NNGP and the NTK blocks.
    /// NtkGp: the NNGP formulas with the NTK in place of the NNGP (arXiv:2007.05864).
    /// </summary>
    /// <param name="control">Cancellation and progress, checked between the big steps (factorisations, solves);
    /// PredictControl.None for neither.</param>
    /// <param name="kTrainTrain">Train–train blocks (N, N): the NNGP for Nngp, the NTK for Ntk and NtkGp, both
    /// for an Ntk covariance. They are symmetrised before use.</param>
    /// <param name="yTrain">Training targets (N, K).</param>
    /// <param name="diagReg">Ridge λ added to the train–train diagonal, relative to the mean diagonal
    /// (trace / N) unless <paramref name="diagRegAbsoluteScale"/>.</param>
    /// <param name="diagRegAbsoluteScale">True for λ = diagReg in absolute units.</param>
    /// <param name="kinds">The posteriors to return.</param>
    /// <returns>A predictor of (kTestTrain, kTestTest): kTestTrain (M, N) blocks, or None for the training set
    /// (mean y, zero covariance: unregularised, as neural_tangents); kTestTest (M, M) blocks, or None for means
    /// only (with kTestTrain None any Some value asks for the zero train covariance). It returns one
    /// <c>Gaussian</c> per kind, mean (M, K), covariance (M, M).</returns>
    /// <exception cref="T:System.ArgumentException">on a missing block, mismatched sizes, non-finite entries or a
    /// negative diagReg, naming the argument.</exception>
    /// <exception cref="T:NeuralTangents.NeuralTangentsException">when a train–train block is not positive
    /// definite; the message suggests diag_reg.</exception>
    [<CompiledName("GpInferenceWith")>]
    let gpInferenceWith (control: PredictControl) (kTrainTrain: KernelMatrices) (yTrain: Tensor) (diagReg: float)
                        (diagRegAbsoluteScale: bool) (kinds: PredictGet list)
                        : KernelMatrices option -> KernelMatrices option -> Map<PredictGet, Gaussian> =
        checkDiagReg diagReg
        if List.isEmpty kinds then invalidArg "kinds" "ask for at least one of PredictGet.Nngp, Ntk, NtkGp"
        let n = (firstBlock "kTrainTrain" kTrainTrain).Shape[0]
        checkTargets "yTrain" n yTrain
        for b in [ kTrainTrain.NngpMatrix; kTrainTrain.NtkMatrix ] do
            b |> Option.iter (checkShape "kTrainTrain" n n)
        for g in kinds do
            pick "kTrainTrain" $"""the {PredictGets.name g} posterior""" kTrainTrain (blockOf g) |> ignore
        let fetch b = (pick "kTrainTrain" "the NTK covariance" kTrainTrain b).Data, false
        let ts = TrainSet(n, yTrain, diagReg, diagRegAbsoluteScale, fetch, Monitor control)
        fun (kTestTrain: KernelMatrices option) (kTestTest: KernelMatrices option) ->
            let test =
                kTestTrain |> Option.map (fun ktr ->
                    let m = (firstBlock "kTestTrain" ktr).Shape[0]
                    { M = m
                      TestTrain = memo (fun b ->
                          let t = pick "kTestTrain" "this posterior" ktr b
                          checkShape "kTestTrain" m n t
                          t.Data)
                      TestTest =
                        kTestTest |> Option.map (fun ktt ->
                            memo (fun b ->
                                let t = pick "kTestTest" "this covariance" ktt b
                                checkShape "kTestTest" m m t
                                symmetricCopy t))
                      Shared = null })
            kinds
            |> List.map (fun g -> g, posterior ts g test kTestTest.IsSome)
            |> Map.ofList

    /// <summary><c>gpInferenceWith</c> without cancellation or progress (see its documentation).</summary>
    [<CompiledName("GpInference")>]
    let gpInference (kTrainTrain: KernelMatrices) (yTrain: Tensor) (diagReg: float) (diagRegAbsoluteScale: bool)
                    (kinds: PredictGet list) : KernelMatrices option -> KernelMatrices option -> Map<PredictGet, Gaussian> =
        gpInferenceWith PredictControl.None kTrainTrain yTrain diagReg diagRegAbsoluteScale kinds

    /// The ensemble predictor behind the public entry points; with <paramref name="ownsTrainKernel"/> the
    /// train kernel that kernelFn returns is fresh and nobody else's, so its buffers are symmetrised and factored
    /// in place (two N×N arrays for NNGP and NTK together, instead of four).
    let private ensemble (control: PredictControl) (kernelFn: Tensor -> Tensor option -> Get -> Kernel)
                         (ownsTrainKernel: bool) (xTrain: Tensor)
                         (yTrain: Tensor) (learningRate: float) (diagReg: float) (diagRegAbsoluteScale: bool)
                         : float[] option -> Tensor option -> Get -> bool -> Map<PredictGet, Gaussian> =
        checkLearningRate learningRate
        checkDiagReg diagReg
        if xTrain.Rank < 1 then invalidArg "xTrain" "needs a batch axis"
        let n = xTrain.Shape[0]
        checkTargets "yTrain" n yTrain
        let gate = obj ()
        // The train kernel's NNGP and NTK (when computed) until both are handed to the TrainSet.
        let mutable trainKernel: (Tensor * Tensor option) option = None
        let taken = HashSet<PredictGet>()
        // Set by a call that asks for the NTK: the train kernel is then computed once, NNGP and NTK together.
        let mutable wantsNtk = false
        let fetch (b: PredictGet) =
            let t =
                lock gate (fun () ->
                    let nngp, ntk =
                        match trainKernel with
                        | Some(nngp, ntk) when b = PredictGet.Nngp || ntk.IsSome -> nngp, ntk
                        | _ ->
                            let k = kernelFn xTrain None (if b = PredictGet.Nngp && not wantsNtk then Get.Nngp else Get.Both)
                            trainKernel <- Some(k.Nngp, k.Ntk)
                            k.Nngp, k.Ntk
                    taken.Add b |> ignore
                    // Both blocks handed over: let the kernel (and its arrays, unless they are now ours) go.
                    if taken.Count = 2 then trainKernel <- None
                    if b = PredictGet.Nngp then nngp
                    else
                        match ntk with
                        | Some ntk -> ntk
                        | None -> invalidArg "kernelFn" "returned no NTK when asked for Both")
            checkShape "kernelFn(xTrain, None)" n n t
            t.Data, ownsTrainKernel
        let monitor = Monitor control
        let ts = TrainSet(n, yTrain, diagReg, diagRegAbsoluteScale, fetch, monitor)
        fun (t: float[] option) (xTest: Tensor option) (get: Get) (computeCov: bool) ->
            t |> Option.iter checkTimes
            if get.WantsNtk then lock gate (fun () -> wantsNtk <- true)
            let kernelGet = if get.WantsNtk then Get.Both else Get.Nngp
            let test =
                xTest |> Option.map (fun x ->
                    monitor.Check()
                    let ktd = kernelFn x (Some xTrain) kernelGet
                    monitor.Done "test–train kernel"
                    checkMatrix "kernelFn(xTest, xTrain)" ktd.Nngp
                    let nngpTt =
                        if not computeCov then None
                        else
                            let k = (kernelFn x None Get.Nngp).Nngp
                            monitor.Done "test–test kernel"
                            Some k
                    let m = ktd.Nngp.Shape[0]
                    { M = m
                      TestTrain = memo (fun b ->
                          let k =
                              match b with
                              | PredictGet.Nngp -> ktd.Nngp
                              | _ -> ktd.Ntk |> Option.defaultWith (fun () -> invalidArg "kernelFn" "returned no NTK when asked for Both")
                          checkShape "kernelFn(xTest, xTrain)" m n k
                          k.Data)
                      TestTest =
                        nngpTt |> Option.map (fun k ->
                            checkShape "kernelFn(xTest, None)" m m k
                            let s = symmetricCopy k
                            fun _ -> s)
                      Shared = null })
            if t.IsSome then ts.ReduceTogether(kindsOfGet get)
            kindsOfGet get
            |> List.map (fun g ->
                g,
                match t with
                | None -> posterior ts g test computeCov
                | Some times -> PredictMse.ensembleAtTimes ts g learningRate times test computeCov)
            |> Map.ofList

    /// <summary>
    /// Mean and covariance of the infinite ensemble of infinitely wide networks trained by gradient flow on
    /// MSE, marginalised over initialisation (neural_tangents' <c>gradient_descent_mse_ensemble</c>;
    /// arXiv:1902.06720 eq. 16). Nngp is the ensemble in which only the readout layer is trained; Ntk trains
    /// all layers. At t = None the result is <c>gpInference</c>'s.
    /// </summary>
    /// <param name="kernelFn">Kernel function (x1, x2, get), e.g. <c>KernelFn.compute layer</c>; its NNGP and NTK
    /// must be (N1, N2) matrices.</param>
    /// <param name="xTrain">Training inputs (batch axis first).</param>
    /// <param name="yTrain">Training targets (N, K).</param>
    /// <param name="learningRate">Step size η &gt; 0; absolute time is η·t.</param>
    /// <param name="diagReg">Ridge on the train–train kernel, relative to its mean diagonal unless absolute.</param>
    /// <param name="diagRegAbsoluteScale">True for an absolute ridge.</param>
    /// <returns>A predictor of (t, xTest, get, computeCov): t None for infinite time, or an array of times
    /// (steps, finite, ≥ 0) giving a leading time axis; xTest None for the training set; get Nngp, Ntk or Both;
    /// computeCov to add the (M, M) covariance. One <c>Gaussian</c> per kind.</returns>
    /// <exception cref="T:System.ArgumentException">on mismatched sizes, a non-positive learning rate, negative or
    /// non-finite times.</exception>
    /// <exception cref="T:NeuralTangents.NeuralTangentsException">when the train–train kernel is not PSD (finite
    /// times) or not positive definite (t = None); the message suggests diag_reg.</exception>
    [<CompiledName("GradientDescentMseEnsemble")>]
    let gradientDescentMseEnsemble (kernelFn: Tensor -> Tensor option -> Get -> Kernel) (xTrain: Tensor)
                                   (yTrain: Tensor) (learningRate: float) (diagReg: float)
                                   (diagRegAbsoluteScale: bool)
                                   : float[] option -> Tensor option -> Get -> bool -> Map<PredictGet, Gaussian> =
        ensemble PredictControl.None kernelFn false xTrain yTrain learningRate diagReg diagRegAbsoluteScale

    /// <summary>
    /// <c>gradientDescentMseEnsemble</c> with <c>KernelFn.compute network</c> as the kernel function. Since the
    /// train–train kernel is then computed here and shared with nobody, its arrays are symmetrised and factored in
    /// place: the predictor holds two N×N arrays (NNGP and NTK, each packed with its Cholesky factor) at t = ∞.
    /// </summary>
    /// <param name="control">Cancellation and progress, checked between the big steps (PredictControl.None for
    /// neither).</param>
    /// <param name="network">The network whose kernels are used.</param>
    /// <param name="xTrain">Training inputs (batch axis first).</param>
    /// <param name="yTrain">Training targets (N, K).</param>
    /// <param name="learningRate">Step size η &gt; 0; absolute time is η·t.</param>
    /// <param name="diagReg">Ridge on the train–train kernel, relative to its mean diagonal unless absolute.</param>
    /// <param name="diagRegAbsoluteScale">True for an absolute ridge.</param>
    /// <returns>The predictor of <c>gradientDescentMseEnsemble</c>.</returns>
    [<CompiledName("GradientDescentMseEnsembleOfNetwork")>]
    let gradientDescentMseEnsembleOfNetwork (control: PredictControl) (network: Layer) (xTrain: Tensor) (yTrain: Tensor) (learningRate: float)
                                            (diagReg: float) (diagRegAbsoluteScale: bool)
                                            : float[] option -> Tensor option -> Get -> bool -> Map<PredictGet, Gaussian> =
        ensemble control (KernelFn.compute network) true xTrain yTrain learningRate diagReg diagRegAbsoluteScale

    /// <summary><c>gradientDescentMseEnsembleOfNetwork</c> with the kernels from <paramref name="kernelFn"/>, which
    /// must return fresh arrays on every call (the predictor factors the train kernel in place), e.g. a tiled
    /// computation within a memory budget.</summary>
    [<CompiledName("GradientDescentMseEnsembleOfFreshKernels")>]
    let gradientDescentMseEnsembleOfFreshKernels (control: PredictControl) (kernelFn: Tensor -> Tensor option -> Get -> Kernel) (xTrain: Tensor) (yTrain: Tensor)
                                                 (learningRate: float) (diagReg: float) (diagRegAbsoluteScale: bool)
                                                 : float[] option -> Tensor option -> Get -> bool -> Map<PredictGet, Gaussian> =
        ensemble control kernelFn true xTrain yTrain learningRate diagReg diagRegAbsoluteScale

    /// <summary>
    /// <c>gradientDescentMseEnsembleOfNetwork</c> with every kernel computed in tiles (<c>Batching.compute</c>):
    /// within the memory budget of <paramref name="options"/>, both cores on independent tiles, progress per tile,
    /// cancellation between tiles. The predictor holds the train kernel's two N×N arrays (NNGP and NTK, each
    /// factored in place) and, during a call, the M×N and M×M test blocks.
    /// </summary>
    /// <param name="control">Cancellation and progress between the big steps; its token also stops the tiles
    /// when <paramref name="options"/> has no token of its own.</param>
    /// <param name="options">Tile size, memory budget, parallelism, tile progress and cancellation.</param>
    /// <param name="network">The network whose kernels are used.</param>
    /// <param name="xTrain">Training inputs (batch axis first).</param>
    /// <param name="yTrain">Training targets (N, K).</param>
    /// <param name="learningRate">Step size η &gt; 0; absolute time is η·t.</param>
    /// <param name="diagReg">Ridge on the train–train kernel, relative to its mean diagonal unless absolute.</param>
    /// <param name="diagRegAbsoluteScale">True for an absolute ridge.</param>
    /// <returns>The predictor of <c>gradientDescentMseEnsemble</c>.</returns>
    /// <exception cref="T:NeuralTangents.NeuralTangentsException">as <c>Batching.compute</c> (a kernel that does
    /// not fit the budget) and <c>gradientDescentMseEnsemble</c>.</exception>
    [<CompiledName("GradientDescentMseEnsembleOfTiledNetwork")>]
    let gradientDescentMseEnsembleOfTiledNetwork (control: PredictControl) (options: BatchOptions) (network: Layer) (xTrain: Tensor)
                                                 (yTrain: Tensor) (learningRate: float) (diagReg: float) (diagRegAbsoluteScale: bool)
                                                 : float[] option -> Tensor option -> Get -> bool -> Map<PredictGet, Gaussian> =
        let options =
            if options.Cancellation.CanBeCanceled then options else { options with Cancellation = control.Cancellation }
        ensemble control (Batching.compute options network) true xTrain yTrain learningRate diagReg diagRegAbsoluteScale

    /// <summary><c>ntkGpOfTiledNetwork</c> with the NTKs from <paramref name="kernelFn"/>, which must return fresh
    /// arrays on every call (the train NTK is factored in place), e.g. a tiled computation within a memory budget
    /// whose errors the caller words for its own argument names.</summary>
    [<CompiledName("NtkGpOfFreshKernels")>]
    let ntkGpOfFreshKernels (control: PredictControl) (kernelFn: Tensor -> Tensor option -> Get -> Kernel) (xTrain: Tensor)
                            (yTrain: Tensor) (diagReg: float) (diagRegAbsoluteScale: bool) : Tensor -> bool -> Gaussian =
        checkDiagReg diagReg
        if xTrain.Rank < 1 then invalidArg "xTrain" "needs a batch axis"
        let n = xTrain.Shape[0]
        checkTargets "yTrain" n yTrain
        let ntk (name: string) (x1: Tensor) (x2: Tensor option) =
            match (kernelFn x1 x2 Get.Ntk).Ntk with
            | Some t -> checkMatrix name t; t
            | None -> invalidArg name "has no NTK"
        let fetch _ =
            let t = ntk "kernel(xTrain, None)" xTrain None
            checkShape "kernel(xTrain, None)" n n t
            t.Data, true // fresh: symmetrised and factored in place
        let monitor = Monitor control
        let ts = TrainSet(n, yTrain, diagReg, diagRegAbsoluteScale, fetch, monitor)
        fun (xTest: Tensor) (computeCov: bool) ->
            if isNull (box xTest) then nullArg "xTest"
            monitor.Check()
            let ktd = ntk "kernel(xTest, xTrain)" xTest (Some xTrain)
            monitor.Done "test–train kernel"
            let m = ktd.Shape[0]
            checkShape "kernel(xTest, xTrain)" m n ktd
            let ktt =
                if not computeCov then None
                else
                    let k = ntk "kernel(xTest, None)" xTest None
                    monitor.Done "test–test kernel"
                    checkShape "kernel(xTest, None)" m m k
                    PredictFactor.symmetrizeInPlace k.Data m // fresh, so in place
                    Some k.Data
            let test = { M = m; TestTrain = (fun _ -> ktd.Data); TestTest = ktt |> Option.map (fun k _ -> k); Shared = null }
            posterior ts PredictGet.NtkGp (Some test) computeCov

    /// <summary>
    /// The NTK-GP posterior of a network (arXiv:2007.05864; neural_tangents' <c>gp_inference(..., get='ntkgp')</c>
    /// on <c>kernel_fn(..., 'ntk')</c>): mean Θ*·(Θ + λI)⁻¹·y, covariance Θ** − Θ*·(Θ + λI)⁻¹·Θ*ᵀ, every NTK
    /// computed in tiles (<c>Batching.compute</c>). The train NTK is computed on first use and factored in place
    /// (one N×N array); each call adds its test–train (M, N) and, for the covariance, test–test (M, M) blocks.
    /// </summary>
    /// <param name="control">Cancellation and progress between the big steps (kernels, factorisation, solves);
    /// its token also stops the tiles when <paramref name="options"/> has no token of its own.</param>
    /// <param name="options">Tile size, memory budget, parallelism, tile progress and cancellation.</param>
    /// <param name="network">The network whose NTK is the prior covariance.</param>
    /// <param name="xTrain">Training inputs (batch axis first).</param>
    /// <param name="yTrain">Training targets (N, K).</param>
    /// <param name="diagReg">Ridge on the train–train NTK, relative to its mean diagonal unless absolute.</param>
    /// <param name="diagRegAbsoluteScale">True for an absolute ridge.</param>
    /// <returns>A predictor of (xTest, computeCov): the posterior at the test inputs (pass xTrain itself for the
    /// regularised posterior on the training set), mean (M, K) and, when asked for, covariance (M, M).</returns>
    /// <exception cref="T:NeuralTangents.NeuralTangentsException">when the train NTK is not positive definite (the
    /// message suggests diag_reg), or a kernel does not fit the memory budget.</exception>
    [<CompiledName("NtkGpOfTiledNetwork")>]
    let ntkGpOfTiledNetwork (control: PredictControl) (options: BatchOptions) (network: Layer) (xTrain: Tensor) (yTrain: Tensor)
                            (diagReg: float) (diagRegAbsoluteScale: bool) : Tensor -> bool -> Gaussian =
        let options =
            if options.Cancellation.CanBeCanceled then options else { options with Cancellation = control.Cancellation }
        ntkGpOfFreshKernels control (Batching.compute options network) xTrain yTrain diagReg diagRegAbsoluteScale

    let private initialOutputs (name: string) (rows: int) (k: int) (f: Tensor option) =
        match f with
        | None -> Tensor.zeros [| rows; k |]
        | Some t ->
            checkShape name rows k t
            t

    /// The checked test–train kernel (M, N) and initial test outputs (M, K; zeros when absent), or None without a
    /// test set; initial test outputs without a test–train kernel are an error.
    let private testSide (n: int) (k: int) (kTestTrain: Tensor option) (fxTest0: Tensor option) =
        match kTestTrain, fxTest0 with
        | None, Some _ -> invalidArg "kTestTrain" "is needed for test predictions from fxTest0"
        | None, None -> None
        | Some ktd, ft0 ->
            checkMatrix "kTestTrain" ktd
            let m = ktd.Shape[0]
            checkShape "kTestTrain" m n ktd
            Some(ktd, initialOutputs "fxTest0" m k ft0)

    /// <summary>
    /// Outputs of one linearised network trained by gradient flow on MSE ½·mean((f − y)²), in closed form
    /// (neural_tangents' <c>gradient_descent_mse</c>; arXiv:1806.07572, arXiv:1902.06720):
    /// f(t) = y + e^{−ηΘt/(NK)}·(f₀ − y) on the train set, f*(t) = f*₀ − Θ*·Θ⁻¹·(I − e^{−ηΘt/(NK)})·(f₀ − y).
    /// </summary>
    /// <param name="kTrainTrain">Train–train kernel Θ (N, N), usually the NTK; symmetrised before use.</param>
    /// <param name="yTrain">Targets (N, K).</param>
    /// <param name="learningRate">η &gt; 0.</param>
    /// <param name="diagReg">Ridge on Θ, relative to its mean diagonal unless absolute.</param>
    /// <param name="diagRegAbsoluteScale">True for an absolute ridge.</param>
    /// <returns>A predictor of (t, fxTrain0, fxTest0, kTestTrain): t None for infinite time (train outputs are y,
    /// test outputs by a Cholesky solve) or times (steps) giving a leading time axis; fxTrain0 (N, K) initial
    /// train outputs (None: zeros); fxTest0 (M, K) initial test outputs (None: zeros); kTestTrain (M, N), or None
    /// for no test predictions. Unlike neural_tangents, the train outputs are always returned.</returns>
    /// <exception cref="T:System.ArgumentException">on mismatched sizes, fxTest0 without kTestTrain, a
    /// non-positive learning rate, or negative / non-finite times.</exception>
    /// <exception cref="T:NeuralTangents.NeuralTangentsException">when Θ is not PSD (finite times) or not
    /// positive definite (t = None); the message suggests diag_reg.</exception>
    [<CompiledName("GradientDescentMse")>]
    let gradientDescentMse (kTrainTrain: Tensor) (yTrain: Tensor) (learningRate: float) (diagReg: float)
                           (diagRegAbsoluteScale: bool)
                           : float[] option -> Tensor option -> Tensor option -> Tensor option -> Outputs =
        checkSquare "kTrainTrain" kTrainTrain
        let n = kTrainTrain.Shape[0]
        checkTargets "yTrain" n yTrain
        checkLearningRate learningRate
        checkDiagReg diagReg
        let k = yTrain.Shape[1]
        let ts = TrainSet(n, yTrain, diagReg, diagRegAbsoluteScale, (fun _ -> kTrainTrain.Data, false), Monitor PredictControl.None)
        fun (t: float[] option) (fxTrain0: Tensor option) (fxTest0: Tensor option) (kTestTrain: Tensor option) ->
            t |> Option.iter checkTimes
            let f0 = initialOutputs "fxTrain0" n k fxTrain0
            let test = testSide n k kTestTrain fxTest0
            match t with
            | None -> PredictMse.singleAtInfinity ts f0 test
            | Some times -> PredictMse.singleAtTimes ts learningRate times f0 test

    /// <summary>
    /// The largest learning rate for which full-batch gradient descent (with momentum) on the MSE loss
    /// 1/(2·size)·‖f − y‖² converges for the linearised network: 2·(1 + momentum)·size / (λ_max(Θ) + eps)
    /// (neural_tangents' <c>max_learning_rate</c>; "Why Momentum Really Works", distill.pub/2017/momentum).
    /// </summary>
    /// <param name="ntkTrainTrain">The NTK on the training set (N, N).</param>
    /// <param name="yTrainSize">Total output size N·K; None means N (neural_tangents' default).</param>
    /// <param name="momentum">Momentum, finite and ≥ 0 (0 for plain gradient descent).</param>
    /// <param name="eps">Guard against a zero divisor, finite and ≥ 0 (neural_tangents uses 1e-12).</param>
    [<CompiledName("MaxLearningRate")>]
    let maxLearningRate (ntkTrainTrain: Tensor) (yTrainSize: int option) (momentum: float) (eps: float) : float =
        checkSquare "ntkTrainTrain" ntkTrainTrain
        if not (Double.IsFinite momentum) || momentum < 0.0 then
            invalidArg "momentum" $"must be finite and ≥ 0, got {Show.g momentum}"
        if not (Double.IsFinite eps) || eps < 0.0 then invalidArg "eps" $"must be finite and ≥ 0, got {Show.g eps}"
        let n = ntkTrainTrain.Shape[0]
        if n = 0 then invalidArg "ntkTrainTrain" "is empty"
        let size =
            match yTrainSize with
            | Some s when s <= 0 -> invalidArg "yTrainSize" $"must be > 0, got {string s}"
            | Some s -> s
            | None -> n
        let a = Pages.copy ntkTrainTrain.Data
        PredictFactor.symmetrizeInPlace a n
        let maxEv = Array.max (Linalg.symmetricEigenRowsInPlace a n) // dsyevd (MathNet without LAPACKE)
        2.0 * (1.0 + momentum) * float size / (maxEv + eps)

    /// <summary>
    /// Outputs of one linearised network trained by gradient descent (optionally with momentum) on any
    /// differentiable loss, by integrating the function-space ODE df/dt = −η·Θ·∇_f L with an adaptive
    /// Dormand–Prince 5(4) solver (relative and absolute tolerance 1e-10) (neural_tangents' <c>gradient_descent</c>).
    /// With momentum μ the ODE runs in τ = √η·t: d²f/dτ² = −Θ·∇_f L + (μ − 1)/√η · df/dτ.
    /// </summary>
    /// <param name="loss">The loss, e.g. <c>Loss.mse</c> or <c>Loss.softmaxCrossEntropy</c>.</param>
    /// <param name="kTrainTrain">Train–train NTK Θ (N, N).</param>
    /// <param name="yTrain">Targets (N, K).</param>
    /// <param name="learningRate">η &gt; 0.</param>
    /// <param name="momentum">None for plain gradient descent, or the momentum μ (finite, ≥ 0).</param>
    /// <returns>A predictor of (t, fxTrain0, fxTest0, kTestTrain) with t non-decreasing finite times ≥ 0 (steps);
    /// initial outputs default to zeros; outputs carry a leading time axis.</returns>
    [<CompiledName("GradientDescent")>]
    let gradientDescent (loss: Loss) (kTrainTrain: Tensor) (yTrain: Tensor) (learningRate: float)
                        (momentum: float option) : float[] -> Tensor option -> Tensor option -> Tensor option -> Outputs =
        checkSquare "kTrainTrain" kTrainTrain
        let n = kTrainTrain.Shape[0]
        checkTargets "yTrain" n yTrain
        checkLearningRate learningRate
        momentum |> Option.iter (fun mu ->
            if not (Double.IsFinite mu) || mu < 0.0 then invalidArg "momentum" $"must be finite and ≥ 0, got {Show.g mu}")
        let k = yTrain.Shape[1]
        let kdd = symmetrize kTrainTrain
        fun (t: float[]) (fxTrain0: Tensor option) (fxTest0: Tensor option) (kTestTrain: Tensor option) ->
            checkTimes t
            for i in 1 .. t.Length - 1 do
                if t[i] < t[i - 1] then invalidArg "t" ("times must be non-decreasing, got t[" + string i + "] = " + (Show.g (t[i])) + " after " + (Show.g (t[i - 1])))
            let f0 = initialOutputs "fxTrain0" n k fxTrain0
            let test = testSide n k kTestTrain fxTest0 |> Option.map (fun (ktd, ft0) -> ofTensor ktd, ft0)
            PredictGradientDescent.atTimes loss kdd yTrain learningRate momentum t f0 test
