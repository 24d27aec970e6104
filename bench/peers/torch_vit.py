"""PyTorch CPU peer of bench/bench_vit.c: DINOv2 ViT-B/14 with random weights,
float32, a batch of 5 images 224 x 224, through block 8 (no final norm).

The model is the HuggingFace Dinov2Model layout written out: patch embedding
(14 x 14 conv), CLS token, position embeddings trained for 518 px (37 x 37)
bicubically resized to the 16 x 16 grid on every forward, and pre-norm blocks:
LN (eps 1e-6) -> separate query/key/value Linear -> softmax(QK^T/sqrt(d)) V ->
output Linear -> LayerScale -> residual; LN -> Linear 768->3072 -> exact GELU ->
Linear 3072->768 -> LayerScale -> residual. All 12 blocks are built (so the
weights held match ours); 8 run.

  vit_fwd    : forward under torch.inference_mode, best of 5 after a warm-up
               (quick: 2), as bench_vit's "no-grad forward, best"
  vit_fwdbwd : forward + backward of sum(block 8 output) w.r.t. the pixels and
               every parameter, best of 3 (quick: 1, no warm-up), as bench_vit
"""
import math

import common

args = common.parse_args()
import torch  # noqa: E402
import torch.nn as nn  # noqa: E402
import torch.nn.functional as F  # noqa: E402

common.set_torch_threads(args.threads)
torch.manual_seed(1234)
quick = common.quick()
B, HW, P, D, HEADS, MLP, DEPTH, RUN_DEPTH, GRID0 = 5, 224, 14, 768, 12, 3072, 12, 8, 37
nt = args.threads


class Block(nn.Module):
    def __init__(self):
        super().__init__()
        self.norm1 = nn.LayerNorm(D, eps=1e-6)
        self.q, self.k, self.v, self.o = (nn.Linear(D, D) for _ in range(4))
        self.ls1 = nn.Parameter(torch.full((D,), 1.0))
        self.norm2 = nn.LayerNorm(D, eps=1e-6)
        self.fc1, self.fc2 = nn.Linear(D, MLP), nn.Linear(MLP, D)
        self.ls2 = nn.Parameter(torch.full((D,), 1.0))

    def forward(self, x):
        b, t, _ = x.shape
        d = D // HEADS
        y = self.norm1(x)
        q = self.q(y).view(b, t, HEADS, d).transpose(1, 2)
        k = self.k(y).view(b, t, HEADS, d).transpose(1, 2)
        v = self.v(y).view(b, t, HEADS, d).transpose(1, 2)
        a = torch.softmax(q @ k.transpose(-1, -2) / math.sqrt(d), dim=-1)
        y = (a @ v).transpose(1, 2).reshape(b, t, D)
        x = x + self.ls1 * self.o(y)
        x = x + self.ls2 * self.fc2(F.gelu(self.fc1(self.norm2(x))))
        return x


class ViT(nn.Module):
    def __init__(self):
        super().__init__()
        self.patch = nn.Conv2d(3, D, P, stride=P)
        self.cls = nn.Parameter(torch.randn(1, 1, D) * 0.02)
        self.pos = nn.Parameter(torch.randn(1, 1 + GRID0 * GRID0, D) * 0.02)
        self.blocks = nn.ModuleList(Block() for _ in range(DEPTH))

    def forward(self, px, depth):
        b, _, h, w = px.shape
        gh, gw = h // P, w // P
        x = self.patch(px).flatten(2).transpose(1, 2)
        grid = self.pos[:, 1:].reshape(1, GRID0, GRID0, D).permute(0, 3, 1, 2)
        grid = F.interpolate(grid, size=(gh, gw), mode="bicubic", align_corners=False)
        pos = torch.cat([self.pos[:, :1], grid.permute(0, 2, 3, 1).reshape(1, gh * gw, D)], 1)
        x = torch.cat([self.cls.expand(b, -1, -1), x], 1) + pos
        for blk in self.blocks[:depth]:
            x = blk(x)
        return x


def vit_flops():
    """forward FLOPs of the batch through RUN_DEPTH blocks (as mvn_vit_flops)."""
    t, n = (HW // P) ** 2 + 1, (HW // P) ** 2
    per_block = 2.0 * t * D * 4 * D + 2.0 * t * D * MLP * 2 + 4.0 * t * t * D
    return B * (2.0 * n * D * 3 * P * P + RUN_DEPTH * per_block)


model = ViT().eval()
px = torch.randn(B, 3, HW, HW)
weights_mb = sum(p.numel() for p in model.parameters()) * 4 / 1048576.0
rss0 = common.peak_rss_mb()
fl = vit_flops()
size = f"B{B}x{HW}px_blocks{RUN_DEPTH}"
# held: the weights, the pixels, the residual stream and the widest activations of one block
t = (HW // P) ** 2 + 1
held_fwd = weights_mb + (B * 3 * HW * HW + B * t * (3 * D + MLP) + B * HEADS * t * t) * 4 / 1048576.0

print(f"## torch_vit (torch {torch.__version__}, f32, {nt} threads{', quick' if quick else ''})")
with torch.inference_mode():
    tf = common.time_best(lambda: model(px, RUN_DEPTH), 2 if quick else 5)
common.record("vit_fwd", "pytorch", nt, size, tf, flops=fl, held_mb=held_fwd, rss0_mb=rss0)


def fwd_bwd():
    x = px.clone().requires_grad_(True)
    model.zero_grad(set_to_none=True)
    model(x, RUN_DEPTH).sum().backward()


# held for backward: weights and their gradients, the pixels, and per block the saved
# activations (LN1 in/out, q, k, v, attention output, residual, LN2 out: 8 D; fc1 and
# GELU outputs: 2 MLP; the probabilities: heads x T) for every token
held_bwd = 2 * weights_mb + (B * 3 * HW * HW + RUN_DEPTH * B * t * (8 * D + 2 * MLP + HEADS * t)) * 4 / 1048576.0
tb = common.time_best(fwd_bwd, 1 if quick else 3, warmup=False)
common.record("vit_fwdbwd", "pytorch", nt, size, tb, flops=3 * fl, held_mb=held_bwd, rss0_mb=rss0)
