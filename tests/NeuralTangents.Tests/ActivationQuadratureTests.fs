/// Every activation's kernel rule against an independent numerical reference: the Gaussian expectations
/// E[φ(u)φ(v)] (NNGP) and E[φ′(u)φ′(v)] (the factor σ̇ that multiplies the incoming NTK) for
/// (u, v) ~ N(0, [[q1, c], [c, q2]]), computed here by quadrature from φ and φ′ alone — no closed form of the core.
module NeuralTangents.Tests.ActivationQuadratureTests

open System
open Expecto
open NeuralTangents

/// Gaussian expectations by composite Gauss–Legendre quadrature.
///
/// Nodes: Newton's method on the Legendre polynomial P_n (three-term recurrence), started at Tricomi's estimate
/// cos(π(i + 3/4)/(n + 1/2)); weights 2/((1 − z²)·P_n′(z)²) (Golub & Welsch's eigenvalue method gives the same rule).
///
/// 2-D expectations use polar coordinates: with u = √q1·t·cos a, v = √q2·t·(ρ cos a + √(1−ρ²) sin a) and
/// t ∈ [0, 12] (the mass beyond t = 12 is e^{−72} ≈ 5e-32, negligible even against the degree-10 growth of the
/// Monomial(5) integrand), E[g] = (1/2π) ∫₀^{2π} da ∫₀^12 t·e^{−t²/2}·g(u, v) dt. Every kinked activation here
/// kinks at 0 only, so its kinks are the rays a where u = 0 or v = 0: the a-range is cut at those four rays and at
/// the quadrants, the t-range at 2, 4 and 7, and each piece is smooth, so Gauss–Legendre converges exponentially on
/// each — also at ρ = 0.99, where the v = 0 rays lie close to the u = 0 rays and a Cartesian product rule would see
/// a near-kink. ρ = ±1 and zero variances reduce to 1-D integrals over z ~ N(0, 1) on [−12, 12], cut every 2 units.
/// (A Gauss–Hermite product rule was tried too: for Erf and Gelu it was still ~1e-7 off with 64² nodes.)
///
/// Accuracy, measured when these tests were written (errors relative to the Cauchy–Schwarz scale
/// √(E[g(u)²]·E[g(v)²]), see `scales`): the 20- and 28-node rules agree to ≤ 1.2e-14 for every case below, and the
/// core's closed forms match the 28-node value to ≤ 1.5e-14 (hand-built kernels), ≤ 3.6e-15 (zero variances) and
/// ≤ 1.0e-14 (Dense → activation on exact inputs). The tests assert 1e-13 (convergence) and 1e-12 (agreement). Planted
/// defects miss by far more: a Monomial(4) moment with 3·p² for 9·p² by 5.7e-2 (Monomial(5)'s σ̇ too), a Monomial(3)
/// coefficient 3 for 9 by 0.4, a sign error in Sin's σ̇ (s1 − s2 for s1 + s2) by 0.98 (1.4 for Cos).
module Quadrature =

    let private legendreRules = System.Collections.Concurrent.ConcurrentDictionary<int, float[] * float[]>()

    /// Gauss–Legendre nodes and weights on [−1, 1] (computed once per n).
    let gaussLegendre (n: int) : float[] * float[] =
      legendreRules.GetOrAdd(n, fun n ->
        let x = Array.zeroCreate n
        let w = Array.zeroCreate n
        // P_n(z) and P_n′(z) by the recurrence (k+1)P_{k+1} = (2k+1) z P_k − k P_{k−1}.
        let legendre (z: float) =
            let mutable p0 = 1.0
            let mutable p1 = z
            for k in 2 .. n do
                let p2 = ((2.0 * float k - 1.0) * z * p1 - (float k - 1.0) * p0) / float k
                p0 <- p1
                p1 <- p2
            p1, float n * (z * p1 - p0) / (z * z - 1.0)
        for i in 0 .. (n + 1) / 2 - 1 do
            let mutable z = Math.Cos(Math.PI * (float i + 0.75) / (float n + 0.5))
            let mutable step = 1.0
            let mutable iterations = 0
            while abs step > 1e-16 && iterations < 100 do
                let p, dp = legendre z
                step <- p / dp
                z <- z - step
                iterations <- iterations + 1
            let _, dp = legendre z
            let wi = 2.0 / ((1.0 - z * z) * dp * dp)
            x[i] <- -z
            x[n - 1 - i] <- z
            w[i] <- wi
            w[n - 1 - i] <- wi
        x, w)

    /// Nodes and weights of the n-point rule on every piece of [a, b] cut at the breakpoints.
    let composite (n: int) (breaks: float list) (a: float) (b: float) : (float * float)[] =
        let x, w = gaussLegendre n
        let cuts = breaks |> List.filter (fun t -> t > a && t < b) |> List.distinct |> List.sort
        (a :: cuts @ [ b ])
        |> List.pairwise
        |> List.toArray
        |> Array.collect (fun (lo, hi) ->
            let h, m = (hi - lo) / 2.0, (hi + lo) / 2.0
            Array.init n (fun i -> m + h * x[i], h * w[i]))

    let private density (z: float) = Math.Exp(-0.5 * z * z) / Math.Sqrt(2.0 * Math.PI)

    /// (E[φ(u)φ(v)], E[φ′(u)φ′(v)]) for (u, v) ~ N(0, [[q1, c], [c, q2]]) and φ smooth except at 0, with the
    /// n-point Gauss–Legendre rule per piece.
    let expectations (n: int) (phi: float -> float) (dphi: float -> float) (q1: float) (q2: float) (c: float) =
        let s1, s2 = sqrt q1, sqrt q2
        // E over z ~ N(0, 1) of φ(α z)φ(β z) and φ′(α z)φ′(β z).
        let line (alpha: float) (beta: float) =
            let mutable e = 0.0
            let mutable d = 0.0
            for z, wz in composite n [ -10.0 .. 2.0 .. 10.0 ] -12.0 12.0 do
                let p = wz * density z
                e <- e + p * phi (alpha * z) * phi (beta * z)
                d <- d + p * dphi (alpha * z) * dphi (beta * z)
            e, d
        if q1 = 0.0 && q2 = 0.0 then phi 0.0 * phi 0.0, dphi 0.0 * dphi 0.0
        elif q1 = 0.0 then line 0.0 s2
        elif q2 = 0.0 then line s1 0.0
        else
            let rho = c / sqrt (q1 * q2)
            if abs rho >= 1.0 then line s1 (float (sign rho) * s2)
            else
                let r = sqrt (1.0 - rho * rho)
                let twoPi = 2.0 * Math.PI
                let wrap (a: float) = let m = a % twoPi in if m < 0.0 then m + twoPi else m
                // v = 0 where ρ cos a + r sin a = 0.
                let a0 = Math.Atan2(rho, -r)
                let rays = [ Math.PI / 2.0; 1.5 * Math.PI; wrap a0; wrap (a0 + Math.PI) ]
                let angles = composite n (rays @ [ 0.5 * Math.PI; Math.PI; 1.5 * Math.PI ]) 0.0 twoPi
                let radii = composite n [ 2.0; 4.0; 7.0 ] 0.0 12.0
                let mutable e = 0.0
                let mutable d = 0.0
                for a, wa in angles do
                    let du = s1 * Math.Cos a
                    let dv = s2 * (rho * Math.Cos a + r * Math.Sin a)
                    for t, wt in radii do
                        let p = wa * wt * t * Math.Exp(-0.5 * t * t)
                        let u, v = du * t, dv * t
                        e <- e + p * phi u * phi v
                        d <- d + p * dphi u * dphi v
                e / twoPi, d / twoPi

/// An activation as the finite network computes it: φ and φ′, written from their definitions.
type private ActivationFunction =
    { Name: string
      Layer: Layer
      Phi: float -> float
      DPhi: float -> float }

let private expectations (n: int) (act: ActivationFunction) (q1: float) (q2: float) (c: float) =
    Quadrature.expectations n act.Phi act.DPhi q1 q2 c

let private erf (x: float) = MathNet.Numerics.SpecialFunctions.Erf x
/// Standard normal CDF and density.
let private cdf (x: float) = 0.5 * MathNet.Numerics.SpecialFunctions.Erfc(-x / Math.Sqrt 2.0)
let private pdf (x: float) = Math.Exp(-0.5 * x * x) / Math.Sqrt(2.0 * Math.PI)

/// a·min(u, 0) + b·max(u, 0). φ′(0) is taken as (a + b)/2: it matters only when a variance is exactly 0, and it is
/// neural_tangents' convention there (its arc-cosine formula with θ = π/2 when √(q1·q2) = 0 gives σ̇ = ((a+b)/2)²).
let private abReluAct (name: string) (layer: Layer) (a: float) (b: float) =
    { Name = name
      Layer = layer
      Phi = (fun u -> if u < 0.0 then a * u else b * u)
      DPhi = (fun u -> if u < 0.0 then a elif u > 0.0 then b else (a + b) / 2.0) }

let private erfAct (name: string) (layer: Layer) (a: float) (b: float) (c: float) =
    { Name = name
      Layer = layer
      Phi = (fun u -> a * erf (b * u) + c)
      DPhi = (fun u -> a * b * 2.0 / Math.Sqrt Math.PI * Math.Exp(-(b * u) * (b * u))) }

/// a·sin(b·u + c); Cos(a, b, c) is the same function with c + π/2.
let private sinAct (name: string) (layer: Layer) (a: float) (b: float) (c: float) =
    { Name = name
      Layer = layer
      Phi = (fun u -> a * Math.Sin(b * u + c))
      DPhi = (fun u -> a * b * Math.Cos(b * u + c)) }

/// u^d with 0⁰ = 1 (Monomial(0) is the constant 1, its derivative 0).
let private monomialAct (d: int) =
    { Name = sprintf "Monomial(%d)" d
      Layer = Stax.monomial d
      Phi = (fun u -> if d = 0 then 1.0 else pown u d)
      DPhi = (fun u -> if d = 0 then 0.0 else float d * pown u (d - 1)) }

/// Every activation the core has, with parameters that make every term of its kernel matter (cos 2c ≠ 0 for Sin,
/// a shift c ≠ 0 for Erf, a ≠ ±b for ABRelu).
let private activations =
    [ abReluAct "Relu" Stax.relu 0.0 1.0
      abReluAct "LeakyRelu(0.1)" (Stax.leakyRelu 0.1) 0.1 1.0
      abReluAct "ABRelu(-0.4, 0.7)" (Stax.abRelu -0.4 0.7) -0.4 0.7
      abReluAct "Abs" Stax.abs -1.0 1.0
      erfAct "Erf(1.3, 0.8, 0.2)" (Stax.erf 1.3 0.8 0.2) 1.3 0.8 0.2
      erfAct "Sigmoid_like" Stax.sigmoidLike 0.5 (1.0 / 2.4020563531719796) 0.5
      { Name = "Gelu"
        Layer = Stax.gelu false
        Phi = (fun u -> u * cdf u)
        DPhi = (fun u -> cdf u + u * pdf u) }
      sinAct "Sin(1.2, 0.9, 0.4)" (Stax.sin 1.2 0.9 0.4) 1.2 0.9 0.4
      sinAct "Cos(0.8, 1.1, -0.3)" (Stax.cos 0.8 1.1 -0.3) 0.8 1.1 (-0.3 + Math.PI / 2.0) ]
    @ [ for d in 0 .. 5 -> monomialAct d ]
    @ [ { Name = "Exp(0.9, 0.6)"; Layer = Stax.exp 0.9 0.6
          Phi = (fun u -> 0.9 * Math.Exp(0.6 * u)); DPhi = (fun u -> 0.54 * Math.Exp(0.6 * u)) }
        { Name = "Gaussian(1.3, -0.7)"; Layer = Stax.gaussian 1.3 -0.7
          Phi = (fun u -> 1.3 * Math.Exp(-0.7 * u * u)); DPhi = (fun u -> 2.0 * 1.3 * -0.7 * u * Math.Exp(-0.7 * u * u)) }
        { Name = "Rbf(0.6)"; Layer = Stax.rbf 0.6
          Phi = (fun u -> Math.Sqrt 2.0 * Math.Sin(Math.Sqrt 1.2 * u + Math.PI / 4.0))
          DPhi = (fun u -> Math.Sqrt 2.0 * Math.Sqrt 1.2 * Math.Cos(Math.Sqrt 1.2 * u + Math.PI / 4.0)) }
        // φ′ = 0: the finite network's gradient of sign (JAX's) is 0 everywhere, and σ̇ = 0 is what the rule gives.
        { Name = "Sign"; Layer = Stax.sign; Phi = (fun u -> float (Math.Sign u)); DPhi = (fun _ -> 0.0) }
        { Name = "Gabor"; Layer = Stax.gabor
          Phi = (fun u -> Math.Exp(-u * u) * Math.Sin u); DPhi = (fun u -> Math.Exp(-u * u) * (Math.Cos u - 2.0 * u * Math.Sin u)) }
        { Name = "Polynomial [0.3; -0.5; 0.8; 0.2]"; Layer = Stax.polynomial [ 0.3; -0.5; 0.8; 0.2 ]
          Phi = (fun u -> 0.3 - 0.5 * u + 0.8 * u * u + 0.2 * u * u * u); DPhi = (fun u -> -0.5 + 1.6 * u + 0.6 * u * u) } ]
    // (u ≥ 0)·uⁿ, with 0⁰ = 1 (φ(0) = 1 for n = 0) and φ′(0) = 1 for n = 1, as JAX evaluates them.
    @ [ for n in 0 .. 4 ->
          { Name = sprintf "RectifiedMonomial(%d)" n; Layer = Stax.rectifiedMonomial n
            Phi = (fun u -> if u >= 0.0 then pown u n else 0.0)
            DPhi = (fun u -> if u >= 0.0 && n > 0 then float n * pown u (n - 1) else 0.0) } ]

/// Orders of the two rules compared for convergence; the finer one is the reference. Gaussian and Gabor carry an
/// e^{b·u²} envelope that, at variance 3, puts the mass in the first tenth of the radial piece [0, 2]; there 20/28
/// nodes agree only to ~5e-13, 40/56 to ≤ 1e-14.
let private ordersFor (act: ActivationFunction) =
    if act.Name.StartsWith "Gaussian" || act.Name = "Gabor" then 40, 56 else 20, 28

/// The Cauchy–Schwarz scale √(E[g(u)²]·E[g(v)²]) of a cross moment (1-D integrals, fine rule); an error relative to
/// it is the error of the 2×2 kernel [[E g(u)², E g(u)g(v)], [·, E g(v)²]] relative to its diagonal, so odd
/// activations at ρ = 0 (cross moment 0) are judged on the kernel's own scale.
let private scales (act: ActivationFunction) (q1: float) (q2: float) =
    let _, fine = ordersFor act
    let e1, d1 = expectations fine act q1 q1 q1
    let e2, d2 = expectations fine act q2 q2 q2
    sqrt (e1 * e2), sqrt (d1 * d2)

/// |actual − expected| / scale, or the absolute error when the scale is 0 (Monomial(0)'s derivative).
let private scaledErr (scale: float) (expected: float) (actual: float) =
    if scale = 0.0 then abs (actual - expected) else abs (actual - expected) / scale

let private rhos = [ -1.0; -0.9; -0.3; 0.0; 0.5; 0.99; 1.0 ]

/// Variance pairs whose product is an exact square in float64 (√(q1·q2) = 1, 1.5, 2.25), so c = ρ·√(q1·q2) is
/// exactly the intended covariance and ρ = ±1 is exact: at |ρ| = 1 the arc-cosine kernels' σ̇ has infinite slope in
/// ρ (θ ≈ √(2(1 − ρ))), so one ulp of c would move it by ~1e-8 in any implementation.
let private variancePairs = [ 0.5, 2.0, 1.0; 3.0, 0.75, 1.5; 2.25, 2.25, 2.25 ]

let private checkCase (act: ActivationFunction) (q1: float) (q2: float) (c: float) (nngp: float) (sigmaDot: float) =
    let coarse, fine = ordersFor act
    let eC, dC = expectations coarse act q1 q2 c
    let eF, dF = expectations fine act q1 q2 c
    let sE, sD = scales act q1 q2
    let what = sprintf "%s at q1 = %g, q2 = %g, c = %g" act.Name q1 q2 c
    let conv = max (scaledErr sE eC eF) (scaledErr sD dC dF)
    Expect.isLessThanOrEqual conv 1e-13 (sprintf "%s: the %d- and %d-node rules differ by %.2e" what coarse fine conv)
    let errN = scaledErr sE eF nngp
    let errT = scaledErr sD dF sigmaDot
    Expect.isLessThanOrEqual errN 1e-12 (sprintf "%s: NNGP %.17g vs quadrature %.17g (error %.2e of the scale)" what nngp eF errN)
    Expect.isLessThanOrEqual errT 1e-12 (sprintf "%s: σ̇ %.17g vs quadrature %.17g (error %.2e of the scale)" what sigmaDot dF errT)

/// Inputs with small-integer entries and C = 4 channels, W_std = 1.5, b_std = 0.5 or none: every pre-activation
/// covariance W²·x·x′/4 + b² is exact in float64, so the reference sees the very (q1, q2, c) the core sees.
/// Rows: x, 2x, −x, an orthogonal row and the zero row (variance b², or 0 without a bias).
let private rows =
    [| [| 1.0; 0.0; 1.0; 0.0 |]
       [| 2.0; 0.0; 2.0; 0.0 |]
       [| -1.0; 0.0; -1.0; 0.0 |]
       [| 0.0; 1.0; 0.0; -2.0 |]
       [| 0.0; 0.0; 0.0; 0.0 |] |]

let private viaNetwork (act: ActivationFunction) (bStd: float option) =
    let _, fine = ordersFor act
    let x = Tensor.create [| rows.Length; 4 |] (Array.concat rows)
    let k = KernelFn.compute (Serial [ Stax.dense 64 1.5 bStd; act.Layer ]) x None Both
    let b2 = match bStd with Some b -> b * b | None -> 0.0
    let pre i j = 2.25 * Array.fold2 (fun s a b -> s + a * b) 0.0 rows[i] rows[j] / 4.0 + b2
    let n = rows.Length
    for i in 0 .. n - 1 do
        Expect.equal k.Cov1.Data[i] k.Nngp.Data[i * n + i] (sprintf "%s: cov1[%d] = nngp[%d,%d]" act.Name i i i)
        for j in i .. n - 1 do
            let q1, q2, c = pre i i, pre j j, pre i j
            let e, d = expectations fine act q1 q2 c
            let sE, sD = scales act q1 q2
            // The Dense layer's NTK (ntk parameterization, input NTK 0) equals its NNGP c, so the output NTK is σ̇·c.
            let what = sprintf "%s, rows %d and %d (q1 = %g, q2 = %g, c = %g)" act.Name i j q1 q2 c
            let nngp, ntk = k.Nngp.Data[i * n + j], k.Ntk.Value.Data[i * n + j]
            Expect.isLessThanOrEqual (scaledErr sE e nngp) 1e-12 (sprintf "%s: NNGP %.17g vs quadrature %.17g" what nngp e)
            Expect.isLessThanOrEqual (scaledErr (sD * abs c) (d * c) ntk) 1e-12 (sprintf "%s: NTK %.17g vs quadrature σ̇·c = %.17g" what ntk (d * c))

[<Tests>]
let tests =
    testList "ActivationQuadratureTests" [
        testCase "Gauss–Legendre rule integrates polynomials and the normal density exactly" <| fun () ->
            let x, w = Quadrature.gaussLegendre 24
            // Exact for degree ≤ 47: ∫₋₁¹ z^k dz = 2/(k+1) for even k.
            for k in [ 0; 2; 10; 30; 46 ] do
                let s = Array.fold2 (fun acc xi wi -> acc + wi * xi ** float k) 0.0 x w
                Expect.floatClose Accuracy.veryHigh s (2.0 / float (k + 1)) (sprintf "∫ z^%d" k)
            // E[z⁸] = 7!! = 105 under N(0, 1); E[cos z] = e^{−1/2}.
            let e8, _ = Quadrature.expectations 24 (fun u -> u ** 4.0) (fun _ -> 0.0) 1.0 1.0 1.0
            Expect.floatClose Accuracy.veryHigh e8 105.0 "E[z⁸]"
            let ec, _ = Quadrature.expectations 24 cos (fun _ -> 0.0) 1.0 0.0 0.0
            Expect.floatClose Accuracy.veryHigh ec (exp -0.5) "E[cos z]"

        testList "NNGP and σ̇ equal the quadrature over ρ ∈ {−1, −0.9, −0.3, 0, 0.5, 0.99, 1}" [
            for act in activations ->
                testCase act.Name <| fun () ->
                    for q1, q2, root in variancePairs do
                        for rho in rhos do
                            let c = rho * root
                            let k = KernelFn.applyKernel act.Layer (TestUtil.gaussianPairKernel q1 q2 c)
                            checkCase act q1 q2 c k.Nngp.Data[1] k.Ntk.Value.Data[1] ]

        testCase "zero-variance pre-activations: φ(0) and φ′(0) enter the kernel" <| fun () ->
            for act in activations do
                for q1, q2 in [ 0.0, 1.7; 0.0, 0.0 ] do
                    let k = KernelFn.applyKernel act.Layer (TestUtil.gaussianPairKernel q1 q2 0.0)
                    checkCase act q1 q2 0.0 k.Nngp.Data[1] k.Ntk.Value.Data[1]
                    Expect.floatClose Accuracy.veryHigh k.Nngp.Data[0] (act.Phi 0.0 ** 2.0) (sprintf "%s: E[φ(u)²] at q = 0 is φ(0)²" act.Name)

        testList "Dense → activation: kernels of exact inputs (ρ = ±1, 0, zero rows) equal the quadrature" [
            for act in activations ->
                testCase act.Name <| fun () ->
                    viaNetwork act (Some 0.5)
                    viaNetwork act None ]
    ]
