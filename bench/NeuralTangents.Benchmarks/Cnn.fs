/// The CNN benchmark of neural_tangents' README (issue #9 item 6) and the profiles of its arc-cosine step:
/// `--cnn`, `--cnn-quick` (with `--cnn-max-s S`, env NT_CNN_ONLY=gap:N|flatten:N), `--cnn-ab`, `--abrelu-profile`.
module NeuralTangents.Benchmarks.Cnn

#nowarn "9" // pinned buffers for the activation profile

open System
open Microsoft.FSharp.NativeInterop
open System.Diagnostics
open NeuralTangents
open NeuralTangents.Benchmarks.Data

/// kernel_fn(x, None) of 21 × (Conv(1, (3, 3), (1, 1), SAME), Relu) on 32×32×3 float64 images (--cnn), neural_tangents'
/// README benchmark: topped by Flatten (the diagonal spatial layout, neural_tangents' fast path) and by GlobalAvgPool
/// (the full layout, every pair of the 1024 positions: ~1000× the work per pair of inputs). Best of 3 after a
/// warm-up; wall time per NTK entry (wall / N²) and CPU time per entry (both cores' time, which load from other
/// processes on a shared machine does not inflate as much as wall time). `--cnn-quick`: Flatten N = 64 and GAP N = 4
/// only. A size is skipped when the one before it took so long that a run would exceed `--cnn-max-s` seconds.
/// neural_tangents' benchmark stack: 21 × (Conv(1, (3, 3), (1, 1), SAME), Relu).
let private benchmarkBody =
    [ for _ in 1 .. 21 do
        yield Stax.conv 1 [ 3; 3 ] (Some [ 1; 1 ]) Padding.Same 1.0 None
        yield Stax.relu ]

/// Wall and CPU milliseconds of one kernel_fn(x, None), nngp and ntk.
let private kernelTimes (net: Layer) (x: Tensor) =
    let proc = Process.GetCurrentProcess()
    proc.Refresh()
    let cpu0 = proc.TotalProcessorTime
    let sw = Stopwatch.StartNew()
    let k = KernelFn.compute net x None Both
    if not k.Ntk.IsSome then failwith "no NTK"
    let wall = sw.Elapsed.TotalMilliseconds
    proc.Refresh()
    wall, (proc.TotalProcessorTime - cpu0).TotalMilliseconds

let cnn (quick: bool) (maxSeconds: float) =
    let body = benchmarkBody
    printfn "%d cores; Vector512 in hardware: %b; Vector256 in hardware: %b; hot passes at width %d (NT_SIMD_WIDTH)" Environment.ProcessorCount
        Runtime.Intrinsics.Vector512.IsHardwareAccelerated Runtime.Intrinsics.Vector256.IsHardwareAccelerated
        (Rules.Simd.normWidth ())
    printfn "| top | layout | N | wall, best of 3 (ms) | ms per NTK entry (wall) | CPU ms per NTK entry |"
    printfn "|---|---|---|---|---|---|"
    let only = Environment.GetEnvironmentVariable "NT_CNN_ONLY" // e.g. "gap:4" or "flatten:64", for profiling
    let cases =
        if not (String.IsNullOrEmpty only) then
            let top, n = only.Split(':') |> fun a -> a[0], int a[1]
            if top = "gap" then [ Stax.globalAvgPool, "full", [ n ] ] else [ Stax.flatten, "diagonal", [ n ] ]
        elif quick then [ Stax.flatten, "diagonal", [ 64 ]; Stax.globalAvgPool, "full", [ 4 ] ]
        else [ Stax.flatten, "diagonal", [ 4; 16; 64; 128 ]; Stax.globalAvgPool, "full", [ 4; 8; 16 ] ]
    for top, layout, sizes in cases do
        let net = Stax.serial (body @ [ top ])
        let mutable last = None
        for n in sizes do
            // Work grows as N²: skip a size whose runs would take longer than maxSeconds.
            let predicted = last |> Option.map (fun (n0, ms) -> ms * float (n * n) / float (n0 * n0) / 1000.0)
            match predicted with
            | Some p when p > maxSeconds -> printfn "| %s | %s | %d | skipped (≈ %.0f s per run predicted) | | |" (KernelFn.layerName top) layout n p
            | _ ->
                let x = Tensor.create [| n; 32; 32; 3 |] (normals 7 (n * 32 * 32 * 3))
                let once () = kernelTimes net x
                let warm = once () // warm-up (JIT)
                // The warm-up run counts as the first of the three; a run longer than maxSeconds is not repeated.
                let runs = if fst warm / 1000.0 > maxSeconds then [ warm ] else [ warm; once (); once () ]
                let best = runs |> List.map fst |> List.min
                let cpu = runs |> List.map snd |> List.sort |> fun l -> l[l.Length / 2]
                last <- Some(n, best)
                let e = float (n * n)
                printfn "| %s | %s | %d | %.1f | %.4f | %.4f |" (KernelFn.layerName top) layout n best (best / e) (cpu / e)
    if quick then
        // A/B in the same process: the reference execution (every layer's own rule, nothing fused: the kernels
        // before the fused executor) against the fast one, Flatten N = 16, CPU time of one run each after a warm-up.
        let n = 16
        let net = Stax.serial (body @ [ Stax.flatten ])
        let x = Tensor.create [| n; 32; 32; 3 |] (normals 7 (n * 32 * 32 * 3))
        let proc = Process.GetCurrentProcess()
        let cpuOf (exec: Execution) =
            KernelFn.computeWith exec net x None Both |> ignore
            proc.Refresh()
            let c0 = proc.TotalProcessorTime
            let k = KernelFn.computeWith exec net x None Both
            proc.Refresh()
            (proc.TotalProcessorTime - c0).TotalMilliseconds / float (n * n), k
        let reference, kr = cpuOf Execution.Reference
        let fast, kf = cpuOf Execution.Fast
        // Accuracy of the fused execution against the reference one: max |fused − reference| / max |reference|.
        let relErr (r: Tensor) (f: Tensor) =
            let scale = r.Data |> Array.map abs |> Array.max
            Array.map2 (fun a b -> abs (a - b)) r.Data f.Data |> Array.max |> fun e -> e / scale
        printfn ""
        printfn "A/B, Flatten N = %d, CPU ms per NTK entry: reference execution %.4f, fused %.4f (%.1f× less CPU); fused vs reference: nngp %.1e, ntk %.1e (max abs difference / max abs)"
            n reference fast (reference / fast) (relErr kr.Nngp kf.Nngp) (relErr kr.Ntk.Value kf.Ntk.Value)

/// Calibration: independent Vector256 FMA chains, GFLOP per CPU second on one thread (machine load shows here).
/// `--cnn-ab TOP:N MODES ROUNDS` (e.g. gap:4 1,3 9): variants of the executor (mode bit 0: framed rows,
/// ConvStackPlan.useFrames; bit 1: the one-pass activation, SimdNorm.splitAct off; bit 2: the last window in a pass
/// of its own, SimdNorm.windowInAct off; bit 3: the first axis's rows summed for one output row at a time instead of
/// three, SimdNorm.rowsAtOnce off) timed
/// alternately in one process, round after round, so that drifts of the machine's speed hit every mode alike;
/// prints each mode's median and quartiles of wall and CPU ms per NTK entry.
let cnnAb (spec: string) (modes: int[]) (rounds: int) =
    let top, n = spec.Split(':') |> fun a -> (if a[0] = "gap" then Stax.globalAvgPool else Stax.flatten), int a[1]
    let net = Stax.serial (benchmarkBody @ [ top ])
    let x = Tensor.create [| n; 32; 32; 3 |] (normals 7 (n * 32 * 32 * 3))
    let once () = kernelTimes net x
    let times = modes |> Array.map (fun _ -> ResizeArray())
    for r in 0 .. rounds do
        modes |> Array.iteri (fun i m ->
            Rules.ConvStackPlan.useFrames <- (m &&& 1 = 1)
            Rules.SimdNorm.splitAct <- (m &&& 2 = 0)
            Rules.SimdNorm.windowInAct <- (m &&& 4 = 0)
            Rules.SimdNorm.rowsAtOnce <- (m &&& 8 = 0)
            let t = once ()
            if r > 0 then times[i].Add t) // round 0 warms every mode up
    let e = float (n * n)
    let q (xs: float seq) = let a = Seq.sort xs |> Array.ofSeq in a[a.Length / 4] / e, a[a.Length / 2] / e, a[3 * a.Length / 4] / e
    modes |> Array.iteri (fun i m ->
        let w1, w2, w3 = q (Seq.map fst times[i])
        let c1, c2, c3 = q (Seq.map snd times[i])
        printfn "mode %d: wall %.4g (%.4g-%.4g)  cpu %.4g (%.4g-%.4g) ms per entry" m w2 w1 w3 c2 c1 c3)

/// Eight independent FMA chains of Vector256 in registers (47 GFLOP/s per core on Zen 3, as a C loop). The earlier
/// form (the accumulators declared by one tuple pattern, a `for` loop in the timing function) kept them on the stack,
/// a store and a load in every step of every chain, and reported ~10.
let private fmaChains (iters: int) =
    let m = Runtime.Intrinsics.Vector256.Create 0.999999
    let c = Runtime.Intrinsics.Vector256.Create 1e-7
    let mutable a0 = Runtime.Intrinsics.Vector256.Create 1.0
    let mutable a1 = a0
    let mutable a2 = a0
    let mutable a3 = a0
    let mutable a4 = a0
    let mutable a5 = a0
    let mutable a6 = a0
    let mutable a7 = a0
    let mutable i = 0
    while i < iters do
        a0 <- Runtime.Intrinsics.Vector256.FusedMultiplyAdd(a0, m, c)
        a1 <- Runtime.Intrinsics.Vector256.FusedMultiplyAdd(a1, m, c)
        a2 <- Runtime.Intrinsics.Vector256.FusedMultiplyAdd(a2, m, c)
        a3 <- Runtime.Intrinsics.Vector256.FusedMultiplyAdd(a3, m, c)
        a4 <- Runtime.Intrinsics.Vector256.FusedMultiplyAdd(a4, m, c)
        a5 <- Runtime.Intrinsics.Vector256.FusedMultiplyAdd(a5, m, c)
        a6 <- Runtime.Intrinsics.Vector256.FusedMultiplyAdd(a6, m, c)
        a7 <- Runtime.Intrinsics.Vector256.FusedMultiplyAdd(a7, m, c)
        i <- i + 1
    ((a0 + a1) + (a2 + a3)) + ((a4 + a5) + (a6 + a7))

let fmaCalibration () =
    let proc = Process.GetCurrentProcess()
    let cpu0 = proc.TotalProcessorTime
    let iters = 50_000_000
    let s = fmaChains iters
    proc.Refresh()
    let cpu = (proc.TotalProcessorTime - cpu0).TotalSeconds
    printfn "Vector256 FMA: %.1f GFLOP per CPU second (%g)" (float iters * 8.0 * 8.0 / cpu / 1e9) (Runtime.Intrinsics.Vector256.GetElement(s, 0))

/// Throughput of the fused ABRelu run (--abrelu-profile): M elements per second on one thread.
let abReluProfile () =
    fmaCalibration ()
    let len = 1024
    let x = normals 1 len |> Array.map (fun v -> 0.3 * v)
    let t = normals 2 len
    let v = Array.create len 1.0
    let outN = Array.zeroCreate len
    let outT = Array.zeroCreate len
    let reps = 20000
    let proc = Process.GetCurrentProcess()
    let cpu0 = proc.TotalProcessorTime
    for _ in 1 .. reps do
        Rules.Simd.abReluPass Rules.Simd.identity 0.15 0.5 1 1 len x (Some t) v v outN (Some outT)
    proc.Refresh()
    let cpu = (proc.TotalProcessorTime - cpu0).TotalSeconds
    printfn "abReluPass: %.0f M elements per CPU second (use256 %b)" (float (reps * len) / cpu / 1e6) Rules.Simd.use256
    let r = Array.create len 1.0
    proc.Refresh()
    let cpu0 = proc.TotalProcessorTime
    for _ in 1 .. reps do
        Rules.SimdNorm.abReluNormArrays 0.15 0.5 x t v r v r outN outT
    proc.Refresh()
    let cpu = (proc.TotalProcessorTime - cpu0).TotalSeconds
    printfn "abReluNormRun (division-free): %.0f M elements per CPU second" (float (reps * len) / cpu / 1e6)
    // The executor's own case (Conv W_std = 1, no bias, ntk parameterization: constant flags) in runs of 32 (env
    // NT_RUN_LEN), as the full layout's lines, v1 broadcast; one pass and two passes (SimdNorm.splitAct), alternately.
    let pre = { Rules.Simd.identity with FromOut = true }
    let buf = Array.zeroCreate 256
    let runLen = match Environment.GetEnvironmentVariable "NT_RUN_LEN" with null | "" -> 32 | v -> int v
    let times = [| ResizeArray(); ResizeArray() |]
    for round in 0 .. 6 do
        for split in [ false; true ] do
            Rules.SimdNorm.splitAct <- split
            use px = fixed x
            use pt = fixed t
            use pv = fixed v
            use pr = fixed r
            use pn = fixed outN
            use pd = fixed outT
            use pb = fixed buf
            proc.Refresh()
            let cpu0 = proc.TotalProcessorTime
            for _ in 1 .. reps do
                for run in 0 .. len / runLen - 1 do
                    let at (p: nativeptr<float>) = NativePtr.add p (runLen * run)
                    Rules.SimdNorm.abReluNormRunCall pre 0.15 0.5 (at px) (at pt) (at pv) (at pr) true (at pv) (at pr) (at pn) (at pd) true pb runLen
            proc.Refresh()
            if round > 0 then times[if split then 1 else 0].Add(float (reps * len) / (proc.TotalProcessorTime - cpu0).TotalSeconds / 1e6)
    Rules.SimdNorm.splitAct <- true
    for split in [ false; true ] do
        let a = times[if split then 1 else 0] |> Seq.sort |> Array.ofSeq
        printfn "abReluNormRunBuf, the executor's case in runs of %d (%s): median %.0f M elements per CPU second (%.0f-%.0f)"
            runLen (if split then "two passes" else "one pass") a[a.Length / 2] a[0] a[a.Length - 1]

/// Runs the mode named in argv, if it is one of this file's; false otherwise.
let run (argv: string[]) =
    if Array.contains "--abrelu-profile" argv then
        abReluProfile ()
        true
    elif Array.contains "--cnn" argv || Array.contains "--cnn-quick" argv then
        let i = Array.IndexOf(argv, "--cnn-max-s")
        cnn (Array.contains "--cnn-quick" argv) (if i >= 0 then float argv[i + 1] else 60.0)
        true
    else false
