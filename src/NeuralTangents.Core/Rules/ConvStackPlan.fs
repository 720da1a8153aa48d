namespace NeuralTangents.Rules

open System
open NeuralTangents
open NeuralTangents.Layers

/// Planning for the fused Conv/ABRelu executor (<c>ConvStack</c>): the steps of a run of layers (each an optional
/// convolution with its affine map, then an optional ABRelu), with their axis plans, the flat-filter shifts and border
/// outputs, the activation runs of a row, and the bands (one partner row per row, through every step, back to the input).
module internal ConvStackPlan =

    /// A contiguous run along a line: output indices [Start, Start + Len) read input indices [Src, Src + Len).
    [<Struct>]
    type Run = { Start: int; Src: int; Len: int }

    /// One spatial axis of a convolution step (physical axis order), with its per-tap contiguous runs.
    type AxisStep =
        { Plan: Convolution.AxisPlan
          Runs: Run[][]
          Inv: float
          /// When O = D and, for the interior outputs, tap t reads o + Shifts[t]: the axis is filtered by flat
          /// shifted adds over the whole buffer, then the border outputs (IsBorder) are recomputed from the taps.
          Shifts: int[] option
          IsBorder: bool[]
          Border: int[]
          /// The border outputs as gathers, for rows with one element per position (post = 1): output entry
          /// GatherDst[g] = Inv · Σ of the entries GatherSrc[GatherStart[g] .. GatherStart[g + 1] − 1] of the input
          /// line, taps ascending — for the full layout (a line of (D, D′) pairs) and the diagonal one (a line of D).
          FullGather: int[] * int[] * int[]
          LineGather: int[] * int[] * int[] }

    /// A run of elements of a row for the activation: elements [Off, Off + Len) of the row are the pairs of
    /// positions p = base1 + P + k·(1 − B) and q = base2 + Q + k (k < Len), B = 1 when p stays fixed.
    [<Struct>]
    type ActRun = { Off: int; P: int; Q: int; Len: int; Broadcast: bool }

    /// One step: an optional convolution (with its affine map) followed by an optional ABRelu.
    type Step =
        { Axes: AxisStep[] option
          Pre: Simd.DensePre
          /// (factor, half) of the ABRelu, if any.
          Relu: (float * float) option
          InDims: int[]
          OutDims: int[]
          RestIn: int
          RestOut: int
          /// Per axis a: the size of the axes after it in a row (at input size), for the inner axis passes.
          Posts: int[]
          /// Positions per row of the output (the product of OutDims[1..]).
          RowPositions: int
          ActRuns: ActRun[]
          /// Every activation run's length is a multiple of 4 and at most 128 (ConvStackPasses.actRuns256 applies).
          RunsBy4: bool
          /// Every activation run's length is a multiple of 8 and at most 128 (ConvStackPasses.actRuns512 applies).
          RunsBy8: bool
          /// Offsets in an output row of its same-position entries (the variances of a self band).
          RowDiag: int[]
          /// Framed rows (see <c>framed</c>): per axis a ≥ 1, the flat distance between neighbours along it; null
          /// for the natural layout.
          Strides: int[] }

    /// The rows of one band at one step: which output rows exist (partner o′ ≥ 0) and the input rows each sums.
    type BandStep = { OutPartner: int[]; InPartner: int[]; TableStart: int[]; Table: int[] }

    let private runsOf (p: Convolution.AxisPlan) =
        Array.init p.F (fun t ->
            let runs = ResizeArray<Run>()
            let mutable o = 0
            while o < p.O do
                let j = p.Taps[o * p.F + t]
                if j < 0 then o <- o + 1
                else
                    let mutable len = 1
                    while o + len < p.O && p.Taps[(o + len) * p.F + t] = j + len do len <- len + 1
                    runs.Add { Start = o; Src = j; Len = len }
                    o <- o + len
            runs.ToArray())

    /// The axis step of a plan, with the flat-filter data where it applies.
    let private axisStep (p: Convolution.AxisPlan) =
        let mid = p.O / 2
        let shifts =
            if p.O <> p.D || p.O = 0 then None
            else
                let sh = Array.init p.F (fun t -> p.Taps[mid * p.F + t] - mid)
                if Array.init p.F (fun t -> p.Taps[mid * p.F + t]) |> Array.exists (fun i -> i < 0) then None else Some sh
        let isBorder =
            Array.init p.O (fun o ->
                match shifts with
                | Some sh -> Array.init p.F id |> Array.exists (fun t -> p.Taps[o * p.F + t] <> o + sh[t] || o + sh[t] < 0 || o + sh[t] >= p.D)
                | None -> true)
        let border = Array.init p.O id |> Array.filter (fun o -> isBorder[o])
        let gather (entries: (int * int list) seq) =
            let dst, starts, src = ResizeArray<int>(), ResizeArray<int>([ 0 ]), ResizeArray<int>()
            for d, ss in entries do
                dst.Add d
                src.AddRange ss
                starts.Add src.Count
            dst.ToArray(), starts.ToArray(), src.ToArray()
        let fullGather =
            gather (seq {
                for o in 0 .. p.O - 1 do
                    for o' in (if isBorder[o] then Array.init p.O id else border) do
                        yield o * p.O + o',
                              [ for t in 0 .. p.F - 1 do
                                  let i, j = p.Taps[o * p.F + t], p.Taps[o' * p.F + t]
                                  if i >= 0 && j >= 0 then yield i * p.D + j ] })
        let lineGather =
            gather (seq { for o in border -> o, [ for t in 0 .. p.F - 1 do let i = p.Taps[o * p.F + t] in if i >= 0 then yield i ] })
        { Plan = p; Runs = runsOf p; Inv = 1.0 / float p.F; Shifts = shifts; IsBorder = isBorder
          Border = border; FullGather = fullGather; LineGather = lineGather }

    // ---------------------------------------------------------------------------------------------
    // Planning: the steps (with the metadata each layer's rule sets), and the bands.

    let prod (xs: int[]) = Array.fold (*) 1 xs

    let private restLen (full: bool) (dims: int[]) = dims[1..] |> Array.fold (fun acc d -> acc * (if full then d * d else d)) 1

    /// Activation runs of a row whose remaining axes have sizes `rest` (see <c>ActRun</c>): in the full layout the
    /// row is (E1, E1′, …, Em, Em′) and each run is one line along Em′ with p fixed; in the diagonal layout the row
    /// is (E1, …, Em) and one run covers it, p = q.
    let private actRuns (full: bool) (rest: int[]) =
        let r = prod rest
        if not full then [| { Off = 0; P = 0; Q = 0; Len = r; Broadcast = false } |]
        elif rest.Length = 0 then [| { Off = 0; P = 0; Q = 0; Len = 1; Broadcast = true } |]
        else
            let m = rest.Length
            let last = rest[m - 1]
            // Lines: every (h1, h1′, …, h_{m−1}, h′_{m−1}, h_m).
            let lines = r * r / last
            Array.init lines (fun line ->
                let mutable rem = line
                let hm = rem % last
                rem <- rem / last
                let h = Array.zeroCreate m
                let h' = Array.zeroCreate m
                h[m - 1] <- hm
                for a in m - 2 .. -1 .. 0 do
                    h'[a] <- rem % rest[a]
                    rem <- rem / rest[a]
                    h[a] <- rem % rest[a]
                    rem <- rem / rest[a]
                let mutable p, q = 0, 0
                for a in 0 .. m - 1 do
                    p <- p * rest[a] + h[a]
                    q <- q * rest[a] + h'[a] // h′_m = 0: the run adds it
                { Off = line * last; P = p; Q = q; Len = last; Broadcast = true })

    let private runsBy (lanes: int) (runs: ActRun[]) = runs |> Array.forall (fun r -> r.Len % lanes = 0 && r.Len <= 128)

    let private makeStep (full: bool) (axes: AxisStep[] option) (pre: Simd.DensePre) (relu: (float * float) option)
                         (inDims: int[]) (outDims: int[]) =
        let rest = outDims[1..]
        { Axes = axes; Pre = pre; Relu = relu; InDims = inDims; OutDims = outDims
          RestIn = restLen full inDims; RestOut = restLen full outDims
          Posts = Array.init inDims.Length (fun a -> inDims[a + 1 ..] |> Array.fold (fun acc d -> acc * (if full then d * d else d)) 1)
          RowPositions = prod rest
          ActRuns = actRuns full rest
          RunsBy4 = runsBy 4 (actRuns full rest)
          RunsBy8 = runsBy 8 (actRuns full rest)
          RowDiag = (if full then Spatial.diagonalIndices rest else Array.init (prod rest) id)
          Strides = null }

    /// What the layers' rules would set besides the arrays.
    type Meta =
        { Dims: int[]; Flipped: bool; IsReversed: bool; IsGaussian: bool; Shape1: int[]; Shape2: int[]
          BatchAxis: int; ChannelAxis: int }

    exception private NotCovered with
        override _.Message = "the executor does not cover these layers"

    /// The steps of a run of layers on kernel k, or None when the executor does not cover them; layer errors
    /// (a VALID filter larger than the input, …) are raised as the layers' rules raise them.
    let plan (layers: Layer list) (k: Kernel) : (Step[] * Meta) option =
        let full = not k.DiagonalSpatial
        let real = Spatial.sizes k.DiagonalSpatial 2 k.Nngp.Shape
        let n = real.Length
        // The diagonal layout gets a leading axis of size 1 (one band of one row: the whole image), so that every
        // real axis is filtered by flat passes and the activation runs over the whole image at once.
        let lead = if full then 0 else 1
        let dims0 = if full then real else Array.append [| 1 |] real
        let unitAxis = axisStep { D = 1; O = 1; F = 1; Taps = [| 0 |] }
        if n = 0 then None
        else
        try
            let steps = ResizeArray<Step>()
            let mutable m =
                { Dims = dims0; Flipped = false; IsReversed = k.IsReversed; IsGaussian = k.IsGaussian
                  Shape1 = k.Shape1; Shape2 = k.Shape2; BatchAxis = k.BatchAxis; ChannelAxis = k.ChannelAxis }
            let mutable pending : (AxisStep[] * Simd.DensePre * int[]) option = None
            let flush (relu: (float * float) option) =
                match pending with
                | Some(axes, pre, inDims) -> steps.Add(makeStep full (Some axes) pre relu inDims m.Dims)
                | None -> steps.Add(makeStep full None Simd.identity relu m.Dims m.Dims)
                pending <- None
            for layer in layers do
                match layer with
                | Conv c when c.Kind = ConvKind.Conv ->
                    if pending.IsSome then flush None
                    let l = Convolution.layout c
                    let outSpatial = String(l.Out.ToCharArray() |> Array.filter (fun ch -> ch <> 'N' && ch <> 'C'))
                    if outSpatial <> l.InputSpatial || l.FilterIn.Length <> n then raise NotCovered
                    // A reversed full-layout input stores its axes reversed: the rule reads filter and strides reversed.
                    let filt, strides =
                        if full && m.IsReversed then Array.rev l.FilterIn, Array.rev l.StridesIn else l.FilterIn, l.StridesIn
                    // Plans in the stored order, as the rule builds them (so the same axis is refused first).
                    let physical (a: int) = if m.Flipped then n - 1 - a else a
                    let stored = Array.init n (fun a -> Convolution.axisPlan c m.Dims[lead + physical a] filt[a] strides[a])
                    let axes = Array.init n (fun pa -> axisStep stored[physical pa])
                    let axes = if full then axes else Array.append [| unitAxis |] axes
                    let w2 = c.WStd * c.WStd
                    let b2 = match c.BStd with Some b -> b * b | None -> 0.0
                    let pre =
                        match c.Parameterization with
                        | Parameterization.Ntk -> { Simd.identity with W2 = w2; B2 = b2; FromOut = true }
                        | Parameterization.Standard ->
                            { Simd.identity with
                                W2 = w2; B2 = b2; FromOut = false
                                CN = Convolution.fanIn c m.Shape1 / float (fst c.S)
                                CB = (if c.BStd.IsSome then 1.0 else 0.0) }
                    pending <- Some(axes, pre, m.Dims)
                    m <- { m with
                            Dims = axes |> Array.map (fun a -> a.Plan.O)
                            Flipped = (if full && n > 1 then not m.Flipped else m.Flipped)
                            IsReversed = (if full then not m.IsReversed else m.IsReversed)
                            IsGaussian = true
                            Shape1 = Convolution.outShape c m.Shape1
                            Shape2 = Convolution.outShape c m.Shape2
                            BatchAxis = l.Out.IndexOf 'N'
                            ChannelAxis = l.Out.IndexOf 'C' }
                | Activation(ABRelu spec) ->
                    if not m.IsGaussian then raise NotCovered // the layer's own rule refuses it, with its message
                    let a, b = spec.A, spec.B
                    flush (Some((a - b) * (a - b) / (2.0 * Math.PI), (a * a + b * b) / 2.0))
                    m <- { m with IsGaussian = false }
                | _ -> raise NotCovered
            if pending.IsSome then flush None
            Some(steps.ToArray(), m)
        with NotCovered -> None

    /// The band steps that produce the output rows with the given partners (−1: no such row), built backwards
    /// through the steps; None if some input row would need two partners (then the executor does not apply).
    let bandOf (steps: Step[]) (finalPartner: int[]) : BandStep[] option =
        let res = Array.zeroCreate steps.Length
        let mutable outP = finalPartner
        let mutable ok = true
        for s in steps.Length - 1 .. -1 .. 0 do
            if ok then
                let st = steps[s]
                let starts = Array.zeroCreate (outP.Length + 1)
                let table = ResizeArray<int>()
                let inP =
                    match st.Axes with
                    | None ->
                        for o in 0 .. outP.Length - 1 do
                            if outP[o] >= 0 then table.Add o
                            starts[o + 1] <- table.Count
                        Array.copy outP
                    | Some axes ->
                        let p = axes[0].Plan
                        let inP = Array.create p.D -1
                        for o in 0 .. outP.Length - 1 do
                            let o' = outP[o]
                            if o' >= 0 then
                                for t in 0 .. p.F - 1 do
                                    let i, j = p.Taps[o * p.F + t], p.Taps[o' * p.F + t]
                                    if i >= 0 && j >= 0 then
                                        if inP[i] = -1 || inP[i] = j then
                                            inP[i] <- j
                                            table.Add i
                                        else ok <- false
                            starts[o + 1] <- table.Count
                        inP
                res[s] <- { OutPartner = outP; InPartner = inP; TableStart = starts; Table = table.ToArray() }
                outP <- inP
        if ok then Some res else None

    // ---------------------------------------------------------------------------------------------
    // Framed rows.

    /// Whether the executor takes framed rows where they apply (the default) or the natural ones; both give the
    /// same bits (tests and benchmarks switch it; the executor reads it once per run).
    let mutable useFrames = true

    /// The rows of a band, with a frame of zeros: a row's entries form a grid — the (w, w′) pairs of the one
    /// remaining axis in the full layout, the positions (h, w, …) in the diagonal one — and the framed row stores
    /// that grid with one zero entry added before and after every line of every grid axis. When every convolution
    /// axis inside a row keeps its size and reads the neighbours o + shift (shift ∈ {−1, 0, 1}) with zero padding
    /// (SAME, or a 1-tap filter), a neighbour outside the grid is a frame entry, so each axis is a flat shifted sum
    /// over the whole row with no border cases: the same additions, in the same order, as the rules' window sums
    /// (0 + a = a exactly). Frames stay zero: the activation writes only grid entries (its runs), and a row's
    /// frame entries after a pass are sums of frame entries, or are not read again. Returns the framed steps and,
    /// per natural row entry, its framed offset; None where framing does not apply.
    let framed (full: bool) (steps: Step[]) : (Step[] * int[]) option =
        let rest = steps[0].InDims[1..]
        let grid = if full then (if rest.Length = 1 then [| rest[0]; rest[0] |] else [||]) else rest
        // An axis's shifts: tap t reads o + shift_t wherever it reads anything, |shift_t| ≤ 1, and nothing where
        // o + shift_t falls outside the axis (a tap that never reads: ±1 on an axis of size 1).
        let shiftsOf (a: AxisStep) : int[] option =
            let p = a.Plan
            let sh =
                Array.init p.F (fun t ->
                    let ds = [ for o in 0 .. p.O - 1 do let i = p.Taps[o * p.F + t] in if i >= 0 then yield i - o ] |> List.distinct
                    match ds with
                    | [ d ] -> Some d
                    | [] when p.D = 1 -> Some 1
                    | _ -> None)
            if p.O <> p.D || sh |> Array.exists (fun d -> d.IsNone || abs d.Value > 1) then None
            else
                let sh = sh |> Array.map Option.get
                let zeroPadded =
                    Array.init (p.O * p.F) id |> Array.forall (fun e ->
                        let i = e / p.F + sh[e % p.F]
                        p.Taps[e] = (if i >= 0 && i < p.D then i else -1))
                if zeroPadded then Some sh else None
        let framedAxes (st: Step) =
            match st.Axes with
            | None -> Some None
            | Some axes ->
                let inner = axes[1..] |> Array.map (fun a -> shiftsOf a |> Option.map (fun sh -> { a with Shifts = Some sh }))
                if inner |> Array.exists Option.isNone then None
                else Some(Some(Array.append [| axes[0] |] (inner |> Array.map Option.get)))
        let axesOf = steps |> Array.map (fun st -> if st.InDims[1..] = rest && st.OutDims[1..] = rest then framedAxes st else None)
        if grid.Length = 0 || axesOf |> Array.exists Option.isNone then None
        else
        let padded = grid |> Array.map (fun g -> g + 2)
        let len = prod padded
        // Row-major strides of the framed grid; the natural row is the same grid without frames.
        let fStride = Array.init grid.Length (fun a -> prod padded[a + 1 ..])
        let at =
            Array.init (prod grid) (fun e ->
                let mutable rem, off = e, 0
                for a in grid.Length - 1 .. -1 .. 0 do
                    off <- off + (rem % grid[a] + 1) * fStride[a]
                    rem <- rem / grid[a]
                off)
        // Axis a ≥ 1 of a step: in the full layout the one remaining axis moves both w and w′ (a diagonal step of
        // the (w, w′) grid); in the diagonal layout axis a is grid axis a − 1 (after the unit leading axis).
        let strides = Array.init (rest.Length + 1) (fun a -> if a = 0 then 0 elif full then fStride[0] + 1 else fStride[a - 1])
        let last = grid[grid.Length - 1]
        let runs (st: Step) =
            if full then st.ActRuns |> Array.map (fun r -> { r with Off = at[r.Off] })
            else
                Array.init (prod grid / last) (fun line ->
                    let p = line * last
                    { Off = at[p]; P = p; Q = p; Len = last; Broadcast = false })
        let framedSteps =
            steps |> Array.mapi (fun i st ->
                let r = runs st
                { st with
                    Axes = axesOf[i].Value
                    RestIn = len; RestOut = len; ActRuns = r; RunsBy4 = runsBy 4 r; RunsBy8 = runsBy 8 r
                    RowDiag = st.RowDiag |> Array.map (fun e -> at[e]); Strides = strides })
        Some(framedSteps, at)
