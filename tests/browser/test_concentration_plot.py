"""static/js/concentration_plot.js rendered by a real Chromium on a page that loads the vendored Chart.js."""

from __future__ import annotations

import base64
import copy
import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

if TYPE_CHECKING:
    from collections.abc import Iterator

    from playwright.sync_api import Browser, Page

pytestmark = pytest.mark.browser

STATIC = Path(__file__).resolve().parents[2] / "static"
CHART_JS = STATIC / "vendor" / "chartjs" / "chart.umd.min.js"
PLOT_JS = STATIC / "js" / "concentration_plot.js"
PLOT_CSS = STATIC / "css" / "plot.css"
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
MAP_BLUE = (11, 92, 171)


def _hours(start: float, stop: float, step: float) -> list[float]:
    count = round((stop - start) / step) + 1
    return [start + i * step for i in range(count)]


def _curve(times: list[float], scale: float) -> list[float]:
    """A saw-tooth of one-compartment infusions every 12 h: peaks after each dose, troughs before the next."""
    values = []
    for t in times:
        since_dose = t % 12
        rise = min(since_dose, 1.0)
        values.append(scale * (0.4 + 1.6 * rise) * (0.85 ** max(since_dose - 1.0, 0.0)))
    return values


TIMES = _hours(0, 60, 0.25)
MAP = _curve(TIMES, 10)
FORECAST_TIMES = _hours(50.25, 84, 0.25)
FULL_DOCUMENT: dict[str, Any] = {
    "t0": "2026-11-20T08:00:00+00:00",
    "unit": "mg/L",
    "now_h": 50.25,
    "times_h": TIMES,
    "map": MAP,
    "population": _curve(TIMES, 8),
    "bands": {
        "0.05": [v * 0.55 for v in MAP],
        "0.25": [v * 0.8 for v in MAP],
        "0.75": [v * 1.2 for v in MAP],
        "0.95": [v * 1.6 for v in MAP],
    },
    "band_kind": "credible",
    "observations": [
        {
            "time_h": 11.5,
            "value": 14.2,
            "excluded": False,
            "below_lloq": False,
            "lloq": None,
            "label": "trough 20 Nov 19:30",
        },
        {
            "time_h": 23.5,
            "value": 31.0,
            "excluded": True,
            "below_lloq": False,
            "lloq": None,
            "label": "trough 21 Nov 07:30",
        },
        {
            "time_h": 35.5,
            "value": None,
            "excluded": False,
            "below_lloq": True,
            "lloq": 2.0,
            "label": "trough 21 Nov 19:30",
        },
    ],
    "doses": [
        {"time_h": float(t), "amount_mg": 1000, "duration_h": 1, "route": "iv_infusion"}
        for t in range(0, 60, 12)
    ],
    "target": {
        "low": 10,
        "high": 15,
        "toxicity_limit": 20,
        "label": "trough 10-15 mg/L",
        "is_concentration": True,
    },
    "forecast": {
        "times_h": FORECAST_TIMES,
        "median": _curve(FORECAST_TIMES, 12),
        "bands": {
            "0.05": _curve(FORECAST_TIMES, 7),
            "0.95": _curve(FORECAST_TIMES, 18),
        },
        "label": "recommended: 1250 mg q12h",
    },
}
PRIOR_ONLY_DOCUMENT: dict[str, Any] = {
    "t0": "2026-11-20T08:00:00+00:00",
    "unit": "mg/L",
    "now_h": 5.0,
    "times_h": _hours(0, 24, 0.25),
    "map": None,
    "population": _curve(_hours(0, 24, 0.25), 8),
    "bands": None,
    "band_kind": "prior",
    "observations": [],
    "doses": [
        {"time_h": 0, "amount_mg": 1000, "duration_h": 1, "route": "iv_infusion"},
        {"time_h": 12, "amount_mg": 1000, "duration_h": 1, "route": "iv_infusion"},
    ],
    "target": None,
    "forecast": None,
}

# The datasets of a rendered chart, by role, with their label and number of points.
DATASETS_JS = """() => window.chart.data.datasets.map((d, i) => ({
    role: d.mipdRole, label: d.label, points: d.data.length, visible: window.chart.isDatasetVisible(i),
}))"""


@pytest.fixture
def plot_page(page: Page, tmp_path: Path) -> Iterator[Page]:
    """A blank page that loads Chart.js, the plot script and its CSS from the repository's static files."""
    html = tmp_path / "plot.html"
    html.write_text(
        "<!doctype html><html><head><meta charset='utf-8'>"
        f"<link rel='stylesheet' href='{PLOT_CSS.as_uri()}'>"
        f"<script src='{CHART_JS.as_uri()}'></script><script src='{PLOT_JS.as_uri()}'></script>"
        "</head><body><div id='plot'></div></body></html>",
        encoding="utf-8",
    )
    errors: list[str] = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    page.goto(html.as_uri())
    assert page.evaluate("typeof window.MipdPlot.render") == "function"
    yield page
    assert errors == [], f"JavaScript errors on the page: {errors}"


def render(page: Page, document: dict[str, Any]) -> dict[str, dict[str, Any]]:
    page.evaluate(
        "doc => { window.chart = MipdPlot.render(document.getElementById('plot'), doc); }",
        document,
    )
    return {dataset["role"]: dataset for dataset in page.evaluate(DATASETS_JS)}


def legend_texts(page: Page) -> list[str]:
    return page.evaluate("() => window.chart.legend.legendItems.map(item => item.text)")


def count_pixels_near(page: Page, rgb: tuple[int, int, int], tolerance: int = 24) -> dict[str, int]:
    """Pixels of the canvas that are drawn at all, and those close to one colour."""
    return page.evaluate(
        """([r, g, b, tol]) => {
            const canvas = document.querySelector('#plot canvas');
            const pixels = canvas.getContext('2d').getImageData(0, 0, canvas.width, canvas.height).data;
            let drawn = 0, near = 0;
            for (let i = 0; i < pixels.length; i += 4) {
                if (pixels[i + 3] === 0) continue;
                drawn++;
                if (Math.abs(pixels[i] - r) <= tol && Math.abs(pixels[i + 1] - g) <= tol
                    && Math.abs(pixels[i + 2] - b) <= tol && pixels[i + 3] > 200) near++;
            }
            return {drawn, near, total: pixels.length / 4};
        }""",
        [*rgb, tolerance],
    )


def test_it_draws_the_full_document_on_the_canvas(plot_page: Page) -> None:
    render(plot_page, FULL_DOCUMENT)

    pixels = count_pixels_near(plot_page, MAP_BLUE)

    assert pixels["drawn"] > pixels["total"] * 0.05, "the canvas is (nearly) blank"
    assert pixels["near"] > 500, "the MAP curve (solid blue) is not on the canvas"


def test_it_has_a_dataset_for_every_series_of_a_full_document(plot_page: Page) -> None:
    datasets = render(plot_page, FULL_DOCUMENT)

    assert set(datasets) == {
        "band90-low",
        "band90",
        "band50-low",
        "band50",
        "target-low",
        "target",
        "toxicity",
        "population",
        "map",
        "forecast-band-low",
        "forecast-band",
        "forecast",
        "levels",
        "levels-blq",
        "levels-excluded",
        "doses",
        "now",
    }
    assert datasets["map"]["points"] == len(TIMES)
    assert datasets["doses"]["points"] == 5
    assert (datasets["levels"]["points"], datasets["levels-excluded"]["points"]) == (1, 1)
    assert datasets["levels-blq"]["points"] == 1
    assert all(dataset["visible"] for dataset in datasets.values())


def test_the_legend_names_every_series_and_the_band_kind(plot_page: Page) -> None:
    render(plot_page, FULL_DOCUMENT)

    texts = legend_texts(plot_page)

    assert texts == [
        "Individual (MAP) curve",
        "50 % credible band",
        "90 % credible band",
        "Population (covariates only)",
        "Measured levels",
        "Below LLOQ (drawn at the LLOQ)",
        "Excluded levels (not used in the fit)",
        "Doses (amount in the tooltip)",
        "Target: trough 10-15 mg/L",
        "Toxicity limit 20 mg/L",
        "Now (22 Nov 10:15)",
        "Forecast: recommended: 1250 mg q12h (median)",
        "Forecast 90 % band",
    ]


def test_a_level_below_the_lloq_is_drawn_at_the_lloq(plot_page: Page) -> None:
    render(plot_page, FULL_DOCUMENT)

    point = plot_page.evaluate(
        "() => window.chart.data.datasets.find(d => d.mipdRole === 'levels-blq').data[0]"
    )

    assert point["x"] == pytest.approx(35.5)
    assert point["y"] == pytest.approx(2.0)


def test_the_forecast_starts_at_now(plot_page: Page) -> None:
    document = copy.deepcopy(FULL_DOCUMENT)
    document["now_h"] = 60.0  # the forecast's first 10 h lie before now and are not drawn

    render(plot_page, document)
    first_x = plot_page.evaluate(
        """() => window.chart.data.datasets
            .filter(d => d.mipdRole.startsWith('forecast'))
            .map(d => d.data[0].x)"""
    )

    assert first_x == [pytest.approx(60.0)] * 3


def test_a_prior_only_document_draws_the_population_curve_and_says_there_is_no_level(
    plot_page: Page,
) -> None:
    datasets = render(plot_page, PRIOR_ONLY_DOCUMENT)

    assert set(datasets) == {"population", "doses", "now"}
    assert legend_texts(plot_page) == [
        "Population (covariates only)",
        "Doses (amount in the tooltip)",
        "Now (20 Nov 13:00)",
    ]
    label = plot_page.get_attribute("#plot canvas", "aria-label")
    assert label is not None
    assert label.startswith("Concentration-time plot: 0 levels, 2 doses, no MAP curve yet, population curve")
    assert count_pixels_near(plot_page, (107, 114, 128))["near"] > 100, "no grey population curve"


def test_prior_bands_are_labelled_as_prior(plot_page: Page) -> None:
    document = copy.deepcopy(PRIOR_ONLY_DOCUMENT)
    population = document["population"]
    document["bands"] = {
        q: [v * f for v in population]
        for q, f in zip(["0.05", "0.25", "0.75", "0.95"], [0.5, 0.8, 1.2, 1.8], strict=True)
    }

    render(plot_page, document)

    texts = legend_texts(plot_page)
    assert "90 % prior band (no level yet)" in texts
    assert "50 % prior band (no level yet)" in texts
    label = plot_page.get_attribute("#plot canvas", "aria-label") or ""
    assert "no MAP curve yet, population curve with 50 % and 90 % prior bands." in label


def test_a_target_that_is_not_a_concentration_is_named_in_the_legend_only(plot_page: Page) -> None:
    document = copy.deepcopy(FULL_DOCUMENT)
    document["target"] = {
        "low": 400,
        "high": 600,
        "toxicity_limit": None,
        "label": "AUC24 400-600 mg·h/L",
        "is_concentration": False,
    }

    datasets = render(plot_page, document)

    assert not {"target", "target-low", "toxicity"} & set(datasets)
    assert "Target: AUC24 400-600 mg·h/L (not drawn)" in legend_texts(plot_page)


def test_clicking_a_legend_entry_hides_its_series_and_the_target_note_does_nothing(plot_page: Page) -> None:
    document = copy.deepcopy(FULL_DOCUMENT)
    document["target"] = {"low": 400, "high": 600, "label": "AUC24 400-600", "is_concentration": False}
    render(plot_page, document)

    hidden = plot_page.evaluate(
        """() => {
            const legend = window.chart.legend;
            const click = (item) => legend.options.onClick.call(legend, {}, item, legend);
            click(legend.legendItems.find(item => item.text === 'Individual (MAP) curve'));
            click(legend.legendItems.find(item => item.text.startsWith('Target: ')));  // must not throw
            const chart = window.chart;
            return chart.data.datasets.filter((d, i) => !chart.isDatasetVisible(i)).map(d => d.mipdRole);
        }"""
    )

    assert hidden == ["map"]


def test_the_canvas_is_an_image_with_a_summary_for_screen_readers(plot_page: Page) -> None:
    render(plot_page, FULL_DOCUMENT)

    canvas = plot_page.locator("#plot canvas")

    assert canvas.get_attribute("role") == "img"
    assert canvas.get_attribute("aria-label") == (
        "Concentration-time plot: 3 levels (1 excluded, 1 below the LLOQ), 5 doses, "
        "MAP curve with 50 % and 90 % credible bands, population curve, target trough 10-15 mg/L, "
        "forecast for recommended: 1250 mg q12h. Concentrations in mg/L."
    )


def test_the_time_axis_shows_clock_time_in_the_offset_of_t0(browser: Browser, tmp_path: Path) -> None:
    # A browser in another time zone still shows the ward's clock: t0 is 08:00 at +01:00, New York is -05:00.
    context = browser.new_context(timezone_id="America/New_York", viewport={"width": 1100, "height": 800})
    try:
        page = context.new_page()
        html = tmp_path / "plot.html"
        html.write_text(
            f"<script src='{CHART_JS.as_uri()}'></script><script src='{PLOT_JS.as_uri()}'></script>"
            "<div id='plot'></div>",
            encoding="utf-8",
        )
        page.goto(html.as_uri())
        document = copy.deepcopy(PRIOR_ONLY_DOCUMENT)
        document["t0"] = "2026-11-20T08:00:00+01:00"
        render(page, document)
        labels = page.evaluate("() => window.chart.scales.x.ticks.map(t => t.label)")
    finally:
        context.close()

    # 24 h in steps of 3 h, on the clock's multiples of 3 h; the date under the first tick of each day.
    assert labels[:4] == [["09:00", "20 Nov"], "12:00", "15:00", "18:00"]
    assert ["00:00", "21 Nov"] in labels


def test_hovering_a_level_shows_its_clock_time_and_value_with_the_unit(plot_page: Page) -> None:
    render(plot_page, FULL_DOCUMENT)
    x, y = plot_page.evaluate(
        """() => {
            const index = window.chart.data.datasets.findIndex(d => d.mipdRole === 'levels');
            const point = window.chart.getDatasetMeta(index).data[0];
            const box = window.chart.canvas.getBoundingClientRect();
            return [box.left + point.x, box.top + point.y];
        }"""
    )

    plot_page.mouse.move(x, y)
    tooltip = plot_page.evaluate(
        """() => {
            const tooltip = window.chart.tooltip;
            return {
                opacity: tooltip.opacity,
                title: tooltip.title,
                lines: tooltip.body.flatMap(part => part.lines),
            };
        }"""
    )

    assert tooltip["opacity"] == 1
    assert tooltip["title"] == ["20 Nov 19:30 (t = 11.5 h)"]
    assert "Level (trough 20 Nov 19:30): 14.2 mg/L" in tooltip["lines"]
    assert any(
        line.startswith("Individual (MAP) curve: ") and line.endswith(" mg/L") for line in tooltip["lines"]
    )
    assert any(line.startswith("90 % credible band: ") for line in tooltip["lines"])


def test_hovering_a_dose_shows_its_amount(plot_page: Page) -> None:
    render(plot_page, FULL_DOCUMENT)
    x, y = plot_page.evaluate(
        """() => {
            const index = window.chart.data.datasets.findIndex(d => d.mipdRole === 'doses');
            const point = window.chart.getDatasetMeta(index).data[1];
            const box = window.chart.canvas.getBoundingClientRect();
            return [box.left + point.x, box.top + point.y];
        }"""
    )

    plot_page.mouse.move(x, y)

    lines = plot_page.evaluate("() => window.chart.tooltip.body.flatMap(part => part.lines)")
    assert "Dose 20 Nov 20:00: 1000 mg IV infusion over 1 h" in lines


def test_save_as_png_downloads_the_plot_on_a_white_background(plot_page: Page) -> None:
    render(plot_page, FULL_DOCUMENT)

    with plot_page.expect_download() as download_info:
        plot_page.get_by_role("button", name="Save as PNG").click()
    download = download_info.value
    path = download.path()
    assert path is not None
    data = Path(path).read_bytes()

    assert download.suggested_filename == "concentration-plot.png"
    assert data.startswith(PNG_SIGNATURE)
    corner = plot_page.evaluate(
        """async (b64) => {
            const image = new Image();
            image.src = 'data:image/png;base64,' + b64;
            await image.decode();
            const canvas = document.createElement('canvas');
            canvas.width = image.width;
            canvas.height = image.height;
            const ctx = canvas.getContext('2d');
            ctx.drawImage(image, 0, 0);
            return Array.from(ctx.getImageData(0, 0, 1, 1).data);
        }""",
        base64.b64encode(data).decode("ascii"),
    )
    assert corner == [255, 255, 255, 255]


def test_rendering_again_replaces_the_chart(plot_page: Page) -> None:
    render(plot_page, FULL_DOCUMENT)
    render(plot_page, PRIOR_ONLY_DOCUMENT)

    counts = plot_page.evaluate(
        "() => ['canvas', 'button'].map(tag => document.querySelectorAll(`#plot ${tag}`).length)"
    )

    assert counts == [1, 1]


def test_it_draws_a_monitoring_device_series_as_dots(plot_page: Page) -> None:
    document = copy.deepcopy(FULL_DOCUMENT)
    series_times = _hours(1, 48, 0.25)
    document["series"] = [
        {
            "label": "Test sensor (189 points)",
            "times_h": series_times,
            "values": [v * 1.05 for v in _curve(series_times, 10)],
            "n_points": 189,
        }
    ]
    datasets = render(plot_page, document)
    assert datasets["series"]["points"] == len(series_times)
    assert datasets["series"]["visible"]
    assert "Test sensor (189 points)" in legend_texts(plot_page)
    if os.environ.get("MIPD_PLOT_PNG"):  # to look at it
        plot_page.screenshot(path=os.environ["MIPD_PLOT_PNG"])
