using NeuralTangents;

namespace NeuralTangents.CSharp;

/// <summary>
/// The parameters of a finite network of a given <see cref="Network"/> (neural_tangents' params pytree), as
/// <see cref="Network.Init(int, int[])"/> samples them. Immutable; pass it to
/// <see cref="Network.Apply(NetworkParameters, double[,])"/>.
/// </summary>
public sealed class NetworkParameters
{
    internal NetworkParameters(Params value, int[] outputShape)
    {
        Value = value;
        OutputShape = Array.AsReadOnly(outputShape);
    }

    internal Params Value { get; }

    /// <summary>The shape of the network's output for the input shape the parameters were sampled for.</summary>
    public IReadOnlyList<int> OutputShape { get; }

    /// <summary>The number of scalar parameters.</summary>
    public int Count => ParamsModule.Count(Value);

    /// <summary>Every parameter in one vector, depth-first in the layer tree, each layer's W before its b.</summary>
    /// <returns>A fresh array.</returns>
    public double[] ToVector() => ParamsModule.ToVector(Value);

    /// <summary>The parameters of the F# core (interop with F# code).</summary>
    /// <returns>The F# <c>NeuralTangents.Params</c> tree.</returns>
    public Params ToFSharp() => Value;
}
