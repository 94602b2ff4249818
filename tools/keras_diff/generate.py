"""Random small Keras models (one layer kind each, with random options, weights and inputs),
saved by Python Keras 3 with Keras' predictions, for the differential check of run.sh.
    generate.py COUNT OUT_DIR [SEED]       (KERAS_DIFF_ONLY=image|sequence|merge|embed|graph|attention: one family)
Models Keras itself refuses are skipped. Add a layer kind or option here when kerascpp gains one."""
import json, os, sys, random, traceback
import numpy as np
os.environ.setdefault("KERAS_BACKEND", "jax")
import keras
from keras import layers

n, out = int(sys.argv[1]), sys.argv[2]
seed = int(sys.argv[3]) if len(sys.argv) > 3 else 0
os.makedirs(out, exist_ok=True)
R = random.Random(seed)
np.random.seed(seed)
keras.utils.set_random_seed(seed)
ACTS = ["relu", "relu6", "leaky_relu", "elu", "selu", "gelu", "sigmoid", "hard_sigmoid", "tanh", "softmax",
        "log_softmax", "softplus", "softsign", "swish", "silu", "exponential", "linear", "mish", "hard_silu", "celu",
        "glu", "hard_shrink", "hard_tanh", "log_sigmoid", "soft_shrink", "sparse_plus", "sparse_sigmoid", "squareplus",
        "tanh_shrink"]
def act(): return R.choice(ACTS)
def pick(*a): return R.choice(a)

def image_case():
    h, w, c = R.randint(5, 12), R.randint(5, 12), R.randint(1, 6)
    kind = pick("conv", "convT", "dw", "sep", "pool", "gpool", "bn", "ln", "pad", "crop", "up", "misc", "block",
                "resize")
    if kind == "conv":
        groups = pick(1, 1, c) if c > 1 else 1
        filt = groups * R.randint(1, 3)
        strides = (R.randint(1, 3), R.randint(1, 3)); dil = (1, 1)
        if R.random() < 0.3: strides = (1, 1); dil = (R.randint(1, 2), R.randint(1, 2))
        L = layers.Conv2D(filt, (R.randint(1, 4), R.randint(1, 4)), strides=strides, dilation_rate=dil,
                          padding=pick("valid", "same"), groups=groups, use_bias=R.random() < 0.7, activation=act(),
                          kernel_regularizer=reg())
    elif kind == "convT":
        strides = (R.randint(1, 3), R.randint(1, 3))
        extra = None
        if R.random() < 0.3: extra = (R.randint(0, strides[0] - 1), R.randint(0, strides[1] - 1))
        L = layers.Conv2DTranspose(R.randint(1, 5), (R.randint(1, 4), R.randint(1, 4)), strides=strides,
                                   padding=pick("valid", "same"), output_padding=extra, use_bias=R.random() < 0.7,
                                   activation=act())
    elif kind == "dw":
        st = R.randint(1, 2)
        L = layers.DepthwiseConv2D((R.randint(1, 4), R.randint(1, 4)), strides=st, padding=pick("valid", "same"),
                                   dilation_rate=1 if st > 1 else R.randint(1, 2), depth_multiplier=R.randint(1, 3),
                                   use_bias=R.random() < 0.7, activation=act())
    elif kind == "sep":
        L = layers.SeparableConv2D(R.randint(1, 5), (R.randint(1, 3), R.randint(1, 3)), strides=R.randint(1, 2),
                                   padding=pick("valid", "same"), depth_multiplier=R.randint(1, 2), activation=act())
    elif kind == "pool":
        ps = (R.randint(1, 3), R.randint(1, 3))
        st = pick(None, (R.randint(1, 3), R.randint(1, 3)))
        L = pick(layers.MaxPooling2D, layers.AveragePooling2D)(ps, strides=st, padding=pick("valid", "same"))
    elif kind == "gpool":
        L = pick(layers.GlobalMaxPooling2D, layers.GlobalAveragePooling2D)(keepdims=R.random() < 0.5)
    elif kind == "bn":
        L = layers.BatchNormalization(axis=pick(-1, -1, 1, 2, 3), center=R.random() < 0.8, scale=R.random() < 0.8,
                                      epsilon=pick(1e-3, 1e-5, 0.1))
    elif kind == "ln":
        L = layers.LayerNormalization(axis=pick(-1, [1, 2], [1, 2, 3], 2, [2, 3]), center=R.random() < 0.8,
                                      scale=R.random() < 0.8, epsilon=pick(1e-3, 1e-6), rms_scaling=R.random() < 0.2)
    elif kind == "block":  # a conv -> batch norm -> (add) -> activation block, as ResNet's
        f = c
        x = keras.Input((h, w, c))
        # No bias before the batch norm: its gradient is zero up to rounding, which Adam-like
        # optimizers would turn into full steps of either sign.
        y = layers.Conv2D(f, pick(1, 3), padding="same", use_bias=False)(x)
        y = layers.BatchNormalization(epsilon=pick(1e-3, 1.001e-5))(y)
        if R.random() < 0.6: y = layers.Add()([y, x])
        y = layers.Activation(pick("relu", "tanh", "linear"))(y)
        if R.random() < 0.5: y = layers.MaxPooling2D(2, padding=pick("valid", "same"))(y)
        return (h, w, c), keras.Model(x, y, name=f"block_{R.randint(0, 10**6)}")
    elif kind == "pad":
        L = layers.ZeroPadding2D(pick(1, (1, 2), ((0, 1), (2, 0))))
    elif kind == "crop":
        L = layers.Cropping2D(pick(1, (1, 2), ((0, 1), (2, 0))))
    elif kind == "resize":
        aspect = pick("none", "none", "crop", "pad")
        L = layers.Resizing(R.randint(1, 14), R.randint(1, 14),
                            interpolation=pick("bilinear", "nearest", "bicubic", "lanczos3", "lanczos5"),
                            crop_to_aspect_ratio=aspect == "crop", pad_to_aspect_ratio=aspect == "pad",
                            fill_value=pick(0.0, 0.5), antialias=R.random() < 0.3)
    elif kind == "up":
        L = layers.UpSampling2D(pick(2, (1, 3), (2, 2)), interpolation=pick("nearest", "bilinear", "nearest"))
    else:
        L = pick(layers.Flatten(), layers.Permute(pick((2, 1, 3), (3, 1, 2), (1, 3, 2))), layers.SpatialDropout2D(0.3),
                 layers.Rescaling(pick(0.5, 2.0), offset=pick(0.0, -1.0)), layers.Dense(R.randint(1, 5), activation=act()),
                 layers.Softmax(axis=pick(-1, 1, 2)), layers.ReLU(max_value=pick(None, 0.5), negative_slope=pick(0.0, 0.1),
                 threshold=pick(0.0, 0.2)), layers.LeakyReLU(negative_slope=pick(0.3, 0.01)), layers.ELU(alpha=pick(1.0, 0.5)),
                 layers.Activation(act()), layers.PReLU(shared_axes=pick(None, [1, 2], [3])),
                 layers.GroupNormalization(groups=pick(1, c), epsilon=pick(1e-3, 1e-5)), layers.UnitNormalization(),
                 layers.RMSNormalization(), layers.Identity(), layers.ActivityRegularization(l1=0.01, l2=0.02))
    return (h, w, c), L

def seq_case():
    t, f = R.randint(2, 7), R.randint(1, 6)
    kind = pick("rnn", "rnn", "bi", "conv1", "pool1", "gpool1", "misc1", "masked", "convlstm", "td", "convT1", "dw1",
                "sep1")
    if kind in ("rnn", "bi", "masked"):
        cls = pick(layers.SimpleRNN, layers.LSTM, layers.GRU)
        kw = dict(return_sequences=R.random() < 0.5, go_backwards=R.random() < 0.3, use_bias=R.random() < 0.8)
        if cls is not layers.SimpleRNN and R.random() < 0.3: kw["activation"] = pick("relu", "sigmoid")
        if cls is not layers.SimpleRNN and R.random() < 0.3: kw["recurrent_activation"] = pick("hard_sigmoid", "tanh")
        if cls is layers.GRU: kw["reset_after"] = R.random() < 0.6
        if cls is layers.LSTM: kw["unit_forget_bias"] = R.random() < 0.5
        L = cls(R.randint(1, 5), **kw)
        if kind == "bi":
            L = layers.Bidirectional(L, merge_mode=pick("concat", "sum", "mul", "ave"))
        if kind == "masked":
            return (t, f), [layers.Masking(0.0), L]
    elif kind == "convlstm":
        return (t, R.randint(3, 5), R.randint(3, 5), f), layers.ConvLSTM2D(
            R.randint(1, 3), (R.randint(1, 3), R.randint(1, 3)), padding=pick("valid", "same"),
            return_sequences=R.random() < 0.5, go_backwards=R.random() < 0.3)
    elif kind == "td":
        return (t, R.randint(3, 6), R.randint(3, 6), f), [
            layers.TimeDistributed(layers.Conv2D(R.randint(1, 3), 2, activation=act())),
            layers.TimeDistributed(pick(layers.GlobalAveragePooling2D(), layers.Flatten())),
            pick(layers.LSTM, layers.GRU)(R.randint(1, 3))]
    elif kind == "conv1":
        st = R.randint(1, 3); dil = 1
        if st == 1 and R.random() < 0.4: dil = 2
        L = layers.Conv1D(R.randint(1, 5), R.randint(1, 4), strides=st, dilation_rate=dil,
                          padding=pick("valid", "same", "causal"), use_bias=R.random() < 0.7, activation=act(),
                          kernel_regularizer=reg())
    elif kind == "convT1":
        st = R.randint(1, 3)
        L = layers.Conv1DTranspose(R.randint(1, 5), R.randint(1, 4), strides=st, padding=pick("valid", "same"),
                                   output_padding=pick(None, R.randint(0, st - 1)), use_bias=R.random() < 0.7,
                                   activation=act())
    elif kind in ("dw1", "sep1"):
        st = R.randint(1, 2)
        kw = dict(strides=st, padding=pick("valid", "same"), dilation_rate=1 if st > 1 else R.randint(1, 2),
                  depth_multiplier=R.randint(1, 3), use_bias=R.random() < 0.7, activation=act())
        L = (layers.DepthwiseConv1D(R.randint(1, 3), **kw) if kind == "dw1"
             else layers.SeparableConv1D(R.randint(1, 5), R.randint(1, 3), **kw))
    elif kind == "pool1":
        L = pick(layers.MaxPooling1D, layers.AveragePooling1D)(R.randint(1, 3), strides=pick(None, 1, 2),
                                                               padding=pick("valid", "same"))
    elif kind == "gpool1":
        L = pick(layers.GlobalMaxPooling1D, layers.GlobalAveragePooling1D)(keepdims=R.random() < 0.5)
    else:
        L = pick(layers.Dense(R.randint(1, 4), activation=act(), kernel_regularizer=reg()), layers.Flatten(),
                 layers.Reshape((-1,)), layers.Permute((2, 1)), layers.LayerNormalization(axis=pick(-1, 1, [1, 2])),
                 layers.TimeDistributed(layers.Dense(R.randint(1, 4), activation=act())),
                 layers.ZeroPadding1D(pick(1, (0, 2))), layers.Cropping1D((R.randint(0, 1), R.randint(0, 1))),
                 layers.UpSampling1D(R.randint(1, 3)), layers.SpatialDropout1D(0.3), layers.PReLU(shared_axes=pick(None, [1])))
    return (t, f), L

def merge_case():
    shape = (R.randint(1, 4), R.randint(1, 5))
    a, b = keras.Input(shape), keras.Input(shape)
    kind = pick("add", "sub", "mul", "avg", "max", "min", "cat", "dot")
    if kind == "cat":
        y = layers.Concatenate(axis=pick(-1, 1, 2))([a, b])
    elif kind == "dot":
        y = layers.Dot(axes=pick(1, 2, (1, 1), (2, 2)), normalize=R.random() < 0.5)([a, b])
    else:
        cls = dict(add=layers.Add, sub=layers.Subtract, mul=layers.Multiply, avg=layers.Average, max=layers.Maximum,
                   min=layers.Minimum)[kind]
        y = cls()([a, b])
    return keras.Model([a, b], y)

def embed_case():
    vocab = R.randint(3, 10)
    x = keras.Input((R.randint(2, 6),), dtype="int32")
    mz = R.random() < 0.5
    e = layers.Embedding(vocab, R.randint(1, 4), mask_zero=mz)(x)
    cls = pick(layers.LSTM, layers.GRU, layers.SimpleRNN)
    y = cls(R.randint(1, 4), return_sequences=R.random() < 0.5, go_backwards=R.random() < 0.3)(e)
    if R.random() < 0.5: y = layers.Dense(2)(y)
    return keras.Model(x, y), vocab

def optimizer(plain=False):
    kind = pick("sgd", "sgd_m") if plain else pick("sgd", "sgd_m", "adam", "adamw", "rmsprop", "adagrad", "adadelta",
                                                   "adamax", "nadam")
    lr = pick(0.1, 0.01)
    o = keras.optimizers
    if kind == "sgd": return o.SGD(lr)
    if kind == "sgd_m": return o.SGD(lr, momentum=0.9, nesterov=R.random() < 0.5)
    if kind == "adam": return o.Adam(lr, amsgrad=R.random() < 0.3)
    if kind == "adamw": return o.AdamW(lr, weight_decay=pick(0.004, 0.1))
    if kind == "rmsprop": return o.RMSprop(lr, momentum=pick(0.0, 0.5), centered=R.random() < 0.5)
    if kind == "adagrad": return o.Adagrad(lr)
    if kind == "adadelta": return o.Adadelta(1.0)
    if kind == "adamax": return o.Adamax(lr)
    return o.Nadam(lr)

def reg():
    """Sometimes an L1/L2 kernel penalty (the training steps then include its gradient)."""
    return pick(None, None, keras.regularizers.L2(0.05), keras.regularizers.L1L2(l1=0.01, l2=0.01))

def graph_case():
    """Functional wiring: masks through wrappers and pooling, RNN states, shared and nested models."""
    kind = pick("bi_mask_pool", "seq_mask_td", "states", "initial_state", "shared", "nested_seq", "masked_states")
    t, f, u = R.randint(2, 6), R.randint(1, 4), R.randint(1, 4)
    if kind in ("bi_mask_pool", "seq_mask_td"):
        vocab = R.randint(3, 8)
        x = keras.Input((t,), dtype="int32")
        e = layers.Embedding(vocab, f, mask_zero=True)(x)
        if kind == "bi_mask_pool":
            y = layers.Bidirectional(pick(layers.LSTM, layers.GRU)(u, return_sequences=True),
                                     merge_mode=pick("concat", "sum", "ave"))(e)
            y = pick(layers.GlobalAveragePooling1D, layers.GlobalMaxPooling1D)()(y)
        else:
            y = pick(layers.LSTM, layers.GRU, layers.SimpleRNN)(u, return_sequences=True)(e)
            y = layers.TimeDistributed(layers.Dense(2))(y)
        return keras.Model(x, y), vocab
    if kind == "masked_states":  # a seq2seq encoder: the states of the unmasked steps, then a decoder from them
        vocab = R.randint(3, 8)
        x = keras.Input((t,), dtype="int32")
        e = layers.Embedding(vocab, f, mask_zero=True)(x)
        if R.random() < 0.5:
            _, h, c = layers.LSTM(u, return_state=True, go_backwards=R.random() < 0.3)(e)
            y = layers.LSTM(u, return_sequences=True)(e, initial_state=[h, c])
        else:  # bidirectional: forward and backward states
            outs = layers.Bidirectional(layers.GRU(u, return_state=True, return_sequences=R.random() < 0.5))(e)
            y = layers.Concatenate()([layers.Flatten()(outs[0])] + list(outs[1:]))
        return keras.Model(x, layers.Dense(2)(y)), vocab
    x = keras.Input((t, f))
    if kind == "states":
        outs = layers.LSTM(u, return_state=True, return_sequences=R.random() < 0.5)(x)
        y = layers.Concatenate()([layers.Flatten()(outs[0]), outs[1], outs[2]])
        return keras.Model(x, layers.Dense(2)(y)), None
    if kind == "initial_state":
        h = keras.Input((u,))
        cell = pick(layers.GRU, layers.SimpleRNN)
        y = cell(u)(x, initial_state=[h])
        return keras.Model([x, h], y), None
    if kind == "shared":
        x2 = keras.Input((t, f))
        d = layers.Dense(u, activation="tanh")
        y = layers.Add()([d(x), d(x2)])
        return keras.Model([x, x2], y), None
    inner = keras.Sequential([layers.Dense(u, activation="relu"), layers.Dense(2)])
    return keras.Model(x, inner(layers.LayerNormalization()(x))), None

def attention_case():
    """MultiHeadAttention (self and cross, masks, causal, keys, scores, other axes), Attention and
    AdditiveAttention."""
    kind = pick("mha", "mha_masked", "mha_cross", "mha_axes", "luong", "bahdanau")
    t, f = R.randint(2, 6), R.randint(1, 5)
    heads, key_dim = R.randint(1, 3), R.randint(1, 4)
    mha_options = dict(value_dim=pick(None, R.randint(1, 4)), use_bias=R.random() < 0.7,
                       output_shape=pick(None, R.randint(1, 4)), kernel_regularizer=reg())
    if R.random() < 0.3: mha_options["sliding_window"] = R.randint(1, 3)
    if kind in ("mha_masked", "luong", "bahdanau"):
        vocab = R.randint(3, 8)
        x = keras.Input((t,), dtype="int32")
        e = layers.Embedding(vocab, f, mask_zero=True)(x)
        if kind == "mha_masked":
            y = layers.MultiHeadAttention(heads, key_dim, **mha_options)(e, e, use_causal_mask=R.random() < 0.5)
        else:
            v = layers.Embedding(vocab, f, mask_zero=True)(x)
            inputs = [e, v] + ([layers.Dense(f, use_bias=False)(e)] if R.random() < 0.5 else [])  # a key bias moves no score
            causal = R.random() < 0.5
            if kind == "luong":
                layer = layers.Attention(use_scale=R.random() < 0.5, score_mode=pick("dot", "concat"))
            else:
                layer = layers.AdditiveAttention(use_scale=R.random() < 0.7)
            if R.random() < 0.3:  # the scores as a second output (their mask ended by a Flatten)
                y, scores = layer(inputs, use_causal_mask=causal, return_attention_scores=True)
                return keras.Model(x, [layers.Dense(2)(y), layers.Flatten()(scores)]), vocab
            y = layer(inputs, use_causal_mask=causal)
        return keras.Model(x, layers.Dense(2)(y)), vocab
    if kind == "mha_axes":
        x = keras.Input((R.randint(2, 4), R.randint(2, 4), f))
        axes = pick(None, (1,), (2,), (1, 2))
        y = layers.MultiHeadAttention(heads, key_dim, attention_axes=axes, **mha_options)(x, x)
        return keras.Model(x, y), None
    x = keras.Input((t, f))
    if kind == "mha_cross":
        # Keras gives the scores the shape (batch, heads, T, T): the memory is as long as the query.
        m = keras.Input((t, R.randint(1, 5)))
        k = keras.Input((t, R.randint(1, 5))) if R.random() < 0.5 else None
        layer = layers.MultiHeadAttention(heads, key_dim, **mha_options)
        if R.random() < 0.4:
            y, scores = layer(x, m, key=k, return_attention_scores=True)
            y = layers.Concatenate()([layers.Flatten()(y), layers.Flatten()(scores)])
        else:
            y = layer(x, m, key=k, use_causal_mask=R.random() < 0.5)
        return keras.Model([x, m] + ([k] if k is not None else []), y), None
    y = layers.MultiHeadAttention(heads, key_dim, **mha_options)(x, x, use_causal_mask=R.random() < 0.5)
    return keras.Model(x, y), None

def randomize(model):
    ws = []
    for w in model.weights:
        v = np.random.uniform(-1, 1, w.shape).astype("float32")
        if "variance" in w.path: v = np.abs(v) + 0.1
        ws.append(v)
    model.set_weights(ws)

manifest = []
for i in range(n):
    name = f"m{seed}_{i:04d}"
    try:
        r = R.random()
        only = os.environ.get("KERAS_DIFF_ONLY")
        if only: r = {"image": 0.1, "sequence": 0.5, "merge": 0.82, "embed": 0.9, "graph": 0.93, "attention": 0.97}[only]
        vocab = None
        if r < 0.45:
            shape, L = image_case()
            x = keras.Input(shape); y = x
            for l in (L if isinstance(L, list) else [L]): y = l(y)  # a nested model for "block"
            model = keras.Model(x, y)
        elif r < 0.8:
            shape, L = seq_case()
            x = keras.Input(shape); y = x
            for l in (L if isinstance(L, list) else [L]): y = l(y)
            model = keras.Model(x, y)
        elif r < 0.85:
            model = merge_case()
        elif r < 0.92:
            model, vocab = embed_case()
        elif r < 0.95:
            model, vocab = graph_case()
        else:
            model, vocab = attention_case()
        randomize(model)
        batch = R.randint(1, 3)
        xs = []
        for inp in model.inputs:
            shp = (batch,) + tuple(inp.shape[1:])
            if vocab:  # ids, zeros (masked with mask_zero) anywhere
                xs.append(np.random.randint(0, vocab, shp).astype("int32"))
            else:
                v = np.random.uniform(-1, 1, shp).astype("float32")
                if R.random() < 0.3 and len(shp) == 3:  # a masked last step (for Masking)
                    v[:, -1, :] = 0
                xs.append(v)
        preds = model.predict(xs if len(xs) > 1 else xs[0], verbose=0)
        if any(not np.all(np.isfinite(p)) for p in (preds if isinstance(preds, list) else [preds])):
            continue  # an overflowing activation (exponential): nothing to compare
        preds = preds if isinstance(preds, list) else [preds]
        random_in_training = any(isinstance(l, (layers.Dropout, layers.SpatialDropout1D, layers.SpatialDropout2D))
                                 for l in model.layers)
        if model.trainable_weights and not random_in_training:
            # MultiHeadAttention's key bias moves no score (softmax ignores a shift per query), so its
            # gradient is rounding noise, which Adam-like optimizers would turn into full steps.
            key_bias = any(isinstance(l, layers.MultiHeadAttention) and l.use_bias for l in model.layers)
            model.compile(optimizer=optimizer(plain=key_bias), loss=pick("mse", "mae", "huber", "log_cosh"))
        model.save(os.path.join(out, name + ".keras"))
        rec = {"inputs": [{"shape": list(x.shape), "dtype": str(x.dtype), "values": x.ravel().tolist()} for x in xs],
               "predictions": [{"shape": list(p.shape), "values": np.asarray(p, "float32").ravel().tolist()} for p in preds],
               "layers": [l.__class__.__name__ for l in model.layers]}
        if model.compiled:
            # Two steps on random targets (the second with the optimizer's state): every weight after
            # them, by layer (nested models' included).
            ys = [np.random.uniform(-1, 1, p.shape).astype("float32") for p in preds]
            for _ in range(2):
                model.train_on_batch(xs if len(xs) > 1 else xs[0], ys if len(ys) > 1 else ys[0])
            after = {}
            def collect(m):
                for l in m.layers:
                    if isinstance(l, keras.Model): collect(l)
                    elif l.weights: after[l.name] = [np.asarray(v.numpy(), "float32").ravel().tolist() for v in l.weights]
            collect(model)
            rec["targets"] = [{"shape": list(y.shape), "dtype": "float32", "values": y.ravel().tolist()} for y in ys]
            rec["weights_after_step"] = after
        with open(os.path.join(out, name + "_io.json"), "w") as f: json.dump(rec, f)
        manifest.append(name)
    except Exception as e:
        print(name, "keras refused:", type(e).__name__, str(e)[:120], file=sys.stderr)
with open(os.path.join(out, "manifest.txt"), "w") as f: f.write("\n".join(manifest) + "\n")
print(len(manifest), "models")
