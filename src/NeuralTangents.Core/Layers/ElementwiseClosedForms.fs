namespace NeuralTangents.Layers

open System
open NeuralTangents

/// Closed-form kernel steps of the activations neural_tangents added after the arc-cosine and arcsine kernels
/// (`stax/elementwise.py`: Exp, Gaussian, ExpNormalized, Rbf, Sign, Gabor, Hermite, RectifiedMonomial, Polynomial),
/// with their finite φ and φ′. Every step maps one covariance c between pre-activations u, v with variances
/// q1 = Var u, q2 = Var v to (E[φ(u)φ(v)], E[φ′(u)φ′(v)]) — the second is σ̇, the factor of the incoming NTK
/// (Price's theorem: ∂E[φ(u)φ(v)]/∂c = E[φ′(u)φ′(v)]). Applied to a covariance entry (c = q1 = q2 on the diagonal)
/// the same step gives that entry's new covariance, in every spatial layout (see <c>Elementwise.pointwise</c>).
module internal ElementwiseClosedForms =

    /// sqrt clamped at 0: round-off can make a Cauchy–Schwarz gap q1·q2 − c² slightly negative.
    let inline private sqrt0 (v: float) = Math.Sqrt(Math.Max(v, 0.0))

    /// The angle θ ∈ [0, π] between the pre-activations, cos θ = c/√(q1q2), as atan2(√(q1q2 − c²), c) (accurate near
    /// 0 and π where acos is not); π/2 when both arguments are 0 (a zero variance), as neural_tangents' _arctan2.
    let inline angle (c: float) (prod: float) =
        let s = sqrt0 (prod - c * c)
        if s = 0.0 && c = 0.0 then Math.PI / 2.0 else Math.Atan2(s, c)

    // ---------------------------------------------------------------------------------------------
    // Exp, Gaussian, Rbf, ExpNormalized.

    /// Exp, φ = a·e^{bx}: E[φ(u)φ(v)] = a²·e^{b²((q1 + q2)/2 + c)} (the moment generating function of u + v),
    /// σ̇ = b² times it.
    let exp (a: float) (b: float) =
        let a2, b2 = a * a, b * b
        fun (c: float) (q1: float) (q2: float) ->
            let e = Math.Exp(b2 * (0.5 * (q1 + q2) + c))
            struct (a2 * e, a2 * b2 * e)

    /// Gaussian, φ = a·e^{bx²}: E[φ(u)φ(v)] = a²/√((1 − 2bq1)(1 − 2bq2) − 4b²c²) (a Gaussian integral,
    /// finite while the determinant is positive, always for b ≤ 0); σ̇ = a²·4b²c/det³.
    let gaussian (a: float) (b: float) =
        let a2, f = a * a, 4.0 * b * b
        fun (c: float) (q1: float) (q2: float) ->
            let det = sqrt0 ((1.0 - 2.0 * b * q1) * (1.0 - 2.0 * b * q2) - f * c * c)
            struct (a2 / det, a2 * f * c / (det * det * det))

    /// Rbf, φ = √2·sin(√(2γ)x + π/4): the RBF kernel E[φ(u)φ(v)] = e^{−γ(q1 + q2 − 2c)}, σ̇ = 2γ times it
    /// (Sin's kernel with a = √2, b = √(2γ), c = π/4, where cos 2c = 0).
    let rbf (gamma: float) =
        fun (c: float) (q1: float) (q2: float) ->
            let e = Math.Exp(gamma * (2.0 * c - q1 - q2))
            struct (e, 2.0 * gamma * e)

    /// ExpNormalized (arXiv:2003.02237, p. 6): with p = √max(q1q2, 1e-30), nngp' = p·e^{γ(c/p + shift)}
    /// (c/p clipped to [−1, 1] with do_clip), σ̇ = γ·e^{γ(c/p + shift)}. It is a kernel map, not the expectation of
    /// any φ; neural_tangents' definition is followed to the letter.
    let expNormalized (s: ExpNormalizedSpec) =
        fun (c: float) (q1: float) (q2: float) ->
            let p = Math.Sqrt(Math.Max(q1 * q2, 1e-30))
            let r = c / p
            let r = if s.DoClip then Math.Clamp(r, -1.0, 1.0) else r
            let e = Math.Exp(s.Gamma * (r + s.Shift))
            struct (p * e, s.Gamma * e)

    // ---------------------------------------------------------------------------------------------
    // Sign and the rectified monomials (arc-cosine kernels, Cho & Saul 2009).

    /// Sign: E[sign u·sign v] = 1 − 2θ/π = (2/π)·asin ρ (Sheppard's formula); 0 with a zero variance (sign 0 = 0).
    /// σ̇ = 0: φ′ = 0 almost everywhere, and the finite network's gradient (JAX's of sign) is 0 everywhere.
    /// Exact also on the covariance entries between different inputs or positions (neural_tangents sets those to 1).
    let sign (c: float) (q1: float) (q2: float) =
        struct (1.0 - 2.0 * angle c (q1 * q2) / Math.PI, 0.0)

    /// Cho & Saul's angular part J_n(θ) of the arc-cosine kernel (arXiv:0911.0911 / NIPS 2009, eq. 4), by the
    /// recurrence J_n = (2n − 1)·cos θ·J_{n−1} + (n − 1)²·sin²θ·J_{n−2} from J_0 = π − θ, J_1 = sin θ + (π − θ)cos θ.
    /// It has no division, so θ = 0 gives J_n(0) = (2n − 1)!!·π exactly where neural_tangents' form (sin θ in a
    /// denominator) gives NaN.
    let arcCosJ (n: int) (theta: float) =
        let ct, st = Math.Cos theta, Math.Sin theta
        let piMinus = Math.PI - theta
        if n = 0 then piMinus
        else
            let mutable jm2 = piMinus
            let mutable jm1 = st + piMinus * ct
            for k in 2 .. n do
                let j = float (2 * k - 1) * ct * jm1 + float ((k - 1) * (k - 1)) * st * st * jm2
                jm2 <- jm1
                jm1 <- j
            jm1

    /// (J_n(θ), J_{n−1}(θ)) in one pass of the recurrence (n ≥ 1).
    let private arcCosJPair (n: int) (theta: float) =
        let ct, st = Math.Cos theta, Math.Sin theta
        let piMinus = Math.PI - theta
        let mutable jm2 = piMinus
        let mutable jm1 = st + piMinus * ct
        for k in 2 .. n do
            let j = float (2 * k - 1) * ct * jm1 + float ((k - 1) * (k - 1)) * st * st * jm2
            jm2 <- jm1
            jm1 <- j
        struct (jm1, jm2)

    /// E[φ(u)] for φ = (u ≥ 0)·u^k and u ~ N(0, q): (0 ≥ 0)·0^k = [k = 0] at q = 0, otherwise q^{k/2}·E[z₊^k] with
    /// E[z₊^k] = 2^{k/2}·Γ((k + 1)/2)/(2√π).
    let private rectifiedMean (k: int) (q: float) =
        if q = 0.0 then (if k = 0 then 1.0 else 0.0)
        else
            let g = Math.Exp(MathNet.Numerics.SpecialFunctions.GammaLn(float (k + 1) / 2.0))
            Math.Pow(q, float k / 2.0) * Math.Pow(2.0, float k / 2.0) * g / (2.0 * Math.Sqrt Math.PI)

    /// RectifiedMonomial(n), φ = (u ≥ 0)·uⁿ: E[φ(u)φ(v)] = (q1q2)^{n/2}/(2π)·J_n(θ) and
    /// σ̇ = n²·(q1q2)^{(n−1)/2}/(2π)·J_{n−1}(θ) (Cho & Saul 2009; n = 0: σ̇ = 0). With a zero variance u and v are
    /// independent and the expectation factors: E[φ(u)]·E[φ(v)] (neural_tangents' θ = π/2 convention differs there
    /// only for n = 0 and, in σ̇, n = 1).
    let rectifiedMonomial (n: int) =
        let inv2Pi = 1.0 / (2.0 * Math.PI)
        fun (c: float) (q1: float) (q2: float) ->
            let prod = q1 * q2
            if prod = 0.0 then
                let d = if n = 0 then 0.0 else float (n * n) * rectifiedMean (n - 1) q1 * rectifiedMean (n - 1) q2
                struct (rectifiedMean n q1 * rectifiedMean n q2, d)
            else
                let theta = angle c prod
                let s = Math.Sqrt prod
                if n = 0 then struct (inv2Pi * (Math.PI - theta), 0.0)
                else
                    let struct (jn, jn1) = arcCosJPair n theta
                    let sn1 = pown s (n - 1)
                    struct (sn1 * s * inv2Pi * jn, float (n * n) * sn1 * inv2Pi * jn1)

    // ---------------------------------------------------------------------------------------------
    // Gabor.

    /// Gabor, φ = e^{−x²}·sin x, neural_tangents' closed form (a Gaussian integral of e^{−u²−v²}·sin u·sin v):
    /// with D = 1 + 2(q1 + q2) + 4(q1q2 − c²), E[φ(u)φ(v)] = e^{−(q1 + q2 + 4(q1q2 − c²) + 2c)/(2D)}·(e^{2c/D} − 1)/(2√D)
    /// (e^x − 1 by expm1 for small c), σ̇ = e^{−num/(2D)}·((S − T) + e^{2c/D}(S + T))/(2D^{5/2}) with
    /// S = 1 + 2(q1 + q2) + 4(c² + q1q2), T = 4c(4(q1q2 − c²) + 3(q1 + q2) + 2).
    let gabor (c: float) (q1: float) (q2: float) =
        let sum, prod = q1 + q2, q1 * q2
        let diff = 4.0 * (prod - c * c)
        let denom = 2.0 * sum + diff + 1.0
        let num = sum + diff + 2.0 * c
        let expLeft = Math.Exp(-num / (2.0 * denom))
        let x = 2.0 * c / denom
        let expRight = Math.Exp x
        let expm1 = if abs x < 1e-5 then x * (1.0 + x * (0.5 + x / 6.0)) else expRight - 1.0
        let shared = 1.0 + 2.0 * sum + 4.0 * (c * c + prod)
        let diffTerm = 4.0 * c * (diff + 3.0 * sum + 2.0)
        let tDot = expLeft * ((shared - diffTerm) + expRight * (shared + diffTerm)) / Math.Pow(denom, 2.5)
        struct (expLeft * expm1 / (2.0 * Math.Sqrt denom), tDot / 2.0)

    // ---------------------------------------------------------------------------------------------
    // Hermite and Polynomial.

    /// Hermite(n): nngp' = cⁿ, σ̇ = n·c^{n−1} (Mehler: E[h_n(u)h_n(v)] = ρⁿ for h_n = He_n/√n! and unit variances).
    /// As in neural_tangents the variances are not used: the rule is exact only for unit-variance pre-activations.
    let hermite (n: int) =
        fun (c: float) (_: float) (_: float) ->
            if n = 0 then struct (1.0, 0.0) else struct (pown c n, float n * pown c (n - 1))

    /// (He_n(x)/√n!, n·He_{n−1}(x)/√n!) by He_{k+1} = x·He_k − k·He_{k−1}.
    let hermiteFn (n: int) (x: float) =
        let mutable h0 = 1.0
        let mutable h1 = x
        if n = 0 then h1 <- 1.0
        else
            for k in 1 .. n - 1 do
                let h2 = x * h1 - float k * h0
                h0 <- h1
                h1 <- h2
        let norm = Math.Sqrt(Math.Exp(MathNet.Numerics.SpecialFunctions.FactorialLn n))
        struct (h1 / norm, (if n = 0 then 0.0 else float n * h0 / norm))

    /// The weights w[l][i] = a_{l+2i}·(l+2i)!/(2^i i!)/√l! of <c>polynomial</c>: s_l(q)/√l! = Σ_i w[l][i] q^i.
    let polynomialWeights (coef: float list) =
        let a = Array.ofList coef
        let n = a.Length
        let fact (k: int) = Math.Exp(MathNet.Numerics.SpecialFunctions.FactorialLn k)
        Array.init n (fun l ->
            Array.init ((n - 1 - l) / 2 + 1) (fun i ->
                a[l + 2 * i] * fact (l + 2 * i) / (Math.Pow(2.0, float i) * fact i) / Math.Sqrt(fact l)))

    /// Polynomial p(x) = Σ a_k x^k. Expanding p(√q·z) in the orthonormal Hermite basis He_l(z)/√l! gives the
    /// coefficients r_l(q) = q^{l/2}/√l!·s_l(q), s_l(q) = Σ_i a_{l+2i}·(l+2i)!/(2^i i!)·q^i, and Mehler's formula
    /// E[p(u)p(v)] = Σ_l r_l(q1)r_l(q2)ρ^l = Σ_l c^l·s_l(q1)s_l(q2)/l!, σ̇ = Σ_{l≥1} l·c^{l−1}·s_l(q1)s_l(q2)/l!
    /// (neural_tangents' form, with (q1q2)^{l/2}ρ^l = c^l so that no √(q1q2) is divided by: exact at zero variance).
    let polynomial (coef: float list) =
        let w = polynomialWeights coef
        let n = w.Length
        let horner (ws: float[]) (q: float) =
            let mutable acc = 0.0
            for i in ws.Length - 1 .. -1 .. 0 do acc <- acc * q + ws[i]
            acc
        fun (c: float) (q1: float) (q2: float) ->
            let mutable nngp = 0.0
            let mutable dot = 0.0
            let mutable cl = 1.0
            let mutable clm1 = 0.0
            for l in 0 .. n - 1 do
                let t = horner w[l] q1 * horner w[l] q2
                nngp <- nngp + cl * t
                if l >= 1 then dot <- dot + float l * clm1 * t
                clm1 <- cl
                cl <- cl * c
            struct (nngp, dot)

    /// (p(x), p′(x)) by Horner's rule.
    let polynomialFn (coef: float list) (x: float) =
        let mutable p = 0.0
        let mutable d = 0.0
        for a in List.rev coef do
            d <- d * x + p
            p <- p * x + a
        struct (p, d)
