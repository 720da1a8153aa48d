/// Custom and numerical activations (Elementwise, ElementwiseNumerical, the registry, dual numbers), the exact
/// values where neural_tangents is not (Sign's covariances, RectifiedMonomial at θ = 0) against 50-digit references,
/// and the scaling and layout laws of every closed form.
module NeuralTangents.Tests.ActivationNumericalTests

open System
open System.IO
open System.Text.Json.Nodes
open Expecto
open FsCheck
open FsCheck.FSharp
open NeuralTangents
open NeuralTangents.Layers
open NeuralTangents.Tests.TestUtil

/// (nngp, σ̇) of an activation at one covariance entry.
let private stepOf (layer: Layer) (q1: float) (q2: float) (c: float) =
    let k = KernelFn.applyKernel layer (gaussianPairKernel q1 q2 c)
    k.Nngp.Data[1], k.Ntk.Value.Data[1]

/// Inputs for network-level comparisons: 5 random points of dimension 7.
let private x5 = randomTensor 77 5 7

let private mlp (act: Layer) = Stax.serial [ Stax.dense 64 1.3 (Some 0.2); act; Stax.dense 1 0.9 (Some 0.1) ]

let private kernelErr (a: Kernel) (b: Kernel) =
    max (relErr a.Nngp.Data b.Nngp.Data) (relErr a.Ntk.Value.Data b.Ntk.Value.Data)

/// Every closed-form activation with arguments that exercise each term.
let private closedForms =
    [ "Exp", Stax.exp 0.9 0.5; "Gaussian", Stax.gaussian 1.2 -0.6; "ExpNormalized", Stax.expNormalized 0.8 -0.5 false
      "ExpNormalized clip", Stax.expNormalized 0.8 -0.5 true; "Rbf", Stax.rbf 0.7; "Sign", Stax.sign; "Gabor", Stax.gabor
      "Hermite 3", Stax.hermite 3; "RectifiedMonomial 2", Stax.rectifiedMonomial 2
      "Polynomial", Stax.polynomial [ 0.3; -0.5; 0.8; 0.2 ]; "ElementwiseNumerical tanh", Stax.elementwiseNumerical "tanh" 20 None
      "Elementwise relu", Activation(Elementwise.elementwiseNamed (Some "relu") "relu" None) ]

[<Tests>]
let tests =
    testList "ActivationNumericalTests" [
        testCase "Gauss–Hermite rule of degree 25 matches scipy.special.roots_hermite(25)" <| fun () ->
            let x, w = ElementwiseQuadrature.rule 25
            // scipy 1.x, /usr/bin/python3: roots_hermite(25), the four largest nodes and their weights.
            let xs = [| 4.218609444386561; 4.785320367352224; 5.413636355280033; 6.164272434052451 |]
            let ws = [| 1.0170382503018474e-08; 6.719638417706388e-11; 1.2588149877466652e-13; 2.711923514038378e-17 |]
            for i in 0 .. 3 do
                Expect.floatClose { absolute = 0.0; relative = 1e-14 } x[21 + i] xs[i] (sprintf "node %d" (21 + i))
                Expect.floatClose { absolute = 0.0; relative = 1e-12 } w[21 + i] ws[i] (sprintf "weight %d" (21 + i))
            Expect.equal x[12] 0.0 "middle node"
            Expect.floatClose { absolute = 0.0; relative = 1e-14 } w[12] 0.4398687221694849 "middle weight"
            // Degrees 100 and 150 (the largest accepted): scipy's largest node, the node just above 0 and its weight.
            for n, xMax, xMid, wMid in [ 100, 13.40648733814491, 0.11079587242243948, 0.2188926295874391
                                         150, 16.62950947883386, 0.09053935621739301, 0.17960204009494338 ] do
                let x, w = ElementwiseQuadrature.rule n
                Expect.floatClose { absolute = 0.0; relative = 1e-14 } x[n - 1] xMax (sprintf "deg %d largest node" n)
                Expect.floatClose { absolute = 0.0; relative = 1e-13 } x[n / 2] xMid (sprintf "deg %d node above 0" n)
                Expect.floatClose { absolute = 0.0; relative = 1e-13 } w[n / 2] wMid (sprintf "deg %d its weight" n)
                Expect.floatClose { absolute = 0.0; relative = 1e-14 } (Array.sum w) (Math.Sqrt Math.PI) (sprintf "deg %d Σw = √π" n)
            // Exact for x^k, k < 50: ∫ e^{−x²} x^{2m} dx = Γ(m + 1/2).
            for m in [ 0; 1; 5; 12; 24 ] do
                let s = Array.fold2 (fun acc xi wi -> acc + wi * xi ** float (2 * m)) 0.0 x w
                let exact = Math.Exp(MathNet.Numerics.SpecialFunctions.GammaLn(float m + 0.5))
                Expect.floatClose { absolute = 0.0; relative = 1e-13 } s exact (sprintf "moment x^%d" (2 * m))

        // Tolerance 5e-14 relative: a few ulp per elementary operation, amplified by the composite's conditioning
        // (mish′ at −7.3 sums terms 6.7e-4 and −4.9e-3; measured worst 1.7e-14 there, ≤ 4e-16 elsewhere).
        testCase "registry derivatives by dual numbers equal the hand-derived φ′ to 5e-14" <| fun () ->
            let sigmoid (x: float) = 1.0 / (1.0 + Math.Exp(-x))
            let softplus (x: float) = Math.Max(x, 0.0) + Math.Log(1.0 + Math.Exp(-abs x))
            let hand =
                [ "tanh", (fun x -> 1.0 / (Math.Cosh x * Math.Cosh x))
                  // e^{−|x|}/(1 + e^{−|x|})², not s(1 − s), which cancels for large |x|.
                  "sigmoid", (fun x -> let e = Math.Exp(-abs x) in e / ((1.0 + e) * (1.0 + e)))
                  "softplus", sigmoid
                  "swish", (fun x -> sigmoid x + x * sigmoid x * (1.0 - sigmoid x))
                  "elu", (fun x -> if x > 0.0 then 1.0 else Math.Exp x)
                  "mish", (fun x ->
                      let t = Math.Tanh(softplus x)
                      t + x * (1.0 - t * t) * sigmoid x)
                  "sin", cos
                  "cos", (fun x -> -sin x)
                  "exp", exp
                  "erf", (fun x -> 2.0 / Math.Sqrt Math.PI * Math.Exp(-x * x))
                  "relu6", (fun x -> if x > 0.0 && x < 6.0 then 1.0 else 0.0)
                  "hard_tanh", (fun x -> if abs x < 1.0 then 1.0 else 0.0) ]
            let mutable worst = 0.0
            for name, d in hand do
                let _, dphi = ElementwiseQuadrature.lookup "fn" name
                for x in [ -7.3; -2.0; -0.7; -1e-3; 1e-3; 0.4; 1.9; 5.5; 8.1 ] do
                    let e = abs (dphi x - d x) / Math.Max(abs (d x), 1e-300)
                    worst <- max worst (if d x = 0.0 then abs (dphi x) else e)
                    Expect.isLessThanOrEqual (if d x = 0.0 then abs (dphi x) else e) 5e-14 (sprintf "%s′(%g): %.17g vs %.17g" name x (dphi x) (d x))
            note (sprintf "registry φ′ (dual numbers) vs hand derivatives: worst relative error %.2e" worst)

        testCase "ElementwiseNumerical vs the closed forms Erf, Relu, Sin, Gelu at deg 25..200 (stated accuracy)" <| fun () ->
            // Measured relative Frobenius errors of the MLP kernel (nngp and ntk, 5 inputs, pre-activation variances
            // 0.1–3.5): see the note. Smooth maps converge geometrically; Relu's kink only algebraically.
            // Bounds ≈ 2.5× the measured errors (25 / 50 / 100 / 150 nodes): erf 8.6e-3 / 1.4e-4 / 3.8e-8 / 1.0e-11,
            // sin ≤ 2.8e-15 at every degree (its integrand is entire and of exponential type), gelu 2.9e-4 / 2.4e-7 /
            // 1.0e-13 / 2.2e-15, relu 5.7e-2 / 5.7e-3 / 3.0e-3 / 2.1e-3 (the kink: slow, as neural_tangents warns).
            // The pre-activation variances reach 3.5, where erf′ and gelu's curvature are narrow against the nodes.
            let bounds (name: string) (deg: int) =
                match name, deg with
                | "erf", 25 -> 2e-2 | "erf", 50 -> 4e-4 | "erf", 100 -> 1e-7 | "erf", _ -> 3e-11
                | "sin", _ -> 1e-14
                | "gelu", 25 -> 8e-4 | "gelu", 50 -> 6e-7 | "gelu", 100 -> 3e-13 | "gelu", _ -> 1e-14
                | _, 25 -> 0.15 | _, 50 -> 1.5e-2 | _, 100 -> 8e-3 | _ -> 6e-3
            for name, closed in [ "erf", Stax.erf 1.0 1.0 0.0; "sin", Stax.sin 1.0 1.0 0.0; "gelu", Stax.gelu false; "relu", Stax.relu ] do
                let exact = KernelFn.compute (mlp closed) x5 None Both
                let errs =
                    [ for deg in [ 25; 50; 100; 150 ] ->
                        deg, kernelErr exact (KernelFn.compute (mlp (Stax.elementwiseNumerical name deg None)) x5 None Both) ]
                note (sprintf "ElementwiseNumerical %-4s relative error by deg: %s" name
                          (errs |> List.map (fun (d, e) -> sprintf "%d: %.1e" d e) |> String.concat ", "))
                for deg, e in errs do
                    Expect.isLessThanOrEqual e (bounds name deg) (sprintf "%s at deg %d" name deg)

        testCase "ElementwiseNumerical is symmetric to its quadrature error, as neural_tangents' rule (it conditions on u)" <| fun () ->
            // Measured: ‖K − Kᵀ‖/‖K‖ for x2 = x1: 2.8e-4 at deg 25, 3.0e-10 at deg 150 (tanh, variances up to 3.5).
            for deg, bound in [ 25, 1e-3; 150, 1e-9 ] do
                let net = mlp (Stax.elementwiseNumerical "tanh" deg None)
                let k = KernelFn.compute net x5 None Both
                let t = Tensor.swapLeadingAxes k.Nngp
                let e = relErr k.Nngp.Data t.Data
                note (sprintf "ElementwiseNumerical tanh deg %d: asymmetry %.2e" deg e)
                Expect.isLessThanOrEqual e bound (sprintf "asymmetry at deg %d" deg)

        testCase "Elementwise: NNGP map over dual numbers gives Erf's closed-form kernel to 1e-14" <| fun () ->
            let erfMap (c: Dual) (q1: float) (q2: float) =
                2.0 / Math.PI * Dual.Asin(2.0 * c / Math.Sqrt((1.0 + 2.0 * q1) * (1.0 + 2.0 * q2)))
            let custom = Stax.elementwiseDual "erf" None None erfMap
            let explicitD =
                Stax.elementwise "erf" None None (fun c q1 q2 -> (erfMap (Dual(c, 0.0)) q1 q2).Value)
                    (fun c q1 q2 -> 4.0 / Math.PI / Math.Sqrt((1.0 + 2.0 * q1) * (1.0 + 2.0 * q2) - 4.0 * c * c))
            let exact = KernelFn.compute (mlp (Stax.erf 1.0 1.0 0.0)) x5 None Both
            for what, layer in [ "dual", custom; "explicit d_nngp_fn", explicitD; "JSON nngp_fn erf", Json.decode """{"layer":"Elementwise","nngp_fn":"erf"}""" ] do
                let e = kernelErr exact (KernelFn.compute (mlp layer) x5 None Both)
                note (sprintf "Elementwise(erf, %s) vs Erf: %.2e" what e)
                Expect.isLessThanOrEqual e 1e-14 what
            let relu = KernelFn.compute (mlp (Json.decode """{"layer":"Elementwise","fn":"relu","nngp_fn":"relu"}""")) x5 None Both
            Expect.isLessThanOrEqual (kernelErr (KernelFn.compute (mlp Stax.relu) x5 None Both) relu) 1e-14 "Elementwise(relu) vs Relu"

        testCase "custom layers: equal only to themselves, not JSON-encodable, finite network raises without fn" <| fun () ->
            let a = Stax.elementwiseNumericalDual "mytanh" tanh 20
            let b = Stax.elementwiseNumericalDual "mytanh" tanh 20
            Expect.equal a a "same object"
            Expect.notEqual a b "different objects"
            Expect.throwsT<Json.JsonArchitectureException> (fun () -> Json.encode (Stax.serial [ Stax.dense 4 1.0 None; a ]) |> ignore) "inside a serial"
            let e = try Json.encode a |> ignore; "" with Json.JsonArchitectureException m -> m
            Expect.stringContains e "mytanh" "names the layer"
            Expect.stringContains e "cannot be written as JSON" "says why"
            let noFn = Stax.elementwiseDual "k" None None (fun c _ _ -> c)
            let net = Stax.serial [ Stax.dense 3 1.0 None; noFn ]
            let _, p = InitFn.init 1 net x5.Shape
            Expect.throwsT<NeuralTangentsException> (fun () -> ApplyFn.apply net p x5 |> ignore) "apply without fn"
            let en = Stax.serial [ Stax.dense 3 1.0 None; Stax.expNormalized 1.0 -1.0 false ]
            let _, p = InitFn.init 1 en x5.Shape
            Expect.throwsT<NeuralTangentsException> (fun () -> ApplyFn.apply en p x5 |> ignore) "ExpNormalized has no finite fn"

        testCase "bad arguments name the layer, argument and value" <| fun () ->
            let bad (json: string) (parts: string list) =
                let m = try Json.decode json |> ignore; "" with Json.JsonArchitectureException m -> m
                for p in parts do Expect.stringContains m p json
            bad """{"layer":"ElementwiseNumerical","fn":"tanhh","deg":10}""" [ "ElementwiseNumerical"; "tanhh"; "softplus" ]
            bad """{"layer":"ElementwiseNumerical","fn":"tanh","deg":0}""" [ "ElementwiseNumerical"; "deg" ]
            bad """{"layer":"ElementwiseNumerical","fn":"tanh","deg":151}""" [ "ElementwiseNumerical"; "deg"; "150" ]
            bad """{"layer":"Hermite","degree":-1}""" [ "Hermite"; "degree" ]
            bad """{"layer":"Polynomial","coef":[1,"a"]}""" [ "Polynomial"; "coef" ]
            bad """{"layer":"Elementwise","nngp_fn":"tanh"}""" [ "Elementwise"; "tanh"; "relu, erf" ]
            bad """{"layer":"Rbf","gamma":-1}""" [ "Rbf"; "gamma"; "-1" ]

        testCase "50-digit references: RectifiedMonomial 0..5 at θ ∈ [0, π] (incl. θ = 0) and Gabor at small c" <| fun () ->
            // tests/fixtures/highprec/activations_mp.json, made by activations_mp.py (independent formulas, mpmath).
            // Tolerance 1e-10 of the Cauchy–Schwarz scale √(E φ(u)² E φ(v)²): forming q1q2 − c² in float64 loses
            // up to |c|²·ε absolutely, i.e. θ near 0 moves by ≲ ε/θ — inherent to the inputs, not the rule.
            let root = JsonNode.Parse(File.ReadAllText(Path.Combine(repoRoot, "tests", "fixtures", "highprec", "activations_mp.json")))
            let mutable worst = 0.0
            for case in root["cases"].AsArray() do
                let layer = Json.decodeLayer case["layer"]
                let q1, q2, c = case["q1"].GetValue<float>(), case["q2"].GetValue<float>(), case["c"].GetValue<float>()
                let nngp, sd = stepOf layer q1 q2 c
                let n1, _ = stepOf layer q1 q1 q1
                let n2, _ = stepOf layer q2 q2 q2
                let _, d1 = stepOf layer q1 q1 q1
                let _, d2 = stepOf layer q2 q2 q2
                let eN = abs (nngp - case["nngp"].GetValue<float>()) / Math.Sqrt(n1 * n2)
                let eD = if d1 * d2 = 0.0 then abs sd else abs (sd - case["sigma_dot"].GetValue<float>()) / Math.Sqrt(abs (d1 * d2))
                Expect.isFalse (Double.IsNaN nngp || Double.IsNaN sd) (sprintf "%A θ=%O: NaN" layer case["theta"])
                worst <- max worst (max eN eD)
                Expect.isLessThanOrEqual (max eN eD) 1e-10 (sprintf "%A θ=%O c=%g: nngp %.17g σ̇ %.17g (errors %.2e, %.2e)" layer case["theta"] c nngp sd eN eD)
            note (sprintf "activations_mp.json: worst error %.2e of the scale" worst)

        testCase "Sign: full-batch covariances equal the NNGP between the inputs (neural_tangents sets 1)" <| fun () ->
            let net = mlp Stax.sign
            let full = KernelFn.computeWithLayout { DiagonalBatch = Some false; DiagonalSpatial = None } (Stax.serial [ Stax.dense 64 1.3 (Some 0.2); Stax.sign ]) x5 None Both
            let k = KernelFn.compute (Stax.serial [ Stax.dense 64 1.3 (Some 0.2); Stax.sign ]) x5 None Both
            // cov1 (N, N) off the diagonal is E[sign u_i sign u_j] = the NNGP entry (Monte Carlo-verified in
            // ActivationMonteCarloTests); on the diagonal it is 1.
            assertClose "full cov1 = nngp" 1e-15 k.Nngp.Data full.Cov1.Data
            for i in 0 .. 4 do Expect.equal full.Cov1.Data[i * 5 + i] 1.0 "diagonal"
            Expect.isLessThan (full.Cov1.Data |> Array.min) 0.99 "off-diagonal entries are not 1"
            ignore net

        testCase "every closed form: full-batch layout agrees with the diagonal layout" <| fun () ->
            for name, act in closedForms do
                let net = mlp act
                let d = KernelFn.compute net x5 None Both
                let f = KernelFn.computeWithLayout { DiagonalBatch = Some false; DiagonalSpatial = None } net x5 None Both
                assertClose (name + " nngp") 1e-14 d.Nngp.Data f.Nngp.Data
                assertClose (name + " ntk") 1e-14 d.Ntk.Value.Data f.Ntk.Value.Data
                assertClose (name + " cov1 diagonal") 1e-14 d.Cov1.Data (Array.init 5 (fun i -> f.Cov1.Data[i * 5 + i]))

        testPropertyWithConfig (fsCheck 100) "scaling laws: a² for Exp/Gaussian, t² for Polynomial·t, Rbf(2γ) = Rbf(γ)², ExpNormalized shift" <| fun () ->
            let gen = gen {
                let! q1 = Gen.choose (1, 300) |> Gen.map (fun i -> float i / 100.0)
                let! q2 = Gen.choose (1, 300) |> Gen.map (fun i -> float i / 100.0)
                let! r = Gen.choose (-99, 99) |> Gen.map (fun i -> float i / 100.0)
                let! t = Gen.choose (-300, 300) |> Gen.map (fun i -> float i / 100.0)
                return q1, q2, r * Math.Sqrt(q1 * q2), t }
            Prop.forAll (Arb.fromGen gen) (fun (q1, q2, c, t) ->
                let close what (a: float) (b: float) =
                    if not (abs (a - b) <= 1e-13 * Math.Max(abs a, abs b)) then failwithf "%s: %.17g vs %.17g (q1=%g q2=%g c=%g t=%g)" what a b q1 q2 c t
                let pair (l: Layer) = stepOf l q1 q2 c
                for name, mk in [ "Exp", (fun a -> Stax.exp a 0.4); "Gaussian", (fun a -> Stax.gaussian a -0.3) ] do
                    let n1, d1 = pair (mk 1.0)
                    let nt, dt = pair (mk t)
                    close (name + " nngp a²") (t * t * n1) nt
                    close (name + " σ̇ a²") (t * t * d1) dt
                let coef = [ 0.3; -0.5; 0.8; 0.2 ]
                let n1, d1 = pair (Stax.polynomial coef)
                let nt, dt = pair (Stax.polynomial (coef |> List.map ((*) t)))
                // The kernels are sums of products of coefficients with Gaussian moments of either sign, which can
                // cancel (a σ̇ of 5e-3 from terms of order 1): each term carries ε-sized rounding, so the bound is
                // relative to the sum of the terms' magnitudes, which |coefficients| and |c| give (every term ≥ 0).
                let na, da = stepOf (Stax.polynomial (coef |> List.map abs)) q1 q2 (abs c)
                let closeScaled what (scale: float) (a: float) (b: float) =
                    if not (abs (a - b) <= 1e-13 * Math.Max(scale, Math.Max(abs a, abs b))) then
                        failwithf "%s: %.17g vs %.17g (terms ~%g; q1=%g q2=%g c=%g t=%g)" what a b scale q1 q2 c t
                closeScaled "Polynomial nngp t²" (t * t * na) (t * t * n1) nt
                closeScaled "Polynomial σ̇ t²" (t * t * da) (t * t * d1) dt
                let g = abs t + 0.1
                let r1, rd1 = pair (Stax.rbf g)
                let r2, rd2 = pair (Stax.rbf (2.0 * g))
                close "Rbf nngp(2γ) = nngp(γ)²" (r1 * r1) r2
                close "Rbf σ̇ = 2γ·nngp" (2.0 * g * r1) rd1
                close "Rbf σ̇(2γ)" (4.0 * g * r2) rd2
                let e0, ed0 = pair (Stax.expNormalized 0.7 -1.0 false)
                let es, eds = pair (Stax.expNormalized 0.7 (-1.0 + t) false)
                close "ExpNormalized shift" (Math.Exp(0.7 * t) * e0) es
                close "ExpNormalized σ̇ shift" (Math.Exp(0.7 * t) * ed0) eds
                // Erf(a, b, c): a² scaling of the NNGP's non-constant part and c² shift.
                let f0, fd0 = pair (Stax.erf 1.0 0.8 0.0)
                let ft, fdt = pair (Stax.erf t 0.8 0.5)
                close "Erf a², c²" (t * t * f0 + 0.25) ft
                close "Erf σ̇ a²" (t * t * fd0) fdt)

        testCase "Gaussian with b > 0: finite while 4·b·q < 1 for every input variance, refused with the numbers beyond" <| fun () ->
            // a = 1.5, b = 0.5: the domain is q < 1/(4b) = 0.5. Inside it the NNGP is the Gaussian integral
            // a²/√((1 − 2b·q1)(1 − 2b·q2) − 4b²c²), written out here (q1 = 0.45, q2 = 0.3, c = 0.2).
            let layer = Stax.gaussian 1.5 0.5
            let nngp, _ = stepOf layer 0.45 0.3 0.2
            let expected = 2.25 / Math.Sqrt((1.0 - 0.45) * (1.0 - 0.3) - 0.04)
            Expect.floatClose Accuracy.veryHigh nngp expected "inside the domain"
            for q1 in [ 0.5; 0.8 ] do
                let e = throwsExactly<NeuralTangentsException> (fun () -> stepOf layer q1 0.3 0.2 |> ignore)
                Expect.stringStarts e.Message "Gaussian(a=1.5, b=0.5): with b > 0" "names the layer and its arguments"
                Expect.stringContains e.Message (sprintf "below 1/(4·b) = 0.5, but the largest is %g (4·b·q = %g)" q1 (2.0 * q1)) "the condition and the value"
                Expect.stringContains e.Message "use b ≤ 0" "the fix"
            // The same refusal from the CLI's path (a Dense layer before it): no generic overflow message.
            let x = Tensor.ofJagged [| [| 0.1; 0.2; 0.3 |]; [| -0.5; 0.4; 1.0 |] |]
            let e = throwsExactly<NeuralTangentsException> (fun () ->
                KernelFn.compute (Stax.serial [ Stax.dense 3 1.0 None; Stax.gaussian 1.0 1.0 ]) x None Both |> ignore)
            // The Dense layer's variances are |x|²/3: 0.14/3 and 1.41/3 = 0.47, the largest.
            Expect.stringContains e.Message (sprintf "below 1/(4·b) = 0.25, but the largest is %g" (1.41 / 3.0)) "Dense's variance"
    ]
