/// Laws every kernel must obey, over random valid architectures and inputs (FsCheck).
module NeuralTangents.Tests.KernelProperties

open Expecto
open FsCheck
open FsCheck.FSharp
open MathNet.Numerics.LinearAlgebra
open NeuralTangents
open NeuralTangents.Tests.TestUtil

let private inputs (seed: int) (n: int) (d: int) = randomTensor seed n d

/// Smallest eigenvalue of a symmetric (N, N) tensor.
let private minEig (t: Tensor) =
    let m = Tensor.toMatrix t
    (m.Evd(Symmetricity.Symmetric)).EigenValues |> Seq.map (fun c -> c.Real) |> Seq.min

let private trace (t: Tensor) = Seq.init t.Shape[0] (fun i -> t.Data[i * t.Shape[1] + i]) |> Seq.sum

let private transpose (t: Tensor) = Tensor.swapLeadingAxes t

/// Activations whose NNGP map has a √ at c = ±1 (Sign, RectifiedMonomial 0: 1 − 2θ/π), or whose derivative map has
/// it (ABRelu's family and RectifiedMonomial 1: (π − θ)/2π). Where (i, j) and (j, i) are summed in different orders
/// (layers that mix positions: pools, ImageResize, convolutions), an ε-level difference δ in 1 − ρ near ρ = 1 moves θ
/// by up to √(2δ): ~1e-8 per such layer (CnnProperties.ntkSymmetryTol derives the same bound).
let rec private hasActivation (pick: Activation -> bool) (layer: Layer) =
    match layer with
    | Serial ls | Parallel ls -> List.exists (hasActivation pick) ls
    | Repeat(l, _) -> hasActivation pick l
    | Activation a -> pick a
    | _ -> false

let private kinkedNngp = hasActivation (function Sign | RectifiedMonomial 0 -> true | _ -> false)
let private kinkedDerivative = hasActivation (function ABRelu _ | RectifiedMonomial 1 -> true | _ -> false)

/// (NNGP bound, NTK bound) of the symmetry and transposition laws. Vectors (no spatial axes) keep (i, j) and (j, i)
/// bit for bit alike (a symmetric Gram matrix, then entrywise maps): 1e-12 on both. With spatial axes: the NTK of a
/// kinked derivative map within 1e-6 (a few layers of the bound above; a wrong formula is off by far more), and
/// the NNGP of a kinked map on duplicated or collinear rows, or on one input channel (ρ = ±1 exactly), has no
/// uniform bound at all: None.
let private symmetryBounds (c: Generators.NetworkCase) (specs: Generators.InputSpec list) =
    if c.Layout.Spatial.IsEmpty then Some 1e-12, 1e-12
    else
        let collinear = c.Layout.Channels = 1 || specs |> List.exists (fun s -> not s.Edits.IsEmpty)
        let nngp = if kinkedNngp c.Net && collinear then None else Some 1e-12
        let ntk = if kinkedDerivative c.Net || kinkedNngp c.Net then 1e-6 else 1e-12
        nngp, ntk

/// The kernel, or None when these inputs overflow this random network (stacked monomials can; kernel_fn then
/// refuses, which KernelFnTests checks): about 1 case in 4000 of Generators.networkCase. Such a case holds the law
/// vacuously (FsCheck's Prop.discard cannot be used here: at run time its exception constructor is not accessible
/// to this assembly, a MethodAccessException).
let private computeOrOverflow (net: Layer) (x1: Tensor) (x2: Tensor option) (get: Get) =
    try Some(KernelFn.compute net x1 x2 get)
    with NeuralTangentsException msg when msg.Contains "overflowed" -> None

/// A random network with its input layout (vectors in either axis order, (N, H, C), (N, H, W, C)) and the inputs:
/// batch sizes up to 13 with duplicate, zero and collinear rows (Generators.inputSpec).
let private caseAndInputs = Gen.zip3 Generators.networkCase Generators.inputSpec Generators.inputSpec |> Arb.fromGen

/// Rewrites every Dense layer's out_dim and s.
let rec private rewidth (f: DenseSpec -> DenseSpec) (layer: Layer) =
    match layer with
    | Serial ls -> Serial(ls |> List.map (rewidth f))
    | Parallel ls -> Parallel(ls |> List.map (rewidth f))
    | Dense d -> Dense(f d)
    | l -> l

/// Ok kernel, or Error when the kernel overflows (stacked random networks with monomials can).
let private tryCompute net x =
    try Ok(KernelFn.compute net x None Both) with NeuralTangentsException msg -> Error msg

let private sameOutcome (what: string) (a: Result<Kernel, string>) (b: Result<Kernel, string>) =
    match a, b with
    | Ok ka, Ok kb ->
        assertClose (what + " nngp") 0.0 ka.Nngp.Data kb.Nngp.Data
        assertClose (what + " ntk") 0.0 ka.Ntk.Value.Data kb.Ntk.Value.Data
    | Error ea, Error eb when ea = eb -> ()
    | _ -> failwithf "%s: outcomes differ: %A vs %A" what (Result.isOk a) (Result.isOk b)

[<Tests>]
let tests =
    testList "KernelProperties" [
        testPropertyWithConfig (fsCheck 60) "NNGP and NTK are symmetric and PSD for x2 = x1" <| fun () ->
            Prop.forAll caseAndInputs (fun (c, spec, _) ->
                let net = c.Net
                let x = Generators.inputs c.Layout spec
                match computeOrOverflow net x None Both with
                | None -> true
                | Some k ->
                    match symmetryBounds c [ spec ] with
                    | Some nngpTol, ntkTol ->
                        for what, t, tol in [ "nngp", k.Nngp, nngpTol; "ntk", k.Ntk.Value, ntkTol ] do
                            assertClose (what + " symmetry") tol t.Data (transpose t).Data
                            // PSD up to round-off: λmin ≥ −1e-9·trace (eigenvalue errors are O(ε·‖K‖)).
                            let lo = minEig t
                            if lo < -1e-9 * trace t then failwithf "%s not PSD: λmin = %g, trace = %g for %A" what lo (trace t) net
                    | None, _ -> () // rank one at ρ = ±1 with √ε entry errors: no uniform bound (see symmetryBounds)
                    k.Cov2.IsNone)

        testPropertyWithConfig (fsCheck 60) "kernel(x2, x1) is the transpose of kernel(x1, x2)" <| fun () ->
            Prop.forAll caseAndInputs (fun (c, spec1, spec2) ->
                let net = c.Net
                let x1 = Generators.inputs c.Layout spec1
                let x2 = Generators.inputs c.Layout spec2
                match computeOrOverflow net x1 (Some x2) Both, computeOrOverflow net x2 (Some x1) Both with
                | Some a, Some b ->
                    // Same formula on swapped arguments: equal up to round-off (see symmetryBounds).
                    match symmetryBounds c [ spec1; spec2 ] with
                    | Some nngpTol, ntkTol ->
                        assertClose "nngp" nngpTol a.Nngp.Data (transpose b.Nngp).Data
                        assertClose "ntk" ntkTol a.Ntk.Value.Data (transpose b.Ntk.Value).Data
                    | None, _ -> ()
                    assertClose "cov1/cov2" 0.0 a.Cov1.Data b.Cov2.Value.Data
                    true
                | a, b -> a.IsNone && b.IsNone)

        testPropertyWithConfig (fsCheck 40) "the NNGP does not depend on out_dim or s in either parameterization" <| fun () ->
            let gen = Gen.zip3 Generators.networkCase (Gen.zip Generators.inputSpec Generators.inputSpec) (Gen.zip (Gen.choose (1, 64)) (Gen.choose (1, 4)))
            Prop.forAll (Arb.fromGen gen) (fun (c, (spec1, spec2), (n, s)) ->
                let net = c.Net
                let x1 = Generators.inputs c.Layout spec1
                let x2 = Generators.inputs c.Layout spec2
                // Every finite width scales by the common factor n (FanInConcat weights by relative widths and
                // FanInSum/FanInProd need equal widths, which must not change): out_dim → n·out_dim in the ntk
                // parameterization, and in the standard one out_dim → n·out_dim·s1 with s → (s, 1), which also
                // changes s0 and s1 themselves.
                let net' =
                    net |> rewidth (fun d ->
                        match d.Parameterization with
                        | Parameterization.Standard -> { d with OutDim = d.OutDim * n * snd d.S; S = (s, 1) }
                        | Parameterization.Ntk -> { d with OutDim = d.OutDim * n; S = (s, s) })
                match computeOrOverflow net x1 (Some x2) Nngp, computeOrOverflow net' x1 (Some x2) Nngp with
                | Some a, Some b ->
                    assertClose "nngp" 0.0 a.Nngp.Data b.Nngp.Data
                    true
                | a, b -> a.IsNone && b.IsNone)

        testPropertyWithConfig (fsCheck 40) "standard parameterization: the readout NTK grows by (ΔN·s1/s0)·K for a wider hidden layer" <| fun () ->
            // net(N) = Dense(N, standard, s=(1,s1)) → act → Dense(1, standard, s=(s0',1)). The readout adds
            // (N_in/s0')·nngp_hidden with N_in = N·s1 (arXiv:2001.07301; neural_tangents Dense, standard), and nothing else
            // depends on N: ntk(N2) − ntk(N1) = (N2 − N1)·s1/s0'·K, K the NNGP after the activation.
            let gen = Gen.zip3 (Gen.zip Generators.activation (Gen.choose (0, 100000))) (Gen.zip (Gen.choose (1, 2000)) (Gen.choose (1, 2000))) (Gen.zip (Gen.choose (1, 3)) (Gen.choose (1, 3)))
            Prop.forAll (Arb.fromGen gen) (fun ((act, seed), (n1, n2), (s1, s0')) ->
                let net n =
                    Serial [ Dense { Stax.denseDefaults n with WStd = 1.3; BStd = Some 0.2; Parameterization = Parameterization.Standard; S = (1, s1) }
                             act
                             Dense { Stax.denseDefaults 1 with WStd = 0.9; BStd = Some 0.1; Parameterization = Parameterization.Standard; S = (s0', 1) } ]
                let x1 = inputs seed 3 4
                let x2 = inputs (seed + 3) 4 4
                let hidden = KernelFn.compute (Serial [ Dense { Stax.denseDefaults 1 with WStd = 1.3; BStd = Some 0.2 }; act ]) x1 (Some x2) Nngp
                let a = KernelFn.compute (net n1) x1 (Some x2) Ntk
                let b = KernelFn.compute (net n2) x1 (Some x2) Ntk
                let expected = Tensor.scaleAdd (float (n2 - n1) * float s1 / float s0') hidden.Nngp a.Ntk.Value
                assertClose "ntk difference" 1e-10 expected.Data b.Ntk.Value.Data
                true)

        testPropertyWithConfig (fsCheck 40) "ReLU networks without bias are positively homogeneous of degree 2" <| fun () ->
            let gen = Gen.zip3 (Gen.choose (1, 4)) (Gen.choose (0, 100000)) (Gen.choose (1, 50))
            Prop.forAll (Arb.fromGen gen) (fun (depth, seed, c10) ->
                let c = float c10 / 10.0
                let layer = Serial [ yield Stax.dense 128 1.4 None
                                     for _ in 1 .. depth do
                                         yield Stax.relu
                                         yield Stax.dense 128 1.2 None ]
                let x1 = inputs seed 3 5
                let x2 = inputs (seed + 1) 4 5
                let a = KernelFn.compute layer x1 (Some x2) Both
                let b = KernelFn.compute layer (Tensor.scale c x1) (Some x2) Both
                // x1 → c·x1 scales cov1 by c², the cross covariance by c (one factor per side), so a second scaling of x2
                // gives c² for the cross kernels.
                let d = KernelFn.compute layer (Tensor.scale c x1) (Some(Tensor.scale c x2)) Both
                assertClose "nngp c²" 1e-12 (Tensor.scale (c * c) a.Nngp).Data d.Nngp.Data
                assertClose "ntk c²" 1e-12 (Tensor.scale (c * c) a.Ntk.Value).Data d.Ntk.Value.Data
                assertClose "nngp one-sided c" 1e-12 (Tensor.scale c a.Nngp).Data b.Nngp.Data
                assertClose "cov1 c²" 1e-12 (Tensor.scale (c * c) a.Cov1).Data b.Cov1.Data
                true)

        testPropertyWithConfig (fsCheck 60) "a single Dense layer gives W_std²·x1·x2ᵀ/C + b_std² and NTK equal to its NNGP" <| fun () ->
            let gen = Gen.zip3 (Gen.choose (0, 100000)) (Gen.zip (Gen.choose (0, 300)) (Gen.choose (0, 300))) (Gen.choose (1, 9))
            Prop.forAll (Arb.fromGen gen) (fun (seed, (w100, b100), c) ->
                let w, b = float w100 / 100.0, float b100 / 100.0
                let x1 = inputs seed 3 c
                let x2 = inputs (seed + 1) 2 c
                let k = KernelFn.compute (Stax.dense 7 w (Some b)) x1 (Some x2) Both
                // Closed form written out entry by entry.
                let expected =
                    Array.init 6 (fun idx ->
                        let i, j = idx / 2, idx % 2
                        let dot = Seq.init c (fun ch -> x1.Data[i * c + ch] * x2.Data[j * c + ch]) |> Seq.sum
                        w * w * dot / float c + b * b)
                assertClose "nngp" 1e-13 expected k.Nngp.Data
                // ntk parameterization, input NTK 0: ntk' = nngp' + W²·0.
                assertClose "ntk" 1e-13 expected k.Ntk.Value.Data
                true)

        testPropertyWithConfig (fsCheck 40) "serial is associative and repeat n l equals serial of n copies" <| fun () ->
            // a and b take inputs of the same layout (b also runs on a's (N, N) output, as any network can).
            let gen =
                gen {
                    let! l = Generators.layout
                    let! a = Generators.networkFor l
                    let! b = Generators.networkFor l
                    let! spec = Generators.inputSpec
                    return a, b, Generators.inputs l spec
                }
            Prop.forAll (Arb.fromGen gen) (fun (a, b, x) ->
                sameOutcome "associativity" (tryCompute (Serial [ Serial [ a; b ]; a ]) x) (tryCompute (Serial [ a; Serial [ b; a ] ]) x)
                sameOutcome "repeat" (tryCompute (Serial [ a; a; a ]) x) (tryCompute (Stax.repeat 3 a) x)
                true)

        testPropertyWithConfig { fsCheck 200 with arbitrary = [ typeof<Generators.Arbitraries> ] } "layer → JSON → layer round-trips" <| fun (layer: Layer) ->
            let text = Json.encode layer
            Json.decode text = layer
    ]
