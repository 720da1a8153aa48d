namespace NeuralTangents

open System

/// <summary>A differentiable loss L(f(x_train), y_train) given as its value and its gradient with respect to the
/// outputs f (both (N, K)); the argument of <c>Predict.gradientDescent</c>.</summary>
[<NoEquality; NoComparison>]
type Loss =
    { /// Name, for messages.
      Name: string
      /// L(fx, y).
      Value: Tensor -> Tensor -> float
      /// ∇_f L(fx, y), same shape as fx.
      Gradient: Tensor -> Tensor -> Tensor }

/// <summary>Losses for <c>Predict.gradientDescent</c>.</summary>
[<RequireQualifiedAccess>]
module Loss =

    /// <summary>A loss from its value and gradient functions of (fx, y).</summary>
    [<CompiledName("Create")>]
    let create (name: string) (value: Tensor -> Tensor -> float) (gradient: Tensor -> Tensor -> Tensor) =
        { Name = name; Value = value; Gradient = gradient }

    /// <summary>Mean squared error ½·mean((f − y)²) = ‖f − y‖²/(2NK), gradient (f − y)/(NK): the loss whose
    /// gradient flow <c>Predict.gradientDescentMse</c> solves in closed form.</summary>
    [<CompiledName("MeanSquaredError")>]
    let mse =
        create "mse"
            (fun fx y ->
                let mutable s = 0.0
                for i in 0 .. fx.Length - 1 do
                    let d = fx.Data[i] - y.Data[i]
                    s <- s + d * d
                0.5 * s / float fx.Length)
            (fun fx y ->
                let n = float fx.Length
                Tensor.create fx.Shape (Array.init fx.Length (fun i -> (fx.Data[i] - y.Data[i]) / n)))

    /// Row-wise log-softmax of a (N, K) buffer, shifted by the row maximum for stability.
    let private logSoftmaxRow (f: float[]) (off: int) (k: int) (out: float[]) =
        let mutable m = Double.NegativeInfinity
        for j in 0 .. k - 1 do m <- max m f[off + j]
        let mutable s = 0.0
        for j in 0 .. k - 1 do s <- s + exp (f[off + j] - m)
        let lse = m + log s
        for j in 0 .. k - 1 do out[j] <- f[off + j] - lse

    /// <summary>Softmax cross-entropy −mean(y ⊙ log_softmax(f)) over all N·K entries (neural_tangents' example loss
    /// for <c>gradient_descent</c>); gradient (softmax(f)·Σ_k y − y)/(NK) row by row.</summary>
    [<CompiledName("SoftmaxCrossEntropy")>]
    let softmaxCrossEntropy =
        let rows (fx: Tensor) =
            if fx.Rank <> 2 then invalidArg "fx" $"softmax cross-entropy needs (N, K) outputs, got shape {Show.ints fx.Shape}"
            fx.Shape[0], fx.Shape[1]
        create "softmax cross-entropy"
            (fun fx y ->
                let n, k = rows fx
                let ls = Array.zeroCreate k
                let mutable s = 0.0
                for i in 0 .. n - 1 do
                    logSoftmaxRow fx.Data (i * k) k ls
                    for j in 0 .. k - 1 do s <- s + y.Data[i * k + j] * ls[j]
                -s / float (n * k))
            (fun fx y ->
                let n, k = rows fx
                let ls = Array.zeroCreate k
                let g = Array.zeroCreate (n * k)
                let c = 1.0 / float (n * k)
                for i in 0 .. n - 1 do
                    logSoftmaxRow fx.Data (i * k) k ls
                    let mutable ysum = 0.0
                    for j in 0 .. k - 1 do ysum <- ysum + y.Data[i * k + j]
                    for j in 0 .. k - 1 do
                        g[i * k + j] <- c * (exp ls[j] * ysum - y.Data[i * k + j])
                Tensor.create fx.Shape g)
