"""Point labels that do not print over each other: each goes to the first free spot around its
marker (greedy, in drawing order), with a leader line when it had to move away. Deterministic
and one pass, so a regenerated figure is the same figure (an iterative repeller such as
adjustText moves labels until they settle)."""

from __future__ import annotations

from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.collections import LineCollection
from matplotlib.figure import Figure
from matplotlib.text import Text
from matplotlib.transforms import Bbox

# Where a label may go, in points from its marker: to the right, just above or below it, then
# further out (with a leader line), then the same to the left.
OFFSETS = [(dx, dy) for dx in (6, -6) for k in range(6) for dy in (4 + 11 * k, -11 - 11 * k)]


def label_points(fig: Figure, ax, points: list[tuple[float, float, str]]) -> None:
    """Annotate each point at the first offset whose text overlaps no label placed before it,
    no marker or error bar, nor the legend; else where it covers the fewest labels (text over
    text is unreadable, text over a bar is not), then the fewest marks: points of one size no
    longer share a spot."""
    renderer = FigureCanvasAgg(fig).get_renderer()
    ax.autoscale_view()
    labels = [ax.get_legend().get_window_extent(renderer)] if ax.get_legend() else []
    marks = _marks(ax, points)
    for x, y, text in points:
        tried = []  # ((labels covered, marks covered), offset)
        for dx, dy in OFFSETS:
            label = _label(ax, x, y, text, dx, dy)
            box = text_box(label, renderer)
            label.remove()
            crowd = (sum(map(box.overlaps, labels)), sum(map(box.overlaps, marks)))
            tried.append((crowd, (dx, dy)))
            if crowd == (0, 0):
                break
        label = _label(ax, x, y, text, *min(tried, key=lambda t: t[0])[1])
        labels.append(text_box(label, renderer))


def _marks(ax, points) -> list[Bbox]:
    """The markers and error bars a label must not cover (in display pixels): a box a few pixels
    around each point, and each bar of an errorbar (a LineCollection's segments)."""
    to_px = ax.transData.transform
    boxes = [Bbox.from_bounds(px - 4, py - 4, 8, 8) for px, py in to_px([p[:2] for p in points])]
    for bars in (c for c in ax.collections if isinstance(c, LineCollection)):
        boxes += [Bbox([px.min(0), px.max(0)]).padded(2)
                  for px in map(to_px, bars.get_segments())]
    return boxes


def text_box(label, renderer):
    """Where an annotation's text lies, without its leader line (which may cross others)."""
    label.update_positions(renderer)
    return Text.get_window_extent(label, renderer)


def _label(ax, x: float, y: float, text: str, dx: int, dy: int):
    far = abs(dy) > 11  # away from its marker: a leader line says whose it is
    return ax.annotate(text, (x, y), textcoords="offset points", xytext=(dx, dy), fontsize=7,
                       ha="left" if dx > 0 else "right", va="center" if far else "baseline",
                       arrowprops=dict(arrowstyle="-", color="grey", lw=0.5, shrinkA=0,
                                       shrinkB=4) if far else None)
