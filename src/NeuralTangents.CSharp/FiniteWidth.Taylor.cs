namespace NeuralTangents.CSharp;

/// <summary>Taylor expansions of a finite network in its parameters.</summary>
public static partial class FiniteWidth
{
    /// <summary>The network linearized about <paramref name="parameters0"/> (neural_tangents' <c>linearize</c>):
    /// f_lin(θ, x) = f(θ₀, x) + J(θ₀, x)·(θ − θ₀), computed with exact Jacobian–vector products (the Jacobian is
    /// never formed).</summary>
    /// <param name="network">The architecture.</param>
    /// <param name="parameters0">θ₀.</param>
    /// <returns>f_lin; call <see cref="TaylorExpansion.Apply(NetworkParameters, double[,])"/>.</returns>
    /// <exception cref="ArgumentNullException">An argument is null.</exception>
    public static TaylorExpansion Linearize(Network network, NetworkParameters parameters0) =>
        TaylorExpand(network, parameters0, 1);

    /// <summary>The Taylor expansion of the network about <paramref name="parameters0"/> (neural_tangents'
    /// <c>taylor_expand</c>) of degree 0, 1 (<see cref="Linearize"/>) or 2 (the second-order term from exact JVPs by
    /// a fourth-order difference, about 1e-12 relative; not exact).</summary>
    /// <param name="network">The architecture.</param>
    /// <param name="parameters0">θ₀.</param>
    /// <param name="degree">0, 1 or 2.</param>
    /// <returns>The expansion as a function of new parameters and inputs.</returns>
    /// <exception cref="ArgumentNullException">An argument is null.</exception>
    /// <exception cref="ArgumentException">degree is not 0, 1 or 2.</exception>
    public static TaylorExpansion TaylorExpand(Network network, NetworkParameters parameters0, int degree)
    {
        Boundary.NotNull(network, nameof(network));
        Boundary.NotNull(parameters0, nameof(parameters0));
        var layer = network.ToFSharp();
        var f = Boundary.Call(() => Taylor.TaylorExpand(layer, parameters0.Value, degree), Renames);
        return new TaylorExpansion(f, degree);
    }

    /// <summary>Parameters shaped like <paramref name="template"/> holding <paramref name="values"/> (in the order of
    /// <see cref="NetworkParameters.ToVector"/>), e.g. θ₀ + Δ for a linearized network.</summary>
    /// <param name="template">Parameters of the same network.</param>
    /// <param name="values">One value per parameter.</param>
    /// <returns>New parameters.</returns>
    /// <exception cref="ArgumentNullException">An argument is null.</exception>
    /// <exception cref="ArgumentException">values has the wrong length.</exception>
    public static NetworkParameters WithValues(NetworkParameters template, double[] values)
    {
        Boundary.NotNull(template, nameof(template));
        Boundary.NotNull(values, nameof(values));
        var p = Boundary.Call(() => ParamsModule.OfVector(template.Value, (double[])values.Clone()), Boundary.Names(("v", "values")));
        return new NetworkParameters(p, template.OutputShape.ToArray());
    }
}
