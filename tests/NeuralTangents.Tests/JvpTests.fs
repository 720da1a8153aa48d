/// Forward-mode differentiation (Finite/Jvp.fs) and the call's context in the backward pass: the JVP of one network
/// per layer family against central differences and against the backward pass (⟨v, J u⟩ = ⟨Jᵀ v, u⟩); Dropout in
/// mode "train" and Aggregate with a pattern differentiated with the forward call's key and pattern (gradients vs
/// central differences, empirical NTK vs a hand derivation); linearize with a context.
module NeuralTangents.Tests.JvpTests

open System
open Expecto
open FsCheck
open FsCheck.FSharp
open NeuralTangents
open NeuralTangents.Layers
open NeuralTangents.Tests.TestUtil

let private tensorOf (seed: int) (shape: int[]) = Tensor.create shape (normals seed (Array.fold (*) 1 shape))
let private dot (u: float[]) (v: float[]) = Array.fold2 (fun acc a b -> acc + a * b) 0.0 u v
let private withKey (seed: int) = { ApplyContext.Empty with Rng = Some(Rng.ofSeed seed) }
let private withPattern (a: Tensor) = { ApplyContext.Empty with Side = Map.ofList [ "pattern", a ] }

/// A random 0/1 adjacency (n, v, v) with weights, seed-determined.
let private pattern (seed: int) (n: int) (v: int) =
    let r = Random(seed)
    Tensor.create [| n; v; v |] (Array.init (n * v * v) (fun _ -> if r.NextDouble() < 0.5 then 0.0 else 0.5 + r.NextDouble()))

let private attention (mech: AttentionMechanism) (pe: PositionalEmbedding) (linear: bool) =
    Stax.globalSelfAttentionWith
        { Stax.attentionDefaults 3 2 2 2 with
            AttentionMechanism = mech; PosEmbType = pe; LinearScaling = linear; BStd = Some 0.3
            WKeyStd = 1.1; WQueryStd = 0.9; WValueStd = 1.2; WOutStd = 0.8; WPosEmbStd = 0.7 }

/// One small network per layer family (and per variant that has its own tangent rule), its input shape and the side
/// inputs of the call.
let private zoo : (string * Layer * int[] * ApplyContext) list =
    let d = Stax.dense 5 1.3 (Some 0.4)
    let e = ApplyContext.Empty
    [ "Dense → Erf → Dense", Stax.serial [ d; Stax.erf 1.2 0.8 0.3; Stax.dense 2 1.0 (Some 0.1) ], [| 3; 4 |], e
      "Dense standard, no bias", Stax.denseWith { Stax.denseDefaults 3 with Parameterization = Parameterization.Standard; S = (2, 1) }, [| 3; 4 |], e
      "Relu, Gelu, Sin, Monomial", Stax.serial [ d; Stax.relu; Stax.dense 4 1.0 None; Stax.gelu false; Stax.sin 1.1 0.9 0.4; Stax.monomial 3 ], [| 3; 4 |], e
      "Conv SAME stride 2 → Relu → Flatten", Stax.serial [ Stax.conv 3 [ 3 ] (Some [ 2 ]) Padding.Same 1.3 (Some 0.2); Stax.relu; Stax.flatten ], [| 2; 5; 2 |], e
      "ConvTranspose", Stax.convTranspose 3 [ 3 ] (Some [ 2 ]) Padding.Same 1.2 (Some 0.3), [| 2; 3; 2 |], e
      "ConvLocal 2-D", Stax.convLocal 2 [ 2; 3 ] (Some [ 2; 1 ]) Padding.Circular 1.0 (Some 0.5), [| 2; 3; 3; 2 |], e
      "AvgPool, SumPool, GlobalAvgPool", Stax.serial [ Stax.avgPool [ 2 ] None Padding.Same; Stax.sumPool [ 2 ] None Padding.Valid; Stax.globalAvgPool ], [| 2; 5; 3 |], e
      "LayerNorm over channels, then spatial", Stax.serial [ d; Stax.layerNorm [ -1 ] 1e-3 0 -1; Stax.layerNorm [ 1 ] 0.5 0 -1 ], [| 2; 3; 4 |], e
      "Index and ImageResize", Stax.serial [ Stax.index [ IndexEntry.Rest; IndexEntry.Range(Some 1, None, None) ] 0 -1; Stax.imageResize [ -1; 5; -1 ] ResizeMethod.Linear false 0 -1 ], [| 2; 3; 3 |], e
      "DotGeneral with a constant rhs", Stax.serial [ d; Stax.dotGeneral None (Some(tensorOf 5 [| 5; 3 |])) (([ 1 ], [ 0 ]), ([], [])) 0 -1 ], [| 3; 4 |], e
      "FanOut, FanInSum, FanInProd, FanInConcat",
        Stax.serial [ d; Stax.fanOut 3; Stax.parallelOf [ Stax.relu; Stax.erf 1.0 1.0 0.0; Stax.identity ]; Stax.fanInProd
                      Stax.fanOut 2; Stax.parallelOf [ Stax.dense 3 1.0 (Some 0.2); Stax.dense 2 0.9 None ]; Stax.fanInConcat -1
                      Stax.fanOut 2; Stax.parallelOf [ Stax.identity; Stax.sin 1.0 1.0 0.5 ]; Stax.fanInSum ], [| 3; 4 |], e
      "Dropout train (rate 0.6) with a key", Stax.serial [ d; Stax.dropout 0.6 DropoutMode.Train; Stax.dense 2 1.1 (Some 0.3) ], [| 3; 4 |], withKey 77
      "Aggregate with a pattern", Stax.serial [ d; Stax.erf 1.0 1.0 0.0; Stax.aggregate None 0 -1 AggregateImplementation.Dense; Stax.dense 2 1.0 (Some 0.2) ], [| 2; 4; 3 |], withPattern (pattern 9 2 4)
      "Attention SOFTMAX, SUM embeddings, query weights", attention AttentionMechanism.Softmax PositionalEmbedding.Sum false, [| 2; 3; 4 |], e
      "Attention IDENTITY, CONCAT embeddings", attention AttentionMechanism.Identity PositionalEmbedding.Concat true, [| 2; 4; 2 |], e
      "Attention ABS", attention AttentionMechanism.Abs PositionalEmbedding.NoEmbedding true, [| 2; 3; 2 |], e
      "Attention RELU", attention AttentionMechanism.Relu PositionalEmbedding.NoEmbedding false, [| 2; 3; 2 |], e
      "Attention SOFTMAX, SUM embeddings with exp decay",
        (match attention AttentionMechanism.Softmax PositionalEmbedding.Sum true with
         | GlobalSelfAttention a -> GlobalSelfAttention { a with PosEmbDecayFn = PosEmbDecay.Exponential 1.3; PosEmbPNorm = 1.0 }
         | l -> l), [| 2; 2; 3; 4 |], e
      "Attention IDENTITY, CONCAT embeddings with power decay",
        (match attention AttentionMechanism.Identity PositionalEmbedding.Concat false with
         | GlobalSelfAttention a -> GlobalSelfAttention { a with PosEmbDecayFn = PosEmbDecay.Power 0.8; ValPosEmb = true }
         | l -> l), [| 2; 4; 2 |], e ]

/// A random tangent (dθ, dx) of unit scale per entry for a network's parameters and inputs.
let private tangentOf (seed: int) (p: Params) (x: Tensor) =
    Params.ofVector p (normals seed (Params.count p)), tensorOf (seed + 1) x.Shape

/// θ + t·dθ.
let private along (p: Params) (dp: Params) (t: float) =
    Params.ofVector p (Array.map2 (fun a b -> a + t * b) (Params.toVector p) (Params.toVector dp))

/// The JVP laws for one network: (1) central difference of f(θ + h·dθ, x + h·dx) — step h = 1e-5 has truncation
/// h²/6·|f‴| and round-off ε·|f|/h, both ≲ 1e-10 relative for these O(1) networks, so 1e-6 relative leaves room
/// for larger third derivatives and still catches a wrong factor, sign or term (kinks are hit with probability
/// ~1e-5); (2) ⟨v, J u⟩ = ⟨Jᵀ v, u⟩ with the backward pass — two sums of the same products, 1e-11 relative.
let private checkJvp (name: string) (layer: Layer) (shape: int[]) (ctx: ApplyContext) =
    let x = tensorOf 21 shape
    let _, p = InitFn.init 3 layer shape
    let dp, dx = tangentOf 40 p x
    let y, dy = Jvp.jvpWith ctx layer p dp x dx
    let f t = (ApplyFn.applyWith ctx layer (along p dp t) (Tensor.scaleAdd t dx x)).Data
    Expect.equal y.Data (f 0.0) (name + ": the primal output is apply_fn's")
    let h = 1e-5
    let fd = Array.map2 (fun a b -> (a - b) / (2.0 * h)) (f h) (f -h)
    let eFd = relErr fd dy.Data
    if not (eFd <= 1e-6) then failtestf "%s: JVP vs central differences %.2e (tolerance 1e-6)" name eFd
    let v = tensorOf 50 y.Shape
    let g, gx = Backward.vjpWith ctx layer p x v
    let lhs = dot v.Data dy.Data
    let rhs = Params.dot g dp + dot gx.Data dx.Data
    let eAdj = abs (lhs - rhs) / max 1e-300 (abs lhs + abs rhs)
    if not (eAdj <= 1e-11) then failtestf "%s: ⟨v, J u⟩ = %.17g but ⟨Jᵀ v, u⟩ = %.17g" name lhs rhs
    eFd, eAdj

/// Gradients of ⟨ct, f⟩ by the backward pass with a context against central differences of every coordinate
/// (parameters and input), with the same context in every evaluation (same masks, same pattern); the tolerance is
/// FiniteTests' (h = 1e-5, 1e-6 relative).
let private checkGradients (name: string) (layer: Layer) (shape: int[]) (ctx: ApplyContext) =
    let x = tensorOf 31 shape
    let outShape, p = InitFn.init 5 layer shape
    let ct = tensorOf 32 outShape
    let loss (theta: Params) (xv: Tensor) = dot (ApplyFn.applyWith ctx layer theta xv).Data ct.Data
    let g, gx = Backward.vjpWith ctx layer p x ct
    let h = 1e-5
    let central (f: float[] -> float) (v: float[]) =
        Array.init v.Length (fun i ->
            let vp, vm = Array.copy v, Array.copy v
            vp[i] <- v[i] + h
            vm[i] <- v[i] - h
            (f vp - f vm) / (2.0 * h))
    let gNum = central (fun v -> loss (Params.ofVector p v) x) (Params.toVector p)
    let gxNum = central (fun v -> loss p (Tensor.create x.Shape v)) x.Data
    let eP, eX = relErr gNum (Params.toVector g), relErr gxNum gx.Data
    if not (eP <= 1e-6 && eX <= 1e-6) then
        failtestf "%s: parameter gradient error %.2e, input gradient error %.2e (tolerance 1e-6)" name eP eX
    note (sprintf "%s: gradient errors vs central differences %.2e (θ), %.2e (x)" name eP eX)

// ---- Dropout(train): the empirical NTK by hand ----------------------------------------------------------------

/// Dense(5, 1.3, 0.4) → Dropout(0.6, train) → Dense(3, 0.9, 0.2): with h = 1.3/√4·x·W1 + 0.4·b1 and the keep mask
/// m of the call, f = 0.9/√5·(m∘h/0.6)·W2 + 0.2·b2.
let private rate = 0.6
let private dropNet = Stax.serial [ Stax.dense 5 1.3 (Some 0.4); Stax.dropout rate DropoutMode.Train; Stax.dense 3 0.9 (Some 0.2) ]

/// Hand forward pass of one example row x with keep mask row m: (hidden after dropout, output).
let private dropForward (p: Params) (m: bool[]) (x: float[]) =
    match p with
    | Branches [ Leaf [ w1; b1 ]; Leaf []; Leaf [ w2; b2 ] ] ->
        let h = Array.init 5 (fun k -> 1.3 / 2.0 * dot x (Array.init 4 (fun l -> w1.Data[l * 5 + k])) + 0.4 * b1.Data[k])
        let hd = Array.init 5 (fun k -> if m[k] then h[k] / rate else 0.0)
        hd, Array.init 3 (fun o -> 0.9 / sqrt 5.0 * dot hd (Array.init 5 (fun k -> w2.Data[k * 3 + o])) + 0.2 * b2.Data[o])
    | _ -> failwith "unexpected parameter tree"

/// ∂f_o/∂θ of one example by the chain rule, in Params.toVector order (W1, b1, W2, b2).
let private dropRow (p: Params) (m: bool[]) (x: float[]) (o: int) =
    let w2 = match p with Branches [ _; _; Leaf [ w2; _ ] ] -> w2 | _ -> failwith "tree"
    let hd, _ = dropForward p m x
    let a = 0.9 / sqrt 5.0
    let keep k = if m[k] then 1.0 / rate else 0.0
    [| for l in 0 .. 3 do
         for k in 0 .. 4 -> a * w2.Data[k * 3 + o] * keep k * 1.3 / 2.0 * x[l]
       for k in 0 .. 4 -> a * w2.Data[k * 3 + o] * keep k * 0.4
       for k in 0 .. 4 do
         for o' in 0 .. 2 -> if o' = o then a * hd[k] else 0.0
       for o' in 0 .. 2 -> if o' = o then 0.2 else 0.0 |]

let private rowsOf (x: Tensor) = Array.init x.Shape[0] (fun i -> Array.sub x.Data (i * x.Shape[1]) x.Shape[1])

// ---- Aggregate with a pattern: the empirical NTK by hand ------------------------------------------------------

/// Dense(4, 1.2, 0.3) → Aggregate → Dense(2, 0.8, 0.5) on (N, V = 3, C = 3): h = 1.2/√3·x·W1 + 0.3·b1 per vertex,
/// z[n, j] = Σ_i A[n, i, j]·h[n, i], f[n, j] = 0.8/√4·z[n, j]·W2 + 0.5·b2.
let private aggNet = Stax.serial [ Stax.dense 4 1.2 (Some 0.3); Stax.aggregate None 0 -1 AggregateImplementation.Dense; Stax.dense 2 0.8 (Some 0.5) ]

/// ∂f[n, j, o]/∂θ by the chain rule, in Params.toVector order (W1, b1, W2, b2), and f[n, j, o].
let private aggRow (p: Params) (a: Tensor) (x: Tensor) (n: int) (j: int) (o: int) =
    match p with
    | Branches [ Leaf [ w1; b1 ]; Leaf []; Leaf [ w2; b2 ] ] ->
        let xv i l = x.Data[(n * 3 + i) * 3 + l]
        let adj i = a.Data[(n * 3 + i) * 3 + j]
        let h i k = 1.2 / sqrt 3.0 * List.sum [ for l in 0 .. 2 -> xv i l * w1.Data[l * 4 + k] ] + 0.3 * b1.Data[k]
        let z k = List.sum [ for i in 0 .. 2 -> adj i * h i k ]
        let a2 = 0.8 / 2.0
        let row =
            [| for l in 0 .. 2 do
                 for k in 0 .. 3 -> a2 * w2.Data[k * 2 + o] * 1.2 / sqrt 3.0 * List.sum [ for i in 0 .. 2 -> adj i * xv i l ]
               for k in 0 .. 3 -> a2 * w2.Data[k * 2 + o] * 0.3 * List.sum [ for i in 0 .. 2 -> adj i ]
               for k in 0 .. 3 do
                 for o' in 0 .. 1 -> if o' = o then a2 * z k else 0.0
               for o' in 0 .. 1 -> if o' = o then 0.5 else 0.0 |]
        row, a2 * List.sum [ for k in 0 .. 3 -> z k * w2.Data[k * 2 + o] ] + 0.5 * b2.Data[o]
    | _ -> failwith "unexpected parameter tree"

let private contextTests =
    testList "context" [
        testCase "Dropout(train) and Aggregate(pattern): backward pass with the call's key/pattern = central differences" <| fun () ->
            checkGradients "Dropout train" dropNet [| 3; 4 |] (withKey 5)
            checkGradients "Aggregate with pattern" aggNet [| 2; 3; 3 |] (withPattern (pattern 4 2 3))

        testCase "with a context the batch is recorded whole: same kernels as per example where the context is unused" <| fun () ->
            // A key that no layer reads sends Empirical down the whole-batch path (one tape, a pullback per output
            // element of the batch); the numbers must be the per-example path's (the same products plus exact zeros
            // from the other examples, summed in another order: 1e-13 relative), for any output shape and batch axis.
            let ctx = withKey 3
            let cases =
                [ "Dense → Erf → Dense", Stax.serial [ Stax.dense 5 1.3 (Some 0.4); Stax.erf 1.0 1.0 0.0; Stax.dense 3 1.0 (Some 0.1) ], [| 3; 4 |], [| 2; 4 |], [| -1 |]
                  // (C, N) outputs: the channel axis to trace is 0
                  "Dense batch_axis=1 channel_axis=0", Stax.denseWith { Stax.denseDefaults 3 with BatchAxis = 1; ChannelAxis = 0; BStd = Some 0.2 }, [| 4; 3 |], [| 4; 2 |], [| 0 |]
                  "Conv → Relu (N, W, C)", Stax.serial [ Stax.conv 3 [ 2 ] None Padding.Same 1.2 (Some 0.1); Stax.relu ], [| 2; 4; 2 |], [| 3; 4; 2 |], [| -1 |] ]
            for name, net, s1, s2, channel in cases do
                let x1, x2 = tensorOf 5 s1, tensorOf 6 s2
                let _, p = InitFn.init 4 net s1
                for trace in [ channel; [||] ] do
                    for x2o in [ None; Some x2 ] do
                        let n0, t0 = Empirical.kernelFn net trace [||] x1 x2o Both p
                        let n1, t1 = Empirical.kernelFnWith ctx ctx net trace [||] x1 x2o Both p
                        Expect.equal t1.Value.Shape t0.Value.Shape (name + ": shape")
                        assertClose (sprintf "%s ntk, trace %A, x2 %b" name trace x2o.IsSome) 1e-13 t0.Value.Data t1.Value.Data
                        assertClose (sprintf "%s nngp, trace %A, x2 %b" name trace x2o.IsSome) 1e-13 n0.Value.Data n1.Value.Data

        testCase "Dropout(train): without a key the backward pass asks for one" <| fun () ->
            let x = tensorOf 1 [| 2; 4 |]
            let outShape, p = InitFn.init 1 dropNet x.Shape
            let e = throwsExactly<NeuralTangentsException> (fun () -> Backward.vjp dropNet p x (tensorOf 2 outShape) |> ignore)
            Expect.stringContains e.Message "random key" "asks for the key"

        testCase "Dropout(train): empirical NTK and NNGP = the hand derivation with the call's masks (x2 absent and given)" <| fun () ->
            let x1, x2 = tensorOf 61 [| 3; 4 |], tensorOf 62 [| 2; 4 |]
            let _, p = InitFn.init 6 dropNet x1.Shape
            let root = Rng.ofSeed 7
            let ctx = { ApplyContext.Empty with Rng = Some root }
            // The layer at position 1 of the serial draws from the key split at 1; x2's call has the key split at 1
            // first (Empirical.splitContext), so its masks are independent of x1's.
            let masks (key: RngKey) (n: int) = let m = Stochastic.keepMask (Rng.split 1 key) rate (n * 5) in Array.init n (fun i -> Array.sub m (i * 5) 5)
            let m1, m2 = masks root 3, masks (Rng.split 1 root) 2
            Expect.isTrue (m1 |> Array.concat |> Array.exists not) "some units are dropped"
            let y = ApplyFn.applyWith ctx dropNet p x1
            assertClose "hand forward = apply_fn" 1e-14 (Array.concat (Array.map2 (fun m r -> snd (dropForward p m r)) m1 (rowsOf x1))) y.Data
            let hand (ma: bool[][]) (xa: Tensor) (mb: bool[][]) (xb: Tensor) =
                let ra, rb = rowsOf xa, rowsOf xb
                Array.init (ra.Length * rb.Length) (fun e ->
                    let i, j = e / rb.Length, e % rb.Length
                    List.average [ for o in 0 .. 2 -> dot (dropRow p ma[i] ra[i] o) (dropRow p mb[j] rb[j] o) ]),
                Array.init (ra.Length * rb.Length) (fun e ->
                    let i, j = e / rb.Length, e % rb.Length
                    dot (snd (dropForward p ma[i] ra[i])) (snd (dropForward p mb[j] rb[j])) / 3.0)
            let ntk11, nngp11 = hand m1 x1 m1 x1
            let nngp, ntk = Empirical.kernelsWith ctx ctx dropNet p x1 None
            assertClose "NTK(x1, x1)" 1e-13 ntk11 ntk.Data
            assertClose "NNGP(x1, x1)" 1e-13 nngp11 nngp.Data
            let c1, c2 = Empirical.splitContext ctx x1 (Some x2)
            let ntk12, nngp12 = hand m1 x1 m2 x2
            let nngp, ntk = Empirical.kernelsWith c1 c2 dropNet p x1 (Some x2)
            assertClose "NTK(x1, x2)" 1e-13 ntk12 ntk.Data
            assertClose "NNGP(x1, x2)" 1e-13 nngp12 nngp.Data
            // kernelFnWith (any output shape) gives the same numbers
            let _, t = Empirical.kernelFnWith c1 c2 dropNet [| -1 |] [||] x1 (Some x2) Ntk p
            assertClose "kernelFnWith" 1e-13 ntk12 t.Value.Data

        testCase "Aggregate: empirical NTK with a pattern = the hand derivation" <| fun () ->
            let x = tensorOf 71 [| 2; 3; 3 |]
            let a = pattern 72 2 3
            let _, p = InitFn.init 8 aggNet x.Shape
            let ctx = withPattern a
            let y = ApplyFn.applyWith ctx aggNet p x
            let handY = Array.init 12 (fun e -> snd (aggRow p a x (e / 6) ((e / 2) % 3) (e % 2)))
            assertClose "hand forward = apply_fn" 1e-14 handY y.Data
            // (N1, N2, V, V): traced over the output channels (their mean).
            let expected =
                Array.init 36 (fun e ->
                    let n1, n2, j1, j2 = e / 18, (e / 9) % 2, (e / 3) % 3, e % 3
                    List.average [ for o in 0 .. 1 -> dot (fst (aggRow p a x n1 j1 o)) (fst (aggRow p a x n2 j2 o)) ])
            let _, ntk = Empirical.kernelFnWith ctx ctx aggNet [| -1 |] [||] x None Ntk p
            Expect.equal ntk.Value.Shape [| 2; 2; 3; 3 |] "shape (N1, N2, V, V)"
            assertClose "NTK with pattern" 1e-13 expected ntk.Value.Data
            // and the pattern matters: without it the layer is the identity and the kernel differs
            let _, plain = Empirical.kernelFn aggNet [| -1 |] [||] x None Ntk p
            if relErr expected plain.Value.Data < 1e-3 then failtest "the pattern should change the NTK"

        testCase "Aggregate: Monte Carlo of the empirical NTK with a pattern = the infinite NTK (width 256, M = 300)" <| fun () ->
            // One hidden layer (exactly Gaussian pre-activations), then linear maps (Aggregate, Flatten, the readout):
            // E over the weights of the empirical NTK is the analytic NTK exactly, so no allowance (McCheck's 5·SE).
            let net = Stax.serial [ Stax.dense 256 1.3 (Some 0.1); Stax.relu; Stax.aggregate None 0 -1 AggregateImplementation.Dense
                                    Stax.flatten; Stax.dense 1 1.2 (Some 0.1) ]
            let x = tensorOf 81 [| 2; 3; 2 |]
            let a = pattern 82 2 3
            let analytic = KernelFn.computeWithPattern (a, a) LayoutRequest.Auto net x None Ntk
            let ctx = withPattern a
            let samples =
                Array.Parallel.init 300 (fun i ->
                    let _, p = InitFn.init (9000 + i) net x.Shape
                    snd (Empirical.kernelsWith ctx ctx net p x None))
            let worst = McCheck.compareMean "Aggregate ntk" analytic.Ntk.Value samples 0.0
            note (sprintf "Aggregate empirical NTK Monte Carlo (M = 300, width 256): worst |Δ|/SE %.2f" worst)

        testCase "MonteCarlo.computeWithContext with a key: the mean of the hand NTKs of its samples" <| fun () ->
            let x = tensorOf 91 [| 2; 4 |]
            let o = MonteCarlo.options 3 [ 2 ]
            let root = Rng.ofSeed 11
            let est = MonteCarlo.computeWithContext { ApplyContext.Empty with Rng = Some root } o dropNet x None Ntk
            // sample s: parameters from the options' key split at s, masks from the context's key split at s
            let mean =
                Array.init 4 (fun e ->
                    List.average [ for s in 0 .. 1 ->
                                     let _, p = InitFn.initWithKey (Rng.split s o.Key) dropNet x.Shape
                                     let m = Stochastic.keepMask (Rng.split 1 (Rng.split s root)) rate 10
                                     let mi i = Array.sub m (i * 5) 5
                                     let r = rowsOf x
                                     List.average [ for c in 0 .. 2 -> dot (dropRow p (mi (e / 2)) r[e / 2] c) (dropRow p (mi (e % 2)) r[e % 2] c) ] ])
            assertClose "mean of two samples" 1e-13 mean (snd est.Head).Value.Data

        testCase "linearize with a key: f_lin(θ₀) = f(θ₀) with the same masks, and taylor degree 1 = linearize" <| fun () ->
            let x = tensorOf 95 [| 3; 4 |]
            let _, p0 = InitFn.init 12 dropNet x.Shape
            let ctx = withKey 13
            let y0 = ApplyFn.applyWith ctx dropNet p0 x
            Expect.equal (Taylor.linearizeWith dropNet p0 ctx p0 x).Data y0.Data "f_lin(θ₀) = f(θ₀)"
            let p = along p0 (Params.ofVector p0 (normals 14 (Params.count p0))) 0.3
            // the network is linear in W2 and b2 and bilinear in (W1, W2): the linearization misses only that product
            Expect.equal (Taylor.taylorExpandWith dropNet p0 1 ctx p x).Data (Taylor.linearizeWith dropNet p0 ctx p x).Data "degree 1"
    ]

[<Tests>]
let tests =
    testList "JvpTests" [
        testCase "JVP = central differences and ⟨v, J u⟩ = ⟨Jᵀ v, u⟩ for every layer family" <| fun () ->
            let worst = zoo |> List.map (fun (name, layer, shape, ctx) -> checkJvp name layer shape ctx)
            note (sprintf "JVP over %d networks: worst vs central differences %.2e, worst adjoint gap %.2e"
                    zoo.Length (worst |> List.map fst |> List.max) (worst |> List.map snd |> List.max))

        testCase "a tangent not shaped like the parameters or the input is refused" <| fun () ->
            let net = Stax.serial [ Stax.dense 3 1.0 (Some 0.1); Stax.relu ]
            let x = tensorOf 1 [| 2; 4 |]
            let _, p = InitFn.init 0 net x.Shape
            let e = throwsExactly<ArgumentException> (fun () -> Jvp.jvp net p (Branches [ Params.none; Params.none ]) x x |> ignore)
            Expect.stringContains e.Message "tangent" "names the tangent"
            let e = throwsExactly<ArgumentException> (fun () -> Jvp.jvp net p p x (tensorOf 2 [| 2; 5 |]) |> ignore)
            Expect.stringContains e.Message "xTangent" "names the input tangent"

        testPropertyWithConfig (fsCheck 40) "random networks with a finite-width function (Generators.networkCase): ⟨v, J u⟩ = ⟨Jᵀ v, u⟩" <| fun () ->
            // Exact in exact arithmetic for any network, kinks included (both sides use the same one-sided slopes):
            // two sums of the same products in different orders, so 1e-10 relative to Σ|terms|. A key is passed so
            // that any Dropout would draw its mask (the generated ones are in mode "test").
            // Kernel-only activations (ExpNormalized, as in neural_tangents) have no finite network: such cases are
            // filtered out by name, explicitly.
            let finite (c: Generators.NetworkCase) =
                let x = Generators.inputs c.Layout { Rows = 1; Seed = 0; Edits = [] }
                try
                    ApplyFn.applyWith (withKey 0) c.Net (snd (InitFn.init 0 c.Net x.Shape)) x |> ignore
                    true
                with :? NeuralTangentsException as e when e.Message.Contains "has no finite-width function" -> false
            let gen = Gen.zip3 (Generators.networkCase |> Gen.filter finite) Generators.inputSpec (Gen.choose (0, 100000))
            Prop.forAll (Arb.fromGen gen) (fun (c, spec, seed) ->
                let x = Generators.inputs c.Layout spec
                let ctx = withKey seed
                let _, p = InitFn.initWithKey (Rng.ofSeed seed) c.Net x.Shape
                let dp, dx = tangentOf seed p x
                let y, dy = Jvp.jvpWith ctx c.Net p dp x dx
                // A forward pass that overflows (stacked monomials and exponentials with large random weights, about
                // one case in 2000) has no finite products to compare: the law holds vacuously, as the kernel laws'
                // overflowing networks do.
                if not (Array.forall Double.IsFinite y.Data && Array.forall Double.IsFinite dy.Data) then true else
                let v = tensorOf (seed + 7) y.Shape
                let g, gx = Backward.vjpWith ctx c.Net p x v
                let lhs = dot v.Data dy.Data
                let rhs = Params.dot g dp + dot gx.Data dx.Data
                let scale = Array.fold2 (fun acc a b -> acc + abs (a * b)) 0.0 v.Data dy.Data + abs rhs
                if not (abs (lhs - rhs) <= 1e-10 * scale) then
                    failtestf "%A: ⟨v, J u⟩ = %.17g, ⟨Jᵀ v, u⟩ = %.17g" c.Net lhs rhs
                true)

        testPropertyWithConfig (fsCheck 25) "random CNNs (Generators.cnnCase): ⟨v, J u⟩ = ⟨Jᵀ v, u⟩" <| fun () ->
            let gen = Gen.zip3 Generators.cnnCase Generators.cnnInputSpec (Gen.choose (0, 100000))
            Prop.forAll (Arb.fromGen gen) (fun (c, spec, seed) ->
                let x = Generators.inputs c.Layout spec
                // A body whose VALID windows no longer fit is refused by the core (CnnProperties checks that).
                match (try Some(InitFn.initWithKey (Rng.ofSeed seed) c.Net x.Shape) with :? NeuralTangentsException -> None) with
                | None -> true
                | Some(_, p) ->
                    let dp, dx = tangentOf seed p x
                    let y, dy = Jvp.jvp c.Net p dp x dx
                    let v = tensorOf (seed + 7) y.Shape
                    let g, gx = Backward.vjp c.Net p x v
                    let lhs = dot v.Data dy.Data
                    let rhs = Params.dot g dp + dot gx.Data dx.Data
                    let scale = Array.fold2 (fun acc a b -> acc + abs (a * b)) 0.0 v.Data dy.Data + abs rhs
                    if not (abs (lhs - rhs) <= 1e-10 * scale) then
                        failtestf "%A: ⟨v, J u⟩ = %.17g, ⟨Jᵀ v, u⟩ = %.17g" c.Net lhs rhs
                    true)

        contextTests
    ]
