/// `nt demo` at reduced size: it runs, writes a well-formed SVG, and its accuracies and errors clear floors measured
/// on this deterministic split (fixed shuffle seeds, exact kernels: the numbers only move if the maths does).
module NeuralTangents.Tests.DemoTests

open System
open System.IO
open System.Xml
open NUnit.Framework
open NeuralTangents.Cli
open NeuralTangents.Cli.Demo

let private small =
    { DemoCommand.defaults with Train = 300; Test = 200; Depths = [ 1; 2 ]; Plot = None }

[<Test>]
let ``digits accuracy of NNGP and NTK kernel regression clears its floor`` () =
    let r = DemoCommand.compute ignore { small with Diabetes = false }
    Assert.That(r.Digits.Length, Is.EqualTo 4)
    for d in r.Digits do
        TestContext.Out.WriteLine(sprintf "%s depth %d: NNGP %.1f%%, NTK %.1f%%" d.Activation d.Depth (100.0 * d.NngpAccuracy) (100.0 * d.NtkAccuracy))
        // Measured 97.0–98.0% for Relu/Erf at depths 1–2 with 300 training images (1-nearest-neighbour: ~96%);
        // 95% sits ~1.7 binomial standard errors (√(0.97·0.03/200) = 1.2%) below the lowest, and far above what
        // a broken kernel gives (chance is 10%).
        Assert.That(d.NngpAccuracy, Is.GreaterThan 0.95, sprintf "%s depth %d NNGP" d.Activation d.Depth)
        Assert.That(d.NtkAccuracy, Is.GreaterThan 0.95, sprintf "%s depth %d NTK" d.Activation d.Depth)

[<Test>]
let ``diabetes regression beats predicting the mean and the NTK trajectory starts at the prior`` () =
    let r = DemoCommand.compute ignore { small with Digits = false }
    let d = r.Diabetes.Value
    TestContext.Out.WriteLine(sprintf "baseline %.2f, NNGP %.2f, NTK %.2f" d.BaselineRmse d.NngpRmse d.NtkRmse)
    // Measured with 300 training patients: baseline 81.6, NNGP 57.8, NTK 58.0 (ratio 0.71); linear models reach
    // ~0.7 of the baseline on this data set, so 0.8 leaves room for round-off yet fails an uninformative model.
    Assert.That(d.NngpRmse, Is.LessThan(0.8 * d.BaselineRmse))
    Assert.That(d.NtkRmse, Is.LessThan(0.8 * d.BaselineRmse))
    Assert.That(d.NngpStd, Is.GreaterThan 0.0)
    // At the first (tiny) time the ensemble has barely moved from its zero-mean prior: RMSE ≈ the baseline's.
    Assert.That(snd d.Trajectory[0], Is.EqualTo(d.BaselineRmse).Within(1.0).Percent)
    Assert.That(snd d.Trajectory[d.Trajectory.Length - 1], Is.EqualTo(d.NtkRmse).Within(1.0).Percent)

[<Test>]
let ``nt demo prints its table and writes a well-formed SVG`` () =
    let path = Path.Combine(Path.GetTempPath(), "nt-demo-" + Guid.NewGuid().ToString("N") + ".svg")
    try
        use out = new StringWriter()
        use err = new StringWriter()
        let args = [| "demo"; "--train"; "300"; "--test"; "200"; "--depths"; "1"; "--out"; path |]
        let code = Cli.run args (new StringReader "") out err
        Assert.That(code, Is.EqualTo 0, err.ToString())
        let text = out.ToString()
        Assert.That(text, Does.Contain "NNGP accuracy")
        Assert.That(text, Does.Contain "NTK ensemble, t=inf")
        Assert.That(text, Does.Contain path)
        let doc = XmlDocument()
        doc.Load path
        Assert.That(doc.DocumentElement.LocalName, Is.EqualTo "svg")
        let ns = XmlNamespaceManager(doc.NameTable)
        ns.AddNamespace("s", "http://www.w3.org/2000/svg")
        // Three panels: 4 accuracy lines, 4 RMSE lines, 2 posterior lines.
        Assert.That(doc.SelectNodes("//s:polyline", ns).Count, Is.EqualTo 10)
        Assert.That(doc.SelectNodes("//s:polygon", ns).Count, Is.EqualTo 1)
    finally
        if File.Exists path then File.Delete path

[<Test>]
let ``bad demo options end in one line`` () =
    for args, fragment in [ [| "demo"; "--dataset"; "mnist" |], "--dataset"
                            [| "demo"; "--depths"; "0" |], "--depths"
                            [| "demo"; "--train"; "5000" |], "train" ] do
        use out = new StringWriter()
        use err = new StringWriter()
        let code = Cli.run args (new StringReader "") out err
        Assert.That(code, Is.Not.EqualTo 0, String.Join(" ", args))
        Assert.That(err.ToString(), Does.StartWith "nt: ")
        Assert.That(err.ToString(), Does.Contain fragment)
        Assert.That(err.ToString(), Does.Not.Contain "   at ")
