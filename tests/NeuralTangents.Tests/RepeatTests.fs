/// neural_tangents' `repeat(layer, n)`: the same network as `serial` of n copies with untied parameters, in the
/// kernel (Conv's is_reversed flips included), init, apply, the backward pass, JVPs, the empirical NTK and JSON;
/// a layer that changes its input shape is refused by init, as neural_tangents' init_fn_repeat does.
module NeuralTangents.Tests.RepeatTests

open System
open Expecto
open NeuralTangents
open NeuralTangents.Tests.TestUtil

let private tensorOf (seed: int) (shape: int[]) = Tensor.create shape (normals seed (Array.fold (*) 1 shape))

let private copies n layer = Stax.serial (List.replicate n layer)

/// Bit-for-bit equality of two arrays (the two networks run the same operations in the same order).
let private same (what: string) (expected: float[]) (actual: float[]) =
    if expected <> actual then failtestf "%s: expected %A, got %A" what expected actual

let private ntkOf (k: Kernel) = (Option.get k.Ntk).Data

let private block = Stax.serial [ Stax.dense 4 1.3 (Some 0.4); Stax.relu ]
let private conv = Stax.conv 3 [ 3; 3 ] None Padding.Same 1.2 (Some 0.1)

/// (what, repeated layer, input shape, n).
let private cases : (string * Layer * int[] * int) list =
    [ "Dense+Relu ×3", block, [| 3; 4 |], 3
      "Dense ×1", Stax.dense 4 0.9 None, [| 2; 4 |], 1
      // An odd number of 2-D convolutions leaves neural_tangents' is_reversed flipped: exact here either way.
      "Conv SAME ×3 (full layout)", conv, [| 2; 5; 4; 3 |], 3
      "Conv SAME + Relu ×2", Stax.serial [ conv; Stax.relu ], [| 2; 4; 5; 3 |], 2
      "FanOut/parallel/FanInSum ×2",
        Stax.serial [ Stax.fanOut 2; Stax.parallelOf [ Stax.dense 4 1.1 (Some 0.2); Stax.dense 4 0.8 None ]; Stax.fanInSum ],
        [| 3; 4 |], 2 ]

[<Tests>]
let tests =
    testList "repeat" [
        testCase "kernel equals serial of n copies, nngp and ntk, bit for bit" <| fun () ->
            for what, layer, shape, n in cases do
                let x1 = tensorOf 1 shape
                let x2 = tensorOf 2 shape
                // Images also through GlobalAvgPool, which reads the (possibly reversed) full layout.
                let tops = if shape.Length > 2 then [ id; (fun l -> Stax.serial [ l; Stax.globalAvgPool ]) ] else [ id ]
                for top in tops do
                    let r = KernelFn.compute (top (Stax.repeat n layer)) x1 (Some x2) Both
                    let s = KernelFn.compute (top (copies n layer)) x1 (Some x2) Both
                    same (what + " nngp") s.Nngp.Data r.Nngp.Data
                    same (what + " ntk") (ntkOf s) (ntkOf r)

        testCase "kernel of repeat(Dense) follows the closed form K ← W²K + b², Θ ← W²Θ + K" <| fun () ->
            let w, b, n = 1.3, 0.4, 3
            let x1 = tensorOf 3 [| 2; 5 |]
            let x2 = tensorOf 4 [| 3; 5 |]
            let k = KernelFn.compute (Stax.repeat n (Stax.dense 5 w (Some b))) x1 (Some x2) Both
            let kNtk = ntkOf k
            for i in 0 .. 1 do
                for j in 0 .. 2 do
                    let mutable nngp = (Array.init 5 (fun c -> x1.Data[5 * i + c] * x2.Data[5 * j + c]) |> Array.sum) / 5.0
                    let mutable ntk = 0.0
                    for _ in 1 .. n do
                        nngp <- w * w * nngp + b * b
                        ntk <- w * w * ntk + nngp
                    // Three multiply-adds on O(1) values: a few ulps.
                    Expect.floatClose { absolute = 1e-14; relative = 1e-14 } k.Nngp.Data[3 * i + j] nngp (sprintf "nngp[%d,%d]" i j)
                    Expect.floatClose { absolute = 1e-14; relative = 1e-14 } kNtk[3 * i + j] ntk (sprintf "ntk[%d,%d]" i j)

        testCase "init: the shape kept, n untied copies, the same parameters as serial of copies" <| fun () ->
            let n = 3
            let shape, p = InitFn.init 7 (Stax.repeat n (Stax.dense 4 1.0 (Some 0.5))) [| 2; 4 |]
            Expect.equal shape [| 2; 4 |] "output shape"
            Expect.equal (Params.count p) (n * (4 * 4 + 4)) "n copies of a 4×4 weight and a bias"
            let _, ps = InitFn.init 7 (copies n (Stax.dense 4 1.0 (Some 0.5))) [| 2; 4 |]
            same "parameters of serial of copies" (Params.toVector ps) (Params.toVector p)
            match p with
            | Branches [ a; b; c ] ->
                Expect.isTrue (Params.toVector a <> Params.toVector b && Params.toVector b <> Params.toVector c)
                    "copies draw from different keys (untied)"
            | other -> failtestf "expected three branches, got %A" other
            let shape', _ = InitFn.init 7 (Stax.repeat n (Stax.dense 4 1.0 None)) [| -1; 4 |]
            Expect.equal shape' [| -1; 4 |] "−1 batch axis kept"

        testCase "apply, backward pass, JVP and empirical NTK equal serial of copies with the same parameters" <| fun () ->
            for what, layer, shape, n in cases do
                let r, s = Stax.repeat n layer, copies n layer
                let _, p = InitFn.init 5 r shape
                let x = tensorOf 6 shape
                let y = ApplyFn.apply r p x
                same (what + " apply") (ApplyFn.apply s p x).Data y.Data
                let ct = tensorOf 8 y.Shape
                let gr, gxr = Backward.vjp r p x ct
                let gs, gxs = Backward.vjp s p x ct
                same (what + " vjp params") (Params.toVector gs) (Params.toVector gr)
                same (what + " vjp input") gxs.Data gxr.Data
                let tp = Params.ofVector p (normals 9 (Params.count p))
                let tx = tensorOf 10 shape
                let yr, dr = Jvp.jvp r p tp x tx
                let ys, ds = Jvp.jvp s p tp x tx
                same (what + " jvp primal") ys.Data yr.Data
                same (what + " jvp tangent") ds.Data dr.Data
                let x2 = tensorOf 11 shape
                // The empirical NTK traces the channel axis of (N, C) outputs only.
                if y.Shape.Length = 2 then
                  same (what + " empirical ntk") (Empirical.ntk s p x (Some x2)).Data (Empirical.ntk r p x (Some x2)).Data

        testCase "n = 0 is the identity" <| fun () ->
            let r = Stax.repeat 0 block
            let shape, p = InitFn.init 1 r [| 3; 4 |]
            Expect.equal shape [| 3; 4 |] "shape"
            Expect.equal (Params.count p) 0 "no parameters"
            let x = tensorOf 2 [| 3; 4 |]
            same "apply" x.Data (ApplyFn.apply r p x).Data
            let k = KernelFn.compute r x None Both
            let i = KernelFn.compute Stax.identity x None Both
            same "nngp" i.Nngp.Data k.Nngp.Data
            same "ntk" (ntkOf i) (ntkOf k)

        testCase "a layer that changes its shape is refused by init, naming repeat, the layer and the fix" <| fun () ->
            for n in [ 0; 1; 3 ] do
                let e = throwsExactly<NeuralTangentsException> (fun () ->
                            InitFn.init 0 (Stax.repeat n (Stax.dense 3 1.0 None)) [| 2; 4 |] |> ignore)
                for fragment in [ "repeat:"; "Dense"; "[|2; 4|]"; "[|2; 3|]"; "keeps its input shape"; "serial" ] do
                    Expect.stringContains e.Message fragment (sprintf "n = %d" n)

        testCase "n out of range is refused; the named API and the curried one build the same layer" <| fun () ->
            for n in [ -1; Stax.maxRepeat + 1 ] do
                let e = throwsExactly<ArgumentException> (fun () -> Stax.repeat n Stax.relu |> ignore)
                Expect.stringContains e.Message (sprintf "got %d" n) "the value is named"
            Expect.equal (Stax.Repeat(block, 4)) (Stax.repeat 4 block) "Stax.Repeat(layer, n)"
            Expect.equal (Definitions.name (Stax.repeat 2 block)) "repeat" "name"

        testCase "JSON: {\"layer\":\"repeat\",\"layer_\":…,\"n\":…} round trip and errors" <| fun () ->
            let r = Stax.repeat 3 (Stax.dense 4 1.5 (Some 0.1))
            let text = Json.encode r
            Expect.stringStarts text """{"layer":"repeat","layer_":{"layer":"Dense","out_dim":4""" "encoding"
            Expect.stringEnds text ""","n":3}""" "encoding"
            Expect.equal (Json.decode text) r "round trip"
            Expect.equal (Json.decode """{"layer":"repeat","layer_":{"layer":"Relu"},"n":2}""") (Stax.repeat 2 Stax.relu) "decoding"
            Expect.equal (Json.decode (Json.encode (Stax.repeat 2 (Stax.repeat 3 block)))) (Stax.repeat 2 (Stax.repeat 3 block)) "nested"
            let err (t: string) = (throwsExactly<Json.JsonArchitectureException> (fun () -> Json.decode t |> ignore)).Message
            Expect.stringContains (err """{"layer":"repeat","layer_":{"layer":"Relu"}}""") "repeat: missing required argument 'n'" "no n"
            Expect.stringContains (err """{"layer":"repeat","n":2}""") "repeat: missing required argument 'layer_'" "no layer_"
            Expect.stringContains (err """{"layer":"repeat","layer_":{"layer":"Relu"},"n":-1}""") "'n' must be an integer in 0..1000000" "n < 0"
            Expect.stringContains (err """{"layer":"repeat","layers":[{"layer":"Relu"}],"n":1}""") "repeat: unknown argument 'layers'" "serial's key"

        testCase "MaxPool, GlobalMaxPool and Cos2 are not neural_tangents layers: unknown, pointing to the README table" <| fun () ->
            for name in [ "MaxPool"; "GlobalMaxPool"; "Cos2" ] do
                let e = throwsExactly<Json.JsonArchitectureException> (fun () -> Json.decode (sprintf """{"layer":"%s"}""" name) |> ignore)
                Expect.stringContains e.Message (sprintf "unknown layer '%s'" name) name
                Expect.stringContains e.Message "README's layer table" name
    ]
