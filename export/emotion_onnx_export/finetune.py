"""Fine-tuning a sequence classifier on any label taxonomy (seeded, warm-up + linear decay,
early stopping on validation macro-F1), with metrics, plots and an optional chained export."""

from __future__ import annotations

import copy
import json
import math
import re
import shutil
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from .bert_to_distilbert import MINILM_BASE, bert_to_distilbert, minilm_dir, wordpiece_tokenizer_for
from .data import LabelledTexts, read_labelled
from .errors import ExportInputError
from .metrics import summary


@dataclass
class FinetuneConfig:
    train: Path | list[Path]  # one file, or several concatenated (labels matched by name)
    validation: Path
    out: Path
    test: Path | None = None
    base: str = MINILM_BASE
    labels_file: Path | None = None
    text_field: str = "text"
    label_field: str = "label"
    epochs: int = 3
    lr: float = 8e-5
    batch_size: int = 32
    weight_decay: float = 0.01
    warmup_ratio: float = 0.1
    patience: int = 2
    max_length: int = 128
    seed: int = 42
    class_weights: str = "none"
    average_last: int = 1
    label_smoothing: float = 0.0
    focal_gamma: float = 0.0
    mixup: float = 0.0
    augment_lead_ins: float = 0.0  # per epoch, the probability of stripping a text's feel-word lead-in
    linear_probe_epochs: int = 0  # LP-FT: train only the classification head for this many epochs first
    threads: int | None = None
    force: bool = False


CLASS_WEIGHTINGS = ("none", "sqrt", "balanced")


def class_weights(labels: np.ndarray, n_classes: int, scheme: str) -> np.ndarray:
    """Per-class loss weights: "balanced" is n / (k * count) (sklearn's rule), "sqrt" its square
    root (a milder push toward rare classes), "none" all ones. The weights average 1 over the
    training rows, so the loss keeps its scale and the learning rate keeps its meaning."""
    if scheme not in CLASS_WEIGHTINGS:
        raise ExportInputError(f"unknown class weighting {scheme!r}; choose one of {', '.join(CLASS_WEIGHTINGS)}")
    if scheme == "none":
        return np.ones(n_classes)
    labels = labels[labels >= 0]  # a "not NAME" row weighs as it is
    counts = np.bincount(labels, minlength=n_classes).astype(np.float64)
    if (counts == 0).any():
        missing = ", ".join(str(i) for i in np.flatnonzero(counts == 0))
        raise ExportInputError(
            f"class weighting needs every class in the training data; class id(s) {missing} have none"
        )
    w = len(labels) / (n_classes * counts)
    if scheme == "sqrt":
        w = np.sqrt(w)
    return w / (w[labels].mean())


def focal_loss(logits, target, gamma: float, weight=None):
    """Focal loss, mean over the batch: -w_y (1 - p_y)^gamma log p_y (Lin et al. 2017). It
    down-weights texts the model already gets right with confidence, so training pushes less
    on confidence it has and more on the hard texts; gamma = 0 is plain (weighted) cross-entropy."""
    import torch

    log_p = torch.log_softmax(logits.float(), dim=-1).gather(1, target[:, None])[:, 0]
    loss = -((1.0 - log_p.exp()).clamp(min=0.0) ** gamma) * log_p
    if weight is not None:
        loss = loss * weight[target]
    return loss.mean()


def pooled_and_head(model):
    """Split a sequence classifier at the vector its classification head reads: returns
    (pooled(feeds) -> (batch, dim), head(pooled) -> logits), so that a training step can mix
    pooled vectors across texts (manifold mixup). DistilBERT's head reads the first token's last
    hidden state (pre_classifier, ReLU, dropout, classifier); BERT's reads its pooler output
    (dropout, classifier). The two together compute exactly what model(**feeds).logits does."""
    import torch

    kind = model.config.model_type
    if kind == "distilbert":

        def pooled(feeds):
            return model.distilbert(**feeds).last_hidden_state[:, 0]

        def head(x):
            return model.classifier(model.dropout(torch.relu(model.pre_classifier(x))))

        return pooled, head
    if kind == "bert":

        def pooled(feeds):
            return model.bert(**feeds).pooler_output

        def head(x):
            return model.classifier(model.dropout(x))

        return pooled, head
    raise ExportInputError(f"--mixup supports DistilBERT and BERT checkpoints, not model type {kind!r}")


def mixup_loss(loss_fn, pooled, head, target, lam: float, perm):
    """Manifold mixup (Verma et al. 2019) on the head's input: the head sees
    lam * pooled + (1 - lam) * pooled[perm] and is scored against both texts' labels with the same
    weights, lam * loss(y) + (1 - lam) * loss(y[perm]). Training on these in-between vectors
    teaches the head to give in-between probabilities between class clusters."""
    logits = head(lam * pooled + (1.0 - lam) * pooled[perm])
    return lam * loss_fn(logits, target) + (1.0 - lam) * loss_fn(logits, target[perm])


def average_states(states: list[dict]) -> dict:
    """The uniform average of several state dicts of one model (checkpoint averaging). Floating
    tensors are averaged; integer buffers (position ids) are taken from the last state."""
    out = {}
    for name, last in states[-1].items():
        if last.is_floating_point():
            out[name] = sum(s[name].double() for s in states).div(len(states)).to(last.dtype)
        else:
            out[name] = last.clone()
    return out


# A text that opens with how the writer feels ("i feel ...", "im feeling ...", "i felt ...") and is not
# negated: the lead-in the emotion dataset repeats in almost every text, which a model learns to lean on.
LEAD_IN = re.compile(
    r"^(?:i|im|i m|i am|i was|i have been|i ve been|i still|i just|i always|i do|i really)?\s*"
    r"(?:feel|feeling|felt|feels)\s+(?:like\s+)?"
)
LEAD_IN_REPLACEMENTS = ("", "", "so ", "really ", "honestly ", "just ", "ugh ", "today ")


def strip_lead_in(text: str, rng: np.random.Generator) -> str:
    """The text without its feel-word lead-in (sometimes replaced by a filler word), or the text
    unchanged when it has none or what follows would be empty."""
    m = LEAD_IN.match(text)
    if m is None or not text[m.end() :].strip():
        return text
    return LEAD_IN_REPLACEMENTS[int(rng.integers(len(LEAD_IN_REPLACEMENTS)))] + text[m.end() :]


def augment_texts(texts: list[str], probability: float, rng: np.random.Generator) -> list[str]:
    """One epoch's training texts: each lead-in stripped with `probability`."""
    if probability <= 0:
        return texts
    return [strip_lead_in(t, rng) if rng.random() < probability else t for t in texts]


def combine(datasets: list[LabelledTexts]) -> tuple[LabelledTexts, list[str] | None]:
    """Several training files as one, labels as names; and the label order of the first file when it
    gives integer ids with their names (so that a dataset keeps its own id order)."""
    if len(datasets) == 1:
        return datasets[0], None
    order = None
    first = datasets[0]
    if first.labels is not None and first.names is not None and all(isinstance(v, int) for v in first.labels):
        by_id = dict(zip(first.labels, first.names))
        order = [by_id[i] for i in sorted(by_id)]
    texts, labels = [], []
    for data in datasets:
        if data.labels is None:
            raise ExportInputError(f"{data.source} has no label column")
        names = data.names or [None] * len(data.labels)
        labels += [n if isinstance(v, int) and n is not None else str(v) for v, n in zip(data.labels, names)]
        texts += data.texts
    return LabelledTexts(texts, labels, " + ".join(d.source for d in datasets)), order


def resolve_labels(
    train: LabelledTexts, labels_file: Path | None, order: list[str] | None = None
) -> tuple[list[str], dict]:
    """Label names in id order, and a map from raw label values to ids."""
    if train.labels is None:
        raise ExportInputError(f"{train.source} has no label column")
    raw = train.labels
    if labels_file is not None or order is not None:
        names = order or [ln.strip() for ln in Path(labels_file).read_text(encoding="utf-8").splitlines() if ln.strip()]
        if len(set(names)) != len(names):
            raise ExportInputError(f"{labels_file} lists a label twice")
        mapping = {name: i for i, name in enumerate(names)}
        mapping.update({i: i for i in range(len(names))})
    elif all(isinstance(v, int) for v in raw):
        ids = sorted(set(raw))
        by_id = {}
        for value, name in zip(raw, train.names or [str(v) for v in raw]):
            if by_id.setdefault(value, name) != name:
                raise ExportInputError(f"{train.source}: label id {value} has two names ({by_id[value]!r}, {name!r})")
        names = [by_id[i] for i in ids]
        mapping = {v: i for i, v in enumerate(ids)}
        mapping.update({name: i for i, name in enumerate(names)})
    else:
        names = sorted({str(v) for v in raw if not str(v).startswith(NOT_PREFIX)})
        mapping = {name: i for i, name in enumerate(names)}
    if len(names) < 2:
        raise ExportInputError(f"{train.source} has {len(names)} class(es); classification needs at least 2")
    return names, mapping


# A training label written "!NAME" says only that the text is not NAME (GoEmotions' admiration or
# curiosity is not neutral, though none of the six either). Such a row is encoded as -(id + 1) and
# its loss is -log(1 - p_NAME): it teaches what the text is not, and nothing about what it is.
NOT_PREFIX = "!"


def encode_labels(data: LabelledTexts, mapping: dict, names: list[str], partial: bool = False) -> np.ndarray:
    """Label ids in the run's order; with `partial` (training files), "!NAME" as -(id of NAME + 1)."""
    if data.labels is None:
        raise ExportInputError(f"{data.source} has no label column")
    out = []
    for row, value in enumerate(data.labels, 1):
        if partial and isinstance(value, str) and value.startswith(NOT_PREFIX) and value[1:] in mapping:
            out.append(-mapping[value[1:]] - 1)
            continue
        if value not in mapping:
            raise ExportInputError(
                f"{data.source}: row {row} has label {value!r}, which is not in the training labels "
                f"({', '.join(names)})"
            )
        out.append(mapping[value])
    return np.asarray(out, dtype=np.int64)


def _load_base(base: str, names: list[str], seed: int):
    import torch
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    if base == MINILM_BASE:
        source = minilm_dir()
        return bert_to_distilbert(source, names, seed), wordpiece_tokenizer_for(source)
    from .bases import compact_path, load_compact

    compact = compact_path(base) or (Path(base) if str(base).endswith(".safetensors") else None)
    if compact is not None:  # a compact checkpoint: the shipped emotion model, or one saved alike
        if not compact.is_file():
            raise ExportInputError(f"base checkpoint {base} does not exist")
        return load_compact(compact, names, seed)
    torch.manual_seed(seed)
    try:
        model = AutoModelForSequenceClassification.from_pretrained(
            base,
            num_labels=len(names),
            id2label=dict(enumerate(names)),
            label2id={n: i for i, n in enumerate(names)},
            ignore_mismatched_sizes=True,
        )
        tokenizer = AutoTokenizer.from_pretrained(base, use_fast=True)
    except OSError as exc:
        raise ExportInputError(f"cannot load base model {base!r}: {str(exc).splitlines()[0]}") from None
    return model, tokenizer


class EncodedTexts:
    """Tokenised texts (no padding), padded per batch by transformers' DataCollatorWithPadding."""

    def __init__(self, tokenizer, texts: list[str], max_length: int):
        from transformers import DataCollatorWithPadding

        enc = tokenizer(texts, truncation=True, max_length=max_length)
        keys = [k for k in ("input_ids", "attention_mask", "token_type_ids") if k in enc]
        self.rows = [{k: enc[k][i] for k in keys} for i in range(len(texts))]
        self.lengths = [len(r["input_ids"]) for r in self.rows]
        self.collator = DataCollatorWithPadding(tokenizer, return_tensors="pt")

    def collate(self, index) -> dict:
        return dict(self.collator([self.rows[i] for i in index]))


def predict_logits(model, data: EncodedTexts, batch_size: int = 128) -> np.ndarray:
    import torch

    model.eval()
    n = len(data.rows)
    order = sorted(range(n), key=lambda i: data.lengths[i])
    out = None
    with torch.inference_mode():
        for start in range(0, n, batch_size):
            index = order[start : start + batch_size]
            logits = model(**data.collate(index)).logits.float().numpy()
            if out is None:
                out = np.empty((n, logits.shape[1]), dtype=np.float32)
            out[index] = logits
    return out


def _jsonable(value):
    """A config value as JSON: paths as strings, lists of them too."""
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    return str(value) if isinstance(value, Path) else value


def check_config(config: FinetuneConfig) -> None:
    """Refuse options that cannot train, before anything is read or loaded."""
    out = Path(config.out)
    if out.exists() and any(out.iterdir()) and not config.force:
        raise ExportInputError(f"output directory {out} is not empty; pass --force to replace it")
    if not 0.0 <= config.label_smoothing < 1.0:
        raise ExportInputError(f"label smoothing must be in [0, 1), got {config.label_smoothing}")
    if not 0.0 <= config.focal_gamma <= 10.0:
        raise ExportInputError(f"focal gamma must be in [0, 10], got {config.focal_gamma}")
    if config.focal_gamma and config.label_smoothing:
        raise ExportInputError("--focal-gamma and --label-smoothing cannot be combined; choose one")
    if not 0.0 <= config.mixup <= 10.0:
        raise ExportInputError(f"mixup alpha must be in [0, 10], got {config.mixup}")
    if not 0.0 <= config.augment_lead_ins <= 1.0:
        raise ExportInputError(f"--augment-lead-ins must be a probability in [0, 1], got {config.augment_lead_ins}")
    if not 0 <= config.linear_probe_epochs < config.epochs:
        raise ExportInputError("--linear-probe-epochs must be at least 0 and fewer than --epochs")


@dataclass
class _Splits:
    """The labelled texts of a run and their label ids in the run's label order."""

    names: list[str]
    train: LabelledTexts
    val: LabelledTexts
    test: LabelledTexts | None
    y_train: np.ndarray
    y_val: np.ndarray
    y_test: np.ndarray | None


def _read_splits(config: FinetuneConfig) -> _Splits:
    def read(path):
        return read_labelled(path, config.text_field, config.label_field)

    train_files = config.train if isinstance(config.train, (list, tuple)) else [config.train]
    train, order = combine([read(f) for f in train_files])
    val = read(config.validation)
    test = read(config.test) if config.test else None
    names, mapping = resolve_labels(train, config.labels_file, None if config.labels_file else order)
    return _Splits(
        names,
        train,
        val,
        test,
        encode_labels(train, mapping, names, partial=True),
        encode_labels(val, mapping, names),
        encode_labels(test, mapping, names) if test else None,
    )


def _loss_function(config: FinetuneConfig, weights: np.ndarray):
    import torch

    weight_t = None if config.class_weights == "none" else torch.as_tensor(weights, dtype=torch.float32)
    if config.focal_gamma:
        full = lambda logits, target: focal_loss(logits, target, config.focal_gamma, weight_t)  # noqa: E731
    else:
        full = torch.nn.CrossEntropyLoss(weight=weight_t, label_smoothing=config.label_smoothing)
    return lambda logits, target: with_partial_labels(full, logits, target)


def with_partial_labels(full, logits, target):
    """The mean loss over a batch where some rows say only "not NAME" (target -(id + 1)): `full`
    on the other rows, -log(1 - p_NAME) on those, each row weighing alike."""
    import torch

    negative = target < 0
    if not negative.any():
        return full(logits, target)
    z = logits[negative]
    excluded = -target[negative] - 1
    others = z.masked_fill(torch.nn.functional.one_hot(excluded, z.shape[1]).bool(), float("-inf"))
    loss_not = (torch.logsumexp(z, 1) - torch.logsumexp(others, 1)).sum()
    kept = ~negative
    loss_full = full(logits[kept], target[kept]) * kept.sum() if kept.any() else 0.0
    return (loss_full + loss_not) / len(target)


def _optimizer(model, config: FinetuneConfig, total_steps: int):
    """AdamW without decay on biases and LayerNorm weights; linear warm-up, then linear decay."""
    import torch
    from transformers import get_linear_schedule_with_warmup

    no_decay = ("bias", "LayerNorm.weight", "layer_norm.weight")
    groups = [
        {
            "params": [p for n, p in model.named_parameters() if not n.endswith(no_decay)],
            "weight_decay": config.weight_decay,
        },
        {"params": [p for n, p in model.named_parameters() if n.endswith(no_decay)], "weight_decay": 0.0},
    ]
    optimizer = torch.optim.AdamW(groups, lr=config.lr)
    return optimizer, get_linear_schedule_with_warmup(optimizer, int(config.warmup_ratio * total_steps), total_steps)


class _Progress:
    """An epoch's steps: a tqdm bar on a TTY; elsewhere (a log file) a line every tenth of the
    epoch, so a run in the background shows how far it is."""

    def __init__(self, steps: int, desc: str):
        from tqdm import tqdm

        self.tty = sys.stderr.isatty()
        self.steps, self.desc, self.t0 = steps, desc, time.perf_counter()
        self.every = max(1, steps // 10)
        self.bar = tqdm(total=steps, desc=desc, disable=not self.tty)

    def step(self, done: int, loss: float) -> None:
        self.bar.update(1)
        self.bar.set_postfix(loss=f"{loss:.4f}")
        if not self.tty and (done % self.every == 0 or done == self.steps):
            seconds = time.perf_counter() - self.t0
            print(
                f"{self.desc}: step {done}/{self.steps}, loss {loss:.4f}, {seconds:.0f} s", file=sys.stderr, flush=True
            )

    def close(self) -> None:
        self.bar.close()


class _Trainer:
    """One fine-tuning run's model, data and optimiser state, stepped an epoch at a time."""

    def __init__(self, config: FinetuneConfig, splits: _Splits):
        import torch
        from transformers.trainer_pt_utils import LengthGroupedSampler

        self.config, self.splits = config, splits
        self.model, self.tokenizer = _load_base(config.base, splits.names, config.seed)
        if config.mixup:
            self.pooled_fn, self.head_fn = pooled_and_head(self.model)
            self.mix_rng = np.random.default_rng([config.seed, 1])  # its own stream: the batch order stays the same
        self.train_b = EncodedTexts(self.tokenizer, splits.train.texts, config.max_length)
        self.val_b = EncodedTexts(self.tokenizer, splits.val.texts, config.max_length)
        order_rng = torch.Generator().manual_seed(config.seed)
        self.sampler = LengthGroupedSampler(config.batch_size, lengths=self.train_b.lengths, generator=order_rng)
        self.weights = class_weights(splits.y_train, len(splits.names), config.class_weights)
        self.loss_fn = _loss_function(config, self.weights)
        self.steps_per_epoch = math.ceil(len(splits.train.texts) / config.batch_size)
        self.optimizer, self.scheduler = _optimizer(self.model, config, self.steps_per_epoch * config.epochs)
        self.augment_rng = np.random.default_rng([config.seed, 2])  # its own stream, like mixup's
        self.head = [p for n, p in self.model.named_parameters() if n.startswith(("classifier", "pre_classifier"))]

    def train_epoch(self, epoch: int) -> list[float]:
        """One pass over the training texts (lead-ins stripped afresh, in a seeded length-grouped
        order); the step losses."""
        config, model = self.config, self.model
        model.train()
        probing = epoch <= config.linear_probe_epochs  # LP-FT: the encoder stays frozen at first
        for p in model.parameters():
            p.requires_grad_(not probing)
        for p in self.head:
            p.requires_grad_(True)
        if config.augment_lead_ins:
            texts = augment_texts(self.splits.train.texts, config.augment_lead_ins, self.augment_rng)
            self.train_b = EncodedTexts(self.tokenizer, texts, config.max_length)
        perm = np.fromiter(iter(self.sampler), dtype=np.int64)  # similar lengths per batch, in a seeded order
        losses: list[float] = []
        progress = _Progress(self.steps_per_epoch, f"epoch {epoch}/{config.epochs}")
        for step in range(self.steps_per_epoch):
            index = perm[step * config.batch_size : (step + 1) * config.batch_size].tolist()
            losses.append(self._step(index))
            progress.step(step + 1, float(np.mean(losses[-50:])))
        progress.close()
        return losses

    def _step(self, index: list[int]) -> float:
        import torch

        feeds = self.train_b.collate(index)
        target = torch.as_tensor(self.splits.y_train[index])
        if self.config.mixup:
            lam = float(self.mix_rng.beta(self.config.mixup, self.config.mixup))
            partner = torch.as_tensor(self.mix_rng.permutation(len(index)))
            loss = mixup_loss(self.loss_fn, self.pooled_fn(feeds), self.head_fn, target, lam, partner)
        else:
            loss = self.loss_fn(self.model(**feeds).logits, target)
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(self.model.parameters(), 1.0)
        self.optimizer.step()
        self.scheduler.step()
        return loss.item()

    def validate(self, model=None) -> tuple[np.ndarray, dict]:
        """The validation logits of `model` (default: the one training) and their summary."""
        logits = predict_logits(model or self.model, self.val_b)
        return logits, summary(self.splits.y_val, logits.argmax(1), self.splits.names)


class _Selection:
    """Early stopping and the weights kept: after each epoch, that epoch's weights and the average
    of the last `average_last` epochs' are candidates; the best validation macro-F1 so far wins,
    and `patience` epochs without a better one stop the run."""

    def __init__(self, average_last: int, patience: int):
        self.average_last, self.patience = average_last, patience
        self.best, self.state, self.span, self.stale = -1.0, None, None, 0
        self.recent: list[dict] = []
        self.avg_model = None

    def offer(self, trainer: _Trainer, epoch: int, macro_f1: float, record: dict) -> bool:
        """Weigh this epoch's candidates (noting the average's figures in `record`); False to stop."""
        state = {k: v.detach().clone() for k, v in trainer.model.state_dict().items()}
        candidates = [(macro_f1, state, [epoch])]
        self.recent = (self.recent + [state])[-self.average_last :]
        if len(self.recent) > 1:
            averaged = average_states(self.recent)
            if self.avg_model is None:
                self.avg_model = copy.deepcopy(trainer.model)
            self.avg_model.load_state_dict(averaged)
            sa = trainer.validate(self.avg_model)[1]
            span = list(range(epoch - len(self.recent) + 1, epoch + 1))
            record["averaged"] = {"epochs": span, "val_accuracy": sa["accuracy"], "val_macro_f1": sa["macro_f1"]}
            candidates.append((sa["macro_f1"], averaged, span))
        top = max(candidates, key=lambda c: c[0])
        if top[0] > self.best:
            self.best, self.state, self.span, self.stale = top[0], top[1], top[2], 0
            return True
        self.stale += 1
        return self.stale < self.patience


def _epoch_record(trainer: _Trainer, epoch: int, losses: list[float], seconds: float) -> tuple[dict, dict]:
    import torch

    logits, s = trainer.validate()
    val_loss = float(
        torch.nn.functional.cross_entropy(torch.from_numpy(logits), torch.from_numpy(trainer.splits.y_val))
    )
    record = {
        "epoch": epoch,
        "train_loss": float(np.mean(losses)),
        "val_loss": val_loss,
        "val_accuracy": s["accuracy"],
        "val_macro_f1": s["macro_f1"],
        "val_per_class_f1": s["per_class_f1"],
        "lr_end": trainer.scheduler.get_last_lr()[0],
        "seconds": round(seconds, 1),
    }
    return record, s


def _log_epoch(record: dict) -> None:
    averaged = record.get("averaged")
    print(
        f"epoch {record['epoch']}: train_loss={record['train_loss']:.4f} val_loss={record['val_loss']:.4f} "
        f"val_acc={record['val_accuracy']:.4f} val_macro_f1={record['val_macro_f1']:.4f}"
        + (f" averaged{averaged['epochs']}_macro_f1={averaged['val_macro_f1']:.4f}" if averaged else ""),
        file=sys.stderr,
        flush=True,
    )


def run_finetune(config: FinetuneConfig) -> dict:
    """Train as `config` says and write the run directory (checkpoint/, metrics.json, plots);
    returns the metrics."""
    import torch

    from emotion_onnx.cpu import available_cpus

    check_config(config)
    splits = _read_splits(config)
    torch.set_num_threads(config.threads or available_cpus())
    torch.manual_seed(config.seed)
    trainer = _Trainer(config, splits)
    selection = _Selection(config.average_last, config.patience)
    epochs, step_losses = [], []
    t_start = time.perf_counter()
    for epoch in range(1, config.epochs + 1):
        t0 = time.perf_counter()
        losses = trainer.train_epoch(epoch)
        step_losses += losses
        record, s = _epoch_record(trainer, epoch, losses, time.perf_counter() - t0)
        go_on = selection.offer(trainer, epoch, s["macro_f1"], record)
        epochs.append(record)
        _log_epoch(record)
        if not go_on:
            break
    trainer.model.load_state_dict(selection.state)
    return _write_run(trainer, selection.span, epochs, step_losses, time.perf_counter() - t_start)


def _write_run(trainer: _Trainer, best_span: list[int], epochs: list[dict], step_losses: list[float],
               seconds: float) -> dict:  # fmt: skip
    """The run directory, written beside its place and renamed into it: the checkpoint, the
    tokenizer, metrics.json, the training curves and the confusion matrices."""
    from . import plots

    config, splits, names = trainer.config, trainer.splits, trainer.splits.names
    out = Path(config.out)
    best_epoch = best_span[-1]  # the epoch that found it: a single epoch, or the last of an averaged span
    tmp = out.with_name(f".{out.name}.tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    (tmp / "checkpoint").mkdir(parents=True)
    trainer.model.save_pretrained(tmp / "checkpoint")
    trainer.tokenizer.save_pretrained(tmp / "checkpoint")
    val_summary = trainer.validate()[1]
    metrics = {
        "config": {k: _jsonable(v) for k, v in asdict(config).items()},
        "labels": names,
        "epochs": epochs,
        "best_epoch": best_epoch,
        "best_weights": "epoch" if len(best_span) == 1 else "average of epochs " + ", ".join(map(str, best_span)),
        "class_weights": dict(zip(names, (round(float(w), 4) for w in trainer.weights))),
        "train_seconds": round(seconds, 3),
        "validation": val_summary,
    }
    plots.training_curves(step_losses, epochs, tmp / "training_curves.png")
    matrix = np.array(val_summary["confusion_matrix"])
    plots.confusion_matrix(matrix, names, tmp / "confusion_matrix.png", f"validation (best epoch {best_epoch})")
    if splits.test is not None:
        test_b = EncodedTexts(trainer.tokenizer, splits.test.texts, config.max_length)
        test_logits = predict_logits(trainer.model, test_b)
        metrics["test"] = summary(splits.y_test, test_logits.argmax(1), names)
        np.save(tmp / "test_logits.npy", test_logits.astype(np.float32))
        np.save(tmp / "test_labels.npy", splits.y_test.astype(np.int8))
        matrix = np.array(metrics["test"]["confusion_matrix"])
        plots.confusion_matrix(matrix, names, tmp / "confusion_matrix_test.png", "test split")
    (tmp / "metrics.json").write_text(json.dumps(metrics, indent=2) + "\n")
    if out.exists():
        shutil.rmtree(out)
    tmp.rename(out)
    return metrics
