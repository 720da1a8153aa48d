namespace NeuralTangents

open System
open System.Runtime.InteropServices

/// <summary>Fresh large arrays with their memory mapped up front. A new array of the .NET large-object heap lies
/// on pages the process has never touched, and the first access to each 4 KB page traps into the kernel: in a
/// virtual machine such as this project's test machines ~11 µs per page for a write and ~5 µs for a first read of
/// a page the kernel filled (8 MB: ~23 ms, against ~0.3 ms to write it once mapped) — most of a small request's
/// cold cost. <c>MADV_POPULATE_WRITE</c> (Linux ≥ 5.14) maps the array's pages in one call; Linux's transparent
/// huge pages (<c>madvise(MADV_HUGEPAGE)</c> on the array's 2 MB-aligned interior, 2 MB per trap) are opt-in
/// (<c>NT_PREFAULT=both</c>, see <c>setting</c>); measured with both on a fresh 6.4 MB array filled from a file and
/// then read: 30 ms → 6 ms. Neither changes what the array holds: pages already mapped stay as they are and fresh
/// ones read as zero. Elsewhere, or when the kernel refuses, pages fault in on first access as before.
/// <c>NT_PREFAULT=0</c> turns both off.</summary>
module internal Pages =

    [<DllImport("libc", EntryPoint = "madvise")>]
    extern int private madvise(nativeint addr, unativeint length, int advice)

    /// MADV_HUGEPAGE: back the range with 2 MB pages where possible (transparent huge pages in "madvise" mode).
    [<Literal>]
    let private HugePage = 14

    /// MADV_POPULATE_WRITE (Linux ≥ 5.14): fault in the range's pages writable, as a write to each would.
    [<Literal>]
    let private PopulateWrite = 23

    /// Below this many bytes an array lands on the small-object heap (under 85 000 bytes), mostly in memory the
    /// process has already touched; a large one may be fresh, and one call costs less than a few page traps.
    [<Literal>]
    let private MinBytes = 131072L

    [<Literal>]
    let private PageSize = 4096L

    [<Literal>]
    let private HugePageSize = 2097152L

    /// Ranges of at least this many bytes are mapped in pieces of PieceBytes on every core.
    [<Literal>]
    let private ParallelBytes = 33554432L

    [<Literal>]
    let private PieceBytes = 16777216L

    /// NT_PREFAULT: "0" (or false, off) neither advice, "huge" huge pages only, "both" both; by default (anything
    /// else) MADV_POPULATE_WRITE alone. Huge pages are off by default since on Emerald Rapids virtual machines each
    /// fresh 2 MB page came from memory the host had to back anew: `nt predict` at N = 4000 spent 2.1–2.8 s of
    /// system time zeroing 400 MB of huge pages against 0.8 s for 4 kB pages (wall 3.70 s against 2.83, medians
    /// of 6 interleaved runs), while populating alone maps the pages in one call as well.
    let private setting = Environment.GetEnvironmentVariable "NT_PREFAULT"

    let private wanted (advice: string) =
        OperatingSystem.IsLinux()
        && (match setting with
            | "0" | "false" | "off" -> false
            | "huge" -> advice = "huge"
            | "both" -> true
            | _ -> advice = "populate")

    /// False once the kernel refused the advice (an older kernel, another system), or as NT_PREFAULT says.
    let mutable private huge = wanted "huge"
    let mutable private populate = wanted "populate"

    /// The whole pages of size <paramref name="size"/> inside [p, p + bytes), or None.
    let private inside (p: int64) (bytes: int64) (size: int64) =
        let first = (p + size - 1L) &&& ~~~(size - 1L)
        let last = (p + bytes) &&& ~~~(size - 1L)
        if last > first then Some(nativeint first, unativeint (last - first)) else None

    /// Maps the pages inside <paramref name="a"/>'s elements (2 MB pages where the kernel has them); contents
    /// unchanged.
    let prefault (a: float[]) =
        let bytes = int64 a.Length * 8L
        if (huge || populate) && bytes >= MinBytes then
            let h = GCHandle.Alloc(a, GCHandleType.Pinned)
            try
                let p = int64 (h.AddrOfPinnedObject())
                if huge then
                    match inside p bytes HugePageSize with
                    | Some(start, length) -> if madvise(start, length, HugePage) <> 0 then huge <- false
                    | None -> ()
                if populate then
                    match inside p bytes PageSize with
                    | Some(start, length) when int64 length >= ParallelBytes && Environment.ProcessorCount > 1 ->
                        // Mapping 128 MB takes ~130 ms of one core here (the kernel zeroes every page it maps):
                        // pieces of 16 MB on every core (a huge page across two pieces is mapped by the first to
                        // reach it; the other then finds it mapped). A refusal is a speed matter only: off for good.
                        let first, last = int64 start, int64 start + int64 length
                        let pieces = int ((last - first + PieceBytes - 1L) / PieceBytes)
                        let refused = ref false
                        Parallelism.forRange 0 pieces (fun i ->
                            let a = first + int64 i * PieceBytes
                            let b = min last (a + PieceBytes)
                            if madvise(nativeint a, unativeint (b - a), PopulateWrite) <> 0 then refused.Value <- true)
                        if refused.Value then populate <- false
                    | Some(start, length) -> if madvise(start, length, PopulateWrite) <> 0 then populate <- false
                    | None -> ()
            finally
                h.Free()

    /// A fresh array of n +0.0 entries, its pages mapped (<c>prefault</c>) when it is 128 kB or more.
    let zeroed (n: int) : float[] =
        let a = Array.zeroCreate n
        prefault a
        a

    /// A fresh array of n entries whose contents are unspecified (every entry is written before it is read), its
    /// pages mapped (<c>prefault</c>).
    let uninitialized (n: int) : float[] =
        let a = GC.AllocateUninitializedArray<float> n
        prefault a
        a

    /// A fresh copy of <paramref name="a"/>, its pages mapped (<c>prefault</c>) before the copy writes them.
    let copy (a: float[]) : float[] =
        let c = uninitialized a.Length
        Array.blit a 0 c 0 a.Length
        c

    /// Whether the kernel took the advice so far (both off once refused, or with NT_PREFAULT=0).
    let active () = huge || populate
