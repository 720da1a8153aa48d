namespace NeuralTangents.Rules

#nowarn "9" // pointer loads/stores over pinned buffers

open System
open System.Runtime.Intrinsics
open Microsoft.FSharp.NativeInterop

/// The row passes of the fused Conv/ABRelu executor (<c>ConvStack</c>): vectorised sums, scales and copies over
/// row buffers, and one inner axis of a convolution's window mean (flat shifted adds for the interior, gathers for
/// the border outputs).
module internal ConvStackPasses =

    // The elementwise helpers below take 8 lanes (Vector512), then 4 (Vector256), then a scalar tail, by the
    // width Simd.normWidth () selects (tests force each); being elementwise, every width gives the same bits.

    open ConvStackPlan

    let inline addInto (d: nativeptr<float>) (s: nativeptr<float>) (len: int) =
        let mutable i = 0
        let width = Simd.normWidth ()
        if width = 512 then
            while i + 8 <= len do
                (Vector512.Load(NativePtr.add d i) + Vector512.Load(NativePtr.add s i)).Store(NativePtr.add d i)
                i <- i + 8
        if width >= 256 && Vector256.IsHardwareAccelerated then
            while i + 4 <= len do
                (Vector256.Load(NativePtr.add d i) + Vector256.Load(NativePtr.add s i)).Store(NativePtr.add d i)
                i <- i + 4
        while i < len do
            NativePtr.set d i (NativePtr.get d i + NativePtr.get s i)
            i <- i + 1

    /// d ← (s0 + s1)·a: a two-tap window sum and its scale in one pass (the copy / add-and-scale sequence's roundings).
    let inline sum2ScaleInto (d: nativeptr<float>) (s0: nativeptr<float>) (s1: nativeptr<float>) (a: float) (len: int) =
        let mutable i = 0
        let width = Simd.normWidth ()
        if width = 512 then
            let va5 = Vector512.Create a
            while i + 8 <= len do
                ((Vector512.Load(NativePtr.add s0 i) + Vector512.Load(NativePtr.add s1 i)) * va5).Store(NativePtr.add d i)
                i <- i + 8
        if width >= 256 && Vector256.IsHardwareAccelerated then
            let va = Vector256.Create a
            while i + 4 <= len do
                ((Vector256.Load(NativePtr.add s0 i) + Vector256.Load(NativePtr.add s1 i)) * va).Store(NativePtr.add d i)
                i <- i + 4
        while i < len do
            NativePtr.set d i ((NativePtr.get s0 i + NativePtr.get s1 i) * a)
            i <- i + 1

    /// d ← (d + s)·a: the last tap of a window sum and its scale in one pass (the same two roundings; d is read
    /// before it is written, entry by entry).
    let inline addScaleInto (d: nativeptr<float>) (s: nativeptr<float>) (a: float) (len: int) = sum2ScaleInto d d s a len

    /// d ← ((s0 + s1) + s2)·a: a three-tap window sum and its scale in one pass, with the roundings of the
    /// copy / add / add-and-scale sequence (0 + s0 = s0 exactly), so one load-store pass instead of three.
    let inline sum3ScaleInto (d: nativeptr<float>) (s0: nativeptr<float>) (s1: nativeptr<float>) (s2: nativeptr<float>) (a: float) (len: int) =
        let mutable i = 0
        let width = Simd.normWidth ()
        if width = 512 then
            let va5 = Vector512.Create a
            while i + 8 <= len do
                (((Vector512.Load(NativePtr.add s0 i) + Vector512.Load(NativePtr.add s1 i)) + Vector512.Load(NativePtr.add s2 i)) * va5).Store(NativePtr.add d i)
                i <- i + 8
        if width >= 256 && Vector256.IsHardwareAccelerated then
            let va = Vector256.Create a
            while i + 4 <= len do
                (((Vector256.Load(NativePtr.add s0 i) + Vector256.Load(NativePtr.add s1 i)) + Vector256.Load(NativePtr.add s2 i)) * va)
                    .Store(NativePtr.add d i)
                i <- i + 4
        while i < len do
            NativePtr.set d i (((NativePtr.get s0 i + NativePtr.get s1 i) + NativePtr.get s2 i) * a)
            i <- i + 1

    /// Three neighbouring rows of a three-tap window at once: d0 ← ((s0 + s1) + s2)·a, d1 ← ((s1 + s2) + s3)·a and
    /// d2 ← ((s2 + s3) + s4)·a, the additions of <c>sum3ScaleInto</c> (the same bits), with five loads per entry
    /// instead of nine.
    let inline sum3TripleScaleInto (d0: nativeptr<float>) (d1: nativeptr<float>) (d2: nativeptr<float>) (s0: nativeptr<float>) (s1: nativeptr<float>)
                                   (s2: nativeptr<float>) (s3: nativeptr<float>) (s4: nativeptr<float>) (a: float) (len: int) =
        let mutable i = 0
        let width = Simd.normWidth ()
        if width = 512 then
            let va5 = Vector512.Create a
            while i + 8 <= len do
                let b, c, d = Vector512.Load(NativePtr.add s1 i), Vector512.Load(NativePtr.add s2 i), Vector512.Load(NativePtr.add s3 i)
                (((Vector512.Load(NativePtr.add s0 i) + b) + c) * va5).Store(NativePtr.add d0 i)
                (((b + c) + d) * va5).Store(NativePtr.add d1 i)
                (((c + d) + Vector512.Load(NativePtr.add s4 i)) * va5).Store(NativePtr.add d2 i)
                i <- i + 8
        if width >= 256 && Vector256.IsHardwareAccelerated then
            let va = Vector256.Create a
            while i + 4 <= len do
                let b, c, d = Vector256.Load(NativePtr.add s1 i), Vector256.Load(NativePtr.add s2 i), Vector256.Load(NativePtr.add s3 i)
                (((Vector256.Load(NativePtr.add s0 i) + b) + c) * va).Store(NativePtr.add d0 i)
                (((b + c) + d) * va).Store(NativePtr.add d1 i)
                (((c + d) + Vector256.Load(NativePtr.add s4 i)) * va).Store(NativePtr.add d2 i)
                i <- i + 4
        while i < len do
            let b, c, d = NativePtr.get s1 i, NativePtr.get s2 i, NativePtr.get s3 i
            NativePtr.set d0 i (((NativePtr.get s0 i + b) + c) * a)
            NativePtr.set d1 i (((b + c) + d) * a)
            NativePtr.set d2 i (((c + d) + NativePtr.get s4 i) * a)
            i <- i + 1

    /// d ← s·a (a one-tap window: 0 + s = s exactly, then the scale).
    let inline scaleFrom (d: nativeptr<float>) (s: nativeptr<float>) (a: float) (len: int) =
        let mutable i = 0
        let width = Simd.normWidth ()
        if width = 512 then
            let va5 = Vector512.Create a
            while i + 8 <= len do
                (Vector512.Load(NativePtr.add s i) * va5).Store(NativePtr.add d i)
                i <- i + 8
        if width >= 256 && Vector256.IsHardwareAccelerated then
            let va = Vector256.Create a
            while i + 4 <= len do
                (Vector256.Load(NativePtr.add s i) * va).Store(NativePtr.add d i)
                i <- i + 4
        while i < len do
            NativePtr.set d i (NativePtr.get s i * a)
            i <- i + 1

    let inline scaleInPlace (d: nativeptr<float>) (a: float) (len: int) =
        let mutable i = 0
        let width = Simd.normWidth ()
        if width = 512 then
            let va5 = Vector512.Create a
            while i + 8 <= len do
                (Vector512.Load(NativePtr.add d i) * va5).Store(NativePtr.add d i)
                i <- i + 8
        if width >= 256 && Vector256.IsHardwareAccelerated then
            let va = Vector256.Create a
            while i + 4 <= len do
                (Vector256.Load(NativePtr.add d i) * va).Store(NativePtr.add d i)
                i <- i + 4
        while i < len do
            NativePtr.set d i (NativePtr.get d i * a)
            i <- i + 1

    let inline clear (d: nativeptr<float>) (len: int) =
        Span<float>(NativePtr.toVoidPtr d, len).Clear()

    let inline copy (d: nativeptr<float>) (s: nativeptr<float>) (len: int) =
        Span<float>(NativePtr.toVoidPtr s, len).CopyTo(Span<float>(NativePtr.toVoidPtr d, len))

    /// One inner axis of the window mean on a row buffer viewed as (outer, D[, D′], post) → (outer, O[, O′], post);
    /// taps in ascending order, then the scale by 1/f: the reference's order of operations.
    let axisPass (full: bool) (a: AxisStep) (src: nativeptr<float>) (dst: nativeptr<float>) (outer: int) (post: int) =
        let p = a.Plan
        match a.Shifts with
        | Some shifts ->
            // Interior outputs: one shifted add over the whole buffer per tap (a pair (o, o′) moves along the
            // diagonal, by D + 1 positions per step, in the full layout); the first tap is copied (0 + a = a), the
            // last one added and scaled in one pass. Border outputs got wrong values from the neighbouring lines (or
            // none, outside a tap's range); they are recomputed from the taps below.
            let total = outer * (if full then p.O * p.O else p.O) * post
            let step = (if full then p.D + 1 else 1) * post
            if p.F = 3 then
                // Three taps in one pass over the range every tap reads inside the buffer (outside it: border
                // outputs only, recomputed below).
                let sh0, sh1, sh2 = shifts[0] * step, shifts[1] * step, shifts[2] * step
                let lo = max 0 (max (-sh0) (max (-sh1) (-sh2)))
                let hi = min total (min (total - sh0) (min (total - sh1) (total - sh2)))
                if hi > lo then
                    sum3ScaleInto (NativePtr.add dst lo) (NativePtr.add src (lo + sh0)) (NativePtr.add src (lo + sh1))
                        (NativePtr.add src (lo + sh2)) a.Inv (hi - lo)
            else
                for t in 0 .. p.F - 1 do
                    let sh = shifts[t] * (if full then p.D + 1 else 1) * post
                    let lo, hi = max 0 (-sh), min total (total - sh)
                    if hi > lo then
                        let d, s, len = NativePtr.add dst lo, NativePtr.add src (lo + sh), hi - lo
                        if p.F = 1 then scaleFrom d s a.Inv len
                        elif t = 0 then copy d s len
                        elif t = p.F - 1 then addScaleInto d s a.Inv len
                        else addInto d s len
            // Border outputs: the window sum from the taps (ascending t from 0, as the rule adds), then the scale.
            if post = 1 then
                // Precomputed gathers (no tap arithmetic, no border tests): one line of (o, o′) or o per b.
                let struct (lineIn, lineOut) = if full then struct (p.D * p.D, p.O * p.O) else struct (p.D, p.O)
                let gDst, gStart, gSrc = if full then a.FullGather else a.LineGather
                let inv = a.Inv
                use pDst = fixed gDst
                use pStart = fixed gStart
                use pSrc = fixed gSrc
                for b in 0 .. outer - 1 do
                    let sB, dB = NativePtr.add src (b * lineIn), NativePtr.add dst (b * lineOut)
                    for g in 0 .. gDst.Length - 1 do
                        let mutable acc = 0.0
                        for e in NativePtr.get pStart g .. NativePtr.get pStart (g + 1) - 1 do
                            acc <- acc + NativePtr.get sB (NativePtr.get pSrc e)
                        NativePtr.set dB (NativePtr.get pDst g) (acc * inv)
            else
            for b in 0 .. outer - 1 do
                if full then
                    for o in 0 .. p.O - 1 do
                        let allCols = a.IsBorder[o]
                        let cols = if allCols then p.O else a.Border.Length
                        for ci in 0 .. cols - 1 do
                            let o' = if allCols then ci else a.Border[ci]
                            let d = NativePtr.add dst (((b * p.O + o) * p.O + o') * post)
                            if post = 1 then
                                let mutable acc = 0.0
                                for t in 0 .. p.F - 1 do
                                    let i, j = p.Taps[o * p.F + t], p.Taps[o' * p.F + t]
                                    if i >= 0 && j >= 0 then acc <- acc + NativePtr.get src ((b * p.D + i) * p.D + j)
                                NativePtr.write d (acc * a.Inv)
                            else
                                clear d post
                                for t in 0 .. p.F - 1 do
                                    let i, j = p.Taps[o * p.F + t], p.Taps[o' * p.F + t]
                                    if i >= 0 && j >= 0 then addInto d (NativePtr.add src (((b * p.D + i) * p.D + j) * post)) post
                                scaleInPlace d a.Inv post
                else
                    for o in a.Border do
                        let d = NativePtr.add dst ((b * p.O + o) * post)
                        clear d post
                        for t in 0 .. p.F - 1 do
                            let i = p.Taps[o * p.F + t]
                            if i >= 0 then addInto d (NativePtr.add src ((b * p.D + i) * post)) post
                        scaleInPlace d a.Inv post
        | None ->
            let lineIn, lineOut = (if full then p.D * p.D else p.D) * post, (if full then p.O * p.O else p.O) * post
            for b in 0 .. outer - 1 do
                let sB = NativePtr.add src (b * lineIn)
                let dB = NativePtr.add dst (b * lineOut)
                clear dB lineOut
                if full then
                    for o in 0 .. p.O - 1 do
                        let dLine = NativePtr.add dB (o * p.O * post)
                        for t in 0 .. p.F - 1 do
                            let i = p.Taps[o * p.F + t]
                            if i >= 0 then
                                let sLine = NativePtr.add sB (i * p.D * post)
                                if post = 1 then
                                    for r in a.Runs[t] do addInto (NativePtr.add dLine r.Start) (NativePtr.add sLine r.Src) r.Len
                                else
                                    for o' in 0 .. p.O - 1 do
                                        let j = p.Taps[o' * p.F + t]
                                        if j >= 0 then addInto (NativePtr.add dLine (o' * post)) (NativePtr.add sLine (j * post)) post
                else
                    for t in 0 .. p.F - 1 do
                        if post = 1 then
                            for r in a.Runs[t] do addInto (NativePtr.add dB r.Start) (NativePtr.add sB r.Src) r.Len
                        else
                            for o in 0 .. p.O - 1 do
                                let i = p.Taps[o * p.F + t]
                                if i >= 0 then addInto (NativePtr.add dB (o * post)) (NativePtr.add sB (i * post)) post
                scaleInPlace dB a.Inv lineOut

    /// One axis of a framed row (<c>ConvStackPlan.framed</c>): out[k] = (Σ_t in[k + shift_t·stride])·(1/f), taps
    /// ascending, for every k whose neighbours lie inside the row (every grid entry; a neighbour outside the grid
    /// is a zero of the frame).
    let framedPass (a: AxisStep) (stride: int) (src: nativeptr<float>) (dst: nativeptr<float>) (len: int) =
        let shifts = a.Shifts.Value
        let f = shifts.Length
        let mutable lo, hi = 0, len
        for t in 0 .. f - 1 do
            lo <- max lo (-shifts[t] * stride)
            hi <- min hi (len - shifts[t] * stride)
        if hi > lo then
            let n = hi - lo
            let d = NativePtr.add dst lo
            let inline tap (t: int) = NativePtr.add src (lo + shifts[t] * stride)
            if f = 3 then sum3ScaleInto d (tap 0) (tap 1) (tap 2) a.Inv n
            elif f = 1 then scaleFrom d (tap 0) a.Inv n
            else
                copy d (tap 0) n
                for t in 1 .. f - 2 do addInto d (tap t) n
                addScaleInto d (tap (f - 1)) a.Inv n

    /// The activation's common case (<c>SimdNorm.abReluNormRunBuf</c>'s two passes) over all runs of a row, every
    /// run's length a multiple of the vector's lanes (8 when wide, at 512 bits, else 4) and at most 128: the first
    /// passes of the runs of a chunk of up to 128 entries,
    /// then their second passes, with one call per row instead of one per run (a line of 32 entries in the full
    /// layout: the per-call set-up cost ~30 % of such a run). With win, px and pt are the rows before the
    /// convolution's last axis, whose three-tap window (stride ws, scale winv) the passes take themselves (the
    /// additions of framedPass: the same bits) instead of a separate pass over the row. buf: 640 entries.
    let inline private actRunsWith (wide: bool) (win: bool) (ws: int) (winv: float) (factor: float) (half: float) (px: nativeptr<float>) (pt: nativeptr<float>)
                            (runs: ActRun[]) (b1: nativeptr<float>) (c1: nativeptr<float>) (b2: nativeptr<float>) (c2: nativeptr<float>)
                            (pn: nativeptr<float>) (pd: nativeptr<float>) (buf: nativeptr<float>) =
        let bu, bq, bs, bl, bx = buf, NativePtr.add buf 128, NativePtr.add buf 256, NativePtr.add buf 384, NativePtr.add buf 512
        let mutable r0 = 0
        while r0 < runs.Length do
            let mutable r1 = r0
            let mutable total = 0
            while r1 < runs.Length && total + runs[r1].Len <= 128 do
                total <- total + runs[r1].Len
                r1 <- r1 + 1
            let mutable e = 0
            for r in r0 .. r1 - 1 do
                let ar = runs[r]
                let x = NativePtr.add px ar.Off
                let v1, q1, v2, q2 = NativePtr.add b1 ar.P, NativePtr.add c1 ar.P, NativePtr.add b2 ar.Q, NativePtr.add c2 ar.Q
                let u, q, sq, l, xs = NativePtr.add bu e, NativePtr.add bq e, NativePtr.add bs e, NativePtr.add bl e, NativePtr.add bx e
                if wide then
                    if ar.Broadcast then SimdNorm.splitSector512 factor x v1 q1 true v2 q2 u q sq l win ws winv xs ar.Len
                    else SimdNorm.splitSector512 factor x v1 q1 false v2 q2 u q sq l win ws winv xs ar.Len
                elif ar.Broadcast then SimdNorm.splitSector256 factor x v1 q1 true v2 q2 u q sq l win ws winv xs ar.Len
                else SimdNorm.splitSector256 factor x v1 q1 false v2 q2 u q sq l win ws winv xs ar.Len
                e <- e + ar.Len
            e <- 0
            for r in r0 .. r1 - 1 do
                let ar = runs[r]
                if wide then
                    SimdNorm.splitPoly512 factor half (NativePtr.add px ar.Off) (NativePtr.add pt ar.Off) (NativePtr.add bu e) (NativePtr.add bq e)
                        (NativePtr.add bs e) (NativePtr.add bl e) win ws winv (NativePtr.add bx e) (NativePtr.add pn ar.Off) (NativePtr.add pd ar.Off) ar.Len
                else
                    SimdNorm.splitPoly256 factor half (NativePtr.add px ar.Off) (NativePtr.add pt ar.Off) (NativePtr.add bu e) (NativePtr.add bq e)
                        (NativePtr.add bs e) (NativePtr.add bl e) win ws winv (NativePtr.add bx e) (NativePtr.add pn ar.Off) (NativePtr.add pd ar.Off) ar.Len
                e <- e + ar.Len
            r0 <- r1

    /// <c>actRunsWith</c> on the convolution's output rows.
    let actRuns256 (factor: float) (half: float) (px: nativeptr<float>) (pt: nativeptr<float>) (runs: ActRun[])
                   (b1: nativeptr<float>) (c1: nativeptr<float>) (b2: nativeptr<float>) (c2: nativeptr<float>)
                   (pn: nativeptr<float>) (pd: nativeptr<float>) (buf: nativeptr<float>) =
        actRunsWith false false 0 1.0 factor half px pt runs b1 c1 b2 c2 pn pd buf

    /// <c>actRuns256</c> at 512 bits (runs of multiples of 8).
    let actRuns512 (factor: float) (half: float) (px: nativeptr<float>) (pt: nativeptr<float>) (runs: ActRun[])
                   (b1: nativeptr<float>) (c1: nativeptr<float>) (b2: nativeptr<float>) (c2: nativeptr<float>)
                   (pn: nativeptr<float>) (pd: nativeptr<float>) (buf: nativeptr<float>) =
        actRunsWith true false 0 1.0 factor half px pt runs b1 c1 b2 c2 pn pd buf

    /// <c>actRunsWith</c> on the rows before the last axis's three-tap window (stride ws, scale winv).
    let actRunsWindow256 (ws: int) (winv: float) (factor: float) (half: float) (px: nativeptr<float>) (pt: nativeptr<float>) (runs: ActRun[])
                         (b1: nativeptr<float>) (c1: nativeptr<float>) (b2: nativeptr<float>) (c2: nativeptr<float>)
                         (pn: nativeptr<float>) (pd: nativeptr<float>) (buf: nativeptr<float>) =
        actRunsWith false true ws winv factor half px pt runs b1 c1 b2 c2 pn pd buf

    /// <c>actRunsWindow256</c> at 512 bits (runs of multiples of 8).
    let actRunsWindow512 (ws: int) (winv: float) (factor: float) (half: float) (px: nativeptr<float>) (pt: nativeptr<float>) (runs: ActRun[])
                         (b1: nativeptr<float>) (c1: nativeptr<float>) (b2: nativeptr<float>) (c2: nativeptr<float>)
                         (pn: nativeptr<float>) (pd: nativeptr<float>) (buf: nativeptr<float>) =
        actRunsWith true true ws winv factor half px pt runs b1 c1 b2 c2 pn pd buf

    /// The sum of a row of len entries (four Vector256 lanes, then the lanes and the tail).
    let rowSum (p: nativeptr<float>) (len: int) =
        let mutable i = 0
        let mutable acc = 0.0
        if Vector256.IsHardwareAccelerated && len >= 4 then
            let mutable v = Vector256<float>.Zero
            while i + 4 <= len do
                v <- v + Vector256.Load(NativePtr.add p i)
                i <- i + 4
            acc <- Vector256.Sum v
        while i < len do
            acc <- acc + NativePtr.get p i
            i <- i + 1
        acc
