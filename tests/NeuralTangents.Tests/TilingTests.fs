/// Tiled kernels (Batching, TiledFiles): equal to the untiled kernel, memory budget, progress, cancellation, resume.
module NeuralTangents.Tests.TilingTests

open System
open System.IO
open System.Threading
open Expecto
open FsCheck
open FsCheck.FSharp
open NeuralTangents
open NeuralTangents.Tests.TestUtil

/// A synchronous reporter (System.Progress posts to the thread pool, so its reports may arrive after the call).
type private Reports() =
    let items = Collections.Concurrent.ConcurrentQueue<TileProgress>()
    member _.Items = items |> Seq.toList
    member val OnReport: TileProgress -> unit = ignore with get, set
    interface IProgress<TileProgress> with
        member r.Report p =
            items.Enqueue p
            r.OnReport p

let private mlp = Stax.serial [ Stax.dense 512 1.5 (Some 0.05); Stax.relu; Stax.dense 64 1.2 (Some 0.1); Stax.erf 1.0 0.5 0.0; Stax.dense 1 1.0 None ]

/// Conv + Relu + AvgPool with spatial axes kept (the full layout (N1, N2, H, H', W, W')).
let private cnnFull =
    Stax.serial [ Stax.conv 3 [ 2; 2 ] None Padding.Same 1.3 (Some 0.1); Stax.relu
                  Stax.avgPool [ 2; 2 ] None Padding.Valid
                  Stax.conv 2 [ 2; 2 ] None Padding.Circular 1.1 None; Stax.relu ]

/// CNN with global average pooling, and one with a ConvTranspose that grows the spatial axes.
let private cnnGap = Stax.serial [ cnnFull; Stax.globalAvgPool; Stax.dense 1 1.0 (Some 0.2) ]
let private cnnTranspose =
    Stax.serial [ Stax.convTranspose 2 [ 2; 2 ] (Some [ 2; 2 ]) Padding.Valid 1.0 None; Stax.relu; Stax.flatten; Stax.dense 1 1.0 None ]

let private images (seed: int) (n: int) = Tensor.create [| n; 4; 4; 2 |] (normals seed (n * 32))

let private options (b: int) = { BatchOptions.Default with BatchSize = Some b }

/// Every array of the tiled kernel within 1e-14 (relative Frobenius) of the untiled one, same shapes and flags.
let private assertSame (what: string) (expected: Kernel) (actual: Kernel) =
    let pairs =
        [ "nngp", Some expected.Nngp, Some actual.Nngp
          "ntk", expected.Ntk, actual.Ntk
          "cov1", Some expected.Cov1, Some actual.Cov1
          "cov2", expected.Cov2, actual.Cov2 ]
    for name, e, a in pairs do
        match e, a with
        | Some e, Some a ->
            Expect.equal a.Shape e.Shape (sprintf "%s: %s shape" what name)
            assertClose (sprintf "%s: %s" what name) 1e-14 e.Data a.Data
        | None, None -> ()
        | _ -> failtestf "%s: %s is present in one kernel only" what name
    Expect.equal actual.Shape1 expected.Shape1 (what + ": Shape1")
    Expect.equal actual.Shape2 expected.Shape2 (what + ": Shape2")
    Expect.equal actual.X1IsX2 expected.X1IsX2 (what + ": X1IsX2")
    Expect.equal actual.DiagonalSpatial expected.DiagonalSpatial (what + ": DiagonalSpatial")

let private tiledEqualsUntiled (what: string) (layer: Layer) (request: LayoutRequest) (x1: Tensor) (x2: Tensor option) (b: int) =
    let expected = KernelFn.computeWithLayout request layer x1 x2 Both
    let job = Batching.planJob (options b) request layer x1 x2 Both
    Expect.isGreaterThan job.TileCount 1 (what + ": more than one tile")
    assertSame what expected (Batching.computeWithLayout (options b) request layer x1 x2 Both)

let private tempPrefix () =
    let d = Path.Combine(Path.GetTempPath(), "nt-tiling-" + Guid.NewGuid().ToString("N"))
    Directory.CreateDirectory d |> ignore
    d, Path.Combine(d, "k")

let private names = [ "nngp"; "ntk"; "cov1"; "cov2" ]

/// Tiled against untiled on a random network (Generators.networkCase) and random inputs, x2 given or not, tile
/// sizes 1–5. Generic inputs (no edits): within 1e-14. The tiles' Gram matrices are products of other shapes than
/// the untiled one, so an entry may differ by an ulp (ε ≈ 1.1e-16); where two inputs are parallel (duplicate or
/// collinear rows, c = ±1) the arc-cosine of the ReLU-type kernels turns an ulp Δc into Δθ ≈ √(2Δc) ≈ 1.5e-8, so on
/// degenerate inputs the untiled kernel itself is only that accurate and the bound is 2e-8.
/// With x2 = None the tiled kernel mirrors its upper triangle and is exactly symmetric, while the untiled one
/// computes (i, j) and (j, i) separately: they may also differ by the untiled kernel's own asymmetry.
/// The 2e-8 bound holds when each layer's NNGP map is differentiable at c = ±1, so an ulp in c stays an ulp-sized
/// change of the next layer's c (the √ appears only in the NTK's derivative factor, which does not feed back).
/// Sign and RectifiedMonomial(0) map c to 1 − 2θ/π: their NNGP itself has the √ at c = 1, and stacked layers
/// compound it (√ of √ …), so their degenerate cases have no uniform bound and are left to the generic-input law.
let rec private hasKinkedNngp (layer: Layer) =
    match layer with
    | Serial ls | Parallel ls -> List.exists hasKinkedNngp ls
    | Activation Sign | Activation(RectifiedMonomial 0) -> true
    | _ -> false

let private tiledLaw (degenerate: bool) =
    let spec = if degenerate then Generators.inputSpec else Generators.inputSpec |> Gen.map (fun s -> { s with Edits = [] })
    let cases = Gen.zip3 Generators.networkCase (Gen.zip spec spec) (Gen.zip (Gen.choose (1, 5)) (Gen.elements [ true; false ])) |> Arb.fromGen
    let tol = if degenerate then 2e-8 else 1e-14
    Prop.forAll cases (fun (c, (s1, s2), (b, withX2)) ->
        let x1 = Generators.inputs c.Layout s1
        let x2 = if withX2 then Some(Generators.inputs c.Layout s2) else None
        match (try Ok(KernelFn.compute c.Net x1 x2 Both) with NeuralTangentsException m -> Error m) with
        // Overflowing networks (kernel_fn refuses them; KernelFnTests checks) and, on degenerate inputs, kinked NNGP
        // maps hold the law vacuously (Prop.discard's exception cannot be constructed from this assembly at run time).
        | Error m when m.Contains "overflowed" -> true
        | Error m -> failwithf "untiled failed: %s" m
        | Ok _ when degenerate && hasKinkedNngp c.Net -> true
        | Ok expected ->
            let actual = Batching.compute (options b) c.Net x1 x2 Both
            for name, e, a in [ "nngp", expected.Nngp, actual.Nngp; "ntk", expected.Ntk.Value, actual.Ntk.Value ] do
                let asym = if withX2 then 0.0 else relErr e.Data (Kernel.swapInputs { expected with Nngp = e; Ntk = None }).Nngp.Data
                assertClose (sprintf "%s (untiled asymmetry %.1e), batch_size %d, %A" name asym b c.Net) (max tol (2.0 * asym)) e.Data a.Data
            assertClose "cov1" tol expected.Cov1.Data actual.Cov1.Data
            true)

[<Tests>]
let tests =
    testList "TilingTests" [
        testCase "MLP, x2 = None, N = 7 in tiles of 3 (upper triangle mirrored) equals the untiled kernel" <| fun () ->
            tiledEqualsUntiled "mlp None" mlp LayoutRequest.Auto (randomTensor 1 7 5) None 3

        testCase "a non-finite input is named as the caller gave it, with its index in the whole input, not in a tile" <| fun () ->
            // Row 10 of 12 lies in the third tile of 4, whose blocks a tile's own check would call x1 and x2.
            let withNan (seed: int) (n: int) (row: int) =
                let x = randomTensor seed n 3
                x.Data[row * 3 + 1] <- nan
                x
            let refusal (f: unit -> unit) =
                let e = throwsExactly<ArgumentException> f
                e.ParamName, e.Message
            let x = withNan 4 12 10
            for name, f in [ "in memory", (fun () -> Batching.compute (options 4) mlp x None Both |> ignore)
                             "to files", (fun () ->
                                 let dir, prefix = tempPrefix ()
                                 try TiledFiles.compute (options 4) LayoutRequest.Auto mlp x None Both names false prefix |> ignore
                                 finally Directory.Delete(dir, true)) ] do
                let param, message = refusal f
                Expect.equal param "x1" name
                Expect.stringContains message "x1 has a non-finite value (NaN) at flat index 31" name
            let param, message = refusal (fun () -> Batching.compute (options 4) mlp (randomTensor 5 6 3) (Some(withNan 6 9 7)) Both |> ignore)
            Expect.equal param "x2" "x2"
            Expect.stringContains message "x2 has a non-finite value (NaN) at flat index 22" "x2"

        testCase "MLP, x2 given, N1 = 7 and N2 = 5 in tiles of 2 equals the untiled kernel" <| fun () ->
            tiledEqualsUntiled "mlp x2" mlp LayoutRequest.Auto (randomTensor 2 7 5) (Some(randomTensor 3 5 5)) 2

        testCase "CNN with pooling in the full layout (N1, N2, H, H', W, W'), x2 = None and given, equals the untiled kernel" <| fun () ->
            tiledEqualsUntiled "cnn None" cnnFull LayoutRequest.Auto (images 4 5) None 2
            tiledEqualsUntiled "cnn x2" cnnFull LayoutRequest.Auto (images 5 5) (Some(images 6 3)) 2

        testCase "CNN-GAP and a ConvTranspose network, odd N, equal the untiled kernel" <| fun () ->
            tiledEqualsUntiled "gap" cnnGap LayoutRequest.Auto (images 7 5) None 2
            tiledEqualsUntiled "transpose" cnnTranspose LayoutRequest.Auto (images 8 5) (Some(images 9 4)) 3

        testCase "the mirrored tiles of a full-spatial kernel are transposed in (H, H') too: the result is symmetric" <| fun () ->
            let k = Batching.computeWithLayout (options 2) LayoutRequest.Auto cnnFull (images 10 5) None Both
            // K(x_i, x_j)[h, h', w, w'] = K(x_j, x_i)[h', h, w', w]: swapping inputs gives the same array.
            // Pairs from different blocks come from one tile and its mirror image, so they agree exactly; pairs
            // inside a diagonal tile are computed both ways and agree to round-off.
            let swapped = Kernel.swapInputs k
            let e = k.Nngp.Length / 25
            for i in 0 .. 4 do
                for j in 0 .. 4 do
                    let a, b = Array.sub k.Nngp.Data ((i * 5 + j) * e) e, Array.sub swapped.Nngp.Data ((i * 5 + j) * e) e
                    if i / 2 <> j / 2 then Expect.equal a b (sprintf "pair (%d, %d) is the mirror of (%d, %d)" i j j i)
                    else assertClose (sprintf "pair (%d, %d)" i j) 1e-14 b a

        testCase "one tile holding everything is the untiled computation, bit for bit" <| fun () ->
            let x = randomTensor 11 6 4
            let expected = KernelFn.compute mlp x None Both
            let actual = Batching.compute (options 100) mlp x None Both
            Expect.equal actual.Nngp.Data expected.Nngp.Data "nngp bits"
            Expect.equal actual.Ntk.Value.Data expected.Ntk.Value.Data "ntk bits"

        testCase "the tile size follows the memory budget: the largest whose tiles, one per core, fit" <| fun () ->
            let x = randomTensor 12 400 10
            let budget = 4_000_000L
            let o = { BatchOptions.Default with MemoryBytes = Some budget; Parallelism = Some 2 }
            let job = Batching.planJob o LayoutRequest.Auto mlp x None Both
            Expect.isLessThan job.BatchSize 400 "tiled"
            Expect.isLessThanOrEqual (2L * job.TileBytes + 8L * (2L * 400L * 400L + 400L)) budget "two tiles and the answer fit"
            let bigger = Batching.planJob { o with BatchSize = Some(job.BatchSize + 1); MemoryBytes = Some Int64.MaxValue } LayoutRequest.Auto mlp x None Both
            Expect.isGreaterThan (2L * bigger.TileBytes + 8L * (2L * 400L * 400L + 400L)) budget "one more input per block would not fit"
            assertSame "budget" (KernelFn.compute mlp x None Both) (Batching.compute o mlp x None Both)

        testCase "the plan's probe runs a Conv/ABRelu stack at once, as the computation does, and still counts the largest kernel after it" <| fun () ->
            // Conv SAME + Relu + Conv VALID + Relu (fused in the probe: 8×8 → 6×6 positions), then a ConvTranspose that
            // grows them to 13×13 (walked leaf by leaf): the largest kernel is the last one, 169² entries per pair.
            let net =
                Stax.serial [ Stax.conv 2 [ 3; 3 ] None Padding.Same 1.2 (Some 0.1); Stax.relu
                              Stax.conv 2 [ 3; 3 ] None Padding.Valid 1.1 None; Stax.relu
                              Stax.convTranspose 1 [ 3; 3 ] (Some [ 2; 2 ]) Padding.Valid 1.0 None ]
            let x = Tensor.create [| 5; 8; 8; 2 |] (normals 41 (5 * 8 * 8 * 2))
            let job = Batching.planJob (options 2) LayoutRequest.Auto net x None Both
            let b, e, d = 2L, 169L * 169L, 8L * 8L * 2L
            // tileBytes: 8·(L·(Q·E·b1·b2 + C·(b1 + b2)) + D·(b1 + b2)), L = 3 (one branch + 2), Q = 2 (nngp, ntk),
            // C = E (each input's own full covariance), D the entries of one input.
            Expect.equal job.TileBytes (8L * (3L * (2L * e * b * b + e * (b + b)) + d * (b + b))) "the estimate counts the grown kernel"
            assertSame "tiled CNN" (KernelFn.compute net x None Both) (Batching.compute (options 2) net x None Both)

        testCase "a budget that cannot hold one tile is refused up front with the numbers" <| fun () ->
            let o = { BatchOptions.Default with MemoryBytes = Some 20_000L }
            let e = throwsExactly<NeuralTangentsException> (fun () -> Batching.compute o cnnFull (images 13 5) None Both |> ignore)
            Expect.stringContains e.Message "memory_gb" "names the key"
            Expect.stringContains e.Message "N1 = 5 by N2 = 5" "names the sizes"

        testCase "diagonal_batch=False in several tiles is refused as nt.batch refuses it" <| fun () ->
            let req = { DiagonalBatch = Some false; DiagonalSpatial = None }
            let e = throwsExactly<NeuralTangentsException> (fun () -> Batching.computeWithLayout (options 2) req mlp (randomTensor 14 5 3) None Both |> ignore)
            Expect.stringContains e.Message "diagonal_batch=False" "says why"

        testCase "progress: one report per tile, the last with every tile done and no time left" <| fun () ->
            let r = Reports()
            let o = { options 2 with Progress = Some(r :> IProgress<TileProgress>) }
            Batching.compute o mlp (randomTensor 15 7 3) None Both |> ignore
            // 4 blocks: 4·5/2 = 10 upper-triangle tiles; a first report before any tile.
            let reports = r.Items
            Expect.equal reports.Length 11 "a report before the first tile and one per tile"
            Expect.equal (reports |> List.map (fun p -> p.TilesDone)) [ 0 .. 10 ] "each count once, in order (two workers)"
            Expect.isTrue (reports |> List.forall (fun p -> p.TilesTotal = 10)) "total"
            let last = reports |> List.maxBy (fun p -> p.TilesDone)
            Expect.equal last.Remaining (Some TimeSpan.Zero) "nothing left at the end"

        testCase "cancellation stops at a tile boundary with OperationCanceledException" <| fun () ->
            use cts = new CancellationTokenSource()
            let r = Reports()
            r.OnReport <- fun p -> if p.TilesDone >= 2 then cts.Cancel()
            let o = { options 2 with Progress = Some(r :> IProgress<TileProgress>); Cancellation = cts.Token; Parallelism = Some 1 }
            Expect.throwsT<OperationCanceledException> (fun () -> Batching.compute o mlp (randomTensor 16 9 3) None Both |> ignore) "cancelled"
            Expect.equal (r.Items |> List.map (fun p -> p.TilesDone) |> List.max) 2 "no tile started after the cancellation"

        testCase "files: tile by tile into .npy equals the in-memory kernel; cancelled then resumed gives the same bytes" <| fun () ->
            let dir, prefix = tempPrefix ()
            try
                let x1, x2 = randomTensor 17 9 4, Some(randomTensor 18 7 4)
                let whole = TiledFiles.compute (options 2) LayoutRequest.Auto mlp x1 x2 Both names false (prefix + "-whole")
                Expect.equal whole.TilesResumed 0 "fresh"
                Expect.isFalse (File.Exists(TiledFiles.ledgerPath (prefix + "-whole"))) "ledger deleted at the end"
                let k = KernelFn.compute mlp x1 x2 Both
                for name, path in whole.Files do
                    let expected = match name with "nngp" -> k.Nngp | "ntk" -> k.Ntk.Value | "cov1" -> k.Cov1 | _ -> k.Cov2.Value
                    let t = Npy.read path
                    Expect.equal t.Shape expected.Shape (name + " shape")
                    assertClose name 1e-14 expected.Data t.Data
                // Interrupt after 3 tiles, then resume.
                use cts = new CancellationTokenSource()
                let r = Reports()
                r.OnReport <- fun p -> if p.TilesDone >= 3 then cts.Cancel()
                let o = { options 2 with Progress = Some(r :> IProgress<TileProgress>); Cancellation = cts.Token; Parallelism = Some 1 }
                Expect.throwsT<OperationCanceledException> (fun () -> TiledFiles.compute o LayoutRequest.Auto mlp x1 x2 Both names false prefix |> ignore) "cancelled"
                Expect.isTrue (File.Exists(TiledFiles.ledgerPath prefix)) "ledger kept"
                Expect.isFalse (File.Exists(prefix + ".nngp.npy")) "no final file before the end"
                // A different request on the same prefix is refused, not mixed in.
                let e = throwsExactly<NeuralTangentsException> (fun () ->
                    TiledFiles.compute (options 2) LayoutRequest.Auto mlp x1 None Both names false prefix |> ignore)
                Expect.stringContains e.Message "different request" "refused"
                let resumed = TiledFiles.compute BatchOptions.Default LayoutRequest.Auto mlp x1 x2 Both names false prefix
                Expect.equal resumed.TilesResumed 3 "three tiles kept"
                Expect.equal resumed.BatchSize 2 "the ledger's tile size"
                for (name, a), (_, b) in List.zip whole.Files resumed.Files do
                    Expect.equal (File.ReadAllBytes b) (File.ReadAllBytes a) (name + ": same bytes as the uninterrupted run")
            finally
                Directory.Delete(dir, true)
        testCase "files: an existing file at an answer's name is refused before any work and left byte for byte; overwrite replaces it" <| fun () ->
            let dir, prefix = tempPrefix ()
            try
                let x1 = randomTensor 21 6 3
                let notes = Text.Encoding.UTF8.GetBytes "my notes, not an npy\n"
                File.WriteAllBytes(prefix + ".ntk.npy", notes)
                let e = throwsExactly<NeuralTangentsException> (fun () ->
                    TiledFiles.compute (options 2) LayoutRequest.Auto mlp x1 None Both names false prefix |> ignore)
                Expect.stringContains e.Message (prefix + ".ntk.npy already exists") "names the file"
                Expect.stringContains e.Message "\"overwrite\": true" "and the fix"
                Expect.equal (File.ReadAllBytes(prefix + ".ntk.npy")) notes "left byte for byte"
                Expect.equal (Directory.GetFileSystemEntries dir |> Array.map Path.GetFileName) [| "k.ntk.npy" |] "no ledger, partial or other answer file"
                // The finished answer of another request (other inputs) is refused the same way and kept.
                let other = TiledFiles.compute (options 2) LayoutRequest.Auto mlp (randomTensor 22 6 3) None Both names true prefix
                let before = other.Files |> List.map (fun (_, p) -> File.ReadAllBytes p)
                let e = throwsExactly<NeuralTangentsException> (fun () ->
                    TiledFiles.compute (options 2) LayoutRequest.Auto mlp x1 None Both names false prefix |> ignore)
                Expect.stringContains e.Message "already exists" "refused"
                Expect.equal (other.Files |> List.map (fun (_, p) -> File.ReadAllBytes p)) before "the earlier answer is intact"
                // overwrite = true replaces it with this request's answer.
                let r = TiledFiles.compute (options 2) LayoutRequest.Auto mlp x1 None Both names true prefix
                let k = KernelFn.compute mlp x1 None Both
                assertClose "nngp replaced" 1e-14 k.Nngp.Data (Npy.read (prefix + ".nngp.npy")).Data
                assertClose "ntk replaced" 1e-14 k.Ntk.Value.Data (Npy.read (prefix + ".ntk.npy")).Data
                Expect.equal r.TilesResumed 0 "computed afresh"
            finally
                Directory.Delete(dir, true)

        testCase "files: a run killed while renaming resumes without overwrite (the files it renamed are its own)" <| fun () ->
            let dir, prefix = tempPrefix ()
            try
                let x1, x2 = randomTensor 23 7 3, Some(randomTensor 24 5 3)
                let whole = TiledFiles.compute (options 2) LayoutRequest.Auto mlp x1 x2 Both names false (prefix + "-whole")
                // The state a kill between two renames leaves: a ledger recording every tile, the nngp answer already
                // at its final name, the other answers still in their partial files (their bytes: the whole run's).
                use cts = new CancellationTokenSource()
                let r = Reports()
                r.OnReport <- fun p -> if p.TilesDone >= 1 then cts.Cancel()
                let o = { options 2 with Progress = Some(r :> IProgress<TileProgress>); Cancellation = cts.Token; Parallelism = Some 1 }
                Expect.throwsT<OperationCanceledException> (fun () -> TiledFiles.compute o LayoutRequest.Auto mlp x1 x2 Both names false prefix |> ignore) "cancelled"
                let ledger = TiledFiles.ledgerPath prefix
                let recorded = File.ReadAllLines ledger
                let tiles = recorded |> Array.pick (fun l -> if l.StartsWith "tiles " then Some(int (l.Substring 6)) else None)
                File.WriteAllLines(ledger, Array.append recorded[..3] [| for i in 0 .. tiles - 1 -> sprintf "done %d" i |])
                for name, path in whole.Files do File.Copy(path, sprintf "%s.%s.npy.partial" prefix name, true)
                // A final file beside its intact partial file is not this run's (a rename leaves no partial): refused.
                File.WriteAllText(prefix + ".nngp.npy", "someone else's")
                let e = throwsExactly<NeuralTangentsException> (fun () ->
                    TiledFiles.compute BatchOptions.Default LayoutRequest.Auto mlp x1 x2 Both names false prefix |> ignore)
                Expect.stringContains e.Message (prefix + ".nngp.npy already exists") "refused"
                Expect.equal (File.ReadAllText(prefix + ".nngp.npy")) "someone else's" "kept"
                File.Move(prefix + ".nngp.npy.partial", prefix + ".nngp.npy", true)
                let resumed = TiledFiles.compute BatchOptions.Default LayoutRequest.Auto mlp x1 x2 Both names false prefix
                Expect.equal resumed.TilesResumed tiles "every tile recorded: only the renames were left"
                Expect.isFalse (File.Exists ledger) "ledger removed"
                for (name, a), (_, b) in List.zip whole.Files resumed.Files do
                    Expect.equal (File.ReadAllBytes b) (File.ReadAllBytes a) (name + ": the uninterrupted run's bytes")
            finally
                Directory.Delete(dir, true)

        testPropertyWithConfig (fsCheck 40) "law: tiled = untiled to 1e-14 on random networks, layouts (batch axis 0 or 1), N and tile sizes" <| fun () ->
            tiledLaw false

        testPropertyWithConfig (fsCheck 40) "law: on degenerate inputs (duplicate, zero, collinear rows) tiled = untiled to the arc-cosine's conditioning" <| fun () ->
            tiledLaw true

        testCase "files: an answer larger than the free disk space is refused before any file is created" <| fun () ->
            // N = 3·10⁶ scalar inputs: 72 TB per N×N array, beyond any test machine's disk; only planning runs (the
            // 24 MB input is the largest allocation). Nothing may be left in the directory.
            let dir, prefix = tempPrefix ()
            try
                let x = Tensor.zeros [| 3_000_000; 1 |]
                let e = throwsExactly<NeuralTangentsException> (fun () ->
                    TiledFiles.compute BatchOptions.Default LayoutRequest.Auto (Stax.dense 1 1.0 None) x None Both [ "nngp" ] false prefix |> ignore)
                Expect.stringContains e.Message "72.0 TB" "names the bytes needed"
                Expect.stringContains e.Message "are free" "and the bytes free"
                Expect.isEmpty (Directory.GetFileSystemEntries dir) "no ledger or partial file"
            finally
                Directory.Delete(dir, true)
    ]
