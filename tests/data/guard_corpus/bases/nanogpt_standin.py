"""A nanogpt-shaped stand-in training script (written for speedcopilot's guard corpus; it mirrors the anatomy of
a modded-nanogpt record -- hyperparameters, shard loader, generator, timed loop, val/train log lines -- but it
is not upstream code and is never run)."""

import glob
import os
import sys
import time
import uuid
from dataclasses import dataclass

import numpy as np
import torch
import torch.distributed as dist
import torch.nn as nn
import torch.nn.functional as F

with open(sys.argv[0]) as source_file:
    code = source_file.read()


@dataclass
class Hyperparameters:
    data_path = os.environ.get("DATA_PATH", ".")
    train_files = os.path.join(data_path, "data/fineweb10B/fineweb_train_*.bin")
    val_files = os.path.join(data_path, "data/fineweb10B/fineweb_val_*.bin")
    val_tokens = 10485760  # fixed so every run is scored on the same tokens
    train_seq_len = 48 * 1024
    val_seq_len = 4 * 64 * 1024
    num_iterations = 1750
    cooldown_frac = 0.4
    val_loss_every = 125
    lr = 0.05


args = Hyperparameters()
rank = int(os.environ.get("RANK", "0"))
world_size = int(os.environ.get("WORLD_SIZE", "1"))
master_process = rank == 0
device = torch.device("cuda", int(os.environ.get("LOCAL_RANK", "0")))
torch.cuda.set_device(device)
dist.init_process_group(backend="nccl", device_id=device)

run_id = str(uuid.uuid4())
logfile = f"logs/{run_id}.txt"
os.makedirs("logs", exist_ok=True)


def print0(message, console=False):
    if master_process:
        with open(logfile, "a") as log:
            if console:
                print(message)
            print(message, file=log)


def load_shard(path):
    header = torch.from_file(path, False, 256, dtype=torch.int32)
    assert header[0] == 20240520, "not a token shard"
    assert header[1] == 1, "unknown shard version"
    count = int(header[2])
    with open(path, "rb", buffering=0) as handle:
        tokens = torch.empty(count, dtype=torch.uint16, pin_memory=True)
        handle.seek(256 * 4)
        read = handle.readinto(tokens.numpy())
        assert read == 2 * count, "short read"
    return tokens


def token_batches(pattern, batch_size):
    files = sorted(glob.glob(pattern))
    assert files, f"no shards match {pattern}"
    local = batch_size // world_size
    for path in files:
        tokens = load_shard(path)
        position = rank * local
        while position + batch_size + 1 <= len(tokens):
            chunk = tokens[position:position + local + 1].to(device="cuda", dtype=torch.int64, non_blocking=True)
            yield chunk[:-1], chunk[1:]
            position += batch_size


class TinyGPT(nn.Module):
    def __init__(self, vocab_size, width, depth):
        super().__init__()
        self.embed = nn.Embedding(vocab_size, width)
        self.blocks = nn.ModuleList([nn.Linear(width, width) for _ in range(depth)])
        self.head = nn.Linear(width, vocab_size, bias=False)

    def forward(self, inputs, targets):
        x = self.embed(inputs)
        for block in self.blocks:
            x = x + F.relu(block(F.rms_norm(x, (x.size(-1),)))).square()
        logits = self.head(F.rms_norm(x, (x.size(-1),))).float()
        return F.cross_entropy(logits.view(-1, logits.size(-1)), targets.view(-1))


model = TinyGPT(vocab_size=50304, width=768, depth=12).cuda()
model = torch.compile(model, dynamic=False)
optimizer = torch.optim.AdamW(model.parameters(), lr=args.lr, betas=(0.8, 0.95), fused=True)


def lr_scale(step):
    progress = step / args.num_iterations
    if progress < 1 - args.cooldown_frac:
        return 1.0
    return (1 - progress) / args.cooldown_frac


def nvidia_smi():
    import subprocess

    return subprocess.run(["nvidia-smi"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True).stdout


print0(code)
print0(f"Running PyTorch {torch.version.__version__}")
print0(nvidia_smi())

train_loader = token_batches(args.train_files, args.train_seq_len * world_size)
training_time_ms = 0
torch.cuda.synchronize()
t0 = time.perf_counter()
for step in range(args.num_iterations + 1):
    last_step = step == args.num_iterations
    if last_step or (args.val_loss_every > 0 and step % args.val_loss_every == 0):
        torch.cuda.synchronize()
        training_time_ms += 1000 * (time.perf_counter() - t0)
        model.eval()
        val_batch_size = world_size * args.val_seq_len
        assert args.val_tokens % val_batch_size == 0
        val_steps = args.val_tokens // val_batch_size
        val_loader = token_batches(args.val_files, val_batch_size)
        val_loss = 0
        with torch.no_grad():
            for _ in range(val_steps):
                inputs, targets = next(val_loader)
                val_loss += model(inputs, targets)
        val_loss /= val_steps
        del val_loader
        dist.all_reduce(val_loss, op=dist.ReduceOp.AVG)
        print0(f"step:{step}/{args.num_iterations} val_loss:{val_loss:.4f} train_time:{training_time_ms:.0f}ms step_avg:{training_time_ms/max(step, 1):.2f}ms", console=True)
        model.train()
        torch.cuda.synchronize()
        t0 = time.perf_counter()
    if last_step:
        break
    inputs, targets = next(train_loader)
    loss = model(inputs, targets)
    loss.backward()
    for param in model.parameters():
        dist.all_reduce(param.grad, op=dist.ReduceOp.AVG)
    for group in optimizer.param_groups:
        group["lr"] = args.lr * lr_scale(step)
    optimizer.step()
    model.zero_grad(set_to_none=True)
    approx_training_time_ms = training_time_ms + 1000 * (time.perf_counter() - t0)
    print0(f"step:{step+1}/{args.num_iterations} train_time:{approx_training_time_ms:.0f}ms step_avg:{approx_training_time_ms/(step + 1):.2f}ms", console=True)

print0(f"peak memory allocated: {torch.cuda.max_memory_allocated() // 1024 // 1024} MiB", console=True)
dist.destroy_process_group()
