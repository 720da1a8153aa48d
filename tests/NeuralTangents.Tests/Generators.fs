/// FsCheck generators: random architectures that are valid infinite networks, arbitrary layer trees for the JSON
/// codec, and finite inputs.
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
          Gen.choose (0, 3) |> Gen.map Stax.monomial ]

/// In the standard parameterization s0 of a layer is s1 of the layer before; `keep` forces s1 = s0 so the output
/// width equals the input width (needed where branches are summed or multiplied).
let private chain (s0: int) (keep: bool) (d: DenseSpec) =
    let s1 = if keep then s0 else snd d.S
    Dense { d with S = (s0, s1) }, s1

/// A block maps a Gaussian input of width 64·s0 to a Gaussian output (it ends in an affine layer).
let rec private block (p: Parameterization) (s0: int) (size: int) : Gen<Layer * int> =
    let width = 64
    let plain =
        gen {
            let! act = activation
            let! d = denseIn p width
            let l, s = chain s0 false d
            return Serial [ act; l ], s
        }
    if size <= 0 then plain
    else
        Gen.oneof
            [ plain
              // residual: x + Dense(act(x)); the Identity branch keeps the previous width.
              gen {
                  let! act = activation
                  let! d = denseIn p width
                  let l, _ = chain s0 true d
                  return Serial [ FanOut 2; Parallel [ Serial [ act; l ]; Identity ]; FanInSum ], s0
              }
              gen {
                  let! a1 = activation
                  let! a2 = activation
                  let! d1 = denseIn p width
                  let! d2 = denseIn p width
                  let! d3 = denseIn p width
                  let l1, _ = chain s0 true d1
                  let l2, _ = chain s0 true d2
                  let l3, s' = chain s0 false d3
                  return Serial [ FanOut 2; Parallel [ Serial [ a1; l1 ]; Serial [ a2; l2 ] ]; FanInProd; l3 ], s'
              }
              // concatenation of unequal widths 32 and 96 (the kernel is their width-weighted mean)
              gen {
                  let! a = activation
                  let! d1 = denseIn p 32
                  let! d2 = denseIn p 96
                  let! d3 = denseIn p width
                  let l1, _ = chain s0 true d1
                  let l2, _ = chain s0 true d2
                  let l3, s' = chain s0 false d3
                  return Serial [ FanOut 2; Parallel [ l1; Serial [ a; l2 ] ]; FanInConcat -1; l3 ], s'
              }
              gen {
                  let! b1, s1 = block p s0 (size / 2)
                  let! b2, s2 = block p s1 (size / 2)
                  return Serial [ b1; b2 ], s2
              } ]

/// A valid network in one parameterization: Dense, 0–3 blocks, Dense(1) readout.
let network : Gen<Layer> =
    Gen.sized (fun size ->
        let rec blocks (p: Parameterization) (k: int) (s: int) (acc: Layer list) =
            if k = 0 then Gen.constant (List.rev acc, s)
            else
                gen {
                    let! b, s' = block p s (min size 4)
                    return! blocks p (k - 1) s' (b :: acc)
                }
        gen {
            let! p = Gen.elements [ Parameterization.Ntk; Parameterization.Standard ]
            let! first = denseIn p 64
            let l0, s = chain 1 false first
            let! n = Gen.choose (0, 3)
            let! bs, sLast = blocks p n s []
            let! top = denseIn p 1
            let l1, _ = chain sLast false { top with S = (sLast, 1) }
            return Serial(l0 :: bs @ [ l1 ])
        })

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
              Gen.elements [ true; false ] |> Gen.map (Gelu >> Activation) ]
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
