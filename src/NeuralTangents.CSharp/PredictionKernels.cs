using System.Text.RegularExpressions;
using Microsoft.FSharp.Core;

namespace NeuralTangents.CSharp;

/// <summary>The kernels behind <see cref="Ensemble"/>'s predictions, in the prediction's terms. The core's kernel
/// function names its inputs x1 and x2, which in a prediction are xTrain or xTest depending on the pair (the
/// test–train kernel is kernel(xTest, xTrain)); this class words those errors for the pair at hand, checks that
/// xTest fits xTrain before any kernel, and checks the network on one training input where the prediction needs no
/// kernel at all.</summary>
internal sealed class PredictionKernels
{
    private readonly BatchOptions options;
    private readonly Layer layer;
    private readonly Tensor xTrain;

    internal PredictionKernels(BatchOptions options, Layer layer, Tensor xTrain)
    {
        this.options = options;
        this.layer = layer;
        this.xTrain = xTrain;
    }

    /// <summary>The tiled kernel function (fresh arrays on every call) for the core's predictors.</summary>
    public FSharpFunc<Tensor, FSharpFunc<FSharpOption<Tensor>, FSharpFunc<Get, Kernel>>> Function =>
        FuncConvert.FromFunc<Tensor, FSharpOption<Tensor>, Get, Kernel>(Compute);

    /// <summary>Refuses test inputs that differ from the training inputs in an axis other than the batch axis, naming
    /// xTest (the core's kernel would name its second input, here xTrain).</summary>
    public void CheckTest(Tensor xTest)
    {
        var rank = xTrain.Rank;
        var axis = BatchAxis();
        var sameRank = xTest.Rank == rank;
        if (sameRank && (axis < 0 || axis >= rank))
        {
            return; // the kernel reports the out-of-range batch axis, naming it
        }

        if (!sameRank || !xTest.Shape.Where((_, i) => i != axis).SequenceEqual(xTrain.Shape.Where((_, i) => i != axis)))
        {
            throw new ArgumentException(
                $"xTrain and xTest must agree in all but the batch axis (axis {axis}), got shapes {Format(xTrain.Shape)} " +
                $"for xTrain and {Format(xTest.Shape)} for xTest; give the test inputs the training inputs' features " +
                "(or image size and channels)", "xTest");
        }
    }

    /// <summary>Checks the network and xTrain where the prediction computes no kernel (the training set's own outputs
    /// at t = ∞ are y): neural_tangents computes the train–train kernel even then, so a network that cannot take the
    /// inputs fails there; here the kernel of one training input (1×1) does that check, and a scan the finiteness
    /// check the full kernel would do.</summary>
    public void CheckOnOneTrainingInput()
    {
        var axis = BatchAxis();
        if (axis < 0 || axis >= xTrain.Rank || xTrain.Shape[axis] == 0)
        {
            Compute(xTrain, "xTrain", FSharpOption<Tensor>.None, Get.Nngp); // the kernel's own error, before any work
            return;
        }

        var bad = Array.FindIndex(xTrain.Data, v => !double.IsFinite(v));
        if (bad >= 0)
        {
            throw new ArgumentException(
                $"xTrain has a non-finite value ({xTrain.Data[bad].ToString(System.Globalization.CultureInfo.InvariantCulture)}) at flat index {bad}", "xTrain");
        }

        Compute(First(xTrain, axis), "xTrain", FSharpOption<Tensor>.None, Get.Nngp);
    }

    private Kernel Compute(Tensor x1, FSharpOption<Tensor> x2, Get get) =>
        Compute(x1, ReferenceEquals(x1, xTrain) ? "xTrain" : "xTest", x2, get);

    /// <summary>The tiled kernel; its argument errors name <paramref name="name1"/> for x1, and xTrain for x2 (the
    /// predictors pass xTrain as the second input whenever there is one).</summary>
    private Kernel Compute(Tensor x1, string name1, FSharpOption<Tensor> x2, Get get)
    {
        try
        {
            return Batching.Compute(options, layer, x1, x2, get);
        }
        catch (ArgumentException e) when (e is not ArgumentNullException && e.ParamName is "x1" or "x2")
        {
            var name2 = FSharpOption<Tensor>.get_IsSome(x2) ? "xTrain" : name1;
            var message = Regex.Replace(Boundary.MessageWithoutName(e), @"\bx[12]\b", m => m.Value == "x1" ? name1 : name2);
            throw new ArgumentException(message, e.ParamName == "x1" ? name1 : name2, e);
        }
    }

    private int BatchAxis()
    {
        var axis = RequirementsModule.InputAxes(xTrain.Rank, RequirementsModule.OfLayer(layer)).Item1;
        return axis < 0 ? axis + xTrain.Rank : axis;
    }

    /// <summary>The first input of <paramref name="x"/> along <paramref name="axis"/>, as a batch of one.</summary>
    private static Tensor First(Tensor x, int axis)
    {
        int outer = 1, inner = 1, n = x.Shape[axis];
        for (var i = 0; i < axis; i++)
        {
            outer *= x.Shape[i];
        }

        for (var i = axis + 1; i < x.Rank; i++)
        {
            inner *= x.Shape[i];
        }

        var data = new double[outer * inner];
        for (var o = 0; o < outer; o++)
        {
            Array.Copy(x.Data, o * n * inner, data, o * inner, inner);
        }

        var shape = (int[])x.Shape.Clone();
        shape[axis] = 1;
        return TensorModule.Create(shape, data);
    }

    private static string Format(int[] shape) => "(" + string.Join(", ", shape) + ")";
}
