"""PyTorch CPU peer of bench/bench_eam.c: the Epipolar Attention Module of
/work/shared/docs/method.md (EAM section; reference: fixtures/make/ref.py eam()
and mcp_objective()), float32, same shapes, same synthetic band mask.

Written the way one would write it for speed in PyTorch: the whole batch at
once, every query of the V*N patches attending over all V*N keys of its
sample with a (VN x VN) boolean mask whose own-view blocks are False (the same
formulation as ours); empty rows give a zero attention term (nan_to_num).

  eam_fwdbwd : O = EAM(Z); backward of sum(O * R) to the 10 parameters
  eam_step   : MCP+Reg objective (K = 20 centres, n_k = 1, lambda = 0.1;
               negatives as ref.py, batched), backward, torch.optim.AdamW step

Usage: eam.py --threads N [--batch B] [--patches N] [--reps R] [--what fwdbwd|step|both]
(defaults as bench_eam: batch 8, quick 1; N 256; reps 3, quick 2). Best of reps
after one warm-up; flops and held bytes counted by bench_eam's formulas.
"""
import math

import common


def extra(p):
    p.add_argument("--batch", type=int, default=1 if common.quick() else 8)
    p.add_argument("--patches", type=int, default=256)
    p.add_argument("--reps", type=int, default=2 if common.quick() else 3)
    p.add_argument("--what", default="both", choices=["fwdbwd", "step", "both"])


args = common.parse_args(extra)
import torch  # noqa: E402

common.set_torch_threads(args.threads)
torch.manual_seed(1)
V, D, HEADS, KC, NK, LAM = 5, 768, 12, 20, 1, 0.1
B, N, nt = args.batch, args.patches, args.threads
w = int(round(math.sqrt(N)))
assert w * w == N, "--patches must be a square"


def band_mask():
    """[VN, VN] bool: patch j of view a keeps patch k of view b != a when their rows differ by <= 1."""
    row = torch.arange(N) // w
    band = (row[:, None] - row[None, :]).abs() <= 1
    m = band.repeat(V, V)
    for a in range(V):
        m[a * N:(a + 1) * N, a * N:(a + 1) * N] = False
    return m


def init_params():
    bound = 1.0 / math.sqrt(D)
    p = {"ln_w": torch.ones(D), "ln_b": torch.zeros(D)}
    for n in ("q", "k", "v", "o"):
        p["w" + n] = torch.empty(D, D).uniform_(-bound, bound)
        p["b" + n] = torch.empty(D).uniform_(-bound, bound)
    for t in p.values():
        t.requires_grad_(True)
    return p


def eam(Z, mask, p):
    """Z [B, V, N, D] -> O [B, V, N, D]."""
    b = Z.shape[0]
    d = D // HEADS
    z = Z.reshape(b, V * N, D)
    y = torch.nn.functional.layer_norm(z, (D,), p["ln_w"], p["ln_b"], 1e-6)
    q = torch.nn.functional.linear(y, p["wq"], p["bq"]).view(b, V * N, HEADS, d).transpose(1, 2)
    k = torch.nn.functional.linear(y, p["wk"], p["bk"]).view(b, V * N, HEADS, d).transpose(1, 2)
    v = torch.nn.functional.linear(y, p["wv"], p["bv"]).view(b, V * N, HEADS, d).transpose(1, 2)
    s = (q @ k.transpose(-1, -2)) / math.sqrt(d)
    s = s.masked_fill(~mask, -math.inf)
    a = torch.nan_to_num(torch.softmax(s, -1), nan=0.0)
    o = (a @ v).transpose(1, 2).reshape(b, V * N, D)
    return (z + torch.nn.functional.linear(o, p["wo"], p["bo"])).view(b, V, N, D)


def objective(Z, mask, p, C, neg_view, neg_patch):
    """MCP + lambda * Reg of ref.py mcp_objective, batched over the samples."""
    O = eam(Z, mask, p)
    # pos: mean over patches of the distance to the nearest centre of the patch's view
    dist = torch.cdist(O.transpose(0, 1).reshape(V, B * N, D), C)
    pos = dist.min(-1).values.mean()
    bi = torch.arange(B)
    Zm = Z.clone()
    Zm[bi, neg_view, neg_patch] = 0.0
    Om = eam(Zm, mask, p)
    with torch.no_grad():
        change = torch.linalg.vector_norm(O - Om, dim=-1)             # [B, V, N]
        top = torch.topk(change, NK, dim=-1).indices                  # ties: not forced to the lower index
    negs, views = [Om[bi, neg_view, neg_patch]], [neg_view]
    for a in range(V):
        keep = neg_view != a                                          # samples whose support view is not a
        for r in range(NK):
            negs.append(Om[bi[keep], a, top[keep, a, r]])
            views.append(torch.full((int(keep.sum()),), a))
    negs, views = torch.cat(negs), torch.cat(views)
    neg = -torch.log(torch.linalg.vector_norm(negs[:, None] - C[views], dim=-1).mean(-1)).sum() / B
    return pos + LAM * neg


p = init_params()
mask = band_mask()
Z = torch.randn(B, V, N, D)
R = torch.rand(B, V, N, D) * 2 - 1
rss0 = common.peak_rss_mb()
vn = V * N
fwd_flops = B * (8.0 * vn * D * D + 4.0 * vn * vn * D)
params_bytes = 4.0 * (4 * D * D + 6 * D)
held = 4.0 * (2.0 * B * vn * D + 2.0 * (4 * D * D + 6 * D) + 5.0 * B * vn * D + B * HEADS * vn * vn)
size = f"B{B}xN{N}"
print(f"## eam.py (torch {torch.__version__}, f32, {nt} threads, best of {args.reps})")

if args.what in ("fwdbwd", "both"):
    def fwdbwd():
        for t in p.values():
            t.grad = None
        (eam(Z, mask, p) * R).sum().backward()
    common.record("eam_fwdbwd", "pytorch", nt, size, common.time_best(fwdbwd, args.reps), flops=3 * fwd_flops,
                  held_mb=held / 1048576.0, rss0_mb=rss0)

if args.what in ("step", "both"):
    C = torch.randn(V, KC, D)
    opt = torch.optim.AdamW(list(p.values()), lr=1e-4, weight_decay=1e-4, betas=(0.9, 0.999), eps=1e-8)
    gen = torch.Generator().manual_seed(7)

    def step():
        neg_view = torch.randint(0, V, (B,), generator=gen)
        neg_patch = torch.randint(0, N, (B,), generator=gen)
        opt.zero_grad(set_to_none=True)
        objective(Z, mask, p, C, neg_view, neg_patch).backward()
        opt.step()
    common.record("eam_step", "pytorch", nt, size, common.time_best(step, args.reps), flops=6 * fwd_flops,
                  held_mb=(2.0 * held + 2.0 * params_bytes) / 1048576.0, rss0_mb=rss0)
