namespace NeuralTangents.CSharp;

/// <summary>How a Dense layer scales its weights (neural_tangents' <c>parameterization</c> argument).</summary>
public enum DenseParameterization
{
    /// <summary>The "ntk" parameterization (arXiv:1806.07572): weights drawn from N(0, 1), output
    /// W_std/√N_in · W x + b_std · b. This is neural_tangents' default.</summary>
    Ntk,

    /// <summary>The "standard" parameterization (arXiv:2001.07301): weights drawn from N(0, W_std²/N_in),
    /// output W x / √s0 + b.</summary>
    Standard,
}

/// <summary>How a convolution treats the borders of its input (neural_tangents' <c>padding</c> argument).</summary>
public enum ConvPadding
{
    /// <summary>"VALID": only windows that lie inside the input; output size ⌊(D − f)/s⌋ + 1.</summary>
    Valid,

    /// <summary>"SAME": zero padding as lax pads, output size ⌈D/s⌉.</summary>
    Same,

    /// <summary>"CIRCULAR": periodic (wrap-around) padding with SAME's output size (not for ConvTranspose).</summary>
    Circular,
}

/// <summary>Which kernels <see cref="Network.Kernel(double[,], double[,], KernelOutputs, bool?)"/> computes
/// (neural_tangents' <c>get</c> argument).</summary>
public enum KernelOutputs
{
    /// <summary>Only the NNGP kernel; <see cref="KernelResult.Ntk"/> is null and the NTK is not computed.</summary>
    Nngp,

    /// <summary>The NTK. The NNGP is needed to compute it and is returned as well.</summary>
    Ntk,

    /// <summary>Both the NNGP kernel and the NTK.</summary>
    Both,
}
