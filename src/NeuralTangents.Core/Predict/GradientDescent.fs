namespace NeuralTangents

open MathNet.Numerics.LinearAlgebra
open MathNet.Numerics.LinearAlgebra.Double
open NeuralTangents.PredictSolve

/// Function-space gradient descent on an arbitrary loss for a linearised network (neural_tangents'
/// <c>gradient_descent</c>; arXiv:1902.06720): integrates df/dt = −η·Θ·∇_f L(f) on the train set and
/// df*/dt = −η·Θ*·∇_f L(f) on the test set; with momentum μ, in units τ = √η·t,
/// df/dτ = q, dq/dτ = −Θ·∇_f L(f) + (μ − 1)/√η · q (and likewise for the test set).
module internal PredictGradientDescent =

    /// Outputs at the non-decreasing times <paramref name="times"/> (steps), with a leading time axis.
    let atTimes (loss: Loss) (kdd: Mat) (y: Tensor) (learningRate: float) (momentum: float option)
                (times: float[]) (fxTrain0: Tensor) (test: (Mat * Tensor) option) : Outputs =
        let n, k = y.Shape[0], y.Shape[1]
        let m = match test with Some(ktd, _) -> ktd.RowCount | None -> 0
        let nk, mk = n * k, m * k
        let outputs = nk + mk
        let velocity (f: float[]) : float[] =
            // −Θ·∇L and −Θ*·∇L, laid out [train; test].
            let grad = loss.Gradient (Tensor.create [| n; k |] (Array.sub f 0 nk)) y
            if grad.Shape <> [| n; k |] || not (Tensor.isFinite grad) then
                raise (NeuralTangentsException(
                    ("loss " + loss.Name + ": the gradient must be a finite (" + string n + ", " + string k + ") tensor, got shape " + Show.ints grad.Shape)))
            let g = ofRowMajor n k grad.Data
            let r = Array.zeroCreate outputs
            Array.blit ((kdd * g).ToRowMajorArray()) 0 r 0 nk
            match test with
            | Some(ktd, _) -> Array.blit ((ktd * g).ToRowMajorArray()) 0 r nk mk
            | None -> ()
            for i in 0 .. outputs - 1 do r[i] <- -r[i]
            r
        let y0 =
            let f0 = Array.append fxTrain0.Data (match test with Some(_, ft) -> ft.Data | None -> [||])
            match momentum with
            | None -> f0
            | Some _ -> Array.append f0 (Array.zeroCreate outputs)
        let rhs, scale =
            match momentum with
            | None -> velocity, learningRate
            | Some mu ->
                let sq = sqrt learningRate
                let damping = (mu - 1.0) / sq
                (fun (s: float[]) ->
                    let v = velocity (Array.sub s 0 outputs)
                    let r = Array.zeroCreate (2 * outputs)
                    for i in 0 .. outputs - 1 do
                        r[i] <- s[outputs + i]
                        r[outputs + i] <- v[i] + damping * s[outputs + i]
                    r), sq
        let states = PredictOde.integrate rhs y0 (times |> Array.map (fun t -> scale * t))
        let tn = times.Length
        let train = Array.zeroCreate (tn * nk)
        let testData = Array.zeroCreate (tn * mk)
        states |> Array.iteri (fun i s ->
            Array.blit s 0 train (i * nk) nk
            Array.blit s nk testData (i * mk) mk)
        { Train = Tensor.create [| tn; n; k |] train
          Test = test |> Option.map (fun _ -> Tensor.create [| tn; m; k |] testData) }
