/// The finite-width tools: Empirical.kernelFn's trace_axes / diagonal_axes against a Jacobian written by hand,
/// Taylor.linearize / taylorExpand against the network (orders of the error at two ε), and MonteCarlo.computeWith
/// against the analytic kernels (error within a derived multiple of σ/√n) and against itself (list-valued counts,
/// parallelism).
module NeuralTangents.Tests.FiniteToolsTests

open System
open System.Threading
open Expecto
open NeuralTangents
open NeuralTangents.Tests.TestUtil

// ---- Empirical kernels against a hand-written Jacobian --------------------------------------------------------

let private d1, c = 4, 3 // input features, outputs
let private w = 5 // hidden width
let private s1, sb1, s2, sb2 = 1.3, 0.4, 0.9, 0.2

/// Dense(5, 1.3, 0.4) → Dense(3, 0.9, 0.2), ntk parameterization, no nonlinearity: f = s2/√5·h·W2 + sb2·b2 with
/// h = s1/√4·x·W1 + sb1·b1.
let private linearNet = Stax.serial [ Stax.dense w s1 (Some sb1); Stax.dense c s2 (Some sb2) ]

let private paramsOf (p: Params) =
    match p with
    | Branches [ Leaf [ w1; b1 ]; Leaf [ w2; b2 ] ] -> w1, b1, w2, b2
    | _ -> failwith "unexpected parameter tree"

/// Hidden activations and outputs of one input row, by the formulas above.
let private forward (p: Params) (x: float[]) =
    let w1, b1, w2, b2 = paramsOf p
    let h = Array.init w (fun k -> s1 / sqrt (float d1) * Array.sum (Array.init d1 (fun l -> x[l] * w1.Data[l * w + k])) + sb1 * b1.Data[k])
    let f = Array.init c (fun o -> s2 / sqrt (float w) * Array.sum (Array.init w (fun k -> h[k] * w2.Data[k * c + o])) + sb2 * b2.Data[o])
    h, f

/// ∂f_o(x)/∂θ in the order of Params.toVector (W1, b1, W2, b2), from the chain rule by hand.
let private jacobianRow (p: Params) (x: float[]) (o: int) =
    let _, _, w2, _ = paramsOf p
    let h, _ = forward p x
    let a = s2 / sqrt (float w)
    [| for l in 0 .. d1 - 1 do
         for k in 0 .. w - 1 -> a * w2.Data[k * c + o] * s1 / sqrt (float d1) * x[l]
       for k in 0 .. w - 1 -> a * w2.Data[k * c + o] * sb1
       for k in 0 .. w - 1 do
         for o' in 0 .. c - 1 -> if o' = o then a * h[k] else 0.0
       for o' in 0 .. c - 1 -> if o' = o then sb2 else 0.0 |]

let private rows (x: Tensor) = Array.init x.Shape[0] (fun i -> Array.sub x.Data (i * x.Shape[1]) x.Shape[1])

let private dot (a: float[]) (b: float[]) = Array.fold2 (fun s u v -> s + u * v) 0.0 a b

/// The (N1, N2, C, C) kernel entries k i j o o' of the reference.
let private referenceFull (entry: int -> int -> int -> int -> float) n1 n2 =
    Array.init (n1 * n2 * c * c) (fun flat ->
        let o' = flat % c
        let o = (flat / c) % c
        let j = (flat / (c * c)) % n2
        let i = flat / (c * c * n2)
        entry i j o o')

let private empiricalTests =
    let x1 = randomTensor 11 3 d1
    let x2 = randomTensor 12 2 d1
    let _, p = InitFn.init 5 linearNet x1.Shape
    let ntkEntry (xa: Tensor) (xb: Tensor) i j o o' =
        let ra, rb = rows xa, rows xb
        dot (jacobianRow p ra[i] o) (jacobianRow p rb[j] o')
    let nngpEntry (xa: Tensor) (xb: Tensor) i j o o' =
        let ra, rb = rows xa, rows xb
        let fa, fb = snd (forward p ra[i]), snd (forward p rb[j])
        fa[o] * fb[o']
    let kernel trace diag xa xb get = Empirical.kernelFn linearNet trace diag xa xb get p
    let check (what: string) (expectedShape: int[]) (expected: float[]) (actual: Tensor) =
        if actual.Shape <> expectedShape then failtestf "%s: shape %A, expected %A" what actual.Shape expectedShape
        assertClose what 1e-13 expected actual.Data
    testList "empirical kernel" [
        testCase "a LayerNorm over the batch axis normalises the whole batch, as the forward pass does" <| fun () ->
            // Examples were recorded one at a time when no key was given, so LayerNorm(axis [0, -1]) normalised each
            // example alone (NNGP[0, 0] 0.2167 against 0.01874). Expected: f(x)·f(x)ᵀ/C of the batch's forward pass.
            let net = Stax.serial [ Stax.dense 4 1.0 (Some 0.1); Stax.layerNorm [ 0; -1 ] 1e-12 0 -1; Stax.dense 2 1.0 None ]
            let x = Tensor.create [| 3; 3 |] [| 0.1; 0.2; 0.3; -0.5; 0.4; 1.0; 0.7; -0.2; 0.05 |]
            let _, p = InitFn.init 0 net x.Shape
            let y = ApplyFn.apply net p x
            let expected = Array.init 9 (fun ij -> let i, j = ij / 3, ij % 3 in (y.Data[i * 2] * y.Data[j * 2] + y.Data[i * 2 + 1] * y.Data[j * 2 + 1]) / 2.0)
            assertClose "nngp" 1e-14 expected (Empirical.nngp net p x None).Data
        testCase "the hand-written forward pass is the network's" <| fun () ->
            let y = ApplyFn.apply linearNet p x1
            assertClose "f" 1e-14 (rows x1 |> Array.collect (fun r -> snd (forward p r))) y.Data

        testCase "trace_axes=(), diagonal_axes=(): the full (N1, N2, C, C) kernels" <| fun () ->
            let nngp, ntk = kernel [||] [||] x1 (Some x2) Both
            check "ntk" [| 3; 2; c; c |] (referenceFull (ntkEntry x1 x2) 3 2) ntk.Value
            check "nngp" [| 3; 2; c; c |] (referenceFull (nngpEntry x1 x2) 3 2) nngp.Value

        testCase "default trace_axes=(-1,): (N1, N2), the mean over the output channel" <| fun () ->
            let nngp, ntk = kernel [| -1 |] [||] x1 (Some x2) Both
            let traced entry = Array.init 6 (fun f -> (List.sum [ for o in 0 .. c - 1 -> entry (f / 2) (f % 2) o o ]) / float c)
            check "ntk" [| 3; 2 |] (traced (ntkEntry x1 x2)) ntk.Value
            check "nngp" [| 3; 2 |] (traced (nngpEntry x1 x2)) nngp.Value
            // and the existing (N, C)-only Empirical.kernels agree
            let n0, t0 = Empirical.kernels linearNet p x1 (Some x2)
            assertClose "Empirical.kernels ntk" 1e-14 t0.Data ntk.Value.Data
            assertClose "Empirical.kernels nngp" 1e-14 n0.Data nngp.Value.Data

        testCase "diagonal_axes=(0,), trace_axes=(): (N, C, C), x1_i against x1_i" <| fun () ->
            let nngp, ntk = kernel [||] [| 0 |] x1 None Both
            let diag entry = Array.init (3 * c * c) (fun f -> entry (f / (c * c)) (f / (c * c)) ((f / c) % c) (f % c))
            check "ntk" [| 3; c; c |] (diag (ntkEntry x1 x1)) ntk.Value
            check "nngp" [| 3; c; c |] (diag (nngpEntry x1 x1)) nngp.Value

        testCase "diagonal_axes=(0,) with the default trace: (N,)" <| fun () ->
            let _, ntk = kernel [| -1 |] [| 0 |] x1 None Ntk
            let expected = Array.init 3 (fun i -> (List.sum [ for o in 0 .. c - 1 -> ntkEntry x1 x1 i i o o ]) / float c)
            check "ntk" [| 3 |] expected ntk.Value

        testCase "trace_axes=(0,): (C, C), the mean over the batch" <| fun () ->
            let nngp, ntk = kernel [| 0 |] [||] x1 None Both
            let expected entry = Array.init (c * c) (fun f -> (List.sum [ for i in 0 .. 2 -> entry i i (f / c) (f % c) ]) / 3.0)
            check "ntk" [| c; c |] (expected (ntkEntry x1 x1)) ntk.Value
            check "nngp" [| c; c |] (expected (nngpEntry x1 x1)) nngp.Value

        testCase "get = Nngp computes no NTK and get = Ntk no NNGP" <| fun () ->
            let n, t = kernel [| -1 |] [||] x1 None Nngp
            Expect.isSome n "nngp"
            Expect.isNone t "ntk"
            let n, t = kernel [| -1 |] [||] x1 None Ntk
            Expect.isNone n "nngp"
            Expect.isSome t "ntk"

        testCase "an axis named twice is one axis, as neural_tangents' canonicalize_axis takes the set" <| fun () ->
            // Outputs (N, C) have rank 2: trace_axes [1; -1] and diagonal_axes [0; -2] name axes 1 and 0 once each.
            let nngp, ntk = kernel [| 1; -1 |] [| 0; -2 |] x1 None Both
            let expected entry = Array.init 3 (fun i -> (List.sum [ for o in 0 .. c - 1 -> entry i i o o ]) / float c)
            check "ntk" [| 3 |] (expected (ntkEntry x1 x1)) ntk.Value
            check "nngp" [| 3 |] (expected (nngpEntry x1 x1)) nngp.Value

        testCase "bad axes are refused with the axis and the fix" <| fun () ->
            let e = throwsExactly<ArgumentException> (fun () -> kernel [| 2 |] [||] x1 None Both |> ignore)
            Expect.stringContains e.Message "axis 2 is out of range" "out of range"
            let e = throwsExactly<ArgumentException> (fun () -> kernel [| -1 |] [| 1 |] x1 None Both |> ignore)
            Expect.stringContains e.Message "both trace_axes" "traced and diagonal"
            let e = throwsExactly<ArgumentException> (fun () -> kernel [||] [| 0 |] x1 (Some x2) Both |> ignore)
            Expect.stringContains e.Message "size 3 for x1 and 2 for x2" "diagonal batch with N1 ≠ N2"
    ]

// ---- outputs whose batch axis moves: Dense(3) → Flatten(batch_axis=0, batch_axis_out=1) ----------------------

/// f(x)[c, i] = W_std/√3·Σ_l x[i, l]·W[l, c] + b_std·b[c]: the examples on output axis 1, (3, N).
let private wStdT, bStdT = 1.7, 0.6
let private transposedNet = Stax.serial [ Stax.dense 3 wStdT (Some bStdT); Stax.flattenWith 0 1 ]

let private movedAxisTests =
    let x1 = randomTensor 31 2 3
    let x2 = randomTensor 32 3 3
    let _, p = InitFn.init 9 transposedNet x1.Shape
    let wT, bT =
        match p with
        | Branches [ Leaf [ w; b ]; _ ] -> w, b
        | _ -> failwith "unexpected parameter tree"
    let row (x: Tensor) i = Array.sub x.Data (i * 3) 3
    /// f(x)[c, i] by the formula above.
    let f (x: Tensor) c i = wStdT / sqrt 3.0 * Array.sum (Array.init 3 (fun l -> (row x i)[l] * wT.Data[l * 3 + c])) + bStdT * bT.Data[c]
    /// Closed form of the NTK of this linear map: ∂f[c, i]/∂W[l, c'] = δ_cc'·W_std/√3·x_il and ∂f[c, i]/∂b[c'] =
    /// δ_cc'·b_std, so Θ[c, c', i, j] = δ_cc'·(W_std²/3·x_i·x'_j + b_std²), whatever W and b.
    let theta (xa: Tensor) (xb: Tensor) c c' i j =
        if c <> c' then 0.0 else wStdT * wStdT / 3.0 * dot (row xa i) (row xb j) + bStdT * bStdT
    let nngp (xa: Tensor) (xb: Tensor) c c' i j = f xa c i * f xb c' j
    /// Entries of the (3, 3, N1, N2) kernel, row-major.
    let full entry n1 n2 = Array.init (9 * n1 * n2) (fun k -> entry (k / (3 * n1 * n2)) ((k / (n1 * n2)) % 3) ((k / n2) % n1) (k % n2))
    let check (what: string) (shape: int[]) (expected: float[]) (actual: Tensor) =
        Expect.equal actual.Shape shape (what + ": shape")
        // sums of ≤ 4 products of O(1) numbers: round-off ~1e-15 relative
        assertClose what 1e-13 expected actual.Data
    testList "output batch axis moved by Flatten(batch_axis_out=1)" [
        testCase "the forward pass is (3, N) and the hand formula is the network's" <| fun () ->
            let y = ApplyFn.apply transposedNet p x1
            Expect.equal y.Shape [| 3; 2 |] "shape"
            assertClose "f" 1e-14 (Array.init 6 (fun k -> f x1 (k / 2) (k % 2))) y.Data

        testCase "trace_axes=(): (3, 3, 2, 2) for x2 = None and (3, 3, 2, 3) for x2, as neural_tangents' _ntk_shape" <| fun () ->
            let n, t = Empirical.kernelFn transposedNet [||] [||] x1 None Both p
            check "ntk" [| 3; 3; 2; 2 |] (full (theta x1 x1) 2 2) t.Value
            check "nngp" [| 3; 3; 2; 2 |] (full (nngp x1 x1) 2 2) n.Value
            let n, t = Empirical.kernelFn transposedNet [||] [||] x1 (Some x2) Both p
            check "ntk x2" [| 3; 3; 2; 3 |] (full (theta x1 x2) 2 3) t.Value
            check "nngp x2" [| 3; 3; 2; 3 |] (full (nngp x1 x2) 2 3) n.Value

        testCase "trace_axes=(0,) averages the channels: (N1, N2); the default (-1,) averages the examples: (3, 3)" <| fun () ->
            let t = Empirical.ntkFn transposedNet [| 0 |] [||] x1 (Some x2) p
            check "ntk over channels" [| 2; 3 |] (Array.init 6 (fun k -> theta x1 x2 0 0 (k / 3) (k % 3))) t
            let t = Empirical.ntkFn transposedNet [| -1 |] [||] x1 None p
            check "ntk over examples" [| 3; 3 |] (Array.init 9 (fun k -> (theta x1 x1 (k / 3) (k % 3) 0 0 + theta x1 x1 (k / 3) (k % 3) 1 1) / 2.0)) t
            let n = Empirical.nngpFn transposedNet [| 0 |] [| 1 |] x1 None p
            check "nngp diagonal" [| 2 |] (Array.init 2 (fun i -> (List.sum [ for c in 0 .. 2 -> nngp x1 x1 c c i i ]) / 3.0)) n

        testCase "recorded whole (a random key): the same kernels" <| fun () ->
            let ctx = { ApplyContext.Empty with Rng = Some(Rng.ofSeed 4) }
            let c1, c2 = Empirical.splitContext ctx x1 (Some x2)
            let n, t = Empirical.kernelFnWith c1 c2 transposedNet [||] [||] x1 (Some x2) Both p
            check "ntk" [| 3; 3; 2; 3 |] (full (theta x1 x2) 2 3) t.Value
            check "nngp" [| 3; 3; 2; 3 |] (full (nngp x1 x2) 2 3) n.Value

        testCase "batch_size blocks land on the output's batch axis" <| fun () ->
            let x4 = randomTensor 33 4 3
            let _, t = MonteCarlo.empiricalKernelBatched 2 [||] [||] CancellationToken.None None transposedNet p x4 None Ntk
            check "ntk blocked" [| 3; 3; 4; 4 |] (full (theta x4 x4) 4 4) t.Value
            // Monte Carlo: the NTK of a linear map does not depend on W and b, so every sample's kernel is the closed form
            let o = { MonteCarlo.options 3 [ 2 ] with BatchSize = 2; TraceAxes = [| 0 |] }
            let _, t = MonteCarlo.computeWith o transposedNet x4 None Ntk |> List.head
            check "monte carlo ntk" [| 4; 4 |] (Array.init 16 (fun k -> theta x4 x4 0 0 (k / 4) (k % 4))) t.Value

        testCase "Empirical.ntk, which needs (N, C), refuses (C, N) and names kernelFn" <| fun () ->
            let e = throwsExactly<NeuralTangentsException> (fun () -> Empirical.ntk transposedNet p x1 None |> ignore)
            Expect.stringContains e.Message "examples on axis 1" e.Message
            Expect.stringContains e.Message "Empirical.kernelFn" e.Message
    ]

// ---- linearize and taylor_expand ------------------------------------------------------------------------------

/// A smooth network (Erf), so the Taylor remainders have their textbook orders.
let private smoothNet = Stax.serial [ Stax.dense 6 1.2 (Some 0.3); Stax.erf 1.0 1.0 0.0; Stax.dense 2 1.1 (Some 0.2) ]
let private xs = randomTensor 21 3 4
let private p0 = snd (InitFn.init 7 smoothNet xs.Shape)
/// A random direction in parameter space, of unit scale per entry.
let private direction = Params.ofVector p0 (normals 8 (Params.count p0))
let private shifted (eps: float) = Params.ofVector p0 (Array.map2 (fun a v -> a + eps * v) (Params.toVector p0) (Params.toVector direction))

let private maxAbs (a: float[]) = a |> Array.map abs |> Array.max
let private remainder (f: Params -> Tensor -> Tensor) (eps: float) =
    let p = shifted eps
    maxAbs (Array.map2 (-) (ApplyFn.apply smoothNet p xs).Data (f p xs).Data)

/// Remainder of an expansion of degree k at ε and ε/2: their ratio must be 2^(k+1) up to the next order's share,
/// which at ε = 0.02 is a few per cent; we accept ±15%.
let private checkOrder (what: string) (degree: int) (f: Params -> Tensor -> Tensor) =
    let eps = 0.02
    let r1, r2 = remainder f eps, remainder f (eps / 2.0)
    let ratio = r1 / r2
    let expected = 2.0 ** float (degree + 1)
    note (sprintf "%s: remainder %.3e at ε = %g, %.3e at ε/2, ratio %.3f (expected %g)" what r1 eps r2 ratio expected)
    if not (abs (ratio / expected - 1.0) < 0.15) then
        failtestf "%s: the remainder ratio is %.3f, expected %g (order %d)" what ratio expected (degree + 1)
    // and the remainder is far below the change of f itself (first order in ε)
    let change = maxAbs (Array.map2 (-) (ApplyFn.apply smoothNet (shifted eps) xs).Data (ApplyFn.apply smoothNet p0 xs).Data)
    if not (r1 < 0.1 * change) then failtestf "%s: remainder %.3e is not small against the change %.3e" what r1 change

let private taylorTests =
    testList "taylor" [
        testCase "Dense applied with another Dense's parameters is refused, not a wider output" <| fun () ->
            let x = Tensor.create [| 5; 2 |] (Array.init 10 float)
            let _, p6 = InitFn.init 1 (Stax.dense 6 1.0 (Some 0.1)) x.Shape
            let e = throwsExactly<NeuralTangentsException> (fun () -> ApplyFn.apply (Stax.dense 3 1.0 (Some 0.1)) p6 x |> ignore)
            Expect.stringContains e.Message "W has 6 columns but this layer's width is 3" e.Message

        testCase "parameters of another structure with as many values are refused, as tree_map refuses them" <| fun () ->
            // Dense(4) on 2 features (W 2×4) and Dense(2) on 4 features (W 4×2): 8 values each, other shapes.
            let netA, netB = Stax.dense 4 1.0 None, Stax.dense 2 1.0 None
            let _, pA = InitFn.init 1 netA [| 3; 2 |]
            let _, pB = InitFn.init 1 netB [| 3; 4 |]
            Expect.equal (Params.count pA) (Params.count pB) "same number of values"
            let f = Taylor.linearize netA pA
            Expect.throwsT<ArgumentException> (fun () -> f pB (Tensor.create [| 3; 2 |] (Array.init 6 float)) |> ignore) "other shapes"
        testCase "jvp equals the central difference of f along the direction (O(h²))" <| fun () ->
            let _, jv = Taylor.jvp smoothNet p0 direction xs
            let h = 1e-4
            let fd = Array.map2 (fun a b -> (a - b) / (2.0 * h)) (ApplyFn.apply smoothNet (shifted h) xs).Data (ApplyFn.apply smoothNet (shifted -h) xs).Data
            // central difference error ~ h²·f‴/6 ≈ 1e-9 here, rounding ~ 1e-16/h = 1e-12
            assertClose "J·v" 1e-7 fd jv.Data

        testCase "linearize: remainder O(ε²) (checked at two ε)" <| fun () ->
            checkOrder "linearize" 1 (Taylor.linearize smoothNet p0)

        testCase "linearize at θ₀ is f(θ₀)" <| fun () ->
            Expect.equal (Taylor.linearize smoothNet p0 p0 xs).Data (ApplyFn.apply smoothNet p0 xs).Data "f_lin(θ₀) = f(θ₀)"

        testCase "linearize of a single Dense layer (linear in θ) is the layer, for any step" <| fun () ->
            let dense = Stax.dense 3 1.4 (Some 0.5)
            let q0 = snd (InitFn.init 3 dense xs.Shape)
            let q = snd (InitFn.init 4 dense xs.Shape)
            assertClose "f_lin = f" 1e-14 (ApplyFn.apply dense q xs).Data (Taylor.linearize dense q0 q xs).Data

        testCase "taylor_expand degree 1 is linearize, degree 0 is f(θ₀)" <| fun () ->
            let p = shifted 0.3
            Expect.equal (Taylor.taylorExpand smoothNet p0 1 p xs).Data (Taylor.linearize smoothNet p0 p xs).Data "degree 1"
            Expect.equal (Empirical.taylorExpand smoothNet p0 1 p xs).Data (Empirical.linearize smoothNet p0 p xs).Data "Empirical aliases"
            Expect.equal (Taylor.taylorExpand smoothNet p0 0 p xs).Data (ApplyFn.apply smoothNet p0 xs).Data "degree 0"

        testCase "taylor_expand degree 2: remainder O(ε³) (checked at two ε)" <| fun () ->
            checkOrder "taylor_expand 2" 2 (Taylor.taylorExpand smoothNet p0 2)

        testCase "taylor_expand degree 2 of Dense → Dense (quadratic in θ) is the network, for a large step" <| fun () ->
            let _, q0 = InitFn.init 1 linearNet xs.Shape
            let _, q = InitFn.init 2 linearNet xs.Shape
            // exact up to the fourth-order difference's rounding, ~ε_mach·|g|/h with h = 2⁻¹⁰
            assertClose "f₂ = f" 1e-10 (ApplyFn.apply linearNet q xs).Data (Taylor.taylorExpand linearNet q0 2 q xs).Data
            let lin = (Taylor.linearize linearNet q0 q xs).Data
            if relErr (ApplyFn.apply linearNet q xs).Data lin < 1e-3 then failtest "the linearization should miss the quadratic term"

        testCase "taylor_expand degree 3 is refused" <| fun () ->
            let e = throwsExactly<ArgumentException> (fun () -> Taylor.taylorExpand smoothNet p0 3 |> ignore)
            Expect.stringContains e.Message "degree 3 is not supported" "message"
    ]

// ---- Monte Carlo ------------------------------------------------------------------------------------------------

/// One hidden layer: E[empirical kernel] is the analytic kernel exactly (the hidden pre-activations are exactly
/// Gaussian and the readout averages them linearly; see MonteCarloTests), so the estimate's error is statistical.
let private mcNet = Stax.serial [ Stax.dense 64 1.4 (Some 0.3); Stax.erf 1.0 1.0 0.0; Stax.dense 2 1.1 (Some 0.2) ]
let private xm = randomTensor 31 3 4

let private monteCarloTests =
    testList "monte carlo" [
        testCase "a list of counts gives the same numbers as separate runs, at any parallelism" <| fun () ->
            // As neural_tangents (a set of counts): one estimate per distinct count, in increasing order.
            let o = MonteCarlo.options 9 [ 5; 2; 7; 5 ]
            let together = MonteCarlo.computeWith o mcNet xm None Both
            Expect.equal together.Length 3 "one estimate per distinct count"
            for (n, (nngp, ntk)) in List.zip [ 2; 5; 7 ] together do
                let alone = MonteCarlo.computeWith { o with NSamples = [ n ]; Parallelism = 1 } mcNet xm None Both |> List.head
                Expect.equal nngp.Value.Data (fst alone).Value.Data (sprintf "nngp, n = %d" n)
                Expect.equal ntk.Value.Data (snd alone).Value.Data (sprintf "ntk, n = %d" n)
            let serial = MonteCarlo.computeWith { o with Parallelism = 1 } mcNet xm None Both
            let wide = MonteCarlo.computeWith { o with Parallelism = 5 } mcNet xm None Both
            Expect.equal (serial |> List.map (fun (_, t) -> t.Value.Data)) (wide |> List.map (fun (_, t) -> t.Value.Data)) "parallelism"

        testCase "Dropout in mode 'train' needs no key from the caller, as neural_tangents draws one per sample" <| fun () ->
            let net = Stax.serial [ Stax.dense 32 1.4 (Some 0.3); Stax.relu; Stax.dropout 0.8 DropoutMode.Train; Stax.dense 2 1.1 None ]
            let o = MonteCarlo.options 3 [ 2; 4 ]
            let first = MonteCarlo.computeWith o net xm None Both
            Expect.equal first.Length 2 "two estimates"
            for nngp, ntk in first do
                Expect.isTrue (Tensor.isFinite nngp.Value && Tensor.isFinite ntk.Value) "finite"
            Expect.equal (MonteCarlo.computeWith o net xm None Both |> List.map (fun (k, _) -> k.Value.Data)) (first |> List.map (fun (k, _) -> k.Value.Data)) "reproducible for a key"
            // The masks matter: mode 'test' (no masks) gives other numbers from the same parameters.
            let test = Stax.serial [ Stax.dense 32 1.4 (Some 0.3); Stax.relu; Stax.dropout 0.8 DropoutMode.Test; Stax.dense 2 1.1 None ]
            Expect.notEqual ((MonteCarlo.computeWith o test xm None Both).Head |> fst |> Option.get).Data (first.Head |> fst |> Option.get).Data "masks drawn"

        testCase "one sample is the empirical kernel of the network drawn with the key split at 0" <| fun () ->
            let o = MonteCarlo.options 4 [ 1 ]
            let nngp, ntk = MonteCarlo.computeWith o mcNet xm None Both |> List.head
            let _, p = InitFn.initWithKey (Rng.split 0 o.Key) mcNet xm.Shape
            let en, et = Empirical.kernels mcNet p xm None
            assertClose "nngp" 1e-15 en.Data nngp.Value.Data
            assertClose "ntk" 1e-15 et.Data ntk.Value.Data
            let n2, _ = MonteCarlo.kernelFn mcNet 4 1 xm None Nngp
            Expect.equal n2.Value.Data nngp.Value.Data "kernelFn"

        testCase "the estimate converges to the analytic kernels at the 1/√n rate" <| fun () ->
            // With samples K_s (iid, mean K), the mean of n has standard error σ/√n per entry. We recover each K_s
            // from the estimates at every count (K_n = n·mean_n − (n−1)·mean_(n−1)), estimate σ from the 1024 samples,
            // and require |mean_n − K| ≤ 5·σ/√n at n = 16, 64, 256, 1024 for every entry (normal tail 5.7e-7 per
            // check; 4 counts × 12 entries: a false failure below 3e-5 for random seeds; the seed is fixed).
            let counts = [ 1 .. 1024 ]
            let est = MonteCarlo.computeWith (MonteCarlo.options 2026 counts) mcNet xm None Both |> List.toArray
            let analytic = KernelFn.compute mcNet xm None Both
            for what, pick, exact in [ "nngp", fst, analytic.Nngp; "ntk", snd, analytic.Ntk.Value ] do
                let means = est |> Array.map (fun k -> (pick k: Tensor option).Value.Data)
                let samples = Array.init 1024 (fun s -> if s = 0 then means[0] else Array.init means[0].Length (fun e -> float (s + 1) * means[s][e] - float s * means[s - 1][e]))
                let sigma = Array.init exact.Length (fun e ->
                    let m = samples |> Array.averageBy (fun k -> k[e])
                    sqrt ((samples |> Array.sumBy (fun k -> (k[e] - m) ** 2.0)) / 1023.0))
                for n in [ 16; 64; 256; 1024 ] do
                    let worst = Array.init exact.Length (fun e -> abs (means[n - 1][e] - exact.Data[e]) / (sigma[e] / sqrt (float n))) |> Array.max
                    note (sprintf "monte carlo %s: n = %4d, worst |error|/(σ/√n) = %.2f" what n worst)
                    if not (worst <= 5.0) then failtestf "%s at n = %d: error %.2f·σ/√n exceeds 5" what n worst

        testCase "progress is reported in order up to the largest count, and a cancelled token stops the pass" <| fun () ->
            let seen = Collections.Generic.List<int>()
            let o = { MonteCarlo.options 1 [ 3; 10 ] with Parallelism = 4; Progress = Some seen.Add }
            MonteCarlo.computeWith o mcNet xm None Nngp |> ignore
            Expect.equal (List.ofSeq seen) [ 4; 8; 10 ] "progress"
            use cts = new CancellationTokenSource()
            cts.Cancel()
            throwsExactly<OperationCanceledException> (fun () ->
                MonteCarlo.computeWith { o with Cancellation = cts.Token } mcNet xm None Nngp |> ignore) |> ignore

        testCase "bad counts and batch sizes are refused" <| fun () ->
            let run o = MonteCarlo.computeWith o mcNet xm None Nngp |> ignore
            let e = throwsExactly<ArgumentException> (fun () -> run (MonteCarlo.options 1 [ 2; 0 ]))
            Expect.stringContains e.Message "n_samples must be ≥ 1, got 0" "count"
            throwsExactly<ArgumentException> (fun () -> run (MonteCarlo.options 1 [])) |> ignore
            let e = throwsExactly<ArgumentException> (fun () -> run { MonteCarlo.options 1 [ 2 ] with BatchSize = 2 })
            Expect.stringContains e.Message "batch_size 2 must divide" "batch size"
    ]

[<Tests>]
let tests = testList "FiniteToolsTests" [ empiricalTests; movedAxisTests; taylorTests; monteCarloTests ]
