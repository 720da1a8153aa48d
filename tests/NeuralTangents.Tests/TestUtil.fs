module NeuralTangents.Tests.TestUtil

open System
open System.IO
open Expecto
open NeuralTangents

/// Relative Frobenius error ‖actual − expected‖ / ‖expected‖ (neural_tangents' `assert_close_matrices` rule);
/// falls back to the absolute norm when the reference is zero.
let relErr (expected: float[]) (actual: float[]) =
    if expected.Length <> actual.Length then
        failwithf "length mismatch: expected %d values, got %d" expected.Length actual.Length
    let mutable d = 0.0
    let mutable n = 0.0
    for i in 0 .. expected.Length - 1 do
        d <- d + (actual[i] - expected[i]) ** 2.0
        n <- n + expected[i] ** 2.0
    if n = 0.0 then sqrt d else sqrt (d / n)

/// Asserts relative Frobenius closeness with a message naming what was compared.
let assertClose (what: string) (tol: float) (expected: float[]) (actual: float[]) =
    let e = relErr expected actual
    if not (e <= tol) then
        failwithf "%s: relative Frobenius error %.3e exceeds %.1e" what e tol

/// The repository root (the folder holding NeuralTangents.slnx), found from the test assembly's location.
let repoRoot =
    let rec up (d: DirectoryInfo) =
        if isNull d then failwith "cannot find the repository root (NeuralTangents.slnx) above the test assembly"
        elif File.Exists(Path.Combine(d.FullName, "NeuralTangents.slnx")) then d.FullName
        else up d.Parent
    up (DirectoryInfo(AppContext.BaseDirectory))

/// Deterministic standard normal samples (Box–Muller over System.Random with a seed).
let normals (seed: int) (n: int) =
    let rng = Random(seed)
    Array.init n (fun _ ->
        let u1 = 1.0 - rng.NextDouble()
        let u2 = rng.NextDouble()
        sqrt (-2.0 * log u1) * cos (2.0 * Math.PI * u2))

/// A (rows × cols) tensor of seeded standard normals.
let randomTensor (seed: int) (rows: int) (cols: int) = Tensor.create [| rows; cols |] (normals seed (rows * cols))

// ---- Expecto helpers ----

/// Writes one line of diagnostic output (what NUnit's TestContext.Out showed), whole even when tests run in parallel.
let note (line: string) = Console.Out.WriteLine line

/// The vector widths of the hot passes (Simd.normWidth) to test here: 512 (hardware, or .NET's software fallback:
/// exact, slow), 256 where AVX2 + FMA exist (noted when not), and 0 (scalar).
let widths () =
    [ yield 512
      if System.Runtime.Intrinsics.X86.Avx2.IsSupported && System.Runtime.Intrinsics.X86.Fma.IsSupported then yield 256
      else note "Vector256 path not tested: this CPU lacks AVX2 + FMA"
      yield 0 ]

/// Runs f with the hot passes forced to a width, restoring the hardware's choice after (a global setting: call it
/// from sequenced tests only).
let withWidth (w: int) (f: unit -> 'a) =
    NeuralTangents.Rules.Simd.setNormWidth w
    try f () finally NeuralTangents.Rules.Simd.setNormWidth NeuralTangents.Rules.Simd.hardwareNormWidth

/// Where every property's cases come from. Fixed by default, so that this suite draws the same cases on every
/// machine and a failure seen anywhere reproduces; NT_FSCHECK_SEED=random draws fresh cases each run (a soak run: a
/// failing property prints its seed), NT_FSCHECK_SEED=SEED,GAMMA (GAMMA odd) draws those of one seed.
let private fsCheckReplay : (uint64 * uint64 * int option) option =
    match Environment.GetEnvironmentVariable "NT_FSCHECK_SEED" with
    | null | "" -> Some(20261201UL, 0x9E3779B97F4A7C15UL, None)
    | "random" -> None
    | s ->
        match s.Split ',' with
        | [| seed; gamma |] -> Some(UInt64.Parse(seed.Trim()), UInt64.Parse(gamma.Trim()) ||| 1UL, None)
        | _ -> failwithf "NT_FSCHECK_SEED=%s: expected 'random' or SEED,GAMMA (two unsigned integers)" s

/// FsCheck settings for a property checked on `maxTests` generated cases (NUnit's [<Property(MaxTest = n)>]), drawn
/// from <c>fsCheckReplay</c>'s seed. A failing property prints its seed; to replay it, set NT_FSCHECK_SEED, or swap
/// `testPropertyWithConfig` for `etestPropertyWithConfig (seed, gamma, Some size)` as the failure message shows (see
/// Program.fs).
let fsCheck (maxTests: int) = { FsCheckConfig.defaultConfig with maxTest = maxTests; replay = fsCheckReplay }

/// One test case per row (NUnit's [<TestCase(...)>] rows), each named by its arguments, under a list named `name`.
let testRows (name: string) (body: 'row -> unit) (rows: 'row list) =
    testList name [ for row in rows -> testCase (sprintf "%A" row) (fun () -> body row) ]

/// Runs `f` and returns the exception it throws, which must be exactly of type 'T (NUnit's Assert.Throws<T>).
let throwsExactly<'T when 'T :> exn> (f: unit -> unit) : 'T =
    let thrown = try f (); None with e -> Some e
    match thrown with
    | Some e when e.GetType() = typeof<'T> -> e :?> 'T
    | Some e -> failtestf "expected %s but %s was thrown: %s" typeof<'T>.FullName (e.GetType().FullName) e.Message
    | None -> failtestf "expected %s but nothing was thrown" typeof<'T>.FullName

/// |actual − expected| ≤ tolerance (NUnit's Is.EqualTo(expected).Within(tolerance)).
let within (tolerance: float) (expected: float) (actual: float) (message: string) =
    if not (actual = expected || abs (actual - expected) <= tolerance) then
        failtestf "%s. Expected %.17g within %g, but was %.17g (off by %g)" message expected tolerance actual (abs (actual - expected))

/// |actual − expected| ≤ |expected|·percent/100 (NUnit's Is.EqualTo(expected).Within(percent).Percent).
let withinPercent (percent: float) (expected: float) (actual: float) (message: string) =
    if not (actual = expected || abs (actual - expected) <= abs (expected * percent / 100.0)) then
        failtestf "%s. Expected %.17g within %g%%, but was %.17g (off by %.3g%%)" message expected percent actual
            (100.0 * abs (actual - expected) / abs expected)

/// `text` does not contain `fragment` (NUnit's Does.Not.Contain).
let stringLacks (text: string) (fragment: string) (message: string) =
    if text.Contains fragment then failtestf "%s. Expected %A not to contain %A" message text fragment

/// Flattens nested JSON number lists (a fixture's arrays) into (shape, row-major values).
let rec flattenJson (node: System.Text.Json.Nodes.JsonNode) : int list * float list =
    match node with
    | :? System.Text.Json.Nodes.JsonArray as arr ->
        let parts = arr |> Seq.map flattenJson |> Seq.toList
        let inner = match parts with (s, _) :: _ -> s | [] -> []
        arr.Count :: inner, parts |> List.collect snd
    | v -> [], [ v.GetValue<float>() ]

/// A Gaussian kernel (as after a Dense layer; diagonal batch) of two inputs with variances q1, q2 and covariance c,
/// and an incoming NTK of ones, so that an activation's output NTK entry (0, 1) is σ̇ = E[φ′(u)φ′(v)] itself.
let gaussianPairKernel (q1: float) (q2: float) (c: float) : NeuralTangents.Kernel =
    { Nngp = Tensor.create [| 2; 2 |] [| q1; c; c; q2 |]
      Ntk = Some(Tensor.create [| 2; 2 |] [| 1.0; 1.0; 1.0; 1.0 |])
      Cov1 = Tensor.create [| 2 |] [| q1; q2 |]
      Cov2 = None
      X1IsX2 = true
      IsGaussian = true
      IsReversed = false
      IsInput = false
      DiagonalBatch = true
      DiagonalSpatial = true
      Shape1 = [| 2; 64 |]
      Shape2 = [| 2; 64 |]
      BatchAxis = 0
      ChannelAxis = -1
      Mask1 = None
      Mask2 = None }

/// `nt kernel` run in this process on a request given as stdin: (exit code, stdout, stderr).
let ntKernelInProcess (stdin: string) =
    use out = new StringWriter()
    use err = new StringWriter()
    let code = NeuralTangents.Cli.Cli.run [| "kernel" |] (new StringReader(stdin)) out err
    code, out.ToString(), err.ToString()

/// The numbers of a JSON answer's (nested) array, in order.
let rec jsonValues (node: System.Text.Json.Nodes.JsonNode) : float list =
    match node with
    | :? System.Text.Json.Nodes.JsonArray as a -> a |> Seq.toList |> List.collect jsonValues
    | v -> [ v.GetValue<float>() ]
