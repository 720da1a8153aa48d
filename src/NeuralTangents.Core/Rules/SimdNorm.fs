namespace NeuralTangents.Rules

#nowarn "9" // pointer loads/stores over pinned arrays

open System
open System.Runtime.CompilerServices
open System.Runtime.Intrinsics
open System.Runtime.Intrinsics.X86
open Microsoft.FSharp.NativeInterop

/// The division-free arc-cosine (ABRelu) step of the fused convolution executor (<c>ConvStack</c>): the angle from a
/// unit vector by sector folding and an asin polynomial, its scalar twin, and the fused run over a row.
module internal SimdNorm =

    open Simd

    // Division-free ABRelu for the fused convolution executor (Rules.ConvStack). With per-position tables
    // r = 1/√v (0 where v = 0), the angle θ = atan2(sq, x) between the two points is the angle of the unit vector
    // (c, s) = (x·r1·r2, sq·r1·r2): fold it to within π/8 of k·π/4 (k = 0…4) by the rotation
    // u = sin(θ − kπ/4) = s·cos(kπ/4) − c·sin(kπ/4), then θ = kπ/4 + asin(u) with |u| ≤ sin(π/8), where
    // asin(u) = u + u·z·h(z), z = u², and h a degree-10 polynomial (Chebyshev fit of (asin(√z)/√z − 1)/z on
    // [0, sin²(π/8)] with mpmath; 1e-18 relative, below double rounding). One square root (of v1·v2 − x², as the
    // scalar rule takes it, so a pair of identical inputs gets sq = 0 and θ = 0 exactly) and no division; c = s = 0
    // (a zero-variance input) lands in k = 2 with u = 0: θ = π/2, as atan2(0, 0) is taken.

    [<Literal>]
    let AsinH0 = 0.015490515601026664
    [<Literal>]
    let AsinH1 = 0.005144609258487766
    [<Literal>]
    let AsinH2 = 0.010442101076906674
    [<Literal>]
    let AsinH3 = 0.011465526094022774
    [<Literal>]
    let AsinH4 = 0.013971776546656867
    [<Literal>]
    let AsinH5 = 0.01735240947296351
    [<Literal>]
    let AsinH6 = 0.022372170361403255
    [<Literal>]
    let AsinH7 = 0.030381944236455183
    [<Literal>]
    let AsinH8 = 0.044642857144819914
    [<Literal>]
    let AsinH9 = 0.0749999999999928
    [<Literal>]
    let AsinH10 = 0.16666666666666666
    [<Literal>]
    let CosPi8 = 0.92387953251128674
    [<Literal>]
    let SinPi8 = 0.38268343236508978
    [<Literal>]
    let SqrtHalf = 0.70710678118654752

    // h(z) = AsinH0·z¹⁰ + AsinH1·z⁹ + … + AsinH10 is evaluated by Estrin's scheme, the same tree in every width:
    // adjacent coefficients pair up by one FMA each (AsinH9·z + AsinH10, …), and z², z⁴, z⁸ join the pairs. Its longest chain is z → z² → z⁴ →
    // z⁸ → h, four operations where Horner's rule takes ten dependent FMAs: the step's latency, not its operation
    // count, bounds it (the loop is one long dependency chain per element, and the out-of-order window holds only a few
    // of them). For z ≤ sin²(π/8) ≈ 0.146 both orders are within a few ulp of h, which enters asin(u) damped by
    // u·z ≤ 0.056·u.

    /// Whether the executor's common case takes the two-pass body (<c>abReluNormSplit256</c>); tests and benchmarks
    /// switch it (same bits).
    let mutable splitAct = true

    /// Whether the executor's two passes also take the convolution's last three-tap window themselves
    /// (ConvStackPasses.actRunsWindow256) instead of a separate pass over the row; benchmarks switch it (same bits).
    let mutable windowInAct = true

    /// Whether the executor sums the first axis's rows for three output rows in one pass where it can (else one at a
    /// time; ConvStack.runBand, with windowInAct); tests and benchmarks switch it (same bits).
    let mutable rowsAtOnce = true

    /// Scalar twin of <c>angleUnit256</c>.
    let angleUnit (c: float) (s: float) =
        let u, bse, lo =
            if c >= CosPi8 then s, 0.0, 0.0
            elif c > SinPi8 then (s - c) * SqrtHalf, piOver4, 0.5 * MoreBits
            elif c <= -CosPi8 then -s, Math.PI, 2.0 * MoreBits
            elif c < -SinPi8 then -((s + c) * SqrtHalf), 3.0 * piOver4, 1.5 * MoreBits
            else -c, piOver2, MoreBits
        let z = u * u
        let z2 = z * z
        let z4 = z2 * z2
        let z8 = z4 * z4
        let fma (a: float) (b: float) (c: float) = Math.FusedMultiplyAdd(a, b, c)
        let r0 = fma (fma AsinH7 z AsinH8) z2 (fma AsinH9 z AsinH10)
        let r1 = fma (fma AsinH3 z AsinH4) z2 (fma AsinH5 z AsinH6)
        let r2 = fma AsinH0 z2 (fma AsinH1 z AsinH2)
        let h = fma r2 z8 (fma r1 z4 r0)
        bse + (Math.FusedMultiplyAdd(u * z, h, u) + lo)

    /// The sector of (c, s) as angleUnit256 finds it: the folded argument u and the angle's multiple k of π/4.
    let inline sector256 (c: Vector256<float>) (s: Vector256<float>) =
        let signBit = Vector256.Create -0.0
        let ac = Avx.AndNot(signBit, c)
        let m0 = Avx.CompareGreaterThanOrEqual(ac, Vector256.Create CosPi8)
        let m1 = Avx.CompareGreaterThan(ac, Vector256.Create SinPi8)
        let u0 =
            Avx.BlendVariable(Avx.BlendVariable(Avx.Xor(ac, signBit), (s - ac) * Vector256.Create SqrtHalf, m1), s, m0)
        let cSign = Avx.And(signBit, c)
        let u = Avx.Xor(u0, cSign)
        // Base and low part from the angle's multiple k of π/4 (quarters): sector 0 → k = 0 or 4 (c < 0), sector 1 →
        // 1 or 3, sector 2 → 2; k = 2 + σ·[m1] + σ·[m0] with σ = +1 where c's sign bit is set (c = −0 too, as a
        // select by the sign of c takes it) and −1 elsewhere (sector 0 lies inside sector 1's test). Then k·(π/4)
        // and k·(MoreBits/2) are the sectors' constants bit for bit (k = 0, 1, 2, 4 scale exactly; k = 3 rounds
        // once, as 3·(π/4) does): four and/xor/adds and two products instead of twelve selects.
        let sigma = Avx.Xor(Vector256.Create -1.0, cSign)
        struct (u, Vector256.Create 2.0 + Avx.And(m1, sigma) + Avx.And(m0, sigma))

    /// asin(u) for |u| ≤ sin(π/8): u + u·z·h(z), z = u², h by Estrin's scheme (see above).
    let inline asinFolded256 (u: Vector256<float>) =
        let z = u * u
        let z2 = z * z
        let z4 = z2 * z2
        let z8 = z4 * z4
        let k (v: float) = Vector256.Create v
        let r0 = Fma.MultiplyAdd(Fma.MultiplyAdd(k AsinH7, z, k AsinH8), z2, Fma.MultiplyAdd(k AsinH9, z, k AsinH10))
        let r1 = Fma.MultiplyAdd(Fma.MultiplyAdd(k AsinH3, z, k AsinH4), z2, Fma.MultiplyAdd(k AsinH5, z, k AsinH6))
        let r2 = Fma.MultiplyAdd(k AsinH0, z2, Fma.MultiplyAdd(k AsinH1, z, k AsinH2))
        let h = Fma.MultiplyAdd(r2, z8, Fma.MultiplyAdd(r1, z4, r0))
        Fma.MultiplyAdd(u * z, h, u)

    /// The angle of (c, s), s ≥ 0, c² + s² ≈ 1 (or c = s = 0: π/2), lane-wise; see above. The sectors are found
    /// from |c| (three of them), the sign of c then mirrors them (θ ↦ π − θ: u ↦ −u, asin being odd, and the base
    /// and its low part from the other half): the same u, base and low part as <c>angleUnit</c> takes per sector,
    /// bit for bit ((s − |c|) = (s + c) for c < 0 exactly). The selects of u are single vblendvpd (by the sign bit
    /// of a mask), not and/andnot/or triples; the base and low part are products of the sector's multiple of π/4.
    let inline angleUnit256 (c: Vector256<float>) (s: Vector256<float>) =
        let struct (u, quarters) = sector256 c s
        quarters * Vector256.Create piOver4 + (asinFolded256 u + quarters * Vector256.Create(0.5 * MoreBits))

    /// <c>sector256</c> on 512-bit vectors, by the portable Vector512 API (so it also runs, in software, where
    /// AVX-512 is missing: tests force it): the same sectors, selects and operation order, so the same bits; the
    /// mirror for a negative c (c = −0 included) goes by c's sign bit, as in the 256-bit step.
    let inline sector512 (c: Vector512<float>) (s: Vector512<float>) =
        let signBit = Vector512.Create -0.0
        let ac = Vector512.AndNot(c, signBit)
        let m0 = Vector512.GreaterThanOrEqual(ac, Vector512.Create CosPi8)
        let m1 = Vector512.GreaterThan(ac, Vector512.Create SinPi8)
        let sel (m: Vector512<float>) (ifTrue: Vector512<float>) (ifFalse: Vector512<float>) = Vector512.ConditionalSelect(m, ifTrue, ifFalse)
        let u0 = sel m0 s (sel m1 ((s - ac) * Vector512.Create SqrtHalf) (Vector512.Xor(ac, signBit)))
        let cSign = Vector512.BitwiseAnd(signBit, c)
        let u = Vector512.Xor(u0, cSign)
        let sigma = Vector512.Xor(Vector512.Create -1.0, cSign)
        struct (u, Vector512.Create 2.0 + Vector512.BitwiseAnd(m1, sigma) + Vector512.BitwiseAnd(m0, sigma))

    /// <c>asinFolded256</c> on 512-bit vectors (portable API): the same Estrin scheme, the same bits.
    let inline asinFolded512 (u: Vector512<float>) =
        let z = u * u
        let z2 = z * z
        let z4 = z2 * z2
        let z8 = z4 * z4
        let k (v: float) = Vector512.Create v
        let fma (a: Vector512<float>) (b: Vector512<float>) (c: Vector512<float>) = Vector512.FusedMultiplyAdd(a, b, c)
        let r0 = fma (fma (k AsinH7) z (k AsinH8)) z2 (fma (k AsinH9) z (k AsinH10))
        let r1 = fma (fma (k AsinH3) z (k AsinH4)) z2 (fma (k AsinH5) z (k AsinH6))
        let r2 = fma (k AsinH0) z2 (fma (k AsinH1) z (k AsinH2))
        let h = fma r2 z8 (fma r1 z4 r0)
        Vector512.FusedMultiplyAdd(u * z, h, u)

    /// <c>angleUnit256</c> on 512-bit vectors (portable API; see <c>sector512</c>).
    let inline angleUnit512 (c: Vector512<float>) (s: Vector512<float>) =
        let struct (u, quarters) = sector512 c s
        quarters * Vector512.Create piOver4 + (asinFolded512 u + quarters * Vector512.Create(0.5 * MoreBits))

    /// <c>abReluNormBody256</c> on 512-bit vectors (portable API; see <c>angleUnit512</c>): same operations in the
    /// same order. max(0, ·) is Vector512.Max (IEEE maximum: a NaN passes, as Math.Max passes it).
    let inline abReluNormBody512 (pre: DensePre) (factor: float) (half: float) (px: nativeptr<float>) (pt: nativeptr<float>)
                                 (pv1: nativeptr<float>) (pr1: nativeptr<float>) (v1Broadcast: bool)
                                 (pv2: nativeptr<float>) (pr2: nativeptr<float>) (pn: nativeptr<float>) (pd: nativeptr<float>)
                                 (withNtk: bool) (ident: bool) (fromOut: bool) (len: int) =
        let mutable i = 0
        let f = Vector512.Create factor
        let nf = Vector512.Create -factor
        let hv = Vector512.Create half
        let v1b = Vector512.Create(NativePtr.read pv1)
        let r1b = Vector512.Create(NativePtr.read pr1)
        let vw, vb, vcN, vcB = Vector512.Create pre.W2, Vector512.Create pre.B2, Vector512.Create pre.CN, Vector512.Create pre.CB
        while i + 8 <= len do
            let x0 = Vector512.Load(NativePtr.add px i)
            let x = if ident then x0 else x0 * vw + vb
            let v1 = if v1Broadcast then v1b else Vector512.Load(NativePtr.add pv1 i)
            let r1 = if v1Broadcast then r1b else Vector512.Load(NativePtr.add pr1 i)
            let sq = Vector512.Sqrt(Vector512.Max(Vector512<float>.Zero, v1 * Vector512.Load(NativePtr.add pv2 i) - x * x))
            let rr = r1 * Vector512.Load(NativePtr.add pr2 i)
            let theta = angleUnit512 (x * rr) (sq * rr)
            let dot = Vector512.FusedMultiplyAdd(nf, theta, hv)
            (Vector512.FusedMultiplyAdd(dot, x, f * sq)).Store(NativePtr.add pn i)
            if withNtk then
                let add = if fromOut then x else Vector512.FusedMultiplyAdd(x0, vcN, vcB)
                let tv =
                    if ident then Vector512.Load(NativePtr.add pt i) + add
                    else Vector512.FusedMultiplyAdd(Vector512.Load(NativePtr.add pt i), vw, add)
                (dot * tv).Store(NativePtr.add pd i)
            i <- i + 8
        i

    /// The Vector256 body of <c>abReluNormRun</c> over the whole vectors of a run; returns where the scalar tail
    /// starts. The flags are arguments so that callers can pass constants (it is inline).
    let inline abReluNormBody256 (pre: DensePre) (factor: float) (half: float) (px: nativeptr<float>) (pt: nativeptr<float>)
                                 (pv1: nativeptr<float>) (pr1: nativeptr<float>) (v1Broadcast: bool)
                                 (pv2: nativeptr<float>) (pr2: nativeptr<float>) (pn: nativeptr<float>) (pd: nativeptr<float>)
                                 (withNtk: bool) (ident: bool) (fromOut: bool) (len: int) =
        let mutable i = 0
        let f = Vector256.Create factor
        let hv = Vector256.Create half
        let v1b = Vector256.Create(NativePtr.read pv1)
        let r1b = Vector256.Create(NativePtr.read pr1)
        let vw, vb, vcN, vcB = Vector256.Create pre.W2, Vector256.Create pre.B2, Vector256.Create pre.CN, Vector256.Create pre.CB
        while i + 4 <= len do
            let x0 = Vector256.Load(NativePtr.add px i)
            let x = if ident then x0 else x0 * vw + vb
            let v1 = if v1Broadcast then v1b else Vector256.Load(NativePtr.add pv1 i)
            let r1 = if v1Broadcast then r1b else Vector256.Load(NativePtr.add pr1 i)
            let sq = Avx.Sqrt(Avx.Max(Vector256<float>.Zero, v1 * Vector256.Load(NativePtr.add pv2 i) - x * x))
            let rr = r1 * Vector256.Load(NativePtr.add pr2 i)
            let theta = angleUnit256 (x * rr) (sq * rr)
            let dot = Fma.MultiplyAddNegated(f, theta, hv)
            (Fma.MultiplyAdd(dot, x, f * sq)).Store(NativePtr.add pn i)
            if withNtk then
                let add = if fromOut then x else Fma.MultiplyAdd(x0, vcN, vcB)
                let tv = if ident then Vector256.Load(NativePtr.add pt i) + add else Fma.MultiplyAdd(Vector256.Load(NativePtr.add pt i), vw, add)
                (dot * tv).Store(NativePtr.add pd i)
            i <- i + 4
        i

    /// One contiguous run of the division-free ABRelu step with a Dense-style affine map in front (see
    /// <c>abReluRun</c>): x, t, v2, r2 advance; v1, r1 advance too unless <c>v1Broadcast</c>. Outputs may not alias
    /// the inputs. The affine map of x is a multiply then an add, as the variances are taken (<c>ConvStack</c>), so a
    /// pair of identical inputs keeps ρ = 1 exactly; it is skipped when it is the identity (x·1 + 0 = x). The
    /// outputs use fused multiply-adds: σ̇ = half − factor·θ, nngp' = σ̇·x + factor·sq, ntk' = σ̇·(W2·t + …), the
    /// vector body and the scalar tail alike. v1·v2 − x² stays unfused (exactly 0 at ρ = 1), and max(·, 0) is one
    /// vmaxpd with 0 first, so a NaN passes as Math.Max passes it.
    let inline abReluNormRun (pre: DensePre) (factor: float) (half: float) (px: nativeptr<float>) (pt: nativeptr<float>)
                             (pv1: nativeptr<float>) (pr1: nativeptr<float>) (v1Broadcast: bool)
                             (pv2: nativeptr<float>) (pr2: nativeptr<float>)
                             (pn: nativeptr<float>) (pd: nativeptr<float>) (withNtk: bool) (len: int) =
        let mutable i = 0
        let ident = pre.W2 = 1.0 && pre.B2 = 0.0
        let width = normWidth ()
        if width = 512 then
            i <-
                if ident && withNtk && pre.FromOut then
                    if v1Broadcast then abReluNormBody512 pre factor half px pt pv1 pr1 true pv2 pr2 pn pd true true true len
                    else abReluNormBody512 pre factor half px pt pv1 pr1 false pv2 pr2 pn pd true true true len
                else abReluNormBody512 pre factor half px pt pv1 pr1 v1Broadcast pv2 pr2 pn pd withNtk ident pre.FromOut len
        elif width = 256 && Vector256.IsHardwareAccelerated && Fma.IsSupported then
            // The common cases (Conv W_std = 1, no bias, ntk parameterization, nngp and ntk) get their flags as
            // constants: a loop with no tests in it and fewer live registers.
            i <-
                if ident && withNtk && pre.FromOut then
                    if v1Broadcast then abReluNormBody256 pre factor half px pt pv1 pr1 true pv2 pr2 pn pd true true true len
                    else abReluNormBody256 pre factor half px pt pv1 pr1 false pv2 pr2 pn pd true true true len
                else abReluNormBody256 pre factor half px pt pv1 pr1 v1Broadcast pv2 pr2 pn pd withNtk ident pre.FromOut len
        while i < len do
            let v1 = if v1Broadcast then NativePtr.read pv1 else NativePtr.get pv1 i
            let r1 = if v1Broadcast then NativePtr.read pr1 else NativePtr.get pr1 i
            let x0 = NativePtr.get px i
            let x = if ident then x0 else x0 * pre.W2 + pre.B2
            let sq = Math.Sqrt(Math.Max(v1 * NativePtr.get pv2 i - x * x, 0.0))
            let rr = r1 * NativePtr.get pr2 i
            let theta = angleUnit (x * rr) (sq * rr)
            let dot = Math.FusedMultiplyAdd(-factor, theta, half)
            NativePtr.set pn i (Math.FusedMultiplyAdd(dot, x, factor * sq))
            if withNtk then
                let add = if pre.FromOut then x else Math.FusedMultiplyAdd(x0, pre.CN, pre.CB)
                let tv = if ident then NativePtr.get pt i + add else Math.FusedMultiplyAdd(NativePtr.get pt i, pre.W2, add)
                NativePtr.set pd i (dot * tv)
            i <- i + 1

    // The common case of abReluNormRun (no affine map, nngp and ntk, the ntk's map from the output) at 256 bits, in
    // two passes over chunks of entries through a buffer: first the square root, the angle's sector and its folded
    // argument u per entry (splitSector256), then the polynomial and the outputs (splitPoly256). The operations per
    // entry are those of the one-pass body, so the same bits; but the one pass is a single dependency chain of ~90
    // cycles per vector (square root, sector, polynomial), of which the out-of-order window holds only a few, while
    // each half is short enough for the window to overlap many entries.

    /// The first pass over n entries (n a multiple of 4): u into bu, the sector's base angle k·π/4 and its low part
    /// into bq and bl, factor·sq into bs (the products the second pass would take; on the multiply units, which the
    /// square roots leave idle here).
    /// With win: x is the three-tap window mean ((x[e − ws] + x[e]) + x[e + ws])·winv of px (the convolution's last
    /// axis, as ConvStackPasses.framedPass takes it: the same bits), stored into bx for the second pass.
    let inline splitSector256 (factor: float) (px: nativeptr<float>) (pv1: nativeptr<float>) (pr1: nativeptr<float>) (v1Broadcast: bool)
                              (pv2: nativeptr<float>) (pr2: nativeptr<float>)
                              (bu: nativeptr<float>) (bq: nativeptr<float>) (bs: nativeptr<float>) (bl: nativeptr<float>)
                              (win: bool) (ws: int) (winv: float) (bx: nativeptr<float>) (n: int) =
        let f = Vector256.Create factor
        let vinv = Vector256.Create winv
        let v1c = Vector256.Create(NativePtr.read pv1)
        let r1c = Vector256.Create(NativePtr.read pr1)
        let mutable e = 0
        while e < n do
            let x =
                if win then
                    let w = ((Vector256.Load(NativePtr.add px (e - ws)) + Vector256.Load(NativePtr.add px e)) + Vector256.Load(NativePtr.add px (e + ws))) * vinv
                    w.Store(NativePtr.add bx e)
                    w
                else Vector256.Load(NativePtr.add px e)
            let v1 = if v1Broadcast then v1c else Vector256.Load(NativePtr.add pv1 e)
            let r1 = if v1Broadcast then r1c else Vector256.Load(NativePtr.add pr1 e)
            let sq = Avx.Sqrt(Avx.Max(Vector256<float>.Zero, v1 * Vector256.Load(NativePtr.add pv2 e) - x * x))
            let rr = r1 * Vector256.Load(NativePtr.add pr2 e)
            let c = x * rr
            let s = sq * rr
            let struct (u, quarters) = sector256 c s
            u.Store(NativePtr.add bu e)
            (quarters * Vector256.Create piOver4).Store(NativePtr.add bq e)
            (quarters * Vector256.Create(0.5 * MoreBits)).Store(NativePtr.add bl e)
            (f * sq).Store(NativePtr.add bs e)
            e <- e + 4

    /// The second pass over n entries: the angle from bu, bq (angleUnit256's polynomial), then nngp′ and ntk′.
    /// With win: x from bx, and t the same window mean of pt.
    let inline splitPoly256 (factor: float) (half: float) (px: nativeptr<float>) (pt: nativeptr<float>)
                            (bu: nativeptr<float>) (bq: nativeptr<float>) (bs: nativeptr<float>) (bl: nativeptr<float>)
                            (win: bool) (ws: int) (winv: float) (bx: nativeptr<float>)
                            (pn: nativeptr<float>) (pd: nativeptr<float>) (n: int) =
        let f = Vector256.Create factor
        let hv = Vector256.Create half
        let vinv = Vector256.Create winv
        let mutable e = 0
        while e < n do
            let theta = Vector256.Load(NativePtr.add bq e) + (asinFolded256 (Vector256.Load(NativePtr.add bu e)) + Vector256.Load(NativePtr.add bl e))
            let dot = Fma.MultiplyAddNegated(f, theta, hv)
            let x = if win then Vector256.Load(NativePtr.add bx e) else Vector256.Load(NativePtr.add px e)
            let t =
                if win then ((Vector256.Load(NativePtr.add pt (e - ws)) + Vector256.Load(NativePtr.add pt e)) + Vector256.Load(NativePtr.add pt (e + ws))) * vinv
                else Vector256.Load(NativePtr.add pt e)
            (Fma.MultiplyAdd(dot, x, Vector256.Load(NativePtr.add bs e))).Store(NativePtr.add pn e)
            (dot * (t + x)).Store(NativePtr.add pd e)
            e <- e + 4

    /// The two passes over the whole vectors of one run, in chunks of up to 64 entries through buf (256 entries);
    /// returns where the scalar tail starts.
    let inline abReluNormSplit256 (factor: float) (half: float) (px: nativeptr<float>) (pt: nativeptr<float>)
                                  (pv1: nativeptr<float>) (pr1: nativeptr<float>) (v1Broadcast: bool)
                                  (pv2: nativeptr<float>) (pr2: nativeptr<float>) (pn: nativeptr<float>) (pd: nativeptr<float>)
                                  (buf: nativeptr<float>) (len: int) =
        let mutable i = 0
        let bu, bq, bs, bl = buf, NativePtr.add buf 64, NativePtr.add buf 128, NativePtr.add buf 192
        while i + 4 <= len do
            let n = min 64 ((len - i) &&& ~~~3)
            let inline at (p: nativeptr<float>) = NativePtr.add p i
            splitSector256 factor (at px) (if v1Broadcast then pv1 else at pv1) (if v1Broadcast then pr1 else at pr1) v1Broadcast (at pv2) (at pr2) bu bq bs bl false 0 1.0 bu n
            splitPoly256 factor half (at px) (at pt) bu bq bs bl false 0 1.0 bu (at pn) (at pd) n
            i <- i + n
        i

    /// <c>splitSector256</c> on 512-bit vectors (portable API), n a multiple of 8: the operations of
    /// <c>abReluNormBody512</c>'s first half, so the same bits (ConvStackPasses.actRuns512).
    let inline splitSector512 (factor: float) (px: nativeptr<float>) (pv1: nativeptr<float>) (pr1: nativeptr<float>) (v1Broadcast: bool)
                              (pv2: nativeptr<float>) (pr2: nativeptr<float>)
                              (bu: nativeptr<float>) (bq: nativeptr<float>) (bs: nativeptr<float>) (bl: nativeptr<float>)
                              (win: bool) (ws: int) (winv: float) (bx: nativeptr<float>) (n: int) =
        let f = Vector512.Create factor
        let vinv = Vector512.Create winv
        let v1c = Vector512.Create(NativePtr.read pv1)
        let r1c = Vector512.Create(NativePtr.read pr1)
        let mutable e = 0
        while e < n do
            let x =
                if win then
                    let w = ((Vector512.Load(NativePtr.add px (e - ws)) + Vector512.Load(NativePtr.add px e)) + Vector512.Load(NativePtr.add px (e + ws))) * vinv
                    w.Store(NativePtr.add bx e)
                    w
                else Vector512.Load(NativePtr.add px e)
            let v1 = if v1Broadcast then v1c else Vector512.Load(NativePtr.add pv1 e)
            let r1 = if v1Broadcast then r1c else Vector512.Load(NativePtr.add pr1 e)
            let sq = Vector512.Sqrt(Vector512.Max(Vector512<float>.Zero, v1 * Vector512.Load(NativePtr.add pv2 e) - x * x))
            let rr = r1 * Vector512.Load(NativePtr.add pr2 e)
            let struct (u, quarters) = sector512 (x * rr) (sq * rr)
            u.Store(NativePtr.add bu e)
            (quarters * Vector512.Create piOver4).Store(NativePtr.add bq e)
            (quarters * Vector512.Create(0.5 * MoreBits)).Store(NativePtr.add bl e)
            (f * sq).Store(NativePtr.add bs e)
            e <- e + 8

    /// <c>splitPoly256</c> on 512-bit vectors (portable API), n a multiple of 8.
    let inline splitPoly512 (factor: float) (half: float) (px: nativeptr<float>) (pt: nativeptr<float>)
                            (bu: nativeptr<float>) (bq: nativeptr<float>) (bs: nativeptr<float>) (bl: nativeptr<float>)
                            (win: bool) (ws: int) (winv: float) (bx: nativeptr<float>)
                            (pn: nativeptr<float>) (pd: nativeptr<float>) (n: int) =
        let nf = Vector512.Create -factor
        let hv = Vector512.Create half
        let vinv = Vector512.Create winv
        let mutable e = 0
        while e < n do
            let theta = Vector512.Load(NativePtr.add bq e) + (asinFolded512 (Vector512.Load(NativePtr.add bu e)) + Vector512.Load(NativePtr.add bl e))
            let dot = Vector512.FusedMultiplyAdd(nf, theta, hv)
            let x = if win then Vector512.Load(NativePtr.add bx e) else Vector512.Load(NativePtr.add px e)
            let t =
                if win then ((Vector512.Load(NativePtr.add pt (e - ws)) + Vector512.Load(NativePtr.add pt e)) + Vector512.Load(NativePtr.add pt (e + ws))) * vinv
                else Vector512.Load(NativePtr.add pt e)
            (Vector512.FusedMultiplyAdd(dot, x, Vector512.Load(NativePtr.add bs e))).Store(NativePtr.add pn e)
            (dot * (t + x)).Store(NativePtr.add pd e)
            e <- e + 8

    /// <c>abReluNormRun</c> with a buffer of 256 entries for the two-pass body of the common case at 256 bits
    /// (<c>abReluNormSplit256</c>); other cases and widths as <c>abReluNormRun</c>. Same bits either way. (At 512
    /// bits a run keeps the one-pass body: on Zen 5 the two passes through a buffer of 64 took 4–6 % more time over
    /// the diagonal layout's long runs; the executor's whole rows of short runs take them, ConvStackPasses.actRuns512.)
    let inline abReluNormRunBuf (pre: DensePre) (factor: float) (half: float) (px: nativeptr<float>) (pt: nativeptr<float>)
                                (pv1: nativeptr<float>) (pr1: nativeptr<float>) (v1Broadcast: bool)
                                (pv2: nativeptr<float>) (pr2: nativeptr<float>)
                                (pn: nativeptr<float>) (pd: nativeptr<float>) (withNtk: bool) (buf: nativeptr<float>) (len: int) =
        if splitAct && pre.W2 = 1.0 && pre.B2 = 0.0 && withNtk && pre.FromOut && normWidth () = 256 && Vector256.IsHardwareAccelerated && Fma.IsSupported then
            let i =
                if v1Broadcast then abReluNormSplit256 factor half px pt pv1 pr1 true pv2 pr2 pn pd buf len
                else abReluNormSplit256 factor half px pt pv1 pr1 false pv2 pr2 pn pd buf len
            if i < len then
                let inline at (p: nativeptr<float>) = NativePtr.add p i
                abReluNormRun pre factor half (at px) (at pt) (if v1Broadcast then pv1 else at pv1) (if v1Broadcast then pr1 else at pr1)
                    v1Broadcast (at pv2) (at pr2) (at pn) (at pd) withNtk (len - i)
        else abReluNormRun pre factor half px pt pv1 pr1 v1Broadcast pv2 pr2 pn pd withNtk len

    /// angleUnit over arrays (for tests): r[i] = angle of (c[i], s[i]), vectorised where available.
    let angleUnitArray (c: float[]) (s: float[]) : float[] =
        if c.Length <> s.Length then invalidArg "s" "c and s must have the same length"
        let r = Array.zeroCreate c.Length
        let mutable i = 0
        let width = normWidth ()
        if width = 512 then
            use pc = fixed c
            use ps = fixed s
            use pr = fixed r
            while i + 8 <= c.Length do
                (angleUnit512 (Vector512.Load(NativePtr.add pc i)) (Vector512.Load(NativePtr.add ps i))).Store(NativePtr.add pr i)
                i <- i + 8
        if width >= 256 && Vector256.IsHardwareAccelerated && Fma.IsSupported then
            use pc = fixed c
            use ps = fixed s
            use pr = fixed r
            while i + 4 <= c.Length do
                (angleUnit256 (Vector256.Load(NativePtr.add pc i)) (Vector256.Load(NativePtr.add ps i))).Store(NativePtr.add pr i)
                i <- i + 4
        while i < c.Length do
            r[i] <- angleUnit c[i] s[i]
            i <- i + 1
        r

    /// <c>abReluNormRunBuf</c> as a method of its own (benchmarks: the inline one cannot cross assemblies).
    [<MethodImpl(MethodImplOptions.NoInlining)>]
    let abReluNormRunCall (pre: DensePre) (factor: float) (half: float) (px: nativeptr<float>) (pt: nativeptr<float>)
                          (pv1: nativeptr<float>) (pr1: nativeptr<float>) (v1Broadcast: bool) (pv2: nativeptr<float>) (pr2: nativeptr<float>)
                          (pn: nativeptr<float>) (pd: nativeptr<float>) (withNtk: bool) (buf: nativeptr<float>) (len: int) =
        abReluNormRunBuf pre factor half px pt pv1 pr1 v1Broadcast pv2 pr2 pn pd withNtk buf len

    /// <c>abReluNormRun</c> over whole arrays (tests and benchmarks): x, t, v1, r1, v2, r2 per element.
    let abReluNormArrays (factor: float) (half: float) (x: float[]) (t: float[]) (v1: float[]) (r1: float[]) (v2: float[]) (r2: float[])
                         (outN: float[]) (outT: float[]) =
        use px = fixed x
        use pt = fixed t
        use p1 = fixed v1
        use q1 = fixed r1
        use p2 = fixed v2
        use q2 = fixed r2
        use pn = fixed outN
        use pd = fixed outT
        abReluNormRun identity factor half px pt p1 q1 false p2 q2 pn pd true x.Length

    // ---------------------------------------------------------------------------------------------
    // The ABRelu rule's own pass (Elementwise.abReluKernel, diagonal layouts) and the fused MLP executor
    // (DenseStack): the division-free step above on (x, t), optionally behind a Dense map computed exactly as the
    // Dense rule computes it (x' = x·W2 + B2, t' = t·W2 + (x' or x·CN + CB): multiply, then add, no FMA, as
    // Simd.densePass), and σ̇·t' as the rule takes ntk' = σ̇·ntk. So a Dense rule followed by this pass and the
    // pass with the Dense map fused in front give the same bits, and so does every vector width.

    /// The Vector256 body of <c>abReluAffineRun</c>; returns where the scalar tail starts.
    let inline private abReluAffineBody256 (dense: bool) (fromOut: bool) (pre: DensePre) (factor: float) (half: float)
                                           (px: nativeptr<float>) (pt: nativeptr<float>) (pv1: nativeptr<float>) (pr1: nativeptr<float>)
                                           (v1Broadcast: bool) (pv2: nativeptr<float>) (pr2: nativeptr<float>)
                                           (pn: nativeptr<float>) (pd: nativeptr<float>) (withNtk: bool) (len: int) =
        let mutable i = 0
        let f = Vector256.Create factor
        let hv = Vector256.Create half
        let v1b = Vector256.Create(NativePtr.read pv1)
        let r1b = Vector256.Create(NativePtr.read pr1)
        let vw, vb, vcN, vcB = Vector256.Create pre.W2, Vector256.Create pre.B2, Vector256.Create pre.CN, Vector256.Create pre.CB
        while i + 4 <= len do
            let x0 = Vector256.Load(NativePtr.add px i)
            let x = if dense then x0 * vw + vb else x0
            let v1 = if v1Broadcast then v1b else Vector256.Load(NativePtr.add pv1 i)
            let r1 = if v1Broadcast then r1b else Vector256.Load(NativePtr.add pr1 i)
            let sq = Avx.Sqrt(Avx.Max(Vector256<float>.Zero, v1 * Vector256.Load(NativePtr.add pv2 i) - x * x))
            let rr = r1 * Vector256.Load(NativePtr.add pr2 i)
            let theta = angleUnit256 (x * rr) (sq * rr)
            let dot = Fma.MultiplyAddNegated(f, theta, hv)
            (Fma.MultiplyAdd(dot, x, f * sq)).Store(NativePtr.add pn i)
            if withNtk then
                let t0 = Vector256.Load(NativePtr.add pt i)
                let tv = if dense then t0 * vw + (if fromOut then x else x0 * vcN + vcB) else t0
                (dot * tv).Store(NativePtr.add pd i)
            i <- i + 4
        i

    /// <c>abReluAffineBody256</c> on 512-bit vectors (portable API): the same operations in the same order.
    let inline private abReluAffineBody512 (dense: bool) (fromOut: bool) (pre: DensePre) (factor: float) (half: float)
                                           (px: nativeptr<float>) (pt: nativeptr<float>) (pv1: nativeptr<float>) (pr1: nativeptr<float>)
                                           (v1Broadcast: bool) (pv2: nativeptr<float>) (pr2: nativeptr<float>)
                                           (pn: nativeptr<float>) (pd: nativeptr<float>) (withNtk: bool) (len: int) =
        let mutable i = 0
        let f = Vector512.Create factor
        let nf = Vector512.Create -factor
        let hv = Vector512.Create half
        let v1b = Vector512.Create(NativePtr.read pv1)
        let r1b = Vector512.Create(NativePtr.read pr1)
        let vw, vb, vcN, vcB = Vector512.Create pre.W2, Vector512.Create pre.B2, Vector512.Create pre.CN, Vector512.Create pre.CB
        while i + 8 <= len do
            let x0 = Vector512.Load(NativePtr.add px i)
            let x = if dense then x0 * vw + vb else x0
            let v1 = if v1Broadcast then v1b else Vector512.Load(NativePtr.add pv1 i)
            let r1 = if v1Broadcast then r1b else Vector512.Load(NativePtr.add pr1 i)
            let sq = Vector512.Sqrt(Vector512.Max(Vector512<float>.Zero, v1 * Vector512.Load(NativePtr.add pv2 i) - x * x))
            let rr = r1 * Vector512.Load(NativePtr.add pr2 i)
            let theta = angleUnit512 (x * rr) (sq * rr)
            let dot = Vector512.FusedMultiplyAdd(nf, theta, hv)
            (Vector512.FusedMultiplyAdd(dot, x, f * sq)).Store(NativePtr.add pn i)
            if withNtk then
                let t0 = Vector512.Load(NativePtr.add pt i)
                let tv = if dense then t0 * vw + (if fromOut then x else x0 * vcN + vcB) else t0
                (dot * tv).Store(NativePtr.add pd i)
            i <- i + 8
        i

    // Each vector specialisation is its own method, so that a one-shot process JIT-compiles only the one it runs
    // (the Vector512 bodies are large software fallbacks where AVX-512 is missing), not all of them.

    [<MethodImpl(MethodImplOptions.NoInlining)>]
    let private affine512 (dense: bool) (pre: DensePre) (factor: float) (half: float) (px: nativeptr<float>) (pt: nativeptr<float>)
                          (pv1: nativeptr<float>) (pr1: nativeptr<float>) (v1Broadcast: bool) (pv2: nativeptr<float>) (pr2: nativeptr<float>)
                          (pn: nativeptr<float>) (pd: nativeptr<float>) (withNtk: bool) (len: int) =
        abReluAffineBody512 dense pre.FromOut pre factor half px pt pv1 pr1 v1Broadcast pv2 pr2 pn pd withNtk len

    /// Dense ("ntk" parameterization) → ABRelu on one row of an S = 1 kernel, nngp and ntk: the MLP's step.
    [<MethodImpl(MethodImplOptions.NoInlining)>]
    let private affine256DenseRow (pre: DensePre) (factor: float) (half: float) (px: nativeptr<float>) (pt: nativeptr<float>)
                                  (pv1: nativeptr<float>) (pr1: nativeptr<float>) (pv2: nativeptr<float>) (pr2: nativeptr<float>)
                                  (pn: nativeptr<float>) (pd: nativeptr<float>) (len: int) =
        abReluAffineBody256 true true pre factor half px pt pv1 pr1 true pv2 pr2 pn pd true len

    /// ABRelu alone, nngp and ntk (the rule's own pass).
    [<MethodImpl(MethodImplOptions.NoInlining)>]
    let private affine256Plain (factor: float) (half: float) (px: nativeptr<float>) (pt: nativeptr<float>)
                               (pv1: nativeptr<float>) (pr1: nativeptr<float>) (v1Broadcast: bool) (pv2: nativeptr<float>) (pr2: nativeptr<float>)
                               (pn: nativeptr<float>) (pd: nativeptr<float>) (len: int) =
        abReluAffineBody256 false false identity factor half px pt pv1 pr1 v1Broadcast pv2 pr2 pn pd true len

    [<MethodImpl(MethodImplOptions.NoInlining)>]
    let private affine256Any (dense: bool) (pre: DensePre) (factor: float) (half: float) (px: nativeptr<float>) (pt: nativeptr<float>)
                             (pv1: nativeptr<float>) (pr1: nativeptr<float>) (v1Broadcast: bool) (pv2: nativeptr<float>) (pr2: nativeptr<float>)
                             (pn: nativeptr<float>) (pd: nativeptr<float>) (withNtk: bool) (len: int) =
        abReluAffineBody256 dense pre.FromOut pre factor half px pt pv1 pr1 v1Broadcast pv2 pr2 pn pd withNtk len

    /// The scalar twin (tails, and width 0) from entry i on.
    [<MethodImpl(MethodImplOptions.NoInlining)>]
    let private affineTail (dense: bool) (p: DensePre) (factor: float) (half: float) (px: nativeptr<float>) (pt: nativeptr<float>)
                           (pv1: nativeptr<float>) (pr1: nativeptr<float>) (v1Broadcast: bool) (pv2: nativeptr<float>) (pr2: nativeptr<float>)
                           (pn: nativeptr<float>) (pd: nativeptr<float>) (withNtk: bool) (start: int) (len: int) =
        let mutable i = start
        while i < len do
            let v1 = if v1Broadcast then NativePtr.read pv1 else NativePtr.get pv1 i
            let r1 = if v1Broadcast then NativePtr.read pr1 else NativePtr.get pr1 i
            let x0 = NativePtr.get px i
            let x = if dense then x0 * p.W2 + p.B2 else x0
            let sq = Math.Sqrt(Math.Max(v1 * NativePtr.get pv2 i - x * x, 0.0))
            let rr = r1 * NativePtr.get pr2 i
            let theta = angleUnit (x * rr) (sq * rr)
            let dot = Math.FusedMultiplyAdd(-factor, theta, half)
            NativePtr.set pn i (Math.FusedMultiplyAdd(dot, x, factor * sq))
            if withNtk then
                let t0 = NativePtr.get pt i
                let tv = if dense then t0 * p.W2 + (if p.FromOut then x else x0 * p.CN + p.CB) else t0
                NativePtr.set pd i (dot * tv)
            i <- i + 1

    /// One contiguous run of the ABRelu step (see above): x, t, v2, r2 advance, and v1, r1 unless
    /// <c>v1Broadcast</c>; with <c>pre</c> = ValueSome map, the Dense rule's map is applied to (x, t) first. Outputs
    /// may alias their own inputs (pn = px, pd = pt): every entry is read before it is written.
    let abReluAffineRun (pre: DensePre voption) (factor: float) (half: float) (px: nativeptr<float>) (pt: nativeptr<float>)
                        (pv1: nativeptr<float>) (pr1: nativeptr<float>) (v1Broadcast: bool)
                        (pv2: nativeptr<float>) (pr2: nativeptr<float>)
                        (pn: nativeptr<float>) (pd: nativeptr<float>) (withNtk: bool) (len: int) =
        let dense = pre.IsSome
        let p = match pre with ValueSome p -> p | ValueNone -> identity
        let width = normWidth ()
        let i =
            if width = 512 then affine512 dense p factor half px pt pv1 pr1 v1Broadcast pv2 pr2 pn pd withNtk len
            elif width = 256 && Vector256.IsHardwareAccelerated && Fma.IsSupported then
                if dense && withNtk && p.FromOut && v1Broadcast then affine256DenseRow p factor half px pt pv1 pr1 pv2 pr2 pn pd len
                elif not dense && withNtk then affine256Plain factor half px pt pv1 pr1 v1Broadcast pv2 pr2 pn pd len
                else affine256Any dense p factor half px pt pv1 pr1 v1Broadcast pv2 pr2 pn pd withNtk len
            else 0
        if i < len then affineTail dense p factor half px pt pv1 pr1 v1Broadcast pv2 pr2 pn pd withNtk i len

    /// r = 1/√v per entry, 0 where v = 0 (a zero-variance input: its angle is then π/2, as atan2(0, 0) is taken).
    let inverseSqrt (v: float[]) = v |> Array.map (fun v -> if v > 0.0 then 1.0 / Math.Sqrt v else 0.0)

    /// Rows [lo, hi) of <c>abReluAffinePass</c>.
    let private abReluAffineRows (pre: DensePre voption) (factor: float) (half: float) (n2: int) (s: int) (x: float[]) (t: float[])
                                 (v1: float[]) (r1: float[]) (v2: float[]) (r2: float[]) (outN: float[]) (outT: float[])
                                 (withNtk: bool) (lo: int) (hi: int) =
        use px = fixed x
        use pt = fixed t
        use p1 = fixed v1
        use q1 = fixed r1
        use p2 = fixed v2
        use q2 = fixed r2
        use pn = fixed outN
        use pd = fixed outT
        for i in lo .. hi - 1 do
            if s = 1 then
                let o = i * n2
                abReluAffineRun pre factor half (NativePtr.add px o) (NativePtr.add pt o) (NativePtr.add p1 i) (NativePtr.add q1 i) true
                    p2 q2 (NativePtr.add pn o) (NativePtr.add pd o) withNtk n2
            else
                for j in 0 .. n2 - 1 do
                    let o = (i * n2 + j) * s
                    abReluAffineRun pre factor half (NativePtr.add px o) (NativePtr.add pt o) (NativePtr.add p1 (i * s)) (NativePtr.add q1 (i * s)) false
                        (NativePtr.add p2 (j * s)) (NativePtr.add q2 (j * s)) (NativePtr.add pn o) (NativePtr.add pd o) withNtk s

    /// The ABRelu step over a kernel in the diagonal-spatial layout — x, ntk (N1, N2, S); v1, r1 (N1, S); v2, r2
    /// (N2, S) — into outN and outT (when ntk is given; they may be x and ntk themselves). Rows split across cores.
    let abReluAffinePass (pre: DensePre voption) (factor: float) (half: float) (n1: int) (n2: int) (s: int) (x: float[]) (ntk: float[] option)
                         (v1: float[]) (r1: float[]) (v2: float[]) (r2: float[]) (outN: float[]) (outT: float[] option) =
        let t = defaultArg ntk x
        let d = defaultArg outT outN
        NeuralTangents.Linalg.parallelRanges n1 (float (n2 * s) * 8.0) (abReluAffineRows pre factor half n2 s x t v1 r1 v2 r2 outN d ntk.IsSome)
