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

    /// neural_tangents layers this library does not implement yet (a clearer error than "unknown").
    let private planned =
        set [ "Conv"; "ConvTranspose"; "ConvLocal"; "AvgPool"; "SumPool"; "MaxPool"; "GlobalAvgPool"; "GlobalSumPool"
              "GlobalMaxPool"; "GlobalSelfAttention"; "LayerNorm"; "Dropout"; "Aggregate"; "ImageResize"; "Index"
              "DotGeneral"; "Exp"; "Gaussian"; "ExpNormalized"; "Rbf"; "Sign"; "Hermite"; "RectifiedMonomial"
              "Polynomial"; "Gabor"; "Elementwise"; "ElementwiseNumerical"; "Cos2"; "repeat" ]

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
                    fail "%s: unknown argument '%s' (%s)" layer k hint

        member _.Has(name: string) = o.ContainsKey name

        member _.Number(name: string, dflt: float) =
            match tryProp o name with
            | true, (:? JsonValue as v) when v.GetValueKind() = JsonValueKind.Number -> v.GetValue<float>()
            | true, null -> fail "%s: argument '%s' must be a number, got null" layer name
            | true, v -> fail "%s: argument '%s' must be a number, got %s" layer name (v.ToJsonString())
            | _ -> dflt

        member a.RequiredNumber(name: string) =
            if not (o.ContainsKey name) then fail "%s: missing required argument '%s'" layer name
            a.Number(name, nan)

        member _.OptNumber(name: string, dflt: float option) =
            match tryProp o name with
            | true, null -> None
            | true, (:? JsonValue as v) when v.GetValueKind() = JsonValueKind.Number -> Some(v.GetValue<float>())
            | true, v -> fail "%s: argument '%s' must be a number or null, got %s" layer name (v.ToJsonString())
            | _ -> dflt

        member a.Int(name: string, dflt: int) =
            match tryProp o name with
            | true, (:? JsonValue as v) when v.GetValueKind() = JsonValueKind.Number ->
                let x = v.GetValue<float>()
                if x <> Math.Round x || abs x > 1e9 then fail "%s: argument '%s' must be an integer, got %s" layer name (v.ToJsonString())
                int x
            | true, null -> fail "%s: argument '%s' must be an integer, got null" layer name
            | true, v -> fail "%s: argument '%s' must be an integer, got %s" layer name (v.ToJsonString())
            | _ -> dflt

        member a.RequiredInt(name: string) =
            if not (o.ContainsKey name) then fail "%s: missing required argument '%s'" layer name
            a.Int(name, 0)

        member _.Bool(name: string, dflt: bool) =
            match tryProp o name with
            | true, (:? JsonValue as v) when v.GetValueKind() = JsonValueKind.True -> true
            | true, (:? JsonValue as v) when v.GetValueKind() = JsonValueKind.False -> false
            | true, v -> fail "%s: argument '%s' must be true or false, got %s" layer name (if isNull v then "null" else v.ToJsonString())
            | _ -> dflt

        member _.String(name: string, dflt: string) =
            match tryProp o name with
            | true, (:? JsonValue as v) when v.GetValueKind() = JsonValueKind.String -> v.GetValue<string>()
            | true, v -> fail "%s: argument '%s' must be a string, got %s" layer name (if isNull v then "null" else v.ToJsonString())
            | _ -> dflt

        member _.IntPair(name: string, dflt: int * int) =
            match tryProp o name with
            | true, (:? JsonArray as arr) when arr.Count = 2 ->
                let get (i: int) =
                    match arr[i] with
                    | :? JsonValue as v when v.GetValueKind() = JsonValueKind.Number && v.GetValue<float>() = Math.Round(v.GetValue<float>()) ->
                        int (v.GetValue<float>())
                    | _ -> fail "%s: argument '%s' must be a list of two integers, got %s" layer name (arr.ToJsonString())
                get 0, get 1
            | true, v -> fail "%s: argument '%s' must be a list of two integers, got %s" layer name (if isNull v then "null" else v.ToJsonString())
            | _ -> dflt

        member _.Layers(name: string) =
            match tryProp o name with
            | true, (:? JsonArray as arr) -> arr |> Seq.toList
            | true, v -> fail "%s: argument '%s' must be a list of layers, got %s" layer name (if isNull v then "null" else v.ToJsonString())
            | _ -> fail "%s: missing required argument '%s'" layer name

    /// Turns argument-validation errors of the smart constructors into errors naming the layer.
    let private build (layer: string) (f: unit -> Layer) =
        try f ()
        with :? ArgumentException as e ->
            // "Dense: W_std must be …": the argument named once, without .NET's " (Parameter 'x')" suffix.
            if isNull e.ParamName then fail "%s: %s" layer e.Message
            else
                let m = e.Message.Replace(sprintf " (Parameter '%s')" e.ParamName, "")
                let m = if m.StartsWith(layer + ": ") then m.Substring(layer.Length + 2) else m
                fail "%s: %s %s" layer e.ParamName m

    let rec private decodeNode (node: JsonNode) : Layer =
        let o =
            match node with
            | :? JsonObject as o -> o
            | null -> fail "expected a layer object {\"layer\": ...}, got null"
            | n -> fail "expected a layer object {\"layer\": ...}, got %s" (n.ToJsonString())
        let name =
            match tryProp o "layer" with
            | true, (:? JsonValue as v) when v.GetValueKind() = JsonValueKind.String -> v.GetValue<string>()
            | true, v -> fail "the \"layer\" key must be a string, got %s" (if isNull v then "null" else v.ToJsonString())
            | _ -> fail "a layer object needs a \"layer\" key naming the neural_tangents layer, got %s" (o.ToJsonString())
        let args known = Args(name, o, known)
        match name with
        | "serial" -> Serial((args [ "layers" ]).Layers "layers" |> List.map decodeNode)
        | "parallel" -> Parallel((args [ "layers" ]).Layers "layers" |> List.map decodeNode)
        | "FanOut" -> let a = args [ "num" ] in build name (fun () -> Stax.fanOut (a.RequiredInt "num"))
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
                | other -> fail "Dense: argument 'parameterization' must be \"ntk\" or \"standard\", got \"%s\"" other
            build name (fun () ->
                Stax.denseWith
                    { OutDim = a.RequiredInt "out_dim"
                      WStd = a.Number("W_std", 1.0)
                      BStd = a.OptNumber("b_std", None)
                      BatchAxis = a.Int("batch_axis", 0)
                      ChannelAxis = a.Int("channel_axis", -1)
                      Parameterization = p
                      S = a.IntPair("s", (1, 1)) })
        | "Relu" -> let a = args [ "do_stabilize" ] in a.Bool("do_stabilize", false) |> ignore; Stax.relu
        | "Abs" -> let a = args [ "do_stabilize" ] in a.Bool("do_stabilize", false) |> ignore; Stax.abs
        | "LeakyRelu" ->
            let a = args [ "alpha"; "do_stabilize" ]
            a.Bool("do_stabilize", false) |> ignore
            build name (fun () -> Stax.leakyRelu (a.RequiredNumber "alpha"))
        | "ABRelu" ->
            let a = args [ "a"; "b"; "do_stabilize" ]
            a.Bool("do_stabilize", false) |> ignore
            build name (fun () -> Stax.abRelu (a.RequiredNumber "a") (a.RequiredNumber "b"))
        | "Erf" ->
            let a = args [ "a"; "b"; "c" ]
            build name (fun () -> Stax.erf (a.Number("a", 1.0)) (a.Number("b", 1.0)) (a.Number("c", 0.0)))
        | "Sigmoid_like" -> args [] |> ignore; Stax.sigmoidLike
        | "Sin" ->
            let a = args [ "a"; "b"; "c" ]
            build name (fun () -> Stax.sin (a.Number("a", 1.0)) (a.Number("b", 1.0)) (a.Number("c", 0.0)))
        | "Cos" ->
            let a = args [ "a"; "b"; "c" ]
            build name (fun () -> Stax.cos (a.Number("a", 1.0)) (a.Number("b", 1.0)) (a.Number("c", 0.0)))
        | "Gelu" -> let a = args [ "approximate" ] in Stax.gelu (a.Bool("approximate", false))
        | "Monomial" -> let a = args [ "degree" ] in build name (fun () -> Stax.monomial (a.RequiredInt "degree"))
        | "Flatten" ->
            let a = args [ "batch_axis"; "batch_axis_out" ]
            build name (fun () -> Stax.flattenWith (a.Int("batch_axis", 0)) (a.Int("batch_axis_out", 0)))
        | n when planned.Contains n ->
            fail "%s: this neural_tangents layer is not implemented yet in this version" n
        | n -> fail "unknown layer '%s' (layer names are neural_tangents' nt.stax names, e.g. Dense, Relu, serial)" n

    /// <summary>Reads a network from a parsed JSON node.</summary>
    /// <exception cref="T:NeuralTangents.Json.JsonArchitectureException">naming the layer and argument at fault.</exception>
    [<CompiledName("DecodeNode")>]
    let decodeLayer (node: JsonNode) : Layer = decodeNode node

    /// <summary>Reads a network from JSON text.</summary>
    [<CompiledName("Decode")>]
    let decode (text: string) : Layer =
        let node =
            try JsonNode.Parse text
            with :? JsonException as e -> fail "the architecture is not valid JSON: %s" e.Message
        decodeNode node

    let private num (x: float) : JsonNode = JsonValue.Create x
    let private int' (x: int) : JsonNode = JsonValue.Create x

    let private obj (name: string) (args: (string * JsonNode) list) : JsonNode =
        let o = JsonObject()
        o["layer"] <- JsonValue.Create name
        for k, v in args do o[k] <- v
        o

    /// <summary>Writes a network as a JSON node with neural_tangents' names and every argument explicit.</summary>
    [<CompiledName("EncodeNode")>]
    let rec encodeLayer (layer: Layer) : JsonNode =
        let list (ls: Layer list) : JsonNode = JsonArray(ls |> List.map encodeLayer |> List.toArray)
        match layer with
        | Serial ls -> obj "serial" [ "layers", list ls ]
        | Parallel ls -> obj "parallel" [ "layers", list ls ]
        | FanOut n -> obj "FanOut" [ "num", int' n ]
        | FanInSum -> obj "FanInSum" []
        | FanInProd -> obj "FanInProd" []
        | FanInConcat a -> obj "FanInConcat" [ "axis", int' a ]
        | Identity -> obj "Identity" []
        | Dense d ->
            obj "Dense"
                [ "out_dim", int' d.OutDim
                  "W_std", num d.WStd
                  "b_std", (match d.BStd with Some b -> num b | None -> null)
                  "batch_axis", int' d.BatchAxis
                  "channel_axis", int' d.ChannelAxis
                  "parameterization", JsonValue.Create(match d.Parameterization with Parameterization.Ntk -> "ntk" | Parameterization.Standard -> "standard")
                  "s", JsonArray([| int' (fst d.S); int' (snd d.S) |]) ]
        | Activation(ABRelu { A = 0.0; B = 1.0 }) -> obj "Relu" []
        | Activation(ABRelu { A = -1.0; B = 1.0 }) -> obj "Abs" []
        | Activation(ABRelu { A = a; B = 1.0 }) -> obj "LeakyRelu" [ "alpha", num a ]
        | Activation(ABRelu s) -> obj "ABRelu" [ "a", num s.A; "b", num s.B ]
        | Activation(Erf s) -> obj "Erf" [ "a", num s.A; "b", num s.B; "c", num s.C ]
        | Activation(Sin s) -> obj "Sin" [ "a", num s.A; "b", num s.B; "c", num s.C ]
        | Activation(Gelu approx) -> obj "Gelu" [ "approximate", JsonValue.Create approx ]
        | Activation(Monomial d) -> obj "Monomial" [ "degree", int' d ]
        | Flatten f -> obj "Flatten" [ "batch_axis", int' f.BatchAxis; "batch_axis_out", int' f.BatchAxisOut ]

    /// <summary>Writes a network as JSON text.</summary>
    [<CompiledName("Encode")>]
    let encode (layer: Layer) : string =
        (encodeLayer layer).ToJsonString(JsonSerializerOptions(WriteIndented = false))
