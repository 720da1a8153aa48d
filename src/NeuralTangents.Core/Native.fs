namespace NeuralTangents

open System
open System.Runtime.InteropServices

/// <summary>With the environment variable <c>NT_TIMINGS=1</c>, the steps of a kernel computation (the input kernel,
/// every operation of the plan) write their wall time and this process's CPU time (all threads) to stderr: the
/// profile of small requests (issue #9 item 7). Off (the default), a step costs one test of a flag.</summary>
module internal Timings =

    /// Read once, when the module is first used.
    let enabled = Environment.GetEnvironmentVariable "NT_TIMINGS" = "1"

    let private cpuMs () = Diagnostics.Process.GetCurrentProcess().TotalProcessorTime.TotalMilliseconds

    /// Runs f, reporting its times under the name <paramref name="step"/> when enabled.
    let time (step: string) (f: unit -> 'T) : 'T =
        if not enabled then f ()
        else
            let c0 = cpuMs ()
            let sw = Diagnostics.Stopwatch.StartNew()
            let r = f ()
            let wall = sw.Elapsed.TotalMilliseconds
            // String.Format, not eprintfn: F#'s printf costs tens of milliseconds of JIT on first use.
            Console.Error.WriteLine(String.Format("nt timings: {0,-44} wall {1,8:F2} ms  cpu {2,8:F2} ms", step, wall, cpuMs () - c0))
            r

/// Optional native BLAS/LAPACK (OpenBLAS, LAPACKE), probed once at run time with NativeLibrary.TryLoad.
/// Nothing here is required: when a library is missing every caller falls back to managed code.
/// Environment: <c>NT_NATIVE=0</c> disables native code (to test the managed path);
/// <c>NT_OPENBLAS_CORETYPE=&lt;name&gt;</c> sets OpenBLAS' <c>OPENBLAS_CORETYPE</c> in the native environment
/// (libc <c>setenv</c>) before the library is loaded, e.g. <c>SkylakeX</c> to get AVX-512 kernels on a
/// machine whose environment pins <c>Haswell</c>. With neither variable set, on an x86 CPU with AVX-512 (F, BW, DQ,
/// VL) <c>OPENBLAS_CORETYPE</c> is set to <c>SkylakeX</c>: OpenBLAS 0.3.21 (Debian 12) does not know recent Xeons
/// (Emerald Rapids, family 6 model 207) and falls back to its SSE3 "Prescott" kernels — a third of the speed, and
/// dot/gemv kernels that peel for alignment, so the same call gives different last bits for differently placed
/// arrays. SkylakeX is its best float64 kernel set on every AVX-512 CPU (SapphireRapids and CooperLake reuse it).
module internal Native =

    [<Literal>]
    let RowMajor = 101

    [<Literal>]
    let NoTrans = 111

    [<Literal>]
    let Trans = 112

    [<Literal>]
    let ColMajor = 102

    [<Literal>]
    let private Upper = 121

    [<Literal>]
    let private LowerTri = 122

    [<Literal>]
    let private Right = 142

    [<Literal>]
    let private NonUnit = 131

    [<UnmanagedFunctionPointer(CallingConvention.Cdecl)>]
    type Dgemm =
        delegate of order: int * transA: int * transB: int * m: int * n: int * k: int * alpha: float * a: nativeint * lda: int *
                    b: nativeint * ldb: int * beta: float * c: nativeint * ldc: int -> unit

    [<UnmanagedFunctionPointer(CallingConvention.Cdecl)>]
    type Dpotrf = delegate of layout: int * uplo: byte * n: int * a: nativeint * lda: int -> int

    [<UnmanagedFunctionPointer(CallingConvention.Cdecl)>]
    type Dpotrs =
        delegate of layout: int * uplo: byte * n: int * nrhs: int * a: nativeint * lda: int * b: nativeint * ldb: int -> int

    [<UnmanagedFunctionPointer(CallingConvention.Cdecl)>]
    type Dsyevd =
        delegate of layout: int * jobz: byte * uplo: byte * n: int * a: nativeint * lda: int * w: nativeint -> int

    /// LAPACKE_dsyevr (MRRR): eigenvalues into w and, for jobz 'V', eigenvectors into a separate z; a is
    /// destroyed (its referenced triangle and diagonal only). Workspace O(n), allocated by LAPACKE.
    [<UnmanagedFunctionPointer(CallingConvention.Cdecl)>]
    type Dsyevr =
        delegate of layout: int * jobz: byte * range: byte * uplo: byte * n: int * a: nativeint * lda: int * vl: float *
                    vu: float * il: int * iu: int * abstol: float * m: nativeint * w: nativeint * z: nativeint *
                    ldz: int * isuppz: nativeint -> int

    /// cblas_dtrsm: B ← alpha · op(A)⁻¹·B (side Left) or alpha · B·op(A)⁻¹ (side Right), A triangular.
    [<UnmanagedFunctionPointer(CallingConvention.Cdecl)>]
    type Dtrsm =
        delegate of order: int * side: int * uplo: int * transA: int * diag: int * m: int * n: int * alpha: float *
                    a: nativeint * lda: int * b: nativeint * ldb: int -> unit

    /// cblas_dsymm: C ← alpha · A·B + beta · C (side Left) or alpha · B·A + beta · C (side Right), A symmetric
    /// and read from one triangle only.
    [<UnmanagedFunctionPointer(CallingConvention.Cdecl)>]
    type Dsymm =
        delegate of order: int * side: int * uplo: int * m: int * n: int * alpha: float * a: nativeint * lda: int *
                    b: nativeint * ldb: int * beta: float * c: nativeint * ldc: int -> unit

    /// cblas_dtrmm: B ← alpha · op(A)·B (side Left) or alpha · B·op(A) (side Right), A triangular.
    [<UnmanagedFunctionPointer(CallingConvention.Cdecl)>]
    type Dtrmm =
        delegate of order: int * side: int * uplo: int * transA: int * diag: int * m: int * n: int * alpha: float *
                    a: nativeint * lda: int * b: nativeint * ldb: int -> unit

    /// cblas_dsyrk: C ← alpha · A·Aᵀ + beta · C (trans NoTrans) on one triangle of C.
    [<UnmanagedFunctionPointer(CallingConvention.Cdecl)>]
    type Dsyrk =
        delegate of order: int * uplo: int * trans: int * n: int * k: int * alpha: float * a: nativeint * lda: int *
                    beta: float * c: nativeint * ldc: int -> unit

    [<UnmanagedFunctionPointer(CallingConvention.Cdecl)>]
    type CoreName = delegate of unit -> nativeint

    [<DllImport("libc", EntryPoint = "setenv")>]
    extern int setenv(string name, string value, int overwrite)

    /// What was found at load time.
    type Libraries =
        { Blas: string option
          Lapacke: string option
          Gemm: Dgemm option
          Potrf: Dpotrf option
          Potrs: Dpotrs option
          Syevd: Dsyevd option
          Syevr: Dsyevr option
          Trsm: Dtrsm option
          Symm: Dsymm option
          Syrk: Dsyrk option
          Trmm: Dtrmm option
          CoreName: string option }

    let private none =
        { Blas = None; Lapacke = None; Gemm = None; Potrf = None; Potrs = None; Syevd = None; Syevr = None; Trsm = None; Symm = None; Syrk = None; Trmm = None; CoreName = None }

    let private blasNames =
        [ "libopenblas.so.0"; "libopenblas.so"; "libcblas.so.3"; "libblas.so.3"; "libopenblas.dylib"; "libopenblas.dll" ]

    let private lapackeNames = [ "liblapacke.so.3"; "liblapacke.so"; "liblapacke.dylib"; "liblapacke.dll" ]

    let private tryLoad (names: string list) =
        names
        |> List.tryPick (fun name ->
            let mutable h = 0n
            if NativeLibrary.TryLoad(name, &h) then Some(name, h) else None)

    let export<'D when 'D :> Delegate> (handle: nativeint) (symbol: string) : 'D option =
        let mutable p = 0n
        if handle <> 0n && NativeLibrary.TryGetExport(handle, symbol, &p) then
            Some(Marshal.GetDelegateForFunctionPointer<'D> p)
        else None

    /// True unless NT_NATIVE is "0", "false" or "off".
    let enabledByEnvironment () =
        match Environment.GetEnvironmentVariable "NT_NATIVE" with
        | null -> true
        | v -> not (List.contains (v.Trim().ToLowerInvariant()) [ "0"; "false"; "off" ])

    /// True on an x86 CPU with the AVX-512 subsets OpenBLAS' SkylakeX kernels use.
    let private cpuSuitsSkylakeX () =
        Runtime.Intrinsics.X86.Avx512F.IsSupported && Runtime.Intrinsics.X86.Avx512BW.IsSupported
        && Runtime.Intrinsics.X86.Avx512DQ.IsSupported && Runtime.Intrinsics.X86.Avx512F.VL.IsSupported

    /// The OPENBLAS_CORETYPE to set before loading, from NT_OPENBLAS_CORETYPE and OPENBLAS_CORETYPE: ours when given,
    /// none when the user set OpenBLAS' own, SkylakeX on an AVX-512 CPU otherwise.
    let coreTypeToSet (ours: string) (openblas: string) : string option =
        match ours, openblas with
        | core, _ when not (String.IsNullOrEmpty core) -> Some core
        | _, set when not (String.IsNullOrEmpty set) -> None
        | _ when cpuSuitsSkylakeX () -> Some "SkylakeX"
        | _ -> None

    let private load () =
        if not (enabledByEnvironment ()) then none
        else
            try
                if OperatingSystem.IsLinux() || OperatingSystem.IsMacOS() then
                    // The managed Environment.SetEnvironmentVariable does not reach native getenv on Unix.
                    match coreTypeToSet (Environment.GetEnvironmentVariable "NT_OPENBLAS_CORETYPE") (Environment.GetEnvironmentVariable "OPENBLAS_CORETYPE") with
                    | Some core -> setenv ("OPENBLAS_CORETYPE", core, 1) |> ignore
                    | None -> ()
                let blas = tryLoad blasNames
                let blasHandle = blas |> Option.map snd |> Option.defaultValue 0n
                // Some OpenBLAS builds carry LAPACKE themselves; Debian's ships it in liblapacke.
                let lapackeHandle, lapackeName =
                    match export<Dpotrf> blasHandle "LAPACKE_dpotrf" with
                    | Some _ -> blasHandle, blas |> Option.map fst
                    | None ->
                        match tryLoad lapackeNames with
                        | Some(name, h) -> h, Some name
                        | None -> 0n, None
                let coreName =
                    export<CoreName> blasHandle "openblas_get_corename"
                    |> Option.map (fun f -> Marshal.PtrToStringAnsi(f.Invoke()))
                let gemm = export<Dgemm> blasHandle "cblas_dgemm"
                let potrf = export<Dpotrf> lapackeHandle "LAPACKE_dpotrf"
                let potrs = export<Dpotrs> lapackeHandle "LAPACKE_dpotrs"
                let syevd = export<Dsyevd> lapackeHandle "LAPACKE_dsyevd"
                let lapackeOk = potrf.IsSome && potrs.IsSome && syevd.IsSome
                { Blas = (if gemm.IsSome then blas |> Option.map fst else None)
                  Lapacke = (if lapackeOk then lapackeName else None)
                  Gemm = gemm
                  Potrf = (if lapackeOk then potrf else None)
                  Potrs = (if lapackeOk then potrs else None)
                  Syevd = (if lapackeOk then syevd else None)
                  Syevr = (if lapackeOk then export<Dsyevr> lapackeHandle "LAPACKE_dsyevr" else None)
                  Trsm = export<Dtrsm> blasHandle "cblas_dtrsm"
                  Symm = export<Dsymm> blasHandle "cblas_dsymm"
                  Syrk = export<Dsyrk> blasHandle "cblas_dsyrk"
                  Trmm = export<Dtrmm> blasHandle "cblas_dtrmm"
                  CoreName = coreName }
            with _ ->
                // A broken or foreign library must never take the managed path down with it.
                none

    let private libs = lazy (load ())

    /// The native libraries in use (loaded on first call).
    let libraries () = libs.Force()

    /// One line describing the native state, for benchmarks and diagnostics.
    let describe () =
        let l = libraries ()
        let core = match l.CoreName with Some c -> $" (core {c})" | None -> ""
        match l.Blas, l.Lapacke with
        | None, None -> if enabledByEnvironment () then "managed (no native BLAS/LAPACK found)" else "managed (NT_NATIVE=0)"
        | b, lp ->
            ("BLAS " + (defaultArg b "none") + core + ", LAPACKE " + (defaultArg lp "none"))

    /// True when the loaded OpenBLAS runs its AVX-512 float64 kernels (core SkylakeX, or CooperLake and
    /// SapphireRapids, which reuse them).
    let avx512Kernels () =
        match (libraries ()).CoreName with
        | Some core -> List.contains (core.ToLowerInvariant()) [ "skylakex"; "cooperlake"; "sapphirerapids" ]
        | None -> false

    /// Pins arrays for the duration of a native call.
    let inline pinned (arrays: float[] list) ([<InlineIfLambda>] f: nativeint list -> 'T) : 'T =
        let handles = arrays |> List.map (fun a -> GCHandle.Alloc(a, GCHandleType.Pinned))
        try f (handles |> List.map (fun h -> h.AddrOfPinnedObject()))
        finally handles |> List.iter (fun h -> h.Free())

    /// C (m×n, row-major) = alpha · A (m×k) · Bᵀ (B is n×k) with cblas_dgemm; false when no BLAS is loaded.
    let tryGemmNT (alpha: float) (a: float[]) (m: int) (b: float[]) (n: int) (k: int) (c: float[]) : bool =
        match (libraries ()).Gemm with
        | Some f when m > 0 && n > 0 && k > 0 ->
            pinned [ a; b; c ] (fun ps ->
                match ps with
                | [ pa; pb; pc ] -> f.Invoke(RowMajor, NoTrans, Trans, m, n, k, alpha, pa, k, pb, k, 0.0, pc, n)
                | _ -> ())
            true
        | _ -> false

    let private lower = byte 'L'

    /// In-place lower Cholesky factor of a row-major SPD matrix with LAPACKE_dpotrf; Some info (0 = success,
    /// j > 0 = the leading minor of order j is not positive definite), None when LAPACKE is not loaded.
    let tryPotrf (a: float[]) (n: int) : int option =
        (libraries ()).Potrf
        |> Option.map (fun f -> pinned [ a ] (fun ps -> f.Invoke(RowMajor, lower, n, List.head ps, n)))

    /// Solves A·X = B in place (B row-major n×nrhs) from the lower factor L with LAPACKE_dpotrs.
    let tryPotrs (l: float[]) (n: int) (b: float[]) (nrhs: int) : int option =
        (libraries ()).Potrs
        |> Option.map (fun f ->
            pinned [ l; b ] (fun ps ->
                match ps with
                | [ pl; pb ] -> f.Invoke(RowMajor, lower, n, nrhs, pl, n, pb, nrhs)
                | _ -> -1))

    /// Eigenvalues (ascending, into w) and eigenvectors (columns of a, in place) of a row-major symmetric
    /// matrix with LAPACKE_dsyevd.
    let trySyevd (a: float[]) (n: int) (w: float[]) : int option =
        (libraries ()).Syevd
        |> Option.map (fun f ->
            pinned [ a; w ] (fun ps ->
                match ps with
                | [ pa; pw ] -> f.Invoke(RowMajor, byte 'V', lower, n, pa, n, pw)
                | _ -> -1))

    // ---- Row-major triangles through column-major LAPACK, without LAPACKE's transposed copies ------------------
    // LAPACKE's row-major entry points transpose the whole matrix into a scratch buffer and back. A row-major
    // array read as column-major is the transpose, so for a symmetric matrix the row-major lower triangle is the
    // column-major upper one: calling the column-major routines with uplo = 'U' works on the row-major lower
    // triangle in place and never touches the row-major strictly upper triangle.

    /// In-place Cholesky factor L (row-major lower triangle, A = L·Lᵀ) of the symmetric matrix held in the row-major
    /// lower triangle of a; the strictly upper triangle is neither read nor written. Some info (0 = success, j > 0 =
    /// the leading minor of order j is not positive definite), None when LAPACKE is not loaded.
    let tryPotrfLowerInPlace (a: float[]) (n: int) : int option =
        (libraries ()).Potrf
        |> Option.map (fun f -> pinned [ a ] (fun ps -> f.Invoke(ColMajor, byte 'U', n, List.head ps, n)))

    /// Eigenvalues (ascending, into w) and eigenvectors of the symmetric matrix held in the row-major lower
    /// triangle of a; on success row j of a is the unit eigenvector of w[j] (column-major eigenvectors, read
    /// row-major). dsyevd's workspace (about 2·n² doubles) is allocated by LAPACKE.
    let trySyevdRows (a: float[]) (n: int) (w: float[]) : int option =
        (libraries ()).Syevd
        |> Option.map (fun f ->
            pinned [ a; w ] (fun ps ->
                match ps with
                | [ pa; pw ] -> f.Invoke(ColMajor, byte 'V', byte 'U', n, pa, n, pw)
                | _ -> -1))

    /// Eigenvalues (ascending, into w) and eigenvectors (into z, n×n: row j of z is the unit eigenvector of w[j])
    /// of the symmetric matrix held in the row-major lower triangle (with diagonal) of a, with LAPACKE_dsyevr
    /// (MRRR, O(n) workspace, no copy of a). The row-major lower triangle and diagonal of a are destroyed; its
    /// strictly upper triangle is neither read nor written. None when dsyevr is not loaded.
    let trySyevrRows (a: float[]) (n: int) (w: float[]) (z: float[]) : int option =
        (libraries ()).Syevr
        |> Option.map (fun f ->
            let found = [| 0 |]
            let isuppz = Array.zeroCreate<int> (2 * max 1 n)
            let gcFound = GCHandle.Alloc(found, GCHandleType.Pinned)
            let gcSupp = GCHandle.Alloc(isuppz, GCHandleType.Pinned)
            try
                pinned [ a; w; z ] (fun ps ->
                    match ps with
                    | [ pa; pw; pz ] ->
                        f.Invoke(ColMajor, byte 'V', byte 'A', byte 'U', n, pa, max 1 n, 0.0, 0.0, 0, 0, 0.0,
                                 gcFound.AddrOfPinnedObject(), pw, pz, max 1 n, gcSupp.AddrOfPinnedObject())
                    | _ -> -1)
            finally
                gcFound.Free()
                gcSupp.Free())

    /// B (m×n, row-major) ← B·L⁻ᵀ with L the row-major lower triangle of l (n×n): row r of B becomes L⁻¹·b_r.
    let tryTrsmRightLowerTrans (l: float[]) (n: int) (b: float[]) (m: int) : bool =
        match (libraries ()).Trsm with
        | Some f when m > 0 && n > 0 ->
            pinned [ l; b ] (fun ps ->
                match ps with
                | [ pl; pb ] -> f.Invoke(RowMajor, Right, LowerTri, Trans, NonUnit, m, n, 1.0, pl, n, pb, n)
                | _ -> ())
            true
        | Some _ -> true
        | None -> false

    /// B (m×n, row-major) ← B·L⁻¹ with L the row-major lower triangle of l: row r of B becomes L⁻ᵀ·b_r.
    let tryTrsmRightLower (l: float[]) (n: int) (b: float[]) (m: int) : bool =
        match (libraries ()).Trsm with
        | Some f when m > 0 && n > 0 ->
            pinned [ l; b ] (fun ps ->
                match ps with
                | [ pl; pb ] -> f.Invoke(RowMajor, Right, LowerTri, NoTrans, NonUnit, m, n, 1.0, pl, n, pb, n)
                | _ -> ())
            true
        | Some _ -> true
        | None -> false

    /// C (m×n, row-major, fresh) = B·S with B m×n and S the symmetric n×n matrix held in the row-major upper
    /// triangle (with diagonal) of s; the strictly lower triangle of s is not read.
    let trySymmRightUpper (s: float[]) (n: int) (b: float[]) (m: int) (c: float[]) : bool =
        match (libraries ()).Symm with
        | Some f when m > 0 && n > 0 ->
            pinned [ s; b; c ] (fun ps ->
                match ps with
                | [ ps'; pb; pc ] -> f.Invoke(RowMajor, Right, Upper, m, n, 1.0, ps', n, pb, n, 0.0, pc, n)
                | _ -> ())
            true
        | Some _ -> true
        | None -> false

    /// C (m×n) = alpha · A (m×k) · Bᵀ (B n×k) + beta · C with cblas_dgemm; false when no BLAS is loaded.
    let tryGemmNTInto (alpha: float) (a: float[]) (m: int) (b: float[]) (n: int) (k: int) (beta: float) (c: float[]) : bool =
        match (libraries ()).Gemm with
        | Some f when m > 0 && n > 0 && k > 0 ->
            pinned [ a; b; c ] (fun ps ->
                match ps with
                | [ pa; pb; pc ] -> f.Invoke(RowMajor, NoTrans, Trans, m, n, k, alpha, pa, k, pb, k, beta, pc, n)
                | _ -> ())
            true
        | _ -> false

    /// B (m×n, row-major) ← B·L with L the row-major lower triangle of l (n×n); false when no BLAS is loaded.
    let tryTrmmRightLower (l: float[]) (n: int) (b: float[]) (m: int) : bool =
        match (libraries ()).Trmm with
        | Some f when m > 0 && n > 0 ->
            pinned [ l; b ] (fun ps ->
                match ps with
                | [ pl; pb ] -> f.Invoke(RowMajor, Right, LowerTri, NoTrans, NonUnit, m, n, 1.0, pl, n, pb, n)
                | _ -> ())
            true
        | _ -> false

    /// One triangle (with diagonal; upper: j ≥ i) of C (n×n, row-major) ← alpha · A·Aᵀ + beta · C, A n×k; the other
    /// one is not written. False when no BLAS is loaded.
    let trySyrkTriangle (upper: bool) (alpha: float) (a: float[]) (n: int) (k: int) (beta: float) (c: float[]) : bool =
        match (libraries ()).Syrk with
        | Some f when n > 0 && k > 0 ->
            pinned [ a; c ] (fun ps ->
                match ps with
                | [ pa; pc ] -> f.Invoke(RowMajor, (if upper then Upper else LowerTri), NoTrans, n, k, alpha, pa, k, beta, pc, n)
                | _ -> ())
            true
        | _ -> false

    /// <c>trySyrkTriangle</c> on the lower triangle.
    let trySyrkLower (alpha: float) (a: float[]) (n: int) (k: int) (beta: float) (c: float[]) : bool =
        trySyrkTriangle false alpha a n k beta c

    /// C (m×n) = alpha · op(A)·op(B) + beta · C, row-major, op = transpose when the flag is set (A is m×k or
    /// k×m, B k×n or n×k as stored); false when no BLAS is loaded.
    let tryGemmInto (transA: bool) (transB: bool) (m: int) (n: int) (k: int) (alpha: float) (a: float[]) (b: float[])
                    (beta: float) (c: float[]) : bool =
        match (libraries ()).Gemm with
        | Some f when m > 0 && n > 0 && k > 0 ->
            pinned [ a; b; c ] (fun ps ->
                match ps with
                | [ pa; pb; pc ] ->
                    f.Invoke(RowMajor, (if transA then Trans else NoTrans), (if transB then Trans else NoTrans), m, n, k,
                             alpha, pa, (if transA then m else k), pb, (if transB then k else n), beta, pc, n)
                | _ -> ())
            true
        | _ -> false

    // ---- Pointer forms for the blocked algorithms in Linalg (the caller pins; sub-blocks via row strides) --------

    /// True when the pointer forms below can run (LAPACKE dpotrf and BLAS dtrsm, dtrmm loaded).
    let blockedReady () =
        let l = libraries ()
        l.Potrf.IsSome && l.Trsm.IsSome && l.Trmm.IsSome

    /// In-place Cholesky of the n×n symmetric block whose row-major lower triangle starts at a (row stride lda):
    /// LAPACK's info. Column-major 'U' on the row-major lower triangle, as in <c>tryPotrfLowerInPlace</c>.
    let potrfLowerAt (a: nativeint) (n: int) (lda: int) : int =
        match (libraries ()).Potrf with
        | Some f -> f.Invoke(ColMajor, byte 'U', n, a, lda)
        | None -> invalidOp "LAPACKE_dpotrf is not loaded"

    /// B (m×n at b, row stride ldb) ← B·L⁻ᵀ (trans) or B·L⁻¹, L the n×n row-major lower triangle at l (stride ldl).
    let trsmRightLowerAt (trans: bool) (l: nativeint) (ldl: int) (n: int) (b: nativeint) (ldb: int) (m: int) =
        match (libraries ()).Trsm with
        | Some f when m > 0 && n > 0 ->
            f.Invoke(RowMajor, Right, LowerTri, (if trans then Trans else NoTrans), NonUnit, m, n, 1.0, l, ldl, b, ldb)
        | Some _ -> ()
        | None -> invalidOp "cblas_dtrsm is not loaded"

    /// B (m×n at b, row stride ldb) ← B·L, L the n×n row-major lower triangle at l (row stride ldl).
    let trmmRightLowerAt (l: nativeint) (ldl: int) (n: int) (b: nativeint) (ldb: int) (m: int) =
        match (libraries ()).Trmm with
        | Some f when m > 0 && n > 0 -> f.Invoke(RowMajor, Right, LowerTri, NoTrans, NonUnit, m, n, 1.0, l, ldl, b, ldb)
        | Some _ -> ()
        | None -> invalidOp "cblas_dtrmm is not loaded"

/// <summary>Which optional native libraries (BLAS, LAPACKE) this process uses, for diagnostics such as
/// <c>nt info</c>. Probing happens once, on the first call here or the first native-capable computation.</summary>
[<RequireQualifiedAccess>]
module NativeInfo =

    /// <summary>The BLAS library file in use (with <c>cblas_dgemm</c>), or None when none was found or native
    /// code is disabled.</summary>
    [<CompiledName("Blas")>]
    let blas () : string option = (Native.libraries ()).Blas

    /// <summary>The library file providing LAPACKE (<c>dpotrf</c>, <c>dpotrs</c>, <c>dsyevd</c>), or None.</summary>
    [<CompiledName("Lapacke")>]
    let lapacke () : string option = (Native.libraries ()).Lapacke

    /// <summary>The kernel set OpenBLAS runs (its <c>openblas_get_corename</c>, e.g. "SkylakeX"), or None.</summary>
    [<CompiledName("BlasCore")>]
    let blasCore () : string option = (Native.libraries ()).CoreName

    /// <summary>True when the environment variable <c>NT_NATIVE</c> turns native code off ("0", "false", "off").</summary>
    [<CompiledName("Disabled")>]
    let disabled () = not (Native.enabledByEnvironment ())

    /// <summary>One line describing the native state, e.g. "BLAS libopenblas.so.0 (core Haswell), LAPACKE …".</summary>
    [<CompiledName("Describe")>]
    let describe () = Native.describe ()
