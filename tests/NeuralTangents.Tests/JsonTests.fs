/// Examples for the JSON architecture codec: neural_tangents' names and defaults, and its error messages.
module NeuralTangents.Tests.JsonTests

open NUnit.Framework
open NeuralTangents

let private decodeError (text: string) =
    try
        Json.decode text |> ignore
        failwith "expected an error"
    with Json.JsonArchitectureException msg -> msg

[<Test>]
let ``the issue's example decodes with every argument as written and defaults elsewhere`` () =
    let text =
        """{"layer":"serial","layers":[{"layer":"Dense","out_dim":512,"W_std":1.5,"b_std":0.05,"parameterization":"standard","s":[1,2]},{"layer":"Relu"},{"layer":"Dense","out_dim":1}]}"""
    let expected =
        Serial [ Dense { OutDim = 512; WStd = 1.5; BStd = Some 0.05; BatchAxis = 0; ChannelAxis = -1; Parameterization = Parameterization.Standard; S = (1, 2) }
                 ABRelu { A = 0.0; B = 1.0 }
                 Dense { OutDim = 1; WStd = 1.0; BStd = None; BatchAxis = 0; ChannelAxis = -1; Parameterization = Parameterization.Ntk; S = (1, 1) } ]
    Assert.That(Json.decode text, Is.EqualTo expected)

[<Test>]
let ``aliases map to neural_tangents' definitions`` () =
    Assert.That(Json.decode """{"layer":"LeakyRelu","alpha":0.1}""", Is.EqualTo(ABRelu { A = 0.1; B = 1.0 }))
    Assert.That(Json.decode """{"layer":"Abs"}""", Is.EqualTo(ABRelu { A = -1.0; B = 1.0 }))
    Assert.That(Json.decode """{"layer":"Sigmoid_like"}""", Is.EqualTo(Erf { A = 0.5; B = 1.0 / 2.4020563531719796; C = 0.5 }))
    Assert.That(Json.decode """{"layer":"Erf"}""", Is.EqualTo(Erf { A = 1.0; B = 1.0; C = 0.0 }))
    Assert.That(Json.decode """{"layer":"Dense","out_dim":3,"b_std":null}""", Is.EqualTo(Stax.dense 3 1.0 None))

[<Test>]
let ``errors name the layer and the argument`` () =
    Assert.That(decodeError """{"layer":"Densse","out_dim":3}""", Does.Contain("unknown layer 'Densse'"))
    Assert.That(decodeError """{"layer":"Dense","outdim":3}""", Does.Contain("Dense: unknown argument 'outdim'"))
    Assert.That(decodeError """{"layer":"Dense"}""", Does.Contain("Dense: missing required argument 'out_dim'"))
    Assert.That(decodeError """{"layer":"Dense","out_dim":3,"W_std":"big"}""", Does.Contain("'W_std' must be a number"))
    Assert.That(decodeError """{"layer":"Dense","out_dim":3.5}""", Does.Contain("'out_dim' must be an integer"))
    Assert.That(decodeError """{"layer":"Dense","out_dim":3,"parameterization":"mup"}""", Does.Contain("parameterization"))
    Assert.That(decodeError """{"layer":"Dense","out_dim":3,"W_std":-2}""", Does.Contain("W_std"))
    Assert.That(decodeError """{"layer":"Conv","out_chan":3,"filter_shape":[3,3]}""", Does.Contain("not implemented yet"))
    Assert.That(decodeError """{"layer": """, Does.Contain("not valid JSON"))
    Assert.That(decodeError """{"layer":"serial","layers":3}""", Does.Contain("'layers' must be a list"))
