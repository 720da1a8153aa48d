// Eigendecomposition routes for finite-t prediction (issue #9 item 5), timed through LAPACKE directly:
//   dotnet fsi bench/predict/eigen.fsx [N=4000] [M=1000]
// On one symmetric N×N matrix
// (the ReLU NNGP of N(0,1) inputs of dimension 64, ridge 1e-4 of the mean diagonal):
//   dsyevd (D&C, forms V), dsyevr (MRRR, forms V: what nt uses), dsytrd alone (the memory-bound reduction),
//   dstemr on the tridiagonal (Z, N×N), dstedc on it (divide and conquer, what dsyevd calls), dormtr applying Q to an N×N Z (what dsyevr does to form V), and dormtr
//   applying Q to an M×N block (K*·Q, the alternative that never forms V), and the same by blocks of 128
//   reflectors (dlarft + dlarfb, as Tridiagonal.tryOrmtrRowsBlocked; dormql's own blocks are 32). Wall and process CPU
//   (all threads); the two M×N results are compared.
#nowarn "9" "51"
open System
open System.Diagnostics
open System.Runtime.InteropServices

module L =
    [<DllImport("liblapacke.so.3")>]
    extern int LAPACKE_dsyevd(int layout, byte jobz, byte uplo, int n, double[] a, int lda, double[] w)
    [<DllImport("liblapacke.so.3")>]
    extern int LAPACKE_dsyevr(int layout, byte jobz, byte range, byte uplo, int n, double[] a, int lda, double vl, double vu,
                              int il, int iu, double abstol, int[] m, double[] w, double[] z, int ldz, int[] isuppz)
    [<DllImport("liblapacke.so.3")>]
    extern int LAPACKE_dsytrd(int layout, byte uplo, int n, double[] a, int lda, double[] d, double[] e, double[] tau)
    [<DllImport("liblapacke.so.3")>]
    extern int LAPACKE_dstedc(int layout, byte compz, int n, double[] d, double[] e, double[] z, int ldz)
    [<DllImport("liblapacke.so.3")>]
    extern int LAPACKE_dstemr(int layout, byte jobz, byte range, int n, double[] d, double[] e, double vl, double vu, int il,
                              int iu, int[] m, double[] w, double[] z, int ldz, int nzc, int[] isuppz, int[] tryrac)
    [<DllImport("liblapacke.so.3")>]
    extern int LAPACKE_dlarft_work(int layout, byte direct, byte storev, int n, int k, nativeint v, int ldv, nativeint tau,
                                   double[] t, int ldt)
    [<DllImport("liblapacke.so.3")>]
    extern int LAPACKE_dlarfb_work(int layout, byte side, byte trans, byte direct, byte storev, int m, int n, int k,
                                   nativeint v, int ldv, double[] t, int ldt, double[] c, int ldc, double[] work, int ldwork)
    [<DllImport("liblapacke.so.3")>]
    extern int LAPACKE_dormtr(int layout, byte side, byte uplo, byte trans, int m, int n, double[] a, int lda, double[] tau,
                              double[] c, int ldc)

let col = 102
let n = if fsi.CommandLineArgs.Length > 1 then int fsi.CommandLineArgs[1] else 4000
let m = if fsi.CommandLineArgs.Length > 2 then int fsi.CommandLineArgs[2] else 1000
let rng = Random(7)
let gauss () = sqrt (-2.0 * log (1.0 - rng.NextDouble())) * cos (2.0 * Math.PI * rng.NextDouble())
let x = Array.init (n * 64) (fun _ -> gauss ())
let a0 = Array.zeroCreate (n * n)
Threading.Tasks.Parallel.For(0, n, fun i ->
    for j in 0 .. i do
        let mutable s = 0.0
        for p in 0 .. 63 do s <- s + x[i * 64 + p] * x[j * 64 + p]
        a0[i * n + j] <- s / 64.0
        a0[j * n + i] <- a0[i * n + j]) |> ignore
// The ReLU NNGP of that Gram matrix (arc-cosine kernel, Cho & Saul 2009) plus 1e-4 of its mean diagonal: a
// spectrum like a real kernel's (a Gram matrix alone would have N − 64 equal eigenvalues).
let diag0 = Array.init n (fun i -> a0[i * n + i])
Threading.Tasks.Parallel.For(0, n, fun i ->
    for j in 0 .. n - 1 do
        let norm = sqrt (diag0[i] * diag0[j])
        let c = max -1.0 (min 1.0 (a0[i * n + j] / norm))
        let th = acos c
        a0[i * n + j] <- norm * (sin th + (Math.PI - th) * c) / (2.0 * Math.PI)) |> ignore
let ridge = 1e-4 * (Array.init n (fun i -> a0[i * n + i]) |> Array.average)
for i in 0 .. n - 1 do a0[i * n + i] <- a0[i * n + i] + ridge
let cpu () = Process.GetCurrentProcess().TotalProcessorTime.TotalSeconds
let time name f =
    GC.Collect()
    let c0 = cpu ()
    let sw = Stopwatch.StartNew()
    let r = f ()
    printfn "%-34s wall %7.2f s  cpu %7.2f s" name sw.Elapsed.TotalSeconds (cpu () - c0)
    r
printfn "N = %d, M = %d, load %s" n m (IO.File.ReadAllText("/proc/loadavg").Split(' ')[0])
let w = Array.zeroCreate n
let z = Array.zeroCreate (n * n)
let found = [| 0 |]
let supp = Array.zeroCreate (2 * n)
time "dsyevr (V formed)" (fun () -> L.LAPACKE_dsyevr(col, byte 'V', byte 'A', byte 'U', n, Array.copy a0, n, 0.0, 0.0, 0, 0, 0.0, found, w, z, n, supp)) |> ignore
time "dsyevd (V formed)" (fun () -> L.LAPACKE_dsyevd(col, byte 'V', byte 'U', n, Array.copy a0, n, w)) |> ignore
let a = Array.copy a0
let d, e, tau = Array.zeroCreate n, Array.zeroCreate n, Array.zeroCreate n
time "dsytrd (reduction only)" (fun () -> L.LAPACKE_dsytrd(col, byte 'U', n, a, n, d, e, tau)) |> ignore
let tryrac = [| 1 |]
let info = time "dstemr (Z of T, N×N)" (fun () -> L.LAPACKE_dstemr(col, byte 'V', byte 'A', n, Array.copy d, Array.copy e, 0.0, 0.0, 0, 0, found, w, z, n, n, supp, tryrac))
if info <> 0 || found[0] <> n then failwithf "dstemr: info %d, %d of %d eigenpairs" info found[0] n
let dD, zD = Array.copy d, Array.zeroCreate<float> (n * n)
let infoD = time "dstedc (Z of T, N×N, divide and conquer)" (fun () -> L.LAPACKE_dstedc(col, byte 'I', n, dD, Array.copy e, zD, n))
if infoD <> 0 then failwithf "dstedc: info %d" infoD
printfn "max |eigenvalue dstedc − dstemr| = %g (max |eigenvalue| %g)" (Array.map2 (fun a b -> abs (a - b)) dD w |> Array.max) (w |> Array.map abs |> Array.max)
time "dormtr Q·Z (N×N: forms V)" (fun () -> L.LAPACKE_dormtr(col, byte 'L', byte 'U', byte 'N', n, n, a, n, tau, Array.copy z, n)) |> ignore
let c = Array.init (n * m) (fun _ -> gauss ())
time "dormtr Qᵀ·K*ᵀ (N×M)" (fun () -> L.LAPACKE_dormtr(col, byte 'L', byte 'U', byte 'T', n, m, a, n, tau, c, n)) |> ignore

/// Qᵀ·C (C n×m column-major) by blocks of nb reflectors, last block first (see Tridiagonal.tryOrmtrRowsBlocked).
let blockedQt (nb: int) (c: float[]) =
    let k = n - 1
    let t = Array.zeroCreate (nb * nb)
    let work = Array.zeroCreate (m * nb)
    let ha = GCHandle.Alloc(a, GCHandleType.Pinned)
    let ht = GCHandle.Alloc(tau, GCHandleType.Pinned)
    try
        for i0 in Array.rev [| 0 .. nb .. k - 1 |] do
            let ib = min nb (k - i0)
            let v = ha.AddrOfPinnedObject() + nativeint (int64 (i0 + 1) * int64 n * 8L)
            let tv = ht.AddrOfPinnedObject() + nativeint (i0 * 8)
            L.LAPACKE_dlarft_work(col, byte 'B', byte 'C', i0 + ib, ib, v, n, tv, t, nb) |> ignore
            L.LAPACKE_dlarfb_work(col, byte 'L', byte 'T', byte 'B', byte 'C', i0 + ib, m, ib, v, n, t, nb, c, n, work, m) |> ignore
    finally
        ha.Free()
        ht.Free()
let c2 = Array.init (n * m) (fun _ -> gauss ())
let c3 = Array.copy c2
time "dormtr Qᵀ·K*ᵀ (N×M) again" (fun () -> L.LAPACKE_dormtr(col, byte 'L', byte 'U', byte 'T', n, m, a, n, tau, c2, n)) |> ignore
time "blocks of 128: Qᵀ·K*ᵀ (N×M)" (fun () -> blockedQt 128 c3)
printfn "max |dormtr − blocked| = %g (max |entry| %g)" (Array.map2 (fun x y -> abs (x - y)) c2 c3 |> Array.max) (c2 |> Array.map abs |> Array.max)
let c4 = Array.copy c3
time "blocks of 256: Qᵀ·K*ᵀ (N×M)" (fun () -> blockedQt 256 c4)
