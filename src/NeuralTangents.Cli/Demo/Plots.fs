/// <summary>The demo's figures, drawn with ScottPlot 5 (SkiaSharp underneath) and written as PNG and SVG: lines,
/// markers, ±σ bands, log-scaled time axes and kernel heatmaps.</summary>
module NeuralTangents.Cli.Demo.Plots

open System
open System.Globalization
open System.IO
open ScottPlot

/// Figure size in pixels.
let width, height = 720, 460

/// The palette of the figures (matplotlib's first colours, so the figures read like neural_tangents' notebooks).
let palette = [| "#1f77b4"; "#d62728"; "#2ca02c"; "#ff7f0e"; "#9467bd"; "#8c564b"; "#7f7f7f" |]

let colour (hex: string) = Color.FromHex hex

/// A new figure with its title and axis labels.
let figure (title: string) (xLabel: string) (yLabel: string) =
    let p = new Plot()
    p.Title(title)
    p.XLabel(xLabel)
    p.YLabel(yLabel)
    p

/// A line through the points (no markers unless asked), in a colour, optionally dashed.
let line (p: Plot) (label: string) (hex: string) (dashed: bool) (markers: bool) (xs: float[]) (ys: float[]) =
    let s = p.Add.ScatterLine(xs, ys, Nullable(colour hex))
    s.LegendText <- label
    s.LineWidth <- 2.0f
    if dashed then s.LinePattern <- LinePattern.Dashed
    if markers then
        s.MarkerShape <- MarkerShape.FilledCircle
        s.MarkerSize <- 6.0f
    s

/// Markers without a line.
let points (p: Plot) (label: string) (hex: string) (shape: MarkerShape) (size: float32) (xs: float[]) (ys: float[]) =
    let m = p.Add.Markers(xs, ys, shape, size, Nullable(colour hex))
    m.LegendText <- label
    m

/// A shaded band between lower and upper, translucent.
let band (p: Plot) (label: string) (hex: string) (xs: float[]) (lower: float[]) (upper: float[]) =
    let f = p.Add.FillY(xs, lower, upper)
    f.FillColor <- (colour hex).WithAlpha(0.2)
    f.LineWidth <- 0.0f
    f.LegendText <- label
    f

/// A horizontal reference level.
let level (p: Plot) (label: string) (hex: string) (y: float) =
    let h = p.Add.HorizontalLine(y, 1.5f, Nullable(colour hex), LinePattern.Dashed)
    h.LegendText <- label
    h

/// Shows the legend in a corner of the plot area.
let legend (p: Plot) (corner: Alignment) = p.ShowLegend(corner) |> ignore

/// Short notes in a corner of the plot area.
let note (p: Plot) (text: string) =
    let a = p.Add.Annotation(text, Alignment.LowerLeft)
    a.LabelFontSize <- 11.0f
    a.LabelBackgroundColor <- Colors.White.WithAlpha(0.85)
    a.LabelBorderColor <- Colors.Gray
    a

/// Marks the x axis (or y axis) as log10 of the data: the caller plots log10 values; ticks then read as the data's
/// own values at each decade, with minor ticks at 2..9.
let private logTicks () =
    let tg = TickGenerators.NumericAutomatic()
    tg.IntegerTicksOnly <- true
    tg.LabelFormatter <- Func<float, string>(fun v -> (10.0 ** v).ToString("G4", CultureInfo.InvariantCulture))
    tg.MinorTickGenerator <- TickGenerators.LogMinorTickGenerator()
    tg

let logX (p: Plot) = p.Axes.Bottom.TickGenerator <- logTicks ()
let logY (p: Plot) = p.Axes.Left.TickGenerator <- logTicks ()

/// A heatmap of a matrix, entry (i, j) at x = j, y = i (row 0 at the bottom, like the y axis), with a colour bar.
let heatmap (p: Plot) (m: float[,]) =
    let h = p.Add.Heatmap(m)
    h.FlipVertically <- true
    h.Colormap <- Colormaps.Viridis()
    p.Add.ColorBar(h) |> ignore
    h

/// The path of one figure: <c>{stem}-{name}.{ext}</c> next to the stem.
let pathOf (stem: string) (name: string) (ext: string) = (stem + "-" + name + "." + ext)

/// The stem of the figures' paths from the user's --out: its extension (.svg, .png) is dropped.
let stemOf (out: string) =
    let ext = Path.GetExtension out
    if ext.Equals(".svg", StringComparison.OrdinalIgnoreCase) || ext.Equals(".png", StringComparison.OrdinalIgnoreCase)
    then out[.. out.Length - ext.Length - 1]
    else out

/// Skia's SVG backend cannot draw dash patterns (it prints "Unsupported path effect" on stderr for each and draws
/// the line solid): the SVG copy gets solid lines on purpose, after the PNG has kept its dashes.
let private solidLines (p: Plot) =
    for pl in p.GetPlottables() do
        match pl with
        | :? Plottables.Scatter as s -> s.LinePattern <- LinePattern.Solid
        | :? Plottables.HorizontalLine as h -> h.LinePattern <- LinePattern.Solid
        | _ -> ()

/// Writes the figure as {stem}-{name}.png and .svg (each to a temporary file renamed into place, so an existing
/// figure is never left half-written) and returns their full paths.
let save (stem: string) (name: string) (p: Plot) =
    [ for ext in [ "png"; "svg" ] do
        let path = pathOf stem name ext
        let tmp = $"{path}.tmp-{string Environment.ProcessId}"
        try
            try
                if ext = "png" then p.SavePng(tmp, width, height) |> ignore
                else
                    solidLines p
                    p.SaveSvg(tmp, width, height) |> ignore
                File.Move(tmp, path, true)
            finally
                if File.Exists tmp then File.Delete tmp
        with
        | :? IOException as e -> NeuralTangents.Cli.CliErrors.fail $"cannot write the plot {path}: {e.Message}"
        | :? UnauthorizedAccessException as e -> NeuralTangents.Cli.CliErrors.fail $"cannot write the plot {path}: {e.Message}"
        yield Path.GetFullPath path ]
