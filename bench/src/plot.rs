//! Minimal SVG line plots for `bench/RESULTS.md` (no plotting dependency:
//! a few polylines, log-scaled x, labelled axes and a legend).

use std::fmt::Write;

/// One line: a label and its (x, y) points.
pub struct Series {
    pub label: String,
    pub points: Vec<(f64, f64)>,
}

const COLOURS: &[&str] = &[
    "#1b5e20", "#1565c0", "#ef6c00", "#6a1b9a", "#c62828", "#00838f", "#5d4037", "#757575",
];

/// A plot of `series` with a log10 x axis (x > 0) and a linear y axis;
/// `hline` draws a dashed horizontal reference (e.g. log10 p = −6).
pub fn log_x_plot(
    title: &str,
    x_label: &str,
    y_label: &str,
    series: &[Series],
    hline: Option<(f64, &str)>,
) -> String {
    let (w, h, left, right, top, bottom) = (720.0, 420.0, 70.0, 200.0, 40.0, 50.0);
    let pts = series
        .iter()
        .flat_map(|s| s.points.iter())
        .filter(|p| p.0 > 0.0);
    let (mut x0, mut x1, mut y0, mut y1) = (f64::MAX, f64::MIN, f64::MAX, f64::MIN);
    for &(x, y) in pts {
        x0 = x0.min(x.log10());
        x1 = x1.max(x.log10());
        y0 = y0.min(y);
        y1 = y1.max(y);
    }
    if let Some((y, _)) = hline {
        y0 = y0.min(y);
        y1 = y1.max(y);
    }
    if x0 >= x1 {
        x1 = x0 + 1.0;
    }
    if y0 >= y1 {
        y1 = y0 + 1.0;
    }
    let (x0, x1) = (x0.floor(), x1.ceil());
    let sx = |x: f64| left + (x.log10() - x0) / (x1 - x0) * (w - left - right);
    let sy = |y: f64| top + (y1 - y) / (y1 - y0) * (h - top - bottom);
    let mut svg = String::new();
    let _ = write!(
        svg,
        r#"<svg xmlns="http://www.w3.org/2000/svg" width="{w}" height="{h}" font-family="sans-serif" font-size="12">"#
    );
    let _ = write!(svg, r#"<rect width="100%" height="100%" fill="white"/>"#);
    let _ = write!(
        svg,
        r#"<text x="{}" y="22" font-size="15" text-anchor="middle">{}</text>"#,
        (w - right + left) / 2.0,
        escape(title)
    );
    // Axes and ticks.
    let (ax0, ax1, ay0, ay1) = (left, w - right, top, h - bottom);
    let _ = write!(
        svg,
        r#"<path d="M{ax0},{ay0} L{ax0},{ay1} L{ax1},{ay1}" stroke="black" fill="none"/>"#
    );
    for e in (x0 as i32)..=(x1 as i32) {
        let x = sx(10f64.powi(e));
        let _ = write!(
            svg,
            r##"<line x1="{x}" y1="{ay1}" x2="{x}" y2="{ay0}" stroke="#eee"/><text x="{x}" y="{}" text-anchor="middle">1e{e}</text>"##,
            ay1 + 16.0
        );
    }
    let step = nice_step((y1 - y0) / 6.0);
    let mut y = (y0 / step).ceil() * step;
    while y <= y1 + 1e-9 {
        let py = sy(y);
        let _ = write!(
            svg,
            r##"<line x1="{ax0}" y1="{py}" x2="{ax1}" y2="{py}" stroke="#eee"/><text x="{}" y="{}" text-anchor="end">{y}</text>"##,
            ax0 - 6.0,
            py + 4.0
        );
        y += step;
    }
    let _ = write!(
        svg,
        r#"<text x="{}" y="{}" text-anchor="middle">{}</text>"#,
        (ax0 + ax1) / 2.0,
        h - 12.0,
        escape(x_label)
    );
    let _ = write!(
        svg,
        r#"<text transform="translate(18,{}) rotate(-90)" text-anchor="middle">{}</text>"#,
        (ay0 + ay1) / 2.0,
        escape(y_label)
    );
    if let Some((yv, label)) = hline {
        let py = sy(yv);
        let _ = write!(
            svg,
            r##"<line x1="{ax0}" y1="{py}" x2="{ax1}" y2="{py}" stroke="#999" stroke-dasharray="5,4"/><text x="{}" y="{}" fill="#666">{}</text>"##,
            ax0 + 4.0,
            py - 4.0,
            escape(label)
        );
    }
    for (i, s) in series.iter().enumerate() {
        let colour = COLOURS[i % COLOURS.len()];
        let path: Vec<String> = s
            .points
            .iter()
            .filter(|p| p.0 > 0.0)
            .map(|&(x, y)| format!("{:.1},{:.1}", sx(x), sy(y)))
            .collect();
        let _ = write!(
            svg,
            r#"<polyline points="{}" fill="none" stroke="{colour}" stroke-width="2"/>"#,
            path.join(" ")
        );
        let ly = top + 10.0 + 18.0 * i as f64;
        let _ = write!(
            svg,
            r#"<line x1="{}" y1="{ly}" x2="{}" y2="{ly}" stroke="{colour}" stroke-width="3"/><text x="{}" y="{}">{}</text>"#,
            w - right + 12.0,
            w - right + 32.0,
            w - right + 38.0,
            ly + 4.0,
            escape(&s.label)
        );
    }
    svg.push_str("</svg>\n");
    svg
}

fn nice_step(raw: f64) -> f64 {
    let mag = 10f64.powf(raw.abs().max(1e-12).log10().floor());
    [1.0, 2.0, 5.0, 10.0]
        .iter()
        .map(|m| m * mag)
        .find(|&s| s >= raw)
        .unwrap_or(10.0 * mag)
}

fn escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plots_every_series_and_escapes_labels() {
        let svg = log_x_plot(
            "p <vs> tokens",
            "tokens",
            "log10 p",
            &[
                Series {
                    label: "a & b".into(),
                    points: vec![(10.0, -1.0), (1000.0, -8.0)],
                },
                Series {
                    label: "c".into(),
                    points: vec![(100.0, -0.5)],
                },
            ],
            Some((-6.0, "p = 1e-6")),
        );
        assert_eq!(svg.matches("<polyline").count(), 2);
        assert!(svg.contains("a &amp; b") && svg.contains("p &lt;vs&gt; tokens"));
        assert!(svg.starts_with("<svg") && svg.ends_with("</svg>\n"));
    }
}
