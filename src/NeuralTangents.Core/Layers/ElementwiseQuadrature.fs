namespace NeuralTangents.Layers

open System
open NeuralTangents

/// Custom activations (neural_tangents' `Elementwise` and `ElementwiseNumerical`, arXiv:2209.04121): Gauss–Hermite
/// quadrature over the bivariate Gaussian, derivatives by dual numbers, and the registry of named activations that
/// JSON, the CLI, F# and C# share.
module internal ElementwiseQuadrature =

    /// The largest degree accepted: the rule below matches scipy to ≤ 4e-15 in the nodes up to 150 (measured at 25,
    /// 100, 150); at 200 the asymptotic starting guesses stop converging to the right roots.
    [<Literal>]
    let maxDeg = 150

    /// Gauss–Hermite nodes and weights for ∫ e^{−x²} f(x) dx (scipy's <c>roots_hermite(deg)</c>): Newton's method on
    /// the orthonormal Hermite functions h_k = (x√(2/k)·h_{k−1} − √((k−1)/k)·h_{k−2}), h_0 = π^{−1/4}, started from
    /// the asymptotic guesses of Numerical Recipes' gauher, weights 2/h_n′(x)², h_n′ = √(2n)·h_{n−1}. The
    /// orthonormal recurrence does not overflow; nodes are accurate to a few ulp (checked against scipy in the tests).
    let gaussHermite (n: int) : float[] * float[] =
        if n < 1 || n > maxDeg then invalidArg "deg" $"ElementwiseNumerical: must be in 1..{string maxDeg}, got {string n}"
        let x = Array.zeroCreate n
        let w = Array.zeroCreate n
        let pim4 = Math.Pow(Math.PI, -0.25)
        let eval (z: float) =
            let mutable p1 = pim4
            let mutable p2 = 0.0
            for j in 1 .. n do
                let p3 = p2
                p2 <- p1
                p1 <- z * Math.Sqrt(2.0 / float j) * p2 - Math.Sqrt(float (j - 1) / float j) * p3
            p1, Math.Sqrt(2.0 * float n) * p2
        let m = (n + 1) / 2
        let mutable z = 0.0
        for i in 0 .. m - 1 do
            z <-
                if i = 0 then Math.Sqrt(float (2 * n + 1)) - 1.85575 * Math.Pow(float (2 * n + 1), -0.16667)
                elif i = 1 then z - 1.14 * Math.Pow(float n, 0.426) / z
                elif i = 2 then 1.86 * z - 0.86 * x[n - 1]
                elif i = 3 then 1.91 * z - 0.91 * x[n - 2]
                else 2.0 * z - x[n - i + 1]
            let mutable iter = 0
            let mutable go = true
            while go && iter < 100 do
                let p, pp = eval z
                let z1 = z
                z <- z1 - p / pp
                iter <- iter + 1
                if abs (z - z1) <= 1e-15 * Math.Max(1.0, abs z) then go <- false
            let _, pp = eval z
            x[n - 1 - i] <- z
            x[i] <- -z
            w[i] <- 2.0 / (pp * pp)
            w[n - 1 - i] <- w[i]
        if n % 2 = 1 then x[n / 2] <- 0.0
        x, w

    let private rules = Collections.Concurrent.ConcurrentDictionary<int, float[] * float[]>()

    /// The rule of degree n, computed once.
    let rule (n: int) = rules.GetOrAdd(n, gaussHermite)

    /// neural_tangents' ElementwiseNumerical step (φ and φ′ from one call, e.g. one dual-number evaluation): with (x_i, w_i) the degree-n Gauss–Hermite rule,
    /// E[f(u)g(v)] ≈ (1/π)·Σ_ij w_i w_j f(√(2q1)·x_i)·f(c/√(q1/2)·x_i + √(2(q2 − c²/q1))·y_j) (u = √(2q1)x,
    /// v | u Gaussian), q1/2 floored at 1e-30 as neural_tangents does; for f = φ (NNGP) and f = φ′ (σ̇).
    /// Exact for polynomials of degree < 2n in each variable; for smooth φ the error falls geometrically with n.
    let quadratureStepBoth (n: int) (both: float -> struct (float * float)) =
        let xs, ws = rule n
        fun (c: float) (q1: float) (q2: float) ->
            let a = Math.Sqrt(Math.Max(2.0 * q1, 0.0))
            let slope = c / Math.Sqrt(Math.Max(q1 / 2.0, 1e-30))
            let r = Math.Sqrt(Math.Max(2.0 * (q2 - c * c / Math.Max(q1, 1e-300)), 0.0))
            let mutable e = 0.0
            let mutable d = 0.0
            for i in 0 .. n - 1 do
                let struct (fu, du) = both (a * xs[i])
                let mutable ei = 0.0
                let mutable di = 0.0
                let m = slope * xs[i]
                for j in 0 .. n - 1 do
                    let struct (fv, dv) = both (m + r * xs[j])
                    ei <- ei + ws[j] * fv
                    di <- di + ws[j] * dv
                e <- e + ws[i] * fu * ei
                d <- d + ws[i] * du * di
            struct (e / Math.PI, d / Math.PI)

    /// The same with φ and φ′ as two functions.
    let quadratureStep (n: int) (phi: float -> float) (dphi: float -> float) =
        quadratureStepBoth n (fun x -> struct (phi x, dphi x))

    // ---------------------------------------------------------------------------------------------
    // The registry: each activation written once over dual numbers, so φ′ is exact (no finite difference).

    let private softplusD (x: Dual) = Dual.Max(x, 0.0) + Dual.Log1p(Dual.Exp(-(Dual.Abs x)))
    /// 1/(1 + e^{−x}), written so that neither the value nor the derivative cancels or overflows for large |x|.
    let private sigmoidD (x: Dual) = if x.Value >= 0.0 then 1.0 / (1.0 + exp (-x)) else let e = exp x in e / (1.0 + e)
    let private invSqrt2 = 1.0 / Math.Sqrt 2.0
    /// SELU's constants (Klambauer et al. 2017, arXiv:1706.02515), as jax.nn.selu.
    let private seluAlpha, seluScale = 1.6732632423543772848170429916717, 1.0507009873554804934193349852946
    let private eluD (x: Dual) = if x.Value > 0.0 then x else Dual.Expm1 x

    /// Name, description and φ over dual numbers.
    let registry : (string * string * (Dual -> Dual)) list =
        [ "tanh", "tanh x", tanh
          "sech2", "1 − tanh²x", (fun x -> let t = tanh x in 1.0 - t * t)
          "sigmoid", "1/(1 + e^{−x}) = (1 + tanh(x/2))/2", sigmoidD
          "softplus", "log(1 + eˣ)", softplusD
          "swish", "x·sigmoid(x)", (fun x -> x * sigmoidD x)
          "silu", "x·sigmoid(x) (= swish)", (fun x -> x * sigmoidD x)
          "elu", "x for x > 0, eˣ − 1 otherwise", eluD
          "selu", "λ·(x for x > 0, α(eˣ − 1) otherwise), λ ≈ 1.0507, α ≈ 1.6733", (fun x ->
              seluScale * (if x.Value > 0.0 then x else seluAlpha * Dual.Expm1 x))
          "mish", "x·tanh(softplus(x))", (fun x -> x * tanh (softplusD x))
          "relu6", "min(max(x, 0), 6)", (fun x -> Dual.Min(Dual.Max(x, 0.0), 6.0))
          "hard_tanh", "min(max(x, −1), 1)", (fun x -> Dual.Min(Dual.Max(x, -1.0), 1.0))
          "relu", "max(x, 0)", (fun x -> Dual.Max(x, 0.0))
          "sin", "sin x", sin
          "cos", "cos x", cos
          "exp", "eˣ", exp
          "erf", "erf x", Dual.Erf
          "gelu", "x·Φ(x) (exact)", (fun x -> 0.5 * x * (1.0 + Dual.Erf(x * invSqrt2))) ]

    /// The registry's names, in order.
    let names = registry |> List.map (fun (n, _, _) -> n)

    /// φ and φ′ of a registry name (φ′ is the ε part of φ at x + ε).
    let lookup (what: string) (name: string) : (float -> float) * (float -> float) =
        match registry |> List.tryFind (fun (n, _, _) -> n = name) with
        | Some(_, _, f) -> (fun x -> (f (Dual(x, 0.0))).Value), (fun x -> (f (Dual(x, 1.0))).Derivative)
        | None ->
            invalidArg what ("ElementwiseNumerical: unknown activation name '" + name + "' (known: " + (String.Join(", ", names)) + ")")

    /// The kernel step of a NumericalSpec (φ′ from Df's φ when Df names one, else the exact derivative of Fn).
    let numericalStep (s: NumericalSpec) =
        let phi, dphi = lookup "fn" s.Fn
        match s.Df with
        | Some d ->
            let dphi = fst (lookup "df" d)
            quadratureStep s.Deg phi dphi, phi, dphi
        | None ->
            let f = registry |> List.pick (fun (n, _, f) -> if n = s.Fn then Some f else None)
            quadratureStepBoth s.Deg (fun x -> let r = f (Dual(x, 1.0)) in struct (r.Value, r.Derivative)), phi, dphi

    /// The NNGP maps neural_tangents' fixtures name for `Elementwise(nngp_fn=...)`, over dual numbers in c:
    /// "relu" (√(q1q2 − c²) + (π − θ)c)/(2π) and "erf" (2/π)·asin(2c/√((1 + 2q1)(1 + 2q2))).
    let nngpMaps : (string * (Dual -> float -> float -> Dual)) list =
        [ "relu", (fun c q1 q2 ->
              let prod = q1 * q2
              // √ with derivative 0 where its argument is ≤ 0, as neural_tangents' _sqrt: at θ = 0 the infinite
              // slopes of √(q1q2 − c²) and of θ cancel in the exact derivative (π − θ)/(2π), not in floating point.
              let gap = prod - c * c
              let s = if gap.Value <= 0.0 then Dual(0.0, 0.0) else sqrt gap
              let theta = Dual.Atan2(s, c)
              (s + (Math.PI - theta) * c) / (2.0 * Math.PI))
          "erf", (fun c q1 q2 -> 2.0 / Math.PI * Dual.Asin(2.0 * c / Math.Sqrt((1.0 + 2.0 * q1) * (1.0 + 2.0 * q2)))) ]

    /// A step from an NNGP map written over dual numbers in the covariance: σ̇ = ∂nngp/∂c is its ε part
    /// (Price's theorem), exact up to the round-off of the map's elementary operations.
    let dualStep (nngp: Dual -> float -> float -> Dual) =
        fun (c: float) (q1: float) (q2: float) ->
            let r = nngp (Dual(c, 1.0)) q1 q2
            struct (r.Value, r.Derivative)
