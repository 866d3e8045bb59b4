"""The PyTorch reference side of scripts/bench-nets.sh and scripts/gpu-bench.sh: the official model
code of every network that Facecast ports, at the released configurations, with random weights,
on the CPU or (gpu-bench.sh) on CUDA.

It answers the same line protocol as `examples/bench_nets.rs --serve`, so the driver
(bench_nets.py) can alternate the two sides case by case:
  `run cpu CASE` or `run cuda CASE` -> {"backend","case","ms","finite"} (+ "build_ms" the first
  time; on CUDA also "peak_mb", torch's peak allocation during the call), `quit`.

The official code is not part of this repository. FACECAST_REF_DIR (argument --ref-dir) holds
checkouts of (the commits the parity fixtures name in their meta.json `source`):
  rosinality/stylegan2-pytorch @ bef283a1c24087da704d16c30abc8e36e63efa0e   model.py, op/
  yangxy/GPEN @ 2c736702983368847fb544d234a22ac7cff25802                    face_model/
  taotaonice/FaceShifter @ 376b09e4ecc97848c07c585f173d10932880f961          face_modules/model.py, network/
  wtjiang98/BeautyGAN_pytorch @ b19fb0ade9d951116464f20e4fbab3015d5fffdf     net.py
  openai/CLIP @ d05afc436d78f1c48dc0dbf8e5980a9d471f35f6                     clip/ (+ bpe_simple_vocab_16e6.txt.gz)
laid out as REF_DIR/<owner>/<repo>/. MobileNetV2 is torchvision's own (torchvision.models).
Other versions of these files serve as long as `--check-fixtures` passes on them; benches/RESULTS.md
says which versions each recorded run used.

One shim, for rosinality's `op` package only: its modules compile CUDA extensions at import
(`torch.utils.cpp_extension.load(...)`), which fails on a machine without a CUDA toolchain, even
though on CPU tensors the code never calls them (upfirdn2d dispatches to its own pure-PyTorch
`upfirdn2d_native`, fused_leaky_relu to F.leaky_relu). While `op` is imported, `load` is replaced
by a stub returning None; nothing else is changed. GPEN's own `op` skips the build when CUDA is
not available, but builds at import when it is, so the stub covers its import too. The other
repositories need nothing.

On CUDA the two `op` packages would run their CUDA extensions, which are then not compiled (a
JIT build with nvcc takes minutes of a short GPU lease and is not eager PyTorch). They run their
own pure-PyTorch paths instead, the ones the same code takes on the CPU: for rosinality,
`upfirdn2d` and `fused_leaky_relu` are pointed at `upfirdn2d_native` and the CPU branch's
leaky-ReLU expression (module globals only, see `native_ops`); GPEN chooses by its constructor's
`device` argument, which stays "cpu" (that argument selects the path, not where the tensors
are). So on CUDA the reference is the official model code in eager PyTorch without its two fused
CUDA kernels; reports say so ("cuda_ops").

Timing: batch 1, float32, eval mode, torch.inference_mode(), fixed inputs and noise; the time
of one call of the model's forward as its own scripts call it. On CUDA the clock is read after
torch.cuda.synchronize() on both sides of the call, and outputs are checked after it.
"""

import argparse
import contextlib
from collections import abc
import importlib
import json
import os
import sys
import time

import torch
from torch.nn import functional as F

PROMPT = "a photo of a smiling woman with short blond hair and freckles"


@contextlib.contextmanager
def repo_on_path(path):
    """Imports from one checkout, then forgets its top-level modules (two repositories call
    their packages `op` and `model`)."""
    before = set(sys.modules)
    sys.path.insert(0, path)
    try:
        yield
    finally:
        sys.path.remove(path)
        for name in set(sys.modules) - before:
            top = name.split(".")[0]
            if top in ("op", "model", "gpen_model", "network", "net", "simple_tokenizer"):
                del sys.modules[name]


@contextlib.contextmanager
def no_cuda_extension_build():
    """The documented shim: cpp_extension.load returns None instead of compiling."""
    import torch.utils.cpp_extension as ext

    real = ext.load
    ext.load = lambda *args, **kwargs: None
    try:
        yield
    finally:
        ext.load = real


def native_ops(model):
    """Points rosinality's model at its op package's pure-PyTorch paths (the ones taken on the
    CPU), for CUDA tensors: the module globals the model and FusedLeakyReLU call, nothing else."""
    fused_act = sys.modules["op.fused_act"]
    upfirdn = sys.modules["op.upfirdn2d"]

    def fused_leaky_relu(input, bias=None, negative_slope=0.2, scale=2 ** 0.5):
        # op/fused_act.py's CPU branch, verbatim in effect.
        if bias is not None:
            rest_dim = [1] * (input.ndim - bias.ndim - 1)
            return F.leaky_relu(input + bias.view(1, bias.shape[0], *rest_dim), negative_slope=0.2) * scale
        return F.leaky_relu(input, negative_slope=0.2) * scale

    def upfirdn2d(input, kernel, up=1, down=1, pad=(0, 0)):
        # op/upfirdn2d.py's argument handling, then its CPU branch.
        up = tuple(up) if isinstance(up, abc.Iterable) else (up, up)
        down = tuple(down) if isinstance(down, abc.Iterable) else (down, down)
        if len(pad) == 2:
            pad = (pad[0], pad[1], pad[0], pad[1])
        return upfirdn.upfirdn2d_native(input, kernel, *up, *down, *pad)

    fused_act.fused_leaky_relu = fused_leaky_relu
    model.fused_leaky_relu = fused_leaky_relu
    model.upfirdn2d = upfirdn2d


def finite(*tensors):
    return all(bool(torch.isfinite(t).all()) for t in tensors)


class Reference:
    def __init__(self, ref_dir):
        self.ref = ref_dir
        self.nets = {}
        # The device the builders put models and inputs on; set by run() per backend.
        self.dev = torch.device("cpu")
        # --native-ops: the CUDA substitutions on the CPU as well, to test them without a GPU.
        self.force_native = False

    def path(self, *parts):
        p = os.path.join(self.ref, *parts)
        if not os.path.exists(p):
            raise FileNotFoundError(f"{p} is missing: check out the repository named in this script's header")
        return p

    def stylegan2(self, size):
        with repo_on_path(self.path("rosinality", "stylegan2-pytorch")):
            with no_cuda_extension_build():
                importlib.import_module("op")
            model = importlib.import_module("model")
            if self.dev.type != "cpu" or self.force_native:
                native_ops(model)
            g = model.Generator(size, 512, 8, channel_multiplier=2).eval().to(self.dev)
        with torch.inference_mode():
            mean = g.mean_latent(4096)
        z = torch.randn(1, 512, device=self.dev)

        def run():
            img, _ = g([z], truncation=0.7, truncation_latent=mean, randomize_noise=False)
            return img

        return run

    def gpen(self, size):
        with repo_on_path(self.path("yangxy", "GPEN", "face_model")), no_cuda_extension_build():
            gpen_model = importlib.import_module("gpen_model")
            # face_model/face_gan.py: FullGenerator(size, 512, 8, channel_multiplier, narrow=narrow);
            # device="cpu" keeps GPEN's pure-PyTorch op paths on CUDA too (header).
            if size == 512:
                net = gpen_model.FullGenerator(512, 512, 8, 2, narrow=1, device="cpu")
            else:
                net = gpen_model.FullGenerator(256, 512, 8, 1, narrow=0.5, device="cpu")
        net = net.eval().to(self.dev)
        x = torch.rand(1, 3, size, size, device=self.dev) * 2 - 1
        return lambda: first_output(net(x))

    def arcface(self):
        with repo_on_path(self.path("taotaonice", "FaceShifter")):
            model = importlib.import_module("face_modules.model")
            net = model.Backbone(50, 0.6, "ir_se").eval().to(self.dev)
        x = torch.rand(1, 3, 112, 112, device=self.dev) * 2 - 1
        return lambda: net(x)[0]

    def aei(self):
        with repo_on_path(self.path("taotaonice", "FaceShifter")):
            aei = importlib.import_module("network.AEI_Net")
            net = aei.AEI_Net(c_id=512).eval().to(self.dev)
        xt = torch.rand(1, 3, 256, 256, device=self.dev) * 2 - 1
        z_id = torch.randn(1, 512, device=self.dev)
        return lambda: net(xt, z_id)[0]

    def beautygan(self):
        with repo_on_path(self.path("wtjiang98", "BeautyGAN_pytorch")):
            net = importlib.import_module("net").Generator_branch(64, 6).eval().to(self.dev)
        x = torch.rand(1, 3, 256, 256, device=self.dev) * 2 - 1
        y = torch.rand(1, 3, 256, 256, device=self.dev) * 2 - 1

        def run():
            a, b = net(x, y)
            return a, b

        return run

    def mobilenetv2(self):
        import torchvision

        net = torchvision.models.mobilenet_v2(num_classes=2).eval().to(self.dev)
        x = torch.rand(1, 3, 224, 224, device=self.dev) * 2 - 1
        return lambda: net(x)

    def clip(self, encode):
        clip_dir = self.path("openai", "CLIP", "clip")
        with repo_on_path(clip_dir):
            tok = importlib.import_module("simple_tokenizer")
            tokenizer = tok.SimpleTokenizer(os.path.join(clip_dir, "bpe_simple_vocab_16e6.txt.gz"))
            model = importlib.import_module("model") if encode else None
        sot, eot = tokenizer.encoder["<|startoftext|>"], tokenizer.encoder["<|endoftext|>"]

        def tokenize(text, context_length=77):
            # clip.tokenize (clip/clip.py) for one text, without importing clip.py's image stack.
            tokens = [sot] + tokenizer.encode(text) + [eot]
            result = torch.zeros(1, context_length, dtype=torch.long)
            result[0, : len(tokens)] = torch.tensor(tokens)
            return result.to(self.dev)

        if not encode:
            return lambda: tokenize(PROMPT).float()
        # ViT-B/32 as clip.model.build_model reads it from ViT-B-32.pt.
        net = model.CLIP(512, 224, 12, 768, 32, 77, 49408, 512, 8, 12).eval().to(self.dev)
        return lambda: net.encode_text(tokenize(PROMPT))

    def build(self, case):
        builders = {
            "stylegan2-1024": lambda: self.stylegan2(1024),
            "stylegan2-256": lambda: self.stylegan2(256),
            "gpen-512": lambda: self.gpen(512),
            "gpen-256": lambda: self.gpen(256),
            "arcface-112": self.arcface,
            "aei-256": self.aei,
            "beautygan-256": self.beautygan,
            "mobilenetv2-224": self.mobilenetv2,
            "clip-text": lambda: self.clip(True),
            "clip-tokenize": lambda: self.clip(False),
        }
        if case not in builders:
            raise KeyError(f"unknown case {case}")
        return builders[case]()

    def run(self, backend, case):
        if backend not in ("cpu", "cuda"):
            raise ValueError(f"unknown backend {backend} (cpu or cuda)")
        if backend == "cuda" and not torch.cuda.is_available():
            raise RuntimeError("CUDA is not available to this torch")
        cuda = backend == "cuda"
        reply = {"backend": backend, "case": case}
        key = (backend, case)
        if key not in self.nets:
            t = time.perf_counter()
            self.dev = torch.device(backend)
            self.nets[key] = self.build(case)
            if cuda:
                torch.cuda.synchronize()
            reply["build_ms"] = (time.perf_counter() - t) * 1e3
        fn = self.nets[key]
        if cuda:
            torch.cuda.reset_peak_memory_stats()
            torch.cuda.synchronize()
        with torch.inference_mode():
            t = time.perf_counter()
            out = fn()
            if cuda:
                # Kernels run asynchronously: the call is over when the device is idle.
                torch.cuda.synchronize()
            reply["ms"] = (time.perf_counter() - t) * 1e3
        if cuda:
            reply["peak_mb"] = torch.cuda.max_memory_allocated() / 2 ** 20
        outs = out if isinstance(out, tuple) else (out,)
        reply["finite"] = finite(*outs)
        return reply


def first_output(out):
    """GPEN's FullGenerator.forward returned the image alone until March 2022 and (image, latents)
    since; the commit a fixture names may be either, so both are accepted."""
    return out[0] if isinstance(out, (tuple, list)) else out


def check_fixtures(ref, fixtures):
    """Proves the checkouts are the code the parity fixtures came from: loads each fixture's
    weights into the reference model at the fixture's (constructor-only) config and compares the
    outputs. StyleGAN2, ArcFace and AEI-Net fixtures patch widths inside the code, so they are
    not rebuilt here; GPEN runs rosinality's blocks in its own copy."""
    from safetensors.torch import load_file

    def load(name):
        meta = json.load(open(os.path.join(fixtures, name, "meta.json")))
        state = torch.load(os.path.join(fixtures, name, "weights.pth"), map_location="cpu", weights_only=True)
        return meta, state, load_file(os.path.join(fixtures, name, "io.safetensors"))

    def report(name, got, want, tol):
        err = (got - want).abs()
        bound = tol["abs"] + tol["rel"] * want.abs()
        ok = bool((err <= bound).all())
        print(f"{name:<12} max |diff| {err.max().item():.2e}  {'ok' if ok else 'MISMATCH'}", flush=True)
        return ok

    ok = True
    with torch.inference_mode():
        meta, state, io = load("gpen")
        c = meta["config"]
        with repo_on_path(ref.path("yangxy", "GPEN", "face_model")), no_cuda_extension_build():
            net = importlib.import_module("gpen_model").FullGenerator(
                c["size"], c["style_dim"], c["n_mlp"], c["channel_multiplier"], narrow=c["narrow"], device="cpu")
        net.load_state_dict(state)
        ok &= report("gpen", first_output(net.eval()(io["input"])), io["output"], meta["tolerance"])

        meta, state, io = load("beautygan")
        c = meta["config"]
        with repo_on_path(ref.path("wtjiang98", "BeautyGAN_pytorch")):
            net = importlib.import_module("net").Generator_branch(c["conv_dim"], c["repeat_num"], c["input_nc"])
        net.load_state_dict(state)
        a, b = net.eval()(io["input.x_nonmakeup"], io["input.y_makeup_ref"])
        ok &= report("beautygan a", a, io["output.a_x_with_makeup"], meta["tolerance"])
        ok &= report("beautygan b", b, io["output.b_y_makeup_removed"], meta["tolerance"])

        meta, state, io = load("clip_text")
        c = meta["config"]
        with repo_on_path(ref.path("openai", "CLIP", "clip")):
            model = importlib.import_module("model")
        net = model.CLIP(c["embed_dim"], c["image_resolution"], c["vision_layers"], c["vision_width"],
                         c["vision_patch_size"], c["context_length"], c["vocab_size"], c["transformer_width"],
                         c["transformer_heads"], c["transformer_layers"])
        missing, _ = net.load_state_dict(state, strict=False)
        assert all(k.startswith("visual.") or k == "logit_scale" for k in missing), missing
        feats = net.eval().encode_text(io["input.tokens"].long())
        ok &= report("clip_text", feats, io["output.text_features"], meta["tolerance"])
    return ok


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--ref-dir", default=os.environ.get("FACECAST_REF_DIR", "/tmp/facecast-ref"))
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--check-fixtures", metavar="DIR", help="check the checkouts against the parity fixtures")
    ap.add_argument("--native-ops", action="store_true",
                    help="use the pure-PyTorch op paths that CUDA uses on the CPU too (a test of them)")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    ref = Reference(args.ref_dir)
    ref.force_native = args.native_ops
    if args.check_fixtures:
        sys.exit(0 if check_fixtures(ref, args.check_fixtures) else 1)
    greeting = {
        "ready": True,
        "tool": "official PyTorch code",
        "torch": torch.__version__,
        "threads": torch.get_num_threads(),
        "python": sys.version.split()[0],
    }
    if torch.cuda.is_available():
        greeting["cuda_device"] = torch.cuda.get_device_name(0)
        greeting["cuda_version"] = torch.version.cuda
        greeting["cuda_ops"] = "pure-PyTorch paths of op/ (upfirdn2d_native, leaky_relu); CUDA extensions not compiled"
    print(json.dumps(greeting), flush=True)
    for line in sys.stdin:
        words = line.split()
        if not words or words == ["quit"]:
            break
        if len(words) == 3 and words[0] == "run":
            try:
                reply = ref.run(words[1], words[2])
            except Exception as e:  # reported to the driver, which records it and goes on
                reply = {"backend": words[1], "case": words[2], "error": f"{type(e).__name__}: {e}"}
        else:
            reply = {"error": f"unknown command {line.strip()!r}"}
        print(json.dumps(reply), flush=True)


if __name__ == "__main__":
    main()
