/// MonteCarlo's batch_size (neural_tangents' serial batching of monte_carlo_kernel_fn): each sample's kernel is
/// assembled from blocks of examples drawn from the same parameters. Every entry is the same arithmetic on the same
/// per-example passes as without batching (examples are pulled back one at a time), so the tests demand equality
/// bit for bit, for x2 = x1 and x2 ≠ x1, every trace/diagonal choice that keeps the batch axes, and image outputs.
module NeuralTangents.Tests.MonteCarloBatchingTests

open System
open Expecto
open NeuralTangents
open NeuralTangents.Tests.TestUtil

let private cli (request: string) =
    use out = new IO.StringWriter()
    use err = new IO.StringWriter()
    let code = NeuralTangents.Cli.Cli.run [| "kernel" |] (new IO.StringReader(request)) out err
    code, out.ToString(), err.ToString()

let private mlp = Stax.serial [ Stax.dense 16 1.4 (Some 0.3); Stax.erf 1.0 1.0 0.0; Stax.dense 3 1.1 (Some 0.2) ]
let private x6 = randomTensor 41 6 4
let private x4 = randomTensor 42 4 4

/// Conv(3, (2, 2), SAME) → Relu → Conv(2, (2, 2), SAME): outputs (N, 3, 3, 2), kept spatial.
let private cnn =
    Stax.serial [ Stax.conv 3 [ 2; 2 ] None Padding.Same 1.3 (Some 0.1); Stax.relu; Stax.conv 2 [ 2; 2 ] None Padding.Same 1.2 (Some 0.2) ]
let private img seed n = Tensor.create [| n; 3; 3; 2 |] (normals seed (n * 18))

let private run (o: MonteCarloOptions) net x1 x2 = MonteCarlo.computeWith o net x1 x2 Both

let private expectSame (label: string) (a: (Tensor option * Tensor option) list) (b: (Tensor option * Tensor option) list) =
    Expect.equal a.Length b.Length label
    let same (what: string) (x: Tensor option) (y: Tensor option) =
        Expect.equal x.IsSome y.IsSome (sprintf "%s: %s asked for in both" label what)
        match x, y with
        | Some x, Some y ->
            Expect.equal x.Shape y.Shape (sprintf "%s: %s shape" label what)
            Expect.sequenceEqual x.Data y.Data (sprintf "%s: %s values" label what)
        | _ -> ()
    for (n1, t1), (n2, t2) in List.zip a b do
        Expect.isTrue (n1.IsSome || t1.IsSome) (label + ": something computed")
        same "nngp" n1 n2
        same "ntk" t1 t2

[<Tests>]
let tests =
    testList "MonteCarloBatchingTests" [
        testCase "batched estimates equal unbatched ones bit for bit (x2 = x1, x2 ≠ x1, list counts)" <| fun () ->
            let o = { MonteCarlo.options 7 [ 1; 3 ] with Parallelism = 2 }
            for bs in [ 1; 2; 3 ] do
                expectSame (sprintf "x2 = x1, batch_size %d" bs) (run o mlp x6 None) (run { o with BatchSize = bs } mlp x6 None)
            // N1 = 6, N2 = 4: batch_size 2 divides both; 3 and 4 are reduced to gcd = 2 as neural_tangents does
            for bs in [ 2; 3; 4; 100 ] do
                expectSame (sprintf "x2 ≠ x1, batch_size %d" bs) (run o mlp x6 (Some x4)) (run { o with BatchSize = bs } mlp x6 (Some x4))

        testCase "batching keeps trace_axes = () and diagonal_axes on other axes: (N1, N2, C, C) and image kernels" <| fun () ->
            let o = { MonteCarlo.options 3 [ 2 ] with TraceAxes = [||] }
            let full = run o mlp x6 (Some x4)
            Expect.equal (fst full.Head).Value.Shape [| 6; 4; 3; 3 |] "full kernel shape"
            expectSame "trace_axes = ()" full (run { o with BatchSize = 2 } mlp x6 (Some x4))
            let o = { MonteCarlo.options 3 [ 2 ] with TraceAxes = [| -1 |]; DiagonalAxes = [| 1 |] }
            let k = run o cnn (img 5 4) (Some(img 6 2))
            Expect.equal (fst k.Head).Value.Shape [| 4; 2; 3; 3; 3 |] "(N1, N2, H, W, W')"
            expectSame "image outputs, diagonal over H" k (run { o with BatchSize = 1 } cnn (img 5 4) (Some(img 6 2)))
            let o = { MonteCarlo.options 3 [ 1 ] with TraceAxes = [| 1; 3 |] }
            expectSame "image outputs, x2 = x1" (run o cnn (img 8 4) None) (run { o with BatchSize = 2 } cnn (img 8 4) None)

        testCase "batch sizes that cannot split the examples are refused with the fix" <| fun () ->
            let e = throwsExactly<ArgumentException> (fun () -> run { MonteCarlo.options 1 [ 1 ] with BatchSize = 4 } mlp x6 None |> ignore)
            Expect.stringContains e.Message "batch_size 4 must divide the batch sizes N1 = 6 and N2 = 6" "divisor"
            Expect.equal e.ParamName "batch_size" "parameter"
            let o = { MonteCarlo.options 1 [ 1 ] with DiagonalAxes = [| 0 |]; BatchSize = 2 }
            let e = throwsExactly<ArgumentException> (fun () -> run o mlp x6 None |> ignore)
            Expect.stringContains e.Message "use batch_size 0" "diagonal batch axis"
            // a single block (batch_size ≥ N) is the unbatched kernel, whatever the axes
            let o1 = { o with BatchSize = 0 }
            expectSame "one block" (run o1 mlp x6 None) (run { o1 with BatchSize = 6 } mlp x6 None)
            let none = Tensor.create [| 0; 4 |] [||]
            let e = throwsExactly<ArgumentException> (fun () -> run { MonteCarlo.options 1 [ 1 ] with BatchSize = 2 } mlp x6 (Some none) |> ignore)
            Expect.stringContains e.Message "need at least one example" "no examples in x2"
            let e = throwsExactly<ArgumentException> (fun () -> run { MonteCarlo.options 1 [ 1 ] with BatchSize = -1 } mlp x6 None |> ignore)
            Expect.stringContains e.Message "batch_size must be ≥ 0" "negative"

        testCase "empiricalKernelBatched equals Empirical.kernelFn bit for bit, reports blocks, and cancels between them" <| fun () ->
            let _, p = InitFn.init 4 mlp x6.Shape
            let seen = Collections.Generic.List<MonteCarlo.BlockProgress>()
            let none = Threading.CancellationToken.None
            let batched = MonteCarlo.empiricalKernelBatched 2 [| -1 |] [||] none (Some seen.Add) mlp p x6 (Some x4) Both
            expectSame "empirical" [ Empirical.kernelFn mlp [| -1 |] [||] x6 (Some x4) Both p ] [ batched ]
            Expect.equal (seen |> Seq.map (fun b -> b.BlocksDone, b.BlocksTotal) |> List.ofSeq)
                [ for d in 1 .. 6 -> d, 6 ] "3 × 2 blocks, in order"
            // the progress callback cancels after the first block: the second block must not start
            use cts = new Threading.CancellationTokenSource()
            let reports = Collections.Generic.List<int>()
            let cancelAfterFirst (b: MonteCarlo.BlockProgress) =
                reports.Add b.BlocksDone
                cts.Cancel()
            throwsExactly<OperationCanceledException> (fun () ->
                MonteCarlo.empiricalKernelBatched 2 [| -1 |] [||] cts.Token (Some cancelAfterFirst) mlp p x6 None Both |> ignore) |> ignore
            Expect.equal (List.ofSeq reports) [ 1 ] "stopped after one block"
            let whole = MonteCarlo.empiricalKernelBatched 0 [| -1 |] [||] none None mlp p x6 None Ntk
            expectSame "batch_size 0" [ Empirical.kernelFn mlp [| -1 |] [||] x6 None Ntk p ] [ whole ]

        testCase "nt kernel: monte_carlo and empirical batch_size give the unbatched answers; a bad one is one line" <| fun () ->
            let arch = """{"layer": "serial", "layers": [{"layer": "Dense", "out_dim": 8, "W_std": 1.4, "b_std": 0.3},
                                                   {"layer": "Relu"}, {"layer": "Dense", "out_dim": 2}]}"""
            let x = "[[1, 2], [-0.5, 0.25], [3, -1], [0.5, 0.5]]"
            for key, body in [ "monte_carlo", "\"n_samples\": [1, 2], \"seed\": 3"; "empirical", "\"seed\": 3" ] do
                let request (extra: string) = sprintf """{"arch": %s, "x1": %s, "%s": {%s%s}}""" arch x key body extra
                let strip (out: string) = out.Substring(0, out.IndexOf "\"elapsed_ms\"")
                let code, whole, err = cli (request "")
                Expect.equal code 0 err
                let code, batched, err = cli (request ", \"batch_size\": 2")
                Expect.equal code 0 err
                Expect.equal (strip batched) (strip whole) (key + ": same numbers, same text")
                let code, out, err = cli (request ", \"batch_size\": 3")
                Expect.equal (code, out) (1, "") (key + ": refused")
                Expect.stringContains err "batch_size 3 must divide the batch sizes N1 = 4 and N2 = 4" key
    ]
