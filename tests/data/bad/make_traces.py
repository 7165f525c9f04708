#!/usr/bin/env python3
"""Writes the malformed .moetrace reproducers of issue 15 into this folder,
and small valid traces (format versions 1 and 2) into the trace reader's fuzz
seed corpus. Deterministic: rerunning it rewrites the same bytes.

The format is documented in workloads/trace_file.h; this writer follows it
independently of moesim's, so the reproducers do not depend on the code they
test. Each bad file is valid except for the one defect its name says, and
carries correct checksums where the defect lies behind them, so that the
check under test (not a checksum) is what rejects it.
"""
import json
import os
import struct

HERE = os.path.dirname(os.path.abspath(__file__))
CORPUS = os.path.join(HERE, "..", "..", "fuzz", "corpus", "trace_read")
BLOCK_MAGIC = 0x314B4C42  # "BLK1"
FNV_OFFSET = 2166136261


def fnv1a(data, state=FNV_OFFSET):
    for byte in data:
        state = ((state ^ byte) * 16777619) & 0xFFFFFFFF
    return state


def header(version=2, steps=2, layers=2, experts=8, top_k=2, ranks=2, **override):
    fields = {"format": "moetrace", "version": version, "model": "tiny-moe",
              "experts": experts, "top_k": top_k, "moe_layers": layers, "steps": steps,
              "ranks": ranks, "generator": "uniform", "seed": 1}
    if version >= 2:
        fields["blocks"] = steps * layers
    fields.update(override)
    text = json.dumps(fields, separators=(",", ":"), sort_keys=True).encode()
    out = b"MOETRACE" + struct.pack("<II", version, len(text)) + text
    if version >= 2:
        out += struct.pack("<I", fnv1a(text))
    return out


def block(step, layer, tokens=3, top_k=2, experts=8, version=2, declared_tokens=None,
          expert_rows=None, weights=None, payload_only_checksum=False):
    """One block; expert ids cycle through the experts unless given."""
    rows = expert_rows or [[(t * top_k + c) % experts for c in range(top_k)]
                           for t in range(tokens)]
    weights = weights or [[1.0 / top_k] * top_k for _ in rows]
    payload = b"".join(struct.pack("<H", t % 2) for t in range(len(rows)))
    payload += b"".join(struct.pack("<H", e) for row in rows for e in row)
    payload += b"".join(struct.pack("<f", w) for row in weights for w in row)
    n = len(rows) if declared_tokens is None else declared_tokens
    head = struct.pack("<IIIQ", BLOCK_MAGIC, step, layer, n)
    state = fnv1a(head) if version >= 2 and not payload_only_checksum else FNV_OFFSET
    return head + struct.pack("<I", fnv1a(payload, state)) + payload


def trace(version=2, steps=2, layers=2, tokens=3, **kw):
    out = header(version, steps, layers, **kw)
    for s in range(steps):
        for l in range(layers):
            out += block(s, l, tokens=tokens, version=version)
    return out


def write(folder, name, data):
    with open(os.path.join(folder, name), "wb") as f:
        f.write(data)


def main():
    os.makedirs(CORPUS, exist_ok=True)
    write(CORPUS, "valid-v2.moetrace", trace(2))
    write(CORPUS, "valid-v1.moetrace", trace(1))
    write(CORPUS, "valid-v2-one-block.moetrace", trace(2, steps=1, layers=1, tokens=5))

    bad = {}
    h = header(2)
    full = trace(2)
    rest = full[len(h) + 66:]  # the blocks after the first (66 bytes at 3 tokens, top-2)
    # Block header fields >= 2^31 used to turn negative and pass the range checks.
    bad["trace-step-2pow31.moetrace"] = h + block(1 << 31, 0) + rest
    bad["trace-layer-2pow31.moetrace"] = h + block(0, 1 << 31) + rest
    v1 = trace(1)
    bad["trace-v1-step-2pow31.moetrace"] = (
        header(1) + block(1 << 31, 0, version=1) + v1[len(header(1)) + 66:])
    # A block's token count used to be trusted before the file size (a 29 KB
    # file asked for 15 GB).
    big = h + block(0, 0, tokens=2000, declared_tokens=1 << 30) + b"\0" * 1000
    bad["trace-tokens-2pow30.moetrace"] = big
    bad["trace-tokens-beyond-file.moetrace"] = (
        h + block(0, 0, tokens=2000, declared_tokens=1_000_000))
    # Header counts that do not fit (used to reach vector::_M_default_append).
    bad["trace-steps-negative.moetrace"] = header(2, steps=-1, blocks=-2) + block(0, 0)
    bad["trace-steps-2pow31.moetrace"] = header(2, steps=1 << 31, blocks=1 << 32) + block(0, 0)
    bad["trace-blocks-beyond-file.moetrace"] = header(2, steps=1_000_000, layers=4) + block(0, 0)
    bad["trace-expert-layers.moetrace"] = header(2, experts=65535, layers=10000) + block(0, 0)
    # Cut at a block boundary (also header only), repeated blocks.
    bad["trace-header-only.moetrace"] = h
    bad["trace-cut-at-block.moetrace"] = h + block(0, 0, tokens=20) + block(0, 1, tokens=20)
    bad["trace-repeated-last-block.moetrace"] = full + block(1, 1)
    bad["trace-repeated-middle-block.moetrace"] = (
        h + block(0, 0) + block(0, 1) + block(0, 1) + block(1, 0) + block(1, 1))
    # Content: a token routed twice to one expert, a NaN gate weight.
    bad["trace-routed-twice.moetrace"] = (
        h + block(0, 0, expert_rows=[[3, 3], [1, 2], [4, 5]]) + rest)
    bad["trace-weight-nan.moetrace"] = (
        h + block(0, 0, weights=[[float("nan"), 0.5]] * 3) + rest)
    # Version 2 checksums the block header: a block checksummed the version-1
    # way (payload only) is corrupt.
    bad["trace-block-header-unchecksummed.moetrace"] = (
        h + block(0, 0, payload_only_checksum=True) + rest)
    edited = bytearray(full)
    at = edited.find(b'"experts":8')
    edited[at + 10] = ord("2")
    bad["trace-header-edited.moetrace"] = bytes(edited)
    bad["trace-version-3.moetrace"] = b"MOETRACE" + struct.pack("<I", 3) + full[12:]
    for name, data in bad.items():
        write(HERE, name, data)


if __name__ == "__main__":
    main()
