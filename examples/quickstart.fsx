// F# script: build the Core once (dotnet build -c Release), then: dotnet fsi examples/quickstart.fsx
#r "../src/NeuralTangents.Core/bin/Release/net10.0/NeuralTangents.Core.dll"

// README: fsharp-snippet begin
open NeuralTangents

let net =
    Stax.serial [ Stax.dense 512 1.5 (Some 0.05); Stax.relu
                  Stax.dense 512 1.5 (Some 0.05); Stax.relu
                  Stax.dense 1 1.5 (Some 0.05) ]
let x1 = Tensor.ofArray2D (array2D [ [ 1.0; 0.5; -0.2 ]; [ 0.3; -1.0; 0.8 ] ])
let x2 = Tensor.ofArray2D (array2D [ [ 0.1; 0.2; 0.3 ] ])
let k = KernelFn.compute net x1 (Some x2) Both
printfn "NNGP %A" (Tensor.toArray2D k.Nngp)
printfn "NTK  %A" (Tensor.toArray2D k.Ntk.Value)
printfn "as JSON: %s" (Json.encode net)
// README: fsharp-snippet end
