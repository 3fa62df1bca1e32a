//! Small numeric CSV tables: a header row, numeric cells, named target column(s).

use super::batch::split_indices;
use super::dataset::{float_dataset, Dataset, Labels, TargetData};
use crate::error::ShapeError;
use anyhow::{bail, Context, Result};
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};

/// `[data.csv]`: numeric tables with a header row.
#[derive(Clone, Debug, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct CsvConfig {
    pub train: PathBuf,
    /// Without a test file, `test_fraction` of the training rows are held out as the test set.
    pub test: Option<PathBuf>,
    #[serde(default = "default_test_fraction")]
    pub test_fraction: f64,
    /// Target column name(s); every other column is a feature.
    pub target: Vec<String>,
    /// Treat the single target column as class labels 0..k-1.
    #[serde(default)]
    pub classification: bool,
}

fn default_test_fraction() -> f64 {
    0.2
}

/// Features and targets of a CSV file, row-major.
struct Table {
    features: Vec<f32>,
    targets: Vec<f32>,
    width: usize,
    target_width: usize,
}

fn read_table(path: &Path, target: &[String]) -> Result<Table> {
    let mut reader = csv::ReaderBuilder::new()
        .has_headers(true)
        .trim(csv::Trim::All)
        .from_path(path)
        .with_context(|| format!("cannot read CSV file {}", path.display()))?;
    let headers = reader
        .headers()
        .with_context(|| format!("{}: cannot read the header row", path.display()))?
        .clone();
    let columns: Vec<&str> = headers.iter().collect();
    let mut is_target = vec![false; columns.len()];
    for name in target {
        match columns.iter().position(|c| c == name) {
            Some(i) => is_target[i] = true,
            None => bail!(
                "{}: no target column `{name}`; the header has {}",
                path.display(),
                columns.join(", ")
            ),
        }
    }
    let width = columns.len() - target.len();
    if width == 0 {
        bail!(
            "{}: every column is a target; at least one feature column is needed",
            path.display()
        );
    }
    let mut table = Table {
        features: Vec::new(),
        targets: Vec::new(),
        width,
        target_width: target.len(),
    };
    for record in reader.records() {
        let record = record.map_err(|e| csv_error(path, &e))?;
        let line = record.position().map_or(0, |p| p.line());
        for (c, cell) in record.iter().enumerate() {
            let value: f32 = cell.parse().map_err(|_| {
                anyhow::anyhow!(
                    "{}: line {line}, column `{}`: `{cell}` is not a number",
                    path.display(),
                    columns[c]
                )
            })?;
            if is_target[c] {
                table.targets.push(value);
            } else {
                table.features.push(value);
            }
        }
    }
    if table.targets.is_empty() {
        bail!("{}: no data rows after the header", path.display());
    }
    Ok(table)
}

fn csv_error(path: &Path, e: &csv::Error) -> anyhow::Error {
    match e.kind() {
        csv::ErrorKind::UnequalLengths {
            pos,
            expected_len,
            len,
        } => anyhow::anyhow!(
            "{}: line {}: {len} fields, expected {expected_len} like the header",
            path.display(),
            pos.as_ref().map_or(0, |p| p.line())
        ),
        _ => anyhow::anyhow!("{}: {e}", path.display()),
    }
}

fn labels_of(path: &Path, values: &[f32]) -> Result<Vec<u32>> {
    values
        .iter()
        .enumerate()
        .map(|(row, &v)| {
            if v >= 0.0 && v.fract() == 0.0 && v < 1e6 {
                Ok(v as u32)
            } else {
                bail!(
                    "{}: data row {}: class label {v} is not a non-negative integer",
                    path.display(),
                    row + 1
                )
            }
        })
        .collect()
}

fn into_dataset(path: &Path, t: Table, classification: bool) -> Result<Dataset> {
    let targets = if classification {
        TargetData::Classes {
            labels: Labels::Owned(labels_of(path, &t.targets)?),
            classes: 0,
        }
    } else {
        TargetData::Values {
            values: t.targets,
            width: t.target_width,
        }
    };
    Ok(float_dataset(
        path.display().to_string(),
        t.features,
        t.width,
        targets,
    ))
}

fn rows(t: &Table, which: &[usize]) -> Table {
    let pick = |v: &[f32], w: usize| -> Vec<f32> {
        which
            .iter()
            .flat_map(|&i| v[i * w..(i + 1) * w].iter().copied())
            .collect()
    };
    Table {
        features: pick(&t.features, t.width),
        targets: pick(&t.targets, t.target_width),
        width: t.width,
        target_width: t.target_width,
    }
}

/// Training and test sets from `cfg`, paths resolved by `resolve`.
pub fn load(
    cfg: &CsvConfig,
    resolve: impl Fn(&Path) -> std::path::PathBuf,
    seed: u64,
) -> Result<(Dataset, Dataset)> {
    let train_path = resolve(&cfg.train);
    let train = read_table(&train_path, &cfg.target)?;
    match &cfg.test {
        Some(test) => {
            let test_path = resolve(test);
            let test = read_table(&test_path, &cfg.target)?;
            if test.width != train.width {
                let what = format!(
                    "{}: feature columns (as in {})",
                    test_path.display(),
                    train_path.display()
                );
                return Err(ShapeError::new(what, train.width, test.width).into());
            }
            Ok((
                into_dataset(&train_path, train, cfg.classification)?,
                into_dataset(&test_path, test, cfg.classification)?,
            ))
        }
        None => {
            let n = train.targets.len() / train.target_width;
            let (keep, held) = split_indices(n, cfg.test_fraction, seed ^ 0x7E57);
            Ok((
                into_dataset(&train_path, rows(&train, &keep), cfg.classification)?,
                into_dataset(&train_path, rows(&train, &held), cfg.classification)?,
            ))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write(dir: &Path, name: &str, text: &str) -> std::path::PathBuf {
        let p = dir.join(name);
        std::fs::write(&p, text).unwrap();
        p
    }

    fn cfg(train: &Path, target: &str) -> CsvConfig {
        CsvConfig {
            train: train.to_path_buf(),
            test: Some(train.to_path_buf()),
            test_fraction: 0.2,
            target: vec![target.to_string()],
            classification: false,
        }
    }

    #[test]
    fn reads_features_and_named_targets() {
        let dir = tempfile::tempdir().unwrap();
        let p = write(dir.path(), "t.csv", "a, y ,b\n1,10,2\n3,30,4\n");
        let (train, _) = load(&cfg(&p, "y"), |p| p.to_path_buf(), 1).unwrap();
        assert_eq!((train.len(), train.width()), (2, 2));
        let mut x = [0.0; 2];
        train.raw_features(1, &mut x);
        assert_eq!(x, [3.0, 4.0]);
        assert_eq!(train.values(1), [30.0]);
    }

    #[test]
    fn bad_tables_name_file_line_and_column() {
        let dir = tempfile::tempdir().unwrap();
        let ragged = write(dir.path(), "r.csv", "a,y\n1,2\n3\n");
        let e = load(&cfg(&ragged, "y"), |p| p.to_path_buf(), 1)
            .unwrap_err()
            .to_string();
        assert!(e.contains("r.csv: line 3: 1 fields, expected 2"), "{e}");
        let text = write(dir.path(), "n.csv", "a,y\n1,2\nx,3\n");
        let e = load(&cfg(&text, "y"), |p| p.to_path_buf(), 1)
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("n.csv: line 3, column `a`: `x` is not a number"),
            "{e}"
        );
        let e = load(&cfg(&text, "z"), |p| p.to_path_buf(), 1)
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("no target column `z`; the header has a, y"),
            "{e}"
        );
    }
}
