/// Monte Carlo of finite networks for every activation added with issue #10 (the older ones are in
/// MonteCarloTests): Dense(1024) → φ → Dense, M = 400 networks, each entry within 5·SE of the analytic kernel (the
/// tolerance and its false-failure bound are derived in MonteCarloTests; one hidden layer has no finite-width bias).
/// The inputs repeat a row, so the networks also see θ = 0 off the diagonal — where neural_tangents'
/// RectifiedMonomial gives NaN — and the diagonal-batch = false covariances are checked against the same
/// finite-network estimates, which is where neural_tangents' Sign sets 1.
module NeuralTangents.Tests.ActivationMonteCarloTests

open System
open Expecto
open NeuralTangents
open NeuralTangents.Tests.TestUtil
open NeuralTangents.Tests.MonteCarloTests

/// 4 inputs of dimension 6, the last a copy of the first (θ = 0 between inputs 0 and 3).
let private x =
    let r = randomTensor 2024 4 6
    Tensor.create [| 4; 6 |] (Array.init 24 (fun k -> if k >= 18 then r.Data[k - 18] else r.Data[k]))

/// Rows scaled to ‖x‖² = 6 (dimension 6), so that Dense(W_std = 1, no bias) gives unit-variance pre-activations,
/// the setting in which neural_tangents' Hermite rule is the exact kernel.
let private xUnit =
    let d = x.Data |> Array.copy
    for i in 0 .. 3 do
        let n = sqrt (Array.sumBy (fun v -> v * v) d[i * 6 .. i * 6 + 5] / 6.0)
        for k in 0 .. 5 do d[i * 6 + k] <- d[i * 6 + k] / n
    Tensor.create [| 4; 6 |] d

let private width, m = 1024, 400

/// The erf NNGP map written over dual numbers (Williams 1997): its ε part is σ̇ for the custom Elementwise.
let private erfNngp (c: Dual) (q1: float) (q2: float) =
    2.0 / Math.PI * Dual.Asin(2.0 * c / Math.Sqrt((1.0 + 2.0 * q1) * (1.0 + 2.0 * q2)))

[<Tests>]
let tests =
    testList "ActivationMonteCarloTests" [
        testCase "Exp(0.8, 0.5)" <| fun () -> check "Exp(0.8, 0.5)" (oneHidden (Stax.exp 0.8 0.5) width) x m width 0
        testCase "Gaussian(1.2, -0.7)" <| fun () -> check "Gaussian(1.2, -0.7)" (oneHidden (Stax.gaussian 1.2 -0.7) width) x m width 0
        testCase "Rbf(0.6)" <| fun () -> check "Rbf(0.6)" (oneHidden (Stax.rbf 0.6) width) x m width 0
        testCase "Sign" <| fun () -> check "Sign" (oneHidden Stax.sign width) x m width 0
        testCase "Gabor" <| fun () -> check "Gabor" (oneHidden Stax.gabor width) x m width 0
        testCase "Polynomial [0.3; -0.5; 0.8; 0.2]" <| fun () ->
            check "Polynomial" (oneHidden (Stax.polynomial [ 0.3; -0.5; 0.8; 0.2 ]) width) x m width 0
        testCase "RectifiedMonomial 0, 1, 2 (θ = 0 between inputs 0 and 3)" <| fun () ->
            for n in 0 .. 2 do
                check (sprintf "RectifiedMonomial(%d)" n) (oneHidden (Stax.rectifiedMonomial n) width) x m width 0
        testCase "Hermite 1, 2, 3 on unit-variance pre-activations" <| fun () ->
            for n in 1 .. 3 do
                let build readout = Stax.serial [ Stax.dense width 1.0 None; Stax.hermite n; Stax.dense readout 1.1 (Some 0.2) ]
                check (sprintf "Hermite(%d)" n) build xUnit m width 0
        // deg 100: at these inputs' largest variance (q ≈ 4.6) the 25-node rule is ~1% off in tanh's σ̇ = E[sech⁴ u
        // sech⁴ v] (a peak narrower than the nodes' spacing; measured in ActivationNumericalTests), which 400
        // networks resolve (z = 5.8) — the quadrature's error, not the finite network's.
        testCase "ElementwiseNumerical tanh, swish, mish (deg 100)" <| fun () ->
            for fn in [ "tanh"; "swish"; "mish" ] do
                check ("ElementwiseNumerical " + fn) (oneHidden (Stax.elementwiseNumerical fn 100 None) width) x m width 0
        testCase "custom Elementwise: erf with its NNGP map over dual numbers" <| fun () ->
            let layer = Stax.elementwiseDual "erf" (Some MathNet.Numerics.SpecialFunctions.Erf)
                            (Some(fun u -> 2.0 / Math.Sqrt Math.PI * Math.Exp(-u * u))) erfNngp
            check "Elementwise(erf, dual)" (oneHidden layer width) x m width 0
    ]
