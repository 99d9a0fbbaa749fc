#!/usr/bin/env python3
"""Train the demo pair (a small and a large Llama that share one tokenizer) on the task of
tools/demo_task.py, export both as Hugging Face folders in bf16, evaluate them with transformers
and write the model card. Runs where torch, transformers and tokenizers are installed (the GPU
machine); see the "train_demo_pair.py" section of tools/README.md for the exact commands.

    python3 tools/train_demo_pair.py all --out /tmp/demo-run [--large-steps 2552]
        [--small-sweep 816,840,864,888,912,936,960] [--models large,small] [--smoke]

Trained as long as each other, both sizes solve the task almost perfectly, so the pair that
leaves room for routing gives the small model a smaller training budget: `all` trains the large
model once and the small model once for each step count of --small-sweep (every run with its
full warmup and cosine schedule; all runs at once, each in its own process on the same GPU,
reading the same seeded batches), picks the small model's step count by `choose_small_steps`,
which reads only the validation set (never eval.jsonl), and evaluates both on eval.jsonl.
Everything lands under --out:

    demo/           what ships as models/demo/: small/, large/, eval.jsonl, README.md (the card)
    runs/N<steps>/  every trained model (not shipped)
    results/        per run: training numbers; eval-<model>.json: every greedy generation;
                    summary.json: what the card is written from
    smoke/          with --smoke: a 64-step pass through export, reload and generation first,
                    so a broken setup fails in seconds, not at minute eight

`card --summary A --summary B --out README.md` writes the card from the summary.json files of
separate runs (`all --models large` and `all --models small`).
"""

from __future__ import annotations

import argparse
import json
import math
import random
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
# Several training processes share one GPU: let each one's cache grow and shrink in place.
os.environ.setdefault("PYTORCH_CUDA_ALLOC_CONF", "expandable_segments:True")

import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parent))
import demo_task as task  # noqa: E402

# Shapes: the large model near 9M parameters and the small near 2M, so that both folders, the
# tokenizer and the held-out set stay under 22 MB in bf16. head_dim is 64 in both.
SHAPES = {
    "large": dict(hidden_size=320, intermediate_size=864, num_hidden_layers=7,
                  num_attention_heads=5, num_key_value_heads=5),
    "small": dict(hidden_size=192, intermediate_size=512, num_hidden_layers=4,
                  num_attention_heads=3, num_key_value_heads=3),
}
# A smaller model takes a larger step; both values are the usual ones for models of these sizes.
PEAK_LR = {"large": 1e-3, "small": 2e-3}
MIN_LR_FRACTION = 0.1
WARMUP_STEPS = 200
BATCH = 256                 # sequences per step (about 36k response tokens)
LENGTH_GROUP = 8            # batches cut from one length-sorted draw (see TrainBatches)
WEIGHT_DECAY = 0.1
GRAD_CLIP = 1.0
SEED = {"large": 1, "small": 2}     # weight init; the data seed (task.TRAIN_SEED) is shared
MAX_POSITIONS = 512         # the longest example is about 330 tokens (demo_task.py stats)
MAX_NEW_TOKENS = 384        # greedy evaluation stops at </s> or here (longest reference: ~310)
SIZE_LIMIT_BYTES = 22_000_000
EVAL_RESERVE_S = 90         # export + evaluation of the large model after its training stops
TOKENIZER_FILES = ("tokenizer.json", "tokenizer_config.json")


def log(name: str, msg: str) -> None:
    print(f"[{name} {time.strftime('%H:%M:%S')}] {msg}", flush=True)


# ----------------------------------------------------------------------------------------------
# Tokenizer
# ----------------------------------------------------------------------------------------------

def bytes_to_unicode() -> dict[int, str]:
    """GPT-2's byte -> printable character map that the ByteLevel pre-tokenizer uses."""
    keep = list(range(ord("!"), ord("~") + 1)) + list(range(ord("¡"), ord("¬") + 1)) + \
        list(range(ord("®"), ord("ÿ") + 1))
    chars, extra = {}, 0
    for b in range(256):
        if b in keep:
            chars[b] = chr(b)
        else:
            chars[b] = chr(256 + extra)
            extra += 1
    return chars


def build_tokenizer(folder: Path) -> dict:
    """A byte-level BPE with no merges: one token per byte (id = byte + 2), <s> = 0, </s> = 1,
    <s> prepended by the post-processor. Written as tokenizer.json + tokenizer_config.json and
    checked against task.encode_ids on every held-out and validation text."""
    from tokenizers import AddedToken, Tokenizer, decoders, models, pre_tokenizers, processors
    from transformers import AutoTokenizer, PreTrainedTokenizerFast

    vocab = {"<s>": task.BOS_ID, "</s>": task.EOS_ID}
    for b, ch in bytes_to_unicode().items():
        vocab[ch] = b + task.BYTE_ID_OFFSET
    assert set(pre_tokenizers.ByteLevel.alphabet()) == set(bytes_to_unicode().values())
    tok = Tokenizer(models.BPE(vocab=vocab, merges=[]))
    tok.add_special_tokens([AddedToken("<s>", special=True, normalized=False),
                            AddedToken("</s>", special=True, normalized=False)])
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=True)
    tok.decoder = decoders.ByteLevel()
    tok.post_processor = processors.TemplateProcessing(
        single="<s>:0 $A:0", pair="<s>:0 $A:0 <s>:1 $B:1", special_tokens=[("<s>", task.BOS_ID)])
    assert tok.get_vocab_size() == task.VOCAB_SIZE

    folder.mkdir(parents=True, exist_ok=True)
    hf = PreTrainedTokenizerFast(tokenizer_object=tok, bos_token="<s>", eos_token="</s>",
                                 add_bos_token=True, add_eos_token=False,
                                 clean_up_tokenization_spaces=False)
    hf.save_pretrained(str(folder))
    # tokenizer.json exactly as built above; tokenizer_config.json names the generic class so
    # that AutoTokenizer does not rebuild a LlamaTokenizer from the vocabulary.
    tok.save(str(folder / "tokenizer.json"), pretty=True)
    cfg_path = folder / "tokenizer_config.json"
    cfg = json.loads(cfg_path.read_text(encoding="utf-8"))
    cfg.update({"tokenizer_class": "PreTrainedTokenizerFast", "model_max_length": MAX_POSITIONS,
                "add_bos_token": True, "add_eos_token": False})
    cfg_path.write_text(json.dumps(cfg, indent=2) + "\n", encoding="utf-8")
    for f in folder.iterdir():
        if f.name not in TOKENIZER_FILES:
            f.unlink()   # special_tokens_map.json and the like: nothing reads them

    # tokenizer.json (what Tandem reads) must match exactly; a transformers difference is
    # recorded instead of stopping the run, since training and evaluation use the ids directly.
    raw = Tokenizer.from_file(str(folder / "tokenizer.json"))
    texts = [t for p in task.eval_problems() + task.valid_problems() for t in (p.prompt, task.solution(p))]
    texts += ["héllo wörld ✓ 🦀", "  two  spaces\tand a tab\n"]
    for text in texts:
        want = task.encode_ids(text)
        assert raw.encode(text, add_special_tokens=False).ids == want, f"tokenizer.json ids differ for {text!r}"
        assert raw.encode(text).ids == [task.BOS_ID] + want, f"no <s> for {text!r}"
        assert raw.decode(want) == text, f"decode is lossy for {text!r}"
    return {"vocab_size": raw.get_vocab_size(), "texts_checked": len(texts), "merges": 0,
            "autotokenizer_mismatches": autotokenizer_mismatches(folder, texts)}


def autotokenizer_mismatches(folder: Path, texts: list[str]) -> list[str]:
    """Texts on which transformers' AutoTokenizer does not give <s> + task.encode_ids."""
    from transformers import AutoTokenizer
    try:
        auto = AutoTokenizer.from_pretrained(str(folder))
        return [t for t in texts if auto.encode(t) != [task.BOS_ID] + task.encode_ids(t)][:5]
    except Exception as e:  # noqa: BLE001 - recorded in the card, never fatal
        return [f"AutoTokenizer failed: {e!r}"]


# ----------------------------------------------------------------------------------------------
# Models: the only code that touches transformers
# ----------------------------------------------------------------------------------------------

def new_model(name: str) -> torch.nn.Module:
    from transformers import LlamaConfig, LlamaForCausalLM
    config = LlamaConfig(vocab_size=task.VOCAB_SIZE, max_position_embeddings=MAX_POSITIONS,
                         rms_norm_eps=1e-5, tie_word_embeddings=False, hidden_act="silu",
                         bos_token_id=task.BOS_ID, eos_token_id=task.EOS_ID, pad_token_id=None,
                         rope_parameters={"rope_type": "default", "rope_theta": 10000.0},
                         **SHAPES[name])
    return LlamaForCausalLM(config)


def save_model(model: torch.nn.Module, folder: Path) -> None:
    """bf16 weights in one model.safetensors, config.json, generation_config.json (eos = </s>)."""
    model = model.to(torch.bfloat16)
    model.config.dtype = torch.bfloat16   # config.json's dtype says how the weights are stored
    model.generation_config.bos_token_id = task.BOS_ID
    model.generation_config.eos_token_id = task.EOS_ID
    model.save_pretrained(str(folder))
    files = sorted(p.name for p in folder.iterdir())
    assert "model.safetensors" in files and not any("index" in f for f in files), files
    header_len = int.from_bytes((folder / "model.safetensors").read_bytes()[:8], "little")
    header = json.loads((folder / "model.safetensors").read_bytes()[8:8 + header_len])
    kinds = {v["dtype"] for k, v in header.items() if k != "__metadata__"}
    assert kinds == {"BF16"}, kinds
    gen = json.loads((folder / "generation_config.json").read_text())
    assert gen.get("eos_token_id") == task.EOS_ID, gen
    cfg = json.loads((folder / "config.json").read_text())
    assert cfg.get("dtype", cfg.get("torch_dtype")) == "bfloat16", cfg


def load_model(folder: Path, device: torch.device) -> torch.nn.Module:
    """The exported folder as a reader would load it: bf16 weights computed in float32."""
    from transformers import AutoModelForCausalLM
    model = AutoModelForCausalLM.from_pretrained(str(folder), dtype=torch.float32)
    return model.to(device).eval()


# ----------------------------------------------------------------------------------------------
# Batches
# ----------------------------------------------------------------------------------------------

def collate(problems: list[task.Problem]) -> tuple[torch.Tensor, torch.Tensor]:
    """inputs [B, L] and next-token targets [B, L]: -100 on prompt positions and padding, so the
    loss is on the response and its </s>. Padding sits at the end (right), where the causal mask
    keeps it away from every real token, so no attention mask is needed."""
    rows = [task.example_ids(p) for p in problems]
    width = max(len(ids) for ids, _ in rows) - 1
    inputs = torch.full((len(rows), width), task.EOS_ID, dtype=torch.long)
    targets = torch.full((len(rows), width), -100, dtype=torch.long)
    for r, (ids, n_prompt) in enumerate(rows):
        seq = torch.tensor(ids, dtype=torch.long)
        inputs[r, :len(ids) - 1] = seq[:-1]
        # position t predicts token t+1; the first response token is predicted at n_prompt - 1
        targets[r, n_prompt - 1:len(ids) - 1] = seq[n_prompt:]
    return inputs, targets


class TrainBatches(torch.utils.data.IterableDataset):
    """Training batches in groups: group j is LENGTH_GROUP * size problems of
    task.TrainingStream().batch(j), sorted by length and cut into LENGTH_GROUP batches, so each
    batch pads to a near-equal length (about 1.6x fewer padded positions than random batches).
    Loader workers make whole groups and the DataLoader hands them out in index order, so the
    batches do not depend on the worker count."""

    def __init__(self, n_groups: int, size: int):
        self.n_groups, self.size = n_groups, size
        self.stream = task.TrainingStream()

    def __iter__(self):
        info = torch.utils.data.get_worker_info()
        wid, nw = (info.id, info.num_workers) if info else (0, 1)
        for j in range(wid, self.n_groups, nw):
            problems = self.stream.batch(j, LENGTH_GROUP * self.size)
            problems.sort(key=lambda p: len(p.prompt) + len(task.solution(p)))
            batches = [collate(problems[k * self.size:(k + 1) * self.size]) for k in range(LENGTH_GROUP)]
            # Shuffled within the group, so the length does not rise steadily through every group.
            order = list(range(LENGTH_GROUP))
            random.Random(j).shuffle(order)
            yield [batches[k] for k in order]


# ----------------------------------------------------------------------------------------------
# Measurements
# ----------------------------------------------------------------------------------------------

def forward_logits(model, inputs: torch.Tensor) -> torch.Tensor:
    """Logits at every position of right-padded (or unpadded) rows: no mask, no cache."""
    return model(input_ids=inputs, use_cache=False).logits


@torch.no_grad()
def teacher_forced(model, problems: list[task.Problem], device: torch.device, bf16: bool,
                   chunk: int = 64) -> list[dict]:
    """Per problem, reading the reference response: whether every argmax equals the reference
    token (exactly when greedy decoding reproduces the reference), and per response token the
    entropy in bits and whether the argmax is wrong."""
    out = []
    for i in range(0, len(problems), chunk):
        inputs, targets = collate(problems[i:i + chunk])
        inputs, targets = inputs.to(device), targets.to(device)
        with torch.autocast(device.type, dtype=torch.bfloat16, enabled=bf16):
            logits = forward_logits(model, inputs)
        logp = torch.log_softmax(logits.float(), dim=-1)
        entropy = -(logp.exp() * logp).sum(-1) / math.log(2)
        mask = targets != -100
        wrong = (logp.argmax(-1) != targets) & mask
        for r in range(inputs.shape[0]):
            m = mask[r]
            out.append({"exact": not bool(wrong[r].any()), "entropy": entropy[r][m].cpu(),
                        "wrong": wrong[r][m].cpu()})
    return out


@torch.no_grad()
def greedy(model, prompts: list[str], device: torch.device, max_new: int = MAX_NEW_TOKENS,
           chunk: int = 128) -> list[dict]:
    """Greedy continuations, recomputing the whole sequence at every step (no KV cache), in
    float32. Prompts of equal token length decode together, so no row is ever padded. Records
    the smallest top-1 minus top-2 logit margin along each path (near-ties can flip under
    another engine's rounding)."""
    encoded = [[task.BOS_ID] + task.encode_ids(p) for p in prompts]
    results: list[dict | None] = [None] * len(prompts)
    by_len: dict[int, list[int]] = {}
    for i, ids in enumerate(encoded):
        by_len.setdefault(len(ids), []).append(i)
    for length in sorted(by_len):
        idx_all = by_len[length]
        for c in range(0, len(idx_all), chunk):
            idx = idx_all[c:c + chunk]
            x = torch.tensor([encoded[i] for i in idx], dtype=torch.long, device=device)
            done = torch.zeros(len(idx), dtype=torch.bool, device=device)
            margin = torch.full((len(idx),), float("inf"), device=device)
            for _ in range(max_new):
                logits = forward_logits(model, x)[:, -1].float()
                top2 = logits.topk(2, dim=-1).values
                margin = torch.where(done, margin, torch.minimum(margin, top2[:, 0] - top2[:, 1]))
                nxt = torch.where(done, torch.full_like(done, task.EOS_ID, dtype=torch.long),
                                  logits.argmax(-1))
                x = torch.cat([x, nxt[:, None]], dim=1)
                done |= nxt == task.EOS_ID
                if bool(done.all()):
                    break
            for r, i in enumerate(idx):
                gen = x[r, length:].tolist()
                stopped = task.EOS_ID in gen
                gen = gen[:gen.index(task.EOS_ID)] if stopped else gen
                results[i] = {"ids": gen, "text": task.decode_ids(gen), "stopped_at_eos": stopped,
                              "min_margin": float(margin[r])}
    return results  # type: ignore[return-value]


def auroc(scores: torch.Tensor, labels: torch.Tensor) -> float | None:
    """P(score of a positive > score of a negative), ties counted half (Mann-Whitney U)."""
    pos = int(labels.sum())
    neg = labels.numel() - pos
    if pos == 0 or neg == 0:
        return None
    values, inverse, counts = torch.unique(scores.double(), return_inverse=True, return_counts=True)
    below = torch.cumsum(counts, 0) - counts
    mid_rank = below.double() + (counts.double() + 1) / 2
    rank_sum = mid_rank[inverse][labels.bool()].sum().item()
    return (rank_sum - pos * (pos + 1) / 2) / (pos * neg)


def bucket_accuracy(problems: list[task.Problem], correct: list[bool]) -> dict:
    buckets: dict[str, list[bool]] = {}
    for p, ok in zip(problems, correct):
        buckets.setdefault(f"{len(p.operands)} operands", []).append(ok)
        buckets.setdefault(f"longest operand {max(len(str(v)) for v in p.operands)} digits", []).append(ok)
    return {k: {"n": len(v), "accuracy": sum(v) / len(v)} for k, v in sorted(buckets.items())}


def quantile(t: torch.Tensor, q: float) -> float:
    return float(torch.quantile(t.double(), q)) if t.numel() else float("nan")


def evaluate(folder: Path, problems: list[task.Problem], device: torch.device, name: str,
             max_new: int = MAX_NEW_TOKENS) -> dict:
    """Greedy exact-match accuracy of the exported folder on `problems`, and where its errors
    sit in its own uncertainty (teacher-forced on the reference chains)."""
    model = load_model(folder, device)
    tokenizer_mismatches = autotokenizer_mismatches(folder, [p.prompt for p in problems[:3]])
    t0 = time.time()
    gens = greedy(model, [p.prompt for p in problems], device, max_new=max_new)
    gen_s = time.time() - t0
    correct = [task.is_correct(g["text"], str(p.answer)) for g, p in zip(gens, problems)]
    chain_exact = [g["text"] == task.solution(p) for g, p in zip(gens, problems)]
    tf = teacher_forced(model, problems, device, bf16=False)
    ent = torch.cat([r["entropy"] for r in tf])
    wrong = torch.cat([r["wrong"] for r in tf])
    # The first token where the argmax leaves the reference is where greedy decoding leaves it.
    first_err = torch.tensor([float(r["entropy"][r["wrong"]][0]) for r in tf if bool(r["wrong"].any())])
    pct_of_first = [float((ent < e).double().mean()) for e in first_err]
    log(name, f"eval: accuracy {sum(correct)}/{len(problems)}, chain exact {sum(chain_exact)}, "
              f"greedy {gen_s:.1f}s")
    return {
        "n": len(problems),
        "accuracy": sum(correct) / len(problems),
        "correct": sum(correct),
        "chain_exact": sum(chain_exact) / len(problems),
        "stopped_at_eos": sum(g["stopped_at_eos"] for g in gens),
        "buckets": bucket_accuracy(problems, correct),
        "teacher_forced_exact": sum(r["exact"] for r in tf) / len(tf),
        "uncertainty": {
            "response_tokens": int(ent.numel()),
            "argmax_error_rate": float(wrong.double().mean()),
            "entropy_bits_median_all": quantile(ent, 0.5),
            "entropy_bits_p90_all": quantile(ent, 0.9),
            "entropy_bits_median_at_argmax_errors": quantile(ent[wrong], 0.5),
            "entropy_auroc_for_argmax_error": auroc(ent, wrong),
            "first_errors": int(first_err.numel()),
            "entropy_bits_median_at_first_error": quantile(first_err, 0.5),
            "first_error_entropy_percentile_median": quantile(torch.tensor(pct_of_first), 0.5)
            if pct_of_first else None,
        },
        "greedy_seconds": gen_s,
        "autotokenizer_mismatches": tokenizer_mismatches,
        "generations": [{"id": i, "text": g["text"], "correct": c, "min_margin": g["min_margin"]}
                        for i, (g, c) in enumerate(zip(gens, correct))],
    }


# ----------------------------------------------------------------------------------------------
# Training
# ----------------------------------------------------------------------------------------------

def lr_at(step: int, steps: int, peak: float) -> float:
    warm = min(WARMUP_STEPS, max(1, steps // 10))
    if step < warm:
        return peak * (step + 1) / warm
    t = (step - warm) / max(1, steps - warm)
    return peak * (MIN_LR_FRACTION + (1 - MIN_LR_FRACTION) * 0.5 * (1 + math.cos(math.pi * t)))


def param_groups(model: torch.nn.Module) -> list[dict]:
    """Weight decay on the matrices (embeddings and projections), none on the norm scales."""
    decay = [p for p in model.parameters() if p.dim() >= 2]
    no_decay = [p for p in model.parameters() if p.dim() < 2]
    return [{"params": decay, "weight_decay": WEIGHT_DECAY}, {"params": no_decay, "weight_decay": 0.0}]


def validate(model, problems: list[task.Problem], device: torch.device) -> float:
    model.eval()
    tf = teacher_forced(model, problems, device, bf16=device.type == "cuda")
    model.train()
    return sum(r["exact"] for r in tf) / len(tf)


def train(name: str, steps: int, out: Path, device: torch.device, max_seconds: float,
          smoke: bool, workers: int) -> dict:
    if steps % LENGTH_GROUP:
        raise SystemExit(f"--steps must be a multiple of {LENGTH_GROUP} (batches come in length groups)")
    torch.manual_seed(SEED[name])
    model = new_model(name).float().to(device)   # float32 master weights under bf16 autocast
    n_params = sum(p.numel() for p in model.parameters())
    log(name, f"{n_params:,} parameters, {steps} steps of {BATCH}, peak lr {PEAK_LR[name]}")
    extra = {"fused": True} if device.type == "cuda" else {}
    opt = torch.optim.AdamW(param_groups(model), lr=PEAK_LR[name], betas=(0.9, 0.95), eps=1e-8, **extra)
    valid = task.valid_problems()[: 64 if smoke else None]
    val_every = max(1, steps // 4)
    loader = torch.utils.data.DataLoader(TrainBatches(steps // LENGTH_GROUP, BATCH), batch_size=None,
                                         num_workers=workers, pin_memory=device.type == "cuda",
                                         prefetch_factor=2 if workers else None)
    batches = (b for group in loader for b in group)
    history, timing = [], {}
    model.train()
    t0 = time.time()
    done_steps = 0
    for step, (inputs, targets) in enumerate(batches):
        for g in opt.param_groups:
            g["lr"] = lr_at(step, steps, PEAK_LR[name])
        inputs = inputs.to(device, non_blocking=True)
        targets = targets.to(device, non_blocking=True)
        with torch.autocast(device.type, dtype=torch.bfloat16):
            logits = forward_logits(model, inputs)
        loss = F.cross_entropy(logits.float().reshape(-1, logits.shape[-1]), targets.reshape(-1),
                               ignore_index=-100)
        loss.backward()
        grad_norm = torch.nn.utils.clip_grad_norm_(model.parameters(), GRAD_CLIP)
        opt.step()
        opt.zero_grad(set_to_none=True)
        done_steps = step + 1
        # Step time between steps 10 and 40 (kernels warm), for the record.
        if step in (10, 40):
            if device.type == "cuda":
                torch.cuda.synchronize()
            timing[step] = time.time()
        if done_steps % 100 == 0 or done_steps == steps or (smoke and done_steps % 10 == 0):
            log(name, f"step {done_steps}/{steps} loss {loss.item():.4f} grad {grad_norm.item():.2f} "
                      f"lr {opt.param_groups[0]['lr']:.2e} {time.time() - t0:.0f}s")
        if done_steps % val_every == 0 or done_steps == steps:
            acc = validate(model, valid, device)
            history.append({"step": done_steps, "loss": loss.item(), "valid_chain_exact": acc,
                            "seconds": time.time() - t0})
            log(name, f"step {done_steps}: validation chain exact-match {acc:.3f} ({len(valid)} problems)")
        if time.time() - t0 > max_seconds:
            log(name, f"time cap of {max_seconds:.0f}s reached: stopping at step {done_steps} of {steps}")
            break
    train_s = time.time() - t0
    step_s = (timing[40] - timing[10]) / 30 if 40 in timing else None
    folder = out / name
    save_model(model, folder)
    n_bytes = (folder / "model.safetensors").stat().st_size
    log(name, f"saved {folder} ({n_bytes:,} bytes) after {train_s:.0f}s")
    return {"model": name, "params": n_params, "shape": SHAPES[name], "peak_lr": PEAK_LR[name],
            "seed": SEED[name], "steps_planned": steps, "steps_done": done_steps, "batch": BATCH,
            "examples": done_steps * BATCH, "train_seconds": train_s, "step_seconds": step_s,
            "history": history,
            "safetensors_bytes": n_bytes}


# ----------------------------------------------------------------------------------------------
# Commands
# ----------------------------------------------------------------------------------------------

# The pair the issue asks for: the large model clearly more accurate than the small one
# (large >= 90%, small 40-75% exact-match on eval.jsonl).
LARGE_STEPS = 2552
SMALL_SWEEP = [816, 840, 864, 888, 912, 936, 960]
SMALL_VALID_RANGE = (0.40, 0.75)


def choose_small_steps(valid: dict[int, float]) -> tuple[int, str]:
    """The sweep's step count whose small model has a validation chain exact-match within
    SMALL_VALID_RANGE, nearest its middle; if none is within, the nearest to the range."""
    lo, hi = SMALL_VALID_RANGE
    ok = [n for n, v in valid.items() if lo <= v <= hi]
    if ok:
        return min(ok, key=lambda n: (abs(valid[n] - (lo + hi) / 2), -n)), "within the range"
    return min(valid, key=lambda n: max(lo - valid[n], valid[n] - hi)), "none within the range: the nearest"


def device_name(device: torch.device) -> str:
    return torch.cuda.get_device_name(0) if device.type == "cuda" else "cpu"


def versions() -> dict:
    import tokenizers
    import transformers
    return {"torch": torch.__version__, "transformers": transformers.__version__,
            "tokenizers": tokenizers.__version__, "python": sys.version.split()[0]}


def cmd_train(args) -> None:
    """One model: train, export, copy the tokenizer in; result JSON to --results. With --smoke,
    also evaluate on 8 held-out problems (the whole evaluation path, in seconds)."""
    device = torch.device(args.device)
    torch.set_num_threads(2)
    torch.set_float32_matmul_precision("highest")
    result = train(args.model, args.steps, args.out, device, args.max_seconds, args.smoke, args.workers)
    for f in TOKENIZER_FILES:
        shutil.copy(args.tokenizer / f, args.out / args.model / f)
    if args.smoke:
        result["eval"] = evaluate(args.out / args.model, task.eval_problems()[:8], device, args.model, max_new=24)
    result["device"] = device_name(device)
    result["versions"] = versions()
    args.results.parent.mkdir(parents=True, exist_ok=True)
    args.results.write_text(json.dumps(result, indent=1))


def cmd_eval(args) -> None:
    """One exported folder on all of eval.jsonl's problems; result JSON to --results."""
    device = torch.device(args.device)
    torch.set_num_threads(4)
    torch.set_float32_matmul_precision("highest")   # evaluation in true float32
    result = evaluate(args.model_dir, task.eval_problems(), device, args.name)
    result["device"] = device_name(device)
    args.results.parent.mkdir(parents=True, exist_ok=True)
    args.results.write_text(json.dumps(result, indent=1))


def run_all(jobs: dict, what: str) -> dict:
    """Runs the command lines of `jobs` at once; returns their result JSONs."""
    procs = {key: subprocess.Popen(cmd) for key, (cmd, _) in jobs.items()}
    codes = {key: p.wait() for key, p in procs.items()}
    if any(codes.values()):
        raise SystemExit(f"{what} failed: exit codes {codes}")
    return {key: json.loads(Path(path).read_text()) for key, (_, path) in jobs.items()}


def train_job(script: Path, name: str, steps: int, out: Path, results: Path, tokenizer: Path,
              extra: list[str]) -> tuple[list[str], Path]:
    path = results / f"train-{name}-{steps}.json"
    return ([sys.executable, str(script), "train", "--model", name, "--steps", str(steps),
             "--out", str(out / f"N{steps}"), "--results", str(path), "--tokenizer", str(tokenizer)] + extra, path)


def cmd_all(args) -> None:
    t_start = time.time()
    out = args.out
    demo, results, runs_dir, smoke = out / "demo", out / "results", out / "runs", out / "smoke"
    tok_dir = out / "tokenizer"
    for d in (demo, results, runs_dir, smoke, tok_dir):
        shutil.rmtree(d, ignore_errors=True)
    demo.mkdir(parents=True)
    tok_info = build_tokenizer(tok_dir)
    log("all", f"tokenizer: {tok_info}")
    task.write_eval_set(demo / "eval.jsonl")
    script = Path(__file__).resolve()
    common = ["--device", args.device, "--workers", str(args.workers)]
    models = args.models

    if args.smoke:
        log("all", "smoke pass: 64 steps of each model, export, reload, generate")
        run_all({m: train_job(script, m, 64, smoke, smoke / "results", tok_dir,
                              common + ["--smoke", "--max-seconds", "120"]) for m in models}, "smoke pass")

    # The time cap keeps the run inside the machine's command limit: a run stopped early is
    # recorded as such, and a small run stopped early is not chosen.
    cap = args.deadline_s - (time.time() - t_start) - EVAL_RESERVE_S
    small_sweep = sorted({n - n % LENGTH_GROUP for n in args.small_sweep})
    large_steps = args.large_steps - args.large_steps % LENGTH_GROUP
    jobs = {}
    if "large" in models:
        jobs[("large", large_steps)] = train_job(script, "large", large_steps, runs_dir, results, tok_dir,
                                                 common + ["--max-seconds", str(cap)])
    if "small" in models:
        for n in small_sweep:
            jobs[("small", n)] = train_job(script, "small", n, runs_dir, results, tok_dir,
                                           common + ["--max-seconds", str(cap)])
    log("all", f"training {sorted(jobs)} at once (time cap {cap:.0f}s)")
    runs = run_all(jobs, "training")

    summary: dict = {"tokenizer": tok_info, "versions": next(iter(runs.values()))["versions"]}
    chosen = {}
    if "large" in models:
        chosen["large"] = large_steps
    if "small" in models:
        finished = [n for n in small_sweep if runs[("small", n)]["steps_done"] == n]
        valid = {n: runs[("small", n)]["history"][-1]["valid_chain_exact"] for n in (finished or small_sweep)}
        chosen["small"], why = choose_small_steps(valid)
        log("all", f"small model validation by steps: {valid}; chose {chosen['small']} ({why})")
        summary["small_sweep"] = [{"steps": n, "valid": runs[("small", n)]["history"][-1]["valid_chain_exact"],
                                   "finished": n in finished, "train_seconds": runs[("small", n)]["train_seconds"]}
                                  for n in small_sweep]
        summary["small_choice"] = why
    for name, steps in chosen.items():
        shutil.copytree(runs_dir / f"N{steps}" / name, demo / name)

    evals = run_all({name: ([sys.executable, str(script), "eval", "--model-dir", str(demo / name), "--name", name,
                             "--results", str(results / f"eval-{name}.json"), "--device", args.device],
                            results / f"eval-{name}.json") for name in chosen}, "evaluation")
    for name, steps in chosen.items():
        summary[name] = dict(runs[(name, steps)], eval=evals[name])
    summary["run_seconds"] = time.time() - t_start
    (results / "summary.json").write_text(json.dumps(summary, indent=1))
    for name in chosen:
        log("all", f"{name}: {chosen[name]} steps, eval accuracy {summary[name]['eval']['accuracy']:.3f}")
    if {"large", "small"} <= set(chosen):
        write_card(summary, demo / "README.md")
    log("all", f"whole run {time.time() - t_start:.0f}s")


def write_card(summary: dict, path: Path) -> None:
    path.write_text(model_card(summary), encoding="utf-8")
    demo = path.parent
    total = sum(f.stat().st_size for f in demo.rglob("*") if f.is_file())
    log("card", f"{demo}: {total:,} bytes ({'within' if total <= SIZE_LIMIT_BYTES else 'OVER'} "
                f"the {SIZE_LIMIT_BYTES:,} limit)")


def cmd_card(args) -> None:
    """The model card from summary JSONs (later files override earlier keys): for a pair whose
    models came from separate runs of `all --models ...`."""
    summary: dict = {}
    for f in args.summary:
        summary.update(json.loads(f.read_text()))
    write_card(summary, args.out)


# ----------------------------------------------------------------------------------------------
# Model card
# ----------------------------------------------------------------------------------------------

def model_card(summary: dict) -> str:
    large, small, tok_info, vers = summary["large"], summary["small"], summary["tokenizer"], summary["versions"]
    p = task.eval_problems()[0]
    example = p.prompt + task.solution(p)

    def row(r: dict) -> str:
        s = r["shape"]
        return (f"| {r['model']} | {r['params']:,} | {r['safetensors_bytes']:,} | {s['hidden_size']} | "
                f"{s['num_hidden_layers']} | {s['num_attention_heads']} / {s['num_key_value_heads']} | "
                f"{s['intermediate_size']} |")

    def train_row(r: dict) -> str:
        warm = min(WARMUP_STEPS, max(1, r["steps_planned"] // 10))
        early = "" if r["steps_done"] == r["steps_planned"] else f" (time cap: stopped at {r['steps_done']})"
        return (f"| {r['model']} | {r['steps_planned']}{early} | {r['steps_done'] * r['batch']:,} | {r['peak_lr']} | "
                f"{warm} | {r['seed']} | {r['train_seconds']:.0f} s | {r['history'][-1]['valid_chain_exact'] * 100:.1f}% |")

    def acc_row(r: dict) -> str:
        e = r["eval"]
        return (f"| {r['model']} | **{e['accuracy'] * 100:.1f}%** ({e['correct']}/{e['n']}) | "
                f"{e['chain_exact'] * 100:.1f}% | {e['stopped_at_eos']}/{e['n']} |")

    buckets = sorted(large["eval"]["buckets"])
    bucket_rows = "\n".join(
        f"| {b} | {large['eval']['buckets'][b]['n']} | {large['eval']['buckets'][b]['accuracy'] * 100:.1f}% | "
        f"{small['eval']['buckets'][b]['accuracy'] * 100:.1f}% |" for b in buckets)

    def unc_row(r: dict) -> str:
        u = r["eval"]["uncertainty"]
        au = u["entropy_auroc_for_argmax_error"]
        fp = u["first_error_entropy_percentile_median"]
        return (f"| {r['model']} | {u['response_tokens']:,} | {u['argmax_error_rate'] * 100:.2f}% | "
                f"{u['entropy_bits_median_all']:.2g} | {u['entropy_bits_p90_all']:.2g} | "
                f"{u['entropy_bits_median_at_argmax_errors']:.3f} | "
                f"{'n/a' if au is None else f'{au:.3f}'} | {u['first_errors']} | "
                f"{u['entropy_bits_median_at_first_error']:.3f} | "
                f"{'n/a' if fp is None else f'{fp * 100:.1f}'} |")

    def history(r: dict) -> str:
        return ", ".join(f"{h['step']}: {h['valid_chain_exact'] * 100:.0f}%" for h in r["history"])

    sweep_rows = summary.get("small_sweep", [])
    sweep_table = "\n".join(
        f"| {r['steps']}{' (shipped)' if r['steps'] == small['steps_planned'] else ''} | "
        f"{r['valid'] * 100:.1f}% | {'yes' if r['finished'] else 'no (time cap)'} |" for r in sweep_rows)
    sweep_arg = ",".join(str(r["steps"]) for r in sweep_rows)

    greedy_blocks = []
    for r in (large, small):
        for g, prob in zip(r["eval"]["generations"][:3], task.eval_problems()[:3]):
            greedy_blocks.append(
                f"**{r['model']}, id {g['id']}**: prompt `{prob.prompt}`, "
                f"{'correct' if g['correct'] else 'wrong'} (reference answer {prob.answer}), "
                f"smallest top-1/top-2 logit margin {g['min_margin']:.3f}\n\n"
                f"```\n{json.dumps(g['text'])}\n```\n")
    mismatches = tok_info["autotokenizer_mismatches"]
    auto_note = ("gives the same ids for all of them" if not mismatches else
                 f"differs (first cases: {json.dumps(mismatches)[:300]})")
    device = large["eval"]["device"] if "device" in large["eval"] else large["device"]
    run_note = summary.get("run_note", "")
    return f"""# Demo pair: column arithmetic with its working written out

Two Llama models (`small/`, `large/`) trained from scratch on one synthetic, verifiable
chain-of-thought task, sharing one character-level tokenizer, for trying two-model decoding
(speculative, R-Stitch, EAD) on a plain CPU. Made by `tools/train_demo_pair.py` with the task of
`tools/demo_task.py` (see tools/README.md); this card is written by that script from its results.

## Task

A chain of {task.MIN_OPERANDS} to {task.MAX_OPERANDS} non-negative integers of {task.MIN_DIGITS} to {task.MAX_DIGITS} digits joined by `+` and `-`,
evaluated left to right; a subtraction that would go below zero is drawn as an addition instead, so
every value is non-negative. Each step is worked as schoolbook column arithmetic, least significant
column first: an addition column is `a+b+carry_in=sum` (the carry out is the sum's tens digit),
a subtraction column is `a-b-borrow_in=difference`, with `a` written as `1a` when the column borrows.
The step's result follows as `=value`, and the last line is `answer=value`.

The prompt ends with `=`; the model writes from there on, and stops with `</s>`. Eval id 0:

```
{example}
```

**Extracting the answer** from a generation: take its last non-empty line; the answer is the text
after the last `=` on that line, stripped of whitespace (no `=` there: no answer). A generation is
correct when that string equals the `answer` field exactly (`demo_task.extract_answer`).

`eval.jsonl` holds {large['eval']['n']} held-out problems, one JSON object a line:
`{{"id", "prompt", "response", "answer"}}`, where `response` is the reference chain (everything
after the prompt, without `</s>`), so `tandem entropy --file models/demo/eval.jsonl` reads it as is.
No held-out prompt occurs in training: the training stream drops every prompt of the held-out set
and of a second 512-problem validation set used only to watch training and choose the small
model's step count.

## Tokenizer

`tokenizer.json` (the same file in both folders): byte-level BPE with the ByteLevel pre-tokenizer,
the 256-byte alphabet and no merges, so every character is one token (id = byte + 2); `<s>` = 0 is
prepended to every prompt by the post-processor and `</s>` = 1 ends every response. Vocabulary:
{tok_info['vocab_size']} tokens. Built with the `tokenizers` library, whose reading of tokenizer.json was
checked to give these ids (and decode back losslessly) for all {tok_info['texts_checked']} held-out and
validation texts; transformers' AutoTokenizer {auto_note}.

## Models

| model | parameters | model.safetensors bytes | hidden | layers | heads / kv heads | FFN |
| --- | --- | --- | --- | --- | --- | --- |
{row(large)}
{row(small)}

LlamaForCausalLM, head_dim 64, RoPE theta 10000, RMSNorm eps 1e-5, SiLU, untied embeddings,
max_position_embeddings {MAX_POSITIONS} (the longest example is about 330 tokens), weights stored in bf16.

## Training

Both models read the same seeded stream of batches (data seed {task.TRAIN_SEED}; {BATCH} problems a
step, each batch cut from a length-sorted draw of {LENGTH_GROUP} batches), the small one its first part.
Loss on the response tokens and `</s>` only. AdamW (betas 0.9/0.95, eps 1e-8, weight decay
{WEIGHT_DECAY} on matrices), linear warmup, cosine decay to {MIN_LR_FRACTION} of the peak over the run's
steps, gradient clipping {GRAD_CLIP}, bf16 autocast with float32 weights, on one {device}.

| model | steps | problems seen | peak lr | warmup | init seed | train time | validation at the end |
| --- | --- | --- | --- | --- | --- | --- | --- |
{train_row(large)}
{train_row(small)}

Train times are wall times on a GPU shared with the other runs of the same command. Validation is
chain exact-match, teacher-forced, on the 512 validation problems. GPU kernels are not
bit-deterministic, so a rerun gives close, not identical, weights. To reproduce the pair:
`python3 tools/train_demo_pair.py all --out /tmp/demo-run --large-steps {large['steps_planned']} --small-sweep {sweep_arg}`.
{run_note}

**Why the small model trains for fewer steps.** Trained to convergence, both sizes solve this task
almost perfectly: with {LARGE_STEPS:,} steps each, the large and the small model both scored 99.6% on
eval.jsonl. They differ in how fast they learn, not in what they can learn. In earlier runs of this
script, each with its own full schedule, the large model reached 89% validation chain exact-match
with 704 steps and 95% with 960, while the small model's accuracy climbs steeply between about 800
and 1,000 steps (34% at 832 steps, 86% at 960, 93% at 1,088), and varies a lot from run to run
there (compare 840 steps in the sweep below).
So the small model gets a smaller budget, chosen from a sweep by a rule fixed before the sweep ran
(`choose_small_steps`): the step count whose small model has a validation chain exact-match within
{SMALL_VALID_RANGE[0] * 100:.0f}-{SMALL_VALID_RANGE[1] * 100:.0f}% (the target for the small model's exact-match),
nearest the middle of that range. The choice reads only the validation set,
never eval.jsonl. Outcome: {summary.get('small_choice', 'n/a')}.

| small model steps | validation | finished |
| --- | --- | --- |
{sweep_table}

Validation chain exact-match during training, by step:
- large: {history(large)}
- small: {history(small)}

Versions: torch {vers['torch']}, transformers {vers['transformers']}, tokenizers {vers['tokenizers']},
Python {vers['python']}.

## Accuracy on eval.jsonl

Greedy decoding with transformers on the exported bf16 weights, computed in float32 (full
recomputation at each step, no KV cache), at most {MAX_NEW_TOKENS} new tokens, on the {device}:

| model | exact-match accuracy (answer) | whole chain equals the reference | stopped with `</s>` |
| --- | --- | --- | --- |
{acc_row(large)}
{acc_row(small)}

By difficulty:

| bucket | problems | large | small |
| --- | --- | --- | --- |
{bucket_rows}

Where the errors sit in each model's own uncertainty, reading the reference chains (teacher-forced,
float32): the entropy of the next-token distribution in bits, over all response tokens, at tokens
whose argmax is not the reference token, and at the first such token of each problem (the token
where greedy decoding leaves the reference); the percentile column is the median rank of those
first-error entropies among all response tokens' entropies.

| model | response tokens | argmax errors | median entropy | p90 entropy | median at errors | entropy AUROC for an error | problems with an error | median at first error | its percentile |
| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |
{unc_row(large)}
{unc_row(small)}

## Greedy outputs of the first three eval prompts (transformers)

For cross-checking another engine's greedy decoding (JSON-quoted; `</s>` not shown). Where the smallest
margin is tiny, bf16/float32 rounding elsewhere may flip a token.

{chr(10).join(greedy_blocks)}"""


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = ap.add_subparsers(dest="cmd", required=True)
    a = sub.add_parser("all", help="tokenizer, eval set, the large model, the small model's sweep, evaluation, card")
    a.add_argument("--out", type=Path, required=True)
    a.add_argument("--models", type=lambda v: v.split(","), default=["large", "small"],
                   help="which of large,small to train (the card needs both)")
    a.add_argument("--large-steps", type=int, default=LARGE_STEPS)
    a.add_argument("--small-sweep", type=lambda v: [int(x) for x in v.split(",")], default=SMALL_SWEEP,
                   help="comma-separated step counts for the small model (multiples of %d)" % LENGTH_GROUP)
    a.add_argument("--smoke", action="store_true", help="a 64-step pass through everything first")
    a.add_argument("--deadline-s", type=float, default=1e9,
                   help="wall seconds the whole run must fit (training stops early to keep it)")
    a.add_argument("--device", default="cuda")
    a.add_argument("--workers", type=int, default=2, help="data loader workers per training process")
    t = sub.add_parser("train", help="one model (used by `all`)")
    t.add_argument("--model", choices=sorted(SHAPES), required=True)
    t.add_argument("--steps", type=int, required=True)
    t.add_argument("--out", type=Path, required=True)
    t.add_argument("--results", type=Path, required=True, help="result JSON file")
    t.add_argument("--tokenizer", type=Path, required=True)
    t.add_argument("--max-seconds", type=float, default=1e9)
    t.add_argument("--smoke", action="store_true")
    t.add_argument("--device", default="cuda")
    t.add_argument("--workers", type=int, default=2)
    e = sub.add_parser("eval", help="greedy accuracy of one exported folder on eval.jsonl's problems")
    e.add_argument("--model-dir", type=Path, required=True)
    e.add_argument("--name", required=True)
    e.add_argument("--results", type=Path, required=True, help="result JSON file")
    e.add_argument("--device", default="cuda")
    c = sub.add_parser("card", help="the model card from results/summary.json files of separate runs")
    c.add_argument("--summary", type=Path, action="append", required=True)
    c.add_argument("--out", type=Path, required=True, help="README.md to write")
    args = ap.parse_args()
    {"all": cmd_all, "train": cmd_train, "eval": cmd_eval, "card": cmd_card}[args.cmd](args)


if __name__ == "__main__":
    main()
