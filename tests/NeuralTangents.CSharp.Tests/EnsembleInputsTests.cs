using Microsoft.FSharp.Collections;
using Microsoft.FSharp.Core;
using NUnit.Framework;
using FPredict = NeuralTangents.Predict;

namespace NeuralTangents.CSharp.Tests;

/// <summary>Ensemble.Predict and Ensemble.PredictNtkGp: errors that name xTrain/xTest (never the kernel's x1/x2),
/// neural_tangents' meaning of a null xTest (the training set's own outputs, y at t = ∞) with the network still
/// checked, and the jagged, float and image overloads against the double[,] ones and the F# core.</summary>
[TestFixture]
public class EnsembleInputsTests
{
    private static readonly Network Net = Stax.Serial(Stax.Dense(8, 1.5, 0.1), Stax.Relu(), Stax.Dense(1, 1.5, 0.1));

    // Multiples of 1/8: exact in float, so the float overloads see the very numbers the double[,] ones do.
    private static readonly double[,] XTrain = { { 1.0, 0.25 }, { -0.375, 0.75 }, { 0.5, -0.5 }, { 0.0, 1.0 } };
    private static readonly double[,] YTrain = { { 1.0 }, { -1.0 }, { 0.5 }, { 0.25 } };
    private static readonly double[,] XTest = { { 0.375, 0.375 }, { -1.0, 0.125 } };
    private static readonly double[] Times = { 0.5, 3.0, double.PositiveInfinity };

    // ---- 1. errors name xTrain / xTest ------------------------------------------------------------------------

    [Test]
    public void TestInputsWithOtherFeatures_AreRefusedAsXTest_NamingXTrainAndXTest()
    {
        var wrong = new double[3, 3];
        var cases = new (string Entry, TestDelegate Call)[]
        {
            ("Predict", () => Ensemble.Predict(Net, XTrain, YTrain, wrong)),
            ("Predict at times", () => Ensemble.Predict(Net, XTrain, YTrain, wrong, times: Times)),
            ("Predict, 1-D targets", () => Ensemble.Predict(Net, XTrain, new[] { 1.0, 0.0, 0.0, 1.0 }, wrong)),
            ("PredictNtkGp", () => Ensemble.PredictNtkGp(Net, XTrain, YTrain, wrong, computeCov: true)),
            ("Predict, jagged", () => Ensemble.Predict(Net, Rows(XTrain), YTrain, new[] { new double[3] })),
            ("PredictNtkGp, float", () => Ensemble.PredictNtkGp(Net, Floats(XTrain), YTrain, new float[1, 5])),
        };
        foreach (var (entry, call) in cases)
        {
            var e = Assert.Throws<ArgumentException>(call, entry)!;
            Assert.That(e.ParamName, Is.EqualTo("xTest"), entry);
            Assert.That(e.Message, Does.Contain("xTrain and xTest must agree in all but the batch axis"), entry);
            Assert.That(e.Message, Does.Not.Match(@"\bx[12]\b"), entry);
        }
    }

    [Test]
    public void ImagesOfAnotherSize_AreRefusedAsXTest()
    {
        var e = Assert.Throws<ArgumentException>(() =>
            Ensemble.Predict(Cnn, Images(4, 4, 2, 1), new double[4, 1], Images(2, 5, 4, 2)))!;
        Assert.That(e.ParamName, Is.EqualTo("xTest"));
        Assert.That(e.Message, Does.Contain("(4, 4, 2, 2) for xTrain and (2, 5, 4, 2) for xTest"));
    }

    [Test]
    public void NonFiniteInputs_AreReportedAgainstTheArgumentThatHoldsThem()
    {
        var badTest = (double[,])XTest.Clone();
        badTest[1, 0] = double.NaN;
        var badTrain = (double[,])XTrain.Clone();
        badTrain[2, 1] = double.PositiveInfinity;
        var cases = new (string Entry, string Param, TestDelegate Call)[]
        {
            ("Predict, NaN in xTest", "xTest", () => Ensemble.Predict(Net, XTrain, YTrain, badTest)),
            ("PredictNtkGp, NaN in xTest", "xTest", () => Ensemble.PredictNtkGp(Net, XTrain, YTrain, badTest)),
            ("Predict, ∞ in xTrain", "xTrain", () => Ensemble.Predict(Net, badTrain, YTrain, XTest, times: Times)),
            ("PredictNtkGp, ∞ in xTrain", "xTrain", () => Ensemble.PredictNtkGp(Net, badTrain, YTrain, XTest)),
            // The t = ∞ train-set shortcut computes no kernel but still checks the inputs.
            ("Predict, ∞ in xTrain, no xTest", "xTrain", () => Ensemble.Predict(Net, badTrain, YTrain)),
            ("PredictNtkGp, ∞ in xTrain, no xTest", "xTrain", () => Ensemble.PredictNtkGp(Net, badTrain, YTrain)),
        };
        foreach (var (entry, param, call) in cases)
        {
            var e = Assert.Throws<ArgumentException>(call, entry)!;
            Assert.That(e.ParamName, Is.EqualTo(param), entry);
            Assert.That(e.Message, Does.StartWith(param + " has a non-finite value"), entry);
            Assert.That(e.Message, Does.Not.Match(@"\bx[12]\b"), entry);
        }
    }

    // ---- 2. a null xTest --------------------------------------------------------------------------------------

    [Test]
    public void NullXTest_AtInfiniteTime_IsYWithZeroCovariance_WhateverTheRidge_UnlikePassingXTrain()
    {
        // neural_tangents' x_test=None: the train set's outputs (I − e^{−ηK̃t})·y, which are y at t = ∞.
        var p = Ensemble.Predict(Net, XTrain, YTrain, null, computeCov: true, diagReg: 0.5);
        var gp = Ensemble.PredictNtkGp(Net, XTrain, YTrain, null, computeCov: true, diagReg: 0.5);
        foreach (var (what, g) in new[] { ("nngp", p.Nngp[0]), ("ntk", p.Ntk[0]), ("ntkgp", gp) })
        {
            Assert.That(g.Mean, Is.EqualTo(YTrain), what);
            Assert.That(g.Covariance, Is.EqualTo(new double[4, 4]), what);
        }

        // Passing xTrain is the regularised posterior Θ·(Θ + λI)⁻¹·y, here computed by Predictors from the
        // network's kernels: it differs from y by the ridge's shrinkage (λ = 0.5 × mean diagonal is no round-off).
        var ntk = Net.Kernel(XTrain, null, KernelOutputs.Ntk).Ntk!;
        var expected = Predictors.NtkGpPosterior(ntk, YTrain, ntk, diagReg: 0.5).Mean;
        var onTrain = Ensemble.PredictNtkGp(Net, XTrain, YTrain, XTrain, diagReg: 0.5).Mean;
        TestUtil.AssertClose("xTest = xTrain", 1e-12, expected, onTrain);
        Assert.That(TestUtil.RelErr(YTrain, onTrain), Is.GreaterThan(0.05));
    }

    [Test]
    public void NullXTest_AtInfiniteTime_StillChecksTheNetwork()
    {
        // A Conv needs spatial axes: vectors fail with an explicit xTest, and so without one.
        var conv = Stax.Serial(Stax.Conv(2, new[] { 3, 3 }), Stax.Flatten(), Stax.Dense(1));
        var withTest = Assert.Throws<InvalidOperationException>(() => Ensemble.Predict(conv, XTrain, YTrain, XTest))!;
        var cases = new (string Entry, TestDelegate Call)[]
        {
            ("Predict", () => Ensemble.Predict(conv, XTrain, YTrain)),
            ("Predict at t = ∞ in times", () => Ensemble.Predict(conv, XTrain, YTrain, times: new[] { double.PositiveInfinity })),
            ("PredictNtkGp", () => Ensemble.PredictNtkGp(conv, XTrain, YTrain)),
        };
        foreach (var (entry, call) in cases)
        {
            var e = Assert.Throws<InvalidOperationException>(call, entry)!;
            Assert.That(e.Message, Is.EqualTo(withTest.Message), entry);
        }
    }

    [Test]
    public void NullXTest_AtFiniteTimes_IsTheTrainSetTrajectory()
    {
        // Independent of the ensemble code: the train-set mean (I − e^{−η·Θ̃·t})·y of gradient flow, which
        // Predictors.GradientDescentMse gives for one linearised network started at f₀ = 0 (the ensemble's mean
        // initial output), Θ̃ = Θ + λ·mean diag(Θ)·I.
        var ntk = Net.Kernel(XTrain, null, KernelOutputs.Ntk).Ntk!;
        var expected = Predictors.GradientDescentMse(ntk, YTrain, ntk, new[] { 3.0 }, diagReg: 0.5).Train[0];
        var p = Ensemble.Predict(Net, XTrain, YTrain, null, times: new[] { 3.0 }, diagReg: 0.5);
        TestUtil.AssertClose("train-set NTK mean at t = 3", 1e-10, expected, p.Ntk[0].Mean);
    }

    // ---- 3. jagged, float and image inputs ----------------------------------------------------------------------

    [Test]
    public void JaggedAndFloatInputs_GiveTheDoubleMatrixAnswers()
    {
        // The conversions are exact (the values are multiples of 1/8), so the answers are the same numbers.
        var expected = Ensemble.Predict(Net, XTrain, YTrain, XTest, Times, computeCov: true, diagReg: 1e-3);
        var jagged = Ensemble.Predict(Net, Rows(XTrain), YTrain, Rows(XTest), Times, computeCov: true, diagReg: 1e-3);
        var floats = Ensemble.Predict(Net, Floats(XTrain), YTrain, Floats(XTest), Times, computeCov: true, diagReg: 1e-3);
        var y1 = new[] { 1.0, -1.0, 0.5, 0.25 };
        var jagged1 = Ensemble.Predict(Net, Rows(XTrain), y1, Rows(XTest), Times, computeCov: true, diagReg: 1e-3);
        var floats1 = Ensemble.Predict(Net, Floats(XTrain), y1, Floats(XTest), Times, computeCov: true, diagReg: 1e-3);
        foreach (var (what, got) in new[] { ("jagged", jagged), ("float", floats), ("jagged, 1-D y", jagged1), ("float, 1-D y", floats1) })
        {
            for (var i = 0; i < Times.Length; i++)
            {
                Assert.That(got.Nngp[i].Mean, Is.EqualTo(expected.Nngp[i].Mean), $"{what} nngp mean, t = {Times[i]}");
                Assert.That(got.Ntk[i].Mean, Is.EqualTo(expected.Ntk[i].Mean), $"{what} ntk mean, t = {Times[i]}");
                Assert.That(got.Ntk[i].Covariance, Is.EqualTo(expected.Ntk[i].Covariance), $"{what} ntk cov, t = {Times[i]}");
            }
        }

        var gp = Ensemble.PredictNtkGp(Net, XTrain, YTrain, XTest, computeCov: true, diagReg: 1e-3);
        foreach (var (what, got) in new[]
                 {
                     ("jagged", Ensemble.PredictNtkGp(Net, Rows(XTrain), YTrain, Rows(XTest), computeCov: true, diagReg: 1e-3)),
                     ("float", Ensemble.PredictNtkGp(Net, Floats(XTrain), YTrain, Floats(XTest), computeCov: true, diagReg: 1e-3)),
                     ("1-D y", Ensemble.PredictNtkGp(Net, XTrain, y1, XTest, computeCov: true, diagReg: 1e-3)),
                 })
        {
            Assert.That(got.Mean, Is.EqualTo(gp.Mean), what);
            Assert.That(got.Covariance, Is.EqualTo(gp.Covariance), what);
        }
    }

    [Test]
    public void JaggedAndFloatOverloads_CheckTheirArguments()
    {
        Assert.That(() => Ensemble.Predict(Net, (double[][])null!, YTrain),
            Throws.TypeOf<ArgumentNullException>().With.Property("ParamName").EqualTo("xTrain"));
        Assert.That(() => Ensemble.Predict(Net, Rows(XTrain), YTrain, new[] { new[] { 1.0, 2.0 }, null! }),
            Throws.TypeOf<ArgumentNullException>().With.Property("ParamName").EqualTo("xTest"));
        Assert.That(() => Ensemble.PredictNtkGp(Net, new[] { new[] { 1.0, 2.0 }, new[] { 1.0 } }, YTrain),
            Throws.TypeOf<ArgumentException>().With.Property("ParamName").EqualTo("xTrain"));
        Assert.That(() => Ensemble.PredictNtkGp(Net, (float[,])null!, YTrain),
            Throws.TypeOf<ArgumentNullException>().With.Property("ParamName").EqualTo("xTrain"));
        Assert.That(() => Ensemble.Predict(Net, (double[,,,])null!, YTrain),
            Throws.TypeOf<ArgumentNullException>().With.Property("ParamName").EqualTo("xTrain"));
        Assert.That(() => Ensemble.PredictNtkGp(Net, XTrain, (double[])null!),
            Throws.TypeOf<ArgumentNullException>().With.Property("ParamName").EqualTo("yTrain"));
    }

    private static readonly Network Cnn = Stax.Serial(
        Stax.Conv(4, new[] { 2, 2 }, padding: PaddingMode.Same, wStd: 1.5, bStd: 0.1), Stax.Relu(),
        Stax.Flatten(), Stax.Dense(1, 1.5, 0.1));

    [Test]
    public void Images_AtFiniteAndInfiniteTimes_EqualTheCoresEnsembleOnUntiledKernels()
    {
        var xTrain = Images(5, 4, 3, 2);
        var xTest = Images(2, 4, 3, 7);
        double[,] y = { { 1.0, 0.0 }, { 0.0, 1.0 }, { -0.5, 0.5 }, { 0.25, -1.0 }, { 0.0, 0.5 } };
        var p = Ensemble.Predict(Cnn, xTrain, y, xTest, Times, computeCov: true, learningRate: 0.5, diagReg: 1e-3);

        // The F# core's gradientDescentMseEnsemble called directly, on the untiled KernelFn.compute: another kernel
        // path (the façade tiles) and no façade code. Tiling reorders sums only, so agreement is to round-off of
        // the solves (condition number of the 5×5 kernels ≲ 1e3 at λ = 1e-3): 1e-10.
        var layer = Cnn.ToFSharp();
        var kernelFn = FuncConvert.FromFunc<Tensor, FSharpOption<Tensor>, Get, Kernel>(
            (a, b, g) => KernelFn.Compute(layer, a, b, g));
        var predict = FPredict.GradientDescentMseEnsemble(kernelFn, TensorModule.OfArray4D(xTrain),
            TensorModule.OfArray2D(y), 0.5, 1e-3, false);
        var test = FSharpOption<Tensor>.Some(TensorModule.OfArray4D(xTest));
        var finite = FSharpFunc<FSharpOption<double[]>, FSharpOption<Tensor>>.InvokeFast(
            predict, FSharpOption<double[]>.Some(new[] { 0.5, 3.0 }), test, Get.Both, true);
        var infinite = FSharpFunc<FSharpOption<double[]>, FSharpOption<Tensor>>.InvokeFast(
            predict, FSharpOption<double[]>.None, test, Get.Both, true);
        foreach (var (kind, got) in new[] { (PredictGet.Nngp, p.Nngp), (PredictGet.Ntk, p.Ntk) })
        {
            for (var s = 0; s < 2; s++)
            {
                TestUtil.AssertClose($"{kind} mean at t = {Times[s]}", 1e-10, Slice(finite[kind].Mean, s), got[s].Mean);
                TestUtil.AssertClose($"{kind} cov at t = {Times[s]}", 1e-10, Slice(finite[kind].Covariance.Value, s), got[s].Covariance!);
            }

            TestUtil.AssertClose($"{kind} mean at ∞", 1e-10, TensorModule.ToArray2D(infinite[kind].Mean), got[2].Mean);
            TestUtil.AssertClose($"{kind} cov at ∞", 1e-10, TensorModule.ToArray2D(infinite[kind].Covariance.Value), got[2].Covariance!);
        }

        // 1-D targets are the (N, 1) column.
        var y1 = new[] { 1.0, 0.0, -0.5, 0.25, 0.0 };
        var p1 = Ensemble.Predict(Cnn, xTrain, y1, xTest, new[] { 3.0 }, diagReg: 1e-3, learningRate: 0.5);
        var column = Ensemble.Predict(Cnn, xTrain, Column(y1), xTest, new[] { 3.0 }, diagReg: 1e-3, learningRate: 0.5);
        Assert.That(p1.Ntk[0].Mean, Is.EqualTo(column.Ntk[0].Mean));
    }

    [Test]
    public void Images_NtkGp_IsThePosteriorOfTheNetworksImageKernels_AndNullXTestIsY()
    {
        var xTrain = Images(5, 4, 3, 2);
        var xTest = Images(2, 4, 3, 7);
        double[,] y = { { 1.0 }, { 0.0 }, { -0.5 }, { 0.25 }, { 0.5 } };
        var gp = Ensemble.PredictNtkGp(Cnn, xTrain, y, xTest, computeCov: true, diagReg: 1e-3);
        var expected = Predictors.NtkGpPosterior(Cnn.Kernel(xTrain, null, KernelOutputs.Ntk).Ntk!, y,
            Cnn.Kernel(xTest, xTrain, KernelOutputs.Ntk).Ntk!, Cnn.Kernel(xTest, null, KernelOutputs.Ntk).Ntk!,
            diagReg: 1e-3);
        TestUtil.AssertClose("mean", 1e-10, expected.Mean, gp.Mean);
        TestUtil.AssertClose("covariance", 1e-10, expected.Covariance!, gp.Covariance!);
        var onTrain = Ensemble.PredictNtkGp(Cnn, xTrain, new[] { 1.0, 0.0, -0.5, 0.25, 0.5 }, null, computeCov: true);
        Assert.That(onTrain.Mean, Is.EqualTo(y));
        Assert.That(onTrain.Covariance, Is.EqualTo(new double[5, 5]));
    }

    private static double[][] Rows(double[,] x) =>
        Enumerable.Range(0, x.GetLength(0)).Select(i => Enumerable.Range(0, x.GetLength(1)).Select(j => x[i, j]).ToArray()).ToArray();

    private static float[,] Floats(double[,] x)
    {
        var f = new float[x.GetLength(0), x.GetLength(1)];
        for (var i = 0; i < x.GetLength(0); i++)
        {
            for (var j = 0; j < x.GetLength(1); j++)
            {
                f[i, j] = (float)x[i, j];
            }
        }

        return f;
    }

    private static double[,] Column(double[] y)
    {
        var m = new double[y.Length, 1];
        for (var i = 0; i < y.Length; i++)
        {
            m[i, 0] = y[i];
        }

        return m;
    }

    /// <summary>Deterministic NHWC images with entries in [−1, 1].</summary>
    private static double[,,,] Images(int n, int h, int w, int seed)
    {
        var x = new double[n, h, w, 2];
        var r = new Random(seed);
        for (var i = 0; i < n; i++)
            for (var a = 0; a < h; a++)
                for (var b = 0; b < w; b++)
                    for (var c = 0; c < 2; c++)
                        x[i, a, b, c] = (2 * r.NextDouble()) - 1;
        return x;
    }

    private static double[,] Slice(Tensor t, int s)
    {
        int rows = t.Shape[1], cols = t.Shape[2];
        var m = new double[rows, cols];
        for (var i = 0; i < rows; i++)
            for (var j = 0; j < cols; j++)
                m[i, j] = t.Data[((s * rows) + i) * cols + j];
        return m;
    }
}
