/// Examples for the JSON architecture codec: neural_tangents' names and defaults, and its error messages.
module NeuralTangents.Tests.JsonTests

open Expecto
open NeuralTangents

let private decodeError (text: string) =
    try
        Json.decode text |> ignore
        failwith "expected an error"
    with Json.JsonArchitectureException msg -> msg

[<Tests>]
let tests =
    testList "JsonTests" [
        testCase "the issue's example decodes with every argument as written and defaults elsewhere" <| fun () ->
            let text =
                """{"layer":"serial","layers":[{"layer":"Dense","out_dim":512,"W_std":1.5,"b_std":0.05,"parameterization":"standard","s":[1,2]},{"layer":"Relu"},{"layer":"Dense","out_dim":1}]}"""
            let expected =
                Serial [ Dense { OutDim = 512; WStd = 1.5; BStd = Some 0.05; BatchAxis = 0; ChannelAxis = -1; Parameterization = Parameterization.Standard; S = (1, 2) }
                         Activation(ABRelu { A = 0.0; B = 1.0 })
                         Dense { OutDim = 1; WStd = 1.0; BStd = None; BatchAxis = 0; ChannelAxis = -1; Parameterization = Parameterization.Ntk; S = (1, 1) } ]
            Expect.equal (Json.decode text) expected "Json.decode text"

        testCase "aliases map to neural_tangents' definitions" <| fun () ->
            Expect.equal (Json.decode """{"layer":"LeakyRelu","alpha":0.1}""") (Activation(ABRelu { A = 0.1; B = 1.0 })) "decoding {\"layer\":\"LeakyRelu\",\"alpha\":0.1}"
            Expect.equal (Json.decode """{"layer":"Abs"}""") (Activation(ABRelu { A = -1.0; B = 1.0 })) "decoding {\"layer\":\"Abs\"}"
            Expect.equal (Json.decode """{"layer":"Sigmoid_like"}""") (Activation(Erf { A = 0.5; B = 1.0 / 2.4020563531719796; C = 0.5 })) "decoding {\"layer\":\"Sigmoid_like\"}"
            Expect.equal (Json.decode """{"layer":"Erf"}""") (Activation(Erf { A = 1.0; B = 1.0; C = 0.0 })) "decoding {\"layer\":\"Erf\"}"
            Expect.equal (Json.decode """{"layer":"Dense","out_dim":3,"b_std":null}""") (Stax.dense 3 1.0 None) "decoding {\"layer\":\"Dense\",\"out_dim\":3,\"b_std\":null}"

        testCase "errors name the layer and the argument" <| fun () ->
            Expect.stringContains (decodeError """{"layer":"Densse","out_dim":3}""") "unknown layer 'Densse'" "decoding {\"layer\":\"Densse\",\"out_dim\":3}"
            Expect.stringContains (decodeError """{"layer":"Dense","outdim":3}""") "Dense: unknown argument 'outdim'" "decoding {\"layer\":\"Dense\",\"outdim\":3}"
            Expect.stringContains (decodeError """{"layer":"Dense"}""") "Dense: missing required argument 'out_dim'" "decoding {\"layer\":\"Dense\"}"
            Expect.stringContains (decodeError """{"layer":"Dense","out_dim":3,"W_std":"big"}""") "'W_std' must be a number" "decoding {\"layer\":\"Dense\",\"out_dim\":3,\"W_std\":\"big\"}"
            Expect.stringContains (decodeError """{"layer":"Dense","out_dim":3.5}""") "'out_dim' must be an integer" "decoding {\"layer\":\"Dense\",\"out_dim\":3.5}"
            Expect.stringContains (decodeError """{"layer":"Dense","out_dim":3,"parameterization":"mup"}""") "parameterization" "decoding {\"layer\":\"Dense\",\"out_dim\":3,\"parameterization\":\"mup\"}"
            Expect.stringContains (decodeError """{"layer":"Dense","out_dim":3,"W_std":-2}""") "W_std" "decoding {\"layer\":\"Dense\",\"out_dim\":3,\"W_std\":-2}"
            Expect.stringContains (decodeError """{"layer":"MaxPool"}""") "unknown layer 'MaxPool'" "decoding {\"layer\":\"MaxPool\"}"
            Expect.stringContains (decodeError """{"layer": """) "not valid JSON" "decoding {\"layer\": "
            // A key given twice is refused rather than one of the two taken silently.
            Expect.stringContains (decodeError """{"layer":"Dense","out_dim":3,"out_dim":4}""") "Duplicate property 'out_dim'" "decoding a duplicate out_dim"
            Expect.stringContains (decodeError """{"layer":"serial","layers":3}""") "'layers' must be a list" "decoding {\"layer\":\"serial\",\"layers\":3}"

        // ---- Issue #6: integer ranges, FanOut's limit, argument names, empty parallel, lone surrogates ----

        testCase "(3) integer arguments must fit their range, which the message states" <| fun () ->
            for text, fragment in
                [ """{"layer":"Dense","out_dim":2147483648}""", "'out_dim' must be an integer in 1..2147483647, got 2147483648"
                  """{"layer":"Dense","out_dim":1,"s":[1e300,1]}""", "'s' must be a list of two integers in 1..2147483647"
                  """{"layer":"FanOut","num":1e9}""", "'num' must be an integer in 1..1024"
                  """{"layer":"Monomial","degree":7}""", "'degree' must be an integer in 0..5"
                  """{"layer":"Flatten","batch_axis_out":2}""", "'batch_axis_out' must be an integer in 0..1"
                  """{"layer":"FanInConcat","axis":1e10}""", "'axis' must be an integer in -2147483648..2147483647" ] do
                Expect.stringContains (decodeError text) fragment text

        testCase "(8) FanOut takes at most 1024 branches, in the F# API too" <| fun () ->
            Expect.throwsT<System.ArgumentException> (fun () -> Stax.fanOut 1025 |> ignore) "Stax.fanOut 1025"
            Expect.equal (Stax.fanOut 1024) (FanOut 1024) "Stax.fanOut 1024"

        testCase "(10) LeakyRelu's argument is called alpha; an empty parallel says it needs a branch" <| fun () ->
            let m = decodeError """{"layer":"LeakyRelu","alpha":1e999}"""
            Expect.stringContains m "LeakyRelu: alpha must be finite" m
            let p = decodeError """{"layer":"parallel","layers":[]}"""
            Expect.stringContains p "needs at least one branch" p
            Expect.throwsT<System.ArgumentException> (fun () -> Stax.parallelOf [] |> ignore) "Stax.parallelOf []"

        testCase "(10) a lone surrogate is an architecture error, not an internal one" <| fun () ->
            Expect.stringContains (decodeError """{"layer":"\ud800"}""") "unpaired UTF-16 surrogate" "decoding \\ud800"

        testCase "enum names are upper case as in neural_tangents; a lower-case one is refused with its spelling" <| fun () ->
            // neural_tangents' Enum constructors are case-sensitive (Padding('same') raises), so a JSON network that
            // decodes here also builds there.
            for text, arg, right in
                [ """{"layer":"AvgPool","window_shape":[2],"padding":"same"}""", "padding", "SAME"
                  """{"layer":"SumPool","window_shape":[2],"padding":"circular"}""", "padding", "CIRCULAR"
                  """{"layer":"Conv","out_chan":2,"filter_shape":[3],"padding":"Valid"}""", "padding", "VALID"
                  """{"layer":"Aggregate","implementation":"sparse"}""", "implementation", "SPARSE"
                  """{"layer":"GlobalSelfAttention","n_chan_out":2,"n_chan_key":2,"n_chan_val":2,"n_heads":1,"attention_mechanism":"identity"}""", "attention_mechanism", "IDENTITY"
                  """{"layer":"GlobalSelfAttention","n_chan_out":2,"n_chan_key":2,"n_chan_val":2,"n_heads":1,"pos_emb_type":"sum"}""", "pos_emb_type", "SUM" ] do
                let m = decodeError text
                Expect.stringContains m (sprintf "argument '%s'" arg) text
                Expect.stringContains m (sprintf "upper case, as in neural_tangents: \"%s\"" right) text
                Json.decode (text.Replace(sprintf "\"%s\"" (right.ToLowerInvariant()), sprintf "\"%s\"" right).Replace("\"Valid\"", "\"VALID\"")) |> ignore
            let unknown = decodeError """{"layer":"AvgPool","window_shape":[2],"padding":"FULL"}"""
            Expect.stringContains unknown "must be \"VALID\", \"SAME\" or \"CIRCULAR\", got \"FULL\"" unknown
            Expect.isFalse (unknown.Contains "upper case") "no case hint for an unknown name"

        testCase "serial nested 100 deep decodes and round-trips; beyond the depth limit the message says what to do" <| fun () ->
            let nested (levels: int) =
                let inner = """{"layer":"Dense","out_dim":2}"""
                Seq.fold (fun acc _ -> sprintf """{"layer":"serial","layers":[%s]}""" acc) inner (seq { 1 .. levels })
            // 100 serials are 201 levels of objects and arrays (System.Text.Json's default refuses 65).
            let layer = Json.decode (nested 100)
            Expect.equal (Json.decode (Json.encode layer)) layer "round trip"
            let m = decodeError (nested 200)
            Expect.stringContains m (sprintf "nests more than %d levels deep" Json.maxDepth) m
            Expect.stringContains m "write nested serial layers as one serial" m

        testCase "every Activation case has a JSON reader in its family, and each round-trips" <| fun () ->
            // Required arguments of the readers that have some; the others decode from {"layer": name}.
            let required = Map [ "LeakyRelu", ",\"alpha\":0.1"; "ABRelu", ",\"a\":-0.5,\"b\":2"; "Monomial", ",\"degree\":3"
                                 "Hermite", ",\"degree\":3"; "RectifiedMonomial", ",\"degree\":2"; "Polynomial", ",\"coef\":[0.5,-1,2]"
                                 "ElementwiseNumerical", ",\"fn\":\"tanh\",\"deg\":10"; "Elementwise", ",\"fn\":\"erf\",\"nngp_fn\":\"erf\"" ]
            let decoded =
                [ for r in NeuralTangents.Layers.Elementwise.readers do
                    let text = sprintf "{\"layer\":\"%s\"%s}" r.Name (defaultArg (required.TryFind r.Name) "")
                    let layer = Json.decode text
                    Expect.equal (Json.decode (Json.encode layer)) layer (sprintf "%s round-trips" r.Name)
                    match layer with
                    | Activation a -> yield a
                    | other -> failtestf "%s decoded to %A" r.Name other ]
            let caseName (a: Activation) = (fst (Microsoft.FSharp.Reflection.FSharpValue.GetUnionFields(a, typeof<Activation>))).Name
            let covered = decoded |> List.map caseName |> Set.ofList
            // Custom holds user functions, which cannot travel as JSON (encoding it raises; tested in ActivationNumericalTests).
            let cases = Microsoft.FSharp.Reflection.FSharpType.GetUnionCases typeof<Activation> |> Array.map (fun c -> c.Name) |> Set.ofArray |> Set.remove "Custom"
            Expect.equal covered cases "every case of Activation is read by some JSON name"
    ]
