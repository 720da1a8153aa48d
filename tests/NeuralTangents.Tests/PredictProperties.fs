/// Laws of Predict on random PSD kernels (X·Xᵀ/d + ridge, seeded from FsCheck's integers).
module NeuralTangents.Tests.PredictProperties

open Expecto
open FsCheck
open FsCheck.FSharp
open MathNet.Numerics.LinearAlgebra
open NeuralTangents
open NeuralTangents.Tests.TestUtil
open NeuralTangents.Tests.PredictTests

/// Sizes (N, M, K) in small ranges and a seed.
type Case = { N: int; M: int; K: int; Seed: int }

type Arbs =
    static member Case() =
        gen {
            let! n = Gen.choose (2, 9)
            let! m = Gen.choose (1, 5)
            let! k = Gen.choose (1, 3)
            let! seed = Gen.choose (0, 100000)
            return { N = n; M = m; K = k; Seed = seed }
        }
        |> Arb.fromGen

let private setup (c: Case) =
    let kdd, ktd, ktt = gram c.Seed c.N c.M (c.N + c.M + 2) 0.1
    let tdd, ttd, ttt = gram (c.Seed + 1) c.N c.M (c.N + c.M + 2) 0.1
    let y = toM (randomTensor (c.Seed + 2) c.N c.K)
    kdd, ktd, ktt, tdd, ttd, ttt, y

/// Smallest eigenvalue of a symmetric matrix.
let private minEig (a: Matrix<float>) = a.Evd(Symmetricity.Symmetric).EigenValues |> Seq.map (fun z -> z.Real) |> Seq.min

[<Tests>]
let tests =
    testList "PredictProperties" [
        // Posterior covariances are symmetric and PSD: the smallest eigenvalue may dip below 0 only by round-off,
        // bounded by κ·ε·‖K**‖ ≲ 1e-12 here (κ ≲ 1e2 with ridge 0.1).
        testPropertyWithConfig { fsCheck 40 with arbitrary = [ typeof<Arbs> ] } "posterior covariances are symmetric PSD" <| fun (c: Case) ->
            let kdd, ktd, ktt, tdd, ttd, ttt, y = setup c
            let gp = Predict.gpInference (KernelMatrices.ofBoth (ofM kdd) (ofM tdd)) (ofM y) 0.0 false
                                         [ PredictGet.Nngp; PredictGet.Ntk; PredictGet.NtkGp ]
            let out = gp (Some(KernelMatrices.ofBoth (ofM ktd) (ofM ttd))) (Some(KernelMatrices.ofBoth (ofM ktt) (ofM ttt)))
            out |> Map.forall (fun _ g ->
                let cov = toM g.Covariance.Value
                (cov - cov.Transpose()).FrobeniusNorm() = 0.0 && minEig cov >= -1e-10 * (1.0 + cov.FrobeniusNorm()))

        // The flow is linear in (f₀ − y): targets equal to the initial outputs are a fixed point at every time.
        testPropertyWithConfig { fsCheck 40 with arbitrary = [ typeof<Arbs> ] } "initial outputs equal to the targets stay put" <| fun (c: Case) ->
            let _, _, _, tdd, ttd, _, y = setup c
            let predict = Predict.gradientDescentMse (ofM tdd) (ofM y) 1.0 0.0 false
            let ft0 = randomTensor (c.Seed + 3) c.M c.K
            let out = predict (Some [| 0.5; 5.0; 50.0 |]) (Some(ofM y)) (Some ft0) (Some(ofM ttd))
            let trainOk = [ 0 .. 2 ] |> List.forall (fun i -> relErr (flat y) (flat (sliceT out.Train i)) < 1e-13)
            let testOk = [ 0 .. 2 ] |> List.forall (fun i -> relErr ft0.Data (flat (sliceT out.Test.Value i)) < 1e-13)
            trainOk && testOk

        // GP means are linear in the targets: mean(a·y₁ + y₂) = a·mean(y₁) + mean(y₂), to round-off (κ·ε ≲ 1e-13).
        testPropertyWithConfig { fsCheck 40 with arbitrary = [ typeof<Arbs> ] } "GP means are linear in the targets" <| fun (c: Case) ->
            let kdd, ktd, _, _, _, _, y1 = setup c
            let y2 = toM (randomTensor (c.Seed + 9) c.N c.K)
            let mean (y: Matrix<float>) =
                let gp = Predict.gpInference (KernelMatrices.ofNngp (ofM kdd)) (ofM y) 0.01 false [ PredictGet.Nngp ]
                (gp (Some(KernelMatrices.ofNngp (ofM ktd))) None).[PredictGet.Nngp].Mean.Data
            let a = 1.7
            let lhs = mean (a * y1 + y2)
            let rhs = Array.map2 (fun u v -> a * u + v) (mean y1) (mean y2)
            relErr rhs lhs < 1e-11
    ]
