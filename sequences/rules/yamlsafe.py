"""YAML that cannot blow up: bounded nesting, aliases and expanded size (shipyards, job definitions).

PyYAML shares an aliased node instead of copying it, so a few hundred bytes of `&a [*b, *b, ...]` build a
document that only becomes huge when something walks it (our validators, JSON snapshots of task
properties). Composing with a depth limit also keeps a deeply nested document from exhausting Python's
recursion. Nothing of a refused document is built.
"""

import re

import yaml

MAX_DEPTH = 64  # nested mappings and lists
MAX_ALIASES = 100  # `*name` references in one document
MAX_NODES = 20_000  # nodes of the document with every alias expanded


class YamlLimitError(ValueError):
    """A document beyond the limits; `line` is where the limit was passed (1-based)."""

    def __init__(self, line: int, message: str):
        super().__init__(message)
        self.line = line
        self.message = message


class _BoundedLoader(yaml.SafeLoader):
    def __init__(self, stream):
        super().__init__(stream)
        self._depth = 0
        self._aliases = 0

    def compose_node(self, parent, index):
        event = self.peek_event()
        if isinstance(event, yaml.AliasEvent):
            self._aliases += 1
            if self._aliases > MAX_ALIASES:
                raise YamlLimitError(event.start_mark.line + 1,
                                     f"more than {MAX_ALIASES} YAML aliases (*name) are not accepted")
        self._depth += 1
        try:
            if self._depth > MAX_DEPTH:
                raise YamlLimitError(event.start_mark.line + 1,
                                     f"nested more than {MAX_DEPTH} levels deep")
            return super().compose_node(parent, index)
        finally:
            self._depth -= 1


def _expanded_size(root) -> int:
    """Count the nodes as a walk that follows every alias would see them, stopping past MAX_NODES."""
    count, stack = 0, [root]
    while stack:
        node = stack.pop()
        count += 1
        if count > MAX_NODES:
            raise YamlLimitError(node.start_mark.line + 1,
                                 f"the document expands to more than {MAX_NODES} nodes")
        if isinstance(node, yaml.MappingNode):
            for key, value in node.value:
                stack.append(key)
                stack.append(value)
        elif isinstance(node, yaml.SequenceNode):
            stack.extend(node.value)
    return count


def load(text: str, error: type[Exception]):
    """(root node, data) of a document, or `error("line N: document: ...")` for bad or oversized YAML."""
    try:
        return compose_and_load(text)
    except YamlLimitError as exc:
        raise error(f"line {exc.line}: document: {exc.message}") from None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        problem = getattr(exc, "problem", None) or str(exc)
        raise error(f"line {mark.line + 1 if mark else 1}: document: not valid YAML ({problem})") from None


def compose_and_load(text: str):
    """(root node, Python data) of one YAML document, or YamlLimitError / yaml.YAMLError."""
    loader = _BoundedLoader(text)
    try:
        root = loader.get_single_node()
        if root is None:
            return None, None
        _expanded_size(root)
        return root, loader.construct_document(root)
    finally:
        loader.dispose()


class Locator:
    """Remembers the line of every node of a YAML document, by its path (spec.stages[0].name)."""

    def __init__(self, root):
        self.lines: dict[str, int] = {}
        self._walk(root, "")

    def _walk(self, node, path):
        self.lines[path] = node.start_mark.line + 1
        if isinstance(node, yaml.MappingNode):
            for key, value in node.value:
                child = f"{path}.{key.value}" if path else str(key.value)
                self.lines[child + "#key"] = key.start_mark.line + 1
                self._walk(value, child)
        elif isinstance(node, yaml.SequenceNode):
            for index, item in enumerate(node.value):
                self._walk(item, f"{path}[{index}]")

    def line(self, path: str) -> int:
        while path:
            if path in self.lines:
                return self.lines[path]
            shorter = re.sub(r"(\.[^.\[]*|\[\d+\])$", "", path)
            path = "" if shorter == path else shorter
        return self.lines.get("", 1)
