/// Monte Carlo comparison shared by the tests of Dropout, LayerNorm and the indexing layers: the mean of M
/// independent empirical kernels against an analytic kernel, entry by entry.
module NeuralTangents.Tests.McCheck

open Expecto
open NeuralTangents
open NeuralTangents.Tests.TestUtil

/// |mean − analytic| ≤ Z·SE + allowance with SE = sample std/√M. Z = 5: two-sided normal tail 5.7e-7 per entry,
/// so over the few hundred entries these tests check a false failure has probability below 1e-3 for a random choice
/// of the (fixed) seeds; M ≥ 300 keeps the sample means close to normal (Berry–Esseen).
let z = 5.0

/// Compares the sample mean of <c>samples</c> (each shaped like <c>analytic</c>) with <c>analytic</c> on every entry;
/// returns the worst |Δ|/SE.
let compareMean (what: string) (analytic: Tensor) (samples: Tensor[]) (allowance: float) =
    let m = float samples.Length
    let mutable worst = 0.0
    for k in 0 .. analytic.Length - 1 do
        let mean = (samples |> Array.sumBy (fun s -> s.Data[k])) / m
        let sd = sqrt ((samples |> Array.sumBy (fun s -> (s.Data[k] - mean) ** 2.0)) / (m - 1.0))
        let se = sd / sqrt m
        let d = abs (mean - analytic.Data[k])
        if se > 0.0 then worst <- max worst (d / se)
        if not (d <= z * se + allowance) then
            failtestf "%s[%d]: MC mean %.6g vs analytic %.6g: |Δ| = %.3g > %.0f·SE (%.3g) + allowance %.3g"
                what k mean analytic.Data[k] d z se allowance
    worst

/// The empirical NNGP of one finite network output y (N, readout): y·yᵀ / readout.
let outerMean (y: Tensor) =
    let n, c = y.Shape[0], y.Shape[1]
    Tensor.create [| n; n |] (Array.init (n * n) (fun e ->
        let i, j = e / n, e % n
        let mutable s = 0.0
        for a in 0 .. c - 1 do s <- s + y.Data[i * c + a] * y.Data[j * c + a]
        s / float c))
