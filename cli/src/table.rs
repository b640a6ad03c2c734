//! Fixed-width tables for people (machines get `--json`).

/// Formats one row of cells to the given widths; the first column is left
/// aligned and cut with an ellipsis when too long, the rest right aligned.
pub fn row(cells: &[String], widths: &[usize]) -> String {
    let mut line = String::new();
    for (i, (cell, &w)) in cells.iter().zip(widths).enumerate() {
        if i == 0 {
            let shown = if cell.chars().count() > w {
                let cut: String = cell.chars().take(w.saturating_sub(1)).collect();
                format!("{cut}…")
            } else {
                cell.clone()
            };
            line.push_str(&format!("{shown:<w$}"));
        } else {
            line.push_str(&format!("  {cell:>w$}"));
        }
    }
    line.trim_end().to_string()
}

/// A log10 p-value for people: two decimals, or "-" when absent.
pub fn log10(v: Option<f64>) -> String {
    v.map_or_else(
        || "-".into(),
        |x| format!("{:.2}", if x > -0.005 { 0.0 } else { x }),
    )
}
