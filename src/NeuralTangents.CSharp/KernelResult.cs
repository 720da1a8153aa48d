namespace NeuralTangents.CSharp;

/// <summary>
/// The exact infinite-width kernels of a network with a flat output between inputs x1 (N1 of them) and x2
/// (N2 of them): neural_tangents' <c>Kernel</c> for <c>kernel_fn(x1, x2, get)</c>, as .NET arrays.
/// </summary>
/// <remarks>The arrays are this result's own (nothing else holds them) and the result never changes them.</remarks>
public sealed class KernelResult
{
    internal KernelResult(double[,] nngp, double[,]? ntk, double[] cov1, double[]? cov2)
    {
        Nngp = nngp;
        Ntk = ntk;
        Cov1 = cov1;
        Cov2 = cov2;
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
}
