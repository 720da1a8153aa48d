/// The named-argument API (`Stax.Dense(512, W_std = 1.5)`) builds the same Layer values as the curried functions and
/// as neural_tangents' JSON (the codec reads Python's names and defaults), and init_fn takes −1 for the batch axis.
module NeuralTangents.Tests.StaxNamedTests

open System
open Expecto
open NeuralTangents

/// (what, named API, curried API, the same layer as neural_tangents' JSON or None where JSON cannot carry it).
let private cases : (string * Layer * Layer * string option) list =
    [ "Dense defaults", Stax.Dense(3), Stax.dense 3 1.0 None, Some """{"layer":"Dense","out_dim":3}"""
      "Dense(512, W_std=1.5, b_std=0.05)", Stax.Dense(512, W_std = 1.5, b_std = 0.05), Stax.dense 512 1.5 (Some 0.05),
      Some """{"layer":"Dense","out_dim":512,"W_std":1.5,"b_std":0.05}"""
      "Dense standard", Stax.Dense(4, parameterization = "standard", s = (1, 2), channel_axis = 1, batch_axis = 0),
      Stax.denseWith { Stax.denseDefaults 4 with Parameterization = Parameterization.Standard; S = (1, 2); ChannelAxis = 1 },
      Some """{"layer":"Dense","out_dim":4,"parameterization":"standard","s":[1,2],"channel_axis":1}"""
      "Conv 2-D pair", Stax.Conv(64, (3, 3), padding = Padding.Same), Stax.conv 64 [ 3; 3 ] None Padding.Same 1.0 None,
      Some """{"layer":"Conv","out_chan":64,"filter_shape":[3,3],"padding":"SAME"}"""
      "Conv list, strides, b_std", Stax.Conv(8, [ 2 ], strides = [ 2 ], W_std = 2.0, b_std = 0.1),
      Stax.conv 8 [ 2 ] (Some [ 2 ]) Padding.Valid 2.0 (Some 0.1),
      Some """{"layer":"Conv","out_chan":8,"filter_shape":[2],"strides":[2],"W_std":2.0,"b_std":0.1}"""
      "ConvTranspose", Stax.ConvTranspose(4, (2, 2), strides = (2, 1), padding = Padding.Circular),
      Stax.convTranspose 4 [ 2; 2 ] (Some [ 2; 1 ]) Padding.Circular 1.0 None,
      Some """{"layer":"ConvTranspose","out_chan":4,"filter_shape":[2,2],"strides":[2,1],"padding":"CIRCULAR"}"""
      "ConvLocal", Stax.ConvLocal(4, [ 3; 1 ]), Stax.convLocal 4 [ 3; 1 ] None Padding.Valid 1.0 None,
      Some """{"layer":"ConvLocal","out_chan":4,"filter_shape":[3,1]}"""
      "AvgPool((2, 2))", Stax.AvgPool((2, 2)), Stax.avgPool [ 2; 2 ] None Padding.Valid,
      Some """{"layer":"AvgPool","window_shape":[2,2]}"""
      "AvgPool normalize_edges", Stax.AvgPool([ 3 ], strides = [ 2 ], padding = Padding.Same, normalize_edges = true),
      Stax.avgPoolWith { Stax.poolDefaults [ 3 ] with Strides = [ 2 ]; Padding = Padding.Same } true,
      Some """{"layer":"AvgPool","window_shape":[3],"strides":[2],"padding":"SAME","normalize_edges":true}"""
      "SumPool", Stax.SumPool((2, 1), strides = (1, 1)), Stax.sumPool [ 2; 1 ] (Some [ 1; 1 ]) Padding.Valid,
      Some """{"layer":"SumPool","window_shape":[2,1],"strides":[1,1]}"""
      "GlobalAvgPool", Stax.GlobalAvgPool(), Stax.globalAvgPool, Some """{"layer":"GlobalAvgPool"}"""
      "GlobalSumPool axes", Stax.GlobalSumPool(channel_axis = 1), Stax.globalSumPoolWith 0 1,
      Some """{"layer":"GlobalSumPool","channel_axis":1}"""
      "Flatten", Stax.Flatten(), Stax.flatten, Some """{"layer":"Flatten"}"""
      "Flatten batch_axis_out", Stax.Flatten(batch_axis_out = 1), Stax.flattenWith 0 1,
      Some """{"layer":"Flatten","batch_axis_out":1}"""
      "serial", Stax.Serial(Stax.Dense(2), Stax.Relu()), Stax.serial [ Stax.dense 2 1.0 None; Stax.relu ],
      Some """{"layer":"serial","layers":[{"layer":"Dense","out_dim":2},{"layer":"Relu"}]}"""
      "parallel", Stax.Parallel(Stax.Identity(), Stax.Erf()), Stax.parallelOf [ Stax.identity; Stax.erf 1.0 1.0 0.0 ],
      Some """{"layer":"parallel","layers":[{"layer":"Identity"},{"layer":"Erf"}]}"""
      "Identity", Stax.Identity(), Stax.identity, Some """{"layer":"Identity"}"""
      "FanOut", Stax.FanOut(3), Stax.fanOut 3, Some """{"layer":"FanOut","num":3}"""
      "repeat", Stax.Repeat(Stax.Erf(), 2), Stax.repeat 2 (Stax.erf 1.0 1.0 0.0), Some """{"layer":"repeat","layer_":{"layer":"Erf"},"n":2}"""
      "FanInSum", Stax.FanInSum(), Stax.fanInSum, Some """{"layer":"FanInSum"}"""
      "FanInProd", Stax.FanInProd(), Stax.fanInProd, Some """{"layer":"FanInProd"}"""
      "FanInConcat default axis", Stax.FanInConcat(), Stax.fanInConcat -1, Some """{"layer":"FanInConcat"}"""
      "Relu", Stax.Relu(), Stax.relu, Some """{"layer":"Relu"}"""
      "ABRelu", Stax.ABRelu(-0.5, 2.0), Stax.abRelu -0.5 2.0, Some """{"layer":"ABRelu","a":-0.5,"b":2.0}"""
      "LeakyRelu", Stax.LeakyRelu(0.1), Stax.leakyRelu 0.1, Some """{"layer":"LeakyRelu","alpha":0.1}"""
      "Relu do_stabilize", Stax.Relu(do_stabilize = true), Stax.relu, Some """{"layer":"Relu","do_stabilize":true}"""
      "ABRelu do_stabilize", Stax.ABRelu(-0.5, 2.0, do_stabilize = true), Stax.abRelu -0.5 2.0, None
      "LeakyRelu do_stabilize", Stax.LeakyRelu(0.1, true), Stax.leakyRelu 0.1, None
      "Abs do_stabilize", Stax.Abs(do_stabilize = false), Stax.abs, Some """{"layer":"Abs","do_stabilize":false}"""
      "Abs", Stax.Abs(), Stax.abs, Some """{"layer":"Abs"}"""
      "Erf defaults", Stax.Erf(), Stax.erf 1.0 1.0 0.0, Some """{"layer":"Erf"}"""
      "Erf(a=2)", Stax.Erf(a = 2.0), Stax.erf 2.0 1.0 0.0, Some """{"layer":"Erf","a":2.0}"""
      "Sigmoid_like", Stax.Sigmoid_like(), Stax.sigmoidLike, Some """{"layer":"Sigmoid_like"}"""
      "Sin", Stax.Sin(b = 2.0), Stax.sin 1.0 2.0 0.0, Some """{"layer":"Sin","b":2.0}"""
      "Cos", Stax.Cos(c = 0.5), Stax.cos 1.0 1.0 0.5, Some """{"layer":"Cos","c":0.5}"""
      "Gelu", Stax.Gelu(), Stax.gelu false, Some """{"layer":"Gelu"}"""
      "Gelu approximate", Stax.Gelu(approximate = true), Stax.gelu true, Some """{"layer":"Gelu","approximate":true}"""
      "Monomial", Stax.Monomial(2), Stax.monomial 2, Some """{"layer":"Monomial","degree":2}"""
      "RectifiedMonomial", Stax.RectifiedMonomial(1), Stax.rectifiedMonomial 1, Some """{"layer":"RectifiedMonomial","degree":1}"""
      "Hermite", Stax.Hermite(3), Stax.hermite 3, Some """{"layer":"Hermite","degree":3}"""
      "Polynomial", Stax.Polynomial([ 0.5; 0.0; 1.0 ]), Stax.polynomial [ 0.5; 0.0; 1.0 ],
      Some """{"layer":"Polynomial","coef":[0.5,0.0,1.0]}"""
      "Exp", Stax.Exp(), Stax.exp 1.0 1.0, Some """{"layer":"Exp"}"""
      "Gaussian defaults", Stax.Gaussian(), Stax.gaussian 1.0 -1.0, Some """{"layer":"Gaussian"}"""
      "ExpNormalized", Stax.ExpNormalized(do_clip = true), Stax.expNormalized 1.0 -1.0 true,
      Some """{"layer":"ExpNormalized","do_clip":true}"""
      "Rbf", Stax.Rbf(gamma = 0.5), Stax.rbf 0.5, Some """{"layer":"Rbf","gamma":0.5}"""
      "Sign", Stax.Sign(), Stax.sign, Some """{"layer":"Sign"}"""
      "Gabor", Stax.Gabor(), Stax.gabor, Some """{"layer":"Gabor"}"""
      "ElementwiseNumerical", Stax.ElementwiseNumerical("tanh", 10), Stax.elementwiseNumerical "tanh" 10 None,
      Some """{"layer":"ElementwiseNumerical","fn":"tanh","deg":10}"""
      "Dropout default mode", Stax.Dropout(0.8), Stax.dropout 0.8 DropoutMode.Train, Some """{"layer":"Dropout","rate":0.8}"""
      "LayerNorm defaults", Stax.LayerNorm(), Stax.layerNorm [ -1 ] 1e-12 0 -1, Some """{"layer":"LayerNorm"}"""
      "LayerNorm axes", Stax.LayerNorm(axis = [ 1; 2 ], eps = 1e-6), Stax.layerNorm [ 1; 2 ] 1e-6 0 -1,
      Some """{"layer":"LayerNorm","axis":[1,2],"eps":1e-6}"""
      "DotGeneral identity", Stax.DotGeneral(), Stax.dotGeneral None None (([], []), ([], [])) 0 -1, Some """{"layer":"DotGeneral"}"""
      "DotGeneral rhs", Stax.DotGeneral(rhs = Tensor.create [||] [| -2.0 |]),
      Stax.dotGeneral None (Some(Tensor.create [||] [| -2.0 |])) (([], []), ([], [])) 0 -1, None
      "Index", Stax.Index([ IndexEntry.Rest; IndexEntry.Range(None, None, None) ]),
      Stax.index [ IndexEntry.Rest; IndexEntry.Range(None, None, None) ] 0 -1, Some """{"layer":"Index","idx":["...",":"]}"""
      "ImageResize", Stax.ImageResize([ -1; 4; 4; -1 ], ResizeMethod.Linear),
      Stax.imageResize [ -1; 4; 4; -1 ] ResizeMethod.Linear true 0 -1,
      Some """{"layer":"ImageResize","shape":[-1,4,4,-1],"method":"linear"}"""
      "Aggregate defaults", Stax.Aggregate(), Stax.aggregate None 0 -1 AggregateImplementation.Dense, Some """{"layer":"Aggregate"}"""
      "GlobalSelfAttention", Stax.GlobalSelfAttention(4, 3, 2, 2, W_out_std = 1.5, attention_mechanism = AttentionMechanism.Relu),
      Stax.globalSelfAttentionWith { Stax.attentionDefaults 4 3 2 2 with WOutStd = 1.5; AttentionMechanism = AttentionMechanism.Relu },
      Some """{"layer":"GlobalSelfAttention","n_chan_out":4,"n_chan_key":3,"n_chan_val":2,"n_heads":2,"W_out_std":1.5,"attention_mechanism":"RELU"}"""
      // Positional in neural_tangents' order: ..., pos_emb_type, pos_emb_p_norm, pos_emb_decay_fn, n_chan_pos_emb, ...
      "GlobalSelfAttention positional", Stax.GlobalSelfAttention(4, 3, 2, 2, true, 1.0, 1.0, 1.0, 1.0, 0.1, AttentionMechanism.Identity,
                                                                 PositionalEmbedding.Sum, 1.0, PosEmbDecay.Power 2.0, 5),
      Stax.globalSelfAttentionWith
          { Stax.attentionDefaults 4 3 2 2 with
              BStd = Some 0.1; AttentionMechanism = AttentionMechanism.Identity; PosEmbType = PositionalEmbedding.Sum
              PosEmbPNorm = 1.0; PosEmbDecayFn = PosEmbDecay.Power 2.0; NChanPosEmb = Some 5 }, None ]

let private argumentError (f: unit -> Layer) =
    try
        f () |> ignore
        failwith "expected an ArgumentException"
    with :? ArgumentException as e -> e.ParamName, e.Message

[<Tests>]
let tests =
    testList "StaxNamedTests" [
        testCase "named arguments build the same layers as the curried functions and as neural_tangents' JSON" <| fun () ->
            for what, named, curried, json in cases do
                Expect.equal named curried (sprintf "%s: named = curried" what)
                json |> Option.iter (fun text -> Expect.equal named (Json.decode text) (sprintf "%s: named = JSON %s" what text))

        testCase "every Layer case and every activation case is covered by the named API" <| fun () ->
            let layerCase (l: Layer) = (Reflection.FSharpValue.GetUnionFields(l, typeof<Layer>) |> fst).Name
            let actCase (a: Activation) = (Reflection.FSharpValue.GetUnionFields(a, typeof<Activation>) |> fst).Name
            let layers = cases |> List.map (fun (_, l, _, _) -> layerCase l) |> set
            let acts = cases |> List.choose (fun (_, l, _, _) -> match l with Activation a -> Some(actCase a) | _ -> None) |> set
            let all (t: Type) = Reflection.FSharpType.GetUnionCases t |> Array.map (fun c -> c.Name) |> set
            // Custom (user functions) and ElementwiseNamed (JSON-only names) are checked separately below / by JsonTests.
            let missing = Set.difference (all typeof<Layer>) layers
            Expect.isEmpty missing (sprintf "Layer cases without a named-API case: %A" missing)
            Expect.isEmpty (Set.difference (all typeof<Activation>) (acts + set [ "Custom"; "ElementwiseNamed" ])) "activations without a case"

        testCase "user-function activations keep their functions" <| fun () ->
            match Stax.Elementwise("cube", (fun c _ _ -> c * c * c), (fun c _ _ -> 3.0 * c * c), fn = (fun x -> x * x * x)) with
            | Activation(Custom c) ->
                Expect.equal c.Name "cube" "name"
                Expect.equal (c.Fn |> Option.map (fun f -> f 2.0)) (Some 8.0) "fn"
                Expect.isNone c.DFn "df not given"
                Expect.equal (c.Step 2.0 1.0 1.0) (struct (8.0, 12.0)) "nngp_fn and d_nngp_fn"
            | other -> failtestf "expected a custom activation, got %A" other

        testCase "bad arguments raise ArgumentException naming the argument with neural_tangents' name" <| fun () ->
            let p, m = argumentError (fun () -> Stax.Dense(0))
            Expect.equal p "out_dim" "Dense(0)"
            Expect.stringContains m "got 0" "message states the value"
            let p, m = argumentError (fun () -> Stax.Dense(2, parameterization = "mup"))
            Expect.equal p "parameterization" "Dense(parameterization='mup')"
            Expect.stringContains m "\"ntk\" or \"standard\"" "message names the choices"
            Expect.equal (fst (argumentError (fun () -> Stax.Conv(4, (3, 3), W_std = -1.0)))) "W_std" "Conv(W_std=-1)"
            Expect.equal (fst (argumentError (fun () -> Stax.AvgPool((2, 0))))) "window_shape" "AvgPool((2, 0))"

        testCase "init_fn takes -1 for the batch axis and reports it in the output shape" <| fun () ->
            let net = Stax.Serial(Stax.Dense(8, W_std = 1.5, b_std = 0.1), Stax.Relu(), Stax.Dense(3))
            let initFn, _, _ = Stax.Functions net
            let shape, p = initFn (Rng.ofSeed 4) [| -1; 5 |]
            Expect.equal shape [| -1; 3 |] "output shape (-1, 3)"
            let shape7, p7 = initFn (Rng.ofSeed 4) [| 7; 5 |]
            Expect.equal shape7 [| 7; 3 |] "output shape with a batch of 7"
            Expect.equal (Params.toVector p) (Params.toVector p7) "same parameters for any batch size"

        testCase "init_fn with -1 follows the batch axis through Flatten(batch_axis_out=1) and a CNN" <| fun () ->
            let cnn = Stax.Serial(Stax.Conv(4, (2, 2), padding = Padding.Same), Stax.Relu(), Stax.AvgPool((2, 2)), Stax.Flatten(batch_axis_out = 1))
            let shape, _ = InitFn.init 1 cnn [| -1; 4; 4; 3 |]
            // SAME conv keeps 4×4; AvgPool's default strides are ones (neural_tangents' strides=None), VALID: 3×3.
            Expect.equal shape [| 3 * 3 * 4; -1 |] "flattened features first, batch second"

        testCase "init_fn rejects two -1 entries and other negative sizes" <| fun () ->
            let net = Stax.Dense(2)
            Expect.throwsT<ArgumentException> (fun () -> InitFn.init 0 net [| -1; -1 |] |> ignore) "two -1"
            Expect.throwsT<ArgumentException> (fun () -> InitFn.init 0 net [| -2; 3 |] |> ignore) "-2"
            // No axes at all: named, not an axis error from inside the first layer.
            let e = NeuralTangents.Tests.TestUtil.throwsExactly<ArgumentException> (fun () -> InitFn.init 0 net [||] |> ignore)
            Expect.equal e.ParamName "inputShape" "no axes"
            Expect.stringContains e.Message "has no axes" "no axes"
    ]
