namespace NeuralTangents

/// <summary>Which posterior <c>Predict</c> returns (neural_tangents' <c>get</c> of <c>nt.predict</c>).</summary>
[<RequireQualifiedAccess>]
type PredictGet =
    /// Exact posterior of an infinitely wide Bayesian network (NNGP regression); equivalently an infinite
    /// ensemble in which only the readout layer is trained.
    | Nngp
    /// Infinite ensemble of infinitely wide networks trained on MSE by gradient flow (arXiv:1902.06720).
    | Ntk
    /// GP posterior with the NTK as its prior covariance: the ensemble of arXiv:2007.05864 ("NTKGP").
    | NtkGp

/// The posterior's case name in messages and timings.
module internal PredictGets =
    let name (g: PredictGet) =
        match g with
        | PredictGet.Nngp -> "Nngp"
        | PredictGet.Ntk -> "Ntk"
        | PredictGet.NtkGp -> "NtkGp"

/// <summary>A Gaussian over the outputs (neural_tangents' <c>Gaussian</c> namedtuple).</summary>
type Gaussian =
    { /// Mean outputs, shape (M, K), or (T, M, K) with a leading axis for T times.
      Mean: Tensor
      /// Covariance over inputs, shape (M, M) or (T, M, M), shared by the K output columns
      /// (trace_axes = (-1,)); None when it was not asked for.
      Covariance: Tensor option }

/// <summary>The kernel blocks a GP prediction needs between two sets of inputs: the NNGP and/or the NTK,
/// each an (N1, N2) matrix.</summary>
type KernelMatrices =
    { /// NNGP block, when known.
      NngpMatrix: Tensor option
      /// NTK block, when known.
      NtkMatrix: Tensor option }

/// <summary>Constructors of <see cref="T:NeuralTangents.KernelMatrices"/>.</summary>
[<RequireQualifiedAccess>]
module KernelMatrices =

    /// <summary>The NNGP (and the NTK, when computed) of a kernel from <c>KernelFn.compute</c>.</summary>
    [<CompiledName("OfKernel")>]
    let ofKernel (k: Kernel) = { NngpMatrix = Some k.Nngp; NtkMatrix = k.Ntk }

    /// <summary>An NNGP block only.</summary>
    [<CompiledName("OfNngp")>]
    let ofNngp (nngp: Tensor) = { NngpMatrix = Some nngp; NtkMatrix = None }

    /// <summary>An NTK block only.</summary>
    [<CompiledName("OfNtk")>]
    let ofNtk (ntk: Tensor) = { NngpMatrix = None; NtkMatrix = Some ntk }

    /// <summary>Both blocks.</summary>
    [<CompiledName("OfBoth")>]
    let ofBoth (nngp: Tensor) (ntk: Tensor) = { NngpMatrix = Some nngp; NtkMatrix = Some ntk }

/// <summary>Outputs of a (linearised) network on the training set and, when asked for, a test set.</summary>
type Outputs =
    { /// Training-set outputs, shape (N, K), or (T, N, K) with a leading axis for T times.
      Train: Tensor
      /// Test-set outputs, shape (M, K) or (T, M, K); None when no test set was given.
      Test: Tensor option }

/// <summary>Progress of a prediction: the big step just finished (a kernel, a factorisation, a solve), how many
/// steps have finished so far and the time since the predictor was built.</summary>
type PredictProgress =
    { /// What finished, e.g. "NTK train–train kernel", "Cholesky factor of the NTK", "NNGP covariance".
      Step: string
      /// Steps finished so far (the total depends on what is asked, so none is promised).
      StepsDone: int
      /// Time since the predictor was built.
      Elapsed: System.TimeSpan }

/// <summary>Cancellation and progress reporting for a prediction: the token is checked, and progress reported,
/// between its big steps (kernels, factorisations, solves); a step itself is not interrupted.</summary>
type PredictControl =
    { /// Cancels the prediction at the next step boundary with an OperationCanceledException.
      Cancellation: System.Threading.CancellationToken
      /// Receives one report per finished step, when given.
      Progress: System.IProgress<PredictProgress> option }

    /// <summary>No cancellation, no progress.</summary>
    static member None = { Cancellation = System.Threading.CancellationToken.None; Progress = None }
