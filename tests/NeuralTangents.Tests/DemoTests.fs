/// `nt demo` at reduced size: it runs, writes a well-formed SVG, and its accuracies and errors clear floors measured
/// on this deterministic split (fixed shuffle seeds, exact kernels: the numbers only move if the maths does).
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
    { DemoCommand.defaults with Train = 300; Test = 200; Depths = [ 1; 2 ]; Cnn = None; Plot = None }

/// A reduced CNN-GAP: one Conv + Relu block, 80 train / 50 test images (~2–5 s on 2 cores).
let private smallCnn : DemoCommand.CnnOptions = { Train = 80; Test = 50; Depth = 1; Block = 4 }

let private noProgress (_: int) (_: int) = ()

let private series label stroke points : Svg.Series =
    { Label = label; Colour = "#000"; Stroke = stroke; Markers = false; Shape = Svg.Dot; Points = points; Band = None }

let private panel (logX: bool) (series: Svg.Series list) : Svg.Panel =
    { Title = "t"; XLabel = "x"; YLabel = "y"; LogX = logX; Series = series; Notes = [ "a note" ] }

let private parse (svg: string) =
    let doc = XmlDocument()
    doc.LoadXml svg
    let ns = XmlNamespaceManager(doc.NameTable)
    ns.AddNamespace("s", "http://www.w3.org/2000/svg")
    doc, ns

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
            let path = Path.Combine(Path.GetTempPath(), "nt-demo-cnn-" + Guid.NewGuid().ToString("N") + ".svg")
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
                let doc = XmlDocument()
                doc.Load path
                let ns = XmlNamespaceManager(doc.NameTable)
                ns.AddNamespace("s", "http://www.w3.org/2000/svg")
                // The CNN's two series are squares: one data point and one legend swatch each, in their own colours.
                for colour in [ "#9467bd"; "#8c564b" ] do
                    Expect.equal (doc.SelectNodes(sprintf "//s:rect[@fill='%s']" colour, ns).Count) 2 colour
                Expect.stringContains doc.InnerText "NNGP CNN-GAP" "doc.InnerText"
                Expect.stringContains doc.InnerText "NTK CNN-GAP" "doc.InnerText"
                Expect.stringContains doc.InnerText "CNN: 80 train, 50 test" "doc.InnerText"
            finally
                if File.Exists path then File.Delete path

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

        testCase "nt demo prints its table and writes a well-formed SVG" <| fun () ->
            let path = Path.Combine(Path.GetTempPath(), "nt-demo-" + Guid.NewGuid().ToString("N") + ".svg")
            try
                use out = new StringWriter()
                use err = new StringWriter()
                let args = [| "demo"; "--train"; "300"; "--test"; "200"; "--depths"; "1"; "--cnn-train"; "12"; "--cnn-test"; "6"; "--cnn-depth"; "1"; "--out"; path |]
                let code = Cli.run args (new StringReader "") out err
                Expect.equal code 0 (err.ToString())
                let text = out.ToString()
                Expect.stringContains text "NNGP accuracy" "text"
                Expect.stringContains text "NTK ensemble, t=inf" "text"
                Expect.stringContains text "CNN-GAP on 12 train / 6 test images" "text"
                Expect.stringContains text path "text"
                let doc = XmlDocument()
                doc.Load path
                Expect.equal doc.DocumentElement.LocalName "svg" "doc.DocumentElement.LocalName"
                let ns = XmlNamespaceManager(doc.NameTable)
                ns.AddNamespace("s", "http://www.w3.org/2000/svg")
                // Three panels: 4 accuracy lines (the CNN's are squares, no line); RMSE and σ along t plus 3 levels; the
                // posterior mean (its truth is dots).
                Expect.equal (doc.SelectNodes("//s:polyline", ns).Count) 10 "doc.SelectNodes(\"//s:polyline\", ns).Count"
                Expect.equal (doc.SelectNodes("//s:polygon", ns).Count) 1 "doc.SelectNodes(\"//s:polygon\", ns).Count"
                Expect.stringContains doc.InnerText "1 test image = 0.5%" "doc.InnerText"
            finally
                if File.Exists path then File.Delete path

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

        testCase "Svg draws lines, dots and bands as asked" <| fun () ->
            let pts = [| 1.0, 1.0; 2.0, 3.0; 3.0, 2.0 |]
            let banded = { series "band" Svg.Solid pts with Band = Some(pts |> Array.map (fun (_, y) -> y - 1.0, y + 1.0)) }
            let doc, ns = parse (Svg.render 500.0 300.0 [ panel false [ banded; series "dots" Svg.NoLine pts; series "dash" Svg.Dashed pts ] ])
            Expect.equal (doc.SelectNodes("//s:polyline", ns).Count) 2 "doc.SelectNodes(\"//s:polyline\", ns).Count"
            Expect.equal (doc.SelectNodes("//s:polyline[@stroke-dasharray]", ns).Count) 1 "doc.SelectNodes(\"//s:polyline[@stroke-dasharray]\", ns).Count"
            Expect.equal (doc.SelectNodes("//s:polygon", ns).Count) 1 "doc.SelectNodes(\"//s:polygon\", ns).Count"
            // 3 data dots and 1 legend dot for the NoLine series; none for the others (Markers = false).
            Expect.equal (doc.SelectNodes("//s:circle", ns).Count) 4 "doc.SelectNodes(\"//s:circle\", ns).Count"
            Expect.stringContains doc.InnerText "a note" "doc.InnerText"

        testCase "Svg centres a single x value and refuses non-finite points" <| fun () ->
            let doc, ns = parse (Svg.render 500.0 300.0 [ panel false [ series "one" Svg.Solid [| 2.0, 5.0 |] ] ])
            // Plot area: x from ml = 60 to 500 − mr (150) = 350, so its middle is 205.
            let line = doc.SelectSingleNode("//s:polyline", ns).Attributes["points"].Value
            Expect.stringStarts line "205," "line"
            for bad in [ nan, 1.0; 1.0, infinity ] do
                throwsExactly<ArgumentException> (fun () -> Svg.render 500.0 300.0 [ panel false [ series "bad" Svg.Solid [| bad |] ] ] |> ignore) |> ignore
            throwsExactly<ArgumentException> (fun () -> Svg.render 500.0 300.0 [ panel true [ series "log" Svg.Solid [| 0.0, 1.0 |] ] ] |> ignore) |> ignore
    ]
