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
      Get: Get
      /// None: infinite time. Some with <c>TimeAxis</c> false: one time given as a number.
      Times: float[] option
      TimeAxis: bool
      DiagReg: float
      DiagRegAbsoluteScale: bool
      LearningRate: float
      ComputeCov: bool
      Out: string option }

/// <summary>Reading <c>nt predict</c> requests (same conventions as <c>nt kernel</c>).</summary>
[<RequireQualifiedAccess>]
module PredictRequest =

    let private knownKeys =
        [ "arch"; "x_train"; "y_train"; "x_test"; "get"; "t"; "diag_reg"; "diag_reg_absolute_scale"; "learning_rate"
          "compute_cov"; "out" ]

    let private number (name: string) (dflt: float) (node: JsonNode) =
        match node with
        | null -> dflt
        | :? JsonValue as v when v.GetValueKind() = JsonValueKind.Number ->
            let x = v.GetValue<float>()
            if not (Double.IsFinite x) then fail "%s: must be a finite number, got %s" name (RequestIo.show node)
            x
        | n -> fail "%s: must be a number, got %s" name (RequestIo.show n)

    let private flag (name: string) (node: JsonNode) =
        match node with
        | null -> false
        | :? JsonValue as v when v.GetValueKind() = JsonValueKind.True -> true
        | :? JsonValue as v when v.GetValueKind() = JsonValueKind.False -> false
        | n -> fail "%s: must be true or false, got %s" name (RequestIo.show n)

    let private times (node: JsonNode) : float[] option * bool =
        let check (x: float) =
            if x < 0.0 then fail "t: training times must be ≥ 0, got %g" x
            x
        match node with
        | null -> None, false
        | :? JsonValue as v when v.GetValueKind() = JsonValueKind.Number -> Some [| check (number "t" 0.0 node) |], false
        | :? JsonArray as a ->
            if a.Count = 0 then fail "t: the list of times is empty; give null for infinite time"
            Some(a |> Seq.map (fun n -> check (number "t" 0.0 n)) |> Seq.toArray), true
        | n -> fail "t: must be null (infinite time), a number or a list of numbers, got %s" (RequestIo.show n)

    /// <summary>Parses a request and loads its inputs; relative paths resolve against baseDir.</summary>
    /// <exception cref="T:NeuralTangents.Cli.CliError">naming the key or value at fault.</exception>
    let parse (baseDir: string) (text: string) : PredictRequest =
        let o = RequestIo.parseObject "predict" "{\"arch\": ..., \"x_train\": ..., \"y_train\": ...}" knownKeys text
        let required = RequestIo.required o
        let arch = RequestIo.arch o
        let xTrain = KernelRequest.input baseDir "x_train" (required "x_train")
        let y = KernelRequest.load baseDir "y_train" (required "y_train")
        let yTrain, isVector =
            match y.Rank with
            | 1 -> Tensor.reshape [| y.Shape[0]; 1 |] y, true
            | 2 -> y, false
            | _ -> fail "y_train: must be (N,) or (N, K), got shape (%s)" (String.Join(", ", y.Shape))
        if yTrain.Shape[0] <> xTrain.Shape[0] then
            fail "y_train: has %d rows but x_train has %d inputs" yTrain.Shape[0] xTrain.Shape[0]
        let t, axis = times o["t"]
        let lr = number "learning_rate" 1.0 o["learning_rate"]
        if lr <= 0.0 then fail "learning_rate: must be > 0, got %g" lr
        let reg = number "diag_reg" 0.0 o["diag_reg"]
        if reg < 0.0 then fail "diag_reg: must be ≥ 0, got %g" reg
        let xTest = match o["x_test"] with null -> None | n -> Some(KernelRequest.input baseDir "x_test" n)
        match xTest with
        | Some x when x.Shape[1..] <> xTrain.Shape[1..] ->
            let show (s: int[]) = String.Join(", ", s)
            fail "x_test: has shape (%s) but x_train has (%s); they must agree in all but the first axis" (show x.Shape) (show xTrain.Shape)
        | _ -> ()
        { Arch = arch
          XTrain = xTrain
          YTrain = yTrain
          TargetsAreVector = isVector
          XTest = xTest
          Get = KernelRequest.get o["get"]
          Times = t
          TimeAxis = axis
          DiagReg = reg
          DiagRegAbsoluteScale = flag "diag_reg_absolute_scale" o["diag_reg_absolute_scale"]
          LearningRate = lr
          ComputeCov = flag "compute_cov" o["compute_cov"]
          Out = RequestIo.outPrefix baseDir o["out"] }
