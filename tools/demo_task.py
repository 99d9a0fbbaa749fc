#!/usr/bin/env python3
"""The demo pair's task: chains of 2 to 4 numbers added and subtracted, worked column by column.

Pure Python (no torch), so the task, the data generator, the held-out set and the answer check
can be tested anywhere:

    python3 tools/demo_task.py selftest
    python3 tools/demo_task.py example --seed 7
    python3 tools/demo_task.py eval-set --out models/demo/eval.jsonl

A problem is evaluated left to right. Each step is written as schoolbook column arithmetic,
least significant column first, with the carry (or borrow) that enters the column written in
the line, then the step's result, and a final answer line:

    prompt:    7046-389+52=
    response:  (continues right after the '=')
               7046-389          <- the step, restated
               16-9-0=7          <- column 1: a borrow was taken, so 6 reads as 16; 0 comes in
               14-8-1=5          <- column 2: the 1 borrowed by column 1 is paid back here
               10-3-1=6
               7-0-1=6           <- shorter operands are padded with 0
               =6657             <- the step's result (column digits, last column first)
               6657+52
               7+2+0=9           <- addition: a+b+carry_in=sum; the carry out is the sum's tens
               5+5+0=10
               6+0+1=7
               6+0+0=6
               =6709
               answer=6709

The final answer is the text after the last '=' on the last line (see `extract_answer`).
A subtraction step is only generated when it cannot go below zero, so every value is a
non-negative integer and every answer is a plain decimal number.

The tokenizer is byte level with no merges: one token per character, id = byte + 2, with
<s> = 0 (prepended to every prompt) and </s> = 1 (ends every response). `encode_ids` is that
mapping; tools/train_demo_pair.py checks it against the tokenizer.json it writes.
"""

from __future__ import annotations

import argparse
import json
import random
import sys
from dataclasses import dataclass
from pathlib import Path

BOS_ID = 0
EOS_ID = 1
BYTE_ID_OFFSET = 2      # ids 2..257 are the 256 bytes
VOCAB_SIZE = 258

MIN_OPERANDS, MAX_OPERANDS = 2, 4
MIN_DIGITS, MAX_DIGITS = 1, 7

# The held-out set and the training stream are drawn from different seeds; the training stream
# additionally skips every prompt of the held-out and validation sets (see TrainingStream).
EVAL_SEED = 20_000
EVAL_SIZE = 500
VALID_SEED = 30_000
VALID_SIZE = 512
TRAIN_SEED = 10_000


@dataclass(frozen=True)
class Problem:
    operands: tuple[int, ...]
    ops: tuple[str, ...]        # '+' or '-', one fewer than operands

    @property
    def prompt(self) -> str:
        text = str(self.operands[0])
        for op, value in zip(self.ops, self.operands[1:]):
            text += f"{op}{value}"
        return text + "="

    @property
    def answer(self) -> int:
        value = self.operands[0]
        for op, operand in zip(self.ops, self.operands[1:]):
            value = value + operand if op == "+" else value - operand
        return value

    @property
    def digits(self) -> int:
        """Total digits of the operands: the difficulty bucket used in reports."""
        return sum(len(str(v)) for v in self.operands)


def random_operand(rng: random.Random) -> int:
    n_digits = rng.randint(MIN_DIGITS, MAX_DIGITS)
    low = 0 if n_digits == 1 else 10 ** (n_digits - 1)
    return rng.randint(low, 10 ** n_digits - 1)


def random_problem(rng: random.Random) -> Problem:
    n = rng.randint(MIN_OPERANDS, MAX_OPERANDS)
    operands = [random_operand(rng)]
    ops = []
    value = operands[0]
    for _ in range(n - 1):
        operand = random_operand(rng)
        op = rng.choice("+-")
        # Subtraction that would go negative becomes addition: every intermediate stays >= 0,
        # so every step is plain column arithmetic without a sign rule.
        if op == "-" and operand > value:
            op = "+"
        value = value + operand if op == "+" else value - operand
        operands.append(operand)
        ops.append(op)
    return Problem(tuple(operands), tuple(ops))


def digits_lsb_first(value: int, width: int) -> list[int]:
    return [(value // 10 ** i) % 10 for i in range(width)]


def column_step(a: int, op: str, b: int) -> tuple[list[str], int]:
    """The column lines of a op b and its result."""
    width = max(len(str(a)), len(str(b)))
    da, db = digits_lsb_first(a, width), digits_lsb_first(b, width)
    lines, out_digits, carry = [], [], 0
    for i in range(width):
        if op == "+":
            total = da[i] + db[i] + carry
            lines.append(f"{da[i]}+{db[i]}+{carry}={total}")
            # The last column writes its whole sum, so a final carry shows up as the leading 1.
            out_digits.append(str(total) if i == width - 1 else str(total % 10))
            carry = total // 10
        else:
            borrow = 1 if da[i] - db[i] - carry < 0 else 0
            top = da[i] + 10 * borrow
            diff = top - db[i] - carry
            lines.append(f"{top}-{db[i]}-{carry}={diff}")
            out_digits.append(str(diff))
            carry = borrow
    result_text = "".join(reversed(out_digits)).lstrip("0") or "0"
    result = a + b if op == "+" else a - b
    # A subtraction that cannot go negative ends without an outstanding borrow.
    assert int(result_text) == result and (op == "+" or carry == 0)
    return lines, result


def solution(problem: Problem) -> str:
    """The reference response: everything the model writes after the prompt (no EOS)."""
    out = []
    value = problem.operands[0]
    for op, operand in zip(problem.ops, problem.operands[1:]):
        out.append(f"{value}{op}{operand}")
        lines, value = column_step(value, op, operand)
        out.extend(lines)
        out.append(f"={value}")
    out.append(f"answer={value}")
    return "\n" + "\n".join(out)


def extract_answer(generation: str) -> str | None:
    """The answer of a generated response: the text after the last '=' on its last non-empty line,
    stripped of whitespace. None when that line has no '='."""
    lines = [line for line in generation.strip().split("\n") if line.strip()]
    if not lines or "=" not in lines[-1]:
        return None
    return lines[-1].rsplit("=", 1)[1].strip()


def is_correct(generation: str, problem_answer: str) -> bool:
    return extract_answer(generation) == problem_answer


def encode_ids(text: str) -> list[int]:
    """Byte-level ids without specials (what tokenizer.json gives for text without <s>/</s>)."""
    return [b + BYTE_ID_OFFSET for b in text.encode("utf-8")]


def decode_ids(ids: list[int]) -> str:
    return bytes(i - BYTE_ID_OFFSET for i in ids if i >= BYTE_ID_OFFSET).decode("utf-8", errors="replace")


def example_ids(problem: Problem) -> tuple[list[int], int]:
    """Token ids of <s> prompt response </s>, and how many of them are the prompt (with <s>).
    The loss is taken on the response and </s> only: the prompt's digits are random."""
    prompt = [BOS_ID] + encode_ids(problem.prompt)
    return prompt + encode_ids(solution(problem)) + [EOS_ID], len(prompt)


def unique_problems(seed: int, count: int, exclude: set[str]) -> list[Problem]:
    rng = random.Random(seed)
    seen, out = set(exclude), []
    while len(out) < count:
        p = random_problem(rng)
        if p.prompt not in seen:
            seen.add(p.prompt)
            out.append(p)
    return out


def eval_problems() -> list[Problem]:
    return unique_problems(EVAL_SEED, EVAL_SIZE, set())


def valid_problems() -> list[Problem]:
    """A second held-out set, only for monitoring training; disjoint from the evaluation set."""
    return unique_problems(VALID_SEED, VALID_SIZE, {p.prompt for p in eval_problems()})


def eval_record(index: int, p: Problem) -> dict:
    return {"id": index, "prompt": p.prompt, "response": solution(p), "answer": str(p.answer)}


def write_eval_set(path: Path) -> int:
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", encoding="utf-8", newline="\n") as f:
        for i, p in enumerate(eval_problems()):
            f.write(json.dumps(eval_record(i, p), ensure_ascii=True) + "\n")
    return EVAL_SIZE


class TrainingStream:
    """Seeded training batches that never contain a held-out prompt.

    Batch k is drawn from its own generator, seeded by (seed, k), so the data do not depend on
    how many loader workers make them or in which order: every run with the same seed, and both
    models of the pair, see exactly the same batches."""

    def __init__(self, seed: int = TRAIN_SEED):
        self.seed = seed
        self.held_out = {p.prompt for p in eval_problems()} | {p.prompt for p in valid_problems()}

    def batch(self, index: int, size: int) -> list[Problem]:
        rng = random.Random(f"demo-train-{self.seed}-{index}")
        out = []
        while len(out) < size:
            p = random_problem(rng)
            if p.prompt not in self.held_out:
                out.append(p)
        return out


def check_chain(prompt: str, generation: str) -> list[str]:
    """Re-derives the reference for `prompt` and lists where `generation` departs from it
    (line by line), so a wrong answer can be traced to the step that broke."""
    a = prompt.rstrip("=")
    operands, ops, cur = [], [], ""
    for ch in a:
        if ch in "+-":
            operands.append(int(cur))
            ops.append(ch)
            cur = ""
        else:
            cur += ch
    operands.append(int(cur))
    want = solution(Problem(tuple(operands), tuple(ops))).split("\n")
    got = generation.split("\n")
    issues = [f"line {i}: want {w!r} got {g!r}" for i, (w, g) in enumerate(zip(want, got)) if w != g]
    if len(got) != len(want):
        issues.append(f"{len(got)} lines, want {len(want)}")
    return issues


def selftest() -> None:
    rng = random.Random(1)
    for _ in range(20_000):
        p = random_problem(rng)
        text = solution(p)
        assert extract_answer(text) == str(p.answer) and p.answer >= 0
        assert not check_chain(p.prompt, text)
        # Every column line's arithmetic is right and its carry/borrow is the one the previous
        # column produced.
        for line in text.split("\n"):
            if line and line[0].isdigit() and "=" in line and ("+" in line or "-" in line):
                lhs, rhs = line.split("=")
                if "+" in lhs and lhs.count("+") == 2:
                    x, y, c = map(int, lhs.split("+"))
                    assert x + y + c == int(rhs) and c in (0, 1)
                elif lhs.count("-") == 2:
                    x, y, c = map(int, lhs.split("-"))
                    assert x - y - c == int(rhs) and 0 <= int(rhs) <= 9 and c in (0, 1)
        ids, n_prompt = example_ids(p)
        assert decode_ids(ids[1:n_prompt]) == p.prompt and ids[-1] == EOS_ID
    ev, va = eval_problems(), valid_problems()
    assert len({p.prompt for p in ev}) == EVAL_SIZE and len({p.prompt for p in va}) == VALID_SIZE
    assert not {p.prompt for p in ev} & {p.prompt for p in va}
    stream = TrainingStream()
    held = {p.prompt for p in ev} | {p.prompt for p in va}
    drawn = [p for k in range(200) for p in stream.batch(k, 256)]
    assert not {p.prompt for p in drawn} & held
    assert [p.prompt for p in stream.batch(7, 256)] == [p.prompt for p in TrainingStream().batch(7, 256)]
    # How often the filter fires: the held-out prompts that an unfiltered draw would have hit.
    rng, hits = random.Random(5), 0
    for _ in range(len(drawn)):
        hits += random_problem(rng).prompt in held
    # Hand-checked cases: borrow chains, leading zeros, final carry, zero.
    assert solution(Problem((7046, 389, 52), ("-", "+"))) == (
        "\n7046-389\n16-9-0=7\n14-8-1=5\n10-3-1=6\n7-0-1=6\n=6657"
        "\n6657+52\n7+2+0=9\n5+5+0=10\n6+0+1=7\n6+0+0=6\n=6709\nanswer=6709")
    assert solution(Problem((1000, 999), ("-",))).endswith("\n1-0-1=0\n=1\nanswer=1")
    assert solution(Problem((95, 17), ("+",))).endswith("\n9+1+1=11\n=112\nanswer=112")
    assert solution(Problem((52, 52), ("-",))).endswith("\n=0\nanswer=0")
    assert extract_answer("\n5+5+0=10\nanswer= 42 \n") == "42" and extract_answer("garbage") is None
    print(f"selftest ok; an unfiltered draw of {len(drawn)} problems hits {hits} held-out prompts")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = ap.add_subparsers(dest="cmd", required=True)
    sub.add_parser("selftest")
    ex = sub.add_parser("example")
    ex.add_argument("--seed", type=int, default=0)
    ev = sub.add_parser("eval-set")
    ev.add_argument("--out", type=Path, required=True)
    st = sub.add_parser("stats")
    st.add_argument("--n", type=int, default=20_000)
    args = ap.parse_args()
    if args.cmd == "selftest":
        selftest()
    elif args.cmd == "example":
        p = random_problem(random.Random(args.seed))
        print(p.prompt + solution(p))
    elif args.cmd == "eval-set":
        print(f"wrote {write_eval_set(args.out)} lines to {args.out}")
    elif args.cmd == "stats":
        rng = random.Random(0)
        lengths = sorted(len(example_ids(random_problem(rng))[0]) for _ in range(args.n))
        print(f"tokens per example (with <s>, </s>): mean {sum(lengths) / len(lengths):.1f}, "
              f"median {lengths[len(lengths) // 2]}, max {lengths[-1]}")
    else:
        sys.exit(2)


if __name__ == "__main__":
    main()
