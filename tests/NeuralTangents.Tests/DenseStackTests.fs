/// The fused Dense/ABRelu executor (Rules.DenseStack, the plan rewrite FusedDenseStackOp): over random chains of Dense
/// layers (W_std, b_std, both parameterizations) and ABRelu-family activations (Relu, LeakyRelu, Abs, ABRelu), flat
/// inputs and the diagonal spatial layout (a Flatten on top), x2 given or not, nngp, ntk or both, the fast execution
/// equals the reference execution (every layer's own rule, nothing fused) bit for bit — the ABRelu rule takes the same
/// division-free step and the Dense map the same multiply-then-add — even where the arc-cosine is worst conditioned
/// (collinear and duplicated inputs), and the executor really ran where it claims to cover the chain; chains it does not cover (an activation on a non-Gaussian kernel) are
/// refused alike. Also: the tiles of a symmetric kernel mirrored only when the input tile is exactly transposed, and
/// the README MLP bit for bit the same at every vector width.
module NeuralTangents.Tests.DenseStackTests

open System
open Expecto
open FsCheck
open FsCheck.FSharp
open NeuralTangents
open NeuralTangents.Rules
open NeuralTangents.Tests.TestUtil

type private ChainCase =
    { Spatial: int list
      Channels: int
      Chain: Layer list
      Rows1: int
      Rows2: int option
      Get: Get
      /// Input row 1 is a copy of row 0 (a pair at correlation 1 off the batch diagonal).
      Duplicate: bool
      Seed: int
      /// Every activation follows a Dense (its input is Gaussian): the executor must cover the chain.
      Covered: bool }

let private dense =
    gen {
        let! width = Gen.elements [ 3; 16; 512 ]
        let! w = Gen.elements [ 0.5; 1.0; 1.5; 2.0 ]
        let! b = Gen.elements [ None; Some 0.0; Some 0.05; Some 0.7 ]
        let! standard = Gen.frequency [ 3, Gen.constant false; 1, Gen.constant true ]
        let! s0 = Gen.choose (1, 3)
        let p = if standard then Parameterization.Standard else Parameterization.Ntk
        return Dense { Stax.denseDefaults width with WStd = w; BStd = b; Parameterization = p; S = (s0, 1) }
    }

let private activation =
    Gen.frequency
        [ 4, Gen.constant Stax.relu
          1, Gen.constant (Stax.leakyRelu 0.2)
          1, Gen.constant Stax.abs
          2, Gen.map2 Stax.abRelu (Gen.elements [ -0.7; 0.0; 0.3 ]) (Gen.elements [ 0.5; 1.0; 1.2 ]) ]

let private chainCase : Gen<ChainCase> =
    gen {
        let! spatial = Gen.frequency [ 3, Gen.constant []; 1, Gen.listOfLength 1 (Gen.choose (1, 4)); 1, Gen.listOfLength 2 (Gen.choose (1, 3)) ]
        // One feature per position makes every pair of inputs collinear (ρ = ±1, an inexact Gram entry): the
        // arc-cosine's worst conditioning, where only the same operations give the same numbers.
        let! channels = Gen.choose (1, 6)
        let! blocks = Gen.choose (1, 5)
        // A block: a Dense and (mostly) an activation; rarely an activation alone (then the chain is not covered,
        // unless it follows a Dense without activation) or two Dense layers in a row.
        let block =
            gen {
                let! kind = Gen.frequency [ 8, Gen.constant 0; 1, Gen.constant 1; 1, Gen.constant 2 ]
                let! d = dense
                let! a = activation
                match kind with
                | 0 -> return [ d; a ]
                | 1 -> return [ a ]
                | _ -> return [ d ]
            }
        let! bs = Gen.listOfLength blocks block
        let! readout = Gen.elements [ None; Some 1; Some 3 ]
        let chain = List.concat bs @ (readout |> Option.map (fun w -> Stax.dense w 1.5 (Some 0.05)) |> Option.toList)
        let! rows1 = Gen.frequency [ 1, Gen.choose (1, 8); 3, Gen.choose (9, 70) ]
        let! rows2 = Gen.oneof [ Gen.constant None; Gen.choose (1, 20) |> Gen.map Some ]
        let! get = Gen.elements [ Get.Nngp; Get.Ntk; Get.Both ]
        let! dup = Gen.elements [ false; true ]
        let! seed = Gen.choose (0, 100000)
        // Covered: every activation's input is Gaussian (a Dense came last before it; the input kernel is not).
        let covered =
            chain |> List.fold (fun (ok, gaussian) l ->
                match l with
                | Dense _ -> ok, true
                | _ -> ok && gaussian, false) (true, false) |> fst
        return
            { Spatial = spatial; Channels = channels; Chain = chain; Rows1 = rows1; Rows2 = rows2; Get = get
              Duplicate = dup && rows1 >= 2; Seed = seed
              Covered = covered && chain |> List.exists (function Activation _ -> true | _ -> false) }
    }

let private network (c: ChainCase) = Serial(c.Chain @ (if c.Spatial.IsEmpty then [] else [ Stax.flatten ]))

let private inputs (c: ChainCase) (rows: int) (seed: int) =
    let shape = Array.concat [ [| rows |]; Array.ofList c.Spatial; [| c.Channels |] ]
    let n = Array.fold (*) 1 shape
    let data = normals seed n
    if c.Duplicate && rows >= 2 then Array.blit data 0 data (n / rows) (n / rows)
    Tensor.create shape data

let private attempt (f: unit -> Kernel) = try Ok(f ()) with NeuralTangentsException m -> Error m

let private bits (a: float[]) = a |> Array.map BitConverter.DoubleToInt64Bits

/// The same doubles (−0.0 ≠ 0.0), reporting the first difference and the relative Frobenius error.
let private sameBits (what: string) (expected: float[]) (actual: float[]) =
    if bits expected <> bits actual then
        let i = Array.findIndex id (Array.map2 (fun (e: float) (a: float) -> BitConverter.DoubleToInt64Bits e <> BitConverter.DoubleToInt64Bits a) expected actual)
        failtestf "%s differs at flat index %d: %.17g vs %.17g (relative Frobenius error %.3e)" what i expected[i] actual[i] (relErr expected actual)

let private compareKernels (what: string) (reference: Kernel) (fast: Kernel) =
    Expect.equal fast.Nngp.Shape reference.Nngp.Shape (what + ": nngp shape")
    Expect.equal fast.Cov1.Shape reference.Cov1.Shape (what + ": cov1 shape")
    Expect.equal (fast.IsGaussian, fast.IsInput, fast.DiagonalSpatial, fast.DiagonalBatch) (reference.IsGaussian, reference.IsInput, reference.DiagonalSpatial, reference.DiagonalBatch) (what + ": flags")
    Expect.equal (fast.Shape1, fast.Shape2, fast.BatchAxis, fast.ChannelAxis) (reference.Shape1, reference.Shape2, reference.BatchAxis, reference.ChannelAxis) (what + ": shapes and axes")
    sameBits (what + " nngp") reference.Nngp.Data fast.Nngp.Data
    match reference.Ntk, fast.Ntk with
    | Some r, Some f -> sameBits (what + " ntk") r.Data f.Data
    | None, None -> ()
    | _ -> failtestf "%s: ntk present in one kernel only" what
    sameBits (what + " cov1") reference.Cov1.Data fast.Cov1.Data
    match reference.Cov2, fast.Cov2 with
    | Some r, Some f -> sameBits (what + " cov2") r.Data f.Data
    | None, None -> ()
    | _ -> failtestf "%s: cov2 present in one kernel only" what

/// The README's MLP request: Dense(512, 1.5, 0.05) + Relu ×10, Dense(1, 1.5, 0.05).
let private readmeMlp =
    Serial([ for _ in 1 .. 10 do
                 yield Stax.dense 512 1.5 (Some 0.05)
                 yield Stax.relu ] @ [ Stax.dense 1 1.5 (Some 0.05) ])

let private chainOf (net: Layer) = match net with Serial ls -> ls | l -> [ l ]

[<Tests>]
let tests =
    testList "DenseStackTests" [
        testPropertyWithConfig (fsCheck 150) "Dense/ABRelu chains: fused execution = reference execution bit for bit, and the executor runs on every chain whose activations follow a Dense" <| fun () ->
            Prop.forAll (Arb.fromGen chainCase) (fun c ->
                let net = network c
                let x1 = inputs c c.Rows1 c.Seed
                let x2 = c.Rows2 |> Option.map (fun r -> inputs c r (c.Seed + 1))
                let reference = attempt (fun () -> KernelFn.computeWith Execution.Reference net x1 x2 c.Get)
                let fast = attempt (fun () -> KernelFn.computeWith Execution.Fast net x1 x2 c.Get)
                match reference, fast with
                | Ok r, Ok f ->
                    compareKernels (sprintf "%A" c) r f
                    // The executor itself (not a fallback to the layers' rules) on the network's input kernel.
                    let db, ds = Requirements.layout (Requirements.ofLayer net) LayoutRequest.Auto
                    let k0 = KernelFn.inputKernelWithLayout { DiagonalBatch = Some db; DiagonalSpatial = Some ds } net x1 x2 c.Get
                    match DenseStack.tryRun c.Chain false k0 with
                    | Some k ->
                        match KernelFn.applyFlowWith Execution.Reference (Serial c.Chain) (One k0) with
                        | One rk -> compareKernels (sprintf "tryRun %A" c) rk k
                        | Many _ -> failtest "the chain ends in branches"
                    | None -> if c.Covered then failtestf "the executor declined a chain it covers: %A" c
                | Error a, Error b ->
                    Expect.isFalse c.Covered (sprintf "a covered chain was refused: %s" a)
                    Expect.equal b a "both executions refuse with the same message"
                | Ok _, Error m -> failtestf "only the fast execution refused: %s" m
                | Error m, Ok _ -> failtestf "only the reference execution refused: %s" m
                true)

        // The zero input NTK (issue #9 item 7): the executor reads the input kernel's NTK, +0.0 everywhere, from a run
        // of zeros instead of an (N1, N2, S) array. Bit-identity holds because every operation reads the same +0.0:
        // the first Dense's t' = w2·t + add gets t = +0.0 either way (so w2·0 = ±0 for w2 of either sign, and
        // +0 + add = add except add = −0, where both give +0), and an ABRelu without a Dense in front multiplies
        // σ̇·(+0.0) either way. Checked on the executor itself, with −0.0 and +0.0 nngp entries planted (b_std = 0
        // and a −0.0 entry: cN·(−0) + 0 and (−0)·w2 + 0 are the add = ±0 cases of both parameterizations).
        testPropertyWithConfig (fsCheck 150) "zero input NTK: the executor without an NTK array = with an all-zero NTK array, bit for bit (±0.0 entries, in place or not)" <| fun () ->
            Prop.forAll (Arb.fromGen chainCase) (fun c ->
                let net = network c
                let x1 = inputs c c.Rows1 c.Seed
                let x2 = c.Rows2 |> Option.map (fun r -> inputs c r (c.Seed + 1))
                let db, ds = Requirements.layout (Requirements.ofLayer net) LayoutRequest.Auto
                let k0 = KernelFn.inputKernelWithLayout { DiagonalBatch = Some db; DiagonalSpatial = Some ds } net x1 x2 Both
                // Plant signed zeros in nngp at mirrored places (x2 = x1 stays exactly symmetric).
                let n1, n2 = k0.Nngp.Shape[0], k0.Nngp.Shape[1]
                let s = k0.Nngp.Length / (n1 * n2)
                let planted = Array.copy k0.Nngp.Data
                let rng = Random(c.Seed)
                for _ in 1 .. 3 do
                    let i, j, p, z = rng.Next n1, rng.Next n2, rng.Next s, (if rng.Next 2 = 0 then -0.0 else 0.0)
                    planted[(i * n2 + j) * s + p] <- z
                    if x2.IsNone then planted[(j * n2 + i) * s + p] <- z
                let withZeros = { k0 with Nngp = Tensor.create k0.Nngp.Shape planted }
                Expect.isTrue (withZeros.Ntk.Value.Data |> Array.forall (fun v -> BitConverter.DoubleToInt64Bits v = 0L)) "the input NTK is +0.0 everywhere"
                let noArray = { withZeros with Ntk = None }
                match DenseStack.tryRun c.Chain false withZeros with
                | Some expected ->
                    for inPlace in [ false; true ] do
                        let own = { noArray with Nngp = Tensor.create k0.Nngp.Shape (Array.copy planted) }
                        match DenseStack.tryRunWith true false c.Chain inPlace own with
                        | Some k ->
                            compareKernels (sprintf "zero NTK, in place %b, %A" inPlace c) expected k
                            if not inPlace then Expect.equal (bits own.Nngp.Data) (bits planted) "not in place: the input is left as it was"
                        | None -> failtestf "the executor declined with a zero NTK a chain it took with the array: %A" c
                | None ->
                    Expect.isNone (DenseStack.tryRunWith true false c.Chain false noArray) "declined alike without the array"
                true)

        test "upper-only Gram (kernel_fn's input for the executor): = the whole Gram bit for bit over 3×3 tiles, in place or not, never reading the lower triangle" {
            let net = Serial [ Stax.dense 64 1.5 (Some 0.05); Stax.relu; Stax.dense 64 1.2 None; Stax.abRelu -0.3 0.8; Stax.dense 1 1.0 (Some 0.1) ]
            let chain = match net with Serial ls -> ls | l -> [ l ]
            let n, d = 150, 7 // tiles of 64 × 64 pairs: three along each side, the last one ragged
            let x = Tensor.create [| n; d |] (normals 77 (n * d))
            // Linalg: gram = gramUpper mirrored; gramUpper leaves the strictly lower triangle +0.0.
            let whole = Linalg.gram (1.0 / float d) x.Data n d
            let upper = Linalg.gramUpper (1.0 / float d) x.Data n d
            for i in 0 .. n - 1 do
                for j in 0 .. n - 1 do
                    let u = upper[i * n + j]
                    if j < i && BitConverter.DoubleToInt64Bits u <> 0L then failtestf "gramUpper (%d, %d) = %g, not +0.0" i j u
                    if j >= i && BitConverter.DoubleToInt64Bits u <> BitConverter.DoubleToInt64Bits whole[i * n + j] then failtestf "gramUpper (%d, %d) differs from gram" i j
                    if whole[i * n + j] <> whole[j * n + i] then failtestf "gram not exactly symmetric at (%d, %d)" i j
            // The executor on the whole input kernel (the expected bits) and on its upper triangle with NaN below it.
            let k0 = KernelFn.inputKernel net x None Both
            let expected = (DenseStack.tryRun chain false k0).Value
            let poisoned () =
                let a = Array.copy k0.Nngp.Data
                for i in 0 .. n - 1 do
                    for j in 0 .. i - 1 do a[i * n + j] <- nan
                { k0 with Nngp = Tensor.create k0.Nngp.Shape a; Ntk = None }
            Expect.isTrue (Input.isUpperOnly (poisoned ())) "an input kernel of x2 = x1 in the diagonal layout with one position is upper-only"
            for inPlace in [ false; true ] do
                let kp = poisoned ()
                match DenseStack.tryRunWith true true chain inPlace kp with
                | Some k ->
                    compareKernels (sprintf "upper-only, in place %b" inPlace) expected k
                    // Not in place: the upper triangle is left as it was (the lower one is scratch).
                    if not inPlace then
                        for i in 0 .. n - 1 do
                            for j in i .. n - 1 do
                                if kp.Nngp.Data[i * n + j] <> k0.Nngp.Data[i * n + j] then failtestf "input (%d, %d) changed" i j
                | None -> failtest "the executor declined a Dense/ABRelu chain"
            // kernel_fn (the upper-only route) = the reference execution (the whole Gram, every rule), bit for bit.
            compareKernels "kernel_fn vs reference" (KernelFn.computeWith Execution.Reference net x None Both) (KernelFn.compute net x None Both)
        }

        test "zero input NTK: KernelPlan.takesZeroNtk only when the fused executor is the input's only reader; kernel_fn through it = reference" {
            let plan (net: Layer) = KernelPlan.fuse (KernelPlan.compileFor None net)
            Expect.isTrue (KernelPlan.takesZeroNtk (plan readmeMlp)) "the README MLP"
            Expect.isFalse (KernelPlan.takesZeroNtk (KernelPlan.compileFor None readmeMlp)) "unfused: the Dense rule reads the array"
            Expect.isFalse (KernelPlan.takesZeroNtk (plan (Serial [ Stax.dense 4 1.0 None; Stax.dense 1 1.0 None ]))) "no fused operation"
            let branched =
                Serial [ Stax.fanOut 2; Stax.parallelOf [ Serial(chainOf readmeMlp); Stax.dense 1 0.8 (Some 0.1) ]; Stax.fanInSum ]
            Expect.isFalse (KernelPlan.takesZeroNtk (plan branched)) "the input register has a second reader (the other branch)"
            // Through kernel_fn: x2 given or not, both parameterizations, nngp only, S > 1 (a Flatten on top), and a
            // branched network that needs the zeros as an array; every one = the reference execution bit for bit.
            let ntkParam = Serial [ Dense { Stax.denseDefaults 8 with WStd = 1.3; BStd = Some 0.0; Parameterization = Parameterization.Ntk }; Stax.relu; Stax.dense 1 1.0 None ]
            let x = Tensor.create [| 40; 6 |] (normals 21 (40 * 6))
            let x2 = Tensor.create [| 13; 6 |] (normals 22 (13 * 6))
            let xs = Tensor.create [| 30; 3; 4 |] (normals 23 (30 * 12))
            for what, net, xa, xb, get in
                [ "README MLP", readmeMlp, x, None, Both
                  "README MLP, x2", readmeMlp, x, Some x2, Both
                  "README MLP, ntk only", readmeMlp, x, None, Get.Ntk
                  "README MLP, nngp only", readmeMlp, x, Some x2, Get.Nngp
                  "ntk parameterization", ntkParam, x, None, Both
                  "ntk parameterization, x2", ntkParam, x, Some x2, Both
                  "S = 3, Flatten", Serial(chainOf readmeMlp @ [ Stax.flatten ]), xs, None, Both
                  "S = 3, Flatten, x2", Serial(chainOf readmeMlp @ [ Stax.flatten ]), xs, Some(Tensor.create [| 7; 3; 4 |] (normals 24 84)), Both
                  "branched", branched, x, None, Both ] do
                let r = KernelFn.computeWith Execution.Reference net xa xb get
                let f = KernelFn.compute net xa xb get
                compareKernels what r f
                Expect.equal f.Ntk.IsSome get.WantsNtk (what + ": an NTK exactly when asked for")
        }

        test "KernelPlan.fuse: the README MLP is one fused operation of its 21 layers; a chain of Dense layers alone is not fused" {
            let fused (net: Layer) =
                (KernelPlan.fuse (KernelPlan.compileFor None net)).Ops
                |> List.map (function FusedDenseStackOp(leaves, _, _) -> leaves.Length | _ -> 0)
            Expect.equal (fused readmeMlp) [ 21 ] "Dense, Relu ×10, Dense in one operation"
            Expect.equal (fused (Serial [ Stax.dense 4 1.0 None; Stax.dense 1 1.0 None ])) [ 0; 0 ] "no activation: the Dense rules"
            Expect.equal (fused (Serial [ Stax.dense 4 1.0 None; Stax.erf 1.0 1.0 0.0; Stax.dense 4 1.0 None; Stax.relu ])) [ 0; 0; 2 ]
                "an activation outside the ABRelu family ends a chain"
        }

        testSequenced <| test "README MLP: fused = reference bit for bit at every vector width (512, 256, scalar), x2 given or not" {
            let x = Tensor.create [| 150; 784 |] (normals 11 (150 * 784)) // 3 × 3 tiles of 64 pairs, ragged edges
            let x2 = Tensor.create [| 37; 784 |] (normals 12 (37 * 784))
            for x2o in [ None; Some x2 ] do
                let r = KernelFn.computeWith Execution.Reference readmeMlp x x2o Both
                let runs = [ for w in widths () -> w, withWidth w (fun () -> KernelFn.compute readmeMlp x x2o Both) ]
                let _, f0 = runs.Head
                for w, f in runs do
                    compareKernels (sprintf "width %d, x2 %b" w x2o.IsSome) r f
                    Expect.equal (bits f.Nngp.Data) (bits f0.Nngp.Data) (sprintf "width %d: nngp bits = width 512's" w)
                    Expect.equal (bits f.Ntk.Value.Data) (bits f0.Ntk.Value.Data) (sprintf "width %d: ntk bits = width 512's" w)
        }

        test "x2 = x1: a tile pair is mirrored only when the input tile is exactly transposed; an asymmetric input still = reference" {
            let chain = chainOf readmeMlp
            let x = Tensor.create [| 130; 20 |] (normals 3 (130 * 20))
            let k0 = KernelFn.inputKernel readmeMlp x None Both
            let n = 130
            // One entry below the diagonal, in tile (2, 0), moved 1 % off its mirror image (nngp, then ntk).
            let moved (data: float[]) = let d = Array.copy data in d[129 * n + 3] <- d[129 * n + 3] * 1.01 + 0.01; d
            let cases =
                [ k0, "symmetric input", true
                  { k0 with Nngp = Tensor.create k0.Nngp.Shape (moved k0.Nngp.Data) }, "an asymmetric nngp", false
                  { k0 with Ntk = Some(Tensor.create k0.Nngp.Shape (moved k0.Ntk.Value.Data)) }, "an asymmetric ntk", false ]
            let isSym (a: float[]) = Seq.forall (fun i -> Seq.forall (fun j -> a[i * n + j] = a[j * n + i]) (seq { 0 .. n - 1 })) (seq { 0 .. n - 1 })
            for kk, what, symmetric in cases do
                match DenseStack.tryRun chain false kk, KernelFn.applyFlowWith Execution.Reference readmeMlp (One kk) with
                | Some k, One rk ->
                    compareKernels what rk k
                    Expect.equal (isSym k.Nngp.Data && isSym k.Ntk.Value.Data) symmetric (what + ": the output is symmetric exactly when the input is")
                | None, _ -> failtest "the executor declined the README MLP"
                | _, Many _ -> failtest "the chain ends in branches"
        }

        test "in place: the executor overwrites the input arrays only when allowed, with the same numbers" {
            let chain = chainOf readmeMlp
            let x = Tensor.create [| 70; 9 |] (normals 5 (70 * 9))
            let k0 = KernelFn.inputKernel readmeMlp x None Both
            let before = Array.copy k0.Nngp.Data
            let fresh = (DenseStack.tryRun chain false k0).Value
            Expect.equal k0.Nngp.Data before "inPlace = false leaves the input unchanged"
            let inPlace = (DenseStack.tryRun chain true { k0 with Nngp = Tensor.create k0.Nngp.Shape (Array.copy before); Ntk = Some(Tensor.create k0.Nngp.Shape (Array.copy k0.Ntk.Value.Data)) }).Value
            Expect.equal (bits inPlace.Nngp.Data) (bits fresh.Nngp.Data) "in place = fresh buffers, nngp"
            Expect.equal (bits inPlace.Ntk.Value.Data) (bits fresh.Ntk.Value.Data) "in place = fresh buffers, ntk"
        }
    ]
