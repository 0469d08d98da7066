"""Editing an ONNX graph for the INT8 rewrite (emotion_onnx_export.int8): fresh names, new
constants and nodes, each node replaced by what a rewrite returns, and the clean-up after. It
knows nothing of quantisation."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable

import numpy as np

MS = "com.microsoft"


def drop_dead_nodes(graph) -> None:
    """Remove the nodes of an ONNX graph whose outputs nothing reads, directly or through
    other nodes, up to the graph outputs."""
    live = {o.name for o in graph.output}
    kept = []
    for node in reversed(list(graph.node)):
        if any(out in live for out in node.output):
            kept.append(node)
            live.update(node.input)
    del graph.node[:]
    graph.node.extend(reversed(kept))


class GraphEdit:
    """One model being rewritten: its constants by name, who produces and how often each tensor
    is read, the constants added, and counts of what the rewrites did (`stats`)."""

    def __init__(self, model):
        from onnx import numpy_helper

        self.onnx_np = numpy_helper
        self.model = model
        self.graph = model.graph
        self.inits = {t.name: t for t in self.graph.initializer}
        self.new_inits: list = []
        self.counter = 0
        self.uses: dict[str, int] = defaultdict(int)
        self.producer: dict[str, str] = {}
        for node in self.graph.node:
            for name in node.input:
                self.uses[name] += 1
            for name in node.output:
                self.producer[name] = node.op_type
        self.stats: dict[str, int] = defaultdict(int)

    def uid(self, base: str) -> str:
        self.counter += 1
        return f"{base}_q{self.counter}"

    def const(self, name: str, array: np.ndarray) -> str:
        name = self.uid(name)
        self.new_inits.append(self.onnx_np.from_array(array, name))
        return name

    def array(self, name: str) -> np.ndarray | None:
        t = self.inits.get(name)
        return None if t is None else self.onnx_np.to_array(t)

    def node(self, op: str, inputs: list[str], n_out: int = 1, domain: str = "", **attrs):
        from onnx import helper

        outs = [self.uid(f"{op}_out") for _ in range(n_out)]
        made = helper.make_node(op, inputs, outs, name=self.uid(op), domain=domain, **attrs)
        return made, outs

    def replace_nodes(self, rewrites: dict[tuple[str, str], Callable]) -> None:
        """Each node whose (domain, op type) has a rewrite becomes the nodes it returns (None:
        the node stays as it is), in graph order."""
        new_nodes = []
        for node in self.graph.node:
            rewrite = rewrites.get((node.domain or "", node.op_type))
            replacement = rewrite(node) if rewrite else None
            if replacement is None:
                new_nodes.append(node)
            else:
                new_nodes += replacement
        del self.graph.node[:]
        self.graph.node.extend(new_nodes)

    def finish(self) -> None:
        """Keep only the constants some node reads (the new ones after the old), and declare the
        com.microsoft opset the contrib ops need."""
        used = {name for n in self.graph.node for name in n.input}
        kept = [t for t in self.graph.initializer if t.name in used]
        del self.graph.initializer[:]
        self.graph.initializer.extend(kept + [t for t in self.new_inits if t.name in used])
        if not any(op.domain == MS for op in self.model.opset_import):
            from onnx import helper

            self.model.opset_import.append(helper.make_opsetid(MS, 1))
