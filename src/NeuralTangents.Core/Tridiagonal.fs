namespace NeuralTangents

open System
open System.Runtime.InteropServices

/// LAPACK's symmetric eigenproblem in its three parts, for finite-time prediction (<c>Predict.Factor</c>):
/// dsyevr = dsytrd (A = Q·T·Qᵀ, Q kept as Householder reflectors) + dstemr (T = Z·Λ·Zᵀ) + dormtr (V = Q·Z, 2n³
/// flops). A prediction only needs V applied to M-row blocks, so the three are loaded separately and Q is applied
/// to the blocks (2·M·n² each, in blocks of reflectors: dlarft + dlarfb) instead of to Z. Optional like the rest of
/// <c>Native</c>: every entry returns None when LAPACKE (or one of these symbols) is missing.
module internal Tridiagonal =

    open Native

    /// LAPACKE_dsytrd: reduction of a symmetric matrix to tridiagonal form.
    [<UnmanagedFunctionPointer(CallingConvention.Cdecl)>]
    type Dsytrd =
        delegate of layout: int * uplo: byte * n: int * a: nativeint * lda: int * d: nativeint * e: nativeint * tau: nativeint -> int

    /// LAPACKE_dstemr: eigenpairs of a symmetric tridiagonal matrix by MRRR (what dsyevr calls).
    [<UnmanagedFunctionPointer(CallingConvention.Cdecl)>]
    type Dstemr =
        delegate of layout: int * jobz: byte * range: byte * n: int * d: nativeint * e: nativeint * vl: float * vu: float *
                    il: int * iu: int * m: nativeint * w: nativeint * z: nativeint * ldz: int * nzc: int *
                    isuppz: nativeint * tryrac: nativeint -> int

    /// LAPACKE_dormtr: C ← op(Q)·C or C·op(Q) with Q from dsytrd's reflectors.
    [<UnmanagedFunctionPointer(CallingConvention.Cdecl)>]
    type Dormtr =
        delegate of layout: int * side: byte * uplo: byte * trans: byte * m: int * n: int * a: nativeint * lda: int *
                    tau: nativeint * c: nativeint * ldc: int -> int

    /// Symbols of the LAPACKE library already in use (<paramref name="exports"/> reads them from its handle); None
    /// without one.
    let private fromLapacke (exports: nativeint -> 'T option) : 'T option =
        match (libraries ()).Lapacke with
        | None -> None
        | Some name ->
            let mutable h = 0n
            if NativeLibrary.TryLoad(name, &h) then exports h else None

    /// The three routines; None when any is missing.
    let private tridiagonal =
        lazy
            (fromLapacke (fun h ->
                match export<Dsytrd> h "LAPACKE_dsytrd", export<Dstemr> h "LAPACKE_dstemr", export<Dormtr> h "LAPACKE_dormtr" with
                | Some a, Some b, Some c -> Some(a, b, c)
                | _ -> None))

    /// True when dsytrd, dstemr and dormtr are all loaded.
    let available () = tridiagonal.Force().IsSome

    /// openblas_get_num_threads / openblas_set_num_threads: OpenBLAS' thread count, process-wide.
    [<UnmanagedFunctionPointer(CallingConvention.Cdecl)>]
    type GetThreads = delegate of unit -> int

    [<UnmanagedFunctionPointer(CallingConvention.Cdecl)>]
    type SetThreads = delegate of threads: int -> unit

    /// The thread control of the BLAS library in use; None when it is not OpenBLAS.
    let private threadControl =
        lazy
            (match (libraries ()).Blas with
             | None -> None
             | Some name ->
                 let mutable h = 0n
                 if not (NativeLibrary.TryLoad(name, &h)) then None
                 else
                     match export<GetThreads> h "openblas_get_num_threads", export<SetThreads> h "openblas_set_num_threads" with
                     | Some g, Some s -> Some(g, s)
                     | _ -> None)

    let private threadGate = obj ()
    let mutable private sections = 0
    let mutable private savedThreads = 0

    /// OpenBLAS' thread count now; None without its thread control (another BLAS).
    let blasThreads () = threadControl.Force() |> Option.map (fun (getThreads, _) -> getThreads.Invoke())

    /// Runs f with OpenBLAS' thread count lowered by <c>reserve</c> (to one at least): BLAS work beside a serial
    /// routine that keeps <c>reserve</c> cores busy. Without OpenBLAS' thread control, f as it is. The count is
    /// process-wide: nested or concurrent sections share the first one's lowered count, and the last to leave
    /// restores it.
    let withBlasThreadsLess (reserve: int) (f: unit -> 'T) : 'T =
        match threadControl.Force() with
        | None -> f ()
        | Some(getThreads, setThreads) ->
            lock threadGate (fun () ->
                if sections = 0 then
                    savedThreads <- getThreads.Invoke()
                    setThreads.Invoke(max 1 (savedThreads - reserve))
                sections <- sections + 1)
            try f ()
            finally
                lock threadGate (fun () ->
                    sections <- sections - 1
                    if sections = 0 then setThreads.Invoke savedThreads)

    /// <summary>Runs the jobs at once, one thread each (this thread takes the last) and one OpenBLAS thread each,
    /// when that keeps as many cores busy as OpenBLAS would on its own: with OpenBLAS' thread control and at most
    /// as many OpenBLAS threads as jobs. Otherwise false, and nothing is run (the caller runs them one after the
    /// other, each with all of OpenBLAS' threads). For memory-bound LAPACK routines: two one-thread dsytrd at
    /// N = 4000 finish together in 6.1–7.0 s on two cores (Zen 3), one after the other with two threads each in
    /// 7.0–7.7 s, and with less system time (each symmetric matrix–vector product of the reduction is too short
    /// to keep two threads busy between their synchronisations).</summary>
    let tryRunTogether (jobs: (unit -> unit)[]) : bool =
        match blasThreads () with
        | Some threads when jobs.Length >= 2 && threads <= jobs.Length ->
            withBlasThreadsLess (threads - 1) (fun () ->
                let others = jobs[.. jobs.Length - 2] |> Array.map (fun job -> System.Threading.Tasks.Task.Run(fun () -> job ()))
                let last = try jobs[jobs.Length - 1] (); None with ex -> Some ex
                let waited =
                    try System.Threading.Tasks.Task.WaitAll others; None
                    with :? AggregateException as ex -> Some ex.InnerExceptions[0]
                last |> Option.orElse waited |> Option.iter Runtime.ExceptionServices.ExceptionDispatchInfo.Throw)
            true
        | _ -> false

    /// Reduces the symmetric matrix held in the row-major lower triangle (with diagonal) of a (n×n) to tridiagonal
    /// T (diagonal d, n; off-diagonal e, n − 1 used) with LAPACKE_dsytrd, column-major 'U' (no transposed copy).
    /// The reflectors of Q (A = Q·T·Qᵀ) and tau stay for <c>tryOrmtrRows</c>; the strictly upper row-major triangle is
    /// neither read nor written. Some info, or None when not loaded.
    let trySytrdLowerRows (a: float[]) (n: int) (d: float[]) (e: float[]) (tau: float[]) : int option =
        tridiagonal.Force()
        |> Option.map (fun (f, _, _) ->
            pinned [ a; d; e; tau ] (fun ps ->
                match ps with
                | [ pa; pd; pe; pt ] -> f.Invoke(ColMajor, byte 'U', n, pa, max 1 n, pd, pe, pt)
                | _ -> -1))

    /// All eigenvalues (ascending, into w) of the tridiagonal (d, e; e of length n, its last entry scratch) and
    /// eigenvectors into z (n×n): row j of z is the unit eigenvector of w[j]. d and e are destroyed. Some info
    /// (non-zero also when fewer than n pairs were found), or None when not loaded.
    let tryStemrRows (d: float[]) (e: float[]) (n: int) (w: float[]) (z: float[]) : int option =
        tridiagonal.Force()
        |> Option.map (fun (_, f, _) ->
            let found = [| 0 |]
            let isuppz = Array.zeroCreate<int> (2 * max 1 n)
            let tryrac = [| 1 |] // high relative accuracy where the tridiagonal allows it, as dsyevr asks
            let handles = [ GCHandle.Alloc(found, GCHandleType.Pinned); GCHandle.Alloc(isuppz, GCHandleType.Pinned); GCHandle.Alloc(tryrac, GCHandleType.Pinned) ]
            try
                let info =
                    pinned [ d; e; w; z ] (fun ps ->
                        match ps, handles with
                        | [ pd; pe; pw; pz ], [ hf; hs; ht ] ->
                            f.Invoke(ColMajor, byte 'V', byte 'A', n, pd, pe, 0.0, 0.0, 0, 0, hf.AddrOfPinnedObject(), pw, pz,
                                     max 1 n, n, hs.AddrOfPinnedObject(), ht.AddrOfPinnedObject())
                        | _ -> -1)
                if info = 0 && found[0] <> n then -1 else info
            finally
                handles |> List.iter (fun h -> h.Free()))

    /// Rows of b (m×n, row-major) ← row·Q (transposeQ false) or row·Qᵀ (true), Q from <c>trySytrdLowerRows</c> on a
    /// with its tau: the rows of b read column-major are the columns of Bᵀ, so one dormtr from the left. Some info.
    let tryOrmtrRows (a: float[]) (n: int) (tau: float[]) (b: float[]) (m: int) (transposeQ: bool) : int option =
        tridiagonal.Force()
        |> Option.map (fun (_, _, f) ->
            if m = 0 || n = 0 then 0
            else
                pinned [ a; tau; b ] (fun ps ->
                    match ps with
                    | [ pa; pt; pb ] ->
                        // B·Q = (Qᵀ·Bᵀ)ᵀ and B·Qᵀ = (Q·Bᵀ)ᵀ.
                        f.Invoke(ColMajor, byte 'L', byte 'U', (if transposeQ then byte 'N' else byte 'T'), n, m, pa, n, pt, pb, n)
                    | _ -> -1))

    /// LAPACKE_dlarft_work: the triangular factor T of a block of Householder reflectors (H = I − V·T·Vᵀ).
    [<UnmanagedFunctionPointer(CallingConvention.Cdecl)>]
    type Dlarft =
        delegate of layout: int * direct: byte * storev: byte * n: int * k: int * v: nativeint * ldv: int * tau: nativeint *
                    t: nativeint * ldt: int -> int

    /// LAPACKE_dlarfb_work: a block of reflectors applied to a matrix (two or three BLAS-3 products).
    [<UnmanagedFunctionPointer(CallingConvention.Cdecl)>]
    type Dlarfb =
        delegate of layout: int * side: byte * trans: byte * direct: byte * storev: byte * m: int * n: int * k: int *
                    v: nativeint * ldv: int * t: nativeint * ldt: int * c: nativeint * ldc: int * work: nativeint *
                    ldwork: int -> int

    let private blockReflectors =
        lazy
            (fromLapacke (fun h ->
                match export<Dlarft> h "LAPACKE_dlarft_work", export<Dlarfb> h "LAPACKE_dlarfb_work" with
                | Some a, Some b -> Some(a, b)
                | _ -> None))

    /// Reflectors per block of <c>tryOrmtrRowsBlocked</c>: LAPACK's dormql takes 32 (ilaenv), which makes its
    /// updates rank-32 products that run at about half of dgemm's speed; 128 keeps them near it.
    [<Literal>]
    let ReflectorBlock = 128

    /// <c>tryOrmtrRows</c> (same arguments and result) by blocks of <c>ReflectorBlock</c> reflectors, as LAPACK's
    /// dormtr → dormql does with its 32: for uplo 'U', Q = H(n−1)···H(1) with reflector i stored in column i + 1
    /// above the diagonal (its unit at row i, column-major, 1-based), acting on rows 1..n−1 of C = Bᵀ. Q·C applies
    /// the blocks first to last, Qᵀ·C last to first. Falls back to <c>tryOrmtrRows</c> without dlarft/dlarfb.
    let tryOrmtrRowsBlocked (a: float[]) (n: int) (tau: float[]) (b: float[]) (m: int) (transposeQ: bool) : int option =
        match blockReflectors.Force(), tridiagonal.Force() with
        | Some(larft, larfb), Some _ when n > 1 && m > 0 ->
            let k = n - 1 // reflectors
            let nb = ReflectorBlock
            let t = Array.zeroCreate (nb * nb)
            let work = Array.zeroCreate (m * nb)
            // Q·Bᵀ (transposeQ: B·Qᵀ) takes the blocks forward; Qᵀ·Bᵀ (B·Q) backward.
            let starts = [| 0 .. nb .. k - 1 |]
            let order = if transposeQ then starts else Array.rev starts
            let trans = if transposeQ then byte 'N' else byte 'T'
            pinned [ a; tau; b; t; work ] (fun ps ->
                match ps with
                | [ pa; ptau; pb; pt; pw ] ->
                    let mutable info = 0
                    for i0 in order do
                        if info = 0 then
                            let ib = min nb (k - i0)
                            let rows = i0 + ib // reflectors i0 .. i0 + ib − 1 (0-based) reach rows 0 .. i0 + ib − 1
                            let v = pa + nativeint (int64 (i0 + 1) * int64 n * 8L) // column i0 + 1 of A, row 0
                            let tauAt = ptau + nativeint (i0 * 8)
                            info <- larft.Invoke(ColMajor, byte 'B', byte 'C', rows, ib, v, n, tauAt, pt, nb)
                            if info = 0 then
                                info <- larfb.Invoke(ColMajor, byte 'L', trans, byte 'B', byte 'C', rows, m, ib, v, n, pt, nb, pb, n, pw, m)
                    Some info
                | _ -> Some -1)
        | _ -> tryOrmtrRows a n tau b m transposeQ
