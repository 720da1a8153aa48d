/// The dense kernels of prediction at N = 4000 (--linalg): the packed AVX-512 product against OpenBLAS' dgemm, and
/// the blocked Cholesky and triangular routines built on it against their LAPACK/BLAS counterparts.
module NeuralTangents.Benchmarks.LinearAlgebra

open System.Diagnostics
open NeuralTangents
open NeuralTangents.Benchmarks.Data

let private median (runs: int) (f: unit -> unit) =
    f ()
    let ts = Array.init runs (fun _ -> let sw = Stopwatch.StartNew() in f (); sw.Elapsed.TotalSeconds)
    Array.sortInPlace ts
    ts[runs / 2]

let private row (what: string) (flops: float) (own: float) (native: float) =
    printfn "| %s | %.1f ms (%.0f GFLOP/s) | %s |" what (own * 1e3) (flops / own / 1e9)
        (if System.Double.IsNaN native then "–" else sprintf "%.1f ms (%.0f GFLOP/s)" (native * 1e3) (flops / native / 1e9))

let run (quick: bool) =
    let n = if quick then 1000 else 4000
    let m = n / 4
    let runs = if quick then 3 else 5
    printfn "%s; packed AVX-512 product %s" (Native.describe ()) (if Gemm.available then "available" else "NOT available")
    printfn "| operation (N = %d, M = %d) | own | native |" n m
    printfn "|---|---|---|"
    let a = normals 1 (n * n)
    let b = normals 2 (n * n)
    let c = Array.zeroCreate (n * n)
    let native = (Native.libraries ()).Gemm.IsSome
    let f = 2.0 * float n * float n * float n
    let own = median runs (fun () -> Gemm.multiplyAddArrays 1.0 false a 0 n true b 0 n n n n c 0 n false)
    let nat = if native then median runs (fun () -> Native.tryGemmNTInto 1.0 a n b n n 1.0 c |> ignore) else nan
    row "C += A·Bᵀ (N×N×N)" f own nat
    let own = median runs (fun () -> Gemm.multiplyAddArrays 1.0 false a 0 n false b 0 n n n n c 0 n false)
    let nat = if native then median runs (fun () -> Native.tryGemmInto false false n n n 1.0 a b 1.0 c |> ignore) else nan
    row "C += A·B (N×N×N)" f own nat
    let own = median runs (fun () -> Gemm.multiplyAddArrays 1.0 false a 0 n true a 0 n n n n c 0 n true)
    let nat = if native then median runs (fun () -> Native.trySyrkLower 1.0 a n n 1.0 c |> ignore) else nan
    row "lower(C) += A·Aᵀ (N×N×N, syrk)" (f / 2.0) own nat
    let cm = Array.zeroCreate (m * n)
    let own = median runs (fun () -> Gemm.multiplyAddArrays 1.0 false a 0 n true b 0 n m n n cm 0 n false)
    let nat = if native then median runs (fun () -> Native.tryGemmNTInto 1.0 a m b n n 1.0 cm |> ignore) else nan
    row "C += A·Bᵀ (M×N×N)" (f / 4.0) own nat
    // SPD matrix A·Aᵀ/n + I (well conditioned), factored by the dispatching routine (blocked here) and by dpotrf whole.
    let spd = Linalg.gemmNT (1.0 / float n) a n a n n
    for i in 0 .. n - 1 do spd[i * n + i] <- spd[i * n + i] + 1.0
    let work = Array.zeroCreate (n * n)
    let refill () = System.Array.Copy(spd, work, n * n)
    let timeFactor (f: unit -> unit) =
        median runs (fun () -> refill (); f ()) - median runs refill
    let own = timeFactor (fun () -> Linalg.choleskyLowerInPlace work n |> ignore)
    let nat = if native then timeFactor (fun () -> Native.tryPotrfLowerInPlace work n |> ignore) else nan
    row "Cholesky (N)" (float n ** 3.0 / 3.0) own nat
    let l = Array.copy spd
    Linalg.choleskyLowerInPlace l n |> ignore
    let bm = normals 3 (m * n)
    let w = Array.zeroCreate (m * n)
    let timeRhs (f: unit -> unit) =
        median runs (fun () -> System.Array.Copy(bm, w, m * n); f ()) - median runs (fun () -> System.Array.Copy(bm, w, m * n))
    let mnn = float m * float n * float n
    let own = timeRhs (fun () -> Linalg.trsmRightLowerTrans l n w m)
    let nat = if native then timeRhs (fun () -> Native.tryTrsmRightLowerTrans l n w m |> ignore) else nan
    row "B·L⁻ᵀ (M×N, trsm)" mnn own nat
    let own = timeRhs (fun () -> Linalg.trsmRightLower l n w m)
    let nat = if native then timeRhs (fun () -> Native.tryTrsmRightLower l n w m |> ignore) else nan
    row "B·L⁻¹ (M×N, trsm)" mnn own nat
    let own = timeRhs (fun () -> Linalg.tryTrmmRightLower l n w m |> ignore)
    let nat = if native then timeRhs (fun () -> Native.tryTrmmRightLower l n w m |> ignore) else nan
    row "B·L (M×N, trmm)" mnn own nat
