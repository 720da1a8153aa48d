/// Benchmarks of the kernel computation against the matrix product it starts with.
/// A small own harness (warm-up, then the median of several runs) keeps a full run within a minute or two.
/// The table compares configurations that can only differ per process (native BLAS is chosen once, at load),
/// so the parent re-runs itself with different environment variables and collects the rows.
module NeuralTangents.Benchmarks.Program

open System
open System.Diagnostics
open NeuralTangents
open NeuralTangents.Benchmarks.Data

/// Median wall time in seconds of `runs` calls after `warmup` calls.
let time (warmup: int) (runs: int) (f: unit -> unit) =
    for _ in 1 .. warmup do f ()
    // No forced GC between runs: a full collection hands the large buffers back to the OS and the next run
    // would time first-touch page faults instead of the computation.
    let ts =
        Array.init runs (fun _ ->
            let sw = Stopwatch.StartNew()
            f ()
            sw.Elapsed.TotalSeconds)
    Array.sortInPlace ts
    ts[runs / 2]

/// The benchmark network: (Dense(512, W_std = 1.5, b_std = 0.05), Relu) × depth, no readout layer.
let mlp (depth: int) =
    Stax.repeat depth (Stax.serial [ Stax.dense 512 1.5 (Some 0.05); Stax.relu ])

/// One measured configuration, printed as a tab-separated ROW line for the parent to collect.
let kernelRow (label: string) (n: int) (d: int) (depth: int) (runs: int) =
    let x = Tensor.create [| n; d |] (normals 42 (n * d))
    let net = mlp depth
    let tGemm = time 2 runs (fun () -> Linalg.gemmNT (1.0 / float d) x.Data n x.Data n d |> ignore)
    let tKernel = time 2 runs (fun () -> KernelFn.compute net x None Both |> ignore)
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

/// gp_inference on N training and M test points with K outputs (NNGP and NTK means, NNGP covariance) on
/// precomputed SPD kernels, against one Cholesky factorisation of an N×N SPD matrix (--predict).
let predictRows (n: int) (m: int) (k: int) =
    let d = 64
    let x = Tensor.create [| n + m; d |] (normals 11 ((n + m) * d))
    let net = Stax.serial [ Stax.dense 512 1.5 (Some 0.05); Stax.relu; Stax.dense 1 1.5 (Some 0.05) ]
    let xTrain = Tensor.create [| n; d |] x.Data[.. n * d - 1]
    let xTest = Tensor.create [| m; d |] x.Data[n * d ..]
    let kTrain = KernelFn.compute net xTrain None Both
    let kTest = KernelFn.compute net xTest (Some xTrain) Both
    let kTT = KernelFn.compute net xTest None Nngp
    let y = Tensor.create [| n; k |] (normals 12 (n * k))
    let infer () =
        let p = Predict.gpInference (KernelMatrices.ofKernel kTrain) y 1e-4 false [ PredictGet.Nngp; PredictGet.Ntk ]
        let r = p (Some(KernelMatrices.ofKernel kTest)) (Some(KernelMatrices.ofNngp kTT.Nngp))
        r[PredictGet.Nngp].Covariance.Value |> ignore
    let tInfer = time 1 3 infer
    let tMeans =
        time 1 3 (fun () ->
            let p = Predict.gpInference (KernelMatrices.ofKernel kTrain) y 1e-4 false [ PredictGet.Nngp; PredictGet.Ntk ]
            let r = p (Some(KernelMatrices.ofKernel kTest)) None
            r[PredictGet.Ntk].Mean |> ignore)
    let a = Array.copy kTrain.Nngp.Data
    for i in 0 .. n - 1 do a[i * n + i] <- a[i * n + i] + 1e-4
    let tChol = time 1 3 (fun () -> Linalg.cholesky a n |> ignore)
    let tMathNet = time 0 1 (fun () -> Linalg.choleskyManaged a n |> ignore)
    printfn "PRED\t%d\t%d\t%d\t%.3f\t%.3f\t%.3f\t%s\t%.3f" n m k tInfer tChol tMathNet (Native.describe ()) tMeans

/// Per-layer wall times of three successive kernel computations (--layers), to see where the time goes.
let layers (n: int) (d: int) =
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
        Tensor.isFinite k.Nngp |> ignore
        printfn "input %.1f ms; %s; isFinite %.1f ms" t0 (String.Join(", ", times)) s.Elapsed.TotalMilliseconds


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
    out.Split('\n') |> Array.filter (fun l -> l.StartsWith "ROW" || l.StartsWith "CHOL" || l.StartsWith "PRED")

[<EntryPoint>]
let main argv =
    let quick = Array.contains "--quick" argv
    let n = if quick then 512 else 2048
    let d = 3072
    let depth = 10
    let runs = if quick then 3 else 5
    if Array.contains "--layers" argv then layers n d; exit 0
    match Array.tryFindIndex ((=) "--cnn-ab") argv with
    | Some i -> Cnn.cnnAb argv[i + 1] (argv[i + 2].Split(',') |> Array.map int) (int argv[i + 3]); exit 0
    | None -> ()
    if Array.contains "--small" argv || Array.contains "--small-child" argv then Small.run argv; exit 0
    if Array.contains "--activations" argv then Activations.run quick; exit 0
    if Array.contains "--linalg" argv then LinearAlgebra.run quick; exit 0
    if Cnn.run argv then exit 0
    if Array.contains "--predict" argv then
        printfn "gp_inference (NNGP + NTK means, NNGP covariance, diag_reg 1e-4) vs one Cholesky; median of 3 runs (MathNet: 1 run)."
        printfn "| N | M | K | gp_inference, means + covariances (s) | means only (s) | Cholesky, Linalg (s) | Cholesky, MathNet managed (s) | ratio (with cov.) to Linalg Cholesky | libraries |"
        printfn "|---|---|---|---|---|---|---|---|---|"
        let nP = if quick then 1000 else 4000
        let rows = runChild [| "--predict-child"; (if quick then "--quick" else "") |] []
        let rowsManaged = runChild [| "--predict-child"; (if quick then "--quick" else "") |] [ "NT_NATIVE", "0" ]
        for l in Array.append rows rowsManaged do
            let f = l.Split('\t')
            printfn "| %s | %s | %s | %s | %s | %s | %s | %.2f | %s |" f[1] f[2] f[3] f[4] f[8] f[5] f[6] (float f[4] / float f[5]) f[7]
        ignore nP
        exit 0
    if Array.contains "--predict-child" argv then predictRows (if quick then 1000 else 4000) (if quick then 250 else 1000) 10; exit 0
    match Array.tryFindIndex ((=) "--child") argv with
    | Some i ->
        kernelRow argv[i + 1] n d depth runs
        if Array.contains "--cholesky" argv then choleskyRow (if quick then 1000 else 4000)
        0
    | None ->
        printfn "NeuralTangents benchmark: %d-layer ReLU MLP, Dense(512, W_std=1.5, b_std=0.05) + Relu per layer, no readout;" depth
        printfn "x: N×d seeded normals, x2 = x1 (kernel_fn(x, None, get=Both)); gemm = Linalg.gemmNT x·xᵀ/d, the product the kernel starts with."
        printfn "%d cores, Vector512 accelerated: %b. Median of %d runs after two warm-ups.%s" Environment.ProcessorCount
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
