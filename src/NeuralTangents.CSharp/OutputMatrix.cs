namespace NeuralTangents.CSharp;

/// <summary>Outputs of a finite network as the (N, outputs) matrices the façade returns.</summary>
internal static class OutputMatrix
{
    /// <summary>The output as a matrix; a network whose output keeps more axes is refused with the fix.</summary>
    public static double[,] Of(Tensor y)
    {
        if (y.Rank != 2)
        {
            throw new NotSupportedException(
                $"the network's output has shape [{string.Join(", ", y.Shape)}], not (N, outputs); end it with Flatten() and Dense layers");
        }

        return TensorModule.ToArray2D(y);
    }
}
