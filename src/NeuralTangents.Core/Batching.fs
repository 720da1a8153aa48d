namespace NeuralTangents

open System
open System.Diagnostics
open System.Threading
open System.Threading.Tasks

/// <summary>Progress of a tiled kernel computation, reported after every tile.</summary>
type TileProgress =
    { /// Tiles finished, those found finished by a resumed run included.
      TilesDone: int
      /// Tiles in the whole computation.
      TilesTotal: int
      /// Time since this run started.
      Elapsed: TimeSpan
      /// Estimated time left, from this run's pace; None before its first tile.
      Remaining: TimeSpan option }

/// <summary>How a kernel is computed in tiles (neural_tangents' <c>nt.batch(kernel_fn, batch_size)</c>, with a
/// memory budget from which the tile size follows).</summary>
type BatchOptions =
    { /// Inputs per block of x1 and of x2 (neural_tangents' <c>batch_size</c>); None: the largest size whose tiles
      /// fit <c>MemoryBytes</c>. Unlike <c>nt.batch</c>, N need not be a multiple of it (the last block is smaller).
      BatchSize: int option
      /// The memory the computation may use, in bytes; None: <c>Memory.defaultBudget ()</c>.
      MemoryBytes: int64 option
      /// Tiles computed at the same time; None: one per core.
      Parallelism: int option
      /// Receives a report before the first tile (0 done) and after every tile, one report per count, in
      /// increasing order and never two at once (from a worker thread).
      Progress: IProgress<TileProgress> option
      /// Checked before every tile: once cancelled, no new tile starts, the running ones finish, and
      /// <c>OperationCanceledException</c> is raised.
      Cancellation: CancellationToken }

    /// Tile size from the free memory, one tile per core, no progress, no cancellation.
    static member Default =
        { BatchSize = None; MemoryBytes = None; Parallelism = None; Progress = None; Cancellation = CancellationToken.None }

/// <summary>One tile: the kernel between x1[Row .. Row + Rows − 1] and x2[Col .. Col + Cols − 1]. With x2 = x1 only
/// tiles with Row ≤ Col are computed; the others are their mirror images.</summary>
type Tile = { Index: int; Row: int; Rows: int; Col: int; Cols: int }

/// <summary>Where the tiles of a computation go: each call writes <c>data</c> at entry <c>offset</c> (in float64
/// entries, C order) of the output array <c>name</c> ("nngp", "ntk", "cov1", "cov2").</summary>
type ITileSink =
    abstract Write: name: string * offset: int64 * data: ArraySegment<float> -> unit

/// <summary>A tiled computation laid out before any tile runs: the compiled plan, the tile grid and the shapes of
/// the output arrays.</summary>
type TiledJob =
    internal
        { Layer: Layer
          Request: LayoutRequest
          Plan: KernelPlan
          X1: Tensor
          X2: Tensor option
          Get: Get
          /// neural_tangents' <c>mask_constant</c> of the call, applied to each tile's own rows; None: no masking.
          MaskConstant: float option
          InputBatchAxis: int
          N1: int
          N2: int
          /// The kernel of one pair of inputs: its flags and the shapes of its arrays after the batch axes.
          Probe: Kernel
          TileSize: int
          Tiles: Tile[]
          Parallelism: int
          /// Name and full shape of every output array, in response order.
          Outputs: (string * int[]) list
          /// The conservative peak of one tile, in bytes (see <c>Batching.tileBytes</c>).
          TileBytes: int64 }

    /// <summary>Number of tiles.</summary>
    member j.TileCount = j.Tiles.Length
    /// <summary>Inputs per block.</summary>
    member j.BatchSize = j.TileSize
    /// <summary>The output arrays (name and shape).</summary>
    member j.OutputShapes = j.Outputs

/// <summary>Kernels computed tile by tile over blocks of inputs (neural_tangents' <c>batching.py</c>), in parallel,
/// within a memory budget, with progress and cancellation.</summary>
[<RequireQualifiedAccess>]
module Batching =

    let private fail (msg: string) = raise (NeuralTangentsException msg)

    /// Rows [start, start + count) of t along its batch axis, copied.
    let internal sliceBatch (axis: int) (start: int) (count: int) (t: Tensor) : Tensor =
        let axis = if axis < 0 then axis + t.Rank else axis
        let n = t.Shape[axis]
        if start = 0 && count = n then t
        else
            let outer = Array.fold (*) 1 t.Shape[.. axis - 1]
            let inner = Array.fold (*) 1 t.Shape[axis + 1 ..]
            let data = Pages.zeroed (outer * count * inner)
            for o in 0 .. outer - 1 do
                Array.blit t.Data ((o * n + start) * inner) data (o * count * inner) (count * inner)
            let shape = Array.copy t.Shape
            shape[axis] <- count
            Tensor.create shape data

    /// What the probe of a network (its kernel on one pair of inputs) tells about a tile's memory.
    type internal Cost =
        { /// Largest number of entries per pair of inputs in any NNGP/NTK array along the network.
          PairEntries: int64
          /// Largest number of entries per input in any Cov1/Cov2 array along the network.
          CovEntries: int64
          /// NNGP and NTK (2) or the NNGP alone (1).
          Quantities: int64
          /// Largest number of kernels alive at once (branches after FanOut), plus the input and output of the
          /// running rule and one temporary of the rule's size.
          LiveKernels: int64
          /// float64 entries of one input of x1 and of x2.
          InputEntries: int64 }

    /// <summary>The conservative peak memory of one tile of b1 × b2 inputs, in bytes:
    /// <c>8 · (L · (Q · E · b1 · b2 + C · (b1 + b2)) + D · (b1 + b2))</c> with L the live kernels (branches + 2),
    /// Q the quantities (NNGP, NTK), E the largest entries per pair and C per input of any kernel along the network
    /// (the probe's maxima, so a ConvTranspose that grows the spatial axes is counted at its largest), and D the
    /// entries of one input (the tile's slices of x1 and x2). The fast execution overwrites arrays in place and so
    /// holds fewer; the bound is meant to be safe, not tight.</summary>
    let internal tileBytes (c: Cost) (b1: int64) (b2: int64) : int64 =
        let perKernel = c.Quantities * c.PairEntries * b1 * b2 + c.CovEntries * (b1 + b2)
        8L * (c.LiveKernels * perKernel + c.InputEntries * (b1 + b2))

    /// Runs a network layer by layer on the kernel of one pair of inputs, recording the largest arrays and the
    /// most branches alive at once. As soon as one pair's tile (see <c>tileBytes</c>) exceeds <paramref name="budget"/>
    /// bytes it stops and refuses, naming the layer, instead of running the rest of the network on arrays that large.
    let private probe (budget: int64) (n1: int) (n2: int) (request: LayoutRequest) (layer: Layer) (x1: Tensor) (x2: Tensor option) (get: Get) (axis: int) =
        let one (t: Tensor) = sliceBatch axis 0 1 t
        let mutable pair, cov, branches = 0L, 0L, 1
        let inputEntries = int64 (x1.Length / max 1 (x1.Shape[if axis < 0 then axis + x1.Rank else axis]))
        let rec record (what: string) (flow: KernelFlow) =
            let ks = match flow with One k -> [ k ] | Many ks -> ks
            branches <- max branches ks.Length
            for k in ks do
                pair <- max pair (int64 k.Nngp.Length)
                k.Ntk |> Option.iter (fun t -> pair <- max pair (int64 t.Length))
                let perInput (t: Tensor) = int64 t.Length / (if k.DiagonalBatch then 1L else int64 t.Shape[0])
                cov <- max cov (perInput k.Cov1)
                k.Cov2 |> Option.iter (fun t -> cov <- max cov (perInput t))
            check what pair
        and check (what: string) (pairEntries: int64) =
            let c = { PairEntries = pairEntries; CovEntries = cov; Quantities = (if get.WantsNtk then 2L else 1L)
                      LiveKernels = int64 branches + 2L; InputEntries = inputEntries }
            let onePair = tileBytes c 1L 1L
            if onePair > budget then
                fail ("the kernel of N1 = " + string n1 + " by N2 = " + string n2 + " inputs cannot be computed within " + (Memory.format budget) + ": " + what + " one pair of inputs holds " + string pairEntries + " entries per array, and a tile of 1 × 1 inputs needs about " + (Memory.format onePair) + "; give a larger \"memory_gb\", or a smaller network (its spatial sizes)")
        // Serial chains and parallel branches are walked into so that every intermediate kernel is seen; other
        // nodes (leaves, FanOut, fan-ins) are applied whole. A run of two or more Conv/ABRelu leaves goes through at
        // once, as the computation runs it (the fused executor; one pair of 32×32 images through 21 Conv + Relu
        // layers: ~70 ms instead of ~3.5 s leaf by leaf): it stores none of its intermediates, and none is larger
        // than the run's input (a Conv's output has at most its input's positions), so the maxima are the same.
        let stackLeaf (l: Layer) =
            match l with
            | Conv c -> c.Kind = ConvKind.Conv
            | Activation(ABRelu _) -> true
            | _ -> false
        let rec walk (layer: Layer) (flow: KernelFlow) : KernelFlow =
            let rec chain (ls: Layer list) (f: KernelFlow) =
                match ls with
                | [] -> f
                | l :: rest ->
                    let run = List.takeWhile stackLeaf ls
                    if run.Length >= 2 then
                        let f' = KernelFn.applyFlow (Serial run) f
                        record $"after the {string run.Length} Conv/ABRelu layers from its {Definitions.name run.Head}" f'
                        chain (List.skip run.Length ls) f'
                    else chain rest (walk l f)
            // A convolution's output size follows from shapes: refuse before allocating it (a transpose with a large
            // stride grows every axis).
            match layer, flow with
            | Conv c, One k -> check ("after " + Definitions.name layer) (max pair (Layers.Convolution.outputEntriesPerPair c k))
            | _ -> ()
            let applied =
                match Definitions.node layer, flow with
                | SerialNode ls, _ -> chain ls flow
                | ParallelNode ls, Many ks when ks.Length = ls.Length ->
                    let outs = List.map2 (fun l k -> walk l (One k)) ls ks
                    if outs |> List.forall (function One _ -> true | Many _ -> false) then
                        Many(outs |> List.map (function One k -> k | Many _ -> invalidOp "unreachable"))
                    else KernelFn.applyFlow layer flow
                | _ -> KernelFn.applyFlow layer flow
            record ("after " + Definitions.name layer) applied
            applied
        let input = KernelFn.inputKernelWithLayout request layer (one x1) (x2 |> Option.map one) get
        record "for the inputs alone" (One input)
        let out =
            match walk layer (One input) with
            | One k when Tensor.isFinite k.Nngp -> k
            | _ -> KernelFn.applyKernel layer input // raises the error that says why
        out, pair, cov, branches

    /// The tiles of an N1 × N2 kernel in blocks of b, row by row; with <c>symmetric</c> (x2 = x1) only Row ≤ Col.
    let internal grid (n1: int) (n2: int) (b: int) (symmetric: bool) : Tile[] =
        let blocks n = [| for s in 0 .. b .. n - 1 -> s, min b (n - s) |]
        [| for (r, rows) in blocks n1 do
             for (c, cols) in blocks n2 do
                 if not symmetric || r <= c then yield (r, rows, c, cols) |]
        |> Array.mapi (fun i (r, rows, c, cols) -> { Index = i; Row = r; Rows = rows; Col = c; Cols = cols })

    /// <summary>Lays out a tiled computation: compiles the network once, runs it on one pair of inputs (which also
    /// checks that the network takes them) to learn the output shapes and the memory of a tile, and picks the tile
    /// size — <paramref name="options"/>' <c>BatchSize</c>, or the largest whose tiles (one per core at a time) fit
    /// the budget beside <paramref name="resident"/> bytes the caller holds (the assembled output, when in memory).
    /// Refuses, with the numbers, a request whose smallest tile cannot fit.</summary>
    let internal plan (options: BatchOptions) (resident: Kernel -> int -> int -> int64) (request: LayoutRequest) (layer: Layer) (x1: Tensor) (x2: Tensor option) (get: Get) : TiledJob =
        if isNull (box x1) then nullArg "x1"
        let axis = fst (Requirements.inputAxes x1.Rank (Requirements.ofLayer layer))
        let nOf (t: Tensor) =
            let a = if axis < 0 then axis + t.Rank else axis
            if a < 0 || a >= t.Rank then
                invalidArg "batch_axis"
                    ("batch_axis=" + string axis + " is out of range for inputs of rank " + string t.Rank + " (shape " + (Shape.format t.Shape) + "); use an axis in " + (string (-t.Rank)) + ".." + (string (t.Rank - 1)))
            t.Shape[a]
        let n1 = nOf x1
        let n2 = match x2 with Some t -> nOf t | None -> n1
        // Checked here on the whole arrays: the probe sees one input of each, and would report batch sizes of 1.
        x2 |> Option.iter (fun t ->
            let a = if axis < 0 then axis + x1.Rank else axis
            if t.Rank <> x1.Rank || Array.removeAt a t.Shape <> Array.removeAt a x1.Shape then
                invalidArg "x2" $"x1 and x2 must agree in all but the batch axis, got shapes {Shape.format x1.Shape} and {Shape.format t.Shape}")
        options.BatchSize |> Option.iter (fun b ->
            if b < 1 then invalidArg "batch_size" $"must be a positive number of inputs per block, got {string b}")
        options.MemoryBytes |> Option.iter (fun m ->
            if m <= 0L then invalidArg "memory_gb" $"must be positive, got {string m} bytes")
        options.Parallelism |> Option.iter (fun p ->
            if p < 1 then invalidArg "parallelism" $"must be at least 1, got {string p}")
        let budget = match options.MemoryBytes with Some m -> m | None -> Memory.defaultBudget ()
        let probeK, pair, cov, branches = probe budget n1 n2 request layer x1 x2 get axis
        let cost =
            { PairEntries = pair
              CovEntries = cov
              Quantities = (if get.WantsNtk then 2L else 1L)
              LiveKernels = int64 branches + 2L
              InputEntries = int64 (x1.Length / max 1 n1) }
        let cores = defaultArg options.Parallelism Environment.ProcessorCount
        let nMax = max n1 n2
        let held = resident probeK n1 n2
        let fits (b: int) =
            let tiles = if b >= nMax then 1 else cores
            int64 tiles * tileBytes cost (int64 (min b n1)) (int64 (min b n2)) + held <= budget
        let refuse (b: int) what =
            let one = tileBytes cost (int64 (min b n1)) (int64 (min b n2))
            fail ("the kernel of N1 = " + string n1 + " by N2 = " + string n2 + " inputs (" + string pair + " entries per pair) cannot be computed within " + (Memory.format budget) + ": " + what + ", a tile of " + (string (min b n1)) + " × " + (string (min b n2)) + " inputs needs about " + (Memory.format one) + (if held > 0L then $" beside {Memory.format held} for the assembled answer" else "") + "; give a larger \"memory_gb\"" + (if held > 0L then ", or \"out\" to write the answer to files tile by tile" else ", or a smaller \"batch_size\""))
        let b =
            match options.BatchSize with
            | Some b ->
                let b = min b nMax
                if not (fits b) then refuse b $"with {string (if b >= nMax then 1 else cores)} tiles at a time"
                b
            | None when fits nMax -> nMax
            | None ->
                // The largest b whose tiles fit (tileBytes grows with b): binary search on [1, nMax − 1].
                let mutable lo, hi = 0, nMax - 1
                while lo < hi do
                    let mid = lo + (hi - lo + 1) / 2
                    if fits mid then lo <- mid else hi <- mid - 1
                if lo = 0 then refuse 1 $"even with the smallest tiles, {string cores} at a time"
                lo
        let symmetric = x2.IsNone
        let tiles = grid n1 n2 b symmetric
        if tiles.Length > 1 && not probeK.DiagonalBatch then
            fail ("a kernel with diagonal_batch=False (full Cov1/Cov2) is computed in one piece, as neural_tangents' nt.batch requires; this one needs " + string tiles.Length + " tiles of " + string b + " inputs: give a \"batch_size\" of at least " + string nMax + " and enough \"memory_gb\", or leave diagonal_batch at its default")
        let tail (t: Tensor) (batchNdim: int) = t.Shape[batchNdim..]
        let covShape (n: int) (c: Tensor) =
            if probeK.DiagonalBatch then Array.append [| n |] (tail c 1) else Array.append [| n; n |] (tail c 2)
        let outputs =
            [ yield "nngp", Array.append [| n1; n2 |] (tail probeK.Nngp 2)
              if get.WantsNtk then yield "ntk", Array.append [| n1; n2 |] (tail probeK.Nngp 2)
              yield "cov1", covShape n1 probeK.Cov1
              match x2, probeK.Cov2 with
              | Some _, Some c2 -> yield "cov2", covShape n2 c2
              | _ -> () ]
        { Layer = layer
          Request = request
          Plan = KernelFn.compilePlan Execution.Fast layer
          X1 = x1
          X2 = x2
          Get = get
          MaskConstant = None
          InputBatchAxis = axis
          N1 = n1
          N2 = n2
          Probe = probeK
          TileSize = b
          Tiles = tiles
          Parallelism = (if tiles.Length = 1 then 1 else cores)
          Outputs = outputs
          TileBytes = tileBytes cost (int64 (min b n1)) (int64 (min b n2)) }

    /// The kernel of one tile (x2 None on a diagonal tile of a symmetric job).
    let internal runTile (job: TiledJob) (t: Tile) : Kernel =
        let x1t = sliceBatch job.InputBatchAxis t.Row t.Rows job.X1
        let x2t =
            match job.X2 with
            | None when t.Row = t.Col && t.Rows = t.Cols -> None
            | None -> Some(sliceBatch job.InputBatchAxis t.Col t.Cols job.X1)
            | Some x2 -> Some(sliceBatch job.InputBatchAxis t.Col t.Cols x2)
        match job.MaskConstant with
        | None -> KernelFn.runPlanAt Execution.Fast job.Plan job.Request job.Layer t.Row t.Col job.X2.IsSome x1t x2t job.Get
        | Some c ->
            // The masks are element-wise on the inputs, so each tile masks its own rows; the assembled answer does
            // not carry the output masks (KernelFn.computeWithMask does).
            let k = KernelFn.runPlanMasked Execution.Fast job.Plan c job.Request job.Layer x1t x2t job.Get
            { k with Mask1 = None; Mask2 = None }

    /// Writes a tile's kernel into the sink: its rows of NNGP/NTK (and, for a symmetric job, its mirror image),
    /// and the variances of its inputs from the tiles that first meet them.
    let internal place (job: TiledJob) (sink: ITileSink) (t: Tile) (k: Kernel) =
        let wants name = job.Outputs |> List.exists (fun (n, _) -> n = name)
        let write name (off: int64) (data: float[]) (start: int) (count: int) =
            sink.Write(name, off, ArraySegment(data, start, count))
        if job.Tiles.Length = 1 then
            let whole name (a: Tensor option) = a |> Option.iter (fun a -> if wants name then write name 0L a.Data 0 a.Length)
            whole "nngp" (Some k.Nngp)
            whole "ntk" k.Ntk
            whole "cov1" (Some k.Cov1)
            whole "cov2" k.Cov2
        else
            let n2 = int64 job.N2
            let rowsInto name (a: Tensor) (row: int) (col: int) =
                let rows, cols = a.Shape[0], a.Shape[1]
                let e = a.Length / max 1 (rows * cols)
                for i in 0 .. rows - 1 do
                    write name ((int64 (row + i) * n2 + int64 col) * int64 e) a.Data (i * cols * e) (cols * e)
            let pairs (k: Kernel) (row: int) (col: int) =
                if wants "nngp" then rowsInto "nngp" k.Nngp row col
                k.Ntk |> Option.iter (fun a -> if wants "ntk" then rowsInto "ntk" a row col)
            pairs k t.Row t.Col
            let covRows name (a: Tensor) (row: int) =
                let per = a.Length / a.Shape[0]
                write name (int64 row * int64 per) a.Data 0 a.Length
            match job.X2 with
            | None ->
                if t.Row = t.Col then covRows "cov1" k.Cov1 t.Row
                else pairs (Kernel.swapInputs k) t.Col t.Row
            | Some _ ->
                if t.Col = 0 then covRows "cov1" k.Cov1 t.Row
                if t.Row = 0 then k.Cov2 |> Option.iter (fun c -> covRows "cov2" c t.Col)

    /// Tiles whose estimated peak is at least this many bytes are collected as soon as they are stored.
    let private largeTile = 64L <<< 20

    /// <summary>Runs the tiles of a job not yet <paramref name="isDone"/>, <c>Parallelism</c> at a time, handing
    /// each tile's kernel to <paramref name="handle"/> (which stores it) before the tile counts as done in the
    /// progress report. Raises <c>OperationCanceledException</c> when cancelled, after the running tiles end.</summary>
    let internal runTiles (job: TiledJob) (options: BatchOptions) (isDone: Tile -> bool) (handle: Tile -> Kernel -> unit) =
        let todo = job.Tiles |> Array.filter (isDone >> not)
        let already = job.Tiles.Length - todo.Length
        let sw = Stopwatch.StartNew()
        let mutable doneNow = 0
        // Reports go out one at a time and in order, each count once (0 first, before any tile), whichever worker
        // finishes a tile: a worker reports every count up to the tiles done when it gets the lock.
        let gate = obj ()
        let mutable reported = -1
        let report () =
            options.Progress |> Option.iter (fun p ->
                lock gate (fun () ->
                    let upTo = Volatile.Read &doneNow
                    for d in reported + 1 .. upTo do
                        let elapsed = sw.Elapsed
                        let remaining =
                            if d = 0 then None
                            else Some(TimeSpan.FromTicks(int64 (float elapsed.Ticks / float d * float (todo.Length - d))))
                        p.Report { TilesDone = already + d; TilesTotal = job.Tiles.Length; Elapsed = elapsed; Remaining = remaining }
                    reported <- max reported upTo))
        options.Cancellation.ThrowIfCancellationRequested()
        report ()
        let po = ParallelOptions(MaxDegreeOfParallelism = job.Parallelism, CancellationToken = options.Cancellation)
        try
            // One tile at a time from the queue, in order (no range split up front): a worker that finishes early
            // takes the next tile, and an interrupted run leaves a prefix of the tiles done.
            let queue = Collections.Concurrent.Partitioner.Create(todo :> seq<Tile>, Collections.Concurrent.EnumerablePartitionerOptions.NoBuffering)
            Parallel.ForEach(queue, po, fun (t: Tile) ->
                if not options.Cancellation.IsCancellationRequested then
                    handle t (runTile job t)
                    // A tile's arrays are garbage once stored; large ones live on the large-object heap, which the
                    // GC collects only when its own budget runs out, so tiles of garbage could pile up past the
                    // memory budget. Collect them now (a blocking full GC finds little else to trace).
                    if job.TileBytes >= largeTile then GC.Collect(2, GCCollectionMode.Forced, true, false)
                    Interlocked.Increment &doneNow |> ignore
                    report ())
            |> ignore
        with :? AggregateException as e when e.InnerExceptions.Count >= 1 ->
            Runtime.ExceptionServices.ExceptionDispatchInfo.Capture(e.InnerExceptions[0]).Throw()
        options.Cancellation.ThrowIfCancellationRequested()

    /// An in-memory sink: one array per output.
    type private ArraySink(arrays: Map<string, float[]>) =
        interface ITileSink with
            member _.Write(name, offset, data) = Array.Copy(data.Array, data.Offset, arrays[name], offset, data.Count)

    /// Bytes of the assembled answer in memory.
    let private answerBytes (get: Get) (hasX2: bool) (probeK: Kernel) (n1: int) (n2: int) =
        let q = if get.WantsNtk then 2L else 1L
        let pair = int64 probeK.Nngp.Length
        let per (c: Tensor) = int64 c.Length
        let covs =
            if probeK.DiagonalBatch then per probeK.Cov1 * (int64 n1 + (if hasX2 then int64 n2 else 0L))
            else per probeK.Cov1 * (int64 n1 * int64 n1 + (if hasX2 then int64 n2 * int64 n2 else 0L))
        8L * (q * pair * int64 n1 * int64 n2 + covs)

    /// <summary>Lays out a tiled computation (see <c>computeWithLayout</c>) without running it: the tile size, the
    /// number of tiles and the output shapes it would use.</summary>
    [<CompiledName("Plan")>]
    let planJob (options: BatchOptions) (request: LayoutRequest) (layer: Layer) (x1: Tensor) (x2: Tensor option) (get: Get) : TiledJob =
        Timings.time "tiling plan (probe, tile size)" (fun () -> plan options (answerBytes get x2.IsSome) request layer x1 x2 get)

    /// A planned job run into arrays held in memory (refused when one answer array exceeds a .NET array).
    let private inMemory (options: BatchOptions) (job: TiledJob) : Kernel =
        for name, shape in job.Outputs do
            match Memory.product (shape |> Seq.map int64) with
            | Some e when e <= int64 Array.MaxLength -> ()
            | _ ->
                fail ("the " + name + " array of shape " + (Shape.format shape) + " has more entries than one .NET array can hold (" + string Array.MaxLength + "); write it to files tile by tile (\"out\")")
        if job.Tiles.Length = 1 then
            // One tile is the untiled computation (progress and cancellation still apply).
            let mutable result = None
            Timings.time "the single tile" (fun () -> runTiles job options (fun _ -> false) (fun _ k -> result <- Some k))
            result.Value
        else
            let arrays = job.Outputs |> List.map (fun (n, s) -> n, Pages.zeroed (s |> Array.fold (*) 1)) |> Map.ofList
            let sink = ArraySink arrays
            runTiles job options (fun _ -> false) (place job sink)
            let tensor name = job.Outputs |> List.tryFind (fun (n, _) -> n = name) |> Option.map (fun (n, s) -> Tensor.create s arrays[n])
            let p = job.Probe
            let withBatch (shape: int[]) (n: int) =
                let s = Array.copy shape
                s[p.BatchAxis] <- n
                s
            { p with
                Nngp = (tensor "nngp").Value
                Ntk = tensor "ntk"
                Cov1 = (tensor "cov1").Value
                Cov2 = tensor "cov2"
                Shape1 = withBatch p.Shape1 job.N1
                Shape2 = withBatch p.Shape2 job.N2 }

    /// <summary>The kernel of <c>KernelFn.computeWithLayout</c>, computed in tiles of blocks of inputs
    /// (neural_tangents' <c>nt.batch(kernel_fn, batch_size)(x1, x2)</c>): each tile is one run of the network's
    /// plan (compiled once), tiles run one per core, and each is copied into the answer as it finishes. With x2 =
    /// None only the tiles on and above the diagonal are computed; the others are their transposes (NNGP and NTK
    /// swapped with <c>Kernel.swapInputs</c>, so spatial pairs (H, H′) become (H′, H)). The answer equals the untiled
    /// one to round-off (the tiles' products are blocked differently); when one tile holds everything it is the
    /// untiled computation itself.</summary>
    /// <param name="options">Tile size or memory budget, parallelism, progress and cancellation.</param>
    /// <param name="request">The covariance layout (<c>LayoutRequest.Auto</c>: neural_tangents' choice).</param>
    /// <param name="layer">The network.</param>
    /// <param name="x1">First inputs.</param>
    /// <param name="x2">Second inputs, or None for x2 = x1.</param>
    /// <param name="get">Nngp, Ntk or Both.</param>
    /// <returns>The kernel, as <c>KernelFn.computeWithLayout</c> returns it.</returns>
    /// <exception cref="T:NeuralTangents.NeuralTangentsException">the network cannot take the inputs, or the
    /// answer or the smallest tile does not fit the memory budget (the message gives the numbers).</exception>
    /// <exception cref="T:System.OperationCanceledException">the cancellation token was cancelled.</exception>
    [<CompiledName("ComputeWithLayout")>]
    let computeWithLayout (options: BatchOptions) (request: LayoutRequest) (layer: Layer) (x1: Tensor) (x2: Tensor option) (get: Get) : Kernel =
        // The whole inputs first: a tile's own check would name its block (x2 for a tile's second block) and an
        // index within it.
        KernelFn.checkFinite "x1" x1
        x2 |> Option.iter (KernelFn.checkFinite "x2")
        inMemory options (planJob options request layer x1 x2 get)

    /// <summary>The kernel of <c>KernelFn.compute</c> computed in tiles (see <c>computeWithLayout</c>).</summary>
    [<CompiledName("Compute")>]
    let compute (options: BatchOptions) (layer: Layer) (x1: Tensor) (x2: Tensor option) (get: Get) : Kernel =
        computeWithLayout options LayoutRequest.Auto layer x1 x2 get

    /// <summary><c>computeWithLayout</c> on inputs with masked entries (neural_tangents'
    /// <c>nt.batch(kernel_fn)(x1, x2, mask_constant=c)</c>): every tile masks the entries of its own rows equal to
    /// <paramref name="maskConstant"/>, as <c>KernelFn.computeWithMask</c> does for the whole batch, so the answer equals
    /// the untiled one to round-off. The answer does not carry the output masks (Mask1/Mask2 are None).</summary>
    /// <exception cref="T:NeuralTangents.NeuralTangentsException">a layer cannot take masked inputs, or as
    /// <c>computeWithLayout</c>.</exception>
    [<CompiledName("ComputeWithMask")>]
    let computeWithMask (options: BatchOptions) (maskConstant: float) (request: LayoutRequest) (layer: Layer) (x1: Tensor) (x2: Tensor option) (get: Get) : Kernel =
        let job = { planJob options request layer x1 x2 get with MaskConstant = Some maskConstant }
        { inMemory options job with Mask1 = None; Mask2 = None }
