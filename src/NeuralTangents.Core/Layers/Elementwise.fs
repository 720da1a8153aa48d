namespace NeuralTangents.Layers

open System
open NeuralTangents
open NeuralTangents.Rules

/// The elementwise family, after neural_tangents' `stax/elementwise.py`: each nonlinearity's kernel rule, its
/// finite φ and φ', and (at the end) its definition.
module internal Elementwise =


    /// Applies a pointwise step to a kernel in any layout (neural_tangents' `_vmap_2d`): every entry of nngp,
    /// cov1 and cov2 is a covariance between an input i at position p and an input j at position q, and the step
    /// gets it with the two variances var1[i, p] and var2[j, q] read from the diagonal of cov1/cov2
    /// (`Spatial.variances`; for a full-spatial entry (h, h') these are cov1[i, h, h] and cov2[j, h', h']).
    /// The step returns (nngp', σ̇); ntk' = σ̇·ntk. Rows of the first batch axis are split across cores.
    let pointwiseAnyLayout (step: float -> float -> float -> struct (float * float)) (k: Kernel) : Kernel =
        let dims = Spatial.sizes k.DiagonalSpatial 2 k.Nngp.Shape
        let s = Array.fold (*) 1 dims
        let pIdx, qIdx = if k.DiagonalSpatial then Array.init s id, Array.init s id else Spatial.pairIndices dims
        let e = pIdx.Length
        let v1 = Spatial.variances k.DiagonalBatch k.DiagonalSpatial k.Cov1
        let v2 = match k.Cov2 with Some c -> Spatial.variances k.DiagonalBatch k.DiagonalSpatial c | None -> v1
        // One covariance tensor: rows i < na against columns j < nb (single: the one column j = i, a diagonal-batch
        // cov), with variances va of the rows and vb of the columns; t, when given, is the NTK to scale by σ̇.
        let map (x: float[]) (t: float[] option) (na: int) (nb: int) (single: bool) (va: float[]) (vb: float[]) =
            let out = Pages.uninitialized x.Length
            let dOut = t |> Option.map (fun _ -> Pages.uninitialized x.Length)
            let cols = if single then 1 else nb
            Linalg.parallelRanges na (float (cols * e) * 50.0) (fun lo hi ->
                for i in lo .. hi - 1 do
                    for jj in 0 .. cols - 1 do
                        let j = if single then i else jj
                        let row = (if single then i else i * nb + j) * e
                        for m in 0 .. e - 1 do
                            let struct (v, d) = step x[row + m] va[i * s + pIdx[m]] vb[j * s + qIdx[m]]
                            out[row + m] <- v
                            match t, dOut with
                            | Some t, Some dd -> dd[row + m] <- d * t[row + m]
                            | _ -> ())
            out, dOut
        let n1, n2 = k.Nngp.Shape[0], k.Nngp.Shape[1]
        let nngp, ntk = map k.Nngp.Data (k.Ntk |> Option.map (fun t -> t.Data)) n1 n2 false v1 v2
        let cov (c: Tensor) (v: float[]) =
            let n = c.Shape[0]
            Tensor.create c.Shape (fst (map c.Data None n n k.DiagonalBatch v v))
        { k with
            Nngp = Tensor.create k.Nngp.Shape nngp
            Ntk = ntk |> Option.map (Tensor.create k.Nngp.Shape)
            Cov1 = cov k.Cov1 v1
            Cov2 = k.Cov2 |> Option.map (fun c -> cov c v2) }

    /// `pointwise` in the diagonal-batch, diagonal-spatial layout: nngp (N1, N2, S), cov1 (N1, S), cov2 (N2, S).
    let inline pointwiseDiagonal ([<InlineIfLambda>] step: float -> float -> float -> struct (float * float)) (k: Kernel) : Kernel =
        let n1, n2 = k.Nngp.Shape[0], k.Nngp.Shape[1]
        let s = k.Nngp.Length / max 1 (n1 * n2)
        let c1 = k.Cov1.Data
        let c2 = match k.Cov2 with Some c -> c.Data | None -> c1
        let x = k.Nngp.Data
        // Every element is written below, so the buffers need no zeroing.
        let nngp = Pages.uninitialized x.Length
        let t = match k.Ntk with Some ntkT -> ntkT.Data | None -> x
        let ntk = if k.Ntk.IsSome then Pages.uninitialized x.Length else nngp
        let withNtk = k.Ntk.IsSome
        Linalg.parallelRanges n1 (float (n2 * s) * 50.0) (fun lo hi ->
            for i in lo .. hi - 1 do
                for j in 0 .. n2 - 1 do
                    let row = (i * n2 + j) * s
                    for p in 0 .. s - 1 do
                        let struct (v, d) = step x[row + p] c1[i * s + p] c2[j * s + p]
                        nngp[row + p] <- v
                        if withNtk then ntk[row + p] <- d * t[row + p])
        let covMap (c: Tensor) =
            Tensor.create c.Shape (c.Data |> Array.map (fun v -> let struct (r, _) = step v v v in r))
        { k with
            Nngp = Tensor.create k.Nngp.Shape nngp
            Ntk = k.Ntk |> Option.map (fun ntkT -> Tensor.create ntkT.Shape ntk)
            Cov1 = covMap k.Cov1
            Cov2 = k.Cov2 |> Option.map covMap }

    /// Applies a pointwise step to a kernel. In the diagonal-batch, diagonal-spatial layout — nngp (N1, N2, S),
    /// cov1 (N1, S), cov2 (N2, S) — the step is inlined into the loop (no allocation per element) and rows of N1 are
    /// split across cores; other layouts go through `pointwiseAnyLayout`. The step returns (nngp', σ̇).
    let inline pointwise ([<InlineIfLambda>] step: float -> float -> float -> struct (float * float)) (k: Kernel) : Kernel =
        if Kernel.isDiagonalLayout k then pointwiseDiagonal step k
        else pointwiseAnyLayout (fun x v1 v2 -> step x v1 v2) k

    /// sqrt clamped at 0: round-off can make a Cauchy–Schwarz gap var1·var2 − nngp² slightly negative.
    let inline private sqrt0 (v: float) = Math.Sqrt(Math.Max(v, 0.0))

    /// ABRelu, φ(u) = a·min(u,0) + b·max(u,0): the arc-cosine kernel of degree 1 (Cho & Saul 2009;
    /// arXiv:1711.09090 for the leaky case). With θ = angle between the points:
    /// nngp' = (a−b)²/(2π)·√(v1v2 − nngp²) + ((a²+b²)/2 − (a−b)²θ/(2π))·nngp,  σ̇ = (a²+b²)/2 − (a−b)²θ/(2π).
    /// In the diagonal layouts the pass is vectorised and division-free (<c>SimdNorm.abReluAffinePass</c>: θ from
    /// the unit vector (x, √(v1v2 − x²))/√(v1v2) with r = 1/√v per input, within 2 ulp of atan2), with an optional
    /// Dense map in front computed as the Dense rule computes it (so Dense → ABRelu fused, and the fused MLP executor
    /// <c>Rules.DenseStack</c>, give this rule's bits); <c>kd</c> carries the variances the activation sees. With
    /// <c>inPlace</c> the pass overwrites k's nngp/ntk buffers (only when the interpreter owns them).
    /// Other layouts take the scalar step (`pointwiseAnyLayout`, atan2) after the Dense map: the vectorised pass
    /// reads contiguous runs of positions with per-position variances, which the full layout's (p, q) pairs do not
    /// have.
    let private abReluWith (inPlace: bool) (densePre: Simd.DensePre voption) (spec: ABReluSpec) (k: Kernel) (kd: Kernel) =
        let pre = match densePre with ValueSome p -> p | ValueNone -> Simd.identity
        let a, b = spec.A, spec.B
        let factor = (a - b) * (a - b) / (2.0 * Math.PI)
        let half = (a * a + b * b) / 2.0
        if not (Kernel.isDiagonalLayout k) then
            let kPre =
                if densePre.IsNone then kd
                else
                    let nngp = Pages.uninitialized k.Nngp.Length
                    let ntk = k.Ntk |> Option.map (fun t -> Pages.uninitialized t.Length)
                    Simd.densePass pre.W2 pre.B2 pre.FromOut pre.CN pre.CB k.Nngp.Data (k.Ntk |> Option.map (fun t -> t.Data)) nngp ntk
                    { kd with
                        Nngp = Tensor.create k.Nngp.Shape nngp
                        Ntk = ntk |> Option.map (Tensor.create k.Nngp.Shape) }
            pointwiseAnyLayout (fun x v1 v2 -> Simd.abReluScalar factor half x v1 v2) kPre
        else
            let n1, n2 = k.Nngp.Shape[0], k.Nngp.Shape[1]
            let s = k.Nngp.Length / max 1 (n1 * n2)
            let c1 = kd.Cov1.Data
            let c2 = match kd.Cov2 with Some c -> c.Data | None -> c1
            let fresh (t: Tensor) = if inPlace then t.Data else Pages.uninitialized t.Length
            let nngp = fresh k.Nngp
            let ntk = k.Ntk |> Option.map fresh
            let r1 = SimdNorm.inverseSqrt c1
            let r2 = if obj.ReferenceEquals(c1, c2) then r1 else SimdNorm.inverseSqrt c2
            SimdNorm.abReluAffinePass densePre factor half n1 n2 s k.Nngp.Data (k.Ntk |> Option.map (fun t -> t.Data)) c1 r1 c2 r2 nngp ntk
            // atan2(0, 0) is taken as π/2 (zero-variance inputs), as neural_tangents does; atan2Pos does so.
            let covMap (c: Tensor) =
                Tensor.create c.Shape (c.Data |> Array.map (fun v -> let struct (r, _) = Simd.abReluScalar factor half v v v in r))
            { kd with
                Nngp = Tensor.create k.Nngp.Shape nngp
                Ntk = Option.map2 (fun (t: Tensor) d -> Tensor.create t.Shape d) k.Ntk ntk
                Cov1 = covMap kd.Cov1
                Cov2 = kd.Cov2 |> Option.map covMap }

    /// ABRelu on its own (see <c>abReluWith</c>).
    let abReluKernel (inPlace: bool) (spec: ABReluSpec) (k: Kernel) = abReluWith inPlace ValueNone spec k k

    /// Dense followed by ABRelu in one pass over the big arrays: the same numbers as the two rules in sequence
    /// (the Dense map is applied to each element as it is loaded). Returns the kernel after the activation.
    let denseAbRelu (inPlace: bool) (d: DenseSpec) (spec: ABReluSpec) (k: Kernel) =
        if k.Mask1.IsSome || k.Mask2.IsSome then
            // Masked: Dense's own rule (it remasks), then ABRelu's (identity mask, no remask).
            abReluKernel false spec ((Linear.dense d).Kernel false k)
        else
        abReluWith inPlace (ValueSome(Linear.densePre d k)) spec k (Linear.denseMeta d k)

    /// Erf, φ(u) = a·erf(b·u) + c: Williams' arcsine kernel (Williams 1997). With the input covariances scaled
    /// by b² (x = b²·nngp, w = b²·v): nngp' = a²·(2/π)·asin(2x / √((1+2w1)(1+2w2))) + c², written with atan2 as
    /// (2/π)·atan2(2x, √((1+2w1)(1+2w2) − 4x²)); σ̇ = a²b²·(4/π)/√((1+2w1)(1+2w2) − 4x²) (the NTK is scaled by a²b²,
    /// not shifted). a2 = a², b2 = b², c2 = c²; the vector twin is <c>ElementwiseSimd.erf</c>.
    let erfStep (a2: float) (b2: float) (c2: float) (x: float) (v1: float) (v2: float) =
        let twoOverPi = 2.0 / Math.PI
        let x = x * b2
        let sq = sqrt0 ((1.0 + 2.0 * (v1 * b2)) * (1.0 + 2.0 * (v2 * b2)) - 4.0 * x * x)
        struct (twoOverPi * Math.Atan2(2.0 * x, sq) * a2 + c2, 2.0 * twoOverPi * (a2 * b2) / sq)

    /// Gelu, φ(u) = u·Φ(u) (arXiv:2002.08517), neural_tangents' closed form for NNGP and σ̇ (vector twin
    /// <c>ElementwiseSimd.gelu</c>).
    let geluStep (x: float) (v1: float) (v2: float) =
        let twoPi = 2.0 * Math.PI
        let prod = v1 * v2
        let prodP1 = (v1 + 1.0) * (v2 + 1.0)
        let delta2 = prodP1 - x * x
        let delta = sqrt0 delta2
        let angle = Math.Atan2(x, delta)
        let nngp = ((x * x + prod * delta2) / (prodP1 * delta) + x * angle) / twoPi + 0.25 * x
        let first = (1.0 / delta2 + (1.0 - prod) / prodP1 + 1.0) * x / delta / twoPi
        struct (nngp, first + 0.25 + angle / twoPi)

    /// Sin, φ(u) = a·sin(b·u + c): E[φ(u1)φ(u2)] = a²/2·(e^{b²(−Σ/2 + nngp)} − e^{b²(−Σ/2 − nngp)}·cos 2c),
    /// Σ = v1 + v2; σ̇ = a²b²/2·(the same two terms summed). halfA2 = a²/2, b2 = b², cos2c = cos 2c; the vector
    /// twin is <c>ElementwiseSimd.sin</c>.
    let sinStep (halfA2: float) (b2: float) (cos2c: float) (x: float) (v1: float) (v2: float) =
        let sum = v1 + v2
        let s1 = Math.Exp(b2 * (-0.5 * sum + x))
        let s2 = Math.Exp(b2 * (-0.5 * sum - x)) * cos2c
        struct (halfA2 * (s1 - s2), halfA2 * b2 * (s1 + s2))

    /// E[u1^d u2^d] for jointly Gaussian (u1, u2) with covariance x and variance product p = v1·v2 (Isserlis).
    let private monomialMoment (degree: int) (x: float) (p: float) =
        match degree with
        | -1 -> 0.0
        | 0 -> 1.0
        | 1 -> x
        | 2 -> 2.0 * x * x + p
        | 3 -> 6.0 * x * x * x + 9.0 * x * p
        | 4 -> 3.0 * (8.0 * x ** 4.0 + 3.0 * p * (8.0 * x * x + p))
        | 5 -> 15.0 * x * (8.0 * x ** 4.0 + 5.0 * p * (8.0 * x * x + 3.0 * p))
        | d -> invalidArg "degree" $"Monomial: degree must be in 0..5, got {string d}"

    /// Monomial, φ(u) = u^d: nngp' = E[u1^d u2^d], σ̇ = d²·E[u1^(d−1) u2^(d−1)] (vector twin
    /// <c>ElementwiseSimd.monomial</c>).
    let monomialStep (degree: int) (x: float) (v1: float) (v2: float) =
        let p = v1 * v2
        struct (monomialMoment degree x p, float (degree * degree) * monomialMoment (degree - 1) x p)

    /// A pointwise step as a fused pass: vectorised (<c>ElementwiseSimd.pass</c>) in the diagonal-batch,
    /// diagonal-spatial layout, where each run of positions has its own variances; the scalar step through
    /// <c>pointwiseAnyLayout</c> in the full layouts (pairs of positions). <c>inPlace</c>: the plan owns k's arrays.
    let inline vectorised (inPlace: bool) ([<InlineIfLambda>] scalar: float -> float -> float -> struct (float * float))
                          ([<InlineIfLambda>] vec: ElementwiseSimd.V -> ElementwiseSimd.V -> ElementwiseSimd.V -> struct (ElementwiseSimd.V * ElementwiseSimd.V))
                          (k: Kernel) : Kernel =
        if Kernel.isDiagonalLayout k then ElementwiseSimd.pass inPlace scalar vec k
        else pointwiseAnyLayout (fun x v1 v2 -> scalar x v1 v2) k

    /// The scalar step (c, q1, q2) ↦ (nngp', σ̇) of each activation whose kernel rule is vectorised (the twin of
    /// its vector step, used for tails and the full layouts); None for the others (ABRelu has its own pass in
    /// <c>Simd</c>; ElementwiseNumerical and custom maps run <c>pointwise</c>).
    let scalarStep (a: Activation) : (float -> float -> float -> struct (float * float)) option =
        match a with
        | Erf s -> Some(erfStep (s.A * s.A) (s.B * s.B) (s.C * s.C))
        | Gelu _ -> Some geluStep
        | Sin s -> Some(sinStep (s.A * s.A / 2.0) (s.B * s.B) (Math.Cos(2.0 * s.C)))
        | Monomial d -> Some(monomialStep d)
        | Exp s -> Some(ElementwiseClosedForms.exp s.A s.B)
        | Gaussian s -> Some(ElementwiseClosedForms.gaussian s.A s.B)
        | ExpNormalized s -> Some(ElementwiseClosedForms.expNormalized s)
        | Rbf g -> Some(ElementwiseClosedForms.rbf g)
        | Sign -> Some ElementwiseClosedForms.sign
        | Gabor -> Some ElementwiseClosedForms.gabor
        | Hermite n -> Some(ElementwiseClosedForms.hermite n)
        | Polynomial coef -> Some(ElementwiseClosedForms.polynomial coef)
        | RectifiedMonomial n -> Some(ElementwiseClosedForms.rectifiedMonomial n)
        | _ -> None

    /// The vectorised kernel rule of an activation (see <c>scalarStep</c> for which), taking the "owned" flag.
    let vectorRule (a: Activation) : (bool -> Kernel -> Kernel) option =
        match a with
        | Erf s ->
            let a2, b2, c2 = s.A * s.A, s.B * s.B, s.C * s.C
            Some(fun inPlace -> vectorised inPlace (erfStep a2 b2 c2) (fun x v1 v2 -> ElementwiseSimd.erf a2 b2 c2 x v1 v2))
        | Gelu _ -> Some(fun inPlace -> vectorised inPlace geluStep (fun x v1 v2 -> ElementwiseSimd.gelu x v1 v2))
        | Sin s ->
            let h, b2, c2 = s.A * s.A / 2.0, s.B * s.B, Math.Cos(2.0 * s.C)
            Some(fun inPlace -> vectorised inPlace (sinStep h b2 c2) (fun x v1 v2 -> ElementwiseSimd.sin h b2 c2 x v1 v2))
        | Monomial d -> Some(fun inPlace -> vectorised inPlace (monomialStep d) (fun x v1 v2 -> ElementwiseSimd.monomial d x v1 v2))
        | Exp s ->
            let st = ElementwiseClosedForms.exp s.A s.B
            Some(fun inPlace -> vectorised inPlace st (fun x v1 v2 -> ElementwiseSimd.exp s.A s.B x v1 v2))
        | Gaussian s ->
            let st = ElementwiseClosedForms.gaussian s.A s.B
            Some(fun inPlace -> vectorised inPlace st (fun x v1 v2 -> ElementwiseSimd.gaussian s.A s.B x v1 v2))
        | ExpNormalized s ->
            let st = ElementwiseClosedForms.expNormalized s
            Some(fun inPlace -> vectorised inPlace st (fun x v1 v2 -> ElementwiseSimd.expNormalized s x v1 v2))
        | Rbf g ->
            let st = ElementwiseClosedForms.rbf g
            Some(fun inPlace -> vectorised inPlace st (fun x v1 v2 -> ElementwiseSimd.rbf g x v1 v2))
        | Sign -> Some(fun inPlace -> vectorised inPlace ElementwiseClosedForms.sign (fun x v1 v2 -> ElementwiseSimd.sign x v1 v2))
        | Gabor -> Some(fun inPlace -> vectorised inPlace ElementwiseClosedForms.gabor (fun x v1 v2 -> ElementwiseSimd.gabor x v1 v2))
        | Hermite n ->
            let st = ElementwiseClosedForms.hermite n
            Some(fun inPlace -> vectorised inPlace st (fun x v1 v2 -> ElementwiseSimd.hermite n x v1 v2))
        | Polynomial coef ->
            let st = ElementwiseClosedForms.polynomial coef
            let w = ElementwiseClosedForms.polynomialWeights coef
            Some(fun inPlace -> vectorised inPlace st (fun x v1 v2 -> ElementwiseSimd.polynomial w x v1 v2))
        | RectifiedMonomial n ->
            let st = ElementwiseClosedForms.rectifiedMonomial n
            Some(fun inPlace -> vectorised inPlace st (fun x v1 v2 -> ElementwiseSimd.rectifiedMonomial n st x v1 v2))
        | _ -> None

    // ---------------------------------------------------------------------------------------------
    // Finite networks (each layer's `fn`).


    let private invSqrt2 = 1.0 / Math.Sqrt 2.0
    let private invSqrt2Pi = 1.0 / Math.Sqrt(2.0 * Math.PI)
    let private sqrt2OverPi = Math.Sqrt(2.0 / Math.PI)
    let private twoOverSqrtPi = 2.0 / Math.Sqrt Math.PI

    /// φ applied to every entry.
    let apply (phi: float -> float) (x: Tensor) = Tensor.create x.Shape (Array.map phi x.Data)

    /// ct·φ'(x), the cotangent of the input.
    let backward (dphi: float -> float) (x: Tensor) (ct: Tensor) =
        Tensor.create x.Shape (Array.map2 (fun v c -> c * dphi v) x.Data ct.Data)

    // ---------------------------------------------------------------------------------------------
    // The definitions: every activation, defined once (its name, kernel rule, φ and φ').
    // ABRelu's derivative at 0 is (a+b)/2, the average of the one-sided slopes, as JAX's min/max gradients give.
    // Gelu exact: φ = x·Φ(x), φ' = Φ(x) + x·ϕ(x); approximate (jax.nn.gelu's tanh form):
    // φ = x/2·(1 + tanh(√(2/π)(x + 0.044715x³))).

    /// Names of the activations neural_tangents decorates with remask_kernel=False.
    let private keepZeroNames =
        [ "ABRelu"; "Relu"; "Abs"; "LeakyRelu"; "Gabor"; "Gelu"; "Sign"; "Monomial"; "RectifiedMonomial"; "Polynomial" ]

    /// Gaussian with b > 0: E[φ(u)φ(v)] = a²/√det(I − 2bΣ) for the 2×2 covariance Σ of (u, v) exists only while
    /// I − 2bΣ is positive definite. The tightest case is u = v (E[φ(u)²] = a²/√(1 − 4bq)), so the domain is
    /// 4·b·q < 1 for every variance q entering the layer; pairs then follow, as Σ's largest eigenvalue is at most
    /// q1 + q2. Beyond it the rule's determinant is clamped to 0 and the kernel is +inf (neural_tangents clamps it to
    /// 1e-30 and returns ~1e15): refused here with the numbers. Every entry of cov1/cov2 is at most the largest
    /// variance in magnitude (Cauchy–Schwarz), so their largest magnitude is the largest q.
    let private gaussianDomain (s: GaussianSpec) (k: Kernel) =
        let largest (t: Tensor) = if t.Data.Length = 0 then 0.0 else System.Numerics.Tensors.TensorPrimitives.MaxMagnitude(ReadOnlySpan t.Data)
        let q = max (largest k.Cov1) (k.Cov2 |> Option.map largest |> Option.defaultValue 0.0)
        if 4.0 * s.B * q >= 1.0 then
            raise (NeuralTangentsException(
                ("Gaussian(a=" + Show.g s.A + ", b=" + Show.g s.B + "): with b > 0 the kernel of a·exp(b·x²) is finite only while every variance q of the layer's input is below 1/(4·b) = " + (Show.g (0.25 / s.B)) + ", but the largest is " + Show.g q + " (4·b·q = " + (Show.g (4.0 * s.B * q)) + "); use b ≤ 0 (neural_tangents' default is -1) or a smaller b, or shrink the inputs or the W_std before this layer")))

    /// A nonlinearity's definition from its kernel rule (given a Gaussian input kernel; <c>true</c> when it may
    /// overwrite the input's nngp/ntk), φ and φ'. It has no parameters and keeps the shape.
    let private activation (name: string) (args: (string * ArgValue) list) (rule: bool -> Kernel -> Kernel)
                           (phi: float -> float) (dphi: float -> float) : LayerDef =
        // neural_tangents' supports_masking(remask_kernel=…): False for the activations with φ(0) = 0 by its
        // decorators (the ABRelu family, Gabor, Gelu, Sign, Monomial, RectifiedMonomial, Polynomial), True otherwise.
        let mask = Masking.identity (not (List.contains name keepZeroNames))
        { Name = name
          Args = args
          // neural_tangents' _elementwise: @requires(diagonal_spatial=Diagonal()).
          Requires = { BatchAxis = None; ChannelAxis = None; Resets = false; DiagonalBatch = None; DiagonalSpatial = Some Diagonal.defaults }
          Kernel =
            Masking.kernel name mask (fun inPlace k ->
                if not k.IsGaussian then
                    raise (NeuralTangentsException(
                        $"{name}: the input to an activation must be Gaussian, i.e. a Dense (affine) layer is required before it"))
                { rule inPlace k with IsGaussian = false })
          Init = fun _ shape -> shape, Params.none
          Apply = fun _ _ x -> apply phi x
          Vjp = fun _ _ x ct -> backward dphi x ct
          ParamVjp = fun _ _ _ _ -> Params.none
          GradDot = None
          // The Jacobian is diagonal, φ'(x), so the tangent is dx·φ'(x), the same product as the cotangent.
          Jvp = Tangent(fun _ _ _ x dx -> backward dphi x dx)
          Mask = mask }

    /// neural_tangents' name and arguments of an ABRelu: Relu, Abs and LeakyRelu(alpha) are its special cases.
    let private abReluNamed (s: ABReluSpec) =
        match s with
        | { A = 0.0; B = 1.0 } -> "Relu", []
        | { A = -1.0; B = 1.0 } -> "Abs", []
        | { A = a; B = 1.0 } -> "LeakyRelu", [ "alpha", FloatArg a ]
        | { A = a; B = b } -> "ABRelu", [ "a", FloatArg a; "b", FloatArg b ]

    // ---------------------------------------------------------------------------------------------
    // Construction: validated values (the F# constructors in Stax and the JSON readers below both use them).

    let private finite (name: string) (v: float) =
        if not (Double.IsFinite v) then invalidArg name $"must be finite, got {Show.g v}"

    /// a·min(x, 0) + b·max(x, 0), a and b finite.
    let abRelu (a: float) (b: float) =
        finite "a" a
        finite "b" b
        ABRelu { A = a; B = b }

    /// ABRelu(alpha, 1).
    let leakyRelu (alpha: float) =
        finite "alpha" alpha
        ABRelu { A = alpha; B = 1.0 }

    /// a·erf(b·x) + c, all finite.
    let erf (a: float) (b: float) (c: float) =
        finite "a" a
        finite "b" b
        finite "c" c
        Erf { A = a; B = b; C = c }

    /// neural_tangents' Sigmoid_like: 0.5·erf(x / 2.4020563531719796) + 0.5.
    let sigmoidLike = Erf { A = 0.5; B = 1.0 / 2.4020563531719796; C = 0.5 }

    /// a·sin(b·x + c), all finite.
    let sin (a: float) (b: float) (c: float) =
        finite "a" a
        finite "b" b
        finite "c" c
        Sin { A = a; B = b; C = c }

    /// a·cos(b·x + c) = Sin(a, b, c + π/2).
    let cos (a: float) (b: float) (c: float) = sin a b (c + Math.PI / 2.0)

    /// x^degree, degree in 0..5.
    let monomial (degree: int) =
        if degree < 0 || degree > 5 then invalidArg "degree" $"Monomial: must be in 0..5, got {string degree}"
        Monomial degree

    let private finiteNonNeg (name: string) (v: float) =
        if not (Double.IsFinite v) || v < 0.0 then invalidArg name $"must be finite and ≥ 0, got {Show.g v}"

    /// a·exp(b·x), a and b finite.
    let exp (a: float) (b: float) =
        finite "a" a
        finite "b" b
        Exp { A = a; B = b }

    /// a·exp(b·x²), a and b finite (the kernel is finite while (1 − 2b·q1)(1 − 2b·q2) > 4b²c², always for b ≤ 0).
    let gaussian (a: float) (b: float) =
        finite "a" a
        finite "b" b
        Gaussian { A = a; B = b }

    /// neural_tangents' ExpNormalized(gamma, shift, do_clip), gamma and shift finite.
    let expNormalized (gamma: float) (shift: float) (doClip: bool) =
        finite "gamma" gamma
        finite "shift" shift
        ExpNormalized { Gamma = gamma; Shift = shift; DoClip = doClip }

    /// √2·sin(√(2γ)·x + π/4), gamma finite and ≥ 0.
    let rbf (gamma: float) =
        finiteNonNeg "gamma" gamma
        Rbf gamma

    /// He_degree(x)/√(degree!), degree in 0..maxDegree.
    let hermite (degree: int) =
        if degree < 0 || degree > 170 then invalidArg "degree" $"Hermite: must be in 0..170 (a non-negative integer; 171! overflows), got {string degree}"
        Hermite degree

    /// (x ≥ 0)·x^degree, degree in 0..170.
    let rectifiedMonomial (degree: int) =
        if degree < 0 || degree > 170 then invalidArg "degree" $"RectifiedMonomial: must be in 0..170 (a non-negative integer), got {string degree}"
        RectifiedMonomial degree

    /// coef[0] + coef[1]·x + … , every coefficient finite, at most 171 of them.
    let polynomial (coef: float list) =
        coef |> List.iteri (fun i c -> if not (Double.IsFinite c) then invalidArg "coef" $"Polynomial: coef[{string i}] must be finite, got {Show.g c}")
        if coef.Length > 171 then invalidArg "coef" $"Polynomial: at most 171 coefficients (degree 170), got {string coef.Length}"
        Polynomial coef

    /// ElementwiseNumerical with registry names (fn, df) and deg ≥ 1 Gauss–Hermite nodes per axis.
    let elementwiseNumerical (fn: string) (deg: int) (df: string option) =
        if isNull fn then invalidArg "fn" "ElementwiseNumerical: must name an activation, got null"
        ElementwiseQuadrature.lookup "fn" fn |> ignore
        df |> Option.iter (fun d -> ElementwiseQuadrature.lookup "df" d |> ignore)
        if deg < 1 || deg > ElementwiseQuadrature.maxDeg then
            invalidArg "deg" $"ElementwiseNumerical: must be in 1..{string ElementwiseQuadrature.maxDeg}, got {string deg}"
        ElementwiseNumerical { Fn = fn; Deg = deg; Df = df }

    /// Elementwise from user functions: φ (optional), the NNGP map (c, q1, q2) ↦ E[φ(u)φ(v)] and its derivative in c.
    let custom (name: string) (fn: (float -> float) option) (dfn: (float -> float) option)
               (args: (string * string) list) (step: float -> float -> float -> struct (float * float)) =
        if String.IsNullOrWhiteSpace name then invalidArg "name" "Elementwise: the layer needs a name (for printing and errors)"
        Custom(CustomActivation(name, args, fn, dfn, step))

    let private nngpMap (what: string) (n: string) =
        match ElementwiseQuadrature.nngpMaps |> List.tryFind (fun (k, _) -> k = n) with
        | Some(_, m) -> m
        | None -> invalidArg what $"Elementwise: unknown map '{n}' (known: relu, erf)"

    /// Elementwise(fn, nngp_fn, d_nngp_fn) with named maps ("relu", "erf") and a registry name for fn.
    let elementwiseNamed (fn: string option) (nngpFn: string) (dNngpFn: string option) =
        if isNull nngpFn then invalidArg "nngp_fn" "Elementwise: must name an NNGP map (relu or erf), got null"
        nngpMap "nngp_fn" nngpFn |> ignore
        dNngpFn |> Option.iter (nngpMap "d_nngp_fn" >> ignore)
        fn |> Option.iter (ElementwiseQuadrature.lookup "fn" >> ignore)
        ElementwiseNamed { Fn = fn; NngpFn = nngpFn; DNngpFn = dNngpFn }

    /// The step of a named Elementwise: the NNGP from its map, σ̇ as the ε part of d_nngp_fn's map (or nngp_fn's).
    let private namedStep (s: ElementwiseNamedSpec) =
        let nngp = ElementwiseQuadrature.dualStep (nngpMap "nngp_fn" s.NngpFn)
        let d = ElementwiseQuadrature.dualStep (nngpMap "d_nngp_fn" (defaultArg s.DNngpFn s.NngpFn))
        fun c q1 q2 -> let struct (v, _) = nngp c q1 q2 in let struct (_, dv) = d c q1 q2 in struct (v, dv)

    /// Every activation's JSON name, accepted arguments (neural_tangents' defaults) and reader. do_stabilize is
    /// accepted and has no effect: the passes here clamp and are stable.
    let readers : ActivationReader list =
        let stabilize (a: IArgs) = a.Bool("do_stabilize", false) |> ignore
        [ { Name = "Relu"; Accepts = [ "do_stabilize" ]; Read = fun a -> stabilize a; ABRelu { A = 0.0; B = 1.0 } }
          { Name = "Abs"; Accepts = [ "do_stabilize" ]; Read = fun a -> stabilize a; ABRelu { A = -1.0; B = 1.0 } }
          { Name = "LeakyRelu"; Accepts = [ "alpha"; "do_stabilize" ]
            Read = fun a -> stabilize a; leakyRelu (a.RequiredNumber "alpha") }
          { Name = "ABRelu"; Accepts = [ "a"; "b"; "do_stabilize" ]
            Read = fun a -> stabilize a; abRelu (a.RequiredNumber "a") (a.RequiredNumber "b") }
          { Name = "Erf"; Accepts = [ "a"; "b"; "c" ]
            Read = fun a -> erf (a.Number("a", 1.0)) (a.Number("b", 1.0)) (a.Number("c", 0.0)) }
          { Name = "Sigmoid_like"; Accepts = []; Read = fun _ -> sigmoidLike }
          { Name = "Sin"; Accepts = [ "a"; "b"; "c" ]
            Read = fun a -> sin (a.Number("a", 1.0)) (a.Number("b", 1.0)) (a.Number("c", 0.0)) }
          { Name = "Cos"; Accepts = [ "a"; "b"; "c" ]
            Read = fun a -> cos (a.Number("a", 1.0)) (a.Number("b", 1.0)) (a.Number("c", 0.0)) }
          { Name = "Gelu"; Accepts = [ "approximate" ]; Read = fun a -> Gelu(a.Bool("approximate", false)) }
          { Name = "Monomial"; Accepts = [ "degree" ]; Read = fun a -> monomial (a.RequiredInt("degree", 0, 5)) }
          { Name = "Exp"; Accepts = [ "a"; "b" ]; Read = fun a -> exp (a.Number("a", 1.0)) (a.Number("b", 1.0)) }
          { Name = "Gaussian"; Accepts = [ "a"; "b" ]; Read = fun a -> gaussian (a.Number("a", 1.0)) (a.Number("b", -1.0)) }
          { Name = "ExpNormalized"; Accepts = [ "gamma"; "shift"; "do_clip" ]
            Read = fun a -> expNormalized (a.Number("gamma", 1.0)) (a.Number("shift", -1.0)) (a.Bool("do_clip", false)) }
          { Name = "Rbf"; Accepts = [ "gamma" ]; Read = fun a -> rbf (a.Number("gamma", 1.0)) }
          { Name = "Sign"; Accepts = []; Read = fun _ -> Sign }
          { Name = "Gabor"; Accepts = []; Read = fun _ -> Gabor }
          { Name = "Hermite"; Accepts = [ "degree" ]; Read = fun a -> hermite (a.RequiredInt("degree", 0, 170)) }
          { Name = "RectifiedMonomial"; Accepts = [ "degree" ]; Read = fun a -> rectifiedMonomial (a.RequiredInt("degree", 0, 170)) }
          { Name = "Polynomial"; Accepts = [ "coef" ]; Read = fun a -> polynomial (a.RequiredNumbers "coef") }
          { Name = "ElementwiseNumerical"; Accepts = [ "fn"; "deg"; "df" ]
            Read = fun a ->
                match a.OptString "fn" with
                | None -> invalidArg "fn" $"""must name an activation (one of {(String.Join(", ", ElementwiseQuadrature.names))})"""
                | Some fn -> elementwiseNumerical fn (a.RequiredInt("deg", 1, ElementwiseQuadrature.maxDeg)) (a.OptString "df") }
          { Name = "Elementwise"; Accepts = [ "fn"; "nngp_fn"; "d_nngp_fn" ]
            Read = fun a ->
                match a.OptString "nngp_fn" with
                | None -> invalidArg "nngp_fn" "must name an NNGP map (relu or erf); functions cannot travel as JSON"
                | Some m -> elementwiseNamed (a.OptString "fn") m (a.OptString "d_nngp_fn") } ]

    /// The definition of an activation.
    let define (a: Activation) : LayerDef =
        // The vectorised rule of a closed form (every case that calls this has one).
        let vrule () = match vectorRule a with Some r -> r | None -> failwith "no vectorised rule for this closed-form activation"
        match a with
        | ABRelu s ->
            let name, args = abReluNamed s
            activation name args (fun inPlace -> abReluKernel inPlace s)
                (fun x -> if x < 0.0 then s.A * x else s.B * x)
                (fun x -> if x < 0.0 then s.A elif x > 0.0 then s.B else 0.5 * (s.A + s.B))
        | Erf s ->
            activation "Erf" [ "a", FloatArg s.A; "b", FloatArg s.B; "c", FloatArg s.C ] (vrule ())
                (fun x -> s.A * MathNet.Numerics.SpecialFunctions.Erf(s.B * x) + s.C)
                (fun x -> let u = s.B * x in s.A * s.B * twoOverSqrtPi * Math.Exp(-u * u))
        | Sin s ->
            activation "Sin" [ "a", FloatArg s.A; "b", FloatArg s.B; "c", FloatArg s.C ] (vrule ())
                (fun x -> s.A * Math.Sin(s.B * x + s.C))
                (fun x -> s.A * s.B * Math.Cos(s.B * x + s.C))
        | Gelu false ->
            activation "Gelu" [ "approximate", BoolArg false ] (vrule ())
                (fun x -> 0.5 * x * (1.0 + MathNet.Numerics.SpecialFunctions.Erf(x * invSqrt2)))
                (fun x -> 0.5 * (1.0 + MathNet.Numerics.SpecialFunctions.Erf(x * invSqrt2)) + x * invSqrt2Pi * Math.Exp(-0.5 * x * x))
        | Gelu true ->
            activation "Gelu" [ "approximate", BoolArg true ] (vrule ())
                (fun x -> 0.5 * x * (1.0 + Math.Tanh(sqrt2OverPi * (x + 0.044715 * x * x * x))))
                (fun x ->
                    let t = Math.Tanh(sqrt2OverPi * (x + 0.044715 * x * x * x))
                    0.5 * (1.0 + t) + 0.5 * x * (1.0 - t * t) * sqrt2OverPi * (1.0 + 3.0 * 0.044715 * x * x))
        | Monomial d ->
            activation "Monomial" [ "degree", IntArg d ] (vrule ())
                (fun x -> Math.Pow(x, float d))
                (fun x -> if d = 0 then 0.0 else float d * Math.Pow(x, float (d - 1)))
        | Exp s ->
            activation "Exp" [ "a", FloatArg s.A; "b", FloatArg s.B ] (vrule ())
                (fun x -> s.A * Math.Exp(s.B * x))
                (fun x -> s.A * s.B * Math.Exp(s.B * x))
        | Gaussian s ->
            let rule = vrule ()
            let rule = if s.B <= 0.0 then rule else fun inPlace k -> gaussianDomain s k; rule inPlace k
            activation "Gaussian" [ "a", FloatArg s.A; "b", FloatArg s.B ] rule
                (fun x -> s.A * Math.Exp(s.B * x * x))
                (fun x -> 2.0 * s.A * s.B * x * Math.Exp(s.B * x * x))
        | ExpNormalized s ->
            let noFn _ =
                raise (NeuralTangentsException "ExpNormalized: has no finite-width function (neural_tangents raises NotImplementedError too); use it in kernel computations only")
            activation "ExpNormalized" [ "gamma", FloatArg s.Gamma; "shift", FloatArg s.Shift; "do_clip", BoolArg s.DoClip ]
                (vrule ()) noFn noFn
        | Rbf gamma ->
            let b = Math.Sqrt(2.0 * gamma)
            activation "Rbf" [ "gamma", FloatArg gamma ] (vrule ())
                (fun x -> Math.Sqrt 2.0 * Math.Sin(b * x + Math.PI / 4.0))
                (fun x -> Math.Sqrt 2.0 * b * Math.Cos(b * x + Math.PI / 4.0))
        | Sign ->
            activation "Sign" [] (vrule ()) (fun x -> float (Math.Sign x)) (fun _ -> 0.0)
        | Gabor ->
            activation "Gabor" [] (vrule ())
                (fun x -> Math.Exp(-x * x) * Math.Sin x)
                (fun x -> Math.Exp(-x * x) * (Math.Cos x - 2.0 * x * Math.Sin x))
        | Hermite n ->
            activation "Hermite" [ "degree", IntArg n ] (vrule ())
                (fun x -> let struct (v, _) = ElementwiseClosedForms.hermiteFn n x in v)
                (fun x -> let struct (_, d) = ElementwiseClosedForms.hermiteFn n x in d)
        | RectifiedMonomial n ->
            activation "RectifiedMonomial" [ "degree", IntArg n ] (vrule ())
                (fun x -> if x >= 0.0 then (if n = 0 then 1.0 else pown x n) else 0.0)
                (fun x -> if x >= 0.0 && n > 0 then float n * (if n = 1 then 1.0 else pown x (n - 1)) else 0.0)
        | Polynomial coef ->
            activation "Polynomial" [ "coef", FloatsArg coef ] (vrule ())
                (fun x -> let struct (v, _) = ElementwiseClosedForms.polynomialFn coef x in v)
                (fun x -> let struct (_, d) = ElementwiseClosedForms.polynomialFn coef x in d)
        | ElementwiseNumerical s ->
            let step, phi, dphi = ElementwiseQuadrature.numericalStep s
            let args = [ "fn", StringArg s.Fn; "deg", IntArg s.Deg ] @ (match s.Df with Some d -> [ "df", StringArg d ] | None -> [])
            activation "ElementwiseNumerical" args (fun _ -> pointwise step) phi dphi
        | ElementwiseNamed s ->
            let missing (_: float) : float =
                raise (NeuralTangentsException "Elementwise: no fn was given (JSON \"fn\": a registry name), so the finite network cannot be evaluated")
            let phi = s.Fn |> Option.map (ElementwiseQuadrature.lookup "fn")
            let opt (v: string option) = match v with Some t -> StringArg t | None -> OptFloatArg None
            activation "Elementwise" [ "fn", opt s.Fn; "nngp_fn", StringArg s.NngpFn; "d_nngp_fn", opt s.DNngpFn ]
                (fun _ -> pointwise (namedStep s))
                (match phi with Some(f, _) -> f | None -> missing) (match phi with Some(_, d) -> d | None -> missing)
        | Custom c ->
            let missing (what: string) (_: float) : float =
                raise (NeuralTangentsException $"{c.Name}: no {what} was given, so the finite network cannot be evaluated; pass fn to Elementwise")
            activation c.Name (c.Args |> List.map (fun (k, v) -> k, StringArg v)) (fun _ -> pointwise c.Step)
                (defaultArg c.Fn (missing "fn")) (defaultArg c.DFn (missing "derivative of fn"))
