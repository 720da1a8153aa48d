namespace NeuralTangents.Rules

#nowarn "9" // pointer loads/stores over pinned buffers

open System
open System.Runtime.Intrinsics
open System.Runtime.Intrinsics.X86
open System.Threading.Tasks
open Microsoft.FSharp.NativeInterop
open NeuralTangents
open NeuralTangents.Layers

/// The fused executor of a run of Conv and ABRelu layers (the plan rewrite <c>FusedConvStackOp</c>): the same
/// mathematics as the layers' own rules (<c>Convolution.kernelRule</c>, <c>Elementwise.abReluKernel</c>), executed so
/// that the working set stays in cache instead of streaming every layer's (N1, N2, spatial…) arrays through memory.
///
/// Why it can: a shared-weight convolution's covariance map uses one filter offset t for both positions of a pair,
/// out(o, o′) = (1/f)·Σ_t in(i(o, t), i(o′, t)) (arXiv:1810.05148, eq. 6; neural_tangents'
/// <c>_conv_kernel_full_spatial_shared</c>), so along the first spatial axis an output pair (o, o′) reads only input
/// pairs (i, j) with i − j = s·(o − o′) (mod D with CIRCULAR padding). Every diagonal o − o′ of the output is therefore
/// fed by one chain of "bands" back to the input — one partner j per row i at every layer — and a band of one pair of
/// inputs (≤ D rows × the remaining axes: 256 KB for 32×32) runs through all layers on its own (where some input
/// row would need two partners — CIRCULAR padding mixed with others or with strides — <c>tryRun</c> declines). The
/// diagonal spatial layout gets a unit leading axis: one band, one row, the whole image. Within a band each output row
/// is computed in cache: the first-axis taps summed, the remaining axes filtered by flat shifted adds, then the affine
/// map and the division-free arc-cosine step (<c>SimdNorm.abReluNormRun</c>) in one pass.
///
/// The variances the activation needs (cov1[i, p], cov2[j, q]) come from a first pass over each input's own band
/// o′ = o (which feeds only on itself), with the same operations as the pairs, so a pair of identical inputs meets
/// ρ = 1 exactly. When x2 is x1 only pairs i ≤ j are computed; (j, i) is the mirror image. Networks or kernels this
/// executor does not cover (masks, full batch covariances, other layers) make <c>tryRun</c> return None, and the
/// caller runs the layers' own rules.
module internal ConvStack =

    open ConvStackPlan

    open ConvStackPasses

    /// Buffers of one worker: two bands (in, out) for nngp and ntk, row scratch, and the activation's buffer
    /// (<c>SimdNorm.abReluNormRunBuf</c>). Framed rows (<c>ConvStackPlan.framed</c>) need the bands' frames zero:
    /// they are allocated cleared.
    type private Scratch =
        { BandN: float[][]; BandT: float[][]; RowN: float[][]; RowT: float[][]; Act: float[] }

    let private scratch (bandLen: int) (rowLen: int) (withNtk: bool) (framed: bool) =
        let z (n: int) = Pages.uninitialized (max n 1)
        let band (n: int) = if framed then Pages.zeroed (max n 1) else z n
        { BandN = [| band bandLen; band bandLen |]
          BandT = (if withNtk then [| band bandLen; band bandLen |] else [| z 1; z 1 |])
          RowN = [| z rowLen; z rowLen; z rowLen |]
          RowT = (if withNtk then [| z rowLen; z rowLen; z rowLen |] else [| z 1; z 1; z 1 |])
          Act = z 640 }

    /// The window mean of a step over the rows of a band into row scratch; returns where the result is: one of
    /// the two scratch rows, or the band's own input row when the first axis only copies it (one tap, f = 1: the
    /// unit leading axis of the diagonal layout), which the next pass then reads in place.
    /// skipLast: framed rows only, the last axis is left to the caller (the activation takes its window itself).
    let private convRow (full: bool) (st: Step) (axes: AxisStep[]) (bs: BandStep) (o: int) (skipLast: bool)
                        (src: nativeptr<float>) (rows: nativeptr<float>) (rows2: nativeptr<float>) : nativeptr<float> =
        // First axis: the band's table lists the input rows of output row o.
        let a0 = axes[0]
        let e0, e1 = bs.TableStart[o], bs.TableStart[o + 1]
        let inline row (e: int) = NativePtr.add src (bs.Table[e] * st.RestIn)
        // Where the data is, and which scratch row the next pass writes (0: rows, 1: rows2).
        let mutable cur = rows
        let mutable next = 1
        // 0 + a = a: the first input row is copied (scaled at once when it is the only one).
        if e1 = e0 then clear rows st.RestIn
        elif e1 = e0 + 1 then
            if a0.Inv = 1.0 then
                cur <- row e0
                next <- 0
            else scaleFrom rows (row e0) a0.Inv st.RestIn
        elif e1 = e0 + 3 then sum3ScaleInto rows (row e0) (row (e0 + 1)) (row (e0 + 2)) a0.Inv st.RestIn
        elif e1 = e0 + 2 then sum2ScaleInto rows (row e0) (row (e0 + 1)) a0.Inv st.RestIn
        else
            copy rows (row e0) st.RestIn
            for e in e0 + 1 .. e1 - 2 do addInto rows (row e) st.RestIn
            addScaleInto rows (row (e1 - 1)) a0.Inv st.RestIn
        // The remaining axes, one at a time, ping-ponging between the two row buffers.
        let mutable outer = 1
        if not (isNull st.Strides) then
            for a in 1 .. axes.Length - (if skipLast then 2 else 1) do
                let d = if next = 0 then rows else rows2
                framedPass axes[a] st.Strides[a] cur d st.RestIn
                cur <- d
                next <- 1 - next
            cur
        else
        for a in 1 .. axes.Length - 1 do
            let p = axes[a].Plan
            let post = st.Posts[a]
            let d = if next = 0 then rows else rows2
            axisPass full axes[a] cur d outer post
            outer <- outer * (if full then p.O * p.O else p.O)
            cur <- d
            next <- 1 - next
        cur

    /// The variances v of one input's positions at one step and r = 1/√v (0 where v = 0), from Offset on.
    [<Struct>]
    type private Tables =
        { V: float[]; R: float[]; Offset: int }
        static member None = { V = null; R = null; Offset = 0 }

    /// Runs one band of one pair (or of one input with itself) through every step.
    /// v1/v2: per step, the variance array and the offset of input i's (j's) positions, used by ABRelu steps.
    let private runBand (full: bool) (steps: Step[]) (band: BandStep[]) (sc: Scratch) (withNtk: bool)
                        (load: nativeptr<float> -> nativeptr<float> -> unit) (store: nativeptr<float> -> nativeptr<float> -> unit)
                        (v1: int -> Tables) (v2: int -> Tables) (selfVariances: (int -> Tables) option) =
        use pN0 = fixed sc.BandN[0]
        use pN1 = fixed sc.BandN[1]
        use pT0 = fixed sc.BandT[0]
        use pT1 = fixed sc.BandT[1]
        use rN0 = fixed sc.RowN[0]
        use rN1 = fixed sc.RowN[1]
        use rT0 = fixed sc.RowT[0]
        use rT1 = fixed sc.RowT[1]
        use rN2 = fixed sc.RowN[2]
        use rT2 = fixed sc.RowT[2]
        use act = fixed sc.Act
        load pN0 pT0
        let mutable cur = 0
        for s in 0 .. steps.Length - 1 do
            let st, bs = steps[s], band[s]
            let srcN, srcT = (if cur = 0 then pN0, pT0 else pN1, pT1)
            let dstN, dstT = (if cur = 0 then pN1, pT1 else pN0, pT0)
            let ta = match st.Relu with Some _ -> v1 s | None -> Tables.None
            // The activation's common case over whole rows (actRuns512, actRuns256), where its runs allow.
            let wide = Simd.normWidth () = 512
            let wholeRows =
                SimdNorm.splitAct && withNtk && st.Pre.W2 = 1.0 && st.Pre.B2 = 0.0 && st.Pre.FromOut
                && (if wide then st.RunsBy8 else Simd.normWidth () = 256 && Fma.IsSupported && st.RunsBy4)
            // ... and then also the last axis's three-tap window inside it, its stride and 1/f (framed rows, a step
            // with an activation, not a self band recording its variances from the whole output).
            let window =
                match st.Axes with
                | Some axes when SimdNorm.windowInAct && wholeRows && st.Relu.IsSome && not (isNull st.Strides) && selfVariances.IsNone
                                 && axes.Length >= 2 ->
                    let last = axes[axes.Length - 1]
                    match last.Shifts with
                    | Some [| -1; 0; 1 |] -> ValueSome(struct (st.Strides[axes.Length - 1], last.Inv))
                    | _ -> ValueNone
                | _ -> ValueNone
            let windowInAct = window.IsSome
            let tb = match st.Relu with Some _ -> v2 s | None -> Tables.None
            // Output row o reads input rows o − 1, o, o + 1 (the first axis of a 3-tap SAME or zero-padded window).
            let inline threeRows (o: int) =
                o >= 0 && o < bs.OutPartner.Length && bs.OutPartner[o] >= 0
                && (let e0 = bs.TableStart[o]
                    bs.TableStart[o + 1] = e0 + 3 && bs.Table[e0] = o - 1 && bs.Table[e0 + 1] = o && bs.Table[e0 + 2] = o + 1)
            // With the last window in the activation, the first axis's sum is one pass into row scratch 0; where rows
            // o, o + 1 and o + 2 all read three neighbours, one pass sums all three (sum3TripleScaleInto: five band
            // rows read once instead of three times three), rows o + 1 and o + 2 into scratch 1 and 2, read next.
            let ahead = windowInAct && SimdNorm.rowsAtOnce && not (isNull st.Strides) && st.Axes.Value.Length = 2
            let mutable ready = 0 // rows summed ahead: the next in scratch 3 − ready
            for o in 0 .. bs.OutPartner.Length - 1 do
                let o' = bs.OutPartner[o]
                if o' >= 0 then
                    // The step's input row(s) → xN/xT (before the affine map).
                    let xN, xT =
                        match st.Axes with
                        | Some _ when ready > 0 ->
                            ready <- ready - 1
                            if ready = 1 then rN1, rT1 else rN2, rT2
                        | Some axes when ahead && threeRows o && threeRows (o + 1) && threeRows (o + 2) ->
                            let inline row (src: nativeptr<float>) (h: int) = NativePtr.add src (h * st.RestIn)
                            let inv = axes[0].Inv
                            sum3TripleScaleInto rN0 rN1 rN2 (row srcN (o - 1)) (row srcN o) (row srcN (o + 1)) (row srcN (o + 2)) (row srcN (o + 3)) inv st.RestIn
                            if withNtk then
                                sum3TripleScaleInto rT0 rT1 rT2 (row srcT (o - 1)) (row srcT o) (row srcT (o + 1)) (row srcT (o + 2)) (row srcT (o + 3)) inv st.RestIn
                            ready <- 2
                            rN0, rT0
                        | Some axes ->
                            convRow full st axes bs o windowInAct srcN rN0 rN1, (if withNtk then convRow full st axes bs o windowInAct srcT rT0 rT1 else rT0)
                        | None -> NativePtr.add srcN (o * st.RestIn), NativePtr.add srcT (o * st.RestIn)
                    let outN, outT = NativePtr.add dstN (o * st.RestOut), NativePtr.add dstT (o * st.RestOut)
                    let pre = st.Pre
                    match st.Relu with
                    | Some(factor, half) ->
                        // A self band records the variances of its own same-position entries first (after the
                        // affine map, with the operations abReluRun applies).
                        match selfVariances with
                        | Some sv ->
                            let tv = sv s
                            for r in 0 .. st.RowDiag.Length - 1 do
                                let v = NativePtr.get xN st.RowDiag[r] * pre.W2 + pre.B2
                                let at = tv.Offset + o * st.RowPositions + r
                                tv.V[at] <- v
                                tv.R[at] <- if v > 0.0 then 1.0 / Math.Sqrt v else 0.0
                        | None -> ()
                        use p1 = fixed ta.V
                        use q1 = fixed ta.R
                        use p2 = fixed tb.V
                        use q2 = fixed tb.R
                        let at1, at2 = ta.Offset + o * st.RowPositions, tb.Offset + o' * st.RowPositions
                        let b1, c1 = NativePtr.add p1 at1, NativePtr.add q1 at1
                        let b2, c2 = NativePtr.add p2 at2, NativePtr.add q2 at2
                        if windowInAct then
                            let struct (ws, winv) = window.Value
                            if wide then actRunsWindow512 ws winv factor half xN xT st.ActRuns b1 c1 b2 c2 outN outT act
                            else actRunsWindow256 ws winv factor half xN xT st.ActRuns b1 c1 b2 c2 outN outT act
                        elif wholeRows then
                            if wide then actRuns512 factor half xN xT st.ActRuns b1 c1 b2 c2 outN outT act
                            else actRuns256 factor half xN xT st.ActRuns b1 c1 b2 c2 outN outT act
                        else
                        for ar in st.ActRuns do
                            SimdNorm.abReluNormRunBuf pre factor half (NativePtr.add xN ar.Off) (NativePtr.add xT ar.Off)
                                (NativePtr.add b1 ar.P) (NativePtr.add c1 ar.P) ar.Broadcast (NativePtr.add b2 ar.Q) (NativePtr.add c2 ar.Q)
                                (NativePtr.add outN ar.Off) (NativePtr.add outT ar.Off) withNtk act ar.Len
                    | None ->
                        // The affine map alone, over the activation's runs (every entry of a natural row; the grid
                        // entries of a framed one, whose frames stay zero).
                        for ar in st.ActRuns do
                            for e in ar.Off .. ar.Off + ar.Len - 1 do
                                let x0 = NativePtr.get xN e
                                let x = x0 * pre.W2 + pre.B2
                                NativePtr.set outN e x
                                if withNtk then
                                    NativePtr.set outT e (NativePtr.get xT e * pre.W2 + (if pre.FromOut then x else x0 * pre.CN + pre.CB))
            cur <- 1 - cur
        if cur = 0 then store pN0 pT0 else store pN1 pT1

    // ---------------------------------------------------------------------------------------------
    // Execution.

    /// For every entry of a zipped (D1, D1′, …) block: the entry holding the same pair with the two inputs
    /// exchanged, (D1′, D1, …) — the (j, i) block of a symmetric kernel from the (i, j) block.
    let private swapTable (full: bool) (dims: int[]) =
        let len = if full then dims |> Array.fold (fun acc d -> acc * d * d) 1 else prod dims
        if not full then Array.init len id
        else
            let shape = Array.append [| 1; 1 |] (dims |> Array.collect (fun d -> [| d; d |]))
            let idx = Tensor.create shape (Array.init len float)
            (Tensor.permute (Spatial.swapAxes false shape.Length) idx).Data |> Array.map int

    /// At most one worker per core (<c>Parallelism.options</c>): without it, on two cores three threads time-slice
    /// one core's cache-sized bands (GAP N = 4, 5 interleaved runs: CPU per entry 66-73 ms against 76-98, wall
    /// time the same).
    let private forEach (count: int) (mk: unit -> Scratch) (body: Scratch -> int -> unit) =
        Parallel.For(0, count, Parallelism.options, (fun () -> mk ()), (fun i _ sc -> body sc i; sc), (fun _ -> ())) |> ignore

    /// What the executor reduces a stack's output to in cache: the trailing layer it stands for.
    type Reduction =
        /// GlobalAvgPool: Σ over every stored entry, times 1/S² (S output positions).
        | GlobalMean
        /// GlobalSumPool: Σ over every stored entry.
        | GlobalSum
        /// Flatten on the diagonal spatial layout: Σ over the positions, times 1/S (the full layout declines).
        | PositionMean

    /// As <c>tryRun</c>, and with <paramref name="reduce"/> = Some the stack is followed by a reduction of every
    /// pair's block (a global pooling, or a Flatten of the diagonal layout) done in the executor: every band's output
    /// rows are summed in cache and never stored, and the result has all spatial sizes 1 and holds the reduced
    /// values, on which the layer's own rule sets the metadata (it takes one entry, scaled by 1 or divided by 1: the
    /// values pass unchanged).
    ///
    /// <paramref name="rows"/> = Some: k is an input kernel without arrays (<c>InputRows.ofInputs</c>) and its
    /// blocks are produced row by row as the first step reads them; None: k's arrays are read.
    let tryRunPooledFrom (rows: InputRows.Rows option) (layers: Layer list) (reduce: Reduction option) (k: Kernel) : Kernel option =
        let n1, n2 = k.Nngp.Shape[0], k.Nngp.Shape[1]
        if not k.DiagonalBatch || k.Mask1.IsSome || k.Mask2.IsSome || n1 = 0 || n2 = 0 || (reduce = Some PositionMean && not k.DiagonalSpatial) then None
        else
        match plan layers k with
        | None -> None
        | Some(natural, meta) ->
        let full = not k.DiagonalSpatial
        // Framed rows where they apply (frameAt: natural row entry → framed offset), else the natural rows.
        let steps, frameAt =
            match (if useFrames then framed full natural else None) with
            | Some(fs, at) -> fs, at
            | None -> natural, null
        let isFramed = not (isNull frameAt)
        let last = steps[steps.Length - 1]
        let o0 = last.OutDims[0]
        let finals =
            if full then [ for d in -(o0 - 1) .. o0 - 1 -> Array.init o0 (fun o -> if o - d >= 0 && o - d < o0 then o - d else -1) ]
            else [ Array.init o0 id ]
        let self = Array.init o0 id
        match bandOf steps self, finals |> List.map (bandOf steps) with
        | None, _ -> None
        | _, bs when bs |> List.exists Option.isNone -> None
        | Some selfBand, bs ->
        let bands = bs |> List.map Option.get |> Array.ofList
        let withNtk = k.Ntk.IsSome
        let d0 = steps[0].InDims[0]
        // Entries of a row in the inputs and outputs (natural), and in a band (framed or natural).
        let restIn0, restOutL = natural[0].RestIn, natural[natural.Length - 1].RestOut
        let rowIn0, rowOutL = steps[0].RestIn, last.RestOut
        let blockIn = (if full then d0 * d0 else d0) * restIn0
        let blockOut = (if full then o0 * o0 else o0) * restOutL
        let pooled = reduce.IsSome
        let positionsOut = float (prod last.OutDims)
        let poolScale =
            match reduce with
            | Some GlobalMean -> 1.0 / (positionsOut * positionsOut)
            | Some PositionMean -> 1.0 / positionsOut
            | _ -> 1.0
        // Entries per (i, j) block of the outputs: one pooled value, or the whole block.
        let outBlock = if pooled then 1 else blockOut
        Memory.checkKernel (int64 n1) (int64 n2) (int64 outBlock) (if withNtk then 2 else 1)
        let bandLen = steps |> Array.map (fun s -> max (s.InDims[0] * s.RestIn) (s.OutDims[0] * s.RestOut)) |> Array.max
        let rowLen =
            steps |> Array.map (fun s ->
                // Rows between the remaining axes' passes: processed axes at output size, the others at input size.
                [ for a in 0 .. s.InDims.Length - 1 ->
                    Array.init (s.InDims.Length - 1) (fun b -> let d = (if b + 1 <= a then s.OutDims else s.InDims)[b + 1] in if full then d * d else d)
                    |> prod ] |> List.max)
            |> Array.max
            |> max (if isFramed then rowIn0 else 0)
        match rows with
        | Some r when r.P.Length <> restIn0 || (if full then r.S * r.S else r.S) <> blockIn -> invalidOp "ConvStack: input rows do not match the kernel's layout"
        | _ -> ()
        let mk () = scratch bandLen rowLen withNtk isFramed
        let mkCov () = scratch bandLen rowLen false isFramed
        // Loading rows of one (i, j) block of an input array into band rows, and storing band rows into an output block.
        let loadFrom (b0: BandStep) (src: float[]) (srcT: float[]) (block: int) (pN: nativeptr<float>) (pT: nativeptr<float>) =
            for r in 0 .. b0.InPartner.Length - 1 do
                let q = b0.InPartner[r]
                if q >= 0 then
                    let at = block * blockIn + (if full then r * d0 + q else r) * restIn0
                    if isFramed then
                        let dN, dT = NativePtr.add pN (r * rowIn0), NativePtr.add pT (r * rowIn0)
                        for e in 0 .. restIn0 - 1 do
                            NativePtr.set dN frameAt[e] src[at + e]
                            if not (isNull srcT) then NativePtr.set dT frameAt[e] srcT[at + e]
                    else
                    Span(src, at, restIn0).CopyTo(Span<float>(NativePtr.toVoidPtr (NativePtr.add pN (r * restIn0)), restIn0))
                    if not (isNull srcT) then
                        Span(srcT, at, restIn0).CopyTo(Span<float>(NativePtr.toVoidPtr (NativePtr.add pT (r * restIn0)), restIn0))
        // The same from the input rows (the input NTK is +0.0: its rows are cleared when wanted).
        let loadRows (b0: BandStep) (r: InputRows.Rows) (a: float[]) (i: int) (b: float[]) (j: int) (withT: bool)
                     (pN: nativeptr<float>) (pT: nativeptr<float>) =
            for h in 0 .. b0.InPartner.Length - 1 do
                let h' = b0.InPartner[h]
                if h' >= 0 then
                    if isFramed then InputRows.rowAt r a i b j h h' frameAt (NativePtr.add pN (h * rowIn0))
                    else InputRows.row r a i b j h h' (NativePtr.add pN (h * rowIn0))
                    if withT then clear (NativePtr.add pT (h * rowIn0)) rowIn0
        // Input i of cov (k.Cov1 or k.Cov2; rows: x1 or x2) with itself, loaded for band b0.
        let loadSelf (cov: Tensor) (xs: InputRows.Rows -> float[]) (b0: BandStep) (i: int) =
            match rows with
            | Some r -> loadRows b0 r (xs r) i (xs r) i false
            | None -> loadFrom b0 cov.Data null i
        // The rules store a full-layout output with its axis pairs reversed after an odd number of convolutions over
        // 2+ axes (Flipped): rows are then scattered straight into that order, (P_{k−1}, …, P_1, P_0), instead of
        // permuting the whole arrays afterwards. restStored[e]: the stored index of the rest pairs of row entry e.
        let flippedOut = full && meta.Flipped
        let pair0 = o0 * o0
        let restStored =
            if not flippedOut then null
            else
                let rest = last.OutDims[1..] |> Array.collect (fun d -> [| d; d |])
                let idx = Tensor.create rest (Array.init restOutL float)
                let byStored = (Tensor.permute (Spatial.reverseAxes false 0 rest.Length) idx).Data
                let r = Array.zeroCreate restOutL
                byStored |> Array.iteri (fun e' e -> r[int e] <- e')
                r
        let storeTo (bl: BandStep) (dst: float[]) (dstT: float[]) (block: int) (pN: nativeptr<float>) (pT: nativeptr<float>) =
            for o in 0 .. bl.OutPartner.Length - 1 do
                let o' = bl.OutPartner[o]
                if o' >= 0 then
                    let srcN, srcT = NativePtr.add pN (o * rowOutL), NativePtr.add pT (o * rowOutL)
                    if flippedOut then
                        let at = block * blockOut + o * o0 + o'
                        for e in 0 .. restOutL - 1 do
                            let f = if isFramed then frameAt[e] else e
                            dst[at + restStored[e] * pair0] <- NativePtr.get srcN f
                            if not (isNull dstT) then dstT[at + restStored[e] * pair0] <- NativePtr.get srcT f
                    elif isFramed then
                        let at = block * blockOut + (if full then o * o0 + o' else o) * restOutL
                        for e in 0 .. restOutL - 1 do
                            dst[at + e] <- NativePtr.get srcN frameAt[e]
                            if not (isNull dstT) then dstT[at + e] <- NativePtr.get srcT frameAt[e]
                    else
                        let at = block * blockOut + (if full then o * o0 + o' else o) * restOutL
                        Span<float>(NativePtr.toVoidPtr srcN, restOutL).CopyTo(Span(dst, at, restOutL))
                        if not (isNull dstT) then Span<float>(NativePtr.toVoidPtr srcT, restOutL).CopyTo(Span(dstT, at, restOutL))
        // Pooled: the sum of a band's output rows into slot `slot` of dst (and dstT).
        let sumTo (bl: BandStep) (dst: float[]) (dstT: float[]) (slot: int) (pN: nativeptr<float>) (pT: nativeptr<float>) =
            let mutable sN, sT = 0.0, 0.0
            for o in 0 .. bl.OutPartner.Length - 1 do
                if bl.OutPartner[o] >= 0 then
                    sN <- sN + rowSum (NativePtr.add pN (o * rowOutL)) rowOutL
                    if not (isNull dstT) then sT <- sT + rowSum (NativePtr.add pT (o * rowOutL)) rowOutL
            dst[slot] <- sN
            if not (isNull dstT) then dstT[slot] <- sT
        // Pooled: out[o] = poolScale · Σ_b parts[o·nb + b], bands in order.
        let reduceParts (nb: int) (parts: float[]) (out: float[]) (count: int) =
            for o in 0 .. count - 1 do
                let mutable acc = 0.0
                for b in 0 .. nb - 1 do acc <- acc + parts[o * nb + b]
                out[o] <- poolScale * acc
        let positions = steps |> Array.map (fun s -> prod s.OutDims)
        // Phase 1: every input's own band (o′ = o) through all steps, recording the variances of each ABRelu step.
        let variances (cov: Tensor) (xs: InputRows.Rows -> float[]) (count: int) (out: float[]) =
            let vs = steps |> Array.mapi (fun s st -> if st.Relu.IsSome then Pages.zeroed (count * positions[s]) else null)
            let rs = steps |> Array.mapi (fun s st -> if st.Relu.IsSome then Pages.zeroed (count * positions[s]) else null)
            forEach count mkCov (fun sc i ->
                let sv (s: int) = { V = vs[s]; R = rs[s]; Offset = i * positions[s] }
                runBand full steps selfBand sc false
                    (loadSelf cov xs selfBand[0] i)
                    (fun pN pT ->
                        if not full then
                            if pooled then sumTo selfBand[selfBand.Length - 1] out null i pN pT
                            else storeTo selfBand[selfBand.Length - 1] out null i pN pT)
                    sv sv (Some sv))
            vs, rs
        let cov1Out = Pages.uninitialized (n1 * outBlock)
        let cov2Out = k.Cov2 |> Option.map (fun c -> Pages.uninitialized (c.Shape[0] * outBlock))
        let x1s, x2s = (fun (r: InputRows.Rows) -> r.X1), (fun (r: InputRows.Rows) -> r.X2)
        let v1 = variances k.Cov1 x1s n1 cov1Out
        let v2 = match k.Cov2, cov2Out with Some c, Some o -> variances c x2s c.Shape[0] o | _ -> v1
        // The diagonal layout has one band: its sums are the pooled values once scaled.
        if pooled && not full then
            for o in cov1Out :: Option.toList cov2Out do reduceParts 1 (Array.copy o) o o.Length
        // Phase 2: every band of every pair (i ≤ j only when x2 is x1: the rest is the mirror image).
        let mirror = k.Cov2.IsNone && n1 = n2
        // Pairs in blocks of 8 × 8 inputs: a pair reads both inputs' variance tables at every step (16 bytes per
        // position and step: 344 KB per 32×32 input over 21 steps, 44 MB for N = 128, more than the L3 cache), and a
        // block's 16 inputs stay cached while its 64 pairs run (Flatten N = 128, Zen 3: 0.0236–0.0242 against
        // 0.0254–0.0284 ms per entry in row order, three alternating runs; within the noise in a later comparison).
        // The order of the pairs changes no result.
        let blk = 8
        let pairs =
            [| for i0 in 0 .. blk .. n1 - 1 do
                 for j0 in (if mirror then i0 else 0) .. blk .. n2 - 1 do
                     for i in i0 .. min (i0 + blk) n1 - 1 do
                         for j in max j0 (if mirror then i else 0) .. min (j0 + blk) n2 - 1 -> struct (i, j) |]
        let nngpOut = Pages.uninitialized (n1 * n2 * outBlock)
        let ntkOut = if withNtk then Pages.uninitialized (n1 * n2 * outBlock) else null
        let ntkIn = match k.Ntk, rows with Some t, None -> t.Data | _ -> null
        let nb = bands.Length
        let partN = if pooled then Pages.zeroed (pairs.Length * nb) else null
        let partT = if pooled && withNtk then Pages.zeroed (pairs.Length * nb) else null
        // Self pairs, pooled, full layout, x2 = x1: when input i's own blocks (nngp and ntk) are exactly symmetric
        // under (h, h′, w, w′, …) ↦ (h′, h, w′, w, …) (checked entry by entry), every step keeps that symmetry
        // exactly (both positions of a pair take the same taps in the same order; v1 = v2 and r1·r2 commutes), so
        // the band of diagonal −d holds the transposed entries of the band of d, and the same pooled sum (up to
        // the order of the additions): only d ≥ 0 is run (≈ half the rows), d < 0 takes the sum of −d.
        let symmetricSelf =
            if not (pooled && full && mirror) then Array.create n1 false
            // Input rows: exactly symmetric by construction (InputRows.row), the input NTK is zero.
            elif rows.IsSome then Array.create n1 true
            else
                let dims = Array.init (k.Nngp.Shape.Length / 2 - 1) (fun a -> k.Nngp.Shape[2 + 2 * a])
                let swapIn = swapTable true dims
                let symmetric (data: float[]) (at: int) =
                    let mutable ok = true
                    let mutable e = 0
                    while ok && e < blockIn do
                        ok <- data[at + e] = data[at + swapIn[e]]
                        e <- e + 1
                    ok
                Array.init n1 (fun i ->
                    let at = (i * n2 + i) * blockIn
                    symmetric k.Nngp.Data at && (isNull ntkIn || symmetric ntkIn at))
        let mid = nb / 2 // the band of d = 0 (full layout: bands d = −(o0 − 1) … o0 − 1)
        forEach (pairs.Length * nb) mk (fun sc item ->
            let struct (i, j) = pairs[item / nb]
            let band = bands[item % nb]
            if not (i = j && symmetricSelf[i] && item % nb < mid) then
                runBand full steps band sc withNtk
                    (match rows with
                     | Some r -> loadRows band[0] r r.X1 i r.X2 j withNtk
                     | None -> loadFrom band[0] k.Nngp.Data ntkIn (i * n2 + j))
                    (if pooled then sumTo band[band.Length - 1] partN partT item
                     else storeTo band[band.Length - 1] nngpOut ntkOut (i * n2 + j))
                    (fun s -> { V = (fst v1)[s]; R = (snd v1)[s]; Offset = i * positions[s] })
                    (fun s -> { V = (fst v2)[s]; R = (snd v2)[s]; Offset = j * positions[s] }) None)
        if pooled then
            pairs |> Array.iteri (fun p (struct (i, j)) ->
                if i = j && symmetricSelf[i] then
                    for b in 0 .. mid - 1 do
                        partN[p * nb + b] <- partN[p * nb + nb - 1 - b]
                        if withNtk then partT[p * nb + b] <- partT[p * nb + nb - 1 - b])
            // Σ over bands per pair; (j, i) of a symmetric kernel: the same sum of every entry.
            let sums = Array.zeroCreate pairs.Length
            let sumsT = Array.zeroCreate pairs.Length
            reduceParts nb partN sums pairs.Length
            if withNtk then reduceParts nb partT sumsT pairs.Length
            pairs |> Array.iteri (fun p (struct (i, j)) ->
                nngpOut[i * n2 + j] <- sums[p]
                if withNtk then ntkOut[i * n2 + j] <- sumsT[p]
                if mirror then
                    nngpOut[j * n2 + i] <- sums[p]
                    if withNtk then ntkOut[j * n2 + i] <- sumsT[p])
        elif mirror then
            let swap = swapTable full (if flippedOut then Array.rev last.OutDims else last.OutDims)
            Parallelism.forRange 0 n1 (fun i ->
                for j in 0 .. i - 1 do
                    let src, dst = (j * n2 + i) * blockOut, (i * n2 + j) * blockOut
                    if not full then
                        // The diagonal layout's exchange is the identity (the pair (p, p) of positions): block copies.
                        Array.Copy(nngpOut, src, nngpOut, dst, blockOut)
                        if withNtk then Array.Copy(ntkOut, src, ntkOut, dst, blockOut)
                    else
                    for e in 0 .. blockOut - 1 do
                        nngpOut[dst + e] <- nngpOut[src + swap[e]]
                        if withNtk then ntkOut[dst + e] <- ntkOut[src + swap[e]])
        // Phase 3 (full layout): the output covariances cov1/cov2, all bands of each input with itself — unless x2
        // is x1 and the input's own blocks of nngp equal cov1, when they are the diagonal blocks of nngp.
        if full then
            let selfBlocksEqual =
                mirror
                && (rows.IsSome // the same rows (i, i) as the pairs read
                    || Seq.forall (fun i -> Span(k.Nngp.Data, (i * n2 + i) * blockIn, blockIn).SequenceEqual(ReadOnlySpan(k.Cov1.Data, i * blockIn, blockIn))) (seq { 0 .. n1 - 1 }))
            let covRuns (cov: Tensor) (xs: InputRows.Rows -> float[]) (vs: float[][] * float[][]) (out: float[]) =
                let count = cov.Shape[0]
                let parts = if pooled then Pages.zeroed (count * nb) else null
                forEach (count * nb) mkCov (fun sc item ->
                    let i = item / nb
                    let band = bands[item % nb]
                    let sv (s: int) = { V = (fst vs)[s]; R = (snd vs)[s]; Offset = i * positions[s] }
                    runBand full steps band sc false (loadSelf cov xs band[0] i)
                        (if pooled then sumTo band[band.Length - 1] parts null item
                         else storeTo band[band.Length - 1] out null i) sv sv None)
                if pooled then reduceParts nb parts out count
            if selfBlocksEqual then
                for i in 0 .. n1 - 1 do Array.Copy(nngpOut, (i * n2 + i) * outBlock, cov1Out, i * outBlock, outBlock)
            else covRuns k.Cov1 x1s v1 cov1Out
            match k.Cov2, cov2Out with
            | Some c, Some o -> covRuns c x2s v2 o
            | _ -> ()
        let spatialShape =
            if pooled then Array.create (if full then 2 * last.OutDims.Length else last.OutDims.Length - 1) 1
            elif full then (if flippedOut then Array.rev last.OutDims else last.OutDims) |> Array.collect (fun d -> [| d; d |])
            else last.OutDims[1..]
        let tensor (lead: int[]) (data: float[]) = Tensor.create (Array.append lead spatialShape) data
        Some
            { k with
                Nngp = tensor [| n1; n2 |] nngpOut
                Ntk = (if withNtk then Some(tensor [| n1; n2 |] ntkOut) else None)
                Cov1 = tensor [| n1 |] cov1Out
                Cov2 = Option.map2 (fun (c: Tensor) o -> tensor [| c.Shape[0] |] o) k.Cov2 cov2Out
                IsGaussian = meta.IsGaussian
                IsReversed = meta.IsReversed
                IsInput = false
                Shape1 = meta.Shape1
                Shape2 = meta.Shape2
                BatchAxis = meta.BatchAxis
                ChannelAxis = meta.ChannelAxis }

    /// Runs the layers on k with the fused executor, or returns None when it does not cover them (the caller then
    /// runs the layers' own rules). Same mathematics; numbers agree with the rules to rounding (the order of the
    /// axis passes and of some additions differs).
    let tryRun (layers: Layer list) (k: Kernel) : Kernel option = tryRunPooledFrom None layers None k

    /// <c>tryRunPooledFrom</c> on k's own arrays.
    let tryRunPooled (layers: Layer list) (reduce: Reduction option) (k: Kernel) : Kernel option = tryRunPooledFrom None layers reduce k
