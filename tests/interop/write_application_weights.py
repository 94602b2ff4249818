"""Writes weight files laid out as Keras' own ImageNet files for keras.applications (weights-only
HDF5 from Keras 2: layer_names of every layer, one group per layer with weight_names
"<layer>/<weight>:0", layer names numbered from 1 as Keras 2.0 named them), filled with the weights
of a seeded Keras 3 model, plus that model's predictions for one image.
The real files are 90-100 MB downloads; these have their exact layout and can be made offline.
Usage: write_application_weights.py KERAS_HOME"""
import collections, json, os, sys
os.environ.setdefault("KERAS_BACKEND", "jax")
import h5py
import numpy as np
import keras

home = sys.argv[1]
os.makedirs(os.path.join(home, "models"), exist_ok=True)
keras.utils.set_random_seed(3)
rng = np.random.default_rng(3)


def keras2_weight_name(layer_name, weight):
    # Keras 2 wrote variable names: "<layer>/<weight>:0".
    return f"{layer_name}/{weight.path.split('/')[-1]}:0"


def write_keras2_weights(model, path):
    counters = collections.Counter()
    names = []
    for layer in model.layers:  # Keras 2.0's automatic names: conv2d_1, batch_normalization_1, ...
        base = keras.src.utils.naming.to_snake_case(layer.__class__.__name__)
        counters[base] += 1
        names.append(f"{base}_{counters[base]}")
    with h5py.File(path, "w") as f:
        f.attrs["layer_names"] = [n.encode() for n in names]
        f.attrs["backend"] = b"tensorflow"
        f.attrs["keras_version"] = b"2.1.2"
        for layer, name in zip(model.layers, names):
            g = f.create_group(name)
            ws = layer.weights  # trainable then non-trainable, as Keras 2 saved them
            wnames = [keras2_weight_name(name, w) for w in ws]
            g.attrs["weight_names"] = [n.encode() for n in wnames]
            for w, n in zip(ws, wnames):
                g.create_dataset(n, data=np.asarray(w))


def randomize_statistics(model):
    # Fresh BatchNormalization statistics are 0 and 1; make them matter.
    for layer in model.layers:
        if isinstance(layer, keras.layers.BatchNormalization):
            layer.moving_mean.assign(rng.uniform(-0.2, 0.2, layer.moving_mean.shape).astype("float32"))
            layer.moving_variance.assign(rng.uniform(0.5, 1.5, layer.moving_variance.shape).astype("float32"))


cases = {
    # (keras file name, model, input)
    "inception_v3_notop_75": ("inception_v3_weights_tf_dim_ordering_tf_kernels_notop.h5",
                              lambda: keras.applications.InceptionV3(include_top=False, weights=None,
                                                                     input_shape=(75, 75, 3), pooling="avg"),
                              (1, 75, 75, 3)),
    "resnet50_top_224": ("resnet50_weights_tf_dim_ordering_tf_kernels.h5",
                         lambda: keras.applications.ResNet50(weights=None), (1, 224, 224, 3)),
    "vgg16_notop_64": ("vgg16_weights_tf_dim_ordering_tf_kernels_notop.h5",
                       lambda: keras.applications.VGG16(include_top=False, weights=None, input_shape=(64, 64, 3),
                                                        pooling="avg"), (2, 64, 64, 3)),
    "mobilenet_top_128_a050": ("mobilenet_5_0_128_tf.h5",
                               lambda: keras.applications.MobileNet(weights=None, input_shape=(128, 128, 3), alpha=0.5),
                               (1, 128, 128, 3)),
    "mobilenet_v2_notop_96_a035": ("mobilenet_v2_weights_tf_dim_ordering_tf_kernels_0.35_96_no_top.h5",
                                   lambda: keras.applications.MobileNetV2(include_top=False, weights=None,
                                                                          input_shape=(96, 96, 3), alpha=0.35,
                                                                          pooling="avg"), (2, 96, 96, 3)),
    "xception_notop_71": ("xception_weights_tf_dim_ordering_tf_kernels_notop.h5",
                          lambda: keras.applications.Xception(include_top=False, weights=None, input_shape=(71, 71, 3),
                                                              pooling="avg"), (1, 71, 71, 3)),
    "densenet121_notop_64": ("densenet121_weights_tf_dim_ordering_tf_kernels_notop.h5",
                             lambda: keras.applications.DenseNet121(include_top=False, weights=None,
                                                                    input_shape=(64, 64, 3), pooling="max"),
                             (1, 64, 64, 3)),
    "resnet50v2_notop_64": ("resnet50v2_weights_tf_dim_ordering_tf_kernels_notop.h5",
                            lambda: keras.applications.ResNet50V2(include_top=False, weights=None,
                                                                  input_shape=(64, 64, 3), pooling="avg"),
                            (1, 64, 64, 3)),
}
record = {}
for key, (file_name, make, shape) in cases.items():
    keras.utils.clear_session()
    model = make()
    randomize_statistics(model)
    write_keras2_weights(model, os.path.join(home, "models", file_name))
    x = rng.uniform(-1, 1, size=shape).astype("float32")
    y = np.asarray(model.predict(x, verbose=0))
    record[key] = {"input": x.ravel().tolist(), "input_shape": list(shape), "prediction": y.ravel().tolist()}
with open(os.path.join(home, "predictions.json"), "w") as f:
    json.dump(record, f)
print("wrote", home)
