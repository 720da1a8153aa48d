/// Laws of kernel_fn's execution (issue: kernels corrupted by in-place buffer reuse). The fast execution overwrites
/// arrays the interpreter allocated itself and fuses Dense → ABRelu; the reference execution allocates every result.
/// Over networks full of layers that hand arrays on unchanged (Identity, Flatten of a flat kernel, pass-through
/// branches, one-branch fan-ins), both must give the same numbers bit for bit, and no call may write to an array the
/// caller holds.
module NeuralTangents.Tests.ExecutionProperties

open System
open Expecto
open FsCheck
open FsCheck.FSharp
open NeuralTangents
open NeuralTangents.Tests.TestUtil

/// The arrays of a kernel, named.
let private fields (k: Kernel) =
    [ "nngp", Some k.Nngp; "ntk", k.Ntk; "cov1", Some k.Cov1; "cov2", k.Cov2 ]
    |> List.map (fun (name, t) -> name, t |> Option.map (fun (t: Tensor) -> t.Data))

/// Bit patterns, so that −0.0 ≠ 0.0 and NaN = NaN as bits: "the same numbers" means the same doubles.
let private bits (a: float[]) = a |> Array.map BitConverter.DoubleToInt64Bits

let private sameBits (what: string) (expected: float[]) (actual: float[]) =
    if bits expected <> bits actual then
        let i = Array.findIndex id (Array.map2 (fun (e: float) (a: float) -> BitConverter.DoubleToInt64Bits e <> BitConverter.DoubleToInt64Bits a) expected actual)
        failtestf "%s differs at flat index %d: %.17g vs %.17g" what i expected[i] actual[i]

let private sameKernel (what: string) (expected: Kernel) (actual: Kernel) =
    Expect.equal actual.Nngp.Shape expected.Nngp.Shape (what + ": nngp shape")
    for (name, e), (_, a) in List.zip (fields expected) (fields actual) do
        match e, a with
        | Some e, Some a ->
            if e.Length <> a.Length then failtestf "%s %s: %d vs %d values" what name e.Length a.Length
            sameBits (sprintf "%s %s" what name) e a
        | None, None -> ()
        | _ -> failtestf "%s %s: present in one kernel only" what name

/// A deep copy of every array of a kernel.
let private snapshot (k: Kernel) = fields k |> List.map (fun (n, a) -> n, a |> Option.map Array.copy)

let private unchanged (what: string) (before: (string * float[] option) list) (k: Kernel) =
    for (name, b), (_, a) in List.zip before (fields k) do
        match b, a with
        | Some b, Some a -> sameBits (sprintf "%s: the caller's %s" what name) b a
        | None, None -> ()
        | _ -> failtestf "%s: the caller's %s appeared or vanished" what name

/// Ok kernel or Error message (random products of monomials can overflow; both executions must then refuse alike).
let private attempt (f: unit -> Kernel) = try Ok(f ()) with NeuralTangentsException m -> Error m

let private sameOutcome (what: string) (expected: Result<Kernel, string>) (actual: Result<Kernel, string>) =
    match expected, actual with
    | Ok e, Ok a -> sameKernel what e a
    | Error e, Error a -> Expect.equal a e (what + ": the same refusal")
    | Ok _, Error m -> failtestf "%s: only the second refused: %s" what m
    | Error m, Ok _ -> failtestf "%s: only the first refused: %s" what m

/// applyFlowWith returns a flow unchecked (applyKernel and compute refuse a non-finite kernel): where compute refuses
/// a kernel that overflowed, the applied flow must hold the non-finite values instead; otherwise the same bits.
let private sameAsCompute (what: string) (whole: Result<Kernel, string>) (applied: Kernel) =
    match whole with
    | Ok w -> sameKernel what w applied
    | Error m ->
        if Tensor.isFinite applied.Nngp && (applied.Ntk |> Option.forall Tensor.isFinite) then
            failtestf "%s: compute refused (%s) but the applied kernel is finite" what m

let private cases =
    gen {
        let! c = Generators.executionCase
        let! s1 = Generators.inputSpec
        let! s2 = Gen.oneof [ Gen.constant None; Generators.inputSpec |> Gen.map Some ]
        return c, s1, s2
    }
    |> Arb.fromGen

[<Tests>]
let tests =
    testList "ExecutionProperties" [
        testPropertyWithConfig (fsCheck 150) "Fast and Reference executions agree bit for bit and leave x1 and x2 unchanged" <| fun () ->
            Prop.forAll cases (fun (c, s1, s2) ->
                let x1 = Generators.inputs c.Layout s1
                let x2 = s2 |> Option.map (Generators.inputs c.Layout)
                let x1Before = Array.copy x1.Data
                let x2Before = x2 |> Option.map (fun t -> Array.copy t.Data)
                let fast = attempt (fun () -> KernelFn.computeWith Execution.Fast c.Net x1 x2 Both)
                let reference = attempt (fun () -> KernelFn.computeWith Execution.Reference c.Net x1 x2 Both)
                sameOutcome "Fast vs Reference" reference fast
                // compute is the fast execution.
                sameOutcome "compute vs Reference" reference (attempt (fun () -> KernelFn.compute c.Net x1 x2 Both))
                sameBits "x1 after the calls" x1Before x1.Data
                match x2Before, x2 with
                | Some before, Some x -> sameBits "x2 after the calls" before x.Data
                | _ -> ()
                true)

        testPropertyWithConfig (fsCheck 150) "applyKernel and applyFlowWith leave every array of the given kernel unchanged" <| fun () ->
            Prop.forAll cases (fun (c, s1, s2) ->
                let x1 = Generators.inputs c.Layout s1
                let x2 = s2 |> Option.map (Generators.inputs c.Layout)
                let whole = attempt (fun () -> KernelFn.computeWith Execution.Reference c.Net x1 x2 Both)
                // From the input kernel (not Gaussian; the network starts with Dense) ...
                let input = KernelFn.inputKernel c.Net x1 x2 Both
                let inputBefore = snapshot input
                // applyKernel refuses exactly where compute refuses (a kernel that overflowed), with the same message.
                sameOutcome "applyKernel from the input kernel" whole (attempt (fun () -> KernelFn.applyKernel c.Net input))
                unchanged "applyKernel" inputBefore input
                // ... and from a kernel in the middle of the network: the first Dense is computed, the rest applied.
                match c.Net with
                | Serial(first :: rest) ->
                    // In the whole network's layout (the first layer alone may get another one, e.g. the full
                    // spatial layout where the whole network, topped with Flatten, gets the diagonal one).
                    let db, ds = Requirements.layout (Requirements.ofLayer c.Net) LayoutRequest.Auto
                    let mid = KernelFn.computeWithLayout { DiagonalBatch = Some db; DiagonalSpatial = Some ds } first x1 x2 Both
                    let midBefore = snapshot mid
                    for exec in [ Execution.Fast; Execution.Reference ] do
                        let applied =
                            match KernelFn.applyFlowWith exec (Serial rest) (One mid) with
                            | One k -> k
                            | Many ks -> failtestf "the network ends in %d branches" ks.Length
                        sameAsCompute (sprintf "applyFlowWith %A from the first layer's kernel" exec) whole applied
                        unchanged (sprintf "applyFlowWith %A" exec) midBefore mid
                    // The same kernel fanned out to parallel branches that pass it through and then merged.
                    let shared = attempt (fun () -> KernelFn.applyKernel (Serial [ FanOut 2; Parallel [ Serial rest; Serial rest ]; FanInSum ]) mid)
                    unchanged "applyKernel with shared branches" midBefore mid
                    match whole, shared with
                    | Ok w, Ok sh -> sameBits "FanOut(2) → parallel [net; net] → FanInSum = 2·net" (w.Nngp.Data |> Array.map (fun v -> v + v)) sh.Nngp.Data
                    | Ok _, Error m -> failtestf "applyKernel with shared branches refused where compute did not: %s" m
                    | Error _, _ -> ()
                | _ -> failtestf "executionCase builds a serial network, got %A" c.Net
                true)
    ]
