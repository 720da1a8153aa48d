namespace NeuralTangents.Layers

open NeuralTangents

/// Axis helpers shared by the finite-network rules.
module internal Axes =

    /// Normalises a possibly negative axis for a tensor of the given rank.
    let norm (rank: int) (axis: int) =
        let a = if axis < 0 then axis + rank else axis
        if a < 0 || a >= rank then
            raise (NeuralTangentsException $"axis {string axis} is out of range for a tensor of rank {string rank}")
        a

    /// Moves axis <c>a</c> last, runs <c>f</c> on the (rows × channels) view, moves the result's last axis back.
    let withChannelsLast (axis: int) (f: Tensor -> Tensor) (x: Tensor) =
        let a = norm x.Rank axis
        if a = x.Rank - 1 then f x
        else x |> Tensor.moveAxis a (x.Rank - 1) |> f |> Tensor.moveAxis (x.Rank - 1) a

    /// The sub-tensor of one batch element, keeping a batch axis of size 1.
    let takeBatch (axis: int) (i: int) (x: Tensor) =
        let a = norm x.Rank axis
        let front = if a = 0 then x else Tensor.moveAxis a 0 x
        let inner = front.Length / front.Shape[0]
        let shape = Array.copy front.Shape
        shape[0] <- 1
        let one = Tensor.create shape (Array.sub front.Data (i * inner) inner)
        if a = 0 then one else Tensor.moveAxis 0 a one
