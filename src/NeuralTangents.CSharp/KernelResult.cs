namespace NeuralTangents.CSharp;

/// <summary>
/// The exact infinite-width kernels of a network with a flat output between inputs x1 (N1 of them) and x2
/// (N2 of them): neural_tangents' <c>Kernel</c> for <c>kernel_fn(x1, x2, get)</c>, as .NET arrays.
/// </summary>
/// <remarks>The arrays are this result's own (nothing else holds them) and the result never changes them.</remarks>
public sealed class KernelResult
{
    internal KernelResult(
        double[,] nngp, double[,]? ntk, double[] cov1, double[]? cov2, double[,]? cov1Full = null, double[,]? cov2Full = null)
    {
        Nngp = nngp;
        Ntk = ntk;
        Cov1 = cov1;
        Cov2 = cov2;
        Cov1Full = cov1Full;
        Cov2Full = cov2Full;
    }

    /// <summary>The NNGP covariance, shape (N1, N2): entry [i, j] is the covariance of the network's outputs on
    /// x1[i] and x2[j] over random initialisations.</summary>
    public double[,] Nngp { get; }

    /// <summary>The neural tangent kernel, shape (N1, N2); null when only the NNGP was asked for
    /// (<see cref="KernelOutputs.Nngp"/>).</summary>
    public double[,]? Ntk { get; }

    /// <summary>The output variance on each input of x1, length N1.</summary>
    public double[] Cov1 { get; }

    /// <summary>The output variance on each input of x2, length N2; null when x2 was not given (x2 = x1),
    /// as in neural_tangents.</summary>
    public double[]? Cov2 { get; }

    /// <summary>The full output covariance of x1 with itself, shape (N1, N1), when the kernel was computed with
    /// <c>diagonalBatch: false</c> (neural_tangents' <c>diagonal_batch=False</c>); null otherwise.
    /// <see cref="Cov1"/> is its diagonal.</summary>
    public double[,]? Cov1Full { get; }

    /// <summary>The full output covariance of x2 with itself, shape (N2, N2), when computed with
    /// <c>diagonalBatch: false</c> and x2 given; null otherwise.</summary>
    public double[,]? Cov2Full { get; }
}
