namespace NeuralTangents

open System
open System.Threading
open System.Threading.Tasks
open NeuralTangents.Layers

/// <summary>Settings of a Monte Carlo kernel estimate (neural_tangents' <c>monte_carlo_kernel_fn</c> arguments).</summary>
type MonteCarloOptions =
    { /// Sample counts: one estimate per count, all from one pass over the largest (neural_tangents' n_samples,
      /// an int or a list of ints).
      NSamples: int list
      /// Root key; sample s uses the key split at s, whatever the thread that draws it.
      Key: RngKey
      /// neural_tangents' batch_size: 0 (the default) for the whole kernel at once, else each sample's kernel is
      /// computed over blocks of min(batch_size, gcd(N1, N2)) examples of x1 and x2, which must divide N1 and N2:
      /// the working memory of one sample is that of 2·batch_size examples instead of N1 + N2. The estimate does
      /// not depend on it, bit for bit (each example is pulled back on its own here).
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

    let private validate (o: MonteCarloOptions) =
        if List.isEmpty o.NSamples then invalidArg "n_samples" "monte_carlo_kernel_fn: n_samples is empty; give at least one count ≥ 1"
        match o.NSamples |> List.tryFind (fun n -> n < 1) with
        | Some n -> invalidArg "n_samples" $"monte_carlo_kernel_fn: n_samples must be ≥ 1, got {string n}"
        | None -> ()
        if o.Parallelism < 1 then invalidArg "parallelism" $"monte_carlo_kernel_fn: parallelism must be ≥ 1, got {string o.Parallelism}"
        if o.BatchSize < 0 then invalidArg "batch_size" $"monte_carlo_kernel_fn: batch_size must be ≥ 0, got {string o.BatchSize}"

    /// <summary>A progress report of a blocked kernel computation: blocks done of the total.</summary>
    type BlockProgress = { BlocksDone: int; BlocksTotal: int }

    /// Examples start … start + count − 1 of x along its batch axis a (the axis kept, of size count).
    let private takeRange (a: int) (start: int) (count: int) (x: Tensor) =
        let front = if a = 0 then x else Tensor.moveAxis a 0 x
        let inner = if front.Shape[0] = 0 then 0 else front.Length / front.Shape[0]
        let shape = Array.copy front.Shape
        shape[0] <- count
        let block = Tensor.create shape (Array.sub front.Data (start * inner) (count * inner))
        if a = 0 then block else Tensor.moveAxis 0 a block

    /// <summary>neural_tangents' serial batching of one sample's empirical kernel (<c>nt.batch(…, batch_size)</c>
    /// around <c>kernel_fn_sample_once</c>): the kernel over blocks of <c>b</c> examples of x1 against blocks of
    /// <c>b</c> examples of x2, each block from the same parameters, assembled into the whole kernel.</summary>
    /// <remarks>As in neural_tangents' <c>_get_n_batches_and_batch_sizes</c>, the block size is
    /// min(batch_size, gcd(N1, N2)) and must divide N1 and N2. Only one block's forward tapes and factored
    /// gradients (2·b examples) are alive at a time instead of N1 + N2 examples', at the cost of recomputing each
    /// example's pass once per block it meets (2·N1·N2/b passes). Each example is pulled back on its own here, so
    /// every entry is the same product of the same numbers as in the unbatched kernel: the answers are equal bit for
    /// bit. The kernel's axes for the examples (the output's batch axis) must be neither traced nor diagonal; the
    /// block of a kernel of shape (…, b1, b2, …) lands at rows i·b and columns j·b of (…, N1, N2, …).</remarks>
    let private blockedKernel (what: string) (requested: int) (traceAxes: int[]) (diagonalAxes: int[])
                              (cancel: CancellationToken) (copies: int) (onBlock: int -> int -> unit)
                              (layer: Layer) (p: Params) (x1: Tensor) (x2: Tensor option) (get: Get) =
        if requested < 0 then invalidArg "batch_size" $"{what}: batch_size must be ≥ 0, got {string requested}"
        let axis = fst (Requirements.inputAxes x1.Rank (Requirements.ofLayer layer))
        let a = Axes.norm x1.Rank axis
        let n1 = x1.Shape[a]
        let x2v = defaultArg x2 x1
        let n2 = x2v.Shape[a]
        let gcd = int (Numerics.BigInteger.GreatestCommonDivisor(Numerics.BigInteger n1, Numerics.BigInteger n2))
        let b = if requested = 0 then max n1 n2 else min requested gcd
        let empty = n1 = 0 || n2 = 0 // Empirical.kernelFn refuses it with its message
        if requested > 0 && not empty && (n1 % b <> 0 || n2 % b <> 0) then
            invalidArg "batch_size" ((what + ": batch_size " + string requested + " must divide the batch sizes N1 = " + string n1 + " and N2 = " + string n2 + "; use a divisor or 0"))
        cancel.ThrowIfCancellationRequested()
        if requested = 0 || empty || (b = n1 && b = n2) then
            let k = Empirical.kernelFn layer traceAxes diagonalAxes x1 x2 get p
            onBlock 1 1
            k
        else
            let total = (n1 / b) * (n2 / b)
            let outRank = (ApplyFn.apply layer p (takeRange a 0 1 x1)).Rank
            // the output's own batch axis (Flatten(batch_axis_out=1) moves it), not the input's
            let outAxis = Empirical.outputBatchAxis ApplyContext.Empty layer p x1
            // position of the examples' pair of axes in the kernel: two per outer output axis before the batch axis,
            // one per diagonal axis (neural_tangents' _ntk_shape); traced axes vanish
            let canon (axes: int[]) = axes |> Array.map (fun x -> if x < 0 then x + outRank else x)
            let traced, diagonal = canon traceAxes, canon diagonalAxes
            if Array.contains outAxis traced || Array.contains outAxis diagonal then
                invalidArg "batch_size" ((what + ": batch_size " + string requested + " splits the examples, but the output's batch axis " + string outAxis + " is in trace_axes " + Show.ints traceAxes + " or diagonal_axes " + Show.ints diagonalAxes + "; use batch_size 0"))
            let pos = Seq.sum (seq { for x in 0 .. outAxis - 1 -> if Array.contains x traced then 0 elif Array.contains x diagonal then 1 else 2 })
            // the whole kernel, allocated at the first block (its shape is the block's with N1, N2 for b, b)
            let place (acc: (int[] * float[]) option) (bi: int) (bj: int) (block: Tensor option) =
                match block with
                | None -> None
                | Some k ->
                    let bs = k.Shape
                    let outer = Array.fold (*) 1 bs[.. pos - 1]
                    let inner = Array.fold (*) 1 bs[pos + 2 ..]
                    let shape, full =
                        match acc with
                        | Some a -> a
                        | None ->
                            // copies: the kernels alive at once (a Monte Carlo pass holds one per sample in flight)
                            Memory.checkKernel (int64 n1) (int64 n2) (int64 outer * int64 inner) copies
                            Array.concat [ bs[.. pos - 1]; [| n1; n2 |]; bs[pos + 2 ..] ], Array.zeroCreate (outer * n1 * n2 * inner)
                    for u in 0 .. outer - 1 do
                        for i in 0 .. b - 1 do
                            for j in 0 .. b - 1 do
                                let src = ((u * b + i) * b + j) * inner
                                let dst = ((u * n1 + bi * b + i) * n2 + bj * b + j) * inner
                                Array.blit k.Data src full dst inner
                    Some(shape, full)
            let mutable nngp = None
            let mutable ntk = None
            for bi in 0 .. n1 / b - 1 do
                for bj in 0 .. n2 / b - 1 do
                    cancel.ThrowIfCancellationRequested()
                    let xb1 = takeRange a (bi * b) b x1
                    // a diagonal block of x1 against itself shares its forward passes (x2 = None)
                    let xb2 = if x2.IsNone && bi = bj then None else Some(takeRange a (bj * b) b x2v)
                    let kn, kt = Empirical.kernelFn layer traceAxes diagonalAxes xb1 xb2 get p
                    nngp <- place nngp bi bj kn
                    ntk <- place ntk bi bj kt
                    onBlock (bi * (n2 / b) + bj + 1) total
            let tensor = Option.map (fun (shape, data) -> Tensor.create shape data)
            tensor nngp, tensor ntk

    /// Whether the network draws random numbers when applied (Dropout in mode 'train').
    let private needsKey = Definitions.exists (function Dropout d -> d.Mode = DropoutMode.Train | _ -> false)

    /// <summary>Refuses a Monte Carlo estimate whose working set does not fit <paramref name="budget"/> bytes (None:
    /// the free memory), before the first sample is drawn: per sample in flight (up to <c>Parallelism</c> at once)
    /// its parameters and the empirical kernel's working set (<c>Empirical.requirement</c>; of blocks of
    /// batch_size examples when given, plus the assembled kernels), and the running sums and estimates kept.</summary>
    let internal checkMemory (budget: int64 option) (ctx: ApplyContext) (options: MonteCarloOptions) (layer: Layer)
                             (x1: Tensor) (x2: Tensor option) (get: Get) =
        let x2v = defaultArg x2 x1
        if not (Array.contains 0 x1.Shape || Array.contains 0 x2v.Shape) then
            let a = Axes.norm x1.Rank (fst (Requirements.inputAxes x1.Rank (Requirements.ofLayer layer)))
            let n1, n2 = x1.Shape[a], x2v.Shape[a]
            let counts = Set.ofList options.NSamples
            let inFlight = int64 (min options.Parallelism (Set.maxElement counts))
            let kernels = if get = Both then 2 else 1
            let entries o1 o2 =
                defaultArg (Memory.product (Empirical.kernelShape o1 o2 options.TraceAxes options.DiagonalAxes |> Seq.map int64)) Int64.MaxValue
            let blocked = options.BatchSize > 0 && ctx.Rng.IsNone && ctx.Side.IsEmpty
            let b = if blocked then min options.BatchSize (int (Numerics.BigInteger.GreatestCommonDivisor(Numerics.BigInteger n1, Numerics.BigInteger n2))) else 0
            let at (n: int) (x: Tensor) = Array.updateAt a n x.Shape
            let s1, s2 = (if b > 0 then at b x1 else x1.Shape), (if b > 0 then Some(at b x2v) elif x2.IsSome then Some x2v.Shape else None)
            let work = Empirical.requirement ctx layer s1 s2 get.WantsNtk kernels entries
            let whole = InitFn.footprint layer x1.Shape
            let outputs2 = if x2.IsSome then (InitFn.footprint layer x2v.Shape).Output else whole.Output
            let full = Memory.mulSat (int64 kernels) (entries whole.Output outputs2)
            let perSample =
                [ yield "parameters", whole.Parameters
                  yield! work
                  if b > 0 then yield "assembled kernels", full ]
            Memory.checkTotal budget
                ("monte_carlo_kernel_fn with " + string inFlight + " samples at a time on N1 = " + string n1 + " by N2 = " + string n2 + " inputs")
                [ for name, v in perSample do yield name, Memory.mulSat inFlight v
                  yield "sums and estimates", Memory.mulSat (int64 (1 + counts.Count)) full ]
                "draw fewer samples at a time (parallelism), use batch_size, fewer inputs or smaller widths"

    /// <summary>Monte Carlo estimates, one per distinct count of <c>options.NSamples</c> in increasing order (as
    /// neural_tangents yields them), all from one pass
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
        validate options
        // neural_tangents splits each sample's key into an init key and a dropout key, so a network with Dropout
        // in mode 'train' needs no key from the caller: without one, the masks come from a child of the root key that
        // no sample's parameters use (sample s draws them below child s), split at s per sample as a caller's key is.
        let ctx =
            if ctx.Rng.IsNone && needsKey layer then { ctx with Rng = Some(Rng.split (Int32.MaxValue - 1) options.Key) } else ctx
        let noContext = ctx.Rng.IsNone && ctx.Side.IsEmpty
        if not noContext && options.BatchSize > 0 then
            // a block would need its own slice of the side inputs and the key split as for the whole batch
            invalidArg "batch_size" ("monte_carlo_kernel_fn: batch_size " + string options.BatchSize + " with a random key or side inputs (" + (String.concat ", " [ if ctx.Rng.IsSome then "rng"; yield! ctx.Side |> Map.keys ]) + ") is not supported; use batch_size 0")
        checkMemory None ctx options layer x1 x2 get
        let counts = Set.ofList options.NSamples
        let total = Set.maxElement counts
        let sample s =
            let _, p = InitFn.initWithKey (Rng.split s options.Key) layer x1.Shape
            if noContext then
                blockedKernel "monte_carlo_kernel_fn" options.BatchSize options.TraceAxes options.DiagonalAxes
                    options.Cancellation (1 + options.Parallelism) (fun _ _ -> ()) layer p x1 x2 get
            else
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
            try
                Parallel.For(0, group, po, fun g -> results[g] <- sample (start + g)) |> ignore
            with :? AggregateException as e when e.InnerExceptions.Count > 0 ->
                // a sample's error (a bad axis, batch size or input) is the caller's, not the thread pool's
                Runtime.ExceptionServices.ExceptionDispatchInfo.Capture(e.InnerExceptions[0]).Throw()
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
        // As neural_tangents (a set of counts, yielded as the running sum reaches each): increasing, each count once.
        counts |> Set.toList |> List.map (fun n -> estimates[n])

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

    /// <summary>neural_tangents' <c>nt.batch(empirical_kernel_fn(f, trace_axes, diagonal_axes), batch_size)(x1, x2,
    /// get, params)</c>: the empirical kernels of one network computed over blocks of <paramref name="batchSize"/>
    /// examples of x1 and x2, cancellable between blocks and reporting each block done.</summary>
    /// <remarks>The answer equals <c>Empirical.kernelFn</c>'s bit for bit (see <c>MonteCarloOptions.BatchSize</c>);
    /// batchSize 0 computes it in one block. Only the working memory of 2·batchSize examples is alive at a time.</remarks>
    /// <param name="batchSize">0, or a block size (reduced to gcd(N1, N2) as neural_tangents does; it must divide N1 and N2).</param>
    /// <param name="traceAxes">Output axes to trace over (neural_tangents' default [| -1 |]).</param>
    /// <param name="diagonalAxes">Output axes to keep the diagonal of (default [||]).</param>
    /// <param name="cancel">Cancels between blocks (OperationCanceledException).</param>
    /// <param name="progress">Called after each block, on the calling thread.</param>
    /// <param name="layer">The network.</param>
    /// <param name="params">Its parameters.</param>
    /// <param name="x1">First inputs.</param>
    /// <param name="x2">Second inputs, or None for x1.</param>
    /// <param name="get">Nngp, Ntk or Both.</param>
    /// <returns>(nngp, ntk), each Some when asked for.</returns>
    [<CompiledName("EmpiricalKernelBatched")>]
    let empiricalKernelBatched (batchSize: int) (traceAxes: int[]) (diagonalAxes: int[]) (cancel: CancellationToken)
                               (progress: (BlockProgress -> unit) option) (layer: Layer) (``params``: Params)
                               (x1: Tensor) (x2: Tensor option) (get: Get) : Tensor option * Tensor option =
        let report d t = progress |> Option.iter (fun f -> f { BlocksDone = d; BlocksTotal = t })
        blockedKernel "empirical_kernel_fn" batchSize traceAxes diagonalAxes cancel 1 report layer ``params`` x1 x2 get
