/// A small SVG line-chart writer (no plotting package that renders SVG is available from this project's package
/// source): axes with ticks, per series a line and/or markers and an optional ±band, a legend with notes.
module NeuralTangents.Cli.Demo.Svg

open System
open System.Globalization
open System.Text

/// How a series is stroked: a line (solid or dashed) through its points, or no line (markers only).
type Stroke =
    | Solid
    | Dashed
    | NoLine

/// The mark drawn on a series' points: a dot, or a square (to set one model family apart from the others).
type Marker =
    | Dot
    | Square

/// One series of a chart; Band gives (lower, upper) per point for a shaded interval.
type Series =
    { Label: string
      Colour: string
      Stroke: Stroke
      /// A mark on every point (drawn for at most 200 points; NoLine series always get them).
      Markers: bool
      /// The shape of those marks.
      Shape: Marker
      Points: (float * float)[]
      Band: (float * float)[] option }

/// One panel: title, axis labels, series, and short notes printed under the legend (one line each).
type Panel =
    { Title: string
      XLabel: string
      YLabel: string
      LogX: bool
      Series: Series list
      Notes: string list }

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

/// A dot (radius r) or a square (side 2.4·r, so both look equally heavy) centred on (cx, cy).
let private mark (shape: Marker) (cx: float) (cy: float) (r: float) (colour: string) =
    match shape with
    | Dot -> sprintf "<circle cx=\"%s\" cy=\"%s\" r=\"%s\" fill=\"%s\"/>" (f cx) (f cy) (f r) colour
    | Square -> sprintf "<rect x=\"%s\" y=\"%s\" width=\"%s\" height=\"%s\" fill=\"%s\"/>" (f (cx - 1.2 * r)) (f (cy - 1.2 * r)) (f (2.4 * r)) (f (2.4 * r)) colour

let private panelSvg (sb: StringBuilder) (x0: float) (y0: float) (w: float) (h: float) (p: Panel) =
    let ml, mr, mt, mb = 60.0, 150.0, 30.0, 45.0
    let pw, ph = w - ml - mr, h - mt - mb
    let tx (v: float) = if p.LogX then log10 (max v 1e-300) else v
    let pts = p.Series |> List.collect (fun s -> List.ofArray s.Points @ (s.Band |> Option.map (fun b -> b |> Array.toList |> List.collect (fun (lo, hi) -> [ (nan, lo); (nan, hi) ])) |> Option.defaultValue []))
    let xs = p.Series |> List.collect (fun s -> s.Points |> Array.map (fst >> tx) |> List.ofArray)
    let ys = pts |> List.map snd |> List.filter Double.IsFinite
    // A single x value (one depth, say) sits in the middle of a unit-wide axis rather than on its left edge.
    let xmin, xmax =
        let lo, hi = List.min xs, List.max xs
        if hi > lo then lo, hi else lo - 0.5, hi + 0.5
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
    let dashAttr (s: Series) = if s.Stroke = Dashed then " stroke-dasharray=\"6,4\"" else ""
    p.Series |> List.iter (fun s ->
        match s.Band with
        | Some band when band.Length = s.Points.Length ->
            let upper = Array.map2 (fun (x, _) (_, hi) -> sprintf "%s,%s" (f (sx x)) (f (sy hi))) s.Points band
            let lower = Array.map2 (fun (x, _) (lo, _) -> sprintf "%s,%s" (f (sx x)) (f (sy lo))) s.Points band |> Array.rev
            add (sprintf "<polygon points=\"%s\" fill=\"%s\" fill-opacity=\"0.18\" stroke=\"none\"/>" (String.Join(" ", Array.append upper lower)) s.Colour)
        | _ -> ()
        if s.Stroke <> NoLine then
            let line = s.Points |> Array.map (fun (x, y) -> sprintf "%s,%s" (f (sx x)) (f (sy y)))
            add (sprintf "<polyline points=\"%s\" fill=\"none\" stroke=\"%s\" stroke-width=\"2\"%s/>" (String.Join(" ", line)) s.Colour (dashAttr s))
        if s.Stroke = NoLine || (s.Markers && s.Points.Length <= 200) then
            let r = if s.Stroke = NoLine then 2.5 else 3.0
            for x, y in s.Points do
                add (mark s.Shape (sx x) (sy y) r s.Colour))
    // Legend (and notes) in the right margin: a swatch per series showing its band, line and marker.
    let lx = x0 + ml + pw + 10.0
    p.Series |> List.iteri (fun i s ->
        let ly = y0 + mt + 10.0 + 20.0 * float i
        if s.Band.IsSome then
            add (sprintf "<rect x=\"%s\" y=\"%s\" width=\"25\" height=\"12\" fill=\"%s\" fill-opacity=\"0.18\"/>" (f lx) (f (ly - 6.0)) s.Colour)
        if s.Stroke <> NoLine then
            add (sprintf "<line x1=\"%s\" x2=\"%s\" y1=\"%s\" y2=\"%s\" stroke=\"%s\" stroke-width=\"2\"%s/>" (f lx) (f (lx + 25.0)) (f ly) (f ly) s.Colour (dashAttr s))
        if s.Stroke = NoLine || s.Markers then
            add (mark s.Shape (lx + 12.5) ly 3.0 s.Colour)
        add (sprintf "<text x=\"%s\" y=\"%s\" font-size=\"12\">%s</text>" (f (lx + 30.0)) (f (ly + 4.0)) (esc s.Label)))
    p.Notes |> List.iteri (fun i note ->
        let ny = y0 + mt + 20.0 + 20.0 * float p.Series.Length + 14.0 * float i
        add (sprintf "<text x=\"%s\" y=\"%s\" font-size=\"10.5\" fill=\"#555\">%s</text>" (f lx) (f ny) (esc note)))

/// Renders panels side by side into one SVG document.
let render (panelWidth: float) (height: float) (panels: Panel list) =
    if panels.IsEmpty then invalidArg "panels" "at least one panel is needed"
    for p in panels do
        for s in p.Series do
            if s.Points.Length = 0 then invalidArg "panels" (sprintf "series '%s' of panel '%s' has no points" s.Label p.Title)
            let finite (x, y) = Double.IsFinite x && Double.IsFinite y && (not p.LogX || x > 0.0)
            let bandFinite = s.Band |> Option.forall (Array.forall (fun (lo, hi) -> Double.IsFinite lo && Double.IsFinite hi))
            if not (Array.forall finite s.Points && bandFinite) then
                invalidArg "panels" (sprintf "series '%s' of panel '%s' has a non-finite value (or x ≤ 0 on a log axis)" s.Label p.Title)
    let sb = StringBuilder()
    let w = panelWidth * float panels.Length
    sb.AppendLine(sprintf "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"%s\" height=\"%s\" viewBox=\"0 0 %s %s\" font-family=\"sans-serif\">" (f w) (f height) (f w) (f height)) |> ignore
    sb.AppendLine(sprintf "<rect width=\"%s\" height=\"%s\" fill=\"white\"/>" (f w) (f height)) |> ignore
    panels |> List.iteri (fun i p -> panelSvg sb (float i * panelWidth) 0.0 panelWidth height p)
    sb.AppendLine("</svg>") |> ignore
    sb.ToString()
