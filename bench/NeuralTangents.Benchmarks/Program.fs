/// Benchmarks of the kernel computation against the matrix product it starts with.
/// A small own harness (warm-up, then the median of several runs) keeps a full run within a minute or two.
/// The table compares configurations that can only differ per process (native BLAS is chosen once, at load),
/// so the parent re-runs itself with different environment variables and collects the rows.
module NeuralTangents.Benchmarks.Program

open System
open System.Diagnostics
open NeuralTangents

/// Median wall time in seconds of `runs` calls after `warmup` calls.
let time (warmup: int) (runs: int) (f: unit -> unit) =
    for _ in 1 .. warmup do f ()
    let ts =
        Array.init runs (fun _ ->
            GC.Collect()
            GC.WaitForPendingFinalizers()
            let sw = Stopwatch.StartNew()
            f ()
            sw.Elapsed.TotalSeconds)
    Array.sortInPlace ts
    ts[runs / 2]

/// Seeded standard normals (Box–Muller), as the tests use.
let normals (seed: int) (n: int) =
    let rng = Random(seed)
    Array.init n (fun _ ->
        let u1 = 1.0 - rng.NextDouble()
        let u2 = rng.NextDouble()
        sqrt (-2.0 * log u1) * cos (2.0 * Math.PI * u2))

/// The benchmark network: (Dense(512, W_std = 1.5, b_std = 0.05), Relu) × depth, no readout layer.
let mlp (depth: int) =
    Stax.repeat depth (Stax.serial [ Stax.dense 512 1.5 (Some 0.05); Stax.relu ])

/// One measured configuration, printed as a tab-separated ROW line for the parent to collect.
let kernelRow (label: string) (n: int) (d: int) (depth: int) (runs: int) =
    let x = Tensor.create [| n; d |] (normals 42 (n * d))
    let net = mlp depth
    let tGemm = time 1 runs (fun () -> Linalg.gemmNT (1.0 / float d) x.Data n x.Data n d |> ignore)
    let tKernel = time 1 runs (fun () -> KernelFn.compute net x None Both |> ignore)
    let gflops = 2.0 * float n * float n * float d / tGemm / 1e9
    printfn "ROW\t%s\t%d\t%d\t%d\t%.4f\t%.1f\t%.4f\t%.3f\t%s" label n d depth tGemm gflops tKernel (tKernel / tGemm)
        (Native.describe ())

let choleskyRow (n: int) =
    // SPD test matrix: X·Xᵀ/d + I with d = n (well conditioned).
    let x = normals 7 (n * n)
    let a = Linalg.gemmNT (1.0 / float n) x n x n n
    for i in 0 .. n - 1 do a[i * n + i] <- a[i * n + i] + 1.0
    let tManaged = time 0 1 (fun () -> Linalg.choleskyManaged a n |> ignore)
    let tNative =
        if (Native.libraries ()).Potrf.IsSome then time 1 3 (fun () -> Linalg.cholesky a n |> ignore) else nan
    printfn "CHOL\t%d\t%.4f\t%.4f" n tManaged tNative

let profile (n: int) (d: int) =
    let x = Tensor.create [| n; d |] (normals 42 (n * d))
    let net = mlp 10
    for rep in 1 .. 3 do
        let sw = Stopwatch.StartNew()
        let k0 = KernelFn.inputKernel net x None Both
        let t0 = sw.Elapsed.TotalMilliseconds
        let mutable k = k0
        let times = ResizeArray()
        for l in (match net with Serial ls -> ls | l -> [ l ]) do
            match l with
            | Serial inner ->
                for l2 in inner do
                    let s = Stopwatch.StartNew()
                    k <- KernelFn.applyKernel l2 k
                    times.Add(sprintf "%s %.1f" (KernelFn.layerName l2) s.Elapsed.TotalMilliseconds)
            | _ -> ()
        let s = Stopwatch.StartNew()
        let fin = Tensor.isFinite k.Nngp
        printfn "input %.1f ms; %s; isFinite %.1f ms" t0 (String.Join(", ", times)) s.Elapsed.TotalMilliseconds

let micro () =
    let n = 1 <<< 22
    let rng = Random(1)
    let v1 = Array.init 2048 (fun _ -> 0.5 + rng.NextDouble())
    let x = Array.init n (fun i -> let a, b = v1[i / 2048], v1[i % 2048] in (2.0 * rng.NextDouble() - 1.0) * sqrt (a * b))
    let t = Array.init n (fun _ -> rng.NextDouble())
    let y = x |> Array.map (fun v -> sqrt (1.0 - min 1.0 (v * v)))
    let on = Array.zeroCreate n
    let ot = Array.zeroCreate n
    for _ in 1 .. 3 do
        let sw = Stopwatch.StartNew()
        let r = NeuralTangents.Rules.Simd.atan2PosArray y x
        let t1 = sw.Elapsed.TotalMilliseconds
        let sw = Stopwatch.StartNew()
        NeuralTangents.Rules.Simd.abReluPass 0.159 0.5 2048 2048 1 x (Some t) v1 v1 on (Some ot)
        let t2 = sw.Elapsed.TotalMilliseconds
        let sw = Stopwatch.StartNew()
        NeuralTangents.Rules.Simd.densePass 2.25 0.0025 true 0.0 0.0 x (Some t) on (Some ot)
        let t3 = sw.Elapsed.TotalMilliseconds
        let sw = Stopwatch.StartNew()
        let r2 = Array.map2 (fun a b -> Math.Atan2(a, b)) y x
        let t4 = sw.Elapsed.TotalMilliseconds
        printfn "atan2PosArray 4M: %.1f ms (%.0f M/s, 1 thread); abReluPass: %.1f ms (%.0f M/s); densePass %.1f ms; Math.Atan2 map %.1f ms" t1 (4.194 / t1 * 1e3) t2 (4.194 / t2 * 1e3) t3 t4

let micro2 () =
    let n = 1 <<< 16
    let rng = Random(1)
    let x = Array.init n (fun _ -> 2.0 * rng.NextDouble() - 1.0)
    let y = x |> Array.map (fun v -> sqrt (1.0 - v * v))
    let mutable r = [||]
    for rep in 1 .. 5 do
        let sw = Stopwatch.StartNew()
        for _ in 1 .. 64 do r <- NeuralTangents.Rules.Simd.atan2PosArray y x
        let t1 = sw.Elapsed.TotalMilliseconds
        let sw = Stopwatch.StartNew()
        let o = Array.zeroCreate n
        for _ in 1 .. 64 do
            for i in 0 .. n - 1 do o[i] <- Math.Atan2(y[i], x[i])
        let t2 = sw.Elapsed.TotalMilliseconds
        printfn "in-cache 4M atan2: vector %.1f ms (%.0f M/s), Math.Atan2 %.1f ms (%.0f M/s)" t1 (4.194e3 / t1) t2 (4.194e3 / t2)

let runChild (args: string[]) (env: (string * string) list) =
    let psi = ProcessStartInfo(Environment.ProcessPath)
    for a in args do psi.ArgumentList.Add a
    psi.RedirectStandardOutput <- true
    psi.UseShellExecute <- false
    for k, v in env do psi.Environment[k] <- v
    use p = Process.Start psi
    let out = p.StandardOutput.ReadToEnd()
    p.WaitForExit()
    if p.ExitCode <> 0 then failwithf "benchmark child %A failed with exit code %d" env p.ExitCode
    out.Split('\n') |> Array.filter (fun l -> l.StartsWith "ROW" || l.StartsWith "CHOL")

[<EntryPoint>]
let main argv =
    let quick = Array.contains "--quick" argv
    let n = if quick then 512 else 2048
    let d = 3072
    let depth = 10
    let runs = if quick then 3 else 5
    if Array.contains "--profile" argv then profile n d; exit 0
    if Array.contains "--micro" argv then micro (); exit 0
    if Array.contains "--micro2" argv then micro2 (); exit 0
    match Array.tryFindIndex ((=) "--child") argv with
    | Some i ->
        kernelRow argv[i + 1] n d depth runs
        if Array.contains "--cholesky" argv then choleskyRow (if quick then 1000 else 4000)
        0
    | None ->
        printfn "NeuralTangents benchmark: %d-layer ReLU MLP, Dense(512, W_std=1.5, b_std=0.05) + Relu per layer, no readout;" depth
        printfn "x: N×d seeded normals, x2 = x1 (kernel_fn(x, None, get=Both)); gemm = Linalg.gemmNT x·xᵀ/d, the product the kernel starts with."
        printfn "%d cores, Vector512 accelerated: %b. Median of %d runs after one warm-up.%s" Environment.ProcessorCount
            Runtime.Intrinsics.Vector512.IsHardwareAccelerated runs (if quick then " (--quick)" else "")
        let configs =
            [ "native", []
              "native, NT_OPENBLAS_CORETYPE=SkylakeX", [ "NT_OPENBLAS_CORETYPE", "SkylakeX" ]
              "managed (NT_NATIVE=0)", [ "NT_NATIVE", "0" ] ]
        let lines =
            configs
            |> List.mapi (fun idx (label, env) ->
                let extra = if idx = 1 then [| "--cholesky" |] else [||]
                runChild (Array.concat [ [| "--child"; label |]; extra; (if quick then [| "--quick" |] else [||]) ]) env)
            |> Array.concat
        printfn ""
        printfn "| configuration | N | d | depth | x·xᵀ (s) | GFLOP/s | nngp+ntk (s) | ratio | libraries |"
        printfn "|---|---|---|---|---|---|---|---|---|"
        for l in lines |> Array.filter (fun l -> l.StartsWith "ROW") do
            let f = l.Split('\t')
            printfn "| %s | %s | %s | %s | %s | %s | %s | %s | %s |" f[1] f[2] f[3] f[4] f[5] f[6] f[7] f[8] f[9]
        for l in lines |> Array.filter (fun l -> l.StartsWith "CHOL") do
            let f = l.Split('\t')
            printfn ""
            printfn "Cholesky %s×%s SPD: MathNet managed %s s, LAPACKE_dpotrf %s s" f[1] f[1] f[2] f[3]
        0
