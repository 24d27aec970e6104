"""PyTorch CPU peer of bench/bench_kernels.c: the same kernels at the same
ViT-B shapes (5 views x 257 tokens = 1285 rows, D 768, MLP 3072, 60 attention
matrices 257 x 257, d 64), float32, timed the same way (one warm-up, then the
upper median of 7 reps; MVEAD_BENCH_QUICK=1: 2 reps).

Backward passes call ATen's own backward kernels directly
(_softmax_backward_data, native_layer_norm_backward, gelu_backward, and the two
matmuls of a linear layer), so no autograd bookkeeping is timed, as ours times
the bare kernels. Byte and flop counts are the ones bench_kernels uses.
"""
import common

args = common.parse_args()
import torch  # noqa: E402  (after OMP_NUM_THREADS is in the environment)

common.set_torch_threads(args.threads)
torch.manual_seed(0)
reps = 2 if common.quick() else 7
nt = args.threads
ops = torch.ops.aten


def rnd(*shape):
    return torch.rand(*shape) * 2 - 1


def rec(name, shape, t, flops=None, nbytes=None):
    common.record("kern_" + common.slug(name + " " + shape), "pytorch", nt, shape, t, flops=flops, nbytes=nbytes)


print(f"## torch_kernels (torch {torch.__version__}, f32, {nt} threads, median of {reps})")
with torch.inference_mode():
    # softmax [60, 257, 257] over the last axis
    x, dy = rnd(60, 257, 257), rnd(60, 257, 257)
    y = torch.softmax(x, -1)
    n = 60.0 * 257 * 257 * 4
    rec("softmax fwd", "60x257x257", common.time_median(lambda: torch.softmax(x, -1), reps), nbytes=2 * n)
    rec("softmax bwd", "60x257x257",
        common.time_median(lambda: torch._softmax_backward_data(dy, y, -1, torch.float32), reps), nbytes=3 * n)

    # layernorm [1285, 768], eps 1e-6
    x, dy, w, b = rnd(1285, 768), rnd(1285, 768), rnd(768), rnd(768)
    _, mean, rstd = torch.native_layer_norm(x, [768], w, b, 1e-6)
    n = 1285.0 * 768 * 4
    rec("layernorm fwd", "1285x768", common.time_median(lambda: torch.native_layer_norm(x, [768], w, b, 1e-6), reps),
        nbytes=2 * n)
    rec("layernorm bwd", "1285x768",
        common.time_median(lambda: ops.native_layer_norm_backward(dy, x, [768], mean, rstd, w, b,
                                                                  [True, True, True]), reps), nbytes=4 * n)

    # exact (erf) GELU
    for rows, cols in ((1285, 3072), (1285, 768)):
        x, dy = rnd(rows, cols), rnd(rows, cols)
        n = rows * cols * 4.0
        shape = f"{rows}x{cols}"
        rec("gelu fwd", shape, common.time_median(lambda: torch.nn.functional.gelu(x), reps), nbytes=2 * n)
        rec("gelu bwd", shape, common.time_median(lambda: ops.gelu_backward(dy, x), reps), nbytes=3 * n)

    # linear layers y [M, N] = x [M, K] @ W[N, K]^T; backward dX = dY W, dW = dY^T X
    for M, K, N in ((1285, 768, 2304), (1285, 768, 768), (1285, 768, 3072), (1285, 3072, 768)):
        x, w, dy = rnd(M, K), rnd(N, K), rnd(M, N)
        fl = 2.0 * M * K * N
        shape = f"{M}x{K}x{N}"
        rec("matmul fwd x@W^T", shape, common.time_median(lambda: torch.nn.functional.linear(x, w), reps), flops=fl)
        rec("matmul bwd dX,dW", shape, common.time_median(lambda: (dy @ w, dy.t() @ x), reps), flops=2 * fl)

    # attention scores s [60, 257, 257] = q k^T; backward dQ = dS K, dK = dS^T Q
    q, k, ds = rnd(60, 257, 64), rnd(60, 257, 64), rnd(60, 257, 257)
    fl = 2.0 * 60 * 257 * 257 * 64
    rec("attn QK^T", "60x(257x64 @ 64x257)", common.time_median(lambda: torch.bmm(q, k.transpose(1, 2)), reps),
        flops=fl)
    rec("attn bwd dQ,dK", "60x257x257x64",
        common.time_median(lambda: (torch.bmm(ds, k), torch.bmm(ds.transpose(1, 2), q)), reps), flops=2 * fl)
