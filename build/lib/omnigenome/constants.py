"""Names shared by the task readers (data/), the task heads (finetune/) and the metrics.

A downstream task has a head, which fixes the shape of its labels:

- sequence heads, one label per sequence: `sequence_classification` (a class id), `multilabel` (one 0/1 per
  label), `sequence_regression` (one value per target);
- token heads, one label per nucleotide: `token_classification` (a class id, IGNORE_INDEX where not scored),
  `token_regression` (one value per target, NaN where not scored).
"""
SEQUENCE_HEADS = ("sequence_classification", "multilabel", "sequence_regression")
TOKEN_HEADS = ("token_classification", "token_regression")
HEADS = SEQUENCE_HEADS + TOKEN_HEADS
CLASSIFICATION_HEADS = ("sequence_classification", "token_classification")
REGRESSION_HEADS = ("sequence_regression", "token_regression")

IGNORE_INDEX = -100  # class label of a position that is not scored (cross-entropy's ignore_index)

# The splits of a data set, in every layer: task configs, corpora on disk, data modules. (Metrics are
# logged under Lightning's usual prefixes train/, val/ and test/.)
SPLITS = ("train", "valid", "test")


def check_head(head: str) -> str:
    if head not in HEADS:
        raise ValueError(f"unknown head {head!r}; choose from {', '.join(HEADS)}")
    return head
