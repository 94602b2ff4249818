#!/usr/bin/env python3
"""Peak tensor memory of PyTorch's ResNet50 training, with the step of ../shared/bench/torch_gpu_ref.py
itself (run from the folder it was copied to, .gpu/): the rival of bench_models_gpu's "peak_mb".
torch.cuda.max_memory_allocated counts what the caching allocator handed out, as kerascpp's
backend::get_memory_info does: weights, optimizer state, the batch and the step's activations."""
import json, os, sys
sys.path.insert(0, os.getcwd())
import torch, torchvision, torch.nn.functional as F
import torch_gpu_ref as ref

torch.backends.cudnn.benchmark = True
for amp, bs in ((False, 128), (True, 256)):
    torch.manual_seed(0)
    r50 = torchvision.models.resnet50(weights=None).to(ref.dev)
    x = torch.rand(bs, 3, 224, 224, device=ref.dev)
    if amp:
        r50 = r50.to(memory_format=torch.channels_last)
        x = x.to(memory_format=torch.channels_last)
    torch.cuda.reset_peak_memory_stats()
    ref.train_bench("resnet50", r50, [x], torch.randint(0, 1000, (bs,), device=ref.dev), F.cross_entropy, warm=2, n=3, amp=amp)
    print(json.dumps({"model": "resnet50", "amp_bf16": amp, "batch": bs,
                      "peak_mb": round(torch.cuda.max_memory_allocated() / 1e6, 1)}), flush=True)
    del r50, x
    torch.cuda.empty_cache()
