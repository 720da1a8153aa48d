namespace NeuralTangents

open System.Collections.Generic
open NeuralTangents.Layers
open NeuralTangents.Rules

/// <summary>What flows between layers: one kernel, or one per branch after <c>FanOut</c>.</summary>
type KernelFlow =
    | One of Kernel
    | Many of Kernel list

/// <summary>How <c>kernel_fn</c> executes a network; the reference execution exists to check the fast one. Both
/// give the same numbers bit for bit, except in runs of Conv/ABRelu layers, which the fast execution computes band by
/// band with a division-free arc-cosine (<c>Rules.ConvStack</c>): there they agree to rounding (≤ 1e-13 relative,
/// tested).</summary>
type Execution =
    { /// Rules overwrite arrays that the plan itself allocated and no live register still holds.
      InPlace: bool
      /// Runs of Dense/ABRelu layers through the fused MLP executor (tile by tile in cache, the rules' bits), and
      /// runs of Conv/ABRelu layers through the fused convolution executor (rewrites of the plan).
      Fuse: bool }

    /// In-place passes and fusion on (the default).
    static member Fast = { InPlace = true; Fuse = true }
    /// Every rule allocates its output; no fusion.
    static member Reference = { InPlace = false; Fuse = false }

/// <summary>One operation of a kernel plan: a rule from a register (or registers) into a fresh register.</summary>
type internal KernelOp =
    /// A leaf layer's kernel rule.
    | LeafOp of layer: Layer * def: LayerDef * src: int * dst: int
    /// A run of Dense and ABRelu leaves executed tile by tile in cache (<c>Rules.DenseStack</c>), falling back to
    /// the leaves' own rules (each Dense → ABRelu pair in one pass) for kernels the executor does not cover.
    | FusedDenseStackOp of leaves: (Layer * LayerDef) list * src: int * dst: int
    /// A run of Conv and ABRelu leaves executed band by band in cache (<c>Rules.ConvStack</c>), falling back to the
    /// leaves' own rules for kernels the executor does not cover.
    | FusedConvStackOp of leaves: (Layer * LayerDef) list * src: int * dst: int
    /// A fan-in's kernel rule over several registers.
    | MergeOp of layer: Layer * def: MergeDef * srcs: int list * dst: int

/// <summary>Registers that flow between operations: one, or one per branch after <c>FanOut</c> (the same register
/// may appear in several branches: FanOut copies references, not arrays).</summary>
type internal RegisterFlow =
    | OneReg of int
    | ManyRegs of int list

/// <summary>A network compiled for <c>kernel_fn</c>: operations over numbered registers (the input in the first
/// ones), in execution order, and the registers of the output. Combinators leave no operation behind: serial is
/// order, parallel and FanOut are register bookkeeping, Identity is a renaming.</summary>
type internal KernelPlan = { Ops: KernelOp list; Registers: int; Output: RegisterFlow }

/// <summary>Compiling a network into a <see cref="T:NeuralTangents.KernelPlan"/>, rewriting it (fusion), and running
/// it with buffer reuse decided by the run: an operation may overwrite its source's arrays only when the run
/// allocated them, the operation is the source register's last reader, and no other live register holds them.</summary>
module internal KernelPlan =

    let private fail (msg: string) = raise (NeuralTangentsException msg)

    let private one (layer: Layer) (flow: RegisterFlow) =
        match flow with
        | OneReg r -> r
        | ManyRegs rs -> Definitions.branchesIntoOne layer rs.Length

    /// Compiles a network for an input of one kernel (<c>branches</c> = None, register 0) or of several branch
    /// kernels (registers 0 … n−1); the errors are those of neural_tangents' combinators (arity of parallel, fan-ins).
    let compileFor (branches: int option) (layer: Layer) : KernelPlan =
        let ops = ResizeArray<KernelOp>()
        let mutable next = defaultArg branches 1
        let fresh () =
            let r = next
            next <- next + 1
            r
        let rec go (layer: Layer) (flow: RegisterFlow) : RegisterFlow =
            match Definitions.node layer with
            | SerialNode layers -> layers |> List.fold (fun f l -> go l f) flow
            | ParallelNode layers ->
                let rs = match flow with ManyRegs rs -> rs | OneReg r -> [ r ]
                if layers.IsEmpty then fail "parallel: needs at least one branch, got parallel []"
                if rs.Length <> layers.Length then
                    fail ("parallel: has " + string layers.Length + " branches but receives " + string rs.Length + " inputs; use FanOut(" + string layers.Length + ") before it")
                ManyRegs(List.map2 (fun l r -> go l (OneReg r) |> one l) layers rs)
            | FanOutNode num -> ManyRegs(List.replicate num (one layer flow))
            | MergeNode m ->
                match flow with
                | ManyRegs rs ->
                    let dst = fresh ()
                    ops.Add(MergeOp(layer, m, rs, dst))
                    OneReg dst
                | OneReg _ -> Definitions.oneIntoFanIn layer
            | LeafNode _ when layer = Identity -> OneReg(one layer flow)
            | LeafNode d ->
                let dst = fresh ()
                ops.Add(LeafOp(layer, d, one layer flow, dst))
                OneReg dst
        let input = match branches with None -> OneReg 0 | Some n -> ManyRegs [ 0 .. n - 1 ]
        let output = go layer input
        { Ops = List.ofSeq ops; Registers = next; Output = output }

    /// Compiles a network for one input kernel.
    let compile (layer: Layer) : KernelPlan = compileFor None layer

    let private outputRegisters (plan: KernelPlan) =
        match plan.Output with
        | OneReg r -> [ r ]
        | ManyRegs rs -> rs

    let private sources (op: KernelOp) =
        match op with
        | LeafOp(_, _, s, _) | FusedDenseStackOp(_, s, _) | FusedConvStackOp(_, s, _) -> [ s ]
        | MergeOp(_, _, ss, _) -> ss

    /// Number of reads of every register by the operations and the output.
    let private readers (plan: KernelPlan) =
        let n = Array.zeroCreate plan.Registers
        for op in plan.Ops do for s in sources op do n[s] <- n[s] + 1
        for r in outputRegisters plan do n[r] <- n[r] + 1
        n

    /// A leaf the fused convolution executor takes: a shared-weight Conv or an ABRelu.
    let private stackable (op: KernelOp) =
        match op with
        | LeafOp(Conv c, _, _, _) -> c.Kind = ConvKind.Conv
        | LeafOp(Activation(ABRelu _), _, _, _) -> true
        | _ -> false

    /// A leaf the fused MLP executor takes: a Dense or an ABRelu.
    let private denseStackable (op: KernelOp) =
        match op with
        | LeafOp((Dense _ | Activation(ABRelu _)), _, _, _) -> true
        | _ -> false

    /// The fusion rewrite: a maximal chain of Conv/ABRelu leaves (each intermediate register read only by the next
    /// leaf; at least one Conv and two leaves; a GlobalAvgPool/GlobalSumPool reading the last one may end it) becomes
    /// one <c>FusedConvStackOp</c>; then a maximal chain of Dense/ABRelu leaves (at least two, one of them an ABRelu)
    /// becomes one <c>FusedDenseStackOp</c>.
    let fuse (plan: KernelPlan) : KernelPlan =
        let reads = readers plan
        let rec chainOf (ok: KernelOp -> bool) (ops: KernelOp list) (acc: KernelOp list) =
            match acc, ops with
            | LeafOp(_, _, _, mid) :: _, (LeafOp(_, _, src, _) as op) :: rest when ok op && src = mid && reads[mid] = 1 ->
                chainOf ok rest (op :: acc)
            | _ -> List.rev acc, ops
        let chain = chainOf stackable
        // A run of leaves as its (layer, definition) pairs, its first source and its last destination register.
        let leavesOf (run: KernelOp list) =
            let leaves = run |> List.map (function LeafOp(l, d, _, _) -> l, d | _ -> invalidOp "not a leaf")
            let src = match run.Head with LeafOp(_, _, s, _) -> s | _ -> invalidOp "not a leaf"
            let dst = match List.last run with LeafOp(_, _, _, d) -> d | _ -> invalidOp "not a leaf"
            leaves, src, dst
        // One fusion pass, as a loop (no recursion per op: a plan may hold hundreds of thousands of ops, repeat n):
        // at an op that starts a run, takeRun takes the run and the rest; fuseRun makes the run one op, or None to
        // keep its ops as they are.
        let pass (starts: KernelOp -> bool) (takeRun: KernelOp -> KernelOp list -> KernelOp list * KernelOp list)
                 (fuseRun: KernelOp list -> KernelOp option) (ops: KernelOp list) =
            let out = ResizeArray<KernelOp>()
            let mutable ops = ops
            while not ops.IsEmpty do
                match ops with
                | op :: rest when starts op ->
                    let run, rest' = takeRun op rest
                    match fuseRun run with
                    | Some fused -> out.Add fused
                    | None -> out.AddRange run
                    ops <- rest'
                | op :: rest ->
                    out.Add op
                    ops <- rest
                | [] -> ()
            List.ofSeq out
        let hasLeaf (isIt: Layer -> bool) (run: KernelOp list) = run |> List.exists (function LeafOp(l, _, _, _) -> isIt l | _ -> false)
        let isConv (l: Layer) = match l with Conv _ -> true | _ -> false
        let stacks =
            pass stackable
                (fun op rest ->
                    let run, rest' = chain rest [ op ]
                    // A global pooling or a Flatten that is the stack's only reader ends it: the executor reduces it
                    // in cache (Flatten on the diagonal layout; on the full one its rule runs on the executor's output).
                    match List.last run, rest' with
                    | LeafOp(_, _, _, mid), (LeafOp((GlobalAvgPool _ | GlobalSumPool _ | Flatten _), _, src, _) as pool) :: rest'' when hasLeaf isConv run && src = mid && reads[mid] = 1 ->
                        run @ [ pool ], rest''
                    | _ -> run, rest')
                (fun run -> if run.Length >= 2 && hasLeaf isConv run then Some(FusedConvStackOp(leavesOf run)) else None)
        let denseStacks =
            pass denseStackable
                (fun op rest -> chainOf denseStackable rest [ op ])
                (fun run ->
                    if run.Length >= 2 && hasLeaf (function Activation _ -> true | _ -> false) run then Some(FusedDenseStackOp(leavesOf run))
                    else None)
        { plan with Ops = denseStacks (stacks plan.Ops) }

    /// The arrays a kernel holds.
    let private arraysOf (k: Kernel) : float[] list =
        [ yield k.Nngp.Data
          match k.Ntk with Some t -> yield t.Data | None -> ()
          yield k.Cov1.Data
          match k.Cov2 with Some t -> yield t.Data | None -> () ]

    let private distinct (arrays: float[] list) =
        arrays
        |> List.mapi (fun i a -> arrays |> List.skip (i + 1) |> List.forall (fun b -> not (obj.ReferenceEquals(a, b))))
        |> List.forall id

    /// A layer that needs the off-diagonal entries (its allowance's Input is No) cannot take a kernel that dropped
    /// them (neural_tangents' `requires` check).
    let private checkLayout (d: LayerDef) (k: Kernel) =
        let refuses (flag: bool) (allowance: Diagonal option) =
            flag && (allowance |> Option.exists (fun a -> a.Input = Tri.No))
        for name, flag, allowance in
            [ "diagonal_batch", k.DiagonalBatch, d.Requires.DiagonalBatch
              "diagonal_spatial", k.DiagonalSpatial, d.Requires.DiagonalSpatial ] do
            if refuses flag allowance then
                raise (NeuralTangentsException((d.Name + ": requires " + name + "=False, but the input kernel has " + name + "=True and so lacks the off-diagonal entries; recompute the input kernel with " + name + "=False")))

    /// Whether the plan's first operation is a fused Dense/ABRelu run on the (one) input register and its only
    /// reader: the input kernel's NTK, +0.0 everywhere, can then be left out (<c>runZeroNtk</c>).
    let takesZeroNtk (plan: KernelPlan) =
        match plan.Ops with
        | FusedDenseStackOp(_, 0, _) :: _ -> plan.Registers > 0 && (readers plan)[0] = 1
        | _ -> false

    /// Whether the plan's first operation is a fused Conv/ABRelu run on the (one) input register and its only
    /// reader: the input kernel can then be produced row by row as it is read (<c>runOnRows</c>) instead of stored.
    let takesInputRows (plan: KernelPlan) =
        match plan.Ops with
        | FusedConvStackOp(_, 0, _) :: _ -> plan.Registers > 0 && (readers plan)[0] = 1
        | _ -> false

    /// <paramref name="zeroNtk"/>: input register 0's kernel has no NTK array and stands for an NTK of +0.0
    /// everywhere, and the first operation is its only reader (<c>takesZeroNtk</c>).
    /// <paramref name="inputRows"/> = Some(rows, materialize): input register 0 holds a kernel without arrays whose
    /// blocks are the rows, read by the first operation only (<c>takesInputRows</c>); if the executor declines it,
    /// the stored input kernel is built by materialize.
    let private runCore (zeroNtk: bool) (inputRows: (InputRows.Rows * (unit -> Kernel)) option) (exec: Execution) (plan: KernelPlan)
                        (input: KernelFlow) (inputOwned: bool) : KernelFlow =
        let regs : Kernel option[] = Array.zeroCreate plan.Registers
        let pending = readers plan
        let mutable zeroInput = zeroNtk
        let mutable rowsInput = inputRows
        // Live holders of every array (by identity): registers that still have readers. Plus the arrays this run
        // allocated. An operation may overwrite an array only when it is owned and its source register, read for
        // the last time, is its only live holder.
        let refs = Dictionary<obj, int>(ReferenceEqualityComparer.Instance)
        let owned = HashSet<obj>(ReferenceEqualityComparer.Instance)
        let count (a: float[]) = match refs.TryGetValue(box a) with | true, n -> n | _ -> 0
        let setReg (r: int) (k: Kernel) =
            regs[r] <- Some k
            if pending[r] > 0 then for a in arraysOf k do refs[box a] <- count a + 1
        let get (r: int) =
            match regs[r] with
            | Some k -> k
            | None -> invalidOp $"kernel plan: register {string r} read before it is written"
        let inputs = match input with One k -> [ k ] | Many ks -> ks
        inputs |> List.iteri (fun i k ->
            setReg i k
            if inputOwned then for a in arraysOf k do owned.Add(box a) |> ignore)
        let writable (src: int) =
            exec.InPlace && pending[src] = 1
            && (let arrays = arraysOf (get src)
                distinct arrays && arrays |> List.forall (fun a -> owned.Contains(box a) && count a = 1))
        let finish (srcs: int list) (dst: int) (k: Kernel) =
            let before = HashSet<obj>(ReferenceEqualityComparer.Instance)
            for s in srcs do for a in arraysOf (get s) do before.Add(box a) |> ignore
            for a in arraysOf k do if not (before.Contains(box a)) then owned.Add(box a) |> ignore
            for s in srcs do
                pending[s] <- pending[s] - 1
                if pending[s] = 0 then
                    for a in arraysOf (get s) do refs[box a] <- count a - 1
                    regs[s] <- None
            setReg dst k
        let opName (op: KernelOp) =
            match op with
            | LeafOp(l, _, _, _) | MergeOp(l, _, _, _) -> Definitions.name l
            | FusedDenseStackOp(leaves, _, _) -> $"Dense/ABRelu stack of {string leaves.Length} (fused)"
            | FusedConvStackOp(leaves, _, _) -> $"Conv/ABRelu stack of {string leaves.Length} (fused)"
        let step (op: KernelOp) =
            match op with
            | LeafOp(_, d, src, dst) ->
                checkLayout d (get src)
                finish [ src ] dst (d.Kernel (writable src) (get src))
            | FusedDenseStackOp(leaves, src, dst) ->
                let k0 = get src
                for _, d in leaves do checkLayout d k0
                let inPlace = writable src
                let zero = zeroInput && src = 0
                // The input kernel without its NTK array also has an upper-only Gram matrix where Input.isUpperOnly.
                let upper = zero && Input.isUpperOnly k0
                let k =
                    match DenseStack.tryRunWith zero upper (List.map fst leaves) inPlace k0 with
                    | Some k -> k
                    | None ->
                        // Not covered: the rules get the zero NTK as an array (fresh, this run's own) and the whole
                        // Gram matrix.
                        if upper then Linalg.mirrorUpper k0.Nngp.Data k0.Nngp.Shape[0]
                        let k0 = if zero then { k0 with Ntk = Some(Tensor.zeros k0.Nngp.Shape) } else k0
                        // The leaves' own rules, each Dense → ABRelu pair in one pass; after the first operation the
                        // arrays are this operation's own (fresh, or k0's when they were writable).
                        let rec go (first: bool) (leaves: (Layer * LayerDef) list) (k: Kernel) =
                            let ip = if first then inPlace else exec.InPlace
                            match leaves with
                            | (Dense d, _) :: (Activation(ABRelu spec), _) :: rest ->
                                go false rest { Elementwise.denseAbRelu ip d spec k with IsGaussian = false }
                            | (_, d) :: rest -> checkLayout d k; go false rest (d.Kernel ip k)
                            | [] -> k
                        go true leaves k0
                finish [ src ] dst k
            | FusedConvStackOp(leaves, src, dst) ->
                let k0 = get src
                for _, d in leaves do checkLayout d k0
                // A trailing global pooling (or Flatten, on the diagonal layout) is reduced by the executor; its own
                // rule then sets the metadata. A Flatten of the full layout runs its rule on the executor's output.
                let stack, top =
                    let trunc = List.truncate (leaves.Length - 1) leaves
                    match List.last leaves with
                    | GlobalAvgPool _, d -> trunc, Some(ConvStack.GlobalMean, d)
                    | GlobalSumPool _, d -> trunc, Some(ConvStack.GlobalSum, d)
                    | Flatten _, d -> trunc, Some(ConvStack.PositionMean, d)
                    | _ -> leaves, None
                let reduce =
                    match top with
                    | Some(ConvStack.PositionMean, _) when not k0.DiagonalSpatial -> None
                    | t -> Option.map fst t
                let rows = if src = 0 then rowsInput else None
                let k =
                    match ConvStack.tryRunPooledFrom (Option.map fst rows) (List.map fst stack) reduce k0 with
                    | Some k -> match top with Some(_, d) -> d.Kernel false k | None -> k
                    | None ->
                        let k0 = match rows with Some(_, materialize) -> materialize () | None -> k0
                        leaves |> List.fold (fun k (_, d) -> checkLayout d k; d.Kernel false k) k0
                finish [ src ] dst k
            | MergeOp(_, m, srcs, dst) -> finish srcs dst (m.Kernel (List.map get srcs))
        for op in plan.Ops do
            if Timings.enabled then Timings.time ("op " + opName op) (fun () -> step op) else step op
            zeroInput <- false
            rowsInput <- None
        match plan.Output with
        | OneReg r -> One(get r)
        | ManyRegs rs -> Many(List.map get rs)

    /// Runs a plan on its input kernel(s) (one, or one per branch as the plan was compiled for).
    /// <paramref name="inputOwned"/>: the input's arrays were allocated for this run (the input kernel of
    /// <c>kernel_fn</c>), not the caller's. Returns the output flow.
    let run (exec: Execution) (plan: KernelPlan) (input: KernelFlow) (inputOwned: bool) : KernelFlow =
        runCore false None exec plan input inputOwned

    /// Runs a plan on an input kernel allocated for this run whose NTK is +0.0 everywhere but left out (Ntk = None;
    /// <c>Input.kernelWith false</c>, whose Gram matrix may be upper-only: <c>Input.isUpperOnly</c>): the first
    /// operation, when <c>takesZeroNtk</c>, never reads an all-zero array nor the Gram's lower triangle; otherwise the
    /// zeros are allocated and the Gram mirrored first. The same result as <c>run</c> with the whole kernel, bit for bit.
    let runZeroNtk (exec: Execution) (plan: KernelPlan) (input: Kernel) : KernelFlow =
        if input.Ntk.IsSome then invalidArg "input" "KernelPlan.runZeroNtk: the input kernel has an NTK array"
        if takesZeroNtk plan then runCore true None exec plan (One input) true
        else
            if Input.isUpperOnly input then Linalg.mirrorUpper input.Nngp.Data input.Nngp.Shape[0]
            runCore false None exec plan (One { input with Ntk = Some(Tensor.zeros input.Nngp.Shape) }) true

    /// Runs a plan that <c>takesInputRows</c> on an input kernel given as rows (<c>InputRows.ofInputs</c>: a kernel
    /// whose arrays are empty placeholders); <paramref name="materialize"/> builds the stored input kernel if the
    /// executor declines the rows.
    let runOnRows (exec: Execution) (plan: KernelPlan) (input: Kernel) (rows: InputRows.Rows) (materialize: unit -> Kernel) : KernelFlow =
        if not (takesInputRows plan) then invalidArg "plan" "KernelPlan.runOnRows: the plan does not start with a fused Conv/ABRelu run on its input"
        runCore false (Some(rows, materialize)) exec plan (One input) true
