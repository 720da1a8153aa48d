/// Examples for Kernel.dotGeneral (neural_tangents' Kernel.dot_general): the kernel it returns must equal the input
/// kernel of the finite outputs dot_general(x, other) / dot_general(other, x), computed here with an explicit-loop
/// reference of jax.lax.dot_general. The input kernel x·x'ᵀ/C is linear in x on every axis but the channel axis, so
/// the two agree to round-off.
module NeuralTangents.Tests.KernelDotGeneralTests

open Expecto
open NeuralTangents
open NeuralTangents.Tests.TestUtil

type private Dims = (int list * int list) * (int list * int list)

let private normAxes (rank: int) (axes: int list) = axes |> List.map (fun a -> (a + rank) % rank) |> Array.ofList

let private stridesOf (shape: int[]) =
    let s = Array.create shape.Length 1
    for a in shape.Length - 2 .. -1 .. 0 do s[a] <- s[a + 1] * shape[a + 1]
    s

let private unravel (shape: int[]) (flat: int) =
    let idx = Array.zeroCreate shape.Length
    let mutable r = flat
    for a in shape.Length - 1 .. -1 .. 0 do
        idx[a] <- r % shape[a]
        r <- r / shape[a]
    idx

/// jax.lax.dot_general(lhs, rhs, ((lc, rc), (lb, rb))) by definition: the output axes are the batch dimensions, then
/// lhs's free axes, then rhs's, each entry the sum over the contracted indices of lhs[…]·rhs[…].
let private refDotGeneral (lhs: Tensor) (rhs: Tensor) (((lc, rc), (lb, rb)): Dims) =
    let lc, lb = normAxes lhs.Rank lc, normAxes lhs.Rank lb
    let rc, rb = normAxes rhs.Rank rc, normAxes rhs.Rank rb
    let lFree = Array.init lhs.Rank id |> Array.except (Array.append lc lb)
    let rFree = Array.init rhs.Rank id |> Array.except (Array.append rc rb)
    let outShape = Array.concat [ lb |> Array.map (fun a -> lhs.Shape[a]); lFree |> Array.map (fun a -> lhs.Shape[a]); rFree |> Array.map (fun a -> rhs.Shape[a]) ]
    let cShape = lc |> Array.map (fun a -> lhs.Shape[a])
    let nOut, nC = Array.fold (*) 1 outShape, Array.fold (*) 1 cShape
    let ls, rs = stridesOf lhs.Shape, stridesOf rhs.Shape
    let data =
        Array.init nOut (fun o ->
            let oi = unravel outShape o
            let li, ri = Array.zeroCreate lhs.Rank, Array.zeroCreate rhs.Rank
            lb |> Array.iteri (fun k a -> li[a] <- oi[k])
            rb |> Array.iteri (fun k a -> ri[a] <- oi[k])
            lFree |> Array.iteri (fun m a -> li[a] <- oi[lb.Length + m])
            rFree |> Array.iteri (fun m a -> ri[a] <- oi[lb.Length + lFree.Length + m])
            let mutable acc = 0.0
            for c in 0 .. nC - 1 do
                let ci = unravel cShape c
                lc |> Array.iteri (fun m a -> li[a] <- ci[m])
                rc |> Array.iteri (fun m a -> ri[a] <- ci[m])
                acc <- acc + lhs.Data[Array.fold2 (fun s i st -> s + i * st) 0 li ls] * rhs.Data[Array.fold2 (fun s i st -> s + i * st) 0 ri rs]
            acc)
    Tensor.create outShape data

/// Where input axis a lands in the output of dot_general (input on the left unless isLhs).
let private outputAxisOf (inputRank: int) (otherRank: int) (isLhs: bool) (((lc, rc), (lb, rb)): Dims) (a: int) =
    let lhsRank, rhsRank = (if isLhs then otherRank, inputRank else inputRank, otherRank)
    let lc, lb, rc, rb = normAxes lhsRank lc, normAxes lhsRank lb, normAxes rhsRank rc, normAxes rhsRank rb
    let lFree = Array.init lhsRank id |> Array.except (Array.append lc lb)
    let rFree = Array.init rhsRank id |> Array.except (Array.append rc rb)
    let batch, free, before = if isLhs then rb, rFree, lb.Length + lFree.Length else lb, lFree, lb.Length
    match Array.tryFindIndex ((=) a) batch with
    | Some k -> k
    | None -> before + Array.findIndex ((=) a) free

let private apply (other: Tensor) (isLhs: bool) (dims: Dims) (x: Tensor) =
    if isLhs then refDotGeneral other x dims else refDotGeneral x other dims

/// The output moved to (batch, remaining axes in order, channel), the order the input kernel reads.
let private canonical (batchAxis: int) (channelAxis: int) (y: Tensor) =
    let rest = Array.init y.Rank id |> Array.filter (fun a -> a <> batchAxis && a <> channelAxis)
    Tensor.permute (Array.concat [ [| batchAxis |]; rest; [| channelAxis |] ]) y

let private layout (diagBatch: bool) (diagSpatial: bool) =
    { DiagonalBatch = Some diagBatch; DiagonalSpatial = Some diagSpatial }

/// Input kernel with a non-zero NTK (3·NNGP), so that the NTK's transformation is checked too.
let private inputKernel (request: LayoutRequest) (x1: Tensor) (x2: Tensor option) =
    let k = KernelFn.inputKernelWithLayout request Stax.identity x1 x2 Both
    { k with Ntk = Some(Tensor.scale 3.0 k.Nngp) }

/// Relative Frobenius error (TestUtil.relErr) of one covariance, bounded by 1e-13: both sides are sums of the same
/// products in another order, so only round-off separates them.
let private close (what: string) (expected: Tensor) (actual: Tensor) =
    Expect.equal actual.Shape expected.Shape (what + " shape")
    let e = relErr expected.Data actual.Data
    if not (e <= 1e-13) then failtestf "%s: relative Frobenius error %.3e exceeds 1e-13" what e
    e

/// Kernel.dotGeneral other1 other2 on the input kernel of (x1, x2) against the input kernel of the finite outputs.
let private check (request: LayoutRequest) (x1: Tensor) (x2: Tensor option) (other1: Tensor) (other2: Tensor) (isLhs: bool) (dims: Dims) =
    let k = inputKernel request x1 x2
    let actual = Kernel.dotGeneral (Some other1) (Some other2) isLhs dims k
    let y1 = apply other1 isLhs dims x1
    let y2 =
        match x2 with
        | Some x2 -> Some(apply other2 isLhs dims x2)
        | None when other1 <> other2 -> Some(apply other2 isLhs dims x1)
        | None -> None
    let b = outputAxisOf x1.Rank other1.Rank isLhs dims 0
    let c = outputAxisOf x1.Rank other1.Rank isLhs dims (x1.Rank - 1)
    Expect.equal actual.BatchAxis b "batch axis of the output"
    Expect.equal actual.ChannelAxis c "channel axis of the output"
    Expect.equal actual.Shape1 y1.Shape "Shape1 is the shape of dot_general's output for x1"
    Expect.equal actual.Shape2 (defaultArg y2 y1).Shape "Shape2 is the shape of dot_general's output for x2"
    let expected = inputKernel request (canonical b c y1) (y2 |> Option.map (canonical b c))
    Expect.equal (actual.DiagonalBatch, actual.DiagonalSpatial) (expected.DiagonalBatch, expected.DiagonalSpatial) "layout kept"
    let errors =
        [ close "nngp" expected.Nngp actual.Nngp
          close "ntk" expected.Ntk.Value actual.Ntk.Value
          close "cov1" expected.Cov1 actual.Cov1
          match expected.Cov2, actual.Cov2 with
          | Some e, Some a -> close "cov2" e a
          | None, None -> 0.0
          | e, a -> failtestf "cov2: expected %A, got %A" e a ]
    Expect.isFalse actual.IsReversed "never reversed"
    note (sprintf "KernelDotGeneralTests: dims %A, isLhs %b, nngp shape %s: worst relative Frobenius error %.2e"
              dims isLhs (string actual.Nngp) (List.max errors))

let private t (seed: int) (shape: int[]) = Tensor.create shape (normals seed (Array.fold (*) 1 shape))

let private full = layout true false

[<Tests>]
let tests =
    testList "KernelDotGeneralTests" [
        testCase "rhs contracts the spatial axis of (N, H, C): output (N, C, K), full layout" <| fun () ->
            check full (t 1 [| 3; 4; 5 |]) (Some(t 2 [| 2; 4; 5 |])) (t 3 [| 4; 3 |]) (t 3 [| 4; 3 |]) false (([ 1 ], [ 0 ]), ([], []))

        testCase "lhs contracts H and batches W of (N, H, W, C): output (W, K, N, C), full layout" <| fun () ->
            let other = t 4 [| 2; 4; 3 |]
            check full (t 5 [| 3; 3; 4; 5 |]) (Some(t 6 [| 2; 3; 4; 5 |])) other other true (([ 2 ], [ 1 ]), ([ 1 ], [ 2 ]))

        testCase "negative axes and full batch covariance (DiagonalBatch = false)" <| fun () ->
            let other = t 7 [| 4; 2 |]
            check (layout false false) (t 8 [| 3; 3; 4; 5 |]) (Some(t 9 [| 2; 3; 4; 5 |])) other other false (([ -2 ], [ 0 ]), ([], []))

        testList "batch dimension on a spatial axis and a new axis, no contraction: output (H, N, W, C, K)" [
            for diagSpatial in [ true; false ] ->
                testCase (sprintf "DiagonalSpatial = %b" diagSpatial) <| fun () ->
                    let other = t 10 [| 3; 2 |]
                    check (layout true diagSpatial) (t 11 [| 3; 3; 4; 5 |]) (Some(t 12 [| 2; 3; 4; 5 |])) other other false (([], []), ([ 1 ], [ 0 ]))
        ]

        testCase "lhs with no paired axes multiplies in a new spatial axis, diagonal layout: output (K, N, H, C)" <| fun () ->
            let other = t 13 [| 2 |]
            check (layout true true) (t 14 [| 3; 4; 5 |]) (Some(t 15 [| 2; 4; 5 |])) other other true (([], []), ([], []))

        testList "batch axis as a dot_general batch dimension, x2 = None: output (N, K, C)" [
            for diagBatch in [ true; false ] ->
                testCase (sprintf "DiagonalBatch = %b" diagBatch) <| fun () ->
                    let other = t 16 [| 3; 4; 2 |]
                    check (layout diagBatch false) (t 17 [| 3; 4; 5 |]) None other other true (([ 1 ], [ 1 ]), ([ 0 ], [ 0 ]))
        ]

        testCase "x2 = None, other1 = other2: Cov2 stays None" <| fun () ->
            let other = t 18 [| 4; 3 |]
            let k = Kernel.dotGeneral (Some other) (Some other) false (([ 1 ], [ 0 ]), ([], [])) (inputKernel full (t 19 [| 3; 4; 5 |]) None)
            Expect.isNone k.Cov2 "x2 is still x1"
            Expect.isTrue k.X1IsX2 "X1IsX2 kept"
            check full (t 19 [| 3; 4; 5 |]) None other other false (([ 1 ], [ 0 ]), ([], []))

        testCase "x2 = None, other1 ≠ other2: Cov2 is computed" <| fun () ->
            let x = t 20 [| 3; 4; 5 |]
            let dims = (([ 1 ], [ 0 ]), ([], []))
            check full x None (t 21 [| 4; 3 |]) (t 22 [| 4; 3 |]) false dims
            Expect.isFalse (Kernel.dotGeneral (Some(t 21 [| 4; 3 |])) (Some(t 22 [| 4; 3 |])) false dims (inputKernel full x None)).X1IsX2 "x2 no longer x1"

        testCase "a reversed kernel is un-reversed first" <| fun () ->
            let x1, x2, other = t 23 [| 2; 3; 4; 5 |], Some(t 24 [| 3; 3; 4; 5 |]), t 25 [| 2; 4 |]
            let dims = (([ 1 ], [ 2 ]), ([], []))
            let k = inputKernel full x1 x2
            let direct = Kernel.dotGeneral (Some other) (Some other) true dims k
            let viaReversed = Kernel.dotGeneral (Some other) (Some other) true dims (Kernel.reverse k)
            close "nngp" direct.Nngp viaReversed.Nngp |> ignore
            close "cov1" direct.Cov1 viaReversed.Cov1 |> ignore
            Expect.isFalse viaReversed.IsReversed "result not reversed"

        testCase "None, None returns the kernel unchanged" <| fun () ->
            let k = inputKernel full (t 26 [| 2; 3; 5 |]) None
            Expect.isTrue (obj.ReferenceEquals(k, Kernel.dotGeneral None None false (([ 1 ], [ 0 ]), ([], [])) k)) "same kernel"

        testCase "refused: channel axis, batch-axis contraction, spatial contraction in the diagonal layout, one factor" <| fun () ->
            let x = t 27 [| 2; 3; 5 |]
            let kFull, kDiag = inputKernel full x None, inputKernel (layout true true) x None
            let refuse (what: string) (fragment: string) (f: unit -> Kernel) =
                let e = throwsExactly<NeuralTangentsException> (fun () -> f () |> ignore)
                Expect.stringContains e.Message fragment what
            let o5, o2, o3 = t 28 [| 5; 2 |], t 29 [| 2; 2 |], t 30 [| 3; 2 |]
            refuse "channel contracted" "channel axis" (fun () -> Kernel.dotGeneral (Some o5) (Some o5) false (([ 2 ], [ 0 ]), ([], [])) kFull)
            refuse "channel batched" "channel axis" (fun () -> Kernel.dotGeneral (Some o5) (Some o5) false (([], []), ([ -1 ], [ 0 ]))  kFull)
            refuse "batch contracted" "batch axis" (fun () -> Kernel.dotGeneral (Some o2) (Some o2) false (([ 0 ], [ 0 ]), ([], [])) kFull)
            refuse "diagonal spatial" "diagonal_spatial=False" (fun () -> Kernel.dotGeneral (Some o3) (Some o3) false (([ 1 ], [ 0 ]), ([], [])) kDiag)
            refuse "one factor" "both other1 and other2" (fun () -> Kernel.dotGeneral (Some o3) None false (([ 1 ], [ 0 ]), ([], [])) kFull)

        testCase "argument errors name the argument" <| fun () ->
            let k = inputKernel full (t 31 [| 2; 3; 5 |]) None
            let o = t 32 [| 4; 2 |]
            let e = throwsExactly<System.ArgumentException> (fun () -> Kernel.dotGeneral (Some o) (Some o) false (([ 1 ], [ 0 ]), ([], [])) k |> ignore)
            Expect.equal e.ParamName "other1" "size mismatch names other1"
            let e = throwsExactly<System.ArgumentException> (fun () -> Kernel.dotGeneral (Some o) (Some o) false (([ 1 ], []), ([], [])) k |> ignore)
            Expect.equal e.ParamName "dimensionNumbers" "unpaired contracting dimension"
            let e = throwsExactly<System.ArgumentException> (fun () -> Kernel.dotGeneral (Some o) (Some o) false (([ 3 ], [ 0 ]), ([], [])) k |> ignore)
            Expect.equal e.ParamName "dimensionNumbers" "axis out of range"
    ]
