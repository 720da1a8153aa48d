/// <summary><c>nt kernel</c> with <c>"monte_carlo"</c> or <c>"empirical"</c>: kernels of finite networks of the
/// architecture's widths (neural_tangents' <c>monte_carlo_kernel_fn</c> and <c>empirical_kernel_fn</c>).</summary>
[<RequireQualifiedAccess>]
module NeuralTangents.Cli.FiniteKernel

open System
open System.Diagnostics
open System.IO
open System.Text.Json
open System.Text.Json.Nodes
open NeuralTangents
open NeuralTangents.Cli.CliErrors

/// The request keys this module reads.
let keys = [ "monte_carlo"; "empirical" ]

/// What a finite request asks for.
type Mode =
    /// Monte Carlo estimates; the counts (estimated once each, in increasing order), and whether "n_samples" was a
    /// list (each answer gains a leading axis).
    | MonteCarloMode of options: MonteCarloOptions * isList: bool
    /// One network drawn from the seed; its kernel over blocks of batchSize examples (0: at once).
    | EmpiricalMode of seed: int * traceAxes: int[] * diagonalAxes: int[] * batchSize: int

let private show = RequestIo.show

let private int (key: string) (node: JsonNode) =
    match node with
    | :? JsonValue as v when v.GetValueKind() = JsonValueKind.Number ->
        match v.TryGetValue<int>() with
        | true, i -> i
        | _ ->
            match v.TryGetValue<float>() with
            | true, x when Math.Round x = x -> fail (key + " must be an integer of at most " + string Int32.MaxValue + " in magnitude, got " + (show node))
            | _ -> fail $"{key} must be an integer, got {show node}"
    | _ -> fail $"{key} must be an integer, got {show node}"

let private axes (key: string) (dflt: int[]) (node: JsonNode) =
    match node with
    | null -> dflt
    | :? JsonArray as a -> a |> Seq.map (int key) |> Seq.toArray
    // One axis may be given bare, as neural_tangents' Axes = int | Sequence[int].
    | :? JsonValue as v when v.GetValueKind() = JsonValueKind.Number -> [| int key node |]
    | n -> fail $"{key} must be an axis or a list of axes such as -1 or [-1], got {show n}"

let private checkKeys (what: string) (known: string list) (o: JsonObject) =
    for kv in o do
        if not (List.contains kv.Key known) then
            fail (what + ": unknown key \"" + kv.Key + "\" (known: " + (String.Join(", ", known)) + ")")

/// <summary>The finite mode of a request, or None for the infinite-width kernels.</summary>
/// <exception cref="T:NeuralTangents.Cli.CliError">naming the key or value at fault.</exception>
let modeOf (text: string) : Mode option =
    let o = RequestIo.parseObject "kernel" "{\"arch\": ..., \"x1\": ...}" KernelRequest.knownKeys text
    match o["monte_carlo"], o["empirical"] with
    | null, null -> None
    | _ when RequestIo.tilingKeys |> List.exists (fun k -> not (isNull o[k])) ->
        fail "memory_gb and batch_size tile the infinite-width kernels, not monte_carlo or empirical; remove them (monte_carlo takes its own \"batch_size\", and so does empirical)"
    | _ when (match o["kwargs"] with
              | :? JsonObject as k -> not (isNull k["diagonal_batch"] && isNull k["diagonal_spatial"])
              | _ -> false) ->
        fail "kwargs: diagonal_batch and diagonal_spatial apply only to the infinite-width kernels, not with monte_carlo or empirical; remove \"kwargs\" (or keep only \"pattern\" and \"rng\" there)"
    | _ when (match o["kwargs"] with :? JsonObject as k -> not (isNull k["mask_constant"]) | _ -> false) ->
        fail "kwargs: mask_constant applies only to the infinite-width kernels (neural_tangents' kernel_fn), not with monte_carlo or empirical; remove it, or drop \"monte_carlo\"/\"empirical\" for the masked infinite-width kernel"
    | (:? JsonObject as mc), null ->
        checkKeys "monte_carlo" [ "n_samples"; "seed"; "batch_size"; "trace_axes"; "diagonal_axes" ] mc
        let counts, isList =
            match mc["n_samples"] with
            | null -> fail "monte_carlo: \"n_samples\" is required: a count such as 100, or a list such as [10, 100, 1000]"
            | :? JsonArray as a -> (a |> Seq.map (int "monte_carlo: n_samples") |> Seq.toList), true
            | n -> [ int "monte_carlo: n_samples" n ], false
        if List.isEmpty counts then fail "monte_carlo: n_samples is an empty list; give at least one count ≥ 1"
        match counts |> List.tryFind (fun n -> n < 1) with
        | Some n -> fail $"monte_carlo: n_samples must be ≥ 1, got {string n}"
        | None -> ()
        let seed = match mc["seed"] with null -> 0 | n -> int "monte_carlo: seed" n
        let o0 = MonteCarlo.options seed counts
        Some(MonteCarloMode(
                { o0 with
                    BatchSize = (match mc["batch_size"] with null -> 0 | n -> int "monte_carlo: batch_size" n)
                    TraceAxes = axes "monte_carlo: trace_axes" [| -1 |] mc["trace_axes"]
                    DiagonalAxes = axes "monte_carlo: diagonal_axes" [||] mc["diagonal_axes"] },
                isList))
    | null, (:? JsonObject as e) ->
        checkKeys "empirical" [ "seed"; "trace_axes"; "diagonal_axes"; "batch_size" ] e
        let seed = match e["seed"] with null -> 0 | n -> int "empirical: seed" n
        let batchSize = match e["batch_size"] with null -> 0 | n -> int "empirical: batch_size" n
        Some(EmpiricalMode(seed, axes "empirical: trace_axes" [| -1 |] e["trace_axes"], axes "empirical: diagonal_axes" [||] e["diagonal_axes"], batchSize))
    | null, n -> fail $"empirical: must be an object such as {{\"seed\": 0}}, got {show n}"
    | n, null -> fail $"monte_carlo: must be an object such as {{\"n_samples\": 100, \"seed\": 0}}, got {show n}"
    | _ -> fail "monte_carlo and empirical: give one of them, not both"

/// Estimates stacked along a new leading axis (one slice per count).
let private stack (ts: Tensor list) =
    let t0 = List.head ts
    Tensor.create (Array.append [| ts.Length |] t0.Shape) (ts |> List.toArray |> Array.collect (fun t -> t.Data))

/// <summary>Computes the finite kernels of a parsed request and writes the JSON response: "nngp" and/or "ntk"
/// (with a list of counts, one estimate per distinct count, increasing, along a new leading axis), then "elapsed_ms".</summary>
let run (cancel: Threading.CancellationToken) (req: KernelRequest) (mode: Mode) (stdout: TextWriter) : unit =
    RequestIo.prepareOut req.Out
    let path name = req.Out |> Option.map (fun prefix -> prefix + "." + name + ".npy")
    // The answer files this request writes (nngp and ntk, as "get" asks) must not exist yet, unless "overwrite".
    RequestIo.refuseExisting req.Overwrite
        ([ (if req.Get <> Ntk then Some "nngp" else None); (if req.Get.WantsNtk then Some "ntk" else None) ] |> List.choose (Option.bind path))
    let sw = Stopwatch.StartNew()
    // apply_fn's keyword arguments (neural_tangents' **apply_fn_kwargs): the random key and the pattern, split
    // between f(x1) and f(x2) as utils.split_kwargs does (pattern1 to x1, pattern2 to x2; the key as splitContext).
    let withPattern (p: Tensor option) (ctx: ApplyContext) =
        match p with
        | Some t -> { ctx with Side = ctx.Side.Add("pattern", t) }
        | None -> ctx
    let ctx = { ApplyContext.Empty with Rng = req.RngSeed |> Option.map Rng.ofSeed }
    let hasContext = req.RngSeed.IsSome || req.Pattern.IsSome
    let nngp, ntk =
        match mode with
        | EmpiricalMode(seed, t, d, batchSize) ->
            let _, p = InitFn.init seed req.Arch req.X1.Shape
            if not hasContext then
                MonteCarlo.empiricalKernelBatched batchSize t d cancel None req.Arch p req.X1 req.X2 req.Get
            else
                if batchSize <> 0 then
                    fail $"empirical: batch_size {string batchSize} with kwargs rng or pattern is not supported (each block would need its slice of the pattern and of the key); use batch_size 0"
                let c1, c2 = Empirical.splitContext ctx req.X1 req.X2
                let c1 = withPattern (req.Pattern |> Option.map fst) c1
                let c2 = withPattern (req.Pattern |> Option.map snd) c2
                Empirical.kernelFnWith c1 c2 req.Arch t d req.X1 req.X2 req.Get p
        | MonteCarloMode(options, isList) ->
            let options = { options with Cancellation = cancel }
            let ks =
                if not hasContext then MonteCarlo.computeWith options req.Arch req.X1 req.X2 req.Get
                else
                    match req.Pattern, req.X2 with
                    | Some(p1, p2), Some _ when not (p1.Shape = p2.Shape && p1.Data = p2.Data) ->
                        fail "monte_carlo: kwargs.pattern with two different patterns for x1 and x2 is not supported by this port's Monte Carlo (one pattern serves both calls); use empirical, or x2 null with [pattern1, pattern1]"
                    | _ -> ()
                    MonteCarlo.computeWithContext (withPattern (req.Pattern |> Option.map fst) ctx) options req.Arch req.X1 req.X2 req.Get
            if isList then
                let pick f = if List.forall (fun k -> Option.isSome (f k)) ks then Some(stack (ks |> List.map (f >> Option.get))) else None
                pick fst, pick snd
            else List.head ks
    let ms = sw.Elapsed.TotalMilliseconds
    let items = [ "nngp", nngp; "ntk", ntk ] |> List.choose (fun (n, t) -> t |> Option.map (fun t -> n, t))
    for name, t in items do
        RequestIo.checkFinite name "the inputs or weights are too large for this network; rescale x1 (and x2)" t
    // Files first: a failure to write them leaves stdout empty. Then nothing can fail but the output itself, so the
    // answer goes straight to stdout (its buffer) rather than through an in-memory copy of ~20 chars per number.
    RequestIo.writeAll req.Overwrite (items |> List.choose (fun (name, t) -> path name |> Option.map (fun p -> p, t)))
    stdout.Write("{\n")
    for name, t in items do
        stdout.Write("  \"" + name + "\": ")
        match path name with
        | None -> JsonArrays.writeTensor stdout 2 t
        | Some p -> stdout.Write(JsonArrays.quote p)
        stdout.Write(",\n")
    stdout.Write("  \"elapsed_ms\": ")
    stdout.Write(JsonArrays.formatNumber (Math.Round(ms, 3)))
    stdout.Write("\n}\n")
    stdout.Flush()
