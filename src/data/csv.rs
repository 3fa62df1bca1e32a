//! Small numeric CSV tables: a header row, numeric cells, named target column(s).

use super::batch::split_indices;
use super::dataset::{float_dataset, Dataset, Labels, TargetData};
use super::files::open_regular;
use anyhow::{anyhow, bail, Result};
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
    /// The feature columns' names, in the order of `features`.
    feature_names: Vec<String>,
}

/// The first name given twice, with its two positions.
fn duplicate<'a>(names: impl IntoIterator<Item = &'a str>) -> Option<(&'a str, usize, usize)> {
    let mut seen = std::collections::HashMap::new();
    for (i, n) in names.into_iter().enumerate() {
        if let Some(first) = seen.insert(n, i) {
            return Some((n, first, i));
        }
    }
    None
}

/// Reads a table; with `features` (the training file's feature columns), the columns are
/// matched to them by name, whatever their order, and a missing or extra column is refused.
fn read_table(
    path: &Path,
    target: &[String],
    features: Option<(&[String], &Path)>,
) -> Result<Table> {
    let file =
        open_regular(path).map_err(|e| anyhow!("cannot read CSV file {}: {e}", path.display()))?;
    let mut reader = csv::ReaderBuilder::new()
        .has_headers(true)
        .trim(csv::Trim::All)
        .from_reader(file);
    let headers = reader.headers().map_err(|e| csv_error(path, &e))?.clone();
    let columns: Vec<&str> = headers.iter().collect();
    if columns.iter().all(|c| c.is_empty()) {
        bail!(
            "{}: is empty; expected a header row naming the columns, then rows of numbers",
            path.display()
        );
    }
    if let Some((name, a, b)) = duplicate(columns.iter().copied()) {
        bail!(
            "{}: column `{name}` appears twice in the header (columns {} and {}); each column \
             needs its own name",
            path.display(),
            a + 1,
            b + 1
        );
    }
    if let Some((name, ..)) = duplicate(target.iter().map(String::as_str)) {
        bail!("data.csv.target names `{name}` twice; name each target column once");
    }
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
    let own: Vec<String> = (0..columns.len())
        .filter(|&c| !is_target[c])
        .map(|c| columns[c].to_string())
        .collect();
    if own.is_empty() {
        bail!(
            "{}: every column is a target; at least one feature column is needed",
            path.display()
        );
    }
    // slot[c]: where column c's value goes among the features.
    let mut slot = vec![usize::MAX; columns.len()];
    let feature_names = match features {
        None => {
            for (k, c) in (0..columns.len()).filter(|&c| !is_target[c]).enumerate() {
                slot[c] = k;
            }
            own
        }
        Some((expected, train)) => {
            if let Some(extra) = own.iter().find(|n| !expected.contains(n)) {
                bail!(
                    "{}: column `{extra}` is not a column of the training file {}; the test file \
                     needs the same columns (in any order)",
                    path.display(),
                    train.display()
                );
            }
            for (k, name) in expected.iter().enumerate() {
                match columns.iter().position(|c| c == name) {
                    Some(c) => slot[c] = k,
                    None => bail!(
                        "{}: no column `{name}`, which the training file {} has; the test file \
                         needs the same columns (in any order)",
                        path.display(),
                        train.display()
                    ),
                }
            }
            expected.to_vec()
        }
    };
    let width = feature_names.len();
    let mut table = Table {
        features: Vec::new(),
        targets: Vec::new(),
        width,
        target_width: target.len(),
        feature_names,
    };
    let mut row = vec![0.0f32; width];
    for record in reader.records() {
        let record = record.map_err(|e| csv_error(path, &e))?;
        let line = record.position().map_or(0, |p| p.line());
        for (c, cell) in record.iter().enumerate() {
            let value: f32 = cell.parse().map_err(|_| {
                anyhow!(
                    "{}: line {line}, column `{}`: `{cell}` is not a number",
                    path.display(),
                    columns[c]
                )
            })?;
            if !value.is_finite() {
                bail!(
                    "{}: line {line}, column `{}`: `{cell}` is not a finite number; NaN and \
                     infinite values cannot be trained on (drop or impute the row)",
                    path.display(),
                    columns[c]
                );
            }
            if is_target[c] {
                table.targets.push(value);
            } else {
                row[slot[c]] = value;
            }
        }
        table.features.extend_from_slice(&row);
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
        feature_names: t.feature_names.clone(),
    }
}

/// Training and test sets from `cfg`, paths resolved by `resolve`.
pub fn load(
    cfg: &CsvConfig,
    resolve: impl Fn(&Path) -> std::path::PathBuf,
    seed: u64,
) -> Result<(Dataset, Dataset)> {
    let train_path = resolve(&cfg.train);
    let train = read_table(&train_path, &cfg.target, None)?;
    match &cfg.test {
        Some(test) => {
            let test_path = resolve(test);
            let expected = Some((train.feature_names.as_slice(), train_path.as_path()));
            let test = read_table(&test_path, &cfg.target, expected)?;
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

    fn with_test(train: &Path, test: &Path) -> CsvConfig {
        CsvConfig {
            test: Some(test.to_path_buf()),
            ..cfg(train, "y")
        }
    }

    #[test]
    fn test_columns_are_matched_by_name_and_must_be_the_same_set() {
        let dir = tempfile::tempdir().unwrap();
        let train = write(dir.path(), "train.csv", "a,b,y\n1,2,0\n3,4,1\n");
        let reordered = write(dir.path(), "re.csv", "y,b,a\n5,20,10\n");
        let (_, test) = load(&with_test(&train, &reordered), |p| p.to_path_buf(), 1).unwrap();
        let mut x = [0.0; 2];
        test.raw_features(0, &mut x);
        assert_eq!(x, [10.0, 20.0], "columns follow the training file's order");
        let renamed = write(dir.path(), "rn.csv", "a,c,y\n1,2,0\n");
        let e = load(&with_test(&train, &renamed), |p| p.to_path_buf(), 1)
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("rn.csv: column `c` is not a column of the training file"),
            "{e}"
        );
        let missing = write(dir.path(), "m.csv", "a,y\n1,0\n");
        let e = load(&with_test(&train, &missing), |p| p.to_path_buf(), 1)
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("m.csv: no column `b`, which the training file"),
            "{e}"
        );
    }

    #[test]
    fn non_finite_cells_empty_files_and_duplicate_columns_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        for (cell, name) in [("nan", "nan.csv"), ("inf", "inf.csv"), ("-inf", "ninf.csv")] {
            let p = write(dir.path(), name, &format!("a,y\n1,2\n3,4\n{cell},5\n"));
            let e = load(&cfg(&p, "y"), |p| p.to_path_buf(), 1)
                .unwrap_err()
                .to_string();
            assert!(
                e.contains(&format!(
                    "{name}: line 4, column `a`: `{cell}` is not a finite"
                )),
                "{e}"
            );
        }
        let empty = write(dir.path(), "e.csv", "");
        let e = load(&cfg(&empty, "y"), |p| p.to_path_buf(), 1)
            .unwrap_err()
            .to_string();
        assert!(e.contains("e.csv: is empty; expected a header row"), "{e}");
        let dup = write(dir.path(), "d.csv", "a,y,y\n1,0,0.5\n");
        let e = load(&cfg(&dup, "y"), |p| p.to_path_buf(), 1)
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("d.csv: column `y` appears twice in the header (columns 2 and 3)"),
            "{e}"
        );
        let ok = write(dir.path(), "ok.csv", "a,y\n1,0\n");
        let mut twice = cfg(&ok, "y");
        twice.target.push("y".into());
        let e = load(&twice, |p| p.to_path_buf(), 1)
            .unwrap_err()
            .to_string();
        assert!(e.contains("data.csv.target names `y` twice"), "{e}");
    }
}
