namespace NeuralTangents

open System
open System.IO
open System.Runtime.InteropServices
open System.Security.Cryptography
open System.Text
open Microsoft.Win32.SafeHandles

/// <summary>What a file-backed tiled computation wrote.</summary>
type TiledFilesResult =
    { /// (name, path) of every .npy file written ("nngp", "ntk", "cov1", "cov2"), in response order.
      Files: (string * string) list
      /// Tiles of the whole computation.
      TilesTotal: int
      /// Tiles a previous, interrupted run had finished (not computed again).
      TilesResumed: int
      /// Inputs per block.
      BatchSize: int
      /// The spatial axis pairs of the arrays are stored in reverse order (neural_tangents' <c>is_reversed</c>, after
      /// an odd number of shared convolutions with two or more spatial axes).
      IsReversed: bool }

/// <summary>Kernels larger than memory: the answer arrays are <c>.npy</c> files filled tile by tile at their byte
/// offsets, and every finished tile is recorded in a ledger (<c>PREFIX.nt-tiles</c>) once its data is on disk, so
/// that a run killed at any moment resumes where it stopped and ends with the same bytes.</summary>
[<RequireQualifiedAccess>]
module TiledFiles =

    let private fail (msg: string) = raise (NeuralTangentsException msg)

    /// The ledger beside the outputs of <paramref name="prefix"/>.
    [<CompiledName("LedgerPath")>]
    let ledgerPath (prefix: string) = prefix + ".nt-tiles"

    /// The file an answer array is filled in before it is renamed to its final name.
    let internal partialPath (path: string) = path + ".partial"

    let private magic = "nt-tiles 1"

    /// The refusal of an answer file that exists already: the file and the three ways out (in the words of an nt
    /// request, which this module's messages speak, and of the F# call).
    let private existsMessage (path: string) =
        $"{path} already exists and would be replaced; nothing was computed or changed. Delete or move it, choose another \"out\", or add \"overwrite\": true to the request (overwrite = true from F#) to replace it"

    /// <summary>A hash of everything that determines the answer's bytes: the network (its JSON), the layout, the
    /// quantities, the inputs (shapes and float64 bits) and the files asked for. Resources (memory, parallelism)
    /// are not in it; the tile size is kept in the ledger instead.</summary>
    let internal fingerprint (request: LayoutRequest) (layer: Layer) (x1: Tensor) (x2: Tensor option) (get: Get) (names: string list) : string =
        use h = IncrementalHash.CreateHash HashAlgorithmName.SHA256
        let text (s: string) = h.AppendData(Encoding.UTF8.GetBytes(s + "\n"))
        let tensor (t: Tensor) =
            text (Shape.format t.Shape)
            let chunk = 1 <<< 20
            let mutable off = 0
            while off < t.Data.Length do
                let len = min chunk (t.Data.Length - off)
                h.AppendData(MemoryMarshal.AsBytes(ReadOnlySpan(t.Data, off, len)))
                off <- off + len
        text magic
        text (Json.encode layer)
        text $"diagonal_batch={Show.boolOption request.DiagonalBatch} diagonal_spatial={Show.boolOption request.DiagonalSpatial}"
        text $"""get={(match get with Get.Nngp -> "Nngp" | Get.Ntk -> "Ntk" | Get.Both -> "Both")}"""
        text (String.Join(",", names))
        tensor x1
        match x2 with
        | Some t -> tensor t
        | None -> text "x2=None"
        Convert.ToHexString(h.GetHashAndReset()).ToLowerInvariant()

    type private Ledger = { Fingerprint: string; BatchSize: int; Tiles: int; Done: Set<int> }

    /// Reads a ledger; a last line cut short by a kill is ignored (and later truncated).
    let private readLedger (path: string) : Ledger =
        let text = File.ReadAllText path
        let complete = text.Substring(0, text.LastIndexOf '\n' + 1)
        let lines = complete.Split('\n', StringSplitOptions.RemoveEmptyEntries)
        let bad () =
            fail $"{path} is not a ledger this version of nt wrote; delete it and the .partial files beside it to start over"
        if lines.Length < 4 || lines[0] <> magic then bad ()
        let field (i: int) (key: string) =
            match lines[i].Split ' ' with
            | [| k; v |] when k = key -> v
            | _ -> bad ()
        let int' (s: string) = match Int32.TryParse s with | true, v -> v | _ -> bad ()
        let tiles = int' (field 3 "tiles")
        let isDone =
            lines[4..] |> Array.map (fun l ->
                match l.Split ' ' with
                | [| "done"; i |] -> (match Int32.TryParse i with | true, v when v >= 0 && v < tiles -> v | _ -> bad ())
                | _ -> bad ())
        { Fingerprint = field 1 "request"; BatchSize = int' (field 2 "batch_size"); Tiles = tiles; Done = Set.ofArray isDone }

    /// Writes a file durably under its name: to a temporary file, flushed to disk, then renamed.
    let private writeDurably (path: string) (bytes: byte[]) =
        let tmp = path + ".tmp"
        do
            use f = new FileStream(tmp, FileMode.Create, FileAccess.Write)
            f.Write(bytes, 0, bytes.Length)
            f.Flush true
        File.Move(tmp, path, true)

    /// An output file being filled: its handle and where its data starts.
    type private Target = { Name: string; Final: string; Partial: string; Header: byte[]; Bytes: int64 }

    /// A sink writing each tile's rows at their offsets in the partial files (positional writes, so tiles running
    /// at the same time do not share a file position). Names without a file (quantities not asked for) are dropped.
    type private FileSink(handles: Map<string, SafeFileHandle * int64>, shapes: Map<string, int[]>, hasX2: bool) =
        interface ITileSink with
            member _.Write(name, offset, data) =
                match handles.TryFind name with
                | None -> ()
                | Some(h, start) ->
                    // A tile's values are checked before they reach the file, as the in-memory answer is checked.
                    let seg = ReadOnlySpan(data.Array, data.Offset, data.Count)
                    let bad = seg.IndexOfAnyExceptInRange(Double.MinValue, Double.MaxValue)
                    if bad >= 0 then
                        let v = seg[bad]
                        let what = if Double.IsNaN v then "nan" elif v > 0.0 then "inf" else "-inf"
                        let shape = shapes[name]
                        let mutable rest = offset + int64 bad
                        let idx = Array.zeroCreate shape.Length
                        for a in shape.Length - 1 .. -1 .. 0 do
                            idx[a] <- rest % int64 shape[a]
                            rest <- rest / int64 shape[a]
                        let index = match idx with [| i |] -> string i | _ -> "[" + String.Join(", ", idx) + "]"
                        let inputs = match name with "cov1" -> "x1" | "cov2" -> "x2" | _ -> if hasX2 then "x1 and x2" else "x1"
                        fail ((name + " has a non-finite value (" + what + ") at index " + index + ": the inputs are too large for this network; rescale " + inputs))
                    let pos = start + offset * 8L
                    if BitConverter.IsLittleEndian then
                        RandomAccess.Write(h, MemoryMarshal.AsBytes(ReadOnlySpan(data.Array, data.Offset, data.Count)), pos)
                    else
                        let b = Array.zeroCreate<byte> (8 * data.Count)
                        for i in 0 .. data.Count - 1 do
                            Buffers.Binary.BinaryPrimitives.WriteDoubleLittleEndian(Span(b, 8 * i, 8), data.Array[data.Offset + i])
                        RandomAccess.Write(h, ReadOnlySpan b, pos)

    /// <summary>Computes a kernel in tiles straight into <c>.npy</c> files (<c>PREFIX.nngp.npy</c>,
    /// <c>PREFIX.ntk.npy</c>, <c>PREFIX.cov1.npy</c>, <c>PREFIX.cov2.npy</c>, those of <paramref name="names"/> the
    /// kernel has), so that no answer array is ever whole in memory. Each file is created as
    /// <c>NAME.npy.partial</c> with numpy's header and its full length; a tile's rows are written at their offsets
    /// and flushed to disk, and only then is the tile recorded in the ledger <c>PREFIX.nt-tiles</c> (and the
    /// ledger flushed). Once every tile is recorded the partial files are renamed to their final names together
    /// and the ledger is deleted. A run on a prefix with a ledger resumes it: it computes only the tiles not
    /// recorded, with the ledger's tile size, and the files end byte for byte as an uninterrupted run with that tile
    /// size writes them. A ledger of a different request (other network, inputs, layout, quantities) is refused.
    /// An answer file that already exists at the prefix (an unrelated file, or a finished answer of any request) is
    /// refused before any work unless <paramref name="overwrite"/> is true; the files a resumed run had already
    /// renamed into place are its own.</summary>
    /// <param name="options">Tile size or memory budget, parallelism, progress and cancellation.</param>
    /// <param name="request">The covariance layout.</param>
    /// <param name="layer">The network.</param>
    /// <param name="x1">First inputs.</param>
    /// <param name="x2">Second inputs, or None.</param>
    /// <param name="get">Nngp, Ntk or Both.</param>
    /// <param name="names">The arrays to write, among "nngp", "ntk", "cov1", "cov2".</param>
    /// <param name="overwrite">true to replace answer files that already exist at the prefix (still through the
    /// partial file and a rename); false to refuse them, leaving them untouched.</param>
    /// <param name="prefix">The path prefix of the files.</param>
    /// <returns>The files written and the tile counts.</returns>
    /// <exception cref="T:System.OperationCanceledException">cancelled: the finished tiles are recorded, and the same
    /// call resumes.</exception>
    /// <exception cref="T:NeuralTangents.NeuralTangentsException">an answer file exists and overwrite is false, a
    /// ledger of a different request, or a kernel that is not finite.</exception>
    [<CompiledName("Compute")>]
    let compute (options: BatchOptions) (request: LayoutRequest) (layer: Layer) (x1: Tensor) (x2: Tensor option) (get: Get) (names: string list) (overwrite: bool) (prefix: string) : TiledFilesResult =
        if isNull prefix then nullArg "prefix"
        KernelFn.checkFinite "x1" x1
        x2 |> Option.iter (KernelFn.checkFinite "x2")
        for n in names do
            let path = $"{prefix}.{n}.npy"
            if Directory.Exists path then fail $"cannot write {path}: it is a directory (no answer file was changed)"
        let ledger = ledgerPath prefix
        let fp = fingerprint request layer x1 x2 get names
        let previous = if File.Exists ledger then Some(readLedger ledger) else None
        let options =
            match previous with
            | None -> options
            | Some l ->
                if l.Fingerprint <> fp then
                    fail ((ledger + " records an unfinished computation of a different request (network, inputs, get or layout differ); nothing was mixed in. Run that request again to finish it, or delete " + ledger + " and the " + (Path.GetFileName prefix) + ".*.npy.partial files, or choose another \"out\""))
                match options.BatchSize with
                | Some b when b <> l.BatchSize ->
                    fail ((ledger + " was started with \"batch_size\" " + string l.BatchSize + "; resume it with the same tile size (or leave \"batch_size\" out), or delete it to start over with " + string b))
                | _ -> { options with BatchSize = Some l.BatchSize }
        let job = Batching.plan options (fun _ _ _ -> 0L) request layer x1 x2 get
        let targets =
            job.Outputs
            |> List.filter (fun (n, _) -> List.contains n names)
            |> List.map (fun (n, shape) ->
                let final = $"{prefix}.{n}.npy"
                let header = Npy.headerOf shape
                { Name = n; Final = final; Partial = partialPath final; Header = header
                  Bytes = int64 header.Length + 8L * (shape |> Array.fold (fun a d -> a * int64 d) 1L) })
        let intact (t: Target) = File.Exists t.Partial && FileInfo(t.Partial).Length = t.Bytes
        let resumable =
            match previous with
            | Some l when l.Tiles = job.TileCount && l.BatchSize = job.TileSize ->
                if targets |> List.forall intact then Some l.Done
                // Every tile recorded and some files already renamed: the run died while renaming.
                elif l.Done.Count = l.Tiles && targets |> List.forall (fun t -> intact t || File.Exists t.Final) then Some l.Done
                else None
            | _ -> None
        // Never replace a file this computation did not write, unless asked to. Its own finals are those a run killed
        // while renaming had moved into place: every tile recorded and the partial file gone (a rename is atomic, so
        // a final beside its intact partial file came from elsewhere).
        if not overwrite then
            let renaming = match previous, resumable with Some l, Some _ -> l.Done.Count = l.Tiles | _ -> false
            match targets |> List.tryFind (fun t -> File.Exists t.Final && not (renaming && not (File.Exists t.Partial))) with
            | Some t -> fail (existsMessage t.Final)
            | None -> ()
        // The bytes still to be written must fit on the file system (checked before a file is created or extended):
        // a request of N = 10⁶ inputs needs 8 TB per array, and sparse files would only fail once the disk is full.
        do
            let total = targets |> List.sumBy (fun t -> t.Bytes)
            let left =
                match resumable with
                | Some d -> total / int64 (max 1 job.TileCount) * int64 (job.TileCount - d.Count)
                | None -> total
            let dir = Path.GetDirectoryName(Path.GetFullPath prefix)
            let free = try Some(DriveInfo(dir).AvailableFreeSpace) with _ -> None
            match free with
            | Some f when left > f ->
                fail ("\"out\": the answer files need " + (Memory.format left) + " more on the file system of " + dir + " but " + (Memory.format f) + " are free; free disk space, choose another \"out\", or compute a smaller kernel")
            | _ -> ()
        let isDone =
            match resumable with
            | Some d -> d
            | None ->
                // Start afresh: the partial files at full length (sparse where the file system allows), then the ledger.
                for t in targets do
                    try
                        use f = new FileStream(t.Partial, FileMode.Create, FileAccess.Write)
                        f.Write(t.Header, 0, t.Header.Length)
                        f.SetLength t.Bytes
                        f.Flush true
                    with :? IOException as e ->
                        for u in targets do
                            try File.Delete u.Partial with _ -> ()
                        fail ("cannot create " + t.Partial + " at its full length (" + (Memory.format t.Bytes) + "): " + e.Message + "; choose another \"out\" or compute a smaller kernel")
                writeDurably ledger (Encoding.ASCII.GetBytes((magic + "\nrequest " + fp + "\nbatch_size " + string job.TileSize + "\ntiles " + string job.TileCount + "\n")))
                Set.empty
        let pending = targets |> List.filter (fun t -> File.Exists t.Partial)
        do
            // Drop a record cut short by a kill, then append; FileShare.Read keeps a second writer out.
            let stream =
                try new FileStream(ledger, FileMode.Open, FileAccess.ReadWrite, FileShare.Read)
                with :? IOException as e -> fail $"cannot open {ledger} (is another nt writing this \"out\"?): {e.Message}"
            use stream = stream
            let bytes = Array.zeroCreate<byte> (int stream.Length)
            stream.ReadExactly(bytes, 0, bytes.Length)
            stream.SetLength(int64 (Array.LastIndexOf(bytes, byte '\n') + 1))
            stream.Seek(0L, SeekOrigin.End) |> ignore
            let handles =
                pending |> List.map (fun t -> t.Name, (File.OpenHandle(t.Partial, FileMode.Open, FileAccess.ReadWrite), int64 t.Header.Length))
            try
                let sink = FileSink(Map.ofList handles, Map.ofList job.Outputs, x2.IsSome)
                let gate = obj ()
                let record (tile: Tile) (k: Kernel) =
                    Batching.place job sink tile k
                    for _, (h, _) in handles do RandomAccess.FlushToDisk h
                    lock gate (fun () ->
                        let line = Encoding.ASCII.GetBytes $"done {string tile.Index}\n"
                        stream.Write(line, 0, line.Length)
                        stream.Flush true)
                try Batching.runTiles job options (fun t -> isDone.Contains t.Index) record
                with NeuralTangentsException _ ->
                    // The request itself fails (a non-finite kernel): it can never finish, so nothing is kept.
                    for _, (h, _) in handles do h.Dispose()
                    stream.Dispose()
                    for t in targets do File.Delete t.Partial
                    File.Delete ledger
                    reraise ()
            finally
                for _, (h, _) in handles do h.Dispose()
        for t in pending do
            // A file that appeared at a final name during the run is not replaced either (the ledger is kept: the
            // same call finishes the renames once it is moved away).
            try File.Move(t.Partial, t.Final, overwrite)
            with :? IOException when not overwrite && File.Exists t.Final ->
                fail ((t.Final + " appeared while the kernel was computed and was not replaced; the answer waits in " + t.Partial + " (every tile is recorded in " + ledger + "). Move that file away and run the same command again to finish, or add \"overwrite\": true (overwrite = true from F#) to replace it"))
        File.Delete ledger
        { Files = targets |> List.map (fun t -> t.Name, t.Final)
          TilesTotal = job.TileCount
          TilesResumed = isDone.Count
          BatchSize = job.TileSize
          IsReversed = job.Probe.IsReversed }
