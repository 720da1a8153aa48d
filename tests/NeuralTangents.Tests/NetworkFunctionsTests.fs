/// The (init_fn, apply_fn, kernel_fn) triple of a network and apply_fn's side inputs (random key, named inputs).
module NeuralTangents.Tests.NetworkFunctionsTests

open Expecto
open NeuralTangents
open NeuralTangents.Tests.TestUtil

let private net =
    Stax.serial [ Stax.dense 8 1.4 (Some 0.1); Stax.relu; Stax.dense 8 1.2 None; Stax.erf 1.0 1.0 0.0; Stax.dense 2 1.0 (Some 0.3) ]

[<Tests>]
let tests =
    testList "NetworkFunctionsTests" [
        testCase "Stax.functions gives init_fn, apply_fn and kernel_fn of the network" <| fun () ->
            let initFn, applyFn, kernelFn = Stax.functions net
            let x = randomTensor 3 5 4
            let shape, p = initFn (Rng.ofSeed 11) x.Shape
            let shape', p' = InitFn.init 11 net x.Shape
            Expect.equal shape shape' "init_fn = InitFn.init with the seed's key"
            Expect.equal (Params.toVector p) (Params.toVector p') "same parameters"
            Expect.equal shape [| 5; 2 |] "output shape"
            let y = applyFn p x ApplyContext.Empty
            Expect.equal y.Data (ApplyFn.apply net p x).Data "apply_fn = ApplyFn.apply"
            let k = kernelFn x None Both
            Expect.equal k.Nngp.Data (KernelFn.compute net x None Both).Nngp.Data "kernel_fn = KernelFn.compute"

        testCase "a deterministic network ignores the random key and side inputs of apply" <| fun () ->
            let x = randomTensor 4 3 4
            let _, p = InitFn.init 2 net x.Shape
            let plain = ApplyFn.apply net p x
            let ctx = { Rng = Some(Rng.ofSeed 99); Side = Map.ofList [ "pattern", randomTensor 5 3 3 ] }
            Expect.equal (ApplyFn.applyWith ctx net p x).Data plain.Data "same outputs with a key and a side input"

        testCase "parameters are a tree of tensors: Dense leaves hold [W; b] or [W], activations none" <| fun () ->
            let _, p = InitFn.init 1 net [| 3; 4 |]
            match p with
            | Branches [ Leaf [ w0; b0 ]; Leaf []; Leaf [ w2 ]; Leaf []; Leaf [ w4; b4 ] ] ->
                Expect.equal w0.Shape [| 4; 8 |] "W of the first Dense"
                Expect.equal b0.Shape [| 1; 8 |] "b of the first Dense"
                Expect.equal w2.Shape [| 8; 8 |] "W of the bias-free Dense"
                Expect.equal (w4.Shape, b4.Shape) ([| 8; 2 |], [| 1; 2 |]) "readout"
            | other -> failtestf "unexpected parameter tree %A" other
    ]
