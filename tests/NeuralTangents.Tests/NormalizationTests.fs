/// LayerNorm (Layers/Normalization.fs): kernel rule against its closed form in every layout, finite layer and its
/// backward pass, Monte Carlo of finite networks, JSON and errors.
module NeuralTangents.Tests.NormalizationTests

open Expecto
open NeuralTangents
open NeuralTangents.Layers
open NeuralTangents.Tests.TestUtil
open NeuralTangents.Tests.McCheck

let private x = randomTensor 41 4 6
let private ln = Stax.layerNorm [ -1 ] 1e-12 0 -1

[<Tests>]
let tests =
    testList "NormalizationTests" [
        testCase "over channels: K[i,j]/√((eps + K[i,i])(eps + K[j,j])) after Dense, nngp and ntk" <| fun () ->
            let eps = 0.3 // large, so that a misplaced eps shows
            let dense = Stax.dense 16 1.4 (Some 0.2)
            let before = KernelFn.compute dense x None Both
            let k = KernelFn.compute (Stax.serial [ dense; Stax.layerNorm [ -1 ] eps 0 -1 ]) x None Both
            for i in 0 .. 3 do
                for j in 0 .. 3 do
                    let d = sqrt ((eps + before.Cov1.Data[i]) * (eps + before.Cov1.Data[j]))
                    within (1e-14 * abs before.Nngp.Data[i * 4 + j]) (before.Nngp.Data[i * 4 + j] / d) k.Nngp.Data[i * 4 + j] "nngp"
                    within (1e-14 * abs before.Ntk.Value.Data[i * 4 + j]) (before.Ntk.Value.Data[i * 4 + j] / d) k.Ntk.Value.Data[i * 4 + j] "ntk"
                within 1e-14 (before.Cov1.Data[i] / (eps + before.Cov1.Data[i])) k.Cov1.Data[i] "cov1"

        testCase "over spatial axes and channels: the variance is averaged over positions, in both spatial layouts" <| fun () ->
            // (N, H, W, C) images; LayerNorm(axis = (1, 2, 3)) divides by √(eps + mean over positions of the variance).
            let x4 = Tensor.create [| 2; 3; 2; 3 |] (normals 7 36)
            let x4b = Tensor.create [| 3; 3; 2; 3 |] (normals 8 54)
            let conv = Stax.conv 8 [ 2; 2 ] None Padding.Same 1.3 (Some 0.1)
            let net = Stax.serial [ conv; Stax.layerNorm [ 1; 2; 3 ] 1e-3 0 -1 ]
            let full = { DiagonalBatch = None; DiagonalSpatial = Some false }
            let before = KernelFn.computeWithLayout full conv x4 (Some x4b) Both
            let k = KernelFn.computeWithLayout full net x4 (Some x4b) Both
            let v1 = Spatial.variances true false before.Cov1 // (2, 6)
            let v2 = Spatial.variances true false before.Cov2.Value // (3, 6)
            let m1 = Array.init 2 (fun n -> 1e-3 + (Array.sub v1 (n * 6) 6 |> Array.average))
            let m2 = Array.init 3 (fun n -> 1e-3 + (Array.sub v2 (n * 6) 6 |> Array.average))
            let expected = before.Nngp.Data |> Array.mapi (fun e v -> let blk = e / 36 in v / sqrt (m1[blk / 3] * m2[blk % 3]))
            assertClose "nngp, full spatial layout (reversed after the 2D conv)" 1e-14 expected k.Nngp.Data
            // The diagonal spatial layout holds the same-position entries of the full one.
            let d = KernelFn.computeWithLayout { DiagonalBatch = None; DiagonalSpatial = Some true } net x4 (Some x4b) Both
            let dBefore = KernelFn.computeWithLayout { DiagonalBatch = None; DiagonalSpatial = Some true } conv x4 (Some x4b) Both
            let expectedDiag = dBefore.Nngp.Data |> Array.mapi (fun e v -> let blk = e / 6 in v / sqrt (m1[blk / 3] * m2[blk % 3]))
            assertClose "nngp, diagonal spatial layout" 1e-14 expectedDiag d.Nngp.Data

        testCase "over the batch axis too: the variance is averaged over each input's samples" <| fun () ->
            let x2 = randomTensor 42 3 6
            let dense = Stax.dense 16 1.4 (Some 0.2)
            let before = KernelFn.compute dense x (Some x2) Both
            let k = KernelFn.compute (Stax.serial [ dense; Stax.layerNorm [ 0; 1 ] 1e-12 0 -1 ]) x (Some x2) Both
            let a1 = 1e-12 + Array.average before.Cov1.Data
            let a2 = 1e-12 + Array.average before.Cov2.Value.Data
            assertClose "nngp" 1e-14 (before.Nngp.Data |> Array.map (fun v -> v / sqrt (a1 * a2))) k.Nngp.Data
            assertClose "cov1" 1e-14 (before.Cov1.Data |> Array.map (fun v -> v / a1)) k.Cov1.Data

        testCase "full batch layout agrees with the diagonal one" <| fun () ->
            let net = Stax.serial [ Stax.dense 16 1.4 (Some 0.2); ln; Stax.relu; Stax.dense 4 1.1 (Some 0.1); ln ]
            let a = KernelFn.computeWithLayout { DiagonalBatch = Some false; DiagonalSpatial = None } net x None Both
            let b = KernelFn.compute net x None Both
            assertClose "nngp" 1e-14 b.Nngp.Data a.Nngp.Data
            assertClose "cov1 diagonal" 1e-14 b.Cov1.Data (Array.init 4 (fun i -> a.Cov1.Data[i * 5]))

        testCase "errors: non-Gaussian input, channel axis not normalised, bad arguments" <| fun () ->
            let e = throwsExactly<NeuralTangentsException> (fun () -> KernelFn.compute (Stax.serial [ Stax.dense 4 1.0 None; Stax.relu; ln ]) x None Both |> ignore)
            Expect.stringContains e.Message "Gaussian" "non-Gaussian input"
            let x3 = Tensor.create [| 2; 3; 4 |] (normals 3 24)
            let e = throwsExactly<NeuralTangentsException> (fun () -> KernelFn.compute (Stax.serial [ Stax.dense 4 1.0 None; Stax.layerNorm [ 1 ] 1e-12 0 -1 ]) x3 None Both |> ignore)
            Expect.stringContains e.Message "channel axis" "channel axis required"
            Expect.throwsT<System.ArgumentException> (fun () -> Stax.layerNorm [] 1e-12 0 -1 |> ignore) "no axis"
            Expect.throwsT<System.ArgumentException> (fun () -> Stax.layerNorm [ -1 ] -1.0 0 -1 |> ignore) "negative eps"

        testCase "finite layer: zero mean, unit variance over the axes; backward matches central differences" <| fun () ->
            let x3 = Tensor.create [| 2; 3; 4 |] (normals 9 24)
            let l = Stax.layerNorm [ 1; 2 ] 1e-6 0 -1
            let y = ApplyFn.apply l Params.none x3
            for n in 0 .. 1 do
                let row = Array.sub y.Data (n * 12) 12
                within 1e-14 0.0 (Array.average row) "mean"
                within 1e-5 1.0 (row |> Array.averageBy (fun v -> v * v)) "variance (eps = 1e-6 off 1)"
            let ct = Tensor.create [| 2; 3; 4 |] (normals 10 24)
            let _, gx = Backward.vjp l Params.none x3 ct
            let h = 1e-6
            for i in 0 .. 23 do
                let shifted (s: float) = let d = Array.copy x3.Data in d[i] <- d[i] + s; Tensor.create x3.Shape d
                let f (t: Tensor) = Array.fold2 (fun acc a b -> acc + a * b) 0.0 (ApplyFn.apply l Params.none t).Data ct.Data
                let fd = (f (shifted h) - f (shifted -h)) / (2.0 * h)
                within 1e-7 fd gx.Data[i] (sprintf "∂x[%d]" i)

        testCase "Monte Carlo: Dense(1024) → LayerNorm → Relu → Dense, nngp and ntk, M = 300" <| fun () ->
            // The finite LayerNorm divides by the empirical channel variance, which is the analytic one up to O(1/√n)
            // fluctuations; its effect on the mean kernel is a bias of O(1/n). The allowance is 4/n of the largest
            // entry (0.4% at n = 1024), as in MonteCarloTests for a non-Gaussian hidden layer; 5·SE here is ≈ 3%.
            let width = 1024
            let net readout = Stax.serial [ Stax.dense width 1.5 (Some 0.1); ln; Stax.relu; Stax.dense readout 1.2 (Some 0.05) ]
            let analytic = KernelFn.compute (net 1) x None Both
            let samples =
                Array.Parallel.init 300 (fun i ->
                    let _, p = InitFn.init (4000 + i) (net 1) x.Shape
                    Empirical.nngp (net 1) p x None, Empirical.ntk (net 1) p x None)
            let allow (t: Tensor) = 4.0 / float width * (t.Data |> Array.map abs |> Array.max)
            let zn = compareMean "LayerNorm nngp" analytic.Nngp (Array.map fst samples) (allow analytic.Nngp)
            let zt = compareMean "LayerNorm ntk" analytic.Ntk.Value (Array.map snd samples) (allow analytic.Ntk.Value)
            note (sprintf "LayerNorm Monte Carlo (M = 300, width %d): worst |Δ|/SE nngp %.2f, ntk %.2f" width zn zt)

        testCase "Monte Carlo: per-position Dense(1024) → LayerNorm over (positions, channels) → Relu → Flatten → Dense" <| fun () ->
            let x3 = Tensor.create [| 3; 4; 5 |] (normals 12 60)
            let width = 1024
            let net = Stax.serial [ Stax.dense width 1.5 (Some 0.1); Stax.layerNorm [ 1; 2 ] 1e-12 0 -1; Stax.relu; Stax.flatten; Stax.dense 1 1.2 (Some 0.05) ]
            let analytic = KernelFn.compute net x3 None Both
            let samples =
                Array.Parallel.init 300 (fun i ->
                    let _, p = InitFn.init (6000 + i) net x3.Shape
                    Empirical.nngp net p x3 None, Empirical.ntk net p x3 None)
            let allow (t: Tensor) = 4.0 / float width * (t.Data |> Array.map abs |> Array.max)
            let zn = compareMean "LayerNorm(1,2) nngp" analytic.Nngp (Array.map fst samples) (allow analytic.Nngp)
            let zt = compareMean "LayerNorm(1,2) ntk" analytic.Ntk.Value (Array.map snd samples) (allow analytic.Ntk.Value)
            note (sprintf "LayerNorm over positions Monte Carlo (M = 300, width %d): worst |Δ|/SE nngp %.2f, ntk %.2f" width zn zt)

        testCase "JSON: defaults, int or list axis, round trip" <| fun () ->
            Expect.equal (Json.decode """{"layer": "LayerNorm"}""") ln "defaults"
            Expect.equal (Json.decode """{"layer": "LayerNorm", "axis": 2}""") (Stax.layerNorm [ 2 ] 1e-12 0 -1) "int axis"
            let l = Stax.layerNorm [ 1; 3 ] 0.5 0 -1
            Expect.equal (Json.decode (Json.encode l)) l "round trip"
    ]
