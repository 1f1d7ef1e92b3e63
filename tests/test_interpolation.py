"""Tests for tfpriors.interpolation: linear paths, the kNN-graph shortest path, smoothness."""

import math

import numpy as np
import pytest
from scipy.sparse import coo_matrix
from scipy.sparse.csgraph import dijkstra

from tests.helpers import SHAPE, binary_images, make_vae
from tfpriors.interpolation import (END, START, DisconnectedGraphError, LatentGraph,
                                    graph_interpolation, linear_interpolation, linear_path,
                                    resample_path, second_difference, smoothness_factor)


def ring(num_points=300, noise=0.01, seed=0):
    rng = np.random.default_rng(seed)
    # Evenly spaced angles with jitter: a kNN graph with small k stays one ring (purely uniform
    # draws leave gaps that split it, which the disconnected-graph test covers instead).
    spacing = 2.0 * math.pi / num_points
    theta = np.arange(num_points) * spacing + rng.uniform(-0.3, 0.3, num_points) * spacing
    radius = 1.0 + rng.uniform(-noise, noise, num_points)
    return np.stack([radius * np.cos(theta), radius * np.sin(theta)], axis=1)


def polyline_length(nodes):
    return float(np.sum(np.linalg.norm(np.diff(nodes, axis=0), axis=1)))


def brute_force_knn_distances(points, k):
    """Reference: all-pairs shortest path lengths on the symmetrised kNN graph (numpy + scipy)."""
    d = np.linalg.norm(points[:, None] - points[None], axis=-1)
    np.fill_diagonal(d, np.inf)
    nbr = np.argsort(d, axis=1)[:, :k]
    rows = np.repeat(np.arange(len(points)), k)
    w = d[rows, nbr.ravel()]
    adj = coo_matrix((w, (rows, nbr.ravel())), shape=d.shape).toarray()
    adj = np.maximum(adj, adj.T)
    return dijkstra(adj, directed=False)


# --- linear ---------------------------------------------------------------------------------

def test_linear_path_closed_form():
    a, b = np.array([1.0, -2.0, 0.5]), np.array([3.0, 2.0, -0.5])
    path = linear_path(a, b, 5)
    np.testing.assert_allclose(path, [a + t * (b - a) for t in (0, .25, .5, .75, 1)], atol=1e-15)
    assert np.array_equal(path[0], a) and np.array_equal(path[-1], b)


def test_linear_interpolation_decodes_encoded_endpoints():
    model = make_vae("vampprior")
    x = binary_images(2, seed=3)
    out = linear_interpolation(model, x[0], x[1:2], num_steps=6)
    z = np.asarray(model.encode(x), np.float64)
    assert out.latents.shape == (6, 3) and out.images.shape == (6,) + SHAPE
    np.testing.assert_allclose(out.latents[0], z[0], rtol=1e-6)
    np.testing.assert_allclose(out.latents[-1], z[1], rtol=1e-6)
    np.testing.assert_allclose(out.images, model.decode(out.latents.astype("float32")),
                               atol=1e-6)


@pytest.mark.parametrize("kwargs, match", [
    (dict(z_start=[0.0, 1.0], z_end=[1.0], num_steps=3), r"shape \(2,\).*\(1,\)"),
    (dict(z_start=[0.0], z_end=[1.0], num_steps=1), "num_steps` >= 2"),
    (dict(z_start=[[0.0]], z_end=[1.0], num_steps=3), r"vector \[D\].*\(1, 1\)"),
    (dict(z_start=[np.nan], z_end=[1.0], num_steps=3), "finite"),
])
def test_linear_path_bad_inputs(kwargs, match):
    with pytest.raises(ValueError, match=match):
        linear_path(**kwargs)


def test_linear_interpolation_bad_image_shape():
    model = make_vae("standard_normal")
    with pytest.raises(ValueError, match=r"Expected `x_start`.*\(4, 4, 1\).*\(5, 4, 1\)"):
        linear_interpolation(model, np.zeros((5, 4, 1)), np.zeros(SHAPE), 3)


# --- graph ----------------------------------------------------------------------------------

def test_ring_path_goes_round_not_through_the_middle():
    points = ring()
    graph = LatentGraph.from_points(points, k=4)
    eps = 0.05
    start, end = np.array([1.0, 0.0]), np.array([math.cos(math.pi - eps), math.sin(math.pi - eps)])
    path = graph.shortest_path(start, end)
    radii = np.linalg.norm(path.nodes, axis=1)
    assert np.all(np.abs(radii - 1.0) < 0.02), radii.min()
    # Short hops along the ring: no edge cuts across (a chord edge would have length ~1 or more).
    assert np.max(np.linalg.norm(np.diff(path.nodes, axis=0), axis=1)) < 0.1
    # The shorter arc (upper half), travelled in order, close to the arc length pi - eps
    # (a straight chord through the middle would be length < 2).
    angles = np.arctan2(path.nodes[:, 1], path.nodes[:, 0])
    assert np.all(angles > -0.05) and np.all(np.diff(angles) > -0.02)
    assert abs(path.length - (math.pi - eps)) < 0.02 * math.pi
    assert path.length == pytest.approx(polyline_length(path.nodes), rel=1e-12)
    assert path.node_indices[0] == START and path.node_indices[-1] == END
    np.testing.assert_array_equal(path.nodes[1:-1], points[path.node_indices[1:-1]])
    # The graph is reusable: the temporary endpoint nodes are gone, the other way round works.
    assert graph.graph.number_of_nodes() == 300
    back = graph.shortest_path(end, start)
    assert back.length == pytest.approx(path.length, rel=1e-12)


def test_astar_equals_dijkstra_and_brute_force_reference():
    rng = np.random.default_rng(1)
    points = rng.normal(size=(200, 3))
    k = 5
    graph = LatentGraph.from_points(points, k=k)
    ref = brute_force_knn_distances(points, k)
    for i, j in [(0, 1), (5, 150), (42, 199), (17, 3)]:
        # An endpoint equal to a graph node gets a zero-length edge to it and otherwise only
        # edges that node already has, so the path length is the graph distance.
        a = graph.shortest_path(points[i], points[j], method="astar")
        d = graph.shortest_path(points[i], points[j], method="dijkstra")
        assert a.length == pytest.approx(ref[i, j], rel=1e-9)
        assert d.length == pytest.approx(ref[i, j], rel=1e-9)
    for _ in range(4):
        start, end = rng.normal(size=(2, 3))
        a = graph.shortest_path(start, end, method="astar")
        d = graph.shortest_path(start, end, method="dijkstra")
        np.testing.assert_array_equal(a.node_indices, d.node_indices)
        assert a.length == pytest.approx(d.length, rel=1e-12)


def test_graph_edges_are_symmetrised_knn():
    rng = np.random.default_rng(2)
    points = rng.normal(size=(40, 2))
    graph = LatentGraph.from_points(points, k=3)
    d = np.linalg.norm(points[:, None] - points[None], axis=-1)
    np.fill_diagonal(d, np.inf)
    nbr = np.argsort(d, axis=1)[:, :3]
    expected = {tuple(sorted((i, int(j)))) for i in range(40) for j in nbr[i]}
    pairs, weights = graph.edges
    assert {tuple(p) for p in pairs.tolist()} == expected
    np.testing.assert_allclose(weights, d[pairs[:, 0], pairs[:, 1]], rtol=1e-12)


def test_custom_edge_weight_astar_stays_exact():
    """A density-style weight (LaDDer reuse): A* with the scaled heuristic equals Dijkstra."""
    rng = np.random.default_rng(3)
    points = rng.normal(size=(150, 2))

    bump = np.array([0.0, 0.05])

    def weight(za, zb):  # 0.3 x length x a penalty for a "low-density" bump near `bump`
        mid = 0.5 * (za + zb)
        penalty = 1.0 + 50.0 * np.exp(-np.sum((mid - bump) ** 2, axis=1) / 0.1)
        return 0.3 * np.linalg.norm(za - zb, axis=1) * penalty

    graph = LatentGraph.from_points(points, k=6, edge_weight=weight)
    start, end = np.array([-1.5, 0.0]), np.array([1.5, 0.1])
    a = graph.shortest_path(start, end, method="astar")
    d = graph.shortest_path(start, end, method="dijkstra")
    assert a.length == pytest.approx(d.length, rel=1e-12)
    np.testing.assert_allclose(a.length, np.sum(weight(a.nodes[:-1], a.nodes[1:])), rtol=1e-12)
    plain = LatentGraph.from_points(points, k=6).shortest_path(start, end)
    # The plain shortest path crosses the bump, the penalised one goes around it.
    assert np.min(np.linalg.norm(plain.nodes - bump, axis=1)) < 0.25
    assert np.min(np.linalg.norm(a.nodes - bump, axis=1)) > 0.4
    assert polyline_length(a.nodes) > polyline_length(plain.nodes)


def test_disconnected_graph_raises_clear_error():
    rng = np.random.default_rng(4)
    points = np.concatenate([rng.normal(size=(30, 2)) * 0.1, rng.normal(size=(30, 2)) * 0.1 + 10])
    graph = LatentGraph.from_points(points, k=3)
    assert graph.num_components >= 2
    with pytest.raises(DisconnectedGraphError, match=r"larger `k`.*num_nodes"):
        graph.shortest_path(points[0], points[40])
    assert issubclass(DisconnectedGraphError, ValueError)
    assert graph.graph.number_of_nodes() == 60  # endpoints removed after the failure
    graph.shortest_path(points[0], points[5])   # still usable within a component


@pytest.mark.parametrize("points, k, match", [
    (np.zeros((10, 2)), 0, "positive int.*k=0"),
    (np.zeros((5, 2)), 5, r"N > k.*N=5, k=5"),
    (np.zeros(10), 2, r"\[N, D\].*\(10,\)"),
    (np.full((10, 2), np.nan), 2, "finite"),
])
def test_graph_bad_construction(points, k, match):
    with pytest.raises(ValueError, match=match):
        LatentGraph.from_points(points, k)


def test_shortest_path_bad_endpoints():
    graph = LatentGraph.from_points(ring(50, seed=5), k=3)
    with pytest.raises(ValueError, match=r"`start` of shape \(2,\).*\(3,\)"):
        graph.shortest_path(np.zeros(3), np.zeros(2))
    with pytest.raises(ValueError, match="num_frames` >= 2"):
        graph.shortest_path(np.zeros(2), np.ones(2), num_frames=1)
    with pytest.raises(ValueError, match="method"):
        graph.shortest_path(np.zeros(2), np.ones(2), method="bfs")


def test_endpoint_edges_match_a_rebuilt_graph():
    """Endpoints get exactly the edges a kNN graph rebuilt with them included would give them."""
    rng = np.random.default_rng(9)
    points = rng.random((120, 2))
    start, end = np.array([0.3, 0.3]), np.array([0.8, 0.75])
    graph = LatentGraph.from_points(points, k=4)
    edges, lengths = graph._endpoint_edges(start, end)
    rebuilt_pairs, _ = LatentGraph.from_points(np.vstack([points, start, end]), k=4).edges
    for node in (120, 121):
        mine = set(edges[edges[:, 0] == node, 1].tolist())
        ref = set(rebuilt_pairs[rebuilt_pairs[:, 1] == node, 0].tolist())
        assert mine == ref and len(ref) >= 4
    coords = np.vstack([points, start, end])
    np.testing.assert_allclose(lengths, np.linalg.norm(coords[edges[:, 0]] - coords[edges[:, 1]],
                                                       axis=1))


def test_far_endpoint_links_to_its_nearest_nodes():
    points = ring(100, seed=6)
    graph = LatentGraph.from_points(points, k=3)
    path = graph.shortest_path(np.array([5.0, 0.0]), np.array([-1.0, 0.0]))
    assert path.node_indices[0] == START and np.linalg.norm(path.nodes[1]) < 1.1


def test_resample_path_equal_arc_length():
    nodes = np.array([[0.0, 0.0], [1.0, 0.0], [1.0, 0.0], [1.0, 3.0]])  # includes a 0-length step
    frames = resample_path(nodes, 5)
    np.testing.assert_allclose(frames, [[0, 0], [1, 0], [1, 1], [1, 2], [1, 3]], atol=1e-12)
    np.testing.assert_allclose(resample_path(np.ones((3, 2)), 4), np.ones((4, 2)))
    ring_path = LatentGraph.from_points(ring(), k=4).shortest_path(
        np.array([1.0, 0.0]), np.array([-1.0, 0.05]), num_frames=20)
    steps = np.linalg.norm(np.diff(ring_path.latents, axis=0), axis=1)
    assert ring_path.latents.shape == (20, 2)
    assert steps.max() - steps.min() < 0.1 * steps.mean()   # chords of equal arcs, up to corners
    np.testing.assert_array_equal(ring_path.latents[[0, -1]], ring_path.nodes[[0, -1]])


def test_graph_from_model_is_reproducible_and_interpolates():
    model = make_vae("mog")
    g1 = LatentGraph.from_model(model, num_nodes=60, k=5, seed=7)
    g2 = LatentGraph.from_model(model, num_nodes=60, k=5, seed=7)
    np.testing.assert_array_equal(g1.points, g2.points)
    z = model.prior_distribution().sample(60, seed=np.array([7, 0], np.int32))
    np.testing.assert_allclose(g1.points, np.asarray(z), rtol=1e-6)
    x = binary_images(2, seed=8)
    out = g1.interpolate(model, x[0], x[1], num_frames=7)
    zx = np.asarray(model.encode(x), np.float64)
    assert out.images.shape == (7,) + SHAPE and out.latents.shape == (7, 3)
    np.testing.assert_allclose(out.latents[[0, -1]], zx, rtol=1e-6)
    np.testing.assert_allclose(out.images, model.decode(out.latents.astype("float32")),
                               atol=1e-6)
    one_off = graph_interpolation(model, x[0], x[1], num_nodes=60, k=5, seed=7)
    np.testing.assert_allclose(one_off.latents, out.path.nodes, rtol=1e-12)
    with pytest.raises(ValueError, match="seed"):
        LatentGraph.from_model(model, 10, 2, seed=-1)


# --- smoothness -----------------------------------------------------------------------------

def test_smoothness_of_linear_ramp_is_zero():
    t = np.arange(6, dtype=np.float64)
    frames = t[:, None, None, None] * np.linspace(-1, 1, 8).reshape(1, 2, 4, 1) + 0.3
    assert smoothness_factor(frames) == pytest.approx(0.0, abs=1e-12)


def test_smoothness_known_sequence():
    # x = [0, 1, 4, 9, 10] in one feature and [0, 0, 0, 0, 2] in another:
    # d_1 = (2, 0), d_2 = (2, 0), d_3 = (-4, 2)  ->  mean square = (4 + 4 + 16 + 4) / 6 = 28 / 6
    frames = np.array([[0, 0], [1, 0], [4, 0], [9, 0], [10, 2]], dtype=np.float64)
    np.testing.assert_allclose(second_difference(frames), [[2, 0], [2, 0], [-4, 2]])
    assert smoothness_factor(frames) == pytest.approx(math.sqrt(28 / 6), rel=1e-12)
    np.testing.assert_allclose(smoothness_factor(frames, per_feature=True),
                               [math.sqrt(24 / 3), math.sqrt(4 / 3)], rtol=1e-12)


def test_smoothness_bad_inputs():
    with pytest.raises(ValueError, match=r"T >= 3.*\(2, 4\)"):
        smoothness_factor(np.zeros((2, 4)))
    with pytest.raises(ValueError, match="finite"):
        smoothness_factor(np.array([0.0, np.inf, 1.0]))
