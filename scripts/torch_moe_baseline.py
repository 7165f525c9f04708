#!/usr/bin/env python3
"""The simple PyTorch MoE layer `moesim bench kernel` compares against.

Loop over experts with index_select / index_add_ (the textbook layer), same
shape, routing, thread count and FP32 as the reference kernel. Reads the
routing the C++ side wrote (raw int32 expert ids, float32 gate weights) so
both run identical expert loads. Prints one JSON object.

usage: torch_moe_baseline.py --tokens T --hidden H --ffn F --experts E
       --top-k K --shared S --threads N --reps R --routing-dir DIR
"""
import argparse
import json
import statistics
import sys
import time


def main():
    p = argparse.ArgumentParser()
    for name in ("tokens", "hidden", "ffn", "experts", "top-k", "shared", "threads", "reps"):
        p.add_argument("--" + name, type=int, required=True)
    p.add_argument("--routing-dir", required=True)
    a = p.parse_args()
    try:
        import torch
    except ImportError as e:  # reported, not fatal: the bench says torch is absent
        print(json.dumps({"available": False, "reason": str(e)}))
        return 0
    torch.set_num_threads(a.threads)
    torch.manual_seed(0)
    T, H, F, E, K, S = a.tokens, a.hidden, a.ffn, a.experts, a.top_k, a.shared
    def raw(name, dtype):
        with open(f"{a.routing_dir}/{name}", "rb") as f:
            return torch.frombuffer(bytearray(f.read()), dtype=dtype)

    experts = raw("expert.i32", torch.int32).to(torch.int64).view(T, K)
    weights = raw("weight.f32", torch.float32).view(T, K)
    x = torch.randn(T, H)
    router = torch.randn(H, E) / H ** 0.5
    w_gate_up = [torch.randn(H, 2 * F) / H ** 0.5 for _ in range(E)]
    w_down = [torch.randn(F, H) / F ** 0.5 for _ in range(E)]
    if S:
        s_gate_up = torch.randn(H, 2 * F * S) / H ** 0.5
        s_down = torch.randn(F * S, H) / (F * S) ** 0.5
    flat_e = experts.reshape(-1)
    flat_w = weights.reshape(-1)
    flat_t = torch.arange(T).repeat_interleave(K)

    def layer():
        # Router runs (as in the C++ kernel) but dispatch uses the given routing.
        probs = torch.softmax(x @ router, dim=-1)
        torch.topk(probs, K, dim=-1)
        out = torch.zeros(T, H)
        if S:
            h = x @ s_gate_up
            out += (torch.nn.functional.silu(h[:, : F * S]) * h[:, F * S:]) @ s_down
        for e in range(E):
            sel = (flat_e == e).nonzero(as_tuple=True)[0]
            if sel.numel() == 0:
                continue
            tok = flat_t.index_select(0, sel)
            xe = x.index_select(0, tok)
            h = xe @ w_gate_up[e]
            y = (torch.nn.functional.silu(h[:, :F]) * h[:, F:]) @ w_down[e]
            out.index_add_(0, tok, y * flat_w.index_select(0, sel).unsqueeze(1))
        return out

    with torch.no_grad():
        layer()
        times = []
        for _ in range(a.reps):
            t0 = time.perf_counter()
            layer()
            times.append(time.perf_counter() - t0)
    print(json.dumps({"available": True, "torch_version": torch.__version__,
                      "threads": torch.get_num_threads(),
                      "median_s": statistics.median(times)}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
