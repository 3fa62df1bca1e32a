//! The one-verdict diagnosis: planted failures, each trained for a moment on tiny data, must
//! be named by their one cause, with figures and one fix, and with no advice that contradicts
//! it; a healthy run hears nothing.

mod common;

use backprop::output::diagnosis::Cause;
use std::fmt::Write as _;
use std::path::Path;

/// A small deterministic stream for the CSV tables.
struct XorShift(u64);

impl XorShift {
    fn unit(&mut self) -> f64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        (self.0 >> 11) as f64 / (1u64 << 53) as f64
    }
}

fn rows(n: usize, width: usize) -> Vec<Vec<f64>> {
    let mut rng = XorShift(0x9e37_79b9_7f4a_7c15);
    (0..n)
        .map(|_| (0..width).map(|_| rng.unit()).collect())
        .collect()
}

fn csv(path: &Path, header: &str, lines: impl Iterator<Item = String>) {
    let mut text = format!("{header}\n");
    lines.for_each(|l| writeln!(text, "{l}").unwrap());
    std::fs::write(path, text).unwrap();
}

fn cells(r: &[f64]) -> String {
    r.iter()
        .map(|v| format!("{v:.4}"))
        .collect::<Vec<_>>()
        .join(",")
}

/// Four classes, the label the arg-max of the first four features: learnable, until the
/// label column is shifted down by one row.
fn shifted_labels(dir: &Path) {
    let data = rows(500, 8);
    let label = |r: &[f64]| (0..4).max_by(|&a, &b| r[a].total_cmp(&r[b])).unwrap();
    let header = "x0,x1,x2,x3,x4,x5,x6,x7,label";
    csv(
        &dir.join("shifted.csv"),
        header,
        (0..data.len()).map(|i| {
            let above = &data[(i + data.len() - 1) % data.len()];
            format!("{},{}", cells(&data[i]), label(above))
        }),
    );
}

/// A regression target around 100..170.
fn large_targets(dir: &Path) {
    let data = rows(500, 2);
    csv(
        &dir.join("large.csv"),
        "x0,x1,y",
        data.iter()
            .map(|r| format!("{},{:.4}", cells(r), 100.0 + 50.0 * r[0] + 20.0 * r[1])),
    );
}

const BAND: &str = "[data]\ndir = \"band\"\n";
const TRAIN: &str = "[train]\nepochs = 10\nbatch_size = 20\n";

struct Plant {
    name: &'static str,
    /// The config, `[train]` and `[optimizer]` apart.
    body: &'static str,
    optimizer: &'static str,
    expected: Option<Cause>,
}

fn plants() -> Vec<Plant> {
    let plant = |name, body, optimizer, expected| Plant {
        name,
        body,
        optimizer,
        expected,
    };
    vec![
        plant(
            "healthy",
            "[model]\nhidden = [32]\n",
            "kind = \"momentum\"\nlr = 0.05",
            None,
        ),
        plant(
            "lr far too high",
            "[model]\nhidden = [32]\n",
            "lr = 5.0",
            Some(Cause::LrTooHigh),
        ),
        plant(
            "lr absurdly high",
            "[model]\nhidden = [32]\n",
            "lr = 1e4",
            Some(Cause::LrTooHigh),
        ),
        plant(
            "lr far too low",
            "[model]\nhidden = [32]\n",
            "lr = 1e-7",
            Some(Cause::LrTooLow),
        ),
        plant(
            "tiny init, deep ReLU",
            "[model]\nhidden = [32, 32, 32, 32, 32]\ninit = \"normal\"\ninit_std = 1e-4\n",
            "lr = 0.05",
            Some(Cause::InitTooSmall),
        ),
        plant(
            "huge init, sigmoid",
            "[model]\nhidden = [32]\nactivation = \"sigmoid\"\ninit = \"normal\"\ninit_std = 5.0\n",
            "lr = 0.05",
            Some(Cause::InitTooLarge),
        ),
        plant(
            "huge init, tanh",
            "[model]\nhidden = [32]\nactivation = \"tanh\"\ninit = \"normal\"\ninit_std = 5.0\n",
            "lr = 0.05",
            Some(Cause::InitTooLarge),
        ),
        plant(
            "raw 0..255 inputs",
            "scale = \"none\"\n[model]\nhidden = [32]\n",
            "lr = 0.05",
            Some(Cause::InputsUnscaled),
        ),
        plant(
            "large negative bias",
            "[model]\nhidden = [32]\nbias_init = -10.0\n",
            "lr = 0.05",
            Some(Cause::BiasKillsRelu),
        ),
        plant(
            "label column shifted by one",
            "[data.csv]\ntrain = \"shifted.csv\"\ntarget = [\"label\"]\nclassification = true\n\
             [model]\nhidden = [32]\n",
            "kind = \"momentum\"\nlr = 0.05",
            Some(Cause::NothingToLearn),
        ),
        plant(
            "regression target outside a sigmoid's range",
            "[data.csv]\ntrain = \"large.csv\"\ntarget = [\"y\"]\n[model]\nhidden = [16]\n\
             output_activation = \"sigmoid\"\nloss = \"mean_squared_error\"\n",
            "lr = 0.05",
            Some(Cause::TargetsOutOfRange),
        ),
    ]
}

/// The fix's words without its figures ("lower the lr: try 0.5" -> "lower the lr").
fn advice(cause: Cause) -> String {
    let fix = cause.fix(1.0);
    fix.split(": try").next().unwrap().to_string()
}

/// The diagnosis lines of a run's stderr: warnings from the epochs and a divergence's error.
fn verdicts(err: &str) -> Vec<&str> {
    err.lines()
        .filter(|l| l.starts_with("warning: epoch ") || l.starts_with("error: training diverged"))
        .collect()
}

fn check(plant: &Plant, dir: &Path) {
    let body = if plant.body.starts_with("[data") {
        plant.body.to_string()
    } else {
        format!("{BAND}{}", plant.body)
    };
    let text = format!("seed = 3\n{body}{TRAIN}[optimizer]\n{}\n", plant.optimizer);
    let config = common::write_config(dir, "run.toml", &text);
    let out = common::run(&["--config", &config.to_string_lossy(), "--quiet"]);
    let err = common::stderr(&out);
    let name = plant.name;
    assert!(
        matches!(out.status.code(), Some(0) | Some(3)),
        "{name}: {err}"
    );
    let lines = verdicts(&err);
    let Some(expected) = plant.expected else {
        let warnings: Vec<_> = err
            .lines()
            .filter(|l| l.starts_with("warning:") && !l.contains("OpenBLAS chose"))
            .collect();
        assert!(warnings.is_empty(), "{name} warned: {err}");
        assert_eq!(out.status.code(), Some(0), "{name}: {err}");
        return;
    };
    assert!(!lines.is_empty(), "{name}: no verdict in {err}");
    for line in &lines {
        assert!(line.contains(expected.title()), "{name}: {line}");
        assert!(line.contains("Evidence: "), "{name}: {line}");
        assert!(
            line.contains(&format!("Fix: {}", advice(expected))),
            "{name}: {line}"
        );
        let figures = line.split("Evidence: ").nth(1).unwrap();
        assert!(
            figures.chars().any(|c| c.is_ascii_digit()),
            "{name}: {line}"
        );
    }
    for other in Cause::ALL.into_iter().filter(|&c| c != expected) {
        assert!(
            !err.contains(other.title()),
            "{name} also says {other:?}: {err}"
        );
        assert!(
            !err.contains(&advice(other)) || advice(other) == advice(expected),
            "{name}: contradicting advice ({other:?}): {err}"
        );
    }
    assert!(
        !(err.contains("lower the lr") && err.contains("raise the lr")),
        "{name}: {err}"
    );
}

#[test]
fn each_planted_failure_gets_one_verdict_and_a_healthy_run_none() {
    let _guard = common::training_lock();
    let dir = tempfile::tempdir().unwrap();
    let band = dir.path().join("band");
    std::fs::create_dir(&band).unwrap();
    common::write_band_dataset(&band, 8, 4, 400, 100);
    shifted_labels(dir.path());
    large_targets(dir.path());
    let plants = plants();
    assert!(plants.iter().filter(|p| p.expected.is_some()).count() >= 8);
    for plant in &plants {
        check(plant, dir.path());
    }
}
