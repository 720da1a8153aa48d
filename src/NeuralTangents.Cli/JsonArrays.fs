/// <summary>Tensors as nested JSON lists: reading with shape checks whose errors say where the list is ragged,
/// and writing with doubles that round-trip exactly.</summary>
[<RequireQualifiedAccess>]
module NeuralTangents.Cli.JsonArrays

open System
open System.Globalization
open System.IO
open System.Text.Json
open System.Text.Json.Nodes
open NeuralTangents
open NeuralTangents.Cli.CliErrors

/// Where an element sits, for messages: "row 3" one level down, "entry [1, 2]" deeper.
let private where (path: int list) =
    match path with
    | [] -> "the top level"
    | [ i ] -> $"row {string i}"
    | p -> $"""entry [{(String.Join(", ", p))}]"""

let private show (node: JsonNode) =
    if isNull node then "null" else clip (node.ToJsonString())

/// <summary>Reads a nested list of numbers as a row-major tensor; the shape comes from the first element at each
/// depth and every other list must match it.</summary>
/// <param name="name">What the list is (e.g. "x1"), to start error messages.</param>
/// <param name="node">A JSON number or (nested) list of numbers.</param>
/// <exception cref="T:NeuralTangents.Cli.CliError">for a ragged list, a non-number, a non-finite number or an empty axis.</exception>
let toTensor (name: string) (node: JsonNode) : Tensor =
    // The shape: lengths along the first elements.
    let shape =
        let rec dims (n: JsonNode) acc =
            match n with
            | :? JsonArray as a when a.Count > 0 -> dims a[0] (a.Count :: acc)
            | :? JsonArray -> List.rev (0 :: acc)
            | _ -> List.rev acc
        dims node [] |> List.toArray
    if Array.contains 0 shape then
        fail $"""{name}: has an empty list (shape [{(String.Join(", ", shape))}]); give at least one value along every axis"""
    let data = Array.zeroCreate<float> (shape |> Array.fold (*) 1)
    let mutable k = 0
    let rec fill (depth: int) (path: int list) (n: JsonNode) =
        let first = List.replicate (List.length path) 0
        if depth = shape.Length then
            match n with
            | :? JsonValue as v when v.GetValueKind() = JsonValueKind.Number ->
                let x = v.GetValue<float>()
                if not (Double.IsFinite x) then
                    fail (name + ": " + (where (List.rev path)) + " is " + (show n) + ", which is not a finite float64")
                data[k] <- x
                k <- k + 1
            | :? JsonValue as v when v.GetValueKind() = JsonValueKind.String
                                     && List.contains (v.GetValue<string>()) [ "Infinity"; "-Infinity"; "NaN" ] ->
                fail (name + ": " + (where (List.rev path)) + " is " + (v.GetValue<string>()) + ", which is not a finite float64")
            | :? JsonArray ->
                fail (name + ": " + (where (List.rev path)) + " should be a number like " + (where first) + ", got a list " + (show n))
            | _ -> fail (name + ": " + (where (List.rev path)) + " should be a number, got " + (show n))
        else
            let len = shape[depth]
            let unit = if depth = shape.Length - 1 then "values" else "lists"
            match n with
            | :? JsonArray as a when a.Count = len ->
                for i in 0 .. len - 1 do
                    fill (depth + 1) (i :: path) a[i]
            | :? JsonArray as a ->
                fail (name + ": " + (where (List.rev path)) + " has " + string a.Count + " " + unit + ", " + (where first) + " has " + string len)
            | _ ->
                fail (name + ": " + (where (List.rev path)) + " should be a list of " + string len + " " + unit + " like " + (where first) + ", got " + (show n))
    fill 0 [] node
    Tensor.create shape data

/// <summary>A double as the shortest text that parses back to the same bits (invariant culture, valid JSON):
/// <c>ShortestDouble.format</c>, the characters of <c>ToString("R")</c> wherever that text reads back as the same
/// double.</summary>
/// <exception cref="T:NeuralTangents.Cli.CliError">for NaN or an infinity, which JSON cannot hold.</exception>
let formatNumber (x: float) =
    if not (Double.IsFinite x) then fail $"cannot write the non-finite value {Show.g x} as JSON"
    let buffer = Array.zeroCreate<char> 32
    String(buffer, 0, ShortestDouble.format x (Span buffer))

/// <summary>The text of <see cref="formatNumber"/>, written into a char buffer: no string per number.</summary>
/// <remarks><c>ShortestDouble.format</c> computes the ordinary magnitudes in integer arithmetic (~45 ns a number
/// warm, against ~135 for .NET's shortest "R" text, and compiled optimised from its first call in a cold process,
/// where .NET's formatting first runs at 350–490 ns) and leaves the rest to .NET. CliTests compare it with
/// ToString("R") on random bit patterns and boundary doubles.</remarks>
type private CharSink(w: TextWriter) =
    // 32 kB of chars: a number takes at most 25, so a check of 64 free before each keeps every write in bounds.
    let buffer = Buffers.ArrayPool<char>.Shared.Rent(32768)
    let mutable used = 0
    member _.Flush() =
        if used > 0 then
            w.Write(buffer, 0, used)
            used <- 0
    member this.Room(n: int) = if used + n > buffer.Length then this.Flush()
    member this.Char(c: char) =
        this.Room 1
        buffer[used] <- c
        used <- used + 1
    member this.Spaces(n: int) =
        for _ in 1 .. n do this.Char ' '
    member this.Number(x: float) =
        if not (Double.IsFinite x) then fail $"cannot write the non-finite value {Show.g x} as JSON"
        this.Room 64
        used <- used + ShortestDouble.format x (Span<char>(buffer, used, buffer.Length - used))
    /// The numbers data[offset .. offset + len − 1] separated by ", ". One loop with the formatting inlined: a
    /// method with a loop is compiled optimised at its first call (nt turns quick JIT off for loops), so a cold
    /// process formats at full speed from the start instead of through unoptimised per-number calls.
    member this.Row(data: float[], offset: int, len: int) =
        for i in 0 .. len - 1 do
            let x = data[offset + i]
            if not (Double.IsFinite x) then fail $"cannot write the non-finite value {Show.g x} as JSON"
            if used + 64 > buffer.Length then this.Flush()
            if i > 0 then
                buffer[used] <- ','
                buffer[used + 1] <- ' '
                used <- used + 2
            used <- used + ShortestDouble.format x (Span<char>(buffer, used, buffer.Length - used))
    member this.Release() =
        this.Flush()
        Buffers.ArrayPool<char>.Shared.Return buffer

/// The lists of t at depth, offset, in the layout of <c>writeTensor</c> (pad: the column of this list's bracket).
let rec private writeList (sink: CharSink) (t: Tensor) (depth: int) (offset: int) (pad: int) =
    let data = t.Data
    if depth = t.Rank then sink.Number data[offset]
    else
        let len = t.Shape[depth]
        let stride = t.Shape[depth + 1 ..] |> Array.fold (*) 1
        if depth = t.Rank - 1 then
            sink.Char '['
            sink.Row(data, offset, len)
            sink.Char ']'
        else
            sink.Char '['
            for i in 0 .. len - 1 do
                writeItem sink t depth offset stride pad i
            sink.Char '\n'
            sink.Spaces pad
            sink.Char ']'

/// Item i of an outer list: its separator, new line and indent, then the list itself.
and private writeItem (sink: CharSink) (t: Tensor) (depth: int) (offset: int) (stride: int) (pad: int) (i: int) =
    if i > 0 then sink.Char ','
    sink.Char '\n'
    sink.Spaces(pad + 2)
    writeList sink t (depth + 1) (offset + i * stride) (pad + 2)

/// Numbers per block of rows formatted on one core (a few MB of text), and the fewest numbers worth the cores.
[<Literal>]
let private BlockNumbers = 65536

/// <summary><c>writeTensor</c>, with the rows of the outermost list formatted on every core when
/// <paramref name="onCores"/> and the tensor is large: blocks of rows into their own buffers, a wave of one block
/// per core at a time, then written in order — the same characters as one core writes (the formatting of a number
/// does not depend on what precedes it). A JSON answer of two 1024×1024 kernels spends ~0.5 s here on one core.</summary>
let writeTensorWith (onCores: bool) (w: TextWriter) (indent: int) (t: Tensor) =
    let cores = Environment.ProcessorCount
    if not onCores || cores < 2 || t.Rank < 2 || t.Data.Length < 2 * BlockNumbers then
        let sink = CharSink w
        try writeList sink t 0 0 indent
        finally sink.Release()
    else
        let rows = t.Shape[0]
        let stride = t.Data.Length / max 1 rows
        let perBlock = max 1 (BlockNumbers / max 1 stride)
        let blocks = (rows + perBlock - 1) / perBlock
        // One text buffer per core, sized for a block (≤ 25 chars per number and its separator) and reused by every
        // wave: a single chunk that Clear keeps, so fresh memory is touched once, not once per wave.
        let buffers = Array.init cores (fun _ -> new StringWriter(Text.StringBuilder(perBlock * stride * 27 + (indent + 4) * perBlock)))
        w.Write '['
        let mutable b0 = 0
        while b0 < blocks do
            let wave = min cores (blocks - b0)
            let start = b0
            try
                Threading.Tasks.Parallel.For(0, wave, fun k ->
                    let buffer = buffers[k]
                    buffer.GetStringBuilder().Clear() |> ignore
                    let sink = CharSink buffer
                    try
                        let first = (start + k) * perBlock
                        for i in first .. min rows (first + perBlock) - 1 do
                            writeItem sink t 0 0 stride indent i
                    finally sink.Release())
                |> ignore
            with :? AggregateException as e ->
                // The error of the first failing block, as one core would raise it (a non-finite number).
                Runtime.ExceptionServices.ExceptionDispatchInfo.Capture(e.Flatten().InnerExceptions[0]).Throw()
            for k in 0 .. wave - 1 do
                for chunk in buffers[k].GetStringBuilder().GetChunks() do w.Write chunk.Span
            b0 <- b0 + wave
        w.Write '\n'
        w.Write(String(' ', indent))
        w.Write ']'

/// <summary>Writes a tensor as nested JSON lists: the innermost lists one per line, outer lists indented; large
/// tensors are formatted on every core (<c>writeTensorWith</c>).</summary>
/// <param name="w">The writer.</param>
/// <param name="indent">Column at which the value starts (continuation lines are indented from it).</param>
/// <param name="t">The tensor.</param>
let writeTensor (w: TextWriter) (indent: int) (t: Tensor) = writeTensorWith true w indent t

/// <summary>A string as a JSON string literal (paths keep their non-ASCII characters readable).</summary>
let quote (s: string) =
    "\"" + Text.Encodings.Web.JavaScriptEncoder.UnsafeRelaxedJsonEscaping.Encode s + "\""
