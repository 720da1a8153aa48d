namespace NeuralTangents

open System
open NeuralTangents.Finite

/// <summary>Shapes flowing through a finite network at initialisation: one, or one per branch after <c>FanOut</c>.</summary>
type ShapeFlow =
    | OneShape of int[]
    | ManyShapes of int[] list

/// <summary>The <c>init_fn</c> interpreter: samples the parameters of a finite network and infers its output
/// shape (neural_tangents' <c>init_fn(rng, input_shape)</c>). The layer at tree path p draws from
/// <c>Rng.split</c> along p, so parameters do not depend on evaluation order.</summary>
[<RequireQualifiedAccess>]
module InitFn =

    let private fail (msg: string) = raise (NeuralTangentsException msg)

    let private one (layer: Layer) (flow: ShapeFlow) =
        match flow with
        | OneShape s -> s
        | ManyShapes ss ->
            fail (sprintf "%s: takes one input but receives %d branches; merge them first with FanInSum, FanInProd or FanInConcat"
                    (KernelFn.layerName layer) ss.Length)

    let private many (flow: ShapeFlow) =
        match flow with
        | ManyShapes ss -> ss
        | OneShape s -> [ s ]

    let private fanIn (layer: Layer) (flow: ShapeFlow) =
        match flow with
        | ManyShapes ss -> ss
        | OneShape _ -> KernelFn.fanInOfOne layer

    let private sameShapes (name: string) (ss: int[] list) =
        match ss with
        | [] -> fail (sprintf "%s: needs at least one input branch (use FanOut before it)" name)
        | s0 :: rest ->
            if rest |> List.exists (fun s -> s <> s0) then
                fail (sprintf "%s: all branches must have equal shapes, got %s" name (ss |> List.map (sprintf "%A") |> String.concat ", "))
            s0

    /// Dense: W (in, out·s1) of N(0, 1) samples from split 0, b of N(0, 1) samples from split 1; the standard
    /// parameterization then scales W by W_std/√(in/s0) and b by b_std (neural_tangents' `Dense.init_fn`).
    let private dense (key: RngKey) (d: DenseSpec) (shape: int[]) =
        let a = Axes.norm shape.Length d.ChannelAxis
        let inW = shape[a]
        let outW = NeuralTangents.Rules.Linear.denseOutWidth d
        let wScale, bScale =
            match d.Parameterization with
            | Parameterization.Ntk -> 1.0, 1.0
            | Parameterization.Standard -> d.WStd / Math.Sqrt(float inW / float (fst d.S)), defaultArg d.BStd 0.0
        let w = Rng.normals (Rng.split 0 key) (inW * outW)
        if wScale <> 1.0 then for i in 0 .. w.Length - 1 do w[i] <- wScale * w[i]
        let b =
            d.BStd |> Option.map (fun _ ->
                let bShape = Array.create shape.Length 1
                bShape[a] <- outW
                let v = Rng.normals (Rng.split 1 key) outW
                Tensor.create bShape (Array.map (fun x -> bScale * x) v))
        let outShape = Array.copy shape
        outShape[a] <- outW
        outShape, DenseParams(Tensor.create [| inW; outW |] w, b)

    /// Propagates shapes through a layer, sampling its parameters from <paramref name="key"/>.
    let rec private initFlow (key: RngKey) (layer: Layer) (flow: ShapeFlow) : ShapeFlow * Params =
        match layer with
        | Serial layers ->
            let f, ps =
                layers |> List.indexed |> List.fold (fun (f, acc) (i, l) ->
                    let f', p = initFlow (Rng.split i key) l f
                    f', p :: acc) (flow, [])
            f, Branches(List.rev ps)
        | Parallel layers ->
            let ss = many flow
            if ss.Length <> layers.Length then
                fail (sprintf "parallel: has %d branches but receives %d inputs; use FanOut(%d) before it"
                        layers.Length ss.Length layers.Length)
            let outs =
                List.zip layers ss |> List.mapi (fun i (l, s) ->
                    let f, p = initFlow (Rng.split i key) l (OneShape s)
                    one l f, p)
            ManyShapes(List.map fst outs), Branches(List.map snd outs)
        | FanOut num -> ManyShapes(List.replicate num (one layer flow)), NoParams
        | FanInSum -> OneShape(sameShapes "FanInSum" (fanIn layer flow)), NoParams
        | FanInProd -> OneShape(sameShapes "FanInProd" (fanIn layer flow)), NoParams
        | FanInConcat axis -> OneShape(Branching.concatShape axis (fanIn layer flow)), NoParams
        | Identity -> flow, NoParams
        | Dense d ->
            let s, p = dense key d (one layer flow)
            OneShape s, p
        | Flatten f -> OneShape(NeuralTangents.Rules.Linear.flattenShape f (one layer flow)), NoParams
        | ABRelu _ | Erf _ | Sin _ | Gelu _ | Monomial _ -> OneShape(one layer flow), NoParams

    /// <summary>Samples the parameters of a finite network and infers its output shape.</summary>
    /// <param name="seed">Seed of the root <see cref="T:NeuralTangents.RngKey"/>.</param>
    /// <param name="layer">The network.</param>
    /// <param name="inputShape">Shape of a batch of inputs in the network's layout (default (N, …, C)).</param>
    /// <returns>The output shape and the parameter tree.</returns>
    /// <exception cref="T:NeuralTangents.NeuralTangentsException">when the shapes do not fit the network.</exception>
    [<CompiledName("Init")>]
    let init (seed: int) (layer: Layer) (inputShape: int[]) : int[] * Params =
        if isNull inputShape then nullArg "inputShape"
        if inputShape |> Array.exists (fun d -> d < 1) then
            invalidArg "inputShape" (sprintf "dimensions must be ≥ 1, got %A" inputShape)
        match initFlow (Rng.ofSeed seed) layer (OneShape inputShape) with
        | OneShape s, p -> s, p
        | ManyShapes ss, _ ->
            fail (sprintf "the network ends in %d branches; end it with FanInSum, FanInProd or FanInConcat" ss.Length)
