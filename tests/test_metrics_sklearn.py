"""`metrics.task_metrics` against scikit-learn (and scipy's Spearman) on fixed random predictions."""
import numpy as np
import pytest
import torch

from omnigenome.metrics import HEAD_METRICS, task_metrics

sklearn_metrics = pytest.importorskip("sklearn.metrics")

TOL = 1e-5


def _spearman(x: np.ndarray, y: np.ndarray) -> float:
    try:
        from scipy.stats import spearmanr
        return float(spearmanr(x, y).statistic)
    except ImportError:  # no ties in continuous random data: Pearson of the ranks
        rx, ry = np.argsort(np.argsort(x)), np.argsort(np.argsort(y))
        return float(np.corrcoef(rx, ry)[0, 1])


def _softmax(x: np.ndarray) -> np.ndarray:
    e = np.exp(x - x.max(axis=1, keepdims=True))
    return e / e.sum(axis=1, keepdims=True)


@pytest.mark.parametrize("head", ["sequence_classification", "token_classification"])
@pytest.mark.parametrize("num_classes", [2, 3, 5])
@pytest.mark.parametrize("as_probabilities", [False, True])
def test_classification_matches_sklearn(head, num_classes, as_probabilities):
    rng = np.random.default_rng(num_classes)
    n = 400
    targets = rng.integers(0, num_classes, n)
    logits = rng.normal(size=(n, num_classes)) + 1.5 * np.eye(num_classes)[targets]  # better than chance
    probs = _softmax(logits)
    preds = probs if as_probabilities else logits
    got = task_metrics(["macro_f1", "mcc", "roc_auc", "accuracy"], torch.tensor(preds, dtype=torch.float32),
                       torch.tensor(targets), head, num_classes)
    classes = probs.argmax(1)
    assert got["macro_f1"] == pytest.approx(sklearn_metrics.f1_score(targets, classes, average="macro"), abs=TOL)
    assert got["mcc"] == pytest.approx(sklearn_metrics.matthews_corrcoef(targets, classes), abs=TOL)
    assert got["accuracy"] == pytest.approx(sklearn_metrics.accuracy_score(targets, classes), abs=TOL)
    if num_classes == 2:
        auc = sklearn_metrics.roc_auc_score(targets, probs[:, 1])
    else:
        auc = sklearn_metrics.roc_auc_score(targets, probs, multi_class="ovr", average="macro")
    assert got["roc_auc"] == pytest.approx(auc, abs=TOL)
    assert list(got) == ["macro_f1", "mcc", "roc_auc", "accuracy"]


def test_macro_f1_leaves_out_absent_classes_like_sklearn():
    # class 2 appears in neither predictions nor targets
    targets = np.array([0, 0, 1, 1, 0, 1])
    logits = np.eye(3)[[0, 1, 1, 1, 0, 0]] * 5.0
    got = task_metrics(["macro_f1"], torch.tensor(logits), torch.tensor(targets), "sequence_classification", 3)
    assert got["macro_f1"] == pytest.approx(sklearn_metrics.f1_score(targets, logits.argmax(1), average="macro"), abs=TOL)


@pytest.mark.parametrize("num_classes", [2, 4])
def test_mcc_of_a_constant_prediction_is_zero_like_sklearn(num_classes):
    # the majority-class baseline: torchmetrics alone gives a small non-zero value here
    targets = np.random.default_rng(0).integers(0, num_classes, 613)
    logits = np.tile(np.eye(num_classes)[0], (613, 1))
    got = task_metrics(["mcc"], torch.tensor(logits), torch.tensor(targets), "sequence_classification", num_classes)
    assert got["mcc"] == sklearn_metrics.matthews_corrcoef(targets, logits.argmax(1)) == 0.0


@pytest.mark.parametrize("as_probabilities", [False, True])
def test_multilabel_matches_sklearn(as_probabilities):
    rng = np.random.default_rng(7)
    n, labels = 300, 6
    targets = (rng.random((n, labels)) < 0.4).astype(np.int64)
    logits = rng.normal(size=(n, labels)) + 1.2 * (2 * targets - 1)
    probs = 1 / (1 + np.exp(-logits))
    preds = probs if as_probabilities else logits
    got = task_metrics(["macro_f1", "mcc", "roc_auc", "accuracy"], torch.tensor(preds), torch.tensor(targets),
                       "multilabel", labels, probabilities=as_probabilities)
    decisions = (probs >= 0.5).astype(np.int64)
    assert got["macro_f1"] == pytest.approx(sklearn_metrics.f1_score(targets, decisions, average="macro"), abs=TOL)
    mcc = np.mean([sklearn_metrics.matthews_corrcoef(targets[:, k], decisions[:, k]) for k in range(labels)])
    assert got["mcc"] == pytest.approx(mcc, abs=TOL)
    assert got["roc_auc"] == pytest.approx(sklearn_metrics.roc_auc_score(targets, probs, average="macro"), abs=TOL)
    assert got["accuracy"] == pytest.approx((decisions == targets).mean(), abs=TOL)


@pytest.mark.parametrize("head", ["sequence_regression", "token_regression"])
@pytest.mark.parametrize("num_targets", [1, 3])
def test_regression_matches_sklearn(head, num_targets):
    rng = np.random.default_rng(num_targets)
    n = 500
    targets = rng.normal(size=(n, num_targets)) * np.arange(1, num_targets + 1)
    preds = targets + rng.normal(scale=0.7, size=(n, num_targets))
    got = task_metrics(["rmse", "mcrmse", "spearman", "r2"], torch.tensor(preds, dtype=torch.float32),
                       torch.tensor(targets, dtype=torch.float32), head, num_targets)
    p32, t32 = preds.astype(np.float32).astype(np.float64), targets.astype(np.float32).astype(np.float64)
    rmse = np.sqrt(sklearn_metrics.mean_squared_error(t32.ravel(), p32.ravel()))
    mcrmse = np.mean(np.sqrt(sklearn_metrics.mean_squared_error(t32, p32, multioutput="raw_values")))
    spearman = np.mean([_spearman(p32[:, k], t32[:, k]) for k in range(num_targets)])
    r2 = sklearn_metrics.r2_score(t32, p32, multioutput="uniform_average")
    assert got["rmse"] == pytest.approx(rmse, abs=TOL)
    assert got["mcrmse"] == pytest.approx(mcrmse, abs=TOL)
    assert got["spearman"] == pytest.approx(spearman, abs=TOL)
    assert got["r2"] == pytest.approx(r2, abs=TOL)
    if num_targets == 1:
        assert got["rmse"] == pytest.approx(got["mcrmse"], abs=TOL)


def test_bad_requests_are_refused():
    preds, targets = torch.zeros(4, 2), torch.zeros(4, dtype=torch.long)
    with pytest.raises(ValueError, match="unknown metric"):
        task_metrics(["f2"], preds, targets, "sequence_classification", 2)
    with pytest.raises(ValueError, match="does not apply"):
        task_metrics(["rmse"], preds, targets, "sequence_classification", 2)
    with pytest.raises(ValueError, match="unknown head"):
        task_metrics(["mcc"], preds, targets, "seq2seq", 2)
    with pytest.raises(ValueError, match="NaN"):
        task_metrics(["rmse"], torch.zeros(3, 1), torch.tensor([[0.0], [float("nan")], [1.0]]), "token_regression", 1)
    with pytest.raises(ValueError, match="class ids"):
        task_metrics(["mcc"], preds, torch.tensor([0, 1, 2, 0]), "sequence_classification", 2)
    assert set(HEAD_METRICS) == {"sequence_classification", "multilabel", "sequence_regression",
                                 "token_classification", "token_regression"}
