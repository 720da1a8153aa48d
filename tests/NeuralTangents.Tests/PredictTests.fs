/// Examples for Predict (neural_tangents' nt.predict). Expected values come from closed forms coded here with
/// MathNet's explicit inverse, a Taylor matrix exponential and fixed-step RK4 integrations, never from Predict.
/// Tolerance rule: relative Frobenius error (TestUtil.relErr); kernels are X·Xᵀ/d + ridge with condition numbers
/// below ~1e3, so closed-form comparisons carry round-off of order κ·1e-16 ≲ 1e-12 and use 1e-9.
module NeuralTangents.Tests.PredictTests

open System
open MathNet.Numerics.LinearAlgebra
open Expecto
open NeuralTangents
open NeuralTangents.Tests.TestUtil

type M = Matrix<float>

let toM (t: Tensor) : M = Matrix<float>.Build.Dense(t.Shape[0], t.Shape[1], fun i j -> t.Data[i * t.Shape[1] + j])
let ofM (m: M) : Tensor = Tensor.create [| m.RowCount; m.ColumnCount |] (m.ToRowMajorArray())
let flat (m: M) = m.ToRowMajorArray()
let eye (n: int) : M = Matrix<float>.Build.DenseIdentity n

/// Slice t of a (T, R, C) tensor as a matrix.
let sliceT (t: Tensor) (i: int) : M =
    let r, c = t.Shape[1], t.Shape[2]
    Matrix<float>.Build.Dense(r, c, fun a b -> t.Data[(i * r + a) * c + b])

/// A joint PSD Gram matrix over N train + M test points: X·Xᵀ/d + ridge·I, split into (train–train, test–train,
/// test–test) blocks.
let gram (seed: int) (n: int) (m: int) (d: int) (ridge: float) =
    let x = toM (randomTensor seed (n + m) d)
    let g = x * x.Transpose() / float d + ridge * eye (n + m)
    g.SubMatrix(0, n, 0, n), g.SubMatrix(n, m, 0, n), g.SubMatrix(n, m, n, m)

/// e^{A} by scaling and squaring of a 30-term Taylor series (‖A/2^j‖ ≤ 1/2): independent of eigendecompositions.
let expm (a: M) : M =
    let norm = a.FrobeniusNorm()
    let j = if norm <= 0.5 then 0 else int (ceil (Math.Log2(norm / 0.5)))
    let b = a / (2.0 ** float j)
    let mutable term = eye a.RowCount
    let mutable sum = eye a.RowCount
    for k in 1 .. 30 do
        term <- term * b / float k
        sum <- sum + term
    for _ in 1 .. j do sum <- sum * sum
    sum

/// Classic fixed-step RK4 for dy/dt = f(y) from 0 to tEnd.
let rk4 (f: M -> M) (y0: M) (tEnd: float) (steps: int) : M =
    let h = tEnd / float steps
    let mutable y = y0
    for _ in 1 .. steps do
        let k1 = f y
        let k2 = f (y + h / 2.0 * k1)
        let k3 = f (y + h / 2.0 * k2)
        let k4 = f (y + h * k3)
        y <- y + h / 6.0 * (k1 + 2.0 * k2 + 2.0 * k3 + k4)
    y

let check (what: string) (tol: float) (expected: M) (actual: Tensor) = assertClose what tol (flat expected) actual.Data
let checkM (what: string) (tol: float) (expected: M) (actual: M) = assertClose what tol (flat expected) (flat actual)

let n, m, d, k = 12, 5, 20, 3

// Train–train blocks carry a ridge of 0.05 so that condition numbers stay ≲ 1e3.
let kdd, ktd, ktt = gram 1 n m d 0.05
let tdd, ttd, ttt = gram 2 n m d 0.05
let y = toM (randomTensor 3 n k)

// ---- gradient_descent_mse (one linearised network) -------------------------------------------------------

let f0 = toM (randomTensor 4 n k) * 0.5
let ft0 = toM (randomTensor 5 m k) * 0.5
let lr = 2.0

/// RK4 of the MSE gradient flow of the linearised network, train and test stacked:
/// df/dt = −(η/NK)·Θ·(f − y), df*/dt = −(η/NK)·Θ*·(f − y).
let mseFlow (theta: M) (thetaTd: M) (t: float) =
    let c = lr / float (n * k)
    let stackFlow (s: M) =
        let r = s.SubMatrix(0, n, 0, k) - y
        (-c * theta * r).Stack(-c * thetaTd * r)
    rk4 stackFlow (f0.Stack ft0) t 4000

// ---- bad inputs ----------------------------------------------------------------------------------------------

let private throwsArg (param: string) (f: unit -> unit) =
    let ex = throwsExactly<ArgumentException> (fun () -> f ())
    Expect.equal ex.ParamName param "ex.ParamName"

// ---- gradient_descent_mse_ensemble through KernelFn.compute -------------------------------------------------

let net = Stax.serial [ Stax.dense 64 1.5 (Some 0.1); Stax.relu; Stax.dense 1 1.5 (Some 0.1) ]
let xTrain = randomTensor 7 n 4
let xTest = randomTensor 8 m 4
let kernelFn = KernelFn.compute net
let both (x1: Tensor) (x2: Tensor option) =
    let kr = KernelFn.compute net x1 x2 Both
    toM kr.Nngp, toM kr.Ntk.Value
let eK, eT = both xTrain None
let eKtd, eTtd = both xTest (Some xTrain)
let eKtt, _ = both xTest None
let eta = 0.7

/// Ensemble mean and covariances at time t coded from arXiv:1902.06720 eq. 16 with a Taylor matrix exponential.
let ensembleExpected (t: float) =
    let s = eta * t / float (n * k)
    let uOf (a: M) (s: float) = a.Inverse() * (eye n - expm (-s * a)) // A⁻¹(I − e^{−As})
    let uK2 = uOf eK (2.0 * s)
    let uT = uOf eT s
    let nngpMean = eKtd * uOf eK s * y
    let nngpCov = eKtt - eKtd * uK2 * eKtd.Transpose()
    let ntkMean = eTtd * uT * y
    let ntkCov =
        eKtt + eTtd * uT * eK * uT * eTtd.Transpose() - eTtd * uT * eKtd.Transpose() - eKtd * uT * eTtd.Transpose()
    nngpMean, nngpCov, ntkMean, ntkCov

[<Tests>]
let tests =
    testList "PredictTests" [
        testCase "gpInference NNGP mean and covariance equal the closed form with the explicit inverse" <| fun () ->
            let diagReg = 0.1
            let lambda = diagReg * kdd.Trace() / float n // relative: diag_reg · mean diagonal
            let inv = (kdd + lambda * eye n).Inverse()
            let predict = Predict.gpInference (KernelMatrices.ofNngp (ofM kdd)) (ofM y) diagReg false [ PredictGet.Nngp ]
            let out = (predict (Some(KernelMatrices.ofNngp (ofM ktd))) (Some(KernelMatrices.ofNngp (ofM ktt)))).[PredictGet.Nngp]
            check "mean" 1e-9 (ktd * inv * y) out.Mean
            check "covariance" 1e-9 (ktt - ktd * inv * ktd.Transpose()) out.Covariance.Value

        testCase "gpInference NTK covariance is the ensemble formula of arXiv 1902.06720" <| fun () ->
            let diagReg = 0.01
            let ti = (tdd + diagReg * eye n).Inverse() // absolute ridge
            let kernels = KernelMatrices.ofBoth (ofM kdd) (ofM tdd)
            let predict = Predict.gpInference kernels (ofM y) diagReg true [ PredictGet.Ntk ]
            let out = (predict (Some(KernelMatrices.ofBoth (ofM ktd) (ofM ttd))) (Some(KernelMatrices.ofNngp (ofM ktt)))).[PredictGet.Ntk]
            // Σ = K** + Θ*·Θ⁻¹·K·Θ⁻¹·Θ*ᵀ − Θ*·Θ⁻¹·K*ᵀ − K*·Θ⁻¹·Θ*ᵀ
            let expectedCov =
                ktt + ttd * ti * kdd * ti * ttd.Transpose() - ttd * ti * ktd.Transpose() - ktd * ti * ttd.Transpose()
            check "mean" 1e-9 (ttd * ti * y) out.Mean
            check "covariance" 1e-9 expectedCov out.Covariance.Value

        testCase "large posteriors (the fast matrix-product path) equal the explicit formulas" <| fun () ->
            // N = 160, M = 120: every product is above the size at which Predict leaves MathNet for Linalg's GEMM.
            // Condition numbers ~1e2 (ridge 0.05 on X·Xᵀ/d): the two routes agree to ~κ·1e-15.
            let nL, mL = 160, 120
            let kdL, ktdL, kttL = gram 21 nL mL 40 0.05
            let tdL, ttdL, _ = gram 22 nL mL 40 0.05
            let yL = toM (randomTensor 23 nL 2)
            let ki, ti = kdL.Inverse(), tdL.Inverse()
            let predict = Predict.gpInference (KernelMatrices.ofBoth (ofM kdL) (ofM tdL)) (ofM yL) 0.0 false [ PredictGet.Nngp; PredictGet.Ntk ]
            let out = predict (Some(KernelMatrices.ofBoth (ofM ktdL) (ofM ttdL))) (Some(KernelMatrices.ofNngp (ofM kttL)))
            check "nngp mean" 1e-9 (ktdL * ki * yL) out[PredictGet.Nngp].Mean
            check "nngp covariance" 1e-9 (kttL - ktdL * ki * ktdL.Transpose()) out[PredictGet.Nngp].Covariance.Value
            let expectedCov =
                kttL + ttdL * ti * kdL * ti * ttdL.Transpose() - ttdL * ti * ktdL.Transpose() - ktdL * ti * ttdL.Transpose()
            check "ntk covariance" 1e-9 expectedCov out[PredictGet.Ntk].Covariance.Value

        testCase "gpInference NTKGP is GP regression with the NTK as prior" <| fun () ->
            let ti = tdd.Inverse()
            let kernels = KernelMatrices.ofNtk (ofM tdd)
            let predict = Predict.gpInference kernels (ofM y) 0.0 false [ PredictGet.NtkGp ]
            let out = (predict (Some(KernelMatrices.ofNtk (ofM ttd))) (Some(KernelMatrices.ofNtk (ofM ttt)))).[PredictGet.NtkGp]
            check "mean" 1e-9 (ttd * ti * y) out.Mean
            check "covariance" 1e-9 (ttt - ttd * ti * ttd.Transpose()) out.Covariance.Value

        testCase "gpInference on the training set returns the targets with zero covariance" <| fun () ->
            let predict = Predict.gpInference (KernelMatrices.ofBoth (ofM kdd) (ofM tdd)) (ofM y) 0.0 false [ PredictGet.Nngp; PredictGet.Ntk ]
            let out = predict None (Some(KernelMatrices.ofNngp (ofM kdd)))
            for g in [ PredictGet.Nngp; PredictGet.Ntk ] do
                Expect.isTrue (out[g].Mean.Data = flat y) "out[g].Mean.Data = flat y"
                Expect.isTrue (out[g].Covariance.Value.Data |> Array.forall ((=) 0.0)) "out[g].Covariance.Value.Data |> Array.forall ((=) 0.0)"
                Expect.isTrue (out[g].Covariance.Value.Shape = [| n; n |]) "out[g].Covariance.Value.Shape = [| n; n |]"

        testCase "relative diag_reg equals the absolute ridge diag_reg times the mean diagonal" <| fun () ->
            let rel = 0.3
            let absolute = rel * (kdd.Diagonal().Sum() / float n)
            let p1 = Predict.gpInference (KernelMatrices.ofNngp (ofM kdd)) (ofM y) rel false [ PredictGet.Nngp ]
            let p2 = Predict.gpInference (KernelMatrices.ofNngp (ofM kdd)) (ofM y) absolute true [ PredictGet.Nngp ]
            let test = Some(KernelMatrices.ofNngp (ofM ktd))
            let a = (p1 test None).[PredictGet.Nngp].Mean
            let b = (p2 test None).[PredictGet.Nngp].Mean
            assertClose "relative vs absolute" 1e-12 a.Data b.Data
            // and a different ridge gives a different answer (the test can fail)
            let p3 = Predict.gpInference (KernelMatrices.ofNngp (ofM kdd)) (ofM y) rel true [ PredictGet.Nngp ]
            Expect.isGreaterThan (relErr a.Data (p3 test None).[PredictGet.Nngp].Mean.Data) 1e-3 "relErr a.Data (p3 test None).[PredictGet.Nngp].Mean.Data"

        testCase "gradientDescentMse at finite times equals an RK4 integration of the gradient flow" <| fun () ->
            let predict = Predict.gradientDescentMse (ofM tdd) (ofM y) lr 0.0 false
            let times = [| 0.5; 7.0; 40.0 |]
            let out = predict (Some times) (Some(ofM f0)) (Some(ofM ft0)) (Some(ofM ttd))
            Expect.isTrue (out.Train.Shape = [| 3; n; k |]) (sprintf "%A" out.Train.Shape)
            Expect.isTrue (out.Test.Value.Shape = [| 3; m; k |]) (sprintf "%A" out.Test.Value.Shape)
            times |> Array.iteri (fun i t ->
                // RK4 global error ~ (h·η·λmax/NK)⁴ with h = t/4000: below 1e-12 here; 1e-9 leaves round-off margin.
                let s = mseFlow tdd ttd t
                checkM (sprintf "train t=%g" t) 1e-9 (s.SubMatrix(0, n, 0, k)) (sliceT out.Train i)
                checkM (sprintf "test t=%g" t) 1e-9 (s.SubMatrix(n, m, 0, k)) (sliceT out.Test.Value i))

        testCase "gradientDescentMse at t = 0 returns the initial outputs" <| fun () ->
            let predict = Predict.gradientDescentMse (ofM tdd) (ofM y) lr 0.0 false
            let out = predict (Some [| 0.0 |]) (Some(ofM f0)) (Some(ofM ft0)) (Some(ofM ttd))
            checkM "train" 1e-15 f0 (sliceT out.Train 0)
            checkM "test" 1e-15 ft0 (sliceT out.Test.Value 0)

        testCase "gradientDescentMse at t = None is the converged solution and large t approaches it" <| fun () ->
            let predict = Predict.gradientDescentMse (ofM tdd) (ofM y) lr 0.0 false
            let inf = predict None (Some(ofM f0)) (Some(ofM ft0)) (Some(ofM ttd))
            check "train = y" 1e-15 y inf.Train
            check "test" 1e-9 (ft0 + ttd * tdd.Inverse() * (y - f0)) inf.Test.Value
            // e^{−ηλ_min t/NK} with λ_min ≥ 0.05, η = 2, NK = 36 at t = 1e5: ~e^{−278}, far below round-off.
            let big = predict (Some [| 1e5 |]) (Some(ofM f0)) (Some(ofM ft0)) (Some(ofM ttd))
            assertClose "train at large t" 1e-9 inf.Train.Data big.Train.Data
            assertClose "test at large t" 1e-9 inf.Test.Value.Data big.Test.Value.Data

        testCase "gradientDescentMse accepts a singular PSD kernel at finite times without NaN" <| fun () ->
            // X·Xᵀ with 3 features and 12 points has rank 3.
            let x = toM (randomTensor 6 n 3)
            let sing = x * x.Transpose()
            let predict = Predict.gradientDescentMse (ofM sing) (ofM y) lr 0.0 false
            let out = predict (Some [| 1.0; 10.0 |]) (Some(ofM f0)) (Some(ofM ft0)) (Some(ofM (ttd.SubMatrix(0, m, 0, n))))
            Expect.isTrue (Tensor.isFinite out.Train && Tensor.isFinite out.Test.Value) "Tensor.isFinite out.Train && Tensor.isFinite out.Test.Value"
            let s = mseFlow sing ttd 10.0
            checkM "train t=10" 1e-8 (s.SubMatrix(0, n, 0, k)) (sliceT out.Train 1)
            checkM "test t=10" 1e-8 (s.SubMatrix(n, m, 0, k)) (sliceT out.Test.Value 1)
            // t = None needs a solve: a clear error suggesting diag_reg, not NaN.
            let ex = throwsExactly<NeuralTangentsException> (fun () -> predict None None None (Some(ofM ttd)) |> ignore)
            Expect.stringContains ex.Message "diag_reg" "ex.Message"
            // with diag_reg it works
            let reg = Predict.gradientDescentMse (ofM sing) (ofM y) lr 1e-3 false
            Expect.isTrue (Tensor.isFinite (reg None None None (Some(ofM ttd))).Test.Value) "Tensor.isFinite (reg None None None (Some(ofM ttd))).Test.Value"

        // ---- gradient_descent (ODE) ---------------------------------------------------------------------------------

        testCase "gradientDescent on MSE equals gradientDescentMse" <| fun () ->
            let times = [| 0.0; 3.0; 25.0; 60.0 |]
            let ode = Predict.gradientDescent Loss.mse (ofM tdd) (ofM y) lr None
            let closed = Predict.gradientDescentMse (ofM tdd) (ofM y) lr 0.0 false
            let a = ode times (Some(ofM f0)) (Some(ofM ft0)) (Some(ofM ttd))
            let b = closed (Some times) (Some(ofM f0)) (Some(ofM ft0)) (Some(ofM ttd))
            // Dormand–Prince at rtol = atol = 1e-10 keeps the global error ≲ 1e-9 over this horizon.
            assertClose "train" 1e-8 b.Train.Data a.Train.Data
            assertClose "test" 1e-8 b.Test.Value.Data a.Test.Value.Data

        testCase "gradientDescent with momentum equals RK4 of the second-order flow" <| fun () ->
            let mu = 0.9
            let t = 30.0
            let ode = Predict.gradientDescent Loss.mse (ofM tdd) (ofM y) lr (Some mu)
            let a = ode [| t |] (Some(ofM f0)) None None
            // τ = √η·t; f'' = −Θ·(f − y)/NK + (μ − 1)/√η·f', state [f; q].
            let sq = sqrt lr
            let flow (s: M) =
                let f = s.SubMatrix(0, n, 0, k)
                let q = s.SubMatrix(n, n, 0, k)
                q.Stack(-(tdd * (f - y)) / float (n * k) + (mu - 1.0) / sq * q)
            let s = rk4 flow (f0.Stack(Matrix<float>.Build.Dense(n, k))) (sq * t) 4000
            checkM "train" 1e-8 (s.SubMatrix(0, n, 0, k)) (sliceT a.Train 0)

        testCase "gradientDescent on softmax cross-entropy decreases the loss along t" <| fun () ->
            let labels = Array.init n (fun i -> i % k)
            let yOneHot = Tensor.create [| n; k |] (Array.init (n * k) (fun j -> if labels[j / k] = j % k then 1.0 else 0.0))
            let times = [| 0.0; 10.0; 50.0; 200.0; 1000.0 |]
            let ode = Predict.gradientDescent Loss.softmaxCrossEntropy (ofM tdd) yOneHot 10.0 None
            let out = ode times (Some(ofM f0)) None None
            let losses = Array.init times.Length (fun i -> Loss.softmaxCrossEntropy.Value (ofM (sliceT out.Train i)) yOneHot)
            for i in 1 .. losses.Length - 1 do
                Expect.isLessThan (losses[i]) (losses[i - 1]) (sprintf "loss at t=%g: %A" times[i] losses)
            // and the gradient is the one of the stated loss: central differences on one entry
            let fx = ofM f0
            let g = Loss.softmaxCrossEntropy.Gradient fx yOneHot
            let h = 1e-5
            let bump (delta: float) = Tensor.create fx.Shape (fx.Data |> Array.mapi (fun j v -> if j = 4 then v + delta else v))
            let fd = (Loss.softmaxCrossEntropy.Value (bump h) yOneHot - Loss.softmaxCrossEntropy.Value (bump -h) yOneHot) / (2.0 * h)
            within 1e-8 fd (g.Data[4]) "g.Data[4]"

        // ---- max_learning_rate ---------------------------------------------------------------------------------------

        testCase "maxLearningRate is 2(1 + momentum)·size / λmax" <| fun () ->
            let diag = Tensor.ofArray2D (array2D [ [ 1.0; 0.0; 0.0 ]; [ 0.0; 5.0; 0.0 ]; [ 0.0; 0.0; 2.0 ] ])
            within 1e-12 (2.0 * 3.0 / 5.0) (Predict.maxLearningRate diag None 0.0 0.0) "Predict.maxLearningRate diag None 0.0 0.0"
            within 1e-12 (2.0 * 1.9 * 12.0 / 5.0) (Predict.maxLearningRate diag (Some 12) 0.9 0.0) "Predict.maxLearningRate diag (Some 12) 0.9 0.0"
            // [[2, 1], [1, 2]] has eigenvalues 1 and 3.
            let pair = Tensor.ofArray2D (array2D [ [ 2.0; 1.0 ]; [ 1.0; 2.0 ] ])
            within 1e-12 (4.0 / (3.0 + 1e-12)) (Predict.maxLearningRate pair None 0.0 1e-12) "Predict.maxLearningRate pair None 0.0 1e-12"

        testCase "bad inputs raise errors naming the argument" <| fun () ->
            throwsArg "yTrain" (fun () -> Predict.gradientDescentMse (ofM tdd) (randomTensor 1 (n + 1) k) lr 0.0 false |> ignore)
            throwsArg "learningRate" (fun () -> Predict.gradientDescentMse (ofM tdd) (ofM y) -1.0 0.0 false |> ignore)
            throwsArg "learningRate" (fun () -> Predict.gradientDescent Loss.mse (ofM tdd) (ofM y) nan None |> ignore)
            throwsArg "diagReg" (fun () -> Predict.gradientDescentMse (ofM tdd) (ofM y) lr -0.1 false |> ignore)
            throwsArg "kTrainTrain" (fun () -> Predict.gradientDescentMse (randomTensor 1 n (n + 1)) (ofM y) lr 0.0 false |> ignore)
            let predict = Predict.gradientDescentMse (ofM tdd) (ofM y) lr 0.0 false
            throwsArg "t" (fun () -> predict (Some [| 1.0; -2.0 |]) None None None |> ignore)
            throwsArg "t" (fun () -> predict (Some [| infinity |]) None None None |> ignore)
            throwsArg "kTestTrain" (fun () -> predict None None None (Some(randomTensor 1 m (n - 1))) |> ignore)
            throwsArg "kTestTrain" (fun () -> predict None None (Some(ofM ft0)) None |> ignore)
            throwsArg "fxTrain0" (fun () -> predict None (Some(randomTensor 1 n (k + 1))) None None |> ignore)
            let gp = Predict.gpInference (KernelMatrices.ofNngp (ofM kdd)) (ofM y) 0.0 false [ PredictGet.Nngp ]
            throwsArg "kTestTrain" (fun () -> gp (Some(KernelMatrices.ofNtk (ofM ttd))) None |> ignore)
            throwsArg "kTestTest" (fun () -> gp (Some(KernelMatrices.ofNngp (ofM ktd))) (Some(KernelMatrices.ofNngp (ofM kdd))) |> ignore)
            throwsArg "kTrainTrain" (fun () -> Predict.gpInference (KernelMatrices.ofNngp (ofM kdd)) (ofM y) 0.0 false [ PredictGet.Ntk ] |> ignore)

        testCase "an indefinite train kernel raises NeuralTangentsException suggesting diag_reg, never NaN" <| fun () ->
            // K₀₀ − 50 < 0: a negative diagonal entry makes the matrix indefinite.
            let indefinite = kdd + Matrix<float>.Build.DenseOfDiagonalArray(Array.init n (fun i -> if i = 0 then -50.0 else 0.0))
            for t in [ None; Some [| 1.0 |] ] do
                let predict = Predict.gradientDescentMse (ofM indefinite) (ofM y) lr 0.0 false
                let ex = throwsExactly<NeuralTangentsException> (fun () -> predict t None None (Some(ofM ttd)) |> ignore)
                Expect.stringContains ex.Message "diag_reg" "ex.Message"
            let gp = Predict.gpInference (KernelMatrices.ofNngp (ofM indefinite)) (ofM y) 0.0 false [ PredictGet.Nngp ]
            let ex = throwsExactly<NeuralTangentsException> (fun () -> gp (Some(KernelMatrices.ofNngp (ofM ktd))) None |> ignore)
            Expect.stringContains ex.Message "diag_reg" "ex.Message"

        // The ReLU kernels on 12 points have condition numbers ~1e2–1e4; closed forms then agree to ~κ·1e-15, so 1e-8.
        testCase "ensemble at finite times equals the closed form of arXiv 1902.06720" <| fun () ->
            let predict = Predict.gradientDescentMseEnsemble kernelFn xTrain (ofM y) eta 0.0 false
            let times = [| 0.0; 20.0; 300.0 |]
            let out = predict (Some times) (Some xTest) Both true
            times |> Array.iteri (fun i t ->
                let nm, nc, tm, tc = ensembleExpected t
                checkM (sprintf "nngp mean t=%g" t) 1e-8 nm (sliceT out[PredictGet.Nngp].Mean i)
                checkM (sprintf "nngp cov t=%g" t) 1e-8 nc (sliceT out[PredictGet.Nngp].Covariance.Value i)
                checkM (sprintf "ntk mean t=%g" t) 1e-8 tm (sliceT out[PredictGet.Ntk].Mean i)
                checkM (sprintf "ntk cov t=%g" t) 1e-8 tc (sliceT out[PredictGet.Ntk].Covariance.Value i))
            // t = 0: the prior, mean 0 and covariance K**
            Expect.isTrue (sliceT out[PredictGet.Ntk].Mean 0 |> flat |> Array.forall (fun v -> abs v < 1e-14)) "sliceT out[PredictGet.Ntk].Mean 0 |> flat |> Array.forall (fun v -> abs v < 1e-14)"
            checkM "ntk cov at t=0 is K**" 1e-12 eKtt (sliceT out[PredictGet.Ntk].Covariance.Value 0)

        testCase "ensemble at t = None equals GP inference and large t approaches it" <| fun () ->
            let predict = Predict.gradientDescentMseEnsemble kernelFn xTrain (ofM y) eta 0.0 false
            let inf = predict None (Some xTest) Both true
            let ki, ti = eK.Inverse(), eT.Inverse()
            check "nngp mean" 1e-8 (eKtd * ki * y) inf[PredictGet.Nngp].Mean
            check "nngp cov" 1e-8 (eKtt - eKtd * ki * eKtd.Transpose()) inf[PredictGet.Nngp].Covariance.Value
            check "ntk mean" 1e-8 (eTtd * ti * y) inf[PredictGet.Ntk].Mean
            let tc = eKtt + eTtd * ti * eK * ti * eTtd.Transpose() - eTtd * ti * eKtd.Transpose() - eKtd * ti * eTtd.Transpose()
            check "ntk cov" 1e-8 tc inf[PredictGet.Ntk].Covariance.Value
            // e^{−η λ_min t/NK} must be negligible: pick t from the smallest eigenvalue of each kernel.
            let lmin (a: M) = a.Evd().EigenValues |> Seq.map (fun c -> c.Real) |> Seq.min
            let tBig = 60.0 * float (n * k) / (eta * min (lmin eK) (lmin eT)) // e^{−60} ≈ 1e-26
            let big = predict (Some [| tBig |]) (Some xTest) Both true
            for g in [ PredictGet.Nngp; PredictGet.Ntk ] do
                assertClose (sprintf "%A mean at large t" g) 1e-7 inf[g].Mean.Data big[g].Mean.Data
                assertClose (sprintf "%A cov at large t" g) 1e-7 inf[g].Covariance.Value.Data big[g].Covariance.Value.Data

        testCase "ensemble on the training set follows (I − e^{−Θs})·y and converges to y" <| fun () ->
            let predict = Predict.gradientDescentMseEnsemble kernelFn xTrain (ofM y) eta 0.0 false
            let t = 50.0
            let out = predict (Some [| t |]) None Get.Ntk true
            let s = eta * t / float (n * k)
            checkM "train mean" 1e-9 ((eye n - expm (-s * eT)) * y) (sliceT out[PredictGet.Ntk].Mean 0)
            let e = expm (-s * eT)
            checkM "train ntk cov e^{−Θs}·K·e^{−Θs}" 1e-9 (e * eK * e) (sliceT out[PredictGet.Ntk].Covariance.Value 0)
            let inf = predict None None Get.Ntk true
            check "t = None mean is y" 0.0 y inf[PredictGet.Ntk].Mean
            Expect.isTrue (inf[PredictGet.Ntk].Covariance.Value.Data |> Array.forall ((=) 0.0)) "inf[PredictGet.Ntk].Covariance.Value.Data |> Array.forall ((=) 0.0)"

        testCase "posterior covariances are exactly symmetric, cov[i, j] = cov[j, i] bit for bit" <| fun () ->
            // In exact arithmetic K** − K*·A⁻¹·K*ᵀ (and the NTK ensemble's covariance) is symmetric; in float64 the
            // products and solves are not, so Predict must symmetrise. Checked for gpInference (NNGP, NTK, NTKGP) and
            // gradientDescentMseEnsemble at t = ∞ and at finite times (every (M, M) slice of the (T, M, M) result).
            let symmetric (what: string) (c: Tensor) =
                let mm = c.Shape[c.Rank - 1]
                for s in 0 .. c.Length / (mm * mm) - 1 do
                    for i in 0 .. mm - 1 do
                        for j in i + 1 .. mm - 1 do
                            let a, b = c.Data[(s * mm + i) * mm + j], c.Data[(s * mm + j) * mm + i]
                            if BitConverter.DoubleToInt64Bits a <> BitConverter.DoubleToInt64Bits b then
                                failtestf "%s: slice %d, [%d, %d] = %.17g but [%d, %d] = %.17g" what s i j a j i b
            let gp =
                Predict.gpInference (KernelMatrices.ofBoth (ofM kdd) (ofM tdd)) (ofM y) 0.0 false
                    [ PredictGet.Nngp; PredictGet.Ntk; PredictGet.NtkGp ]
            let posts = gp (Some(KernelMatrices.ofBoth (ofM ktd) (ofM ttd))) (Some(KernelMatrices.ofBoth (ofM ktt) (ofM ttt)))
            Expect.equal posts.Count 3 "three posteriors"
            for KeyValue(g, post) in posts do
                symmetric (sprintf "gpInference %A" g) post.Covariance.Value
            let ensemble = Predict.gradientDescentMseEnsemble kernelFn xTrain (ofM y) eta 0.0 false
            for t in [ None; Some [| 0.0; 0.5; 7.0; 1e3 |] ] do
                for KeyValue(g, post) in ensemble t (Some xTest) Both true do
                    symmetric (sprintf "gradientDescentMseEnsemble %A at %A" g t) post.Covariance.Value
    ]
