// F# script: build the Core once (dotnet build -c Release), then: dotnet fsi examples/quickstart.fsx
#r "../src/NeuralTangents.Core/bin/Release/net10.0/NeuralTangents.Core.dll"

// README: fsharp-snippet begin
open NeuralTangents

let net =
    Stax.Serial(Stax.Dense(512, W_std = 1.5, b_std = 0.05), Stax.Relu(),
                Stax.Dense(512, W_std = 1.5, b_std = 0.05), Stax.Relu(),
                Stax.Dense(1, W_std = 1.5, b_std = 0.05))
let initFn, applyFn, kernelFn = Stax.Functions net
let x1 = Tensor.ofArray2D (array2D [ [ 1.0; 0.5; -0.2 ]; [ 0.3; -1.0; 0.8 ] ])
let x2 = Tensor.ofArray2D (array2D [ [ 0.1; 0.2; 0.3 ] ])
let k = kernelFn x1 (Some x2) Both
printfn "NNGP %A" (Tensor.toArray2D k.Nngp)
printfn "NTK  %A" (Tensor.toArray2D k.Ntk.Value)
let outShape, p = initFn (Rng.ofSeed 0) [| -1; 3 |]   // -1: any batch size, as neural_tangents' (-1, 3)
printfn "finite net: output %A, f(x1) = %A" outShape (Tensor.toArray2D (applyFn p x1 ApplyContext.Empty))
printfn "as JSON: %s" (Json.encode net)
// README: fsharp-snippet end
