//! A small line plot drawn with egui's painter: a few named series over a shared x axis (the
//! iteration), each in its own colour, with a legend. No plotting dependency: the Train window
//! needs lines, a frame, the axis ranges and a legend, nothing more.

use egui::{Color32, Pos2, RichText, Sense, Shape, Stroke, Vec2};

/// One curve: (x, y) points in x order.
pub struct Series<'a> {
    pub name: &'a str,
    pub color: Color32,
    pub points: &'a [[f64; 2]],
}

/// The ranges a set of series spans, y padded so flat curves still show; None without points.
fn bounds(series: &[Series<'_>]) -> Option<([f64; 2], [f64; 2])> {
    let all = || {
        series
            .iter()
            .flat_map(|s| s.points.iter())
            .filter(|p| p[0].is_finite() && p[1].is_finite())
    };
    let (mut x0, mut x1, mut y0, mut y1) = (f64::MAX, f64::MIN, f64::MAX, f64::MIN);
    for p in all() {
        x0 = x0.min(p[0]);
        x1 = x1.max(p[0]);
        y0 = y0.min(p[1]);
        y1 = y1.max(p[1]);
    }
    if x0 > x1 {
        return None;
    }
    if x1 - x0 < 1e-9 {
        x1 = x0 + 1.0;
    }
    let pad = ((y1 - y0) * 0.05).max(1e-6);
    Some(([x0, x1], [y0 - pad, y1 + pad]))
}

/// Draws the legend (name and last value of each series that has points) and the plot below it.
pub fn loss_plot(ui: &mut egui::Ui, series: &[Series<'_>], size: Vec2) -> egui::Response {
    ui.horizontal_wrapped(|ui| {
        for s in series {
            let (swatch, _) = ui.allocate_exact_size(Vec2::splat(10.0), Sense::hover());
            ui.painter().rect_filled(swatch, 2.0, s.color);
            let text = match s.points.last() {
                Some(p) => format!("{} {:.3}", s.name, p[1]),
                None => format!("{} –", s.name),
            };
            ui.label(RichText::new(text).small());
        }
    });
    let (rect, response) = ui.allocate_exact_size(size, Sense::hover());
    let painter = ui.painter_at(rect);
    let visuals = ui.visuals();
    painter.rect_filled(rect, 2.0, visuals.extreme_bg_color);
    painter.rect_stroke(
        rect,
        2.0,
        Stroke::new(1.0, visuals.widgets.noninteractive.bg_stroke.color),
        egui::StrokeKind::Inside,
    );
    let points: usize = series.iter().map(|s| s.points.len()).sum();
    let Some(([x0, x1], [y0, y1])) = bounds(series) else {
        painter.text(
            rect.center(),
            egui::Align2::CENTER_CENTER,
            "The losses appear here as training runs",
            egui::FontId::proportional(12.0),
            visuals.weak_text_color(),
        );
        return response.on_hover_text("No iteration yet");
    };
    let inner = rect.shrink2(Vec2::new(6.0, 14.0));
    let to_screen = |p: &[f64; 2]| {
        Pos2::new(
            inner.left() + ((p[0] - x0) / (x1 - x0)) as f32 * inner.width(),
            inner.bottom() - ((p[1] - y0) / (y1 - y0)) as f32 * inner.height(),
        )
    };
    if y0 < 0.0 && y1 > 0.0 {
        let y = to_screen(&[x0, 0.0]).y;
        painter.hline(
            inner.x_range(),
            y,
            Stroke::new(1.0, visuals.widgets.noninteractive.bg_stroke.color),
        );
    }
    // At most about two points per pixel column: long runs stay cheap to draw.
    let budget = (inner.width() as usize * 2).max(2);
    for s in series {
        let step = s.points.len().div_ceil(budget).max(1);
        let line: Vec<Pos2> = s
            .points
            .iter()
            .step_by(step)
            .chain(s.points.last())
            .filter(|p| p[0].is_finite() && p[1].is_finite())
            .map(to_screen)
            .collect();
        match line.len() {
            0 => {}
            1 => {
                painter.circle_filled(line[0], 2.0, s.color);
            }
            _ => {
                painter.add(Shape::line(line, Stroke::new(1.5, s.color)));
            }
        }
    }
    let small = egui::FontId::proportional(10.0);
    let weak = visuals.weak_text_color();
    let corner = |at: Pos2, align, text: String| {
        painter.text(at, align, text, small.clone(), weak);
    };
    corner(
        rect.left_top() + Vec2::new(4.0, 1.0),
        egui::Align2::LEFT_TOP,
        format!("{y1:.2}"),
    );
    corner(
        rect.left_bottom() + Vec2::new(4.0, -1.0),
        egui::Align2::LEFT_BOTTOM,
        format!("{y0:.2}"),
    );
    corner(
        rect.right_bottom() + Vec2::new(-4.0, -1.0),
        egui::Align2::RIGHT_BOTTOM,
        format!("iteration {x1:.0}"),
    );
    response.on_hover_text(format!("{points} points, iterations {x0:.0} to {x1:.0}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bounds_cover_every_series_and_pad_flat_ones() {
        let a = [[1.0, 2.0], [3.0, 4.0]];
        let b = [[2.0, -1.0]];
        let series = [
            Series {
                name: "a",
                color: Color32::RED,
                points: &a,
            },
            Series {
                name: "b",
                color: Color32::BLUE,
                points: &b,
            },
        ];
        let ([x0, x1], [y0, y1]) = bounds(&series).expect("points");
        assert_eq!((x0, x1), (1.0, 3.0));
        assert!(y0 < -1.0 && y1 > 4.0);
        let flat = [[5.0, 1.0]];
        let one = [Series {
            name: "f",
            color: Color32::RED,
            points: &flat,
        }];
        let ([x0, x1], [y0, y1]) = bounds(&one).expect("a point");
        assert!(x1 > x0 && y1 > y0);
        assert!(bounds(&[]).is_none());
    }
}
