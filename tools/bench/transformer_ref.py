#!/usr/bin/env python3
"""The transformer benchmark model of bench_models_cpu in Python Keras 3 and PyTorch, measured as
../shared/bench measures the others: Keras' fit() and predict() samples per second (median of three
after a warm-up pass), PyTorch's per-step median. An Embedding(20000, 32) over 200 tokens, one
Transformer encoder block (2 heads of 16, a feed-forward of 32, post-norm), average pooling, Dense(20)
and a sigmoid output, trained with Adam on binary cross-entropy at batch 32.
Usage: transformer_ref.py keras|torch [--threads N]"""
import argparse, json, os, statistics, time
import numpy as np

VOCAB, SEQ, WIDTH, BATCH, N = 20000, 200, 32, 32, 32 * 16


def keras_figures():
    os.environ.setdefault("KERAS_BACKEND", "jax")
    import keras
    from keras import layers
    keras.utils.set_random_seed(0)
    x = np.random.randint(0, VOCAB, (N, SEQ)).astype("int32")
    y = np.random.randint(0, 2, (N, 1)).astype("float32")
    tokens = keras.Input((SEQ,), dtype="int32")
    e = layers.Embedding(VOCAB, WIDTH)(tokens)
    h = layers.LayerNormalization(epsilon=1e-6)(layers.Add()([e, layers.MultiHeadAttention(2, WIDTH // 2)(e, e)]))
    ff = layers.Dense(WIDTH)(layers.Dense(WIDTH, activation="relu")(h))
    h = layers.LayerNormalization(epsilon=1e-6)(layers.Add()([h, ff]))
    pooled = layers.Dense(20, activation="relu")(layers.GlobalAveragePooling1D()(h))
    m = keras.Model(tokens, layers.Dense(1, activation="sigmoid")(pooled))
    m.compile("adam", "binary_crossentropy")

    def rate(f):
        f()
        ts = []
        for _ in range(3):
            t = time.perf_counter(); f(); ts.append(time.perf_counter() - t)
        return N / statistics.median(ts)
    train = rate(lambda: m.fit(x, y, batch_size=BATCH, epochs=1, verbose=0, shuffle=False))
    infer = rate(lambda: m.predict(x, batch_size=BATCH, verbose=0))
    return {"model": "transformer", "framework": f"keras {keras.__version__} ({keras.backend.backend()})",
            "batch": BATCH, "seq": SEQ, "train_samples_per_s": train, "infer_samples_per_s": infer}


def torch_figures(threads):
    import torch
    import torch.nn as nn
    import torch.nn.functional as F
    torch.set_num_threads(threads)
    torch.manual_seed(0)

    class Model(nn.Module):
        def __init__(self):
            super().__init__()
            self.emb = nn.Embedding(VOCAB, WIDTH)
            self.attn = nn.MultiheadAttention(WIDTH, 2, batch_first=True)
            self.n1, self.n2 = nn.LayerNorm(WIDTH, eps=1e-6), nn.LayerNorm(WIDTH, eps=1e-6)
            self.f1, self.f2 = nn.Linear(WIDTH, WIDTH), nn.Linear(WIDTH, WIDTH)
            self.d, self.out = nn.Linear(WIDTH, 20), nn.Linear(20, 1)

        def forward(self, x):
            e = self.emb(x)
            h = self.n1(e + self.attn(e, e, e, need_weights=False)[0])
            h = self.n2(h + self.f2(F.relu(self.f1(h))))
            return self.out(F.relu(self.d(h.mean(1))))

    m = Model()
    opt = torch.optim.Adam(m.parameters(), lr=1e-3, eps=1e-7)
    x = torch.randint(0, VOCAB, (BATCH, SEQ))
    y = torch.randint(0, 2, (BATCH, 1)).float()

    def timed(step):
        for _ in range(3):
            step()
        ts = []
        for _ in range(15):
            t = time.perf_counter(); step(); ts.append(time.perf_counter() - t)
        return statistics.median(ts)

    def train_step():
        opt.zero_grad(); F.binary_cross_entropy_with_logits(m(x), y).backward(); opt.step()
    t = timed(train_step)
    with torch.no_grad():
        ti = timed(lambda: m(x))
    return {"model": "transformer", "framework": f"torch {torch.__version__}", "batch": BATCH, "seq": SEQ,
            "train_samples_per_s": BATCH / t, "infer_samples_per_s": BATCH / ti}


if __name__ == "__main__":
    a = argparse.ArgumentParser()
    a.add_argument("framework", choices=["keras", "torch"])
    a.add_argument("--threads", type=int, default=2)
    args = a.parse_args()
    print(json.dumps(keras_figures() if args.framework == "keras" else torch_figures(args.threads)))
