"""Latent-space interpolation: linear, kNN-graph shortest path (Klushyn et al. 2019, Sec. 2.3),
the shortest likely path (Lin & Clark 2020, Sec. 3.4) and the smoothness factor of an
interpolated path (Klushyn et al., Sec. 4.2)."""

from tfpriors.interpolation.graph import (END, START, DisconnectedGraphError, GraphPath,
                                          LatentGraph, graph_interpolation, resample_path)
from tfpriors.interpolation.linear import (Interpolation, decode_latents, encode_endpoints,
                                           linear_interpolation, linear_path)
from tfpriors.interpolation.slp import (SLPResult, hyper_latents_to_code, shortest_likely_path,
                                        slp_interpolation, slp_objective)
from tfpriors.interpolation.smoothness import second_difference, smoothness_factor

__all__ = ["Interpolation", "linear_path", "linear_interpolation", "encode_endpoints",
           "decode_latents", "LatentGraph", "GraphPath", "DisconnectedGraphError",
           "resample_path", "graph_interpolation", "START", "END", "second_difference",
           "smoothness_factor", "SLPResult", "shortest_likely_path", "slp_objective",
           "slp_interpolation", "hyper_latents_to_code"]
