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
            Expect.stringContains (decodeError """{"layer":"Conv","out_chan":3,"filter_shape":[3,3]}""") "not implemented yet" "decoding {\"layer\":\"Conv\",\"out_chan\":3,\"filter_shape\":[3,3]}"
            Expect.stringContains (decodeError """{"layer": """) "not valid JSON" "decoding {\"layer\": "
            Expect.stringContains (decodeError """{"layer":"serial","layers":3}""") "'layers' must be a list" "decoding {\"layer\":\"serial\",\"layers\":3}"
    ]
