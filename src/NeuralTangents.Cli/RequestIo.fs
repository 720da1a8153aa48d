/// <summary>What the request-driven commands (<c>nt kernel</c>, <c>nt predict</c>) share: reading the request from a
/// file or stdin, parsing its top-level object with key checks, the "out" prefix, and writing .npy answers.</summary>
[<RequireQualifiedAccess>]
module NeuralTangents.Cli.RequestIo

open System
open System.IO
open System.Text.Json
open System.Text.Json.Nodes
open NeuralTangents
open NeuralTangents.Cli.CliErrors

/// JSON text of a node for error messages ("null" for a missing one).
let show (node: JsonNode) = if isNull node then "null" else node.ToJsonString()

/// The request text and the folder its relative paths resolve against: the named file's folder, or the current
/// folder for stdin (no path, or "-").
let read (requestPath: string option) (stdin: TextReader) : string * string =
    match requestPath with
    | None
    | Some "-" -> stdin.ReadToEnd(), Directory.GetCurrentDirectory()
    | Some path ->
        if not (File.Exists path) then
            if Directory.Exists path then fail "%s is a folder, not a request file" path
            fail "no such request file: %s" path
        let text =
            try File.ReadAllText path
            with
            | :? IOException as e -> fail "cannot read %s: %s" path e.Message
            | :? UnauthorizedAccessException as e -> fail "cannot read %s: %s" path e.Message
        text, Path.GetDirectoryName(Path.GetFullPath path)

/// The request's top-level object (comments allowed), every key checked against <paramref name="knownKeys"/>.
let parseObject (command: string) (shapeHint: string) (knownKeys: string list) (text: string) : JsonObject =
    if String.IsNullOrWhiteSpace text then
        fail "the request is empty: name a REQUEST.json file or pipe a request on stdin (see 'nt %s --help')" command
    let root =
        try JsonNode.Parse(text, documentOptions = JsonDocumentOptions(CommentHandling = JsonCommentHandling.Skip))
        with :? JsonException as e -> fail "the request is not valid JSON: %s" e.Message
    let o =
        match root with
        | :? JsonObject as o -> o
        | n -> fail "the request must be a JSON object %s, got %s" shapeHint (show n)
    for KeyValue(k, _) in o do
        if not (List.contains k knownKeys) then
            fail "request: unknown key \"%s\" (known: %s)" k (String.Join(", ", knownKeys))
    o

/// The value of a required key.
let required (o: JsonObject) (key: string) =
    match o[key] with
    | null -> fail "request: missing required key \"%s\"" key
    | n -> n

/// The network under "arch".
let arch (o: JsonObject) =
    try Json.decodeLayer (required o "arch")
    with Json.JsonArchitectureException msg -> fail "arch: %s" msg

/// The optional "out" prefix, resolved against baseDir.
let outPrefix (baseDir: string) (node: JsonNode) : string option =
    match node with
    | null -> None
    | :? JsonValue as v when v.GetValueKind() = JsonValueKind.String && v.GetValue<string>().Trim() <> "" ->
        Some(Path.Combine(baseDir, v.GetValue<string>()))
    | n -> fail "out: must be a non-empty file prefix such as \"results/mlp\", got %s" (show n)

/// Writes one answer array as .npy, with IO errors as one-line CLI errors.
let writeNpy (path: string) (t: Tensor) =
    try Npy.write path t
    with
    | :? IOException as e -> fail "cannot write %s: %s" path e.Message
    | :? UnauthorizedAccessException as e -> fail "cannot write %s: %s" path e.Message
