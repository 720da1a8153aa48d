/// Kernels too large for one .NET array are refused before anything is allocated (Memory.fs, Rules/Input.fs).
module NeuralTangents.Tests.MemoryTests

open System
open Expecto
open NeuralTangents
open NeuralTangents.Tests.TestUtil

/// Computes the kernel of `x` (x2 = x1) and returns the refusal and the bytes this thread allocated meanwhile.
let private refusal (net: Layer) (x: Tensor) =
    let before = GC.GetAllocatedBytesForCurrentThread()
    let e = throwsExactly<NeuralTangentsException> (fun () -> KernelFn.compute net x None Both |> ignore)
    e, GC.GetAllocatedBytesForCurrentThread() - before

[<Tests>]
let tests =
    testList "MemoryTests" [
        testCase "N1·N2 beyond the largest array (65537 × 65537) is refused naming N1 and N2, before the Gram product" <| fun () ->
            // 65537² = 4 295 098 369 entries > Array.MaxLength (2 147 483 591). The Gram product alone would allocate
            // 34 GB; the refusal must come first, so the call allocates next to nothing (a bound of 16 MB leaves room
            // for the message and checks; the input is 0.5 MB and was allocated before).
            let x = Tensor.zeros [| 65537; 1 |]
            let e, allocated = refusal (Stax.dense 1 1.0 None) x
            Expect.stringContains e.Message "N1 = 65537" "names N1"
            Expect.stringContains e.Message "N2 = 65537" "names N2"
            Expect.isLessThan allocated (16L <<< 20) (sprintf "allocated %d bytes before refusing" allocated)

        testCase "N1·N2·positions beyond the largest array ((1025, 4096, 1) inputs) is refused naming N1 and N2" <| fun () ->
            // 1025² · 4096 positions = 4 303 360 000 entries (each pair has one covariance per position).
            let x = Tensor.zeros [| 1025; 4096; 1 |]
            let e, allocated = refusal (Serial [ Stax.dense 1 1.0 None; Stax.flatten ]) x
            Expect.stringContains e.Message "N1 = 1025" "names N1"
            Expect.stringContains e.Message "N2 = 1025" "names N2"
            Expect.stringContains e.Message "4096" "names the positions"
            Expect.isLessThan allocated (16L <<< 20) (sprintf "allocated %d bytes before refusing" allocated)
    ]
