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
    counts = np.bincount(labels, minlength=n_classes).astype(np.float64)
    if scheme == "none":
        return np.ones(n_classes)
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
        names = sorted({str(v) for v in raw})
        mapping = {name: i for i, name in enumerate(names)}
    if len(names) < 2:
        raise ExportInputError(f"{train.source} has {len(names)} class(es); classification needs at least 2")
    return names, mapping


def encode_labels(data: LabelledTexts, mapping: dict, names: list[str]) -> np.ndarray:
    if data.labels is None:
        raise ExportInputError(f"{data.source} has no label column")
    out = []
    for row, value in enumerate(data.labels, 1):
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


class _Encoded:
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


def _predict(model, data: _Encoded, batch_size: int = 128) -> np.ndarray:
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


def run_finetune(config: FinetuneConfig) -> dict:
    import torch
    from tqdm import tqdm
    from transformers import get_linear_schedule_with_warmup
    from transformers.trainer_pt_utils import LengthGroupedSampler

    from emotion_onnx.cpu import available_cpus

    from . import plots

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
    train_files = config.train if isinstance(config.train, (list, tuple)) else [config.train]
    train, order = combine([read_labelled(f, config.text_field, config.label_field) for f in train_files])
    val = read_labelled(config.validation, config.text_field, config.label_field)
    test = read_labelled(config.test, config.text_field, config.label_field) if config.test else None
    names, mapping = resolve_labels(train, config.labels_file, None if config.labels_file else order)
    y_train = encode_labels(train, mapping, names)
    y_val = encode_labels(val, mapping, names)
    y_test = encode_labels(test, mapping, names) if test else None

    torch.set_num_threads(config.threads or available_cpus())
    torch.manual_seed(config.seed)
    model, tokenizer = _load_base(config.base, names, config.seed)
    if config.mixup:
        pooled_fn, head_fn = pooled_and_head(model)
        mix_rng = np.random.default_rng([config.seed, 1])  # its own stream: the batch order stays the same
    train_b = _Encoded(tokenizer, train.texts, config.max_length)
    val_b = _Encoded(tokenizer, val.texts, config.max_length)
    order_rng = torch.Generator().manual_seed(config.seed)
    sampler = LengthGroupedSampler(config.batch_size, lengths=train_b.lengths, generator=order_rng)
    weights = class_weights(y_train, len(names), config.class_weights)
    weight_t = None if config.class_weights == "none" else torch.as_tensor(weights, dtype=torch.float32)
    if config.focal_gamma:

        def loss_fn(logits, target):
            return focal_loss(logits, target, config.focal_gamma, weight_t)
    else:
        loss_fn = torch.nn.CrossEntropyLoss(weight=weight_t, label_smoothing=config.label_smoothing)

    steps_per_epoch = math.ceil(len(train.texts) / config.batch_size)
    total = steps_per_epoch * config.epochs
    no_decay = ("bias", "LayerNorm.weight", "layer_norm.weight")
    groups = [
        {
            "params": [p for n, p in model.named_parameters() if not n.endswith(no_decay)],
            "weight_decay": config.weight_decay,
        },
        {"params": [p for n, p in model.named_parameters() if n.endswith(no_decay)], "weight_decay": 0.0},
    ]
    optimizer = torch.optim.AdamW(groups, lr=config.lr)
    scheduler = get_linear_schedule_with_warmup(optimizer, int(config.warmup_ratio * total), total)

    epochs, step_losses = [], []
    best, best_state, best_span, stale = -1.0, None, None, 0
    recent, avg_model = [], None  # the last `average_last` epochs' weights, for checkpoint averaging
    t_start = time.perf_counter()
    augment_rng = np.random.default_rng([config.seed, 2])  # its own stream, like mixup's
    head = [p for n, p in model.named_parameters() if n.startswith(("classifier", "pre_classifier"))]
    for epoch in range(1, config.epochs + 1):
        model.train()
        probing = epoch <= config.linear_probe_epochs  # LP-FT: the encoder stays frozen at first
        for p in model.parameters():
            p.requires_grad_(not probing)
        for p in head:
            p.requires_grad_(True)
        t0 = time.perf_counter()
        if config.augment_lead_ins:
            train_b = _Encoded(tokenizer, augment_texts(train.texts, config.augment_lead_ins, augment_rng),
                               config.max_length)  # fmt: skip
        perm = np.fromiter(iter(sampler), dtype=np.int64)  # similar lengths per batch, in a seeded order
        losses = []
        bar = tqdm(range(steps_per_epoch), desc=f"epoch {epoch}/{config.epochs}", disable=not sys.stderr.isatty())
        for step in bar:
            index = perm[step * config.batch_size : (step + 1) * config.batch_size].tolist()
            feeds = train_b.collate(index)
            target = torch.as_tensor(y_train[index])
            if config.mixup:
                lam = float(mix_rng.beta(config.mixup, config.mixup))
                partner = torch.as_tensor(mix_rng.permutation(len(index)))
                loss = mixup_loss(loss_fn, pooled_fn(feeds), head_fn, target, lam, partner)
            else:
                loss = loss_fn(model(**feeds).logits, target)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
            optimizer.step()
            scheduler.step()
            losses.append(loss.item())
            bar.set_postfix(loss=f"{np.mean(losses[-50:]):.4f}")
        step_losses += losses
        logits = _predict(model, val_b)
        val_loss = float(torch.nn.functional.cross_entropy(torch.from_numpy(logits), torch.from_numpy(y_val)))
        s = summary(y_val, logits.argmax(1), names)
        record = {
            "epoch": epoch,
            "train_loss": float(np.mean(losses)),
            "val_loss": val_loss,
            "val_accuracy": s["accuracy"],
            "val_macro_f1": s["macro_f1"],
            "val_per_class_f1": s["per_class_f1"],
            "lr_end": scheduler.get_last_lr()[0],
            "seconds": round(time.perf_counter() - t0, 1),
        }
        state = {k: v.detach().clone() for k, v in model.state_dict().items()}
        candidates = [(s["macro_f1"], state, [epoch])]
        recent = (recent + [state])[-config.average_last :]
        if len(recent) > 1:
            averaged = average_states(recent)
            if avg_model is None:
                avg_model = copy.deepcopy(model)
            avg_model.load_state_dict(averaged)
            sa = summary(y_val, _predict(avg_model, val_b).argmax(1), names)
            span = list(range(epoch - len(recent) + 1, epoch + 1))
            record["averaged"] = {"epochs": span, "val_accuracy": sa["accuracy"], "val_macro_f1": sa["macro_f1"]}
            candidates.append((sa["macro_f1"], averaged, span))
        epochs.append(record)
        print(
            f"epoch {epoch}: train_loss={record['train_loss']:.4f} val_loss={val_loss:.4f} "
            f"val_acc={s['accuracy']:.4f} val_macro_f1={s['macro_f1']:.4f}"
            + (f" averaged{span}_macro_f1={sa['macro_f1']:.4f}" if "averaged" in record else ""),
            file=sys.stderr,
        )
        top = max(candidates, key=lambda c: c[0])
        if top[0] > best:
            best, best_state, best_span, stale = top[0], top[1], top[2], 0
        else:
            stale += 1
            if stale >= config.patience:
                break

    model.load_state_dict(best_state)
    best_epoch = best_span[-1]  # the epoch that found it: a single epoch, or the last of an averaged span
    tmp = out.with_name(f".{out.name}.tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    (tmp / "checkpoint").mkdir(parents=True)
    model.save_pretrained(tmp / "checkpoint")
    tokenizer.save_pretrained(tmp / "checkpoint")
    val_logits = _predict(model, val_b)
    val_summary = summary(y_val, val_logits.argmax(1), names)
    metrics = {
        "config": {k: _jsonable(v) for k, v in asdict(config).items()},
        "labels": names,
        "epochs": epochs,
        "best_epoch": best_epoch,
        "best_weights": "epoch" if len(best_span) == 1 else "average of epochs " + ", ".join(map(str, best_span)),
        "class_weights": dict(zip(names, (round(float(w), 4) for w in weights))),
        "train_seconds": round(time.perf_counter() - t_start, 1),
        "validation": val_summary,
    }
    plots.training_curves(step_losses, epochs, tmp / "training_curves.png")
    plots.confusion_matrix(
        np.array(val_summary["confusion_matrix"]),
        names,
        tmp / "confusion_matrix.png",
        f"validation (best epoch {best_epoch})",
    )
    if test is not None:
        test_logits = _predict(model, _Encoded(tokenizer, test.texts, config.max_length))
        metrics["test"] = summary(y_test, test_logits.argmax(1), names)
        np.save(tmp / "test_logits.npy", test_logits.astype(np.float32))
        np.save(tmp / "test_labels.npy", y_test.astype(np.int8))
        plots.confusion_matrix(
            np.array(metrics["test"]["confusion_matrix"]), names, tmp / "confusion_matrix_test.png", "test split"
        )
    (tmp / "metrics.json").write_text(json.dumps(metrics, indent=2) + "\n")
    if out.exists():
        shutil.rmtree(out)
    tmp.rename(out)
    return metrics
