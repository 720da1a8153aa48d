namespace NeuralTangents

open System
open System.Threading.Tasks

/// <summary>Parallel loops with at most one thread per core. Without a limit, <c>Parallel.For</c> keeps queueing
/// replicas of its body; while a long loop keeps every worker busy the thread pool reads the queued replica as
/// starvation and adds threads (six workers seen on two cores in one `nt predict`), each of which joins the loop,
/// so that three or more threads time-slice two cores and evict each other's cache-sized blocks (~45 000
/// involuntary context switches in a 4 s prediction).</summary>
module internal Parallelism =

    /// Options shared by every parallel loop of the library: MaxDegreeOfParallelism = the core count.
    let options = ParallelOptions(MaxDegreeOfParallelism = Environment.ProcessorCount)

    /// <c>Parallel.For(lo, hi, body)</c> with at most one thread per core.
    let inline forRange (lo: int) (hi: int) (body: int -> unit) =
        Parallel.For(lo, hi, options, Action<int>(body)) |> ignore
