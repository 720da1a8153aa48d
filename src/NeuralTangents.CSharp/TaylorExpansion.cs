namespace NeuralTangents.CSharp;

/// <summary>A network's Taylor expansion in its parameters about θ₀ (neural_tangents' <c>taylor_expand(f, params,
/// degree)</c>; <see cref="FiniteWidth.Linearize"/> is degree 1): a function of new parameters θ and inputs x.</summary>
/// <remarks>Degree 1 is f(θ₀, x) + J(θ₀, x)·(θ − θ₀), with J·Δ from exact Jacobian–vector products (the Jacobian is
/// never formed); degree 2 adds ½·Δᵀ∇²f·Δ from a fourth-order difference of exact JVPs (about 1e-12 relative).
/// Immutable and safe to call from several threads.</remarks>
public sealed class TaylorExpansion
{
    private readonly Microsoft.FSharp.Core.FSharpFunc<Params, Microsoft.FSharp.Core.FSharpFunc<Tensor, Tensor>> f;

    internal TaylorExpansion(
        Microsoft.FSharp.Core.FSharpFunc<Params, Microsoft.FSharp.Core.FSharpFunc<Tensor, Tensor>> f, int degree)
    {
        this.f = f;
        Degree = degree;
    }

    /// <summary>The degree of the expansion: 0, 1 or 2.</summary>
    public int Degree { get; }

    /// <summary>The expansion at new parameters for vector inputs.</summary>
    /// <param name="parameters">θ, e.g. from <see cref="FiniteWidth.WithValues"/> or another <see cref="Network.Init(int, int[])"/>.</param>
    /// <param name="x">Inputs, (N, features).</param>
    /// <returns>Outputs, (N, outputs).</returns>
    /// <exception cref="ArgumentNullException">An argument is null.</exception>
    /// <exception cref="ArgumentException">The parameters do not belong to the network.</exception>
    /// <exception cref="InvalidOperationException">The inputs do not fit the network.</exception>
    /// <exception cref="NotSupportedException">The network's output is not (N, outputs).</exception>
    public double[,] Apply(NetworkParameters parameters, double[,] x) => Run(parameters, FiniteWidth.Matrix(x, nameof(x)));

    /// <summary>The expansion at new parameters for images, NHWC (N, height, width, channels).</summary>
    /// <inheritdoc cref="Apply(NetworkParameters, double[,])"/>
    public double[,] Apply(NetworkParameters parameters, double[,,,] x) => Run(parameters, FiniteWidth.Images(x, nameof(x)));

    /// <summary>The expansion at new parameters for inputs given as jagged rows.</summary>
    /// <inheritdoc cref="Apply(NetworkParameters, double[,])"/>
    public double[,] Apply(NetworkParameters parameters, double[][] x) =>
        Run(parameters, FiniteWidth.Matrix(Inputs.Rows(x, nameof(x)), nameof(x)));

    /// <summary>The expansion at new parameters for single-precision inputs, widened (exactly) to double.</summary>
    /// <inheritdoc cref="Apply(NetworkParameters, double[,])"/>
    public double[,] Apply(NetworkParameters parameters, float[,] x) =>
        Run(parameters, FiniteWidth.Matrix(Inputs.Widen(x, nameof(x)), nameof(x)));

    private double[,] Run(NetworkParameters parameters, Tensor x)
    {
        Boundary.NotNull(parameters, nameof(parameters));
        var y = Boundary.Call(() => f.Invoke(parameters.Value).Invoke(x), Boundary.Names(("params", "parameters")));
        return OutputMatrix.Of(y);
    }
}
