namespace NeuralTangents

open System
open System.IO

/// <summary>Sizes of the arrays a computation will allocate, checked in int64 against what one .NET array can
/// hold and against the memory this machine has free, before anything is allocated.</summary>
[<RequireQualifiedAccess>]
module Memory =

    /// <summary>Bytes of memory available to this process now: Linux's MemAvailable (free plus reclaimable page
    /// cache) capped by the GC's limit (a container limit when one is set); the GC's limit elsewhere.</summary>
    [<CompiledName("AvailableBytes")>]
    let availableBytes () : int64 =
        let gcLimit = GC.GetGCMemoryInfo().TotalAvailableMemoryBytes - GC.GetTotalMemory false
        let memAvailable =
            try
                if File.Exists "/proc/meminfo" then
                    File.ReadLines "/proc/meminfo"
                    |> Seq.tryFind (fun l -> l.StartsWith "MemAvailable:")
                    |> Option.map (fun l -> int64 (l.Split(' ', StringSplitOptions.RemoveEmptyEntries)[1]) * 1024L)
                else None
            with _ -> None
        match memAvailable with
        | Some m -> min m gcLimit
        | None -> gcLimit

    /// Human-readable bytes: 16.0 TB, 1.5 GB, 320 MB.
    let internal format (bytes: int64) =
        let b = float bytes
        if b >= 1e12 then $"{Show.decimals 1 (b / 1e12)} TB"
        elif b >= 1e9 then $"{Show.decimals 1 (b / 1e9)} GB"
        elif b >= 1e6 then $"{Show.decimals 0 (b / 1e6)} MB"
        elif b >= 1e3 then $"{Show.decimals 0 (b / 1e3)} kB"
        else $"{Show.decimals 0 b} bytes"

    /// Product of non-negative sizes, or None when it exceeds int64.
    let internal product (sizes: int64 seq) : int64 option =
        sizes |> Seq.fold (fun acc d ->
            match acc with
            | Some a when d = 0L || a <= Int64.MaxValue / d -> Some(a * d)
            | Some _ -> None
            | None -> None) (Some 1L)

    /// <summary>Refuses a kernel of <paramref name="n1"/> × <paramref name="n2"/> inputs with
    /// <paramref name="positions"/> entries per pair (spatial positions) before it is allocated: each of its
    /// arrays must fit one .NET array, and <paramref name="arrays"/> arrays of that size must fit in the free
    /// memory. The message names the sizes, the bytes needed and the fix.</summary>
    let internal checkKernel (n1: int64) (n2: int64) (positions: int64) (arrays: int) =
        let blocks = "compute the kernel in blocks of rows of x1 and x2 and assemble them"
        match product [ n1; n2; positions ] with
        | None ->
            raise (NeuralTangentsException(
                ("the kernel of N1 = " + string n1 + " by N2 = " + string n2 + " inputs with " + string positions + " positions each is too large to index; " + blocks)))
        | Some entries ->
            if positions > int64 Array.MaxLength then
                raise (NeuralTangentsException(
                    ("one pair of inputs alone has " + string positions + " kernel entries (" + string positions + " positions), more than one array can hold (" + string Array.MaxLength + "); use inputs with fewer spatial positions")))
            if entries > int64 Array.MaxLength then
                raise (NeuralTangentsException(
                    ("the kernel of N1 = " + string n1 + " by N2 = " + string n2 + " inputs" + (if positions > 1L then $" ({string positions} positions each)" else "") + " has " + string entries + " entries, more than one array can hold (" + string Array.MaxLength + "); " + blocks)))
            let bytes = entries * 8L * int64 arrays
            let free = availableBytes ()
            if bytes > free then
                raise (NeuralTangentsException(
                    ("the kernel of N1 = " + string n1 + " by N2 = " + string n2 + " inputs" + (if positions > 1L then $" ({string positions} positions each)" else "") + " needs about " + (format bytes) + " (" + string arrays + " arrays of " + string entries + " float64 entries) but " + (format free) + " are free; " + blocks)))

    /// <summary>Refuses one float64 array of <paramref name="shape"/> before it is allocated, counted in int64, when
    /// it exceeds one .NET array or the free memory. The message is <paramref name="subject"/> (what the array is),
    /// the numbers, then <paramref name="fix"/>.</summary>
    let internal checkArray (subject: string) (fix: string) (shape: int[]) =
        match product (shape |> Seq.map int64) with
        | Some e when e <= int64 Array.MaxLength ->
            let free = availableBytes ()
            if e * 8L > free then
                raise (NeuralTangentsException((subject + " needs " + (format (e * 8L)) + " but " + (format free) + " are free; " + fix)))
        | Some e ->
            raise (NeuralTangentsException(
                (subject + " is more than one array can hold (" + string e + " entries; at most " + string Array.MaxLength + "); " + fix)))
        | None -> raise (NeuralTangentsException $"{subject} is too large to index; {fix}")

    /// <summary>Refuses a parameter array (a finite network's weights) before it is drawn (<c>checkArray</c>):
    /// Dense(2·10⁹) on 3 input channels has 6·10⁹ weights (1.7·10⁹ after int32 wrap-around: 13 GB drawn over
    /// minutes before a later failure).</summary>
    let internal checkParameter (layer: string) (what: string) (shape: int[]) =
        checkArray ((layer + ": its " + what + " of " + (String.Join(" × ", shape)) + " entries")) "use a smaller width" shape

    /// <summary>A count-only pass over a finite network's <c>init_fn</c> (<c>InitFn.footprint</c>): while one is
    /// open on a thread, <c>parameter</c> counts the arrays it would draw instead of drawing them, and the init
    /// interpreter adds each layer's activations.</summary>
    [<AllowNullLiteral>]
    type internal Sizing() =
        /// Parameter values counted so far.
        member val Parameters = 0L with get, set
        /// Σ over leaves of their output's size (what a recorded forward pass keeps).
        member val Activations = 0L with get, set
        /// The largest input + output of one leaf (what a forward pass holds at once).
        member val LargestStep = 0L with get, set
        /// Σ over leaves with parameters of their output's size (the cotangents a factored gradient keeps).
        member val GradientOutputs = 0L with get, set

    let private sizing = new Threading.ThreadLocal<Sizing>(fun () -> null)

    /// The count-only pass open on this thread, or null.
    let internal currentSizing () : Sizing = sizing.Value

    /// Runs <paramref name="f"/> with a count-only pass open on this thread and returns its counts.
    let internal counting (f: unit -> 'a) : 'a * Sizing =
        let outer = sizing.Value
        let s = Sizing()
        sizing.Value <- s
        try
            let r = f ()
            r, s
        finally
            sizing.Value <- outer

    /// a + b, saturating at Int64.MaxValue (sizes far beyond any memory stay comparable).
    let internal addSat (a: int64) (b: int64) = if a > Int64.MaxValue - b then Int64.MaxValue else a + b

    /// a · b for non-negative sizes, saturating at Int64.MaxValue.
    let internal mulSat (a: int64) (b: int64) = defaultArg (product [ a; b ]) Int64.MaxValue

    /// Requirements below this many bytes are not weighed against the free memory: reading it costs a file read
    /// per call (apply_fn runs often), and so little would already fail in any .NET allocation first.
    let private smallBytes = 64_000_000L

    /// <summary>A parameter array of a finite layer (its weights or bias): refused before it is drawn when it alone
    /// does not fit (<c>checkParameter</c>), then <paramref name="draw"/> n gives its n values. Inside a count-only
    /// pass (<c>counting</c>) it is counted (and, when large, checked alone) but not drawn: the tensor returned has the shape and no data, and
    /// serves only to carry the shape through the rest of the layer's init.</summary>
    let internal parameter (layer: string) (what: string) (shape: int[]) (draw: int -> float[]) : Tensor =
        match sizing.Value with
        | null ->
            checkParameter layer what shape
            Tensor.create shape (draw (Array.fold (*) 1 shape))
        | s ->
            let n = defaultArg (product (shape |> Seq.map int64)) Int64.MaxValue
            // one array too large on its own is named as such, as the drawing pass names it
            if mulSat n 8L >= smallBytes then checkParameter layer what shape
            s.Parameters <- addSat s.Parameters n
            { Shape = Array.copy shape; Data = [||] }

    /// <summary>Refuses a computation whose whole requirement does not fit, before anything is allocated: the parts
    /// (name, float64 values) are summed in int64 and weighed against <paramref name="budget"/> bytes, or, when
    /// None, against the free memory (<c>availableBytes</c>; requirements under 64 MB pass unweighed). The message
    /// is <paramref name="subject"/>, the estimate with its parts, the budget, then <paramref name="fix"/>.</summary>
    let internal checkTotal (budget: int64 option) (subject: string) (parts: (string * int64) list) (fix: string) =
        let values = parts |> List.fold (fun acc (_, v) -> addSat acc v) 0L
        let bytes = mulSat values 8L
        let limit =
            match budget with
            | Some b -> Some b
            | None when bytes < smallBytes -> None
            | None -> Some(availableBytes ())
        match limit with
        | Some b when bytes > b ->
            let shown = parts |> List.filter (fun (_, v) -> v > 0L) |> List.map (fun (n, v) -> $"{n} {format (mulSat v 8L)}")
            raise (NeuralTangentsException(
                (subject + " needs about " + (format bytes) + " in all (" + (String.Join(", ", shown)) + ") but " + (format b) + " " + (if budget.IsSome then "is the memory budget" else "are free") + "; " + fix)))
        | _ -> ()

    /// <summary>The default memory budget of a tiled kernel computation: the available bytes less a margin of a
    /// tenth of them, and at least 256 MB, for the runtime, the inputs and everything else the process holds.</summary>
    [<CompiledName("DefaultBudget")>]
    let defaultBudget () : int64 =
        let free = availableBytes ()
        max 0L (free - max (free / 10L) 256_000_000L)

    /// <summary>A budget given in gigabytes (10⁹ bytes) as bytes, refused unless finite and positive.</summary>
    let internal ofGigabytes (name: string) (gb: float) : int64 =
        if not (Double.IsFinite gb) || gb <= 0.0 || gb > 1e9 then
            invalidArg name $"must be a positive number of gigabytes (10^9 bytes) up to 10^9, e.g. 4 or 0.5, got {Show.g gb}"
        int64 (gb * 1e9)
