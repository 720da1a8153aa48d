namespace NeuralTangents.Layers

open NeuralTangents

/// DotGeneral (neural_tangents' `stax.DotGeneral` in `stax/linear.py`): a constant, non-trainable operand of
/// `lax.dot_general` on either side of the inputs. Its kernel rule is `Kernel.dotGeneral`; this module holds the
/// finite forward and backward passes (as einsums) and the definition.
module Contraction =

    let private fail (msg: string) = raise (NeuralTangentsException msg)

    /// Validated DotGeneral arguments: at most one constant, dimension numbers of matching lengths, each axis of the
    /// constant in range and listed once.
    let dotGeneralSpec (lhs: Tensor option) (rhs: Tensor option) (dims: (int list * int list) * (int list * int list))
                       (batchAxis: int) (channelAxis: int) : DotGeneralSpec =
        if lhs.IsSome && rhs.IsSome then
            invalidArg "rhs" "DotGeneral: give at most one of the constants lhs and rhs; the other operand is the layer's input"
        let (lc, rc), (lb, rb) = dims
        if lc.Length <> rc.Length || lb.Length <> rb.Length then
            invalidArg "dimensionNumbers"
                ("DotGeneral: dimension_numbers: lhs and rhs must list as many contracting dimensions, and as many batch dimensions, got (("
                 + Show.intList lc + ", " + Show.intList rc + "), (" + Show.intList lb + ", " + Show.intList rb + "))")
        if batchAxis = channelAxis then
            invalidArg "channelAxis" $"DotGeneral: channel_axis must differ from batch_axis, both are {string batchAxis}"
        let check (name: string) (o: Tensor) (axes: int list) =
            let n = o.Rank
            let norm = axes |> List.map (fun a ->
                if a < -n || a >= n then
                    invalidArg "dimensionNumbers" ("DotGeneral: dimension_numbers: axis " + string a + " is out of range for " + name + " of rank " + string n)
                (a + n) % n)
            if List.length (List.distinct norm) <> norm.Length then
                invalidArg "dimensionNumbers" $"DotGeneral: dimension_numbers: an axis of {name} is listed twice among its contracting and batch dimensions"
            for v in o.Data do
                if not (System.Double.IsFinite v) then invalidArg name $"DotGeneral: {name} must be finite, got {Show.g v}"
        lhs |> Option.iter (fun o -> check "lhs" o (lc @ lb))
        rhs |> Option.iter (fun o -> check "rhs" o (rc @ rb))
        { Lhs = lhs; Rhs = rhs; DimensionNumbers = dims; BatchAxis = batchAxis; ChannelAxis = channelAxis }

    /// Einsum labels of lax.dot_general(lhs, rhs) for operands of the given ranks: lhs axis i is label i; a rhs axis
    /// paired with lhs axis i (contracting or batch) shares label i, any other rhs axis j is nL + j; the result holds
    /// the batch labels, then the lhs's free axes, then the rhs's.
    let private labels (dims: (int list * int list) * (int list * int list)) (nL: int) (nR: int) =
        let (lc, rc), (lb, rb) = dims
        let norm n = List.map (fun a -> (a + n) % n) >> List.toArray
        let lc, rc, lb, rb = norm nL lc, norm nR rc, norm nL lb, norm nR rb
        let lL = Array.init nL id
        let lR = Array.init nR (fun j ->
            match Array.tryFindIndex ((=) j) rc, Array.tryFindIndex ((=) j) rb with
            | Some p, _ -> lc[p]
            | _, Some p -> lb[p]
            | _ -> nL + j)
        let lFree = [| for i in 0 .. nL - 1 do if not (Array.contains i lc || Array.contains i lb) then yield i |]
        let rFree = [| for j in 0 .. nR - 1 do if not (Array.contains j rc || Array.contains j rb) then yield nL + j |]
        lL, lR, Array.concat [ lb; lFree; rFree ]

    /// Checks the dimension numbers against the input's rank and the paired sizes (lax.dot_general's errors).
    let private checkShapes (d: DotGeneralSpec) (lhs: int[]) (rhs: int[]) =
        let (lc, rc), (lb, rb) = d.DimensionNumbers
        for a in lc @ lb do
            if a < -lhs.Length || a >= lhs.Length then
                fail $"DotGeneral: lhs axis {string a} is out of range for an operand of shape {Shape.format lhs}"
        for a in rc @ rb do
            if a < -rhs.Length || a >= rhs.Length then
                fail $"DotGeneral: rhs axis {string a} is out of range for an operand of shape {Shape.format rhs}"
        for a, b in List.zip (lc @ lb) (rc @ rb) do
            let sa, sb = lhs[(a + lhs.Length) % lhs.Length], rhs[(b + rhs.Length) % rhs.Length]
            if sa <> sb then
                fail ("DotGeneral: lhs axis " + string a + " (size " + string sa + ") is paired with rhs axis " + string b + " (size " + string sb + "); paired axes must have equal sizes (lhs " + (Shape.format lhs) + ", rhs " + (Shape.format rhs) + ")")

    /// (constant, whether it is the left operand) of a layer with a constant.
    let private constant (d: DotGeneralSpec) =
        match d.Lhs, d.Rhs with
        | Some o, _ -> Some(o, true)
        | None, Some o -> Some(o, false)
        | None, None -> None

    /// The output shape of the layer for an input shape.
    let outputShape (d: DotGeneralSpec) (shape: int[]) =
        match constant d with
        | None -> Array.copy shape
        | Some(o, isLhs) ->
            let ls, rs = if isLhs then o.Shape, shape else shape, o.Shape
            checkShapes d ls rs
            let lL, lR, lOut = labels d.DimensionNumbers ls.Length rs.Length
            lOut |> Array.map (fun l ->
                match Array.tryFindIndex ((=) l) lL with
                | Some i -> ls[i]
                | None -> rs[Array.findIndex ((=) l) lR])

    /// lax.dot_general of the input with the constant, as an einsum.
    let forward (d: DotGeneralSpec) (x: Tensor) : Tensor =
        match constant d with
        | None -> x
        | Some(o, isLhs) ->
            let l, r = if isLhs then o, x else x, o
            checkShapes d l.Shape r.Shape
            let lL, lR, lOut = labels d.DimensionNumbers l.Rank r.Rank
            Tensor.contract l lL r lR lOut

    /// The input cotangent of the linear map: the cotangent contracted with the constant back onto the input's axes
    /// (every input label is in the cotangent — batch and free axes — or in the constant — contracted and batch).
    let backward (d: DotGeneralSpec) (x: Tensor) (ct: Tensor) : Tensor =
        match constant d with
        | None -> ct
        | Some(o, isLhs) ->
            let nL, nR = (if isLhs then o.Rank else x.Rank), (if isLhs then x.Rank else o.Rank)
            let lL, lR, lOut = labels d.DimensionNumbers nL nR
            let lX, lO = if isLhs then lR, lL else lL, lR
            // A label repeated within lX cannot occur: dot_general pairs distinct axes.
            Tensor.contract ct lOut o lO lX

    /// The kernel of DotGeneral (neural_tangents' `k.dot_general(other, other, is_lhs, dimension_numbers)`): see
    /// `Kernel.dotGeneral`; neither constant is the identity.
    let dotGeneralKernel (d: DotGeneralSpec) (k: Kernel) : Kernel =
        match constant d with
        | None -> k
        | Some(o, isLhs) -> Kernel.dotGeneral (Some o) (Some o) isLhs d.DimensionNumbers k

    /// <summary>DotGeneral's masking (neural_tangents' <c>supports_masking(remask_kernel=False)</c> and its
    /// <c>mask_fn</c> = <c>~dot_fn(~mask)</c>, the mask broadcast to the input's shape but its channel size): in the
    /// boolean dot_general (product AND, sum OR, the constant cast to bool) an output entry is visible when some
    /// visible input entry meets a nonzero coefficient, so it is masked when every input entry with a nonzero
    /// coefficient (none at all included) is masked. Here: the real dot_general of the 0/1 visibility with the
    /// constant's nonzero pattern, masked where it is 0.</summary>
    let dotGeneralMask (d: DotGeneralSpec) : MaskRule =
        Masking.propagating false (fun m shape ->
            match constant d with
            | None -> m
            | Some(o, isLhs) ->
                let c = (d.ChannelAxis + shape.Length) % shape.Length
                let target = Array.copy shape
                target[c] <- m.Shape[c]
                let visible = Masking.broadcastTo target m |> fun t -> Tensor.create (Array.copy t.Shape) (t.Data |> Array.map (fun v -> if v <> 0.0 then 0.0 else 1.0))
                let pattern = Tensor.create (Array.copy o.Shape) (o.Data |> Array.map (fun v -> if v <> 0.0 then 1.0 else 0.0))
                let spec = if isLhs then { d with Lhs = Some pattern } else { d with Rhs = Some pattern }
                let out = forward spec visible
                Tensor.create (Array.copy out.Shape) (out.Data |> Array.map (fun v -> if v > 0.0 then 0.0 else 1.0)))

    /// A tensor as nested argument lists (a scalar is a number), as the JSON form writes it.
    let rec tensorArg (shape: int[]) (data: float[]) : ArgValue =
        if shape.Length = 0 then FloatArg data[0]
        else
            let inner = data.Length / max 1 shape[0]
            ListArg [ for i in 0 .. shape[0] - 1 -> tensorArg shape[1..] (Array.sub data (i * inner) inner) ]

    /// DotGeneral(lhs, rhs, dimension_numbers, precision, batch_axis, channel_axis) (neural_tangents'
    /// <c>stax.DotGeneral</c>). No parameters; computations are float64 whatever <c>precision</c> says.
    let dotGeneral (d: DotGeneralSpec) : LayerDef =
        let (lc, rc), (lb, rb) = d.DimensionNumbers
        let opt (t: Tensor option) = match t with Some t -> tensorArg t.Shape t.Data | None -> NoneArg
        // The input's contracted axes: with a constant on the left the input is the rhs.
        let inputC = if d.Lhs.IsSome then rc else lc
        { Name = "DotGeneral"
          Args =
            [ "lhs", opt d.Lhs
              "rhs", opt d.Rhs
              "dimension_numbers", ListArg [ ListArg [ IntsArg lc; IntsArg rc ]; ListArg [ IntsArg lb; IntsArg rb ] ]
              "precision", NoneArg
              "batch_axis", IntArg d.BatchAxis
              "channel_axis", IntArg d.ChannelAxis ]
          // @requires(diagonal_batch = batch axis not contracted, diagonal_spatial = Diagonal(input = YES when nothing
          // but possibly the batch axis is contracted, else NO), batch_axis, channel_axis). A contracted batch axis is
          // refused by the kernel rule itself (the result would have no batch axes), so no batch requirement is stated.
          Requires =
            { BatchAxis = Some d.BatchAxis; ChannelAxis = Some d.ChannelAxis; Resets = false
              DiagonalBatch = None
              DiagonalSpatial =
                Some { Input = (if constant d = None || inputC.IsEmpty || inputC = [ d.BatchAxis ] then Tri.Yes else Tri.No)
                       Output = Tri.No } }
          // Kernel.dotGeneral refuses kernels that carry masks; the covariances of masked entries are already zero,
          // so the rule runs on the kernel without them and Masking.kernel attaches the output masks.
          Kernel = Masking.kernel "DotGeneral" (dotGeneralMask d) (fun _ k -> dotGeneralKernel d { k with Mask1 = None; Mask2 = None })
          Init = fun _ shape -> outputShape d shape, Params.none
          Apply = fun _ _ x -> forward d x
          Vjp = fun _ _ x ct -> backward d x ct
          ParamVjp = fun _ _ _ _ -> Params.none
          GradDot = None
          Jvp = LinearInInput
          Mask = dotGeneralMask d }
