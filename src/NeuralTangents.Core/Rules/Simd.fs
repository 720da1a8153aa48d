namespace NeuralTangents.Rules

#nowarn "9" // pointer loads/stores over pinned arrays in the fused passes

open System
open System.Runtime.CompilerServices
open System.Runtime.Intrinsics
open System.Runtime.Intrinsics.X86
open Microsoft.FSharp.NativeInterop
open NeuralTangents

/// Fused, vectorised (Vector512, or Vector256 where 512-bit vectors are not in hardware; both cores) passes for the hot kernel rules: the arc-cosine (ABRelu) step
/// and the Dense affine maps. Each pass reads its inputs once and writes its outputs once; the numbers are
/// those of the scalar formulas in `Elementwise`/`Linear` up to the atan2 below (≤ 2 ulp from libm).
module internal Simd =

    // atan on [0, 1]: Cephes' double-precision atan (S. L. Moshier, Cephes Math Library, atan.c): for t > 0.66
    // reduce with atan t = π/4 + atan((t − 1)/(t + 1)), then r + r·z·P(z)/Q(z), z = r², a 4/5 rational.
    [<Literal>]
    let P0 = -8.750608600031904122785E-1
    [<Literal>]
    let P1 = -1.615753718733365076637E1
    [<Literal>]
    let P2 = -7.500855792314704667340E1
    [<Literal>]
    let P3 = -1.228866684490136173410E2
    [<Literal>]
    let P4 = -6.485021904942025371773E1
    [<Literal>]
    let Q0 = 2.485846490142306297962E1
    [<Literal>]
    let Q1 = 1.650270098316988542046E2
    [<Literal>]
    let Q2 = 4.328810604912902668951E2
    [<Literal>]
    let Q3 = 4.853903996359136964868E2
    [<Literal>]
    let Q4 = 1.945506571482613964425E2
    /// π/2 − fl(π/2): the low part that fl(π/2) misses (Cephes' MOREBITS).
    [<Literal>]
    let MoreBits = 6.123233995736765886130E-17
    let piOver2 = Math.PI / 2.0
    let piOver4 = Math.PI / 4.0

    /// atan2(y, x) for y ≥ 0 (the angle between two vectors, in [0, π]), with atan2(0, ±0) = π/2 as the
    /// kernel rules take it. Scalar twin of <c>atan2Pos512</c>, same operations in the same order.
    let atan2Pos (y: float) (x: float) =
        let ax = Math.Abs x
        let swap = y > ax
        let num = if swap then ax else y
        let den = if swap then y else ax
        if den = 0.0 then piOver2
        else
            // t = num/den; for t > 0.66, (t − 1)/(t + 1) = (num − den)/(num + den): one division either way.
            let big = num > 0.66 * den
            let r = if big then (num - den) / (num + den) else num / den
            let z = r * r
            let p = Math.FusedMultiplyAdd(Math.FusedMultiplyAdd(Math.FusedMultiplyAdd(Math.FusedMultiplyAdd(P0, z, P1), z, P2), z, P3), z, P4)
            let q = Math.FusedMultiplyAdd(Math.FusedMultiplyAdd(Math.FusedMultiplyAdd(Math.FusedMultiplyAdd(z + Q0, z, Q1), z, Q2), z, Q3), z, Q4)
            let mutable a = Math.FusedMultiplyAdd(r * z, p / q, r)
            if big then a <- piOver4 + (a + 0.5 * MoreBits)
            let neg = (x < 0.0) <> swap
            let a = if neg then -a else a
            let bse, lo = if swap then piOver2, MoreBits elif x < 0.0 then Math.PI, 2.0 * MoreBits else 0.0, 0.0
            bse + (a + lo)

    /// Vectorised atan2(y, x) for y ≥ 0 lane-wise; see <c>atan2Pos</c>.
    let inline atan2Pos512 (y: Vector512<float>) (x: Vector512<float>) =
        let zero = Vector512<float>.Zero
        let one = Vector512.Create 1.0
        let ax = Vector512.Abs x
        let swap = Vector512.GreaterThan(y, ax)
        let num = Vector512.ConditionalSelect(swap, ax, y)
        let den = Vector512.ConditionalSelect(swap, y, ax)
        let zeroDen = Vector512.Equals(den, zero)
        let big = Vector512.GreaterThan(num, Vector512.Create 0.66 * den)
        let numer = Vector512.ConditionalSelect(big, num - den, num)
        let denom = Vector512.ConditionalSelect(big, num + den, Vector512.ConditionalSelect(zeroDen, one, den))
        let r = numer / denom
        let z = r * r
        let p =
            Vector512.FusedMultiplyAdd(
                Vector512.FusedMultiplyAdd(
                    Vector512.FusedMultiplyAdd(Vector512.FusedMultiplyAdd(Vector512.Create P0, z, Vector512.Create P1), z, Vector512.Create P2),
                    z, Vector512.Create P3),
                z, Vector512.Create P4)
        let q =
            Vector512.FusedMultiplyAdd(
                Vector512.FusedMultiplyAdd(
                    Vector512.FusedMultiplyAdd(Vector512.FusedMultiplyAdd(z + Vector512.Create Q0, z, Vector512.Create Q1), z, Vector512.Create Q2),
                    z, Vector512.Create Q3),
                z, Vector512.Create Q4)
        let a0 = Vector512.FusedMultiplyAdd(r * z, p / q, r)
        let a = Vector512.ConditionalSelect(big, Vector512.Create piOver4 + (a0 + Vector512.Create(0.5 * MoreBits)), a0)
        let negX = Vector512.LessThan(x, zero)
        let neg = Vector512.Xor(negX, swap)
        let a = Vector512.ConditionalSelect(neg, -a, a)
        let bse = Vector512.ConditionalSelect(swap, Vector512.Create piOver2, Vector512.ConditionalSelect(negX, Vector512.Create Math.PI, zero))
        let lo = Vector512.ConditionalSelect(swap, Vector512.Create MoreBits, Vector512.ConditionalSelect(negX, Vector512.Create(2.0 * MoreBits), zero))
        Vector512.ConditionalSelect(zeroDen, Vector512.Create piOver2, bse + (a + lo))

    /// <c>atan2Pos512</c> on 4 lanes, for CPUs with AVX2 but no AVX-512 (where Vector512 is emulated in software):
    /// the same operations in the same order, so the same numbers.
    let inline atan2Pos256 (y: Vector256<float>) (x: Vector256<float>) =
        let zero = Vector256<float>.Zero
        let one = Vector256.Create 1.0
        let ax = Vector256.Abs x
        let swap = Vector256.GreaterThan(y, ax)
        let num = Vector256.ConditionalSelect(swap, ax, y)
        let den = Vector256.ConditionalSelect(swap, y, ax)
        let zeroDen = Vector256.Equals(den, zero)
        let big = Vector256.GreaterThan(num, Vector256.Create 0.66 * den)
        let numer = Vector256.ConditionalSelect(big, num - den, num)
        let denom = Vector256.ConditionalSelect(big, num + den, Vector256.ConditionalSelect(zeroDen, one, den))
        let r = numer / denom
        let z = r * r
        let p =
            Vector256.FusedMultiplyAdd(
                Vector256.FusedMultiplyAdd(
                    Vector256.FusedMultiplyAdd(Vector256.FusedMultiplyAdd(Vector256.Create P0, z, Vector256.Create P1), z, Vector256.Create P2),
                    z, Vector256.Create P3),
                z, Vector256.Create P4)
        let q =
            Vector256.FusedMultiplyAdd(
                Vector256.FusedMultiplyAdd(
                    Vector256.FusedMultiplyAdd(Vector256.FusedMultiplyAdd(z + Vector256.Create Q0, z, Vector256.Create Q1), z, Vector256.Create Q2),
                    z, Vector256.Create Q3),
                z, Vector256.Create Q4)
        let a0 = Vector256.FusedMultiplyAdd(r * z, p / q, r)
        let a = Vector256.ConditionalSelect(big, Vector256.Create piOver4 + (a0 + Vector256.Create(0.5 * MoreBits)), a0)
        let negX = Vector256.LessThan(x, zero)
        let neg = Vector256.Xor(negX, swap)
        let a = Vector256.ConditionalSelect(neg, -a, a)
        let bse = Vector256.ConditionalSelect(swap, Vector256.Create piOver2, Vector256.ConditionalSelect(negX, Vector256.Create Math.PI, zero))
        let lo = Vector256.ConditionalSelect(swap, Vector256.Create MoreBits, Vector256.ConditionalSelect(negX, Vector256.Create(2.0 * MoreBits), zero))
        Vector256.ConditionalSelect(zeroDen, Vector256.Create piOver2, bse + (a + lo))

    /// True when 512-bit vectors run in hardware; otherwise the passes use 256-bit vectors (AVX2) when those do.
    let use512 = Vector512.IsHardwareAccelerated
    let use256 = not Vector512.IsHardwareAccelerated && Vector256.IsHardwareAccelerated && Fma.IsSupported

    /// Vector width (512, 256 or 0 = scalar) of the division-free arc-cosine pass (<c>SimdNorm</c>) and the
    /// stencil helpers (<c>ConvStackPasses</c>): 512 where Vector512 runs in hardware, else 256 with AVX2 + FMA,
    /// else scalar. The environment variable NT_SIMD_WIDTH (512, 256, 0) or <c>setNormWidth</c> forces a path, so
    /// tests run every one on any machine: .NET's Vector512 API falls back to software without AVX-512 (slow but
    /// exact); 256 needs AVX2 + FMA (its selects are vblendvpd intrinsics).
    let private defaultNormWidth =
        if Vector512.IsHardwareAccelerated then 512
        elif Vector256.IsHardwareAccelerated && Fma.IsSupported then 256
        else 0

    let mutable private normWidthValue =
        match Environment.GetEnvironmentVariable "NT_SIMD_WIDTH" with
        | "512" -> 512
        | "256" when Avx2.IsSupported && Fma.IsSupported -> 256
        | "0" -> 0
        | _ -> defaultNormWidth

    /// The width the hot passes use now (see above).
    let normWidth () = normWidthValue

    /// Forces the vector width of the hot passes (tests): 512 (hardware or software), 256 (needs AVX2 + FMA) or 0.
    let setNormWidth (w: int) =
        match w with
        | 512 | 0 -> normWidthValue <- w
        | 256 when Avx2.IsSupported && Fma.IsSupported -> normWidthValue <- w
        | 256 -> invalidArg "w" "Simd.setNormWidth: width 256 needs AVX2 and FMA, which this CPU lacks; use 512 (software) or 0"
        | _ -> invalidArg "w" $"Simd.setNormWidth: width {string w} is not one of 512, 256, 0"

    /// The width the hardware selects (what <c>setNormWidth</c> restores after a test).
    let hardwareNormWidth = defaultNormWidth

    /// Applies atan2Pos to arrays (for tests and benchmarks of the vector path): r[i] = atan2(y[i], x[i]), y ≥ 0.
    let atan2PosArray (y: float[]) (x: float[]) : float[] =
        if y.Length <> x.Length then invalidArg "x" "y and x must have the same length"
        let r = Array.zeroCreate y.Length
        let n = y.Length
        if Vector512.IsHardwareAccelerated && n >= 8 then
            use py = fixed y
            use px = fixed x
            use pr = fixed r
            let mutable i = 0
            while i < n do
                let i' = min i (n - 8) // the last vector overlaps the previous one instead of a scalar tail
                let v = atan2Pos512 (Vector512.Load(NativePtr.add py i')) (Vector512.Load(NativePtr.add px i'))
                v.Store(NativePtr.add pr i')
                i <- i + 8
        elif use256 && n >= 4 then
            use py = fixed y
            use px = fixed x
            use pr = fixed r
            let mutable i = 0
            while i < n do
                let i' = min i (n - 4)
                let v = atan2Pos256 (Vector256.Load(NativePtr.add py i')) (Vector256.Load(NativePtr.add px i'))
                v.Store(NativePtr.add pr i')
                i <- i + 4
        else
            for i in 0 .. n - 1 do r[i] <- atan2Pos y[i] x[i]
        r

    // ---------------------------------------------------------------------------------------------
    // ABRelu: with sq = √max(v1·v2 − x², 0), θ = atan2(sq, x),
    //   σ̇ = half − factor·θ,  nngp' = factor·sq + σ̇·x,  ntk' = σ̇·ntk,
    // half = (a² + b²)/2, factor = (a − b)²/(2π). Same operations as Elementwise.abRelu's scalar formula.

    /// Scalar ABRelu step (reference twin of the vector step, and the tail / no-AVX-512 path).
    /// A Dense map applied to (nngp, ntk) as they are loaded, so Dense → ABRelu is one pass over memory:
    /// x' = W2·x + B2; t' = W2·t + (x' when FromOut, else CN·x + CB). <c>identity</c> leaves both unchanged.
    [<Struct>]
    type DensePre = { W2: float; B2: float; FromOut: bool; CN: float; CB: float }

    let identity = { W2 = 1.0; B2 = 0.0; FromOut = false; CN = 0.0; CB = 0.0 }

    let inline abReluScalar (factor: float) (half: float) (x: float) (v1: float) (v2: float) =
        let sq = Math.Sqrt(Math.Max(v1 * v2 - x * x, 0.0))
        let theta = atan2Pos sq x
        let dot = half - factor * theta
        struct (factor * sq + dot * x, dot)

    let inline abRelu512 (factor: Vector512<float>) (half: Vector512<float>) (x: Vector512<float>)
                                 (v1: Vector512<float>) (v2: Vector512<float>) =
        let sq = Vector512.Sqrt(Vector512.Max(v1 * v2 - x * x, Vector512<float>.Zero))
        let theta = atan2Pos512 sq x
        let dot = half - factor * theta
        struct (factor * sq + dot * x, dot)

    /// One contiguous run of `len` elements: x, ntk, v2 (and v1 unless broadcast) advance together.
    let inline abRelu256 (factor: Vector256<float>) (half: Vector256<float>) (x: Vector256<float>)
                                 (v1: Vector256<float>) (v2: Vector256<float>) =
        let sq = Vector256.Sqrt(Vector256.Max(v1 * v2 - x * x, Vector256<float>.Zero))
        let theta = atan2Pos256 sq x
        let dot = half - factor * theta
        struct (factor * sq + dot * x, dot)

    let inline abReluRun (pre: DensePre) (factor: float) (half: float) (px: nativeptr<float>) (pt: nativeptr<float>)
                                 (pv1: nativeptr<float>) (v1Broadcast: bool) (pv2: nativeptr<float>)
                                 (pn: nativeptr<float>) (pd: nativeptr<float>) (withNtk: bool) (len: int) =
        // Outputs may alias inputs (in-place passes): every element is read before it is written, and the tail
        // is done in scalar code rather than by an overlapping vector that would re-read updated elements.
        let mutable i = 0
        if Vector512.IsHardwareAccelerated then
            let f = Vector512.Create factor
            let h = Vector512.Create half
            let v1b = Vector512.Create(NativePtr.read pv1)
            let vw, vb, vcN, vcB = Vector512.Create pre.W2, Vector512.Create pre.B2, Vector512.Create pre.CN, Vector512.Create pre.CB
            while i + 8 <= len do
                let x0 = Vector512.Load(NativePtr.add px i)
                let x = x0 * vw + vb
                let v1 = if v1Broadcast then v1b else Vector512.Load(NativePtr.add pv1 i)
                let struct (nn, dot) = abRelu512 f h x v1 (Vector512.Load(NativePtr.add pv2 i))
                let tv =
                    if withNtk then Vector512.Load(NativePtr.add pt i) * vw + (if pre.FromOut then x else x0 * vcN + vcB)
                    else Vector512<float>.Zero
                nn.Store(NativePtr.add pn i)
                if withNtk then (dot * tv).Store(NativePtr.add pd i)
                i <- i + 8
        elif use256 then
            let f = Vector256.Create factor
            let h = Vector256.Create half
            let v1b = Vector256.Create(NativePtr.read pv1)
            let vw, vb, vcN, vcB = Vector256.Create pre.W2, Vector256.Create pre.B2, Vector256.Create pre.CN, Vector256.Create pre.CB
            while i + 4 <= len do
                let x0 = Vector256.Load(NativePtr.add px i)
                let x = x0 * vw + vb
                let v1 = if v1Broadcast then v1b else Vector256.Load(NativePtr.add pv1 i)
                let struct (nn, dot) = abRelu256 f h x v1 (Vector256.Load(NativePtr.add pv2 i))
                let tv =
                    if withNtk then Vector256.Load(NativePtr.add pt i) * vw + (if pre.FromOut then x else x0 * vcN + vcB)
                    else Vector256<float>.Zero
                nn.Store(NativePtr.add pn i)
                if withNtk then (dot * tv).Store(NativePtr.add pd i)
                i <- i + 4
        while i < len do
            let v1 = if v1Broadcast then NativePtr.read pv1 else NativePtr.get pv1 i
            let x0 = NativePtr.get px i
            let x = x0 * pre.W2 + pre.B2
            let struct (nn, dot) = abReluScalar factor half x v1 (NativePtr.get pv2 i)
            let tv = if withNtk then NativePtr.get pt i * pre.W2 + (if pre.FromOut then x else x0 * pre.CN + pre.CB) else 0.0
            NativePtr.set pn i nn
            if withNtk then NativePtr.set pd i (dot * tv)
            i <- i + 1

    /// Rows [lo, hi) of the ABRelu pass.
    let private abReluRows (pre: DensePre) (factor: float) (half: float) (n2: int) (s: int) (x: float[]) (t: float[]) (c1: float[])
                           (c2: float[]) (outN: float[]) (outT: float[]) (withNtk: bool) (lo: int) (hi: int) =
        use px = fixed x
        use pt = fixed t
        use p1 = fixed c1
        use p2 = fixed c2
        use pn = fixed outN
        use pd = fixed outT
        for i in lo .. hi - 1 do
            if s = 1 then
                let o = i * n2
                abReluRun pre factor half (NativePtr.add px o) (NativePtr.add pt o) (NativePtr.add p1 i) true p2
                    (NativePtr.add pn o) (NativePtr.add pd o) withNtk n2
            else
                for j in 0 .. n2 - 1 do
                    let o = (i * n2 + j) * s
                    abReluRun pre factor half (NativePtr.add px o) (NativePtr.add pt o) (NativePtr.add p1 (i * s)) false
                        (NativePtr.add p2 (j * s)) (NativePtr.add pn o) (NativePtr.add pd o) withNtk s

    /// The ABRelu step over a kernel in the diagonal-spatial layout: x, ntk (N1, N2, S); c1 (N1, S); c2 (N2, S).
    /// Writes nngp' into outN and σ̇·ntk into outT (when ntk is given). Rows of N1 are split across cores.
    let abReluPass (pre: DensePre) (factor: float) (half: float) (n1: int) (n2: int) (s: int) (x: float[]) (ntk: float[] option)
                   (c1: float[]) (c2: float[]) (outN: float[]) (outT: float[] option) =
        let t = defaultArg ntk x
        let d = defaultArg outT outN
        Linalg.parallelRanges n1 (float (n2 * s) * 8.0) (abReluRows pre factor half n2 s x t c1 c2 outN d ntk.IsSome)

    // ---------------------------------------------------------------------------------------------
    // Dense: nngp' = w2·nngp + b2 and ntk' = w2·ntk + (cN·nngp + cB), or with ntkFromOut ntk' = w2·ntk + nngp'
    // (the "ntk" parameterization), in one pass. Same operation order as Tensor.affine / Tensor.scaleAdd
    // (multiply, then add; no FMA), so the numbers are unchanged.

    let private denseRange (w2: float) (b2: float) (ntkFromOut: bool) (cN: float) (cB: float) (x: float[]) (t: float[])
                           (outN: float[]) (outT: float[]) (withNtk: bool) (start: int) (stop: int) =
        use px = fixed x
        use pt = fixed t
        use pn = fixed outN
        use pd = fixed outT
        let mutable i = start
        if Vector512.IsHardwareAccelerated then
            let vw = Vector512.Create w2
            let vb = Vector512.Create b2
            let vcN = Vector512.Create cN
            let vcB = Vector512.Create cB
            while i + 8 <= stop do
                let xv = Vector512.Load(NativePtr.add px i)
                let nn = xv * vw + vb
                nn.Store(NativePtr.add pn i)
                if withNtk then
                    let add = if ntkFromOut then nn else xv * vcN + vcB
                    (Vector512.Load(NativePtr.add pt i) * vw + add).Store(NativePtr.add pd i)
                i <- i + 8
        elif use256 then
            let vw = Vector256.Create w2
            let vb = Vector256.Create b2
            let vcN = Vector256.Create cN
            let vcB = Vector256.Create cB
            while i + 4 <= stop do
                let xv = Vector256.Load(NativePtr.add px i)
                let nn = xv * vw + vb
                nn.Store(NativePtr.add pn i)
                if withNtk then
                    let add = if ntkFromOut then nn else xv * vcN + vcB
                    (Vector256.Load(NativePtr.add pt i) * vw + add).Store(NativePtr.add pd i)
                i <- i + 4
        while i < stop do
            let xv = NativePtr.get px i
            let nn = xv * w2 + b2
            NativePtr.set pn i nn
            if withNtk then
                let add = if ntkFromOut then nn else xv * cN + cB
                NativePtr.set pd i (NativePtr.get pt i * w2 + add)
            i <- i + 1

    /// The Vector512 part of <c>denseRun</c> (its own method: JIT-compiled only where it runs).
    [<MethodImpl(MethodImplOptions.NoInlining)>]
    let private denseRun512 (w2: float) (b2: float) (ntkFromOut: bool) (cN: float) (cB: float) (px: nativeptr<float>)
                            (pt: nativeptr<float>) (pn: nativeptr<float>) (pd: nativeptr<float>) (withNtk: bool) (len: int) =
        let mutable i = 0
        let vw, vb, vcN, vcB = Vector512.Create w2, Vector512.Create b2, Vector512.Create cN, Vector512.Create cB
        while i + 8 <= len do
            let xv = Vector512.Load(NativePtr.add px i)
            let tv = if withNtk then Vector512.Load(NativePtr.add pt i) else xv
            let nn = xv * vw + vb
            nn.Store(NativePtr.add pn i)
            if withNtk then (tv * vw + (if ntkFromOut then nn else xv * vcN + vcB)).Store(NativePtr.add pd i)
            i <- i + 8
        i

    /// The Dense map on one run of len entries by pointers (the fused Dense/ABRelu executor, <c>DenseStack</c>): the
    /// operations of <c>denseRange</c>, in vectors of the width <c>normWidth</c> selects (8, 4 or 1 lanes; being
    /// elementwise without FMA, every width gives the same bits). Outputs may alias their own inputs (pn = px,
    /// pd = pt): each entry is read before it is written.
    let denseRun (w2: float) (b2: float) (ntkFromOut: bool) (cN: float) (cB: float) (px: nativeptr<float>)
                 (pt: nativeptr<float>) (pn: nativeptr<float>) (pd: nativeptr<float>) (withNtk: bool) (len: int) =
        let width = normWidth ()
        let mutable i = if width = 512 then denseRun512 w2 b2 ntkFromOut cN cB px pt pn pd withNtk len else 0
        if width >= 256 && Vector256.IsHardwareAccelerated then
            let vw, vb, vcN, vcB = Vector256.Create w2, Vector256.Create b2, Vector256.Create cN, Vector256.Create cB
            while i + 4 <= len do
                let xv = Vector256.Load(NativePtr.add px i)
                let tv = if withNtk then Vector256.Load(NativePtr.add pt i) else xv
                let nn = xv * vw + vb
                nn.Store(NativePtr.add pn i)
                if withNtk then (tv * vw + (if ntkFromOut then nn else xv * vcN + vcB)).Store(NativePtr.add pd i)
                i <- i + 4
        while i < len do
            let xv = NativePtr.get px i
            let tv = if withNtk then NativePtr.get pt i else xv
            let nn = xv * w2 + b2
            NativePtr.set pn i nn
            if withNtk then NativePtr.set pd i (tv * w2 + (if ntkFromOut then nn else xv * cN + cB))
            i <- i + 1

    /// One pass over flat arrays; outT is written only when ntk is given.
    let densePass (w2: float) (b2: float) (ntkFromOut: bool) (cN: float) (cB: float) (x: float[]) (ntk: float[] option)
                  (outN: float[]) (outT: float[] option) =
        let n = x.Length
        let t = defaultArg ntk x
        let d = defaultArg outT outN
        let chunk = 1 <<< 15
        let chunks = (n + chunk - 1) / chunk
        Linalg.parallelRanges chunks (float chunk) (fun lo hi ->
            denseRange w2 b2 ntkFromOut cN cB x t outN d ntk.IsSome (lo * chunk) (min n (hi * chunk)))
