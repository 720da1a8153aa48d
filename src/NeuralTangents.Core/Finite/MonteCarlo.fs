namespace NeuralTangents

open System
open System.Threading
open System.Threading.Tasks

/// <summary>Settings of a Monte Carlo kernel estimate (neural_tangents' <c>monte_carlo_kernel_fn</c> arguments).</summary>
type MonteCarloOptions =
    { /// Sample counts: one estimate per count, all from one pass over the largest (neural_tangents' n_samples,
      /// an int or a list of ints).
      NSamples: int list
      /// Root key; sample s uses the key split at s, whatever the thread that draws it.
      Key: RngKey
      /// neural_tangents' batch_size: 0 (the default) for the whole batch, else it must divide N1 and N2. The
      /// estimate does not depend on it (each example is pulled back on its own here).
      BatchSize: int
      /// neural_tangents' trace_axes (default [| -1 |]).
      TraceAxes: int[]
      /// neural_tangents' diagonal_axes (default [||]).
      DiagonalAxes: int[]
      /// Cancels between samples (OperationCanceledException).
      Cancellation: CancellationToken
      /// Called on the calling thread with the number of samples done, in increasing order.
      Progress: (int -> unit) option
      /// Samples drawn at once (≥ 1; default: the number of cores). Bounds the memory to this many kernels.
      Parallelism: int }

/// <summary>Monte Carlo estimates of the NNGP and NTK: averages of empirical kernels over random initialisations
/// of the finite network (neural_tangents' <c>monte_carlo_kernel_fn</c>).</summary>
/// <remarks>Sample s draws its parameters with <c>InitFn.initWithKey (Rng.split s key)</c>; samples are computed in
/// parallel in groups, but summed in sample order, so the result does not depend on thread scheduling. For n
/// samples the estimate's error is O(1/√n) (each sample is an independent finite-width kernel; their mean is
/// unbiased for the finite-width expectation, which tends to the analytic kernel as the widths grow).</remarks>
[<RequireQualifiedAccess>]
module MonteCarlo =

    /// <summary>Options for <paramref name="nSamples"/> samples and the given seed, with neural_tangents' defaults
    /// (batch_size 0, trace_axes (-1,), diagonal_axes ()).</summary>
    [<CompiledName("Options")>]
    let options (seed: int) (nSamples: int list) : MonteCarloOptions =
        { NSamples = nSamples
          Key = Rng.ofSeed seed
          BatchSize = 0
          TraceAxes = [| -1 |]
          DiagonalAxes = [||]
          Cancellation = CancellationToken.None
          Progress = None
          Parallelism = Environment.ProcessorCount }

    let private validate (o: MonteCarloOptions) (x1: Tensor) (x2: Tensor option) =
        if List.isEmpty o.NSamples then invalidArg "n_samples" "monte_carlo_kernel_fn: n_samples is empty; give at least one count ≥ 1"
        match o.NSamples |> List.tryFind (fun n -> n < 1) with
        | Some n -> invalidArg "n_samples" (sprintf "monte_carlo_kernel_fn: n_samples must be ≥ 1, got %d" n)
        | None -> ()
        if o.Parallelism < 1 then invalidArg "parallelism" (sprintf "monte_carlo_kernel_fn: parallelism must be ≥ 1, got %d" o.Parallelism)
        if o.BatchSize < 0 then invalidArg "batch_size" (sprintf "monte_carlo_kernel_fn: batch_size must be ≥ 0, got %d" o.BatchSize)
        let axis = 0
        let n1 = x1.Shape[axis]
        let n2 = match x2 with Some x -> x.Shape[axis] | None -> n1
        if o.BatchSize > 0 && (n1 % o.BatchSize <> 0 || n2 % o.BatchSize <> 0) then
            invalidArg "batch_size" (sprintf "monte_carlo_kernel_fn: batch_size %d must divide the batch sizes N1 = %d and N2 = %d; use a divisor or 0" o.BatchSize n1 n2)

    /// <summary>Monte Carlo estimates, one per count of <c>options.NSamples</c> (in that order), all from one pass
    /// over the largest count: the estimate for n is the mean of the empirical kernels of samples 0 … n − 1, each
    /// computed with the side inputs of <paramref name="ctx"/> (neural_tangents' <c>**apply_fn_kwargs</c>). When
    /// <paramref name="ctx"/> has a random key, sample s applies the network with the key split at s (neural_tangents
    /// draws a fresh dropout key per sample), split again for x2 as <c>Empirical.splitContext</c> says.</summary>
    /// <param name="ctx">Random key (for Dropout in mode 'train') and named side inputs (e.g. "pattern").</param>
    /// <param name="options">Counts, key, axes, cancellation, progress.</param>
    /// <param name="layer">The network (its finite widths are the layers' widths).</param>
    /// <param name="x1">First inputs; the parameters are drawn for x1's shape.</param>
    /// <param name="x2">Second inputs, or None for x1.</param>
    /// <param name="get">Nngp, Ntk or Both.</param>
    /// <returns>(nngp, ntk) per count, each Some when asked for, shaped as <c>Empirical.kernelFn</c> returns them.</returns>
    /// <exception cref="T:System.OperationCanceledException">when cancelled.</exception>
    [<CompiledName("ComputeWithContext")>]
    let computeWithContext (ctx: ApplyContext) (options: MonteCarloOptions) (layer: Layer) (x1: Tensor) (x2: Tensor option) (get: Get)
            : (Tensor option * Tensor option) list =
        validate options x1 x2
        let counts = Set.ofList options.NSamples
        let total = Set.maxElement counts
        let sample s =
            let _, p = InitFn.initWithKey (Rng.split s options.Key) layer x1.Shape
            let ctx1, ctx2 = Empirical.splitContext { ctx with Rng = ctx.Rng |> Option.map (Rng.split s) } x1 x2
            Empirical.kernelFnWith ctx1 ctx2 layer options.TraceAxes options.DiagonalAxes x1 x2 get p
        let mutable sumNngp: float[] option = None
        let mutable sumNtk: float[] option = None
        let mutable shapes = ([||], [||])
        let estimates = Collections.Generic.Dictionary<int, Tensor option * Tensor option>()
        let accumulate (acc: float[] option) (k: Tensor option) =
            match acc, k with
            | None, Some t -> Some(Array.copy t.Data)
            | Some a, Some t ->
                for i in 0 .. a.Length - 1 do a[i] <- a[i] + t.Data[i]
                Some a
            | a, None -> a
        let mean (shape: int[]) (acc: float[] option) (n: int) =
            acc |> Option.map (fun a -> Tensor.create shape (a |> Array.map (fun v -> v / float n)))
        let mutable start = 0
        while start < total do
            options.Cancellation.ThrowIfCancellationRequested()
            let group = min options.Parallelism (total - start)
            let results = Array.zeroCreate group
            let po = ParallelOptions(CancellationToken = options.Cancellation, MaxDegreeOfParallelism = options.Parallelism)
            Parallel.For(0, group, po, fun g -> results[g] <- sample (start + g)) |> ignore
            // summed in sample order: the result does not depend on which thread finished first
            for g in 0 .. group - 1 do
                let nngp, ntk = results[g]
                shapes <- ((nngp |> Option.map (fun t -> t.Shape) |> Option.defaultValue (fst shapes)),
                           (ntk |> Option.map (fun t -> t.Shape) |> Option.defaultValue (snd shapes)))
                sumNngp <- accumulate sumNngp nngp
                sumNtk <- accumulate sumNtk ntk
                let n = start + g + 1
                if counts.Contains n then
                    estimates[n] <- (mean (fst shapes) sumNngp n, mean (snd shapes) sumNtk n)
            start <- start + group
            options.Progress |> Option.iter (fun report -> report start)
        options.NSamples |> List.map (fun n -> estimates[n])

    /// <summary>Monte Carlo estimates without a random key or side inputs (see <c>computeWithContext</c>).</summary>
    /// <param name="options">Counts, key, axes, cancellation, progress.</param>
    /// <param name="layer">The network (its finite widths are the layers' widths).</param>
    /// <param name="x1">First inputs; the parameters are drawn for x1's shape.</param>
    /// <param name="x2">Second inputs, or None for x1.</param>
    /// <param name="get">Nngp, Ntk or Both.</param>
    /// <returns>(nngp, ntk) per count, each Some when asked for.</returns>
    /// <exception cref="T:System.OperationCanceledException">when cancelled.</exception>
    [<CompiledName("ComputeWith")>]
    let computeWith (options: MonteCarloOptions) (layer: Layer) (x1: Tensor) (x2: Tensor option) (get: Get)
            : (Tensor option * Tensor option) list =
        computeWithContext ApplyContext.Empty options layer x1 x2 get

    /// <summary>neural_tangents' <c>monte_carlo_kernel_fn(init_fn, apply_fn, key, n_samples)(x1, x2, get)</c> for
    /// one count, with the default axes.</summary>
    /// <param name="layer">The network.</param>
    /// <param name="seed">Seed of the root key.</param>
    /// <param name="nSamples">Number of random initialisations averaged.</param>
    /// <param name="x1">First inputs.</param>
    /// <param name="x2">Second inputs, or None for x1.</param>
    /// <param name="get">Nngp, Ntk or Both.</param>
    /// <returns>(nngp, ntk), each Some when asked for.</returns>
    [<CompiledName("KernelFn")>]
    let kernelFn (layer: Layer) (seed: int) (nSamples: int) (x1: Tensor) (x2: Tensor option) (get: Get)
            : Tensor option * Tensor option =
        computeWith (options seed [ nSamples ]) layer x1 x2 get |> List.head
