"""speedcopilot micro track: a GPT trained on CPU (2 threads) on the synthetic micro corpus.

One self-contained script (torch + numpy). It prints the upstream modded-nanogpt log lines:
  step:{s}/{T} val_loss:{:.4f} train_time:{:.0f}ms step_avg:{:.2f}ms      (validation; clock paused)
  step:{s}/{T} train_loss:{:.4f} train_time:{:.0f}ms step_avg:{:.2f}ms    (every training step)
Data: shards from $SPEEDCOPILOT_MICRO_DATA or --data DIR (run `speedcopilot data prepare --track micro`).
Environment knobs: MICRO_SEED (default 0); for quick tests MICRO_MAX_STEPS, MICRO_VAL_EVERY, MICRO_VAL_WINDOWS.
"""

import argparse
import glob
import math
import os
import sys
import time
from dataclasses import dataclass

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")  # set before torch loads OpenMP: idle threads sleep, not spin
import numpy as np  # noqa: E402
import torch  # noqa: E402
import torch.nn as nn  # noqa: E402
import torch.nn.functional as F  # noqa: E402

torch.set_num_threads(2)

# ----------------------------------------------------------------------------------------------------
# do not change: val set, val tokens, target (the benchmark is defined by this block)
VAL_SEQ_LEN = 256  # each validation window: 256 input bytes, 256 target bytes
VAL_WINDOWS = int(os.environ.get("MICRO_VAL_WINDOWS", "256"))  # first 256 windows of the val shard
TARGET_VAL_LOSS = 1.60  # nats per byte on the validation windows
SHARD_MAGIC, SHARD_VERSION = 20240520, 1
# ----------------------------------------------------------------------------------------------------


@dataclass
class Hyperparameters:
    seq_len: int = 256
    batch_size: int = 16  # sequences per step
    num_iterations: int = 150
    val_every: int = 10
    lr: float = 3e-3  # Adam: embedding and head
    muon_lr: float = 0.03  # Muon: hidden weight matrices
    muon_momentum: float = 0.95
    betas: tuple = (0.9, 0.95)
    warmup_iters: int = 10
    cooldown_frac: float = 0.5  # fraction of the steps spent decaying the learning rate
    min_lr_frac: float = 0.1
    vocab_size: int = 256
    n_layer: int = 4
    n_head: int = 4
    n_embd: int = 128


args = Hyperparameters()
args.num_iterations = int(os.environ.get("MICRO_MAX_STEPS", args.num_iterations))
args.val_every = int(os.environ.get("MICRO_VAL_EVERY", args.val_every))
args.warmup_iters = min(args.warmup_iters, args.num_iterations // 10)
seed = int(os.environ.get("MICRO_SEED", "0"))
torch.manual_seed(seed)
np.random.seed(seed)

# ----------------------------------------------------------------------------------------------------
# Data


def load_shard(path):
    with open(path, "rb") as f:
        header = np.frombuffer(f.read(1024), dtype="<i4")
        if header.size != 256 or header[0] != SHARD_MAGIC or header[1] != SHARD_VERSION:
            sys.exit(f"error: {path} is not a token shard (bad header); run `speedcopilot data prepare --track micro --force`")
        tokens = np.frombuffer(f.read(), dtype="<u2")
    if tokens.size != header[2]:
        sys.exit(f"error: {path} is truncated; run `speedcopilot data prepare --track micro --force`")
    return tokens.astype(np.int64)


def find_data_dir():
    parser = argparse.ArgumentParser()
    parser.add_argument("--data", default=os.environ.get("SPEEDCOPILOT_MICRO_DATA"))
    data = parser.parse_args().data
    if not data:
        sys.exit("error: no micro data: set SPEEDCOPILOT_MICRO_DATA or pass --data DIR "
                 "(run `speedcopilot data prepare --track micro` first)")
    if not glob.glob(os.path.join(data, "micro_train_*.bin")) or not glob.glob(os.path.join(data, "micro_val_*.bin")):
        sys.exit(f"error: no micro shards in {data}; run `speedcopilot data prepare --track micro`")
    return data


data_dir = find_data_dir()
train_tokens = np.concatenate([load_shard(p) for p in sorted(glob.glob(os.path.join(data_dir, "micro_train_*.bin")))])
val_tokens = load_shard(sorted(glob.glob(os.path.join(data_dir, "micro_val_*.bin")))[0])


def build_val_set(tokens):
    # windows start at a newline (document boundary), do not overlap; targets after the window's last
    # complete token (a byte string ending in space or newline) are masked out
    starts, nxt = [], 0
    for p in np.flatnonzero(tokens == ord("\n")):
        if p >= nxt and p + VAL_SEQ_LEN + 1 <= len(tokens):
            starts.append(p)
            nxt = p + VAL_SEQ_LEN + 1
            if len(starts) == VAL_WINDOWS:
                break
    windows = np.stack([tokens[p : p + VAL_SEQ_LEN + 1] for p in starts])
    y = windows[:, 1:]
    ends = (y == ord(" ")) | (y == ord("\n"))
    last_end = VAL_SEQ_LEN - 1 - np.argmax(ends[:, ::-1], axis=1)
    mask = np.arange(VAL_SEQ_LEN)[None, :] <= last_end[:, None]
    return torch.from_numpy(windows[:, :-1]), torch.from_numpy(y), torch.from_numpy(mask)


val_x, val_y, val_mask = build_val_set(val_tokens)
batch_rng = np.random.default_rng(seed)


def next_batch():
    starts = batch_rng.integers(0, len(train_tokens) - args.seq_len - 1, size=args.batch_size)
    chunk = np.stack([train_tokens[s : s + args.seq_len + 1] for s in starts])
    return torch.from_numpy(chunk[:, :-1]), torch.from_numpy(chunk[:, 1:])


# ----------------------------------------------------------------------------------------------------
# Model


def norm(x):
    return F.rms_norm(x, (x.size(-1),))


class ReLUSquared(torch.autograd.Function):
    """relu(x)^2 with a hand-written backward: autograd of F.relu(x).square() runs ~5 slow elementwise kernels
    (threshold_backward, pow, muls), which made the MLP several times slower than GELU on CPU."""

    @staticmethod
    def forward(ctx, x):
        r = torch.relu(x)
        ctx.save_for_backward(r)
        return r.square()

    @staticmethod
    def backward(ctx, grad):
        (r,) = ctx.saved_tensors
        return (r + r).mul_(grad)


class Rotary(nn.Module):
    # rotary position embedding: rotate pairs of q/k channels by a position-dependent angle
    def __init__(self, dim, max_seq_len, base=10000.0):
        super().__init__()
        inv_freq = 1.0 / (base ** (torch.arange(0, dim, 2, dtype=torch.float32) / dim))
        freqs = torch.outer(torch.arange(max_seq_len, dtype=torch.float32), inv_freq)
        self.register_buffer("cos", freqs.cos()[None, None], persistent=False)
        self.register_buffer("sin", freqs.sin()[None, None], persistent=False)

    def forward(self, x):  # x: (B, n_head, T, head_dim)
        cos, sin = self.cos[:, :, : x.size(-2)], self.sin[:, :, : x.size(-2)]
        x1, x2 = x.chunk(2, dim=-1)
        return torch.cat([x1 * cos + x2 * sin, x2 * cos - x1 * sin], dim=-1)


class CausalSelfAttention(nn.Module):
    def __init__(self, config):
        super().__init__()
        self.n_head = config.n_head
        self.c_attn = nn.Linear(config.n_embd, 3 * config.n_embd, bias=False)
        self.c_proj = nn.Linear(config.n_embd, config.n_embd, bias=False)
        self.rotary = Rotary(config.n_embd // config.n_head, config.seq_len)

    def forward(self, x):
        B, T, C = x.size()
        q, k, v = self.c_attn(x).split(C, dim=2)
        q = q.view(B, T, self.n_head, C // self.n_head).transpose(1, 2)
        k = k.view(B, T, self.n_head, C // self.n_head).transpose(1, 2)
        v = v.view(B, T, self.n_head, C // self.n_head).transpose(1, 2)
        q, k = self.rotary(norm(q)), self.rotary(norm(k))  # QK-norm
        y = F.scaled_dot_product_attention(q, k, v, is_causal=True)
        y = y.transpose(1, 2).contiguous().view(B, T, C)
        return self.c_proj(y)


class MLP(nn.Module):
    def __init__(self, config):
        super().__init__()
        self.c_fc = nn.Linear(config.n_embd, 4 * config.n_embd, bias=False)
        self.c_proj = nn.Linear(4 * config.n_embd, config.n_embd, bias=False)

    def forward(self, x):
        return self.c_proj(ReLUSquared.apply(self.c_fc(x)))  # ReLU^2


class Block(nn.Module):
    def __init__(self, config):
        super().__init__()
        self.attn = CausalSelfAttention(config)
        self.mlp = MLP(config)

    def forward(self, x):
        x = x + self.attn(norm(x))
        x = x + self.mlp(norm(x))
        return x


class GPT(nn.Module):
    def __init__(self, config):
        super().__init__()
        self.wte = nn.Embedding(config.vocab_size, config.n_embd)
        self.blocks = nn.ModuleList([Block(config) for _ in range(config.n_layer)])
        self.lm_head = nn.Linear(config.n_embd, config.vocab_size, bias=False)  # untied from wte
        for name, p in self.named_parameters():
            if name.endswith("c_proj.weight") or name == "lm_head.weight":
                nn.init.zeros_(p)  # every residual branch and the head start at zero
            else:
                nn.init.normal_(p, mean=0.0, std=0.02)

    def forward(self, idx):
        x = self.wte(idx)
        for block in self.blocks:
            x = block(x)
        return self.lm_head(norm(x)).float()


model = GPT(args)

# ----------------------------------------------------------------------------------------------------
# Optimizer and schedule


def zeropower_via_newtonschulz5(G, steps=5, eps=1e-7):
    # approximately orthogonalize each matrix of the batch G (..., rows, cols): singular values -> ~1,
    # with a quintic Newton-Schulz iteration
    a, b, c = 3.4445, -4.7750, 2.0315
    X = G / (G.norm(dim=(-2, -1), keepdim=True) + eps)
    transposed = G.size(-2) > G.size(-1)
    if transposed:
        X = X.mT
    for _ in range(steps):
        A = X @ X.mT
        X = a * X + (b * A + c * A @ A) @ X
    return X.mT if transposed else X


class Muon(torch.optim.Optimizer):
    """MomentUm Orthogonalized by Newton-Schulz: SGD-momentum (Nesterov) whose 2-D update is orthogonalized."""

    def __init__(self, params, lr=0.02, momentum=0.95, ns_steps=5):
        super().__init__(params, dict(lr=lr, momentum=momentum, ns_steps=ns_steps))

    @torch.no_grad()
    def step(self):
        for group in self.param_groups:
            by_shape = {}
            for p in group["params"]:
                by_shape.setdefault(tuple(p.shape), []).append(p)
            for params in by_shape.values():  # all matrices of one shape are orthogonalized as one batch
                grads = torch.stack([p.grad for p in params])
                state = self.state[params[0]]
                if "momentum_buffer" not in state:
                    state["momentum_buffer"] = torch.zeros_like(grads)
                buf = state["momentum_buffer"]
                buf.mul_(group["momentum"]).add_(grads)
                update = zeropower_via_newtonschulz5(grads.add(buf, alpha=group["momentum"]), steps=group["ns_steps"])
                scale = max(1, params[0].size(0) / params[0].size(1)) ** 0.5
                for p, u in zip(params, update):
                    p.add_(u, alpha=-group["lr"] * scale)


hidden_matrices = [p for p in model.blocks.parameters() if p.dim() == 2]
embeddings = [model.wte.weight, model.lm_head.weight]
optimizers = [
    torch.optim.Adam(embeddings, lr=args.lr, betas=args.betas),
    Muon(hidden_matrices, lr=args.muon_lr, momentum=args.muon_momentum),
]
for opt in optimizers:
    for group in opt.param_groups:
        group["initial_lr"] = group["lr"]


def lr_multiplier(step):
    # warmup-stable-decay: short linear warm-up, constant, then linear cool-down to min_lr_frac
    if step < args.warmup_iters:
        return (step + 1) / args.warmup_iters
    decay_start = int(args.num_iterations * (1 - args.cooldown_frac))
    if step < decay_start:
        return 1.0
    progress = (step - decay_start) / max(1, args.num_iterations - decay_start)
    return 1.0 - (1 - args.min_lr_frac) * progress


# ----------------------------------------------------------------------------------------------------
# Training loop


@torch.no_grad()
def evaluate():
    model.eval()
    total, count = 0.0, 0
    for i in range(0, val_x.size(0), 64):
        with torch.autocast("cpu", dtype=torch.bfloat16):
            logits = model(val_x[i : i + 64])
        loss = F.cross_entropy(logits.flatten(0, 1), val_y[i : i + 64].flatten(), reduction="none")
        mask = val_mask[i : i + 64].flatten()
        total += loss[mask].sum().item()
        count += mask.sum().item()
    model.train()
    return total / count


training_time_ms = 0.0
t0 = time.perf_counter()
for step in range(args.num_iterations + 1):
    last_step = step == args.num_iterations
    if last_step or step % args.val_every == 0:
        training_time_ms += 1000 * (time.perf_counter() - t0)  # pause the clock during validation
        val_loss = evaluate()
        print(f"step:{step}/{args.num_iterations} val_loss:{val_loss:.4f} train_time:{training_time_ms:.0f}ms "
              f"step_avg:{training_time_ms / max(step, 1):.2f}ms", flush=True)
        t0 = time.perf_counter()
    if last_step:
        break
    x, y = next_batch()
    with torch.autocast("cpu", dtype=torch.bfloat16):  # bf16 matmuls (fast on CPUs with AVX512-BF16 / AMX)
        logits = model(x)
    loss = F.cross_entropy(logits.flatten(0, 1), y.flatten())
    loss.backward()
    for opt in optimizers:
        for group in opt.param_groups:
            group["lr"] = group["initial_lr"] * lr_multiplier(step)
        opt.step()
    model.zero_grad(set_to_none=True)
    approx_time_ms = training_time_ms + 1000 * (time.perf_counter() - t0)
    print(f"step:{step + 1}/{args.num_iterations} train_loss:{loss.item():.4f} train_time:{approx_time_ms:.0f}ms "
          f"step_avg:{approx_time_ms / (step + 1):.2f}ms", flush=True)
