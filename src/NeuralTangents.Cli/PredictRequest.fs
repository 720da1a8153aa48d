namespace NeuralTangents.Cli

open System
open System.IO
open System.Text.Json
open System.Text.Json.Nodes
open NeuralTangents
open NeuralTangents.Cli.CliErrors

/// <summary>A parsed <c>nt predict</c> request, inputs loaded.</summary>
type PredictRequest =
    { Arch: Layer
      XTrain: Tensor
      /// Targets as (N, K); <c>TargetsAreVector</c> remembers a 1-D y_train so answers keep its shape.
      YTrain: Tensor
      TargetsAreVector: bool
      /// None: predictions on the training set.
      XTest: Tensor option
      /// The predictions asked for, in the order nngp, ntk, ntkgp.
      Kinds: PredictGet list
      /// None: infinite time. Some with <c>TimeAxis</c> false: one time given as a number. Times are ≥ 0 and may
      /// be +∞ (written Infinity or "inf").
      Times: float[] option
      TimeAxis: bool
      DiagReg: float
      DiagRegAbsoluteScale: bool
      LearningRate: float
      ComputeCov: bool
      Out: string option
      /// "overwrite": true lets the answer files replace existing files at the "out" prefix (default false: refused).
      Overwrite: bool
      /// Tile size and memory budget of the kernel computations ("batch_size", "memory_gb").
      Tiling: BatchOptions }

/// <summary>Reading <c>nt predict</c> requests (same conventions as <c>nt kernel</c>).</summary>
[<RequireQualifiedAccess>]
module PredictRequest =

    let private knownKeys =
        [ "arch"; "x_train"; "y_train"; "x_test"; "get"; "t"; "diag_reg"; "diag_reg_absolute_scale"; "learning_rate"
          "compute_cov"; "out"; "overwrite" ]
        @ RequestIo.tilingKeys

    let private number (name: string) (dflt: float) (node: JsonNode) =
        match node with
        | null -> dflt
        | :? JsonValue as v when v.GetValueKind() = JsonValueKind.Number ->
            let x = v.GetValue<float>()
            if not (Double.IsFinite x) then fail $"{name}: must be a finite number, got {RequestIo.show node}"
            x
        | :? JsonValue as v when v.GetValueKind() = JsonValueKind.String
                                 && List.contains (v.GetValue<string>()) [ "Infinity"; "-Infinity"; "NaN" ] ->
            fail $"{name}: must be a finite number, got {(v.GetValue<string>())}"
        | n -> fail $"{name}: must be a number, got {RequestIo.show n}"

    let private flag (name: string) (node: JsonNode) =
        match node with
        | null -> false
        | :? JsonValue as v when v.GetValueKind() = JsonValueKind.True -> true
        | :? JsonValue as v when v.GetValueKind() = JsonValueKind.False -> false
        | n -> fail $"{name}: must be true or false, got {RequestIo.show n}"

    /// One training time: a number ≥ 0, or +∞ written as Infinity (Python's json), "inf" or "Infinity".
    let private time (where: string) (node: JsonNode) : float =
        match node with
        | :? JsonValue as v when v.GetValueKind() = JsonValueKind.Number ->
            let x = v.GetValue<float>()
            if x < 0.0 then fail $"t: {where}training times must be ≥ 0, got {RequestIo.show node}"
            x
        | :? JsonValue as v when v.GetValueKind() = JsonValueKind.String ->
            match v.GetValue<string>().Trim().ToLowerInvariant() with
            | "inf" | "+inf" | "infinity" | "+infinity" -> infinity
            | "-inf" | "-infinity" -> fail $"t: {where}training times must be ≥ 0, got -Infinity"
            | _ -> fail $"t: {where}must be a number ≥ 0, Infinity or \"inf\", got {RequestIo.show node}"
        | null ->
            fail $"t: {where}is null; inside a list use Infinity or \"inf\" for infinite time (null means t = infinity only as the whole value of t)"
        | n -> fail $"t: {where}must be a number ≥ 0, Infinity or \"inf\", got {RequestIo.show n}"

    let private times (node: JsonNode) : float[] option * bool =
        match node with
        | null -> None, false
        | :? JsonArray as a ->
            if a.Count = 0 then fail "t: the list of times is empty; give null for infinite time"
            Some(a |> Seq.mapi (fun i n -> time $"entry {string i} " n) |> Seq.toArray), true
        | :? JsonValue -> Some [| time "" node |], false
        | n -> fail $"t: must be null (infinite time), a number or a list of numbers, got {RequestIo.show n}"

    /// The predictions of "get": "nngp", "ntk", "ntkgp" or a list of them; default nngp and ntk.
    let private kinds (node: JsonNode) : PredictGet list =
        let one (n: JsonNode) =
            match n with
            | :? JsonValue as v when v.GetValueKind() = JsonValueKind.String ->
                match v.GetValue<string>() with
                | "nngp" -> PredictGet.Nngp
                | "ntk" -> PredictGet.Ntk
                | "ntkgp" -> PredictGet.NtkGp
                | other -> fail $"get: unknown prediction \"{clip other}\" (known: \"nngp\", \"ntk\", \"ntkgp\")"
            | n -> fail $"get: must be \"nngp\", \"ntk\", \"ntkgp\" or a list of them, got {RequestIo.show n}"
        let asked =
            match node with
            | null -> [ PredictGet.Nngp; PredictGet.Ntk ]
            | :? JsonArray as a ->
                if a.Count = 0 then fail "get: the list is empty; ask for \"nngp\", \"ntk\", \"ntkgp\" or several"
                a |> Seq.map one |> Seq.toList
            | n -> [ one n ]
        [ PredictGet.Nngp; PredictGet.Ntk; PredictGet.NtkGp ] |> List.filter (fun k -> List.contains k asked)

    /// <summary>Parses a request and loads its inputs; relative paths resolve against baseDir.</summary>
    /// <exception cref="T:NeuralTangents.Cli.CliError">naming the key or value at fault.</exception>
    let parse (baseDir: string) (text: string) : PredictRequest =
        let o = RequestIo.parseObject "predict" "{\"arch\": ..., \"x_train\": ..., \"y_train\": ...}" knownKeys text
        let required = RequestIo.required o
        let arch = RequestIo.arch o
        let out = RequestIo.outPrefix baseDir o["out"]
        let xTrain = KernelRequest.input baseDir "x_train" (required "x_train")
        let y = KernelRequest.load baseDir "y_train" (required "y_train")
        let yTrain, isVector =
            match y.Rank with
            | 1 -> Tensor.reshape [| y.Shape[0]; 1 |] y, true
            | 2 -> y, false
            | _ -> fail $"y_train: must be (N,) or (N, K), got shape {RequestIo.showShape y.Shape}"
        if yTrain.Shape[0] <> xTrain.Shape[0] then
            fail ("y_train: has " + (string (yTrain.Shape[0])) + " rows but x_train has " + (string (xTrain.Shape[0])) + " inputs")
        let t, axis = times o["t"]
        let kinds = kinds o["get"]
        match t with
        | Some ts when List.contains PredictGet.NtkGp kinds && ts |> Array.exists Double.IsFinite ->
            fail "get: \"ntkgp\" is the t = infinity posterior (neural_tangents' gp_inference); use t null or Infinity, or drop \"ntkgp\""
        | _ -> ()
        let lr = number "learning_rate" 1.0 o["learning_rate"]
        if lr <= 0.0 then fail $"learning_rate: must be > 0, got {Show.g lr}"
        let reg = number "diag_reg" 0.0 o["diag_reg"]
        if reg < 0.0 then fail $"diag_reg: must be ≥ 0, got {Show.g reg}"
        let xTest = match o["x_test"] with null -> None | n -> Some(KernelRequest.input baseDir "x_test" n)
        match xTest with
        | Some x when x.Shape[1..] <> xTrain.Shape[1..] ->
            let show (s: int[]) = String.Join(", ", s)
            fail ("x_test: has shape (" + (show x.Shape) + ") but x_train has (" + (show xTrain.Shape) + "); they must agree in all but the first axis")
        | _ -> ()
        { Arch = arch
          XTrain = xTrain
          YTrain = yTrain
          TargetsAreVector = isVector
          XTest = xTest
          Kinds = kinds
          Times = t
          TimeAxis = axis
          DiagReg = reg
          DiagRegAbsoluteScale = flag "diag_reg_absolute_scale" o["diag_reg_absolute_scale"]
          LearningRate = lr
          ComputeCov = flag "compute_cov" o["compute_cov"]
          Out = out
          Overwrite = RequestIo.overwrite o
          Tiling = RequestIo.tiling o }
