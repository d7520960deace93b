"""Asks a running tritonserver about each model and sends one request per model over HTTP and gRPC.

Run as a script in the *target* interpreter (whose nvidia-pytriton brings tritonclient), not
imported by tritondoctor: the standard library, numpy and tritonclient only, Python 3.8 syntax.

    python repo_client.py '{"http": 8000, "grpc": 8001, "models": ["a"], "timeout": 30}'

Prints one JSON object per model on stdout, then {"done": true}.
"""

import json
import sys
import traceback

BATCH_FREE = 0


def emit(obj):
    sys.stdout.write(json.dumps(obj) + "\n")
    sys.stdout.flush()


def request_spec(config):
    """[(name, datatype, shape)] for the inputs, or a reason why no request can be built."""
    batch = [1] if int(config.get("max_batch_size") or 0) > BATCH_FREE else []
    inputs = []
    for item in config.get("input") or []:
        if item.get("optional"):
            continue
        if item.get("is_shape_tensor"):
            return None, "input %s is a shape tensor" % item.get("name")
        dtype = str(item.get("data_type") or "TYPE_INVALID")
        dims = item.get("dims")
        if dtype == "TYPE_INVALID" or dims is None:
            return None, "input %s has no data type or dims in the config" % item.get("name")
        reshape = (item.get("reshape") or {}).get("shape")
        if reshape:
            return None, "input %s is reshaped; its request shape is ambiguous" % item.get("name")
        datatype = dtype[len("TYPE_"):]
        datatype = "BYTES" if datatype == "STRING" else datatype
        shape = batch + [1 if int(d) < 0 else int(d) for d in dims]
        inputs.append((item["name"], datatype, shape))
    if not inputs:
        return None, "the config declares no inputs"
    return inputs, ""


def make_array(datatype, shape):
    import numpy as np
    from tritonclient.utils import triton_to_np_dtype

    if datatype == "BYTES":
        return np.full(shape, b"1", dtype=np.object_)
    return np.ones(shape, dtype=triton_to_np_dtype(datatype))


def infer(module, url, name, spec, outputs, timeout):
    """One request with tritonclient.<module>; returns {"ok", "error", "outputs": {name: shape}}."""
    try:
        client = module.InferenceServerClient(url=url, **({"network_timeout": timeout} if module.__name__.endswith("http") else {}))
        inputs = []
        for input_name, datatype, shape in spec:
            tensor = module.InferInput(input_name, shape, datatype)
            tensor.set_data_from_numpy(make_array(datatype, shape))
            inputs.append(tensor)
        wanted = [module.InferRequestedOutput(o) for o in outputs]
        kwargs = {"client_timeout": timeout} if not module.__name__.endswith("http") else {}
        result = client.infer(name, inputs, outputs=wanted or None, **kwargs)
        got = {o: list(result.as_numpy(o).shape) for o in outputs if result.as_numpy(o) is not None}
        missing = [o for o in outputs if o not in got]
        client.close()
        if missing:
            return {"ok": False, "error": "no output %s in the response" % ", ".join(missing), "outputs": got}
        return {"ok": True, "error": "", "outputs": got}
    except Exception as exc:  # noqa: BLE001 - every failure is the answer
        return {"ok": False, "error": "%s: %s" % (type(exc).__name__, exc), "outputs": {}}


def check_model(http, grpc, args, name):
    out = {"model": name, "ready": False, "config": None, "skipped": "", "http": None, "grpc": None}
    try:
        client = http.InferenceServerClient(url="127.0.0.1:%d" % args["http"], network_timeout=args["timeout"])
        out["ready"] = bool(client.is_model_ready(name))
        if not out["ready"]:
            return out
        config = client.get_model_config(name)
        client.close()
    except Exception as exc:  # noqa: BLE001
        out["skipped"] = "%s: %s" % (type(exc).__name__, exc)
        return out
    spec, why = request_spec(config)
    out["config"] = {"inputs": spec, "outputs": [o["name"] for o in config.get("output") or []]}
    if spec is None:
        out["skipped"] = why
        return out
    outputs = out["config"]["outputs"]
    out["http"] = infer(http, "127.0.0.1:%d" % args["http"], name, spec, outputs, args["timeout"])
    if grpc is None:
        out["grpc"] = {"ok": False, "error": "tritonclient.grpc cannot be imported", "outputs": {}}
    else:
        out["grpc"] = infer(grpc, "127.0.0.1:%d" % args["grpc"], name, spec, outputs, args["timeout"])
    return out


def main():
    args = json.loads(sys.argv[1])
    try:
        import tritonclient.http as http
    except Exception as exc:  # noqa: BLE001
        emit({"fatal": "tritonclient.http cannot be imported: %s: %s" % (type(exc).__name__, exc)})
        return 0
    try:
        import tritonclient.grpc as grpc
    except Exception:  # noqa: BLE001
        grpc = None
    for name in args["models"]:
        try:
            emit(check_model(http, grpc, args, name))
        except Exception:  # noqa: BLE001
            emit({"model": name, "ready": False, "skipped": traceback.format_exc(limit=3)})
    emit({"done": True})
    return 0


if __name__ == "__main__":
    sys.exit(main())
