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

/// <summary>How a convolution or pooling window treats the borders (neural_tangents' <c>padding</c> argument; CIRCULAR is not available for ConvTranspose).</summary>
public enum PaddingMode
{
    /// <summary>"VALID": only windows inside the input; neural_tangents' default for pooling.</summary>
    Valid,

    /// <summary>"SAME": zero padding as lax splits it, ⌈size/stride⌉ outputs per axis.</summary>
    Same,

    /// <summary>"CIRCULAR": SAME's padding filled by wrapping the input around (periodic boundaries).</summary>
    Circular,
}

/// <summary>Which kernels <see cref="Network.Kernel(double[,], double[,], KernelOutputs, bool?, bool?)"/> computes
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
