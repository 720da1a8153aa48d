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

    let private fail (message: string) = raise (JsonArchitectureException message)

    /// <summary>How deep a JSON text may nest arrays and objects (System.Text.Json's default is 64: 32 nested
    /// serial layers). The reader recurses once per level, so the bound also keeps its stack small.</summary>
    let maxDepth = 256

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

    /// <summary>An enum-valued argument (padding, implementation, attention_mechanism, pos_emb_type) read as
    /// neural_tangents' Enum constructors read it: the exact upper-case name, so that a network accepted here is
    /// accepted there too ('same' is refused by both). The message lists the names and, for a name in the wrong
    /// case, gives the right spelling.</summary>
    let private enumArg (layer: string) (arg: string) (given: string) (cases: (string * 'T) list) : 'T =
        match cases |> List.tryFind (fun (k, _) -> k = given) with
        | Some(_, v) -> v
        | None ->
            let quoted = cases |> List.map (fun (k, _) -> "\"" + k + "\"")
            let listed = String.Join(", ", quoted |> List.take (quoted.Length - 1)) + " or " + List.last quoted
            let hint =
                match cases |> List.tryFind (fun (k, _) -> k = given.ToUpperInvariant()) with
                | Some(k, _) -> $" (names are upper case, as in neural_tangents: \"{k}\")"
                | None -> ""
            fail (layer + ": argument '" + arg + "' must be " + listed + ", got \"" + (clip given) + "\"" + hint)

    /// The text of a JSON string; a lone UTF-16 surrogate (e.g. "\ud800") is an error naming where it is.
    let private text (v: JsonValue) =
        try v.GetValue<string>()
        with :? InvalidOperationException ->
            fail $"{(clip (v.GetPath()))}: a string holds an unpaired UTF-16 surrogate (a \\ud800-\\udfff escape without its pair); JSON text must be valid Unicode"

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
                    fail (layer + ": unknown argument '" + (clip k) + "' (" + hint + ")")

        member _.Has(name: string) = o.ContainsKey name

        member _.Number(name: string, dflt: float) =
            match tryProp o name with
            | true, (:? JsonValue as v) when v.GetValueKind() = JsonValueKind.Number -> v.GetValue<float>()
            | true, null -> fail $"{layer}: argument '{name}' must be a number, got null"
            | true, v -> fail (layer + ": argument '" + name + "' must be a number, got " + (show v))
            | _ -> dflt

        member a.RequiredNumber(name: string) =
            if not (o.ContainsKey name) then fail $"{layer}: missing required argument '{name}'"
            a.Number(name, nan)

        member _.OptNumber(name: string, dflt: float option) =
            match tryProp o name with
            | true, null -> None
            | true, (:? JsonValue as v) when v.GetValueKind() = JsonValueKind.Number -> Some(v.GetValue<float>())
            | true, v -> fail (layer + ": argument '" + name + "' must be a number or null, got " + (show v))
            | _ -> dflt

        /// An integer argument in lo..hi (an integral JSON number such as 3 or 3.0); the message states the range.
        member _.Int(name: string, dflt: int, lo: int, hi: int) =
            match tryProp o name with
            | true, (:? JsonValue as v) when v.GetValueKind() = JsonValueKind.Number ->
                let x = v.GetValue<float>()
                if x <> Math.Round x || x < float lo || x > float hi then
                    fail (layer + ": argument '" + name + "' must be an integer in " + string lo + ".." + string hi + ", got " + (show v))
                int x
            | true, v -> fail (layer + ": argument '" + name + "' must be an integer in " + string lo + ".." + string hi + ", got " + (show v))
            | _ -> dflt

        /// An integer argument that can be any int32 (e.g. an axis, which the layer checks against the input).
        member a.Int(name: string, dflt: int) = a.Int(name, dflt, Int32.MinValue, Int32.MaxValue)

        member a.RequiredInt(name: string, lo: int, hi: int) =
            if not (o.ContainsKey name) then fail $"{layer}: missing required argument '{name}'"
            a.Int(name, 0, lo, hi)

        member _.Bool(name: string, dflt: bool) =
            match tryProp o name with
            | true, (:? JsonValue as v) when v.GetValueKind() = JsonValueKind.True -> true
            | true, (:? JsonValue as v) when v.GetValueKind() = JsonValueKind.False -> false
            | true, v -> fail (layer + ": argument '" + name + "' must be true or false, got " + (show v))
            | _ -> dflt

        member _.String(name: string, dflt: string) =
            match tryProp o name with
            | true, (:? JsonValue as v) when v.GetValueKind() = JsonValueKind.String -> text v
            | true, v -> fail (layer + ": argument '" + name + "' must be a string, got " + (show v))
            | _ -> dflt

        /// A pair of integers in lo..hi, e.g. Dense's s = [1, 1].
        member _.IntPair(name: string, dflt: int * int, lo: int, hi: int) =
            let bad (v: JsonNode) =
                fail (layer + ": argument '" + name + "' must be a list of two integers in " + string lo + ".." + string hi + ", got " + (show v))
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
                fail (layer + ": argument '" + name + "' must be a list of integers in " + string lo + ".." + string hi + ", got " + (show v))
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
            let bad (v: JsonNode) = fail (layer + ": argument '" + name + "' must be a list of strings, got " + (show v))
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
            | true, v -> fail (layer + ": argument '" + name + "' must be a string or null, got " + (show v))
            | _ -> None

        /// A required list of finite numbers (Polynomial's coef).
        member _.RequiredNumbers(name: string) =
            let bad (v: JsonNode) = fail (layer + ": argument '" + name + "' must be a list of finite numbers, got " + (show v))
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
            | _ -> fail $"{layer}: missing required argument '{name}'"

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
            | true, v -> fail (layer + ": argument '" + name + "' must be a list of layers, got " + (show v))
            | _ -> fail $"{layer}: missing required argument '{name}'"

        member _.Layer(name: string) =
            match tryProp o name with
            | true, v -> v
            | _ -> fail $"{layer}: missing required argument '{name}'"

    /// The activations' readers, from their family (Layers/Elementwise.fs), by JSON name.
    let private activationReaders =
        NeuralTangents.Layers.Elementwise.readers |> List.map (fun r -> r.Name, r) |> dict

    /// Turns argument-validation errors of the smart constructors into errors naming the layer.
    let private build (layer: string) (f: unit -> Layer) =
        try f ()
        with :? ArgumentException as e ->
            // "Dense: W_std must be …": the argument named once, without .NET's " (Parameter 'x')" suffix.
            if isNull e.ParamName then fail $"{clip layer}: {e.Message}"
            else
                let m = e.Message.Replace($" (Parameter '{e.ParamName}')", "")
                let m = if m.StartsWith(layer + ": ") then m.Substring(layer.Length + 2) else m
                // A message that names its argument already reads on its own ("batch_axis and channel_axis are …"),
                // also by its JSON name (dimension_numbers for the F# parameter dimensionNumbers).
                let snake = System.String.Concat(e.ParamName |> Seq.map (fun c -> if System.Char.IsUpper c then "_" + string (System.Char.ToLowerInvariant c) else string c))
                if m.Contains e.ParamName || m.Contains snake then fail $"{clip layer}: {m}"
                else fail ((clip layer) + ": " + e.ParamName + " " + m)

    /// A constant array given as a number (a scalar) or nested lists of numbers of a rectangular shape.
    let private tensorNode (layer: string) (arg: string) (node: JsonNode) : Tensor =
        let bad () = fail (layer + ": argument '" + arg + "' must be a number or nested lists of numbers of a rectangular shape, got " + (show node))
        let rec go (n: JsonNode) : int list * float list =
            match n with
            | :? JsonValue as v when v.GetValueKind() = JsonValueKind.Number -> [], [ v.GetValue<float>() ]
            | :? JsonArray as arr when arr.Count > 0 ->
                let parts = arr |> Seq.map go |> Seq.toList
                let shape = fst parts.Head
                if parts |> List.exists (fun (s, _) -> s <> shape) then bad ()
                arr.Count :: shape, parts |> List.collect snd
            | _ -> bad ()
        let shape, values = go node
        Tensor.create (List.toArray shape) (List.toArray values)

    let rec private decodeNode (node: JsonNode) : Layer =
        let o =
            match node with
            | :? JsonObject as o -> o
            | null -> fail "expected a layer object {\"layer\": ...}, got null"
            | n -> fail $"expected a layer object {{\"layer\": ...}}, got {show n}"
        let name =
            match tryProp o "layer" with
            | true, (:? JsonValue as v) when v.GetValueKind() = JsonValueKind.String -> text v
            | true, v -> fail $"the \"layer\" key must be a string, got {show v}"
            | _ -> fail $"a layer object needs a \"layer\" key naming the neural_tangents layer, got {show o}"
        let args known = Args(name, o, known)
        match name with
        | "serial" -> Serial((args [ "layers" ]).Layers "layers" |> List.map decodeNode)
        | "parallel" ->
            match (args [ "layers" ]).Layers "layers" with
            | [] -> fail "parallel: needs at least one branch, got an empty 'layers' list"
            | ls -> Parallel(ls |> List.map decodeNode)
        | "repeat" ->
            // neural_tangents' repeat(layer, n); "layer" names the JSON object's own kind, so the argument is "layer_".
            let a = args [ "layer_"; "n" ]
            let n = a.RequiredInt("n", 0, Stax.maxRepeat)
            Stax.repeat n (decodeNode (a.Layer "layer_"))
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
                | other -> fail $"Dense: argument 'parameterization' must be \"ntk\" or \"standard\", got \"{clip other}\""
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
                | None -> fail $"{name}: missing required argument 'filter_shape' (a list of positive integers)"
            let padding = enumArg name "padding" (a.String("padding", "VALID")) [ "VALID", Padding.Valid; "SAME", Padding.Same; "CIRCULAR", Padding.Circular ]
            let p =
                match a.String("parameterization", "ntk").ToLowerInvariant() with
                | "ntk" -> Parameterization.Ntk
                | "standard" -> Parameterization.Standard
                | other -> fail $"{name}: argument 'parameterization' must be \"ntk\" or \"standard\", got \"{clip other}\""
            let dims =
                match a.OptStrings "dimension_numbers" with
                | None -> None
                | Some [ l; r; o ] -> Some(l, r, o)
                | Some xs -> fail $"{name}: argument 'dimension_numbers' must be three specs (lhs, rhs, out), got {string xs.Length}"
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
                | None when a.Has "window_shape" -> fail $"{name}: argument 'window_shape' must be a list of integers, got null"
                | None -> fail $"{name}: missing required argument 'window_shape'"
            let padding = enumArg name "padding" (a.String("padding", "VALID")) [ "VALID", Padding.Valid; "SAME", Padding.Same; "CIRCULAR", Padding.Circular ]
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
        | "Dropout" ->
            let a = args [ "rate"; "mode" ]
            let mode =
                match a.String("mode", "train") with
                | "train" -> DropoutMode.Train
                | "test" -> DropoutMode.Test
                | other -> fail $"Dropout: argument 'mode' must be \"train\" or \"test\", got \"{clip other}\""
            build name (fun () -> Stax.dropout (a.RequiredNumber "rate") mode)
        | "LayerNorm" ->
            let a = args [ "axis"; "eps"; "batch_axis"; "channel_axis" ]
            // neural_tangents' axis is an int or a sequence of ints.
            let axis =
                match tryProp o "axis" with
                | true, (:? JsonValue as v) when v.GetValueKind() = JsonValueKind.Number -> [ a.Int("axis", -1) ]
                | true, _ ->
                    match a.IntList("axis", Int32.MinValue, Int32.MaxValue) with
                    | Some xs -> xs
                    | None -> fail "LayerNorm: argument 'axis' must be an integer or a list of integers, got null"
                | _ -> [ -1 ]
            build name (fun () ->
                Stax.layerNorm axis (a.Number("eps", 1e-12)) (a.Int("batch_axis", 0)) (a.Int("channel_axis", -1)))
        | "DotGeneral" ->
            let a = args [ "lhs"; "rhs"; "dimension_numbers"; "precision"; "batch_axis"; "channel_axis" ]
            let constant (arg: string) = match tryProp o arg with | true, null | false, _ -> None | true, v -> Some(tensorNode name arg v)
            let dims =
                let bad (v: JsonNode) =
                    fail $"DotGeneral: argument 'dimension_numbers' must be [[lhs_contracting, rhs_contracting], [lhs_batch, rhs_batch]] (lists of integers), got {show v}"
                let ints (v: JsonNode) (whole: JsonNode) =
                    match v with
                    | :? JsonArray as arr ->
                        arr |> Seq.map (fun n ->
                            match n with
                            | :? JsonValue as x when x.GetValueKind() = JsonValueKind.Number && x.GetValue<float>() = Math.Round(x.GetValue<float>())
                                                     && abs (x.GetValue<float>()) < 1e9 -> int (x.GetValue<float>())
                            | _ -> bad whole) |> Seq.toList
                    | _ -> bad whole
                let pair (v: JsonNode) (whole: JsonNode) =
                    match v with
                    | :? JsonArray as arr when arr.Count = 2 -> ints arr[0] whole, ints arr[1] whole
                    | _ -> bad whole
                match tryProp o "dimension_numbers" with
                | true, (:? JsonArray as arr) when arr.Count = 2 -> pair arr[0] arr, pair arr[1] arr
                | true, v -> bad v
                | _ -> ([], []), ([], [])
            // precision: accepted as neural_tangents takes it (None or a lax.Precision name) and ignored — float64 throughout.
            match tryProp o "precision" with
            | true, null | false, _ -> ()
            | true, (:? JsonValue as v) when v.GetValueKind() = JsonValueKind.String -> ()
            | true, v -> fail $"DotGeneral: argument 'precision' must be null or a string such as \"HIGHEST\", got {show v}"
            build name (fun () ->
                Stax.dotGeneral (constant "lhs") (constant "rhs") dims (a.Int("batch_axis", 0)) (a.Int("channel_axis", -1)))
        | "Index" ->
            let a = args [ "idx"; "batch_axis"; "channel_axis" ]
            let bad (v: JsonNode) =
                fail $"Index: argument 'idx' must be a list whose entries are an integer, \":\", \"...\" or [start, stop, step] (integers or null), got {show v}"
            let intOf (v: JsonNode) (whole: JsonNode) =
                match v with
                | :? JsonValue as x when x.GetValueKind() = JsonValueKind.Number ->
                    let f = x.GetValue<float>()
                    if f <> Math.Round f || abs f > 2e9 then bad whole
                    int f
                | _ -> bad whole
            let entry (whole: JsonNode) (n: JsonNode) =
                match n with
                | :? JsonValue as v when v.GetValueKind() = JsonValueKind.String ->
                    match text v with
                    | ":" -> IndexEntry.Range(None, None, None)
                    | "..." -> IndexEntry.Rest
                    | _ -> bad whole
                | :? JsonArray as arr when arr.Count >= 1 && arr.Count <= 3 ->
                    let part i = if i >= arr.Count || isNull arr[i] then None else Some(intOf arr[i] whole)
                    // [start, stop] or [start, stop, step], as Python's slice(start, stop[, step]).
                    if arr.Count = 1 then IndexEntry.Range(None, part 0, None) else IndexEntry.Range(part 0, part 1, part 2)
                | v -> IndexEntry.At(intOf v whole)
            let idx =
                match tryProp o "idx" with
                | true, (:? JsonArray as arr) -> arr |> Seq.map (entry arr) |> Seq.toList
                | true, v -> bad v
                | _ -> fail "Index: missing required argument 'idx'"
            build name (fun () -> Stax.index idx (a.Int("batch_axis", 0)) (a.Int("channel_axis", -1)))
        | "ImageResize" ->
            let a = args [ "shape"; "method"; "antialias"; "precision"; "batch_axis"; "channel_axis" ]
            let shape =
                match a.IntList("shape", -1, Int32.MaxValue) with
                | Some s -> s
                | None -> fail "ImageResize: missing required argument 'shape' (one size per input axis, -1 to keep it)"
            let methodName =
                match tryProp o "method" with
                | true, (:? JsonValue as v) when v.GetValueKind() = JsonValueKind.String -> text v
                | true, v -> fail $"ImageResize: argument 'method' must be a string (\"linear\" or \"nearest\"), got {show v}"
                | _ -> fail "ImageResize: missing required argument 'method' (\"linear\" or \"nearest\")"
            match tryProp o "precision" with
            | true, null | false, _ -> ()
            | true, (:? JsonValue as v) when v.GetValueKind() = JsonValueKind.String -> ()
            | true, v -> fail $"ImageResize: argument 'precision' must be null or a string such as \"HIGHEST\", got {show v}"
            build name (fun () ->
                Stax.imageResize shape (NeuralTangents.Layers.Resize.parseMethod methodName) (a.Bool("antialias", true))
                    (a.Int("batch_axis", 0)) (a.Int("channel_axis", -1)))
        | "Aggregate" ->
            let a = args [ "aggregate_axis"; "batch_axis"; "channel_axis"; "implementation" ]
            // neural_tangents' aggregate_axis: None, an int or a sequence of ints.
            let axis =
                match tryProp o "aggregate_axis" with
                | true, null | false, _ -> None
                | true, (:? JsonValue as v) when v.GetValueKind() = JsonValueKind.Number -> Some [ a.Int("aggregate_axis", 0) ]
                | true, _ -> a.IntList("aggregate_axis", Int32.MinValue, Int32.MaxValue)
            let impl =
                enumArg "Aggregate" "implementation" (a.String("implementation", "DENSE"))
                    [ "DENSE", AggregateImplementation.Dense; "SPARSE", AggregateImplementation.Sparse ]
            build name (fun () -> Stax.aggregate axis (a.Int("batch_axis", 0)) (a.Int("channel_axis", -1)) impl)
        | "GlobalSelfAttention" ->
            let a =
                args [ "n_chan_out"; "n_chan_key"; "n_chan_val"; "n_heads"; "linear_scaling"; "W_key_std"; "W_value_std"
                       "W_query_std"; "W_out_std"; "b_std"; "attention_mechanism"; "pos_emb_type"; "pos_emb_p_norm"
                       "pos_emb_decay_fn"; "n_chan_pos_emb"; "W_pos_emb_std"; "val_pos_emb"; "batch_axis"; "channel_axis" ]
            let decay =
                let refuse (v: JsonNode) =
                    fail $"GlobalSelfAttention: argument 'pos_emb_decay_fn' must be null (one-hot embeddings), [\"exp\", length_scale] (exp(-d/length_scale)) or [\"power\", exponent] ((1 + d)^-exponent) with a finite positive number; a Python function cannot be carried, got {show v}"
                match tryProp o "pos_emb_decay_fn" with
                | true, null | false, _ -> PosEmbDecay.OneHot
                | true, (:? JsonArray as arr) when arr.Count = 2 && not (isNull arr[0]) && not (isNull arr[1]) ->
                    let number = try Some(arr[1].GetValue<float>()) with _ -> None
                    let name = try Some(arr[0].GetValue<string>()) with _ -> None
                    match name, number with
                    | Some "exp", Some l when Double.IsFinite l && l > 0.0 -> PosEmbDecay.Exponential l
                    | Some "power", Some e when Double.IsFinite e && e > 0.0 -> PosEmbDecay.Power e
                    | _ -> refuse arr
                | true, v -> refuse v
            let mechanism =
                enumArg name "attention_mechanism" (a.String("attention_mechanism", "SOFTMAX"))
                    [ "SOFTMAX", AttentionMechanism.Softmax; "IDENTITY", AttentionMechanism.Identity
                      "ABS", AttentionMechanism.Abs; "RELU", AttentionMechanism.Relu ]
            let posEmb =
                enumArg name "pos_emb_type" (a.String("pos_emb_type", "NONE"))
                    [ "NONE", PositionalEmbedding.NoEmbedding; "SUM", PositionalEmbedding.Sum; "CONCAT", PositionalEmbedding.Concat ]
            let nChanPosEmb =
                match tryProp o "n_chan_pos_emb" with
                | true, null | false, _ -> None
                | _ -> Some(a.Int("n_chan_pos_emb", 1, 1, Int32.MaxValue))
            let d =
                Stax.attentionDefaults (a.RequiredInt("n_chan_out", 1, Int32.MaxValue)) (a.RequiredInt("n_chan_key", 1, Int32.MaxValue))
                    (a.RequiredInt("n_chan_val", 1, Int32.MaxValue)) (a.RequiredInt("n_heads", 1, Int32.MaxValue))
            build name (fun () ->
                Stax.globalSelfAttentionWith
                    { d with
                        LinearScaling = a.Bool("linear_scaling", true)
                        WKeyStd = a.Number("W_key_std", 1.0)
                        WValueStd = a.Number("W_value_std", 1.0)
                        WQueryStd = a.Number("W_query_std", 1.0)
                        WOutStd = a.Number("W_out_std", 1.0)
                        BStd = a.OptNumber("b_std", None)
                        AttentionMechanism = mechanism
                        PosEmbType = posEmb
                        PosEmbPNorm = a.Number("pos_emb_p_norm", 2.0)
                        NChanPosEmb = nChanPosEmb
                        WPosEmbStd = a.Number("W_pos_emb_std", 1.0)
                        ValPosEmb = a.Bool("val_pos_emb", false)
                        BatchAxis = a.Int("batch_axis", 0)
                        ChannelAxis = a.Int("channel_axis", -1)
                        PosEmbDecayFn = decay })
        | n when activationReaders.ContainsKey n ->
            let r = activationReaders[n]
            let a = args r.Accepts
            build name (fun () -> Activation(r.Read a))
        | n -> fail $"unknown layer '{clip n}' (layer names are neural_tangents' nt.stax names, e.g. Dense, Relu, serial; the README's layer table lists every one)"

    /// <summary>Reads a network from a parsed JSON node.</summary>
    /// <exception cref="T:NeuralTangents.Json.JsonArchitectureException">naming the layer and argument at fault.</exception>
    [<CompiledName("DecodeNode")>]
    let decodeLayer (node: JsonNode) : Layer = decodeNode node

    /// <summary>Reads a network from JSON text.</summary>
    [<CompiledName("Decode")>]
    let decode (text: string) : Layer =
        let node =
            // A key given twice ({"layer": "Dense", "layer": "Relu"}) is an error, not the first or last one silently.
            try JsonNode.Parse(text, documentOptions = JsonDocumentOptions(AllowDuplicateProperties = false, MaxDepth = maxDepth))
            with :? JsonException as e ->
                if e.Message.Contains "maximum configured depth" then
                    fail $"the architecture nests more than {string maxDepth} levels deep; write nested serial layers as one serial (serial is associative)"
                fail $"the architecture is not valid JSON: {clip e.Message}"
        decodeNode node

    let private num (x: float) : JsonNode = JsonValue.Create x
    let private int' (x: int) : JsonNode = JsonValue.Create x

    let private obj (name: string) (args: (string * JsonNode) list) : JsonNode =
        let o = JsonObject()
        o["layer"] <- JsonValue.Create name
        for k, v in args do o[k] <- v
        o

    let rec private argNode (v: ArgValue) : JsonNode =
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
        | ListArg xs -> JsonArray(xs |> List.map argNode |> List.toArray)
        | NoneArg -> null

    /// <summary>Writes a network as a JSON node with neural_tangents' names and every argument explicit: the
    /// combinators here, every other layer from its definition's name and arguments.</summary>
    /// The JSON node of a network; with <c>display</c>, a layer built from user functions is written as
    /// {"layer": "Elementwise", "name": …, "fn": "(user function)", …} instead of refused (for printing only).
    let rec private encodeWith (display: bool) (layer: Layer) : JsonNode =
        let list (ls: Layer list) : JsonNode = JsonArray(ls |> List.map (encodeWith display) |> List.toArray)
        let named name args = obj name (args |> List.map (fun (k, v) -> k, argNode v))
        match layer with
        | Activation(Custom c) when display ->
            obj "Elementwise" ([ "name", JsonValue.Create c.Name :> JsonNode; "fn", JsonValue.Create "(user function)" :> JsonNode ]
                               @ (c.Args |> List.map (fun (k, v) -> k, JsonValue.Create v :> JsonNode)))
        | Activation(Custom c) ->
            fail $"""{clip c.Name}: an Elementwise layer built from user functions cannot be written as JSON (functions cannot travel as data); use ElementwiseNumerical with a registry name ({(String.Join(", ", NeuralTangents.Layers.ElementwiseQuadrature.names))})"""
        | Repeat(l, n) -> obj "repeat" [ "layer_", encodeWith display l; "n", int' n ]
        | _ ->
            match Definitions.node layer with
            | SerialNode ls -> obj "serial" [ "layers", list ls ]
            | ParallelNode ls -> obj "parallel" [ "layers", list ls ]
            | FanOutNode n -> obj "FanOut" [ "num", int' n ]
            | MergeNode m -> named m.Name m.Args
            | LeafNode d -> named d.Name d.Args

    [<CompiledName("EncodeNode")>]
    let encodeLayer (layer: Layer) : JsonNode = encodeWith false layer

    /// <summary>The network as JSON text for printing (ToString, logs): as <c>encode</c>, except that a layer built
    /// from user functions appears as {"layer": "Elementwise", "name": …, "fn": "(user function)"} instead of
    /// being refused; such text does not read back.</summary>
    [<CompiledName("Describe")>]
    let describe (layer: Layer) : string =
        (encodeWith true layer).ToJsonString(JsonSerializerOptions(WriteIndented = false, MaxDepth = maxDepth))

    /// <summary>Writes a network as JSON text.</summary>
    [<CompiledName("Encode")>]
    let encode (layer: Layer) : string =
        (encodeLayer layer).ToJsonString(JsonSerializerOptions(WriteIndented = false, MaxDepth = maxDepth))
