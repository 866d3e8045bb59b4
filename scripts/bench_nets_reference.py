"""The PyTorch reference side of scripts/bench-nets.sh: the official model code of every network
that Facecast ports, at the released configurations, with random weights, on the CPU.

It answers the same line protocol as `examples/bench_nets.rs --serve`, so the driver
(bench_nets.py) can alternate the two sides case by case:
  `run cpu CASE` -> {"backend","case","ms","finite"} (+ "build_ms" the first time), `quit`.

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
by a stub returning None; nothing else is changed. GPEN's own `op` already skips the build when
CUDA is not available, and the other repositories need nothing.

Timing: batch 1, float32, eval mode, torch.inference_mode(), fixed inputs and noise; the time
of one call of the model's forward as its own scripts call it.
"""

import argparse
import contextlib
import importlib
import json
import os
import sys
import time

import torch

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


def finite(*tensors):
    return all(bool(torch.isfinite(t).all()) for t in tensors)


class Reference:
    def __init__(self, ref_dir):
        self.ref = ref_dir
        self.nets = {}

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
            g = model.Generator(size, 512, 8, channel_multiplier=2).eval()
        with torch.inference_mode():
            mean = g.mean_latent(4096)
        z = torch.randn(1, 512)

        def run():
            img, _ = g([z], truncation=0.7, truncation_latent=mean, randomize_noise=False)
            return img

        return run

    def gpen(self, size):
        with repo_on_path(self.path("yangxy", "GPEN", "face_model")):
            gpen_model = importlib.import_module("gpen_model")
            # face_model/face_gan.py: FullGenerator(size, 512, 8, channel_multiplier, narrow=narrow)
            if size == 512:
                net = gpen_model.FullGenerator(512, 512, 8, 2, narrow=1, device="cpu")
            else:
                net = gpen_model.FullGenerator(256, 512, 8, 1, narrow=0.5, device="cpu")
        net = net.eval()
        x = torch.rand(1, 3, size, size) * 2 - 1
        return lambda: first_output(net(x))

    def arcface(self):
        with repo_on_path(self.path("taotaonice", "FaceShifter")):
            model = importlib.import_module("face_modules.model")
            net = model.Backbone(50, 0.6, "ir_se").eval()
        x = torch.rand(1, 3, 112, 112) * 2 - 1
        return lambda: net(x)[0]

    def aei(self):
        with repo_on_path(self.path("taotaonice", "FaceShifter")):
            aei = importlib.import_module("network.AEI_Net")
            net = aei.AEI_Net(c_id=512).eval()
        xt = torch.rand(1, 3, 256, 256) * 2 - 1
        z_id = torch.randn(1, 512)
        return lambda: net(xt, z_id)[0]

    def beautygan(self):
        with repo_on_path(self.path("wtjiang98", "BeautyGAN_pytorch")):
            net = importlib.import_module("net").Generator_branch(64, 6).eval()
        x = torch.rand(1, 3, 256, 256) * 2 - 1
        y = torch.rand(1, 3, 256, 256) * 2 - 1

        def run():
            a, b = net(x, y)
            return a, b

        return run

    def mobilenetv2(self):
        import torchvision

        net = torchvision.models.mobilenet_v2(num_classes=2).eval()
        x = torch.rand(1, 3, 224, 224) * 2 - 1
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
            return result

        if not encode:
            return lambda: tokenize(PROMPT).float()
        # ViT-B/32 as clip.model.build_model reads it from ViT-B-32.pt.
        net = model.CLIP(512, 224, 12, 768, 32, 77, 49408, 512, 8, 12).eval()
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

    def run(self, case):
        reply = {"backend": "cpu", "case": case}
        if case not in self.nets:
            t = time.perf_counter()
            self.nets[case] = self.build(case)
            reply["build_ms"] = (time.perf_counter() - t) * 1e3
        fn = self.nets[case]
        with torch.inference_mode():
            t = time.perf_counter()
            out = fn()
            reply["ms"] = (time.perf_counter() - t) * 1e3
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
        with repo_on_path(ref.path("yangxy", "GPEN", "face_model")):
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
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    ref = Reference(args.ref_dir)
    if args.check_fixtures:
        sys.exit(0 if check_fixtures(ref, args.check_fixtures) else 1)
    print(json.dumps({
        "ready": True,
        "tool": "official PyTorch code",
        "torch": torch.__version__,
        "threads": torch.get_num_threads(),
        "python": sys.version.split()[0],
    }), flush=True)
    for line in sys.stdin:
        words = line.split()
        if not words or words == ["quit"]:
            break
        if len(words) == 3 and words[0] == "run" and words[1] == "cpu":
            try:
                reply = ref.run(words[2])
            except Exception as e:  # reported to the driver, which records it and goes on
                reply = {"backend": "cpu", "case": words[2], "error": f"{type(e).__name__}: {e}"}
        else:
            reply = {"error": f"unknown command {line.strip()!r}"}
        print(json.dumps(reply), flush=True)


if __name__ == "__main__":
    main()
