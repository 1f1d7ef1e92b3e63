"""Unsupervised cluster metrics of a model's discrete latent against true labels.

    accuracy = max over one-to-one maps m of clusters to labels of 1/N sum_n [m(c_n) = y_n]

with the map found by the Hungarian algorithm (`scipy.optimize.linear_sum_assignment`) on the
contingency table (clusters beyond the number of labels stay unmatched and count as errors);
NMI and ARI from scikit-learn. The cluster of an image is argmax_k q(c_k|x) (`model.cluster`).

Beside it, the many-to-one accuracy (cluster purity)

    majority_accuracy = max over all maps m of clusters to labels of 1/N sum_n [m(c_n) = y_n]

maps every cluster to its most frequent label, so two clusters may share a label. Lavda et al.
(Sec. 5.2) match "each category ... to the corresponding label based on the conditional
generations" by hand, which allows such a map; the Hungarian accuracy is the stricter figure.
"""

import numpy as np

from tfpriors._validation import check_positive_int

__all__ = ["cluster_accuracy", "majority_accuracy", "assignment_metrics", "cluster_metrics",
           "assign_clusters"]


def _check_labels(clusters, labels):
    clusters, labels = np.asarray(clusters), np.asarray(labels)
    if clusters.ndim != 1 or clusters.shape != labels.shape or clusters.size == 0:
        raise ValueError(f"Expected two non-empty 1-D arrays of equal length. Received shapes "
                         f"{clusters.shape} and {labels.shape}")
    return clusters.astype(np.int64), labels.astype(np.int64)


def _contingency(clusters, labels):
    """(cluster ids, label ids, counts [clusters, labels]) of two checked label arrays."""
    clusters, labels = _check_labels(clusters, labels)
    cluster_ids, c_index = np.unique(clusters, return_inverse=True)
    label_ids, l_index = np.unique(labels, return_inverse=True)
    table = np.zeros((len(cluster_ids), len(label_ids)), np.int64)
    np.add.at(table, (c_index, l_index), 1)
    return cluster_ids, label_ids, table


def _hungarian(cluster_ids, label_ids, table):
    from scipy.optimize import linear_sum_assignment
    rows, cols = linear_sum_assignment(-table)
    mapping = {int(cluster_ids[r]): int(label_ids[c]) for r, c in zip(rows, cols)}
    return float(table[rows, cols].sum() / table.sum()), mapping


def _majority(cluster_ids, label_ids, table):
    mapping = {int(c): int(label_ids[j]) for c, j in zip(cluster_ids, table.argmax(axis=1))}
    return float(table.max(axis=1).sum() / table.sum()), mapping


def cluster_accuracy(clusters, labels):
    """Hungarian-matched accuracy in [0, 1] and the map {cluster: label}."""
    return _hungarian(*_contingency(clusters, labels))


def majority_accuracy(clusters, labels):
    """Many-to-one accuracy (purity) in [0, 1] and the map {cluster: its most frequent label}."""
    return _majority(*_contingency(clusters, labels))


def assignment_metrics(clusters, labels):
    """{"accuracy", "majority_accuracy", "nmi", "ari", "mapping", "clusters_used",
    "num_examples"} of cluster assignments [N] against labels [N], from one contingency table
    (accuracy Hungarian-matched, `mapping` its map)."""
    from sklearn.metrics import adjusted_rand_score, normalized_mutual_info_score
    clusters, labels = _check_labels(clusters, labels)
    parts = _contingency(clusters, labels)
    accuracy, mapping = _hungarian(*parts)
    return {"accuracy": accuracy, "majority_accuracy": _majority(*parts)[0],
            "nmi": float(normalized_mutual_info_score(labels, clusters)),
            "ari": float(adjusted_rand_score(labels, clusters)), "mapping": mapping,
            "clusters_used": int(len(parts[0])), "num_examples": int(clusters.size)}


def assign_clusters(model, images, batch_size=500):
    """argmax_k q(c_k|x) per image [N], and q(c|x) [N, K]."""
    import tensorflow as tf
    batch_size = check_positive_int("batch_size", batch_size)
    probs = np.concatenate([model.cluster(tf.constant(images[i:i + batch_size], tf.float32)).numpy()
                            for i in range(0, len(images), batch_size)])
    return probs.argmax(axis=1), probs


def cluster_metrics(model, images, labels, batch_size=500):
    """`assignment_metrics` of argmax_k q(c_k|x) (`model.cluster`) on `images`."""
    return assignment_metrics(assign_clusters(model, images, batch_size)[0], labels)
