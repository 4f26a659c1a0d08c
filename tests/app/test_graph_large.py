"""Issue 19, large graphs: zoom works from wherever Fit puts it, a search box and the table
reveal a task, edges go around boxes, order-only edges are dashed, resize re-fits."""

import shutil

import pytest
from PySide6.QtCore import QPointF, QRectF, Qt

from gristmill.app import resources

from gristmill.app.graph_layout import NODE_H, NODE_W, build_layout, group_node_id
from gristmill.app.models.task_table import TaskTableModel
from gristmill.app.runstate import RunState
from gristmill.app.selection import Selection
from gristmill.app.views.graph import GraphPane, edge_path
from gristmill.core.decide.graph import TaskGraph
from gristmill.core.workflow import Task, Workflow

from app_helpers import chain_workflow


def make_pane(qtbot, wf, size=(900, 600)):
    run = RunState()
    model = TaskTableModel(run)
    model.set_workflow(wf)
    selection = Selection()
    pane = GraphPane(selection, model.state, states_of=model.states)
    qtbot.addWidget(pane)
    pane.resize(*size)
    pane.show()
    qtbot.waitExposed(pane)
    pane.set_workflow(wf, TaskGraph(wf))
    return pane, selection


def on_screen_width(pane, item) -> float:
    return pane.view.mapFromScene(item.sceneBoundingRect()).boundingRect().width()


def view_centre(pane) -> QPointF:
    return pane.view.mapToScene(pane.view.viewport().rect().center())


def test_an_expanded_2500_instance_fan_out_is_drawn_and_zooms_from_where_fit_puts_it(qtbot, tmp_path):
    wf = chain_workflow(tmp_path, n=1, fanout=2500)
    pane, _ = make_pane(qtbot, wf)
    pane.expand("leaf")
    assert len(pane.items) == 2501
    pane.view.fit()
    fitted = pane.view.transform().m11()
    # not a blank canvas: the boxes are visible at Fit (a block of columns, not one tall column)
    assert on_screen_width(pane, pane.items["leaf[items/7.txt]"]) >= 6
    pane.zoom_in_button.click()
    assert pane.view.transform().m11() > fitted
    pane.zoom_out_button.click()
    pane.zoom_out_button.click()
    assert pane.view.transform().m11() < fitted
    pane.fit_button.click()
    assert pane.view.transform().m11() == fitted


def test_zoom_in_works_even_when_fit_sets_a_tiny_scale(qtbot, tmp_path):
    wf = chain_workflow(tmp_path, n=400)          # a chain 400 layers wide: Fit is ~0.01
    pane, _ = make_pane(qtbot, wf, size=(600, 400))
    pane.view.fit()
    fitted = pane.view.transform().m11()
    assert fitted < 0.02
    pane.zoom_in_button.click()
    assert pane.view.transform().m11() > fitted
    pane.fit_button.click()
    pane.zoom_out_button.click()
    assert pane.view.transform().m11() < fitted


def test_the_search_box_selects_and_centres_a_task(qtbot, tmp_path):
    wf = chain_workflow(tmp_path, n=1, fanout=2500)
    pane, selection = make_pane(qtbot, wf)
    pane.expand("leaf")
    pane.view.fit()
    pane.search.setText("items/1234.")
    qtbot.keyClick(pane.search, Qt.Key.Key_Return)
    assert selection.names == ("leaf[items/1234.txt]",)
    item = pane.items["leaf[items/1234.txt]"]
    assert item.isSelected()
    assert (view_centre(pane) - item.sceneBoundingRect().center()).manhattanLength() < 40
    assert on_screen_width(pane, item) > 80          # big enough to read its name


def test_searching_a_task_in_a_collapsed_fan_out_shows_its_group(qtbot, tmp_path):
    wf = chain_workflow(tmp_path, n=1, fanout=50)
    pane, selection = make_pane(qtbot, wf)
    assert pane.find_task("leaf[items/3") == "leaf[items/3.txt]"
    assert pane.items[group_node_id("leaf")].isSelected()
    assert pane.find_task("nothing-like-it") is None
    assert "No task matches" in pane.info.text()


def test_a_table_selection_centres_the_graph_on_the_task(qtbot, window, tmp_path):
    (tmp_path / "items").mkdir()
    for i in range(300):
        (tmp_path / "items" / f"{i:03d}.txt").write_text("x")
    (tmp_path / "gristmill.toml").write_text(
        '[tasks.one]\nforeach = "items/*.txt"\ncmd = "cp {input} {output}"\n'
        'inputs = ["{item}"]\noutputs = ["out/{name}"]\n')
    window.resize(1200, 800)
    window.open_path(str(tmp_path))
    window.show_tab(window.graph)
    pane = window.graph
    pane.expand("one")
    pane.view.fit()
    proxy = window.table.view.model()
    name = "one[items/250.txt]"
    row = next(r for r in range(proxy.rowCount())
               if proxy.index(r, 0).data(Qt.ItemDataRole.ToolTipRole) == name
               or proxy.index(r, 0).data(Qt.ItemDataRole.UserRole) == name
               or name.endswith(str(proxy.index(r, 0).data()).split("[")[-1]))
    window.table.view.selectRow(row)
    assert window.selection.names == (name,)
    item = pane.items[name]
    assert item.isSelected()
    shown = pane.view.mapFromScene(item.sceneBoundingRect()).boundingRect()
    assert pane.view.viewport().rect().contains(shown)       # on screen (centred, or as near
    assert shown.width() > 80                                # as the scene's edge allows), readable


def _diamond(root, order_only=True) -> Workflow:
    """a -> b -> c and a -> c: the long edge a -> c passes the layer of b; d runs after a only."""
    t = {
        "a": Task(name="a", commands=("true",), outputs=("a.out",), group="a", cwd=str(root)),
        "b": Task(name="b", commands=("true",), inputs=("a.out",), outputs=("b.out",), group="b",
                  cwd=str(root)),
        "c": Task(name="c", commands=("true",), inputs=("a.out", "b.out"), outputs=("c.out",),
                  group="c", cwd=str(root)),
        "d": Task(name="d", commands=("true",), outputs=("d.out",), after=("a",), group="d",
                  cwd=str(root)),
    }
    if not order_only:
        del t["d"]
    return Workflow(name="diamond", path=root / "gristmill.toml", root=root, tasks=t,
                    default=tuple(t))


def _crossings(layout):
    boxes = {n: QRectF(x, y, NODE_W, NODE_H) for n, (x, y) in layout.pos.items()}
    found = []
    for a, b in layout.edges:
        path = edge_path(layout, [(a, b)])
        points = [path.pointAtPercent(i / 400) for i in range(401)]
        found += [(a, b, n) for n, box in boxes.items()
                  if n not in (a, b) and any(box.contains(p) for p in points)]
    return found


@pytest.mark.skipif(shutil.which("make") is None, reason="needs GNU make")
def test_in_make_c_bin_to_bin_shapes_goes_around_the_objects_and_is_dashed(qtbot, window, tmp_path):
    folder = tmp_path / "make-c"
    shutil.copytree(resources.example("make-c"), folder)
    window.open_path(str(folder))
    qtbot.waitUntil(lambda: window.graph.layout_ is not None, timeout=15000)
    layout = window.graph.layout_
    assert ("bin", "bin/shapes") in layout.edges
    assert _crossings(layout) == []
    assert ("bin", "bin/shapes") in layout.order_only          # `bin/shapes: ... | bin`
    assert ("build/libshapes.a", "bin/shapes") not in layout.order_only


def test_an_edge_passes_no_other_box(qtbot, tmp_path):
    wf = _diamond(tmp_path, order_only=False)
    g = TaskGraph(wf)
    layout = build_layout(g.order, g.deps, wf.groups())
    boxes = {n: QRectF(x, y, NODE_W, NODE_H) for n, (x, y) in layout.pos.items()}
    assert ("a", "c") in layout.edges
    assert _crossings(layout) == []
    for a, b in layout.edges:
        path = edge_path(layout, [(a, b)])
        points = [path.pointAtPercent(i / 400) for i in range(401)]
        for n, box in boxes.items():
            if n in (a, b):
                continue
            assert not any(box.contains(p) for p in points), f"{a} -> {b} crosses {n}"


def test_order_only_edges_are_dashed(qtbot, tmp_path):
    wf = _diamond(tmp_path)
    pane, _ = make_pane(qtbot, wf)
    assert pane.layout_.order_only == {("a", "d")}
    assert pane._order_edges.pen().style() == Qt.PenStyle.DashLine
    assert pane._edges.pen().style() == Qt.PenStyle.SolidLine
    d = pane.layout_.pos["d"]
    assert pane._order_edges.path().contains(QPointF(d[0], d[1] + NODE_H / 2)) or \
        pane._order_edges.path().currentPosition() == QPointF(d[0], d[1] + NODE_H / 2)


def test_resize_refits_until_the_user_zooms(qtbot, tmp_path):
    wf = chain_workflow(tmp_path, n=40)
    pane, _ = make_pane(qtbot, wf, size=(500, 400))
    small = pane.view.transform().m11()
    pane.resize(1000, 700)
    qtbot.wait(20)
    bigger = pane.view.transform().m11()
    assert bigger > small
    pane.zoom_in_button.click()
    zoomed = pane.view.transform().m11()
    pane.resize(700, 500)
    qtbot.wait(20)
    assert pane.view.transform().m11() == zoomed
