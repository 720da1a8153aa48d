/// <summary>A progress bar with an estimate of the time left, drawn on one line of stderr while tiles finish, only
/// when stderr is a terminal.</summary>
[<RequireQualifiedAccess>]
module NeuralTangents.Cli.Progress

open System
open System.IO
open NeuralTangents

/// "1:02:03" or "2:03".
let private clock (t: TimeSpan) =
    if t.TotalHours >= 1.0 then ((string (int t.TotalHours)) + ":" + (string t.Minutes).PadLeft(2, '0') + ":" + (string t.Seconds).PadLeft(2, '0'))
    else $"{string t.Minutes}:{(string t.Seconds).PadLeft(2, '0')}"

/// <summary>The line drawn for a report: a 30-cell bar, tiles done of total, the percentage, the time elapsed and
/// the time left.</summary>
let line (p: TileProgress) =
    let frac = if p.TilesTotal = 0 then 1.0 else float p.TilesDone / float p.TilesTotal
    let cells = 30
    let full = int (Math.Floor(frac * float cells))
    let left = match p.Remaining with Some r -> $", ~{clock r} left" | None -> ""
    ("[" + (String('#', full)) + (String('-', cells - full)) + "] " + string p.TilesDone + "/" + string p.TilesTotal + " tiles " + (Show.decimals 0 (100.0 * frac)).PadLeft(3) + "%  " + (clock p.Elapsed) + " elapsed" + left)

/// A reporter drawing on <paramref name="w"/>, at most ten times a second (and always the last tile).
type private Bar(w: TextWriter) =
    let gate = obj ()
    let mutable last = DateTime.MinValue
    let mutable drawn = false
    member _.Clear() =
        lock gate (fun () ->
            if drawn then
                w.Write("\r" + String(' ', 100) + "\r")
                w.Flush()
                drawn <- false)
    interface IProgress<TileProgress> with
        member _.Report p =
            lock gate (fun () ->
                let now = DateTime.UtcNow
                if p.TilesDone = p.TilesTotal || (now - last).TotalMilliseconds >= 100.0 then
                    last <- now
                    w.Write("\r" + (line p).PadRight 100)
                    w.Flush()
                    drawn <- true)

/// <summary>Runs <paramref name="f"/> with a progress reporter drawing on stderr when it is the console's and a
/// terminal, or None (quiet) otherwise; the bar is cleared when f ends.</summary>
let using (stderr: TextWriter) (f: IProgress<TileProgress> option -> 'a) : 'a =
    if obj.ReferenceEquals(stderr, Console.Error) && not Console.IsErrorRedirected then
        let bar = Bar stderr
        try f (Some(bar :> IProgress<TileProgress>)) finally bar.Clear()
    else f None
