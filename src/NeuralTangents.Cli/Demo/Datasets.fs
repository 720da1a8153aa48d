/// The small real data sets shipped in the repository's data/ folder (provenance in data/README.md), loaded and
/// split deterministically for the demo.
module NeuralTangents.Cli.Demo.Datasets

open System
open System.IO
open System.IO.Compression
open NeuralTangents
open NeuralTangents.Cli.CliErrors

/// A train/test split: inputs (N, D) and targets (N, K).
type Split =
    { Name: string
      XTrain: Tensor
      YTrain: Tensor
      XTest: Tensor
      YTest: Tensor
      /// Class labels of the test rows (classification only).
      TestLabels: int[] option
      /// Scale of the target (regression: the standard deviation used to standardise it).
      TargetScale: float }

/// Locates the data folder: next to the executable (copied at build time), else data/ above the working directory.
let dataDir () =
    let candidates =
        [ Path.Combine(AppContext.BaseDirectory, "data")
          let rec up (d: DirectoryInfo) = if isNull d then [] else Path.Combine(d.FullName, "data") :: up d.Parent
          yield! up (DirectoryInfo(Directory.GetCurrentDirectory())) ]
    match candidates |> List.tryFind (fun d -> File.Exists(Path.Combine(d, "digits.csv.gz"))) with
    | Some d -> d
    | None -> fail $"cannot find the demo data (digits.csv.gz) next to the executable or in a data/ folder above {(Directory.GetCurrentDirectory())}"

/// The rows of a gzipped text file of numbers, each split at any of <paramref name="sep"/>.
let private readGz (file: string) (sep: char[]) : float[][] =
    let path = Path.Combine(dataDir (), file)
    let lines =
        try
            use fs = File.OpenRead path
            use gz = new GZipStream(fs, CompressionMode.Decompress)
            use sr = new StreamReader(gz)
            sr.ReadToEnd().Split('\n', StringSplitOptions.RemoveEmptyEntries ||| StringSplitOptions.TrimEntries)
        with
        | :? IOException as e -> fail $"cannot read the demo data {path}: {e.Message}"
        | :? InvalidDataException as e -> fail $"cannot read the demo data {path}: {e.Message}"
    lines |> Array.mapi (fun i line ->
        line.Split(sep, StringSplitOptions.RemoveEmptyEntries ||| StringSplitOptions.TrimEntries)
        |> Array.map (fun s ->
            match Double.TryParse(s, Globalization.NumberStyles.Float, Globalization.CultureInfo.InvariantCulture) with
            | true, v -> v
            | _ -> fail ("the demo data " + path + ", line " + (string (i + 1)) + ": \"" + s + "\" is not a number")))

/// A fixed permutation of 0..n−1 (Fisher–Yates with a seeded generator).
let private permutation (seed: int) (n: int) =
    let rng = Random(seed)
    let p = Array.init n id
    for i in n - 1 .. -1 .. 1 do
        let j = rng.Next(i + 1)
        let t = p[i]
        p[i] <- p[j]
        p[j] <- t
    p

let private rows (idx: int[]) (cols: int) (data: float[][]) =
    Tensor.create [| idx.Length; cols |] (idx |> Array.collect (fun i -> data[i]))

/// Digits (UCI optical digits test set, 1797 8x8 images): pixels scaled to [0, 1] as 64-vectors,
/// one-hot targets centred to mean zero (−0.1 / 0.9), a fixed shuffle, first nTrain rows train, next nTest test.
let digits (nTrain: int) (nTest: int) : Split =
    let all = readGz "digits.csv.gz" [| ',' |]
    if all |> Array.exists (fun r -> r.Length <> 65) then fail "digits.csv.gz: every row must hold 64 pixels and a label"
    if nTrain < 1 || nTest < 1 || nTrain + nTest > all.Length then
        invalidArg "train" ("digits has " + string all.Length + " images: train + test must be between 2 and " + string all.Length + ", got " + string nTrain + " + " + string nTest)
    let x = all |> Array.map (fun r -> Array.init 64 (fun j -> r[j] / 16.0))
    let labels = all |> Array.map (fun r -> int r[64])
    let y = labels |> Array.map (fun l -> Array.init 10 (fun c -> if c = l then 0.9 else -0.1))
    let p = permutation 20261122 all.Length
    let tr, te = p[.. nTrain - 1], p[nTrain .. nTrain + nTest - 1]
    { Name = "digits"
      XTrain = rows tr 64 x
      YTrain = rows tr 10 y
      XTest = rows te 64 x
      YTest = rows te 10 y
      TestLabels = Some(te |> Array.map (fun i -> labels[i]))
      TargetScale = 1.0 }

/// Diabetes (Efron et al. 2004, 442 patients, 10 inputs): inputs and target standardised with the training
/// rows' mean and standard deviation; a fixed shuffle, nTrain rows train, the rest test.
let diabetes (nTrain: int) : Split =
    let x = readGz "diabetes_data_raw.csv.gz" [| ' '; '\t' |]
    let t = readGz "diabetes_target.csv.gz" [| ' '; ',' |] |> Array.map (fun r -> if r.Length = 1 then r[0] else fail $"diabetes_target.csv.gz: one number per row, got {string r.Length}")
    if x.Length <> t.Length then fail ("diabetes: " + string x.Length + " input rows but " + string t.Length + " targets")
    if x |> Array.exists (fun r -> r.Length <> x[0].Length) then fail "diabetes_data_raw.csv.gz: rows differ in length"
    if nTrain < 2 || nTrain >= x.Length then
        invalidArg "train" ("diabetes has " + string x.Length + " rows: train must be between 2 and " + (string (x.Length - 1)) + ", got " + string nTrain)
    let p = permutation 442 x.Length
    let tr, te = p[.. nTrain - 1], p[nTrain ..]
    let d = x[0].Length
    let stats (values: int -> float) =
        let v = tr |> Array.map values
        let m = Array.average v
        let s = sqrt (v |> Array.averageBy (fun a -> (a - m) ** 2.0))
        m, (if s > 0.0 then s else 1.0)
    let colStats = Array.init d (fun j -> stats (fun i -> x[i][j]))
    let tm, ts = stats (fun i -> t[i])
    let xs = x |> Array.map (fun r -> Array.init d (fun j -> let m, s = colStats[j] in (r[j] - m) / s))
    let ys = t |> Array.map (fun v -> [| (v - tm) / ts |])
    { Name = "diabetes"
      XTrain = rows tr d xs
      YTrain = rows tr 1 ys
      XTest = rows te d xs
      YTest = rows te 1 ys
      TestLabels = None
      TargetScale = ts }
