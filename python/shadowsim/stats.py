"""Shaping stats.json's "stats" tree: values only, flat dotted names (as stats.csv)."""

import csv
import io

# A histogram's flat names, as stats.csv gives them (sim/stats_output.cpp, flatten()).
HISTOGRAM_FIELDS = ("count", "mean", "min", "max")


def is_leaf(node):
    """A statistic (with unit and description) rather than a group of them."""
    return isinstance(node, dict) and "unit" in node and "description" in node


def leaf_values(tree):
    """The tree with each statistic replaced by its value (a histogram by its numbers)."""
    out = {}
    for key, node in tree.items():
        if is_leaf(node):
            out[key] = node["value"] if "value" in node else {
                k: v for k, v in node.items() if k not in ("unit", "description")}
        else:
            out[key] = leaf_values(node)
    return out


def iter_leaves(tree, prefix=""):
    """(dotted name, leaf) for every statistic, in the tree's order."""
    for key, node in tree.items():
        name = prefix + key
        if is_leaf(node):
            yield name, node
        else:
            yield from iter_leaves(node, name + ".")


def flatten_stats(tree):
    """{dotted name: value}: counters and formulas as their value, histograms as
    NAME.count/.mean/.min/.max. Values keep their JSON types (int or float)."""
    flat = {}
    for name, leaf in iter_leaves(tree):
        if "value" in leaf:
            flat[name] = leaf["value"]
        else:
            for field in HISTOGRAM_FIELDS:
                flat[name + "." + field] = leaf[field]
    return flat


def flatten_units(tree):
    """{dotted name: unit} for the names flatten_stats() gives (a histogram's count:
    "samples", as stats.csv)."""
    units = {}
    for name, leaf in iter_leaves(tree):
        if "value" in leaf:
            units[name] = leaf["unit"]
        else:
            for field in HISTOGRAM_FIELDS:
                units[name + "." + field] = "samples" if field == "count" else leaf["unit"]
    return units


def parse_csv_rows(text):
    """[(name, unit, description)] of a stats.csv text, in its order."""
    reader = csv.reader(io.StringIO(text))
    header = next(reader)
    if header != ["name", "value", "unit", "description"]:
        raise ValueError("stats.csv: unexpected header {}".format(header))
    return [(row[0], row[2], row[3]) for row in reader if row]


def flatten_dict(tree, prefix=""):
    """{dotted path: value} of a nested dict (a config); lists stay values."""
    out = {}
    for key, value in tree.items():
        if isinstance(value, dict) and value:
            out.update(flatten_dict(value, prefix + key + "."))
        else:
            out[prefix + key] = value
    return out
