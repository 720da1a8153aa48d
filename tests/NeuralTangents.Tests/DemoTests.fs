/// `nt demo` at reduced size: it runs, writes valid PNG and SVG figures, and its accuracies and errors clear floors
/// measured on this deterministic split (fixed shuffle seeds, exact kernels: the numbers only move if the maths does);
/// finite networks trained by gradient descent approach the infinite NTK ensemble as they widen.
module NeuralTangents.Tests.DemoTests

open System
open System.IO
open System.Xml
open Expecto
open NeuralTangents
open NeuralTangents.Cli
open NeuralTangents.Cli.Demo
open NeuralTangents.Tests.TestUtil

let private small =
    { DemoCommand.defaults with Train = 300; Test = 200; Depths = [ 1; 2 ]; Cnn = None; Finite = None; Plot = None }

/// A reduced CNN-GAP: one Conv + Relu block, 80 train / 50 test images (~2–5 s on 2 cores).
let private smallCnn : DemoCommand.CnnOptions = { Train = 80; Test = 50; Depth = 1; Block = 4 }

let private noProgress (_: int) (_: int) = ()

/// The PNG signature and the IHDR width and height (big-endian at bytes 16–23).
let private pngSize (path: string) =
    let b = File.ReadAllBytes path
    Expect.isGreaterThan b.Length 33 (path + " is too short for a PNG")
    Expect.sequenceEqual b[..7] [| 0x89uy; 0x50uy; 0x4Euy; 0x47uy; 0x0Duy; 0x0Auy; 0x1Auy; 0x0Auy |] (path + ": PNG signature")
    let be (o: int) = (int b[o] <<< 24) ||| (int b[o + 1] <<< 16) ||| (int b[o + 2] <<< 8) ||| int b[o + 3]
    be 16, be 20

/// The SVG parsed as XML: its root must be an svg element; returns the text it draws.
let private svgText (path: string) =
    let doc = XmlDocument()
    doc.Load path
    Expect.equal doc.DocumentElement.LocalName "svg" (path + ": root element")
    doc.DocumentElement.InnerText

/// Both files of a figure are valid and of the demo's size; returns the SVG's text.
let private figureText (stem: string) (name: string) =
    Expect.equal (pngSize (Plots.pathOf stem name "png")) (Plots.width, Plots.height) (name + ".png size")
    svgText (Plots.pathOf stem name "svg")

let private tempStem () = Path.Combine(Path.GetTempPath(), "nt-demo-" + Guid.NewGuid().ToString("N"))

let private deleteFigures (stem: string) =
    let dir, prefix = Path.GetDirectoryName stem, Path.GetFileName stem
    for f in Directory.GetFiles(dir, prefix + "-*") do File.Delete f

/// A reduced finite-vs-infinite experiment (~1 s of CPU): widths 32, 128, 512, 3 seeds, 100 steps on 32 patients.
let private smallFinite : FiniteVsInfinite.Options =
    { Train = 32; Test = 40; Widths = [ 32; 128; 512 ]; Seeds = 3; Steps = 100; LrFraction = 0.1 }

let private finiteResult = lazy (FiniteVsInfinite.compute ignore smallFinite)

[<Tests>]
let tests =
    testList "DemoTests" [
        testCase "digits accuracy of NNGP and NTK kernel regression clears its floor" <| fun () ->
            let r = DemoCommand.compute ignore { small with Diabetes = false }
            Expect.equal r.Digits.Length 4 "r.Digits.Length"
            for d in r.Digits do
                note (sprintf "%s depth %d: NNGP %.1f%%, NTK %.1f%%" d.Activation d.Depth (100.0 * d.NngpAccuracy) (100.0 * d.NtkAccuracy))
                // Measured 97.0–98.0% for Relu/Erf at depths 1–2 with 300 training images (1-nearest-neighbour: ~96%);
                // 95% sits ~1.7 binomial standard errors (√(0.97·0.03/200) = 1.2%) below the lowest, and far above what
                // a broken kernel gives (chance is 10%).
                Expect.isGreaterThan d.NngpAccuracy 0.95 (sprintf "%s depth %d NNGP" d.Activation d.Depth)
                Expect.isGreaterThan d.NtkAccuracy 0.95 (sprintf "%s depth %d NTK" d.Activation d.Depth)

        testCase "digits CNN-GAP rows clear their floor, appear in the table and in the plot" <| fun () ->
            let path = tempStem () + ".svg"
            try
                let o = { small with Diabetes = false; Depths = [ 1 ]; Train = 100; Test = 50; Cnn = Some smallCnn; Plot = Some path }
                let r = DemoCommand.compute ignore o
                let c = r.Cnn.Value
                note (sprintf "CNN-GAP depth %d, %d train / %d test: NNGP %.1f%%, NTK %.1f%% in %.1f s" c.Depth c.Train c.Test (100.0 * c.NngpAccuracy) (100.0 * c.NtkAccuracy) c.Seconds)
                // Measured 90.0% / 90.0% (NNGP / NTK) for one Conv + Relu block with 80 training images (60: 76%; the
                // default 200 train / 100 test at depth 2: 92% / 93%). 80% sits ~2.4 binomial standard errors
                // (√(0.9·0.1/50) = 4.2%) below, far above chance (10%) or a kernel with its pairs scrambled.
                Expect.isGreaterThan c.NngpAccuracy 0.8 "CNN NNGP accuracy"
                Expect.isGreaterThan c.NtkAccuracy 0.8 "CNN NTK accuracy"
                use w = new StringWriter()
                DemoCommand.report o r w
                let text = w.ToString()
                Expect.stringContains text "CNN-GAP on 80 train / 50 test images (full spatial kernel: 4096 position pairs per image pair)" "text"
                Expect.stringContains text (sprintf "  CNN Relu        1  %12.1f%%  %11.1f%%" (100.0 * c.NngpAccuracy) (100.0 * c.NtkAccuracy)) "text"
                let text = figureText (Plots.stemOf path) "digits-accuracy"
                Expect.stringContains text "NNGP CNN-GAP" "digits figure"
                Expect.stringContains text "NTK CNN-GAP" "digits figure"
                Expect.stringContains text "CNN: 80 train, 50 test" "digits figure"
                figureText (Plots.stemOf path) "digits-ntk-heatmap" |> ignore
            finally
                deleteFigures (Plots.stemOf path)

        testCase "blocked CNN kernels equal one whole kernel_fn call" <| fun () ->
            let split = Datasets.digits 11 6
            let x, y = DemoCommand.asImages split.XTrain, DemoCommand.asImages split.XTest
            let net = DemoCommand.cnnNetwork 2 10
            let wholeSym = KernelFn.compute net x None Both
            let wholeRect = KernelFn.compute net x (Some y) Both
            // Symmetric (x2 = None: upper block rows, mirrored) and rectangular, with blocks that do not divide N1.
            for block in [ 1; 3; 11; 20 ] do
                let nngp, ntk = DemoCommand.blockedKernels noProgress block net x None
                Expect.equal nngp.Shape [| 11; 11 |] "nngp.Shape"
                assertClose (sprintf "symmetric NNGP, block %d" block) 1e-14 wholeSym.Nngp.Data nngp.Data
                assertClose (sprintf "symmetric NTK, block %d" block) 1e-14 wholeSym.Ntk.Value.Data ntk.Data
                let nngp, ntk = DemoCommand.blockedKernels noProgress block net x (Some y)
                Expect.equal nngp.Shape [| 11; 6 |] "nngp.Shape"
                assertClose (sprintf "x1 × x2 NNGP, block %d" block) 1e-14 wholeRect.Nngp.Data nngp.Data
                assertClose (sprintf "x1 × x2 NTK, block %d" block) 1e-14 wholeRect.Ntk.Value.Data ntk.Data
            // Progress after every block.
            let calls = ResizeArray()
            DemoCommand.blockedKernels (fun d n -> calls.Add((d, n))) 3 net x None |> ignore
            Expect.equal (List.ofSeq calls) [ 3, 11; 6, 11; 9, 11; 11, 11 ] "progress calls"
            throwsExactly<ArgumentException> (fun () -> DemoCommand.blockedKernels noProgress 0 net x None |> ignore) |> ignore

        testCase "diabetes regression beats predicting the mean and the NTK trajectory starts at the prior" <| fun () ->
            let r = DemoCommand.compute ignore { small with Digits = false }
            let d = r.Diabetes.Value
            note (sprintf "baseline %.2f, NNGP %.2f, NTK %.2f" d.BaselineRmse d.NngpRmse d.NtkRmse)
            // Measured with 300 training patients: baseline 81.6, NNGP 57.8, NTK 58.0 (ratio 0.71); linear models reach
            // ~0.7 of the baseline on this data set, so 0.8 leaves room for round-off yet fails an uninformative model.
            Expect.isLessThan d.NngpRmse (0.8 * d.BaselineRmse) "d.NngpRmse"
            Expect.isLessThan d.NtkRmse (0.8 * d.BaselineRmse) "d.NtkRmse"
            Expect.isGreaterThan d.NngpStd 0.0 "d.NngpStd"
            // At the first (tiny) time the ensemble has barely moved from its zero-mean prior: RMSE ≈ the baseline's.
            withinPercent 1.0 d.BaselineRmse (snd d.Trajectory[0]) "snd d.Trajectory[0]"
            withinPercent 1.0 d.NtkRmse (snd d.Trajectory[d.Trajectory.Length - 1]) "snd d.Trajectory[d.Trajectory.Length - 1]"

        testCase "diabetes NTK posterior spread goes from the prior's to the t = ∞ value" <| fun () ->
            let r = DemoCommand.compute ignore { small with Digits = false }
            let d = r.Diabetes.Value
            // The prior spread straight from kernel_fn (not through Predict): √(mean diag k(x*, x*)) in target units.
            let split = Datasets.diabetes 300
            let k = (KernelFn.compute (DemoCommand.network Stax.relu 2 1) split.XTest None Get.Nngp).Nngp
            let m = k.Shape[0]
            let prior = split.TargetScale * sqrt (Array.average (Array.init m (fun i -> k.Data[i * m + i])))
            note (sprintf "prior σ %.2f, σ(t) %.2f … %.2f, t = ∞ %.2f" prior (snd d.StdTrajectory[0]) (snd d.StdTrajectory[d.StdTrajectory.Length - 1]) d.NtkStd)
            // The first time is 0.01 / (c·λmax): the stiffest mode has moved by ~1% of its way; measured prior 120.75 vs
            // σ(t0) 120.02 (0.6%). The 1% band holds while the grid starts there; a wrong t = 0 (a zero or the posterior
            // spread, 30.8) misses it by far.
            withinPercent 1.0 prior (snd d.StdTrajectory[0]) "snd d.StdTrajectory[0]"
            // The last time is 10 / (c·λmin): every mode has relaxed to within e^-10 of its limit.
            withinPercent 1.0 d.NtkStd (snd d.StdTrajectory[d.StdTrajectory.Length - 1]) "snd d.StdTrajectory[d.StdTrajectory.Length - 1]"
            // Training only removes uncertainty: the spread never grows along t (tiny slack for round-off).
            for (_, a), (_, b) in Array.pairwise d.StdTrajectory do
                Expect.isLessThanOrEqual b (a * (1.0 + 1e-9)) "the spread never grows along t"

        testCase "nt demo prints its table and writes every figure as PNG and SVG" <| fun () ->
            let stem = tempStem ()
            try
                use out = new StringWriter()
                use err = new StringWriter()
                let args = [| "demo"; "--train"; "300"; "--test"; "200"; "--depths"; "1"; "--cnn-train"; "12"; "--cnn-test"; "6"; "--cnn-depth"; "1"; "--no-finite"; "--out"; stem + ".svg" |]
                let code = Cli.run args (new StringReader "") out err
                Expect.equal code 0 (err.ToString())
                let text = out.ToString()
                Expect.stringContains text "NNGP accuracy" "text"
                Expect.stringContains text "NTK ensemble, t=inf" "text"
                Expect.stringContains text "CNN-GAP on 12 train / 6 test images" "text"
                stringLacks text "Finite vs infinite" "--no-finite"
                for name in [ "digits-accuracy"; "digits-ntk-heatmap"; "diabetes-training"; "diabetes-posterior" ] do
                    Expect.stringContains text (Plots.pathOf stem name "png") "the figure is listed"
                    figureText stem name |> ignore
                Expect.stringContains (figureText stem "digits-accuracy") "1 test image = 0.5%" "digits note"
                Expect.stringContains (figureText stem "diabetes-posterior") "inside the ±2σ band" "posterior note"
                Expect.isFalse (File.Exists(Plots.pathOf stem "finite-vs-infinite" "png")) "no finite figure with --no-finite"
            finally
                deleteFigures stem

        testCase "bad demo options end in one line" <| fun () ->
            for args, fragment in [ [| "demo"; "--dataset"; "mnist" |], "--dataset"
                                    [| "demo"; "--depths"; "0" |], "--depths"
                                    [| "demo"; "--train"; "5000" |], "train"
                                    [| "demo"; "--test"; "0" |], "--test: must be ≥ 1"
                                    [| "demo"; "--cnn-train"; "0" |], "--cnn-train: must be ≥ 1"
                                    [| "demo"; "--cnn-depth"; "11" |], "--cnn-depth"
                                    [| "demo"; "--dataset"; "digits"; "--train"; "10"; "--test"; "10"; "--depths"; "1"; "--cnn-train"; "1790" |], "train + test" ] do
                use out = new StringWriter()
                use err = new StringWriter()
                let code = Cli.run args (new StringReader "") out err
                Expect.notEqual code 0 (String.Join(" ", args))
                Expect.stringStarts (err.ToString()) "nt: " "err.ToString()"
                Expect.stringContains (err.ToString()) fragment "err.ToString()"
                stringLacks (err.ToString()) "   at " "err.ToString()"

        testCase "figure paths: an .svg or .png extension of --out is dropped" <| fun () ->
            Expect.equal (Plots.stemOf "a/nt-demo.svg") "a/nt-demo" "svg"
            Expect.equal (Plots.stemOf "nt-demo.PNG") "nt-demo" "png"
            Expect.equal (Plots.stemOf "plots/run.1") "plots/run.1" "other extensions stay"
            Expect.equal (Plots.pathOf "a/b" "digits-accuracy" "png") "a/b-digits-accuracy.png" "pathOf"

        testCase "finite networks approach the infinite NTK prediction as they widen" <| fun () ->
            let r = finiteResult.Value
            for s in r.Summaries do
                note (sprintf "width %4d: |mean - mu| %.3f, spread %.3f, twin %.4f, linearized %.4f (units of sigma)" s.Width s.MeanDistance s.Spread s.TwinDistance s.LinearizedDistance)
            let twin = r.Summaries |> List.map (fun s -> s.TwinDistance)
            let lin = r.Summaries |> List.map (fun s -> s.LinearizedDistance)
            // Each seed's network against the infinite network started from its own outputs, and against its own
            // linearization: both O(n^-1/2) (arXiv:1902.06720, Theorem 2.1; the linearization measured ~1/n). Over 16× in
            // width n^-1/2 predicts a 4× drop: ask for each width to improve and for at least 2× overall (3 seeds).
            for name, d in [ "twin", twin; "linearized", lin ] do
                for a, b in List.pairwise d do
                    Expect.isLessThan b a (sprintf "%s distance shrinks with width: %A" name d)
                Expect.isGreaterThan (List.head d / List.last d) 2.0 (sprintf "%s distance, widths 32 -> 512: %A" name d)
            // The mean over S seeds against μ: at infinite width each seed is a draw of N(μ, σ²) (in discrete steps, within
            // a/(2e) ≈ 4% of σ of the continuous ensemble), so (mean − μ)/σ ~ N(0, 1/S) at every point; its RMS over
            // points, however correlated, exceeds 3/√S only when a normal exceeds 3σ (0.3%). A finite width adds at most
            // its twin distance (triangle inequality).
            let widest = List.last r.Summaries
            let bound = 3.0 / sqrt (float smallFinite.Seeds) + widest.TwinDistance + 0.04
            Expect.isLessThan widest.MeanDistance bound "widest: |mean - mu| / sigma"
            // The seeds' sample std / σ: with S = 3 its square is χ²₂/2 at worst (all points correlated), inside
            // [0.005, 4.6] with 99% probability, so the ratio is in [0.07, 2.15]; a collapsed or exploded ensemble is not.
            Expect.isGreaterThan widest.Spread 0.07 "widest: spread / sigma"
            Expect.isLessThan widest.Spread 2.15 "widest: spread / sigma"

        testCase "finite vs infinite: every model starts from the network's outputs; the ensemble from the NNGP prior" <| fun () ->
            let r = finiteResult.Value
            Expect.equal r.Times [| 0; 1; 2; 5; 10; 20; 50; 100 |] "record times"
            // The finite network's outputs at t = 0 straight from InitFn/ApplyFn, not through the experiment.
            let split = FiniteVsInfinite.split smallFinite
            for run in r.Runs do
                let net = FiniteVsInfinite.network run.Width
                for s in 0 .. smallFinite.Seeds - 1 do
                    let _, p0 = InitFn.init (s + 1) net split.XTrain.Shape
                    let f0 = (ApplyFn.apply net p0 split.XTest).Data
                    Expect.sequenceEqual (run.Finite[s][0]) f0 "finite f at t = 0"
                    Expect.sequenceEqual (run.Linearized[s][0]) f0 "linearized f at t = 0"
                    Expect.sequenceEqual (run.Twin[s][0]) f0 "twin f at t = 0"
            // μ(t = 0) = 0 and σ(t = 0)² = the NNGP prior's diagonal, from kernel_fn directly.
            let k = (KernelFn.compute (FiniteVsInfinite.network 1) split.XTest None Get.Nngp).Nngp
            let m = smallFinite.Test
            Expect.sequenceEqual (r.Mu[0]) (Array.zeroCreate m) "mu at t = 0"
            assertClose "sigma at t = 0" 1e-12 (Array.init m (fun i -> sqrt k.Data[i * m + i])) (r.Sigma[0])

        testCase "the function-space steps equal gradient descent on Taylor.linearize in parameter space" <| fun () ->
            // A narrow network so the linearization differs visibly from the network; 3 steps of a large rate.
            let net = FiniteVsInfinite.network 8
            let split = FiniteVsInfinite.split { smallFinite with Train = 5; Test = 3 }
            let x, y, xt = split.XTrain, split.YTrain.Data, split.XTest
            let _, p0 = InitFn.init 7 net x.Shape
            let eta = 0.5
            let flin = Taylor.linearize net p0
            // θ_{k+1} = θ_k − η/N·J(θ₀)ᵀ(f_lin(θ_k, X) − y): the linear model's gradient is the VJP at θ₀.
            let mutable theta = p0
            let expected = ResizeArray()
            for _ in 0 .. 3 do
                expected.Add((flin theta xt).Data)
                let r = Tensor.create [| 5; 1 |] (Array.map2 (fun f t -> (f - t) / 5.0) (flin theta x).Data y)
                let g, _ = Backward.vjp net p0 x r
                theta <- Params.ofVector p0 (Array.map2 (fun a b -> a - eta * b) (Params.toVector theta) (Params.toVector g))
            let empTrain = Tensor.toMatrix (Empirical.ntk net p0 x None)
            let empTest = Tensor.toMatrix (Empirical.ntk net p0 xt (Some x))
            let f0 = (ApplyFn.apply net p0 x).Data
            let actual = FiniteVsInfinite.linearSteps empTrain empTest eta y f0 (ApplyFn.apply net p0 xt).Data [| 0; 1; 2; 3 |]
            for k in 0 .. 3 do
                assertClose (sprintf "linearized test outputs after %d steps" k) 1e-12 (expected[k]) (actual[k])
            // The steps are not trivial: the outputs moved.
            Expect.isGreaterThan (abs (actual[3][0] - actual[0][0])) 1e-3 "the linearized outputs moved"

        testCase "finite vs infinite: the table and both figures" <| fun () ->
            let r = finiteResult.Value
            use w = new StringWriter()
            FiniteVsInfinite.report r w
            let text = w.ToString()
            Expect.stringContains text "Finite vs infinite width (Lee et al. 2019, arXiv:1902.06720): diabetes, 32 train / 40 test patients" "title"
            for s in r.Summaries do
                Expect.stringContains text (sprintf "  %6d  %10.3f  %11.3f  %11.4f  %13.4f" s.Width s.MeanDistance s.Spread s.TwinDistance s.LinearizedDistance) "row"
            let stem = tempStem ()
            try
                Plots.save stem "finite-vs-infinite" (FiniteFigures.trajectory r) |> ignore
                Plots.save stem "finite-distance" (FiniteFigures.distances r) |> ignore
                Expect.stringContains (figureText stem "finite-vs-infinite") "finite, width 512" "trajectory legend"
                Expect.stringContains (figureText stem "finite-distance") "finite − its NTK twin" "distance legend"
            finally
                deleteFigures stem

        testCase "finite vs infinite: bad options name the option" <| fun () ->
            for o, fragment in [ { smallFinite with Seeds = 1 }, "Seeds"
                                 { smallFinite with Widths = [ 0 ] }, "Widths"
                                 { smallFinite with Widths = [ 32; 100000 ] }, "between 1 and 65536"
                                 { smallFinite with LrFraction = 1.5 }, "LrFraction"
                                 { smallFinite with Test = 1000 }, "Test" ] do
                let e = throwsExactly<ArgumentException> (fun () -> FiniteVsInfinite.compute ignore o |> ignore)
                Expect.stringContains e.Message fragment fragment
    ]
