"""Loads the files kerascpp wrote (converted from tests/fixtures/keras-saved by kerascpp-model) into
Python Keras 3 and compares predictions and optimizer state with what Keras itself recorded.
Usage: check_keras_loads_kerascpp.py FIXTURE_DIR OUT_DIR NAME..."""
import json, os, sys
os.environ.setdefault("KERAS_BACKEND", "jax")
import numpy as np
import keras

fixtures, out, names = sys.argv[1], sys.argv[2], sys.argv[3:]
failures = 0


def array(a):
    return np.asarray(a["values"], dtype="float32").reshape(a["shape"])


def compare(what, model, io):
    global failures
    xs = [array(a) for a in io["inputs"]]
    preds = model.predict(xs if len(xs) > 1 else xs[0], verbose=0)
    preds = preds if isinstance(preds, list) else [preds]
    for i, (p, e) in enumerate(zip(preds, io["predictions"])):
        if not np.allclose(p, array(e), atol=2e-5, rtol=2e-4):
            print(f"FAIL {what}: output {i} differs by {np.max(np.abs(p - array(e)))}")
            failures += 1
            return
    print(f"ok   {what}")


def compare_compiled(what, model, io):
    """The compile_config's choices and evaluate() as Keras recorded them for its own file."""
    global failures
    config = model.get_compile_config()
    for key in ("metrics",):
        if config.get(key) != io["compile_config"][key]:
            print(f"FAIL {what}: compile_config[{key!r}] is {config.get(key)}, expected {io['compile_config'][key]}")
            failures += 1
            return
    xs = [array(a) for a in io["inputs"]]
    ys = [array(a) for a in io["targets"]]
    results = model.evaluate(xs if len(xs) > 1 else xs[0], ys if len(ys) > 1 else ys[0],
                             batch_size=io["evaluate_batch_size"], verbose=0, return_dict=True)
    for k, v in io["evaluate"].items():
        if k not in results or not np.isclose(float(results[k]), v, rtol=1e-4, atol=1e-5):
            print(f"FAIL {what}: evaluate {k} = {results.get(k)}, expected {v}")
            failures += 1
            return
    print(f"ok   {what}: compile_config and evaluate")


for name in names:
    io = json.load(open(os.path.join(fixtures, name + "_io.json")))
    m = keras.saving.load_model(os.path.join(out, name + ".keras"))
    compare(f"{name}.keras written by kerascpp", m, io)
    if int(m.optimizer.iterations.numpy()) != io["optimizer_iterations"]:
        print(f"FAIL {name}.keras: optimizer iterations {int(m.optimizer.iterations.numpy())}, "
              f"expected {io['optimizer_iterations']}")
        failures += 1
    if "compile_config" in io:
        compare_compiled(f"{name}.keras written by kerascpp", m, io)
    compare(f"{name}.h5 written by kerascpp", keras.saving.load_model(os.path.join(out, name + ".h5")), io)
    rebuilt = keras.models.model_from_json(open(os.path.join(fixtures, name + ".json")).read())
    rebuilt.load_weights(os.path.join(out, name + ".weights.h5"))
    compare(f"{name}.weights.h5 written by kerascpp", rebuilt, io)
compat = os.environ.get("KERASCPP_COMPAT_FIXTURES")
if compat:  # tests/fixtures/keras-compat, converted by kerascpp: the predictions Keras recorded
    for path in sorted(os.listdir(compat)):
        if path.endswith(".keras"):
            name = path[:-len(".keras")]
            io = json.load(open(os.path.join(compat, name + "_io.json")))
            m = keras.saving.load_model(os.path.join(os.environ["KERASCPP_COMPAT_OUT"], path))
            compare(f"keras-compat {name}.keras written by kerascpp", m, io)
mixed_path = os.path.join(out, "mixed_float16.keras")
if os.path.exists(mixed_path):
    io = json.load(open(os.path.join(fixtures, "mixed_float16_io.json")))
    m = keras.saving.load_model(mixed_path)
    policies = {l.name: l.dtype_policy.name for l in m.layers}
    opt = m.optimizer
    state = {"dynamic_scale": float(opt.dynamic_scale.numpy()), "step_counter": int(opt.step_counter.numpy()),
             "iterations": int(opt.iterations.numpy())}
    preds = m.predict(array(io["inputs"][0]), verbose=0)
    if policies != io["policies"] or state != io["loss_scale"]:
        print(f"FAIL mixed_float16.keras written by kerascpp: policies {policies}, loss scale {state}")
        failures += 1
    elif not np.allclose(preds, array(io["predictions"][0]), atol=2e-3):
        print(f"FAIL mixed_float16.keras written by kerascpp: predictions differ by "
              f"{np.max(np.abs(preds - array(io['predictions'][0])))}")
        failures += 1
    else:
        print("ok   mixed_float16.keras written by kerascpp: policies, loss scale and predictions")
sys.exit(1 if failures else 0)
