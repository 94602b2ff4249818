#!/usr/bin/env python3
"""bench_models_cpu's resnet50_train in Python Keras 3 and PyTorch: ResNet50 (1000 classes, random
weights) trained with Adam on sparse cross-entropy at batch 16 over three batches of 224x224 images.
Keras: fit() samples per second, median of three after a warm-up pass (as ../shared/bench/keras_ref.py
measures); PyTorch: per-step median after warm-up steps. run_cpu_rivals.sh takes each process' peak
resident memory.   Usage: resnet50_train_ref.py keras|torch [--threads N]"""
import argparse, json, os, statistics, time
import numpy as np

BATCH, N = 16, 48


def keras_figures():
    os.environ.setdefault("KERAS_BACKEND", "jax")
    import keras
    keras.utils.set_random_seed(0)
    x = np.random.rand(N, 224, 224, 3).astype("float32")
    y = np.random.randint(0, 1000, (N,)).astype("int32")
    m = keras.applications.ResNet50(weights=None)
    m.compile("adam", "sparse_categorical_crossentropy")
    fit = lambda: m.fit(x, y, batch_size=BATCH, epochs=1, verbose=0, shuffle=False)
    fit()
    ts = []
    for _ in range(3):
        t = time.perf_counter(); fit(); ts.append(time.perf_counter() - t)
    return {"model": "resnet50_train", "framework": f"keras {keras.__version__} ({keras.backend.backend()})",
            "batch": BATCH, "train_samples_per_s": N / statistics.median(ts)}


def torch_figures(threads):
    import torch
    import torch.nn.functional as F
    import torchvision
    torch.set_num_threads(threads)
    torch.manual_seed(0)
    m = torchvision.models.resnet50(weights=None)
    opt = torch.optim.Adam(m.parameters(), lr=1e-3, eps=1e-7)
    x = torch.rand(BATCH, 3, 224, 224)
    y = torch.randint(0, 1000, (BATCH,))

    def step():
        opt.zero_grad(); F.cross_entropy(m(x), y).backward(); opt.step()
    for _ in range(2):
        step()
    ts = []
    for _ in range(5):
        t = time.perf_counter(); step(); ts.append(time.perf_counter() - t)
    return {"model": "resnet50_train", "framework": f"torch {torch.__version__}", "batch": BATCH,
            "train_samples_per_s": BATCH / statistics.median(ts)}


if __name__ == "__main__":
    a = argparse.ArgumentParser()
    a.add_argument("framework", choices=["keras", "torch"])
    a.add_argument("--threads", type=int, default=2)
    args = a.parse_args()
    print(json.dumps(keras_figures() if args.framework == "keras" else torch_figures(args.threads)))
