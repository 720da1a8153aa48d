/// <summary>What the request-driven commands (<c>nt kernel</c>, <c>nt predict</c>) share: reading the request from a
/// file or stdin, parsing its top-level object with key checks, loading inputs, the "out" prefix, checking answers
/// are finite, writing .npy answers all or nothing, and the NT_TIMINGS phase profile.</summary>
[<RequireQualifiedAccess>]
module NeuralTangents.Cli.RequestIo

open System
open System.IO
open System.Text
open System.Text.Json
open System.Text.Json.Nodes
open NeuralTangents
open NeuralTangents.Cli.CliErrors

/// JSON text of a node for error messages ("null" for a missing one), cut to about 80 characters.
let show (node: JsonNode) = if isNull node then "null" else clip (node.ToJsonString())

/// A shape as "(2, 0, 3)".
let showShape (shape: int[]) =
    match shape with
    | [| d |] -> $"({string d},)"
    | s -> "(" + String.Join(", ", s) + ")"

/// The request text and the folder its relative paths resolve against: the named file's folder, or the current
/// folder for stdin (no path, or "-"). A UTF-8 byte order mark is dropped from either.
let read (requestPath: string option) (stdin: TextReader) : string * string =
    let text, dir =
        match requestPath with
        | None
        | Some "-" -> stdin.ReadToEnd(), Directory.GetCurrentDirectory()
        | Some path ->
            if Directory.Exists path then fail $"{clip path} is a directory, not a request file"
            if not (File.Exists path) then fail $"no such request file: {clip path}"
            let text =
                try File.ReadAllText path
                with
                | :? IOException as e -> fail $"cannot read {clip path}: {e.Message}"
                | :? UnauthorizedAccessException as e -> fail $"cannot read {clip path}: {e.Message}"
            text, Path.GetDirectoryName(Path.GetFullPath path)
    (if text.StartsWith '\uFEFF' then text.Substring 1 else text), dir

/// Python's json module writes the non-finite floats as the bare words Infinity, -Infinity and NaN, which
/// System.Text.Json refuses. Outside strings and comments they become the strings "Infinity", "-Infinity" and
/// "NaN": the time list "t" accepts "Infinity", every other number refuses them by name.
let internal quoteNamedFloats (text: string) =
    if not (text.Contains "Infinity" || text.Contains "NaN") then text
    else
        let b = StringBuilder(text.Length + 16)
        let mutable i = 0
        let at (word: string) = String.CompareOrdinal(text, i, word, 0, word.Length) = 0
        while i < text.Length do
            let c = text[i]
            if c = '"' then
                // Copy the string literal through, escapes included.
                let start = i
                i <- i + 1
                while i < text.Length && text[i] <> '"' do
                    i <- i + (if text[i] = '\\' then 2 else 1)
                i <- min text.Length (i + 1)
                b.Append(text, start, i - start) |> ignore
            elif at "//" then
                let close = text.IndexOf('\n', i)
                let stop = if close < 0 then text.Length else close
                b.Append(text, i, stop - i) |> ignore
                i <- stop
            elif at "/*" then
                let close = text.IndexOf("*/", i + 2, StringComparison.Ordinal)
                let stop = if close < 0 then text.Length else close + 2
                b.Append(text, i, stop - i) |> ignore
                i <- stop
            else
                match [ "-Infinity"; "Infinity"; "NaN" ] |> List.tryFind at with
                | Some word ->
                    b.Append('"').Append(word).Append('"') |> ignore
                    i <- i + word.Length
                | None ->
                    b.Append c |> ignore
                    i <- i + 1
        b.ToString()

/// Fails on the first JSON string holding an unpaired UTF-16 surrogate (System.Text.Json parses "\ud800" but
/// cannot read it back as a string).
let rec private checkStrings (node: JsonNode) =
    match node with
    | :? JsonObject as o -> for KeyValue(_, v) in o do checkStrings v
    | :? JsonArray as a -> for v in a do checkStrings v
    | :? JsonValue as v when v.GetValueKind() = JsonValueKind.String ->
        try v.GetValue<string>() |> ignore
        with :? InvalidOperationException ->
            fail $"{(clip (v.GetPath()))}: a string holds an unpaired UTF-16 surrogate (a \\ud800-\\udfff escape without its pair); JSON text must be valid Unicode"
    | _ -> ()

/// The request's top-level object (comments allowed), every key checked against <paramref name="knownKeys"/>.
let parseObject (command: string) (shapeHint: string) (knownKeys: string list) (text: string) : JsonObject =
    if String.IsNullOrWhiteSpace text then
        fail $"the request is empty: name a REQUEST.json file or pipe a request on stdin (see 'nt {command} --help')"
    let root =
        try JsonNode.Parse(quoteNamedFloats text, documentOptions = JsonDocumentOptions(CommentHandling = JsonCommentHandling.Skip, AllowDuplicateProperties = false, MaxDepth = Json.maxDepth))
        with :? JsonException as e ->
            if e.Message.Contains "maximum configured depth" then
                fail $"the request nests arrays and objects more than {string Json.maxDepth} levels deep; write nested serial layers as one serial (serial is associative), and inputs deeper than that as .npy files"
            fail $"the request is not valid JSON: {clip e.Message}"
    checkStrings root
    let o =
        match root with
        | :? JsonObject as o -> o
        | n -> fail $"the request must be a JSON object {shapeHint}, got {show n}"
    for KeyValue(k, _) in o do
        if not (List.contains k knownKeys) then
            fail ("request: unknown key \"" + (clip k) + "\" (known: " + (String.Join(", ", knownKeys)) + ")")
    o

/// The value of a required key.
let required (o: JsonObject) (key: string) =
    match o[key] with
    | null -> fail $"request: missing required key \"{key}\""
    | n -> n

/// The network under "arch".
let arch (o: JsonObject) =
    try Json.decodeLayer (required o "arch")
    with Json.JsonArchitectureException msg -> fail $"arch: {msg}"

/// An array: a nested list, or the path of a .npy file (relative to baseDir). Every axis must be non-empty.
let load (baseDir: string) (name: string) (node: JsonNode) : Tensor =
    let t =
        match node with
        | :? JsonValue as v when v.GetValueKind() = JsonValueKind.String ->
            let rel = v.GetValue<string>()
            if String.IsNullOrWhiteSpace rel then fail $"{name}: the .npy path is empty"
            let path = Path.Combine(baseDir, rel)
            if Directory.Exists path then fail $"{name}: {clip path} is a directory, not a .npy file"
            if not (File.Exists path) then fail $"{name}: no such .npy file: {clip path}"
            // Pipes and devices report length 0; opening a pipe would wait for a writer forever.
            if FileInfo(path).Length = 0L then
                fail $"{name}: {clip path} is empty or not a regular file (a pipe or a device); give a file saved with numpy.save"
            try Npy.read path
            with
            | :? InvalidDataException as e -> fail $"{name}: {e.Message}"
            | :? IOException as e -> fail (name + ": cannot read " + (clip path) + ": " + e.Message)
            | :? UnauthorizedAccessException as e -> fail (name + ": cannot read " + (clip path) + ": " + e.Message)
        | :? JsonArray -> JsonArrays.toTensor name node
        | _ -> fail $"{name}: must be a nested list of numbers or the path of a .npy file, got {show node}"
    if Array.contains 0 t.Shape then
        fail $"{name}: has an empty axis (shape {showShape t.Shape}); give at least one value along every axis"
    t

/// The optional "out" prefix, resolved against baseDir.
let outPrefix (baseDir: string) (node: JsonNode) : string option =
    match node with
    | null -> None
    | :? JsonValue as v when v.GetValueKind() = JsonValueKind.String && v.GetValue<string>().Trim() <> "" ->
        let prefix = v.GetValue<string>()
        if prefix.EndsWith '/' || prefix.EndsWith Path.DirectorySeparatorChar then
            fail $"out: {show node} names a folder; give a file prefix inside it, such as \"results/mlp\""
        Some(Path.Combine(baseDir, prefix))
    | n -> fail $"out: must be a non-empty file prefix such as \"results/mlp\", got {show n}"

/// The "overwrite" flag of a request with "out": true lets a successful run replace answer files that already exist
/// at the prefix; false (the default, also for null) refuses them before any work.
let overwrite (o: JsonObject) : bool =
    match o["overwrite"] with
    | null -> false
    | :? JsonValue as v when v.GetValueKind() = JsonValueKind.True -> true
    | :? JsonValue as v when v.GetValueKind() = JsonValueKind.False -> false
    | n -> fail $"overwrite: must be true or false, got {show n}"

/// Refuses, before any work, an answer file that already exists (unless overwrite): a successful run would
/// replace it, and it may be an unrelated file or the finished answer of another request.
let refuseExisting (overwrite: bool) (paths: string list) =
    if not overwrite then
        match paths |> List.tryFind File.Exists with
        | Some path ->
            fail $"out: {clip path} already exists and would be replaced; nothing was written. Delete or move it, choose another \"out\", or add \"overwrite\": true to the request to replace it"
        | None -> ()

/// Creates the folder of the "out" prefix when missing and checks a file can be created there, before any work.
let prepareOut (prefix: string option) =
    match prefix with
    | None -> ()
    | Some prefix ->
        let dir = Path.GetDirectoryName(Path.GetFullPath prefix)
        let probe = Path.Combine(dir, $""".nt-probe-{(Guid.NewGuid().ToString("N"))}""")
        try
            Directory.CreateDirectory dir |> ignore
            File.WriteAllBytes(probe, [||])
            File.Delete probe
        with
        | :? IOException
        | :? UnauthorizedAccessException as e -> fail $"out: cannot write in the folder {clip dir}: {e.Message}"

/// Fails unless every value of t is finite, naming the array, the first bad value and its index.
let checkFinite (name: string) (advice: string) (t: Tensor) =
    // One vectorised pass decides; the element-by-element search runs only to name a bad value.
    match (if Tensor.isFinite t then None else t.Data |> Array.tryFindIndex (Double.IsFinite >> not)) with
    | None -> ()
    | Some k ->
        let v = t.Data[k]
        let what = if Double.IsNaN v then "nan" elif v > 0.0 then "inf" else "-inf"
        // Row-major index → one index per axis.
        let index =
            let mutable rest = k
            let idx = Array.zeroCreate t.Rank
            for a in t.Rank - 1 .. -1 .. 0 do
                idx[a] <- rest % t.Shape[a]
                rest <- rest / t.Shape[a]
            match idx with
            | [| i |] -> string i
            | _ -> "[" + String.Join(", ", idx) + "]"
        fail (name + " has a non-finite value (" + what + ") at index " + index + ": " + advice)

/// <summary>Writes the answer arrays as .npy files, all or nothing: each goes to a temporary file beside its final
/// name (<c>NAME.tmp-XXXX</c>), and only when all are written are they renamed into place. On failure the
/// temporary files are deleted and the final names are left as they were. Without overwrite an existing final
/// file is never replaced, even one that appeared during the run.</summary>
let writeAll (overwrite: bool) (files: (string * Tensor) list) =
    let tag = Guid.NewGuid().ToString("N").Substring(0, 8)
    let temps = files |> List.map (fun (path, t) -> path, $"{path}.tmp-{tag}", t)
    let cleanUp () =
        for _, tmp, _ in temps do
            try File.Delete tmp with _ -> ()
    for path, _ in files do
        if Directory.Exists path then fail $"cannot write {clip path}: it is a directory (no answer file was changed)"
    try
        try
            for path, tmp, t in temps do
                Directory.CreateDirectory(Path.GetDirectoryName(Path.GetFullPath path)) |> ignore
                Npy.write tmp t
        with
        | :? IOException
        | :? UnauthorizedAccessException as e -> fail $"cannot write the answer files (none was changed): {e.Message}"
        // Checked again before the renames (a file may have appeared during the work), and the renames themselves
        // refuse to replace one that appears in between.
        refuseExisting overwrite (List.map fst files)
        let mutable moved = 0
        try
            for path, tmp, _ in temps do
                File.Move(tmp, path, overwrite)
                moved <- moved + 1
        with
        | :? IOException
        | :? UnauthorizedAccessException as e ->
            fail ("cannot move the answer files into place (" + string moved + " of " + string temps.Length + " were already in place): " + e.Message)
    finally
        cleanUp ()

/// The keys of a request that size the tiles of its kernels.
let tilingKeys = [ "memory_gb"; "batch_size" ]

/// <summary>The tiling of a request's kernel computations: "memory_gb" (the memory budget in gigabytes, default:
/// what the machine has free less a margin) and "batch_size" (inputs per tile, neural_tangents' nt.batch
/// batch_size; default: the largest that fits the budget).</summary>
let tiling (o: JsonObject) : BatchOptions =
    let memory =
        match o["memory_gb"] with
        | null -> None
        | :? JsonValue as v when v.GetValueKind() = JsonValueKind.Number ->
            let gb = v.GetValue<float>()
            if not (Double.IsFinite gb) || gb <= 0.0 || gb > 1e9 then
                fail $"""memory_gb: must be a positive number of gigabytes (10^9 bytes) up to 10^9, e.g. 4 or 0.5, got {(show o["memory_gb"])}"""
            Some(int64 (gb * 1e9))
        | n -> fail $"memory_gb: must be a positive number of gigabytes (10^9 bytes) up to 10^9, e.g. 4 or 0.5, got {show n}"
    let batch =
        match o["batch_size"] with
        | null -> None
        | :? JsonValue as v when v.GetValueKind() = JsonValueKind.Number ->
            match v.TryGetValue<int>() with
            | true, b when b >= 1 -> Some b
            | _ -> fail $"batch_size: must be a whole number of inputs per tile from 1 to 2147483647, e.g. 256, got {show v}"
        | n -> fail $"batch_size: must be a whole number of inputs per tile from 1 to 2147483647, e.g. 256, got {show n}"
    { BatchOptions.Default with MemoryBytes = memory; BatchSize = batch }

/// NT_TIMINGS=1 (read once): <c>phase command name f</c> runs f and writes its wall and process CPU time, and the
/// process's totals so far, to stderr as one "nt timings: COMMAND: NAME …" line; otherwise it just runs f.
let private timings = Environment.GetEnvironmentVariable "NT_TIMINGS" = "1"

let phase (command: string) (name: string) (f: unit -> 'T) : 'T =
    if not timings then f ()
    else
        let cpu () = Diagnostics.Process.GetCurrentProcess().TotalProcessorTime.TotalMilliseconds
        let c0 = cpu ()
        let sw = Diagnostics.Stopwatch.StartNew()
        let r = f ()
        let wall = sw.Elapsed.TotalMilliseconds
        let sinceStart = (DateTime.Now - Diagnostics.Process.GetCurrentProcess().StartTime).TotalMilliseconds
        Console.Error.WriteLine(String.Format("nt timings: {0,-44} wall {1,8:F2} ms  cpu {2,8:F2} ms  (process: {3:F0} ms wall, {4:F0} ms cpu)",
                                              command + ": " + name, wall, cpu () - c0, sinceStart, cpu ()))
        r
