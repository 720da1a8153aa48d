/// Per-activation throughput of the kernel step: millions of (nngp, ntk) entries per second that one activation
/// layer maps, on an (N, N) Gaussian kernel after a Dense layer (diagonal batch, no spatial axes: the layout the
/// MLP takes). `dotnet fsi build.fsx bench --activations [--quick]`. Median of 5 runs after 2 warm-ups, wall and CPU time.
module NeuralTangents.Benchmarks.Activations

open System
open System.Diagnostics
open NeuralTangents
open NeuralTangents.Benchmarks.Data

/// Median wall time and median CPU time (this process, all threads) in seconds of `runs` calls after `warmup`
/// calls. CPU time is the figure to compare on a shared machine: other processes' load inflates wall time but
/// not (much) the work this process does.
let private time (warmup: int) (runs: int) (f: unit -> unit) =
    for _ in 1 .. warmup do f ()
    let proc = Process.GetCurrentProcess()
    let once () =
        proc.Refresh()
        let cpu0 = proc.TotalProcessorTime
        let sw = Stopwatch.StartNew()
        f ()
        let wall = sw.Elapsed.TotalSeconds
        proc.Refresh()
        wall, (proc.TotalProcessorTime - cpu0).TotalSeconds
    let ts = Array.init runs (fun _ -> once ())
    let median (xs: float[]) = Array.sortInPlace xs; xs[runs / 2]
    median (Array.map fst ts), median (Array.map snd ts)

let private cases =
    [ "Relu", Stax.relu; "LeakyRelu(0.1)", Stax.leakyRelu 0.1; "Abs", Stax.abs; "Erf", Stax.erf 1.0 1.0 0.0
      "Sigmoid_like", Stax.sigmoidLike; "Gelu", Stax.gelu false; "Sin", Stax.sin 1.0 1.0 0.0; "Cos", Stax.cos 1.0 1.0 0.0
      "Monomial(3)", Stax.monomial 3; "Exp", Stax.exp 1.0 0.5; "Gaussian", Stax.gaussian 1.0 -1.0
      "ExpNormalized", Stax.expNormalized 1.0 -1.0 false; "Rbf", Stax.rbf 1.0; "Sign", Stax.sign; "Gabor", Stax.gabor
      "Hermite(3)", Stax.hermite 3; "RectifiedMonomial(2)", Stax.rectifiedMonomial 2
      "Polynomial(deg 3)", Stax.polynomial [ 0.3; -0.5; 0.8; 0.2 ]
      "ElementwiseNumerical tanh deg 25", Stax.elementwiseNumerical "tanh" 25 None
      "Elementwise(erf map, dual)", Stax.elementwiseDual "erf" None None (fun c q1 q2 ->
          2.0 / System.Math.PI * Dual.Asin(2.0 * c / sqrt ((1.0 + 2.0 * q1) * (1.0 + 2.0 * q2)))) ]

/// Prints a Markdown table: activation, N, median seconds, M entries/s.
let run (quick: bool) =
    let n = if quick then 512 else 2048
    let d = 64
    let x = Tensor.create [| n; d |] (normals 42 (n * d))
    let k0 = KernelFn.compute (Stax.dense 512 1.2 (Some 0.1)) x None Both
    printfn "Kernel step of one activation on an (N, N) Gaussian kernel (nngp + ntk), median of 5 runs; machine shared."
    printfn "| activation | N | time (ms) | CPU (ms) | M entries/s | M entries/CPU-s |"
    printfn "|---|---|---|---|---|---|"
    for name, layer in cases do
        // Numerical quadrature costs deg² evaluations per entry: time it on a smaller kernel.
        let m = if name.StartsWith "ElementwiseNumerical" then n / 8 else n
        let k = if m = n then k0 else KernelFn.compute (Stax.dense 512 1.2 (Some 0.1)) (Tensor.create [| m; d |] x.Data[.. m * d - 1]) None Both
        let t, cpu = time 2 5 (fun () -> KernelFn.applyKernel layer k |> ignore)
        let entries = float m * float m / 1e6
        printfn "| %s | %d | %.2f | %.2f | %.3g | %.3g |" name m (t * 1e3) (cpu * 1e3) (entries / t) (entries / cpu)
