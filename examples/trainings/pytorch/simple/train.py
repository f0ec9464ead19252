#!/usr/bin/env python3
"""train.py: the example trainer of the public image ava-examples:pytorch: the same small CNN as
ava-train-c (examples/trainings/c/simple), written with PyTorch, trained on the run's RecordIO
sets (read with ava_sdk.load_set) and reporting its curves through ava_sdk. Options and
defaults: --help and docs/examples.md. Standard library and torch only (Debian's python3-torch).

    conv 5x5 pad 2 (conv1) - maxpool 2 - ReLU - conv 5x5 pad 2 (conv2) - maxpool 2 - ReLU
    [- fully connected (hidden) - ReLU] - fully connected (classes) - softmax cross-entropy

SGD with momentum and weight decay on weights (not biases), the learning rate set per batch
(cosine, step or constant, optional linear warm-up), a reshuffle every epoch from a seeded
generator, a checkpoint after every epoch (written atomically) and resume from
AVA_RESUME_FROM: the same behaviour and the same metrics as the C trainer.
"""

import argparse
import json
import math
import os
import sys
import time


def _import_sdk():
    """Imports ava_sdk: from PYTHONPATH (ava sets it for a run), else the install's
    share/ava/python or the source tree's src/sdk, found from this file's place."""
    try:
        import ava_sdk
        return ava_sdk
    except ImportError:
        pass
    here = os.path.dirname(os.path.realpath(__file__))
    for rel in ("../../../../python", "../../../../src/sdk", "../../../../../src/sdk"):
        cand = os.path.normpath(os.path.join(here, rel))
        if os.path.isfile(os.path.join(cand, "ava_sdk.py")):
            sys.path.append(cand)
            import ava_sdk
            return ava_sdk
    sys.exit("train.py: the Python SDK ava_sdk is not on PYTHONPATH (ava puts it there for a run)")


ava_sdk = _import_sdk()

try:
    import torch
    import torch.nn.functional as F
except ImportError as _e:
    sys.exit("train.py: PyTorch is not installed (%s): apt-get install python3-torch" % _e)

CKPT_FORMAT = "ava-pytorch-cnn/1"
SCHEDULES = ("cosine", "step", "constant")


def parse_args(argv):
    """The command line (the arguments after `--` in `ava train create`), with the run's
    environment as defaults."""
    env = os.environ.get
    p = argparse.ArgumentParser(
        prog="train.py", description="Trains a small CNN on a RecordIO set with PyTorch and "
        "reports to ava (the PyTorch twin of ava-train-c).")
    a = p.add_argument
    a("--epochs", type=int, default=5, help="epochs to train (5)")
    a("--batch", type=int, default=64, help="mini-batch size (64)")
    a("--lr", type=float, default=0.05, help="base learning rate (0.05)")
    a("--momentum", type=float, default=0.9, help="SGD momentum (0.9)")
    a("--wd", type=float, default=0.0005, help="weight decay on weights (0.0005)")
    a("--schedule", choices=SCHEDULES, default="cosine", help="learning-rate schedule (cosine)")
    a("--lr-steps", default="", help="step schedule: epochs after which the rate drops "
      "(epochs/2,3*epochs/4)")
    a("--lr-factor", type=float, default=0.1, help="step schedule: factor of each drop (0.1)")
    a("--warmup", type=int, default=0, help="batches of linear warm-up (0)")
    a("--seed", type=int, default=1, help="seed of the initialisation and the shuffles (1)")
    a("--conv1", type=int, default=16, help="filters of the first convolution (16)")
    a("--conv2", type=int, default=32, help="filters of the second convolution (32)")
    a("--hidden", type=int, default=128, help="hidden fully connected units; 0 = none (128)")
    a("--threads", type=int, default=0, help="torch threads (the training's CPUs, else all)")
    a("--channels-last", action="store_true", help="keep images and activations in PyTorch's "
      "channels_last (NHWC) memory format, often faster with oneDNN on CPUs")
    a("--report-every", type=int, default=50, help="batches between train metrics (50)")
    a("--keep", type=int, default=2, help="checkpoints kept; 0 = all (2)")
    a("--train-limit", type=int, default=0, help="use only the first N train samples")
    a("--val-limit", type=int, default=0, help="use only the first N validation samples")
    a("--train", default=env("AVA_TRAIN_DIR"), help="train set folder ($AVA_TRAIN_DIR)")
    a("--val", default=env("AVA_VAL_DIR"), help="validation set folder ($AVA_VAL_DIR)")
    a("--no-val", action="store_true", help="train without validation")
    a("--output", default=env("AVA_OUTPUT_DIR") or ".", help="output folder ($AVA_OUTPUT_DIR)")
    a("--resume", default=env("AVA_RESUME_FROM"), help="checkpoint to continue from "
      "($AVA_RESUME_FROM)")
    a("--no-resume", action="store_true", help="start over even when AVA_RESUME_FROM is set")
    o = p.parse_args(argv)
    for name in ("epochs", "batch", "report_every"):
        if getattr(o, name) < 1:
            p.error("--%s must be 1 or more" % name.replace("_", "-"))
    for name in ("warmup", "threads", "keep", "train_limit", "val_limit", "seed"):
        if getattr(o, name) < 0:
            p.error("--%s must be 0 or more" % name.replace("_", "-"))
    if o.conv1 < 1 or o.conv2 < 1 or o.hidden < 0:
        p.error("--conv1 and --conv2 must be 1 or more, --hidden 0 or more")
    if not (o.lr > 0 and math.isfinite(o.lr)) or o.momentum < 0 or o.wd < 0:
        p.error("--lr must be positive, --momentum and --wd 0 or more")
    try:
        o.lr_steps = ([int(s) for s in o.lr_steps.split(",")] if o.lr_steps else
                      [max(1, o.epochs // 2), max(1, 3 * o.epochs // 4)])
    except ValueError:
        p.error("--lr-steps must be epochs separated by commas, not %r" % o.lr_steps)
    if o.no_resume:
        o.resume = None
    return o


def config_json(name):
    """A JSON file of $AVA_CONFIG_DIR (trainingspec, trainsetinfo), or {} when absent."""
    d = os.environ.get("AVA_CONFIG_DIR")
    try:
        with open(os.path.join(d, name)) as f:
            v = json.load(f)
        return v if isinstance(v, dict) else {}
    except (TypeError, OSError, ValueError):
        return {}


def pick_threads(o):
    """--threads, else the training's CPUs ("resources": {"cpus": N}), else every CPU."""
    if o.threads:
        return o.threads
    cpus = config_json("trainingspec").get("resources", {}).get("cpus")
    if isinstance(cpus, int) and 0 < cpus <= 1024:
        return cpus
    return os.cpu_count() or 1


class Net(torch.nn.Module):
    """The CNN of ava-train-c: parameters w1 b1 w2 b2 w3 b3 [w4 b4] in the same shapes."""

    def __init__(self, C, H, W, classes, conv1, conv2, hidden):
        super().__init__()
        self.conv1 = torch.nn.Conv2d(C, conv1, 5, padding=2)
        self.conv2 = torch.nn.Conv2d(conv1, conv2, 5, padding=2)
        flat = conv2 * (H // 2 // 2) * (W // 2 // 2)
        self.fc1 = torch.nn.Linear(flat, hidden or classes)
        self.fc2 = torch.nn.Linear(hidden, classes) if hidden else None

    def forward(self, x):
        x = F.relu(F.max_pool2d(self.conv1(x), 2))
        x = F.relu(F.max_pool2d(self.conv2(x), 2))
        x = self.fc1(torch.flatten(x, 1))
        if self.fc2 is not None:
            x = self.fc2(F.relu(x))
        return x

    def init_weights(self, gen):
        """He initialisation (normal, std sqrt(2 / fan in); the output layer sqrt(1 / fan
        in)), biases 0, drawn from gen."""
        layers = [self.conv1, self.conv2, self.fc1] + ([self.fc2] if self.fc2 else [])
        with torch.no_grad():
            for i, m in enumerate(layers):
                fan_in = m.weight[0].numel()
                gain = 1.0 if i == len(layers) - 1 else 2.0
                m.weight.normal_(0.0, math.sqrt(gain / fan_in), generator=gen)
                m.bias.zero_()


def lr_at(o, step, steps_per_epoch):
    """The learning rate of batch `step` (0-based, global), as ava-train-c computes it."""
    lr, total = o.lr, o.epochs * steps_per_epoch
    if o.schedule == "cosine" and total > 0:
        lr *= 0.5 * (1.0 + math.cos(math.pi * min(step / total, 1.0)))
    elif o.schedule == "step":
        done = step // steps_per_epoch
        lr *= o.lr_factor ** sum(1 for e in o.lr_steps if done >= e)
    if o.warmup and step < o.warmup:
        lr *= (step + 1) / o.warmup
    return lr


class Data:
    """A set in memory: uint8 images (N x C x H x W) and int64 labels, normalised per batch
    with the per-channel mean and standard deviation (x / 255 - mean) / std."""

    def __init__(self, path, limit, what):
        t0 = time.monotonic()
        s = ava_sdk.load_set(path, limit)
        if s.n == 0:
            raise ValueError("the %s set %s holds no images" % (what, path))
        self.n, self.shape, self.max_label = s.n, (s.channels, s.height, s.width), s.max_label
        self.pix = torch.frombuffer(bytearray(s.pixels), dtype=torch.uint8).view(s.n, *self.shape)
        self.labels = torch.tensor(s.labels, dtype=torch.int64)
        print("%s set %s: %d images of %dx%dx%d (channels x height x width), %d classes seen, "
              "loaded in %.1f s" % ((what, path, s.n) + self.shape + (s.max_label + 1,
                                                                       time.monotonic() - t0)))

    def norm(self):
        """Each channel's mean and standard deviation over the set (pixels / 255)."""
        x = self.pix.transpose(0, 1).reshape(self.shape[0], -1).double() / 255.0
        mean, std = x.mean(1), x.std(1, unbiased=False)
        return mean.tolist(), [s if s > 1e-4 else 1.0 for s in std.tolist()]

    def batch(self, idx, norm, fmt=torch.contiguous_format):
        """The normalised float images (in memory format fmt) and the labels of the samples
        idx; norm is norm_tensors(mean, std)."""
        scale, shift = norm
        x = self.pix[idx].float().mul_(scale).sub_(shift)
        return x.contiguous(memory_format=fmt), self.labels[idx]


def norm_tensors(mean, std):
    """The scale and shift tensors (1 x C x 1 x 1) of x / 255 / std - mean / std."""
    C = len(mean)
    std_t = torch.tensor(std, dtype=torch.float32)
    return ((1.0 / (255.0 * std_t)).view(1, C, 1, 1),
            (torch.tensor(mean, dtype=torch.float32) / std_t).view(1, C, 1, 1))


def evaluate(net, data, norm, fmt, batch=256):
    """Mean loss and accuracy of net over a whole set (images in memory format fmt)."""
    net.eval()
    loss_sum, correct = 0.0, 0
    with torch.no_grad():
        for start in range(0, data.n, batch):
            x, y = data.batch(torch.arange(start, min(start + batch, data.n)), norm, fmt)
            out = net(x)
            loss_sum += F.cross_entropy(out, y, reduction="sum").item()
            correct += (out.argmax(1) == y).sum().item()
    net.train()
    return loss_sum / data.n, correct / data.n


def save_atomic(obj, path):
    """torch.save to a hidden temporary (never named checkpoint-*), fsync, rename into place,
    fsync the folder: a run killed at any moment leaves the previous file intact."""
    d, base = os.path.split(path)
    tmp = os.path.join(d, ".%s.tmp.%d" % (base, os.getpid()))
    with open(tmp, "wb") as f:
        torch.save(obj, f)
        f.flush()
        os.fsync(f.fileno())
    os.rename(tmp, path)
    fd = os.open(d or ".", os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def prune(out_dir, epoch, keep):
    """Removes checkpoints older than the last `keep` (0: none) and a killed run's temporaries."""
    for name in os.listdir(out_dir):
        path = os.path.join(out_dir, name)
        num = name[len("checkpoint-"):]
        old = name.startswith("checkpoint-") and num.isdigit() and keep and int(num) <= epoch - keep
        stale = name.startswith(".checkpoint-") and ".tmp." in name
        if old or stale:
            try:
                os.unlink(path)
            except OSError:
                continue
            if old:
                print("removed %s (keeping the last %d checkpoints)" % (path, keep))


class Trainer:
    """One training: the network, the optimiser, the state a checkpoint keeps, the loop."""

    def __init__(self, o, train, val, classes):
        self.o, self.train_set, self.val_set = o, train, val
        C, H, W = train.shape
        self.shape = dict(C=C, H=H, W=W, classes=classes, conv1=o.conv1, conv2=o.conv2,
                          hidden=o.hidden)
        self.net = Net(C, H, W, classes, o.conv1, o.conv2, o.hidden)
        self.fmt = torch.channels_last if o.channels_last else torch.contiguous_format
        self.net.to(memory_format=self.fmt)
        weights = [p for n, p in self.net.named_parameters() if n.endswith("weight")]
        biases = [p for n, p in self.net.named_parameters() if n.endswith("bias")]
        self.opt = torch.optim.SGD([{"params": weights, "weight_decay": o.wd},
                                    {"params": biases, "weight_decay": 0.0}],
                                   lr=o.lr, momentum=o.momentum)
        self.gen = torch.Generator().manual_seed(o.seed)
        self.epoch, self.step = 0, 0
        self.bpe = (train.n + o.batch - 1) // o.batch
        self.train_seconds, self.train_images, self.val_acc = 0.0, 0, None

    def fresh(self):
        """A fresh start: He initialisation and the train set's normalisation."""
        self.net.init_weights(self.gen)
        self.mean, self.std = self.train_set.norm()

    def resume(self, path):
        """Continues from a checkpoint of this network."""
        try:
            k = torch.load(path)
        except Exception as e:
            raise ValueError("%s: not a checkpoint of train.py (%s)" % (path, e)) from None
        if not isinstance(k, dict) or k.get("format") != CKPT_FORMAT:
            raise ValueError("%s: not a checkpoint of train.py" % path)
        if k["shape"] != self.shape:
            raise ValueError("%s holds another network (%s), not this one (%s): remove it or "
                             "start with --no-resume" % (path, k["shape"], self.shape))
        self.net.load_state_dict(k["model"])
        self.opt.load_state_dict(k["optimizer"])
        self.gen.set_state(k["rng"])
        self.epoch, self.step, self.mean, self.std = k["epoch"], k["step"], k["mean"], k["std"]
        print("resumed from %s (epoch %d, step %d)" % (path, self.epoch, self.step))

    def state(self):
        """What a checkpoint keeps."""
        return {"format": CKPT_FORMAT, "shape": self.shape, "epoch": self.epoch,
                "step": self.step, "model": self.net.state_dict(),
                "optimizer": self.opt.state_dict(), "rng": self.gen.get_state(),
                "mean": self.mean, "std": self.std, "args": vars(self.o)}

    def train_epoch(self):
        """Trains the epoch after self.epoch: a reshuffle, then every batch, with train metrics
        every --report-every batches and at the end."""
        o, data, epoch = self.o, self.train_set, self.epoch + 1
        perm = torch.randperm(data.n, generator=self.gen)
        norm = norm_tensors(self.mean, self.std)
        loss_sum, correct, seen = 0.0, 0, 0
        t0 = t_last = time.monotonic()
        for b in range(self.bpe):
            x, y = data.batch(perm[b * o.batch:(b + 1) * o.batch], norm, self.fmt)
            lr = lr_at(o, self.step, self.bpe)
            for g in self.opt.param_groups:
                g["lr"] = lr
            out = self.net(x)
            loss = F.cross_entropy(out, y)
            self.opt.zero_grad(set_to_none=True)
            loss.backward()
            self.opt.step()
            self.step += 1
            lv = loss.item()
            if not math.isfinite(lv):
                raise ValueError("the loss diverged (%g) at epoch %d batch %d: try a lower --lr "
                                 "or a --warmup" % (lv, epoch, b + 1))
            loss_sum += lv * len(y)
            correct += (out.argmax(1) == y).sum().item()
            seen += len(y)
            if self.step % o.report_every == 0 or b == self.bpe - 1:
                t = time.monotonic()
                ava_sdk.report("loss", self.step, loss_sum / seen, phase="train", epoch=epoch)
                ava_sdk.report("accuracy", self.step, correct / seen, phase="train", epoch=epoch)
                ava_sdk.report("learning_rate", self.step, lr, phase="train", epoch=epoch)
                print("epoch %d/%d batch %d/%d loss %.4f acc %.4f lr %.6g (%.0f img/s)"
                      % (epoch, o.epochs, b + 1, self.bpe, loss_sum / seen, correct / seen, lr,
                         seen / (t - t_last) if t > t_last else 0.0))
                loss_sum, correct, seen, t_last = 0.0, 0, 0, time.monotonic()
        self.train_seconds += time.monotonic() - t0
        self.train_images += data.n
        self.epoch = epoch

    def validate(self):
        """Validation after an epoch: reported with phase=val and the epoch, and printed."""
        if self.val_set is None:
            return
        t0 = time.monotonic()
        loss, acc = evaluate(self.net, self.val_set, norm_tensors(self.mean, self.std), self.fmt)
        ava_sdk.report("loss", self.step, loss, phase="val", epoch=self.epoch)
        ava_sdk.report("accuracy", self.step, acc, phase="val", epoch=self.epoch)
        print("epoch %d val loss %.4f acc %.4f (%d images, %.1f s)"
              % (self.epoch, loss, acc, self.val_set.n, time.monotonic() - t0))
        self.val_acc = acc

    def run(self):
        """Every epoch left, each followed by validation and a checkpoint; then model.bin."""
        o = self.o
        if self.epoch >= o.epochs:
            print("the checkpoint is already at epoch %d of %d: nothing left to train"
                  % (self.epoch, o.epochs))
            self.validate()
        while self.epoch < o.epochs:
            self.train_epoch()
            self.validate()
            path = os.path.join(o.output, "checkpoint-%d" % self.epoch)
            save_atomic(self.state(), path)
            print("saved %s (epoch %d, step %d)" % (path, self.epoch, self.step))
            ava_sdk.flush()
            prune(o.output, self.epoch, o.keep)
        model = os.path.join(o.output, "model.bin")
        save_atomic(self.state(), model)
        line = "done: epoch %d, step %d" % (self.epoch, self.step)
        if self.val_acc is not None:
            line += ", val acc %.4f" % self.val_acc
        if self.train_seconds > 0:
            line += ", %.0f img/s over %.1f s of training" % (
                self.train_images / self.train_seconds, self.train_seconds)
        print(line + "; model in %s" % model)


def pick_classes(train, val):
    """trainsetinfo's "classes" when it lists them, else the largest label seen + 1."""
    seen = max(train.max_label, val.max_label if val else -1)
    listed = config_json("trainsetinfo").get("classes")
    classes = len(listed) if isinstance(listed, list) and listed else seen + 1
    if seen >= classes:
        raise ValueError("label %d is out of range: trainsetinfo lists %d classes"
                         % (seen, classes))
    return max(classes, 2)


def main(argv):
    """Parses the options, loads the sets and trains; exits 2 on bad options, 1 on failure."""
    o = parse_args(argv)
    threads = pick_threads(o)
    torch.set_num_threads(threads)
    print("train.py: %d thread%s (PyTorch %s)" % (threads, "" if threads == 1 else "s",
                                                 torch.__version__))
    if not o.train:
        sys.exit("train.py: no train set: AVA_TRAIN_DIR is not set (give the training --train "
                 "SET, or run with --train DIR)")
    try:
        train = Data(o.train, o.train_limit, "train")
        val = None
        if o.val and not o.no_val:
            val = Data(o.val, o.val_limit, "validation")
            if val.shape != train.shape:
                raise ValueError("the validation images are %dx%dx%d, the train images %dx%dx%d"
                                 % (val.shape + train.shape))
        else:
            print("no validation set: training without validation")
        os.makedirs(o.output, exist_ok=True)
        t = Trainer(o, train, val, pick_classes(train, val))
        if o.resume:
            t.resume(o.resume)
        else:
            torch.manual_seed(o.seed)
            t.fresh()
        n = sum(p.numel() for p in t.net.parameters())
        print("network %(C)dx%(H)dx%(W)d -> conv %(conv1)d -> conv %(conv2)d" % t.shape +
              (" -> fc %d" % o.hidden if o.hidden else "") +
              " -> %d classes, %d parameters; batch %d, lr %g (%s), momentum %g, wd %g, "
              "%d epochs, seed %d" % (t.shape["classes"], n, o.batch, o.lr, o.schedule,
                                      o.momentum, o.wd, o.epochs, o.seed))
        t.run()
    except (OSError, ValueError, ava_sdk.RecordIOError) as e:
        sys.exit("train.py: %s" % e)


if __name__ == "__main__":
    main(sys.argv[1:])
