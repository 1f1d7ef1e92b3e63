"""Graph-based interpolation along the learned latent manifold (Klushyn et al. 2019, Sec. 2.3).

The continuous latent space is summarised by a k-nearest-neighbour graph on N samples of the
learned prior,

    z_n ~ p(z),  n = 1..N                       (Eq. 13: z_n, zeta_n ~ p(z | zeta) p(zeta))
    edge {m, n}  if  z_m is among the k nearest neighbours of z_n  or  z_n among those of z_m
    w(m, n) = || z_m - z_n ||_2                 (undirected: the kNN relation is symmetrised)

Two images are encoded to their posterior means z_start = E_q[z | x_start], z_end, added to the
graph as new nodes, and joined by the shortest path (A*, Euclidean heuristic). The node sequence
Z_path = (z_start, Z_sub, z_end) is decoded back to image space. The pendulum experiment uses
N = 1000 nodes and k = 18 neighbours (App. F, Table 3), the defaults of `graph_interpolation`.

Built once, a `LatentGraph` answers many endpoint pairs: the endpoints are linked temporarily
(see `LatentGraph.shortest_path`) and removed afterwards.

Reuse for LaDDer's shortest likely path (Lin & Clark 2020, Sec. 3.4): the edge weight is a
pluggable function of the two end coordinates, e.g. length times a penalty that grows where the
prior density is low, w = ||z_a - z_b|| (1 + lam * softplus(-log p((z_a + z_b) / 2) - tau)).
A* stays exact for any non-negative weight because the heuristic is scaled by
c = min over edges of w / ||z_a - z_b|| (c = 1 for Euclidean weights), which keeps
h(u) = c ||z_u - z_end|| a lower bound on the remaining path weight (admissible and consistent).
The resulting graph path can also initialise LaDDer's gradient-based path optimisation.

Legend for shape comments: N graph nodes, D latent size, E edges, P path nodes, T frames.
"""

import dataclasses

import networkx as nx
import numpy as np
from sklearn.neighbors import NearestNeighbors

from tfpriors._validation import check_choice, check_positive_int
from tfpriors.interpolation._checks import (_check_endpoint, _check_num_frames, _check_points,
                                            _check_seed)
from tfpriors.interpolation.linear import Interpolation, decode_latents, encode_endpoints

__all__ = ["LatentGraph", "GraphPath", "DisconnectedGraphError", "resample_path",
           "graph_interpolation", "START", "END"]

# Node indices reported for the two temporary endpoint nodes in `GraphPath.node_indices`.
START = -1
END = -2


class DisconnectedGraphError(ValueError):
    """The two endpoints lie in different connected components of the kNN graph."""


@dataclasses.dataclass(frozen=True)
class GraphPath:
    """A shortest path through a `LatentGraph`.

    Attributes:
      nodes: float64 [P, D] coordinates of the path nodes, nodes[0] = start, nodes[-1] = end.
      node_indices: int64 [P] row of each node in `LatentGraph.points`; START (-1) and END (-2)
        mark the two endpoints (temporary nodes).
      length: total edge weight of the path (its Euclidean polyline length for default weights).
      latents: float64 [T, D] the frames: `nodes` (T = P), or `nodes` resampled to T equally
        spaced points along the polyline's arc length when `num_frames` was given.
    """
    nodes: np.ndarray
    node_indices: np.ndarray
    length: float
    latents: np.ndarray


class LatentGraph:
    """Symmetrised k-nearest-neighbour graph on latent points, reusable for many shortest paths.

    Build with `LatentGraph.from_model(model, num_nodes, k, seed)` (nodes sampled from the
    learned prior, Sec. 2.3) or `LatentGraph.from_points(points, k)`.

    Args:
      points: array-like [N, D] of finite node coordinates.
      k: number of nearest neighbours per node, 1 <= k < N.
      edge_weight: None for Euclidean weights, or a function (z_a [E, D], z_b [E, D]) -> [E]
        of finite non-negative weights (float64 numpy in and out), e.g. a density-penalised
        length for LaDDer-style shortest likely paths. Must be symmetric in its arguments.

    Raises:
      ValueError: if points is not a finite [N, D] array, k < 1, N <= k, or `edge_weight`
        returns weights of the wrong shape, negative or non-finite.

    Not thread-safe: `shortest_path` adds and removes the two endpoint nodes on the shared
    networkx graph.
    """

    def __init__(self, points, k, edge_weight=None):
        points = _check_points(points)
        k = check_positive_int("k", k)
        num_nodes = points.shape[0]
        if num_nodes <= k:
            raise ValueError(f"Expected more nodes than neighbours (N > k): every node needs k "
                             f"other nodes. Received: N={num_nodes}, k={k}; lower `k` or use "
                             f"more nodes")
        if edge_weight is not None and not callable(edge_weight):
            raise ValueError("Expected `edge_weight` to be None or a callable (z_a, z_b) -> "
                             f"weights. Received: edge_weight={edge_weight!r}")
        self._points = points
        self._points.setflags(write=False)
        self._k = k
        self._edge_weight = edge_weight

        # sklearn picks a tree or brute force by dimension (a kd-tree alone is slow for D ~ 32).
        dist, idx = NearestNeighbors(n_neighbors=k + 1).fit(points).kneighbors(points)
        # dist, idx: [N, k+1], sorted by distance
        # Drop each node from its own neighbour list. With duplicated points the node itself
        # need not come first, so remove it wherever it is and keep the first k others.
        not_self = idx != np.arange(num_nodes)[:, None]              # [N, k+1]
        order = np.argsort(~not_self, axis=1, kind="stable")[:, :k]  # [N, k]
        idx = np.take_along_axis(idx, order, axis=1)                 # [N, k]
        dist = np.take_along_axis(dist, order, axis=1)               # [N, k]
        self._radius = dist[:, -1].copy()                            # [N] k-th neighbour distance

        rows = np.repeat(np.arange(num_nodes), k)                    # [N k]
        pairs = np.stack([rows, idx.reshape(-1)], axis=1)            # [N k, 2]
        pairs = np.unique(np.sort(pairs, axis=1), axis=0)            # [E, 2] symmetrised
        lengths = np.linalg.norm(points[pairs[:, 0]] - points[pairs[:, 1]], axis=1)   # [E]
        weights = self._weights(points[pairs[:, 0]], points[pairs[:, 1]], lengths)    # [E]
        self._pairs, self._weights_array = pairs, weights
        self._pairs.setflags(write=False)
        self._weights_array.setflags(write=False)
        # Euclidean weights: c = 1 exactly; custom weights: the largest admissible c.
        self._heuristic_scale = (1.0 if edge_weight is None
                                 else _heuristic_scale(weights, lengths, np.inf))

        self._graph = nx.Graph()
        self._graph.add_nodes_from(range(num_nodes))
        self._graph.add_weighted_edges_from(
            zip(pairs[:, 0].tolist(), pairs[:, 1].tolist(), weights.tolist()))

    @classmethod
    def from_points(cls, points, k, edge_weight=None):
        """Graph on given points [N, D]; see the class docstring for the arguments."""
        return cls(points, k, edge_weight=edge_weight)

    @classmethod
    def from_model(cls, model, num_nodes, k, seed=0, edge_weight=None):
        """Graph on `num_nodes` samples of the model's learned prior (Eq. 13).

        Args:
          model: a model with `prior_distribution()` returning a tfd distribution, event [D].
          num_nodes: N, the number of prior samples (1000 for the pendulum, Table 3).
          k: neighbours per node (18 for the pendulum, Table 3), 1 <= k < N.
          seed: int in [0, 2**31) (used as the stateless seed [seed, 0]) or an int32 [2] seed.
          edge_weight: see the class docstring.

        Returns:
          A `LatentGraph`; the same seed gives the same nodes.

        Raises:
          ValueError: on a bad `num_nodes`, `k` or `seed` (see the class docstring).
        """
        import tensorflow as tf  # deferred: graphs on plain points need no TensorFlow

        num_nodes = check_positive_int("num_nodes", num_nodes)
        stateless_seed = tf.constant(_check_seed(seed), dtype=tf.int32)
        z = model.sample_latents(num_nodes, stateless_seed)                     # [N, D]
        return cls(np.asarray(z, dtype=np.float64), k, edge_weight=edge_weight)

    @property
    def points(self):
        """float64 [N, D] node coordinates (read-only)."""
        return self._points

    @property
    def k(self):
        return self._k

    @property
    def num_nodes(self):
        return self._points.shape[0]

    @property
    def latent_dim(self):
        return self._points.shape[1]

    @property
    def edges(self):
        """(pairs int64 [E, 2] with pairs[:, 0] < pairs[:, 1], weights float64 [E]), read-only."""
        return self._pairs, self._weights_array

    @property
    def num_components(self):
        """Number of connected components of the graph (without endpoints)."""
        return nx.number_connected_components(self._graph)

    @property
    def graph(self):
        """The underlying undirected `networkx.Graph` (nodes 0..N-1, attribute "weight")."""
        return self._graph

    def shortest_path(self, start, end, num_frames=None, method="astar"):
        """Shortest path from `start` to `end` through the graph.

        The endpoints are linked as if the kNN graph had been rebuilt with them included: a
        new node q gets an edge to each of its k nearest graph nodes and to every graph node
        n whose k-th neighbour distance is at least ||q - z_n|| (so q would be among n's k
        nearest), and start and end are joined when either is within the other's k-nearest
        radius. Edges displaced by the newcomers are kept (the graph is left unchanged).

        Args:
          start: array-like [D], e.g. the posterior mean of the first image.
          end: array-like [D].
          num_frames: None to return the path nodes as frames, or T >= 2 to resample the
            polyline to T points equally spaced in arc length (see `resample_path`).
          method: "astar" (networkx.astar_path with heuristic c ||z_u - z_end||, see the
            module docstring) or "dijkstra" (networkx.dijkstra_path); both are exact.

        Returns:
          A `GraphPath`.

        Raises:
          ValueError: if start/end are not finite vectors of length D, num_frames < 2 or an
            unknown method.
          DisconnectedGraphError (a ValueError): if no path joins start and end.
        """
        method = check_choice("method", method, {"astar", "dijkstra"})
        start = _check_endpoint("start", start, self.latent_dim)
        end = _check_endpoint("end", end, self.latent_dim)
        if num_frames is not None:
            num_frames = _check_num_frames(num_frames)

        n = self.num_nodes
        s_id, e_id = n, n + 1
        coords = np.concatenate([self._points, start[None], end[None]])   # [N+2, D]
        new_edges, new_lengths = self._endpoint_edges(start, end)          # [E', 2], [E']
        new_weights = self._weights(coords[new_edges[:, 0]], coords[new_edges[:, 1]],
                                    new_lengths)                          # [E']
        scale = min(self._heuristic_scale, _heuristic_scale(new_weights, new_lengths, np.inf))
        if not np.isfinite(scale):
            scale = 0.0

        graph = self._graph
        graph.add_nodes_from([s_id, e_id])
        try:
            graph.add_weighted_edges_from(zip(new_edges[:, 0].tolist(),
                                              new_edges[:, 1].tolist(), new_weights.tolist()))
            try:
                if method == "astar":
                    goal = coords[e_id]

                    def heuristic(u, _):
                        return scale * float(np.sqrt(np.sum((coords[u] - goal) ** 2)))

                    node_path = nx.astar_path(graph, s_id, e_id, heuristic=heuristic,
                                              weight="weight")
                else:
                    node_path = nx.dijkstra_path(graph, s_id, e_id, weight="weight")
            except nx.NetworkXNoPath:
                raise DisconnectedGraphError(self._disconnected_message(s_id, e_id)) from None
            length = float(nx.path_weight(graph, node_path, weight="weight"))
        finally:
            graph.remove_nodes_from([s_id, e_id])

        node_path = np.asarray(node_path, dtype=np.int64)                 # [P]
        nodes = coords[node_path]                                         # [P, D]
        indices = np.where(node_path == s_id, START, np.where(node_path == e_id, END, node_path))
        latents = nodes.copy() if num_frames is None else resample_path(nodes, num_frames)
        return GraphPath(nodes=nodes, node_indices=indices, length=length, latents=latents)

    def interpolate(self, model, x_start, x_end, num_frames=None, method="astar"):
        """Decoded graph interpolation between two images (Sec. 2.3).

        Args:
          model: a model with `encode`, `decode` and `data_shape` (e.g. `trainers.VAE`) whose
            latent space this graph lives in.
          x_start: one image [H, W, C] (or [1, H, W, C]); its posterior mean is the start.
          x_end: one image [H, W, C] (or [1, H, W, C]).
          num_frames: None (decode the path nodes) or T >= 2 frames equally spaced in arc
            length.
          method: "astar" or "dijkstra".

        Returns:
          `Interpolation` with latents [T, D], images [T, H, W, C] and the `GraphPath`.

        Raises:
          ValueError / DisconnectedGraphError: as `shortest_path`, or on bad images.
        """
        z_start, z_end = encode_endpoints(model, x_start, x_end)        # [D], [D]
        path = self.shortest_path(z_start, z_end, num_frames=num_frames, method=method)
        return Interpolation(latents=path.latents, images=decode_latents(model, path.latents),
                             path=path)

    def _weights(self, z_a, z_b, lengths):
        if self._edge_weight is None:
            return lengths
        weights = np.asarray(self._edge_weight(z_a, z_b), dtype=np.float64)
        if weights.shape != lengths.shape:
            raise ValueError(f"Expected `edge_weight` to return one weight per edge, shape "
                             f"{lengths.shape}. Received an array of shape {weights.shape}")
        if not np.all(np.isfinite(weights)) or np.any(weights < 0):
            raise ValueError("Expected `edge_weight` to return finite non-negative weights. "
                             f"Received: min={np.nanmin(weights)!r}, "
                             f"non-finite entries={int(np.sum(~np.isfinite(weights)))}")
        return weights

    def _endpoint_edges(self, start, end):
        """Edges [E', 2] (graph ids, start = N, end = N + 1) and their Euclidean lengths [E']."""
        n, k = self.num_nodes, self._k
        edges, radii = [], []
        for node_id, q in ((n, start), (n + 1, end)):
            d = np.linalg.norm(self._points - q[None], axis=1)            # [N]
            nearest = np.argpartition(d, k - 1)[:k]                       # [k]
            linked = np.union1d(nearest, np.flatnonzero(d <= self._radius))
            edges.append(np.stack([np.full(linked.shape, node_id), linked], axis=1))
            radii.append(np.max(d[nearest]))
        if np.linalg.norm(start - end) <= max(radii):
            edges.append(np.array([[n, n + 1]]))
        edges = np.concatenate(edges).astype(np.int64)                    # [E', 2]
        coords = np.concatenate([self._points, start[None], end[None]])   # [N+2, D]
        lengths = np.linalg.norm(coords[edges[:, 0]] - coords[edges[:, 1]], axis=1)
        return edges, lengths

    def _disconnected_message(self, s_id, e_id):
        comp_s = nx.node_connected_component(self._graph, s_id)
        comp_e = nx.node_connected_component(self._graph, e_id)
        num_components = nx.number_connected_components(self._graph.subgraph(range(s_id)))
        return (f"Expected start and end to be connected through the kNN graph. Received: they "
                f"lie in different connected components (sizes {len(comp_s) - 1} and "
                f"{len(comp_e) - 1} graph nodes; the graph has {num_components} components "
                f"with N={self.num_nodes}, k={self._k}). Use a larger `k` or more nodes "
                f"(`num_nodes`), or check that the endpoints lie near the prior's support")


def resample_path(nodes, num_frames):
    """Resamples a polyline to `num_frames` points equally spaced along its arc length.

    With cumulative lengths s_0 = 0, s_p = sum_{q<p} ||z_{q+1} - z_q|| and L = s_{P-1}, frame t
    is the point at arc length t L / (T - 1) (linear interpolation inside a segment); frame 0
    is nodes[0] and frame T - 1 is nodes[-1] exactly. A path of length 0 gives T copies.

    Args:
      nodes: array-like [P, D], P >= 1.
      num_frames: T >= 2.

    Returns:
      float64 [T, D].

    Raises:
      ValueError: on a bad shape, non-finite nodes or T < 2.
    """
    nodes = _check_points(nodes, name="nodes", min_rows=1)
    num_frames = _check_num_frames(num_frames)
    if nodes.shape[0] == 1:
        return np.repeat(nodes, num_frames, axis=0)
    seg = np.linalg.norm(np.diff(nodes, axis=0), axis=1)                  # [P-1]
    cum = np.concatenate([[0.0], np.cumsum(seg)])                         # [P]
    targets = np.linspace(0.0, cum[-1], num_frames)                       # [T]
    i = np.clip(np.searchsorted(cum, targets, side="right") - 1, 0, nodes.shape[0] - 2)   # [T]
    seg_len = seg[i]                                                      # [T]
    frac = np.divide(targets - cum[i], seg_len, out=np.zeros_like(targets), where=seg_len > 0)
    frac = np.clip(frac, 0.0, 1.0)[:, None]                               # [T, 1]
    frames = (1.0 - frac) * nodes[i] + frac * nodes[i + 1]                # [T, D]
    frames[0], frames[-1] = nodes[0], nodes[-1]
    return frames


def graph_interpolation(model, x_start, x_end, num_nodes=1000, k=18, seed=0, num_frames=None,
                        method="astar"):
    """One-off graph interpolation: builds `LatentGraph.from_model` and interpolates.

    Defaults follow the pendulum set-up (1000 nodes, 18 neighbours; App. F, Table 3). To
    interpolate several pairs, build the graph once and call `LatentGraph.interpolate`.

    Returns:
      `Interpolation` with latents [T, D], images [T, H, W, C] and the `GraphPath`.
    """
    graph = LatentGraph.from_model(model, num_nodes, k, seed=seed)
    return graph.interpolate(model, x_start, x_end, num_frames=num_frames, method=method)


def _heuristic_scale(weights, lengths, default):
    """min over edges with positive length of weight / length (`default` if there are none)."""
    positive = lengths > 0
    if not np.any(positive):
        return default
    return float(np.min(weights[positive] / lengths[positive]))
