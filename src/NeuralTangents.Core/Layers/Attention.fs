namespace NeuralTangents.Layers

open System
open NeuralTangents

/// GlobalSelfAttention (neural_tangents' `stax.GlobalSelfAttention` in `stax/linear.py`; Hron, Bahri,
/// Sohl-Dickstein and Novak 2020, "Infinite attention", arXiv:2006.10540): its infinite-width kernel, the finite
/// forward pass and the definition. Positional embeddings are one-hot (neural_tangents' `pos_emb_decay_fn=None`) or
/// have the covariance of a named decay function of the distance between positions (`PosEmbDecay`).
module Attention =

    let private fail (msg: string) = raise (NeuralTangentsException msg)

    let mechanismName (m: AttentionMechanism) =
        match m with
        | AttentionMechanism.Softmax -> "SOFTMAX"
        | AttentionMechanism.Identity -> "IDENTITY"
        | AttentionMechanism.Abs -> "ABS"
        | AttentionMechanism.Relu -> "RELU"

    let posEmbName (p: PositionalEmbedding) =
        match p with
        | PositionalEmbedding.NoEmbedding -> "NONE"
        | PositionalEmbedding.Sum -> "SUM"
        | PositionalEmbedding.Concat -> "CONCAT"

    /// Validated arguments: positive sizes, finite non-negative standard deviations.
    let attentionSpec (a: AttentionSpec) : AttentionSpec =
        let pos (name: string) (v: int) =
            if v < 1 then invalidArg name $"GlobalSelfAttention: must be ≥ 1, got {string v}"
        pos "nChanOut" a.NChanOut
        pos "nChanKey" a.NChanKey
        pos "nChanVal" a.NChanVal
        pos "nHeads" a.NHeads
        a.NChanPosEmb |> Option.iter (pos "nChanPosEmb")
        for name, v in [ "wKeyStd", a.WKeyStd; "wValueStd", a.WValueStd; "wQueryStd", a.WQueryStd; "wOutStd", a.WOutStd
                         "wPosEmbStd", a.WPosEmbStd; "bStd", defaultArg a.BStd 0.0 ] do
            if not (Double.IsFinite v) || v < 0.0 then invalidArg name $"GlobalSelfAttention: must be finite and ≥ 0, got {Show.g v}"
        if not (Double.IsFinite a.PosEmbPNorm) then invalidArg "posEmbPNorm" $"GlobalSelfAttention: must be finite, got {Show.g a.PosEmbPNorm}"
        if a.BatchAxis = a.ChannelAxis then
            invalidArg "channelAxis" $"GlobalSelfAttention: channel_axis must differ from batch_axis, both are {string a.BatchAxis}"
        match a.PosEmbDecayFn with
        | PosEmbDecay.Exponential v | PosEmbDecay.Power v when not (Double.IsFinite v && v > 0.0) ->
            invalidArg "posEmbDecayFn" $"GlobalSelfAttention: the decay function's length scale or exponent must be finite and > 0, got {Show.g v}"
        | _ -> ()
        a

    /// The name and argument of a decay function as the JSON form writes them (None: one-hot).
    let decayArg (d: PosEmbDecay) =
        match d with
        | PosEmbDecay.OneHot -> NoneArg
        | PosEmbDecay.Exponential l -> ListArg [ StringArg "exp"; FloatArg l ]
        | PosEmbDecay.Power e -> ListArg [ StringArg "power"; FloatArg e ]

    /// The covariance of the positional embeddings between the positions of a grid of <c>sizes</c> (row-major),
    /// (S × S) row-major (neural_tangents' `_pos_emb_pdist`): R[p, q] = decay(Σ_axes |p_a − q_a|^p_norm); OneHot is
    /// the identity (neural_tangents' pos_emb_decay_fn=None).
    let posEmbCovariance (decay: PosEmbDecay) (pNorm: float) (sizes: int[]) : float[] =
        let s = Array.fold (*) 1 sizes
        Array.init (s * s) (fun e ->
            let p, q = e / s, e % s
            match decay with
            | PosEmbDecay.OneHot -> if p = q then 1.0 else 0.0
            | _ ->
                let mutable d = 0.0
                let mutable rp, rq = p, q
                for ax in sizes.Length - 1 .. -1 .. 0 do
                    d <- d + float (abs (rp % sizes[ax] - rq % sizes[ax])) ** pNorm
                    rp <- rp / sizes[ax]
                    rq <- rq / sizes[ax]
                match decay with
                | PosEmbDecay.Exponential l -> Math.Exp(-d / l)
                | PosEmbDecay.Power x -> (1.0 + d) ** -x
                | PosEmbDecay.OneHot -> 0.0)

    /// The finite layer's embeddings with covariance R over positions (neural_tangents' apply_fn with a
    /// pos_emb_decay_fn: the N(0, 1) draws e (S, c) multiplied by the Cholesky factor L of R); with
    /// <c>transpose</c>, Lᵀ·e (the backward pass). OneHot: e itself.
    let private correlate (a: AttentionSpec) (sizes: int[]) (transpose: bool) (e: float[]) (c: int) =
        match a.PosEmbDecayFn with
        | PosEmbDecay.OneHot -> e
        | decay ->
            let s = Array.fold (*) 1 sizes
            let l =
                try Linalg.cholesky (posEmbCovariance decay a.PosEmbPNorm sizes) s
                with :? ArgumentException ->
                    fail ("GlobalSelfAttention: the embeddings' covariance " + (match decay with PosEmbDecay.OneHot -> "OneHot" | PosEmbDecay.Exponential l -> "Exponential " + Show.g l | PosEmbDecay.Power e -> "Power " + Show.g e) + " of the distances over positions " + Show.ints sizes + " is not positive definite, so the finite layer cannot draw them; use pos_emb_p_norm ≤ 2 or a smaller length scale")
            Array.init (s * c) (fun i ->
                let q, ch = i / c, i % c
                let mutable acc = 0.0
                for r in 0 .. s - 1 do acc <- acc + (if transpose then l[r * s + q] else l[q * s + r]) * e[r * c + ch]
                acc)

    // ---------------------------------------------------------------------------------------------
    // Kernel: covariances as (blocks, S, S) matrices over flattened positions.

    /// A full-spatial covariance with bn batch axes as (B, S, S): every spatial pair's first copies, then the
    /// second copies, flattened (the order of positions is the covariance's own, reversed or not — the rule treats
    /// positions symmetrically). Returns the permutation for <c>ofMatrices</c>.
    let private toMatrices (bn: int) (t: Tensor) =
        let nSp = (t.Rank - bn) / 2
        let perm = Array.concat [ Array.init bn id; Array.init nSp (fun s -> bn + 2 * s); Array.init nSp (fun s -> bn + 2 * s + 1) ]
        let s = Array.fold (*) 1 (Array.init nSp (fun i -> t.Shape[bn + 2 * i]))
        (Tensor.permute perm t).Data, s, perm

    /// The inverse of <c>toMatrices</c> for a tensor of <c>shape</c>.
    let private ofMatrices (perm: int[]) (shape: int[]) (data: float[]) =
        let permuted = Tensor.create (perm |> Array.map (fun a -> shape[a])) data
        let inverse = Array.zeroCreate perm.Length
        perm |> Array.iteri (fun i a -> inverse[a] <- i)
        Tensor.permute inverse permuted

    /// C = A·M·Bᵀ for S×S blocks stored at offsets.
    let private sandwich (s: int) (a: float[]) (ao: int) (m: float[]) (mo: int) (b: float[]) (bo: int) (out: float[]) (oo: int) =
        let tmp = Array.zeroCreate (s * s)
        for p in 0 .. s - 1 do
            for q' in 0 .. s - 1 do
                let mutable acc = 0.0
                for q in 0 .. s - 1 do acc <- acc + a[ao + p * s + q] * m[mo + q * s + q']
                tmp[p * s + q'] <- acc
        for p in 0 .. s - 1 do
            for p' in 0 .. s - 1 do
                let mutable acc = 0.0
                for q' in 0 .. s - 1 do acc <- acc + tmp[p * s + q'] * b[bo + p' * s + q']
                out[oo + p * s + p'] <- acc

    /// GlobalSelfAttention on a kernel (neural_tangents' `GlobalSelfAttention.kernel_fn`, arXiv:2006.10540).
    /// With one-hot positional embeddings R = δ(p, q) mixed in as kw·K + pw·R (SUM: kw = 1, pw = W_pos²; CONCAT: the
    /// channel fractions), write Ṽ for a mixed covariance.
    /// linear_scaling: the scores converge to G_n[p, q] = φ(W_Q W_K · Ṽ1[n, p, q]) (φ the mechanism; softmax over q),
    /// and every covariance becomes W_O²W_V²·G_a·M·G_bᵀ + b² with M the (mixed when val_pos_emb) covariance;
    /// ntk' = W_O²W_V²·G_a·Θ·G_bᵀ + b² + 2·(nngp' − b²) (the weights of keys, values and outputs all train).
    /// Square-root scaling has a closed form only for IDENTITY: with d = Σ_{p,q} Ṽ∘M over positions,
    /// K' = (W_Q W_K W_O W_V)²·d·Ṽ + b², and Θ' = (…)²·(t·Ṽ + d·(Θ̃ + 4Ṽ)) + b², t = 2Σ Ṽ∘Θ̃ (or the split sum
    /// when embeddings enter keys only).
    ///
    /// With masks (neural_tangents' masked `kernel_fn`): each sample's masked keys are excluded from the weights —
    /// their scores set to −1e20 before the softmax, to 0 for the other mechanisms (`_get_weighting`) — and the
    /// embedding term δ(p, q) of a pair with a masked position is dropped (`R` masked by `_get_mask_prods`).
    let attentionKernel (a: AttentionSpec) (k: Kernel) : Kernel =
        if k.DiagonalSpatial then
            fail "GlobalSelfAttention: needs the covariances between positions; compute the kernel with diagonal_spatial=False"
        if not a.LinearScaling && a.AttentionMechanism <> AttentionMechanism.Identity then
            fail $"GlobalSelfAttention: no known closed form for the kernel with square-root scaling (linear_scaling=False) and attention_mechanism={mechanismName a.AttentionMechanism}; use linear_scaling=True or IDENTITY"
        let ndim = k.Shape1.Length
        let ch = Axes.norm ndim k.ChannelAxis
        let nIn = float k.Shape1[ch]
        let hasR = a.PosEmbType <> PositionalEmbedding.NoEmbedding
        let kw, pw =
            match a.PosEmbType with
            | PositionalEmbedding.Concat ->
                let npe = float (defaultArg a.NChanPosEmb k.Shape1[ch])
                nIn / (nIn + npe), a.WPosEmbStd * a.WPosEmbStd * npe / (nIn + npe)
            | _ -> 1.0, a.WPosEmbStd * a.WPosEmbStd
        let covN = if k.DiagonalBatch then 1 else 2
        let c1, s, permC = toMatrices covN k.Cov1
        let ss = s * s
        // R(p, q) over the positions in the covariances' own axis order (a reversed kernel reverses both copies, and
        // the distance is a sum over axes, so R needs no reversal of its own).
        let r =
            let nSp = (k.Nngp.Rank - 2) / 2
            posEmbCovariance a.PosEmbDecayFn a.PosEmbPNorm (Array.init nSp (fun i -> k.Nngp.Shape[2 + 2 * i]))
        // Masked positions per (sample, position) of x1 and x2 (x2's are x1's when x2 is x1), channels collapsed.
        let flagsOf (m: Tensor option) (shape: int[]) = m |> Option.map (fun m -> Masking.positions k shape (Masking.collapseChannel ch m))
        let f1 = flagsOf k.Mask1 k.Shape1
        let f2 = match flagsOf k.Mask2 k.Shape2 with Some f -> Some f | None -> f1
        // kw·M + pw·R(p, q) with embeddings (neural_tangents' weighted_sum), M itself without; an embedding is zero
        // at a masked position, so R(p, q) counts only where neither sample i's p nor sample j's q is masked. Block
        // b of M pairs sample b / cols of fa with sample b % cols of fb (cols = 1: the per-sample blocks of one input).
        let mixFor (fa: bool[] option) (fb: bool[] option) (cols: int) (m: float[]) =
            if not hasR then m
            else
                m |> Array.mapi (fun e v ->
                    let blk, p, q = e / ss, (e % ss) / s, e % s
                    let i, j = (if cols = 1 then blk, blk else blk / cols, blk % cols)
                    let masked =
                        (fa |> Option.exists (fun f -> f[i * s + p])) || (fb |> Option.exists (fun f -> f[j * s + q]))
                    kw * v + (if masked then 0.0 else pw * r[e % ss]))
        let b2 = match a.BStd with Some b -> b * b | None -> 0.0
        let qk = a.WQueryStd * a.WKeyStd
        let ov = a.WOutStd * a.WValueStd
        let n1, n2 = k.Nngp.Shape[0], k.Nngp.Shape[1]
        let nngpM, _, permN = toMatrices 2 k.Nngp
        let ntkM = k.Ntk |> Option.map (fun t -> let d, _, _ = toMatrices 2 t in d)
        let c2 = k.Cov2 |> Option.map (fun t -> let d, _, _ = toMatrices covN t in d)
        // The per-sample diagonal blocks of a covariance (n, n): itself with a diagonal batch.
        let sampleBlocks (c: float[]) (n: int) =
            if k.DiagonalBatch then c else Array.init (n * ss) (fun e -> c[((e / ss) * n + e / ss) * ss + e % ss])
        let result (cov1: float[]) (cov2: float[] option) (nngp: float[]) (ntk: float[] option) =
            { k with
                Cov1 = ofMatrices permC k.Cov1.Shape cov1
                Cov2 = Option.map2 (fun (t: Tensor) d -> ofMatrices permC t.Shape d) k.Cov2 cov2
                Nngp = ofMatrices permN k.Nngp.Shape nngp
                Ntk = Option.map2 (fun (t: Tensor) d -> ofMatrices permN t.Shape d) k.Ntk ntk
                IsGaussian = true
                IsInput = false
                Shape1 = (let sh = Array.copy k.Shape1 in sh[ch] <- a.NChanOut; sh)
                Shape2 = (let sh = Array.copy k.Shape2 in sh[ch] <- a.NChanOut; sh) }
        if a.LinearScaling then
            // G_n = φ(W_Q W_K · Ṽ[n]) with Ṽ the mixed per-sample covariance (neural_tangents' _get_weighting).
            let weights (f: bool[] option) (blocks: float[]) (n: int) =
                let v = match f with Some _ -> Array.copy (mixFor f f 1 blocks) | None -> mixFor f f 1 blocks
                // Masked keys q of sample i: −1e20 before the softmax (neural_tangents' _NEG_INF), 0 otherwise.
                f |> Option.iter (fun f ->
                    let fill = if a.AttentionMechanism = AttentionMechanism.Softmax then -1e20 else 0.0
                    for i in 0 .. n - 1 do
                        for q in 0 .. s - 1 do
                            if f[i * s + q] then
                                for p in 0 .. s - 1 do v[i * ss + p * s + q] <- fill)
                let g = Array.zeroCreate (n * ss)
                for i in 0 .. n - 1 do
                    for p in 0 .. s - 1 do
                        let row = i * ss + p * s
                        match a.AttentionMechanism with
                        | AttentionMechanism.Softmax ->
                            let mutable mx = Double.NegativeInfinity
                            for q in 0 .. s - 1 do mx <- max mx (qk * v[row + q])
                            let mutable z = 0.0
                            for q in 0 .. s - 1 do
                                let e = Math.Exp(qk * v[row + q] - mx)
                                g[row + q] <- e
                                z <- z + e
                            for q in 0 .. s - 1 do g[row + q] <- g[row + q] / z
                        | AttentionMechanism.Identity -> for q in 0 .. s - 1 do g[row + q] <- qk * v[row + q]
                        | AttentionMechanism.Abs -> for q in 0 .. s - 1 do g[row + q] <- abs (qk * v[row + q])
                        | AttentionMechanism.Relu -> for q in 0 .. s - 1 do g[row + q] <- max 0.0 (qk * v[row + q])
                g
            let g1 = weights f1 (sampleBlocks c1 n1) n1
            let g2 = match c2 with Some c -> weights f2 (sampleBlocks c n2) n2 | None -> g1
            let value (fa: bool[] option) (fb: bool[] option) (cols: int) (m: float[]) = if a.ValPosEmb then mixFor fa fb cols m else m
            // W_O²W_V²·G_a·M·G_bᵀ (+ b²) over the (rows × cols) blocks of a pair covariance, or per sample.
            let weigh (ga: float[]) (gb: float[]) (m: float[]) (rows: int) (cols: int) (pairs: bool) (bias: float) =
                let out = Array.zeroCreate m.Length
                for i in 0 .. rows - 1 do
                    for j in 0 .. cols - 1 do
                        let blk = (i * cols + j) * ss
                        let bj = if pairs then j else i
                        sandwich s ga (i * ss) m blk gb (bj * ss) out blk
                out |> Array.map (fun v -> ov * ov * v + bias)
            let covOut (f: bool[] option) (g: float[]) (c: float[]) (n: int) =
                if k.DiagonalBatch then weigh g g (value f f 1 c) n 1 false b2 else weigh g g (value f f n c) n n true b2
            let nngp' = weigh g1 g2 (value f1 f2 n2 nngpM) n1 n2 true b2
            let ntk' = ntkM |> Option.map (fun t -> Array.map2 (fun w nn -> w + 2.0 * (nn - b2)) (weigh g1 g2 (value f1 f2 n2 t) n1 n2 true b2) nngp')
            result (covOut f1 g1 c1 n1) (Option.map (fun c -> covOut f2 g2 c n2) c2) nngp' ntk'
        else
            // IDENTITY with 1/√d scaling: d = Σ over positions of Ṽ∘M per block (neural_tangents' dot).
            let std2 = (qk * ov) * (qk * ov)
            let blockDot (x: float[]) (y: float[]) = Array.init (x.Length / ss) (fun i -> Seq.sum (seq { for e in i * ss .. i * ss + ss - 1 -> x[e] * y[e] }))
            let scaleBlocks (d: float[]) (x: float[]) = x |> Array.mapi (fun e v -> d[e / ss] * v)
            let other (interp: float[]) (raw: float[]) = if a.ValPosEmb then interp else raw
            let affine (x: float[]) = x |> Array.map (fun v -> std2 * v + b2)
            let covOut (f: bool[] option) (n: int) (c: float[]) =
                let ci = mixFor f f (if k.DiagonalBatch then 1 else n) c
                affine (scaleBlocks (blockDot ci (other ci c)) ci)
            let nI = mixFor f1 f2 n2 nngpM
            let dot12 = blockDot nI (other nI nngpM)
            let nngp' = affine (scaleBlocks dot12 nI)
            let ntk' =
                ntkM |> Option.map (fun t ->
                    let tI = mixFor f1 f2 n2 t
                    let tDot =
                        if a.ValPosEmb || not hasR then blockDot nI tI |> Array.map ((*) 2.0)
                        else Array.map2 (+) (blockDot nI t) (blockDot nngpM tI)
                    affine (Array.init nI.Length (fun e -> tDot[e / ss] * nI[e] + dot12[e / ss] * (tI[e] + 4.0 * nI[e]))))
            result (covOut f1 n1 c1) (c2 |> Option.map (covOut f2 n2)) nngp' ntk'

    // ---------------------------------------------------------------------------------------------
    // The finite layer.

    /// Sizes of the finite layer for an input with nIn channels: (channels of key inputs, of value inputs, of
    /// the embeddings).
    let private widths (a: AttentionSpec) (nIn: int) =
        let npe = defaultArg a.NChanPosEmb nIn
        match a.PosEmbType with
        | PositionalEmbedding.Concat -> nIn + npe, (if a.ValPosEmb then nIn + npe else nIn), npe
        | _ -> nIn, nIn, npe

    /// Init (neural_tangents' order of draws by purpose): key (heads, in_k, d_k), value (heads, in_v, d_v), out
    /// (d_v·heads, out) and, when present, query (linear_scaling = false), bias and embeddings (1, spatial…, n_pe),
    /// all N(0, 1), from the key's splits 0–5. Parameters: [key; value; out] @ [query] @ [b] @ [pos_emb].
    let init (a: AttentionSpec) (key: RngKey) (shape: int[]) =
        let ch = Axes.norm shape.Length a.ChannelAxis
        let b = Axes.norm shape.Length a.BatchAxis
        let nIn = shape[ch]
        let inK, inV, npe = widths a nIn
        let draw (i: int) (sh: int[]) =
            Memory.parameter "GlobalSelfAttention" "weight tensor" sh (Rng.normals (Rng.split i key))
        let wk = draw 0 [| a.NHeads; inK; a.NChanKey |]
        let wv = draw 1 [| a.NHeads; inV; a.NChanVal |]
        let wo = draw 2 [| a.NChanVal * a.NHeads; a.NChanOut |]
        let wq = if a.LinearScaling then [] else [ draw 3 [| a.NHeads; inK; a.NChanKey |] ]
        let bias =
            match a.BStd with
            | None -> []
            | Some _ -> let sh = Array.create shape.Length 1 in sh[ch] <- a.NChanOut; [ draw 4 sh ]
        let pe =
            match a.PosEmbType with
            | PositionalEmbedding.NoEmbedding -> []
            | _ -> let sh = Array.copy shape in sh[ch] <- npe; sh[b] <- 1; [ draw 5 sh ]
        let outShape = Array.copy shape
        outShape[ch] <- a.NChanOut
        outShape, Leaf(wk :: wv :: wo :: wq @ bias @ pe)

    /// The forward pass (neural_tangents' `apply_fn`): per head, scores φ(c·Q Kᵀ) with c = W_Q W_K/(in_k·d_k) (linear
    /// scaling, Q = K) or /(in_k·√d_k), heads G·V concatenated (value-major), then W_O·W_V/√(d_v·heads·in_v)·(…)·W_out
    /// + b_std·b.
    /// One head's projection: inp (rows, cin) × W[head] (cin, d), W stored (heads, cin, d); zero inputs skipped.
    let private projectHead (rows: int) (inp: float[]) (cin: int) (w: Tensor) (head: int) (d: int) =
        let out = Array.zeroCreate (rows * d)
        for r in 0 .. rows - 1 do
            for c in 0 .. cin - 1 do
                let v = inp[r * cin + c]
                if v <> 0.0 then
                    for j in 0 .. d - 1 do out[r * d + j] <- out[r * d + j] + v * w.Data[(head * cin + c) * d + j]
        out

    /// The layer's parameters in init's order: W_key, W_value, W_out, W_query (without linear scaling), the bias
    /// (with b_std) and the positional embeddings (when drawn).
    let private weights (a: AttentionSpec) (p: Params) =
        let ts = match p with Leaf ts -> ts | _ -> invalidArg "params" "GlobalSelfAttention: the parameters do not match the layer tree"
        let rest = List.skip 3 ts
        let wq, rest = if a.LinearScaling then None, rest else Some rest.Head, rest.Tail
        let bias, rest = match a.BStd with Some _ -> Some rest.Head, rest.Tail | None -> None, rest
        ts[0], ts[1], ts[2], wq, bias, List.tryHead rest

    /// With a mask (neural_tangents' masked apply_fn): the embeddings are zeroed at masked entries, and masked keys
    /// (positions whose channels are all masked) get score −1e20 before the softmax, 0 for the other mechanisms.
    let forwardMasked (a: AttentionSpec) (mask: Tensor option) (p: Params) (x: Tensor) : Tensor =
        let wk, wv, wo, wq, bias, pe = weights a p
        let ndim = x.Rank
        let b, ch = Axes.norm ndim a.BatchAxis, Axes.norm ndim a.ChannelAxis
        // (N, S, C) views: batch first, channels last, positions flattened.
        let flat (t: Tensor) =
            let order = Array.concat [ [| b |]; [| for i in 0 .. ndim - 1 do if i <> b && i <> ch then yield i |]; [| ch |] ]
            let m = Tensor.permute order t
            m.Data, m.Shape[0], m.Length / (m.Shape[0] * m.Shape[ndim - 1]), m.Shape[ndim - 1]
        let xd, n, s, nIn = flat x
        let sizes = [| for i in 0 .. ndim - 1 do if i <> b && i <> ch then yield x.Shape[i] |]
        // The mask as (N, S, mc) with mc = 1 or the mask's channel count.
        let maskFlat =
            mask |> Option.map (fun m ->
                let target = Array.copy x.Shape
                target[ch] <- m.Shape[Axes.norm m.Rank a.ChannelAxis]
                let d, _, _, mc = flat (Masking.broadcastTo target m)
                d, mc)
        // Embeddings per sample (N, S, c), correlated over positions: neural_tangents' jnp.where(mask, 0, pos_emb), broadcast over the batch.
        let peFlat =
            pe |> Option.map (fun e ->
                let d, _, _, c = flat e
                let corr = correlate a sizes false d c
                let perSample = Array.init (n * s * c) (fun i -> a.WPosEmbStd * corr[i % (s * c)])
                match maskFlat with
                | Some(md, mc) ->
                    if mc <> 1 && mc <> c then
                        fail ("GlobalSelfAttention: a mask with " + string mc + " channels does not broadcast to the " + string c + " embedding channels")
                    perSample |> Array.mapi (fun i v -> if md[(i / c) * mc + (if mc = 1 then 0 else i % c)] <> 0.0 then 0.0 else v), c
                | None -> perSample, c)
        // Masked keys (sample, position): every channel of the mask set (jnp.all over channels).
        let keyMasked =
            maskFlat |> Option.map (fun (md, mc) -> Array.init (n * s) (fun r -> Seq.forall (fun ch -> md[r * mc + ch] <> 0.0) (seq { 0 .. mc - 1 })))
        // Inputs of keys and of values, (N, S, C) each.
        let keysIn, kc, valsIn, vc =
            match a.PosEmbType, peFlat with
            | PositionalEmbedding.Sum, Some(e, c) ->
                if c <> nIn then fail $"GlobalSelfAttention: SUM embeddings need n_chan_pos_emb = the input channels ({string nIn}), got {string c}"
                let summed = Array.init xd.Length (fun i -> xd[i] + e[i])
                summed, nIn, (if a.ValPosEmb then summed else xd), nIn
            | PositionalEmbedding.Concat, Some(e, c) ->
                let cat = Array.zeroCreate (n * s * (nIn + c))
                for i in 0 .. n - 1 do
                    for q in 0 .. s - 1 do
                        Array.blit xd ((i * s + q) * nIn) cat ((i * s + q) * (nIn + c)) nIn
                        Array.blit e ((i * s + q) * c) cat ((i * s + q) * (nIn + c) + nIn) c
                cat, nIn + c, (if a.ValPosEmb then cat else xd), (if a.ValPosEmb then nIn + c else nIn)
            | _ -> xd, nIn, xd, nIn
        let h, dk, dv = a.NHeads, a.NChanKey, a.NChanVal
        let project = projectHead (n * s)
        let scale = a.WQueryStd * a.WKeyStd / (float kc * (if a.LinearScaling then float dk else Math.Sqrt(float dk)))
        let heads = Array.zeroCreate (n * s * dv * h)
        for head in 0 .. h - 1 do
            let kmat = project keysIn kc wk head dk
            let qmat = match wq with Some w -> project keysIn kc w head dk | None -> kmat
            let vmat = project valsIn vc wv head dv
            for i in 0 .. n - 1 do
                for p in 0 .. s - 1 do
                    let g =
                        Array.init s (fun q ->
                            let qo, ko = (i * s + p) * dk, (i * s + q) * dk
                            let mutable acc = 0.0
                            for j in 0 .. dk - 1 do acc <- acc + qmat[qo + j] * kmat[ko + j]
                            scale * acc)
                    keyMasked |> Option.iter (fun km ->
                        let fill = if a.AttentionMechanism = AttentionMechanism.Softmax then -1e20 else 0.0
                        for q in 0 .. s - 1 do if km[i * s + q] then g[q] <- fill)
                    let g =
                        match a.AttentionMechanism with
                        | AttentionMechanism.Softmax ->
                            let mx = Array.max g
                            let e = g |> Array.map (fun v -> Math.Exp(v - mx))
                            let z = Array.sum e
                            e |> Array.map (fun v -> v / z)
                        | AttentionMechanism.Identity -> g
                        | AttentionMechanism.Abs -> g |> Array.map abs
                        | AttentionMechanism.Relu -> g |> Array.map (max 0.0)
                    for j in 0 .. dv - 1 do
                        let mutable acc = 0.0
                        for q in 0 .. s - 1 do acc <- acc + g[q] * vmat[(i * s + q) * dv + j]
                        // heads moved last then flattened: channel j·heads + head.
                        heads[(i * s + p) * (dv * h) + j * h + head] <- acc
        let outScale = a.WOutStd * a.WValueStd / Math.Sqrt(float (dv * h * vc))
        let nOut = a.NChanOut
        let out = Array.zeroCreate (n * s * nOut)
        for r in 0 .. n * s - 1 do
            for c in 0 .. dv * h - 1 do
                let v = heads[r * dv * h + c]
                if v <> 0.0 then
                    for o in 0 .. nOut - 1 do out[r * nOut + o] <- out[r * nOut + o] + v * wo.Data[c * nOut + o]
        let bStd = defaultArg a.BStd 0.0
        for r in 0 .. n * s - 1 do
            for o in 0 .. nOut - 1 do
                out[r * nOut + o] <- outScale * out[r * nOut + o] + (match bias with Some bt -> bStd * bt.Data[o] | None -> 0.0)
        // Back from (N, spatial…, out) to the input's axis order.
        let spatialAxes = [| for i in 0 .. ndim - 1 do if i <> b && i <> ch then yield i |]
        let flatShape = Array.concat [ [| n |]; spatialAxes |> Array.map (fun i -> x.Shape[i]); [| nOut |] ]
        let order = Array.concat [ [| b |]; spatialAxes; [| ch |] ]
        let inverse = Array.zeroCreate ndim
        order |> Array.iteri (fun i ax -> inverse[ax] <- i)
        Tensor.permute inverse (Tensor.create flatShape out)

    /// The forward pass without a mask.
    let forward (a: AttentionSpec) (p: Params) (x: Tensor) : Tensor = forwardMasked a None p x

    /// The backward pass of <c>forward</c>: (input cotangent, parameter cotangents) from the output cotangent, by the
    /// chain rule through each step (per head: K = X_k W_k, Q = K or X_k W_q, A = c·Q Kᵀ, G = φ(A) by rows,
    /// H = G·X_v W_v; then Y = o·[H…] W_out + b_std·b). Softmax rows pull back as dA = G∘(dG − Σ_q G dG).
    let backward (a: AttentionSpec) (p: Params) (x: Tensor) (ct: Tensor) : Tensor * Params =
        let wk, wv, wo, wq, bias, pe = weights a p
        let ndim = x.Rank
        let b, ch = Axes.norm ndim a.BatchAxis, Axes.norm ndim a.ChannelAxis
        let order = Array.concat [ [| b |]; [| for i in 0 .. ndim - 1 do if i <> b && i <> ch then yield i |]; [| ch |] ]
        let inverse = Array.zeroCreate ndim
        order |> Array.iteri (fun i ax -> inverse[ax] <- i)
        let flat (t: Tensor) = (Tensor.permute order t).Data
        let xd = flat x
        let n = x.Shape[b]
        let nIn = x.Shape[ch]
        let s = x.Length / (n * nIn)
        let dyd = flat ct
        let sizes = [| for i in 0 .. ndim - 1 do if i <> b && i <> ch then yield x.Shape[i] |]
        let peFlat, npe =
            match pe with
            | Some e -> correlate a sizes false (flat e) e.Shape[ch] |> Array.map ((*) a.WPosEmbStd), e.Shape[ch]
            | None -> [||], 0
        let concat = a.PosEmbType = PositionalEmbedding.Concat && pe.IsSome
        let sum = a.PosEmbType = PositionalEmbedding.Sum && pe.IsSome
        let kc = if concat then nIn + npe else nIn
        let vc = if concat && a.ValPosEmb then nIn + npe else nIn
        let keysIn =
            if sum then Array.init xd.Length (fun i -> xd[i] + peFlat[i % (s * nIn)])
            elif concat then
                let cat = Array.zeroCreate (n * s * kc)
                for i in 0 .. n - 1 do
                    for q in 0 .. s - 1 do
                        Array.blit xd ((i * s + q) * nIn) cat ((i * s + q) * kc) nIn
                        Array.blit peFlat (q * npe) cat ((i * s + q) * kc + nIn) npe
                cat
            else xd
        let valsIn = if a.ValPosEmb && (sum || concat) then keysIn else xd
        let h, dk, dv, nOut = a.NHeads, a.NChanKey, a.NChanVal, a.NChanOut
        let project = projectHead (n * s)
        let cScale = a.WQueryStd * a.WKeyStd / (float kc * (if a.LinearScaling then float dk else Math.Sqrt(float dk)))
        let oScale = a.WOutStd * a.WValueStd / Math.Sqrt(float (dv * h * vc))
        // Y = o·Hcat·W_out + b_std·b: dW_out = o·Hcatᵀ dY, dHcat = o·dY W_outᵀ, db = b_std·Σ dY.
        let hcat = Array.zeroCreate (n * s * dv * h)
        let perHead =
            Array.init h (fun head ->
                let kmat = project keysIn kc wk head dk
                let qmat = match wq with Some w -> project keysIn kc w head dk | None -> kmat
                let vmat = project valsIn vc wv head dv
                let amat = Array.zeroCreate (n * s * s)
                let gmat = Array.zeroCreate (n * s * s)
                for i in 0 .. n - 1 do
                    for pp in 0 .. s - 1 do
                        let row = (i * s + pp) * s
                        for q in 0 .. s - 1 do
                            let mutable acc = 0.0
                            for j in 0 .. dk - 1 do acc <- acc + qmat[(i * s + pp) * dk + j] * kmat[(i * s + q) * dk + j]
                            amat[row + q] <- cScale * acc
                        match a.AttentionMechanism with
                        | AttentionMechanism.Softmax ->
                            let mutable mx = Double.NegativeInfinity
                            for q in 0 .. s - 1 do mx <- max mx amat[row + q]
                            let mutable z = 0.0
                            for q in 0 .. s - 1 do
                                gmat[row + q] <- Math.Exp(amat[row + q] - mx)
                                z <- z + gmat[row + q]
                            for q in 0 .. s - 1 do gmat[row + q] <- gmat[row + q] / z
                        | AttentionMechanism.Identity -> for q in 0 .. s - 1 do gmat[row + q] <- amat[row + q]
                        | AttentionMechanism.Abs -> for q in 0 .. s - 1 do gmat[row + q] <- abs amat[row + q]
                        | AttentionMechanism.Relu -> for q in 0 .. s - 1 do gmat[row + q] <- max 0.0 amat[row + q]
                        for j in 0 .. dv - 1 do
                            let mutable acc = 0.0
                            for q in 0 .. s - 1 do acc <- acc + gmat[row + q] * vmat[(i * s + q) * dv + j]
                            hcat[(i * s + pp) * (dv * h) + j * h + head] <- acc
                kmat, qmat, vmat, amat, gmat)
        let dWo = Array.zeroCreate (dv * h * nOut)
        let dH = Array.zeroCreate (n * s * dv * h)
        for r in 0 .. n * s - 1 do
            for c in 0 .. dv * h - 1 do
                let mutable acc = 0.0
                for o in 0 .. nOut - 1 do
                    dWo[c * nOut + o] <- dWo[c * nOut + o] + oScale * hcat[r * dv * h + c] * dyd[r * nOut + o]
                    acc <- acc + dyd[r * nOut + o] * wo.Data[c * nOut + o]
                dH[r * dv * h + c] <- oScale * acc
        let dKeysIn = Array.zeroCreate keysIn.Length
        let dValsIn = Array.zeroCreate valsIn.Length
        let dWk = Array.zeroCreate wk.Length
        let dWv = Array.zeroCreate wv.Length
        let dWq = match wq with Some w -> Array.zeroCreate w.Length | None -> [||]
        for head in 0 .. h - 1 do
            let kmat, qmat, vmat, amat, gmat = perHead[head]
            let dK = Array.zeroCreate (n * s * dk)
            let dQ = Array.zeroCreate (n * s * dk)
            let dV = Array.zeroCreate (n * s * dv)
            for i in 0 .. n - 1 do
                for pp in 0 .. s - 1 do
                    let row = (i * s + pp) * s
                    // dG[p, q] = Σ_j dH[p, j]·V[q, j]; dV[q, j] += G[p, q]·dH[p, j].
                    let dG = Array.init s (fun q ->
                        let mutable acc = 0.0
                        for j in 0 .. dv - 1 do acc <- acc + dH[(i * s + pp) * (dv * h) + j * h + head] * vmat[(i * s + q) * dv + j]
                        acc)
                    for q in 0 .. s - 1 do
                        for j in 0 .. dv - 1 do
                            dV[(i * s + q) * dv + j] <- dV[(i * s + q) * dv + j] + gmat[row + q] * dH[(i * s + pp) * (dv * h) + j * h + head]
                    let dA =
                        match a.AttentionMechanism with
                        | AttentionMechanism.Softmax ->
                            let dot = Seq.sum (seq { for q in 0 .. s - 1 -> gmat[row + q] * dG[q] })
                            Array.init s (fun q -> gmat[row + q] * (dG[q] - dot))
                        | AttentionMechanism.Identity -> dG
                        | AttentionMechanism.Abs -> Array.init s (fun q -> float (sign amat[row + q]) * dG[q])
                        | AttentionMechanism.Relu -> Array.init s (fun q -> if amat[row + q] > 0.0 then dG[q] else 0.0)
                    // A[p, q] = c·Q[p]·K[q]: dQ[p] += c·dA[p, q]·K[q], dK[q] += c·dA[p, q]·Q[p].
                    for q in 0 .. s - 1 do
                        let g = cScale * dA[q]
                        if g <> 0.0 then
                            for j in 0 .. dk - 1 do
                                dQ[(i * s + pp) * dk + j] <- dQ[(i * s + pp) * dk + j] + g * kmat[(i * s + q) * dk + j]
                                dK[(i * s + q) * dk + j] <- dK[(i * s + q) * dk + j] + g * qmat[(i * s + pp) * dk + j]
            // Tied weights (linear scaling): Q = K, so dQ flows into K.
            let dKtot = if wq.IsNone then Array.map2 (+) dK dQ else dK
            // proj = inp·W[head]: dW[head] += inpᵀ·dOut, dInp += dOut·W[head]ᵀ.
            let pull (inp: float[]) (cin: int) (w: float[]) (dW: float[]) (dInp: float[]) (dOut: float[]) (d: int) =
                for r in 0 .. n * s - 1 do
                    for c in 0 .. cin - 1 do
                        let mutable acc = 0.0
                        for j in 0 .. d - 1 do
                            let g = dOut[r * d + j]
                            dW[(head * cin + c) * d + j] <- dW[(head * cin + c) * d + j] + inp[r * cin + c] * g
                            acc <- acc + g * w[(head * cin + c) * d + j]
                        dInp[r * cin + c] <- dInp[r * cin + c] + acc
            pull keysIn kc wk.Data dWk dKeysIn dKtot dk
            match wq with
            | Some w -> pull keysIn kc w.Data dWq dKeysIn dQ dk
            | None -> ()
            pull valsIn vc wv.Data dWv dValsIn dV dv
        // Back to x and the embeddings.
        let sameVals = a.ValPosEmb && (sum || concat)
        let dKeys = if sameVals then Array.map2 (+) dKeysIn dValsIn else dKeysIn
        let dx = Array.zeroCreate xd.Length
        let dpe = Array.zeroCreate (s * npe)
        for i in 0 .. n - 1 do
            for q in 0 .. s - 1 do
                let r = i * s + q
                for c in 0 .. nIn - 1 do
                    dx[r * nIn + c] <- dKeys[r * kc + c] + (if sameVals then 0.0 else dValsIn[r * nIn + c])
                if sum then for c in 0 .. nIn - 1 do dpe[q * npe + c] <- dpe[q * npe + c] + a.WPosEmbStd * dKeys[r * kc + c]
                if concat then for c in 0 .. npe - 1 do dpe[q * npe + c] <- dpe[q * npe + c] + a.WPosEmbStd * dKeys[r * kc + nIn + c]
        let back (shape: int[]) (data: float[]) =
            Tensor.permute inverse (Tensor.create (order |> Array.map (fun ax -> shape[ax])) data)
        let db = bias |> Option.map (fun bt ->
            let g = Array.zeroCreate nOut
            for r in 0 .. n * s - 1 do
                for o in 0 .. nOut - 1 do g[o] <- g[o] + defaultArg a.BStd 0.0 * dyd[r * nOut + o]
            Tensor.create bt.Shape g)
        let grads =
            [ Tensor.create wk.Shape dWk; Tensor.create wv.Shape dWv; Tensor.create wo.Shape dWo ]
            @ (match wq with Some w -> [ Tensor.create w.Shape dWq ] | None -> [])
            @ Option.toList db
            @ (match pe with Some e -> [ back e.Shape (correlate a sizes true dpe npe) ] | None -> [])
        back x.Shape dx, Leaf grads

    /// The forward-mode derivative of <c>forward</c>: the tangent of the output from the parameters' tangent dθ
    /// and the input's dx, by the product rule through each step (per head: dK = dX_k W_k + X_k dW_k, the same for Q
    /// and V; dA = c·(dQ Kᵀ + Q dKᵀ); softmax rows dG = G∘(dA − Σ_q G dA), IDENTITY dA, ABS sign(A)·dA, RELU
    /// 1[A &gt; 0]·dA; dH = dG·V + G·dV; then dY = o·(dH W_out + H dW_out) + b_std·db). The embeddings' tangent
    /// enters the key (and value) inputs as in the forward pass.
    let tangent (a: AttentionSpec) (p: Params) (dp: Params) (x: Tensor) (dx: Tensor) : Tensor =
        let wk, wv, wo, wq, _, pe = weights a p
        let dwk, dwv, dwo, dwq, dbias, dpe = weights a dp
        let ndim = x.Rank
        let b, ch = Axes.norm ndim a.BatchAxis, Axes.norm ndim a.ChannelAxis
        let spatialAxes = [| for i in 0 .. ndim - 1 do if i <> b && i <> ch then yield i |]
        let order = Array.concat [ [| b |]; spatialAxes; [| ch |] ]
        let inverse = Array.zeroCreate ndim
        order |> Array.iteri (fun i ax -> inverse[ax] <- i)
        let flat (t: Tensor) = (Tensor.permute order t).Data
        let n, nIn = x.Shape[b], x.Shape[ch]
        let s = x.Length / (n * nIn)
        let npe = match pe with Some e -> e.Shape[ch] | None -> 0
        let sizes = spatialAxes |> Array.map (fun i -> x.Shape[i])
        let embedded (e: Tensor option) =
            match e with
            | Some e -> correlate a sizes false (flat e) npe |> Array.map ((*) a.WPosEmbStd)
            | None -> [||]
        let concat = a.PosEmbType = PositionalEmbedding.Concat && pe.IsSome
        let sum = a.PosEmbType = PositionalEmbedding.Sum && pe.IsSome
        if sum && npe <> nIn then
            fail $"GlobalSelfAttention: SUM embeddings need n_chan_pos_emb = the input channels ({string nIn}), got {string npe}"
        let kc = if concat then nIn + npe else nIn
        let sameVals = a.ValPosEmb && (sum || concat)
        let vc = if concat && a.ValPosEmb then nIn + npe else nIn
        // The keys' inputs (x with the embeddings added or appended) are linear in (x, embeddings), so their
        // tangent is the same map of (dx, d embeddings).
        let keysOf (xd: float[]) (ped: float[]) =
            if sum then Array.init xd.Length (fun i -> xd[i] + ped[i % (s * nIn)])
            elif concat then
                let cat = Array.zeroCreate (n * s * kc)
                for r in 0 .. n * s - 1 do
                    Array.blit xd (r * nIn) cat (r * kc) nIn
                    Array.blit ped ((r % s) * npe) cat (r * kc + nIn) npe
                cat
            else xd
        let xd, dxd = flat x, flat dx
        let keysIn, dKeysIn = keysOf xd (embedded pe), keysOf dxd (embedded dpe)
        let valsIn, dValsIn = (if sameVals then keysIn else xd), (if sameVals then dKeysIn else dxd)
        let h, dk, dv, nOut = a.NHeads, a.NChanKey, a.NChanVal, a.NChanOut
        let project = projectHead (n * s)
        let dProject (inp: float[]) (dInp: float[]) (cin: int) (w: Tensor) (dw: Tensor) (head: int) (d: int) =
            Array.map2 (+) (project dInp cin w head d) (project inp cin dw head d)
        let cScale = a.WQueryStd * a.WKeyStd / (float kc * (if a.LinearScaling then float dk else Math.Sqrt(float dk)))
        let oScale = a.WOutStd * a.WValueStd / Math.Sqrt(float (dv * h * vc))
        let hcat = Array.zeroCreate (n * s * dv * h)
        let dHcat = Array.zeroCreate (n * s * dv * h)
        for head in 0 .. h - 1 do
            let kmat, dK = project keysIn kc wk head dk, dProject keysIn dKeysIn kc wk dwk head dk
            let qmat, dQ =
                match wq, dwq with
                | Some w, Some dw -> project keysIn kc w head dk, dProject keysIn dKeysIn kc w dw head dk
                | _ -> kmat, dK
            let vmat, dV = project valsIn vc wv head dv, dProject valsIn dValsIn vc wv dwv head dv
            let am, dam, gm, dgm = Array.zeroCreate s, Array.zeroCreate s, Array.zeroCreate s, Array.zeroCreate s
            for i in 0 .. n - 1 do
                for pp in 0 .. s - 1 do
                    let po = (i * s + pp) * dk
                    for q in 0 .. s - 1 do
                        let ko = (i * s + q) * dk
                        let mutable acc, dacc = 0.0, 0.0
                        for j in 0 .. dk - 1 do
                            acc <- acc + qmat[po + j] * kmat[ko + j]
                            dacc <- dacc + dQ[po + j] * kmat[ko + j] + qmat[po + j] * dK[ko + j]
                        am[q] <- cScale * acc
                        dam[q] <- cScale * dacc
                    match a.AttentionMechanism with
                    | AttentionMechanism.Softmax ->
                        let mx = Array.max am
                        let mutable z = 0.0
                        for q in 0 .. s - 1 do
                            gm[q] <- Math.Exp(am[q] - mx)
                            z <- z + gm[q]
                        let mutable gd = 0.0
                        for q in 0 .. s - 1 do
                            gm[q] <- gm[q] / z
                            gd <- gd + gm[q] * dam[q]
                        for q in 0 .. s - 1 do dgm[q] <- gm[q] * (dam[q] - gd)
                    | AttentionMechanism.Identity ->
                        for q in 0 .. s - 1 do
                            gm[q] <- am[q]
                            dgm[q] <- dam[q]
                    | AttentionMechanism.Abs ->
                        for q in 0 .. s - 1 do
                            gm[q] <- abs am[q]
                            dgm[q] <- float (sign am[q]) * dam[q]
                    | AttentionMechanism.Relu ->
                        for q in 0 .. s - 1 do
                            gm[q] <- max 0.0 am[q]
                            dgm[q] <- if am[q] > 0.0 then dam[q] else 0.0
                    for j in 0 .. dv - 1 do
                        let mutable acc, dacc = 0.0, 0.0
                        for q in 0 .. s - 1 do
                            let vo = (i * s + q) * dv + j
                            acc <- acc + gm[q] * vmat[vo]
                            dacc <- dacc + dgm[q] * vmat[vo] + gm[q] * dV[vo]
                        hcat[(i * s + pp) * (dv * h) + j * h + head] <- acc
                        dHcat[(i * s + pp) * (dv * h) + j * h + head] <- dacc
        let bStd = defaultArg a.BStd 0.0
        let out = Array.zeroCreate (n * s * nOut)
        for r in 0 .. n * s - 1 do
            for o in 0 .. nOut - 1 do
                let mutable acc = 0.0
                for c in 0 .. dv * h - 1 do
                    acc <- acc + dHcat[r * dv * h + c] * wo.Data[c * nOut + o] + hcat[r * dv * h + c] * dwo.Data[c * nOut + o]
                out[r * nOut + o] <- oScale * acc + (match dbias with Some db -> bStd * db.Data[o] | None -> 0.0)
        let flatShape = Array.concat [ [| n |]; spatialAxes |> Array.map (fun i -> x.Shape[i]); [| nOut |] ]
        Tensor.permute inverse (Tensor.create flatShape out)

    /// GlobalSelfAttention (neural_tangents' <c>stax.GlobalSelfAttention</c>).
    /// Attention's masking (neural_tangents' <c>GlobalSelfAttention.mask_fn</c>, remask_kernel=True): a position is
    /// masked when all its channels are.
    let private attentionMask (a: AttentionSpec) = Masking.propagating true (fun m _ -> Masking.collapseChannel a.ChannelAxis m)

    let globalSelfAttention (a: AttentionSpec) : LayerDef =
        { Name = "GlobalSelfAttention"
          Args =
            [ "n_chan_out", IntArg a.NChanOut
              "n_chan_key", IntArg a.NChanKey
              "n_chan_val", IntArg a.NChanVal
              "n_heads", IntArg a.NHeads
              "linear_scaling", BoolArg a.LinearScaling
              "W_key_std", FloatArg a.WKeyStd
              "W_value_std", FloatArg a.WValueStd
              "W_query_std", FloatArg a.WQueryStd
              "W_out_std", FloatArg a.WOutStd
              "b_std", OptFloatArg a.BStd
              "attention_mechanism", StringArg(mechanismName a.AttentionMechanism)
              "pos_emb_type", StringArg(posEmbName a.PosEmbType)
              "pos_emb_p_norm", FloatArg a.PosEmbPNorm
              "pos_emb_decay_fn", decayArg a.PosEmbDecayFn
              "n_chan_pos_emb", (match a.NChanPosEmb with Some c -> IntArg c | None -> NoneArg)
              "W_pos_emb_std", FloatArg a.WPosEmbStd
              "val_pos_emb", BoolArg a.ValPosEmb
              "batch_axis", IntArg a.BatchAxis
              "channel_axis", IntArg a.ChannelAxis ]
          // @requires(batch_axis, channel_axis, diagonal_spatial=Diagonal(input=NO)).
          Requires =
            { BatchAxis = Some a.BatchAxis; ChannelAxis = Some a.ChannelAxis; Resets = false
              DiagonalBatch = None; DiagonalSpatial = Some { Input = Tri.No; Output = Tri.No } }
          Kernel = Masking.kernel "GlobalSelfAttention" (attentionMask a) (fun _ k -> attentionKernel a k)
          Init = fun key shape -> init a key shape
          Apply = fun ctx p x -> forwardMasked a (ctx.Side.TryFind Masking.SideKey) p x
          Vjp = fun _ p x ct -> fst (backward a p x ct)
          ParamVjp = fun _ p x ct -> snd (backward a p x ct)
          GradDot = None
          Jvp = Tangent(fun _ p dp x dx -> tangent a p dp x dx)
          Mask = attentionMask a }
