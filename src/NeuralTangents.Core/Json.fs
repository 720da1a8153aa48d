namespace NeuralTangents

open System
open System.Text.Json
open System.Text.Json.Nodes

/// <summary>Networks as JSON data with neural_tangents' layer and argument names, e.g.
/// <c>{"layer":"serial","layers":[{"layer":"Dense","out_dim":512,"W_std":1.5,"b_std":0.05},{"layer":"Relu"}]}</c>.
/// Omitted arguments take neural_tangents' defaults; <c>"b_std": null</c> means no bias.</summary>
[<RequireQualifiedAccess>]
module Json =

    /// <summary>Raised for a network description that cannot be read; the message names the layer and argument.</summary>
    exception JsonArchitectureException of string with
        override e.Message = e.Data0

    let private fail fmt = Printf.kprintf (fun s -> raise (JsonArchitectureException s)) fmt

    /// The longest echo of a user's value in a message, in characters, before it is cut with "…".
    let private echoLength = 80

    /// A user's text as echoed in a message: control characters escaped (\u001b), cut to about 80 characters, so
    /// that an error stays one short line whatever the request holds.
    let internal clip (s: string) =
        let b = Text.StringBuilder()
        let mutable i = 0
        while i < s.Length && b.Length < echoLength do
            let c = s[i]
            if Char.IsControl c then b.AppendFormat("\\u{0:x4}", int c) |> ignore else b.Append c |> ignore
            i <- i + 1
        if i < s.Length then b.Append '…' |> ignore
        b.ToString()

    /// A JSON node as echoed in a message ("null" for a missing one), cut by <c>clip</c>.
    let private show (node: JsonNode) = if isNull node then "null" else clip (node.ToJsonString())

    /// The text of a JSON string; a lone UTF-16 surrogate (e.g. "\ud800") is an error naming where it is.
    let private text (v: JsonValue) =
        try v.GetValue<string>()
        with :? InvalidOperationException ->
            fail "%s: a string holds an unpaired UTF-16 surrogate (a \\ud800-\\udfff escape without its pair); JSON text must be valid Unicode"
                (clip (v.GetPath()))

    /// neural_tangents layers this library does not implement yet (a clearer error than "unknown").
    let private planned =
        set [ "MaxPool"; "GlobalMaxPool"; "GlobalSelfAttention"; "LayerNorm"; "Dropout"; "Aggregate"; "ImageResize"; "Index"
              "DotGeneral"; "Cos2"; "repeat" ]

    let private tryProp (o: JsonObject) (name: string) : bool * JsonNode =
        let mutable v: JsonNode = null
        let ok = o.TryGetPropertyValue(name, &v)
        ok, v

    /// Reads the named arguments of one layer object, checking names and types.
    type private Args(layer: string, o: JsonObject, known: string list) =
        do
            for KeyValue(k, _) in o do
                if k <> "layer" && not (List.contains k known) then
                    let hint = if known.IsEmpty then "it takes no arguments" else "known: " + String.Join(", ", known)
                    fail "%s: unknown argument '%s' (%s)" layer (clip k) hint

        member _.Has(name: string) = o.ContainsKey name

        member _.Number(name: string, dflt: float) =
            match tryProp o name with
            | true, (:? JsonValue as v) when v.GetValueKind() = JsonValueKind.Number -> v.GetValue<float>()
            | true, null -> fail "%s: argument '%s' must be a number, got null" layer name
            | true, v -> fail "%s: argument '%s' must be a number, got %s" layer name (show v)
            | _ -> dflt

        member a.RequiredNumber(name: string) =
            if not (o.ContainsKey name) then fail "%s: missing required argument '%s'" layer name
            a.Number(name, nan)

        member _.OptNumber(name: string, dflt: float option) =
            match tryProp o name with
            | true, null -> None
            | true, (:? JsonValue as v) when v.GetValueKind() = JsonValueKind.Number -> Some(v.GetValue<float>())
            | true, v -> fail "%s: argument '%s' must be a number or null, got %s" layer name (show v)
            | _ -> dflt

        /// An integer argument in lo..hi (an integral JSON number such as 3 or 3.0); the message states the range.
        member _.Int(name: string, dflt: int, lo: int, hi: int) =
            match tryProp o name with
            | true, (:? JsonValue as v) when v.GetValueKind() = JsonValueKind.Number ->
                let x = v.GetValue<float>()
                if x <> Math.Round x || x < float lo || x > float hi then
                    fail "%s: argument '%s' must be an integer in %d..%d, got %s" layer name lo hi (show v)
                int x
            | true, v -> fail "%s: argument '%s' must be an integer in %d..%d, got %s" layer name lo hi (show v)
            | _ -> dflt

        /// An integer argument that can be any int32 (e.g. an axis, which the layer checks against the input).
        member a.Int(name: string, dflt: int) = a.Int(name, dflt, Int32.MinValue, Int32.MaxValue)

        member a.RequiredInt(name: string, lo: int, hi: int) =
            if not (o.ContainsKey name) then fail "%s: missing required argument '%s'" layer name
            a.Int(name, 0, lo, hi)

        member _.Bool(name: string, dflt: bool) =
            match tryProp o name with
            | true, (:? JsonValue as v) when v.GetValueKind() = JsonValueKind.True -> true
            | true, (:? JsonValue as v) when v.GetValueKind() = JsonValueKind.False -> false
            | true, v -> fail "%s: argument '%s' must be true or false, got %s" layer name (show v)
            | _ -> dflt

        member _.String(name: string, dflt: string) =
            match tryProp o name with
            | true, (:? JsonValue as v) when v.GetValueKind() = JsonValueKind.String -> text v
            | true, v -> fail "%s: argument '%s' must be a string, got %s" layer name (show v)
            | _ -> dflt

        /// A pair of integers in lo..hi, e.g. Dense's s = [1, 1].
        member _.IntPair(name: string, dflt: int * int, lo: int, hi: int) =
            let bad (v: JsonNode) =
                fail "%s: argument '%s' must be a list of two integers in %d..%d, got %s" layer name lo hi (show v)
            match tryProp o name with
            | true, (:? JsonArray as arr) when arr.Count = 2 ->
                let get (i: int) =
                    match arr[i] with
                    | :? JsonValue as v when v.GetValueKind() = JsonValueKind.Number ->
                        let x = v.GetValue<float>()
                        if x <> Math.Round x || x < float lo || x > float hi then bad arr
                        int x
                    | _ -> bad arr
                get 0, get 1
            | true, v -> bad v
            | _ -> dflt

        /// A list of integers in lo..hi, e.g. a pooling window [3, 2]; None when absent or null (Python's None).
        member _.IntList(name: string, lo: int, hi: int) : int list option =
            let bad (v: JsonNode) =
                fail "%s: argument '%s' must be a list of integers in %d..%d, got %s" layer name lo hi (show v)
            match tryProp o name with
            | true, null -> None
            | true, (:? JsonArray as arr) ->
                arr
                |> Seq.map (fun item ->
                    match item with
                    | :? JsonValue as v when v.GetValueKind() = JsonValueKind.Number ->
                        let x = v.GetValue<float>()
                        if x <> Math.Round x || x < float lo || x > float hi then bad arr
                        int x
                    | _ -> bad arr)
                |> Seq.toList
                |> Some
            | true, v -> bad v
            | _ -> None

        /// A list of positive integers (filter_shape, strides), or None for a JSON null or an omitted argument.
        member a.OptInts(name: string) = a.IntList(name, 1, Int32.MaxValue)

        /// A list of strings (dimension_numbers), or None for a JSON null or an omitted argument.
        member _.OptStrings(name: string) =
            let bad (v: JsonNode) = fail "%s: argument '%s' must be a list of strings, got %s" layer name (show v)
            match tryProp o name with
            | true, null -> None
            | true, (:? JsonArray as arr) ->
                arr |> Seq.map (fun n ->
                    match n with
                    | :? JsonValue as v when v.GetValueKind() = JsonValueKind.String -> text v
                    | _ -> bad arr) |> Seq.toList |> Some
            | true, v -> bad v
            | _ -> None

        /// A string, or None for a JSON null or an omitted argument.
        member _.OptString(name: string) =
            match tryProp o name with
            | true, null -> None
            | true, (:? JsonValue as v) when v.GetValueKind() = JsonValueKind.String -> Some(text v)
            | true, v -> fail "%s: argument '%s' must be a string or null, got %s" layer name (show v)
            | _ -> None

        /// A required list of finite numbers (Polynomial's coef).
        member _.RequiredNumbers(name: string) =
            let bad (v: JsonNode) = fail "%s: argument '%s' must be a list of finite numbers, got %s" layer name (show v)
            match tryProp o name with
            | true, (:? JsonArray as arr) ->
                arr |> Seq.map (fun n ->
                    match n with
                    | :? JsonValue as v when v.GetValueKind() = JsonValueKind.Number ->
                        let x = v.GetValue<float>()
                        if not (Double.IsFinite x) then bad arr
                        x
                    | _ -> bad arr) |> Seq.toList
            | true, v -> bad v
            | _ -> fail "%s: missing required argument '%s'" layer name

        interface IArgs with
            member a.OptString name = a.OptString name
            member a.RequiredNumbers name = a.RequiredNumbers name
            member a.Number(name, dflt) = a.Number(name, dflt)
            member a.RequiredNumber name = a.RequiredNumber name
            member a.Int(name, dflt, lo, hi) = a.Int(name, dflt, lo, hi)
            member a.RequiredInt(name, lo, hi) = a.RequiredInt(name, lo, hi)
            member a.Bool(name, dflt) = a.Bool(name, dflt)

        member _.Layers(name: string) =
            match tryProp o name with
            | true, (:? JsonArray as arr) -> arr |> Seq.toList
            | true, v -> fail "%s: argument '%s' must be a list of layers, got %s" layer name (show v)
            | _ -> fail "%s: missing required argument '%s'" layer name

    /// The activations' readers, from their family (Layers/Elementwise.fs), by JSON name.
    let private activationReaders =
        NeuralTangents.Layers.Elementwise.readers |> List.map (fun r -> r.Name, r) |> dict

    /// Turns argument-validation errors of the smart constructors into errors naming the layer.
    let private build (layer: string) (f: unit -> Layer) =
        try f ()
        with :? ArgumentException as e ->
            // "Dense: W_std must be …": the argument named once, without .NET's " (Parameter 'x')" suffix.
            if isNull e.ParamName then fail "%s: %s" (clip layer) e.Message
            else
                let m = e.Message.Replace(sprintf " (Parameter '%s')" e.ParamName, "")
                let m = if m.StartsWith(layer + ": ") then m.Substring(layer.Length + 2) else m
                fail "%s: %s %s" (clip layer) e.ParamName m

    let rec private decodeNode (node: JsonNode) : Layer =
        let o =
            match node with
            | :? JsonObject as o -> o
            | null -> fail "expected a layer object {\"layer\": ...}, got null"
            | n -> fail "expected a layer object {\"layer\": ...}, got %s" (show n)
        let name =
            match tryProp o "layer" with
            | true, (:? JsonValue as v) when v.GetValueKind() = JsonValueKind.String -> text v
            | true, v -> fail "the \"layer\" key must be a string, got %s" (show v)
            | _ -> fail "a layer object needs a \"layer\" key naming the neural_tangents layer, got %s" (show o)
        let args known = Args(name, o, known)
        match name with
        | "serial" -> Serial((args [ "layers" ]).Layers "layers" |> List.map decodeNode)
        | "parallel" ->
            match (args [ "layers" ]).Layers "layers" with
            | [] -> fail "parallel: needs at least one branch, got an empty 'layers' list"
            | ls -> Parallel(ls |> List.map decodeNode)
        | "FanOut" -> let a = args [ "num" ] in build name (fun () -> Stax.fanOut (a.RequiredInt("num", 1, Stax.maxFanOut)))
        | "FanInSum" -> args [] |> ignore; FanInSum
        | "FanInProd" -> args [] |> ignore; FanInProd
        | "FanInConcat" -> let a = args [ "axis" ] in FanInConcat(a.Int("axis", -1))
        | "Identity" -> args [] |> ignore; Identity
        | "Dense" ->
            let a = args [ "out_dim"; "W_std"; "b_std"; "batch_axis"; "channel_axis"; "parameterization"; "s" ]
            let p =
                match a.String("parameterization", "ntk").ToLowerInvariant() with
                | "ntk" -> Parameterization.Ntk
                | "standard" -> Parameterization.Standard
                | other -> fail "Dense: argument 'parameterization' must be \"ntk\" or \"standard\", got \"%s\"" (clip other)
            build name (fun () ->
                Stax.denseWith
                    { OutDim = a.RequiredInt("out_dim", 1, Int32.MaxValue)
                      WStd = a.Number("W_std", 1.0)
                      BStd = a.OptNumber("b_std", None)
                      BatchAxis = a.Int("batch_axis", 0)
                      ChannelAxis = a.Int("channel_axis", -1)
                      Parameterization = p
                      S = a.IntPair("s", (1, 1), 1, Int32.MaxValue) })
        | "Conv" | "ConvTranspose" | "ConvLocal" ->
            let a = args [ "out_chan"; "filter_shape"; "strides"; "padding"; "W_std"; "b_std"; "dimension_numbers"; "parameterization"; "s" ]
            let kind = match name with "Conv" -> ConvKind.Conv | "ConvTranspose" -> ConvKind.Transpose | _ -> ConvKind.Local
            let filterShape =
                match a.OptInts "filter_shape" with
                | Some fs -> fs
                | None -> fail "%s: missing required argument 'filter_shape' (a list of positive integers)" name
            let padding =
                match a.String("padding", "VALID") with
                | "VALID" -> Padding.Valid
                | "SAME" -> Padding.Same
                | "CIRCULAR" -> Padding.Circular
                | other -> fail "%s: argument 'padding' must be \"VALID\", \"SAME\" or \"CIRCULAR\", got \"%s\"" name (clip other)
            let p =
                match a.String("parameterization", "ntk").ToLowerInvariant() with
                | "ntk" -> Parameterization.Ntk
                | "standard" -> Parameterization.Standard
                | other -> fail "%s: argument 'parameterization' must be \"ntk\" or \"standard\", got \"%s\"" name (clip other)
            let dims =
                match a.OptStrings "dimension_numbers" with
                | None -> None
                | Some [ l; r; o ] -> Some(l, r, o)
                | Some xs -> fail "%s: argument 'dimension_numbers' must be three specs (lhs, rhs, out), got %d" name xs.Length
            let outChan = a.RequiredInt("out_chan", 1, Int32.MaxValue)
            build name (fun () ->
                let d = Stax.convDefaults outChan filterShape
                Stax.convWith
                    { d with
                        Kind = kind
                        Strides = defaultArg (a.OptInts "strides") d.Strides
                        Padding = padding
                        WStd = a.Number("W_std", 1.0)
                        BStd = a.OptNumber("b_std", None)
                        DimensionNumbers = defaultArg dims d.DimensionNumbers
                        Parameterization = p
                        S = a.IntPair("s", (1, 1), 1, Int32.MaxValue) })
        | "Flatten" ->
            let a = args [ "batch_axis"; "batch_axis_out" ]
            build name (fun () -> Stax.flattenWith (a.Int("batch_axis", 0)) (a.Int("batch_axis_out", 0, 0, 1)))
        | "AvgPool" | "SumPool" ->
            let avg = (name = "AvgPool")
            let a =
                args ([ "window_shape"; "strides"; "padding"; "batch_axis"; "channel_axis" ]
                      @ (if avg then [ "normalize_edges" ] else []))
            let window =
                match a.IntList("window_shape", 1, Int32.MaxValue) with
                | Some w -> w
                | None when a.Has "window_shape" -> fail "%s: argument 'window_shape' must be a list of integers, got null" name
                | None -> fail "%s: missing required argument 'window_shape'" name
            let padding =
                match a.String("padding", "VALID").ToUpperInvariant() with
                | "VALID" -> Padding.Valid
                | "SAME" -> Padding.Same
                | "CIRCULAR" -> Padding.Circular
                | other -> fail "%s: argument 'padding' must be \"VALID\", \"SAME\" or \"CIRCULAR\", got \"%s\"" name (clip other)
            let d = Stax.poolDefaults window
            let spec =
                { d with
                    Strides = defaultArg (a.IntList("strides", 1, Int32.MaxValue)) d.Strides
                    Padding = padding
                    BatchAxis = a.Int("batch_axis", 0)
                    ChannelAxis = a.Int("channel_axis", -1) }
            if avg then
                let normalizeEdges = a.Bool("normalize_edges", false)
                build name (fun () -> Stax.avgPoolWith spec normalizeEdges)
            else build name (fun () -> Stax.sumPoolWith spec)
        | "GlobalAvgPool" ->
            let a = args [ "batch_axis"; "channel_axis" ]
            build name (fun () -> Stax.globalAvgPoolWith (a.Int("batch_axis", 0)) (a.Int("channel_axis", -1)))
        | "GlobalSumPool" ->
            let a = args [ "batch_axis"; "channel_axis" ]
            build name (fun () -> Stax.globalSumPoolWith (a.Int("batch_axis", 0)) (a.Int("channel_axis", -1)))
        | n when activationReaders.ContainsKey n ->
            let r = activationReaders[n]
            let a = args r.Accepts
            build name (fun () -> Activation(r.Read a))
        | n when planned.Contains n ->
            fail "%s: this neural_tangents layer is not implemented yet in this version" n
        | n -> fail "unknown layer '%s' (layer names are neural_tangents' nt.stax names, e.g. Dense, Relu, serial)" (clip n)

    /// <summary>Reads a network from a parsed JSON node.</summary>
    /// <exception cref="T:NeuralTangents.Json.JsonArchitectureException">naming the layer and argument at fault.</exception>
    [<CompiledName("DecodeNode")>]
    let decodeLayer (node: JsonNode) : Layer = decodeNode node

    /// <summary>Reads a network from JSON text.</summary>
    [<CompiledName("Decode")>]
    let decode (text: string) : Layer =
        let node =
            try JsonNode.Parse text
            with :? JsonException as e -> fail "the architecture is not valid JSON: %s" (clip e.Message)
        decodeNode node

    let private num (x: float) : JsonNode = JsonValue.Create x
    let private int' (x: int) : JsonNode = JsonValue.Create x

    let private obj (name: string) (args: (string * JsonNode) list) : JsonNode =
        let o = JsonObject()
        o["layer"] <- JsonValue.Create name
        for k, v in args do o[k] <- v
        o

    let private argNode (v: ArgValue) : JsonNode =
        match v with
        | IntArg i -> int' i
        | FloatArg x -> num x
        | OptFloatArg(Some x) -> num x
        | OptFloatArg None -> null
        | BoolArg b -> JsonValue.Create b
        | StringArg t -> JsonValue.Create t
        | IntsArg xs -> JsonArray(xs |> List.map int' |> List.toArray)
        | StringsArg xs -> JsonArray(xs |> List.map (fun t -> JsonValue.Create t :> JsonNode) |> List.toArray)
        | FloatsArg xs -> JsonArray(xs |> List.map num |> List.toArray)

    /// <summary>Writes a network as a JSON node with neural_tangents' names and every argument explicit: the
    /// combinators here, every other layer from its definition's name and arguments.</summary>
    [<CompiledName("EncodeNode")>]
    let rec encodeLayer (layer: Layer) : JsonNode =
        let list (ls: Layer list) : JsonNode = JsonArray(ls |> List.map encodeLayer |> List.toArray)
        let named name args = obj name (args |> List.map (fun (k, v) -> k, argNode v))
        match layer with
        | Activation(Custom c) ->
            fail "%s: an Elementwise layer built from user functions cannot be written as JSON (functions cannot travel as data); use ElementwiseNumerical with a registry name (%s)"
                (clip c.Name) (String.Join(", ", NeuralTangents.Layers.ElementwiseQuadrature.names))
        | _ -> ()
        match Definitions.node layer with
        | SerialNode ls -> obj "serial" [ "layers", list ls ]
        | ParallelNode ls -> obj "parallel" [ "layers", list ls ]
        | FanOutNode n -> obj "FanOut" [ "num", int' n ]
        | MergeNode m -> named m.Name m.Args
        | LeafNode d -> named d.Name d.Args

    /// <summary>Writes a network as JSON text.</summary>
    [<CompiledName("Encode")>]
    let encode (layer: Layer) : string =
        (encodeLayer layer).ToJsonString(JsonSerializerOptions(WriteIndented = false))
