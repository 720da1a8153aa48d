using Microsoft.FSharp.Core;

namespace NeuralTangents.CSharp;

/// <summary>One kernel of a finite network: its values in row-major order and its shape (neural_tangents'
/// <c>_ntk_shape</c>: per output axis nothing when traced, one axis when diagonal, two axes otherwise).</summary>
/// <remarks>The array is this object's own; the object never changes it.</remarks>
public sealed class FiniteKernel
{
    internal FiniteKernel(Tensor t)
    {
        Shape = Array.AsReadOnly((int[])t.Shape.Clone());
        Values = (double[])t.Data.Clone();
    }

    /// <summary>The kernel's shape, e.g. (N1, N2) with the default trace over the last output axis.</summary>
    public IReadOnlyList<int> Shape { get; }

    /// <summary>The values, row-major.</summary>
    public double[] Values { get; }

    /// <summary>The kernel as a matrix, when it has two axes (the default (N1, N2)).</summary>
    /// <returns>A new (Shape[0], Shape[1]) array.</returns>
    /// <exception cref="InvalidOperationException">The kernel does not have two axes.</exception>
    public double[,] ToMatrix()
    {
        if (Shape.Count != 2)
        {
            throw new InvalidOperationException(
                $"the kernel has shape [{string.Join(", ", Shape)}], not two axes; read Values and Shape instead");
        }

        var r = new double[Shape[0], Shape[1]];
        Buffer.BlockCopy(Values, 0, r, 0, Values.Length * sizeof(double));
        return r;
    }
}

/// <summary>The NNGP and NTK of a finite network, or their Monte Carlo estimates; each null when not asked for.</summary>
public sealed class FiniteKernels
{
    internal FiniteKernels(FSharpOption<Tensor>? nngp, FSharpOption<Tensor>? ntk)
    {
        Nngp = nngp is null ? null : new FiniteKernel(nngp.Value);
        Ntk = ntk is null ? null : new FiniteKernel(ntk.Value);
    }

    /// <summary>f(x1)·f(x2)ᵀ averaged over the traced axes; null when only the NTK was asked for.</summary>
    public FiniteKernel? Nngp { get; }

    /// <summary>Σ_θ ∂f(x1)/∂θ·∂f(x2)/∂θ averaged over the traced axes; null when only the NNGP was asked for.</summary>
    public FiniteKernel? Ntk { get; }
}
