namespace NeuralTangents.Cli

open System
open System.IO
open System.Text.Json
open System.Text.Json.Nodes
open NeuralTangents
open NeuralTangents.Cli.CliErrors

/// <summary>A parsed <c>nt kernel</c> request, inputs loaded.</summary>
type KernelRequest =
    { /// The network.
      Arch: Layer
      X1: Tensor
      /// None when x2 is null or absent (x2 = x1).
      X2: Tensor option
      Get: Get
      /// The covariance layout asked for in "kwargs" (neural_tangents' diagonal_batch / diagonal_spatial).
      Layout: LayoutRequest
      /// Output prefix, resolved against the request's folder; None to answer inline.
      Out: string option
      /// "overwrite": true lets the answer files replace existing files at the "out" prefix (default false: refused).
      Overwrite: bool
      /// Tile size and memory budget ("batch_size", "memory_gb").
      Tiling: BatchOptions
      /// neural_tangents' kernel_fn keyword <c>mask_constant</c> ("kwargs": {"mask_constant": c}): input entries
      /// equal to it are masked; None: no masking.
      MaskConstant: float option
      /// neural_tangents' <c>pattern=(pattern1, pattern2)</c> ("kwargs": {"pattern": [A1, A2]}), also bound into the
      /// architecture's Aggregate layers; the finite kernels pass it to apply_fn. None: no pattern.
      Pattern: (Tensor * Tensor) option
      /// The seed of the random key the finite networks' apply_fn receives (neural_tangents' <c>rng</c>, for Dropout
      /// in mode 'train'), "kwargs": {"rng": seed}; only with monte_carlo or empirical. None: no key.
      RngSeed: int option }

/// <summary>Reading <c>nt kernel</c> requests: <c>{"arch", "x1", "x2", "get", "kwargs", "out"}</c>.</summary>
[<RequireQualifiedAccess>]
module KernelRequest =

    let internal knownKeys =
        [ "arch"; "x1"; "x2"; "get"; "kwargs"; "out"; "overwrite" ] @ RequestIo.tilingKeys @ [ "monte_carlo"; "empirical" ] // the last two: FiniteKernel

    let private show = RequestIo.show

    /// An input: a nested list, or the path of a .npy file (relative to baseDir).
    let internal load (baseDir: string) (name: string) (node: JsonNode) : Tensor = RequestIo.load baseDir name node

    let internal input (baseDir: string) (name: string) (node: JsonNode) : Tensor =
        let t = load baseDir name node
        if t.Rank < 2 then
            fail $"""{name}: inputs need a batch axis first and a feature axis last (rank ≥ 2, e.g. [[1, 2, 3]] for one input), got shape [{(String.Join(", ", t.Shape))}]"""
        t

    let internal get (node: JsonNode) : Get =
        let one (n: JsonNode) =
            match n with
            | :? JsonValue as v when v.GetValueKind() = JsonValueKind.String ->
                match v.GetValue<string>() with
                | "nngp" -> Nngp
                | "ntk" -> Ntk
                | other -> fail $"get: unknown quantity \"{CliErrors.clip other}\" (known: \"nngp\", \"ntk\")"
            | n -> fail $"get: must be \"nngp\", \"ntk\" or a list of them, got {show n}"
        let items =
            match node with
            | null -> [ Nngp; Ntk ]
            | :? JsonArray as a ->
                if a.Count = 0 then fail "get: the list is empty; ask for \"nngp\", \"ntk\" or both"
                a |> Seq.map one |> Seq.toList
            | n -> [ one n ]
        match List.contains Nngp items, List.contains Ntk items with
        | true, true -> Both
        | false, true -> Ntk
        | _ -> Nngp

    /// The "kwargs" object: neural_tangents' kernel_fn keyword arguments diagonal_batch and diagonal_spatial, each
    /// true, false or null (= not set); absent means no override.
    let internal kwargs (node: JsonNode) : LayoutRequest =
        let known = [ "diagonal_batch"; "diagonal_spatial"; "pattern"; "mask_constant"; "rng" ]
        match node with
        | null -> LayoutRequest.Auto
        | :? JsonObject as o ->
            for kv in o do
                if not (List.contains kv.Key known) then
                    fail ("kwargs: unknown key \"" + kv.Key + "\" (known: " + (String.Join(", ", known)) + ")")
            let flag (key: string) =
                match o[key] with
                | null -> None
                | :? JsonValue as v when v.GetValueKind() = JsonValueKind.True -> Some true
                | :? JsonValue as v when v.GetValueKind() = JsonValueKind.False -> Some false
                | n -> fail $"kwargs: {key} must be true, false or null, got {show n}"
            { DiagonalBatch = flag "diagonal_batch"; DiagonalSpatial = flag "diagonal_spatial" }
        | n -> fail $"kwargs: must be an object such as {{\"diagonal_spatial\": false}}, got {show n}"

    /// The "pattern" of "kwargs" (neural_tangents' kernel_fn(..., pattern=(A1, A2)) for Aggregate layers): a list
    /// of two arrays (nested lists or .npy paths), or absent.
    let internal pattern (baseDir: string) (node: JsonNode) : (Tensor * Tensor) option =
        match node with
        | :? JsonObject as o ->
            match o["pattern"] with
            | null -> None
            | :? JsonArray as arr when arr.Count = 2 ->
                Some(load baseDir "kwargs.pattern[0]" arr[0], load baseDir "kwargs.pattern[1]" arr[1])
            | n -> fail $"kwargs: pattern must be a list of two arrays [pattern1, pattern2] (with x2 null, pattern1 twice), got {show n}"
        | _ -> None

    /// The "mask_constant" of "kwargs" (neural_tangents' kernel_fn(..., mask_constant=c)): a number, or "nan",
    /// "inf", "-inf" (JSON has no such numbers); null or absent for no masking.
    let internal maskConstant (node: JsonNode) : float option =
        match node with
        | :? JsonObject as o ->
            match o["mask_constant"] with
            | null -> None
            | :? JsonValue as v when v.GetValueKind() = JsonValueKind.Number -> Some(v.GetValue<float>())
            | :? JsonValue as v when v.GetValueKind() = JsonValueKind.String ->
                match v.GetValue<string>().ToLowerInvariant() with
                | "nan" -> Some Double.NaN
                | "inf" | "infinity" -> Some Double.PositiveInfinity
                | "-inf" | "-infinity" -> Some Double.NegativeInfinity
                | other -> fail $"kwargs: mask_constant must be a number, \"nan\", \"inf\" or \"-inf\", got \"{CliErrors.clip other}\""
            | n -> fail $"kwargs: mask_constant must be a number, \"nan\", \"inf\" or \"-inf\", got {show n}"
        | _ -> None

    /// <summary>Parses a request and loads its inputs.</summary>
    /// <param name="baseDir">Folder against which relative paths ("x1", "x2", "out") resolve.</param>
    /// <param name="text">The request's JSON text.</param>
    /// <exception cref="T:NeuralTangents.Cli.CliError">naming the key or value at fault.</exception>
    /// <exception cref="T:NeuralTangents.Json.JsonArchitectureException">for an architecture that cannot be read.</exception>
    let parse (baseDir: string) (text: string) : KernelRequest =
        let o = RequestIo.parseObject "kernel" "{\"arch\": ..., \"x1\": ...}" knownKeys text
        let required = RequestIo.required o
        let arch = RequestIo.arch o
        let out = RequestIo.outPrefix baseDir o["out"]
        // Aggregate layers read the call's pattern: it is bound into the architecture for this request.
        let pat = pattern baseDir o["kwargs"]
        let arch =
            match pat with
            | Some p -> NeuralTangents.Layers.Aggregation.bindPattern p arch
            | None -> arch
        let rngSeed =
            match o["kwargs"] with
            | :? JsonObject as k ->
                match k["rng"] with
                | null -> None
                | :? JsonValue as v when v.GetValueKind() = JsonValueKind.Number && fst (v.TryGetValue<int>()) ->
                    if isNull o["monte_carlo"] && isNull o["empirical"] then
                        fail "kwargs: rng (the random key of apply_fn, for Dropout in mode 'train') applies only to the finite kernels; add \"monte_carlo\" or \"empirical\", or remove it (the infinite-width kernels need no key)"
                    Some(v.GetValue<int>())
                | n -> fail $"kwargs: rng must be an integer seed of the random key, got {show n}"
            | _ -> None
        { Arch = arch
          X1 = input baseDir "x1" (required "x1")
          X2 = (match o["x2"] with null -> None | n -> Some(input baseDir "x2" n))
          Get = get o["get"]
          Layout = kwargs o["kwargs"]
          Out = out
          Overwrite = RequestIo.overwrite o
          Tiling = RequestIo.tiling o
          MaskConstant = maskConstant o["kwargs"]
          Pattern = pat
          RngSeed = rngSeed }
