/// Issue #9 item 7, small requests: where the time of one depth-10 ReLU MLP kernel (Dense(512, 1.5, 0.05) + Relu
/// ×10, Dense(1); N = 1024 inputs of dimension 784, nngp + ntk of kernel_fn(x, None)) goes, in one process
/// (`dotnet fsi build.fsx bench --small [N]`). Each step's wall and CPU time (this process, all threads) on its first
/// call (cold: JIT, thread pool, OpenBLAS start-up, first touch of fresh memory) and the median of five warm calls,
/// with the bytes a warm kernel allocates; the fused MLP executor (Rules.DenseStack) is also timed alone, on fresh
/// output buffers (in KernelFn.compute it overwrites the input kernel's own arrays). The table is printed twice, from two child processes: with .NET's default
/// JIT settings, and with `TieredCompilation.QuickJitForLoops` off, as `nt` runs (its runtimeconfig). The CLI's own
/// costs (process start, argument and request parsing, output) are profiled with `NT_TIMINGS=1 nt kernel …`.
module NeuralTangents.Benchmarks.Small

open System
open System.Diagnostics
open NeuralTangents
open NeuralTangents.Benchmarks.Data

/// The table of one process (the child's part).
let private table (n: int) =
    let cpu () = Process.GetCurrentProcess().TotalProcessorTime.TotalMilliseconds
    let d = 784
    let x = Tensor.create [| n; d |] (normals 7 (n * d))
    let net = Stax.serial ([ for _ in 1 .. 10 do yield Stax.dense 512 1.5 (Some 0.05); yield Stax.relu ] @ [ Stax.dense 1 1.5 (Some 0.05) ])
    let measure (f: unit -> unit) =
        let c0 = cpu ()
        let a0 = GC.GetTotalAllocatedBytes true
        let sw = Stopwatch.StartNew()
        f ()
        sw.Elapsed.TotalMilliseconds, cpu () - c0, float (GC.GetTotalAllocatedBytes true - a0) / 1e6
    let row (name: string) (f: unit -> unit) =
        let wallC, cpuC, _ = measure f
        let warm = Array.init 5 (fun _ -> measure f) |> Array.sortBy (fun (w, _, _) -> w)
        let wallW, cpuW, mb = warm[2]
        printfn "| %s | %.1f | %.1f | %.1f | %.1f | %.1f |" name wallC cpuC wallW cpuW mb
    printfn "%s; %d cores; N = %d" (Native.describe ()) Environment.ProcessorCount n
    printfn "| step | cold wall (ms) | cold CPU (ms) | warm wall, median of 5 (ms) | its CPU (ms) | allocated (MB) |"
    printfn "|---|---|---|---|---|---|"
    row "Parallel.For, empty (thread pool start)" (fun () -> Threading.Tasks.Parallel.For(0, 8, fun _ -> ()) |> ignore)
    row "x·xᵀ/d by gemm (2·N²·d flops)" (fun () -> Linalg.gemmNT (1.0 / float d) x.Data n x.Data n d |> ignore)
    row "x·xᵀ/d by syrk and mirror (N²·d flops)" (fun () -> Linalg.gram (1.0 / float d) x.Data n d |> ignore)
    row "x·xᵀ/d by syrk, upper triangle only (as KernelFn.compute)" (fun () -> Linalg.gramUpper (1.0 / float d) x.Data n d |> ignore)
    row "fresh N×N buffer, written once" (fun () -> Array.create (n * n) 1.0 |> ignore)
    row "input kernel (KernelFn.inputKernel)" (fun () -> KernelFn.inputKernel net x None Both |> ignore)
    row "input kernel without its zero NTK (as KernelFn.compute)" (fun () -> KernelFn.inputKernel net x None Nngp |> ignore)
    let k0 = KernelFn.inputKernel net x None Both
    let chain = match net with Serial ls -> ls | l -> [ l ]
    row "the 21 layers' fused executor alone (Rules.DenseStack)" (fun () -> Rules.DenseStack.tryRun chain false k0 |> ignore)
    // As KernelFn.compute runs it: no input NTK array (it is +0.0 everywhere; KernelPlan.runZeroNtk).
    let k0z = { k0 with Ntk = None }
    row "the same, zero input NTK without an array" (fun () -> Rules.DenseStack.tryRunWith true false chain false k0z |> ignore)
    // And the Gram's upper triangle only (KernelFn.compute's input kernel; its lower triangle is the executor's scratch).
    let upper () = { k0z with Nngp = Tensor.create k0.Nngp.Shape (Linalg.gramUpper (1.0 / float d) x.Data n d) }
    row "the same, upper-only Gram (fresh Gram per run, counted)" (fun () -> Rules.DenseStack.tryRunWith true true chain false (upper ()) |> ignore)
    row "KernelFn.compute, nngp + ntk" (fun () -> KernelFn.compute net x None Both |> ignore)

/// `--small [N]`: the table in two child processes (default JIT settings, and nt's); `--small-child N`: one table.
let run (argv: string[]) =
    let arg (flag: string) =
        match Array.IndexOf(argv, flag) with
        | i when i >= 0 && i + 1 < argv.Length && Char.IsDigit(argv[i + 1], 0) -> Some(int argv[i + 1])
        | _ -> None
    match arg "--small-child" with
    | Some n -> table n
    | None ->
        let n = defaultArg (arg "--small") 1024
        for label, env in [ ".NET's default JIT settings", []
                            "TieredCompilation.QuickJitForLoops off (as nt runs)", [ "DOTNET_TC_QuickJitForLoops", "0" ] ] do
            let psi = ProcessStartInfo(Environment.ProcessPath)
            // Run as `dotnet NeuralTangents.Benchmarks.dll`, the process is the dotnet host: pass it the assembly.
            if IO.Path.GetFileNameWithoutExtension Environment.ProcessPath = "dotnet" then
                psi.ArgumentList.Add(Reflection.Assembly.GetEntryAssembly().Location)
            for a in [ "--small-child"; string n ] do psi.ArgumentList.Add a
            psi.RedirectStandardOutput <- true
            psi.UseShellExecute <- false
            for k, v in env do psi.Environment[k] <- v
            use p = Process.Start psi
            let out = p.StandardOutput.ReadToEnd()
            p.WaitForExit()
            if p.ExitCode <> 0 then failwithf "benchmark child (%s) failed with exit code %d" label p.ExitCode
            printfn "%s:" label
            printfn "%s" out
