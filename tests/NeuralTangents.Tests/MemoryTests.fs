/// Kernels too large for one .NET array are refused before anything is allocated (Memory.fs, Rules/Input.fs).
module NeuralTangents.Tests.MemoryTests

open System
open Expecto
open NeuralTangents
open NeuralTangents.Tests.TestUtil

/// Computes the kernel of `x` (x2 = x1) and returns the refusal and the bytes this thread allocated meanwhile.
let private refusal (net: Layer) (x: Tensor) =
    let before = GC.GetAllocatedBytesForCurrentThread()
    let e = throwsExactly<NeuralTangentsException> (fun () -> KernelFn.compute net x None Both |> ignore)
    e, GC.GetAllocatedBytesForCurrentThread() - before

/// Runs alone (sequenced): the resident set size must not move with other tests' memory meanwhile.
let private resident =
    testCase "Pages: a fresh zeroed array is +0.0 everywhere and, on Linux ≥ 5.14, resident before it is written" <| fun () ->
        // 64 MB never touched by this process: resident set size grows by ~64 MB through the advice alone (no
        // write here). Bound: half of it, as the array's unaligned ends and concurrent GC activity move RSS by
        // far less than 32 MB. MADV_POPULATE_WRITE exists from Linux 5.14 on: there the advice must be taken.
        let rss () =
            IO.File.ReadLines "/proc/self/status"
            |> Seq.find (fun l -> l.StartsWith "VmRSS:")
            |> fun l -> int64 (l.Split(' ', StringSplitOptions.RemoveEmptyEntries)[1]) * 1024L
        let n = 8 <<< 20
        let release =
            if OperatingSystem.IsLinux() then
                let v = (IO.File.ReadAllText "/proc/sys/kernel/osrelease").Split('.', '-')
                Some(int v[0], int v[1])
            else None
        if release >= Some(5, 14) then
            // Alone (sequenced) and after a full collection, so no other test's memory comes or goes meanwhile.
            GC.Collect()
            GC.WaitForPendingFinalizers()
            GC.Collect()
            let r0 = rss ()
            let a = Pages.zeroed n
            let grown = rss () - r0
            Expect.isTrue (Pages.active ()) "the kernel takes the advice"
            Expect.isGreaterThan grown (32L <<< 20) (sprintf "RSS grew by %d bytes for a 64 MB array" grown)
            Expect.isTrue (Array.forall (fun (v: float) -> BitConverter.DoubleToInt64Bits v = 0L) a) "all +0.0"
        else
            let a = Pages.zeroed n
            Expect.isTrue (Array.forall (fun (v: float) -> BitConverter.DoubleToInt64Bits v = 0L) a) "all +0.0"

/// A finite network whose layers fit one by one but not together: Dense(100) five times on 100 features, b_std set.
/// Parameters by hand: 5 · (100·100 + 100) = 50 500 values = 404 000 bytes; the largest one array is 80 kB.
let private fiveDense = Stax.serial (List.replicate 5 (Stax.dense 100 1.0 (Some 0.1)))

/// Dense(50) → Relu → Dense(50) → Dense(10) on 20 × 50 inputs. By hand: parameters 2550 + 2550 + 510 = 5610;
/// recorded activations 20 · (50 + 50 + 50 + 10) = 3200; factored Jacobians: 20 · 10 = 200 output elements, each
/// keeping one example's cotangents at the outputs of the layers with parameters, 50 + 50 + 10 = 110 → 22 000;
/// (N1, N2) kernels 20 · 20 = 400 entries each.
let private mlp = Stax.serial [ Stax.dense 50 1.0 (Some 0.1); Stax.relu; Stax.dense 50 1.0 (Some 0.1); Stax.dense 10 1.0 None ]
let private x20 = Tensor.zeros [| 20; 50 |]

let private wholeNetworkTests =
    testList "whole finite networks" [
        testCase "init_fn: layers that fit one by one but not together are refused up front, naming estimate, budget and fix" <| fun () ->
            let before = GC.GetAllocatedBytesForCurrentThread()
            let e = throwsExactly<NeuralTangentsException> (fun () -> InitFn.checkInit (Some 200_000L) fiveDense [| 2; 100 |])
            // the count-only pass draws nothing: far below the 404 kB of the parameters
            Expect.isLessThan (GC.GetAllocatedBytesForCurrentThread() - before) 200_000L "refused before drawing"
            Expect.stringContains e.Message "50500 parameters" "the count"
            Expect.stringContains e.Message "404 kB" "the estimate"
            Expect.stringContains e.Message "200 kB is the memory budget" "the budget"
            Expect.stringContains e.Message "smaller widths" "the fix"
            InitFn.checkInit (Some 405_000L) fiveDense [| 2; 100 |] // fits: no exception

        testCase "init_fn against the free memory: four layers of 0.4 × the free bytes each are refused before any is drawn" <| fun () ->
            // Each weight matrix alone (0.4 · free) passes the per-array check; the four (1.6 · free) do not. The free
            // memory would have to drop by 60 % or grow by 60 % meanwhile to change the outcome.
            let free = Memory.availableBytes ()
            let w = int (sqrt (0.4 * float free / 8.0))
            let net = Stax.serial (List.replicate 4 (Stax.dense w 1.0 None))
            let before = GC.GetAllocatedBytesForCurrentThread()
            let e = throwsExactly<NeuralTangentsException> (fun () -> InitFn.init 0 net [| 1; w |] |> ignore)
            Expect.isLessThan (GC.GetAllocatedBytesForCurrentThread() - before) (16L <<< 20) "refused before drawing"
            Expect.stringContains e.Message "init_fn: the parameters of all layers" e.Message
            Expect.stringContains e.Message "are free" e.Message

        testCase "apply_fn: the largest layer's input and output for the whole batch, against the budget" <| fun () ->
            // Dense(100) on 1000 × 100 inputs: 100 000 + 100 000 values = 1.6 MB
            let e = throwsExactly<NeuralTangentsException> (fun () -> ApplyFn.checkApply (Some 1_000_000L) fiveDense (Tensor.zeros [| 1000; 100 |]))
            Expect.stringContains e.Message "2 MB" "the estimate (1.6 MB)"
            Expect.stringContains e.Message "split the batch" "the fix"
            ApplyFn.checkApply (Some 1_700_000L) fiveDense (Tensor.zeros [| 1000; 100 |])

        testCase "empirical NTK: activations + factored Jacobians + kernels, each layer far below the budget" <| fun () ->
            // 3200 + 22 000 + 2 · 400 = 26 000 values = 208 kB; the largest weight matrix is 20 kB.
            let gram (o1: int[]) (o2: int[]) = int64 o1[0] * int64 o2[0]
            let e = throwsExactly<NeuralTangentsException> (fun () ->
                Empirical.checkKernels (Some 150_000L) ApplyContext.Empty mlp x20 None true 2 gram)
            Expect.stringContains e.Message "N1 = 20 by N2 = 20" "the inputs"
            Expect.stringContains e.Message "208 kB in all" "the estimate"
            Expect.stringContains e.Message "factored Jacobians 176 kB" "the Jacobian part"
            Expect.stringContains e.Message "batch_size" "the fix"
            Empirical.checkKernels (Some 210_000L) ApplyContext.Empty mlp x20 None true 2 gram

        testCase "Monte Carlo: samples in flight multiply the working set; fewer at a time fit" <| fun () ->
            // per sample 5610 + 3200 + 22 000 + 400 = 31 210 values; 4 at once 124 840, plus 2 · 400 sums and estimates
            // = 125 640 values = 1.0 MB; one at a time 32 010 = 256 kB.
            let o = { MonteCarlo.options 0 [ 8 ] with Parallelism = 4 }
            let e = throwsExactly<NeuralTangentsException> (fun () -> MonteCarlo.checkMemory (Some 500_000L) ApplyContext.Empty o mlp x20 None Ntk)
            Expect.stringContains e.Message "4 samples at a time" e.Message
            Expect.stringContains e.Message "1 MB in all" e.Message
            Expect.stringContains e.Message "parallelism" e.Message
            MonteCarlo.checkMemory (Some 257_000L) ApplyContext.Empty { o with Parallelism = 1 } mlp x20 None Ntk
            Expect.throwsT<NeuralTangentsException> (fun () ->
                MonteCarlo.checkMemory (Some 255_000L) ApplyContext.Empty { o with Parallelism = 1 } mlp x20 None Ntk) "256 kB > 255 kB"
    ]

[<Tests>]
let tests =
    testList "MemoryTests" [
        testCase "N1·N2 beyond the largest array (65537 × 65537) is refused naming N1 and N2, before the Gram product" <| fun () ->
            // 65537² = 4 295 098 369 entries > Array.MaxLength (2 147 483 591). The Gram product alone would allocate
            // 34 GB; the refusal must come first, so the call allocates next to nothing (a bound of 16 MB leaves room
            // for the message and checks; the input is 0.5 MB and was allocated before).
            let x = Tensor.zeros [| 65537; 1 |]
            let e, allocated = refusal (Stax.dense 1 1.0 None) x
            Expect.stringContains e.Message "N1 = 65537" "names N1"
            Expect.stringContains e.Message "N2 = 65537" "names N2"
            Expect.isLessThan allocated (16L <<< 20) (sprintf "allocated %d bytes before refusing" allocated)

        testCase "finite networks: weights beyond one array (Dense(2·10⁹) on 3 channels) are refused before they are drawn" <| fun () ->
            // 3 · 2·10⁹ = 6·10⁹ weights wrap to 1 705 032 704 in int32: 13.6 GB drawn over minutes before the fix.
            let net = Stax.serial [ Stax.dense 2_000_000_000 1.0 None; Stax.relu; Stax.dense 1 1.0 None ]
            let before = GC.GetAllocatedBytesForCurrentThread()
            let e = throwsExactly<NeuralTangentsException> (fun () -> InitFn.init 0 net [| 2; 3 |] |> ignore)
            Expect.stringContains e.Message "Dense: its weight matrix of 3 × 2000000000 entries" "names the layer and the shape"
            Expect.isLessThan (GC.GetAllocatedBytesForCurrentThread() - before) (16L <<< 20) "refused before drawing"
            let conv = Stax.conv 1_000_000_000 [ 3; 3 ] None Padding.Same 1.0 None
            let e = throwsExactly<NeuralTangentsException> (fun () -> InitFn.init 0 conv [| 1; 4; 4; 2 |] |> ignore)
            Expect.stringContains e.Message "Conv: its filter" "names the layer"

        testCase "one image whose full spatial covariance overflows int32 (256×256: 2³² entries) is refused, not wrapped to 0" <| fun () ->
            // (256·256)² = 4 294 967 296 = 2³², which int32 arithmetic wraps to 0 (a segfault before the fix); 216×216
            // gives 2 176 782 336, just above Array.MaxLength and negative in int32. Both need one pair only.
            for side in [ 256; 216 ] do
                let x = Tensor.zeros [| 1; side; side; 1 |]
                let e, allocated = refusal (Stax.dense 1 1.0 None) x
                Expect.stringContains e.Message "one pair of inputs alone" "one pair is already too large"
                Expect.stringContains e.Message (string (int64 side * int64 side * int64 side * int64 side)) "names the entries"
                Expect.isLessThan allocated (16L <<< 20) (sprintf "allocated %d bytes before refusing" allocated)

        testCase "N1·N2·positions beyond the largest array ((1025, 4096, 1) inputs) is refused naming N1 and N2" <| fun () ->
            // 1025² · 4096 positions = 4 303 360 000 entries (each pair has one covariance per position).
            let x = Tensor.zeros [| 1025; 4096; 1 |]
            let e, allocated = refusal (Serial [ Stax.dense 1 1.0 None; Stax.flatten ]) x
            Expect.stringContains e.Message "N1 = 1025" "names N1"
            Expect.stringContains e.Message "N2 = 1025" "names N2"
            Expect.stringContains e.Message "4096" "names the positions"
            Expect.isLessThan allocated (16L <<< 20) (sprintf "allocated %d bytes before refusing" allocated)
    
        testCase "Pages: mapping an array's pages up front changes none of its bits" <| fun () ->
            // 3M entries (24 MB) spans whole 2 MB pages and partial ones at both ends. Written first (pages mapped
            // by the writes), then advised: every bit must survive, as the advice only maps pages.
            let rng = Random 7
            let a = Array.init 3_000_000 (fun _ -> rng.NextDouble() - 0.5)
            let before = Array.copy a
            Pages.prefault a
            Expect.isTrue (Array.forall2 (fun (u: float) v -> BitConverter.DoubleToInt64Bits u = BitConverter.DoubleToInt64Bits v) a before) "contents unchanged"
            let c = Pages.copy a
            Expect.isTrue (Array.forall2 (fun (u: float) v -> BitConverter.DoubleToInt64Bits u = BitConverter.DoubleToInt64Bits v) c before) "copy is bit for bit"
            Expect.equal (Pages.uninitialized 3_000_001).Length 3_000_001 "length of an uninitialized array"

        testSequenced resident
        wholeNetworkTests
    ]
