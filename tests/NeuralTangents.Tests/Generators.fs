/// FsCheck generators: random architectures that are valid infinite networks (with the layout of the inputs they
/// take), inputs with special rows, arbitrary layer trees for the JSON codec, and finite inputs.
module NeuralTangents.Tests.Generators

open FsCheck
open FsCheck.FSharp
open NeuralTangents

let private choose (lo: float) (hi: float) = Gen.choose (0, 1000) |> Gen.map (fun i -> lo + (hi - lo) * float i / 1000.0)

let private bias = Gen.oneof [ Gen.constant None; choose 0.0 0.5 |> Gen.map Some ]

/// Dense in the given parameterization, moderate W_std so deep products stay O(1).
let denseIn (p: Parameterization) (outDim: int) =
    gen {
        let! w = choose 0.5 1.6
        let! b = bias
        let! s1 = Gen.choose (1, 3)
        return { Stax.denseDefaults outDim with WStd = w; BStd = b; Parameterization = p; S = (1, s1) }
    }

/// Dense in either parameterization.
let dense (outDim: int) =
    Gen.elements [ Parameterization.Ntk; Parameterization.Standard ] |> Gen.bind (fun p -> denseIn p outDim)

/// Activations whose kernels are defined for Gaussian inputs.
let activation =
    Gen.oneof
        [ Gen.constant Stax.relu
          choose -1.0 1.0 |> Gen.map Stax.leakyRelu
          Gen.map2 Stax.abRelu (choose -1.0 1.0) (choose -1.0 1.0)
          Gen.constant Stax.abs
          Gen.map3 Stax.erf (choose 0.5 1.5) (choose 0.3 1.5) (choose -0.3 0.3)
          Gen.constant (Stax.gelu false)
          Gen.map3 Stax.sin (choose 0.5 1.5) (choose 0.3 1.2) (choose -1.0 1.0)
          Gen.choose (0, 3) |> Gen.map Stax.monomial
          Gen.map2 Stax.exp (choose 0.5 1.2) (choose -0.4 0.4)
          Gen.map2 Stax.gaussian (choose 0.5 1.5) (choose -1.0 -0.1)
          Gen.map3 Stax.expNormalized (choose 0.2 1.5) (choose -1.0 0.0) (Gen.elements [ false; true ])
          choose 0.1 1.0 |> Gen.map Stax.rbf
          Gen.constant Stax.sign
          Gen.constant Stax.gabor
          // Degrees ≤ 2 (like the polynomial's): stacked degree-3 maps grow as c^(3^depth) and overflow.
          Gen.choose (0, 2) |> Gen.map Stax.hermite
          Gen.choose (0, 2) |> Gen.map Stax.rectifiedMonomial
          // ElementwiseNumerical is left out: neural_tangents' quadrature conditions on the first input, so its
          // kernel is symmetric only to the quadrature error (ActivationNumericalTests checks that bound).
          Gen.listOfLength 3 (choose -1.0 1.0) |> Gen.map Stax.polynomial ]

/// The layout of a network's inputs, as its layers state it.
type InputLayout =
    { /// Sizes of the spatial axes between batch and channels: [] for vectors (N, C), [H] for (N, H, C), [H; W] for
      /// (N, H, W, C).
      Spatial: int list
      /// Channel (feature) count C.
      Channels: int
      /// batch_axis and channel_axis of the Dense layers before the first Flatten: (0, −1), or (1, 0) for vectors
      /// stored (C, N).
      Axes: int * int }

/// A random valid network and the layout of the inputs it takes.
type NetworkCase = { Net: Layer; Layout: InputLayout }

/// Where a generated network stands: the kernel is Gaussian (after an affine layer), has been through a Flatten
/// (channel axis 1 from then on, neural_tangents' layout after Flatten), and the axes later Dense layers state.
type private At = { Gaussian: bool; Flattened: bool; Axes: int * int }

/// Hidden width at block boundaries; divisible by every s[1] drawn (1, 2, 3), so that branches in either
/// parameterization reach equal finite widths (FanInSum and FanInProd need them).
let private width = 60

/// A Dense layer whose finite output width is `w`, in a random parameterization: "ntk" (out_dim = w), or "standard"
/// with s = (s0, s1) ≠ (1, 1) in general (out_dim·s1 = w).
let private denseTo (at: At) (w: int) (wStd: float * float) =
    gen {
        let! std = Gen.elements [ false; true ]
        let! s0 = Gen.choose (1, 3)
        let! s1 = Gen.elements ([ 1; 2; 3 ] |> List.filter (fun s -> w % s = 0))
        let! wStd = choose (fst wStd) (snd wStd)
        let! b = bias
        let ba, ca = at.Axes
        let spec = { Stax.denseDefaults w with WStd = wStd; BStd = b; BatchAxis = ba; ChannelAxis = ca }
        return
            Dense(
                if std then { spec with OutDim = w / s1; Parameterization = Parameterization.Standard; S = (s0, s1) }
                else spec),
            { at with Gaussian = true }
    }

let private hidden (at: At) = denseTo at width (0.5, 1.6)

/// Flatten from where the network stands (the inputs' batch axis before any Flatten; then the axes become the
/// defaults, batch first and channels last).
let private flattenAt (at: At) =
    Flatten { BatchAxis = (if at.Flattened then 0 else fst at.Axes); BatchAxisOut = 0 },
    { Gaussian = false; Flattened = true; Axes = (0, -1) }

/// A block maps a Gaussian kernel of width 60 to a Gaussian kernel of width 60 (it ends in a Dense layer).
let rec private block (at: At) (size: int) : Gen<Layer * At> =
    let plain =
        gen {
            let! act = activation
            let! d, at' = hidden at
            return Serial [ act; d ], at'
        }
    if size <= 0 then plain
    else
        Gen.oneof
            [ yield plain
              // residual: x + Dense(act(x)); the Identity branch passes the input through.
              yield gen {
                  let! act = activation
                  let! d, at' = hidden at
                  return Serial [ FanOut 2; Parallel [ Serial [ act; d ]; Identity ]; FanInSum ], at'
              }
              // FanOut(k), k = 3 or 4: a sum of k branches, W_std scaled by 1/√k so the variance stays O(1).
              yield gen {
                  let! k = Gen.choose (3, 4)
                  let lo, hi = 0.5 / sqrt (float k), 1.4 / sqrt (float k)
                  let! branches =
                      Gen.listOfLength k (gen {
                          let! act = activation
                          let! d, _ = denseTo at width (lo, hi)
                          return Serial [ act; d ] })
                  return Serial [ FanOut k; Parallel branches; FanInSum ], { at with Gaussian = true }
              }
              yield gen {
                  let! a1 = activation
                  let! a2 = activation
                  let! l1, _ = hidden at
                  let! l2, _ = hidden at
                  let! l3, at' = hidden at
                  return Serial [ FanOut 2; Parallel [ Serial [ a1; l1 ]; Serial [ a2; l2 ] ]; FanInProd; l3 ], at'
              }
              // concatenation of unequal widths 30 and 90 (the kernel is their width-weighted mean)
              yield gen {
                  let! a = activation
                  let! l1, _ = denseTo at 30 (0.5, 1.6)
                  let! l2, _ = denseTo at 90 (0.5, 1.6)
                  let! l3, at' = hidden at
                  return Serial [ FanOut 2; Parallel [ l1; Serial [ a; l2 ] ]; FanInConcat(snd at.Axes); l3 ], at'
              }
              // Flatten inside the branches of a sum: each branch flattens, then its own Dense.
              if not at.Flattened then
                  yield gen {
                      let! a = activation
                      let fl, atF = flattenAt at
                      let! d1, _ = denseTo atF width (0.4, 1.1)
                      let! d2, at' = denseTo atF width (0.4, 1.1)
                      return Serial [ FanOut 2; Parallel [ Serial [ a; fl; d1 ]; Serial [ fl; d2 ] ]; FanInSum ], at'
                  }
              // Dropout in test mode (the identity) and LayerNorm over the channel axis (the kernel divided by
              // √((eps + v₁)(eps + v₂)), a congruence by a positive diagonal: symmetry and PSD hold), then act → Dense.
              yield gen {
                  let! rate = choose 0.3 1.0
                  let! eps = Gen.elements [ 1e-12; 1e-3; 0.5 ]
                  let! act = activation
                  let! d, at' = hidden at
                  let ba, ca = at.Axes
                  return Serial [ Stax.dropout rate DropoutMode.Test; Stax.layerNorm [ ca ] eps ba ca; act; d ], at'
              }
              // DotGeneral with a scalar constant c (no contracted or batch axes): x·c keeps the layout, the kernel
              // gains c² — a positive scaling, so symmetry, PSD and homogeneity hold. (A constant contracting a
              // spatial axis moves the channel or batch axis, which the later layers' fixed axes do not follow; the
              // channel axis itself cannot be contracted in a kernel.)
              yield gen {
                  let! c = choose 0.5 1.5
                  let! act = activation
                  let! d, at' = hidden at
                  let ba, ca = at.Axes
                  return Serial [ Stax.dotGeneral None (Some(Tensor.create [||] [| c |])) (([], []), ([], [])) ba ca; act; d ], at'
              }
              yield gen {
                  let! b1, at1 = block at (size / 2)
                  let! b2, at2 = block at1 (size / 2)
                  return Serial [ b1; b2 ], at2
              } ]

/// A layout: vectors (N, C) in either axis order, or (N, H, C) / (N, H, W, C) with small spatial sizes.
let layout : Gen<InputLayout> =
    gen {
        let! c = Gen.choose (2, 5)
        let! rank = Gen.frequency [ 3, Gen.constant 2; 1, Gen.constant 3; 1, Gen.constant 4 ]
        let! spatial = Gen.listOfLength (rank - 2) (Gen.choose (1, 3))
        let! axes = if rank = 2 then Gen.elements [ (0, -1); (1, 0) ] else Gen.constant (0, -1)
        return { Spatial = spatial; Channels = c; Axes = axes }
    }

/// A valid network for inputs of the given layout: Dense, 0–3 blocks, Dense(1) readout; a Flatten before the
/// readout when the inputs have spatial axes (and sometimes for vectors, where it passes the kernel through), so the
/// output kernel is (N1, N2).
let networkFor (l: InputLayout) : Gen<Layer> =
    Gen.sized (fun size ->
        let rec blocks (k: int) (at: At) (acc: Layer list) =
            if k = 0 then Gen.constant (List.rev acc, at)
            else
                gen {
                    let! b, at' = block at (min size 4)
                    return! blocks (k - 1) at' (b :: acc)
                }
        gen {
            let start = { Gaussian = false; Flattened = false; Axes = l.Axes }
            let! first, at0 = hidden start
            // With spatial axes (channels last): sometimes ImageResize to new sizes 1–4 (linear or nearest, with or
            // without antialias) and an Index taking every other position of the last spatial axis; both are linear
            // maps of the positions, so the kernel stays symmetric and PSD.
            let! spatialOps =
                if l.Spatial.IsEmpty then Gen.constant []
                else
                    gen {
                        let! resize = Gen.elements [ false; true ]
                        let! sizes = Gen.listOfLength l.Spatial.Length (Gen.choose (1, 4))
                        let! m = Gen.elements [ ResizeMethod.Linear; ResizeMethod.Nearest ]
                        let! aa = Gen.elements [ false; true ]
                        let! index = Gen.elements [ false; true ]
                        let! start = Gen.elements [ None; Some 0 ]
                        return
                            [ if resize then yield Stax.imageResize ([ -1 ] @ sizes @ [ -1 ]) m aa 0 -1
                              if index then yield Stax.index [ IndexEntry.Rest; IndexEntry.Range(start, None, Some 2); IndexEntry.Range(None, None, None) ] 0 -1 ]
                    }
            let first = if spatialOps.IsEmpty then first else Serial(first :: spatialOps)
            let! n = Gen.choose (0, 3)
            let! bs, at = blocks n at0 []
            let! flattenTop = if at.Flattened then Gen.constant false elif l.Spatial.IsEmpty then Gen.elements [ false; true ] else Gen.constant true
            let top, atTop = if flattenTop then let f, a = flattenAt at in [ f ], a else [], at
            let! readout, _ = denseTo atTop 1 (0.5, 1.6)
            return Serial(first :: bs @ top @ [ readout ])
        })

/// A random layout and a valid network for it.
let networkCase : Gen<NetworkCase> =
    gen {
        let! l = layout
        let! net = networkFor l
        return { Net = net; Layout = l }
    }

// ---- Networks for the execution laws: pass-through layers and branches ----------------------------------------

/// Where an execution-law network stands: Gaussian or not, flat (N, C) or with positions, through a Flatten
/// (channel axis 1) or not, and the finite channel count.
type private Flow = { IsGaussian: bool; Flat: bool; Flattened: bool; Channels: int; Positions: int }

let private execWidth = 16

let private execDense (f: Flow) =
    gen {
        let! w = Gen.elements [ 0.7; 1.0; 1.3 ]
        let! b = Gen.elements [ None; Some 0.0; Some 0.3 ]
        let! standard = Gen.elements [ false; true ]
        let! s0 = Gen.choose (1, 3)
        let p = if standard then Parameterization.Standard else Parameterization.Ntk
        return Dense { Stax.denseDefaults execWidth with WStd = w; BStd = b; Parameterization = p; S = (s0, 1) },
               { f with IsGaussian = true; Channels = execWidth }
    }

let private execActivation =
    Gen.elements [ Stax.relu; Stax.leakyRelu 0.2; Stax.abs; Stax.erf 1.0 0.8 0.1; Stax.gelu false
                   Stax.sin 1.0 0.7 0.3; Stax.monomial 1; Stax.monomial 2 ]

let private execFlatten (f: Flow) =
    Stax.flatten, { f with IsGaussian = false; Flat = true; Flattened = true; Channels = f.Channels * f.Positions; Positions = 1 }

/// Blocks that hand arrays on unchanged (Identity, Flatten of a flat kernel, pass-through branches, one-branch
/// fan-ins) between layers that may work in place (Dense, ABRelu, fused Dense → ABRelu).
let rec private execBlock (size: int) (f: Flow) : Gen<Layer * Flow> =
    let leaf =
        Gen.oneof
            [ yield execDense f
              yield Gen.constant (Identity, f)
              yield Gen.constant (execFlatten f)
              if f.IsGaussian then
                  yield execActivation |> Gen.map (fun a -> a, { f with IsGaussian = false }) ]
    if size <= 0 then leaf
    else
        let sub = execBlock (size / 2)
        Gen.frequency
            [ yield 3, leaf
              yield 2, gen {
                  let! a, fa = sub f
                  let! b, fb = sub fa
                  return Serial [ a; b ], fb }
              // one-branch fan-in: FanOut(1) → parallel [b] → FanInSum | FanInProd | FanInConcat
              yield 1, gen {
                  let! b, fb = sub f
                  let! merge = Gen.elements [ FanInSum; FanInProd; FanInConcat -1 ]
                  let out = match merge with FanInConcat _ -> { fb with IsGaussian = false } | _ -> fb
                  return Serial [ FanOut 1; Parallel [ b ]; merge ], out }
              // residual whose second branch passes the input through
              if f.IsGaussian && f.Channels = execWidth then
                  yield 1, gen {
                      let! a = execActivation
                      let! d, fd = execDense { f with IsGaussian = false }
                      let! pass = Gen.elements [ Identity; Serial [ Identity; Identity ] ]
                      return Serial [ FanOut 2; Parallel [ Serial [ a; d ]; pass ]; FanInSum ], fd }
              // product or concatenation of k = 2..4 branches, one of them a pass-through
              yield 2, gen {
                  let! k = Gen.choose (2, 4)
                  let! branches = Gen.listOfLength (k - 1) (sub f)
                  // Identity, or Flatten of a flat kernel: both hand the input's arrays on unchanged.
                  let! passThrough = if f.Flat then Gen.elements [ Identity, f; execFlatten f ] else Gen.constant (Identity, f)
                  let all = passThrough :: branches
                  // Equal layouts and shapes for the merge: when any branch went through a Flatten (channel axis 1
                  // from then on) the others get one too; a product of unequal widths gets a Dense(16) per branch.
                  let anyFlattened = all |> List.exists (fun (_, g) -> g.Flattened)
                  let all =
                      all |> List.map (fun (l, g) ->
                          if anyFlattened && not g.Flattened then let fl, g' = execFlatten g in Serial [ l; fl ], g' else l, g)
                  let! merge = Gen.elements [ FanInProd; FanInConcat -1 ]
                  let widths = all |> List.map (fun (_, g) -> g.Channels) |> List.distinct
                  let! all =
                      if merge = FanInProd && widths.Length > 1 then
                          all |> List.map (fun (l, g) -> execDense g |> Gen.map (fun (d, g') -> Serial [ l; d ], g')) |> Gen.sequenceToList
                      else Gen.constant all
                  let! order = Gen.shuffle (List.toArray all)
                  let fs = order |> Array.map snd
                  let out =
                      if merge = FanInProd then { fs[0] with IsGaussian = false }
                      else { fs[0] with IsGaussian = false; Channels = fs |> Array.sumBy (fun g -> g.Channels) }
                  return Serial [ FanOut k; Parallel(order |> Array.map fst |> List.ofArray); merge ], out } ]

/// A network for the execution laws and its (default-axes) layout: Dense(16), pass-through-rich blocks, Flatten,
/// Dense(1). Inputs are vectors, (N, H, C) or (N, H, W, C).
let executionCase : Gen<NetworkCase> =
    gen {
        let! l = layout |> Gen.map (fun l -> { l with Axes = (0, -1) })
        let positions = List.fold (*) 1 l.Spatial
        let start = { IsGaussian = false; Flat = l.Spatial.IsEmpty; Flattened = false; Channels = l.Channels; Positions = positions }
        let! d0, f0 = execDense start
        let! body, _ = Gen.sized (fun size -> execBlock (min size 8) f0)
        let readout = Dense { Stax.denseDefaults 1 with WStd = 1.1; BStd = Some 0.1 }
        return { Net = Serial [ d0; body; Stax.flatten; readout ]; Layout = l }
    }

/// A change to the rows of seeded random inputs, so that kernels meet the degenerate cases: a row equal to another,
/// a zero row (zero variance), a row on the line of another (correlation ±1).
type RowEdit =
    | Duplicate of source: int * target: int
    | Zero of row: int
    | Collinear of source: int * target: int * factor: float

/// How to draw one input tensor: batch size, seed and edits.
type InputSpec = { Rows: int; Seed: int; Edits: RowEdit list }

/// Batch sizes 1–13, mostly ≥ 9 so the 8-lane vector passes and their scalar tails both run; seeds; 0–3 row edits.
let inputSpec : Gen<InputSpec> =
    gen {
        let! n = Gen.frequency [ 2, Gen.choose (1, 8); 3, Gen.choose (9, 13) ]
        let! seed = Gen.choose (0, 100000)
        let edit =
            Gen.oneof
                [ Gen.map2 (fun s t -> Duplicate(s, t)) (Gen.choose (0, n - 1)) (Gen.choose (0, n - 1))
                  Gen.choose (0, n - 1) |> Gen.map Zero
                  Gen.map3 (fun s t f -> Collinear(s, t, f)) (Gen.choose (0, n - 1)) (Gen.choose (0, n - 1))
                      (Gen.elements [ -2.0; -0.5; 0.25; 3.0 ]) ]
        let! edits = Gen.choose (0, 3) |> Gen.bind (fun k -> Gen.listOfLength k edit)
        return { Rows = n; Seed = seed; Edits = edits }
    }

/// The inputs an InputSpec describes, in the layout's storage order: (N, spatial…, C), or (C, N) for axes (1, 0).
let inputs (l: InputLayout) (spec: InputSpec) : Tensor =
    let feature = (List.fold (*) 1 l.Spatial) * l.Channels
    let rng = System.Random(spec.Seed)
    let normal () =
        let u1 = 1.0 - rng.NextDouble()
        let u2 = rng.NextDouble()
        sqrt (-2.0 * log u1) * cos (2.0 * System.Math.PI * u2)
    let rows = Array.init spec.Rows (fun _ -> Array.init feature (fun _ -> normal ()))
    for e in spec.Edits do
        match e with
        | Duplicate(s, t) -> rows[t] <- Array.copy rows[s]
        | Zero r -> rows[r] <- Array.zeroCreate feature
        | Collinear(s, t, f) -> rows[t] <- rows[s] |> Array.map (fun v -> f * v)
    let canonical = Tensor.create (Array.ofList (spec.Rows :: l.Spatial @ [ l.Channels ])) (Array.concat rows)
    if l.Axes = (1, 0) then Tensor.moveAxis 0 1 canonical else canonical

/// Any layer tree (not necessarily a valid network): for the JSON codec.
let rec private anyLayerSized (size: int) : Gen<Layer> =
    let leaf =
        Gen.oneof
            [ Gen.constant Identity
              Gen.constant FanInSum
              Gen.constant FanInProd
              Gen.choose (-3, 3) |> Gen.map FanInConcat
              Gen.choose (1, 5) |> Gen.map FanOut
              gen {
                  let! outDim = Gen.choose (1, 4096)
                  let! d = dense outDim
                  let! ba = Gen.choose (0, 2)
                  let! s0 = Gen.choose (1, 4)
                  return Dense { d with BatchAxis = ba; ChannelAxis = -1; S = (s0, snd d.S) }
              }
              activation
              Gen.map2 (fun b o -> Flatten { BatchAxis = b; BatchAxisOut = o }) (Gen.choose (0, 2)) (Gen.choose (0, 1))
              Gen.elements [ true; false ] |> Gen.map (Gelu >> Activation)
              // DotGeneral with a small constant on either side, contracting one of its axes with one of the input's.
              gen {
                  let! rows = Gen.choose (1, 3)
                  let! cols = Gen.choose (1, 3)
                  let! values = Gen.listOfLength (rows * cols) (choose -2.0 2.0)
                  let constant = Some(Tensor.create [| rows; cols |] (Array.ofList values))
                  let! isLhs = Gen.elements [ true; false ]
                  let! inputAxis = Gen.choose (0, 2)
                  let! constAxis = Gen.choose (0, 1)
                  let dims = if isLhs then ([ constAxis ], [ inputAxis ]), ([], []) else ([ inputAxis ], [ constAxis ]), ([], [])
                  return Stax.dotGeneral (if isLhs then constant else None) (if isLhs then None else constant) dims 0 -1
              } ]
    if size <= 0 then leaf
    else
        Gen.frequency
            [ 3, leaf
              1, Gen.listOf (anyLayerSized (size / 2)) |> Gen.resize 4 |> Gen.map Serial
              // parallel needs at least one branch (Stax.parallelOf and the JSON codec refuse an empty one).
              1, Gen.nonEmptyListOf (anyLayerSized (size / 2)) |> Gen.resize 4 |> Gen.map Parallel ]

let anyLayer : Gen<Layer> = Gen.sized anyLayerSized

/// Registered with `testPropertyWithConfig { fsCheck n with arbitrary = [ typeof<Generators.Arbitraries> ] }`.
type Arbitraries =
    static member Layer() : Arbitrary<Layer> = Arb.fromGen anyLayer

// ---- Random small convolutional networks (CnnProperties) ----

/// The top of a generated CNN, between its body and the Dense(1) readout.
[<RequireQualifiedAccess>]
type CnnTop =
    | Flatten
    | GlobalAvgPool
    | GlobalSumPool

    /// The layer.
    member t.Layer =
        match t with
        | CnnTop.Flatten -> Stax.flatten
        | CnnTop.GlobalAvgPool -> Stax.globalAvgPool
        | CnnTop.GlobalSumPool -> Stax.globalSumPool

/// A random small CNN: a body of convolutions, pooling, activations and residual blocks on (N, W, C) or (N, H, W, C)
/// inputs, a top that removes the spatial axes, and a Dense(1) readout in the "ntk" parameterization.
type CnnCase =
    { Body: Layer
      Top: CnnTop
      Readout: DenseSpec
      Layout: InputLayout }

    /// Body → top → readout.
    member c.Net = Serial [ c.Body; c.Top.Layer; Dense c.Readout ]

/// Where a generated CNN stands: the spatial sizes (0 once a VALID window no longer fits, which the core then
/// refuses), the finite channel count, and whether the pre-activations are Gaussian (activations need that).
type private CnnAt = { Sizes: int list; Channels: int; Gaussian: bool }

/// Finite width of every hidden convolution; divisible by every s[1] drawn (1, 2, 3), so that residual branches in
/// either parameterization reach equal widths (FanInSum needs them), and larger than any input channel count (1–3),
/// so that a channel count of cnnWidth means the input came through a convolution.
let cnnWidth = 6

/// Output size along one axis of a window of size `f` and stride `s` (lax's rule: SAME and CIRCULAR ⌈size/s⌉, VALID
/// ⌊(size − f)/s⌋ + 1, 0 when the window does not fit).
let private windowOut (padding: Padding) (f: int) (s: int) (size: int) =
    match padding with
    | Padding.Valid -> if size >= f then (size - f) / s + 1 else 0
    | _ -> (size + s - 1) / s

/// Output size of the transpose convolution (lax.conv_transpose: SAME and CIRCULAR size·s, VALID size·s + max(f − s, 0)).
let private transposeOut (padding: Padding) (f: int) (s: int) (size: int) =
    if size = 0 then 0
    else
        match padding with
        | Padding.Valid -> size * s + max (f - s) 0
        | _ -> size * s

/// Window sizes 1..maxF per axis; for VALID mostly ones that fit (one draw in ten may not, which the core refuses).
let private windowSizes (padding: Padding) (maxF: int) (sizes: int list) =
    sizes
    |> List.map (fun size ->
        if padding = Padding.Valid && size >= 1 && size < maxF then
            Gen.frequency [ 9, Gen.choose (1, size); 1, Gen.choose (1, maxF) ]
        else Gen.choose (1, maxF))
    |> Gen.sequenceToList

let private strideGen = Gen.frequency [ 3, Gen.constant 1; 1, Gen.constant 2 ]

/// A Conv, ConvLocal or ConvTranspose of finite width `width` in a random parameterization ("standard" with
/// s = (s0, s1)); `keepSize` forces SAME padding and stride 1 (residual branches).
let private cnnConv (at: CnnAt) (width: int) (keepSize: bool) =
    gen {
        // The transpose convolution grows the input; only on small ones, to keep the full layout small.
        let canTranspose = at.Sizes |> List.forall (fun s -> s <= 3)
        let! kind =
            Gen.frequency [ yield 4, Gen.constant ConvKind.Conv
                            yield 2, Gen.constant ConvKind.Local
                            if canTranspose then yield 2, Gen.constant ConvKind.Transpose ]
        let! padding =
            if keepSize then Gen.constant Padding.Same
            else Gen.elements [ Padding.Same; Padding.Valid; Padding.Circular ]
        let! filter = windowSizes padding 3 at.Sizes
        let! strides = if keepSize then Gen.constant (List.map (fun _ -> 1) at.Sizes) else Gen.listOfLength at.Sizes.Length strideGen
        let! std = Gen.elements [ false; true ]
        let! s0 = Gen.choose (1, 3)
        let! s1 = Gen.elements [ 1; 2; 3 ]
        let! wStd = choose 0.5 1.6
        let! b = bias
        let spec = { Stax.convDefaults width filter with Kind = kind; Strides = strides; Padding = padding; WStd = wStd; BStd = b }
        // The finite width is out_chan·s[1] for Conv and ConvTranspose in the "standard" parameterization, out_chan for
        // ConvLocal (neural_tangents' init) and in the "ntk" one.
        let spec =
            if std then
                { spec with
                    OutChan = (if kind = ConvKind.Local then width else width / s1)
                    Parameterization = Parameterization.Standard
                    S = (s0, s1) }
            else spec
        let sizes =
            List.zip3 at.Sizes filter strides
            |> List.map (fun (size, f, s) ->
                if kind = ConvKind.Transpose then transposeOut padding f s size else windowOut padding f s size)
        return Stax.convWith spec, { Sizes = sizes; Channels = width; Gaussian = true }
    }

/// AvgPool (normalize_edges either way) or SumPool, windows 1–2, strides 1–2, any padding; Gaussianity kept (both
/// are linear).
let private cnnPool (at: CnnAt) =
    gen {
        let! padding = Gen.elements [ Padding.Same; Padding.Valid; Padding.Circular ]
        let! window = windowSizes padding 2 at.Sizes
        let! strides = Gen.listOfLength at.Sizes.Length strideGen
        let spec = { Stax.poolDefaults window with Strides = strides; Padding = padding }
        let! layer = Gen.oneof [ Gen.elements [ false; true ] |> Gen.map (Stax.avgPoolWith spec); Gen.constant (Stax.sumPoolWith spec) ]
        let sizes = List.zip3 at.Sizes window strides |> List.map (fun (size, w, s) -> windowOut padding w s size)
        return layer, { at with Sizes = sizes }
    }

/// The activations of the CNN laws: Relu, Erf and Gelu (after a convolution: their kernels need a Gaussian input).
let private cnnActivation =
    Gen.oneof [ Gen.constant Stax.relu; Gen.map3 Stax.erf (choose 0.5 1.5) (choose 0.3 1.5) (choose -0.3 0.3); Gen.constant (Stax.gelu false)
                Gen.map2 Stax.exp (choose 0.5 1.2) (choose -0.4 0.4); Gen.map2 Stax.gaussian (choose 0.5 1.5) (choose -1.0 -0.1)
                Gen.constant Stax.sign; Gen.constant Stax.gabor; Gen.choose (0, 2) |> Gen.map Stax.rectifiedMonomial
                Gen.listOfLength 3 (choose -1.0 1.0) |> Gen.map Stax.polynomial ]

/// Blocks of a CNN body: a convolution, a pooling, an activation (on a Gaussian input), two blocks in sequence, or
/// a residual block FanOut(2) → parallel [act → conv(SAME); Identity or conv(SAME)] → FanInSum (Gaussian).
let rec private cnnBlock (size: int) (at: CnnAt) : Gen<Layer * CnnAt> =
    let leaf =
        Gen.frequency
            [ yield 3, cnnConv at cnnWidth false
              yield 1, cnnPool at
              if at.Gaussian then yield 3, cnnActivation |> Gen.map (fun a -> a, { at with Gaussian = false }) ]
    if size <= 0 then leaf
    else
        Gen.frequency
            [ yield 3, leaf
              yield 2, gen {
                  let! a, fa = cnnBlock (size / 2) at
                  let! b, fb = cnnBlock (size / 2) fa
                  return Serial [ a; b ], fb }
              yield 1, gen {
                  let! act = cnnActivation
                  let! c, fc = cnnConv { at with Gaussian = false } cnnWidth true
                  let first = if at.Gaussian then Serial [ act; c ] else c
                  // Identity only where the channel count came from a convolution (so rewidening keeps it equal) and
                  // the input is Gaussian (FanInSum needs Gaussian branches, as neural_tangents' does).
                  let! second, _ =
                      if at.Channels = cnnWidth && at.Gaussian then Gen.oneof [ Gen.constant (Identity, at); cnnConv at cnnWidth true ]
                      else cnnConv at cnnWidth true
                  return Serial [ FanOut 2; Parallel [ first; second ]; FanInSum ], fc } ]

/// Inputs of 1–5 pixels per axis, 1–2 spatial axes, 1–3 channels, default axes (batch first, channels last).
let cnnLayout : Gen<InputLayout> =
    gen {
        let! d = Gen.choose (1, 2)
        let! spatial = Gen.listOfLength d (Gen.choose (1, 5))
        let! c = Gen.choose (1, 3)
        return { Spatial = spatial; Channels = c; Axes = (0, -1) }
    }

/// A random CNN: a first convolution (activations need a Gaussian input), a sized body (Gen.sized, halved at each
/// level, at most 8), a top (Flatten, GlobalAvgPool or GlobalSumPool) and a Dense(1) readout.
let cnnCase : Gen<CnnCase> =
    gen {
        let! l = cnnLayout
        let start = { Sizes = l.Spatial; Channels = l.Channels; Gaussian = false }
        let! first, f0 = Gen.oneof [ cnnConv start cnnWidth false; cnnConv start cnnWidth false |> Gen.bind (fun (c, f) -> cnnPool f |> Gen.map (fun (p, g) -> Serial [ c; p ], g)) ]
        let! body, _ = Gen.sized (fun size -> cnnBlock (min size 8) f0)
        let! top = Gen.elements [ CnnTop.Flatten; CnnTop.GlobalAvgPool; CnnTop.GlobalSumPool ]
        let! w = choose 0.5 1.5
        let! b = bias
        return { Body = Serial [ first; body ]; Top = top; Readout = { Stax.denseDefaults 1 with WStd = w; BStd = b }; Layout = l }
    }

/// Inputs for the CNN laws: batch 2–5, a seed, at most one row edit (a duplicate, zero or collinear row).
let cnnInputSpec : Gen<InputSpec> =
    gen {
        let! n = Gen.choose (2, 5)
        let! seed = Gen.choose (0, 100000)
        let edit =
            Gen.oneof
                [ Gen.map2 (fun s t -> Duplicate(s, t)) (Gen.choose (0, n - 1)) (Gen.choose (0, n - 1))
                  Gen.choose (0, n - 1) |> Gen.map Zero
                  Gen.map3 (fun s t f -> Collinear(s, t, f)) (Gen.choose (0, n - 1)) (Gen.choose (0, n - 1)) (Gen.elements [ -2.0; 0.5 ]) ]
        let! edits = Gen.frequency [ 3, Gen.constant []; 1, edit |> Gen.map List.singleton ]
        return { Rows = n; Seed = seed; Edits = edits }
    }
