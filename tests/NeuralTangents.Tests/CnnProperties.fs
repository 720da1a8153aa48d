/// Laws every kernel must obey over random small CNNs (Generators.cnnCase: Conv, ConvLocal, ConvTranspose,
/// AvgPool/SumPool, Relu/Erf/Gelu, residual blocks, topped by Flatten, GlobalAvgPool or GlobalSumPool and Dense(1)).
module NeuralTangents.Tests.CnnProperties

open System.Collections.Concurrent
open System.Threading
open Expecto
open FsCheck
open FsCheck.FSharp
open MathNet.Numerics.LinearAlgebra
open NeuralTangents
open NeuralTangents.Tests.TestUtil

// The helpers of KernelProperties (private there).

/// Smallest eigenvalue of a symmetric (N, N) tensor.
let private minEig (t: Tensor) =
    let m = Tensor.toMatrix t
    (m.Evd(Symmetricity.Symmetric)).EigenValues |> Seq.map (fun c -> c.Real) |> Seq.min

let private trace (t: Tensor) = Seq.init t.Shape[0] (fun i -> t.Data[i * t.Shape[1] + i]) |> Seq.sum

let private transpose (t: Tensor) = Tensor.swapLeadingAxes t

let private full = { DiagonalBatch = None; DiagonalSpatial = Some false }

/// Tolerance of the NTK's (i, j) ↔ (j, i) symmetry. The NNGP meets 1e-12, the NTK not always: ReLU's derivative
/// kernel (π − θ)/2π depends on θ = arccos ρ, and near ρ = 1 (common here: positions of 1-channel inputs after a
/// width-1 conv and pooling are almost perfectly correlated) θ ≈ √(2(1 − ρ)), so an ε-level difference δ in how
/// 1 − ρ comes out for (i, j) and (j, i) (their covariances are summed in other orders) moves θ by up to √(2δ):
/// with δ ≈ 4ε that is ~4e-8, i.e. ≲ 1e-8 relative per ReLU layer. Seen: 1.5e-11 … 1.1e-9 on 4 × 5-pixel inputs
/// (Erf and Gelu stay at 1e-16, their maps are smooth at ρ = 1). 1e-6 covers a few layers of that bound; a wrong
/// formula is off by far more. Round-off amplified by conditioning, not a wrong formula.
let private ntkSymmetryTol = 1e-6

/// More refused networks than this share of the cases drawn fails the law: a generator that mostly makes networks
/// the core refuses tests nothing.
let private maxRefused = 0.3

/// Per law: cases drawn, cases refused, cases of interest (what each law counts, e.g. diagonal layouts).
let private counts = ConcurrentDictionary<string, int[]>()

let private countOf (law: string) = counts.GetOrAdd(law, fun _ -> [| 0; 0; 0 |])

/// Runs a law on the network's kernel, or discards the case when the core refuses this network for these inputs
/// (NeuralTangentsException: a VALID window larger than its input, …); the law fails once more than 30% of at least
/// 20 drawn cases were refused. Only this first computation of a case may be refused: the law's own must succeed.
let private orDiscard (law: string) (first: unit -> Kernel) (check: Kernel -> unit) : Property =
    let c = countOf law
    let drawn = Interlocked.Increment(&c[0])
    let k =
        try Some(first ())
        with NeuralTangentsException msg ->
            let refused = Interlocked.Increment(&c[1])
            if drawn >= 20 && float refused > maxRefused * float drawn then
                failwithf "%s: %d of %d generated networks refused (more than %.0f%%); last: %s" law refused drawn (100.0 * maxRefused) msg
            None
    match k with
    | None -> Prop.filter false true
    | Some k ->
        check k
        Prop.filter true true

/// Sign and RectifiedMonomial(0) map c to 1 − 2θ/π, whose √ at c = ±1 sits in the NNGP itself: on duplicate or
/// collinear rows an ulp of difference between two evaluation orders (kernel(x1, x2) against kernel(x2, x1)) becomes
/// √ε after one such layer and compounds with depth (√ of √ …), so those cases have no uniform bound (TilingTests
/// states the same) and hold the transpose and symmetry laws vacuously; on generic rows they are checked like every
/// network.
let rec private hasKinkedNngp (layer: Layer) =
    match layer with
    | Serial ls | Parallel ls -> List.exists hasKinkedNngp ls
    | Repeat(l, _) -> hasKinkedNngp l
    | Activation Sign | Activation(RectifiedMonomial 0) -> true
    | _ -> false

/// Inputs on which such a map meets c = ±1: duplicated rows (edits), or a single input channel, where every
/// per-position covariance is a product x_i(p)·x_j(p′) (rank one; Conv, pooling and sums of positions keep it so),
/// so every pair of rows is collinear at every pair of positions.
let private collinear (layout: Generators.InputLayout) (spec: Generators.InputSpec) =
    not spec.Edits.IsEmpty || layout.Channels = 1

let private cases = Gen.zip3 Generators.cnnCase Generators.cnnInputSpec Generators.cnnInputSpec |> Arb.fromGen

let private withTop (top: Generators.CnnTop list) =
    gen {
        let! c, s1, s2 = cases.Generator
        let! t = Gen.elements top
        return { c with Top = t }, s1, s2
    }
    |> Arb.fromGen

/// Rewrites the width of every Conv and Dense layer: the finite width times n, in the "standard" parameterization
/// out_chan → n·out_chan·s1 with s → (s, 1) (s0 changes too), in the "ntk" one (and for ConvLocal) out_chan →
/// n·out_chan, s → (s, s).
/// Equal widths stay equal (FanInSum needs them).
let rec private rewidth (n: int) (s: int) (layer: Layer) =
    match layer with
    | Serial ls -> Serial(ls |> List.map (rewidth n s))
    | Parallel ls -> Parallel(ls |> List.map (rewidth n s))
    | Dense d ->
        match d.Parameterization with
        | Parameterization.Standard -> Dense { d with OutDim = d.OutDim * n * snd d.S; S = (s, 1) }
        | Parameterization.Ntk -> Dense { d with OutDim = d.OutDim * n; S = (s, s) }
    | Conv c ->
        match c.Parameterization with
        // ConvLocal's finite width is out_chan in either parameterization (neural_tangents' init ignores s[1] there).
        | Parameterization.Standard when c.Kind <> ConvKind.Local -> Conv { c with OutChan = c.OutChan * n * snd c.S; S = (s, 1) }
        | _ -> Conv { c with OutChan = c.OutChan * n; S = (s, s) }
    | l -> l

/// Per (i, j), the mean (or sum) of a full-layout (N1, N2, spatial pairs…) tensor over all its pairs of positions.
let private poolPairs (mean: bool) (t: Tensor) =
    let n1, n2 = t.Shape[0], t.Shape[1]
    let s = t.Data.Length / (n1 * n2)
    Tensor.create [| n1; n2 |] (Array.init (n1 * n2) (fun ij ->
        let total = Array.sum t.Data[ij * s .. ij * s + s - 1]
        if mean then total / float s else total))

/// Positions of a full-layout (N1, N2, H, H', W, W', …) tensor: the product of H, W, ….
let private positions (t: Tensor) = Seq.fold (*) 1 (seq { for a in 2 .. 2 .. t.Rank - 1 -> t.Shape[a] })

let private note' (law: string) (what: string) =
    let c = countOf law
    note (sprintf "CnnProperties %-14s %d cases drawn, %d refused (%.0f%%)%s" law c[0] c[1] (100.0 * float c[1] / float (max 1 c[0])) what)

[<Tests>]
let tests =
    testSequenced <| testList "CnnProperties" [
        testCase "the generator's networks are mostly ones the core accepts" <| fun () ->
            // 300 networks from fixed seeds; every refusal must be a NeuralTangentsException (never another exception),
            // and at most 30% of them.
            let sample = Gen.sampleWithSeed (Rnd 20240608UL) 30 300 (Gen.zip Generators.cnnCase Generators.cnnInputSpec)
            let reasons =
                sample |> Array.choose (fun (c, spec) ->
                    try KernelFn.compute c.Net (Generators.inputs c.Layout spec) None Both |> ignore; None
                    with NeuralTangentsException msg -> Some msg)
            let byReason = reasons |> Array.countBy (fun m -> m.Split(':')[0]) |> Array.sortByDescending snd
            note (sprintf "CnnProperties generator: %d of %d refused (%.0f%%): %A" reasons.Length sample.Length (100.0 * float reasons.Length / float sample.Length) byReason)
            if float reasons.Length > maxRefused * float sample.Length then
                failtestf "%d of %d generated CNNs refused: %A" reasons.Length sample.Length byReason

        testPropertyWithConfig (fsCheck 80) "NNGP and NTK are symmetric and PSD for x2 = x1" <| fun () ->
            Prop.forAll cases (fun (c, spec, _) ->
                let x = Generators.inputs c.Layout spec
                // K(x, x) is evaluated in two orders for (i, j) and (j, i): see hasKinkedNngp.
                let unbounded = collinear c.Layout spec && hasKinkedNngp c.Net
                orDiscard "psd" (fun () -> KernelFn.compute c.Net x None Both) (fun k ->
                    for what, t, tol in [ "nngp", k.Nngp, 1e-12; "ntk", k.Ntk.Value, ntkSymmetryTol ] do
                      // There the kernel sits on the PSD boundary (ρ = ±1: rank one) with √ε-sized entry errors, so
                      // neither law has a uniform bound (see hasKinkedNngp).
                      if not unbounded then
                        assertClose (what + " symmetry") tol t.Data (transpose t).Data
                        // PSD up to round-off: λmin ≥ −1e-9·trace (eigenvalue errors are O(ε·‖K‖)).
                        let lo = minEig t
                        if lo < -1e-9 * trace t then failwithf "%s not PSD: λmin = %g, trace = %g for %A" what lo (trace t) c.Net
                    if k.Cov2.IsSome then failwith "Cov2 for x2 = x1"))

        testPropertyWithConfig (fsCheck 80) "kernel(x2, x1) is the transpose of kernel(x1, x2)" <| fun () ->
            Prop.forAll cases (fun (c, spec1, spec2) ->
                let x1 = Generators.inputs c.Layout spec1
                let x2 = Generators.inputs c.Layout spec2
                let unbounded = (collinear c.Layout spec1 || collinear c.Layout spec2) && hasKinkedNngp c.Net
                orDiscard "transpose" (fun () -> KernelFn.compute c.Net x1 (Some x2) Both) (fun a ->
                  if not unbounded then
                    let b = KernelFn.compute c.Net x2 (Some x1) Both
                    assertClose "nngp" 1e-12 a.Nngp.Data (transpose b.Nngp).Data
                    assertClose "ntk" ntkSymmetryTol a.Ntk.Value.Data (transpose b.Ntk.Value).Data
                    assertClose "cov1/cov2" 0.0 a.Cov1.Data b.Cov2.Value.Data))

        testPropertyWithConfig (fsCheck 60) "the NNGP does not depend on out_chan, out_dim or s in either parameterization" <| fun () ->
            let gen = Gen.zip cases.Generator (Gen.zip (Gen.choose (1, 64)) (Gen.choose (1, 4)))
            Prop.forAll (Arb.fromGen gen) (fun ((c, spec1, spec2), (n, s)) ->
                let x1 = Generators.inputs c.Layout spec1
                let x2 = Generators.inputs c.Layout spec2
                orDiscard "width" (fun () -> KernelFn.compute c.Net x1 (Some x2) Nngp) (fun a ->
                    let b = KernelFn.compute (rewidth n s c.Net) x1 (Some x2) Nngp
                    assertClose "nngp" 0.0 a.Nngp.Data b.Nngp.Data))

        testPropertyWithConfig (fsCheck 60) "standard parameterization: the readout NTK grows by ΔN·s1·P/s0·K for a wider last conv" <| fun () ->
            // body → Conv(N, SAME, standard, s = (1, s1)) → act → top → Dense(1, standard, s = (s0, 1)). The readout adds
            // (N_in/s0)·K with N_in its finite input width and K the NNGP after the top (arXiv:2001.07301; neural_tangents
            // Dense, standard); nothing else depends on N (the conv's own NTK term scales with its input width, the
            // activation multiplies by Ṫ). N_in = N·s1·P after Flatten (P positions), N·s1 after global pooling, so
            // ntk(N2) − ntk(N1) = (N2 − N1)·s1·P/s0·K (P = 1 for global pooling), as for Dense.
            let act = Gen.elements [ Stax.relu; Stax.erf 1.0 1.0 0.0; Stax.gelu false ]
            let gen = Gen.zip3 cases.Generator (Gen.zip act (Gen.zip (Gen.choose (1, 2000)) (Gen.choose (1, 2000)))) (Gen.zip (Gen.choose (1, 3)) (Gen.choose (1, 3)))
            Prop.forAll (Arb.fromGen gen) (fun ((c, spec1, spec2), (act, (n1, n2)), (s1, s0)) ->
                let filter = List.map (fun _ -> 2) c.Layout.Spatial
                let hidden n = Conv { Stax.convDefaults n filter with Padding = Padding.Same; WStd = 1.3; BStd = Some 0.2; Parameterization = Parameterization.Standard; S = (1, s1) }
                let readout = Dense { Stax.denseDefaults 1 with WStd = 0.9; BStd = Some 0.1; Parameterization = Parameterization.Standard; S = (s0, 1) }
                let prefix n = Serial [ c.Body; hidden n; act ]
                let net n = Serial [ prefix n; c.Top.Layer; readout ]
                let x1 = Generators.inputs c.Layout spec1
                let x2 = Generators.inputs c.Layout spec2
                orDiscard "standard-ntk" (fun () -> KernelFn.compute (net n1) x1 (Some x2) Ntk) (fun a ->
                    let b = KernelFn.compute (net n2) x1 (Some x2) Ntk
                    let k = KernelFn.compute (Serial [ prefix 1; c.Top.Layer ]) x1 (Some x2) Nngp
                    let p = match c.Top with Generators.CnnTop.Flatten -> positions (KernelFn.computeWithLayout full (prefix 1) x1 (Some x2) Nngp).Nngp | _ -> 1
                    let expected = Tensor.scaleAdd (float (n2 - n1) * float (s1 * p) / float s0) k.Nngp a.Ntk.Value
                    assertClose "ntk difference" 1e-10 expected.Data b.Ntk.Value.Data))

        testPropertyWithConfig (fsCheck 80) "Flatten top: the full spatial layout gives the diagonal-layout result" <| fun () ->
            Prop.forAll (withTop [ Generators.CnnTop.Flatten ]) (fun (c, spec1, spec2) ->
                let x1 = Generators.inputs c.Layout spec1
                let x2 = Generators.inputs c.Layout spec2
                // compute picks the diagonal layout unless a layer needs the pairs of positions (AvgPool, SumPool,
                // the shared-weight convolutions below one that does).
                // Two layouts are two evaluation orders: see hasKinkedNngp.
                let unbounded = (collinear c.Layout spec1 || collinear c.Layout spec2) && hasKinkedNngp c.Net
                orDiscard "flatten" (fun () -> KernelFn.compute c.Net x1 (Some x2) Both) (fun auto ->
                  // The layout compute ran in (the output, flattened, no longer shows it).
                  if (KernelFn.inputKernel c.Net x1 (Some x2) Nngp).DiagonalSpatial then
                      Interlocked.Increment(&(countOf "flatten")[2]) |> ignore
                  if not unbounded then
                    let f = KernelFn.computeWithLayout full c.Net x1 (Some x2) Both
                    assertClose "nngp" 1e-12 auto.Nngp.Data f.Nngp.Data
                    assertClose "ntk" 1e-12 auto.Ntk.Value.Data f.Ntk.Value.Data))

        testPropertyWithConfig (fsCheck 80) "global pooling top: the pooled pairs of the body's full kernel through the Dense closed form" <| fun () ->
            Prop.forAll (withTop [ Generators.CnnTop.GlobalAvgPool; Generators.CnnTop.GlobalSumPool ]) (fun (c, spec1, spec2) ->
                let x1 = Generators.inputs c.Layout spec1
                let x2 = Generators.inputs c.Layout spec2
                // The pooled executor and the full kernel pooled afterwards are two evaluation orders: see hasKinkedNngp.
                let unbounded = (collinear c.Layout spec1 || collinear c.Layout spec2) && hasKinkedNngp c.Net
                orDiscard "global-pool" (fun () -> KernelFn.compute c.Net x1 (Some x2) Both) (fun k ->
                  if not unbounded then
                    // GlobalAvgPool's output is the mean of the positions, so its covariance is the mean over all pairs of
                    // positions of the full-layout covariance (GlobalSumPool: the sum); the readout Dense(1) ("ntk"
                    // parameterization) maps (K, Θ) to (W²·K + b², W²·(K + Θ) + b²).
                    let body = KernelFn.computeWithLayout full c.Body x1 (Some x2) Both
                    let mean = (c.Top = Generators.CnnTop.GlobalAvgPool)
                    let kBar, tBar = poolPairs mean body.Nngp, poolPairs mean body.Ntk.Value
                    let w2 = c.Readout.WStd * c.Readout.WStd
                    let b2 = match c.Readout.BStd with Some b -> b * b | None -> 0.0
                    let nngp = Tensor.affine w2 b2 kBar
                    let ntk = Tensor.affine w2 b2 (Tensor.add kBar tBar)
                    assertClose "nngp" 1e-12 nngp.Data k.Nngp.Data
                    assertClose "ntk" 1e-12 ntk.Data k.Ntk.Value.Data))

        testPropertyWithConfig (fsCheck 100) "layer → JSON → layer round-trips on CNNs" <| fun () ->
            Prop.forAll (Arb.fromGen Generators.cnnCase) (fun c -> Json.decode (Json.encode c.Net) = c.Net)

        // Regression (found by these laws): a 1×1 Conv leaves the NNGP as it is but reverses the stored spatial pairs,
        // so the full layout must give what ConvLocal alone gives (it used to filter the wrong axes, or refuse VALID).
        testCase "ConvLocal with an uneven filter after a shared Conv, full layout, filters the right axes" <| fun () ->
            let x = Tensor.create [| 2; 4; 1; 1 |] (normals 1 8)
            let conv11 = Stax.conv 1 [ 1; 1 ] None Padding.Valid 1.0 None
            let local = Stax.convLocal 1 [ 3; 1 ] None Padding.Same 1.0 None
            let alone = KernelFn.compute (Stax.serial [ local; Stax.flatten ]) x None Nngp
            let after = KernelFn.computeWithLayout full (Stax.serial [ conv11; local; Stax.flatten ]) x None Nngp
            assertClose "nngp" 1e-12 alone.Nngp.Data after.Nngp.Data

        // Regression: the layout choice through an Identity branch. The Identity carries the Conv's correlated
        // positions to GlobalSumPool, so the full layout is needed; neural_tangents drops the Identity branch from its
        // requirement fold and computes this network in the diagonal layout (README, differences). Expected value by
        // hand on 2-pixel, 1-channel inputs x_a = (u_a, v_a), W_std = 1, no bias: Conv(f=2, SAME) reads taps (0, 1)
        // at output 0 and (1, pad) at output 1, so C[0,0] = (u_a·u_b + v_a·v_b)/2, C[0,1] = u_a·v_b/2,
        // C[1,0] = v_a·u_b/2, C[1,1] = v_a·v_b/2; ConvLocal (same geometry) keeps only same-position pairs,
        // L[0] = (C[0,0] + C[1,1])/2, L[1] = C[1,1]/2; the branches are independent, so GlobalSumPool gives
        // L[0] + L[1] + Σ_{o,o'} C[o,o'] (neural_tangents: L[0] + L[1] + C[0,0] + C[1,1]).
        testCase "a residual [ConvLocal; Identity] after a Conv is computed in the full layout, with the right value" <| fun () ->
            let x = Tensor.create [| 2; 2; 1 |] (normals 3 4)
            let conv = Stax.conv 1 [ 2 ] None Padding.Same 1.0 None
            let local = Stax.convLocal 1 [ 2 ] None Padding.Same 1.0 None
            let net = Stax.serial [ conv; FanOut 2; Parallel [ local; Identity ]; FanInSum; Stax.globalSumPool ]
            Expect.isFalse (KernelFn.inputKernel net x None Nngp).DiagonalSpatial "the full layout is chosen"
            let auto = KernelFn.compute net x None Nngp
            let expected =
                Array.init 4 (fun ab ->
                    let a, b = ab / 2, ab % 2
                    let u i = x.Data[2 * i]
                    let v i = x.Data[2 * i + 1]
                    let c00, c01, c10, c11 = (u a * u b + v a * v b) / 2.0, u a * v b / 2.0, v a * u b / 2.0, v a * v b / 2.0
                    (c00 + c11) / 2.0 + c11 / 2.0 + c00 + c01 + c10 + c11)
            assertClose "nngp" 1e-14 expected auto.Nngp.Data
            let f = KernelFn.computeWithLayout full net x None Nngp
            assertClose "nngp, full layout asked for" 1e-14 expected f.Nngp.Data

        testCase "a residual [ConvLocal; Identity] after a ConvLocal stays in the diagonal layout (as neural_tangents)" <| fun () ->
            // After a ConvLocal distinct positions are uncorrelated, so the Identity branch carries no cross-position
            // covariance and the diagonal layout is exact: both layouts agree.
            let x = Tensor.create [| 3; 4; 2 |] (normals 4 24)
            let local () = Stax.convLocal 2 [ 3 ] None Padding.Same 1.2 (Some 0.1)
            let net = Stax.serial [ local (); FanOut 2; Parallel [ Stax.serial [ Stax.relu; local () ]; Identity ]; FanInSum; Stax.globalSumPool ]
            Expect.isTrue (KernelFn.inputKernel net x None Nngp).DiagonalSpatial "the diagonal layout is chosen"
            let auto = KernelFn.compute net x None Both
            let f = KernelFn.computeWithLayout full net x None Both
            assertClose "nngp" 1e-13 f.Nngp.Data auto.Nngp.Data
            assertClose "ntk" 1e-13 f.Ntk.Value.Data auto.Ntk.Value.Data
            // The same block on the raw inputs (correlated positions) needs the full layout.
            let first = Stax.serial [ FanOut 2; Parallel [ local (); Identity ]; FanInSum; Stax.globalSumPool ]
            Expect.isFalse (KernelFn.inputKernel first x None Nngp).DiagonalSpatial "raw inputs through an Identity branch"

        testCase "refusal and layout counts" <| fun () ->
            // Runs after the laws (testSequenced): the counts they gathered.
            note' "psd" ""
            note' "transpose" ""
            note' "width" ""
            note' "standard-ntk" ""
            let diagonal = (countOf "flatten").[2]
            note' "flatten" (sprintf ", %d computed in the diagonal layout" diagonal)
            note' "global-pool" ""
    ]
