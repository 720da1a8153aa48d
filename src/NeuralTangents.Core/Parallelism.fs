namespace NeuralTangents

open System
open System.Threading.Tasks

/// <summary>Parallel loops with at most one thread per core. Without a limit, <c>Parallel.For</c> runs its body on
/// as many pool workers as it can get beside the calling thread, and the pool grows past the core count when long
/// loops keep every worker busy (five to six workers seen on two cores in one `nt predict`): three or more threads
/// then time-slice two cores and evict each other's cache-sized blocks (the fused CNN executor: CPU per entry
/// 66–73 ms with the limit against 76–98 without).</summary>
module internal Parallelism =

    /// Options shared by every parallel loop of the library: MaxDegreeOfParallelism = the core count.
    let options = ParallelOptions(MaxDegreeOfParallelism = Environment.ProcessorCount)

    /// <c>Parallel.For(lo, hi, body)</c> with at most one thread per core.
    let inline forRange (lo: int) (hi: int) (body: int -> unit) =
        Parallel.For(lo, hi, options, Action<int>(body)) |> ignore
