//! Learning curves (loss and accuracy against epoch for the training, validation and test
//! sets) and the lr range test's curve, as PNG or SVG (by the file's extension). The font is embedded (DejaVu Sans), so a
//! PNG renders the same on a machine without fonts.

use crate::train::lr_find::{before_minimum, Finding, LrPoint};
use crate::train::EpochRecord;
use anyhow::{anyhow, bail, Result};
use image::ImageEncoder as _;
use plotters::coord::Shift;
use plotters::prelude::*;
use std::path::Path;
use std::sync::Once;

const SIZE: (u32, u32) = (1100, 450);
const FONT: &str = "sans-serif";

fn register_font() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        // The embedded font is a valid TTF; if it were not, text would simply be missing.
        let _ = plotters::style::register_font(FONT, FontStyle::Normal, dejavu::sans::regular());
    });
}

struct Curve<'a> {
    label: &'a str,
    color: RGBColor,
    points: Vec<(f64, f64)>,
}

fn curves(history: &[EpochRecord], accuracy: bool) -> Vec<Curve<'static>> {
    let pick = |f: &dyn Fn(&EpochRecord) -> Option<f64>| -> Vec<(f64, f64)> {
        history
            .iter()
            .filter_map(|r| f(r).filter(|v| v.is_finite()).map(|v| (r.epoch as f64, v)))
            .collect()
    };
    let curve = |label, color, points| Curve {
        label,
        color,
        points,
    };
    let all = if accuracy {
        [
            curve("train", BLUE, pick(&|r| r.train_acc.map(|a| 100.0 * a))),
            curve("validation", GREEN, pick(&|r| r.val_acc.map(|a| 100.0 * a))),
            curve("test", RED, pick(&|r| r.test_acc.map(|a| 100.0 * a))),
        ]
    } else {
        [
            curve("train", BLUE, pick(&|r| Some(r.train_loss))),
            curve("validation", GREEN, pick(&|r| r.val_loss)),
            curve("test", RED, pick(&|r| Some(r.test_loss))),
        ]
    };
    all.into_iter().filter(|c| !c.points.is_empty()).collect()
}

fn panel<DB: DrawingBackend>(
    area: &DrawingArea<DB, Shift>,
    title: &str,
    y_label: &str,
    curves: &[Curve],
    epochs: usize,
    legend: SeriesLabelPosition,
) -> Result<(), String> {
    let err = |e: DrawingAreaErrorKind<DB::ErrorType>| e.to_string();
    let values = curves.iter().flat_map(|c| c.points.iter().map(|p| p.1));
    let (lo, hi) = values.fold((f64::INFINITY, f64::NEG_INFINITY), |(l, h), v| {
        (l.min(v), h.max(v))
    });
    let pad = ((hi - lo) * 0.05).max(1e-6);
    let x_max = epochs.max(2) as f64;
    let mut chart = ChartBuilder::on(area)
        .caption(title, (FONT, 22))
        .margin(12)
        .x_label_area_size(45)
        .y_label_area_size(70)
        .build_cartesian_2d(1.0..x_max, (lo - pad)..(hi + pad))
        .map_err(err)?;
    chart
        .configure_mesh()
        .x_desc("epoch")
        .y_desc(y_label)
        // Epochs are whole: at most 10 labels, and none between two epochs.
        .x_labels(epochs.clamp(2, 10))
        .x_label_formatter(&|x| {
            if x.fract() == 0.0 {
                format!("{x:.0}")
            } else {
                String::new()
            }
        })
        .label_style((FONT, 15))
        .draw()
        .map_err(err)?;
    for c in curves {
        let color = c.color;
        chart
            .draw_series(LineSeries::new(
                c.points.iter().copied(),
                color.stroke_width(2),
            ))
            .map_err(err)?
            .label(c.label)
            .legend(move |(x, y)| {
                PathElement::new(vec![(x, y), (x + 20, y)], color.stroke_width(2))
            });
        if c.points.len() < 30 {
            chart
                .draw_series(c.points.iter().map(|&p| Circle::new(p, 3, color.filled())))
                .map_err(err)?;
        }
    }
    chart
        .configure_series_labels()
        .label_font((FONT, 15))
        .background_style(WHITE.mix(0.85))
        .border_style(BLACK)
        .position(legend)
        .draw()
        .map_err(err)?;
    Ok(())
}

fn draw<DB: DrawingBackend>(
    root: DrawingArea<DB, Shift>,
    history: &[EpochRecord],
    title: &str,
) -> Result<(), String> {
    root.fill(&WHITE).map_err(|e| e.to_string())?;
    let root = root.titled(title, (FONT, 20)).map_err(|e| e.to_string())?;
    let epochs = history.last().map_or(1, |r| r.epoch);
    let acc = curves(history, true);
    let loss = curves(history, false);
    // Loss falls and accuracy rises to the right: each legend goes where its curves are not.
    let (upper, lower) = (
        SeriesLabelPosition::UpperRight,
        SeriesLabelPosition::LowerRight,
    );
    if acc.is_empty() {
        panel(&root, "loss", "loss", &loss, epochs, upper)?;
    } else {
        let (left, right) = root.split_horizontally(SIZE.0 / 2);
        panel(&left, "loss", "loss", &loss, epochs, upper)?;
        panel(&right, "accuracy", "accuracy (%)", &acc, epochs, lower)?;
    }
    root.present().map_err(|e| e.to_string())
}

/// A figure drawable on any plotters backend.
trait Figure {
    fn draw<DB: DrawingBackend>(&self, root: DrawingArea<DB, Shift>) -> Result<(), String>;
}

struct LearningCurves<'a> {
    history: &'a [EpochRecord],
    title: &'a str,
}

impl Figure for LearningCurves<'_> {
    fn draw<DB: DrawingBackend>(&self, root: DrawingArea<DB, Shift>) -> Result<(), String> {
        draw(root, self.history, self.title)
    }
}

/// Writes the learning curves of `history` to `path` (`.png` or `.svg`), atomically.
pub fn learning_curves(path: &Path, history: &[EpochRecord], title: &str) -> Result<()> {
    if history.is_empty() {
        bail!("no completed epoch to plot");
    }
    render(path, &LearningCurves { history, title })
}

/// Writes the lr range test's curve to `path` (`.png` or `.svg`), atomically: loss and
/// smoothed loss against a logarithmic lr axis, the suggestion marked.
pub fn lr_range(path: &Path, finding: &Finding, title: &str) -> Result<()> {
    if finding.points.len() < 2 {
        bail!(
            "the range test ended after {} step(s): nothing to plot",
            finding.points.len()
        );
    }
    render(path, &LrRange { finding, title })
}

/// Draws `figure` as PNG or SVG (by `path`'s extension) and writes it atomically.
fn render(path: &Path, figure: &impl Figure) -> Result<()> {
    register_font();
    let ext = path
        .extension()
        .map(|e| e.to_string_lossy().to_ascii_lowercase())
        .unwrap_or_default();
    let fail = |e: String| anyhow!("cannot draw plot {}: {e}", path.display());
    let bytes = match ext.as_str() {
        "svg" => {
            let mut svg = String::new();
            figure
                .draw(SVGBackend::with_string(&mut svg, SIZE).into_drawing_area())
                .map_err(fail)?;
            svg.into_bytes()
        }
        "png" => {
            let mut pixels = vec![0u8; (SIZE.0 * SIZE.1 * 3) as usize];
            figure
                .draw(BitMapBackend::with_buffer(&mut pixels, SIZE).into_drawing_area())
                .map_err(fail)?;
            let mut png = Vec::new();
            image::codecs::png::PngEncoder::new(&mut png)
                .write_image(&pixels, SIZE.0, SIZE.1, image::ExtendedColorType::Rgb8)
                .map_err(|e| anyhow!("cannot encode PNG {}: {e}", path.display()))?;
            png
        }
        _ => bail!("plot file {} must end in .png or .svg", path.display()),
    };
    crate::atomic::write(path, &bytes)
        .map_err(|e| anyhow!("cannot write plot {}: {e}", path.display()))
}

struct LrRange<'a> {
    finding: &'a Finding,
    title: &'a str,
}

impl Figure for LrRange<'_> {
    fn draw<DB: DrawingBackend>(&self, root: DrawingArea<DB, Shift>) -> Result<(), String> {
        let err = |e: DrawingAreaErrorKind<DB::ErrorType>| e.to_string();
        root.fill(&WHITE).map_err(err)?;
        let points = &self.finding.points;
        let lr = |p: &LrPoint| f64::from(p.lr);
        let (x0, x1) = (lr(&points[0]), lr(&points[points.len() - 1]));
        // The y range of the smoothed curve up to its minimum: the explosion goes off the top.
        let shown = before_minimum(points);
        let (lo, hi) = shown
            .iter()
            .fold((f64::INFINITY, f64::NEG_INFINITY), |(l, h), p| {
                (l.min(p.smoothed), h.max(p.smoothed))
            });
        let pad = ((hi - lo) * 0.05).max(1e-6);
        let clamp = |v: f64| v.clamp(lo - pad, hi + pad);
        let mut chart = ChartBuilder::on(&root)
            .caption(self.title, (FONT, 20))
            .margin(12)
            .x_label_area_size(45)
            .y_label_area_size(70)
            .build_cartesian_2d((x0..x1).log_scale(), (lo - pad)..(hi + pad))
            .map_err(err)?;
        chart
            .configure_mesh()
            .x_desc("learning rate")
            .y_desc("training loss")
            .x_label_formatter(&|x| format!("{x:.0e}"))
            .label_style((FONT, 15))
            .draw()
            .map_err(err)?;
        let raw = points.iter().map(|p| (lr(p), clamp(p.loss)));
        chart
            .draw_series(LineSeries::new(raw, BLUE.mix(0.3)))
            .map_err(err)?
            .label("loss")
            .legend(|(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], BLUE.mix(0.3)));
        let smooth = points.iter().map(|p| (lr(p), clamp(p.smoothed)));
        chart
            .draw_series(LineSeries::new(smooth, BLUE.stroke_width(2)))
            .map_err(err)?
            .label("smoothed loss")
            .legend(|(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], BLUE.stroke_width(2)));
        let marks = self.finding.suggestion.iter().map(|s| (s, RED));
        let others = self.finding.alternatives.iter().zip([GREEN, MAGENTA]);
        for (s, color) in marks.chain(others) {
            let x = f64::from(s.lr);
            chart
                .draw_series(LineSeries::new(
                    [(x, lo - pad), (x, hi + pad)],
                    color.stroke_width(2),
                ))
                .map_err(err)?
                .label(format!("{} {:.1e}", s.rule, s.lr))
                .legend(move |(x, y)| {
                    PathElement::new(vec![(x, y), (x + 20, y)], color.stroke_width(2))
                });
        }
        chart
            .configure_series_labels()
            .label_font((FONT, 15))
            .background_style(WHITE.mix(0.85))
            .border_style(BLACK)
            .position(SeriesLabelPosition::UpperLeft)
            .draw()
            .map_err(err)?;
        root.present().map_err(err)
    }
}
