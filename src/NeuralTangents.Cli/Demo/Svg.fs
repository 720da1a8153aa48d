/// A small SVG line-chart writer (no plotting package that renders SVG is available from this project's package
/// source): axes with ticks, one polyline per series with markers, optional ±band, a legend.
module NeuralTangents.Cli.Demo.Svg

open System
open System.Globalization
open System.Text

/// One line of a chart; Band gives (lower, upper) per point for a shaded interval.
type Series =
    { Label: string
      Colour: string
      Dashed: bool
      Points: (float * float)[]
      Band: (float * float)[] option }

/// One panel: title, axis labels and series.
type Panel =
    { Title: string
      XLabel: string
      YLabel: string
      LogX: bool
      Series: Series list }

let private f (v: float) = v.ToString("0.##", CultureInfo.InvariantCulture)

let private esc (s: string) =
    s.Replace("&", "&amp;").Replace("<", "&lt;").Replace(">", "&gt;").Replace("\"", "&quot;")

/// "Nice" tick values covering [lo, hi] (1, 2, 5 × 10^k steps).
let ticks (lo: float) (hi: float) (count: int) =
    let span = if hi > lo then hi - lo else 1.0
    let raw = span / float (max 1 count)
    let mag = 10.0 ** floor (log10 raw)
    let step = [ 1.0; 2.0; 5.0; 10.0 ] |> List.map ((*) mag) |> List.find (fun s -> s >= raw)
    let first = ceil (lo / step) * step
    [ for i in 0 .. 100 do
        let v = first + float i * step
        if v <= hi + step * 1e-9 then yield Math.Round(v, 12) ]

let private panelSvg (sb: StringBuilder) (x0: float) (y0: float) (w: float) (h: float) (p: Panel) =
    let ml, mr, mt, mb = 60.0, 150.0, 30.0, 45.0
    let pw, ph = w - ml - mr, h - mt - mb
    let tx (v: float) = if p.LogX then log10 (max v 1e-300) else v
    let pts = p.Series |> List.collect (fun s -> List.ofArray s.Points @ (s.Band |> Option.map (fun b -> b |> Array.toList |> List.collect (fun (lo, hi) -> [ (nan, lo); (nan, hi) ])) |> Option.defaultValue []))
    let xs = p.Series |> List.collect (fun s -> s.Points |> Array.map (fst >> tx) |> List.ofArray)
    let ys = pts |> List.map snd |> List.filter Double.IsFinite
    let xmin, xmax = List.min xs, List.max xs
    let ymin0, ymax0 = List.min ys, List.max ys
    let pad = if ymax0 > ymin0 then 0.05 * (ymax0 - ymin0) else 1.0
    let ymin, ymax = ymin0 - pad, ymax0 + pad
    let xspan = if xmax > xmin then xmax - xmin else 1.0
    let sx v = x0 + ml + (tx v - xmin) / xspan * pw
    let sy v = y0 + mt + (ymax - v) / (ymax - ymin) * ph
    let add (s: string) = sb.AppendLine s |> ignore
    add (sprintf "<text x=\"%s\" y=\"%s\" font-size=\"15\" font-weight=\"bold\">%s</text>" (f (x0 + ml)) (f (y0 + 20.0)) (esc p.Title))
    add (sprintf "<rect x=\"%s\" y=\"%s\" width=\"%s\" height=\"%s\" fill=\"none\" stroke=\"#444\"/>" (f (x0 + ml)) (f (y0 + mt)) (f pw) (f ph))
    for v in ticks ymin ymax 5 do
        add (sprintf "<line x1=\"%s\" x2=\"%s\" y1=\"%s\" y2=\"%s\" stroke=\"#ddd\"/>" (f (x0 + ml)) (f (x0 + ml + pw)) (f (sy v)) (f (sy v)))
        add (sprintf "<text x=\"%s\" y=\"%s\" font-size=\"11\" text-anchor=\"end\">%s</text>" (f (x0 + ml - 5.0)) (f (sy v + 4.0)) (v.ToString("G4", CultureInfo.InvariantCulture)))
    let xticks =
        if p.LogX then [ for e in floor xmin .. ceil xmax do if e >= xmin - 1e-9 && e <= xmax + 1e-9 then yield 10.0 ** e ]
        else
            // Integer data (depths, counts) get integer ticks only.
            let integral = p.Series |> List.forall (fun s -> s.Points |> Array.forall (fun (x, _) -> x = Math.Round x))
            ticks xmin xmax 6 |> List.filter (fun v -> not integral || v = Math.Round v)
    for v in xticks do
        add (sprintf "<line x1=\"%s\" x2=\"%s\" y1=\"%s\" y2=\"%s\" stroke=\"#444\"/>" (f (sx v)) (f (sx v)) (f (y0 + mt + ph)) (f (y0 + mt + ph + 5.0)))
        let label =
            if p.LogX && (v >= 1e4 || v < 1e-2) then sprintf "1e%d" (int (Math.Round(log10 v)))
            else v.ToString("G4", CultureInfo.InvariantCulture)
        add (sprintf "<text x=\"%s\" y=\"%s\" font-size=\"11\" text-anchor=\"middle\">%s</text>" (f (sx v)) (f (y0 + mt + ph + 18.0)) label)
    add (sprintf "<text x=\"%s\" y=\"%s\" font-size=\"12\" text-anchor=\"middle\">%s</text>" (f (x0 + ml + pw / 2.0)) (f (y0 + h - 8.0)) (esc p.XLabel))
    add (sprintf "<text transform=\"translate(%s,%s) rotate(-90)\" font-size=\"12\" text-anchor=\"middle\">%s</text>" (f (x0 + 15.0)) (f (y0 + mt + ph / 2.0)) (esc p.YLabel))
    p.Series |> List.iteri (fun i s ->
        match s.Band with
        | Some band when band.Length = s.Points.Length ->
            let upper = Array.map2 (fun (x, _) (_, hi) -> sprintf "%s,%s" (f (sx x)) (f (sy hi))) s.Points band
            let lower = Array.map2 (fun (x, _) (lo, _) -> sprintf "%s,%s" (f (sx x)) (f (sy lo))) s.Points band |> Array.rev
            add (sprintf "<polygon points=\"%s\" fill=\"%s\" fill-opacity=\"0.18\" stroke=\"none\"/>" (String.Join(" ", Array.append upper lower)) s.Colour)
        | _ -> ()
        let line = s.Points |> Array.map (fun (x, y) -> sprintf "%s,%s" (f (sx x)) (f (sy y)))
        let dash = if s.Dashed then " stroke-dasharray=\"6,4\"" else ""
        add (sprintf "<polyline points=\"%s\" fill=\"none\" stroke=\"%s\" stroke-width=\"2\"%s/>" (String.Join(" ", line)) s.Colour dash)
        if s.Points.Length <= 30 then
            for x, y in s.Points do
                add (sprintf "<circle cx=\"%s\" cy=\"%s\" r=\"3\" fill=\"%s\"/>" (f (sx x)) (f (sy y)) s.Colour)
        let ly = y0 + mt + 10.0 + 20.0 * float i
        add (sprintf "<line x1=\"%s\" x2=\"%s\" y1=\"%s\" y2=\"%s\" stroke=\"%s\" stroke-width=\"2\"%s/>" (f (x0 + ml + pw + 10.0)) (f (x0 + ml + pw + 35.0)) (f ly) (f ly) s.Colour dash)
        add (sprintf "<text x=\"%s\" y=\"%s\" font-size=\"12\">%s</text>" (f (x0 + ml + pw + 40.0)) (f (ly + 4.0)) (esc s.Label)))

/// Renders panels side by side into one SVG document.
let render (panelWidth: float) (height: float) (panels: Panel list) =
    if panels.IsEmpty then invalidArg "panels" "at least one panel is needed"
    for p in panels do
        for s in p.Series do
            if s.Points.Length = 0 then invalidArg "panels" (sprintf "series '%s' of panel '%s' has no points" s.Label p.Title)
    let sb = StringBuilder()
    let w = panelWidth * float panels.Length
    sb.AppendLine(sprintf "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"%s\" height=\"%s\" viewBox=\"0 0 %s %s\" font-family=\"sans-serif\">" (f w) (f height) (f w) (f height)) |> ignore
    sb.AppendLine(sprintf "<rect width=\"%s\" height=\"%s\" fill=\"white\"/>" (f w) (f height)) |> ignore
    panels |> List.iteri (fun i p -> panelSvg sb (float i * panelWidth) 0.0 panelWidth height p)
    sb.AppendLine("</svg>") |> ignore
    sb.ToString()
