/// Examples for kernel_fn: API behaviour, layouts and error messages.
module NeuralTangents.Tests.KernelFnTests

open System
open Expecto
open NeuralTangents
open NeuralTangents.Tests.TestUtil

let private mlp = Serial [ Stax.dense 512 1.5 (Some 0.05); Stax.relu; Stax.dense 1 1.5 (Some 0.05) ]

let private raises<'e when 'e :> exn> (f: unit -> obj) : string =
    try
        f () |> ignore
        failwith "expected an exception"
    with :? 'e as e -> e.Message

[<Tests>]
let tests =
    testList "KernelFnTests" [
        testCase "a batch_axis outside the inputs' rank is an argument error naming it, in the tiled path too" <| fun () ->
            let x = Tensor.create [| 1; 2 |] [| 1.0; 2.0 |]
            for axis in [ 3; -5 ] do
                let net = Stax.denseWith { Stax.denseDefaults 2 with BatchAxis = axis }
                let m = raises<ArgumentException> (fun () -> box (Batching.compute BatchOptions.Default net x None Both))
                Expect.stringContains m (sprintf "batch_axis=%d is out of range for inputs of rank 2" axis) m

        testCase "x1 and x2 of different widths: the message gives their whole shapes, batch sizes included" <| fun () ->
            let x1 = Tensor.create [| 5; 3 |] (Array.init 15 float)
            let x2 = Tensor.create [| 4; 4 |] (Array.init 16 float)
            let m = raises<ArgumentException> (fun () -> box (Batching.compute BatchOptions.Default mlp x1 (Some x2) Both))
            Expect.stringContains m "got shapes (5, 3) and (4, 4)" m

        testCase "inputs far outside float64's safe scale are refused; inside it a bias-free ReLU net is homogeneous" <| fun () ->
            // Dense (no bias) and Relu are positively homogeneous: K(a·x) = a²·K(x) for the NNGP and the NTK, so at
            // a = 1e-60 every entry is 1e-120 times the unit-scale one, to rounding (two products by powers of ten).
            let net = Stax.serial [ Stax.dense 8 1.5 None; Stax.relu; Stax.dense 8 1.5 None; Stax.relu; Stax.dense 1 1.5 None ]
            let x = Tensor.create [| 3; 4 |] (normals 91 12)
            let scaled (a: float) = Tensor.create x.Shape (x.Data |> Array.map (fun v -> a * v))
            let k = KernelFn.compute net x None Both
            let small = KernelFn.compute net (scaled 1e-60) None Both
            for i in 0 .. 8 do
                Expect.floatClose { absolute = 0.0; relative = 1e-14 } (small.Nngp.Data[i] / 1e-120) k.Nngp.Data[i] "nngp scales by a²"
                Expect.floatClose { absolute = 0.0; relative = 1e-14 } (small.Ntk.Value.Data[i] / 1e-120) k.Ntk.Value.Data[i] "ntk scales by a²"
            // Beyond [1e-70, 1e70] q1·q2 under/overflows (a wrong-signed ReLU entry at 1e-150 before): refused.
            for a, word in [ 1e-80, "underflows"; 1e80, "overflows" ] do
                let m = raises<ArgumentException> (fun () -> box (KernelFn.compute net (scaled a) None Both))
                Expect.stringContains m "x1 holds an input whose entries are at most" m
                Expect.stringContains m word m
            // An all-zero input is exact and allowed.
            let withZero = Tensor.create x.Shape (Array.append (Array.zeroCreate 4) x.Data[4..])
            Expect.isTrue (Tensor.isFinite (KernelFn.compute net withZero None Both).Nngp) "a zero row computes"

        testCase "rows of x2 that duplicate (or negate) rows of x1 give the entries of a point with itself" <| fun () ->
            // On these rows the product's x1·x2ᵀ and the variances' own sums round differently (0.5674999999999999
            // against 0.5675), and √(1 − ρ) turned that ulp into 2.6e-9 (ReLU NTK), 1.1e-8 (Abs NTK) and 9.2e-5
            // (Sign) before duplicates were given their variance. Expected: x2 omitted, where a point meets itself
            // through the Gram matrix's own diagonal (checked against 50-digit references in ActivationQuadrature
            // and the high-precision tests).
            let x = Tensor.create [| 3; 4 |] [| 0.3; -1.2; 0.7; 0.5; 1.1; 0.4; -0.6; 0.9; -0.8; 0.25; 1.3; -0.45 |]
            let copy = Tensor.create x.Shape (Array.copy x.Data)
            let close what (a: float[]) (b: float[]) =
                for i in 0 .. a.Length - 1 do
                    Expect.floatClose { absolute = 0.0; relative = 1e-14 } a[i] b[i] (sprintf "%s[%d]" what i)
            for name, net in
                [ "ReLU", Stax.serial [ Stax.dense 8 1.5 (Some 0.05); Stax.relu; Stax.dense 1 1.5 (Some 0.05) ]
                  "ReLU depth 5 (fused)", Stax.serial ([ for _ in 1 .. 5 do yield Stax.dense 8 1.5 (Some 0.05); yield Stax.relu ] @ [ Stax.dense 1 1.5 (Some 0.05) ])
                  "Abs", Stax.serial [ Stax.dense 8 1.5 None; Stax.abs; Stax.dense 8 1.5 None; Stax.abs; Stax.dense 1 1.5 None ]
                  "Sign", Stax.serial [ Stax.dense 8 1.5 (Some 0.05); Stax.sign; Stax.dense 8 1.5 (Some 0.05); Stax.sign; Stax.dense 1 1.5 None ] ] do
                let self = KernelFn.compute net x None Both
                let dup = KernelFn.compute net x (Some copy) Both
                close (name + " nngp") dup.Nngp.Data self.Nngp.Data
                close (name + " ntk") dup.Ntk.Value.Data self.Ntk.Value.Data
            // Abs without biases is even: the NNGP of x with −x is that of x with itself.
            let absNet = Stax.serial [ Stax.dense 8 1.5 None; Stax.abs; Stax.dense 8 1.5 None; Stax.abs; Stax.dense 1 1.5 None ]
            let neg = Tensor.create x.Shape (x.Data |> Array.map (fun v -> -v))
            close "Abs nngp with −x" (KernelFn.compute absNet x (Some neg) Nngp).Nngp.Data (KernelFn.compute absNet x None Nngp).Nngp.Data

        testCase "a network of 100000 layers runs: the plan's passes loop instead of recursing per layer" <| fun () ->
            // Dense(W_std = 1, no bias) keeps the NNGP at x·x′/3 after the first layer and adds it to the NTK once per
            // layer, so after L layers NTK = L·x·x′/3 (a sum of L equal terms: relative error ≤ L·ε ≈ 2e-11).
            // The plan's fusion passes recursed once per op before, overflowing the stack near 10⁴ ops on a
            // pool thread (a crash of the whole process, not a failed test).
            let x = Tensor.create [| 2; 3 |] [| 0.1; 0.2; 0.3; -0.5; 0.4; 1.0 |]
            let layers = 100000
            let k = KernelFn.compute (Stax.repeat layers (Stax.dense 4 1.0 None)) x None Both
            let gram i j = (Array.init 3 (fun c -> x.Data[i * 3 + c] * x.Data[j * 3 + c]) |> Array.sum) / 3.0
            for i in 0 .. 1 do
                for j in 0 .. 1 do
                    let g = gram i j
                    Expect.floatClose { absolute = 0.0; relative = 1e-14 } k.Nngp.Data[i * 2 + j] g "nngp"
                    Expect.floatClose { absolute = 0.0; relative = 1e-10 } k.Ntk.Value.Data[i * 2 + j] (float layers * g) "ntk"
        testCase "x2 omitted means x2 = x1 and cov2 is absent" <| fun () ->
            let x = randomTensor 1 4 3
            let a = KernelFn.compute mlp x None Both
            let b = KernelFn.compute mlp x (Some x) Both
            Expect.isNone a.Cov2 "a.Cov2"
            Expect.isTrue a.X1IsX2 "a.X1IsX2"
            // With x2 omitted the variances are the Gram matrix's diagonal; with x2 given they are row norms summed in
            // another order, so the two agree to a few ulp (1e-15 relative), not bit for bit.
            assertClose "nngp" 1e-15 b.Nngp.Data a.Nngp.Data
            assertClose "cov2 = cov1" 1e-15 a.Cov1.Data b.Cov2.Value.Data

        testCase "get = nngp skips the NTK and gives the same NNGP" <| fun () ->
            let x = randomTensor 2 4 3
            let a = KernelFn.compute mlp x None Nngp
            let b = KernelFn.compute mlp x None Both
            Expect.isNone a.Ntk "a.Ntk"
            assertClose "nngp" 0.0 b.Nngp.Data a.Nngp.Data

        testCase "a kernel can be fed back in to chain networks" <| fun () ->
            let x1, x2 = randomTensor 3 3 5, randomTensor 4 2 5
            let first = Serial [ Stax.dense 64 1.2 (Some 0.1); Stax.erf 1.0 1.0 0.0 ]
            let second = Serial [ Stax.dense 64 1.3 None; Stax.relu; Stax.dense 1 1.0 (Some 0.2) ]
            let whole = KernelFn.compute (Serial [ first; second ]) x1 (Some x2) Both
            let chained = KernelFn.compute first x1 (Some x2) Both |> KernelFn.applyKernel second
            assertClose "nngp" 0.0 whole.Nngp.Data chained.Nngp.Data
            assertClose "ntk" 0.0 whole.Ntk.Value.Data chained.Ntk.Value.Data

        testCase "batch_axis and channel_axis other than the defaults give the kernel of the transposed inputs" <| fun () ->
            let x1, x2 = randomTensor 5 3 4, randomTensor 6 2 4
            let axes (d: DenseSpec) = Dense { d with BatchAxis = 1; ChannelAxis = 0 }
            let net (f: DenseSpec -> Layer) =
                Serial [ f { Stax.denseDefaults 32 with WStd = 1.4; BStd = Some 0.1 }; Stax.relu; f { Stax.denseDefaults 1 with WStd = 1.1 } ]
            let a = KernelFn.compute (net Dense) x1 (Some x2) Both
            let t (x: Tensor) = Tensor.moveAxis 0 1 x
            let b = KernelFn.compute (net axes) (t x1) (Some(t x2)) Both
            assertClose "nngp" 1e-15 a.Nngp.Data b.Nngp.Data
            assertClose "ntk" 1e-15 a.Ntk.Value.Data b.Ntk.Value.Data

        testCase "Flatten of NHWC images equals the MLP kernel of the flattened vectors at the input" <| fun () ->
            // Input kernel of flattened (N, H·W·C) vectors is x1·x2ᵀ/(H·W·C) = mean over positions of the per-position
            // channel means, which is what Flatten computes from the diagonal spatial kernel.
            let img = Tensor.create [| 3; 2; 2; 3 |] (normals 7 36)
            let img2 = Tensor.create [| 2; 2; 2; 3 |] (normals 8 24)
            let a = KernelFn.compute (Serial [ Stax.flatten; Stax.dense 1 1.3 (Some 0.1) ]) img (Some img2) Both
            let flat (x: Tensor) = Tensor.reshape [| x.Shape[0]; 12 |] x
            let b = KernelFn.compute (Stax.dense 1 1.3 (Some 0.1)) (flat img) (Some(flat img2)) Both
            assertClose "nngp" 1e-15 b.Nngp.Data a.Nngp.Data
            Expect.equal a.Shape1 [| 3; 1 |] "a.Shape1"

        testCase "Dense and Relu act per position on images before a Flatten" <| fun () ->
            // With no convolution, positions never mix: the kernel is the mean over positions of per-position MLP kernels.
            let img = Tensor.create [| 2; 3; 1; 2 |] (normals 9 12)
            let net = Serial [ Stax.dense 16 1.5 (Some 0.2); Stax.relu; Stax.flatten; Stax.dense 1 1.0 None ]
            let k = KernelFn.compute net img None Both
            let perPos =
                [ for p in 0 .. 2 ->
                    let x = Tensor.create [| 2; 2 |] [| for n in 0 .. 1 do for c in 0 .. 1 -> img.Data[(n * 3 + p) * 2 + c] |]
                    KernelFn.compute (Serial [ Stax.dense 16 1.5 (Some 0.2); Stax.relu; Stax.dense 1 1.0 None ]) x None Both ]
            let mean (f: Kernel -> Tensor) = perPos |> List.map f |> List.reduce Tensor.add |> Tensor.scale (1.0 / 3.0)
            // Flatten follows Relu here, so the readout adds W²·nngp + W²·ntk to a non-Gaussian kernel exactly as per position.
            assertClose "nngp" 1e-14 (mean (fun k -> k.Nngp)).Data k.Nngp.Data
            assertClose "ntk" 1e-14 (mean (fun k -> k.Ntk.Value)).Data k.Ntk.Value.Data

        testCase "an activation on the raw inputs is refused with the fix" <| fun () ->
            let msg = raises<NeuralTangentsException> (fun () -> box (KernelFn.compute Stax.relu (randomTensor 1 2 3) None Both))
            Expect.stringContains msg "Relu" "msg"
            Expect.stringContains msg "Dense" "msg"

        testCase "FanInSum of non-Gaussian branches is refused" <| fun () ->
            let net = Serial [ Stax.dense 8 1.0 None; FanOut 2; Parallel [ Stax.relu; Identity ]; FanInSum ]
            let msg = raises<NeuralTangentsException> (fun () -> box (KernelFn.compute net (randomTensor 1 2 3) None Both))
            Expect.stringContains msg "FanInSum" "msg"

        testCase "parallel with the wrong number of inputs names both counts" <| fun () ->
            let net = Serial [ Stax.dense 8 1.0 None; FanOut 3; Parallel [ Identity; Identity ] ]
            let msg = raises<NeuralTangentsException> (fun () -> box (KernelFn.compute net (randomTensor 1 2 3) None Both))
            Expect.stringContains msg "2 branches" "msg"
            Expect.stringContains msg "3 inputs" "msg"

        testCase "a network ending in branches is refused" <| fun () ->
            let net = Serial [ Stax.dense 8 1.0 None; FanOut 2 ]
            let msg = raises<NeuralTangentsException> (fun () -> box (KernelFn.compute net (randomTensor 1 2 3) None Both))
            Expect.stringContains msg "FanInSum" "msg"

        testCase "non-finite inputs are refused with their position" <| fun () ->
            let x = randomTensor 1 2 3
            x.Data[4] <- nan
            let msg = raises<ArgumentException> (fun () -> box (KernelFn.compute mlp x None Both))
            Expect.stringContains msg "x1" "msg"
            Expect.stringContains msg "index 4" "msg"

        testCase "x1 and x2 with different feature sizes are refused" <| fun () ->
            let msg = raises<ArgumentException> (fun () -> box (KernelFn.compute mlp (randomTensor 1 2 3) (Some(randomTensor 2 2 4)) Both))
            Expect.stringContains msg "x2" "msg"

        testCase "overflow is reported instead of returning infinities" <| fun () ->
            let deep = Stax.repeat 60 (Serial [ Stax.dense 8 1e3 None; Stax.relu ])
            let msg = raises<NeuralTangentsException> (fun () -> box (KernelFn.compute deep (randomTensor 1 2 3) None Both))
            Expect.stringContains msg "non-finite" "msg"

        testCase "a variance that underflows layer after layer is reported as an underflow, without the advice to shrink" <| fun () ->
            // Dense(W_std 1) then Relu halves the variance at each layer: after 1100 of them |x|²·2⁻¹¹⁰⁰ is below the
            // smallest double, and the arc-cosine's cosines are 0/0.
            let x = Tensor.ofJagged [| [| 1.0; 2.0; 3.0 |]; [| -0.5; 0.4; 1.0 |] |]
            let deep (w: float) = Stax.repeat 1100 (Serial [ Stax.dense 4 w None; Stax.relu ])
            let msg = raises<NeuralTangentsException> (fun () -> box (KernelFn.compute (deep 1.0) x None Both))
            Expect.stringStarts msg "the kernel underflowed: nngp has NaN between input 0 of x1 and input 0 of x1" msg
            Expect.stringContains msg "W_std = √2" "the fix"
            stringLacks msg "rescale" "no advice to rescale the inputs"
            stringLacks msg "too large" "nor to shrink them"
            // With He's W_std = √2 the variance is kept (q ↦ 2·q/2) and the kernel is finite.
            Expect.isTrue (Tensor.isFinite (KernelFn.compute (deep (Math.Sqrt 2.0)) x None Both).Nngp) "He scaling computes"

        testCase "smart constructors validate their arguments" <| fun () ->
            Expect.stringContains (raises<ArgumentException> (fun () -> box (Stax.dense 4 -1.0 None))) "W_std" "Stax.dense 4 -1.0 None"
            Expect.stringContains (raises<ArgumentException> (fun () -> box (Stax.dense 0 1.0 None))) "out_dim" "Stax.dense 0 1.0 None"
            Expect.stringContains (raises<ArgumentException> (fun () -> box (Stax.dense 4 1.0 (Some nan)))) "b_std" "Stax.dense 4 1.0 (Some nan)"
            Expect.stringContains (raises<ArgumentException> (fun () -> box (Stax.monomial 6))) "degree" "Stax.monomial 6"
            Expect.stringContains (raises<ArgumentException> (fun () -> box (Stax.fanOut 0))) "num" "Stax.fanOut 0"

        testCase "conflicting layouts between layers are refused" <| fun () ->
            let net = Serial [ Stax.dense 8 1.0 None; Stax.relu; Dense { Stax.denseDefaults 1 with BatchAxis = 1; ChannelAxis = 0 } ]
            let msg = raises<NeuralTangentsException> (fun () -> box (KernelFn.compute net (randomTensor 1 2 3) None Both))
            Expect.stringContains msg "batch_axis" "msg"

        testCase "in-place passes on owned buffers equal fresh-buffer passes for every batch size" <| fun () ->
            // compute owns its buffers and overwrites them; applyKernel must not touch the caller's kernel, so it allocates.
            // Sizes 1..19 cover the vector bodies (8 lanes) and every scalar tail.
            let net = Serial [ Stax.dense 32 1.5 (Some 0.1); Stax.relu; Stax.dense 32 1.2 None; Stax.leakyRelu 0.2
                               Stax.dense 32 1.1 (Some 0.3); Stax.abs; Stax.dense 1 1.0 (Some 0.1) ]
            for n in 1 .. 19 do
                let x1, x2 = randomTensor n n 3, randomTensor (n + 50) (n + 2) 3
                let owned = KernelFn.compute net x1 (Some x2) Both
                let input = KernelFn.inputKernel net x1 (Some x2) Both
                let before = Tensor.copy input.Nngp
                let fresh = KernelFn.applyKernel net input
                assertClose (sprintf "nngp n=%d" n) 0.0 fresh.Nngp.Data owned.Nngp.Data
                assertClose (sprintf "ntk n=%d" n) 0.0 fresh.Ntk.Value.Data owned.Ntk.Value.Data
                assertClose (sprintf "caller's kernel untouched n=%d" n) 0.0 before.Data input.Nngp.Data

        testCase "a fused Dense → ABRelu pass gives exactly the numbers of the two rules in sequence" <| fun () ->
            // An Identity between the two layers stops the interpreter from fusing them.
            let pair d a = [ Stax.denseWith d; a ]
            let split d a = [ Stax.denseWith d; Identity; a ]
            let specs =
                [ { Stax.denseDefaults 32 with WStd = 1.5; BStd = Some 0.1 }, Stax.relu
                  { Stax.denseDefaults 32 with WStd = 1.2; Parameterization = Parameterization.Standard; S = (1, 2) }, Stax.leakyRelu 0.2
                  { Stax.denseDefaults 32 with WStd = 0.9; BStd = Some 0.0; Parameterization = Parameterization.Standard; S = (2, 1) }, Stax.abRelu -0.4 0.7 ]
            let net f = Serial(List.collect (fun (d, a) -> f d a) specs @ [ Stax.dense 1 1.0 (Some 0.1) ])
            for n in [ 1; 7; 8; 9; 17 ] do
                let x1, x2 = randomTensor n n 5, randomTensor (n + 1) 3 5
                let fused = KernelFn.compute (net pair) x1 (Some x2) Both
                let apart = KernelFn.compute (net split) x1 (Some x2) Both
                assertClose (sprintf "nngp n=%d" n) 0.0 apart.Nngp.Data fused.Nngp.Data
                assertClose (sprintf "ntk n=%d" n) 0.0 apart.Ntk.Value.Data fused.Ntk.Value.Data
                assertClose (sprintf "cov1 n=%d" n) 0.0 apart.Cov1.Data fused.Cov1.Data
                Expect.equal fused.Shape1 apart.Shape1 "fused.Shape1"

        testCase "issue regression: FanOut → parallel [Flatten → Dense; Flatten] → FanInProd gives (4K + 0.25)·K" <| fun () ->
            // The network of the issue on kernels corrupted by in-place buffer reuse. On flat (N, C) inputs Flatten
            // hands the kernel on unchanged, so branch 2 is the input kernel K = x·x′/3 itself (shared with branch 1)
            // and branch 1 is Dense(3, W_std = 2, b_std = 0.5): 4K + 0.25. FanInProd multiplies the covariances of
            // independent branches: (4K + 0.25)·K. Its NTK (product rule) is Θ₁·K + (4K + 0.25)·Θ₂ with Θ₁ = 4K + 0.25
            // (Dense, input NTK 0) and Θ₂ = 0: the same (4K + 0.25)·K.
            let net =
                Json.decode
                    """{"layer":"serial","layers":[{"layer":"FanOut","num":2},{"layer":"parallel","layers":[{"layer":"serial","layers":[{"layer":"Flatten"},{"layer":"Dense","out_dim":3,"W_std":2.0,"b_std":0.5}]},{"layer":"Flatten"}]},{"layer":"FanInProd"}]}"""
            let rows = [| [| 0.3; 0.5; -0.7 |]; [| 1.0; 0.2; 0.1 |] |]
            let x = Tensor.create [| 2; 3 |] (Array.concat rows)
            let kIn (i: int) (j: int) = Array.fold2 (fun s a b -> s + a * b) 0.0 rows[i] rows[j] / 3.0
            let expected = Array.init 4 (fun idx -> let i, j = idx / 2, idx % 2 in (4.0 * kIn i j + 0.25) * kIn i j)
            // By hand: K₀₀ = (0.09 + 0.25 + 0.49)/3 = 0.27667, (4·0.27667 + 0.25)·0.27667 = 0.375344.
            Expect.floatClose Accuracy.high expected[0] ((4.0 * 0.83 / 3.0 + 0.25) * 0.83 / 3.0) "the closed form, entry (0, 0)"
            for exec in [ Execution.Fast; Execution.Reference ] do
                let k = KernelFn.computeWith exec net x None Both
                assertClose (sprintf "nngp (%A)" exec) 1e-15 expected k.Nngp.Data
                assertClose (sprintf "ntk (%A)" exec) 1e-15 expected k.Ntk.Value.Data
                // cov1 is the diagonal of the same product.
                assertClose (sprintf "cov1 (%A)" exec) 1e-15 [| expected[0]; expected[3] |] k.Cov1.Data
            Expect.equal x.Data (Array.concat rows) "x unchanged"

        testCase "inputs with no rows are refused with an ArgumentException naming x1 or x2" <| fun () ->
            let e1 = throwsExactly<ArgumentException> (fun () -> KernelFn.compute mlp (Tensor.zeros [| 0; 3 |]) None Both |> ignore)
            Expect.equal e1.ParamName "x1" "x1 with no rows"
            let e2 = throwsExactly<ArgumentException> (fun () ->
                KernelFn.compute mlp (randomTensor 1 2 3) (Some(Tensor.zeros [| 0; 3 |])) Both |> ignore)
            Expect.equal e2.ParamName "x2" "x2 with no rows"
            let e3 = throwsExactly<ArgumentException> (fun () ->
                KernelFn.compute (Serial [ Stax.dense 4 1.0 None; Stax.flatten; Stax.dense 1 1.0 None ]) (Tensor.zeros [| 0; 2; 2; 3 |]) None Both |> ignore)
            Expect.equal e3.ParamName "x1" "images with no rows"

        testCase "applyKernel refuses a kernel that overflowed, as compute does" <| fun () ->
            // 60 layers of W_std = 1000 multiply the variance by ~1e6/2 per layer: past 1e308 after ~55 layers.
            let deep = Stax.repeat 60 (Serial [ Stax.dense 8 1e3 None; Stax.relu ])
            let x = randomTensor 9 3 4
            let e1 = throwsExactly<NeuralTangentsException> (fun () -> KernelFn.compute deep x None Both |> ignore)
            let e2 = throwsExactly<NeuralTangentsException> (fun () ->
                KernelFn.applyKernel deep (KernelFn.inputKernel deep x None Both) |> ignore)
            Expect.equal e2.Message e1.Message "the same refusal"
            Expect.stringContains e2.Message "non-finite" "says what happened"

        testCase "an overflow names the inputs at fault by their index in the whole batch, tiled or not" <| fun () ->
            // Input 4 of 6 has norm 1e60 (inputs beyond 1e70 are refused up front): after Dense its variance is
            // q = 5e119, and Monomial 3 makes its entry with itself 15·q³ ≈ 1.9e360 = +inf, while its covariances with
            // the others (9·q1·q2·c + 6·c³ ≲ 1e180) and every other entry stay finite. In tiles of 2 it sits in the
            // third tile, at row 0 of that tile: the message must still say input 4.
            let net = Serial [ Stax.dense 1 1.0 None; Stax.monomial 3 ]
            let x = Tensor.create [| 6; 2 |] [| 0.1; 0.2; 0.3; 0.1; 1.0; 0.5; -0.2; 0.4; 1e60; 0.0; 0.7; 0.7 |]
            let whole = throwsExactly<NeuralTangentsException> (fun () -> KernelFn.compute net x None Both |> ignore)
            Expect.stringContains whole.Message "nngp has +inf between input 4 of x1 and input 4 of x1" "the one non-finite entry of nngp, (4, 4)"
            for b in [ 1; 2; 4 ] do
                let tiled = throwsExactly<NeuralTangentsException> (fun () ->
                    Batching.compute { BatchOptions.Default with BatchSize = Some b; Parallelism = Some 1 } net x None Both |> ignore)
                Expect.stringContains tiled.Message "input 4 of x1" (sprintf "tiles of %d name input 4" b)
            let x2 = Tensor.create [| 3; 2 |] [| 0.1; 0.2; 0.3; 0.1; 1.0; 0.5 |]
            let tiled = throwsExactly<NeuralTangentsException> (fun () ->
                Batching.compute { BatchOptions.Default with BatchSize = Some 2; Parallelism = Some 1 } net x (Some x2) Both |> ignore)
            Expect.stringContains tiled.Message "input 4 of x1" "with x2: input 4 of x1"

        testCase "a NaN kernel (LayerNorm with eps 0 on an all-zero input: 0/0) is refused, naming the input and 0/0" <| fun () ->
            let net = Stax.serial [ Stax.dense 4 1.0 None; Stax.layerNorm [ -1 ] 0.0 0 -1 ]
            let x = Tensor.create [| 2; 2 |] [| 1.0; 2.0; 0.0; 0.0 |]
            let e = throwsExactly<NeuralTangentsException> (fun () -> KernelFn.compute net x None Both |> ignore)
            Expect.stringContains e.Message "or an operation is undefined (0/0" "not blamed on large inputs alone"
            Expect.stringContains e.Message "has NaN between input 0 of x1 and input 1 of x1" "the first NaN entry, (0, 1): input 1 is zero"

        testCase "a variance that overflowed is refused too, though every covariance with x2 is finite" <| fun () ->
            // Monomial 3 on u ~ N(0, q): E[u³v³] = 9·q1·q2·c + 6·c³ stays near 1e165 for q1 = 1e110, q2 = 1, while
            // cov1 = E[u⁶] = 15·q1³ ≈ 1.5e331 is +∞.
            let net = Serial [ Stax.dense 1 1.0 None; Stax.monomial 3 ]
            let x1 = Tensor.create [| 1; 1 |] [| 1e55 |]
            let x2 = Tensor.create [| 1; 1 |] [| 1.0 |]
            let e = throwsExactly<NeuralTangentsException> (fun () -> KernelFn.compute net x1 (Some x2) Both |> ignore)
            Expect.stringContains e.Message "non-finite" "says what happened"
            // The same inputs the other way round put the infinite variance in cov2.
            throwsExactly<NeuralTangentsException> (fun () -> KernelFn.compute net x2 (Some x1) Nngp |> ignore) |> ignore
    ]
