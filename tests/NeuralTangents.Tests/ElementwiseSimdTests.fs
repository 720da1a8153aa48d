/// The vectorised kernel steps of the closed-form activations (Layers/ElementwiseSimd.fs) against their scalar
/// twins, on random diagonal-layout kernels with run lengths that are not multiples of 4 (a padded tail vector), one
/// position (v1 broadcast along a row), correlations ρ = ±1 and 0, and zero variances; and in place = fresh.
module NeuralTangents.Tests.ElementwiseSimdTests

open System
open System.Runtime.Intrinsics
open Expecto
open NeuralTangents
open NeuralTangents.Layers

/// A diagonal-batch, diagonal-spatial kernel between n1 and n2 inputs with s positions: random variances in
/// [0, 2.5] (one in 7 exactly 0), covariances ρ·√(v1v2) with ρ uniform in [−1, 1] or exactly ±1 or 0, NTK > 0.
let private randomKernel (seed: int) (n1: int) (n2: int) (s: int) : Kernel =
    let rng = Random(seed)
    let variance () = if rng.Next 7 = 0 then 0.0 else 2.5 * rng.NextDouble()
    let c1 = Array.init (n1 * s) (fun _ -> variance ())
    let c2 = Array.init (n2 * s) (fun _ -> variance ())
    let nngp =
        Array.init (n1 * n2 * s) (fun e ->
            let p = e % s
            let i, j = e / s / n2, e / s % n2
            let rho =
                match rng.Next 8 with
                | 0 -> 1.0
                | 1 -> -1.0
                | 2 -> 0.0
                | _ -> 2.0 * rng.NextDouble() - 1.0
            rho * Math.Sqrt(c1[i * s + p] * c2[j * s + p]))
    let ntk = Array.init nngp.Length (fun _ -> 0.1 + 3.0 * rng.NextDouble())
    let shape = if s = 1 then [| n1; n2 |] else [| n1; n2; s |]
    { Nngp = Tensor.create shape nngp
      Ntk = Some(Tensor.create shape ntk)
      Cov1 = Tensor.create (if s = 1 then [| n1 |] else [| n1; s |]) c1
      Cov2 = Some(Tensor.create (if s = 1 then [| n2 |] else [| n2; s |]) c2)
      X1IsX2 = false
      IsGaussian = true
      IsReversed = false
      IsInput = false
      DiagonalBatch = true
      DiagonalSpatial = true
      Shape1 = Array.append [| n1 |] (Array.append (if s = 1 then [||] else [| s |]) [| 64 |])
      Shape2 = Array.append [| n2 |] (Array.append (if s = 1 then [||] else [| s |]) [| 64 |])
      BatchAxis = 0
      ChannelAxis = -1
      Mask1 = None
      Mask2 = None }

let private copyKernel (k: Kernel) =
    { k with
        Nngp = Tensor.create k.Nngp.Shape (Array.copy k.Nngp.Data)
        Ntk = k.Ntk |> Option.map (fun t -> Tensor.create t.Shape (Array.copy t.Data)) }

/// The magnitude M of the terms that the transcendental functions enter, at one entry (x, v1, v2): the vector and
/// scalar results differ by at most K·ε·M (below). It is |result| where no cancellation follows the exp/atan2, and
/// the sum of the terms' magnitudes where one does (Sin's difference of exponentials, Gelu's sum, Gabor's e^y − 1,
/// Sign's 1 − 2θ/π, Erf's a²·asin + c²).
let private magnitude (a: Activation) (x: float) (v1: float) (v2: float) (nngp: float) (dot: float) =
    match a with
    | Sin s ->
        let b2 = s.B * s.B
        let e1 = Math.Exp(b2 * (-0.5 * (v1 + v2) + x))
        let e2 = Math.Exp(b2 * (-0.5 * (v1 + v2) - x))
        let m = s.A * s.A / 2.0 * (e1 + e2)
        m, m * b2
    | Gelu _ ->
        let d2 = (v1 + 1.0) * (v2 + 1.0) - x * x
        let angle = Math.Abs(Math.Atan2(x, Math.Sqrt(Math.Max(d2, 0.0))))
        abs nngp + abs x * angle / (2.0 * Math.PI) + 0.25 * abs x, abs dot + 0.25 + angle / (2.0 * Math.PI)
    | Gabor ->
        let sum, diff = v1 + v2, 4.0 * (v1 * v2 - x * x)
        let denom = 2.0 * sum + diff + 1.0
        let left = Math.Exp(-(sum + diff + 2.0 * x) / (2.0 * denom))
        let right = Math.Exp(2.0 * x / denom)
        let shared = 1.0 + 2.0 * sum + 4.0 * (x * x + v1 * v2)
        let t = abs (4.0 * x * (diff + 3.0 * sum + 2.0))
        abs nngp + left * (1.0 + right) / (2.0 * Math.Sqrt denom),
        abs dot + left * (shared + t) * (1.0 + right) / (2.0 * Math.Pow(denom, 2.5))
    | Sign -> 2.0, 0.0
    | RectifiedMonomial n ->
        // The kernel's largest value, at θ = 0: (q1q2)^{n/2}/(2π)·J_n(0), J_n(0) = (2n − 1)!!·π (J_n near θ = π is
        // small and its error is relative to this scale: θ, cos θ, sin θ enter with absolute errors).
        let dfact (m: int) = if m <= 0 then 1.0 else List.fold (*) 1.0 [ for k in m .. -2 .. 1 -> float k ]
        let prod = v1 * v2
        let m = Math.Pow(prod, float n / 2.0) / (2.0 * Math.PI) * dfact (2 * n - 1) * Math.PI
        let md = if n = 0 then 0.0 else float (n * n) * Math.Pow(prod, float (n - 1) / 2.0) / (2.0 * Math.PI) * dfact (2 * n - 3) * Math.PI
        abs nngp + m, abs dot + md
    | Erf s -> abs nngp + 2.0 * s.C * s.C, abs dot
    | _ -> abs nngp, abs dot

/// K = 16: exp (Vector256.Exp against libm) and atan2 (Cephes against libm) differ by ≤ 3 ulp; x⁴, D^{5/2} and
/// xⁿ (n ≤ 5) are formed with ≤ 5 different roundings; the difference then passes through ≤ 4 more roundings
/// of the formula (each adding ≤ 1 ulp of M); 16 covers 3 + 5 + 4 with margin. The NTK entry is σ̇·ntk (one more
/// rounding, and |ntk| ≤ 3.1 scales M).
let private K = 16.0

/// An activation on one line, for test names.
let private show (a: Activation) = Text.RegularExpressions.Regex.Replace(sprintf "%A" a, @"\s+", " ")

let private assertTwins (a: Activation) (k: Kernel) =
    let scalar = (Elementwise.scalarStep a).Value
    let rule = (Elementwise.vectorRule a).Value
    let expected = Elementwise.pointwiseAnyLayout scalar k
    let actual = rule false k
    let n1, n2 = k.Nngp.Shape[0], k.Nngp.Shape[1]
    let s = k.Nngp.Length / (n1 * n2)
    let c2 = k.Cov2.Value.Data
    let mutable worst = 0.0
    for e in 0 .. k.Nngp.Length - 1 do
        let p, i, j = e % s, e / s / n2, e / s % n2
        let x, v1, v2 = k.Nngp.Data[e], k.Cov1.Data[i * s + p], c2[j * s + p]
        let en, et = expected.Nngp.Data[e], expected.Ntk.Value.Data[e]
        let an, at = actual.Nngp.Data[e], actual.Ntk.Value.Data[e]
        let struct (_, dot) = scalar x v1 v2
        let mn, md = magnitude a x v1 v2 en dot
        let check (what: string) (ev: float) (av: float) (m: float) =
            let same = ev = av || (Double.IsNaN ev && Double.IsNaN av)
            if not same then
                let err = abs (av - ev)
                if not (err <= K * Double.Epsilon + K * 2.220446049250313e-16 * m) then
                    failtestf "%A %s at (c=%.17g, q1=%.17g, q2=%.17g): vector %.17g, scalar %.17g (bound %.3g)" a what x v1 v2 av ev (K * 2.22e-16 * m)
                if m > 0.0 then worst <- max worst (err / (2.220446049250313e-16 * m))
        check "nngp" en an mn
        check "ntk" et at (md * k.Ntk.Value.Data[e])
    // The covariances: entry v maps to step(v, v, v), vectorised too.
    for (ec: float[]), (ac: float[]), (c: float[]) in [ expected.Cov1.Data, actual.Cov1.Data, k.Cov1.Data; expected.Cov2.Value.Data, actual.Cov2.Value.Data, c2 ] do
        for i in 0 .. c.Length - 1 do
            let struct (en, dot) = scalar c[i] c[i] c[i]
            let mn, _ = magnitude a c[i] c[i] c[i] en dot
            let ok = ec[i] = ac[i] || abs (ac[i] - ec[i]) <= K * 2.220446049250313e-16 * mn
            if not ok then failtestf "%A covariance %.17g: vector %.17g, scalar %.17g" a c[i] ac[i] ec[i]
    // In place (the plan owns the arrays): the same numbers, written into the input's own arrays.
    let own = copyKernel k
    let inPlace = rule true own
    Expect.isTrue (obj.ReferenceEquals(inPlace.Nngp.Data, own.Nngp.Data)) (sprintf "%A: in place writes the input's nngp" a)
    Expect.isTrue (obj.ReferenceEquals(inPlace.Ntk.Value.Data, own.Ntk.Value.Data)) (sprintf "%A: in place writes the input's ntk" a)
    Expect.sequenceEqual (Array.map BitConverter.DoubleToInt64Bits inPlace.Nngp.Data) (Array.map BitConverter.DoubleToInt64Bits actual.Nngp.Data) (sprintf "%A: in place nngp" a)
    Expect.sequenceEqual (Array.map BitConverter.DoubleToInt64Bits inPlace.Ntk.Value.Data) (Array.map BitConverter.DoubleToInt64Bits actual.Ntk.Value.Data) (sprintf "%A: in place ntk" a)
    worst

/// Every activation with a vectorised rule, with default and non-default arguments.
let private activations : Activation list =
    [ Elementwise.erf 1.0 1.0 0.0; Elementwise.erf 0.7 1.3 0.4; Elementwise.sigmoidLike
      Gelu false; Gelu true
      Elementwise.sin 1.0 1.0 0.0; Elementwise.cos 1.0 1.0 0.0; Elementwise.sin 1.2 0.8 0.3
      for d in 0 .. 5 do Elementwise.monomial d
      Elementwise.exp 1.0 1.0; Elementwise.exp 0.8 -1.1
      Elementwise.gaussian 1.0 -1.0; Elementwise.gaussian 0.7 -0.3
      Elementwise.expNormalized 1.0 -1.0 false; Elementwise.expNormalized 1.5 -0.5 true
      Elementwise.rbf 1.0; Elementwise.rbf 0.3; Sign; Gabor
      for n in 0 .. 5 do Elementwise.hermite n
      for n in [ 0; 1; 2; 3; 5 ] do Elementwise.rectifiedMonomial n
      Elementwise.polynomial [ 0.3; -0.5; 0.8; 0.2 ]; Elementwise.polynomial [ 1.0; -2.0; 0.5; 0.25; -0.125; 0.1; 0.05 ] ]

/// (n1, n2, s): s = 1 runs along a row (v1 broadcast), n2 = 7 and s = 6, 5 leave tails, s = 11 has two vectors.
let private shapes = [ 3, 7, 1; 2, 9, 1; 3, 4, 6; 2, 3, 5; 2, 2, 11; 1, 1, 3 ]

[<Tests>]
let tests =
    testList "ElementwiseSimdTests" [
        test "Vector256 is accelerated here (else the pass is the scalar step and these tests compare it with itself)" {
            Expect.isTrue Vector256.IsHardwareAccelerated "this machine has AVX2"
        }
        for a in activations do
            test (sprintf "vector step = scalar step within K ulp of the terms: %s" (show a)) {
                let worst = shapes |> List.mapi (fun i (n1, n2, s) -> assertTwins a (randomKernel (100 + i) n1 n2 s)) |> List.max
                TestUtil.note (sprintf "  %s: largest vector − scalar difference %.2f ε·M" (show a) worst)
            }
        test "the diagonal of nngp is bit-identical to the covariances, wherever the entry falls in a vector" {
            // x1 = x2 with 7 inputs (s = 1: a row is one vector and a 3-entry tail) and with 3 positions (s = 3: a
            // run is one padded tail): nngp[i, i, p] = cov[i, p] on input, so the same step must give equal bits.
            for s in [ 1; 3 ] do
                let k0 = randomKernel 7 7 7 s
                let n = 7
                let nngp = Array.copy k0.Nngp.Data
                for i in 0 .. n - 1 do
                    for p in 0 .. s - 1 do nngp[(i * n + i) * s + p] <- k0.Cov1.Data[i * s + p]
                let k = { k0 with Nngp = Tensor.create k0.Nngp.Shape nngp; Cov2 = None; X1IsX2 = true }
                for a in activations do
                    let r = (Elementwise.vectorRule a).Value false k
                    for i in 0 .. n - 1 do
                        for p in 0 .. s - 1 do
                            let d, c = r.Nngp.Data[(i * n + i) * s + p], r.Cov1.Data[i * s + p]
                            if BitConverter.DoubleToInt64Bits d <> BitConverter.DoubleToInt64Bits c then
                                failtestf "%s, s = %d: nngp[%d, %d, %d] = %.17g but cov1[%d, %d] = %.17g" (show a) s i i p d i p c
        }
        test "every closed form has a vectorised rule (ABRelu its own pass in Simd), the numerical ones not" {
            for a in activations do Expect.isSome (Elementwise.vectorRule a) (show a)
            Expect.isNone (Elementwise.vectorRule (Elementwise.elementwiseNumerical "tanh" 5 None)) "ElementwiseNumerical runs the scalar pass"
        }
    ]
