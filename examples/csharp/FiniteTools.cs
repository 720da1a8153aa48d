// The README's "Finite widths from C#" block: `using NeuralTangents.CSharp;`, a blank line, then the code between
// the markers, dedented, verbatim (the block runs on its own as a Program.cs). tests/NeuralTangents.CSharp.Tests
// compiles this file, and FiniteToolsSnippetTests runs FiniteToolsExample.Run, checks what it prints and that the
// README's block is this code.
using NeuralTangents.CSharp;

namespace CSharpExamples;

/// <summary>Finite-width tools from C#: a custom activation over dual numbers, init/apply on images, empirical and
/// Monte Carlo kernels with batching, cancellation and progress, and a linearized network.</summary>
public static class FiniteToolsExample
{
    /// <summary>Runs the README's block, printing its results.</summary>
    public static void Run()
    {
        // <snippet>
        // mish(x) = x·tanh(softplus(x)), written once over dual numbers: φ′ is exact
        var mish = Stax.ElementwiseNumerical(
            "mish", x => x * DualNumber.Tanh(DualNumber.Log1p(DualNumber.Exp(x))), deg: 25);
        var cnn = Stax.Serial(
            Stax.Conv(8, new[] { 3, 3 }, padding: PaddingMode.Same), mish, Stax.Flatten(), Stax.Dense(1));

        var images = new double[4, 6, 6, 1];                 // N, height, width, channels (NHWC)
        for (var i = 0; i < 4; i++)
            for (var h = 0; h < 6; h++)
                for (var w = 0; w < 6; w++)
                    images[i, h, w, 0] = Math.Sin(i + 0.7 * h - 0.3 * w);

        NetworkParameters p0 = cnn.Init(0, 4, 6, 6, 1);     // neural_tangents' init_fn(key, shape)
        double[,] f0 = cnn.Apply(p0, images);                // apply_fn(params, x): (4, 1)

        FiniteKernels empirical = FiniteWidth.EmpiricalKernel(cnn, p0, images, batchSize: 2);
        using var timeout = new CancellationTokenSource(TimeSpan.FromMinutes(10));
        IReadOnlyList<FiniteKernels> estimates = FiniteWidth.MonteCarloKernel(
            cnn, images, new[] { 4, 16 }, seed: 1, batchSize: 2,
            progress: new Progress<int>(n => Console.Error.Write($"\rsamples {n}/16 ")),
            cancellationToken: timeout.Token);
        KernelResult exact = cnn.Kernel(images);             // the infinite-width limit

        TaylorExpansion linear = FiniteWidth.Linearize(cnn, p0);
        var nudged = FiniteWidth.WithValues(p0, p0.ToVector().Select(v => v * 1.001).ToArray());
        double[,] fLin = linear.Apply(nudged, images), f = cnn.Apply(nudged, images);

        Console.WriteLine($"f(θ₀, x₀) {f0[0, 0]:F4}   empirical NTK[0, 1] {empirical.Ntk!.ToMatrix()[0, 1]:F4}");
        Console.WriteLine($"Monte Carlo NTK[0, 1] with 4, 16 samples: {estimates[0].Ntk!.ToMatrix()[0, 1]:F4}, " +
                          $"{estimates[1].Ntk!.ToMatrix()[0, 1]:F4}; infinite width {exact.Ntk![0, 1]:F4}");
        Console.WriteLine($"linearized vs network at θ₀·1.001: {fLin[0, 0]:F6} vs {f[0, 0]:F6}");
        // </snippet>
    }
}
