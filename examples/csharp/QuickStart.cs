// The C# quick start shown in README.md. The test project compiles this file and ReadmeSnippetTests runs it, so the
// snippet between the markers (copied verbatim into README.md, checked by a test) always builds and works.
using NeuralTangents.CSharp;

namespace NeuralTangents.Examples;

/// <summary>The C# quick start of the README.</summary>
public static class QuickStart
{
    /// <summary>Runs the snippet and returns its kernels.</summary>
    /// <returns>The kernels the snippet computes.</returns>
    public static KernelResult Run()
    {
        // <snippet>
        var net = new NetworkBuilder()
            .Dense(512, wStd: 1.5, bStd: 0.05).Relu()
            .Dense(1, wStd: 1.5, bStd: 0.05)
            .Build();

        double[,] x = { { 1.0, 0.0 }, { 0.6, 0.8 } };  // 2 inputs × 2 features
        KernelResult k = net.Kernel(x);                  // x2 omitted: kernels of x with itself
        Console.WriteLine($"NNGP {k.Nngp[0, 1]:F6}  NTK {k.Ntk![0, 1]:F6}");
        Console.WriteLine(net.ToJson());                 // neural_tangents' layer names
        // </snippet>
        return k;
    }
}
