namespace NeuralTangents.Layers

open System
open System.Runtime.Intrinsics
open NeuralTangents
open NeuralTangents.Rules

/// Vectorised (Vector256: AVX2/FMA, 4 doubles a lane group) kernel steps of the closed-form activations, and the
/// fused pass that applies one to a kernel in the diagonal-batch, diagonal-spatial layout. Every vector step is
/// the twin of a scalar step in <c>ElementwiseClosedForms</c> / <c>Elementwise</c>: the same arithmetic in the same
/// order, except the transcendental functions — exp is <c>Vector256.Exp</c> (.NET's vector exp) and atan2 is the
/// Cephes rational of <c>Simd.atan2Pos</c> — so a vector result differs from the scalar one only by the few ulp
/// those functions differ from libm, propagated through the formula (tested in ElementwiseSimdTests).
/// Vector256 rather than Vector512: the machines this runs on have AVX2 without AVX-512, where Vector512 is
/// emulated by two halves and gains nothing; without Vector256 acceleration the pass runs the scalar step.
module internal ElementwiseSimd =

    type V = Vector256<float>

    let inline splat (v: float) : V = Vector256.Create v

    /// sqrt clamped at 0, lane-wise (round-off can make a Cauchy–Schwarz gap slightly negative).
    let inline sqrt0 (v: V) = Vector256.Sqrt(Vector256.Max(v, V.Zero))

    /// atan2(y, x) for y ≥ 0 lane-wise, atan2(0, ±0) = π/2: the Vector256 twin of <c>Simd.atan2Pos</c> (Cephes'
    /// atan: reduce to t = num/den ≤ 1, for t > 0.66 use atan t = π/4 + atan((t − 1)/(t + 1)), then a 4/5
    /// rational in z = r²; π/2 and π are added with their low parts).
    let inline atan2Pos (y: V) (x: V) =
        let ax = Vector256.Abs x
        let swap = Vector256.GreaterThan(y, ax)
        let num = Vector256.ConditionalSelect(swap, ax, y)
        let den = Vector256.ConditionalSelect(swap, y, ax)
        let zeroDen = Vector256.Equals(den, V.Zero)
        let big = Vector256.GreaterThan(num, splat 0.66 * den)
        let numer = Vector256.ConditionalSelect(big, num - den, num)
        let denom = Vector256.ConditionalSelect(big, num + den, Vector256.ConditionalSelect(zeroDen, splat 1.0, den))
        let r = numer / denom
        let z = r * r
        let fma (a: V) (b: V) (c: V) = Vector256.FusedMultiplyAdd(a, b, c)
        let p = fma (fma (fma (fma (splat Simd.P0) z (splat Simd.P1)) z (splat Simd.P2)) z (splat Simd.P3)) z (splat Simd.P4)
        let q = fma (fma (fma (fma (z + splat Simd.Q0) z (splat Simd.Q1)) z (splat Simd.Q2)) z (splat Simd.Q3)) z (splat Simd.Q4)
        let a0 = fma (r * z) (p / q) r
        let a = Vector256.ConditionalSelect(big, splat Simd.piOver4 + (a0 + splat (0.5 * Simd.MoreBits)), a0)
        let negX = Vector256.LessThan(x, V.Zero)
        let a = Vector256.ConditionalSelect(Vector256.Xor(negX, swap), -a, a)
        let bse = Vector256.ConditionalSelect(swap, splat Simd.piOver2, Vector256.ConditionalSelect(negX, splat Math.PI, V.Zero))
        let lo = Vector256.ConditionalSelect(swap, splat Simd.MoreBits, Vector256.ConditionalSelect(negX, splat (2.0 * Simd.MoreBits), V.Zero))
        Vector256.ConditionalSelect(zeroDen, splat Simd.piOver2, bse + (a + lo))

    /// atan2(y, x) for x ≥ 0 and any y (a result in [−π/2, π/2]) lane-wise, as Math.Atan2: the sign of y times
    /// atan2Pos(|y|, x); atan2(±0, 0) = ±0.
    let inline atan2Right (y: V) (x: V) =
        let a = atan2Pos (Vector256.Abs y) x
        let a = Vector256.ConditionalSelect(Vector256.LessThan(y, V.Zero), -a, a)
        Vector256.ConditionalSelect(Vector256.Equals(y, V.Zero), y, a)

    // ---------------------------------------------------------------------------------------------
    // The fused pass.

    /// One contiguous run of `len` entries starting at o: nngp x[o..], ntk t[o..], variances c1[o1..] (or c1[o1]
    /// for every entry when b1) and c2[o2..]. Writes nngp' to outN and σ̇·ntk to outT (when withNtk). Outputs may
    /// alias inputs (in place): each vector is read before it is written. The tail (len mod 4 entries) is one
    /// padded vector, so every entry gets the vector step whatever its position (the diagonal of nngp stays
    /// bit-identical to the covariances, which take the same step); without Vector256 the scalar step runs.
    let inline run ([<InlineIfLambda>] scalar: float -> float -> float -> struct (float * float))
                   ([<InlineIfLambda>] vec: V -> V -> V -> struct (V * V))
                   (x: float[]) (t: float[]) (c1: float[]) (o1: int) (b1: bool) (c2: float[]) (o2: int)
                   (outN: float[]) (outT: float[]) (withNtk: bool) (o: int) (len: int) =
        let mutable m = 0
        if Vector256.IsHardwareAccelerated then
            let v1b = splat c1[o1]
            while m + 4 <= len do
                let xv = Vector256.LoadUnsafe(&x[o + m])
                let v1 = if b1 then v1b else Vector256.LoadUnsafe(&c1[o1 + m])
                let struct (nn, dot) = vec xv v1 (Vector256.LoadUnsafe(&c2[o2 + m]))
                if withNtk then
                    let tv = Vector256.LoadUnsafe(&t[o + m])
                    Vector256.StoreUnsafe(dot * tv, &outT[o + m])
                Vector256.StoreUnsafe(nn, &outN[o + m])
                m <- m + 4
            if m < len then
                // Lanes past the end repeat the run's first entry of the tail (valid inputs) and are not stored.
                let r = len - m
                let lane (a: float[]) (start: int) (k: int) = a[start + min k (r - 1)]
                let pack (a: float[]) (start: int) = Vector256.Create(lane a start 0, lane a start 1, lane a start 2, lane a start 3)
                let v1 = if b1 then v1b else pack c1 (o1 + m)
                let struct (nn, dot) = vec (pack x (o + m)) v1 (pack c2 (o2 + m))
                let tv = if withNtk then pack t (o + m) else V.Zero
                let d = dot * tv
                for k in 0 .. r - 1 do
                    if withNtk then outT[o + m + k] <- d.GetElement k
                    outN[o + m + k] <- nn.GetElement k
        else
            while m < len do
                let v1 = if b1 then c1[o1] else c1[o1 + m]
                let struct (nn, dot) = scalar x[o + m] v1 c2[o2 + m]
                if withNtk then outT[o + m] <- dot * t[o + m]
                outN[o + m] <- nn
                m <- m + 1

    /// Applies a pointwise step to a kernel in the diagonal-batch, diagonal-spatial layout (nngp (N1, N2, S), cov1
    /// (N1, S), cov2 (N2, S)) in one fused, vectorised pass, rows of N1 split across cores: nngp' and σ̇·ntk; the
    /// covariances (small) in one vectorised pass on the calling thread. With <c>inPlace</c> (the plan owns the input's arrays) nngp' and
    /// ntk' overwrite the input's nngp and ntk; otherwise fresh arrays are written (every element, so they are not
    /// zeroed).
    let inline pass (inPlace: bool) ([<InlineIfLambda>] scalar: float -> float -> float -> struct (float * float))
                    ([<InlineIfLambda>] vec: V -> V -> V -> struct (V * V)) (k: Kernel) : Kernel =
        let n1, n2 = k.Nngp.Shape[0], k.Nngp.Shape[1]
        let s = k.Nngp.Length / max 1 (n1 * n2)
        let c1 = k.Cov1.Data
        let c2 = match k.Cov2 with Some c -> c.Data | None -> c1
        let x = k.Nngp.Data
        let fresh (a: float[]) = if inPlace then a else Pages.uninitialized a.Length
        let outN = fresh x
        let t = match k.Ntk with Some nt -> nt.Data | None -> x
        let outT = match k.Ntk with Some nt -> fresh nt.Data | None -> outN
        let withNtk = k.Ntk.IsSome
        if x.Length > 0 then
            Linalg.parallelRanges n1 (float (n2 * s) * 30.0) (fun lo hi ->
                for i in lo .. hi - 1 do
                    if s = 1 then
                        run scalar vec x t c1 i true c2 0 outN outT withNtk (i * n2) n2
                    else
                        for j in 0 .. n2 - 1 do
                            run scalar vec x t c1 (i * s) false c2 (j * s) outN outT withNtk ((i * n2 + j) * s) s)
        // A covariance entry v maps to step(v, v, v): the same vector step as the nngp entries.
        let covMap (c: Tensor) =
            let out = Pages.uninitialized c.Length
            if c.Length > 0 then run scalar vec c.Data c.Data c.Data 0 false c.Data 0 out out false 0 c.Length
            Tensor.create c.Shape out
        { k with
            Nngp = Tensor.create k.Nngp.Shape outN
            Ntk = k.Ntk |> Option.map (fun nt -> Tensor.create nt.Shape outT)
            Cov1 = covMap k.Cov1
            Cov2 = k.Cov2 |> Option.map covMap }

    // ---------------------------------------------------------------------------------------------
    // Vector twins of the scalar steps (see each scalar step for the maths and the paper).

    /// Erf with its input scale b² and output scale a², shift c² fused: see <c>Elementwise.erfStep</c>.
    let inline erf (a2: float) (b2: float) (c2: float) (x: V) (v1: V) (v2: V) =
        let twoOverPi = 2.0 / Math.PI
        let vb2, va2, vc2 = splat b2, splat a2, splat c2
        let vdot = splat (2.0 * twoOverPi * (a2 * b2))
        let x = x * vb2
        let one = splat 1.0
        let two = splat 2.0
        let sq = sqrt0 ((one + two * (v1 * vb2)) * (one + two * (v2 * vb2)) - splat 4.0 * x * x)
        struct (splat twoOverPi * atan2Right (two * x) sq * va2 + vc2, vdot / sq)

    /// Gelu: see <c>Elementwise.geluStep</c>.
    let inline gelu (x: V) (v1: V) (v2: V) =
        let one = splat 1.0
        let twoPi = splat (2.0 * Math.PI)
        let prod = v1 * v2
        let prodP1 = (v1 + one) * (v2 + one)
        let delta2 = prodP1 - x * x
        let delta = sqrt0 delta2
        let angle = atan2Right x delta
        let nngp = ((x * x + prod * delta2) / (prodP1 * delta) + x * angle) / twoPi + splat 0.25 * x
        let first = (one / delta2 + (one - prod) / prodP1 + one) * x / delta / twoPi
        struct (nngp, first + splat 0.25 + angle / twoPi)

    /// Sin(a, b, c): see <c>Elementwise.sinStep</c>.
    let inline sin (halfA2: float) (b2: float) (cos2c: float) (x: V) (v1: V) (v2: V) =
        let h, vb2, vc = splat halfA2, splat b2, splat cos2c
        let hb2 = splat (halfA2 * b2)
        let sum = v1 + v2
        let s1 = Vector256.Exp(vb2 * (splat -0.5 * sum + x))
        let s2 = Vector256.Exp(vb2 * (splat -0.5 * sum - x)) * vc
        struct (h * (s1 - s2), hb2 * (s1 + s2))

    /// E[u1^d u2^d] (Isserlis), d ≤ 5; see <c>Elementwise.monomialMoment</c> (x⁴ as (x²)² here).
    let inline monomialMoment (degree: int) (x: V) (p: V) =
        match degree with
        | -1 -> V.Zero
        | 0 -> splat 1.0
        | 1 -> x
        | 2 -> splat 2.0 * x * x + p
        | 3 -> splat 6.0 * x * x * x + splat 9.0 * x * p
        | 4 -> let x2 = x * x in splat 3.0 * (splat 8.0 * (x2 * x2) + splat 3.0 * p * (splat 8.0 * x * x + p))
        | _ -> let x2 = x * x in splat 15.0 * x * (splat 8.0 * (x2 * x2) + splat 5.0 * p * (splat 8.0 * x * x + splat 3.0 * p))

    /// Monomial(d): nngp' = E[u1^d u2^d], σ̇ = d²·E[u1^(d−1) u2^(d−1)].
    let inline monomial (degree: int) (x: V) (v1: V) (v2: V) =
        let d2 = splat (float (degree * degree))
        let p = v1 * v2
        struct (monomialMoment degree x p, d2 * monomialMoment (degree - 1) x p)

    /// Exp(a, b): see <c>ElementwiseClosedForms.exp</c>.
    let inline exp (a: float) (b: float) (x: V) (v1: V) (v2: V) =
        let a2, b2 = a * a, b * b
        let va2, vb2, va2b2 = splat a2, splat b2, splat (a2 * b2)
        let e = Vector256.Exp(vb2 * (splat 0.5 * (v1 + v2) + x))
        struct (va2 * e, va2b2 * e)

    /// Gaussian(a, b): see <c>ElementwiseClosedForms.gaussian</c>.
    let inline gaussian (a: float) (b: float) (x: V) (v1: V) (v2: V) =
        let a2, f = a * a, 4.0 * b * b
        let va2, vf, vb2, va2f = splat a2, splat f, splat (2.0 * b), splat (a2 * f)
        let one = splat 1.0
        let det = sqrt0 ((one - vb2 * v1) * (one - vb2 * v2) - vf * x * x)
        struct (va2 / det, va2f * x / (det * det * det))

    /// Rbf(γ): see <c>ElementwiseClosedForms.rbf</c>.
    let inline rbf (gamma: float) (x: V) (v1: V) (v2: V) =
        let g, g2 = splat gamma, splat (2.0 * gamma)
        let e = Vector256.Exp(g * (splat 2.0 * x - v1 - v2))
        struct (e, g2 * e)

    /// ExpNormalized: see <c>ElementwiseClosedForms.expNormalized</c>.
    let inline expNormalized (s: ExpNormalizedSpec) (x: V) (v1: V) (v2: V) =
        let g, shift, clip = splat s.Gamma, splat s.Shift, s.DoClip
        let p = Vector256.Sqrt(Vector256.Max(v1 * v2, splat 1e-30))
        let r = x / p
        let r = if clip then Vector256.Min(Vector256.Max(r, splat -1.0), splat 1.0) else r
        let e = Vector256.Exp(g * (r + shift))
        struct (p * e, g * e)

    /// Sign: 1 − 2θ/π, σ̇ = 0; see <c>ElementwiseClosedForms.sign</c> (θ = atan2Pos(√(q1q2 − c²), c)).
    let inline sign (x: V) (v1: V) (v2: V) =
        let theta = atan2Pos (sqrt0 (v1 * v2 - x * x)) x
        struct (splat 1.0 - splat 2.0 * theta / splat Math.PI, V.Zero)

    /// Gabor: see <c>ElementwiseClosedForms.gabor</c> (D^{5/2} as D²·√D here).
    let inline gabor (x: V) (v1: V) (v2: V) =
        let one, two, four = splat 1.0, splat 2.0, splat 4.0
        let sum, prod = v1 + v2, v1 * v2
        let diff = four * (prod - x * x)
        let denom = two * sum + diff + one
        let num = sum + diff + two * x
        let expLeft = Vector256.Exp(-num / (two * denom))
        let y = two * x / denom
        let expRight = Vector256.Exp y
        let series = y * (one + y * (splat 0.5 + y / splat 6.0))
        let expm1 = Vector256.ConditionalSelect(Vector256.LessThan(Vector256.Abs y, splat 1e-5), series, expRight - one)
        let shared = one + two * sum + four * (x * x + prod)
        let diffTerm = four * x * (diff + splat 3.0 * sum + two)
        let sqrtD = Vector256.Sqrt denom
        let tDot = expLeft * ((shared - diffTerm) + expRight * (shared + diffTerm)) / (denom * denom * sqrtD)
        struct (expLeft * expm1 / (two * sqrtD), tDot / two)

    /// x^n for n ≥ 0 by binary powering.
    let inline powN (x: V) (n: int) =
        let mutable result = splat 1.0
        let mutable b = x
        let mutable e = n
        while e > 0 do
            if e &&& 1 = 1 then result <- result * b
            b <- b * b
            e <- e >>> 1
        result

    /// Hermite(n): nngp' = cⁿ, σ̇ = n·c^{n−1}; see <c>ElementwiseClosedForms.hermite</c>.
    let inline hermite (n: int) (x: V) (_: V) (_: V) =
        let vn = splat (float n)
        if n = 0 then struct (splat 1.0, V.Zero) else struct (powN x n, vn * powN x (n - 1))

    /// Polynomial: Σ_l c^l·s_l(q1)s_l(q2)/l! with the weights of <c>ElementwiseClosedForms.polynomialWeights</c>,
    /// the same Horner and sums as the scalar step.
    let inline polynomial (w: float[][]) (x: V) (v1: V) (v2: V) =
        let n = w.Length
        let mutable nngp = V.Zero
        let mutable dot = V.Zero
        let mutable cl = splat 1.0
        let mutable clm1 = V.Zero
        for l in 0 .. n - 1 do
            let ws = w[l]
            let mutable h1 = V.Zero
            let mutable h2 = V.Zero
            for i in ws.Length - 1 .. -1 .. 0 do
                let wi = splat ws[i]
                h1 <- h1 * v1 + wi
                h2 <- h2 * v2 + wi
            let tt = h1 * h2
            nngp <- nngp + cl * tt
            if l >= 1 then dot <- dot + splat (float l) * clm1 * tt
            clm1 <- cl
            cl <- cl * x
        struct (nngp, dot)

    /// RectifiedMonomial(n): see <c>ElementwiseClosedForms.rectifiedMonomial</c> (Cho & Saul's J_n by its
    /// recurrence, cos θ and sin θ by <c>Vector256.SinCos</c>). Lanes with a zero variance product (E[φ(u)]·E[φ(v)]
    /// there) take the scalar step.
    let inline rectifiedMonomial (n: int) (scalar: float -> float -> float -> struct (float * float)) (x: V) (v1: V) (v2: V) =
        let prod = v1 * v2
        let struct (nn, dot) =
            let theta = atan2Pos (sqrt0 (prod - x * x)) x
            let struct (st, ct) = Vector256.SinCos theta
            let inv2Pi = splat (1.0 / (2.0 * Math.PI))
            let piMinus = splat Math.PI - theta
            if n = 0 then struct (inv2Pi * piMinus, V.Zero)
            else
                let s = Vector256.Sqrt prod
                let mutable jm2 = piMinus
                let mutable jm1 = st + piMinus * ct
                for k in 2 .. n do
                    let j = splat (float (2 * k - 1)) * ct * jm1 + splat (float ((k - 1) * (k - 1))) * st * st * jm2
                    jm2 <- jm1
                    jm1 <- j
                let sn1 = powN s (n - 1)
                struct (sn1 * s * inv2Pi * jm1, splat (float (n * n)) * sn1 * inv2Pi * jm2)
        if not (Vector256.EqualsAny(prod, V.Zero)) then struct (nn, dot)
        else
            let zero = Vector256.Equals(prod, V.Zero)
            // Lanes with q1q2 = 0 take the scalar step (E[φ(u)]·E[φ(v)]); the others keep the vector values.
            let lane (i: int) (v: V) (pick: struct (float * float) -> float) =
                if zero.GetElement i = 0.0 then v.GetElement i else pick (scalar (x.GetElement i) (v1.GetElement i) (v2.GetElement i))
            let fix (v: V) (pick: struct (float * float) -> float) = Vector256.Create(lane 0 v pick, lane 1 v pick, lane 2 v pick, lane 3 v pick)
            struct (fix nn (fun (struct (a, _)) -> a), fix dot (fun (struct (_, d)) -> d))
